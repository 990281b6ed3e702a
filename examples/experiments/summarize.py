"""Summarise finished runs under <root>/<env>/<method>/seed<k>/ into a Markdown table, claims and plots.

    python examples/experiments/summarize.py [--root examples/results]     # the committed runs by default

Writes <root>/summary.md: per env the table (mean ± std over seeds of final_return — the mean of the last
10 % of evaluations —, OFENet and total parameters, multiply-adds per forward, steps/s, OFENet's auxiliary
loss over the last 10 % of progress rows, the critics' θ step of gated runs from config.json) and the verdicts of
the two claims (README "Results"; the rules in examples/experiments/claims.py), computed from the summaries:

* claim 1: xinet removes ≥ 50 % of OFENet's parameters and keeps ≥ 95 % of the ofe return (means over seeds);
* claim 2: the xinet return is ≥ the ofe-small return (means over seeds);

the same claims for each XiNet variant of the campaign (claim 2 against the ofe-small runs made at its
widths), and the verdicts of `xinet` over all envs. Figures, each only when its data exists: <root>/<env>_curves.png
(`xiref plot`: learning curves mean ± std of sac, ofe, xinet, ofe-small, parameters, alive units of the first
xinet run), <root>/<env>_all_curves.png (the same with every variant, when the env has any),
<root>/<env>_return_vs_params.png (final return vs total and OFENet parameters, one marker per seed, mean ±
std cross per method) and <root>/<env>_alive_units.png (alive units per OFENet layer over time, mean over
the xinet seeds). Only finished runs (summary.json present) count; unfinished ones are listed with their
last step and whether a checkpoint here lets a campaign call resume them. Directories of <root> without
<method>/seed<k>/ runs (tuning/, quickstart/) are ignored.
"""
import argparse
import glob
import json
import os
import re

import numpy as np

from xiref.agent import resolve_knob
from xiref.errors import script_error
from xiref.metrics import final_mean
from xiref.plot import group_colours, plot_runs
from xiref.runstate import checkpoint_path
from xiref.train import read_csv

from claims import (CLAIM1, CLAIM2, claim1, claim2, claim_lines, fmt_ms, overall,  # noqa: E402  (siblings)
                    steps_text, values)
from summary_plots import plot_alive_units, plot_return_vs_params  # noqa: E402
from campaign import WIDTHS_FROM  # noqa: E402  (the ofe-small cells and the xinet cells giving their widths)

HERE = os.path.dirname(os.path.abspath(__file__))
METHOD_ORDER = ("sac", "ofe", "xinet", "ofe-small")


# ------------------------------------------------------------------ the numbers (figures: summary_plots.py)
ENV_ID = re.compile(r"^[A-Za-z0-9_]+-v\d+$")          # gymnasium ids; skips tuning/ and other folders
CLAIM_ENVS = ("Hopper-v5", "HalfCheetah-v5")           # the envs the claims are tested on


def find_runs(root):
    """{env: {method: [run dirs]}} for every <root>/<env>/<method>/seed<k>/ directory with a gymnasium id."""
    envs = {}
    for d in sorted(glob.glob(os.path.join(root, "*", "*", "seed*"))):
        if os.path.isdir(d) and ENV_ID.match(d.split(os.sep)[-3]):
            env, method = d.split(os.sep)[-3:-1]
            envs.setdefault(env, {}).setdefault(method, []).append(d)
    return envs


def load_finished(run_dirs, cell=None):
    """The summary.json of every finished run, each with its directory under "dir", its progress.csv rows
    under "progress" (read once), its final OFENet auxiliary loss under "aux_loss_final" and, for ofe-small,
    the name of the XiNet cell its widths came from under "widths_source": the one campaign.WIDTHS_FROM names for
    `cell` (runs moved to another cell when a default changed keep the path they were made from), else the
    directory of config.json's widths_from; the price β it ran at (config.json) under "beta"."""
    out = []
    for d in run_dirs:
        path = os.path.join(d, "summary.json")
        if os.path.exists(path):
            with open(path) as f:
                summary = json.load(f)
            rows = read_csv(os.path.join(d, "progress.csv"))
            try:
                with open(os.path.join(d, "config.json")) as f:
                    config = json.load(f)
            except (OSError, ValueError):
                config = {}
            widths_from = config.get("widths_from") or ""
            source = (WIDTHS_FROM.get(cell) or os.path.basename(os.path.dirname(os.path.normpath(widths_from)))
                      if widths_from else None)
            out.append(dict(summary, dir=d, progress=rows, aux_loss_final=final_aux_loss(rows),
                            widths_source=source, eta_theta_critic=critics_eta_theta(config),
                            beta=config.get("beta")))
    return out


