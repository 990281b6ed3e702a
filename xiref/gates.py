"""Bernoulli unit gates and their θ-gradient estimators (docs/METHOD.md §1, §4, §5).

All estimators take per-example losses ℓ_i (B,) computed under per-example masks ξ (B, n) drawn from
θ̃ = clip(θ, ε_ξ, 1 − ε_ξ). Randomness only through an explicit np.random.Generator.
"""
import itertools

import numpy as np

BASELINES = ("none", "loo", "pair")          # score-function baselines of Eq. (23)
# every θ-gradient estimator `xinet.gated_gradients(baseline=…)` accepts (docs/METHOD.md §5)
ESTIMATORS = BASELINES + ("muprop", "muprop-loo", "flip")
# what the expected-gate forward (3) multiplies a unit by: θ, or the mean of its sampled gate θ̃ (Eq. 40)
EXPECTED_GATES = ("theta", "tilde")


def theta_tilde(theta, eps_xi):
    """θ̃ = clip(θ, ε_ξ, 1 − ε_ξ): the sampling probabilities.  Eq. (4)

    The upper end is held below 1 in θ's dtype: an ε_ξ under the spacing of that dtype at 1 (float32:
    6e-8) would round 1 − ε_ξ to 1 and turn the score (22) of a unit at θ = 1 into 0/0.
    """
    below_one = float(np.nextafter(np.result_type(getattr(theta, "dtype", float), np.float32).type(1.0), 0.0))
    return np.clip(theta, eps_xi, min(1.0 - eps_xi, below_one))


def expected_gate(theta, eps_xi, kind):
    """The expected-gate forward's factor for units at θ (n,): θ itself (Eq. 3), or E[ξ] = θ̃ (Eq. 40).

    The two differ only where 0 < θ < ε_ξ or θ > 1 − ε_ξ: a unit at θ = 1 is sampled on with probability
    1 − ε_ξ, so a network fitted under sampled gates and read with θ = 1 reads every such unit (1 − ε_ξ)⁻¹ too
    strong (docs/METHOD.md §1). A unit at θ = 0 reads 0 in both: it is removed at the end of the step (§7) and
    never sampled again, and compaction leaves every expected-gate output as it was.
    """
    if kind == "theta":
        return theta
    if kind != "tilde":
        raise ValueError(f"unknown expected gate {kind!r}; choose one of {', '.join(EXPECTED_GATES)}")
    # E[ξ_j] = θ̃_j for a unit still in the network, 0 for one at θ_j = 0 (a NaN θ stays NaN)   Eq. (40)
    return np.where(theta == 0, 0, theta_tilde(theta, eps_xi)).astype(theta.dtype, copy=False)


def sample_mask(rng, theta, batch, eps_xi, dtype=None):
    """ξ_ij ~ Bernoulli(θ̃_j) independently per example i.  Eq. (2)   -> (B, n)"""
    tt = theta_tilde(theta, eps_xi)
    return (rng.random((batch, len(theta))) < tt).astype(dtype or theta.dtype)


def score(xi, theta_t):
    """s_ij = (ξ_ij − θ̃_j) / (θ̃_j (1 − θ̃_j)) = ∂ log q(ξ_ij) / ∂θ̃_j.   Eq. (22)   (B, n)"""
    return (xi - theta_t) / (theta_t * (1.0 - theta_t))


def score_function_grad(losses, xi, theta_t, baseline="loo"):
    """ĝ_j = (1/B) Σ_i (ℓ_i − b_i) s_ij with baseline b_i 'none' or 'loo'.   Eq. (22)–(23)

    losses (B,), xi (B, n), theta_t (n,) -> (n,).
    """
    B = losses.shape[0]
    if baseline == "none":
        b = 0.0
    elif baseline == "loo":
        # b_i = (1/(B−1)) Σ_{k≠i} ℓ_k   (independent of ξ_i)          Eq. (23)
        b = (np.sum(losses) - losses) / (B - 1)
    else:
        raise ValueError(f"baseline must be 'none' or 'loo' here (use pair_grad for 'pair'), got {baseline!r}")
    # ĝ_j = (1/B) Σ_i (ℓ_i − b_i) s_ij                                   Eq. (22)
    return (losses - b) @ score(xi, theta_t) / B


