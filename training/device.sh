#!/bin/sh
# Training on a lent GPU machine (the project's `device` tool: one command of at most 10 minutes per call,
# the machine kept warm between calls). The run lives outside the repository copy so a re-synced working tree
# cannot overwrite it; each call copies a snapshot (log, latest preview, checkpoint in 15 MB parts) to $OUT.
#   sh training/device.sh start MINUTES   # resume from the committed checkpoint, train MINUTES in the background
#   sh training/device.sh wait SECONDS    # sleep until then or until training ends, then snapshot
# Here: cat parts/easel.pt.part-* > training/checkpoints/easel.pt
set -e
RUN=/root/easel-run
case "$1" in
start)
  mkdir -p "$RUN"
  [ -f "$RUN/easel.pt" ] || cp training/checkpoints/easel.pt "$RUN/easel.pt"
  nvidia-smi -L; python3 -c 'import torch; print("torch", torch.__version__)'
  PYTHONUNBUFFERED=1 setsid nohup python3 training/train.py --ckpt "$RUN/easel.pt" --runs "$RUN" \
    --pool 300000 --pool-workers 15 --threads 4 --batch 256 --lr 1e-3 --ema 0.999 \
    --run-minutes "$2" --lr-decay --dn-minutes 100000 --ckpt-every 4 --dec-batch 32 --dec-scenes 3000 \
    > "$RUN/train.log" 2>&1 < /dev/null &
  exit 0
  ;;
wait)
  end=$(( $(date +%s) + $2 ))
  while [ "$(date +%s)" -lt "$end" ] && pgrep -f training/train.py > /dev/null; do sleep 5; done
  ;;
esac
tail -25 "$RUN/train.log"
cp "$RUN/train.log" "$OUT/"
last=$(ls "$RUN"/preview_*.png 2>/dev/null | tail -1); [ -n "$last" ] && cp "$last" "$OUT/"
[ -f "$RUN/easel.pt" ] && split -b 15000000 -d "$RUN/easel.pt" "$OUT/easel.pt.part-"
pgrep -f training/train.py > /dev/null && echo "training still running" || echo "training not running"
