"""Text of the Snakemake HTML report (``snakemake --report report.html``).

* :func:`description_rst` — the report's landing page (Snakemake's global ``report:``
  directive): what this run did — sweeps, cells, simulations, β values, horizons, failures,
  censoring, the reproductions and their settings — and the summary's headline, from the
  plan and the tables. Written by rule ``summary`` to ``<results>/report/description.rst``.
* :func:`sweep_facts`, :func:`reproduction_facts` — one line of reStructuredText each, stating
  the config values a figure shows; the rules pass them to the captions
  (``workflow/report/*.rst``) as ``snakemake.params.facts``.

Formulas and definitions: ``docs/science.md``.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

__all__ = ["rst_escape", "values_text", "sweep_facts", "reproduction_facts", "run_facts", "description_rst",
           "run_from_snakemake"]

_MODEL_NAMES = {"sa": "SA", "usa": "USA"}


def rst_escape(text) -> str:
    """``text`` safe inside reStructuredText: no markup from ``*``, backquotes, ``|`` or a
    trailing ``_`` (which would make a hyperlink reference)."""
    text = str(text).replace("\\", "\\\\")
    text = re.sub(r"([*`|])", r"\\\1", text)
    return re.sub(r"_(?=\W|$)", r"\\_", text)


def _num(v) -> str:
    """A number for reading: integers as such, others to 4 significant digits, 1e+25 as 1e25."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return str(v)
    v = float(v)
    if v.is_integer() and abs(v) < 1e6:
        return str(int(v))
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m[1] == "-" else "") + m[2], f"{v:.4g}")


def _sup(k: int) -> str:
    return str(k).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


def values_text(values, *, most: int = 6) -> str:
    """``[5, 10, 15, 20, 25, 30, 35, 40]`` → ``5, 10, …, 40 (8 values)``; short lists in full."""
    vals = list(values) if isinstance(values, (list, tuple, np.ndarray)) else [values]
    if len(vals) <= most:
        return ", ".join(_num(v) for v in vals)
    return f"{_num(vals[0])}, {_num(vals[1])}, …, {_num(vals[-1])} ({len(vals)} values)"


def _axis(name: str, v) -> str:
    vals = v if isinstance(v, (list, tuple)) else [v]
    return f"{name} = {values_text(vals)}" if len(vals) == 1 else f"{name} ∈ {{{values_text(vals)}}}"


def sweep_facts(spec: dict) -> str:
    """One line stating a sweep's settings (a normalised sweep of
    :func:`attention_dynamics.pipeline.sweep.check_config`), reST-escaped."""
    models = spec["model"] if isinstance(spec["model"], list) else [spec["model"]]
    inits = spec["init"] if isinstance(spec["init"], list) else [spec["init"]]
    parts = [" and ".join(_MODEL_NAMES.get(m, m) for m in models)]
    for init in inits:
        if init == "caps":
            where = ("random centres at least " + values_text(spec["min_angle"]) + " rad apart"
                     if spec.get("centres") == "random" else
                     "centres " + (values_text(spec["spacing"]) + " rad apart on a great circle"
                                   if spec.get("spacing") is not None else "evenly spaced on a great circle"))
            parts.append(f"caps of radius ε = {values_text(spec['eps'])} (1 − cos units), {where}")
        elif init == "gaussian":
            parts.append(f"Gaussian mixture (√r = √{values_text(spec['r'])}, σ = {values_text(spec['sigma'])})")
        else:
            parts.append("iid uniform data")
    parts.append(", ".join([_axis("d", spec["d"]), _axis("n", spec["n"]), _axis("k", spec["k"])]))
    betas = spec["beta"] if isinstance(spec["beta"], list) else [spec["beta"]]
    parts.append(f"β ∈ {{{values_text(betas)}}}" if len(betas) > 1 else f"β = {_num(betas[0])}")
    parts.append(f"{spec['seeds']} seeds per cell")
    parts.append(f"horizon t_max = {values_text(spec['t_max'])}")
    parts.append(f"clusters at angle θ_c = {values_text(spec['theta_c'])} rad")
    return rst_escape("; ".join(parts))


