/*
 * itest_workflow.c - agent workflows through the daemon, against the test
 * support server's policy-lookup tool (tests/support/fake_upstream.c):
 *
 *   - the coverage check on three policies: one whose exclusions name the
 *     activity (the answer quotes the clause and page), one that covers it,
 *     one whose clause is ambiguous (a reviewer decides, the run goes on
 *     with the decision and replies it) and an unknown policy (the tool's
 *     404 is its answer: no retry, the fallback step);
 *   - a tool that answers too late: tried again with the same idempotency
 *     key, then the fallback branch;
 *   - kill -9 while the tool's answer is on its way: the restarted daemon
 *     takes the run up at that step and asks again with the same key, so
 *     the tool ran once (it counts), and the run ends as it should;
 *   - what a client does wrong: unknown workflow, missing input, no key;
 *   - every step an audit leaf, and the log verifies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY "sk-wf-test"

static struct {
    char dir[64], cfg[256], data[256];
    struct tg_h_proc up, gw;
} W;

/* The coverage check of the example; the tool's delay and the
 * step's timeout vary by workflow. */
#define COVERAGE                                                                                           \
    "name: %s\n"                                                                                           \
    "input: [policy_number, activity]\n"                                                                   \
    "steps:\n"                                                                                             \
    "  - id: lookup\n"                                                                                     \
    "    kind: tool\n"                                                                                     \
    "    url: http://127.0.0.1:%d/tools/policy_lookup%s\n"                                                 \
    "    args: {policy: \"{{input.policy_number}}\"}\n"                                                    \
    "    timeout: %s\n"                                                                                    \
    "    retries: 1\n"                                                                                     \
    "    on_fail: no_answer\n"                                                                             \
    "  - id: check\n"                                                                                      \
    "    kind: decide\n"                                                                                   \
    "    cases:\n"                                                                                         \
    "      - {when: {path: lookup.exclusions, contains: \"{{input.activity}}\"}, next: "                   \
    "excluded}\n"                                                                                          \
    "      - {when: {path: lookup.coverage, contains: \"{{input.activity}}\"}, next: covered}\n"           \
    "    otherwise: ask_person\n"                                                                          \
    "  - id: ask_person\n"                                                                                 \
    "    kind: review\n"                                                                                   \
    "    queue: coverage\n"                                                                                \
    "    question: \"{{input.activity}} 是否在保单 {{input.policy_number}} 的保障范围内？\"\n" \
    "    draft: \"条款不保{{lookup.exclusions}}，未单独列出{{input.activity}}。\"\n"            \
    "    attestations: [已核对保单条款]\n"                                                          \
    "    next: answer\n"                                                                                   \
    "  - id: answer\n"                                                                                     \
    "    kind: reply\n"                                                                                    \
    "    text: \"{{ask_person.answer}}\"\n"                                                                \
    "  - id: excluded\n"                                                                                   \
    "    kind: reply\n"                                                                                    \
    "    text: \"不保{{input.activity}}：{{lookup.clause}}，第{{lookup.page}}页\"\n"                 \
    "  - id: covered\n"                                                                                    \
    "    kind: reply\n"                                                                                    \
    "    text: \"承保{{input.activity}}：{{lookup.clause}}，第{{lookup.page}}页\"\n"                 \
    "  - id: no_answer\n"                                                                                  \
    "    kind: reply\n"                                                                                    \
    "    text: \"暂时查不到保单{{input.policy_number}}，已转人工核实。\"\n"

