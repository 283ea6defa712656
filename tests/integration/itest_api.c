/*
 * itest_api.c - the real daemon over real HTTP, in front of the fake
 * upstream: the OpenAI-compatible API, streaming, errors from bad input
 * and from the upstream, auth, conversations, metrics, logs, the audit
 * log, and a graceful drain on SIGTERM.
 *
 * Two gateways run side by side: A asks its upstream for whole answers,
 * B asks it to stream.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_FMT \
    "server:\n" \
    "  max_body: 64KiB\n" \
    "  max_messages: 8\n" \
    "  drain_timeout: 5s\n" \
    "auth:\n" \
    "  api_keys:\n" \
    "    - name: it\n" \
    "      key: tg-it-key\n" \
    "backends:\n" \
    "  - name: primary\n" \
    "    type: openai\n" \
    "    base_url: http://127.0.0.1:%d/v1\n" \
    "    header_timeout: 1s\n" \
    "    idle_timeout: 1s\n" \
    "    total_timeout: 5s\n" \
    "    stream: %s\n" \
    "route:\n" \
    "  backend: primary\n" \
    "models: [trustgate, fake-model]\n"

struct env {
    char dir[64], dir_a[128], dir_b[128];
    struct tg_h_proc up, a, b;
};

static struct env E;

static int start_gateway(struct tg_h_proc *p, char *dir, size_t dirlen, const char *name,
                         const char *stream)
{
    char cfg[2048], path[256];
    snprintf(dir, dirlen, "%s/%s", E.dir, name);
    if (mkdir(dir, 0755))
        return -1;
    snprintf(cfg, sizeof(cfg), CONFIG_FMT, E.up.port, stream);
    if (!tg_h_write_file(dir, "trustgate.yaml", cfg, path, sizeof(path)))
        return -1;
    return tg_h_start_gateway(p, path, dir);
}

static int group_setup(void **state)
{
    (void)state;
    if (!tg_h_tmpdir(E.dir, sizeof(E.dir)) || tg_h_start_upstream(&E.up, E.dir))
        return -1;
    if (start_gateway(&E.a, E.dir_a, sizeof(E.dir_a), "a", "false") ||
        start_gateway(&E.b, E.dir_b, sizeof(E.dir_b), "b", "true"))
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    int rc = 0;
    /* A clean exit (0) also means no sanitizer report in the children. */
    if (E.a.pid && tg_h_stop(&E.a, 5000) != 0)
        rc = -1;
    if (E.b.pid && tg_h_stop(&E.b, 5000) != 0)
        rc = -1;
    if (tg_h_stop(&E.up, 2000) != 0)
        rc = -1;
    if (rc)
        fprintf(stderr, "a child did not exit cleanly; logs are in %s\n", E.dir);
    else {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", E.dir);
        rc = system(cmd) == 0 ? 0 : -1;
    }
    return rc;
}

static int reset_upstream(void **state)
{
    (void)state;
    return tg_h_upstream_control(E.up.port, "reset", "{}");
}

static json_t *parse(const struct tg_h_resp *r)
{
    json_t *j = json_loads(r->body, 0, NULL);
    if (!j)
        fail_msg("not JSON (status %ld): %s", r->status, r->body);
    return j;
}

static const char *content_of(const json_t *completion)
{
    json_t *ch = json_array_get(json_object_get(completion, "choices"), 0);
    return tg_json_str(json_object_get(ch, "message"), "content", NULL);
}

/* ------------------------------------------------------------ answers */

