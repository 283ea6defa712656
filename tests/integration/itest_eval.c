/*
 * itest_eval.c - `trustgate eval far` end to end on the demo deployment:
 * in process against its labelled set with the threshold make check holds
 * it to, the JSON and HTML reports, a threshold that fails, a set with an
 * error, and the same set over HTTP against a running gateway; and the
 * hallucination, cross-lingual and robustness suites on the demo's sets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[64];

/* The demo's FAR must stay at or above this (bench figure, minus a margin). */
#define DEMO_MIN_FAR "0.30"
#define SET "examples/insurance/eval/far.jsonl"

static int setup(void **state)
{
    (void)state;
    return tg_h_tmpdir(dir, sizeof(dir)) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int tg(const char *args, char **out)
{
    char bin[512], cmd[4096];
    tg_h_bin("trustgate", bin, sizeof(bin));
    snprintf(cmd, sizeof(cmd), "%s %s 2>&1", bin, args);
    return tg_h_run(cmd, out);
}

static json_t *load(const char *path)
{
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        fail_msg("%s: %s", path, e.text);
    return j;
}

static void test_far_in_process(void **state)
{
    (void)state;
    char args[1024], json[128], html[128];
    char *out = NULL;
    snprintf(json, sizeof(json), "%s/far.json", dir);
    snprintf(html, sizeof(html), "%s/far.html", dir);
    snprintf(args, sizeof(args),
             "eval far -c examples/insurance/trustgate.yaml --set " SET
             " --json %s --html %s --min-far " DEMO_MIN_FAR,
             json, html);
    int rc = tg(args, &out);
    if (rc != 0)
        fail_msg("exit %d: %s", rc, out);
    assert_non_null(strstr(out, "first-response accuracy on"));
    tg_free(out);
    json_t *j = load(json);
    size_t n = (size_t)tg_json_int(j, "turns", 0);
    assert_true(n >= 100);
    assert_int_equal(json_array_size(json_object_get(j, "items")), n);
    double far = tg_json_num(j, "far", -1);
    assert_true(far >= 0.30 && far <= 1);
    const json_t *f = json_object_get(j, "factors");
    /* FAR can be no higher than any of its factors */
    assert_true(far <= tg_json_num(f, "intent_accuracy", 0) + 1e-9);
    /* every failing turn names the stage that failed */
    size_t failing = 0, answered = 0, right = 0, i;
    json_t *it;
    json_array_foreach(json_object_get(j, "items"), i, it)
    {
        if (!tg_json_bool(it, "correct", true)) {
            failing++;
            assert_non_null(tg_json_str(it, "failed_stage", NULL));
        }
        /* an answer given where one is expected: right by its first source or its facts */
        if (!strcmp(tg_json_str(it, "decision", ""), "deliver") &&
            !strcmp(tg_json_str(it, "got_decision", ""), "deliver")) {
            answered++;
            long long facts = tg_json_int(it, "facts", 0);
            right += tg_json_bool(it, "top1", false) ||
                     (facts > 0 && tg_json_int(it, "facts_found", -1) == facts);
        }
    }
    assert_int_equal(failing, n - (size_t)tg_json_int(j, "correct", 0));
    const json_t *ans = json_object_get(j, "answers");
    assert_true(answered > 0);
    assert_int_equal(tg_json_int(ans, "delivered", -1), answered);
    assert_int_equal(tg_json_int(ans, "right", -1), right);
    json_decref(j);
    /* the HTML report stands alone: charts inline, nothing fetched */
    char *page = NULL;
    snprintf(args, sizeof(args), "cat %s", html);
    assert_int_equal(tg_h_run(args, &page), 0);
    assert_non_null(strstr(page, "<svg class=\"chart\""));
    assert_null(strstr(page, "http://cdn"));
    assert_null(strstr(page, "<script src"));
    tg_free(page);
}

static void test_threshold_and_bad_sets(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(
        tg("eval far -c examples/insurance/trustgate.yaml --set " SET " --min-far 0.999", &out), 1);
    assert_non_null(strstr(out, "below the minimum"));
    tg_free(out);
    char path[256], args[512];
    tg_h_write_file(dir, "bad.jsonl", "{\"question\":\"a\"}\n{\"id\":\"x\"}\n", path, sizeof(path));
    snprintf(args, sizeof(args), "eval far -c examples/insurance/trustgate.yaml --set %s", path);
    assert_int_equal(tg(args, &out), 1);
    assert_non_null(strstr(out, "bad.jsonl:2:"));
    tg_free(out);
}

static void test_far_over_http(void **state)
{
    (void)state;
    struct tg_h_proc gw;
    char data[128], args[1024], json[128];
    char *out = NULL;
    snprintf(data, sizeof(data), "%s/gw", dir);
    assert_int_equal(tg_h_start_gateway(&gw, "examples/insurance/trustgate.yaml", data), 0);
    snprintf(json, sizeof(json), "%s/http.json", dir);
    snprintf(args, sizeof(args),
             "eval far -c examples/insurance/trustgate.yaml --set " SET
             " --url http://127.0.0.1:%d --key tg-demo-key --json %s",
             gw.port, json);
    int rc = tg(args, &out);
    assert_int_equal(tg_h_stop(&gw, 5000), 0);
    if (rc != 0)
        fail_msg("exit %d: %s", rc, out);
    tg_free(out);
    json_t *j = load(json);
    /* the same deployment over HTTP reaches the same decisions and intents */
    char local[128];
    snprintf(local, sizeof(local), "%s/far.json", dir);
    json_t *l = load(local);
    assert_int_equal(tg_json_int(j, "turns", 0), tg_json_int(l, "turns", -1));
    double a = tg_json_num(json_object_get(j, "factors"), "intent_accuracy", -1);
    double b = tg_json_num(json_object_get(l, "factors"), "intent_accuracy", -2);
    assert_true(a > b - 1e-9 && a < b + 1e-9);
    json_decref(j);
    json_decref(l);
}

/* The other suites on the demo, each end to end with its JSON report. */
static void test_other_suites(void **state)
{
    (void)state;
    char args[1024], json[128];
    char *out = NULL;
    snprintf(json, sizeof(json), "%s/hal.json", dir);
    snprintf(args, sizeof(args),
             "eval hallucination -c examples/insurance/trustgate.yaml --set "
             "examples/insurance/eval/hallucination.jsonl --json %s --max-rate 0.05",
             json);
    int rc = tg(args, &out);
    if (rc)
        fail_msg("hallucination: exit %d: %s", rc, out);
    tg_free(out);
    json_t *j = load(json);
    int64_t n = tg_json_int(j, "prompts", 0);
    assert_true(n >= 45);
    assert_int_equal(tg_json_int(j, "refused", 0) + tg_json_int(j, "grounded", 0) +
                         tg_json_int(j, "fabricated", 0),
                     n);
    assert_non_null(json_object_get(json_object_get(j, "by_kind"), "false_premise"));
    json_decref(j);

    snprintf(json, sizeof(json), "%s/xl.json", dir);
    snprintf(args, sizeof(args),
             "eval crosslingual -c examples/insurance/trustgate.yaml --set "
             "examples/insurance/eval/trilingual.jsonl --json %s",
             json);
    assert_int_equal(tg(args, &out), 0);
    tg_free(out);
    j = load(json);
    assert_true(tg_json_int(j, "questions", 0) >= 36);
    const json_t *zh_en = json_object_get(json_object_get(j, "pairs"), "zh-en");
    assert_true(tg_json_num(zh_en, "decision", -1) >= 0 && tg_json_num(zh_en, "decision", 2) <= 1);
    /* every pair that does not fully agree is listed */
    assert_true(json_array_size(json_object_get(j, "disagreements")) > 0);
    json_decref(j);
    /* an impossible bar fails the run */
    snprintf(args, sizeof(args),
             "eval crosslingual -c examples/insurance/trustgate.yaml --set "
             "examples/insurance/eval/trilingual.jsonl --min-rate 1.0");
    assert_int_equal(tg(args, &out), 1);
    tg_free(out);

    /* the public sets' layouts (see ../shared/datasets), in tiny hand-written files */
    char path[256];
    tg_h_write_file(dir, "tqa.jsonl",
                    "{\"type\":\"Adversarial\",\"category\":\"Misconceptions\","
                    "\"question\":\"What happens if you swallow gum?\"}\n"
                    "{\"category\":\"Fiction\",\"question\":\"Who lives at 4 Privet Drive?\"}\n",
                    path, sizeof(path));
    snprintf(json, sizeof(json), "%s/tqa.json", dir);
    snprintf(args, sizeof(args),
             "eval hallucination -c examples/insurance/trustgate.yaml --set %s --format truthfulqa "
             "--limit 1 --json %s",
             path, json);
    assert_int_equal(tg(args, &out), 0);
    tg_free(out);
    j = load(json);
    assert_int_equal(tg_json_int(j, "prompts", 0), 1); /* --limit */
    assert_non_null(json_object_get(json_object_get(j, "by_kind"), "Misconceptions"));
    json_decref(j);
    tg_h_write_file(dir, "xq.jsonl",
                    "{\"id\":\"q1\",\"question_en\":\"How do I report a lost card?\","
                    "\"question_zh\":\"银行卡丢了怎么挂失？\"}\n",
                    path, sizeof(path));
    snprintf(json, sizeof(json), "%s/xq.json", dir);
    snprintf(args, sizeof(args),
             "eval crosslingual -c examples/insurance/trustgate.yaml --set %s --format xquad "
             "--json %s",
             path, json);
    assert_int_equal(tg(args, &out), 0);
    tg_free(out);
    j = load(json);
    /* two languages, one pair */
    assert_int_equal(json_object_size(json_object_get(j, "pairs")), 1);
    assert_non_null(json_object_get(json_object_get(j, "pairs"), "zh-en"));
    json_decref(j);

    snprintf(json, sizeof(json), "%s/rob.json", dir);
    snprintf(args, sizeof(args),
             "eval robustness -c examples/insurance/trustgate.yaml --set " SET " --json %s", json);
    assert_int_equal(tg(args, &out), 0);
    assert_non_null(strstr(out, "traditional"));
    tg_free(out);
    j = load(json);
    const json_t *v = json_object_get(j, "variants");
    assert_int_equal(json_object_size(v), 6);
    /* Traditional characters are normalized away: no drop */
    assert_true(tg_json_num(json_object_get(v, "traditional"), "drop", 1) < 0.02);
    json_decref(j);
}

/* `trustgate fairness report` on UCI Adult (Fairlearn's figures: male 0.305737,
 * female 0.109461, difference 0.196276, ratio 0.358023) and German Credit,
 * from ../shared/datasets beside the project; the gate's test and --json. */
static void test_fairness_on_public_sets(void **state)
{
    (void)state;
    const char *src = getenv("TG_SOURCE_DIR") ? getenv("TG_SOURCE_DIR") : ".";
    char adult[1024], german[1024], args[2200];
    snprintf(adult, sizeof(adult), "%s/../shared/datasets/uci_adult/adult.data", src);
    snprintf(german, sizeof(german), "%s/../shared/datasets/german_credit/german.data", src);
    FILE *f = fopen(adult, "r");
    if (!f) {
        printf("the public datasets are not beside the project (%s): skipped\n", adult);
        skip();
    }
    fclose(f);
    char *out = NULL;
    snprintf(args, sizeof(args),
             "fairness report --data %s --attribute 9 --pred '14=>50K' --bootstrap 200 --json",
             adult);
    assert_int_equal(tg(args, &out), 0);
    json_t *j = json_loads(out, 0, NULL);
    if (!j)
        fail_msg("not JSON: %s", out);
    tg_free(out);
    assert_int_equal(tg_json_int(j, "rows", 0), 32561);
    assert_int_equal(json_array_size(json_object_get(j, "groups")), 2);
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(j, "groups"), i, g)
    {
        double rate = tg_json_num(g, "selection_rate", -1);
        if (!strcmp(tg_json_str(g, "group", ""), "Male"))
            assert_true(fabs(rate - 0.305737) < 5e-7);
        else
            assert_true(fabs(rate - 0.109461) < 5e-7);
    }
    assert_true(fabs(tg_json_num(j, "demographic_parity_difference", 0) - 0.196276) < 5e-7);
    assert_true(fabs(tg_json_num(j, "demographic_parity_ratio", 0) - 0.358023) < 5e-7);
    json_decref(j);
    /* the gate closes on a 5-point limit: the difference is far above it */
    snprintf(args, sizeof(args),
             "fairness report --data %s --attribute 9 --pred '14=>50K' --bootstrap 200 "
             "--limit 0.05",
             adult);
    assert_int_equal(tg(args, &out), 1);
    assert_non_null(strstr(out, "GATE CLOSED"));
    tg_free(out);
    /* --json with --limit: stdout is one JSON object and nothing else (the gate's
     * sentence goes to stderr), every interval with its level */
    char bin[512], cmd[4096];
    tg_h_bin("trustgate", bin, sizeof(bin));
    snprintf(cmd, sizeof(cmd),
             "%s fairness report --data %s --attribute 9 --pred '14=>50K' --limit 0.05 --alpha "
             "0.01 --json 2>/dev/null",
             bin, adult);
    assert_int_equal(tg_h_run(cmd, &out), 1);
    j = json_loads(out, 0, NULL);
    if (!j)
        fail_msg("stdout is not one JSON object: %s", out);
    tg_free(out);
    assert_true(fabs(tg_json_num(j, "demographic_parity_difference", 0) - 0.196276) < 5e-7);
    const json_t *test = json_object_get(j, "test");
    assert_int_equal(tg_json_int(test, "groups", 0), 2);
    assert_true(fabs(tg_json_num(test, "gap", 0) - 0.196276) < 5e-7);
    const json_t *gi = json_object_get(test, "gap_interval");
    assert_true(fabs(tg_json_num(gi, "level", 0) - 0.99) < 1e-12);
    assert_true(tg_json_num(gi, "low", 0) > 0.18 && tg_json_num(gi, "high", 1) < 0.21);
    assert_true(tg_json_bool(json_object_get(j, "gate"), "closed", false));
    assert_true(fabs(tg_json_num(json_object_get(j, "gate"), "limit", 0) - 0.05) < 1e-12);
    json_decref(j);
    snprintf(args, sizeof(args),
             "fairness report --data %s --sep s --attribute 8 --pred 20=1 --json", german);
    assert_int_equal(tg(args, &out), 0);
    j = json_loads(out, 0, NULL);
    tg_free(out);
    assert_int_equal(tg_json_int(j, "rows", 0), 1000);
    assert_int_equal(json_array_size(json_object_get(j, "groups")), 4);
    json_decref(j);
}

