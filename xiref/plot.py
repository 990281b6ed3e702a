"""Learning curves and pruning curves from run directories (matplotlib, apart from the maths)."""
import os
import re
from collections import defaultdict

import numpy as np

from .checkpoint import atomic_write_bytes
from .errors import UserError
from .readers import read_config, read_csv

PLOT_FIELDS = ("env", "method", "steps", "eval_every")     # what a run's config.json must hold to be plotted


def _load(run_dir):
    """(config.json as a dict, progress.csv rows) of a run, both checked (xiref/readers.py)."""
    rows = read_csv(os.path.join(run_dir, "progress.csv"))
    if not rows:
        raise UserError(f"{run_dir} has no progress.csv (is it a run directory?)")
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise UserError(f"{run_dir} has no config.json (is it a run directory?)")
    return read_config(path, required=PLOT_FIELDS), rows


def _series(rows, key):
    pts = [(int(r["step"]), float(r[key])) for r in rows if r.get(key, "") != ""]
    return np.array(pts).reshape(-1, 2)


def _mean_std(series_list):
    """Align runs on the steps common to all; mean ± std over runs."""
    common = sorted(set.intersection(*[set(s[:, 0].astype(int)) for s in series_list]))
    if not common:
        return None
    ys = np.array([[dict(zip(s[:, 0].astype(int), s[:, 1]))[t] for t in common] for s in series_list])
    return np.array(common), ys.mean(axis=0), ys.std(axis=0)


def group_label(run_dir, cfg):
    """The curve a run belongs to: in the campaign layout <env>/<name>/seed<k>/ the directory <name> (a method
    or a variant of one, examples/campaign.py VARIANTS), otherwise the run's method."""
    parts = os.path.normpath(os.path.abspath(run_dir)).split(os.sep)
    if re.fullmatch(r"seed\d+", parts[-1]) and len(parts) >= 3 and parts[-3] == cfg["env"]:
        return parts[-2]
    return cfg["method"]


def group_colours(labels, keep_order=False):
    """One matplotlib colour per curve label, the same in every figure drawn from the same labels (here and in
    examples/summary_plots.py). Labels are taken sorted, or in the given order with keep_order (so the first ones,
    e.g. the base methods, get the most distinct colours). Up to 10 labels take matplotlib's default cycle
    C0–C9; up to 20 the tab20 palette, its ten dark shades first and then their light pairs; beyond, they repeat."""
    labels = list(dict.fromkeys(labels)) if keep_order else sorted(set(labels))
    if len(labels) <= 10:
        return {label: f"C{i}" for i, label in enumerate(labels)}
    from matplotlib import colormaps
    from matplotlib.colors import to_hex
    shades = [2 * k for k in range(10)] + [2 * k + 1 for k in range(10)]
    return {label: to_hex(colormaps["tab20"](shades[i % 20])) for i, label in enumerate(labels)}


def plot_runs(run_dirs, out="", colours=None):
    """Eval return (mean ± std per method), parameter count, alive units per layer. Returns PNG paths.
    colours: optional {curve label (method or variant directory, group_label): colour}, for figures of one env
    that must share one assignment (examples/summarize.py); by default group_colours over the curves drawn."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = out or os.path.join(run_dirs[0], "curves.png")
    if os.path.isdir(out):
        raise UserError(f"--out {out} is a directory; give the PNG file to write")
    groups, gated_groups = defaultdict(list), set()
    for d in run_dirs:
        cfg, rows = _load(d)
        key = (cfg["env"], group_label(d, cfg))
        # eval_return repeats the latest evaluation on every log row: keep the rows an evaluation was made at
        for r in rows:
            if int(r["step"]) % cfg["eval_every"] and int(r["step"]) != cfg["steps"]:
                r["eval_return"] = ""
        groups[key].append(rows)
        if cfg.get("gated"):
            gated_groups.add(key)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    one_run = len(run_dirs) == 1                 # a single run's figure is titled as one run, not over seeds
    auto = group_colours(f"{env} {method}" for env, method in groups)
    for (env, method), runs in sorted(groups.items()):
        colour = colours[method] if colours else auto[f"{env} {method}"]
        label = f"{env} {method} (n={len(runs)})"
        for ax, key in ((axes[0], "eval_return"), (axes[1], "params")):
            ms = _mean_std([_series(r, key) for r in runs])
            if ms is None:
                continue
            t, m, s = ms
            ax.plot(t, m, label=label, color=colour)
            ax.fill_between(t, m - s, m + s, alpha=0.2, color=colour)
    # alive units per layer of the first gated run
    gated = [(k, runs[0]) for k, runs in sorted(groups.items()) if k in gated_groups]
    if gated:
        (env, label), rows = gated[0]
        for col in [c for c in rows[0] if c.startswith("alive:")]:
            s = _series(rows, col)
            axes[2].plot(s[:, 0], s[:, 1], label=col[6:])
        axes[2].set_title(f"alive units per layer ({env} {label}{'' if one_run else ', first run'})")
        axes[2].legend(fontsize=6, ncol=2)
    else:
        axes[2].set_title("alive units per layer (no xinet run given)")
    axes[0].set_title("evaluation return" + ("" if one_run else " (mean ± std over seeds)"))
    axes[1].set_title("parameter count (actor + critics + OFENet)")
    for ax in axes:
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if len(labels) <= 6:                       # few curves: a legend inside each panel
        axes[0].legend(fontsize=7)
        axes[1].legend(fontsize=7)
        fig.tight_layout()
    else:                                      # many: one legend under the panels, not over the curves
        rows = -(-len(labels) // 3)
        fig.set_size_inches(16, 4.5 + 0.18 * rows)
        fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7, frameon=False)
        fig.tight_layout(rect=(0, 0.18 * rows / (4.5 + 0.18 * rows) + 0.01, 1, 1))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    try:
        atomic_write_bytes(out, lambda f: fig.savefig(f, format="png", dpi=110))
    finally:
        plt.close(fig)
    return [out]
