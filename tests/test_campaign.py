"""examples/experiments/campaign.py: the command each grid cell runs (method, variant flags, resume / overwrite, ofe-small's
widths), checked without training anything."""
import json
import os
import subprocess
import sys
import types

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "experiments"))
import campaign  # noqa: E402


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign, "ROOT", str(tmp_path))
    return tmp_path


def flag(cmd, name):
    return cmd[cmd.index(name) + 1]


def test_plain_method_runs_itself_fresh(root):
    cmd = campaign.command("Hopper-v5", "ofe", 2, 1000, "float32", ["--eval-episodes", "3"])
    assert cmd[1:4] == ["-m", "xiref", "train"]
    assert flag(cmd, "--method") == "ofe" and flag(cmd, "--seed") == "2" and flag(cmd, "--steps") == "1000"
    assert flag(cmd, "--out") == os.path.join(str(root), "Hopper-v5", "ofe", "seed2")
    assert flag(cmd, "--eval-episodes") == "3"
    assert "--resume" not in cmd and "--overwrite" not in cmd and "--widths-from" not in cmd


def test_variant_is_its_method_plus_fixed_flags_in_its_own_directory(root):
    cmd = campaign.command("Hopper-v5", "xinet-ofenet-only", 0, 1000, "float32", [])
    method, fixed = campaign.VARIANTS["xinet-ofenet-only"]
    assert flag(cmd, "--method") == method == "xinet"
    assert flag(cmd, "--theta-delay-sac") == "1000000" and all(f in cmd for f in fixed)
    assert flag(cmd, "--out").endswith(os.path.join("Hopper-v5", "xinet-ofenet-only", "seed0"))


@pytest.mark.parametrize("variant", sorted(campaign.VARIANTS))
def test_every_variant_parses_with_xiref_train_into_its_method(root, variant):
    """A misspelt flag in VARIANTS would only surface hours into a campaign: parse each with the CLI's parser."""
    from xiref.cli import build_parser
    cmd = campaign.command("HalfCheetah-v5", variant, 0, 1000, "float32", [])
    args = build_parser().parse_args(cmd[cmd.index("train"):])
    method, fixed = campaign.VARIANTS[variant][:2]
    assert args.method == method and args.out.endswith(os.path.join(variant, "seed0"))
    for name, value in dict(zip(fixed[::2], fixed[1::2])).items():      # a later flag wins, as in argparse
        parsed = getattr(args, name[2:].replace("-", "_"))
        try:
            assert float(parsed) == float(value), (name, parsed, value)
        except (TypeError, ValueError):                             # "none" and words such as an estimator
            assert parsed == (None if value == "none" else value), (name, parsed, value)


def test_resume_after_a_checkpoint_overwrite_before_one(root):
    out = root / "Hopper-v5" / "xinet" / "seed1"
    out.mkdir(parents=True)
    (out / "config.json").write_text("{}")
    assert "--overwrite" in campaign.command("Hopper-v5", "xinet", 1, 10, "float32", [])
    (out / "checkpoint.npz").write_bytes(b"")
    cmd = campaign.command("Hopper-v5", "xinet", 1, 10, "float32", [])
    assert "--resume" in cmd and "--overwrite" not in cmd


def test_ofe_small_takes_widths_from_the_same_seeds_xinet_run(root):
    cmd = campaign.command("HalfCheetah-v5", "ofe-small", 2, 10, "float32", [])
    assert flag(cmd, "--method") == "ofe-small"
    assert flag(cmd, "--widths-from") == os.path.join(str(root), "HalfCheetah-v5", "xinet", "seed2")


def test_every_ofe_small_cell_takes_widths_from_an_existing_xinet_method_or_variant(root):
    for small, source in campaign.WIDTHS_FROM.items():
        assert campaign.VARIANTS.get(small, (small,))[0] == "ofe-small"
        assert campaign.VARIANTS.get(source, (source,))[0] == "xinet"
        cmd = campaign.command("HalfCheetah-v5", small, 1, 10, "float32", [])
        assert flag(cmd, "--widths-from") == os.path.join(str(root), "HalfCheetah-v5", source, "seed1")
        assert flag(cmd, "--out") == os.path.join(str(root), "HalfCheetah-v5", small, "seed1")


class FakeRun:
    """Stands in for a training subprocess: records its command, finishes at once."""
    started = []
    exit_code = 0

    def __init__(self, cmd, **kwargs):
        FakeRun.started.append(cmd)
        self.returncode = FakeRun.exit_code

    def poll(self):
        return self.returncode


@pytest.fixture
def fake_runs(monkeypatch):
    FakeRun.started = []
    # replaces campaign's view of subprocess only: the test itself still starts real processes
    monkeypatch.setattr(campaign, "subprocess", types.SimpleNamespace(Popen=FakeRun, STDOUT=subprocess.STDOUT))
    return FakeRun.started


