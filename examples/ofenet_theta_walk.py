"""Where does OFENet's θ go from a checkpoint — with its weights learning, and with them frozen?

    python examples/ofenet_theta_walk.py examples/results/HalfCheetah-v5/xinet-ofe-beta0/seed0 --steps 3000

Companion of examples/ofenet_drift.py, which measures the *mean* θ-gradient at one checkpoint. Here the
θ-steps (32) themselves are run, in memory (the checkpoint is read, never written), on replay batches, for
--steps OFENet updates exactly as training does them (`Agent.update_ofenet`, sampled masks, `pair` estimator,
the run's own η_θ, μ_θ and β), twice from the same state and the same random numbers:

  live    the weights take their Adam steps too (what training does; the SAC nets are not updated)
  frozen  the weights, BN statistics and Adam moments are put back after every update: only θ and m_θ move

No unit is pruned during the walk; a unit whose θ reaches 0 counts as removed from then on (in training
θ = 0 absorbs). If `frozen` removes units too, the θ-step's own dynamics (the estimator's noise against the
walls at 0 and 1) drive OFENet's pruning; if only `live` does, the weights' adaptation to the gates does.
The last line is one JSON object. Runtime: ≈ 30 ms per update and mode on one core (HalfCheetah, 480 units).
"""
import argparse
import copy
import json
import sys

import numpy as np

from gate_bias import load_run
from xiref.envs import UserError

BINS = (0.0, 0.5, 0.9, 0.999, 1.0)       # initial-θ classes: (0, .5), [.5, .9), [.9, .999), [.999, 1]


def walk(run_dir, steps, seed, frozen, overrides=None):
    """(run after the walk, θ of every OFENet unit before, θ after, which units touched 0). `overrides` sets
    agent config fields for the walk (e.g. {"eps_xi_ofenet": 0.01}: what the same state does under another floor)."""
    run = load_run(run_dir)
    for field, value in (overrides or {}).items():
        setattr(run.agent.cfg, field, value)
    agent, rng = run.agent, np.random.default_rng(seed)
    names = [s.name for s in agent.specs("ofenet") if s.gated]
    theta0 = np.concatenate([agent.theta[n] for n in names]).astype(np.float64)
    hit0 = theta0 <= 0.0
    saved = copy.deepcopy((agent.params, agent.stats, agent.opt)) if frozen else None
    for _ in range(steps):
        agent.update_ofenet(run.buffer.sample(rng, run.cfg.batch), rng, update_theta=True)
        if frozen:
            agent.params, agent.stats, agent.opt = copy.deepcopy(saved)
        hit0 |= np.concatenate([agent.theta[n] for n in names]) <= 0.0
    theta1 = np.concatenate([agent.theta[n] for n in names]).astype(np.float64)
    return run, theta0, theta1, hit0


def classes(theta0, theta1, hit0):
    """Per initial-θ class: units, mean θ before and after, share that reached 0, share left at 1."""
    out = []
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        sel = (theta0 > lo if lo == 0.0 else theta0 >= lo) & (theta0 < hi if hi < 1.0 else theta0 <= hi)
        if sel.any():
            out.append({"theta_from": lo, "theta_to": hi, "n": int(sel.sum()),
                        "theta_before": float(theta0[sel].mean()), "theta_after": float(theta1[sel].mean()),
                        "reached_0": float(hit0[sel].mean()), "at_1_after": float(np.mean(theta1[sel] >= 1.0))})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="directory of a xinet run with a checkpoint")
    ap.add_argument("--steps", type=int, default=3000, help="OFENet updates per mode")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eps-xi-ofenet", type=float, help="walk with this OFENet sampling floor ε_ξ (Eq. 4) instead of "
                    "the run's")
    ap.add_argument("--eta-theta-ofenet", type=float, help="walk with this OFENet η_θ (Eq. 32) instead of the run's")
    args = ap.parse_args(argv)
    overrides = {k: v for k, v in (("eps_xi_ofenet", args.eps_xi_ofenet), ("eta_theta_ofenet", args.eta_theta_ofenet))
                 if v is not None}
    try:
        if args.steps < 1 or args.seed < 0:
            raise UserError("--steps must be >= 1, --seed >= 0")
        if not 0 < overrides.get("eps_xi_ofenet", 0.1) < 0.5 or not overrides.get("eta_theta_ofenet", 1) > 0:
            raise UserError("--eps-xi-ofenet must lie in (0, 0.5), --eta-theta-ofenet must be > 0")
        result = {"run": args.run, "steps": args.steps, "seed": args.seed, "overrides": overrides}
        for mode in ("live", "frozen"):
            run, theta0, theta1, hit0 = walk(args.run, args.steps, args.seed, mode == "frozen", overrides)
            alive = theta0 > 0
            result["checkpoint_step"] = run.step
            result[mode] = {"units": int(alive.sum()), "reached_0": int(np.sum(hit0 & alive)),
                            "theta_median_before": float(np.median(theta0[alive])),
                            "theta_median_after": float(np.median(theta1[alive])),
                            "classes": classes(theta0[alive], theta1[alive], hit0[alive])}
    except UserError as exc:
        print(f"ofenet_theta_walk: error: {exc}", file=sys.stderr)
        return 2
    for mode in ("live", "frozen"):
        r = result[mode]
        print(f"{mode:6s}: {r['reached_0']} of {r['units']} units reached θ = 0 in {args.steps} updates; median θ "
              f"{r['theta_median_before']:.3f} → {r['theta_median_after']:.3f}")
        for c in r["classes"]:
            print(f"        θ in [{c['theta_from']}, {c['theta_to']}]: {c['n']:3d} units, mean θ "
                  f"{c['theta_before']:.3f} → {c['theta_after']:.3f}, {100 * c['reached_0']:.0f} % reached 0, "
                  f"{100 * c['at_1_after']:.0f} % at 1 after")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
