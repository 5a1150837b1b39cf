"""The two engines (GitHub issue 14): the predictive controller, the compiled kernels and
stepper (numba) against the numpy engine and independent references, and numba's disk cache.

References: numpy's ``exp``; the numpy field (itself tested against docs/science.md §1 literal
formulas in test_engine.py); scipy's DOP853 stepper (coefficients, error norm, dense output);
the two-cluster quadrature of ``theory``; fresh processes for the cache and import checks.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attention_dynamics import initial, simulate
from attention_dynamics.engine import dynamics, stepper
from attention_dynamics.engine.stepper import PredictiveDOP853, new_stepper
from attention_dynamics.theory import twocluster as theory

pytest.importorskip("numba")
from attention_dynamics.engine import kernels  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
MODELS = ("usa", "sa")


# --------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------

def test_exp_matches_numpy_to_two_ulp_and_underflows_like_it():
    v = -np.concatenate([np.linspace(0.0, 50.0, 20001), np.linspace(700.0, 746.0, 4001),
                         np.random.default_rng(0).uniform(0.0, 745.0, 20000), [0.0, 1e-300, 708.4, 745.2, 1e4]])
    got, want = kernels.exp_nonpositive(v), np.exp(v)
    normal = want > np.finfo(float).tiny
    assert np.max(np.abs(got[normal] / want[normal] - 1.0)) <= 2 * np.finfo(float).eps
    # gradual underflow: subnormal results within a few units of the smallest subnormal, zeros where numpy's are
    assert np.max(np.abs(got[~normal] - want[~normal])) <= 4 * 5e-324
    assert np.array_equal(got == 0.0, want == 0.0)
    assert kernels.exp_nonpositive(np.zeros(1))[0] == 1.0


_FIELD_CASES = [(1, 3), (2, 3), (5, 2), (7, 4), (33, 3), (300, 3), (9, 5), (300, 6)]  # (m, d): both code paths, chunks


@pytest.mark.parametrize("m,d", _FIELD_CASES)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("exact", [False, True])
def test_compiled_field_equals_numpy_field(m, d, model, exact):
    rng = np.random.default_rng(m * 10 + d)
    x = rng.standard_normal((m, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    mass = rng.uniform(0.5, 3.0, size=m)
    for beta in (0.3, 20.0, 800.0):  # 800: most weights underflow
        want = dynamics.velocity(x, mass, beta, model, exact=exact)
        got = dynamics.velocity(x, mass, beta, model, exact=exact, engine="numba")
        # round-off bound: row i sums m terms a_ij (x_j − x_i) whose weights carry a relative
        # error ≲ β u from the exponent (in the weighted form) and ≲ m u from the summation
        a = dynamics.attention_weights(x, mass, beta, model)
        size = (a * np.linalg.norm(x[None, :, :] - x[:, None, :], axis=2)).sum(axis=1)
        tol = 4 * (m + 4 * beta) * np.finfo(float).eps * size
        assert np.all(np.abs(got - want) <= tol[:, None])


@pytest.mark.parametrize("model", MODELS)
def test_compiled_field_keeps_collapsed_cluster_drift(model):
    """docs/science.md §5: the cancellation trap (heavy point 63, light point 1, β = 40, 90°): the drift
    e^{−40} is kept to 1e-12, as in test_engine's test for the numpy field."""
    beta, D = 40.0, np.pi / 2
    q = np.linalg.qr(np.random.default_rng(44).standard_normal((3, 3)))[0]
    xa, xb = q[:, 0], np.cos(D) * q[:, 0] + np.sin(D) * q[:, 1]
    v = kernels.velocity(np.vstack([xa, xb]), np.array([63.0, 1.0]), beta, model)
    k = np.exp(beta * (np.cos(D) - 1.0))
    rate_a = k / 64.0 if model == "usa" else k / (63.0 + k)
    want_a = rate_a * (xb - np.cos(D) * xa)
    assert np.linalg.norm(v[0] - want_a) <= 1e-12 * np.linalg.norm(want_a)


