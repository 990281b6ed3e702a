import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope="session")
def xinet_dir(tmp_path_factory):
    """A tiny finished xinet run with a checkpoint at step 400, shared read-only by the tests of the
    checkpoint diagnostics (examples/experiments/gate_bias.py, ofenet_drift.py, theta_walk.py): trained once
    per test run."""
    from test_train import QUICK, quiet, tiny_config
    from xiref import train as T
    out = tmp_path_factory.mktemp("tiny-xinet")
    T.train(tiny_config(out, method="xinet", **{**QUICK, "steps": 400, "checkpoint_every": 400}), echo=quiet)
    return out