def _levels(level, ds) -> str:
    """A per-dimension setting ({d: value}) for reading: '0.05 (d = 2), 0.005 (d = 3)'; a number as such."""
    if not isinstance(level, dict):
        return _num(level)
    vals = {d: level[d] for d in ds if d in level}
    if len(set(vals.values())) == 1:
        return _num(next(iter(vals.values())))
    return ", ".join(f"{_num(v)} (d = {d})" for d, v in vals.items())


def reproduction_facts(repro: dict) -> dict[str, str]:
    """One line per reproduction (staircase, emergence, phase_diagram) stating its settings
    (the checked ``reproductions:`` section of :func:`attention_dynamics.reproductions.reproductions_config`)."""
    st, em, ph, mf = repro["staircase"], repro["emergence"], repro["phase_diagram"], repro["meanfield"]
    ns = "; ".join(f"d = {d}: n ∈ {{{values_text(em['n'][d])}}}" for d in em["d"])
    return {
        "staircase": rst_escape(f"β ∈ {{{values_text(st['betas'])}}}, lr = {_num(st['lr'])}, every "
                                f"{st['record_every']}th iteration recorded"
                                + ("; log-time panel: ordinary USA dynamics" if st["logtime"] else "")),
        "emergence": rst_escape(f"{_MODEL_NAMES.get(em['model'], em['model'])}, {ns}; "
                                f"β ∈ {{{values_text(em['betas'])}}}; {em['seeds']} seeds per β; θ_c = "
                                f"{_num(em['theta_c'])} rad, end of the linear phase when the largest degree power "
                                f"reaches {_levels(em['power_level'], em['d'])}, formation when a fraction f = "
                                f"{_num(em['f'])} of the mass lies in components of diameter < "
                                f"{_num(em['tight_angle'])} rad"),
        "finite_n": rst_escape(f"{_MODEL_NAMES.get(em['model'], em['model'])}, {ns}; β ∈ {{{values_text(em['betas'])}}}; "
                               f"{em['seeds']} seeds per β; dominant degree read when the largest degree power reaches "
                               f"{_levels(em['power_level'], em['d'])}; "
                               f"angular power spectra at {em['spectrum_points']} times in "
                               f"[0, {_num(em['spectrum_span'])}·t_c]; growth rates fitted for λ*t ≤ "
                               f"ln(n·{_num(em['fit_level'])})/2 and held to 10 % for λ_l ≥ {_num(em['band'])}·λ*; "
                               "dominant degree tested against the finite-n prediction by a χ² test per β"),
        "meanfield": rst_escape(f"{_MODEL_NAMES.get(mf['model'], mf['model'])} in {mf['convention']} time; noise σ = "
                                f"{_num(mf['sigma'])} (d = 2: on {mf['noise_points']} points, L = {mf['l_max_circle'] or 512}; "
                                f"d = 3: degrees ≤ {mf['noise_degree']}, L = "
                                f"{mf['l_max_sphere'] or 'max(32, twice the kernel bandwidth)'}); d ∈ {{{values_text(mf['d'])}}}, "
                                f"β ∈ {{{values_text(mf['betas'])}}}, {mf['seeds']} seeds per β; resolution stop at "
                                f"spectral tail {_num(mf['max_tail_circle'])} (d = 2), {_num(mf['max_tail_sphere'])} "
                                f"(d = 3); dominant degree when the largest degree power reaches "
                                f"{_num(mf['power_level'])}; peak level ρ = {_num(mf['peak_level'])}; heat map at β = {_num(mf['fig4_beta'])}; growth rates at "
                                f"β ∈ {{{values_text(mf['rate_betas'])}}} for {', '.join(mf['rate_models'])}"),
        "phase_diagram": rst_escape(f"{_MODEL_NAMES.get(ph['model'], ph['model'])}, n = {ph['n']} on "
                                    + ("the circle" if ph["d"] == 2 else f"the unit sphere of R{_sup(ph['d'])}")
                                    + f", {ph['n_systems']} initial conditions per β, "
                                    f"β ∈ {{{values_text(ph['betas'])}}}, t ∈ [0, {_num(ph['t_max'])}], pairs "
                                    f"counted as clustered when ⟨x_i, x_j⟩ > {_num(ph['threshold'])}"),
    }


