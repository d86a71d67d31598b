# Shared helpers for the launchers (sourced, not run).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"

die() { echo "error: $*" >&2; exit 2; }

resolve_model() {
    # Exact model folder or registry name -> MODEL_DIR (absolute) and MODEL_ARGS (model.name=X
    # for a registry name, so the variant asked for is the one trained). No prefix matching.
    local out folder variant
    out="$("$PYTHON" "$ROOT/scripts/resolve_model.py" "$1")" || exit 2
    read -r folder variant <<< "$out"
    MODEL_DIR="$ROOT/$folder"
    MODEL_ARGS=()
    if [ -n "$variant" ]; then MODEL_ARGS=("model.name=$variant"); fi
}

normalise_device() {
    # CPU | GPU | Ascend in any case -> the spelling MindSpore expects; empty for anything else.
    case "${1,,}" in
        cpu) echo CPU ;; gpu) echo GPU ;; ascend) echo Ascend ;; *) echo "" ;;
    esac
}

take_device() {
    # DEVICE_ARGS=(--device_target X) only when the user named a device: the optional positional
    # argument "$1" (CONSUMED=1 when it was one) or else the DEVICE_TARGET environment variable.
    # Without either, nothing is passed and the config's `device` applies.
    local dev=""
    CONSUMED=0
    if [ $# -gt 0 ] && [ -n "$(normalise_device "$1")" ]; then
        dev="$(normalise_device "$1")"; CONSUMED=1
    elif [ -n "${DEVICE_TARGET:-}" ]; then
        dev="$(normalise_device "$DEVICE_TARGET")"
        [ -n "$dev" ] || die "DEVICE_TARGET must be CPU, GPU or Ascend, got '$DEVICE_TARGET'"
    fi
    DEVICE_ARGS=()
    DEVICE="$dev"
    if [ -n "$dev" ]; then DEVICE_ARGS=(--device_target "$dev"); fi
}

require_file() {
    # require_file PATH WHAT
    [ -f "$1" ] || die "$2 not found: $1"
}

show() {
    # Print a command as "+ word ..." (shell-quoted where needed).
    printf '+'; printf ' %q' "$@"; printf '\n'
}

run() {
    # Print the command; run it unless DRY_RUN=1.
    show "$@"
    if [ "${DRY_RUN:-0}" != "1" ]; then "$@"; fi
}
