"""DOP853 with a predictive (Gustafsson) step-size controller, in numpy or compiled.

At the end of a plateau the gap between two clusters closes faster and faster: the
step size the error allows shrinks by a steady ~20 % per step. scipy's elementary
controller then proposes a step that is too large after every accepted step, so every
step is taken twice (one rejection). Gustafsson's predictive controller

    h_{n+1} = h_n · min( S·err_n^{−1/q},  S·err_n^{−1/q} · (h_n/h_{n−1}) · (err_{n−1}/err_n)^{1/q} )

(q = 8, S = 0.9; n − 1 is the previous *accepted* step) extrapolates the trend and
removes those rejections; on a plateau, where steps grow, it reduces to the elementary
controller. It is applied after every accepted step, including one that followed
rejected attempts: on a closing plateau the rejected attempt shrinks h to the step the
error allows *now*, and only the prediction also accounts for the further shrinking
until the next step (without it, every step on a closing plateau was rejected once:
err 0.33 → 3.5). After a rejection the step is never increased. The method, its
coefficients, error estimate and dense output are scipy's DOP853 unchanged.

Faults end a step with ``status = "failed"`` and a message instead of looping: a non-finite
step size (a NaN field at the start makes the initial h NaN), a non-finite error norm (the
field or state became non-finite inside the attempt: NaN < 1 is false, so a NaN attempt
would be rejected for ever), the attempt budget ``max_attempts`` (accepted + rejected
attempts, counted in ``n_attempts``), and scipy's step-size underflow.

Two implementations with the same interface (``step()``, ``t``, ``y``, ``f``, ``t_old``,
``step_size``, ``next_step``, ``nfev``, ``n_accepted``, ``n_rejected``, ``n_attempts``,
``max_attempts``, ``status``, ``dense_output()``):

* :class:`PredictiveDOP853` — scipy's DOP853 with this controller, calling a Python
  right-hand side (engine ``numpy``);
* :class:`CompiledDOP853` — the same arithmetic compiled with numba, field included
  (:mod:`attention_dynamics.engine.kernels`, engine ``numba``); numba is imported only
  when one is created.

:func:`new_stepper` builds the one an engine name asks for (names: ``dynamics.ENGINES``).
"""
from __future__ import annotations

import numpy as np
from scipy.integrate import DOP853

try:  # scipy's private one-step kernel; stable since scipy 1.4
    from scipy.integrate._ivp.rk import MAX_FACTOR, MIN_FACTOR, SAFETY, rk_step
except ImportError:  # pragma: no cover - fall back to scipy's own controller
    rk_step = None

__all__ = ["PredictiveDOP853", "CompiledDOP853", "new_stepper", "predictive_factor"]

NON_FINITE_STEP = "non-finite step size (the field is not finite)"
NON_FINITE_ERROR = "non-finite field or state inside a step"


def budget_exhausted(max_attempts) -> str:
    """The message of a step that ran out of its attempt budget."""
    return f"step attempt budget ({max_attempts}) exhausted"


def predictive_factor(err: float, h_abs: float, h_prev: float | None, err_prev: float | None,
                      rejected: bool) -> float:
    """Step-size factor after an accepted step with error norm ``err`` (see the module docstring)."""
    if err == 0:
        return MAX_FACTOR
    factor = SAFETY * err ** (-1 / 8)
    if h_prev is not None:
        factor = min(factor, factor * (h_abs / h_prev) * (err_prev / err) ** (1 / 8))
    factor = min(MAX_FACTOR, max(MIN_FACTOR, factor))
    return min(1.0, factor) if rejected else factor


class PredictiveDOP853(DOP853):
    """scipy's DOP853 with Gustafsson's predictive step-size controller (numpy engine)."""

    def __init__(self, *args, max_attempts: float = np.inf, **kwargs):
        super().__init__(*args, **kwargs)
        self._h_prev_acc = None
        self._err_prev_acc = None
        self.n_accepted = 0
        self.n_rejected = 0
        self.n_attempts = 0  # accepted + rejected steps (and a failing last attempt)
        self.max_attempts = max_attempts

    @property
    def next_step(self) -> float:
        """The step size the controller proposes for the next step."""
        return float(self.h_abs)

    if rk_step is not None:

        def _step_impl(self):
            t, y = self.t, self.y
            rtol, atol = self.rtol, self.atol
            min_step = 10 * np.abs(np.nextafter(t, self.direction * np.inf) - t)
            h_abs = min(max(self.h_abs, min_step), self.max_step)
            step_rejected = False
            while True:
                # a non-finite field makes h (or err) NaN, and NaN < min_step is False: stop here
                if not np.isfinite(h_abs):
                    return False, NON_FINITE_STEP
                if self.n_attempts >= self.max_attempts:
                    return False, budget_exhausted(self.max_attempts)
                if h_abs < min_step:
                    return False, self.TOO_SMALL_STEP
                self.n_attempts += 1
                t_new = t + h_abs * self.direction
                if self.direction * (t_new - self.t_bound) > 0:
                    t_new = self.t_bound
                h = t_new - t
                h_abs = np.abs(h)
                y_new, f_new = rk_step(self.fun, t, y, self.f, h, self.A, self.B, self.C, self.K)
                scale = atol + np.maximum(np.abs(y), np.abs(y_new)) * rtol
                err = self._estimate_error_norm(self.K, h, scale)
                if not np.isfinite(err):
                    return False, NON_FINITE_ERROR
                if err < 1:
                    break
                self.n_rejected += 1
                h_abs *= max(MIN_FACTOR, SAFETY * err ** self.error_exponent)
                step_rejected = True
            factor = predictive_factor(err, h_abs, self._h_prev_acc, self._err_prev_acc, step_rejected)
            self.n_accepted += 1
            self._h_prev_acc, self._err_prev_acc = h_abs, max(err, 1e-4)
            self.h_previous = h
            self.y_old = y
            self.t = t_new
            self.y = y_new
            self.h_abs = h_abs * factor
            self.f = f_new
            return True, None


