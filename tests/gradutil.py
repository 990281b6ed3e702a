"""Gradient-check helpers shared by the tests: compare a hand-written gradient with autograd's gradient of
the same plain-NumPy forward, or with central finite differences."""
import numpy as np
from autograd import grad as ag_grad


class GradientMismatch(AssertionError):
    pass


def assert_close(name, got, want, rtol=1e-7, atol=1e-10):
    """Raise GradientMismatch naming the worst entry when |got − want| > atol + rtol·|want|."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        raise GradientMismatch(f"{name}: shape {got.shape} != {want.shape}")
    err = np.abs(got - want) - (atol + rtol * np.abs(want))
    if err.size and np.max(err) > 0:
        k = np.unravel_index(np.argmax(err), err.shape)
        raise GradientMismatch(f"{name}: worst at {k}: got {got[k]!r}, want {want[k]!r}")


def autograd_grad(f, x):
    """autograd's gradient of the scalar function f at x (array or dict/list of arrays)."""
    return ag_grad(f)(x)


def central_difference(f, x, h=1e-6):
    """Central finite differences of scalar f at array x (float64)."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    flat = x.reshape(-1)
    gf = g.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + h
        fp = f(x)
        flat[k] = old - h
        fm = f(x)
        flat[k] = old
        gf[k] = (fp - fm) / (2 * h)
    return g


def check_tree(name, got, want, rtol=1e-7, atol=1e-10):
    """assert_close over nested dicts of arrays with the same keys."""
    if isinstance(want, dict):
        if set(got) != set(want):
            raise GradientMismatch(f"{name}: keys {sorted(got)} != {sorted(want)}")
        for k in want:
            check_tree(f"{name}[{k}]", got[k], want[k], rtol, atol)
    else:
        assert_close(name, got, want, rtol, atol)
