"""Which OFENet units does the price push out when OFENet's θ weighs a unit against its own loss (8), and which
when it weighs it against its consumers' losses too (docs/METHOD.md §7, `ofenet_value`)?

    python examples/experiments/ofenet_value.py RUN [--beta 10] [--batches 32] [--draws 8] [--out FILE.json]

From a xinet checkpoint (read, never written), on --batches replay batches of --batch transitions with --draws
`flip` estimates each (masks as in training, θ̃ of Eq. 4, training-mode BN), for every alive OFENet unit j:

  g_j    the θ-gradient the θ-step (37) averages, ĝ_θj / L̄_o, with `own` (OFENet's loss alone) and with
         `consumers` (v_i = ℓ^aux_i + L̄_o Σ_c ℓ^c_i / L̄_c, xiref/losses.py `consumers_value_fn`)
  p_j    the price β ∂C/∂θ_j / C(𝟙) (Eq. 19, 29) at --beta
  net_j  g_j + p_j: > 0 pushes θ_j down. "pushed out" = net_j > k_θ standard errors (k_θ = 3, Eq. 37),
         "held" = net_j < −k_θ SE.
  U_j    what the unit is worth to OFENet and its consumers as SAC reads them (expected gates (3), running BN
         statistics): the increase of Σ_n ℓ_n / L̄_n over OFENet, both critics and the actor when θ_j is set to 0,
         on the same batches (the actor's term at fixed noise).

Reported per block (state: z_o, read by the actor and the critics; action: z_oa, read by the critics), per
value: the mean g, p and U, how many units are pushed out and held, and P(U of a pushed-out unit < U of a unit
that is not) — 0.5 means the price removes at random, 1 that it removes exactly the least useful units first.
`sweep` gives the units pushed out and that probability at other prices (--sweep β,…: net_j = g_j + β/--beta p_j),
so that the two values can be compared at an equal number of units pushed out. --out also keeps every unit's g,
its standard error, p and U. The last line is one JSON object. Runtime: ≈ 6 s per batch (HalfCheetah, 480 units,
--draws 8) on one core.
"""
import argparse
import json
import sys

import numpy as np

from gate_bias import load_run
from xiref import network as N
from xiref import ofenet as OF
from xiref import wiring as W
from xiref import xinet
from xiref.checkpoint import atomic_write_text
from xiref.envs import UserError
from xiref.losses import CONSUMERS, consumers_value_fn

K_THETA = 3.0
VALUES = ("own", "consumers")


def relative_losses(agent, batch, y, eps, theta):
    """Σ_n ℓ_n / L̄_n (B,) over OFENet (8), the critics (11) and the actor (12): OFENet's expected gates θ and
    inference BN, read through the consumers' value v (xiref/losses.py) divided by L̄_o."""
    obs, act, _, obs_next, _ = batch
    specs, own = agent.specs("ofenet"), OF.aux_loss_fn(obs_next)
    gates = {s.name: theta[s.name] for s in specs if s.gated}
    acts, _ = N.forward(specs, agent.params, {"obs": obs, "act": act}, gates, agent.stats, bn_train=False,
                        eps_bn=agent.cfg.eps_bn)
    return consumers_value_fn(agent, batch, y, eps, own)(acts, gates) / agent.loss_scale["ofenet"]


