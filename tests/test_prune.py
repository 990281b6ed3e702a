"""Projected θ-steps and physical pruning (docs/METHOD.md §7, Eq. 32).

* compaction leaves every expected-gate output (OFENet head, actor, both critics) unchanged to 1e-12;
* parameters, running statistics, Adam moments, target copies and the θ-momentum shrink consistently
  (checked entry by entry against independent index bookkeeping);
* theta_step (Eq. 32, 37, 38): the plain step at k = 0; the standard error (38) against Monte Carlo; pure
  noise does not move θ at k = 2 while it drifts θ off the wall at k = 0; a steady signal still moves it;
* keep_last_units (MLP layers keep a unit, DenseNet layers may vanish and the
  forward still works with zero-width arrays);
* θ = 1 with ε_ξ = 0 gates computes exactly what the ungated network computes.
"""
import copy

import numpy as np
import pytest

from pruneutil import check_container_shrunk, kept_index_maps
from xiref import adam as A
from xiref import gates as G
from xiref import network as N
from xiref import prune as P
from xiref import wiring as WR
from xiref import xinet as X

OBS, ACT, B = 5, 2, 9
OUTPUTS = ("ofenet/head", "actor/out", "critic1/out", "critic2/out")


def agent(gated=True):
    return WR.agent_wiring(obs_dim=OBS, act_dim=ACT, hidden=(7, 6),
                           ofenet=dict(n_layers=3, units=4, target_dim=4), gated=gated)


def random_setup(wiring, rng):
    """Parameters with non-trivial b, BN s, c (so φ of a gated-off unit is not 0) and random running stats."""
    params, stats = N.init_params(wiring.layers, wiring.free_widths, rng)
    for p in params.values():
        p["b"] = rng.normal(size=p["b"].shape)
        if "s" in p:
            p["s"] = rng.uniform(0.5, 1.5, p["s"].shape)
            p["c"] = rng.normal(size=p["c"].shape)
    for st in stats.values():
        st["mean"] = rng.normal(size=st["mean"].shape)
        st["var"] = rng.uniform(0.5, 2.0, st["var"].shape)
    inputs = {"obs": rng.normal(size=(B, OBS)), "act": rng.uniform(-1, 1, (B, ACT))}
    return params, stats, inputs


def random_grads(params, rng):
    return {k: {n: rng.normal(size=a.shape) for n, a in p.items()} for k, p in params.items()}


def theta_with_zeros(wiring, rng, zero_layers):
    theta = {}
    for s in wiring.layers:
        if not s.gated:
            continue
        t = rng.uniform(0.05, 1.0, s.n_out)
        t[rng.random(s.n_out) < 0.35] = 0.0
        if s.name in zero_layers:
            t[:] = 0.0
        elif np.count_nonzero(t) == 0:
            t[rng.integers(s.n_out)] = rng.uniform(0.05, 1.0)
        theta[s.name] = t
    return theta


