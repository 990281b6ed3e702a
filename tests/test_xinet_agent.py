"""XiNet at the level of the whole agent and of finished runs (xiref/agent.py, prune.py, export.py, train.py;
docs/METHOD.md §7–§9).

* Agent.prune(): deleting every unit at θ = 0 across OFENet (one layer emptied completely), actor and both
  critics leaves every expected-gate output of the agent unchanged to 1e-12 — deterministic and stochastic
  actions, online and target Q-values, the OFENet head — and leaves params, BN stats, targets, Adam moments,
  θ and m_θ mutually consistent (entry by entry), so training continues on the compacted state;
* a tiny run with a very large β: θ stays in [0, 1], every actor/critic hidden layer keeps a unit, alive
  widths only shrink, the run ends smaller than it started;
* `xiref export`: the folded, ungated, BN-free export acts exactly like the restored run's tanh(μ); its keys
  and widths; user errors;
* --method ofe-small built from a pruned run is ungated with the pruned OFENet widths (test_train.py checks
  the trained widths; here the agent's gating and the emptied-layer case).
"""
import copy
import csv
import functools
import io
import json

import numpy as np
import pytest

from pruneutil import check_container_shrunk, kept_index_maps
from xiref import checkpoint as ck
from xiref import layers as L
from xiref import network as N
from xiref import train as T
from xiref import wiring as WR
from xiref import xinet
from xiref.agent import SHARED_KNOBS, Agent, AgentConfig
from xiref.cli import main
from xiref.envs import UserError
from xiref.export import load_policy

OBS, ACT, B = 5, 2, 11


# ================================================================== 1. Agent.prune is exact
def make_agent(seed=0, expected_gates="theta"):
    rng = np.random.default_rng(seed)
    # ε_ξ = 0.3: units at θ = 0 are still sampled on often, so their Adam moments become non-zero
    cfg = AgentConfig(ofenet=True, gated=True, hidden=(7, 6), ofe_layers=2, ofe_units=4, target_dim=4, eps_xi=0.3,
                      expected_gates=expected_gates)
    agent = Agent(cfg, obs_dim=OBS, act_dim=ACT, log_scale=np.log([1.0, 2.0]), rng=rng)
    return agent, rng


ZEROS = {"ofenet/s1": [0, 2], "ofenet/a2": [0, 1, 2, 3], "actor/h1": [1, 4], "critic1/h2": [0, 5],
         "critic2/h1": [3]}


def impose_zeros(agent):
    for name, idx in ZEROS.items():
        agent.theta[name][idx] = 0.0


def random_batch(rng, n=16):
    return (rng.normal(size=(n, OBS)), rng.uniform(-1, 1, (n, ACT)), rng.normal(size=n),
            rng.normal(size=(n, OBS)), (rng.random(n) < 0.2).astype(float))


def randomised_agent(seed=0, expected_gates="theta"):
    agent, rng = make_agent(seed, expected_gates)
    for p in agent.params.values():
        p["b"] = rng.normal(size=p["b"].shape)
        if "s" in p:
            p["s"] = rng.uniform(0.5, 1.5, p["s"].shape)
            p["c"] = rng.normal(size=p["c"].shape)
    for st in agent.stats.values():
        st["mean"] = rng.normal(size=st["mean"].shape)
        st["var"] = rng.uniform(0.5, 2.0, st["var"].shape)
    agent.target = copy.deepcopy({k: v for k, v in agent.params.items() if k.startswith("critic")})
    for p in agent.target.values():                  # targets differ from the online critics
        for k in p:
            p[k] = p[k] + 0.05 * rng.normal(size=p[k].shape)
    for k in agent.theta:
        agent.theta[k] = rng.uniform(0.05, 1.0, agent.theta[k].shape)
    impose_zeros(agent)
    for _ in range(3):                               # non-zero Adam moments, BN running stats moved
        batch = random_batch(rng)
        agent.update_ofenet(batch, rng, update_theta=False)
        agent.update_sac(batch, rng, update_theta=False)
    impose_zeros(agent)
    agent.m_theta = {k: rng.normal(size=v.shape) for k, v in agent.theta.items()}
    return agent, rng


