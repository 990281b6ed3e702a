"""Run state <-> checkpoints: the agent's containers, Adam moments and scalars, and a whole training run."""
import os
from dataclasses import asdict

import numpy as np

from .adam import AdamState
from .agent import KNOB_NETS, KNOBS, resolve_knob

CHECKPOINT = "checkpoint.npz"            # a run directory's checkpoint (atomic: written as CHECKPOINT + ".tmp")


def checkpoint_path(run_dir):
    """Where run_dir's checkpoint lives: one name for training, resuming, export, campaign and summary."""
    return os.path.join(run_dir, CHECKPOINT)


def agent_arrays(agent):
    """Nested dict of every array of the agent; '__scalars__' holds the JSON-able rest."""
    opt = {net: {"m": o.m, "v": o.v} for net, o in agent.opt.items()}
    scalars = {"opt_t": {net: o.t for net, o in agent.opt.items()}, "opt_alpha_t": agent.opt_alpha.t,
               "loss_scale": agent.loss_scale, "cost_initial": agent.cost_initial}
    return {"params": agent.params, "stats": agent.stats, "target": agent.target, "theta": agent.theta,
            "m_theta": agent.m_theta, "opt": opt, "log_alpha": agent.log_alpha,
            "opt_alpha": {"m": agent.opt_alpha.m, "v": agent.opt_alpha.v}, "__scalars__": scalars}


def load_agent_arrays(agent, tree, scalars):
    """Replace the agent's containers by the checkpoint's (shapes may be smaller: pruned units)."""
    def cast(t):
        return {k: cast(v) if isinstance(v, dict) else np.array(v, dtype=agent.dtype) for k, v in t.items()}
    for key in ("params", "stats", "target", "theta", "m_theta", "log_alpha"):
        setattr(agent, key, cast(tree.get(key, {})))
    expected = set(agent.wiring.gated_names())
    if set(agent.theta) != expected:
        from .envs import UserError
        raise UserError("checkpoint mismatch: its gated layers differ from this configuration's")
    for net, o in agent.opt.items():
        o.m, o.v, o.t = cast(tree["opt"][net]["m"]), cast(tree["opt"][net]["v"]), int(scalars["opt_t"][net])
    agent.opt_alpha = AdamState(m=cast(tree["opt_alpha"]["m"]), v=cast(tree["opt_alpha"]["v"]),
                                t=int(scalars["opt_alpha_t"]), lr=agent.opt_alpha.lr)
    agent.loss_scale = dict(scalars["loss_scale"])
    agent.cost_initial = float(scalars["cost_initial"])
    check_shapes(agent)


def check_shapes(agent):
    """Every loaded container must follow the wiring at the loaded widths (len θ): a checkpoint of other
    dimensions is refused here, not by a broadcasting error some steps later."""
    from .envs import UserError
    wr, theta = agent.wiring, agent.theta
    for s in wr.layers:
        n = wr.out_width(s, theta)
        layer = {"W": (sum(wr.source_widths(s, theta)), n), "b": (n,), **({"s": (n,), "c": (n,)} if s.bn else {})}
        expected = [("params", agent.params, layer), ("Adam m", agent.opt[s.net].m, layer),
                    ("Adam v", agent.opt[s.net].v, layer)]
        if s.net.startswith("critic"):
            expected.append(("target", agent.target, layer))
        if s.bn:
            expected.append(("BN statistics", agent.stats, {"mean": (n,), "var": (n,)}))
        if s.gated:
            units = {s.name: {"theta": theta[s.name], "m_theta": agent.m_theta.get(s.name)}}
            expected.append(("θ", units, {"theta": (n,), "m_theta": (n,)}))
        for what, container, want in expected:
            got = {k: np.shape(a) for k, a in container.get(s.name, {}).items()}
            if got != want:
                raise UserError(f"checkpoint mismatch: {what} of {s.name} has shapes {got}, this configuration {want}")


# ---------------------------------------------------------------------- a whole run (train.Run)
RESUMABLE_CHANGES = ("steps", "out")      # the only settings a resumed run may change
IDENTITY = ("env", "method", "seed", "dtype", "hidden", "ofe_layers", "ofe_units")   # mismatches reported first
COUNTERS = ("step", "episode", "ep_return", "ep_len", "recent_returns", "evals", "last_metrics", "params_initial")
HEADER = ("xiref_version", "config", "obs_dim", "act_dim", "rng", "agent_scalars") + COUNTERS


