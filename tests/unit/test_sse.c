/*
 * test_sse.c - the server-sent events reader against the WHATWG rules:
 * every line ending, comments, fields with and without the space,
 * multi-line data, a stream fed one byte at a time, limits, and the end of
 * a stream without its last blank line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/sse.h"

#include <string.h>

/* The events seen, as "type|data|id;" for comparison. */
struct seen {
    struct tg_buf log;
    int eof_events;
};

static void on_event(const struct tg_sse_event *ev, void *arg)
{
    struct seen *s = arg;
    assert_int_equal(ev->data[ev->len], '\0');
    tg_buf_printf(&s->log, "%s|%.*s|%s;", ev->type, (int)ev->len, ev->data, ev->id);
    s->eof_events += ev->at_eof;
}

/* Feed text in pieces of step bytes (0: all at once), then finish. */
static void run(const char *text, size_t step, struct seen *out)
{
    struct tg_sse r;
    size_t n = strlen(text);
    tg_sse_init(&r, 1 << 16);
    tg_buf_init(&out->log, TG_BUF_UNLIMITED);
    out->eof_events = 0;
    if (!step)
        step = n ? n : 1;
    for (size_t i = 0; i < n; i += step)
        assert_int_equal(tg_sse_feed(&r, text + i, TG_MIN(step, n - i), on_event, out), TG_OK);
    assert_int_equal(tg_sse_finish(&r, on_event, out), TG_OK);
    tg_sse_free(&r);
}

static void expect(const char *text, const char *want, int eof_events)
{
    for (size_t step = 0; step <= 3; step++) {
        struct seen s;
        run(text, step, &s);
        if (strcmp(s.log.data ? s.log.data : "", want) != 0)
            fail_msg("step %zu: got '%s', want '%s'", step, s.log.data, want);
        assert_int_equal(s.eof_events, eof_events);
        tg_buf_free(&s.log);
    }
}

static void test_line_ends_and_spaces(void **state)
{
    (void)state;
    expect("data: a\n\ndata:b\n\n", "|a|;|b|;", 0);
    expect("data: a\r\n\r\ndata:  b\r\rdata: c\n\r\n", "|a|;| b|;|c|;", 0);
    expect("data: x\r", "|x|;", 1); /* a lone CR ends the line; the event ends with the stream */
    expect("\xEF\xBB\xBF" "data: bom\n\n", "|bom|;", 0);
}

static void test_fields(void **state)
{
    (void)state;
    /* comments and pings, an event type, an id kept for later events, retry */
    expect(": keep-alive\n\n:ping\nevent: error\nid: 7\ndata: {\"e\":1}\n\ndata: n\n\n",
           "error|{\"e\":1}|7;|n|7;", 0);
    /* multi-line data joins with LF; a field without a colon is a name with no value */
    expect("data: {\"a\":\ndata: 1}\n\ndata\n\n", "|{\"a\":\n1}|;||;", 0);
    /* unknown fields and a blank line with no data dispatch nothing */
    expect("foo: bar\n\n\n\nevent: x\n\n", "", 0);
    /* a final event without its blank line is still read, flagged */
    expect("data: 1\n\ndata: 2\n", "|1|;|2|;", 1);
    expect("data: [DONE]", "|[DONE]|;", 1);

    struct tg_sse r;
    struct seen s = {0};
    tg_buf_init(&s.log, TG_BUF_UNLIMITED);
    tg_sse_init(&r, 64);
    const char *t = "retry: 1500\nretry: x1\n";
    assert_int_equal(tg_sse_feed(&r, t, strlen(t), on_event, &s), TG_OK);
    assert_int_equal(r.retry_ms, 1500);
    tg_sse_free(&r);
    tg_buf_free(&s.log);
}

static void test_limits(void **state)
{
    (void)state;
    struct tg_sse r;
    struct seen s = {0};
    char big[100];
    memset(big, 'x', sizeof(big));
    tg_buf_init(&s.log, TG_BUF_UNLIMITED);
    tg_sse_init(&r, 64);
    /* a line longer than the limit, split across pieces */
    assert_int_equal(tg_sse_feed(&r, "data: ", 6, on_event, &s), TG_OK);
    assert_int_equal(tg_sse_feed(&r, big, sizeof(big), on_event, &s), TG_E_TOOBIG);
    tg_sse_free(&r);
    /* data that grows past the limit over many short lines */
    tg_sse_init(&r, 64);
    int rc = TG_OK;
    for (int i = 0; i < 40 && !rc; i++)
        rc = tg_sse_feed(&r, "data: 0123\n", 11, on_event, &s);
    assert_int_equal(rc, TG_E_TOOBIG);
    assert_int_equal(s.log.len, 0);
    tg_sse_free(&r);
    tg_buf_free(&s.log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_ends_and_spaces),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
