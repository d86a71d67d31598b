#!/usr/bin/env bash
# Inference with the C++ app (ascend310_infer/): preprocess -> build -> infer -> postprocess.
#
# Model form (the old ports' command line):
#   bash scripts/run_infer_310.sh MODEL MINDIR_OR_ONNX DATA_PATH [DEVICE_ID] [BACKEND] [key=value ...]
#   MODEL      exact model folder or registry name (a registry name adds model.name=NAME)
#   key=value  config overrides given to both preprocess.py and postprocess.py
#   DATA_PATH  the dataset the model's preprocess.py reads; its postprocess.py prints the metric
#   CONFIG     (env, optional) config passed to both as --config
#   runs models/<folder>/preprocess.py --data_path DATA_PATH --output_dir DATA_DIR, the app, then
#   models/<folder>/postprocess.py --data_path DATA_PATH --data_dir DATA_DIR --result_dir RESULT_DIR
#   (DATA_DIR default preprocess_Result).
#
# File form (custom flows), chosen when the first argument is an existing file:
#   bash scripts/run_infer_310.sh MODEL_FILE DATA_DIR [DEVICE_ID] [BACKEND]
#   DATA_DIR     manifest.txt + .bin inputs (common/infer310.py), written by PREPROCESS if given
#   PREPROCESS   command run first (bash -c), e.g. "python models/u2net/preprocess.py ... --output_dir \$DATA_DIR"
#   POSTPROCESS  command run last, e.g. "python models/u2net/postprocess.py --result_dir \$RESULT_DIR ..."
#
# Both forms:
#   MINDIR_OR_ONNX / MODEL_FILE  ascend310: a MINDIR exported by MindSpore (run_export.sh ... MINDIR);
#                lite_cpu: a MINDIR written by the Lite converter, or an .onnx file (converted
#                first, to <name>.lite.mindir beside it)
#   DEVICE_ID    Ascend device id (default 0)
#   BACKEND      ascend310 (default, MindSpore's Ascend inference package) | lite_cpu (MindSpore Lite)
#   The pre/postprocess commands see DATA_DIR, RESULT_DIR, TIME_DIR; postprocess output goes to acc.log.
#   RESULT_DIR (default result_Files), TIME_DIR (default time_Result), THREADS (lite_cpu, default 2)
#   BUILD        library the app links: ascend (default for ascend310) | lite (default for lite_cpu)
#   MINDSPORE_PATH / LITE_ROOT   package folders, else found as ascend310_infer/build.sh does
#   DRY_RUN=1    prints the commands only
set -euo pipefail
source "$(dirname "$0")/_common.sh"
USAGE="usage: $0 MODEL MINDIR_OR_ONNX DATA_PATH [DEVICE_ID] [BACKEND=ascend310|lite_cpu] [key=value ...]
   or: $0 MODEL_FILE DATA_DIR [DEVICE_ID] [BACKEND] (with PREPROCESS / POSTPROCESS commands)"
