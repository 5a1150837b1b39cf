"""Sweep configuration: loading, validation, grid expansion, and the per-cell job entry point.

The Snakefile calls :func:`load_plan` once at start-up. It checks the whole config
(unknown keys, types, ranges, cross-key constraints such as n ≥ k, duplicate sweep
names in the YAML file, a writable results folder) and raises :class:`ConfigError`
naming the offending key *before any job is scheduled*. It then expands every sweep
into its grid cells, each with a deterministic relative path, and precomputes what the
rules need, so the DAG is cheap to build.

Defaults of the cell keys are the engine's (``attention_dynamics.pipeline.cell.CELL_DEFAULTS``),
and every expanded cell is also passed through ``cell.validate_cell``, so the config
checks can never be looser than the engine's.

Command line (no Snakemake needed)::

    python -m attention_dynamics.pipeline.sweep check config/config.yaml     # validate + summary
    python -m attention_dynamics.pipeline.sweep schema                       # the JSON schema (YAML)

Each job runs one cell with the package CLI: ``python -m attention_dynamics run-cell``.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from ..engine.dynamics import ENGINES
from .cell import CELL_DEFAULTS, validate_cell
from .config import ConfigError, config_hash, deep_update, digest, format_value, load_yaml_strict, round_sig
from .paths import check_name, check_results_path, check_results_writable

__all__ = [
    "ConfigError", "Key", "CELL_KEYS", "SWEEP_ONLY_KEYS", "TOP_KEYS", "FITS_KEYS", "PLOTS_KEYS", "BETA_RANGE_KEYS",
    "LIMITS_KEYS", "Cell", "Plan", "load_plan", "check_config", "load_yaml_strict", "format_value", "round_sig",
    "config_hash", "json_schema", "schema_yaml", "TABLE_NAMES", "main",
]

TABLE_NAMES = ("runs", "events", "lifetimes", "trajectories")
INITS = ("caps", "gaussian", "uniform")
MODELS = ("sa", "usa")
CENTRES = ("circle", "random")



# --------------------------------------------------------------------------------------
# key tables: the single place where keys, types, defaults and docs live in the package.
# workflow/schemas/config.schema.yaml mirrors them (tests/test_config.py checks they agree).
# --------------------------------------------------------------------------------------
def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _bound(message: str, ok: Callable, **schema):
    """A range check: value -> ``message`` (with ``{x!r}``) or None. Its JSON-schema keywords
    travel with it (``check.schema``), so the generated schema cannot disagree with the check."""
    def check(x):
        if not ok(x):
            return message.format(x=x)
    check.schema = schema
    return check


def _in_open(lo, hi, what=""):
    return _bound(f"must be in ({lo:g}, {hi:g}){what}, got {{x!r}}", lambda x: lo < x < hi,
                  exclusiveMinimum=lo, exclusiveMaximum=hi)


def _at_least(m):
    return _bound(f"must be >= {m}, got {{x!r}}", lambda x: x >= m, minimum=m)


_positive = _bound("must be > 0, got {x!r}", lambda x: x > 0, exclusiveMinimum=0)
_nonneg = _at_least(0)
_spacing = _bound("must be null (2π/k) or an angle in (0, 2π] radians, got {x!r}", lambda x: 0 < x <= 2 * math.pi,
                  exclusiveMinimum=0, maximum=2 * math.pi)
_min_angle = _bound("must be an angle in (0, π] radians, got {x!r}", lambda x: 0 < x <= math.pi,
                    exclusiveMinimum=0, maximum=math.pi)
_min_mass = _bound("must be null (the family default) or a fraction in (0, 1), got {x!r}",
                   lambda x: 0 < x < 1, exclusiveMinimum=0, exclusiveMaximum=1)


@dataclass(frozen=True)
class Key:
    """One config key: its type, default, doc, and which initial data it applies to."""

    name: str
    type: str                      # "enum" | "int" | "float" | "float_or_null" | "masses"
    default: Any
    doc: str
    grid: bool = True              # may be given as a list (a grid axis)
    choices: tuple = ()
    used_by: tuple = INITS         # init kinds for which the key has an effect
    check: Callable | None = None  # value -> error message or None


_D = CELL_DEFAULTS
CELL_KEYS: dict[str, Key] = {k.name: k for k in [
    Key("model", "enum", _D["model"], "dynamics: sa (softmax-normalised) or usa (unnormalised, GKPR24 time "
        "convention e^{β(⟨x,y⟩−1)}/n)", choices=MODELS),
    Key("init", "enum", _D["init"], "initial data: caps (uniform in k caps of radius ε), gaussian (mixture "
        "around k centres, normalised) or uniform (iid on the sphere; k is forced to 1)", choices=INITS),
    Key("d", "int", _D["d"], "ambient dimension; particles live on S^{d−1}", check=_at_least(2)),
    Key("n", "int", _D["n"], "number of particles", check=_at_least(1)),
    Key("k", "int", _D["k"], "number of caps / mixture components (ignored and set to 1 for uniform)",
        check=_at_least(1)),
    Key("beta", "float", _D["beta"], "inverse temperature β > 0: a number, a list, or a range "
        "{start, stop, num[, scale: linear|log]}", check=_positive),
    Key("eps", "float", _D["eps"], "cap radius ε in 1 − cos units (cap angular radius arccos(1 − ε)); "
        "caps only", used_by=("caps",), check=_in_open(0, 1)),
    Key("centres", "enum", _D["centres"], "where the k centres are: circle (on a great circle, see spacing) or "
        "random (iid uniform, pairwise angle ≥ min_angle, drawn per seed)", choices=CENTRES,
        used_by=("caps", "gaussian")),
    Key("spacing", "float_or_null", _D["spacing"], "circle centres: angle (rad) between consecutive centres; null "
        "means 2π/k, which makes k = 2 antipodal (they never merge)", used_by=("caps", "gaussian"),
        check=_spacing),
    Key("min_angle", "float", _D["min_angle"], "random centres: minimum pairwise angle (rad)", used_by=("caps", "gaussian"),
        check=_min_angle),
    Key("masses", "masses", _D["masses"], "per-cluster masses (k positive counts or fractions); null = equal. "
        "Not a grid axis: one list for the whole sweep", grid=False, used_by=("caps", "gaussian")),
    Key("r", "float", _D["r"], "gaussian: the component means are √r·w_q", used_by=("gaussian",), check=_nonneg),
    Key("sigma", "float", _D["sigma"], "gaussian: standard deviation of each component", used_by=("gaussian",),
        check=_positive),
    Key("t_max", "float", _D["t_max"], "horizon of each simulation (must reach the merges: ln T ≈ β(1 − cos D))",
        check=_positive),
    Key("theta_c", "float", _D["theta_c"], "single-linkage angle (rad) defining clusters and merges; must exceed the "
        "initial spread inside a cap", check=_in_open(0, math.pi)),
    Key("delta", "float", _D["delta"], "collapse radius δ (chordal): points closer than δ become one weighted point",
        check=_positive),
    Key("rtol", "float", _D["rtol"], "relative tolerance of the DOP853 integrator", check=_in_open(0, 1)),
    Key("atol", "float", _D["atol"], "absolute tolerance of the DOP853 integrator", check=_positive),
    Key("per_decade", "int", _D["per_decade"], "trajectory samples per decade of time", check=_at_least(1)),
    Key("max_steps", "int", _D["max_steps"], "most solver step attempts (accepted and rejected) per simulation; a "
        "run that needs more stops and is recorded with status failed (the sweep goes on)", check=_at_least(1)),
    Key("min_mass", "float_or_null", _D["min_mass"], "a cluster is macroscopic when it holds at least this fraction "
        "of the particles; smaller ones are stragglers (their joins are absorptions, not merges). null: half the "
        "smallest cap/component's mass fraction (caps, gaussian), max(0.01, 3/n) (uniform)", check=_min_mass),
    Key("max_wall_seconds", "float", _D["max_wall_seconds"], "wall-clock limit per simulation (seconds); a run that "
        "needs more stops and is recorded with status failed (the sweep goes on)", check=_positive),
    Key("engine", "enum", _D["engine"], "integrator implementation: numpy (scipy's DOP853 on the numpy field), numba "
        "(the same stepper and field compiled; merge times equal to ~1e-13) or auto (numba when installed)",
        choices=ENGINES),
]}

SWEEP_ONLY_KEYS: dict[str, Key] = {k.name: k for k in [
    Key("seeds", "int", 10, "number of seeds per grid cell (seed indices 0 … seeds−1)", grid=False,
        check=_at_least(1)),
    Key("description", "str", "", "free text, printed in the start-up summary", grid=False),
]}

BETA_RANGE_KEYS: dict[str, Key] = {k.name: k for k in [
    Key("start", "float", None, "first β (> 0)", grid=False, check=_positive),
    Key("stop", "float", None, "last β (≥ start), included", grid=False, check=_positive),
    Key("num", "int", None, "number of values (≥ 1)", grid=False, check=_at_least(1)),
    Key("scale", "enum", "linear", "spacing of the values: linear or log", grid=False, choices=("linear", "log")),
]}

FITS_KEYS: dict[str, Key] = {k.name: k for k in [
    Key("n_boot", "int", 1000, "bootstrap resamples over seeds (0: no confidence intervals)", grid=False,
        check=_at_least(0)),
    Key("ci", "float", 0.95, "confidence level of the bootstrap intervals", grid=False, check=_in_open(0, 1)),
    Key("seed", "int", 0, "seed of the bootstrap random generator", grid=False, check=_at_least(0)),
]}

PLOTS_KEYS: dict[str, Key] = {k.name: k for k in [
    Key("max_panels", "int", 12, "most panels (fit groups) per page of a figure; the PDF has every page (up to "
        "25), the PNG is the first page and its title says which groups it shows", grid=False, check=_at_least(1)),
    Key("n_betas", "int", 4, "number of β values drawn as separate lines in the staircase, cluster-count "
        "and lifetime plots (spread over the sweep's β range; more than 5: a colour bar)", grid=False,
        check=_at_least(1)),
]}

# Sizes that would exhaust a workstation (memory or time) stop the check; a user with a bigger
# machine raises them in the config's `limits:` section (config/README.md, Limits).
LIMITS_KEYS: dict[str, Key] = {k.name: k for k in [
    Key("max_n", "int", 10_000, "most particles in one simulation (sweeps; reproductions with the direct "
        "field: emergence in d ≥ 3, the phase diagram). The direct field needs about 20·n² bytes "
        "(2 GB at n = 10⁴)", grid=False, check=_at_least(1)),
    Key("max_n_circle", "int", 1_000_000, "most particles of an emergence run on the circle (d = 2, "
        "Fourier-mode field, memory linear in n)", grid=False, check=_at_least(1)),
    Key("max_d", "int", 10_000, "largest dimension d", grid=False, check=_at_least(2)),
    Key("max_seeds", "int", 10_000, "most seeds of one grid cell (also reproductions' seeds and n_systems)",
        grid=False, check=_at_least(1)),
    Key("max_per_decade", "int", 1_000, "most trajectory samples per decade of time", grid=False,
        check=_at_least(1)),
    Key("max_cells", "int", 20_000, "most grid cells (jobs) of all sweeps together; also the most β values or "
        "time points of one reproduction", grid=False, check=_at_least(1)),
    Key("max_simulations", "int", 1_000_000, "most simulations (cells × seeds) of all sweeps together",
        grid=False, check=_at_least(1)),
]}

TOP_KEYS: dict[str, Key] = {k.name: k for k in [
    Key("results", "str", "results", "output folder, relative to the working directory", grid=False),
    Key("base_seed", "int", 0, "entropy of every seed sequence (see config/README.md, Seeds)", grid=False,
        check=_at_least(0)),
    Key("defaults", "mapping", {}, "cell keys (and seeds) applied to every sweep that does not set them",
        grid=False),
    Key("sweeps", "mapping", None, "named sweeps: name -> grid (at least one)", grid=False),
    Key("fits", "mapping", {}, "scaling-law fit settings", grid=False),
    Key("plots", "mapping", {}, "plot settings", grid=False),
    Key("reproductions", "mapping", {}, "paper reproductions (workflow/rules/reproductions.smk); checked by "
        "attention_dynamics.reproductions.reproductions_config", grid=False),
    Key("limits", "mapping", {}, "largest sizes the check accepts (raise them for a bigger machine)", grid=False),
    Key("jobs", "mapping", {}, "how grid cells are packed into simulate_chunk jobs and what they request "
        "(attention_dynamics.pipeline.resources); changes no number", grid=False),
]}

SWEEP_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
# keys always written in a cell's path (in this order; beta last); other grid keys only when they vary
PATH_KEYS = ("model", "init", "d", "n", "k")



# --------------------------------------------------------------------------------------
# value checks
# --------------------------------------------------------------------------------------
def _type_name(v) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping",
            type(None): "null"}.get(type(v), type(v).__name__)


def _yaml_float(x: float) -> str:
    """``x`` written so that YAML 1.1 reads a float: a dot in the mantissa and a signed exponent (1.0e+12)."""
    if x == 0 or 1e-4 <= abs(x) < 1e5 or not math.isfinite(x):
        return repr(x)
    m, e = f"{x:.15e}".split("e")
    m = m.rstrip("0")
    return f"{m}0e{e}" if m.endswith(".") else f"{m}e{e}"


def _check_scalar(path: str, key: Key, v):
    """Type and range of one scalar value; returns the normalised value."""
    if key.type == "enum":
        if not isinstance(v, str) or v not in key.choices:
            raise ConfigError(path, f"must be one of {', '.join(key.choices)}; got {v!r}")
        return v
    if key.type == "str":
        if not isinstance(v, str):
            raise ConfigError(path, f"must be a string, got {_type_name(v)} {v!r}")
        return v
    if key.type == "int":
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                raise ConfigError(path, f"must be an integer, got the number {v!r} (write {int(v)})")
            raise ConfigError(path, f"must be an integer, got {_type_name(v)} {v!r}")
    elif key.type in ("float", "float_or_null"):
        if v is None and key.type == "float_or_null":
            pass
        elif isinstance(v, str):
            hint = ""
            try:
                hint = f" (YAML 1.1 reads a number like '1e-5' or '1.0e12' as a string: write {_yaml_float(float(v))})"
            except ValueError:
                pass
            raise ConfigError(path, f"must be a number, got the string {v!r}{hint}")
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(path, f"must be a number, got {_type_name(v)} {v!r}")
        elif not math.isfinite(v):
            raise ConfigError(path, f"must be finite, got {v!r}")
        else:
            v = float(v)
    elif key.type == "masses":
        if v is None:
            return None
        if not isinstance(v, list) or not v:
            raise ConfigError(path, f"must be null or a non-empty list of positive numbers, got {v!r}")
        for m in v:
            if isinstance(m, bool) or not _finite(m) or m <= 0:
                raise ConfigError(path, f"must be null or a list of positive finite numbers, got {v!r}")
        if not math.isfinite(sum(float(m) for m in v)):
            raise ConfigError(path, f"the masses add up to more than the largest number ({v!r}): give counts "
                                    "or fractions")
        return [round_sig(float(m)) for m in v]
    if key.check is not None and v is not None:
        msg = key.check(v)
        if msg:
            raise ConfigError(path, msg)
    if isinstance(v, float):
        # 12 significant digits (kills 0.30000000000000004), checked *before*: an inclusive bound such
        # as spacing = 2π stays allowed, and the rounded value is used only if it is allowed too
        r = round_sig(v)
        v = r if key.check is None or not key.check(r) else v
    return v


def _human_bytes(x: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if x < 1000 or unit == "PB":
            return f"{x:.3g} {unit}"
        x /= 1000


def _raise_hint(limit: str) -> str:
    return f"raise limits.{limit} in the config if your machine can take it"


def _over_limit(path: str, what: str, limit: str, limits: dict, why: str = "") -> ConfigError:
    return ConfigError(path, f"{what} is above limits.{limit} = {limits[limit]}{why}: {_raise_hint(limit)}")


# memory of one simulation with the direct field, per n² (measured at n = 3000: ≈ 2.5 n × n float64 arrays)
FIELD_BYTES_PER_N2 = 20.0


def _beta_values(path: str, spec, limits: dict) -> list[float]:
    key = CELL_KEYS["beta"]
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - set(BETA_RANGE_KEYS))
        if unknown:
            raise ConfigError(f"{path}.{unknown[0]}", f"unknown key in a β range; allowed keys: "
                                                      f"{', '.join(BETA_RANGE_KEYS)}")
        for req in ("start", "stop", "num"):
            if req not in spec:
                raise ConfigError(f"{path}.{req}", "missing: a β range needs start, stop and num")
        vals = {name: _check_scalar(f"{path}.{name}", BETA_RANGE_KEYS[name], spec.get(name, k.default))
                for name, k in BETA_RANGE_KEYS.items()}
        start, stop, num, scale = vals["start"], vals["stop"], vals["num"], vals["scale"]
        if num > limits["max_cells"]:
            raise _over_limit(f"{path}.num", f"num={num}", "max_cells", limits)
        if stop < start:
            raise ConfigError(f"{path}.stop", f"must be >= start ({start:g}), got {stop:g}")
        if num == 1:
            out = [start]
        elif scale == "log":
            out = [math.exp(math.log(start) + i * (math.log(stop) - math.log(start)) / (num - 1)) for i in range(num)]
        else:
            out = [start + i * (stop - start) / (num - 1) for i in range(num)]
        out = [round_sig(b) for b in out]
        if len(set(out)) != len(out):
            raise ConfigError(path, f"range gives repeated β values {out}: use start < stop or num = 1")
        return out
    values = spec if isinstance(spec, list) else [spec]
    if not values:
        raise ConfigError(path, "empty list: the grid would have no cells")
    out = [_check_scalar(path, key, b) for b in values]
    if len(set(out)) != len(out):
        raise ConfigError(path, f"repeated values in {out}")
    return out


def _axis(path: str, key: Key, spec, limits: dict) -> list:
    if key.name == "beta":
        return _beta_values(path, spec, limits)
    if key.grid and isinstance(spec, list):
        if not spec:
            raise ConfigError(path, "empty list: the grid would have no cells")
        out = [_check_scalar(path, key, v) for v in spec]
        if len(set(map(json.dumps, out))) != len(out):
            raise ConfigError(path, f"repeated values in {spec}")
        return out
    if isinstance(spec, list) and key.type != "masses":
        raise ConfigError(path, f"must be a single value, not a list (it is not a grid axis), got {spec!r}")
    return [_check_scalar(path, key, spec)]


def _check_mapping(path: str, value, allowed: dict, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(path, f"must be a mapping ({what}), got {_type_name(value)} {value!r}")
    for name in value:
        if name not in allowed:
            raise ConfigError(f"{path}.{name}" if path else str(name),
                              f"unknown key; allowed keys{' in ' + path if path else ''}: {', '.join(allowed)}")
    return value


# --------------------------------------------------------------------------------------
# geometry checks (numpy only)
# --------------------------------------------------------------------------------------
def _circle_min_angle(k: int, spacing: float | None) -> float:
    """Smallest angle between k centres j·φ on a circle (φ = spacing, or 2π/k): the angle between
    centres i and j depends on j − i only, so this is a minimum over the k − 1 differences."""
    if k < 2:
        return math.pi
    phi = 2 * math.pi / k if spacing is None else spacing
    return min(min(a, 2 * math.pi - a) for a in ((m * phi) % (2 * math.pi) for m in range(1, k)))


def _split_counts(n: int, masses: list[float]) -> list[int]:
    """Particle counts per cluster, as initial.split_counts computes them (without numpy)."""
    if all(float(m).is_integer() for m in masses) and round(sum(masses)) == n:
        return [int(m) for m in masses]
    raw = [m / sum(masses) * n for m in masses]
    counts = [math.floor(x) for x in raw]
    rest = n - sum(counts)
    order = sorted(range(len(raw)), key=lambda i: -(raw[i] - counts[i]))
    for i in order[:rest]:
        counts[i] += 1
    return counts


def _cap_fraction(rho: float, d: int) -> float:
    """Fraction of S^{d−1} inside a cap of angular radius ρ ≤ π/2 (crude, for a feasibility check)."""
    from scipy.special import betainc  # light enough, only called for random centres

    return 0.5 * float(betainc((d - 1) / 2, 0.5, math.sin(min(rho, math.pi / 2)) ** 2))


# --------------------------------------------------------------------------------------
# the plan
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One grid cell: the job unit (all seeds run in one process)."""

    sweep: str
    path: str          # relative path below <results>/cells/<sweep>/
    params: dict       # full cell dict (every CELL_KEYS key) as passed to run_cell, without "sweep"
    seeds: int
    group: str         # hash of (sweep, params without β): cells of one scaling-law fit

    @property
    def json(self) -> str:
        return json.dumps({"sweep": self.sweep, **self.params}, sort_keys=True, separators=(",", ":"))


