"""SAC and OFENet losses and their hand-written backward passes against autograd (docs/METHOD.md §2, §3).

Every hand-written gradient is compared (rtol 1e-7, gradutil) with autograd's gradient of a plain-NumPy
forward of the same quantity, in float64:

* xiref/sac.py one by one: tanh_gaussian (Eq. 9; log π also against the naive change-of-variables formula,
  at |x| ≈ 30 against the stable asymptotics, log σ ∈ [−5, 2]), critic_loss (11), actor_loss (12, the min
  routes the gradient to the smaller critic), alpha_loss (13), td_target (10), polyak (14);
  ofenet.aux_loss (8, reads only the first T entries of o′).
* The chains the agent runs, on a small gated agent with OFENet (random θ ∈ (0,1], random BN statistics):
  - actor (Eq. 12): sampled actor mask ξ, critics and the OFENet action block with expected gates θ̃ or θ and
    inference BN; the action gradient flows through the OFENet action block as well as into the critics;
  - critics (Eq. 11) with their own masks, reading inference-mode OFENet features z_oa;
  - OFENet (Eq. 8) with training-mode BN and sampled masks, gradient w.r.t. every OFENet parameter.
  The references recompute everything from the raw batch with network.forward and sac.tanh_gaussian, not
  with Agent.features / Agent.q_values. The hand side is losses.actor_loss_fn / losses.critic_loss_fn
  (imported), xinet.gated_gradients with a replayed mask draw, and — through a spy on
  xinet.gated_gradients — the very closures Agent.update_sac / update_ofenet build.
* A negative control (log σ gradient without its −1 term) must fail the checker.
* Smoke: update_ofenet / update_sac for the sac, ofe and xinet configurations in float64 and float32.
"""
import copy
import inspect
import zlib

import numpy as np
import pytest

from gradutil import GradientMismatch, assert_close, autograd_grad, check_tree
from xiref import network as N
from xiref import ofenet as OF
from xiref import sac
from xiref import xinet
from xiref.agent import Agent, AgentConfig
from xiref.losses import actor_loss_fn, critic_loss_fn, critics_action_grad

B = 8                     # even: the critic-2 shift below splits the batch exactly between the critics
OBS, ACT, T = 5, 2, 4
LOG_SCALE = np.log([1.0, 2.0])
EPS_BN = 1e-3


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