def test_ofe_small_waits_for_an_xinet_run_another_launcher_is_training(root, fake_runs, monkeypatch):
    import socket
    xinet = root / "HalfCheetah-v5" / "xinet" / "seed0"
    xinet.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])   # the other launcher's run
    try:
        (xinet / "run.lock").write_text(f"{other.pid} {socket.gethostname()}")
        sleeps = []

        def sleep(seconds):                    # the other run finishes while the campaign waits
            sleeps.append(seconds)
            (xinet / "summary.json").write_text("{}")
        monkeypatch.setattr(campaign.time, "sleep", sleep)
        campaign.main(["--envs", "HalfCheetah-v5", "--methods", "ofe-small", "--seeds", "0", "--jobs", "1"])
    finally:
        other.kill()
        other.wait()
    assert sleeps and len(fake_runs) == 1
    assert flag(fake_runs[0], "--method") == "ofe-small" and flag(fake_runs[0], "--widths-from") == str(xinet)


def assert_refused(capsys, argv, message):
    """campaign.main(argv) ends with exit status 2 and one stderr line holding `message`."""
    with pytest.raises(SystemExit) as exc:
        campaign.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and err.startswith("campaign: error: ") and message in err, err


def test_ofe_small_without_an_xinet_run_or_its_trainer_is_an_error(root, fake_runs, monkeypatch, capsys):
    (root / "HalfCheetah-v5" / "xinet" / "seed0").mkdir(parents=True)      # started once, nobody training it
    monkeypatch.setattr(campaign.time, "sleep", lambda s: pytest.fail("waited for a run nobody is training"))
    assert_refused(capsys, ["--envs", "HalfCheetah-v5", "--methods", "ofe-small", "--seeds", "0", "--jobs", "1"],
                   "their xinet runs are missing")
    assert fake_runs == []


# the run-length and bookkeeping fields; every other field of a gated run is a knob of the method
NOT_KNOBS = {"out", "widths_from", "steps", "eval_every", "eval_episodes", "log_every", "checkpoint_every",
             "gated", "ofenet", "target_dim", "ofe_widths"}


def committed_gated_runs():
    """(env, cell, seed, config) of every committed gated run under examples/results/<env>/<cell>/seed<k>/ (the
    run directories examples/experiments/summarize.py finds)."""
    from summarize import find_runs
    out = []
    for env, cells in find_runs(campaign.RESULTS).items():
        for cell, run_dirs in cells.items():
            for d in run_dirs:
                path = os.path.join(d, "config.json")
                if os.path.exists(path):
                    with open(path) as f:
                        config = json.load(f)
                    if config.get("gated"):
                        out.append((env, cell, config["seed"], config))
    return out


def test_every_committed_gated_run_is_what_its_cell_runs_today():
    """A changed default must not silently relabel committed runs (commit e792b3d: the critics' η_θ 0.002 → 0.0005
    moved the old `xinet` runs to `xinet-critic-eta0.002` and pinned 0.002 in the older variants): the knobs in
    each run's config.json equal what campaign.py's command for its directory would set now."""
    from xiref.cli import build_parser
    from xiref.config import BEFORE_FIELDS, normalize_config
    runs = committed_gated_runs()
    assert any(cell == "xinet-pair" for _, cell, _, _ in runs)         # the check has runs to check
    for env, cell, seed, config in runs:
        assert cell == "xinet" or cell in campaign.VARIANTS, f"{env}/{cell}: not a campaign cell"
        cmd = campaign.command(env, cell, seed, 1000, config["dtype"], [])
        args = vars(build_parser().parse_args(cmd[cmd.index("train"):]))
        # a knob's −1 (unset, older files): None; a field written before it existed: the value the run had
        stored = {**BEFORE_FIELDS, **normalize_config(config, f"{env}/{cell}/seed{seed}")}
        for key, value in stored.items():
            if key in args and key not in NOT_KNOBS:
                assert args[key] == value, f"{env}/{cell}/seed{seed}: {key} {value} in config.json, {args[key]} now"


@pytest.mark.parametrize("argv, message", [
    (["--methods", "xinet,fo"], "unknown method"),
    (["--envs", "Hoper-v5"], "unknown environment id"),
    (["--seeds", "0,a"], "--seeds must be non-negative integers"),
    (["--seeds", "-1"], "--seeds must be non-negative integers"),
    (["--steps", "0"], "--jobs and --steps must be positive"),
    (["--dtype", "float16"], "--dtype must be float32 or float64"),
    (["--retries", "-1"], "--retries must be 0 or more"),
])
def test_a_bad_grid_is_one_line_and_makes_no_directory(root, fake_runs, argv, message, capsys):
    assert_refused(capsys, argv, message)
    assert fake_runs == [] and list(root.iterdir()) == []