@dataclass
class Plan:
    """The validated config and its expanded cells."""

    config: dict                      # normalised: defaults filled in, β ranges expanded
    cells: list[Cell]
    warnings: list[str] = field(default_factory=list)
    horizons: list = field(default_factory=list)  # pipeline.horizon.GroupHorizon per fit group

    def __post_init__(self):
        self.index = {(c.sweep, c.path): c for c in self.cells}

    @property
    def results(self) -> str:
        return self.config["results"]

    @property
    def sweeps(self) -> list[str]:
        return list(self.config["sweeps"])

    @property
    def hash(self) -> str:
        return config_hash(self.config)

    def n_simulations(self, sweep: str | None = None) -> int:
        return sum(c.seeds for c in self.cells if sweep is None or c.sweep == sweep)

    def cell_dir(self, cell: Cell) -> str:
        return f"{self.results}/cells/{cell.sweep}/{cell.path}"

    def cell_files(self, table: str, sweep: str | None = None) -> list[str]:
        return [f"{self.results}/cells/{c.sweep}/{c.path}/{table}.parquet" for c in self.cells
                if sweep is None or c.sweep == sweep]

    def summary(self) -> str:
        lines = [f"config hash {self.hash}; results in {self.results}/"]
        for s in self.sweeps:
            cs = [c for c in self.cells if c.sweep == s]
            desc = self.config["sweeps"][s].get("description", "")
            lines.append(f"  sweep {s}: {len(cs)} cells, {self.n_simulations(s)} simulations, "
                         f"{len({c.group for c in cs})} fit groups{' — ' + desc if desc else ''}")
        lines.append(f"  total: {len(self.cells)} cells, {self.n_simulations()} simulations")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)



