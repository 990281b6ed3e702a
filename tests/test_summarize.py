"""examples/experiments/summarize.py on synthetic run directories: the claim verdicts on both sides of the 50 % / 95 %
thresholds and of xinet = ofe-small, "not yet measured" when a method has no finished seed, the warnings, the
table numbers, the alive-unit curves, and the files (summary.md and the PNGs) a run of the script writes."""
import csv
import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "experiments"))
import claims  # noqa: E402
import summarize  # noqa: E402
from xiref.train import read_csv  # noqa: E402

LAYERS = ("s1", "s2", "a1", "a2")


def summary(method, final_return, params=1000, ofenet_params=0, ofenet_initial=None, steps=1000, seed=0):
    """A summary.json dict as xiref/train.py writes it (only the fields summarize.py reads)."""
    s = {"env": "Toy-v0", "method": method, "steps": steps, "seed": seed, "final_return": final_return,
         "params": params, "ofenet_params": ofenet_params, "macs": float(params - 100),
         "steps_per_second": 10.0 + seed, "xiref_commit": "abc1234"}
    if ofenet_initial is not None:
        s["ofenet_params_initial"] = ofenet_initial
    return s


def finished(**methods):
    """{method: [summaries]} from method=[(final_return, ofenet_params), …] (xinet starts at 1000)."""
    out = {}
    for key, runs in methods.items():
        method = key.replace("_", "-")
        out[method] = [summary(method, r, params=5000 + o, ofenet_params=o, seed=k,
                               ofenet_initial=1000 if method == "xinet" else None)
                       for k, (r, o) in enumerate(runs)]
    return out


# ------------------------------------------------------------------ claim 1
@pytest.mark.parametrize("xi_ofenet, xi_return, verdict", [
    (490, 960.0, "met"),          # 51 % removed, 96 % of the return
    (500, 950.0, "met"),          # exactly on both thresholds
    (510, 960.0, "not met"),      # 49 % removed
    (490, 940.0, "not met"),      # 94 % of the return
    (900, 500.0, "not met"),      # neither
])
def test_claim1_thresholds(xi_ofenet, xi_return, verdict):
    c = summarize.claim1(finished(ofe=[(1000.0, 1000)], xinet=[(xi_return, xi_ofenet)]))
    assert c["verdict"] == verdict
    assert c["removed"] == pytest.approx(1 - xi_ofenet / 1000)
    assert c["ratio"] == pytest.approx(xi_return / 1000)
    assert f"removed {100 * (1 - xi_ofenet / 1000):.1f} %" in c["numbers"][0]
    assert f"= {xi_return / 10:.1f} %" in c["numbers"][1]
    assert c["flags"] == []


def test_claim1_means_over_seeds():
    # ofe mean 200; xinet seeds 180, 200 → mean 190 = 95 %: met; 170, 200 → 92.5 %: not met
    ofe = [(100.0, 1000), (300.0, 1000)]
    c = summarize.claim1(finished(ofe=ofe, xinet=[(180.0, 400), (200.0, 600)]))
    assert c["verdict"] == "met" and c["ratio"] == pytest.approx(0.95) and c["removed"] == pytest.approx(0.5)
    assert "xinet 190 ± 10 (2 seeds) / ofe 200 ± 100 (2 seeds) = 95.0 %" in c["numbers"][1]
    assert "1000 (xinet at start) → 500 ± 100 (xinet, 2 seeds)" in c["numbers"][0]
    c = summarize.claim1(finished(ofe=ofe, xinet=[(170.0, 400), (200.0, 600)]))
    assert c["verdict"] == "not met" and c["ratio"] == pytest.approx(0.925)


def test_claim1_reference_from_ofe_without_initial():
    """Summaries without ofenet_params_initial: the removal is measured against the ofe OFENet."""
    fin = finished(ofe=[(100.0, 2000)], xinet=[(100.0, 900)])
    del fin["xinet"][0]["ofenet_params_initial"]
    c = summarize.claim1(fin)
    assert c["removed"] == pytest.approx(0.55) and c["verdict"] == "met"
    assert "2000 (ofe)" in c["numbers"][0]


@pytest.mark.parametrize("methods, missing", [
    (dict(ofe=[(100.0, 1000)]), "xinet"),
    (dict(xinet=[(100.0, 100)]), "ofe"),
    (dict(sac=[(100.0, 0)]), "ofe, xinet"),
    (dict(ofe=[(None, 1000)], xinet=[(100.0, 100)]), "ofe"),        # summary without any evaluation
])
def test_claim1_not_measured(methods, missing):
    c = summarize.claim1(finished(**methods))
    assert c["verdict"] == f"not yet measured (missing: {missing})"
    assert c["ratio"] is None


