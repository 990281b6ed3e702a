"""Projected θ-steps and permanent, physical pruning (docs/METHOD.md §7, Eq. 32).

Compaction reads the same Wiring as the cost C(θ): a unit of layer `name` owns column j of that layer's
W and entry j of every per-unit vector (b, BN s, c, running mean and var, and the Adam moments of all of
them); every consumer layer owns one row of its W per unit it reads. Deleting both leaves every
expected-gate output unchanged, because the unit's contribution θ_j φ_j = 0 already (tests/test_prune.py).
"""
import numpy as np


def theta_step(theta, m_theta, g, loss_scale, eta, mu):
    """m_θ ← μ_θ m_θ + (1 − μ_θ) ĝ_θ / L̄,  θ ← Π_[0,1](θ − η_θ m_θ).   Eq. (32)

    Returns new (theta, m_theta); L̄ (loss_scale) makes η_θ dimensionless.
    """
    m_new = (mu * m_theta + (1.0 - mu) * (g / loss_scale)).astype(theta.dtype, copy=False)
    return np.clip(theta - eta * m_new, 0.0, 1.0).astype(theta.dtype, copy=False), m_new


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
