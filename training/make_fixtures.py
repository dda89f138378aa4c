# Makes the engine's tiny test fixtures: seeded random-weight SD / SDXL / SD-inpaint pipelines in the
# diffusers ONNX layout (docs/model-folder.md), small enough to commit and fast enough for unit tests.
"""Remake with:  /usr/bin/python3 training/make_fixtures.py  [--out test/fixtures] [--only tiny-sd]

Everything is seeded (torch.manual_seed per model), so re-running gives identical weights and outputs.
The networks are not trained: images come out as noise. They only mirror the interfaces of the real
models (names, dtypes, shapes, dynamic axes, configs) and the dataflow that makes every output depend on
every input:

* text encoder: CLIP-like (token + position embedding, pre-LN causal transformer layers, final LayerNorm,
  pooled output = final hidden state at the first EOS = argmax(input_ids)), as in transformers'
  modeling_clip.py (CLIPTextTransformer);
* UNet: conv_in, sinusoidal timestep embedding (diffusers embeddings.py get_timestep_embedding,
  flip_sin_to_cos=True, downscale_freq_shift=0) -> MLP, ResNet blocks with GroupNorm/SiLU and the time
  embedding added between the convs (diffusers resnet.py ResnetBlock2D), one down / up level, a
  cross-attention transformer block over encoder_hidden_states (diffusers attention.py), and for SDXL the
  "text_time" addition embedding (diffusers unet_2d_condition.py: sinusoidal time_ids ++ text_embeds ->
  MLP, added to the time embedding);
* VAE decoder: conv + three x2 nearest upsampling stages (scale factor 8); VAE encoder: three stride-2
  stages returning the latent mean (deterministic).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from typing import Dict, List, Tuple

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bpe import EOS_TOKEN, train_bpe, write_tokenizer_folder  # noqa: E402

OPSET = 17
MAX_LENGTH = 77
DIFFUSERS_VERSION = "0.27.2"
TRANSFORMERS_VERSION = "4.38.2"

# ---------------------------------------------------------------------------------------------------
# corpus


def caption_corpus() -> List[str]:
    """~200 deterministic captions about coloured shapes (no randomness: plain enumeration)."""
    colours = ["red", "green", "blue", "yellow", "orange", "purple", "pink", "black", "white", "grey"]
    shapes = ["circle", "square", "triangle", "star", "heart", "hexagon", "diamond", "ring"]
    sizes = ["small", "large", "tiny", "big"]
    places = ["on a white background", "on a black background", "in the centre", "in the top left corner",
              "next to a tree", "under a blue sky", "on a wooden table", "in the grass"]
    counts = ["two", "three", "four", "many"]
    out: List[str] = []
    for i in range(200):
        c1 = colours[i % len(colours)]
        c2 = colours[(i * 3 + 1) % len(colours)]
        s1 = shapes[(i // len(colours)) % len(shapes)]
        s2 = shapes[(i * 5 + 2) % len(shapes)]
        size = sizes[i % len(sizes)]
        place = places[(i * 7) % len(places)]
        n = counts[i % len(counts)]
        kind = i % 5
        if kind == 0:
            out.append(f"a {c1} {s1} {place}")
        elif kind == 1:
            out.append(f"a {size} {c1} {s1} next to a {c2} {s2}")
        elif kind == 2:
            out.append(f"{n} {c1} {s1}s {place}")
        elif kind == 3:
            out.append(f"A photo of a {size} {c1} {s1}, {c2} background.")
        else:
            out.append(f"the {c1} {s1} is inside the {c2} {s2}!")
    return out


# ---------------------------------------------------------------------------------------------------
# building blocks


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding, diffusers embeddings.get_timestep_embedding with flip_sin_to_cos=True,
    downscale_freq_shift=0: [cos(t * f_i), sin(t * f_i)], f_i = exp(-ln(max_period) * i / half)."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32) / half
    args = t.float()[:, None] * torch.exp(exponent)[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class Attention(nn.Module):
    """Multi-head scaled dot-product attention (query from x, key/value from context)."""

    def __init__(self, dim: int, context_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.scale = 1.0 / math.sqrt(dim // heads)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(context_dim, dim)
        self.v = nn.Linear(context_dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor = None) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads
        q = self.q(x).reshape(b, n, h, d // h).transpose(1, 2)
        k = self.k(context).reshape(b, -1, h, d // h).transpose(1, 2)
        v = self.v(context).reshape(b, -1, h, d // h).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        if mask is not None:
            scores = scores + mask
        attn = torch.softmax(scores, dim=-1)
        y = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, d)
        return self.out(y)


class EncoderLayer(nn.Module):
    """Pre-LN transformer layer as in CLIPEncoderLayer (quick_gelu MLP)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim * 2)
        self.fc2 = nn.Linear(dim * 2, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.attn(h, h, mask)
        h = self.fc1(self.ln2(x))
        h = h * torch.sigmoid(1.702 * h)  # quick_gelu
        return x + self.fc2(h)


class TextEncoder(nn.Module):
    """CLIP-like text encoder. Outputs (in order): last_hidden_state, pooler_output or text_embeds,
    then hidden_states.0..L when `with_hidden_states`."""

    def __init__(self, vocab_size: int, dim: int, layers: int, heads: int, projection: bool,
                 with_hidden_states: bool):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = nn.Embedding(MAX_LENGTH, dim)
        nn.init.normal_(self.tok.weight, std=1.0)
        nn.init.normal_(self.pos.weight, std=0.5)
        self.layers = nn.ModuleList([EncoderLayer(dim, heads) for _ in range(layers)])
        self.final_ln = nn.LayerNorm(dim)
        self.projection = nn.Linear(dim, dim, bias=False) if projection else None
        self.with_hidden_states = with_hidden_states
        causal = torch.full((MAX_LENGTH, MAX_LENGTH), -1e4).triu(1)  # CLIP's causal mask
        self.register_buffer("causal", causal[None, None], persistent=False)

    def forward(self, input_ids: torch.Tensor):
        ids = input_ids.long()
        positions = torch.arange(MAX_LENGTH, dtype=torch.long)
        x = self.tok(ids) + self.pos(positions)[None]
        hidden = [x]
        for layer in self.layers:
            x = layer(x, self.causal)
            hidden.append(x)
        last = self.final_ln(x)
        # pooled = hidden state at the first EOS; EOS has the largest id (CLIPTextTransformer)
        eos_index = ids.float().argmax(dim=-1)
        pooled = last[torch.arange(last.shape[0]), eos_index]
        if self.projection is not None:
            pooled = self.projection(pooled)
        outs = [last, pooled]
        if self.with_hidden_states:
            outs += hidden
        return tuple(outs)


class ResBlock(nn.Module):
    """ResnetBlock2D: GN-SiLU-conv, + time embedding, GN-SiLU-conv, + (1x1) skip."""

    def __init__(self, cin: int, cout: int, temb_dim: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(temb_dim, cout) if temb_dim else None
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.temb is not None:
            h = h + self.temb(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.skip is None else self.skip(x)) + h


class CrossAttnBlock(nn.Module):
    """Transformer2DModel reduced to one cross-attention: GN, tokens, LN, attention over the text, out."""

    def __init__(self, ch: int, context_dim: int, heads: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch)
        self.proj_in = nn.Linear(ch, ch)
        self.ln = nn.LayerNorm(ch)
        self.attn = Attention(ch, context_dim, heads)
        self.proj_out = nn.Linear(ch, ch)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = self.norm(x).reshape(b, c, h * w).transpose(1, 2)
        t = self.proj_in(t)
        t = t + self.attn(self.ln(t), context)
        t = self.proj_out(t)
        return x + t.transpose(1, 2).reshape(b, c, h, w)


class UNet(nn.Module):
    """One-level UNet2DConditionModel look-alike. Inputs: sample, timestep, encoder_hidden_states
    (+ text_embeds, time_ids when sdxl)."""

    def __init__(self, in_ch: int, out_ch: int, ch: Tuple[int, int], context_dim: int, groups: int,
                 heads: int, sdxl: bool, text_embed_dim: int = 0, time_id_dim: int = 16):
        super().__init__()
        c0, c1 = ch
        self.c0 = c0
        temb = c0 * 4
        self.sdxl = sdxl
        self.time_id_dim = time_id_dim
        self.time_mlp = nn.Sequential(nn.Linear(c0, temb), nn.SiLU(), nn.Linear(temb, temb))
        if sdxl:
            self.add_mlp = nn.Sequential(nn.Linear(6 * time_id_dim + text_embed_dim, temb), nn.SiLU(),
                                         nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(in_ch, c0, 3, padding=1)
        self.res0 = ResBlock(c0, c0, temb, groups)
        self.down = nn.Conv2d(c0, c1, 3, stride=2, padding=1)
        self.res1 = ResBlock(c1, c1, temb, groups)
        self.attn = CrossAttnBlock(c1, context_dim, heads, groups)
        self.mid = ResBlock(c1, c1, temb, groups)
        self.up_conv = nn.Conv2d(c1, c1, 3, padding=1)
        self.res_up = ResBlock(c1 + c0, c0, temb, groups)
        self.norm_out = nn.GroupNorm(groups, c0)
        self.conv_out = nn.Conv2d(c0, out_ch, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds=None, time_ids=None):
        temb = self.time_mlp(timestep_embedding(timestep, self.c0))
        if self.sdxl:
            b = time_ids.shape[0]
            tid = timestep_embedding(time_ids.reshape(-1), self.time_id_dim).reshape(b, -1)
            temb = temb + self.add_mlp(torch.cat([text_embeds, tid], dim=-1))
        h0 = self.res0(self.conv_in(sample), temb)
        h = self.res1(self.down(h0), temb)
        h = self.attn(h, encoder_hidden_states)
        h = self.mid(h, temb)
        h = F.interpolate(h, size=(h0.shape[2], h0.shape[3]), mode="nearest")  # works for odd sizes too
        h = self.up_conv(h)
        h = self.res_up(torch.cat([h, h0], dim=1), temb)
        return self.conv_out(F.silu(self.norm_out(h)))


class VaeDecoder(nn.Module):
    def __init__(self, latent_ch: int, ch: int, out_ch: int, groups: int):
        super().__init__()
        self.conv_in = nn.Conv2d(latent_ch, ch, 3, padding=1)
        self.res = ResBlock(ch, ch, 0, groups)
        self.ups = nn.ModuleList([nn.Conv2d(ch, ch, 3, padding=1) for _ in range(3)])
        self.norms = nn.ModuleList([nn.GroupNorm(groups, ch) for _ in range(3)])
        self.norm_out = nn.GroupNorm(groups, ch)
        self.conv_out = nn.Conv2d(ch, out_ch, 3, padding=1)

    def forward(self, latent_sample):
        h = self.res(self.conv_in(latent_sample))
        for conv, norm in zip(self.ups, self.norms):
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = F.silu(norm(conv(h)))
        return self.conv_out(F.silu(self.norm_out(h)))


class VaeEncoder(nn.Module):
    def __init__(self, in_ch: int, ch: int, latent_ch: int, groups: int):
        super().__init__()
        self.conv_in = nn.Conv2d(in_ch, ch, 3, padding=1)
        self.downs = nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1) for _ in range(3)])
        self.norms = nn.ModuleList([nn.GroupNorm(groups, ch) for _ in range(3)])
        self.res = ResBlock(ch, ch, 0, groups)
        self.norm_out = nn.GroupNorm(groups, ch)
        self.conv_out = nn.Conv2d(ch, latent_ch, 3, padding=1)

    def forward(self, sample):
        h = self.conv_in(sample)
        for conv, norm in zip(self.downs, self.norms):
            h = F.silu(norm(conv(h)))
        h = self.res(h)
        return self.conv_out(F.silu(self.norm_out(h)))


