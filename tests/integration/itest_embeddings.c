/*
 * itest_embeddings.c - dense retrieval (kb.embeddings) against the fake
 * upstream's /v1/embeddings, which serves deterministic vectors (hashed
 * characters and character pairs) and can be scripted per model: a step's
 * embed_as makes it embed another text in place of the input, so a case
 * can point a question at a passage it shares no word with.
 *
 * One gateway answers with the builtin answerer over a three-article
 * knowledge base; its passages are embedded at start-up, the vectors kept
 * with the index, and every turn asks for its question's vector before
 * the knowledge base is searched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MODEL "fake-embed"

#define CONFIG                                                                                     \
    "auth:\n  api_keys:\n    - name: t\n      key: tg-e\n"                                         \
    "backends:\n  - name: kb\n    type: builtin\n    min_confidence: 0\n"                          \
    "route:\n  backend: kb\n"                                                                      \
    "kb:\n  paths: [kb]\n  top_k: 3\n"                                                             \
    "  embeddings:\n    base_url: http://127.0.0.1:%d/v1\n    model: " MODEL "\n"                  \
    "    dimensions: 128\n    timeout: 400ms\n    min_similarity: 0.5\n"

static char dir[64], cfg_path[256], data_dir[128];
static struct tg_h_proc up, gw;

static const char *const articles[][2] = {
    {"cooling-off.md", "# 犹豫期\n\n犹豫期是收到保单后的十五日，其间退保可全额退还保费。\n"},
    {"ski.md", "# 滑雪附加险\n\n滑雪附加险保障滑雪运动中发生的意外伤害，按周购买。\n"},
    {"abroad.md", "# Overseas assistance\n\nCall the emergency line at any hour when you are "
                  "abroad and need a doctor.\n"},
};

static int64_t stat_of(const char *key)
{
    json_t *s = tg_h_upstream_stats(up.port);
    int64_t v = s ? (int64_t)tg_json_num(s, key, -1) : -1;
    json_decref(s);
    return v;
}

static int setup(void **state)
{
    (void)state;
    char kb[128], path[256], cfg[2048];
    if (!tg_h_tmpdir(dir, sizeof(dir)) || tg_h_start_upstream(&up, dir))
        return -1;
    snprintf(kb, sizeof(kb), "%s/kb", dir);
    if (mkdir(kb, 0700))
        return -1;
    for (size_t i = 0; i < TG_ARRAY_LEN(articles); i++)
        tg_h_write_file(kb, articles[i][0], articles[i][1], path, sizeof(path));
    snprintf(cfg, sizeof(cfg), CONFIG, up.port);
    tg_h_write_file(dir, "e.yaml", cfg, cfg_path, sizeof(cfg_path));
    snprintf(data_dir, sizeof(data_dir), "%s/data", dir);
    return tg_h_start_gateway(&gw, cfg_path, data_dir);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    int rc = tg_h_stop(&gw, 5000) | tg_h_stop(&up, 5000);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = -1;
    return rc == 0 ? 0 : -1;
}

/* One turn; returns the response's trustgate object (owned). */
static json_t *ask(const char *question, double *seconds)
{
    char body[1024];
    struct tg_h_resp r;
    snprintf(body, sizeof(body), "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             question);
    assert_int_equal(tg_h_chat(gw.port, "tg-e", body, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    if (!j)
        fail_msg("not JSON: %s", r.body);
    if (seconds)
        *seconds = r.seconds;
    tg_h_resp_free(&r);
    json_t *t = json_incref(json_object_get(j, "trustgate"));
    json_decref(j);
    assert_non_null(t);
    return t;
}

/* Whether a citation of t names a source ending in file. */
static bool cites(const json_t *t, const char *file)
{
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(t, "citations"), i, c)
    {
        const char *s = tg_json_str(c, "source", "");
        size_t n = strlen(s), m = strlen(file);
        if (n >= m && strcmp(s + n - m, file) == 0)
            return true;
    }
    return false;
}

static void test_passages_are_embedded_once_and_kept(void **state)
{
    (void)state;
    /* start-up embedded the three passages, in one batch */
    assert_int_equal(stat_of("embedding_inputs"), 3);
    /* a restart on the same data finds the vectors with the index */
    assert_int_equal(tg_h_stop(&gw, 5000), 0);
    assert_int_equal(tg_h_upstream_control(up.port, "reset", "{}"), 0);
    assert_int_equal(tg_h_start_gateway(&gw, cfg_path, data_dir), 0);
    assert_int_equal(stat_of("embedding_inputs"), 0);
}

static void test_each_question_is_embedded_with_the_model(void **state)
{
    (void)state;
    assert_int_equal(tg_h_upstream_control(up.port, "reset", "{}"), 0);
    json_t *t = ask("犹豫期有几天", NULL);
    assert_true(cites(t, "cooling-off.md"));
    json_decref(t);
    json_t *s = tg_h_upstream_stats(up.port);
    assert_int_equal((int)tg_json_num(s, "embedding_requests", -1), 1);
    const json_t *rq = json_object_get(s, "last_request");
    assert_string_equal(tg_json_str(rq, "model", ""), MODEL);
    assert_string_equal(json_string_value(json_array_get(json_object_get(rq, "input"), 0)),
                        "犹豫期有几天");
    assert_int_equal((int)tg_json_num(rq, "dimensions", 0), 128);
    json_decref(s);
}

static void test_the_dense_ranking_finds_what_words_do_not(void **state)
{
    (void)state;
    /* no article shares a word with the question: nothing found by BM25,
     * and its vector is near none of them */
    json_t *t = ask("xyzzy plugh", NULL);
    assert_int_equal(json_array_size(json_object_get(t, "citations")), 0);
    json_decref(t);
    /* the same question whose vector is the ski article's own */
    char step[512];
    snprintf(step, sizeof(step), "{\"model\":\"%s\",\"steps\":[{\"embed_as\":\"%s\\n\\n%s\"}]}",
             MODEL, "滑雪附加险", "滑雪附加险保障滑雪运动中发生的意外伤害，按周购买。");
    assert_int_equal(tg_h_upstream_control(up.port, "model", step), 0);
    t = ask("xyzzy plugh", NULL);
    assert_true(cites(t, "ski.md"));
    assert_false(cites(t, "cooling-off.md"));
    json_decref(t);
}

static void test_a_failing_embeddings_server_leaves_bm25(void **state)
{
    (void)state;
    char step[256];
    snprintf(step, sizeof(step), "{\"model\":\"%s\",\"steps\":[{\"status\":503}]}", MODEL);
    assert_int_equal(tg_h_upstream_control(up.port, "model", step), 0);
    json_t *t = ask("滑雪附加险怎么买", NULL);
    assert_true(cites(t, "ski.md"));
    json_decref(t);
    /* a silent one costs the turn its timeout (400 ms), not more */
    snprintf(step, sizeof(step), "{\"model\":\"%s\",\"steps\":[{\"hang\":true}]}", MODEL);
    assert_int_equal(tg_h_upstream_control(up.port, "model", step), 0);
    double secs = 0;
    t = ask("emergency line abroad", &secs);
    assert_true(cites(t, "abroad.md"));
    assert_true(secs < 3.0);
    json_decref(t);
    /* both are counted */
    char url[128];
    struct tg_h_resp r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", gw.port);
    assert_int_equal(tg_h_http("GET", url, NULL, NULL, 0, 5000, &r), 0);
    assert_non_null(
        strstr(r.body, "trustgate_backend_errors_total{backend=\"embeddings\",kind=\"error\"} 1"));
    assert_non_null(
        strstr(r.body, "trustgate_backend_errors_total{backend=\"embeddings\",kind=\"timeout\"} 1"));
    tg_h_resp_free(&r);
}

/* trustgate eval retrieval --embed-url: the pool and every query embedded,
 * the fused ranking measured beside FTS5. */
static void test_eval_retrieval_fuses_with_a_server(void **state)
{
    (void)state;
    char pool[256], bin[256], cmd[1400], *out = NULL;
    tg_h_write_file(dir, "pool.jsonl",
                    "{\"id\":\"a\",\"question\":\"犹豫期多久\",\"answer\":\"十五日\"}\n"
                    "{\"id\":\"b\",\"question\":\"滑雪险怎么买\",\"answer\":\"按周购买\"}\n"
                    "{\"id\":\"c\",\"question\":\"境外急救电话\",\"answer\":\"全天可拨打\"}\n",
                    pool, sizeof(pool));
    char queries[256];
    tg_h_write_file(dir, "queries.jsonl",
                    "{\"query\":\"犹豫期是几天\",\"gold\":\"a\"}\n"
                    "{\"query\":\"滑雪附加险购买\",\"gold\":\"b\"}\n",
                    queries, sizeof(queries));
    assert_int_equal(tg_h_upstream_control(up.port, "reset", "{}"), 0);
    snprintf(cmd, sizeof(cmd),
             "%s eval retrieval --kb %s --queries %s --json --embed-url http://127.0.0.1:%d/v1 "
             "--embed-model " MODEL " --embed-dimensions 64",
             tg_h_bin("trustgate", bin, sizeof(bin)), pool, queries, up.port);
    assert_int_equal(tg_h_run(cmd, &out), 0);
    json_t *j = json_loads(out, 0, NULL);
    if (!j)
        fail_msg("not JSON: %s", out);
    assert_true(json_is_true(json_object_get(j, "dense")));
    assert_int_equal((int)tg_json_num(j, "n", 0), 2);
    assert_true(tg_json_num(j, "p_at_1", -1) >= 0.5);
    assert_non_null(json_object_get(j, "baseline"));
    json_decref(j);
    tg_free(out);
    /* three passages and two queries were embedded */
    assert_int_equal(stat_of("embedding_inputs"), 5);
    /* a model without a server is a usage error */
    snprintf(cmd, sizeof(cmd), "%s eval retrieval --kb %s --queries %s --embed-model m 2>&1",
             tg_h_bin("trustgate", bin, sizeof(bin)), pool, queries);
    out = NULL;
    assert_int_equal(tg_h_run(cmd, &out), 2);
    tg_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passages_are_embedded_once_and_kept),
        cmocka_unit_test(test_each_question_is_embedded_with_the_model),
        cmocka_unit_test(test_the_dense_ranking_finds_what_words_do_not),
        cmocka_unit_test(test_a_failing_embeddings_server_leaves_bm25),
        cmocka_unit_test(test_eval_retrieval_fuses_with_a_server),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
