"""Golden vectors: xiref's own values and gradients for small, fixed inputs (docs/REFERENCE.md).

`python -m xiref reference --out DIR` writes one `DIR/<component>.npz` per component and `DIR/manifest.json`.
Every component is a pair of functions:

    sample(rng)     -> inputs:  input/…, param/…, data/…, mask/…, noise/…, const/…, cot/…
    compute(inputs) -> results: output/…, loss, grad/…

computed with xiref's forward passes and hand-written backward passes (the reference *is* xiref). A file
holds inputs and results together. The components live in xiref/reference_nets.py (layers, networks) and
xiref/reference_losses.py (estimators, cost, SAC); this module registers and writes them. Key convention
(the tables of docs/REFERENCE.md list every key):

    input/k   differentiated input          grad/k   ∂loss/∂(input/k or param/k), same shape
    param/k   trainable parameter           loss     the scalar whose gradient grad/… is
    data/k    data the loss reads but is not differentiated (targets, o′, per-example losses)
    mask/k    gate mask ξ (0/1)             noise/k  reparameterisation noise ε
    const/k   hyperparameter (ε_bn, ε_ξ, γ, α, …)
    cot/k     random cotangent R: for layer components loss = Σ output/k ⊙ cot/k
    output/k  forward output

All arrays are float64 (0-d for scalars). Files are written without pickling, with fixed zip timestamps (the
same inputs give the same bytes) and atomically (temporary file + rename).

The stored inputs are the data: a check recomputes the results from them (within gradcheck.RTOL), since
inputs drawn again from the seed can differ in the last bits on another CPU (numpy's SIMD exp).
`python -m xiref.reference --refresh DIR` recomputes DIR's results from its stored inputs.
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
from . import reference_losses as RL
from . import gradcheck as GC
from . import reference_nets as RN
from .checkpoint import atomic_write_bytes, atomic_write_text
from .envs import UserError

B = RN.B                                   # batch size of every component
INPUT_PREFIXES, RESULT_PREFIXES = RN.INPUT_PREFIXES, RN.RESULT_PREFIXES

# ====================================================================== registry
@dataclass(frozen=True)
class Component:
    name: str
    equations: tuple          # equation numbers of docs/METHOD.md
    summary: str              # what the file computes, and its loss
    sample: object            # rng -> inputs
    compute: object           # inputs -> results
    config: dict = field(default_factory=dict)


_SF = ("grad/theta is the gradient in theta_tilde of the surrogate (1/B) sum_ij (ell_i - b_i) "
       "log q(xi_ij; theta_tilde_j), the baseline b held constant (Eq. 22), theta_tilde = clip(theta, eps_xi, "
       "1 - eps_xi) (Eq. 4); it is not the derivative of loss; loss = mean(ell)")
_EXACT = ("E_q[ell] and its exact gradient by enumeration of all 2^{n} masks (one mask shared by the batch); "
          "ell(xi) = mean_i (out_i - y_i)^2 of a gated ReLU MLP; q_theta(xi) = prod_j theta_j^xi_j "
          "(1 - theta_j)^(1 - xi_j) of the raw theta (not the clipped theta_tilde of Eq. 4); param/theta and each "
          "mask are the gated layers' units concatenated in layer order (config.theta_units); "
          "grad/theta = dE_q[ell]/dtheta; loss = E_q[ell]")


def _exact_config(hidden):
    specs = RL._exact_specs(hidden)
    return {"B": RN.B, "layers": RN._spec_config(specs),
            "theta_units": [[RN._short(s.name), s.n_out] for s in specs if s.gated],
            "mask_order": "itertools.product((0, 1), repeat=n): first unit most significant"}


_DN = {"B": RN.B, "eps_bn": RN.EPS_BN, "bn": "training mode (batch statistics, biased variance)"}
COMPONENTS = (
    Component("dense", ("1",), "u = h W + b; loss = sum(u * cot/u)", RN.sample_dense, RN.compute_dense, {"B": RN.B}),
    Component("batchnorm", ("2′",), "BN(u) in training mode (batch mean, biased batch variance); "
              "loss = sum(y * cot/y)", RN.sample_batchnorm, RN.compute_batchnorm, dict(_DN)),
    Component("swish", ("2′",), "y = u sigmoid(u) (OFENet activation, §0); loss = sum(y * cot/y)",
              RN.sample_swish, RN.compute_swish, {"B": RN.B}),
    Component("gated_layer", ("1", "2"), "y = xi * relu(h W + b) with a given mask; loss = sum(y * cot/y); "
              "grad/xi = ∂loss/∂ξ (the raw material of Eq. 25)", RN.sample_gated_layer, RN.compute_gated_layer,
              {"B": RN.B, "act": "relu"}),
    Component("densenet_block", ("2′", "5"), "one gated DenseNet block (swish, training-mode BN, given masks); "
              "z = [x, y_1, y_2]; loss = sum(z * cot/z)", RN.sample_densenet_block, RN.compute_densenet_block,
              dict(_DN, layers=RN._spec_config(RN._densenet_specs()[0]), output=["x", "l1", "l2"])),
    Component("ofenet_aux_loss", ("8",), "ell_i = (1/T) ||o_hat_i - o_next_i[:T]||^2; loss = mean(ell)",
              RN.sample_ofenet_aux_loss, RN.compute_ofenet_aux_loss, {"B": RN.B, "T": RN.OF_T}),
    Component("ofenet", ("2′", "5", "6", "7", "8"), "whole gated OFENet (two DenseNet blocks, head, aux loss) "
              "with given masks and training-mode BN; loss = mean(ell)", RN.sample_ofenet, RN.compute_ofenet,
              dict(_DN, T=RN.OF_T, layers=RN._spec_config(RN._ofenet_specs()))),
    Component("score_none", ("4", "22", "23"), "score-function estimate, baseline none (b_i = 0); " + _SF,
              RL.sample_score, RL.compute_score_none, {"B": RN.B, "baseline": "none"}),
    Component("score_loo", ("4", "22", "23"), "score-function estimate, baseline loo (b_i = mean of ell_k, "
              "k != i); " + _SF, RL.sample_score, RL.compute_score_loo, {"B": RN.B, "baseline": "loo"}),
    Component("score_pair", ("4", "22", "23"), "score-function estimate, baseline pair (two masks per example): "
              "grad/theta is the gradient in theta_tilde of the surrogate (1/2B) sum_ij [(ell1_i - ell2_i) "
              "log q(xi1_ij; theta_tilde_j) + (ell2_i - ell1_i) log q(xi2_ij; theta_tilde_j)] (Eq. 22-23), "
              "theta_tilde = clip(theta, eps_xi, 1 - eps_xi) (Eq. 4); it is not the derivative of loss; "
              "loss = (mean(ell1) + mean(ell2)) / 2", RL.sample_score_pair, RL.compute_score_pair,
              {"B": RN.B, "baseline": "pair"}),
    Component("flip", ("33", "34"), "flip estimate (the default estimator): output/g_theta_j = (1/B) sum_i "
              "[slope_ij + n 1[u_i = j] (D_i - slope_i,u_i)], D_i = (2 xi_i,u_i - 1)(ell_i - ell_flip_i), n = 5 "
              "units, u_i stored as float64; loss = mean(ell)", RL.sample_flip, RL.compute_flip,
              {"B": RN.B, "n": RL.FLIP_N}),
    Component("exact_grad", ("21", "24"), _EXACT.format(n=4), RL.sample_exact_grad, RL.compute_exact_grad,
              _exact_config((4,))),
    Component("cost", ("26", "27", "28", "29", "30"), "expected parameter count C(theta) of a small agent "
              "(OFENet 2x2x3, actor and critics 4,3); loss = C(theta)", RL.sample_cost, RL.compute_cost,
              {"wiring": RL._cost_config()}),
    Component("tanh_gaussian", ("9",), "reparameterised tanh-Gaussian sample a and log pi(a|s), noise given; "
              "loss = sum(a * cot/a) + sum(log_pi * cot/log_pi)", RL.sample_tanh_gaussian, RL.compute_tanh_gaussian,
              {"B": RN.B, "A": RL.SAC_A, "log_std": "-5 + 3.5 (tanh(lambda) + 1)"}),
    Component("critic_loss", ("10", "11"), "TD target y (stop-gradient) and both critics' squared errors; "
              "loss = mean(ell1) + mean(ell2)", RL.sample_critic_loss, RL.compute_critic_loss, {"B": RN.B}),
    Component("actor_loss", ("12",), "ell = alpha log_pi - min(q1, q2) (ties to critic 1); loss = mean(ell)",
              RL.sample_actor_loss, RL.compute_actor_loss, {"B": RN.B, "ties": "critic 1 (q1 <= q2)"}),
    Component("alpha_loss", ("13",), "L = -mean(log_alpha (log_pi + target_entropy)), log_pi a constant; "
              "loss = L", RL.sample_alpha_loss, RL.compute_alpha_loss, {"B": RN.B}),
    # added later, each with its own generator: the components above keep their numbers
    Component("exact_grad_deep", ("21", "24"), _EXACT.format(n=5), RL.sample_exact_grad_deep,
              RL.compute_exact_grad, _exact_config((3, 2))),
    Component("tanh_gaussian_tails", ("9",), "tanh_gaussian in the tails: x = mu + sigma eps near "
              "+-20, -20.5, -10.04, 10.5, -12, 15, -6, 35 (sigma about 0.01), where tanh x rounds to +-1 or "
              "nearly: log(1 - tanh^2 x) must be 2 (log 2 - x - softplus(-2x)) with softplus(z) = "
              "logaddexp(0, z) for every z; loss = sum(a * cot/a) + sum(log_pi * cot/log_pi)",
              RL.sample_tanh_gaussian_tails, RL.compute_tanh_gaussian,
              {"B": RN.B, "A": RL.SAC_A, "log_std": "-5 + 3.5 (tanh(lambda) + 1)"}),
    Component("critic_loss_ties", ("10", "11"), "critic_loss with q1_next == q2_next on rows 1, 2, 4: y takes "
              "that common value (any tie rule gives the same y; y is a stop-gradient); "
              "loss = mean(ell1) + mean(ell2)", RL.sample_critic_loss_ties, RL.compute_critic_loss, {"B": RN.B}),
    Component("actor_loss_ties", ("12",), "actor_loss with q1 == q2 on rows 0, 3, 4: on a tie the min picks "
              "critic 1 (q1 <= q2), so grad/q1 = -1/B and grad/q2 = 0 there (not split); loss = mean(ell)",
              RL.sample_actor_loss_ties, RL.compute_actor_loss, {"B": RN.B, "ties": "critic 1 (q1 <= q2)"}),
)
BY_NAME = {c.name: c for c in COMPONENTS}


def _rng(seed, name):
    """Each component's own generator: adding a component never changes another one's numbers."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def stored_inputs(arrays):
    """The input keys of a component's arrays (input/ … cot/), in file order."""
    return {k: v for k, v in arrays.items() if k.split("/")[0] in INPUT_PREFIXES}


