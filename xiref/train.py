"""The training loop of docs/METHOD.md §8: act, store, update OFENet, update SAC, θ-steps, prune, log.

Files in the run directory: config.json, progress.csv (deterministic columns only, so two runs with the
same seed give identical files), timing.csv (wall clock), checkpoint.npz (atomic), summary.json.
"""
import csv
import io
import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields

import numpy as np

from . import __version__
from . import checkpoint as ckpt
from . import ofenet as OF
from .agent import Agent, AgentConfig
from .buffer import ReplayBuffer
from .envs import UserError, env_dims, make_env
from .metrics import alive_units, progress_row, sizes
from .runstate import restore_run, save_run

METHODS = ("sac", "ofe", "xinet", "ofe-small")
RUN_FILES = ("checkpoint.npz", "checkpoint.npz.tmp", "progress.csv", "timing.csv", "summary.json", "curves.png")


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
    dtype: str = "float64"             # float64 (reference) or float32 (fast path)


def validate(cfg):
    """One clear message per impossible setting."""
    checks = [
        (cfg.method in METHODS, f"unknown method {cfg.method!r}; choose one of {', '.join(METHODS)}"),
        (cfg.steps > 0, f"--steps must be positive, got {cfg.steps}"),
        (cfg.batch > 0, f"--batch must be positive, got {cfg.batch}"),
        (cfg.buffer_size >= cfg.batch, f"--batch {cfg.batch} is larger than --buffer-size {cfg.buffer_size}"),
        (cfg.start_steps >= cfg.batch, f"--start-steps {cfg.start_steps} must be >= --batch {cfg.batch}"),
        (cfg.beta >= 0, f"--beta must be >= 0, got {cfg.beta}"),
        (all(b == -1.0 or b >= 0 for b in (cfg.beta_ofenet, cfg.beta_actor, cfg.beta_critic)),
         "--beta-ofenet, --beta-actor and --beta-critic must be >= 0 (or -1: use --beta)"),
        (0 < cfg.eps_xi < 0.5, f"--eps-xi must lie in (0, 0.5), got {cfg.eps_xi}"),
        (cfg.eta_theta > 0, f"--eta-theta must be positive, got {cfg.eta_theta}"),
        (0 <= cfg.mu_theta < 1, f"--mu-theta must lie in [0, 1), got {cfg.mu_theta}"),
        (cfg.baseline in ("none", "loo", "pair"), f"unknown baseline {cfg.baseline!r} (none, loo, pair)"),
        (0 < cfg.gamma <= 1 and 0 < cfg.tau <= 1, "--gamma and --tau must lie in (0, 1]"),
        (min(cfg.lr_actor, cfg.lr_critic, cfg.lr_alpha, cfg.lr_ofenet) > 0, "learning rates must be positive"),
        (cfg.init_alpha > 0, f"--init-alpha must be positive, got {cfg.init_alpha}"),
        (cfg.eval_every > 0 and cfg.eval_episodes > 0 and cfg.log_every > 0 and cfg.checkpoint_every > 0,
         "--eval-every, --eval-episodes, --log-every and --checkpoint-every must be positive"),
        (all(h > 0 for h in cfg.hidden), f"--hidden widths must be positive, got {cfg.hidden}"),
        (cfg.ofe_layers > 0 and cfg.ofe_units > 0, "--ofe-layers and --ofe-units must be positive"),
        (cfg.dtype in ("float64", "float32"), f"--dtype must be float64 or float32, got {cfg.dtype}"),
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
    with open(path) as f:
        summary = json.load(f)
    if summary.get("method") != "xinet":
        raise UserError(f"--widths-from {run_dir} is a {summary.get('method')!r} run, not an xinet run")
    alive = summary["alive_units"]
    names = [f"ofenet/s{k + 1}" for k in range(n_layers)] + [f"ofenet/a{k + 1}" for k in range(n_layers)]
    if not all(n in alive for n in names):
        raise UserError(f"--widths-from {run_dir}: its OFENet does not have {n_layers} layers per block")
    return [int(alive[n]) for n in names]


class Run:
    """Everything a training run holds; `train()` drives it."""

    def __init__(self, cfg):
        validate(cfg)
        self.cfg = resolve_method(cfg)
        self.dtype = np.dtype(cfg.dtype)
        self.env, self.scale, self.bias = make_env(cfg.env, cfg.seed)
        self.eval_env, _, _ = make_env(cfg.env, cfg.seed + 1)
        self.obs_dim, self.act_dim = env_dims(self.env)
        if cfg.ofenet and not cfg.target_dim:
            cfg.target_dim = OF.target_dim(cfg.env, self.obs_dim)
        self.rng = np.random.default_rng(cfg.seed)
        self.agent = Agent(cfg, self.obs_dim, self.act_dim, np.log(self.scale), self.rng, self.dtype)
        self.buffer = ReplayBuffer(self.obs_dim, self.act_dim, cfg.buffer_size, self.dtype)
        self.step, self.episode, self.ep_return, self.ep_len = 0, 0, 0.0, 0
        self.obs = self._reset()
        self.recent_returns, self.evals, self.last_metrics = [], [], {}
        self.params_initial = None

    # ---------------------------------------------------------------- environment
    def episode_seed(self):
        """Episode k of seed s starts from reset(seed = s·1_000_003 + k): reproducible without env RNG state."""
        return (self.cfg.seed * 1_000_003 + self.episode) % 2**31

    def _reset(self):
        obs, _ = self.env.reset(seed=self.episode_seed())
        return self._check_obs(obs, "reset")

    def _check_obs(self, obs, where):
        obs = np.asarray(obs, dtype=np.float64)
        if not np.all(np.isfinite(obs)):
            raise UserError(f"{self.cfg.env} returned a non-finite observation at step {self.step} ({where})")
        return obs

    def env_step(self):
        cfg = self.cfg
        if self.step < cfg.start_steps:
            a = self.rng.uniform(-1.0, 1.0, self.act_dim)             # random phase, agent's generator
        else:
            a = self.agent.act(self.obs[None], self.rng)[0]
        obs_next, r, terminated, truncated, _ = self.env.step(self.scale * a + self.bias)
        obs_next = self._check_obs(obs_next, "step")
        if not np.isfinite(r):
            raise UserError(f"{cfg.env} returned a non-finite reward at step {self.step}")
        # d = 1 only on termination; truncation bootstraps (§0)
        self.buffer.add(self.obs, a, r, obs_next, float(terminated))
        self.ep_return += float(r)
        self.ep_len += 1
        self.step += 1
        if terminated or truncated:
            self.recent_returns.append(self.ep_return)
            self.episode += 1
            self.ep_return, self.ep_len = 0.0, 0
            self.obs = self._reset()
        else:
            self.obs = obs_next

    def evaluate(self):
        """n episodes with tanh(μ) and expected gates on the separate eval env (§8)."""
        returns = []
        for k in range(self.cfg.eval_episodes):
            # seeded by (run seed, step, episode): an extra evaluation never shifts later ones
            obs, _ = self.eval_env.reset(seed=(self.cfg.seed * 7_919 + 100_000 + self.step * 100 + k) % 2**31)
            done, total = False, 0.0
            while not done:
                a = self.agent.act(np.asarray(obs, dtype=np.float64)[None], self.rng, deterministic=True)[0]
                obs, r, terminated, truncated, _ = self.eval_env.step(self.scale * a + self.bias)
                total += float(r)
                done = terminated or truncated
            returns.append(total)
        return float(np.mean(returns))

    # ---------------------------------------------------------------- updates
    def updates(self):
        cfg, agent = self.cfg, self.agent
        if self.step < cfg.start_steps:
            return
        if cfg.ofenet and self.step == cfg.start_steps:
            for _ in range(cfg.ofe_pretrain_steps):                    # OFENet pre-training (§2)
                agent.update_ofenet(self.buffer.sample(self.rng, cfg.batch), self.rng)
        m = {}
        if cfg.ofenet:
            theta_on = self.step >= cfg.start_steps + cfg.theta_delay_ofenet
            m.update(agent.update_ofenet(self.buffer.sample(self.rng, cfg.batch), self.rng, theta_on))
        theta_on = self.step >= cfg.start_steps + cfg.theta_delay_sac
        m.update(agent.update_sac(self.buffer.sample(self.rng, cfg.batch), self.rng, theta_on))
        if cfg.gated:
            agent.prune()
        bad = [k for k, v in m.items() if not math.isfinite(v)]
        if bad:
            raise FloatingPointError(f"non-finite {', '.join(bad)} at step {self.step}")
        self.last_metrics = m

    # ---------------------------------------------------------------- reporting
    def agent_sizes(self):
        return sizes(self.agent)

    def summary(self, seconds, steps_per_second):
        """Final JSON: the CLI's last line and summary.json (§9)."""
        evals = [e[1] for e in self.evals]
        tail = evals[-max(1, len(evals) // 10):] if evals else []
        now, init = sizes(self.agent), self.params_initial
        return {"env": self.cfg.env, "method": self.cfg.method, "steps": self.step, "seed": self.cfg.seed,
                "eval_return": evals[-1] if evals else None,
                "final_return": float(np.mean(tail)) if tail else None,
                "params": now["params"], "params_initial": init["params"],
                "ofenet_params": now["ofenet_params"], "ofenet_params_initial": init["ofenet_params"],
                "macs": now["macs"], "macs_initial": init["macs"], "cost": now["cost"],
                "alive_units": alive_units(self.agent), "seconds": round(seconds, 2),
                "steps_per_second": round(steps_per_second, 2), "xiref_version": __version__,
                "xiref_commit": source_commit()}

    # ---------------------------------------------------------------- persistence (xiref/runstate.py)
    def save(self):
        save_run(self)

    def restore(self):
        restore_run(self)


def source_commit():
    """The git commit of the xiref source tree ('-dirty' with local changes), or None outside a checkout."""
    import subprocess
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("-dirty" if dirty else "")) or None


def csv_text(rows):
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def train(cfg, resume=False, overwrite=False, echo=print):
    """Run (or resume) a training run in cfg.out; returns the summary dict."""
    cfg_path = os.path.join(cfg.out, "config.json")
    if os.path.exists(cfg_path) and not (resume or overwrite):
        raise UserError(f"{cfg.out} already holds a run; pass --resume to continue it or --overwrite to replace it")
    run = Run(cfg)
    os.makedirs(cfg.out, exist_ok=True)
    if overwrite and not resume:
        for name in RUN_FILES:                 # the old run's files must not mix with the new one's
            if os.path.exists(os.path.join(cfg.out, name)):
                os.remove(os.path.join(cfg.out, name))
    progress_path, timing_path = os.path.join(cfg.out, "progress.csv"), os.path.join(cfg.out, "timing.csv")
    rows, timing = [], []
    if resume and os.path.exists(os.path.join(cfg.out, "checkpoint.npz")):
        run.restore()
        rows = [r for r in read_csv(progress_path) if int(r["step"]) <= run.step]
        timing = [r for r in read_csv(timing_path) if int(r["step"]) <= run.step]
        echo(f"resumed {cfg.out} at step {run.step}")
    elif resume:
        raise UserError(f"--resume: no checkpoint in {cfg.out}")
    if run.params_initial is None:
        run.params_initial = run.agent_sizes()
    ckpt.atomic_write_text(cfg_path, json.dumps(asdict(run.cfg), indent=1))
    t0, s0 = time.time(), run.step
    t_prev, s_prev = t0, run.step
    while run.step < cfg.steps:
        run.env_step()
        try:
            run.updates()
        except FloatingPointError as exc:
            raise UserError(f"{exc}; stopped, the last good checkpoint is kept in {cfg.out}") from None
        if run.step % cfg.eval_every == 0 or run.step == cfg.steps:
            run.evals.append([run.step, run.evaluate()])
        if run.step % cfg.log_every == 0 or run.step == cfg.steps:
            now = time.time()
            sps = (run.step - s_prev) / max(now - t_prev, 1e-9)
            t_prev, s_prev = now, run.step
            row = progress_row(run)
            rows.append(row)
            timing.append({"step": run.step, "seconds": round(now - t0, 3), "steps_per_second": round(sps, 2)})
            ckpt.atomic_write_text(progress_path, csv_text(rows))
            ckpt.atomic_write_text(timing_path, csv_text(timing))
            echo(format_row(row, sps))
        if run.step % cfg.checkpoint_every == 0 or run.step == cfg.steps:
            run.save()
    elapsed = time.time() - t0
    summary = run.summary(elapsed, (run.step - s0) / max(elapsed, 1e-9))
    ckpt.atomic_write_text(os.path.join(cfg.out, "summary.json"), json.dumps(summary, indent=1))
    try:
        from .plot import plot_runs
        for path in plot_runs([cfg.out], os.path.join(cfg.out, "curves.png")):
            echo(f"wrote {path}")
    except Exception as exc:  # a plot failure must not lose a finished run
        echo(f"plot skipped: {exc}")
    return summary


def format_row(row, sps):
    keys = ("step", "episodes", "train_return", "eval_return", "aux_loss", "critic1_loss", "actor_loss",
            "alpha", "params", "ofenet_params")
    parts = [f"{k} {row[k]}" for k in keys if k in row and row[k] != ""]
    return "  ".join(parts) + f"  steps/s {sps:.1f}"


def config_from_dict(d):
    known = {f.name for f in fields(TrainConfig)}
    d = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known}
    return TrainConfig(**d)
