"""Run a grid of training runs; a grid stopped part-way continues where it stopped when started again.

Each run is a directory <root>/<env>/<method>/seed<k>/ (--root, default runs/campaign under the current
directory). A run with summary.json is skipped; a run with a checkpoint is resumed (`--resume`); anything else
starts fresh. Runs go to worker processes, one BLAS thread each, so `--jobs 2` fills a 2-core laptop. A run
another process is writing (its run.lock names a live process, xiref/runlock.py) is skipped, so two launchers
can share a grid. `ofe-small` runs take their widths from the finished `xinet` run of the same env and seed (an
ofe-small variant from the xinet variant its VARIANTS entry names): they wait while it is being trained (here or
by another launcher) and are reported missing when no process is training it.

    python examples/experiments/campaign.py --envs Hopper-v5 --methods sac,ofe --seeds 0,1,2 --root runs/hopper

The committed runs of docs/RESULTS.md are examples/results/<env>/<method>/seed<k>/, made by this script with
--root examples/results. Besides the four methods, the grid accepts the variants in VARIANTS (a directory name
standing for a method plus fixed flags), e.g. `xinet-ofenet-only`, measured in docs/EXPERIMENTS.md.
Extra flags after `--` go to every `xiref train` call (e.g. `-- --eval-episodes 10`). With `--ray ADDRESS` each cell
is a Ray task instead, on this machine or a cluster, with --root on shared storage (campaign_ray.py, docs/CAMPAIGNS.md).
Expected runtime: Hopper-v5, float32, 100k steps: sac ≈ 20 min, ofe ≈ 45 min per run on one core.
"""
import argparse
import os
import subprocess
import sys
import time

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, REPO)       # xiref from this checkout, installed or not
from xiref.config import DTYPES, METHODS  # noqa: E402  the grid's methods; VARIANTS below add more directory names
from xiref.envs import UserError, check_env_id  # noqa: E402
from xiref.errors import script_error  # noqa: E402
from xiref.runlock import holder  # noqa: E402
from xiref.runstate import continue_flags  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import campaign_ray  # noqa: E402  (a sibling; imports Ray only when a grid runs on it)

RESULTS = os.path.join(REPO, "examples", "results")   # the committed runs (docs/RESULTS.md)
DEFAULT_ROOT = os.path.join("runs", "campaign")          # relative to the current directory
ROOT = DEFAULT_ROOT                                      # where runs go; --root sets it
# the critics' θ step every variant below that names no other was run at: the default until commit e792b3d
# (2026-11-22), when it became 0.0005 (docs/EXPERIMENTS.md, "The critics' θ step"); pinned so that a re-run
# reproduces the committed one
CRITIC_ETA_0002 = ["--eta-theta-critic", "0.002"]
# the XiNet defaults until 2026-12-05 (commit 2ffd3f6 and before): the score-function baseline `pair`, the plain
# θ-step (32) (k_θ = 0), and a β and η_θ per network; pinned in every variant measured under them, so that a
# re-run reproduces the committed one (docs/EXPERIMENTS.md, CHANGELOG.md)
# the expected-gate forward reading θ (Eq. 3), the default until 2026-12-06 (θ̃ since, Eq. 40); pinned in every variant
# run before, so that a re-run reproduces the committed one (docs/EXPERIMENTS.md E19)
THETA_READ = ["--expected-gates", "theta"]
# the price β = 10, the default from 2026-12-05 until 2026-12-06 (20 since, docs/EXPERIMENTS.md E20); pinned in every
# variant measured at it that sets no β of its own
BETA10 = ["--beta", "10"]
PAIR = ["--baseline", "pair", "--k-theta", "0", "--beta", "1", "--beta-actor", "0.1", "--beta-critic", "0.1", "--eta-theta-actor",
        "0.01", "--eta-theta-critic", "0.0005"] + THETA_READ
