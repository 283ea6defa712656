/*
 * builtin.c - the offline answerer: answers from the knowledge base's best
 * evidence with no model server at all, in microseconds.
 *
 * For an FAQ passage the answer is its stored answer; for an article, the
 * sentences of the best passage that share the most with the question (at
 * most max_sentences, in their original order).  Every answer names its
 * source.  The confidence combines the retrieval evidence (how much of the
 * question the best passage covers, how far it leads the runner-up) and
 * the intent classifier's probability through a logistic function whose
 * coefficients were fitted on labelled questions (see calibrate() and
 * bench/CALIBRATION.md); below min_confidence the answer is the holding
 * reply instead, so no weak guess reaches a customer — except when a
 * person will review the answer anyway (for_review): then the weak draft is
 * written for them, flagged low_confidence.
 */
#include "backend/backend_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_LOW_CONFIDENCE_REPLY "我需要更多时间分析，请稍候"

/* Decode one UTF-8 code point at s (n bytes left); returns its length, at least 1. */
static size_t cp_at(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80 || n < 2) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xE0) == 0xC0) {
        *cp = (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
        return 2;
    }
    if ((s[0] & 0xF0) == 0xE0 && n >= 3) {
        *cp = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
        return 3;
    }
    if ((s[0] & 0xF8) == 0xF0 && n >= 4) {
        *cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
              (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
        return 4;
    }
    *cp = 0xFFFD;
    return 1;
}

static bool is_word_cp(uint32_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x9FFF);
}

static uint32_t fold(uint32_t c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

#define MAX_GRAMS 256

/* The question's character bigrams (folded), as packed pairs. */
static size_t bigrams(const char *s, uint64_t *out, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), k = 0;
    uint32_t prev = 0;
    while (n && k < max) {
        uint32_t c;
        size_t l = cp_at(p, n, &c);
        c = fold(c);
        if (is_word_cp(c)) {
            if (prev)
                out[k++] = (uint64_t)prev << 32 | c;
            prev = c;
        } else {
            prev = 0;
        }
        p += l;
        n -= l;
    }
    return k;
}

/* How many of the question's bigrams q[0..nq) not yet marked in seen
 * occur in s[0..len); marks them. */
static size_t mark_overlap(const char *s, size_t len, const uint64_t *q, size_t nq, uint8_t *seen)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t prev = 0;
    size_t hits = 0;
    while (len) {
        uint32_t c;
        size_t l = cp_at(p, len, &c);
        c = fold(c);
        if (is_word_cp(c)) {
            if (prev) {
                uint64_t g = (uint64_t)prev << 32 | c;
                for (size_t i = 0; i < nq; i++)
                    if (!seen[i] && q[i] == g) {
                        seen[i] = 1;
                        hits++;
                    }
            }
            prev = c;
        } else {
            prev = 0;
        }
        p += l;
        len -= l;
    }
    return hits;
}

/* How many of the question's bigrams occur in s[0..len). */
static size_t overlap(const char *s, size_t len, const uint64_t *q, size_t nq)
{
    uint8_t seen[MAX_GRAMS] = {0};
    return mark_overlap(s, len, q, nq, seen);
}

struct sentence {
    const char *s;
    size_t len;
    size_t score;
    size_t order;
};

