/*
 * itest_ladder.c - the degradation ladder against the fake upstream, one
 * case per way an upstream fails.  The fake upstream is scripted per model
 * name; the primary rung passes the client's model through, so each case
 * names its own model and reads back how many requests that model saw and
 * when.  Every case also checks that the daemon is still healthy.
 *
 * Gateway A: primary -> big (large context only) -> light -> script -> human,
 * retries 3, backoff 50 ms and the default breakers: the fault cases hold
 * for a pass-through deployment as shipped, since each case's model has a
 * breaker of its own.
 * Gateway B: primary -> script, a 1.5 s turn budget, a breaker that opens
 * after 3 faults for 1 s and probes every turn after that; no larger rung.
 * Gateway E: the plainest pass-through ladder (primary -> fallback ->
 * script, every ladder and breaker setting at its default) for the
 * outage sequence, which runs in a thread beside the other cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static struct tg_h_proc up, gwa, gwb, gwc, gwd, gwe;

#define CONFIG_A                                                                                   \
                                                                                                   \
    "auth:\n  api_keys:\n    - name: t\n      key: tg-l\n"                                         \
    "backends:\n"                                                                                  \
    "  - name: primary\n    type: openai\n    base_url: http://127.0.0.1:%d/v1\n"                  \
    "    header_timeout: 400ms\n    first_token_timeout: 400ms\n    idle_timeout: 400ms\n"         \
    "  - name: big\n    type: openai\n    base_url: http://127.0.0.1:%d/v1\n    model: "           \
    "big-model\n"                                                                                  \
    "  - name: light\n    type: openai\n    base_url: http://127.0.0.1:%d/v1\n"                    \
    "    model: light-model\n    header_timeout: 2s\n"                                             \
    "  - name: holding\n    type: script\n    reply: 您好，系统繁忙，请稍候。\n"       \
    "route:\n  backend: primary\n"                                                                 \
    "ladder:\n  budget: 10s\n  max_attempts: 3\n  backoff: 50ms\n  backoff_max: 200ms\n"           \
    "  rungs:\n"                                                                                   \
    "    - {name: primary, backend: primary}\n"                                                    \
    "    - {name: big, backend: big, large_context: true}\n"                                       \
    "    - {name: light, backend: light, budget: 3s}\n"                                            \
    "    - {name: script, backend: holding}\n"                                                     \
    "    - {name: human}\n"

#define CONFIG_B                                                                                   \
                                                                                                   \
    "auth:\n  api_keys:\n    - name: t\n      key: tg-l\n"                                         \
    "backends:\n"                                                                                  \
    "  - name: primary\n    type: openai\n    base_url: http://127.0.0.1:%d/v1\n"                  \
    "    header_timeout: 5s\n"                                                                     \
    "  - name: holding\n    type: script\n    reply: 您好，系统繁忙，请稍候。\n"       \
    "route:\n  backend: primary\n"                                                                 \
    "ladder:\n  budget: 1500ms\n  max_attempts: 1\n"                                               \
    "  breaker: {failures: 3, open: 1s, probe: 1.0}\n"                                             \
    "  rungs:\n"                                                                                   \
    "    - {name: primary, backend: primary}\n"                                                    \
    "    - {name: script, backend: holding}\n"

/* Gateway C: one call at a time on the primary, one turn may wait for it;
 * the class of a turn is its key's (a VIP channel, a BI job). */
#define CONFIG_C                                                                                   \
    "auth:\n  api_keys:\n    - name: t\n      key: tg-l\n"                                         \
    "    - name: vip\n      key: tg-v\n      class: vip\n"                                         \
    "    - name: bi\n      key: tg-bi\n      class: internal\n"                                    \
    "backends:\n"                                                                                  \
    "  - name: primary\n    type: openai\n    base_url: http://127.0.0.1:%d/v1\n"                  \
    "  - name: holding\n    type: script\n    reply: 您好，系统繁忙，请稍候。\n"       \
    "route:\n  backend: primary\n"                                                                 \
    "ladder:\n  budget: 10s\n  max_attempts: 1\n"                                                  \
    "  rungs:\n"                                                                                   \
    "    - {name: primary, backend: primary, max_inflight: 1, queue: 1, queue_timeout: 5s}\n"      \
    "    - {name: script, backend: holding}\n"

/* Gateway D: stream-through, with a rule that holds promises of returns. */
#define CONFIG_D                                                                                   \
    "auth:\n  api_keys:\n    - name: t\n      key: tg-l\n"                                         \
    "backends:\n"                                                                                  \
    "  - name: primary\n    type: openai\n    base_url: http://127.0.0.1:%d/v1\n"                  \
    "  - name: holding\n    type: script\n    reply: 您好，系统繁忙，请稍候。\n"       \
    "route:\n  backend: primary\n"                                                                 \
    "ladder:\n  stream_through: true\n  max_attempts: 1\n"                                         \
    "  rungs:\n    - {name: primary, backend: primary}\n    - {name: script, backend: holding}\n"  \
    "policies:\n  - id: no-promises\n    description: 不得承诺收益\n    stage: post\n"       \
    "    when:\n      draft.regex: \"保证收益\"\n    then:\n      - review: {sla: 60s}\n"

/* Gateway E: pass-through primary, a fixed fallback model, defaults for everything else. */
#define CONFIG_E                                                                                   \
    "auth:\n  api_keys:\n    - name: t\n      key: tg-l\n"                                         \
    "backends:\n"                                                                                  \
    "  - name: primary\n    type: openai\n    base_url: http://127.0.0.1:%d/v1\n"                  \
    "  - name: fallback\n    type: openai\n    base_url: http://127.0.0.1:%d/v1\n"                 \
    "    model: seq-fallback\n"                                                                    \
    "  - name: holding\n    type: script\n    reply: 您好，系统繁忙，请稍候。\n"       \
    "route:\n  backend: primary\n"                                                                 \
    "ladder:\n  rungs:\n"                                                                          \
    "    - {name: primary, backend: primary}\n"                                                    \
    "    - {name: fallback, backend: fallback}\n"                                                  \
    "    - {name: script, backend: holding}\n"

