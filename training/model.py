# Networks of the easel-shapes model: RGBA autoencoder (x16), a small text encoder and a latent UNet,
# small enough to train on two CPU cores in about two hours and to export to the diffusers ONNX layout.
"""Model definitions.

* ``Encoder``: RGBA [-1,1] [B,4,H,W] -> fixed 4x4 average pool -> learned x4 conv downsampling -> latent
  [B,C,H/16,W/16]. Deterministic (the engine uses ``latent_sample`` as is).
* ``Decoder``: latent -> four learned x2 upsampling stages -> RGBA [B,4,H,W] in [-1,1] (straight alpha).
* ``TextEncoder``: token + position embedding, bidirectional transformer layers -> [B,77,D].
* ``UNet``: conv/attention UNet on the latent with timestep embedding, cross-attention to the text and
  two coordinate channels (so absolute places like "top left" are easy to learn at any aspect ratio).
Noise schedule: diffusers' ``squaredcos_cap_v2`` betas (diffusers/schedulers/scheduling_ddpm.py,
``betas_for_alpha_bar``), v-prediction (Salimans & Ho 2022), min-SNR-5 weighting (Hang et al. 2023).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LATENT_CHANNELS = 8
TEXT_DIM = 128
MAX_LEN = 77
T_STEPS = 1000
CODE_BOUND = 1.6  # the encoder's shape-code channels: CODE_BOUND * tanh, a little above the codes' 1.5


def cosine_alphas_cumprod(T: int = T_STEPS, max_beta: float = 0.999) -> torch.Tensor:
    """diffusers betas_for_alpha_bar(alpha_transform_type="cosine") -> alphas_cumprod (float64 math)."""
    f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    betas = [min(1 - f((i + 1) / T) / f(i / T), max_beta) for i in range(T)]
    a = torch.cumprod(1 - torch.tensor(betas, dtype=torch.float64), 0)
    return a.float()


def gn(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(8 if c % 8 == 0 else 4, c)


class Res(nn.Module):
    def __init__(self, cin, cout, temb=0):
        super().__init__()
        self.n1, self.c1 = gn(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.n2, self.c2 = gn(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.t = nn.Linear(temb, cout) if temb else None
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, t=None):
        h = self.c1(F.silu(self.n1(x)))
        if self.t is not None:
            h = h + self.t(t)[:, :, None, None]
        h = self.c2(F.silu(self.n2(h)))
        return h + self.skip(x)


# ------------------------------------------------------------------------------------------ autoencoder

class Encoder(nn.Module):
    def __init__(self, ch=(32, 64, 96)):
        super().__init__()
        self.inp = nn.Conv2d(4, ch[0], 3, padding=1)
        self.r0 = Res(ch[0], ch[0])
        self.d1 = nn.Conv2d(ch[0], ch[1], 3, stride=2, padding=1)
        self.r1 = Res(ch[1], ch[1])
        self.d2 = nn.Conv2d(ch[1], ch[2], 3, stride=2, padding=1)
        self.r2 = Res(ch[2], ch[2])
        self.out = nn.Sequential(gn(ch[2]), nn.SiLU(), nn.Conv2d(ch[2], LATENT_CHANNELS - 4, 3, padding=1))

    def forward_pooled(self, x64):
        """x64: the RGBA image already area-downsampled by 4. The first 4 latent channels are the image
        area-averaged to 1/16 (a fixed, easy-to-model base); the others are the area-averaged shape codes
        (scenes.SHAPE_CODES, |entries| 1.5), which the convolutions learn to read from the pixels."""
        base = F.avg_pool2d(x64, 4)
        h = self.r0(self.inp(x64))
        h = self.r1(self.d1(h))
        h = self.r2(self.d2(h))
        return torch.cat([base, CODE_BOUND * torch.tanh(self.out(h))], 1)

    def forward(self, x):
        return self.forward_pooled(F.avg_pool2d(x, 4))


class Decoder(nn.Module):
    def __init__(self, ch=(128, 96, 64, 32, 24)):
        super().__init__()
        self.inp = nn.Conv2d(LATENT_CHANNELS, ch[0], 3, padding=1)
        self.r0 = Res(ch[0], ch[0])
        self.r0b = Res(ch[0], ch[0])
        ups = []
        for a, b in zip(ch[:-1], ch[1:]):
            ups.append(nn.ModuleList([nn.Conv2d(a, b * 4, 3, padding=1), Res(b, b)]))
        self.ups = nn.ModuleList(ups)
        self.out = nn.Sequential(gn(ch[-1]), nn.SiLU(), nn.Conv2d(ch[-1], 4, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, z):
        """Bilinear x16 upsampling of the 4 base channels plus a learned residual (sharp edges)."""
        h = self.r0b(self.r0(self.inp(z)))
        for conv, res in self.ups:
            h = res(F.pixel_shuffle(conv(h), 2))
        base = F.interpolate(z[:, :4], scale_factor=16, mode="bilinear", align_corners=False)
        return base + self.out(h)


# ------------------------------------------------------------------------------------------ text

class TextEncoder(nn.Module):
    def __init__(self, vocab_size: int, dim=TEXT_DIM, layers=3, heads=4):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.randn(1, MAX_LEN, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim * 4, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.tf = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids):
        h = self.tok(ids.long()) + self.pos[:, : ids.shape[1]]
        return self.norm(self.tf(h))


# Token roles and per-token targets of the text encoder's auxiliary loss (training only; not exported).
AUX_OBJECT_HEADS = {"color": 12, "shape": 8, "size": 3, "position": 10, "count": 3}  # position 9 = anywhere
AUX_BG_HEADS = {"kind": 3, "top": 12, "bottom": 12}  # kind: solid, gradient, transparent
AUX_ROLES = 3  # none (joining, distractor, BOS/EOS), object, background


class TextAux(nn.Module):
    """Linear read-outs of every token's text-encoder state: its role, and for a token of an object's phrase
    that whole object (colour, shape, size, position, count), for a token of the background phrase the
    background (kind, top and bottom colour). Trained beside the diffusion loss so that each token carries
    its object's bound attributes (train.aux_loss); the UNet's cross-attention then finds colour, shape, size
    and place of one object in one place instead of binding them across tokens itself."""

    def __init__(self, dim=TEXT_DIM):
        super().__init__()
        self.role = nn.Linear(dim, AUX_ROLES)
        self.obj = nn.ModuleDict({k: nn.Linear(dim, n) for k, n in AUX_OBJECT_HEADS.items()})
        self.bg = nn.ModuleDict({k: nn.Linear(dim, n) for k, n in AUX_BG_HEADS.items()})


# ------------------------------------------------------------------------------------------ unet

class Attn(nn.Module):
    """Self-attention (optional) + cross-attention to text + feed-forward on a [B,C,h,w] map."""

    def __init__(self, c, heads=4, self_attn=True):
        super().__init__()
        self.h = heads
        self.self_attn = self_attn
        if self_attn:
            self.n1 = nn.LayerNorm(c)
            self.qkv = nn.Linear(c, 3 * c)
            self.o1 = nn.Linear(c, c)
        self.n2, self.n3 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.q2 = nn.Linear(c, c)
        self.kv2 = nn.Linear(TEXT_DIM, 2 * c)
        self.o2 = nn.Linear(c, c)
        self.ff = nn.Sequential(nn.Linear(c, 2 * c), nn.GELU(), nn.Linear(2 * c, c))

    def _mha(self, q, k, v):
        B, N, C = q.shape
        M = k.shape[1]
        d = C // self.h
        q = q.reshape(B, N, self.h, d).transpose(1, 2)
        k = k.reshape(B, M, self.h, d).transpose(1, 2)
        v = v.reshape(B, M, self.h, d).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-1, -2) * (d ** -0.5), dim=-1)
        return (a @ v).transpose(1, 2).reshape(B, N, C)

    def forward(self, x, ctx):
        B, C, H, W = x.shape
        h = x.flatten(2).transpose(1, 2)
        if self.self_attn:
            q, k, v = self.qkv(self.n1(h)).chunk(3, dim=-1)
            h = h + self.o1(self._mha(q, k, v))
        k2, v2 = self.kv2(ctx).chunk(2, dim=-1)
        h = h + self.o2(self._mha(self.q2(self.n2(h)), k2, v2))
        h = h + self.ff(self.n3(h))
        return h.transpose(1, 2).reshape(B, C, H, W)


def timestep_embedding(t, dim):
    """Sinusoidal embedding (as in diffusers get_timestep_embedding, flip_sin_to_cos=True)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def coord_channels(x):
    B, _, H, W = x.shape
    ys = (torch.arange(H, dtype=torch.float32) + 0.5) / H * 2 - 1
    xs = (torch.arange(W, dtype=torch.float32) + 0.5) / W * 2 - 1
    gy = ys[:, None] + xs[None, :] * 0
    gx = xs[None, :] + ys[:, None] * 0
    g = torch.stack([gx, gy], 0)[None]
    return g.expand(B, 2, H, W)