def agent_outputs(agent, obs, act, eps):
    feats = agent.features(obs, act)
    a, log_pi = agent.policy(agent.features(obs), eps)
    q1, q2, _ = agent.q_values({}, feats, act)
    t1, t2, _ = agent.q_values(agent.target, feats, act)
    acts, _ = N.forward(agent.specs("ofenet"), agent.params, {"obs": obs, "act": act}, agent.gates("ofenet"),
                        agent.stats, bn_train=False, eps_bn=agent.cfg.eps_bn)
    return {"act_det": agent.act(obs, None, deterministic=True), "act_stoch": a, "log_pi": log_pi,
            "q1": q1, "q2": q2, "q1_target": t1, "q2_target": t2, "head": acts["ofenet/head"]}


def assert_consistent(agent):
    """Every container's shapes follow the current widths (len θ) of the wiring."""
    wr, th = agent.wiring, agent.theta
    for s in wr.layers:
        n_in, n_out = sum(wr.source_widths(s, th)), wr.out_width(s, th)
        p = agent.params[s.name]
        assert p["W"].shape == (n_in, n_out), s.name
        assert all(p[k].shape == (n_out,) for k in p if k != "W"), s.name
        if s.bn:
            assert all(v.shape == (n_out,) for v in agent.stats[s.name].values()), s.name
        if s.gated:
            assert th[s.name].shape == agent.m_theta[s.name].shape == (n_out,), s.name
    for net, o in agent.opt.items():
        names = {s.name for s in wr.net_layers(net)}
        assert set(o.m) == set(o.v) == names, net
        for layer in names:
            for k, a in agent.params[layer].items():
                assert o.m[layer][k].shape == o.v[layer][k].shape == a.shape, (net, layer, k)
    assert set(agent.target) == {s.name for s in wr.layers if s.net.startswith("critic")}
    for layer, p in agent.target.items():
        assert {k: a.shape for k, a in p.items()} == {k: a.shape for k, a in agent.params[layer].items()}, layer


