/*
 * itest_console.c - what the reviewer console and the chat page stand on,
 * over real HTTP against the daemon: the embedded pages and their security
 * headers, console logins (PBKDF2 passwords, session cookies, CSRF tokens,
 * delays after failures), live events to consoles and to the customer's chat, agent
 * replies after a hand-off, internal queues listed last, and the
 * supervisor's statistics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char dir[64], dir2[64];
static struct tg_h_proc gw, gw2;

/* A second deployment: reviews that expire in 1.5 s, an internal queue, a
 * password given as a hash (1000 iterations: fast for tests). */
static const char *short_sla_config =
    "auth:\n  api_keys:\n    - name: t\n      key: tg-t\n      class_from_metadata: true\n"
    "review:\n  internal_queues: [bi_reports]\n"
    "eval:\n  monitor: {min_far: 0.99, days: 1, alpha: 0.05}\n"
    "experiments:\n  - name: exp1\n    salt: s1\n    holdout: 0.1\n"
    "    variants: [{name: control, share: 1}, {name: b, share: 1}]\n"
    "users:\n"
    "  - name: ann\n    role: agent\n    token: tg-ann\n"
    "    password_hash: \"pbkdf2-sha256$1000$73616c74$"
    "632c2812e46d4604102ba7618e9d6d7d2f8128f6266b4a03264d2a0460b7dcb3\"\n"
    "  - name: rex\n    role: reviewer\n    token: tg-rex\n"
    "  - name: sue\n    role: supervisor\n    token: tg-sue\n"
    "backends:\n  - name: s\n    type: script\n    reply: 建议配置稳健理财\n"
    "route:\n  backend: s\n"
    "policies:\n"
    "  - id: hold\n    description: hold for review\n    when:\n"
    "      keywords: [复核]\n    then:\n      - review: {sla: 1500ms, queue: wealth}\n"
    "  - id: bi\n    description: internal report\n    when:\n"
    "      keywords: [报表]\n    then:\n      - review: {sla: 60s, queue: bi_reports}\n";

static int setup(void **state)
{
    (void)state;
    char cfg[256];
    if (!tg_h_tmpdir(dir, sizeof(dir)) || !tg_h_tmpdir(dir2, sizeof(dir2)))
        return -1;
    if (tg_h_start_gateway(&gw, "examples/insurance/trustgate.yaml", dir))
        return -1;
    tg_h_write_file(dir2, "trustgate.yaml", short_sla_config, cfg, sizeof(cfg));
    return tg_h_start_gateway(&gw2, cfg, dir2);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[200];
    int rc = tg_h_stop(&gw, 5000) | tg_h_stop(&gw2, 5000);
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir, dir2);
    if (system(cmd) != 0)
        rc = -1;
    return rc == 0 ? 0 : -1;
}

/* One request to a gateway; extra headers NULL-terminated. */
static void req(int port, const char *method, const char *path, const char *const *extra,
                const char *body, struct tg_h_resp *r)
{
    char url[512];
    const char *hdrs[8] = {"Content-Type: application/json"};
    size_t n = 1;
    for (; extra && *extra && n < 7; extra++)
        hdrs[n++] = *extra;
    hdrs[n] = NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    assert_int_equal(tg_h_http(method, url, hdrs, body, body ? strlen(body) : 0, 0, r), 0);
}

static json_t *req_json(int port, const char *method, const char *path, const char *const *extra,
                        const char *body, long *status)
{
    struct tg_h_resp r;
    req(port, method, path, extra, body, &r);
    *status = r.status;
    json_t *j = json_loads(r.body, 0, NULL);
    if (!j)
        fail_msg("%s %s: %ld, not JSON: %s", method, path, r.status, r.body);
    tg_h_resp_free(&r);
    return j;
}

/* "Cookie: NAME=VALUE" from a response's Set-Cookie for name. */
static void cookie_from(const struct tg_h_resp *r, const char *name, char *out, size_t outlen)
{
    char want[64];
    snprintf(want, sizeof(want), "Set-Cookie: %s=", name);
    const char *p = strstr(r->headers, want);
    assert_non_null(p);
    p += strlen("Set-Cookie: ");
    size_t n = strcspn(p, ";\r\n");
    snprintf(out, outlen, "Cookie: %.*s", (int)n, p);
}

static const char *err_code(const json_t *j)
{
    return tg_json_str(json_object_get(j, "error"), "code", "");
}

/* ------------------------------------------------------------ streams */

