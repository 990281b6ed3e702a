"""Wall time of one full agent update, against the machine's GEMM rate and (optionally) PyTorch-CPU.

    OPENBLAS_NUM_THREADS=1 python examples/benchmarks/bench_update.py --method xinet --dtype float32
    OPENBLAS_NUM_THREADS=1 python examples/benchmarks/bench_update.py --method xinet --prune-fraction 0.5

One update is what the training loop does per environment step after warm-up (xiref/train.py,
`Run.updates`): `agent.update_ofenet` (ofe, xinet) followed by `agent.update_sac`, with `update_theta=True`
for xinet. The batch is synthetic (normal observations, uniform actions); the networks are freshly
initialised. For xinet, η_θ is set to 1e-12 so that the θ-steps run at full cost but no unit reaches
θ = 0 while timing (checked afterwards). `--prune-fraction p` first sets θ = 0 for round(p·n) randomly
chosen units of every gated layer (an MLP hidden layer keeps ≥ 1 unit) and calls `agent.prune()`, so the
timed update runs on the physically compacted networks.

Reported numbers
  us_per_update     median wall time (µs) of one update over --repeats updates after --warmup updates
                    (p25/p75 beside it: the machine may be shared, read the spread); cpu_us_per_update is
                    the median CPU time of this process (it leaves out waiting for a core, not the slow-down
                    from sharing caches and memory bandwidth with other processes).
  flops_per_update  2·m·n·k for every matrix product the update computes, counted by wrapping
                    xiref.layers.dense_forward (h W: 2·B·n_in·n) and dense_backward (du Wᵀ and hᵀ du, each
                    2·B·n_in·n, when computed; du W[rows]ᵀ 2·B·rows·n; B the rows the product runs on)
                    for one update (a layer whose forward the second 'pair' draw takes over from the first
                    is not computed twice, so not counted twice). Element-wise
                    work (activations, BN, Adam, masks) and the vector-matrix products of the
                    score-function estimator (2·B·n) are not counted: the figure is the dense-layer GEMM
                    work, what a perfect BLAS would have to do.
  gflops            flops_per_update / us_per_update.
  gemm_floor_us     the same products, each timed alone at its own shape and operand layout (median of 30
                    calls) and summed: the time of an update that did nothing but its GEMMs in numpy. Above
                    this, the update's time is element-wise work and Python; below it no numpy
                    implementation of the same products can go.
  gemm_peak_gflops  the best rate of one numpy matmul of the update's typical shapes in the same dtype,
                    timed in the same run: (B×H)@(H×H) and (B×K)@(K×H) with K = O + 2·L·u + A (the critic
                    input with OFENet, 494 for Hopper's 11 + 2·6·40 + 3). gflops / gemm_peak_gflops is the
                    fraction of the update spent doing useful GEMM work at that rate.
  torch_us_per_update  the same update written in PyTorch (examples/benchmarks/bench_torch.py: same wiring and
                    widths — after pruning too —, twin critics + target critics + actor + α, the same losses, the same number of
                    forward/backward passes — two per gated network for the 'pair' baseline — and Adam),
                    autograd for the gradients, in --torch-dtype (default: --dtype; `--dtype float64
                    --torch-dtype float32` is the README's comparison); torch.set_num_threads equal to
                    the BLAS threads of numpy. null when torch is not importable or with --no-torch.
                    The two are timed in alternating blocks of --block updates (xiref, torch, xiref, …),
                    so that drift in the machine's speed over the run moves both alike.
                    torch_gflops divides the same flops_per_update by the torch time; xiref_over_torch is
                    us_per_update / torch_us_per_update.

The last line printed is one JSON object with every number.
"""
import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from contextlib import contextmanager

import numpy as np

from xiref import layers as L
from xiref.allocator import keep_freed_memory
from xiref.agent import SHARED_KNOBS, Agent, AgentConfig
from xiref.gates import ESTIMATORS

from bench_torch import torch_update  # noqa: E402  (a sibling script; imports torch only when called)

METHODS = ("sac", "ofe", "xinet")