# directory name -> (xiref method, its fixed flags[, for an ofe-small variant: the xinet variant giving its widths])
VARIANTS = {
    # XiNet at the defaults until 2026-12-05, and its ofe-small
    "xinet-pair": ("xinet", PAIR),
    "ofe-small-pair": ("ofe-small", [], "xinet-pair"),
    # the critics' θ step at 0.002, the default before e792b3d (2026-11-22): `xinet` and its `ofe-small`
    "xinet-critic-eta0.002": ("xinet", PAIR + CRITIC_ETA_0002),
    "ofe-small-critic-eta0.002": ("ofe-small", [], "xinet-critic-eta0.002"),
    # every net gated, but the actor's and critics' θ never step within 1M steps: XiNet prunes OFENet alone
    "xinet-ofenet-only": ("xinet", PAIR + ["--theta-delay-sac", "1000000"] + CRITIC_ETA_0002),
    # OFENet's price cut tenfold: on HalfCheetah β_ofenet = 1 leaves 29 of 480 units and an aux loss 4× ofe's
    "xinet-ofe-beta0.1": ("xinet", PAIR + ["--beta-ofenet", "0.1"] + CRITIC_ETA_0002),
    # no OFENet price at all: does OFENet still collapse (then something other than the cost drives θ to 0)?
    "xinet-ofe-beta0": ("xinet", PAIR + ["--beta-ofenet", "0"] + CRITIC_ETA_0002),
    # OFENet's θ step cut fivefold: is absorption at θ = 0 noise-driven (η_θ) rather than price-driven (β)?
    "xinet-ofe-eta0.01": ("xinet", PAIR + ["--eta-theta-ofenet", "0.01"] + CRITIC_ETA_0002),
    # between the default 0.05 and 0.01: 0.01 kept ofe's return but removed only 39 % of OFENet by 100k steps
    "xinet-ofe-eta0.02": ("xinet", PAIR + ["--eta-theta-ofenet", "0.02"] + CRITIC_ETA_0002),
    # OFENet's sampling floor 0.001 → 0.01: at θ̃ = 1 − ε_ξ a unit's θ-gradient arrives in rare kicks of size
    # ≈ 1/ε_ξ, and the upward ones are lost at the wall θ = 1 (examples/experiments/theta_walk.py, docs/EXPERIMENTS.md)
    "xinet-ofe-eps0.01": ("xinet", PAIR + ["--eps-xi-ofenet", "0.01"] + CRITIC_ETA_0002),
    # floor 0.01 and a θ step 0.02 for OFENet: on HalfCheetah the floor alone kept 94.0 % of ofe's return with
    # 83.6 % removed, η_θ = 0.01 alone 102.6 % with 39.4 % — the two noise-quieting knobs together
    "xinet-ofe-eps0.01-eta0.02": ("xinet", PAIR + ["--eps-xi-ofenet", "0.01", "--eta-theta-ofenet", "0.02"]
                                  + CRITIC_ETA_0002),
    # HalfCheetah's claim-1 variant plus the critics' fourfold smaller θ step that raised Hopper's return on every
    # seed (603 ± 96 → 1150 ± 252): the two measured fixes together, for Hopper, where the critics' limbo costs.
    # Hopper, seeds 0–2 (2a52179): 1067, 653, 1017 = 912 ± 185, below the default's 1150 ± 252
    "xinet-ofe-eps0.01-eta0.02-critic-eta0.0005": ("xinet", PAIR + ["--eps-xi-ofenet", "0.01", "--eta-theta-ofenet", "0.02",
                                                           "--eta-theta-critic", "0.0005"]),
    # OFENet's θ step cut fivefold at the critics' η_θ of then (0.0005, pinned): on HalfCheetah η_θ = 0.01 kept 102.6 % of
    # ofe's return with 39 % removed; Hopper prunes far harder at equal settings (97.6 % removed with floor 0.01 and
    # η_θ 0.02), so here the slower step may remove ≥ 50 % and still keep the return (claim 1).
    # Hopper, seeds 0–2 (0248bbf): 699, 385, 540 = 541 ± 128 with 96.4 % removed — the collapse, stretched
    "xinet-ofe-eta0.01-critic-eta0.0005": ("xinet", PAIR + ["--eta-theta-ofenet", "0.01", "--eta-theta-critic", "0.0005"]),
    # both: the lowest OFENet pruning pressure of the grid
    "xinet-ofe-beta0.1-eta0.01": ("xinet", PAIR + ["--beta-ofenet", "0.1", "--eta-theta-ofenet", "0.01"] + CRITIC_ETA_0002),
    # a θ warm-up, at the defaults: OFENet's θ frozen 30k steps longer — on HalfCheetah its θ-steps
    # (from 5k) leave 14–26k of 125k parameters by 40k; delayed, by 100k they have run ≈ 65k steps instead of 95k.
    # Seed 0 (df091f8): HalfCheetah 6595 vs the default's 7376, Hopper 694 vs 793 — the collapse comes later
    "xinet-ofe-delay30000": ("xinet", PAIR + ["--theta-delay-ofenet", "30000"]),
    # the SAC nets' θ frozen for 30k steps after learning starts instead of 5k (Hopper's critics' limbo).
    # Hopper, seeds 0–2 (1a5dd6c): 1096, 499, 943 vs the default's 793, 1332, 1324; the critics' θ at 100k as
    # the default's (the limbo comes later)
    "xinet-sac-delay30000": ("xinet", PAIR + ["--theta-delay-sac", "30000"]),
    # the flip estimator (Eq. 33–34) with the plain projected step (32), no price anywhere, one η_θ = 0.05 for every
    # network: does an unbiased, quiet estimator alone stop the removal of useful units when nothing prices them?
    # HalfCheetah seed 0 (32c248a): 405 of 480 OFENet units kept, return 7536 — the evidence rule (37) is the rest
    "xinet-flip-beta0": ("xinet", ["--k-theta", "0", "--beta", "0", "--beta-actor", "none"] + THETA_READ),
    # the defaults of 2026-12-05 with no price anywhere: does OFENet keep its units when nothing prices them?
    "xinet-beta0": ("xinet", ["--beta", "0", "--beta-actor", "none"] + THETA_READ),
    # the β front at the defaults of 2026-12-05 (OFENet's and the critics' price; the actor keeps its own 0.1); β = 10
    # is `xinet-theta`
    "xinet-beta1": ("xinet", ["--beta", "1"] + THETA_READ),
    "xinet-beta3": ("xinet", ["--beta", "3"] + THETA_READ),
    "xinet-beta30": ("xinet", ["--beta", "30"] + THETA_READ),
    # OFENet's θ priced by its consumers too (METHOD §7, EXPERIMENTS.md E16), at a price matched to the default's;
    # OFENet's θ waits as the SAC nets' do: untrained consumers value no unit, and OFENet lost 8 % in 2 000 steps
    "xinet-ofe-consumers-beta50": ("xinet", ["--ofenet-value", "consumers", "--beta-ofenet", "50",
                                             "--theta-delay-ofenet", "5000"] + THETA_READ + BETA10),
    # the critics unpriced (their β 0; OFENet's 10, the actor's 0.1): at the defaults the critics' second layers end
    # with 160–175 of 256 units, while ofe-small's keep 256 — is it the critics' pruning that costs xinet's return?
    "xinet-critic-beta0": ("xinet", ["--beta-critic", "0"] + THETA_READ + BETA10),
    # the defaults until 2026-12-06, the expected-gate forward reading θ (Eq. 3): a critic fitted under gates sampled
    # at 1 − ε_ξ bootstraps at γ(1 − ε_ξ)^(−2) (0.9919, EXPERIMENTS.md E4, E19) instead of γ = 0.99; and its ofe-small
    "xinet-theta": ("xinet", THETA_READ + BETA10),
    "ofe-small-theta": ("ofe-small", [], "xinet-theta"),
    # the β front read with θ̃ (OFENet's and the critics' price; the actor keeps its own 0.1), the reading pinned so
    # that the cells keep their meaning if a default changes; β = 20 is `xinet`; β = 10, the default until the front
    # chose 20 (2026-12-06, EXPERIMENTS.md E20), is `xinet-tilde-beta10`
    "xinet-tilde-beta0": ("xinet", ["--beta", "0", "--beta-actor", "none", "--expected-gates", "tilde"]),  # the actor's 0 too
    **{f"xinet-tilde-beta{b}": ("xinet", ["--beta", b, "--expected-gates", "tilde"]) for b in ("1", "3", "10", "15", "30")},
    # the actor unpriced (its β 0; OFENet's and the critics' 20): at its default 0.1 the actor keeps every unit in the
    # committed quickstart, HalfCheetah and Hopper `xinet` runs, yet ends with 90–105 of 128, 477–496 and all 512 of
    # 512 units at θ inside (0, 1) (progress.csv, actor_theta_mid): it trains under a dropout that removes nothing
    "xinet-actor-beta0": ("xinet", ["--beta-actor", "0"]),
    # claim 2 against a xinet variant: an ungated OFENet at the widths that variant's run of the same seed ended with
    "ofe-small-eta0.01": ("ofe-small", [], "xinet-ofe-eta0.01"),
    "ofe-small-eps0.01": ("ofe-small", [], "xinet-ofe-eps0.01"),
    "ofe-small-eps0.01-eta0.02": ("ofe-small", [], "xinet-ofe-eps0.01-eta0.02"),
    "ofe-small-eps0.01-eta0.02-critic-eta0.0005": ("ofe-small", [], "xinet-ofe-eps0.01-eta0.02-critic-eta0.0005"),
    "ofe-small-eta0.01-critic-eta0.0005": ("ofe-small", [], "xinet-ofe-eta0.01-critic-eta0.0005"),
}

