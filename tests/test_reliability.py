"""Reliability: user errors, blow-ups, numerical edge cases and pruning extremes (xiref/train.py, cli.py,
checkpoint.py, runstate.py, envs.py, gates.py, sac.py, layers.py, agent.py; docs/METHOD.md §1, §3, §5, §7).

What test_train.py and test_xinet_agent.py do not already cover:

* user errors, one line `xiref: error: …`, exit 2, no traceback: the rest of the impossible settings
  (negative steps, ε_ξ at and beyond the ends of (0, 0.5), per-network β and η_θ, negative seed, a
  prediction target T outside 1..O), spaces gymnasium envs can have (unbounded Box action, 2-D observation,
  MultiBinary action), a directory holding a run's results without its config.json, --overwrite of a
  different run (and a refused --overwrite that leaves it intact), --resume with fewer --steps than the
  checkpoint, a directory another live process is writing (refused even with --overwrite; a lock of a gone
  process, an empty or torn lock is taken over and released; SIGTERM stops like Ctrl-C and frees the lock),
  checkpoints with a flipped header byte, another xiref version, other dimensions in the header
  or in an array, a missing array or header entry (for `train --resume` and for `export`); the episode's
  step count is saved and restored through extra env wrappers;
* same seed ⇒ bit-identical run for ofe-small (with a DenseNet layer of width 0);
* numerics in float32 and float64: tanh-Gaussian log π for huge |x| (values and gradient), BN over a
  constant feature and over a batch of identical rows (finite, and equal to autograd), the score (22) near
  the floor ε_ξ — finite and |s| ≤ 1/ε_ξ, also for an ε_ξ below float32's spacing at 1;
* blow-ups made on purpose (NaN/huge reward, NaN observation at a step, at a reset and in evaluation, a NaN
  loss, a NaN θ, a NaN target critic right at a checkpoint): one line naming what and which step, exit 2,
  no RuntimeWarning, and the checkpoint on disk is the last good one — array for array the checkpoint of
  an uninterrupted run at that step — from which --resume ends bit-identical to the uninterrupted run;
* pruning extremes: gradients (against autograd) and cost with DenseNet layers of width 0; all of OFENet
  pruned (features are the raw input, the agent acts and updates); an MLP layer held at its last unit;
  kill-and-resume after all pruning has finished.
* the remaining settings (infinite η_θ, BN ε and momentum, λ_w, OFENet widths, a corrupt or mismatched
  --widths-from source) and `plot` on an unreadable config.json.
"""
import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import warnings

import gymnasium as gym
import numpy as np
import pytest

from gradutil import autograd_grad, check_tree
from test_network import loss_and_grads, randomise, small_agent
from test_train import (QUICK, TINY, VARIANTS, Killed, assert_same_run, assert_user_error, cli_args, copy_run,
                        kill_at_log, load, quiet, tiny_config)
from xiref import agent as agent_module
from xiref import checkpoint as ck
from xiref import gates as G
from xiref import layers as L
from xiref import network as N
from xiref import prune as P
from xiref import runlock as RL
from xiref import sac
from xiref import train as T
from xiref import wiring as WR
from xiref.agent import SHARED_KNOBS, Agent, AgentConfig
from xiref.cli import main
from xiref.envs import get_env_state, make_env, set_env_state


# ================================================================== shared runs
@pytest.fixture(scope="module")
def xinet_run(tmp_path_factory):
    """xinet_run(steps) -> directory of the tiny xinet run (β = 5: it prunes) stopped at `steps`."""
    @functools.cache
    def get(steps):
        out = tmp_path_factory.mktemp(f"xinet-{steps}")
        train_summary = T.train(tiny_config(out, **{**VARIANTS["xinet"], "steps": steps}), echo=quiet)
        assert train_summary["steps"] == steps
        return out
    return get


@pytest.fixture(scope="module")
def quick_xinet(tmp_path_factory):
    """A finished xinet run that never learns (50 steps): a checkpoint, config.json and summary.json."""
    out = tmp_path_factory.mktemp("quick-xinet")
    T.train(tiny_config(out, method="xinet", **QUICK), echo=quiet)
    return out


def snapshot(run_dir):
    return {p.name: p.read_bytes() for p in run_dir.iterdir()}


# ================================================================== 1. user errors
@pytest.mark.parametrize("overrides, needles", [
    (dict(steps=-5), ("--steps", "-5")),
    (dict(eps_xi=0.0), ("--eps-xi",)),
    (dict(eps_xi=0.5), ("--eps-xi",)),
    (dict(eps_xi=-0.01), ("--eps-xi",)),
    (dict(eta_theta=-0.1), ("--eta-theta",)),
    (dict(eta_theta_actor=0.0), ("--eta-theta-actor",)),
    (dict(eta_theta_critic=float("inf")), ("--eta-theta-critic",)),
    (dict(beta_critic=-2.0), ("--beta-critic",)),
    (dict(beta=float("nan")), ("--beta",)),
    (dict(seed=-1), ("--seed", "-1")),
    (dict(method="ofe", target_dim=5), ("--target-dim", "1..4", "5")),
    (dict(method="xinet", target_dim=-2), ("--target-dim", "-2")),
], ids=["steps<0", "eps_xi=0", "eps_xi=0.5", "eps_xi<0", "eta_theta<0", "eta_theta_actor=0", "eta_theta_critic=inf",
        "beta_critic<0",
        "beta=nan", "seed<0", "target_dim>obs", "target_dim<0"])
def test_cli_rejects_more_bad_settings(overrides, needles, capsys, tmp_path):
    """Nothing is created: every check runs before the run directory is made."""
    assert_user_error(capsys, cli_args(tmp_path / "run", **overrides), *needles)
    assert not (tmp_path / "run").exists()


def test_reference_rejects_negative_seed(capsys, tmp_path):
    assert_user_error(capsys, ["reference", "--out", str(tmp_path / "ref"), "--seed", "-3"], "--seed")
    assert not (tmp_path / "ref").exists()


class SpacesEnv(gym.Env):
    """A do-nothing env with the given spaces (for make_env's checks of what SAC can drive)."""

    def __init__(self, action_space, observation_space):
        self.action_space, self.observation_space = action_space, observation_space

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape, np.float32), {}

    def step(self, action):
        return np.zeros(self.observation_space.shape, np.float32), 0.0, False, False, {}


