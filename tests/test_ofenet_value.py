"""OFENet's θ priced by its consumers too (docs/METHOD.md §7; xinet.gated_gradients `value_fn`,
xiref/losses.py `consumers_value_fn`).

What is checked
* Every estimator with a `value_fn` v other than the loss ℓ estimates the θ-gradient of E[(1/B) Σ_i v_i] without
  bias against exact enumeration (Eq. 24), on a gated MLP without BN and — for `flip`, whose estimand holds the
  batch statistics fixed (Eq. 36) — on the two-layer BN problem of tests/test_estimators.py; the W-gradient and
  the mean loss stay ℓ's. Negative control: the same estimates without `value_fn` are biased for v's gradient.
* `consumers_value_fn` computes v_i = ℓ^aux_i + L̄_o Σ_c ℓ^c_i / L̄_c as an independent route does: per example,
  OFENet's expected gates set to that example's mask (a vertex), then Agent.features, Agent.q_values and
  Agent.policy.
* The agent uses it only when asked and once every consumer has its L̄_c: before that, and with
  `ofenet_value = "own"`, an OFENet update is bit-identical to one without it.
* examples/experiments/ofenet_value.py on a tiny checkpoint: a unit no layer reads gets g = 0 under both values
  and U = 0 exactly, other units do not; one JSON line; bad input exits 2 with one line.
"""
import copy
import dataclasses
import itertools
import json
import os
import sys

import numpy as np
import pytest

from test_estimators import BNProblem
from test_gates import EPS_XI, Problem, assert_unbiased, bias_ratio
from xiref import gates as G
from xiref import network as N
from xiref import ofenet as OF
from xiref import sac
from xiref import xinet as X
from xiref.agent import Agent, AgentConfig
from xiref.losses import CONSUMERS, consumers_value_fn

K = 4000


def _extra(gates, a):
    """A term that depends on the gates directly (as the consumers' losses do): (Σ_j ξ_ij a_ij)² (B,)."""
    xi = np.broadcast_to(np.concatenate([gates[k] for k in sorted(gates)], axis=-1), a.shape)
    return (xi * a).sum(axis=1) ** 2


def _mlp_value(prob, a):
    def value_fn(acts, gates):
        out = acts["net/out"][:, 0]
        return (out - prob.Y[:, 0]) ** 2 + 0.5 * np.sin(3.0 * out) + _extra(gates, a)
    return value_fn


def _mlp_exact(prob, a, theta):
    """∇_θ E[(1/B) Σ_i v_i] by enumeration: every example under the same mask, 2^n masks (Eq. 24)."""
    value_fn = _mlp_value(prob, a)

    def value_of_masks(masks):
        out = []
        for m in masks:
            xi = np.tile(m, (prob.B, 1))
            acts, _ = N.forward(prob.specs, prob.params, {"x": prob.X}, prob.split(xi))
            out.append(np.mean(value_fn(acts, prob.split(xi))))
        return np.array(out)
    return G.exact_grad(value_of_masks, theta)


def _mlp_calls(prob, baseline, value_fn, seed, K=K):
    rng = np.random.default_rng(seed)
    est = []
    for _ in range(K):
        _, _, g, _ = X.gated_gradients(prob.specs, prob.params, {"x": prob.X}, prob.split(prob.theta), prob.loss_fn,
                                       rng, baseline=baseline, eps_xi=EPS_XI, value_fn=value_fn)
        est.append(prob.join(g))
    return np.array(est)


@pytest.fixture(scope="module")
def mlp():
    prob = Problem(hidden=(4, 3), seed=13)
    a = np.random.default_rng(14).normal(0.0, 0.7, (prob.B, prob.n))
    return prob, a, _mlp_exact(prob, a, prob.theta)


@pytest.mark.parametrize("baseline", ["flip", "pair", "muprop", "loo"])
def test_value_fn_unbiased_without_bn(mlp, baseline):
    prob, a, exact = mlp
    assert_unbiased(f"{baseline} with value_fn", _mlp_calls(prob, baseline, _mlp_value(prob, a), 41), exact)


def test_negative_control_without_value_fn(mlp):
    """The same estimator on ℓ alone misses v's other terms: biased for v's gradient (the test has power)."""
    prob, a, exact = mlp
    assert np.max(bias_ratio(_mlp_calls(prob, "flip", None, 41), exact)) > 1.0


