"""Config loading, validation and grid expansion (attention_dynamics.pipeline.sweep) and the JSON schema."""
from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from attention_dynamics.pipeline import sweep as sw

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
CONFIGS = ["config/config.yaml", "config/paper.yaml", "config/test.yaml"]


def base_config(**sweep) -> dict:
    spec = {"model": "usa", "init": "caps", "d": 3, "n": 8, "k": 2, "eps": 1.0e-5, "spacing": 1.0,
            "beta": [4.0, 6.0], "seeds": 2}
    spec.update(sweep)
    return {"results": "results", "sweeps": {"a": spec}}


def check(cfg, **kw):
    kw.setdefault("check_results", False)
    return sw.check_config(cfg, **kw)


# ---------------------------------------------------------------------------------------------
# the key tables, the schema file, the engine defaults and the README agree
# ---------------------------------------------------------------------------------------------
def test_schema_file_is_generated_from_key_tables():
    assert SCHEMA.read_text() == sw.schema_yaml(), (
        "workflow/schemas/config.schema.yaml is stale: run "
        "`python -m attention_dynamics.pipeline.sweep schema > workflow/schemas/config.schema.yaml`")


def test_key_defaults_match_engine_defaults():
    from attention_dynamics.pipeline.cell import CELL_DEFAULTS

    assert set(sw.CELL_KEYS) == set(CELL_DEFAULTS)
    for name, key in sw.CELL_KEYS.items():
        assert key.default == CELL_DEFAULTS[name], name


def test_readme_documents_every_key():
    text = (ROOT / "config" / "README.md").read_text()
    keys = [*sw.TOP_KEYS, *sw.CELL_KEYS, *sw.SWEEP_ONLY_KEYS, *sw.FITS_KEYS, *sw.PLOTS_KEYS, *sw.BETA_RANGE_KEYS,
            *sw.LIMITS_KEYS]
    missing = [k for k in keys if f"`{k}`" not in text]
    assert not missing, f"config/README.md does not document {missing}"


@pytest.mark.parametrize("path", CONFIGS)
def test_shipped_configs_are_valid(path):
    cfg = yaml.safe_load((ROOT / path).read_text())
    jsonschema.Draft202012Validator(yaml.safe_load(SCHEMA.read_text())).validate(cfg)
    plan = check(cfg, configfiles=[ROOT / path])
    assert plan.cells and not [w for w in plan.warnings if "antipodal" in w]


def test_schema_rejects_what_the_checker_rejects():
    schema = yaml.safe_load(SCHEMA.read_text())
    v = jsonschema.Draft202012Validator(schema)
    for bad in (base_config(betta=3), base_config(beta=0), base_config(beta=[]), base_config(n="sixty"),
                base_config(d=1), base_config(eps=1.5), base_config(t_max=0), base_config(model="USA"),
                {"sweeps": {}}, {"sweeps": {"a b": {}}}):
        assert not v.is_valid(bad), bad


