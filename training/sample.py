# Samples the easel-shapes checkpoint in PyTorch: writes PNGs for given prompts and computes a quick
# adherence proxy on heldout.json (background + object colour at its place; shape is not checked).
"""Usage:
  python3 training/sample.py --prompts "a red star on a blue background" ... --out /tmp/samples
  python3 training/sample.py --heldout 100 [--steps 16] [--cfg 4]

The proxy is deliberately simple and is NOT the project's scorer: background right = median border
colour within 40 (sRGB units) of the expected colour (alpha < 0.5 for transparent; top and bottom rows
for gradients); an object with a named place is right when >= 35% of its expected disc shows its colour
(within 60); an object placed anywhere is right when its colour covers >= 35% of its expected area;
for same-kind groups the colour must cover that times the count.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scenes  # noqa: E402
from export import load  # noqa: E402
from train import Tok, ddim_sample  # noqa: E402


def to01(img):
    return ((img.permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1)


def near(px, rgb, tol):
    return np.abs(px[..., :3] * 255 - np.asarray(rgb)).max(-1) < tol


def check(img, spec):
    H, W = img.shape[:2]
    S = min(H, W)
    bg = spec["background"]
    border = np.concatenate([img[:3].reshape(-1, 4), img[-3:].reshape(-1, 4), img[:, :3].reshape(-1, 4), img[:, -3:].reshape(-1, 4)])
    if bg["kind"] == "transparent":
        bg_ok = np.median(border[:, 3]) < 0.5
    elif bg["kind"] == "solid":
        bg_ok = np.median(border[:, 3]) > 0.5 and near(np.median(border, 0), scenes.PALETTE[bg["color"]], 40)
    else:
        top, bot = np.median(img[:2].reshape(-1, 4), 0), np.median(img[-2:].reshape(-1, 4), 0)
        bg_ok = near(top, scenes.PALETTE[bg["from"]], 60) and near(bot, scenes.PALETTE[bg["to"]], 60)
    obj_ok = True
    counted = {}
    for o in spec["objects"]:
        r = scenes.SIZES[o["size"]] * S / 2
        mask_c = near(img, scenes.PALETTE[o["color"]], 60) & (img[..., 3] > 0.5)
        if o["position"] is not None:
            col, row = scenes.pos_index(o["position"])
            cy, cx = scenes.POS_Y[row] * H, scenes.POS_X[col] * W
            yy, xx = np.mgrid[0:H, 0:W]
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 < (0.8 * r) ** 2
            obj_ok &= mask_c[disc].mean() >= 0.35
        else:
            key = (o["color"], o["size"])
            counted[key] = counted.get(key, 0) + 1
            obj_ok &= mask_c.sum() >= 0.35 * np.pi * r * r * 0.6 * counted[key]
    return bool(bg_ok), bool(obj_ok)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoints", "easel.pt"))
    ap.add_argument("--prompts", nargs="*", default=[])
    ap.add_argument("--heldout", type=int, default=0)
    ap.add_argument("--out", default="/tmp/easel_samples")
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--cfg", type=float, default=4.0)
    ap.add_argument("--size", default="16x16", help="latent h x w")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    st, E, D, T, U = load(args.ckpt)
    tok = Tok(st["vocab"], [tuple(m) for m in st["merges"]])
    sf = st["scaling_factor"]
    h, w = map(int, args.size.split("x"))
    os.makedirs(args.out, exist_ok=True)
    if args.prompts:
        imgs = ddim_sample(U, T, D, tok, args.prompts, sf, "cpu", h, w, args.steps, args.cfg, args.seed)
        for i, im in enumerate(imgs):
            scenes.to_png(to01(im), os.path.join(args.out, f"sample_{i}.png"))
        print(f"wrote {len(imgs)} PNGs to {args.out}")
    if args.heldout:
        items = json.load(open(os.path.join(HERE, "heldout.json")))["prompts"][: args.heldout]
        res = {}
        n_bg = n_all = 0
        for i in range(0, len(items), 10):
            chunk = items[i:i + 10]
            imgs = ddim_sample(U, T, D, tok, [it["prompt"] for it in chunk], sf, "cpu", h, w, args.steps, args.cfg, args.seed)
            for it, im in zip(chunk, imgs):
                a = to01(im)
                bg_ok, obj_ok = check(a, it["expect"])
                n_bg += bg_ok
                n_all += bg_ok and obj_ok
                c = res.setdefault(it["category"], [0, 0])
                c[0] += bg_ok and obj_ok
                c[1] += 1
                if it["id"] <= 12:
                    scenes.to_png(a, os.path.join(args.out, f"heldout_{it['id']:03d}.png"))
        print(f"proxy: background right {n_bg}/{len(items)}, all right {n_all}/{len(items)}; by category "
              + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in res.items()))


if __name__ == "__main__":
    main()