# an ofe-small cell (the method or a variant of it) → the xinet directory (method or variant) whose finished run of
# the same env and seed gives its widths
WIDTHS_FROM = {"ofe-small": "xinet", **{name: v[2] for name, v in VARIANTS.items() if v[0] == "ofe-small"}}


def run_dir(env, method, seed):
    return os.path.abspath(os.path.join(ROOT, env, method, f"seed{seed}"))


def train_args(env, method, seed, steps, dtype, extra):
    """The `xiref train` arguments of a cell, before the flag that continues its directory."""
    cli_method, fixed = VARIANTS.get(method, (method, []))[:2]
    args = ["--env", env, "--method", cli_method, "--seed", str(seed), "--steps", str(steps), "--dtype", dtype,
            "--out", run_dir(env, method, seed), "--quiet"] + fixed + list(extra)
    if method in WIDTHS_FROM:
        args += ["--widths-from", run_dir(env, WIDTHS_FROM[method], seed)]
    return args


def command(env, method, seed, steps, dtype, extra):
    """The command line of a cell, continuing its directory (xiref/runstate.py `continue_flags`)."""
    return ([sys.executable, "-m", "xiref", "train"] + train_args(env, method, seed, steps, dtype, extra)
            + continue_flags(run_dir(env, method, seed)))