# ------------------------------------------------------------------ 3. compaction is exact
@pytest.mark.parametrize("seed,zero_layers", [
    (10, ("ofenet/s2",)),
    (11, ("ofenet/a1",)),
    (12, ("ofenet/s3", "ofenet/a2")),
    (13, ("ofenet/s1", "ofenet/s2", "ofenet/s3", "ofenet/a1", "ofenet/a2", "ofenet/a3")),
])
def test_compaction_preserves_expected_gate_outputs_and_shrinks_state(seed, zero_layers):
    wiring = agent()
    rng = np.random.default_rng(seed)
    params, stats, inputs = random_setup(wiring, rng)
    adam = A.adam_init(params)
    for _ in range(3):
        A.adam_step(params, random_grads(params, rng), adam)
    assert all(np.any(a != 0) for p in adam.m.values() for a in p.values())
    critic_names = [s.name for s in wiring.layers if s.net.startswith("critic")]
    target = copy.deepcopy({k: params[k] for k in critic_names})
    for p in target.values():                       # make the target copy differ from the online params
        for k in p:
            p[k] = p[k] + 0.01 * rng.normal(size=p[k].shape)
    theta = theta_with_zeros(wiring, rng, zero_layers)
    m_theta = {k: rng.normal(size=v.shape) for k, v in theta.items()}
    assert any(np.any(v == 0) for k, v in theta.items() if not k.startswith("ofenet"))

    snap = copy.deepcopy(dict(params=params, stats=stats, m=adam.m, v=adam.v, target=target,
                              theta=theta, m_theta=m_theta))
    maps = kept_index_maps(wiring, theta)
    gates = X.expected_gates(wiring.layers, theta)
    before, _ = N.forward(wiring.layers, params, inputs, gates, stats, bn_train=False)

    removed = P.prune_zero_units(wiring, theta, [params, stats, adam.m, adam.v, target], [m_theta])
    assert removed == {k: int(np.sum(v == 0)) for k, v in snap["theta"].items() if np.any(v == 0)}

    # every container shrinks exactly as the index bookkeeping says
    check_container_shrunk("params", snap["params"], params, maps)
    check_container_shrunk("stats", snap["stats"], stats, maps)
    check_container_shrunk("adam.m", snap["m"], adam.m, maps)
    check_container_shrunk("adam.v", snap["v"], adam.v, maps)
    check_container_shrunk("target", snap["target"], target, maps)
    for k in snap["theta"]:
        keep = maps[k][1]
        assert np.array_equal(theta[k], snap["theta"][k][keep])
        assert np.array_equal(m_theta[k], snap["m_theta"][k][keep])
        assert np.all(theta[k] > 0)
    for k in zero_layers:
        assert theta[k].shape == (0,) and params[k]["W"].shape[1] == 0

    after, _ = N.forward(wiring.layers, params, inputs, X.expected_gates(wiring.layers, theta), stats,
                         bn_train=False)
    for out in OUTPUTS:
        assert after[out].shape == before[out].shape
        np.testing.assert_allclose(after[out], before[out], rtol=0, atol=1e-12, err_msg=out)
    # the surviving units of every gated layer too
    for s in wiring.layers:
        if s.gated:
            np.testing.assert_allclose(after[s.name], before[s.name][:, maps[s.name][1]], rtol=0, atol=1e-12)

    # Adam keeps working on the compacted state (moment shapes match the parameters')
    A.adam_step(params, random_grads(params, rng), adam)
    # pruning again is a no-op
    assert P.prune_zero_units(wiring, theta, [params, stats, adam.m, adam.v, target], [m_theta]) == {}


def test_prune_layer_single_consumer_rows():
    """Pruning one state-block unit removes its column in its own layer and exactly one row in each of the
    eight consumers, at the offset of that layer's units in the consumer's input."""
    wiring = agent()
    rng = np.random.default_rng(20)
    params, stats, _ = random_setup(wiring, rng)
    snap = copy.deepcopy(params)
    theta = WR.ones_theta(wiring)
    keep = np.array([True, False, True, True])
    P.prune_layer(wiring, "ofenet/s2", keep, theta, [params, stats])
    assert params["ofenet/s2"]["W"].shape == (OBS + 4, 3)
    assert stats["ofenet/s2"]["mean"].shape == (3,)
    for c in wiring.consumers("ofenet/s2"):
        row = OBS + 4 + 1                            # obs, s1 (4 units), then unit 1 of s2
        assert np.array_equal(params[c.name]["W"], np.delete(snap[c.name]["W"], row, axis=0)), c.name
    untouched = {s.name for s in wiring.layers} - {c.name for c in wiring.consumers("ofenet/s2")} - {"ofenet/s2"}
    for k in untouched:
        assert all(np.array_equal(params[k][n], snap[k][n]) for n in snap[k])
    assert len(theta["ofenet/s2"]) == 3


