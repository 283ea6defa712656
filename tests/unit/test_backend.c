/*
 * test_backend.c - the backends in process: the openai backend against
 * the fake upstream on a real event loop (whole and streamed answers,
 * keep-alive, failures, timeouts, cancellation) and the script backend.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "metrics/metrics.h"

#include "../support/harness.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

struct fx {
    char dir[64];
    struct tg_h_proc up;
    struct event_base *base;
    struct tg_metrics *metrics;
};

static struct fx F;

static int group_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    tg_log_set_level(TG_LOG_OFF);
    if (!tg_h_tmpdir(F.dir, sizeof(F.dir)) || tg_h_start_upstream(&F.up, F.dir))
        return -1;
    F.base = event_base_new();
    F.metrics = tg_metrics_new();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    tg_metrics_free(F.metrics);
    event_base_free(F.base);
    int rc = tg_h_stop(&F.up, 2000);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", F.dir);
    if (system(cmd) != 0)
        rc = -1;
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
}

static int reset(void **state)
{
    (void)state;
    return tg_h_upstream_control(F.up.port, "reset", "{}");
}

static void conf_for(struct tg_backend_conf *c, bool stream, char *url, size_t urllen)
{
    memset(c, 0, sizeof(*c));
    snprintf(url, urllen, "http://127.0.0.1:%d/v1", F.up.port);
    tg_strlcpy(c->name, "up", sizeof(c->name));
    c->type = TG_BACKEND_OPENAI;
    c->base_url = url;
    c->api_key = "sk-test";
    c->connect_timeout_ms = 1000;
    c->header_timeout_ms = 500;
    c->total_timeout_ms = 3000;
    c->idle_timeout_ms = 400;
    c->stream = stream;
    c->max_connections = 4;
}

struct outcome {
    int calls;
    struct tg_backend_result res;
    char content[512];
};

static void result_cb(struct tg_backend_result *res, void *arg)
{
    struct outcome *o = arg;
    o->calls++;
    o->res = *res;
    o->res.content = NULL;
    snprintf(o->content, sizeof(o->content), "%.*s", (int)res->len,
             res->content ? res->content : "");
    event_base_loopbreak(F.base);
}

/* One request through a fresh backend; waits on the loop for the answer. */
static struct outcome ask(struct tg_backend *b, const char *text, const char *model)
{
    struct outcome o;
    memset(&o, 0, sizeof(o));
    json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", text);
    json_t *params = json_pack("{s:f, s:i, s:s}", "temperature", 0.5, "max_tokens", 50, "user",
                               "must-not-be-forwarded");
    struct tg_backend_request rq = {.model = model, .messages = msgs, .params = params};
    assert_int_equal(tg_backend_generate(b, &rq, result_cb, &o, NULL), TG_OK);
    json_decref(msgs);
    json_decref(params);
    if (!o.calls)
        event_base_dispatch(F.base);
    assert_int_equal(o.calls, 1);
    return o;
}

static struct tg_backend *make(struct tg_backend_conf *c)
{
    struct tg_backend *b = NULL;
    char err[256];
    struct tg_backend_env env = {.base = F.base, .metrics = F.metrics};
    assert_int_equal(tg_backend_create(c, &env, &b, err, sizeof(err)), TG_OK);
    return b;
}

static void test_whole_and_streamed_answers(void **state)
{
    (void)state;
    char url[128];
    struct tg_backend_conf c;
    for (int stream = 0; stream <= 1; stream++) {
        conf_for(&c, stream, url, sizeof(url));
        struct tg_backend *b = make(&c);
        struct outcome o = ask(b, "你好，请介绍一下这款保险产品的保障范围", "m-1");
        assert_int_equal(o.res.err, TG_OK);
        assert_int_equal(o.res.status, 200);
        assert_string_equal(o.content, "fake answer to: 你好，请介绍一下这款保险产品的保障范围");
        assert_string_equal(o.res.finish_reason, "stop");
        assert_string_equal(o.res.model, "m-1");
        json_t *st = tg_h_upstream_stats(F.up.port);
        json_t *last = json_object_get(st, "last_request");
        assert_int_equal(tg_json_bool(last, "stream", !stream), stream);
        assert_int_equal(tg_json_int(last, "max_tokens", 0), 50);
        assert_null(json_object_get(last, "user"));
        assert_string_equal(tg_json_str(json_object_get(st, "last_headers"), "authorization", ""),
                            "Bearer sk-test");
        json_decref(st);
        tg_backend_free(b);
    }
}

