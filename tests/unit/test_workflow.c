/*
 * test_workflow.c - workflow files and what steps read of their run:
 * loading (defaults, every mistake reported at its line), {{path}}
 * templates and the decide step's conditions.  Runs go through the daemon
 * in tests/integration/itest_workflow.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "workflow/workflow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/tg-wf-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

static const char *write_wf(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_load_defaults(void **state)
{
    (void)state;
    const char *p = write_wf("ok.yaml", "name: check\n"
                                        "input: [policy]\n"
                                        "steps:\n"
                                        "  - id: lookup\n"
                                        "    kind: tool\n"
                                        "    url: http://127.0.0.1:9/t\n"
                                        "    args: {p: \"{{input.policy}}\"}\n"
                                        "  - id: look\n"
                                        "    kind: search\n"
                                        "    query: \"{{lookup.product}} 责任免除\"\n"
                                        "  - id: who\n"
                                        "    kind: review\n"
                                        "    question: \"{{input.policy}}?\"\n"
                                        "  - id: done\n"
                                        "    kind: reply\n"
                                        "    text: \"{{who.answer}}\"\n");
    struct tg_workflow *wf = NULL;
    json_t *errs = json_array();
    int rc = tg_workflow_load(p, &wf, errs);
    if (rc)
        fail_msg("%s", json_dumps(errs, 0));
    assert_string_equal(wf->name, "check");
    assert_int_equal(wf->n_steps, 4);
    assert_int_equal(wf->steps[0].kind, TG_WF_TOOL);
    assert_int_equal(wf->steps[0].timeout_ms, 10000);
    assert_int_equal(wf->steps[0].retries, 0);
    assert_int_equal(wf->steps[1].top_k, 3);
    assert_int_equal(wf->steps[2].sla_ms, 120000);
    assert_int_equal(json_array_size(wf->steps[2].attestations), 0);
    assert_int_equal(wf->steps[3].line, 14);
    assert_int_equal(strlen(wf->hash), 64);
    assert_ptr_equal(tg_workflow_step(wf, "who"), &wf->steps[2]);
    assert_null(tg_workflow_step(wf, "nope"));
    tg_workflow_free(wf);
    json_decref(errs);
}

/* Every mistake, at its line, and nothing loaded. */
static void test_load_errors(void **state)
{
    (void)state;
    const char *p = write_wf("bad.yaml", "name: bad\n"                            /* 1 */
                                         "colour: blue\n"                         /* 2 */
                                         "steps:\n"                               /* 3 */
                                         "  - id: a\n"                            /* 4 */
                                         "    kind: tool\n"                       /* 5 */
                                         "    url: ftp://x\n"                     /* 6 */
                                         "    timeout: soon\n"                    /* 7 */
                                         "    on_fail: nowhere\n"                 /* 8 */
                                         "  - id: a\n"                            /* 9 */
                                         "    kind: reply\n"                      /* 10 */
                                         "    text: \"{{later.x}}\"\n"            /* 11 */
                                         "    query: wrong\n"                     /* 12 */
                                         "  - id: b\n"                            /* 13 */
                                         "    kind: think\n"                      /* 14 */
                                         "  - id: later\n"                        /* 15 */
                                         "    kind: decide\n"                     /* 16 */
                                         "    cases:\n"                           /* 17 */
                                         "      - {when: {path: a.x}, next: a}\n" /* 18 */
                                         "  - id: end\n"                          /* 19 */
                                         "    kind: reply\n"                      /* 20 */
                                         "    text: x\n");                        /* 21 */
    struct tg_workflow *wf = NULL;
    json_t *errs = json_array();
    assert_int_equal(tg_workflow_load(p, &wf, errs), TG_E_CONFIG);
    assert_null(wf);
    char *all = json_dumps(errs, 0);
    static const char *const want[] = {
        "bad.yaml:2: unknown key 'colour'",
        "bad.yaml:6: steps[0].url must be an http:// or https:// URL",
        "bad.yaml:7: steps[0].timeout must be a duration",
        "bad.yaml:4: steps[0].on_fail names no step: 'nowhere'",
        "bad.yaml:9: steps[1]: the id 'a' is used by steps[0] too",
        "bad.yaml:9: steps[1] refers to 'later', which is neither input nor an earlier step",
        "bad.yaml:12: unknown key 'query' in steps[1] (a reply step)",
        "bad.yaml:14: steps[2].kind must be one of tool, decide, search, review, reply, model",
        "steps[3].cases[0].when needs exactly one of eq",
        "bad.yaml:19: steps[4]: 'end' is reserved",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(all, want[i]))
            fail_msg("missing \"%s\" in %s", want[i], all);
    free(all);
    json_decref(errs);

    /* two files with one name */
    const char *one = write_wf("one.yaml", "name: same\nsteps: [{id: a, kind: reply, text: x}]\n");
    char first[128];
    snprintf(first, sizeof(first), "%s", one);
    const char *two = write_wf("two.yaml", "name: same\nsteps: [{id: b, kind: reply, text: y}]\n");
    char *paths[] = {first, (char *)two};
    struct tg_workflow **wfs = NULL;
    errs = json_array();
    assert_int_equal(tg_workflows_load(paths, 2, &wfs, errs), TG_E_CONFIG);
    all = json_dumps(errs, 0);
    assert_non_null(strstr(all, "two.yaml:1: workflow same is defined in"));
    free(all);
    json_decref(errs);
}

