#!/usr/bin/env bash
# Evaluate a checkpoint with the metric of the model's paper.
#   bash scripts/run_eval.sh MODEL CONFIG CKPT [DEVICE] [key=value ...]
# MODEL and DEVICE as in run_standalone_train.sh (no device flag unless one is given: the
# config's `device` applies); DEVICE_ID=N (env) adds --device_id N. DRY_RUN=1 prints only.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -ge 3 ] || die "usage: $0 MODEL CONFIG CKPT [DEVICE] [key=value ...]"
MODEL="$1"; CONFIG="$2"; CKPT="$3"; shift 3
take_device "$@"; shift "$CONSUMED"
require_file "$CONFIG" "config file"
require_file "$CKPT" "checkpoint"
resolve_model "$MODEL"
ID_ARGS=()
if [ -n "${DEVICE_ID:-}" ]; then ID_ARGS=(--device_id "$DEVICE_ID"); fi
run "$PYTHON" "$MODEL_DIR/eval.py" --config "$CONFIG" --ckpt_file "$CKPT" "${DEVICE_ARGS[@]}" "${ID_ARGS[@]}" \
    "${MODEL_ARGS[@]}" "$@"
