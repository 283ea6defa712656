/*
 * itest_dialects.c - trustgate in front of upstreams that write the wire
 * format the way real servers do (the fake upstream's dialects, each taken
 * from a server's public documentation: docs/UPSTREAMS.md).  For every
 * dialect, through a gateway that asks the upstream for a whole answer, one
 * that streams from it, and one that streams through to the client: a
 * chat turn, a streamed turn, a turn with reasoning, and tool calls, both
 * whole and streamed.  Then what the OpenAI API promises beyond text: the
 * request fields forwarded, logprobs, media parts, malformed parts, a tool
 * call a rule reserves for a person, and personal data in tool arguments
 * kept out of the audit log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_FMT                                                                                 \
    "auth:\n  api_keys:\n    - name: it\n      key: tg-d\n"                                        \
    "backends:\n"                                                                                  \
    "  - name: primary\n    type: openai\n    base_url: http://127.0.0.1:%d/v1\n"                  \
    "    header_timeout: 2s\n    idle_timeout: 2s\n    total_timeout: 10s\n    stream: %s\n"      \
    "route:\n  backend: primary\n"                                                                 \
    "%s"                                                                                           \
    "policies:\n"                                                                                  \
    "  - id: loan-approval-tool\n    description: 批贷是人的决定\n    stage: post\n"        \
    "    when: {tool.name: [approve_loan]}\n"                                                      \
    "    then: [{human_decision: {queue: credit, attestations: [已核实收入流水真实性]}}]\n"

static const char *const dialects[] = {
    "compact", "spaced", "pretty",   "crlf",   "cr",  "comments", "nospace",
    "ascii",   "fields", "nodone",   "openai", "azure", "vllm",   "llamacpp",
    "ollama",  "tgi",    "deepseek", "qwen",   "litellm",
};

enum { GW_WHOLE, GW_STREAM, GW_THROUGH, GW__COUNT };
static const char *const gw_names[] = {"whole", "stream", "through"};

static char dir[64];
static struct tg_h_proc up, gw[GW__COUNT];

static int setup(void **state)
{
    (void)state;
    static const char *const stream[] = {"false", "true", "true"};
    static const char *const extra[] = {
        "", "",
        "ladder:\n  stream_through: true\n  rungs:\n    - {name: primary, backend: primary}\n"};
    char cfg[4096], path[256], data[128], name[32];
    if (!tg_h_tmpdir(dir, sizeof(dir)) || tg_h_start_upstream(&up, dir))
        return -1;
    for (int g = 0; g < GW__COUNT; g++) {
        snprintf(cfg, sizeof(cfg), CONFIG_FMT, up.port, stream[g], extra[g]);
        snprintf(name, sizeof(name), "%s.yaml", gw_names[g]);
        snprintf(data, sizeof(data), "%s/%s", dir, gw_names[g]);
        if (!tg_h_write_file(dir, name, cfg, path, sizeof(path)) ||
            tg_h_start_gateway(&gw[g], path, data))
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    for (int g = 0; g < GW__COUNT; g++)
        if (gw[g].pid && tg_h_stop(&gw[g], 5000) != 0)
            rc = -1;
    if (tg_h_stop(&up, 2000) != 0)
        rc = -1;
    if (rc) {
        fprintf(stderr, "a child did not exit cleanly; logs are in %s\n", dir);
    } else {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        rc = system(cmd) == 0 ? 0 : -1;
    }
    return rc;
}

static void control(const char *what, const char *json)
{
    if (tg_h_upstream_control(up.port, what, json) != 0)
        fail_msg("fake upstream refused %s %s", what, json);
}

/* ------------------------------------------------------------ the answer, whole or streamed */

/* What a client reads: the completion, or the chunks of a stream joined. */
struct answer {
    long status;
    char content[4096];
    bool content_null;
    char finish[32];
    char decision[32];
    json_t *tools;    /* [{id, type, function: {name, arguments}}] joined by index */
    json_t *logprobs; /* the choice's logprobs, from any chunk */
    json_t *trustgate;
    int chunks;
};