SPACES = {
    "unbounded-action": (gym.spaces.Box(-np.inf, np.inf, (1,)), gym.spaces.Box(-1, 1, (3,)), "unbounded"),
    "image-observation": (gym.spaces.Box(-1, 1, (1,)), gym.spaces.Box(-1, 1, (2, 2)), "flat Box observation"),
    "multibinary-action": (gym.spaces.MultiBinary(2), gym.spaces.Box(-1, 1, (3,)), "MultiBinary"),
}


@pytest.mark.parametrize("kind", list(SPACES))
def test_cli_rejects_env_spaces(kind, capsys, tmp_path):
    action, observation, needle = SPACES[kind]
    env_id = f"XirefTest{kind.title().replace('-', '')}-v0"
    gym.register(id=env_id, entry_point=lambda: SpacesEnv(action, observation))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # gymnasium's env checker comments on these spaces
            assert_user_error(capsys, cli_args(tmp_path / "run", env=env_id, method="sac"), env_id, needle)
    finally:
        del gym.envs.registry[env_id]


def test_cli_refuses_a_directory_with_results_but_no_config(quick_xinet, capsys, tmp_path):
    """config.json lost (or never there): progress.csv and checkpoint.npz are still another run's results."""
    run = copy_run(quick_xinet, tmp_path / "run")
    (run / "config.json").unlink()
    before = snapshot(run)
    assert_user_error(capsys, cli_args(run, method="xinet", **QUICK), "already holds a run", "--overwrite")
    assert snapshot(run) == before


def test_cli_overwrite_replaces_a_different_run(quick_xinet, capsys, tmp_path):
    """--overwrite of a sac run (with a stale .tmp and an unrelated file) gives exactly a fresh xinet run and
    keeps the unrelated file; an --overwrite that is refused (bad settings) changes nothing."""
    run = tmp_path / "run"
    assert main(cli_args(run, "--quiet", method="sac", **QUICK)) == 0
    (run / "checkpoint.npz.tmp").write_bytes(b"PK half a write")
    (run / "notes.txt").write_text("mine")
    capsys.readouterr()
    before = snapshot(run)
    assert_user_error(capsys, cli_args(run, "--overwrite", method="xinet", env="Hoper-v5", **QUICK), "Hoper-v5")
    assert snapshot(run) == before
    assert main(cli_args(run, "--overwrite", "--quiet", method="xinet", **QUICK)) == 0
    assert not (run / "checkpoint.npz.tmp").exists() and (run / "notes.txt").read_text() == "mine"
    assert json.loads((run / "config.json").read_text())["method"] == "xinet"
    assert_same_run(quick_xinet, run)


def test_cli_resume_with_fewer_steps_than_the_checkpoint(quick_xinet, capsys, tmp_path):
    run = copy_run(quick_xinet, tmp_path / "run")
    before = snapshot(run)
    assert_user_error(capsys, cli_args(run, "--resume", method="xinet", **{**QUICK, "steps": 40}), "--steps 40",
                      "50")
    assert snapshot(run) == before



# ------------------------------------------------------------------ one writer per run directory
@pytest.fixture
def live_process():
    """A process that is alive for the test's duration (its pid stands in for another xiref writer)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("flag", ["--resume", "--overwrite"])
def test_cli_refuses_a_directory_another_process_is_writing(flag, quick_xinet, live_process, capsys, tmp_path):
    """Even --overwrite must not delete the files of a run that is still being written."""
    run = copy_run(quick_xinet, tmp_path / "run")
    (run / RL.LOCK_NAME).write_text(f"{live_process} {socket.gethostname()}\n")
    before = snapshot(run)
    assert_user_error(capsys, cli_args(run, flag, method="xinet", **{**QUICK, "steps": 60}),
                      "another xiref process", f"pid {live_process}", RL.LOCK_NAME)
    assert snapshot(run) == before


def test_lock_of_another_host_is_respected(quick_xinet, capsys, tmp_path):
    run = copy_run(quick_xinet, tmp_path / "run")
    (run / RL.LOCK_NAME).write_text(f"{os.getpid()} not-{socket.gethostname()}\n")
    assert_user_error(capsys, cli_args(run, "--resume", method="xinet", **{**QUICK, "steps": 60}),
                      f"not-{socket.gethostname()}")


@pytest.mark.parametrize("content", ["{dead} {host}\n", "", "garbage"], ids=["dead-holder", "empty", "torn"])
def test_stale_lock_is_taken_over_and_released(content, quick_xinet, capsys, tmp_path):
    """A lock whose holder is gone (or that a crash left empty/torn) does not block; no lock is left after."""
    run = copy_run(quick_xinet, tmp_path / "run")
    (run / RL.LOCK_NAME).write_text(content.format(dead=_dead_pid(), host=socket.gethostname()))
    assert main(cli_args(run, "--resume", "--quiet", method="xinet", **{**QUICK, "steps": 60})) == 0
    assert not (run / RL.LOCK_NAME).exists()
    assert json.loads((run / "summary.json").read_text())["steps"] == 60


def test_a_lock_of_a_host_known_gone_is_released_and_no_other(tmp_path):
    """release_lock_of_hosts: a lock naming a host in the set (a cluster node reported dead) is removed; one naming
    another host stays respected (the control)."""
    lock = tmp_path / RL.LOCK_NAME
    lock.write_text(f"{os.getpid()} other-host\n")
    assert not RL.release_lock_of_hosts(str(tmp_path), {"gone-host"})
    assert RL.holder(str(tmp_path)) == (os.getpid(), "other-host")
    assert RL.release_lock_of_hosts(str(tmp_path), {"gone-host", "other-host"})
    assert not lock.exists() and RL.holder(str(tmp_path)) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_zombie_holder_is_not_alive(tmp_path):
    """A killed writer whose exit status nobody has collected yet (a zombie, as an orphan is in a container whose
    first process does not reap) holds nothing; the same process before it dies does (the control)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / RL.LOCK_NAME).write_text(f"{child.pid} {socket.gethostname()}\n")
        assert RL.holder(str(tmp_path)) == (child.pid, socket.gethostname())
        child.kill()
        deadline = time.time() + 10
        while RL.proc_stat(child.pid)[0] != "Z" and time.time() < deadline:
            time.sleep(0.01)                                       # dead, not yet reaped: a zombie
        assert RL.holder(str(tmp_path)) is None
    finally:
        child.kill()
        child.wait()