/* ${ENV} in a workflow file, as in the config: an unset one is an error at
 * its line; a header must be one line. */
static void test_env_and_headers(void **state)
{
    (void)state;
    setenv("TG_WF_TEST_HOST", "127.0.0.1:9", 1);
    const char *p =
        write_wf("env.yaml", "name: env\n"
                             "steps:\n"
                             "  - id: call\n"
                             "    kind: tool\n"
                             "    url: http://${TG_WF_TEST_HOST}/t\n"
                             "    headers: {Authorization: \"Bearer ${TG_WF_TEST_TOKEN}\"}\n");
    struct tg_workflow *wf = NULL;
    json_t *errs = json_array();
    unsetenv("TG_WF_TEST_TOKEN");
    assert_int_equal(tg_workflow_load(p, &wf, errs), TG_E_CONFIG);
    char *all = json_dumps(errs, 0);
    if (!strstr(all, "env.yaml:6:") || !strstr(all, "TG_WF_TEST_TOKEN"))
        fail_msg("%s", all);
    free(all);
    json_decref(errs);
    setenv("TG_WF_TEST_TOKEN", "tok", 1);
    errs = json_array();
    assert_int_equal(tg_workflow_load(p, &wf, errs), TG_OK);
    assert_string_equal(wf->steps[0].url, "http://127.0.0.1:9/t");
    assert_string_equal(tg_json_str(wf->steps[0].headers, "Authorization", ""), "Bearer tok");
    tg_workflow_free(wf);
    json_decref(errs);
    p = write_wf("hdr.yaml", "name: hdr\n"
                             "steps:\n"
                             "  - id: call\n"
                             "    kind: tool\n"
                             "    url: http://x/t\n"
                             "    headers: {\"Bad Name\": v, X-Ok: 3}\n");
    errs = json_array();
    assert_int_equal(tg_workflow_load(p, &wf, errs), TG_E_CONFIG);
    all = json_dumps(errs, 0);
    if (!strstr(all, "steps[0].headers.Bad Name must be") ||
        !strstr(all, "steps[0].headers.X-Ok must be"))
        fail_msg("%s", all);
    free(all);
    json_decref(errs);
}