def critics_eta_theta(config):
    """The critics' θ step a run used (config.json, resolved as the agent resolves it), None for an ungated run:
    the knob whose default changed in commit e792b3d (0.002 → 0.0005), so every table row says which one it ran."""
    return resolve_knob(config.get, "critic", "eta_theta") if config.get("gated") else None


def final_aux_loss(rows):
    """Mean OFENet auxiliary loss (8) over the last 10 % of the progress rows that log it — final_return's
    rule, xiref.metrics.final_mean — or None: how well the (pruned) OFENet still predicts the next state."""
    return final_mean([float(r["aux_loss"]) for r in rows if r.get("aux_loss", "") != ""])


def last_step(run_dir):
    """Last logged step of a run (0 without progress.csv)."""
    rows = read_csv(os.path.join(run_dir, "progress.csv"))
    return int(rows[-1]["step"]) if rows else 0


def method_order(methods):
    """sac, ofe, xinet, ofe-small first, any other method after them alphabetically."""
    return sorted(methods, key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), m))


def table_lines(finished):
    """Markdown table, one row per method of {method: [summaries]} (methods without finished runs left out)."""
    lines = ["| method | seeds | steps | critics' η_θ | final return | OFENet params | total params "
             "| multiply-adds / forward | steps/s | OFENet aux loss | commits |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for method in method_order(finished):
        s = finished[method]
        if not s:
            continue
        commits = sorted({x.get("xiref_commit") or "?" for x in s})
        etas = sorted({x["eta_theta_critic"] for x in s if x.get("eta_theta_critic") is not None})
        eta_text = "/".join(f"{e:g}" for e in etas) or "–"
        lines.append(f"| {method} | {len(s)} | {steps_text(s)} | {eta_text} | {fmt_ms(values(s, 'final_return'))} | "
                     f"{fmt_ms(values(s, 'ofenet_params'))} | {fmt_ms(values(s, 'params'))} | "
                     f"{fmt_ms(values(s, 'macs'))} | {fmt_ms(values(s, 'steps_per_second'), '{:.1f}')} | "
                     f"{fmt_ms(values(s, 'aux_loss_final'), '{:.3f}')} | {', '.join(commits)} |")
    return lines


def alive_curves(progress_runs, prefix="alive:ofenet/"):
    """{layer: (steps, mean, std)} over runs (lists of progress.csv rows), on the steps common to all runs."""
    if not progress_runs or not progress_runs[0]:
        return {}
    layers = [c[len(prefix):] for c in progress_runs[0][0] if c.startswith(prefix)]
    out = {}
    for layer in layers:
        per_run = [{int(r["step"]): float(r[prefix + layer]) for r in rows if r.get(prefix + layer, "") != ""}
                   for rows in progress_runs]
        common = sorted(set.intersection(*[set(p) for p in per_run]))
        if common:
            y = np.array([[p[t] for t in common] for p in per_run])
            out[layer] = (np.array(common), y.mean(axis=0), y.std(axis=0))
    return out


def method_colours(finished):
    """{method or variant directory: colour} for every figure of one env: sac, ofe, xinet, ofe-small first, so
    the four methods of the claims get the most distinct colours (xiref.plot.group_colours)."""
    return group_colours((m for m in method_order(finished) if finished[m]), keep_order=True)


def return_params_points(finished):
    """[(method, colour, final returns, total params, OFENet params)] per method with a final return; colours
    as the learning-curve figures' (method_colours)."""
    colours = method_colours(finished)
    out = []
    for method in method_order(finished):
        runs = [s for s in finished[method] if s.get("final_return") is not None]
        if runs:
            out.append((method, colours[method], values(runs, "final_return"), values(runs, "params"),
                        values(runs, "ofenet_params")))
    return out


def variant_claim_lines(finished):
    """Both claims for every XiNet variant (a directory other than `xinet` whose runs are all `--method xinet`,
    examples/experiments/campaign.py VARIANTS): claim 1 against `ofe`, claim 2 against each ofe-small directory whose runs
    all took their widths from that variant. [] when there is none."""
    lines = []
    for name in method_order(finished):
        runs = finished[name]
        if name == "xinet" or not runs or any(r.get("method") != "xinet" for r in runs):
            continue
        lines += claim_lines(1, f"`{name}` in place of `xinet`", claim1(finished, xinet=name))
        for small in method_order(finished):
            if finished[small] and all(r.get("widths_source") == name for r in finished[small]):
                lines += claim_lines(2, f"`{name}` vs `{small}`", claim2(finished, xinet=name, small=small))
    return lines


# ------------------------------------------------------------------ the report
def unfinished_state(run_dir):
    """'step N' and whether a campaign call would resume it: checkpoints are not committed (.gitignore), so a
    run left unfinished in another checkout restarts from step 0."""
    has_ckpt = os.path.exists(checkpoint_path(run_dir))
    return f"step {last_step(run_dir)}, " + ("resumable" if has_ckpt else "no checkpoint here: restarts from 0")


def env_section(root, env, methods):
    """Markdown lines of one env (table, unfinished runs, claims, figures); draws its figures. Returns
    (lines, claim 1, claim 2)."""
    finished = {m: load_finished(dirs, m) for m, dirs in methods.items()}
    unfinished = [d for m in method_order(methods) for d in methods[m]
                  if not os.path.exists(os.path.join(d, "summary.json"))]
    lines = [f"## {env}", ""] + table_lines(finished)
    if unfinished:
        lines += ["", "Unfinished: " + ", ".join(f"{os.path.relpath(d, root)} ({unfinished_state(d)})"
                                                 for d in unfinished)]
    c1, c2 = claim1(finished), claim2(finished)
    lines += ["", "### Claims", ""] + claim_lines(1, CLAIM1, c1) + claim_lines(2, CLAIM2, c2)
    variants = variant_claim_lines(finished)
    if variants:
        lines += ["", "### Claims for the XiNet variants (not counted in the verdicts over envs)", ""] + variants
    figures = []
    # the four methods of the claims; when the env also has variants, every directory in a second figure
    colours = method_colours(finished)
    base = [s["dir"] for m in method_order(finished) if m in METHOD_ORDER for s in finished[m]]
    if base:
        plot_runs(base, os.path.join(root, f"{env}_curves.png"), colours)
        figures.append((f"{env}_curves.png", f"{env}: learning curves"))
    if any(finished[m] for m in finished if m not in METHOD_ORDER):
        plot_runs([s["dir"] for m in method_order(finished) for s in finished[m]],
                  os.path.join(root, f"{env}_all_curves.png"), colours)
        figures.append((f"{env}_all_curves.png", f"{env}: learning curves of every method and variant"))
    points = return_params_points(finished)
    if points:
        plot_return_vs_params(env, points, os.path.join(root, f"{env}_return_vs_params.png"))
        figures.append((f"{env}_return_vs_params.png", f"{env}: final return vs parameters"))
    xi = [s["progress"] for s in finished.get("xinet", [])]
    curves = alive_curves([r for r in xi if r])
    if curves:
        plot_alive_units(env, curves, len([r for r in xi if r]), os.path.join(root, f"{env}_alive_units.png"))
        figures.append((f"{env}_alive_units.png", f"{env}: alive OFENet units"))
    for png, alt in figures:
        lines += ["", f"![{alt}]({png})"]
    return lines + [""], c1, c2


def summarize(root, claim_envs=CLAIM_ENVS):
    """summary.md text for the runs under root; writes the figures next to it. The overall verdicts count
    the envs in claim_envs (a missing one is "not yet measured"); every env still gets its own lines."""
    lines = ["# Results", "", "Generated by `python examples/experiments/summarize.py`; final return = mean of the last 10 % "
             "of evaluations (deterministic policy, 5 episodes each); ± is the std over seeds; only finished "
             "runs (summary.json present) count.", ""]
    body, c1s, c2s = [], {}, {}
    runs = find_runs(root)
    for env, methods in sorted(runs.items()):
        section, c1, c2 = env_section(root, env, methods)
        body += section
        if env in claim_envs:
            c1s[env], c2s[env] = c1, c2
    for env in claim_envs:
        if env not in runs:
            c1s[env] = c2s[env] = {"verdict": "not yet measured (no runs)"}
    lines += [f"## Claims over {', '.join(claim_envs)}", "",
              f"- **Claim 1** ({CLAIM1}, on each env): **{overall(c1s)}**",
              f"- **Claim 2** ({CLAIM2}, on each env): **{overall(c2s)}**", ""]
    return "\n".join(lines + body)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.normpath(os.path.join(HERE, "..", "results")),
                    help="directory of <env>/<method>/seed<k>/ runs (a campaign --root; default: the committed runs)")
    ap.add_argument("--claim-envs", default=",".join(CLAIM_ENVS), help="envs the overall claim verdicts count")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.root):
        script_error("summarize", f"no directory {args.root}")
    text = summarize(args.root, tuple(e for e in args.claim_envs.split(",") if e))
    out = os.path.join(args.root, "summary.md")
    with open(out + ".tmp", "w") as f:
        f.write(text)
    os.replace(out + ".tmp", out)
    print(text)


if __name__ == "__main__":
    main()
