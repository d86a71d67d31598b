#!/usr/bin/env bash
# Data-parallel training on N devices of one machine.
#   bash scripts/run_distribute_train.sh MODEL NUM_DEVICES CONFIG [DEVICE] [key=value ...]
# LAUNCHER=msrun (default; MindSpore 2.x, any backend, CPU included)
#         =mpirun (GPU with OpenMPI + NCCL)
#         =ranktable (Ascend with RANK_TABLE_FILE from hccl_tools; one process per device)
# MASTER_PORT (default 8118), LOG_DIR (default outputs/dist_logs), DRY_RUN=1 prints commands only.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -ge 3 ] || die "usage: $0 MODEL NUM_DEVICES CONFIG [DEVICE] [key=value ...]"
MODEL="$1"; N="$2"; CONFIG="$3"; shift 3
[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "NUM_DEVICES must be a positive integer, got '$N'"
DEVICE="CPU"
if [ $# -gt 0 ] && [[ "$1" != *=* ]]; then DEVICE="$1"; shift; fi
[ -f "$CONFIG" ] || die "config file not found: $CONFIG"
DIR="$(model_dir "$MODEL")"
LAUNCHER="${LAUNCHER:-msrun}"
LOG_DIR="${LOG_DIR:-outputs/dist_logs}"
ARGS=("$DIR/train.py" --config "$CONFIG" device="$DEVICE" "$@")

case "$LAUNCHER" in
  msrun)
    run msrun --worker_num="$N" --local_worker_num="$N" --master_addr=127.0.0.1 \
        --master_port="${MASTER_PORT:-8118}" --log_dir="$LOG_DIR" --join=True \
        --cluster_time_out="${CLUSTER_TIME_OUT:-600}" "${ARGS[@]}"
    ;;
  mpirun)
    run mpirun --allow-run-as-root -n "$N" --output-filename "$LOG_DIR" --merge-stderr-to-stdout \
        "$PYTHON" "${ARGS[@]}"
    ;;
  ranktable)
    [ -n "${RANK_TABLE_FILE:-}" ] || die "LAUNCHER=ranktable needs RANK_TABLE_FILE (hccl_tools.py output)"
    [ -f "$RANK_TABLE_FILE" ] || die "RANK_TABLE_FILE not found: $RANK_TABLE_FILE"
    mkdir -p "$LOG_DIR"
    PIDS=()
    for ((i = 0; i < N; i++)); do
        echo "+ DEVICE_ID=$i RANK_ID=$i RANK_SIZE=$N $PYTHON ${ARGS[*]} > $LOG_DIR/worker_$i.log"
        if [ "${DRY_RUN:-0}" != "1" ]; then
            DEVICE_ID=$i RANK_ID=$i RANK_SIZE=$N RANK_TABLE_FILE="$RANK_TABLE_FILE" \
                "$PYTHON" "${ARGS[@]}" > "$LOG_DIR/worker_$i.log" 2>&1 &
            PIDS+=($!)
        fi
    done
    STATUS=0
    for pid in "${PIDS[@]}"; do wait "$pid" || STATUS=1; done
    [ $STATUS -eq 0 ] || die "a worker failed; see $LOG_DIR/worker_*.log"
    ;;
  *) die "unknown LAUNCHER '$LAUNCHER' (msrun | mpirun | ranktable)" ;;
esac
