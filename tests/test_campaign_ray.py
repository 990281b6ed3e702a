"""examples/experiments/campaign_ray.py on a local Ray instance: a 2-cell grid of tiny runs gives the same progress.csv
as the local runner, and a task killed mid-run (its training process, or the Ray worker running it) is retried
from its checkpoint and ends the same as the uninterrupted run. Skipped where Ray is not installed
(pip install -e ".[cluster]")."""
import os
import signal
import sys
import threading
import time

import pytest

ray = pytest.importorskip("ray")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "experiments"))
import campaign  # noqa: E402
from xiref.runlock import proc_stat  # noqa: E402

# a tiny run: learning from step 150, a checkpoint every 100 steps, 800 steps in about 3 s
TINY = ["--hidden", "16,16", "--ofe-layers", "2", "--ofe-units", "4", "--start-steps", "150", "--batch", "32",
        "--eval-every", "200", "--eval-episodes", "1", "--log-every", "50", "--checkpoint-every", "100",
        "--ofe-pretrain-steps", "20", "--theta-delay-sac", "0"]
ENV, STEPS = "InvertedPendulum-v5", "800"


def grid(root, methods, *flags):
    return (["--envs", ENV, "--methods", methods, "--seeds", "0", "--steps", STEPS, "--root", str(root)]
            + list(flags) + ["--"] + TINY)


def progress(root, method):
    with open(os.path.join(root, ENV, method, "seed0", "progress.csv"), "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_runs(tmp_path_factory):
    """The 2-cell grid run by the local runner (one process per cell)."""
    root = tmp_path_factory.mktemp("local")
    campaign.main(grid(root, "sac,xinet", "--jobs", "2"))
    return root


def test_a_grid_on_ray_runs_what_the_local_runner_runs(ray_local, local_runs, tmp_path, capsys):
    campaign.main(grid(tmp_path, "sac,xinet", "--ray", "local"))
    out = capsys.readouterr().out
    for method in ("sac", "xinet"):
        assert f"finished ('{ENV}', '{method}', 0)" in out
        assert progress(tmp_path, method) == progress(local_runs, method)
    assert progress(tmp_path, "sac") != progress(tmp_path, "xinet")        # the comparison can tell runs apart


def pid_of_run(run):
    """(pid of the training process from its run.lock, pid of its parent: the Ray worker)."""
    with open(os.path.join(run, "run.lock")) as f:
        pid = int(f.read().split()[0])
    return pid, int(proc_stat(pid)[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("victim", ["the run", "the task's worker"])
def test_a_task_killed_mid_run_is_retried_from_its_checkpoint(ray_local, local_runs, tmp_path, capsys, victim):
    run = os.path.join(tmp_path, ENV, "xinet", "seed0")
    driver = threading.Thread(target=campaign.main, args=(grid(tmp_path, "xinet", "--ray", "local", "--retries", "1"),))
    driver.start()
    killed = None
    deadline = time.time() + 600                  # generous: Ray runs its workers at niceness 15
    while killed is None and time.time() < deadline and driver.is_alive():
        # learning has started and a checkpoint is on disk: kill between checkpoints
        if os.path.exists(os.path.join(run, "checkpoint.npz")) and os.path.exists(os.path.join(run, "progress.csv")):
            with open(os.path.join(run, "progress.csv")) as f:
                rows = f.read().count("\n")
            if rows > 5:
                try:
                    pid, worker = pid_of_run(run)
                    killed = pid if victim == "the run" else worker
                    os.kill(killed, signal.SIGKILL)
                except (OSError, ValueError, IndexError, TypeError):   # between two attempts: look again
                    killed = None
        time.sleep(0.02)
    driver.join(timeout=900)
    assert killed is not None, "the run ended before it could be killed"
    assert not driver.is_alive()
    assert f"finished ('{ENV}', 'xinet', 0)" in capsys.readouterr().out
    with open(os.path.join(run, "stdout.log")) as f:
        assert f.read().count('"eval_return"') == 1                   # one run finished: the retry
    assert progress(tmp_path, "xinet") == progress(local_runs, "xinet")


def test_a_refused_run_is_not_retried_and_fails_the_grid(ray_local, tmp_path, capsys):
    """Bad input that only `xiref train` sees (fewer random steps than a batch) exits 2: reported once, not retried."""
    argv = ["--envs", ENV, "--methods", "sac", "--seeds", "0", "--steps", STEPS, "--root", str(tmp_path), "--ray",
            "local", "--retries", "3", "--", "--start-steps", "10"]
    with pytest.raises(SystemExit) as exc:
        campaign.main(argv)
    captured = capsys.readouterr()
    assert exc.value.code == 2 and "1 run(s) failed" in captured.err
    assert captured.out.count(f"refused ('{ENV}', 'sac', 0) (exit 2)") == 1
    with open(os.path.join(tmp_path, ENV, "sac", "seed0", "stdout.log")) as f:
        assert f.read().count("xiref: error: --start-steps 10 must be >= --batch") == 1     # one attempt
