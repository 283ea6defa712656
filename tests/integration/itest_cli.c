/*
 * itest_cli.c - the command line as a user runs it: help and version,
 * `config check` with file:line errors, `eval intent`, `ask` (plain and --json, with a
 * conversation carried by --user, and a failing upstream), `audit verify`,
 * and `serve` refusing a bad config.
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
#include <sys/stat.h>

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
    char cmd[2400];
    snprintf(cmd, sizeof(cmd), "%s %s 2>&1", bin, args);
    return tg_h_run(cmd, out);
}

/* A number an option wants is read whole and within its range: "abc",
 * "0.5x" or an out-of-range value is a usage error naming the option, never
 * a silent 0. */
static void test_numbers_are_read_strictly(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "eval far -c examples/insurance/trustgate.yaml --min-far abc",
        "eval far -c examples/insurance/trustgate.yaml --k 0",
        "eval far -c examples/insurance/trustgate.yaml --min-far 0.5x",
        "fairness report --limit 2 x.csv",
        "ab report -c examples/insurance/trustgate.yaml --alpha -1",
        "cost report -c examples/insurance/trustgate.yaml --days 1e3",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        char *out = NULL;
        assert_int_equal(tg(bad[i], &out), 2);
        if (!strstr(out, " wants a "))
            fail_msg("%s: %s", bad[i], out);
        tg_free(out);
    }
}

static void test_help_and_version(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(tg("version", &out), 0);
    assert_true(tg_str_has_prefix(out, "trustgate "));
    tg_free(out);
    assert_int_equal(tg("help", &out), 0);
    const char *cmds[] = {"serve", "ask", "config", "audit", "review", "version"};
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
    /* the policies are checked too, every bad rule with its line */
    assert_int_equal(tg("config check tests/unit/data/config/bad_policy.yaml", &out), 1);
    assert_non_null(strstr(out, "bad_policy.yaml:11: unknown key 'money.maxx'"));
    assert_non_null(strstr(out, "bad_policy.yaml:17: rule 'shout': regex: bad pattern"));
    tg_free(out);
    assert_int_equal(tg("config check /nonexistent/trustgate.yaml", &out), 1);
    assert_non_null(strstr(out, "/nonexistent/trustgate.yaml"));
    tg_free(out);
}

/* `eval intent` on the demo's intents: the figures, the same-run baseline,
 * and a missing file named. */
static void test_eval_intent(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(tg("eval intent --train examples/insurance/intents.tsv "
                        "--test examples/insurance/intents.tsv --json",
                        &out),
                     0);
    json_t *o = json_loads(out, 0, NULL);
    if (!o)
        fail_msg("not JSON: %s", out);
    tg_free(out);
    assert_int_equal(tg_json_int(o, "labels", 0), 25);
    assert_int_equal(tg_json_int(o, "n", 0), tg_json_int(o, "train_examples", -1));
    /* evaluated on its own training set, a working classifier is near perfect */
    assert_true(tg_json_num(o, "accuracy", 0) >= 0.95);
    assert_true(tg_json_num(o, "baseline_text_us", 0) > 0);
    assert_true(tg_json_num(o, "predict_us", 0) > 0);
    json_decref(o);
    assert_int_equal(tg("eval intent --train /nonexistent/intents.tsv "
                        "--test examples/insurance/intents.tsv",
                        &out),
                     1);
    assert_non_null(strstr(out, "/nonexistent/intents.tsv"));
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
    snprintf(args, sizeof(args),
             "ask -c examples/insurance/trustgate.yaml --data %s/demo 我想了解重疾险", dir);
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

/* One turn through the demo deployment (builtin answerer, knowledge base,
 * intents, glossary); returns the parsed --json output. */
static json_t *demo_ask(const char *question)
{
    char args[1024], *out = NULL;
    snprintf(args, sizeof(args),
             "ask -c examples/insurance/trustgate.yaml --data %s/kbdemo --json '%s'", dir,
             question);
    assert_int_equal(tg(args, &out), 0);
    json_t *j = json_loads(out, 0, NULL);
    if (!j)
        fail_msg("not JSON: %s", out);
    tg_free(out);
    return j;
}

static bool cites(const json_t *turn, const char *needle)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(turn, "citations"), i, c)
    {
        if (strstr(tg_json_str(c, "source", ""), needle))
            return true;
    }
    return false;
}

