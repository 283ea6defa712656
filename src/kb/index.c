/*
 * index.c - the term dictionary, the inverted index and BM25 search.
 *
 * The key field's match (rank.c) is added before chunks are collapsed to
 * their documents and the best k kept.
 *
 * Terms live in one string pool with an open-addressing table over their
 * hashes; a term's key is a class byte ('w' for words and numbers, 'b' for
 * CJK bigrams and lone characters) followed by its text, so a two-character
 * word and the same bigram count as two terms when both token kinds are on.
 * Each chunk keeps its sorted (term, count) vector; building the index
 * counts document frequencies, lays out every posting list in one array
 * by prefix sums and fills them in chunk order, so lists come out sorted
 * without a per-posting allocation.  Search accumulates scores
 * term-at-a-time into a per-chunk array stamped per query (no clearing)
 * and keeps the best k in a small heap.
 */
#include "kb/kb_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ dictionary */

uint32_t kb_hash(const void *p, size_t n)
{
    return tg_fnv1a32(p, n);
}

void kb_terms_free(struct kb_terms *t)
{
    tg_free(t->pool);
    tg_free(t->off);
    tg_free(t->len);
    tg_free(t->hash);
    tg_free(t->slots);
    memset(t, 0, sizeof(*t));
}

static int terms_rehash(struct kb_terms *t, size_t nslots)
{
    uint32_t *slots = tg_calloc(nslots, sizeof(*slots));
    if (!slots)
        return TG_E_NOMEM;
    for (size_t id = 0; id < t->n; id++) {
        size_t i = t->hash[id] & (nslots - 1);
        while (slots[i])
            i = (i + 1) & (nslots - 1);
        slots[i] = (uint32_t)id + 1;
    }
    tg_free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return TG_OK;
}

uint32_t kb_terms_find(const struct kb_terms *t, const char *key, size_t len)
{
    if (!t->nslots)
        return KB_NONE;
    uint32_t h = kb_hash(key, len);
    size_t i = h & (t->nslots - 1);
    while (t->slots[i]) {
        uint32_t id = t->slots[i] - 1;
        if (t->hash[id] == h && t->len[id] == len && memcmp(t->pool + t->off[id], key, len) == 0)
            return id;
        i = (i + 1) & (t->nslots - 1);
    }
    return KB_NONE;
}

int kb_terms_intern(struct kb_terms *t, const char *key, size_t len, uint32_t *id)
{
    uint32_t found = kb_terms_find(t, key, len);
    if (found != KB_NONE) {
        *id = found;
        return TG_OK;
    }
    if (t->n >= UINT32_MAX - 1 || len >= UINT32_MAX)
        return TG_E_TOOBIG;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        uint32_t *off = tg_realloc(t->off, cap * sizeof(*off));
        if (!off)
            return TG_E_NOMEM;
        t->off = off;
        uint32_t *ln = tg_realloc(t->len, cap * sizeof(*ln));
        if (!ln)
            return TG_E_NOMEM;
        t->len = ln;
        uint32_t *hs = tg_realloc(t->hash, cap * sizeof(*hs));
        if (!hs)
            return TG_E_NOMEM;
        t->hash = hs;
        t->cap = cap;
    }
    if (t->pool_len + len + 1 > t->pool_cap) {
        size_t cap = t->pool_cap ? t->pool_cap * 2 : 16384;
        while (cap < t->pool_len + len + 1)
            cap *= 2;
        if (cap > UINT32_MAX)
            return TG_E_TOOBIG;
        char *pool = tg_realloc(t->pool, cap);
        if (!pool)
            return TG_E_NOMEM;
        t->pool = pool;
        t->pool_cap = cap;
    }
    if ((t->n + 1) * 2 > t->nslots) {
        /* Grow before inserting so the new term lands in the new table. */
        t->hash[t->n] = 0;
        int rc = terms_rehash(t, t->nslots ? t->nslots * 2 : 2048);
        if (rc)
            return rc;
    }
    uint32_t nid = (uint32_t)t->n;
    memcpy(t->pool + t->pool_len, key, len);
    t->pool[t->pool_len + len] = '\0';
    t->off[nid] = (uint32_t)t->pool_len;
    t->len[nid] = (uint32_t)len;
    t->hash[nid] = kb_hash(key, len);
    t->pool_len += len + 1;
    t->n++;
    size_t i = t->hash[nid] & (t->nslots - 1);
    while (t->slots[i])
        i = (i + 1) & (t->nslots - 1);
    t->slots[i] = nid + 1;
    *id = nid;
    return TG_OK;
}