# ====================================================================== 1. tanh-Gaussian, Eq. (9)
def naive_log_pi(out, eps, log_scale):
    """Eq. (9) written the textbook way: Normal log-density of x, minus log(1 − tanh² x), minus log scale.
    log σ from λ directly (−5 + 3.5 (tanh λ + 1)); fine for moderate x only."""
    A = eps.shape[1]
    mu, lam = out[:, :A], out[:, A:]
    log_sigma = -5.0 + 3.5 * (np.tanh(lam) + 1.0)
    sigma = np.exp(log_sigma)
    x = mu + sigma * eps
    normal = -0.5 * ((x - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2.0 * np.pi)
    return np.sum(normal - np.log(1.0 - np.tanh(x) ** 2) - log_scale, axis=1), np.tanh(x)


def random_actor_out(rng, mu_scale=1.0, lam_scale=1.0):
    return np.concatenate([rng.normal(scale=mu_scale, size=(B, ACT)), rng.normal(scale=lam_scale, size=(B, ACT))],
                          axis=1)


def tanh_gaussian_case(rng, out):
    eps = rng.normal(size=(B, ACT))
    Ra, Rl = rng.normal(size=(B, ACT)), rng.normal(size=B)

    def f(o):
        a, log_pi, _ = sac.tanh_gaussian(o, eps, LOG_SCALE)
        return np.sum(a * Ra) + np.sum(log_pi * Rl)

    _, _, cache = sac.tanh_gaussian(out, eps, LOG_SCALE)
    return f, eps, Ra, Rl, cache


@pytest.mark.parametrize("mu_scale", [1.0, 30.0])
def test_tanh_gaussian_backward_matches_autograd(mu_scale):
    """d[Σ a·Ra + Σ log π·Rl]/d out, ε fixed; also far in the tails (|μ| ~ 30, a = ±1 in float64)."""
    rng = rng_for(f"tg-{mu_scale}")
    out = random_actor_out(rng, mu_scale=mu_scale)
    f, eps, Ra, Rl, cache = tanh_gaussian_case(rng, out)
    got = sac.tanh_gaussian_backward(Ra, Rl, cache)
    assert got.shape == (B, 2 * ACT) and np.all(np.isfinite(got))
    assert_close("d out", got, autograd_grad(f, out))


def test_tanh_gaussian_log_pi_matches_naive_formula():
    rng = rng_for("tg-naive")
    out = random_actor_out(rng, lam_scale=0.5)
    eps = rng.normal(size=(B, ACT))
    a, log_pi, _ = sac.tanh_gaussian(out, eps, LOG_SCALE)
    want_lp, want_a = naive_log_pi(out, eps, LOG_SCALE)
    assert log_pi.shape == (B,) and a.shape == (B, ACT)
    x = out[:, :ACT] + np.exp(sac.log_std(out[:, ACT:])) * eps
    assert np.max(np.abs(x)) < 5                     # moderate x: 1 − tanh² x loses < 1e-11 to cancellation
    assert_close("log_pi", log_pi, want_lp, rtol=1e-10)
    assert_close("a", a, want_a, rtol=1e-13)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_tanh_gaussian_stable_in_the_tails(sign):
    """μ = ±30: 1 − tanh² x underflows to 0, so the naive formula is infinite; Eq. (9)'s stable form must
    give log(1 − tanh² x) = log 4 − 2|x| + O(e^{−2|x|}) and a finite gradient."""
    rng = rng_for(f"tg-tail-{sign}")
    lam = rng.normal(scale=0.3, size=(B, ACT))
    out = np.concatenate([np.full((B, ACT), 30.0 * sign), lam], axis=1)
    eps = rng.normal(size=(B, ACT))
    a, log_pi, cache = sac.tanh_gaussian(out, eps, LOG_SCALE)
    ls = sac.log_std(lam)
    x = out[:, :ACT] + np.exp(ls) * eps
    assert np.min(np.abs(x)) > 20
    with np.errstate(divide="ignore"):
        assert np.all(np.isinf(naive_log_pi(out, eps, LOG_SCALE)[0]))        # why the stable form exists
    want = np.sum(-0.5 * eps ** 2 - ls - 0.5 * np.log(2 * np.pi) - (np.log(4.0) - 2.0 * np.abs(x)) - LOG_SCALE,
                  axis=1)
    assert np.all(np.isfinite(log_pi))
    assert_close("log_pi tails", log_pi, want, rtol=1e-13)
    assert np.all(a == sign)
    g = sac.tanh_gaussian_backward(rng.normal(size=(B, ACT)), rng.normal(size=B), cache)
    assert np.all(np.isfinite(g))


def test_log_std_range():
    lam = np.array([[-1e4, -50.0, -3.0, 0.0, 3.0, 50.0, 1e4]])
    ls = sac.log_std(lam)
    assert np.all(ls >= -5.0) and np.all(ls <= 2.0)
    assert ls[0, 0] == -5.0 and ls[0, -1] == 2.0 and ls[0, 3] == -1.5
    # the same through tanh_gaussian: with ε = 0, μ = 0 (x = 0), log π = Σ_k (−log σ_k − ½ log 2π − log scale_k)
    lam2 = np.array([[-1e4, 1e4], [-50.0, 50.0], [0.0, 0.0]])
    out = np.concatenate([np.zeros_like(lam2), lam2], axis=1)
    _, log_pi, cache = sac.tanh_gaussian(out, np.zeros_like(lam2), LOG_SCALE)
    assert np.all(np.isfinite(cache["sigma"])) and np.all(cache["sigma"] > 0)
    assert_close("log_pi at x=0", log_pi, -np.sum(sac.log_std(lam2) + 0.5 * np.log(2 * np.pi) + LOG_SCALE, axis=1),
                 rtol=1e-14)
    assert_close("log σ extremes", np.log(cache["sigma"][:2]), [[-5.0, 2.0], [-5.0, 2.0]], rtol=1e-14)


# ====================================================================== 6. negative control
def backward_without_log_sigma_term(d_a, d_log_pi, cache):
    """sac.tanh_gaussian_backward with the −1 of ∂log π/∂log σ dropped (deliberately wrong)."""
    a, lam, sigma, eps = cache["a"], cache["lam"], cache["sigma"], cache["eps"]
    dlp = d_log_pi[:, None]
    dx = d_a * (1.0 - a * a) + dlp * (2.0 * a)
    d_ls = dx * (sigma * eps)                                        # missing: − dlp
    d_lam = d_ls * 3.5 * (1.0 - np.tanh(lam) ** 2)
    return np.concatenate([dx, d_lam], axis=1)


def test_checker_catches_missing_log_sigma_term():
    rng = rng_for("tg-negative")
    out = random_actor_out(rng)
    f, eps, Ra, Rl, cache = tanh_gaussian_case(rng, out)
    want = autograd_grad(f, out)
    assert_close("correct", sac.tanh_gaussian_backward(Ra, Rl, cache), want)    # the real one passes ...
    with pytest.raises(GradientMismatch):                                        # ... the broken one fails
        assert_close("broken", backward_without_log_sigma_term(Ra, Rl, cache), want)


# ====================================================================== 2. the other losses
def test_critic_loss_matches_autograd():
    rng = rng_for("critic-loss")
    q, y = rng.normal(size=B), rng.normal(size=B)
    ell, dq = sac.critic_loss(q, y)
    assert_close("ell", ell, (q - y) ** 2, rtol=1e-14)
    assert_close("dq", dq, autograd_grad(lambda q_: np.mean((q_ - y) ** 2), q))


def test_actor_loss_min_routing_matches_autograd():
    rng = rng_for("actor-loss")
    alpha = 0.37
    log_pi, q1 = rng.normal(size=B), rng.normal(size=B)
    q2 = q1 + np.where(np.arange(B) % 2 == 0, 1.0, -1.0) * rng.uniform(0.1, 1.0, size=B)   # no ties, both routes
    ell, d_lp, d_q1, d_q2 = sac.actor_loss(log_pi, q1, q2, alpha)
    assert_close("ell", ell, alpha * log_pi - np.minimum(q1, q2), rtol=1e-14)

    def f(t):
        return np.mean(alpha * t["lp"] - np.minimum(t["q1"], t["q2"]))
    want = autograd_grad(f, {"lp": log_pi, "q1": q1, "q2": q2})
    check_tree("actor_loss", {"lp": d_lp, "q1": d_q1, "q2": d_q2}, want)
    assert np.count_nonzero(d_q1) == B // 2 and np.count_nonzero(d_q2) == B // 2


def test_actor_loss_ties_go_to_critic1():
    """Documented tie rule: all of the −1/B goes to critic 1 (autograd's np.minimum would split it)."""
    q = np.linspace(-1, 1, B)
    _, _, d_q1, d_q2 = sac.actor_loss(np.zeros(B), q, q.copy(), 0.5)
    assert np.all(d_q1 == -1.0 / B) and np.all(d_q2 == 0.0)


def test_alpha_loss_matches_autograd_and_sign():
    rng = rng_for("alpha-loss")
    log_pi = rng.normal(size=B)
    target_entropy = -float(ACT)
    for log_alpha in (-1.3, 0.0, 0.4):
        L, g = sac.alpha_loss(log_alpha, log_pi, target_entropy)
        # Eq. (13): L_α = −(1/B) Σ_i log α (log π_i − A)
        f = lambda la: -np.mean(la * (log_pi - ACT))
        assert_close("L_alpha", L, f(log_alpha), rtol=1e-14)
        assert_close("dL/dlog α", g, autograd_grad(f, log_alpha))
    # entropy below target (mean log π > A): gradient descent must raise α
    _, g = sac.alpha_loss(0.0, np.full(B, ACT + 1.0), target_entropy)
    assert g < 0
    _, g = sac.alpha_loss(0.0, np.full(B, ACT - 1.0), target_entropy)
    assert g > 0


def test_td_target_formula_and_termination():
    rng = rng_for("td")
    r, q1n, q2n, lpn = (rng.normal(size=B) for _ in range(4))
    alpha, gamma = 0.3, 0.97
    d = (np.arange(B) % 3 == 0).astype(np.float64)
    y = sac.td_target(r, d, q1n, q2n, lpn, alpha, gamma)
    want = r + gamma * (1 - d) * (np.minimum(q1n, q2n) - alpha * lpn)
    assert_close("y", y, want, rtol=1e-14)
    # d = 1 (termination): no bootstrap at all, whatever the next-state values
    y1 = sac.td_target(r, np.ones(B), 1e6 * q1n, -1e6 * q2n, 1e6 * lpn, alpha, gamma)
    assert np.array_equal(y1, r)
    # d = 0 (running or time-limit truncation): bootstrap kept
    y0 = sac.td_target(r, np.zeros(B), q1n, q2n, lpn, alpha, gamma)
    assert_close("y d=0", y0, r + gamma * (np.minimum(q1n, q2n) - alpha * lpn), rtol=1e-14)
    assert np.all(y0 != r)


def test_polyak_formula_in_place():
    rng = rng_for("polyak")
    online = {"c/h1": {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}, "c/out": {"W": rng.normal(size=(4, 1)),
                                                                                          "b": rng.normal(size=1)}}
    target = copy.deepcopy(online)
    for p in target.values():
        for k in p:
            p[k] = p[k] + rng.normal(size=p[k].shape)
    before = copy.deepcopy(target)
    ids = {(l, k): id(a) for l, p in target.items() for k, a in p.items()}
    tau = 0.005
    sac.polyak(target, online, tau)
    for l, p in target.items():
        for k, a in p.items():
            assert id(a) == ids[(l, k)]                                   # in place: same arrays
            assert_close(f"{l}.{k}", a, tau * online[l][k] + (1 - tau) * before[l][k], rtol=1e-14)
    sac.polyak(target, online, 1.0)
    check_tree("tau=1 copies", target, online, rtol=0, atol=0)


def test_aux_loss_matches_autograd_and_reads_first_T():
    rng = rng_for("aux")
    o_hat, o_next = rng.normal(size=(B, T)), rng.normal(size=(B, OBS))
    ell, d = OF.aux_loss(o_hat, o_next)
    assert_close("ell", ell, np.mean((o_hat - o_next[:, :T]) ** 2, axis=1), rtol=1e-14)   # (1/T)‖·‖²
    f = lambda oh: np.mean(np.sum((oh - o_next[:, :T]) ** 2, axis=1) / T)
    assert_close("d o_hat", d, autograd_grad(f, o_hat))
    # entries T: of o′ are not predicted
    o_other = o_next.copy()
    o_other[:, T:] = rng.normal(size=(B, OBS - T)) * 100
    ell2, d2 = OF.aux_loss(o_hat, o_other)
    assert np.array_equal(ell, ell2) and np.array_equal(d, d2)
    # the loss_fn wrapper the agent hands to gated_gradients
    ell3, d3 = OF.aux_loss_fn(o_next)({"ofenet/head": o_hat})
    assert np.array_equal(ell3, ell) and set(d3) == {"ofenet/head"} and np.array_equal(d3["ofenet/head"], d)


# ====================================================================== the small agent for the chains
def make_masks(specs, rng):
    """Sampled masks ξ ∈ {0,1}^{B×n} for the gated layers of `specs`, with both values present."""
    xi = {}
    for s in specs:
        if s.gated:
            m = (rng.uniform(size=(B, s.n_out)) < 0.7).astype(np.float64)
            m[0, :], m[1, 0] = 1.0, 0.0
            xi[s.name] = m
    return xi


def layers_of(agent, *prefixes):
    return tuple(s for s in agent.wiring.layers if s.name.startswith(prefixes))


def theta_of(agent, specs):
    """The expected gates of the gated layers in specs as the agent's config reads them: θ (Eq. 3), or
    θ̃ = clip(θ, ε_ξ, 1 − ε_ξ) for a unit with θ > 0 and 0 for one at θ = 0 (Eq. 40, Eq. 4)."""
    if agent.cfg.expected_gates == "theta":
        return {s.name: agent.theta[s.name] for s in specs if s.gated}
    out = {}
    for s in specs:
        if s.gated:
            eps, th = agent.knob(s.net, "eps_xi"), agent.theta[s.name]
            out[s.name] = np.where(th == 0, 0.0, np.clip(th, eps, 1 - eps))
    return out


def small_agent(rng, **kw):
    """A small gated SAC + OFENet agent, with random θ ∈ (0,1] (some exactly 1), b, BN s, c, running statistics,
    target critics ≠ online critics and α ≠ 1."""
    cfg = AgentConfig(**{**dict(ofenet=True, gated=True, hidden=(7, 6), ofe_layers=2, ofe_units=3, target_dim=T,
                                init_alpha=0.6), **kw})
    agent = Agent(cfg, obs_dim=OBS, act_dim=ACT, log_scale=LOG_SCALE, rng=rng)
    for name, th in agent.theta.items():
        agent.theta[name] = np.where(rng.uniform(size=th.shape) < 0.25, 1.0, rng.uniform(0.2, 1.0, size=th.shape))
    for p in agent.params.values():
        p["b"] = rng.normal(scale=0.5, size=p["b"].shape)
        if "s" in p:
            p["s"] = rng.uniform(0.5, 1.5, size=p["s"].shape) * rng.choice([-1.0, 1.0], size=p["s"].shape)
            p["c"] = rng.normal(scale=0.5, size=p["c"].shape)
    for st in agent.stats.values():
        st["mean"] = rng.normal(scale=0.5, size=st["mean"].shape)
        st["var"] = rng.uniform(0.3, 2.0, size=st["var"].shape)
    for layer, p in agent.target.items():
        for k in p:
            p[k] = agent.params[layer][k] + rng.normal(scale=0.1, size=p[k].shape)
    return agent


def random_batch(rng, dtype=np.float64):
    obs = rng.normal(size=(B, OBS))
    act = rng.uniform(-0.95, 0.95, size=(B, ACT))
    rew = rng.normal(size=B)
    obs_next = obs + 0.1 * rng.normal(size=(B, OBS))
    done = (np.arange(B) % 4 == 0).astype(np.float64)
    return tuple(x.astype(dtype) for x in (obs, act, rew, obs_next, done))


# ---------------------------------------------------------------- independent references
def ref_state_features(agent, params, obs):
    """z_o (Eq. 5) from the raw observation: OFENet state block, expected gates θ, inference BN."""
    specs = layers_of(agent, "ofenet/s")
    acts, _ = N.forward(specs, params, {"obs": obs}, theta_of(agent, specs), agent.stats, False, EPS_BN)
    return acts                                                      # obs, ofenet/s1, ofenet/s2


def ref_critics(agent, params, z_o, act, critic_gates=None):
    """(Q1, Q2) at (z_o, act): OFENet action block (θ, inference BN, online OFENet) then the critics with
    expected gates θ, or with the given critic gates."""
    specs = layers_of(agent, "ofenet/a", "critic1/", "critic2/")
    gates = theta_of(agent, specs)
    gates.update(critic_gates or {})
    acts, _ = N.forward(specs, params, {**z_o, "act": act}, gates, agent.stats, False, EPS_BN)
    return acts["critic1/out"][:, 0], acts["critic2/out"][:, 0], acts


def ref_actor_ell(agent, actor_params, obs, xi, eps):
    """Per-example ℓ^π_i = α log π(ã_i|s_i) − min_k Q_k(s_i, ã_i) (Eq. 12) from the raw observation, with
    the actor's mask ξ and everything else at expected gates θ / inference BN."""
    P = {**agent.params, **actor_params}
    z_o = ref_state_features(agent, P, obs)
    acts, _ = N.forward(layers_of(agent, "actor/"), P, z_o, xi)
    a, log_pi, _ = sac.tanh_gaussian(acts["actor/out"], eps, agent.log_scale)
    q1, q2, _ = ref_critics(agent, P, z_o, a)
    return agent.alpha * log_pi - np.minimum(q1, q2), (a, q1, q2)


def ref_critic_mean_loss(agent, k, critic_params, obs, act, xi, y):
    """(1/B) Σ_i (Q_k(s_i, a_i) − y_i)² (Eq. 11): z_oa from the raw (o, a), critic k with its mask ξ."""
    P = {**agent.params, **critic_params}
    z_o = ref_state_features(agent, P, obs)
    specs = layers_of(agent, "ofenet/a")
    z_oa, _ = N.forward(specs, P, {**z_o, "act": act}, theta_of(agent, specs), agent.stats, False, EPS_BN)
    acts, _ = N.forward(layers_of(agent, k + "/"), P, z_oa, xi)
    return np.mean((acts[k + "/out"][:, 0] - y) ** 2)


def ref_aux_mean_loss(agent, ofe_params, obs, act, obs_next, xi):
    """(1/B) Σ_i (1/T)‖ô_i − o′_{i,1:T}‖² (Eq. 8): whole OFENet, masks ξ, BN with batch statistics."""
    specs = layers_of(agent, "ofenet/")
    acts, _ = N.forward(specs, ofe_params, {"obs": obs, "act": act}, xi, agent.stats, True, EPS_BN)
    r = acts["ofenet/head"] - obs_next[:, :T]
    return np.mean(np.sum(r * r, axis=1) / T)


def net_params(agent, net):
    return {s.name: agent.params[s.name] for s in agent.specs(net)}


# ---------------------------------------------------------------- the hand-written side
def actor_loss_closure(agent, f_actor, eps):
    """The actor's own loss_fn exactly as Agent.update_sac builds it."""
    return actor_loss_fn(agent, f_actor, eps)


def critic_loss_closure(k, y):
    """Critic k's own loss_fn exactly as Agent.update_sac builds it."""
    return critic_loss_fn(k, y)


def hand_gradients(specs, params, inputs, xi, loss_fn, stats=None, bn_train=False):
    """What xinet.gated_gradients does for one mask draw: forward with ξ, loss_fn, network.backward."""
    acts, cache = N.forward(specs, params, inputs, xi, stats, bn_train, EPS_BN)
    ell, d_acts = loss_fn(acts)
    grads, _, _ = N.backward(specs, params, xi, cache, d_acts, bn_train)
    return ell, grads


def actor_inputs(agent, obs, act):
    feats = agent.features(obs, act)
    return {k: v for k, v in feats.items() if k != "act" and not k.startswith("ofenet/a")}


def actor_setup(name, **kw):
    """Agent, batch, actor mask and noise, with critic 2 shifted so that min(Q1, Q2) picks each critic for
    exactly half of the batch and never ties."""
    rng = rng_for(name)
    agent = small_agent(rng, **kw)
    obs, act, _, _, _ = random_batch(rng)
    xi = make_masks(agent.specs("actor"), rng)
    eps = rng.normal(size=(B, ACT))
    _, (_, q1, q2) = ref_actor_ell(agent, net_params(agent, "actor"), obs, xi, eps)
    agent.params["critic2/out"]["b"] = agent.params["critic2/out"]["b"] + np.median(q1 - q2)
    _, (_, q1, q2) = ref_actor_ell(agent, net_params(agent, "actor"), obs, xi, eps)
    assert np.count_nonzero(q1 < q2) == B // 2 and np.count_nonzero(q2 < q1) == B // 2
    return rng, agent, obs, act, xi, eps


# ====================================================================== 3. actor chain, Eq. (12)
@pytest.mark.parametrize("reading", ["tilde", "theta"])
def test_actor_chain_matches_autograd(reading):
    rng, agent, obs, act, xi, eps = actor_setup("actor-chain", expected_gates=reading)
    specs = agent.specs("actor")
    f_actor = actor_inputs(agent, obs, act)
    assert set(f_actor) == {"obs", "ofenet/s1", "ofenet/s2"}
    ell, got = hand_gradients(specs, agent.params, f_actor, xi, actor_loss_closure(agent, f_actor, eps))
    want_ell, _ = ref_actor_ell(agent, net_params(agent, "actor"), obs, xi, eps)
    assert_close("ell", ell, want_ell, rtol=1e-12)
    want = autograd_grad(lambda p: np.mean(ref_actor_ell(agent, p, obs, xi, eps)[0]), net_params(agent, "actor"))
    check_tree("actor grads", got, want)


@pytest.mark.parametrize("baseline", ["none", "pair"])
def test_actor_chain_through_gated_gradients(baseline):
    """xinet.gated_gradients itself (the mask draws replayed from a copy of its generator): ĝ_W is the
    pathwise gradient at the drawn mask, the mean of the two for 'pair'."""
    rng, agent, obs, act, _, eps = actor_setup(f"actor-gg-{baseline}")
    specs = agent.specs("actor")
    f_actor = actor_inputs(agent, obs, act)
    draw = np.random.default_rng(99)
    replay = copy.deepcopy(draw)
    mean_loss, got, g_theta, _ = xinet.gated_gradients(specs, agent.params, f_actor, agent.theta,
                                                       actor_loss_closure(agent, f_actor, eps), draw, baseline,
                                                       agent.cfg.eps_xi)
    masks = [xinet.sample_gates(specs, agent.theta, replay, B, agent.cfg.eps_xi)
             for _ in range(2 if baseline == "pair" else 1)]

    def f(p):
        return sum(np.mean(ref_actor_ell(agent, p, obs, m, eps)[0]) for m in masks) / len(masks)
    assert_close("mean loss", mean_loss, f(net_params(agent, "actor")), rtol=1e-12)
    check_tree("actor grads", got, autograd_grad(f, net_params(agent, "actor")))
    assert set(g_theta) == {"actor/h1", "actor/h2"}


def critic_chain_d_act(agent, obs, act):
    """(hand d/d act, autograd d/d act, autograd d/d act with the OFENet action block held fixed) of
    −(1/B) Σ_i min_k Q_k(s_i, a_i), the critic part of the mean actor loss."""
    f_actor = actor_inputs(agent, obs, act)
    q1, q2, (specs, allp, qcache) = agent.q_values({}, f_actor, act)
    _, _, d_q1, d_q2 = sac.actor_loss(np.zeros(B), q1, q2, agent.alpha)
    got = critics_action_grad(agent, qcache, {"critic2": d_q2, "critic1": d_q1})
    # the same through both critics over the whole batch, every input gradient (the routing's baseline)
    _, d_in, _ = N.backward(specs, allp, agent.gates("ofenet", "critic1", "critic2"), qcache,
                            {"critic1/out": d_q1[:, None], "critic2/out": d_q2[:, None]},
                            param_grads=False)
    assert_close("d act, min's critic only vs both critics", got, d_in["act"], rtol=1e-12)
    z_o = ref_state_features(agent, agent.params, obs)
    want = autograd_grad(lambda a: -np.mean(np.minimum(*ref_critics(agent, agent.params, z_o, a)[:2])), act)
    # the same with z_oa's action-block units frozen: only the direct act → critic path
    _, _, acts = ref_critics(agent, agent.params, z_o, act)
    frozen = {k: acts[k] for k in ("ofenet/a1", "ofenet/a2")}
    specs_c = layers_of(agent, "critic1/", "critic2/")

    def direct(a):
        out, _ = N.forward(specs_c, agent.params, {**z_o, **frozen, "act": a}, theta_of(agent, specs_c))
        return -np.mean(np.minimum(out["critic1/out"][:, 0], out["critic2/out"][:, 0]))
    return got, want, autograd_grad(direct, act), (q1, q2)


def test_critic_chain_gradient_wrt_action_flows_through_ofenet_action_block():
    rng, agent, obs, act, xi, eps = actor_setup("actor-dact")
    _, (a, _, _) = ref_actor_ell(agent, net_params(agent, "actor"), obs, xi, eps)   # ã, split evenly
    got, want, direct, (q1, q2) = critic_chain_d_act(agent, obs, a)
    assert np.all(q1 != q2)
    assert_close("d act", got, want)
    # the action-block path carries a sizeable part of the gradient: leaving it out must be caught
    assert np.max(np.abs(want - direct)) > 1e-2 * np.max(np.abs(want))
    with pytest.raises(GradientMismatch):
        assert_close("d act without the OFENet action block", direct, want)


@pytest.mark.parametrize("ofenet", [True, False])
def test_critics_action_grad_routes_each_example_through_the_min_critic(ofenet):
    """critics_action_grad runs critic k's backward on the examples whose min is critic k: it equals
    autograd's ∂/∂a of −(1/B) Σ_i min_k Q_k (with and without OFENet's action block in front), and
    routing each example through the other critic must fail the same check (negative control)."""
    rng = rng_for(f"route-{ofenet}")
    agent = small_agent(rng, ofenet=ofenet, gated=ofenet)
    obs, act, _, _, _ = random_batch(rng)
    z_o = ref_state_features(agent, agent.params, obs) if ofenet else {"obs": obs}
    f_actor = actor_inputs(agent, obs, act) if ofenet else {"obs": obs}
    q1, q2, (_, _, qcache) = agent.q_values({}, f_actor, act)
    agent.params["critic2/out"]["b"] = agent.params["critic2/out"]["b"] + np.median(q1 - q2)   # half each
    q1, q2, (_, _, qcache) = agent.q_values({}, f_actor, act)
    assert 0 < np.count_nonzero(q1 < q2) < B
    _, _, d_q1, d_q2 = sac.actor_loss(np.zeros(B), q1, q2, agent.alpha)
    got = critics_action_grad(agent, qcache, {"critic2": d_q2, "critic1": d_q1})

    def mean_min_q(a):
        if ofenet:
            q1_, q2_, _ = ref_critics(agent, agent.params, z_o, a)
        else:
            acts, _ = N.forward(layers_of(agent, "critic1/", "critic2/"), agent.params, {"obs": obs, "act": a}, {})
            q1_, q2_ = acts["critic1/out"][:, 0], acts["critic2/out"][:, 0]
        return -np.mean(np.minimum(q1_, q2_))
    want = autograd_grad(mean_min_q, act)
    assert_close("d act (routed)", got, want)
    swapped = critics_action_grad(agent, qcache, {"critic2": d_q1, "critic1": d_q2})
    with pytest.raises(GradientMismatch):
        assert_close("d act routed through the other critic", swapped, want)


# ====================================================================== 4. critic chain, Eq. (11)
@pytest.mark.parametrize("reading", ["tilde", "theta"])
@pytest.mark.parametrize("k", ["critic1", "critic2"])
def test_critic_chain_matches_autograd(k, reading):
    rng = rng_for(f"critic-chain-{k}")
    agent = small_agent(rng, expected_gates=reading)
    obs, act, _, _, _ = random_batch(rng)
    xi = make_masks(agent.specs(k), rng)
    y = rng.normal(size=B)
    feats = agent.features(obs, act)
    assert {"obs", "act", "ofenet/s1", "ofenet/s2", "ofenet/a1", "ofenet/a2"} <= set(feats)
    ell, got = hand_gradients(agent.specs(k), agent.params, feats, xi, critic_loss_closure(k, y))
    f = lambda p: ref_critic_mean_loss(agent, k, p, obs, act, xi, y)
    assert_close("mean loss", np.mean(ell), f(net_params(agent, k)), rtol=1e-12)
    check_tree(f"{k} grads", got, autograd_grad(f, net_params(agent, k)))


# ====================================================================== 5. OFENet chain, Eq. (8)
def test_ofenet_chain_matches_autograd():
    rng = rng_for("ofenet-chain")
    agent = small_agent(rng)
    obs, act, _, obs_next, _ = random_batch(rng)
    specs = agent.specs("ofenet")
    assert [s.name for s in specs][-1] == "ofenet/head" and OBS > T
    xi = make_masks(specs, rng)
    ell, got = hand_gradients(specs, agent.params, {"obs": obs, "act": act}, xi, OF.aux_loss_fn(obs_next),
                              agent.stats, bn_train=True)
    f = lambda p: ref_aux_mean_loss(agent, p, obs, act, obs_next, xi)
    assert_close("mean loss", np.mean(ell), f(net_params(agent, "ofenet")), rtol=1e-12)
    want = autograd_grad(f, net_params(agent, "ofenet"))
    check_tree("ofenet grads", got, want)
    assert sum(len(g) for g in got.values()) == 4 * 4 + 2           # W, b, s, c of four BN layers + head


# ====================================================================== the agent's own closures (spy)
def closure_vars(fn):
    return dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__ or ())))