# cell keys bounded by a limit (key -> limit); the grid size is bounded by max_cells / max_simulations
_LIMITED = {"n": "max_n", "d": "max_d", "per_decade": "max_per_decade"}


def _expand_sweep(name: str, spec: dict, defaults: dict, warnings: list[str], limits: dict,
                  room: tuple[int, int]) -> tuple[dict, list[Cell]]:
    """Check one sweep and expand it into cells; ``room`` = (cells, simulations) the limits still allow."""
    path = f"sweeps.{name}"
    allowed = {**CELL_KEYS, **SWEEP_ONLY_KEYS}
    _check_mapping(path, spec, allowed, "a sweep: grid keys and seeds")
    merged = {**defaults, **spec}
    where = {k: f"{path}.{k}" if k in spec else (f"defaults.{k}" if k in defaults else f"{path}.{k}")
             for k in allowed}
    seeds = _check_scalar(where["seeds"], SWEEP_ONLY_KEYS["seeds"], merged.get("seeds", 10))
    if seeds > limits["max_seeds"]:
        raise _over_limit(where["seeds"], f"seeds={seeds}", "max_seeds", limits)
    desc = _check_scalar(f"{path}.description", SWEEP_ONLY_KEYS["description"], spec.get("description", ""))
    axes: dict[str, list] = {}
    for key in CELL_KEYS.values():
        axes[key.name] = _axis(where[key.name], key, merged.get(key.name, key.default), limits)
    for kname, limit in _LIMITED.items():
        big = max(axes[kname])
        if big > limits[limit]:
            why = f" (the field would need about {_human_bytes(FIELD_BYTES_PER_N2 * big * big)})" if kname == "n" else ""
            raise _over_limit(where[kname], f"{kname}={big}", limit, limits, why)
    upper = math.prod(len(v) for v in axes.values())
    if upper > room[0]:
        raise ConfigError(path, f"the grid has up to {upper:,} cells (the product of its axis lengths), more than the "
                                f"{room[0]:,} that limits.max_cells = {limits['max_cells']} leaves: "
                                f"{_raise_hint('max_cells')}")
    inits = axes["init"]
    # a key set in the sweep that no init of the sweep uses is a mistake worth stopping for
    for kname in spec:
        key = CELL_KEYS.get(kname)
        if key is not None and not set(key.used_by) & set(inits):
            raise ConfigError(f"{path}.{kname}", f"has no effect with init {', '.join(inits)} "
                                                 f"(it is used by init {', '.join(key.used_by)})")
    if "spacing" in spec and "circle" not in axes["centres"]:
        raise ConfigError(f"{path}.spacing", "has no effect: centres is random (spacing is for circle)")
    if "min_angle" in spec and "random" not in axes["centres"]:
        raise ConfigError(f"{path}.min_angle", "has no effect: centres is circle (min_angle is for random)")
    # cross-key checks, once per distinct combination of the keys involved
    for n, k in itertools.product(axes["n"], axes["k"]):
        if set(inits) - {"uniform"} and n < k:
            raise ConfigError(f"{path}.n", f"n={n} < k={k} (key k): caps/gaussian need at least one particle "
                                           "per cluster")
    masses = axes["masses"][0]
    if set(inits) - {"uniform"}:
        for mm, n, k in itertools.product(axes["min_mass"], axes["n"], axes["k"]):
            if mm is None or n < k or (masses is not None and len(masses) != k):
                continue
            counts = _split_counts(n, masses if masses is not None else [1.0] * k)
            if mm * n * (1 - 1e-9) > max(counts):
                raise ConfigError(f"{path}.min_mass", f"min_mass={mm} exceeds the largest cap/component mass "
                                                      f"fraction {max(counts) / n:.6g} (n={n}, k={k}): no cluster "
                                                      "would be macroscopic")
    if masses is not None:
        for k in axes["k"]:
            if len(masses) != k:
                raise ConfigError(f"{path}.masses", f"has {len(masses)} entries but k={k} (key k)")
        for n in axes["n"]:
            if min(_split_counts(n, masses)) < 1:
                raise ConfigError(f"{path}.masses", f"{masses} would leave an empty cluster with n={n} (key n)")
    if set(inits) & {"caps", "gaussian"}:
        for k, sp in itertools.product(axes["k"], axes["spacing"]):
            if "circle" in axes["centres"] and k >= 2:
                gap = _circle_min_angle(k, sp)
                if gap < 1e-6:
                    raise ConfigError(f"{path}.spacing", f"spacing={sp} puts two of k={k} centres on top of each "
                                                         "other")
                if k == 2 and abs(gap - math.pi) < 1e-9:
                    warnings.append(f"{path}: k=2 with spacing {sp} gives antipodal centres, which never merge "
                                    "(set spacing < π)")
                if "caps" in inits:
                    for eps, th in itertools.product(axes["eps"], axes["theta_c"]):
                        if gap - 2 * math.acos(1 - eps) <= th:
                            warnings.append(f"{path}: caps with spacing {sp}, eps {eps:g} start within theta_c "
                                            f"{th:g} of each other: they are one cluster at t = 0")
        if "random" in axes["centres"]:
            for k, d, ma in itertools.product(axes["k"], axes["d"], axes["min_angle"]):
                if k >= 2 and k * _cap_fraction(ma / 2, d) > 0.5:
                    raise ConfigError(f"{path}.min_angle", f"min_angle={ma} is too large to place k={k} random "
                                                           f"centres in d={d} by rejection")
    if "caps" in inits:
        for eps, th in itertools.product(axes["eps"], axes["theta_c"]):
            if math.acos(1 - eps) >= th:
                warnings.append(f"{path}: theta_c={th:g} does not exceed the cap radius arccos(1 − ε) = "
                                f"{math.acos(1 - eps):.3g} rad (eps={eps:g}): caps may start as several clusters")
    for th, de in itertools.product(axes["theta_c"], axes["delta"]):
        if not de < 2 * math.sin(th / 2):
            if "theta_c" in merged and "delta" not in merged:  # name the key the user set
                raise ConfigError(where["theta_c"], f"theta_c={th} is too small for delta={de} (key delta): the "
                                                    "chord 2 sin(theta_c/2) must exceed delta")
            raise ConfigError(where["delta"], f"delta={de} must be smaller than the chord of theta_c={th}")

    # grid expansion
    order = list(PATH_KEYS) + [k for k in CELL_KEYS if k not in PATH_KEYS and k != "beta"] + ["beta"]
    varying = {k for k in order if len(axes[k]) > 1}
    seen: set[str] = set()
    cells: list[Cell] = []
    for combo in itertools.product(*(axes[k] for k in order)):
        cell = dict(zip(order, combo))
        init = cell["init"]
        for kname, key in CELL_KEYS.items():  # irrelevant keys back to their defaults (dedupe)
            if init not in key.used_by:
                cell[kname] = key.default
        if init != "uniform":
            if cell["centres"] == "circle":
                cell["min_angle"] = CELL_KEYS["min_angle"].default
            else:
                cell["spacing"] = CELL_KEYS["spacing"].default
        else:
            cell["k"] = 1
        canon = json.dumps(cell, sort_keys=True)
        if canon in seen:
            continue
        seen.add(canon)
        parts = []
        for kname in order:
            if kname in PATH_KEYS or kname == "beta" or (kname in varying and _relevant(kname, cell)):
                parts.append(f"{kname}~{format_value(cell[kname])}")
        rel = "/".join(parts)
        try:  # the engine's own checks, so a config can never pass here and fail in a job
            validate_cell(cell)
        except ValueError as exc:
            raise ConfigError(path, f"cell {rel} is rejected by the engine: {exc}") from None
        group = digest({"sweep": name, **{k: v for k, v in cell.items() if k != "beta"}})[:12]
        cells.append(Cell(sweep=name, path=rel, params={k: cell[k] for k in CELL_KEYS}, seeds=seeds, group=group))
    if not cells:
        raise ConfigError(path, "empty grid")
    if len(cells) * seeds > room[1]:
        raise ConfigError(path, f"{len(cells):,} cells × {seeds} seeds = {len(cells) * seeds:,} simulations, more than "
                                f"the {room[1]:,} that limits.max_simulations = {limits['max_simulations']} leaves: "
                                f"{_raise_hint('max_simulations')}")
    normalised = {**{k: (axes[k] if len(axes[k]) > 1 or k == "beta" else axes[k][0]) for k in CELL_KEYS},
                  "seeds": seeds, "description": desc}
    return normalised, cells


