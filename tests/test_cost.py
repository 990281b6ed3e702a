"""Expected parameter count C(θ), its gradient and the expected multiply-adds (docs/METHOD.md §6, Eq. 26–30).

* wiring.cost / wiring.cost_grad against autograd's value and gradient of the same plain-NumPy cost, and
  against central finite differences, on a plain MLP and on the agent wiring with and without OFENet;
* C(𝟙) = real parameter count of freshly initialised parameters;
* at vertices θ ∈ {0,1}^N: after physical compaction (xiref/prune.py), C(θ) at the original vertex and at
  the pruned θ (all ones) both equal the real parameter count, and macs equals Σ W.size;
* network roles (OFENet's state/action blocks, the critics) are read from the wiring, not from layer names.
"""
import copy
import dataclasses

import numpy as np
import pytest

import gradutil as GU
from xiref import adam as A
from xiref import network as N
from xiref import ofenet as OF
from xiref import prune as P
from xiref import wiring as WR
from xiref.ofenet import without_action_block


# ------------------------------------------------------------------ wirings under test
def plain_mlp():
    return WR.Wiring(free=(("x", 3),), layers=tuple(WR.mlp("net", ("x",), (5, 4), 2)))


def agent_ofenet(gated=True):
    return WR.agent_wiring(obs_dim=5, act_dim=2, hidden=(7, 6),
                           ofenet=dict(n_layers=3, units=4, target_dim=4), gated=gated)


def agent_plain(gated=True):
    return WR.agent_wiring(obs_dim=5, act_dim=2, hidden=(7, 6), ofenet=None, gated=gated)


WIRINGS = {"mlp": plain_mlp, "agent_ofenet": agent_ofenet, "agent_plain": agent_plain}


def random_theta(wiring, rng):
    return {s.name: rng.uniform(0.0, 1.0, s.n_out) for s in wiring.layers if s.gated}


def flatten(theta, names):
    return np.concatenate([theta[n] for n in names])


def unflatten(x, names, sizes):
    out, k = {}, 0
    for n, m in zip(names, sizes):
        out[n] = x[k:k + m]
        k += m
    return out


def real_macs(params, wiring=None, nets=None):
    return int(sum(p["W"].size for name, p in params.items()
                   if nets is None or wiring.layer(name).net in nets))


# ------------------------------------------------------------------ 1. value and gradient
@pytest.mark.parametrize("which", sorted(WIRINGS))
def test_cost_and_grad_match_autograd(which):
    wiring = WIRINGS[which]()
    rng = np.random.default_rng(1)
    for _ in range(3):
        theta = random_theta(wiring, rng)
        c = WR.cost(wiring, theta)
        assert np.isfinite(c) and c > 0
        want = GU.autograd_grad(lambda th: WR.cost(wiring, th), theta)
        got = WR.cost_grad(wiring, theta)
        GU.check_tree(f"{which} dC/dθ", got, want, rtol=1e-12, atol=1e-12)
    # the gradient is exact at vertices as well (C is multilinear)
    for fill in (0.0, 1.0):
        theta = {k: np.full_like(v, fill) for k, v in random_theta(wiring, rng).items()}
        GU.check_tree(f"{which} dC/dθ at θ={fill}", WR.cost_grad(wiring, theta),
                      GU.autograd_grad(lambda th: WR.cost(wiring, th), theta), rtol=1e-12, atol=1e-12)


def test_cost_value_by_hand_plain_mlp():
    """Eq. (26)-(28) spelled out on the 3 -> 5 -> 4 -> 2 MLP."""
    wiring = plain_mlp()
    rng = np.random.default_rng(2)
    theta = random_theta(wiring, rng)
    t1, t2 = theta["net/h1"].sum(), theta["net/h2"].sum()
    want = (3 * t1 + t1) + (t1 * t2 + t2) + (t2 * 2 + 2)
    assert WR.cost(wiring, theta) == pytest.approx(want, rel=1e-14)
    assert WR.macs(wiring, theta) == pytest.approx(3 * t1 + t1 * t2 + t2 * 2, rel=1e-14)
    g = WR.cost_grad(wiring, theta)
    np.testing.assert_allclose(g["net/h1"], 3 + 1 + t2, rtol=1e-14)
    np.testing.assert_allclose(g["net/h2"], t1 + 1 + 2, rtol=1e-14)


