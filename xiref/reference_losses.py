"""Golden-vector components for the estimators, the cost and SAC: score function per baseline, exact
enumeration (one and two gated layers), C(θ) and ∂C/∂θ, tanh-Gaussian log-prob (also in its tails),
critic, actor and α losses (also with exact ties of the twin critics) (docs/REFERENCE.md).

Each component is sample(rng) -> inputs and compute(inputs) -> results, computed with xiref's own code.
"""
import math

import numpy as np

from . import gates as G
from . import network as N
from . import sac
from . import wiring as Wi
from .reference_nets import EPS_XI, B, _layer_params, _net_grads, _net_params, _short

# ====================================================================== score function, Eq. (4), (22)–(23)
SF_THETA = np.array([1.0, 0.6, 0.3, 0.004])          # θ̃ = (0.99, 0.6, 0.3, 0.01): both clip ends


def _sf_mask(rng, rows=(0, 1)):
    xi = G.sample_mask(rng, SF_THETA, B, EPS_XI)
    xi[rows[0], 0], xi[rows[1], 3] = 0.0, 1.0        # the rare draws (scores −100 and +100) must occur
    return xi


def sample_score(rng):
    return {"param/theta": SF_THETA.copy(), "mask/xi": _sf_mask(rng), "data/ell": np.exp(rng.normal(size=B)),
            "const/eps_xi": EPS_XI}


def _compute_score(x, baseline):
    tt = G.theta_tilde(x["param/theta"], float(x["const/eps_xi"]))
    ell, xi = x["data/ell"], x["mask/xi"]
    return {"output/theta_tilde": tt, "output/score": G.score(xi, tt), "loss": np.mean(ell),
            "grad/theta": G.score_function_grad(ell, xi, tt, baseline)}


def compute_score_none(x):
    return _compute_score(x, "none")


def compute_score_loo(x):
    return _compute_score(x, "loo")


def sample_score_pair(rng):
    return {"param/theta": SF_THETA.copy(), "mask/xi1": _sf_mask(rng), "mask/xi2": _sf_mask(rng, (3, 4)),
            "data/ell1": np.exp(rng.normal(size=B)), "data/ell2": np.exp(rng.normal(size=B)),
            "const/eps_xi": EPS_XI}


def compute_score_pair(x):
    tt = G.theta_tilde(x["param/theta"], float(x["const/eps_xi"]))
    ell1, ell2, xi1, xi2 = x["data/ell1"], x["data/ell2"], x["mask/xi1"], x["mask/xi2"]
    return {"output/theta_tilde": tt, "output/score1": G.score(xi1, tt), "output/score2": G.score(xi2, tt),
            "loss": 0.5 * (np.mean(ell1) + np.mean(ell2)), "grad/theta": G.pair_grad(ell1, ell2, xi1, xi2, tt)}


# ====================================================================== flip estimator, Eq. (33)–(34)
FLIP_N = 5                                    # gated units; every example flips one of them


def sample_flip(rng):
    """Masks, the unit u_i each example flips (stored as float64), per-example losses at the masks and with
    u_i flipped, and Taylor slopes c_ij."""
    return {"mask/xi": (rng.random((B, FLIP_N)) < 0.7).astype(float),
            "data/u": rng.integers(0, FLIP_N, size=B).astype(float), "data/ell": np.exp(rng.normal(size=B)),
            "data/ell_flip": np.exp(rng.normal(size=B)), "data/slope": rng.normal(size=(B, FLIP_N))}


def compute_flip(x):
    ell, u = x["data/ell"], np.asarray(x["data/u"]).astype(np.int64)
    return {"output/g_theta": G.flip_grad(ell, x["data/ell_flip"], x["mask/xi"], u, x["data/slope"]),
            "loss": np.mean(ell)}


# ====================================================================== exact θ-gradient, Eq. (21), (24)
EX_IN = 3
EX_THETA = {(4,): [0.8, 0.3, 1.0, 0.55],              # exact_grad: one gated layer; one θ_j at a corner
            (3, 2): [0.7, 0.35, 1.0, 0.6, 0.2]}       # exact_grad_deep: two gated layers, θ = [θ_h1, θ_h2]


def _exact_specs(hidden=(4,)):
    return Wi.mlp("net", ("h",), hidden, 1)


def _exact_hidden(x):
    """The hidden widths of a stored exact-enumeration component: h1, h2, … as long as they exist."""
    widths = []
    while f"param/h{len(widths) + 1}/W" in x:
        widths.append(x[f"param/h{len(widths) + 1}/W"].shape[1])
    return tuple(widths)


