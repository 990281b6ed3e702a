"""Hand-written layers: forward and backward as pure functions (docs/METHOD.md §1).

Every forward here is plain NumPy without in-place assignment, so autograd can differentiate the very
same code; every backward is written out by hand and tested against autograd and finite differences
(tests/test_layers.py). Shapes: B batch, n_in inputs, n units.
"""
import itertools

import numpy as np


# ---------------------------------------------------------------- dense, Eq. (1)
def dense_forward(h, W, b):
    """u = h W + b.  h (B, n_in), W (n_in, n), b (n,) -> u (B, n).  Eq. (1)"""
    # u = h W + b
    return h @ W + b


def dense_backward(du, h, W, need_dh=True, need_dW=True):
    """Given du = dL/du (B, n): returns (dh (B, n_in), dW (n_in, n), db (n,)).

    need_dh / need_dW = False return None in that place and skip its matrix product. need_dh may also be
    a slice of h's columns: dh is then only those columns, du W[rows]ᵀ (B, rows) — the input gradient of
    a layer whose other inputs need none (the z_o part of a critic's input in the actor loss).
    """
    # \partial L/\partial W = h^T du,  \partial L/\partial b = \sum_i du_i,  \partial L/\partial h = du W^T
    if isinstance(need_dh, slice):
        dh = _times_transpose(du, W[need_dh])                          # (B, rows): W[rows] is a view
    else:
        dh = _times_transpose(du, W) if need_dh else None
    return dh, (h.T @ du if need_dW else None), (du.sum(axis=0) if need_dW else None)


def _times_transpose(du, W):
    """du Wᵀ.  With one unit (a critic's output layer) this is an outer product, which numpy's matmul runs
    in a plain loop as 0 + du_i W_j; the broadcast product plus 0 gives the same numbers, several times faster."""
    if W.shape[1] == 1:
        return du * W.T + 0.0
    return du @ W.T


# ---------------------------------------------------------------- activations φ
def sigmoid(x):
    """Overflow-free logistic function: sigmoid(x) = (1 + tanh(x/2)) / 2."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def relu_forward(u):
    """φ(u) = max(u, 0)  (SAC hidden layers, §0)."""
    return np.maximum(u, 0.0)


def relu_backward(dy, u):
    """dL/du for ReLU; at u = 0 exactly we take 0 (autograd's np.maximum splits it, 0.5)."""
    return dy * (u > 0)


def swish_forward(u):
    """φ(u) = u · sigmoid(u)  (OFENet layers, §0)."""
    return u * sigmoid(u)


def swish_backward(dy, u):
    """dφ/du = σ(u) + u σ(u)(1 − σ(u))."""
    s = sigmoid(u)
    return dy * (s + u * s * (1.0 - s))


def linear_forward(u):
    """Identity activation (output layers)."""
    return u


def linear_backward(dy, u):
    return dy


ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "swish": (swish_forward, swish_backward),
    "linear": (linear_forward, linear_backward),
}


# ---------------------------------------------------------------- BatchNorm, Eq. (2')
def batchnorm_forward_train(u, s, c, eps):
    """BN with batch statistics.  u (B, n), s, c (n,).  Eq. (2')

    Returns (out (B, n), mu (n,), var (n,), xhat (B, n), inv_std (n,)); the caller folds mu, var into the
    running averages with `batchnorm_update_running` (kept outside so this function stays pure).
    """
    # \mu = (1/B) \sum_i u_i,   v = (1/B) \sum_i (u_i - \mu)^2   (biased, as Keras)
    mu = np.mean(u, axis=0)
    var = np.mean((u - mu) ** 2, axis=0)
    inv_std = 1.0 / np.sqrt(var + eps)
    # BN(u) = s ⊙ (u − μ)/\sqrt{v + ε_bn} + c
    xhat = (u - mu) * inv_std
    return s * xhat + c, mu, var, xhat, inv_std


def batchnorm_backward_train(dout, s, xhat, inv_std):
    """Backward of BN in training mode (through the batch statistics).

    dout (B, n) -> (du (B, n), ds (n,), dc (n,)).
    """
    B = dout.shape[0]
    ds = np.sum(dout * xhat, axis=0)
    dc = np.sum(dout, axis=0)
    dxhat = dout * s
    # du = (1/\sqrt{v+ε}) [dx̂ − mean_i dx̂ − x̂ · mean_i(dx̂ ⊙ x̂)]
    du = inv_std * (dxhat - np.sum(dxhat, axis=0) / B - xhat * (np.sum(dxhat * xhat, axis=0) / B))
    return du, ds, dc


def batchnorm_forward_eval(u, s, c, mean, var, eps):
    """BN with running statistics (inference mode).  Returns (out, xhat, inv_std)."""
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (u - mean) * inv_std
    return s * xhat + c, xhat, inv_std


def batchnorm_backward_eval(dout, s, xhat, inv_std):
    """Backward of BN in inference mode: the statistics are constants."""
    return dout * (s * inv_std), np.sum(dout * xhat, axis=0), np.sum(dout, axis=0)


def batchnorm_update_running(mean_run, var_run, mu, var, momentum):
    """running ← momentum · running + (1 − momentum) · batch  (Keras convention, momentum 0.99)."""
    return momentum * mean_run + (1.0 - momentum) * mu, momentum * var_run + (1.0 - momentum) * var


# ---------------------------------------------------------------- concatenation [x, y]
def concat_forward(xs):
    """[x_1, …, x_k] along features: list of (B, w_k) -> (B, Σ w_k).

    autograd's array-function hook does not trace np.concatenate, so while autograd is tracing (its
    ArrayBox values among the inputs) the identical operation is taken from autograd.numpy.
    """
    if any(type(x).__name__ == "ArrayBox" for x in xs):
        import autograd.numpy as anp
        return anp.concatenate(xs, axis=1)
    return np.concatenate(xs, axis=1)


def concat_backward(dh, widths):
    """Split dL/dh (B, Σ w_k) back into the pieces of widths w_k (views of dh)."""
    ends = list(itertools.accumulate(widths))
    return [dh[:, end - w:end] for w, end in zip(widths, ends)]
