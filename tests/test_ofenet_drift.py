"""examples/experiments/ofenet_drift.py and examples/experiments/theta_walk.py: what moves a network's θ, on a real (tiny) checkpoint.

A unit whose output no layer reads (its rows zeroed in every consumer) cannot change the auxiliary loss:
switching it on or off for the whole batch (C), or setting its expected gate to 0 (E), must give exactly 0 —
common random numbers make this exact, so a wrong column or a mask that leaks into other units fails it.
The pair estimator (A) is 0 only in expectation: within a few standard errors. The θ-walk must leave
weights, BN statistics, Adam moments (and for a SAC net the target critics, α and the other nets' θ)
untouched in `frozen` mode and move them in `live` mode, and must count units that reach θ = 0 (a huge price
drives every unit there)."""
import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "experiments"))
import ofenet_drift  # noqa: E402
import theta_walk  # noqa: E402
from gate_bias import load_run  # noqa: E402


def silence(agent, name, j):
    """Zero the rows unit j of layer `name` feeds in every consumer's W: its output is read by no one."""
    for spec in agent.wiring.consumers(name):
        rows = agent.wiring.row_slice(spec, name, agent.theta)
        W = agent.params[spec.name]["W"].copy()
        W[rows.start + j, :] = 0.0
        agent.params[spec.name] = {**agent.params[spec.name], "W": W}


def test_a_unit_nobody_reads_changes_nothing(xinet_dir, monkeypatch):
    run = load_run(str(xinet_dir))
    name = next(s.name for s in run.agent.specs("ofenet") if s.gated)
    silence(run.agent, name, 0)
    monkeypatch.setattr(ofenet_drift, "load_run", lambda _: run)
    r = ofenet_drift.measure(str(xinet_dir), batches=12, batch=32, seed=0)
    units = {(u["layer"], u["unit"]): u for u in r["per_unit"]}
    silent, others = units.pop((name, 0)), list(units.values())
    assert silent["C"] == [0.0, 0.0] and silent["E"] == [0.0, 0.0]
    mean, se = silent["A"]
    assert se > 0 and abs(mean) < 4 * se
    # the check can fail: units that are read do move the loss
    assert any(abs(u["C"][0]) > 0 for u in others) and any(abs(u["E"][0]) > 0 for u in others)
    assert r["all"]["n"] == len(r["per_unit"]) == sum(r[k]["n"] for k in ("theta<1", "theta=1") if k in r)


