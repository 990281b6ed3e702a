"""network.backward against autograd of network.forward (and central differences), on small wirings.

Checked for every network of a small agent (OFENet, actor, critic reading OFENet features, and the whole
agent in one pass) and a lone DenseNet block: gradients w.r.t. all parameters (W, b, s, c), all free
inputs (including 'act' and the OFENet features a critic consumes) and the gates — sampled masks ξ (B, n)
compared entry by entry, expected gates θ (n,) compared as d_gates.sum(0) — in BN train and eval mode.
The loss reads several outputs (a head and intermediate layers, sometimes a free input) so gradients
accumulate over several consumers.
"""
import zlib

import numpy as np
import pytest

from gradutil import GradientMismatch, central_difference, check_tree
from gradutil import autograd_grad
from xiref import layers as L
from xiref import network as Nw
from xiref import wiring as Wr

B = 6
EPS_BN = 1e-3
OBS, ACT = 5, 2


def small_agent():
    return Wr.agent_wiring(obs_dim=OBS, act_dim=ACT, hidden=(7, 6),
                           ofenet=dict(n_layers=2, units=3, target_dim=4))


def all_widths(wiring):
    w = dict(wiring.free_widths)
    w.update({s.name: s.n_out for s in wiring.layers})
    return w


def randomise(params, stats, rng):
    """Random b, s, c (init gives 0, 1, 0) and running statistics, so every term is exercised and no
    ReLU pre-activation sits exactly at 0."""
    for p in params.values():
        p["b"] = rng.normal(scale=0.5, size=p["b"].shape)
        if "s" in p:
            p["s"] = rng.uniform(0.5, 1.5, size=p["s"].shape) * rng.choice([-1.0, 1.0], size=p["s"].shape)
            p["c"] = rng.normal(scale=0.5, size=p["c"].shape)
    for st in stats.values():
        st["mean"] = rng.normal(scale=0.5, size=st["mean"].shape)
        st["var"] = rng.uniform(0.3, 2.0, size=st["var"].shape)
    return params, stats


def free_sources(specs):
    """Sources read by `specs` that they do not produce, in first-use order."""
    own = {s.name for s in specs}
    return list(dict.fromkeys(src for s in specs for src in s.inputs if src not in own))


def make_gates(specs, kind, rng):
    gates = {}
    for s in specs:
        if not s.gated:
            continue
        if kind == "xi":        # sampled masks ξ ∈ {0,1}^{B×n}, with both values present
            m = (rng.uniform(size=(B, s.n_out)) < 0.7).astype(np.float64)
            m[0, :], m[1, 0] = 1.0, 0.0
            gates[s.name] = m
        else:                   # expected gates θ ∈ (0,1)^n
            gates[s.name] = rng.uniform(0.2, 0.95, size=s.n_out)
    return gates


def loss_and_grads(specs, params, inputs, gates, stats, bn_train, read, R):
    """Returns (hand-written (grads, d_inputs, d_gates), autograd's gradient tree) for
    loss = Σ_{name ∈ read} sum(acts[name] * R[name])."""
    def loss(tree):
        acts, _ = Nw.forward(specs, tree["params"], tree["inputs"], tree["gates"], stats, bn_train, EPS_BN)
        total = 0.0
        for name in read:
            total = total + np.sum(acts[name] * R[name])
        return total

    tree = {"params": params, "inputs": inputs, "gates": gates}
    want = autograd_grad(loss, tree)
    _, cache = Nw.forward(specs, params, inputs, gates, stats, bn_train, EPS_BN)
    got = Nw.backward(specs, params, gates, cache, {k: R[k] for k in read}, bn_train)
    return got, want


def check_network(specs, widths, params, inputs, gates, stats, bn_train, read, rng, gate_kind):
    R = {name: rng.normal(size=(B, widths[name])) for name in read}
    (grads, d_inputs, d_gates), want = loss_and_grads(specs, params, inputs, gates, stats, bn_train, read, R)
    check_tree("params", grads, want["params"])
    check_tree("inputs", d_inputs, want["inputs"])
    assert set(d_gates) == set(gates)
    if gate_kind == "xi":
        check_tree("gates ξ", d_gates, want["gates"])
    else:
        for name, dg in d_gates.items():
            assert dg.shape == (B, len(gates[name]))
        check_tree("gates θ", {k: v.sum(0) for k, v in d_gates.items()}, want["gates"])