def build(name, seed=0, inputs=None):
    """Inputs and results of one component, in file order: {key: float64 array}. The inputs are drawn from
    the component's generator, or taken as given (then only the results are computed)."""
    comp = BY_NAME[name]
    inputs = RN._f64(comp.sample(_rng(seed, name)) if inputs is None else inputs)
    return {**inputs, **RN._f64(comp.compute(dict(inputs)))}


def compute(name, inputs):
    """xiref's results for stored inputs: a `fn` for xiref.gradcheck.compare."""
    return RN._f64(BY_NAME[name].compute({k: v for k, v in inputs.items() if k != "config"}))


def generate(seed=0, stored=None):
    """Every component: {name: arrays}. stored ({name: arrays}, e.g. read_dir's): those components keep
    their stored inputs and only their results are recomputed; the others are drawn from the seed."""
    stored = stored or {}
    return {c.name: build(c.name, seed, stored_inputs(stored[c.name]) if c.name in stored else None)
            for c in COMPONENTS}


def read_dir(directory):
    """(seed, {name: arrays}) of the golden files in directory that this xiref knows; (0, {}) when none."""
    if not os.path.isfile(os.path.join(directory, "manifest.json")):
        return 0, {}
    man = GC.read_manifest(directory)
    stored = {name: GC.load(name, directory).arrays for name, entry in man["components"].items()
              if name in BY_NAME and os.path.isfile(os.path.join(directory, entry["file"]))}
    return int(man.get("seed", 0)), stored


