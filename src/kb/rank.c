/*
 * rank.c - the second field a question is matched against: each chunk's
 * key, the one line that says what the chunk answers (an FAQ pair's
 * question, else the last heading above the chunk below the title), and how a match on it moves the
 * chunk up the ranking.
 *
 * BM25 over the whole passage finds what a question is about but lets a
 * long article that repeats the question's words outrank the FAQ pair
 * whose question is the customer's own.  So besides the passage, a query
 * is compared with every key: the cosine of their idf-weighted term sets
 * (1 for the same terms, 0 for none shared).  The key index is built from
 * the main index's term ids the first time a search needs it after a
 * build or a load (headings are short: tokenizing them is cheap and the
 * chunks' own vectors are never touched), and dropped with the index.
 */
#include "kb/kb_int.h"

#include <math.h>
#include <string.h>

/* How much a key that matches the query entirely adds, in units of the
 * best BM25 score of the query: enough that an exact FAQ question wins
 * over any article; a partial match adds in proportion to cos^KEY_POWER,
 * so a key sharing one common word with the query barely counts. */
#define KEY_WEIGHT 1.0
#define KEY_POWER 2.0

void kb_keys_free(struct tg_kb *kb)
{
    tg_free(kb->key_start);
    tg_free(kb->key_chunk);
    tg_free(kb->key_norm);
    tg_free(kb->key_dot);
    kb->key_start = kb->key_chunk = NULL;
    kb->key_norm = kb->key_dot = NULL;
    kb->nkey = 0;
    kb->keys_ok = false;
}

/*
 * The key line of chunk c: its FAQ question, else the last heading of a
 * heading path with at least two levels ("" if none).  A document's title
 * alone is no key: it names a subject, not a question, and BM25 already
 * weighs it with every chunk of the document.
 */
