"""The first proof that the machinery finds the true width: examples/teacher_student.py with its
defaults (5 seeds) must end with k <= n <= 2k alive units (median) and a student test MSE within 10 % of
the ungated student's (median)."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
import teacher_student  # noqa: E402


@pytest.fixture(scope="module")
def result():
    import io
    from contextlib import redirect_stdout
    buf = io.StringIO()
    with redirect_stdout(buf):
        teacher_student.main([])
    return json.loads(buf.getvalue().strip().splitlines()[-1])


def test_width_recovered(result):
    k, n = result["teacher_units"], result["final_units"]
    assert result["initial_units"] == 64
    assert k <= n <= 2 * k, result


def test_accuracy_kept(result):
    assert result["student_mse"] <= 1.1 * result["ungated_mse"], result
    assert len(result["per_seed"]) == 5


def test_bad_arguments_exit_cleanly(capsys):
    with pytest.raises(SystemExit) as exc:
        teacher_student.main(["--beta", "-1"])
    assert exc.value.code == 2 and capsys.readouterr().err.startswith("teacher_student: error: ")