@pytest.mark.parametrize("model", MODELS)
def test_compiled_exact_field_is_identical_on_coincident_copies(model):
    """Full system: copies of a point get bit-identical velocities (so they stay coincident
    and no fast intra-group mode appears), and the coincident terms contribute exactly 0."""
    D, beta = 1.2, 40.0
    xa, xb = np.array([1.0, 0.0, 0.0]), np.array([np.cos(D), np.sin(D), 0.0])
    x = np.vstack([np.tile(xa, (3, 1)), np.tile(xb, (5, 1))])
    v = kernels.velocity(x, np.ones(8), beta, model, exact=True)
    assert (v[:3] == v[0]).all() and (v[3:] == v[3]).all()
    two = kernels.velocity(np.vstack([xa, xb]), np.array([3.0, 5.0]), beta, model)
    np.testing.assert_allclose(v[[0, 3]], two, rtol=1e-13, atol=0)


# --------------------------------------------------------------------------------------
# Stepper
# --------------------------------------------------------------------------------------

def _steppers(model, exact, first_step=None, m=6, d=3, beta=15.0, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    mass = rng.uniform(1.0, 3.0, m)

    def fun(t, y):
        z = y.reshape(m, d)
        return dynamics.velocity(z / np.linalg.norm(z, axis=1, keepdims=True), mass, beta, model, exact=exact).ravel()

    kw = dict(rtol=1e-10, atol=1e-12, first_step=first_step)
    return [new_stepper(e, fun, mass, beta, model, exact, 0.0, x.ravel(), 50.0, **kw) for e in ("numpy", "numba")]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("first_step", [None, 0.3])
def test_compiled_stepper_reproduces_scipy_dop853(model, exact, first_step):
    """Same steps, counters and dense output as the numpy stepper, step by step, to the end.

    Step sizes agree only to the round-off of the error estimate: a difference of stages at
    ~rtol of them, moved by 1e-16/rtol ~ 1e-6 relative (and arbitrarily where the error is at
    round-off level, err ≲ 1e-6, which the controller turns into a factor ≤ 10). So the
    solutions are compared at common times through the dense outputs."""
    a, b = _steppers(model, exact, first_step)
    assert isinstance(a, PredictiveDOP853)
    assert a.nfev == b.nfev and a.next_step == pytest.approx(b.next_step, rel=1e-12)
    while a.status == "running":
        assert a.step() is None and b.step() is None
        assert b.status == a.status
        assert b.t == pytest.approx(a.t, rel=1e-2) and b.step_size == pytest.approx(a.step_size, rel=1e-2)
        da, db = a.dense_output(), b.dense_output()
        for t in (a.t_old + 0.3 * a.step_size, a.t_old + 0.77 * a.step_size, a.t):
            np.testing.assert_allclose(db(t), da(t), rtol=0, atol=1e-12)
        np.testing.assert_allclose(db(a.t), a.y, rtol=0, atol=1e-12)
        assert (b.nfev, b.n_accepted, b.n_rejected) == (a.nfev, a.n_accepted, a.n_rejected)
    assert a.status == "finished" and a.t == b.t == 50.0
    assert a.n_accepted > 10 and a.n_rejected > 0  # the comparison covered a real integration
    with pytest.raises(RuntimeError):
        b.step()
    np.testing.assert_allclose(b.dense_output()(np.array([b.t_old, b.t])), np.stack([b._y_old, b.y], axis=1),
                               rtol=0, atol=1e-15)


def test_non_finite_state_fails_like_scipy():
    """A NaN state: the first attempt fails on its non-finite error norm, in both engines (before
    the NaN guard it was rejected until the step underflowed)."""
    a, b = _steppers("usa", False, first_step=0.1)
    for s in (a, b):
        s.y[0] = np.nan
        s.f[:] = np.nan
    msgs = [s.step() for s in (a, b)]
    assert a.status == b.status == "failed"
    assert msgs[0] == msgs[1] == stepper.NON_FINITE_ERROR
    assert (a.n_attempts, a.n_accepted, a.n_rejected) == (b.n_attempts, b.n_accepted, b.n_rejected) == (1, 0, 0)


@pytest.mark.parametrize("budget", [1, 7, 40])
def test_attempt_budget_is_the_same_in_both_engines(budget):
    """max_attempts bounds accepted + rejected attempts: both steppers stop at the same attempt with
    the same message and counters (first step 30: the first attempts are rejected)."""
    a, b = _steppers("sa", False, first_step=30.0)
    for s in (a, b):
        s.max_attempts = budget
    b._st[kernels.MAX_ATTEMPTS] = budget
    for s in (a, b):
        while s.status == "running":
            msg = s.step()
        assert s.status == "failed" and msg == stepper.budget_exhausted(budget)
    assert (a.n_attempts, a.n_accepted, a.n_rejected) == (b.n_attempts, b.n_accepted, b.n_rejected)
    assert a.n_attempts == a.n_accepted + a.n_rejected == budget and a.n_rejected > 0


def test_compiled_stepper_calls_check_before_every_field_evaluation():
    """The wall-clock check of simulate() reaches the compiled engine: ``check`` runs before each
    field evaluation from Python (start, initial step selection), each compiled step and each
    dense output, and what it raises leaves the stepper."""
    calls = {"n": 0, "raise": False}

    def check():
        calls["n"] += 1
        if calls["raise"]:
            raise TimeoutError("wall")
    x = np.eye(3)[:2]
    b = new_stepper("numba", None, np.ones(2), 3.0, "usa", False, 0.0, x.ravel(), 5.0, rtol=1e-10, atol=1e-12,
                    check=check)
    assert calls["n"] == b.nfev == 2  # f(y0) and one evaluation of the initial step selection
    b.step()
    assert calls["n"] == 3
    b.dense_output()
    assert calls["n"] == 4
    calls["raise"] = True
    for action in (b.step, b.dense_output):
        with pytest.raises(TimeoutError):
            action()


def test_predictive_controller_removes_rejections_on_a_closing_plateau():
    """Two points closing from 1.4 rad at β = 40: the step shrinks by ~20 % per step over
    ~35 e-folds of the time scale. Keeping h after a rejection (the old controller) rejected
    127 attempts in 158 steps here; the predictive factor after rejections, 10 in 156."""
    x0 = np.array([[1.0, 0.0, 0.0], [np.cos(1.4), np.sin(1.4), 0.0]])
    for engine in ("numpy", "numba"):
        res = simulate(x0, beta=40.0, model="usa", masses=[3.0, 5.0], t_max=1e40, engine=engine, two_point=False)
        st = res.stats
        assert len(res.events) == 1 and st["n_steps"] > 100
        assert st["n_rejected"] <= 0.1 * st["n_steps"], st


# --------------------------------------------------------------------------------------
# simulate: the engines agree, and both keep the accuracy
# --------------------------------------------------------------------------------------

_SIM_CASES = [  # (model, d, k, beta, spacing)
    ("usa", 2, 2, 5.0, 1.0), ("sa", 2, 2, 5.0, 1.0),
    ("usa", 3, 3, 20.0, 0.8), ("sa", 3, 3, 20.0, 0.8),
    ("usa", 2, 4, 40.0, 0.5), ("sa", 2, 4, 40.0, 0.5),
    ("usa", 3, 4, 10.0, np.pi / 4), ("sa", 3, 4, 30.0, np.pi / 4),
    ("usa", 3, 2, 40.0, 0.9), ("sa", 3, 2, 40.0, 0.9),
]


@pytest.mark.parametrize("model,d,k,beta,spacing", _SIM_CASES)
def test_engines_give_the_same_merge_times(model, d, k, beta, spacing):
    w = initial.great_circle_centres(k, d, spacing=spacing)
    data = initial.caps(6 * k, d, k, 1e-3, np.random.default_rng(k * 100 + d), centres=w)
    kw = dict(beta=beta, model=model, t_max=1e40, cap_centres=data.centres, cap_eps=data.eps,
              cap_labels=data.labels)
    a = simulate(data.x, engine="numpy", **kw)
    b = simulate(data.x, engine="numba", **kw)
    assert a.status == b.status == "ok" and a.stats["engine"] == "numpy" and b.stats["engine"] == "numba"
    assert len(a.events) == len(b.events) == k - 1
    np.testing.assert_allclose(b.merge_times, a.merge_times, rtol=1e-12, atol=0)
    assert b.escape_time == pytest.approx(a.escape_time, rel=1e-12)
    np.testing.assert_allclose(b.trajectory["energy"], a.trajectory["energy"], rtol=1e-12, atol=0)
    assert abs(b.stats["n_steps"] - a.stats["n_steps"]) <= 2


def test_engines_agree_on_the_full_system():
    w = initial.great_circle_centres(2, 3, spacing=0.9)
    data = initial.caps(10, 3, 2, 1e-3, np.random.default_rng(5), centres=w)
    a = simulate(data.x, beta=10.0, model="sa", collapse=False, t_max=1e4, engine="numpy")
    b = simulate(data.x, beta=10.0, model="sa", collapse=False, t_max=1e4, engine="numba")
    assert len(a.events) == len(b.events) == 1 and a.stats["n_collapses"] == 0
    np.testing.assert_allclose(b.merge_times, a.merge_times, rtol=1e-12)


@pytest.mark.parametrize("engine", ["numpy", "numba"])
@pytest.mark.parametrize("model", MODELS)
def test_two_point_merge_times_match_quadrature_to_1e_10(ref, engine, model):
    """Accuracy of the default tolerances with the predictive controller, both engines (the stepper
    on the two points: two_point=False; the exact flow is tested in test_twopoint.py)."""
    worst = 0.0
    for d in (2, 5):
        for beta in (5.0, 20.0, 50.0):
            x0 = ref.two_points(1.0, d, seed=int(beta) + d)
            res = simulate(x0, beta=beta, model=model, masses=[3.0, 7.0], engine=engine, two_point=False)
            want = theory.two_cluster_merge_time(1.0, 0.1, beta, 3, 7, model=model)
            worst = max(worst, abs(res.first_merge_time / want - 1.0))
    assert worst <= 1e-10


def test_engine_argument_is_checked():
    x0 = np.array([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"engine must be one of \['auto', 'numpy', 'numba'\]"):
        simulate(x0, beta=1.0, engine="jax")
    assert simulate(x0, beta=1.0, t_max=1.0).stats["engine"] == "numba"  # auto, numba installed


# --------------------------------------------------------------------------------------
# Fresh processes: lazy import, disk cache on a read-only install
# --------------------------------------------------------------------------------------

def _python(code: str, env: dict, cwd) -> str:
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_numpy_engine_never_imports_numba(tmp_path):
    code = ("import sys, numpy as np\n"
            "from attention_dynamics import simulate\n"
            "import attention_dynamics.pipeline.cell, attention_dynamics.pipeline.sweep\n"
            "r = simulate(np.array([[1.0, 0, 0], [0.6, 0.8, 0]]), beta=5.0, engine='numpy')\n"
            "assert len(r.events) == 1\n"
            "print('numba' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    assert _python(code, env, tmp_path).strip() == "False"


def _read_only_copy(tmp_path: Path) -> Path:
    """A copy of the package in which nothing can be written, even by root: every
    ``__pycache__`` is a plain file (so neither Python nor numba can create the folder)."""
    site = tmp_path / "site"
    shutil.copytree(SRC / "attention_dynamics", site / "attention_dynamics",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for folder in [p for p in (site / "attention_dynamics").rglob("*") if p.is_dir()] + [site / "attention_dynamics"]:
        (folder / "__pycache__").write_text("")
    for p in site.rglob("*"):
        p.chmod(0o555 if p.is_dir() else 0o444)
    return site


_WARM = "import json; from attention_dynamics.engine import kernels; print(json.dumps(kernels.warm_up()))"


def _warm_twice(env, cwd):
    first = json.loads(_python(_WARM, env, cwd).strip().splitlines()[-1])
    second = json.loads(_python(_WARM, env, cwd).strip().splitlines()[-1])
    return first, second


def test_cache_works_on_read_only_install_without_writable_home(tmp_path):
    """No NUMBA_CACHE_DIR, read-only package, unusable user cache: the kernels fall back to a
    per-user folder in the temporary directory; the second process compiles nothing."""
    site = _read_only_copy(tmp_path)
    (tmp_path / "not_a_dir").write_text("")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "not_a_dir" / "cache"),
               HOME=str(tmp_path / "not_a_dir"), TMPDIR=str(tmp))
    first, second = _warm_twice(env, tmp_path)
    assert first["cache_dir"].startswith(str(tmp / "attention-dynamics-numba-"))
    assert first["misses"] > 0 and second["misses"] == 0 and second["hits"] > 0
    assert any(Path(first["cache_dir"]).glob("*.nbi"))
    assert not [p for p in site.rglob("*") if p.suffix in (".nbi", ".nbc")]


@pytest.mark.slow
def test_cache_in_numba_cache_dir_on_read_only_install(tmp_path):
    """The documented cluster set-up: NUMBA_CACHE_DIR pointing to a writable (shared) folder."""
    site = _read_only_copy(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(site), "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    first, second = _warm_twice(env, tmp_path)
    assert first["cache_dir"].startswith(str(tmp_path / "cache"))
    assert first["misses"] > 0 and second["misses"] == 0 and second["hits"] > 0