def test_drift_cli_prints_one_json_line_and_refuses_bad_input(xinet_dir, tmp_path, capsys):
    out = tmp_path / "drift.json"
    assert ofenet_drift.main([str(xinet_dir), "--batches", "2", "--batch", "16", "--out", str(out)]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["step"] == 400 and "per_unit" not in last and len(json.loads(out.read_text())["per_unit"]) > 0
    for argv, needle in (([str(xinet_dir), "--batches", "1"], "--batches"), ([str(tmp_path / "none")], "no config")):
        assert ofenet_drift.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("ofenet_drift: error:") and needle in err[0]


def state_arrays(run, net):
    """Every weight, BN statistic and Adam moment an update of `net` may touch, and the other nets' θ."""
    a = run.agent
    nets = ["ofenet"] if net == "ofenet" else ["actor", "critic1", "critic2"]
    layers = [s.name for n in nets for s in a.specs(n)]
    out = [v for n in layers for v in list(a.params[n].values()) + list(a.stats.get(n, {}).values())]
    out += [v for n in nets for o in (a.opt[n].m, a.opt[n].v) for layer in o.values() for v in layer.values()]
    if net != "ofenet":
        out += [v for layer in a.target.values() for v in layer.values()] + [a.log_alpha["alpha"]["log_alpha"]]
    return out + [a.theta[k] for k in a.theta if not k.startswith(net)]


@pytest.mark.parametrize("net", ["ofenet", "critic1"])
@pytest.mark.parametrize("frozen", [True, False])
def test_walk_freezes_only_what_it_says(xinet_dir, frozen, net):
    before = state_arrays(load_run(str(xinet_dir)), net)
    run, theta0, theta1, hit0 = theta_walk.walk(str(xinet_dir), 5, 0, frozen,
                                                {f"eta_theta_{net.rstrip('12')}": 1.0}, net)
    after = state_arrays(run, net)
    assert len(before) == len(after) and all(np.array_equal(a, b) for a, b in zip(before, after)) == frozen
    assert not np.array_equal(theta0, theta1)                          # θ moves in both modes


def test_walk_counts_units_that_reach_zero(xinet_dir, capsys):
    _, theta0, theta1, hit0 = theta_walk.walk(str(xinet_dir), 3, 0, True,
                                              {"beta_ofenet": 1e6, "eta_theta_ofenet": 1.0, "mu_theta": 0.0,
                                               "k_theta": 0.0})
    assert hit0.all() and np.all(theta1 == 0)
    _, theta0, theta1, hit0 = theta_walk.walk(str(xinet_dir), 3, 0, True, {"eta_theta_ofenet": 1e-12})
    assert np.allclose(theta0, theta1, atol=1e-6) and np.array_equal(hit0, theta0 <= 0)
    classes = theta_walk.classes(theta0[theta0 > 0], theta1[theta0 > 0], hit0[theta0 > 0])
    assert sum(c["n"] for c in classes) == int(np.sum(theta0 > 0))


@pytest.mark.parametrize("bad, needle", [("eps_xi_ofenet=0.7", "--eps-xi-ofenet"), ("ofe_units=3", "not a float"),
                                         ("mu_theta=x", "not a number"), ("nonsense", "not a float"),
                                         ("baseline=mean", "unknown baseline")])
def test_walk_refuses_bad_settings_in_one_line(xinet_dir, capsys, bad, needle):
    assert theta_walk.main([str(xinet_dir), "--steps", "2", "--set", bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("theta_walk: error:") and needle in err[0]


def test_walk_cli_runs_a_critic(xinet_dir, capsys):
    assert theta_walk.main([str(xinet_dir), "--net", "critic2", "--steps", "2", "--set", "eps_xi_critic=0.01"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["net"] == "critic2" and last["overrides"] == {"eps_xi_critic": 0.01}
    assert last["live"]["units"] == sum(len(v) for k, v in load_run(str(xinet_dir)).agent.theta.items()
                                        if k.startswith("critic2"))


def test_kick_noise_by_hand():
    """η_θ/L̄ · |Δℓ|/(2B ε_ξ) with η_θ = 0.05, L̄ = 0.5, B = 2, ε_ξ = 0.1: |Δℓ| / 4, and P(drop) = 1 − 0.9⁴."""
    d = np.array([4.0, -8.0, 0.0, 2.0])
    n = ofenet_drift.kick_noise(np.array([1.0, 2.0, 3.0, 6.0]), d, 0.1, 0.05, 0.5, 2)
    assert n["loss_mean"] == 3.0 and n["diff_max"] == 8.0 and n["kick_max"] == pytest.approx(2.0)
    assert n["kick_sd"] == pytest.approx(np.std(d) / 4) and n["share_of_kicks_above_1"] == 0.5
    assert n["drop_probability_per_update"] == pytest.approx(1 - 0.9 ** 4)


def test_walk_with_another_baseline(xinet_dir, capsys):
    """`--set baseline=…` walks the same state with another estimator (Eq. 23): the same random numbers, so a
    different θ after the walk can only come from the estimator."""
    assert theta_walk.parse_overrides(["baseline=loo", "eta_theta_ofenet=0.5"]) == {"baseline": "loo",
                                                                                   "eta_theta_ofenet": 0.5}
    after = {b: theta_walk.walk(str(xinet_dir), 2, 0, True, {"baseline": b, "eta_theta_ofenet": 0.5})[2]
             for b in ("pair", "loo", "none")}
    assert not np.allclose(after["pair"], after["loo"]) and not np.allclose(after["loo"], after["none"])
    assert theta_walk.main([str(xinet_dir), "--steps", "1", "--set", "baseline=none"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["overrides"] == {"baseline": "none"}
