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

import numpy as np

from . import __version__
from . import checkpoint as ckpt
from . import ofenet as OF
from .agent import Agent
from .buffer import ReplayBuffer
from .config import METHODS, TrainConfig, config_from_dict  # noqa: F401 (re-exported)
from .config import check_memory, portable_config, resolve_method, validate
from .envs import env_dims, make_env
from .errors import UserError
from .metrics import alive_units, final_mean, progress_row, sizes
from .readers import read_csv  # noqa: F401 (re-exported: examples read progress.csv through it)
from .runlock import run_lock
from .runstate import CHECKPOINT, agent_arrays, checkpoint_path, restore_run, save_run

RUN_FILES = (CHECKPOINT, CHECKPOINT + ".tmp", "progress.csv", "timing.csv", "summary.json", "curves.png")


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
        if cfg.ofenet and not 0 < cfg.target_dim <= self.obs_dim:     # T entries of o′ are predicted, Eq. (8)
            raise UserError(f"--target-dim must lie in 1..{self.obs_dim} (the observation size of {cfg.env}), "
                            f"got {cfg.target_dim}")
        check_memory(cfg, self.obs_dim, self.act_dim)                   # before the arrays are allocated
        self.rng = np.random.default_rng(cfg.seed)
        self.agent = Agent(cfg, self.obs_dim, self.act_dim, np.log(self.scale), self.rng, self.dtype)
        self.buffer = ReplayBuffer(self.obs_dim, self.act_dim, cfg.buffer_size, self.dtype)
        self.step, self.episode, self.ep_return, self.ep_len = 0, 0, 0.0, 0
        self.obs = self._reset()
        self.recent_returns, self.evals, self.last_metrics = [], [], {}
        self.params_initial = None
        self.saved = None                      # step of the last good checkpoint on disk (None: none yet)
        self.commit = source_commit()          # the code this process runs (a later commit may follow)

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

    def _check_reward(self, r, where):
        if not np.isfinite(r):
            raise UserError(f"{self.cfg.env} returned a non-finite reward at step {self.step} ({where})")

    def env_step(self):
        cfg = self.cfg
        if self.step < cfg.start_steps:
            a = self.rng.uniform(-1.0, 1.0, self.act_dim)             # random phase, agent's generator
        else:
            a = self.agent.act(self.obs[None], self.rng)[0]          # expected gates, Eq. (3)
        obs_next, r, terminated, truncated, _ = self.env.step(self.scale * a + self.bias)
        obs_next = self._check_obs(obs_next, "step")
        self._check_reward(r, "step")
        # d = 1 only on termination, so a truncation still bootstraps in y, Eq. (10)
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
            obs = self._check_obs(obs, "evaluation reset")
            done, total = False, 0.0
            while not done:
                a = self.agent.act(obs[None], self.rng, deterministic=True)[0]
                obs, r, terminated, truncated, _ = self.eval_env.step(self.scale * a + self.bias)
                obs = self._check_obs(obs, "evaluation")
                self._check_reward(r, "evaluation")
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
            # θ-steps (Eq. 32) start after the warm-ups (§7 Choice)
            theta_on = self.step >= cfg.start_steps + cfg.theta_delay_ofenet
            m.update(agent.update_ofenet(self.buffer.sample(self.rng, cfg.batch), self.rng, theta_on))
        theta_on = self.step >= cfg.start_steps + cfg.theta_delay_sac
        m.update(agent.update_sac(self.buffer.sample(self.rng, cfg.batch), self.rng, theta_on))
        if cfg.gated:
            agent.prune()                                              # units at θ = 0, §7
        bad = [k for k, v in m.items() if not math.isfinite(v)]
        if bad:
            raise FloatingPointError(f"non-finite {', '.join(bad)} at step {self.step}")
        self.last_metrics = m

    # ---------------------------------------------------------------- reporting
    def summary(self, seconds, steps_per_second):
        """Final JSON: the CLI's last line and summary.json (§9)."""
        evals = [e[1] for e in self.evals]
        now, init = sizes(self.agent), self.params_initial
        return {"env": self.cfg.env, "method": self.cfg.method, "steps": self.step, "seed": self.cfg.seed,
                "eval_return": evals[-1] if evals else None,
                "final_return": final_mean(evals),
                "params": now["params"], "params_initial": init["params"],
                "ofenet_params": now["ofenet_params"], "ofenet_params_initial": init["ofenet_params"],
                "macs": now["macs"], "macs_initial": init["macs"], "cost": now["cost"],
                "alive_units": alive_units(self.agent), "seconds": round(seconds, 2),
                "steps_per_second": round(steps_per_second, 2), "xiref_version": __version__,
                "xiref_commit": self.commit}

    # ---------------------------------------------------------------- persistence (xiref/runstate.py)
    def save(self):
        """Checkpoint (atomic); a state with a NaN or ±inf anywhere never replaces the last good one."""
        bad = nonfinite({k: v for k, v in agent_arrays(self.agent).items() if k != "__scalars__"})
        if bad:
            more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
            raise FloatingPointError(f"non-finite {', '.join(bad[:3])}{more} at step {self.step}")
        save_run(self)
        self.saved = self.step

    def restore(self, loaded=None):
        restore_run(self, loaded)
        self.saved = self.step