@pytest.mark.parametrize("expected_gates", ["theta", "tilde"])
def test_agent_prune_preserves_every_output_and_state(expected_gates):
    """However the expected-gate forward reads the gates (θ, Eq. 3, or θ̃, Eq. 40, which reads 0 at θ = 0 too)."""
    agent, rng = randomised_agent(seed={"theta": 0, "tilde": 1}[expected_gates], expected_gates=expected_gates)
    wr = agent.wiring
    # the setup is non-trivial: moments of soon-pruned units are non-zero, targets differ
    assert np.all(agent.opt["ofenet"].m["ofenet/a2"]["W"] != 0)
    assert np.all(np.any(agent.opt["ofenet"].v["ofenet/s1"]["W"][:, [0, 2]] != 0, axis=0))
    assert np.all(np.any(agent.opt["critic2"].m["critic2/h2"]["W"][[3]] != 0, axis=1))
    assert np.any(agent.opt["actor"].v["actor/h2"]["W"][[1, 4]] != 0)        # rows of pruned actor/h1 units
    assert not np.array_equal(agent.target["critic1/h1"]["W"], agent.params["critic1/h1"]["W"])
    assert all(np.all((t >= 0) & (t <= 1)) for t in agent.theta.values())

    obs, act = rng.normal(size=(B, OBS)), rng.uniform(-1, 1, (B, ACT))
    eps = rng.standard_normal((B, ACT))
    before = agent_outputs(agent, obs, act, eps)
    snap = copy.deepcopy(dict(params=agent.params, stats=agent.stats, target=agent.target,
                              m={n: o.m for n, o in agent.opt.items()}, v={n: o.v for n, o in agent.opt.items()},
                              theta=agent.theta, m_theta=agent.m_theta))
    maps = kept_index_maps(wr, agent.theta)
    cost_before = float(WR.cost(wr, agent.theta))
    params_before = WR.param_count(agent.params)

    removed = agent.prune()
    assert removed == {k: len(v) for k, v in ZEROS.items()}
    assert agent.theta["ofenet/a2"].shape == (0,) and agent.params["ofenet/a2"]["W"].shape[1] == 0

    after = agent_outputs(agent, obs, act, eps)
    for k in before:
        assert after[k].shape == before[k].shape, k
        np.testing.assert_allclose(after[k], before[k], rtol=0, atol=1e-12, err_msg=k)

    # containers shrink exactly as independent index bookkeeping says
    check_container_shrunk("params", snap["params"], agent.params, maps)
    check_container_shrunk("stats", snap["stats"], agent.stats, maps)
    check_container_shrunk("target", snap["target"], agent.target, maps)
    for net, o in agent.opt.items():
        check_container_shrunk(f"opt[{net}].m", snap["m"][net], o.m, maps)
        check_container_shrunk(f"opt[{net}].v", snap["v"][net], o.v, maps)
    for k in snap["theta"]:
        assert np.array_equal(agent.theta[k], snap["theta"][k][maps[k][1]])
        assert np.array_equal(agent.m_theta[k], snap["m_theta"][k][maps[k][1]])
        assert np.all(agent.theta[k] > 0)
    assert_consistent(agent)

    # C(θ) is unchanged by removing θ = 0 units; the real count shrinks and equals C(1) at the new widths
    cost_after = float(WR.cost(wr, agent.theta))
    assert cost_after <= cost_before + 1e-9
    assert cost_after == pytest.approx(cost_before, rel=1e-12)
    ones = {k: np.ones(len(v)) for k, v in agent.theta.items()}
    assert WR.param_count(agent.params) == int(round(float(WR.cost(wr, ones)))) < params_before

    # training continues on the compacted state (θ-steps included), and pruning again is a no-op
    for _ in range(2):
        batch = random_batch(rng)
        agent.update_ofenet(batch, rng, update_theta=True)
        agent.update_sac(batch, rng, update_theta=True)
        assert all(np.all((t >= 0) & (t <= 1)) for t in agent.theta.values())
        agent.prune()
        assert_consistent(agent)
    assert agent.prune() == {}


@pytest.mark.parametrize("own", ["ofenet", "actor", "critic"])
def test_per_network_eps_xi(own, monkeypatch):
    """ε_ξ of one network (Eq. 4) is the floor its own masks are drawn with; the others keep the shared one."""
    agent, rng = make_agent(2)
    setattr(agent.cfg, f"eps_xi_{own}", 0.2)
    seen = {}
    original = xinet.gated_gradients

    def spy(specs, *args, **kwargs):
        seen[specs[0].name.split("/")[0]] = args[6]              # eps_xi, the 7th positional argument
        return original(specs, *args, **kwargs)
    monkeypatch.setattr(xinet, "gated_gradients", spy)
    batch = random_batch(rng)
    agent.update_ofenet(batch, rng, update_theta=True)
    agent.update_sac(batch, rng, update_theta=True)
    assert seen == {net: 0.2 if net.startswith(own) else agent.cfg.eps_xi
                    for net in ("ofenet", "actor", "critic1", "critic2")}