/* Open an event stream; returns the socket. */
static int sse_open(int port, const char *path, const char *header)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char head[1024];
    int n =
        snprintf(head, sizeof(head),
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n%s\r\n\r\n",
                 path, header);
    assert_int_equal(write(fd, head, (size_t)n), n);
    return fd;
}

/* Read the stream until needle appears (true) or timeout_ms passes. */
static bool sse_wait(int fd, char *buf, size_t cap, size_t *len, const char *needle, int timeout_ms)
{
    int64_t end = tg_clock_mono_ns() / 1000000 + timeout_ms;
    for (;;) {
        buf[*len] = '\0';
        if (strstr(buf, needle))
            return true;
        int left = (int)(end - tg_clock_mono_ns() / 1000000);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0 || *len + 1 >= cap)
            return false;
        ssize_t got = read(fd, buf + *len, cap - *len - 1);
        if (got <= 0)
            return false;
        *len += (size_t)got;
    }
}

/* ------------------------------------------------------------ tests */

static void test_pages_are_embedded_with_security_headers(void **state)
{
    (void)state;
    struct tg_h_resp r;
    req(gw.port, "GET", "/", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: text/html"));
    assert_non_null(strstr(r.headers, "Content-Security-Policy: default-src 'self'"));
    assert_non_null(strstr(r.headers, "X-Frame-Options: DENY"));
    assert_non_null(strstr(r.body, "/chat/chat.js"));
    const char *cookie = strstr(r.headers, "Set-Cookie: tg_chat=web_");
    assert_non_null(cookie);
    assert_non_null(strstr(cookie, "HttpOnly; SameSite=Strict"));
    const char *etag = strstr(r.headers, "ETag: ");
    assert_non_null(etag);
    char inm[64], ck[128];
    snprintf(inm, sizeof(inm), "If-None-Match: %.*s", (int)strcspn(etag + 6, "\r\n"), etag + 6);
    cookie_from(&r, "tg_chat", ck, sizeof(ck));
    tg_h_resp_free(&r);
    /* unchanged: 304 without a body */
    const char *h304[] = {inm, ck, NULL};
    req(gw.port, "GET", "/", h304, NULL, &r);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.len, 0);
    tg_h_resp_free(&r);

    req(gw.port, "GET", "/console", NULL, NULL, &r);
    assert_int_equal(r.status, 301);
    assert_non_null(strstr(r.headers, "Location: /console/"));
    tg_h_resp_free(&r);
    req(gw.port, "GET", "/console/", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "/console/console.js"));
    tg_h_resp_free(&r);
    req(gw.port, "GET", "/console/console.js", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: text/javascript"));
    tg_h_resp_free(&r);
    long st;
    json_t *j = req_json(gw.port, "GET", "/console/nothing.js", NULL, NULL, &st);
    assert_int_equal(st, 404);
    json_decref(j);
    /* the second deployment has no chat page (web.chat defaults to off) but a console */
    j = req_json(gw2.port, "GET", "/", NULL, NULL, &st);
    assert_int_equal(st, 404);
    json_decref(j);
}

