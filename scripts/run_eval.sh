#!/usr/bin/env bash
# Evaluate a checkpoint with the metric of the model's paper.
#   bash scripts/run_eval.sh MODEL CONFIG CKPT [DEVICE] [key=value ...]
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -ge 3 ] || die "usage: $0 MODEL CONFIG CKPT [DEVICE] [key=value ...]"
MODEL="$1"; CONFIG="$2"; CKPT="$3"; shift 3
DEVICE="CPU"
if [ $# -gt 0 ] && [[ "$1" != *=* ]]; then DEVICE="$1"; shift; fi
[ -f "$CKPT" ] || die "checkpoint not found: $CKPT"
DIR="$(model_dir "$MODEL")"
run "$PYTHON" "$DIR/eval.py" --config "$CONFIG" --ckpt "$CKPT" device="$DEVICE" "$@"