# which layers each network's loss reads: an output plus intermediate layers (and sometimes a free input)
READS = {
    "ofenet": ["ofenet/head", "ofenet/s1", "ofenet/a1", "obs"],
    "actor": ["actor/out", "actor/h1"],
    "critic1": ["critic1/out", "critic1/h1", "ofenet/s2"],
    "all": ["ofenet/head", "ofenet/s1", "actor/out", "critic1/out", "critic2/h2", "act"],
}


def random_network(net, tag):
    """(rng, wiring, params, stats, specs, inputs) of network `net` ("all": every layer) of the small agent,
    randomised from a generator seeded by `tag`; inputs are the network's free sources: obs/act, and for
    actor/critic the OFENet features they consume."""
    rng = np.random.default_rng(zlib.crc32(tag.encode()))
    wiring = small_agent()
    widths = all_widths(wiring)
    params, stats = randomise(*Nw.init_params(wiring.layers, wiring.free_widths, rng), rng)
    specs = wiring.layers if net == "all" else wiring.net_layers(net)
    inputs = {src: rng.normal(size=(B, widths[src])) for src in free_sources(specs)}
    return rng, wiring, params, stats, specs, inputs


@pytest.mark.parametrize("gate_kind", ["xi", "theta"])
@pytest.mark.parametrize("bn_train", [True, False])
@pytest.mark.parametrize("net", ["ofenet", "actor", "critic1", "all"])
def test_agent_network_backward_matches_autograd(net, bn_train, gate_kind):
    rng, wiring, params, stats, specs, inputs = random_network(net, f"{net}-{bn_train}-{gate_kind}")
    if net == "critic1":
        assert {"act", "obs", "ofenet/s1", "ofenet/s2", "ofenet/a1", "ofenet/a2"} <= set(inputs)
    if net == "actor":
        assert set(inputs) == {"obs", "ofenet/s1", "ofenet/s2"}
    if net in ("ofenet", "all"):
        assert set(inputs) == {"obs", "act"}
    gates = make_gates(specs, gate_kind, rng)
    p = {s.name: params[s.name] for s in specs}
    st = {s.name: stats[s.name] for s in specs if s.bn}
    check_network(specs, all_widths(wiring), p, inputs, gates, st, bn_train, READS[net], rng, gate_kind)


@pytest.mark.parametrize("gated,bn", [(True, True), (False, True), (True, False)])
@pytest.mark.parametrize("bn_train", [True, False])
def test_densenet_block_backward_matches_autograd(gated, bn, bn_train):
    """A lone DenseNet block; the loss reads the whole block output [x, y_1, …, y_L] (Eq. 5), so x and
    every y_l get gradient both from the loss and from all later layers."""
    rng = np.random.default_rng(7 + 2 * gated + 4 * bn + bn_train)
    specs, out = Wr.densenet_block("dn", "l", ("x",), n_layers=3, units=4, gated=gated, bn=bn)
    assert out == ("x", "dn/l1", "dn/l2", "dn/l3")
    assert specs[2].inputs == ("x", "dn/l1", "dn/l2")
    widths = {"x": 3, **{s.name: s.n_out for s in specs}}
    params, stats = randomise(*Nw.init_params(specs, {"x": 3}, rng), rng)
    inputs = {"x": rng.normal(size=(B, 3))}
    for kind in ("xi", "theta") if gated else ("none",):
        gates = make_gates(specs, kind, rng)
        check_network(specs, widths, params, inputs, gates, stats, bn_train, list(out), rng, kind)


