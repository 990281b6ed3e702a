"""Training runs end to end (xiref/train.py, cli.py, checkpoint.py, runstate.py, envs.py; docs/METHOD.md §8, §9).

* determinism: the same seed gives a byte-identical progress.csv and identical final checkpoint arrays for
  sac, ofe and xinet; another seed gives another progress;
* kill and resume: a run killed between checkpoints (and one stopped early with a smaller --steps, then
  extended) and resumed ends byte-identical to the uninterrupted run — for xinet with pruning before and
  after the checkpoint, for sac, and on Hopper with the checkpoint taken in the middle of an episode;
* the CLI: every user error exits 2 with one `xiref: error: …` line and no traceback; corrupt and
  mismatched checkpoints; --widths-from; the final stdout line is the JSON summary;
* atomicity: a stale checkpoint.npz.tmp and a write killed half-way leave the previous checkpoint usable.

All runs use a tiny configuration (16×16 actor/critics, OFENet 2×4, 600 steps) so the file stays well
under 90 s.
"""
import csv
import functools
import io
import json
import shutil

import numpy as np
import pytest

from xiref import checkpoint as ck
from xiref.agent import SHARED_KNOBS
from xiref.buffer import ReplayBuffer
from xiref.cli import main
from xiref.envs import UserError
from xiref.train import TrainConfig, train

# ------------------------------------------------------------------ the tiny configuration
# Learning starts at step 300; evaluation, progress and checkpoints every 200/100/200 steps, so step 400
# is a multiple of all three periods.
TINY = dict(env="InvertedPendulum-v5", steps=600, start_steps=300, ofe_pretrain_steps=20, eval_every=200,
            eval_episodes=1, log_every=100, checkpoint_every=200, hidden=(16, 16), ofe_layers=2, ofe_units=4,
            batch=32, theta_delay_sac=0)

VARIANTS = {
    "sac": dict(method="sac"),
    "ofe": dict(method="ofe"),
    # β = 5, η_θ = 0.2: units are pruned between steps 300 and 400 and again between 400 and 600
    "xinet": dict(method="xinet", beta=5.0, eta_theta=0.2, **SHARED_KNOBS),
    # Hopper's random-phase episodes are short; at step 400 an episode is under way
    "hopper": dict(env="Hopper-v5", method="xinet"),
}

# A run that never learns (steps < start_steps): enough for a checkpoint, config.json and summary.json.
QUICK = dict(steps=50, checkpoint_every=50, eval_every=50, log_every=50)


def tiny_config(out, **overrides):
    """TrainConfig of the tiny run in directory `out`, with overrides."""
    return TrainConfig(**{**TINY, "out": str(out), **overrides})


def cli_args(out, *flags, **overrides):
    """`train` argv for the same tiny configuration."""
    args = ["train"]
    for k, v in {**TINY, **overrides}.items():
        text = ",".join(map(str, v)) if isinstance(v, tuple) else str(int(v) if isinstance(v, bool) else v)
        args += ["--" + k.replace("_", "-"), text]
    return args + ["--out", str(out), *flags]


def quiet(*_):
    pass


class Killed(Exception):
    """Stands for SIGKILL: raised from inside train() and never caught by it."""


def kill_at_log(step):
    """echo that kills the run when it logs `step` (after progress.csv is written, before that step's
    checkpoint)."""
    def echo(line):
        if line.startswith(f"step {step}/"):
            raise Killed(step)
    return echo


def resume(cfg):
    return train(cfg, resume=True, echo=quiet)


# ------------------------------------------------------------------ comparing runs
def load(run_dir):
    return ck.load(str(run_dir / "checkpoint.npz"))


def n_params(arrays):
    return sum(a.size for k, a in arrays.items() if k.startswith("agent|params|"))


