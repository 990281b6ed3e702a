"""Golden-vector components for layers and networks: dense, BN, swish, gated layer, DenseNet block,
OFENet aux loss, whole OFENet (docs/REFERENCE.md; registry and file writing in xiref/reference.py).

Each component is sample(rng) -> inputs and compute(inputs) -> results, computed with xiref's own forward
and hand-written backward passes. Also the helpers and constants the other component module shares.
"""
import numpy as np

from . import layers as L
from . import network as N
from . import ofenet as OF
from . import wiring as Wi

B = 6                  # batch size of every component
EPS_BN = 1e-3          # ε_bn (Eq. 2′), xiref's default
EPS_XI = 0.01          # ε_ξ (Eq. 4) of the golden vectors (tests/golden); training defaults to 0.001
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