static int setup(void **state)
{
    (void)state;
    char cfg[8192], path[256];
    if (!tg_h_tmpdir(dir, sizeof(dir)) || tg_h_start_upstream(&up, dir))
        return -1;
    snprintf(cfg, sizeof(cfg), CONFIG_A, up.port, up.port, up.port);
    tg_h_write_file(dir, "a.yaml", cfg, path, sizeof(path));
    char data[128];
    snprintf(data, sizeof(data), "%s/a", dir);
    if (tg_h_start_gateway(&gwa, path, data))
        return -1;
    snprintf(cfg, sizeof(cfg), CONFIG_B, up.port);
    tg_h_write_file(dir, "b.yaml", cfg, path, sizeof(path));
    snprintf(data, sizeof(data), "%s/b", dir);
    if (tg_h_start_gateway(&gwb, path, data))
        return -1;
    snprintf(cfg, sizeof(cfg), CONFIG_C, up.port);
    tg_h_write_file(dir, "c.yaml", cfg, path, sizeof(path));
    snprintf(data, sizeof(data), "%s/c", dir);
    if (tg_h_start_gateway(&gwc, path, data))
        return -1;
    snprintf(cfg, sizeof(cfg), CONFIG_D, up.port);
    tg_h_write_file(dir, "d.yaml", cfg, path, sizeof(path));
    snprintf(data, sizeof(data), "%s/d", dir);
    if (tg_h_start_gateway(&gwd, path, data))
        return -1;
    snprintf(cfg, sizeof(cfg), CONFIG_E, up.port, up.port);
    tg_h_write_file(dir, "e.yaml", cfg, path, sizeof(path));
    snprintf(data, sizeof(data), "%s/e", dir);
    return tg_h_start_gateway(&gwe, path, data);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    int rc = tg_h_stop(&gwa, 5000) | tg_h_stop(&gwb, 5000) | tg_h_stop(&gwc, 5000) |
             tg_h_stop(&gwd, 5000) | tg_h_stop(&gwe, 5000) | tg_h_stop(&up, 5000);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = -1;
    return rc == 0 ? 0 : -1;
}

/* Script model name on the fake upstream: {"steps":[...], "default": {...}}.
 * 0, or -1 when the fake upstream did not take it (safe in any thread). */
static int script_model(const char *model, const char *steps, const char *def)
{
    char body[1024];
    snprintf(body, sizeof(body), "{\"model\":\"%s\",\"steps\":[%s]%s%s}", model, steps ? steps : "",
             def ? ",\"default\":" : "", def ? def : "");
    return tg_h_upstream_control(up.port, "model", body);
}

static void script(const char *model, const char *steps, const char *def)
{
    assert_int_equal(script_model(model, steps, def), 0);
}

/* What the fake upstream saw for model: requests, and the times in ms; NULL
 * when it could not be asked (safe in any thread). */
static json_t *seen_model(const char *model)
{
    char url[128];
    struct tg_h_resp r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_control/models", up.port);
    if (tg_h_http("GET", url, NULL, NULL, 0, 0, &r))
        return NULL;
    json_t *all = json_loads(r.body, 0, NULL);
    tg_h_resp_free(&r);
    json_t *m = json_incref(json_object_get(all, model));
    if (!m && all)
        m = json_pack("{s:i, s:i, s:[]}", "requests", 0, "completions", 0, "at_ms");
    json_decref(all);
    return m;
}

static json_t *seen(const char *model)
{
    json_t *m = seen_model(model);
    assert_non_null(m);
    return m;
}

static int64_t requests(const char *model)
{
    json_t *m = seen(model);
    int64_t n = tg_json_int(m, "requests", -1);
    json_decref(m);
    return n;
}

struct answer {
    long status;
    double seconds;
    json_t *body;
};

/* One chat turn on gateway g for model; the last message may be a prefill. */
static struct answer ask(const struct tg_h_proc *g, const char *model, const char *user,
                         bool stream, bool prefill)
{
    char body[1024];
    struct tg_h_resp r;
    struct answer a;
    snprintf(body, sizeof(body),
             "{\"model\":\"%s\",\"user\":\"%s\",\"stream\":%s,\"messages\":["
             "{\"role\":\"user\",\"content\":\"hello\"}%s]}",
             model, user, stream ? "true" : "false",
             prefill ? ",{\"role\":\"assistant\",\"content\":\"Sure,\"}" : "");
    assert_int_equal(tg_h_chat(g->port, "tg-l", body, &r), 0);
    a.status = r.status;
    a.seconds = r.seconds;
    a.body = NULL;
    if (!stream) {
        a.body = json_loads(r.body, 0, NULL);
        if (!a.body)
            fail_msg("not JSON: %s", r.body);
    } else {
        /* the streamed reply: the last data event before [DONE] carries the trustgate object */
        a.body = json_pack("{s:s}", "raw", r.body);
    }
    tg_h_resp_free(&r);
    return a;
}

static const char *content(const json_t *body)
{
    return tg_json_str(
        json_object_get(json_array_get(json_object_get(body, "choices"), 0), "message"), "content",
        "");
}

static const json_t *tg(const json_t *body)
{
    return json_object_get(body, "trustgate");
}

/* Does the turn's ladder record an event with cause? */
static bool has_event(const json_t *body, const char *cause)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(tg(body), "ladder"), i, e)
    {
        if (!strcmp(tg_json_str(e, "cause", ""), cause))
            return true;
    }
    return false;
}

static void healthy(const struct tg_h_proc *g)
{
    char url[128];
    struct tg_h_resp r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", g->port);
    assert_int_equal(tg_h_http("GET", url, NULL, NULL, 0, 0, &r), 0);
    assert_int_equal(r.status, 200);
    tg_h_resp_free(&r);
}

static void light_ok(void)
{
    script("light-model", NULL, "{}");
}

/* ------------------------------------------------------------ the table */