def test_lock_is_held_during_the_run_and_released_on_a_user_error(monkeypatch, capsys, tmp_path):
    """The lock names this process while training; a run stopped by a blow-up releases it."""
    run, seen = tmp_path / "run", []

    def env_step(self, original=T.Run.env_step):
        seen.append(RL.holder(str(run)) is None and (run / RL.LOCK_NAME).read_text().split()[0])
        if self.step == 20:
            raise FloatingPointError("made-up blow-up")
        return original(self)
    monkeypatch.setattr(T.Run, "env_step", env_step)
    assert_user_error(capsys, cli_args(run, method="sac", **QUICK), "made-up blow-up")
    assert set(seen) == {str(os.getpid())} and not (run / RL.LOCK_NAME).exists()

def _edit_saved_config(path, **changes):
    header, flat = ck.load(str(path))
    header.pop("sha256")
    header["config"].update(changes)
    ck.save(str(path), header, flat)


@pytest.mark.parametrize("method, saved, refused", [
    # the defaults' effective β (OFENet's and the critics' `beta`, the actor's own), written another way (each
    # network's own value): resumable; and the critics' −1, the unset value of files written before None: resumable
    ("xinet", dict(beta=0.3, beta_ofenet=AgentConfig.beta, beta_actor=AgentConfig.beta_actor,
                   beta_critic=AgentConfig.beta), None),
    ("xinet", dict(beta_critic=-1.0), None),
    # another effective β for the actor: refused
    ("xinet", dict(beta_actor=0.7), "beta_actor"),
    # another effective sampling floor for OFENet: refused
    ("xinet", dict(eps_xi_ofenet=0.01), "eps_xi_ofenet"),
    # the default floor written as OFENet's own value: the same effective setting, resumable
    ("xinet", dict(eps_xi_ofenet=0.001), None),
    # another θ-step scale or OFENet value: refused
    ("xinet", dict(theta_scale="rms"), "theta_scale"),
    ("xinet", dict(ofenet_value="consumers"), "ofenet_value"),
    ("xinet", dict(expected_gates="theta"), "expected_gates"),
    # gate settings never act in an ungated run, so a changed default does not block it
    ("ofe", dict(beta_actor=None, eta_theta_critic=-1.0, eps_xi=0.2, theta_scale="rms", ofenet_value="consumers",
                 expected_gates="tilde"), None),
])
def test_resume_compares_the_effective_settings(method, saved, refused, capsys, tmp_path):
    """Resume compares what determines the continuation (runstate.effective_config), not raw fields."""
    run = tmp_path / "run"
    assert main(cli_args(run, "--quiet", method=method, **QUICK)) == 0
    _edit_saved_config(run / "checkpoint.npz", **saved)
    argv = cli_args(run, "--resume", "--quiet", method=method, **{**QUICK, "steps": QUICK["steps"] + 10})
    if refused is None:
        assert main(argv) == 0
        capsys.readouterr()
    else:
        assert_user_error(capsys, argv, "mismatch", refused)


def test_resume_a_checkpoint_from_before_per_network_eps_xi(capsys, tmp_path):
    """A checkpoint whose config has no eps_xi_<net> fields (written before they existed) resumes: a missing
    field reads as unset (None), i.e. the shared ε_ξ, which is what that run used."""
    run = tmp_path / "run"
    assert main(cli_args(run, "--quiet", method="xinet", **QUICK)) == 0
    header, flat = ck.load(str(run / "checkpoint.npz"))
    header.pop("sha256")
    for net in ("ofenet", "actor", "critic"):
        del header["config"][f"eps_xi_{net}"]
    ck.save(str(run / "checkpoint.npz"), header, flat)
    assert main(cli_args(run, "--resume", "--quiet", method="xinet", **{**QUICK, "steps": QUICK["steps"] + 10})) == 0
    capsys.readouterr()


@pytest.mark.parametrize("extra, refused", [(("--expected-gates", "theta"), None), ((), "expected_gates"),
                                            (("--expected-gates", "theta", "--theta-scale", "rms"), "theta_scale")])
def test_resume_a_checkpoint_from_before_the_theta_scale(extra, refused, capsys, tmp_path):
    """A checkpoint whose config has no theta_scale, ofenet_value and expected_gates (written before they existed)
    ran the unscaled step with OFENet's own value, reading θ: it resumes so, and refuses the default reading θ̃ or
    another scale."""
    run = tmp_path / "run"
    assert main(cli_args(run, "--quiet", method="xinet", **QUICK)) == 0
    header, flat = ck.load(str(run / "checkpoint.npz"))
    header.pop("sha256")
    del header["config"]["theta_scale"], header["config"]["ofenet_value"], header["config"]["expected_gates"]
    ck.save(str(run / "checkpoint.npz"), header, flat)
    argv = cli_args(run, "--resume", "--quiet", *extra, method="xinet", **{**QUICK, "steps": QUICK["steps"] + 10})
    if refused is None:
        assert main(argv) == 0
        capsys.readouterr()
    else:
        assert_user_error(capsys, argv, "mismatch", refused)


def _resave(edit):
    """A checkpoint edit that keeps the file well-formed (the checksum is recomputed): a mismatch, not damage."""
    def apply(path):
        header, flat = ck.load(str(path))
        header.pop("sha256")
        edit(header, flat)
        ck.save(str(path), header, flat)
    return apply


def _flip_header_byte(path):
    data = bytearray(path.read_bytes())
    i = data.find(b'"xiref_version"')
    assert i > 0
    data[i + 3] ^= 0x01
    path.write_bytes(bytes(data))


def _drop_column(header, flat):
    flat["agent|params|actor/h1|W"] = flat["agent|params|actor/h1|W"][:, :-1]


CHECKPOINT_EDITS = {
    "header-byte-flipped": (_flip_header_byte, ("corrupt",)),
    "other-obs-dim": (_resave(lambda h, f: h.update(obs_dim=5)), ("mismatch", "dimensions")),
    "narrower-array": (_resave(_drop_column), ("mismatch", "actor/h1")),
    "missing-array": (_resave(lambda h, f: f.pop("agent|opt|critic2|v|critic2/h2|W")), ("mismatch", "critic2/h2")),
    "short-buffer": (_resave(lambda h, f: f.update({"buffer|rew": f["buffer|rew"][:-1]})), ("does not fit",)),
    "missing-header-entry": (_resave(lambda h, f: h.pop("agent_scalars")), ("incomplete", "agent_scalars")),
}