class _CompiledDense:
    """Dense output of one :class:`CompiledDOP853` step (scipy's DOP853 interpolant)."""

    def __init__(self, kernels, t_old, t, y_old, F):
        self._eval = kernels.dense_eval
        self.t_old, self.t, self.h = t_old, t, t - t_old
        self.y_old, self.F = y_old, F

    def __call__(self, t):
        t = np.asarray(t, dtype=np.float64)
        if t.ndim == 0:
            out = np.empty_like(self.y_old)
            self._eval(self.F, self.y_old, self.t_old, self.h, float(t), out)
            return out
        out = np.empty((self.y_old.size, t.size))
        col = np.empty_like(self.y_old)
        for k, tk in enumerate(t.ravel()):
            self._eval(self.F, self.y_old, self.t_old, self.h, float(tk), col)
            out[:, k] = col
        return out


class CompiledDOP853:
    """:class:`PredictiveDOP853` on the SA/USA field, compiled with numba (engine ``numba``).

    Integrates y' = f(y) for y = the m points of shape ``shape = (m, d)`` (flattened),
    f = the field of :func:`attention_dynamics.engine.dynamics.velocity` evaluated at the
    normalised rows y_i/|y_i| (``exact`` selects the explicit-difference form). Same
    tableau, error norm, controller, fault checks and dense output as :class:`PredictiveDOP853`
    (rounding differs: sums in another order); each ``step()`` is one compiled call.

    ``check``: called (no arguments) before every evaluation of the field from Python and
    before every compiled call that evaluates it (a step, a dense output), so that an exception
    it raises (a wall-clock limit) ends the integration within one step, as the numpy
    stepper's right-hand side can.
    """

    RUNNING, FINISHED, FAILED = "running", "finished", "failed"
    TOO_SMALL_STEP = "Required step size is less than spacing between numbers."

    def __init__(self, shape, mass, beta, model, exact, t0, y0, t_bound, *, rtol=1e-3, atol=1e-6,
                 first_step=None, max_step=np.inf, max_attempts: float = np.inf, check=None):
        from scipy.integrate._ivp.common import select_initial_step, validate_first_step, validate_tol

        from . import kernels

        self._k = kernels
        self._check = check
        self.max_attempts = max_attempts
        m, d = shape
        self._m, self._d = int(m), int(d)
        self._mass = np.ascontiguousarray(mass, dtype=np.float64)
        self._usa = model == "usa"
        self._exact = bool(exact)
        self.y = np.array(y0, dtype=np.float64).ravel()
        n = self.y.size
        self.n = n
        rtol, atol = validate_tol(rtol, atol, n)
        if np.ndim(atol) != 0 or np.ndim(rtol) != 0:
            raise ValueError("CompiledDOP853 takes scalar rtol and atol")
        self._work = kernels.work_arrays(self._m, d)
        self._y_old = np.empty(n)
        self._ytmp = np.empty(n)
        self._K = np.empty((16, n))
        self._F = np.empty((7, n))
        self.f = np.empty(n)
        self._cnt = np.zeros(kernels.N_CNT, dtype=np.int64)
        st = np.zeros(kernels.N_ST)
        self._st = st
        self.t_bound = float(t_bound)
        direction = np.sign(t_bound - t0) if t_bound != t0 else 1.0
        self.direction = float(direction)
        st[kernels.T] = t0
        st[kernels.T_BOUND] = t_bound
        st[kernels.RTOL] = rtol
        st[kernels.ATOL] = atol
        st[kernels.MAX_STEP] = max_step
        st[kernels.DIRECTION] = direction
        st[kernels.BETA] = beta
        st[kernels.MAX_ATTEMPTS] = max_attempts
        self._rhs(self.y, self.f)
        if first_step is None:
            def fun(t, y):
                out = np.empty(n)
                self._rhs(np.ascontiguousarray(y, dtype=np.float64), out)
                return out
            h_abs = select_initial_step(fun, t0, self.y, t_bound, max_step, self.f, direction, 7, rtol, atol)
        else:
            h_abs = validate_first_step(first_step, t0, t_bound)
        st[kernels.H_ABS] = h_abs
        self.status = self.RUNNING
        self.t_old = None
        self._has_step = False

    def _before_field(self):
        if self._check is not None:
            self._check()

    def _rhs(self, y, out):
        self._before_field()
        self._k.field_flat(y, self._m, self._d, self._mass, self._st[self._k.BETA], self._usa, self._exact, out,
                           *self._work)
        self._cnt[self._k.NFEV] += 1

    # scipy-compatible read-only state
    @property
    def t(self) -> float:
        return float(self._st[self._k.T])

    @property
    def nfev(self) -> int:
        return int(self._cnt[self._k.NFEV])

    @property
    def n_accepted(self) -> int:
        return int(self._cnt[self._k.N_ACCEPTED])

    @property
    def n_rejected(self) -> int:
        return int(self._cnt[self._k.N_REJECTED])

    @property
    def n_attempts(self) -> int:
        """Step attempts: accepted + rejected (+ one that failed on a non-finite field)."""
        return int(self._cnt[self._k.N_ATTEMPTS])

    @property
    def step_size(self):
        """Size of the last successful step (None before the first)."""
        return abs(float(self._st[self._k.H_PREVIOUS])) if self._has_step else None

    @property
    def next_step(self) -> float:
        """The step size the controller proposes for the next step."""
        return float(self._st[self._k.H_ABS])

    def step(self):
        """One step (scipy's ``OdeSolver.step``): returns None or a failure message."""
        if self.status != self.RUNNING:
            raise RuntimeError("Attempt to step on a failed or finished solver.")
        k = self._k
        if self.n == 0 or self.t == self.t_bound:
            self.t_old = self.t
            self._st[k.T] = self.t_bound
            self.status = self.FINISHED
            return None
        self._before_field()
        code = k.dop853_step(self.y, self._y_old, self.f, self._K, self._ytmp, self._st, self._cnt, self._m, self._d,
                             self._mass, self._usa, self._exact, *self._work)
        if code != k.STEP_OK:
            self.status = self.FAILED
            return {k.STEP_TOO_SMALL: self.TOO_SMALL_STEP, k.STEP_NON_FINITE_H: NON_FINITE_STEP,
                    k.STEP_BUDGET: budget_exhausted(self.max_attempts), k.STEP_NON_FINITE_ERR: NON_FINITE_ERROR}[code]
        self._has_step = True
        self.t_old = float(self._st[k.T_OLD])
        if self.direction * (self.t - self.t_bound) >= 0:
            self.status = self.FINISHED
        return None

    def dense_output(self):
        """The interpolant over the last step (scipy's DOP853 dense output)."""
        if self.t_old is None:
            raise RuntimeError("Dense output is available after a successful step was made.")
        if self.n == 0 or self.t == self.t_old:
            from scipy.integrate._ivp.base import ConstantDenseOutput

            return ConstantDenseOutput(self.t_old, self.t, self.y.copy())
        F = np.empty_like(self._F)
        self._before_field()
        self._k.dop853_dense(self.y, self._y_old, self.f, self._K, self._ytmp, self._st, self._cnt, self._m, self._d,
                             self._mass, self._usa, self._exact, *self._work, F)
        return _CompiledDense(self._k, self.t_old, self.t, self._y_old.copy(), F)


