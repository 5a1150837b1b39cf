"""The Snakemake workflow end to end on config/test.yaml, the paper DAG, and start-up validation."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from attention_dynamics.pipeline import sweep as sw
from attention_dynamics.pipeline.aggregate import table_columns, tables_markdown

ROOT = Path(__file__).resolve().parents[1]
TABLES = ["runs", "events", "lifetimes", "trajectories", "fits"]
KINDS = ["staircase", "clusters", "times", "lifetimes"]


def snakemake(workdir: Path, *args, targets=(), timeout=600) -> subprocess.CompletedProcess:
    """Run the workflow of this checkout in ``workdir`` with the interpreter running the tests.

    Targets go first: ``--configfile`` takes several values and would swallow them.
    """
    cmd = [sys.executable, "-m", "snakemake", *targets, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           *args]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir, env=env)


def sweep_targets(plan) -> list[str]:
    """This pipeline's final targets (rule all may hold more: other rule files add theirs)."""
    return [f"{plan.results}/tables/{t}.parquet" for t in TABLES] + [
        f"{plan.results}/plots/{s}/{k}.{ext}" for s in plan.sweeps for k in KINDS for ext in ("png", "pdf")]


TEST_PLAN = sw.check_config(yaml.safe_load((ROOT / "config" / "test.yaml").read_text()), check_results=False)


@pytest.fixture(scope="module")
def test_run(tmp_path_factory):
    """The whole workflow (rule all: sweeps, reproductions, summary) on config/test.yaml."""
    wd = tmp_path_factory.mktemp("wf")
    t0 = time.perf_counter()
    out = snakemake(wd, "--configfile", str(ROOT / "config" / "test.yaml"), "--cores", "2",
                    "--scheduler", "greedy")
    elapsed = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr[-5000:]
    return wd, TEST_PLAN, elapsed, out


def test_all_targets_exist(test_run):
    wd, plan, elapsed, _ = test_run
    res = wd / "results"
    for t in TABLES:
        assert (res / "tables" / f"{t}.parquet").stat().st_size > 0
    for s in plan.sweeps:
        for k in KINDS:
            png = res / "plots" / s / f"{k}.png"
            pdf = res / "plots" / s / f"{k}.pdf"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
            assert pdf.read_bytes()[:5] == b"%PDF-", pdf
    for c in plan.cells:  # per-cell outputs, logs and benchmarks at their deterministic paths
        assert (res / "cells" / c.sweep / c.path / "runs.parquet").exists()
        assert (res / "logs" / "cells" / c.sweep / f"{c.path}.log").exists()
        assert (res / "benchmarks" / "cells" / c.sweep / f"{c.path}.tsv").exists()
    print(f"test workflow: {elapsed:.1f} s")


@pytest.mark.parametrize("name", TABLES)
def test_tables_schema_docs_provenance(test_run, name):
    wd, plan, _, _ = test_run
    path = wd / "results" / "tables" / f"{name}.parquet"
    table = pq.read_table(path)
    expected = table_columns(name)
    assert table.schema.names == list(expected), name
    for field in table.schema:
        desc = (field.metadata or {}).get(b"description", b"").decode()
        assert desc == expected[field.name], (name, field.name)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    for key in ("attention_dynamics_version", "git_commit", "config_hash", "created_utc"):
        assert key in meta, (name, key)
    assert meta["config_hash"] == plan.hash
    assert table.num_rows > 0


def test_runs_content(test_run):
    wd, plan, _, _ = test_run
    runs = pq.read_table(wd / "results" / "tables" / "runs.parquet").to_pandas()
    assert len(runs) == plan.n_simulations() == 20
    assert (runs["status"] == "ok").all(), runs[["status", "reason"]]
    assert not runs["censored"].any()
    assert set(runs["sweep"]) == {"pairs", "staircase"}
    # the seed index gives the same initial data at every β: same d_min/alpha, same cell group
    pairs = runs[runs["sweep"] == "pairs"]
    assert pairs.groupby(["model", "seed"])["group_id"].nunique().max() == 1
    assert sorted(pairs["beta"].unique()) == [8.0, 10.0, 12.0]