static void answer_free(struct answer *a)
{
    json_decref(a->tools);
    json_decref(a->logprobs);
    json_decref(a->trustgate);
}

static void append(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(dst);
    snprintf(dst + n, cap - n, "%s", s);
}

/* One streamed tool-call delta joined into a->tools by its index. */
static void join_tool(struct answer *a, const json_t *d)
{
    size_t idx = (size_t)json_integer_value(json_object_get(d, "index"));
    while (json_array_size(a->tools) <= idx)
        json_array_append_new(a->tools, json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", "", "type",
                                                  "function", "function", "name", "",
                                                  "arguments", ""));
    json_t *call = json_array_get(a->tools, idx);
    json_t *fn = json_object_get(call, "function");
    const json_t *dfn = json_object_get(d, "function");
    if (json_is_string(json_object_get(d, "id")))
        json_object_set(call, "id", json_object_get(d, "id"));
    if (json_is_string(json_object_get(d, "type")))
        json_object_set(call, "type", json_object_get(d, "type"));
    const char *name = tg_json_str(dfn, "name", NULL);
    if (name && name[0]) {
        char joined[256];
        snprintf(joined, sizeof(joined), "%s%s", tg_json_str(fn, "name", ""), name);
        json_object_set_new(fn, "name", json_string(joined));
    }
    const char *args = tg_json_str(dfn, "arguments", NULL);
    if (args) {
        char joined[2048];
        snprintf(joined, sizeof(joined), "%s%s", tg_json_str(fn, "arguments", ""), args);
        json_object_set_new(fn, "arguments", json_string(joined));
    }
}

static void read_stream(const char *body, struct answer *a)
{
    a->tools = json_array();
    bool done = false;
    for (const char *p = body; p && *p;) {
        const char *end = strstr(p, "\n\n");
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > 6 && strncmp(p, "data: ", 6) == 0) {
            if (n == 12 && strncmp(p + 6, "[DONE]", 6) == 0) {
                done = true;
            } else {
                json_t *j = json_loadb(p + 6, n - 6, 0, NULL);
                if (!j)
                    fail_msg("event is not JSON: %.*s", (int)n, p);
                a->chunks++;
                json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
                json_t *d = json_object_get(ch, "delta");
                const char *c = tg_json_str(d, "content", NULL);
                if (c)
                    append(a->content, sizeof(a->content), c);
                size_t i;
                json_t *t;
                json_array_foreach(json_object_get(d, "tool_calls"), i, t) join_tool(a, t);
                const char *fr = tg_json_str(ch, "finish_reason", NULL);
                if (fr)
                    snprintf(a->finish, sizeof(a->finish), "%s", fr);
                if (json_is_object(json_object_get(ch, "logprobs")))
                    a->logprobs = json_incref(json_object_get(ch, "logprobs"));
                if (json_object_get(j, "trustgate"))
                    a->trustgate = json_incref(json_object_get(j, "trustgate"));
                json_decref(j);
            }
        }
        p = end ? end + 2 : NULL;
    }
    assert_true(done);
    if (!json_array_size(a->tools)) {
        json_decref(a->tools);
        a->tools = NULL;
    }
}

static void read_whole(const char *body, struct answer *a)
{
    json_t *j = json_loads(body, 0, NULL);
    if (!j)
        fail_msg("not JSON: %s", body);
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    json_t *m = json_object_get(ch, "message");
    a->content_null = json_is_null(json_object_get(m, "content"));
    snprintf(a->content, sizeof(a->content), "%s", tg_json_str(m, "content", ""));
    snprintf(a->finish, sizeof(a->finish), "%s", tg_json_str(ch, "finish_reason", ""));
    if (json_is_array(json_object_get(m, "tool_calls")))
        a->tools = json_incref(json_object_get(m, "tool_calls"));
    if (json_is_object(json_object_get(ch, "logprobs")))
        a->logprobs = json_incref(json_object_get(ch, "logprobs"));
    a->trustgate = json_incref(json_object_get(j, "trustgate"));
    json_decref(j);
}