def measure(run_dir, beta, batches, draws, batch_size, seed, sweep=()):
    run = load_run(run_dir)
    agent, rng = run.agent, np.random.default_rng(seed)
    if any(agent.loss_scale[n] is None for n in ("ofenet",) + CONSUMERS):
        raise UserError(f"{run_dir}: the checkpoint precedes the first update of every network (no L̄ yet)")
    specs = agent.specs("ofenet")
    units = [(s, j) for s in specs if s.gated for j in range(len(agent.theta[s.name]))]
    block = np.array([s.block for s, _ in units])
    dC = W.cost_grad(agent.wiring, agent.theta, "ofenet")
    price = beta * np.concatenate([dC[s.name] for s in specs if s.gated]) / agent.cost_initial    # (n,)
    g = {v: [] for v in VALUES}
    usefulness = []
    for _ in range(batches):
        batch = run.buffer.sample(rng, batch_size)
        obs, act, _, obs_next, _ = batch
        y = agent.td_target(batch, rng)
        eps = rng.standard_normal((obs.shape[0], agent.act_dim)).astype(agent.dtype)
        loss_fn = OF.aux_loss_fn(obs_next)
        value_fns = {"own": None, "consumers": consumers_value_fn(agent, batch, y, eps, loss_fn)}
        for value in VALUES:
            for _ in range(draws):
                _, _, g_theta, _ = xinet.gated_gradients(
                    specs, agent.params, {"obs": obs, "act": act}, agent.theta, loss_fn, rng, "flip",
                    agent.knob("ofenet", "eps_xi"), agent.stats, bn_train=True, eps_bn=agent.cfg.eps_bn,
                    value_fn=value_fns[value])
                g[value].append(np.concatenate([g_theta[s.name] for s in specs if s.gated]) / agent.loss_scale["ofenet"])
        base = np.mean(relative_losses(agent, batch, y, eps, agent.theta))
        row = []
        for s, j in units:
            theta = dict(agent.theta)
            theta[s.name] = np.where(np.arange(len(theta[s.name])) == j, 0.0, theta[s.name])
            row.append(np.mean(relative_losses(agent, batch, y, eps, theta)) - base)
        usefulness.append(row)
    U = np.mean(usefulness, axis=0)
    out = {"run": run_dir, "step": int(run.step), "beta": beta, "batches": batches, "draws": draws,
           "batch": batch_size, "seed": seed, "units": len(units), "per_block": {}, "sweep": {},
           "per_unit": {"layer": [s.name for s, _ in units], "block": block.tolist(), "price": price.tolist(),
                        "U": U.tolist()}}
    for value in VALUES:
        est = np.array(g[value])                                                  # (batches·draws, n)
        mean, se = est.mean(axis=0), est.std(axis=0, ddof=1) / np.sqrt(est.shape[0])
        net = mean + price
        out_mask, held = net > K_THETA * se, net < -K_THETA * se
        for b in ("state", "action"):
            m = block == b
            out["per_block"][f"{value}/{b}"] = {
                "units": int(m.sum()), "g_mean": float(mean[m].mean()), "price_mean": float(price[m].mean()),
                "U_mean": float(U[m].mean()), "pushed_out": int((out_mask & m).sum()), "held": int((held & m).sum()),
                "se_median": float(np.median(se[m]))}
        out[f"{value}/pushed_out"] = int(out_mask.sum())
        out[f"{value}/held"] = int(held.sum())
        out[f"{value}/P_removed_less_useful"] = ordering(U, out_mask)
        out[f"{value}/corr_g_U"] = float(np.corrcoef(-mean, U)[0, 1])
        out["per_unit"][f"{value}/g"], out["per_unit"][f"{value}/se"] = mean.tolist(), se.tolist()
        for b in sweep:
            pushed = mean + (b / beta) * price > K_THETA * se
            out["sweep"][f"{value}/beta{b:g}"] = {"pushed_out": int(pushed.sum()),
                                                  "pushed_out_state": int((pushed & (block == "state")).sum()),
                                                  "P_removed_less_useful": ordering(U, pushed)}
    return out


def ordering(U, removed):
    """P(U_r < U_k) over pairs of a removed unit r and a kept unit k (ties count one half); None if either is empty."""
    r, k = U[removed], U[~removed]
    if len(r) == 0 or len(k) == 0:
        return None
    less = (r[:, None] < k[None, :]).mean() + 0.5 * (r[:, None] == k[None, :]).mean()
    return float(less)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="directory of a xinet run with a checkpoint")
    ap.add_argument("--beta", type=float, default=10.0, help="the price β (Eq. 19) the units are weighed against")
    ap.add_argument("--batches", type=int, default=32, help="replay batches")
    ap.add_argument("--draws", type=int, default=8, help="flip estimates per batch and value")
    ap.add_argument("--batch", type=int, default=256, help="transitions per batch (the training batch)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sweep", default="", help="comma-separated prices β to also count the units pushed out at")
    ap.add_argument("--out", help="also write the result to this JSON file")
    args = ap.parse_args(argv)
    try:
        if args.batches < 1 or args.draws < 1 or args.batches * args.draws < 2 or args.batch < 2 or args.seed < 0:
            raise UserError("--batches, --draws >= 1 with at least 2 estimates, --batch >= 2, --seed >= 0")
        if not args.beta > 0:
            raise UserError(f"--beta must be > 0, got {args.beta}")
        try:
            sweep = tuple(float(b) for b in args.sweep.split(",") if b.strip())
        except ValueError:
            raise UserError(f"--sweep must be comma-separated numbers, got {args.sweep!r}") from None
        if any(not b >= 0 for b in sweep):
            raise UserError(f"--sweep prices must be >= 0, got {args.sweep!r}")
        r = measure(args.run, args.beta, args.batches, args.draws, args.batch, args.seed, sweep)
    except UserError as exc:
        print(f"ofenet_value: error: {exc}", file=sys.stderr)
        return 2
    for key, b in r["per_block"].items():
        print(f"{key:18s} {b['units']:3d} units: g {b['g_mean']:+.2e} (se {b['se_median']:.1e}), price "
              f"{b['price_mean']:.2e}, U {b['U_mean']:+.2e}; pushed out {b['pushed_out']}, held {b['held']}")
    for v in VALUES:
        print(f"{v}: pushed out {r[v + '/pushed_out']} of {r['units']}, P(removed less useful) "
              f"{r[v + '/P_removed_less_useful']}, corr(−g, U) {r[v + '/corr_g_U']:.2f}")
    for key, v in r["sweep"].items():
        print(f"{key}: pushed out {v['pushed_out']} ({v['pushed_out_state']} of the state block), "
              f"P(removed less useful) {v['P_removed_less_useful']}")
    if args.out:
        atomic_write_text(args.out, json.dumps(r, indent=1))
    print(json.dumps({k: v for k, v in r.items() if k != "per_unit"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
