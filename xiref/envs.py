"""gymnasium environments: validation, seeding, action scaling and exact state capture (docs/METHOD.md §3)."""
import difflib

import numpy as np

from .errors import UserError  # noqa: F401 (re-exported: `from .envs import UserError` keeps working)

# the envs whose episode a checkpoint captures exactly, so that --resume continues mid-episode bit-identically
EXACT_ENVS = "MuJoCo envs and gymnasium's classic-control envs (Pendulum-v1, MountainCarContinuous-v0)"


def make_env(env_id, seed):
    """Make and seed env_id; Box action spaces only. Returns (env, scale (A,), bias (A,))."""
    import gymnasium as gym
    if seed < 0:                # gymnasium and numpy seed only with non-negative integers
        raise UserError(f"--seed must be >= 0, got {seed}")
    check_env_id(env_id)
    try:
        env = gym.make(env_id)
    except Exception as exc:  # missing simulator, bad spec …
        raise UserError(f"cannot create environment {env_id!r}: {exc}") from None
    space = env.action_space
    if not isinstance(space, gym.spaces.Box):
        raise UserError(f"{env_id} has a {type(space).__name__} action space; xiref's SAC needs a continuous Box")
    if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
        raise UserError(f"{env_id} needs a flat Box observation space, has {env.observation_space}")
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise UserError(f"{env_id} has an unbounded action space; the tanh policy needs finite bounds")
    env.action_space.seed(seed)
    scale = (space.high - space.low).astype(np.float64) / 2.0
    bias = (space.high + space.low).astype(np.float64) / 2.0
    return env, scale, bias


def check_env_id(env_id):
    """UserError unless env_id is registered in gymnasium (with the closest registered ids as a hint)."""
    import gymnasium as gym
    registry = list(gym.envs.registry.keys())
    if env_id not in registry:
        close = difflib.get_close_matches(env_id, registry, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"unknown environment id {env_id!r}{hint}")


def env_dims(env):
    return int(env.observation_space.shape[0]), int(env.action_space.shape[0])


def get_env_state(env):
    """Everything that determines the continuation of an episode: the step count, and the simulator state of a
    MuJoCo env ("mj_state") or the `state` array of a classic-control env ("classic_state"); other envs have
    neither (see `exact_state`)."""
    u = env.unwrapped
    limit = _time_limit(env)
    out = {"elapsed": np.array(getattr(limit, "_elapsed_steps", 0) or 0)}
    if _is_mujoco(u):
        import mujoco
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        st = np.empty(mujoco.mj_stateSize(u.model, spec))
        mujoco.mj_getState(u.model, u.data, st, spec)
        out["mj_state"] = st
    elif _is_classic_control(u):
        out["classic_state"] = np.array(u.state)
    return out


def exact_state(st):
    """True when env state `st` (get_env_state) restores an episode exactly."""
    return "mj_state" in st or "classic_state" in st


def set_env_state(env, st):
    u = env.unwrapped
    if "mj_state" in st:
        import mujoco
        mujoco.mj_setState(u.model, u.data, np.asarray(st["mj_state"]), mujoco.mjtState.mjSTATE_INTEGRATION)
    if "classic_state" in st:
        if np.shape(st["classic_state"]) != np.shape(u.state):
            raise ValueError(f"env state of shape {np.shape(st['classic_state'])}, this env's is {np.shape(u.state)}")
        u.state = np.array(st["classic_state"])
    _set_elapsed(env, int(st["elapsed"]))


def _is_mujoco(u):
    return hasattr(u, "model") and hasattr(u, "data")


def _is_classic_control(u):
    """gymnasium's classic-control envs keep their whole dynamic state in `state` (their steps draw no random
    numbers; a reset reseeds them)."""
    return type(u).__module__.startswith("gymnasium.envs.classic_control") and getattr(u, "state", None) is not None


def _set_elapsed(env, n):
    limit = _time_limit(env)
    if limit is not None:
        limit._elapsed_steps = n


def _time_limit(env):
    """The wrapper that counts the episode's steps (TimeLimit), however deep it sits; None without one."""
    e = env
    while e is not None:
        if hasattr(e, "_elapsed_steps"):
            return e
        e = getattr(e, "env", None)
    return None
