#!/usr/bin/env bash
# Install MindSpore Lite 2.0.0 (the only PyPI release with a Linux x86_64 wheel; cp37 only) into a
# Python 3.7 virtual environment. Idempotent: does nothing when the environment already imports it.
#   bash ascend310_infer/setup_lite.sh            -> prints the Lite package folder (LITE_ROOT)
#   bash ascend310_infer/setup_lite.sh --check    -> the same, but never installs (exit 5 if absent)
# Environment:
#   LITE_VENV    where the venv lives (default ~/.cache/ms-vision-zoo/lite-venv, outside the repo)
#   PYTHON37     the Python 3.7 interpreter (default: python3.7 on PATH, then pyenv's 3.7.x)
#   LITE_WHEEL   a local mindspore_lite-2.0.0-cp37 wheel to install instead of downloading it
# Exit codes: 0 ready, 3 no Python 3.7 found, 4 pip could not install the package, 5 absent (--check).
set -euo pipefail

LITE_VERSION=2.0.0
LITE_VENV="${LITE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ms-vision-zoo/lite-venv}"
VPY="$LITE_VENV/bin/python"
PROBE='import os, mindspore_lite as m; assert m.__version__ == "'"$LITE_VERSION"'", m.__version__
print(os.path.dirname(m.__file__))'

if [ -x "$VPY" ] && root="$("$VPY" -c "$PROBE" 2>/dev/null)"; then
    echo "$root"
    exit 0
fi
if [ "${1:-}" = "--check" ]; then
    echo "error: MindSpore Lite $LITE_VERSION is not installed in $LITE_VENV; run bash ascend310_infer/setup_lite.sh" >&2
    exit 5
fi

is_py37() { "$1" -c 'import sys; assert sys.version_info[:2] == (3, 7)' >/dev/null 2>&1; }

find_python37() {
    # pyenv's shim named python3.7 exists even when 3.7 is not the active version: try each
    # candidate and keep the first that really is 3.7.
    if [ -n "${PYTHON37:-}" ]; then echo "$PYTHON37"; return 0; fi
    local p
    for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.7*/bin/python3.7 "$(command -v python3.7 || true)"; do
        if [ -n "$p" ] && [ -x "$p" ] && is_py37 "$p"; then echo "$p"; return 0; fi
    done
    return 1
}

PY37="$(find_python37)" || {
    echo "error: MindSpore Lite $LITE_VERSION needs Python 3.7 (PyPI has only a cp37 wheel) and none was found;" \
         "set PYTHON37=/path/to/python3.7 or install one (e.g. pyenv install 3.7.16)" >&2
    exit 3
}
is_py37 "$PY37" || { echo "error: PYTHON37=$PY37 is not Python 3.7" >&2; exit 3; }

if [ -e "$LITE_VENV" ] && [ ! -f "$LITE_VENV/pyvenv.cfg" ]; then
    echo "error: LITE_VENV=$LITE_VENV exists and is not a venv; choose another folder" >&2; exit 4
fi
echo "[setup_lite] creating $LITE_VENV with $PY37" >&2
rm -rf "$LITE_VENV"  # a broken earlier attempt
mkdir -p "$(dirname "$LITE_VENV")"
"$PY37" -m venv "$LITE_VENV"
if [ -n "${LITE_WHEEL:-}" ]; then
    spec="$LITE_WHEEL"
else
    spec="mindspore-lite==$LITE_VERSION"
fi
echo "[setup_lite] pip install $spec (numpy<1.22 is the last line for Python 3.7)" >&2
if ! "$VPY" -m pip install --quiet --disable-pip-version-check "$spec" "numpy>=1.17,<1.22" >&2; then
    echo "error: pip could not install $spec into $LITE_VENV" >&2
    rm -rf "$LITE_VENV"  # made above, so it is ours
    exit 4
fi
root="$("$VPY" -c "$PROBE")" || { echo "error: mindspore_lite installed but does not import" >&2; exit 4; }
echo "$root"
