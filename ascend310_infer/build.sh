#!/usr/bin/env bash
# Build infer_app with CMake; prints the binary's path as the last line.
#   bash ascend310_infer/build.sh [lite|ascend]        (default: lite)
# lite    MindSpore Lite: LITE_ROOT if set, else the venv of setup_lite.sh (installed on demand).
# ascend  full MindSpore inference package (Ascend 310 servers): MINDSPORE_PATH if set, else the
#         folder of the `mindspore` (or `mindspore-ascend`) package that `pip show` reports.
# Output: ascend310_infer/build/<backend>/infer_app (BUILD_DIR overrides the folder).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BACKEND="${1:-lite}"
PYTHON="${PYTHON:-python3}"

die() { echo "error: $*" >&2; exit 2; }

find_mindspore() {
    local pkg loc
    for pkg in mindspore mindspore-ascend; do
        loc="$("$PYTHON" -m pip show "$pkg" 2>/dev/null | awk '/^Location:/ {print $2}')"
        if [ -n "$loc" ] && [ -d "$loc/mindspore" ]; then realpath "$loc/mindspore"; return 0; fi
    done
    return 1
}

case "$BACKEND" in
    lite)
        if [ -z "${LITE_ROOT:-}" ]; then
            echo "[build] LITE_ROOT not set: using the venv of ascend310_infer/setup_lite.sh" >&2
            LITE_ROOT="$(bash "$HERE/setup_lite.sh")" || die "MindSpore Lite could not be set up (see above)"
        fi
        [ -f "$LITE_ROOT/include/api/model.h" ] || [ -f "$LITE_ROOT/runtime/include/api/model.h" ] \
            || die "LITE_ROOT=$LITE_ROOT holds no include/api/model.h" \
                   "(want the wheel's mindspore_lite/ folder or a Lite release)"
        ROOT_ARG="-DLITE_ROOT=$LITE_ROOT"
        ;;
    ascend)
        if [ -z "${MINDSPORE_PATH:-}" ]; then
            MINDSPORE_PATH="$(find_mindspore)" \
                || die "no MindSpore package found by '$PYTHON -m pip show mindspore'; set MINDSPORE_PATH"
        fi
        [ -f "$MINDSPORE_PATH/include/api/model.h" ] && [ -f "$MINDSPORE_PATH/lib/libmindspore.so" ] \
            || die "MINDSPORE_PATH=$MINDSPORE_PATH has no include/api/model.h + lib/libmindspore.so: the C++ inference API" \
                   "comes with MindSpore's Ascend inference package on a 310 server (the CPU wheel has none);" \
                   "here, build the Lite app instead: bash ascend310_infer/build.sh lite"
        ROOT_ARG="-DMINDSPORE_PATH=$MINDSPORE_PATH"
        ;;
    *) die "unknown backend '$BACKEND': expected lite or ascend" ;;
esac

command -v cmake >/dev/null || die "cmake not found (apt-get install cmake g++)"
BUILD_DIR="${BUILD_DIR:-$HERE/build/$BACKEND}"
echo "[build] cmake $BACKEND -> $BUILD_DIR" >&2
cmake -S "$HERE" -B "$BUILD_DIR" -DBACKEND="$BACKEND" "$ROOT_ARG" >&2
cmake --build "$BUILD_DIR" -j "${JOBS:-2}" >&2
echo "$BUILD_DIR/infer_app"