# ---------------------------------------------------------------------- set-up
def blas_threads():
    """Threads numpy's BLAS uses: the first of the usual variables that is set, else all cores."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return os.cpu_count() or 1


def make_agent(args, dtype):
    cfg = AgentConfig(hidden=(args.hidden, args.hidden), ofenet=args.method != "sac", gated=args.method == "xinet",
                      ofe_layers=args.ofe_layers, ofe_units=args.ofe_units, target_dim=args.obs_dim,
                      # θ-steps at full cost, but no unit reaches 0 while timing; the estimator --baseline
                      # (examples/benchmarks/bench_torch.py mirrors pair and flip)
                      baseline=args.baseline, **{**SHARED_KNOBS, "eta_theta": 1e-12})
    return Agent(cfg, args.obs_dim, args.act_dim, np.zeros(args.act_dim), np.random.default_rng(args.seed), dtype)


def prune_fraction(agent, p, rng):
    """θ = 0 for round(p·n) random units of every gated layer (≥ min_units kept), then compact (§7)."""
    for spec in agent.wiring.layers:
        if spec.gated:
            n = len(agent.theta[spec.name])
            k = min(int(round(p * n)), n - spec.min_units)
            theta = agent.theta[spec.name].copy()
            theta[rng.choice(n, size=k, replace=False)] = 0.0
            agent.theta[spec.name] = theta
    return agent.prune()


def make_batches(args, dtype, rng, count=8):
    """Synthetic replay batches (o, a, r, o′, d) in the agent's dtype."""
    B, O, A = args.batch, args.obs_dim, args.act_dim
    return [(rng.standard_normal((B, O)).astype(dtype), rng.uniform(-1, 1, (B, A)).astype(dtype),
             rng.standard_normal(B).astype(dtype), rng.standard_normal((B, O)).astype(dtype),
             (rng.random(B) < 0.05).astype(dtype)) for _ in range(count)]


def xiref_update(agent, batch, rng):
    """One training-loop update (xiref/train.py Run.updates without the prune call)."""
    gated = agent.cfg.gated
    if agent.cfg.ofenet:
        agent.update_ofenet(batch, rng, update_theta=gated)
    agent.update_sac(batch, rng, update_theta=gated)


def widths(agent):
    return {s.name: int(agent.params[s.name]["b"].shape[0]) for s in agent.wiring.layers}


# ---------------------------------------------------------------------- measuring
def minor_faults():
    """Minor page faults of this process so far (None where the resource module is missing)."""
    try:
        import resource
    except ImportError:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_calls(fn, repeats, warmup):
    """Per-call wall times and CPU times of this process (s) of fn() after warm-up calls, and the mean
    number of minor page faults per call (None if unknown)."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    f0 = minor_faults()
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    faults = None if f0 is None else (minor_faults() - f0) / repeats
    return wall, cpu, faults


def time_interleaved(fns, repeats, warmup, block):
    """time_calls for several functions whose calls alternate in blocks of `block` (a, a, …, b, b, …, a, …),
    so that a machine whose speed drifts (a virtual machine shared with other jobs) slows them alike: [(wall, cpu, faults)] per function."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    walls, cpus, faults = [[] for _ in fns], [[] for _ in fns], [[] for _ in fns]
    while len(walls[0]) < repeats:
        n = min(block, repeats - len(walls[0]))
        for k, fn in enumerate(fns):
            wall, cpu, f = time_calls(fn, n, 0)
            walls[k] += wall
            cpus[k] += cpu
            faults[k].append(None if f is None else f * n)
    return [(w, c, None if None in f else sum(f) / repeats) for w, c, f in zip(walls, cpus, faults)]


def quantiles(times):
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {"median": statistics.median(times), "p25": q[0], "p75": q[2]}


@contextmanager
def count_flops():
    """Count 2·m·n·k per matrix product of xiref.layers.dense_forward / dense_backward while active.

    Yields (total, products): total[0] the FLOPs; products counts each product by its operands' layout,
    ("hW" | "hTdu" | "duWT", shape of the left operand, shape of the right one), for `gemm_floor_us`."""
    total, products = [0], Counter()
    fwd, bwd = L.dense_forward, L.dense_backward

    def dense_forward(h, W, b):
        total[0] += 2 * h.shape[0] * W.shape[0] * W.shape[1]            # h W
        products[("hW", h.shape, W.shape)] += 1
        return fwd(h, W, b)

    def dense_backward(du, h, W, need_dh=True, need_dW=True):
        # du W[rows]ᵀ (need_dh a slice of rows, or all rows) and hᵀ du
        rows = len(range(W.shape[0])[need_dh]) if isinstance(need_dh, slice) else W.shape[0] * int(need_dh)
        total[0] += (rows + W.shape[0] * int(need_dW)) * 2 * du.shape[0] * W.shape[1]
        if rows:
            products[("duWT", du.shape, (rows, W.shape[1]))] += 1
        if need_dW:
            products[("hTdu", h.shape, du.shape)] += 1
        return bwd(du, h, W, need_dh, need_dW)

    L.dense_forward, L.dense_backward = dense_forward, dense_backward
    try:
        yield total, products
    finally:
        L.dense_forward, L.dense_backward = fwd, bwd


