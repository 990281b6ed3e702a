"""Forward and hand-written backward of any network described by a Wiring (docs/METHOD.md §1, §2).

A network is the ordered list of its LayerSpecs. Each layer concatenates its sources, applies
Eq. (1), optionally BN (Eq. 2'), its activation φ and its gates (Eq. 2 with a sampled mask ξ (B, n), or
Eq. 3 with θ (n,)). A DenseNet block (Eq. 5–6) is nothing more than layers whose input lists grow.

Containers are plain dicts: params[layer] = {'W', 'b'[, 's', 'c']}, stats[layer] = {'mean', 'var'},
gates[layer] = ξ (B, n) or θ (n,) for gated layers. `acts` maps every source name to its (B, w) array.
"""
import numpy as np

from . import layers as L


def init_params(specs, source_widths, rng, dtype=np.float64):
    """Glorot-uniform W (as Keras/OFENet), zero b, BN s = 1, c = 0.

    source_widths: dict name -> width for every source the specs read (free inputs and earlier layers).
    """
    widths = dict(source_widths)
    params, stats = {}, {}
    for spec in specs:
        n_in = sum(widths[s] for s in spec.inputs)
        # Glorot/Xavier uniform limit sqrt(6 / (fan_in + fan_out)), Keras's default initialiser
        limit = np.sqrt(6.0 / max(n_in + spec.n_out, 1))
        p = {"W": rng.uniform(-limit, limit, size=(n_in, spec.n_out)).astype(dtype),
             "b": np.zeros(spec.n_out, dtype=dtype)}
        if spec.bn:
            p["s"] = np.ones(spec.n_out, dtype=dtype)
            p["c"] = np.zeros(spec.n_out, dtype=dtype)
            stats[spec.name] = {"mean": np.zeros(spec.n_out, dtype=dtype),
                                "var": np.ones(spec.n_out, dtype=dtype)}
        params[spec.name] = p
        widths[spec.name] = spec.n_out
    return params, stats


def forward(specs, params, inputs, gates, stats=None, bn_train=False, eps_bn=1e-3, reuse=None):
    """Run the layers `specs` in order.

    inputs: dict source -> (B, w) for every source not produced by `specs`.
    gates:  dict layer -> ξ (B, n) [Eq. 2] or θ (n,) [Eq. 3]; ungated layers are absent.
    bn_train: batch statistics (training) or stats' running averages (inference).
    reuse: the cache of an earlier forward of the same specs, params and inputs under other gates (the
           second mask draw of the 'pair' baseline): a layer that reads only `inputs` computes the same
           h, u, BN(u) and φ whatever the gates — they act after φ (Eq. 2) — so its cache entry is taken over.
    Returns (acts, cache): acts holds inputs and every layer's output y (B, n).
    Pure: no in-place assignment, so autograd differentiates it (tests/test_network.py).
    """
    acts = dict(inputs)
    cache, joined = {}, {}
    for spec in specs:
        if reuse is not None and all(src in inputs for src in spec.inputs):
            c = reuse[spec.name]                                       # mask-independent: as in `reuse`
        else:
            parts = [acts[s] for s in spec.inputs]
            if spec.inputs not in joined:          # critics 1 and 2 read the same sources: join them once
                joined[spec.inputs] = _join(spec.inputs, parts, joined)                          # (B, n_in)
            c = _pre_gate(spec, params[spec.name], joined[spec.inputs], [x.shape[1] for x in parts],
                          stats, bn_train, eps_bn)
        if spec.gated:
            # y = ξ ⊙ φ(u)  (Eq. 2)   or   ȳ = θ ⊙ φ(u)  (Eq. 3)
            y = gates[spec.name] * c["phi"]
        else:
            y = c["phi"]
        acts[spec.name] = y
        cache[spec.name] = c
    return acts, cache


def _join(inputs, parts, joined):
    """[parts] along features. A DenseNet layer reads the sources of the layer before it plus that layer
    (Eq. 5–6): the longest prefix of `inputs` already joined is copied as one block, and only the rest
    appended — the same array as joining every part, with one copy of the prefix instead of one per part."""
    if len(parts) == 1:
        return parts[0]
    for k in range(len(inputs) - 1, 1, -1):
        if inputs[:k] in joined:
            return L.concat_forward([joined[inputs[:k]]] + parts[k:])
    return L.concat_forward(parts)


def _pre_gate(spec, p, h, widths, stats, bn_train, eps_bn):
    """One layer up to its gate, for input h = [sources] (B, n_in): u = h W + b, BN, φ. Returns its cache."""
    # u = h W + b                                              Eq. (1)
    u = L.dense_forward(h, p["W"], p["b"])                            # (B, n)
    c = {"h": h, "u": u, "widths": widths}
    if spec.bn:
        if bn_train:
            v, mu, var, xhat, inv_std = L.batchnorm_forward_train(u, p["s"], p["c"], eps_bn)
            c.update(mu=mu, var=var)
        else:
            st = stats[spec.name]
            v, xhat, inv_std = L.batchnorm_forward_eval(u, p["s"], p["c"], st["mean"], st["var"], eps_bn)
        c.update(xhat=xhat, inv_std=inv_std)
    else:
        v = u
    c["v"], c["phi"] = v, L.ACTIVATIONS[spec.act][0](v)             # φ(BN(u)) (B, n)
    return c


