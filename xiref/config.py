"""A training run's configuration: every flag, its validation, and what a method implies (docs/METHOD.md §8).

Every field of TrainConfig (and of AgentConfig, which it extends) is a `xiref train` flag.
"""
import json
import math
import os
from dataclasses import dataclass, fields

from .agent import AgentConfig, own_knobs
from .envs import UserError
from .gates import ESTIMATORS

METHODS = ("sac", "ofe", "xinet", "ofe-small")
DTYPES = ("float64", "float32")          # float64 the reference dtype, float32 the fast path


@dataclass
class TrainConfig(AgentConfig):
    """A run: environment, method, budget and schedule, plus every AgentConfig field."""
    env: str = "InvertedPendulum-v5"   # gymnasium id (MuJoCo v5 tasks)
    method: str = "xinet"              # sac | ofe | xinet | ofe-small
    steps: int = 30000                 # environment steps
    seed: int = 0                      # seed of env, action space and the agent's generator
    out: str = "runs/default"          # run directory
    batch: int = 256                   # minibatch size (SAC and OFENet)
    buffer_size: int = 1_000_000       # replay capacity
    start_steps: int = 5000            # uniformly random steps before learning starts
    ofe_pretrain_steps: int = 10000    # OFENet updates on the random data before SAC starts
    theta_delay_ofenet: int = 0        # extra steps after pre-training before OFENet's θ moves
    theta_delay_sac: int = 5000        # steps after learning starts before the SAC nets' θ move
    eval_every: int = 5000             # evaluation period in steps
    eval_episodes: int = 5             # episodes per evaluation
    log_every: int = 1000              # progress period in steps
    checkpoint_every: int = 10000      # checkpoint period in steps
    widths_from: str = ""              # ofe-small: XiNet run directory whose final OFENet widths to use
    dtype: str = "float32"             # float32 (fast path, default for runs) or float64 (reference dtype)


