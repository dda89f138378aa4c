# Exports a training checkpoint to the diffusers-layout ONNX folder the Easel engine loads
# (models/easel-shapes/): four ONNX graphs, configs, tokenizer, palette.json, easel.json and MODEL.md.
"""Usage: python3 training/export.py [--ckpt training/checkpoints/easel.pt] [--out models/easel-shapes]

Exports the EMA weights in fp32 (the whole folder is ~28 MB, under the 40 MB budget, so no fp16
storage is needed), opset 17, dynamic batch and spatial axes. Checks each graph against PyTorch with
onnx's checker and, when onnxruntime is importable, numerically (the Node check is `verify_onnx.mjs`).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bpe  # noqa: E402
import scenes  # noqa: E402
from model import LATENT_CHANNELS, TEXT_DIM, Decoder, Encoder, TextEncoder, UNet, n_params  # noqa: E402
from train import Tok, load_sd  # noqa: E402

NATIVE_SIZES = [[256, 256], [384, 256], [256, 384], [448, 256], [256, 448]]
PRESET_STEPS = {"low": 8, "medium": 16, "high": 28, "standard": 16, "hd": 28}
# Samplers the export can name in scheduler_config.json (Easel scheduler name -> diffusers class, card title).
SCHEDULER_CLASSES = {"ddim": "DDIMScheduler", "euler": "EulerDiscreteScheduler",
                     "euler-ancestral": "EulerAncestralDiscreteScheduler",
                     "dpm-solver-multistep": "DPMSolverMultistepScheduler"}
SCHEDULER_TITLES = {"ddim": "DDIM", "euler": "Euler", "euler-ancestral": "Euler ancestral",
                    "dpm-solver-multistep": "DPM-Solver++ (2M)"}


def presets(guidance, interval=None):
    """easel.json quality presets: sampler steps per preset, one guidance scale and optionally the timesteps it applies
    at (chosen with tune_presets.sh)."""
    extra = {"guidance_interval": list(interval)} if interval else {}
    return {k: {"steps": n, "guidance_scale": guidance, **extra} for k, n in PRESET_STEPS.items()}


class TextWrap(nn.Module):
    def __init__(self, t):
        super().__init__()
        self.t = t

    def forward(self, input_ids):
        return self.t(input_ids)


class DecWrap(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.d = d

    def forward(self, latent_sample):
        return self.d(latent_sample).clamp(-1.0, 1.0)


def dump(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def export_graph(model, args, names, outs, dyn, path, preserve=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(model, args, path, input_names=names, output_names=outs, dynamic_axes=dyn,
                          opset_version=17, do_constant_folding=True,
                          training=torch.onnx.TrainingMode.PRESERVE if preserve else torch.onnx.TrainingMode.EVAL)
    import onnx
    onnx.checker.check_model(onnx.load(path))


RESTORE = ("git restore --source=$(git rev-list -n 1 HEAD -- training/checkpoints/easel.pt)^ --worktree -- training/checkpoints/easel.pt")


def load(ckpt_path):
    if not os.path.exists(ckpt_path):
        # the checkpoint of the shipped model was deleted once it met its goal; git history keeps it
        sys.exit(f"no checkpoint at {ckpt_path}; restore the shipped model's from git history with\n  {RESTORE}")
    st = torch.load(ckpt_path, weights_only=False)
    E, D = Encoder(), Decoder()
    load_sd(E, st["enc"])
    load_sd(D, st["dec"])
    T, U = TextEncoder(len(st["vocab"])), UNet(**st.get("unet_config", dict(full_res_self_attn=True)))
    load_sd(T, st["text_ema"])
    load_sd(U, st["unet_ema"])
    for m in (E, D, T, U):
        m.eval()
    return st, E, D, T, U


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoints", "easel.pt"))
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "easel-shapes"))
    ap.add_argument("--guidance", type=float, default=1.5,
                    help="classifier-free guidance of every preset (1.5: best of 1-4 for the shipped export, see MODEL.md)")
    ap.add_argument("--clip-sample", action="store_true", help="DDIM clips x0 to the latent range (+-scaling_factor)")
    ap.add_argument("--guidance-interval", type=float, nargs=2, metavar=("LO", "HI"),
                    help="guidance only at timesteps LO..HI (easel.json guidance_interval)")
    ap.add_argument("--scheduler", choices=sorted(SCHEDULER_CLASSES), default="euler",
                    help="the sampler the folder's scheduler_config.json names, the engine's default for this model "
                         "(euler: best of the four for the shipped export, see MODEL.md)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    st, E, D, T, U = load(args.ckpt)
    out = args.out
    os.makedirs(out, exist_ok=True)
    vocab, merges = st["vocab"], [tuple(m) for m in st["merges"]]
    tok = Tok(vocab, merges)
    bpe.write_tokenizer_folder(os.path.join(out, "tokenizer"), vocab, merges, 77)

    ids = torch.tensor([tok("a red circle on a blue background"), tok("")], dtype=torch.int32)
    T.train()  # dropout is 0; train mode keeps torch off the fused (non-exportable) transformer fast path
    export_graph(TextWrap(T), (ids,), ["input_ids"], ["last_hidden_state"],
                 {"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"}},
                 os.path.join(out, "text_encoder", "model.onnx"), preserve=True)
    z = torch.randn(2, LATENT_CHANNELS, 16, 16)
    ts = torch.tensor([999.0, 500.0])
    ctx = torch.randn(2, 77, TEXT_DIM)
    export_graph(U, (z, ts, ctx), ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
                 {"sample": {0: "batch", 2: "height", 3: "width"}, "timestep": {0: "batch"},
                  "encoder_hidden_states": {0: "batch"}, "out_sample": {0: "batch", 2: "height", 3: "width"}},
                 os.path.join(out, "unet", "model.onnx"))
    export_graph(DecWrap(D), (z,), ["latent_sample"], ["sample"],
                 {"latent_sample": {0: "batch", 2: "height", 3: "width"}, "sample": {0: "batch", 2: "height", 3: "width"}},
                 os.path.join(out, "vae_decoder", "model.onnx"))
    x = torch.rand(2, 4, 256, 256) * 2 - 1
    export_graph(E, (x,), ["sample"], ["latent_sample"],
                 {"sample": {0: "batch", 2: "height", 3: "width"}, "latent_sample": {0: "batch", 2: "height", 3: "width"}},
                 os.path.join(out, "vae_encoder", "model.onnx"))

    sf = float(st["scaling_factor"])
    vae_cfg = {"_class_name": "AutoencoderKL", "_easel_note": "deterministic RGBA autoencoder, x16 (training/model.py)",
               "in_channels": 4, "out_channels": 4, "latent_channels": LATENT_CHANNELS,
               "block_out_channels": [32, 64, 96, 128, 128], "scaling_factor": sf, "sample_size": 256}
    dump(os.path.join(out, "vae_decoder", "config.json"), vae_cfg)
    dump(os.path.join(out, "vae_encoder", "config.json"), vae_cfg)
    dump(os.path.join(out, "unet", "config.json"),
         {"_class_name": "UNet2DConditionModel", "in_channels": LATENT_CHANNELS, "out_channels": LATENT_CHANNELS,
          "sample_size": 16, "cross_attention_dim": TEXT_DIM, "block_out_channels": [64, 128, 192],
          "_easel_params": n_params(U)})
    dump(os.path.join(out, "text_encoder", "config.json"),
         {"_class_name": "CLIPTextModel", "hidden_size": TEXT_DIM, "num_hidden_layers": 3,
          "max_position_embeddings": 77, "vocab_size": len(vocab), "_easel_params": n_params(T)})
    dump(os.path.join(out, "scheduler", "scheduler_config.json"),
         {"_class_name": SCHEDULER_CLASSES[args.scheduler], "num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2",
          "beta_start": 0.0001, "beta_end": 0.02, "prediction_type": "v_prediction", "timestep_spacing": "trailing",
          "set_alpha_to_one": True, "steps_offset": 0, "clip_sample": args.clip_sample, "clip_sample_range": sf})
    dump(os.path.join(out, "model_index.json"),
         {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.25.0",
          "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
          "unet": ["diffusers", "UNet2DConditionModel"], "vae_decoder": ["diffusers", "AutoencoderKL"],
          "vae_encoder": ["diffusers", "AutoencoderKL"], "scheduler": ["diffusers", SCHEDULER_CLASSES[args.scheduler]],
          "requires_safety_checker": False})
    dump(os.path.join(out, "palette.json"), {k: list(v) for k, v in scenes.PALETTE.items()})
    dump(os.path.join(out, "easel.json"), {"quality_presets": presets(args.guidance, args.guidance_interval), "native_sizes": NATIVE_SIZES,
                                           "supports_alpha": True,
                                           "transparent_background_prompt": ", on a transparent background"})
    write_card(out, st, n_params(U), n_params(T), n_params(D), n_params(E), args.guidance, args.clip_sample, args.guidance_interval,
               args.scheduler)
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(out) for f in fs)
    print(f"exported {out}: {total / 1e6:.1f} MB")


def _run_line(r):
    """One line of the model card's run history from a checkpoint's `runs` entry."""
    line = (f"  - steps {r['start_step']}-{r.get('end_step', r['start_step'])}: {r.get('seconds', 0) / 60:.0f} min on "
            f"{r['hardware']}, batch {r['batch']}, lr {r['lr']:g}{' cosine-decayed to 5%' if r.get('lr_decay') else ''}, "
            f"pool {r['pool']:,} scenes")
    if "pool_round" in r:
        line += f" (round {r['pool_round']})"
    if r.get("object_weight"):
        line += f", object loss weight {r['object_weight']:g}{' decayed with it' if r.get('object_weight_decay') else ''}"
    if r.get("aux_weight"):
        line += f", text auxiliary loss weight {r['aux_weight']:g}"
    if r.get("layout") == "canonical":
        line += ", canonical layout for unplaced objects"
    if r.get("note"):
        line += f" ({r['note']})"
    return line + "\n"


def write_card(out, st, nu, nt, nd, ne, guidance, clip_sample, interval, scheduler):
    card_path = os.path.join(out, "MODEL.md")
    results = ""
    if os.path.exists(card_path):  # keep a measured-results section written by hand / by the eval
        old = open(card_path).read()
        if "<!-- results -->" in old:
            results = old[old.index("<!-- results -->"):]
    if not results:
        results = "<!-- results -->\n## Results\n\nNot measured yet for this export.\n"
    log = st.get("log", [])
    aux_note = ("" if "text_aux" not in st else
                "\n  Trained with an auxiliary loss (from the runs that list it): linear read-outs of every token's state "
                "must give its role\n  and the whole object it belongs to (colour, shape, size, place, count) or the "
                "background (kind, top and bottom\n  colour), so each token carries its object's bound attributes "
                "(`training/README.md`).")
    cfg = st.get("unet_config", dict(full_res_self_attn=True))
    attn_levels = "at every level" if cfg["full_res_self_attn"] else "at 8x8 and 4x4 only"
    runs = "".join(_run_line(r) for r in st.get("runs", []))
    first = st.get("runs", [{}])[0].get("start_step", st.get("step"))
    if first:  # runs from before train.py kept a record (session 1: CPU, 2 threads, batch 32, lr 1e-3)
        runs = (f"  - steps 0-{first}: CPU, 2 threads, batch 32, lr 1e-3, pool 40,000 scenes, UNet with 16x16 "
                f"self-attention (no per-run record; the next run warm-started the current layout from it)\n" + runs)
    ae_more = {0: "", 1: ", then trained on for 30 min (`--ae-more-minutes`, lr 5e-4 cosine-decayed) on 5,000 new scenes",
               2: ", then trained on for 30 min (`--ae-more-minutes`, lr 5e-4 cosine-decayed) on 5,000 new scenes, and "
                  "converted to shape-code latents (`--ae-more-minutes 20 --ae-lr 1e-3`, 3,000 new scenes: the "
                  "decoder learns to draw from the latent made from each scene, the encoder to read the codes "
                  "back)"}.get(st.get("ae_version", 0), f" (autoencoder version {st.get('ae_version')})")
    obj_w = (" and, from the runs that list it, an object-weighted loss (latent pixels covered by objects count "
             "up to 1 + w times as much: `train.object_weight`)" if any(r.get("object_weight") for r in st.get("runs", [])) else "")
    dt = st.get("dec_tune")
    dec_tune = "" if not dt else (
        f"\n  Then the decoder was fine-tuned (`training/decoder_tune.py --source {dt['source']}`) on "
        f"{dt['scenes']:,} training scenes: "
        + (f"each scene's\n  latent blurred by a Gaussian of random sigma up to {dt['smear']:g} latent pixels (size, "
           f"place and shape code kept, exact\n  coverage pattern lost, as in the denoiser's latents)"
           if dt["source"] == "smear" else
           f"each scene's\n  latent noised to a timestep in {dt['t_min']}-{dt['t_max']} and finished by the denoiser "
           f"({dt['sampler_steps']}-step schedule,\n  guidance {dt['guidance']:g}), {dt['kept']:,} pairs kept")
        + f"; {dt['steps']} decoder steps in {dt['minutes']:g} min, lr {dt['lr']:g}\n  cosine-decayed, half the "
          f"crops from these latents, half from exact ones.")
    layout_note = ("" if not any(r.get("layout") == "canonical" for r in st.get("runs", [])) else
                   "\n- Where the prompt names no position, the model composes the scene itself, as trained (`scenes.TEMPLATES`,\n"
                   "  from the runs that list a canonical layout): one object in the centre, two side by side, three in a\n"
                   "  triangle, and other free cells when named objects take those. Images of one prompt differ in small\n"
                   "  shifts and details, not in where things go; name positions for other layouts.")
    curve = ", ".join(f"step {e[0]}: {e[2]:.3f}" for e in log[:: max(1, len(log) // 8)]) if log else "n/a"
    text = f"""# easel-shapes

