"""One XiNet update of one gated network: sampled gates, pathwise W-gradient, an unbiased θ-gradient,
cost-matched regulariser (docs/METHOD.md §4, §5, Eq. 15–23, 33–36).

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


def expected_gates(specs, theta, eps_xi=0.0, kind="theta"):
    """(n,) for every gated layer: the expected-gate forward's θ (Eq. 3), or θ̃ with kind "tilde" (Eq. 40)."""
    return {s.name: G.expected_gate(theta[s.name], eps_xi, kind) for s in specs if s.gated}


def _one_pass(specs, params, inputs, xi, loss_fn, stats, bn_train, eps_bn, reuse=None):
    acts, cache = N.forward(specs, params, inputs, xi, stats, bn_train, eps_bn, reuse)
    ell, d_acts = loss_fn(acts)
    grads, _, _ = N.backward(specs, params, xi, cache, d_acts, bn_train, input_grads=False, gate_grads=False)
    return ell, grads, cache, acts


def gated_gradients(specs, params, inputs, theta, loss_fn, rng, baseline="pair", eps_xi=0.001,
                    stats=None, bn_train=False, eps_bn=1e-3, theta_grad=True, value_fn=None):
    """Pathwise ĝ_W (Eq. 20, loss part) and an unbiased θ-gradient ĝ_θ from sampled masks: the score function
    with baseline none/loo/pair (Eq. 22–23), MuProp (Eq. 35) or the flip estimator (Eq. 33–34).

    Returns (mean_loss, grads_W, g_theta, caches) where caches is a list of forward caches whose first entry
    is the sampled pass (the caller folds its BN batch statistics into the running averages).
    With 'pair' each draw is its own BN batch, so ℓ^(3−m) does not depend on ξ^(m): exactly unbiased.
    With 'loo' and BN the batch statistics couple examples: b_i depends on ξ_i at O(1/B) (docs/METHOD.md).
    theta_grad=False (θ frozen, a warm-up of §7): one sampled pass for ĝ_W, and ĝ_θ = 0 without estimating it.
    value_fn(acts, gates) -> v (B,): the per-example objective ĝ_θ estimates the gradient of, when it is not
    loss_fn's ℓ (OFENet priced by its consumers too, METHOD §7); `gates` are the pass's {layer: ξ (B, n) or
    θ̃ (n,)}. ĝ_W and the mean loss still follow loss_fn. The control variates (flip's Taylor slope, MuProp's
    linearisation) stay those of loss_fn: any slope that does not look at the unit being estimated leaves
    each estimator unbiased (METHOD §5), so v's other terms cost variance, not bias.
    """
    def value(acts, gates, ell):
        return ell if value_fn is None else value_fn(acts, gates)

    gated = [s for s in specs if s.gated]
    if not gated:                       # ungated network: plain backprop, one pass
        ell, grads, cache, _ = _one_pass(specs, params, inputs, {}, loss_fn, stats, bn_train, eps_bn)
        return float(np.mean(ell)), grads, {}, [cache]
    if not theta_grad:
        xi = sample_gates(specs, theta, rng, next(iter(inputs.values())).shape[0], eps_xi)
        ell, grads, cache, _ = _one_pass(specs, params, inputs, xi, loss_fn, stats, bn_train, eps_bn)
        return float(np.mean(ell)), grads, {s.name: np.zeros_like(theta[s.name]) for s in gated}, [cache]
    if baseline == "flip":
        return _flip(specs, gated, params, inputs, theta, loss_fn, value, rng, eps_xi, stats, bn_train, eps_bn)
    theta_t = {s.name: G.theta_tilde(theta[s.name], eps_xi) for s in gated}
    batch = next(iter(inputs.values())).shape[0]
    xi1 = sample_gates(specs, theta, rng, batch, eps_xi)
    ell1, grads, cache1, acts1 = _one_pass(specs, params, inputs, xi1, loss_fn, stats, bn_train, eps_bn)
    v1 = value(acts1, xi1, ell1)
    if baseline == "pair":
        xi2 = sample_gates(specs, theta, rng, batch, eps_xi)
        # layers reading only the inputs (e.g. a critic's first layer) do not depend on the masks: reused
        ell2, grads2, cache2, acts2 = _one_pass(specs, params, inputs, xi2, loss_fn, stats, bn_train, eps_bn,
                                                cache1)
        v2 = value(acts2, xi2, ell2)
        # ĝ_W: average of the two pathwise gradients (each an unbiased estimate)
        grads = {k: {n: 0.5 * (g + grads2[k][n]) for n, g in gk.items()} for k, gk in grads.items()}
        g_theta = {s.name: G.pair_grad(v1, v2, xi1[s.name], xi2[s.name], theta_t[s.name]) for s in gated}
        return 0.5 * float(np.mean(ell1) + np.mean(ell2)), grads, g_theta, [cache1, cache2]
    if baseline in ("muprop", "muprop-loo"):
        # one pass at the mean gates ξ̄ = θ̃ (no ξ is looked at): ℓ_i(ξ̄) and the slope g_ik = ∂ℓ_i/∂ξ_ik there
        acts_m, cache_m = N.forward(specs, params, inputs, theta_t, stats, bn_train, eps_bn, cache1)
        ell_m, d_m = loss_fn(acts_m)
        v_m = value(acts_m, theta_t, ell_m)
        _, _, d_gates = N.backward(specs, params, theta_t, cache_m, d_m, bn_train, param_grads=False,
                                   input_grads=False)
        g = G.muprop_grad(v1, v_m, batch * _join_units(d_gates, gated), _join_units(xi1, gated),
                          _join_units(theta_t, gated), "loo" if baseline == "muprop-loo" else "none")
        return float(np.mean(ell1)), grads, _split_units(g, gated, theta), [cache1, cache_m]
    g_theta = {s.name: G.score_function_grad(v1, xi1[s.name], theta_t[s.name], baseline) for s in gated}
    return float(np.mean(ell1)), grads, g_theta, [cache1]


