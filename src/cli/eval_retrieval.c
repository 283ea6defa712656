/*
 * eval_retrieval.c - `trustgate eval retrieval`: the knowledge base's
 * retrieval against SQLite FTS5 over the same passages in the same run
 * (src/eval/retrieval.c does the work; this file reads the options and
 * prints).
 */
#include "cli/cli.h"

#include "backend/embed.h"

#include "eval/retrieval.h"
#include "kb/kb.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_tokens(const char *s, unsigned *out)
{
    if (strcmp(s, "words") == 0)
        *out = TG_TOKEN_WORDS | TG_TOKEN_STEM;
    else if (strcmp(s, "bigrams") == 0)
        *out = TG_TOKEN_BIGRAMS | TG_TOKEN_STEM;
    else if (strcmp(s, "words+bigrams") == 0)
        *out = TG_TOKEN_WORDS | TG_TOKEN_BIGRAMS | TG_TOKEN_STEM;
    else
        return TG_E_INVAL;
    return TG_OK;
}

static const char *tokens_name(unsigned f)
{
    bool w = f & TG_TOKEN_WORDS, b = f & TG_TOKEN_BIGRAMS;
    return w && b ? "words+bigrams" : w ? "words" : b ? "bigrams" : "none";
}

static void print_row(const char *name, const struct tg_retrieval_score *s, size_t k, double mb)
{
    double n = s->n ? (double)s->n : 1.0;
    printf("%-22s %6.3f %8.3f %9.3f   %8.1f %8.1f   %7.2f\n", name, (double)s->p1 / n, s->mrr / n,
           (double)s->hit / n, tg_retrieval_latency_us(s, 50), tg_retrieval_latency_us(s, 99),
           s->build_s > 0 ? mb / s->build_s : 0.0);
    (void)k;
}

/* The figures as one JSON object on stdout (fts NULL: no baseline).
 * Non-zero, with the reason in err, when out of memory. */
static int report_json(const struct tg_retrieval_set *set, const struct tg_retrieval_score *ours,
                       const struct tg_retrieval_score *fts, const struct tg_kb_opts *ko, int64_t k,
                       bool dense, char *err, size_t errlen)
{
    double mb = tg_retrieval_mb(set);
    json_t *o = tg_retrieval_score_json(ours, mb);
    int rc = o ? TG_OK : TG_E_NOMEM;
    char *s = NULL;
    if (!rc)
        rc = tg_json_set(o, "k", json_integer(k));
    if (!rc)
        rc = tg_json_set(o, "tokens", json_string(tokens_name(ko->token_flags)));
    if (!rc)
        rc = tg_json_set(o, "dense", json_boolean(dense));
    if (!rc)
        rc = tg_json_set(o, "documents", json_integer((json_int_t)tg_retrieval_documents(set)));
    if (!rc)
        rc = tg_json_set(o, "text_mb", json_real(mb));
    if (!rc && fts) {
        json_t *b = tg_retrieval_score_json(fts, mb);
        rc = tg_json_set(b, "name", json_string("sqlite-fts5-trigram"));
        if (rc)
            json_decref(b);
        else
            rc = tg_json_set(o, "baseline", b);
    }
    if (!rc)
        s = tg_json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    printf("%s\n", s);
    free(s);
    return 0;
}

/* Print what both systems scored, as a table or as one JSON object (fts
 * NULL: no baseline).  Non-zero, with the reason in err, when out of memory. */
