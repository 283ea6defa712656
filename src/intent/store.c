/*
 * store.c - intent models on disk, and the training cache.
 *
 * File format (native byte order; the order mark makes a file from a
 * machine of the other order read as corrupt):
 *   "TGINTENT" | u32 0x01020304 | u32 version | 32-byte cache key |
 *   f64 C | i32 max_ngram, char_ngram_min, char_ngram_max |
 *   u64 examples | u32 labels, features, weight columns |
 *   each label: u32 length, bytes | each feature: u32 length, bytes |
 *   f64 idf per feature | f32 weight per (feature + bias) x column |
 *   SHA-256 of everything before it.
 * Anything short, long, inconsistent or failing the digest is rejected;
 * the cache then trains again.
 */
#include "intent/intent_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "TGINTENT"
#define ORDER_MARK 0x01020304u
/* Bump when the file layout or the meaning of features changes. */
#define FORMAT_VERSION 1u
#define MAX_LABELS 65536u

/* ------------------------------------------------------------ writing */

static int put(struct tg_buf *b, const void *p, size_t n)
{
    return tg_buf_append(b, p, n);
}

static int put_u32(struct tg_buf *b, uint32_t v)
{
    return put(b, &v, sizeof(v));
}

static int put_str(struct tg_buf *b, const char *s, size_t n)
{
    int rc = put_u32(b, (uint32_t)n);
    return rc ? rc : put(b, s, n);
}

static int serialize(const struct tg_intent_model *m, struct tg_buf *b)
{
    uint32_t head[2] = {ORDER_MARK, FORMAT_VERSION};
    int32_t ng[3] = {m->opts.max_ngram, m->opts.char_ngram_min, m->opts.char_ngram_max};
    uint64_t ex = m->n_examples;
    uint32_t counts[3] = {(uint32_t)m->n_labels, (uint32_t)m->vocab.n, (uint32_t)m->nr_w};
    int rc = put(b, MAGIC, 8);
    if (!rc)
        rc = put(b, head, sizeof(head));
    if (!rc)
        rc = put(b, m->key, sizeof(m->key));
    if (!rc)
        rc = put(b, &m->opts.c, sizeof(m->opts.c));
    if (!rc)
        rc = put(b, ng, sizeof(ng));
    if (!rc)
        rc = put(b, &ex, sizeof(ex));
    if (!rc)
        rc = put(b, counts, sizeof(counts));
    for (size_t i = 0; i < m->n_labels && !rc; i++)
        rc = put_str(b, m->labels[i], strlen(m->labels[i]));
    for (uint32_t i = 0; i < m->vocab.n && !rc; i++)
        rc = put_str(b, tg_vocab_key(&m->vocab, i), tg_vocab_len(&m->vocab, i));
    if (!rc)
        rc = put(b, m->idf, m->vocab.n * sizeof(double));
    size_t nw = (m->vocab.n + 1) * m->nr_w;
    if (!rc)
        rc = tg_buf_reserve(b, nw * sizeof(float) + TG_SHA256_LEN);
    for (size_t i = 0; i < nw && !rc; i++) {
        float f = (float)m->lin.w[i];
        rc = put(b, &f, sizeof(f));
    }
    uint8_t digest[TG_SHA256_LEN];
    if (!rc) {
        tg_sha256(b->data, b->len, digest);
        rc = put(b, digest, sizeof(digest));
    }
    return rc;
}

