#!/usr/bin/env bash
# One-device training.
#   bash scripts/run_standalone_train.sh MODEL CONFIG [DEVICE] [key=value ...]
# MODEL: model folder (u2net, ddrnet); CONFIG: YAML under configs/; DEVICE: CPU | GPU | Ascend.
# DEVICE_ID selects the card on GPU/Ascend. DRY_RUN=1 prints the command only.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -ge 2 ] || die "usage: $0 MODEL CONFIG [DEVICE] [key=value ...]"
MODEL="$1"; CONFIG="$2"; shift 2
DEVICE="CPU"
if [ $# -gt 0 ] && [[ "$1" != *=* ]]; then DEVICE="$1"; shift; fi
[ -f "$CONFIG" ] || die "config file not found: $CONFIG"
DIR="$(model_dir "$MODEL")"
run "$PYTHON" "$DIR/train.py" --config "$CONFIG" device="$DEVICE" "$@"
