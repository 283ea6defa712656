/*
 * test_kb.c - the knowledge base: chunking, BM25 against a hand-computed
 * example, incremental ingest of real files, persistence through a real
 * SQLite store (loaded without tokenizing, rebuilt when damaged),
 * Traditional queries over Simplified text, glossary expansion, FAQ
 * pairs and the intents a deployment labels its articles and pairs with.  All data is small and inline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kb/kb.h"
#include "store/store.h"

static struct tg_text *tx;

static int group_setup(void **state)
{
    (void)state;
    char err[256];
    return tg_text_open(&tx, err, sizeof(err)) == TG_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    tg_text_close(tx);
    return 0;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static struct tg_kb *open_kb(const struct tg_kb_opts *o, struct tg_store *st)
{
    struct tg_kb *kb = NULL;
    char err[256] = "";
    int rc = tg_kb_open(o, tx, st, &kb, err, sizeof(err));
    if (rc)
        fprintf(stderr, "tg_kb_open: %s\n", err);
    assert_int_equal(rc, TG_OK);
    return kb;
}

/* The doc id of the best hit, or "" when there is none. */
static const char *top_doc(struct tg_kb *kb, const char *q, unsigned flags)
{
    static char id[256];
    struct tg_kb_result r;
    struct tg_kb_chunk c;
    tg_kb_result_init(&r);
    assert_int_equal(tg_kb_search(kb, q, strlen(q), 5, flags, &r), TG_OK);
    id[0] = '\0';
    if (r.n) {
        assert_int_equal(tg_kb_chunk_get(kb, r.hits[0].chunk, &c), TG_OK);
        snprintf(id, sizeof(id), "%s", c.doc_id);
    }
    tg_kb_result_free(&r);
    return id;
}

