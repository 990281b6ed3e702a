"""Golden vectors: xiref's own values and gradients for small, fixed inputs (docs/REFERENCE.md).

`python -m xiref reference --out DIR` writes one `DIR/<component>.npz` per component and `DIR/manifest.json`.
Every component is a pair of functions:

    sample(rng)     -> inputs:  input/…, param/…, data/…, mask/…, noise/…, const/…, cot/…
    compute(inputs) -> results: output/…, loss, grad/…

computed with xiref's forward passes and hand-written backward passes (the reference *is* xiref). A file
holds inputs and results together. Key convention (the tables of docs/REFERENCE.md list every key):

    input/k   differentiated input          grad/k   ∂loss/∂(input/k or param/k), same shape
    param/k   trainable parameter           loss     the scalar whose gradient grad/… is
    data/k    data the loss reads but is not differentiated (targets, o′, per-example losses)
    mask/k    gate mask ξ (0/1)             noise/k  reparameterisation noise ε
    const/k   hyperparameter (ε_bn, ε_ξ, γ, α, …)
    cot/k     random cotangent R: for layer components loss = Σ output/k ⊙ cot/k
    output/k  forward output

All arrays are float64 (0-d for scalars). Files are written without pickling, with fixed zip timestamps (the
same inputs give the same bytes) and atomically (temporary file + rename).
"""
import io
import json
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from . import __version__
from . import gates as G
from . import layers as L
from . import network as N
from . import ofenet as OF
from . import sac
from . import wiring as Wi
from .checkpoint import atomic_write_bytes, atomic_write_text
from .envs import UserError

B = 6                  # batch size of every component
EPS_BN = 1e-3          # ε_bn (Eq. 2′), xiref's default
EPS_XI = 0.01          # ε_ξ (Eq. 4), xiref's default
INPUT_PREFIXES = ("input", "param", "data", "mask", "noise", "const", "cot")   # what a foreign fn receives
RESULT_PREFIXES = ("output", "loss", "grad")                                    # what it returns


def _f64(tree):
    return {k: np.asarray(v, dtype=np.float64) for k, v in tree.items()}


def _short(name):
    """'ofenet/s1' -> 's1': golden keys name layers without their network."""
    return name.split("/")[-1]


def _spec_config(specs):
    """The layer list of a small network, as foreign implementations need it (source names shortened)."""
    return [{"name": _short(s.name), "inputs": [_short(i) for i in s.inputs], "n_out": s.n_out, "act": s.act,
             "gated": s.gated, "bn": s.bn} for s in specs]


def _layer_params(rng, specs, widths):
    """Glorot W (network.init_params) plus random b, BN s and c, so that no parameter is trivial."""
    params, _ = N.init_params(specs, widths, rng)
    out = {}
    for s in specs:
        p = params[s.name]
        out[f"param/{_short(s.name)}/W"] = p["W"]
        out[f"param/{_short(s.name)}/b"] = rng.normal(0.0, 0.3, s.n_out)
        if s.bn:
            out[f"param/{_short(s.name)}/s"] = rng.uniform(0.5, 1.5, s.n_out)
            out[f"param/{_short(s.name)}/c"] = rng.normal(0.0, 0.3, s.n_out)
    return out


def _net_params(x, specs):
    return {s.name: {k: x[f"param/{_short(s.name)}/{k}"] for k in ("W", "b", "s", "c")
                     if f"param/{_short(s.name)}/{k}" in x} for s in specs}


def _net_grads(grads, specs):
    return {f"grad/{_short(s.name)}/{k}": grads[s.name][k] for s in specs for k in ("W", "b", "s", "c")
            if k in grads[s.name]}


def _masks(rng, specs, p=0.7):
    return {f"mask/{_short(s.name)}": (rng.random((B, s.n_out)) < p).astype(np.float64) for s in specs if s.gated}


# ====================================================================== dense, Eq. (1)
def sample_dense(rng):
    return {"input/h": rng.normal(size=(B, 4)), "param/W": rng.normal(0.0, 0.5, (4, 3)),
            "param/b": rng.normal(0.0, 0.3, 3), "cot/u": rng.normal(size=(B, 3))}