def validate(cfg):
    """One clear message per impossible setting."""
    checks = [
        (cfg.method in METHODS, f"unknown method {cfg.method!r}; choose one of {', '.join(METHODS)}"),
        (cfg.steps > 0, f"--steps must be positive, got {cfg.steps}"),
        (cfg.batch > 0, f"--batch must be positive, got {cfg.batch}"),
        (cfg.buffer_size >= cfg.batch, f"--batch {cfg.batch} is larger than --buffer-size {cfg.buffer_size}"),
        (cfg.start_steps >= cfg.batch, f"--start-steps {cfg.start_steps} must be >= --batch {cfg.batch}"),
        (cfg.beta >= 0, f"--beta must be >= 0, got {cfg.beta}"),
        (all(b == -1.0 or b >= 0 for b in own_knobs(cfg, "beta")),
         "--beta-ofenet, --beta-actor and --beta-critic must be >= 0 (or -1: use --beta)"),
        (0 < cfg.eps_xi < 0.5, f"--eps-xi must lie in (0, 0.5), got {cfg.eps_xi}"),
        (all(e == -1.0 or 0 < e < 0.5 for e in own_knobs(cfg, "eps_xi")),
         "--eps-xi-ofenet, --eps-xi-actor and --eps-xi-critic must lie in (0, 0.5) (or -1: use --eps-xi)"),
        (0 < cfg.eta_theta < math.inf, f"--eta-theta must be positive and finite, got {cfg.eta_theta}"),
        (all(e == -1.0 or 0 < e < math.inf for e in own_knobs(cfg, "eta_theta")),
         "--eta-theta-ofenet, --eta-theta-actor and --eta-theta-critic must be positive and finite "
         "(or -1: use --eta-theta)"),
        (0 <= cfg.mu_theta < 1, f"--mu-theta must lie in [0, 1), got {cfg.mu_theta}"),
        (cfg.baseline in ESTIMATORS, f"unknown baseline {cfg.baseline!r} ({', '.join(ESTIMATORS)})"),
        (0 < cfg.gamma <= 1 and 0 < cfg.tau <= 1, "--gamma and --tau must lie in (0, 1]"),
        (min(cfg.lr_actor, cfg.lr_critic, cfg.lr_alpha, cfg.lr_ofenet) > 0, "learning rates must be positive"),
        (cfg.init_alpha > 0, f"--init-alpha must be positive, got {cfg.init_alpha}"),
        (cfg.eval_every > 0 and cfg.eval_episodes > 0 and cfg.log_every > 0 and cfg.checkpoint_every > 0,
         "--eval-every, --eval-episodes, --log-every and --checkpoint-every must be positive"),
        (all(h > 0 for h in cfg.hidden), f"--hidden widths must be positive, got {cfg.hidden}"),
        (cfg.ofe_layers > 0 and cfg.ofe_units > 0, "--ofe-layers and --ofe-units must be positive"),
        (cfg.dtype in DTYPES, f"--dtype must be float64 or float32, got {cfg.dtype}"),
        (cfg.eps_bn > 0, f"--eps-bn must be positive, got {cfg.eps_bn}"),
        (0 <= cfg.bn_momentum < 1, f"--bn-momentum must lie in [0, 1), got {cfg.bn_momentum}"),
        (0 < cfg.loss_scale_rate <= 1, f"--loss-scale-rate must lie in (0, 1], got {cfg.loss_scale_rate}"),
        (cfg.lam_w >= 0, f"--lam-w must be >= 0, got {cfg.lam_w}"),
        (min(cfg.ofe_pretrain_steps, cfg.theta_delay_ofenet, cfg.theta_delay_sac) >= 0,
         "--ofe-pretrain-steps, --theta-delay-ofenet and --theta-delay-sac must be >= 0"),
        (not cfg.ofe_widths or (len(cfg.ofe_widths) == 2 * cfg.ofe_layers and min(cfg.ofe_widths) >= 0),
         f"--ofe-widths needs 2 × --ofe-layers = {2 * cfg.ofe_layers} widths >= 0, got {cfg.ofe_widths}"),
        (cfg.method != "ofe-small" or cfg.widths_from, "--method ofe-small needs --widths-from RUN_DIR"),
    ]
    for ok, msg in checks:
        if not ok:
            raise UserError(msg)


def resolve_method(cfg):
    """Set the AgentConfig switches that a method implies."""
    cfg.ofenet = cfg.method != "sac"
    cfg.gated = cfg.method == "xinet"
    if cfg.method == "ofe-small":
        cfg.ofe_widths = tuple(widths_from_run(cfg.widths_from, cfg.ofe_layers))
    return cfg


def widths_from_run(run_dir, n_layers):
    """Final OFENet per-layer widths (state block, then action block) of a finished XiNet run."""
    path = os.path.join(run_dir, "summary.json")
    if not os.path.exists(path):
        raise UserError(f"--widths-from {run_dir}: no summary.json (is it a finished run?)")
    try:
        with open(path) as f:
            summary = json.load(f)
    except ValueError:
        raise UserError(f"--widths-from {run_dir}: summary.json is not valid JSON") from None
    if summary.get("method") != "xinet":
        raise UserError(f"--widths-from {run_dir} is a {summary.get('method')!r} run, not an xinet run")
    alive = summary.get("alive_units", {})
    names = [f"ofenet/s{k + 1}" for k in range(n_layers)] + [f"ofenet/a{k + 1}" for k in range(n_layers)]
    if sorted(n for n in alive if n.startswith("ofenet/") and n != "ofenet/head") != sorted(names):
        raise UserError(f"--widths-from {run_dir}: its OFENet does not have {n_layers} layers per block")
    return [int(alive[n]) for n in names]


def config_from_dict(d):
    known = {f.name for f in fields(TrainConfig)}
    d = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known}
    return TrainConfig(**d)
