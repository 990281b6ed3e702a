"""Learning curves and pruning curves from run directories (matplotlib, apart from the maths)."""
import json
import os
import re
from collections import defaultdict

import numpy as np

from .envs import UserError
from .train import read_csv


def _load(run_dir):
    rows = read_csv(os.path.join(run_dir, "progress.csv"))
    if not rows:
        raise UserError(f"{run_dir} has no progress.csv (is it a run directory?)")
    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"{run_dir}: unreadable config.json ({e.__class__.__name__})") from None
    return cfg, rows


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


def group_colours(labels):
    """One matplotlib colour per curve label, by sorted label: the same method gets the same colour in every
    figure drawn from the same set of labels (here and in examples/summary_plots.py)."""
    return {label: f"C{i % 10}" for i, label in enumerate(sorted(set(labels)))}


def plot_runs(run_dirs, out=""):
    """Eval return (mean ± std per method), parameter count, alive units per layer. Returns PNG paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups, gated_groups = defaultdict(list), set()
    for d in run_dirs:
        cfg, rows = _load(d)
        key = (cfg["env"], group_label(d, cfg))
        # eval_return repeats the latest evaluation on every log row: keep the rows an evaluation was made at
        for r in rows:
            if int(r["step"]) % int(cfg["eval_every"]) and int(r["step"]) != int(cfg["steps"]):
                r["eval_return"] = ""
        groups[key].append(rows)
        if cfg.get("gated"):
            gated_groups.add(key)
    out = out or os.path.join(run_dirs[0], "curves.png")
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    colours = group_colours(f"{env} {method}" for env, method in groups)
    for (env, method), runs in sorted(groups.items()):
        label = f"{env} {method} (n={len(runs)})"
        for ax, key in ((axes[0], "eval_return"), (axes[1], "params")):
            ms = _mean_std([_series(r, key) for r in runs])
            if ms is None:
                continue
            t, m, s = ms
            ax.plot(t, m, label=label, color=colours[f"{env} {method}"])
            ax.fill_between(t, m - s, m + s, alpha=0.2, color=colours[f"{env} {method}"])
    # alive units per layer of the first gated run
    gated = [(k, runs[0]) for k, runs in sorted(groups.items()) if k in gated_groups]
    if gated:
        (env, label), rows = gated[0]
        for col in [c for c in rows[0] if c.startswith("alive:")]:
            s = _series(rows, col)
            axes[2].plot(s[:, 0], s[:, 1], label=col[6:])
        axes[2].set_title(f"alive units per layer ({env} {label}, first run)")
        axes[2].legend(fontsize=6, ncol=2)
    else:
        axes[2].set_title("alive units per layer (no xinet run given)")
    axes[0].set_title("evaluation return (mean ± std over seeds)")
    axes[1].set_title("parameter count (actor + critics + OFENet)")
    for ax in axes:
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, out)
    return [out]
