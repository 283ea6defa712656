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

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void eval_usage(FILE *f)
{
    fprintf(f, "usage: trustgate eval retrieval --kb FILE --queries FILE [-k 10] [--json]\n\n"
               "Rank the passages of the --kb file for every query of the --queries file with\n"
               "the knowledge base (BM25) and with SQLite FTS5 (trigram tokenizer, bm25()) in\n"
               "the same run, and print P@1, MRR@k, Recall@k, n, search latency and index\n"
               "build speed of both.  Files (JSONL, shape told by the first line):\n"
               "  {id, contract, passage, question, answer}  pool = distinct passages; the gold\n"
               "                                            of a question is its own passage\n"
               "  {pid, qa: [{question, answers}]}           one document per pid; queries are\n"
               "                                            {qid, query, gold_pid}\n"
               "  {id, title?, text} / {id, question, answer}  queries are {query, gold}\n"
               "--kb and --queries may be the same file.\n\n"
               "  -k N                 cut-off for MRR and Recall (default 10)\n"
               "  -j, --json           one JSON object: p_at_1, mrr_at_10, recall_at_10, n,\n"
               "                       latency_us, build, and baseline with the same keys\n"
               "  -t, --tokens SET     words, bigrams or words+bigrams (default: the built-in)\n"
               "      --k1 X, --b X    BM25 parameters (default 1.2, 0.75)\n"
               "      --chunk N        chunk size in characters (default 600; 0 = no chunking)\n"
               "      --overlap N      chunk overlap in characters (default 80)\n"
               "      --repeat N       run the queries N times for the latency figures\n"
               "      --no-baseline    skip FTS5\n"
               "      --embed-url URL  also rank by meaning: an OpenAI-compatible embeddings\n"
               "                       server (e.g. http://127.0.0.1:8080/v1), fused with BM25\n"
               "                       by reciprocal rank fusion (kb.embeddings in the config)\n"
               "      --embed-model M  its model (required with --embed-url)\n"
               "      --embed-key K    its API key\n"
               "      --embed-dimensions N  the vector length to ask for (default: the model's)\n"
               "      --min-similarity X    cosine a dense neighbour needs (default 0.3)\n"
               "  -h, --help           this text\n");
}

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

/* Print what both systems scored, as a table or as one JSON object (fts
 * NULL: no baseline).  Non-zero when out of memory. */