/* Ask gateway g; body is the request JSON. */
static void ask(int g, const char *body, struct answer *a)
{
    struct tg_h_resp r;
    memset(a, 0, sizeof(*a));
    assert_int_equal(tg_h_chat(gw[g].port, "tg-d", body, &r), 0);
    a->status = r.status;
    if (r.status == 200) {
        if (strstr(r.headers, "text/event-stream"))
            read_stream(r.body, a);
        else
            read_whole(r.body, a);
        snprintf(a->decision, sizeof(a->decision), "%s",
                 tg_json_str(a->trustgate, "decision", ""));
    } else {
        a->trustgate = json_loads(r.body, 0, NULL);
    }
    tg_h_resp_free(&r);
}

static void chat(int g, bool stream, const char *text, const char *more, struct answer *a)
{
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"model\":\"fake-model\",\"stream\":%s,\"messages\":[{\"role\":\"user\","
             "\"content\":\"%s\"}]%s}",
             stream ? "true" : "false", text, more ? more : "");
    ask(g, body, a);
}

/* ------------------------------------------------------------ every dialect */

#define TOOLS_PARAM                                                                                \
    ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":"    \
    "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]"
/* Two calls; the second's arguments carry Chinese, an escaped quote and a nested object. */
#define TOOL_CALLS                                                                                 \
    "[{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": \\\"北京\\\"}\"},"             \
    "{\"name\":\"lookup_policy\",\"arguments\":\"{\\\"no\\\":\\\"P-\\\\\\\"7\\\\\\\"\\\","        \
    "\\\"opts\\\":{\\\"deep\\\":[1,2]}}\"}]"

static void expect_tools(const char *where, const struct answer *a)
{
    if (a->status != 200 || strcmp(a->decision, "deliver") != 0)
        fail_msg("%s: status %ld decision %s", where, a->status, a->decision);
    if (json_array_size(a->tools) != 2)
        fail_msg("%s: %zu tool calls", where, json_array_size(a->tools));
    const json_t *f0 = json_object_get(json_array_get(a->tools, 0), "function");
    const json_t *f1 = json_object_get(json_array_get(a->tools, 1), "function");
    assert_string_equal(tg_json_str(f0, "name", ""), "get_weather");
    assert_string_equal(tg_json_str(f0, "arguments", ""), "{\"city\": \"北京\"}");
    assert_string_equal(tg_json_str(f1, "name", ""), "lookup_policy");
    assert_string_equal(tg_json_str(f1, "arguments", ""),
                        "{\"no\":\"P-\\\"7\\\"\",\"opts\":{\"deep\":[1,2]}}");
    for (size_t i = 0; i < 2; i++) {
        const json_t *call = json_array_get(a->tools, i);
        assert_string_equal(tg_json_str(call, "type", ""), "function");
        assert_non_null(tg_json_str(call, "id", NULL));
    }
    assert_string_equal(a->finish, "tool_calls");
    assert_string_equal(a->content, "");
}

