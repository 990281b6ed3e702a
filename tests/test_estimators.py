"""The control-variate θ-gradient estimators, MuProp (Eq. 35) and flip (Eq. 33–34), against exact enumeration
(Eq. 24), with and without training-mode BatchNorm (Eq. 36) (docs/METHOD.md §5; xiref/gates.py, xiref/xinet.py).

What is checked
* Without BN: 'flip', 'muprop' and 'muprop-loo' through xinet.gated_gradients are unbiased for the exact
  gradient of E_q[(1/B) Σ_i ℓ_i] (one and two gated layers, and at θ̃ with units at θ = 1 and θ = 0).
* With training-mode BN the examples are coupled through the batch statistics S = (μ, v). Two estimands are
  enumerated exactly over all 2^(nB) joint masks of a batch: G^S (each example's flip at the batch's S held
  fixed, what 'flip' estimates) and G^own (each example's own gate, S recomputed, what the score function
  with 'none'/'pair' and 'muprop' estimate). Each estimator is unbiased for its own estimand.
* Negative controls fail the same tolerance test: MuProp with its slope taken at the sampled mask, MuProp
  without its analytic term, flip without its correction (the first-order estimator, Eq. 25), and flip with
  the statistics recomputed in the flip pass.
* The formulas of Eq. (33)–(35) against a direct transcription; determinism under a fixed seed.

Tolerance: as tests/test_gates.py, |mean − target| ≤ Z · SE from the estimator's own sample variance, Z = 4.5.
"""
import itertools

import numpy as np
import pytest

from test_gates import EPS_XI, Problem, assert_unbiased, bias_ratio
from xiref import gates as G
from xiref import network as N
from xiref import wiring as Wi
from xiref import xinet as X

K = 4000           # calls of xinet.gated_gradients per estimator
CV_ESTIMATORS = ("flip", "muprop", "muprop-loo")


def _calls(prob, baseline, seed, theta=None, K=K):
    rng = np.random.default_rng(seed)
    theta = prob.theta if theta is None else theta
    est = []
    for _ in range(K):
        _, _, g, _ = X.gated_gradients(prob.specs, prob.params, {"x": prob.X}, prob.split(theta), prob.loss_fn,
                                       rng, baseline=baseline, eps_xi=EPS_XI)
        est.append(prob.join(g))
    return np.array(est)


# ------------------------------------------------------------------ without BN
@pytest.mark.parametrize("baseline", CV_ESTIMATORS)
@pytest.mark.parametrize("hidden,seed", [((8,), 3), ((4, 4), 7)])
def test_unbiased_without_bn(baseline, hidden, seed):
    prob = Problem(hidden=hidden, seed=seed)
    assert_unbiased(f"{baseline} {hidden}", _calls(prob, baseline, seed + 100), prob.exact_grad())


@pytest.mark.parametrize("baseline", CV_ESTIMATORS)
def test_unbiased_at_the_boundary(baseline):
    """Units at θ = 1 and θ = 0 are sampled from θ̃ = clip(θ, ε_ξ, 1 − ε_ξ) (Eq. 4): unbiased at θ̃."""
    prob = Problem(seed=5)
    theta = prob.theta.copy()
    theta[[0, 2, 4, 7]] = 1.0
    theta[5] = 0.0
    est = _calls(prob, baseline, 6, theta)
    assert_unbiased(f"{baseline} at θ̃", est, prob.exact_grad(G.theta_tilde(theta, EPS_XI)))


def test_flip_is_quieter_than_pair_near_theta_one():
    """At θ = 1 − ε_ξ the score (22) is ±1/ε_ξ in rare kicks; the flip estimator reads differences instead."""
    prob = Problem(seed=5)
    theta = np.ones(prob.n)
    var = {b: np.var(_calls(prob, b, 9, theta, K=2000), axis=0) for b in ("pair", "flip")}
    assert np.median(var["pair"]) > 10.0 * np.median(var["flip"]), var


def test_flip_formula_matches_transcription():
    rng = np.random.default_rng(0)
    B, n = 7, 5
    xi = (rng.random((B, n)) < 0.6).astype(float)
    ell, ell_f, slope = rng.normal(size=B), rng.normal(size=B), rng.normal(size=(B, n))
    u = G.flip_units(rng, B, n)
    flipped = G.flip_mask(xi, u)
    for i in range(B):
        for j in range(n):
            assert flipped[i, j] == (1.0 - xi[i, j] if j == u[i] else xi[i, j])
    want = np.zeros(n)
    for i in range(B):
        on_minus_off = ell[i] - ell_f[i] if xi[i, u[i]] == 1.0 else ell_f[i] - ell[i]
        want += slope[i] / B
        want[u[i]] += n * (on_minus_off - slope[i, u[i]]) / B
    np.testing.assert_allclose(G.flip_grad(ell, ell_f, xi, u, slope), want, rtol=1e-12, atol=1e-14)