/* The same check answering chat turns that name a policy number. */
#define CHAT                                                                                       \
    "name: coverage_chat\n"                                                                        \
    "input: [policy_number, question]\n"                                                           \
    "trigger:\n"                                                                                   \
    "  entities: [policy_no]\n"                                                                    \
    "  keywords: [保, 赔]\n"                                                                     \
    "  input: {policy_number: \"{{entities.policy_no}}\", question: \"{{turn.text}}\"}\n"          \
    "steps:\n"                                                                                     \
    "  - id: lookup\n"                                                                             \
    "    kind: tool\n"                                                                             \
    "    url: http://127.0.0.1:%d/tools/policy_lookup\n"                                           \
    "    args: {policy: \"{{input.policy_number}}\"}\n"                                            \
    "    headers: {Authorization: \"Bearer ${TG_TEST_TOOL_TOKEN}\"}\n"                             \
    "  - id: check\n"                                                                              \
    "    kind: decide\n"                                                                           \
    "    cases:\n"                                                                                 \
    "      - {when: {path: input.question, mentions: \"{{lookup.exclusions}}\"}, next: "           \
    "excluded}\n"                                                                                  \
    "      - {when: {path: input.question, mentions: \"{{lookup.coverage}}\"}, next: covered}\n"   \
    "    otherwise: person\n"                                                                      \
    "  - id: person\n"                                                                             \
    "    kind: review\n"                                                                           \
    "    question: \"{{input.question}}\"\n"                                                       \
    "    draft: \"条款不保{{lookup.exclusions}}。\"\n"                                        \
    "    next: answer\n"                                                                           \
    "  - id: answer\n"                                                                             \
    "    kind: reply\n"                                                                            \
    "    text: \"{{person.answer}}\"\n"                                                            \
    "  - id: excluded\n"                                                                           \
    "    kind: reply\n"                                                                            \
    "    text: \"不保{{check.matched}}：{{lookup.clause}}，第{{lookup.page}}页\"\n"          \
    "  - id: covered\n"                                                                            \
    "    kind: reply\n"                                                                            \
    "    text: \"承保{{check.matched}}：{{lookup.clause}}，第{{lookup.page}}页\"\n"

/* A claim paid by a tool that decides: the deployment's rule keeps the
 * call for a person. */
#define PAY                                                                                        \
    "name: pay_claim\n"                                                                            \
    "input: [policy_number]\n"                                                                     \
    "steps:\n"                                                                                     \
    "  - id: pay\n"                                                                                \
    "    kind: tool\n"                                                                             \
    "    tool: approve_claim\n"                                                                    \
    "    url: http://127.0.0.1:%d/tools/policy_lookup\n"                                           \
    "    args: {policy: \"{{input.policy_number}}\"}\n"                                            \
    "    on_fail: refused\n"                                                                       \
    "  - id: paid\n"                                                                               \
    "    kind: reply\n"                                                                            \
    "    text: \"已赔付：{{pay.product}}\"\n"                                                  \
    "  - id: refused\n"                                                                            \
    "    kind: reply\n"                                                                            \
    "    text: 理赔未获批准。\n"

/* A question to the deployment's ladder (the fake upstream here). */
#define ASK                                                                                        \
    "name: ask_model\n"                                                                            \
    "input: [question]\n"                                                                          \
    "steps:\n"                                                                                     \
    "  - id: think\n"                                                                              \
    "    kind: model\n"                                                                            \
    "    system: 只根据条款回答。\n"                                                       \
    "    prompt: \"问题：{{input.question}}\"\n"                                                \
    "    on_fail: sorry\n"                                                                         \
    "  - id: answer\n"                                                                             \
    "    kind: reply\n"                                                                            \
    "    text: \"{{think.text}}\"\n"                                                               \
    "  - id: sorry\n"                                                                              \
    "    kind: reply\n"                                                                            \
    "    text: 暂时无法回答。\n"