# ---------------------------------------------------------------------------------------------------
# export helpers


def export(model: nn.Module, args: tuple, path: str, input_names: List[str], output_names: List[str],
           dynamic_axes: Dict[str, Dict[int, str]], external_data: bool = False) -> None:
    model.eval()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(model, args, path, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=OPSET, do_constant_folding=True)
    proto = onnx.load(path)
    proto.producer_name = "easel-make-fixtures"
    proto.producer_version = "1"
    if external_data:
        data = os.path.join(os.path.dirname(path), "model.onnx_data")
        if os.path.exists(data):
            os.remove(data)
        onnx.save_model(proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location="model.onnx_data", size_threshold=0)
    else:
        onnx.save_model(proto, path)
    onnx.checker.check_model(path)


def write_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def seeded(seed: int, ctor):
    """Build a model under a fixed seed, then strengthen its attention layers: PyTorch's default Linear
    init gives near-uniform attention over the 77 mostly-padding tokens, which would make the outputs
    barely depend on the prompt. Larger q/k make attention selective, larger v/out make it matter."""
    torch.manual_seed(seed)
    model = ctor()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, Attention):
                module.q.weight.mul_(3.0)
                module.k.weight.mul_(3.0)
                module.v.weight.mul_(2.0)
                module.out.weight.mul_(2.0)
            if isinstance(module, ResBlock) and module.temb is not None:
                module.temb.weight.mul_(2.0)  # so the output clearly follows the timestep too
    return model


