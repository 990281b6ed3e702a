"""Where does one network's θ go from a checkpoint — with the weights learning, and with them frozen?

    python examples/experiments/theta_walk.py examples/results/HalfCheetah-v5/xinet-ofe-beta0/seed0 --steps 3000
    python examples/experiments/theta_walk.py examples/results/Hopper-v5/xinet/seed0 --net critic1 --set eps_xi_critic=0.003

Companion of examples/experiments/ofenet_drift.py, which measures the *mean* θ-gradient at one checkpoint. Here the
θ-steps (32) themselves are run, in memory (the checkpoint is read, never written), on replay batches, for
--steps updates exactly as training does them (`Agent.update_ofenet` for --net ofenet, `Agent.update_sac` for
actor, critic1, critic2: sampled masks, the run's own baseline, η_θ, μ_θ, β and ε_ξ unless --set),
twice from the same state and the same random numbers:

  live    everything the update touches moves (what training does; OFENet is not updated in a SAC walk)
  frozen  weights, BN statistics, Adam moments, target critics, α and every other network's θ are put back
          after every update: only the walked network's θ and m_θ move

No unit is pruned during the walk; a unit whose θ reaches 0 counts as removed from then on (in training
θ = 0 absorbs). If `frozen` removes units too, the θ-step's own dynamics (the estimator's noise against the
walls at 0 and 1) drive the pruning; if only `live` does, the weights' adaptation to the gates does.
The last line is one JSON object. Runtime: ≈ 30 ms (OFENet, HalfCheetah) to ≈ 60 ms (SAC) per update and mode.
"""
import argparse
import copy
import json
import sys

import numpy as np

from gate_bias import load_run
from xiref.agent import AgentConfig
from xiref.envs import UserError

NETS = ("ofenet", "actor", "critic1", "critic2")

BINS = (0.0, 0.5, 0.9, 0.999, 1.0)       # initial-θ classes: (0, .5), [.5, .9), [.9, .999), [.999, 1]
STATE = ("params", "stats", "opt", "target", "log_alpha", "opt_alpha")     # what `frozen` puts back


def walk(run_dir, steps, seed, frozen, overrides=None, net="ofenet"):
    """(run after the walk, θ of every unit of `net` before, θ after, which units touched 0). `overrides` sets
    agent config fields for the walk (e.g. {"eps_xi_ofenet": 0.01}: what the same state does under another floor)."""
    run = load_run(run_dir)
    for field, value in (overrides or {}).items():
        setattr(run.agent.cfg, field, value)
    agent, rng = run.agent, np.random.default_rng(seed)
    names = [s.name for s in agent.specs(net) if s.gated]
    if not names:
        raise UserError(f"{run_dir} has no gated {net}")
    others = [k for k in agent.theta if k not in names]
    theta0 = np.concatenate([agent.theta[n] for n in names]).astype(np.float64)
    hit0 = theta0 <= 0.0
    saved = copy.deepcopy(([getattr(agent, a) for a in STATE], {k: agent.theta[k] for k in others},
                           {k: agent.m_theta[k] for k in others}, {k: agent.v_theta[k] for k in others},
                           dict(agent.t_theta)))
    for _ in range(steps):
        batch = run.buffer.sample(rng, run.cfg.batch)
        if net == "ofenet":
            agent.update_ofenet(batch, rng, update_theta=True)
        else:
            agent.update_sac(batch, rng, update_theta=True)
        if frozen:
            state, theta, m_theta, v_theta, t_theta = copy.deepcopy(saved)
            for a, v in zip(STATE, state):
                setattr(agent, a, v)
            agent.theta.update(theta)
            agent.m_theta.update(m_theta)
            agent.v_theta.update(v_theta)
            agent.t_theta.update({k: t for k, t in t_theta.items() if k != net})
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


def parse_overrides(items):
    """{"eps_xi_ofenet": 0.01, "baseline": "loo", …} from ["eps_xi_ofenet=0.01", "baseline=loo", …]; only the
    float AgentConfig fields (knobs, not shapes) and the score-function baseline (Eq. 23), checked as `xiref
    train` checks them (xiref/config.py `validate`)."""
    from dataclasses import fields
    from xiref.config import FIELD_KINDS, TrainConfig, validate
    numeric = {f.name for f in fields(AgentConfig) if FIELD_KINDS[f.name] in ("float", "knob")}
    out = {}
    for item in items:
        field, _, value = item.partition("=")
        if field == "baseline":
            out[field] = value
            continue
        if field not in numeric:
            raise UserError(f"--set {item}: not a float AgentConfig field or baseline")
        try:
            out[field] = float(value)
        except ValueError:
            raise UserError(f"--set {item}: {value!r} is not a number") from None
    validate(TrainConfig(method="xinet", **out))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="directory of a xinet run with a checkpoint")
    ap.add_argument("--net", default="ofenet", choices=NETS, help="the network whose θ is walked")
    ap.add_argument("--steps", type=int, default=3000, help="updates per mode")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="walk with this AgentConfig number (or baseline=none|loo|pair) instead of the run's, "
                         "e.g. eps_xi_ofenet=0.01 (repeatable)")
    args = ap.parse_args(argv)
    try:
        overrides = parse_overrides(args.set)
        if args.steps < 1 or args.seed < 0:
            raise UserError("--steps must be >= 1, --seed >= 0")
        result = {"run": args.run, "net": args.net, "steps": args.steps, "seed": args.seed, "overrides": overrides}
        for mode in ("live", "frozen"):
            run, theta0, theta1, hit0 = walk(args.run, args.steps, args.seed, mode == "frozen", overrides, args.net)
            alive = theta0 > 0
            result["checkpoint_step"] = run.step
            result[mode] = {"units": int(alive.sum()), "reached_0": int(np.sum(hit0 & alive)),
                            "theta_median_before": float(np.median(theta0[alive])),
                            "theta_median_after": float(np.median(theta1[alive])),
                            "classes": classes(theta0[alive], theta1[alive], hit0[alive])}
    except UserError as exc:
        print(f"theta_walk: error: {exc}", file=sys.stderr)
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
