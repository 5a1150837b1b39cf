"""Cells: seeds, determinism, and the Parquet tables (GitHub issue 2, items 3 and 8)."""
from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import attention_dynamics
from attention_dynamics import initial, simulate
from attention_dynamics.pipeline import cell
from attention_dynamics.pipeline import io
from attention_dynamics.engine.simulate import default_record_times

# small and fast: two caps 1.2 rad apart, one merge at t ≈ 1e2
CELL = dict(model="usa", init="caps", n=8, k=2, d=3, beta=8.0, spacing=1.2, eps=1e-3, t_max=1e6, per_decade=4)
PROVENANCE_KEYS = ("attention_dynamics_version", "git_commit", "config_hash", "created_utc")


def _without_wall(row):
    return {k: v for k, v in row.items() if k != "wall_seconds"}


def _same(a, b):
    """Equality of run-row values, NaN == NaN."""
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return a == b


# --------------------------------------------------------------------------------------
# Seeds and determinism (item 3)
# --------------------------------------------------------------------------------------

def test_run_one_same_seed_identical_output():
    r1 = cell.run_one(CELL, 3)
    r2 = cell.run_one(CELL, 3)
    a, b = _without_wall(r1[0]), _without_wall(r2[0])
    assert a.keys() == b.keys()
    assert all(_same(a[k], b[k]) for k in a), {k: (a[k], b[k]) for k in a if not _same(a[k], b[k])}
    for x, y in zip(r1[1:], r2[1:]):
        pd.testing.assert_frame_equal(x, y)
    assert r1[0]["status"] == "ok" and r1[0]["n_merges"] == 1


def test_run_one_different_seed_differs():
    a, b = cell.run_one(CELL, 0), cell.run_one(CELL, 1)
    assert a[0]["first_merge_time"] != b[0]["first_merge_time"]
    assert a[0]["escape_time"] != b[0]["escape_time"]
    ea, eb = a[3]["energy"].to_numpy(), b[3]["energy"].to_numpy()
    assert not np.array_equal(ea, eb)


def _stream(c, seed=0, base_seed=0):
    return cell.seed_sequence(c, seed, base_seed).generate_state(4).tolist()


def _data(c, seed=0):
    return cell.make_initial_data(c, np.random.default_rng(cell.seed_sequence(c, seed)))


@pytest.mark.parametrize("base", [CELL, dict(CELL, centres="random", min_angle=0.6), dict(CELL, init="gaussian"),
                                  dict(CELL, init="uniform")])
@pytest.mark.parametrize("change", [dict(beta=50.0), dict(model="sa"), dict(t_max=1e20), dict(theta_c=0.2),
                                    dict(delta=1e-6), dict(rtol=1e-12), dict(atol=1e-14), dict(per_decade=16),
                                    dict(sweep="other")])
def test_seed_stream_independent_of_beta_and_solver_settings(base, change):
    """Adding a β value (or changing the model / solver settings) leaves the initial data
    of every other cell unchanged (common random numbers across β)."""
    other = dict(base, **change)
    assert _stream(other) == _stream(base)
    a, b = _data(base), _data(other)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.labels, b.labels)


@pytest.mark.parametrize("change", [dict(n=9), dict(d=4), dict(k=3), dict(eps=2e-3), dict(spacing=1.3),
                                    dict(masses=[3, 5]), dict(init="gaussian"), dict(centres="random")])
def test_seed_stream_depends_on_initial_data_parameters(change):
    assert _stream(dict(CELL, **change)) != _stream(CELL)


def test_seed_stream_depends_on_seed_and_base_seed():
    streams = {tuple(_stream(CELL, s, b)) for s in range(3) for b in range(2)}
    assert len(streams) == 6


def test_run_one_same_initial_data_at_every_beta():
    c = dict(CELL, centres="random", min_angle=0.6)
    rows = [cell.run_one(dict(c, beta=b, t_max=1.0), 2)[0] for b in (4.0, 9.0)]
    assert rows[0]["d_min"] == rows[1]["d_min"] and rows[0]["alpha"] == rows[1]["alpha"]
    assert rows[0]["escape_gamma"] != rows[1]["escape_gamma"]  # β does enter where it should


