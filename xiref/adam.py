"""Adam over a layer container (docs/METHOD.md Eq. 31).

The moments m and v are layer containers with exactly the structure of the parameters
(m[layer]['W'] has W's shape), so pruning (xiref/prune.py) removes their rows and columns with the same
code that removes the parameters'.
"""
from dataclasses import dataclass

import numpy as np


@dataclass
class AdamState:
    """First and second moments, step count and hyperparameters of one optimiser."""
    m: dict                      # layer -> {param: array like the parameter}
    v: dict                      # layer -> {param: array like the parameter}
    t: int = 0                   # number of steps taken
    lr: float = 3e-4             # learning rate (OFENet and SAC default)
    beta1: float = 0.9           # first-moment decay (Kingma & Ba default)
    beta2: float = 0.999         # second-moment decay (Kingma & Ba default)
    eps: float = 1e-8            # denominator guard (Kingma & Ba default)


def adam_init(params, lr=3e-4):
    def zeros():
        return {k: {n: np.zeros_like(a) for n, a in p.items()} for k, p in params.items()}
    return AdamState(m=zeros(), v=zeros(), lr=lr)


def adam_step(params, grads, state):
    """In-place Adam update of every array in `grads` (a subset of `params` is fine).   Eq. (31)

    m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  W ← W − lr · m̂ / (√v̂ + ε)  with bias-corrected m̂, v̂.
    """
    state.t += 1
    b1, b2 = state.beta1, state.beta2
    step = float(state.lr * np.sqrt(1.0 - b2 ** state.t) / (1.0 - b1 ** state.t))
    eps_t = float(state.eps * np.sqrt(1.0 - b2 ** state.t))
    for layer, g_layer in grads.items():
        for name, g in g_layer.items():
            m, v, w = state.m[layer][name], state.v[layer][name], params[layer][name]
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            # lr · m̂/(√v̂ + ε) rewritten with the bias corrections folded into step and eps_t (same value)
            w -= (step * m) / (np.sqrt(v) + eps_t)
