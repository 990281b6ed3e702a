"""gymnasium environments: validation, seeding, action scaling and exact state capture (docs/METHOD.md §3)."""
import difflib

import numpy as np


class UserError(Exception):
    """A problem with the user's input: reported as one line, non-zero exit, no traceback."""


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
    """Everything that determines the continuation of a MuJoCo episode: simulator state and step count."""
    import mujoco
    u = env.unwrapped
    limit = _time_limit(env)
    out = {"elapsed": np.array(getattr(limit, "_elapsed_steps", 0) or 0)}
    if hasattr(u, "model") and hasattr(u, "data"):
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        st = np.empty(mujoco.mj_stateSize(u.model, spec))
        mujoco.mj_getState(u.model, u.data, st, spec)
        out["mj_state"] = st
    return out


def set_env_state(env, st):
    import mujoco
    u = env.unwrapped
    if "mj_state" in st:
        mujoco.mj_setState(u.model, u.data, np.asarray(st["mj_state"]), mujoco.mjtState.mjSTATE_INTEGRATION)
    _set_elapsed(env, int(st["elapsed"]))


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