@pytest.mark.parametrize("frozen", ["ofenet", "actor", "critic"])
def test_per_network_eta_theta(frozen):
    """η_θ of one network (Eq. 32) moves only that network's θ: frozen at a tiny η, the others move."""
    agent, rng = make_agent(1)
    agent.cfg.eta_theta, agent.cfg.eps_xi = 0.5, 0.01
    for k, v in SHARED_KNOBS.items():
        setattr(agent.cfg, k, v)
    setattr(agent.cfg, f"eta_theta_{frozen}", 1e-12)
    assert agent.knob("critic2", "eta_theta") == (1e-12 if frozen == "critic" else 0.5)
    agent.cfg.beta = 5.0
    for _ in range(3):
        batch = random_batch(rng)
        agent.update_ofenet(batch, rng, update_theta=True)
        agent.update_sac(batch, rng, update_theta=True)
    for net in ("ofenet", "actor", "critic1", "critic2"):
        moved = max(float(np.max(np.abs(agent.theta[s.name] - 1.0))) for s in agent.specs(net) if s.gated)
        if net.startswith(frozen):
            assert moved < 1e-9, net
        else:
            assert moved > 1e-3, net


@pytest.mark.parametrize("scale", ["none", "rms"])
def test_theta_scale_reaches_every_networks_step(scale, monkeypatch):
    """AgentConfig.theta_scale (Eq. 39) is the scale of every network's θ-step; with rms no unit moves more than
    η_θ in one step, however large its price (β = 1e4)."""
    import xiref.agent as AG
    agent, rng = make_agent(3)
    agent.cfg.theta_scale, agent.cfg.beta, agent.cfg.k_theta, agent.cfg.eta_theta = scale, 1e4, 0.0, 0.01
    for k, v in SHARED_KNOBS.items():
        setattr(agent.cfg, k, v)
    seen, original = set(), AG.theta_step
    monkeypatch.setattr(AG, "theta_step", lambda *a: seen.add(a[-1]) or original(*a))
    steps = []
    for _ in range(3):
        before = copy.deepcopy(agent.theta)
        batch = random_batch(rng)
        agent.update_ofenet(batch, rng, update_theta=True)
        agent.update_sac(batch, rng, update_theta=True)
        steps.append(max(float(np.max(np.abs(agent.theta[k] - before[k]))) for k in before))
    assert seen == {scale}
    assert (max(steps) <= 0.01 * (1 + 1e-12)) == (scale == "rms"), steps


def test_gated_update_with_every_gate_on_is_the_ungated_update(monkeypatch):
    """XiNet's update at θ = 1 with every sampled gate on (masks of ones, the flip pass's unit drawn off the
    agent's generator) trains OFENet, critics, actor and α exactly as `ofe`'s ungated update does, bit for bit:
    the gated path adds nothing to the weights' training but the gates' own draws. Negative control: with the
    masks drawn as usual, the generators part and the weights differ."""
    def pair():
        out = []
        for gated in (True, False):
            # read as θ = 1 (Eq. 3): with θ̃ (Eq. 40) the expected-gate forwards read 1 − ε_ξ, as the masks' mean
            cfg = AgentConfig(ofenet=True, gated=gated, hidden=(7, 6), ofe_layers=2, ofe_units=4, target_dim=4,
                              beta=0.0, beta_actor=0.0, expected_gates="theta")
            out.append(Agent(cfg, obs_dim=OBS, act_dim=ACT, log_scale=np.log([1.0, 2.0]), rng=np.random.default_rng(5)))
        return out

    def train(agents):
        data = np.random.default_rng(6)
        for step in range(4):
            batch = random_batch(data)
            for agent in agents:
                agent.update_ofenet(batch, np.random.default_rng(10 + step), update_theta=False)
                agent.update_sac(batch, np.random.default_rng(20 + step), update_theta=False)
        g, u = agents
        return max(float(np.max(np.abs(g.params[k][p] - u.params[k][p]))) for k in u.params for p in u.params[k])

    assert train(pair()) > 1e-6                                                  # negative control
    side = np.random.default_rng(7)
    monkeypatch.setattr(xinet, "sample_gates", lambda specs, theta, rng, batch, eps: {
        s.name: np.ones((batch, len(theta[s.name]))) for s in specs if s.gated})
    monkeypatch.setattr(xinet.G, "flip_units", lambda rng, batch, n: side.integers(0, n, size=batch))
    g, u = agents = pair()
    assert train(agents) == 0.0
    assert all(np.array_equal(g.stats[k][p], u.stats[k][p]) for k in u.stats for p in u.stats[k])
    assert g.alpha == u.alpha and all(np.array_equal(g.target[k][p], u.target[k][p]) for k in u.target
                                      for p in u.target[k])


