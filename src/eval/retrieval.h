/*
 * retrieval.h - how well the knowledge base finds the passage that answers
 * a question, beside SQLite FTS5 over the same passages in the same run
 * (retrieval.c; `trustgate eval retrieval`, bench/RETRIEVAL.md).
 */
#ifndef TG_EVAL_RETRIEVAL_H
#define TG_EVAL_RETRIEVAL_H

#include "core/core.h"
#include "kb/kb.h"

#include <jansson.h>

/* A passage pool and its labelled queries. */
struct tg_retrieval_set;

/*
 * Read the pool and the queries (JSONL; the shapes in retrieval.c; one
 * file may be both).  TG_OK and *out (freed with tg_retrieval_free); else
 * an error with "FILE:LINE: message" or what is missing in err.  A query
 * whose gold is not in the pool is kept and counts as a miss.
 */
int tg_retrieval_load(const char *pool_path, const char *queries_path,
                      struct tg_retrieval_set **out, char *err, size_t errlen);
void tg_retrieval_free(struct tg_retrieval_set *s);
size_t tg_retrieval_documents(const struct tg_retrieval_set *s);
size_t tg_retrieval_queries(const struct tg_retrieval_set *s);
/* Queries whose gold document is not in the pool. */
size_t tg_retrieval_missing(const struct tg_retrieval_set *s);
/* Megabytes of passage text. */
double tg_retrieval_mb(const struct tg_retrieval_set *s);

/* What one system scored: n queries, first-ranked gold (p1), gold within k
 * (hit), the sum of reciprocal ranks within k; search latencies (sorted,
 * n_lat = queries x repeat) and the best of three index builds. */
struct tg_retrieval_score {
    size_t n, p1, hit;
    double mrr;
    int64_t *lat_ns;
    size_t n_lat;
    double build_s;
};

/*
 * Rank every query's documents with the knowledge base built with o
 * (BM25, chunks collapsed to their document), or with the FTS5 baseline;
 * repeat > 1 runs the queries that many times for the latencies and times
 * the build three times.  TG_OK, else an error with a message in err.
 * The score's latencies are freed with tg_retrieval_score_free.
 */
struct tg_embedder;
/* Dense retrieval beside BM25 (kb.h: tg_kb_search_dense): the passages and
 * each query embedded by embedder (backend/embed.h) before searching. */
struct tg_retrieval_dense {
    struct tg_embedder *embedder;
    double rrf_k;   /* <= 0: 60 */
    double min_cos; /* a dense neighbour counts from this cosine */
};
/* dense may be NULL for BM25 alone; the query's embedding is not timed. */
int tg_retrieval_run_kb(const struct tg_retrieval_set *s, const struct tg_kb_opts *o,
                        const struct tg_retrieval_dense *dense, size_t k, int repeat,
                        struct tg_retrieval_score *out, char *err, size_t errlen);
int tg_retrieval_run_fts5(const struct tg_retrieval_set *s, size_t k, int repeat,
                          struct tg_retrieval_score *out, char *err, size_t errlen);
void tg_retrieval_score_free(struct tg_retrieval_score *sc);
/* {p_at_1, mrr_at_10, recall_at_10, n, latency_us: {p50, p99}, build:
 * {seconds, mb_per_s}}, a new reference (NULL when out of memory). */
json_t *tg_retrieval_score_json(const struct tg_retrieval_score *sc, double mb);
/* The pct-th percentile (nearest rank) of the search latencies, in µs. */
double tg_retrieval_latency_us(const struct tg_retrieval_score *sc, double pct);

#endif