# ---------------------------------------------------------------------------------------------
# every bad input stops with a message naming the key
# ---------------------------------------------------------------------------------------------
BAD = [
    # (config, key named in the message, another fragment of the message)
    ({**base_config(), "resutls": "x"}, "resutls", "allowed keys"),
    (base_config(betta=[1.0]), "sweeps.a.betta", "allowed keys"),
    ({**base_config(), "fits": {"nboot": 3}}, "fits.nboot", "n_boot"),
    (base_config(beta=0), "sweeps.a.beta", "> 0"),
    (base_config(beta=-1.5), "sweeps.a.beta", "> 0"),
    (base_config(beta=[5.0, math.inf]), "sweeps.a.beta", "finite"),
    (base_config(beta=math.nan), "sweeps.a.beta", "finite"),
    (base_config(beta={"start": 0, "stop": 5, "num": 3}), "sweeps.a.beta.start", "> 0"),
    (base_config(beta={"start": 5, "stop": 2, "num": 3}), "sweeps.a.beta.stop", ">= start"),
    (base_config(beta={"start": 5, "stop": 8}), "sweeps.a.beta.num", "missing"),
    (base_config(beta={"start": 5, "stop": 8, "num": 3, "step": 1}), "sweeps.a.beta.step", "allowed keys"),
    (base_config(beta=[]), "sweeps.a.beta", "empty"),
    (base_config(n=[]), "sweeps.a.n", "empty"),
    ({"sweeps": {}}, "sweeps", "at least one"),
    ({"results": "r"}, "sweeps", "missing"),
    (base_config(n="sixty"), "sweeps.a.n", "integer"),
    (base_config(d=2.5), "sweeps.a.d", "integer"),
    (base_config(seeds=2.0), "sweeps.a.seeds", "integer"),
    (base_config(eps="1e-5"), "sweeps.a.eps", "1.0e-05"),
    (base_config(model="USA"), "sweeps.a.model", "sa, usa"),
    (base_config(init=["caps", "cubes"]), "sweeps.a.init", "caps, gaussian, uniform"),
    (base_config(n=2, k=3), "sweeps.a.n", "k=3"),
    (base_config(n=[8, 2], k=[2, 3]), "sweeps.a.n", "k=3"),
    (base_config(d=1), "sweeps.a.d", ">= 2"),
    (base_config(eps=0.0), "sweeps.a.eps", "(0, 1)"),
    (base_config(eps=1.0), "sweeps.a.eps", "(0, 1)"),
    (base_config(eps=[1e-3, 2.0]), "sweeps.a.eps", "(0, 1)"),
    (base_config(t_max=0.0), "sweeps.a.t_max", "> 0"),
    (base_config(t_max=-1.0), "sweeps.a.t_max", "> 0"),
    (base_config(t_max=math.inf), "sweeps.a.t_max", "finite"),
    (base_config(theta_c=4.0), "sweeps.a.theta_c", "(0, 3.14"),
    (base_config(seeds=0), "sweeps.a.seeds", ">= 1"),
    (base_config(masses=[1, 2, 3]), "sweeps.a.masses", "k=2"),
    (base_config(masses=[1, -2]), "sweeps.a.masses", "positive"),
    (base_config(init="uniform"), "sweeps.a.eps", "no effect"),
    (base_config(sigma=0.1), "sweeps.a.sigma", "no effect"),
    (base_config(k=3, spacing=math.pi), "sweeps.a.spacing", "on top of each other"),
    (base_config(delta=0.5), "sweeps.a.delta", "theta_c"),
    (base_config(beta=[4.0, 4.0]), "sweeps.a.beta", "repeated"),
    ({"defaults": {"t_max": -3.0}, **base_config()}, "defaults.t_max", "> 0"),
    ({"defaults": {"seed": 3}, **base_config()}, "defaults.seed", "allowed keys"),
    ({"sweeps": {"bad name": {}}}, "sweeps.bad name", "letters, digits"),
    ({"sweeps": {"Pairs": base_config()["sweeps"]["a"], "pairs": base_config()["sweeps"]["a"]}}, "sweeps.pairs",
     "reused"),
    ({**base_config(), "base_seed": -1}, "base_seed", ">= 0"),
    ({**base_config(), "plots": {"max_panels": 0}}, "plots.max_panels", ">= 1"),
]


@pytest.mark.parametrize("cfg,key,fragment", BAD, ids=[f"{k}:{f}" for _, k, f in BAD])
def test_bad_config_names_the_key(cfg, key, fragment):
    with pytest.raises(sw.ConfigError) as err:
        check(copy.deepcopy(cfg))
    msg = str(err.value)
    assert f"config key '{key}'" in msg, msg
    assert fragment in msg, msg


def test_duplicate_sweep_name_in_yaml(tmp_path):
    f = tmp_path / "dup.yaml"
    f.write_text("sweeps:\n  pairs:\n    n: 8\n  other:\n    n: 8\n  pairs:\n    n: 16\n")
    with pytest.raises(sw.ConfigError) as err:
        check(yaml.safe_load(f.read_text()), configfiles=[f])
    assert "'pairs'" in str(err.value) and "twice" in str(err.value) and "lines 2 and 6" in str(err.value)


