/*
 * vectors.c - dense vectors beside the inverted index, and the search that
 * fuses the two rankings (kb.h: tg_kb_search_dense).
 *
 * Vectors are content-addressed (kb_int.h: struct kb_vecs): the key is the
 * SHA-256 of the passage text the vector was made from.  Chunks find their
 * vector through a per-chunk map rebuilt after the chunks change, so
 * documents can be replaced, renumbered or reloaded without the vectors
 * following them by hand; vectors no live chunk uses are not saved.  The
 * dense search is exhaustive (a dot product per passage): at the sizes of
 * a company's knowledge base (thousands to a few hundred thousand
 * passages) that is a few milliseconds at most, and exact.
 */
#include "kb/kb_int.h"

#include <string.h>

#define FUSE_DEPTH 50   /* passages each ranking contributes to the fusion */
#define DEFAULT_RRF_K 60.0

void kb_vecs_free(struct kb_vecs *v)
{
    tg_free(v->model);
    tg_free(v->keys);
    tg_free(v->data);
    tg_free(v->slots);
    tg_free(v->of);
    memset(v, 0, sizeof(*v));
}

static uint32_t key_hash(const uint8_t *key)
{
    return (uint32_t)key[0] | (uint32_t)key[1] << 8 | (uint32_t)key[2] << 16 |
           (uint32_t)key[3] << 24;
}

/* The entry with key, or KB_NONE. */
static uint32_t vec_find(const struct kb_vecs *v, const uint8_t *key)
{
    if (!v->nslots)
        return KB_NONE;
    for (size_t i = key_hash(key) & (v->nslots - 1);; i = (i + 1) & (v->nslots - 1)) {
        uint32_t s = v->slots[i];
        if (!s)
            return KB_NONE;
        if (memcmp(v->keys + (size_t)(s - 1) * KB_VEC_KEY, key, KB_VEC_KEY) == 0)
            return s - 1;
    }
}

static int rehash(struct kb_vecs *v, size_t nslots)
{
    uint32_t *slots = tg_calloc(nslots, sizeof(*slots));
    if (!slots)
        return TG_E_NOMEM;
    for (size_t e = 0; e < v->n; e++) {
        size_t i = key_hash(v->keys + e * KB_VEC_KEY) & (nslots - 1);
        while (slots[i])
            i = (i + 1) & (nslots - 1);
        slots[i] = (uint32_t)e + 1;
    }
    tg_free(v->slots);
    v->slots = slots;
    v->nslots = nslots;
    return TG_OK;
}

int kb_vec_add(struct tg_kb *kb, const uint8_t key[KB_VEC_KEY], const float *x, size_t dim)
{
    struct kb_vecs *v = &kb->vec;
    if (!v->model || dim == 0 || dim > UINT32_MAX || (v->n && dim != v->dim))
        return TG_E_INVAL;
    uint32_t e = vec_find(v, key);
    if (e == KB_NONE) {
        if (v->n == v->cap) {
            size_t cap = v->cap ? 2 * v->cap : 64;
            uint8_t *keys = tg_realloc(v->keys, cap * KB_VEC_KEY);
            if (keys)
                v->keys = keys;
            float *data = keys ? tg_realloc(v->data, cap * dim * sizeof(float)) : NULL;
            if (!data)
                return TG_E_NOMEM;
            v->data = data;
            v->cap = cap;
        }
        if ((v->n + 1) * 2 > v->nslots && rehash(v, v->nslots ? 2 * v->nslots : 128))
            return TG_E_NOMEM;
        e = (uint32_t)v->n++;
        memcpy(v->keys + (size_t)e * KB_VEC_KEY, key, KB_VEC_KEY);
        size_t i = key_hash(key) & (v->nslots - 1);
        while (v->slots[i])
            i = (i + 1) & (v->nslots - 1);
        v->slots[i] = e + 1;
    }
    v->dim = (uint32_t)dim;
    float *row = v->data + (size_t)e * dim;
    memcpy(row, x, dim * sizeof(float));
    if (!tg_unit_vector(row, dim)) {
        memset(row, 0, dim * sizeof(float)); /* never matches: a zero row scores 0 */
        return TG_E_INVAL;
    }
    v->unsaved = true;
    return TG_OK;
}

int tg_kb_passage_text(struct tg_kb *kb, uint32_t chunk, struct tg_buf *out)
{
    struct tg_kb_chunk c;
    int rc = tg_kb_chunk_get(kb, chunk, &c);
    if (!rc)
        rc = tg_buf_printf(out, "%s\n%s\n%s", c.title, c.heading, c.text);
    return rc;
}

