"""Signal of every θ-gradient estimator on a fitted OFENet, where pruning decides (docs/METHOD.md §5, Eq. 22–36).

Case: an OFENet of the default shape (6 × 40 per block, BN, swish; xiref.agent) on real transitions of a
MuJoCo task (uniformly random actions, as the first steps of every run), fitted for `--fit-steps` auxiliary-loss
updates (Eq. 8) with θ = 1, then held fixed. For each θ setting
  * theta=1, eps=0.001 and theta=1, eps=0.01: every θ_j = 1, masks from θ̃ = 1 − ε_ξ (where every run starts),
  * theta=0.5, eps=0.001: every θ_j = 0.5,
each estimator of xiref.gates.ESTIMATORS gives `--draws` estimates ĝ_θ (480,) through xinet.gated_gradients on
fresh batches of 256 transitions (the same batches for every estimator), in training-mode BN as OFENet trains.
Calls of the estimators are interleaved so that machine noise affects them alike.

  var             = per-unit sample variance of ĝ_j over the draws; reported as the median over units
  sec             = median wall time of one gated_gradients call (all its passes, W-gradients included)
  var×sec         = median over units of var_j × sec: the variance at a fixed compute budget (lower is better)
  snr             = median over units of |ḡ_j| / std_j, ḡ the inverse-variance-weighted mean of all estimators'
                    means (every estimator is unbiased for its estimand; they differ by O(1/B) under BN, §5)
  vs_pair         = pair's var×sec / this estimator's var×sec
The last line printed is one JSON object with every number and "best" (lowest var×sec at θ = 1, ε_ξ = 0.001).
"""
import argparse
import json
import os
import tempfile
import time

import numpy as np

from xiref import agent as AG
from xiref import envs as E
from xiref import gates as G
from xiref import ofenet as OF
from xiref import xinet as X
from xiref.allocator import keep_freed_memory
from xiref.errors import UserError, script_error

SETTINGS = (("theta=1,eps=0.001", 1.0, 0.001), ("theta=1,eps=0.01", 1.0, 0.01), ("theta=0.5,eps=0.001", 0.5, 0.001))


def transitions(env_id, n, seed):
    """n transitions (o, a, r, o′, d) under uniformly random actions."""
    env, scale, bias = E.make_env(env_id, seed)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    data = []
    for _ in range(n):
        a = rng.uniform(-1.0, 1.0, scale.shape)                       # tanh space [−1, 1]^A
        nxt, r, term, trunc, _ = env.step(scale * a + bias)
        data.append((obs, a, r, nxt, float(term)))
        obs = env.reset()[0] if term or trunc else nxt
    return [np.array(x, dtype=np.float64) for x in zip(*data)]


def fitted_agent(data, steps, batch, seed):
    obs_dim, act_dim = data[0].shape[1], data[1].shape[1]
    cfg = AG.AgentConfig(ofenet=True, gated=True, target_dim=OF.target_dim(ARGS.env, obs_dim), baseline="none")
    rng = np.random.default_rng(seed)
    agent = AG.Agent(cfg, obs_dim, act_dim, np.zeros(act_dim), rng)
    for _ in range(steps):
        idx = rng.integers(0, len(data[0]), batch)
        agent.update_ofenet([x[idx] for x in data], rng, update_theta=False)
    return agent


