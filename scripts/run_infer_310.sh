#!/usr/bin/env bash
# Inference with the C++ app (ascend310_infer/): [preprocess] -> build -> infer -> [postprocess].
#   bash scripts/run_infer_310.sh MODEL_FILE DATA_DIR [DEVICE_ID] [BACKEND]
# MODEL_FILE  ascend310: a MINDIR exported by MindSpore (scripts/run_export.sh ... MINDIR);
#             lite_cpu:  a MINDIR written by the Lite converter, or an .onnx file (converted first,
#                        to <name>.lite.mindir beside it)
# DATA_DIR    manifest.txt + .bin inputs, written by the model's preprocess.py (common/infer310.py)
# DEVICE_ID   Ascend device id (default 0)
# BACKEND     ascend310 (default, MindSpore's Ascend inference package) | lite_cpu (MindSpore Lite)
# Environment:
#   PREPROCESS   command run first (bash -c), e.g. "python models/u2net/preprocess.py ... --output_dir \$DATA_DIR"
#   POSTPROCESS  command run last, e.g. "python models/u2net/postprocess.py --result_dir \$RESULT_DIR ...";
#                both see DATA_DIR, RESULT_DIR, TIME_DIR; POSTPROCESS output goes to acc.log
#   RESULT_DIR (default result_Files), TIME_DIR (default time_Result), THREADS (lite_cpu, default 2)
#   BUILD        library the app links: ascend (default for ascend310) | lite (default for lite_cpu)
#   MINDSPORE_PATH / LITE_ROOT   package folders, else found as ascend310_infer/build.sh does
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -ge 2 ] && [ $# -le 4 ] || die "usage: $0 MODEL_FILE DATA_DIR [DEVICE_ID] [BACKEND=ascend310|lite_cpu]"
MODEL="$1"; DATA_DIR="$2"; DEVICE_ID="${3:-0}"; BACKEND="${4:-ascend310}"
case "$BACKEND" in
    ascend310) BUILD="${BUILD:-ascend}" ;;
    lite_cpu) BUILD="${BUILD:-lite}" ;;
    *) die "unknown BACKEND '$BACKEND': expected ascend310 or lite_cpu" ;;
esac
[[ "$DEVICE_ID" =~ ^[0-9]+$ ]] || die "DEVICE_ID must be a number, got '$DEVICE_ID'"
export DATA_DIR RESULT_DIR="${RESULT_DIR:-result_Files}" TIME_DIR="${TIME_DIR:-time_Result}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
[ -f "$MODEL" ] || die "model file not found: $MODEL"
echo "model $MODEL, data $DATA_DIR, backend $BACKEND (app built against: $BUILD), device $DEVICE_ID"

# CANN's environment on an Ascend server (no-op elsewhere).
ASCEND_HOME="${ASCEND_HOME:-/usr/local/Ascend}"
for env_script in "$ASCEND_HOME/ascend-toolkit/set_env.sh" "$ASCEND_HOME/latest/set_env.sh"; do
    if [ "$BACKEND" = ascend310 ] && [ -f "$env_script" ]; then
        echo "sourcing $env_script"; set +u; source "$env_script"; set -u; break
    fi
done

echo "== [1/4] preprocess"
if [ -n "${PREPROCESS:-}" ]; then
    run bash -c "$PREPROCESS" || die "PREPROCESS failed: $PREPROCESS"
else
    echo "(no PREPROCESS command; using the inputs already in $DATA_DIR)"
fi
[ "${DRY_RUN:-0}" = 1 ] || [ -f "$DATA_DIR/manifest.txt" ] \
    || die "$DATA_DIR/manifest.txt not found: write the inputs with the model's preprocess.py (common/infer310.py)"

echo "== [2/4] build ascend310_infer ($BUILD)"
if [ "${DRY_RUN:-0}" = 1 ]; then
    APP="$ROOT/ascend310_infer/build/$BUILD/infer_app"; echo "+ bash $ROOT/ascend310_infer/build.sh $BUILD"
else
    APP="$(bash "$ROOT/ascend310_infer/build.sh" "$BUILD" | tail -n1)" \
        || die "building the app failed: the MindSpore ($BUILD) package was not found or the build broke (see above)"
fi

if [ "$BACKEND" = lite_cpu ] && [[ "$MODEL" == *.onnx ]]; then
    LITE_MODEL="${MODEL%.onnx}.lite.mindir"
    if [ ! -f "$LITE_MODEL" ] || [ "$MODEL" -nt "$LITE_MODEL" ]; then
        echo "converting $MODEL -> $LITE_MODEL with the Lite converter"
        run "$PYTHON" -c 'import sys; from common.infer310 import convert_onnx_to_lite as c; c(sys.argv[1], sys.argv[2])' \
            "$MODEL" "$LITE_MODEL" || die "Lite conversion of $MODEL failed"
    fi
    MODEL="$LITE_MODEL"
fi

echo "== [3/4] infer -> $RESULT_DIR/, timing -> $TIME_DIR/ (log infer.log)"
mkdir -p "$RESULT_DIR"
find "$RESULT_DIR" -maxdepth 1 \( -name '*.bin' -o -name manifest.txt \) -delete  # stale results only
run "$APP" --model_path "$MODEL" --input_dir "$DATA_DIR" --output_dir "$RESULT_DIR" --time_dir "$TIME_DIR" \
    --backend "$BACKEND" --device_id "$DEVICE_ID" --threads "${THREADS:-2}" 2>&1 | tee infer.log \
    || die "inference failed (exit ${PIPESTATUS[0]}; see infer.log)"
[ "${DRY_RUN:-0}" = 1 ] || cat "$TIME_DIR/test_perform_static.txt"

echo "== [4/4] postprocess (log acc.log)"
if [ -n "${POSTPROCESS:-}" ]; then
    run bash -c "$POSTPROCESS" 2>&1 | tee acc.log || die "POSTPROCESS failed: $POSTPROCESS (see acc.log)"
else
    echo "(no POSTPROCESS command; outputs are in $RESULT_DIR, read them with common.infer310.read_outputs)"
fi