def test_agent_update_closures_match_autograd(monkeypatch):
    """Spy on xinet.gated_gradients while Agent.update_ofenet and Agent.update_sac run: the loss_fn each
    update hands over (the agent's real closures) is run at a given mask and its chained gradient compared
    with autograd of the independent reference at the agent's state at that moment. The critics' target y
    is checked against Eq. (10) recomputed from the raw s′ with the replayed a′ noise."""
    rng = rng_for("spy")
    agent = small_agent(rng)
    obs, act, rew, obs_next, done = random_batch(rng)
    real = xinet.gated_gradients
    sig = inspect.signature(real)
    mask_rng = rng_for("spy-masks")
    seen = []

    update_rng = np.random.default_rng(5)
    eps_next = copy.deepcopy(update_rng).standard_normal((B, ACT))   # update_sac's first draw: a′ noise
    actor_specs = layers_of(agent, "actor/")
    y_ref = {}

    def target_y():
        """Eq. (10) from scratch: a′ ~ π(·|s′) with the expected-gate actor, target critics, online OFENet."""
        z_next = ref_state_features(agent, agent.params, obs_next)
        acts_next, _ = N.forward(actor_specs, agent.params, z_next, theta_of(agent, actor_specs))
        a_next, lp_next, _ = sac.tanh_gaussian(acts_next["actor/out"], eps_next, agent.log_scale)
        q1t, q2t, _ = ref_critics(agent, {**agent.params, **agent.target}, z_next, a_next)
        return rew + agent.cfg.gamma * (1.0 - done) * (np.minimum(q1t, q2t) - agent.alpha * lp_next)

    def spy(*args, **kwargs):
        a = sig.bind(*args, **kwargs)
        a.apply_defaults()
        specs, params, inputs, loss_fn = a.arguments["specs"], a.arguments["params"], a.arguments["inputs"], \
            a.arguments["loss_fn"]
        net = specs[0].net
        xi = make_masks(specs, mask_rng)
        _, got = hand_gradients(specs, params, inputs, xi, loss_fn, a.arguments["stats"], a.arguments["bn_train"])
        p0 = {s.name: params[s.name] for s in specs}
        if net == "ofenet":
            assert a.arguments["bn_train"] is True
            f = lambda p: ref_aux_mean_loss(agent, p, obs, act, obs_next, xi)
        elif net == "actor":
            eps = closure_vars(loss_fn)["eps"]
            f = lambda p: np.mean(ref_actor_ell(agent, p, obs, xi, eps)[0])
        else:
            y = closure_vars(loss_fn)["y"]
            assert_close("y (Eq. 10)", y, y_ref["y"], rtol=1e-12)
            f = lambda p: ref_critic_mean_loss(agent, net, p, obs, act, xi, y)
        check_tree(f"{net} grads (agent closure)", got, autograd_grad(f, p0))
        seen.append(net)
        return real(*args, **kwargs)

    monkeypatch.setattr(xinet, "gated_gradients", spy)
    agent.update_ofenet((obs, act, rew, obs_next, done), rng_for("spy-ofe"))
    y_ref["y"] = target_y()            # after the OFENet step: update_sac reads the current OFENet
    agent.update_sac((obs, act, rew, obs_next, done), update_rng)
    assert seen == ["ofenet", "critic1", "critic2", "actor"]