@pytest.mark.parametrize("bn_train", [True, False])
def test_input_grads_for_named_sources_only(bn_train):
    """input_grads as a set of names: d_inputs holds exactly those sources, each equal to autograd's; the
    layers compute du Wᵀ only for the rows that multiply them (so a wrong row range shows here)."""
    rng, wiring, params, stats, _, _ = random_network("all", f"named-{bn_train}")
    specs = tuple(s for s in wiring.layers if s.name.startswith(("ofenet/a", "critic1/", "critic2/")))
    widths = all_widths(wiring)
    inputs = {src: rng.normal(size=(B, widths[src])) for src in free_sources(specs)}
    assert {"obs", "ofenet/s1", "ofenet/s2", "act"} == set(inputs)
    gates = make_gates(specs, "theta", rng)
    read = ["critic1/out", "critic2/out", "critic2/h1"]
    R = {name: rng.normal(size=(B, widths[name])) for name in read}
    (_, full, _), want = loss_and_grads(specs, params, inputs, gates, stats, bn_train, read, R)
    _, cache = Nw.forward(specs, params, inputs, gates, stats, bn_train, EPS_BN)
    for wanted in ({"act"}, {"ofenet/s2", "act"}, {"obs"}, set()):
        _, d_in, _ = Nw.backward(specs, params, gates, cache, R, bn_train, param_grads=False, input_grads=wanted)
        assert set(d_in) == wanted
        check_tree(f"inputs {sorted(wanted)}", d_in, {k: want["inputs"][k] for k in wanted})
        check_tree(f"inputs {sorted(wanted)} vs all", d_in, {k: full[k] for k in wanted}, rtol=1e-13, atol=0)


def test_joined_inputs_equal_concatenation_of_sources():
    """forward joins a DenseNet layer's input from the previous join plus the new part: every layer's h is
    bit for bit the concatenation of its sources (the whole agent, OFENet state and action blocks, critics)."""
    rng, wiring, params, stats, specs, inputs = random_network("all", "joined")
    acts, cache = Nw.forward(specs, params, inputs, make_gates(specs, "theta", rng), stats, False, EPS_BN)
    grown = [s for s in specs if len(s.inputs) > 2]
    assert len(grown) >= 4
    for s in specs:
        want = np.concatenate([acts[src] for src in s.inputs], axis=1)
        assert cache[s.name]["h"].shape == want.shape and np.array_equal(cache[s.name]["h"], want), s.name


def test_runs_of_needed_sources():
    assert Nw._runs([2, 3, 1, 4], [False, True, True, False]) == [(1, 3, slice(2, 6))]
    assert Nw._runs([2, 3, 1, 4], [True, False, True, True]) == [(0, 1, slice(0, 2)), (2, 4, slice(5, 10))]
    assert Nw._runs([2, 3], [False, False]) == []


@pytest.mark.parametrize("net", ["critic1", "ofenet"])
def test_cache_rows_backward_equals_rows_of_full_backward(net):
    """An input-gradient pass over a subset of the examples (cache_rows) gives those rows of the full pass
    (a critic; OFENet in inference-mode BN, whose x̂ is per example)."""
    rng, wiring, params, stats, specs, inputs = random_network(net, f"rows-{net}")
    gates = make_gates(specs, "theta", rng)
    out = specs[-1].name
    R = {out: rng.normal(size=(B, specs[-1].n_out))}
    _, cache = Nw.forward(specs, params, inputs, gates, stats, False, EPS_BN)
    _, full, _ = Nw.backward(specs, params, gates, cache, R, False, param_grads=False, gate_grads=False)
    rows = np.array([0, 2, 3])
    sub = Nw.cache_rows(specs, cache, rows)
    _, part, _ = Nw.backward(specs, params, gates, sub, {out: R[out][rows]}, False,
                             param_grads=False, gate_grads=False)
    check_tree("rows of d_inputs", part, {k: v[rows] for k, v in full.items()}, rtol=1e-13, atol=0)
    with pytest.raises(GradientMismatch):
        check_tree("other rows", part, {k: v[rows + 1] for k, v in full.items()}, rtol=1e-13, atol=0)