static void test_templates(void **state)
{
    (void)state;
    json_t *ctx = json_loads("{\"input\":{\"policy\":\"P1\",\"n\":3},"
                             "\"lookup\":{\"exclusions\":[\"滑雪\",\"潜水\"],\"page\":4,"
                             "\"nested\":{\"list\":[{\"a\":\"x\"}]}}}",
                             0, NULL);
    assert_non_null(ctx);
    char *s = tg_wf_render("保单{{input.policy}}不保{{ lookup.exclusions }}，第{{lookup.page}}页"
                           "{{lookup.nested.list.0.a}}{{missing.x}}{{input.n}}",
                           ctx);
    assert_string_equal(s, "保单P1不保滑雪、潜水，第4页x3");
    tg_free(s);
    s = tg_wf_render("no refs, {{unclosed", ctx);
    assert_string_equal(s, "no refs, {{unclosed");
    tg_free(s);
    /* a lone reference keeps its type; others become text */
    json_t *tmpl = json_loads("{\"p\":\"{{input.policy}}\",\"n\":\"{{input.n}}\","
                              "\"list\":\"{{lookup.exclusions}}\",\"text\":\"#{{input.n}}\","
                              "\"fixed\":[1,true],\"none\":\"{{nope}}\"}",
                              0, NULL);
    json_t *got = tg_wf_render_json(tmpl, ctx);
    json_t *want = json_loads("{\"p\":\"P1\",\"n\":3,\"list\":[\"滑雪\",\"潜水\"],\"text\":\"#3\","
                              "\"fixed\":[1,true],\"none\":null}",
                              0, NULL);
    assert_true(json_equal(got, want));
    assert_null(tg_wf_lookup(ctx, "lookup.exclusions.9"));
    assert_null(tg_wf_lookup(ctx, "lookup..page"));
    json_decref(got);
    json_decref(want);
    json_decref(tmpl);
    json_decref(ctx);
}

static bool holds(const char *path, enum tg_wf_op op, const char *value, const json_t *ctx)
{
    struct tg_wf_case c = {.path = (char *)path, .op = op};
    if (op == TG_WF_EXISTS)
        c.exists = !strcmp(value, "true");
    else
        c.value = json_loads(value, JSON_DECODE_ANY, NULL);
    bool r = tg_wf_case_holds(&c, ctx, NULL);
    json_decref(c.value);
    return r;
}

static void test_conditions(void **state)
{
    (void)state;
    json_t *ctx = json_loads("{\"input\":{\"activity\":\"滑雪\",\"word\":\"SKI\"},"
                             "\"lookup\":{\"exclusions\":[\"滑雪\",\"潜水\"],\"note\":\"high-risk "
                             "sports such as ski jumping\",\"page\":4,\"ok\":true}}",
                             0, NULL);
    assert_true(holds("lookup.exclusions", TG_WF_CONTAINS, "\"{{input.activity}}\"", ctx));
    assert_false(holds("lookup.exclusions", TG_WF_CONTAINS, "\"跳伞\"", ctx));
    assert_true(holds("lookup.note", TG_WF_CONTAINS, "\"{{input.word}}\"", ctx)); /* case folded */
    assert_false(holds("lookup.note", TG_WF_CONTAINS, "\"\"", ctx));
    assert_true(holds("lookup.page", TG_WF_EQ, "4.0", ctx));
    assert_true(holds("lookup.page", TG_WF_NE, "5", ctx));
    assert_true(holds("lookup.ok", TG_WF_EQ, "true", ctx));
    assert_true(holds("lookup.page", TG_WF_GT, "3", ctx));
    assert_false(holds("lookup.page", TG_WF_LT, "3", ctx));
    assert_false(holds("lookup.note", TG_WF_GT, "3", ctx)); /* not a number: no */
    assert_true(holds("lookup.page", TG_WF_EXISTS, "true", ctx));
    assert_true(holds("lookup.missing", TG_WF_EXISTS, "false", ctx));
    assert_false(holds("lookup.missing", TG_WF_EQ, "null", ctx));
    json_decref(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_defaults),   cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_env_and_headers), cmocka_unit_test(test_templates),
        cmocka_unit_test(test_conditions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
