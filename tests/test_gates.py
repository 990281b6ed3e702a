"""Bernoulli gates and their θ-gradient estimators (docs/METHOD.md §1, §4, §5; xiref/gates.py, xiref/xinet.py).

What is checked
* The exact oracle (Eq. 24): its gradient equals autograd of `exact_expectation` inside (0,1)^N, equals
  central differences (exact for a multilinear function) and E[ℓ|ξ_j=1] − E[ℓ|ξ_j=0] also at θ_j ∈ {0,1},
  and does not depend on θ_j itself (Eq. 21).
* Unbiasedness of the score-function estimator (Eq. 22–23) for the baselines 'none', 'loo', 'pair', both
  through the gates.* functions (vectorised, K = 20 000 estimates) and end to end through
  xinet.gated_gradients (K = 4 000 calls), against the exact oracle.
* Negative controls: a baseline that includes the example's own loss, and a wrong score, fail the very same
  tolerance test (so the test has power).
* The first-order estimator (Eq. 25) is demonstrably biased, and its measured bias matches the analytic bias.
* The flattening lemma (Eq. 17) by brute-force minimisation over π; the hyper-prior is normalised.
* Determinism of xinet.gated_gradients under a fixed seed.

Statistical tolerance. For K independent, identically distributed estimates ĝ^(1..K) of unit j, the CLT makes
their mean ≈ N(E ĝ_j, Var ĝ_j / K). The tolerance is therefore derived from the estimator's own measured
variance: |mean_j − target_j| ≤ Z · sqrt(sample variance_j / K) (+ 1e-12 for rounding), with Z = 4.5:
a two-sided per-unit false-alarm probability of 7e-6, < 1e-3 over all comparisons in this file. Every
random draw is seeded, so the outcome is deterministic anyway.
"""
import numpy as np
import pytest
from autograd import grad as ag_grad

from gradutil import assert_close, central_difference
from xiref import gates as G
from xiref import network as N
from xiref import wiring as Wi
from xiref import xinet as X

Z = 4.5            # see module docstring: tolerance = Z standard errors of the mean of K estimates
ATOL = 1e-12       # rounding floor, for units whose estimates have zero variance (dead ReLU units)
EPS_XI = 0.01      # ε_ξ, Eq. (4)
K_VEC = 20000      # estimates per baseline in the vectorised tests
K_E2E = 4000       # calls of xinet.gated_gradients per baseline in the end-to-end tests


# ------------------------------------------------------------------ a small gated MLP without BN
class Problem:
    """A gated ReLU MLP (≤ 10 gates), a fixed batch of B examples and fixed targets, ℓ_i = (out_i − y_i)².

    All gate units of all gated layers are handled as one vector of length n (layer order).
    """

    def __init__(self, hidden=(8,), batch=4, d_in=3, seed=0, theta_range=(0.2, 0.8)):
        rng = np.random.default_rng(seed)
        self.specs = Wi.mlp("net", ("x",), hidden=hidden, n_out=1)
        self.params, _ = N.init_params(self.specs, {"x": d_in}, rng)
        for spec in self.specs:                        # non-zero biases: most ReLU units active
            self.params[spec.name]["b"] = rng.normal(0.0, 0.3, spec.n_out)
        self.B = batch
        self.X = rng.normal(size=(batch, d_in))
        self.Y = rng.normal(size=(batch, 1))
        self.gated = [s for s in self.specs if s.gated]
        self.widths = [s.n_out for s in self.gated]
        self.n = sum(self.widths)
        assert self.n <= 10
        self.theta = rng.uniform(*theta_range, size=self.n)

    def split(self, v):
        """Vector over all gate units (…, n) -> {layer: (…, n_layer)}."""
        out, start = {}, 0
        for spec, w in zip(self.gated, self.widths):
            out[spec.name] = v[..., start:start + w]
            start += w
        return out

    def join(self, d):
        return np.concatenate([d[s.name] for s in self.gated], axis=-1)

    def losses(self, xi, reps):
        """Per-example losses of the batch repeated `reps` times under per-example masks xi (reps·B, n).

        Returns (ℓ (reps·B,), residual out − y (reps·B, 1), forward cache).
        """
        acts, cache = N.forward(self.specs, self.params, {"x": np.tile(self.X, (reps, 1))}, self.split(xi))
        r = acts["net/out"] - np.tile(self.Y, (reps, 1))
        return r[:, 0] ** 2, r, cache

    def loss_of_masks(self, masks):
        """(M, n) -> (M,): the batch-mean loss when every example uses the same mask ξ (oracle, Eq. 24)."""
        M = masks.shape[0]
        ell, _, _ = self.losses(np.repeat(masks, self.B, axis=0), M)
        return np.mean(np.reshape(ell, (M, self.B)), axis=1)

    def exact_grad(self, theta=None):
        return G.exact_grad(self.loss_of_masks, self.theta if theta is None else theta)

    def loss_fn(self, acts):
        """xinet's loss contract: (ℓ (B,), d[(1/B) Σ ℓ_i]/d out)."""
        r = acts["net/out"] - self.Y
        return r[:, 0] ** 2, {"net/out": 2.0 * r / self.B}


