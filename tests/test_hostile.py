"""Hostile input, as a new user would give it (xiref/config.py, readers.py, checkpoint.py, train.py, plot.py,
export.py, envs.py, cli.py): one test per way it can fail, each with an input that breaks it, the exact
message, exit status 2, no traceback and no temporary file left behind; then a seeded fuzz of the readers.

1. NaN and ±inf settings, refused before anything is created or deleted;
2. sizes that need more memory than the machine has, refused with the estimate;
3. flags the method overrides (--method sac --gated 1 …), refused;
4. a full disk while writing a checkpoint (or an export): the file named, the last checkpoint kept, no .tmp;
5. `plot --out DIR`, and a plot write that fails: no .tmp left;
6. a checkpoint whose header is JSON but not an object (--resume and export);
7. a checkpoint with a valid checksum and no config (--resume and export, one message);
8. --resume with a binary progress.csv / timing.csv, or one without a step column;
9. --widths-from a hand-edited summary.json ([], a width of −3, a width "abc");
10. plot on random bytes, eval_every 0, no env, a config.json holding a list, a row cut short, a step "abc";
11. resume mid-episode: exact for Pendulum-v1 (classic-control state saved), refused for an env whose state
    cannot be saved, fine for that env between episodes.
"""
import errno
import json
import os
import warnings

import gymnasium as gym
import numpy as np
import pytest

from test_plot import fake_run
from test_train import (QUICK, assert_same_run, assert_user_error, cli_args, copy_run, load, quick,  # noqa: F401
                        quiet, tiny_config)
from xiref import checkpoint as ck
from xiref import config as C
from xiref import export as E
from xiref import plot as P
from xiref import readers as R
from xiref import train as T
from xiref.cli import main
from xiref.errors import UserError


def snapshot(run_dir):
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir())}


def no_tmp_files(*dirs):
    return not [p for d in dirs if d.exists() for p in d.iterdir() if ".tmp" in p.name]


def resume_args(run, **overrides):
    return cli_args(run, "--resume", **{"method": "sac", **QUICK, "steps": 60, **overrides})


# ================================================================== 1. NaN and inf settings
@pytest.mark.parametrize("name, value", [("lr_critic", "nan"), ("lr_alpha", "inf"), ("init_alpha", "inf"),
                                         ("lam_w", "inf")])
def test_non_finite_settings_touch_nothing(name, value, quick, capsys, tmp_path):
    """Refused before the run directory is made, and --overwrite deletes nothing first."""
    run = copy_run(quick("sac"), tmp_path / "run")
    before = snapshot(run)
    flag = "--" + name.replace("_", "-")
    line = assert_user_error(capsys, cli_args(run, "--overwrite", method="sac", **QUICK, **{name: float(value)}))
    assert line == f"xiref: error: {flag} must be a finite number, got {value}"
    assert snapshot(run) == before
    assert_user_error(capsys, cli_args(tmp_path / "new", method="sac", **{name: float(value)}))
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_every_float_setting_must_be_finite(value):
    """Every float field and per-network knob, one by one: validate names its flag."""
    for name, kind in C.FIELD_KINDS.items():
        if kind in ("float", "knob"):
            with pytest.raises(UserError, match=f"^--{name.replace('_', '-')} must be a finite number"):
                C.validate(C.TrainConfig(**{name: value}))


