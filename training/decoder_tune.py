# Fine-tunes the decoder so it draws a full, sharp outline from the inexact coverage patterns the denoiser makes,
# not only from the exact latents of rendered scenes.
"""Usage: python3 training/decoder_tune.py [--ckpt training/checkpoints/easel.pt] [--out CKPT] [--minutes 25]
    [--source smear|sdedit] [--smear 0.8] [--scenes 4000] [--lr 2e-4] [--seed 20261201]
    sdedit only: [--t-min 180] [--t-max 700] [--steps 16] [--guidance 1.5] [--max-drift 0.6]

Why: the decoder learnt to draw from latents made from rendered scenes (plus Gaussian noise). A small star is
about 2 latent pixels wide, and the decoder reads its outline from the exact way its coverage spreads over
those pixels. The denoiser gets the colour, the shape code and the total coverage right (measured: the code
points at the star, the coverage mass matches), but the spread is not one a render would make, so the decoder
drew a blunt star at 0.6x its size, which the scorer reads as a cross, diamond or circle.

Two sources of training latents, each paired with the exact full-size render as the target:
- smear (default, used by the shipped model): the exact latent of each scene blurred by a Gaussian of random
  sigma up to --smear latent pixels. Blur keeps each object's coverage mass and centre (so its size and place)
  and the direction of its shape code, and takes away the exact pattern, so the decoder learns to draw the
  outline from what the denoiser does get right. It does not read the denoiser at all.
- sdedit: the denoiser's own latents. Each scene's latent is noised to a timestep of the --steps schedule in
  [--t-min, --t-max] and the checkpoint's denoiser (EMA weights, the scene's caption, guidance) finishes the
  sampling from there (deterministic DDIM = Euler on the probability-flow ODE, trailing spacing). Pairs whose
  layout moved (the 3x3 mean of the colour channels' L1 change above --max-drift somewhere) are dropped. Tried
  for the shipped model and not used: it did not sharpen the stars (started that low, the denoiser reproduces
  the exact pattern) and it scored lower (MODEL.md).

Training scenes come from scenes.sample (never a held-out pair or placement). The decoder trains with the usual
L1 on crops centred on detail (train.ae_step): half the crops from these latents, half from the exact latents
of the full-size renders, so it keeps drawing exact latents (edits) as before. Encoder, text encoder and UNet are
unchanged. Writes the checkpoint with the tuned decoder and a `dec_tune` record (the model card lists it) to
--out (default: in place). A later train.py resume keeps training the decoder on exact latents; run this after.
"""
import argparse
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scenes  # noqa: E402
from export import load  # noqa: E402
from train import Tok, ae_scene, ae_step, ae_tensors, ddim_steps, half_sd, log, save, trailing_timesteps  # noqa: E402
from model import cosine_alphas_cumprod  # noqa: E402


def make_scenes(rng, n, size=256):
    """n training scenes: captions, and as train.ae_data: RGBA renders [-1, 1] at size and size/4 (same layout), the
    latent made from each render (x16 of the big one, x4 of the small one: the denoiser was trained on the latter)."""
    caps, parts = [], []
    for _ in range(n):
        cap, spec = scenes.sample(rng)
        caps.append(cap)
        parts.append(ae_scene(rng, spec, size))
    return (caps, *ae_tensors(*zip(*parts)))


@torch.no_grad()
def finish_sampling(U, T, tok, caps, z0, sf, start, steps, cfg, gen):
    """Noise the latents z0 (unscaled) to trailing_timesteps(steps)[start] and run the sampler from there to t = 0
    with the captions and guidance; returns the denoiser's latents (unscaled)."""
    ts = trailing_timesteps(steps)[start:]
    cond = T(torch.tensor([tok(c) for c in caps]))
    unc = T(torch.tensor([tok("")] * len(caps)))
    a = cosine_alphas_cumprod()[ts[0]]
    z = a.sqrt() * z0 * sf + (1 - a).sqrt() * torch.randn(z0.shape, generator=gen)
    return ddim_steps(U, cond, unc, z, ts, cfg) / sf


def sdedit_pairs(args, U, T, tok, caps, zs, sf):
    """The denoiser's latents for the scenes (finish_sampling from a random start in [t_min, t_max]) and which
    pairs to keep (layout unchanged)."""
    starts = [i for i, t in enumerate(trailing_timesteps(args.steps)) if args.t_min <= t <= args.t_max]
    if not starts:
        sys.exit(f"no timestep of the {args.steps}-step schedule lies in [{args.t_min}, {args.t_max}]")
    gen = torch.Generator().manual_seed(args.seed)
    pick = random.Random(args.seed + 1)
    zhat = torch.empty_like(zs)
    t0 = time.time()
    for b in range(0, len(caps), args.batch):
        sl = slice(b, b + args.batch)
        zhat[sl] = finish_sampling(U, T, tok, caps[sl], zs[sl], sf, pick.choice(starts), args.steps, args.guidance, gen)
    diff = (zhat[:, :4] - zs[:, :4]).abs().sum(1, keepdim=True)  # colour L1 per latent pixel
    drift = F.avg_pool2d(diff, 3, 1, 1).flatten(1).max(1).values  # over 3x3: edges that moved a little don't count
    keep = drift <= args.max_drift
    q = torch.quantile(drift, torch.tensor([0.5, 0.9, 0.99])).tolist()
    log(f"denoised {len(caps)} latents in {time.time() - t0:.0f}s; colour drift (max 3x3 mean): median "
        f"{q[0]:.3f}, 90% {q[1]:.3f}, 99% {q[2]:.3f}; kept {int(keep.sum())} (drift <= {args.max_drift})")
    return zhat, keep


