/*
 * test_http_events.c - live event streams (src/api/events.c) on a real
 * server over socketpairs: a console that reads gets every event, and one
 * that stops reading is cut once its unsent output passes the cap, so a
 * stalled page cannot make the gateway hold every event for it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/api.h"
#include "pipeline/pipeline.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* events.c's cap on a subscriber's unsent output. */
#define CAP (1024 * 1024)
#define EVENTS 30000 /* about 3 MiB of events */

static void handler(struct tg_http_req *req, void *arg)
{
    tg_events_subscribe(arg, req, NULL);
}

/* A console on a socketpair: our end, with a small kernel buffer. */
static int console(struct tg_http_server *srv)
{
    int sv[2];
    int small = 16384;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    assert_int_equal(tg_http_server_adopt(srv, sv[0]), 0);
    static const char req[] = "GET /v1/reviews/events HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(send(sv[1], req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
    return sv[1];
}

/* Our end of a console's stream and what came over it. */
struct stream {
    int fd;
    size_t bytes, events; /* events: blank lines, one ends each event and comment */
    char last;            /* the last byte read, for a blank line split across reads */
    bool eof;
};

/* Read what is there into s's counts. */
static void drain(struct stream *s)
{
    char buf[65536];
    while (!s->eof) {
        ssize_t n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0) {
            s->eof = n == 0;
            return;
        }
        s->bytes += (size_t)n;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n' && s->last == '\n')
                s->events++;
            s->last = buf[i];
        }
    }
}

static void test_stalled_console_is_cut(void **state)
{
    (void)state;
    char err[128];
    struct event_base *base = event_base_new();
    struct tg_pipeline p = {.base = base};
    struct tg_api api = {.p = &p};
    struct tg_http_server *srv = NULL;
    assert_non_null(base);
    assert_int_equal(tg_events_start(&api), 0);
    assert_int_equal(
        tg_http_server_start(base, NULL, 0, NULL, handler, &api, &srv, err, sizeof(err)), 0);
    struct stream stalled = {.fd = console(srv)}, reader = {.fd = console(srv)};
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_loop(base, EVLOOP_NONBLOCK);

    for (int i = 0; i < EVENTS; i++) {
        tg_api_review_event(&api, "rev_0123456789abcdef", "created", NULL);
        if (i % 50 == 0) {
            event_base_loop(base, EVLOOP_NONBLOCK);
            drain(&reader);
        }
    }
    for (int i = 0; i < 200; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        drain(&reader);
        usleep(1000);
    }
    /* Only now does the stalled console read: it finds its stream cut. */
    for (int i = 0; i < 2000 && !stalled.eof; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        drain(&stalled);
        usleep(1000);
    }
    print_message("stalled console: %zu bytes, then %s; reader: %zu events\n", stalled.bytes,
                  stalled.eof ? "cut" : "still open", reader.events);
    assert_true(stalled.eof);
    assert_true(stalled.bytes < CAP + 256 * 1024);
    assert_true(stalled.events < EVENTS);
    assert_false(reader.eof);
    assert_true(reader.events >= EVENTS); /* every event, plus the greeting */

    tg_events_stop(&api);
    event_base_loop(base, EVLOOP_NONBLOCK);
    tg_http_server_free(srv);
    event_base_free(base);
    close(stalled.fd);
    close(reader.fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_console_is_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
