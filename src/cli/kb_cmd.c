/*
 * kb_cmd.c - `trustgate kb`: fill the knowledge base from files, search
 * it and describe it, in the store of a data directory (the same one the
 * server reads at start-up).
 *
 *   kb ingest PATH... [-c CONFIG | -d DIR] [--glossary FILE]
 *   kb search [-c CONFIG | -d DIR] [-k 10] [--json] QUERY...
 *   kb stats  [-c CONFIG | -d DIR] [--json]
 *
 * With -c the store is the config's store.uri, BM25 k1/b and the glossary
 * come from its kb section, and `kb ingest` without PATH ingests kb.paths
 * (paths in the config are relative to the config file).  Without -c the
 * store is sqlite:DIR/trustgate.db, DIR defaulting to ./data.
 */
#include "cli/cli.h"

#include "kb/kb.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kb_env {
    const char *cfg_path, *data, *glossary;
    bool as_json;
    int64_t k;
    struct tg_config *cfg;
    struct tg_text *tx;
    struct tg_store *st;
    struct tg_kb *kb;
    char uri[4200];
    char gloss_buf[4096];
};

static void kb_usage(FILE *f)
{
    fprintf(f, "usage: trustgate kb COMMAND [options]\n\n"
               "commands:\n"
               "  ingest PATH...   add or refresh folders (*.md, *.markdown, *.txt, *.jsonl) and\n"
               "                   JSONL files; unchanged files are skipped, changed ones\n"
               "                   re-chunked, deleted ones removed\n"
               "  search QUERY     the best chunks for a question, with scores and sources\n"
               "  stats            documents, chunks, terms, postings and sizes\n\n"
               "common options:\n"
               "  -c, --config FILE    use the config's store and kb section\n"
               "  -d, --data DIR       use the store sqlite:DIR/trustgate.db (default ./data)\n"
               "  -h, --help           help for a command: trustgate kb COMMAND --help\n");
}

#define ARG(f) TG_CLI_FIELD(struct kb_env, f)
static const struct tg_cli_opt ingest_opts[] = {
    {"config", 'c', ARG(cfg_path), .arg = "FILE",
     .help = "the config (store.uri, kb.paths, kb.glossary)"},
    {"data", 'd', ARG(data), .arg = "DIR",
     .help = "data directory: sqlite:DIR/trustgate.db (default ./data)"},
    {"glossary", 'g', ARG(glossary), .arg = "FILE",
     .help = "load a metric glossary (YAML or JSON list of {term,\n"
             "definition, synonyms, includes, excludes})"},
    {"json", 'j', ARG(as_json), .help = "print the counts as JSON"},
    {0}};

static const struct tg_cli_opt search_opts[] = {
    {"config", 'c', ARG(cfg_path), .arg = "FILE", .help = "the config (store.uri, kb.k1, kb.b)"},
    {"data", 'd', ARG(data), .arg = "DIR", .help = "data directory (default ./data)"},
    {NULL, 'k', ARG(k), .arg = "N", .help = "how many chunks (default 10)", .lo = 1, .hi = 1000},
    {"json", 'j', ARG(as_json), .help = "JSON output"},
    {0}};

static const struct tg_cli_opt stats_opts[] = {
    {"config", 'c', ARG(cfg_path), .arg = "FILE", .help = "the config (store.uri)"},
    {"data", 'd', ARG(data), .arg = "DIR", .help = "data directory (default ./data)"},
    {"json", 'j', ARG(as_json), .help = "JSON output"},
    {0}};
#undef ARG

static const struct tg_cli_cmd ingest_cmd = {
    .name = "kb",
    .usage =
        "usage: trustgate kb ingest PATH... [-c CONFIG | -d DIR] [--glossary FILE] [--json]\n\n"
        "Ingest folders (recursively: *.md, *.markdown, *.txt, *.jsonl) and files into the\n"
        "knowledge base kept in the store.  A JSONL line is an article {\"id\", \"title\",\n"
        "\"text\"} or an FAQ pair {\"id\", \"question\", \"answer\"}.  A file whose SHA-256 is\n"
        "unchanged is skipped, a changed one replaces its old chunks, and a file gone from\n"
        "a folder (or a PATH that no longer exists) is removed.  With -c and no PATH, the\n"
        "config's kb.paths are ingested.\n",
    .opts = ingest_opts,
    .max_args = TG_CLI_MANY,
};

