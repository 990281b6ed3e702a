"""Agent state <-> flat arrays for checkpoints (every container, Adam moments and scalars)."""
import numpy as np

from .adam import AdamState


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
