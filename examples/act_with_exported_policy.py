"""Export a pruned policy and act with it: no training, no xiref agent, only the exported arrays.

    python -m xiref train --env InvertedPendulum-v5 --method xinet --steps 30000 --seed 0 --out runs/quickstart
    python examples/act_with_exported_policy.py runs/quickstart              # exports runs/quickstart/policy.npz
    python examples/act_with_exported_policy.py runs/quickstart/policy.npz --episodes 10

Given a run directory (with its checkpoint.npz), writes the compact networks to RUN_DIR/policy.npz (or --out),
as `python -m xiref export RUN_DIR --out FILE` does: BN and the expected gates θ are folded into plain weights,
units at θ = 0 are gone (xiref/export.py). Given an .npz, uses it as it is. Then runs --episodes episodes of the
environment the run was trained on with the deterministic action tanh(μ) of the exported actor, and prints each
episode's return and the exported policy's size (the layers that compute the action: OFENet's state block, if
any, and the actor).

Expected result on the README's quickstart run: returns of 1000 (InvertedPendulum's maximum) from a policy of
≈ 68 000 parameters (OFENet's state block down to a few units, the 256×256 actor), against 111 144 for the unpruned
OFENet alone.
"""
import argparse
import json
import os
import sys

import numpy as np

from xiref.envs import UserError, make_env
from xiref.export import export_run, load_policy


def policy_file(path, out=None):
    """The .npz to act with: path itself, or the export of run directory path (written to out or path/policy.npz)."""
    if os.path.isdir(path):
        return export_run(path, out or os.path.join(path, "policy.npz"))
    if out:
        raise UserError("--out applies to a run directory, not to an exported .npz")
    return path


def describe(npz):
    """(meta, parameters of the layers that compute the action, their per-layer widths) of an exported file."""
    try:
        with np.load(npz, allow_pickle=False) as z:
            meta = json.loads(bytes(z["__meta__"]).decode())
            wiring = json.loads(bytes(z["__wiring__"]).decode())
            names = [s["name"] for s in wiring["layers"] if s["name"].startswith(("ofenet/s", "actor/"))]
            widths = {n: int(z[f"{n}|b"].shape[0]) for n in names}
            params = sum(int(z[f"{n}|W"].size + z[f"{n}|b"].size) for n in names)
    except Exception as exc:
        raise UserError(f"{npz} is not an xiref export ({type(exc).__name__})") from None
    return meta, params, widths


def run_episodes(npz, episodes, seed):
    """Returns of `episodes` episodes of the exported policy on its environment, seeds seed, seed + 1, …"""
    meta, _, _ = describe(npz)
    act = load_policy(npz)
    env, scale, bias = make_env(meta["env"], seed)
    returns = []
    try:
        for k in range(episodes):
            obs, _ = env.reset(seed=seed + k)
            total, done = 0.0, False
            while not done:
                a = act(obs[None, :])[0]                          # tanh(μ) in [−1, 1]^A
                obs, r, terminated, truncated, _ = env.step(scale * a + bias)
                total += float(r)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    return returns


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("path", help="a run directory with checkpoint.npz, or a file written by `xiref export`")
    ap.add_argument("--out", default=None, help="where to write the export of a run directory (RUN_DIR/policy.npz)")
    ap.add_argument("--episodes", type=int, default=5, help="episodes to run")
    ap.add_argument("--seed", type=int, default=1000, help="seed of the first episode (then +1 per episode)")
    args = ap.parse_args(argv)
    try:
        if args.episodes < 1:
            raise UserError("--episodes must be >= 1")
        npz = policy_file(args.path, args.out)
        meta, params, widths = describe(npz)
        print(f"{npz}: {meta['env']} {meta['method']} at step {meta['step']}, {params} parameters "
              f"({', '.join(f'{n} {w}' for n, w in widths.items())})")
        returns = run_episodes(npz, args.episodes, args.seed)
    except UserError as exc:
        print(f"act_with_exported_policy: error: {exc}", file=sys.stderr)
        return 2
    for k, r in enumerate(returns):
        print(f"episode {k}: return {r:.1f}")
    print(json.dumps({"policy": npz, "env": meta["env"], "params": params, "returns": returns,
                      "mean_return": float(np.mean(returns))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