# ================================================================== 2. memory
@pytest.mark.parametrize("overrides, want", [
    (dict(buffer_size=10**13), "this run needs about 400.2 TiB of memory (replay buffer 400.2 TiB, networks with "
                               "Adam state 27.1 KiB, activations 150.0 KiB), more than the 8.0 GiB available; "
                               "lower --buffer-size"),
    (dict(hidden=(10**6, 10**6)), "this run needs about 65.5 TiB of memory (replay buffer 42.0 MiB, networks with "
                                  "Adam state 65.5 TiB, activations 8.6 GiB), more than the 8.0 GiB available; "
                                  "lower --hidden or --ofe-units"),
], ids=["buffer", "hidden"])
def test_sizes_beyond_the_machine_are_refused_with_the_estimate(overrides, want, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(C, "available_memory", lambda: 8 * 2**30)
    line = assert_user_error(capsys, cli_args(tmp_path / "run", method="sac", **overrides))
    assert line == f"xiref: error: {want}"
    assert not (tmp_path / "run").exists()


def test_memory_estimate_of_the_default_run_is_modest():
    """Hopper-v5 (11/3) xinet at the defaults: ≈ 100 MiB of buffer, a few tens for the networks and a batch."""
    cfg = C.resolve_method(C.TrainConfig(env="Hopper-v5"))
    parts = C.memory_needed(cfg, 11, 3)
    assert parts["replay buffer"] == 10**6 * (2 * 11 + 3 + 2) * 4
    assert sum(parts.values()) < 300 * 2**20
    C.check_memory(cfg, 11, 3, available=2**30)


# ================================================================== 3. flags the method overrides
@pytest.mark.parametrize("overrides, want", [
    (dict(method="sac", gated=True), "--gated 1 contradicts --method sac, which sets --gated 0; drop --gated"),
    (dict(method="xinet", gated=False), "--gated 0 contradicts --method xinet, which sets --gated 1; drop --gated"),
    (dict(method="sac", ofenet=True), "--ofenet 1 contradicts --method sac, which sets --ofenet 0; drop --ofenet"),
    (dict(method="ofe", widths_from="somewhere"),
     "--widths-from is read only by --method ofe-small, not --method ofe; drop --widths-from"),
    (dict(method="ofe-small", widths_from="somewhere", ofe_widths=(1, 1, 1, 1)),
     "--ofe-widths contradicts --method ofe-small, which takes its widths from --widths-from; drop --ofe-widths"),
    (dict(method="sac", ofe_widths=(1, 1, 1, 1)), "--ofe-widths: --method sac has no OFENet; drop --ofe-widths"),
    (dict(method="xinet", mu_theta=0.0), "--k-theta 3.0 needs --mu-theta > 0: an average of one draw has no standard "
                                         "error (Eq. 38)"),
], ids=["sac-gated", "xinet-ungated", "sac-ofenet", "ofe-widths-from", "ofe-small-widths", "sac-widths",
        "evidence-without-average"])
def test_contradictory_flags_are_refused(overrides, want, capsys, tmp_path):
    line = assert_user_error(capsys, cli_args(tmp_path / "run", **overrides))
    assert line == f"xiref: error: {want}"
    assert not (tmp_path / "run").exists()


def test_the_method_implied_switches_may_be_repeated(capsys, tmp_path):
    """--method xinet --gated 1 --ofenet 1 says what the method sets anyway: accepted."""
    assert main(cli_args(tmp_path / "run", "--quiet", method="xinet", gated=True, ofenet=True, **QUICK)) == 0
    capsys.readouterr()


# ================================================================== 4. full disk
def _savez_full_disk_at(call):
    real, calls = np.savez, []

    def savez(file, *args, **kwds):
        calls.append(1)
        if len(calls) < call:
            return real(file, *args, **kwds)
        file.write(b"PK\x03\x04 the first bytes of a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return savez


def test_full_disk_names_the_file_keeps_the_last_checkpoint_and_removes_the_temp(monkeypatch, capsys, tmp_path):
    run = tmp_path / "run"
    monkeypatch.setattr(ck.np, "savez", _savez_full_disk_at(2))            # the step-100 checkpoint
    line = assert_user_error(capsys, cli_args(run, method="sac", **{**QUICK, "steps": 100}))
    assert line == (f"xiref: error: cannot write {run}/checkpoint.npz: No space left on device; stopped, the last "
                    f"good checkpoint (step 50) is kept in {run}")
    monkeypatch.undo()
    assert load(run)[0]["step"] == 50 and no_tmp_files(run)
    assert main(cli_args(run, "--resume", "--quiet", method="sac", **{**QUICK, "steps": 100})) == 0
    capsys.readouterr()


def test_full_disk_during_export(quick, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(ck.np, "savez", _savez_full_disk_at(1))
    out = tmp_path / "policy.npz"
    line = assert_user_error(capsys, ["export", str(quick("sac")), "--out", str(out)])
    assert line == f"xiref: error: cannot write {out}: No space left on device"
    assert not out.exists() and no_tmp_files(tmp_path)


# ================================================================== 5. plot output
def test_plot_into_a_directory_leaves_nothing(quick, capsys, tmp_path):
    target = tmp_path / "somedir"
    target.mkdir()
    line = assert_user_error(capsys, ["plot", str(quick("sac")), "--out", str(target)])
    assert line == f"xiref: error: --out {target} is a directory; give the PNG file to write"
    assert list(tmp_path.iterdir()) == [target] and not list(target.iterdir())


def test_failed_plot_write_removes_its_temp_file(quick, monkeypatch, capsys, tmp_path):
    import matplotlib.figure

    def full(self, file, **kwargs):
        file.write(b"\x89PNG half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    out = tmp_path / "c.png"
    line = assert_user_error(capsys, ["plot", str(quick("sac")), "--out", str(out)])
    assert line == f"xiref: error: cannot write {out}: No space left on device"
    assert list(tmp_path.iterdir()) == []


# ================================================================== 6, 7. foreign and incomplete checkpoints
def _write_npz(path, header_bytes, **arrays):
    with open(path, "wb") as f:
        np.savez(f, __header__=np.frombuffer(header_bytes, dtype=np.uint8), **arrays)


def _without_config(path):
    header, flat = ck.load(str(path))
    header.pop("sha256")
    header.pop("config")
    ck.save(str(path), header, flat)


def _opt_t_infinite(path):
    header, flat = ck.load(str(path))
    header.pop("sha256")
    net = next(iter(header["agent_scalars"]["opt_t"]))
    header["agent_scalars"]["opt_t"][net] = float("inf")
    ck.save(str(path), header, flat)


@pytest.mark.parametrize("case", ["header-a-list", "header-a-number", "no-config", "step-count-infinite"])
def test_foreign_or_incomplete_checkpoint_resume_and_export_say_the_same(case, quick, capsys, tmp_path):
    run = copy_run(quick("sac"), tmp_path / "run")
    path = run / "checkpoint.npz"
    if case == "no-config":
        _without_config(path)
        want = f"checkpoint {path} is incomplete: its header has no config"
    elif case == "step-count-infinite":            # a valid checksum over an Adam step count of Infinity
        _opt_t_infinite(path)
        want = (f"checkpoint {path} does not fit this run (OverflowError: cannot convert float infinity to "
                "integer)")
    else:
        _write_npz(path, b"[1, 2, 3]" if case == "header-a-list" else b"17", x=np.zeros(2))
        want = f"checkpoint {path} is corrupt (its header is not a JSON object)"
    before = snapshot(run)
    assert assert_user_error(capsys, resume_args(run)) == f"xiref: error: {want}"
    out = tmp_path / "policy.npz"
    assert assert_user_error(capsys, ["export", str(run), "--out", str(out)]) == f"xiref: error: {want}"
    assert snapshot(run) == before and not out.exists() and no_tmp_files(run, tmp_path)


# ================================================================== 8. --resume with damaged CSVs
@pytest.mark.parametrize("name, content, want", [
    ("progress.csv", b"\xff\xfe\x00\x01binary", "{path} is not a text file (byte 0 is not UTF-8)"),
    ("timing.csv", b"step,seconds\n50,\x80\x81\n", "{path} is not a text file (byte 16 is not UTF-8)"),
    ("progress.csv", b"steps,episodes\n50,1\n", "{path} has no step column (its first line: steps,episodes)"),
    ("progress.csv", b"step,episodes\n50,1\n40,1\n", "{path} line 3: step 40 does not follow step 50"),
    ("timing.csv", b"step,seconds\n50,\x00\n", "{path} line 2: seconds '\\x00' is not a number"),
], ids=["binary-progress", "binary-timing", "no-step-column", "steps-backwards", "nul"])
def test_resume_refuses_damaged_logs_and_changes_nothing(name, content, want, quick, capsys, tmp_path):
    run = copy_run(quick("sac"), tmp_path / "run")
    (run / name).write_bytes(content)
    before = snapshot(run)
    line = assert_user_error(capsys, resume_args(run))
    assert line == "xiref: error: " + want.format(path=run / name)
    assert snapshot(run) == before


# ================================================================== 9. --widths-from a hand-edited summary.json
def _summary_source(tmp_path, summary):
    src = tmp_path / "source"
    src.mkdir()
    (src / "summary.json").write_text(json.dumps(summary))
    return src


def _alive(**widths):
    alive = {f"ofenet/{b}{k}": 2 for b in "sa" for k in (1, 2)}
    alive.update({f"ofenet/{k}": v for k, v in widths.items()})
    return {"method": "xinet", "alive_units": alive}


@pytest.mark.parametrize("summary, want", [
    ([], "--widths-from {src}: {src}/summary.json holds an array, not a JSON object"),
    (_alive(s1=-3), "--widths-from {src}: summary.json gives ofenet/s1 the width -3; a width is an integer >= 0"),
    (_alive(a2="abc"), "--widths-from {src}: summary.json gives ofenet/a2 the width 'abc'; a width is an integer >= 0"),
    ({"method": "xinet", "alive_units": [3, 3]},
     "--widths-from {src}: summary.json's alive_units is an array, not an object"),
], ids=["list", "negative", "text", "alive-a-list"])
def test_widths_from_a_hand_edited_summary(summary, want, capsys, tmp_path):
    src = _summary_source(tmp_path, summary)
    line = assert_user_error(capsys, cli_args(tmp_path / "run", method="ofe-small", widths_from=str(src)))
    assert line == "xiref: error: " + want.format(src=src)
    assert not (tmp_path / "run").exists()


# ================================================================== 10. plot on garbage and hand-edited files
def _edit_config(run, edit):
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(edit(cfg)))


PLOT_DAMAGE = {
    "random-bytes": (lambda run: (run / "progress.csv").write_bytes(bytes(range(128, 256))),
                     "{run}/progress.csv is not a text file (byte 0 is not UTF-8)"),
    "eval-every-0": (lambda run: _edit_config(run, lambda c: dict(c, eval_every=0)),
                     "{run}/config.json: eval_every must be positive, got 0"),
    "no-env": (lambda run: _edit_config(run, lambda c: {k: v for k, v in c.items() if k != "env"}),
               "{run}/config.json has no env"),
    "config-a-list": (lambda run: _edit_config(run, lambda c: list(c)),
                      "{run}/config.json holds an array, not a JSON object"),
    "steps-a-string": (lambda run: _edit_config(run, lambda c: dict(c, steps="3000")),
                       "{run}/config.json: steps must be an integer, got '3000'"),
    "row-cut-short": (lambda run: (run / "progress.csv").write_text(
        (run / "progress.csv").read_text()[:-9]), "{run}/progress.csv line 4 has 2 of its 4 columns (cut or damaged)"),
    "step-abc": (lambda run: (run / "progress.csv").write_text(
        (run / "progress.csv").read_text().replace("2000,", "abc,")),
        "{run}/progress.csv line 3: step 'abc' is not an integer >= 0"),
    "step-5000-digits": (lambda run: (run / "progress.csv").write_text(
        (run / "progress.csv").read_text().replace("2000,", "9" * 5000 + ",")),
        "{run}/progress.csv line 3: step '99999999999999999999' is not an integer >= 0"),
    "value-abc": (lambda run: (run / "progress.csv").write_text(
        (run / "progress.csv").read_text().replace(",20.0,", ",abc,")),
        "{run}/progress.csv line 3: eval_return 'abc' is not a number"),
}


@pytest.mark.parametrize("case", list(PLOT_DAMAGE))
def test_plot_refuses_garbage_and_hand_edited_files(case, capsys, tmp_path):
    run = tmp_path / "run"
    fake_run(run)
    damage, want = PLOT_DAMAGE[case]
    damage(run)
    out = tmp_path / "c.png"
    line = assert_user_error(capsys, ["plot", str(run), "--out", str(out)])
    assert line == "xiref: error: " + want.format(run=run)
    assert not out.exists() and no_tmp_files(tmp_path)


def test_plot_of_a_real_run_still_works(quick, capsys, tmp_path):
    assert main(["plot", str(quick("sac")), "--out", str(tmp_path / "c.png")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'c.png'}"


# ================================================================== 11. resume mid-episode
PENDULUM = dict(env="Pendulum-v1", method="sac", start_steps=100, batch=16, eval_every=150, checkpoint_every=150,
                log_every=50)


def test_pendulum_resumes_mid_episode_bit_identically(tmp_path):
    """Pendulum's 200-step episodes: the step-450 checkpoint is 50 steps into the third; stopped there and
    resumed to 700, the run is byte for byte the uninterrupted one."""
    a, b = tmp_path / "a", tmp_path / "b"
    T.train(tiny_config(a, **PENDULUM, steps=700), echo=quiet)
    T.train(tiny_config(b, **PENDULUM, steps=450), echo=quiet)
    header, arrays = load(b)
    assert header["ep_len"] == 50 and "env|classic_state" in arrays
    T.train(tiny_config(b, **PENDULUM, steps=700), resume=True, echo=quiet)
    assert_same_run(a, b)


class OpaqueEnv(gym.Env):
    """A 1-D random walk whose position lives where no checkpoint can find it."""
    action_space = gym.spaces.Box(-1.0, 1.0, (1,))
    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,))

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self._where = float(self.np_random.normal())
        return np.array([self._where, 0.0], np.float32), {}

    def step(self, action):
        self._where += float(action[0])
        return np.array([self._where, 1.0], np.float32), -abs(self._where), False, False, {}


@pytest.fixture
def opaque_env():
    gym.register(id="XirefOpaque-v0", entry_point=OpaqueEnv, max_episode_steps=25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # gymnasium's env checker comments on the unbounded observation
        yield "XirefOpaque-v0"
    del gym.envs.registry["XirefOpaque-v0"]


def test_resume_mid_episode_of_an_env_whose_state_cannot_be_saved(opaque_env, capsys, tmp_path):
    run = tmp_path / "run"
    flags = dict(env=opaque_env, method="sac", **{**QUICK, "checkpoint_every": 60, "steps": 60})
    assert main(cli_args(run, "--quiet", **flags)) == 0                  # 60 = 2 × 25 + 10: mid-episode
    before = snapshot(run)
    line = assert_user_error(capsys, cli_args(run, "--resume", **{**flags, "steps": 100}))
    assert line == (f"xiref: error: checkpoint {run}/checkpoint.npz was taken 10 steps into an episode of "
                    f"{opaque_env}, whose state xiref cannot save; --resume continues mid-episode only for MuJoCo "
                    "envs and gymnasium's classic-control envs (Pendulum-v1, MountainCarContinuous-v0)")
    assert snapshot(run) == before


def test_resume_between_episodes_of_such_an_env(opaque_env, capsys, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    flags = dict(env=opaque_env, method="sac", **{**QUICK, "checkpoint_every": 50})
    assert main(cli_args(a, "--quiet", **{**flags, "steps": 100})) == 0
    assert main(cli_args(b, "--quiet", **{**flags, "steps": 50})) == 0    # 50 = 2 × 25: between episodes
    assert main(cli_args(b, "--resume", "--quiet", **{**flags, "steps": 100})) == 0
    capsys.readouterr()
    assert_same_run(a, b)


def test_help_says_which_envs_resume_exactly(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")     # argparse may wrap at a hyphen
    assert ("--resume continue the run in --out from its checkpoint: bit-identically for MuJoCo envs and "
            "gymnasium's classic-control envs (Pendulum-v1, MountainCarContinuous-v0); for other envs only from a "
            "checkpoint taken between episodes") in text


# ================================================================== the readers under fuzz
JUNK = [None, True, 0, -1, 3, 2.5, -1e308, float("nan"), "", "abc", [], [1, "x"], {}, {"a": [None]}]


def _mutations(rng, data, n):
    """n damaged copies of bytes `data`: truncations, flipped bytes, random bytes, a zeroed run."""
    out = []
    for _ in range(n):
        kind, k = rng.integers(4), int(rng.integers(0, max(len(data), 1)))
        if kind == 0:
            out.append(data[:k])
        elif kind == 1:
            b = bytearray(data)
            for i in rng.integers(0, max(len(b), 1), size=3):
                if b:
                    b[i] ^= int(rng.integers(1, 256))
            out.append(bytes(b))
        elif kind == 2:
            out.append(rng.bytes(int(rng.integers(0, 300))))
        else:
            out.append(data[:k] + bytes(min(200, len(data) - k)) + data[k + 200:])
    return out


def _refuses_or_reads(read, *args):
    try:
        read(*args)
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc)


def _shapes(rng, valid):
    """Valid JSON of the wrong shape: junk at the top, and each key of `valid` replaced by junk in turn."""
    out = list(JUNK)
    for key in valid:
        out.append({**valid, key: JUNK[int(rng.integers(len(JUNK)))]})
        out.append({k: v for k, v in valid.items() if k != key})
    return out


def test_fuzz_text_readers(quick, tmp_path):
    """config.json, summary.json, progress.csv and timing.csv, damaged 80 ways each and as JSON of the wrong
    shape: every reader returns data or raises UserError — nothing else."""
    rng = np.random.default_rng(31)
    readers = {"config.json": lambda p: (R.read_config(p), C.config_from_dict(R.read_json_object(p))),
               "summary.json": lambda p: R.final_ofenet_widths(os.path.dirname(p), 2),
               "progress.csv": R.read_csv, "timing.csv": R.read_csv}
    for name, read in readers.items():
        data = (quick("xinet") / name).read_bytes()
        path = tmp_path / name
        cases = _mutations(rng, data, 80)
        if name.endswith(".json"):
            cases += [json.dumps(s, allow_nan=True).encode() for s in _shapes(rng, json.loads(data))]
        for case in cases:
            path.write_bytes(case)
            _refuses_or_reads(read, str(path))


def test_fuzz_plot_loader(tmp_path):
    rng = np.random.default_rng(32)
    run = tmp_path / "run"
    fake_run(run)
    good = {n: (run / n).read_bytes() for n in ("config.json", "progress.csv")}
    for name, data in good.items():
        for case in _mutations(rng, data, 60):
            (run / name).write_bytes(case)
            _refuses_or_reads(P._load, str(run))
        (run / name).write_bytes(data)


def test_fuzz_checkpoint_reader(quick, tmp_path):
    """Damaged bytes, and well-formed checkpoints (checksum recomputed) whose header entries or config fields
    hold junk: read_run_checkpoint refuses or reads; a read one also loads into a run or is refused."""
    rng = np.random.default_rng(33)
    path = tmp_path / "checkpoint.npz"
    data = (quick("xinet") / "checkpoint.npz").read_bytes()
    for case in _mutations(rng, data, 40):
        path.write_bytes(case)
        _refuses_or_reads(R.read_run_checkpoint, str(path))
    header, flat = ck.load(str(quick("xinet") / "checkpoint.npz"))
    header.pop("sha256")
    run = copy_run(quick("xinet"), tmp_path / "run")
    edits = [("header", k) for k in header] + [("config", k) for k in rng.choice(list(header["config"]), 12)]
    for where, key in edits:
        edited = json.loads(json.dumps(header))
        (edited if where == "header" else edited["config"])[key] = JUNK[int(rng.integers(len(JUNK)))]
        ck.save(str(run / "checkpoint.npz"), edited, flat)
        _refuses_or_reads(E.load_run, str(run))
    for key in rng.choice(sorted(flat), 6):
        ck.save(str(run / "checkpoint.npz"), header, {**flat, key: np.array(["x"])})
        _refuses_or_reads(E.load_run, str(run))