def _relevant(kname: str, cell: dict) -> bool:
    key = CELL_KEYS[kname]
    if cell["init"] not in key.used_by:
        return False
    if kname == "spacing":
        return cell["centres"] == "circle"
    if kname == "min_angle":
        return cell["centres"] == "random"
    return True


def check_config(config: dict, *, configfiles=(), check_results: bool = True, horizons: bool = True) -> Plan:
    """Validate ``config`` (and the YAML files it came from) and expand it into a :class:`Plan`.

    Raises :class:`ConfigError` naming the key on the first problem. ``configfiles``
    are re-read with a strict loader to catch duplicate keys (a reused sweep name),
    which a plain YAML load silently drops. ``horizons``: run the horizon pre-flight
    (:mod:`.horizon`; ~1 s for config/paper.yaml), which adds its warnings and fills ``Plan.horizons``.
    """
    for f in configfiles:
        if str(f).endswith((".yaml", ".yml", ".json")) and Path(f).exists():
            load_yaml_strict(f)
    if not isinstance(config, dict):
        raise ConfigError("(top level)", "the config must be a mapping")
    _check_mapping("", config, TOP_KEYS, "the config")
    results = _check_scalar("results", TOP_KEYS["results"], config.get("results", "results"))
    base_seed = _check_scalar("base_seed", TOP_KEYS["base_seed"], config.get("base_seed", 0))
    defaults = _check_mapping("defaults", config.get("defaults"), {**CELL_KEYS, "seeds": SWEEP_ONLY_KEYS["seeds"]},
                              "cell keys applied to every sweep")
    fits_in = _check_mapping("fits", config.get("fits"), FITS_KEYS, "fit settings")
    fits = {k: _check_scalar(f"fits.{k}", key, fits_in.get(k, key.default)) for k, key in FITS_KEYS.items()}
    plots_in = _check_mapping("plots", config.get("plots"), PLOTS_KEYS, "plot settings")
    plots = {k: _check_scalar(f"plots.{k}", key, plots_in.get(k, key.default)) for k, key in PLOTS_KEYS.items()}
    limits_in = _check_mapping("limits", config.get("limits"), LIMITS_KEYS, "largest sizes")
    limits = {k: _check_scalar(f"limits.{k}", key, limits_in.get(k, key.default)) for k, key in LIMITS_KEYS.items()}
    warnings = check_results_path(results)
    sweeps_in = config.get("sweeps")
    if sweeps_in is None:
        raise ConfigError("sweeps", "missing: declare at least one named sweep")
    if not isinstance(sweeps_in, dict):
        raise ConfigError("sweeps", f"must be a mapping name -> sweep, got {_type_name(sweeps_in)}")
    if not sweeps_in:
        raise ConfigError("sweeps", "is empty: declare at least one named sweep")
    lower: dict[str, str] = {}
    sweeps, cells = {}, []
    for name, spec in sweeps_in.items():
        if not isinstance(name, str) or not name or not set(name) <= SWEEP_NAME_CHARS or name[0] in "-_":
            raise ConfigError(f"sweeps.{name}", "a sweep name must start with a letter or digit and use only "
                                                "letters, digits, '-' and '_'")
        check_name(f"sweeps.{name}", name, "a sweep name", room=len(".log"))  # logs/plots/<name>.log
        if name.lower() in lower:
            raise ConfigError(f"sweeps.{name}", f"sweep name reused (same as '{lower[name.lower()]}' up to case; "
                                                "names must be unique)")
        lower[name.lower()] = name
        if not isinstance(spec, dict):
            raise ConfigError(f"sweeps.{name}", f"must be a mapping of grid keys, got {_type_name(spec)} {spec!r}")
        room = (limits["max_cells"] - len(cells), limits["max_simulations"] - sum(c.seeds for c in cells))
        sweeps[name], cs = _expand_sweep(name, spec, defaults, warnings, limits, room)
        cells += cs
    if "reproductions" in config:
        _check_reproductions(config["reproductions"], limits)
    if "jobs" in config:
        _check_jobs(config["jobs"])
    if check_results:
        check_results_writable(results)
    norm = {"results": results, "base_seed": base_seed, "sweeps": sweeps, "fits": fits, "plots": plots,
            "limits": limits}
    predicted = []
    if horizons:  # horizon pre-flight: can t_max reach the merges?
        from .horizon import horizon_warnings, predict

        predicted = predict(cells, base_seed)
        warnings += horizon_warnings(predicted)
    return Plan(config=norm, cells=cells, warnings=warnings, horizons=predicted)


