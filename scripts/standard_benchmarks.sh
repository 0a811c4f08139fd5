#!/usr/bin/env bash
# Every run behind docs/standard-benchmarks.md, in order, one CPU thread, resumable:
# the settings searches (seed 100, validation split), the 5-seed runs of the three scenarios,
# the 50-task stream, Adam for the baselines on Split, the report. Re-running skips what is finished.
#   scripts/standard_benchmarks.sh [OUT]     (default OUT: /tmp/std-runs; keep it outside the repo)
set -euo pipefail
OUT=${1:-/tmp/std-runs}
DATA=${DATA:-../shared/data}
STD="python -m metaplastic.standard"
ALL=naive,ewc,online-ewc,si,lwf,replay,joint,metaplastic
ITER=50   # SGD steps of 128 per task (the paper: 5,000 Permuted, 2,000 Split)

$STD search --scenario split-task --tasks 5 --iterations $ITER --out "$OUT/search-split-task" --data-dir "$DATA"
$STD search --scenario split-class --tasks 5 --iterations $ITER --out "$OUT/search-split-class" --data-dir "$DATA"
$STD search --scenario permuted --tasks 4 --iterations $ITER --eval-per-task 1000 \
    --out "$OUT/search-permuted" --data-dir "$DATA"

# The stable-and-flexible mix is run only where its search beat the hybrid profile.
methods() {
    python -c "import json, sys; s = json.load(open(sys.argv[1]))['scores']; \
print('$ALL' + (',metaplastic-mix' if max(s['metaplastic-mix']) > max(s['metaplastic']) else ''))" "$1"
}
for s in split-task split-class; do
    $STD run --scenario $s --tasks 5 --iterations $ITER --methods "$(methods "$OUT/search-$s/settings.json")" \
        --seeds 0-4 --settings "$OUT/search-$s/settings.json" --out "$OUT/$s" --data-dir "$DATA"
done
$STD run --scenario permuted --tasks 10 --iterations $ITER --eval-per-task 1000 \
    --methods "$(methods "$OUT/search-permuted/settings.json")" --seeds 0-4 \
    --settings "$OUT/search-permuted/settings.json" --out "$OUT/permuted" --data-dir "$DATA"

# The long stream: 50 tasks of 20 steps; the just-trained task evaluated after each task,
# every trained task after each 25th.
$STD run --scenario permuted --tasks 50 --iterations 20 --eval-per-task 1000 --eval-mode diagonal \
    --full-every 25 --methods naive,si,metaplastic --seeds 0-2 \
    --settings "$OUT/search-permuted/settings.json" --out "$OUT/permuted-long" --data-dir "$DATA"

# Adam for the baselines (Split only): Adam's lr re-searched for fine-tuning over 4 points, every
# other baseline's setting kept from the SGD search; the rule is not rerun (it is MetaplasticSGD).
BASE=naive,ewc,online-ewc,si,lwf,replay
for s in split-task split-class; do
    $STD search --scenario $s --tasks 5 --iterations $ITER --optimizer adam --methods $BASE \
        --reuse "$OUT/search-$s/settings.json" --out "$OUT/search-$s-adam" --data-dir "$DATA"
    $STD run --scenario $s --tasks 5 --iterations $ITER --optimizer adam --methods $BASE,joint --seeds 0-4 \
        --settings "$OUT/search-$s-adam/settings.json" --out "$OUT/$s-adam" --data-dir "$DATA"
done

$STD report "$OUT/permuted" "$OUT/split-task" "$OUT/split-class" "$OUT/permuted-long" \
    "$OUT/split-task-adam" "$OUT/split-class-adam" --out "$OUT/report"
