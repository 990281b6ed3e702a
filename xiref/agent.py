"""The agent: SAC (+ OFENet) (+ XiNet gates) state and its updates (docs/METHOD.md §2, §3, §7, §8).

All state lives in plain containers on an `Agent` (params, BN stats, θ, θ-momenta, target critics, Adam
moments per network, log α); the losses are the top-level functions of xiref/sac.py and xiref/ofenet.py, made
into each network's loss_fn in xiref/losses.py.
Rule of Eq. (3): sampled gates only inside a network's own loss (xinet.gated_gradients) — and, with
ofenet_value = "consumers", OFENet's inside the consumers' losses that price OFENet's θ; features, acting,
targets, the actor's critics and the α loss use expected gates θ.
"""
import copy
from dataclasses import dataclass

import numpy as np

from . import network as N
from . import ofenet as OF
from . import sac
from . import wiring as W
from . import xinet
from .adam import adam_init, adam_step
from .gates import ESTIMATORS, EXPECTED_GATES
from .losses import CONSUMERS, OFENET_VALUES, actor_loss_fn, consumers_value_fn, critic_loss_fn
from .prune import THETA_SCALES, keep_last_units, prune_zero_units, theta_step

NETS = ("ofenet", "actor", "critic1", "critic2")
KNOBS = ("beta", "eta_theta", "eps_xi")      # the settings each network may have its own value of
KNOB_NETS = ("ofenet", "actor", "critic")    # their suffixes `<knob>_<role>`: the wiring's roles (Wiring.role)
AGENT_CHOICES = {"baseline": ESTIMATORS, "ofenet_value": OFENET_VALUES, "theta_scale": THETA_SCALES,
                 "expected_gates": EXPECTED_GATES}                                          # str fields
# AgentConfig overrides under which `beta`, `eta_theta` and `eps_xi` alone set every network's β, η_θ and ε_ξ
SHARED_KNOBS = {f"{name}_{net}": None for name in KNOBS for net in KNOB_NETS}


def own_knobs(cfg, name):
    """{field: value} of the per-network fields of knob `name` (`name_ofenet`, `name_actor`, `name_critic`)."""
    return {f"{name}_{net}": getattr(cfg, f"{name}_{net}") for net in KNOB_NETS}


def resolve_knob(get, role, name):
    """β, η_θ or ε_ξ (`name` = "beta" | "eta_theta" | "eps_xi") of the networks of role `role` (Wiring.role: critic1
    and critic2 share the role 'critic'): their own field `name_<role>` unless unset, else the shared field `name`.
    `get(field)` reads a setting; unset is None — a field `get` does not know (a checkpoint from before the field
    existed) — or −1, the unset value that config files written before None stored."""
    own = get(f"{name}_{role}")
    return get(name) if own is None or own == -1 else own


