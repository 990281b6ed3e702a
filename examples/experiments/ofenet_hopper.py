"""SAC + OFENet (Eq. 5–8, no gates) on Hopper-v5 with the paper's defaults: OFENet 6×40 DenseNet layers
per block, swish, BN, 256×256 actor/critics, 5 000 random steps, 10 000 OFENet pre-training updates.

    python examples/experiments/ofenet_hopper.py [--seed 0] [--steps 100000] [--method ofe|sac]

Runtime: ≈ 45 min per 100 000 steps on one core in float32 (sac alone ≈ 20 min).
Expected result: see docs/RESULTS.md and examples/results/Hopper-v5/ (3 seeds each of sac and ofe,
made by `python examples/experiments/campaign.py --envs Hopper-v5 --methods sac,ofe --seeds 0,1,2 --steps 100000`).
"""
import argparse
import sys

from xiref.cli import main

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--method", default="ofe", choices=("ofe", "sac"))
    args = ap.parse_args()
    sys.exit(main(["train", "--env", "Hopper-v5", "--method", args.method, "--steps", str(args.steps),
                   "--seed", str(args.seed), "--dtype", "float32",
                   "--out", f"runs/{args.method}_hopper/seed{args.seed}", "--overwrite"]))