def test_energy_plateaus_match_sum_of_squared_masses(test_run):
    """Physical fact: on each plateau Ē ≈ Σ_a m_a² (docs/science.md §1, §4), within 1e-3."""
    wd, _, _, _ = test_run
    tables = wd / "results" / "tables"
    lt = pq.read_table(tables / "lifetimes.parquet").to_pandas()
    tr = pq.read_table(tables / "trajectories.parquet").to_pandas()
    key = ["sweep", "cell_id", "beta", "seed"]
    checked = 0
    for k, plateaus in lt.groupby(key):
        traj = tr.set_index(key).loc[k]
        t = traj["time"].to_numpy()
        e = traj["energy"].to_numpy()
        for _, p in plateaus.iterrows():
            lo = max(p["t_open"], 1.0)
            mid = np.sqrt(lo * p["t_close"])  # geometric middle of the plateau
            inside = (t > lo) & (t < p["t_close"])
            if not inside.any():
                continue
            i = np.flatnonzero(inside)[np.argmin(np.abs(np.log(t[inside] / mid)))]
            assert abs(e[i] - p["sum_mass_sq"]) < 1e-3, (k, p.to_dict(), e[i])
            checked += 1
    assert checked >= 20
    # and the levels are the expected ones for equal masses: 1/2 (pairs); 1/4, 3/8, 1/2 (k = 4)
    levels = sorted(np.unique(np.round(lt["sum_mass_sq"], 6)))
    assert levels == [0.25, 0.375, 0.5]
    # after the last merge the energy is 1
    last = tr.sort_values("time").groupby(key).tail(1)
    assert np.allclose(last["energy"], 1.0, atol=1e-9)


def test_fits_against_theory(test_run):
    wd, _, _, _ = test_run
    fits = pq.read_table(wd / "results" / "tables" / "fits.parquet").to_pandas()
    assert len(fits) == 6  # (2 pairs groups + 1 staircase group) x (escape, first_merge)
    fm = fits[(fits["sweep"] == "pairs") & (fits["quantity"] == "first_merge")]
    assert (fm["status"] == "ok").all() and (fm["n_obs"] == 9).all() and (fm["n_censored"] == 0).all()
    # the simulations reproduce the exact two-point-cluster ODE: same finite-β slope
    assert np.allclose(fm["c"], fm["ode_slope"], rtol=0.02), fm[["c", "ode_slope"]]
    assert np.allclose(fm["theory_slope"], 1.0, atol=1e-9)  # 1 − cos(π/2)
    assert (fm["c_lo"] <= fm["c"]).all() and (fm["c"] <= fm["c_hi"]).all()
    st = fits[fits["sweep"] == "staircase"]
    assert (st["status"] == "too_few_beta").all()  # one β: reported, not dropped


def test_info_prints_provenance_of_aggregated_table(test_run):
    """`attention-dynamics info results/tables/runs.parquet` (GitHub issue 6, item 6)."""
    import datetime as dt

    import attention_dynamics
    from attention_dynamics.pipeline.io import git_commit

    wd, plan, _, _ = test_run
    path = wd / "results" / "tables" / "runs.parquet"
    out = subprocess.run([sys.executable, "-m", "attention_dynamics", "info", str(path)], capture_output=True,
                         text=True, timeout=60, cwd=wd)
    assert out.returncode == 0, out.stderr
    fields = dict(re.findall(r"^  (\w+)\s+(.*)$", out.stdout, re.M))
    assert out.stdout.startswith(f"{path}: {plan.n_simulations()} rows, ")
    assert fields["attention_dynamics_version"] == attention_dynamics.__version__
    assert fields["git_commit"] == git_commit(ROOT) and re.fullmatch(r"[0-9a-f]{40}|", fields["git_commit"])
    # the commit with a dirty flag: `git describe --always --dirty` of this checkout now
    describe = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=ROOT,
                              capture_output=True, text=True).stdout.strip()
    assert fields["git_describe"] == describe and fields["git_dirty"] == str(describe.endswith("-dirty")).lower()
    versions = dict(v.split(" ") for v in fields["versions"].split(", "))
    import numpy
    import pandas
    import snakemake

    assert versions["numpy"] == numpy.__version__ and versions["pandas"] == pandas.__version__
    assert versions["snakemake"] == snakemake.__version__ and versions["python"] == sys.version.split()[0]
    config_text = out.stdout.split("  config                      (YAML below)\n", 1)[1]
    config_text = "\n".join(line[4:] for line in config_text.splitlines() if line.startswith("    "))
    assert yaml.safe_load(config_text) == yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    assert fields["config_hash"] == plan.hash
    created = dt.datetime.fromisoformat(fields["created_utc"])
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 3600
    assert json.loads(fields["sweeps"]) == sorted(plan.sweeps) and fields["n_cells"] == str(len(plan.cells))