@dataclass
class AgentConfig:
    """Networks, SAC, OFENet and XiNet hyperparameters (defaults: docs/METHOD.md §2, §3, §7)."""
    hidden: tuple = (256, 256)      # actor/critic hidden widths (SAC default 256×256)
    gamma: float = 0.99             # discount γ (Eq. 10)
    tau: float = 0.005              # Polyak rate τ (Eq. 14)
    lr_actor: float = 3e-4          # Adam lr of the actor
    lr_critic: float = 3e-4         # Adam lr of both critics
    lr_alpha: float = 3e-4          # Adam lr of log α
    lr_ofenet: float = 3e-4         # Adam lr of OFENet
    init_alpha: float = 1.0         # initial entropy temperature α (CleanRL starts at log α = 0)
    ofenet: bool = False            # put an OFENet in front of actor and critics
    ofe_layers: int = 6             # L, layers per DenseNet block
    ofe_units: int = 40             # u, units per DenseNet layer
    ofe_widths: tuple = ()          # per-layer widths (2L, state then action block); overrides ofe_units
    target_dim: int = 0             # T, predicted part of o′ (0: whole observation)
    gated: bool = False             # XiNet: Bernoulli gates on OFENet, actor and critic units
    beta: float = 20.0              # β (Eq. 19), the one price knob: every network whose own β below is unset
    beta_ofenet: float | None = None    # β for OFENet alone (none: use beta)
    beta_actor: float | None = 0.1      # β for the actor alone (none: use beta); its loss −Q has no zero (METHOD §7)
    beta_critic: float | None = None    # β for each critic (none: use beta)
    eta_theta: float = 0.05         # η_θ (Eq. 37) of every network whose own η_θ below is unset
    eta_theta_ofenet: float | None = None   # η_θ for OFENet alone (none: use eta_theta)
    eta_theta_actor: float | None = None    # η_θ for the actor alone (none: use eta_theta)
    eta_theta_critic: float | None = None   # η_θ for each critic (none: use eta_theta)
    mu_theta: float = 0.99          # μ_θ (Eq. 32): the θ-gradient average's decay
    k_theta: float = 3.0            # θ moves only beyond k_θ standard errors of its averaged gradient (Eq. 37)
    theta_scale: str = "none"       # θ-step in units of ĝ_θ/L̄ (none, Eq. 37) or of each unit's RMS (rms, Eq. 39)
    eps_xi: float = 0.001           # ε_ξ floor (Eq. 4; Choice, docs/METHOD.md) of every network whose own is unset
    eps_xi_ofenet: float | None = None  # ε_ξ for OFENet alone (none: use eps_xi)
    eps_xi_actor: float | None = None   # ε_ξ for the actor alone (none: use eps_xi)
    eps_xi_critic: float | None = None  # ε_ξ for each critic (none: use eps_xi)
    expected_gates: str = "tilde"   # the expected-gate forward reads each gate's mean θ̃ (Eq. 40), or θ (theta, Eq. 3)
    baseline: str = "flip"          # θ-gradient estimator: flip (Eq. 33–34), muprop(-loo) (35), none/loo/pair (23)
    ofenet_value: str = "own"       # OFENet's θ weighs a unit against: its own loss (8), or "consumers" too (§7)
    lam_w: float = 0.0              # λ_w slab-prior weight, Eq. (16); 0 as SAC/OFENet use no weight decay
    loss_scale_rate: float = 0.01   # EMA rate of L̄_n (Eq. 19)
    eps_bn: float = 1e-3            # BN ε (Keras, as OFENet)
    bn_momentum: float = 0.99       # BN running-average momentum (Keras, as OFENet)


