/*
 * retrieval.c - how well the knowledge base finds the passage that answers
 * a question, against SQLite FTS5 over the same passages in the same run
 * (the baseline of `trustgate eval retrieval`).
 *
 * The passage pool and the queries are read from JSONL files as the
 * datasets ship them; the shape is told by each line:
 *   clause QA   {id, contract, passage, question, answer}: the pool is every
 *               distinct passage, a query's gold is its own passage;
 *   FAQ by pid  {pid, qa: [{question, answers}]}: one document per pid with
 *               all its questions and answers; queries {qid, query, gold_pid};
 *   articles    {id, title?, text} or FAQ pairs {id, question, answer};
 *               queries {query, gold} with gold a document id.
 * Each system ranks documents (our chunks are collapsed to their document,
 * best chunk first).  The baseline is an in-memory FTS5 table with
 * tokenize='trigram' ranked by bm25(); its MATCH expression is every
 * trigram of the query's letter runs (punctuation and spaces split runs),
 * each quoted and OR-ed, since a trigram index needs no word segmentation
 * and cannot match anything shorter.
 */
#include "eval/retrieval.h"

#include "backend/embed.h"

#include "text/text.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>



struct pool {
    char **id; /* the dataset's document id */
    char **text;
    size_t n, cap;
    json_t *by_key; /* id or passage text -> index */
    size_t bytes;
    char *err; /* where reading reports a problem */
    size_t errlen;
};

struct query {
    char *text;
    size_t gold; /* index into the pool, or SIZE_MAX when it is not there */
};

struct queries {
    struct query *v;
    size_t n, cap;
};



/* ------------------------------------------------------------ reading */

static int read_all(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct tg_buf b;
    char chunk[65536];
    size_t n;
    int rc = TG_OK;
    if (!f)
        return TG_E_IO;
    tg_buf_init(&b, (size_t)1 << 30);
    while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = tg_buf_append(&b, chunk, n);
    if (!rc)
        rc = tg_buf_append(&b, "", 0);
    fclose(f);
    if (rc) {
        tg_buf_free(&b);
        return rc;
    }
    *out = tg_buf_steal(&b, len);
    return TG_OK;
}

/* Call fn for every JSON object line of a file; stops at the first error. */
static int each_line(const char *path, int (*fn)(void *ctx, json_t *o, size_t line), void *ctx,
                     char *err, size_t errlen)
{
    char *data = NULL;
    size_t len = 0, line = 0;
    int rc = read_all(path, &data, &len);
    if (rc) {
        snprintf(err, errlen, "cannot read %s", path);
        return rc;
    }
    for (size_t ls = 0; ls < len && !rc;) {
        const char *nl = memchr(data + ls, '\n', len - ls);
        size_t le = nl ? (size_t)(nl - data) : len;
        size_t s = ls;
        line++;
        ls = nl ? le + 1 : len;
        while (s < le && isspace((unsigned char)data[s]))
            s++;
        if (s == le)
            continue;
        json_t *o = json_loadb(data + s, le - s, 0, NULL);
        if (!json_is_object(o)) {
            snprintf(err, errlen, "%s:%zu: not a JSON object", path, line);
            rc = TG_E_PARSE;
        } else {
            rc = fn(ctx, o, line);
        }
        json_decref(o);
    }
    tg_free(data);
    return rc;
}

static int pool_add(struct pool *p, const char *key, const char *id, const char *text)
{
    if (json_object_get(p->by_key, key))
        return TG_OK;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        char **a = tg_realloc(p->id, cap * sizeof(*a));
        if (!a)
            return TG_E_NOMEM;
        p->id = a;
        char **b = tg_realloc(p->text, cap * sizeof(*b));
        if (!b)
            return TG_E_NOMEM;
        p->text = b;
        p->cap = cap;
    }
    p->id[p->n] = tg_strdup(id);
    p->text[p->n] = tg_strdup(text);
    if (!p->id[p->n] || !p->text[p->n] ||
        tg_json_set(p->by_key, key, json_integer((json_int_t)p->n))) {
        tg_free(p->id[p->n]);
        tg_free(p->text[p->n]);
        return TG_E_NOMEM;
    }
    p->bytes += strlen(text);
    p->n++;
    return TG_OK;
}