static int setup(void **state)
{
    (void)state;
    char text[4096], path[256];
    memset(&W, 0, sizeof(W));
    setenv("TG_TEST_TOOL_TOKEN", "s3cret-tool", 1); /* the chat workflow's tool token */
    if (!tg_h_tmpdir(W.dir, sizeof(W.dir)) || tg_h_start_upstream(&W.up, W.dir))
        return -1;
    snprintf(text, sizeof(text), COVERAGE, "coverage_check", W.up.port, "", "2s");
    tg_h_write_file(W.dir, "coverage.yaml", text, path, sizeof(path));
    /* the tool answers after 1.5 s: too late for 300 ms, in time for 10 s */
    snprintf(text, sizeof(text), COVERAGE, "slow_tool", W.up.port, "?delay_ms=1500", "300ms");
    tg_h_write_file(W.dir, "slow.yaml", text, path, sizeof(path));
    snprintf(text, sizeof(text), COVERAGE, "patient", W.up.port, "?delay_ms=1500", "10s");
    tg_h_write_file(W.dir, "patient.yaml", text, path, sizeof(path));
    snprintf(text, sizeof(text), CHAT, W.up.port);
    tg_h_write_file(W.dir, "chat.yaml", text, path, sizeof(path));
    snprintf(text, sizeof(text), PAY, W.up.port);
    tg_h_write_file(W.dir, "pay.yaml", text, path, sizeof(path));
    tg_h_write_file(W.dir, "ask.yaml", ASK, path, sizeof(path));
    snprintf(W.data, sizeof(W.data), "%s/data", W.dir);
    snprintf(text, sizeof(text),
             "server:\n  listen: \"127.0.0.1:0\"\n  data_dir: %s\n"
             "auth:\n  api_keys:\n    - name: t\n      key: " KEY "\n"
             "users:\n  - name: r1\n    role: reviewer\n    token: tg-r1\n"
             "backends:\n  - name: b\n    type: builtin\n"
             "  - name: up\n    type: openai\n    base_url: http://127.0.0.1:%d/v1\n"
             "route:\n  backend: up\n"
             "understand:\n  policy_number: 'P[0-9]{10}'\n"
             "policies:\n  - id: claim-decisions\n    description: 理赔结论由理赔员作出\n"
             "    stage: post\n    when:\n      tool.name: [approve_claim]\n"
             "    then:\n      - human_decision:\n          queue: claims\n"
             "          attestations: [已核对理赔材料]\n"
             "workflows: [coverage.yaml, slow.yaml, patient.yaml, chat.yaml, pay.yaml, ask.yaml]\n",
             W.data, W.up.port);
    tg_h_write_file(W.dir, "tg.yaml", text, W.cfg, sizeof(W.cfg));
    return tg_h_start_gateway(&W.gw, W.cfg, W.data);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    if (W.gw.pid)
        tg_h_stop(&W.gw, 5000);
    tg_h_stop(&W.up, 2000);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", W.dir);
    return getenv("TG_KEEP") ? 0 : system(cmd);
}

static json_t *call(const char *method, const char *path, const char *token, const char *body,
                    long *status)
{
    json_t *j = tg_h_api(W.gw.port, method, path, token, body, status);
    if (!j)
        fail_msg("%s %s: %ld, not JSON", method, path, *status);
    return j;
}

/* Start a run; its id in id. */
static void start(const char *wf, const char *policy, const char *activity, char id[64])
{
    char path[128], body[512];
    long st;
    snprintf(path, sizeof(path), "/v1/workflows/%s/runs", wf);
    snprintf(body, sizeof(body),
             "{\"input\":{\"policy_number\":\"%s\",\"activity\":\"%s\"},\"conversation_id\":"
             "\"conv-wf\"}",
             policy, activity);
    json_t *j = call("POST", path, KEY, body, &st);
    if (st != 201)
        fail_msg("start %s: %ld %s", wf, st, json_dumps(j, 0));
    tg_strlcpy(id, tg_json_str(j, "id", ""), 64);
    assert_string_equal(tg_json_str(j, "state", ""), "running");
    json_decref(j);
}

/* The run once it is no longer running (or after timeout_ms). */
static json_t *settled(const char *id, int timeout_ms)
{
    char path[128];
    long st;
    snprintf(path, sizeof(path), "/v1/workflow-runs/%s", id);
    for (int t = 0;; t += 50) {
        json_t *j = call("GET", path, KEY, NULL, &st);
        assert_int_equal(st, 200);
        if (strcmp(tg_json_str(j, "state", ""), "running") != 0 || t >= timeout_ms)
            return j;
        json_decref(j);
        usleep(50000);
    }
}

/* The run once it is done (a person's decision resumes it a moment after). */
static json_t *until_done(const char *id)
{
    for (int i = 0; i < 100; i++) {
        json_t *r = settled(id, 0);
        if (!strcmp(tg_json_str(r, "state", ""), "done"))
            return r;
        json_decref(r);
        usleep(50000);
    }
    fail_msg("run %s is not done after 5 s", id);
    return NULL;
}

static json_t *tool_stats(void)
{
    char url[128];
    struct tg_h_resp r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_control/tools", W.up.port);
    assert_int_equal(tg_h_http("GET", url, NULL, NULL, 0, 0, &r), 0);
    json_t *j = json_loads(r.body, 0, NULL);
    tg_h_resp_free(&r);
    assert_non_null(j);
    return j;
}

static void audit_verifies(void)
{
    char cmd[700], bin[256], *out = NULL;
    snprintf(cmd, sizeof(cmd), "%s audit verify -c %s 2>&1",
             tg_h_bin("trustgate", bin, sizeof(bin)), W.cfg);
    int rc = tg_h_run(cmd, &out);
    if (rc != 0 || !strstr(out ? out : "", "audit log intact"))
        fail_msg("audit verify exited %d: %s", rc, out ? out : "");
    tg_free(out);
}