def split_units(vector, specs):
    """One vector over every gated unit (θ or a mask ξ) -> {layer: its part}: the gated layers in the
    order of `specs`, each layer's units in order, concatenated (the convention of param/theta)."""
    out, k = {}, 0
    for s in specs:
        if s.gated:
            out[s.name], k = vector[k:k + s.n_out], k + s.n_out
    if k != len(vector):
        raise ValueError(f"{len(vector)} entries for {k} gated units")
    return out


def _sample_exact(rng, hidden):
    specs = _exact_specs(hidden)
    x = {"input/h": rng.normal(size=(B, EX_IN))}
    x.update(_layer_params(rng, specs, {"h": EX_IN}))
    for s in specs:                                             # every ReLU unit active on some examples
        if s.gated:
            x[f"param/{_short(s.name)}/b"] = np.abs(x[f"param/{_short(s.name)}/b"]) + 0.5
    x["param/theta"] = np.array(EX_THETA[hidden])
    x["data/y"] = rng.normal(size=B)
    return x


def sample_exact_grad(rng):
    return _sample_exact(rng, (4,))


def sample_exact_grad_deep(rng):
    return _sample_exact(rng, (3, 2))


def compute_exact_grad(x):
    """Both exact components: q_θ(ξ) from the raw θ (Eq. 24; not θ̃), ξ split over the gated layers."""
    specs = _exact_specs(_exact_hidden(x))
    params, theta, h, y = _net_params(x, specs), x["param/theta"], x["input/h"], x["data/y"]
    out = specs[-1].name

    def run(mask):
        """(1/B) Σ_i (out_i − y_i)² under the mask ξ (n,) shared by every example, and its backward."""
        gates = split_units(mask, specs)
        acts, cache = N.forward(specs, params, {"h": h}, gates)
        r = acts[out][:, 0] - y
        grads, d_in, _ = N.backward(specs, params, gates, cache, {out: (2.0 / B * r)[:, None]})
        return np.mean(r * r), grads, d_in["h"]

    masks = G.all_masks(len(theta))
    q = G.mask_probability(masks, theta)
    runs = [run(m) for m in masks]                                    # one forward/backward per mask
    ell = np.array([r[0] for r in runs])

    def loss_of_masks(_masks):                                        # the oracle's ℓ(ξ), already computed
        return ell

    # ∂E_q[ℓ]/∂W = Σ_ξ q(ξ) ∂ℓ(ξ)/∂W, summed in enumeration order
    acc = {s.name: {"W": 0.0, "b": 0.0} for s in specs}
    dh = 0.0
    for (_, g, d), qm in zip(runs, q):
        acc = {n: {k: v + qm * g[n][k] for k, v in p.items()} for n, p in acc.items()}
        dh = dh + qm * d
    return {"output/masks": masks, "output/q": q, "output/ell": ell,
            "loss": G.exact_expectation(loss_of_masks, theta), "grad/theta": G.exact_grad(loss_of_masks, theta),
            "grad/h": dh, **_net_grads(acc, specs)}


# ====================================================================== C(θ), ∂C/∂θ, Eq. (26)–(30)
def _cost_wiring():
    return Wi.agent_wiring(3, 2, hidden=(4, 3), ofenet=dict(n_layers=2, units=3, target_dim=2))


def sample_cost(rng):
    wiring = _cost_wiring()
    x = {}
    for name in wiring.gated_names():
        x[f"param/theta/{name}"] = rng.uniform(0.0, 1.0, wiring.layer(name).n_out)
    x["param/theta/actor/h1"][0] = 0.0                  # a pruned-to-be unit and a settled one
    x["param/theta/critic1/h2"][1] = 1.0
    return x


def compute_cost(x):
    wiring = _cost_wiring()
    theta = {name: x[f"param/theta/{name}"] for name in wiring.gated_names()}
    dC = Wi.cost_grad(wiring, theta)
    return {"output/cost_ones": Wi.cost(wiring, Wi.ones_theta(wiring)), "output/macs": Wi.macs(wiring, theta),
            "loss": Wi.cost(wiring, theta), **{f"grad/theta/{name}": dC[name] for name in wiring.gated_names()}}


def _cost_config():
    wiring = _cost_wiring()
    return {"free": [list(f) for f in wiring.free],
            "layers": [{"name": s.name, "inputs": list(s.inputs), "n_out": s.n_out, "gated": s.gated, "bn": s.bn}
                       for s in wiring.layers]}


# ====================================================================== SAC, Eq. (9)–(13)
SAC_A = 2


def sample_tanh_gaussian(rng):
    out = np.concatenate([rng.normal(0.0, 1.5, (B, SAC_A)), rng.normal(0.0, 1.0, (B, SAC_A))], axis=1)
    return {"input/out": out, "noise/eps": rng.normal(size=(B, SAC_A)), "const/log_scale": np.log([1.0, 2.0]),
            "cot/a": rng.normal(size=(B, SAC_A)), "cot/log_pi": rng.normal(size=B)}