static int push_id(struct tg_kb *kb, uint32_t id)
{
    if (tg_grow(&kb->ids, &kb->capids, kb->nids, sizeof(*kb->ids), 256))
        return TG_E_NOMEM;
    kb->ids[kb->nids++] = id;
    return TG_OK;
}

int kb_token_ids(struct tg_kb *kb, const struct tg_tokens *toks, bool intern)
{
    int rc = TG_OK;
    for (size_t i = 0; i < toks->n && !rc; i++) {
        const struct tg_token *tk = &toks->v[i];
        bool bigram = tk->kind == TG_TOK_CJK_BIGRAM || tk->kind == TG_TOK_CJK_CHAR;
        tg_buf_reset(&kb->kbuf);
        rc = tg_buf_append(&kb->kbuf, bigram ? "b" : "w", 1);
        if (!rc)
            rc = tg_buf_append(&kb->kbuf, tk->text, tk->len);
        if (rc)
            break;
        uint32_t id;
        if (intern) {
            rc = kb_terms_intern(&kb->terms, kb->kbuf.data, kb->kbuf.len, &id);
            if (!rc)
                rc = push_id(kb, id);
        } else {
            id = kb_terms_find(&kb->terms, kb->kbuf.data, kb->kbuf.len);
            if (id != KB_NONE)
                rc = push_id(kb, id);
        }
    }
    return rc;
}

/* ------------------------------------------------------------ building */

void kb_index_free(struct tg_kb *kb)
{
    tg_free(kb->post_start);
    tg_free(kb->post_chunk);
    tg_free(kb->post_tf);
    tg_free(kb->idf);
    tg_free(kb->norm);
    tg_free(kb->acc);
    tg_free(kb->mark);
    tg_free(kb->touched);
    tg_free(kb->docmark);
    tg_free(kb->docslot);
    kb->post_start = kb->post_chunk = kb->post_tf = kb->mark = kb->touched = NULL;
    kb->docmark = kb->docslot = NULL;
    kb->ix_docs = 0;
    kb->idf = kb->norm = kb->acc = NULL;
    kb_keys_free(kb);
    kb->npost = kb->ix_chunks = kb->ix_terms = 0;
    kb->stamp = 0;
}

/* Drop terms no live chunk uses, keeping the order of the others. */
static int prune_terms(struct tg_kb *kb, const uint32_t *df)
{
    size_t live = 0;
    for (size_t t = 0; t < kb->terms.n; t++)
        live += df[t] != 0;
    if (live == kb->terms.n)
        return TG_OK;
    struct kb_terms nt = {0};
    uint32_t *map = tg_malloc((kb->terms.n ? kb->terms.n : 1) * sizeof(*map));
    int rc = map ? TG_OK : TG_E_NOMEM;
    for (size_t t = 0; t < kb->terms.n && !rc; t++) {
        map[t] = KB_NONE;
        if (df[t])
            rc = kb_terms_intern(&nt, kb->terms.pool + kb->terms.off[t], kb->terms.len[t], &map[t]);
    }
    if (rc) {
        kb_terms_free(&nt);
        tg_free(map);
        return rc;
    }
    for (size_t c = 0; c < kb->nchunks; c++) {
        struct kb_chunk *ch = &kb->chunks[c];
        for (uint32_t j = 0; j < ch->nterm; j++)
            ch->fwd[j] = map[ch->fwd[j]];
    }
    kb_terms_free(&kb->terms);
    kb->terms = nt;
    tg_free(map);
    return TG_OK;
}