def make_tokenizer(folder: str, pad_token: str = EOS_TOKEN) -> Tuple[Dict[str, int], list]:
    vocab, merges = train_bpe(caption_corpus(), 600)
    write_tokenizer_folder(folder, vocab, merges, MAX_LENGTH, pad_token=pad_token)
    return vocab, merges


def text_encoder_config(vocab: Dict[str, int], dim: int, layers: int, heads: int, with_projection: bool,
                        pad_id: int) -> dict:
    return {
        "_name_or_path": "easel/tiny-random-clip",
        "architectures": ["CLIPTextModelWithProjection" if with_projection else "CLIPTextModel"],
        "attention_dropout": 0.0,
        "bos_token_id": vocab["<|startoftext|>"],
        "eos_token_id": vocab["<|endoftext|>"],
        "hidden_act": "quick_gelu",
        "hidden_size": dim,
        "initializer_factor": 1.0,
        "intermediate_size": dim * 2,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": MAX_LENGTH,
        "model_type": "clip_text_model",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "pad_token_id": pad_id,
        "projection_dim": dim,
        "torch_dtype": "float32",
        "transformers_version": TRANSFORMERS_VERSION,
        "vocab_size": len(vocab),
    }


def write_text_encoder(folder: str, vocab: Dict[str, int], seed: int, dim: int, layers: int, heads: int,
                       projection: bool, hidden_states: bool, ids_dtype: torch.dtype, pad_id: int) -> None:
    model = seeded(seed, lambda: TextEncoder(len(vocab), dim, layers, heads, projection, hidden_states))
    ids = torch.full((1, MAX_LENGTH), vocab[EOS_TOKEN], dtype=ids_dtype)
    ids[0, 0] = vocab["<|startoftext|>"]
    ids[0, 1:4] = torch.tensor([10, 20, 30], dtype=ids_dtype)
    outputs = ["last_hidden_state", "text_embeds" if projection else "pooler_output"]
    if hidden_states:
        outputs += [f"hidden_states.{i}" for i in range(layers + 1)]
    axes = {"input_ids": {0: "batch_size"}}
    axes.update({name: {0: "batch_size"} for name in outputs})
    # the projected model lists text_embeds first, as optimum's CLIPTextModelWithProjection export does
    if projection:
        class Reorder(nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids):
                outs = self.inner(input_ids)
                return (outs[1], outs[0]) + tuple(outs[2:])

        export_model: nn.Module = Reorder(model)
        outputs = [outputs[1], outputs[0]] + outputs[2:]
    else:
        export_model = model
    export(export_model, (ids,), os.path.join(folder, "model.onnx"), ["input_ids"], outputs, axes)
    write_json(os.path.join(folder, "config.json"),
               text_encoder_config(vocab, dim, layers, heads, projection, pad_id))