def backward(specs, params, gates, cache, d_acts, bn_train=False, param_grads=True, input_grads=True,
             gate_grads=True):
    """Hand-written reverse pass of `forward`.

    d_acts: dict source -> dL/d(acts[source]) (B, w) for the outputs the loss reads (any layer's or input's).
    param_grads=False skips dW, db (and BN's ds, dc): for chaining through frozen networks (the actor loss
    through the critics) only input gradients are needed. input_grads says which sources not produced by
    `specs` need dL/d source: True all, False none (a network trained on fixed features), or a collection
    of their names (the actor loss needs d/d act, not d/d z_o); a layer computes du Wᵀ only for the rows
    of W that multiply sources needing it (the products it skips are exactly the ones nothing reads).
    gate_grads=False leaves d_gates empty (only the first-order estimator, Eq. 25, reads it).
    Returns (grads, d_inputs, d_gates):
      grads[layer]   = {'W', 'b'[, 's', 'c']}
      d_inputs[src]  = dL/d input (B, w) for the sources that are not produced by `specs`
      d_gates[layer] = dL/dg (B, n): per-example gate derivative, the first-order estimator's raw material
    """
    d = {k: v for k, v in d_acts.items()}
    grads, d_gates = {}, {}
    own = {s.name for s in specs}
    for spec in reversed(specs):
        c, p = cache[spec.name], params[spec.name]
        dy = d.pop(spec.name, None)
        if dy is None:
            dy = np.zeros_like(c["v"])
        if spec.gated:
            if gate_grads:
                d_gates[spec.name] = dy * c["phi"]                     # ∂L/∂ξ_ij = dy_ij φ_ij
            dphi = dy * gates[spec.name]
        else:
            dphi = dy
        dv = L.ACTIVATIONS[spec.act][1](dphi, c["v"])
        g = {}
        if spec.bn:
            bwd = L.batchnorm_backward_train if bn_train else L.batchnorm_backward_eval
            du, g["s"], g["c"] = bwd(dv, p["s"], c["xhat"], c["inv_std"])
        else:
            du = dv
        if param_grads:
            _, g["W"], g["b"] = L.dense_backward(du, c["h"], p["W"], need_dh=False)
            grads[spec.name] = g
        need = [src in own or (input_grads if isinstance(input_grads, bool) else src in input_grads)
                for src in spec.inputs]
        for first, stop, rows in _runs(c["widths"], need):    # each run of adjacent sources that need dL/dh
            dh, _, _ = L.dense_backward(du, None, p["W"], True if all(need) else rows, need_dW=False)
            pieces = [dh] if stop - first == 1 else L.concat_backward(dh, c["widths"][first:stop])
            for src, piece in zip(spec.inputs[first:stop], pieces):
                d[src] = piece if src not in d else d[src] + piece
    d_inputs = {k: v for k, v in d.items() if k not in own}
    return grads, d_inputs, d_gates


def _runs(widths, need):
    """Maximal runs of adjacent sources with need[k]: (first, stop, slice of their columns) each."""
    runs, col = [], 0
    for k, (w, nk) in enumerate(zip(widths, need)):
        if nk and runs and runs[-1][1] == k:
            runs[-1] = (runs[-1][0], k + 1, slice(runs[-1][2].start, col + w))
        elif nk:
            runs.append((k, k + 1, slice(col, col + w)))
        col += w
    return runs


def cache_rows(specs, cache, rows):
    """The part of `cache` that an input-gradient-only backward (param_grads=False, gate_grads=False, gates
    θ (n,)) reads, restricted to the examples `rows`: each layer's v = BN(u) or u (B, n) -> (len(rows), n),
    BN's x̂ likewise, and the per-unit and per-source entries as they are."""
    per_row = ("v", "xhat")
    return {s.name: {k: (a[rows] if k in per_row else a) for k, a in cache[s.name].items()
                     if k in per_row or k in ("inv_std", "widths")} for s in specs}


def update_running_stats(specs, stats, cache, momentum):
    """Fold the batch statistics of a training-mode forward into the running averages (Eq. 2')."""
    for spec in specs:
        if spec.bn and "mu" in cache[spec.name]:
            st = stats[spec.name]
            st["mean"], st["var"] = L.batchnorm_update_running(st["mean"], st["var"], cache[spec.name]["mu"],
                                                               cache[spec.name]["var"], momentum)