static void test_429_with_retry_after_waits_as_told(void **state)
{
    (void)state;
    light_ok();
    script("m-429-ra", "{\"status\":429,\"retry_after\":1}", "{}");
    struct answer a = ask(&gwa, "m-429-ra", "u1", false, false);
    assert_int_equal(a.status, 200);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "primary");
    assert_true(has_event(a.body, "status_429"));
    json_t *m = seen("m-429-ra");
    assert_int_equal(tg_json_int(m, "requests", 0), 2);
    int64_t gap = json_integer_value(json_array_get(json_object_get(m, "at_ms"), 1)) -
                  json_integer_value(json_array_get(json_object_get(m, "at_ms"), 0));
    assert_true(gap >= 990); /* never sooner than Retry-After */
    json_decref(m);
    json_decref(a.body);
    healthy(&gwa);
}

static void test_retry_after_past_the_budget_fails_over_at_once(void **state)
{
    (void)state;
    light_ok();
    /* A's turn budget is 10 s: a minute's wait is not waited, and not undercut */
    script("m-429-long", NULL, "{\"status\":429,\"retry_after\":60}");
    struct answer a = ask(&gwa, "m-429-long", "u1b", false, false);
    assert_int_equal(a.status, 200);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "light");
    assert_int_equal(requests("m-429-long"), 1);
    assert_true(a.seconds < 1.0);
    json_decref(a.body);
    healthy(&gwa);
}

/* secs (Unix time) as an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT". */
static void imf_fixdate(int64_t secs, char *buf, size_t len)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)secs;
    struct tm tm;
    assert_non_null(gmtime_r(&t, &tm));
    snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void test_429_with_a_retry_after_date_waits_until_then(void **state)
{
    (void)state;
    char date[64], step[160];
    light_ok();
    /* the first whole second at least 1.5 s ahead: a wait of 1.5 to 2.5 s */
    int64_t t0 = tg_clock_wall_ms();
    int64_t at_s = (t0 + 1500 + 999) / 1000;
    imf_fixdate(at_s, date, sizeof(date));
    snprintf(step, sizeof(step), "{\"status\":429,\"retry_after\":\"%s\"}", date);
    script("m-429-date", step, "{}");
    int64_t t1 = tg_clock_wall_ms();
    struct answer a = ask(&gwa, "m-429-date", "u1c", false, false);
    assert_int_equal(a.status, 200);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "primary");
    assert_true(has_event(a.body, "status_429"));
    json_t *m = seen("m-429-date");
    assert_int_equal(tg_json_int(m, "requests", 0), 2);
    int64_t first = json_integer_value(json_array_get(json_object_get(m, "at_ms"), 0));
    int64_t again = json_integer_value(json_array_get(json_object_get(m, "at_ms"), 1));
    assert_true(again - first >= 1400);
    /* never sooner than the date: at_ms counts (in whole ms) from the scripting, which
     * ended by t1, so the retry came at t1 + again + 1 at the latest */
    assert_true(t1 + again + 1 >= at_s * 1000);
    assert_true(a.seconds < 4.0);
    json_decref(m);
    json_decref(a.body);
    healthy(&gwa);
}

static void test_retry_after_date_past_the_budget_fails_over_at_once(void **state)
{
    (void)state;
    char date[64], step[160];
    light_ok();
    /* an hour ahead, A's budget is 10 s: the date is not waited for */
    imf_fixdate(tg_clock_wall_ms() / 1000 + 3600, date, sizeof(date));
    snprintf(step, sizeof(step), "{\"status\":429,\"retry_after\":\"%s\"}", date);
    script("m-429-date-long", NULL, step);
    struct answer a = ask(&gwa, "m-429-date-long", "u1d", false, false);
    assert_int_equal(a.status, 200);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "light");
    assert_int_equal(requests("m-429-date-long"), 1);
    assert_true(a.seconds < 1.0);
    json_decref(a.body);
    healthy(&gwa);
}

static void test_429_again_and_again_backs_off_then_fails_over(void **state)
{
    (void)state;
    light_ok();
    script("m-429", NULL, "{\"status\":429}");
    struct answer a = ask(&gwa, "m-429", "u2", false, false);
    assert_int_equal(a.status, 200);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "light");
    assert_string_equal(tg_json_str(a.body, "model", ""), "light-model");
    assert_int_equal(tg_json_int(tg(a.body), "degradations", 0), 1);
    json_t *m = seen("m-429");
    json_t *at = json_object_get(m, "at_ms");
    assert_int_equal(json_array_size(at), 3); /* bounded attempts, no tight loop */
    for (size_t i = 1; i < 3; i++)
        assert_true(json_integer_value(json_array_get(at, i)) -
                        json_integer_value(json_array_get(at, i - 1)) >=
                    20); /* backoff with jitter: at least half of 50 ms */
    json_decref(m);
    json_decref(a.body);
    healthy(&gwa);
}

static void test_503_once_is_retried(void **state)
{
    (void)state;
    script("m-503-once", "{\"status\":503}", "{}");
    struct answer a = ask(&gwa, "m-503-once", "u3", false, false);
    assert_int_equal(a.status, 200);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "primary");
    assert_string_equal(content(a.body), "fake answer to: hello");
    assert_int_equal(requests("m-503-once"), 2);
    json_decref(a.body);
    healthy(&gwa);
}

static void test_503_persistent_fails_over(void **state)
{
    (void)state;
    light_ok();
    script("m-503", NULL, "{\"status\":503}");
    struct answer a = ask(&gwa, "m-503", "u4", false, false);
    assert_int_equal(a.status, 200);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "light");
    assert_int_equal(requests("m-503"), 3);
    assert_true(has_event(a.body, "status_503"));
    json_decref(a.body);
    healthy(&gwa);
}

static void test_reset_before_headers_is_retried(void **state)
{
    (void)state;
    script("m-reset", "{\"reset\":true}", "{}");
    struct answer a = ask(&gwa, "m-reset", "u5", false, false);
    assert_int_equal(a.status, 200);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "primary");
    assert_true(requests("m-reset") >= 2);
    json_decref(a.body);
    healthy(&gwa);
}

static void test_silent_upstream_fails_over_at_once(void **state)
{
    (void)state;
    light_ok();
    script("m-hang", NULL, "{\"hang\":true}");
    struct answer a = ask(&gwa, "m-hang", "u6", false, false);
    assert_int_equal(a.status, 200);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "light");
    assert_true(has_event(a.body, "header_timeout"));
    assert_int_equal(requests("m-hang"), 1); /* the silent upstream is not retried */
    assert_true(a.seconds < 2.0);
    json_decref(a.body);
    healthy(&gwa);
}

