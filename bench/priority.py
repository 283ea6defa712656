#!/usr/bin/env python3
"""bench/priority.py - one gateway under a VIP flood: per class, how many
turns the model answered (not a lower rung) and how long they took.

usage: priority.py PORT SECONDS VIP_CLIENTS VIP_KEY CUSTOMER_CLIENTS CUSTOMER_KEY
Prints one line per class: class turns model_share capacity_share p50_ms p99_ms.
"""
import http.client
import json
import sys
import threading
import time

port, seconds = int(sys.argv[1]), float(sys.argv[2])
classes = [("vip", int(sys.argv[3]), sys.argv[4]), ("customer", int(sys.argv[5]), sys.argv[6])]
results = {name: [] for name, _, _ in classes}
lock = threading.Lock()
stop = time.monotonic() + seconds


def client(name, key, n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    meta = {"tier": "vip"} if name == "vip" else {}
    i = 0
    while time.monotonic() < stop:
        body = json.dumps({"model": "m-slow", "user": f"{name}-{n}-{i}", "metadata": meta,
                           "messages": [{"role": "user", "content": "hello"}]})
        t0 = time.monotonic()
        try:
            conn.request("POST", "/v1/chat/completions", body,
                         {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
        except Exception:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        ms = (time.monotonic() - t0) * 1000
        rung = json.loads(data).get("trustgate", {}).get("rung", "") if r.status == 200 else "error"
        with lock:
            results[name].append((rung, ms))
        i += 1


threads = [threading.Thread(target=client, args=(name, key, n))
           for name, count, key in classes for n in range(count)]
for t in threads:
    t.start()
for t in threads:
    t.join()
model_total = sum(1 for v in results.values() for rung, _ in v if rung == "primary")
for name, _, _ in classes:
    v = results[name]
    ms = sorted(m for _, m in v)
    model = sum(1 for rung, _ in v if rung == "primary")
    q = lambda p: ms[min(len(ms) - 1, int(p * len(ms)))] if ms else 0
    print(f"{name} {len(v)} {model / len(v) if v else 0:.3f} "
          f"{model / model_total if model_total else 0:.3f} {q(0.5):.0f} {q(0.99):.0f}")