Easel's own default text-to-image model: a small latent diffusion model trained from scratch by this
project on procedurally generated scenes (`training/scenes.py`), shipped in the diffusers ONNX layout
so the default path runs the same engine code as big models. It works offline; no weights come from
anywhere else.

## What it draws
One to three flat-coloured shapes on a solid colour, a vertical two-colour gradient or a transparent
background, from prompts such as "a large red star in the top left corner on a blue background" or
"two pink circles and a small gray ring at the bottom, transparent background".

- Colours: {", ".join(scenes.COLORS)}. `palette.json` maps each colour name to the exact sRGB triple
  the model was trained to paint it with.
- Shapes: {", ".join(scenes.SHAPES)}.
- Sizes: small, large (medium when unsaid). Positions: top left, top, top right, left, center, right,
  bottom left, bottom, bottom right. Counts one to three ("a", "an", "one", "two", "three"), same kind
  ("two pink circles") or different ("... and ...").{layout_note}
- Backgrounds: "on a blue background" / "blue background", "a gradient from blue to pink" (first
  colour at the top), "transparent background" (real alpha: the VAE decodes RGBA, straight alpha).
  No background named means white. A request with `background: "transparent"` whose prompt does not
  say "transparent" gets ", on a transparent background" appended to the prompt the model sees
  (`easel.json` `transparent_background_prompt`). Other words are ignored (training captions contain random
  distractor words and made-up words, which the BPE splits into sub-tokens).