static void test_demo_answers_from_the_knowledge_base(void **state)
{
    (void)state;
    /* The question the README promises an answer to, with its citation. */
    json_t *a = demo_ask("意外险理赔需要哪些材料？");
    assert_string_equal(tg_json_str(a, "decision", ""), "deliver");
    assert_string_equal(tg_json_str(a, "backend", ""), "builtin");
    assert_string_equal(tg_json_str(json_object_get(a, "intent"), "name", ""), "claim_materials");
    assert_true(tg_json_num(a, "confidence", 0) >= 0.7);
    assert_non_null(strstr(tg_json_str(a, "answer", ""), "身份证"));
    assert_non_null(strstr(tg_json_str(a, "answer", ""), "（来源："));
    assert_true(json_array_size(json_object_get(a, "citations")) > 0);
    json_decref(a);

    /* Traditional Chinese finds the Simplified knowledge base, and is
     * answered in Traditional characters. */
    a = demo_ask("意外險理賠需要哪些材料？");
    assert_non_null(strstr(tg_json_str(a, "answer", ""), "身份證"));
    json_decref(a);

    /* The accident policy's exclusions name skiing. */
    a = demo_ask("滑雪摔伤了，安心意外险赔吗");
    assert_non_null(strstr(tg_json_str(a, "answer", ""), "滑雪"));
    json_decref(a);

    /* A business term is answered from the glossary and cited as such. */
    a = demo_ask("合同履约率怎么算");
    assert_true(cites(a, "glossary"));
    assert_non_null(strstr(tg_json_str(a, "answer", ""), "不计入"));
    json_decref(a);

    /* Amounts are read from the customer's words. */
    a = demo_ask("我想投资60万，买什么理财好");
    json_t *money = json_array_get(json_object_get(json_object_get(a, "entities"), "money"), 0);
    assert_true(tg_json_num(money, "value_cny", 0) == 600000.0);
    assert_string_equal(tg_json_str(money, "text", ""), "60万");
    json_decref(a);

    /* Out of the knowledge base's domain: the holding reply, never a guess,
     * and a person who keeps its promise (a follow-up task). */
    a = demo_ask("秦始皇统一六国是哪一年？");
    assert_string_equal(tg_json_str(a, "answer", ""), "我需要更多时间分析，请稍候");
    assert_true(tg_json_num(a, "confidence", 1) < 0.7);
    assert_true(json_array_size(json_object_get(a, "tags")) > 0);
    assert_string_equal(tg_json_str(a, "decision", ""), "review");
    assert_true(tg_str_has_prefix(tg_json_str(a, "review_id", ""), "rev_"));
    json_decref(a);

    /* English works; Japanese breaks nothing. */
    a = demo_ask("What documents do I need for an accident claim?");
    assert_string_equal(tg_json_str(a, "decision", ""), "deliver");
    assert_true(json_array_size(json_object_get(a, "citations")) > 0);
    json_decref(a);
    a = demo_ask("保険の請求に必要な書類は何ですか");
    assert_string_not_equal(tg_json_str(a, "decision", ""), "error");
    assert_true(strlen(tg_json_str(a, "answer", "")) > 0);
    json_decref(a);
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

static void test_one_writer_per_data_dir(void **state)
{
    (void)state;
    char path[256], data[256], args[1024], *out = NULL;
    struct tg_h_proc gw;
    snprintf(data, sizeof(data), "%s/locked", dir);
    assert_int_equal(mkdir(data, 0755), 0);
    tg_h_write_file(
        dir, "locked.yaml",
        "backends:\n  - name: s\n    type: script\n    reply: hi\nroute:\n  backend: s\n", path,
        sizeof(path));
    assert_int_equal(tg_h_start_gateway(&gw, path, data), 0);
    /* the audit log has one writer: a second process on the same data refuses */
    snprintf(args, sizeof(args), "ask -c %s --data %s hello", path, data);
    assert_int_equal(tg(args, &out), 1);
    assert_non_null(strstr(out, "another trustgate process"));
    tg_free(out);
    snprintf(args, sizeof(args), "serve -c %s --listen 127.0.0.1:0 --data %s", path, data);
    assert_int_equal(tg(args, &out), 1);
    assert_non_null(strstr(out, "another trustgate process"));
    tg_free(out);
    snprintf(args, sizeof(args), "review decide --data %s rev_x --actor a --approve", data);
    assert_int_equal(tg(args, &out), 1);
    assert_non_null(strstr(out, "owns"));
    tg_free(out);
    /* reading the queue is fine */
    snprintf(args, sizeof(args), "review list --data %s", data);
    assert_int_equal(tg(args, &out), 0);
    assert_non_null(strstr(out, "no review tasks"));
    tg_free(out);
    assert_int_equal(tg_h_stop(&gw, 5000), 0);
    /* and once the server is gone, ask works on that data */
    snprintf(args, sizeof(args), "ask -c %s --data %s hello", path, data);
    assert_int_equal(tg(args, &out), 0);
    assert_string_equal(out, "hi\n");
    tg_free(out);
}

static void test_review_from_the_command_line(void **state)
{
    (void)state;
    char args[1024], *out = NULL;
    /* a credit decision is not AI's to make: held for a person */
    json_t *a = NULL;
    snprintf(
        args, sizeof(args),
        "ask -c examples/insurance/trustgate.yaml --data %s/rev --json 我的贷款申请你直接批了吧",
        dir);
    assert_int_equal(tg(args, &out), 0);
    a = json_loads(out, 0, NULL);
    tg_free(out);
    assert_non_null(a);
    assert_string_equal(tg_json_str(a, "decision", ""), "human_decision");
    const char *rid = tg_json_str(a, "review_id", NULL);
    assert_non_null(rid);
    char id[64];
    tg_strlcpy(id, rid, sizeof(id));
    assert_int_equal(json_array_size(json_object_get(a, "attestations")), 2);
    json_t *hit = json_array_get(json_object_get(a, "policy_hits"), 0);
    assert_string_equal(tg_json_str(hit, "rule", ""), "credit-decision");
    json_decref(a);

    snprintf(args, sizeof(args), "review list --data %s/rev", dir);
    assert_int_equal(tg(args, &out), 0);
    assert_non_null(strstr(out, id));
    assert_non_null(strstr(out, "requires: 已评估突发失业风险"));
    tg_free(out);
    /* one attestation short: refused */
    snprintf(args, sizeof(args),
             "review decide --data %s/rev %s --actor reviewer1 --edit 您的申请已提交授信审批。"
             " --attest 已核实收入流水真实性",
             dir, id);
    assert_int_equal(tg(args, &out), 1);
    assert_non_null(strstr(out, "missing required attestation: 已评估突发失业风险"));
    tg_free(out);
    /* approve has nothing to approve: AI wrote no draft */
    snprintf(args, sizeof(args),
             "review decide --data %s/rev %s --actor reviewer1 --approve"
             " --attest 已核实收入流水真实性 --attest 已评估突发失业风险",
             dir, id);
    assert_int_equal(tg(args, &out), 1);
    tg_free(out);
    snprintf(args, sizeof(args),
             "review decide --data %s/rev %s --actor reviewer1 --edit "
             "您的申请已提交授信审批，请致电13812345678。"
             " --attest 已核实收入流水真实性 --attest 已评估突发失业风险",
             dir, id);
    assert_int_equal(tg(args, &out), 0);
    assert_non_null(strstr(out, "decided (edit) by reviewer1"));
    tg_free(out);
    /* the edited answer is stored masked, as the daemon would store it */
    snprintf(args, sizeof(args), "cat %s/rev/trustgate.db %s/rev/trustgate.db-wal 2>/dev/null | "
             "grep -c 13812345678 || true", dir, dir);
    assert_int_equal(tg_h_run(args, &out), 0);
    assert_string_equal(out, "0\n");
    tg_free(out);
    snprintf(args, sizeof(args), "review list --data %s/rev --state decided --json", dir);
    assert_int_equal(tg(args, &out), 0);
    assert_non_null(strstr(out, "\"actor\":\"reviewer1\""));
    tg_free(out);
    /* the decision is on the record, and the record verifies */
    snprintf(args, sizeof(args), "audit verify --data %s/rev", dir);
    assert_int_equal(tg(args, &out), 0);
    assert_non_null(strstr(out, "intact: 2 leaves"));
    tg_free(out);
}

/* Releases on a stopped deployment's store: proposed with a content hash and
 * started as an experiment, every transition an audit leaf; the acts a
 * person authorizes (promote, freeze, unfreeze) are refused here, pointing
 * at the server (--url), whatever name is typed; evidence is never typed in.
 * (Promotion through the server: itest_experiments.) */
static void test_releases(void **state)
{
    (void)state;
    char args[1024], base[256], far[256];
    char *out = NULL;
    snprintf(base, sizeof(base), "-c examples/insurance/trustgate.yaml --data %s/rel", dir);
    tg_h_write_file(dir, "far.json", "{\"suite\":\"far\",\"far\":0.99}", far, sizeof(far));
    snprintf(args, sizeof(args), "release propose r1 %s --by super1 --why 'new FAQ'", base);
    assert_int_equal(tg(args, &out), 0);
    assert_non_null(strstr(out, "r1 v1 proposed: "));
    tg_free(out);
    snprintf(args, sizeof(args), "release propose r1 %s --by super1", base);
    assert_int_equal(tg(args, &out), 2); /* no reason: refused */
    tg_free(out);
    /* straight from proposed, with a hand-written FAR report: refused, the report unread */
    snprintf(args, sizeof(args), "release promote r1 %s --by super1 --why go --far-report %s",
             base, far);
    assert_int_equal(tg(args, &out), 2);
    assert_non_null(strstr(out, "--far-report and --srm are no longer taken"));
    tg_free(out);
    snprintf(args, sizeof(args),
             "release start-experiment r1 %s --share 0.1 --by super1 --why trial", base);
    assert_int_equal(tg(args, &out), 0);
    tg_free(out);
    /* a typed name proves nothing: freeze, unfreeze and promote go through the server */
    static const char *const acts[] = {"freeze", "unfreeze --by super1 --why ok",
                                       "promote r1 --by super1 --why 'all gates green'"};
    for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
        snprintf(args, sizeof(args), "release %s %s --by reviewer1 --why 'fairness alert'",
                 acts[i], base);
        assert_int_equal(tg(args, &out), 1);
        assert_non_null(strstr(out, "--url URL --token TOKEN"));
        tg_free(out);
    }
    snprintf(args, sizeof(args), "release show r1 %s", base);
    assert_int_equal(tg(args, &out), 0);
    json_t *j = json_loads(out, 0, NULL);
    tg_free(out);
    json_t *r = json_array_get(j, 0);
    assert_string_equal(tg_json_str(r, "state", ""), "experiment");
    assert_int_equal(strlen(tg_json_str(r, "hash", "")), 64);
    assert_true(json_object_size(json_object_get(r, "files")) > 50); /* config, policies, kb, ... */
    assert_int_equal(json_array_size(json_object_get(r, "history")), 2);
    json_decref(j);
    snprintf(args, sizeof(args), "release rollback r1 %s --by super1 --why complaints", base);
    assert_int_equal(tg(args, &out), 1); /* a supervisor's act: only through the server */
    assert_non_null(strstr(out, "--url"));
    tg_free(out);
    /* propose and experiment: two leaves; nothing refused above wrote one */
    snprintf(args, sizeof(args), "audit verify --data %s/rel", dir);
    assert_int_equal(tg(args, &out), 0);
    assert_non_null(strstr(out, "2 leaves"));
    tg_free(out);
}

