#!/usr/bin/env bash
# Data-parallel training on many devices (one or more servers).
#   bash scripts/run_distribute_train.sh MODEL NUM_WORKERS CONFIG [DEVICE] [key=value ...]
#   bash scripts/run_distribute_train.sh MODEL hccl_8p.json CONFIG [DEVICE] [key=value ...]
# MODEL   exact model folder or registry name (a registry name adds model.name=NAME).
# DEVICE  CPU | GPU | Ascend, or env DEVICE_TARGET; passed as --device_target only when given,
#         otherwise the config's `device` applies.
#
# NUM_WORKERS: msrun (default; MindSpore 2.x, any backend) or LAUNCHER=mpirun (GPU, OpenMPI).
#   NUM_WORKERS is the total over all servers. For several servers run this script on each with
#   MASTER_ADDR (the scheduler's host, default 127.0.0.1), NODE_RANK (0..servers-1, default 0)
#   and LOCAL_WORKER_NUM (workers on this server, default NUM_WORKERS; every server the same).
#   MASTER_PORT (default 8118), CLUSTER_TIME_OUT (s, default 600). Logs: LOG_DIR/worker_N.log.
# hccl_*.json (or LAUNCHER=ranktable with RANK_TABLE_FILE): the HCCL rank table (hccl_tools.py)
#   gives the device count. One process per device of this server, each with DEVICE_ID, RANK_ID,
#   RANK_SIZE, RANK_TABLE_FILE set, in its own working directory LOG_DIR/rank_N/ (log:
#   LOG_DIR/rank_N/log.txt; relative paths in the config resolve there, as in the old ports, so
#   give data roots as absolute paths; ZOO_LAUNCH_DIR names the directory the launch came from).
#   With server_count >= 2 each server starts only its own ranks: the server whose server_id
#   equals env SERVER_ID, else the one listing one of this host's IP addresses.
# A worker that exits non-zero ends the job: the others are stopped, and the launcher exits 1
# naming the rank and quoting the last error line of its log. LOG_DIR (default
# outputs/dist_logs); DRY_RUN=1 prints the commands only.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -ge 3 ] || die "usage: $0 MODEL NUM_WORKERS|RANK_TABLE.json CONFIG [DEVICE] [key=value ...]"
MODEL="$1"; COUNT="$2"; CONFIG="$3"; shift 3
take_device "$@"; shift "$CONSUMED"
LAUNCHER="${LAUNCHER:-msrun}"
TABLE=""
if [[ "$COUNT" == *.json ]]; then
    TABLE="$COUNT"; LAUNCHER=ranktable
elif [[ "$COUNT" =~ ^[1-9][0-9]*$ ]]; then
    if [ "$LAUNCHER" = ranktable ]; then
        [ -n "${RANK_TABLE_FILE:-}" ] || die "LAUNCHER=ranktable needs RANK_TABLE_FILE (hccl_tools.py output)"
        TABLE="$RANK_TABLE_FILE"
    fi
else
    die "NUM_WORKERS must be a positive integer or an HCCL rank table (.json), got '$COUNT'"
fi
require_file "$CONFIG" "config file"
resolve_model "$MODEL"
LOG_DIR="${LOG_DIR:-outputs/dist_logs}"
ARGS=("$MODEL_DIR/train.py" --config "$(realpath "$CONFIG")" "${DEVICE_ARGS[@]}" "${MODEL_ARGS[@]}" "$@")
export ZOO_LAUNCH_DIR="$PWD"
GRACE="${STOP_GRACE:-10}"  # seconds the survivors get between SIGTERM and SIGKILL
declare -A WORKER_RANK=()  # msrun worker pid -> rank
PIDS=()

last_error_line() {
    # The last error of a log: a Python exception line ("NameError: ...") or "error: ..." first,
    # else a line naming an error, else the last non-empty line.
    local line pattern
    for pattern in '^([A-Za-z_][A-Za-z0-9_.]*(Error|Exception|Exit|Interrupt)|error)(:|$)' \
                   'ERROR|CRITICAL|Killed|[Ee]rror' '[^[:space:]]'; do
        line="$(grep -aE "$pattern" "$1" 2>/dev/null | tail -n1 || true)"
        [ -z "$line" ] || break
    done
    echo "${line:-(log empty)}"
}

exit_reason() {
    if [ "$1" -gt 128 ]; then echo "killed by signal $(( $1 - 128 )) ($(kill -l $(( $1 - 128 )) 2>/dev/null || echo '?'))"
    else echo "exit code $1"; fi
}

stop_groups() {
    # SIGTERM each process group, SIGKILL what is left after GRACE seconds.
    local pid t
    for pid in "$@"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for ((t = 0; t < GRACE * 4; t++)); do
        local alive=0
        for pid in "$@"; do if kill -0 "$pid" 2>/dev/null && ! is_zombie "$pid"; then alive=1; fi; done
        [ $alive = 1 ] || return 0
        sleep 0.25
    done
    for pid in "$@"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    for ((t = 0; t < 40; t++)); do  # SIGKILL is asynchronous: leave only once they are gone
        local alive=0
        for pid in "$@"; do if kill -0 "$pid" 2>/dev/null && ! is_zombie "$pid"; then alive=1; fi; done
        [ $alive = 1 ] || return 0
        sleep 0.25
    done
}

