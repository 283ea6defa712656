/*
 * features.c - what the intent classifier sees in an utterance: word
 * n-grams from the shared tokenizer and character n-grams over the
 * normalized text, mapped to ids by a vocabulary built at training time,
 * weighted by sublinear TF-IDF and scaled to unit length.
 */
#include "intent/intent_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ vocabulary */

/* FNV-1a, 64-bit (Fowler/Noll/Vo); the slot comes from the high half so the
 * low half stored in the slot is independent of it. */
static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void tg_vocab_init(struct tg_vocab *v)
{
    memset(v, 0, sizeof(*v));
}

void tg_vocab_free(struct tg_vocab *v)
{
    tg_free(v->slots);
    tg_free(v->off);
    tg_free(v->len);
    tg_free(v->pool);
    memset(v, 0, sizeof(*v));
}

static size_t slot_of(const struct tg_vocab *v, uint64_t h)
{
    return (size_t)(h >> 32) & v->mask;
}

long tg_vocab_find(const struct tg_vocab *v, const char *key, size_t len)
{
    if (!v->slots)
        return -1;
    uint64_t h = fnv1a(key, len);
    for (size_t i = slot_of(v, h);; i = (i + 1) & v->mask) {
        const struct tg_vocab_slot *s = &v->slots[i];
        if (!s->id1)
            return -1;
        uint32_t id = s->id1 - 1;
        if (s->hash == (uint32_t)h && v->len[id] == len &&
            memcmp(v->pool + v->off[id], key, len) == 0)
            return id;
    }
}

static int grow_slots(struct tg_vocab *v)
{
    size_t n = v->slots ? (v->mask + 1) * 2 : 1024;
    struct tg_vocab_slot *slots = tg_calloc(n, sizeof(*slots));
    if (!slots)
        return TG_E_NOMEM;
    size_t mask = n - 1;
    for (size_t id = 0; id < v->n; id++) {
        uint64_t h = fnv1a(v->pool + v->off[id], v->len[id]);
        size_t i = (size_t)(h >> 32) & mask;
        while (slots[i].id1)
            i = (i + 1) & mask;
        slots[i].id1 = (uint32_t)id + 1;
        slots[i].hash = (uint32_t)h;
    }
    tg_free(v->slots);
    v->slots = slots;
    v->mask = mask;
    return TG_OK;
}

int tg_vocab_add(struct tg_vocab *v, const char *key, size_t len, uint32_t *id)
{
    long found = tg_vocab_find(v, key, len);
    if (found >= 0) {
        *id = (uint32_t)found;
        return TG_OK;
    }
    if (v->n >= INT32_MAX - 1 || len > UINT32_MAX - v->pool_len)
        return TG_E_TOOBIG;
    if (!v->slots || (v->n + 1) * 2 > v->mask + 1) {
        if (grow_slots(v))
            return TG_E_NOMEM;
    }
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 1024;
        uint32_t *off = tg_realloc(v->off, cap * sizeof(*off));
        if (!off)
            return TG_E_NOMEM;
        v->off = off;
        uint32_t *ln = tg_realloc(v->len, cap * sizeof(*ln));
        if (!ln)
            return TG_E_NOMEM;
        v->len = ln;
        v->cap = cap;
    }
    if (v->pool_len + len > v->pool_cap) {
        size_t cap = v->pool_cap ? v->pool_cap : 16384;
        while (cap < v->pool_len + len)
            cap *= 2;
        char *p = tg_realloc(v->pool, cap);
        if (!p)
            return TG_E_NOMEM;
        v->pool = p;
        v->pool_cap = cap;
    }
    memcpy(v->pool + v->pool_len, key, len);
    v->off[v->n] = (uint32_t)v->pool_len;
    v->len[v->n] = (uint32_t)len;
    v->pool_len += len;
    uint64_t h = fnv1a(key, len);
    size_t i = slot_of(v, h);
    while (v->slots[i].id1)
        i = (i + 1) & v->mask;
    v->slots[i].id1 = (uint32_t)v->n + 1;
    v->slots[i].hash = (uint32_t)h;
    *id = (uint32_t)v->n++;
    return TG_OK;
}

const char *tg_vocab_key(const struct tg_vocab *v, uint32_t id)
{
    TG_ASSERT(id < v->n);
    return v->pool + v->off[id];
}

size_t tg_vocab_len(const struct tg_vocab *v, uint32_t id)
{
    TG_ASSERT(id < v->n);
    return v->len[id];
}