def xinet_in_progress(cell):
    """True for an ofe-small cell whose xinet run another live process is training (worth waiting for)."""
    env, method, seed = cell
    return method in WIDTHS_FROM and holder(run_dir(env, WIDTHS_FROM[method], seed)) is not None


def main(argv=None):
    global ROOT
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--envs", default="Hopper-v5", help="comma-separated gymnasium ids")
    ap.add_argument("--methods", default="sac,ofe,xinet,ofe-small",
                    help="comma-separated methods or VARIANTS directory names (ofe-small cells wait for their xinet)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    ap.add_argument("--steps", type=int, default=100_000, help="environment steps per run")
    ap.add_argument("--dtype", default="float32", help="float32 or float64")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (one core each; OPENBLAS_NUM_THREADS=1)")
    ap.add_argument("--root", default=ROOT,
                    help="directory of the grid, <root>/<env>/<method>/seed<k>/, relative to the current directory "
                         "(the committed runs are examples/results)")
    ap.add_argument("--ray", metavar="ADDRESS",
                    help="run each cell as a Ray task: 'local' starts Ray here, an address joins a cluster; --root must "
                         "then be shared storage (docs/CAMPAIGNS.md; needs pip install -e \".[cluster]\")")
    ap.add_argument("--retries", type=int, default=2, help="with --ray: times a failed cell is retried from its checkpoint")
    ap.add_argument("extra", nargs="*", help="flags passed to every run (after --)")
    args = ap.parse_args(argv)
    ROOT = args.root
    envs, methods, seeds = parse_grid(args)
    todo = [(e, m, s) for e in envs for m in methods for s in seeds]
    todo = [t for t in todo if not os.path.exists(os.path.join(run_dir(*t), "summary.json"))]
    if args.ray is not None:
        return run_on_ray(todo, args)
    running, failed = {}, []
    env = campaign_ray.train_env(REPO)
    while todo or running:
        for key, proc in list(running.items()):
            if proc.poll() is not None:
                print(f"{time.strftime('%H:%M:%S')} finished {key} (exit {proc.returncode})", flush=True)
                if proc.returncode != 0:
                    failed.append(key)
                del running[key]
        ready = [t for t in todo if t[1] not in WIDTHS_FROM
                 or os.path.exists(os.path.join(run_dir(t[0], WIDTHS_FROM[t[1]], t[2]), "summary.json"))]
        while ready and len(running) < args.jobs:
            t = ready.pop(0)
            todo.remove(t)
            if holder(run_dir(*t)):                                  # another launcher is training it
                print(f"{time.strftime('%H:%M:%S')} skip {t}: being written by pid {holder(run_dir(*t))[0]}",
                      flush=True)
                continue
            os.makedirs(run_dir(*t), exist_ok=True)
            log = open(os.path.join(run_dir(*t), "stdout.log"), "a")
            cmd = command(*t, args.steps, args.dtype, args.extra)
            print(f"{time.strftime('%H:%M:%S')} start {t}: {' '.join(cmd[1:])}", flush=True)
            running[t] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        if not ready and todo and not running and not any(map(xinet_in_progress, todo)):
            fail(f"cannot start {todo}: their xinet runs are missing")
        time.sleep(5)
    if failed:
        fail(f"{len(failed)} run(s) failed: " + ", ".join(f"{run_dir(*t)}/stdout.log" for t in failed))


def run_on_ray(todo, args):
    """The grid as Ray tasks (campaign_ray.py): the same run directories and commands as the local runner."""
    try:
        import ray  # noqa: F401
    except ImportError:
        fail('--ray needs Ray, which is not installed: pip install -e ".[cluster]"')
    failed = campaign_ray.run_grid(
        todo, args_of=lambda c: train_args(*c, args.steps, args.dtype, args.extra), out_of=lambda c: run_dir(*c),
        source_of=lambda c: (c[0], WIDTHS_FROM[c[1]], c[2]) if c[1] in WIDTHS_FROM else None,
        address=args.ray, retries=args.retries, repo=REPO)
    if failed:
        fail(f"{len(failed)} run(s) failed: " + ", ".join(f"{run_dir(*t)}/stdout.log" for t in failed))


def fail(msg):
    """One line on stderr and exit status 2: a bad grid, or runs that failed."""
    script_error("campaign", msg)


def parse_grid(args):
    """(envs, methods, seeds) of the grid, checked before any directory is made: one line and exit status 2 on a
    name the grid does not know, a seed that is not a non-negative integer, or a non-positive count."""
    if args.jobs < 1 or args.steps < 1:
        fail("--jobs and --steps must be positive")
    if args.retries < 0:
        fail(f"--retries must be 0 or more, got {args.retries}")
    if args.dtype not in DTYPES:
        fail(f"--dtype must be float32 or float64, got {args.dtype!r}")
    # a name given twice would start the same run directory twice: keep the first
    envs, methods, seeds = (list(dict.fromkeys(x.split(","))) for x in (args.envs, args.methods, args.seeds))
    known = set(METHODS) | set(VARIANTS)
    unknown = [m for m in methods if m not in known]
    if unknown:
        fail(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)} and the VARIANTS of "
             "examples/experiments/campaign.py")
    if not all(s.isdigit() for s in seeds):
        fail(f"--seeds must be non-negative integers separated by commas, got {args.seeds!r}")
    for e in envs:
        try:
            check_env_id(e)
        except UserError as exc:
            fail(str(exc))
    return envs, methods, [int(s) for s in seeds]


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:              # the runs got the same Ctrl-C (or were cancelled) and keep their checkpoints
        print("campaign: interrupted; every run keeps its last checkpoint, start the same command to continue",
              file=sys.stderr)
        sys.exit(130)