def pair_grad(losses1, losses2, xi1, xi2, theta_t):
    """Pair baseline: each example under two independent masks.   Eq. (23)

    ĝ_j = (1/2B) Σ_i Σ_m (ℓ_i^(m) − ℓ_i^(3−m)) s_ij^(m).   losses (B,), xi (B, n) -> (n,).
    """
    B = losses1.shape[0]
    diff = losses1 - losses2
    return (diff @ score(xi1, theta_t) - diff @ score(xi2, theta_t)) / (2 * B)


def first_order_grad(d_gates_per_example):
    """Biased comparison estimator ĝ_j = (1/B) Σ_i ∂ℓ_i/∂ξ_ij at the sampled mask.   Eq. (25)

    Input: the per-example derivatives ∂ℓ_i/∂ξ_ij (B, n) (network.backward's d_gates of the *sum* of ℓ_i).
    """
    return np.mean(d_gates_per_example, axis=0)


def flip_units(rng, batch, n):
    """u_i ~ Uniform{0, …, n−1}: the one unit of each example whose gate the flip pass inverts.  Eq. (33)"""
    return rng.integers(0, n, size=batch)


def flip_mask(xi, u):
    """ξ′ = ξ with ξ′_{i,u_i} = 1 − ξ_{i,u_i} (pure: a new array).   (B, n), (B,) -> (B, n)"""
    return np.abs(xi - (np.arange(xi.shape[1]) == u[:, None]))


def flip_grad(losses, losses_flip, xi, u, slope):
    """Flip estimator with a Taylor control variate.   Eq. (33)–(34)

    D_i = ℓ_i(ξ_i with u_i on) − ℓ_i(ξ_i with u_i off) = σ_i (ℓ_i(ξ_i) − ℓ_i(ξ′_i)), σ_i = 2ξ_{i,u_i} − 1;
    ĝ_j = (1/B) Σ_i [c_ij + n 1[u_i = j] (D_i − c_{i,u_i})],  c_ij = slope_ij (any c that does not look at u).
    losses, losses_flip (B,), xi (B, n), u (B,), slope (B, n) -> (n,).
    """
    B, n = xi.shape
    rows = np.arange(B)
    # D_i = σ_i (ℓ_i − ℓ′_i)                                             Eq. (33)
    D = (2.0 * xi[rows, u] - 1.0) * (losses - losses_flip)
    # (n/B) Σ_{i: u_i = j} (D_i − c_{i,u_i})  +  (1/B) Σ_i c_ij              Eq. (34)
    correction = np.bincount(u, weights=D - slope[rows, u], minlength=n) * (n / B)
    return np.mean(slope, axis=0) + correction


def muprop_grad(losses, losses_mean, slope, xi, theta_t, residual_baseline="none"):
    """MuProp (Gu et al. 2016): score function on the residual of a first-order expansion at ξ̄ = θ̃.  Eq. (35)

    f̃_i(ξ) = ℓ_i(ξ̄) + Σ_k g_ik (ξ_ik − ξ̄_k);   ĝ_j = (1/B) Σ_i (ℓ_i(ξ_i) − f̃_i(ξ_i) − b_i) s_ij + (1/B) Σ_i g_ij.
    losses (B,) at the sampled masks, losses_mean (B,) at ξ̄, slope g (B, n) at ξ̄ (must not depend on ξ),
    xi (B, n), theta_t (n,); residual_baseline 'none' (b_i = 0) or 'loo' (Eq. 23 on the residuals).
    """
    # r_i = ℓ_i(ξ_i) − ℓ_i(ξ̄) − Σ_k g_ik (ξ_ik − ξ̄_k)
    residual = losses - losses_mean - np.sum(slope * (xi - theta_t), axis=1)
    return score_function_grad(residual, xi, theta_t, residual_baseline) + np.mean(slope, axis=0)


