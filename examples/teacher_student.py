"""Teacher–student width recovery: the first proof that the XiNet machinery finds the true width.

A teacher MLP with k ReLU hidden units (plus Gaussian label noise) generates a regression stream. A
student with N ≫ k gated ReLU units is trained with XiNet: pathwise Adam on W (Eq. 20, 31), the
score-function θ-gradient with the default baseline (Eq. 22–23), the cost-matched price κ = β L̄ / C(𝟙)
(Eq. 18–19) and projected averaged SGD on θ (Eq. 32); units reaching θ = 0 are physically removed (§7).
The same student without gates is the reference.

    python examples/teacher_student.py                  # 5 seeds, about 1 minute on 2 cores
    python examples/teacher_student.py --seeds 1 --steps 5000

Prints progress, then one JSON line: teacher_units, initial_units, final_units, student_mse,
ungated_mse, teacher_noise_mse (medians over seeds) and the per-seed values.
"""
import argparse
import json
import time
from dataclasses import asdict, dataclass

import numpy as np

from xiref import network as N
from xiref import wiring as W
from xiref import xinet
from xiref.adam import adam_init, adam_step
from xiref.errors import script_error
from xiref.prune import keep_last_units, prune_zero_units, theta_step


@dataclass
class Config:
    """Teacher–student experiment (defaults: docs/METHOD.md §7 Choices)."""
    in_dim: int = 8              # input dimension d
    teacher_units: int = 6       # k, hidden ReLU units of the teacher
    student_units: int = 64      # N, gated hidden units of the student
    noise_std: float = 0.1       # label noise σ; the teacher's own test MSE is σ²
    steps: int = 20000           # training steps (fresh batch each step)
    batch: int = 64              # examples per step
    lr: float = 3e-3             # Adam learning rate for W
    beta: float = 30.0           # β, the one regularisation knob (Eq. 19); measured in docs/METHOD.md
    eta_theta: float = 0.05      # η_θ (Eq. 32)
    mu_theta: float = 0.99       # μ_θ momentum of the θ-gradient average (Eq. 32)
    k_theta: float = 0.0         # evidence threshold of the θ-step in standard errors (Eq. 37); 0: plain step (32)
    eps_xi: float = 0.01         # sampling floor ε_ξ (Eq. 4)
    baseline: str = "pair"       # score-function baseline (Eq. 23)
    warmup: int = 2000           # W-only steps before θ starts moving
    lam_w: float = 0.0           # λ_w slab-prior weight decay (Eq. 16)
    test_size: int = 20000       # held-out examples for the test MSE


def make_teacher(cfg, rng):
    """Teacher x (B, d) -> ReLU(x A) c, scaled to unit output variance.

    An identifiable teacher: A has orthonormal columns (k <= d) and c = ±1, so every one of the k units
    carries the same share of the signal and none can be imitated by the others — "the true width" is
    then unambiguous. (With Gaussian A and c some teacher units contribute so little variance that
    dropping them is the cost-optimal answer, and the experiment would no longer test width recovery.)
    """
    if cfg.teacher_units > cfg.in_dim:
        script_error("teacher_student", f"--teacher-units {cfg.teacher_units} must be <= --in-dim {cfg.in_dim}")
    q, _ = np.linalg.qr(rng.normal(size=(cfg.in_dim, cfg.in_dim)))
    A = q[:, :cfg.teacher_units]                                    # (d, k) orthonormal columns
    c = rng.choice([-1.0, 1.0], size=cfg.teacher_units)            # (k,)
    x = rng.normal(size=(20000, cfg.in_dim))
    scale = 1.0 / np.std(np.maximum(x @ A, 0.0) @ c)
    return lambda x: (np.maximum(x @ A, 0.0) @ c)[:, None] * scale


def draw(teacher, cfg, rng, n):
    x = rng.normal(size=(n, cfg.in_dim))
    return x, teacher(x) + cfg.noise_std * rng.normal(size=(n, 1))


def squared_error(y):
    """Per-example loss ℓ_i = (ŷ_i − y_i)² and d[(1/B) Σ ℓ_i]/dŷ."""
    def loss_fn(acts):
        r = acts["net/out"] - y                                      # (B, 1)
        return r[:, 0] ** 2, {"net/out": 2.0 * r / r.shape[0]}
    return loss_fn