static const char *step_status(const json_t *run, const char *step)
{
    return tg_json_str(json_object_get(json_object_get(run, "steps"), step), "status", "");
}

/* The three policies of the example, and one that does not exist. */
static void test_coverage_check(void **state)
{
    (void)state;
    char ex[64], cov[64], amb[64], none[64], path[160];
    long st;
    start("coverage_check", "P2024000001", "滑雪", ex);
    start("coverage_check", "P2024000002", "滑雪", cov);
    start("coverage_check", "P2024000003", "滑雪", amb);
    start("coverage_check", "P0000000404", "滑雪", none);

    json_t *r = settled(ex, 5000);
    assert_string_equal(tg_json_str(r, "state", ""), "done");
    assert_string_equal(tg_json_str(r, "reply", ""), "不保滑雪：第七条 责任免除（四），第3页");
    assert_string_equal(json_string_value(json_array_get(json_object_get(r, "trail"), 2)),
                        "excluded");
    json_decref(r);

    r = settled(cov, 5000);
    assert_string_equal(tg_json_str(r, "reply", ""), "承保滑雪：第五条 保险责任（二），第2页");
    json_decref(r);

    /* the tool's 404 is an answer: not asked again, the fallback replies */
    r = settled(none, 5000);
    assert_string_equal(tg_json_str(r, "state", ""), "done");
    assert_string_equal(step_status(r, "lookup"), "failed");
    assert_int_equal(
        tg_json_int(json_object_get(json_object_get(r, "steps"), "lookup"), "attempt", 0), 1);
    assert_string_equal(tg_json_str(r, "reply", ""), "暂时查不到保单P0000000404，已转人工核实。");
    json_decref(r);

    /* 高风险运动 does not name skiing: a person decides, with the clause in view */
    r = settled(amb, 5000);
    assert_string_equal(tg_json_str(r, "state", ""), "waiting");
    assert_string_equal(step_status(r, "ask_person"), "waiting");
    const char *rid = tg_json_str(r, "review_id", "");
    assert_true(tg_str_has_prefix(rid, "rev_"));
    snprintf(path, sizeof(path), "/v1/reviews/%s", rid);
    json_t *task = call("GET", path, "tg-r1", NULL, &st);
    assert_int_equal(st, 200);
    assert_string_equal(tg_json_str(task, "question", ""),
                        "滑雪 是否在保单 P2024000003 的保障范围内？");
    assert_string_equal(tg_json_str(task, "draft", ""), "条款不保高风险运动，未单独列出滑雪。");
    assert_string_equal(tg_json_str(json_object_get(task, "workflow"), "run", ""), amb);
    json_decref(task);
    /* the attestation the step names is required */
    snprintf(path, sizeof(path), "/v1/reviews/%s/decision", rid);
    json_t *d = call("POST", path, "tg-r1",
                     "{\"action\":\"edit\",\"text\":\"滑雪属于高风险运动，不在保障范围内。\","
                     "\"attestations\":[]}",
                     &st);
    assert_int_equal(st, 422);
    json_decref(d);
    json_decref(r);
    d = call("POST", path, "tg-r1",
             "{\"action\":\"edit\",\"text\":\"滑雪属于高风险运动，不在保障范围内。\","
             "\"attestations\":[\"已核对保单条款\"]}",
             &st);
    assert_int_equal(st, 200);
    json_decref(d);
    r = until_done(amb);
    assert_string_equal(tg_json_str(r, "reply", ""), "滑雪属于高风险运动，不在保障范围内。");
    const json_t *out =
        json_object_get(json_object_get(json_object_get(r, "steps"), "ask_person"), "output");
    assert_string_equal(tg_json_str(out, "actor", ""), "r1");
    assert_string_equal(tg_json_str(out, "action", ""), "edit");
    /* the steps before the person ran once: one lookup for this run */
    assert_int_equal(
        tg_json_int(json_object_get(json_object_get(r, "steps"), "lookup"), "attempt", 0), 1);
    json_decref(r);
    json_t *ts = tool_stats();
    assert_int_equal(tg_json_int(ts, "calls", 0), 4);
    json_decref(ts);
    /* every change of a step is a leaf: lookup started and ok, check, the
     * person waited for and answered, the reply */
    char cmd[800], *leaves = NULL;
    snprintf(cmd, sizeof(cmd),
             "sqlite3 %s/trustgate.db \"SELECT count(*) FROM audit WHERE CAST(data AS TEXT) LIKE "
             "'%%workflow_step%%' AND CAST(data AS TEXT) LIKE '%%%s%%'\"",
             W.data, amb);
    assert_int_equal(tg_h_run(cmd, &leaves), 0);
    leaves[strcspn(leaves, "\n")] = '\0';
    int64_t n_leaves = 0;
    assert_int_equal(tg_parse_i64(leaves, &n_leaves), TG_OK);
    assert_int_equal(n_leaves, 6);
    tg_free(leaves);
    audit_verifies();
}

