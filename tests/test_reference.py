"""Golden vectors and the gradient-check API (xiref/reference.py, xiref/gradcheck.py, docs/REFERENCE.md).

* tests/golden is reproduced by the current code, manifest included: the stored inputs are loaded and every
  result recomputed from them must agree within gradcheck's tolerance (1e-10, floor 1e-5); bit for bit only
  with XIREF_GOLDEN_BITWISE=1. Inputs one ulp off pass, a result 1e-6 off fails, naming component and key.
* Every required component has a golden file; the files follow the key convention (every input/ and
  param/ has its grad/, float64, 0-d loss); docs/REFERENCE.md lists exactly the keys and shapes of the files.
* `python -m xiref reference` writes a complete set that agrees within the tolerance; a bad --out is a
  one-line user error; `python -m xiref.reference --refresh` keeps the stored inputs.
* gradcheck.compare passes xiref's own computation from the stored inputs and catches wrong gradients,
  missing and extra keys; check_finite_differences passes a right gradient and catches a wrong one.
* examples/validate_torch.py (only when torch is importable) agrees to ≤ 1e-10 on every component, and
  skips cleanly without torch.
* The delicate cases: a naive log(1 − tanh² x) or a softplus that switches to x above 20 fails
  tanh_gaussian_tails; a tie rule other than critic 1 fails actor_loss_ties.
"""
import importlib.util
import json
import os
import re
import sys

import numpy as np
import pytest

from xiref import gradcheck
from xiref import layers as L
from xiref import reference as R
from xiref.cli import main

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
GOLDEN = os.path.join(ROOT, "tests", "golden")
DOC = os.path.join(ROOT, "docs", "REFERENCE.md")

# the required components: component -> an equation it must cite
REQUIRED = {"dense": "1", "batchnorm": "2′", "swish": "2′", "densenet_block": "5", "ofenet_aux_loss": "8",
            "gated_layer": "2", "score_none": "22", "score_loo": "22", "score_pair": "22", "exact_grad": "24",
            "cost": "29", "tanh_gaussian": "9", "critic_loss": "11", "actor_loss": "12", "alpha_loss": "13",
            "exact_grad_deep": "24", "tanh_gaussian_tails": "9", "critic_loss_ties": "10",
            "actor_loss_ties": "12"}
GRAD_EXCEPTIONS = {("gated_layer", "grad/xi")}          # the one documented gradient w.r.t. a mask


