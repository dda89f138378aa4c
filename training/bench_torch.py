# PyTorch-eager reference timing for bench/engine: the same easel-shapes weights (training checkpoint), the same
# work (text encoder, `steps` CFG-batched UNet calls, VAE decode), timed in this process. Prints one JSON line.
"""Usage: /usr/bin/python3 training/bench_torch.py --steps 20 --latent 16x16 --runs 5 [--threads 2]"""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from export import load  # noqa: E402
from train import Tok, ddim_sample  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoints", "easel.pt"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--latent", default="16x16", help="latent h x w")
    ap.add_argument("--cfg", type=float, default=4.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    st, _E, D, T, U = load(args.ckpt)
    tok = Tok(st["vocab"], [tuple(m) for m in st["merges"]])
    h, w = (int(v) for v in args.latent.split("x"))
    prompt = ["a red circle and a blue square on a yellow background"]
    times = []
    with torch.no_grad():
        ddim_sample(U, T, D, tok, prompt, st["scaling_factor"], "cpu", h=h, w=w, steps=args.steps, cfg=args.cfg)
        for _ in range(args.runs):
            t = time.perf_counter()
            ddim_sample(U, T, D, tok, prompt, st["scaling_factor"], "cpu", h=h, w=w, steps=args.steps, cfg=args.cfg)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(json.dumps({"median_ms": times[len(times) // 2], "runs": len(times), "torch": torch.__version__, "threads": args.threads}))


if __name__ == "__main__":
    main()
