"""Compiled (numba) kernels: the SA/USA field in one fused pass, and whole DOP853 steps.

This module imports numba and is itself imported only when the ``numba`` engine is used
(``simulate(..., engine="numba")``, ``dynamics.velocity(..., engine="numba")``): a job
that runs the numpy engine never pays for numba's import.

The field
---------
:func:`field` computes exactly the field of :func:`attention_dynamics.engine.dynamics.velocity`
(same difference forms, self-term removed, exponents β(⟨x,y⟩−1) ≤ 0), one row i at a time
over column chunks that stay in L1 cache::

    K_ij = e^{β(⟨x_i,x_j⟩−1)}          (exact form: e^{−β‖x_j − x_i‖²/2})
    s_i  = Σ_{j≠i} m_j K_ij,   b_i = Σ_{j≠i} m_j K_ij x_j − s_i x_i      (exact: Σ_j m_j K_ij (x_j − x_i))
    ẋ_i  = P_{x_i}(b_i / n)  (USA)   or   P_{x_i}(b_i / (s_i + m_i))  (SA),   P_x(v) = v − ⟨x,v⟩x.

The exponential is evaluated by :func:`_exp_nonpositive`, a branch-free Cody–Waite
reduction (x = k ln 2 + r, |r| ≤ ln2/2) with a degree-13 polynomial for e^r and 2^k
assembled from exponent bits, which the compiler vectorises (numba's own ``exp`` is a
scalar libm call without Intel SVML). Its error is ≤ 2 ulp on [−708, 0] and it underflows
gradually to 0 like ``numpy.exp``. Reductions over j use the compiler's reassociation
(vector partial sums); the results differ from numpy's by rounding only (≲ 1e-15 relative).

The stepper
-----------
:func:`dop853_step` is scipy's DOP853 (same tableau, error estimator and tolerances)
with the predictive controller of :mod:`attention_dynamics.engine.stepper`, fully
compiled, the field called inside; :func:`dop853_dense` builds scipy's 7th-degree dense
output (3 extra stages) and :func:`dense_eval` evaluates it. Per step this removes the
Python overhead of scipy's stepper (12 Python field calls, array bookkeeping), which
dominates below m ≈ 100 points.

Caching
-------
Every kernel is compiled with ``cache=True``: the first use on a machine compiles (a few
seconds) and writes the machine code to numba's cache; later processes load it. numba
looks for a writable cache directory in this order: ``$NUMBA_CACHE_DIR``, the
``__pycache__`` folder next to this file, the user cache (``~/.cache/numba``, or
``$XDG_CACHE_HOME/numba``). When none of them is writable (a read-only install with a
read-only home, as on some cluster nodes) this module falls back to
``<tempdir>/attention-dynamics-numba-<uid>`` (per node). Cache entries are keyed by the
content of this file and by the CPU model, so nodes of different types keep separate
entries. ``python -m attention_dynamics.engine.kernels`` compiles (or loads) everything
and prints where the cache is.
"""
from __future__ import annotations

import math
import os
import tempfile

import numba
import numpy as np
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["field", "velocity", "dop853_step", "dop853_dense", "dense_eval", "cache_dir", "warm_up",
           "exp_nonpositive"]


# --------------------------------------------------------------------------------------
# Cache location: numba raises at decoration time when no cache directory is writable.
# --------------------------------------------------------------------------------------