static void test_silent_model_is_not_asked_again_on_a_later_rung(void **state)
{
    (void)state;
    /* the client names the light rung's own model: after its silence on the
     * primary rung, the light rung would only ask the same model again */
    script("light-model", NULL, "{\"hang\":true}");
    struct answer a = ask(&gwa, "light-model", "u6b", false, false);
    assert_int_equal(a.status, 200);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "script");
    assert_true(has_event(a.body, "header_timeout"));
    assert_true(has_event(a.body, "same_model_failed"));
    assert_int_equal(requests("light-model"), 1);
    assert_true(a.seconds < 2.0);
    json_decref(a.body);
    light_ok();
    healthy(&gwa);
}

static void test_late_first_token_fails_over(void **state)
{
    (void)state;
    light_ok();
    script("m-ttft", NULL, "{\"ttft_ms\":3000}");
    struct answer a = ask(&gwa, "m-ttft", "u7", false, false);
    /* the gateway streams from upstreams by default; the client asked for JSON */
    assert_int_equal(a.status, 200);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "light");
    assert_true(has_event(a.body, "first_token_timeout"));
    assert_true(a.seconds < 2.0);
    json_decref(a.body);
    healthy(&gwa);
}

static void test_broken_streams_are_never_delivered(void **state)
{
    (void)state;
    static const struct {
        const char *model, *step, *cause;
    } cases[] = {
        {"m-cut", "{\"cut_after\":2}", "stream_cut"},
        {"m-stall", "{\"stall_after\":2}", "idle_timeout"},
        {"m-garbled", "{\"malformed_at\":1}", "malformed_stream"},
    };
    light_ok();
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        script(cases[i].model, NULL, cases[i].step);
        struct answer a = ask(&gwa, cases[i].model, "u8", false, false);
        assert_int_equal(a.status, 200);
        /* the whole answer, from the next rung */
        assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "light");
        assert_string_equal(content(a.body), "fake answer to: hello");
        if (!has_event(a.body, cases[i].cause))
            fail_msg("%s: no %s event", cases[i].model, cases[i].cause);
        json_decref(a.body);
    }
    healthy(&gwa);
}

static void test_stream_without_done_finishes(void **state)
{
    (void)state;
    script("m-nodone", NULL, "{\"no_done\":true}");
    struct answer a = ask(&gwa, "m-nodone", "u9", false, false);
    assert_int_equal(a.status, 200);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "primary");
    assert_string_equal(content(a.body), "fake answer to: hello");
    assert_true(tg_json_int(json_object_get(a.body, "usage"), "completion_tokens", 0) > 0);
    assert_true(a.seconds < 1.0);
    json_decref(a.body);
    healthy(&gwa);
}

static void test_context_length_goes_to_the_larger_rung(void **state)
{
    (void)state;
    script("big-model", NULL, "{}");
    script("m-ctx", NULL,
           "{\"status\":400,\"error_code\":\"context_length_exceeded\","
           "\"error_message\":\"This model's maximum context length is 8192 tokens.\"}");
    struct answer a = ask(&gwa, "m-ctx", "u10", false, false);
    assert_int_equal(a.status, 200);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "big");
    assert_string_equal(tg_json_str(a.body, "model", ""), "big-model");
    assert_int_equal(requests("m-ctx"), 1); /* no retry on the same model */
    json_decref(a.body);
    /* without a larger rung: a clean error */
    a = ask(&gwb, "m-ctx", "u10", false, false);
    assert_int_equal(a.status, 400);
    assert_string_equal(tg_json_str(json_object_get(a.body, "error"), "code", ""),
                        "context_length_exceeded");
    json_decref(a.body);
    healthy(&gwa);
}

static void test_content_policy_rejection_is_propagated(void **state)
{
    (void)state;
    script("light-model", NULL, "{}");
    script("m-policy", NULL,
           "{\"status\":400,\"error_code\":\"content_policy_violation\","
           "\"error_message\":\"Your request was rejected as a result of our safety system.\"}");
    int64_t light_before = requests("light-model");
    struct answer a = ask(&gwa, "m-policy", "u11", false, false);
    assert_int_equal(a.status, 400);
    const json_t *err = json_object_get(a.body, "error");
    assert_string_equal(tg_json_str(err, "code", ""), "content_policy_violation");
    assert_non_null(strstr(tg_json_str(err, "message", ""), "safety system"));
    assert_int_equal(requests("m-policy"), 1);
    assert_int_equal(requests("light-model"), light_before); /* no failover */
    json_decref(a.body);
    healthy(&gwa);
}

static void test_fallback_rejecting_a_prefill_restarts_cleanly(void **state)
{
    (void)state;
    script("m-down", NULL, "{\"status\":503}");
    script("light-model", NULL, "{\"reject_prefill\":true}");
    struct answer a = ask(&gwa, "m-down", "u12", false, true);
    assert_int_equal(a.status, 200);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "light");
    assert_true(has_event(a.body, "prefill_rejected"));
    assert_int_equal(requests("light-model"), 2); /* refused once, then answered */
    json_decref(a.body);
    light_ok();
    healthy(&gwa);
}

static void test_breaker_opens_probes_and_closes(void **state)
{
    (void)state;
    script("m-brk", NULL, "{\"status\":503}");
    for (int i = 0; i < 3; i++) {
        char user[16];
        snprintf(user, sizeof(user), "u13-%d", i); /* not one conversation: no degraded_3x */
        struct answer a = ask(&gwb, "m-brk", user, false, false);
        assert_int_equal(a.status, 200);
        assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "script");
        json_decref(a.body);
    }
    assert_int_equal(requests("m-brk"), 3);
    /* open: the primary is not even asked */
    struct answer a = ask(&gwb, "m-brk", "u13-3", false, false);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "script");
    assert_true(has_event(a.body, "breaker_open"));
    assert_int_equal(requests("m-brk"), 3);
    json_decref(a.body);
    /* the primary recovers; after the open time a probe goes through and closes it */
    script("m-brk", NULL, "{}");
    usleep(1100 * 1000);
    a = ask(&gwb, "m-brk", "u13-4", false, false);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "primary");
    json_decref(a.body);
    a = ask(&gwb, "m-brk", "u13-5", false, false);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "primary");
    json_decref(a.body);
    healthy(&gwb);
}

