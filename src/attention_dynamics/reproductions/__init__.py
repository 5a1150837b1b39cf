"""Reproductions of the papers' figures, one module per figure.

* :mod:`.staircase` — GKPR24 §6: the energy staircase (authors' arclength parametrisation
  and log time s = ln t / β).
* :mod:`.selection` and :mod:`.emergence` — BPA24: how clusters and degrees are counted,
  the finite-n linear prediction, and the emergence of clusters from uniform data.
* :mod:`.growth` — BPA24 at finite n with particles: growth rates of the ensemble-averaged
  degree power, the dominant degree against the finite-n prediction, counts at formation.
* :mod:`.meanfield` — BPA24 with the mean-field PDE: Fig. 4, peaks against l*(β), solver growth rates.
* :mod:`.phase_diagram` — GLPR23's (β, t) phase diagram.
* :mod:`.summary` — ``results/summary.md``: claim → theory → measured → agreement.
* :mod:`.config` — the ``reproductions:`` config section; :mod:`.cli` — the command line
  the Snakemake rules call (``python -m attention_dynamics.reproductions …``).

Every vector field is :func:`attention_dynamics.engine.dynamics.velocity` and every energy
:func:`attention_dynamics.engine.dynamics.energy`; long horizons go through
:func:`attention_dynamics.engine.simulate.simulate`. Nothing re-implements the interaction.
"""
from .config import (REPRODUCTIONS_DEFAULTS, emergence_cells, job_config, meanfield_cells, meanfield_job_config,
                     reproductions_config, reproductions_schema)
from .emergence import (EMERGENCE_COLUMNS, EMERGENCE_SPECTRA_COLUMNS, emergence_cell, emergence_figure, emergence_run,
                        emergence_table, formation, linear_prediction_columns, plot_emergence)
from .growth import EMERGENCE_GROWTH_COLUMNS, emergence_growth_table, multinomial_gof, spectrum_growth_fits
from .meanfield import (MEANFIELD_COLUMNS, MEANFIELD_EMERGENCE_COLUMNS, MEANFIELD_PROFILE_COLUMNS,
                        count_arcs_above, meanfield_noise_table, meanfield_rates_table, potential_peaks_circle)
from .phase_diagram import PHASE_COLUMNS, phase_diagram, phase_figure, plot_phase_diagram
from .selection import (circle_components, components, default_l_max, degree_power, linear_selection,
                        potential_maxima, potential_on_circle, sphere_degree_power)
from .staircase import (AUTHORS_BETAS, STAIRCASE_CURVE_COLUMNS, STAIRCASE_STEP_COLUMNS, authors_initial_angles,
                        authors_staircase, logtime_staircase, plot_staircase, staircase_figure, staircase_tables,
                        staircase_theory)
from .summary import headline, summary_html, summary_markdown, summary_rows, write_summary

__all__ = [
    "AUTHORS_BETAS", "STAIRCASE_STEP_COLUMNS", "STAIRCASE_CURVE_COLUMNS", "EMERGENCE_COLUMNS", "PHASE_COLUMNS",
    "REPRODUCTIONS_DEFAULTS", "authors_initial_angles", "staircase_theory", "authors_staircase",
    "logtime_staircase", "staircase_tables", "circle_components", "components", "degree_power",
    "potential_on_circle", "potential_maxima", "default_l_max", "linear_selection", "linear_prediction_columns",
    "formation", "emergence_run", "emergence_table", "phase_diagram", "summary_rows", "summary_markdown",
    "summary_html", "headline", "write_summary", "plot_staircase", "plot_emergence", "plot_phase_diagram",
    "staircase_figure", "emergence_figure", "phase_figure", "reproductions_config",
    "reproductions_schema", "emergence_cells", "job_config", "meanfield_cells", "meanfield_job_config", "EMERGENCE_SPECTRA_COLUMNS",
    "emergence_cell", "EMERGENCE_GROWTH_COLUMNS", "emergence_growth_table", "multinomial_gof", "spectrum_growth_fits",
    "MEANFIELD_COLUMNS", "MEANFIELD_EMERGENCE_COLUMNS", "MEANFIELD_PROFILE_COLUMNS",
    "count_arcs_above", "meanfield_noise_table", "meanfield_rates_table", "potential_peaks_circle",
    "sphere_degree_power",
]
