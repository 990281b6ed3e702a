"""Check another implementation against xiref's golden vectors, or a gradient against finite differences
(docs/REFERENCE.md).

    from xiref import gradcheck
    report = gradcheck.compare("dense", my_dense, "golden/")   # my_dense(inputs) -> {"output/u": …, …}
    assert report.passed

`compare` loads `<directory>/<component>.npz`, calls fn with the stored inputs (every input/, param/, data/,
mask/, noise/, const/ and cot/ array, plus "config": the component's manifest config) and compares every
key fn returns with the stored one. Golden files come from `python -m xiref reference --out DIR`; without a
directory the files shipped in the repository (tests/golden) are used.

Relative error of an entry: |got − want| / max(|want|, floor · S), where S is the largest |want| among all
keys of the same kind in the component (kind: output/, grad/, loss); when S is 0 the absolute error is
used. The floor (default 1e-5) is there because some entries are 0 in exact arithmetic and only rounding
residue of size ε·S is stored (e.g. the bias gradient of a layer followed by training-mode BN): such an
entry has no relative accuracy. Entries above floor · S are compared relative to themselves. A key passes
when its largest relative error is ≤ rtol.
"""
import json
import os
from dataclasses import dataclass, field

import numpy as np

from .envs import UserError

DEFAULT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "golden")
INPUT_PREFIXES = ("input", "param", "data", "mask", "noise", "const", "cot")
RTOL, FLOOR = 1e-10, 1e-5      # the golden tolerance: relative error ≤ RTOL, entries below FLOOR · S absolute


# ---------------------------------------------------------------------- golden files
@dataclass
class Golden:
    component: str
    arrays: dict              # every key of the file
    entry: dict               # the component's manifest entry (file, equations, summary, config, keys)
    directory: str

    def inputs(self):
        """What a foreign fn receives: the stored inputs, and 'config'."""
        x = {k: v for k, v in self.arrays.items() if k.split("/")[0] in INPUT_PREFIXES}
        x["config"] = self.entry.get("config", {})
        return x

    def expected(self):
        """The stored results: output/…, loss, grad/…."""
        return {k: v for k, v in self.arrays.items() if k.split("/")[0] not in INPUT_PREFIXES}


def read_manifest(directory=None):
    directory = directory or DEFAULT_DIR
    path = os.path.join(directory, "manifest.json")
    if not os.path.exists(path):
        raise UserError(f"no golden vectors in {directory} (manifest.json missing); "
                        f"write them with: python -m xiref reference --out {directory}")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def components(directory=None):
    """Component names in manifest order."""
    return list(read_manifest(directory)["components"])


def load(component, directory=None):
    """The golden file of one component, as a Golden."""
    directory = directory or DEFAULT_DIR
    man = read_manifest(directory)
    if component not in man["components"]:
        raise UserError(f"unknown component {component!r}; {directory} has: {', '.join(man['components'])}")
    entry = man["components"][component]
    path = os.path.join(directory, entry["file"])
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read golden file {path}: {exc}") from None
    return Golden(component, arrays, entry, directory)


