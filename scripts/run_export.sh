#!/usr/bin/env bash
# Export to MINDIR / ONNX / AIR (AIR needs the Ascend backend), with a parity check.
#   bash scripts/run_export.sh MODEL CONFIG CKPT FORMAT [FILE_NAME] [key=value ...]
# FORMAT: MINDIR | ONNX | AIR (any case); FILE_NAME: output path (default: the model's choice).
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -ge 4 ] || die "usage: $0 MODEL CONFIG CKPT FORMAT(MINDIR|ONNX|AIR) [FILE_NAME] [key=value ...]"
MODEL="$1"; CONFIG="$2"; CKPT="$3"; FORMAT_ARG="$4"; FORMAT="${4^^}"; shift 4
case "$FORMAT" in MINDIR|ONNX|AIR) ;; *) die "FORMAT must be MINDIR, ONNX or AIR, got '$FORMAT_ARG'" ;; esac
NAME_ARGS=()
if [ $# -gt 0 ] && [[ "$1" != *=* ]] && [[ "$1" != -* ]]; then NAME_ARGS=(--file_name "$1"); shift; fi
require_file "$CONFIG" "config file"
require_file "$CKPT" "checkpoint"
resolve_model "$MODEL"
run "$PYTHON" "$MODEL_DIR/export.py" --config "$CONFIG" --ckpt_file "$CKPT" --file_format "$FORMAT" \
    "${NAME_ARGS[@]}" "${MODEL_ARGS[@]}" "$@"