# ------------------------------------------------------------------ 4. θ-step and floors
def test_theta_step_formula_and_projection():
    theta = np.array([0.5, 0.02, 0.99, 1.0, 0.0])
    m = np.array([0.1, -0.2, 0.0, 0.3, 0.0])
    g = np.array([2.0, 4.0, -6.0, 0.0, -1.0])
    L, eta, mu = 2.0, 0.5, 0.9
    v = np.array([0.3, 0.1, 0.2, 0.4, 0.0])
    t_new, m_new, v_new = P.theta_step(theta, m, v, 7, g, L, eta, mu)          # k = 0: the plain step (32)
    np.testing.assert_allclose(v_new, 0.9 * v + 0.1 * (g / L) ** 2, rtol=1e-15)
    want_m = np.array([0.9 * 0.1 + 0.1 * 1.0, 0.9 * -0.2 + 0.1 * 2.0, 0.1 * -3.0, 0.9 * 0.3, 0.1 * -0.5])
    np.testing.assert_allclose(m_new, want_m, rtol=1e-15, atol=1e-15)
    want_t = np.clip(theta - eta * want_m, 0.0, 1.0)
    np.testing.assert_allclose(t_new, want_t, rtol=1e-15, atol=1e-15)
    # by hand: 0.5 − 0.5·0.19 = 0.405;  0.02 − 0.5·0.02 = 0.01;  0.99 + 0.15 → 1;  1 − 0.135 = 0.865;
    #          0 + 0.025 = 0.025 (the clip is only a projection; absorption at 0 comes from pruning)
    np.testing.assert_allclose(t_new, [0.405, 0.01, 1.0, 0.865, 0.025], rtol=1e-13)
    # inputs untouched
    assert np.array_equal(theta, [0.5, 0.02, 0.99, 1.0, 0.0]) and np.array_equal(m, [0.1, -0.2, 0.0, 0.3, 0.0])


def test_theta_step_stays_in_unit_interval():
    rng = np.random.default_rng(30)
    theta, m, v = rng.uniform(0, 1, 50), np.zeros(50), np.zeros(50)
    for t in range(1, 201):
        theta, m, v = P.theta_step(theta, m, v, t, rng.normal(scale=50.0, size=50), 0.7, 0.05, 0.9)
        assert np.all(theta >= 0.0) and np.all(theta <= 1.0)
    assert np.any(theta == 0.0) and np.any(theta == 1.0)   # both walls were hit


@pytest.mark.parametrize("t", [2, 3, 10, 1000])
def test_standard_error_matches_the_spread_of_the_average(t):
    """E[se²] (Eq. 38) equals Var(m_t) of the exponential average of t i.i.d. draws, for any t: the n_eff
    correction matters at small t. Negative control: the variance without n_eff/(n_eff − 1) misses at t ≤ 10."""
    mu, reps, sigma = 0.9, 20000, 2.0
    rng = np.random.default_rng(31)
    g = 0.7 + sigma * rng.standard_normal((t, reps))                  # draws of one unit over t steps, reps copies
    m, v = np.zeros(reps), np.zeros(reps)
    for s in range(t):
        m, v = mu * m + (1 - mu) * g[s], mu * v + (1 - mu) * g[s] ** 2
    se = P.standard_error(m, v, t, mu)
    var_m = np.var(m, ddof=1)
    # Monte-Carlo tolerance: 4 standard errors of the mean of se² and of the sample variance of m
    tol = 4 * np.sqrt(np.var(se ** 2) / reps + 2 * var_m ** 2 / reps)
    assert abs(np.mean(se ** 2) - var_m) < tol, (np.mean(se ** 2), var_m, tol)
    c = 1 - mu ** t
    n_eff = c * c * (1 + mu) / ((1 - mu) * (1 - mu ** (2 * t)))
    naive = (c ** 2 / n_eff) * np.maximum(v / c - (m / c) ** 2, 0)     # no small-sample correction
    if t <= 10:
        assert abs(np.mean(naive) - var_m) > tol
    assert np.all(np.isinf(P.standard_error(m[:3], v[:3], 1, mu)))    # one draw: no spread known yet