def smear(z, sigma_max, gen):
    """Each latent blurred by a normalised 5x5 Gaussian of its own sigma ~ U(0, sigma_max) latent pixels: the
    coverage keeps its mass and centre but loses the exact pattern the decoder could read the outline from."""
    out = torch.empty_like(z)
    x = torch.arange(-2, 3, dtype=torch.float32)
    for i in range(z.shape[0]):
        sigma = float(torch.rand(1, generator=gen)) * sigma_max + 1e-3
        k1 = torch.exp(-0.5 * (x / sigma) ** 2)
        k = (k1[:, None] * k1[None, :]) / k1.sum() ** 2
        w = k.expand(z.shape[1], 1, 5, 5)
        out[i] = F.conv2d(F.pad(z[i:i + 1], (2, 2, 2, 2), mode="replicate"), w, groups=z.shape[1])[0]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoints", "easel.pt"))
    ap.add_argument("--out", default=None, help="checkpoint to write (default: --ckpt, in place)")
    ap.add_argument("--minutes", type=float, default=25.0, help="decoder training time (after making the pairs)")
    ap.add_argument("--scenes", type=int, default=4000)
    ap.add_argument("--source", choices=["smear", "sdedit"], default="smear",
                    help="smear: exact latents blurred (see smear); sdedit: the denoiser's own latents")
    ap.add_argument("--smear", type=float, default=0.8, help="largest blur sigma of --source smear (latent pixels)")
    ap.add_argument("--t-min", type=int, default=180, help="lowest start timestep (of 1000)")
    ap.add_argument("--t-max", type=int, default=700, help="highest start timestep (of 1000)")
    ap.add_argument("--steps", type=int, default=16, help="sampler steps of the schedule (16 = the medium preset)")
    ap.add_argument("--guidance", type=float, default=1.5)
    ap.add_argument("--max-drift", type=float, default=0.6,
                    help="drop a pair when the colour channels moved more than this somewhere (L1 over 4 channels in [-1, 1] units, "
                         "3x3 mean)")
    ap.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (50-step warm-up, cosine to 5%%)")
    ap.add_argument("--noise", type=float, default=0.05, help="latent noise augmentation (as train.ae_step)")
    ap.add_argument("--batch", type=int, default=64, help="scenes per sampling batch")
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args()
    out = args.out or args.ckpt
    torch.set_num_threads(int(os.environ.get("EASEL_THREADS", "2")))
    torch.manual_seed(args.seed)
    st, _E, D, T, U = load(args.ckpt)
    tok = Tok(st["vocab"], st["merges"])
    sf = float(st["scaling_factor"])

    t0 = time.time()
    caps, big, small, zb, zs = make_scenes(random.Random(args.seed), args.scenes)
    log(f"rendered {len(caps)} scenes in {time.time() - t0:.0f}s")
    if args.source == "smear":
        zhat = smear(zs, args.smear, torch.Generator().manual_seed(args.seed))
        keep = torch.ones(len(caps), dtype=torch.bool)
        log(f"smeared {len(caps)} latents (Gaussian, sigma up to {args.smear} latent pixels)")
    else:
        zhat, keep = sdedit_pairs(args, U, T, tok, caps, zs, sf)
    # ae_step draws half its crops from data[3] (the smeared or denoised latents) and half from data[2] (exact x16)
    data = (big[keep], small[keep], zb[keep], zhat[keep])

    dev = "cuda" if torch.cuda.is_available() else "cpu"  # the decoder trains on the GPU when there is one
    D.to(dev)
    opt = torch.optim.AdamW(D.parameters(), args.lr, weight_decay=0.0)
    D.train()
    step, t0, losses = 0, time.time(), []
    while time.time() - t0 < args.minutes * 60:
        frac = (time.time() - t0) / (args.minutes * 60)
        lr = args.lr * min(1.0, (step + 1) / 50) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        losses.append(ae_step(None, D, data, opt, lr, dev, train_encoder=False, noise=args.noise))
        step += 1
        if step % 100 == 0:
            log(f"decoder tune step {step} loss {np.mean(losses[-100:]):.4f}")
    D.eval()
    st["dec"] = half_sd(D)
    st["dec_tune"] = dict(source=args.source, smear=args.smear, minutes=args.minutes, steps=step, scenes=len(caps), kept=int(keep.sum()),
                          t_min=args.t_min, t_max=args.t_max, sampler_steps=args.steps, guidance=args.guidance,
                          max_drift=args.max_drift, lr=args.lr, noise=args.noise, seed=args.seed,
                          base_dec_steps=st.get("dec_steps", 0))
    save(out, st)


if __name__ == "__main__":
    main()