/* Norms, idf and search scratch for the postings in place. */
int kb_index_finish(struct tg_kb *kb)
{
    size_t nc = kb->ix_chunks, nt = kb->ix_terms;
    uint64_t total = 0;
    kb_keys_free(kb);
    tg_free(kb->idf);
    tg_free(kb->norm);
    tg_free(kb->acc);
    tg_free(kb->mark);
    tg_free(kb->touched);
    tg_free(kb->docmark);
    tg_free(kb->docslot);
    kb->ix_docs = kb->ndocs;
    kb->docmark = tg_calloc(kb->ndocs ? kb->ndocs : 1, sizeof(uint32_t));
    kb->docslot = tg_malloc((kb->ndocs ? kb->ndocs : 1) * sizeof(uint32_t));
    kb->idf = tg_malloc((nt ? nt : 1) * sizeof(double));
    kb->norm = tg_malloc((nc ? nc : 1) * sizeof(double));
    kb->acc = tg_malloc((nc ? nc : 1) * sizeof(double));
    kb->mark = tg_calloc(nc ? nc : 1, sizeof(uint32_t));
    kb->touched = tg_malloc((nc ? nc : 1) * sizeof(uint32_t));
    kb->stamp = 0;
    if (!kb->idf || !kb->norm || !kb->acc || !kb->mark || !kb->touched || !kb->docmark ||
        !kb->docslot)
        return TG_E_NOMEM;
    for (size_t c = 0; c < nc; c++)
        total += kb->chunks[c].ntok;
    kb->avgdl = nc && total ? (double)total / (double)nc : 1.0;
    double k1 = kb->opts.k1, b = kb->opts.b;
    for (size_t c = 0; c < nc; c++)
        kb->norm[c] = k1 * (1.0 - b + b * (double)kb->chunks[c].ntok / kb->avgdl);
    for (size_t t = 0; t < nt; t++) {
        double n = (double)(kb->post_start[t + 1] - kb->post_start[t]);
        kb->idf[t] = log(1.0 + ((double)nc - n + 0.5) / (n + 0.5));
    }
    return TG_OK;
}

int kb_index_build(struct tg_kb *kb)
{
    uint32_t *df = NULL;
    int rc;
    if (!kb->ix_dirty)
        return TG_OK;
    rc = kb_compact(kb);
    if (rc)
        return rc;
    df = tg_calloc(kb->terms.n ? kb->terms.n : 1, sizeof(*df));
    if (!df)
        return TG_E_NOMEM;
    for (size_t c = 0; c < kb->nchunks; c++) {
        const struct kb_chunk *ch = &kb->chunks[c];
        for (uint32_t j = 0; j < ch->nterm; j++)
            df[ch->fwd[j]]++;
    }
    rc = prune_terms(kb, df);
    if (rc)
        goto out;
    kb_index_free(kb);
    size_t nt = kb->terms.n;
    uint64_t np = 0;
    kb->post_start = tg_malloc((nt + 1) * sizeof(uint32_t));
    if (!kb->post_start) {
        rc = TG_E_NOMEM;
        goto out;
    }
    for (size_t t = 0, j = 0; t < nt; t++) {
        /* After pruning, ids are the surviving old ids in order. */
        while (df[j] == 0)
            j++;
        kb->post_start[t] = (uint32_t)np;
        np += df[j++];
    }
    kb->post_start[nt] = (uint32_t)np;
    if (np >= UINT32_MAX) {
        rc = TG_E_TOOBIG;
        goto out;
    }
    kb->post_chunk = tg_malloc((np ? np : 1) * sizeof(uint32_t));
    kb->post_tf = tg_malloc((np ? np : 1) * sizeof(uint32_t));
    if (!kb->post_chunk || !kb->post_tf) {
        rc = TG_E_NOMEM;
        goto out;
    }
    /* df becomes each list's fill position. */
    for (size_t t = 0; t < nt; t++)
        df[t] = kb->post_start[t];
    for (size_t c = 0; c < kb->nchunks; c++) {
        const struct kb_chunk *ch = &kb->chunks[c];
        for (uint32_t j = 0; j < ch->nterm; j++) {
            uint32_t pos = df[ch->fwd[j]]++;
            kb->post_chunk[pos] = (uint32_t)c;
            kb->post_tf[pos] = ch->fwd[ch->nterm + j];
        }
    }
    kb->npost = np;
    kb->ix_chunks = kb->nchunks;
    kb->ix_terms = nt;
    rc = kb_index_finish(kb);
    if (!rc) {
        kb->ix_dirty = false;
        kb->ix_unsaved = true;
    }
out:
    tg_free(df);
    if (rc)
        kb_index_free(kb);
    return rc;
}

