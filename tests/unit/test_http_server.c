/*
 * test_http_server.c - the HTTP/1.1 server (src/net/server.c): the head
 * parser on a table of heads, strict where two readers could frame a
 * request differently, and the head deadline and the linger on a
 * socketpair served by a real server with a one-second deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/http.h"

#include <errno.h>
#include <event2/event.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------ the parser */

struct head_case {
    const char *head;
    int status;          /* 0: accepted */
    int64_t body_length; /* when accepted: Content-Length, or -1 when chunked */
};

static const struct head_case cases[] = {
    {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, 0},
    {"GET /a?b=c HTTP/1.0\r\n\r\n", 0, 0},
    {"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 57\r\n\r\n", 0, 57},
    {"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length:7  \r\n\r\n", 0, 7},
    {"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n", 0, -1},
    {"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 0, 0},
    {"GET / HTTP/1.1\r\nHost:\r\n\r\n", 0, 0},
    {"GET / HTTP/1.1\r\nHost: x\r\nX-Utf8: caf\xc3\xa9\t!\r\n\r\n", 0, 0},
    /* repeated or malformed Content-Length (RFC 9112 §6.3) */
    {"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 57\r\nContent-Length: 91\r\n\r\n", 400, 0},
    {"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", 400, 0},
    {"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n", 400, 0},
    {"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", 400, 0},
    {"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\n", 400, 0},
    {"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", 400, 0},
    {"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400, 0},
    {"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413, 0},
    {"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\n", 400, 0},
    {"POST /p HTTP/1.1\r\nHost: x\r\n Content-Length: 5\r\n\r\n", 400, 0},
    /* Transfer-Encoding (RFC 9112 §6.1) */
    {"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400,
     0},
    {"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
     "Transfer-Encoding: chunked\r\n\r\n",
     400, 0},
    {"POST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, 0},
    {"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, 0},
    /* Host (RFC 9112 §3.2) */
    {"GET / HTTP/1.1\r\n\r\n", 400, 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, 0},
    {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, 0},
    {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, 0},
    /* control characters, bare LF, bad names and request lines */
    {"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\nContent-Length: 5\r\n\r\n", 400, 0},
    {"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01"
     "b\r\n\r\n",
     400, 0},
    {"GET / HTTP/1.1\r\nHost: x\r\nX(A): 1\r\n\r\n", 400, 0},
    {"GET / HTTP/1.1\r\nHost: x\r\n: 1\r\n\r\n", 400, 0},
    {"GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n", 400, 0},
    {"GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0},
    {"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0},
    {"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0},
    {"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0},
    {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, 0},
    {"GET / HTTP/1.1\r\nHost: x\r\n", 400, 0},
    {"BROKEN\r\n\r\n", 400, 0},
    {"\r\n\r\n", 400, 0},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct head_case *c = &cases[i];
        size_t len = strlen(c->head);
        struct tg_http_req *r = NULL;
        const char *why = NULL;
        int st = tg_http_parse_request(c->head, len, NULL, &r, &why);
        if (st != c->status)
            fail_msg("case %zu: status %d (%s), wanted %d", i, st, why ? why : "", c->status);
        if (st == 0) {
            assert_non_null(r);
            assert_int_equal(tg_http_body_length(r), c->body_length);
            tg_http_req_free(r);
        } else {
            assert_null(r);
            assert_non_null(why);
        }
    }
}

static void test_parse_accessors(void **state)
{
    (void)state;
    static const char head[] = "POST /v1/x?a=1&b=2 HTTP/1.1\r\nHost: h\r\nX-Pad:  two words \r\n"
                               "Cookie: tg_session=abc; other=1\r\nConnection: close\r\n"
                               "Content-Length: 3\r\n\r\nabc";
    struct tg_http_req *r = NULL;
    const char *why = NULL;
    assert_int_equal(tg_http_parse_request(head, sizeof(head) - 1, NULL, &r, &why), 0);
    assert_string_equal(tg_http_method(r), "POST");
    assert_string_equal(tg_http_path(r), "/v1/x");
    assert_string_equal(tg_http_query(r), "a=1&b=2");
    assert_string_equal(tg_http_header(r, "x-pad"), "two words");
    assert_string_equal(tg_http_header(r, "HOST"), "h");
    assert_null(tg_http_header(r, "Missing"));
    assert_int_equal(tg_http_body_length(r), 3);
    size_t n = 1;
    assert_string_equal(tg_http_body(r, &n), "");
    assert_int_equal(n, 0);
    tg_http_req_free(r);
    tg_http_req_free(NULL);

    /* a NUL in a value */
    static const char nul[] = "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n";
    assert_int_equal(tg_http_parse_request(nul, sizeof(nul) - 1, NULL, &r, &why), 400);

    /* limits: too many fields, too long a head */
    struct tg_http_limits lim = {.max_headers = 2, .max_header = 64};
    static const char three[] = "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n";
    assert_int_equal(tg_http_parse_request(three, sizeof(three) - 1, &lim, &r, &why), 431);
    static const char lng[] = "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
                              "HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(tg_http_parse_request(lng, sizeof(lng) - 1, &lim, &r, &why), 431);
}

/* ------------------------------------------------------------ deadlines */

struct srv_env {
    struct event_base *base;
    struct tg_http_server *srv;
    int client; /* our end of the socketpair */
};

static void handler(struct tg_http_req *req, void *arg)
{
    (void)arg;
    tg_http_respond(req, 200, "text/plain", NULL, "ok", 2);
}

static void serve(struct srv_env *e)
{
    int sv[2];
    char err[128];
    struct tg_http_limits lim = {.head_timeout_s = 1};
    e->base = event_base_new();
    assert_non_null(e->base);
    assert_int_equal(
        tg_http_server_start(e->base, NULL, 0, &lim, handler, NULL, &e->srv, err, sizeof(err)), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(tg_http_server_adopt(e->srv, sv[0]), 0);
    e->client = sv[1];
}

static void unserve(struct srv_env *e)
{
    tg_http_server_free(e->srv);
    event_base_free(e->base);
    close(e->client);
}

/* Run the server's loop for ms milliseconds. */
static void pump(struct srv_env *e, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(e->base, &tv);
    event_base_dispatch(e->base);
}

static double now_s(void)
{
    return (double)tg_clock_mono_ns() / 1e9;
}

/* Read what the server sent so far into buf (NUL-terminated); -1 on EOF. */
static ssize_t take(int fd, char *buf, size_t len, size_t *used)
{
    for (;;) {
        ssize_t n = recv(fd, buf + *used, len - 1 - *used, MSG_DONTWAIT);
        if (n == 0)
            return -1;
        if (n < 0)
            return 0;
        *used += (size_t)n;
        buf[*used] = '\0';
    }
}

static void test_head_deadline(void **state)
{
    (void)state;
    struct srv_env e;
    serve(&e);
    char buf[4096];
    size_t used = 0;
    double start = now_s();
    const char *line = "GET / HTTP/1.1\r\nHost: x\r\n";
    assert_int_equal(send(e.client, line, strlen(line), 0), (ssize_t)strlen(line));
    bool eof = false;
    int i = 0;
    while (!eof && now_s() - start < 3) {
        pump(&e, 200);
        char h[32];
        int hl = snprintf(h, sizeof(h), "X-%d: %d\r\n", i, i);
        i++;
        send(e.client, h, (size_t)hl, MSG_NOSIGNAL | MSG_DONTWAIT);
        eof = take(e.client, buf, sizeof(buf), &used) < 0;
    }
    double cut = now_s() - start;
    assert_true(eof);
    assert_true(cut >= 0.9 && cut < 1.8);
    assert_true(tg_str_has_prefix(buf, "HTTP/1.1 408 "));
    assert_non_null(strstr(buf, "\"code\":\"request_timeout\""));
    /* The client keeps writing into the linger: it ends within 2 s all the same. */
    bool reset = false;
    while (!reset && now_s() - start < cut + 3.5) {
        pump(&e, 200);
        reset = send(e.client, "X: y\r\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EPIPE;
    }
    assert_true(reset);
    assert_int_equal(tg_http_inflight(e.srv), 0);
    unserve(&e);
}

static void test_silent_connection_closed(void **state)
{
    (void)state;
    struct srv_env e;
    serve(&e);
    char buf[256];
    size_t used = 0;
    double start = now_s();
    bool eof = false;
    while (!eof && now_s() - start < 3) {
        pump(&e, 100);
        eof = take(e.client, buf, sizeof(buf), &used) < 0;
    }
    assert_true(eof);
    assert_int_equal(used, 0); /* nothing asked, nothing answered */
    assert_true(now_s() - start < 1.8);
    unserve(&e);
}

static void test_keepalive_idle_not_cut(void **state)
{
    (void)state;
    struct srv_env e;
    serve(&e);
    char buf[4096];
    size_t used = 0;
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(send(e.client, req, strlen(req), 0), (ssize_t)strlen(req));
    pump(&e, 100);
    assert_int_equal(take(e.client, buf, sizeof(buf), &used), 0);
    assert_true(tg_str_has_prefix(buf, "HTTP/1.1 200 "));
    /* Idle between requests longer than the head deadline: the idle timeout governs. */
    pump(&e, 1500);
    used = 0;
    assert_int_equal(send(e.client, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    pump(&e, 100);
    assert_int_equal(take(e.client, buf, sizeof(buf), &used), 0);
    assert_true(tg_str_has_prefix(buf, "HTTP/1.1 200 "));
    unserve(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_accessors),
        cmocka_unit_test(test_head_deadline),
        cmocka_unit_test(test_silent_connection_closed),
        cmocka_unit_test(test_keepalive_idle_not_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
