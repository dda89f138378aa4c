#!/bin/sh
# Retrains Easel's default model (easel-shapes) from scratch and exports models/easel-shapes/.
# Usage: training/run.sh [DN_MINUTES]   (default 120; pass more on CPU for a better model)
set -e
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
mkdir -p training/runs training/checkpoints
rm -f training/checkpoints/easel.pt
"$PY" training/make_heldout.py
"$PY" training/train.py --ae-minutes 10 --dn-minutes "${1:-120}" --pool 40000
"$PY" training/decoder_tune.py --source smear --minutes 25   # small shapes keep their outline (decoder_tune.py)
"$PY" training/export.py
"$PY" training/verify_export.py
