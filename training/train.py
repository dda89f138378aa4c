# Trains the easel-shapes model from scratch or resumes it: tokenizer, RGBA autoencoder, then the text
# encoder + latent UNet; one checkpoint file, replaced in place, written every few minutes and on SIGTERM.
"""Usage: python3 training/train.py [--ckpt training/checkpoints/easel.pt] [--ae-minutes 7] [--dn-minutes 120]

Runs on CPU (Debian python3-torch; 2 threads) or CUDA when available. Time budgets are wall-clock
minutes per stage so the same command fits a CPU session; `--dn-minutes` counts total denoiser time
across resumes. Logs go to training/runs/ (loss every 50 steps, preview PNG grids every checkpoint).
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import random
import signal
import sys
import time
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bpe  # noqa: E402
import scenes  # noqa: E402
from model import (Decoder, Encoder, TextAux, TextEncoder, UNet, cosine_alphas_cumprod, n_params)  # noqa: E402

BUCKETS = [((16, 16), 0.5), ((16, 24), 0.125), ((24, 16), 0.125), ((16, 28), 0.125), ((28, 16), 0.125)]  # (h, w)
VOCAB_SIZE = 1100

STOP = False


def _on_term(*_):
    global STOP
    STOP = True


class Tok:
    """Fast CLIP-style encoding with the project's BPE (bpe.py), caching per word."""

    def __init__(self, vocab, merges):
        self.vocab, self.merges = vocab, merges
        self.ranks = {tuple(m): i for i, m in enumerate(merges)}
        self.bos, self.eos = vocab[bpe.BOS_TOKEN], vocab[bpe.EOS_TOKEN]
        self._word = lru_cache(maxsize=100000)(lambda w: [vocab[p] for p in bpe.bpe_word(w, self.ranks)])

    def __call__(self, text, L=77):
        ids = []
        for w in bpe.pretokenize(text):
            ids.extend(self._word(w))
        ids = [self.bos] + ids[: L - 2] + [self.eos]
        return ids + [self.eos] * (L - len(ids))

    def words(self, words, L=77):
        """Labelled caption words (scenes.caption_words) -> (ids, slots). ids equal self(text) of the joined
        words; slots[i] is 1 + g for the tokens of group g's phrase, 4 for the background phrase's, 0 for BOS,
        EOS, joining and distractor tokens, and -1 for the padding after the EOS."""
        ids, slots = [], []
        for w, lab in words:
            slot = 0 if lab is None else (4 if lab[0] == "bg" else 1 + lab[1])
            for p in bpe.pretokenize(w):
                t = self._word(p)
                ids.extend(t)
                slots.extend([slot] * len(t))
        ids = [self.bos] + ids[: L - 2] + [self.eos]
        slots = [0] + slots[: L - 2] + [0]
        pad = L - len(ids)
        return ids + [self.eos] * pad, slots + [-1] * pad


SLOT_BG = 4
N_ATTRS = 18  # per group g < 3: colour, shape, size, position (9 = anywhere), count - 1 at 5g..5g+4; 15-17 background
BG_KINDS = ["solid", "gradient", "transparent"]


def spec_attrs(spec, groups):
    """The auxiliary targets of one scene (int list of N_ATTRS, -1 = not applicable): every phrase group's object
    and the background's kind, top colour and bottom colour (both the colour of a solid one)."""
    a = [-1] * N_ATTRS
    for g, idx in enumerate(groups):
        o = spec["objects"][idx[0]]
        a[5 * g:5 * g + 5] = [scenes.COLORS.index(o["color"]), scenes.SHAPES.index(o["shape"]),
                              ["small", "medium", "large"].index(o["size"]),
                              9 if o["position"] is None else scenes.POSITIONS.index(o["position"]), len(idx) - 1]
    bg = spec["background"]
    top = bottom = -1
    if bg["kind"] == "solid":
        top = bottom = scenes.COLORS.index(bg["color"])
    elif bg["kind"] == "gradient":
        top, bottom = scenes.COLORS.index(bg["from"]), scenes.COLORS.index(bg["to"])
    a[15:18] = [BG_KINDS.index(bg["kind"]), top, bottom]
    return a


