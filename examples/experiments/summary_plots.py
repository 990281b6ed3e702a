"""Figures of examples/experiments/summarize.py (matplotlib, Agg backend), apart from the numbers they draw.

Each function takes plain lists/arrays computed in summarize.py and writes one PNG atomically (temp file,
then rename), so an interrupted run never leaves a half-written figure.
"""
import os

import numpy as np

MARKERS = "o^sDv<>PX*"


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, out, plt):
    fig.tight_layout()
    tmp = out + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, out)


def plot_return_vs_params(env, points, out):
    """Final return vs total and vs OFENet parameters: a marker per seed, mean ± std cross per method.
    points: [(method, colour, returns, params, ofenet_params)], one value per seed in each list."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for k, (method, colour, y, params, ofenet_params) in enumerate(points):
        marker = MARKERS[k % len(MARKERS)]     # a marker as well as a colour per method
        for ax, x in ((axes[0], params), (axes[1], ofenet_params)):
            ax.scatter(x, y, color=colour, marker=marker, alpha=0.6, label=f"{method} (n={len(y)})")
            ax.errorbar(np.mean(x), np.mean(y), xerr=np.std(x), yerr=np.std(y), color=colour, capsize=5,
                        marker=marker, markersize=5, linewidth=1.5)
    # log axes: a pruned OFENet has a few hundred parameters, the full one ~10^5 (symlog keeps sac's 0 on the axis)
    axes[0].set_xscale("log")
    axes[1].set_xscale("symlog", linthresh=100)
    axes[0].set_xlabel("total parameters (actor + critics + OFENet; log scale)")
    axes[1].set_xlabel("OFENet parameters (log scale, linear below 100)")
    for ax in axes:
        ax.set_ylabel("final return (mean of last 10 % of evaluations)")
        ax.grid(alpha=0.3)
    if len(points) <= 6:
        for ax in axes:
            ax.legend(fontsize=7)
    else:                                      # many methods: one legend right of the panels, off the points
        fig.set_size_inches(15, 4.5)
        axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.suptitle(f"{env}: final return vs parameters (markers: seeds; crosses: mean ± std)", fontsize=10)
    _save(fig, out, plt)


def plot_alive_units(env, curves, n_runs, out):
    """Alive units per OFENet layer over time (mean ± std over the xinet seeds)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    blocks = list(dict.fromkeys(layer.rstrip("0123456789") for layer in curves))   # "s", "a": OFENet's two blocks
    for layer, (t, m, s) in curves.items():
        block = layer.rstrip("0123456789")
        colour = f"C{[k for k in curves if k.rstrip('0123456789') == block].index(layer) % 10}"
        ax.plot(t, m, color=colour, linestyle=("-", "--", ":", "-.")[blocks.index(block) % 4], label=layer)
        ax.fill_between(t, m - s, m + s, color=colour, alpha=0.12)
    ax.set_title(f"{env} xinet: alive units per OFENet layer (mean ± std over {n_runs} seed{'s' * (n_runs != 1)})")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("alive units")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    _save(fig, out, plt)