is_zombie() { [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ]; }

run_rank_table() {
    require_file "$TABLE" "rank table"
    local table info size server
    table="$(realpath "$TABLE")"
    info="$("$PYTHON" "$ROOT/scripts/hccl_tools.py" --local_ranks "$table")" || exit 2
    read -r size server <<< "$(head -n1 <<< "$info")"
    if [[ "$COUNT" =~ ^[0-9]+$ ]] && [ "$COUNT" != "$size" ]; then
        die "NUM_WORKERS $COUNT differs from the $size devices of rank table $TABLE"
    fi
    echo "rank table $TABLE: $size ranks; this server ($server) runs ranks $(tail -n +2 <<< "$info" | cut -d' ' -f1 | xargs)"
    mkdir -p "$LOG_DIR"
    local log_root; log_root="$(realpath "$LOG_DIR")"
    PIDS=(); RANKS=(); LOGS=()
    trap 'echo "launcher interrupted: stopping the workers" >&2; stop_groups "${PIDS[@]}"; exit 130' INT TERM
    local rank device dir
    while read -r rank device; do
        dir="$log_root/rank_$rank"
        echo "+ (cd $dir && DEVICE_ID=$device RANK_ID=$rank RANK_SIZE=$size RANK_TABLE_FILE=$table" \
             "$PYTHON ${ARGS[*]} > $dir/log.txt 2>&1)"
        [ "${DRY_RUN:-0}" != 1 ] || continue
        mkdir -p "$dir"
        (cd "$dir" && DEVICE_ID=$device RANK_ID=$rank RANK_SIZE=$size RANK_TABLE_FILE="$table" \
            exec setsid "$PYTHON" "${ARGS[@]}" > "$dir/log.txt" 2>&1) &
        PIDS+=($!); RANKS+=("$rank"); LOGS+=("$dir/log.txt")
    done <<< "$(tail -n +2 <<< "$info")"
    [ "${DRY_RUN:-0}" != 1 ] || return 0
    supervise_ranks
}

