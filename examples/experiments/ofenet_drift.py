"""What pushes OFENet's θ toward 0?  Compares, per OFENet unit of a XiNet checkpoint, the θ-gradient XiNet
follows with what switching the unit off actually does to the auxiliary loss (8).

    python examples/experiments/ofenet_drift.py examples/results/HalfCheetah-v5/xinet-ofe-beta0/seed0 [--batches 32]

For every alive OFENet unit j, on --batches replay batches of --batch transitions (the checkpoint is read,
never written), with the masks drawn as in training (θ̃, Eq. 4) and training-mode BN:

  A_j  the mean of the `pair` estimator (22)-(23) — the loss part of the θ-gradient (21) that XiNet's θ-step
       (32) averages. Its expectation is (1/B) Σ_i (E[ℓ_i | ξ_ij = 1] − E[ℓ_i | ξ_ij = 0]): one example's gate at
       a time, the rest of the BN batch as sampled (docs/METHOD.md §5, "BN and (22) itself").
  C_j  E[L | ξ_·j ≡ 1] − E[L | ξ_·j ≡ 0] with L = (1/B) Σ_i ℓ_i: the unit on for the whole batch against off
       for the whole batch, the other gates common to both (common random numbers) — i.e. F(θ_j = 1) − F(θ_j = 0)
       of the batch objective, BN statistics included.
  E_j  the inference-mode loss (expected gates (3) or (40) as the run read them, running BN statistics — how SAC
       reads OFENet) with θ_j as it is minus with θ_j = 0.

Positive = the loss is lower without the unit (θ is pushed down, or removal would help). If A_j > 0 where
C_j < 0 and E_j < 0, the estimator's per-example target, not the loss, removes useful units.
Each number comes with its standard error over batches. It also reports the noise source of a θ = 1 unit's
step (`kick_noise`): the spread of one example's loss between two independent mask draws, and the θ-kick it
gives when a mask drops the unit. The last line is one JSON object.
Runtime: ≈ 1 min per 100 alive units at --batches 32 on one core.
"""
import argparse
import json
import sys

import numpy as np

from gate_bias import load_run
from xiref import network as N
from xiref import ofenet as OF
from xiref import xinet
from xiref.checkpoint import atomic_write_text
from xiref.envs import UserError


def example_losses(specs, agent, inputs, o_next, gates, bn_train):
    """ℓ^aux_i (B,) (Eq. 8) under `gates` (masks (B, n) or θ (n,))."""
    acts, _ = N.forward(specs, agent.params, inputs, gates, agent.stats, bn_train, agent.cfg.eps_bn)
    return OF.aux_loss(acts["ofenet/head"], o_next)[0]


def batch_loss(specs, agent, inputs, o_next, gates, bn_train):
    """L = (1/B) Σ_i ℓ^aux_i."""
    return float(np.mean(example_losses(specs, agent, inputs, o_next, gates, bn_train)))


def kick_noise(ell, d_ell, eps_xi, eta, loss_scale, batch):
    """The noise source of a θ = 1 unit's step: with `pair`, its θ-gradient is 0 unless one of the 2B masks
    drops it (probability ε_ξ each); then it is ≈ −(ℓ_i^drop − ℓ_i^other)/(2B ε_ξ), and (32) moves θ by
    η_θ/L̄ times that in total. ell: per-example losses, d_ell: ℓ_i^(1) − ℓ_i^(2) under two independent draws."""
    a = np.abs(d_ell)
    kick = eta / loss_scale * a / (2 * batch * eps_xi)
    return {"loss_mean": float(ell.mean()), "loss_p99": float(np.percentile(ell, 99)),
            "diff_sd": float(d_ell.std()), "diff_p99": float(np.percentile(a, 99)), "diff_max": float(a.max()),
            "drop_probability_per_update": float(1 - (1 - eps_xi) ** (2 * batch)),
            "kick_sd": float(eta / loss_scale * d_ell.std() / (2 * batch * eps_xi)),
            "kick_p99": float(np.percentile(kick, 99)), "kick_max": float(kick.max()),
            "share_of_kicks_above_1": float(np.mean(kick >= 1.0))}


def with_unit(gates, name, j, value):
    """A copy of `gates` with unit j of layer `name` set to `value` (column for masks, entry for θ)."""
    g = gates[name].copy()
    if g.ndim == 2:
        g[:, j] = value
    else:
        g[j] = value
    return {**gates, name: g}


