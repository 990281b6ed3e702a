"""Variance per unit of compute of the score-function θ-gradient for the baselines none / loo / pair
(docs/METHOD.md Eq. 22–23, Choice "default = whichever gives the lowest variance per unit of compute").

Case: teacher–student regression. Teacher: a fixed random ReLU MLP (d_in → 6 → 1). Student: a gated ReLU MLP
(d_in → 64 gated → 1, xiref.wiring.mlp), first trained briefly with θ = 1 (expected gates, Eq. 3) so its
loss is that of a partially trained network, then held fixed. For each θ setting
  * theta=1      : θ = 1 for all units, sampled from θ̃ = 1 − ε_ξ (the state every run starts in),
  * theta~U(.3,1): θ_j uniform in [0.3, 1] (θ̃ clips the upper end),
each baseline produces `repeats` independent estimates ĝ_θ (64,) by xiref.xinet.gated_gradients, each on a
fresh batch of 256 examples (the same batches for every baseline) with fresh masks.

  variance        = mean over the 64 units of the sample variance of ĝ_θj over the repeats
  seconds         = median wall time of one gated_gradients call (forward + backward; pair does two)
  passes          = forward/backward passes per estimate (none, loo: 1; pair: 2)
  var×sec, var×passes: variance of an estimate rescaled to a fixed compute budget (lower is better)

Calls of the three baselines are interleaved so that machine noise affects them alike. Uncertainty: the
repeats are resampled with replacement (--boot times, the same indices for every baseline, since they share
the data batches) to give the standard error of each variance and, per setting, the fraction of resamples in
which each baseline has the lowest var×sec (timings held at their medians). At θ = 1 the estimates are
heavy-tailed (a dropped unit has score −1/ε_ξ = −100, drawn with probability ε_ξ), so many repeats are needed.
The last line printed is one JSON object with every number and "best": the baseline with the lowest
geometric mean of var×sec over the θ settings.
"""
import argparse
import json
import time

import numpy as np

from xiref import adam as A
from xiref import gates as G
from xiref import network as N
from xiref import wiring as Wi
from xiref import xinet as X

PASSES = {"none": 1, "loo": 1, "pair": 2}


def teacher_fn(rng, d_in, width):
    W1 = rng.normal(0.0, 1.0 / np.sqrt(d_in), (d_in, width))
    b1 = rng.normal(0.0, 0.3, width)
    w2 = rng.normal(0.0, 1.0, (width, 1))
    return lambda x: np.maximum(x @ W1 + b1, 0.0) @ w2


def make_batch(rng, teacher, batch, d_in, noise):
    x = rng.normal(size=(batch, d_in))
    return x, teacher(x) + noise * rng.normal(size=(batch, 1))


def squared_error(y, out_name):
    """xinet loss contract: ℓ_i = (out_i − y_i)², d[(1/B) Σ ℓ_i]/d out."""
    def loss_fn(acts):
        r = acts[out_name] - y
        return r[:, 0] ** 2, {out_name: 2.0 * r / len(y)}
    return loss_fn


def pretrain(specs, params, teacher, rng, steps, batch, d_in, noise, lr):
    """Adam on the expected-gate student with θ = 1 (Eq. 3, 31). Returns the final batch loss."""
    opt = A.adam_init(params, lr=lr)
    gates = {s.name: np.ones(s.n_out) for s in specs if s.gated}
    out = specs[-1].name
    loss = float("nan")
    for _ in range(steps):
        x, y = make_batch(rng, teacher, batch, d_in, noise)
        acts, cache = N.forward(specs, params, {"x": x}, gates)
        ell, d_acts = squared_error(y, out)(acts)
        grads, _, _ = N.backward(specs, params, gates, cache, d_acts)
        A.adam_step(params, grads, opt)
        loss = float(np.mean(ell))
    return loss


