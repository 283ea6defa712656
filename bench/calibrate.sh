#!/usr/bin/env bash
# calibrate.sh - refit the builtin answerer's confidence (Platt scaling) on a
# deployment's labelled questions; prints the weights for calibrate() in
# src/backend/builtin.c and the precision/recall at each threshold.
#
#   bench/calibrate.sh [CONFIG] [QUESTIONS.jsonl] [FAQ.jsonl]
#
# Labelled data, three kinds of questions:
#   P  paraphrased customer questions with their expected source
#      ({"question", "source"} lines; label 1 when the source is among the
#      top 3 citations, with the manual corrections in calibration/labels.tsv)
#   F  every second FAQ question, reworded ("请问..."), label 1 when its own
#      FAQ pair is cited first
#   N  every fifth HalluQA question (Chinese general knowledge, outside any
#      insurer's knowledge base), label 0
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=${1:-examples/insurance/trustgate.yaml}
questions=${2:-examples/insurance/eval/questions.jsonl}
faq=${3:-examples/insurance/kb/faq.jsonl}
halluqa=${HALLUQA:-../shared/datasets/halluqa_zh/halluqa.jsonl}
bin=${TRUSTGATE:-build/trustgate}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$questions" "$faq" "$halluqa" > "$work/qs.tsv" <<'PY'
import json, sys
qs, faq, hq = sys.argv[1:4]
for l in open(qs):
    d = json.loads(l); print("P\t%s\t%s" % (d["source"], d["question"]))
for i, l in enumerate(open(faq), 1):
    d = json.loads(l)
    if i % 2 == 0: print("F\tfaq.jsonl:%d\t请问%s" % (i, d["question"].rstrip("？?")))
for i, l in enumerate(open(hq), 1):
    if i % 5 == 0: print("N\t-\t%s" % json.loads(l)["Question"])
PY
while IFS=$'\t' read -r kind src q; do
  printf '%s\t%s\t%s\t' "$kind" "$src" "$q"
  "$bin" ask -c "$cfg" --data "$work/data" --json "$q" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin); s = d["signals"]
cites = [c["source"] for c in d["citations"] if c["source"] != "glossary"]
print(json.dumps({"top": s["top_score"], "lead": s["lead"], "cov": s["coverage"],
                  "ip": s["intent_probability"], "cites": cites[:3]}))'
done < "$work/qs.tsv" > "$work/signals.tsv"
python3 bench/calibration/fit.py "$work/signals.tsv" bench/calibration/labels.tsv
