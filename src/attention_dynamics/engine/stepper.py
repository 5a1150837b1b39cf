"""DOP853 with a predictive (Gustafsson) step-size controller.

At the end of a plateau the gap between two clusters closes faster and faster: the
step size the error allows shrinks by a steady ~10–15 % per step. scipy's elementary
controller then proposes a step that is too large after every accepted step, so every
step is taken twice (one rejection). Gustafsson's predictive controller

    h_{n+1} = h_n · min( S·err_n^{−1/q},  S·err_n^{−1/q} · (h_n/h_{n−1}) · (err_{n−1}/err_n)^{1/q} )

(q = 8, S = 0.9) extrapolates the trend and removes those rejections; on a plateau,
where steps grow, it reduces to the elementary controller. The method, coefficients,
error estimate and dense output are scipy's DOP853 unchanged.
"""
from __future__ import annotations

import numpy as np
from scipy.integrate import DOP853

try:  # scipy's private one-step kernel; stable since scipy 1.4
    from scipy.integrate._ivp.rk import MAX_FACTOR, MIN_FACTOR, SAFETY, rk_step
except ImportError:  # pragma: no cover - fall back to scipy's own controller
    rk_step = None

__all__ = ["PredictiveDOP853"]


class PredictiveDOP853(DOP853):
    """scipy's DOP853 with Gustafsson's predictive step-size controller."""

    def __init__(self, *args, max_attempts: float = np.inf, **kwargs):
        super().__init__(*args, **kwargs)
        self._h_prev_acc = None
        self._err_prev_acc = None
        self.n_attempts = 0  # accepted + rejected steps
        self.max_attempts = max_attempts

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
                    return False, "non-finite step size (the field is not finite)"
                if self.n_attempts >= self.max_attempts:
                    return False, f"step attempt budget ({self.max_attempts}) exhausted"
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
                    return False, "non-finite field or state inside a step"
                if err < 1:
                    break
                h_abs *= max(MIN_FACTOR, SAFETY * err ** self.error_exponent)
                step_rejected = True
            if err == 0:
                factor = MAX_FACTOR
            else:
                factor = SAFETY * err ** self.error_exponent
                if self._h_prev_acc is not None and not step_rejected:
                    pred = factor * (h_abs / self._h_prev_acc) * (self._err_prev_acc / err) ** (-self.error_exponent)
                    factor = min(factor, pred)
                factor = min(MAX_FACTOR, max(MIN_FACTOR, factor))
            if step_rejected:
                factor = min(1.0, factor)
            self._h_prev_acc, self._err_prev_acc = h_abs, max(err, 1e-4)
            self.h_previous = h
            self.y_old = y
            self.t = t_new
            self.y = y_new
            self.h_abs = h_abs * factor
            self.f = f_new
            return True, None