def test_claim1_removal_reported_while_ofe_missing():
    c = summarize.claim1(finished(xinet=[(100.0, 100)]))
    assert c["removed"] == pytest.approx(0.9) and "removed 90.0 %" in c["numbers"][0]


def test_claim1_nonpositive_ofe_return_not_measured():
    c = summarize.claim1(finished(ofe=[(-5.0, 1000)], xinet=[(10.0, 100)]))
    assert c["verdict"].startswith("not yet measured (ofe mean final return ≤ 0")


def test_claim1_flags():
    fin = finished(ofe=[(100.0, 1200)], xinet=[(100.0, 100)])
    fin["xinet"][0]["steps"] = 500
    c = summarize.claim1(fin)
    assert c["verdict"] == "met"
    assert "steps differ between the runs compared: ofe 1000, xinet 500" in c["flags"]
    assert "OFENet sizes differ: xinet started with 1000, ofe has 1200 parameters" in c["flags"]


# ------------------------------------------------------------------ claim 2
@pytest.mark.parametrize("xi, small, verdict", [
    ([300.0, 100.0], [150.0, 250.0], "met"),        # equal means (200 = 200)
    ([301.0, 100.0], [150.0, 250.0], "met"),
    ([299.0, 100.0], [150.0, 250.0], "not met"),
])
def test_claim2(xi, small, verdict):
    c = summarize.claim2(finished(xinet=[(r, 100) for r in xi], ofe_small=[(r, 100) for r in small]))
    assert c["verdict"] == verdict
    assert c["difference"] == pytest.approx(np.mean(xi) - np.mean(small))
    assert (f"xinet {np.mean(xi):.0f} ± {np.std(xi):.0f} (2 seeds) vs ofe-small 200 ± 50 (2 seeds)"
            in c["numbers"][0])


def test_margin_standard_error_and_resolution_flag():
    """The standard error is Welch's √(s_a²/n_a + k² s_b²/n_b) (ddof = 1); a margin of ≥ 2 of them is resolved."""
    a, b = [10.0, 12.0, 14.0], [1.0, 5.0]
    assert claims.margin_se(a, b) == pytest.approx(np.sqrt(4.0 / 3 + 8.0 / 2))
    assert claims.margin_se(a, b, 0.95) == pytest.approx(np.sqrt(4.0 / 3 + 0.95 ** 2 * 8.0 / 2))
    assert claims.margin_se(a, [3.0]) is None and claims.margin_se([3.0], b) is None
    # claim 2: 12 − 3 = +9 against SE √(4/3 + 4/3) = 1.6: resolved, no warning; against a wide ofe-small spread
    # (−10, 3, 16: SE √(4/3 + 169/3) = 7.7) a warning
    c = summarize.claim2(finished(xinet=[(r, 100) for r in a], ofe_small=[(r, 100) for r in (1.0, 3.0, 5.0)]))
    assert c["verdict"] == "met" and c["flags"] == [] and "difference +9, standard error 2" in c["numbers"][0]
    c = summarize.claim2(finished(xinet=[(r, 100) for r in a], ofe_small=[(r, 100) for r in (-10.0, 3.0, 16.0)]))
    assert c["verdict"] == "met" and c["flags"] == [
        "difference +9 is within 2 standard errors (8): these seeds do not resolve its sign; at these spreads ≈ 9 "
        "seeds per side would resolve it"]  # 2²·(4 + 169) / 9² = 8.5 → 9
    # one seed per side: no standard error, no warning, said so
    c = summarize.claim2(finished(xinet=[(12.0, 100)], ofe_small=[(3.0, 100)]))
    assert c["flags"] == [] and "difference +9 (standard error needs ≥ 2 seeds per side)" in c["numbers"][0]
    # claim 1 (50 % removed): ofe 100, 100.2, 99.8 → 0.95·ō = 95; xinet 96, 96.2, 95.8 → margin +1, SE 0.16
    c = summarize.claim1(finished(ofe=[(r, 1000) for r in (100.0, 100.2, 99.8)],
                                  xinet=[(r, 500) for r in (96.0, 96.2, 95.8)]))
    assert c["verdict"] == "met" and c["flags"] == [] and "margin xinet − 0.95·ofe +1, standard error 0" in c[
        "numbers"][2]
    c = summarize.claim1(finished(ofe=[(r, 1000) for r in (50.0, 150.0)], xinet=[(r, 500) for r in (96.0, 96.0)]))
    assert c["verdict"] == "met" and c["flags"] == [
        "margin xinet − 0.95·ofe +1 is within 2 standard errors (48): these seeds do not resolve its sign; at "
        "these spreads ≈ 18050 seeds per side would resolve it"]  # 2²·(0 + 0.95²·5000) / 1²
    # the same returns with 40 % removed: not met by the removal whatever the return does, so no warning
    c = summarize.claim1(finished(ofe=[(r, 1000) for r in (50.0, 150.0)], xinet=[(r, 600) for r in (96.0, 96.0)]))
    assert c["verdict"] == "not met" and c["flags"] == [] and "standard error 48" in c["numbers"][2]