def test_theta_gates_equal_per_example_xi_column():
    """d_gates is per example: for θ gates it equals the ξ-gradient evaluated at ξ_i = θ for all i."""
    rng = np.random.default_rng(3)
    wiring = small_agent()
    specs = wiring.net_layers("ofenet")
    params, stats = randomise(*Nw.init_params(wiring.layers, wiring.free_widths, rng), rng)
    inputs = {"obs": rng.normal(size=(B, OBS)), "act": rng.normal(size=(B, ACT))}
    theta = make_gates(specs, "theta", rng)
    xi = {k: np.tile(v, (B, 1)) for k, v in theta.items()}
    d = {"ofenet/head": rng.normal(size=(B, 4))}
    out = []
    for g in (theta, xi):
        _, cache = Nw.forward(specs, params, inputs, g, stats, True, EPS_BN)
        out.append(Nw.backward(specs, params, g, cache, d, True))
    check_tree("d_gates θ vs ξ=θ", out[0][2], out[1][2], rtol=1e-13, atol=1e-15)
    check_tree("grads θ vs ξ=θ", out[0][0], out[1][0], rtol=1e-13, atol=1e-15)


# ---------------------------------------------------------------- finite differences
def test_ofenet_train_bn_against_central_differences():
    """Whole OFENet (state + action block + head), BN with batch statistics, sampled masks; every
    parameter array, both inputs and the masks (as floats) against central differences."""
    rng = np.random.default_rng(11)
    wiring = Wr.agent_wiring(obs_dim=3, act_dim=2, hidden=(2,), ofenet=dict(n_layers=2, units=2, target_dim=2))
    specs = wiring.net_layers("ofenet")
    params, stats = randomise(*Nw.init_params(specs, wiring.free_widths, rng), rng)
    inputs = {"obs": rng.normal(size=(B, 3)), "act": rng.normal(size=(B, 2))}
    gates = make_gates(specs, "xi", rng)
    read = ["ofenet/head", "ofenet/s2"]
    R = {"ofenet/head": rng.normal(size=(B, 2)), "ofenet/s2": rng.normal(size=(B, 2))}

    def loss_of(params_, inputs_, gates_):
        acts, _ = Nw.forward(specs, params_, inputs_, gates_, stats, True, EPS_BN)
        return sum(np.sum(acts[k] * R[k]) for k in read)

    _, cache = Nw.forward(specs, params, inputs, gates, stats, True, EPS_BN)
    grads, d_inputs, d_gates = Nw.backward(specs, params, gates, cache, R, True)
    tol = dict(rtol=1e-5, atol=1e-7)
    n_checked = 0
    for layer, p in params.items():
        for key in p:
            def f(x, layer=layer, key=key):
                q = {l: dict(v) for l, v in params.items()}
                q[layer][key] = x
                return loss_of(q, inputs, gates)
            check_tree(f"fd {layer}.{key}", grads[layer][key], central_difference(f, p[key]), **tol)
            n_checked += 1
    for src, x0 in inputs.items():
        f = lambda x, src=src: loss_of(params, {**inputs, src: x}, gates)
        check_tree(f"fd input {src}", d_inputs[src], central_difference(f, x0), **tol)
    for name, g0 in gates.items():
        f = lambda x, name=name: loss_of(params, inputs, {**gates, name: x})
        check_tree(f"fd gate {name}", d_gates[name], central_difference(f, g0), **tol)
    assert n_checked == 4 * 4 + 2   # four BN layers (W, b, s, c) and the head (W, b)


# ---------------------------------------------------------------- negative controls
def _ofenet_case(rng):
    wiring = small_agent()
    specs = wiring.net_layers("ofenet")
    params, stats = randomise(*Nw.init_params(specs, wiring.free_widths, rng), rng)
    inputs = {"obs": rng.normal(size=(B, OBS)), "act": rng.normal(size=(B, ACT))}
    return specs, all_widths(wiring), params, stats, inputs, make_gates(specs, "xi", rng)


def test_checker_catches_bn_backward_without_batch_statistics(monkeypatch):
    rng = np.random.default_rng(5)
    specs, widths, params, stats, inputs, gates = _ofenet_case(rng)
    args = (specs, widths, params, inputs, gates, stats, True, READS["ofenet"])
    check_network(*args, np.random.default_rng(1), "xi")            # the real backward passes
    monkeypatch.setattr(L, "batchnorm_backward_train", L.batchnorm_backward_eval)
    with pytest.raises(GradientMismatch):
        check_network(*args, np.random.default_rng(1), "xi")