static void test_chat_completion(void **state)
{
    (void)state;
    struct tg_h_resp r;
    assert_int_equal(tg_h_chat(E.a.port, "tg-it-key",
                               "{\"model\":\"gpt-x\",\"temperature\":0.3,\"messages\":[{\"role\":"
                               "\"user\",\"content\":\"保险怎么理赔？\"}],\"future_field\":1}",
                               &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: application/json"));
    json_t *j = parse(&r);
    assert_string_equal(tg_json_str(j, "object", ""), "chat.completion");
    assert_string_equal(tg_json_str(j, "model", ""), "gpt-x");
    assert_string_equal(content_of(j), "fake answer to: 保险怎么理赔？");
    json_t *tg = json_object_get(j, "trustgate");
    assert_string_equal(tg_json_str(tg, "decision", ""), "deliver");
    assert_string_equal(tg_json_str(tg, "backend", ""), "primary");
    assert_true(tg_str_has_prefix(tg_json_str(tg, "turn_id", ""), "turn_"));
    assert_true(tg_str_has_prefix(tg_json_str(tg, "conversation_id", ""), "conv_"));
    assert_true(json_is_integer(json_object_get(tg, "audit_index")));
    assert_true(json_is_array(json_object_get(tg, "citations")));
    assert_true(json_is_array(json_object_get(tg, "policy_hits")));
    assert_non_null(json_object_get(tg, "confidence"));
    assert_true(tg_json_int(json_object_get(j, "usage"), "total_tokens", 0) > 0);
    /* What went upstream: the client's model, its sampling fields, no unknown fields. */
    json_t *st = tg_h_upstream_stats(E.up.port);
    json_t *last = json_object_get(st, "last_request");
    assert_string_equal(tg_json_str(last, "model", ""), "gpt-x");
    assert_true(tg_json_num(last, "temperature", 0) > 0.29);
    assert_null(json_object_get(last, "future_field"));
    assert_false(tg_json_bool(last, "stream", true));
    json_decref(st);
    json_decref(j);
    tg_h_resp_free(&r);
}

/* Parse an SSE body into its JSON events; true when it ended with [DONE]. */
static bool sse_events(const char *body, json_t *events)
{
    const char *s = body;
    while ((s = strstr(s, "data: ")) != NULL) {
        s += 6;
        const char *end = strstr(s, "\n\n");
        if (!end)
            return false;
        if (strncmp(s, "[DONE]", 6) == 0)
            return true;
        json_array_append_new(events, json_loadb(s, (size_t)(end - s), 0, NULL));
        s = end;
    }
    return false;
}

static void check_stream(int port, const char *question)
{
    struct tg_h_resp r;
    char body[512], want[512];
    snprintf(body, sizeof(body),
             "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", question);
    assert_int_equal(tg_h_chat(port, "tg-it-key", body, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "text/event-stream"));
    json_t *evs = json_array();
    assert_true(sse_events(r.body, evs));
    struct tg_buf text;
    tg_buf_init(&text, TG_BUF_UNLIMITED);
    size_t i;
    json_t *ev;
    json_t *tg = NULL;
    json_array_foreach(evs, i, ev) {
        assert_string_equal(tg_json_str(ev, "object", ""), "chat.completion.chunk");
        json_t *delta = json_object_get(json_array_get(json_object_get(ev, "choices"), 0), "delta");
        const char *piece = tg_json_str(delta, "content", NULL);
        if (piece)
            tg_buf_puts(&text, piece);
        if (json_object_get(ev, "trustgate"))
            tg = json_object_get(ev, "trustgate");
    }
    snprintf(want, sizeof(want), "fake answer to: %s", question);
    assert_string_equal(text.data, want);
    assert_non_null(tg);
    assert_string_equal(tg_json_str(tg, "decision", ""), "deliver");
    tg_buf_free(&text);
    json_decref(evs);
    tg_h_resp_free(&r);
}

static void test_stream_to_client(void **state)
{
    (void)state;
    check_stream(E.a.port, "非流式上游，流式客户端");
}

static void test_stream_from_upstream(void **state)
{
    (void)state;
    check_stream(E.b.port, "上游流式回答一个比较长的问题，需要分成好几个片段才能传完");
    json_t *st = tg_h_upstream_stats(E.up.port);
    assert_true(tg_json_bool(json_object_get(st, "last_request"), "stream", false));
    json_decref(st);
}

static void test_upstream_keepalive(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        struct tg_h_resp r;
        assert_int_equal(tg_h_chat(E.a.port, "tg-it-key",
                                   "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r),
                         0);
        assert_int_equal(r.status, 200);
        tg_h_resp_free(&r);
    }
    json_t *st = tg_h_upstream_stats(E.up.port);
    /* five sequential turns reuse one upstream connection (perhaps opened before the reset) */
    assert_int_equal(tg_json_int(st, "completions", -1), 5);
    assert_true(tg_json_int(st, "total_connections", -1) <= 1);
    json_decref(st);
}

/* ------------------------------------------------------------ upstream failures */

static void expect_upstream_error(int port, const char *step, long status, const char *needle,
                                  double max_seconds)
{
    struct tg_h_resp r;
    char script[256];
    /* Two steps: libcurl retries once by itself when a reused connection dies. */
    snprintf(script, sizeof(script), "{\"steps\":[%s,%s]}", step, step);
    assert_int_equal(tg_h_upstream_control(E.up.port, "reset", "{}"), 0);
    assert_int_equal(tg_h_upstream_control(E.up.port, "script", script), 0);
    assert_int_equal(tg_h_chat(port, "tg-it-key",
                               "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r),
                     0);
    if (r.status != status || !strstr(r.body, needle))
        fail_msg("step %s: got %ld %s", step, r.status, r.body);
    assert_true(r.seconds < max_seconds);
    json_t *j = parse(&r);
    json_t *err = json_object_get(j, "error");
    assert_non_null(tg_json_str(err, "message", NULL));
    assert_string_equal(tg_json_str(json_object_get(j, "trustgate"), "decision", ""), "error");
    json_decref(j);
    tg_h_resp_free(&r);
}

static void test_upstream_failures(void **state)
{
    (void)state;
    expect_upstream_error(E.a.port, "{\"status\":503}", 502, "HTTP 503", 5);
    expect_upstream_error(E.a.port, "{\"status\":429,\"retry_after\":1}", 502, "HTTP 429", 5);
    expect_upstream_error(E.a.port, "{\"reset\":true}", 502, "upstream", 5);
    expect_upstream_error(E.a.port, "{\"hang\":true}", 504, "no response head within 1000 ms",
                          3);
    expect_upstream_error(E.b.port, "{\"cut_after\":1}", 502, "before its final event", 5);
    expect_upstream_error(E.b.port, "{\"stall_after\":1}", 504, "silent for 1000 ms", 3);
    expect_upstream_error(E.b.port, "{\"malformed_at\":1}", 502, "unparseable", 5);
    expect_upstream_error(E.b.port, "{\"reset_after\":1}", 502, "upstream", 5);
    /* and the next turn is fine again */
    assert_int_equal(tg_h_upstream_control(E.up.port, "reset", "{}"), 0);
    check_stream(E.b.port, "恢复了吗");
    struct tg_h_resp r;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", E.a.port);
    assert_int_equal(tg_h_http("GET", url, NULL, NULL, 0, 0, &r), 0);
    assert_non_null(strstr(r.body, "trustgate_backend_errors_total{backend=\"primary\","
                                   "kind=\"status_503\"} 1"));
    assert_non_null(strstr(r.body, "kind=\"header_timeout\"} 1"));
    assert_non_null(strstr(r.body, "trustgate_decisions_total{decision=\"error\"} 4"));
    tg_h_resp_free(&r);
}

/* ------------------------------------------------------------ bad input */

static void test_auth(void **state)
{
    (void)state;
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    const char *keys[] = {NULL, "wrong", "tg-it-ke", "TG-IT-KEY", "tg-it-key2"};
    for (size_t i = 0; i < TG_ARRAY_LEN(keys); i++) {
        struct tg_h_resp r;
        assert_int_equal(tg_h_chat(E.a.port, keys[i], body, &r), 0);
        assert_int_equal(r.status, 401);
        json_t *j = parse(&r);
        json_t *e = json_object_get(j, "error");
        assert_string_equal(tg_json_str(e, "type", ""), "authentication_error");
        assert_string_equal(tg_json_str(e, "code", ""), "invalid_api_key");
        json_decref(j);
        tg_h_resp_free(&r);
    }
}

static uint64_t audit_size_of(int port)
{
    struct tg_h_resp r;
    assert_int_equal(tg_h_chat(port, "tg-it-key",
                               "{\"messages\":[{\"role\":\"user\",\"content\":\"count\"}]}", &r),
                     0);
    assert_int_equal(r.status, 200);
    json_t *j = parse(&r);
    uint64_t n = (uint64_t)tg_json_int(json_object_get(j, "trustgate"), "audit_index", -1);
    json_decref(j);
    tg_h_resp_free(&r);
    return n;
}

static void test_bad_input_table(void **state)
{
    (void)state;
    char *big = malloc(70000);
    memset(big, 'x', 69999);
    big[69999] = '\0';
    memcpy(big, "{\"messages\":[{\"role\":\"user\",\"content\":\"", 39);
    static const struct {
        const char *method, *path, *body;
        long status;
        const char *code;
        const char *needle;
    } cases[] = {
        {"POST", "/v1/chat/completions", "{not json", 400, "invalid_json", "not valid JSON"},
        {"POST", "/v1/chat/completions", "", 400, "invalid_json", "not valid JSON"},
        {"POST", "/v1/chat/completions", "{\"model\":\"x\"}", 400, "missing_field", "messages"},
        {"POST", "/v1/chat/completions", "{\"messages\":{}}", 400, "invalid_type", "array"},
        {"POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":1}]}",
         400, "invalid_type", "content"},
        {"POST", "/v1/chat/completions",
         "{\"stream\":1,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400,
         "invalid_type", "stream"},
        {"POST", "/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"1\"},{\"role\":\"user\",\"content\":"
         "\"2\"},{\"role\":\"user\",\"content\":\"3\"},{\"role\":\"user\",\"content\":\"4\"},{"
         "\"role\":\"user\",\"content\":\"5\"},{\"role\":\"user\",\"content\":\"6\"},{\"role\":"
         "\"user\",\"content\":\"7\"},{\"role\":\"user\",\"content\":\"8\"},{\"role\":\"user\","
         "\"content\":\"9\"}]}",
         400, "too_many_messages", "limit is 8"},
        {"GET", "/v1/chat/completions", NULL, 405, "method_not_allowed", "use POST"},
        {"DELETE", "/v1/models", NULL, 405, "method_not_allowed", "use GET"},
        {"GET", "/v1/nothing", NULL, 404, "unknown_route", "/v1/nothing"},
        {"POST", "/v1/chat/completions", NULL, 413, "request_too_large", "exceeds the limit"},
    };
    uint64_t before = audit_size_of(E.a.port);
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        struct tg_h_resp r;
        char url[256];
        const char *body = cases[i].body;
        if (cases[i].status == 413)
            body = big;
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", E.a.port, cases[i].path);
        const char *hdrs[] = {"Authorization: Bearer tg-it-key", "Content-Type: application/json",
                              NULL};
        assert_int_equal(tg_h_http(cases[i].method, url, hdrs, body, body ? strlen(body) : 0, 0,
                                   &r),
                         0);
        json_t *j = json_loads(r.body, 0, NULL);
        json_t *e = json_object_get(j, "error");
        if (r.status != cases[i].status || !e ||
            strcmp(tg_json_str(e, "code", ""), cases[i].code) != 0 ||
            !strstr(tg_json_str(e, "message", ""), cases[i].needle))
            fail_msg("case %zu %s %s: got %ld %s", i, cases[i].method, cases[i].path, r.status,
                     r.body);
        if (cases[i].status == 405)
            assert_non_null(strstr(r.headers, "Allow: "));
        json_decref(j);
        tg_h_resp_free(&r);
    }
    /* Nothing accepted was lost and nothing refused was recorded: exactly one more leaf. */
    assert_int_equal(audit_size_of(E.a.port), before + 1);
    free(big);
}