/* `trustgate eval retrieval`: the knowledge base and the FTS5 baseline rank
 * a small pool whose answers are plain; a pool line of no known shape is
 * refused with its line. */
static void test_retrieval_against_fts5(void **state)
{
    (void)state;
    char pool[256], queries[256], args[1024], *out = NULL;
    tg_h_write_file(dir, "pool.jsonl",
                    "{\"id\": \"hesitation\", \"text\": \"犹豫期为签收保单次日起15日，期内退保全额退还保费。\"}\n"
                    "{\"id\": \"claims\", \"text\": \"理赔材料包括身份证、病历和医疗费用发票。\"}\n"
                    "{\"id\": \"card\", \"text\": \"银行卡丢失请立即拨打热线挂失并补办新卡。\"}\n",
                    pool, sizeof(pool));
    tg_h_write_file(dir, "queries.jsonl",
                    "{\"query\": \"犹豫期有多少天\", \"gold\": \"hesitation\"}\n"
                    "{\"query\": \"理赔要准备哪些材料\", \"gold\": \"claims\"}\n"
                    "{\"query\": \"银行卡丢了怎么办\", \"gold\": \"card\"}\n"
                    "{\"query\": \"保单贷款利率\", \"gold\": \"loan\"}\n",
                    queries, sizeof(queries));
    snprintf(args, sizeof(args), "eval retrieval --kb %s --queries %s --json", pool, queries);
    assert_int_equal(tg(args, &out), 0);
    json_t *r = json_loads(strchr(out, '{'), JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(r);
    /* three of four found first; the fourth's gold is not in the pool: a miss */
    assert_int_equal(json_integer_value(json_object_get(r, "n")), 4);
    assert_true(fabs(json_real_value(json_object_get(r, "p_at_1")) - 0.75) < 1e-9);
    json_t *b = json_object_get(r, "baseline");
    assert_string_equal(json_string_value(json_object_get(b, "name")), "sqlite-fts5-trigram");
    assert_int_equal(json_integer_value(json_object_get(b, "n")), 4);
    assert_non_null(strstr(out, "1 queries have no gold"));
    json_decref(r);
    tg_free(out);

    tg_h_write_file(dir, "badpool.jsonl", "{\"id\": \"a\", \"text\": \"x\"}\n{\"foo\": 1}\n", pool,
                    sizeof(pool));
    snprintf(args, sizeof(args), "eval retrieval --kb %s --queries %s", pool, queries);
    assert_int_equal(tg(args, &out), 1);
    assert_non_null(strstr(out, "line 2 of the pool"));
    tg_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_far_in_process),
        cmocka_unit_test(test_threshold_and_bad_sets),
        cmocka_unit_test(test_far_over_http),
        cmocka_unit_test(test_other_suites),
        cmocka_unit_test(test_fairness_on_public_sets),
        cmocka_unit_test(test_retrieval_against_fts5),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