def scheduler_config(class_name: str, spacing: str, offset: int) -> dict:
    return {
        "_class_name": class_name,
        "_diffusers_version": DIFFUSERS_VERSION,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "beta_start": 0.00085,
        "clip_sample": False,
        "interpolation_type": "linear",
        "num_train_timesteps": 1000,
        "prediction_type": "epsilon",
        "rescale_betas_zero_snr": False,
        "sample_max_value": 1.0,
        "set_alpha_to_one": False,
        "skip_prk_steps": True,
        "steps_offset": offset,
        "timestep_spacing": spacing,
        "trained_betas": None,
        "use_karras_sigmas": False,
    }


VAE_CH = 16
VAE_GROUPS = 4


def write_vae(root: str, seed: int, scaling_factor: float) -> None:
    config = {
        "_class_name": "AutoencoderKL",
        "_diffusers_version": DIFFUSERS_VERSION,
        "act_fn": "silu",
        "block_out_channels": [VAE_CH] * 4,
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "force_upcast": True,
        "in_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 1,
        "norm_num_groups": VAE_GROUPS,
        "out_channels": 3,
        "sample_size": 64,
        "scaling_factor": scaling_factor,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
    }
    dec = seeded(seed, lambda: VaeDecoder(4, VAE_CH, 3, VAE_GROUPS))
    export(dec, (torch.randn(1, 4, 8, 8),), os.path.join(root, "vae_decoder", "model.onnx"),
           ["latent_sample"], ["sample"],
           {"latent_sample": {0: "batch_size", 2: "height", 3: "width"},
            "sample": {0: "batch_size", 2: "height_x8", 3: "width_x8"}})
    write_json(os.path.join(root, "vae_decoder", "config.json"), config)
    enc = seeded(seed + 1, lambda: VaeEncoder(3, VAE_CH, 4, VAE_GROUPS))
    export(enc, (torch.randn(1, 3, 64, 64),), os.path.join(root, "vae_encoder", "model.onnx"),
           ["sample"], ["latent_sample"],
           {"sample": {0: "batch_size", 2: "height", 3: "width"},
            "latent_sample": {0: "batch_size", 2: "height_div8", 3: "width_div8"}})
    write_json(os.path.join(root, "vae_encoder", "config.json"), config)