/* A tool too slow for its timeout: once more with the same key, then the
 * fallback. */
static void test_timeout_takes_fallback(void **state)
{
    (void)state;
    char id[64];
    tg_h_upstream_control(W.up.port, "reset", "{}");
    start("slow_tool", "P2024000001", "滑雪", id);
    json_t *r = settled(id, 10000);
    assert_string_equal(tg_json_str(r, "state", ""), "done");
    const json_t *lk = json_object_get(json_object_get(r, "steps"), "lookup");
    assert_string_equal(tg_json_str(lk, "status", ""), "failed");
    assert_int_equal(tg_json_int(lk, "attempt", 0), 2);
    assert_non_null(strstr(tg_json_str(lk, "error", ""), "timeout"));
    assert_string_equal(tg_json_str(r, "reply", ""), "暂时查不到保单P2024000001，已转人工核实。");
    json_decref(r);
    json_t *ts = tool_stats();
    assert_int_equal(tg_json_int(ts, "calls", 0), 2);
    assert_int_equal(tg_json_int(ts, "runs", 0), 1); /* the same key: run once */
    json_decref(ts);
}

/* kill -9 while the tool's answer is on its way: the run goes on after the
 * restart, and the tool ran once. */
static void test_kill_resumes_once(void **state)
{
    (void)state;
    char id[64];
    tg_h_upstream_control(W.up.port, "reset", "{}");
    start("patient", "P2024000002", "滑雪", id);
    json_t *ts = NULL;
    for (int i = 0; i < 100; i++) {
        ts = tool_stats();
        if (tg_json_int(ts, "calls", 0) >= 1)
            break;
        json_decref(ts);
        ts = NULL;
        usleep(20000);
    }
    assert_non_null(ts);
    json_decref(ts);
    kill(W.gw.pid, SIGKILL);
    waitpid(W.gw.pid, NULL, 0);
    close(W.gw.out_fd);
    W.gw.pid = 0;
    assert_int_equal(tg_h_start_gateway(&W.gw, W.cfg, W.data), 0);
    json_t *r = settled(id, 10000);
    assert_string_equal(tg_json_str(r, "state", ""), "done");
    assert_string_equal(tg_json_str(r, "reply", ""), "承保滑雪：第五条 保险责任（二），第2页");
    const json_t *lk = json_object_get(json_object_get(r, "steps"), "lookup");
    assert_int_equal(tg_json_int(lk, "attempt", 0), 2);
    json_decref(r);
    ts = tool_stats();
    assert_int_equal(tg_json_int(ts, "calls", 0), 2);
    assert_int_equal(tg_json_int(ts, "runs", 0), 1);
    json_decref(ts);
    char *log = tg_h_log(&W.gw);
    assert_non_null(strstr(log, "taken up where they were"));
    tg_free(log);
    audit_verifies();
}

static void test_bad_requests(void **state)
{
    (void)state;
    long st;
    json_t *j = call("POST", "/v1/workflows/nope/runs", KEY, "{\"input\":{}}", &st);
    assert_int_equal(st, 404);
    assert_string_equal(tg_json_str(json_object_get(j, "error"), "code", ""), "unknown_workflow");
    json_decref(j);
    j = call("POST", "/v1/workflows/coverage_check/runs", KEY,
             "{\"input\":{\"policy_number\":\"P2024000001\"}}", &st);
    assert_int_equal(st, 400);
    assert_non_null(strstr(tg_json_str(json_object_get(j, "error"), "message", ""),
                           "input.activity is missing"));
    json_decref(j);
    j = call("POST", "/v1/workflows/coverage_check/runs", KEY, "[1]", &st);
    assert_int_equal(st, 400);
    json_decref(j);
    j = call("POST", "/v1/workflows/coverage_check/runs", NULL, "{\"input\":{}}", &st);
    assert_int_equal(st, 401);
    json_decref(j);
    j = call("GET", "/v1/workflow-runs/wfr_nope", KEY, NULL, &st);
    assert_int_equal(st, 404);
    json_decref(j);
    j = call("GET", "/v1/workflows", "tg-r1", NULL, &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_array_size(json_object_get(j, "workflows")), 6);
    json_decref(j);
}