/* ------------------------------------------------------------ options */

static bool opts_ok(const struct tg_intent_opts *o)
{
    bool words = o->max_ngram >= -1 && o->max_ngram <= TG_INTENT_NGRAM_LIMIT;
    bool chars =
        o->char_ngram_min >= -1 && o->char_ngram_max >= -1 &&
        o->char_ngram_max <= TG_INTENT_NGRAM_LIMIT &&
        (o->char_ngram_min < 0 || o->char_ngram_max < 0 || o->char_ngram_min <= o->char_ngram_max);
    bool some = o->max_ngram > 0 || (o->char_ngram_min > 0 && o->char_ngram_max > 0);
    return o->c > 0 && isfinite(o->c) && words && chars && some;
}

int tg_intent_resolve_opts(const struct tg_intent_opts *in, struct tg_intent_opts *out, char *err,
                           size_t errlen)
{
    struct tg_intent_opts o = {0};
    if (in)
        o = *in;
    if (o.c == 0)
        o.c = TG_INTENT_DEFAULT_C;
    if (o.max_ngram == 0)
        o.max_ngram = TG_INTENT_DEFAULT_MAX_NGRAM;
    if (o.char_ngram_min == 0 && o.char_ngram_max == 0) {
        o.char_ngram_min = TG_INTENT_DEFAULT_CHAR_MIN;
        o.char_ngram_max = TG_INTENT_DEFAULT_CHAR_MAX;
    } else if (o.char_ngram_min == 0) {
        o.char_ngram_min = TG_MIN(TG_INTENT_DEFAULT_CHAR_MIN, o.char_ngram_max);
    } else if (o.char_ngram_max == 0) {
        o.char_ngram_max = TG_MAX(TG_INTENT_DEFAULT_CHAR_MAX, o.char_ngram_min);
    }
    if (!opts_ok(&o)) {
        snprintf(err, errlen,
                 "bad intent options: C must be > 0, n-gram lengths 1..%d (or -1 for none), "
                 "and some features must remain",
                 TG_INTENT_NGRAM_LIMIT);
        return TG_E_INVAL;
    }
    if (o.char_ngram_min < 0 || o.char_ngram_max < 0)
        o.char_ngram_min = o.char_ngram_max = -1;
    *out = o;
    return TG_OK;
}

/* ------------------------------------------------------------ extraction */

void tg_feat_scratch_init(struct tg_feat_scratch *s)
{
    memset(s, 0, sizeof(*s));
    tg_buf_init(&s->norm, TG_BUF_UNLIMITED);
    tg_buf_init(&s->key, TG_BUF_UNLIMITED);
    tg_tokens_init(&s->toks);
}

void tg_feat_scratch_free(struct tg_feat_scratch *s)
{
    tg_buf_free(&s->norm);
    tg_buf_free(&s->key);
    tg_tokens_free(&s->toks);
    tg_free(s->cps);
    tg_free(s->ids);
    memset(s, 0, sizeof(*s));
}

static int push_id(struct tg_feat_scratch *s, uint32_t id)
{
    if (tg_grow(&s->ids, &s->cap_ids, s->n_ids, sizeof(*s->ids), 256))
        return TG_E_NOMEM;
    s->ids[s->n_ids++] = id;
    return TG_OK;
}

/* Look the key in s->key up (or add it) and record its id. */
static int emit(struct tg_vocab *v, bool add, struct tg_feat_scratch *s)
{
    uint32_t id;
    if (add) {
        int rc = tg_vocab_add(v, s->key.data, s->key.len, &id);
        if (rc)
            return rc;
    } else {
        long f = tg_vocab_find(v, s->key.data, s->key.len);
        if (f < 0)
            return TG_OK;
        id = (uint32_t)f;
    }
    return push_id(s, id);
}

static bool ngram_token(const struct tg_token *t)
{
    return t->kind != TG_TOK_CJK_BIGRAM;
}

static int word_ngrams(const struct tg_intent_opts *o, struct tg_vocab *v, bool add,
                       struct tg_feat_scratch *s)
{
    const struct tg_tokens *tk = &s->toks;
    int rc = TG_OK;
    for (size_t i = 0; i < tk->n && !rc; i++) {
        if (!ngram_token(&tk->v[i]))
            continue;
        tg_buf_reset(&s->key);
        rc = tg_buf_append(&s->key, "w:", 2);
        size_t j = i;
        for (int n = 1; n <= o->max_ngram && j < tk->n && !rc; n++) {
            if (n > 1)
                rc = tg_buf_append(&s->key, " ", 1);
            if (!rc)
                rc = tg_buf_append(&s->key, tk->v[j].text, tk->v[j].len);
            if (!rc)
                rc = emit(v, add, s);
            for (j++; j < tk->n && !ngram_token(&tk->v[j]); j++)
                ;
        }
    }
    return rc;
}