static void test_fixed_model_and_keepalive(void **state)
{
    (void)state;
    char url[128];
    struct tg_backend_conf c;
    conf_for(&c, false, url, sizeof(url));
    c.model = "fixed-model";
    struct tg_backend *b = make(&c);
    for (int i = 0; i < 4; i++) {
        struct outcome o = ask(b, "hi", "client-choice");
        assert_int_equal(o.res.err, TG_OK);
    }
    json_t *st = tg_h_upstream_stats(F.up.port);
    assert_string_equal(tg_json_str(json_object_get(st, "last_request"), "model", ""),
                        "fixed-model");
    assert_int_equal(tg_json_int(st, "total_connections", 0), 1);
    json_decref(st);
    tg_backend_free(b);
}

static void test_failures(void **state)
{
    (void)state;
    static const struct {
        bool stream;
        const char *step;
        int err;
        const char *kind;
        int64_t retry_after_ms;
    } cases[] = {
        {false, "{\"status\":503}", TG_E_UPSTREAM, "status_503", -1},
        {false, "{\"status\":429,\"retry_after\":7}", TG_E_UPSTREAM, "status_429", 7000},
        {false, "{\"status\":504}", TG_E_TIMEOUT, "status_504", -1},
        {false, "{\"hang\":true}", TG_E_TIMEOUT, "header_timeout", -1},
        {false, "{\"delay_ms\":800}", TG_E_TIMEOUT, "header_timeout", -1},
        {true, "{\"ttft_ms\":800}", TG_E_TIMEOUT, "first_token_timeout", -1},
        {true, "{\"stall_after\":2}", TG_E_TIMEOUT, "idle_timeout", -1},
        {true, "{\"cut_after\":2}", TG_E_UPSTREAM, "stream_cut", -1},
        {true, "{\"malformed_at\":1}", TG_E_UPSTREAM, "malformed_stream", -1},
        {false, "{\"content\":\"\"}", TG_OK, "", -1},
    };
    char url[128];
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        char script[256];
        struct tg_backend_conf c;
        assert_int_equal(tg_h_upstream_control(F.up.port, "reset", "{}"), 0);
        /* fresh connections each time, so libcurl's retry on a reused one stays out */
        snprintf(script, sizeof(script), "{\"steps\":[%s]}", cases[i].step);
        assert_int_equal(tg_h_upstream_control(F.up.port, "script", script), 0);
        conf_for(&c, cases[i].stream, url, sizeof(url));
        struct tg_backend *b = make(&c);
        int64_t t0 = tg_clock_mono_ns();
        struct outcome o = ask(b, "hi", "m");
        int64_t ms = (tg_clock_mono_ns() - t0) / 1000000;
        if (o.res.err != cases[i].err || strcmp(o.res.kind, cases[i].kind) != 0)
            fail_msg("case %zu %s: got err %d kind '%s' (%s)", i, cases[i].step, o.res.err,
                     o.res.kind, o.res.message);
        assert_int_equal(o.res.retry_after_ms, cases[i].retry_after_ms);
        assert_true(ms < 2000); /* every timeout fires well before the total timeout */
        if (cases[i].err)
            assert_true(o.res.message[0] != '\0');
        tg_backend_free(b);
    }
}

static void test_cancel_never_calls_back(void **state)
{
    (void)state;
    char url[128];
    struct tg_backend_conf c;
    conf_for(&c, false, url, sizeof(url));
    struct tg_backend *b = make(&c);
    assert_int_equal(tg_h_upstream_control(F.up.port, "script", "{\"steps\":[{\"delay_ms\":200}]}"),
                     0);
    struct outcome o;
    memset(&o, 0, sizeof(o));
    json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", "x");
    struct tg_backend_request rq = {.model = "m", .messages = msgs};
    struct tg_backend_call *call = NULL;
    assert_int_equal(tg_backend_generate(b, &rq, result_cb, &o, &call), TG_OK);
    assert_non_null(call);
    tg_backend_cancel(call);
    struct timeval tv = {0, 400000};
    event_base_loopexit(F.base, &tv);
    event_base_dispatch(F.base);
    assert_int_equal(o.calls, 0);
    json_decref(msgs);
    tg_backend_free(b);
}