def walk(k, drift, steps=4000, units=400, seed=32):
    """θ of `units` units from 1 under ĝ = drift + N(0, 1) per step (L̄ = 1, η_θ = 0.05, μ_θ = 0.99)."""
    rng = np.random.default_rng(seed)
    theta, m, v = np.ones(units), np.zeros(units), np.zeros(units)
    for t in range(1, steps + 1):
        theta, m, v = P.theta_step(theta, m, v, t, drift + rng.standard_normal(units), 1.0, 0.05, 0.99, k)
    return theta


def test_pure_noise_does_not_move_theta_off_the_wall_with_evidence():
    """Zero-mean noise at θ = 1: the plain step (k = 0) keeps the downward half of every kick and drifts θ
    into (0, 1); at k = 3 (the default, Eq. 37) only excursions of the average beyond 3 standard errors move θ."""
    plain, gated = walk(0.0, 0.0), walk(3.0, 0.0)
    assert np.mean(plain == 1.0) < 0.5 and np.median(plain) < 0.9 and np.min(plain) == 0.0
    assert np.median(gated) == 1.0 and np.min(gated) > 0.75


def test_a_steady_signal_moves_theta_with_evidence():
    """A gradient of 0.5 noise standard deviations (≈ 7 standard errors of the average) still drives θ to 0."""
    assert np.all(walk(3.0, 0.5, steps=1500) == 0.0)
    assert np.all(walk(3.0, -0.5, steps=1500) == 1.0)


def test_rms_scaled_step_formula_bound_and_invariance():
    """Eq. (39): the evidence-gated step divided by each unit's RMS √(v/c). By hand on one step; over a noisy
    walk no unit moves more than c η_θ per step; multiplying every gradient by 1000 leaves the θ path unchanged,
    as it does not for the unscaled step (37) (negative control)."""
    theta, m, v = np.array([0.5, 0.5, 1.0]), np.array([0.2, -0.1, 0.0]), np.array([0.05, 0.02, 0.0])
    g, L, eta, mu, t = np.array([1.0, 0.5, 0.0]), 1.0, 0.1, 0.9, 5
    t_new, m_new, v_new = P.theta_step(theta, m, v, t, g, L, eta, mu, 0.0, "rms")
    c = 1 - 0.9 ** 5
    want = np.clip(theta[:2] - eta * m_new[:2] / np.sqrt(v_new[:2] / c), 0, 1)
    want = np.append(want, 1.0)                                    # v = 0 and m = 0: no step, no division by 0
    np.testing.assert_allclose(t_new, want, rtol=1e-15)
    np.testing.assert_allclose(t_new[:2], [0.5 - 0.1 * 0.28 / np.sqrt(0.145 / c),
                                           0.5 - 0.1 * -0.04 / np.sqrt(0.043 / c)], rtol=1e-13)

    def path(scale, factor, k=3.0, steps=300):
        rng = np.random.default_rng(33)
        th, mm, vv, out = np.ones(200), np.zeros(200), np.zeros(200), []
        drift = np.linspace(-0.5, 0.5, 200)
        for s in range(1, steps + 1):
            new, mm, vv = P.theta_step(th, mm, vv, s, factor * (drift + rng.standard_normal(200)), 1.0, 0.05, 0.99,
                                       k, scale)
            assert scale == "none" or np.all(np.abs(new - th) <= 0.05 * (1 - 0.99 ** s) * (1 + 1e-12))
            th = new
            out.append(th)
        return np.array(out)
    np.testing.assert_allclose(path("rms", 1000.0), path("rms", 1.0), rtol=1e-9, atol=1e-12)
    assert path("rms", 1.0).min() < 0.5                                # the signal moved θ
    assert np.abs(path("none", 1000.0, steps=50) - path("none", 1.0, steps=50)).max() > 0.1
    with pytest.raises(ValueError, match="scale"):
        P.theta_step(theta, m, v, t, g, L, eta, mu, 0.0, "adam")