static void test_turn_budget_is_never_exceeded(void **state)
{
    (void)state;
    script("m-slow", NULL, "{\"delay_ms\":4000}");
    struct answer a = ask(&gwb, "m-slow", "u14", false, false);
    /* B's budget is 1.5 s: the holding script answers, well before the upstream would */
    assert_int_equal(a.status, 200);
    assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "script");
    assert_true(has_event(a.body, "turn_budget"));
    assert_true(a.seconds >= 1.4 && a.seconds < 2.5);
    json_decref(a.body);
    healthy(&gwb);
}

static void test_client_that_leaves_stops_the_ladder(void **state)
{
    (void)state;
    light_ok();
    script("m-leave", NULL, "{\"delay_ms\":600,\"status\":503}");
    /* a raw request, closed after 200 ms */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)gwa.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    const char *body =
        "{\"model\":\"m-leave\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                     "tg-l\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    assert_int_equal(write(fd, req, (size_t)n), n);
    usleep(200 * 1000);
    close(fd);
    usleep(1500 * 1000); /* longer than a retry would take */
    assert_int_equal(requests("m-leave"), 1);
    healthy(&gwa);
}

static void test_three_degraded_turns_go_to_a_person(void **state)
{
    (void)state;
    light_ok();
    script("m-weak", NULL, "{\"status\":503}");
    for (int i = 0; i < 3; i++) {
        struct answer a = ask(&gwa, "m-weak", "c-3x", false, false);
        assert_int_equal(a.status, 200);
        assert_string_equal(tg_json_str(tg(a.body), "rung", ""), "light");
        json_decref(a.body);
    }
    int64_t before = requests("m-weak");
    struct answer a = ask(&gwa, "m-weak", "c-3x", false, false);
    assert_int_equal(a.status, 200);
    assert_string_equal(tg_json_str(tg(a.body), "decision", ""), "handoff");
    assert_non_null(strstr(content(a.body), "人工"));
    const json_t *tags = json_object_get(tg(a.body), "tags");
    bool tagged = false;
    for (size_t i = 0; i < json_array_size(tags); i++)
        tagged |= !strcmp(json_string_value(json_array_get(tags, i)), "degraded_3x");
    assert_true(tagged);
    assert_true(tg_str_has_prefix(tg_json_str(tg(a.body), "review_id", ""), "rev_"));
    assert_int_equal(requests("m-weak"), before); /* no model was asked */
    json_decref(a.body);
    healthy(&gwa);
}

static void test_streamed_reply_after_failover(void **state)
{
    (void)state;
    light_ok();
    script("m-s503", NULL, "{\"status\":503}");
    struct answer a = ask(&gwa, "m-s503", "u15", true, false);
    assert_int_equal(a.status, 200);
    const char *raw = tg_json_str(a.body, "raw", "");
    assert_non_null(strstr(raw, "data: [DONE]"));
    assert_non_null(strstr(raw, "\"model\":\"light-model\""));
    json_decref(a.body);
}

static void test_failover_is_counted_in_metrics(void **state)
{
    (void)state;
    char url[128];
    struct tg_h_resp r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", gwa.port);
    assert_int_equal(tg_h_http("GET", url, NULL, NULL, 0, 0, &r), 0);
    assert_non_null(
        strstr(r.body, "trustgate_degradations_total{from=\"primary\",cause=\"status_503\"}"));
    assert_non_null(strstr(
        r.body, "trustgate_upstream_attempts_total{backend=\"primary\",outcome=\"status_503\"}"));
    assert_non_null(
        strstr(r.body, "trustgate_tokens_total{backend=\"light\",kind=\"completion\"}"));
    tg_h_resp_free(&r);
}

struct overload_turn {
    const char *user, *meta;
    int delay_ms;
    long status;
    char rung[32];
    bool shed, overloaded;
    double seconds;
    const char *key; /* NULL: tg-l, a customer channel's */
};

static void *overload_thread(void *arg)
{
    struct overload_turn *o = arg;
    char body[512];
    struct tg_h_resp r;
    usleep((useconds_t)o->delay_ms * 1000);
    snprintf(body, sizeof(body),
             "{\"model\":\"m-busy\",\"user\":\"%s\",\"metadata\":%s,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}",
             o->user, o->meta);
    if (tg_h_chat(gwc.port, o->key ? o->key : "tg-l", body, &r) == 0) {
        json_t *j = json_loads(r.body, 0, NULL);
        o->status = r.status;
        o->seconds = r.seconds;
        tg_strlcpy(o->rung, tg_json_str(tg(j), "rung", ""), sizeof(o->rung));
        o->shed = has_event(j, "shed");
        o->overloaded = has_event(j, "overloaded");
        json_decref(j);
        tg_h_resp_free(&r);
    }
    return NULL;
}

/* One slot and one place in the queue: a customer holds the slot, internal
 * work waits, a VIP arrives and takes the internal work's place (which goes
 * to the script at once), and a later customer finds no room at all. */
static void test_overload_sheds_internal_work_first(void **state)
{
    (void)state;
    script("m-busy", NULL, "{\"delay_ms\":800}");
    struct overload_turn t[4] = {
        {"ov-a", "{}", 0, 0, "", false, false, 0, NULL},
        {"ov-bi", "{}", 150, 0, "", false, false, 0, "tg-bi"},
        {"ov-vip", "{}", 300, 0, "", false, false, 0, "tg-v"},
        {"ov-d", "{}", 450, 0, "", false, false, 0, NULL},
    };
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, overload_thread, &t[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++)
        assert_int_equal(t[i].status, 200);
    assert_string_equal(t[0].rung, "primary");
    assert_string_equal(t[1].rung, "script"); /* internal work degrades first */
    assert_true(t[1].shed);
    assert_true(t[1].seconds < 0.5);
    assert_string_equal(t[2].rung, "primary"); /* the VIP waited for the slot */
    assert_true(t[2].seconds > 0.9);
    assert_string_equal(t[3].rung, "script"); /* no room: degraded at once, not left hanging */
    assert_true(t[3].overloaded);
    assert_true(t[3].seconds < 0.5);
    assert_int_equal(requests("m-busy"), 2);
    healthy(&gwc);
}