static const struct tg_cli_cmd search_cmd = {
    .name = "kb",
    .usage = "usage: trustgate kb search [-c CONFIG | -d DIR] [-k 10] [--json] QUERY...\n\n"
             "Print the k best chunks for the query (BM25), best first, with score, source,\n"
             "heading path and text, and the glossary entries the query used.  --json prints\n"
             "an array of {rank, score, source, title, chunk, text, heading, doc_id,\n"
             "glossary}, where chunk is \"DOC_ID#N\" (the chunk's number in its document).\n",
    .opts = search_opts,
    .min_args = 1,
    .max_args = TG_CLI_MANY,
};

static const struct tg_cli_cmd stats_cmd = {
    .name = "kb",
    .usage = "usage: trustgate kb stats [-c CONFIG | -d DIR] [--json]\n\n"
             "Describe the knowledge base: sources, documents, chunks, terms, postings,\n"
             "text and index bytes, glossary entries, mean chunk length, and whether the\n"
             "index was loaded from the store or rebuilt.\n",
    .opts = stats_opts,
};

/* cmd's options into e, and the index of the first argument into *end:
 * TG_CLI_GO_ON, else the exit status. */
static int parse(struct kb_env *e, const struct tg_cli_cmd *cmd, int argc, char **argv, int *end)
{
    int status = tg_cli_parse(cmd, argc, argv, e, end);
    if (status == TG_CLI_GO_ON && e->cfg_path && e->data) {
        fprintf(stderr, "trustgate kb: give -c or -d, not both\n");
        status = 2;
    }
    return status;
}

static int env_open(struct kb_env *e)
{
    char err[512] = "", dir[4096];
    struct tg_kb_opts o;
    tg_kb_opts_init(&o);
    if (e->cfg_path) {
        e->cfg = tg_cli_load_config(e->cfg_path);
        if (!e->cfg)
            return 1;
        snprintf(e->uri, sizeof(e->uri), "%s", e->cfg->store_uri);
        tg_store_local_dir(e->cfg->store_uri, e->cfg->data_dir, dir, sizeof(dir));
        o.k1 = e->cfg->kb_k1;
        o.b = e->cfg->kb_b;
        if (e->cfg->kb_glossary && !e->glossary) {
            snprintf(e->gloss_buf, sizeof(e->gloss_buf), "%s", e->cfg->kb_glossary);
            e->glossary = e->gloss_buf;
        }
    } else {
        snprintf(dir, sizeof(dir), "%s", e->data ? e->data : "./data");
        snprintf(e->uri, sizeof(e->uri), "sqlite:%s/trustgate.db", dir);
    }
    tg_log_set_level(TG_LOG_WARN);
    if (tg_cli_mkdirs(dir)) {
        fprintf(stderr, "trustgate kb: cannot create data directory %s\n", dir);
        return 1;
    }
    if (tg_text_open(&e->tx, err, sizeof(err)) || tg_store_open(e->uri, &e->st, err, sizeof(err)) ||
        tg_kb_open(&o, e->tx, e->st, &e->kb, err, sizeof(err))) {
        fprintf(stderr, "trustgate kb: %s\n", err);
        return 1;
    }
    return 0;
}

static void env_close(struct kb_env *e)
{
    tg_kb_close(e->kb);
    tg_store_close(e->st);
    tg_text_close(e->tx);
    tg_config_free(e->cfg);
}

static int kb_ingest(int argc, char **argv)
{
    struct kb_env e = {0};
    struct tg_kb_report rep = {0};
    struct tg_kb_stats st;
    char err[1024];
    int end, status = parse(&e, &ingest_cmd, argc, argv, &end);
    if (status != TG_CLI_GO_ON)
        return status;
    if (end >= argc && !e.cfg_path)
        return tg_cli_usage_error(&ingest_cmd);
    status = env_open(&e);
    if (status)
        goto out;
    status = 1;
    if (end >= argc && e.cfg->n_kb_paths == 0) {
        fprintf(stderr, "trustgate kb ingest: no PATH given and no kb.paths in %s\n", e.cfg_path);
        goto out;
    }
    /* the paths given, else kb.paths (resolved against the config's folder) */
    size_t np = end < argc ? (size_t)(argc - end) : e.cfg->n_kb_paths;
    for (size_t i = 0; i < np; i++) {
        const char *p = end < argc ? argv[end + (int)i] : e.cfg->kb_paths[i];
        if (tg_kb_ingest(e.kb, p, &rep, err, sizeof(err))) {
            fprintf(stderr, "trustgate kb ingest: %s\n", err);
            goto out;
        }
    }
    if (e.glossary && tg_kb_glossary_load(e.kb, e.glossary, err, sizeof(err))) {
        fprintf(stderr, "trustgate kb ingest: %s\n", err);
        goto out;
    }
    int rc = tg_kb_save(e.kb);
    if (!rc)
        rc = tg_kb_stats(e.kb, &st);
    if (rc) {
        fprintf(stderr, "trustgate kb ingest: saving to %s failed: %s\n", e.uri, tg_err_str(rc));
        goto out;
    }
    if (e.as_json) {
        json_t *o = json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:s}", "added",
            (json_int_t)rep.added, "updated", (json_int_t)rep.updated, "removed",
            (json_int_t)rep.removed, "skipped", (json_int_t)rep.skipped, "documents_made",
            (json_int_t)rep.docs, "chunks_made", (json_int_t)rep.chunks, "total", "documents",
            (json_int_t)st.documents, "chunks", (json_int_t)st.chunks, "terms",
            (json_int_t)st.terms, "glossary", (json_int_t)st.glossary, "store", e.uri);
        char *s = o ? tg_json_dumps(o, JSON_INDENT(2)) : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        printf("files: %zu added, %zu updated, %zu removed, %zu skipped (%zu documents, %zu "
               "chunks made)\n",
               rep.added, rep.updated, rep.removed, rep.skipped, rep.docs, rep.chunks);
        printf("knowledge base: %zu documents, %zu chunks, %zu terms, %zu glossary entries "
               "in %s\n",
               st.documents, st.chunks, st.terms, st.glossary, e.uri);
    }
    status = 0;