def measure(specs, params, theta, teacher, args, seed):
    """`repeats` θ-gradient estimates per baseline on shared batches; returns per-baseline statistics."""
    data_rng = np.random.default_rng(seed)
    mask_rngs = {b: np.random.default_rng([seed, k]) for k, b in enumerate(G.BASELINES)}
    out = specs[-1].name
    est = {b: [] for b in G.BASELINES}
    secs = {b: [] for b in G.BASELINES}
    losses = []
    for r in range(args.repeats + args.warmup):
        x, y = make_batch(data_rng, teacher, args.batch, args.d_in, args.noise)
        loss_fn = squared_error(y, out)
        for b in G.BASELINES:
            t0 = time.perf_counter()
            mean_loss, _, g_theta, _ = X.gated_gradients(specs, params, {"x": x}, theta, loss_fn, mask_rngs[b],
                                                          baseline=b, eps_xi=args.eps_xi)
            dt = time.perf_counter() - t0
            if r >= args.warmup:                          # the first calls warm caches and are not counted
                est[b].append(np.concatenate([g_theta[s.name] for s in specs if s.gated]))
                secs[b].append(dt)
                if b == "none":
                    losses.append(mean_loss)
    boot_rng = np.random.default_rng([seed, 7])
    idx = boot_rng.integers(0, args.repeats, size=(args.boot, args.repeats))   # shared across baselines
    res, boot_vxs = {}, {}
    for b in G.BASELINES:
        e = np.array(est[b])                                                      # (repeats, units)
        var = float(np.mean(np.var(e, axis=0, ddof=1)))
        sec = float(np.median(secs[b]))
        boot_var = np.array([np.mean(np.var(e[i], axis=0, ddof=1)) for i in idx])
        boot_vxs[b] = boot_var * sec
        res[b] = {"variance": var, "variance_se": float(np.std(boot_var, ddof=1)), "seconds": sec,
                  "passes": PASSES[b], "var_x_sec": var * sec, "var_x_passes": var * PASSES[b],
                  "mean_abs_grad": float(np.mean(np.abs(np.mean(e, axis=0))))}
    winners = np.argmin(np.array([boot_vxs[b] for b in G.BASELINES]), axis=0)
    for k, b in enumerate(G.BASELINES):
        res[b]["p_best_var_x_sec"] = float(np.mean(winners == k))
    return res, float(np.mean(losses))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3000, help="estimates per baseline and θ setting")
    ap.add_argument("--warmup", type=int, default=5, help="uncounted calls per baseline before measuring")
    ap.add_argument("--boot", type=int, default=200, help="bootstrap resamples of the repeats")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=64, help="gated ReLU units of the student")
    ap.add_argument("--teacher", type=int, default=6, help="ReLU units of the teacher")
    ap.add_argument("--d-in", type=int, default=8)
    ap.add_argument("--noise", type=float, default=0.05, help="std of label noise")
    ap.add_argument("--pretrain-steps", type=int, default=500, help="Adam steps of the student at θ = 1")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--eps-xi", type=float, default=0.01)
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    teacher = teacher_fn(rng, args.d_in, args.teacher)
    specs = Wi.mlp("student", ("x",), hidden=(args.hidden,), n_out=1)
    params, _ = N.init_params(specs, {"x": args.d_in}, rng)
    train_loss = pretrain(specs, params, teacher, rng, args.pretrain_steps, args.batch, args.d_in, args.noise,
                          args.lr)
    name = specs[0].name
    settings = {
        "theta=1": {name: np.ones(args.hidden)},
        "theta~U(.3,1)": {name: np.random.default_rng([args.seed, 99]).uniform(0.3, 1.0, args.hidden)},
    }
    results = {}
    print(f"student {args.d_in}->{args.hidden} gated ReLU->1, teacher {args.teacher} ReLU units, batch {args.batch}, "
          f"eps_xi {args.eps_xi}, {args.repeats} estimates per cell, seed {args.seed}")
    print(f"pre-trained {args.pretrain_steps} Adam steps at theta=1: batch loss {train_loss:.4g}")
    header = (f"{'setting':<15}{'baseline':<9}{'variance':>11}{'± se':>10}{'ms/est':>8}{'passes':>7}"
              f"{'var*sec':>11}{'var*passes':>11}{'rel v*sec':>10}{'rel v*pass':>11}{'P(best)':>8}")
    print(header)
    print("-" * len(header))
    for k, (setting, theta) in enumerate(settings.items()):
        res, loss = measure(specs, params, theta, teacher, args, seed=args.seed * 1000 + 17 + k)
        best_s = min(r["var_x_sec"] for r in res.values())
        best_p = min(r["var_x_passes"] for r in res.values())
        for b, r in res.items():
            print(f"{setting:<15}{b:<9}{r['variance']:>11.4g}{r['variance_se']:>10.2g}{1e3 * r['seconds']:>8.3f}"
                  f"{r['passes']:>7d}{r['var_x_sec']:>11.4g}{r['var_x_passes']:>11.4g}"
                  f"{r['var_x_sec'] / best_s:>10.3g}{r['var_x_passes'] / best_p:>11.3g}"
                  f"{r['p_best_var_x_sec']:>8.2f}")
        results[setting] = {"mean_loss": loss, "baselines": res}
        print(f"{'':<15}(mean sampled-gate loss {loss:.4g}; mean |E g_theta| over units "
              f"{np.mean([r['mean_abs_grad'] for r in res.values()]):.3g})")
    geo = {b: float(np.exp(np.mean([np.log(results[s]["baselines"][b]["var_x_sec"]) for s in results])))
           for b in G.BASELINES}
    geo_p = {b: float(np.exp(np.mean([np.log(results[s]["baselines"][b]["var_x_passes"]) for s in results])))
             for b in G.BASELINES}
    best = min(geo, key=geo.get)
    elapsed = time.perf_counter() - t_start
    print("geometric mean over settings of var*sec: " + ", ".join(f"{b} {v:.4g}" for b, v in geo.items()))
    print(f"best (lowest variance per second): {best}   [total {elapsed:.1f} s]")
    print(json.dumps({"config": vars(args), "pretrain_loss": train_loss, "settings": results,
                      "geomean_var_x_sec": geo, "geomean_var_x_passes": geo_p,
                      "best_per_setting": {s: min(r["baselines"], key=lambda b: r["baselines"][b]["var_x_sec"])
                                           for s, r in results.items()},
                      "best": best, "elapsed_s": elapsed}))


if __name__ == "__main__":
    main()
