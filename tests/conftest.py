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
    # β = 10: a price at which some units are still at θ = 1 at step 400, where θ and θ̃ (Eq. 40) differ
    T.train(tiny_config(out, method="xinet", **{**QUICK, "steps": 400, "checkpoint_every": 400, "beta": 10.0}),
            echo=quiet)
    return out