int tg_intent_save(const struct tg_intent_model *m, const char *path)
{
    struct tg_buf b, tmp;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    tg_buf_init(&tmp, 4096 + strlen(path));
    FILE *f = NULL;
    int rc = serialize(m, &b);
    if (!rc)
        rc = tg_buf_printf(&tmp, "%s.%ld.tmp", path, (long)getpid());
    if (rc)
        goto out;
    /* write aside and rename: a reader sees the old file or the whole new one */
    f = fopen(tmp.data, "wb");
    if (!f || fwrite(b.data, 1, b.len, f) != b.len || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rc = TG_E_IO;
        goto out;
    }
    int closed = fclose(f);
    f = NULL;
    if (closed != 0 || rename(tmp.data, path) != 0)
        rc = TG_E_IO;
out:
    if (f)
        fclose(f);
    if (rc && tmp.data)
        unlink(tmp.data);
    tg_buf_free(&tmp);
    tg_buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------ reading */

struct cursor {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static const void *take(struct cursor *c, size_t n)
{
    if (c->bad || n > c->left) {
        c->bad = true;
        return NULL;
    }
    const void *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

static void get(struct cursor *c, void *out, size_t n)
{
    const void *p = take(c, n);
    if (p)
        memcpy(out, p, n);
    else
        memset(out, 0, n);
}

static uint32_t get_u32(struct cursor *c)
{
    uint32_t v;
    get(c, &v, sizeof(v));
    return v;
}

static const char *get_str(struct cursor *c, size_t *len)
{
    *len = get_u32(c);
    return take(c, *len);
}

struct header {
    uint8_t key[TG_SHA256_LEN];
    struct tg_intent_opts opts;
    uint64_t examples;
    uint32_t counts[3]; /* labels, features, weight columns */
};

/* The fixed part; NULL when it is fine, else what is wrong. */
static const char *read_header(struct cursor *c, struct header *h)
{
    uint32_t head[2];
    int32_t ng[3];
    const void *magic = take(c, 8);
    get(c, head, sizeof(head));
    get(c, h->key, sizeof(h->key));
    get(c, &h->opts.c, sizeof(h->opts.c));
    get(c, ng, sizeof(ng));
    get(c, &h->examples, sizeof(h->examples));
    get(c, h->counts, sizeof(h->counts));
    if (c->bad || memcmp(magic, MAGIC, 8) != 0 || head[0] != ORDER_MARK)
        return "not an intent model";
    if (head[1] != FORMAT_VERSION)
        return "another format version";
    h->opts.max_ngram = ng[0];
    h->opts.char_ngram_min = ng[1];
    h->opts.char_ngram_max = ng[2];
    struct tg_intent_opts r;
    char e2[160];
    if (tg_intent_resolve_opts(&h->opts, &r, e2, sizeof(e2)) || r.c != h->opts.c ||
        r.max_ngram != h->opts.max_ngram || r.char_ngram_min != h->opts.char_ngram_min ||
        r.char_ngram_max != h->opts.char_ngram_max)
        return "bad options";
    size_t nl = h->counts[0], nf = h->counts[1];
    if (nl < 2 || nl > MAX_LABELS || h->counts[2] != (nl == 2 ? 1 : nl) || nf >= INT32_MAX / 2 ||
        (nf + 1) * h->counts[2] * sizeof(float) > c->left)
        return "bad counts";
    return NULL;
}

/* Labels, then feature strings: TG_OK, TG_E_NOMEM, or c->bad set. */
static int read_strings(struct cursor *c, struct tg_intent_model *m)
{
    for (size_t i = 0; i < m->n_labels && !c->bad; i++) {
        size_t n;
        const char *s = get_str(c, &n);
        if (s && (n == 0 || memchr(s, '\0', n)))
            c->bad = true;
        if (c->bad)
            break;
        m->labels[i] = tg_strndup(s, n);
        if (!m->labels[i])
            return TG_E_NOMEM;
    }
    for (size_t i = 0; i < (size_t)m->lin.nr_feature && !c->bad; i++) {
        size_t n;
        uint32_t id;
        const char *s = get_str(c, &n);
        if (!s)
            break;
        if (tg_vocab_add(&m->vocab, s, n, &id))
            return TG_E_NOMEM;
        if (id != i)
            c->bad = true; /* a feature listed twice */
    }
    return TG_OK;
}

/* idf and weights, which must end the data exactly. */
static const char *read_numbers(struct cursor *c, struct tg_intent_model *m)
{
    size_t nf = m->vocab.n, nw = (nf + 1) * m->nr_w;
    get(c, m->idf, nf * sizeof(double));
    for (size_t i = 0; i < nf && !c->bad; i++)
        if (!isfinite(m->idf[i]) || m->idf[i] <= 0)
            return "bad idf";
    if (c->bad || c->left != nw * sizeof(float))
        return "wrong size";
    for (size_t i = 0; i < nw; i++) {
        float f;
        memcpy(&f, c->p + i * sizeof(f), sizeof(f));
        if (!isfinite(f))
            return "bad weights";
        m->lin.w[i] = f;
    }
    return NULL;
}

static int parse(const uint8_t *data, size_t len, struct tg_intent_model **out, char *err,
                 size_t errlen)
{
    struct cursor c = {data, len, false};
    struct header h;
    struct tg_intent_model *m = NULL;
    int rc = TG_E_PARSE;
    const char *what = read_header(&c, &h);
    if (what)
        goto out;
    m = tg_intent_model_new(h.counts[0], h.counts[1]);
    rc = m ? read_strings(&c, m) : TG_E_NOMEM;
    if (rc) {
        what = "out of memory";
        goto out;
    }
    rc = TG_E_PARSE;
    what = c.bad ? "bad labels or features" : read_numbers(&c, m);
    if (what)
        goto out;
    m->opts = h.opts;
    m->n_examples = (size_t)h.examples;
    memcpy(m->key, h.key, sizeof(h.key));
    *out = m;
    m = NULL;
    rc = TG_OK;
out:
    if (what)
        snprintf(err, errlen, "%s", what);
    tg_intent_free(m);
    return rc;
}

int tg_intent_load(const char *path, struct tg_intent_model **out, char *err, size_t errlen)
{
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    char e2[256];
    int rc = tg_model_read_file(path, &b, err, errlen);
    if (rc)
        goto out;
    uint8_t digest[TG_SHA256_LEN];
    if (b.len < 8 + TG_SHA256_LEN) {
        snprintf(err, errlen, "%s: not an intent model", path);
        rc = TG_E_PARSE;
        goto out;
    }
    size_t body = b.len - TG_SHA256_LEN;
    tg_sha256(b.data, body, digest);
    if (memcmp(digest, b.data + body, TG_SHA256_LEN) != 0) {
        snprintf(err, errlen, "%s: %s", path,
                 memcmp(b.data, MAGIC, 8) == 0 ? "corrupt (digest mismatch)"
                                               : "not an intent model");
        rc = TG_E_PARSE;
        goto out;
    }
    rc = parse((const uint8_t *)b.data, body, out, e2, sizeof(e2));
    if (rc)
        snprintf(err, errlen, "%s: %s", path, e2);
out:
    tg_buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------ cache */

/*
 * A digest of what the tokenizer makes of a fixed sample, so that a
 * change of normalization or tokenization invalidates cached models.
 */
static int tokenizer_print(struct tg_text *tx, uint8_t out[TG_SHA256_LEN])
{
    static const char sample[] = "Ｔｒｕｓｔ 我的理賠流程怎麼走？ Claims running 50,000元 "
                                 "カードが届きません";
    struct tg_buf norm, all;
    struct tg_tokens toks;
    tg_buf_init(&norm, TG_BUF_UNLIMITED);
    tg_buf_init(&all, TG_BUF_UNLIMITED);
    tg_tokens_init(&toks);
    int rc = tg_text_normalize(tx, sample, sizeof(sample) - 1, TG_NORM_T2S, &norm);
    if (!rc)
        rc = tg_text_tokenize(tx, norm.data, norm.len, TG_TOKEN_WORDS | TG_TOKEN_STEM, &toks);
    if (!rc)
        rc = tg_buf_append(&all, norm.data, norm.len + 1);
    for (size_t i = 0; i < toks.n && !rc; i++)
        rc = tg_buf_printf(&all, "%d:%.*s|", (int)toks.v[i].kind, (int)toks.v[i].len,
                           toks.v[i].text);
    if (!rc)
        tg_sha256(all.data, all.len, out);
    tg_tokens_free(&toks);
    tg_buf_free(&norm);
    tg_buf_free(&all);
    return rc;
}

static int cache_key(struct tg_text *tx, const struct tg_buf *tsv, const struct tg_intent_opts *o,
                     uint8_t key[TG_SHA256_LEN])
{
    uint8_t tok[TG_SHA256_LEN];
    char conf[160];
    int rc = tokenizer_print(tx, tok);
    if (rc)
        return rc;
    int n = snprintf(conf, sizeof(conf), "trustgate intent v%u C=%.17g n=%d c=%d-%d df=%d/%d",
                     FORMAT_VERSION, o->c, o->max_ngram, o->char_ngram_min, o->char_ngram_max,
                     TG_INTENT_MIN_DF, 1000);
    const void *parts[] = {conf, tok, tsv->data ? tsv->data : ""};
    size_t lens[] = {(size_t)n + 1, sizeof(tok), tsv->len};
    return tg_sha256_parts(parts, lens, 3, key) ? TG_OK : TG_E_NOMEM;
}

/* Every label of extra (TSV lines) must be one of ds's. */
static int check_extra_labels(const char *tsv_path, const struct tg_dataset *ds, size_t n_file,
                              char *err, size_t errlen)
{
    for (size_t i = n_file; i < ds->n; i++) {
        bool known = false;
        for (size_t j = 0; j < n_file && !known; j++)
            known = strcmp(ds->v[i].label, ds->v[j].label) == 0;
        if (!known) {
            snprintf(err, errlen,
                     "knowledge base: intent \"%s\" (of \"%s\") is not an intent of %s",
                     ds->v[i].label, ds->v[i].text, tsv_path);
            return TG_E_CONFIG;
        }
    }
    return TG_OK;
}

int tg_intent_load_or_train(struct tg_text *tx, const char *tsv_path, const char *cache_dir,
                            const struct tg_intent_opts *opts, struct tg_intent_model **out,
                            char *err, size_t errlen)
{
    return tg_intent_load_or_train_with(tx, tsv_path, NULL, 0, cache_dir, opts, out, err, errlen);
}

int tg_intent_load_or_train_with(struct tg_text *tx, const char *tsv_path, const char *extra,
                                 size_t extra_len, const char *cache_dir,
                                 const struct tg_intent_opts *opts, struct tg_intent_model **out,
                                 char *err, size_t errlen)
{
    struct tg_buf tsv, path;
    struct tg_dataset ds = {0};
    struct tg_intent_model *m = NULL;
    struct tg_intent_opts o;
    uint8_t key[TG_SHA256_LEN];
    char hex[2 * TG_SHA256_LEN + 1], e2[512];
    tg_buf_init(&tsv, TG_BUF_UNLIMITED);
    tg_buf_init(&path, TG_BUF_UNLIMITED);
    int rc = tg_intent_resolve_opts(opts, &o, err, errlen);
    if (!rc)
        rc = tg_model_read_file(tsv_path, &tsv, err, errlen);
    size_t file_len = tsv.len;
    if (!rc && extra_len)
        rc = tg_buf_puts(&tsv, "\n");
    if (!rc && extra_len)
        rc = tg_buf_append(&tsv, extra, extra_len);
    if (rc)
        goto out;
    if (cache_dir) {
        rc = cache_key(tx, &tsv, &o, key);
        tg_hex_encode(key, sizeof(key), hex);
        if (!rc)
            rc = tg_buf_printf(&path, "%s/intent-%.32s.model", cache_dir, hex);
        if (rc) {
            snprintf(err, errlen, "intent cache: %s", tg_err_str(rc));
            goto out;
        }
        int lrc = tg_intent_load(path.data, &m, e2, sizeof(e2));
        if (!lrc && memcmp(m->key, key, sizeof(key)) == 0) {
            m->from_cache = true;
            m->cache_path = tg_buf_steal(&path, NULL);
            goto publish;
        }
        if (!lrc)
            tg_warn("intent cache %s was made for other data; training again", path.data);
        else if (lrc != TG_E_IO)
            tg_warn("intent cache ignored, training again: %s", e2);
        tg_intent_free(m);
        m = NULL;
    }
    rc = tg_dataset_parse_tsv(tsv_path, tsv.data ? tsv.data : "", file_len, &ds, err, errlen);
    size_t n_file = ds.n;
    if (!rc && extra_len)
        rc = tg_dataset_parse_tsv("knowledge base", tsv.data + file_len, tsv.len - file_len, &ds,
                                  err, errlen);
    if (!rc)
        rc = check_extra_labels(tsv_path, &ds, n_file, err, errlen);
    if (!rc)
        rc = tg_intent_train(tx, &ds, &o, &m, err, errlen);
    if (rc)
        goto out;
    if (cache_dir) {
        memcpy(m->key, key, sizeof(key));
        if (tg_intent_save(m, path.data))
            tg_warn("intent cache %s: cannot write it; the model is not cached", path.data);
        else
            m->cache_path = tg_buf_steal(&path, NULL);
    }
publish:
    *out = m;
    m = NULL;
out:
    tg_intent_free(m);
    tg_dataset_free(&ds);
    tg_buf_free(&tsv);
    tg_buf_free(&path);
    return rc;
}