## Architecture
- Tokenizer: CLIP-style byte-level BPE ({len(st['vocab'])} tokens) trained by `training/bpe.py` on the
  caption generator's output plus common English words; every vocabulary word is one token.
- Text encoder: token + position embeddings, 3 bidirectional transformer layers, width {TEXT_DIM}
  ({nt / 1e6:.2f}M parameters); output `last_hidden_state` [B, 77, {TEXT_DIM}].{aux_note}
- VAE: deterministic RGBA autoencoder with a x16 spatial factor and {LATENT_CHANNELS} latent channels. The
  first 4 latent channels are the RGBA image area-averaged 16x16 (colours and layout); the other 4 are
  shape codes: each shape has a fixed 4-vector (`training/scenes.py` `SHAPE_CODES`), painted over the
  object's coverage and area-averaged the same way. So the denoiser paints a flat code where it paints an
  object's colour (shape is as easy to generate as colour), and the decoder draws the exact outline from the
  coverage and the code. Encoder = 4x4 area pooling + a learned x4 conv downsampling that reads the codes
  back from pixels ({ne / 1e6:.2f}M, used by edits); decoder = bilinear x16 of the 4 colour channels plus a
  learned residual from four x2 pixel-shuffle stages ({nd / 1e6:.2f}M) that draws the shapes and sharp
  edges. Trained with L1 on 96x96 crops centred on detail, from latents made from the scenes, with
  latent-noise augmentation so it also cleans up small denoiser errors. `scaling_factor` = {float(st['scaling_factor']):.4f} (1 / latent std).
