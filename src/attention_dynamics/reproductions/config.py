"""The ``reproductions:`` config section: defaults, checks, JSON schema and the emergence jobs."""
from __future__ import annotations

import json

import numpy as np

from .emergence import _SOLVERS
from .staircase import AUTHORS_BETAS

__all__ = ["REPRODUCTIONS_DEFAULTS", "reproductions_config", "reproductions_schema", "emergence_cells", "job_config",
           "meanfield_cells", "meanfield_job_config"]

REPRODUCTIONS_DEFAULTS: dict = {
    "staircase": {"betas": list(AUTHORS_BETAS), "lr": 1e-5, "logtime": True, "record_every": 10},
    "emergence": {"d": [2], "n": 2000, "betas": [2.0, 5.0, 8.0, 12.5, 18.0, 25.0, 32.0, 40.0], "seeds": 6,
                  "model": "usa", "theta_c": 0.1, "tight_angle": 0.25, "peak_angle": 0.5, "f": 0.9, "m_min": 0.01,
                  "method": "RK23", "rtol": 1e-3, "power_level": {"2": 0.05, "3": 0.005}, "history_t_max": 0.0,
                  "spectrum_points": 41, "spectrum_span": 1.0, "fit_level": 0.0025, "band": 0.6},
    "phase_diagram": {"betas": {"start": 0.3, "stop": 9.0, "num": 30}, "t_max": 30.0, "n_times": 61, "n": 32,
                      "d": 2, "n_systems": 8, "model": "sa", "threshold": 0.999},
    # BPA24 with the mean-field PDE (attention_dynamics.reproductions.meanfield)
    "meanfield": {"d": [2, 3], "betas": [2.0, 5.0, 8.0, 12.5, 18.0, 25.0, 32.0, 40.0], "seeds": 10, "model": "usa",
                  "convention": "glpr23", "sigma": 0.01, "noise_points": 64, "noise_degree": 16, "l_max_circle": 512,
                  "l_max_sphere": 0, "max_tail_circle": 1e-6, "max_tail_sphere": 1e-3, "horizon": 10.0,
                  "power_level": 0.002, "peak_level": 2.0, "fig4_beta": 5.0, "n_times": 101, "profile_betas": [5.0],
                  "profile_seeds": 1, "profile_theta": 256, "profile_lat": 24, "rate_d": [2, 3],
                  "rate_betas": [1.0, 5.0, 12.0, 30.0], "rate_models": ["usa", "sa"], "rate_degrees": 0,
                  "rate_epsilon": 1e-7, "rate_rtol": 1e-13},
}


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _beta_list(path: str, spec, max_num: int | None = None) -> list[float]:
    if isinstance(spec, dict):
        unknown = set(spec) - {"start", "stop", "num", "scale"}
        if unknown or not {"start", "stop", "num"} <= set(spec):
            raise ValueError(f"{path}: a β range needs start, stop, num[, scale]; got keys {sorted(spec)}")
        for k in ("start", "stop", "num"):
            if not _is_number(spec[k]) or (k == "num" and float(spec[k]) != int(spec[k])):
                raise ValueError(f"{path}.{k}: must be {'an integer' if k == 'num' else 'a number'}, got {spec[k]!r}")
        start, stop, num = float(spec["start"]), float(spec["stop"]), int(spec["num"])
        if not (0 < start <= stop) or num < 1:
            raise ValueError(f"{path}: need 0 < start <= stop and num >= 1, got {spec}")
        if max_num is not None and num > max_num:
            raise ValueError(f"{path}.num: num={num} is above limits.max_cells = {max_num}: raise limits.max_cells "
                             "in the config if your machine can take it")
        if spec.get("scale", "linear") == "log":
            vals = np.geomspace(start, stop, num)
        else:
            vals = np.linspace(start, stop, num)
    else:
        items = spec if isinstance(spec, list) else [spec]
        bad = [v for v in items if not _is_number(v)]
        if bad:
            raise ValueError(f"{path}: must be a number, a list of numbers or a range {{start, stop, num}}; got "
                             f"{bad[0]!r}")
        if max_num is not None and len(items) > max_num:
            raise ValueError(f"{path}: {len(items)} values is above limits.max_cells = {max_num}: raise "
                             "limits.max_cells in the config if your machine can take it")
        vals = np.asarray(items, dtype=float)
    vals = [float(f"{v:.12g}") for v in vals]
    if not vals or any(not (v > 0 and np.isfinite(v)) for v in vals):
        raise ValueError(f"{path}: β values must be positive and finite, got {spec!r}")
    if len(set(vals)) != len(vals):
        raise ValueError(f"{path}: repeated β values {vals}")
    return vals