def compute_dense(x):
    h, W, R = x["input/h"], x["param/W"], x["cot/u"]
    u = L.dense_forward(h, W, x["param/b"])
    dh, dW, db = L.dense_backward(R, h, W)
    return {"output/u": u, "loss": np.sum(u * R), "grad/h": dh, "grad/W": dW, "grad/b": db}


# ====================================================================== BatchNorm (training mode), Eq. (2′)
def sample_batchnorm(rng):
    return {"input/u": rng.normal(1.0, 2.0, (B, 3)), "param/s": rng.uniform(0.5, 1.5, 3),
            "param/c": rng.normal(0.0, 0.3, 3), "const/eps_bn": EPS_BN, "cot/y": rng.normal(size=(B, 3))}


def compute_batchnorm(x):
    s, R = x["param/s"], x["cot/y"]
    y, mu, var, xhat, inv_std = L.batchnorm_forward_train(x["input/u"], s, x["param/c"], float(x["const/eps_bn"]))
    du, ds, dc = L.batchnorm_backward_train(R, s, xhat, inv_std)
    return {"output/y": y, "output/mean": mu, "output/var": var, "loss": np.sum(y * R),
            "grad/u": du, "grad/s": ds, "grad/c": dc}


# ====================================================================== swish, §0
def sample_swish(rng):
    return {"input/u": rng.normal(0.0, 2.0, (B, 3)), "cot/y": rng.normal(size=(B, 3))}


def compute_swish(x):
    u, R = x["input/u"], x["cot/y"]
    y = L.swish_forward(u)
    return {"output/y": y, "loss": np.sum(y * R), "grad/u": L.swish_backward(R, u)}


# ====================================================================== gated ReLU layer, Eq. (1)–(2)
def _gated_spec(n):
    return Wi.LayerSpec("layer", "net", ("h",), n, "relu", True)


def sample_gated_layer(rng):
    return {"input/h": rng.normal(size=(B, 4)), "param/W": rng.normal(0.0, 0.6, (4, 5)),
            "param/b": rng.uniform(0.1, 0.6, 5), "mask/xi": (rng.random((B, 5)) < 0.7).astype(np.float64),
            "cot/y": rng.normal(size=(B, 5))}


def compute_gated_layer(x):
    spec = _gated_spec(x["param/W"].shape[1])
    params, gates = {"layer": {"W": x["param/W"], "b": x["param/b"]}}, {"layer": x["mask/xi"]}
    acts, cache = N.forward([spec], params, {"h": x["input/h"]}, gates)
    y, R = acts["layer"], x["cot/y"]
    grads, d_in, d_gates = N.backward([spec], params, gates, cache, {"layer": R})
    return {"output/y": y, "loss": np.sum(y * R), "grad/h": d_in["h"], "grad/W": grads["layer"]["W"],
            "grad/b": grads["layer"]["b"], "grad/xi": d_gates["layer"]}


# ====================================================================== DenseNet block, Eq. (2′), (5)
DN_IN, DN_LAYERS, DN_UNITS = 4, 2, 3


def _densenet_specs():
    return Wi.densenet_block("block", "l", ("x",), DN_LAYERS, DN_UNITS)


def sample_densenet_block(rng):
    specs, out_src = _densenet_specs()
    x = {"input/x": rng.normal(size=(B, DN_IN))}
    x.update(_layer_params(rng, specs, {"x": DN_IN}))
    x.update(_masks(rng, specs))
    x["const/eps_bn"] = EPS_BN
    x["cot/z"] = rng.normal(size=(B, DN_IN + DN_LAYERS * DN_UNITS))
    return x


def compute_densenet_block(x):
    specs, out_src = _densenet_specs()
    params = _net_params(x, specs)
    gates = {s.name: x[f"mask/{_short(s.name)}"] for s in specs}
    eps = float(x["const/eps_bn"])
    acts, cache = N.forward(specs, params, {"x": x["input/x"]}, gates, bn_train=True, eps_bn=eps)
    z, R = L.concat_forward([acts[s] for s in out_src]), x["cot/z"]
    pieces = L.concat_backward(R, [acts[s].shape[1] for s in out_src])
    grads, d_in, _ = N.backward(specs, params, gates, cache, dict(zip(out_src, pieces)), bn_train=True)
    return {"output/z": z, "loss": np.sum(z * R), "grad/x": d_in["x"], **_net_grads(grads, specs)}


