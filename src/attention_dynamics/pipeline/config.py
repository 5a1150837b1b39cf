"""Config files: strict YAML loading, the error type, canonical values and the config hash.

The one module that both the sweep plan (:mod:`attention_dynamics.pipeline.sweep`) and the
reproductions' config section (:mod:`attention_dynamics.reproductions.config`) import, so
neither imports the other.
"""
from __future__ import annotations

import hashlib
import json
import os

import yaml

__all__ = ["ConfigError", "round_sig", "format_value", "digest", "load_yaml_strict", "config_hash", "config_yaml", "deep_update"]


class ConfigError(ValueError):
    """A configuration problem; the message names the config key (dotted path)."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"config key '{key}': {message}")


def round_sig(x: float, sig: int = 12) -> float:
    """``x`` rounded to ``sig`` significant digits (kills 0.30000000000000004)."""
    return float(f"{x:.{sig}g}")


def format_value(v) -> str:
    """Deterministic, path-safe text for a parameter value: 5.0 -> '5', 1e-05 -> '1e-05'."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.12g}"
    return str(v)


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _duplicate_keys(node, path: str = ""):
    """First mapping key that appears twice anywhere in a composed YAML node: (dotted path, name, lines)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for key_node, value_node in node.value:
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            sub = f"{path}.{name}" if path else str(name)
            if name is not None:
                if (key_node.tag, name) in seen:
                    return sub, name, (seen[key_node.tag, name], key_node.start_mark.line + 1)
                seen[key_node.tag, name] = key_node.start_mark.line + 1
            found = _duplicate_keys(value_node, sub)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = _duplicate_keys(item, f"{path}[{i}]")
            if found:
                return found
    return None


def load_yaml_strict(path: str | os.PathLike) -> dict:
    """Load a YAML config, raising :class:`ConfigError` on duplicate keys (JSON is YAML).

    A plain YAML load silently keeps the last of two equal keys (e.g. a sweep name used
    twice); here it is an error naming the key's dotted path and both lines.
    """
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    found = _duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))
    if found:
        where, name, (first, again) = found
        lines = f"lines {first} and {again}" if first != again else f"both on line {first}"
        raise ConfigError(where, f"'{name}' appears twice in {path} ({lines}): keys must be unique, e.g. sweep "
                                 "names (a plain YAML load would silently keep the last one)")
    data = yaml.safe_load(text)
    return data if data is not None else {}


def config_hash(config: dict) -> str:
    """Hash of what determines the simulations (base_seed and the normalised sweeps), 16 hex digits."""
    return digest({"base_seed": config.get("base_seed", 0), "sweeps": config.get("sweeps", {})})[:16]


def config_yaml(config: dict) -> str:
    """The config as YAML text, keys in their order (recorded in every table's provenance)."""
    return yaml.safe_dump(json.loads(json.dumps(config)), sort_keys=False, allow_unicode=True, width=100)


def deep_update(base: dict, new: dict) -> dict:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_update(base[k], v)
        else:
            base[k] = v
    return base