def nonfinite(tree, prefix=""):
    """Names ('params actor/h1 W', …) of the arrays in a nested dict that hold a NaN or ±inf."""
    bad = []
    for k, v in tree.items():
        if isinstance(v, dict):
            bad += nonfinite(v, f"{prefix}{k} ")
        elif not np.all(np.isfinite(v)):
            bad.append(f"{prefix}{k}")
    return bad


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


def train(cfg, resume=False, overwrite=False, echo=print):
    """Run (or resume) a training run in cfg.out; returns the summary dict. Every setting is checked (Run)
    before anything in cfg.out is created or deleted."""
    held = [n for n in ("config.json",) + RUN_FILES if os.path.exists(os.path.join(cfg.out, n))]
    if held and not (resume or overwrite):
        raise UserError(f"{cfg.out} already holds a run ({held[0]}); pass --resume to continue it or --overwrite "
                        "to replace it")
    run = Run(cfg)
    os.makedirs(cfg.out, exist_ok=True)
    with run_lock(cfg.out):               # one writer per directory (xiref/runlock.py)
        return _train_locked(run, cfg, resume, overwrite, echo)


def _train_locked(run, cfg, resume, overwrite, echo):
    if overwrite and not resume:
        for name in RUN_FILES:                 # the old run's files must not mix with the new one's
            if os.path.exists(os.path.join(cfg.out, name)):
                os.remove(os.path.join(cfg.out, name))
    logs = _resume(run, cfg, echo) if resume else ([], [])
    if run.params_initial is None:
        run.params_initial = sizes(run.agent)
    try:
        summary = _run_loop(run, cfg, logs, echo)
    except (FloatingPointError, UserError, OSError) as exc:     # non-finite env output, loss or state; full disk
        kept = f"the last good checkpoint (step {run.saved}) is kept in {cfg.out}" if run.saved is not None else \
            f"no checkpoint was written to {cfg.out}"
        raise UserError(f"{_stop_reason(exc)}; stopped, {kept}") from None
    _plot(cfg, echo)
    return summary


def _stop_reason(exc):
    if isinstance(exc, OSError) and exc.filename:
        return f"cannot write {exc.filename}: {exc.strerror or exc}"
    return str(exc)


def _resume(run, cfg, echo):
    """Restore the checkpoint; (progress rows, timing rows) up to its step, read back (xiref/readers.py)."""
    if not os.path.exists(checkpoint_path(cfg.out)):
        raise UserError(f"--resume: no checkpoint in {cfg.out}")
    run.restore()
    if run.step > cfg.steps:
        raise UserError(f"--steps {cfg.steps} is below the checkpoint's step {run.step}")
    logs = tuple([r for r in read_csv(os.path.join(cfg.out, name)) if int(r["step"]) <= run.step]
                 for name in ("progress.csv", "timing.csv"))
    echo(f"resumed {cfg.out} at step {run.step}")
    return logs


def _run_loop(run, cfg, logs, echo):
    """config.json, then steps until cfg.steps with progress, timing and checkpoints; summary.json at the end."""
    rows, timing = logs
    progress_path, timing_path = os.path.join(cfg.out, "progress.csv"), os.path.join(cfg.out, "timing.csv")
    ckpt.atomic_write_text(os.path.join(cfg.out, "config.json"), json.dumps(portable_config(run.cfg), indent=1))
    t0, s0 = time.time(), run.step
    t_prev, s_prev = t0, run.step
    while run.step < cfg.steps:
        run.env_step()
        run.updates()
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
            echo(format_row(row, sps, cfg.steps, (cfg.steps - run.step) * (now - t0) / max(run.step - s0, 1)))
        if run.step % cfg.checkpoint_every == 0 or run.step == cfg.steps:
            run.save()
    elapsed = time.time() - t0
    summary = run.summary(elapsed, (run.step - s0) / max(elapsed, 1e-9))
    ckpt.atomic_write_text(os.path.join(cfg.out, "summary.json"), json.dumps(summary, indent=1))
    return summary


def _plot(cfg, echo):
    try:
        from .plot import plot_runs
        for path in plot_runs([cfg.out], os.path.join(cfg.out, "curves.png")):
            echo(f"wrote {path}")
    except Exception as exc:  # a plot failure must not lose a finished run
        echo(f"plot skipped: {exc}")


def format_row(row, sps, total, eta_seconds):
    """One progress line: step of total, evaluation return, parameters, losses, speed and time left."""
    keys = ("episodes", "train_return", "eval_return", "aux_loss", "critic1_loss", "actor_loss", "alpha", "params",
            "ofenet_params")
    parts = [f"step {row['step']}/{total}"] + [f"{k} {row[k]}" for k in keys if k in row and row[k] != ""]
    minutes, seconds = divmod(int(round(eta_seconds)), 60)
    return "  ".join(parts) + f"  steps/s {sps:.1f}  ETA {minutes}:{seconds:02d}"
