/*
 * itest_cases.c - data-driven turns: every case in the YAML files of tests/cases is
 * one customer message run through the whole pipeline of the demo
 * deployment (examples/insurance: knowledge base, intents, policies,
 * builtin answerer), checked against the decision, tags, attestations and
 * disclaimer it must reach.  Every failing case is listed, then the test
 * fails if there was any.
 *
 * `deliver` is what the policies decide: the AI may answer.  When the
 * answerer itself is unsure, the customer is promised a person's answer
 * instead (a follow-up: decision review, tag follow_up); that still
 * reaches the policies' decision, and the count is printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config.h"
#include "pipeline/pipeline.h"

#include <dirent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void done_cb(struct tg_turn *t, void *arg)
{
    *(int *)arg = 1;
    event_base_loopbreak(t->p->base); /* the loop also watches the store's commits */
}

static bool has_all(const json_t *have, const json_t *want)
{
    size_t i, j;
    json_t *w, *h;
    json_array_foreach(want, i, w)
    {
        bool found = false;
        json_array_foreach(have, j, h) found |= json_equal(h, w);
        if (!found)
            return false;
    }
    return true;
}

static size_t followed; /* deliver cases the answerer left to a person */

/* Run one case; on a mismatch append a line to report and return false. */
static bool run_case(struct tg_pipeline *p, struct event_base *base, const json_t *c,
                     const char *file, int line, struct tg_buf *report)
{
    const char *msg = tg_json_str(c, "message", NULL);
    const char *want = tg_json_str(c, "decision", NULL);
    if (!msg || !want) {
        tg_buf_printf(report, "%s:%d: a case needs message and decision\n", file, line);
        return false;
    }
    json_t *req = json_pack("{s:[{s:s, s:s}]}", "messages", "role", "user", "content", msg);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    struct tg_turn *t = tg_turn_new(p);
    int done = 0;
    t->channel = "test";
    t->trusted = true;
    t->body = body;
    t->body_len = strlen(body);
    t->done_cb = done_cb;
    t->done_arg = &done;
    tg_pipeline_start(t);
    if (!done)
        event_base_dispatch(base);
    json_t *s = tg_turn_summary(t, true);
    const char *got = tg_json_str(s, "decision", "?");
    bool ok = strcmp(got, want) == 0, unsure = false;
    json_t *fu = json_pack("[s]", "follow_up");
    if (!ok && !strcmp(want, "deliver") && !strcmp(got, "review") &&
        has_all(json_object_get(s, "tags"), fu)) {
        ok = unsure = true;
        followed++;
    }
    json_decref(fu);
    const json_t *tags = json_object_get(c, "tags"), *att = json_object_get(c, "attestations");
    if (ok && tags && !has_all(json_object_get(s, "tags"), tags))
        ok = false;
    if (ok && att && !json_equal(json_object_get(s, "attestations"), att))
        ok = false;
    const char *prefix = tg_json_str(c, "prefix", NULL);
    if (ok && !unsure && prefix && !tg_str_has_prefix(tg_json_str(s, "answer", ""), prefix))
        ok = false;
    if (!ok) {
        char *tg = json_dumps(json_object_get(s, "tags"), JSON_COMPACT);
        char *hits = json_dumps(json_object_get(s, "policy_hits"), JSON_COMPACT);
        tg_buf_printf(report,
                      "%s:%d: \"%s\": want %s, got %s (intent %s %.2f, tags %s)\n  hits %s\n", file,
                      line, msg, want, got, tg_json_str(json_object_get(s, "intent"), "name", ""),
                      tg_json_num(json_object_get(s, "intent"), "confidence", 0), tg, hits);
        free(tg);
        free(hits);
    }
    json_decref(s);
    tg_turn_free(t);
    free(body);
    return ok;
}

static void test_cases(void **state)
{
    (void)state;
    char dir[64] = "/tmp/tg-cases-XXXXXX", err[512];
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(tg_config_load("examples/insurance/trustgate.yaml", &cfg, &errs), TG_OK);
    json_decref(errs);
    tg_log_set_level(TG_LOG_WARN);
    struct event_base *base = event_base_new();
    struct tg_pipeline *p = NULL;
    if (tg_pipeline_open(cfg, base, dir, &p, err, sizeof(err)))
        fail_msg("pipeline: %s", err);
    p->log_turns = false;

    struct tg_buf report;
    tg_buf_init(&report, TG_BUF_UNLIMITED);
    size_t n = 0, passed = 0;
    DIR *d = opendir("tests/cases");
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".yaml") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "tests/cases/%s", e->d_name);
        json_t *root = NULL;
        struct tg_config_lines *lines = NULL;
        json_t *perr = json_array();
        if (tg_config_parse_yaml(path, &root, &lines, perr))
            fail_msg("%s does not parse: %s", path, json_string_value(json_array_get(perr, 0)));
        size_t i;
        json_t *c;
        json_array_foreach(root, i, c)
        {
            n++;
            passed += run_case(p, base, c, path, tg_config_lines_elem(lines, root, i), &report);
        }
        json_decref(perr);
        json_decref(root);
        tg_config_lines_free(lines);
    }
    closedir(d);
    print_message("%zu of %zu cases reach their decision (%zu delivered as follow-ups)\n", passed,
                  n, followed);
    if (passed != n)
        fputs(report.data, stderr); /* every failing case, in full */
    tg_buf_free(&report);
    tg_pipeline_close(p);
    event_base_free(base);
    tg_config_free(cfg);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    assert_true(n >= 80);
    assert_int_equal(passed, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cases)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