# ------------------------------------------------------------------ exact oracle, Eq. (24)
def all_masks(n, dtype=np.float64):
    """Every ξ ∈ {0,1}^n as rows of a (2^n, n) array."""
    if n > 12:
        raise ValueError(f"exact enumeration is for n <= 12 gates, got {n}")
    return np.array(list(itertools.product((0.0, 1.0), repeat=n)), dtype=dtype)


def mask_probability(masks, theta):
    """q_θ(ξ) = Π_j θ_j^{ξ_j} (1 − θ_j)^{1−ξ_j} for each row ξ.   (M, n), (n,) -> (M,)"""
    return np.prod(masks * theta + (1.0 - masks) * (1.0 - theta), axis=1)


def exact_expectation(loss_of_masks, theta):
    """E_q[ℓ] = Σ_ξ q_θ(ξ) ℓ(ξ).   Eq. (24)

    loss_of_masks: (M, n) masks -> (M,) loss (already averaged over examples). Differentiable in θ.
    """
    masks = all_masks(len(theta))
    return np.sum(mask_probability(masks, theta) * loss_of_masks(masks))


def exact_grad(loss_of_masks, theta):
    """∂E_q[ℓ]/∂θ_j = E[ℓ | ξ_j = 1] − E[ℓ | ξ_j = 0], exactly, by enumeration.   Eq. (21), (24)

    Valid also at θ_j ∈ {0, 1}: q is multilinear, so the derivative is Σ_ξ ℓ(ξ) (2ξ_j − 1) Π_{k≠j} q_k.
    """
    n = len(theta)
    masks = all_masks(n)
    ell = loss_of_masks(masks)                                         # (M,)
    factors = masks * theta + (1.0 - masks) * (1.0 - theta)            # (M, n)
    grad = np.empty(n)
    for j in range(n):
        others = np.prod(np.delete(factors, j, axis=1), axis=1)        # Π_{k≠j} q_k(ξ_k)
        grad[j] = np.sum(ell * (2.0 * masks[:, j] - 1.0) * others)
    return grad


# ------------------------------------------------------------------ the lemma, Eq. (17)
def flattening_lemma(theta, gamma):
    """min over π of KL(Bern θ ‖ Bern π) − log p(π), p(π) ∝ 1/(1 + (e^γ − 1)π).   Eq. (17)

    Returns (value, pi_star) with value = γθ + log Z(γ), Z(γ) = γ/(e^γ − 1), π* = θ/(1 + (e^γ−1)(1−θ)).
    """
    em1 = np.expm1(gamma)
    pi_star = theta / (1.0 + em1 * (1.0 - theta))
    return gamma * theta + _log_Z(gamma), pi_star


def _log_Z(gamma):
    """log Z(γ) = log(γ / (e^γ − 1)), with its limit 0 at γ = 0 (flat hyper-prior)."""
    em1 = np.expm1(gamma)
    safe = np.where(gamma == 0, 1.0, gamma)
    return np.where(gamma == 0, 0.0, np.log(safe / np.where(gamma == 0, 1.0, em1)))


def kl_bernoulli(theta, pi):
    """KL(Bern θ ‖ Bern π), with 0 log 0 = 0."""
    t1 = np.where(theta > 0, theta * np.log(np.where(theta > 0, theta, 1.0) / pi), 0.0)
    t0 = np.where(theta < 1, (1 - theta) * np.log(np.where(theta < 1, 1 - theta, 1.0) / (1 - pi)), 0.0)
    return t1 + t0


def log_hyperprior(pi, gamma):
    """log p(π) for p(π) = 1/(Z(γ)(1 + (e^γ − 1)π)) normalised on [0, 1]."""
    return -_log_Z(gamma) - np.log1p(np.expm1(gamma) * pi)