int kb_index_transpose(struct tg_kb *kb)
{
    size_t nc = kb->ix_chunks;
    uint32_t *fill = tg_calloc(nc ? nc : 1, sizeof(*fill));
    int rc = fill ? TG_OK : TG_E_NOMEM;
    for (size_t p = 0; p < kb->npost && !rc; p++)
        fill[kb->post_chunk[p]]++;
    for (size_t c = 0; c < nc && !rc; c++) {
        struct kb_chunk *ch = &kb->chunks[c];
        tg_free(ch->fwd);
        ch->nterm = fill[c];
        ch->fwd = tg_malloc((fill[c] ? fill[c] * 2 : 1) * sizeof(uint32_t));
        if (!ch->fwd)
            rc = TG_E_NOMEM;
        fill[c] = 0;
    }
    for (size_t t = 0; t < kb->ix_terms && !rc; t++) {
        for (uint32_t p = kb->post_start[t]; p < kb->post_start[t + 1]; p++) {
            struct kb_chunk *ch = &kb->chunks[kb->post_chunk[p]];
            uint32_t j = fill[kb->post_chunk[p]]++;
            ch->fwd[j] = (uint32_t)t;
            ch->fwd[ch->nterm + j] = kb->post_tf[p];
        }
    }
    tg_free(fill);
    if (!rc)
        kb->have_fwd = true;
    return rc;
}

/* ------------------------------------------------------------ search */

void tg_kb_result_init(struct tg_kb_result *r)
{
    memset(r, 0, sizeof(*r));
}