def assert_same_run(a, b):
    """progress.csv bytes equal; every checkpoint array equal (dtype, shape, bytes); headers equal but for
    the run directory; summaries equal but for wall-clock fields."""
    assert (a / "progress.csv").read_bytes() == (b / "progress.csv").read_bytes()
    ha, fa = load(a)
    hb, fb = load(b)
    assert sorted(fa) == sorted(fb)
    for k in fa:
        assert (fa[k].dtype, fa[k].shape) == (fb[k].dtype, fb[k].shape), k
        assert fa[k].tobytes() == fb[k].tobytes(), k
    for h in (ha, hb):
        h["config"].pop("out")
    assert ha == hb
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    for s in (sa, sb):
        s.pop("seconds"), s.pop("steps_per_second")
    assert sa == sb


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """reference(variant) -> directory of the uninterrupted tiny run (made once per module)."""
    @functools.cache
    def get(variant):
        out = tmp_path_factory.mktemp("ref-" + variant)
        summary = train(tiny_config(out, **VARIANTS[variant]), echo=quiet)
        assert summary["steps"] == TINY["steps"]
        return out
    return get


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """quick(method) -> directory of a finished QUICK run (no learning)."""
    @functools.cache
    def get(method):
        out = tmp_path_factory.mktemp("quick-" + method)
        train(tiny_config(out, method=method, **QUICK), echo=quiet)
        return out
    return get


def copy_run(src, dst):
    shutil.copytree(src, dst)
    return dst


# ------------------------------------------------------------------ 1. determinism
@pytest.mark.parametrize("variant", ["sac", "ofe", "xinet"])
def test_same_seed_is_bit_identical(variant, reference, tmp_path):
    a, b = reference(variant), tmp_path / "b"
    train(tiny_config(b, **VARIANTS[variant]), echo=quiet)
    assert_same_run(a, b)
    rows = list(csv.DictReader(io.StringIO((a / "progress.csv").read_text())))
    assert [r["step"] for r in rows] == [str(s) for s in range(100, 601, 100)]
    assert rows[-1]["critic1_loss"] != "" and rows[-1]["eval_return"] != ""      # it did learn and evaluate


def test_different_seed_differs(reference, tmp_path):
    a, b = reference("sac"), tmp_path / "b"
    train(tiny_config(b, seed=1, **VARIANTS["sac"]), echo=quiet)
    assert (a / "progress.csv").read_bytes() != (b / "progress.csv").read_bytes()
    assert load(a)[1]["agent|params|actor/h1|W"].tobytes() != load(b)[1]["agent|params|actor/h1|W"].tobytes()


# ------------------------------------------------------------------ 2. kill and resume
@pytest.mark.parametrize("variant", ["xinet", "sac", "hopper"])
def test_kill_and_resume_is_bit_identical(variant, reference, tmp_path):
    """Killed at step 500 (progress.csv already holds row 500, the checkpoint is from step 400)."""
    a, b = reference(variant), tmp_path / "b"
    cfg = tiny_config(b, **VARIANTS[variant])
    with pytest.raises(Killed):
        train(cfg, echo=kill_at_log(500))
    header, arrays = load(b)
    assert header["step"] == 400
    assert (b / "progress.csv").read_text().splitlines()[-1].startswith("500,")
    summary_a = json.loads((a / "summary.json").read_text())
    if variant == "xinet":           # pruning before the checkpoint and after it
        assert summary_a["params"] < n_params(arrays) < summary_a["params_initial"]
    if variant == "hopper":          # the checkpoint is in the middle of an episode
        assert header["ep_len"] > 0
    resume(tiny_config(b, **VARIANTS[variant]))
    assert_same_run(a, b)


@pytest.mark.parametrize("variant", ["xinet", "sac"])
def test_stop_early_then_extend_is_bit_identical(variant, reference, tmp_path):
    """train(steps=400) then train(steps=600, resume=True); 400 is a multiple of the checkpoint, eval and
    log periods, so the end-of-run evaluation at step 400 is one the uninterrupted run makes too."""
    a, b = reference(variant), tmp_path / "b"
    train(tiny_config(b, **{**VARIANTS[variant], "steps": 400}), echo=quiet)
    resume(tiny_config(b, **VARIANTS[variant]))
    _, arrays = load(b)
    obs = arrays["buffer|obs"]
    assert not np.any(np.all(obs == 0, axis=1)), "replay buffer holds never-written (all-zero) rows"
    assert_same_run(a, b)


