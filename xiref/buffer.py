"""Replay buffer over preallocated arrays (docs/METHOD.md §3, §8)."""
import numpy as np


class ReplayBuffer:
    """FIFO storage of (o, a, r, o′, d); a in tanh space [−1, 1]^A, d = 1 only on termination."""

    def __init__(self, obs_dim, act_dim, capacity, dtype=np.float64):
        self.capacity, self.size, self.pos = int(capacity), 0, 0
        self.obs = np.zeros((self.capacity, obs_dim), dtype=dtype)        # (N, O)
        self.act = np.zeros((self.capacity, act_dim), dtype=dtype)        # (N, A)
        self.rew = np.zeros(self.capacity, dtype=dtype)                   # (N,)
        self.obs_next = np.zeros((self.capacity, obs_dim), dtype=dtype)   # (N, O)
        self.done = np.zeros(self.capacity, dtype=dtype)                  # (N,)

    def add(self, o, a, r, o_next, d):
        i = self.pos
        self.obs[i], self.act[i], self.rew[i], self.obs_next[i], self.done[i] = o, a, r, o_next, d
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, rng, batch):
        """Uniform indices from the explicit generator; returns (o, a, r, o′, d)."""
        idx = rng.integers(0, self.size, size=batch)
        return self.obs[idx], self.act[idx], self.rew[idx], self.obs_next[idx], self.done[idx]

    def state(self):
        """Arrays and counters for a checkpoint (only the filled part is stored)."""
        n = self.size
        return {"obs": self.obs[:n], "act": self.act[:n], "rew": self.rew[:n], "obs_next": self.obs_next[:n],
                "done": self.done[:n], "pos": np.array(self.pos), "size": np.array(n),
                "capacity": np.array(self.capacity)}

    def load(self, st):
        if int(st["capacity"]) != self.capacity:
            raise ValueError(f"buffer state of capacity {int(st['capacity'])} cannot load into capacity {self.capacity}")
        n = int(st["size"])
        for k in ("obs", "act", "rew", "obs_next", "done"):
            getattr(self, k)[:n] = st[k]
        self.size, self.pos = n, int(st["pos"])