def aux_loss(head, h, slots, attrs):
    """The text encoder's auxiliary loss: cross-entropy of TextAux's read-outs of the text states h [B, L, D]
    against each token's role and, for object and background tokens, the attributes of what the token
    describes (slots [B, L] from Tok.words, attrs [B, N_ATTRS] from spec_attrs), summed over the heads."""
    B = h.shape[0]
    slots, attrs = slots.long(), attrs.long()
    role = torch.where(slots < 0, -1, torch.where(slots == 0, 0, torch.where(slots == SLOT_BG, 2, 1)))
    loss = F.cross_entropy(head.role(h).flatten(0, 1), role.flatten(), ignore_index=-1)
    for mask, heads, targets in (
            ((slots >= 1) & (slots <= 3), head.obj, lambda b, s: attrs[:, :15].view(B, 3, 5)[b, s - 1]),
            (slots == SLOT_BG, head.bg, lambda b, s: attrs[b, 15:18])):
        if not mask.any():
            continue
        b = torch.nonzero(mask)[:, 0]
        hs, tg = h[mask], targets(b, slots[mask])
        for j, lin in enumerate(heads.values()):
            if (tg[:, j] >= 0).any():
                loss = loss + F.cross_entropy(lin(hs), tg[:, j], ignore_index=-1)
    return loss


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def save(path, state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)
    log(f"checkpoint saved {path} ({os.path.getsize(path) / 1e6:.1f} MB)")


def half_sd(m):
    return {k: v.detach().cpu().half() for k, v in m.state_dict().items()}


def load_sd(m, sd):
    m.load_state_dict({k: v.float() for k, v in sd.items()})


# ------------------------------------------------------------------------------------------ stage 1: AE

def pool_hw(a, k):
    """Area-downsample [..., H, W, C] numpy by k."""
    h, w, c = a.shape[-3:]
    return a.reshape(*a.shape[:-3], h // k, k, w // k, k, c).mean((-4, -2))


def scene_latent(rgba01, code, k):
    """The autoencoder's latent of a rendered scene (unscaled, [8, h/k, w/k]): the straight-alpha RGBA in
    [-1, 1] and the shape-code image (scenes.render(codes=True)), both area-averaged by k. This is what the
    denoiser learns to generate and what the decoder is trained to draw from; the encoder learns to read it
    back from pixels (it is exact for channels 0-3)."""
    z = np.concatenate([pool_hw(rgba01 * 2 - 1, k), pool_hw(code, k)], -1)
    return np.ascontiguousarray(np.moveaxis(z, -1, -3)).astype(np.float32)


def ae_scene(rng, spec, size=256):
    """One scene rendered at size and size/4 with the same layout -> (RGBA [0, 1] big, small, latent made from the big
    render (x16), latent made from the small one (x4: what the denoiser learns))."""
    pl = scenes.layout(spec, size, size, rng)
    b, cb = scenes.render(spec, size, size, rng, pl, codes=True)
    s, cs = scenes.render(spec, size // 4, size // 4, rng, [(x / 4, y / 4, r / 4) for x, y, r in pl], codes=True)
    return b, s, scene_latent(b, cb, 16), scene_latent(s, cs, 4)


def ae_tensors(big, small, zb, zs):
    """Lists from ae_scene -> (big, small) as [N, 4, H, W] tensors in [-1, 1] and the latents as tensors."""
    to_t = lambda a: torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).contiguous() * 2 - 1
    return to_t(big), to_t(small), torch.from_numpy(np.stack(zb)), torch.from_numpy(np.stack(zs))


def ae_data(rng, n, size=256):
    """n scenes: RGBA [-1, 1] at size and size/4, and the latents made from each (scene_latent)."""
    parts = [ae_scene(rng, scenes.sample(rng)[1], size) for _ in range(n)]
    return ae_tensors(*zip(*parts))


def _ae_chunk(job):
    seed, k = job
    return ae_data(random.Random(seed), k)


def ae_data_parallel(seed, n, workers, chunk=250):
    """ae_data in seeded chunks across processes (the same scenes with any number of workers)."""
    jobs = [(seed * 7919 + c, min(chunk, n - c * chunk)) for c in range((n + chunk - 1) // chunk)]
    if workers > 1:
        import multiprocessing as mp
        with mp.get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_ae_chunk, jobs)
    else:
        parts = [_ae_chunk(j) for j in jobs]
    return tuple(torch.cat([p[i] for p in parts]) for i in range(4))


def train_ae(E, D, dev, minutes, seed, runs, n_data=3000, lr0=1e-3, cosine=False, workers=None, B=16, noise=0.1):
    """Trains the decoder (latent -> RGBA) and the encoder (pixels -> latent) (from scratch, or on from their
    current weights) for `minutes`. Both learn from the latents made from the scenes (scene_latent).

    workers=None: one seeded stream of scenes (the from-scratch recipe); else seeded chunks rendered by that
    many processes (the same scenes for any number)."""
    torch.manual_seed(seed)
    t0 = time.time()
    data = ae_data(random.Random(seed), n_data) if workers is None else ae_data_parallel(seed, n_data, workers)
    big, small, _, zs = data
    log(f"AE data: {big.shape[0]} scenes in {time.time() - t0:.0f}s")
    params = list(E.parameters()) + list(D.parameters())
    opt = torch.optim.AdamW(params, lr0, weight_decay=0.0)
    E.train()
    D.train()
    step, t0 = 0, time.time()
    while time.time() - t0 < minutes * 60 and not STOP:
        frac = (time.time() - t0) / (minutes * 60)
        decay = 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)) if cosine else (0.3 if frac > 0.75 else 1.0)
        lr = lr0 * min(1.0, (step + 1) / 50) * decay
        loss = ae_step(E, D, data, opt, lr, dev, train_encoder=True, B=B, noise=noise)
        if step % 50 == 0:
            log(f"ae step {step} loss {loss:.4f}")
        step += 1
    with torch.no_grad():
        rec = D(zs[:8].to(dev))
        err = (rec - big[:8].to(dev)).abs().mean().item()
        enc = (E.forward_pooled(small[:256].to(dev)) - zs[:256].to(dev))[:, 4:].abs().mean().item()
    sf = 1.0 / zs.std().item()
    log(f"AE done: {step} steps, latent std {zs.std().item():.3f} (per channel "
        f"{[round(v, 3) for v in zs.std((0, 2, 3)).tolist()]}) -> scaling_factor {sf:.4f}, decoder L1 {err:.4f}, "
        f"encoder code L1 {enc:.4f}")
    grid = torch.cat([torch.cat(list(big[:4]), 2), torch.cat(list(rec[:4].cpu()), 2)], 1)
    scenes.to_png(((grid.permute(1, 2, 0).numpy() + 1) / 2), os.path.join(runs, "ae_recon.png"))
    return sf, step