# settings that only act through the gates (xiref/agent.py `_step_net`, xiref/train.py `Run.updates`)
GATE_ONLY = ("beta", "eta_theta", "mu_theta", "eps_xi", "baseline", "lam_w", "loss_scale_rate",
             "theta_delay_ofenet", "theta_delay_sac")


def effective_config(d):
    """The settings that determine a run's continuation: each network's resolved β, η_θ and ε_ξ (its own value,
    or the shared one when −1, as `Agent.knob`) instead of the raw fields, and no gate settings for an
    ungated method — so a changed default that the run does not use never blocks a resume."""
    d = dict(d)
    resolved = {f"{name}_{net}": resolve_knob(d.get, net, name) for name in KNOBS for net in KNOB_NETS}
    d = {k: v for k, v in d.items() if k not in KNOBS}
    d.update(resolved)
    if d.get("method") != "xinet":
        d = {k: v for k, v in d.items() if not k.startswith(GATE_ONLY)}
    return d


def save_run(run):
    """Atomic checkpoint of everything a run needs to continue bit-identically: agent, replay buffer,
    current observation, MuJoCo state, counters and the generator's state."""
    from . import __version__
    from . import checkpoint as ckpt
    from .envs import get_env_state
    header = {"xiref_version": __version__, "config": asdict(run.cfg), "obs_dim": run.obs_dim,
              "act_dim": run.act_dim, "rng": run.rng.bit_generator.state}
    header.update({k: getattr(run, k) for k in COUNTERS})
    arrays = {"agent": agent_arrays(run.agent), "buffer": run.buffer.state(), "obs": run.obs,
              "env": get_env_state(run.env)}
    header["agent_scalars"] = arrays["agent"].pop("__scalars__")
    ckpt.save(checkpoint_path(run.cfg.out), header, arrays)


def restore_run(run):
    """Load run.cfg.out/checkpoint.npz into run; a checkpoint of another configuration is refused."""
    from . import __version__
    from . import checkpoint as ckpt
    from .envs import UserError, set_env_state
    path = checkpoint_path(run.cfg.out)
    header, flat = ckpt.load(path)
    if header.get("xiref_version") != __version__:      # first: another version may store other keys
        raise UserError(f"checkpoint from xiref {header.get('xiref_version')}, this is {__version__}")
    missing = [k for k in HEADER if k not in header]
    if missing:
        raise UserError(f"checkpoint {path} is incomplete: its header has no {', '.join(missing)}")
    saved, mine_all = effective_config(header["config"]), effective_config(asdict(run.cfg))
    for key in IDENTITY + tuple(k for k in mine_all if k not in IDENTITY):
        if key in RESUMABLE_CHANGES or key not in saved:
            continue
        theirs = tuple(saved[key]) if isinstance(saved[key], list) else saved[key]
        if mine_all[key] != theirs:
            raise UserError(f"checkpoint mismatch: {key} is {theirs!r} in the checkpoint, {mine_all[key]!r} requested")
    if (header["obs_dim"], header["act_dim"]) != (run.obs_dim, run.act_dim):
        raise UserError("checkpoint mismatch: observation/action dimensions differ from the environment's")
    try:       # arrays missing or of another layout (the header and checksum were fine)
        load_agent_arrays(run.agent, ckpt.unflatten(flat, "agent" + ckpt.SEP), header["agent_scalars"])
        run.buffer.load(ckpt.unflatten(flat, "buffer" + ckpt.SEP))
        run.obs = flat["obs"]
        for k in COUNTERS:
            setattr(run, k, header[k])
        run.env.reset(seed=run.episode_seed())
        set_env_state(run.env, ckpt.unflatten(flat, "env" + ckpt.SEP))
        run.rng.bit_generator.state = header["rng"]
    except (KeyError, ValueError, TypeError) as exc:
        raise UserError(f"checkpoint {path} does not fit this run ({type(exc).__name__}: {exc})") from None