def test_rms_scaled_step_keeps_pure_noise_at_the_wall():
    """With the evidence gate (k = 3), the RMS-scaled step leaves zero-mean noise at θ = 1 as (37) does and still
    drives a steady signal of 0.5 noise standard deviations to the wall."""
    rng = np.random.default_rng(34)
    theta, m, v = np.ones(400), np.zeros(400), np.zeros(400)
    for t in range(1, 4001):
        theta, m, v = P.theta_step(theta, m, v, t, rng.standard_normal(400), 1.0, 0.05, 0.99, 3.0, "rms")
    assert np.median(theta) == 1.0 and theta.min() > 0.5
    theta, m, v = np.ones(400), np.zeros(400), np.zeros(400)
    for t in range(1, 1501):
        theta, m, v = P.theta_step(theta, m, v, t, 0.5 + rng.standard_normal(400), 1.0, 0.05, 0.99, 3.0, "rms")
    assert np.all(theta == 0.0)


def test_keep_last_units_small():
    old = np.array([0.3, 0.05, 0.2])
    new = np.zeros(3)
    held = P.keep_last_units(new, old, min_units=1, floor=1e-3)
    np.testing.assert_array_equal(held, [1e-3, 0.0, 0.0])
    # a surviving unit already satisfies the floor rule: unchanged
    partly = np.array([0.0, 0.04, 0.0])
    assert P.keep_last_units(partly, old, 1, 1e-3) is partly
    # min_units = 0 (DenseNet): may vanish completely
    assert np.array_equal(P.keep_last_units(new, old, 0, 1e-3), new)


def test_mlp_layer_keeps_unit_densenet_layer_vanishes_and_forward_works():
    wiring = agent()
    rng = np.random.default_rng(31)
    params, stats, inputs = random_setup(wiring, rng)
    adam = A.adam_init(params)
    theta = {k: rng.uniform(0.2, 1.0, v.shape) for k, v in WR.ones_theta(wiring).items()}
    m_theta = {k: np.zeros_like(v) for k, v in theta.items()}
    v_theta = {k: np.zeros_like(v) for k, v in theta.items()}
    floor = 1e-3
    pushed = {"ofenet/s2", "ofenet/a3", "actor/h2", "critic1/h1"}
    for t in range(1, 61):                           # large positive gradient on `pushed`, noise elsewhere
        for s in wiring.layers:
            if not s.gated:
                continue
            g = (10.0 if s.name in pushed else 0.0) + 0.01 * rng.normal(size=theta[s.name].shape)
            new, m_theta[s.name], v_theta[s.name] = P.theta_step(theta[s.name], m_theta[s.name], v_theta[s.name],
                                                                 t, g, 1.0, 0.05, 0.9)
            theta[s.name] = P.keep_last_units(new, theta[s.name], s.min_units, floor)
            assert np.all((theta[s.name] >= 0) & (theta[s.name] <= 1))
        P.prune_zero_units(wiring, theta, [params, stats, adam.m, adam.v], [m_theta, v_theta])
    # MLP layers (min_units = 1) held one unit at θ >= floor; DenseNet layers emptied
    for name in ("actor/h2", "critic1/h1"):
        assert len(theta[name]) == 1 and theta[name][0] >= floor
    for name in ("ofenet/s2", "ofenet/a3"):
        assert len(theta[name]) == 0
        assert params[name]["W"].shape[1] == 0 and params[name]["b"].shape == (0,)
        assert params[name]["s"].shape == stats[name]["var"].shape == adam.m[name]["W"].shape[1:] == (0,)
    for s in wiring.layers:
        n_in = sum(wiring.source_widths(s, theta))
        assert params[s.name]["W"].shape == (n_in, wiring.out_width(s, theta))
    for bn_train in (False, True):
        acts, cache = N.forward(wiring.layers, params, inputs, X.expected_gates(wiring.layers, theta), stats,
                                bn_train=bn_train)
        assert acts["ofenet/s2"].shape == (B, 0) and acts["ofenet/a3"].shape == (B, 0)
        for out in OUTPUTS:
            assert np.all(np.isfinite(acts[out]))
        # backward and sampled gates on zero-width layers too
        d_acts = {out: np.ones_like(acts[out]) for out in OUTPUTS}
        grads, _, _ = N.backward(wiring.layers, params, X.expected_gates(wiring.layers, theta), cache, d_acts,
                                 bn_train=bn_train)
        assert grads["ofenet/s2"]["W"].shape == params["ofenet/s2"]["W"].shape
        A.adam_step(params, grads, adam)
    xi = X.sample_gates(wiring.layers, theta, rng, B, 0.01)
    assert xi["ofenet/s2"].shape == (B, 0)
    acts, _ = N.forward(wiring.layers, params, inputs, xi, stats, bn_train=True)
    assert all(np.all(np.isfinite(acts[out])) for out in OUTPUTS)
    # C(θ) at the pruned θ still matches the gradient formula's structure (no entry for an empty layer)
    assert WR.cost_grad(wiring, theta)["ofenet/s2"].shape == (0,)