supervise_ranks() {
    # Poll the workers; the first non-zero exit stops the rest (a survivor would block forever
    # in its next collective).
    local done_count=0 i rc
    local -a finished=()
    while [ "$done_count" -lt "${#PIDS[@]}" ]; do
        for i in "${!PIDS[@]}"; do
            [ -z "${finished[$i]:-}" ] || continue
            kill -0 "${PIDS[$i]}" 2>/dev/null && continue
            rc=0; wait "${PIDS[$i]}" || rc=$?
            finished[$i]=1; done_count=$((done_count + 1))
            if [ "$rc" -ne 0 ]; then
                local others=()
                for j in "${!PIDS[@]}"; do [ -n "${finished[$j]:-}" ] || others+=("${PIDS[$j]}"); done
                echo "error: rank ${RANKS[$i]} died ($(exit_reason "$rc")); stopping ${#others[@]} other worker(s)." \
                     "Last error line of ${LOGS[$i]}: $(last_error_line "${LOGS[$i]}")" >&2
                [ ${#others[@]} -eq 0 ] || stop_groups "${others[@]}"
                exit 1
            fi
        done
        sleep 1
    done
    echo "all $done_count workers finished; logs in $LOG_DIR/rank_*/log.txt"
}

run_msrun() {
    local n="$COUNT" local_n="${LOCAL_WORKER_NUM:-$COUNT}" node="${NODE_RANK:-0}"
    if [ -n "${WORKER_NUM:-}" ] && [ "$WORKER_NUM" != "$n" ]; then
        die "WORKER_NUM=$WORKER_NUM differs from NUM_WORKERS $n (NUM_WORKERS is the total over all servers)"
    fi
    [[ "$local_n" =~ ^[1-9][0-9]*$ ]] && [ "$local_n" -le "$n" ] && [ $((n % local_n)) -eq 0 ] \
        || die "LOCAL_WORKER_NUM=$local_n must divide NUM_WORKERS $n (every server runs as many workers)"
    [[ "$node" =~ ^[0-9]+$ ]] && [ "$node" -lt $((n / local_n)) ] \
        || die "NODE_RANK=$node must lie in [0, $((n / local_n))) for $n workers, $local_n per server"
    local cmd=(msrun --worker_num="$n" --local_worker_num="$local_n" --master_addr="${MASTER_ADDR:-127.0.0.1}"
               --master_port="${MASTER_PORT:-8118}" --node_rank="$node" --log_dir="$LOG_DIR" --join=True
               --cluster_time_out="${CLUSTER_TIME_OUT:-600}" "${ARGS[@]}")
    show "${cmd[@]}"
    [ "${DRY_RUN:-0}" != 1 ] || return 0
    mkdir -p "$LOG_DIR"
    local mslog="$LOG_DIR/msrun_node$node.log"
    : > "$mslog"
    setsid "${cmd[@]}" > >(tee -a "$mslog") 2>&1 &
    local ms_pid=$!
    trap 'echo "launcher interrupted: stopping msrun" >&2; stop_groups "$ms_pid" "${!WORKER_RANK[@]}"; exit 130' INT TERM
    supervise_msrun "$ms_pid" "$mslog"
}

supervise_msrun() {
    # msrun stops the other workers when one fails, but does not say which rank it was (only a
    # pid) and can wait long on its scheduler: map worker pids to ranks while they run, name
    # the dead rank, and end msrun if it lingers after a death.
    local ms_pid="$1" mslog="$2" pid rank dead_pid="" dead_code="" waited=0 rc=0 first_gone=""
    while kill -0 "$ms_pid" 2>/dev/null; do
        if [ -z "$first_gone" ]; then
            for pid in "${!WORKER_RANK[@]}"; do kill -0 "$pid" 2>/dev/null || first_gone="$pid"; done
        fi
        for pid in $(pgrep -P "$ms_pid" 2>/dev/null || true); do
            [ -z "${WORKER_RANK[$pid]:-}" ] || continue
            rank="$( { tr '\0' '\n' < "/proc/$pid/environ"; } 2>/dev/null | sed -n 's/^RANK_ID=//p' | head -n1 || true)"
            if [ -n "$rank" ] && { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null | grep -q "$MODEL_DIR"; then
                WORKER_RANK[$pid]="$rank"
            fi
        done
        if [ -z "$dead_pid" ]; then
            read -r dead_pid dead_code <<< "$(sed -n 's/.*Worker process \([0-9]*\) exit with exception\. Error code: \(-\?[0-9]*\).*/\1 \2/p' \
                "$mslog" | head -n1)" || true
        elif [ $((waited++)) -ge "$GRACE" ]; then
            echo "msrun still running ${GRACE}s after a worker died: stopping it" >&2
            stop_groups "$ms_pid" "${!WORKER_RANK[@]}"
            break
        fi
        sleep 1
    done
    wait "$ms_pid" || rc=$?
    [ -n "$dead_pid" ] || read -r dead_pid dead_code <<< "$(sed -n \
        's/.*Worker process \([0-9]*\) exit with exception\. Error code: \(-\?[0-9]*\).*/\1 \2/p' "$mslog" | head -n1)" || true
    if [ -n "$dead_pid" ]; then
        rank="${WORKER_RANK[$dead_pid]:-?}"
        local log="$LOG_DIR/worker_$rank.log" why="exit code $dead_code"
        if [[ "$dead_code" == -* ]]; then why="killed by signal $((-dead_code)) ($(kill -l $((-dead_code)) 2>/dev/null || echo '?'))"; fi
        echo "error: rank $rank (pid $dead_pid) died ($why); msrun stopped the other workers." \
             "Last error line of $log: $(last_error_line "$log")" >&2
        exit 1
    fi
    if [ "$rc" -ne 0 ] && [ "${NODE_RANK:-0}" != 0 ] && grep -q "Scheduler process .* exit with exception" "$mslog" \
        && grep -qa "Failed to init the tcp server" "$LOG_DIR/scheduler.log" 2>/dev/null; then
        # Several nodes on one host (MASTER_ADDR local to every node): msrun starts a scheduler on
        # each, and the second cannot bind the port; its workers used node 0's scheduler and all
        # exited 0 (a worker failure is caught above), so this node succeeded.
        echo "note: node $NODE_RANK shares its host with the scheduler's node; its own extra scheduler" \
             "could not bind port ${MASTER_PORT:-8118} (expected) and was ignored"
        rc=0
    fi
    if [ "$rc" -ne 0 ]; then
        local worst="" f
        for f in "$LOG_DIR"/worker_*.log; do
            [ -f "$f" ] && grep -qaE 'Traceback|Error' "$f" && worst="$f" && break
        done
        # msrun names a dead worker only at GLOG_v <= 3; else say which rank exited first
        local first=""
        [ -z "$first_gone" ] || first=" The first worker to exit was rank ${WORKER_RANK[$first_gone]}."
        local quote=""
        [ -z "$worst" ] || quote=" Last error line of $worst: $(last_error_line "$worst")"
        echo "error: msrun failed ($(exit_reason "$rc")); logs in $LOG_DIR.$first$quote" >&2
        exit 1
    fi
}

case "$LAUNCHER" in
  msrun) run_msrun ;;
  mpirun)
    run mpirun --allow-run-as-root -n "$COUNT" --output-filename "$LOG_DIR" --merge-stderr-to-stdout \
        "$PYTHON" "${ARGS[@]}"
    ;;
  ranktable) run_rank_table ;;
  *) die "unknown LAUNCHER '$LAUNCHER' (msrun | mpirun | ranktable)" ;;
esac
