#!/usr/bin/env bash
# intent.sh - the figures of bench/INTENT.md: intent accuracy on BANKING77 and
# out-of-scope detection on CLINC150, with `trustgate eval intent`.
#
#   bench/intent.sh            # the headline figures (~1 min on 2 cores)
#   INTENT_TUNE=1 bench/intent.sh   # also the tuning runs (C x 5 folds, thresholds; ~15 min)
#
# TG_BIN is the trustgate binary (default build/trustgate), TG_DATASETS the
# directory holding banking77/ and clinc150/ (default /work/shared/datasets).
# Split files are written to a temp dir that is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
TG_BIN=${TG_BIN:-build/trustgate}
DATASETS=${TG_DATASETS:-/work/shared/datasets}
THRESHOLD=${INTENT_THRESHOLD:-0.5}
if [ ! -x "$TG_BIN" ]; then
  echo "intent.sh: no $TG_BIN; build it (cmake -S . -B build && make -C build trustgate)" >&2
  echo "or point TG_BIN at a trustgate binary" >&2
  exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

summary() { # the JSON of one run -> one line
  python3 -c '
import json, sys
o = json.load(sys.stdin)
s = "n=%d accuracy=%.4f macro_f1=%.4f features=%d train_s=%.1f predict_us=%.1f baseline_text_us=%.1f" % (
    o["n"], o["accuracy"], o["macro_f1"], o["features"], o["train_seconds"], o["predict_us"],
    o["baseline_text_us"])
if "threshold" in o:
    s += " T=%.2f in_scope_acc=%.4f oos_recall=%s oos_precision=%s" % (o["threshold"],
        o["in_scope_accuracy"], o["oos_recall"], o["oos_precision"])
print(s)'
}

# BANKING77 (only its train.tsv is here): a deterministic stratified 80/20
# split.  Within each intent, in file order, utterances 5, 10, 15, ... (fold 4)
# are the test set; fold f takes those with (rank mod 5) == f.
banking_split() { # fold [file]
  awk -F'\t' -v f="$1" -v dir="$tmp" '
    NR == 1 { print > (dir "/b_train.tsv"); print > (dir "/b_test.tsv"); next }
    { k = seen[$2]++; print > (dir "/b_" (k % 5 == f ? "test" : "train") ".tsv") }
  ' "${2:-$DATASETS/banking77/train.tsv}"
}

# CLINC150 (train, val, oos_train, oos_val, oos_test here; its test split is
# held out elsewhere): train on "train" (150 in-scope intents, no oos
# examples).  "val" is cut in two by line parity: the odd half with
# "oos_val" chooses the threshold, the even half with "oos_test" reports.
clinc_split() {
  awk -F'\t' -v dir="$tmp" 'BEGIN { OFS = "\t" }
    NR == 1 { next }
    $1 == "train"    { print $2, $3 > (dir "/c_train.tsv") }
    $1 == "val"      { v++; print $2, $3 > (dir "/c_" (v % 2 ? "tune" : "report") ".tsv") }
    $1 == "oos_val"  { print $2, $3 > (dir "/c_tune_oos.tsv") }
    $1 == "oos_test" { print $2, $3 > (dir "/c_report_oos.tsv") }
  ' "$DATASETS/clinc150/train_val.tsv"
  cat "$tmp/c_tune_oos.tsv" >> "$tmp/c_tune.tsv"
  cat "$tmp/c_report_oos.tsv" >> "$tmp/c_report.tsv"
}

echo "# trustgate intent benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $("$TG_BIN" version)"

if [ -n "${INTENT_TUNE:-}" ]; then
  echo "## tuning: BANKING77, 5 folds"
  for f in 0 1 2 3 4; do
    banking_split "$f"
    for cc in "10 1-4" "30 1-4" "100 1-4" "30 1-3" "30 2-4" "30 2-5"; do
      set -- $cc
      echo "fold=$f C=$1 char=$2 $("$TG_BIN" eval intent --json --c "$1" --char-ngrams "$2" \
        --train "$tmp/b_train.tsv" --test "$tmp/b_test.tsv" | summary)"
    done
  done
  banking_split 4
  for ng in "1 1-4" "3 1-4" "2 1-5" "2 3-5" "2 2-6" "2 -1" "-1 1-4"; do
    set -- $ng
    echo "fold=4 C=30 word=$1 char=$2 $("$TG_BIN" eval intent --json --word-ngrams "$1" \
      --char-ngrams "$2" --train "$tmp/b_train.tsv" --test "$tmp/b_test.tsv" | summary)"
  done
fi

if [ -n "${INTENT_TUNE:-}" ]; then
  # The project's own example: Chinese (and some English), 25 intents,
  # about 30 utterances each; the same 5-fold split.
  echo "## tuning: examples/insurance/intents.tsv, 5 folds"
  for f in 0 1 2 3 4; do
    banking_split "$f" examples/insurance/intents.tsv
    for ch in 1-4 1-3 2-4 2-5; do
      echo "fold=$f C=30 char=$ch $("$TG_BIN" eval intent --json --char-ngrams "$ch" \
        --train "$tmp/b_train.tsv" --test "$tmp/b_test.tsv" | summary)"
    done
  done
fi

echo "## BANKING77: held-out fold 4 (8,033 train / 1,970 test), default options"
banking_split 4
"$TG_BIN" eval intent --json --train "$tmp/b_train.tsv" --test "$tmp/b_test.tsv" >"$tmp/b.json"
summary <"$tmp/b.json"

clinc_split
mkdir -p "$tmp/cache"
if [ -n "${INTENT_TUNE:-}" ]; then
  echo "## tuning: CLINC150 threshold on val (odd lines) + oos_val"
  for t in 0.1 0.2 0.3 0.4 0.5 0.6 0.7; do
    "$TG_BIN" eval intent --json --cache "$tmp/cache" --threshold "$t" \
      --train "$tmp/c_train.tsv" --test "$tmp/c_tune.tsv" | summary
  done
fi
echo "## CLINC150: val (even lines) + oos_test at threshold $THRESHOLD"
"$TG_BIN" eval intent --json --cache "$tmp/cache" --threshold "$THRESHOLD" \
  --train "$tmp/c_train.tsv" --test "$tmp/c_report.tsv" | summary