out:
    env_close(&e);
    return status;
}

/* The text on one line, cut to at most max code points. */
static void print_snippet(const char *s, size_t max)
{
    size_t n = 0;
    for (const char *p = s; *p; p++) {
        if (((unsigned char)*p & 0xC0) != 0x80 && n++ == max) {
            fputs("...", stdout);
            break;
        }
        putchar(*p == '\n' || *p == '\r' || *p == '\t' ? ' ' : *p);
    }
    putchar('\n');
}

/* The n strings appended to the array under key in o.  TG_OK or TG_E_NOMEM. */
static int push_strings(json_t *o, const char *key, const char *const *strs, size_t n)
{
    json_t *a = json_object_get(o, key);
    int rc = a ? TG_OK : TG_E_NOMEM;
    for (size_t i = 0; !rc && i < n; i++)
        rc = tg_json_push(a, json_string(strs[i]));
    return rc;
}

/* The glossary terms of r as [{term, definition, synonyms, includes,
 * excludes}]; NULL when out of memory. */
static json_t *glossary_json(struct tg_kb *kb, const struct tg_kb_result *r)
{
    json_t *a = json_array();
    int rc = a ? TG_OK : TG_E_NOMEM;
    for (size_t i = 0; !rc && i < r->n_glossary; i++) {
        const struct tg_kb_term *t = tg_kb_glossary_get(kb, r->glossary[i]);
        json_t *o = json_pack("{s:s, s:s, s:[], s:[], s:[]}", "term", t->term, "definition",
                              t->definition, "synonyms", "includes", "excludes");
        rc = push_strings(o, "synonyms", t->synonyms, t->n_synonyms);
        if (!rc)
            rc = push_strings(o, "includes", t->includes, t->n_includes);
        if (!rc)
            rc = push_strings(o, "excludes", t->excludes, t->n_excludes);
        if (rc)
            json_decref(o);
        else
            rc = tg_json_push(a, o);
    }
    if (rc) {
        json_decref(a);
        a = NULL;
    }
    return a;
}

/* The hits of r, each with the glossary, as one JSON array on stdout.  0,
 * or 1 with the reason on stderr when out of memory. */
