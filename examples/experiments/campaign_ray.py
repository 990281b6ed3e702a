"""A campaign grid on Ray (`campaign.py --ray ADDRESS`): each cell one Ray task of one CPU, in the same run directories.

Where the runs go (a Choice, docs/CAMPAIGNS.md): every cell trains straight into <root>/<env>/<method>/seed<k>/, so
--root must be one directory that every node sees at the same path (NFS or any shared filesystem). A run writes
its checkpoint there every --checkpoint-every steps; when a node is lost, its runs' last checkpoints stay on the
shared storage and the retry, on whichever node Ray picks, resumes from them. The alternative, a task that sends
its run directory back as a tarball when it ends, keeps nothing of a task that dies: its retry would start again
from step 0, an hour or more of a 100k-step run lost per failure.

A task runs `xiref train` with the flag that continues its directory (`--resume` from a checkpoint), so a retry
and a resubmitted grid both pick up where the run stopped. The training process dies with the task's worker
(Linux: PR_SET_PDEATHSIG), so a killed task never leaves a run behind that still writes; a run whose lock
(xiref/runlock.py) names a node Ray reports dead is stale and taken over. A task that fails is retried from
its checkpoint up to --retries times; a run refused as bad input (exit status 2) is not retried.
"""
import os
import signal
import subprocess
import sys
import time

# exit status of `xiref train` for bad input (a wrong flag, a run another live process is writing): retrying
# cannot help
REFUSED = 2


def train_env(repo=None):
    """The environment of one `xiref train` process of a campaign: one BLAS thread, and the checkout `repo` (if
    given) first on PYTHONPATH. Both runners use it (campaign.py locally, run_cell on Ray)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if repo is not None:
        env["PYTHONPATH"] = os.pathsep.join([repo] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return env


class CellFailed(RuntimeError):
    """A cell's `xiref train` ended with a non-zero exit status other than REFUSED: Ray retries the task."""


def _die_with_parent():
    """In the child before exec: SIGKILL when the task's worker process dies (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)      # PR_SET_PDEATHSIG = 1


def wait_for_a_dying_writer(out, seconds=30.0):
    """Wait up to `seconds` while a process of this host holds out/run.lock: the training process of a killed
    attempt dies with its worker, but not in the same instant. A holder still alive after that is another
    launcher's run, and `xiref train` refuses the directory (exit 2)."""
    import socket
    from xiref.runlock import holder
    deadline = time.time() + seconds
    while time.time() < deadline:
        held = holder(out)
        if held is None or held[1] not in ("", socket.gethostname()):
            return
        time.sleep(0.2)


def dead_ray_hosts():
    """Host names of the nodes Ray reports dead and not also alive (a restarted node is alive again)."""
    import ray
    nodes = ray.nodes()
    alive = {n["NodeManagerHostname"] for n in nodes if n["Alive"]}
    return {n["NodeManagerHostname"] for n in nodes if not n["Alive"]} - alive


def run_cell(args, out, repo):
    """Ray task: `xiref train <args>` into run directory `out`, continued from its checkpoint; returns
    (out, exit status 0 or REFUSED). The checkout `repo` goes first on PYTHONPATH where this node has it."""
    from xiref.runlock import release_lock_of_hosts
    from xiref.runstate import continue_flags
    os.makedirs(out, exist_ok=True)
    release_lock_of_hosts(out, dead_ray_hosts())
    wait_for_a_dying_writer(out)
    cmd = [sys.executable, "-m", "xiref", "train"] + list(args) + continue_flags(out)
    env = train_env(repo if os.path.isdir(os.path.join(repo, "xiref")) else None)
    with open(os.path.join(out, "stdout.log"), "a") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent)
        try:
            code = proc.wait()
        except BaseException:               # ray.cancel: the run stops as on Ctrl-C, keeping its last checkpoint
            proc.send_signal(signal.SIGINT)
            proc.wait()
            raise
    if code not in (0, REFUSED):
        raise CellFailed(f"{out}: xiref train exited with status {code} (log: {out}/stdout.log)")
    return out, code


def run_grid(cells, args_of, out_of, source_of, address, retries, repo):
    """Run `cells` (keys) as Ray tasks; a cell with a source (ofe-small's xinet cell) starts once the source's
    directory holds summary.json. Prints one line per cell as it ends; returns the cells that failed."""
    import ray
    from ray.exceptions import RayError
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=None if address == "local" else address, include_dashboard=False, log_to_driver=False)
    # the task travels by value: a worker node needs xiref installed, not this script on its path
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    task = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=[CellFailed])(run_cell)
    waiting, running, failed = list(cells), {}, []

    def stamp(msg):
        print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)
    try:
        while waiting or running:
            for cell in [c for c in waiting if source_of(c) is None
                         or os.path.exists(os.path.join(out_of(source_of(c)), "summary.json"))]:
                waiting.remove(cell)
                running[task.remote(args_of(cell), out_of(cell), repo)] = cell
                stamp(f"submitted {cell}")
            if not running:                 # what is left waits for a source that is neither done nor in the grid
                stamp(f"cannot start {waiting}: their xinet runs are missing")
                return failed + waiting
            done, _ = ray.wait(list(running), num_returns=1)
            cell = running.pop(done[0])
            try:
                _, code = ray.get(done[0])
                stamp(f"finished {cell}" if code == 0 else f"refused {cell} (exit {code}): {out_of(cell)}/stdout.log")
                ok = code == 0
            except RayError as exc:
                last = [line for line in str(exc).splitlines() if line.strip()][-1:] or [type(exc).__name__]
                stamp(f"failed {cell} (retried up to {retries} times): {last[0]}")
                ok = False
            if not ok:                      # and its ofe-small cells can never start
                failed += [cell] + [c for c in waiting if source_of(c) == cell]
                waiting = [c for c in waiting if source_of(c) != cell]
    except KeyboardInterrupt:
        stamp(f"interrupted: cancelling {len(running)} task(s); each run keeps its last checkpoint")
        for ref in running:
            ray.cancel(ref)
        if running:
            ray.wait(list(running), num_returns=len(running), timeout=60)
        raise
    finally:
        if started_here:
            ray.shutdown()
    return failed
