"""Does pruning follow usefulness? θ-dynamics of OFENet alone on fixed data (docs/METHOD.md §5, §7).

An OFENet of the default shape (6 × 40 per block) is fitted on random-action transitions of a MuJoCo task
(as examples/benchmarks/bench_estimators.py does), then trained on with its θ moving (Eq. 32) and pruning on
(§7), for `--theta-steps` updates, once per (estimator, β) configuration, from the same fitted state. The price
is that of a whole agent (OFENet + 256×256 actor and critics, Eq. 19, 29).

Each unit's worth is measured once, on the fitted network before θ moves, on held-out transitions with the
expected-gate, inference-BN forward that consumers read (Eq. 3):
  w_j = (ℓ̄(unit j off) − ℓ̄(all on)) / L̄  −  β ∂C/∂θ_j / C(𝟙)        (usefulness net of its price, Eq. 19)
  ordering = P(w_removed < w_kept) over all pairs of a removed and a kept unit: 0.5 is random, 1 is perfect.
One CSV row per configuration goes to `--out` (rewritten through a temporary file; configurations already there are skipped, so an
interrupted campaign resumes). The last line printed is one JSON object with every row.
"""
import argparse
import csv
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))
from bench_estimators import transitions  # noqa: E402

from xiref import agent as AG  # noqa: E402
from xiref import network as N  # noqa: E402
from xiref import ofenet as OF  # noqa: E402
from xiref import wiring as Wi  # noqa: E402
from xiref.allocator import keep_freed_memory  # noqa: E402
from xiref.errors import UserError, script_error  # noqa: E402
from xiref.gates import ESTIMATORS  # noqa: E402
from xiref.prune import THETA_SCALES  # noqa: E402

FIELDS = ("estimator", "beta", "k_theta", "theta_scale", "eta_theta", "mu_theta", "eps_xi", "theta_steps", "units_start", "units_alive",
          "units_at_one", "median_theta", "aux_loss_start", "aux_loss_end", "ordering", "seconds")


def heldout_loss(agent, data, theta):
    """ℓ̄ of the expected-gate, inference-BN OFENet on held-out transitions (Eq. 3, 7, 8)."""
    obs, act, _, obs_next, _ = data
    specs = agent.specs("ofenet")
    acts, _ = N.forward(specs, agent.params, {"obs": obs, "act": act}, {s.name: theta[s.name] for s in specs
                                                                        if s.gated}, agent.stats)
    return OF.aux_loss(acts["ofenet/head"], obs_next)[0].mean()


def unit_usefulness(agent, data):
    """(ℓ̄(unit j off) − ℓ̄(all on)) for every gated OFENet unit, in layer order (n,)."""
    base, out = heldout_loss(agent, data, agent.theta), []
    for spec in agent.specs("ofenet"):
        if spec.gated:
            for j in range(len(agent.theta[spec.name])):
                theta = dict(agent.theta)
                theta[spec.name] = np.where(np.arange(len(theta[spec.name])) == j, 0.0, theta[spec.name])
                out.append(heldout_loss(agent, data, theta) - base)
    return np.array(out)


def ordering(worth, removed):
    """P(w_r < w_k) over pairs of a removed unit r and a kept unit k (ties count one half)."""
    r, k = worth[removed], worth[~removed]
    if r.size == 0 or k.size == 0:
        return float("nan")
    less = (r[:, None] < k[None, :]).mean() + 0.5 * (r[:, None] == k[None, :]).mean()
    return float(less)


def fitted(args, data):
    obs_dim, act_dim = data[0].shape[1], data[1].shape[1]
    cfg = AG.AgentConfig(ofenet=True, gated=True, target_dim=OF.target_dim(args.env, obs_dim), baseline="none")
    rng = np.random.default_rng(args.seed)
    agent = AG.Agent(cfg, obs_dim, act_dim, np.zeros(act_dim), rng)
    for _ in range(args.fit_steps):
        idx = rng.integers(0, len(data[0]), args.batch)
        agent.update_ofenet([x[idx] for x in data], rng, update_theta=False)
    return agent, rng


def run_config(agent0, rng_state, data, held, usefulness, estimator, beta, k, args):
    import copy
    agent = copy.deepcopy(agent0)
    rng = np.random.default_rng()
    rng.bit_generator.state = rng_state
    for name, value in (("baseline", estimator), ("beta_ofenet", beta), ("eta_theta_ofenet", args.eta_theta),
                        ("mu_theta", args.mu_theta), ("eps_xi_ofenet", args.eps_xi), ("k_theta", k),
                        ("theta_scale", args.theta_scale)):
        setattr(agent.cfg, name, value)
    gated = [s for s in agent.specs("ofenet") if s.gated]
    alive_ids = np.concatenate([np.arange(len(agent.theta[s.name])) + 1000 * k for k, s in enumerate(gated)])
    loss_start = float(heldout_loss(agent, held, agent.theta))
    t0 = time.time()
    for _ in range(args.theta_steps):
        idx = rng.integers(0, len(data[0]), args.batch)
        agent.update_ofenet([x[idx] for x in data], rng, update_theta=True)
        keep = {s.name: agent.theta[s.name] > 0 for s in gated}
        alive_ids = alive_ids[np.concatenate([keep[s.name] for s in gated])]
        agent.prune()
    # ∂C/∂θ_j / C(𝟙) at the start (θ = 1), each unit's price share                     Eq. (19), (29)
    share = np.concatenate([Wi.cost_grad(agent0.wiring, agent0.theta, "ofenet")[s.name] for s in gated])
    share = share / agent0.cost_initial
    worth = usefulness / max(agent0.loss_scale["ofenet"], 1e-12) - beta * share
    start_ids = np.concatenate([np.arange(len(agent0.theta[s.name])) + 1000 * k for k, s in enumerate(gated)])
    theta_all = np.concatenate([agent.theta[s.name] for s in gated]) if alive_ids.size else np.zeros(0)
    return {"estimator": estimator, "beta": beta, "k_theta": k, "theta_scale": args.theta_scale,
            "eta_theta": args.eta_theta, "mu_theta": args.mu_theta,
            "eps_xi": args.eps_xi, "theta_steps": args.theta_steps, "units_start": int(start_ids.size),
            "units_alive": int(alive_ids.size), "units_at_one": int(np.sum(theta_all == 1.0)),
            "median_theta": float(np.median(theta_all)) if theta_all.size else 0.0,
            "aux_loss_start": loss_start, "aux_loss_end": float(heldout_loss(agent, held, agent.theta)),
            "ordering": ordering(worth, ~np.isin(start_ids, alive_ids)), "seconds": round(time.time() - t0, 1)}


