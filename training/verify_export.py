# Writes PyTorch reference inputs/outputs for an exported folder and runs verify_onnx.mjs on them, so the
# ONNX graphs are checked in onnxruntime-node (what the engine runs), including a non-square latent.
"""Usage: python3 training/verify_export.py [--ckpt training/checkpoints/easel.pt] [--out models/easel-shapes]"""
import argparse
import json
import os
import subprocess
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from export import load  # noqa: E402
from train import Tok  # noqa: E402


def t2j(x, dtype="float32"):
    return {"dtype": dtype, "shape": list(x.shape), "data": x.flatten().tolist()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoints", "easel.pt"))
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "easel-shapes"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    st, E, D, T, U = load(args.ckpt)
    tok = Tok(st["vocab"], [tuple(m) for m in st["merges"]])
    g = torch.Generator().manual_seed(0)
    cases = []
    with torch.no_grad():
        ids = torch.tensor([tok("two pink hearts at the top, zorblax transparent background"), tok("")], dtype=torch.int32)
        ctx = T(ids)
        cases.append({"graph": "text_encoder", "inputs": {"input_ids": t2j(ids, "int32")}, "output": "last_hidden_state",
                      "expected": t2j(ctx)})
        z = torch.randn(2, 8, 16, 28, generator=g)
        ts = torch.tensor([999.0, 321.0])
        cases.append({"graph": "unet", "inputs": {"sample": t2j(z), "timestep": t2j(ts), "encoder_hidden_states": t2j(ctx)},
                      "output": "out_sample", "expected": t2j(U(z, ts, ctx))})
        z1 = torch.randn(1, 8, 16, 24, generator=g)
        cases.append({"graph": "vae_decoder", "inputs": {"latent_sample": t2j(z1)}, "output": "sample",
                      "expected": t2j(D(z1).clamp(-1, 1))})
        x = torch.rand(1, 4, 256, 384, generator=g) * 2 - 1
        cases.append({"graph": "vae_encoder", "inputs": {"sample": t2j(x)}, "output": "latent_sample", "expected": t2j(E(x))})
    ref = "/tmp/easel_verify_ref.json"
    with open(ref, "w") as f:
        json.dump({"cases": cases}, f)
    r = subprocess.run(["node", os.path.join(HERE, "verify_onnx.mjs"), args.out, ref], cwd=ROOT)
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()