@pytest.mark.parametrize("baseline", ["flip", "pair"])
def test_value_fn_leaves_w_gradient_and_loss_alone(mlp, baseline):
    prob, a, _ = mlp
    runs = []
    for value_fn in (None, _mlp_value(prob, a)):
        rng = np.random.default_rng(5)
        runs.append(X.gated_gradients(prob.specs, prob.params, {"x": prob.X}, prob.split(prob.theta), prob.loss_fn,
                                      rng, baseline=baseline, eps_xi=EPS_XI, value_fn=value_fn))
    (loss0, grads0, g0, _), (loss1, grads1, g1, _) = runs
    assert loss0 == loss1
    for layer, g in grads0.items():
        for name, v in g.items():
            assert np.array_equal(v, grads1[layer][name]), (layer, name)
    assert not np.allclose(prob.join(g0), prob.join(g1))


def test_flip_value_fn_unbiased_with_bn():
    """With training-mode BN, flip estimates G^S of v: each example's flip at the batch statistics held fixed."""
    prob = BNProblem(seed=0)
    a = np.random.default_rng(3).normal(0.0, 0.7, (prob.B, prob.n))

    def value_fn(acts, gates):
        out = acts["net/out"][:, 0]
        return (out - prob.Y[:, 0]) ** 2 + 0.5 * np.sin(3.0 * out) + _extra(gates, a)

    B, n, theta = prob.B, prob.n, prob.theta
    g_s = np.zeros(n)
    for bits in itertools.product((0.0, 1.0), repeat=B * n):
        xi = np.reshape(bits, (B, n))
        q = np.prod(np.where(xi == 1.0, theta, 1.0 - theta))
        _, cache = prob.ell(xi)
        fixed = {s.name: {"mean": cache[s.name]["mu"], "var": cache[s.name]["var"]} for s in prob.specs if s.bn}
        for j in range(n):
            v = []
            for bit in (1.0, 0.0):
                m = xi.copy()
                m[:, j] = bit
                acts, _ = N.forward(prob.specs, prob.params, {"x": prob.X}, prob.split(m), fixed)
                v.append(value_fn(acts, prob.split(m)))
            g_s[j] += q * np.mean(v[0] - v[1])
    rng = np.random.default_rng(43)
    est = np.array([prob.join(X.gated_gradients(prob.specs, prob.params, {"x": prob.X}, prob.split(theta),
                                                prob.loss_fn, rng, baseline="flip", eps_xi=EPS_XI, stats=prob.stats,
                                                bn_train=True, value_fn=value_fn)[2]) for _ in range(K)])
    assert_unbiased("flip with BN and value_fn vs G^S of v", est, g_s)


# ------------------------------------------------------------------ the agent's consumers' value
def _agent(ofenet_value="consumers"):
    cfg = AgentConfig(hidden=(6, 5), ofenet=True, gated=True, ofe_layers=2, ofe_units=3, target_dim=3,
                      ofenet_value=ofenet_value)
    rng = np.random.default_rng(0)
    agent = Agent(cfg, 4, 2, np.zeros(2), rng)
    for name, p in agent.params.items():                  # BN away from its identity start
        if "s" in p:
            p["s"] = rng.uniform(0.5, 1.5, p["s"].shape)
            agent.stats[name]["mean"] = rng.normal(0.0, 0.3, p["s"].shape)
    for net in agent.wiring.nets():
        agent.loss_scale[net] = float(rng.uniform(0.5, 2.0))
    return agent


def _batch(B=5, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(B, 4)), rng.uniform(-1, 1, (B, 2)), rng.normal(size=B), rng.normal(size=(B, 4)),
            np.zeros(B))