static int report(const struct tg_retrieval_set *set, const struct tg_retrieval_score *ours,
                  const struct tg_retrieval_score *fts, const struct tg_kb_opts *ko, int64_t k,
                  bool as_json, bool dense)
{
    double mb = tg_retrieval_mb(set);
    if (as_json) {
        json_t *o = tg_retrieval_score_json(ours, mb);
        if (!o)
            return 1;
        json_object_set_new(o, "k", json_integer(k));
        json_object_set_new(o, "tokens", json_string(tokens_name(ko->token_flags)));
        json_object_set_new(o, "dense", json_boolean(dense));
        json_object_set_new(o, "documents", json_integer((json_int_t)tg_retrieval_documents(set)));
        json_object_set_new(o, "text_mb", json_real(mb));
        if (fts) {
            json_t *b = tg_retrieval_score_json(fts, mb);
            json_object_set_new(b, "name", json_string("sqlite-fts5-trigram"));
            json_object_set_new(o, "baseline", b);
        }
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        json_decref(o);
        if (!s)
            return 1;
        printf("%s\n", s);
        free(s);
        return 0;
    }
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

int tg_cli_eval_retrieval(int argc, char **argv)
{
    static const struct option opts[] = {
        {"kb", required_argument, NULL, 'K'},     {"queries", required_argument, NULL, 'Q'},
        {"json", no_argument, NULL, 'j'},         {"tokens", required_argument, NULL, 't'},
        {"k1", required_argument, NULL, '1'},     {"b", required_argument, NULL, 'B'},
        {"chunk", required_argument, NULL, 'C'},  {"overlap", required_argument, NULL, 'O'},
        {"repeat", required_argument, NULL, 'R'}, {"no-baseline", no_argument, NULL, 'N'},
        {"embed-url", required_argument, NULL, 'U'}, {"embed-model", required_argument, NULL, 'M'},
        {"embed-key", required_argument, NULL, 'Y'}, {"embed-dimensions", required_argument, NULL, 'D'},
        {"min-similarity", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    struct tg_embed_conf ec = {0};
    struct tg_retrieval_dense dense = {.min_cos = 0.3};
    int64_t dims = 0;
    const char *kb_path = NULL, *q_path = NULL;
    bool as_json = false, baseline = true;
    struct tg_kb_opts ko;
    int64_t k = 10, repeat = 1, chunk = -1, overlap = -1;
    int c, status = 1;
    struct tg_retrieval_set *set = NULL;
    struct tg_retrieval_score ours = {0}, fts = {0};
    char err[512] = "";
    tg_kb_opts_init(&ko);
    optind = 1;
    while ((c = getopt_long(argc, argv, "+k:jt:h", opts, NULL)) != -1) {
        bool bad = false;
        switch (c) {
        case 'K':
            kb_path = optarg;
            break;
        case 'Q':
            q_path = optarg;
            break;
        case 'j':
            as_json = true;
            break;
        case 'k':
            bad = tg_parse_i64(optarg, &k) || k < 1 || k > 1000;
            break;
        case 't':
            bad = parse_tokens(optarg, &ko.token_flags) != TG_OK;
            break;
        case '1':
            bad = tg_parse_double(optarg, &ko.k1) || ko.k1 < 0;
            break;
        case 'B':
            bad = tg_parse_double(optarg, &ko.b) || ko.b < 0 || ko.b > 1;
            break;
        case 'C':
            bad = tg_parse_i64(optarg, &chunk) || chunk < 0;
            break;
        case 'O':
            bad = tg_parse_i64(optarg, &overlap) || overlap < 0;
            break;
        case 'R':
            bad = tg_parse_i64(optarg, &repeat) || repeat < 1 || repeat > 1000;
            break;
        case 'N':
            baseline = false;
            break;
        case 'U':
            ec.base_url = optarg;
            break;
        case 'M':
            ec.model = optarg;
            break;
        case 'Y':
            ec.api_key = optarg;
            break;
        case 'D':
            bad = tg_parse_i64(optarg, &dims) || dims < 1 || dims > TG_EMBED_MAX_DIM;
            ec.dimensions = (size_t)dims;
            break;
        case 'S':
            bad = tg_parse_double(optarg, &dense.min_cos) || dense.min_cos < -1 || dense.min_cos > 1;
            break;
        case 'h':
            eval_usage(stdout);
            return 0;
        default:
            bad = true;
            break;
        }
        if (bad) {
            if (c != '?')
                fprintf(stderr, "trustgate eval retrieval: bad value '%s'\n", optarg);
            eval_usage(stderr);
            return 2;
        }
    }
    if (!kb_path || !q_path || optind != argc || !ec.base_url != !ec.model) {
        eval_usage(stderr);
        return 2;
    }
    if (chunk == 0)
        ko.chunk_chars = (size_t)1 << 30;
    else if (chunk > 0)
        ko.chunk_chars = (size_t)chunk;
    if (overlap >= 0)
        ko.chunk_overlap = (size_t)overlap;
    tg_log_set_level(TG_LOG_WARN);
    if (tg_retrieval_load(kb_path, q_path, &set, err, sizeof(err)))
        goto out;
    if (tg_retrieval_missing(set))
        fprintf(stderr,
                "trustgate eval retrieval: %zu queries have no gold in the pool "
                "(counted as misses)\n",
                tg_retrieval_missing(set));
    if (ec.base_url && tg_embedder_create(&ec, NULL, &dense.embedder, err, sizeof(err)))
        goto out;
    if (tg_retrieval_run_kb(set, &ko, dense.embedder ? &dense : NULL, (size_t)k, (int)repeat,
                            &ours, err, sizeof(err)))
        goto out;
    if (baseline && tg_retrieval_run_fts5(set, (size_t)k, (int)repeat, &fts, err, sizeof(err)))
        goto out;
    if (report(set, &ours, baseline ? &fts : NULL, &ko, k, as_json, dense.embedder != NULL))
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