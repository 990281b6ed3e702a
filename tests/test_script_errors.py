"""The example scripts end a user error with one line `<script>: error: …` on stderr, exit status 2 and no
traceback (xiref.errors.script_error), as `xiref` itself does — checked in a fresh process, as a user runs them."""
import os
import subprocess
import sys

import pytest

from xiref.errors import script_error

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")

CASES = [   # (script under examples/, arguments, words the one line must hold)
    ("experiments/summarize.py", ["--root", "/nonexistent/xiref-runs"], "no directory /nonexistent/xiref-runs"),
    ("experiments/beta_front.py", ["--root", "{tmp}", "--env", "Toy-v0"], "no finished xinet"),
    ("teacher_student.py", ["--seeds", "0"], "--seeds >= 1"),
    ("teacher_student.py", ["--teacher-units", "9", "--in-dim", "4"], "--teacher-units 9 must be <= --in-dim 4"),
    ("experiments/theta_dynamics.py", ["--betas", "1,x"], "comma-separated numbers"),
    ("experiments/theta_dynamics.py", ["--k-thetas", "-1"], "finite and >= 0"),
    ("experiments/theta_dynamics.py", ["--theta-steps", "0"], "--theta-steps must be positive"),
    ("experiments/theta_dynamics.py", ["--mu-theta", "1"], "0 < --mu-theta < 1"),
    ("experiments/theta_dynamics.py", ["--estimators", "flip,bogus"], "--estimators must be among"),
    ("experiments/theta_dynamics.py", ["--env", "NoSuchEnv-v0", "--out", "{tmp}/t.csv"], "NoSuchEnv-v0"),
    ("experiments/q_level.py", ["{tmp}"], "no readable progress.csv"),
    ("experiments/q_level.py", ["{tmp}", "--tail", "0"], "--tail must lie in (0, 1]"),
    ("benchmarks/bench_estimators.py", ["--draws", "1"], "--draws > 1"),
    ("benchmarks/bench_estimators.py", ["--env", "NoSuchEnv-v0"], "NoSuchEnv-v0"),
]


@pytest.mark.parametrize("script,args,words", CASES, ids=[f"{c[0]}:{' '.join(c[1])}" for c in CASES])
def test_script_user_error_is_one_line_and_exit_2(script, args, words, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    prog = os.path.splitext(os.path.basename(script))[0]
    err = proc.stderr.strip().splitlines()
    err = [line for line in err if "settotalmass" not in line and line.strip()]     # MuJoCo's own warning
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(err) == 1 and err[0].startswith(f"{prog}: error: ") and words in err[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "t.csv")                   # nothing written on a refused run


def test_script_error_helper(capsys):
    with pytest.raises(SystemExit) as exc:
        script_error("tool", ValueError("bad value"))
    assert exc.value.code == 2 and capsys.readouterr().err == "tool: error: bad value\n"
