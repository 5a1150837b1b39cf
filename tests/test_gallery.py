"""Figure gallery (GitHub issue 11, item 2): every figure on odd sweeps, checked for layout.

Each case renders the four sweep figures (every page) or a reproduction figure and
asserts, from matplotlib's text bounding boxes (``analysis.figcheck``), that no two
visible texts overlap (tick labels, axis labels, titles, legend texts, annotations), that
no text is cut by the figure edge, and that no legend or in-panel text sits on data.
The tables are tiny real sweeps (run through the package as the workflow does) and
synthetic big ones (tests/gallery_data.py): one β, 12 and 30 β, k = 8 and 12, uniform,
gaussian, everything censored, one cell, 48 groups (4 pages), failures, new columns.

Set ATTENTION_DYNAMICS_GALLERY=/some/folder to keep the PNGs (one per page) for looking at.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from gallery_data import (emergence_growth_reproduction_tables, emergence_reproduction_table,  # noqa: E402
                          meanfield_reproduction_tables, phase_reproduction_table, real_tables,  # noqa: E402
                          staircase_reproduction_tables, synthetic_tables)

from attention_dynamics.analysis import plots  # noqa: E402
from attention_dynamics.analysis.figcheck import layout_problems, text_overlaps, visible_texts  # noqa: E402
from attention_dynamics.reproductions import emergence_figure, phase_figure, staircase_figure  # noqa: E402
from attention_dynamics.reproductions.growth import growth_rates_figure, selection_figure  # noqa: E402
from attention_dynamics.reproductions.meanfield import meanfield_heatmap_figure, meanfield_peaks_figure  # noqa: E402

HALF_PI = 1.5707963267949
REAL_CONFIG = {
    "results": "unused", "base_seed": 0,
    "defaults": {"t_max": 1.0e12, "theta_c": 0.1, "seeds": 2},
    "sweeps": {
        "one_beta": {"model": ["sa", "usa"], "init": "caps", "d": 2, "n": 8, "k": 3, "eps": 1e-5, "spacing": 1.2,
                     "beta": 10},
        "pairs_n": {"model": "usa", "init": "caps", "d": 2, "n": [8, 12], "k": 2, "eps": 1e-5, "spacing": HALF_PI,
                    "beta": {"start": 6, "stop": 12, "num": 3}},
        "uniform": {"model": "usa", "init": "uniform", "d": 2, "n": 16, "beta": [4, 8], "t_max": 1.0e8},
        "gaussian": {"model": "sa", "init": "gaussian", "d": 3, "n": 12, "k": 3, "beta": 8},
        "censored": {"model": "usa", "init": "caps", "d": 2, "n": 8, "k": 2, "eps": 1e-5, "spacing": HALF_PI,
                     "beta": [8, 10, 12], "t_max": 10.0},
        "one_cell": {"model": "usa", "init": "caps", "d": 3, "n": 8, "k": 4, "eps": 1e-5, "spacing": 1.2,
                     "beta": 10, "seeds": 1},
    },
}

# synthetic sweeps: name -> (groups, synthetic_tables options, max_panels, n_betas)
_B12 = list(np.linspace(5, 40, 12))
SYNTHETIC = {
    "twelve_betas": ([{"model": m, "k": 4, "betas": _B12} for m in ("sa", "usa")], {}, 12, 12),
    "k8": ([{"k": 8, "spacing": 0.45, "betas": [10, 20, 30, 40]}], {}, 12, 4),
    "k12": ([{"k": 12, "n": 120, "spacing": 0.3, "betas": [20, 40, 60]}], {"seeds": 3}, 12, 4),
    "uniform_30b": ([{"init": "uniform", "n": 64, "betas": list(np.linspace(2, 31, 30)), "t_max": 1e12}],
                    {"seeds": 3}, 12, 30),
    "gaussian_mix": ([{"init": "gaussian", "k": k, "betas": [10, 15, 20]} for k in (2, 3, 5)], {}, 12, 4),
    "many_groups": ([{"model": m, "k": k, "n": n, "spacing": 1.0, "betas": [8, 12, 16]}
                     for m in ("sa", "usa") for k in (2, 3, 4) for n in (8, 16, 32, 64, 128, 256)],
                    {"seeds": 2}, 12, 3),
    "all_censored": ([{"k": k, "betas": [20, 30, 40], "t_max": 1e3} for k in (2, 4)], {}, 12, 4),
    "failures": ([{"k": 3, "betas": [10, 20, 30]}, {"k": 2, "betas": [10, 20, 30], "spacing": 1.2},
                  {"k": 4, "betas": [10, 20], "fail_all": True}],
                 {"fail_every": 3, "event_kinds": True, "fit_status": "censored_mle"}, 12, 4),
    "one_group_one_run": ([{"k": 2, "spacing": 1.2, "betas": [15]}], {"seeds": 1}, 12, 4),
}
REAL_SWEEPS = list(REAL_CONFIG["sweeps"])
SLOW_CASES = {"k8", "gaussian_mix", "one_group_one_run", "one_cell"}  # covered in spirit by the others


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    root = tmp_path_factory.mktemp("gallery_tables")
    real_tables(REAL_CONFIG, root / "real")
    folders = {s: (root / "real", s, 12, 4) for s in REAL_SWEEPS}
    # the real run's tables are the default case; synthetic ones are cheap (≈ 0.1 s each)
    for name, (groups, opts, max_panels, n_betas) in SYNTHETIC.items():
        synthetic_tables(root / name, name, groups, **opts)
        folders[name] = (root / name, name, max_panels, n_betas)
    return folders, None


def _check(figs, out: Path | None, stem: str) -> list[str]:
    """Layout problems of every page (closing them); the PNGs go to ``out`` when it is given."""
    problems = []
    for i, fig in enumerate(figs):
        try:
            problems += [f"page {i + 1}: {p}" for p in layout_problems(fig)]
            if out is not None:
                fig.savefig(out / f"{stem}_p{i + 1}.png", dpi=fig.dpi)
        finally:
            plt.close(fig)
    return problems


def _keep_dir() -> Path | None:
    keep = os.environ.get("ATTENTION_DYNAMICS_GALLERY")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
    return Path(keep) if keep else None


def _cases():
    for case in [*REAL_SWEEPS, *SYNTHETIC]:
        for kind in plots.KINDS:
            if case == "many_groups" and kind != "clusters":
                continue  # staircase, times, lifetimes: the paging tests below check their layout too
            slow = case in SLOW_CASES or case == "many_groups"
            yield pytest.param(case, kind, marks=pytest.mark.slow) if slow else (case, kind)


@pytest.mark.parametrize("case,kind", list(_cases()))
def test_sweep_figure_layout(gallery, case, kind):
    """Zero overlapping texts, zero texts cut by the figure edge, no legend or note on data, every page."""
    folders, _ = gallery
    tables, sweep, max_panels, n_betas = folders[case]
    figs = plots.figures(kind, str(tables), sweep, max_panels=max_panels, n_betas=n_betas, pdf_name=f"{kind}.pdf")
    assert figs, "no page"
    texts = []
    for f in figs:
        texts += [t.get_text() for t in visible_texts(f)]
    problems = _check(figs, _keep_dir(), f"{case}_{kind}")
    assert not problems, "\n".join(problems)
    assert not [t for t in texts if "nan" in t.lower().split()], "a title prints nan"


def test_many_groups_are_paged_and_said(gallery):
    """36 groups at 12 panels per page: 3 clean pages; page 1 names what it shows and where the rest is."""
    folders, _ = gallery
    tables, sweep, _, _ = folders["many_groups"]
    figs = plots.figures("staircase", str(tables), sweep, max_panels=12, n_betas=3, pdf_name="staircase.pdf")
    assert len(figs) == 3
    assert [sum(ax.get_visible() and bool(ax.get_title()) for ax in f.axes) for f in figs] == [12, 12, 12]
    title = figs[0]._suptitle.get_text().replace("\n", " ")
    assert "groups 1–12 of 36" in title and "page 1 of 3" in title and "staircase.pdf" in title
    problems = _check(figs, _keep_dir(), "many_groups_staircase")
    assert not problems, "\n".join(problems)


def test_times_overlays_n(gallery):
    """Groups that differ only by n share a panel (6 families of 6 n), coloured by n with a colour bar."""
    folders, _ = gallery
    tables, sweep, _, _ = folders["many_groups"]
    figs = plots.figures("times", str(tables), sweep, max_panels=12)
    assert len(figs) == 1
    panels = [ax for ax in figs[0].axes if ax.get_visible() and ax.get_title()]
    assert len(panels) == 6
    assert all("6 values of n" in ax.get_title() for ax in panels)
    cbar = [ax for ax in figs[0].axes if ax.get_ylabel().startswith("n (")]
    assert len(cbar) == 1 and [t.get_text() for t in cbar[0].get_yticklabels()] == ["8", "16", "32", "64", "128",
                                                                                    "256"]
    problems = _check(figs, _keep_dir(), "many_groups_times")
    assert not problems, "\n".join(problems)


def test_pages_cap(gallery, monkeypatch):
    """Past MAX_PAGES pages the title says which groups are not drawn (layout still clean)."""
    folders, _ = gallery
    tables, sweep, _, _ = folders["many_groups"]
    monkeypatch.setattr(plots, "MAX_PAGES", 2)
    figs = plots.figures("lifetimes", str(tables), sweep, max_panels=12, n_betas=3, pdf_name="lifetimes.pdf")
    assert len(figs) == 2
    assert "groups 25–36 not drawn" in figs[0]._suptitle.get_text().replace("\n", " ")
    problems = _check(figs, _keep_dir(), "many_groups_lifetimes_capped")
    assert not problems, "\n".join(problems)


def test_no_theory_nan_and_status_shown(gallery):
    """Titles never print 'nan'; a fit whose status is not ok is named in its panel, without a fit line."""
    folders, _ = gallery
    for case in ("uniform", "failures"):
        tables, sweep, max_panels, n_betas = folders[case]
        for kind in ("times",):
            figs = plots.figures(kind, str(tables), sweep, max_panels=max_panels, n_betas=n_betas)
            try:
                texts = " ".join(t.get_text() for f in figs for t in visible_texts(f))
                assert "nan" not in texts.lower().replace("nanoseconds", ""), (case, kind, texts)
                if case == "failures" and kind == "times":
                    assert "fit status censored_mle" in texts.replace("\n", " ")
                if case == "uniform" and kind == "times":
                    assert "no theory slope for this group" in texts.replace("\n", " ")
            finally:
                for f in figs:
                    plt.close(f)


def test_censored_curves_end_with_a_marker(gallery):
    """All-censored sweep: every staircase curve ends with an open end marker; times show open triangles."""
    folders, _ = gallery
    tables, sweep, _, _ = folders["censored"]
    figs = plots.figures("staircase", str(tables), sweep, n_betas=4)
    try:
        ax = next(a for a in figs[0].axes if a.get_visible() and a.get_lines())
        curves = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata()) > 2]
        ends = [ln for ln in ax.get_lines() if ln.get_marker() in ("o", ">") and ln.get_markerfacecolor() == "white"]
        assert len(curves) == 3 and len(ends) == 3
        for c, e in zip(curves, ends):
            assert np.isclose(e.get_ydata()[0], c.get_ydata()[-1])
    finally:
        plt.close(figs[0])


def test_plateau_labels_dedupe(gallery):
    """uniform, 30 β: at most MAX_LINES dashed levels, each label once, none closer than a line of text."""
    folders, _ = gallery
    tables, sweep, max_panels, n_betas = folders["uniform_30b"]
    figs = plots.figures("staircase", str(tables), sweep, max_panels=max_panels, n_betas=n_betas)
    try:
        ax = next(a for a in figs[0].axes if a.get_visible() and a.get_lines())
        labels = [t for t in ax.texts if t.get_text().strip()]
        values = [float(t.get_text()) for t in labels]
        assert len(values) == len(set(values)) and 1.0 in values
        assert len(labels) <= plots.MAX_LINES + 1
        assert not text_overlaps(figs[0], labels)
        # 30 β > LEGEND_MAX: a colour bar, no 30 legend entries
        assert any(a.get_ylabel().startswith("β") for a in figs[0].axes)
        assert all(len(leg.get_texts()) < 10 for leg in figs[0].legends)
    finally:
        plt.close(figs[0])


def test_pdf_has_every_page_png_the_first(gallery, tmp_path):
    folders, _ = gallery
    tables, sweep, _, _ = folders["many_groups"]
    png, pdf = tmp_path / "times.png", tmp_path / "times.pdf"
    plots.plot("times", str(tables), sweep, [png, pdf], max_panels=2)  # 6 panels: 3 pages
    assert png.read_bytes()[:4] == b"\x89PNG"
    import re

    assert len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf.read_bytes())) == 3


REPRO_CASES = {
    "staircase_2beta": lambda: staircase_figure(*staircase_reproduction_tables([2000, 4000])),
    "staircase_6beta": lambda: staircase_figure(*staircase_reproduction_tables([500, 1000, 1500, 2000, 3000, 4000])),
    "staircase_12beta": lambda: staircase_figure(*staircase_reproduction_tables(np.linspace(500, 6000, 12))),
    "staircase_logtime_only": lambda: staircase_figure(*staircase_reproduction_tables([1000],
                                                                                      parametrisations=("logtime",))),
    "emergence_d2": lambda: emergence_figure(emergence_reproduction_table({2: [2000]}, [2, 5, 8, 12.5, 18, 25, 32,
                                                                                        40])),
    "emergence_4panels_30beta": lambda: emergence_figure(emergence_reproduction_table(
        {2: [300, 2000], 3: [300, 2000]}, np.linspace(1, 40, 30), seeds=3)),
    "emergence_empty": lambda: emergence_figure(emergence_reproduction_table({2: [300]}, [5]).iloc[:0]),
    "phase_1beta": lambda: phase_figure(phase_reproduction_table([3.0], np.linspace(0, 30, 61))),
    "phase_30beta": lambda: phase_figure(phase_reproduction_table(np.linspace(0.3, 9, 30), np.linspace(0, 30, 61))),
    "meanfield_heatmap": lambda: meanfield_heatmap_figure(_mf(8)[2], _mf(8)[1], beta=5.0),
    "meanfield_heatmap_missing": lambda: meanfield_heatmap_figure(_mf(8)[2].iloc[:0], _mf(8)[1], beta=5.0),
    "meanfield_peaks_40beta": lambda: meanfield_peaks_figure(_mf(40)[1]),
    "meanfield_peaks_d2_only": lambda: meanfield_peaks_figure(_mf(8)[1].query("d == 2")),
    "growth_rates": lambda: growth_rates_figure(_mf(8)[0], _eg(8)[1]),
    "growth_rates_40beta_particles_only": lambda: growth_rates_figure(None, _eg(40)[1]),
    "growth_rates_empty": lambda: growth_rates_figure(None, None),
    "selection_40beta": lambda: selection_figure(*_eg(40)),
}


@functools.cache
def _mf(num_betas: int):
    return meanfield_reproduction_tables(sorted({*np.linspace(1, 40, num_betas), 5.0}))


@functools.cache
def _eg(num_betas: int):
    return emergence_growth_reproduction_tables({2: [2000], 3: [2000]}, list(np.linspace(2, 40, num_betas)), seeds=4)


@pytest.mark.parametrize("case", list(REPRO_CASES))
def test_reproduction_figure_layout(case):
    problems = _check([REPRO_CASES[case]()], _keep_dir(), f"repro_{case}")
    assert not problems, "\n".join(problems)


def test_figcheck_finds_overlap_and_clip():
    """The checker itself: two texts on top of each other, one past the edge, a legend on data."""
    fig, ax = plt.subplots(figsize=(3, 2), dpi=100)
    try:
        ax.plot([0, 0.2, 0.4, 9], [9, 9, 9, 0], "o", label="data")  # top left: under the legend
        ax.text(0.5, 0.5, "same place", transform=ax.transAxes)
        ax.text(0.5, 0.5, "same place too", transform=ax.transAxes)
        fig.text(0.95, 0.5, "cut off at the edge")
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, 1.0))
        problems = [str(p) for p in layout_problems(fig)]
        assert any(p.startswith("overlap: 'same place'") for p in problems), problems
        assert any(p.startswith("clipped: 'cut off at the edge'") for p in problems), problems
        assert any(p.startswith("covers data: legend") for p in problems), problems
    finally:
        plt.close(fig)
    assert pd.__version__  # pandas is a dependency of the helpers


def test_panel_note_says_when_uniform_runs_had_no_formation():
    """Uniform runs whose formation rule held at t = 0 ("sparse") or never ("not_formed") are counted in
    the panel note, so a count curve without a formation marker is explained on the figure."""
    runs = pd.DataFrame({"status": ["ok"] * 4 + ["failed"], "censored": [False] * 5,
                         "formation_status": ["sparse", "sparse", "ok", "not_formed", ""]})
    note = plots._status_note(runs)
    assert "2/5 sparse at t=0 (counted from t=0)" in note and "1/5 not formed" in note and "1 failed" in note
    assert plots._status_note(runs.assign(formation_status="ok").iloc[:4]) == ""
    assert plots._status_note(runs.drop(columns="formation_status").iloc[:4]) == ""


def test_one_beta_times_axis_is_labelled_by_the_beta(gallery):
    """One β: the times panel has one x tick, the β itself — not matplotlib's offset axis (±0.004, '+1e1')."""
    folders, _ = gallery
    tables, sweep, max_panels, n_betas = folders["one_beta"]
    figs = plots.figures("times", str(tables), sweep, max_panels=max_panels, n_betas=n_betas)
    try:
        axes = [ax for f in figs for ax in f.axes if ax.get_xlabel() == "β"]
        assert axes
        for ax in axes:
            f = ax.figure
            f.canvas.draw()
            assert [t.get_text() for t in ax.get_xticklabels()] == ["10"]
            assert ax.xaxis.get_offset_text().get_text() == ""
    finally:
        for f in figs:
            plt.close(f)
