"""What a run reports (docs/METHOD.md §9): sizes, costs, θ histograms and the progress row."""
import numpy as np

from . import wiring as W


def sizes(agent):
    """Real and expected sizes of the agent now: params, OFENet params, C(θ), multiply-adds, Eq. (28), (30)."""
    wr, theta = agent.wiring, agent.theta
    current = {k: np.ones(len(v)) for k, v in theta.items()}
    ofe = ("ofenet",) if agent.cfg.ofenet else ()
    return {"params": W.param_count(agent.params),
            "ofenet_params": W.param_count(agent.params, ofe, wr) if ofe else 0,
            "cost": float(W.cost(wr, theta)),
            "macs": W.macs(wr, current), "macs_expected": W.macs(wr, theta),
            "ofenet_macs": W.macs(wr, current, ofe) if ofe else 0.0}


def final_mean(values):
    """Mean of the last 10 % of `values` (at least one), None for none: summary.json's final_return (§9) over
    the evaluations, and examples/summarize.py's final auxiliary loss over the progress rows."""
    return float(np.mean(values[-max(1, len(values) // 10):])) if len(values) else None


def alive_units(agent):
    """Current width of every hidden layer (a layer other layers read; gated or not), in wiring order."""
    wr = agent.wiring
    return {s.name: int(agent.params[s.name]["b"].shape[0]) for s in wr.layers if wr.consumers(s.name)}


def net_theta(agent, net):
    """Every gate probability θ of network `net` still alive, concatenated over its gated layers: (n_alive,)."""
    theta = [agent.theta[s.name] for s in agent.specs(net) if s.gated]     # θ itself, however (3) reads it
    return np.concatenate(theta) if theta else np.zeros(0)


def theta_histogram(agent, net):
    """(# at 0, # in (0,1), # at 1) over the θ of `net`; units already removed count as at 0."""
    th = net_theta(agent, net)
    removed = sum(s.n_out for s in agent.wiring.net_layers(net) if s.gated) - th.size
    return int(removed + np.sum(th == 0)), int(np.sum((th > 0) & (th < 1))), int(np.sum(th == 1))


def _fmt(x):
    return "" if x is None else (f"{x:.6g}" if isinstance(x, float) else x)


def progress_row(run):
    """One progress.csv row: deterministic quantities only (no wall clock)."""
    agent, m = run.agent, run.last_metrics
    recent = run.recent_returns[-10:]
    row = {"step": run.step, "episodes": run.episode,
           "train_return": _fmt(float(np.mean(recent))) if recent else "",
           "eval_return": _fmt(run.evals[-1][1]) if run.evals else ""}
    for k in ("aux_loss", "critic1_loss", "critic2_loss", "actor_loss", "alpha", "entropy"):
        row[k] = _fmt(m.get(k))
    row.update({k: _fmt(v) for k, v in sizes(agent).items()})
    if agent.cfg.gated:
        for net in agent.wiring.nets():
            z, mid, one = theta_histogram(agent, net)
            row.update({f"{net}_theta0": z, f"{net}_theta_mid": mid, f"{net}_theta1": one})
    row.update({f"alive:{k}": v for k, v in alive_units(agent).items()})
    return row