def gemm_floor_us(products, dtype, rng, repeats=30):
    """Σ count × median time (µs) of each matrix product of one update run alone, operands laid out as in
    the update (hᵀ and Wᵀ transposed views): what the update would take if it did nothing but its GEMMs."""
    floor = 0.0
    for (kind, left, right), count in products.items():
        a, b = rng.standard_normal(left).astype(dtype), rng.standard_normal(right).astype(dtype)
        if kind == "hW":
            fn = lambda a=a, b=b: a @ b                                     # noqa: E731
        elif kind == "hTdu":
            fn = lambda a=a, b=b: a.T @ b                                   # noqa: E731
        else:
            fn = lambda a=a, b=b: L._times_transpose(a, b)                  # noqa: E731
        floor += count * statistics.median(time_calls(fn, repeats, 3)[0])
    return floor * 1e6


def gemm_rates(shapes, dtype, rng, seconds=0.3):
    """GFLOP/s of a @ b for each (m, k, n): median over calls filling about `seconds`."""
    rates = {}
    for m, k, n in shapes:
        a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
        once = min(time_calls(lambda: a @ b, 5, 3)[0])
        t = statistics.median(time_calls(lambda: a @ b, max(10, int(seconds / max(once, 1e-7))), 0)[0])
        rates[f"{m}x{k}@{k}x{n}"] = 2.0 * m * k * n / t / 1e9
    return rates