static int search_json(struct tg_kb *kb, const struct tg_kb_result *r)
{
    json_t *arr = json_array();
    json_t *gl = glossary_json(kb, r);
    int rc = arr && gl ? TG_OK : TG_E_NOMEM;
    for (size_t i = 0; !rc && i < r->n; i++) {
        struct tg_kb_chunk c;
        char cid[4200];
        if (tg_kb_chunk_get(kb, r->hits[i].chunk, &c))
            continue;
        snprintf(cid, sizeof(cid), "%s#%u", c.doc_id, c.ordinal);
        rc = tg_json_push(arr, json_pack("{s:I, s:f, s:s, s:s, s:s, s:s, s:s, s:s, s:O}", "rank",
                                         (json_int_t)i + 1, "score", r->hits[i].score, "source",
                                         c.source, "title", c.title, "chunk", cid, "text", c.text,
                                         "heading", c.heading, "doc_id", c.doc_id, "glossary", gl));
    }
    json_decref(gl);
    char *s = rc ? NULL : tg_json_dumps(arr, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    json_decref(arr);
    if (!s) {
        fprintf(stderr, "trustgate kb search: out of memory\n");
        return 1;
    }
    printf("%s\n", s);
    free(s);
    return 0;
}

static int kb_search(int argc, char **argv)
{
    struct kb_env e = {.k = 10};
    struct tg_kb_result r;
    char *q = NULL;
    int end, status = parse(&e, &search_cmd, argc, argv, &end);
    if (status != TG_CLI_GO_ON)
        return status;
    tg_kb_result_init(&r);
    status = env_open(&e);
    if (status)
        goto out;
    status = 1;
    q = tg_cli_join_args(argc - end, argv + end);
    int rc = q ? tg_kb_search(e.kb, q, strlen(q), (size_t)e.k, 0, &r) : TG_E_NOMEM;
    if (rc) {
        fprintf(stderr, "trustgate kb search: %s\n", tg_err_str(rc));
        goto out;
    }
    if (e.as_json) {
        if (search_json(e.kb, &r))
            goto out;
    } else {
        for (size_t i = 0; i < r.n_glossary; i++) {
            const struct tg_kb_term *t = tg_kb_glossary_get(e.kb, r.glossary[i]);
            printf("glossary: %s%s%s\n", t->term, *t->definition ? " - " : "", t->definition);
        }
        if (!r.n)
            printf("no matching chunks\n");
        for (size_t i = 0; i < r.n; i++) {
            struct tg_kb_chunk c;
            if (tg_kb_chunk_get(e.kb, r.hits[i].chunk, &c))
                continue;
            /* The heading path usually starts with the title (the "# " heading). */
            bool dup = *c.title && tg_str_has_prefix(c.heading, c.title);
            const char *title = dup ? "" : c.title;
            printf("%2zu. %8.4f  %s%s%s%s%s\n    ", i + 1, r.hits[i].score,
                   *c.source ? c.source : c.doc_id, *title || *c.heading ? "  " : "", title,
                   *title && *c.heading ? " > " : "", c.heading);
            print_snippet(c.text, 160);
        }
    }
    status = 0;
out:
    tg_free(q);
    tg_kb_result_free(&r);
    env_close(&e);
    return status;
}

static const char *origin_name(enum tg_kb_index_origin o)
{
    return o == TG_KB_INDEX_LOADED ? "loaded" : o == TG_KB_INDEX_REBUILT ? "rebuilt" : "new";
}

static int kb_stats(int argc, char **argv)
{
    struct kb_env e = {0};
    struct tg_kb_stats st;
    int status = parse(&e, &stats_cmd, argc, argv, NULL);
    if (status != TG_CLI_GO_ON)
        return status;
    status = env_open(&e);
    if (status)
        goto out;
    status = 1;
    if (tg_kb_stats(e.kb, &st))
        goto out;
    if (e.as_json) {
        json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:s, s:s}", "sources",
                              (json_int_t)st.sources, "documents", (json_int_t)st.documents,
                              "chunks", (json_int_t)st.chunks, "terms", (json_int_t)st.terms,
                              "postings", (json_int_t)st.postings, "text_bytes",
                              (json_int_t)st.text_bytes, "index_bytes", (json_int_t)st.index_bytes,
                              "glossary", (json_int_t)st.glossary, "avg_chunk_tokens",
                              st.avg_tokens, "index", origin_name(st.origin), "store", e.uri);
        char *s = o ? tg_json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) : NULL;
        json_decref(o);
        if (!s)
            goto out;
        printf("%s\n", s);
        free(s);
    } else {
        printf("store           %s\n"
               "sources         %zu\n"
               "documents       %zu\n"
               "chunks          %zu\n"
               "terms           %zu\n"
               "postings        %zu\n"
               "text bytes      %zu\n"
               "index bytes     %zu\n"
               "glossary        %zu entries\n"
               "chunk length    %.1f tokens (mean)\n"
               "index           %s\n",
               e.uri, st.sources, st.documents, st.chunks, st.terms, st.postings, st.text_bytes,
               st.index_bytes, st.glossary, st.avg_tokens, origin_name(st.origin));
    }
    status = 0;
out:
    env_close(&e);
    return status;
}

int tg_cli_kb(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        kb_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "ingest") == 0)
        return kb_ingest(argc - 1, argv + 1);
    if (strcmp(argv[1], "search") == 0)
        return kb_search(argc - 1, argv + 1);
    if (strcmp(argv[1], "stats") == 0)
        return kb_stats(argc - 1, argv + 1);
    fprintf(stderr, "trustgate kb: unknown command '%s'\n\n", argv[1]);
    kb_usage(stderr);
    return 2;
}