class UNet(nn.Module):
    """Levels 16/8/4 (for a 256x256 image). Cross-attention to the text at every level; self-attention at
    8x8 and 4x4, and at 16x16 only with full_res_self_attn (the first CPU run had it: it was ~60% of a
    training step on 2 cores and is not needed for layouts of at most three objects)."""

    def __init__(self, ch=(64, 128, 192), full_res_self_attn=False):
        super().__init__()
        te = 256
        self.temb = nn.Sequential(nn.Linear(128, te), nn.SiLU(), nn.Linear(te, te))
        self.pool_txt = nn.Linear(TEXT_DIM, te)
        self.inp = nn.Conv2d(LATENT_CHANNELS + 2, ch[0], 3, padding=1)
        self.d0 = Res(ch[0], ch[0], te)
        self.a0 = Attn(ch[0], self_attn=full_res_self_attn)
        self.down0 = nn.Conv2d(ch[0], ch[1], 3, stride=2, padding=1)
        self.d1 = Res(ch[1], ch[1], te)
        self.a1 = Attn(ch[1])
        self.down1 = nn.Conv2d(ch[1], ch[2], 3, stride=2, padding=1)
        self.m1 = Res(ch[2], ch[2], te)
        self.am = Attn(ch[2])
        self.m2 = Res(ch[2], ch[2], te)
        self.up1 = nn.Conv2d(ch[2], ch[1], 3, padding=1)
        self.u1 = Res(2 * ch[1], ch[1], te)
        self.ua1 = Attn(ch[1])
        self.up0 = nn.Conv2d(ch[1], ch[0], 3, padding=1)
        self.u0 = Res(2 * ch[0], ch[0], te)
        self.ua0 = Attn(ch[0], self_attn=full_res_self_attn)
        self.out = nn.Sequential(gn(ch[0]), nn.SiLU(), nn.Conv2d(ch[0], LATENT_CHANNELS, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, sample, timestep, ctx):
        t = self.temb(timestep_embedding(timestep.reshape(-1).expand(sample.shape[0]), 128))
        t = t + self.pool_txt(ctx.mean(1))
        x = torch.cat([sample, coord_channels(sample)], 1)
        h0 = self.a0(self.d0(self.inp(x), t), ctx)
        h1 = self.a1(self.d1(self.down0(h0), t), ctx)
        h = self.m2(self.am(self.m1(self.down1(h1), t), ctx), t)
        h = self.up1(F.interpolate(h, size=h1.shape[-2:], mode="nearest"))
        h = self.ua1(self.u1(torch.cat([h, h1], 1), t), ctx)
        h = self.up0(F.interpolate(h, size=h0.shape[-2:], mode="nearest"))
        h = self.ua0(self.u0(torch.cat([h, h0], 1), t), ctx)
        return self.out(h)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