- UNet: conv + attention UNet on 16x16 latents (levels 16/8/4, widths 64/128/192), cross-attention
  to the text at every level, self-attention {attn_levels}, two coordinate input channels so absolute
  places ("top left") are easy to learn at every aspect ratio ({nu / 1e6:.2f}M parameters).
- Schedule: 1000 steps, `squaredcos_cap_v2`, v-prediction, min-SNR-5 loss weighting{obj_w}; sampled with
  {SCHEDULER_TITLES[scheduler]}, trailing timestep spacing. Classifier-free guidance: 10% of training
  captions were replaced by the tokenization of "" (what the engine uses as the unconditional prompt).

## Sizes
Native sizes (`easel.json`): 256x256, 384x256, 256x384, 448x256 and 256x448 (latents 16x16 ... 28x16;
the UNet was trained on all five aspect buckets). The server generates at the native size closest in
aspect to the request and resizes to it (e.g. 1024x1024 = 256x256 upscaled 4x, 1792x1024 = 448x256
upscaled 4x). Why not native latents at 1024: on two CPU cores a 64x64 latent would cost 16x the
denoiser time per image and per training sample, and the prototype saw layout break at large latents;
flat-colour shapes upscale cleanly, so the compute goes into getting the layout right instead.

## Quality presets (`easel.json`)
| preset | steps | guidance |
|---|---|---|
""" + "".join(f"| {k} | {v['steps']} | {v['guidance_scale']} |\n" for k, v in presets(guidance).items()) + f"""
Sampling: {SCHEDULER_TITLES[scheduler]}, trailing timestep spacing{", x0 clipped to the latent range (`clip_sample`)" if clip_sample else ""}{
f"; guidance only at timesteps {interval[0]:g}-{interval[1]:g} (`guidance_interval`; the other steps run the conditional pass alone)" if interval else ""}. The guidance
scale and the sampler were chosen by `training/tune_presets.sh` (held-out adherence through the API for each
candidate). A request's `scheduler` extension field picks another sampler.

## Recipe (reproduce with `training/run.sh`)
- Seed {st.get('seed')}; scenes from `training/scenes.py` (held-out colour-shape pairs, shape pairs and
  placements in `scenes.HELDOUT_*` never appear in training).
- Autoencoder: {st.get('ae_steps')} steps of batch 16 ({st.get('ae_minutes')} min) in all: 10 min from scratch on 3,000
  rendered 256x256 scenes{ae_more}; then the decoder alone keeps sharpening during denoiser training
  ({st.get('dec_steps', 0)} more steps, one every 3-6 denoiser steps).{dec_tune}
- Denoiser + text encoder: {st.get('step')} steps = {st.get('samples')} samples, AdamW, a pool of rendered
  scenes encoded once per run, first 10 minutes on one-object scenes only. Denoiser wall time
  {st.get('dn_seconds', 0) / 60:.0f} min in all. Runs (each resume restarts AdamW with a 150-step warm-up):
{runs}
- Loss (min-SNR-weighted v-MSE, mean of 50 steps): {curve}.

{results}"""
    with open(card_path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