def test_seeds_to_resolve_is_the_first_seed_count_whose_standard_error_the_margin_clears():
    a, b = [10.0, 12.0, 14.0], [-10.0, 3.0, 16.0]                        # sample variances 4 and 169
    for margin, k in ((9.0, 1.0), (3.0, 0.95), (-40.0, 1.0), (0.5, 2.0)):
        n = claims.seeds_to_resolve(a, b, margin, k)
        se = lambda m: np.sqrt((4.0 + k * k * 169.0) / m)              # margin_se with m seeds on each side
        assert abs(margin) >= claims.RESOLVED_SE * se(n) and (n == 2 or abs(margin) < claims.RESOLVED_SE * se(n - 1))
    assert claims.seeds_to_resolve(a, b, 0.0) is None and claims.seeds_to_resolve(a, [3.0], 9.0) is None
    assert claims.seeds_to_resolve(a, b, 1e6) == 2                      # never below two seeds per side


def test_claim2_not_measured_and_steps_flag():
    c = summarize.claim2(finished(xinet=[(100.0, 100)], ofe=[(100.0, 1000)]))
    assert c["verdict"] == "not yet measured (missing: ofe-small)"
    assert c["numbers"] == ["xinet 100 ± 0 (1 seed)"]
    assert summarize.claim2(finished(sac=[(1.0, 0)]))["verdict"] == "not yet measured (missing: xinet, ofe-small)"
    fin = finished(xinet=[(100.0, 100)], ofe_small=[(90.0, 100)])
    fin["ofe-small"][0]["steps"] = 2000
    c = summarize.claim2(fin)
    assert c["verdict"] == "met" and c["flags"] == ["steps differ between the runs compared: xinet 1000, "
                                                     "ofe-small 2000"]


def test_unequal_seed_sets_are_flagged():
    fin = finished(xinet=[(100.0, 100), (50.0, 100), (70.0, 100)], ofe_small=[(90.0, 100)], ofe=[(99.0, 1000)] * 3)
    flag = "seeds differ between the runs compared (a provisional verdict): xinet 0,1,2, ofe-small 0"
    assert summarize.claim2(fin)["flags"] == [flag]
    assert not any("seeds differ" in f for f in summarize.claim1(fin)["flags"])     # ofe and xinet: 0,1,2 each
    fin["ofe"] = fin["ofe"][:2]
    assert "seeds differ between the runs compared (a provisional verdict): ofe 0,1, xinet 0,1,2" in \
        summarize.claim1(fin)["flags"]


def test_overall():
    met, bad = {"verdict": "met"}, {"verdict": "not met"}
    todo = {"verdict": "not yet measured (missing: ofe)"}
    assert summarize.overall({"A": met, "B": met}) == "met"
    assert summarize.overall({"A": met, "B": bad, "C": todo}) == "not met (on B)"
    assert summarize.overall({"A": met, "C": todo}) == "not yet measured (C — missing: ofe)"
    assert summarize.overall({}) == "not yet measured (no runs)"


# ------------------------------------------------------------------ table and curves
def test_table_numbers():
    fin = finished(ofe=[(100.0, 1000), (300.0, 1000)], sac=[(50.0, 0)], xinet=[(90.0, 500), (110.0, 500)])
    fin["ofe"][1]["steps"] = 2000
    fin["xinet"][0]["eta_theta_critic"] = 0.0005
    lines = summarize.table_lines(fin)
    assert lines[2] == "| sac | 1 | 1000 | – | 50 ± 0 | 0 ± 0 | 5000 ± 0 | 4900 ± 0 | 10.0 ± 0.0 | – | abc1234 |"
    assert lines[3] == ("| ofe | 2 | 1000/2000 | – | 200 ± 100 | 1000 ± 0 | 6000 ± 0 | 5900 ± 0 | 10.5 ± 0.5 "
                        "| – | abc1234 |")
    assert lines[4].startswith("| xinet | 2 | 1000 | 0.0005 | 100 ± 10 |")
    fin["xinet"][1]["eta_theta_critic"] = 0.002                  # a row mixing two critics' steps shows both
    assert summarize.table_lines(fin)[4].startswith("| xinet | 2 | 1000 | 0.0005/0.002 | 100 ± 10 |")
    assert len(lines) == 5