def new_stepper(engine: str, fun, mass, beta: float, model: str, exact: bool, t0: float, y0: np.ndarray,
                t_bound: float, *, rtol: float, atol: float, first_step=None, max_attempts: float = np.inf,
                check=None):
    """The DOP853 stepper of ``engine`` (``"numpy"``/``"numba"``; resolve ``"auto"`` first) for
    y' = fun(t, y), where fun is the SA/USA field at the normalised rows of y reshaped to
    (len(mass), d): the numpy stepper calls ``fun``, the compiled one evaluates the same field
    from (mass, beta, model, exact). ``max_attempts``: budget of step attempts (accepted +
    rejected). ``check``: the compiled stepper calls it before each field evaluation it makes
    from Python and before each compiled step or dense output (``fun`` does its own checks)."""
    if engine == "numpy":
        return PredictiveDOP853(fun, t0, y0, t_bound, rtol=rtol, atol=atol, first_step=first_step,
                                max_attempts=max_attempts)
    if engine == "numba":
        m = len(mass)
        return CompiledDOP853((m, len(y0) // m), mass, beta, model, exact, t0, y0, t_bound, rtol=rtol, atol=atol,
                              first_step=first_step, max_attempts=max_attempts, check=check)
    raise ValueError(f"engine must be 'numpy' or 'numba' here, got {engine!r}")