UNET_CH = (16, 32)
UNET_GROUPS = 4
UNET_HEADS = 2


def unet_config(in_ch: int, context_dim: int, sdxl: bool, text_embed_dim: int = 0) -> dict:
    config = {
        "_class_name": "UNet2DConditionModel",
        "_diffusers_version": DIFFUSERS_VERSION,
        "act_fn": "silu",
        "attention_head_dim": UNET_CH[1] // UNET_HEADS,
        "block_out_channels": list(UNET_CH),
        "center_input_sample": False,
        "cross_attention_dim": context_dim,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": in_ch,
        "layers_per_block": 1,
        "mid_block_type": "UNetMidBlock2DCrossAttn",
        "norm_num_groups": UNET_GROUPS,
        "out_channels": 4,
        "sample_size": 8,
        "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
    }
    if sdxl:
        config.update({
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": 16,
            "projection_class_embeddings_input_dim": 6 * 16 + text_embed_dim,
        })
    return config


def write_unet(root: str, seed: int, in_ch: int, context_dim: int, sdxl: bool, text_embed_dim: int = 0) -> None:
    model = seeded(seed, lambda: UNet(in_ch, 4, UNET_CH, context_dim, UNET_GROUPS, UNET_HEADS, sdxl,
                                      text_embed_dim))
    b = 2
    sample = torch.randn(b, in_ch, 8, 8)
    ehs = torch.randn(b, MAX_LENGTH, context_dim)
    axes = {"sample": {0: "batch_size", 2: "height", 3: "width"},
            "timestep": {0: "batch_size"},
            "encoder_hidden_states": {0: "batch_size"},
            "out_sample": {0: "batch_size", 2: "height", 3: "width"}}
    if sdxl:
        args = (sample, torch.tensor([999.0, 500.0]), ehs, torch.randn(b, text_embed_dim),
                torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]] * b))
        names = ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"]
        axes.update({"text_embeds": {0: "batch_size"}, "time_ids": {0: "batch_size"}})
    else:
        args = (sample, torch.tensor([999, 500], dtype=torch.int64), ehs)
        names = ["sample", "timestep", "encoder_hidden_states"]
    export(model, args, os.path.join(root, "unet", "model.onnx"), names, ["out_sample"], axes,
           external_data=sdxl)
    write_json(os.path.join(root, "unet", "config.json"), unet_config(in_ch, context_dim, sdxl, text_embed_dim))


