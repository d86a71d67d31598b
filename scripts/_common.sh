# Shared helpers for the launchers (sourced, not run).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"

die() { echo "error: $*" >&2; exit 2; }

model_dir() {
    # Map a model folder or registry name (u2netp, ddrnet23_slim, ...) to models/<folder>.
    local name="$1"
    for d in "$ROOT"/models/*/; do
        local folder; folder="$(basename "$d")"
        if [ "$name" = "$folder" ] || [[ "$name" == "$folder"* ]]; then echo "${d%/}"; return 0; fi
    done
    die "unknown model '$name'; model folders: $(ls -d "$ROOT"/models/*/ | xargs -n1 basename | tr '\n' ' ')"
}

run() {
    # Print the command; run it unless DRY_RUN=1.
    echo "+ $*"
    if [ "${DRY_RUN:-0}" != "1" ]; then "$@"; fi
}
