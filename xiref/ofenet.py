"""OFENet: DenseNet feature extractor trained by next-observation prediction (docs/METHOD.md §2, Eq. 5–8).

The layers themselves come from wiring.densenet_block / agent_wiring; this module holds what is
OFENet-specific: the prediction target, the auxiliary loss and the feature computation consumers use.
"""
import numpy as np

from . import network as N

# Choice (§2): T = the qpos+qvel part of the gymnasium v5 observation (its leading entries)
QPOS_QVEL_DIM = {"Hopper": 11, "Walker2d": 17, "HalfCheetah": 17, "Ant": 27, "Humanoid": 45}


def target_dim(env_id, obs_dim):
    """T for env_id ('Hopper-v5' -> 11); the full observation for other environments."""
    return min(QPOS_QVEL_DIM.get(env_id.split("-")[0], obs_dim), obs_dim)


def aux_loss(o_hat, o_next):
    """ℓ^aux_i = (1/T) ‖ô_i − o′_{i,1:T}‖² and d[(1/B) Σ ℓ]/dô.   Eq. (8)

    o_hat (B, T) from the head (Eq. 7), o_next (B, O). Returns (ell (B,), d_o_hat (B, T)).
    """
    B, T = o_hat.shape
    r = o_hat - o_next[:, :T]
    return np.sum(r * r, axis=1) / T, (2.0 / (B * T)) * r


def aux_loss_fn(o_next):
    """loss_fn for xinet.gated_gradients: reads the head's output."""
    def loss_fn(acts):
        ell, d = aux_loss(acts["ofenet/head"], o_next)
        return ell, {"ofenet/head": d}
    return loss_fn


def state_layers(wiring):
    """The state block's layers (z_o, Eq. 5), as the wiring's `block` field marks them."""
    return tuple(s for s in wiring.net_layers("ofenet") if s.block == "state")


def action_layers(wiring):
    """The action block's layers (z_oa, Eq. 6), as the wiring's `block` field marks them."""
    return tuple(s for s in wiring.net_layers("ofenet") if s.block == "action")


def without_action_block(wiring, feats):
    """feats without OFENet's action-block units (z_oa, Eq. 6), as the wiring's `block` field marks them."""
    action = {s.name for s in action_layers(wiring)}
    return {k: v for k, v in feats.items() if k not in action}


def features(wiring, params, stats, theta, obs, act=None, eps_bn=1e-3):
    """Inference-mode features for consumers: BN running averages, expected gates `theta` (θ, Eq. 3, or θ̃, Eq. 40).

    Returns acts with 'obs', the state-block units (z_o, Eq. 5) and, when act is given, 'act' and the
    action-block units (z_oa, Eq. 6). Consumers name the sources they read (wiring).
    """
    specs = state_layers(wiring) + (action_layers(wiring) if act is not None else ())
    inputs = {"obs": obs} if act is None else {"obs": obs, "act": act}
    gates = {s.name: theta[s.name] for s in specs if s.gated}
    acts, _ = N.forward(specs, params, inputs, gates, stats, bn_train=False, eps_bn=eps_bn)
    return acts