def run_facts(plan, runs: pd.DataFrame | None) -> list[dict]:
    """Per sweep: cells, simulations, β values, horizon, and from the runs table the failed and
    censored runs and the longest time reached."""
    out = []
    for s in plan.sweeps:
        cells = [c for c in plan.cells if c.sweep == s]
        r = runs[runs["sweep"] == s] if runs is not None and len(runs) else None
        row = {"sweep": s, "description": plan.config["sweeps"][s].get("description") or "",
               "cells": len(cells), "simulations": plan.n_simulations(s),
               "fit groups": len({c.group for c in cells}),
               "β": values_text(sorted({c.params["beta"] for c in cells})),
               "t_max": values_text(sorted({c.params["t_max"] for c in cells}))}
        if r is not None:
            failed = r[r["status"] != "ok"]
            row.update({"failed": len(failed),
                        "failure reasons": ", ".join(sorted(set(failed["reason"].astype(str)) - {""}))[:200],
                        "censored at t_max": int(r["censored"].astype(bool).sum()),
                        "no escape before the end": int(r["escape_censored"].astype(bool).sum()),
                        "latest merge": _num(float(np.nanmax(r["t_end"].where(~r["censored"].astype(bool)))))
                        if (~r["censored"].astype(bool)).any() else "—",
                        "merges": int(r["n_merges"].sum())})
        out.append(row)
    return out


def _rst_table(header: list[str], rows: list[list]) -> str:
    """A reST list-table (cells escaped)."""
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for rec in [header, *rows]:
        lines.append("   * - " + rst_escape(rec[0]))
        lines += [f"     - {rst_escape(c)}" for c in rec[1:]]
    return "\n".join(lines) + "\n"