class Agent:
    def __init__(self, cfg, obs_dim, act_dim, log_scale, rng, dtype=np.float64):
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim, act_dim
        self.log_scale = np.asarray(log_scale, dtype=dtype)          # (A,) log of env action scale
        ofe = None
        if cfg.ofenet:
            ofe = dict(n_layers=cfg.ofe_layers, units=cfg.ofe_units, widths=tuple(cfg.ofe_widths) or None,
                       target_dim=cfg.target_dim or obs_dim)
        self.wiring = W.agent_wiring(obs_dim, act_dim, cfg.hidden, ofe, gated=cfg.gated)
        self.params, self.stats = N.init_params(self.wiring.layers, self.wiring.free_widths, rng, dtype)
        critic_layers = {s.name for net in self.wiring.critics() for s in self.wiring.net_layers(net)}
        self.target = copy.deepcopy({k: v for k, v in self.params.items() if k in critic_layers})
        self.theta = W.ones_theta(self.wiring, dtype)
        self.m_theta = {k: np.zeros_like(v) for k, v in self.theta.items()}      # first moment of ĝ_θ/L̄ (32)
        self.v_theta = {k: np.zeros_like(v) for k, v in self.theta.items()}      # second moment (37)
        self.t_theta = {net: 0 for net in self.wiring.nets()}                    # θ-steps taken per network
        self.opt = {net: adam_init({s.name: self.params[s.name] for s in self.wiring.net_layers(net)},
                                   getattr(cfg, "lr_" + self.wiring.role(net)))
                    for net in self.wiring.nets()}
        self.log_alpha = {"alpha": {"log_alpha": np.array([np.log(cfg.init_alpha)], dtype=dtype)}}
        self.opt_alpha = adam_init(self.log_alpha, cfg.lr_alpha)
        self.loss_scale = {net: None for net in self.wiring.nets()}
        self.cost_initial = float(W.cost(self.wiring, W.ones_theta(self.wiring)))
        self.dtype = dtype

    # ------------------------------------------------------------------ helpers
    @property
    def alpha(self):
        return float(np.exp(self.log_alpha["alpha"]["log_alpha"][0]))

    def specs(self, net):
        return self.wiring.net_layers(net)

    def gates(self, *nets):
        """Expected gates for the gated layers of `nets`: θ (Eq. 3) or θ̃ (Eq. 40), as `expected_gates` says."""
        out = {}
        for n in nets:
            out.update(xinet.expected_gates(self.specs(n), self.theta, self.knob(n, "eps_xi"), self.cfg.expected_gates))
        return out

    def features(self, obs, act=None):
        """Sources for the consumers: raw inputs, plus OFENet features when there is an OFENet."""
        if not self.cfg.ofenet:
            return {"obs": obs} if act is None else {"obs": obs, "act": act}
        return OF.features(self.wiring, self.params, self.stats, self.gates("ofenet"), obs, act, self.cfg.eps_bn)

    def policy(self, feats, eps):
        """Actor with expected gates: (a, log_pi) for noise eps (B, A)."""
        acts, _ = N.forward(self.specs("actor"), self.params, feats, self.gates("actor"))
        a, log_pi, _ = sac.tanh_gaussian(acts["actor/out"], eps, self.log_scale)
        return a, log_pi

    def act(self, obs, rng, deterministic=False):
        """Action in [−1, 1]^A for observations (B, O): tanh(μ) if deterministic (§8)."""
        feats = self.features(obs.astype(self.dtype))
        if deterministic:
            acts, _ = N.forward(self.specs("actor"), self.params, feats, self.gates("actor"))
            return np.tanh(acts["actor/out"][:, :self.act_dim])
        return self.policy(feats, rng.standard_normal((obs.shape[0], self.act_dim)).astype(self.dtype))[0]

    def q_values(self, params, feats, act):
        """(Q1, Q2) (B,) of critics with `params` (online or target), expected gates, at action act."""
        specs = OF.action_layers(self.wiring) if self.cfg.ofenet else ()
        specs += self.specs("critic1") + self.specs("critic2")
        inputs = OF.without_action_block(self.wiring, feats)
        inputs["act"] = act
        allp = {**self.params, **params}
        acts, cache = N.forward(specs, allp, inputs, self.gates("ofenet", "critic1", "critic2"), self.stats,
                                bn_train=False, eps_bn=self.cfg.eps_bn)
        return acts["critic1/out"][:, 0], acts["critic2/out"][:, 0], (specs, allp, cache)

    def knob(self, net, name):
        """Per-network value of `beta`, `eta_theta` or `eps_xi` (see `resolve_knob`)."""
        return resolve_knob(lambda field: getattr(self.cfg, field), self.wiring.role(net), name)

    # ------------------------------------------------------------------ one network's step
    def _step_net(self, net, mean_loss, grads, g_theta, update_theta):
        """Regulariser (Eq. 16–20), Adam on W (Eq. 31), evidence-gated θ-step (Eq. 37–39)."""
        cfg = self.cfg
        self.loss_scale[net] = xinet.update_loss_scale(self.loss_scale[net], mean_loss, cfg.loss_scale_rate)
        if cfg.gated:
            beta = self.knob(net, "beta")
            kappa = xinet.price(beta, self.loss_scale[net], self.cost_initial)
            grads, g_theta = xinet.add_regulariser(self.wiring, net, self.theta, self.params, grads, g_theta,
                                                   kappa, cfg.lam_w)
        adam_step(self.params, grads, self.opt[net])
        if cfg.gated and update_theta:
            scale, eta = max(self.loss_scale[net], 1e-12), self.knob(net, "eta_theta")
            self.t_theta[net] = self.t_theta.get(net, 0) + 1
            for spec in self.specs(net):
                if spec.gated:
                    name = spec.name
                    new, self.m_theta[name], self.v_theta[name] = theta_step(
                        self.theta[name], self.m_theta[name], self.v_theta[name], self.t_theta[net],
                        g_theta[name], scale, eta, cfg.mu_theta, cfg.k_theta, cfg.theta_scale)
                    floor = self.knob(net, "eps_xi")
                    self.theta[spec.name] = keep_last_units(new, self.theta[spec.name], spec.min_units, floor)

    def prune(self):
        """Remove every unit at θ = 0 from all containers (§7). Returns {layer: removed}."""
        layer_containers = [self.params, self.stats, self.target]
        layer_containers += [o.m for o in self.opt.values()] + [o.v for o in self.opt.values()]
        return prune_zero_units(self.wiring, self.theta, layer_containers, [self.m_theta, self.v_theta])

    # ------------------------------------------------------------------ OFENet, Eq. (8)
    def update_ofenet(self, batch, rng, update_theta=False):
        obs, act, _, obs_next, _ = batch
        specs, loss_fn, value_fn = self.specs("ofenet"), OF.aux_loss_fn(obs_next), None
        if (update_theta and self.cfg.gated and self.cfg.ofenet_value == "consumers"
                and all(self.loss_scale[c] is not None for c in CONSUMERS)):     # once every consumer has L̄_c
            eps = rng.standard_normal((obs.shape[0], self.act_dim)).astype(self.dtype)
            value_fn = consumers_value_fn(self, batch, self.td_target(batch, rng), eps, loss_fn)
        mean_loss, grads, g_theta, caches = xinet.gated_gradients(
            specs, self.params, {"obs": obs, "act": act}, self.theta, loss_fn, rng,
            self.cfg.baseline, self.knob("ofenet", "eps_xi"), self.stats, bn_train=True, eps_bn=self.cfg.eps_bn,
            theta_grad=update_theta, value_fn=value_fn)
        # running BN statistics follow the first mask draw's batch statistics (one EMA step per update)
        N.update_running_stats(specs, self.stats, caches[0], self.cfg.bn_momentum)
        self._step_net("ofenet", mean_loss, grads, g_theta, update_theta)
        return {"aux_loss": mean_loss}

    # ------------------------------------------------------------------ SAC, Eq. (10)–(14)
    def td_target(self, batch, rng):
        """y_i (B,) with target critics and the current actor at s′, expected gates.   Eq. (10)"""
        _, _, rew, obs_next, done = batch
        f_next = self.features(obs_next)
        eps = rng.standard_normal((obs_next.shape[0], self.act_dim)).astype(self.dtype)
        a_next, log_pi_next = self.policy(f_next, eps)
        q1_t, q2_t, _ = self.q_values(self.target, f_next, a_next)
        return sac.td_target(rew, done, q1_t, q2_t, log_pi_next, self.alpha, self.cfg.gamma)

    def update_sac(self, batch, rng, update_theta=False):
        cfg = self.cfg
        obs, act = batch[0], batch[1]
        B = obs.shape[0]
        y = self.td_target(batch, rng)                                 # Eq. (10)

        feats = self.features(obs, act)                                # z_o, z_oa (inference mode)
        out = {}
        for k in ("critic1", "critic2"):                               # Eq. (11)
            mean_loss, grads, g_theta, _ = xinet.gated_gradients(self.specs(k), self.params, feats, self.theta,
                                                                  critic_loss_fn(k, y), rng, cfg.baseline,
                                                                  self.knob(k, "eps_xi"), theta_grad=update_theta)
            self._step_net(k, mean_loss, grads, g_theta, update_theta)
            out[k + "_loss"] = mean_loss

        f_actor = {k: v for k, v in OF.without_action_block(self.wiring, feats).items() if k != "act"}
        eps = rng.standard_normal((B, self.act_dim)).astype(self.dtype)
        mean_loss, grads, g_theta, _ = xinet.gated_gradients(self.specs("actor"), self.params, f_actor, self.theta,
                                                              actor_loss_fn(self, f_actor, eps), rng,
                                                              cfg.baseline, self.knob("actor", "eps_xi"),
                                                              theta_grad=update_theta)
        self._step_net("actor", mean_loss, grads, g_theta, update_theta)
        out["actor_loss"] = mean_loss

        # α with the expected-gate policy at s_i (the α loss is not the actor's own loss)     Eq. (13)
        _, log_pi = self.policy(f_actor, rng.standard_normal((B, self.act_dim)).astype(self.dtype))
        la = self.log_alpha["alpha"]["log_alpha"]
        alpha_loss, g = sac.alpha_loss(float(la[0]), log_pi, -float(self.act_dim))
        out["alpha_loss"] = float(alpha_loss)
        adam_step(self.log_alpha, {"alpha": {"log_alpha": np.array([g], dtype=self.dtype)}}, self.opt_alpha)
        out["alpha"] = self.alpha
        out["entropy"] = -float(np.mean(log_pi))
        sac.polyak(self.target, self.params, cfg.tau)                   # Eq. (14)
        return out
