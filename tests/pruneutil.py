"""Independent bookkeeping for the pruning tests (tests/test_prune.py, tests/test_xinet_agent.py): which rows
and columns of every layer's arrays survive removing the units with θ = 0, and a check that a container
shrank to exactly those."""
import numpy as np


def kept_index_maps(wiring, theta):
    """For every layer: (rows of its original W, columns) that survive pruning the units with θ = 0
    (rows follow the concatenation order of its sources)."""
    free = wiring.free_widths
    cols = {s.name: (np.flatnonzero(theta[s.name] > 0) if s.gated else np.arange(s.n_out)) for s in wiring.layers}
    maps = {}
    for s in wiring.layers:
        rows, offset = [], 0
        for src in s.inputs:
            width = free[src] if src in free else len(theta[src]) if src in theta else wiring.layer(src).n_out
            rows.append(offset + (np.arange(width) if src in free else cols[src]))
            offset += width
        maps[s.name] = (np.concatenate(rows), cols[s.name])
    return maps


def check_container_shrunk(name, before, after, maps):
    """Every array of `after` is its `before` restricted to the kept rows/columns, bit for bit."""
    assert set(before) == set(after), name
    for layer, arrays in before.items():
        rows, cols = maps[layer]
        assert set(arrays) == set(after[layer]), (name, layer)
        for k, a in arrays.items():
            want = a[np.ix_(rows, cols)] if a.ndim == 2 else a[cols]
            got = after[layer][k]
            assert got.shape == want.shape, (name, layer, k, got.shape, want.shape)
            assert np.array_equal(got, want), (name, layer, k)