def test_buffer_state_refuses_another_capacity():
    """A buffer's (pos, size) only mean something for its own capacity."""
    small = ReplayBuffer(1, 1, 4)
    for i in range(4):
        small.add([i], [0], 0, [i], 0)
    with pytest.raises(ValueError):
        ReplayBuffer(1, 1, 8).load(small.state())
    same = ReplayBuffer(1, 1, 4)
    same.load(small.state())
    same.add([4], [0], 0, [4], 0)
    assert same.obs[:, 0].tolist() == [4, 1, 2, 3]


# ------------------------------------------------------------------ 3. the CLI: user errors
def assert_user_error(capsys, argv, *needles):
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xiref: error:"), err
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.mark.parametrize("overrides, needles", [
    (dict(env="Hoper-v5"), ("Hoper-v5", "Hopper-v5")),
    (dict(env="CartPole-v1"), ("CartPole-v1", "Discrete")),
    (dict(steps=0), ("--steps",)),
    (dict(batch=64, buffer_size=32), ("--batch", "--buffer-size")),
    (dict(beta=-1.0), ("--beta",)),
    (dict(eps_xi=0.6), ("--eps-xi",)),
    (dict(eta_theta=0.0), ("--eta-theta",)),
    (dict(method="xnet"), ("xnet", "xinet")),
    (dict(method="ofe-small"), ("--widths-from",)),
], ids=["env-typo", "discrete", "steps0", "batch>buffer", "beta<0", "eps_xi", "eta_theta0", "method",
        "ofe-small-no-widths"])
def test_cli_rejects_bad_settings(overrides, needles, capsys, tmp_path):
    assert_user_error(capsys, cli_args(tmp_path / "run", **overrides), *needles)