def test_rerun_does_nothing(test_run):
    wd, _, _, _ = test_run
    out = snakemake(wd, "-n", "--configfile", str(ROOT / "config" / "test.yaml"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Nothing to be done" in out.stdout + out.stderr, (out.stdout + out.stderr)[-3000:]


def _dry_run_jobs(wd: Path, cfg: dict) -> dict[str, int]:
    """Jobs per rule that `snakemake -n` plans for ``cfg`` in ``wd`` (empty: nothing to be done)."""
    path = wd / "changed.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    out = snakemake(wd, "-n", "--configfile", str(path), "--quiet", "rules")
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    jobs = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)\s*$", text, re.M) if rule != "total"}
    assert jobs or "Nothing to be done" in text, text[-3000:]
    return jobs


def _changed(**edits) -> dict:
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    for dotted, value in edits.items():
        *parents, last = dotted.split("__")
        node = cfg
        for k in parents:
            node = node[k]
        node[last] = value
    return cfg


def test_reruns_are_minimal(test_run):
    """Each rule's params carry only the config it depends on (issue 15, item 2): a description re-runs
    only the summary (whose landing page shows it); a new β runs the new cells and what reads all cells;
    a reproduction setting re-runs that reproduction (and the summary) only."""
    wd, plan, _, _ = test_run
    assert _dry_run_jobs(wd, _changed(sweeps__pairs__description="edited", sweeps__staircase__description="")) == {
        "summary": 1, "all": 1}
    # the two new cells go to a new chunk (chunks never change: workflow/rules/simulate.smk)
    assert _dry_run_jobs(wd, _changed(sweeps__pairs__beta=[8, 10, 12, 14])) == {
        "chunk_cells": 1, "simulate_chunk": 1, "simulate_cell": 2, "aggregate": 1, "fits": 1,
        "plots": len(plan.sweeps), "summary": 1, "all": 1}
    assert _dry_run_jobs(wd, _changed(limits={"max_cells": 100})) == {}
    assert _dry_run_jobs(wd, _changed(reproductions__phase_diagram__n_times=9)) == {
        "phase_diagram": 1, "summary": 1, "all": 1}
    repro = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())["reproductions"]
    emergence = dict(repro["emergence"], betas=[*repro["emergence"]["betas"], 15])
    assert _dry_run_jobs(wd, _changed(reproductions__emergence=emergence)) == {
        "emergence_cell": 1, "emergence": 1, "emergence_growth": 1, "summary": 1, "all": 1}
    meanfield = dict(repro["meanfield"], betas=[*repro["meanfield"]["betas"], 8])
    assert _dry_run_jobs(wd, _changed(reproductions__meanfield=meanfield)) == {
        "meanfield_noise": 2, "meanfield": 1, "emergence_growth": 1, "summary": 1, "all": 1}
    assert _dry_run_jobs(wd, _changed(reproductions__staircase__record_every=40)) == {
        "staircase_authors": 1, "summary": 1, "all": 1}


def report_contents(path: Path) -> tuple[str, dict]:
    """The landing page (HTML) and the results (path -> {caption, mime_type, data_uri, ...}) of a
    Snakemake report.html."""
    html = path.read_text()
    desc = json.loads(re.search(r"^\s*var workflow_desc = (.*);\s*$", html, re.M).group(1))
    results = json.loads(re.search(r"^\s*var results = (\{.*\});\s*$", html, re.M).group(1))
    return desc, results


def data_of(result: dict) -> bytes:
    import base64

    return base64.b64decode(result["data_uri"].split("base64,", 1)[1])


