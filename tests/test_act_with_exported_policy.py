"""examples/act_with_exported_policy.py on a tiny finished xinet run: export, reload, act, and one-line errors."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
import act_with_exported_policy as example  # noqa: E402


def test_exports_a_run_then_acts_the_same_from_the_file(xinet_dir, tmp_path, capsys):
    out = str(tmp_path / "policy.npz")
    assert example.main([str(xinet_dir), "--out", out, "--episodes", "2", "--seed", "5"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert os.path.exists(out) and record["env"] == "InvertedPendulum-v5" and len(record["returns"]) == 2
    assert all(np.isfinite(record["returns"])) and record["params"] > 0
    # the exported file alone gives the same episodes: nothing of the run directory is read any more
    assert example.run_episodes(out, 2, 5) == record["returns"]
    meta, params, widths = example.describe(out)
    assert params == record["params"] and set(widths) >= {"actor/h1", "actor/h2", "actor/out"}
    assert not os.path.exists(os.path.join(str(xinet_dir), "policy.npz"))       # --out was honoured


def test_a_run_without_checkpoint_or_a_foreign_file_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert example.main([str(tmp_path / "empty"), "--out", str(tmp_path / "p.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("act_with_exported_policy: error:") and len(err.strip().splitlines()) == 1
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    assert example.main([str(tmp_path / "foreign.npz")]) == 2
    assert "not an xiref export" in capsys.readouterr().err