static const char *key_text(const struct kb_chunk *c, size_t *len)
{
    const char *s = c->question;
    if (!s || !*s) {
        s = c->heading ? c->heading : "";
        const char *last = s;
        for (const char *p = strstr(s, " > "); p; p = strstr(p + 3, " > "))
            last = p + 3;
        s = last == s ? "" : last;
    }
    *len = strlen(s);
    return s;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Sort kb->ids and drop repeats; returns the number left. */
static size_t unique_ids(struct tg_kb *kb)
{
    size_t w = 0;
    if (!kb->nids)
        return 0;
    qsort(kb->ids, kb->nids, sizeof(uint32_t), cmp_u32);
    for (size_t i = 0; i < kb->nids; i++)
        if (!w || kb->ids[i] != kb->ids[w - 1])
            kb->ids[w++] = kb->ids[i];
    kb->nids = w;
    return w;
}

/* The distinct term ids of chunk c's key, left in kb->ids. */
static int key_ids(struct tg_kb *kb, const struct kb_chunk *c)
{
    size_t len;
    const char *s = key_text(c, &len);
    kb->nids = 0;
    if (!len)
        return TG_OK;
    int rc = kb_normalize(kb, s, len);
    if (!rc) {
        tg_tokens_reset(&kb->toks);
        rc = tg_text_tokenize(kb->tx, kb->nbuf.data, kb->nbuf.len, kb->opts.token_flags, &kb->toks);
    }
    if (!rc)
        rc = kb_token_ids(kb, &kb->toks, false);
    if (!rc)
        unique_ids(kb);
    return rc;
}

/*
 * Build the key index: postings term -> chunks whose key holds the term
 * (chunk order), each chunk's key norm sqrt(sum idf^2), and the per-chunk
 * scratch of the search.  Two passes over the keys: count, then fill.
 */
int kb_keys_build(struct tg_kb *kb)
{
    size_t nc = kb->ix_chunks, nt = kb->ix_terms;
    uint32_t *fill = NULL;
    int rc = TG_OK;
    if (kb->keys_ok)
        return TG_OK;
    kb_keys_free(kb);
    kb->key_start = tg_calloc(nt + 1, sizeof(uint32_t));
    kb->key_norm = tg_calloc(nc ? nc : 1, sizeof(double));
    kb->key_dot = tg_calloc(nc ? nc : 1, sizeof(double));
    fill = tg_calloc(nt + 1, sizeof(uint32_t));
    if (!kb->key_start || !kb->key_norm || !kb->key_dot || !fill) {
        rc = TG_E_NOMEM;
        goto out;
    }
    for (size_t c = 0; c < nc && !rc; c++) {
        rc = key_ids(kb, &kb->chunks[c]);
        double n2 = 0;
        for (size_t i = 0; !rc && i < kb->nids; i++) {
            kb->key_start[kb->ids[i] + 1]++;
            n2 += kb->idf[kb->ids[i]] * kb->idf[kb->ids[i]];
        }
        kb->key_norm[c] = sqrt(n2);
    }
    for (size_t t = 0; t < nt && !rc; t++)
        kb->key_start[t + 1] += kb->key_start[t];
    if (rc)
        goto out;
    kb->nkey = kb->key_start[nt];
    kb->key_chunk = tg_malloc((kb->nkey ? kb->nkey : 1) * sizeof(uint32_t));
    if (!kb->key_chunk) {
        rc = TG_E_NOMEM;
        goto out;
    }
    memcpy(fill, kb->key_start, (nt + 1) * sizeof(uint32_t));
    for (size_t c = 0; c < nc && !rc; c++) {
        rc = key_ids(kb, &kb->chunks[c]);
        for (size_t i = 0; !rc && i < kb->nids; i++)
            kb->key_chunk[fill[kb->ids[i]]++] = (uint32_t)c;
    }
    if (!rc)
        kb->keys_ok = true;
out:
    tg_free(fill);
    if (rc)
        kb_keys_free(kb);
    return rc;
}

/*
 * Add the key match to the BM25 scores of the m touched chunks.  qids
 * (nq sorted distinct ids: the query's own terms) give the query's norm;
 * ids (n sorted, with repeats: the query with its glossary expansion)
 * are matched, so a key naming a synonym the customer did not use still
 * matches, the cosine capped at 1.  kb->key_dot[c] ends as the cosine
 * for every touched chunk (0 for the others it does not reach).
 */
void kb_keys_score(struct tg_kb *kb, const uint32_t *qids, size_t nq, const uint32_t *ids, size_t n,
                   size_t m)
{
    double qn2 = 0, top = 0;
    for (size_t i = 0; i < nq; i++)
        qn2 += kb->idf[qids[i]] * kb->idf[qids[i]];
    for (size_t i = 0; i < m; i++) {
        uint32_t c = kb->touched[i];
        kb->key_dot[c] = 0;
        if (kb->acc[c] > top)
            top = kb->acc[c];
    }
    if (qn2 <= 0 || !kb->keys_ok)
        return;
    for (size_t i = 0; i < n; i++) {
        uint32_t t = ids[i];
        if (i && t == ids[i - 1])
            continue;
        double w = kb->idf[t] * kb->idf[t];
        for (uint32_t p = kb->key_start[t]; p < kb->key_start[t + 1]; p++) {
            uint32_t c = kb->key_chunk[p];
            /* every key term is in its chunk, so the chunk was touched */
            if (kb->mark[c] == kb->stamp)
                kb->key_dot[c] += w;
        }
    }
    double qn = sqrt(qn2);
    for (size_t i = 0; i < m; i++) {
        uint32_t c = kb->touched[i];
        double cs = kb->key_norm[c] > 0 ? kb->key_dot[c] / (qn * kb->key_norm[c]) : 0;
        if (cs > 1)
            cs = 1;
        kb->key_dot[c] = cs;
        kb->acc[c] += KEY_WEIGHT * top * pow(cs, KEY_POWER);
    }
}