static int report(const struct tg_retrieval_set *set, const struct tg_retrieval_score *ours,
                  const struct tg_retrieval_score *fts, const struct tg_kb_opts *ko, int64_t k,
                  bool as_json, bool dense, char *err, size_t errlen)
{
    double mb = tg_retrieval_mb(set);
    if (as_json)
        return report_json(set, ours, fts, ko, k, dense, err, errlen);
    printf("retrieval: %zu documents (%.2f MB), %zu queries, tokens %s, k1 %.2f, b %.2f\n\n",
           tg_retrieval_documents(set), mb, tg_retrieval_queries(set), tokens_name(ko->token_flags),
           ko->k1, ko->b);
    printf("%-22s %6s %8s %9s   %8s %8s   %7s\n", "system", "P@1", "MRR@k", "Recall@k", "p50 us",
           "p99 us", "MB/s");
    print_row(dense ? "trustgate BM25+dense" : "trustgate BM25", ours, (size_t)k, mb);
    if (fts)
        print_row("SQLite FTS5 trigram", fts, (size_t)k, mb);
    printf("\nn = %zu, k = %" PRId64 "; MB/s = index build throughput (text bytes)\n", ours->n, k);
    return 0;
}

struct retrieval_args {
    const char *kb, *queries;
    bool as_json, no_baseline;
    int64_t k, repeat, chunk, overlap, dims;
    struct tg_kb_opts ko;
    struct tg_embed_conf ec;
    double min_similarity;
};

/* --tokens SET */
static int tokens_opt(void *args, const char *arg)
{
    struct retrieval_args *a = args;
    if (parse_tokens(arg, &a->ko.token_flags) == TG_OK)
        return 0;
    fprintf(stderr,
            "trustgate eval retrieval: --tokens wants words, bigrams or words+bigrams, not '%s'\n",
            arg);
    return 1;
}

#define ARG(f) TG_CLI_FIELD(struct retrieval_args, f)
static const struct tg_cli_opt retrieval_opts[] = {
    {"kb", 0, ARG(kb), .arg = "FILE", .help = "the passages", .flags = TG_CLI_REQUIRED},
    {"queries", 0, ARG(queries), .arg = "FILE", .help = "the queries with their gold",
     .flags = TG_CLI_REQUIRED},
    {"k", 'k', ARG(k), .arg = "N", .help = "cut-off for MRR and Recall (default 10)", .lo = 1,
     .hi = 1000},
    {"json", 'j', ARG(as_json),
     .help = "one JSON object: p_at_1, mrr_at_10, recall_at_10, n, latency_us, build,\n"
             "dense, and baseline with the same keys"},
    {"tokens", 't', TG_CLI_CALLS, .arg = "SET",
     .help = "words, bigrams or words+bigrams (default: the built-in)", .call = tokens_opt},
    {"k1", 0, ARG(ko.k1), .arg = "X", .help = "BM25 k1 (default 1.2)", .lo = 0, .hi = 100},
    {"b", 0, ARG(ko.b), .arg = "X", .help = "BM25 b (default 0.75)", .lo = 0, .hi = 1},
    {"chunk", 0, ARG(chunk), .arg = "N",
     .help = "chunk size in characters (default 600; 0 = no chunking)", .lo = 0, .hi = 1e9},
    {"overlap", 0, ARG(overlap), .arg = "N", .help = "chunk overlap in characters (default 80)",
     .lo = 0, .hi = 1e9},
    {"repeat", 0, ARG(repeat), .arg = "N", .help = "run the queries N times for the latencies",
     .lo = 1, .hi = 1000},
    {"no-baseline", 0, ARG(no_baseline), .help = "skip FTS5"},
    {"embed-url", 0, ARG(ec.base_url), .arg = "URL",
     .help = "also rank by meaning: an OpenAI-compatible embeddings server\n"
             "(e.g. http://127.0.0.1:8080/v1), fused with BM25 by reciprocal rank\n"
             "fusion (kb.embeddings in the config)"},
    {"embed-model", 0, ARG(ec.model), .arg = "M", .help = "its model (required with --embed-url)"},
    {"embed-key", 0, ARG(ec.api_key), .arg = "K", .help = "its API key"},
    {"embed-dimensions", 0, ARG(dims), .arg = "N",
     .help = "the vector length to ask for (default: the model's)", .lo = 1,
     .hi = TG_EMBED_MAX_DIM},
    {"min-similarity", 0, ARG(min_similarity), .arg = "X",
     .help = "cosine a dense neighbour needs (default 0.3)", .lo = -1, .hi = 1},
    {0}};