static void test_every_dialect(void **state)
{
    (void)state;
    char step[1024], where[96];
    struct answer a;
    for (size_t d = 0; d < TG_ARRAY_LEN(dialects); d++) {
        for (int g = 0; g < GW__COUNT; g++) {
            for (int stream = 0; stream < 2; stream++) {
                snprintf(where, sizeof(where), "%s via %s, client stream %d", dialects[d],
                         gw_names[g], stream);
                control("reset", "{}");
                snprintf(step, sizeof(step), "{\"dialect\":\"%s\"}", dialects[d]);
                control("default", step);
                /* a plain answer */
                chat(g, stream, "意外险怎么理赔？", NULL, &a);
                if (a.status != 200 || strcmp(a.content, "fake answer to: 意外险怎么理赔？") != 0)
                    fail_msg("%s: %ld '%s'", where, a.status, a.content);
                assert_string_equal(a.decision, "deliver");
                assert_string_equal(a.finish, "stop");
                answer_free(&a);
                /* reasoning is never part of the answer */
                snprintf(step, sizeof(step),
                         "{\"steps\":[{\"dialect\":\"%s\",\"reasoning\":\"先想一想\"}]}",
                         dialects[d]);
                control("script", step);
                chat(g, stream, "hello", NULL, &a);
                if (a.status != 200 || strcmp(a.content, "fake answer to: hello") != 0)
                    fail_msg("%s, reasoning: %ld '%s'", where, a.status, a.content);
                answer_free(&a);
                /* tool calls, whole or as deltas */
                snprintf(step, sizeof(step), "{\"steps\":[{\"dialect\":\"%s\",\"tool_calls\":%s}]}",
                         dialects[d], TOOL_CALLS);
                control("script", step);
                chat(g, stream, "北京天气如何？", TOOLS_PARAM, &a);
                expect_tools(where, &a);
                if (!stream)
                    assert_true(a.content_null);
                answer_free(&a);
                /* the length limit is the upstream's finish reason, passed on */
                snprintf(step, sizeof(step),
                         "{\"steps\":[{\"dialect\":\"%s\",\"finish_reason\":\"length\"}]}",
                         dialects[d]);
                control("script", step);
                chat(g, stream, "long", NULL, &a);
                if (a.status != 200 || strcmp(a.finish, "length") != 0)
                    fail_msg("%s, length: %ld '%s'", where, a.status, a.finish);
                answer_free(&a);
            }
        }
    }
}

/* ------------------------------------------------------------ the API beyond text */

static void test_forwarded_fields(void **state)
{
    (void)state;
    struct answer a;
    control("reset", "{}");
    chat(GW_STREAM, false, "转给上游的字段",
         TOOLS_PARAM ",\"tool_choice\":\"auto\",\"parallel_tool_calls\":false,\"logprobs\":true,"
                     "\"top_logprobs\":2,\"user\":\"customer-42\",\"metadata\":{\"order\":\"A1\"},"
                     "\"reasoning_effort\":\"low\",\"seed\":7,\"trustgate_internal\":1",
         &a);
    assert_int_equal(a.status, 200);
    /* logprobs come back in the OpenAI shape, one entry per token */
    assert_non_null(a.logprobs);
    assert_true(json_array_size(json_object_get(a.logprobs, "content")) > 0);
    json_t *first = json_array_get(json_object_get(a.logprobs, "content"), 0);
    assert_non_null(tg_json_str(first, "token", NULL));
    assert_true(json_array_size(json_object_get(first, "top_logprobs")) == 2);
    answer_free(&a);
    json_t *st = tg_h_upstream_stats(up.port);
    json_t *req = json_object_get(st, "last_request");
    assert_string_equal(json_string_value(json_object_get(json_array_get(
                            json_object_get(req, "tools"), 0), "type")),
                        "function");
    assert_string_equal(tg_json_str(req, "tool_choice", ""), "auto");
    assert_true(json_is_false(json_object_get(req, "parallel_tool_calls")));
    assert_true(json_is_true(json_object_get(req, "logprobs")));
    assert_int_equal(tg_json_int(req, "top_logprobs", 0), 2);
    assert_string_equal(tg_json_str(json_object_get(req, "metadata"), "order", ""), "A1");
    assert_string_equal(tg_json_str(req, "reasoning_effort", ""), "low");
    assert_int_equal(tg_json_int(req, "seed", 0), 7);
    /* the upstream learns a pseudonym, never the customer's own id */
    const char *user = tg_json_str(req, "user", "");
    assert_int_equal(strlen(user), 32);
    assert_null(strstr(user, "customer-42"));
    assert_null(json_object_get(req, "trustgate_internal"));
    json_decref(st);
}