def test_consumers_value_matches_an_independent_route():
    agent, batch = _agent(), _batch()
    obs, act, rew, obs_next, done = batch
    B, rng = obs.shape[0], np.random.default_rng(2)
    y, eps = rng.normal(size=B), rng.normal(size=(B, 2))
    ofe = [s for s in agent.specs("ofenet") if s.gated]
    xi = {s.name: (rng.random((B, s.n_out)) < 0.6).astype(float) for s in ofe}
    own = OF.aux_loss_fn(obs_next)
    acts, _ = N.forward(agent.specs("ofenet"), agent.params, {"obs": obs, "act": act}, xi, agent.stats, bn_train=True)
    got = consumers_value_fn(agent, batch, y, eps, own)(acts, xi)

    scale = agent.loss_scale
    want = own(acts)[0].copy()
    for i in range(B):
        # example i's mask as OFENet's expected gates, the consumers' own expected gates (θ̃ at the default, Eq. 40)
        # as they are: an agent reading its θ as they stand
        one = copy.copy(agent)
        one.cfg = dataclasses.replace(agent.cfg, expected_gates="theta")
        one.theta = {**agent.gates(*CONSUMERS), **{k: v[i] for k, v in xi.items()}}
        f = one.features(obs[i:i + 1], act[i:i + 1])
        q1, q2, _ = one.q_values({}, f, act[i:i + 1])
        f_actor = {k: v for k, v in OF.without_action_block(one.wiring, f).items() if k != "act"}
        a_t, log_pi = one.policy(f_actor, eps[i:i + 1])
        p1, p2, _ = one.q_values({}, f_actor, a_t)
        want[i] += (scale["ofenet"] * ((q1[0] - y[i]) ** 2 / scale["critic1"] + (q2[0] - y[i]) ** 2 / scale["critic2"])
                    + scale["ofenet"] / scale["actor"] * sac.actor_loss(log_pi, p1, p2, agent.alpha)[0][0])
    np.testing.assert_allclose(got, want, rtol=1e-10)


def _ofenet_update(agent, batch, seed):
    agent = copy.deepcopy(agent)
    agent.update_ofenet(batch, np.random.default_rng(seed), update_theta=True)
    return agent


def test_agent_uses_the_consumers_value_only_when_asked():
    batch = _batch(B=8)
    own, cons = _ofenet_update(_agent("own"), batch, 3), _ofenet_update(_agent("consumers"), batch, 3)
    assert not np.array_equal(own.m_theta["ofenet/s1"], cons.m_theta["ofenet/s1"])
    young = _agent("consumers")
    young.loss_scale["actor"] = None                      # a consumer without L̄_c yet: OFENet's own loss alone
    young = _ofenet_update(young, batch, 3)
    for k, v in own.params.items():
        for name in v:
            assert np.array_equal(v[name], young.params[k][name]), (k, name)
    for k in own.theta:
        assert np.array_equal(own.m_theta[k], young.m_theta[k]), k


# ------------------------------------------------------------------ examples/experiments/ofenet_value.py
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "experiments"))
import ofenet_value  # noqa: E402
from gate_bias import load_run  # noqa: E402
from test_ofenet_drift import silence  # noqa: E402


def test_a_unit_nobody_reads_is_worth_nothing_to_anyone(xinet_dir, monkeypatch):
    """Its flip changes no loss and no slope reaches it: g = 0 exactly under both values, and U = 0; units that
    are read are not (the check can fail)."""
    run = load_run(str(xinet_dir))
    name = next(s.name for s in run.agent.specs("ofenet") if s.gated and s.block == "state")
    silence(run.agent, name, 0)
    monkeypatch.setattr(ofenet_value, "load_run", lambda _: run)
    r = ofenet_value.measure(str(xinet_dir), beta=10.0, batches=2, draws=2, batch_size=32, seed=0, sweep=(0.0, 1e3))
    u = r["per_unit"]
    j = u["layer"].index(name)
    for key in ("own/g", "consumers/g", "U"):
        assert u[key][j] == 0.0, key
        assert any(v != 0.0 for v in u[key]), key
    assert r["sweep"]["own/beta0"]["pushed_out"] <= r["sweep"]["own/beta1000"]["pushed_out"]


def test_cli_prints_one_json_line_and_refuses_bad_input(xinet_dir, tmp_path, capsys):
    out = tmp_path / "value.json"
    argv = [str(xinet_dir), "--batches", "1", "--draws", "2", "--batch", "16", "--sweep", "3,30", "--out", str(out)]
    assert ofenet_value.main(argv) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["step"] == 400 and "per_unit" not in last and set(last["sweep"]) == {
        "own/beta3", "own/beta30", "consumers/beta3", "consumers/beta30"}
    assert len(json.loads(out.read_text())["per_unit"]["U"]) == last["units"]
    for bad, needle in ((["--draws", "1"], "--draws"), (["--beta", "0"], "--beta"), (["--sweep", "a"], "--sweep")):
        assert ofenet_value.main([str(xinet_dir), "--batches", "1"] + bad) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("ofenet_value: error:") and needle in err[0], err