/* One chat turn of customer with text; the response parsed. */
static json_t *chat(const char *customer, const char *text, int wait_s, long *status)
{
    char body[1024], url[128], wait[64];
    snprintf(body, sizeof(body),
             "{\"user\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", customer,
             text);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", W.gw.port);
    snprintf(wait, sizeof(wait), "X-Trustgate-Wait: %d", wait_s);
    const char *hdrs[] = {"Authorization: Bearer " KEY, "Content-Type: application/json",
                          wait_s ? wait : NULL, NULL};
    struct tg_h_resp r;
    assert_int_equal(tg_h_http("POST", url, hdrs, body, strlen(body), 30000, &r), 0);
    *status = r.status;
    json_t *j = json_loads(r.body, 0, NULL);
    tg_h_resp_free(&r);
    assert_non_null(j);
    return j;
}

static const char *content(const json_t *j)
{
    return tg_json_str(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"),
                       "content", "");
}

struct waiting {
    json_t *resp;
    long status;
};

static void *wait_turn(void *arg)
{
    struct waiting *w = arg;
    w->resp = chat("zs-3", "保单P2024000003的意外险，滑雪摔伤能赔吗", 20, &w->status);
    return NULL;
}

/* A chat turn naming a policy starts the workflow: the answer is the
 * run's reply, grounded in the tool's answer and cited; an ambiguous
 * clause holds the turn on the run's own review task, and the waiting
 * request gets the reviewer's answer. */
static void test_chat_turn_runs_the_workflow(void **state)
{
    (void)state;
    long st;
    json_t *j = chat("zs-1", "我的保单P2024000001，去滑雪受伤了能赔吗", 0, &st);
    assert_int_equal(st, 200);
    const json_t *tg = json_object_get(j, "trustgate");
    assert_string_equal(tg_json_str(tg, "decision", ""), "deliver");
    assert_string_equal(content(j), "不保滑雪：第七条 责任免除（四），第3页");
    /* the tool got the step's header, its token from the environment; the run does not keep it */
    json_t *ts = tool_stats();
    assert_string_equal(tg_json_str(ts, "authorization", ""), "Bearer s3cret-tool");
    json_decref(ts);
    const json_t *wf = json_object_get(tg, "workflow");
    assert_string_equal(tg_json_str(wf, "name", ""), "coverage_chat");
    assert_string_equal(tg_json_str(wf, "state", ""), "done");
    json_t *run = settled(tg_json_str(wf, "run", ""), 0);
    assert_string_equal(tg_json_str(run, "conversation_id", "x"),
                        tg_json_str(tg, "conversation_id", "y"));
    char *dump = json_dumps(run, 0);
    assert_null(strstr(dump, "s3cret"));
    free(dump);
    json_decref(run);
    bool cited = false;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(tg, "citations"), i, c) cited =
        cited || tg_str_has_prefix(tg_json_str(c, "source", ""), "workflow:");
    assert_true(cited);
    json_decref(j);

    /* no policy number: the usual answer, no workflow */
    j = chat("zs-2", "意外险能赔滑雪吗", 0, &st);
    assert_int_equal(st, 200);
    assert_null(json_object_get(json_object_get(j, "trustgate"), "workflow"));
    json_decref(j);

    /* ambiguous: the turn waits on the run's review task */
    pthread_t th;
    struct waiting w = {0};
    assert_int_equal(pthread_create(&th, NULL, wait_turn, &w), 0);
    char rid[64] = "";
    for (int i2 = 0; i2 < 100 && !rid[0]; i2++) {
        json_t *list = call("GET", "/v1/reviews?state=pending", "tg-r1", NULL, &st);
        json_t *task;
        json_array_foreach(json_object_get(list, "data"), i, task)
        {
            if (!strcmp(tg_json_str(task, "question", ""),
                        "保单P2024000003的意外险，滑雪摔伤能赔吗"))
                tg_strlcpy(rid, tg_json_str(task, "id", ""), sizeof(rid));
        }
        json_decref(list);
        if (!rid[0])
            usleep(50000);
    }
    assert_true(rid[0]);
    char path[128];
    snprintf(path, sizeof(path), "/v1/reviews/%s/decision", rid);
    j = call("POST", path, "tg-r1",
             "{\"action\":\"edit\",\"text\":\"滑雪属于高风险运动，本保单不赔。\"}", &st);
    assert_int_equal(st, 200);
    json_decref(j);
    pthread_join(th, NULL);
    assert_int_equal(w.status, 200);
    assert_string_equal(content(w.resp), "滑雪属于高风险运动，本保单不赔。");
    tg = json_object_get(w.resp, "trustgate");
    assert_string_equal(tg_json_str(tg, "review_id", ""), rid);
    assert_string_equal(tg_json_str(json_object_get(tg, "workflow"), "state", ""), "waiting");
    /* and the run went on with the decision */
    json_t *r = until_done(tg_json_str(json_object_get(tg, "workflow"), "run", ""));
    assert_string_equal(tg_json_str(r, "reply", ""), "滑雪属于高风险运动，本保单不赔。");
    json_decref(r);
    json_decref(w.resp);
    audit_verifies();
}