def test_a_failed_run_makes_the_campaign_fail_and_names_its_log(root, fake_runs, monkeypatch, capsys):
    monkeypatch.setattr(FakeRun, "exit_code", 1)
    monkeypatch.setattr(campaign.time, "sleep", lambda s: None)
    assert_refused(capsys, ["--envs", "Hopper-v5", "--methods", "sac", "--seeds", "0", "--jobs", "1"],
                   "1 run(s) failed: " + os.path.join(str(root), "Hopper-v5", "sac", "seed0", "stdout.log"))
    assert len(fake_runs) == 1


def test_root_flag_sets_where_the_runs_go(root, fake_runs, monkeypatch, tmp_path_factory):
    monkeypatch.setattr(campaign.time, "sleep", lambda s: None)
    other = tmp_path_factory.mktemp("other")
    campaign.main(["--envs", "Hopper-v5", "--methods", "sac", "--seeds", "0", "--jobs", "1", "--root", str(other)])
    assert flag(fake_runs[0], "--out") == str(other / "Hopper-v5" / "sac" / "seed0")
    assert (other / "Hopper-v5" / "sac" / "seed0").is_dir() and list(root.iterdir()) == []


def test_default_root_is_a_fresh_runs_campaign_not_the_committed_results(fake_runs, monkeypatch, tmp_path):
    """Without --root a fresh clone's reproduce command trains: the committed runs (all finished) are not its grid."""
    monkeypatch.setattr(campaign, "ROOT", campaign.DEFAULT_ROOT)
    monkeypatch.setattr(campaign.time, "sleep", lambda s: None)
    monkeypatch.chdir(tmp_path)
    committed = os.path.join(campaign.RESULTS, "Hopper-v5", "sac", "seed0", "summary.json")
    assert os.path.exists(committed)                       # finished there, so --root examples/results would skip it
    campaign.main(["--envs", "Hopper-v5", "--methods", "sac", "--seeds", "0", "--jobs", "1"])
    assert flag(fake_runs[0], "--out") == str(tmp_path / "runs" / "campaign" / "Hopper-v5" / "sac" / "seed0")


def test_committed_root_skips_finished_runs(fake_runs, monkeypatch):
    """Negative control of the test above: pointed at the committed results, the same grid starts nothing."""
    monkeypatch.setattr(campaign, "ROOT", campaign.DEFAULT_ROOT)
    monkeypatch.setattr(campaign.time, "sleep", lambda s: None)
    campaign.main(["--envs", "Hopper-v5", "--methods", "sac", "--seeds", "0", "--jobs", "1", "--root", campaign.RESULTS])
    assert fake_runs == []


def test_a_cell_named_twice_runs_once(root, fake_runs, monkeypatch):
    monkeypatch.setattr(campaign.time, "sleep", lambda s: None)
    campaign.main(["--envs", "Hopper-v5,Hopper-v5", "--methods", "sac,sac", "--seeds", "0,0", "--jobs", "2"])
    assert len(fake_runs) == 1


def test_ray_without_ray_installed_is_one_line(root, fake_runs, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)                 # `import ray` raises ImportError
    assert_refused(capsys, ["--envs", "Hopper-v5", "--methods", "sac", "--seeds", "0", "--ray", "local"],
                   'pip install -e ".[cluster]"')
    assert fake_runs == []


def test_ctrl_c_ends_the_local_runner_in_one_line_and_keeps_the_checkpoint(tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) once a run has a checkpoint: exit 130, one line, no
    traceback; the run keeps its checkpoint. A terminal's foreground job has SIGINT at its default; the runner is
    started that way even when the tests themselves run in the background of a non-interactive shell, which
    starts them with SIGINT ignored (and Python then never raises KeyboardInterrupt)."""
    import signal
    import time

    def foreground_sigint():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    tiny = ["--hidden", "16,16", "--ofe-layers", "2", "--ofe-units", "4", "--start-steps", "150", "--batch", "32",
            "--eval-every", "200", "--eval-episodes", "1", "--log-every", "50", "--checkpoint-every", "100"]
    script = os.path.join(os.path.dirname(campaign.__file__), "campaign.py")
    proc = subprocess.Popen([sys.executable, script, "--envs", "InvertedPendulum-v5", "--methods", "xinet", "--seeds",
                             "0", "--steps", "100000", "--jobs", "1", "--root", str(tmp_path), "--"] + tiny,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=foreground_sigint)
    checkpoint = tmp_path / "InvertedPendulum-v5" / "xinet" / "seed0" / "checkpoint.npz"
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert checkpoint.exists()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["campaign: interrupted; every run keeps its last checkpoint, start the same "
                                        "command to continue"]
