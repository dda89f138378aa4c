#!/bin/bash
# Chooses the guidance scale (and whether DDIM clips x0) for an exported model by measurement: for each
# candidate, a copy of the model folder gets that setting in easel.json / scheduler_config.json and the held-out
# prompts go through the public API (`npm run eval:default-model`). Prints one line per candidate.
#   training/tune_presets.sh [MODEL_DIR] [LIMIT] [QUALITY] [CANDIDATES]
#   e.g. training/tune_presets.sh models/easel-shapes 100 medium "2,3,4,6,3c,4@0-700"
#   candidate = GUIDANCE, then "c" for DDIM clip_sample, then "@LO-HI" for guidance only at timesteps LO..HI, then
#   ":SCHEDULER" for another sampler than the folder's own (ddim, euler, euler-ancestral, dpm-solver-multistep),
#   e.g. "3:ddim"
# HELDOUT=FILE scores the candidates on another held-out set (training/heldout-check.json): choose on the sets
# heldout.json and heldout-check.json, then score the winner once on training/heldout-confirm.json.
# Then re-export with the winner:
#   python3 training/export.py --guidance G [--clip-sample] [--guidance-interval LO HI] [--scheduler S]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=$(realpath "${1:-models/easel-shapes}")
LIMIT=${2:-100}
QUALITY=${3:-medium}
CANDIDATES=${4:-1.5,2,3,4,6,2c,4c}
HELDOUT=${HELDOUT:-training/heldout.json}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
IFS=, read -ra list <<< "$CANDIDATES"
for c in "${list[@]}"; do
  interval=
  spec=$c
  sched=
  if [[ $spec == *:* ]]; then sched=${spec#*:}; spec=${spec%%:*}; fi
  if [[ $spec == *@* ]]; then interval=${spec#*@}; spec=${spec%@*}; fi
  g=${spec%c}
  clip=false
  [ "$g" != "$spec" ] && clip=true
  dir="$WORK/$c"
  cp -r "$MODEL" "$dir"
  node -e '
    const fs = require("fs");
    const [dir, g, clip, interval, sched] = process.argv.slice(1);
    const e = JSON.parse(fs.readFileSync(dir + "/easel.json", "utf8"));
    for (const p of Object.values(e.quality_presets)) {
      p.guidance_scale = Number(g);
      if (sched) p.scheduler = sched; // the engine checks the name when the folder loads
      if (interval) p.guidance_interval = interval.split("-").map(Number);
      else delete p.guidance_interval;
    }
    fs.writeFileSync(dir + "/easel.json", JSON.stringify(e, null, 2));
    const sp = dir + "/scheduler/scheduler_config.json";
    const vae = JSON.parse(fs.readFileSync(dir + "/vae_decoder/config.json", "utf8"));
    const s = JSON.parse(fs.readFileSync(sp, "utf8"));
    s.clip_sample = clip === "true";
    s.clip_sample_range = vae.scaling_factor;
    fs.writeFileSync(sp, JSON.stringify(s, null, 2));
  ' "$dir" "$g" "$clip" "$interval" "$sched"
  [ -n "$sched" ] || sched=$(node -p 'require(process.argv[1])._class_name' "$dir/scheduler/scheduler_config.json")
  if ! out=$(npx tsx bench/eval-default-model.ts --model "$dir" --quality "$QUALITY" --size 1024x1024 --limit "$LIMIT" \
      --heldout "$HELDOUT" 2>&1); then
    echo "candidate $c failed: $(grep -m1 'Error:' <<< "$out")" >&2
    continue
  fi
  score=$(grep '^adherence:' <<< "$out" | sed 's/ (.*//')
  checks=$(sed -n '/^by check/,/^median/p' <<< "$out" | grep -v '^by check\|^median' \
    | awk '{printf "%s %s  ", $1, $(NF-2)}')
  printf 'guidance %-4s clip_sample %-5s interval %-9s %-31s %s  | %s\n' "$g" "$clip" "${interval:-all}" "$sched" "$score" \
    "$checks"
done