/* Split text into sentences ending in 。！？；!? or a newline, or ". " (not in 1.5). */
static size_t split_sentences(const char *text, struct sentence *out, size_t max)
{
    const char *p = text, *start = text;
    size_t n = 0;
    while (*p && n < max) {
        size_t cut = 0;
        if (*p == '\n' || *p == '!' || *p == '?' || *p == ';')
            cut = 1;
        else if (*p == '.' && (p[1] == ' ' || p[1] == '\n' || p[1] == '\0'))
            cut = 1;
        else if (!strncmp(p, "。", 3) || !strncmp(p, "！", 3) || !strncmp(p, "？", 3) ||
                 !strncmp(p, "；", 3))
            cut = 3;
        if (cut) {
            const char *end = p + (*p == '\n' ? 0 : cut);
            while (start < end && (*start == ' ' || *start == '#' || *start == '-' ||
                                   *start == '*' || *start == '>'))
                start++;
            if (end > start) {
                out[n] = (struct sentence){start, (size_t)(end - start), 0, n};
                n++;
            }
            p += cut;
            start = p;
            continue;
        }
        p++;
    }
    while (*start == ' ' || *start == '#' || *start == '-' || *start == '*')
        start++;
    if (*start && n < max) {
        out[n] = (struct sentence){start, strlen(start), 0, n};
        n++;
    }
    return n;
}

static int by_score(const void *a, const void *b)
{
    const struct sentence *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int by_order(const void *a, const void *b)
{
    const struct sentence *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order;
}

/*
 * What kind of fact a question asks for, from its own words: a duration
 * (how long, which day), an amount (how much, what it costs), a list of
 * things to bring or send, or nothing in particular.
 */
enum want { WANT_ANY = 0, WANT_DURATION = 1, WANT_AMOUNT = 2, WANT_MATERIALS = 4 };

static bool has_any(const char *s, size_t len, const char *const *words, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t wl = strlen(words[i]);
        for (size_t j = 0; j + wl <= len; j++)
            if (strncasecmp(s + j, words[i], wl) == 0)
                return true;
    }
    return false;
}

static unsigned question_wants(const char *q)
{
    static const char *const duration[] = {
        "多久", "多长时间", "几天", "多少天",   "几个工作日",    "几日",     "多长", "什么时候",
        "哪天", "期限",     "时限", "how long", "how many days", "how soon", "when"};
    static const char *const amount[] = {"多少钱", "多少", "几万",     "保费", "费用", "收费",
                                         "价格",   "贵",   "how much", "fee",  "cost", "price"};
    static const char *const materials[] = {
        "材料", "资料", "带什么", "带啥",      "准备什么",       "需要什么", "要什么",
        "哪些", "单子", "证件",   "documents", "what do i need", "bring"};
    size_t n = strlen(q);
    unsigned w = WANT_ANY;
    if (has_any(q, n, duration, TG_ARRAY_LEN(duration)))
        w |= WANT_DURATION;
    if (has_any(q, n, amount, TG_ARRAY_LEN(amount)))
        w |= WANT_AMOUNT;
    if (has_any(q, n, materials, TG_ARRAY_LEN(materials)))
        w |= WANT_MATERIALS;
    return w;
}

/* Does the sentence state what the question wants?  A number before a
 * unit of time or money, or a list of documents. */
static unsigned sentence_gives(const char *s, size_t len)
{
    static const char *const time_units[] = {"天",  "日",   "个月",  "小时", "年",  "周",
                                             "day", "hour", "month", "week", "year"};
    static const char *const money_units[] = {"元", "万", "%", "yuan", "cny"};
    static const char *const docs[] = {"证明",   "身份证",  "申请书", "发票", "病历",
                                       "清单",   "报告",    "银行卡", "材料", "certificate",
                                       "report", "receipt", "form"};
    unsigned g = WANT_ANY;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            continue;
        size_t j = i;
        while (j < len && ((s[j] >= '0' && s[j] <= '9') || s[j] == '.' || s[j] == ',' ||
                           s[j] == ' ' || s[j] == '-'))
            j++;
        size_t rest = len - j < 9 ? len - j : 9;
        if (has_any(s + j, rest, time_units, TG_ARRAY_LEN(time_units)))
            g |= WANT_DURATION;
        if (has_any(s + j, rest, money_units, TG_ARRAY_LEN(money_units)))
            g |= WANT_AMOUNT;
        i = j;
    }
    if (has_any(s, len, docs, TG_ARRAY_LEN(docs)))
        g |= WANT_MATERIALS;
    return g;
}