/* The class is the key's: a customer channel that writes "tier": "vip" in
 * the metadata is still a customer (it finds the queue's one place taken
 * by another customer and is degraded at once), while the VIP key's turn
 * takes that place (the waiting customer goes to the script). */
static void test_metadata_never_makes_a_vip(void **state)
{
    (void)state;
    script("m-busy", NULL, "{\"delay_ms\":800}");
    for (int real = 0; real < 2; real++) {
        struct overload_turn t[3] = {
            {"cl-a", "{}", 0, 0, "", false, false, 0, NULL},
            {"cl-b", "{}", 150, 0, "", false, false, 0, NULL},
            {"cl-c", "{\"tier\":\"vip\"}", 300, 0, "", false, false, 0, real ? "tg-v" : NULL},
        };
        pthread_t th[3];
        for (int i = 0; i < 3; i++)
            assert_int_equal(pthread_create(&th[i], NULL, overload_thread, &t[i]), 0);
        for (int i = 0; i < 3; i++)
            pthread_join(th[i], NULL);
        assert_string_equal(t[0].rung, "primary");
        if (real) {
            assert_string_equal(t[1].rung, "script");
            assert_true(t[1].shed);
            assert_string_equal(t[2].rung, "primary");
        } else {
            assert_string_equal(t[1].rung, "primary");
            assert_string_equal(t[2].rung, "script");
            assert_true(t[2].overloaded);
        }
        healthy(&gwc);
    }
}

/* A streamed turn on gateway D, read as it arrives: the content of its
 * chunks in order, when the first one came and when [DONE] did. */
struct streamed {
    char text[4096];
    double first_s, done_s;
    bool error;
    json_t *final; /* the last chunk's trustgate object */
};

static struct streamed stream_turn(const char *model)
{
    struct streamed st;
    memset(&st, 0, sizeof(st));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)gwd.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    char body[256], req[1024];
    snprintf(body, sizeof(body),
             "{\"model\":\"%s\",\"stream\":true,\"messages\":[{\"role\":\"user\","
             "\"content\":\"介绍一下\"}]}",
             model);
    int n = snprintf(req, sizeof(req),
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                     "tg-l\r\nContent-Type: application/json\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    int64_t t0 = tg_clock_mono_ns();
    assert_int_equal(write(fd, req, (size_t)n), n);
    struct tg_buf raw;
    tg_buf_init(&raw, TG_BUF_UNLIMITED);
    char buf[4096];
    ssize_t got;
    while ((got = read(fd, buf, sizeof(buf))) > 0) {
        tg_buf_append(&raw, buf, (size_t)got);
        double now = (double)(tg_clock_mono_ns() - t0) / 1e9;
        for (const char *q = raw.data; !st.first_s && (q = strstr(q, "\"content\":\"")); q++)
            if (q[11] != '"')
                st.first_s = now; /* a content delta that is not empty */
        if (strstr(raw.data, "[DONE]"))
            st.done_s = now;
    }
    close(fd);
    /* the content deltas in order (chunked framing does not split our small events) */
    for (const char *p = raw.data; p && (p = strstr(p, "data: {")); p++) {
        const char *e = strstr(p, "\n\n");
        json_t *ev = e ? json_loadb(p + 6, (size_t)(e - p - 6), 0, NULL) : NULL;
        const char *c =
            tg_json_str(json_object_get(json_array_get(json_object_get(ev, "choices"), 0), "delta"),
                        "content", NULL);
        if (c)
            strncat(st.text, c, sizeof(st.text) - strlen(st.text) - 1);
        if (json_object_get(ev, "error"))
            st.error = true;
        if (json_object_get(ev, "trustgate")) {
            json_decref(st.final);
            st.final = json_incref(json_object_get(ev, "trustgate"));
        }
        json_decref(ev);
    }
    tg_buf_free(&raw);
    return st;
}

static void test_stream_through_releases_sentences_as_they_pass(void **state)
{
    (void)state;
    script("st-ok", NULL,
           "{\"content\":\"第一句话在这里。第二句话也在这里。第三句话到此为止。\","
           "\"chunk_delay_ms\":120}");
    struct streamed st = stream_turn("st-ok");
    assert_string_equal(st.text, "第一句话在这里。第二句话也在这里。第三句话到此为止。");
    /* the first sentence arrived long before the model finished */
    assert_true(st.first_s > 0 && st.done_s - st.first_s > 0.3);
    assert_string_equal(tg_json_str(st.final, "decision", ""), "deliver");
    json_decref(st.final);
    healthy(&gwd);
}

static void test_stream_through_stops_when_a_rule_fires(void **state)
{
    (void)state;
    script("st-hold", NULL,
           "{\"content\":\"您好。这款产品保证收益十个点。其余说明。\",\"chunk_delay_ms\":50}");
    struct streamed st = stream_turn("st-hold");
    /* the first sentence went out; the promise did not; the customer is told it waits */
    assert_true(tg_str_has_prefix(st.text, "您好。\n\n"));
    assert_null(strstr(st.text, "保证收益"));
    assert_non_null(strstr(st.text, "人工复核"));
    assert_string_equal(tg_json_str(st.final, "decision", ""), "review");
    json_decref(st.final);
    /* personal data is masked before it is released */
    script("st-pii", NULL, "{\"content\":\"请拨打13812345678联系我们。谢谢。\"}");
    st = stream_turn("st-pii");
    assert_null(strstr(st.text, "13812345678"));
    assert_non_null(strstr(st.text, "138****5678"));
    json_decref(st.final);
    healthy(&gwd);
}

