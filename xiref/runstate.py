"""Run state <-> checkpoints: the agent's containers, Adam moments and scalars, and a whole training run."""
import os
from dataclasses import asdict

import numpy as np

from .adam import AdamState
from .agent import KNOB_NETS, KNOBS, resolve_knob
from .errors import UserError
from .readers import HEADER_KINDS, read_run_checkpoint

CHECKPOINT = "checkpoint.npz"            # a run directory's checkpoint (atomic: written as CHECKPOINT + ".tmp")


def checkpoint_path(run_dir):
    """Where run_dir's checkpoint lives: one name for training, resuming, export, campaign and summary."""
    return os.path.join(run_dir, CHECKPOINT)


def continue_flags(run_dir):
    """The `train` flag that continues run_dir: `--resume` from its checkpoint, `--overwrite` for a run started but
    never checkpointed (nothing to keep), none for a new directory; one rule for every campaign runner."""
    if os.path.exists(checkpoint_path(run_dir)):
        return ["--resume"]
    return ["--overwrite"] if os.path.exists(os.path.join(run_dir, "config.json")) else []


def agent_arrays(agent):
    """Nested dict of every array of the agent; '__scalars__' holds the JSON-able rest."""
    opt = {net: {"m": o.m, "v": o.v} for net, o in agent.opt.items()}
    scalars = {"opt_t": {net: o.t for net, o in agent.opt.items()}, "opt_alpha_t": agent.opt_alpha.t,
               "loss_scale": agent.loss_scale, "cost_initial": agent.cost_initial, "t_theta": agent.t_theta}
    return {"params": agent.params, "stats": agent.stats, "target": agent.target, "theta": agent.theta,
            "m_theta": agent.m_theta, "v_theta": agent.v_theta, "opt": opt, "log_alpha": agent.log_alpha,
            "opt_alpha": {"m": agent.opt_alpha.m, "v": agent.opt_alpha.v}, "__scalars__": scalars}


def load_agent_arrays(agent, tree, scalars):
    """Replace the agent's containers by the checkpoint's (shapes may be smaller: pruned units)."""
    def cast(t):
        return {k: cast(v) if isinstance(v, dict) else np.array(v, dtype=agent.dtype) for k, v in t.items()}
    for key in ("params", "stats", "target", "theta", "m_theta", "log_alpha"):
        setattr(agent, key, cast(tree.get(key, {})))
    # a checkpoint written before the second moment (37) existed: its runs used k_θ = 0, which never reads it
    agent.v_theta = cast(tree["v_theta"]) if "v_theta" in tree else {k: np.zeros_like(v) for k, v in
                                                                     agent.theta.items()}
    expected = set(agent.wiring.gated_names())
    if set(agent.theta) != expected:
        raise UserError("checkpoint mismatch: its gated layers differ from this configuration's")
    for net, o in agent.opt.items():
        o.m, o.v, o.t = cast(tree["opt"][net]["m"]), cast(tree["opt"][net]["v"]), int(scalars["opt_t"][net])
    agent.opt_alpha = AdamState(m=cast(tree["opt_alpha"]["m"]), v=cast(tree["opt_alpha"]["v"]),
                                t=int(scalars["opt_alpha_t"]), lr=agent.opt_alpha.lr)
    agent.loss_scale = dict(scalars["loss_scale"])
    agent.cost_initial = float(scalars["cost_initial"])
    agent.t_theta = {net: int(t) for net, t in scalars.get("t_theta", {}).items()}
    check_shapes(agent)


def check_shapes(agent):
    """Every loaded container must follow the wiring at the loaded widths (len θ): a checkpoint of other
    dimensions is refused here, not by a broadcasting error some steps later."""
    wr, theta = agent.wiring, agent.theta
    critics = wr.critics()
    for s in wr.layers:
        n = wr.out_width(s, theta)
        layer = {"W": (sum(wr.source_widths(s, theta)), n), "b": (n,), **({"s": (n,), "c": (n,)} if s.bn else {})}
        expected = [("params", agent.params, layer), ("Adam m", agent.opt[s.net].m, layer),
                    ("Adam v", agent.opt[s.net].v, layer)]
        if s.net in critics:
            expected.append(("target", agent.target, layer))
        if s.bn:
            expected.append(("BN statistics", agent.stats, {"mean": (n,), "var": (n,)}))
        if s.gated:
            units = {s.name: {"theta": theta[s.name], "m_theta": agent.m_theta.get(s.name),
                              "v_theta": agent.v_theta.get(s.name)}}
            expected.append(("θ", units, {"theta": (n,), "m_theta": (n,), "v_theta": (n,)}))
        for what, container, want in expected:
            got = {k: np.shape(a) for k, a in container.get(s.name, {}).items()}
            if got != want:
                raise UserError(f"checkpoint mismatch: {what} of {s.name} has shapes {got}, this configuration {want}")