/* The review task a run waits on: its id, and the task in *task. */
static void waiting_task(const char *run_id, char rid[64], json_t **task)
{
    char path[160];
    long st;
    json_t *r = settled(run_id, 5000);
    assert_string_equal(tg_json_str(r, "state", ""), "waiting");
    tg_strlcpy(rid, tg_json_str(r, "review_id", ""), 64);
    json_decref(r);
    snprintf(path, sizeof(path), "/v1/reviews/%s", rid);
    *task = call("GET", path, "tg-r1", NULL, &st);
    assert_int_equal(st, 200);
}

/* A tool the deployment's rules keep for a person is not called until one
 * approves it with the rule's attestations; refused, the step fails. */
static void test_deciding_tool_waits_for_a_person(void **state)
{
    (void)state;
    char a[64], b[64], rid[64], path[160];
    long st;
    json_t *task, *j;
    tg_h_upstream_control(W.up.port, "reset", "{}");
    char body[128];
    snprintf(body, sizeof(body), "{\"input\":{\"policy_number\":\"P2024000002\"}}");
    j = call("POST", "/v1/workflows/pay_claim/runs", KEY, body, &st);
    assert_int_equal(st, 201);
    tg_strlcpy(a, tg_json_str(j, "id", ""), sizeof(a));
    json_decref(j);
    waiting_task(a, rid, &task);
    assert_string_equal(tg_json_str(task, "kind", ""), "human_decision");
    assert_string_equal(tg_json_str(task, "queue", ""), "claims");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(task, "required_attestations"), 0)),
        "已核对理赔材料");
    assert_non_null(strstr(tg_json_str(task, "question", ""), "approve_claim"));
    json_decref(task);
    json_t *ts = tool_stats();
    assert_int_equal(tg_json_int(ts, "calls", -1), 0); /* not called on AI's word */
    json_decref(ts);
    /* approving without the attestation is refused; with it, the call goes */
    snprintf(path, sizeof(path), "/v1/reviews/%s/decision", rid);
    j = call("POST", path, "tg-r1", "{\"action\":\"approve\",\"attestations\":[]}", &st);
    assert_int_equal(st, 422);
    json_decref(j);
    j = call("POST", path, "tg-r1",
             "{\"action\":\"approve\",\"attestations\":[\"已核对理赔材料\"]}", &st);
    assert_int_equal(st, 200);
    json_decref(j);
    json_t *r = until_done(a);
    assert_string_equal(tg_json_str(r, "reply", ""), "已赔付：安心意外伤害保险（运动版）");
    const json_t *appr =
        json_object_get(json_object_get(json_object_get(r, "steps"), "pay"), "approval");
    assert_string_equal(tg_json_str(appr, "state", ""), "approved");
    assert_string_equal(tg_json_str(appr, "by", ""), "r1");
    json_decref(r);
    ts = tool_stats();
    assert_int_equal(tg_json_int(ts, "calls", -1), 1);
    json_decref(ts);

    /* refused: the step fails, the fallback replies, the tool is not called */
    j = call("POST", "/v1/workflows/pay_claim/runs", KEY, body, &st);
    tg_strlcpy(b, tg_json_str(j, "id", ""), sizeof(b));
    json_decref(j);
    waiting_task(b, rid, &task);
    json_decref(task);
    snprintf(path, sizeof(path), "/v1/reviews/%s/decision", rid);
    j = call(
        "POST", path, "tg-r1",
        "{\"action\":\"reject\",\"reason\":\"材料不全\",\"attestations\":[\"已核对理赔材料\"]}",
        &st);
    assert_int_equal(st, 200);
    json_decref(j);
    r = until_done(b);
    assert_string_equal(tg_json_str(r, "reply", ""), "理赔未获批准。");
    assert_string_equal(
        tg_json_str(json_object_get(json_object_get(r, "steps"), "pay"), "error", ""),
        "a person did not approve the call");
    json_decref(r);
    ts = tool_stats();
    assert_int_equal(tg_json_int(ts, "calls", -1), 1);
    json_decref(ts);
    audit_verifies();
}

