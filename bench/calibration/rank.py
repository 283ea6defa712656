# rank.py - the learned ranker of the retrieve stage (rank_w in
# src/pipeline/stage_retrieve.c), fitted by listwise softmax regression;
# part of bench/calibrate.sh.  Pure Python.
#
#   python3 rank.py SIGNALS.jsonl [CHECK.jsonl ...]
#
# SIGNALS.jsonl: `trustgate eval far --signals` lines of the knowledge
# base's own questions (kbset.py, joined with their kind and document).
# For every question whose own document is among its passages, the
# weights maximize the softmax probability of that passage (L2 0.01).
# Prints the weights, the share of questions whose own document comes
# first by retrieval order and by the ranker, in 5-fold cross-validation
# that keeps each document's questions in one fold, and the same shares
# on each CHECK file with the weights fitted on all.
import json, math, random, sys

L2 = 0.01


def same_source(cited, want):
    return cited == want or cited.endswith("/" + want)


def load(path):
    out = []
    for line in open(path, encoding="utf-8"):
        d = json.loads(line)
        want = d.get("source") or ""
        ev = d["evidence"]
        # the signals file lists the evidence in the order of the ranker that
        # wrote it; retrieval order is by score
        ev = sorted(ev, key=lambda e: -e["score"])
        y = [i for i, e in enumerate(ev) if want and same_source(e["source"], want)]
        if len(ev) >= 2 and y:
            out.append(([e["features"] for e in ev], y[0], d.get("group") or want))
    return out


def scores(w, fs):
    return [sum(a * b for a, b in zip(w, f)) for f in fs]


def fit(data, it=400, lr=0.5):
    d = len(data[0][0][0])
    w = [1.0] + [0.0] * (d - 1)
    for _ in range(it):
        g = [L2 * v for v in w]
        for fs, y, _ in data:
            z = scores(w, fs)
            m = max(z)
            e = [math.exp(v - m) for v in z]
            s = sum(e)
            for i, f in enumerate(fs):
                p = e[i] / s - (i == y)
                for j in range(d):
                    g[j] += p * f[j] / len(data)
        w = [a - lr * b for a, b in zip(w, g)]
    return w


def top1(w, data):
    ok = 0
    for fs, y, _ in data:
        z = scores(w, fs)
        ok += max(range(len(z)), key=lambda i: (z[i], -i)) == y
    return ok


base = [1.0] + [0.0] * (len(json.loads(open(sys.argv[1]).readline())["evidence"][0]["features"]) - 1)
data = load(sys.argv[1])
w = fit(data)
print("weights: %s" % ", ".join("%.3f" % v for v in w))
groups = sorted(set(r[2] for r in data))
random.seed(7)
random.shuffle(groups)
fold = {g: i % 5 for i, g in enumerate(groups)}
ok0 = ok1 = 0
for k in range(5):
    tr = [r for r in data if fold[r[2]] != k]
    te = [r for r in data if fold[r[2]] == k]
    w2 = fit(tr)
    ok0 += top1(base, te)
    ok1 += top1(w2, te)
print("5-fold (by document), questions with their document among the passages: %d; first by "
      "score %d, by the ranker %d" % (len(data), ok0, ok1))
for path in sys.argv[2:]:
    cd = load(path)
    print("%s: %d with the source among the passages; first by score %d, by the ranker %d"
          % (path, len(cd), top1(base, cd), top1(w, cd)))