def _emergence_n(spec, ds: list[int]) -> dict:
    """``reproductions.emergence.n`` → {d: [n, …]}: an integer, a list (the same for every d),
    or a mapping d → integer or list (e.g. ``{2: [2000, 20000, 200000], 3: 2000}``)."""
    def as_list(key, v):
        vals = v if isinstance(v, (list, tuple)) else [v]
        if not vals or not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= 2 for x in vals):
            raise ValueError(f"{key}: invalid value {v!r}; allowed: an integer ≥ 2 or a list of them")
        if len(set(vals)) != len(vals):
            raise ValueError(f"{key}: repeated value in {v!r}")
        return [int(x) for x in vals]

    if isinstance(spec, dict):
        given = {}
        for k, v in spec.items():
            try:
                d = int(k)
            except (TypeError, ValueError):
                d = None
            if d is None or str(k) != str(d) or d not in ds:
                raise ValueError(f"reproductions.emergence.n.{k}: not one of the dimensions "
                                 f"reproductions.emergence.d = {ds}")
            given[d] = as_list(f"reproductions.emergence.n.{k}", v)
        missing = [d for d in ds if d not in given]
        if missing:
            raise ValueError(f"reproductions.emergence.n.{missing[0]}: missing; a mapping needs one entry per "
                             f"dimension in reproductions.emergence.d = {ds}")
        return {d: given[d] for d in ds}
    vals = as_list("reproductions.emergence.n", spec)
    return {d: list(vals) for d in ds}


def _per_dimension(key: str, spec, ds: list[int], ok, allowed: str) -> dict:
    """A number (the same for every d) or a mapping d → number covering every d in ``ds``
    (string keys of a JSON round trip accepted; entries for other d are kept) → {d: float}."""
    def value(k, v):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not ok(float(v)):
            raise ValueError(f"{k}: invalid value {v!r}; allowed: {allowed}, or a mapping d → such a number")
        return float(v)

    if isinstance(spec, dict):
        out = {}
        for k, v in spec.items():
            if not str(k).isdigit():
                raise ValueError(f"{key}.{k}: not a dimension; a mapping needs integer keys d (e.g. {{2: ..., 3: ...}})")
            out[int(k)] = value(f"{key}.{k}", v)
        missing = [d for d in ds if d not in out]
        if missing:
            raise ValueError(f"{key}.{missing[0]}: missing; a mapping needs one entry per dimension in "
                             f"reproductions.emergence.d = {ds} (the default has d = 2 and 3 only)")
        return dict(sorted(out.items()))
    v = value(key, spec)
    return {d: v for d in ds}


def _check_types(part: str, given: dict, defaults: dict) -> None:
    """Every scalar setting has the type of its default (bool, integer, number or text)."""
    for name, value in given.items():
        default, key = defaults[name], f"reproductions.{part}.{name}"
        if (part, name) in (("emergence", "n"), ("emergence", "d")):
            continue  # an integer, a list or (n) a mapping per dimension: checked below
        if isinstance(default, bool):
            ok, what = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, what = _is_number(value) and float(value) == int(value), "an integer"
        elif isinstance(default, float):
            ok, what = _is_number(value) and bool(np.isfinite(value)), "a finite number"
        elif isinstance(default, str):
            ok, what = isinstance(value, str), "a string"
        else:
            continue  # lists, ranges and mappings have their own checks
        if not ok:
            raise ValueError(f"{key}: must be {what}, got {value!r}")


# settings bounded by the sweep config's `limits:` (attention_dynamics.pipeline.sweep.LIMITS_KEYS)
_LIMITED = [("emergence", "seeds", "max_seeds"), ("meanfield", "seeds", "max_seeds"), ("phase_diagram", "n_systems", "max_seeds"),
            ("phase_diagram", "n", "max_n"), ("phase_diagram", "d", "max_d"), ("phase_diagram", "n_times", "max_cells")]