def bias_ratio(estimates, target):
    """|mean − target| / (Z · SE + ATOL) per unit, SE from the estimates' own sample variance.  ≤ 1: pass."""
    estimates = np.asarray(estimates)
    K = estimates.shape[0]
    se = np.std(estimates, axis=0, ddof=1) / np.sqrt(K)
    return np.abs(np.mean(estimates, axis=0) - target) / (Z * se + ATOL)


def assert_unbiased(name, estimates, target):
    ratio = bias_ratio(estimates, target)
    j = int(np.argmax(ratio))
    assert ratio[j] <= 1.0, (f"{name}: unit {j}: mean {np.mean(estimates, axis=0)[j]!r} vs exact {target[j]!r}, "
                             f"|diff| = {ratio[j]:.2f} × tolerance (Z = {Z} standard errors)")


@pytest.fixture(scope="module")
def prob():
    return Problem()


@pytest.fixture(scope="module")
def draws(prob):
    """K_VEC groups of B examples, two independent per-example mask draws, as one big batch of K·B rows."""
    rng = np.random.default_rng(1)
    K, B, n = K_VEC, prob.B, prob.n
    assert np.all((prob.theta > EPS_XI) & (prob.theta < 1 - EPS_XI))      # θ̃ = θ
    xi1 = G.sample_mask(rng, prob.theta, K * B, EPS_XI)
    xi2 = G.sample_mask(rng, prob.theta, K * B, EPS_XI)
    ell1, r1, cache1 = prob.losses(xi1, K)
    ell2, _, _ = prob.losses(xi2, K)
    return dict(xi1=xi1, xi2=xi2, ell1=ell1, r1=r1, cache1=cache1, ell2=ell2,
                x1=xi1.reshape(K, B, n), x2=xi2.reshape(K, B, n), l1=ell1.reshape(K, B), l2=ell2.reshape(K, B))


# ------------------------------------------------------------------ sampling and score
def test_sample_mask_frequencies_and_clipping():
    rng = np.random.default_rng(2)
    theta = np.array([0.0, 1.0, 0.3, 0.005, 0.999, 0.5])
    nb = 200000
    xi = G.sample_mask(rng, theta, nb, EPS_XI)
    assert xi.shape == (nb, len(theta)) and xi.dtype == theta.dtype
    assert set(np.unique(xi)) <= {0.0, 1.0}
    tt = G.theta_tilde(theta, EPS_XI)
    assert_close("theta_tilde", tt, [0.01, 0.99, 0.3, 0.01, 0.99, 0.5], rtol=0, atol=0)
    se = np.sqrt(tt * (1 - tt) / nb)
    assert np.all(np.abs(xi.mean(axis=0) - tt) <= Z * se)


def test_score_is_derivative_of_log_bernoulli():
    theta_t = np.array([0.01, 0.3, 0.5, 0.99])
    for v in (0.0, 1.0):
        xi = np.full((1, 4), v)
        want = ag_grad(lambda t: np.sum(np.log(xi * t + (1 - xi) * (1 - t))))(theta_t)
        assert_close(f"score(xi={v})", G.score(xi, theta_t)[0], want, rtol=1e-12)