def test_checker_catches_wrong_swish_backward(monkeypatch):
    rng = np.random.default_rng(6)
    specs, widths, params, stats, inputs, gates = _ofenet_case(rng)

    def wrong_swish_backward(dy, u):            # σ'(u) term replaced by σ(u)²
        s = L.sigmoid(u)
        return dy * (s + u * s * s)

    monkeypatch.setitem(L.ACTIVATIONS, "swish", (L.swish_forward, wrong_swish_backward))
    with pytest.raises(GradientMismatch):
        check_network(specs, widths, params, inputs, gates, stats, False, READS["ofenet"],
                      np.random.default_rng(1), "xi")


def test_checker_catches_missing_accumulation():
    """Dropping the loss's direct read of an intermediate layer (a lost consumer) must be caught."""
    rng = np.random.default_rng(8)
    specs, widths, params, stats, inputs, gates = _ofenet_case(rng)
    read = READS["ofenet"]
    R = {name: rng.normal(size=(B, widths[name])) for name in read}
    (grads, d_inputs, d_gates), want = loss_and_grads(specs, params, inputs, gates, stats, True, read, R)
    _, cache = Nw.forward(specs, params, inputs, gates, stats, True, EPS_BN)
    grads2, _, _ = Nw.backward(specs, params, gates, cache, {k: R[k] for k in read if k != "ofenet/s1"}, True)
    check_tree("params", grads, want["params"])
    with pytest.raises(GradientMismatch):
        check_tree("params (consumer dropped)", grads2, want["params"])


