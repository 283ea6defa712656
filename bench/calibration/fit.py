# fit.py - logistic regression (Platt scaling) of the builtin answerer's
# confidence signals; part of bench/calibrate.sh.  Pure Python: three
# features and a few hundred questions need no library.
import json, math, random, sys

signals, labels = sys.argv[1], sys.argv[2]
fixes = {}
for line in open(labels, encoding="utf-8"):
    if line.strip() and not line.startswith("#"):
        q, y = line.rstrip("\n").split("\t")
        fixes[q] = int(y)

X, Y, K = [], [], []
for line in open(signals, encoding="utf-8"):
    kind, src, q, js = line.rstrip("\n").split("\t")
    s = json.loads(js)
    if kind == "P":
        y = int(any(c.endswith(src) for c in s["cites"]))
    elif kind == "F":
        y = int(bool(s["cites"]) and s["cites"][0].endswith(src))
    else:
        y = 0
    y = fixes.get(q, y)
    ip = s["ip"] if s["ip"] is not None else 0.25
    X.append([s["cov"], s["lead"], ip, math.log1p(s["top"]) / 4])
    Y.append(y)
    K.append(kind)

def fit(X, Y, l2=0.001, it=30000, lr=1.0):
    w = [0.0] * (len(X[0]) + 1)
    for _ in range(it):
        g = [0.0] * len(w)
        for x, y in zip(X, Y):
            p = 1 / (1 + math.exp(-(w[0] + sum(a * b for a, b in zip(w[1:], x)))))
            g[0] += p - y
            for j, xj in enumerate(x):
                g[j + 1] += (p - y) * xj
        for j in range(len(w)):
            w[j] -= lr * (g[j] / len(X) + (l2 * w[j] if j else 0))
    return w

def prob(w, x):
    return 1 / (1 + math.exp(-(w[0] + sum(a * b for a, b in zip(w[1:], x)))))

w = fit(X, Y)
print("weights: bias %.3f, coverage %.3f, lead %.3f, intent %.3f, ln(1+top)/4 %.3f" % tuple(w))
for th in (0.5, 0.6, 0.7, 0.8):
    row = []
    for kind in "PFN":
        sel = [(prob(w, x), y) for x, y, k in zip(X, Y, K) if k == kind]
        ans = [y for p, y in sel if p >= th]
        row.append("%s %d/%d answered, %d right" % (kind, len(ans), len(sel), sum(ans)))
    print("threshold %.1f: %s" % (th, "; ".join(row)))
random.seed(7)
idx = list(range(len(X)))
random.shuffle(idx)
tp = fp = fn = 0
for k in range(5):
    test = set(idx[k::5])
    w2 = fit([X[i] for i in idx if i not in test], [Y[i] for i in idx if i not in test], it=8000)
    for i in test:
        p = prob(w2, X[i])
        tp += p >= 0.7 and Y[i] == 1
        fp += p >= 0.7 and Y[i] == 0
        fn += p < 0.7 and Y[i] == 1
print("5-fold cross-validation at 0.7: precision %.3f, recall %.3f (tp %d, fp %d, fn %d)"
      % (tp / max(1, tp + fp), tp / max(1, tp + fn), tp, fp, fn))