def test_muprop_formula_matches_transcription():
    rng = np.random.default_rng(1)
    B, n = 6, 4
    tt = rng.uniform(0.2, 0.8, n)
    xi = (rng.random((B, n)) < tt).astype(float)
    ell, ell_m, slope = rng.normal(size=B), rng.normal(size=B), rng.normal(size=(B, n))
    s = (xi - tt) / (tt * (1 - tt))
    r = np.array([ell[i] - ell_m[i] - slope[i] @ (xi[i] - tt) for i in range(B)])
    loo = np.array([(r.sum() - r[i]) / (B - 1) for i in range(B)])
    want = {"none": sum(r[i] * s[i] for i in range(B)) / B + slope.mean(axis=0),
            "loo": sum((r[i] - loo[i]) * s[i] for i in range(B)) / B + slope.mean(axis=0)}
    for b, w in want.items():
        np.testing.assert_allclose(G.muprop_grad(ell, ell_m, slope, xi, tt, b), w, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------ negative controls without BN
def _muprop_variant(prob, seed, slope_at_sample=False, analytic=True):
    """MuProp written out with one deliberate mistake (K estimates on the problem without BN)."""
    rng = np.random.default_rng(seed)
    tt, B = prob.theta, prob.B
    est = []
    for _ in range(K):
        xi = G.sample_mask(rng, tt, B, EPS_XI)
        ell, r, cache = prob.losses(xi, 1)
        point = xi if slope_at_sample else np.broadcast_to(tt, xi.shape)
        ell_m, r_m, cache_m = prob.losses(np.array(point), 1)
        _, _, dg = N.backward(prob.specs, prob.params, prob.split(np.array(point)), cache_m, {"net/out": 2 * r_m})
        slope = prob.join(dg)
        g = G.muprop_grad(ell, ell_m, slope, xi, tt)
        est.append(g if analytic else g - slope.mean(axis=0))
    return np.array(est)


def test_muprop_passes_when_written_out_correctly():
    prob = Problem(seed=3)
    assert_unbiased("muprop written out", _muprop_variant(prob, 21), prob.exact_grad())


@pytest.mark.parametrize("mistake", ["slope_at_sample", "no_analytic_term"])
def test_negative_control_muprop(mistake):
    prob = Problem(seed=3)
    est = _muprop_variant(prob, 21, slope_at_sample=mistake == "slope_at_sample",
                          analytic=mistake != "no_analytic_term")
    ratio = bias_ratio(est, prob.exact_grad())
    assert np.max(ratio) > 1.0, f"MuProp with {mistake} passed the unbiasedness test: the test has no power"


def test_negative_control_flip_without_correction():
    """The control variate alone, (1/B) Σ_i ∂ℓ_i/∂ξ_ij at the sample, is the biased first-order estimator (25)."""
    prob = Problem(seed=3)
    rng = np.random.default_rng(22)
    est = []
    for _ in range(K):
        xi = G.sample_mask(rng, prob.theta, prob.B, EPS_XI)
        _, r, cache = prob.losses(xi, 1)
        _, _, dg = N.backward(prob.specs, prob.params, prob.split(xi), cache, {"net/out": 2 * r})
        est.append(np.mean(prob.join(dg), axis=0))
    assert np.max(bias_ratio(np.array(est), prob.exact_grad())) > 1.0


# ------------------------------------------------------------------ with training-mode BN
class BNProblem:
    """Two gated BN swish layers (2 + 1 units, DenseNet wiring as OFENet) and a linear head, a batch of
    B = 3 examples: 3 gates per example, 2^9 joint masks of the batch, enumerated exactly."""

    def __init__(self, seed=0, batch=3):
        rng = np.random.default_rng(seed)
        self.specs = (Wi.LayerSpec("net/l1", "net", ("x",), 2, "swish", True, bn=True),
                      Wi.LayerSpec("net/l2", "net", ("x", "net/l1"), 1, "swish", True, bn=True),
                      Wi.LayerSpec("net/out", "net", ("x", "net/l1", "net/l2"), 1, "linear", False))
        self.params, self.stats = N.init_params(self.specs, {"x": 2}, rng)
        for spec in self.specs:
            self.params[spec.name]["W"] = rng.normal(0.0, 1.0, self.params[spec.name]["W"].shape)
            if spec.bn:
                self.params[spec.name]["s"] = rng.uniform(0.5, 1.5, spec.n_out)
                self.params[spec.name]["c"] = rng.normal(0.0, 0.5, spec.n_out)
        self.B, self.n = batch, 3
        self.X = rng.normal(size=(batch, 2))
        self.Y = rng.normal(size=(batch, 1))
        self.theta = rng.uniform(0.25, 0.75, self.n)
        self.gated = [s for s in self.specs if s.gated]

    def split(self, v):
        return {"net/l1": v[..., :2], "net/l2": v[..., 2:]}

    def join(self, d):
        return np.concatenate([d["net/l1"], d["net/l2"]], axis=-1)

    def ell(self, xi, stats=None):
        """ℓ_i (B,) for the batch under masks xi (B, n); batch statistics, or `stats` held fixed."""
        acts, cache = N.forward(self.specs, self.params, {"x": self.X}, self.split(xi),
                                stats if stats is not None else self.stats, bn_train=stats is None)
        return ((acts["net/out"] - self.Y)[:, 0]) ** 2, cache

    def loss_fn(self, acts):
        r = acts["net/out"] - self.Y
        return r[:, 0] ** 2, {"net/out": 2.0 * r / self.B}

    def estimands(self, theta):
        """(G^S, G^own) by enumeration over every joint mask Ξ (B, n) of the batch.

        G^S_j   = E_Ξ[(1/B) Σ_i ℓ_i(Ξ_i^{j←1}; S(Ξ)) − ℓ_i(Ξ_i^{j←0}; S(Ξ))]      (S held fixed, Eq. 36)
        G^own_j = E_Ξ[(1/B) Σ_i ℓ_i(Ξ) s_ij]  = (1/B) Σ_i (E[ℓ_i | ξ_ij = 1] − E[ℓ_i | ξ_ij = 0])
        """
        B, n = self.B, self.n
        g_s, g_own = np.zeros(n), np.zeros(n)
        for bits in itertools.product((0.0, 1.0), repeat=B * n):
            xi = np.reshape(bits, (B, n))
            q = np.prod(np.where(xi == 1.0, theta, 1.0 - theta))
            ell, cache = self.ell(xi)
            g_own += q * (ell @ G.score(xi, theta)) / B
            fixed = {s.name: {"mean": cache[s.name]["mu"], "var": cache[s.name]["var"]} for s in self.specs if s.bn}
            for j in range(n):
                on, off = xi.copy(), xi.copy()
                on[:, j], off[:, j] = 1.0, 0.0
                g_s[j] += q * np.mean(self.ell(on, fixed)[0] - self.ell(off, fixed)[0])
        return g_s, g_own


@pytest.fixture(scope="module")
def bnprob():
    prob = BNProblem(seed=0)
    prob.g_s, prob.g_own = prob.estimands(prob.theta)
    return prob


def _bn_calls(prob, baseline, seed, K=K):
    rng = np.random.default_rng(seed)
    est = []
    for _ in range(K):
        _, _, g, _ = X.gated_gradients(prob.specs, prob.params, {"x": prob.X}, prob.split(prob.theta),
                                       prob.loss_fn, rng, baseline=baseline, eps_xi=EPS_XI, stats=prob.stats,
                                       bn_train=True)
        est.append(prob.join(g))
    return np.array(est)


def test_bn_estimands_differ(bnprob):
    """At B = 3 the two estimands differ measurably (each example is a third of the statistics)."""
    assert np.max(np.abs(bnprob.g_s - bnprob.g_own)) > 0.05 * np.max(np.abs(bnprob.g_own))


def test_flip_unbiased_with_bn(bnprob):
    est = _bn_calls(bnprob, "flip", 31)
    assert_unbiased("flip with BN vs G^S", est, bnprob.g_s)
    assert np.max(bias_ratio(est, bnprob.g_own)) > 1.0, "flip should not estimate G^own (the test has no power)"


@pytest.mark.parametrize("baseline", ["muprop", "none", "pair"])
def test_score_family_unbiased_with_bn(bnprob, baseline):
    """MuProp's expansion point ξ̄ = θ̃ and slope do not look at ξ: it keeps the score function's estimand."""
    assert_unbiased(f"{baseline} with BN vs G^own", _bn_calls(bnprob, baseline, 32), bnprob.g_own)


def test_negative_control_flip_with_recomputed_statistics(bnprob):
    """Recomputing S in the flip pass (every example's flip moves it) does not estimate G^S."""
    rng = np.random.default_rng(33)
    est = []
    for _ in range(K):
        xi = G.sample_mask(rng, bnprob.theta, bnprob.B, EPS_XI)
        ell, cache = bnprob.ell(xi)
        u = G.flip_units(rng, bnprob.B, bnprob.n)
        ell_f, _ = bnprob.ell(G.flip_mask(xi, u))
        fixed = {s.name: {"mean": cache[s.name]["mu"], "var": cache[s.name]["var"]} for s in bnprob.specs if s.bn}
        acts, c2 = N.forward(bnprob.specs, bnprob.params, {"x": bnprob.X}, bnprob.split(xi), fixed)
        _, _, dg = N.backward(bnprob.specs, bnprob.params, bnprob.split(xi), c2,
                              {"net/out": 2.0 * (acts["net/out"] - bnprob.Y)})
        est.append(G.flip_grad(ell, ell_f, xi, u, bnprob.join(dg)))
    est = np.array(est)
    assert np.max(bias_ratio(est, bnprob.g_s)) > 1.0


# ------------------------------------------------------------------ determinism
@pytest.mark.parametrize("baseline", CV_ESTIMATORS)
def test_deterministic(baseline):
    prob = Problem(hidden=(4, 4), seed=9)
    a, b = _calls(prob, baseline, 11, K=3), _calls(prob, baseline, 11, K=3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, _calls(prob, baseline, 12, K=3))
