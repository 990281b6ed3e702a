"""One XiNet update of one gated network: sampled gates, pathwise W-gradient, score-function θ-gradient,
cost-matched regulariser (docs/METHOD.md §4, §5, Eq. 15–23).

The network's own per-example loss is supplied by the caller as `loss_fn(acts) -> (ell (B,), d_acts)`,
where d_acts holds d[(1/B) Σ_i ℓ_i]/d(output) for the outputs the loss reads. The same machinery serves the
teacher–student example, OFENet (Eq. 8), the critics (Eq. 11) and the actor (Eq. 12).
"""
import numpy as np

from . import gates as G
from . import network as N
from .wiring import cost_grad


def sample_gates(specs, theta, rng, batch, eps_xi):
    """ξ (B, n) for every gated layer in `specs`, drawn from θ̃ (Eq. 2, 4)."""
    return {s.name: G.sample_mask(rng, theta[s.name], batch, eps_xi) for s in specs if s.gated}


def expected_gates(specs, theta):
    """θ (n,) for every gated layer: the expected-gate forward (Eq. 3)."""
    return {s.name: theta[s.name] for s in specs if s.gated}


def _one_pass(specs, params, inputs, xi, loss_fn, stats, bn_train, eps_bn, reuse=None):
    acts, cache = N.forward(specs, params, inputs, xi, stats, bn_train, eps_bn, reuse)
    ell, d_acts = loss_fn(acts)
    grads, _, _ = N.backward(specs, params, xi, cache, d_acts, bn_train, input_grads=False, gate_grads=False)
    return ell, grads, cache


def gated_gradients(specs, params, inputs, theta, loss_fn, rng, baseline="pair", eps_xi=0.001,
                    stats=None, bn_train=False, eps_bn=1e-3):
    """Pathwise ĝ_W (Eq. 20, loss part) and score-function ĝ_θ (Eq. 22–23) from sampled masks: unbiased
    estimates of the gradients of the expected loss in F_n, Eq. (15).

    Returns (mean_loss, grads_W, g_theta, caches) where caches is a list of forward caches (one per mask
    draw; two with the 'pair' baseline) so the caller can fold BN batch statistics into running averages.
    With 'pair' each draw is its own BN batch, so ℓ^(3−m) does not depend on ξ^(m): exactly unbiased.
    With 'loo' and BN the batch statistics couple examples: b_i depends on ξ_i at O(1/B) (docs/METHOD.md).
    """
    gated = [s for s in specs if s.gated]
    if not gated:                       # ungated network: plain backprop, one pass
        ell, grads, cache = _one_pass(specs, params, inputs, {}, loss_fn, stats, bn_train, eps_bn)
        return float(np.mean(ell)), grads, {}, [cache]
    theta_t = {s.name: G.theta_tilde(theta[s.name], eps_xi) for s in gated}
    batch = next(iter(inputs.values())).shape[0]
    xi1 = sample_gates(specs, theta, rng, batch, eps_xi)
    ell1, grads, cache1 = _one_pass(specs, params, inputs, xi1, loss_fn, stats, bn_train, eps_bn)
    if baseline == "pair":
        xi2 = sample_gates(specs, theta, rng, batch, eps_xi)
        # layers reading only the inputs (e.g. a critic's first layer) do not depend on the masks: reused
        ell2, grads2, cache2 = _one_pass(specs, params, inputs, xi2, loss_fn, stats, bn_train, eps_bn, cache1)
        # ĝ_W: average of the two pathwise gradients (each an unbiased estimate)
        grads = {k: {n: 0.5 * (g + grads2[k][n]) for n, g in gk.items()} for k, gk in grads.items()}
        g_theta = {s.name: G.pair_grad(ell1, ell2, xi1[s.name], xi2[s.name], theta_t[s.name]) for s in gated}
        return 0.5 * float(np.mean(ell1) + np.mean(ell2)), grads, g_theta, [cache1, cache2]
    g_theta = {s.name: G.score_function_grad(ell1, xi1[s.name], theta_t[s.name], baseline) for s in gated}
    return float(np.mean(ell1)), grads, g_theta, [cache1]


def price(beta, loss_scale, cost_initial):
    """κ_n = β_n · L̄_n / C(𝟙).   Eq. (19)"""
    return beta * loss_scale / cost_initial


def update_loss_scale(loss_scale, mean_loss, rate=0.01):
    """L̄_n ← (1 − ρ) L̄_n + ρ |(1/B) Σ_i ℓ_i| (EMA, Choice ρ = 0.01); starts at the first value.  Eq. (19)"""
    if loss_scale is None:
        return abs(mean_loss)
    return (1.0 - rate) * loss_scale + rate * abs(mean_loss)


def add_regulariser(wiring, net, theta, params, grads, g_theta, kappa, lam_w):
    """Add the gradients of R_n = κ_n C(θ) + (λ_w/2) Σ_j θ_j ‖w_j‖², Eq. (16), to ĝ_W and ĝ_θ.

    θ:  + κ_n ∂C/∂θ_j + (λ_w/2)‖w_j‖²        Eq. (18), (21)
    W:  + λ_w θ_j w_j                          Eq. (20)
    Returns new dicts (inputs are not modified).
    """
    dC = cost_grad(wiring, theta, net)
    g_theta = dict(g_theta)
    grads = {k: dict(v) for k, v in grads.items()}
    for spec in wiring.net_layers(net):
        if not spec.gated:
            continue
        W = params[spec.name]["W"]                                     # (n_in, n): column j = w_j
        # κ_n ∂C/∂θ_j + (λ_w/2) ‖w_j‖²
        g_theta[spec.name] = g_theta[spec.name] + kappa * dC[spec.name] + 0.5 * lam_w * np.sum(W * W, axis=0)
        if lam_w:
            # λ_w θ_j w_j
            grads[spec.name]["W"] = grads[spec.name]["W"] + lam_w * W * theta[spec.name]
    return grads, g_theta