def test_results_dir_not_writable(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    cfg = {**base_config(), "results": str(blocker / "results")}
    with pytest.raises(sw.ConfigError) as err:
        sw.check_config(cfg)
    assert "config key 'results'" in str(err.value) and "not writable" in str(err.value)
    if os.geteuid() != 0:  # root writes anywhere: only a non-root user can test permissions
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(sw.ConfigError, match="not writable"):
            sw.check_config({**base_config(), "results": str(ro / "results")})
    ok = sw.check_config({**base_config(), "results": str(tmp_path / "a" / "b")})
    assert not (tmp_path / "a").exists()  # checking creates nothing
    assert ok.results.endswith("a/b")


# ---------------------------------------------------------------------------------------------
# grid expansion
# ---------------------------------------------------------------------------------------------
def test_format_value_is_deterministic():
    assert sw.format_value(5.0) == "5"
    assert sw.format_value(0.1 + 0.2) == "0.3"
    assert sw.format_value(1e-5) == "1e-05"
    assert sw.format_value(1.5707963267949) == "1.57079632679"
    assert sw.format_value(None) == "none"
    assert sw.format_value(12) == "12"


def test_beta_range_and_rounding():
    plan = check(base_config(beta={"start": 0.1, "stop": 0.3, "num": 3}))
    betas = [c.params["beta"] for c in plan.cells]
    assert betas == [0.1, 0.2, 0.3]
    assert [c.path.rsplit("/", 1)[1] for c in plan.cells] == ["beta~0.1", "beta~0.2", "beta~0.3"]
    plan = check(base_config(beta={"start": 1, "stop": 100, "num": 3, "scale": "log"}))
    assert [c.params["beta"] for c in plan.cells] == [1.0, 10.0, 100.0]
    assert check(base_config(beta=7)).cells[0].params["beta"] == 7.0


def test_grid_expansion_paths_and_counts():
    cfg = base_config(model=["sa", "usa"], d=[2, 3], n=[8, 16], k=2, beta={"start": 5, "stop": 40, "num": 8},
                      seeds=10, theta_c=[0.1, 0.2])
    plan = check(cfg)
    assert len(plan.cells) == 2 * 2 * 2 * 2 * 8
    assert plan.n_simulations() == 10 * len(plan.cells)
    paths = [c.path for c in plan.cells]
    assert len(set(paths)) == len(paths)
    assert paths[0] == "model~sa/init~caps/d~2/n~8/k~2/theta_c~0.1/beta~5"
    assert len({c.group for c in plan.cells}) == len(plan.cells) // 8  # β is the only axis inside a group
    # the same config gives the same plan (paths, hash)
    again = check(copy.deepcopy(cfg))
    assert [c.path for c in again.cells] == paths and again.hash == plan.hash
    for c in plan.cells:
        assert set(c.params) == set(sw.CELL_KEYS)
        assert plan.index[c.sweep, c.path] is c


def test_irrelevant_keys_collapse_and_uniform_forces_k1():
    cfg = {"sweeps": {"mix": {"init": ["caps", "uniform"], "k": [2, 3], "n": 8, "eps": [1e-3, 1e-4],
                              "beta": 5.0, "seeds": 1}}}
    plan = check(cfg)
    caps = [c for c in plan.cells if c.params["init"] == "caps"]
    uni = [c for c in plan.cells if c.params["init"] == "uniform"]
    assert len(caps) == 4 and len(uni) == 1
    assert uni[0].params["k"] == 1 and "eps~" not in uni[0].path
    assert all("eps~" in c.path for c in caps)


def test_defaults_section_applies_and_sweep_overrides():
    cfg = {"defaults": {"t_max": 1e12, "seeds": 4}, "sweeps": {"a": {"n": 8, "k": 2, "spacing": 1.0, "beta": 5.0},
                                                               "b": {"n": 8, "k": 2, "spacing": 1.0, "beta": 5.0,
                                                                     "seeds": 2, "t_max": 1e15}}}
    plan = check(cfg)
    a, b = plan.cells
    assert a.params["t_max"] == 1e12 and a.seeds == 4
    assert b.params["t_max"] == 1e15 and b.seeds == 2


def test_antipodal_pair_warns():
    plan = check(base_config(spacing=None))
    assert any("antipodal" in w for w in plan.warnings)


def test_cell_json_round_trips_through_engine():
    from attention_dynamics.pipeline.cell import canonical_cell

    plan = check(base_config())
    import json

    cell = json.loads(plan.cells[0].json)
    assert canonical_cell(cell)["beta"] == 4.0 and cell["sweep"] == "a"


def test_cli_check(tmp_path):
    out = subprocess.run([sys.executable, "-m", "attention_dynamics.pipeline.sweep", "check", "--no-results-check",
                          str(ROOT / "config" / "test.yaml")], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "simulations" in out.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("sweeps:\n  a:\n    beta: -1.0\n")
    out = subprocess.run([sys.executable, "-m", "attention_dynamics.pipeline.sweep", "check", str(bad)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2 and "config key 'sweeps.a.beta'" in out.stderr
