#!/usr/bin/env bash
# Evaluate an exported ONNX file with ONNX Runtime (same metric as eval.py).
#   bash scripts/run_infer_onnx.sh MODEL CONFIG ONNX_FILE [key=value ...]
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -ge 3 ] || die "usage: $0 MODEL CONFIG ONNX_FILE [key=value ...]"
MODEL="$1"; CONFIG="$2"; ONNX="$3"; shift 3
require_file "$CONFIG" "config file"
require_file "$ONNX" "ONNX file"
resolve_model "$MODEL"
run "$PYTHON" "$MODEL_DIR/infer_onnx.py" --config "$CONFIG" --onnx_file "$ONNX" "${MODEL_ARGS[@]}" "$@"