static void id_of(const json_t *v, char *out, size_t n, size_t line)
{
    if (json_is_string(v))
        snprintf(out, n, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else
        snprintf(out, n, "line%zu", line);
}

static int pool_line(void *ctx, json_t *o, size_t line)
{
    struct pool *p = ctx;
    char id[256];
    const char *passage = tg_json_str(o, "passage", NULL);
    const json_t *qa = json_object_get(o, "qa");
    if (passage) {
        snprintf(id, sizeof(id), "p%zu", p->n);
        return pool_add(p, passage, id, passage);
    }
    if (json_is_array(qa)) {
        struct tg_buf b;
        size_t i, j;
        json_t *e, *a;
        int rc = TG_OK;
        id_of(json_object_get(o, "pid"), id, sizeof(id), line);
        tg_buf_init(&b, TG_BUF_UNLIMITED);
        json_array_foreach(qa, i, e)
        {
            rc = tg_buf_printf(&b, "%s\n", tg_json_str(e, "question", ""));
            json_array_foreach(json_object_get(e, "answers"), j, a)
            {
                if (!rc && json_is_string(a))
                    rc = tg_buf_printf(&b, "%s\n", json_string_value(a));
            }
            if (!rc && json_is_string(json_object_get(e, "answer")))
                rc = tg_buf_printf(&b, "%s\n", tg_json_str(e, "answer", ""));
        }
        if (!rc)
            rc = pool_add(p, id, id, b.data ? b.data : "");
        tg_buf_free(&b);
        return rc;
    }
    id_of(json_object_get(o, "id"), id, sizeof(id), line);
    const char *text = tg_json_str(o, "text", NULL);
    if (text) {
        const char *title = tg_json_str(o, "title", NULL);
        if (!title)
            return pool_add(p, id, id, text);
        struct tg_buf b;
        tg_buf_init(&b, TG_BUF_UNLIMITED);
        int rc = tg_buf_printf(&b, "%s\n%s", title, text);
        if (!rc)
            rc = pool_add(p, id, id, b.data);
        tg_buf_free(&b);
        return rc;
    }
    const char *q = tg_json_str(o, "question", NULL), *a = tg_json_str(o, "answer", NULL);
    if (q && a) {
        struct tg_buf b;
        tg_buf_init(&b, TG_BUF_UNLIMITED);
        int rc = tg_buf_printf(&b, "%s\n%s", q, a);
        if (!rc)
            rc = pool_add(p, id, id, b.data);
        tg_buf_free(&b);
        return rc;
    }
    snprintf(p->err, p->errlen,
             "line %zu of the pool has no passage, qa, text or question/answer", line);
    return TG_E_PARSE;
}

struct qctx {
    struct queries *q;
    struct pool *p;
    size_t missing;
    char *err;
    size_t errlen;
};

static int query_line(void *ctx, json_t *o, size_t line)
{
    struct qctx *c = ctx;
    const char *text = tg_json_str(o, "query", NULL);
    const json_t *gold = NULL;
    const char *passage = tg_json_str(o, "passage", NULL);
    char key[256];
    if (!text)
        text = tg_json_str(o, "question", NULL);
    if (!text) {
        snprintf(c->err, c->errlen, "query line %zu has no query or question", line);
        return TG_E_PARSE;
    }
    if (passage) {
        gold = json_object_get(c->p->by_key, passage);
    } else {
        const json_t *g = json_object_get(o, "gold_pid");
        if (!g)
            g = json_object_get(o, "gold");
        if (!g) {
            snprintf(c->err, c->errlen, "query line %zu has no gold", line);
            return TG_E_PARSE;
        }
        id_of(g, key, sizeof(key), line);
        gold = json_object_get(c->p->by_key, key);
    }
    if (!gold)
        c->missing++;
    if (tg_grow(&c->q->v, &c->q->cap, c->q->n, sizeof(*c->q->v), 256))
        return TG_E_NOMEM;
    char *t = tg_strdup(text);
    if (!t)
        return TG_E_NOMEM;
    c->q->v[c->q->n++] =
        (struct query){.text = t, .gold = gold ? (size_t)json_integer_value(gold) : SIZE_MAX};
    return TG_OK;
}

/* ------------------------------------------------------------ scoring */

static void score_rank(struct tg_retrieval_score *s, size_t rank, size_t k)
{
    /* rank is 1-based, 0 = not found */
    s->n++;
    if (rank == 1)
        s->p1++;
    if (rank && rank <= k) {
        s->hit++;
        s->mrr += 1.0 / (double)rank;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of n sorted values, in microseconds. */
static double pct_us(const int64_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (i < 1)
        i = 1;
    if (i > n)
        i = n;
    return (double)v[i - 1] / 1000.0;
}

static json_t *score_json(const struct tg_retrieval_score *s, size_t nlat, double mb)
{
    double n = s->n ? (double)s->n : 1.0;
    return json_pack("{s:f, s:f, s:f, s:I, s:{s:f, s:f}, s:{s:f, s:f}}", "p_at_1",
                     (double)s->p1 / n, "mrr_at_10", s->mrr / n, "recall_at_10", (double)s->hit / n,
                     "n", (json_int_t)s->n, "latency_us", "p50", pct_us(s->lat_ns, nlat, 50), "p99",
                     pct_us(s->lat_ns, nlat, 99), "build", "seconds", s->build_s, "mb_per_s",
                     s->build_s > 0 ? mb / s->build_s : 0.0);
}

/* ------------------------------------------------------------ trustgate */

/* The passages' vectors and every query's (qv[i], tg_malloc'd; NULL on failure). */
static int embed_all(const struct tg_retrieval_dense *dense, struct tg_kb *kb,
                     const struct queries *q, float **qv, size_t *dim, char *err, size_t errlen)
{
    int rc = tg_embed_kb(dense->embedder, kb, NULL, err, errlen);
    for (size_t i = 0; !rc && i < q->n; i++)
        rc = tg_embed_query(dense->embedder, q->v[i].text, &qv[i], dim, err, errlen);
    return rc;
}

static int run_kb(const struct tg_kb_opts *o, const struct tg_retrieval_dense *dense,
                  const struct pool *p, const struct queries *q, size_t k, int repeat,
                  struct tg_retrieval_score *s, char *err, size_t errlen)
{
    float **qv = NULL;
    size_t dim = 0;
    struct tg_text *tx = NULL;
    struct tg_kb *kb = NULL;
    struct tg_kb_result res;
    char id[32];
    int rc = tg_text_open(&tx, err, errlen);
    tg_kb_result_init(&res);
    if (rc)
        goto out;
    /* With --repeat the build is timed three times and the best kept. */
    for (int b = 0; b < (repeat > 1 ? 3 : 1) && !rc; b++) {
        tg_kb_close(kb);
        kb = NULL;
        rc = tg_kb_open(o, tx, NULL, &kb, err, errlen);
        if (rc)
            goto out;
        /* ICU loads its dictionaries on first use: not part of building. */
        rc = tg_kb_search(kb, "保险 insurance", strlen("保险 insurance"), 1, 0, &res);
        int64_t t0 = tg_clock_mono_ns();
        for (size_t i = 0; i < p->n && !rc; i++) {
            snprintf(id, sizeof(id), "%zu", i);
            rc = tg_kb_add_doc(kb, id, NULL, p->text[i], strlen(p->text[i]), NULL);
        }
        struct tg_kb_stats st;
        if (!rc)
            rc = tg_kb_stats(kb, &st);
        double secs = (double)(tg_clock_mono_ns() - t0) / 1e9;
        if (b == 0 || secs < s->build_s)
            s->build_s = secs;
    }
    if (!rc && dense) {
        qv = tg_calloc(q->n ? q->n : 1, sizeof(*qv));
        rc = qv ? embed_all(dense, kb, q, qv, &dim, err, errlen) : TG_E_NOMEM;
        if (rc)
            goto out;
    }
    for (int r = 0; r < repeat && !rc; r++) {
        for (size_t i = 0; i < q->n && !rc; i++) {
            int64_t a = tg_clock_mono_ns();
            struct tg_kb_dense dq = {.qvec = qv ? qv[i] : NULL,
                                     .dim = dim,
                                     .rrf_k = dense ? dense->rrf_k : 0,
                                     .min_cos = dense ? dense->min_cos : 0};
            rc = tg_kb_search_dense(kb, q->v[i].text, strlen(q->v[i].text), &dq, k,
                                    TG_KB_SEARCH_PER_DOC, &res);
            s->lat_ns[(size_t)r * q->n + i] = tg_clock_mono_ns() - a;
            if (r)
                continue;
            size_t rank = 0;
            for (size_t h = 0; h < res.n && !rank; h++) {
                struct tg_kb_chunk c;
                uint64_t d;
                if (tg_kb_chunk_get(kb, res.hits[h].chunk, &c) == TG_OK &&
                    tg_parse_u64(c.doc_id, &d) == TG_OK && d == q->v[i].gold)
                    rank = h + 1;
            }
            score_rank(s, rank, k);
        }
    }
    if (rc)
        snprintf(err, errlen, "search failed: %s", tg_err_str(rc));
out:
    for (size_t i = 0; qv && i < q->n; i++)
        tg_free(qv[i]);
    tg_free(qv);
    tg_kb_result_free(&res);
    tg_kb_close(kb);
    tg_text_close(tx);
    return rc;
}

/* ------------------------------------------------------------ FTS5 */
/* ------------------------------------------------------------ FTS5 */

static bool separator(uint32_t cp)
{
    if (cp < 0x80)
        return !isalnum((int)cp);
    return (cp >= 0x2000 && cp <= 0x206F) || (cp >= 0x3000 && cp <= 0x303F) ||
           (cp >= 0xFF00 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) ||
           (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65);
}

/* The character at s[i] (an invalid byte stands for itself). */
static size_t utf8_next(const char *s, size_t len, size_t i, uint32_t *cp)
{
    size_t n = tg_utf8_decode(s + i, len - i, cp);
    if (!n) {
        *cp = (unsigned char)s[i];
        n = 1;
    }
    return n;
}

static int put_quoted(struct tg_buf *b, const char *s)
{
    int rc = tg_buf_append(b, "\"", 1);
    for (; !rc && *s; s++)
        rc = *s == '"' ? tg_buf_append(b, "\"\"", 2) : tg_buf_append(b, s, 1);
    return rc ? rc : tg_buf_append(b, "\"", 1);
}

/* "abc" OR "bcd" ... over every run of at least three letters. */
static int fts_match(const char *q, struct tg_buf *out)
{
    size_t len = strlen(q), starts[4096], n = 0;
    int rc = TG_OK;
    json_t *seen = json_object();
    if (!seen)
        return TG_E_NOMEM;
    tg_buf_reset(out);
    for (size_t i = 0; i <= len && !rc;) {
        uint32_t cp = ' ';
        size_t adv = i < len ? utf8_next(q, len, i, &cp) : 1;
        if (i < len && !separator(cp) && n < TG_ARRAY_LEN(starts) - 1) {
            starts[n++] = i;
            i += adv;
            continue;
        }
        starts[n] = i;
        for (size_t t = 0; n >= 3 && t + 3 <= n && !rc; t++) {
            char tri[64];
            size_t tl = starts[t + 3] - starts[t];
            if (tl >= sizeof(tri))
                continue;
            memcpy(tri, q + starts[t], tl);
            tri[tl] = '\0';
            if (json_object_get(seen, tri))
                continue;
            rc = tg_json_set(seen, tri, json_true());
            if (!rc && out->len)
                rc = tg_buf_puts(out, " OR ");
            if (!rc)
                rc = put_quoted(out, tri);
        }
        n = 0;
        i += adv;
    }
    json_decref(seen);
    return rc;
}

static int run_fts(const struct pool *p, const struct queries *q, size_t k, int repeat,
                   struct tg_retrieval_score *s, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL, *sel = NULL;
    struct tg_buf m;
    int rc = TG_E_DB;
    tg_buf_init(&m, TG_BUF_UNLIMITED);
    for (int b = 0; b < (repeat > 1 ? 3 : 1); b++) {
        sqlite3_finalize(ins);
        ins = NULL;
        sqlite3_close(db);
        db = NULL;
        if (sqlite3_open(":memory:", &db) != SQLITE_OK)
            goto out;
        int64_t t0 = tg_clock_mono_ns();
        if (sqlite3_exec(db,
                         "CREATE VIRTUAL TABLE docs USING fts5(body, tokenize='trigram');"
                         "BEGIN;",
                         NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(db, "INSERT INTO docs(rowid, body) VALUES (?1, ?2)", -1, &ins,
                               NULL) != SQLITE_OK)
            goto out;
        for (size_t i = 0; i < p->n; i++) {
            sqlite3_bind_int64(ins, 1, (sqlite3_int64)i + 1);
            sqlite3_bind_text(ins, 2, p->text[i], -1, SQLITE_STATIC);
            if (sqlite3_step(ins) != SQLITE_DONE)
                goto out;
            sqlite3_reset(ins);
        }
        if (sqlite3_exec(db, "COMMIT;", NULL, NULL, NULL) != SQLITE_OK)
            goto out;
        double secs = (double)(tg_clock_mono_ns() - t0) / 1e9;
        if (b == 0 || secs < s->build_s)
            s->build_s = secs;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT rowid FROM docs WHERE docs MATCH ?1 ORDER BY bm25(docs) "
                           "LIMIT ?2",
                           -1, &sel, NULL) != SQLITE_OK)
        goto out;
    for (int r = 0; r < repeat; r++) {
        for (size_t i = 0; i < q->n; i++) {
            int64_t a = tg_clock_mono_ns();
            size_t rank = 0, pos = 0;
            if (fts_match(q->v[i].text, &m))
                goto out;
            if (m.len) {
                sqlite3_bind_text(sel, 1, m.data, (int)m.len, SQLITE_STATIC);
                sqlite3_bind_int64(sel, 2, (sqlite3_int64)k);
                int st;
                while ((st = sqlite3_step(sel)) == SQLITE_ROW) {
                    pos++;
                    if (!rank && (size_t)sqlite3_column_int64(sel, 0) == q->v[i].gold + 1)
                        rank = pos;
                }
                sqlite3_reset(sel);
                if (st != SQLITE_DONE)
                    goto out;
            }
            s->lat_ns[(size_t)r * q->n + i] = tg_clock_mono_ns() - a;
            if (!r)
                score_rank(s, rank, k);
        }
    }
    rc = TG_OK;
out:
    if (rc)
        snprintf(err, errlen, "FTS5: %s", db ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_finalize(ins);
    sqlite3_finalize(sel);
    sqlite3_close(db);
    tg_buf_free(&m);
    return rc;
}

/* ------------------------------------------------------------ command */


/* ------------------------------------------------------------ the set */

struct tg_retrieval_set {
    struct pool p;
    struct queries q;
    size_t missing;
};

void tg_retrieval_free(struct tg_retrieval_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->p.n; i++) {
        tg_free(s->p.id[i]);
        tg_free(s->p.text[i]);
    }
    tg_free(s->p.id);
    tg_free(s->p.text);
    json_decref(s->p.by_key);
    for (size_t i = 0; i < s->q.n; i++)
        tg_free(s->q.v[i].text);
    tg_free(s->q.v);
    tg_free(s);
}

int tg_retrieval_load(const char *pool_path, const char *queries_path,
                      struct tg_retrieval_set **out, char *err, size_t errlen)
{
    struct tg_retrieval_set *s = tg_calloc(1, sizeof(*s));
    int rc = s ? TG_OK : TG_E_NOMEM;
    if (!rc) {
        s->p.by_key = json_object();
        s->p.err = err;
        s->p.errlen = errlen;
        rc = s->p.by_key ? TG_OK : TG_E_NOMEM;
    }
    struct qctx qc = {.q = s ? &s->q : NULL, .p = s ? &s->p : NULL, .err = err, .errlen = errlen};
    if (!rc)
        rc = each_line(pool_path, pool_line, &s->p, err, errlen);
    if (!rc)
        rc = each_line(queries_path, query_line, &qc, err, errlen);
    if (!rc && (!s->p.n || !s->q.n)) {
        snprintf(err, errlen, "no %s", s->p.n ? "queries" : "documents");
        rc = TG_E_INVAL;
    }
    if (rc) {
        if (rc == TG_E_NOMEM && errlen && !err[0])
            snprintf(err, errlen, "%s", tg_err_str(rc));
        tg_retrieval_free(s);
        return rc;
    }
    s->missing = qc.missing;
    s->p.err = NULL;
    s->p.errlen = 0;
    *out = s;
    return TG_OK;
}

size_t tg_retrieval_documents(const struct tg_retrieval_set *s)
{
    return s->p.n;
}

size_t tg_retrieval_queries(const struct tg_retrieval_set *s)
{
    return s->q.n;
}

size_t tg_retrieval_missing(const struct tg_retrieval_set *s)
{
    return s->missing;
}

double tg_retrieval_mb(const struct tg_retrieval_set *s)
{
    return (double)s->p.bytes / 1e6;
}

/* Latency room for every query of every repetition. */
static int score_init(const struct tg_retrieval_set *s, int repeat, struct tg_retrieval_score *out)
{
    memset(out, 0, sizeof(*out));
    out->n_lat = s->q.n * (size_t)repeat;
    out->lat_ns = tg_calloc(out->n_lat ? out->n_lat : 1, sizeof(int64_t));
    return out->lat_ns ? TG_OK : TG_E_NOMEM;
}

int tg_retrieval_run_kb(const struct tg_retrieval_set *s, const struct tg_kb_opts *o,
                        const struct tg_retrieval_dense *dense, size_t k, int repeat,
                        struct tg_retrieval_score *out, char *err, size_t errlen)
{
    int rc = score_init(s, repeat, out);
    if (!rc)
        rc = run_kb(o, dense, &s->p, &s->q, k, repeat, out, err, errlen);
    if (!rc)
        qsort(out->lat_ns, out->n_lat, sizeof(int64_t), cmp_i64);
    return rc;
}

int tg_retrieval_run_fts5(const struct tg_retrieval_set *s, size_t k, int repeat,
                          struct tg_retrieval_score *out, char *err, size_t errlen)
{
    int rc = score_init(s, repeat, out);
    if (!rc)
        rc = run_fts(&s->p, &s->q, k, repeat, out, err, errlen);
    if (!rc)
        qsort(out->lat_ns, out->n_lat, sizeof(int64_t), cmp_i64);
    return rc;
}

void tg_retrieval_score_free(struct tg_retrieval_score *sc)
{
    tg_free(sc->lat_ns);
    sc->lat_ns = NULL;
}

json_t *tg_retrieval_score_json(const struct tg_retrieval_score *sc, double mb)
{
    return score_json(sc, sc->n_lat, mb);
}

double tg_retrieval_latency_us(const struct tg_retrieval_score *sc, double pct)
{
    return pct_us(sc->lat_ns, sc->n_lat, pct);
}