def test_cost_grad_by_hand_densenet_unit():
    """Eq. (29) for a state-block unit: its own layer plus every consumer (later s/a layers, head,
    actor and both critics' first layers)."""
    wiring = agent_ofenet()
    rng = np.random.default_rng(3)
    theta = random_theta(wiring, rng)
    S = {k: v.sum() for k, v in theta.items()}
    consumers = [c.name for c in wiring.consumers("ofenet/s2")]
    assert consumers == ["ofenet/s3", "ofenet/a1", "ofenet/a2", "ofenet/a3", "ofenet/head",
                         "actor/h1", "critic1/h1", "critic2/h1"]
    n_in = 5 + S["ofenet/s1"]
    want = (n_in + 1 + 2) + S["ofenet/s3"] + S["ofenet/a1"] + S["ofenet/a2"] + S["ofenet/a3"] + 4 \
        + S["actor/h1"] + S["critic1/h1"] + S["critic2/h1"]
    np.testing.assert_allclose(WR.cost_grad(wiring, theta)["ofenet/s2"], want, rtol=1e-14)


@pytest.mark.parametrize("which", ["mlp", "agent_ofenet"])
def test_cost_grad_central_difference(which):
    wiring = WIRINGS[which]()
    rng = np.random.default_rng(4)
    theta = random_theta(wiring, rng)
    names = list(theta)
    sizes = [len(theta[n]) for n in names]
    x0 = flatten(theta, names)
    # C is a polynomial of degree 2 in θ, so central differences are exact up to rounding
    fd = GU.central_difference(lambda x: WR.cost(wiring, unflatten(x, names, sizes)), x0, h=1e-3)
    got = flatten(WR.cost_grad(wiring, theta), names)
    GU.assert_close(f"{which} dC/dθ vs central difference", got, fd, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("which", sorted(WIRINGS))
def test_cost_at_ones_is_initial_param_count(which):
    wiring = WIRINGS[which]()
    params, _ = N.init_params(wiring.layers, wiring.free_widths, np.random.default_rng(5))
    ones = WR.ones_theta(wiring)
    assert WR.cost(wiring, ones) == WR.param_count(params)
    assert WR.macs(wiring, ones) == real_macs(params)
    for net in wiring.nets():
        assert WR.macs(wiring, ones, nets=(net,)) == real_macs(params, wiring, (net,))


@pytest.mark.parametrize("which", sorted(WIRINGS))
def test_cost_grad_of_one_net_is_the_full_gradient_restricted(which):
    wiring = WIRINGS[which]()
    theta = random_theta(wiring, np.random.default_rng(8))
    full = WR.cost_grad(wiring, theta)
    for net in wiring.nets():
        part = WR.cost_grad(wiring, theta, net)
        assert set(part) == set(wiring.gated_names(net))
        for name, g in part.items():
            assert np.array_equal(g, full[name])


def test_ungated_wiring_cost_is_constant_param_count():
    wiring = agent_ofenet(gated=False)
    assert wiring.gated_names() == ()
    params, _ = N.init_params(wiring.layers, wiring.free_widths, np.random.default_rng(6))
    assert WR.cost(wiring, {}) == WR.param_count(params)
    assert WR.cost_grad(wiring, {}) == {}


# ------------------------------------------------------------------ 2. vertices and compaction
def random_vertex(wiring, rng, p_one=0.6, zero_layers=()):
    """θ ∈ {0,1}^N; MLP hidden layers (min_units ≥ 1) keep ≥ 1 unit, the layers in zero_layers are 0."""
    theta = {}
    for s in wiring.layers:
        if not s.gated:
            continue
        t = (rng.random(s.n_out) < p_one).astype(np.float64)
        if s.name in zero_layers:
            t[:] = 0.0
        elif s.min_units > 0 and np.count_nonzero(t) < s.min_units:
            t[rng.choice(s.n_out, s.min_units, replace=False)] = 1.0
        theta[s.name] = t
    return theta


VERTEX_CASES = [
    ("mlp", ()),
    ("agent_plain", ()),
    ("agent_ofenet", ()),
    ("agent_ofenet", ("ofenet/s2",)),
    ("agent_ofenet", ("ofenet/s1", "ofenet/a3")),
    ("agent_ofenet", ("ofenet/s1", "ofenet/s2", "ofenet/s3")),
    ("agent_ofenet", ("ofenet/s1", "ofenet/s2", "ofenet/s3", "ofenet/a1", "ofenet/a2", "ofenet/a3")),
]


@pytest.mark.parametrize("which,zero_layers", VERTEX_CASES)
def test_cost_at_vertex_equals_compacted_param_count(which, zero_layers):
    wiring = WIRINGS[which]()
    rng = np.random.default_rng(7)
    for trial in range(4):
        params, stats = N.init_params(wiring.layers, wiring.free_widths, rng)
        adam = A.adam_init(params)
        critic_names = [s.name for s in wiring.layers if s.net.startswith("critic")]
        target = copy.deepcopy({k: params[k] for k in critic_names})
        vertex = random_vertex(wiring, rng, p_one=0.3 + 0.15 * trial, zero_layers=zero_layers)
        theta = {k: v.copy() for k, v in vertex.items()}
        c_vertex = WR.cost(wiring, vertex)
        macs_vertex = WR.macs(wiring, vertex)
        removed = P.prune_zero_units(wiring, theta, [params, stats, adam.m, adam.v, target])
        assert removed == {k: int(np.sum(v == 0)) for k, v in vertex.items() if np.any(v == 0)}
        for k, v in theta.items():
            assert np.all(v == 1.0) and len(v) == int(vertex[k].sum())
        real = WR.param_count(params)
        assert WR.cost(wiring, theta) == real
        assert c_vertex == real
        assert WR.macs(wiring, theta) == real_macs(params) == macs_vertex
        for net in wiring.nets():
            assert WR.macs(wiring, vertex, nets=(net,)) == real_macs(params, wiring, (net,))
        # the compacted containers are consistent with the wiring: W is (Σ source widths, width)
        for s in wiring.layers:
            n_in = sum(wiring.source_widths(s, theta))
            n_out = wiring.out_width(s, theta)
            for container in (params, adam.m, adam.v) + ((target,) if s.name in target else ()):
                assert container[s.name]["W"].shape == (n_in, n_out)
                assert container[s.name]["b"].shape == (n_out,)
            if s.bn:
                assert stats[s.name]["mean"].shape == stats[s.name]["var"].shape == (n_out,)
        # Adam moments and target copies are not counted in C (Choice, Eq. 28) but shrink alike
        assert WR.param_count(adam.m) == WR.param_count(adam.v) == real
        assert WR.param_count(target) == WR.param_count(params, nets=("critic1", "critic2"), wiring=wiring)


# ------------------------------------------------------------------ 5. roles come from the wiring
def renamed(wiring, layer_names, net_names):
    """The wiring with layers and networks renamed; consumers' inputs and the roles follow."""
    def name(src):
        return layer_names.get(src, src)
    layers = tuple(dataclasses.replace(s, name=name(s.name), net=net_names.get(s.net, s.net),
                                       inputs=tuple(name(src) for src in s.inputs)) for s in wiring.layers)
    roles = tuple((net_names.get(net, net), role) for net, role in wiring.roles)
    return dataclasses.replace(wiring, layers=layers, roles=roles)


def state_layers_by_name(wiring):
    """The name-substring reading the wiring's `block` field replaced (negative control)."""
    return tuple(s for s in wiring.net_layers("ofenet") if "/s" in s.name)


def test_roles_come_from_the_wiring_not_from_names():
    """Layers renamed 'layer00', 'layer01', … and the critics 'q_first', 'q_second': the same state/action blocks,
    head, critic set and knob roles, an equal cost; a name-substring reading finds no state block."""
    wiring = agent_ofenet()
    layer_names = {s.name: f"layer{k:02d}" for k, s in enumerate(wiring.layers)}
    other = renamed(wiring, layer_names, {"critic1": "q_first", "critic2": "q_second"})
    for blocks in (OF.state_layers, OF.action_layers):
        want = [layer_names[s.name] for s in blocks(wiring)]
        assert len(want) == 3 and [s.name for s in blocks(other)] == want
    assert [s.name for s in other.layers if s.block == "head"] == [layer_names["ofenet/head"]]
    assert wiring.critics() == ("critic1", "critic2") and other.critics() == ("q_first", "q_second")
    assert [other.role(net) for net in other.nets()] == ["ofenet", "actor", "critic", "critic"]
    feats = {src: None for src in ("obs", "act", *layer_names.values())}
    kept = set(without_action_block(other, feats))
    assert kept == set(feats) - {layer_names[s.name] for s in OF.action_layers(wiring)}
    theta = random_theta(wiring, np.random.default_rng(11))
    assert WR.cost(other, {layer_names[k]: v for k, v in theta.items()}) == WR.cost(wiring, theta)
    # negative control: the substring reading is right on the usual names, wrong on the renamed wiring
    assert state_layers_by_name(wiring) == OF.state_layers(wiring)
    assert state_layers_by_name(other) == () != OF.state_layers(other)
    assert tuple(net for net in other.nets() if net.startswith("critic")) == () != other.critics()
