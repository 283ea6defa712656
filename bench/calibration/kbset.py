# kbset.py - labelled calibration questions made from a knowledge base
# itself (part of bench/calibrate.sh): no evaluation set is read.
#
#   python3 kbset.py KB_DIR HALLUQA CLINC_TSV > set.jsonl
#
# Writes `trustgate eval far` items ({id, question, source, kind}); the
# answer to a question is right when the first passage cited is `source`.
#   F  every FAQ pair's question, as written, after 请问, after a short
#      preamble (a customer's lead-in that names nothing), and shortened
#      (its last third of characters dropped)
#   H  every article heading below the title, alone, with the title, and
#      as a question about it (请问…是怎么规定的)
#   G  the same, as customers write them: after a story (a clause of a
#      HalluQA question that is not a negative below), or with about a
#      quarter of the characters left out
#   S  every third sentence of an article that states a number, its
#      digits dropped, asked as 请问…
#   N  every fifth HalluQA question (Chinese general knowledge) and every
#      fourth CLINC150 out-of-scope query (English): nothing answers them
# Kinds carry the document they came from (group), so cross-validation can
# keep a document's questions together.
import json, os, random, re, sys

kb, halluqa, clinc = sys.argv[1:4]
rng = random.Random(16)
# Customers tell a story before they ask: clauses with words the knowledge
# base does not have.  Taken from HalluQA questions that are not negatives
# below (line numbers not divisible by 5), cut at the first comma.
STORIES = []
for i, line in enumerate(open(halluqa, encoding="utf-8"), 1):
    if i % 5:
        c = re.split(r"[，,。？?]", json.loads(line)["Question"])[0]
        if 4 <= len(c) <= 16:
            STORIES.append(c)


def story(q):
    return "%s，%s" % (rng.choice(STORIES), q)


def dropped(q):
    """q with about a quarter of its characters left out, as a hurried customer types."""
    return "".join(ch for ch in q if rng.random() >= 0.25)
LEADS = ["你好，想问下", "不好意思打扰一下，", "我家里人让我问问，", "刚在App上看了半天没找到，"]
out = []


def item(kind, group, q, source):
    out.append({"id": "%s-%d" % (kind, len(out) + 1), "kind": kind, "group": group,
                "question": q, "source": source, "decision": "deliver"})


for i, line in enumerate(open(os.path.join(kb, "faq.jsonl"), encoding="utf-8"), 1):
    q = json.loads(line)["question"].strip()
    bare = q.rstrip("？?")
    src = "faq.jsonl:%d" % i
    item("F", src, q, src)
    item("F", src, "请问" + bare, src)
    item("F", src, LEADS[i % len(LEADS)] + bare, src)
    if len(bare) >= 6:
        item("F", src, bare[: len(bare) * 2 // 3], src)
    item("G", src, story(bare), src)
    item("G", src, dropped(bare), src)

for name in sorted(os.listdir(kb)):
    if not name.endswith(".md"):
        continue
    text = open(os.path.join(kb, name), encoding="utf-8").read()
    title = (re.findall(r"^# (.+)$", text, re.M) or [name])[0].strip()
    for n, h in enumerate(re.findall(r"^#{2,4} (.+)$", text, re.M)):
        h = h.strip()
        item("H", name, h, name)
        if n % 2 == 0:
            item("H", name, "%s%s" % (title, h), name)
            item("G", name, story("%s的%s" % (dropped(title), h)), name)
        else:
            item("H", name, "请问%s是怎么规定的" % h, name)
            item("G", name, dropped("%s%s怎么规定的" % (title, h)), name)
    body = re.sub(r"^#.*$", "", text, flags=re.M)
    sents = [s.strip(" -*>\n") for s in re.split(r"[。！？\n]", body)]
    sents = [s for s in sents if re.search(r"\d", s) and "|" not in s and 8 <= len(s) <= 60]
    for s in sents[::3]:
        q = re.sub(r"[0-9０-９.,%％]+", "", s).strip(" ：:；;，,")
        if len(q) >= 6:
            item("S", name, "请问" + q[:30], name)

for i, line in enumerate(open(halluqa, encoding="utf-8"), 1):
    if i % 5 == 0:
        item("N", "halluqa", json.loads(line)["Question"], "none")
n = 0
for line in open(clinc, encoding="utf-8"):
    f = line.rstrip("\n").split("\t")
    if len(f) == 3 and f[2] == "oos":
        n += 1
        if n % 4 == 0:
            item("N", "clinc", f[1], "none")

for o in out:
    print(json.dumps(o, ensure_ascii=False))