static size_t count_cp(const char *s, size_t a, size_t b)
{
    size_t n = 0;
    for (size_t i = a; i < b; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* ------------------------------------------------------------ chunking */

static void test_split_headings(void **state)
{
    (void)state;
    const char *md = "# Guide\n"
                     "Intro line.\n"
                     "## Claims\n"
                     "How to claim: send the form within thirty days of the event. "
                     "We pay within ten working days after approval.\n"
                     "### Documents\n"
                     "ID card and invoice.\n"
                     "## Premiums\n"
                     "Premiums are paid yearly, by bank transfer or card.\n"
                     "```\n# not a heading\n```\n";
    struct tg_kb_piece *p = NULL;
    size_t n = 0;
    assert_int_equal(tg_kb_split(md, strlen(md), 200, 40, &p, &n), TG_OK);
    /* "Intro line." is tiny (< 200/16) and joins the Claims section; Documents
     * (###) fits with Claims; Premiums (##) starts its own chunk. */
    assert_int_equal(n, 2);
    assert_string_equal(p[0].heading, "Guide");
    assert_true(strncmp(md + p[0].start, "Intro line.", 11) == 0);
    assert_non_null(strstr(md + p[0].start, "ID card"));
    assert_true(p[0].end <= (uint32_t)(strstr(md, "## Premiums") - md));
    assert_string_equal(p[1].heading, "Guide > Premiums");
    assert_true(strncmp(md + p[1].start, "Premiums are paid", 17) == 0);
    /* the fenced "# not a heading" stays inside the Premiums chunk */
    assert_true(p[1].end == strlen(md) - 1);
    tg_kb_pieces_free(p, n);

    /* Two sections that are not tiny never share a chunk. */
    const char *md2 = "## A\nAlpha alpha alpha alpha alpha alpha alpha.\n"
                      "## B\nBeta beta beta beta beta beta beta beta.\n";
    assert_int_equal(tg_kb_split(md2, strlen(md2), 200, 40, &p, &n), TG_OK);
    assert_int_equal(n, 2);
    assert_string_equal(p[0].heading, "A");
    assert_string_equal(p[1].heading, "B");
    assert_null(memchr(md2 + p[0].start, 'B', p[0].end - p[0].start));
    tg_kb_pieces_free(p, n);

    assert_int_equal(tg_kb_split(" \n\n ", 4, 200, 40, &p, &n), TG_OK);
    assert_int_equal(n, 0);
    tg_kb_pieces_free(p, n);
}

static void test_split_sentences_overlap(void **state)
{
    (void)state;
    char text[4096] = "";
    size_t len = 0;
    for (int i = 0; i < 30; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "第%02d句保险条款内容。", i);
    const size_t target = 60, overlap = 15;
    struct tg_kb_piece *p = NULL;
    size_t n = 0;
    assert_int_equal(tg_kb_split(text, len, target, overlap, &p, &n), TG_OK);
    assert_true(n >= 5);
    for (size_t i = 0; i < n; i++) {
        /* whole sentences: each chunk starts at "第" and ends with "。" */
        assert_true(strncmp(text + p[i].start, "第", 3) == 0);
        assert_true(strncmp(text + p[i].end - 3, "。", 3) == 0);
        assert_true(count_cp(text, p[i].start, p[i].end) <= target);
        if (i) {
            /* overlap: the next chunk starts inside the previous one, by at most overlap chars */
            assert_true(p[i].start > p[i - 1].start);
            assert_true(p[i].start < p[i - 1].end);
            assert_true(count_cp(text, p[i].start, p[i - 1].end) <= overlap);
        }
    }
    assert_int_equal(p[0].start, 0);
    assert_int_equal(p[n - 1].end, len);
    tg_kb_pieces_free(p, n);

    /* One sentence longer than the target is cut at character boundaries. */
    char run[1024] = "";
    len = 0;
    for (int i = 0; i < 100; i++)
        len += (size_t)snprintf(run + len, sizeof(run) - len, "险");
    assert_int_equal(tg_kb_split(run, len, 40, 10, &p, &n), TG_OK);
    assert_true(n >= 3);
    for (size_t i = 0; i < n; i++) {
        assert_true(count_cp(run, p[i].start, p[i].end) <= 40);
        assert_int_equal(p[i].start % 3, 0);
    }
    assert_int_equal(p[n - 1].end, len);
    tg_kb_pieces_free(p, n);
}

/* ------------------------------------------------------------ BM25 */

static void test_bm25_hand_computed(void **state)
{
    (void)state;
    struct tg_kb_opts o;
    tg_kb_opts_init(&o);
    o.token_flags = TG_TOKEN_WORDS;
    struct tg_kb *kb = open_kb(&o, NULL);
    assert_int_equal(tg_kb_add_doc(kb, "d1", NULL, "apple banana apple", 18, NULL), TG_OK);
    assert_int_equal(tg_kb_add_doc(kb, "d2", NULL, "banana cherry", 13, NULL), TG_OK);
    assert_int_equal(tg_kb_add_doc(kb, "d3", NULL, "cherry cherry cherry date", 25, NULL), TG_OK);

    /* N = 3, |d| = 3, 2, 4, avgdl = 3, k1 = 1.2, b = 0.75.
     * apple: n = 1, idf = ln(1 + 2.5/1.5); cherry: n = 2, idf = ln(1 + 1.5/2.5). */
    const double k1 = 1.2, b = 0.75, avgdl = 3.0;
    const double idf_apple = log(1.0 + (3 - 1 + 0.5) / (1 + 0.5));
    const double idf_cherry = log(1.0 + (3 - 2 + 0.5) / (2 + 0.5));
    const double s1 = idf_apple * 2 * (k1 + 1) / (2 + k1 * (1 - b + b * 3 / avgdl));
    const double s2 = idf_cherry * 1 * (k1 + 1) / (1 + k1 * (1 - b + b * 2 / avgdl));
    const double s3 = idf_cherry * 3 * (k1 + 1) / (3 + k1 * (1 - b + b * 4 / avgdl));
    /* the same numbers worked out by hand */
    assert_true(fabs(s1 - 0.98083 * 2.2 / 3.2 * 2) < 1e-4);
    assert_true(fabs(s3 - 0.47000 * 6.6 / 4.5) < 1e-4);

    struct tg_kb_result r;
    struct tg_kb_chunk c;
    tg_kb_result_init(&r);
    assert_int_equal(tg_kb_search(kb, "Apple cherry", 12, 10, 0, &r), TG_OK);
    assert_int_equal(r.n, 3);
    const char *want[] = {"d1", "d3", "d2"};
    const double score[] = {s1, s3, s2};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(tg_kb_chunk_get(kb, r.hits[i].chunk, &c), TG_OK);
        assert_string_equal(c.doc_id, want[i]);
        assert_true(fabs(r.hits[i].score - score[i]) < 1e-9);
    }
    /* k limits the hits; a query sharing no term finds nothing */
    assert_int_equal(tg_kb_search(kb, "cherry", 6, 1, 0, &r), TG_OK);
    assert_int_equal(r.n, 1);
    assert_true(fabs(r.hits[0].score - s3) < 1e-9);
    assert_int_equal(tg_kb_search(kb, "kiwi", 4, 10, 0, &r), TG_OK);
    assert_int_equal(r.n, 0);

    struct tg_kb_stats st;
    assert_int_equal(tg_kb_stats(kb, &st), TG_OK);
    assert_int_equal(st.documents, 3);
    assert_int_equal(st.chunks, 3);
    assert_int_equal(st.terms, 4);
    assert_int_equal(st.postings, 6);
    assert_true(fabs(st.avg_tokens - 3.0) < 1e-12);
    tg_kb_result_free(&r);
    tg_kb_close(kb);
}

/* ------------------------------------------------------------ ingest */

static void test_incremental_ingest(void **state)
{
    (void)state;
    char dir[] = "/tmp/tg-kb-XXXXXX", sub[600], err[512];
    assert_non_null(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_file(dir, "a.md", "# Claims\nSend the claim form within thirty days.\n");
    write_file(dir, "b.md", "# Hesitation\nYou may cancel within fifteen days.\n");
    write_file(dir, "sub/c.txt", "Premiums are paid by bank transfer.\n");
    write_file(dir, "ignored.pdf", "binary");

    struct tg_kb *kb = open_kb(NULL, NULL);
    struct tg_kb_report rep = {0};
    assert_int_equal(tg_kb_ingest(kb, dir, &rep, err, sizeof(err)), TG_OK);
    assert_int_equal(rep.added, 3);
    assert_int_equal(rep.docs, 3);
    assert_int_equal(rep.updated + rep.removed + rep.skipped, 0);
    char id[700];
    snprintf(id, sizeof(id), "%s/b.md", dir);
    assert_string_equal(top_doc(kb, "cancel fifteen days", 0), id);

    memset(&rep, 0, sizeof(rep));
    uint64_t before = 0;
    struct tg_kb_stats st;
    assert_int_equal(tg_kb_stats(kb, &st), TG_OK);
    before = st.tokenized;
    assert_int_equal(tg_kb_ingest(kb, dir, &rep, err, sizeof(err)), TG_OK);
    assert_int_equal(rep.skipped, 3);
    assert_int_equal(rep.added + rep.updated + rep.removed, 0);
    assert_int_equal(tg_kb_stats(kb, &st), TG_OK);
    assert_int_equal(st.tokenized, before);

    write_file(dir, "a.md", "# Claims\nSend the claim form within ninety days by post.\n");
    snprintf(sub, sizeof(sub), "%s/b.md", dir);
    assert_int_equal(unlink(sub), 0);
    memset(&rep, 0, sizeof(rep));
    assert_int_equal(tg_kb_ingest(kb, dir, &rep, err, sizeof(err)), TG_OK);
    assert_int_equal(rep.updated, 1);
    assert_int_equal(rep.removed, 1);
    assert_int_equal(rep.skipped, 1);
    assert_int_equal(rep.added, 0);
    assert_int_equal(tg_kb_stats(kb, &st), TG_OK);
    assert_int_equal(st.sources, 2);
    assert_int_equal(st.documents, 2);
    assert_int_equal(st.tokenized, before + 1); /* only the changed file */
    snprintf(id, sizeof(id), "%s/a.md", dir);
    assert_string_equal(top_doc(kb, "ninety", 0), id);
    assert_string_equal(top_doc(kb, "thirty", 0), "");
    assert_string_equal(top_doc(kb, "fifteen", 0), "");

    /* the title comes from the first heading, else from the file name */
    struct tg_kb_result r;
    struct tg_kb_chunk c;
    tg_kb_result_init(&r);
    assert_int_equal(tg_kb_search(kb, "bank transfer", 13, 1, 0, &r), TG_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(tg_kb_chunk_get(kb, r.hits[0].chunk, &c), TG_OK);
    assert_string_equal(c.title, "c");
    snprintf(id, sizeof(id), "%s/sub/c.txt", dir);
    assert_string_equal(c.source, id);
    tg_kb_result_free(&r);

    /* a deleted file named directly is removed too */
    assert_int_equal(unlink(id), 0);
    memset(&rep, 0, sizeof(rep));
    assert_int_equal(tg_kb_ingest(kb, id, &rep, err, sizeof(err)), TG_OK);
    assert_int_equal(rep.removed, 1);
    assert_int_equal(tg_kb_ingest(kb, id, &rep, err, sizeof(err)), TG_E_NOTFOUND);
    tg_kb_close(kb);
    rm_rf(dir);
}

static void test_faq_and_jsonl(void **state)
{
    (void)state;
    char dir[] = "/tmp/tg-kb-XXXXXX", path[600], err[512];
    assert_non_null(mkdtemp(dir));
    write_file(dir, "faq.jsonl",
               "{\"id\": \"f1\", \"question\": \"犹豫期有多长？\", \"answer\": \"十五天。\"}\n"
               "\n"
               "{\"id\": 7, \"title\": \"理赔\", \"text\": \"理赔材料包括身份证和发票。\"}\n"
               "{\"question\": \"可以退保吗？\", \"answer\": \"可以，退还现金价值。\"}\n");
    snprintf(path, sizeof(path), "%s/faq.jsonl", dir);
    struct tg_kb *kb = open_kb(NULL, NULL);
    struct tg_kb_report rep = {0};
    assert_int_equal(tg_kb_ingest(kb, path, &rep, err, sizeof(err)), TG_OK);
    assert_int_equal(rep.added, 1);
    assert_int_equal(rep.docs, 3);

    struct tg_kb_result r;
    struct tg_kb_chunk c;
    tg_kb_result_init(&r);
    assert_int_equal(tg_kb_search(kb, "犹豫期多长", strlen("犹豫期多长"), 3, 0, &r), TG_OK);
    assert_true(r.n >= 1);
    assert_int_equal(tg_kb_chunk_get(kb, r.hits[0].chunk, &c), TG_OK);
    assert_string_equal(c.doc_id, "f1");
    assert_string_equal(c.question, "犹豫期有多长？");
    assert_string_equal(c.answer, "十五天。");
    assert_string_equal(c.source, path);
    assert_string_equal(top_doc(kb, "理赔材料", 0), "7");
    char want[700];
    snprintf(want, sizeof(want), "%s:4", path);
    assert_string_equal(top_doc(kb, "退保", 0), want);

    assert_int_equal(tg_kb_add_faq(kb, "f2", "How do I pay?", "By card.", "web"), TG_OK);
    assert_int_equal(tg_kb_search(kb, "pay", 3, 3, 0, &r), TG_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(tg_kb_chunk_get(kb, r.hits[0].chunk, &c), TG_OK);
    assert_string_equal(c.question, "How do I pay?");
    assert_string_equal(c.answer, "By card.");
    assert_string_equal(c.text, "How do I pay?\nBy card.");

    /* a bad line names FILE:LINE and keeps the previous version */
    write_file(dir, "faq.jsonl", "{\"id\": \"g\", \"text\": \"new\"}\n{\"question\": 3}\n");
    memset(&rep, 0, sizeof(rep));
    assert_int_equal(tg_kb_ingest(kb, path, &rep, err, sizeof(err)), TG_E_PARSE);
    snprintf(want, sizeof(want), "%s:2:", path);
    assert_non_null(strstr(err, want));
    assert_string_equal(top_doc(kb, "理赔材料", 0), "7");
    tg_kb_result_free(&r);
    tg_kb_close(kb);
    rm_rf(dir);
}

/* ------------------------------------------------------------ persistence */

static const char *const corpus[][2] = {
    {"hesitation", "# 犹豫期\n犹豫期为十五天，期间解除合同可全额退还保险费。"},
    {"claims",
     "# 理赔\n## 材料\n申请理赔需要提供身份证、病历和发票。\n## 时效\n出险后三十日内报案。"},
    {"premium", "# 保费\n保险费可以按年交或按月交，宽限期六十天。"},
};

static void add_corpus(struct tg_kb *kb)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(corpus); i++)
        assert_int_equal(
            tg_kb_add_doc(kb, corpus[i][0], NULL, corpus[i][1], strlen(corpus[i][1]), "manual.md"),
            TG_OK);
}

static const char *const queries[] = {"犹豫期多少天", "理赔要什么材料", "保费怎么交", "报案时效"};

struct snapshot {
    size_t n[4];
    uint32_t chunk[4][5];
    double score[4][5];
};

static void snap(struct tg_kb *kb, struct snapshot *s)
{
    struct tg_kb_result r;
    tg_kb_result_init(&r);
    for (size_t q = 0; q < 4; q++) {
        assert_int_equal(tg_kb_search(kb, queries[q], strlen(queries[q]), 5, 0, &r), TG_OK);
        s->n[q] = r.n;
        for (size_t i = 0; i < r.n; i++) {
            s->chunk[q][i] = r.hits[i].chunk;
            s->score[q][i] = r.hits[i].score;
        }
    }
    tg_kb_result_free(&r);
}

static void same(const struct snapshot *a, const struct snapshot *b)
{
    for (size_t q = 0; q < 4; q++) {
        assert_true(a->n[q] > 0);
        assert_int_equal(a->n[q], b->n[q]);
        for (size_t i = 0; i < a->n[q]; i++) {
            assert_int_equal(a->chunk[q][i], b->chunk[q][i]);
            assert_true(fabs(a->score[q][i] - b->score[q][i]) < 1e-12);
        }
    }
}

static struct tg_store *open_store(const char *dir)
{
    char uri[600], err[256];
    struct tg_store *st = NULL;
    snprintf(uri, sizeof(uri), "sqlite:%s/trustgate.db", dir);
    assert_int_equal(tg_store_open(uri, &st, err, sizeof(err)), TG_OK);
    return st;
}

static void test_persist_roundtrip(void **state)
{
    (void)state;
    char dir[] = "/tmp/tg-kb-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct snapshot a, b;
    struct tg_kb_stats st;

    struct tg_store *store = open_store(dir);
    struct tg_kb *kb = open_kb(NULL, store);
    add_corpus(kb);
    assert_int_equal(tg_kb_save(kb), TG_OK);
    snap(kb, &a);
    tg_kb_close(kb);
    tg_store_close(store);

    store = open_store(dir);
    kb = open_kb(NULL, store);
    assert_int_equal(tg_kb_stats(kb, &st), TG_OK);
    assert_int_equal(st.origin, TG_KB_INDEX_LOADED);
    assert_int_equal(st.tokenized, 0);
    assert_int_equal(st.documents, 3);
    snap(kb, &b);
    same(&a, &b);
    assert_int_equal(tg_kb_stats(kb, &st), TG_OK);
    assert_int_equal(st.tokenized, 0); /* searching tokenizes only the query */

    /* a change after a load tokenizes only what is new */
    const char *extra = "# 保单贷款\n保单贷款最高为现金价值的八成。";
    assert_int_equal(tg_kb_add_doc(kb, "loan", NULL, extra, strlen(extra), NULL), TG_OK);
    assert_int_equal(tg_kb_stats(kb, &st), TG_OK);
    assert_int_equal(st.tokenized, 1);
    assert_string_equal(top_doc(kb, "保单贷款", 0), "loan");
    assert_string_equal(top_doc(kb, "犹豫期多少天", 0), "hesitation");
    assert_int_equal(tg_kb_remove_doc(kb, "loan"), TG_OK);
    assert_int_equal(tg_kb_remove_doc(kb, "loan"), TG_E_NOTFOUND);
    snap(kb, &b);
    same(&a, &b);
    tg_kb_close(kb);

    /* the same chunks opened with other token flags: the index is rebuilt */
    struct tg_kb_opts o;
    tg_kb_opts_init(&o);
    o.token_flags = TG_TOKEN_BIGRAMS;
    kb = open_kb(&o, store);
    assert_int_equal(tg_kb_stats(kb, &st), TG_OK);
    assert_int_equal(st.origin, TG_KB_INDEX_REBUILT);
    tg_kb_close(kb);
    tg_store_close(store);
    rm_rf(dir);
}

static void test_corrupt_blob_rebuilt(void **state)
{
    (void)state;
    char dir[] = "/tmp/tg-kb-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct snapshot a, b;
    struct tg_kb_stats st;
    struct tg_store *store = open_store(dir);
    struct tg_kb *kb = open_kb(NULL, store);
    add_corpus(kb);
    assert_int_equal(tg_kb_save(kb), TG_OK);
    snap(kb, &a);
    tg_kb_close(kb);

    char *data = NULL;
    size_t len = 0;
    assert_int_equal(tg_store_blob_get(store, "kb/index", &data, &len), TG_OK);
    assert_true(len > 100);
    data[len / 2] ^= 0x5a;
    assert_int_equal(tg_store_blob_put(store, "kb/index", data, len), TG_OK);
    tg_free(data);
    assert_int_equal(tg_store_flush(store), TG_OK);

    kb = open_kb(NULL, store);
    assert_int_equal(tg_kb_stats(kb, &st), TG_OK);
    assert_int_equal(st.origin, TG_KB_INDEX_REBUILT);
    assert_int_equal(st.tokenized, st.chunks);
    snap(kb, &b);
    same(&a, &b);
    tg_kb_close(kb);

    /* the rebuilt index was saved: the next open loads it */
    kb = open_kb(NULL, store);
    assert_int_equal(tg_kb_stats(kb, &st), TG_OK);
    assert_int_equal(st.origin, TG_KB_INDEX_LOADED);
    tg_kb_close(kb);

    /* a missing index blob is rebuilt as well */
    assert_int_equal(tg_store_blob_delete(store, "kb/index"), TG_OK);
    assert_int_equal(tg_store_flush(store), TG_OK);
    kb = open_kb(NULL, store);
    assert_int_equal(tg_kb_stats(kb, &st), TG_OK);
    assert_int_equal(st.origin, TG_KB_INDEX_REBUILT);
    snap(kb, &b);
    same(&a, &b);
    tg_kb_close(kb);

    /* a damaged docs blob cannot be rebuilt from: the knowledge base starts empty */
    assert_int_equal(tg_store_blob_put(store, "kb/docs", "junk", 4), TG_OK);
    assert_int_equal(tg_store_flush(store), TG_OK);
    kb = open_kb(NULL, store);
    assert_int_equal(tg_kb_stats(kb, &st), TG_OK);
    assert_int_equal(st.documents, 0);
    tg_kb_close(kb);
    tg_store_close(store);
    rm_rf(dir);
}

/* ------------------------------------------------------------ language, glossary */

static void test_traditional_finds_simplified(void **state)
{
    (void)state;
    struct tg_kb *kb = open_kb(NULL, NULL);
    add_corpus(kb);
    assert_string_equal(top_doc(kb, "猶豫期有幾天？", 0), "hesitation");
    assert_string_equal(top_doc(kb, "申請理賠需要哪些證件", 0), "claims");
    assert_string_equal(top_doc(kb, "保險費可以按月繳嗎", 0), "premium");
    tg_kb_close(kb);
}

static void test_glossary_expansion(void **state)
{
    (void)state;
    char dir[] = "/tmp/tg-kb-XXXXXX", path[600], err[512] = "";
    assert_non_null(mkdtemp(dir));
    write_file(dir, "glossary.yaml",
               "- term: 退保\n"
               "  definition: 投保人在合同有效期内解除保险合同。\n"
               "  synonyms: [解除合同, surrender]\n"
               "  includes: [犹豫期后解除]\n"
               "  excludes: [犹豫期内撤单]\n"
               "- term: GMV\n"
               "  definition: gross merchandise value\n"
               "- term: 理赔\n"
               "  synonyms: [claim, 保険金請求]\n"
               "  cite: false\n");
    snprintf(path, sizeof(path), "%s/glossary.yaml", dir);
    struct tg_kb *kb = open_kb(NULL, NULL);
    const char *a = "投保人可以随时解除合同，我们退还保单的现金价值。";
    const char *b = "理赔需要提供身份证和医院发票。";
    assert_int_equal(tg_kb_add_doc(kb, "cancel", NULL, a, strlen(a), NULL), TG_OK);
    assert_int_equal(tg_kb_add_doc(kb, "claims", NULL, b, strlen(b), NULL), TG_OK);
    assert_int_equal(tg_kb_glossary_load(kb, path, err, sizeof(err)), TG_OK);
    assert_int_equal(tg_kb_glossary_count(kb), 3);

    /* a translation finds the Chinese article from English or Japanese words,
     * and is not cited */
    struct tg_kb_result tr;
    tg_kb_result_init(&tr);
    const unsigned tr_flags = TG_KB_SEARCH_TRANSLATE;
    assert_string_equal(top_doc(kb, "what do I need for a claim", 0), "");
    assert_string_equal(top_doc(kb, "what do I need for a claim", tr_flags), "claims");
    assert_string_equal(top_doc(kb, "保険金請求に必要なもの", tr_flags), "claims");
    assert_int_equal(tg_kb_search(kb, "claim", 5, 5, tr_flags, &tr), TG_OK);
    assert_int_equal(tr.n, 1);
    assert_int_equal(tr.n_glossary, 0);
    tg_kb_result_free(&tr);

    const char *q = "退保能拿回多少钱";
    assert_string_equal(top_doc(kb, q, TG_KB_SEARCH_NO_GLOSSARY), "");
    struct tg_kb_result r;
    struct tg_kb_chunk c;
    tg_kb_result_init(&r);
    assert_int_equal(tg_kb_search(kb, q, strlen(q), 5, 0, &r), TG_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(tg_kb_chunk_get(kb, r.hits[0].chunk, &c), TG_OK);
    assert_string_equal(c.doc_id, "cancel");
    assert_int_equal(r.n_glossary, 1);
    const struct tg_kb_term *t = tg_kb_glossary_get(kb, r.glossary[0]);
    assert_non_null(t);
    assert_string_equal(t->term, "退保");
    assert_int_equal(t->n_synonyms, 2);
    assert_string_equal(t->includes[0], "犹豫期后解除");
    assert_string_equal(t->excludes[0], "犹豫期内撤单");

    /* Latin synonyms match whole words only */
    assert_int_equal(tg_kb_search(kb, "surrendered", 11, 5, 0, &r), TG_OK);
    assert_int_equal(r.n_glossary, 0);
    assert_int_equal(tg_kb_search(kb, "Surrender value", 15, 5, 0, &r), TG_OK);
    assert_int_equal(r.n_glossary, 1);
    assert_int_equal(r.n, 1);
    assert_int_equal(tg_kb_search(kb, "解除合同", strlen("解除合同"), 5, 0, &r), TG_OK);
    assert_int_equal(r.n_glossary, 1);
    /* a query the caller normalized already (as the pipeline does) is searched
     * as it is, the glossary looking at it and not at the previous query */
    assert_int_equal(tg_kb_norm_flags(kb), TG_NORM_T2S);
    assert_int_equal(tg_kb_search(kb, "surrendered", 11, 5, 0, &r), TG_OK);
    assert_int_equal(r.n_glossary, 0);
    assert_int_equal(tg_kb_search(kb, "surrender value", 15, 5, TG_KB_SEARCH_NORMALIZED, &r),
                     TG_OK);
    assert_int_equal(r.n_glossary, 1);
    assert_int_equal(r.n, 1);
    tg_kb_result_free(&r);

    /* a bad entry names its line and keeps the glossary */
    write_file(dir, "glossary.yaml", "- term: A\n- definition: no term\n");
    assert_int_equal(tg_kb_glossary_load(kb, path, err, sizeof(err)), TG_E_CONFIG);
    snprintf(path, sizeof(path), "glossary.yaml:2:");
    assert_non_null(strstr(err, path));
    assert_int_equal(tg_kb_glossary_count(kb), 3);
    snprintf(path, sizeof(path), "%s/glossary.yaml", dir);
    write_file(dir, "glossary.yaml", "- term: A\n  cite: no way\n");
    assert_int_equal(tg_kb_glossary_load(kb, path, err, sizeof(err)), TG_E_CONFIG);
    assert_non_null(strstr(err, "cite"));
    tg_kb_close(kb);
    rm_rf(dir);
}

static void test_glossary_persisted(void **state)
{
    (void)state;
    char dir[] = "/tmp/tg-kb-XXXXXX", err[256];
    assert_non_null(mkdtemp(dir));
    struct tg_store *store = open_store(dir);
    struct tg_kb *kb = open_kb(NULL, store);
    json_t *list = json_loads("[{\"term\": \"保费\", \"synonyms\": [\"保险费\"]},"
                              " {\"term\": \"犹豫期\", \"synonyms\": [\"cooling-off\"], "
                              "\"cite\": false}]",
                              0, NULL);
    assert_int_equal(tg_kb_glossary_set(kb, list, err, sizeof(err)), TG_OK);
    json_decref(list);
    add_corpus(kb);
    assert_int_equal(tg_kb_save(kb), TG_OK);
    tg_kb_close(kb);
    kb = open_kb(NULL, store);
    assert_int_equal(tg_kb_glossary_count(kb), 2);
    assert_string_equal(tg_kb_glossary_get(kb, 0)->synonyms[0], "保险费");
    /* a translation stays one: it expands, and is not cited */
    struct tg_kb_result r;
    tg_kb_result_init(&r);
    assert_int_equal(tg_kb_search(kb, "cooling-off", 11, 5, TG_KB_SEARCH_TRANSLATE, &r), TG_OK);
    assert_true(r.n >= 1);
    assert_int_equal(r.n_glossary, 0);
    tg_kb_result_free(&r);
    tg_kb_close(kb);
    tg_store_close(store);
    rm_rf(dir);
}

/* ------------------------------------------------------------ key field */

/*
 * An FAQ pair asked in its own words ranks first even when an article
 * repeats the question's words more often; a section whose heading is the
 * question beats its document's other sections; a knowledge base without
 * keys ranks by BM25 alone (match 0).
 */
static void test_key_field_match(void **state)
{
    (void)state;
    struct tg_kb *kb = open_kb(NULL, NULL);
    const char *art = "# 犹豫期说明\n\n犹豫期内退保全额退还保费，犹豫期后退保只退现金价值。犹豫期内"
                      "可以无条件解除合同，犹豫期的规定适用于长期保单。\n\n"
                      "## 犹豫期多长\n\n自签收保单的次日起15日。\n\n"
                      "## 回访\n\n签收后本公司会在犹豫期内电话回访。\n";
    assert_int_equal(tg_kb_add_doc(kb, "cooling.md", NULL, art, strlen(art), NULL), TG_OK);
    assert_int_equal(tg_kb_add_faq(kb, "faq:1", "犹豫期是多久？", "签收保单次日起15日。", NULL),
                     TG_OK);
    assert_int_equal(tg_kb_add_faq(kb, "faq:2", "保费怎么交？", "可以按年或按月交。", NULL), TG_OK);
    assert_string_equal(top_doc(kb, "犹豫期是多久", 0), "faq:1");

    struct tg_kb_result r;
    struct tg_kb_chunk c;
    tg_kb_result_init(&r);
    assert_int_equal(tg_kb_search(kb, "犹豫期是多久", 18, 5, 0, &r), TG_OK);
    assert_true(r.n >= 2);
    assert_true(r.hits[0].match > 0.99 && r.hits[0].match <= 1.0);
    for (size_t i = 1; i < r.n; i++)
        assert_true(r.hits[i].match < r.hits[0].match);
    /* within the article, the section headed by the question comes first */
    assert_int_equal(tg_kb_search(kb, "犹豫期多长", 15, 1, TG_KB_SEARCH_PER_DOC, &r), TG_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(tg_kb_chunk_get(kb, r.hits[0].chunk, &c), TG_OK);
    assert_string_equal(c.doc_id, "cooling.md");
    assert_string_equal(c.heading, "犹豫期说明 > 犹豫期多长");
    tg_kb_result_free(&r);
    tg_kb_close(kb);

    /* no titles, headings or FAQ pairs: plain BM25 */
    kb = open_kb(NULL, NULL);
    assert_int_equal(tg_kb_add_doc(kb, "d1", NULL, "apple banana", 12, NULL), TG_OK);
    tg_kb_result_init(&r);
    assert_int_equal(tg_kb_search(kb, "apple", 5, 5, 0, &r), TG_OK);
    assert_int_equal(r.n, 1);
    assert_true(r.hits[0].match == 0.0);
    tg_kb_result_free(&r);
    tg_kb_close(kb);
}


/* ------------------------------------------------------------ intent labels */

/* The intent of the first chunk of doc whose heading path ends in heading. */
static const char *chunk_intent(struct tg_kb *kb, const char *doc, const char *heading)
{
    size_t n = tg_kb_chunk_count(kb);
    for (uint32_t i = 0; i < n; i++) {
        struct tg_kb_chunk c;
        if (tg_kb_chunk_get(kb, i, &c) || strcmp(c.doc_id, doc) != 0)
            continue;
        size_t hl = strlen(c.heading), wl = strlen(heading);
        if (hl >= wl && strcmp(c.heading + hl - wl, heading) == 0)
            return c.intent ? c.intent : "(none)";
    }
    return "(no chunk)";
}

static void test_intent_labels(void **state)
{
    (void)state;
    char dir[] = "/tmp/tg-kb-XXXXXX", a[600], f[600], err[512] = "";
    assert_non_null(mkdtemp(dir));
    /* sections long enough to be chunks of their own */
    char body[4096];
    snprintf(body, sizeof(body),
             "---\n"
             "# the article's labels\n"
             "intent: policy_coverage\n"
             "sections:\n"
             "  \"责任免除\": policy_exclusions\n"
             "  申请: 理赔: claim_process\n"
             "---\n"
             "# 安心意外险\n\n%s\n\n## 保什么\n\n%s\n\n## 责任免除\n\n%s\n\n### 高风险运动\n\n%s\n\n"
             "## 申请: 理赔\n\n%s\n",
             "安心意外险保障意外身故、伤残和意外医疗，适合18到60周岁的人投保，职业限一到四类。",
             "保障意外身故和伤残，保额十万到一百万元四档，意外医疗一万到五万元，免赔额一百元。",
             "酒后驾驶、斗殴、自杀、战争、核辐射导致的伤害不赔，被保险人故意犯罪的也不赔。",
             "潜水、跳伞、攀岩、滑雪、赛车等高风险运动造成的伤害不在保障范围之内，需加购附加险。",
             "出险后拨打热线报案，三十日内在App提交材料，审核通过后十个工作日内付款到账。");
    write_file(dir, "a.md", body);
    write_file(dir, "faq.jsonl",
               "{\"question\": \"滑雪受伤能赔吗？\", \"answer\": \"不能。\", \"intent\": "
               "\"policy_exclusions\"}\n"
               "{\"question\": \"怎么报案？\", \"answer\": \"拨打热线。\"}\n");
    snprintf(a, sizeof(a), "%s/a.md", dir);
    snprintf(f, sizeof(f), "%s/faq.jsonl", dir);
    struct tg_store *store = open_store(dir);
    struct tg_kb *kb = open_kb(NULL, store);
    struct tg_kb_report rep = {0};
    assert_int_equal(tg_kb_ingest(kb, dir, &rep, err, sizeof(err)), TG_OK);
    /* the block is not text: the title is the article's heading */
    assert_string_equal(top_doc(kb, "安心意外险", 0), a);
    assert_string_equal(chunk_intent(kb, a, "保什么"), "policy_coverage");
    assert_string_equal(chunk_intent(kb, a, "责任免除"), "policy_exclusions");
    /* a small subsection is joined to its section's chunk and shares its label */
    assert_string_equal(chunk_intent(kb, a, "高风险运动"), "(no chunk)");
    assert_string_equal(chunk_intent(kb, a, "申请: 理赔"), "claim_process");
    char id[640];
    snprintf(id, sizeof(id), "%s:1", f);
    assert_string_equal(chunk_intent(kb, id, ""), "policy_exclusions");
    snprintf(id, sizeof(id), "%s:2", f);
    assert_string_equal(chunk_intent(kb, id, ""), "(none)");
    /* kept with the index */
    assert_int_equal(tg_kb_save(kb), TG_OK);
    tg_kb_close(kb);
    kb = open_kb(NULL, store);
    assert_string_equal(chunk_intent(kb, a, "责任免除"), "policy_exclusions");

    /* a bad block fails the file with its line, and keeps the article as it was */
    write_file(dir, "a.md", "---\nintent: policy_coverage\ntopic: x\n---\n# 新\n新的正文。\n");
    assert_int_equal(tg_kb_ingest(kb, a, &rep, err, sizeof(err)), TG_E_PARSE);
    assert_non_null(strstr(err, "a.md:3:"));
    assert_string_equal(chunk_intent(kb, a, "责任免除"), "policy_exclusions");
    write_file(dir, "a.md", "---\nintent: policy_coverage\nsections:\n  没有: claim_process\n---\n"
                            "# 新\n## 有\n正文。\n");
    assert_int_equal(tg_kb_ingest(kb, a, &rep, err, sizeof(err)), TG_E_PARSE);
    assert_non_null(strstr(err, "a.md:4:"));
    write_file(dir, "a.md", "---\nintent: policy coverage\n---\n# 新\n");
    assert_int_equal(tg_kb_ingest(kb, a, &rep, err, sizeof(err)), TG_E_PARSE);
    assert_non_null(strstr(err, "a.md:2:"));
    write_file(dir, "a.md", "---\nintent: policy_coverage\n# 新\n正文。\n");
    assert_int_equal(tg_kb_ingest(kb, a, &rep, err, sizeof(err)), TG_E_PARSE);
    assert_non_null(strstr(err, "a.md:4:"));
    write_file(dir, "a.md", "---\nintent: policy_coverage\n");
    assert_int_equal(tg_kb_ingest(kb, a, &rep, err, sizeof(err)), TG_E_PARSE);
    assert_non_null(strstr(err, "no closing"));
    /* an article without a block has no labels */
    write_file(dir, "a.md", "# 新\n新的正文。\n");
    assert_int_equal(tg_kb_ingest(kb, a, &rep, err, sizeof(err)), TG_OK);
    assert_string_equal(chunk_intent(kb, a, "新"), "(none)");
    tg_kb_close(kb);
    tg_store_close(store);
    rm_rf(dir);
}

/* ------------------------------------------------------------ dense vectors */

/* The chunk id of document id's first chunk. */
static uint32_t chunk_of(struct tg_kb *kb, const char *id)
{
    struct tg_kb_chunk c;
    for (uint32_t i = 0; i < tg_kb_chunk_count(kb); i++)
        if (tg_kb_chunk_get(kb, i, &c) == TG_OK && strcmp(c.doc_id, id) == 0)
            return i;
    fail_msg("no chunk of %s", id);
    return 0;
}

/* The documents of a fused search, best first, joined by spaces. */
static const char *fused(struct tg_kb *kb, const char *q, const float *qv, size_t dim,
                         double min_cos)
{
    static char out[256];
    struct tg_kb_result r;
    struct tg_kb_dense dq = {.qvec = qv, .dim = dim, .min_cos = min_cos};
    tg_kb_result_init(&r);
    assert_int_equal(tg_kb_search_dense(kb, q, strlen(q), &dq, 3, TG_KB_SEARCH_PER_DOC, &r), TG_OK);
    out[0] = '\0';
    for (size_t i = 0; i < r.n; i++) {
        struct tg_kb_chunk c;
        assert_int_equal(tg_kb_chunk_get(kb, r.hits[i].chunk, &c), TG_OK);
        snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", i ? " " : "", c.doc_id);
        /* a passage only the vectors found has no BM25 score */
        if (r.hits[i].score == 0)
            assert_true(r.hits[i].dense >= min_cos);
    }
    tg_kb_result_free(&r);
    return out;
}

static void test_dense_vectors_fused(void **state)
{
    (void)state;
    char dir[] = "/tmp/tg-kb-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct tg_store *store = open_store(dir);
    struct tg_kb *kb = open_kb(NULL, store);
    add_corpus(kb); /* hesitation, claims, premium */
    size_t n = tg_kb_chunk_count(kb);
    uint32_t *ids = NULL;
    size_t nmiss = 0;
    /* no model named: nothing can be kept */
    float e[3][4] = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}};
    assert_int_equal(tg_kb_vector_put(kb, 0, e[0], 4), TG_E_INVAL);
    assert_int_equal(tg_kb_vectors_model(kb, "m1"), TG_OK);
    assert_int_equal(tg_kb_vectors_missing(kb, &ids, &nmiss), TG_OK);
    assert_int_equal(nmiss, n);
    tg_free(ids);
    /* each document's chunks get that document's axis */
    const char *docs[3] = {"hesitation", "claims", "premium"};
    for (uint32_t i = 0; i < n; i++) {
        struct tg_kb_chunk c;
        assert_int_equal(tg_kb_chunk_get(kb, i, &c), TG_OK);
        size_t d = 0;
        while (d < 3 && strcmp(c.doc_id, docs[d]) != 0)
            d++;
        assert_true(d < 3);
        assert_int_equal(tg_kb_vector_put(kb, i, e[d], 4), TG_OK);
    }
    float twice[2] = {1, 0};
    assert_int_equal(tg_kb_vector_put(kb, 0, twice, 2), TG_E_INVAL); /* another length */
    float zero[4] = {0, 0, 0, 0};
    assert_int_equal(tg_kb_vector_put(kb, 0, zero, 4), TG_E_INVAL);
    assert_int_equal(tg_kb_vector_put(kb, chunk_of(kb, "hesitation"), e[0], 4), TG_OK);
    assert_int_equal(tg_kb_vectors_count(kb), n);

    /* words alone: the hesitation article first */
    const char *q = "犹豫期多少天";
    assert_string_equal(top_doc(kb, q, TG_KB_SEARCH_PER_DOC), "hesitation");
    /* a vector pointing at the premium article brings it in beside the
     * words' answer; the one both rankings put first stays first */
    float toward_premium[4] = {0.6f, 0, 0.8f, 0};
    const char *got = fused(kb, q, toward_premium, 4, 0.3);
    assert_non_null(strstr(got, "premium"));
    assert_true(strncmp(got, "hesitation", 10) == 0);
    /* a question no word of which is indexed finds only what its vector is near */
    assert_string_equal(fused(kb, "xyzzy", e[1], 4, 0.3), "claims");
    /* ... and nothing when its vector is near nothing */
    float away[4] = {0, 0, 0, 1};
    assert_string_equal(fused(kb, "xyzzy", away, 4, 0.3), "");
    /* another length than the vectors': words alone */
    assert_string_equal(fused(kb, "xyzzy", twice, 2, 0.3), "");

    /* kept with the knowledge base, found again by content after a reload */
    assert_int_equal(tg_kb_save(kb), TG_OK);
    tg_kb_close(kb);
    kb = open_kb(NULL, store);
    assert_string_equal(tg_kb_vectors_name(kb), "m1");
    assert_int_equal(tg_kb_vectors_dim(kb), 4);
    assert_int_equal(tg_kb_vectors_count(kb), n);
    assert_string_equal(fused(kb, "xyzzy", e[1], 4, 0.3), "claims");
    /* a changed document loses its vectors, the others keep theirs */
    const char *text = "# 退保\n退保可以在柜台或者线上办理。";
    assert_int_equal(tg_kb_add_doc(kb, "premium", NULL, text, strlen(text), NULL), TG_OK);
    assert_int_equal(tg_kb_vectors_missing(kb, &ids, &nmiss), TG_OK);
    assert_int_equal(nmiss, 1);
    assert_int_equal(ids[0], chunk_of(kb, "premium"));
    tg_free(ids);
    /* another model: every vector is dropped */
    assert_int_equal(tg_kb_vectors_model(kb, "m2"), TG_OK);
    assert_int_equal(tg_kb_vectors_count(kb), 0);
    assert_string_equal(fused(kb, "xyzzy", e[1], 4, 0.3), "");
    tg_kb_close(kb);
    tg_store_close(store);
    rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_headings),
        cmocka_unit_test(test_split_sentences_overlap),
        cmocka_unit_test(test_bm25_hand_computed),
        cmocka_unit_test(test_incremental_ingest),
        cmocka_unit_test(test_faq_and_jsonl),
        cmocka_unit_test(test_persist_roundtrip),
        cmocka_unit_test(test_corrupt_blob_rebuilt),
        cmocka_unit_test(test_traditional_finds_simplified),
        cmocka_unit_test(test_glossary_expansion),
        cmocka_unit_test(test_glossary_persisted),
        cmocka_unit_test(test_key_field_match),
        cmocka_unit_test(test_intent_labels),
        cmocka_unit_test(test_dense_vectors_fused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