def test_report_landing_page_summary_and_figures(test_run):
    """`snakemake --report`: the landing page says what the run did, the summary is an HTML table
    inside the report, figures are PNGs with captions in plain words that state their settings."""
    wd, plan, _, _ = test_run
    out = snakemake(wd, "--configfile", str(ROOT / "config" / "test.yaml"), "--report", "report.html")
    assert out.returncode == 0, out.stderr[-3000:]
    desc, results = report_contents(wd / "report.html")
    # landing page: the run's facts, computed from the plan and the tables
    assert "what this run did" in desc
    assert f"2 sweeps, {len(plan.cells)} grid cells, {plan.n_simulations()} simulations" in desc
    assert "20 finished, 0 failed, 0 censored" in desc and "paper reproductions: GKPR24 staircase" in desc
    assert "β ∈ {8, 10, 12}; 3 seeds per cell; horizon t_max = 1e12" in desc
    assert f"Config hash {plan.hash}" in desc and ">Headline</h" in desc
    assert "First-merge time" in desc and "BPA24: l* clusters emerge" in desc  # the headline
    # the summary: an HTML page with tables, not a Markdown download
    summary = results[f"{plan.results}/summary.html"]
    assert summary["mime_type"] == "text/html"
    page = data_of(summary).decode()
    assert "<h2>Headline</h2>" in page and page.count("<table") >= 5 and "first plateau Ē(θ₀)" in page
    # figures: PNG only (the PDFs stay files), every sweep figure and reproduction
    assert {r["mime_type"] for p, r in results.items() if p != f"{plan.results}/summary.html"} == {"image/png"}
    for s in plan.sweeps:
        for k in KINDS:
            fig = results[f"{plan.results}/plots/{s}/{k}.png"]
            assert data_of(fig)[:8] == b"\x89PNG\r\n\x1a\n"
            assert f"sweep {s}" in fig["caption"] and "Settings: " in fig["caption"]
            assert (wd / plan.results / "plots" / s / f"{k}.pdf").read_bytes()[:5] == b"%PDF-"
    for fig in ("staircase_authors", "emergence", "phase_diagram"):
        assert "Settings: " in results[f"{plan.results}/plots/reproductions/{fig}.png"]["caption"]
    assert "β ∈ {2000, 4000}, lr = 1e-5" in results[f"{plan.results}/plots/reproductions/staircase_authors.png"][
        "caption"]
    # captions: no raw markup (e^{...}, Σ_a m_a²) and no citation of the internal notebook
    for r in results.values():
        assert "^{" not in r["caption"] and "_a m_a" not in r["caption"] and "SCIENCE." not in r["caption"]


def table_dictionary(path: Path, results: Path) -> dict[str, str]:
    """The column dictionary that should describe the Parquet file ``path`` of a results folder."""
    from attention_dynamics.pipeline.cell import TABLES as CELL_TABLES
    from attention_dynamics.results import TABLES

    rel = path.relative_to(results)
    if rel.parts[0] == "tables":
        assert path.stem in TABLES, f"{rel}: a table the registry (attention_dynamics.results.TABLES) lacks"
        return table_columns(path.stem)
    if rel.parts[0] == "cells":
        return CELL_TABLES[path.stem]
    if rel.parts[:2] == ("reproductions", "emergence"):
        return table_columns("emergence")
    if rel.parts[:2] == ("reproductions", "emergence_spectra"):
        return table_columns("emergence_spectra")
    if rel.parts[:2] == ("reproductions", "meanfield"):
        return table_columns({"rates": "meanfield", "noise": "meanfield_emergence",
                              "profiles": "meanfield_profiles"}[rel.parts[2]])
    raise AssertionError(f"{rel}: undocumented Parquet file")


def test_every_parquet_file_matches_its_column_dictionary(test_run):
    """Every Parquet file the workflow wrote carries exactly the columns and descriptions of the
    dictionaries that docs/tables.md is generated from, and the full provenance."""
    import attention_dynamics
    from attention_dynamics.pipeline.io import git_describe

    wd, plan, _, _ = test_run
    results = wd / plan.results
    files = sorted(results.rglob("*.parquet"))
    names = {p.stem for p in (results / "tables").glob("*.parquet")}
    from attention_dynamics.results import TABLES

    assert names == set(TABLES), "every table of the registry is written by config/test.yaml"
    config = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    for path in files:
        expected = table_dictionary(path, results)
        table = pq.read_table(path)
        assert table.schema.names == list(expected), path
        for field in table.schema:
            assert (field.metadata or {}).get(b"description", b"").decode() == expected[field.name], (path, field)
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        assert meta["attention_dynamics_version"] == attention_dynamics.__version__, path
        assert meta["git_describe"] == git_describe(ROOT) and meta["config_hash"] == plan.hash, path
        assert set(json.loads(meta["versions"])) >= {"python", "numpy", "scipy", "pandas", "pyarrow", "snakemake"}
        assert yaml.safe_load(meta["config"]) == config, path
    assert len(files) > len(names)  # per-cell tables included


