"""The networks' own per-example losses as loss_fns for xinet.gated_gradients, and the value OFENet's θ may be
priced against (docs/METHOD.md §3, §7; Eq. 8, 11, 12).

A loss_fn maps a network's activations to (ℓ (B,), d_acts); a value_fn maps (acts, gates) to the ℓ (B,) whose
θ-gradient the estimator takes, when that is not the loss_fn's own (xinet.gated_gradients, `value_fn`).
"""
import numpy as np

from . import network as N
from . import ofenet as OF
from . import sac

CONSUMERS = ("critic1", "critic2", "actor")   # the networks that read OFENet's features
OFENET_VALUES = ("own", "consumers")          # what OFENet's θ-gradient weighs a unit against (METHOD §7)


def critic_loss_fn(k, y):
    """loss_fn of critic k for xinet.gated_gradients: ℓ^Q_{k,i} = (Q_k(s_i, a_i) − y_i)².   Eq. (11)"""
    def loss_fn(acts):
        ell, dq = sac.critic_loss(acts[k + "/out"][:, 0], y)
        return ell, {k + "/out": dq[:, None]}
    return loss_fn


def actor_loss_fn(agent, f_actor, eps):
    """loss_fn of the actor: ℓ^π_i = α log π(ã_i|s_i) − min_k Q_k(s_i, ã_i), ã reparameterised.  Eq. (12)

    The critics and OFENet's action block run with expected gates and inference BN (Eq. 3); the gradient
    reaches ã through them (param_grads=False: they are not updated by this loss).
    f_actor: the actor's sources (obs and z_o); eps (B, A) the reparameterisation noise.
    """
    def loss_fn(acts):
        a, log_pi, cache = sac.tanh_gaussian(acts["actor/out"], eps, agent.log_scale)
        q1, q2, (_, _, qcache) = agent.q_values({}, f_actor, a)
        ell, d_lp, d_q1, d_q2 = sac.actor_loss(log_pi, q1, q2, agent.alpha)
        d_a = critics_action_grad(agent, qcache, {"critic2": d_q2, "critic1": d_q1})
        return ell, {"actor/out": sac.tanh_gaussian_backward(d_a, d_lp, cache)}

    def value(acts):
        """ℓ^π (B,) alone, without the chain back through the critics (the flip pass, Eq. 33)."""
        a, log_pi, _ = sac.tanh_gaussian(acts["actor/out"], eps, agent.log_scale)
        q1, q2, _ = agent.q_values({}, f_actor, a)
        return sac.actor_loss(log_pi, q1, q2, agent.alpha)[0]

    loss_fn.value = value
    return loss_fn


def critics_action_grad(agent, qcache, d_q):
    """∂/∂a of Σ_k Σ_i d_q[k]_i Q_k(s_i, a_i) (B, A) through the critics and, with an OFENet, its action
    block (Eq. 6), from the cache of `agent.q_values` (expected gates, inference BN; no weight gradients).

    The min of Eq. (12) sends each example's gradient through one critic (d_q[k]_i = 0 for the other), so
    critic k's backward runs on its own rows only — half the products of a backward of both critics over
    the whole batch — and only for the sources that depend on a (act and the action block, not z_o). The
    rows are put back together (each row comes from one critic, the other's would add 0) before the
    action block, which both critics read. d_q: {critic: (B,)}, in the order the critics are chained back.
    """
    gates = agent.gates("ofenet", "critic1", "critic2")
    front = OF.action_layers(agent.wiring) if agent.cfg.ofenet else ()
    d_front = {}                                                     # source -> (B, w), rows of both critics
    for k, dq in d_q.items():
        rows = np.flatnonzero(dq)                                    # the examples whose min is critic k
        specs = agent.specs(k)
        _, d_in, _ = N.backward(specs, agent.params, gates, N.cache_rows(specs, qcache, rows),
                                {k + "/out": dq[rows, None]}, param_grads=False, gate_grads=False,
                                input_grads={"act"} | {s.name for s in front})
        for src, g in d_in.items():
            if src not in d_front:
                d_front[src] = np.zeros((dq.shape[0], g.shape[1]), dtype=g.dtype)
            d_front[src][rows] += g
    if not front:
        return d_front["act"]
    _, d_in, _ = N.backward(front, agent.params, gates, qcache, d_front, param_grads=False, input_grads={"act"},
                            gate_grads=False)
    return d_in["act"]


def consumers_value_fn(agent, batch, y, eps, own_loss_fn):
    """value_fn of OFENet's θ priced by its consumers too (METHOD §7, "what OFENet's price weighs a unit against"):

        v_i(ξ) = ℓ^aux_i + L̄_o Σ_{c ∈ critic1, critic2, actor} ℓ^c_i(ξ) / L̄_c

    ℓ^aux_i from OFENet's own pass (Eq. 8); ℓ^c_i the critics' (Eq. 11, target y fixed) and the actor's (Eq. 12,
    noise eps) losses on features made with OFENet's gates ξ_i of example i (its row of each gate array, or θ̃
    at MuProp's mean pass), inference BN and the consumers' own expected gates (Eq. 3). Dividing each term by
    its L̄_c and multiplying by OFENet's L̄_o keeps (19)'s meaning: the θ-step divides by L̄_o, so each network's
    loss enters as its relative increase. Only OFENet's θ follows v; its weights still follow ℓ^aux.
    batch = (o, a, …) (B, ·); y (B,) TD targets (Eq. 10); eps (B, A) the actor's noise.
    """
    obs, act = batch[0], batch[1]
    wiring, cfg, scale = agent.wiring, agent.cfg, agent.loss_scale
    state, action = OF.state_layers(wiring), OF.action_layers(wiring)
    critics = agent.specs("critic1") + agent.specs("critic2")
    # L̄_o / L̄_c for each consumer c
    weight = {c: scale["ofenet"] / max(scale[c], 1e-12) for c in CONSUMERS}

    def value(acts, gates):
        ell = own_loss_fn(acts)[0]                                                           # ℓ^aux (B,)
        g = {**agent.gates("critic1", "critic2"), **{s.name: gates[s.name] for s in state + action if s.gated}}
        # Q_k(s_i, a_i) on z_o(ξ_i), z_oa(ξ_i)
        q, _ = N.forward(state + action + critics, agent.params, {"obs": obs, "act": act}, g, agent.stats,
                         bn_train=False, eps_bn=cfg.eps_bn)
        for k in ("critic1", "critic2"):
            # ℓ^Q_k = (Q_k − y)²                                                             Eq. (11)
            ell = ell + weight[k] * sac.critic_loss(q[k + "/out"][:, 0], y)[0]
        # ã_i ~ π(·|s_i) on z_o(ξ_i); Q_k(s_i, ã_i) on z_oa(ξ_i) at ã
        f_actor = {"obs": obs, **{s.name: q[s.name] for s in state}}                        # obs, z_o
        pi, _ = N.forward(agent.specs("actor"), agent.params, f_actor, agent.gates("actor"))
        a_tilde, log_pi, _ = sac.tanh_gaussian(pi["actor/out"], eps, agent.log_scale)
        q_pi, _ = N.forward(action + critics, agent.params, {**f_actor, "act": a_tilde}, g, agent.stats,
                            bn_train=False, eps_bn=cfg.eps_bn)
        # ℓ^π = α log π(ã|s) − min_k Q_k(s, ã)                                               Eq. (12)
        ell_pi = sac.actor_loss(log_pi, q_pi["critic1/out"][:, 0], q_pi["critic2/out"][:, 0], agent.alpha)[0]
        return ell + weight["actor"] * ell_pi

    return value