def _flip(specs, gated, params, inputs, theta, loss_fn, value, rng, eps_xi, stats, bn_train, eps_bn):
    """The flip estimator (Eq. 33–34): one sampled forward/backward, then one forward in which each example's
    gate u_i is inverted, at the sampled pass's BN statistics; the Taylor control variate c_ij = ∂ℓ_i/∂ξ_ij is
    read off the sampled pass (at those statistics held fixed)."""
    batch = next(iter(inputs.values())).shape[0]
    xi = sample_gates(specs, theta, rng, batch, eps_xi)
    acts, cache = N.forward(specs, params, inputs, xi, stats, bn_train, eps_bn)
    ell, d_acts = loss_fn(acts)
    batch_bn = bn_train and any(s.bn for s in specs)
    grads, _, d_gates = N.backward(specs, params, xi, cache, d_acts, bn_train, input_grads=False,
                                   gate_grads=not batch_bn)
    if batch_bn:
        # the statistics μ, v of the sampled batch held fixed (BN's inference-mode backward)   Eq. (36)
        stats = {s.name: {"mean": cache[s.name]["mu"], "var": cache[s.name]["var"]} for s in specs if s.bn}
        _, _, d_gates = N.backward(specs, params, xi, cache, d_acts, False, param_grads=False, input_grads=False)
    xi_all = _join_units(xi, gated)                                                        # (B, n)
    n = xi_all.shape[1]
    if n == 0:
        return float(np.mean(ell)), grads, {s.name: theta[s.name].copy() for s in gated}, [cache]
    u = G.flip_units(rng, batch, n)
    xi_f = _split_units(G.flip_mask(xi_all, u), gated, theta)
    acts_f, _ = N.forward(specs, params, inputs, xi_f, stats, False if batch_bn else bn_train, eps_bn, cache)
    ell_f = loss_value(loss_fn, acts_f)
    g = G.flip_grad(value(acts, xi, ell), value(acts_f, xi_f, ell_f), xi_all, u,
                    batch * _join_units(d_gates, gated))
    return float(np.mean(ell)), grads, _split_units(g, gated, theta), [cache]


def loss_value(loss_fn, acts):
    """ℓ (B,) alone: a loss_fn may offer `loss_fn.value(acts)` that skips its gradient (the actor's, Eq. 12)."""
    value = getattr(loss_fn, "value", None)
    return value(acts) if value is not None else loss_fn(acts)[0]


def _join_units(per_layer, gated):
    """{layer: (…, n_layer)} -> (…, n): every gated unit of a network in one vector, in layer order."""
    return np.concatenate([per_layer[s.name] for s in gated], axis=-1)


def _split_units(v, gated, theta):
    """(…, n) -> {layer: (…, n_layer)}, the inverse of _join_units (widths = current lengths of θ)."""
    out, start = {}, 0
    for s in gated:
        width = len(theta[s.name])
        out[s.name] = v[..., start:start + width]
        start += width
    return out


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
