"""Evidence-gated projected θ-steps and permanent, physical pruning (docs/METHOD.md §7, Eq. 32, 37–39).

Compaction reads the same Wiring as the cost C(θ): a unit of layer `name` owns column j of that layer's
W and entry j of every per-unit vector (b, BN s, c, running mean and var, and the Adam moments of all of
them); every consumer layer owns one row of its W per unit it reads. Deleting both leaves every
expected-gate output unchanged, because the unit's contribution θ_j φ_j = 0 already (tests/test_prune.py).
"""
import numpy as np

THETA_SCALES = ("none", "rms")   # the θ-step in the units of ĝ_θ/L̄ (Eq. 37), or of each unit's own RMS (Eq. 39)


def theta_step(theta, m_theta, v_theta, t, g, loss_scale, eta, mu, k=0.0, scale="none"):
    """The evidence-gated projected θ-step.   Eq. (32), (37), (38), (39)

    m_θ ← μ_θ m_θ + (1 − μ_θ) ĝ_θ / L̄,   v_θ ← μ_θ v_θ + (1 − μ_θ) (ĝ_θ / L̄)²,
    θ ← Π_[0,1](θ − η_θ S(m_θ, k·se)),   S(x, τ) = sign(x) max(|x| − τ, 0),
    so θ_j moves only on the part of its averaged gradient that lies beyond k standard errors of that average;
    k = 0 is the plain step (32). t ≥ 1 counts the network's θ-steps including this one; L̄ (loss_scale) makes
    η_θ dimensionless. scale = "rms" divides the step by each unit's RMS √(v_θ/c), c = 1 − μ_θ^t (Eq. 39), so
    that η_θ bounds every unit's step, whatever its gradient's size. Returns new (theta, m_theta, v_theta).
    """
    x = g / loss_scale
    m_new = (mu * m_theta + (1.0 - mu) * x).astype(theta.dtype, copy=False)
    v_new = (mu * v_theta + (1.0 - mu) * (x * x)).astype(theta.dtype, copy=False)
    step = m_new if k == 0 else shrink(m_new, k * standard_error(m_new, v_new, t, mu))
    if scale == "rms":
        # S(m_θ, k se) / √(v_θ / c): |m_θ| ≤ √(c v_θ) (Cauchy–Schwarz), so |step| ≤ c ≤ 1      Eq. (39)
        rms = np.sqrt(v_new / (1.0 - mu ** t))
        step = np.divide(step, rms, out=np.zeros_like(step), where=rms > 0)
    elif scale != "none":
        raise ValueError(f"unknown θ-step scale {scale!r}; choose one of {', '.join(THETA_SCALES)}")
    return np.clip(theta - eta * step, 0.0, 1.0).astype(theta.dtype, copy=False), m_new, v_new


def standard_error(m, v, t, mu):
    """se_j of the average m_j after t steps, from the moments m, v (Eq. 38); inf while t ≤ 1.

    With weights w_s ∝ μ^(t−s) the average m/c, c = 1 − μ^t, has n_eff = c²(1 + μ) / ((1 − μ)(1 − μ^(2t)))
    effective samples; σ̂² = (v/c − (m/c)²) n_eff/(n_eff − 1) is unbiased for the per-step variance, and
    se(m) = c σ̂ / √n_eff.
    """
    c = 1.0 - mu ** t
    n_eff = c * c * (1.0 + mu) / ((1.0 - mu) * (1.0 - mu ** (2 * t))) if t > 0 else 0.0
    if n_eff <= 1.0 + 1e-9:
        return np.full_like(m, np.inf)
    # σ̂² = (v̂ − m̂²) n_eff / (n_eff − 1),  v̂ = v/c, m̂ = m/c                       Eq. (38)
    var = np.maximum(v / c - (m / c) ** 2, 0.0) * (n_eff / (n_eff - 1.0))
    return (c / np.sqrt(n_eff)) * np.sqrt(var)


def shrink(x, tau):
    """S(x, τ) = sign(x) max(|x| − τ, 0): soft thresholding (0 wherever τ = inf).   Eq. (37)"""
    return np.sign(x) * np.maximum(np.abs(x) - tau, 0.0)


def keep_last_units(theta_new, theta_old, min_units, floor):
    """An MLP layer keeps >= min_units units (Choice, §7): if the step would leave fewer with θ > 0, the
    units with the largest θ before the step are held at θ >= floor instead of reaching 0."""
    if min_units <= 0 or np.count_nonzero(theta_new > 0) >= min(min_units, len(theta_new)):
        return theta_new
    order = np.argsort(-theta_old, kind="stable")[:min_units]
    held = np.zeros(len(theta_new), dtype=bool)
    held[order] = True
    return np.where(held, np.maximum(theta_new, floor), theta_new)


def prune_layer(wiring, name, keep, theta, layer_containers, unit_containers=()):
    """Remove the units of layer `name` where keep is False, everywhere they live.

    theta: dict layer -> θ, *before* removal (it gives the consumers' row offsets); it is updated too.
    layer_containers: dicts layer -> {param: array} (params, running stats, target params, Adam m and v…).
    unit_containers: further dicts layer -> per-unit array (e.g. θ momentum) to shrink like θ.
    """
    keep = np.asarray(keep, dtype=bool)
    drop_idx = np.flatnonzero(~keep)
    if drop_idx.size == 0:
        return 0
    # rows in every consumer's W, computed from the widths before anything shrinks
    rows = {c.name: wiring.row_slice(c, name, theta).start + drop_idx for c in wiring.consumers(name)}
    for container in layer_containers:
        if name in container:
            container[name] = {k: (a[:, keep] if a.ndim == 2 else a[keep]) for k, a in container[name].items()}
        for consumer, r in rows.items():
            if consumer in container:
                container[consumer] = {k: (np.delete(a, r, axis=0) if k == "W" else a)
                                       for k, a in container[consumer].items()}
    for container in (theta,) + tuple(unit_containers):
        if name in container:
            container[name] = container[name][keep]
    return int(drop_idx.size)


def prune_zero_units(wiring, theta, layer_containers, unit_containers=(), names=None):
    """Prune every unit with θ_j = 0 (permanent, §7). Returns {layer: number removed}."""
    removed = {}
    for name in (wiring.gated_names() if names is None else names):
        n = prune_layer(wiring, name, theta[name] > 0, theta, layer_containers, unit_containers)
        if n:
            removed[name] = n
    return removed
