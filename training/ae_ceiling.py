# The autoencoder's ceiling on the held-out set: each held-out scene rendered exactly (seeded layout), made
# into its exact latent (train.scene_latent) and drawn by the checkpoint's decoder, written as NNN.png. A
# denoiser can score no better than these do; score them with `npx tsx training/score_pngs.ts DIR`.
"""Usage: python3 training/ae_ceiling.py [--ckpt training/checkpoints/easel.pt] [--out /tmp/ae-ceiling] [--size 256]
    [--raw | --encoder]   (--raw: the exact renders, the scorer's own ceiling; --encoder: latent read by the encoder)"""
import argparse
import json
import os
import random
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scenes  # noqa: E402
from export import load  # noqa: E402
from train import scene_latent  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoints", "easel.pt"))
    ap.add_argument("--out", default="/tmp/ae-ceiling")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--raw", action="store_true", help="write the exact renders (the scorer's own ceiling)")
    ap.add_argument("--encoder", action="store_true", help="decode the encoder's latent of each render (edits' path)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    _st, E, D, _T, _U = load(args.ckpt)
    os.makedirs(args.out, exist_ok=True)
    items = json.load(open(os.path.join(HERE, "heldout.json")))["prompts"]
    for p in items:
        rng = random.Random(p["id"])
        img, code = scenes.render(p["expect"], args.size, args.size, rng, codes=True)
        if not args.raw:
            x = torch.from_numpy(img).permute(2, 0, 1)[None] * 2 - 1
            with torch.no_grad():
                z = E(x) if args.encoder else torch.from_numpy(scene_latent(img, code, 16))[None]
                img = (D(z).clamp(-1, 1)[0].permute(1, 2, 0).numpy() + 1) / 2
        scenes.to_png(img, os.path.join(args.out, f"{p['id']:03d}.png"))
    print(f"wrote {len(items)} round-trips to {args.out}")


if __name__ == "__main__":
    main()