static void test_media_parts(void **state)
{
    (void)state;
    struct answer a;
    control("reset", "{}");
    ask(GW_WHOLE,
        "{\"model\":\"fake-model\",\"messages\":[{\"role\":\"user\",\"content\":["
        "{\"type\":\"text\",\"text\":\"这张图是什么？\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}},"
        "{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"UklGRg==\",\"format\":\"wav\"}}]}]}",
        &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.content, "fake answer to: 这张图是什么？");
    answer_free(&a);
    json_t *st = tg_h_upstream_stats(up.port);
    json_t *parts = json_object_get(
        json_array_get(json_object_get(json_object_get(st, "last_request"), "messages"), 0),
        "content");
    assert_int_equal(json_array_size(parts), 3);
    assert_string_equal(tg_json_str(json_object_get(json_array_get(parts, 1), "image_url"), "url",
                                    ""),
                        "data:image/png;base64,iVBORw0KGgo=");
    json_decref(st);
    /* a malformed part is refused, naming it */
    static const char *const bad[][2] = {
        {"{\"type\":\"text\",\"text\":5}", "messages[0].content[0].text"},
        {"{\"type\":\"image_url\",\"image_url\":\"http://x\"}", "messages[0].content[0].image_url"},
        {"{\"text\":\"no type\"}", "messages[0].content[0]"},
        {"7", "messages[0].content[0]"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        char body[512];
        snprintf(body, sizeof(body), "{\"messages\":[{\"role\":\"user\",\"content\":[%s]}]}",
                 bad[i][0]);
        ask(GW_WHOLE, body, &a);
        assert_int_equal(a.status, 400);
        const char *msg = tg_json_str(json_object_get(a.trustgate, "error"), "message", "");
        if (!strstr(msg, bad[i][1]))
            fail_msg("part %zu: '%s' does not name %s", i, msg, bad[i][1]);
        answer_free(&a);
    }
}

/* The audit leaf recorded for the turn with this index. */
static char *leaf(int g, int64_t index)
{
    char path[256];
    sqlite3 *db = NULL;
    char *out = NULL;
    snprintf(path, sizeof(path), "%s/%s/trustgate.db", dir, gw_names[g]);
    for (int tries = 0; tries < 50 && !out; tries++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(db, "SELECT data FROM audit WHERE idx = ?", -1, &st, NULL) ==
                SQLITE_OK) {
            sqlite3_bind_int64(st, 1, index);
            if (sqlite3_step(st) == SQLITE_ROW)
                out = strdup((const char *)sqlite3_column_text(st, 0));
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        if (!out)
            usleep(100000); /* the writer commits in groups */
    }
    return out;
}

static void test_tool_rules(void **state)
{
    (void)state;
    struct answer a;
    for (int stream = 0; stream < 2; stream++) {
        control("reset", "{}");
        /* a model that approves a loan by calling a function: a person decides */
        control("script", "{\"steps\":[{\"tool_calls\":[{\"name\":\"approve_loan\","
                          "\"arguments\":\"{\\\"amount\\\": 600000, \\\"phone\\\": "
                          "\\\"13812345678\\\"}\"}]}]}");
        chat(GW_STREAM, stream, "帮我把贷款批了", TOOLS_PARAM, &a);
        assert_int_equal(a.status, 200);
        assert_string_equal(a.decision, "human_decision");
        assert_null(a.tools); /* nothing goes to the client to execute */
        assert_string_not_equal(a.finish, "tool_calls");
        json_t *hits = json_object_get(a.trustgate, "policy_hits");
        assert_string_equal(tg_json_str(json_array_get(hits, 0), "rule", ""),
                            "loan-approval-tool");
        int64_t idx = tg_json_int(a.trustgate, "audit_index", -1);
        answer_free(&a);
        /* the record names the call; the phone number in its arguments is masked */
        char *l = leaf(GW_STREAM, idx);
        assert_non_null(l);
        if (!strstr(l, "\"tool_calls\":[{\"arguments\":") || !strstr(l, "approve_loan") ||
            strstr(l, "13812345678") || !strstr(l, "138****5678"))
            fail_msg("audit leaf: %s", l);
        free(l);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_dialect),
        cmocka_unit_test(test_forwarded_fields),
        cmocka_unit_test(test_media_parts),
        cmocka_unit_test(test_tool_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