# ------------------------------------------------------------------ the exact oracle, Eq. (24)
def test_exact_grad_matches_autograd_inside(prob):
    want = ag_grad(lambda t: G.exact_expectation(prob.loss_of_masks, t))(prob.theta)
    assert_close("exact_grad vs autograd", prob.exact_grad(), want, rtol=1e-10, atol=1e-13)
    assert np.max(np.abs(want)) > 1e-2                                         # a non-trivial case


def test_exact_expectation_matches_enumeration_of_masks(prob):
    # Σ_ξ q(ξ) ℓ(ξ) written out with an explicit loop over the 2^n masks
    masks = G.all_masks(prob.n)
    assert masks.shape == (2 ** prob.n, prob.n) and len({tuple(m) for m in masks}) == 2 ** prob.n
    total, mass = 0.0, 0.0
    ell = prob.loss_of_masks(masks)
    for m, l in zip(masks, ell):
        q = np.prod(np.where(m == 1, prob.theta, 1 - prob.theta))
        total, mass = total + q * l, mass + q
    assert abs(mass - 1) < 1e-12
    assert_close("exact_expectation", G.exact_expectation(prob.loss_of_masks, prob.theta), total, rtol=1e-12)


@pytest.mark.parametrize("theta_kind", ["boundary", "inside"])
def test_exact_grad_is_conditional_difference_and_independent_of_own_theta(prob, theta_kind):
    """∂F/∂θ_j = E[ℓ|ξ_j=1] − E[ℓ|ξ_j=0] (Eq. 21), also at θ_j ∈ {0,1}; it does not depend on θ_j.

    At the boundary autograd of exact_expectation is NaN (autograd's np.prod VJP divides by the factor,
    here 0), so central differences are used: exact up to rounding since E_q[ℓ] is affine in each θ_j.
    """
    theta = prob.theta.copy()
    if theta_kind == "boundary":
        theta[[0, 3, 6]] = 1.0
        theta[[1, 5]] = 0.0
    g = prob.exact_grad(theta)
    f = lambda t: G.exact_expectation(prob.loss_of_masks, t)
    assert_close("exact_grad vs central differences", g, central_difference(f, theta, h=1e-3),
                 rtol=1e-8, atol=1e-11)
    for j in range(prob.n):
        def conditional(v):
            return G.exact_expectation(lambda m: prob.loss_of_masks(np.where(np.arange(prob.n) == j, v, m)), theta)
        assert_close(f"conditional difference, unit {j}", g[j], conditional(1.0) - conditional(0.0),
                     rtol=1e-10, atol=1e-13)
        for v in (0.0, 0.37, 1.0):
            other = theta.copy()
            other[j] = v
            assert_close(f"independence of θ_{j}", prob.exact_grad(other)[j], g[j], rtol=1e-10, atol=1e-13)


# ------------------------------------------------------------------ unbiasedness, Eq. (22)–(23)
def _estimates(draws, prob, baseline):
    """K estimates, each from one group of B examples, through the gates.* functions."""
    tt = G.theta_tilde(prob.theta, EPS_XI)
    x1, x2, l1, l2 = draws["x1"], draws["x2"], draws["l1"], draws["l2"]
    if baseline == "pair":
        return np.array([G.pair_grad(l1[k], l2[k], x1[k], x2[k], tt) for k in range(len(l1))])
    # 'loo' must see only its own group of B: one call per group
    return np.array([G.score_function_grad(l1[k], x1[k], tt, baseline) for k in range(len(l1))])


@pytest.mark.parametrize("baseline", G.BASELINES)
def test_score_function_estimator_unbiased(prob, draws, baseline):
    assert_unbiased(baseline, _estimates(draws, prob, baseline), prob.exact_grad())


def test_score_function_grad_rejects_unknown_baseline(prob):
    with pytest.raises(ValueError):
        G.score_function_grad(np.ones(3), np.ones((3, 2)), np.full(2, 0.5), "pair")


