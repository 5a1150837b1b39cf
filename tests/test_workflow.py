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
TEST_TARGETS = sweep_targets(TEST_PLAN)


@pytest.fixture(scope="module")
def test_run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("wf")
    t0 = time.perf_counter()
    out = snakemake(wd, "--configfile", str(ROOT / "config" / "test.yaml"), "--cores", "2",
                    "--scheduler", "greedy", targets=TEST_TARGETS)
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
    """Physical fact: on each plateau Ē ≈ Σ_a m_a² (SCIENCE §1, §4), within 1e-3."""
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
    assert fields["config_hash"] == plan.hash
    created = dt.datetime.fromisoformat(fields["created_utc"])
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 3600
    assert json.loads(fields["sweeps"]) == sorted(plan.sweeps) and fields["n_cells"] == str(len(plan.cells))


def test_rerun_does_nothing(test_run):
    wd, _, _, _ = test_run
    out = snakemake(wd, "-n", "--configfile", str(ROOT / "config" / "test.yaml"), targets=TEST_TARGETS)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Nothing to be done" in out.stdout + out.stderr, (out.stdout + out.stderr)[-3000:]


def test_report_has_every_plot(test_run):
    wd, plan, _, _ = test_run
    out = snakemake(wd, "--configfile", str(ROOT / "config" / "test.yaml"), "--report", "report.html",
                    targets=TEST_TARGETS)
    assert out.returncode == 0, out.stderr[-3000:]
    html = (wd / "report.html").read_text(errors="replace")
    for s in plan.sweeps:
        for k in KINDS:
            assert f"{k}.png" in html, (s, k)


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
    n_sims = sum(c.seeds for c in plan.cells)
    print(f"paper dry run: {len(plan.cells)} cells, {n_sims} simulations, {elapsed:.1f} s")
    assert elapsed < 60  # target 15 s on an idle 2-core machine; generous for loaded CI runners


BAD_CONFIGS = {
    "unknown_key": ("sweeps:\n  a:\n    n: 8\n    k: 2\n    betta: 3.0\n", "sweeps.a.betta"),
    "beta_nonpositive": ("sweeps:\n  a:\n    n: 8\n    k: 2\n    beta: [5.0, -1.0]\n", "sweeps.a.beta"),
    "duplicate_sweep": ("sweeps:\n  a:\n    n: 8\n  a:\n    n: 16\n", "sweeps.a"),
    "n_less_than_k": ("sweeps:\n  a:\n    n: 2\n    k: 3\n", "sweeps.a.n"),
    "results_not_writable": ("results: blocker/results\nsweeps:\n  a:\n    n: 8\n    k: 2\n", "results"),
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
    print(f"default sweep: {elapsed:.0f} s; slope ratios {sorted(pairs['slope_ratio'].round(4))}")
    again = snakemake(tmp_path, "-n", "--configfile", str(ROOT / "config" / "config.yaml"), targets=targets)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_meanfield_and_finite_n_targets_of_the_test_config(tmp_path):
    """config/test.yaml makes meanfield.parquet for d = 2 and 3 (and the finite-n tables and figures) in
    under a minute of CPU, with documented columns (rules in workflow/rules/meanfield.smk)."""
    from attention_dynamics.reproductions.growth import EMERGENCE_GROWTH_COLUMNS
    from attention_dynamics.reproductions.meanfield import MEANFIELD_TABLES

    tables = {**{k: v[2] for k, v in MEANFIELD_TABLES.items()}, "emergence_growth": EMERGENCE_GROWTH_COLUMNS}
    targets = [f"results/tables/{t}.parquet" for t in tables] + [
        f"results/plots/reproductions/{f}.png" for f in ("meanfield_heatmap", "meanfield_peaks", "growth_rates",
                                                         "emergence_selection")]
    out = snakemake(tmp_path, "--configfile", str(ROOT / "config" / "test.yaml"), "--cores", "2",
                    "--scheduler", "greedy", targets=targets)
    assert out.returncode == 0, out.stderr[-5000:]
    for name, cols in tables.items():
        table = pq.read_table(tmp_path / "results" / "tables" / f"{name}.parquet")
        assert table.schema.names == list(cols), name
        assert all((f.metadata or {}).get(b"description", b"").decode() == cols[f.name] for f in table.schema)
    rates = pq.read_table(tmp_path / "results" / "tables" / "meanfield.parquet").to_pandas()
    assert sorted(rates["d"].unique()) == [2, 3]
    assert (rates[rates["d"] == 2]["rel_error"].abs() < 1e-6).all()
    assert (rates[rates["d"] == 3]["rel_error"].abs() < 1e-4).all()
    em = pq.read_table(tmp_path / "results" / "tables" / "meanfield_emergence.parquet").to_pandas()
    fig4 = em[(em["d"] == 2) & (em["beta"] == 5.0)]
    assert len(fig4) == 2 and (fig4["n_peaks"] == 3).all()
    bench = tmp_path / "results" / "benchmarks" / "reproductions"
    files = [bench / "meanfield.tsv", *bench.glob("meanfield/**/*.tsv")]
    cpu = sum(float(f.read_text().splitlines()[-1].split("\t")[-1]) for f in files)
    assert len(files) == 5 and cpu < 60, cpu