def train(cfg, seed, gated, log_every=5000):
    """Train one student; returns (test_mse, alive_units)."""
    rng = np.random.default_rng(seed)
    teacher = make_teacher(cfg, np.random.default_rng(10_000 + seed))
    wiring = W.Wiring(free=(("x", cfg.in_dim),), layers=tuple(W.mlp("net", ("x",), (cfg.student_units,), 1, gated=gated)))
    params, stats = N.init_params(wiring.layers, wiring.free_widths, rng)
    opt = adam_init(params, cfg.lr)
    theta = W.ones_theta(wiring)
    m_theta = {k: np.zeros_like(v) for k, v in theta.items()}
    v_theta = {k: np.zeros_like(v) for k, v in theta.items()}
    cost_initial = W.cost(wiring, theta)
    loss_scale = None
    for step in range(1, cfg.steps + 1):
        x, y = draw(teacher, cfg, rng, cfg.batch)
        if gated:
            mean_loss, grads, g_theta, _ = xinet.gated_gradients(wiring.layers, params, {"x": x}, theta, squared_error(y),
                                                                  rng, cfg.baseline, cfg.eps_xi)
            loss_scale = xinet.update_loss_scale(loss_scale, mean_loss)
            kappa = xinet.price(cfg.beta, loss_scale, cost_initial)
            grads, g_theta = xinet.add_regulariser(wiring, "net", theta, params, grads, g_theta, kappa, cfg.lam_w)
            adam_step(params, grads, opt)
            if step > cfg.warmup:
                for spec in wiring.layers:
                    if spec.gated:
                        name = spec.name
                        new, m_theta[name], v_theta[name] = theta_step(
                            theta[name], m_theta[name], v_theta[name], step - cfg.warmup, g_theta[name],
                            loss_scale, cfg.eta_theta, cfg.mu_theta, cfg.k_theta)
                        theta[name] = keep_last_units(new, theta[name], spec.min_units, cfg.eps_xi)
                prune_zero_units(wiring, theta, [params, opt.m, opt.v], [m_theta, v_theta])
        else:
            acts, cache = N.forward(wiring.layers, params, {"x": x}, {})
            _, d_acts = squared_error(y)(acts)
            grads, _, _ = N.backward(wiring.layers, params, {}, cache, d_acts)
            adam_step(params, grads, opt)
        if log_every and step % log_every == 0:
            alive = len(theta["net/h1"]) if gated else cfg.student_units
            print(f"  seed {seed} {'xinet ' if gated else 'ungated'} step {step:6d}  alive {alive:3d}  "
                  f"theta in (0,1): {int(np.sum((theta['net/h1'] > 0) & (theta['net/h1'] < 1))) if gated else 0}",
                  flush=True)
    x, y = draw(teacher, cfg, np.random.default_rng(20_000 + seed), cfg.test_size)
    acts, _ = N.forward(wiring.layers, params, {"x": x}, xinet.expected_gates(wiring.layers, theta) if gated else {})
    mse = float(np.mean((acts["net/out"] - y) ** 2))
    return mse, (len(theta["net/h1"]) if gated else cfg.student_units)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="number of seeds (0..seeds-1)")
    for name, value in asdict(Config()).items():
        ap.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    args = ap.parse_args(argv)
    cfg = Config(**{k: getattr(args, k) for k in asdict(Config())})
    if args.seeds < 1 or cfg.steps < 1 or cfg.beta < 0 or not 0 < cfg.eps_xi < 0.5:
        script_error("teacher_student", "need --seeds >= 1, --steps >= 1, --beta >= 0 and 0 < --eps-xi < 0.5")
    t0 = time.time()
    per_seed = []
    for seed in range(args.seeds):
        mse, alive = train(cfg, seed, gated=True)
        mse_u, _ = train(cfg, seed, gated=False)
        per_seed.append({"seed": seed, "final_units": alive, "student_mse": mse, "ungated_mse": mse_u})
        print(f"seed {seed}: alive {alive}  student mse {mse:.5f}  ungated mse {mse_u:.5f}", flush=True)
    med = lambda k: float(np.median([r[k] for r in per_seed]))  # noqa: E731
    print(json.dumps({"teacher_units": cfg.teacher_units, "initial_units": cfg.student_units,
                      "final_units": med("final_units"), "student_mse": med("student_mse"),
                      "ungated_mse": med("ungated_mse"), "teacher_noise_mse": cfg.noise_std ** 2,
                      "seconds": round(time.time() - t0, 2), "beta": cfg.beta, "per_seed": per_seed}))


if __name__ == "__main__":
    main()