static void test_login_session_csrf_and_logout(void **state)
{
    (void)state;
    long st;
    struct tg_h_resp r;
    json_t *j = req_json(gw.port, "POST", "/console/api/login", NULL,
                         "{\"user\":\"reviewer1\",\"password\":\"wrong\"}", &st);
    assert_int_equal(st, 401);
    assert_string_equal(err_code(j), "invalid_credentials");
    json_decref(j);
    j = req_json(gw.port, "POST", "/console/api/login", NULL,
                 "{\"user\":\"nobody\",\"password\":\"demo\"}", &st);
    assert_int_equal(st, 401);
    json_decref(j);
    j = req_json(gw.port, "POST", "/console/api/login", NULL, "{\"user\":\"reviewer1\"}", &st);
    assert_int_equal(st, 400);
    json_decref(j);
    /* a login posted from another site's page */
    const char *evil[] = {"Origin: http://evil.example", NULL};
    j = req_json(gw.port, "POST", "/console/api/login", evil,
                 "{\"user\":\"reviewer1\",\"password\":\"demo\"}", &st);
    assert_int_equal(st, 403);
    json_decref(j);

    req(gw.port, "POST", "/console/api/login", NULL,
        "{\"user\":\"reviewer1\",\"password\":\"demo\"}", &r);
    assert_int_equal(r.status, 200);
    const char *set = strstr(r.headers, "Set-Cookie: tg_session=");
    assert_non_null(set);
    assert_non_null(strstr(set, "HttpOnly; SameSite=Strict"));
    char ck[160], csrf[160];
    cookie_from(&r, "tg_session", ck, sizeof(ck));
    j = json_loads(r.body, 0, NULL);
    assert_string_equal(tg_json_str(j, "user", ""), "reviewer1");
    assert_string_equal(tg_json_str(j, "role", ""), "reviewer");
    snprintf(csrf, sizeof(csrf), "X-CSRF-Token: %s", tg_json_str(j, "csrf", ""));
    json_decref(j);
    tg_h_resp_free(&r);

    const char *with_cookie[] = {ck, NULL}, *with_both[] = {ck, csrf, NULL};
    j = req_json(gw.port, "GET", "/console/api/me", with_cookie, NULL, &st);
    assert_int_equal(st, 200);
    assert_string_equal(tg_json_str(j, "user", ""), "reviewer1");
    json_decref(j);
    /* the session reads the queue; a POST without the CSRF token is refused */
    j = req_json(gw.port, "GET", "/v1/reviews?state=open", with_cookie, NULL, &st);
    assert_int_equal(st, 200);
    assert_true(json_is_integer(json_object_get(j, "now_ms")));
    json_decref(j);
    j = req_json(gw.port, "POST", "/v1/reviews/rev_x/claim", with_cookie, NULL, &st);
    assert_int_equal(st, 403);
    assert_string_equal(err_code(j), "csrf_failed");
    json_decref(j);
    j = req_json(gw.port, "POST", "/v1/reviews/rev_x/claim", with_both, NULL, &st);
    assert_int_equal(st, 404); /* past the CSRF check: the task does not exist */
    json_decref(j);
    j = req_json(gw.port, "GET", "/v1/reviews?state=bogus", with_cookie, NULL, &st);
    assert_int_equal(st, 400);
    json_decref(j);

    j = req_json(gw.port, "POST", "/console/api/logout", with_cookie, NULL, &st);
    assert_int_equal(st, 403); /* logging out needs the token too */
    json_decref(j);
    j = req_json(gw.port, "POST", "/console/api/logout", with_both, NULL, &st);
    assert_int_equal(st, 200);
    json_decref(j);
    j = req_json(gw.port, "GET", "/console/api/me", with_cookie, NULL, &st);
    assert_int_equal(st, 401);
    json_decref(j);
    j = req_json(gw.port, "GET", "/v1/reviews", with_cookie, NULL, &st);
    assert_int_equal(st, 401);
    json_decref(j);
}

/* Five failures for a name from one client: the next attempt from there
 * must wait (a second at first), even with the right password.  (Other
 * addresses, unknown names and the queue: itest_identity.c.) */
static void test_failed_logins_delay_further_attempts(void **state)
{
    (void)state;
    long st;
    struct tg_h_resp r;
    for (int i = 0; i < 5; i++) {
        json_t *j = req_json(gw.port, "POST", "/console/api/login", NULL,
                             "{\"user\":\"super1\",\"password\":\"guess\"}", &st);
        assert_int_equal(st, 401);
        json_decref(j);
    }
    req(gw.port, "POST", "/console/api/login", NULL, "{\"user\":\"super1\",\"password\":\"demo\"}",
        &r);
    assert_int_equal(r.status, 429);
    assert_non_null(strstr(r.headers, "Retry-After: 1\r\n"));
    json_t *j = json_loads(r.body, 0, NULL);
    assert_string_equal(err_code(j), "too_many_attempts");
    json_decref(j);
    tg_h_resp_free(&r);
}

static void test_password_hash_from_the_config(void **state)
{
    (void)state;
    long st;
    json_t *j = req_json(gw2.port, "POST", "/console/api/login", NULL,
                         "{\"user\":\"ann\",\"password\":\"password\"}", &st);
    assert_int_equal(st, 200);
    assert_string_equal(tg_json_str(j, "role", ""), "agent");
    json_decref(j);
    j = req_json(gw2.port, "POST", "/console/api/login", NULL,
                 "{\"user\":\"rex\",\"password\":\"\"}", &st);
    assert_int_equal(st, 401); /* a user with a token and no password cannot log in */
    json_decref(j);
}