# a user's sweep config: one sweep, no `reproductions:` section
ONE_SWEEP = """\
results: {results}
sweeps:
  mine:
    model: usa
    init: caps
    d: 2
    n: 6
    k: 2
    eps: 1.0e-5
    spacing: 1.5707963267949
    beta: [8.0, 10.0]
    t_max: 1.0e+10
    seeds: 2
"""
REPRODUCTION_RULES = {"staircase_authors", "emergence_cell", "emergence", "phase_diagram", "emergence_growth",
                      "meanfield_rates", "meanfield_noise", "meanfield"}


def job_counts(text: str) -> dict[str, int]:
    """Rule -> job count from Snakemake's 'Job stats' table."""
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)\s*$", text, re.M) if m[0] != "total"}


def test_config_without_reproductions_schedules_none(tmp_path):
    (tmp_path / "mine.yaml").write_text(ONE_SWEEP.format(results="results"))
    out = snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "mine.yaml"), timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = job_counts(out.stdout + out.stderr)
    assert not REPRODUCTION_RULES & set(jobs), jobs
    assert jobs == {"chunk_cells": 1, "simulate_chunk": 1, "simulate_cell": 2, "aggregate": 1, "fits": 1, "plots": 1,
                    "summary": 1, "all": 1}, jobs
    # (configs with the section schedule them: test_paper_dry_run, and the test_run fixture)


def test_results_folder_outside_the_working_directory(tmp_path):
    """`results:` an absolute path elsewhere: every output goes there (nothing in the working
    directory's results/), the summary covers the sweep alone, and the report builds."""
    wd, elsewhere = tmp_path / "wd", tmp_path / "elsewhere" / "res"
    wd.mkdir()
    (wd / "mine.yaml").write_text(ONE_SWEEP.format(results=elsewhere))
    out = snakemake(wd, "--configfile", str(wd / "mine.yaml"), "--cores", "2")
    assert out.returncode == 0, out.stderr[-3000:]
    assert not (wd / "results").exists()
    assert {p.name for p in (elsewhere / "tables").iterdir()} == {f"{t}.parquet" for t in TABLES}
    summary = (elsewhere / "summary.md").read_text()
    assert "## Headline" in summary and "4 simulations in 1 sweep: 4 ok, 0 failed" in summary
    assert "staircase" not in summary.lower() and "BPA24" not in summary  # no reproduction rows
    out = snakemake(wd, "--configfile", str(wd / "mine.yaml"), "--report", "report.html")
    assert out.returncode == 0, out.stderr[-3000:]
    desc, results = report_contents(wd / "report.html")
    assert "1 sweep, 2 grid cells, 4 simulations" in desc and "no paper reproductions" in desc
    assert set(results) == {f"{elsewhere}/summary.html", *(f"{elsewhere}/plots/mine/{k}.png" for k in KINDS)}


def test_load_results(test_run):
    """attention_dynamics.load_results: every table, categoricals, provenance and column docs in attrs."""
    import pandas as pd

    import attention_dynamics as ad

    wd, plan, _, _ = test_run
    tables = ad.load_results(wd / "results")
    assert list(tables)[:5] == TABLES and len(tables) == 14
    runs, fits = tables["runs"], tables["fits"]
    for col in ("sweep", "model", "init", "status"):
        assert isinstance(runs[col].dtype, pd.CategoricalDtype), col
    assert set(runs["model"].cat.categories) == {"sa", "usa"}
    assert runs.attrs["provenance"]["config_hash"] == plan.hash and "numpy" in runs.attrs["provenance"]["versions"]
    assert runs.attrs["columns"]["escape_time"] == table_columns("runs")["escape_time"]
    assert ad.load_results(wd / "results", ["fits"]).keys() == {"fits"}
    with pytest.raises(FileNotFoundError):
        ad.load_results(wd / "nowhere")