# ---------------------------------------------------------------- running statistics
def test_update_running_stats_momentum():
    rng = np.random.default_rng(9)
    wiring = small_agent()
    specs = wiring.net_layers("ofenet")
    params, stats = randomise(*Nw.init_params(specs, wiring.free_widths, rng), rng)
    inputs = {"obs": rng.normal(size=(B, OBS)), "act": rng.normal(size=(B, ACT))}
    gates = make_gates(specs, "xi", rng)
    old = {k: {kk: vv.copy() for kk, vv in v.items()} for k, v in stats.items()}

    # eval-mode forward carries no batch statistics: the update is a no-op
    _, cache = Nw.forward(specs, params, inputs, gates, stats, False, EPS_BN)
    Nw.update_running_stats(specs, stats, cache, 0.99)
    check_tree("stats unchanged", stats, old, rtol=0, atol=0)

    acts, cache = Nw.forward(specs, params, inputs, gates, stats, True, EPS_BN)
    Nw.update_running_stats(specs, stats, cache, 0.99)
    bn_layers = [s for s in specs if s.bn]
    assert {s.name for s in bn_layers} == set(stats) and len(bn_layers) == 4
    for s in bn_layers:
        h = np.concatenate([acts[src] for src in s.inputs], axis=1)
        u = h @ params[s.name]["W"] + params[s.name]["b"]       # pre-BN, independent of the cache
        np.testing.assert_allclose(stats[s.name]["mean"], 0.99 * old[s.name]["mean"] + 0.01 * u.mean(0),
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(stats[s.name]["var"], 0.99 * old[s.name]["var"] + 0.01 * u.var(0),
                                   rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- reuse (second mask draw of 'pair')
@pytest.mark.parametrize("bn_train", [True, False])
@pytest.mark.parametrize("net", ["ofenet", "critic1", "all"])
def test_forward_reuse_equals_fresh_forward(net, bn_train):
    """forward(…, reuse=cache of other gates) gives bit for bit the forward under the new gates, and
    takes over exactly the layers that read only the inputs (no source produced by the specs)."""
    rng, wiring, params, stats, specs, inputs = random_network(net, f"reuse-{net}-{bn_train}")
    xi1, xi2 = make_gates(specs, "xi", rng), make_gates(specs, "xi", rng)
    _, cache1 = Nw.forward(specs, params, inputs, xi1, stats, bn_train, EPS_BN)
    acts, cache = Nw.forward(specs, params, inputs, xi2, stats, bn_train, EPS_BN, reuse=cache1)
    fresh_acts, fresh = Nw.forward(specs, params, inputs, xi2, stats, bn_train, EPS_BN)
    check_tree("acts", acts, fresh_acts, rtol=0, atol=0)
    own = {s.name for s in specs}
    for s in specs:
        reused = not any(src in own for src in s.inputs)
        assert (cache[s.name] is cache1[s.name]) == reused, s.name
        check_tree(s.name, {k: v for k, v in cache[s.name].items() if k != "widths"},
                   {k: v for k, v in fresh[s.name].items() if k != "widths"}, rtol=0, atol=0)
    widths = all_widths(wiring)
    R = {k: rng.normal(size=(B, widths[k])) for k in READS.get(net, ["critic1/out"]) if k in acts}
    got = Nw.backward(specs, params, xi2, cache, R, bn_train)
    want = Nw.backward(specs, params, xi2, fresh, R, bn_train)
    for g, w in zip(got, want):
        check_tree("backward", g, w, rtol=0, atol=0)
    # without the gate derivatives, the rest of the backward is unchanged
    lean = Nw.backward(specs, params, xi2, cache, R, bn_train, gate_grads=False)
    assert lean[2] == {}
    check_tree("grads", lean[0], got[0], rtol=0, atol=0)
    check_tree("d_inputs", lean[1], got[1], rtol=0, atol=0)


# ---------------------------------------------------------------- float32
@pytest.mark.parametrize("bn_train", [True, False])
def test_float32_forward_backward_stay_float32(bn_train):
    rng = np.random.default_rng(10)
    wiring = small_agent()
    f32 = np.float32
    params, stats = Nw.init_params(wiring.layers, wiring.free_widths, rng, dtype=f32)
    assert all(v.dtype == f32 for p in params.values() for v in p.values())
    params, stats = randomise(params, stats, rng)
    params = {k: {kk: vv.astype(f32) for kk, vv in v.items()} for k, v in params.items()}
    stats = {k: {kk: vv.astype(f32) for kk, vv in v.items()} for k, v in stats.items()}
    inputs = {"obs": rng.normal(size=(B, OBS)).astype(f32), "act": rng.normal(size=(B, ACT)).astype(f32)}
    gates = {k: v.astype(f32) for k, v in make_gates(wiring.layers, "xi", rng).items()}
    gates.update({k: v.astype(f32) for k, v in make_gates(wiring.net_layers("actor"), "theta", rng).items()})
    acts, cache = Nw.forward(wiring.layers, params, inputs, gates, stats, bn_train, EPS_BN)
    for k, v in acts.items():
        assert v.dtype == f32, k
    widths = all_widths(wiring)
    d_acts = {k: rng.normal(size=(B, widths[k])).astype(f32) for k in READS["all"]}
    grads, d_inputs, d_gates = Nw.backward(wiring.layers, params, gates, cache, d_acts, bn_train)
    for layer, g in grads.items():
        assert set(g) == set(params[layer])
        for kk, v in g.items():
            assert v.dtype == f32, (layer, kk)
            assert np.all(np.isfinite(v))
    assert set(d_inputs) == {"obs", "act"}
    for tree in (d_inputs, d_gates):
        for k, v in tree.items():
            assert v.dtype == f32, k
    if bn_train:
        Nw.update_running_stats(wiring.layers, stats, cache, 0.99)
        for k, v in stats.items():
            assert v["mean"].dtype == f32 and v["var"].dtype == f32, k
    # float32 result agrees with float64 to single precision
    p64 = {k: {kk: vv.astype(np.float64) for kk, vv in v.items()} for k, v in params.items()}
    s64 = {k: {kk: vv.astype(np.float64) for kk, vv in v.items()} for k, v in stats.items()}
    to64 = lambda t: {k: v.astype(np.float64) for k, v in t.items()}
    _, c64 = Nw.forward(wiring.layers, p64, to64(inputs), to64(gates), s64, bn_train, EPS_BN)
    g64, _, _ = Nw.backward(wiring.layers, p64, to64(gates), c64, to64(d_acts), bn_train)
    check_tree("float32 vs float64", grads, g64, rtol=2e-3, atol=2e-4)
