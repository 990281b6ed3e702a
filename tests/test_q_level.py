"""examples/experiments/q_level.py: the critics' value level against the rewards collected, from progress.csv."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "experiments"))
import q_level  # noqa: E402


def write_run(path, rows, method="xinet"):
    path.mkdir()
    lines = ["step,episodes,train_return,actor_loss"] + [",".join(map(str, r)) for r in rows]
    (path / "progress.csv").write_text("\n".join(lines) + "\n")
    (path / "config.json").write_text(json.dumps({"method": method}))


def test_horizon_is_the_value_over_the_reward_per_step(tmp_path, capsys):
    # ten rows; the last two (tail 0.2) are 400 steps and 2 episodes apart (length 200), returns 590 and 610
    # (3 per step), actor losses −290 and −310 (Q 300): a horizon of 100 steps
    rows = [(100 * k, k // 2, 10.0, -1.0) for k in range(1, 9)] + [(1000, 5, 590.0, -290.0), (1400, 7, 610.0, -310.0)]
    write_run(tmp_path / "a", rows)
    # rows with no actor loss yet (before learning starts) are not counted
    write_run(tmp_path / "b", [(100, 0, "", ""), (200, 1, 5.0, -5.0), (300, 2, 5.0, -5.0)], method="ofe")
    assert q_level.main([str(tmp_path / "a"), str(tmp_path / "b"), "--tail", "0.2"]) == 0
    a, b = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (a["rows"], a["episode_length"], a["q"], a["reward_per_step"]) == (2, 200.0, 300.0, 3.0)
    assert a["horizon"] == pytest.approx(100.0) and a["method"] == "xinet"
    assert (b["rows"], b["episode_length"], b["horizon"], b["method"]) == (2, 100.0, 100.0, "ofe")


def test_rows_that_finish_no_episode_are_refused(tmp_path, capsys):
    write_run(tmp_path / "a", [(100, 1, 5.0, -5.0), (200, 1, 5.0, -5.0)])
    with pytest.raises(SystemExit) as exc:
        q_level.main([str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "finish no episode" in err