/* Raw HTTP/1.1 on one socket: pipelining, chunked bodies, HTTP/1.0. */
static char *raw_exchange(int port, const char *request, int wait_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    struct timeval tv = {0, wait_ms * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct tg_buf b;
    char chunk[4096];
    ssize_t n;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        tg_buf_append(&b, chunk, (size_t)n);
    close(fd);
    return tg_buf_steal(&b, NULL);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    while ((hay = strstr(hay, needle)) != NULL) {
        n++;
        hay += strlen(needle);
    }
    return n;
}

static void test_http_framing(void **state)
{
    (void)state;
    char *out = raw_exchange(E.a.port,
                             "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                             "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
                             "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                             2000);
    assert_int_equal(count(out, "HTTP/1.1 200 OK"), 3);
    assert_int_equal(count(out, "\"status\":\"ready\""), 1);
    tg_free(out);

    out = raw_exchange(E.a.port,
                       "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer tg-it-key\r\nTransfer-Encoding: chunked\r\n"
                       "Connection: close\r\n\r\n"
                       "10\r\n{\"messages\":[{\"r\r\n"
                       "21\r\nole\":\"user\",\"content\":\"分块\"}]}\r\n0\r\n\r\n",
                       3000);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(out, "fake answer to: 分块"));
    tg_free(out);

    /* A head that arrives in pieces is waited for (not spun on), then answered. */
    {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)E.a.port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        const char *p1 = "GET /healthz HTTP/1.1\r\nHo", *p2 = "st: x\r\nConnection: close\r\n\r\n";
        assert_int_equal(write(fd, p1, strlen(p1)), (ssize_t)strlen(p1));
        usleep(300000);
        assert_int_equal(write(fd, p2, strlen(p2)), (ssize_t)strlen(p2));
        char buf[512];
        struct timeval tv = {2, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        assert_true(n > 0);
        buf[n] = '\0';
        assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
        close(fd);
    }

    out = raw_exchange(E.a.port, "GET /healthz HTTP/1.0\r\n\r\n", 2000);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(out, "Connection: close"));
    tg_free(out);

    out = raw_exchange(E.a.port, "BROKEN\r\n\r\n", 2000);
    assert_non_null(strstr(out, "HTTP/1.1 400"));
    assert_non_null(strstr(out, "\"code\":\"bad_request\""));
    tg_free(out);

    out = raw_exchange(E.a.port, "GET /healthz HTTP/2.0\r\n\r\n", 2000);
    assert_non_null(strstr(out, "HTTP/1.1 505"));
    tg_free(out);
}