def test_cli_refuses_to_clobber_a_run(quick, capsys, tmp_path):
    run = copy_run(quick("sac"), tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert_user_error(capsys, cli_args(run, method="sac", **QUICK), "already holds a run", "--resume",
                      "--overwrite")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


@pytest.mark.parametrize("make_dir", [True, False], ids=["empty-dir", "no-dir"])
def test_cli_resume_without_checkpoint(make_dir, capsys, tmp_path):
    run = tmp_path / "run"
    if make_dir:
        run.mkdir()
    assert_user_error(capsys, cli_args(run, "--resume"), "no checkpoint")


def _flip_central_directory(offset, bits):
    """Corrupt a field of the first zip central-directory entry (flags at +8, compression method at +10)."""
    def corrupt(data):
        i = data.find(b"PK\x01\x02")
        assert i > 0
        data[i + offset] ^= bits
        return data
    return corrupt


CORRUPTIONS = {
    "empty": lambda d: d[:0],
    "truncated-half": lambda d: d[:len(d) // 2],
    "truncated-tail": lambda d: d[:-1],
    "flipped-middle": lambda d: d[:len(d) // 2] + bytes([d[len(d) // 2] ^ 0xFF]) + d[len(d) // 2 + 1:],
    "zeroed-block": lambda d: d[:1000] + bytes(4000) + d[5000:],
    "zip-encrypted-flag": _flip_central_directory(8, 0x01),
    "zip-patched-flag": _flip_central_directory(8, 0x20),
    "zip-compression-method": _flip_central_directory(10, 0x63),
}


@pytest.mark.parametrize("case", ["empty", "truncated-half", "truncated-tail", "flipped-middle", "zeroed-block",
                                  "zip-encrypted-flag", "zip-patched-flag",
                                  "zip-compression-method"])
def test_cli_corrupt_checkpoint(case, quick, capsys, tmp_path):
    run = copy_run(quick("xinet"), tmp_path / "run")
    path = run / "checkpoint.npz"
    path.write_bytes(bytes(CORRUPTIONS[case](bytearray(path.read_bytes()))))
    line = assert_user_error(capsys, cli_args(run, "--resume", method="xinet", **QUICK), "checkpoint")
    assert "corrupt" in line or "truncated" in line


@pytest.mark.parametrize("overrides, needle", [
    (dict(method="sac"), "method"), (dict(method="ofe"), "method"), (dict(hidden=(8, 8)), "hidden"),
    (dict(ofe_units=3), "ofe_units"), (dict(seed=1), "seed"), (dict(env="Hopper-v5"), "env"),
])
def test_cli_mismatched_checkpoint(overrides, needle, quick, capsys, tmp_path):
    run = copy_run(quick("xinet"), tmp_path / "run")
    before = (run / "config.json").read_bytes()
    args = cli_args(run, "--resume", **{"method": "xinet", **QUICK, **overrides})
    assert_user_error(capsys, args, "mismatch", needle)
    assert (run / "config.json").read_bytes() == before


def test_cli_widths_from_needs_a_finished_xinet_run(quick, capsys, tmp_path):
    assert_user_error(capsys, cli_args(tmp_path / "a", method="ofe-small", widths_from=str(quick("sac"))),
                      "sac", "xinet")
    assert_user_error(capsys, cli_args(tmp_path / "b", method="ofe-small", widths_from=str(tmp_path / "none")),
                      "summary.json")


def test_cli_widths_from_xinet_run(reference, capsys, tmp_path):
    src = reference("xinet")
    alive = json.loads((src / "summary.json").read_text())["alive_units"]
    ofe_alive = {k: v for k, v in alive.items() if k.startswith("ofenet/")}
    assert min(ofe_alive.values()) < TINY["ofe_units"]          # the source was really pruned
    out = tmp_path / "small"
    assert main(cli_args(out, "--quiet", method="ofe-small", widths_from=str(src), steps=400)) == 0
    stdout, err = capsys.readouterr()
    assert err == "" and len(stdout.strip().splitlines()) == 1    # --quiet: only the JSON line
    summary = json.loads(stdout)
    assert summary["method"] == "ofe-small"
    assert {k: v for k, v in summary["alive_units"].items() if k.startswith("ofenet/")} == ofe_alive
    _, arrays = load(out)
    for name, width in ofe_alive.items():
        assert arrays[f"agent|params|{name}|b"].shape == (width,)
    # actor and critics are the configured ones (ofe-small only shrinks OFENet)
    assert all(v == 16 for k, v in summary["alive_units"].items() if not k.startswith("ofenet/"))


# ------------------------------------------------------------------ 4. the final JSON line
def test_cli_prints_json_summary(reference, capsys, tmp_path):
    out = tmp_path / "run"
    assert main(cli_args(out, **VARIANTS["xinet"])) == 0
    stdout, err = capsys.readouterr()
    assert "Traceback" not in err
    lines = stdout.strip().splitlines()
    assert len(lines) > 1 and lines[0].startswith("step 100/600 ")
    summary = json.loads(lines[-1])
    keys = {"env", "method", "steps", "seed", "eval_return", "params", "seconds", "steps_per_second",
            "params_initial", "ofenet_params", "ofenet_params_initial", "macs", "macs_initial", "alive_units",
            "final_return"}
    assert keys <= set(summary)
    assert (summary["env"], summary["method"], summary["steps"], summary["seed"]) == \
        ("InvertedPendulum-v5", "xinet", 600, 0)
    assert summary["params"] < summary["params_initial"] and summary["macs"] < summary["macs_initial"]
    assert summary["ofenet_params"] <= summary["ofenet_params_initial"]
    assert isinstance(summary["eval_return"], float) and isinstance(summary["final_return"], float)
    on_disk = json.loads((out / "summary.json").read_text())
    assert {k: on_disk[k] for k in summary} == summary
    # the CLI builds exactly the TrainConfig that train() gets: same run as the reference
    assert (out / "progress.csv").read_bytes() == (reference("xinet") / "progress.csv").read_bytes()


def test_train_help_documents_every_flag_from_the_config_comments(capsys):
    """`xiref train --help` shows, for every TrainConfig field, the one-line comment beside it in the dataclass
    and its default; a field added without a comment fails here."""
    from dataclasses import fields
    from xiref.cli import field_comments
    comments = field_comments(TrainConfig)
    missing = [f.name for f in fields(TrainConfig) if not comments.get(f.name)]
    assert not missing, f"config fields without a one-line comment: {missing}"
    assert comments["eta_theta_ofenet"] == "η_θ for OFENet alone (none: use eta_theta)"   # AgentConfig's field
    assert comments["steps"] == "environment steps"                                     # TrainConfig's own
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())     # argparse wraps lines: compare with single spaces
    for f in fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in text
        assert " ".join(comments[f.name].split()) in text, f.name
    for shown in ("(default: 256,256)", "(default: 0.05)", "(default: 'flip')", "(default: 0)",
                  "(default: none)", "(default: 'float32')"):
        assert shown in text


# ------------------------------------------------------------------ 5. atomicity
@pytest.mark.parametrize("variant", ["sac"])
def test_stale_tmp_does_not_break_resume(variant, reference, tmp_path):
    b = tmp_path / "b"
    with pytest.raises(Killed):
        train(tiny_config(b, **VARIANTS[variant]), echo=kill_at_log(500))
    (b / "checkpoint.npz.tmp").write_bytes(b"PK\x03\x04 half a zip from a killed write")
    resume(tiny_config(b, **VARIANTS[variant]))
    assert not (b / "checkpoint.npz.tmp").exists()
    assert_same_run(reference(variant), b)


@pytest.fixture(scope="module")
def killed_during_save(tmp_path_factory):
    """A sac run whose third checkpoint write (step 600) dies after writing half of the .npz."""
    out = tmp_path_factory.mktemp("killed-save") / "run"
    real_savez, calls = np.savez, []

    def savez_killed_midway(file, *args, **kwds):
        calls.append(1)
        if len(calls) < 3:
            return real_savez(file, *args, **kwds)
        buf = io.BytesIO()
        real_savez(buf, *args, **kwds)
        data = buf.getvalue()
        file.write(data[:len(data) // 2])
        file.flush()
        raise Killed("during checkpoint write")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ck.np, "savez", savez_killed_midway)
        with pytest.raises(Killed):
            train(tiny_config(out, **VARIANTS["sac"]), echo=quiet)
    assert len(calls) == 3
    return out


def test_killed_checkpoint_write_keeps_previous(killed_during_save, reference):
    run = killed_during_save
    header, arrays = load(run)                      # the previous checkpoint loads and is intact
    assert header["step"] == 400
    assert int(arrays["buffer|size"]) == 400
    tmp = run / "checkpoint.npz.tmp"
    full = (reference("sac") / "checkpoint.npz").stat().st_size
    assert 0 < tmp.stat().st_size < full            # the partial write went to the .tmp only
    with pytest.raises(UserError, match="truncated or corrupt"):
        ck.load(str(tmp))
    assert not (run / "summary.json").exists()


@pytest.mark.parametrize("variant", ["sac"])
def test_resume_after_killed_checkpoint_write(variant, killed_during_save, reference, tmp_path):
    run = copy_run(killed_during_save, tmp_path / "run")
    resume(tiny_config(run, **VARIANTS[variant]))
    assert_same_run(reference(variant), run)


class FakeTerminal(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.mark.parametrize("tty", [True, False])
def test_progress_is_one_live_line_on_a_terminal_and_lines_elsewhere(tty):
    from xiref.cli import live_echo
    stream = FakeTerminal(tty)
    echo = live_echo(stream)
    for text in ("resumed r at step 0", "step 100/300  steps/s 9.0  ETA 0:22", "step 200/300  steps/s 9.0  ETA 0:11",
                 "wrote r/curves.png", ""):
        echo(text)
    if tty:      # the two progress lines share one line (\r, clear to its end); other messages get lines of their own
        assert stream.getvalue() == ("resumed r at step 0\n\rstep 100/300  steps/s 9.0  ETA 0:22\x1b[K"
                                     "\rstep 200/300  steps/s 9.0  ETA 0:11\x1b[K\nwrote r/curves.png\n")
    else:
        assert stream.getvalue().splitlines() == ["resumed r at step 0", "step 100/300  steps/s 9.0  ETA 0:22",
                                                  "step 200/300  steps/s 9.0  ETA 0:11", "wrote r/curves.png"]