def write_rows(path, row):
    """Append `row` to the CSV at `path`: the whole file is written to a temporary file, then renamed."""
    rows = []
    if os.path.exists(path):
        with open(path, newline="") as f:
            # rows without k_θ or theta_scale: the plain, unscaled step (32)
            rows = [{"k_theta": 0.0, "theta_scale": "none", **r} for r in csv.DictReader(f)]
    with open(path + ".tmp", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows + [row])
    os.replace(path + ".tmp", path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="HalfCheetah-v5", help="MuJoCo task whose transitions OFENet fits")
    ap.add_argument("--transitions", type=int, default=20000, help="random-action transitions for training")
    ap.add_argument("--heldout", type=int, default=2000, help="held-out transitions for loss and usefulness")
    ap.add_argument("--fit-steps", type=int, default=3000, help="auxiliary-loss updates with θ frozen at 1")
    ap.add_argument("--theta-steps", type=int, default=3000, help="updates with θ moving and pruning on")
    ap.add_argument("--estimators", default="flip,pair", help="comma-separated θ-gradient estimators")
    ap.add_argument("--betas", default="0,1,3,10,30", help="comma-separated OFENet prices β")
    ap.add_argument("--k-thetas", default="0,2", help="comma-separated evidence thresholds k_θ (Eq. 37)")
    ap.add_argument("--eta-theta", type=float, default=0.05, help="θ step η_θ (Eq. 32)")
    ap.add_argument("--theta-scale", choices=THETA_SCALES, default="none",
                    help="θ-step in the units of ĝ_θ/L̄ (Eq. 37) or of each unit's RMS (Eq. 39)")
    ap.add_argument("--mu-theta", type=float, default=0.99, help="θ momentum μ_θ (Eq. 32)")
    ap.add_argument("--eps-xi", type=float, default=0.001, help="sampling floor ε_ξ (Eq. 4)")
    ap.add_argument("--batch", type=int, default=256, help="minibatch size")
    ap.add_argument("--seed", type=int, default=0, help="seed of env, fit and masks")
    ap.add_argument("--out", default="theta_dynamics.csv", help="CSV, one row per configuration (appended)")
    args = ap.parse_args(argv)
    try:
        betas = [float(b) for b in args.betas.split(",")]
        ks = [float(k) for k in args.k_thetas.split(",")]
    except ValueError:
        script_error("theta_dynamics", "--betas and --k-thetas must be comma-separated numbers")
    if min(betas + ks) < 0 or not np.all(np.isfinite(betas + ks)):
        script_error("theta_dynamics", "--betas and --k-thetas must be finite and >= 0")
    if min(args.transitions, args.heldout, args.batch, args.theta_steps) <= 0 or args.fit_steps < 0:
        script_error("theta_dynamics", "--transitions, --heldout, --batch and --theta-steps must be positive, "
                                       "--fit-steps >= 0")
    if not (args.eta_theta > 0 and 0 < args.mu_theta < 1 and 0 < args.eps_xi < 0.5):
        script_error("theta_dynamics", "need --eta-theta > 0, 0 < --mu-theta < 1 and 0 < --eps-xi < 0.5")
    if any(e not in ESTIMATORS for e in args.estimators.split(",")):
        script_error("theta_dynamics", f"--estimators must be among {', '.join(ESTIMATORS)}, got {args.estimators!r}")
    keep_freed_memory()
    done = set()
    if os.path.exists(args.out):
        with open(args.out) as f:
            done = {(r["estimator"], float(r["beta"]), float(r.get("k_theta") or 0), r.get("theta_scale") or "none",
                     float(r["eta_theta"])) for r in csv.DictReader(f)}
    try:
        data = transitions(args.env, args.transitions + args.heldout, args.seed)
    except UserError as exc:
        script_error("theta_dynamics", exc)
    train, held = [x[:args.transitions] for x in data], [x[args.transitions:] for x in data]
    agent0, rng = fitted(args, train)
    usefulness = unit_usefulness(agent0, held)
    rows = []
    for estimator in args.estimators.split(","):
        for k in ks:
            for beta in betas:
                if (estimator, beta, k, args.theta_scale, args.eta_theta) in done:
                    continue
                row = run_config(agent0, rng.bit_generator.state, train, held, usefulness, estimator, beta, k, args)
                write_rows(args.out, row)
                print(", ".join(f"{name} {v}" for name, v in row.items()), flush=True)
                rows.append(row)
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