# ====================================================================== OFENet auxiliary loss, Eq. (8)
OF_OBS, OF_ACT, OF_T = 5, 2, 3


def sample_ofenet_aux_loss(rng):
    return {"input/o_hat": rng.normal(size=(B, OF_T)), "data/o_next": rng.normal(size=(B, OF_OBS))}


def compute_ofenet_aux_loss(x):
    ell, d = OF.aux_loss(x["input/o_hat"], x["data/o_next"])
    return {"output/ell": ell, "loss": np.mean(ell), "grad/o_hat": d}


# ====================================================================== whole gated OFENet, Eq. (2′), (5)–(8)
def _ofenet_specs():
    wiring = Wi.agent_wiring(OF_OBS, OF_ACT, hidden=(2,),
                             ofenet=dict(n_layers=DN_LAYERS, units=DN_UNITS, target_dim=OF_T))
    return wiring.net_layers("ofenet")


def sample_ofenet(rng):
    specs = _ofenet_specs()
    x = {"input/obs": rng.normal(size=(B, OF_OBS)), "input/act": rng.uniform(-1.0, 1.0, (B, OF_ACT))}
    x.update(_layer_params(rng, specs, {"obs": OF_OBS, "act": OF_ACT}))
    x.update(_masks(rng, specs))
    x["data/o_next"] = rng.normal(size=(B, OF_OBS))
    x["const/eps_bn"] = EPS_BN
    return x


def compute_ofenet(x):
    specs = _ofenet_specs()
    params = _net_params(x, specs)
    gates = {s.name: x[f"mask/{_short(s.name)}"] for s in specs if s.gated}
    acts, cache = N.forward(specs, params, {"obs": x["input/obs"], "act": x["input/act"]}, gates,
                            bn_train=True, eps_bn=float(x["const/eps_bn"]))
    head = specs[-1]
    ell, d = OF.aux_loss(acts[head.name], x["data/o_next"])
    grads, d_in, _ = N.backward(specs, params, gates, cache, {head.name: d}, bn_train=True)
    return {"output/z_oa": L.concat_forward([acts[s] for s in head.inputs]), "output/o_hat": acts[head.name],
            "output/ell": ell, "loss": np.mean(ell), "grad/obs": d_in["obs"], "grad/act": d_in["act"],
            **_net_grads(grads, specs)}


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


# ====================================================================== exact θ-gradient, Eq. (21), (24)
EX_IN, EX_UNITS = 3, 4


def _exact_specs():
    return Wi.mlp("net", ("h",), (EX_UNITS,), 1)


def sample_exact_grad(rng):
    specs = _exact_specs()
    x = {"input/h": rng.normal(size=(B, EX_IN))}
    x.update(_layer_params(rng, specs, {"h": EX_IN}))
    x["param/h1/b"] = np.abs(x["param/h1/b"]) + 0.5             # every ReLU unit active on some examples
    x["param/theta"] = np.array([0.8, 0.3, 1.0, 0.55])          # one corner: the oracle is valid there too
    x["data/y"] = rng.normal(size=B)
    return x


