"""Plain SAC (Eq. 9–14) on InvertedPendulum-v5 — the smallest check that the RL loop learns.

    python examples/sac_inverted_pendulum.py [--seed 0] [--out examples/results/InvertedPendulum-v5/sac/seed0]

Runtime: ≈ 5 min on one core (float32, 256×256 networks, 20 000 steps, 15 000 updates).
Expected result: evaluation return 1000 (the maximum) by 16 000–18 000 steps; committed runs for seeds
0–2 are in examples/results/InvertedPendulum-v5/sac/ (curves: ../sac_curves.png).
"""
import argparse
import sys

from xiref.cli import main

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    out = args.out or f"runs/sac_inverted_pendulum/seed{args.seed}"
    sys.exit(main(["train", "--env", "InvertedPendulum-v5", "--method", "sac", "--steps", "20000",
                   "--seed", str(args.seed), "--eval-every", "2000", "--eval-episodes", "5",
                   "--dtype", "float32", "--out", out, "--overwrite"]))