/* ------------------------------------------------------------ status endpoints */

static void test_status_endpoints(void **state)
{
    (void)state;
    struct tg_h_resp r;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/models", E.a.port);
    assert_int_equal(tg_h_http("GET", url, NULL, NULL, 0, 0, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = parse(&r);
    assert_string_equal(tg_json_str(j, "object", ""), "list");
    assert_int_equal(json_array_size(json_object_get(j, "data")), 2);
    assert_string_equal(tg_json_str(json_array_get(json_object_get(j, "data"), 1), "id", ""),
                        "fake-model");
    json_decref(j);
    tg_h_resp_free(&r);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", E.a.port);
    assert_int_equal(tg_h_http("GET", url, NULL, NULL, 0, 0, &r), 0);
    assert_int_equal(r.status, 200);
    tg_h_resp_free(&r);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", E.a.port);
    assert_int_equal(tg_h_http("GET", url, NULL, NULL, 0, 0, &r), 0);
    assert_int_equal(r.status, 200);
    const char *names[] = {("trustgate_http_requests_total{route=\"/v1/chat/completions\","
                            "status=\"200\"}"),
                           "trustgate_decisions_total{decision=\"deliver\"}",
                           "trustgate_stage_duration_seconds_bucket{stage=\"generate\"",
                           "trustgate_stage_duration_seconds_count{stage=\"record\"}",
                           "trustgate_turn_duration_seconds_count"};
    for (size_t i = 0; i < TG_ARRAY_LEN(names); i++)
        if (!strstr(r.body, names[i]))
            fail_msg("metrics lack %s", names[i]);
    tg_h_resp_free(&r);
}

/* ------------------------------------------------------------ conversations */

static void test_conversation_across_devices(void **state)
{
    (void)state;
    struct tg_h_resp r1, r2;
    /* Two separate connections (two devices), one customer. */
    assert_int_equal(tg_h_chat(E.a.port, "tg-it-key",
                               "{\"user\":\"cust-7\",\"messages\":[{\"role\":\"user\",\"content\":"
                               "\"第一个问题\"}]}",
                               &r1),
                     0);
    assert_int_equal(tg_h_chat(E.a.port, "tg-it-key",
                               "{\"user\":\"cust-7\",\"messages\":[{\"role\":\"user\",\"content\":"
                               "\"第二个问题\"}]}",
                               &r2),
                     0);
    json_t *j1 = parse(&r1), *j2 = parse(&r2);
    const char *c1 = tg_json_str(json_object_get(j1, "trustgate"), "conversation_id", "1");
    const char *c2 = tg_json_str(json_object_get(j2, "trustgate"), "conversation_id", "2");
    assert_string_equal(c1, c2);
    /* The model saw the earlier exchange. */
    json_t *st = tg_h_upstream_stats(E.up.port);
    json_t *msgs = json_object_get(json_object_get(st, "last_request"), "messages");
    assert_int_equal(json_array_size(msgs), 3);
    assert_string_equal(tg_json_str(json_array_get(msgs, 0), "content", ""), "第一个问题");
    assert_string_equal(tg_json_str(json_array_get(msgs, 1), "role", ""), "assistant");
    assert_string_equal(tg_json_str(json_array_get(msgs, 2), "content", ""), "第二个问题");
    json_decref(st);
    json_decref(j1);
    json_decref(j2);
    tg_h_resp_free(&r1);
    tg_h_resp_free(&r2);
}

static void test_turn_log_lines(void **state)
{
    (void)state;
    char *log = tg_h_log(&E.a);
    assert_non_null(strstr(log, "\"event\":\"turn\""));
    assert_non_null(strstr(log, "\"stage_us\":{"));
    assert_non_null(strstr(log, "\"decision\":\"deliver\""));
    assert_null(strstr(log, "第一个问题")); /* never message text */
    assert_null(strstr(log, "cust-7"));     /* never the raw customer id */
    tg_free(log);
}

/* ------------------------------------------------------------ client leaves */

static void test_client_gone_turn_still_recorded(void **state)
{
    (void)state;
    struct tg_h_resp r;
    char url[128];
    uint64_t before = audit_size_of(E.a.port);
    assert_int_equal(tg_h_upstream_control(E.up.port, "script", "{\"steps\":[{\"delay_ms\":600}]}"),
                     0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", E.a.port);
    const char *hdrs[] = {"Authorization: Bearer tg-it-key", NULL};
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"不等了\"}]}";
    assert_int_equal(tg_h_http("POST", url, hdrs, body, strlen(body), 150, &r), -1);
    tg_h_resp_free(&r);
    usleep(900000);
    /* the abandoned turn took its leaf: the next one is two further on */
    assert_int_equal(audit_size_of(E.a.port), before + 2);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", E.a.port);
    assert_int_equal(tg_h_http("GET", url, NULL, NULL, 0, 0, &r), 0);
    assert_non_null(strstr(r.body, "route=\"/v1/chat/completions\",status=\"499\"} 1"));
    tg_h_resp_free(&r);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", E.a.port);
    assert_int_equal(tg_h_http("GET", url, NULL, NULL, 0, 0, &r), 0);
    assert_non_null(strstr(r.body, "\"inflight\":0"));
    tg_h_resp_free(&r);
}

/* ------------------------------------------------------------ drain and audit */

struct slow_req {
    int port;
    struct tg_h_resp r;
};

static void *slow_request(void *arg)
{
    struct slow_req *s = arg;
    tg_h_chat(s->port, "tg-it-key", "{\"messages\":[{\"role\":\"user\",\"content\":\"慢\"}]}",
              &s->r);
    return NULL;
}

static void test_sigterm_drains_then_audit_verifies(void **state)
{
    (void)state;
    struct slow_req s = {.port = E.a.port};
    pthread_t th;
    assert_int_equal(tg_h_upstream_control(E.up.port, "script", "{\"steps\":[{\"delay_ms\":700}]}"),
                     0);
    assert_int_equal(pthread_create(&th, NULL, slow_request, &s), 0);
    /* SIGTERM only once the turn is with the upstream (under load a fixed
     * sleep could stop the server before the request even arrived) */
    for (int i = 0; i < 200; i++) {
        json_t *st = tg_h_upstream_stats(E.up.port);
        json_int_t n = tg_json_int(st, "requests", 0);
        json_decref(st);
        if (n >= 1)
            break;
        usleep(10000);
    }
    int64_t t0 = tg_clock_mono_ns();
    int status = tg_h_stop(&E.a, 5000);
    pthread_join(th, NULL);
    assert_int_equal(status, 0);
    int64_t waited = tg_clock_mono_ns() - t0;
    assert_true(waited > 100 * 1000000LL);  /* it waited for the turn (the upstream takes 0.7 s) */
    assert_true(waited < 3000 * 1000000LL); /* and for nothing else (drain timeout is 5 s) */
    assert_int_equal(s.r.status, 200);
    assert_non_null(strstr(s.r.body, "fake answer to: 慢"));
    json_t *j = parse(&s.r);
    json_int_t idx = tg_json_int(json_object_get(j, "trustgate"), "audit_index", -1);
    json_decref(j);
    tg_h_resp_free(&s.r);

    char cmd[512], bin[256];
    char *out = NULL;
    snprintf(cmd, sizeof(cmd), "%s audit verify --data %s --json",
             tg_h_bin("trustgate", bin, sizeof(bin)), E.dir_a);
    assert_int_equal(tg_h_run(cmd, &out), 0);
    json_t *rep = json_loads(out, 0, NULL);
    assert_true(tg_json_bool(rep, "intact", false));
    /* the drained turn is in the log */
    assert_int_equal(tg_json_int(rep, "size", 0), idx + 1);
    json_decref(rep);
    tg_free(out);

    /* Alter one stored leaf: verify names it. */
    snprintf(cmd, sizeof(cmd),
             "sqlite3 %s/trustgate.db \"UPDATE audit SET data = CAST(REPLACE(CAST(data AS TEXT), "
             "'deliver', 'refuse') AS BLOB) WHERE idx = 2\" 2>&1",
             E.dir_a);
    if (tg_h_run(cmd, NULL) == 127)
        skip(); /* no sqlite3 shell */
    snprintf(cmd, sizeof(cmd), "%s audit verify --data %s", bin, E.dir_a);
    assert_int_equal(tg_h_run(cmd, &out), 1);
    assert_non_null(strstr(out, "first bad leaf 2"));
    tg_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_chat_completion, reset_upstream),
        cmocka_unit_test_setup(test_stream_to_client, reset_upstream),
        cmocka_unit_test_setup(test_stream_from_upstream, reset_upstream),
        cmocka_unit_test_setup(test_upstream_keepalive, reset_upstream),
        cmocka_unit_test_setup(test_upstream_failures, reset_upstream),
        cmocka_unit_test_setup(test_auth, reset_upstream),
        cmocka_unit_test_setup(test_bad_input_table, reset_upstream),
        cmocka_unit_test_setup(test_http_framing, reset_upstream),
        cmocka_unit_test_setup(test_status_endpoints, reset_upstream),
        cmocka_unit_test_setup(test_conversation_across_devices, reset_upstream),
        cmocka_unit_test_setup(test_turn_log_lines, reset_upstream),
        cmocka_unit_test_setup(test_client_gone_turn_still_recorded, reset_upstream),
        cmocka_unit_test_setup(test_sigterm_drains_then_audit_verifies, reset_upstream),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
