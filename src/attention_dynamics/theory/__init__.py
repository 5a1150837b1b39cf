"""Theory: closed forms, quadratures and the mean-field PDE solvers (:mod:`.meanfield`)."""
# Transitional shim. This package shadows the module ``attention_dynamics/theory.py`` (a
# package directory wins over a module of the same name), so until the reorganisation moves
# that module into this package, its public names are loaded from the file and re-exported
# here; without this, ``from attention_dynamics.theory import two_cluster_merge_time`` breaks.
# Delete everything below this comment once theory.py lives inside the package.
import importlib.util as _ilu
from pathlib import Path as _Path

_legacy = _Path(__file__).resolve().parent.parent / "theory.py"
if _legacy.is_file():
    _spec = _ilu.spec_from_file_location(f"{__name__}._legacy_module", _legacy)
    _mod = _ilu.module_from_spec(_spec)
    _spec.loader.exec_module(_mod)
    __all__ = list(_mod.__all__)
    globals().update({_k: getattr(_mod, _k) for _k in __all__})
    del _spec, _mod
del _ilu, _Path, _legacy