/*
 * The sentences of an article passage that answer the question, in their
 * order: each scores the question's bigrams it shares, plus a bonus when
 * it states the kind of fact the question asks for (question_wants) worth
 * half the question's bigrams (at least WANT_BONUS), so "how many days"
 * keeps the sentence with the days even when another repeats more of the
 * question's words.
 */
#define WANT_BONUS 3

static int pick_sentences(const char *question, const char *text, long max_sentences,
                          struct tg_buf *out)
{
    struct sentence sent[128];
    uint64_t q[MAX_GRAMS];
    size_t nq = bigrams(question, q, MAX_GRAMS);
    size_t n = split_sentences(text, sent, TG_ARRAY_LEN(sent));
    unsigned wants = question_wants(question);
    size_t bonus = TG_MAX((size_t)WANT_BONUS, nq / 2);
    int rc = TG_OK;
    for (size_t i = 0; i < n; i++) {
        sent[i].score = overlap(sent[i].s, sent[i].len, q, nq);
        if (wants & sentence_gives(sent[i].s, sent[i].len))
            sent[i].score += bonus;
    }
    qsort(sent, n, sizeof(sent[0]), by_score);
    size_t keep = TG_MIN(n, (size_t)max_sentences);
    /* Sentences that share nothing with the question add nothing, unless all do. */
    while (keep > 1 && sent[keep - 1].score == 0)
        keep--;
    qsort(sent, keep, sizeof(sent[0]), by_order);
    for (size_t i = 0; i < keep && !rc; i++) {
        rc = tg_buf_append(out, sent[i].s, sent[i].len);
        /* sentences keep their own end marks; Latin ones need a space between */
        if (!rc && i + 1 < keep && (unsigned char)sent[i].s[sent[i].len - 1] < 0x80)
            rc = tg_buf_puts(out, " ");
    }
    return rc;
}

/*
 * The signals, in this order (x[i] below):
 *   0 coverage: share of the question's tokens in the best passage
 *   1 lead: (best score - second) / best
 *   2 the intent classifier's probability (0.25 without a classifier)
 *   3 ln(1 + best score) / 4
 *   4 the best passage's key match (its FAQ question or heading against
 *     the question, cosine 0..1)
 *   5 how far that match is ahead of the best other passage's
 *   6 1 when the best passage is an FAQ pair (a whole answer, not picked
 *     sentences)
 *   7 1 when the question asks for a kind of fact (days, an amount, a
 *     list of documents) and the best passage states one
 *   8 1 when it asks for one and the passage states none
 *   9 share of the question's bigrams found in none of the passages: the
 *     words the knowledge base does not know ("火星" in "火星上的保险")
 *  10 the learned ranker's share for the best passage (stage_retrieve.c)
 *  11 share of the best passage's key (FAQ question or heading) that the
 *     question says
 *  12 the intent classifier's probability of the turn's intent on the best
 *     passage's topic: the passage is about what was asked
 */
void tg_backend_builtin_signals(const struct tg_backend_request *rq, double *x)
{
    memset(x, 0, TG_BUILTIN_SIGNALS * sizeof(*x));
    if (!rq->n_evidence)
        return;
    const struct tg_evidence *e = &rq->evidence[0];
    const char *question = rq->question ? rq->question : "";
    double s1 = e->score, s2 = rq->n_evidence > 1 ? rq->evidence[1].score : 0.0, m2 = 0;
    for (size_t i = 1; i < rq->n_evidence; i++)
        m2 = TG_MAX(m2, rq->evidence[i].match);
    x[0] = rq->query_coverage;
    x[1] = s1 > 0 ? (s1 - s2) / s1 : 0.0;
    x[2] = rq->intent_probability >= 0 ? rq->intent_probability : 0.25;
    x[3] = log1p(s1 > 0 ? s1 : 0) / 4.0;
    x[4] = e->match;
    x[5] = e->match - m2;
    x[6] = e->faq_answer != NULL;
    unsigned wants = question_wants(question);
    if (wants) {
        const char *text = e->faq_answer ? e->faq_answer : e->text;
        bool gives = (wants & sentence_gives(text, strlen(text))) != 0;
        x[7] = gives;
        x[8] = !gives;
    }
    uint64_t q[MAX_GRAMS];
    size_t nq = bigrams(question, q, MAX_GRAMS), known = 0;
    uint8_t seen[MAX_GRAMS] = {0};
    for (size_t i = 0; i < rq->n_evidence; i++)
        if (rq->evidence[i].text)
            known += mark_overlap(rq->evidence[i].text, strlen(rq->evidence[i].text), q, nq, seen);
    x[9] = nq ? 1.0 - (double)known / (double)nq : 0.0;
    x[10] = e->rank;
    x[11] = e->features[4];
    x[12] = e->features[6];
}