static void test_stream_through_never_restarts_after_release(void **state)
{
    (void)state;
    script("st-cut", NULL,
           "{\"content\":\"第一句。第二句话很长很长很长。第三句。\",\"cut_after\":2}");
    struct streamed st = stream_turn("st-cut");
    /* what went out stays the only answer: an error, not the script's text after it */
    assert_true(st.error);
    assert_null(strstr(st.text, "系统繁忙"));
    assert_true(tg_str_has_prefix(st.text, "第一句。"));
    assert_int_equal(requests("st-cut"), 1);
    json_decref(st.final);
    healthy(&gwd);
}

/* ------------------------------------------------------------ an outage, in sequence */

/*
 * On gateway E, with the default breaker: a turn every 1.2 s for model
 * seq-down, whose upstream answers 503 for the first 6 s; beside each, a
 * turn for seq-up on the same upstream, which never fails; early on a
 * second failing model, and then a model the provider refuses on content
 * policy.  The sequence runs in a thread while the other cases run; the
 * thread only records, and test_outage_sequence_holds judges.
 */
#define SEQ_TURNS 10
#define SEQ_GAP_MS 1200
#define SEQ_HEAL_AT 5 /* seq-down heals just before this turn: 6 s of 503s */

struct seq_turn {
    long status;
    char rung[32], code[64], message[256];
    double at_s; /* sent, seconds from the start */
};

static struct {
    pthread_t th;
    bool started;
    char err[256]; /* what went wrong in the thread, "" when nothing */
    struct seq_turn down[SEQ_TURNS], up[SEQ_TURNS], policy;
    double heal_s;
    int64_t down_outage, down_after, up_calls, policy_calls;
} SEQ;

static double seq_now(int64_t t0)
{
    return (double)(tg_clock_mono_ns() - t0) / 1e9;
}

static int seq_ask(const char *model, int i, int64_t t0, struct seq_turn *t)
{
    char body[512];
    struct tg_h_resp r;
    snprintf(body, sizeof(body),
             "{\"model\":\"%s\",\"user\":\"seq-%s-%d\",\"messages\":[{\"role\":\"user\","
             "\"content\":\"hello\"}]}",
             model, model, i);
    t->at_s = seq_now(t0);
    if (tg_h_chat(gwe.port, "tg-l", body, &r))
        return -1;
    json_t *j = json_loads(r.body, 0, NULL);
    const json_t *err = json_object_get(j, "error");
    t->status = r.status;
    tg_strlcpy(t->rung, tg_json_str(tg(j), "rung", ""), sizeof(t->rung));
    tg_strlcpy(t->code, tg_json_str(err, "code", ""), sizeof(t->code));
    tg_strlcpy(t->message, tg_json_str(err, "message", ""), sizeof(t->message));
    json_decref(j);
    tg_h_resp_free(&r);
    return 0;
}

static int64_t seq_requests(const char *model)
{
    json_t *m = seen_model(model);
    int64_t n = tg_json_int(m, "requests", -1);
    json_decref(m);
    return n;
}

static void *seq_thread(void *arg)
{
    (void)arg;
    const char *down = "{\"status\":503}";
    if (script_model("seq-down", NULL, down) || script_model("seq-down2", NULL, down) ||
        script_model("seq-up", NULL, "{}") || script_model("seq-fallback", NULL, "{}") ||
        script_model("seq-policy", NULL,
                     "{\"status\":400,\"error_code\":\"content_policy_violation\","
                     "\"error_message\":\"Rejected by the safety system.\"}")) {
        snprintf(SEQ.err, sizeof(SEQ.err), "the fake upstream refused a script");
        return NULL;
    }
    int64_t t0 = tg_clock_mono_ns();
    for (int i = 0; i < SEQ_TURNS && !SEQ.err[0]; i++) {
        int64_t wait_us = ((int64_t)i * SEQ_GAP_MS * 1000000 - (tg_clock_mono_ns() - t0)) / 1000;
        if (wait_us > 0)
            usleep((useconds_t)wait_us);
        if (i == SEQ_HEAL_AT) {
            SEQ.down_outage = seq_requests("seq-down"); /* scripting again starts the count anew */
            if (script_model("seq-down", NULL, "{}"))
                snprintf(SEQ.err, sizeof(SEQ.err), "could not heal seq-down");
            SEQ.heal_s = seq_now(t0);
        }
        struct seq_turn spare;
        if (seq_ask("seq-down", i, t0, &SEQ.down[i]) || seq_ask("seq-up", i, t0, &SEQ.up[i]) ||
            (i < 2 && seq_ask("seq-down2", i, t0, &spare)) ||
            (i == 1 && seq_ask("seq-policy", i, t0, &SEQ.policy)))
            snprintf(SEQ.err, sizeof(SEQ.err), "turn %d: no answer from the gateway", i);
    }
    SEQ.down_after = seq_requests("seq-down");
    SEQ.up_calls = seq_requests("seq-up");
    SEQ.policy_calls = seq_requests("seq-policy");
    return NULL;
}

static void test_outage_sequence_starts(void **state)
{
    (void)state;
    healthy(&gwe); /* libcurl is initialised before a second thread uses it */
    assert_int_equal(pthread_create(&SEQ.th, NULL, seq_thread, NULL), 0);
    SEQ.started = true;
}