@pytest.mark.parametrize("lib", ["pandas", "polars", "duckdb"])
def test_readme_one_liners(test_run, lib):
    """The README's pandas, polars and DuckDB one-liners, exactly as printed, in the working directory
    of a run (polars and DuckDB are test-extra dependencies: skipped where not installed)."""
    import pandas as pd

    module = pytest.importorskip(lib)
    wd, _, _, _ = test_run
    readme = (ROOT / "README.md").read_text().split("## Reading the results", 1)[1].split("\n## ", 1)[0]
    start = {"pandas": "fits = pd.read_parquet(", "polars": "fits = pl.read_parquet(", "duckdb": "fits = duckdb.sql("}
    line = next(x.split("#")[0].strip() for x in readme.splitlines() if x.strip().startswith(start[lib]))
    fits = pq.read_table(wd / "results" / "tables" / "fits.parquet").to_pandas()
    cwd = os.getcwd()
    os.chdir(wd)
    try:
        scope = {"pd": pd, "pl": module, "duckdb": module}
        exec(line, scope)
    finally:
        os.chdir(cwd)
    got = scope["fits"].to_pandas() if lib == "polars" else scope["fits"]
    assert list(got.columns) == list(fits.columns) and len(got) == len(fits)
    key = ["sweep", "group_id", "quantity"]
    assert np.allclose(got.sort_values(key)["c"].to_numpy(dtype=float), fits.sort_values(key)["c"].to_numpy(),
                       equal_nan=True)


def test_docs_tables_md_is_current():
    text = (ROOT / "docs" / "tables.md").read_text()
    assert text == tables_markdown(), "docs/tables.md is stale: python -m attention_dynamics.pipeline.aggregate " \
                                      "--markdown docs/tables.md"


def test_paper_dry_run(tmp_path):
    """config/paper.yaml: the DAG builds quickly and holds >= 20,000 simulations."""
    plan = sw.check_config(yaml.safe_load((ROOT / "config" / "paper.yaml").read_text()), check_results=False)
    assert plan.n_simulations() >= 20_000
    t0 = time.perf_counter()
    out = snakemake(tmp_path, "-n", "--configfile", str(ROOT / "config" / "paper.yaml"), "--quiet", "rules")
    elapsed = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    m = re.search(r"^simulate_cell\s+(\d+)\s*$", text, re.M)
    assert m, text[-3000:]
    assert int(m.group(1)) == len(plan.cells)
    assert REPRODUCTION_RULES <= set(job_counts(text))  # paper.yaml has a reproductions section
    n_sims = sum(c.seeds for c in plan.cells)
    print(f"paper dry run: {len(plan.cells)} cells, {n_sims} simulations, {elapsed:.1f} s")
    assert elapsed < 60  # target 15 s on an idle 2-core machine; generous for loaded CI runners


BAD_CONFIGS = {
    "unknown_key": ("sweeps:\n  a:\n    n: 8\n    k: 2\n    betta: 3.0\n", "sweeps.a.betta"),
    "beta_nonpositive": ("sweeps:\n  a:\n    n: 8\n    k: 2\n    beta: [5.0, -1.0]\n", "sweeps.a.beta"),
    "duplicate_sweep": ("sweeps:\n  a:\n    n: 8\n  a:\n    n: 16\n", "sweeps.a"),
    "n_less_than_k": ("sweeps:\n  a:\n    n: 2\n    k: 3\n", "sweeps.a.n"),
    "results_not_writable": ("results: blocker/results\nsweeps:\n  a:\n    n: 8\n    k: 2\n", "results"),
    "results_is_the_working_directory": ("results: .\nsweeps:\n  a:\n    n: 8\n    k: 2\n", "results"),
    "n_beyond_the_machine": ("sweeps:\n  a:\n    n: 10000000\n", "sweeps.a.n"),
    "alias_bomb": ("".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i else "x"] * 9) + "]\n" for i in range(10))
                   + "sweeps: {a: {}}\n", "a6"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_stops_snakemake_before_any_job(tmp_path, case):
    text, key = BAD_CONFIGS[case]
    (tmp_path / "blocker").write_text("a file where the results folder should go")
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    out = snakemake(tmp_path, "--configfile", str(cfg), "--cores", "1", timeout=120)
    assert out.returncode != 0
    msg = out.stdout + out.stderr
    assert f"config key {key}" in msg or f"config key '{key}'" in msg, msg[-3000:]
    assert not (tmp_path / "results").exists()  # no job ran, nothing was written
    assert "simulate_cell" not in msg