static int chunk_key(struct tg_kb *kb, uint32_t chunk, uint8_t key[KB_VEC_KEY])
{
    uint8_t sha[TG_SHA256_LEN];
    tg_buf_reset(&kb->kbuf);
    int rc = tg_kb_passage_text(kb, chunk, &kb->kbuf);
    if (!rc) {
        tg_sha256(kb->kbuf.data, kb->kbuf.len, sha);
        memcpy(key, sha, KB_VEC_KEY);
    }
    return rc;
}

int kb_vec_map(struct tg_kb *kb)
{
    struct kb_vecs *v = &kb->vec;
    int rc = kb_index_build(kb);
    if (rc || (v->of_ok && v->nof == kb->nchunks))
        return rc;
    uint32_t *of = tg_malloc((kb->nchunks ? kb->nchunks : 1) * sizeof(*of));
    if (!of)
        return TG_E_NOMEM;
    for (size_t c = 0; c < kb->nchunks && !rc; c++) {
        uint8_t key[KB_VEC_KEY];
        of[c] = KB_NONE;
        if (v->n && !kb->chunks[c].dead && !(rc = chunk_key(kb, (uint32_t)c, key)))
            of[c] = vec_find(v, key);
    }
    if (rc) {
        tg_free(of);
        return rc;
    }
    tg_free(v->of);
    v->of = of;
    v->nof = kb->nchunks;
    v->of_ok = true;
    return TG_OK;
}

int tg_kb_vectors_model(struct tg_kb *kb, const char *model)
{
    struct kb_vecs *v = &kb->vec;
    if (v->model && strcmp(v->model, model) == 0)
        return TG_OK;
    char *m = tg_strdup(model);
    if (!m)
        return TG_E_NOMEM;
    kb_vecs_free(v);
    v->model = m;
    v->unsaved = true;
    return TG_OK;
}

const char *tg_kb_vectors_name(const struct tg_kb *kb)
{
    return kb->vec.model;
}

size_t tg_kb_vectors_dim(const struct tg_kb *kb)
{
    return kb->vec.n ? kb->vec.dim : 0;
}

size_t tg_kb_vectors_count(struct tg_kb *kb)
{
    size_t n = 0;
    if (kb_vec_map(kb))
        return 0;
    for (size_t c = 0; c < kb->vec.nof; c++)
        n += kb->vec.of[c] != KB_NONE;
    return n;
}

int tg_kb_vectors_missing(struct tg_kb *kb, uint32_t **ids, size_t *n)
{
    size_t m = 0;
    int rc = kb_vec_map(kb);
    uint32_t *v = rc ? NULL : tg_malloc((kb->nchunks ? kb->nchunks : 1) * sizeof(*v));
    if (!rc && !v)
        rc = TG_E_NOMEM;
    for (size_t c = 0; !rc && c < kb->nchunks; c++)
        if (!kb->chunks[c].dead && kb->vec.of[c] == KB_NONE)
            v[m++] = (uint32_t)c;
    if (rc || !m) {
        tg_free(v);
        v = NULL;
    }
    if (!rc) {
        *ids = v;
        *n = m;
    }
    return rc;
}

int tg_kb_vector_put(struct tg_kb *kb, uint32_t chunk, const float *x, size_t dim)
{
    uint8_t key[KB_VEC_KEY];
    int rc = kb_vec_map(kb);
    if (!rc && chunk >= kb->nchunks)
        rc = TG_E_NOTFOUND;
    if (!rc)
        rc = chunk_key(kb, chunk, key);
    if (!rc)
        rc = kb_vec_add(kb, key, x, dim);
    if (!rc)
        kb->vec.of[chunk] = vec_find(&kb->vec, key);
    return rc;
}

/* ------------------------------------------------------------ fused search */

struct ranked {
    uint32_t chunk;
    float cos;
};

/* Offer (chunk, cos) to best[] (n kept of at most cap, best first). */
static void offer(struct ranked *best, size_t *n, size_t cap, struct ranked x)
{
    if (*n == cap && x.cos <= best[cap - 1].cos)
        return;
    size_t i = *n < cap ? (*n)++ : cap - 1;
    while (i > 0 && best[i - 1].cos < x.cos) {
        best[i] = best[i - 1];
        i--;
    }
    best[i] = x;
}

/* The dot product of two vectors of n floats, in eight independent sums
 * (the compiler keeps them in one vector register; one running sum would
 * chain every addition to the one before). */
static float dot(const float *a, const float *b, size_t n)
{
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t j = 0; j < 8; j++)
            acc[j] += a[i + j] * b[i + j];
    float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