# ---------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--method", choices=METHODS, default="xinet", help="which update to time")
    ap.add_argument("--obs-dim", type=int, default=11, help="observation size (Hopper: 11)")
    ap.add_argument("--act-dim", type=int, default=3, help="action size (Hopper: 3)")
    ap.add_argument("--hidden", type=int, default=256, help="width of both hidden layers of actor and critics")
    ap.add_argument("--batch", type=int, default=256, help="minibatch size")
    ap.add_argument("--ofe-layers", type=int, default=6, help="OFENet layers per DenseNet block (ofe, xinet)")
    ap.add_argument("--ofe-units", type=int, default=40, help="OFENet units per layer (ofe, xinet)")
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="xiref's dtype")
    ap.add_argument("--prune-fraction", type=float, default=0.0, help="fraction of gated units removed first (xinet)")
    ap.add_argument("--repeats", type=int, default=100, help="timed updates (the median is reported)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed updates first")
    ap.add_argument("--block", type=int, default=10,
                    help="with torch: xiref and torch updates alternate in blocks of this many")
    ap.add_argument("--seed", type=int, default=0, help="seed of the networks and the batch")
    ap.add_argument("--gemm-seconds", type=float, default=0.3, help="time spent per GEMM shape")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    ap.add_argument("--torch-dtype", choices=("float64", "float32"), default=None,
                    help="dtype of the PyTorch update (None: --dtype); float64 xiref vs float32 torch is "
                         "the README's comparison")
    ap.add_argument("--baseline", choices=ESTIMATORS, default="pair",
                    help="xinet's θ-gradient estimator; the PyTorch twin mirrors pair and flip (others need --no-torch)")
    ap.add_argument("--default-malloc", action="store_true",
                    help="keep glibc's allocator defaults (xiref/allocator.py: page faults on every update)")
    args = ap.parse_args(argv)
    if not 0.0 <= args.prune_fraction < 1.0:
        ap.error("--prune-fraction must lie in [0, 1)")
    if args.prune_fraction and args.method != "xinet":
        ap.error("--prune-fraction needs --method xinet (only gated units can be pruned)")
    if args.baseline not in ("pair", "flip") and args.method == "xinet" and not args.no_torch:
        ap.error(f"--baseline {args.baseline}: the PyTorch update mirrors pair and flip only; add --no-torch")
    if min(args.repeats, args.batch, args.hidden, args.obs_dim, args.act_dim, args.block) < 1 or args.warmup < 0:
        ap.error("--repeats, --batch, --hidden, --obs-dim, --act-dim, --block must be positive, --warmup >= 0")

    if not args.default_malloc:
        keep_freed_memory()                    # as `xiref train` does; torch's update runs in the same process
    dtype, threads = np.dtype(args.dtype), blas_threads()
    rng = np.random.default_rng(args.seed)
    agent = make_agent(args, dtype)
    removed = prune_fraction(agent, args.prune_fraction, rng) if args.prune_fraction else {}
    before = widths(agent)
    batches = make_batches(args, dtype, rng)
    k = [0]

    def one_update():
        k[0] += 1
        xiref_update(agent, batches[k[0] % len(batches)], rng)

    torch_dtype = np.dtype(args.torch_dtype or args.dtype)
    upd = None if args.no_torch else torch_update(agent, args, torch_dtype, threads)   # a copy of this agent
    torch_times = None
    if upd is None:
        wall, cpu, faults = time_calls(one_update, args.repeats, args.warmup)
    else:
        kt = [0]

        def torch_one():
            kt[0] += 1
            upd(batches[kt[0] % len(batches)])
        (wall, cpu, faults), (t_wall, t_cpu, torch_faults) = time_interleaved(
            [one_update, torch_one], args.repeats, args.warmup, args.block)
        torch_times, torch_cpu_us = quantiles(t_wall), statistics.median(t_cpu) * 1e6
    times, cpu_us = quantiles(wall), statistics.median(cpu) * 1e6
    with count_flops() as (flops, products):
        one_update()
    flops = flops[0]
    floor_us = gemm_floor_us(products, dtype, rng)
    prune_us = statistics.median(time_calls(agent.prune, 20, 1)[0]) * 1e6   # nothing left to prune: its fixed cost
    if widths(agent) != before:
        sys.exit("bench_update: error: units were pruned while timing")
    # typical GEMM shapes of the update: hidden×hidden, and the OFENet-fed critic input
    K = args.obs_dim + 2 * args.ofe_layers * args.ofe_units + args.act_dim
    gemm = gemm_rates([(args.batch, args.hidden, args.hidden), (args.batch, K, args.hidden)], dtype, rng,
                      args.gemm_seconds)
    peak = max(gemm.values())

    us = times["median"] * 1e6
    res = {"method": args.method, "dtype": args.dtype, "baseline": args.baseline if args.method == "xinet" else None,
           "us_per_update": round(us, 1),
           "flops_per_update": int(flops), "gflops": round(flops / us / 1e3, 3),
           "gemm_peak_gflops": round(peak, 3),
           "gemm_floor_us": round(floor_us, 1),
           "torch_us_per_update": None if torch_times is None else round(torch_times["median"] * 1e6, 1),
           "torch_dtype": str(torch_dtype),
           "xiref_over_torch": None if torch_times is None else round(us / (torch_times["median"] * 1e6), 3),
           "prune_fraction": args.prune_fraction,
           "us_p25": round(times["p25"] * 1e6, 1), "us_p75": round(times["p75"] * 1e6, 1),
           "cpu_us_per_update": round(cpu_us, 1),
           "torch_cpu_us_per_update": None if torch_times is None else round(torch_cpu_us, 1),
           "page_faults_per_update": None if faults is None else round(faults, 1),
           "torch_page_faults_per_update": None if torch_times is None or torch_faults is None
           else round(torch_faults, 1),
           "malloc": "default" if args.default_malloc else "keep_freed_memory",
           "gemm_fraction": round(flops / us / 1e3 / peak, 4),
           "gemm_gflops": {k: round(v, 3) for k, v in gemm.items()},
           "torch_gflops": None if torch_times is None else round(flops / torch_times["median"] / 1e9, 3),
           "prune_call_us": round(prune_us, 1), "units_removed": int(sum(removed.values())),
           "params": int(sum(a.size for p in agent.params.values() for n, a in p.items() if n in ("W", "b", "s", "c"))),
           "batch": args.batch, "hidden": args.hidden, "obs_dim": args.obs_dim, "act_dim": args.act_dim,
           "ofe_layers": args.ofe_layers, "ofe_units": args.ofe_units, "repeats": args.repeats,
           "warmup": args.warmup, "blas_threads": threads}
    rows = [("method / dtype", f"{args.method} / {args.dtype}"),
            ("prune fraction", f"{args.prune_fraction:g} "
                               f"({res['units_removed']} units removed, {res['params']} params)"),
            ("xiref update", f"{us:10.1f} µs  (p25 {res['us_p25']:.1f}, p75 {res['us_p75']:.1f}; "
                             f"{args.repeats} updates after {args.warmup}; CPU time {cpu_us:.1f} µs)"),
            ("page faults / update", f"{res['page_faults_per_update']}  (malloc: {res['malloc']})"),
            ("GEMM FLOPs / update", f"{flops / 1e6:10.2f} MFLOP"),
            ("xiref rate", f"{res['gflops']:10.2f} GFLOP/s  ({100 * res['gemm_fraction']:.1f} % of GEMM peak)"),
            ("GEMM floor", f"{floor_us:10.1f} µs  (its {sum(products.values())} products, each timed alone)")]
    rows += [(f"numpy GEMM {k}", f"{v:10.2f} GFLOP/s") for k, v in gemm.items()]
    if torch_times is None:
        rows.append(("torch update", "      n/a  (torch not importable or --no-torch)"))
    else:
        rows.append((f"torch update ({torch_dtype})", f"{res['torch_us_per_update']:10.1f} µs  ({res['torch_gflops']:.2f} GFLOP/s; "
                                     f"xiref/torch = {us / res['torch_us_per_update']:.2f})"))
    rows.append(("agent.prune() (nothing to do)", f"{prune_us:10.1f} µs"))
    rows.append(("BLAS threads", f"{threads}"))
    for name, text in rows:
        print(f"{name:<32}{text}")
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
