"""Soft Actor-Critic losses with hand-written backward passes (docs/METHOD.md §3, Eq. 9–14).

These functions act on network *outputs* (arrays), not on networks: the agent (xiref/agent.py) runs the
networks and chains these gradients into network.backward. Every gradient is tested against autograd
(tests/test_sac.py). B batch, A action dimension.
"""
import numpy as np

LOG_2PI = float(np.log(2.0 * np.pi))
LOG_2 = float(np.log(2.0))                 # Python floats: they keep the arrays' dtype (float32 stays float32)
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0       # log-σ range as CleanRL/SpinUp (Choice, §3)


def softplus(x):
    """log(1 + e^x), overflow-free."""
    return np.logaddexp(0.0, x)


def log_std(lam):
    """log σ = −5 + 3.5 (tanh λ + 1): squashes λ into [−5, 2] (CleanRL's form).   §3"""
    return LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (np.tanh(lam) + 1.0)


def tanh_gaussian(out, eps, log_scale):
    """Reparameterised tanh-Gaussian sample and its log-density.   Eq. (9)

    out (B, 2A) = [μ, λ] from the actor, eps (B, A) ~ N(0, I), log_scale (A,) = log of the env action
    scale. Returns (a (B, A) in (−1, 1), log_pi (B,), cache for tanh_gaussian_backward).
    """
    A = eps.shape[1]
    mu, lam = out[:, :A], out[:, A:]
    ls = log_std(lam)
    sigma = np.exp(ls)
    # x = μ + σ ε,   a = tanh x
    x = mu + sigma * eps
    a = np.tanh(x)
    # log(1 − tanh² x) = 2 (log 2 − x − softplus(−2x))   (stable form)
    log_jac = 2.0 * (LOG_2 - x - softplus(-2.0 * x))
    # log π(a|s) = Σ_k [−½ε_k² − log σ_k − ½ log 2π − log(1 − tanh² x_k) − log scale_k]      Eq. (9)
    log_pi = np.sum(-0.5 * eps ** 2 - ls - 0.5 * LOG_2PI - log_jac - log_scale, axis=1)
    return a, log_pi, {"a": a, "lam": lam, "sigma": sigma, "eps": eps}


def tanh_gaussian_backward(d_a, d_log_pi, cache):
    """Chain dL/da (B, A) and dL/dlog_pi (B,) back to dL/d out (B, 2A), with ε held fixed.

    Uses ∂log π/∂x_k = 2 tanh x_k = 2 a_k (derivative of −log(1 − tanh² x)) and ∂log π/∂log σ_k = −1.
    """
    a, lam, sigma, eps = cache["a"], cache["lam"], cache["sigma"], cache["eps"]
    dlp = d_log_pi[:, None]
    dx = d_a * (1.0 - a * a) + dlp * (2.0 * a)                          # (B, A)
    d_ls = dx * (sigma * eps) - dlp                                      # dL/dlog σ
    d_lam = d_ls * (0.5 * (LOG_STD_MAX - LOG_STD_MIN)) * (1.0 - np.tanh(lam) ** 2)
    return np.concatenate([dx, d_lam], axis=1)


def td_target(r, d, q1_next, q2_next, log_pi_next, alpha, gamma):
    """y_i = r_i + γ(1 − d_i)[min_k Q̄_k(s′, a′) − α log π(a′|s′)].   Eq. (10)   (B,) each"""
    # d_i = 1 only on termination; a time-limit truncation bootstraps (§0)
    return r + gamma * (1.0 - d) * (np.minimum(q1_next, q2_next) - alpha * log_pi_next)


def critic_loss(q, y):
    """Per-example ℓ^Q_i = (Q(s_i, a_i) − y_i)² and d[(1/B) Σ ℓ]/dQ.   Eq. (11)   q, y (B,)"""
    r = q - y
    return r ** 2, 2.0 * r / q.shape[0]


def actor_loss(log_pi, q1, q2, alpha):
    """Per-example ℓ^π_i = α log π(ã_i|s_i) − min_k Q_k(s_i, ã_i).   Eq. (12)

    Returns (ell (B,), d_log_pi, d_q1, d_q2) — the gradients of the mean loss; the min routes the
    gradient to the smaller critic (ties to critic 1).
    """
    B = log_pi.shape[0]
    first = q1 <= q2
    ell = alpha * log_pi - np.where(first, q1, q2)
    w1 = first.astype(q1.dtype)
    return ell, np.full(B, alpha / B, dtype=q1.dtype), -w1 / B, -(1.0 - w1) / B


def alpha_loss(log_alpha, log_pi, target_entropy):
    """L_α = −(1/B) Σ_i log α · (log π(ã_i|s_i) + H̄), H̄ = −A the target entropy.   Eq. (13)

    Returns (L_α, dL_α/d log α).
    """
    g = -np.mean(log_pi + target_entropy)
    return log_alpha * g, g


def polyak(target, online, tau):
    """Q̄ ← τ Q + (1 − τ) Q̄, in place on every array of the target container.   Eq. (14)"""
    for layer, p in target.items():
        for name, arr in p.items():
            arr *= (1.0 - tau)
            arr += tau * online[layer][name]
