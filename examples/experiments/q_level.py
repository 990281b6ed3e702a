"""How high do a run's critics value its own policy, against the rewards it collects?  (reads progress.csv only)

    python examples/experiments/q_level.py examples/results/HalfCheetah-v5/ofe/seed0 examples/results/HalfCheetah-v5/xinet/seed0 [--tail 0.2]

For each run directory, over the last --tail of its progress rows: Q, the mean of −(actor loss) = E[min_k Q_k(s, a)
− α log π(a|s)] over the actor's batches (Eq. 12; the α log π part is below 1 here), and r̄, the mean training
episode return divided by the mean episode length over those rows (steps over episodes finished). Their ratio
Q / r̄ is the horizon, in steps, that the critics' values imply. Critics that bootstrap at γ(1 + ε) instead of γ
(EXPERIMENTS.md E4, E19) imply a horizon longer by about (1 − γ)/(1 − γ(1 + ε)) than the same agent's at γ.
Prints one line per run, then one JSON list.
"""
import argparse
import json
import os
import sys

import numpy as np

from xiref.errors import UserError, script_error
from xiref.readers import read_csv


def q_level(run_dir, tail):
    """{run, method, rows, q, reward_per_step, horizon} over the last `tail` of run_dir's progress rows."""
    path = os.path.join(run_dir, "progress.csv")
    rows = read_csv(path)                                       # checked as `train --resume` reads it
    if not rows:
        raise UserError(f"{run_dir} holds no readable progress.csv")
    rows = [r for r in rows if r.get("actor_loss") and r.get("train_return")]
    if not rows:
        raise UserError(f"{path} logs no actor loss and training return (a run that has not learnt yet?)")
    rows = rows[-max(2, int(round(tail * len(rows)))):]
    episodes = int(rows[-1]["episodes"]) - int(rows[0]["episodes"])
    if len(rows) < 2 or episodes < 1:
        raise UserError(f"{path}: its last rows finish no episode, so they give no episode length")
    length = (int(rows[-1]["step"]) - int(rows[0]["step"])) / episodes              # mean episode length (steps)
    q = -float(np.mean([float(r["actor_loss"]) for r in rows]))
    reward = float(np.mean([float(r["train_return"]) for r in rows])) / length
    method = "?"
    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            method = json.load(f).get("method", "?")
    except (OSError, ValueError):
        pass
    return {"run": run_dir, "method": method, "rows": len(rows), "episode_length": length, "q": q,
            "reward_per_step": reward,
            "horizon": q / reward if reward > 0 else float("nan")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="run directories (each with progress.csv)")
    ap.add_argument("--tail", type=float, default=0.2, help="share of the last progress rows to average")
    args = ap.parse_args(argv)
    if not 0 < args.tail <= 1:
        script_error("q_level", f"--tail must lie in (0, 1], got {args.tail}")
    try:
        results = [q_level(r, args.tail) for r in args.runs]
    except UserError as exc:
        script_error("q_level", str(exc))
    for r in results:
        print(f"{r['run']} ({r['method']}): Q {r['q']:.1f}, episode length {r['episode_length']:.0f}, "
              f"reward per step {r['reward_per_step']:.3f}, "
              f"horizon {r['horizon']:.1f} steps")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