def compute_tanh_gaussian(x):
    a, log_pi, cache = sac.tanh_gaussian(x["input/out"], x["noise/eps"], x["const/log_scale"])
    Ra, Rl = x["cot/a"], x["cot/log_pi"]
    return {"output/a": a, "output/log_pi": log_pi, "loss": np.sum(a * Ra) + np.sum(log_pi * Rl),
            "grad/out": sac.tanh_gaussian_backward(Ra, Rl, cache)}


# x = μ + σ ε near ±20, ±10.5, −12, 15, 35 (σ ≈ 0.01): tanh x rounds to ±1 at |x| ≳ 19, so a naive
# log(1 − tanh² x) is −inf there and off by ≳ 1e-8 at |x| ≈ 10; x ≈ −10.04 is where a softplus that returns
# its argument above 20 (torch.nn.functional.softplus) drops 2e-9.   Eq. (9)
TAIL_MU = np.array([[20.0, -20.0], [-20.5, 0.4], [-10.04, 0.3], [10.5, -12.0], [15.0, -6.0], [-0.5, 35.0]])


def sample_tanh_gaussian_tails(rng):
    lam = rng.uniform(-2.5, -1.5, (B, SAC_A))   # log σ ∈ (−4.95, −4.67): x stays within 0.05 of μ
    return {"input/out": np.concatenate([TAIL_MU, lam], axis=1), "noise/eps": rng.normal(size=(B, SAC_A)),
            "const/log_scale": np.array([0.0, math.log(2.0)]), "cot/a": rng.normal(size=(B, SAC_A)),
            "cot/log_pi": rng.normal(size=B)}


def sample_critic_loss(rng):
    return {"data/r": rng.normal(size=B), "data/d": np.array([0.0, 0.0, 1.0, 0.0, 0.0, 1.0]),
            "data/q1_next": rng.normal(size=B), "data/q2_next": rng.normal(size=B),
            "data/log_pi_next": rng.normal(size=B), "const/alpha": 0.2, "const/gamma": 0.99,
            "input/q1": rng.normal(size=B), "input/q2": rng.normal(size=B)}


def compute_critic_loss(x):
    y = sac.td_target(x["data/r"], x["data/d"], x["data/q1_next"], x["data/q2_next"], x["data/log_pi_next"],
                      float(x["const/alpha"]), float(x["const/gamma"]))
    ell1, d1 = sac.critic_loss(x["input/q1"], y)
    ell2, d2 = sac.critic_loss(x["input/q2"], y)
    return {"output/y": y, "output/ell1": ell1, "output/ell2": ell2, "loss": np.mean(ell1) + np.mean(ell2),
            "grad/q1": d1, "grad/q2": d2}


TIES_NEXT, TIES_Q = [1, 2, 4], [0, 3, 4]               # rows where the two critics agree exactly


def sample_critic_loss_ties(rng):
    """critic_loss with q̄1′ = q̄2′ on rows 1, 2 (terminal), 4: y is the same whichever critic the min picks."""
    x = sample_critic_loss(rng)
    x["data/q2_next"][TIES_NEXT] = x["data/q1_next"][TIES_NEXT]
    return x


def sample_actor_loss(rng):
    return {"input/log_pi": rng.normal(size=B), "input/q1": rng.normal(size=B), "input/q2": rng.normal(size=B),
            "const/alpha": 0.2}


def compute_actor_loss(x):
    ell, d_lp, d_q1, d_q2 = sac.actor_loss(x["input/log_pi"], x["input/q1"], x["input/q2"], float(x["const/alpha"]))
    return {"output/ell": ell, "loss": np.mean(ell), "grad/log_pi": d_lp, "grad/q1": d_q1, "grad/q2": d_q2}


def sample_actor_loss_ties(rng):
    """actor_loss with q1 = q2 on rows 0, 3, 4: the whole gradient −1/B goes to critic 1 there (q1 <= q2)."""
    x = sample_actor_loss(rng)
    x["input/q2"][TIES_Q] = x["input/q1"][TIES_Q]
    return x


def sample_alpha_loss(rng):
    return {"param/log_alpha": np.log(0.3), "data/log_pi": rng.normal(0.0, 2.0, B),
            "const/target_entropy": -float(SAC_A)}


def compute_alpha_loss(x):
    loss, g = sac.alpha_loss(float(x["param/log_alpha"]), x["data/log_pi"], float(x["const/target_entropy"]))
    return {"loss": loss, "grad/log_alpha": g}