def _check_limits(out: dict, limits: dict) -> None:
    em = out["emergence"]
    for part, name, limit in _LIMITED:
        if out[part][name] > limits[limit]:
            raise ValueError(f"reproductions.{part}.{name}: {name}={out[part][name]} is above limits.{limit} = "
                             f"{limits[limit]}: raise limits.{limit} in the config if your machine can take it")
    for d, ns in em["n"].items():
        limit = "max_n_circle" if d == 2 else "max_n"  # d = 2: Fourier-mode field, O(n) memory
        if max(ns) > limits[limit]:
            raise ValueError(f"reproductions.emergence.n: n={max(ns)} in d={d} is above limits.{limit} = "
                             f"{limits[limit]}: raise limits.{limit} in the config if your machine can take it")
        if d > limits["max_d"]:
            raise ValueError(f"reproductions.emergence.d: d={d} is above limits.max_d = {limits['max_d']}: raise "
                             "limits.max_d in the config if your machine can take it")


def reproductions_config(cfg: dict | None, limits: dict | None = None) -> dict:
    """The ``reproductions:`` config section with defaults filled in and values checked.

    Raises ValueError naming the offending key (``reproductions.<part>.<key>``). With ``limits``
    (the sweep config's ``limits:`` section, filled in), sizes are also checked against them;
    jobs, which get an already checked section, leave it out.
    """
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, dict):
        raise ValueError("reproductions: must be a mapping")
    unknown = set(cfg) - set(REPRODUCTIONS_DEFAULTS)
    if unknown:
        raise ValueError(f"reproductions.{sorted(unknown)[0]}: unknown key; allowed: {sorted(REPRODUCTIONS_DEFAULTS)}")
    out = {}
    for part, defaults in REPRODUCTIONS_DEFAULTS.items():
        given = cfg.get(part) or {}
        if not isinstance(given, dict):
            raise ValueError(f"reproductions.{part}: must be a mapping")
        bad = set(given) - set(defaults)
        if bad:
            raise ValueError(f"reproductions.{part}.{sorted(bad)[0]}: unknown key; allowed: {sorted(defaults)}")
        _check_types(part, given, defaults)
        out[part] = {**defaults, **given}
    st, em, ph = out["staircase"], out["emergence"], out["phase_diagram"]
    max_num = None if limits is None else limits["max_cells"]
    st["betas"] = _beta_list("reproductions.staircase.betas", st["betas"], max_num)
    em["betas"] = _beta_list("reproductions.emergence.betas", em["betas"], max_num)
    ph["betas"] = _beta_list("reproductions.phase_diagram.betas", ph["betas"], max_num)
    ds = em["d"] if isinstance(em["d"], list) else [em["d"]]
    if not ds or not all(_is_number(v) and float(v) == int(v) for v in ds):
        raise ValueError(f"reproductions.emergence.d: must be an integer or a list of integers, got {em['d']!r}")
    em["d"] = [int(v) for v in ds]
    em["n"] = _emergence_n(em["n"], em["d"])
    em["power_level"] = _per_dimension("reproductions.emergence.power_level", em["power_level"], em["d"],
                                       lambda v: 0 < v < 1, "a number in (0, 1)")
    checks = [
        ("staircase.lr", st["lr"] > 0), ("staircase.record_every", int(st["record_every"]) >= 1),
        ("emergence.d", all(v >= 2 for v in em["d"])),
        ("emergence.seeds", int(em["seeds"]) >= 1), ("emergence.model", em["model"] in ("sa", "usa")),
        ("emergence.theta_c", 0 < em["theta_c"] < np.pi), ("emergence.tight_angle", em["tight_angle"] > 0),
        ("emergence.peak_angle", em["peak_angle"] > 0),
        ("emergence.f", 0 < em["f"] <= 1), ("emergence.m_min", 0 < em["m_min"] < 1),
        ("emergence.history_t_max", em["history_t_max"] >= 0),
        ("emergence.method", em["method"] in _SOLVERS), ("emergence.rtol", 0 < em["rtol"] < 1),
        ("phase_diagram.t_max", ph["t_max"] > 0), ("phase_diagram.n_times", int(ph["n_times"]) >= 2),
        ("phase_diagram.n", int(ph["n"]) >= 2), ("phase_diagram.d", int(ph["d"]) >= 2),
        ("phase_diagram.n_systems", int(ph["n_systems"]) >= 1), ("phase_diagram.model", ph["model"] in ("sa", "usa")),
        ("phase_diagram.threshold", -1 < ph["threshold"] < 1),
    ]
    em["spectrum_points"] = int(em["spectrum_points"])  # an integer (checked with the types above)
    checks += [("emergence.spectrum_points", em["spectrum_points"] >= 0),
               ("emergence.spectrum_span", em["spectrum_span"] > 0), ("emergence.fit_level", 0 < em["fit_level"] < 1),
               ("emergence.band", 0 < em["band"] <= 1)]
    for key, ok in checks:
        if not ok:
            part, name = key.split(".")
            raise ValueError(f"reproductions.{key}: invalid value {out[part][name]!r}")
    out["meanfield"] = _meanfield_config(out["meanfield"], None if limits is None else limits["max_cells"])
    if limits is not None:
        _check_limits(out, limits)
    return out


