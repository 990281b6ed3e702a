"""Golden vectors: xiref's own values and gradients for small, fixed inputs (docs/REFERENCE.md).

`python -m xiref reference --out DIR` writes one `DIR/<component>.npz` per component and `DIR/manifest.json`.
Every component is a pair of functions:

    sample(rng)     -> inputs:  input/…, param/…, data/…, mask/…, noise/…, const/…, cot/…
    compute(inputs) -> results: output/…, loss, grad/…

computed with xiref's forward passes and hand-written backward passes (the reference *is* xiref). A file
holds inputs and results together. The components live in xiref/reference_nets.py (layers,
networks) and xiref/reference_losses.py (estimators, cost, SAC); this module registers and writes them. Key convention (the tables of docs/REFERENCE.md list every key):

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
from . import reference_losses as RL
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
    Component("score_none", ("4", "22", "23"), "score-function estimate, baseline none; loss = mean(ell)",
              RL.sample_score, RL.compute_score_none, {"B": RN.B, "baseline": "none"}),
    Component("score_loo", ("4", "22", "23"), "score-function estimate, baseline loo; loss = mean(ell)",
              RL.sample_score, RL.compute_score_loo, {"B": RN.B, "baseline": "loo"}),
    Component("score_pair", ("4", "22", "23"), "score-function estimate, baseline pair (two masks); "
              "loss = (mean(ell1) + mean(ell2)) / 2", RL.sample_score_pair, RL.compute_score_pair,
              {"B": RN.B, "baseline": "pair"}),
    Component("exact_grad", ("21", "24"), "E_q[ell] and its exact gradient by enumeration of all 2^4 masks "
              "(one mask shared by the batch); ell(xi) = mean_i (out_i - y_i)^2 of a gated ReLU MLP; "
              "loss = E_q[ell]", RL.sample_exact_grad, RL.compute_exact_grad,
              {"B": RN.B, "layers": RN._spec_config(RL._exact_specs()),
               "mask_order": "itertools.product((0, 1), repeat=n): first unit most significant"}),
    Component("cost", ("26", "27", "28", "29", "30"), "expected parameter count C(theta) of a small agent "
              "(OFENet 2x2x3, actor and critics 4,3); loss = C(theta)", RL.sample_cost, RL.compute_cost,
              {"wiring": RL._cost_config()}),
    Component("tanh_gaussian", ("9",), "reparameterised tanh-Gaussian sample a and log pi(a|s), noise given; "
              "loss = sum(a * cot/a) + sum(log_pi * cot/log_pi)", RL.sample_tanh_gaussian, RL.compute_tanh_gaussian,
              {"B": RN.B, "A": RL.SAC_A, "log_std": "-5 + 3.5 (tanh(lambda) + 1)"}),
    Component("critic_loss", ("10", "11"), "TD target y (stop-gradient) and both critics' squared errors; "
              "loss = mean(ell1) + mean(ell2)", RL.sample_critic_loss, RL.compute_critic_loss, {"B": RN.B}),
    Component("actor_loss", ("12",), "ell = alpha log_pi - min(q1, q2) (ties to critic 1); loss = mean(ell)",
              RL.sample_actor_loss, RL.compute_actor_loss, {"B": RN.B}),
    Component("alpha_loss", ("13",), "L = -mean(log_alpha (log_pi + target_entropy)), log_pi a constant; "
              "loss = L", RL.sample_alpha_loss, RL.compute_alpha_loss, {"B": RN.B}),
)
BY_NAME = {c.name: c for c in COMPONENTS}


def _rng(seed, name):
    """Each component's own generator: adding a component never changes another one's numbers."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def build(name, seed=0):
    """Inputs and results of one component, in file order: {key: float64 array}."""
    comp = BY_NAME[name]
    inputs = RN._f64(comp.sample(_rng(seed, name)))
    return {**inputs, **RN._f64(comp.compute(dict(inputs)))}


def compute(name, inputs):
    """xiref's results for stored inputs: a `fn` for xiref.gradcheck.compare."""
    return RN._f64(BY_NAME[name].compute({k: v for k, v in inputs.items() if k != "config"}))


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
        "batch": RN.B,
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
