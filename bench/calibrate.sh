#!/usr/bin/env bash
# calibrate.sh - refit the retrieve stage's learned ranker and the builtin
# answerer's confidence (Platt scaling) on questions made from a
# deployment's own knowledge base; prints the weights for rank_w in
# src/pipeline/stage_retrieve.c and tg_backend_builtin_confidence() in
# src/backend/builtin.c, with precision and recall at each threshold.
#
#   bench/calibrate.sh [CONFIG] [KB_DIR] [CHECK.jsonl ...]
#
# The questions (calibration/kbset.py) come from the knowledge base alone:
# its FAQ questions, its headings and sentences, the same as a customer
# would type them (a story before, characters left out), and out-of-domain
# negatives (HalluQA, CLINC150 out-of-scope).  No evaluation set is read;
# each CHECK file (a labelled set in `trustgate eval far` form) is only
# scored with the fitted weights, to see how they transfer.
#
# The signals come from `trustgate eval far --signals`, which computes them
# with the answerer's own code, in process (a few seconds for 2,600 turns).
# The ranker is fitted first (calibration/rank.py); put its weights in
# stage_retrieve.c, rebuild and run again before fitting the confidence
# (calibration/fit.py) on the evidence it orders.
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=${1:-examples/insurance/trustgate.yaml}
kb=${2:-examples/insurance/kb}
shift $(($# > 2 ? 2 : $#))
halluqa=${HALLUQA:-../shared/datasets/halluqa_zh/halluqa.jsonl}
clinc=${CLINC:-../shared/datasets/clinc150/train_val.tsv}
bin=${TRUSTGATE:-build/trustgate}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/calibration/kbset.py "$kb" "$halluqa" "$clinc" > "$work/set.jsonl"
"$bin" eval far -c "$cfg" --set "$work/set.jsonl" --signals "$work/raw.jsonl" > /dev/null || true
# the signals lines with each question's kind and document, for the folds
python3 - "$work/set.jsonl" "$work/raw.jsonl" > "$work/signals.jsonl" <<'PY'
import json, sys
meta = {}
for line in open(sys.argv[1], encoding="utf-8"):
    d = json.loads(line)
    meta[d["id"]] = (d["kind"], d["group"] if d["kind"] != "N" else d["id"])
for line in open(sys.argv[2], encoding="utf-8"):
    d = json.loads(line)
    d["kind"], d["group"] = meta[d["id"]]
    print(json.dumps(d, ensure_ascii=False))
PY
checks=()
for c in "$@"; do
  "$bin" eval far -c "$cfg" --set "$c" --signals "$work/check-$(basename "$c")" > /dev/null || true
  checks+=("$work/check-$(basename "$c")")
done
echo "== ranker"
python3 bench/calibration/rank.py "$work/signals.jsonl" "${checks[@]}"
echo "== confidence"
python3 bench/calibration/fit.py "$work/signals.jsonl" "${checks[@]}"
