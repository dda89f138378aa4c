# Averages the denoiser and text-encoder weights of two checkpoints of the same training run (a "model soup"):
# two EMA snapshots some thousand steps apart, averaged, make fewer one-off mistakes than either alone.
"""Usage: python3 training/average.py A.pt B.pt --out OUT.pt [--weight 0.5]

OUT gets (1 - w) * A + w * B for the UNet and text encoder (the EMA weights, which are what export.py ships; the
training weights are set to the same average so a resume starts from it), B's step count, run history,
loss log and text auxiliary head, and A's autoencoder (encoder and decoder). The last run in B's history
gets a note saying what was averaged. Both must have the same architecture (same unet_config and vocabulary).
"""
import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from train import save  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--out", required=True)
    ap.add_argument("--weight", type=float, default=0.5, help="weight of B")
    args = ap.parse_args()
    a = torch.load(args.a, map_location="cpu", weights_only=False)
    b = torch.load(args.b, map_location="cpu", weights_only=False)
    if a.get("unet_config") != b.get("unet_config") or a["vocab"] != b["vocab"]:
        sys.exit("the checkpoints differ in architecture or vocabulary: not one training run")
    w = args.weight
    out = dict(b)
    for key in ("unet_ema", "text_ema"):
        avg = {n: (1 - w) * a[key][n].float() + w * b[key][n].float() for n in b[key]}
        out[key] = {n: t.to(b[key][n].dtype) for n, t in avg.items()}
        raw = key.replace("_ema", "")
        out[raw] = {n: t.to(b[raw][n].dtype) for n, t in avg.items()}
    for key in ("enc", "dec", "dec_steps", "ae_steps", "ae_minutes", "ae_version", "scaling_factor", "dec_tune"):
        if key in a:
            out[key] = a[key]
        else:
            out.pop(key, None)
    note = f"exported averaged with step {a['step']:,} (weight {1 - w:g}) by training/average.py"
    runs = [dict(r) for r in b.get("runs", [])]
    if runs:
        runs[-1]["note"] = (runs[-1]["note"] + "; " + note) if runs[-1].get("note") else note
    out["runs"] = runs
    out["averaged"] = dict(a_step=a["step"], b_step=b["step"], weight_b=w)
    save(args.out, out)


if __name__ == "__main__":
    main()