def compute_exact_grad(x):
    specs = _exact_specs()
    params, theta, h, y = _net_params(x, specs), x["param/theta"], x["input/h"], x["data/y"]
    hidden, out = specs[0].name, specs[-1].name

    def run(mask):
        """(1/B) Σ_i (out_i − y_i)² under the mask ξ (n,) shared by every example, and its backward."""
        acts, cache = N.forward(specs, params, {"h": h}, {hidden: mask})
        r = acts[out][:, 0] - y
        grads, d_in, _ = N.backward(specs, params, {hidden: mask}, cache, {out: (2.0 / B * r)[:, None]})
        return np.mean(r * r), grads, d_in["h"]

    def loss_of_masks(masks):
        return np.array([run(m)[0] for m in masks])

    masks = G.all_masks(len(theta))
    q = G.mask_probability(masks, theta)
    # ∂E_q[ℓ]/∂W = Σ_ξ q(ξ) ∂ℓ(ξ)/∂W, summed in enumeration order
    acc = {s.name: {"W": 0.0, "b": 0.0} for s in specs}
    dh = 0.0
    for m, qm in zip(masks, q):
        _, g, d = run(m)
        acc = {n: {k: v + qm * g[n][k] for k, v in p.items()} for n, p in acc.items()}
        dh = dh + qm * d
    return {"output/masks": masks, "output/q": q, "output/ell": loss_of_masks(masks),
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


def sample_actor_loss(rng):
    return {"input/log_pi": rng.normal(size=B), "input/q1": rng.normal(size=B), "input/q2": rng.normal(size=B),
            "const/alpha": 0.2}


def compute_actor_loss(x):
    ell, d_lp, d_q1, d_q2 = sac.actor_loss(x["input/log_pi"], x["input/q1"], x["input/q2"], float(x["const/alpha"]))
    return {"output/ell": ell, "loss": np.mean(ell), "grad/log_pi": d_lp, "grad/q1": d_q1, "grad/q2": d_q2}


def sample_alpha_loss(rng):
    return {"param/log_alpha": np.log(0.3), "data/log_pi": rng.normal(0.0, 2.0, B),
            "const/target_entropy": -float(SAC_A)}


def compute_alpha_loss(x):
    loss, g = sac.alpha_loss(float(x["param/log_alpha"]), x["data/log_pi"], float(x["const/target_entropy"]))
    return {"loss": loss, "grad/log_alpha": g}


# ====================================================================== registry
@dataclass(frozen=True)
class Component:
    name: str
    equations: tuple          # equation numbers of docs/METHOD.md
    summary: str              # what the file computes, and its loss
    sample: object            # rng -> inputs
    compute: object           # inputs -> results
    config: dict = field(default_factory=dict)


_DN = {"B": B, "eps_bn": EPS_BN, "bn": "training mode (batch statistics, biased variance)"}
COMPONENTS = (
    Component("dense", ("1",), "u = h W + b; loss = sum(u * cot/u)", sample_dense, compute_dense, {"B": B}),
    Component("batchnorm", ("2′",), "BN(u) in training mode (batch mean, biased batch variance); "
              "loss = sum(y * cot/y)", sample_batchnorm, compute_batchnorm, dict(_DN)),
    Component("swish", ("2′",), "y = u sigmoid(u) (OFENet activation, §0); loss = sum(y * cot/y)",
              sample_swish, compute_swish, {"B": B}),
    Component("gated_layer", ("1", "2"), "y = xi * relu(h W + b) with a given mask; loss = sum(y * cot/y); "
              "grad/xi = ∂loss/∂ξ (the raw material of Eq. 25)", sample_gated_layer, compute_gated_layer,
              {"B": B, "act": "relu"}),
    Component("densenet_block", ("2′", "5"), "one gated DenseNet block (swish, training-mode BN, given masks); "
              "z = [x, y_1, y_2]; loss = sum(z * cot/z)", sample_densenet_block, compute_densenet_block,
              dict(_DN, layers=_spec_config(_densenet_specs()[0]), output=["x", "l1", "l2"])),
    Component("ofenet_aux_loss", ("8",), "ell_i = (1/T) ||o_hat_i - o_next_i[:T]||^2; loss = mean(ell)",
              sample_ofenet_aux_loss, compute_ofenet_aux_loss, {"B": B, "T": OF_T}),
    Component("ofenet", ("2′", "5", "6", "7", "8"), "whole gated OFENet (two DenseNet blocks, head, aux loss) "
              "with given masks and training-mode BN; loss = mean(ell)", sample_ofenet, compute_ofenet,
              dict(_DN, T=OF_T, layers=_spec_config(_ofenet_specs()))),
    Component("score_none", ("4", "22", "23"), "score-function estimate, baseline none; loss = mean(ell)",
              sample_score, compute_score_none, {"B": B, "baseline": "none"}),
    Component("score_loo", ("4", "22", "23"), "score-function estimate, baseline loo; loss = mean(ell)",
              sample_score, compute_score_loo, {"B": B, "baseline": "loo"}),
    Component("score_pair", ("4", "22", "23"), "score-function estimate, baseline pair (two masks); "
              "loss = (mean(ell1) + mean(ell2)) / 2", sample_score_pair, compute_score_pair,
              {"B": B, "baseline": "pair"}),
    Component("exact_grad", ("21", "24"), "E_q[ell] and its exact gradient by enumeration of all 2^4 masks "
              "(one mask shared by the batch); ell(xi) = mean_i (out_i - y_i)^2 of a gated ReLU MLP; "
              "loss = E_q[ell]", sample_exact_grad, compute_exact_grad,
              {"B": B, "layers": _spec_config(_exact_specs()),
               "mask_order": "itertools.product((0, 1), repeat=n): first unit most significant"}),
    Component("cost", ("26", "27", "28", "29", "30"), "expected parameter count C(theta) of a small agent "
              "(OFENet 2x2x3, actor and critics 4,3); loss = C(theta)", sample_cost, compute_cost,
              {"wiring": _cost_config()}),
    Component("tanh_gaussian", ("9",), "reparameterised tanh-Gaussian sample a and log pi(a|s), noise given; "
              "loss = sum(a * cot/a) + sum(log_pi * cot/log_pi)", sample_tanh_gaussian, compute_tanh_gaussian,
              {"B": B, "A": SAC_A, "log_std": "-5 + 3.5 (tanh(lambda) + 1)"}),
    Component("critic_loss", ("10", "11"), "TD target y (stop-gradient) and both critics' squared errors; "
              "loss = mean(ell1) + mean(ell2)", sample_critic_loss, compute_critic_loss, {"B": B}),
    Component("actor_loss", ("12",), "ell = alpha log_pi - min(q1, q2) (ties to critic 1); loss = mean(ell)",
              sample_actor_loss, compute_actor_loss, {"B": B}),
    Component("alpha_loss", ("13",), "L = -mean(log_alpha (log_pi + target_entropy)), log_pi a constant; "
              "loss = L", sample_alpha_loss, compute_alpha_loss, {"B": B}),
)
BY_NAME = {c.name: c for c in COMPONENTS}


def _rng(seed, name):
    """Each component's own generator: adding a component never changes another one's numbers."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def build(name, seed=0):
    """Inputs and results of one component, in file order: {key: float64 array}."""
    comp = BY_NAME[name]
    inputs = _f64(comp.sample(_rng(seed, name)))
    return {**inputs, **_f64(comp.compute(dict(inputs)))}


def compute(name, inputs):
    """xiref's results for stored inputs: a `fn` for xiref.gradcheck.compare."""
    return _f64(BY_NAME[name].compute({k: v for k, v in inputs.items() if k != "config"}))


def generate(seed=0):
    return {c.name: build(c.name, seed) for c in COMPONENTS}


def manifest(golden, seed=0):
    """manifest.json: component -> file, equations, summary, config, {key: shape}."""
    return {
        "format": "xiref golden vectors: one .npz per component (np.load(path, allow_pickle=False))",
        "doc": "docs/REFERENCE.md",
        "xiref_version": __version__,
        "seed": seed,
        "dtype": "float64",
        "batch": B,
        "input_prefixes": list(INPUT_PREFIXES),
        "result_prefixes": list(RESULT_PREFIXES),
        "components": {c.name: {"file": f"{c.name}.npz", "equations": list(c.equations), "summary": c.summary,
                                "config": c.config,
                                "keys": {k: list(v.shape) for k, v in golden[c.name].items()}}
                       for c in COMPONENTS},
    }


def npz_bytes(arrays):
    """An .npz (uncompressed zip of .npy) with fixed timestamps: equal arrays give equal bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for key, a in arrays.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w") as f:
                np.lib.format.write_array(f, np.asarray(a, order="C"), allow_pickle=False)   # keeps 0-d
    return buf.getvalue()


def write(out_dir, seed=0):
    """Write every component and manifest.json into out_dir (created if needed). Returns the manifest path."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"--out {out_dir} exists and is not a directory")
    os.makedirs(out_dir, exist_ok=True)
    golden = generate(seed)
    man = manifest(golden, seed)
    for name, arrays in golden.items():
        data = npz_bytes(arrays)
        atomic_write_bytes(os.path.join(out_dir, man["components"][name]["file"]), lambda f, d=data: f.write(d))
    path = os.path.join(out_dir, "manifest.json")
    atomic_write_text(path, manifest_json(man))
    return path


def manifest_json(man):
    """Indented JSON with every innermost list (shapes, equation numbers, input names) on one line."""
    text = json.dumps(man, indent=1, ensure_ascii=False)
    return re.sub(r"\[([^\[\]{}]*)\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text) + "\n"