@pytest.fixture(scope="module")
def manifest():
    with open(os.path.join(GOLDEN, "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def stored(manifest):
    out = {}
    for name, entry in manifest["components"].items():
        with np.load(os.path.join(GOLDEN, entry["file"]), allow_pickle=False) as z:
            out[name] = {k: z[k] for k in z.files}
    return out


# ====================================================================== 1. reproduced
# The stored inputs are the data: the current code recomputes every result from them and must agree within
# the golden tolerance (gradcheck.RTOL = 1e-10, entries below gradcheck.FLOOR = 1e-5 of the largest of their
# kind compared absolutely). Another CPU selects other OpenBLAS kernels and SIMD exp/tanh/log: results then
# differ in the last bits (measured 9.4e-12 at most, on BN-cancelled bias gradients whose exact value is 0;
# every other entry ≤ 1.5e-13), and inputs drawn again from the seed differ too (score_* data/ell by 1.2e-16).
# XIREF_GOLDEN_BITWISE=1 asks for bit-for-bit equality instead, on the CPU that wrote tests/golden.
BITWISE = os.environ.get("XIREF_GOLDEN_BITWISE") == "1"


def golden_problems(fresh, stored, bitwise=False):
    """What keeps `fresh` ({component: arrays}) from reproducing `stored`: the same components and keys in
    the same order, float64 and the same shapes, and every key within gradcheck's tolerance (bit for bit
    when bitwise)."""
    if list(fresh) != list(stored):
        return ["components added, removed or reordered: regenerate tests/golden"]
    problems = []
    for name, arrays in fresh.items():
        if list(arrays) != list(stored[name]):
            problems.append(f"{name}: keys {list(arrays)} != stored {list(stored[name])}")
            continue
        errors = {r.key: r.max_rel_err for r in gradcheck.compare_values(name, arrays, stored[name]).rows}
        for key, a in arrays.items():
            b = stored[name][key]
            if a.dtype != np.float64 or b.dtype != np.float64 or a.shape != b.shape:
                problems.append(f"{name} {key}: {a.dtype}{a.shape} vs stored {b.dtype}{b.shape}")
            elif not np.array_equal(a, b) if bitwise else errors[key] > gradcheck.RTOL:
                problems.append(f"{name} {key}: differs, max rel err {errors[key]:.3g}")
    return problems


def recomputed(stored, seed=0):
    """The stored inputs with the results the current code computes from them."""
    return R.generate(seed, stored)


def test_golden_reproduced(manifest, stored):
    fresh = recomputed(stored, manifest["seed"])
    problems = golden_problems(fresh, stored)
    assert not problems, ("xiref no longer reproduces tests/golden (if intended: python -m xiref.reference "
                          "--refresh tests/golden, see docs/REFERENCE.md):\n  " + "\n  ".join(problems))
    assert R.manifest(fresh, manifest["seed"]) == manifest


@pytest.mark.skipif(not BITWISE, reason="XIREF_GOLDEN_BITWISE=1 only (the CPU that wrote tests/golden)")
def test_golden_bitwise(manifest, stored):
    """Opt-in: results from the stored inputs, and the inputs drawn again from the seed, bit for bit."""
    assert golden_problems(recomputed(stored, manifest["seed"]), stored, bitwise=True) == []
    assert golden_problems(R.generate(manifest["seed"]), stored, bitwise=True) == []


def one_ulp(a):
    """Every entry moved by one ulp, up or down by its own last bit: equal entries (ties) stay equal."""
    a = np.asarray(a, dtype=np.float64)
    up = (a.view(np.uint64) & np.uint64(1)) == 0
    return np.where(up, np.nextafter(a, np.inf), np.nextafter(a, -np.inf))


def test_golden_check_tolerates_inputs_moved_by_one_ulp(stored):
    """What another CPU does to the inputs — every input, parameter, noise and constant (not the 0/1 masks)
    one ulp off, the results recomputed from them — passes the check."""
    moved = {name: {k: (v if k.startswith("mask/") or k not in R.stored_inputs(a) else one_ulp(v))
                    for k, v in a.items()} for name, a in stored.items()}
    fresh = recomputed(moved)
    assert golden_problems(fresh, stored) == []
    changed = [(n, k) for n, a in fresh.items() for k in a if not np.array_equal(a[k], stored[n][k])]
    assert len(changed) > 100 and ("tanh_gaussian_tails", "output/log_pi") in changed


def test_golden_check_catches_a_change_of_1e_6(stored):
    """Negative control: any result key's largest entry moved by 1e-6 of its size fails, and names that key;
    so does a stored input moved by 1e-6 while the stored results are kept."""
    checked = 0
    for name, arrays in stored.items():
        scale = {}
        for key, want in arrays.items():
            scale[gradcheck.kind(key)] = max(scale.get(gradcheck.kind(key), 0.0), float(np.max(np.abs(want))))
        for key, want in arrays.items():
            if key.split("/")[0] not in R.RESULT_PREFIXES or not np.max(np.abs(want)) > gradcheck.FLOOR * scale[
                    gradcheck.kind(key)]:
                continue                                          # zero, or rounding residue (grad/l1/b)
            a = np.array(want)
            flat = a.reshape(-1)
            i = int(np.argmax(np.abs(flat)))
            flat[i] *= 1 + 1e-6
            problems = golden_problems({**stored, name: {**arrays, key: a}}, stored)
            assert problems == [f"{name} {key}: differs, max rel err {1e-6:.3g}"], problems
            checked += 1
    assert checked > 100
    moved = {**stored, "dense": {**stored["dense"], "input/h": stored["dense"]["input/h"] * (1 + 1e-6)}}
    fresh = recomputed(moved)
    fresh["dense"]["input/h"] = stored["dense"]["input/h"]
    assert {p.split(":")[0] for p in golden_problems(fresh, stored)} == {"dense output/u", "dense loss",
                                                                         "dense grad/W"}
    assert golden_problems(stored, stored) == []


def test_refresh_keeps_the_stored_inputs(tmp_path, stored):
    """python -m xiref.reference --refresh DIR recomputes the results from DIR's inputs (kept bit for bit) and
    draws a missing component from the seed."""
    out = tmp_path / "gold"
    out.mkdir()
    for f in os.listdir(GOLDEN):
        (out / f).write_bytes(open(os.path.join(GOLDEN, f), "rb").read())
    os.remove(out / "swish.npz")
    assert R.main(["--refresh", str(out)]) == 0
    seed, again = R.read_dir(str(out))
    assert seed == 0 and golden_problems(again, stored) == []
    for name, arrays in again.items():
        if name != "swish":
            assert golden_problems({name: R.stored_inputs(arrays)}, {name: R.stored_inputs(stored[name])},
                                   bitwise=True) == [], name


# ====================================================================== 2. completeness and conventions
def test_every_listed_component_has_a_golden_file(manifest):
    comps = manifest["components"]
    for name, eq in REQUIRED.items():
        assert name in comps, name
        assert eq in comps[name]["equations"], (name, comps[name]["equations"])
        assert os.path.isfile(os.path.join(GOLDEN, comps[name]["file"])), name
    assert manifest["dtype"] == "float64" and manifest["xiref_version"] and manifest["seed"] == 0
    assert set(os.listdir(GOLDEN)) == {"manifest.json"} | {c["file"] for c in comps.values()}
    assert sum(os.path.getsize(os.path.join(GOLDEN, f)) for f in os.listdir(GOLDEN)) < 1_000_000


def test_files_follow_the_key_convention(manifest, stored):
    allowed = set(R.INPUT_PREFIXES) | {"output", "grad"}
    for name, arrays in stored.items():
        assert manifest["components"][name]["keys"] == {k: list(v.shape) for k, v in arrays.items()}, name
        assert arrays["loss"].shape == (), name
        assert all(a.dtype == np.float64 for a in arrays.values()), name
        assert all(k == "loss" or k.split("/")[0] in allowed for k in arrays), name
        differentiated = {k.split("/", 1)[1]: v.shape for k, v in arrays.items()
                          if k.split("/")[0] in ("input", "param")}
        grads = {k.split("/", 1)[1]: v.shape for k, v in arrays.items()
                 if k.startswith("grad/") and (name, k) not in GRAD_EXCEPTIONS}
        assert grads == differentiated, name
        for k, v in arrays.items():
            if k.startswith("mask/"):
                assert set(np.unique(v)) <= {0.0, 1.0}, (name, k)
    assert stored["gated_layer"]["grad/xi"].shape == stored["gated_layer"]["mask/xi"].shape


def doc_tables():
    """{component: {key: shape string}} from the '### `name`' sections of docs/REFERENCE.md."""
    tables, current = {}, None
    with open(DOC, encoding="utf-8") as f:
        for line in f:
            head = re.match(r"^### `([a-z_]+)`", line)
            if head:
                current = tables.setdefault(head.group(1), {})
                continue
            if line.startswith("## "):
                current = None
            row = re.match(r"^\|\s*`([^`]+)`\s*\|\s*`(\([^`]*\))`\s*\|", line)
            if row and current is not None:
                assert row.group(1) not in current, f"{row.group(1)} listed twice"
                current[row.group(1)] = row.group(2)
    return tables


def test_documented_keys_are_exactly_the_file_keys(stored):
    tables = doc_tables()
    assert set(tables) == set(stored), "docs/REFERENCE.md has a section per component, no more"
    for name, arrays in stored.items():
        assert set(tables[name]) == set(arrays), (name, set(tables[name]) ^ set(arrays))
        for key, a in arrays.items():
            assert tables[name][key] == str(a.shape), (name, key, tables[name][key], a.shape)


# ====================================================================== 3. the command line
def test_cli_writes_the_golden_files(tmp_path, capsys, stored):
    out = tmp_path / "gold"
    assert main(["reference", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out / 'manifest.json'}"
    with open(out / "manifest.json", encoding="utf-8") as f:
        written = json.load(f)
    assert written == json.load(open(os.path.join(GOLDEN, "manifest.json"), encoding="utf-8"))
    for name, entry in written["components"].items():
        with np.load(out / entry["file"], allow_pickle=False) as z:
            assert set(z.files) == set(stored[name])
            assert golden_problems({name: {k: z[k] for k in stored[name]}}, {name: stored[name]}) == []
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["reference", "--out", str(out)]) == 0           # same inputs, same bytes; no temp files left
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    assert main(["reference", "--out", str(tmp_path / "s1"), "--seed", "1"]) == 0
    with np.load(tmp_path / "s1" / "dense.npz") as z:
        assert not np.array_equal(z["input/h"], stored["dense"]["input/h"])


def test_cli_bad_out_is_a_one_line_user_error(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("x")
    assert main(["reference", "--out", str(target)]) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xiref: error:"), err
    assert target.read_text() == "x"


# ====================================================================== 4. gradcheck
@pytest.mark.parametrize("name", [c.name for c in R.COMPONENTS])
def test_compare_passes_xiref_itself(name):
    rep = gradcheck.compare(name, lambda x: R.compute(name, x), GOLDEN, verbose=False)
    assert rep.passed, str(rep)
    assert rep.max_rel_err <= gradcheck.RTOL                       # 0.0 on the CPU that wrote tests/golden


def wrong_tanh_gaussian(x):
    """Negative control: the log σ gradient without its −1 term (∂log π/∂log σ = −1 missing)."""
    res = R.compute("tanh_gaussian", x)
    A = x["noise/eps"].shape[1]
    lam = x["input/out"][:, A:]
    res["grad/out"] = res["grad/out"].copy()
    res["grad/out"][:, A:] -= (-x["cot/log_pi"][:, None]) * 3.5 * (1.0 - np.tanh(lam) ** 2)
    return res


def test_compare_catches_a_wrong_gradient(capsys):
    rep = gradcheck.compare("tanh_gaussian", wrong_tanh_gaussian, GOLDEN)
    assert not rep.passed
    assert [r.key for r in rep.failures()] == ["grad/out"]
    assert rep.worst.key == "grad/out" and rep.worst.worst_index[1] >= 2 and rep.max_rel_err > 1e-3
    printed = capsys.readouterr().out
    assert "tanh_gaussian: FAIL" in printed and "grad/out" in printed and "FAIL" in printed.splitlines()[-1]
    # a rounding-level perturbation passes at 1e-10 and fails at 1e-17
    tiny = lambda x: {k: v * (1 + 1e-13) for k, v in R.compute("dense", x).items()}   # noqa: E731
    assert gradcheck.compare("dense", tiny, GOLDEN, verbose=False).passed
    assert not gradcheck.compare("dense", tiny, GOLDEN, rtol=1e-17, verbose=False).passed


def test_compare_reports_missing_extra_and_shape():
    def partial(x):
        res = R.compute("dense", x)
        del res["grad/b"]
        res["grad/typo"] = res["grad/W"]
        res["grad/h"] = res["grad/h"][:, :2]
        return res
    rep = gradcheck.compare("dense", partial, GOLDEN, verbose=False)
    status = {r.key: r.status for r in rep.rows}
    assert status["grad/b"] == "missing" and status["grad/typo"] == "extra" and status["grad/h"] == "shape"
    assert not rep.passed and rep.max_rel_err == float("inf")
    only = gradcheck.compare("dense", lambda x: {"loss": R.compute("dense", x)["loss"]}, GOLDEN,
                             require_all=False, verbose=False)
    assert only.passed and [r.key for r in only.rows] == ["loss"]
    nan = gradcheck.compare("dense", lambda x: {**R.compute("dense", x), "loss": np.nan}, GOLDEN, verbose=False)
    assert nan.worst.key == "loss" and not nan.passed


def test_load_and_user_errors(tmp_path):
    g = gradcheck.load("dense")                                   # default: the repository's tests/golden
    assert set(g.inputs()) == {"input/h", "param/W", "param/b", "cot/u", "config"}
    assert set(g.expected()) == {"output/u", "loss", "grad/h", "grad/W", "grad/b"}
    assert g.entry["equations"] == ["1"] and gradcheck.components()[0] == "dense"
    from xiref.envs import UserError
    with pytest.raises(UserError, match="python -m xiref reference"):
        gradcheck.load("dense", str(tmp_path))
    with pytest.raises(UserError, match="unknown component"):
        gradcheck.load("nope", GOLDEN)


def test_relative_error_floor():
    want = np.array([1.0, 1e-3, 0.0, 2e-16])
    err = gradcheck.relative_error(want + 1e-15, want)
    assert err[0] == pytest.approx(1e-15, rel=0.1) and err[1] == pytest.approx(1e-12, rel=0.1)
    assert err[2] == pytest.approx(1e-10, rel=0.1) and err[3] == pytest.approx(1e-10, rel=0.1)  # floor 1e-5
    assert np.all(gradcheck.relative_error(np.zeros(3) + 1e-20, np.zeros(3)) == 1e-20)       # all zero: absolute


def test_finite_differences_pass_right_and_catch_wrong():
    rng = np.random.default_rng(0)
    u, Rc = rng.normal(0.0, 2.0, (4, 3)), rng.normal(size=(4, 3))

    def f(v):
        return float(np.sum(L.swish_forward(v) * Rc))
    rep = gradcheck.check_finite_differences(f, lambda v: L.swish_backward(Rc, v), u)
    assert rep.passed and rep.max_rel_err < 1e-7, str(rep)

    def wrong(v):                                                 # drops the u σ (1 − σ) term
        return Rc * L.sigmoid(v)
    assert not gradcheck.check_finite_differences(f, wrong, u).passed
    # dict inputs: dense layer
    x = {"h": rng.normal(size=(3, 2)), "W": rng.normal(size=(2, 4))}
    C = rng.normal(size=(3, 4))
    loss = lambda d: float(np.sum(L.dense_forward(d["h"], d["W"], 0.0) * C))                     # noqa: E731
    grad = lambda d: dict(zip(("h", "W"), L.dense_backward(C, d["h"], d["W"])[:2]))               # noqa: E731
    before = {k: v.copy() for k, v in x.items()}
    assert gradcheck.check_finite_differences(loss, grad, x).passed
    assert all(np.array_equal(x[k], before[k]) for k in x)                                       # x untouched
    bad = lambda d: {"h": grad(d)["h"], "W": 1.01 * grad(d)["W"]}                                 # noqa: E731
    rep = gradcheck.check_finite_differences(loss, bad, x)
    assert not rep.passed and [r.key for r in rep.failures()] == ["W"]


# ====================================================================== 5. the PyTorch example
def load_example():
    spec = importlib.util.spec_from_file_location("validate_torch", os.path.join(ROOT, "examples", "validate_torch.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_torch_example_agrees_to_1e_10(capsys):
    torch = pytest.importorskip("torch")
    mod = load_example()
    threads = torch.get_num_threads()
    try:
        reports, man = mod.validate(torch, GOLDEN, rtol=1e-10)
        assert mod.main(["--golden", GOLDEN]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert [r.component for r in reports] == list(man["components"])
    bad = [str(r) for r in reports if not r.passed or r.max_rel_err > 1e-10]
    assert not bad, "\n".join(bad)
    assert f"{len(reports)}/{len(reports)} components pass" in out
    for name in man["components"]:
        assert re.search(rf"^{name}\s.*pass$", out, re.M), name


def test_torch_example_skips_cleanly_without_torch(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)               # import torch -> ImportError
    assert load_example().main([]) == 0
    assert capsys.readouterr().out.strip() == "validate_torch: torch is not installed; skipped"


# ====================================================================== 6. the numerically delicate cases
def tanh_gaussian_with(log1m_tanh2):
    """An independent tanh-Gaussian (Eq. 9, autograd for the gradient) with a given log(1 − tanh² x)."""
    import autograd
    import autograd.numpy as anp

    def fn(x):
        A = x["noise/eps"].shape[1]

        def parts(out):
            mu, lam = out[:, :A], out[:, A:]
            ls = -5.0 + 3.5 * (anp.tanh(lam) + 1.0)
            xs = mu + anp.exp(ls) * x["noise/eps"]
            log_pi = anp.sum(-0.5 * x["noise/eps"] ** 2 - ls - 0.5 * np.log(2 * np.pi) - log1m_tanh2(xs)
                             - x["const/log_scale"], axis=1)
            return anp.tanh(xs), log_pi

        def loss(out):
            a, log_pi = parts(out)
            return anp.sum(a * x["cot/a"]) + anp.sum(log_pi * x["cot/log_pi"])
        with np.errstate(divide="ignore", invalid="ignore"):
            a, log_pi = parts(x["input/out"])
            return {"output/a": a, "output/log_pi": log_pi, "loss": loss(x["input/out"]),
                    "grad/out": autograd.grad(loss)(x["input/out"])}
    return fn


def stable(xs):
    import autograd.numpy as anp
    return 2.0 * (np.log(2.0) - xs - anp.logaddexp(0.0, -2.0 * xs))


def naive(xs):
    import autograd.numpy as anp
    return anp.log(1.0 - anp.tanh(xs) ** 2)


def thresholded(xs):
    """softplus(z) = z above 20, as torch.nn.functional.softplus."""
    import autograd.numpy as anp
    z = -2.0 * xs
    return 2.0 * (np.log(2.0) - xs - anp.where(z > 20.0, z, anp.logaddexp(0.0, anp.minimum(z, 20.0))))


def test_tanh_gaussian_tails_catch_a_naive_log_jacobian():
    for name in ("tanh_gaussian", "tanh_gaussian_tails"):             # the stable form passes both
        assert gradcheck.compare(name, tanh_gaussian_with(stable), GOLDEN, verbose=False).passed, name
    assert gradcheck.compare("tanh_gaussian", tanh_gaussian_with(naive), GOLDEN, verbose=False).passed
    assert gradcheck.compare("tanh_gaussian", tanh_gaussian_with(thresholded), GOLDEN, verbose=False).passed
    rep = gradcheck.compare("tanh_gaussian_tails", tanh_gaussian_with(naive), GOLDEN, verbose=False)
    assert not rep.passed and {"output/log_pi", "loss"} <= {r.key for r in rep.failures()}, str(rep)
    rep = gradcheck.compare("tanh_gaussian_tails", tanh_gaussian_with(thresholded), GOLDEN, verbose=False)
    assert not rep.passed and "grad/out" in {r.key for r in rep.failures()}, str(rep)


def actor_with(on_tie):
    """Eq. (12) with the min's gradient at q1 == q2 given to critic 1 with weight on_tie (the rest to 2)."""
    def fn(x):
        q1, q2, alpha = x["input/q1"], x["input/q2"], float(x["const/alpha"])
        B = q1.shape[0]
        w1 = np.where(q1 < q2, 1.0, np.where(q1 > q2, 0.0, on_tie))
        return {"output/ell": alpha * x["input/log_pi"] - np.minimum(q1, q2),
                "loss": np.mean(alpha * x["input/log_pi"] - np.minimum(q1, q2)),
                "grad/log_pi": np.full(B, alpha / B), "grad/q1": -w1 / B, "grad/q2": -(1.0 - w1) / B}
    return fn


def test_actor_loss_ties_catch_another_tie_rule():
    """torch.minimum splits the gradient (½, ½) at a tie and `q1 < q2` sends it to critic 2: both pass
    actor_loss (no ties) and fail actor_loss_ties."""
    tie_rows = np.flatnonzero(gradcheck.load("actor_loss_ties").arrays["input/q1"]
                              == gradcheck.load("actor_loss_ties").arrays["input/q2"])
    assert list(tie_rows) == [0, 3, 4]
    for on_tie, ok_on_ties in ((1.0, True), (0.5, False), (0.0, False)):
        assert gradcheck.compare("actor_loss", actor_with(on_tie), GOLDEN, verbose=False).passed
        rep = gradcheck.compare("actor_loss_ties", actor_with(on_tie), GOLDEN, verbose=False)
        assert rep.passed == ok_on_ties, str(rep)
        if not ok_on_ties:
            assert {r.key for r in rep.failures()} == {"grad/q1", "grad/q2"}
    y = gradcheck.load("critic_loss_ties").arrays
    assert np.sum(y["data/q1_next"] == y["data/q2_next"]) == 3 and y["data/d"][2] == 1.0
