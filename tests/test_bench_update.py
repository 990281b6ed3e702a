"""examples/benchmarks/bench_update.py on tiny networks: it runs for every method, its last line is the JSON record, the
FLOP count of plain SAC equals the count by hand, and pruning shrinks the timed networks."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "benchmarks"))
import bench_update  # noqa: E402

TINY = ["--hidden", "16", "--batch", "32", "--obs-dim", "5", "--act-dim", "2", "--ofe-layers", "2",
        "--ofe-units", "4", "--repeats", "3", "--warmup", "1", "--no-torch", "--gemm-seconds", "0.01"]
KEYS = {"method", "dtype", "us_per_update", "flops_per_update", "gflops", "gemm_peak_gflops",
        "torch_us_per_update", "prune_fraction", "gemm_floor_us"}


def run(capsys, *flags):
    bench_update.main(list(TINY) + list(flags))
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("method", ["sac", "ofe", "xinet"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_runs_and_reports(capsys, method, dtype):
    res = run(capsys, "--method", method, "--dtype", dtype)
    assert KEYS <= set(res)
    assert res["method"] == method and res["dtype"] == dtype and res["torch_us_per_update"] is None
    assert res["us_per_update"] > 0 and res["flops_per_update"] > 0 and res["gemm_peak_gflops"] > 0


def test_sac_flops_by_hand(capsys):
    """One SAC update: target (actor + 2 target critics), 2 critic steps, actor step through both critics,
    α's actor forward. Fa, Fc: one forward of actor / critic. In the actor step each example's gradient goes
    back through the one critic its min picked (B rows in all), the first layer's dh only for 'act'."""
    B, O, A, H = 32, 5, 2, 16
    Fa = 2 * B * (O * H + H * H + H * 2 * A)
    Fc = 2 * B * ((O + A) * H + H * H + H)
    critics = 2 * (Fc + Fc + 2 * B * (H * H + H))                     # forward, dW, dh of layers 2-3
    routed = 2 * B * (A * H + H * H + H)                               # critics' dh, each row through one
    actor = Fa + 2 * Fc + routed + Fa + 2 * B * (H * H + H * 2 * A)     # critics: forward and dh only
    assert run(capsys, "--method", "sac")["flops_per_update"] == (Fa + 2 * Fc) + critics + actor + Fa


def test_prune_fraction_removes_units(capsys):
    full = run(capsys, "--method", "xinet")
    half = run(capsys, "--method", "xinet", "--prune-fraction", "0.5")
    assert full["units_removed"] == 0 and half["units_removed"] > 0
    assert half["params"] < full["params"] and half["flops_per_update"] < full["flops_per_update"]


def test_the_default_estimator_is_timed_on_request(capsys):
    assert run(capsys, "--method", "xinet")["baseline"] == "pair"          # what the PyTorch twin mirrors
    assert run(capsys, "--method", "xinet", "--baseline", "flip")["baseline"] == "flip"


def test_bad_arguments_exit_cleanly():
    no_torch = [f for f in TINY if f != "--no-torch"]
    for flags in (["--prune-fraction", "0.5", "--method", "sac"], ["--prune-fraction", "1.5"],
                  ["--method", "xinet", "--baseline", "muprop"]):        # the torch twin mirrors pair and flip
        with pytest.raises(SystemExit) as exc:
            bench_update.main((no_torch if "--baseline" in flags else list(TINY)) + flags)
        assert exc.value.code == 2


@pytest.mark.parametrize("method, baseline", [("sac", "pair"), ("ofe", "pair"), ("xinet", "pair"), ("xinet", "flip")])
def test_torch_comparison_runs_when_torch_is_installed(capsys, method, baseline):
    pytest.importorskip("torch")
    flags = [f for f in TINY if f != "--no-torch"]
    bench_update.main(flags + ["--method", method, "--dtype", "float32", "--baseline", baseline] +
                      (["--prune-fraction", "0.25"] if method == "xinet" else []))
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["torch_us_per_update"] > 0