static void test_live_events_reach_console_and_chat(void **state)
{
    (void)state;
    struct tg_h_resp r;
    char ck[128], buf[16384], cbuf[16384], id[64], path[128];
    size_t len = 0, clen = 0;
    long st;
    req(gw.port, "GET", "/", NULL, NULL, &r);
    cookie_from(&r, "tg_chat", ck, sizeof(ck));
    tg_h_resp_free(&r);

    int console = sse_open(gw.port, "/v1/reviews/events", "Authorization: Bearer tg-demo-reviewer");
    int chat = sse_open(gw.port, "/chat/api/events", ck);
    assert_true(sse_wait(console, buf, sizeof(buf), &len, ": connected", 5000));
    assert_true(sse_wait(chat, cbuf, sizeof(cbuf), &clen, ": connected", 5000));
    assert_non_null(strstr(buf, "Content-Type: text/event-stream"));

    const char *hdr[] = {ck, NULL};
    json_t *j = req_json(gw.port, "POST", "/chat/api/messages", hdr,
                         "{\"text\":\"我想投资60万买理财保险，推荐哪个产品？\"}", &st);
    assert_int_equal(st, 200);
    json_t *tg = json_object_get(j, "trustgate");
    assert_string_equal(tg_json_str(tg, "decision", ""), "review");
    tg_strlcpy(id, tg_json_str(tg, "review_id", ""), sizeof(id));
    json_decref(j);
    char needle[128];
    snprintf(needle, sizeof(needle), "\"event\":\"created\",\"review_id\":\"%s\"", id);
    assert_true(sse_wait(console, buf, sizeof(buf), &len, needle, 5000));

    /* the task carries the turn's context for the reviewer */
    snprintf(path, sizeof(path), "/v1/reviews/%s", id);
    const char *tok[] = {"Authorization: Bearer tg-demo-reviewer", NULL};
    j = req_json(gw.port, "GET", path, tok, NULL, &st);
    assert_int_equal(st, 200);
    assert_string_equal(tg_json_str(json_object_get(j, "intent"), "name", ""), "wealth_advice");
    assert_true(
        json_array_size(json_object_get(json_object_get(j, "explanation"), "intent_tokens")) > 0);
    assert_non_null(tg_json_str(json_array_get(json_object_get(j, "citations"), 0), "text", NULL));
    assert_string_equal(tg_json_str(j, "tier", ""), "standard");
    char draft[2048];
    tg_strlcpy(draft, tg_json_str(j, "draft", ""), sizeof(draft));
    json_decref(j);

    /* an unknown chat message body, and a message without the page's cookie */
    j = req_json(gw.port, "POST", "/chat/api/messages", hdr, "{\"txt\":1}", &st);
    assert_int_equal(st, 400);
    json_decref(j);
    j = req_json(gw.port, "POST", "/chat/api/messages", NULL, "{\"text\":\"你好\"}", &st);
    assert_int_equal(st, 400);
    assert_string_equal(err_code(j), "no_chat_session");
    json_decref(j);

    snprintf(path, sizeof(path), "/v1/reviews/%s/decision", id);
    j = req_json(gw.port, "POST", path, tok,
                 "{\"action\":\"approve\",\"attestations\":[\"已核实客户风险承受能力与产品匹配\"]}",
                 &st);
    assert_int_equal(st, 200);
    json_decref(j);
    snprintf(needle, sizeof(needle), "\"event\":\"decided\",\"review_id\":\"%s\"", id);
    assert_true(sse_wait(console, buf, sizeof(buf), &len, needle, 5000));
    /* the customer's page gets the reviewed answer, and only theirs */
    assert_true(sse_wait(chat, cbuf, sizeof(cbuf), &clen, "event: answer", 5000));
    assert_non_null(strstr(cbuf, id));
    json_t *answer = json_loads(strstr(cbuf, "data: ") + 6, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(answer);
    assert_string_equal(tg_json_str(answer, "answer", ""), draft);
    assert_string_equal(tg_json_str(answer, "from", ""), "reviewer");
    json_decref(answer);
    close(console);
    close(chat);

    /* a chat stream without the page's cookie is refused */
    int bad = sse_open(gw.port, "/chat/api/events", "X-None: 1");
    len = 0;
    assert_true(sse_wait(bad, buf, sizeof(buf), &len, "no_chat_session", 5000));
    close(bad);
}

static json_t *chat2(const char *text, const char *tier)
{
    char body[512];
    long st;
    snprintf(body, sizeof(body),
             "{\"user\":\"cust-%s\",\"metadata\":{\"tier\":\"%s\"},"
             "\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             tier, tier, text);
    const char *key[] = {"Authorization: Bearer tg-t", NULL};
    json_t *j = req_json(gw2.port, "POST", "/v1/chat/completions", key, body, &st);
    assert_int_equal(st, 200);
    return j;
}

static void test_internal_queue_handoff_reply_and_stats(void **state)
{
    (void)state;
    long st;
    char bi[64], vip[64], std[64], path[128], buf[8192];
    size_t len = 0;
    json_t *j = chat2("请生成本月理赔报表", "vip");
    tg_strlcpy(bi, tg_json_str(json_object_get(j, "trustgate"), "review_id", ""), sizeof(bi));
    json_decref(j);
    j = chat2("请复核我的理财方案", "standard");
    tg_strlcpy(std, tg_json_str(json_object_get(j, "trustgate"), "review_id", ""), sizeof(std));
    json_decref(j);
    j = chat2("请复核我的大额理财方案", "vip");
    tg_strlcpy(vip, tg_json_str(json_object_get(j, "trustgate"), "review_id", ""), sizeof(vip));
    json_decref(j);
    assert_true(bi[0] && std[0] && vip[0]);

    /* customers first (VIP before standard), internal work last, even from a VIP */
    const char *rex[] = {"Authorization: Bearer tg-rex", NULL};
    j = req_json(gw2.port, "GET", "/v1/reviews?state=open", rex, NULL, &st);
    assert_int_equal(st, 200);
    json_t *data = json_object_get(j, "data");
    assert_int_equal(json_array_size(data), 3);
    assert_string_equal(tg_json_str(json_array_get(data, 0), "id", ""), vip);
    assert_string_equal(tg_json_str(json_array_get(data, 1), "id", ""), std);
    assert_string_equal(tg_json_str(json_array_get(data, 2), "id", ""), bi);
    assert_true(tg_json_bool(json_array_get(data, 2), "internal", false));
    json_decref(j);

    /* decide the standard one; the VIP one expires into the agents' queue */
    snprintf(path, sizeof(path), "/v1/reviews/%s/decision", std);
    j = req_json(gw2.port, "POST", path, rex, "{\"action\":\"approve\"}", &st);
    assert_int_equal(st, 200);
    json_decref(j);
    int events = sse_open(gw2.port, "/v1/reviews/events", "Authorization: Bearer tg-ann");
    char needle[128];
    snprintf(needle, sizeof(needle), "\"event\":\"handed_off\",\"review_id\":\"%s\"", vip);
    assert_true(sse_wait(events, buf, sizeof(buf), &len, needle, 5000));

    const char *ann[] = {"Authorization: Bearer tg-ann", NULL};
    j = req_json(gw2.port, "GET", "/v1/handoffs", ann, NULL, &st);
    assert_int_equal(st, 200);
    assert_string_equal(tg_json_str(json_array_get(json_object_get(j, "data"), 0), "id", ""), vip);
    json_decref(j);
    snprintf(path, sizeof(path), "/v1/handoffs/%s/reply", vip);
    j = req_json(gw2.port, "POST", path, rex, "{\"text\":\"hi\"}", &st);
    assert_int_equal(st, 403); /* reviewers do not answer hand-offs */
    json_decref(j);
    j = req_json(gw2.port, "POST", path, ann, "{}", &st);
    assert_int_equal(st, 422);
    json_decref(j);
    j = req_json(gw2.port, "POST", path, ann, "{\"text\":\"您好，我是人工客服，马上为您处理。\"}",
                 &st);
    assert_int_equal(st, 200);
    json_t *replies = json_object_get(j, "agent_replies");
    assert_int_equal(json_array_size(replies), 1);
    assert_string_equal(tg_json_str(json_array_get(replies, 0), "actor", ""), "ann");
    json_decref(j);
    assert_true(sse_wait(events, buf, sizeof(buf), &len, "\"event\":\"agent_reply\"", 5000));
    j = req_json(gw2.port, "POST", path, ann, "{\"close\":true}", &st);
    assert_int_equal(st, 200);
    assert_string_equal(tg_json_str(j, "state", ""), "closed");
    json_decref(j);
    j = req_json(gw2.port, "POST", path, ann, "{\"text\":\"again\"}", &st);
    assert_int_equal(st, 409);
    json_decref(j);
    close(events);

    /* the supervisor's figures */
    j = req_json(gw2.port, "GET", "/v1/reviews/stats", rex, NULL, &st);
    assert_int_equal(st, 403);
    json_decref(j);
    const char *sue[] = {"Authorization: Bearer tg-sue", NULL};
    j = req_json(gw2.port, "GET", "/v1/reviews/stats", sue, NULL, &st);
    assert_int_equal(st, 200);
    assert_int_equal(tg_json_int(j, "created", -1), 3);
    assert_int_equal(tg_json_int(j, "decided", -1), 1);
    assert_int_equal(tg_json_int(j, "handed_off", -1), 1);
    assert_int_equal(tg_json_int(j, "open", -1), 1);
    assert_int_equal(tg_json_int(json_object_get(j, "decision_ms"), "n", -1), 1);
    assert_int_equal(json_array_size(json_object_get(j, "by_hour")), 24);
    json_t *rev = json_array_get(json_object_get(j, "by_reviewer"), 0);
    assert_string_equal(tg_json_str(rev, "actor", ""), "rex");
    assert_int_equal(tg_json_int(rev, "decisions", 0), 1);
    assert_int_equal(tg_json_int(json_object_get(j, "by_action"), "approve", 0), 1);
    /* the handed-off task counts in the queue it was raised in, not the agents' */
    size_t qi;
    json_t *q;
    int64_t queued = 0;
    json_array_foreach(json_object_get(j, "by_queue"), qi, q)
    {
        assert_string_not_equal(tg_json_str(q, "queue", ""), "human_agent");
        queued += tg_json_int(q, "created", 0);
    }
    assert_int_equal(queued, 3);
    json_decref(j);
}

/* Customers rate answers; the monitor's daily FAR counts them with the
 * reviewers' approvals, and the criterion (below 99 % today) holds. */
static void test_feedback_and_monitor(void **state)
{
    (void)state;
    long st;
    json_t *j = chat2("请问营业时间", "standard");
    char turn[64], body[256];
    tg_strlcpy(turn, tg_json_str(json_object_get(j, "trustgate"), "turn_id", ""), sizeof(turn));
    json_decref(j);
    const char *key[] = {"Authorization: Bearer tg-t", NULL};
    snprintf(body, sizeof(body), "{\"turn_id\":\"%s\",\"rating\":2,\"correct_answer\":\"9点\"}",
             turn);
    j = req_json(gw2.port, "POST", "/v1/feedback", key, body, &st);
    assert_int_equal(st, 201);
    assert_false(tg_json_bool(j, "good", true));
    assert_null(json_object_get(j, "correct_answer")); /* stored, not echoed */
    json_decref(j);
    j = req_json(gw2.port, "POST", "/v1/feedback", key,
                 "{\"turn_id\":\"turn_nope\",\"rating\":\"good\"}", &st);
    assert_int_equal(st, 404);
    json_decref(j);
    j = req_json(gw2.port, "POST", "/v1/feedback", key, "{\"turn_id\":\"x\",\"rating\":9}", &st);
    assert_int_equal(st, 400);
    json_decref(j);
    j = req_json(gw2.port, "POST", "/v1/feedback", NULL, body, &st);
    assert_int_equal(st, 401);
    json_decref(j);

    /* one judgement per turn: a draft approved, then rated bad by the customer, is one bad
     * answer; a draft a reviewer edited is one bad answer, and the customer's rating of the
     * person's edit does not count for (or against) the AI */
    const char *rex[] = {"Authorization: Bearer tg-rex", NULL};
    static const char *const acts[] = {"{\"action\":\"approve\"}",
                                       "{\"action\":\"edit\",\"text\":\"我们的顾问会致电您。\"}"};
    static const char *const ratings[] = {"\"bad\"", "\"good\""};
    for (int k = 0; k < 2; k++) {
        char path[128];
        j = chat2(k ? "请复核我的养老方案" : "请复核我的教育金方案", "standard");
        const json_t *tgo = json_object_get(j, "trustgate");
        tg_strlcpy(turn, tg_json_str(tgo, "turn_id", ""), sizeof(turn));
        snprintf(path, sizeof(path), "/v1/reviews/%s/decision", tg_json_str(tgo, "review_id", ""));
        json_t *d = req_json(gw2.port, "POST", path, rex, acts[k], &st);
        assert_int_equal(st, 200);
        json_decref(d);
        json_decref(j);
        snprintf(body, sizeof(body), "{\"turn_id\":\"%s\",\"rating\":%s}", turn, ratings[k]);
        j = req_json(gw2.port, "POST", "/v1/feedback", key, body, &st);
        assert_int_equal(st, 201);
        json_decref(j);
    }

    const char *sue[] = {"Authorization: Bearer tg-sue", NULL};
    j = req_json(gw2.port, "GET", "/v1/monitor", sue, NULL, &st);
    assert_int_equal(st, 200);
    json_t *days = json_object_get(j, "days");
    json_t *today = json_array_get(days, json_array_size(days) - 1);
    /* the approval of the internal-queue test, this bad rating, and the two turns above
     * (counted 3 good and 3 bad before) */
    assert_int_equal(tg_json_int(today, "good", -1), 1);
    assert_int_equal(tg_json_int(today, "bad", -1), 3);
    /* a day without judgements is a gap, not a FAR of 0 */
    assert_true(json_is_null(json_object_get(json_array_get(days, 0), "far")));
    const json_t *c = json_object_get(j, "criterion");
    assert_true(tg_json_bool(c, "configured", false));
    assert_true(tg_json_bool(c, "met", false));
    json_decref(j);
    j = req_json(gw2.port, "GET", "/v1/monitor", NULL, NULL, &st);
    assert_int_equal(st, 401);
    json_decref(j);
}

/* Experiments: every turn carries its customer's variant, the same one on
 * every turn; `ab export` turns the audit log into the rows `ab report`
 * reads, and the split matches the configured shares. */
static void test_experiment_assignment_and_export(void **state)
{
    (void)state;
    long st;
    const char *key[] = {"Authorization: Bearer tg-t", NULL};
    int counts[3] = {0, 0, 0};
    for (int i = 0; i < 300; i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"user\":\"exp-cust-%d\",\"messages\":[{\"role\":\"user\",\"content\":"
                 "\"你好\"}]}",
                 i);
        json_t *j = req_json(gw2.port, "POST", "/v1/chat/completions", key, body, &st);
        assert_int_equal(st, 200);
        const char *v = tg_json_str(json_object_get(json_object_get(j, "trustgate"), "experiments"),
                                    "exp1", "");
        counts[!strcmp(v, "control") ? 0 : !strcmp(v, "b") ? 1 : 2]++;
        if (i < 5) { /* the same customer again: the same variant */
            char again[32];
            tg_strlcpy(again, v, sizeof(again));
            json_decref(j);
            j = req_json(gw2.port, "POST", "/v1/chat/completions", key, body, &st);
            assert_string_equal(
                tg_json_str(json_object_get(json_object_get(j, "trustgate"), "experiments"), "exp1",
                            ""),
                again);
        }
        json_decref(j);
    }
    /* 10 % holdout, the rest halved: within a wide margin of 30 / 135 / 135 */
    assert_true(counts[2] >= 12 && counts[2] <= 50);
    assert_true(counts[0] >= 100 && counts[1] >= 100);
    char bin[512], cmd[2048], rows[256];
    tg_h_bin("trustgate", bin, sizeof(bin));
    snprintf(rows, sizeof(rows), "%s/rows.jsonl", dir2);
    snprintf(cmd, sizeof(cmd), "%s ab export exp1 -c %s/trustgate.yaml --data %s > %s", bin, dir2,
             dir2, rows);
    char *out = NULL;
    assert_int_equal(tg_h_run(cmd, &out), 0);
    tg_free(out);
    snprintf(cmd, sizeof(cmd), "grep -c resolved %s", rows);
    assert_int_equal(tg_h_run(cmd, &out), 0);
    int64_t nrows = 0;
    out[strcspn(out, "\n")] = '\0';
    assert_int_equal(tg_parse_i64(out, &nrows), TG_OK);
    assert_true(nrows >= 305); /* every turn of the experiment, the repeats too */
    tg_free(out);
    snprintf(cmd, sizeof(cmd),
             "%s ab report --data %s --control control --metric resolved "
             "--shares control=0.45,b=0.45,holdout=0.1",
             bin, rows);
    assert_int_equal(tg_h_run(cmd, &out), 0);
    assert_non_null(strstr(out, "sample-ratio mismatch"));
    assert_null(strstr(out, "MISMATCH"));
    tg_free(out);
}

/* `trustgate review --url`: the CLI decides through the running server. */
static void test_cli_reviews_through_the_server(void **state)
{
    (void)state;
    long st;
    char bin[512], cmd[2048], id[64];
    char *out = NULL;
    const char *key[] = {"Authorization: Bearer tg-demo-key", NULL};
    json_t *j = req_json(gw.port, "POST", "/v1/chat/completions", key,
                         "{\"user\":\"c-cli\",\"messages\":[{\"role\":\"user\",\"content\":"
                         "\"我想投资80万，买哪个理财保险好？\"}]}",
                         &st);
    tg_strlcpy(id, tg_json_str(json_object_get(j, "trustgate"), "review_id", ""), sizeof(id));
    json_decref(j);
    assert_true(tg_str_has_prefix(id, "rev_"));
    tg_h_bin("trustgate", bin, sizeof(bin));

    snprintf(cmd, sizeof(cmd),
             "%s review list --url http://127.0.0.1:%d --token tg-demo-reviewer "
             "--state open",
             bin, gw.port);
    assert_int_equal(tg_h_run(cmd, &out), 0);
    assert_non_null(strstr(out, id));
    tg_free(out);
    /* the server refuses a decision without the attestation, whoever sends it */
    snprintf(cmd, sizeof(cmd),
             "%s review decide --url http://127.0.0.1:%d --token tg-demo-reviewer "
             "%s --approve 2>&1",
             bin, gw.port, id);
    assert_int_equal(tg_h_run(cmd, &out), 1);
    assert_non_null(strstr(out, "missing required attestation"));
    tg_free(out);
    snprintf(cmd, sizeof(cmd),
             "%s review decide --url http://127.0.0.1:%d --token tg-demo-agent "
             "%s --approve --attest 已核实客户风险承受能力与产品匹配 2>&1",
             bin, gw.port, id);
    assert_int_equal(tg_h_run(cmd, &out), 1); /* agents do not decide */
    assert_non_null(strstr(out, "403"));
    tg_free(out);
    snprintf(cmd, sizeof(cmd),
             "%s review decide --url http://127.0.0.1:%d --token tg-demo-reviewer "
             "%s --approve --attest 已核实客户风险承受能力与产品匹配",
             bin, gw.port, id);
    assert_int_equal(tg_h_run(cmd, &out), 0);
    assert_non_null(strstr(out, "decided (approve) by reviewer1"));
    tg_free(out);
    /* deciding on the store while the server owns it points at --url */
    snprintf(cmd, sizeof(cmd), "%s review decide --data %s %s --actor reviewer1 --approve 2>&1",
             bin, dir, id);
    assert_int_equal(tg_h_run(cmd, &out), 1);
    assert_non_null(strstr(out, "--url"));
    tg_free(out);
}

/* A console session outlives a restart of the gateway (kept in the store);
 * after a logout it is gone for good, restart or not. */
static void test_sessions_survive_a_restart(void **state)
{
    (void)state;
    long st;
    struct tg_h_resp r;
    char cookie[256], csrf[128], cfg[256];
    req(gw2.port, "POST", "/console/api/login", NULL,
        "{\"user\":\"ann\",\"password\":\"password\"}", &r);
    assert_int_equal(r.status, 200);
    cookie_from(&r, "tg_session", cookie, sizeof(cookie));
    json_t *j = json_loads(r.body, 0, NULL);
    tg_strlcpy(csrf, tg_json_str(j, "csrf", ""), sizeof(csrf));
    json_decref(j);
    tg_h_resp_free(&r);
    snprintf(cfg, sizeof(cfg), "%s/trustgate.yaml", dir2);
    assert_int_equal(tg_h_stop(&gw2, 5000), 0);
    assert_int_equal(tg_h_start_gateway(&gw2, cfg, dir2), 0);
    const char *with[] = {cookie, NULL};
    j = req_json(gw2.port, "GET", "/console/api/me", with, NULL, &st);
    assert_int_equal(st, 200);
    assert_string_equal(tg_json_str(j, "user", ""), "ann");
    assert_string_equal(tg_json_str(j, "csrf", ""), csrf);
    json_decref(j);
    /* a made-up session id is still nobody */
    const char *forged[] = {
        "Cookie: tg_session=00000000000000000000000000000000000000000000000000000"
        "00000000000",
        NULL};
    j = req_json(gw2.port, "GET", "/console/api/me", forged, NULL, &st);
    assert_int_equal(st, 401);
    json_decref(j);
    char hdr[200];
    snprintf(hdr, sizeof(hdr), "X-CSRF-Token: %s", csrf);
    const char *out_hdrs[] = {cookie, hdr, NULL};
    j = req_json(gw2.port, "POST", "/console/api/logout", out_hdrs, "{}", &st);
    assert_int_equal(st, 200);
    json_decref(j);
    assert_int_equal(tg_h_stop(&gw2, 5000), 0);
    assert_int_equal(tg_h_start_gateway(&gw2, cfg, dir2), 0);
    j = req_json(gw2.port, "GET", "/console/api/me", with, NULL, &st);
    assert_int_equal(st, 401);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pages_are_embedded_with_security_headers),
        cmocka_unit_test(test_login_session_csrf_and_logout),
        cmocka_unit_test(test_failed_logins_delay_further_attempts),
        cmocka_unit_test(test_password_hash_from_the_config),
        cmocka_unit_test(test_live_events_reach_console_and_chat),
        cmocka_unit_test(test_internal_queue_handoff_reply_and_stats),
        cmocka_unit_test(test_feedback_and_monitor),
        cmocka_unit_test(test_experiment_assignment_and_export),
        cmocka_unit_test(test_cli_reviews_through_the_server),
        cmocka_unit_test(test_sessions_survive_a_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