# ---------------------------------------------------------------------------------------------------
# pipelines


TEXT_DIM = 32
TEXT_DIM_2 = 48


def model_index(class_name: str, sdxl: bool) -> dict:
    index = {
        "_class_name": class_name,
        "_diffusers_version": DIFFUSERS_VERSION,
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "EulerAncestralDiscreteScheduler" if sdxl else "EulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    if sdxl:
        del index["safety_checker"], index["requires_safety_checker"]
        index.update({
            "force_zeros_for_empty_prompt": True,
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
        })
    return dict(sorted(index.items()))


def make_sd(root: str, inpaint: bool) -> None:
    vocab, _ = make_tokenizer(os.path.join(root, "tokenizer"))
    eos = vocab[EOS_TOKEN]
    write_text_encoder(os.path.join(root, "text_encoder"), vocab, 1, TEXT_DIM, 1, 2, False, False,
                       torch.int32, eos)
    write_unet(root, 2 if not inpaint else 12, 9 if inpaint else 4, TEXT_DIM, False)
    write_vae(root, 3, 0.18215)
    write_json(os.path.join(root, "scheduler", "scheduler_config.json"),
               scheduler_config("EulerDiscreteScheduler", "leading", 1))
    name = "StableDiffusionInpaintPipeline" if inpaint else "StableDiffusionPipeline"
    write_json(os.path.join(root, "model_index.json"), model_index(name, False))


def make_sdxl(root: str) -> None:
    vocab, _ = make_tokenizer(os.path.join(root, "tokenizer"))
    vocab2, _ = make_tokenizer(os.path.join(root, "tokenizer_2"), pad_token="!")
    write_text_encoder(os.path.join(root, "text_encoder"), vocab, 21, TEXT_DIM, 2, 2, False, True,
                       torch.int32, vocab[EOS_TOKEN])
    write_text_encoder(os.path.join(root, "text_encoder_2"), vocab2, 22, TEXT_DIM_2, 2, 2, True, True,
                       torch.int64, vocab2["!"])
    write_unet(root, 23, 4, TEXT_DIM + TEXT_DIM_2, True, TEXT_DIM_2)
    write_vae(root, 24, 0.13025)
    write_json(os.path.join(root, "scheduler", "scheduler_config.json"),
               scheduler_config("EulerAncestralDiscreteScheduler", "trailing", 0))
    write_json(os.path.join(root, "model_index.json"), model_index("StableDiffusionXLPipeline", True))


FIXTURES = {
    "tiny-sd": lambda root: make_sd(root, inpaint=False),
    "tiny-sdxl": make_sdxl,
    "tiny-sd-inpaint": lambda root: make_sd(root, inpaint=True),
}


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(here, "..", "test", "fixtures"))
    parser.add_argument("--only", choices=sorted(FIXTURES), action="append")
    parser.add_argument(
        "--width-mult", type=int, default=1,
        help="multiply UNet/VAE widths (benchmark-sized models for bench/engine; never committed)",
    )
    args = parser.parse_args()
    global UNET_CH, VAE_CH
    UNET_CH = tuple(c * args.width_mult for c in UNET_CH)
    VAE_CH = VAE_CH * args.width_mult
    torch.set_num_threads(1)
    for name in args.only or list(FIXTURES):
        root = os.path.join(args.out, name)
        if os.path.isdir(root):
            shutil.rmtree(root)
        FIXTURES[name](root)
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
        print(f"{name}: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