static void test_script_backend_answers_at_once(void **state)
{
    (void)state;
    struct tg_backend_conf c;
    memset(&c, 0, sizeof(c));
    tg_strlcpy(c.name, "holding", sizeof(c.name));
    c.type = TG_BACKEND_SCRIPT;
    c.reply = "我需要更多时间分析，请稍候";
    struct tg_backend *b = make(&c);
    assert_string_equal(tg_backend_type(b), "script");
    struct outcome o;
    memset(&o, 0, sizeof(o));
    json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", "x");
    struct tg_backend_request rq = {.messages = msgs};
    assert_int_equal(tg_backend_generate(b, &rq, result_cb, &o, NULL), TG_OK);
    assert_int_equal(o.calls, 1); /* before generate returned */
    assert_string_equal(o.content, "我需要更多时间分析，请稍候");
    json_decref(msgs);
    tg_backend_free(b);
}

static struct outcome builtin_answer(struct tg_backend_conf *c, const char *question,
                                     const struct tg_evidence *ev, size_t n, double coverage,
                                     double intent)
{
    struct tg_backend *b = make(c);
    struct outcome o;
    memset(&o, 0, sizeof(o));
    struct tg_backend_request rq = {.question = question,
                                    .evidence = ev,
                                    .n_evidence = n,
                                    .query_coverage = coverage,
                                    .intent_probability = intent};
    assert_int_equal(tg_backend_generate(b, &rq, result_cb, &o, NULL), TG_OK);
    assert_int_equal(o.calls, 1); /* answers at once */
    tg_backend_free(b);
    return o;
}

static void test_builtin_answers_from_evidence(void **state)
{
    (void)state;
    struct tg_backend_conf c;
    memset(&c, 0, sizeof(c));
    tg_strlcpy(c.name, "offline", sizeof(c.name));
    c.type = TG_BACKEND_BUILTIN;
    c.min_confidence = 0.7;
    c.max_sentences = 2;
    const struct tg_evidence faq[] = {
        {.source = "faq.jsonl#3",
         .title = "常见问题「意外险理赔需要哪些材料？」",
         .text = "问：意外险理赔需要哪些材料？",
         .faq_question = "意外险理赔需要哪些材料？",
         .faq_answer = "需要身份证、病历、发票和银行卡。",
         .score = 12.0},
        {.source = "other.md", .title = "其他", .text = "无关内容。", .score = 2.0},
    };
    struct outcome o = builtin_answer(&c, "意外险理赔要什么材料", faq, 2, 0.9, 0.95);
    assert_int_equal(o.res.err, TG_OK);
    assert_false(o.res.low_confidence);
    assert_int_equal(o.res.cited, 0);
    assert_true(o.res.confidence >= 0.7 && o.res.confidence <= 1.0);
    assert_string_equal(
        o.content,
        "需要身份证、病历、发票和银行卡。\n\n（来源：常见问题「意外险理赔需要哪些材料？」）");

    const struct tg_evidence article[] = {
        {.source = "kb/ski.md",
         .title = "《安心意外伤害保险 责任免除》",
         .text = "## 责任免除\n本保险不承担潜水、跳伞造成的损失。滑雪等高风险运动不在保障范围内。"
                 "保单自生效之日起有效。如需保障滑雪，可附加高风险运动附加险。",
         .score = 9.0},
    };
    o = builtin_answer(&c, "滑雪受伤能赔吗", article, 1, 0.8, 0.9);
    assert_false(o.res.low_confidence);
    assert_false(o.res.holding);
    /* the two sentences about skiing, in their original order, then the source */
    assert_string_equal(o.content,
                        "滑雪等高风险运动不在保障范围内。如需保障滑雪，可附加高风险运动附加险。"
                        "\n\n（来源：《安心意外伤害保险 责任免除》）");

    /* "how many days": the sentence stating the days is kept although another
     * sentence shares more of the question's words */
    const struct tg_evidence days[] = {
        {.source = "kb/cooling.md",
         .title = "《犹豫期说明》",
         .text = "犹豫期内退保全额退还保费，犹豫期是冷静考虑的时间。自签收保单的次日起15日。"
                 "犹豫期内退保请在App办理。",
         .score = 9.0},
    };
    c.max_sentences = 1;
    o = builtin_answer(&c, "犹豫期退保有多少天", days, 1, 0.8, 0.9);
    assert_false(o.res.low_confidence);
    assert_string_equal(o.content, "自签收保单的次日起15日。\n\n（来源：《犹豫期说明》）");
    c.max_sentences = 2;

    /* weak evidence: the holding reply, never a guess */
    o = builtin_answer(&c, "火星移民保险怎么买", article, 1, 0.1, 0.2);
    assert_true(o.res.low_confidence);
    assert_true(o.res.holding); /* a promise, not an answer */
    assert_true(o.res.confidence < 0.7);
    assert_string_equal(o.content, "我需要更多时间分析，请稍候");
    assert_int_equal(o.res.cited, -1);

    /* no evidence at all */
    c.low_confidence_reply = "请稍候，正在为您转接。";
    o = builtin_answer(&c, "你好", NULL, 0, 0, -1);
    assert_true(o.res.low_confidence);
    assert_string_equal(o.content, "请稍候，正在为您转接。");
}

