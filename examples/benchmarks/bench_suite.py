"""The README "Performance" measurements in one command: bench_update.py at the settings of the
performance targets (sac float32 ≤ 0.6 × PyTorch, float64 ≤ 1.0 ×, ≥ 50 % of the GEMM rate, pruning ≥ 0.8·p).

    OPENBLAS_NUM_THREADS=1 python examples/benchmarks/bench_suite.py --out examples/results/bench_update.json

Runs, in this process and one after the other (Hopper dims 11/3, 256×256, batch 256, OFENet 6×40):
  sac   float32 with glibc's allocator defaults (page faults on every update; xiref/allocator.py)
  sac   float32 vs torch float32      (target: xiref ≤ 0.6 × torch; ≥ 50 % of the GEMM rate)
  sac   float64 vs torch float32      (target: xiref ≤ 1.0 × torch)
  ofe   float32 vs torch float32
  xinet float32 vs torch float32, and xinet float32 at prune fraction 0, 0.25, 0.5, 0.75 in --rounds
        alternating rounds, median per fraction (target: time falls by ≥ 0.8·p of the unpruned time)
Writes every bench_update JSON result to --out (atomically) and prints one final JSON line with the
ratios the targets are about. Expected runtime ≈ 2–3 min on one idle core (torch installed).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_update  # noqa: E402  (a sibling script)

CASES = [
    # first: glibc's allocator defaults; every later case calls keep_freed_memory(), which is process-wide
    ("sac_f32_default_malloc", ["--method", "sac", "--dtype", "float32", "--default-malloc", "--no-torch"]),
    ("sac_f32", ["--method", "sac", "--dtype", "float32"]),
    ("sac_f64_vs_torch_f32", ["--method", "sac", "--dtype", "float64", "--torch-dtype", "float32"]),
    ("ofe_f32", ["--method", "ofe", "--dtype", "float32"]),
    ("xinet_f32", ["--method", "xinet", "--dtype", "float32"]),
]
# the pruning comparison, in rounds that alternate the four sizes: a machine whose speed drifts (a shared
# VM) then moves all four alike, and each size's median over the rounds is compared
FRACTIONS = (0.0, 0.25, 0.5, 0.75)
PRUNE_CASES = [(f"xinet_f32_prune{p}", ["--method", "xinet", "--dtype", "float32", "--prune-fraction", str(p),
                                         "--no-torch"]) for p in FRACTIONS]


def targets(res):
    """The performance targets' ratios from the results (None where torch was not importable)."""
    def ratio(key):
        r = res[key]
        return None if r["torch_us_per_update"] is None else round(r["us_per_update"] / r["torch_us_per_update"], 3)
    base = res["xinet_f32_prune0.0"]["us_per_update"]
    drops = {p: round(1.0 - res[f"xinet_f32_prune{p}"]["us_per_update"] / base, 3) for p in (0.25, 0.5, 0.75)}
    return {"sac_f32_over_torch_f32": ratio("sac_f32"), "sac_f64_over_torch_f32": ratio("sac_f64_vs_torch_f32"),
            "ofe_f32_over_torch_f32": ratio("ofe_f32"), "xinet_f32_over_torch_f32": ratio("xinet_f32"),
            "sac_f32_gemm_fraction": res["sac_f32"]["gemm_fraction"],
            "sac_f32_default_malloc_over_kept": round(res["sac_f32_default_malloc"]["us_per_update"]
                                                      / res["sac_f32"]["us_per_update"], 3),
            "xinet_time_drop_at_prune_fraction": {str(p): d for p, d in drops.items()},
            "prune_drop_target_met": all(d >= 0.8 * p - 1e-9 for p, d in drops.items())}   # 1e-9: 0.8·0.75 rounds up


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="", help="JSON file for every result (nothing written if empty)")
    ap.add_argument("--repeats", type=int, default=100, help="timed updates per benchmark (median reported)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of the pruning comparison")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.rounds < 1:
        ap.error("--repeats and --rounds must be positive")
    res = {}
    for name, flags in CASES:
        print(f"== {name}", flush=True)
        res[name] = bench_update.main(flags + ["--repeats", str(args.repeats)])
    rounds = {name: [] for name, _ in PRUNE_CASES}
    for r in range(args.rounds):
        for name, flags in PRUNE_CASES:
            print(f"== {name} (round {r + 1} of {args.rounds})", flush=True)
            rounds[name].append(bench_update.main(flags + ["--repeats", str(args.repeats)]))
    for name, runs in rounds.items():         # the round with the median time stands for the size
        runs = sorted(runs, key=lambda x: x["us_per_update"])
        res[name] = dict(runs[len(runs) // 2], rounds_us_per_update=[x["us_per_update"] for x in rounds[name]])
    summary = targets(res)
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"results": res, "targets": summary}, f, indent=1)
        os.replace(tmp, args.out)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
