"""examples/experiments/gate_bias.py: the expected-gate vs sampled-gate critic comparison.

The sampling floor alone makes them differ: with every θ = 1 a mask still drops each unit with probability
ε_ξ (Eq. 4), so the sampled critic's mean differs from the expected-gate critic's; with ε_ξ → 0 the masks
are all ones and both are the same numbers. The script runs on a real (tiny) checkpoint and refuses runs
without gates or without a checkpoint in one line."""
import json
import os
import sys

import numpy as np
import pytest

from test_train import QUICK, quiet, tiny_config
from xiref import train as T

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "experiments"))
import gate_bias  # noqa: E402


def test_reports_every_critic_and_the_actors_theta(xinet_dir, capsys):
    assert gate_bias.main([str(xinet_dir), "--batch", "64", "--draws", "8"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])[0]
    assert res["step"] == 400
    for k in ("critic1", "critic2"):
        c = res[k]
        assert np.isfinite([c["q_expected"], c["q_sampled"], c["epsilon"], c["epsilon_se"]]).all()
        assert c["epsilon_se"] > 0 and c["gamma_eff"] == pytest.approx(res["gamma"] * (1 + c["epsilon"]))
    agent = gate_bias.load_run(str(xinet_dir)).agent
    theta = np.concatenate([agent.theta["actor/h1"], agent.theta["actor/h2"]])     # the actor's two gated layers
    a = res["actor"]
    assert a["theta_median"] == pytest.approx(np.median(theta)) and a["theta_q10"] <= a["theta_median"]
    assert a["theta_below_1"] == pytest.approx(np.mean(theta < 1.0))


@pytest.mark.parametrize("eps_xi, same", [(1e-12, True), (0.2, False)])
def test_sampling_floor_alone_separates_the_two(xinet_dir, eps_xi, same):
    run = gate_bias.load_run(str(xinet_dir))
    agent = run.agent
    for s in agent.wiring.layers:
        if s.gated:
            agent.theta[s.name] = np.ones_like(agent.theta[s.name])
    agent.cfg.eps_xi, agent.cfg.expected_gates = eps_xi, "theta"     # read as θ = 1: exactly the all-ones mask
    rng = np.random.default_rng(0)
    obs, act, _, _, _ = run.buffer.sample(rng, 64)
    q_exp, q_s = gate_bias.critic_bias(agent, "critic1", obs, act, rng, 4)
    assert q_s.shape == (4, 64)
    assert np.array_equal(q_s[0], q_exp) == same and np.array_equal(q_s[-1], q_exp) == same


def test_reads_a_moved_run_from_where_it_is_now(xinet_dir, tmp_path):
    """config.json keeps the directory a run was made in; a moved or copied run must be measured from its
    own checkpoint, not from whatever now sits at the old path."""
    import shutil
    moved = tmp_path / "moved"
    shutil.copytree(xinet_dir, moved)
    with open(moved / "config.json") as f:
        cfg = json.load(f)
    cfg["out"] = str(tmp_path / "nowhere")            # the old place no longer holds this run
    with open(moved / "config.json", "w") as f:
        json.dump(cfg, f)
    run = gate_bias.load_run(str(moved))
    assert run.step == 400 and run.cfg.out == str(moved)


def test_refuses_runs_without_gates_or_checkpoint(tmp_path, capsys):
    sac = tmp_path / "sac"
    T.train(tiny_config(sac, method="sac", **QUICK), echo=quiet)
    for path, needle in ((sac, "no gates"), (tmp_path / "missing", "no config.json and checkpoint.npz")):
        assert gate_bias.main([str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("gate_bias: error:") and needle in err[0]



def expected_over_sampled(kind, eps_xi=0.05, draws=400):
    """Critic 1 of a fresh gated agent (64 × 64, every θ = 1): the slope of its expected-gate Q on its mean Q under
    sampled masks, both less the output bias, minus 1 — the critic's overestimate when the gates are read as `kind`."""
    from xiref.agent import Agent, AgentConfig
    cfg = AgentConfig(hidden=(64, 64), gated=True, eps_xi=eps_xi, expected_gates=kind)
    agent = Agent(cfg, 5, 2, np.zeros(2), np.random.default_rng(1))
    rng = np.random.default_rng(0)
    obs, act = rng.standard_normal((256, 5)), rng.uniform(-1, 1, (256, 2))
    q_exp, q_s = gate_bias.critic_bias(agent, "critic1", obs, act, rng, draws)
    b = agent.params["critic1/out"]["b"][0]
    q_e, q_m = q_exp - b, q_s.mean(axis=0) - b                              # (B,), (B,)
    return float(q_e @ q_m / (q_m @ q_m)) - 1


def test_reading_the_gates_mean_removes_the_floors_bias():
    """With every θ = 1 a critic's two gated hidden layers run at 1 − ε_ξ of the expected-gate activations under
    sampled masks, so reading it with θ (Eq. 3) overestimates it by ≈ (1 − ε_ξ)^(−2) − 1 (EXPERIMENTS.md E4); with
    θ̃ = E[ξ] (Eq. 40) only the ReLUs' curvature is left, a small fraction of that."""
    floor = (1 - 0.05) ** -2 - 1                                           # 0.108
    assert abs(expected_over_sampled("theta") - floor) < 0.2 * floor     # the bias Eq. (40) removes
    assert abs(expected_over_sampled("tilde")) < 0.1 * floor


def test_reads_the_gates_as_asked(xinet_dir, capsys):
    """--expected-gates overrides how the run read its gates; at the tiny run's ε_ξ and θ the two readings differ."""
    eps = {}
    for kind in ("theta", "tilde"):
        assert gate_bias.main([str(xinet_dir), "--batch", "64", "--draws", "8", "--expected-gates", kind]) == 0
        res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])[0]
        assert res["expected_gates"] == kind
        eps[kind] = res["critic1"]["epsilon"]
    assert eps["theta"] != eps["tilde"]
    for bad in ("mean", ""):
        assert gate_bias.main([str(xinet_dir), "--expected-gates", bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"gate_bias: error: unknown expected-gates {bad!r}; choose one of theta, tilde"]