/* A person decides while no node runs (the command line on the stopped
 * deployment's store): the next start takes the run on from the decision. */
static void test_decided_while_down(void **state)
{
    (void)state;
    char id[64], rid[64], cmd[1200], bin[256], *out = NULL;
    json_t *task;
    start("coverage_check", "P2024000003", "滑雪", id);
    waiting_task(id, rid, &task);
    json_decref(task);
    assert_int_equal(tg_h_stop(&W.gw, 5000), 0);
    W.gw.pid = 0;
    snprintf(cmd, sizeof(cmd),
             "%s review decide -c %s %s --actor r1 --edit '滑雪不在保障范围内。' --attest "
             "已核对保单条款 2>&1",
             tg_h_bin("trustgate", bin, sizeof(bin)), W.cfg, rid);
    int rc = tg_h_run(cmd, &out);
    if (rc != 0)
        fail_msg("review decide: %d %s", rc, out ? out : "");
    tg_free(out);
    assert_int_equal(tg_h_start_gateway(&W.gw, W.cfg, W.data), 0);
    json_t *r = until_done(id);
    assert_string_equal(tg_json_str(r, "reply", ""), "滑雪不在保障范围内。");
    assert_string_equal(
        tg_json_str(
            json_object_get(json_object_get(json_object_get(r, "steps"), "ask_person"), "output"),
            "actor", ""),
        "r1");
    json_decref(r);
}

/* A model step asks the deployment's ladder; a failing upstream takes the
 * step's fallback. */
static void test_model_step(void **state)
{
    (void)state;
    char id[64];
    long st;
    tg_h_upstream_control(W.up.port, "reset", "{}");
    json_t *j = call("POST", "/v1/workflows/ask_model/runs", KEY,
                     "{\"input\":{\"question\":\"滑雪能赔吗\"}}", &st);
    assert_int_equal(st, 201);
    tg_strlcpy(id, tg_json_str(j, "id", ""), sizeof(id));
    json_decref(j);
    json_t *r = settled(id, 5000);
    assert_string_equal(tg_json_str(r, "state", ""), "done");
    assert_string_equal(tg_json_str(r, "reply", ""), "fake answer to: 问题：滑雪能赔吗");
    json_decref(r);
    /* the upstream's last request had the system prompt first */
    json_t *stats = tg_h_upstream_stats(W.up.port);
    const json_t *msgs = json_object_get(json_object_get(stats, "last_request"), "messages");
    assert_string_equal(tg_json_str(json_array_get(msgs, 0), "content", ""), "只根据条款回答。");
    json_decref(stats);

    assert_int_equal(tg_h_upstream_control(W.up.port, "default", "{\"status\":500}"), 0);
    j = call("POST", "/v1/workflows/ask_model/runs", KEY, "{\"input\":{\"question\":\"x\"}}", &st);
    tg_strlcpy(id, tg_json_str(j, "id", ""), sizeof(id));
    json_decref(j);
    r = settled(id, 10000);
    assert_string_equal(tg_json_str(r, "reply", ""), "暂时无法回答。");
    assert_non_null(
        strstr(tg_json_str(json_object_get(json_object_get(r, "steps"), "think"), "error", ""),
               "no model answered"));
    json_decref(r);
    tg_h_upstream_control(W.up.port, "reset", "{}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coverage_check),
        cmocka_unit_test(test_timeout_takes_fallback),
        cmocka_unit_test(test_kill_resumes_once),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_chat_turn_runs_the_workflow),
        cmocka_unit_test(test_deciding_tool_waits_for_a_person),
        cmocka_unit_test(test_decided_while_down),
        cmocka_unit_test(test_model_step),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
