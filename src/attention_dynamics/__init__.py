"""attention-dynamics: metastability in self-attention dynamics on the sphere.

The public names below are imported on first use (PEP 562), so that ``import attention_dynamics``
and the command line start in milliseconds: numpy, scipy and pandas are loaded only by what needs
them (a per-cell link job, ``--help`` and the Snakefile's config checks never do).
"""
import importlib as _importlib

_LAZY = {
    "MODELS": ".engine.dynamics", "energy": ".engine.dynamics", "project_tangent": ".engine.dynamics",
    "velocity": ".engine.dynamics", "SimulationResult": ".engine.simulate", "simulate": ".engine.simulate",
    "load_results": ".results", "load_table": ".results",
}
__all__ = ["MODELS", "SimulationResult", "energy", "load_results", "load_table", "project_tangent", "simulate",
           "velocity", "__version__"]


def __getattr__(name):
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("attention-dynamics")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            value = "0.0.0+unknown"
    elif name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name], __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