def test_critics_eta_theta_from_config():
    assert summarize.critics_eta_theta({"gated": True, "eta_theta": 0.05, "eta_theta_critic": 0.002}) == 0.002
    assert summarize.critics_eta_theta({"gated": True, "eta_theta": 0.05, "eta_theta_critic": -1.0}) == 0.05
    assert summarize.critics_eta_theta({"gated": False, "eta_theta": 0.05, "eta_theta_critic": 0.002}) is None
    assert summarize.critics_eta_theta({}) is None


def test_final_aux_loss_is_the_mean_of_the_last_tenth_of_logged_rows(tmp_path):
    rows = [{"step": t, "aux_loss": "" if t < 5 else 100.0 / t} for t in range(1, 26)]   # 21 logged rows
    with open(tmp_path / "progress.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["step", "aux_loss"])
        w.writeheader()
        w.writerows(rows)
    progress = read_csv(str(tmp_path / "progress.csv"))
    assert summarize.final_aux_loss(progress) == pytest.approx(np.mean([100.0 / 24, 100.0 / 25]))
    (tmp_path / "progress.csv").write_text("step,aux_loss\n1,\n2,\n")                  # sac: never logged
    assert summarize.final_aux_loss(read_csv(str(tmp_path / "progress.csv"))) is None
    fin = {"ofe": [dict(summary("ofe", 1.0), aux_loss_final=a) for a in (0.2, 0.4)]}
    assert summarize.table_lines(fin)[2].endswith("| 0.300 ± 0.100 | abc1234 |")


def test_alive_curves():
    run_a = [{"step": str(t), "alive:ofenet/s1": str(40 - t), "alive:actor/h1": "256"} for t in (1, 2, 3)]
    run_b = [{"step": str(t), "alive:ofenet/s1": str(30 - t), "alive:actor/h1": "256"} for t in (2, 3, 4)]
    curves = summarize.alive_curves([run_a, run_b])
    assert list(curves) == ["s1"]                      # OFENet layers only
    t, m, s = curves["s1"]
    np.testing.assert_array_equal(t, [2, 3])           # steps common to both runs
    np.testing.assert_allclose(m, [33, 32])
    np.testing.assert_allclose(s, [5, 5])
    assert summarize.alive_curves([]) == {}


# ------------------------------------------------------------------ the script on run directories
def write_run(root, env, method, seed, final_return=None, ofenet=0, steps=1000, done=True, variant_of=None,
              widths_from=None, beta=None):
    """progress.csv, config.json and (if done) summary.json of one synthetic run in <env>/<method>/seed<k>; a
    campaign variant names its real method in variant_of; an ofe-small run its source directory in widths_from."""
    d = root / env / method / f"seed{seed}"
    d.mkdir(parents=True)
    method = variant_of or method
    gated = method == "xinet"
    with open(d / "config.json", "w") as f:
        json.dump({"env": env, "method": method, "seed": seed, "steps": steps, "eval_every": steps // 4,
                   "gated": gated, "eta_theta": 0.05, "eta_theta_critic": 0.0005,
                   "widths_from": str(root / env / widths_from / f"seed{seed}") if widths_from else "",
                   **({} if beta is None else {"beta": beta})}, f)
    cols = ["step", "eval_return", "params", "ofenet_params"] + [f"alive:ofenet/{x}" for x in LAYERS if ofenet]
    last = steps if done else steps // 2
    with open(d / "progress.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for t in range(steps // 4, last + 1, steps // 4):
            width = 10 - 5 * gated * t // steps
            w.writerow([t, (final_return or 0) * t / steps, 5000 + ofenet * width // 10, ofenet * width // 10]
                       + [width] * (len(cols) - 4))
    if done:
        with open(d / "summary.json", "w") as f:
            json.dump(dict(summary(method, final_return, params=5000 + (ofenet // 2 if gated else ofenet),
                                   ofenet_params=ofenet // 2 if gated else ofenet, steps=steps, seed=seed),
                           env=env, ofenet_params_initial=ofenet), f)


def test_script_writes_summary_and_figures(tmp_path, capsys):
    for seed, (r_ofe, r_xi, r_small) in enumerate([(1000.0, 990.0, 900.0), (1200.0, 1150.0, 1000.0)]):
        write_run(tmp_path, "Toy-v0", "sac", seed, 800.0)
        write_run(tmp_path, "Toy-v0", "ofe", seed, r_ofe, ofenet=2000)
        write_run(tmp_path, "Toy-v0", "xinet", seed, r_xi, ofenet=2000)       # ends with 1000: 50 % removed
        write_run(tmp_path, "Toy-v0", "ofe-small", seed, r_small, ofenet=1000)
    write_run(tmp_path, "Toy-v0", "ofe", 2, ofenet=2000, done=False)
    (tmp_path / "Toy-v0" / "ofe" / "seed2" / "checkpoint.npz").write_bytes(b"")   # present: a campaign resumes it
    write_run(tmp_path, "Other-v0", "sac", 0, 50.0)
    (tmp_path / "tuning" / "Toy_xinet_seed0").mkdir(parents=True)           # not <env>/<method>/seed<k>
    (tmp_path / "tuning" / "xinet" / "seed0").mkdir(parents=True)           # <dir>/<method>/seed<k>, not an env id
    summarize.main(["--root", str(tmp_path), "--claim-envs", "Toy-v0,Other-v0"])
    text = (tmp_path / "summary.md").read_text()
    assert capsys.readouterr().out.strip() == text.strip()
    toy = text[text.index("## Toy-v0"):]
    assert "## tuning" not in text and "## Other-v0" in text
    assert "| ofe | 2 | 1000 | – | 1100 ± 100 | 2000 ± 0 | 7000 ± 0 |" in toy
    assert "| xinet | 2 | 1000 | 0.0005 | 1070 ± 80 |" in toy               # the critics' θ step, from config.json
    assert "Unfinished: Toy-v0/ofe/seed2 (step 500, resumable)" in toy
    # claim 1: 50 % removed, 1070 / 1100 = 97.3 % → met; claim 2: 1070 ≥ 950 → met
    assert ("**met** — OFENet parameters removed 50.0 % (2000 (xinet at start) → 1000 ± 0 (xinet, 2 seeds)); "
            "final return xinet 1070 ± 80 (2 seeds) / ofe 1100 ± 100 (2 seeds) = 97.3 %") in toy
    assert "**met** — xinet 1070 ± 80 (2 seeds) vs ofe-small 950 ± 50 (2 seeds), difference +120" in toy
    # both margins are within 2 standard errors, √(80²·2/2 + 0.95²·100²·2/2) = 124 and √(80² + 50²) = 94
    assert "margin xinet − 0.95·ofe +25, standard error 124" in toy
    assert [x.strip() for x in toy.splitlines() if "⚠" in x] == [
        "- ⚠ margin xinet − 0.95·ofe +25 is within 2 standard errors (124): these seeds do not resolve its sign; "
        "at these spreads ≈ 198 seeds per side would resolve it",  # 2²·(12800 + 0.95²·20000) / 25² = 197.4
        "- ⚠ difference +120 is within 2 standard errors (94): these seeds do not resolve its sign; at these "
        "spreads ≈ 5 seeds per side would resolve it"]  # 2²·(12800 + 5000) / 120² = 4.9
    other = text[text.index("## Other-v0"):text.index("## Toy-v0")]
    assert "not yet measured (missing: ofe, xinet)" in other
    assert "- **Claim 1** (" in text and "on each env): **not yet measured (Other-v0 — missing: ofe, xinet)**" in text
    for png in ("Toy-v0_curves.png", "Toy-v0_return_vs_params.png", "Toy-v0_alive_units.png",
                "Other-v0_curves.png", "Other-v0_return_vs_params.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"]({png})" in text
    assert not (tmp_path / "Other-v0_alive_units.png").exists()          # no xinet run there
    assert "alive_units" not in other


def test_variants_get_their_own_claim_lines_and_leave_the_overall_verdicts_alone(tmp_path):
    for seed, (r_xi, r_var, r_vsmall) in enumerate([(500.0, 980.0, 900.0), (700.0, 1100.0, 1300.0)]):
        write_run(tmp_path, "Toy-v0", "ofe", seed, 1100.0 - 100 * seed, ofenet=2000)
        write_run(tmp_path, "Toy-v0", "xinet", seed, r_xi, ofenet=2000)
        write_run(tmp_path, "Toy-v0", "ofe-small", seed, 800.0, ofenet=1000, widths_from="xinet")
        write_run(tmp_path, "Toy-v0", "xinet-v", seed, r_var, ofenet=2000, variant_of="xinet")
        write_run(tmp_path, "Toy-v0", "ofe-small-v", seed, r_vsmall, ofenet=1000, variant_of="ofe-small",
                  widths_from="xinet-v")
    write_run(tmp_path, "Toy-v0", "sac-v", 0, 10.0, variant_of="sac")                 # not a XiNet variant
    text = summarize.summarize(str(tmp_path), ("Toy-v0",))
    head, variants = text.split("### Claims for the XiNet variants")
    assert "**Claim 1** (" in head and "on each env): **not met (on Toy-v0)**" in head     # xinet 600 / 1050
    assert "**Claim 2** (" in head and "on each env): **not met (on Toy-v0)**" in head     # 600 < 800
    lines = [x for x in variants.splitlines() if x.startswith("- ")]
    assert len(lines) == 2 and "sac-v" not in variants
    # 50 % removed, 1040 / 1050 = 99.0 % kept; 1040 < 1100
    assert lines[0].startswith("- **Claim 1** (`xinet-v` in place of `xinet`): **met** — OFENet parameters "
                               "removed 50.0 % (2000 (xinet-v at start) → 1000 ± 0 (xinet-v, 2 seeds))")
    assert "final return xinet-v 1040 ± 60 (2 seeds) / ofe 1050 ± 50 (2 seeds) = 99.0 %" in lines[0]
    assert lines[1] == ("- **Claim 2** (`xinet-v` vs `ofe-small-v`): **not met** — xinet-v 1040 ± 60 (2 seeds) "
                        "vs ofe-small-v 1100 ± 200 (2 seeds), difference -60, standard error 209")


def test_a_method_has_one_colour_in_the_curves_and_the_return_vs_params_figures(tmp_path, monkeypatch):
    import matplotlib.axes
    for seed in (0, 1):
        for method in ("sac", "xinet", "xinet-ofe-beta0.1", "sac-v"):       # no ofe: colours must not skip it
            write_run(tmp_path, "Toy-v0", method, seed, 100.0 + seed, ofenet=2000 * (method != "sac"),
                      variant_of="sac" if method == "sac-v" else None)    # sac-v sorts between sac and xinet
    seen = {"plot": {}, "scatter": {}}

    def spy(kind):
        real = getattr(matplotlib.axes.Axes, kind)

        def record(self, *args, label=None, color=None, **kw):
            if label:                                       # "Toy-v0 sac (n=2)" (curves), "sac (n=2)" (points)
                seen[kind].setdefault(label.split(" (n=")[0].split(" ")[-1], set()).add(color)
            return real(self, *args, label=label, color=color, **kw)
        return record
    for kind in seen:
        monkeypatch.setattr(matplotlib.axes.Axes, kind, spy(kind))
    summarize.main(["--root", str(tmp_path), "--claim-envs", "Toy-v0"])
    # both curve figures (the base methods' and every variant's) and the points: one colour per method
    methods = {"sac", "xinet", "xinet-ofe-beta0.1", "sac-v"}
    curves = {m: c for m, c in seen["plot"].items() if m in methods}
    assert set(curves) == methods and curves == seen["scatter"]
    assert all(len(c) == 1 for c in curves.values()) and len(set.union(*curves.values())) == 4


def test_the_curves_figure_holds_the_four_methods_and_a_second_one_every_variant(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(summarize, "plot_runs", lambda runs, out, colours=None: drawn.update(
        {os.path.basename(out): sorted(os.path.relpath(r, tmp_path) for r in runs)}))
    for method in ("sac", "ofe", "xinet", "ofe-small", "xinet-v"):
        write_run(tmp_path, "Toy-v0", method, 0, 100.0, ofenet=2000 * (method != "sac"),
                  **({"variant_of": "xinet"} if method == "xinet-v" else {}))
    for method in ("sac", "xinet"):
        write_run(tmp_path, "Plain-v0", method, 0, 100.0, ofenet=2000 * (method != "sac"))
    text = summarize.summarize(str(tmp_path), ("Toy-v0",))
    assert drawn["Toy-v0_curves.png"] == sorted(f"Toy-v0/{m}/seed0" for m in ("sac", "ofe", "xinet", "ofe-small"))
    assert drawn["Toy-v0_all_curves.png"] == sorted(drawn["Toy-v0_curves.png"] + ["Toy-v0/xinet-v/seed0"])
    assert drawn["Plain-v0_curves.png"] == ["Plain-v0/sac/seed0", "Plain-v0/xinet/seed0"]
    assert "Plain-v0_all_curves.png" not in drawn                          # no variant: no second figure
    assert "](Toy-v0_all_curves.png)" in text and "](Plain-v0_all_curves.png)" not in text


def test_group_colours_are_distinct_up_to_twenty_labels():
    from xiref.plot import group_colours
    for n in (3, 10, 11, 20):
        colours = group_colours(f"m{i}" for i in range(n))
        assert len(set(colours.values())) == n, n
    # keep_order: the first labels (summarize's four base methods) take the first, darkest tab20 shades
    from matplotlib import colormaps
    from matplotlib.colors import to_hex
    colours = group_colours(["z", "a"] + [f"m{i}" for i in range(13)], keep_order=True)
    assert [colours["z"], colours["a"]] == [to_hex(colormaps["tab20"](0)), to_hex(colormaps["tab20"](2))]


def test_script_not_met_and_unfinished_only(tmp_path):
    write_run(tmp_path, "Toy-v0", "ofe", 0, 1000.0, ofenet=2000)
    write_run(tmp_path, "Toy-v0", "xinet", 0, 940.0, ofenet=2000)
    write_run(tmp_path, "Only-v0", "xinet", 0, ofenet=2000, done=False)
    summarize.main(["--root", str(tmp_path), "--claim-envs", "Toy-v0"])
    text = (tmp_path / "summary.md").read_text()
    assert "**Claim 1** (XiNet removes ≥ 50 % of OFENet's parameters and keeps ≥ 95 % of the `ofe` mean final " \
           "return): **not met** —" in text and "= 94.0 %" in text
    assert "on each env): **not met (on Toy-v0)**" in text
    only = text[text.index("## Only-v0"):text.index("## Toy-v0")]
    assert "Unfinished: Only-v0/xinet/seed0 (step 500, no checkpoint here: restarts from 0)" in only
    assert "![" not in only
    assert not list(tmp_path.glob("Only-v0_*.png"))                       # no finished run, no figure


def test_missing_root_exits(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        summarize.main(["--root", str(tmp_path / "nowhere")])
    assert exc.value.code == 2 and capsys.readouterr().err.startswith("summarize: error: no directory")


def test_claim_envs_without_runs_keep_the_verdict_open(tmp_path):
    """An env the claims are about but with no runs at all is named, so "met" elsewhere is not the verdict."""
    write_run(tmp_path, "Toy-v0", "ofe", 0, 1000.0, ofenet=2000)
    write_run(tmp_path, "Toy-v0", "xinet", 0, 990.0, ofenet=2000)                 # 2000 -> 1000: 50 % removed
    text = summarize.summarize(str(tmp_path), ("Toy-v0", "Absent-v0"))
    assert "## Claims over Toy-v0, Absent-v0" in text
    assert "on each env): **not yet measured (Absent-v0 — no runs)**" in text
    assert "on each env): **met**" in summarize.summarize(str(tmp_path), ("Toy-v0",))


def _front(tmp_path, cells):
    """Two finished seeds of every {cell: (β recorded in config.json, OFENet parameters)}, plus `ofe` and `sac`."""
    for cell, (beta, ofenet) in cells.items():
        for seed in (0, 1):
            write_run(tmp_path, "Toy-v0", cell, seed, 900.0 + 10 * seed, ofenet=ofenet, variant_of="xinet", beta=beta)
    write_run(tmp_path, "Toy-v0", "ofe", 0, 1000.0, ofenet=8000)
    write_run(tmp_path, "Toy-v0", "sac", 0, 700.0)


def test_beta_front_draws_every_beta_cell_and_checks_monotony(tmp_path, capsys):
    import beta_front
    _front(tmp_path, {"xinet-tilde-beta0": (0.0, 8000), "xinet-tilde-beta1": (1.0, 6000), "xinet": (20.0, 4000),
                      "xinet-tilde-beta30": (30.0, 2000), "xinet-ofe-eta0.01": (20.0, 100), "xinet-beta3": (3.0, 50)})
    out = tmp_path / "front"
    assert beta_front.main(["--root", str(tmp_path), "--env", "Toy-v0", "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(r["beta"], r["seed"]) for r in result["rows"]] == [(0.0, 0), (0.0, 1), (1.0, 0), (1.0, 1), (20.0, 0),
                                                                 (20.0, 1), (30.0, 0), (30.0, 1)]
    # xinet-ofe-eta0.01: not a β cell; xinet-beta3: a β cell of another family
    assert result["monotone"] and result["references"] == {"ofe": 1000.0, "sac": 700.0}
    with open(tmp_path / "front.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 8
    assert (tmp_path / "front.png").stat().st_size > 0


def test_beta_front_default_cell_and_family_name_another_front(tmp_path, capsys):
    import beta_front
    _front(tmp_path, {"xinet-beta0": (0.0, 8000), "xinet-theta": (10.0, 4000), "xinet": (20.0, 100),
                      "xinet-tilde-beta1": (1.0, 50)})
    assert beta_front.main(["--root", str(tmp_path), "--env", "Toy-v0", "--out", str(tmp_path / "f"),
                            "--default-cell", "xinet-theta", "--family", "xinet"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert [(r["cell"], r["beta"]) for r in rows] == [("xinet-beta0", 0.0)] * 2 + [("xinet-theta", 10.0)] * 2


def test_beta_front_places_a_run_at_the_beta_it_recorded_not_at_its_cell_name(tmp_path, capsys):
    """A cell's name picks the front; the β a run's config.json records places it (here a `-beta30` cell whose runs
    record 25: only the recorded value can give 25)."""
    import beta_front
    _front(tmp_path, {"xinet-tilde-beta30": (25.0, 2000), "xinet": (20.0, 4000)})
    assert beta_front.main(["--root", str(tmp_path), "--env", "Toy-v0", "--out", str(tmp_path / "f")]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert [(r["cell"], r["beta"]) for r in rows] == [("xinet", 20.0)] * 2 + [("xinet-tilde-beta30", 25.0)] * 2


def test_beta_front_a_run_that_records_no_beta_is_one_line(tmp_path, capsys):
    import beta_front
    write_run(tmp_path, "Toy-v0", "xinet", 0, 900.0, ofenet=4000)
    with pytest.raises(SystemExit) as exc:
        beta_front.main(["--root", str(tmp_path), "--env", "Toy-v0", "--out", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("beta_front: error: ") and "records no beta" in err
    assert not (tmp_path / "f.csv").exists()


def test_beta_front_negative_control_a_higher_price_keeping_more_is_not_monotone(tmp_path, capsys):
    import beta_front
    _front(tmp_path, {"xinet-tilde-beta0": (0.0, 2000), "xinet-tilde-beta10": (10.0, 6000)})
    assert beta_front.main(["--root", str(tmp_path), "--env", "Toy-v0", "--out", str(tmp_path / "f")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["monotone"] is False


def test_beta_front_without_runs_is_one_line(tmp_path, capsys):
    import beta_front
    with pytest.raises(SystemExit) as exc:
        beta_front.main(["--root", str(tmp_path), "--env", "Toy-v0"])
    assert exc.value.code == 2 and capsys.readouterr().err.startswith("beta_front: error: no finished xinet")


def test_a_relabelled_ofe_small_cell_is_paired_with_its_xinet_cell(tmp_path, monkeypatch):
    """Runs moved to another cell when a default changed keep the widths_from path of where they were made (an
    `xinet` directory); campaign.WIDTHS_FROM, not that path, names the cell whose widths an ofe-small cell took."""
    monkeypatch.setitem(summarize.WIDTHS_FROM, "ofe-small-old", "xinet-old")
    for seed in (0, 1):
        write_run(tmp_path, "Toy-v0", "ofe", seed, 1000.0, ofenet=2000)
        write_run(tmp_path, "Toy-v0", "xinet-old", seed, 900.0 + seed, ofenet=2000, variant_of="xinet")
        write_run(tmp_path, "Toy-v0", "ofe-small-old", seed, 800.0, ofenet=1000, variant_of="ofe-small",
                  widths_from="xinet")
    variants = summarize.summarize(str(tmp_path), ("Toy-v0",)).split("### Claims for the XiNet variants")[1]
    assert "- **Claim 2** (`xinet-old` vs `ofe-small-old`): **met**" in variants
    monkeypatch.delitem(summarize.WIDTHS_FROM, "ofe-small-old")                        # negative control: unpaired
    variants = summarize.summarize(str(tmp_path), ("Toy-v0",)).split("### Claims for the XiNet variants")[1]
    assert "`xinet-old` vs `ofe-small-old`" not in variants
