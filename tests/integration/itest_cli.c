/*
 * itest_cli.c - the command line as a user runs it: help and version,
 * `config check` with file:line errors, `ask` (plain and --json, with a
 * conversation carried by --user, and a failing upstream), `audit verify`,
 * and `serve` refusing a bad config.
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

static char bin[256], dir[64];

static int setup(void **state)
{
    (void)state;
    tg_h_bin("trustgate", bin, sizeof(bin));
    return tg_h_tmpdir(dir, sizeof(dir)) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Run "trustgate ARGS" with stderr folded into the output. */
static int tg(const char *args, char **out)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s %s 2>&1", bin, args);
    return tg_h_run(cmd, out);
}

static void test_help_and_version(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(tg("version", &out), 0);
    assert_true(tg_str_has_prefix(out, "trustgate "));
    tg_free(out);
    assert_int_equal(tg("help", &out), 0);
    const char *cmds[] = {"serve", "ask", "config", "audit", "version"};
    for (size_t i = 0; i < TG_ARRAY_LEN(cmds); i++)
        assert_non_null(strstr(out, cmds[i]));
    tg_free(out);
    for (size_t i = 0; i < TG_ARRAY_LEN(cmds); i++) {
        char args[64], want[64];
        snprintf(args, sizeof(args), "%s --help", cmds[i]);
        snprintf(want, sizeof(want), "usage: trustgate %s", cmds[i]);
        assert_int_equal(tg(args, &out), 0);
        if (!strstr(out, want))
            fail_msg("%s: %s", args, out);
        tg_free(out);
    }
    assert_int_equal(tg("", &out), 2);
    tg_free(out);
    assert_int_equal(tg("frobnicate", &out), 2);
    assert_non_null(strstr(out, "unknown command 'frobnicate'"));
    tg_free(out);
    assert_int_equal(tg("ask", &out), 2); /* no config, no text */
    tg_free(out);
}

static void test_config_check(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(tg("config check examples/insurance/trustgate.yaml", &out), 0);
    assert_non_null(strstr(out, "ok"));
    tg_free(out);
    assert_int_equal(tg("config check tests/unit/data/config/many.yaml", &out), 1);
    int lines = 0;
    for (char *p = out; (p = strstr(p, "tests/unit/data/config/many.yaml:")) != NULL; p++)
        lines++;
    assert_true(lines >= 10); /* every problem, not just the first */
    assert_non_null(strstr(out, "many.yaml:5: unknown key 'histroy' in server"));
    tg_free(out);
    assert_int_equal(tg("config check /nonexistent/trustgate.yaml", &out), 1);
    assert_non_null(strstr(out, "/nonexistent/trustgate.yaml"));
    tg_free(out);
}

static void test_ask(void **state)
{
    (void)state;
    char args[512], *out = NULL;
    snprintf(
        args, sizeof(args),
        "ask -c examples/insurance/trustgate.yaml --data %s/demo --json --user c-1 我想了解重疾险",
        dir);
    assert_int_equal(tg(args, &out), 0);
    json_t *a = json_loads(out, 0, NULL);
    if (!a)
        fail_msg("not JSON: %s", out);
    const char *keys[] = {"turn_id",  "decision",     "answer",      "intent",         "confidence",
                          "entities", "citations",    "policy_hits", "attestations",   "tags",
                          "backend",  "degradations", "audit_index", "conversation_id"};
    for (size_t i = 0; i < TG_ARRAY_LEN(keys); i++)
        if (!json_object_get(a, keys[i]))
            fail_msg("ask --json lacks %s", keys[i]);
    assert_string_equal(tg_json_str(a, "decision", ""), "deliver");
    assert_true(json_is_array(json_object_get(json_object_get(a, "entities"), "money")));
    assert_true(json_is_array(json_object_get(json_object_get(a, "entities"), "pii")));
    assert_int_equal(tg_json_int(a, "audit_index", -1), 0);
    assert_true(strlen(tg_json_str(a, "answer", "")) > 0);
    tg_free(out);

    /* the same customer continues the same conversation */
    snprintf(args, sizeof(args),
             "ask -c examples/insurance/trustgate.yaml --data %s/demo --json --user c-1 还有呢",
             dir);
    assert_int_equal(tg(args, &out), 0);
    json_t *b = json_loads(out, 0, NULL);
    assert_string_equal(tg_json_str(a, "conversation_id", "a"),
                        tg_json_str(b, "conversation_id", "b"));
    assert_int_equal(tg_json_int(b, "audit_index", -1), 1);
    tg_free(out);

    /* plain output is the answer alone */
    snprintf(args, sizeof(args), "ask -c examples/insurance/trustgate.yaml --data %s/demo 你好",
             dir);
    assert_int_equal(tg(args, &out), 0);
    char want[512];
    snprintf(want, sizeof(want), "%s\n", tg_json_str(a, "answer", "?"));
    assert_string_equal(out, want);
    tg_free(out);

    snprintf(args, sizeof(args), "audit verify --data %s/demo", dir);
    assert_int_equal(tg(args, &out), 0);
    assert_non_null(strstr(out, "audit log intact: 3 leaves"));
    tg_free(out);
    json_decref(a);
    json_decref(b);
}

static void test_ask_with_unreachable_upstream(void **state)
{
    (void)state;
    char path[256], args[512], *out = NULL;
    /* port 9 (discard) on loopback: nothing listens there */
    tg_h_write_file(dir, "down.yaml",
                    "backends:\n  - name: down\n    type: openai\n"
                    "    base_url: http://127.0.0.1:9/v1\n    connect_timeout: 500ms\n"
                    "route:\n  backend: down\n",
                    path, sizeof(path));
    snprintf(args, sizeof(args), "ask -c %s --data %s/down --json hello", path, dir);
    assert_int_equal(tg(args, &out), 1);
    json_t *j = json_loads(strchr(out, '{'), 0, NULL);
    assert_non_null(j);
    assert_string_equal(tg_json_str(j, "decision", ""), "error");
    assert_non_null(strstr(tg_json_str(j, "error", ""), "backend 'down' failed"));
    assert_true(json_is_null(json_object_get(j, "answer")));
    assert_int_equal(tg_json_int(j, "audit_index", -1), 0); /* failures are recorded too */
    json_decref(j);
    tg_free(out);
}

static void test_serve_refuses_bad_config(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(tg("serve -c tests/unit/data/config/unknown_key.yaml", &out), 1);
    assert_non_null(strstr(out, "tests/unit/data/config/unknown_key.yaml:"));
    tg_free(out);
    assert_int_equal(tg("serve -c examples/insurance/trustgate.yaml --listen nonsense", &out), 2);
    tg_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_ask),
        cmocka_unit_test(test_ask_with_unreachable_upstream),
        cmocka_unit_test(test_serve_refuses_bad_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
