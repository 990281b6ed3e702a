"""Does a gated critic's expected-gate Q overestimate its sampled-gate Q?  (a diagnostic for XiNet runs)

    python examples/experiments/gate_bias.py examples/results/Hopper-v5/xinet/seed0 [RUN_DIR …] [--batch 1024 --draws 64]

A critic is trained on its own loss (11) with sampled gates ξ ~ Bern(θ̃) (2), but the TD target (10) and the
actor (12) read it with expected gates: θ (3), or θ̃ (40) with `--expected-gates tilde`. A unit at θ = 1 is
sampled on with probability 1 − ε_ξ, so read with θ it is read (1 − ε_ξ)⁻¹ too strong; read with θ̃ only the
ReLUs' curvature is left (f(θ̃ ⊙ h) ≠ E_ξ f(ξ ⊙ h)). If the expected-gate Q is larger by a factor (1 + ε), the
backup y = r + γ Q̄_θ(s′, a′) that the critic, trained at E_ξ Q_ξ, must match grows Q by γ(1 + ε) per backup:
above 1 the critic diverges, whatever the rewards.

For each run: loads checkpoint.npz (read-only), samples --batch transitions from its replay buffer and, per
critic k, compares mean_i Q_k(s_i, a_i) with expected gates against the mean over --draws independent mask
draws of the same, sampled as in the critic's own loss (OFENet features with expected gates, as in the
update). Prints ε = ratio − 1 with its Monte-Carlo standard error (over draws), the implied γ(1 + ε), and the
critic's θ (median, share of units with θ < 1), and the actor's θ (median, 10 % quantile, share below 1: its
own sampled-vs-expected gap, since it too is trained under masks and acts with expected gates); the last line
is one JSON object with every number.
Runtime: seconds per run.
"""
import argparse
import json
import os
import sys

import numpy as np

from xiref import network as N
from xiref import xinet
from xiref.config import config_from_dict, field_problem
from xiref.envs import UserError
from xiref.metrics import net_theta
from xiref.runstate import checkpoint_path
from xiref.train import Run


def load_run(run_dir):
    """A Run restored from run_dir's config.json and checkpoint.npz (nothing is written)."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(checkpoint_path(run_dir)) or not os.path.exists(path):
        raise UserError(f"{run_dir} holds no config.json and checkpoint.npz")
    try:
        with open(path) as f:
            cfg = config_from_dict(json.load(f))
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path} is not a readable run configuration ({exc})") from None
    if not cfg.gated:
        raise UserError(f"{run_dir} is a {cfg.method} run: it has no gates")
    cfg.out = run_dir                      # the directory asked for, not where the run was made (it may have moved)
    run = Run(cfg)
    run.restore()
    return run


def critic_bias(agent, k, obs, act, rng, draws):
    """(Q with expected gates (B,), Q under `draws` sampled masks (draws, B)) of critic k."""
    feats = agent.features(obs, act)                       # OFENet with expected gates, as in update_sac
    q1, q2, _ = agent.q_values({}, feats, act)
    specs = agent.specs(k)
    sampled = []
    for _ in range(draws):
        xi = xinet.sample_gates(specs, agent.theta, rng, obs.shape[0], agent.knob(k, "eps_xi"))   # (2), own loss
        acts, _ = N.forward(specs, agent.params, feats, xi)
        sampled.append(acts[k + "/out"][:, 0])
    return (q1 if k == "critic1" else q2), np.array(sampled)


def measure(run_dir, batch, draws, seed, expected_gates=None):
    run = load_run(run_dir)
    agent, rng = run.agent, np.random.default_rng(seed)
    if expected_gates is not None:                     # read the gates as asked, whatever the run read them as
        agent.cfg.expected_gates = expected_gates
    obs, act, _, _, _ = run.buffer.sample(rng, batch)
    out = {"run": run_dir, "step": run.step, "gamma": run.cfg.gamma, "expected_gates": agent.cfg.expected_gates}
    for k in ("critic1", "critic2"):
        q_exp, q_s = critic_bias(agent, k, obs, act, rng, draws)
        per_draw = q_s.mean(axis=1)                                        # (draws,) batch means
        ratio = float(q_exp.mean() / per_draw.mean())
        # standard error of the ratio from the spread of the per-draw batch means (delta method)
        se = float(ratio * per_draw.std(ddof=1) / np.sqrt(draws) / abs(per_draw.mean()))
        theta = net_theta(agent, k)
        out[k] = {"q_expected": float(q_exp.mean()), "q_sampled": float(per_draw.mean()),
                  "epsilon": ratio - 1.0, "epsilon_se": se, "gamma_eff": run.cfg.gamma * ratio,
                  "theta_median": float(np.median(theta)), "theta_below_1": float(np.mean(theta < 1.0))}
    theta = net_theta(agent, "actor")
    out["actor"] = {"theta_median": float(np.median(theta)), "theta_q10": float(np.quantile(theta, 0.1)),
                    "theta_below_1": float(np.mean(theta < 1.0))}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="run directories of xinet runs with a checkpoint")
    ap.add_argument("--batch", type=int, default=1024, help="replay transitions")
    ap.add_argument("--draws", type=int, default=64, help="mask draws per transition")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--expected-gates", default=None,
                    help="read the expected gates as θ (theta, Eq. 3) or θ̃ (tilde, Eq. 40); default: as the run did")
    args = ap.parse_args(argv)
    try:
        if min(args.batch, args.draws) < 2 or args.seed < 0:
            raise UserError("--batch and --draws must be >= 2, --seed >= 0")
        problem = args.expected_gates is not None and field_problem("expected_gates", args.expected_gates)
        if problem:
            raise UserError(problem)
        with np.errstate(over="ignore", invalid="ignore"):
            results = [measure(r, args.batch, args.draws, args.seed, args.expected_gates) for r in args.runs]
    except UserError as exc:
        print(f"gate_bias: error: {exc}", file=sys.stderr)
        return 2
    for r in results:
        for k in ("critic1", "critic2"):
            c = r[k]
            print(f"{r['run']} step {r['step']} {k} ({r['expected_gates']}): Q expected {c['q_expected']:.2f}, sampled {c['q_sampled']:.2f}, "
                  f"ε = {c['epsilon']:+.4f} ± {c['epsilon_se']:.4f}, γ(1+ε) = {c['gamma_eff']:.4f}; "
                  f"θ median {c['theta_median']:.3f}, {100 * c['theta_below_1']:.0f} % of units below 1")
        a = r["actor"]
        print(f"{r['run']} step {r['step']} actor: θ median {a['theta_median']:.3f}, 10 % quantile "
              f"{a['theta_q10']:.3f}, {100 * a['theta_below_1']:.0f} % of units below 1")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