# ------------------------------------------------------------------ 5. θ = 1, ε_ξ = 0 is the ungated network
@pytest.mark.parametrize("bn_train", [False, True])
def test_all_ones_gates_equal_ungated_network(bn_train):
    gated, plain = agent(gated=True), agent(gated=False)
    assert plain.gated_names() == () and len(gated.gated_names()) == 12
    rng = np.random.default_rng(40)
    params, stats, inputs = random_setup(gated, rng)
    theta = WR.ones_theta(gated)
    xi = {s.name: G.sample_mask(rng, theta[s.name], B, 0.0) for s in gated.layers if s.gated}
    assert all(np.all(x == 1.0) and x.shape == (B, len(theta[k])) for k, x in xi.items())
    acts_g, _ = N.forward(gated.layers, params, inputs, xi, stats, bn_train=bn_train)
    acts_e, _ = N.forward(gated.layers, params, inputs, X.expected_gates(gated.layers, theta), stats,
                          bn_train=bn_train)
    acts_u, _ = N.forward(plain.layers, params, inputs, {}, stats, bn_train=bn_train)
    assert set(acts_g) == set(acts_u)
    for k in acts_u:
        assert np.array_equal(acts_g[k], acts_u[k]), k
        assert np.array_equal(acts_e[k], acts_u[k]), k
    # and the expected parameter count of the gated wiring at θ = 1 is the ungated count
    assert WR.cost(gated, theta) == WR.cost(plain, {}) == WR.param_count(params)


@pytest.mark.parametrize("expected_gates", ["theta", "tilde"])
def test_theta_histogram_counts_removed_units_at_zero(expected_gates):
    """metrics.theta_histogram / net_theta read the same (0, mid, 1) split of θ before and after compaction, whatever
    the expected-gate forward reads (θ̃ = 1 − ε_ξ at θ = 1 with tilde, Eq. 40, is still a unit at θ = 1)."""
    from xiref import metrics as M
    from xiref.agent import Agent, AgentConfig
    rng = np.random.default_rng(3)
    cfg = AgentConfig(hidden=(7, 6), ofenet=True, ofe_layers=3, ofe_units=4, target_dim=4, gated=True,
                      expected_gates=expected_gates)
    ag = Agent(cfg, obs_dim=OBS, act_dim=ACT, log_scale=np.zeros(ACT), rng=rng)
    theta = theta_with_zeros(ag.wiring, rng, ("ofenet/s2",))
    ag.theta = {k: np.where(rng.random(v.shape) < 0.3, 1.0, v) if k.startswith("critic1") else v
                for k, v in theta.items()}
    ag.m_theta = {k: np.zeros_like(v) for k, v in ag.theta.items()}
    want = {}
    for net in ag.wiring.nets():
        th = np.concatenate([ag.theta[s.name] for s in ag.wiring.net_layers(net) if s.gated])
        want[net] = (int(np.sum(th == 0)), int(np.sum((th > 0) & (th < 1))), int(np.sum(th == 1)))
        assert np.array_equal(M.net_theta(ag, net), th)
        assert M.theta_histogram(ag, net) == want[net]
    assert want["critic1"][2] > 0 and want["ofenet"][0] > 0
    assert ag.prune()
    for net in ag.wiring.nets():
        assert M.theta_histogram(ag, net) == want[net]                # removed units still counted at 0
        assert np.all(M.net_theta(ag, net) > 0)