def description_rst(plan, runs: pd.DataFrame | None, headline: list[tuple[str, str, str]], repro: dict | None,
                    prov: dict) -> str:
    """The report's landing page (reStructuredText; Snakemake renders it with Jinja first, so
    no ``{{``/``{%`` may appear: none does)."""
    facts = run_facts(plan, runs)
    n_sims = sum(f["simulations"] for f in facts)
    n_failed = sum(f.get("failed", 0) for f in facts)
    n_cens = sum(f.get("censored at t_max", 0) for f in facts)
    text = [
        "attention-dynamics: what this run did",
        "=====================================",
        "",
        rst_escape(f"{len(facts)} sweep{'s' * (len(facts) > 1)}, {len(plan.cells)} grid cells, {n_sims} simulations "
                   f"of the SA/USA particle systems on the sphere: {n_sims - n_failed} finished, {n_failed} failed, "
                   f"{n_cens} censored (the horizon t_max was reached with more than one cluster left)")
        + (f"; paper reproductions: {', '.join(_REPRO_NAMES[p] for p in _REPRO_NAMES)}." if repro else
           "; no paper reproductions (the config has no ``reproductions:`` section)."),
        "",
        rst_escape(f"Config hash {prov.get('config_hash') or plan.hash}; code {prov.get('git_describe') or '?'} "
                   f"(attention_dynamics {prov.get('attention_dynamics_version', '?')}); written "
                   f"{prov.get('created_utc', '?')}. USA times are in GKPR24's convention "
                   "exp(β(⟨x,y⟩ − 1))/n. Every figure is a PNG here; the same figure as PDF and every table "
                   f"are in {plan.results}/ (plots/, tables/)."),
        "",
        "Headline",
        "--------",
        "",
        "The full table of claims, theory values and measurements is under Summary_ (also "
        f"``{rst_escape(plan.results)}/summary.md``).",
        "",
    ]
    for title, verdict, details in headline:
        text.append(f"* **{rst_escape(title)}**: {rst_escape(verdict)}."
                    + (f" {rst_escape(details)}" if details else ""))
    text += ["", "Sweeps", "------", ""]
    header = ["sweep", "cells", "simulations", "β", "t_max", "failed", "censored at t_max", "no escape before the end",
              "merges"]
    text.append(_rst_table(header, [[f[h] if h in f else "—" for h in header] for f in facts]))
    for f in facts:
        spec = plan.config["sweeps"][f["sweep"]]
        groups = f"{f['fit groups']} fit group{'s' * (f['fit groups'] != 1)}"
        text.append(f"* ``{f['sweep']}`` ({groups}): {sweep_facts(spec)}."
                    + (f" {rst_escape(f['description'])}" if f["description"] else "")
                    + (f" Failure reasons: {rst_escape(f['failure reasons'])}." if f.get("failure reasons") else ""))
    if repro:
        text += ["", "Reproductions", "-------------", ""]
        for part, fact in reproduction_facts(repro).items():
            text.append(f"* {_REPRO_NAMES[part]}: {fact}.")
    text += ["", "Reading the results", "-------------------", "",
             "``attention_dynamics.load_results(\"" + rst_escape(plan.results) + "\")`` returns every table as a "
             "pandas DataFrame, with its provenance in ``df.attrs``; ``attention-dynamics info <table>`` prints "
             "the provenance of one file. Columns: ``docs/tables.md``; models, time conventions and formulas: "
             "``docs/science.md``.", ""]
    out = "\n".join(text)
    assert "{{" not in out and "{%" not in out  # Snakemake renders the page with Jinja
    return out


_REPRO_NAMES = {"staircase": "GKPR24 staircase (authors' configuration)",
                "emergence": "BPA24 emergence of clusters from uniform data",
                "finite_n": "BPA24 at finite n (growth rates, dominant degree, count at formation)",
                "meanfield": "BPA24 with the mean-field PDE (Fig. 4, peaks against l*, growth rates)",
                "phase_diagram": "GLPR23 (β, t) phase diagram"}


def run_from_snakemake(smk) -> None:  # pragma: no cover - exercised through the workflow tests
    """Rule ``summary`` (workflow/scripts/summary.py): summary.md, summary.html and the report's
    landing page, from the run's tables and config."""
    import pyarrow.parquet as pq

    from .pipeline.io import atomic_write_text, provenance
    from .pipeline.sweep import check_config
    from .reproductions.config import reproductions_config
    from .reproductions.summary import headline, summary_html, summary_markdown, summary_notes, summary_rows

    plan = check_config(smk.config, check_results=False)
    names = {"runs": "runs", "lifetimes": "lifetimes", "trajectories": "trajectories", "fits": "fits",
             "staircase": "staircase", "emergence": "emergence", "phase": "phase", "meanfield": "meanfield",
             "meanfield_emergence": "meanfield_emergence", "emergence_growth": "emergence_growth"}
    tables = {k: pq.read_table(smk.input[v]).to_pandas() if v in smk.input.keys() else None
              for k, v in names.items()}
    repro = reproductions_config(json.loads(smk.params.reproductions)) if smk.params.reproductions else None
    rows = summary_rows(**tables)
    notes = summary_notes()
    atomic_write_text(summary_html(rows, notes=notes), smk.output.html)
    atomic_write_text(description_rst(plan, tables["runs"], headline(rows), repro, provenance()),
                      smk.output.description)
    atomic_write_text(summary_markdown(rows, notes=notes), smk.output.md)
    atomic_write_text(f"{len(rows)} summary rows from {', '.join(k for k, v in tables.items() if v is not None)}; "
                      f"wrote {smk.output.md}, {smk.output.html}, {smk.output.description}\n", smk.log[0])