def _writable(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
        return True
    except OSError:
        return False


def _fallback_cache_dir() -> str | None:
    """A writable per-user temporary cache directory when numba would find none, else None."""
    if numba.config.CACHE_DIR and _writable(numba.config.CACHE_DIR):
        return None
    if _writable(os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")):
        return None
    from numba.misc.appdirs import AppDirs

    if _writable(AppDirs(appname="numba", appauthor=False).user_cache_dir):
        return None
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return os.path.join(tempfile.gettempdir(), f"attention-dynamics-numba-{uid}")


_FALLBACK = _fallback_cache_dir()
if _FALLBACK is not None:
    numba.config.CACHE_DIR = _FALLBACK

# IEEE arithmetic except that a·b + c may become one fused multiply-add.
_FM_STRICT = {"contract"}
# Reductions (Σ_j) may be reassociated into vector partial sums.
_FM_SUM = {"contract", "reassoc"}


def _jit(fastmath):
    return njit(cache=True, fastmath=fastmath, error_model="numpy", boundscheck=False, nogil=True)


# --------------------------------------------------------------------------------------
# exp on (−∞, 0]
# --------------------------------------------------------------------------------------

@intrinsic
def _int64_bits_as_float64(typingctx, i):
    """Reinterpret the 64 bits of an int64 as a float64 (vectorisable bit cast)."""
    if isinstance(i, types.Integer):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(types.float64))
        return types.float64(types.int64), codegen
    return None


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # fdlibm's split of ln 2: LN2_HI has 32 trailing zero bits
_LN2_LO = 1.90821492927058770002e-10
_ROUND = 6755399441055744.0  # 1.5·2^52: (v + _ROUND) − _ROUND rounds v to the nearest integer
_E = [1.0 / math.factorial(k) for k in range(14)]
_E0, _E1, _E2, _E3, _E4, _E5, _E6, _E7, _E8, _E9, _E10, _E11, _E12, _E13 = _E


@njit(cache=True, fastmath=_FM_STRICT, error_model="numpy", inline="always")
def _exp_nonpositive(v):
    """e^v for v ≤ 0 (v < −745.1 gives 0): e^v = 2^k e^r, k = round(v/ln 2), |r| ≤ ln2/2.

    e^r by its Taylor polynomial of degree 13 (remainder < 2e-18 on |r| ≤ 0.347), in
    Estrin's scheme; 2^k = 2^{k1} 2^{k − k1} with k1 = max(k, −1022) so that the result
    underflows gradually through the subnormals, as libm's exp does.
    """
    v = max(v, -746.0)
    kf = (v * _LOG2E + _ROUND) - _ROUND
    r = (v - kf * _LN2_HI) - kf * _LN2_LO
    r2 = r * r
    r4 = r2 * r2
    q0 = (_E0 + _E1 * r) + (_E2 + _E3 * r) * r2
    q1 = (_E4 + _E5 * r) + (_E6 + _E7 * r) * r2
    q2 = (_E8 + _E9 * r) + (_E10 + _E11 * r) * r2
    q3 = _E12 + _E13 * r
    p = (q0 + q1 * r4) + (q2 + q3 * r4) * (r4 * r4)
    k = np.int64(kf)
    k1 = max(k, -1022)
    return p * _int64_bits_as_float64((k1 + 1023) << 52) * _int64_bits_as_float64((k - k1 + 1023) << 52)


@_jit(_FM_STRICT)
def _exp_nonpositive_array(v, out):
    for j in range(v.size):
        out[j] = _exp_nonpositive(v[j])


def exp_nonpositive(v: np.ndarray) -> np.ndarray:
    """e^v elementwise for an array of v ≤ 0 (the kernels' exponential; for tests)."""
    v = np.ascontiguousarray(v, dtype=np.float64).ravel()
    out = np.empty_like(v)
    _exp_nonpositive_array(v, out)
    return out


# --------------------------------------------------------------------------------------
# The field
# --------------------------------------------------------------------------------------

_CHUNK = 256  # general d: columns per chunk (the chunk's weights and coordinates stay in L1)
_DP = 4  # d ≤ 4: coordinates padded to 4 rows of zeros (which change no inner product or difference)


@_jit(_FM_STRICT)
def _kernel_weight(a):
    """K = e^{min(a, 0)}. Strict IEEE: the reassociating loops below call it (the compiler
    inlines it with its own flags), so that the exponential's rounding steps are kept."""
    return _exp_nonpositive(a if a < 0.0 else 0.0)


@_jit(_FM_SUM)
def _row_sums4(xt, i, skip, mass, beta, exact):
    """(Σ_j m_j K_ij, Σ_j m_j K_ij y_j) over all j except ``skip`` (−1: none), for 4 padded
    coordinates, in one pass: y_j = x_j, or y_j = x_j − x_i in the exact form
    (K_ij = e^{−β‖x_j − x_i‖²/2}). The excluded term is zeroed by a select, so every row sums
    the same sequence of j (vectorised partial sums) whatever i is."""
    m = xt.shape[1]
    a0, a1, a2, a3 = xt[0], xt[1], xt[2], xt[3]
    x0, x1, x2, x3 = a0[i], a1[i], a2[i], a3[i]
    s = 0.0
    b0 = 0.0
    b1 = 0.0
    b2 = 0.0
    b3 = 0.0
    if exact:
        hb = -0.5 * beta
        for j in range(m):
            u0 = a0[j] - x0
            u1 = a1[j] - x1
            u2 = a2[j] - x2
            u3 = a3[j] - x3
            w = _kernel_weight(hb * (u0 * u0 + u1 * u1 + u2 * u2 + u3 * u3)) * mass[j]
            w = 0.0 if j == skip else w
            s += w
            b0 += w * u0
            b1 += w * u1
            b2 += w * u2
            b3 += w * u3
    else:
        for j in range(m):
            w = _kernel_weight(beta * ((x0 * a0[j] + x1 * a1[j] + x2 * a2[j] + x3 * a3[j]) - 1.0)) * mass[j]
            w = 0.0 if j == skip else w
            s += w
            b0 += w * a0[j]
            b1 += w * a1[j]
            b2 += w * a2[j]
            b3 += w * a3[j]
    return s, b0, b1, b2, b3


@_jit(_FM_STRICT)
def _row_acc4(xt, i, mass, beta, exact, acc):
    """acc = (s_i, b_i) for d ≤ 4. Weighted form: over j ≠ i. Exact form: over all j (the
    self-term adds y_i = 0 to b_i and m_i to s_i), so that coincident copies get bit-identical
    sums and stay coincident."""
    acc[0], acc[1], acc[2], acc[3], acc[4] = _row_sums4(xt, i, -1 if exact else i, mass, beta, exact)


@_jit(_FM_STRICT)
def _chunk_weights(xt, i, j0, j1, beta, exact, wbuf):
    """General d: wbuf[j − j0] = K_ij for j0 ≤ j < j1, coordinate by coordinate (vectorised over j)."""
    d = xt.shape[0]
    n = j1 - j0
    w = wbuf[:n]
    w[:] = 0.0
    for c in range(d):
        xic = xt[c, i]
        xc = xt[c, j0:j1]
        if exact:
            for j in range(n):
                u = xc[j] - xic
                w[j] += u * u
        else:
            for j in range(n):
                w[j] += xic * xc[j]
    hb = -0.5 * beta
    for j in range(n):
        w[j] = _kernel_weight(hb * w[j] if exact else beta * (w[j] - 1.0))


@_jit(_FM_SUM)
def _chunk_sums(xt, i, j0, j1, mass, exact, wbuf, acc):
    """General d: acc[0] += Σ_j m_j K_ij, acc[1 + c] += Σ_j m_j K_ij y_jc over j0 ≤ j < j1,
    with K_ij in wbuf (overwritten by m_j K_ij); y as in :func:`_row_sums4`."""
    d = xt.shape[0]
    n = j1 - j0
    w = wbuf[:n]
    mj = mass[j0:j1]
    s = 0.0
    for j in range(n):
        wj = w[j] * mj[j]
        w[j] = wj
        s += wj
    acc[0] += s
    for c in range(d):
        xc = xt[c, j0:j1]
        b = 0.0
        if exact:
            xic = xt[c, i]
            for j in range(n):
                b += w[j] * (xc[j] - xic)
        else:
            for j in range(n):
                b += w[j] * xc[j]
        acc[1 + c] += b


@_jit(_FM_STRICT)
def _row_acc(xt, i, mass, beta, exact, wbuf, acc):
    """acc = (s_i, b_i) for any d, chunk by chunk (j ≠ i; all j in the exact form, as in :func:`_row_acc4`)."""
    m, d = xt.shape[1], xt.shape[0]
    for c in range(d + 1):
        acc[c] = 0.0
    for j0 in range(0, m, _CHUNK):
        j1 = min(m, j0 + _CHUNK)
        _chunk_weights(xt, i, j0, j1, beta, exact, wbuf)
        if j0 <= i < j1 and not exact:
            wbuf[i - j0] = 0.0  # the self-term
        _chunk_sums(xt, i, j0, j1, mass, exact, wbuf, acc)


@_jit(_FM_STRICT)
def field(y, m, d, mass, beta, usa, exact, normalise, out, xt, wbuf, acc):
    """out = the field at the m points stored row-major in the flat array y (length m·d).

    With ``normalise`` the rows are first divided by their norms (the integrator's state is
    evaluated at x/|x|, as :mod:`attention_dynamics.engine.simulate` does). Work arrays
    from :func:`work_arrays`. Per row i: USA b_i/n, SA b_i/(s_i + m_i) (the self-term
    belongs to SA's normalisation; the exact form's s_i already holds it), then P_{x_i}; the
    weighted form's bracket is b_i − s_i x_i.
    """
    dp = xt.shape[0]
    for i in range(m):
        nrm = 1.0
        if normalise:
            q = 0.0
            for c in range(d):
                q += y[i * d + c] * y[i * d + c]
            nrm = 1.0 / math.sqrt(q)
        for c in range(d):
            xt[c, i] = y[i * d + c] * nrm
        for c in range(d, dp):
            xt[c, i] = 0.0
    n_total = 0.0
    for i in range(m):
        n_total += mass[i]
    for i in range(m):
        if dp == _DP:
            _row_acc4(xt, i, mass, beta, exact, acc)
        else:
            _row_acc(xt, i, mass, beta, exact, wbuf, acc)
        s = acc[0]
        if usa:
            scale = 1.0 / n_total
        else:
            scale = 1.0 / (s if exact else s + mass[i])
        dot = 0.0
        for c in range(d):
            b = acc[1 + c] if exact else acc[1 + c] - s * xt[c, i]
            b *= scale
            out[i * d + c] = b
            dot += xt[c, i] * b
        for c in range(d):
            out[i * d + c] -= dot * xt[c, i]


def work_arrays(m: int, d: int):
    """Work arrays of :func:`field` for m points in R^d: xt (max(d, 4) or d, m), wbuf, acc."""
    dp = _DP if d <= _DP else d
    return np.empty((dp, m)), np.empty(_CHUNK), np.empty(dp + 1)


def velocity(x: np.ndarray, mass: np.ndarray, beta: float, model: str, exact: bool = False) -> np.ndarray:
    """The field of :func:`attention_dynamics.engine.dynamics.velocity`, compiled (no normalisation)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    m, d = x.shape
    out = np.empty(m * d)
    field(x.ravel(), m, d, np.ascontiguousarray(mass, dtype=np.float64), float(beta), model == "usa", bool(exact),
          False, out, *work_arrays(m, d))
    return out.reshape(m, d)


# --------------------------------------------------------------------------------------
# DOP853 (scipy's coefficients) with the predictive controller, compiled
# --------------------------------------------------------------------------------------

from scipy.integrate._ivp import dop853_coefficients as _dc  # noqa: E402

_NS = _dc.N_STAGES  # 12
_A = np.ascontiguousarray(_dc.A[:_NS, :_NS])
_B = np.ascontiguousarray(_dc.B)
_C = np.ascontiguousarray(_dc.C)
_E3C = np.ascontiguousarray(_dc.E3)
_E5C = np.ascontiguousarray(_dc.E5)
_D = np.ascontiguousarray(_dc.D)
_A_EXTRA = np.ascontiguousarray(_dc.A[_NS + 1:])
_C_EXTRA = np.ascontiguousarray(_dc.C[_NS + 1:])
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0
_ERR_EXP = -1.0 / 8.0  # −1/(error estimator order + 1)

# indices into the scalar state array st (float64)
(T, H_ABS, T_BOUND, RTOL, ATOL, MAX_STEP, H_PREV, ERR_PREV, T_OLD, H_PREVIOUS, DIRECTION, BETA,
 MAX_ATTEMPTS) = range(13)
N_ST = 13
# indices into the counter array cnt (int64)
NFEV, N_ACCEPTED, N_REJECTED, N_ATTEMPTS = range(4)
N_CNT = 4
# return codes of dop853_step (the messages are in stepper.py, shared with the numpy stepper)
STEP_OK, STEP_TOO_SMALL, STEP_NON_FINITE_H, STEP_BUDGET, STEP_NON_FINITE_ERR = range(5)


@_jit(_FM_STRICT)
def _stage_point(y, K, a, s, h, out):
    """out = y + (Σ_{k<s} a_k K_k)·h (scipy: y + np.dot(K[:s].T, a[:s]) * h)."""
    n = y.size
    for i in range(n):
        acc = 0.0
        for k in range(s):
            acc += K[k, i] * a[k]
        out[i] = y[i] + acc * h


@_jit(_FM_STRICT)
def _error_norm(K, h, y, y_new, rtol, atol):
    """scipy's DOP853 error norm |h| ‖e5‖² / √((‖e5‖² + 0.01‖e3‖²) N), components scaled by
    atol + rtol·max(|y|, |y_new|)."""
    n = y.size
    e5 = 0.0
    e3 = 0.0
    for i in range(n):
        sc = atol + max(abs(y[i]), abs(y_new[i])) * rtol
        a5 = 0.0
        a3 = 0.0
        for k in range(_NS + 1):
            a5 += K[k, i] * _E5C[k]
            a3 += K[k, i] * _E3C[k]
        a5 /= sc
        a3 /= sc
        e5 += a5 * a5
        e3 += a3 * a3
    if e5 == 0.0 and e3 == 0.0:
        return 0.0
    return abs(h) * e5 / math.sqrt((e5 + 0.01 * e3) * n)


@_jit(_FM_STRICT)
def dop853_step(y, y_old, f, K, ytmp, st, cnt, m, d, mass, usa, exact, xt, wbuf, acc):
    """One accepted DOP853 step (retrying rejected attempts); returns STEP_OK, or the fault that
    ended it: STEP_TOO_SMALL (the step fell below 10 float spacings of t), STEP_NON_FINITE_H (a
    non-finite field made h NaN), STEP_BUDGET (cnt[N_ATTEMPTS] reached st[MAX_ATTEMPTS]) or
    STEP_NON_FINITE_ERR (a non-finite field or state inside the attempt): the same checks in the
    same order as :class:`attention_dynamics.engine.stepper.PredictiveDOP853` (a NaN error would
    otherwise be rejected for ever: NaN < 1 and NaN < min_step are both false). On success
    y_old ← y, y ← y_new, f ← f(y_new), K holds the stages of the accepted attempt (for the
    dense output) and st[T], st[H_ABS] (next step), st[T_OLD], st[H_PREVIOUS] and the controller
    history are updated. cnt[N_ATTEMPTS] counts every attempt (accepted, rejected, failing).

    Step-size control (see :class:`attention_dynamics.engine.stepper.PredictiveDOP853`):
    rejected attempt: h ← h·max(0.2, 0.9 err^{−1/8});
    accepted: factor = min(0.9 err^{−1/8}, 0.9 err^{−1/8} (h/h_prev)(err_prev/err)^{1/8}),
    clipped to [0.2, 10], and ≤ 1 after a rejection.
    """
    t = st[T]
    direction = st[DIRECTION]
    beta = st[BETA]
    rtol, atol = st[RTOL], st[ATOL]
    n = y.size
    min_step = 10.0 * abs(np.nextafter(t, direction * np.inf) - t)
    h_abs = st[H_ABS]
    if h_abs > st[MAX_STEP]:
        h_abs = st[MAX_STEP]
    elif h_abs < min_step:
        h_abs = min_step
    rejected = False
    for i in range(n):
        K[0, i] = f[i]
    while True:
        if not math.isfinite(h_abs):
            return STEP_NON_FINITE_H
        if cnt[N_ATTEMPTS] >= st[MAX_ATTEMPTS]:
            return STEP_BUDGET
        if h_abs < min_step:
            return STEP_TOO_SMALL
        cnt[N_ATTEMPTS] += 1
        t_new = t + h_abs * direction
        if direction * (t_new - st[T_BOUND]) > 0:
            t_new = st[T_BOUND]
        h = t_new - t
        h_abs = abs(h)
        for s in range(1, _NS):
            _stage_point(y, K, _A[s], s, h, ytmp)
            field(ytmp, m, d, mass, beta, usa, exact, True, K[s], xt, wbuf, acc)
        # y_new = y + h·Σ_k B_k K_k  (scipy: y + h * np.dot(K[:-1].T, B))
        for i in range(n):
            a = 0.0
            for k in range(_NS):
                a += K[k, i] * _B[k]
            ytmp[i] = y[i] + h * a
        field(ytmp, m, d, mass, beta, usa, exact, True, K[_NS], xt, wbuf, acc)
        cnt[NFEV] += _NS
        err = _error_norm(K, h, y, ytmp, rtol, atol)
        if not math.isfinite(err):
            return STEP_NON_FINITE_ERR
        if err < 1.0:
            break
        cnt[N_REJECTED] += 1
        h_abs *= max(_MIN_FACTOR, _SAFETY * err ** _ERR_EXP)
        rejected = True
    if err == 0.0:
        factor = _MAX_FACTOR
    else:
        factor = _SAFETY * err ** _ERR_EXP
        if st[H_PREV] > 0.0:
            pred = factor * (h_abs / st[H_PREV]) * (st[ERR_PREV] / err) ** (-_ERR_EXP)
            factor = min(factor, pred)
        factor = min(_MAX_FACTOR, max(_MIN_FACTOR, factor))
    if rejected:
        factor = min(1.0, factor)
    cnt[N_ACCEPTED] += 1
    st[H_PREV] = h_abs
    st[ERR_PREV] = max(err, 1e-4)
    st[H_PREVIOUS] = h
    st[T_OLD] = t
    st[T] = t_new
    st[H_ABS] = h_abs * factor
    for i in range(n):
        y_old[i] = y[i]
        y[i] = ytmp[i]
        f[i] = K[_NS, i]
    return STEP_OK


@_jit(_FM_STRICT)
def dop853_dense(y, y_old, f, K, ytmp, st, cnt, m, d, mass, usa, exact, xt, wbuf, acc, F):
    """scipy's DOP853 dense output of the last step: 3 extra stages, then the 7 rows of F."""
    h = st[H_PREVIOUS]
    t_old = st[T_OLD]
    beta = st[BETA]
    n = y.size
    for e in range(_A_EXTRA.shape[0]):
        s = _NS + 1 + e
        _stage_point(y_old, K, _A_EXTRA[e], s, h, ytmp)
        field(ytmp, m, d, mass, beta, usa, exact, True, K[s], xt, wbuf, acc)
        cnt[NFEV] += 1
    for i in range(n):
        dy = y[i] - y_old[i]
        f_old = K[0, i]
        F[0, i] = dy
        F[1, i] = h * f_old - dy
        F[2, i] = 2.0 * dy - h * (f[i] + f_old)
        for r in range(_D.shape[0]):
            a = 0.0
            for k in range(K.shape[0]):
                a += _D[r, k] * K[k, i]
            F[3 + r, i] = h * a


@_jit(_FM_STRICT)
def dense_eval(F, y_old, t_old, h, t, out):
    """scipy's Dop853DenseOutput at time t: Horner in x and 1 − x over the rows of F (reversed)."""
    x = (t - t_old) / h
    n = y_old.size
    rows = F.shape[0]
    for i in range(n):
        v = 0.0
        for q in range(rows):
            v += F[rows - 1 - q, i]
            if q % 2 == 0:
                v *= x
            else:
                v *= 1.0 - x
        out[i] = v + y_old[i]


@_jit(_FM_STRICT)
def field_flat(y, m, d, mass, beta, usa, exact, out, xt, wbuf, acc):
    """The integrator's right-hand side f(y) (rows normalised first), one call."""
    field(y, m, d, mass, beta, usa, exact, True, out, xt, wbuf, acc)


def cache_dir() -> str:
    """Where the compiled kernels are cached (the directory numba uses for this module)."""
    return field._cache._cache_path


def warm_up() -> dict:
    """Compile (or load from the cache) every kernel on tiny inputs; returns cache statistics."""
    from .stepper import CompiledDOP853

    x = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    for model in ("usa", "sa"):
        for exact in (False, True):
            s = CompiledDOP853(x.shape, np.ones(2), 2.0, model, exact, 0.0, x.ravel(), 1.0, rtol=1e-6, atol=1e-8)
            s.step()
            s.dense_output()(0.5 * (s.t_old + s.t))
    exp_nonpositive(np.zeros(1))
    velocity(x, np.ones(2), 1.0, "usa")
    disp = [field, field_flat, dop853_step, dop853_dense, dense_eval, _exp_nonpositive_array]
    return {"cache_dir": cache_dir(),
            "hits": sum(sum(d.stats.cache_hits.values()) for d in disp),
            "misses": sum(sum(d.stats.cache_misses.values()) for d in disp)}


if __name__ == "__main__":  # pragma: no cover - manual warm-up
    import time

    from attention_dynamics.engine import kernels as _package_module  # not this __main__ copy

    t0 = time.process_time()
    info = _package_module.warm_up()
    print(f"numba kernels ready in {time.process_time() - t0:.1f} s CPU; cache: {info['cache_dir']} "
          f"({info['hits']} loaded, {info['misses']} compiled)")