/* An experiment on simulated traffic with a known true lift (10 % -> 13 %)
 * and an arm with none: the always-valid test finds the lift and stays
 * quiet on the null; a broken split is caught by the sample-ratio check. */
static void test_ab_report(void **state)
{
    (void)state;
    char path[256], args[600];
    snprintf(path, sizeof(path), "%s/ab.jsonl", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    uint64_t s = 0x2545F4914F6CDD1DULL;
    for (int day = 0; day < 30; day++)
        for (int k = 0; k < 300; k++) {
            const char *arm[3] = {"control", "faq-v2", "null"};
            const double rate[3] = {0.10, 0.13, 0.10};
            for (int a = 0; a < 3; a++) {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                double u = (double)(s >> 11) / 9007199254740992.0;
                fprintf(f, "{\"variant\":\"%s\",\"day\":%d,\"converted\":%d}\n", arm[a], day,
                        u < rate[a]);
            }
        }
    fclose(f);
    char *out = NULL, cmd[800];
    /* --json: stdout is one JSON object and nothing else */
    snprintf(cmd, sizeof(cmd), "%s ab report --data %s --control control --json 2>/dev/null", bin,
             path);
    assert_int_equal(tg_h_run(cmd, &out), 0);
    json_t *j = json_loads(out, 0, NULL);
    if (!j)
        fail_msg("stdout is not one JSON object: %s", out);
    tg_free(out);
    assert_true(tg_json_num(json_object_get(j, "srm"), "p", 0) > 0.01);
    /* one level throughout, 1 - alpha (alpha 0.01), on every interval: the 0/1 metric's
     * two-proportion CI is the unpooled one at z(0.995) = 2.575829 */
    assert_true(fabs(tg_json_num(j, "level", 0) - 0.99) < 1e-12);
    const json_t *arms = json_object_get(j, "arms");
    double cn = tg_json_num(json_array_get(arms, 0), "n", 0);
    double cm = tg_json_num(json_array_get(arms, 0), "mean", 0);
    assert_string_equal(tg_json_str(json_array_get(arms, 0), "name", ""), "control");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "variants"), i, v)
    {
        double avp = tg_json_num(v, "p_always_valid", -1),
               day = tg_json_num(v, "first_significant_day", -2);
        double vn = tg_json_num(v, "n", 0), vm = tg_json_num(v, "mean", 0);
        double se = sqrt(cm * (1 - cm) / cn + vm * (1 - vm) / vn);
        assert_true(fabs(tg_json_num(v, "ci_level", 0) - 0.99) < 1e-12);
        assert_true(fabs(tg_json_num(v, "sequence_level", 0) - 0.99) < 1e-12);
        if (fabs(tg_json_num(v, "ci_high", 0) - tg_json_num(v, "diff", 0) - 2.575829 * se) > 1e-6)
            fail_msg("%s: CI half-width %.6f, want z(0.995) se = %.6f",
                     tg_json_str(v, "variant", ""),
                     tg_json_num(v, "ci_high", 0) - tg_json_num(v, "diff", 0), 2.575829 * se);
        if (!strcmp(tg_json_str(v, "variant", ""), "faq-v2")) {
            assert_true(avp < 0.01);
            assert_true(day >= 0 && day < 20);
        } else {
            assert_true(avp >= 0.01); /* the null arm stays quiet */
            assert_true(day < 0);
        }
    }
    assert_int_equal(tg_json_int(j, "bh_significant", -1), 1);
    json_decref(j);
    /* configured 90/10 but run 1:1:1: a broken split */
    snprintf(args, sizeof(args),
             "ab report --data %s --control control --shares control=0.8,faq-v2=0.1,null=0.1",
             path);
    assert_int_equal(tg(args, &out), 0);
    assert_non_null(strstr(out, "MISMATCH"));
    tg_free(out);
    snprintf(args, sizeof(args), "ab report --data %s --control nobody", path);
    assert_int_equal(tg(args, &out), 1);
    tg_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_numbers_are_read_strictly),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_eval_intent),
        cmocka_unit_test(test_ask),
        cmocka_unit_test(test_demo_answers_from_the_knowledge_base),
        cmocka_unit_test(test_ask_with_unreachable_upstream),
        cmocka_unit_test(test_serve_refuses_bad_config),
        cmocka_unit_test(test_one_writer_per_data_dir),
        cmocka_unit_test(test_review_from_the_command_line),
        cmocka_unit_test(test_releases),
        cmocka_unit_test(test_ab_report),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