# ====================================================================== 7. smoke
CONFIGS = {
    "sac": dict(ofenet=False, gated=False),
    "ofe": dict(ofenet=True, gated=False),
    "xinet": dict(ofenet=True, gated=True),
}


def smoke_agent(method, dtype, seed=0):
    rng = np.random.default_rng(seed)
    cfg = AgentConfig(hidden=(16, 16), ofe_layers=2, ofe_units=4, target_dim=T, **CONFIGS[method])
    return Agent(cfg, obs_dim=OBS, act_dim=ACT, log_scale=LOG_SCALE, rng=rng, dtype=dtype), rng


def all_arrays(container):
    return [a for p in container.values() for a in p.values()]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", list(CONFIGS))
def test_agent_updates_smoke(method, dtype):
    agent, rng = smoke_agent(method, dtype)
    before = copy.deepcopy(agent.params)
    for step in range(3):
        batch = random_batch(rng, dtype)
        if agent.cfg.ofenet:
            m = agent.update_ofenet(batch, rng, update_theta=agent.cfg.gated and step > 0)
            assert set(m) == {"aux_loss"} and np.isfinite(m["aux_loss"])
        m = agent.update_sac(batch, rng, update_theta=agent.cfg.gated and step > 0)
        assert set(m) == {"critic1_loss", "critic2_loss", "actor_loss", "alpha_loss", "alpha", "entropy"}
        assert all(np.isfinite(v) for v in m.values()), m
        assert m["alpha"] > 0
    assert agent.cfg.ofenet == any(k.startswith("ofenet") for k in agent.params)
    assert agent.cfg.gated == bool(agent.theta)
    for layer, p in agent.params.items():               # every network was updated, nothing became NaN
        assert any(not np.array_equal(a, before[layer][k]) for k, a in p.items()), layer
    arrays = all_arrays(agent.params) + all_arrays(agent.target) + [agent.log_alpha["alpha"]["log_alpha"]]
    arrays += [a for o in agent.opt.values() for c in (o.m, o.v) for a in all_arrays(c)]
    for a in arrays:
        assert a.dtype == dtype and np.all(np.isfinite(a))
    act = agent.act(random_batch(rng, dtype)[0], rng)
    assert act.shape == (B, ACT) and np.all(np.abs(act) <= 1)