# ---------------------------------------------------------------------- a whole run (train.Run)
RESUMABLE_CHANGES = ("steps", "out")      # the only settings a resumed run may change
IDENTITY = ("env", "method", "seed", "dtype", "hidden", "ofe_layers", "ofe_units")   # mismatches reported first
COUNTERS = ("step", "episode", "ep_return", "ep_len", "recent_returns", "evals", "last_metrics", "params_initial")
HEADER = tuple(HEADER_KINDS)             # every entry of a run checkpoint's header (xiref/readers.py checks them)


# settings that only act through the gates (xiref/agent.py `_step_net`, xiref/train.py `Run.updates`)
GATE_ONLY = ("beta", "eta_theta", "mu_theta", "k_theta", "theta_scale", "expected_gates", "eps_xi", "baseline",
             "ofenet_value", "lam_w", "loss_scale_rate", "theta_delay_ofenet", "theta_delay_sac")


def effective_config(d):
    """The settings that determine a run's continuation: each network's resolved β, η_θ and ε_ξ (its own value,
    or the shared one when unset, as `Agent.knob`) instead of the raw fields, and no gate settings for an
    ungated method — so a changed default that the run does not use never blocks a resume."""
    from .config import BEFORE_FIELDS
    d = {**BEFORE_FIELDS, **d}
    resolved = {f"{name}_{net}": resolve_knob(d.get, net, name) for name in KNOBS for net in KNOB_NETS}
    d = {k: v for k, v in d.items() if k not in KNOBS}
    d.update(resolved)
    if d.get("method") != "xinet":
        d = {k: v for k, v in d.items() if not k.startswith(GATE_ONLY)}
    return d


def save_run(run):
    """Atomic checkpoint of everything a run needs to continue bit-identically: agent, replay buffer,
    current observation, env state, counters and the generator's state."""
    from . import __version__
    from . import checkpoint as ckpt
    from .config import portable_config
    from .envs import get_env_state
    header = {"xiref_version": __version__, "config": portable_config(run.cfg), "obs_dim": run.obs_dim,
              "act_dim": run.act_dim, "rng": run.rng.bit_generator.state}
    header.update({k: getattr(run, k) for k in COUNTERS})
    arrays = {"agent": agent_arrays(run.agent), "buffer": run.buffer.state(), "obs": run.obs,
              "env": get_env_state(run.env)}
    header["agent_scalars"] = arrays["agent"].pop("__scalars__")
    ckpt.save(checkpoint_path(run.cfg.out), header, arrays)


def restore_run(run, loaded=None):
    """Load run.cfg.out/checkpoint.npz (or `loaded`, its (header, flat arrays) from readers.read_run_checkpoint)
    into run; a checkpoint of another configuration, or taken mid-episode of an env whose state it cannot
    hold, is refused."""
    from . import checkpoint as ckpt
    from .envs import set_env_state
    path = checkpoint_path(run.cfg.out)
    header, flat = loaded or read_run_checkpoint(path)
    _check_same_settings(header["config"], asdict(run.cfg))
    if (header["obs_dim"], header["act_dim"]) != (run.obs_dim, run.act_dim):
        raise UserError("checkpoint mismatch: observation/action dimensions differ from the environment's")
    env_state = ckpt.unflatten(flat, "env" + ckpt.SEP)
    _check_resumable(run.cfg.env, path, header["ep_len"], env_state)
    try:       # arrays missing or of another layout (the header and checksum were fine)
        load_agent_arrays(run.agent, ckpt.unflatten(flat, "agent" + ckpt.SEP), header["agent_scalars"])
        run.buffer.load(ckpt.unflatten(flat, "buffer" + ckpt.SEP))
        run.obs = flat["obs"]
        for k in COUNTERS:
            setattr(run, k, header[k])
        run.env.reset(seed=run.episode_seed())
        set_env_state(run.env, env_state)
        run.rng.bit_generator.state = header["rng"]
    except (KeyError, ValueError, TypeError, AttributeError, IndexError, OverflowError) as exc:
        raise UserError(f"checkpoint {path} does not fit this run ({type(exc).__name__}: {exc})") from None


def _check_same_settings(saved_config, mine):
    """UserError naming the first setting (identity first) in which the checkpoint's run differs from this one."""
    saved, mine = effective_config(saved_config), effective_config(mine)
    for key in IDENTITY + tuple(k for k in mine if k not in IDENTITY):
        if key in RESUMABLE_CHANGES or key not in saved:
            continue
        if mine[key] != saved[key]:
            raise UserError(f"checkpoint mismatch: {key} is {saved[key]!r} in the checkpoint, {mine[key]!r} requested")


def _check_resumable(env_id, path, ep_len, env_state):
    """An episode under way can only be continued where the checkpoint holds the env's state."""
    from .envs import EXACT_ENVS, exact_state
    if ep_len > 0 and not exact_state(env_state):
        raise UserError(f"checkpoint {path} was taken {ep_len} steps into an episode of {env_id}, whose state "
                        f"xiref cannot save; --resume continues mid-episode only for {EXACT_ENVS}")