def _choice_list(key: str, v, allowed) -> list:
    vals = v if isinstance(v, (list, tuple)) else [v]
    if not vals or any(x not in allowed for x in vals) or len(set(vals)) != len(vals):
        raise ValueError(f"reproductions.meanfield.{key}: invalid value {v!r}; allowed: a value or a list of distinct "
                         f"values from {sorted(allowed)}")
    return list(vals)


def _meanfield_config(mf: dict, max_num: int | None = None) -> dict:
    """Checks of ``reproductions.meanfield`` (messages name the key and the allowed values)."""
    def bad(key, allowed):
        raise ValueError(f"reproductions.meanfield.{key}: invalid value {mf[key]!r}; allowed: {allowed}")

    mf["d"] = [int(x) for x in _choice_list("d", mf["d"], (2, 3))]
    mf["rate_d"] = [int(x) for x in _choice_list("rate_d", mf["rate_d"], (2, 3))]
    mf["rate_models"] = _choice_list("rate_models", mf["rate_models"], ("usa", "sa"))
    mf["betas"] = _beta_list("reproductions.meanfield.betas", mf["betas"], max_num)
    mf["rate_betas"] = _beta_list("reproductions.meanfield.rate_betas", mf["rate_betas"], max_num)
    mf["profile_betas"] = (_beta_list("reproductions.meanfield.profile_betas", mf["profile_betas"], max_num)
                           if mf["profile_betas"] not in (None, []) else [])
    ints = {"seeds": 1, "noise_points": 3, "noise_degree": 1, "l_max_circle": 0, "l_max_sphere": 0, "n_times": 2,
            "profile_seeds": 0, "profile_theta": 8, "profile_lat": 4, "rate_degrees": 0}
    for key, lo in ints.items():
        v = mf[key]
        if isinstance(v, bool) or not _is_number(v) or float(v) != int(v) or v < lo:
            bad(key, f"an integer ≥ {lo}")
        mf[key] = int(v)
    if mf["model"] not in ("usa", "sa"):
        bad("model", "'usa' or 'sa'")
    if mf["convention"] not in ("glpr23", "gkpr24"):
        bad("convention", "'glpr23' (BPA24's time) or 'gkpr24'")
    positive = ("sigma", "horizon", "peak_level", "fig4_beta")
    for key in positive:
        if not isinstance(mf[key], (int, float)) or isinstance(mf[key], bool) or not (0 < mf[key] < np.inf):
            bad(key, "a positive number")
    for key in ("max_tail_circle", "max_tail_sphere", "power_level"):
        if not isinstance(mf[key], (int, float)) or isinstance(mf[key], bool) or not (0 < mf[key] < 1):
            bad(key, "a number in (0, 1)")
    if not isinstance(mf["rate_epsilon"], (int, float)) or not (0 < mf["rate_epsilon"] <= 1e-3):
        bad("rate_epsilon", "a number in (0, 1e-3] (the perturbation must stay linear)")
    if not isinstance(mf["rate_rtol"], (int, float)) or not (0 < mf["rate_rtol"] <= 1e-6):
        bad("rate_rtol", "a number in (0, 1e-6]")
    if mf["l_max_circle"] and mf["l_max_circle"] < (mf["noise_points"] - 1) // 2:
        bad("l_max_circle", f"0 (512) or an integer ≥ {(mf['noise_points'] - 1) // 2}, the highest degree of the noise "
                            f"on noise_points = {mf['noise_points']} points")
    if mf["l_max_sphere"] and 2 * mf["l_max_sphere"] < 3 * mf["noise_degree"]:
        bad("l_max_sphere", f"0 (the solver's default) or an integer ≥ 3·noise_degree/2 = {1.5 * mf['noise_degree']:g} "
                            "(the initial noise must lie below the spectral-tail band l > 2L/3)")
    if mf["profile_seeds"] > mf["seeds"]:
        bad("profile_seeds", f"an integer ≤ reproductions.meanfield.seeds = {mf['seeds']}")
    mf["fig4_beta"] = float(f"{float(mf['fig4_beta']):.12g}")
    runs = set(mf["betas"]) | {mf["fig4_beta"]}
    missing = [b for b in mf["profile_betas"] if b not in runs]
    if missing:
        bad("profile_betas", f"values among reproductions.meanfield.betas or fig4_beta ({sorted(runs)}); "
                             f"{missing[0]:g} is not run")
    return mf


