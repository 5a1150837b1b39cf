"""Config files: strict YAML loading, the error type, canonical values and the config hash.

The one module that both the sweep plan (:mod:`attention_dynamics.pipeline.sweep`) and the
reproductions' config section (:mod:`attention_dynamics.reproductions.config`) import, so
neither imports the other.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

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


# a config file is a few hundred values; YAML aliases that expand beyond this are an "alias bomb"
MAX_YAML_VALUES = 1_000_000


def _dotted(path: str, name) -> str:
    return f"{path}.{name}" if path else str(name)


def _expanded_sizes(root) -> dict[int, int]:
    """Number of values each node of a composed YAML document stands for once its aliases are
    expanded (a node reached through an alias counts again): id(node) -> count. Each node is
    visited once (aliases share their node), so this is linear in the size of the *file*.
    Raises :class:`ConfigError` on a recursive alias (a value that contains itself)."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in sizes:
            continue
        pairs = (node.value if isinstance(node, yaml.MappingNode) else
                 [(None, v) for v in node.value] if isinstance(node, yaml.SequenceNode) else [])
        kids = [(k, f"{path}[{i}]" if k is None else _dotted(path, getattr(k, "value", "?")), v)
                for i, (k, v) in enumerate(pairs)]
        if id(node) in open_:  # second visit: the children are done
            open_.discard(id(node))
            total = 1 + sum(sizes[id(v)] + (sizes[id(k)] if k is not None else 0) for k, _, v in kids)
            sizes[id(node)] = min(total, 10 * MAX_YAML_VALUES)
            continue
        open_.add(id(node))
        stack.append((node, path))
        for k, sub, v in kids:
            for child in ((v,) if k is None else (k, v)):
                if id(child) in open_:
                    raise ConfigError(sub or "(top level)", "a YAML alias refers to a value that contains it "
                                                            "(a recursive alias): write the value out")
                if id(child) not in sizes:
                    stack.append((child, sub))
    return sizes


def _alias_bomb(root):
    """(dotted path, count) of the outermost mapping key whose value expands to more than
    :data:`MAX_YAML_VALUES` values, or None."""
    sizes = _expanded_sizes(root)
    if sizes.get(id(root), 0) <= MAX_YAML_VALUES:
        return None
    node, path = root, ""
    while isinstance(node, yaml.MappingNode):
        big = [(k, v) for k, v in node.value if sizes[id(v)] > MAX_YAML_VALUES]
        if not big:
            break
        key, node = big[0]
        path = _dotted(path, key.value if isinstance(key, yaml.ScalarNode) else "?")
    return path or "(top level)", sizes[id(node)]


def _duplicate_keys(root):
    """First mapping key that appears twice anywhere in a composed YAML node: (dotted path, name, lines).

    Every node is visited once, even when aliases reach it many times (linear time)."""
    seen_nodes: set[int] = set()
    stack = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        children = []
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, value_node in node.value:
                name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                sub = _dotted(path, name)
                if name is not None:
                    if (key_node.tag, name) in seen:
                        return sub, name, (seen[key_node.tag, name], key_node.start_mark.line + 1)
                    seen[key_node.tag, name] = key_node.start_mark.line + 1
                children.append((value_node, sub))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        stack.extend(reversed(children))  # depth first, in file order
    return None


def _path_at(text: str) -> str:
    """Dotted key path at the point where a YAML parser stops (for syntax errors)."""
    stack: list[list] = []  # [kind, key or index, expecting a key]
    try:
        for ev in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                stack.pop()
                continue
            if not isinstance(ev, yaml.NodeEvent):
                continue
            top = stack[-1] if stack else None
            if top and top[0] == "map":
                if top[2]:  # this node is a key
                    top[1], top[2] = (ev.value if isinstance(ev, yaml.ScalarEvent) else "?"), False
                    if isinstance(ev, yaml.ScalarEvent):
                        continue
                else:
                    top[2] = True
            elif top:
                top[1] += 1
            if isinstance(ev, yaml.MappingStartEvent):
                stack.append(["map", None, True])
            elif isinstance(ev, yaml.SequenceStartEvent):
                stack.append(["seq", -1, None])
    except yaml.YAMLError:
        pass
    path = ""
    for kind, at, _ in stack:
        if kind == "map" and at is not None:
            path = _dotted(path, at)
        elif kind == "seq" and at >= 0:
            path += f"[{at}]"
    return path or "(top level)"


def _read_text(path) -> str:
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError("(top level)", f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}, "
                                         f"column {col}): save it as UTF-8") from None


def load_yaml_strict(path: str | os.PathLike) -> dict:
    """Load a YAML config, raising :class:`ConfigError` on anything a plain load gets wrong (JSON is YAML).

    - text that is not UTF-8, or not YAML: the message gives the line, the column and the key there;
    - a key given twice (e.g. a sweep name used twice): a plain YAML load silently keeps the last
      one; here it is an error naming the key's dotted path and both lines;
    - aliases expanding to more than :data:`MAX_YAML_VALUES` values (an "alias bomb", which
      would make every later walk over the config exponentially slow).
    """
    text = _read_text(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(_path_at(text), f"not valid YAML ({path}{where}: {problem})") from None
    if root is None:
        return {}
    bomb = _alias_bomb(root)
    if bomb:
        raise ConfigError(bomb[0], f"its YAML aliases expand to more than {MAX_YAML_VALUES:,} values in {path} "
                                   "(an alias bomb?): write the values out")
    found = _duplicate_keys(root)
    if found:
        where, name, (first, again) = found
        lines = f"lines {first} and {again}" if first != again else f"both on line {first}"
        raise ConfigError(where, f"'{name}' appears twice in {path} ({lines}): keys must be unique, e.g. sweep "
                                 "names (a plain YAML load would silently keep the last one)")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # composed, but not constructible (e.g. an unknown tag)
        raise ConfigError(_path_at(text), f"not valid YAML ({path}: {exc})") from None
    return data if data is not None else {}


def config_hash(config: dict) -> str:
    """Hash of what determines the simulations (base_seed and the normalised sweeps without their
    free-text descriptions), 16 hex digits."""
    sweeps = {name: {k: v for k, v in spec.items() if k != "description"} if isinstance(spec, dict) else spec
              for name, spec in (config.get("sweeps") or {}).items()}
    return digest({"base_seed": config.get("base_seed", 0), "sweeps": sweeps})[:16]


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