def manifest(golden, seed=0):
    """manifest.json: component -> file, equations, summary, config, {key: shape}."""
    return {
        "format": "xiref golden vectors: one .npz per component (np.load(path, allow_pickle=False))",
        "doc": "docs/REFERENCE.md",
        "xiref_version": __version__,
        "seed": seed,
        "dtype": "float64",
        "batch": RN.B,
        "inputs": "the stored input/ param/ data/ mask/ noise/ const/ cot/ arrays are the data: recompute the "
                  "results from them (drawn again from the seed on another CPU they can differ in the last bits)",
        "tolerance": {"rtol": GC.RTOL, "floor": GC.FLOOR,
                      "error": "|got - want| / max(|want|, floor * S), S = max |want| over the keys of the same "
                               "kind (output/, grad/, loss) in the component; absolute error when S = 0"},
        "input_prefixes": list(RN.INPUT_PREFIXES),
        "result_prefixes": list(RN.RESULT_PREFIXES),
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


def write(out_dir, seed=0, keep_inputs=False):
    """Write every component and manifest.json into out_dir (created if needed). Returns the manifest path.

    keep_inputs: the components already in out_dir keep their stored inputs (and out_dir's seed), only
    their results are recomputed; components without a file there are drawn from the seed.
    """
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"--out {out_dir} exists and is not a directory")
    os.makedirs(out_dir, exist_ok=True)
    stored = {}
    if keep_inputs:
        seed, stored = read_dir(out_dir)
    golden = generate(seed, stored)
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


def main(argv=None):
    """python -m xiref.reference --refresh DIR: recompute every result in DIR from its stored inputs."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m xiref.reference", description=main.__doc__)
    ap.add_argument("--refresh", required=True, metavar="DIR",
                    help="golden directory whose results are recomputed (its inputs are kept; new components "
                         "are drawn from its seed)")
    args = ap.parse_args(argv)
    print(f"wrote {write(args.refresh, keep_inputs=True)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