def measure(agent, data, theta_value, eps_xi, draws, batch, seed):
    specs = agent.specs("ofenet")
    theta = {s.name: np.full_like(agent.theta[s.name], theta_value) for s in specs if s.gated}
    batch_rng, mask_rngs = np.random.default_rng(seed), {b: np.random.default_rng([seed, k])
                                                         for k, b in enumerate(G.ESTIMATORS)}
    est, secs = {b: [] for b in G.ESTIMATORS}, {b: [] for b in G.ESTIMATORS}
    for _ in range(draws):
        idx = batch_rng.integers(0, len(data[0]), batch)
        obs, act, _, obs_next, _ = [x[idx] for x in data]
        for b in G.ESTIMATORS:
            t0 = time.perf_counter()
            _, _, g, _ = X.gated_gradients(specs, agent.params, {"obs": obs, "act": act}, theta,
                                           OF.aux_loss_fn(obs_next), mask_rngs[b], b, eps_xi, agent.stats,
                                           bn_train=True, eps_bn=agent.cfg.eps_bn)
            secs[b].append(time.perf_counter() - t0)
            est[b].append(np.concatenate([g[s.name] for s in specs if s.gated]))
    est = {b: np.array(v) for b, v in est.items()}
    var = {b: np.var(v, axis=0, ddof=1) for b, v in est.items()}
    w = {b: 1.0 / np.maximum(v, 1e-300) for b, v in var.items()}
    pooled = sum(w[b] * est[b].mean(axis=0) for b in est) / sum(w.values())
    out = {}
    for b in G.ESTIMATORS:
        sec = float(np.median(secs[b]))
        with np.errstate(divide="ignore", invalid="ignore"):     # a unit no draw switched off: variance 0, SNR inf
            snr = np.abs(pooled) / np.sqrt(var[b])
        out[b] = {"var": float(np.median(var[b])), "sec": sec, "var_x_sec": float(np.median(var[b] * sec)),
                  "snr": float(np.median(snr))}
    ref = out["pair"]["var_x_sec"]
    for b in G.ESTIMATORS:       # None: a median variance of 0 on either side, too few draws to see units switch off
        out[b]["vs_pair"] = ref / out[b]["var_x_sec"] if min(ref, out[b]["var_x_sec"]) > 0 else None
    return out


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="HalfCheetah-v5", help="MuJoCo task whose transitions OFENet fits")
    ap.add_argument("--transitions", type=int, default=20000, help="random-action transitions collected")
    ap.add_argument("--fit-steps", type=int, default=3000, help="auxiliary-loss updates before measuring")
    ap.add_argument("--draws", type=int, default=400, help="estimates per estimator and θ setting")
    ap.add_argument("--batch", type=int, default=256, help="minibatch size")
    ap.add_argument("--seed", type=int, default=0, help="seed of env, fit and masks")
    ap.add_argument("--out", default="", help="also write the JSON here (temporary file, then rename)")
    ARGS = ap.parse_args()
    if min(ARGS.transitions, ARGS.fit_steps + 1, ARGS.draws - 1, ARGS.batch) <= 0:
        script_error("bench_estimators", "--transitions, --draws > 1 and --batch must be positive")
    keep_freed_memory()
    t0 = time.time()
    try:
        data = transitions(ARGS.env, ARGS.transitions, ARGS.seed)
    except UserError as exc:
        script_error("bench_estimators", exc)
    agent = fitted_agent(data, ARGS.fit_steps, ARGS.batch, ARGS.seed)
    print(f"fitted OFENet 6×40 on {ARGS.transitions} {ARGS.env} transitions, {ARGS.fit_steps} updates "
          f"({time.time() - t0:.0f} s)", flush=True)
    result = {"env": ARGS.env, "transitions": ARGS.transitions, "fit_steps": ARGS.fit_steps, "draws": ARGS.draws,
              "batch": ARGS.batch, "seed": ARGS.seed, "settings": {}}
    print(f"{'setting':<21}{'estimator':<12}{'median var':>12}{'ms/est':>8}{'var×sec':>11}{'snr':>8}{'vs pair':>9}")
    for name, value, eps in SETTINGS:
        res = measure(agent, data, value, eps, ARGS.draws, ARGS.batch, ARGS.seed + 1)
        result["settings"][name] = res
        for b, r in res.items():
            print(f"{name:<21}{b:<12}{r['var']:>12.3g}{1e3 * r['sec']:>8.1f}{r['var_x_sec']:>11.3g}"
                  f"{r['snr']:>8.3f}{'–' if r['vs_pair'] is None else format(r['vs_pair'], '.2f'):>9}", flush=True)
    first = result["settings"][SETTINGS[0][0]]
    result["best"] = min(first, key=lambda b: first[b]["var_x_sec"])
    line = json.dumps(result)
    if ARGS.out:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(ARGS.out)) or ".", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(line + "\n")
        os.replace(tmp, ARGS.out)
    print(line)


if __name__ == "__main__":
    main()
