"""Export the compact, pruned networks of a run as plain arrays (docs/METHOD.md §7, §9).

`python -m xiref export RUN_DIR --out FILE.npz` writes, for every layer L of the agent (OFENet, actor,
critics; targets and optimiser state are not exported):

    L|W  (n_in, n)   weights with BN (inference statistics) and the expected gates θ folded in
    L|b  (n,)        bias, likewise folded
    __wiring__       uint8 JSON: [{"name", "inputs", "act"}, …] in forward order, and the free inputs
    __meta__         uint8 JSON: env, method, step, action scale and bias, xiref version

Folding is exact algebra: BN(u) = s (u − m)/√(v + ε) + c (Eq. (2′), inference statistics) is affine, so it
moves into W and b; a gate θ_j scales unit j's output (expected-gate forward, Eq. (3)), which every
consumer reads through one row of its W, so it moves into those rows.
The exported networks are therefore ungated and BN-free, and `load_policy(FILE)` acts exactly (up to
floating-point rounding) like the run's final deterministic policy tanh(μ).
"""
import json

import numpy as np

from . import checkpoint as ckpt
from . import layers as L
from .errors import UserError
from .runstate import checkpoint_path


def fold(agent):
    """Per-layer folded (W, b) of the agent's current networks (expected gates, inference BN)."""
    wr, cfg = agent.wiring, agent.cfg
    gates = agent.gates(*wr.nets())                                 # what the agent acts with (Eq. 3 or 40)
    out = {}
    for spec in wr.layers:
        p = agent.params[spec.name]
        W, b = p["W"].astype(np.float64), p["b"].astype(np.float64)
        if spec.bn:
            st = agent.stats[spec.name]
            # BN(hW + b) = (hW + b − m) s/√(v+ε) + c = h W' + b'                      Eq. (2′)
            k = p["s"] / np.sqrt(st["var"] + cfg.eps_bn)            # s/√(v+ε)
            W, b = W * k, (b - st["mean"]) * k + p["c"]
        # a gated source's units reach this layer as θ_j φ_j (Eq. 3; θ̃_j φ_j, Eq. 40): fold the gate into their rows
        scale = np.concatenate([np.ones(w) if src in wr.free_widths or not wr.layer(src).gated
                                else gates[src] for src, w in zip(spec.inputs, wr.source_widths(spec, agent.theta))]
                               ) if spec.inputs else np.ones(0)
        out[spec.name] = (W * scale[:, None], b)
    return out


def export_run(run_dir, out_path):
    """Load RUN_DIR's checkpoint into an agent and write the folded networks to out_path (atomic)."""
    import os
    if os.path.isdir(out_path) or not os.path.isdir(os.path.dirname(os.path.abspath(out_path))):
        raise UserError(f"--out {out_path}: not a file in an existing directory")
    if os.path.abspath(out_path) == os.path.abspath(checkpoint_path(run_dir)):
        raise UserError("--out would overwrite the run's own checkpoint")
    header, run = load_run(run_dir)
    cfg = run.cfg
    arrays = {}
    for name, (W, b) in fold(run.agent).items():
        arrays[f"{name}{ckpt.SEP}W"], arrays[f"{name}{ckpt.SEP}b"] = W, b
    wiring = {"free": list(run.agent.wiring.free),
              "layers": [{"name": s.name, "inputs": list(s.inputs), "act": s.act} for s in run.agent.wiring.layers]}
    meta = {"env": cfg.env, "method": cfg.method, "step": run.step, "scale": run.scale.tolist(),
            "bias": run.bias.tolist(), "xiref_version": header["xiref_version"]}
    arrays["__wiring__"] = np.frombuffer(json.dumps(wiring).encode(), dtype=np.uint8)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    ckpt.atomic_write_bytes(out_path, lambda f: np.savez(f, **arrays))
    return out_path


def load_run(run_dir):
    """(checkpoint header, restored train.Run) of run_dir, read and checked as `train --resume` reads it
    (xiref/readers.py); the run directory is the one given, wherever the run was made."""
    from .config import config_from_dict
    from .readers import read_run_checkpoint
    from .train import Run
    path = checkpoint_path(run_dir)
    header, flat = read_run_checkpoint(path)
    cfg = config_from_dict(header["config"], f"checkpoint {path}")
    cfg.out = run_dir
    try:
        run = Run(cfg)
    except UserError as exc:
        raise UserError(f"checkpoint {path}: {exc}") from None
    run.restore((header, flat))
    return header, run


def load_policy(path):
    """Returns act(obs (B, O)) -> a in [−1, 1]^A: tanh(μ) of the exported actor (after OFENet, if any)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        wiring = json.loads(bytes(arrays.pop("__wiring__")).decode())
        meta = json.loads(bytes(arrays.pop("__meta__")).decode())
    except Exception as exc:
        raise UserError(f"{path} is not an xiref export ({type(exc).__name__})") from None
    layers = [s for s in wiring["layers"] if s["name"].startswith(("ofenet/s", "actor/"))]
    act_dim = len(meta["scale"])

    def act(obs):
        acts = {"obs": np.asarray(obs, dtype=np.float64)}
        for s in layers:
            h = L.concat_forward([acts[src] for src in s["inputs"]])
            u = L.dense_forward(h, arrays[f"{s['name']}{ckpt.SEP}W"], arrays[f"{s['name']}{ckpt.SEP}b"])
            acts[s["name"]] = L.ACTIVATIONS[s["act"]][0](u)
        return np.tanh(acts["actor/out"][:, :act_dim])
    return act