def test_bench_suite_targets_from_results():
    """examples/benchmarks/bench_suite.py: the ratios and the prune-drop verdict follow from the results."""
    import bench_suite

    def r(us, torch=None, gemm=0.6):
        return {"us_per_update": us, "torch_us_per_update": torch, "gemm_fraction": gemm}
    res = {"sac_f32_default_malloc": r(7.5), "sac_f32": r(6.0, 10.0), "sac_f64_vs_torch_f32": r(9.0, 10.0),
           "ofe_f32": r(20.0), "xinet_f32": r(100.0, 125.0), "xinet_f32_prune0.0": r(100.0),
           "xinet_f32_prune0.25": r(80.0), "xinet_f32_prune0.5": r(60.0), "xinet_f32_prune0.75": r(40.0)}
    t = bench_suite.targets(res)
    assert (t["sac_f32_over_torch_f32"], t["sac_f64_over_torch_f32"], t["xinet_f32_over_torch_f32"]) == (0.6, 0.9, 0.8)
    assert t["ofe_f32_over_torch_f32"] is None and t["sac_f32_gemm_fraction"] == 0.6
    assert t["sac_f32_default_malloc_over_kept"] == 1.25
    assert t["xinet_time_drop_at_prune_fraction"] == {"0.25": 0.2, "0.5": 0.4, "0.75": 0.6}
    assert t["prune_drop_target_met"]                       # 0.2 ≥ 0.8·0.25, 0.4 ≥ 0.8·0.5, 0.6 ≥ 0.8·0.75
    res["xinet_f32_prune0.5"] = r(61.0)                     # 0.39 < 0.4: missed
    assert not bench_suite.targets(res)["prune_drop_target_met"]
    res["xinet_f32_prune0.5"], res["xinet_f32"] = r(60.0), r(80.0, 125.0)   # drops are against prune0.0's time
    assert bench_suite.targets(res)["prune_drop_target_met"]


def test_time_interleaved_alternates_blocks():
    """Calls alternate in blocks (a a b b a b for 3 repeats in blocks of 2), each function timed `repeats` times."""
    calls = []
    res = bench_update.time_interleaved([lambda: calls.append("a"), lambda: calls.append("b")], 3, 1, 2)
    assert calls == ["a", "b", "a", "a", "b", "b", "a", "b"]
    assert [len(wall) for wall, _, _ in res] == [3, 3] and [len(cpu) for _, cpu, _ in res] == [3, 3]


@pytest.mark.parametrize("method", ["sac", "xinet"])
def test_products_account_for_every_flop(method):
    """count_flops' product list (what gemm_floor_us times) holds exactly the counted FLOPs: 2·m·k·n each."""
    import numpy as np
    args = bench_update.argparse.Namespace(method=method, obs_dim=5, act_dim=2, hidden=16, batch=32, ofe_layers=2,
                                           ofe_units=4, seed=0, baseline="pair")
    agent = bench_update.make_agent(args, np.float64)
    rng = np.random.default_rng(0)
    batch = bench_update.make_batches(args, np.float64, rng, count=1)[0]
    with bench_update.count_flops() as (total, products):
        bench_update.xiref_update(agent, batch, rng)

    def flops(kind, left, right):
        m, k = (left[1], left[0]) if kind == "hTdu" else left
        return 2 * m * k * (right[0] if kind == "duWT" else right[1])
    assert total[0] > 0 and sum(c * flops(*key) for key, c in products.items()) == total[0]
    assert bench_update.gemm_floor_us(products, np.float64, rng, repeats=2) > 0


def test_bench_estimators_runs_tiny_and_reports_every_estimator(tmp_path, monkeypatch, capsys):
    """examples/benchmarks/bench_estimators.py on 300 transitions and 3 draws: every estimator in every setting, `pair`
    at 1× itself; a median variance of 0 (too few draws at θ = 1 − ε to see a unit switch off) gives no ratio
    rather than a division by zero; the JSON line is also written to --out."""
    import bench_estimators
    from xiref.gates import ESTIMATORS
    out = tmp_path / "be.json"
    monkeypatch.setattr(sys, "argv", ["bench_estimators.py", "--transitions", "300", "--fit-steps", "5", "--draws",
                                      "3", "--batch", "32", "--out", str(out)])
    bench_estimators.main()
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert json.loads(out.read_text()) == result
    for setting in result["settings"].values():
        assert set(setting) == set(ESTIMATORS)
        assert setting["pair"]["vs_pair"] in (1.0, None)
        assert all(r["vs_pair"] is None or r["vs_pair"] > 0 for r in setting.values())