def test_float32_gate_state_stays_float32():
    agent, rng = smoke_agent("xinet", np.float32)
    batch = random_batch(rng, np.float32)
    agent.update_ofenet(batch, rng, update_theta=True)
    agent.update_sac(batch, rng, update_theta=True)
    agent.update_ofenet(batch, rng, update_theta=True)
    bad = [f"theta[{k}]" for k, v in agent.theta.items() if v.dtype != np.float32]
    bad += [f"m_theta[{k}]" for k, v in agent.m_theta.items() if v.dtype != np.float32]
    bad += [f"stats[{k}]" for k, v in agent.stats.items() if any(a.dtype != np.float32 for a in v.values())]
    bad += [f"features[{k}]" for k, v in agent.features(batch[0], batch[1]).items() if v.dtype != np.float32]
    assert not bad, bad


def test_float32_losses_stay_float32():
    """log π and hence the TD target and the critics' and actor's loss gradients stay in float32: a float64
    log π (np.log(2.0) is a float64 scalar) would run the whole critic backward in float64."""
    rng = np.random.default_rng(3)
    f32 = np.float32
    out, eps = rng.normal(size=(5, 2 * ACT)).astype(f32), rng.normal(size=(5, ACT)).astype(f32)
    a, log_pi, cache = sac.tanh_gaussian(out, eps, np.zeros(ACT, f32))
    assert a.dtype == f32 and log_pi.dtype == f32
    q = rng.normal(size=5).astype(f32)
    y = sac.td_target(q, np.zeros(5, f32), q, q, log_pi, 0.2, 0.99)
    assert y.dtype == f32 and sac.critic_loss(q, y)[1].dtype == f32
    assert sac.tanh_gaussian_backward(np.ones_like(a), np.ones_like(log_pi), cache).dtype == f32