def ae_step(E, D, data, opt, lr, dev, train_encoder, B=16, crop=6, noise=0.1):
    """One decoder L1 step on 96x96 crops (latent 6x6) centred on detail, from the latent made from the scene
    rendered at 1/4 scale or from the full render (half each, so the decoder suits both), with Gaussian noise of
    up to `noise` times the latent's std added (a random fraction per sample: the denoiser's latents are not
    exact); with train_encoder, also one encoder step: L1 from its learned channels to the shape codes."""
    if True:
        big, small, zb, zs = data
        idx = torch.randint(0, big.shape[0], (B,))
        use_small = torch.rand(B, 1, 1, 1) < 0.5
        z = torch.where(use_small, zs[idx], zb[idx]).to(dev)
        enc_loss = 0.0
        if train_encoder:
            x64 = torch.where(use_small, small[idx], F.avg_pool2d(big[idx], 4)).to(dev)
            enc_loss = (E.forward_pooled(x64)[:, 4:] - z[:, 4:]).abs().mean()
        z = z + torch.randn_like(z) * z.std() * noise * torch.rand(B, 1, 1, 1, device=dev)
        # per-sample crops centred on detail (where the image differs from its x16 blur), 1 in 4 random
        bi = big[idx]
        with torch.no_grad():
            blur = F.interpolate(F.avg_pool2d(bi, 16), scale_factor=16, mode="bilinear", align_corners=False)
            energy = F.avg_pool2d((bi - blur).abs().sum(1, keepdim=True), 16).flatten(1)
        zc, tc = [], []
        for b in range(B):
            if random.random() < 0.25:
                cy, cx = random.randint(0, 15), random.randint(0, 15)
            else:
                k = int(torch.multinomial(energy[b] + 1e-6, 1))
                cy, cx = k // 16, k % 16
            oy = min(max(cy - crop // 2 + random.randint(-1, 1), 0), 16 - crop)
            ox = min(max(cx - crop // 2 + random.randint(-1, 1), 0), 16 - crop)
            zc.append(z[b:b + 1, :, oy:oy + crop, ox:ox + crop])
            tc.append(bi[b:b + 1, :, oy * 16:(oy + crop) * 16, ox * 16:(ox + crop) * 16])
        y = D(torch.cat(zc))
        tgt = torch.cat(tc).to(dev)
        loss = (y - tgt).abs().mean() + enc_loss
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
        opt.step()
        return loss.item()


# ------------------------------------------------------------------------------------------ stage 2: DN

def _render_chunk(job):
    """Worker: one seeded chunk of scenes rendered at 1/4 scale -> (latents [k,8,h,w] fp16, labelled caption
    words, n_objects, auxiliary targets)."""
    seed, (h, w), k, group_boost, canonical = job
    rng = random.Random(seed)
    zs, caps, nobj, attrs = [], [], [], []
    for _ in range(k):
        words, spec, groups = scenes.sample_labelled(rng, group_boost=group_boost)
        pl = scenes.layout(spec, w * 4, h * 4, rng, groups if canonical else None)
        rgba, code = scenes.render(spec, w * 4, h * 4, rng, pl, codes=True)
        zs.append(scene_latent(rgba, code, 4).astype(np.float16))
        caps.append(words)
        nobj.append(len(spec["objects"]))
        attrs.append(spec_attrs(spec, groups))
    return np.stack(zs), caps, nobj, attrs


def build_pool(tok, n, seed, sf, workers=0, chunk=2000, group_boost=0.0, canonical=True):
    """Scenes rendered at 1/4 scale, made into latents once: per bucket latents [N,C,h,w] (fp16), ids, n_objects,
    token slots [N,77] and auxiliary targets [N,N_ATTRS] (int8; see Tok.words and spec_attrs).

    Chunks are seeded by (seed, bucket, chunk index), so the pool is the same with any number of workers.
    canonical: unplaced objects take the canonical cells of scenes.layout (else anywhere at random)."""
    t0 = time.time()
    jobs = []
    for bi, ((h, w), p) in enumerate(BUCKETS):
        k = int(n * p)
        jobs += [(seed * 1000003 + bi * 10007 + c, (h, w), min(chunk, k - c * chunk), group_boost, canonical)
                 for c in range((k + chunk - 1) // chunk)]
    parts = {hw: ([], [], [], [], []) for hw, _ in BUCKETS}
    if workers > 1:
        import multiprocessing as mp
        pool_ctx = mp.get_context("spawn").Pool(workers)  # spawn: the parent may already hold a CUDA context
        results = pool_ctx.imap(_render_chunk, jobs)
    else:
        pool_ctx, results = None, map(_render_chunk, jobs)
    for (_, hw, _, _, _), (z, caps, nobj, attrs) in zip(jobs, results):
        zs, ids, nb, sl, at = parts[hw]
        zs.append((torch.from_numpy(z).float() * sf).half())
        for words in caps:
            i, s = tok.words(words)
            ids.append(i)
            sl.append(s)
        nb += nobj
        at += attrs
    if pool_ctx is not None:
        pool_ctx.close()
    pool = {hw: (torch.cat(zs), torch.tensor(ids, dtype=torch.int32), torch.tensor(nb),
                 torch.tensor(sl, dtype=torch.int8), torch.tensor(at, dtype=torch.int8))
            for hw, (zs, ids, nb, sl, at) in parts.items()}
    log(f"latent pool: {n} scenes in {time.time() - t0:.0f}s ({workers} workers)")
    return pool


def lr_factor(run_frac):
    """--lr-decay: cosine from 1 to 5% over the run."""
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * run_frac))


def object_weight(z0, sf, strength):
    """Per-latent-pixel loss weight 1 + strength * (object mask), read from the clean latent itself.

    Objects cover a few percent of a 16x16 latent, so a plain mean lets the background dominate the loss
    and the model learned to leave objects out. The background is constant along each row (solid or
    vertical gradient or transparent), so a latent pixel whose pooled RGBA (channels 0-3) differs from its
    row's median is (partly) object, in proportion to its coverage up to a quarter (edge pixels, where the
    learned channels carry the outline, are partly covered). Rows more than half covered by objects mark
    their background instead: rare, and harmless.

    Off by default since session 4: a weight that depends on the clean target moves the minimiser of the
    loss from E[v | z_t] to E[w v | z_t] / E[w | z_t], a posterior reweighted by up to 1 + strength towards
    "object here" at every pixel. Sampling from it draws extra objects (every preview did)."""
    base = z0[:, :4] / sf  # pooled RGBA in [-1, 1]
    bg = base.median(dim=3, keepdim=True).values
    d = (base - bg).abs().amax(1, keepdim=True)
    return 1 + strength * (d / 0.25).clamp(max=1.0)  # a quarter-covered contrasting pixel counts fully


def v_loss(U, ctx, z0, ac, dev, snr_floor=1.0, weight=None):
    B = z0.shape[0]
    t = torch.randint(0, ac.shape[0], (B,), device=dev)
    a = ac[t].view(B, 1, 1, 1)
    eps = torch.randn_like(z0)
    zt = a.sqrt() * z0 + (1 - a).sqrt() * eps
    v = a.sqrt() * eps - (1 - a).sqrt() * z0
    pred = U(zt, t.float(), ctx)
    snr = a / (1 - a)
    # min-SNR-5 for v-prediction (Hang et al. 2023: x0-weight min(snr, 5) -> v-weight min(snr, 5)/(snr + 1)),
    # with the x0-weight floored at snr_floor so the high-noise steps that decide layout and background
    # from the text are not weighted down to ~0 (they were, and text adherence learned slowly).
    w = torch.clamp(snr, min=snr_floor, max=5.0) / (snr + 1)
    err = (pred - v) ** 2 if weight is None else (pred - v) ** 2 * weight
    return err.mean((1, 2, 3)).mul(w.view(B)).mean()


def trailing_timesteps(steps):
    """The timesteps of a `steps`-step schedule with trailing spacing (as the engine's schedulers), first = 999."""
    return [int(round(1000 - i * 1000 / steps)) - 1 for i in range(steps)]


@torch.no_grad()
def ddim_steps(U, cond, unc, z, ts, cfg):
    """Deterministic DDIM (eta=0; = Euler on the probability-flow ODE) with v-prediction + CFG from the scaled latents
    z at timestep ts[0] down through ts to t = 0."""
    ac = cosine_alphas_cumprod().to(z.device)
    for i, t in enumerate(ts):
        tt = torch.full((z.shape[0],), float(t), device=z.device)
        vc, vu = U(torch.cat([z, z]), torch.cat([tt, tt]), torch.cat([cond, unc])).chunk(2)
        v = vu + cfg * (vc - vu)
        a = ac[t]
        x0 = a.sqrt() * z - (1 - a).sqrt() * v
        eps = (1 - a).sqrt() * z + a.sqrt() * v
        ap = ac[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0, device=z.device)
        z = ap.sqrt() * x0 + (1 - ap).sqrt() * eps
    return z


@torch.no_grad()
def ddim_sample(U, T, D, tok, prompts, sf, dev, h=16, w=16, steps=20, cfg=4.0, seed=0):
    """Deterministic DDIM (diffusers DDIMScheduler, eta=0, trailing spacing) with v-prediction + CFG."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(len(prompts), 8, h, w, generator=g).to(dev)
    cond = T(torch.tensor([tok(p) for p in prompts], device=dev))
    unc = T(torch.tensor([tok("")] * len(prompts), device=dev))
    z = ddim_steps(U, cond, unc, z, trailing_timesteps(steps), cfg)
    return D(z / sf).clamp(-1, 1)


PREVIEW = ["a red circle on a blue background", "a large yellow star in the top left corner on a black background",
           "two pink hearts on a transparent background", "a blue square on the left and a green triangle on the right",
           "a small white cross at the bottom, gradient from purple to orange", "three gray rings on a yellow background",
           "a large black diamond in the center on a cyan background", "a purple ring at the top right and an orange square at the bottom left, white background"]


def preview(U, T, D, tok, sf, dev, path):
    imgs = ddim_sample(U, T, D, tok, PREVIEW, sf, dev)
    grid = torch.cat([torch.cat(list(imgs[:4].cpu()), 2), torch.cat(list(imgs[4:].cpu()), 2)], 1)
    rgba = (grid.permute(1, 2, 0).numpy() + 1) / 2
    # composite on a checkerboard so transparency is visible
    H, W = rgba.shape[:2]
    cb = ((np.indices((H, W)).sum(0) // 16) % 2 * 0.3 + 0.6)[..., None]
    rgb = rgba[..., :3] * rgba[..., 3:] + cb * (1 - rgba[..., 3:])
    scenes.to_png(np.concatenate([rgb, np.ones((H, W, 1))], -1), path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoints", "easel.pt"))
    ap.add_argument("--runs", default=os.path.join(HERE, "runs"))
    ap.add_argument("--ae-minutes", type=float, default=10.0)
    ap.add_argument("--dn-minutes", type=float, default=120.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--pool", type=int, default=40000)
    ap.add_argument("--seed", type=int, default=20261121)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ckpt-every", type=float, default=5.0, help="minutes")
    ap.add_argument("--curriculum-minutes", type=float, default=10.0, help="first DN minutes on one-object scenes")
    ap.add_argument("--snr-floor", type=float, default=1.0, help="floor of the min-SNR x0-weight (0: plain min-SNR)")
    ap.add_argument("--object-weight", type=float, default=0.0,
                    help="extra loss weight on latent pixels covered by objects (0: plain mean; it biases the model "
                         "towards extra objects, see object_weight); with --lr-decay it decays with the learning rate")
    ap.add_argument("--dec-every", type=int, default=3, help="one decoder step every N denoiser steps (0: off)")
    ap.add_argument("--dec-scenes", type=int, default=1500)
    ap.add_argument("--dec-lr", type=float, default=5e-4)
    ap.add_argument("--dec-batch", type=int, default=16)
    ap.add_argument("--pool-workers", type=int, default=0, help="processes rendering the latent pool (0: in process)")
    ap.add_argument("--pool-round", type=int, default=-1,
                    help="which set of scenes the latent pool holds (-1: one new set per invocation, i.e. the number "
                         "of earlier runs, so resumes do not keep training on the same scenes)")
    ap.add_argument("--run-minutes", type=float, default=0.0,
                    help="stop this invocation after N wall-clock minutes of denoiser training (0: only --dn-minutes)")
    ap.add_argument("--lr-decay", action="store_true",
                    help="cosine-decay the learning rate to 5%% over --run-minutes (for a final run)")
    ap.add_argument("--ema", type=float, default=0.998, help="EMA decay")
    ap.add_argument("--ae-more-minutes", type=float, default=0.0,
                    help="train the existing decoder and encoder on for N minutes before the denoiser (this also "
                         "converts a checkpoint from before shape codes); the latent pool is rebuilt")
    ap.add_argument("--ae-lr", type=float, default=5e-4, help="peak learning rate of --ae-more-minutes")
    ap.add_argument("--ae-scenes", type=int, default=3000, help="scenes (256x256) the autoencoder trains on")
    ap.add_argument("--ae-noise", type=float, default=0.1,
                    help="latent noise augmentation of the autoencoder stages: up to this fraction of the latent's std")
    ap.add_argument("--ae-only", action="store_true", help="stop after the autoencoder stage(s)")
    ap.add_argument("--aux-weight", type=float, default=0.1,
                    help="weight of the text encoder's auxiliary loss (aux_loss: every token's role and the attributes "
                         "of the object or background it describes; 0: off)")
    ap.add_argument("--group-boost", type=float, default=0.0,
                    help="share of the pool's scenes that are a same-kind group of 2-3 alone (0: the usual mix)")
    ap.add_argument("--layout", choices=["canonical", "random"], default="canonical",
                    help="where the pool's scenes put objects whose position the caption leaves unsaid: canonical cells "
                         "(scenes.TEMPLATES: one in the centre, two side by side, three in a triangle; used since step "
                         "80,109) or anywhere at random (every run before)")
    ap.add_argument("--full-res-self-attn", action="store_true", help="UNet self-attention at 16x16 too (slower)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    # Denormal floats are slow on CPU; flushed in case they cause the slowdown after each run's first ~500 steps
    # (not confirmed: the runs that had this slowed down the same way, training/README.md).
    torch.set_flush_denormal(True)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    os.makedirs(os.path.dirname(args.ckpt), exist_ok=True)
    os.makedirs(args.runs, exist_ok=True)
    with open(os.path.join(args.runs, "train.pid"), "w") as f:
        f.write(f"{os.getpid()}\n")
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    random.seed(args.seed)
    torch.manual_seed(args.seed)

    state = torch.load(args.ckpt, weights_only=False) if os.path.exists(args.ckpt) else {}
    if "vocab" not in state:
        t0 = time.time()
        vocab, merges = bpe.train_bpe(scenes.bpe_corpus(), VOCAB_SIZE)
        state.update(vocab=vocab, merges=[list(m) for m in merges], seed=args.seed, log=[])
        log(f"BPE trained: {len(vocab)} tokens in {time.time() - t0:.0f}s")
    tok = Tok(state["vocab"], [tuple(m) for m in state["merges"]])
    words = scenes.COLORS + scenes.SHAPES + ["small", "large", "medium", "top", "left", "right", "bottom",
                                             "center", "gradient", "transparent", "background", "two", "three"]
    multi = [w for w in words if tok(w).index(tok.eos) != 2]
    log(f"vocabulary words split into several tokens: {multi or 'none'}")

    E, D = Encoder().to(dev), Decoder().to(dev)
    if "enc" in state:
        load_sd(E, state["enc"])
        load_sd(D, state["dec"])
        sf = state["scaling_factor"]
    else:
        sf, ae_steps = train_ae(E, D, dev, args.ae_minutes, args.seed, args.runs)
        state.update(enc=half_sd(E), dec=half_sd(D), scaling_factor=sf, ae_steps=ae_steps,
                     ae_minutes=args.ae_minutes, shape_codes=True)
        save(args.ckpt, state)
        if STOP:
            return
    if not state.get("shape_codes") and args.ae_more_minutes <= 0:
        sys.exit("this checkpoint's autoencoder predates shape codes (its channels 4-7 were learned freely): "
                 "pass --ae-more-minutes N to retrain it on shape-code latents (the UNet then warm-starts)")
    if args.ae_more_minutes > 0:
        # scaling_factor stays, so the denoiser warm-starts on the same scale: the 4 RGBA channels do not change, and
        # the shape-code latent's own 1 / std (~1.64, logged by train_ae) is close to the learned latent's 1.69
        _, more = train_ae(E, D, dev, args.ae_more_minutes, args.seed + 101 + state.get("ae_steps", 0), args.runs,
                           n_data=args.ae_scenes, lr0=args.ae_lr, cosine=True, workers=args.pool_workers,
                           noise=args.ae_noise)
        state.update(enc=half_sd(E), dec=half_sd(D), ae_steps=state.get("ae_steps", 0) + more,
                     ae_minutes=state.get("ae_minutes", 0) + args.ae_more_minutes,
                     ae_version=state.get("ae_version", 0) + 1, shape_codes=True)
        save(args.ckpt, state)
        if STOP:
            return
    if args.ae_only:
        return
    E.eval()
    D.eval()
    dec_data = dec_opt = None
    if args.dec_every > 0:  # keep sharpening the decoder (the latent space is fixed: scene_latent)
        dec_data = ae_data_parallel(args.seed + 7 + state.get("dec_steps", 0), args.dec_scenes, args.pool_workers)
        dec_opt = torch.optim.AdamW(D.parameters(), args.dec_lr, weight_decay=0.0)
        state.setdefault("dec_steps", 0)
        log(f"decoder data: {args.dec_scenes} scenes")

    # checkpoints from before the switch have no unet_config: they had 16x16 self-attention
    old_cfg = state.get("unet_config", dict(full_res_self_attn=True)) if "unet" in state else None
    cfg = dict(full_res_self_attn=args.full_res_self_attn)
    state["unet_config"] = cfg
    T, U = TextEncoder(len(state["vocab"])).to(dev), UNet(**cfg).to(dev)
    Te, Ue = TextEncoder(len(state["vocab"])).to(dev), UNet(**cfg).to(dev)
    if "unet" in state:
        strict = old_cfg == cfg  # else warm start: every weight the new layout shares with the old one
        if not strict:
            log(f"UNet layout changed {old_cfg} -> {cfg}: warm start from the shared weights")
        U.load_state_dict(state["unet"], strict=strict)
        T.load_state_dict(state["text"])
        Ue.load_state_dict({k: v.float() for k, v in state["unet_ema"].items()}, strict=strict)
        load_sd(Te, state["text_ema"])
    else:
        Ue.load_state_dict(U.state_dict())
        Te.load_state_dict(T.state_dict())
        state.update(step=0, dn_seconds=0.0, samples=0)
    log(f"UNet {n_params(U) / 1e6:.2f}M params, text encoder {n_params(T) / 1e6:.2f}M, device {dev}")
    pool_round = args.pool_round if args.pool_round >= 0 else len(state.get("runs", []))
    pool_seed = args.seed + 1_000_033 * pool_round  # round 0 is the pool of the first runs
    cache = os.path.join(args.runs, f"pool_{pool_seed}_{args.pool}_{sf:.5f}_ae{state.get('ae_version', 0)}_lab"
                         + (f"_g{args.group_boost:g}" if args.group_boost > 0 else "")
                         + ("_canon" if args.layout == "canonical" else "") + ".pt")
    if os.path.exists(cache):
        pool = torch.load(cache, weights_only=False)
        log(f"latent pool loaded from {cache}")
    else:
        for old in glob.glob(os.path.join(args.runs, "pool_*.pt")):  # one pool on disk at a time (100k ~ 0.5 GB)
            os.remove(old)
        pool = build_pool(tok, args.pool, pool_seed, sf, args.pool_workers, group_boost=args.group_boost,
                          canonical=args.layout == "canonical")
        torch.save(pool, cache)
    log(f"latent pool round {pool_round} (seed {pool_seed})")
    if dev == "cuda":  # a few GB at most: keep it on the GPU so batches are gathered there
        pool = {hw: tuple(t.to(dev) for t in v) for hw, v in pool.items()}
    empty = torch.tensor(tok(""), dtype=torch.int32, device=pool[BUCKETS[0][0]][1].device)
    empty_slots = torch.tensor(tok.words([])[1], dtype=torch.int8, device=empty.device)
    A = TextAux().to(dev)
    if "text_aux" in state:
        load_sd(A, state["text_aux"])
    ac = cosine_alphas_cumprod().to(dev)
    params = list(U.parameters()) + list(T.parameters())
    opt = torch.optim.AdamW(params + list(A.parameters()), args.lr, weight_decay=0.01)
    text_params = list(T.parameters()) + list(A.parameters())
    step0, t_start, last_ck = state["step"], time.time(), time.time()
    base_seconds = state["dn_seconds"]
    ema_params = list(Ue.parameters()) + list(Te.parameters())
    keys = [b for b, _ in BUCKETS]
    probs = [p for _, p in BUCKETS]
    losses, aux_losses = [], []
    run = dict(hardware=torch.cuda.get_device_name(0) if dev == "cuda" else f"CPU, {torch.get_num_threads()} threads",
               start_step=step0, batch=args.batch, lr=args.lr, lr_decay=args.lr_decay, pool=args.pool,
               pool_round=pool_round, object_weight=args.object_weight, aux_weight=args.aux_weight,
               object_weight_decay=bool(args.lr_decay and args.run_minutes > 0),
               **({"group_boost": args.group_boost} if args.group_boost > 0 else {}), layout=args.layout,
               started=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    state.setdefault("runs", []).append(run)
    while not STOP:
        elapsed = base_seconds + time.time() - t_start
        if elapsed > args.dn_minutes * 60:
            break
        run_frac = (time.time() - t_start) / (args.run_minutes * 60) if args.run_minutes > 0 else 0.0
        if run_frac >= 1.0:
            break
        step = state["step"]
        hw = keys[np.random.choice(len(keys), p=probs)]
        z, ids, nobj, slots, attrs = pool[hw]
        if elapsed < args.curriculum_minutes * 60:
            cand = torch.nonzero(nobj == 1).squeeze(1)
            idx = cand[torch.randint(0, cand.numel(), (args.batch,), device=cand.device)]
        else:
            idx = torch.randint(0, z.shape[0], (args.batch,), device=z.device)
        zb = z[idx].float().to(dev)
        ib, sb = ids[idx].clone(), slots[idx].clone()
        drop = torch.rand(args.batch, device=ib.device) < 0.1
        ib[drop] = empty
        sb[drop] = empty_slots
        if random.random() < 0.5 and hw[0] == hw[1]:
            pass  # no flips: left/right words would have to be swapped in the caption
        # The object weight biases the model towards drawing objects where it is unsure (extra objects), so with
        # --lr-decay it follows the learning rate down: strong early to learn objects fast, ~0 at the end.
        ow = args.object_weight * (lr_factor(run_frac) if args.lr_decay and args.run_minutes > 0 else 1.0)
        wmap = object_weight(zb, sf, ow) if ow > 0 else None
        ctx = T(ib.to(dev))
        loss = v_loss(U, ctx, zb, ac, dev, args.snr_floor, wmap)
        la = aux_loss(A, ctx, sb.to(dev), attrs[idx].to(dev)) if args.aux_weight > 0 else torch.zeros((), device=dev)
        lr = args.lr * min(1.0, (step - step0 + 1) / 150)
        if args.lr_decay and args.run_minutes > 0:
            lr *= lr_factor(run_frac)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        (loss + args.aux_weight * la).backward()
        # clipped apart: early on the auxiliary gradient is large and would scale the UNet's down with it
        torch.nn.utils.clip_grad_norm_(list(U.parameters()), 1.0)
        torch.nn.utils.clip_grad_norm_(text_params, 1.0)
        opt.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_mul_(ema_params, decay)
            torch._foreach_add_(ema_params, [p.detach() for p in params], alpha=1 - decay)
        losses.append(loss.detach())
        aux_losses.append(la.detach())
        if dec_opt is not None and step % args.dec_every == 0:
            D.train()
            dl = ae_step(E, D, dec_data, dec_opt, args.dec_lr * min(1.0, (step - step0 + 1) / 100),
                         dev, train_encoder=False, B=args.dec_batch)
            D.eval()
            state["dec_steps"] += 1
            if state["dec_steps"] % 50 == 0:
                log(f"decoder step {state['dec_steps']} loss {dl:.4f}")
        state["step"] = step + 1
        state["samples"] += args.batch
        run.update(end_step=step + 1, seconds=round(time.time() - t_start))
        if state["step"] % 50 == 0:
            el = base_seconds + time.time() - t_start
            rate = (state["step"] - step0) * args.batch / (time.time() - t_start)
            m = float(torch.stack(losses[-50:]).mean())
            ma = float(torch.stack(aux_losses[-50:]).mean())
            losses, aux_losses = losses[-50:], aux_losses[-50:]
            state["log"].append([state["step"], round(el), round(m, 5), round(ma, 4)])
            log(f"dn step {state['step']} loss {m:.4f} aux {ma:.4f} samples {state['samples']} ({rate:.1f}/s) "
                f"dn-time {el / 60:.1f} min")
        if time.time() - last_ck > args.ckpt_every * 60:
            last_ck = time.time()
            state["dec"] = half_sd(D)
            state["text_aux"] = half_sd(A)
            _checkpoint(state, U, T, Ue, Te, base_seconds + time.time() - t_start, args.ckpt)
            preview(Ue, Te, D, tok, sf, dev, os.path.join(args.runs, f"preview_{state['step']:06d}.png"))
    state["dec"] = half_sd(D)
    state["text_aux"] = half_sd(A)
    _checkpoint(state, U, T, Ue, Te, base_seconds + time.time() - t_start, args.ckpt)
    preview(Ue, Te, D, tok, sf, dev, os.path.join(args.runs, f"preview_{state['step']:06d}.png"))
    log("stopped" if STOP else "finished")


def _checkpoint(state, U, T, Ue, Te, dn_seconds, path):
    state.update(unet={k: v.detach().cpu() for k, v in U.state_dict().items()},
                 text={k: v.detach().cpu() for k, v in T.state_dict().items()},
                 unet_ema=half_sd(Ue), text_ema=half_sd(Te), dn_seconds=dn_seconds,
                 hardware=torch.cuda.get_device_name(0) if torch.cuda.is_available() else
                 f"CPU, {torch.get_num_threads()} threads")
    save(path, state)


if __name__ == "__main__":
    main()
