"""examples/experiments/theta_dynamics.py: the removal-ordering measure, and a tiny run end to end (rows, resume,
the θ-step scale, files of an older layout)."""
import csv
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "experiments"))
import theta_dynamics as TD  # noqa: E402


def test_ordering_counts_pairs_of_a_removed_and_a_kept_unit():
    worth = np.array([0.1, 0.2, 0.3, 0.4])
    assert TD.ordering(worth, np.array([True, True, False, False])) == 1.0          # the least worth went
    assert TD.ordering(worth, np.array([False, False, True, True])) == 0.0          # the most worth went
    assert TD.ordering(worth, np.array([True, False, True, False])) == 0.75         # 3 of 4 pairs in order
    assert TD.ordering(np.ones(3), np.array([True, False, False])) == 0.5           # ties count one half
    assert np.isnan(TD.ordering(worth, np.zeros(4, dtype=bool)))                    # nothing removed


TINY = ["--env", "InvertedPendulum-v5", "--transitions", "300", "--heldout", "100", "--fit-steps", "3",
        "--theta-steps", "4", "--betas", "0,1e6", "--k-thetas", "3", "--estimators", "flip", "--batch", "32"]


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tiny_run_rows_resume_and_scale(tmp_path, capsys):
    out = str(tmp_path / "td.csv")
    TD.main(TINY + ["--out", out])
    first = rows(out)
    assert [(r["beta"], r["theta_scale"]) for r in first] == [("0.0", "none"), ("1000000.0", "none")]
    free, priced = first
    # no price: every unit stays; an enormous price removes all of OFENet's units
    assert free["units_alive"] == free["units_start"] == "480" and priced["units_alive"] == "0"
    assert np.isfinite(float(free["aux_loss_end"])) and float(free["seconds"]) >= 0
    TD.main(TINY + ["--out", out])                                    # every configuration done: nothing added
    assert rows(out) == first
    TD.main(TINY + ["--out", out, "--theta-scale", "rms", "--betas", "1e6"])
    assert [r["theta_scale"] for r in rows(out)] == ["none", "none", "rms"]
    assert not os.path.exists(out + ".tmp")


def test_rows_of_an_older_file_read_as_the_plain_unscaled_step(tmp_path):
    """A file written before k_θ and the scale existed: its rows are the plain step (32), unscaled."""
    old = tmp_path / "old.csv"
    fields = [f for f in TD.FIELDS if f not in ("k_theta", "theta_scale")]
    with open(old, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerow({k: "1" for k in fields})
    TD.write_rows(str(old), {k: "2" for k in TD.FIELDS})
    got = rows(old)
    assert (got[0]["k_theta"], got[0]["theta_scale"]) == ("0.0", "none") and got[1]["theta_scale"] == "2"


@pytest.mark.parametrize("bad", [["--eta-theta", "0"], ["--eps-xi", "0.5"], ["--betas", "nan"]])
def test_bad_settings_are_refused_before_any_work(bad, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        TD.main(TINY + ["--out", str(tmp_path / "td.csv")] + bad)
    assert exc.value.code == 2 and capsys.readouterr().err.startswith("theta_dynamics: error: ")
    assert not os.path.exists(tmp_path / "td.csv")