static void test_outage_sequence_holds(void **state)
{
    (void)state;
    assert_true(SEQ.started);
    pthread_join(SEQ.th, NULL);
    SEQ.started = false;
    if (SEQ.err[0])
        fail_msg("%s", SEQ.err);
    int back = -1;
    for (int i = SEQ_TURNS - 1; i >= 0 && !strcmp(SEQ.down[i].rung, "primary"); i--)
        back = i;
    print_message("outage: %lld calls for %d turns; after healing %lld calls for %d turns; "
                  "primary back at turn %d, %.2f s after healing\n",
                  (long long)SEQ.down_outage, SEQ_HEAL_AT, (long long)SEQ.down_after,
                  SEQ_TURNS - SEQ_HEAL_AT, back,
                  back < 0 ? -1.0 : SEQ.down[back].at_s - SEQ.heal_s);
    for (int i = 0; i < SEQ_TURNS; i++) {
        const struct seq_turn *d = &SEQ.down[i], *u = &SEQ.up[i];
        if (d->status != 200 || u->status != 200)
            fail_msg("turn %d: status %ld / %ld", i, d->status, u->status);
        /* during the outage every turn is answered, by the fallback */
        if (i < SEQ_HEAL_AT && strcmp(d->rung, "fallback"))
            fail_msg("turn %d at %.1f s in the outage answered by %s", i, d->at_s, d->rung);
        /* the primary is back within a turn of healing (1.2 s) */
        if (i > SEQ_HEAL_AT && strcmp(d->rung, "primary"))
            fail_msg("turn %d, %.1f s after healing, answered by %s", i, d->at_s - SEQ.heal_s,
                     d->rung);
        /* the other model on the same upstream never notices */
        if (strcmp(u->rung, "primary"))
            fail_msg("seq-up turn %d answered by %s", i, u->rung);
    }
    /* never more calls to the failing model than turns that wanted it */
    if (SEQ.down_outage < 1 || SEQ.down_outage > SEQ_HEAL_AT)
        fail_msg("%lld calls to seq-down for %d turns in the outage", (long long)SEQ.down_outage,
                 SEQ_HEAL_AT);
    assert_true(SEQ.down_outage + SEQ.down_after <= SEQ_TURNS);
    assert_int_equal(SEQ.up_calls, SEQ_TURNS); /* exactly one call per turn */
    /* a refusal on a model whose neighbours just failed reaches it exactly once */
    assert_int_equal(SEQ.policy.status, 400);
    assert_string_equal(SEQ.policy.code, "content_policy_violation");
    assert_non_null(strstr(SEQ.policy.message, "safety system"));
    assert_int_equal(SEQ.policy_calls, 1);
    healthy(&gwe);
}

/* `trustgate cost report` over gateway A's turns, priced per model; and the
 * trade-off of a candidate release against the one in force. */
static void test_cost_report(void **state)
{
    (void)state;
    char cfg[256], base[256], cand[256], bin[512], cmd[2048];
    tg_h_write_file(dir, "prices.yaml",
                    "backends:\n  - {name: s, type: script, reply: x}\nroute: {backend: s}\n"
                    "eval:\n  prices:\n    light-model: {prompt: 0.5, completion: 1.5}\n",
                    cfg, sizeof(cfg));
    tg_h_write_file(dir, "base.json", "{\"far\":0.80,\"usage\":{\"cost_per_turn\":0.010}}", base,
                    sizeof(base));
    tg_h_write_file(dir, "cand.json", "{\"far\":0.85,\"usage\":{\"cost_per_turn\":0.012}}", cand,
                    sizeof(cand));
    tg_h_bin("trustgate", bin, sizeof(bin));
    snprintf(cmd, sizeof(cmd),
             "%s cost report -c %s --data %s/a --json --baseline %s --candidate %s", bin, cfg, dir,
             base, cand);
    char *out = NULL;
    assert_int_equal(tg_h_run(cmd, &out), 0);
    json_t *j = json_loads(out, 0, NULL);
    if (!j)
        fail_msg("not JSON: %s", out);
    tg_free(out);
    assert_true(tg_json_int(j, "turns", 0) >= 10);
    double light = 0;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(j, "by_model_rung"), i, r)
    {
        if (!strcmp(tg_json_str(r, "model", ""), "light-model")) {
            /* priced per 1,000 tokens: 0.5 prompt, 1.5 completion */
            double want = (0.5 * (double)tg_json_int(r, "prompt_tokens", 0) +
                           1.5 * (double)tg_json_int(r, "completion_tokens", 0)) /
                          1000.0;
            assert_true(tg_json_int(r, "completion_tokens", 0) > 0);
            assert_true(fabs(tg_json_num(r, "cost", -1) - want) < 1e-9);
            light += tg_json_num(r, "cost", 0);
        }
    }
    assert_true(light > 0);
    /* +5 FAR points for +0.002 a query: break-even 0.04 per correct first response */
    const json_t *t = json_object_get(j, "tradeoff");
    assert_true(fabs(tg_json_num(t, "delta_far", 0) - 0.05) < 1e-9);
    assert_true(fabs(tg_json_num(t, "breakeven_value", 0) - 0.04) < 1e-9);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outage_sequence_starts),
        cmocka_unit_test(test_429_with_retry_after_waits_as_told),
        cmocka_unit_test(test_retry_after_past_the_budget_fails_over_at_once),
        cmocka_unit_test(test_429_with_a_retry_after_date_waits_until_then),
        cmocka_unit_test(test_retry_after_date_past_the_budget_fails_over_at_once),
        cmocka_unit_test(test_429_again_and_again_backs_off_then_fails_over),
        cmocka_unit_test(test_503_once_is_retried),
        cmocka_unit_test(test_503_persistent_fails_over),
        cmocka_unit_test(test_reset_before_headers_is_retried),
        cmocka_unit_test(test_silent_upstream_fails_over_at_once),
        cmocka_unit_test(test_silent_model_is_not_asked_again_on_a_later_rung),
        cmocka_unit_test(test_late_first_token_fails_over),
        cmocka_unit_test(test_broken_streams_are_never_delivered),
        cmocka_unit_test(test_stream_without_done_finishes),
        cmocka_unit_test(test_context_length_goes_to_the_larger_rung),
        cmocka_unit_test(test_content_policy_rejection_is_propagated),
        cmocka_unit_test(test_fallback_rejecting_a_prefill_restarts_cleanly),
        cmocka_unit_test(test_breaker_opens_probes_and_closes),
        cmocka_unit_test(test_turn_budget_is_never_exceeded),
        cmocka_unit_test(test_client_that_leaves_stops_the_ladder),
        cmocka_unit_test(test_three_degraded_turns_go_to_a_person),
        cmocka_unit_test(test_streamed_reply_after_failover),
        cmocka_unit_test(test_failover_is_counted_in_metrics),
        cmocka_unit_test(test_overload_sheds_internal_work_first),
        cmocka_unit_test(test_metadata_never_makes_a_vip),
        cmocka_unit_test(test_cost_report),
        cmocka_unit_test(test_stream_through_releases_sentences_as_they_pass),
        cmocka_unit_test(test_stream_through_stops_when_a_rule_fires),
        cmocka_unit_test(test_stream_through_never_restarts_after_release),
        cmocka_unit_test(test_outage_sequence_holds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
