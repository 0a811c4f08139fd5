#!/usr/bin/env bash
# Everything a lent GPU should answer, in one call of at most DEADLINE_S seconds (default 540,
# 9 minutes), writing what it measures under $OUT (the folder the device tool returns):
#
#   1. env.txt          the card, driver, torch and this commit;
#   2. bench_scale.txt  benchmarks/bench_scale.py at both presets with the products' fractions
#                       of the plain product (docs/benchmarks.md);
#   3. tf32.txt         a short serial-position run in float32 and in TF32, compared by the
#                       project's agreement rule (scripts/compare_runs.py; CUDA only);
#   4. the reproduction: `metaplastic run` for each experiment in order of importance, trials
#                       stacked on the device, each run stopped at the deadline (runs survive
#                       kills: finished trials are kept) into $RUN_DIR/main;
#   5. report/          the report of every run folder that holds a trial, and runs/, a copy of
#                       the run folders (records only, no features), and steps.tsv.
#
# A second call continues the same run folders: on a machine still warm $RUN_DIR (an ignored
# folder of the working tree) is still there; on a fresh one, copy $OUT/runs back to $RUN_DIR
# and carry it. The same script runs on the CPU at tiny sizes (tests/test_gpu_run.py):
#
#   DEVICE=cpu SCALE=quick SIZES="--trials 1 --width 16 ..." BENCH="--scales quick --steps 1" \
#       OUT=/tmp/out scripts/gpu_run.sh
set -uo pipefail

START=$(date +%s)
DEADLINE_S=${DEADLINE_S:-540}
OUT=${OUT:-gpu-out}
RUN_DIR=${RUN_DIR:-gpu-runs}
DEVICE=${DEVICE:-cuda}
SCALE=${SCALE:-paper}
DATA_DIR=${DATA_DIR:-../shared/data}
SIZES=${SIZES:-}                       # extra size flags of `metaplastic run` (tiny runs)
BENCH=${BENCH:---scales quick,paper --products}   # "none": skip the benchmark
TF32_SIZES=${TF32_SIZES:---scale quick --trials 3}
EXPERIMENTS=${EXPERIMENTS:-serial-position sequence-length repetition poisoning frequency single-value biased-flexibility}
REPORT_S=${REPORT_S:-45}               # kept back for the report and the copy at the end
MIN_RUN_S=${MIN_RUN_S:-20}             # a run is not started with less time than this left
PYTHON=${PYTHON:-python}

export PYTHON DEVICE RUN_DIR DATA_DIR TF32_SIZES
mkdir -p "$OUT" "$RUN_DIR/main"
LOG="$OUT/log.txt"
printf 'step\tseconds\texit\n' > "$OUT/steps.tsv"

left() { echo $(( DEADLINE_S - ($(date +%s) - START) - REPORT_S )); }

# step NAME CAP OUTFILE COMMAND...: run COMMAND for at most min(CAP, time left) seconds.
step() {
    local name=$1 cap=$2 file=$3; shift 3
    local budget; budget=$(left)
    (( cap < budget )) && budget=$cap
    if (( budget < 5 )); then
        echo "$name: skipped, no time left before the deadline" | tee -a "$file" >> "$LOG"
        printf '%s\t0\tskipped\n' "$name" >> "$OUT/steps.tsv"
        return 0
    fi
    local began; began=$(date +%s)
    if declare -F "$1" > /dev/null; then     # a function of this script: timeout needs a process
        timeout --signal=INT --kill-after=10 "$budget" bash -c "$(declare -f "$1"); $*" >> "$file" 2>&1
    else
        timeout --signal=INT --kill-after=10 "$budget" "$@" >> "$file" 2>&1
    fi
    local code=$?
    printf '%s\t%s\t%s\n' "$name" $(( $(date +%s) - began )) "$code" >> "$OUT/steps.tsv"
    (( code == 124 )) && echo "$name: stopped at its time limit (${budget} s)" >> "$file"
    return 0
}

environment() {
    date -u +"%Y-%m-%dT%H:%M:%SZ"
    echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total \
        --format=csv,noheader
    "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
"device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)")'
    nproc
}

tf32_check() {
    if [[ $DEVICE != cuda* ]]; then
        echo "skipped: TF32 needs a CUDA device (DEVICE=$DEVICE)"
        return 0
    fi
    for precision in float32 tf32; do
        metaplastic run serial-position $TF32_SIZES --device "$DEVICE" --precision "$precision" \
            --data-dir "$DATA_DIR" --out "$RUN_DIR/tf32-$precision" --quiet || return 1
    done
    "$PYTHON" scripts/compare_runs.py "$RUN_DIR"/tf32-float32/*/ "$RUN_DIR"/tf32-tf32/*/
}

step environment 30 "$OUT/env.txt" environment
if [[ $BENCH != none ]]; then
    # shellcheck disable=SC2086  # BENCH is a list of flags
    step bench_scale 150 "$OUT/bench_scale.txt" "$PYTHON" benchmarks/bench_scale.py --device "$DEVICE" $BENCH
fi
step tf32 150 "$OUT/tf32.txt" tf32_check

for experiment in $EXPERIMENTS; do
    if (( $(left) < MIN_RUN_S )); then
        echo "$experiment: not started, $(left) s left before the report" >> "$OUT/reproduce.txt"
        continue
    fi
    # shellcheck disable=SC2086  # SIZES is a list of flags
    step "$experiment" "$(left)" "$OUT/reproduce.txt" metaplastic run "$experiment" --scale "$SCALE" \
        --device "$DEVICE" --data-dir "$DATA_DIR" --out "$RUN_DIR/main" --quiet $SIZES
done

# What finished: every run folder holding at least one trial, reported and copied.
finished=()
for folder in "$RUN_DIR"/main/*/; do
    compgen -G "$folder/trials/trial-*.parquet" > /dev/null && finished+=("$folder")
done
{
    for folder in "${finished[@]}"; do
        echo "$(basename "$folder"): $(ls "$folder"/trials/trial-*.parquet | wc -l) trial(s)"
    done
} > "$OUT/finished.txt"
REPORT_S=0
if (( ${#finished[@]} )); then
    step report 40 "$OUT/report.txt" metaplastic report "${finished[@]}" --out "$OUT/report"
fi
mkdir -p "$OUT/runs"
cp -r "$RUN_DIR"/main/. "$OUT/runs/"
echo "done in $(( $(date +%s) - START )) s (deadline ${DEADLINE_S} s)" | tee -a "$LOG"
