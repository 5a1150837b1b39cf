"""attention-dynamics: metastability in self-attention dynamics on the sphere."""
from importlib.metadata import PackageNotFoundError, version as _version

from .engine.dynamics import MODELS, energy, project_tangent, velocity
from .engine.simulate import SimulationResult, simulate
from .results import load_results, load_table

try:
    __version__ = _version("attention-dynamics")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["MODELS", "SimulationResult", "energy", "load_results", "load_table", "project_tangent", "simulate", "velocity",
           "__version__"]