/* The confidence signals are what the answerer computes, in the documented
 * order, and the confidence is their logistic function. */
static void test_builtin_signals(void **state)
{
    (void)state;
    const struct tg_evidence ev[] = {
        {.source = "kb/cooling.md",
         .title = "《犹豫期说明》",
         .text = "自签收保单的次日起15日。",
         .score = 20.0,
         .match = 0.8,
         .rank = 0.7,
         .features = {1, 0.8, 0, 0.5, 0.75, 0.5, 0.6}},
        {.source = "faq.jsonl:2",
         .title = "常见问题「退保」",
         .text = "退保\n退还现金价值。",
         .faq_question = "退保",
         .faq_answer = "退还现金价值。",
         .score = 5.0,
         .match = 0.3,
         .rank = 0.3},
    };
    struct tg_backend_request rq = {.question = "犹豫期有多少天",
                                    .evidence = ev,
                                    .n_evidence = 2,
                                    .query_coverage = 0.5,
                                    .intent_probability = -1};
    double x[TG_BUILTIN_SIGNALS];
    tg_backend_builtin_signals(&rq, x);
    assert_true(x[0] == 0.5);              /* coverage */
    assert_true(fabs(x[1] - 0.75) < 1e-9); /* lead (20 - 5) / 20 */
    assert_true(x[2] == 0.25);             /* no classifier */
    assert_true(fabs(x[3] - log1p(20.0) / 4) < 1e-9);
    assert_true(x[4] == 0.8 && fabs(x[5] - 0.5) < 1e-9); /* match and its lead */
    assert_true(x[6] == 0);                              /* an article */
    assert_true(x[7] == 1 && x[8] == 0);                 /* days asked and stated */
    assert_true(x[10] == 0.7 && x[11] == 0.75 && x[12] == 0.6);
    double c = tg_backend_builtin_confidence(&rq);
    assert_true(c > 0 && c < 1);
    rq.n_evidence = 0;
    tg_backend_builtin_signals(&rq, x);
    for (size_t i = 0; i < TG_BUILTIN_SIGNALS; i++)
        assert_true(x[i] == 0);
    assert_true(tg_backend_builtin_confidence(&rq) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_whole_and_streamed_answers, reset),
        cmocka_unit_test_setup(test_fixed_model_and_keepalive, reset),
        cmocka_unit_test_setup(test_failures, reset),
        cmocka_unit_test_setup(test_cancel_never_calls_back, reset),
        cmocka_unit_test_setup(test_script_backend_answers_at_once, reset),
        cmocka_unit_test_setup(test_builtin_answers_from_evidence, reset),
        cmocka_unit_test_setup(test_builtin_signals, reset),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