@pytest.mark.parametrize("case", list(CHECKPOINT_EDITS))
def test_cli_damaged_or_mismatched_checkpoint(case, quick_xinet, capsys, tmp_path):
    """`train --resume` and `export` both refuse, in one line, and touch nothing."""
    run = copy_run(quick_xinet, tmp_path / "run")
    edit, needles = CHECKPOINT_EDITS[case]
    edit(run / "checkpoint.npz")
    before = snapshot(run)
    assert_user_error(capsys, cli_args(run, "--resume", method="xinet", **{**QUICK, "steps": 60}), "checkpoint",
                      *needles)
    assert_user_error(capsys, ["export", str(run), "--out", str(tmp_path / "policy.npz")], *needles)
    assert snapshot(run) == before and not (tmp_path / "policy.npz").exists()


def test_cli_checkpoint_of_another_xiref_version(quick_xinet, capsys, tmp_path, monkeypatch):
    import xiref
    run = copy_run(quick_xinet, tmp_path / "run")
    saved = ck.load(str(run / "checkpoint.npz"))[0]["xiref_version"]
    monkeypatch.setattr(xiref, "__version__", saved + ".post1")
    before = snapshot(run)
    assert_user_error(capsys, cli_args(run, "--resume", method="xinet", **QUICK), saved, saved + ".post1")
    assert snapshot(run) == before


def test_env_state_found_below_other_wrappers():
    """The episode step count lives in TimeLimit; an extra wrapper on top must not hide it (a resumed
    episode would otherwise be truncated at another step)."""
    env, _, _ = make_env("InvertedPendulum-v5", 0)
    wrapped = gym.Wrapper(env)
    wrapped.reset(seed=3)
    for _ in range(5):
        wrapped.step(np.zeros(1))
    state = get_env_state(wrapped)
    assert int(state["elapsed"]) == 5
    other, _, _ = make_env("InvertedPendulum-v5", 0)
    other_wrapped = gym.Wrapper(other)
    other_wrapped.reset(seed=4)
    set_env_state(other_wrapped, state)
    assert int(get_env_state(other)["elapsed"]) == 5
    assert np.array_equal(get_env_state(other)["mj_state"], state["mj_state"])


# ================================================================== 2. determinism: ofe-small
def test_ofe_small_same_seed_is_bit_identical(tmp_path):
    """ofe-small reads the final widths of an xinet run's summary.json; here one layer has width 0."""
    source = tmp_path / "source"
    source.mkdir()
    widths = {"ofenet/s1": 3, "ofenet/s2": 0, "ofenet/a1": 2, "ofenet/a2": 1}
    (source / "summary.json").write_text(json.dumps({"method": "xinet", "alive_units": widths}))
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        summary = T.train(tiny_config(out, method="ofe-small", widths_from=str(source), steps=400), echo=quiet)
        assert {k: v for k, v in summary["alive_units"].items() if k.startswith("ofenet/")} == widths
        runs.append(out)
    assert_same_run(*runs)
    header, arrays = load(runs[0])
    assert arrays["agent|params|ofenet/s2|W"].shape == (4 + 3, 0)
    assert np.all(np.isfinite(arrays["agent|params|ofenet/head|W"]))
    assert header["last_metrics"]["aux_loss"] > 0                 # OFENet did learn