OVERRIDES=(); POSITIONAL=()
for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z_][A-Za-z0-9_.]*= ]]; then OVERRIDES+=("$arg"); else POSITIONAL+=("$arg"); fi
done
set -- "${POSITIONAL[@]}"
[ $# -ge 2 ] || die "$USAGE"
PRE_CMD=(); POST_CMD=()
case "$1" in *.mindir|*.onnx|*.ms) [ -f "$1" ] || die "model file not found: $1" ;; esac
if [ -f "$1" ]; then
    [ $# -le 4 ] || die "$USAGE"
    [ ${#OVERRIDES[@]} -eq 0 ] || die "key=value overrides need the model form; the file form runs PREPROCESS / POSTPROCESS as given"
    MODEL_FILE="$1"; DATA_DIR="$2"; DEVICE_ID="${3:-0}"; BACKEND="${4:-ascend310}"
    if [ -n "${PREPROCESS:-}" ]; then PRE_CMD=(bash -c "$PREPROCESS"); fi
    if [ -n "${POSTPROCESS:-}" ]; then POST_CMD=(bash -c "$POSTPROCESS"); fi
else
    [ $# -ge 3 ] && [ $# -le 5 ] || die "$USAGE"
    resolve_model "$1"
    MODEL_FILE="$2"; DATA_PATH="$3"; DEVICE_ID="${4:-0}"; BACKEND="${5:-ascend310}"
    [ -e "$DATA_PATH" ] || die "DATA_PATH not found: $DATA_PATH"
    DATA_DIR="${DATA_DIR:-preprocess_Result}"
    CFG_ARGS=()
    if [ -n "${CONFIG:-}" ]; then require_file "$CONFIG" "config file (CONFIG)"; CFG_ARGS=(--config "$CONFIG"); fi
    for step in preprocess postprocess; do
        require_file "$MODEL_DIR/$step.py" "$step script of $1"
    done
    PRE_CMD=("$PYTHON" "$MODEL_DIR/preprocess.py" "${CFG_ARGS[@]}" --data_path "$DATA_PATH" --output_dir "$DATA_DIR"
             "${MODEL_ARGS[@]}" "${OVERRIDES[@]}")
    POST_CMD=("$PYTHON" "$MODEL_DIR/postprocess.py" "${CFG_ARGS[@]}" --data_path "$DATA_PATH" --data_dir "$DATA_DIR"
              --result_dir "${RESULT_DIR:-result_Files}" "${MODEL_ARGS[@]}" "${OVERRIDES[@]}")
fi
case "$BACKEND" in
    ascend310) BUILD="${BUILD:-ascend}" ;;
    lite_cpu) BUILD="${BUILD:-lite}" ;;
    *) die "unknown BACKEND '$BACKEND': expected ascend310 or lite_cpu" ;;
esac
[[ "$DEVICE_ID" =~ ^[0-9]+$ ]] || die "DEVICE_ID must be a number, got '$DEVICE_ID'"
export DATA_DIR RESULT_DIR="${RESULT_DIR:-result_Files}" TIME_DIR="${TIME_DIR:-time_Result}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
require_file "$MODEL_FILE" "model file"
echo "model $MODEL_FILE, data $DATA_DIR, backend $BACKEND (app built against: $BUILD), device $DEVICE_ID"

# CANN's environment on an Ascend server (no-op elsewhere).
ASCEND_HOME="${ASCEND_HOME:-/usr/local/Ascend}"
for env_script in "$ASCEND_HOME/ascend-toolkit/set_env.sh" "$ASCEND_HOME/latest/set_env.sh"; do
    if [ "$BACKEND" = ascend310 ] && [ -f "$env_script" ]; then
        echo "sourcing $env_script"; set +u; source "$env_script"; set -u; break
    fi
done

echo "== [1/4] preprocess"
if [ ${#PRE_CMD[@]} -gt 0 ]; then
    run "${PRE_CMD[@]}" || die "preprocess failed: ${PRE_CMD[*]}"
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

if [ "$BACKEND" = lite_cpu ] && [[ "$MODEL_FILE" == *.onnx ]]; then
    LITE_MODEL="${MODEL_FILE%.onnx}.lite.mindir"
    if [ ! -f "$LITE_MODEL" ] || [ "$MODEL_FILE" -nt "$LITE_MODEL" ]; then
        echo "converting $MODEL_FILE -> $LITE_MODEL with the Lite converter"
        run "$PYTHON" -c 'import sys; from common.infer310 import convert_onnx_to_lite as c; c(sys.argv[1], sys.argv[2])' \
            "$MODEL_FILE" "$LITE_MODEL" || die "Lite conversion of $MODEL_FILE failed"
    fi
    MODEL_FILE="$LITE_MODEL"
fi

echo "== [3/4] infer -> $RESULT_DIR/, timing -> $TIME_DIR/ (log infer.log)"
[ "${DRY_RUN:-0}" = 1 ] || mkdir -p "$RESULT_DIR"
[ "${DRY_RUN:-0}" = 1 ] || find "$RESULT_DIR" -maxdepth 1 \( -name '*.bin' -o -name manifest.txt \) -delete  # stale results only
run "$APP" --model_path "$MODEL_FILE" --input_dir "$DATA_DIR" --output_dir "$RESULT_DIR" --time_dir "$TIME_DIR" \
    --backend "$BACKEND" --device_id "$DEVICE_ID" --threads "${THREADS:-2}" 2>&1 | tee infer.log \
    || die "inference failed (exit ${PIPESTATUS[0]}; see infer.log)"
[ "${DRY_RUN:-0}" = 1 ] || cat "$TIME_DIR/test_perform_static.txt"

echo "== [4/4] postprocess (log acc.log)"
if [ ${#POST_CMD[@]} -gt 0 ]; then
    run "${POST_CMD[@]}" 2>&1 | tee acc.log || die "postprocess failed: ${POST_CMD[*]} (see acc.log)"
else
    echo "(no POSTPROCESS command; outputs are in $RESULT_DIR, read them with common.infer310.read_outputs)"
fi