#undef ARG

static const struct tg_cli_cmd retrieval_cmd = {
    .name = "eval retrieval",
    .usage = "usage: trustgate eval retrieval --kb FILE --queries FILE [-k 10] [--json]\n\n"
             "Rank the passages of the --kb file for every query of the --queries file with\n"
             "the knowledge base (BM25) and with SQLite FTS5 (trigram tokenizer, bm25()) in\n"
             "the same run, and print P@1, MRR@k, Recall@k, n, search latency and index\n"
             "build speed of both.  Files (JSONL, shape told by the first line):\n"
             "  {id, contract, passage, question, answer}  pool = distinct passages; the gold\n"
             "                                            of a question is its own passage\n"
             "  {pid, qa: [{question, answers}]}           one document per pid; queries are\n"
             "                                            {qid, query, gold_pid}\n"
             "  {id, title?, text} / {id, question, answer}  queries are {query, gold}\n"
             "--kb and --queries may be the same file.\n",
    .opts = retrieval_opts,
};

int tg_cli_eval_retrieval(int argc, char **argv)
{
    struct retrieval_args a = {.k = 10, .repeat = 1, .chunk = -1, .overlap = -1,
                               .min_similarity = 0.3};
    struct tg_retrieval_dense dense = {0};
    struct tg_retrieval_set *set = NULL;
    struct tg_retrieval_score ours = {0}, fts = {0};
    char err[512] = "";
    int status;
    tg_kb_opts_init(&a.ko);
    status = tg_cli_parse(&retrieval_cmd, argc, argv, &a, NULL);
    if (status != TG_CLI_GO_ON)
        return status;
    if (!a.ec.base_url != !a.ec.model) {
        fprintf(stderr, "trustgate eval retrieval: --embed-url and --embed-model go together\n");
        return 2;
    }
    status = 1;
    if (a.chunk == 0)
        a.ko.chunk_chars = (size_t)1 << 30;
    else if (a.chunk > 0)
        a.ko.chunk_chars = (size_t)a.chunk;
    if (a.overlap >= 0)
        a.ko.chunk_overlap = (size_t)a.overlap;
    a.ec.dimensions = (size_t)a.dims;
    dense.min_cos = a.min_similarity;
    tg_log_set_level(TG_LOG_WARN);
    if (tg_retrieval_load(a.kb, a.queries, &set, err, sizeof(err)))
        goto out;
    if (tg_retrieval_missing(set))
        fprintf(stderr,
                "trustgate eval retrieval: %zu queries have no gold in the pool "
                "(counted as misses)\n",
                tg_retrieval_missing(set));
    if (a.ec.base_url && tg_embedder_create(&a.ec, NULL, &dense.embedder, err, sizeof(err)))
        goto out;
    if (tg_retrieval_run_kb(set, &a.ko, dense.embedder ? &dense : NULL, (size_t)a.k,
                            (int)a.repeat, &ours, err, sizeof(err)))
        goto out;
    if (!a.no_baseline &&
        tg_retrieval_run_fts5(set, (size_t)a.k, (int)a.repeat, &fts, err, sizeof(err)))
        goto out;
    if (report(set, &ours, a.no_baseline ? NULL : &fts, &a.ko, a.k, a.as_json,
               dense.embedder != NULL, err, sizeof(err)))
        goto out;
    status = 0;
out:
    if (status && err[0])
        fprintf(stderr, "trustgate eval retrieval: %s\n", err);
    tg_retrieval_score_free(&ours);
    tg_retrieval_score_free(&fts);
    tg_retrieval_free(set);
    tg_embedder_free(dense.embedder);
    return status;
}