/* The depth passages nearest qvec (one per document with per_doc), and
 * every live chunk's cosine in cos[]. */
static int dense_rank(struct tg_kb *kb, const float *qvec, bool per_doc, float *cos,
                      struct ranked *best, size_t depth, size_t *nbest)
{
    const struct kb_vecs *v = &kb->vec;
    uint32_t *docbest = NULL;
    if (per_doc) {
        docbest = tg_malloc((kb->ndocs ? kb->ndocs : 1) * sizeof(*docbest));
        if (!docbest)
            return TG_E_NOMEM;
        for (size_t d = 0; d < kb->ndocs; d++)
            docbest[d] = KB_NONE;
    }
    for (size_t c = 0; c < kb->nchunks; c++) {
        cos[c] = 0;
        if (kb->chunks[c].dead || v->of[c] == KB_NONE)
            continue;
        cos[c] = dot(v->data + (size_t)v->of[c] * v->dim, qvec, v->dim);
        uint32_t d = kb->chunks[c].doc;
        if (!per_doc)
            offer(best, nbest, depth, (struct ranked){(uint32_t)c, cos[c]});
        else if (docbest[d] == KB_NONE || cos[docbest[d]] < cos[c])
            docbest[d] = (uint32_t)c;
    }
    for (size_t d = 0; per_doc && d < kb->ndocs; d++)
        if (docbest[d] != KB_NONE)
            offer(best, nbest, depth, (struct ranked){docbest[d], cos[docbest[d]]});
    tg_free(docbest);
    return TG_OK;
}

struct fused {
    struct tg_kb_hit hit;
    double score;
    size_t order; /* BM25 rank first, then the dense-only ones */
};

static int cmp_fused(const void *a, const void *b)
{
    const struct fused *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

int tg_kb_search_dense(struct tg_kb *kb, const char *query, size_t len,
                       const struct tg_kb_dense *dq, size_t k, unsigned flags,
                       struct tg_kb_result *res)
{
    size_t depth = TG_MAX(k, (size_t)FUSE_DEPTH), nbest = 0, nf = 0;
    if (!dq || !dq->qvec || !kb->vec.n || dq->dim != kb->vec.dim)
        return tg_kb_search(kb, query, len, k, flags, res);
    const float *qvec = dq->qvec;
    double rrf_k = dq->rrf_k > 0 ? dq->rrf_k : DEFAULT_RRF_K;
    int rc = tg_kb_search(kb, query, len, depth, flags, res);
    if (!rc)
        rc = kb_vec_map(kb);
    float *cos = rc ? NULL : tg_malloc((kb->nchunks ? kb->nchunks : 1) * sizeof(*cos));
    struct ranked *best = cos ? tg_malloc(depth * sizeof(*best)) : NULL;
    struct fused *f = best ? tg_malloc((res->n + depth) * sizeof(*f)) : NULL;
    if (!rc && !f)
        rc = TG_E_NOMEM;
    if (!rc)
        rc = dense_rank(kb, qvec, flags & TG_KB_SEARCH_PER_DOC, cos, best, depth, &nbest);
    while (nbest && best[nbest - 1].cos < dq->min_cos)
        nbest--;
    for (size_t i = 0; !rc && i < res->n; i++) {
        f[nf] = (struct fused){res->hits[i], 1.0 / (rrf_k + (double)(i + 1)), nf};
        f[nf].hit.dense = cos[res->hits[i].chunk];
        nf++;
    }
    for (size_t j = 0; !rc && j < nbest; j++) {
        size_t i = 0;
        while (i < res->n && f[i].hit.chunk != best[j].chunk)
            i++;
        if (i == res->n) {
            f[nf] = (struct fused){{.chunk = best[j].chunk, .dense = best[j].cos}, 0, nf};
            i = nf++;
        }
        f[i].score += 1.0 / (rrf_k + (double)(j + 1));
    }
    if (!rc) {
        qsort(f, nf, sizeof(*f), cmp_fused);
        nf = TG_MIN(nf, k);
        if (nf > res->cap) {
            struct tg_kb_hit *h = tg_realloc(res->hits, nf * sizeof(*h));
            if (h) {
                res->hits = h;
                res->cap = nf;
            } else {
                rc = TG_E_NOMEM;
            }
        }
    }
    for (size_t i = 0; !rc && i < nf; i++)
        res->hits[i] = f[i].hit;
    res->n = rc ? 0 : nf;
    tg_free(f);
    tg_free(best);
    tg_free(cos);
    return rc;
}
