#!/usr/bin/env bash
# Export to MINDIR / ONNX / AIR (AIR needs the Ascend backend), with a parity check.
#   bash scripts/run_export.sh MODEL CONFIG CKPT FORMAT [key=value ...]
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -ge 4 ] || die "usage: $0 MODEL CONFIG CKPT FORMAT(MINDIR|ONNX|AIR) [key=value ...]"
MODEL="$1"; CONFIG="$2"; CKPT="$3"; FORMAT="$4"; shift 4
DIR="$(model_dir "$MODEL")"
run "$PYTHON" "$DIR/export.py" --config "$CONFIG" --ckpt "$CKPT" --format "$FORMAT" "$@"