void tg_kb_result_free(struct tg_kb_result *r)
{
    if (!r)
        return;
    tg_free(r->hits);
    tg_free(r->glossary);
    memset(r, 0, sizeof(*r));
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static bool better(const struct tg_kb_hit *a, const struct tg_kb_hit *b)
{
    return a->score > b->score || (a->score == b->score && a->chunk < b->chunk);
}

static int cmp_hits(const void *a, const void *b)
{
    const struct tg_kb_hit *x = a, *y = b;
    return better(x, y) ? -1 : better(y, x) ? 1 : 0;
}

/* Keep the best k of a stream in a min-heap whose root is the worst kept. */
static void heap_offer(struct tg_kb_hit *h, size_t *n, size_t k, struct tg_kb_hit x)
{
    size_t i;
    if (*n < k) {
        i = (*n)++;
        while (i > 0 && better(&h[(i - 1) / 2], &x)) {
            h[i] = h[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        h[i] = x;
        return;
    }
    if (!better(&x, &h[0]))
        return;
    i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = l;
        if (l >= *n)
            break;
        if (r < *n && better(&h[l], &h[r]))
            w = r;
        if (!better(&x, &h[w]))
            break;
        h[i] = h[w];
        i = w;
    }
    h[i] = x;
}

/* Keep the query's own distinct term ids (kb->ids now) in kb->qids. */
static int keep_query_ids(struct tg_kb *kb)
{
    if (kb->nids > kb->capqids) {
        uint32_t *v = tg_realloc(kb->qids, kb->nids * sizeof(*v));
        if (!v)
            return TG_E_NOMEM;
        kb->qids = v;
        kb->capqids = kb->nids;
    }
    size_t w = 0;
    kb->nqids = 0;
    if (!kb->nids)
        return TG_OK;
    memcpy(kb->qids, kb->ids, kb->nids * sizeof(uint32_t));
    qsort(kb->qids, kb->nids, sizeof(uint32_t), cmp_u32);
    for (size_t i = 0; i < kb->nids; i++)
        if (!w || kb->qids[i] != kb->qids[w - 1])
            kb->qids[w++] = kb->qids[i];
    kb->nqids = w;
    return TG_OK;
}

int tg_kb_search(struct tg_kb *kb, const char *query, size_t len, size_t k, unsigned flags,
                 struct tg_kb_result *res)
{
    int rc;
    size_t m = 0;
    res->n = 0;
    res->n_glossary = 0;
    rc = kb_index_build(kb);
    if (!rc)
        rc = kb_keys_build(kb);
    if (rc || k == 0)
        goto out;
    /* The normalized query stays in kb->nbuf: the glossary looks for its
     * terms there. */
    if (flags & TG_KB_SEARCH_NORMALIZED) {
        tg_buf_reset(&kb->nbuf);
        rc = tg_buf_append(&kb->nbuf, query, len);
    } else {
        rc = kb_normalize(kb, query, len);
    }
    if (!rc) {
        tg_tokens_reset(&kb->toks);
        rc = tg_text_tokenize(kb->tx, kb->nbuf.data, kb->nbuf.len, kb->opts.token_flags, &kb->toks);
    }
    kb->nids = 0;
    if (!rc)
        rc = kb_token_ids(kb, &kb->toks, false);
    if (!rc)
        rc = keep_query_ids(kb);
    if (!rc && !(flags & TG_KB_SEARCH_NO_GLOSSARY))
        rc = kb_gloss_expand(kb, res, flags);
    if (rc || kb->nids == 0 || kb->ix_chunks == 0)
        goto out;
    qsort(kb->ids, kb->nids, sizeof(uint32_t), cmp_u32);
    if (++kb->stamp == 0) {
        memset(kb->mark, 0, kb->ix_chunks * sizeof(uint32_t));
        memset(kb->docmark, 0, kb->ix_docs * sizeof(uint32_t));
        kb->stamp = 1;
    }
    const double k1p1 = kb->opts.k1 + 1.0;
    for (size_t i = 0; i < kb->nids; i++) {
        uint32_t t = kb->ids[i];
        if (i && t == kb->ids[i - 1])
            continue;
        double idf = kb->idf[t];
        for (uint32_t p = kb->post_start[t]; p < kb->post_start[t + 1]; p++) {
            uint32_t c = kb->post_chunk[p];
            double f = (double)kb->post_tf[p];
            if (kb->mark[c] != kb->stamp) {
                kb->mark[c] = kb->stamp;
                kb->acc[c] = 0.0;
                kb->touched[m++] = c;
            }
            kb->acc[c] += idf * f * k1p1 / (f + kb->norm[c]);
        }
    }
    kb_keys_score(kb, kb->qids, kb->nqids, kb->ids, kb->nids, m);
    if (flags & TG_KB_SEARCH_PER_DOC) {
        /* Keep each document's best chunk, compacting touched[] in place. */
        size_t w = 0;
        for (size_t i = 0; i < m; i++) {
            uint32_t c = kb->touched[i], d = kb->chunks[c].doc;
            if (kb->docmark[d] != kb->stamp) {
                kb->docmark[d] = kb->stamp;
                kb->docslot[d] = (uint32_t)w;
                kb->touched[w++] = c;
            } else {
                uint32_t o = kb->touched[kb->docslot[d]];
                struct tg_kb_hit x = {.chunk = c, .score = kb->acc[c]}, y = {.chunk = o, .score = kb->acc[o]};
                if (better(&x, &y))
                    kb->touched[kb->docslot[d]] = c;
            }
        }
        m = w;
    }
    if (k > m)
        k = m;
    if (k > res->cap) {
        struct tg_kb_hit *v = tg_realloc(res->hits, k * sizeof(*v));
        if (!v) {
            rc = TG_E_NOMEM;
            goto out;
        }
        res->hits = v;
        res->cap = k;
    }
    size_t n = 0;
    for (size_t i = 0; i < m; i++) {
        uint32_t c = kb->touched[i];
        heap_offer(res->hits, &n, k,
                   (struct tg_kb_hit){.chunk = c, .score = kb->acc[c], .match = kb->key_dot[c]});
    }
    qsort(res->hits, n, sizeof(*res->hits), cmp_hits);
    res->n = n;
out:
    if (rc)
        res->n = 0;
    return rc;
}
