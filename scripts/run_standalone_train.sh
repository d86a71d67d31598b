#!/usr/bin/env bash
# One-device training.
#   bash scripts/run_standalone_train.sh MODEL CONFIG [DEVICE] [--resume CKPT] [key=value ...]
# MODEL   exact model folder (u2net, ddrnet) or registry name (u2netp, ddrnet23_slim; passed on
#         as model.name=NAME); CONFIG: YAML under configs/.
# DEVICE  CPU | GPU | Ascend (or env DEVICE_TARGET); passed as --device_target only when given,
#         otherwise the config's `device` applies. DEVICE_ID=N (env) adds --device_id N.
# DRY_RUN=1 prints the command only.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -ge 2 ] || die "usage: $0 MODEL CONFIG [DEVICE] [--resume CKPT] [key=value ...]"
MODEL="$1"; CONFIG="$2"; shift 2
take_device "$@"; shift "$CONSUMED"
require_file "$CONFIG" "config file"
resolve_model "$MODEL"
ID_ARGS=()
if [ -n "${DEVICE_ID:-}" ]; then ID_ARGS=(--device_id "$DEVICE_ID"); fi
run "$PYTHON" "$MODEL_DIR/train.py" --config "$CONFIG" "${DEVICE_ARGS[@]}" "${ID_ARGS[@]}" "${MODEL_ARGS[@]}" "$@"
