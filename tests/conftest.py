"""Independent reference implementations shared by the engine tests.

Everything here is written from docs/science.md §1–§3 directly (literal formulas, explicit
loops, a fixed-step RK4), *not* from the package, so that the tests compare the engine
against something that could disagree with it. Helpers are handed to the tests through
the session fixture ``ref``.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import integrate


def naive_velocity(x, mass, beta, model):
    """docs/science.md §1 literally, with explicit O(n² d) loops and e^{β⟨x,y⟩} (small β only).

    SA:  ẋ_i = P_{x_i}( Σ_j w_ij x_j ),  w_ij = m_j e^{β⟨x_i,x_j⟩} / Σ_k m_k e^{β⟨x_i,x_k⟩}
    USA: ẋ_i = P_{x_i}( (1/n) Σ_j m_j e^{β(⟨x_i,x_j⟩−1)} x_j ),  n = Σ m
    """
    x = np.asarray(x, dtype=float)
    mass = np.asarray(mass, dtype=float)
    m, d = x.shape
    n = float(sum(mass))
    out = np.zeros((m, d))
    for i in range(m):
        acc = [0.0] * d
        z = 0.0
        for j in range(m):
            dot = sum(x[i, c] * x[j, c] for c in range(d))
            if model == "usa":
                w = mass[j] * np.exp(beta * (dot - 1.0)) / n
            else:
                w = mass[j] * np.exp(beta * dot)
                z += w
            for c in range(d):
                acc[c] += w * x[j, c]
        if model == "sa":
            acc = [a / z for a in acc]
        dot_xa = sum(x[i, c] * acc[c] for c in range(d))
        for c in range(d):
            out[i, c] = acc[c] - dot_xa * x[i, c]
    return out


def naive_energy(x, mass, beta):
    """Ē = (1/n²) Σ_{i,j} m_i m_j e^{β⟨x_i,x_j⟩} e^{−β}, as a literal double sum."""
    x = np.asarray(x, dtype=float)
    n = float(sum(mass))
    total = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[0]):
            total += mass[i] * mass[j] * np.exp(beta * float(np.dot(x[i], x[j])))
    return total * np.exp(-beta) / n**2


def fast_naive_velocity(x, mass, beta, model):
    """Vectorised version of :func:`naive_velocity` (same literal P_x(W X) form; small β)."""
    g = x @ x.T
    if model == "usa":
        w = mass[None, :] * np.exp(beta * (g - 1.0)) / mass.sum()
    else:
        w = mass[None, :] * np.exp(beta * g)
        w = w / w.sum(axis=1, keepdims=True)
    v = w @ x
    return v - np.sum(v * x, axis=1)[:, None] * x


def rk4_escape_time(x0, mass, beta, model, centres, labels, eps, dt, t_max):
    """First exit of a particle from its doubled cap {⟨x, w⟩ ≥ 1 − 2ε}, by fixed-step RK4.

    Classical RK4 on the literal field (renormalised after each step); once a step ends
    outside, the step is redone with dt/200 sub-steps and the crossing located by linear
    interpolation of the margin between the two sub-steps that bracket it.
    """
    thr = 1.0 - 2.0 * eps
    wl = centres[labels]

    def margin(x):
        return float(np.min(np.sum(x * wl, axis=1)) - thr)

    def step(x, h):
        k1 = fast_naive_velocity(x, mass, beta, model)
        k2 = fast_naive_velocity(x + 0.5 * h * k1, mass, beta, model)
        k3 = fast_naive_velocity(x + 0.5 * h * k2, mass, beta, model)
        k4 = fast_naive_velocity(x + h * k3, mass, beta, model)
        y = x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        return y / np.linalg.norm(y, axis=1, keepdims=True)

    x, t = np.array(x0, dtype=float), 0.0
    while t < t_max:
        y = step(x, dt)
        if margin(y) < 0:
            h = dt / 200.0
            while True:
                z = step(x, h)
                if margin(z) < 0:
                    a, b = margin(x), margin(z)
                    return t + h * a / (a - b)
                x, t = z, t + h
        x, t = y, t + dt
    return float("nan")


def science_gap_rate(D, beta, n_a, n_b, n, model):
    """|Ḋ| for two point clusters, written exactly as printed in docs/science.md §3."""
    if model == "usa":
        return (n_a + n_b) / n * np.exp(beta * (np.cos(D) - 1.0)) * np.sin(D)
    e_cd = np.exp(beta * np.cos(D))
    e_b = np.exp(beta)
    return np.sin(D) * e_cd * (n_b / (n_a * e_b + n_b * e_cd) + n_a / (n_b * e_b + n_a * e_cd))


def science_merge_time(D0, D1, beta, n_a, n_b, n, model):
    """∫_{D1}^{D0} dD/|Ḋ| with the literal rate of docs/science.md, by scipy quad in D, with the large
    factor e^{β(1 − cos D0)} pulled out (β ≤ 700, so nothing overflows). Used to
    cross-check ``theory.two_cluster_merge_time``, which the engine tests compare with."""
    scale = np.exp(beta * (1.0 - np.cos(D0)))
    f = lambda D: 1.0 / (science_gap_rate(D, beta, n_a, n_b, n, model) * scale)  # noqa: E731
    val, _ = integrate.quad(f, D1, D0, epsabs=0.0, epsrel=1e-12, limit=1000)
    return val * scale


def random_rotation(d, seed):
    """A Haar-random orthogonal matrix (QR of a Gaussian matrix with sign fix)."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))[None, :]


def two_points(D0, d, seed=0):
    """Two unit vectors at angle D0 in a random 2-plane of R^d."""
    q = random_rotation(d, seed)
    e1, e2 = q[:, 0], q[:, 1]
    return np.vstack([e1, np.cos(D0) * e1 + np.sin(D0) * e2])


def angle(u, v):
    """Angle between unit vectors, accurate for small angles."""
    return float(2.0 * np.arcsin(min(np.linalg.norm(np.asarray(u) - np.asarray(v)) / 2.0, 1.0)))


def weighted_direction(x, m):
    s = np.asarray(m, float) @ np.asarray(x, float)
    return s / np.linalg.norm(s)


@pytest.fixture(scope="session")
def ref():
    return SimpleNamespace(
        naive_velocity=naive_velocity, naive_energy=naive_energy, fast_naive_velocity=fast_naive_velocity,
        rk4_escape_time=rk4_escape_time, science_gap_rate=science_gap_rate,
        science_merge_time=science_merge_time, random_rotation=random_rotation, two_points=two_points,
        angle=angle, weighted_direction=weighted_direction,
    )