def measure(run_dir, batches, batch, seed):
    run = load_run(run_dir)
    agent, rng = run.agent, np.random.default_rng(seed)
    specs, eps_xi = agent.specs("ofenet"), agent.knob("ofenet", "eps_xi")
    units = [(s.name, j) for s in specs if s.gated for j in range(agent.theta[s.name].shape[0])]
    A, C, E = (np.zeros((batches, len(units))) for _ in range(3))
    theta = agent.gates("ofenet")                         # the expected gates as the run read them (Eq. 3 or 40)
    ells, diffs = [], []
    for b in range(batches):
        obs, act, _, o_next, _ = run.buffer.sample(rng, batch)
        inputs = {"obs": obs, "act": act}
        _, _, g_theta, _ = xinet.gated_gradients(specs, agent.params, inputs, agent.theta, OF.aux_loss_fn(o_next),
                                                  rng, "pair", eps_xi, agent.stats, bn_train=True,
                                                  eps_bn=agent.cfg.eps_bn)
        xi = xinet.sample_gates(specs, agent.theta, rng, batch, eps_xi)
        xi2 = xinet.sample_gates(specs, agent.theta, rng, batch, eps_xi)
        ell = example_losses(specs, agent, inputs, o_next, xi, True)
        ells.append(ell)
        diffs.append(ell - example_losses(specs, agent, inputs, o_next, xi2, True))
        l_eval = batch_loss(specs, agent, inputs, o_next, theta, bn_train=False)
        for u, (name, j) in enumerate(units):
            A[b, u] = g_theta[name][j]
            C[b, u] = (batch_loss(specs, agent, inputs, o_next, with_unit(xi, name, j, 1.0), True)
                       - batch_loss(specs, agent, inputs, o_next, with_unit(xi, name, j, 0.0), True))
            E[b, u] = l_eval - batch_loss(specs, agent, inputs, o_next, with_unit(theta, name, j, 0.0), False)
    theta_all = np.array([agent.theta[name][j] for name, j in units])
    per_unit = {k: (v.mean(0), v.std(0, ddof=1) / np.sqrt(batches)) for k, v in (("A", A), ("C", C), ("E", E))}
    out = {"run": run_dir, "step": run.step, "units": len(units), "batches": batches, "batch": batch,
           "loss_scale": float(agent.loss_scale["ofenet"]),
           "noise": kick_noise(np.concatenate(ells), np.concatenate(diffs), eps_xi, agent.knob("ofenet", "eta_theta"),
                               float(agent.loss_scale["ofenet"]), batch)}
    for label, sel in (("theta<1", theta_all < 1.0), ("theta=1", theta_all >= 1.0), ("all", theta_all >= 0)):
        if not sel.any():
            continue
        row = {"n": int(sel.sum()), "theta_median": float(np.median(theta_all[sel]))}
        for k, (m, se) in per_unit.items():
            row[k + "_mean"] = float(m[sel].mean())
            row[k + "_se_of_mean"] = float(np.sqrt(np.sum(se[sel] ** 2)) / sel.sum())
            row[k + "_share_positive"] = float(np.mean(m[sel] > 0))
            row[k + "_share_signif_positive"] = float(np.mean(m[sel] > 2 * se[sel]))
            row[k + "_share_signif_negative"] = float(np.mean(m[sel] < -2 * se[sel]))
        a, c = per_unit["A"][0][sel], per_unit["C"][0][sel]
        row["corr_A_C"] = float(np.corrcoef(a, c)[0, 1]) if sel.sum() > 2 and a.std() > 0 and c.std() > 0 else None
        out[label] = row
    out["per_unit"] = [{"layer": name, "unit": j, "theta": float(theta_all[u]),
                        **{k: [float(m[u]), float(se[u])] for k, (m, se) in per_unit.items()}}
                       for u, (name, j) in enumerate(units)]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="directory of a xinet run with a checkpoint")
    ap.add_argument("--batches", type=int, default=32, help="replay batches (standard errors are over these)")
    ap.add_argument("--batch", type=int, default=256, help="transitions per batch (the training batch)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="also write every unit's numbers to this JSON file")
    args = ap.parse_args(argv)
    try:
        if args.batches < 2 or args.batch < 2 or args.seed < 0:
            raise UserError("--batches and --batch must be >= 2, --seed >= 0")
        r = measure(args.run, args.batches, args.batch, args.seed)
    except UserError as exc:
        print(f"ofenet_drift: error: {exc}", file=sys.stderr)
        return 2
    for label in ("theta<1", "theta=1", "all"):
        if label in r:
            g = r[label]
            print(f"{r['run']} step {r['step']}, {g['n']} units with {label} (median θ {g['theta_median']:.3f}): "
                  + "; ".join(f"{k} {g[k + '_mean']:+.2e} ± {g[k + '_se_of_mean']:.1e} "
                              f"({100 * g[k + '_share_signif_positive']:.0f} % > 0, "
                              f"{100 * g[k + '_share_signif_negative']:.0f} % < 0 at 2 SE)" for k in "ACE")
                  + (f"; corr(A, C) {g['corr_A_C']:.2f}" if g["corr_A_C"] is not None else ""))
    if args.out:
        atomic_write_text(args.out, json.dumps(r, indent=1))
    n = r["noise"]
    print(f"per-example loss mean {n['loss_mean']:.3f} (99th pct {n['loss_p99']:.2f}); difference between two draws: "
          f"sd {n['diff_sd']:.3f}, 99th pct {n['diff_p99']:.2f}, max {n['diff_max']:.2f}; a θ = 1 unit is dropped in "
          f"{100 * n['drop_probability_per_update']:.0f} % of the updates, kick sd {n['kick_sd']:.3f}, 99th pct "
          f"{n['kick_p99']:.2f}, max {n['kick_max']:.2f}, {100 * n['share_of_kicks_above_1']:.2f} % ≥ 1")
    print(json.dumps({k: v for k, v in r.items() if k != "per_unit"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