# ================================================================== shared tiny runs
TINY = dict(env="InvertedPendulum-v5", steps=600, start_steps=300, ofe_pretrain_steps=20, eval_every=200,
            eval_episodes=1, log_every=100, checkpoint_every=200, hidden=(16, 16), ofe_layers=2, ofe_units=4,
            batch=32, theta_delay_sac=0)


def quiet(*_):
    pass


def run_tiny(out, **overrides):
    summary = T.train(T.TrainConfig(**{**TINY, "out": str(out), **overrides}), echo=quiet)
    return out, summary


def restore(run_dir):
    header, _ = ck.load(str(run_dir / "checkpoint.npz"))
    cfg = T.config_from_dict(header["config"])
    cfg.out = str(run_dir)
    r = T.Run(cfg)
    r.restore()
    return r


RUNS = {   # float64: the export (float64 arrays) must reproduce the run's actions to 1e-10
    # β = 5, η_θ = 0.2 (as test_train.py): some units of every kind are pruned, not all
    "xinet": dict(method="xinet", beta=5.0, eta_theta=0.2, dtype="float64", **SHARED_KNOBS),
    # β = 1000: the price dominates every loss
    "huge-beta": dict(method="xinet", beta=1000.0, eta_theta=0.5, dtype="float64", **SHARED_KNOBS),
    # the agent reads each gate's mean θ̃ (Eq. 40), here 0.95 at θ = 1: the export must fold θ̃, not θ
    "tilde": dict(method="xinet", beta=5.0, eta_theta=0.2, dtype="float64", **{**SHARED_KNOBS, "eps_xi": 0.05},
                  expected_gates="tilde"),
    "ofe": dict(method="ofe", steps=400, dtype="float64"),
    "sac": dict(method="sac", steps=400, dtype="float64"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """runs(kind) -> (run directory, summary) of a finished tiny run (made once per module)."""
    @functools.cache
    def get(kind):
        return run_tiny(tmp_path_factory.mktemp(kind), **RUNS[kind])
    return get


@pytest.fixture
def huge_beta_run(runs):
    return runs("huge-beta")


@pytest.fixture
def xinet_run(runs):
    return runs("xinet")


# ================================================================== 2. a very large β
def test_huge_beta_keeps_one_unit_per_mlp_layer_and_theta_in_unit_interval(huge_beta_run):
    run_dir, summary = huge_beta_run
    header, flat = ck.load(str(run_dir / "checkpoint.npz"))
    assert header["step"] == TINY["steps"]
    theta = ck.unflatten(flat, "agent|theta|")
    params = ck.unflatten(flat, "agent|params|")
    wr = WR.agent_wiring(4, 1, TINY["hidden"], dict(n_layers=2, units=4, target_dim=4), gated=True)
    assert set(theta) == set(wr.gated_names())
    for name, t in theta.items():
        assert t.ndim == 1 and np.all((t >= 0) & (t <= 1)), name
        assert np.all(t > 0), name                   # every θ = 0 unit was pruned at once
        assert params[name]["b"].shape == t.shape, name
    for net in ("actor", "critic1", "critic2"):
        for s in wr.net_layers(net):
            if s.gated:
                assert 1 <= len(theta[s.name]) < s.n_out, s.name
    # with β = 1000 the price dominates: MLP layers end at their last unit, DenseNet layers empty
    assert all(len(theta[n]) == 1 for n in theta if not n.startswith("ofenet/"))
    assert all(len(theta[n]) == 0 for n in theta if n.startswith("ofenet/"))
    assert summary["params"] < summary["params_initial"]
    assert summary["alive_units"] == {k: len(theta[k]) if k in theta else None for k in summary["alive_units"]}

    rows = list(csv.DictReader(io.StringIO((run_dir / "progress.csv").read_text())))
    cols = [c for c in rows[0] if c.startswith("alive:")]
    assert {c[len("alive:"):] for c in cols} == set(summary["alive_units"])
    for c in cols:
        series = [int(r[c]) for r in rows]
        assert all(a >= b for a, b in zip(series, series[1:])), (c, series)
    params = [int(r["params"]) for r in rows]
    assert all(a >= b for a, b in zip(params, params[1:])) and params[-1] == summary["params"]


# ================================================================== 3. export
def exported_forward(arrays, wiring, inputs):
    """Every exported layer as a plain dense layer + activation: no gates, no BN."""
    acts = dict(inputs)
    for s in wiring["layers"]:
        h = np.concatenate([acts[src] for src in s["inputs"]], axis=1)
        u = h @ arrays[f"{s['name']}|W"] + arrays[f"{s['name']}|b"]
        acts[s["name"]] = L.ACTIVATIONS[s["act"]][0](u)
    return acts


@pytest.mark.parametrize("kind", ["xinet", "huge-beta", "tilde", "ofe", "sac"])
def test_export_acts_like_the_restored_run(kind, runs, tmp_path, capsys):
    run_dir, summary = runs(kind)
    if kind in ("xinet", "huge-beta", "tilde"):
        assert summary["params"] < summary["params_initial"]
    f = tmp_path / "policy.npz"
    assert main(["export", str(run_dir), "--out", str(f)]) == 0
    out, err = capsys.readouterr()
    assert err == "" and str(f) in out

    run = restore(run_dir)
    agent = run.agent
    if kind == "tilde":                          # what it acts with is not θ: folding θ would fail below
        assert any(not np.array_equal(g, agent.theta[k]) for k, g in agent.gates(*agent.wiring.nets()).items())
    with np.load(f, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    names = [s.name for s in agent.wiring.layers]
    assert set(arrays) == {f"{n}|{p}" for n in names for p in ("W", "b")} | {"__wiring__", "__meta__"}
    wiring = json.loads(bytes(arrays.pop("__wiring__")).decode())
    assert [s["name"] for s in wiring["layers"]] == names
    meta = json.loads(bytes(arrays.pop("__meta__")).decode())
    assert (meta["env"], meta["method"], meta["step"]) == ("InvertedPendulum-v5", RUNS[kind]["method"],
                                                           RUNS[kind].get("steps", TINY["steps"]))
    # widths of the export are the alive units; rows follow the alive widths of the sources
    alive = summary["alive_units"]
    free = dict(agent.wiring.free)
    for s in agent.wiring.layers:
        W, b = arrays[f"{s.name}|W"], arrays[f"{s.name}|b"]
        n_out = alive.get(s.name, s.n_out)
        assert W.shape == (sum(free[src] if src in free else alive[src] for src in s.inputs), n_out), s.name
        assert b.shape == (n_out,) and W.dtype == b.dtype == np.float64, s.name
    if kind == "xinet":
        assert any(alive[k] < TINY["ofe_units"] for k in alive if k.startswith("ofenet/"))
        assert any(alive[k] < 16 for k in alive if not k.startswith("ofenet/"))

    policy = load_policy(str(f))
    rng = np.random.default_rng(3)
    for scale in (0.1, 1.0, 5.0):
        obs = scale * rng.normal(size=(64, run.obs_dim))
        act = rng.uniform(-1, 1, (64, run.act_dim))
        want = agent.act(obs, None, deterministic=True)
        got = policy(obs)
        assert got.shape == want.shape == (64, run.act_dim)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
        # the rest of the folded networks is exact too: critics and the OFENet head
        ex = exported_forward(arrays, wiring, {"obs": obs, "act": act})
        q1, q2, _ = agent.q_values({}, agent.features(obs, act), act)
        np.testing.assert_allclose(ex["critic1/out"][:, 0], q1, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(ex["critic2/out"][:, 0], q2, rtol=1e-10, atol=1e-10)
        if agent.cfg.ofenet:
            head, _ = N.forward(agent.specs("ofenet"), agent.params, {"obs": obs, "act": act},
                                agent.gates("ofenet"), agent.stats, bn_train=False, eps_bn=agent.cfg.eps_bn)
            np.testing.assert_allclose(ex["ofenet/head"], head["ofenet/head"], rtol=1e-10, atol=1e-10)


def assert_cli_error(capsys, argv):
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2
    lines = err.strip().splitlines()
    assert "Traceback" not in out + err
    assert len(lines) == 1 and lines[0].startswith("xiref: error:"), err


def test_export_user_errors(xinet_run, tmp_path, capsys):
    run_dir, _ = xinet_run
    (tmp_path / "empty").mkdir()
    assert_cli_error(capsys, ["export", str(tmp_path / "empty"), "--out", str(tmp_path / "a.npz")])
    assert_cli_error(capsys, ["export", str(tmp_path / "missing"), "--out", str(tmp_path / "b.npz")])
    bad = tmp_path / "bad"
    bad.mkdir()
    data = (run_dir / "checkpoint.npz").read_bytes()
    (bad / "checkpoint.npz").write_bytes(data[:len(data) // 2])
    assert_cli_error(capsys, ["export", str(bad), "--out", str(tmp_path / "c.npz")])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    (bad / "checkpoint.npz").write_bytes(bytes(flipped))
    assert_cli_error(capsys, ["export", str(bad), "--out", str(tmp_path / "d.npz")])
    assert not any((tmp_path / n).exists() for n in ("a.npz", "b.npz", "c.npz", "d.npz"))

    # load_policy of anything that is not an export
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    for path in (run_dir / "checkpoint.npz", text, tmp_path / "nope.npz"):
        with pytest.raises(UserError):
            load_policy(str(path))


@pytest.mark.parametrize("where", ["missing-dir", "is-a-dir", "own-checkpoint"])
def test_export_unwritable_out_is_a_user_error(where, xinet_run, tmp_path, capsys):
    run_dir, _ = xinet_run
    target = tmp_path / "no" / "such" / "x.npz"
    if where == "is-a-dir":
        target = tmp_path / "adir"
        target.mkdir()
    if where == "own-checkpoint":
        target = run_dir / "checkpoint.npz"
    before = (run_dir / "checkpoint.npz").read_bytes()
    assert_cli_error(capsys, ["export", str(run_dir), "--out", str(target)])
    assert (run_dir / "checkpoint.npz").read_bytes() == before


# ================================================================== 4. ofe-small from a pruned run
@pytest.mark.parametrize("source", ["xinet", "huge-beta"])
def test_ofe_small_is_ungated_with_the_pruned_widths(source, xinet_run, huge_beta_run, tmp_path):
    src, summary = {"xinet": xinet_run, "huge-beta": huge_beta_run}[source]
    widths = {k: v for k, v in summary["alive_units"].items() if k.startswith("ofenet/")}
    out, small = run_tiny(tmp_path / "small", method="ofe-small", widths_from=str(src), steps=350)
    r = restore(out)
    a = r.agent
    assert not a.cfg.gated and a.cfg.ofenet
    assert a.theta == {} and a.wiring.gated_names() == ()
    assert {k: v for k, v in small["alive_units"].items() if k.startswith("ofenet/")} == widths
    for name, w in widths.items():
        assert a.params[name]["b"].shape == (w,)
    assert small["params"] == small["params_initial"]            # nothing is pruned without gates
    assert np.all(np.isfinite(a.act(np.zeros((1, r.obs_dim)), None, deterministic=True)))