def _check_reproductions(section, limits: dict) -> None:
    """The ``reproductions`` section belongs to attention_dynamics.reproductions: use its checker."""
    try:
        from ..reproductions.config import reproductions_config
    except ImportError:  # pragma: no cover - module not present
        return
    try:
        reproductions_config(section, limits=limits)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        head, _, rest = msg.partition(":")
        key = head if head.startswith("reproductions") and " " not in head else "reproductions"
        raise ConfigError(key, rest.strip() if key == head else msg) from None


def _check_jobs(section) -> None:
    """The ``jobs`` section belongs to attention_dynamics.pipeline.resources: use its checker."""
    from .resources import jobs_config

    try:
        jobs_config(section)
    except ValueError as exc:
        key, _, rest = str(exc).partition(": ")
        raise ConfigError(key, rest) from None


def load_plan(config: dict, configfiles=(), horizons: bool = True) -> Plan:
    """What the Snakefile calls: :func:`check_config` with the config files snakemake loaded
    (``horizons=False`` in job processes, which need the cells but not the pre-flight)."""
    return check_config(config, configfiles=configfiles, horizons=horizons)


# --------------------------------------------------------------------------------------
# JSON schema (workflow/schemas/config.schema.yaml is generated from the key tables)
# --------------------------------------------------------------------------------------
def _scalar_schema(key: Key) -> dict:
    t = key.type
    if t == "enum":
        return {"type": "string", "enum": list(key.choices)}
    if t == "str":
        return {"type": "string"}
    if t == "masses":
        return {"type": ["array", "null"], "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 1}
    out = {"type": {"int": "integer", "float_or_null": ["number", "null"]}.get(t, "number")}
    out.update(getattr(key.check, "schema", {}))  # the range, from the check itself
    return out


def _key_schema(key: Key) -> dict:
    base = _scalar_schema(key)
    if key.name == "beta":
        rng = {"type": "object", "additionalProperties": False, "required": ["start", "stop", "num"],
               "description": "range of β values (linear or log spaced, both ends included)",
               "properties": {k.name: {**_scalar_schema(k), "description": k.doc,
                                       **({"default": k.default} if k.default is not None else {})}
                              for k in BETA_RANGE_KEYS.values()}}
        one = {"oneOf": [base, {"type": "array", "items": base, "minItems": 1, "uniqueItems": True}, rng]}
    elif key.grid:
        one = {"oneOf": [base, {"type": "array", "items": base, "minItems": 1, "uniqueItems": True}]}
    else:
        one = base
    out = {"description": key.doc + ("" if key.used_by == INITS else f" (used by init {', '.join(key.used_by)})")}
    if key.default is not None or key.type in ("float_or_null", "masses"):
        out["default"] = key.default
    out.update(one)
    return out


def json_schema() -> dict:
    """The config's JSON schema, built from the key tables (written to workflow/schemas/)."""
    cell = {name: _key_schema(k) for name, k in CELL_KEYS.items()}
    sweep = {"type": "object", "additionalProperties": False,
             "description": "one named sweep: a grid over the cell keys (a value or a list of values each; "
                            "beta may also be a range), with seeds per cell",
             "properties": {**cell, **{n: _key_schema(k) for n, k in SWEEP_ONLY_KEYS.items()}}}
    section = {
        "defaults": {"type": "object", "additionalProperties": False, "default": {},
                     "description": TOP_KEYS["defaults"].doc,
                     "properties": {**cell, "seeds": _key_schema(SWEEP_ONLY_KEYS["seeds"])}},
        "sweeps": {"type": "object", "minProperties": 1, "description": TOP_KEYS["sweeps"].doc,
                   "propertyNames": {"pattern": "^[A-Za-z0-9][A-Za-z0-9_-]*$"}, "additionalProperties": sweep},
        "fits": {"type": "object", "additionalProperties": False, "default": {}, "description": TOP_KEYS["fits"].doc,
                 "properties": {n: _key_schema(k) for n, k in FITS_KEYS.items()}},
        "plots": {"type": "object", "additionalProperties": False, "default": {},
                  "description": TOP_KEYS["plots"].doc,
                  "properties": {n: _key_schema(k) for n, k in PLOTS_KEYS.items()}},
        "reproductions": {"type": "object", "default": {}, "description": TOP_KEYS["reproductions"].doc},
        "limits": {"type": "object", "additionalProperties": False, "default": {},
                   "description": TOP_KEYS["limits"].doc,
                   "properties": {n: _key_schema(k) for n, k in LIMITS_KEYS.items()}},
        "jobs": _jobs_schema(),
    }
    props = {"results": {**_key_schema(TOP_KEYS["results"]), "minLength": 1},
             "base_seed": _key_schema(TOP_KEYS["base_seed"]), **section}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "attention-dynamics sweep configuration",
            "description": "Generated by `python -m attention_dynamics.pipeline.sweep schema` from the key tables in "
                           "src/attention_dynamics/pipeline/sweep.py (tests check they agree). Documented in "
                           "config/README.md.",
            "type": "object", "additionalProperties": False, "required": ["sweeps"], "properties": props}


