# fit.py - logistic regression (Platt scaling) of the builtin answerer's
# confidence signals; part of bench/calibrate.sh.  Pure Python: ten
# signals and a couple of thousand questions need no library.
#
#   python3 fit.py SIGNALS.jsonl [CHECK.jsonl ...]
#
# SIGNALS.jsonl: `trustgate eval far --signals` lines of the knowledge
# base's own questions (kbset.py); a question is answered right when the
# first passage cited is its source.  Fits the weights by Newton's method
# (L2 0.01), prints them for tg_backend_builtin_confidence(), what each
# threshold does per kind of question, the precision and recall at 0.7 in
# 5-fold cross-validation that keeps each document's questions in one fold,
# and the expected calibration error (10 bins) of those held-out
# confidences.  Each CHECK file (signals of any labelled set) is scored
# with the fitted weights: answered, right among the answered (precision).
import json, math, random, sys

NAMES = ["coverage", "lead", "intent", "ln(1+top)/4", "match", "match lead", "faq",
         "fact given", "fact missing", "unknown words", "rank share", "key recall",
         "topic intent"]
L2 = 0.01


def same_source(cited, want):
    return cited == want or cited.endswith("/" + want)


def load(path):
    rows = []
    for line in open(path, encoding="utf-8"):
        d = json.loads(line)
        ev = d["evidence"]
        want = d.get("source") or ""
        y = int(bool(ev) and bool(want) and same_source(ev[0]["source"], want))
        rows.append((d["signals"], y, d.get("kind") or d["id"].split("-")[0],
                     d.get("group") or want, d))
    return rows


def prob(w, x):
    z = w[0] + sum(a * b for a, b in zip(w[1:], x))
    return 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))


def solve(a, b):
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        for r in range(n):
            if r != c and m[c][c]:
                f = m[r][c] / m[c][c]
                for k in range(c, n + 1):
                    m[r][k] -= f * m[c][k]
    return [m[i][n] / m[i][i] if m[i][i] else 0.0 for i in range(n)]


def fit(X, Y):
    d = len(X[0]) + 1
    w = [0.0] * d
    for _ in range(25):
        g = [0.0] * d
        h = [[0.0] * d for _ in range(d)]
        for x, y in zip(X, Y):
            v = [1.0] + list(x)
            p = prob(w, x)
            s = p * (1 - p)
            for i in range(d):
                g[i] += (p - y) * v[i]
                for j in range(d):
                    h[i][j] += s * v[i] * v[j]
        for i in range(1, d):
            g[i] += L2 * len(X) * w[i]
            h[i][i] += L2 * len(X)
        step = solve(h, g)
        w = [a - b for a, b in zip(w, step)]
        if max(abs(s) for s in step) < 1e-7:
            break
    return w


def ece(pairs, bins=10):
    tot = 0.0
    for b in range(bins):
        sel = [(p, y) for p, y in pairs if min(int(p * bins), bins - 1) == b]
        if sel:
            tot += abs(sum(p for p, _ in sel) / len(sel) - sum(y for _, y in sel) / len(sel)) * len(sel)
    return tot / max(1, len(pairs))


rows = load(sys.argv[1])
X = [r[0] for r in rows]
Y = [r[1] for r in rows]
w = fit(X, Y)
print("weights: bias %.3f, %s" % (w[0], ", ".join("%s %.3f" % (n, v) for n, v in zip(NAMES, w[1:]))))
print("C: {%s}" % ", ".join("%.3f" % v for v in w))
kinds = sorted(set(r[2] for r in rows))
for th in (0.5, 0.6, 0.7, 0.8):
    parts = []
    for k in kinds:
        sel = [(prob(w, r[0]), r[1]) for r in rows if r[2] == k]
        ans = [y for p, y in sel if p >= th]
        parts.append("%s %d/%d answered, %d right" % (k, len(ans), len(sel), sum(ans)))
    print("threshold %.1f: %s" % (th, "; ".join(parts)))
groups = sorted(set(r[3] for r in rows))
random.seed(7)
random.shuffle(groups)
fold = {g: i % 5 for i, g in enumerate(groups)}
tp = fp = fn = 0
held = []
for k in range(5):
    tr = [r for r in rows if fold[r[3]] != k]
    w2 = fit([r[0] for r in tr], [r[1] for r in tr])
    for r in rows:
        if fold[r[3]] == k:
            p = prob(w2, r[0])
            held.append((p, r[1]))
            tp += p >= 0.7 and r[1] == 1
            fp += p >= 0.7 and r[1] == 0
            fn += p < 0.7 and r[1] == 1
print("5-fold (by document) at 0.7: precision %.3f, recall %.3f (tp %d, fp %d, fn %d); ECE %.3f"
      % (tp / max(1, tp + fp), tp / max(1, tp + fn), tp, fp, fn, ece(held)))
for path in sys.argv[2:]:
    rs = load(path)
    ans = [r for r in rs if prob(w, r[0]) >= 0.7]
    print("%s at 0.7: answered %d of %d, right %d (precision %.3f); right and held %d; ECE %.3f"
          % (path, len(ans), len(rs), sum(r[1] for r in ans), sum(r[1] for r in ans) / max(1, len(ans)),
             sum(r[1] for r in rs) - sum(r[1] for r in ans),
             ece([(prob(w, r[0]), r[1]) for r in rs])))