def reproductions_schema() -> dict:
    """JSON schema (draft 2020-12 compatible) of the ``reproductions:`` config section.

    Mirrors :func:`reproductions_config` (which remains the authority: it also checks
    ranges that JSON schema cannot express, e.g. repeated β values).
    """
    num = {"type": "number"}
    pos = {"type": "number", "exclusiveMinimum": 0}
    beta_range = {"type": "object", "additionalProperties": False, "required": ["start", "stop", "num"],
                  "properties": {"start": pos, "stop": pos, "num": {"type": "integer", "minimum": 1},
                                 "scale": {"enum": ["linear", "log"]}}}
    betas = {"oneOf": [{"type": "array", "items": pos, "minItems": 1}, pos, beta_range]}
    n_int = {"type": "integer", "minimum": 2}
    n_list = {"type": "array", "items": n_int, "minItems": 1, "uniqueItems": True}
    nonneg_int = {"type": "integer", "minimum": 0}
    dims = {"oneOf": [{"enum": [2, 3]}, {"type": "array", "items": {"enum": [2, 3]}, "minItems": 1,
                                         "uniqueItems": True}]}

    def section(props, doc):
        return {"type": "object", "additionalProperties": False, "description": doc, "properties": props}

    return section({
        "staircase": section({"betas": betas, "lr": pos, "logtime": {"type": "boolean"},
                              "record_every": {"type": "integer", "minimum": 1}},
                             "GKPR24 §6 staircase, the authors' configuration (n = 5 on the circle)"),
        "emergence": section({"d": {"oneOf": [{"type": "integer", "minimum": 2},
                                              {"type": "array", "items": {"type": "integer", "minimum": 2},
                                               "minItems": 1}]},
                              "n": {"oneOf": [n_int, n_list, {"type": "object", "minProperties": 1,
                                                              "additionalProperties": False,
                                                              "patternProperties": {"^[0-9]+$": {
                                                                  "oneOf": [n_int, n_list]}}}]},
                              "betas": betas,
                              "seeds": {"type": "integer", "minimum": 1}, "model": {"enum": ["sa", "usa"]},
                              "theta_c": pos, "tight_angle": pos, "peak_angle": pos, "f": pos, "m_min": pos,
                              "method": {"enum": sorted(_SOLVERS)}, "rtol": pos,
                              "power_level": {"oneOf": [pos, {"type": "object", "minProperties": 1,
                                                              "additionalProperties": False,
                                                              "patternProperties": {"^[0-9]+$": pos}}]},
                              "history_t_max": {"type": "number", "minimum": 0},
                              "spectrum_points": {"type": "integer", "minimum": 0}, "spectrum_span": pos,
                              "fit_level": pos, "band": pos},
                             "BPA24 emergence of l* clusters from uniform data; one job per (d, β)"),
        "phase_diagram": section({"betas": betas, "t_max": pos, "n_times": {"type": "integer", "minimum": 2},
                                  "n": {"type": "integer", "minimum": 2}, "d": {"type": "integer", "minimum": 2},
                                  "n_systems": {"type": "integer", "minimum": 1}, "model": {"enum": ["sa", "usa"]},
                                  "threshold": num},
                                 "GLPR23 (β, t) phase diagram"),
        "meanfield": section({
            "d": dims, "betas": betas, "seeds": {"type": "integer", "minimum": 1}, "model": {"enum": ["sa", "usa"]},
            "convention": {"enum": ["glpr23", "gkpr24"]}, "sigma": pos,
            "noise_points": {"type": "integer", "minimum": 3}, "noise_degree": {"type": "integer", "minimum": 1},
            "l_max_circle": nonneg_int, "l_max_sphere": nonneg_int, "max_tail_circle": pos, "max_tail_sphere": pos,
            "horizon": pos, "power_level": pos, "peak_level": pos, "fig4_beta": pos,
            "n_times": {"type": "integer", "minimum": 2},
            "profile_betas": {"oneOf": [{"type": "array", "items": pos}, pos, beta_range]},
            "profile_seeds": nonneg_int, "profile_theta": {"type": "integer", "minimum": 8},
            "profile_lat": {"type": "integer", "minimum": 4}, "rate_d": dims, "rate_betas": betas,
            "rate_models": {"oneOf": [{"enum": ["sa", "usa"]}, {"type": "array", "items": {"enum": ["sa", "usa"]},
                                                                 "minItems": 1, "uniqueItems": True}]},
            "rate_degrees": nonneg_int, "rate_epsilon": pos, "rate_rtol": pos},
            "BPA24 with the mean-field PDE: Fig. 4 and its β sweep (one job per (d, β)), growth rates (one job per d)"),
    }, "paper reproductions (attention_dynamics.reproductions; defaults in REPRODUCTIONS_DEFAULTS)")


