"""The β front: OFENet parameters against final return, one point per price β (docs/EXPERIMENTS.md E15).

Reads the finished runs <root>/<env>/<cell>/seed<k>/ of one family of β cells of examples/experiments/campaign.py —
`--default-cell` (the default β; `xinet`) and `<family>-beta<B>` (`xinet-tilde-beta<B>`) — and the ungated `ofe` and
`sac` of the same env as references. Each run stands at the β its config.json records. Writes
<out>.png (x: OFENet parameters at the end, log scale; y: final return; one marker per seed, a line through the
per-β means, ordered by β) and <out>.csv (one row per run), and prints one JSON line with every point and whether
the front is monotone (a higher β never keeps more OFENet parameters on average).

    python examples/experiments/beta_front.py --root examples/results --env HalfCheetah-v5 \
        --default-cell xinet-theta --family xinet --out examples/results/HalfCheetah-v5_beta_front
"""
import argparse
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from summarize import find_runs, load_finished  # noqa: E402  (sibling)
from summary_plots import _pyplot, _save  # noqa: E402

from xiref.checkpoint import atomic_write_text  # noqa: E402
from xiref.errors import script_error  # noqa: E402
from xiref.train import csv_text  # noqa: E402

FIELDS = ("cell", "beta", "seed", "final_return", "ofenet_params", "ofenet_params_initial", "params")


def is_front_cell(cell, default_cell="xinet", family="xinet-tilde"):
    """True for the cells of one front: `default_cell` and `<family>-beta<B>`."""
    return cell == default_cell or re.fullmatch(re.escape(family) + r"-beta\d+(?:\.\d+)?", cell) is not None


def front_rows(cells, default_cell="xinet", family="xinet-tilde"):
    """One row per finished run of a front cell: {cell, beta, seed, final_return, ofenet_params, …}. A run stands
    at the β its config.json records (a default cell made before a change of the default ran at the β of its day);
    a run that records none is an error, named in one line."""
    rows = []
    for cell, dirs in sorted(cells.items()):
        if not is_front_cell(cell, default_cell, family):
            continue
        for s in load_finished(dirs):
            if s.get("beta") is None:
                script_error("beta_front", f"{s['dir']}/config.json records no beta")
            rows.append({"cell": cell, "beta": float(s["beta"]), "seed": s["seed"], "final_return": s["final_return"],
                         "ofenet_params": s["ofenet_params"], "ofenet_params_initial": s["ofenet_params_initial"],
                         "params": s["params"]})
    return sorted(rows, key=lambda r: (r["beta"], r["seed"]))


def monotone(rows):
    """True when the mean OFENet parameters never rise with β (ties allowed)."""
    betas = sorted({r["beta"] for r in rows})
    means = [np.mean([r["ofenet_params"] for r in rows if r["beta"] == b]) for b in betas]
    return all(b <= a for a, b in zip(means, means[1:]))


def references(cells):
    """{method: mean final return} of the ungated `ofe` and `sac` runs of the env."""
    out = {}
    for method in ("ofe", "sac"):
        finished = load_finished(cells.get(method, []))
        if finished:
            out[method] = float(np.mean([s["final_return"] for s in finished]))
    return out


def plot(env, rows, refs, out, cells=""):
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter, SymmetricalLogLocator
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    betas = sorted({r["beta"] for r in rows})
    means = []
    for k, b in enumerate(betas):
        sel = [r for r in rows if r["beta"] == b]
        x, y = [r["ofenet_params"] for r in sel], [r["final_return"] for r in sel]
        ax.scatter(x, y, alpha=0.6, label=f"β = {b:g} (n={len(sel)})", color=f"C{k % 10}")
        means.append((np.mean(x), np.mean(y)))
    if len(means) > 1:
        ax.plot(*zip(*means), color="0.4", linewidth=1, zorder=0)
    for (method, value), style in zip(sorted(refs.items()), ("--", ":")):
        ax.axhline(value, color="0.3", linestyle=style, linewidth=1, label=f"{method} (mean)")
    # claim 1's corner: ≥ 50 % of OFENet removed at ≥ 95 % of ofe's return
    ax.axvline(0.5 * rows[0]["ofenet_params_initial"], color="C3", linewidth=0.8, label="claim 1: 50 % removed")
    if "ofe" in refs:
        ax.axhline(0.95 * refs["ofe"], color="C3", linestyle="--", linewidth=0.8, label="claim 1: 95 % of ofe")
    ax.set_xscale("symlog", linthresh=100)
    ax.xaxis.set_major_locator(SymmetricalLogLocator(base=10, linthresh=100, subs=tuple(range(1, 10))))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"))
    ax.set_xlabel("OFENet parameters at the end (log scale, linear below 100)")
    ax.set_ylabel("final return (mean of the last 10 % of evaluations)")
    ax.set_title(f"{env}: the β front {cells}".strip())
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, out, plt)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=os.path.join("runs", "campaign"), help="campaign root of the runs")
    ap.add_argument("--env", default="HalfCheetah-v5", help="gymnasium id whose front is drawn")
    ap.add_argument("--default-cell", default="xinet",
                    help="the cell that stands for the default β (xinet-theta: the front of the θ-reading defaults)")
    ap.add_argument("--family", default="xinet-tilde",
                    help="the front's other cells are <family>-beta<B> (xinet with --default-cell xinet-theta: the θ front)")
    ap.add_argument("--out", default="", help="path without extension of the PNG and CSV (default <root>/<env>_beta_front)")
    args = ap.parse_args(argv)
    cells = find_runs(args.root).get(args.env, {})
    rows = front_rows(cells, args.default_cell, args.family)
    if not rows:
        script_error("beta_front", f"no finished {args.default_cell} or {args.family}-beta<B> run of {args.env} "
                     f"under {args.root}")
    out = args.out or os.path.join(args.root, f"{args.env}_beta_front")
    refs = references(cells)
    plot(args.env, rows, refs, out + ".png", f"({args.default_cell}, {args.family}-beta<B>)")
    atomic_write_text(out + ".csv", csv_text([{k: r[k] for k in FIELDS} for r in rows]))
    print(json.dumps({"env": args.env, "rows": rows, "references": refs, "monotone": monotone(rows)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