def test_pair_and_loo_agree_with_their_formulas(prob, draws):
    """Direct transcription of Eq. (22)–(23) for one group, to pin the formulas (not just their mean)."""
    tt = prob.theta
    l1, l2, x1, x2 = draws["l1"][0], draws["l2"][0], draws["x1"][0], draws["x2"][0]
    B = len(l1)
    s1, s2 = (x1 - tt) / (tt * (1 - tt)), (x2 - tt) / (tt * (1 - tt))
    loo = sum((l1[i] - (l1.sum() - l1[i]) / (B - 1)) * s1[i] for i in range(B)) / B
    pair = sum((l1[i] - l2[i]) * s1[i] + (l2[i] - l1[i]) * s2[i] for i in range(B)) / (2 * B)
    assert_close("loo", G.score_function_grad(l1, x1, tt, "loo"), loo, rtol=1e-12, atol=1e-14)
    assert_close("none", G.score_function_grad(l1, x1, tt, "none"), (l1 @ s1) / B, rtol=1e-12, atol=1e-14)
    assert_close("pair", G.pair_grad(l1, l2, x1, x2, tt), pair, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("baseline", G.BASELINES)
def test_gated_gradients_unbiased_end_to_end(baseline):
    """xinet.gated_gradients, one call per estimate with its own per-example masks, vs the exact oracle."""
    prob = Problem(seed=3)
    rng = np.random.default_rng(4)
    est = []
    for _ in range(K_E2E):
        _, _, g_theta, _ = X.gated_gradients(prob.specs, prob.params, {"x": prob.X}, prob.split(prob.theta),
                                             prob.loss_fn, rng, baseline=baseline, eps_xi=EPS_XI)
        est.append(prob.join(g_theta))
    assert_unbiased(f"gated_gradients[{baseline}]", np.array(est), prob.exact_grad())


def test_pair_unbiased_for_theta_tilde_at_the_boundary():
    """With θ_j ∈ {0, 1} the masks come from θ̃ = clip(θ, ε_ξ, 1−ε_ξ) (Eq. 4): the estimator is unbiased for
    the exact gradient at θ̃, which differs from the one at θ only by O(ε_ξ) (METHOD §5)."""
    prob = Problem(seed=5)
    theta = prob.theta.copy()
    theta[[0, 2, 4, 7]] = 1.0
    theta[5] = 0.0
    tt = G.theta_tilde(theta, EPS_XI)
    rng = np.random.default_rng(6)
    K, B = K_VEC, prob.B
    xi1, xi2 = G.sample_mask(rng, theta, K * B, EPS_XI), G.sample_mask(rng, theta, K * B, EPS_XI)
    l1 = prob.losses(xi1, K)[0].reshape(K, B)
    l2 = prob.losses(xi2, K)[0].reshape(K, B)
    x1, x2 = xi1.reshape(K, B, -1), xi2.reshape(K, B, -1)
    est = np.array([G.pair_grad(l1[k], l2[k], x1[k], x2[k], tt) for k in range(K)])
    g_tt, g_t = prob.exact_grad(tt), prob.exact_grad(theta)
    assert_unbiased("pair at θ̃", est, g_tt)
    # the O(ε_ξ) difference between the targets: bounded by a few ε_ξ times the gradient scale
    assert np.max(np.abs(g_tt - g_t)) <= 10 * EPS_XI * np.max(np.abs(g_t))


# ------------------------------------------------------------------ negative controls
def test_negative_control_baseline_including_own_loss_fails(prob, draws):
    """b_i = (1/B) Σ_k ℓ_k includes ℓ_i, so it depends on ξ_i: E ĝ = (1 − 1/B) ∂F/∂θ (biased by −g/B)."""
    tt = prob.theta
    l1, x1 = draws["l1"], draws["x1"]
    est = np.einsum("kb,kbn->kn", l1 - l1.mean(axis=1, keepdims=True), G.score(x1, tt)) / prob.B
    g = prob.exact_grad()
    assert np.max(bias_ratio(est, g)) > 1.0, "a biased estimator passed the unbiasedness test: the test has no power"
    assert_unbiased("batch-mean baseline vs its predicted mean", est, (1 - 1 / prob.B) * g)


def test_negative_control_wrong_score_fails(prob, draws):
    """s = (ξ − θ)/θ (missing the 1/(1−θ) factor): E ĝ_j = (1 − θ_j) ∂F/∂θ_j."""
    tt = prob.theta
    l1, x1 = draws["l1"], draws["x1"]
    est = np.einsum("kb,kbn->kn", l1, (x1 - tt) / tt) / prob.B
    g = prob.exact_grad()
    assert np.max(bias_ratio(est, g)) > 1.0, "a biased estimator passed the unbiasedness test: the test has no power"
    assert_unbiased("wrong score vs its predicted mean", est, (1 - tt) * g)


# ------------------------------------------------------------------ first-order estimator, Eq. (25)
def _first_order_estimates(prob, xi, reps):
    ell, r, cache = prob.losses(xi, reps)
    # backward of the *sum* Σ_i ℓ_i: d_gates[i, j] = ∂ℓ_i/∂ξ_ij
    _, _, d_gates = N.backward(prob.specs, prob.params, prob.split(xi), cache, {"net/out": 2.0 * r})
    per_example = prob.join(d_gates).reshape(reps, prob.B, prob.n)
    return np.array([G.first_order_grad(d) for d in per_example])


def test_first_order_estimator_is_biased_as_predicted(prob, draws):
    """One gated ReLU layer, linear output, squared error: ℓ is quadratic in ξ, and
    E[∂ℓ_i/∂ξ_ij] − (E[ℓ_i|ξ_ij=1] − E[ℓ_i|ξ_ij=0]) = (2θ_j − 1)(a_ij w_j)²,  a = ReLU(hidden), w = out weights."""
    est = _first_order_estimates(prob, draws["xi1"], K_VEC)
    g = prob.exact_grad()
    ratio = bias_ratio(est, g)
    assert np.max(ratio) > 1.0, f"first-order estimator not demonstrably biased: max |bias|/(Z·SE) = {ratio.max()}"
    assert np.sum(ratio > 1.0) >= prob.n // 2
    a = np.maximum(prob.X @ prob.params["net/h1"]["W"] + prob.params["net/h1"]["b"], 0.0)      # (B, n)
    w = prob.params["net/out"]["W"][:, 0]
    predicted_bias = (2 * prob.theta - 1) * np.mean((a * w) ** 2, axis=0)
    assert_unbiased("first-order vs exact + analytic bias", est, g + predicted_bias)


def test_first_order_estimator_biased_two_gated_layers():
    """Gates on two ReLU layers: the first layer's gates also move the second layer's ReLU kinks."""
    prob = Problem(hidden=(4, 4), seed=7)
    rng = np.random.default_rng(8)
    K = K_VEC
    xi = G.sample_mask(rng, prob.theta, K * prob.B, EPS_XI)
    est = _first_order_estimates(prob, xi, K)
    ratio = bias_ratio(est, prob.exact_grad())
    assert np.max(ratio) > 1.0, f"first-order estimator not demonstrably biased: max |bias|/(Z·SE) = {ratio.max()}"


# ------------------------------------------------------------------ the lemma, Eq. (17)
def _logit_grid():
    t = np.linspace(-35.0, 35.0, 700001)
    return np.concatenate([[0.0], 1.0 / (1.0 + np.exp(-t)), [1.0]])


@pytest.mark.parametrize("gamma", [-1.0, 0.1, 1.0, 5.0, 15.0])
@pytest.mark.parametrize("theta", [0.0, 0.05, 0.3, 0.5, 0.8, 0.97, 1.0])
def test_flattening_lemma_by_brute_force(theta, gamma):
    pi = _logit_grid()
    with np.errstate(divide="ignore", invalid="ignore"):
        f = G.kl_bernoulli(theta, pi) - G.log_hyperprior(pi, gamma)
    value, pi_star = G.flattening_lemma(theta, gamma)
    assert abs(value - (gamma * theta + np.log(gamma / np.expm1(gamma)))) < 1e-12
    assert 0.0 <= pi_star <= 1.0
    # the objective at π* equals the lemma's value ...
    with np.errstate(divide="ignore", invalid="ignore"):
        f_star = G.kl_bernoulli(theta, pi_star) - G.log_hyperprior(pi_star, gamma)
    assert abs(f_star - value) < 1e-10
    # ... and no π on a fine grid (uniform in logit, spacing 1e-4, plus 0 and 1) does better
    k = int(np.nanargmin(f))
    assert f[k] >= value - 1e-10
    assert f[k] - value < 1e-7
    # the grid minimiser is π*, to grid resolution (compared in logit space). At θ ∈ {0, 1}, π* = θ exactly;
    # the objective's slope near π* is only ~e^{−γ}, so the grid argmin may sit a rounding distance away.
    if theta in (0.0, 1.0):
        assert pi_star == theta
        assert abs(pi[k] - theta) < 1e-6
    else:
        logit = lambda p: np.log(p) - np.log1p(-p)
        assert abs(logit(pi[k]) - logit(pi_star)) < 1e-2


@pytest.mark.parametrize("gamma", [-3.0, -1.0, 0.1, 1.0, 5.0, 15.0, 30.0])
def test_hyperprior_is_normalised(gamma):
    # geometric grid: p(π) ∝ 1/(1 + (e^γ − 1)π) varies on the scale 1/(e^γ − 1), down to 1e-13 here
    pi = np.concatenate([[0.0], np.logspace(-16, 0, 400001)])
    mass = np.trapezoid(np.exp(G.log_hyperprior(pi, gamma)), pi)
    assert abs(mass - 1.0) < 1e-6
    # and it is a decreasing density for γ > 0 (favours π → 0), increasing for γ < 0
    p = np.exp(G.log_hyperprior(np.array([0.0, 0.5, 1.0]), gamma))
    assert np.all(np.diff(p) < 0) if gamma > 0 else np.all(np.diff(p) > 0)


def test_kl_bernoulli_values():
    assert G.kl_bernoulli(0.0, 0.3) == pytest.approx(-np.log(0.7), rel=1e-14)
    assert G.kl_bernoulli(1.0, 0.3) == pytest.approx(-np.log(0.3), rel=1e-14)
    assert G.kl_bernoulli(0.4, 0.4) == pytest.approx(0.0, abs=1e-15)
    want = 0.2 * np.log(0.2 / 0.6) + 0.8 * np.log(0.8 / 0.4)
    assert G.kl_bernoulli(0.2, 0.6) == pytest.approx(want, rel=1e-14)


# ------------------------------------------------------------------ determinism
@pytest.mark.parametrize("baseline", G.BASELINES)
def test_gated_gradients_deterministic(baseline):
    prob = Problem(hidden=(4, 4), seed=9)

    def run(seed):
        return X.gated_gradients(prob.specs, prob.params, {"x": prob.X}, prob.split(prob.theta), prob.loss_fn,
                                 np.random.default_rng(seed), baseline=baseline, eps_xi=EPS_XI)

    (l1, w1, t1, _), (l2, w2, t2, _) = run(11), run(11)
    assert l1 == l2
    for layer in w1:
        for name in w1[layer]:
            assert np.array_equal(w1[layer][name], w2[layer][name])
    for layer in t1:
        assert np.array_equal(t1[layer], t2[layer])
    # a different seed gives different masks, hence a different θ-gradient
    others = [np.concatenate(list(run(seed)[2].values())) for seed in (12, 13, 14)]
    assert any(not np.array_equal(o, np.concatenate(list(t1.values()))) for o in others)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_expected_gate_is_theta_or_the_mean_of_the_sampled_gate(dtype):
    """Eq. (3) reads θ; Eq. (40) reads E[ξ] = θ̃, which differs from θ only outside [ε_ξ, 1 − ε_ξ] — except at θ = 0,
    a unit about to be removed, which reads 0."""
    theta = np.array([0.0, 0.005, 0.3, 0.995, 1.0], dtype=dtype)
    assert G.expected_gate(theta, 0.01, "theta") is theta
    tilde = G.expected_gate(theta, 0.01, "tilde")
    assert tilde.dtype == dtype
    np.testing.assert_array_equal(tilde, np.array([0.0, 0.01, 0.3, 0.99, 0.99], dtype=dtype))
    # θ̃ is the mean of the masks sample_mask draws: 200 000 draws of the unit at θ = 1 (ε_ξ 0.01) switch it off
    # 2 000 ± 45 times
    xi = G.sample_mask(np.random.default_rng(0), theta[-1:], 200_000, 0.01)
    assert abs(xi.mean() - tilde[-1]) < 4 * np.sqrt(0.01 * 0.99 / 200_000)
    # a NaN θ stays NaN under either reading, so that the run's finiteness checks see it in the losses it reaches
    nan = np.array([np.nan, 1.0], dtype=dtype)
    assert np.isnan(G.expected_gate(nan, 0.01, "tilde")[0]) and np.isnan(G.expected_gate(nan, 0.01, "theta")[0])
    with pytest.raises(ValueError, match="unknown expected gate"):
        G.expected_gate(theta, 0.01, "mean")