/* Character n-grams over " " + text + " " (s->norm holds exactly that). */
static int char_ngrams(const struct tg_intent_opts *o, struct tg_vocab *v, bool add,
                       struct tg_feat_scratch *s)
{
    const char *p = s->norm.data;
    size_t len = s->norm.len;
    if (len + 1 > s->cap_cps) {
        size_t cap = s->cap_cps ? s->cap_cps : 256;
        while (cap < len + 1)
            cap *= 2;
        uint32_t *c = tg_realloc(s->cps, cap * sizeof(*c));
        if (!c)
            return TG_E_NOMEM;
        s->cps = c;
        s->cap_cps = cap;
    }
    size_t ncp = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)p[i] & 0xC0) != 0x80)
            s->cps[ncp++] = (uint32_t)i;
    s->cps[ncp] = (uint32_t)len;
    int rc = TG_OK;
    for (int n = o->char_ngram_min; n <= o->char_ngram_max && !rc; n++) {
        for (size_t i = 0; i + (size_t)n <= ncp && !rc; i++) {
            size_t a = s->cps[i], b = s->cps[i + (size_t)n];
            size_t k = a;
            while (k < b && p[k] == ' ')
                k++;
            if (k == b)
                continue;
            tg_buf_reset(&s->key);
            rc = tg_buf_append(&s->key, "c:", 2);
            if (!rc)
                rc = tg_buf_append(&s->key, p + a, b - a);
            if (!rc)
                rc = emit(v, add, s);
        }
    }
    return rc;
}

int tg_feat_extract(struct tg_text *tx, const struct tg_intent_opts *opts, struct tg_vocab *v,
                    bool add, const char *text, size_t len, struct tg_feat_scratch *s)
{
    s->n_ids = 0;
    tg_buf_reset(&s->norm);
    tg_tokens_reset(&s->toks);
    int rc = tg_buf_append(&s->norm, " ", 1);
    if (!rc)
        rc = tg_text_normalize(tx, text, len, TG_NORM_T2S, &s->norm);
    if (!rc && opts->max_ngram > 0)
        rc = tg_text_tokenize(tx, s->norm.data + 1, s->norm.len - 1, TG_TOKEN_WORDS | TG_TOKEN_STEM,
                              &s->toks);
    if (!rc)
        rc = tg_buf_append(&s->norm, " ", 1);
    if (!rc && opts->max_ngram > 0)
        rc = word_ngrams(opts, v, add, s);
    if (!rc && opts->char_ngram_max > 0)
        rc = char_ngrams(opts, v, add, s);
    return rc;
}

static void sift_down(uint32_t *a, size_t root, size_t n)
{
    uint32_t v = a[root];
    size_t child = 2 * root + 1;
    while (child < n) {
        if (child + 1 < n && a[child + 1] > a[child])
            child++;
        if (a[child] <= v)
            break;
        a[root] = a[child];
        root = child;
        child = 2 * root + 1;
    }
    a[root] = v;
}

/* Heapsort: in place and without allocation (glibc's qsort may call
 * malloc), O(n log n) for the few hundred ids of an utterance. */
static void sort_ids(uint32_t *a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(a, i, n);
    for (size_t end = n; end > 1; end--) {
        uint32_t t = a[0];
        a[0] = a[end - 1];
        a[end - 1] = t;
        sift_down(a, 0, end - 1);
    }
}

size_t tg_feat_count(uint32_t *ids, size_t n, struct feature_node *out)
{
    sort_ids(ids, n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && out[k - 1].index == (int)ids[i] + 1) {
            out[k - 1].value += 1;
        } else {
            out[k].index = (int)ids[i] + 1;
            out[k].value = 1;
            k++;
        }
    }
    return k;
}

void tg_feat_weigh(struct feature_node *x, size_t n, const double *idf)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++) {
        x[i].value = (1 + log(x[i].value)) * idf[x[i].index - 1];
        ss += x[i].value * x[i].value;
    }
    if (ss > 0) {
        double inv = 1 / sqrt(ss);
        for (size_t i = 0; i < n; i++)
            x[i].value *= inv;
    }
}