def test_workflow_lists_every_rule_file():
    text = (ROOT / "Snakefile").read_text()
    listed = re.findall(r'^\s+"([\w.-]+\.smk)",', text, re.M)
    on_disk = sorted(p.name for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    assert sorted(listed) == on_disk, "add new workflow/rules/*.smk files to RULE_FILES in the Snakefile"


def test_cells_json_is_what_the_rule_passes():
    plan = sw.check_config(yaml.safe_load((ROOT / "config" / "test.yaml").read_text()), check_results=False)
    cell = plan.cells[0]
    d = json.loads(cell.json)
    assert d["sweep"] == cell.sweep and {k: d[k] for k in sw.CELL_KEYS} == cell.params


@pytest.mark.slow
def test_default_sweep_slope_within_5_percent(tmp_path):
    """The default sweep end to end (minutes): two point-like clusters, c within 5% of 1 − cos D."""
    t0 = time.perf_counter()
    plan = sw.check_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), check_results=False)
    targets = sweep_targets(plan)
    out = snakemake(tmp_path, "--configfile", str(ROOT / "config" / "config.yaml"), "--cores", "2",
                    "--scheduler", "greedy", targets=targets, timeout=1800)
    elapsed = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr[-5000:]
    fits = pq.read_table(tmp_path / "results" / "tables" / "fits.parquet").to_pandas()
    pairs = fits[(fits["k"] == 2) & (fits["quantity"] == "first_merge")]
    assert len(pairs) >= 8 and (pairs["status"] == "ok").all() and (pairs["n_censored"] == 0).all()
    assert (abs(pairs["slope_ratio"] - 1) < 0.05).all(), pairs[["sweep", "model", "d", "n", "c", "theory_slope"]]
    # and the simulations reproduce the exact finite-β slope of the two collapsed caps
    assert (abs(pairs["c"] - pairs["ode_slope"]) < 5e-4).all(), pairs[["sweep", "model", "d", "n", "c", "ode_slope"]]
    print(f"default sweep: {elapsed:.0f} s; slope ratios {sorted(pairs['slope_ratio'].round(4))}; "
          f"c − ode_slope {sorted((pairs['c'] - pairs['ode_slope']).round(6))}")
    again = snakemake(tmp_path, "-n", "--configfile", str(ROOT / "config" / "config.yaml"), targets=targets)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_meanfield_and_finite_n_targets_of_the_test_config(test_run):
    """config/test.yaml makes meanfield.parquet for d = 2 and 3 (and the finite-n tables and figures) in
    under a minute of CPU (rules in workflow/rules/meanfield.smk; columns: test_every_parquet_file_…)."""
    wd, plan, _, _ = test_run
    res = wd / plan.results
    for f in ("meanfield_heatmap", "meanfield_peaks", "growth_rates", "emergence_selection"):
        assert (res / "plots" / "reproductions" / f"{f}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f
        assert (res / "plots" / "reproductions" / f"{f}.pdf").read_bytes()[:5] == b"%PDF-", f
    rates = pq.read_table(res / "tables" / "meanfield.parquet").to_pandas()
    assert sorted(rates["d"].unique()) == [2, 3]
    assert (rates[rates["d"] == 2]["rel_error"].abs() < 1e-6).all()
    assert (rates[rates["d"] == 3]["rel_error"].abs() < 1e-4).all()
    em = pq.read_table(res / "tables" / "meanfield_emergence.parquet").to_pandas()
    fig4 = em[(em["d"] == 2) & (em["beta"] == 5.0)]
    assert len(fig4) == 2 and (fig4["n_peaks"] == 3).all()
    growth = pq.read_table(res / "tables" / "emergence_growth.parquet").to_pandas()
    assert set(growth["beta"]) == {5.0, 10.0} and growth["growth_rate"].notna().any()
    bench = res / "benchmarks" / "reproductions"
    files = [bench / "meanfield.tsv", *bench.glob("meanfield/**/*.tsv")]
    cpu = sum(float(f.read_text().splitlines()[-1].split("\t")[-1]) for f in files)
    assert len(files) == 5 and cpu < 60, cpu
    summary = (res / "summary.md").read_text()
    assert "BPA24 Fig. 4" in summary and "BPA24 at finite n" in summary
    assert "most frequent count is l*" not in summary