/*
 * Confidence in [0, 1] that the best passage answers the question: a
 * logistic function (Platt scaling) of the signals above, fitted by
 * bench/calibrate.sh on questions made from the knowledge base itself
 * (see bench/CALIBRATION.md).  The score's scale depends on the size of
 * the knowledge base: refit for another deployment.
 */
double tg_backend_builtin_confidence(const struct tg_backend_request *rq)
{
    static const double w[TG_BUILTIN_SIGNALS + 1] = {
        -7.177, 4.711, 1.622, 1.654, 6.045, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    };
    double x[TG_BUILTIN_SIGNALS], z = w[0];
    if (!rq->n_evidence)
        return 0.0;
    tg_backend_builtin_signals(rq, x);
    for (size_t i = 0; i < TG_BUILTIN_SIGNALS; i++)
        z += w[i + 1] * x[i];
    return 1.0 / (1.0 + exp(-z));
}

static int builtin_generate(struct tg_backend *b, const struct tg_backend_request *rq,
                            tg_backend_cb cb, void *arg, struct tg_backend_call **call)
{
    (void)call;
    const struct tg_backend_conf *conf = b->conf;
    struct tg_backend_result res;
    struct tg_buf out;
    int rc = TG_OK;
    tg_backend_result_init(&res);
    tg_buf_init(&out, 1u << 20);
    res.confidence = tg_backend_builtin_confidence(rq);
    res.low_confidence = res.confidence < conf->min_confidence || !rq->n_evidence;
    if (res.low_confidence && !(rq->for_review && rq->n_evidence)) {
        res.holding = true;
        rc = tg_buf_puts(&out, conf->low_confidence_reply ? conf->low_confidence_reply
                                                          : DEFAULT_LOW_CONFIDENCE_REPLY);
    } else {
        const struct tg_evidence *e = &rq->evidence[0];
        res.cited = 0;
        if (e->faq_answer)
            rc = tg_buf_puts(&out, e->faq_answer);
        else
            rc = pick_sentences(rq->question ? rq->question : "", e->text, conf->max_sentences,
                                &out);
        while (!rc && out.len && (out.data[out.len - 1] == ' ' || out.data[out.len - 1] == '\n'))
            out.data[--out.len] = '\0';
        if (!rc)
            rc = tg_buf_printf(&out, "\n\n（来源：%s）",
                               e->title && e->title[0] ? e->title : e->source);
    }
    if (rc) {
        tg_buf_free(&out);
        return rc;
    }
    res.status = 200;
    res.content = tg_buf_steal(&out, &res.len);
    tg_strlcpy(res.finish_reason, "stop", sizeof(res.finish_reason));
    tg_strlcpy(res.model, conf->name, sizeof(res.model));
    cb(&res, arg);
    tg_free(res.content);
    return TG_OK;
}

static void builtin_cancel(struct tg_backend_call *call)
{
    (void)call; /* answers at once: nothing to cancel */
}

const struct tg_backend_ops tg_backend_builtin_ops = {
    .type = "builtin",
    .generate = builtin_generate,
    .cancel = builtin_cancel,
};
