#!/usr/bin/env bash
# Data-parallel training on N GPUs (the old ports' run_distribute_train_gpu.sh).
#   bash scripts/run_distribute_train_gpu.sh MODEL NUM_WORKERS CONFIG [key=value ...]
# LAUNCHER=msrun (default) or LAUNCHER=mpirun (OpenMPI + NCCL). This launcher names the device:
# it passes --device_target GPU (DEVICE_TARGET=X overrides). Everything else, several servers
# included (MASTER_ADDR, NODE_RANK, LOCAL_WORKER_NUM), is scripts/run_distribute_train.sh's.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -ge 3 ] || die "usage: $0 MODEL NUM_WORKERS CONFIG [key=value ...]"
[[ "$2" =~ ^[1-9][0-9]*$ ]] || die "NUM_WORKERS must be a positive integer, got '$2'"
export LAUNCHER="${LAUNCHER:-msrun}"
case "$LAUNCHER" in msrun|mpirun) ;; *) die "LAUNCHER must be msrun or mpirun on GPU, got '$LAUNCHER'" ;; esac
if [ "$LAUNCHER" = mpirun ]; then
    command -v mpirun > /dev/null || [ "${DRY_RUN:-0}" = 1 ] || die "LAUNCHER=mpirun but mpirun is not on PATH (install OpenMPI)"
fi
export DEVICE_TARGET="${DEVICE_TARGET:-GPU}"
exec bash "$ROOT/scripts/run_distribute_train.sh" "$@"