def emergence_cells(cfg: dict) -> list[dict]:
    """One Snakemake job per (d, n, β): all seeds inside. Path-safe names via sweep.format_value."""
    from ..pipeline.config import format_value

    em = reproductions_config(cfg)["emergence"]
    return [dict(d=d, n=n, beta=b, path=f"d{d}/n{n}/beta{format_value(b)}")
            for d in em["d"] for n in em["n"][d] for b in em["betas"]]


def meanfield_cells(cfg: dict) -> list[dict]:
    """One Snakemake job per (d, β) of the noise runs (all seeds inside); d = 2 also runs fig4_beta."""
    from ..pipeline.config import format_value

    mf = reproductions_config(cfg)["meanfield"]
    cells = []
    for d in mf["d"]:
        betas = sorted(set(mf["betas"]) | ({mf["fig4_beta"]} if d == 2 else set()))
        cells += [dict(d=d, beta=b, path=f"d{d}/beta{format_value(b)}") for b in betas]
    return cells


def job_config(repro: dict, part: str, **narrow) -> str:
    """JSON of the one part of the checked ``reproductions`` section (:func:`reproductions_config`)
    that a job needs, ``narrow`` replacing some of its settings (an emergence job's own d, n and β).
    A rule passes it as a param, so Snakemake's params trigger re-runs a job only when its own
    settings change (not when another part, another β or a sweep changes)."""
    return json.dumps({part: {**repro[part], **narrow}}, sort_keys=True)


def meanfield_job_config(repro: dict, kind: str, **narrow) -> str:
    """JSON of the ``reproductions.meanfield`` settings a job of ``kind`` uses: "rates" (the ``rate_*``
    keys and the convention) or "noise" (all others), ``narrow`` replacing some (a job's own d and β).
    Unlisted keys take their defaults in the job, so Snakemake's params trigger re-runs only the jobs
    whose own settings changed."""
    mf = repro["meanfield"]
    if kind == "rates":
        keys = [k for k in mf if k.startswith("rate_") or k == "convention"]
    elif kind == "noise":
        keys = [k for k in mf if not k.startswith("rate_")]
    else:
        raise ValueError(f"kind must be 'rates' or 'noise', got {kind!r}")
    return json.dumps({"meanfield": {**{k: mf[k] for k in keys}, **narrow}}, sort_keys=True)