def _jobs_schema() -> dict:
    from .resources import JOBS_DEFAULTS, JOBS_DOCS

    types = {"cpu_minutes": {"type": "number", "exclusiveMinimum": 0},
             "cells_per_job": {"type": "integer", "minimum": 1},
             "runtime_factor": {"type": "number", "minimum": 1},
             "attempt_growth": {"type": "number", "minimum": 1},
             "model": {"type": ["string", "null"]}}
    return {"type": "object", "additionalProperties": False, "default": {}, "description": TOP_KEYS["jobs"].doc,
            "properties": {k: {"description": JOBS_DOCS[k], "default": JOBS_DEFAULTS[k], **types[k]}
                           for k in JOBS_DEFAULTS}}


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


def schema_yaml() -> str:
    """The text of workflow/schemas/config.schema.yaml."""
    head = ("# JSON schema of the sweep config. GENERATED: python -m attention_dynamics.pipeline.sweep schema\n"
            "# > workflow/schemas/config.schema.yaml (tests/test_config.py checks it is up to date).\n")
    return head + yaml.dump(json_schema(), Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True, width=100)


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------
def _check(args) -> int:
    try:
        config: dict = {}
        for f in args.configfile:
            data = load_yaml_strict(f)
            if not isinstance(data, dict):
                raise ConfigError("(top level)", "the config must be a mapping")
            deep_update(config, data)
        plan = check_config(config, configfiles=args.configfile, check_results=not args.no_results_check)
    except ConfigError as exc:
        print(f"ConfigError: {exc}", file=sys.stderr)
        return 2
    print(plan.summary())
    from .horizon import horizon_report

    print(horizon_report(plan.horizons))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m attention_dynamics.pipeline.sweep", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="validate config files (merged in order) and print the sweep summary")
    c.add_argument("configfile", nargs="+")
    c.add_argument("--no-results-check", action="store_true", help="skip the writable-results-folder check")
    c.set_defaults(func=_check)
    sc = sub.add_parser("schema", help="print the config JSON schema as YAML")
    sc.set_defaults(func=lambda a: print(schema_yaml(), end="") or 0)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