# ================================================================== 3. numerics
LOG_SCALE = np.log([1.0, 2.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mu", [20.0, -20.0, 1e3, -1e3, 1e6, -1e6, 1e30, -1e30])
def test_tanh_gaussian_log_pi_for_huge_x(mu, dtype):
    """|a| = 1 in floating point, 1 − tanh² x = 0: Eq. (9)'s stable form still gives log(1 − tanh² x) =
    log 4 − 2|x| − 2 log1p(e^{−2|x|}) to rounding, in the input's dtype; ∂log π/∂x = 2a, ∂a/∂x = 0."""
    rng = np.random.default_rng(int(abs(np.log10(abs(mu))) * 10) + (mu > 0))
    B, A = 16, 2
    lam = (rng.normal(scale=0.5, size=(B, A)) - 1.5).astype(dtype)     # σ ≲ 0.2: |x| > 19, tanh x = ±1
    eps = rng.normal(size=(B, A)).astype(dtype)
    out = np.concatenate([np.full((B, A), mu, dtype=dtype), lam], axis=1)
    a, log_pi, cache = sac.tanh_gaussian(out, eps, LOG_SCALE.astype(dtype))
    assert a.dtype == log_pi.dtype == dtype
    assert np.all(np.isfinite(log_pi)) and np.all(a == np.sign(mu))
    ls = sac.log_std(lam.astype(np.float64))
    x = np.float64(dtype(mu)) + np.exp(ls) * eps.astype(np.float64)
    log_jac = np.log(4.0) - 2 * np.abs(x) - 2 * np.log1p(np.exp(-2 * np.abs(x)))     # log(1 − tanh² x), exact
    want = np.sum(-0.5 * eps.astype(np.float64) ** 2 - ls - 0.5 * np.log(2 * np.pi) - log_jac - LOG_SCALE, axis=1)
    np.testing.assert_allclose(log_pi, want, rtol=1e-6 if dtype == np.float32 else 1e-13)
    d_a, d_lp = rng.normal(size=(B, A)).astype(dtype), rng.normal(size=B).astype(dtype)
    g = sac.tanh_gaussian_backward(d_a, d_lp, cache)
    assert g.dtype == dtype and np.all(np.isfinite(g))
    np.testing.assert_allclose(g[:, :A], 2.0 * np.sign(mu) * d_lp[:, None] * np.ones((1, A)), rtol=1e-6)


def test_tanh_gaussian_float32_agrees_with_float64_across_the_tail():
    """x from 0 to ±15 (float32's tanh reaches 1 at |x| ≈ 9): float32 log π within 2e-5 of float64."""
    x = np.linspace(-15.0, 15.0, 601)
    out = np.stack([x, np.zeros_like(x)], axis=1)           # μ = x, λ = 0, ε = 0: one action dimension
    eps = np.zeros((len(x), 1))
    _, lp64, _ = sac.tanh_gaussian(out, eps, np.zeros(1))
    _, lp32, _ = sac.tanh_gaussian(out.astype(np.float32), eps.astype(np.float32), np.zeros(1, np.float32))
    assert lp32.dtype == np.float32 and np.all(np.isfinite(lp32))
    np.testing.assert_allclose(lp32, lp64, rtol=1e-6, atol=2e-5)
    with np.errstate(divide="ignore"):                        # the naive form in float32 is infinite there
        assert np.isinf(np.log(1.0 - np.tanh(np.float32(15.0)) ** 2))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batchnorm_constant_and_tiny_variance_features(dtype):
    """A constant feature (v = 0) and one of variance 1e-12: train-mode BN (Eq. 2') is finite forward and
    backward — the constant column becomes exactly c — and (float64) equals autograd; inference BN with a
    running variance of 0 likewise."""
    rng = np.random.default_rng(5)
    B, n, eps_bn = 8, 4, 1e-3
    u = rng.normal(size=(B, n))
    u[:, 1] = 3.75                                   # sums of 8 copies are exact: v = 0 exactly
    u[:, 2] = 1e4
    u[:, 3] = 0.5 + 1e-6 * rng.normal(size=B)
    u = u.astype(dtype)
    s, c = rng.uniform(0.5, 2.0, n).astype(dtype), rng.normal(size=n).astype(dtype)
    out, mu, var, xhat, inv_std = L.batchnorm_forward_train(u, s, c, eps_bn)
    assert out.dtype == dtype and np.all(np.isfinite(out))
    assert var[1] == 0 and var[2] == 0 and np.array_equal(out[:, 1], np.full(B, c[1])) and np.all(out[:, 2] == c[2])
    R = rng.normal(size=(B, n)).astype(dtype)
    du, ds, dc = L.batchnorm_backward_train(R, s, xhat, inv_std)
    assert all(g.dtype == dtype and np.all(np.isfinite(g)) for g in (du, ds, dc))
    if dtype == np.float64:
        def loss(t):
            return np.sum(L.batchnorm_forward_train(t["u"], t["s"], t["c"], eps_bn)[0] * R)
        want = autograd_grad(loss, {"u": u, "s": s, "c": c})
        check_tree("bn_train constant feature", {"u": du, "s": ds, "c": dc}, want)
    zero_var = np.zeros(n, dtype)
    out_e, xhat_e, inv_e = L.batchnorm_forward_eval(u, s, c, mu, zero_var, eps_bn)
    grads_e = L.batchnorm_backward_eval(R, s, xhat_e, inv_e)
    assert np.all(np.isfinite(out_e)) and all(np.all(np.isfinite(g)) for g in grads_e)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ofenet_on_a_batch_of_identical_rows(dtype):
    """Every BN layer of OFENet sees variance ~0 (all rows the same): forward and backward finite, and
    (float64) the hand-written backward equals autograd."""
    rng = np.random.default_rng(6)
    wiring = small_agent()
    specs = wiring.net_layers("ofenet")
    params, stats = randomise(*N.init_params(wiring.layers, wiring.free_widths, rng), rng)
    B = 6
    inputs = {"obs": np.repeat(rng.normal(size=(1, 5)), B, axis=0),
              "act": np.repeat(rng.uniform(-1, 1, (1, 2)), B, axis=0)}
    gates = {s.name: rng.uniform(0.2, 1.0, s.n_out) for s in specs if s.gated}
    read = ["ofenet/head", "ofenet/s1", "ofenet/a2"]
    R = {name: rng.normal(size=(B, width)) for name, width in zip(read, (4, 3, 3))}
    p = {s.name: params[s.name] for s in specs}
    if dtype == np.float64:
        (grads, d_inputs, d_gates), want = loss_and_grads(specs, p, inputs, gates, stats, True, read, R)
        check_tree("params", grads, want["params"])
        check_tree("inputs", d_inputs, want["inputs"])
        check_tree("gates θ", {k: v.sum(0) for k, v in d_gates.items()}, want["gates"])

    def cast(tree):
        return {k: cast(v) if isinstance(v, dict) else np.asarray(v, dtype) for k, v in tree.items()}

    acts, cache = N.forward(specs, cast(p), cast(inputs), cast(gates), cast(stats), bn_train=True)
    assert all(np.all(np.isfinite(a)) and a.dtype == dtype for a in acts.values())
    assert max(float(np.max(cache[s.name]["var"])) for s in specs if s.bn) < 1e-6
    grads, d_inputs, _ = N.backward(specs, cast(p), cast(gates), cache, cast(R), bn_train=True)
    assert all(np.all(np.isfinite(a)) for g in grads.values() for a in g.values())
    assert all(np.all(np.isfinite(a)) for a in d_inputs.values())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eps_xi", [0.01, 1e-4, 1e-9, 0.49])
def test_score_near_the_floor_is_finite_and_bounded(eps_xi, dtype):
    """θ̃ stays strictly inside (0, 1) and every score (22) obeys |s| ≤ 1/ε_ξ — also when ε_ξ is below
    float32's spacing at 1 (1e-9), where 1 − ε_ξ rounds to 1 — and so the none/loo and pair estimators
    (Eq. 22–23) are finite with |ĝ_j| ≤ max_i |ℓ_i − b_i| / ε_ξ."""
    theta = np.array([0.0, eps_xi / 4, eps_xi * 0.999, eps_xi, eps_xi * 1.001, 0.5, 1 - eps_xi, 1 - eps_xi / 4, 1.0],
                     dtype=dtype)
    tt = G.theta_tilde(theta, eps_xi)
    assert tt.dtype == dtype and np.all((tt > 0) & (tt < 1))
    bound = (1 + 1e-5) / eps_xi
    for value in (0.0, 1.0):
        s = G.score(np.full((3, len(theta)), value, dtype=dtype), tt)
        assert np.all(np.isfinite(s)) and np.max(np.abs(s)) <= bound, (value, s)
    rng = np.random.default_rng(8)
    B = 64
    xi1, xi2 = (G.sample_mask(rng, theta, B, eps_xi) for _ in range(2))
    ell1, ell2 = (rng.normal(loc=5e3, scale=1e3, size=B).astype(dtype) for _ in range(2))
    for baseline, b in (("none", 0.0), ("loo", (ell1.sum() - ell1) / (B - 1))):
        g = G.score_function_grad(ell1, xi1, tt, baseline)
        assert np.all(np.isfinite(g)) and np.max(np.abs(g)) <= bound * np.max(np.abs(ell1 - b)) * (1 + 1e-5)
    g = G.pair_grad(ell1, ell2, xi1, xi2, tt)
    assert np.all(np.isfinite(g)) and np.max(np.abs(g)) <= bound * np.max(np.abs(ell1 - ell2)) * (1 + 1e-5)


def test_gated_update_in_float32_with_eps_xi_below_its_resolution():
    """One float32 OFENet + SAC update with θ-steps at ε_ξ = 1e-9 (every unit at θ = 1): no NaN θ."""
    rng = np.random.default_rng(9)
    cfg = AgentConfig(ofenet=True, gated=True, hidden=(7, 6), ofe_layers=2, ofe_units=4, target_dim=4, eps_xi=1e-9)
    agent = Agent(cfg, obs_dim=5, act_dim=2, log_scale=LOG_SCALE, rng=rng, dtype=np.float32)
    batch = random_batch(rng, np.float32)
    for _ in range(2):
        m = {**agent.update_ofenet(batch, rng, update_theta=True), **agent.update_sac(batch, rng, update_theta=True)}
        assert all(np.isfinite(v) for v in m.values())
        assert all(np.all(np.isfinite(t)) and t.dtype == np.float32 for t in agent.theta.values())
        agent.prune()


# ================================================================== 4. blow-ups: stop, one line, last good checkpoint
class Sabotage(gym.Wrapper):
    """From step call `at` on, the env returns reward(r) and/or a NaN observation; from reset call
    `at_reset` on, or at every reset after `after_step` step calls, a NaN first observation."""

    def __init__(self, env, at=None, at_reset=None, reward=None, obs=False, after_step=None):
        super().__init__(env)
        self.at, self.at_reset, self.reward, self.obs, self.after_step = at, at_reset, reward, obs, after_step
        self.steps = self.resets = 0

    def step(self, action):
        o, r, terminated, truncated, info = self.env.step(action)
        k, self.steps = self.steps, self.steps + 1
        if self.at is not None and k >= self.at:
            r = self.reward(r) if self.reward else r
            o = o * np.nan if self.obs else o
        return o, r, terminated, truncated, info

    def reset(self, **kwargs):
        o, info = self.env.reset(**kwargs)
        k, self.resets = self.resets, self.resets + 1
        if (self.at_reset is not None and k >= self.at_reset) or (self.after_step and self.steps >= self.after_step):
            o = o * np.nan
        return o, info


def sabotage_env(monkeypatch, which, **kwargs):
    """Wrap the training env (seed 0) or the evaluation env (seed 1) of the next Run in Sabotage."""
    real = T.make_env

    def make(env_id, seed):
        env, scale, bias = real(env_id, seed)
        return (Sabotage(env, **kwargs) if seed == {"train": 0, "eval": 1}[which] else env), scale, bias
    monkeypatch.setattr(T, "make_env", make)


def at_step(monkeypatch, step, module, name, replacement):
    """Replace module.name by replacement(original) from the updates of run step `step` on."""
    now = {"step": 0}
    env_step = T.Run.env_step

    def counting_env_step(self):
        env_step(self)
        now["step"] = self.step
    monkeypatch.setattr(T.Run, "env_step", counting_env_step)
    original = getattr(module, name)
    broken = replacement(original)
    monkeypatch.setattr(module, name, lambda *a, **k: (broken if now["step"] >= step else original)(*a, **k))


def nan_critic_loss(original):
    def critic_loss(q, y):
        ell, dq = original(q, y)
        return ell * np.nan, dq
    return critic_loss


def nan_theta_step(original):
    def theta_step(*args):
        theta, m, v = original(*args)
        return theta * np.nan, m, v
    return theta_step


def nan_target(original):
    def polyak(target, online, tau):
        original(target, online, tau)
        target["critic1/h1"]["W"][0, 0] = np.nan
    return polyak


BLOWUPS = {
    # name: (set-up, needles, step named in the message (None: any in 451..600), last good checkpoint)
    "nan-reward": (lambda mp: sabotage_env(mp, "train", at=450, reward=lambda r: np.nan),
                   ("non-finite reward", "(step)"), 450, 400),
    "nan-observation": (lambda mp: sabotage_env(mp, "train", at=450, obs=True),
                        ("non-finite observation", "(step)"), 450, 400),
    "nan-observation-at-reset": (lambda mp: sabotage_env(mp, "train", after_step=450),
                                 ("non-finite observation", "(reset)"), None, 400),
    "nan-evaluation": (lambda mp: sabotage_env(mp, "eval", at_reset=1),
                       ("non-finite observation", "(evaluation reset)"), 400, 200),
    "huge-reward": (lambda mp: sabotage_env(mp, "train", at=450, reward=lambda r: 1e30),
                    ("non-finite", "critic1_loss"), None, 400),
    "nan-loss": (lambda mp: at_step(mp, 450, sac, "critic_loss", nan_critic_loss),
                 ("non-finite", "critic1_loss"), 450, 400),
    # a NaN θ (Eq. 32) reaches a loss of the same step (critics' θ the actor loss, the actor's the α loss)
    "nan-theta": (lambda mp: at_step(mp, 450, agent_module, "theta_step", nan_theta_step),
                  ("non-finite", "actor_loss"), 450, 400),
    # NaN in a target critic right at a checkpoint step: every loss of that step is still finite
    "nan-target-at-checkpoint": (lambda mp: at_step(mp, 400, sac, "polyak", nan_target),
                                 ("non-finite", "target critic1/h1 W"), 400, 200),
}


@pytest.mark.parametrize("case", list(BLOWUPS))
def test_blow_up_stops_with_one_line_and_keeps_the_last_good_checkpoint(case, xinet_run, capsys, tmp_path,
                                                                          monkeypatch):
    setup, needles, step, good = BLOWUPS[case]
    run = tmp_path / "run"
    with monkeypatch.context() as mp:
        setup(mp)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            line = assert_user_error(capsys, cli_args(run, **VARIANTS["xinet"]), *needles, "stopped",
                                     f"the last good checkpoint (step {good}) is kept in {run}")
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]
    named = int(re.search(r"at step (\d+)", line).group(1))
    assert named == step if step is not None else 450 <= named <= 600, line     # the first reset from step 450 on
    # the checkpoint on disk loads and is, array for array, the uninterrupted run's checkpoint at `good`
    header, arrays = load(run)
    assert header["step"] == good
    _, want = load(xinet_run(good))
    assert sorted(arrays) == sorted(want)
    for k in want:
        assert arrays[k].dtype == want[k].dtype and arrays[k].tobytes() == want[k].tobytes(), k
    assert not (run / "summary.json").exists()
    if case == "nan-reward":       # and a resume from it ends exactly as the uninterrupted run
        assert main(cli_args(run, "--resume", "--quiet", **VARIANTS["xinet"])) == 0
        assert_same_run(xinet_run(TINY["steps"]), run)


# ================================================================== 5. pruning extremes
OBS, ACT = 5, 2


def random_batch(rng, dtype=np.float64, n=16):
    return tuple(np.asarray(x, dtype) for x in (rng.normal(size=(n, OBS)), rng.uniform(-1, 1, (n, ACT)),
                                                  rng.normal(size=n), rng.normal(size=(n, OBS)),
                                                  (rng.random(n) < 0.2).astype(float)))


@pytest.mark.parametrize("gate_kind", ["theta", "xi"])
@pytest.mark.parametrize("bn_train", [True, False])
def test_emptied_densenet_layers_gradients_and_cost(bn_train, gate_kind):
    """ofenet/s1 and ofenet/a2 pruned to width 0 (and some units elsewhere): the hand-written backward of the
    whole agent equals autograd's, including the (B, 0) outputs; C(θ), ∂C/∂θ (against autograd) and the
    multiply-adds stay consistent with the real arrays."""
    rng = np.random.default_rng(10 + 2 * bn_train + (gate_kind == "xi"))
    wiring = small_agent()
    params, stats = randomise(*N.init_params(wiring.layers, wiring.free_widths, rng), rng)
    theta = {k: rng.uniform(0.2, 1.0, v.shape) for k, v in WR.ones_theta(wiring).items()}
    theta["ofenet/s1"][:] = 0.0
    theta["ofenet/a2"][:] = 0.0
    theta["ofenet/s2"][1] = theta["actor/h1"][[0, 3]] = theta["critic2/h2"][2] = 0.0
    P.prune_zero_units(wiring, theta, [params, stats])
    assert theta["ofenet/s1"].shape == theta["ofenet/a2"].shape == (0,)
    B = 6
    gates = ({k: t for k, t in theta.items()} if gate_kind == "theta" else
             {k: (rng.random((B, len(t))) < 0.7).astype(float) for k, t in theta.items()})
    inputs = {"obs": rng.normal(size=(B, OBS)), "act": rng.uniform(-1, 1, (B, ACT))}
    read = ["ofenet/head", "ofenet/s1", "ofenet/a2", "ofenet/s2", "actor/out", "critic1/out", "critic2/h2"]
    acts, _ = N.forward(wiring.layers, params, inputs, gates, stats, bn_train)
    assert acts["ofenet/s1"].shape == acts["ofenet/a2"].shape == (B, 0)
    R = {name: rng.normal(size=acts[name].shape) for name in read}
    (grads, d_inputs, d_gates), want = loss_and_grads(wiring.layers, params, inputs, gates, stats, bn_train, read, R)
    check_tree("params", grads, want["params"])
    check_tree("inputs", d_inputs, want["inputs"])
    if gate_kind == "xi":
        check_tree("gates ξ", d_gates, want["gates"])
    else:
        check_tree("gates θ", {k: v.sum(0) for k, v in d_gates.items()}, want["gates"])
    assert grads["ofenet/s1"]["W"].shape == params["ofenet/s1"]["W"].shape == (OBS, 0)
    # cost (Eq. 26–30) at the pruned θ and at the vertex θ = 1 of the current widths
    cg = WR.cost_grad(wiring, theta)
    check_tree("∂C/∂θ", cg, autograd_grad(lambda t: WR.cost(wiring, t), theta))
    ones = {k: np.ones(len(t)) for k, t in theta.items()}
    assert WR.cost(wiring, ones) == WR.param_count(params)
    assert WR.macs(wiring, ones) == sum(p["W"].size for p in params.values())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_all_of_ofenet_pruned_agent_acts_and_updates(dtype):
    """Every OFENet unit at θ = 0 and pruned: the features are the raw (o) and (o, a), the actor is an MLP on
    the observation (checked by hand), and OFENet (its head now linear in [o, a]) and SAC keep updating."""
    rng = np.random.default_rng(11)
    cfg = AgentConfig(ofenet=True, gated=True, hidden=(7, 6), ofe_layers=2, ofe_units=4, target_dim=4)
    agent = Agent(cfg, obs_dim=OBS, act_dim=ACT, log_scale=LOG_SCALE, rng=rng, dtype=dtype)
    for name in agent.wiring.gated_names("ofenet"):
        agent.theta[name] = np.zeros_like(agent.theta[name])
    assert agent.prune() == {name: 4 for name in agent.wiring.gated_names("ofenet")}
    obs, act = (np.asarray(x, dtype) for x in (rng.normal(size=(9, OBS)), rng.uniform(-1, 1, (9, ACT))))
    feats = agent.features(obs, act)
    wr = agent.wiring
    assert np.array_equal(L.concat_forward([feats[s] for s in wr.layer("actor/h1").inputs]), obs)
    assert np.array_equal(L.concat_forward([feats[s] for s in wr.layer("critic1/h1").inputs]),
                          np.concatenate([obs, act], axis=1))
    p, th = agent.params, agent.gates("actor")                   # the expected gates: θ̃ (Eq. 40) at the defaults
    h = np.maximum(obs @ p["actor/h1"]["W"] + p["actor/h1"]["b"], 0) * th["actor/h1"]
    h = np.maximum(h @ p["actor/h2"]["W"] + p["actor/h2"]["b"], 0) * th["actor/h2"]
    by_hand = np.tanh((h @ p["actor/out"]["W"] + p["actor/out"]["b"])[:, :ACT])
    np.testing.assert_allclose(agent.act(obs, rng, deterministic=True), by_hand, rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(agent.act(obs, rng)))
    head_before = p["ofenet/head"]["W"].copy()
    actor_before = p["actor/h1"]["W"].copy()
    for _ in range(3):
        batch = random_batch(rng, dtype)
        m = {**agent.update_ofenet(batch, rng, update_theta=True), **agent.update_sac(batch, rng, update_theta=True)}
        assert all(np.isfinite(v) for v in m.values()), m
        agent.prune()
    assert agent.params["ofenet/head"]["W"].shape == (OBS + ACT, 4) and agent.params["ofenet/head"]["W"].dtype == dtype
    assert not np.array_equal(agent.params["ofenet/head"]["W"], head_before)
    assert agent.params["actor/h1"]["W"].shape[0] == OBS and not np.array_equal(
        agent.params["actor/h1"]["W"], actor_before[:, :agent.params["actor/h1"]["W"].shape[1]])
    assert WR.cost(wr, {k: np.ones(len(t)) for k, t in agent.theta.items()}) == WR.param_count(agent.params)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mlp_layer_is_held_at_its_last_unit(dtype):
    """A price that makes every unit worthless (β = 1e4, η_θ = 1, no momentum): each update would take all
    of a critic's or the actor's hidden layer to θ = 0; the unit with the largest θ before the step is held
    at θ = ε_ξ instead and never pruned, and the critic keeps computing and learning through it."""
    rng = np.random.default_rng(12)
    cfg = AgentConfig(ofenet=False, gated=True, hidden=(7, 6), beta=1e4, eta_theta=1.0, mu_theta=0.0, k_theta=0.0,
                      **SHARED_KNOBS)
    agent = Agent(cfg, obs_dim=OBS, act_dim=ACT, log_scale=LOG_SCALE, rng=rng, dtype=dtype)
    agent.theta["critic1/h1"] = np.array([0.9, 0.9, 0.95, 1.0, 0.9, 0.9, 0.9], dtype=dtype)
    column = agent.params["critic1/h1"]["W"][:, 3].copy()
    others = np.delete(agent.params["critic1/h1"]["W"], 3, axis=1)
    for step in range(6):
        batch = random_batch(rng, dtype)
        agent.update_sac(batch, rng, update_theta=True)
        agent.prune()
        for name in agent.wiring.gated_names():
            assert len(agent.theta[name]) == 1, (step, name)
            assert agent.theta[name].dtype == dtype and agent.theta[name][0] == dtype(cfg.eps_xi), (step, name)
        if step == 0:       # the held unit of critic1/h1 is the one that had the largest θ
            kept = agent.params["critic1/h1"]["W"][:, 0]
            assert np.max(np.abs(kept - column)) < 1e-2
            assert np.min(np.max(np.abs(others - kept[:, None]), axis=0)) > 1e-2
        q1, q2, _ = agent.q_values({}, agent.features(batch[0], batch[1]), batch[1])
        assert np.all(np.isfinite(q1)) and np.all(np.isfinite(q2))
    before = agent.params["critic1/h1"]["W"].copy()
    agent.update_sac(random_batch(rng, dtype), rng, update_theta=True)
    assert not np.array_equal(agent.params["critic1/h1"]["W"], before)


def test_resume_after_all_pruning_finished_is_bit_identical(tmp_path):
    """β = 1000: by the step-400 checkpoint OFENet is gone and every MLP layer is at its last unit; killed at
    500 and resumed, the run ends byte-identical to the uninterrupted one."""
    huge = dict(method="xinet", beta=1000.0, eta_theta=0.5, **SHARED_KNOBS)
    a, b = tmp_path / "a", tmp_path / "b"
    summary = T.train(tiny_config(a, **huge), echo=quiet)
    with pytest.raises(Killed):
        T.train(tiny_config(b, **huge), echo=kill_at_log(500))
    header, arrays = load(b)
    assert header["step"] == 400
    widths = {k[len("agent|theta|"):]: len(v) for k, v in arrays.items() if k.startswith("agent|theta|")}
    assert widths == {k: (0 if k.startswith("ofenet/") else 1) for k in widths} and len(widths) == 10
    assert {k: v for k, v in summary["alive_units"].items() if k in widths} == widths   # nothing pruned later
    T.train(tiny_config(b, **huge), resume=True, echo=quiet)
    assert_same_run(a, b)


# ================================================================== 6. settings checked by xiref/config.py and plot.py
def _summary_dir(tmp_path, text):
    d = tmp_path / "source"
    d.mkdir()
    (d / "summary.json").write_text(text)
    return str(d)


@pytest.mark.parametrize("make_overrides, needle", [
    pytest.param(lambda t: dict(eta_theta=float("inf")), "--eta-theta", id="eta_theta=inf"),
    pytest.param(lambda t: dict(eps_bn=0.0), "--eps-bn", id="eps_bn=0"),
    pytest.param(lambda t: dict(bn_momentum=1.5), "--bn-momentum", id="bn_momentum>1"),
    pytest.param(lambda t: dict(lam_w=-1.0), "--lam-w", id="lam_w<0"),
    pytest.param(lambda t: dict(method="ofe", ofe_widths=(3, 3)), "--ofe-widths",
                 id="ofe_widths-length"),
    pytest.param(lambda t: dict(method="ofe", ofe_widths=(3, -3, 2, 2)), "--ofe-widths",
                 id="ofe_widths<0"),
    pytest.param(lambda t: dict(method="ofe-small", widths_from=_summary_dir(t, "{not json")), "summary.json",
                 id="widths_from-corrupt-summary"),
    pytest.param(lambda t: dict(method="ofe-small", widths_from=_summary_dir(t, json.dumps(
        {"method": "xinet", "alive_units": {f"ofenet/{b}{k}": 2 for b in "sa" for k in (1, 2, 3)}}))),
        "layers", id="widths_from-3-layer-run"),
])
def test_cli_rejects_bad_numeric_and_width_settings(make_overrides, needle, capsys, tmp_path):
    assert_user_error(capsys, cli_args(tmp_path / "run", **{**QUICK, **make_overrides(tmp_path)}), needle)


def test_plot_rejects_a_run_with_unparsable_config(quick_xinet, capsys, tmp_path):
    run = copy_run(quick_xinet, tmp_path / "run")
    (run / "config.json").write_text("{not json")
    assert_user_error(capsys, ["plot", str(run), "--out", str(tmp_path / "c.png")], "config.json")


def test_sigterm_stops_like_ctrl_c_and_releases_the_lock(tmp_path):
    """kill PID during a run: one line, exit 130, no run.lock left, and the run resumes from its checkpoint."""
    run = tmp_path / "run"
    argv = cli_args(run, "--quiet", method="xinet", **{**QUICK, "steps": 100_000, "checkpoint_every": 400})
    proc = subprocess.Popen([sys.executable, "-m", "xiref"] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    try:
        deadline = time.time() + 120
        while not (run / "checkpoint.npz").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert (run / RL.LOCK_NAME).exists()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines() == ["xiref: interrupted; the last checkpoint is kept"]
    assert not (run / RL.LOCK_NAME).exists() and not (run / "checkpoint.npz.tmp").exists()
    assert main(cli_args(run, "--resume", "--quiet", method="xinet",
                         **{**QUICK, "steps": 2000, "checkpoint_every": 400})) == 0   # > the kill's checkpoint