# ---------------------------------------------------------------------- comparison
def relative_error(got, want, scale=None, floor=FLOOR):
    """Entry-wise |got − want| / max(|want|, floor · scale); scale defaults to max|want|; absolute error when
    scale is 0. NaN on either side counts as an infinite error unless both sides are equal."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if scale is None:
        scale = float(np.max(np.abs(want))) if want.size else 0.0
    denom = np.maximum(np.abs(want), floor * scale) if scale > 0 else np.ones_like(want)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        err = np.abs(got - want) / denom
    err = np.where(np.isnan(err), np.inf, err)
    return np.where(got == want, 0.0, err)            # exact agreement (equal infinities too): no error


def kind(key):
    """'grad/l1/W' -> 'grad': keys of one kind share the scale S of the relative error."""
    return key.split("/")[0]


@dataclass
class KeyResult:
    key: str
    status: str               # 'ok', 'FAIL', 'missing' (fn did not return it), 'extra' (not in the file),
                              # 'shape' (shapes differ)
    max_rel_err: float = float("nan")
    worst_index: tuple = ()
    got: float = float("nan")
    want: float = float("nan")
    shape: tuple = ()


@dataclass
class Report:
    component: str
    rtol: float
    rows: list = field(default_factory=list)
    what: str = "golden"      # what 'want' is: the golden file or finite differences

    @property
    def passed(self):
        return bool(self.rows) and all(r.status == "ok" for r in self.rows)

    @property
    def max_rel_err(self):
        errs = [r.max_rel_err for r in self.rows if r.status in ("ok", "FAIL")]
        if any(r.status not in ("ok", "FAIL") for r in self.rows):
            return float("inf")
        return max(errs) if errs else float("inf")

    @property
    def worst(self):
        """The row with the largest relative error (a structural failure first)."""
        bad = [r for r in self.rows if r.status not in ("ok", "FAIL")]
        if bad:
            return bad[0]
        return max(self.rows, key=lambda r: r.max_rel_err) if self.rows else None

    def failures(self):
        return [r for r in self.rows if r.status != "ok"]

    def __str__(self):
        head = (f"{self.component}: {'PASS' if self.passed else 'FAIL'}  (rtol {self.rtol:g}, "
                f"max rel err {self.max_rel_err:.2e}, want = {self.what})")
        lines = [head, f"  {'key':<26} {'shape':<10} {'status':<7} {'max rel err':>11}  {'worst at':<10} "
                       f"{'got':>24} {'want':>24}"]
        for r in self.rows:
            err = f"{r.max_rel_err:.2e}" if r.status in ("ok", "FAIL") else "-"
            at = str(r.worst_index) if r.status in ("ok", "FAIL") else "-"
            lines.append(f"  {r.key:<26} {str(r.shape):<10} {r.status:<7} {err:>11}  {at:<10} "
                         f"{r.got:>24.17g} {r.want:>24.17g}")
        return "\n".join(lines)


def _as_array(v):
    """numpy arrays, Python numbers and anything with .detach().cpu().numpy() (torch tensors)."""
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.asarray(v, dtype=np.float64)


def compare_values(component, got, want, rtol=RTOL, floor=FLOOR, require_all=True, what="golden", group=kind):
    """Report for dicts got / want of arrays. require_all: a key of want that got lacks is a failure.
    group(key) names the keys that share one scale S (default: the key's kind, output/grad/loss)."""
    rep = Report(component, rtol, what=what)
    scales = {}
    for key, w in want.items():
        w = np.asarray(w, dtype=np.float64)
        m = float(np.max(np.abs(w[np.isfinite(w)]))) if np.any(np.isfinite(w)) else 0.0
        scales[group(key)] = max(scales.get(group(key), 0.0), m)
    for key in want:
        if key not in got:
            if require_all:
                rep.rows.append(KeyResult(key, "missing", shape=tuple(np.shape(want[key]))))
            continue
        g, w = _as_array(got[key]), np.asarray(want[key], dtype=np.float64)
        if g.shape != w.shape:
            rep.rows.append(KeyResult(key, "shape", shape=f"{g.shape}≠{w.shape}"))
            continue
        err = relative_error(g, w, scales[group(key)], floor)
        if err.size == 0:
            rep.rows.append(KeyResult(key, "ok", 0.0, (), shape=w.shape))
            continue
        k = np.unravel_index(int(np.argmax(err)), err.shape)
        e = float(err[k])
        rep.rows.append(KeyResult(key, "ok" if e <= rtol else "FAIL", e, tuple(int(i) for i in k),
                                  float(g[k]), float(w[k]), w.shape))
    for key in got:
        if key not in want:
            rep.rows.append(KeyResult(key, "extra", shape=tuple(np.shape(_as_array(got[key])))))
    return rep


def compare(component, fn, directory=None, rtol=RTOL, floor=FLOOR, require_all=True, verbose=True):
    """Call fn(inputs) on a component's stored inputs and compare what it returns with the stored results.

    fn returns a dict with the golden key names (output/…, loss, grad/…); by default it must return every
    stored result (require_all=False compares only the keys it returns). A returned key that the file does
    not hold is reported as 'extra' and fails. Returns a Report (printed when verbose).
    """
    gold = load(component, directory)
    got = fn(gold.inputs())
    if not isinstance(got, dict):
        raise TypeError(f"fn must return a dict of arrays, got {type(got).__name__}")
    rep = compare_values(component, got, gold.expected(), rtol, floor, require_all)
    if verbose:
        print(rep)
    return rep


# ---------------------------------------------------------------------- finite differences
def _flat(x):
    if isinstance(x, dict):
        return {k: np.array(v, dtype=np.float64) for k, v in x.items()}
    return {"x": np.array(x, dtype=np.float64)}


def check_finite_differences(f, grad_f, x, eps=1e-6, rtol=1e-5, floor=1e-3, verbose=False):
    """Compare grad_f(x) with central differences (f(x + eps e_k) − f(x − eps e_k)) / 2eps of the scalar f.

    x: an array, or a dict of arrays (then f and grad_f take such a dict and grad_f returns a dict with the
    same keys). Entries are compared relative to the finite difference, never relative to less than
    floor × the largest finite difference over all keys (a difference carries an absolute error of about
    eps² f‴ + ulp(f)/eps). f is called with perturbed copies; x itself is not modified.
    Returns a Report whose keys are the keys of x ('x' for a plain array).
    """
    is_dict = isinstance(x, dict)
    xs = _flat(x)
    unwrap = (lambda d: d) if is_dict else (lambda d: d["x"])
    fd = {}
    for key, arr in xs.items():
        g = np.zeros_like(arr)
        flat, gf = arr.reshape(-1), g.reshape(-1)
        for k in range(flat.size):
            old = flat[k]
            flat[k] = old + eps
            fp = float(f(unwrap(xs)))
            flat[k] = old - eps
            fm = float(f(unwrap(xs)))
            flat[k] = old
            gf[k] = (fp - fm) / (2.0 * eps)
        fd[key] = g
    got = grad_f(unwrap(_flat(x)))
    got = got if is_dict else {"x": got}
    rep = compare_values("finite differences", got, fd, rtol, floor, what="central differences",
                         group=lambda key: "grad")
    if verbose:
        print(rep)
    return rep