def test_run_one_row_matches_direct_simulation():
    """The run row is a faithful copy of what simulate() returns for the same data
    (no bookkeeping drift, e.g. in max_norm_error), plus the theory columns."""
    c = cell.canonical_cell(CELL)
    row, ev, lt, tr = cell.run_one(CELL, 5)
    data = _data(c, 5)
    res = simulate(data.x, beta=c["beta"], model=c["model"], t_max=c["t_max"], theta_c=c["theta_c"],
                   delta=c["delta"], rtol=c["rtol"], atol=c["atol"], cap_centres=data.centres,
                   cap_eps=c["eps"], cap_labels=data.labels,
                   record_times=default_record_times(c["t_max"], c["per_decade"]))
    for key in ("n_steps", "n_rhs", "n_restarts", "n_collapses", "max_norm_error"):
        assert row[key] == res.stats[key], key
    assert row["max_norm_error"] < 1e-8
    assert row["first_merge_time"] == res.first_merge_time and row["escape_time"] == res.escape_time
    assert row["n_merges"] == len(res.events) == len(ev)
    np.testing.assert_array_equal(ev["time"].to_numpy(), res.merge_times)
    np.testing.assert_array_equal(tr["energy"].to_numpy(), res.trajectory["energy"].to_numpy())
    assert (ev["seed"] == 5).all() and (ev["beta"] == c["beta"]).all() and (ev["cell_id"] == row["cell_id"]).all()
    alpha = np.cos(max(1.2 - 2 * np.arccos(1 - 2 * c["eps"]), 0.0))
    assert row["alpha"] == pytest.approx(alpha, rel=1e-12)
    assert row["escape_bound"] == pytest.approx(c["eps"] / c["n"] * np.exp((1 - alpha) * c["beta"]), rel=1e-12)
    assert row["d_min"] == pytest.approx(1.2, rel=1e-12)


@pytest.mark.parametrize("bad", [dict(beta=-1.0), dict(beta=float("nan")), dict(model="softmax"),
                                 dict(t_max=0.0), dict(d=1), dict(masses=[1.0]), dict(colour="red")])
def test_run_one_rejects_bad_cells(bad):
    with pytest.raises(ValueError):
        cell.run_one(dict(CELL, **bad), 0)


# --------------------------------------------------------------------------------------
# Parquet tables (item 8)
# --------------------------------------------------------------------------------------

def test_run_cell_writes_documented_parquet_tables(tmp_path):
    out = tmp_path / "cell"
    tables = cell.run_cell(dict(CELL, sweep="unit"), 2, str(out), meta={"config_hash": "abc123"})
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(f"{name}.parquet" for name in cell.TABLES)  # nothing else, no temp files
    before = dt.datetime.now(dt.timezone.utc)
    for name, columns in cell.TABLES.items():
        path = out / f"{name}.parquet"
        table = pq.read_table(path)
        assert table.column_names == list(columns)
        for field in table.schema:
            assert field.metadata[b"description"].decode() == columns[field.name]
        meta = io.read_provenance(path)
        for key in PROVENANCE_KEYS:
            assert key in meta
        assert meta["attention_dynamics_version"] == attention_dynamics.__version__
        assert meta["config_hash"] == "abc123"
        assert re.fullmatch(r"[0-9a-f]{40}", meta["git_commit"]) or meta["git_commit"] == ""
        created = dt.datetime.fromisoformat(meta["created_utc"])
        assert created.tzinfo is not None and abs((before - created).total_seconds()) < 3600
        assert json.loads(meta["cell"]) == cell.canonical_cell(dict(CELL, sweep="unit"))
        back = table.to_pandas()
        pd.testing.assert_frame_equal(back, tables[name].reset_index(drop=True), check_dtype=False)
    runs = tables["runs"]
    assert runs["seed"].tolist() == [0, 1] and (runs["status"] == "ok").all()
    assert (runs["sweep"] == "unit").all()
    n_ev = tables["events"].groupby("seed").size()
    assert n_ev.reindex(runs["seed"], fill_value=0).tolist() == runs["n_merges"].tolist()


def test_run_cell_without_merges_still_writes_all_columns(tmp_path):
    tables = cell.run_cell(dict(CELL, t_max=0.5), [4], tmp_path)
    assert len(tables["events"]) == 0
    ev = pq.read_table(tmp_path / "events.parquet")
    assert ev.num_rows == 0 and ev.column_names == list(cell.TABLES["events"])
    assert all(f.metadata[b"description"] for f in ev.schema)
    runs = pq.read_table(tmp_path / "runs.parquet").to_pandas()
    assert bool(runs["censored"].iloc[0]) and np.isnan(runs["first_merge_time"].iloc[0])


def test_write_table_is_atomic_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "t.parquet"
    df = pd.DataFrame({"a": [1.0, 2.0]})
    io.write_table(df, path, columns_doc={"a": "the a column"}, meta={"config_hash": "x"})
    original = path.read_bytes()

    def broken(table, where, *args, **kwargs):
        with open(where, "wb") as fh:
            fh.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(io.pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        io.write_table(pd.DataFrame({"a": [3.0]}), path)
    assert path.read_bytes() == original  # the old complete file is still there
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]  # and no temp file is left
    assert pq.read_table(path).to_pandas()["a"].tolist() == [1.0, 2.0]
