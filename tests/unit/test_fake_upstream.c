/*
 * test_fake_upstream.c - tests for the fake OpenAI-compatible upstream
 * (tests/support/fake_upstream.c).
 *
 * The binary "$TG_BINARY_DIR/fake-upstream" runs as a child process; each
 * test resets it over /_control/reset and then talks to it with libcurl or,
 * where the exact bytes and connection matter (keep-alive, pipelining,
 * resets), with raw sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/core.h"

#define CHAT "/v1/chat/completions"
#define IO_TIMEOUT_MS 5000

struct child {
    pid_t pid;
    int port;
};

struct resp {
    CURLcode rc;
    long status;
    double secs;
    struct tg_buf head;
    struct tg_buf body;
};

/* ------------------------------------------------------------------ child process */

static int child_start(struct child *ch, const char *key)
{
    const char *dir = getenv("TG_BINARY_DIR");
    char path[4096], line[32];
    char *argv[6];
    struct pollfd pfd;
    int fds[2], argc = 0;
    ssize_t got = 0, n;
    int64_t port;

    snprintf(path, sizeof(path), "%s/fake-upstream", dir ? dir : "build");
    argv[argc++] = path;
    argv[argc++] = (char *)"--listen";
    argv[argc++] = (char *)"127.0.0.1:0";
    if (key) {
        argv[argc++] = (char *)"--require-key";
        argv[argc++] = (char *)key;
    }
    argv[argc] = NULL;
    if (pipe(fds))
        return -1;
    ch->pid = fork();
    if (ch->pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(path, argv);
        _exit(127);
    }
    close(fds[1]);
    pfd.fd = fds[0];
    pfd.events = POLLIN;
    while (got < (ssize_t)sizeof(line) - 1 && !memchr(line, '\n', (size_t)got)) {
        if (poll(&pfd, 1, 10000) != 1)
            break;
        n = read(fds[0], line + got, sizeof(line) - 1 - (size_t)got);
        if (n <= 0)
            break;
        got += n;
    }
    close(fds[0]);
    line[got] = '\0';
    if (got > 0 && line[got - 1] == '\n')
        line[got - 1] = '\0';
    if (ch->pid < 0 || tg_parse_i64(line, &port) || port <= 0 || port > 65535)
        return -1;
    ch->port = (int)port;
    return 0;
}

/* SIGTERM the child; return its exit status, or -1 when it did not exit cleanly. */
static int child_stop(struct child *ch)
{
    int status = 0;

    kill(ch->pid, SIGTERM);
    if (waitpid(ch->pid, &status, 0) != ch->pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* ------------------------------------------------------------------ libcurl */

static size_t collect_cb(char *p, size_t size, size_t n, void *ud)
{
    return tg_buf_append(ud, p, size * n) ? 0 : size * n;
}

static void resp_free(struct resp *r)
{
    tg_buf_free(&r->head);
    tg_buf_free(&r->body);
}

/* Prepare h for one request; the caller owns *hdrs (curl_slist_free_all). */
static void http_setup(CURL *h, const struct child *ch, const char *path, const char *body,
                       const char *auth, long timeout_ms, struct resp *r, struct curl_slist **hdrs)
{
    char url[256];

    memset(r, 0, sizeof(*r));
    tg_buf_init(&r->head, TG_BUF_UNLIMITED);
    tg_buf_init(&r->body, TG_BUF_UNLIMITED);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", ch->port, path);
    *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (auth)
        *hdrs = curl_slist_append(*hdrs, auth);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, collect_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r->head);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
}

static void http_finish(CURL *h, struct resp *r)
{
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &r->secs);
}

/* One request on handle h (NULL: a fresh connection); body NULL means GET. */
static void http_on(CURL *h, const struct child *ch, const char *path, const char *body,
                    const char *auth, long timeout_ms, struct resp *r)
{
    CURL *own = h ? NULL : curl_easy_init();
    struct curl_slist *hdrs = NULL;

    if (!h)
        h = own;
    assert_non_null(h);
    http_setup(h, ch, path, body, auth, timeout_ms, r, &hdrs);
    r->rc = curl_easy_perform(h);
    http_finish(h, r);
    curl_slist_free_all(hdrs);
    if (own)
        curl_easy_cleanup(own);
}

static void http(const struct child *ch, const char *path, const char *body, struct resp *r)
{
    http_on(NULL, ch, path, body, NULL, IO_TIMEOUT_MS, r);
}

/* A request that must succeed at the HTTP level; returns the parsed body. */
static json_t *http_json(const struct child *ch, const char *path, const char *body,
                         long want_status)
{
    struct resp r;
    json_t *v;

    http(ch, path, body, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, want_status);
    v = json_loadb(r.body.data, r.body.len, 0, NULL);
    assert_non_null(v);
    resp_free(&r);
    return v;
}

static void control(const struct child *ch, const char *what, const char *body)
{
    char path[64];

    snprintf(path, sizeof(path), "/_control/%s", what);
    json_decref(http_json(ch, path, body, 200));
}

static json_t *stats(const struct child *ch)
{
    return http_json(ch, "/_control/stats", NULL, 200);
}

static json_int_t stat_int(const struct child *ch, const char *key)
{
    json_t *s = stats(ch);
    json_int_t v = json_integer_value(json_object_get(s, key));

    json_decref(s);
    return v;
}

static const char *reply_content(const json_t *reply)
{
    const json_t *choice = json_array_get(json_object_get(reply, "choices"), 0);

    return json_string_value(json_object_get(json_object_get(choice, "message"), "content"));
}

static bool head_has(const struct resp *r, const char *line)
{
    return r->head.data && strcasestr(r->head.data, line) != NULL;
}

/* ------------------------------------------------------------------ SSE */

struct events {
    size_t n;
    char *data[64]; /* the text after "data: " of each event */
};

static void events_parse(const struct tg_buf *body, struct events *ev)
{
    const char *p = body->data ? body->data : "";
    const char *end;

    memset(ev, 0, sizeof(*ev));
    while ((end = strstr(p, "\n\n")) && ev->n < TG_ARRAY_LEN(ev->data)) {
        assert_true(tg_str_has_prefix(p, "data: "));
        ev->data[ev->n++] = tg_strndup(p + 6, (size_t)(end - p - 6));
        p = end + 2;
    }
    assert_string_equal(p, "");
}

static void events_free(struct events *ev)
{
    size_t i;

    for (i = 0; i < ev->n; i++)
        tg_free(ev->data[i]);
}

static const json_t *event_delta(const json_t *chunk)
{
    return json_object_get(json_array_get(json_object_get(chunk, "choices"), 0), "delta");
}

/* Check the role event and content events [1, last); return their text and count. */
static size_t events_content(const struct events *ev, size_t last, struct tg_buf *text)
{
    size_t i;
    json_t *chunk;

    assert_true(ev->n >= 1);
    chunk = json_loads(ev->data[0], 0, NULL);
    assert_non_null(chunk);
    assert_string_equal(json_string_value(json_object_get(event_delta(chunk), "role")),
                        "assistant");
    json_decref(chunk);
    for (i = 1; i < last; i++) {
        const char *piece;
        size_t chars = 0, k;

        chunk = json_loads(ev->data[i], 0, NULL);
        assert_non_null(chunk); /* a split UTF-8 character would not load */
        assert_string_equal(json_string_value(json_object_get(chunk, "object")),
                            "chat.completion.chunk");
        piece = json_string_value(json_object_get(event_delta(chunk), "content"));
        assert_non_null(piece);
        for (k = 0; piece[k]; k++)
            chars += ((unsigned char)piece[k] & 0xC0) != 0x80;
        assert_true(chars >= 1 && chars <= 8);
        assert_int_equal(tg_buf_puts(text, piece), TG_OK);
        json_decref(chunk);
    }
    return last > 0 ? last - 1 : 0;
}

static bool events_have_done(const struct events *ev)
{
    size_t i;

    for (i = 0; i < ev->n; i++)
        if (strcmp(ev->data[i], "[DONE]") == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------ raw sockets */

struct raw {
    int fd;
    struct tg_buf in;
};

static void raw_open(struct raw *s, const struct child *ch)
{
    struct sockaddr_in sa;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)ch->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    tg_buf_init(&s->in, TG_BUF_UNLIMITED);
}

static void raw_close(struct raw *s)
{
    close(s->fd);
    tg_buf_free(&s->in);
}

static void raw_send(struct raw *s, const char *text)
{
    size_t len = strlen(text);

    assert_int_equal(send(s->fd, text, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Read more bytes into s->in; returns the recv() result and leaves errno. */
static ssize_t raw_fill(struct raw *s, int timeout_ms)
{
    struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
    char buf[4096];
    ssize_t n;

    if (poll(&pfd, 1, timeout_ms) != 1) {
        errno = ETIMEDOUT;
        return -1;
    }
    n = recv(s->fd, buf, sizeof(buf), 0);
    if (n > 0)
        assert_int_equal(tg_buf_append(&s->in, buf, (size_t)n), TG_OK);
    return n;
}

/* Read one Content-Length framed response; return its status, body in *body. */
static int raw_response(struct raw *s, struct tg_buf *body)
{
    char *end;
    int64_t status = 0, len = -1;
    const char *cl;
    size_t head_len;

    while (!(s->in.data && (end = strstr(s->in.data, "\r\n\r\n"))))
        assert_true(raw_fill(s, IO_TIMEOUT_MS) > 0);
    head_len = (size_t)(end - s->in.data) + 4;
    cl = strcasestr(s->in.data, "\r\nContent-Length:");
    assert_true(cl && cl < end);
    *end = '\0';
    assert_true(sscanf(s->in.data, "HTTP/1.1 %" SCNd64, &status) == 1);
    assert_true(sscanf(cl + 17, " %" SCNd64, &len) == 1);
    while (s->in.len < head_len + (size_t)len)
        assert_true(raw_fill(s, IO_TIMEOUT_MS) > 0);
    tg_buf_reset(body);
    assert_int_equal(tg_buf_append(body, s->in.data + head_len, (size_t)len), TG_OK);
    memmove(s->in.data, s->in.data + head_len + len, s->in.len - head_len - (size_t)len);
    s->in.len -= head_len + (size_t)len;
    s->in.data[s->in.len] = '\0';
    return (int)status;
}

/* Read until the server ends the connection; return errno of the end (0 for FIN). */
static int raw_until_end(struct raw *s)
{
    ssize_t n;

    do {
        n = raw_fill(s, IO_TIMEOUT_MS);
    } while (n > 0);
    return n == 0 ? 0 : errno;
}

static char *chat_request(const char *model, const char *text, const char *extra_headers)
{
    struct tg_buf b;
    char body[512];

    snprintf(body, sizeof(body),
             "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", model,
             text);
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    assert_int_equal(tg_buf_printf(&b,
                                   "POST " CHAT " HTTP/1.1\r\nHost: test\r\n%sContent-Type: "
                                   "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                                   extra_headers, strlen(body), body),
                     TG_OK);
    return tg_buf_steal(&b, NULL);
}

/* ------------------------------------------------------------------ fixtures */

static int group_setup(void **state)
{
    struct child *ch = tg_calloc(1, sizeof(*ch));

    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!ch || child_start(ch, NULL)) {
        tg_free(ch);
        return -1;
    }
    *state = ch;
    return 0;
}

/* Fails the group unless the upstream exits with status 0 on SIGTERM. */
static int group_teardown(void **state)
{
    int rc = child_stop(*state);

    tg_free(*state);
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
}

static int test_setup(void **state)
{
    control(*state, "reset", "{}");
    return 0;
}

/* ------------------------------------------------------------------ tests */

static void test_nonstream(void **state)
{
    const struct child *ch = *state;
    json_t *v = http_json(ch, CHAT,
                          "{\"model\":\"m-1\",\"messages\":[{\"role\":\"system\",\"content\":"
                          "\"be nice "
                          "\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c\"},{\"role\":\"user\","
                          "\"content\":\"first\"},{\"role\":"
                          "\"assistant\",\"content\":\"ok\"},{\"role\":\"user\",\"content\":"
                          "[{\"type\":\"text\",\"text\":\"hello\"}]},{\"role\":\"assistant\","
                          "\"content\":\"\"}]}",
                          200);
    const json_t *choice = json_array_get(json_object_get(v, "choices"), 0);
    const json_t *usage = json_object_get(v, "usage");

    assert_string_equal(tg_json_str(v, "id", ""), "chatcmpl-fake-1");
    assert_string_equal(tg_json_str(v, "object", ""), "chat.completion");
    assert_string_equal(tg_json_str(v, "model", ""), "m-1");
    assert_true(tg_json_int(v, "created", 0) > 1600000000);
    assert_string_equal(tg_json_str(json_object_get(choice, "message"), "role", ""), "assistant");
    assert_string_equal(reply_content(v), "fake answer to: hello");
    assert_string_equal(tg_json_str(choice, "finish_reason", ""), "stop");
    /* prompt 12 + 5 + 2 + 5 = 24 characters (32 bytes) -> 6; reply 21 -> 6 */
    assert_int_equal(tg_json_int(usage, "prompt_tokens", 0), 6);
    assert_int_equal(tg_json_int(usage, "completion_tokens", 0), 6);
    assert_int_equal(tg_json_int(usage, "total_tokens", 0), 12);
    json_decref(v);
}

static void test_stream(void **state)
{
    const struct child *ch = *state;
    const char *text = "h\xc3\xa9llo w\xc3\xb6rld \xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95"
                       "\x8c and a longer tail to split";
    char body[512], want[512];
    struct resp r;
    struct events ev;
    struct tg_buf got;
    json_t *fin, *usage;
    size_t pieces;

    snprintf(body, sizeof(body),
             "{\"model\":\"s-1\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
             "\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             text);
    snprintf(want, sizeof(want), "fake answer to: %s", text);
    http(ch, CHAT, body, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_true(head_has(&r, "Content-Type: text/event-stream"));
    events_parse(&r.body, &ev);
    assert_true(ev.n >= 5);
    tg_buf_init(&got, TG_BUF_UNLIMITED);
    pieces = events_content(&ev, ev.n - 3, &got);
    assert_string_equal(got.data, want);
    assert_true(pieces >= 6); /* about 8 characters a piece */
    fin = json_loads(ev.data[ev.n - 3], 0, NULL);
    assert_non_null(fin);
    assert_int_equal(json_object_size(event_delta(fin)), 0);
    assert_string_equal(
        tg_json_str(json_array_get(json_object_get(fin, "choices"), 0), "finish_reason", ""),
        "stop");
    usage = json_loads(ev.data[ev.n - 2], 0, NULL);
    assert_non_null(usage);
    assert_int_equal(json_array_size(json_object_get(usage, "choices")), 0);
    assert_true(tg_json_int(json_object_get(usage, "usage"), "total_tokens", 0) > 0);
    assert_string_equal(ev.data[ev.n - 1], "[DONE]");
    assert_int_equal(stat_int(ch, "completions"), 1);
    json_decref(fin);
    json_decref(usage);
    tg_buf_free(&got);
    events_free(&ev);
    resp_free(&r);
}

static void test_models(void **state)
{
    json_t *v = http_json(*state, "/v1/models", NULL, 200);
    const json_t *m = json_array_get(json_object_get(v, "data"), 0);

    assert_string_equal(tg_json_str(v, "object", ""), "list");
    assert_string_equal(tg_json_str(m, "id", ""), "fake-model");
    assert_string_equal(tg_json_str(m, "object", ""), "model");
    json_decref(v);
}

static void test_script_order(void **state)
{
    const struct child *ch = *state;
    const char *req = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}";
    json_t *v;
    const json_t *err;

    control(ch, "script", "{\"steps\":[{\"status\":503},{\"content\":\"second\"}]}");
    v = http_json(ch, CHAT, req, 503);
    err = json_object_get(v, "error");
    assert_non_null(tg_json_str(err, "message", NULL));
    assert_string_equal(tg_json_str(err, "type", ""), "server_error");
    assert_non_null(json_object_get(err, "code"));
    json_decref(v);
    v = http_json(ch, CHAT, req, 200);
    assert_string_equal(reply_content(v), "second");
    json_decref(v);
    v = http_json(ch, CHAT, req, 200);
    assert_string_equal(reply_content(v), "fake answer to: q");
    json_decref(v);
}

static void test_default_step(void **state)
{
    const struct child *ch = *state;
    const char *req = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}";
    json_t *v;

    control(ch, "default", "{\"content\":\"always\"}");
    control(ch, "script", "{\"steps\":[{\"status\":500}]}");
    json_decref(http_json(ch, CHAT, req, 500));
    v = http_json(ch, CHAT, req, 200);
    assert_string_equal(reply_content(v), "always");
    json_decref(v);
    v = http_json(ch, CHAT, req, 200);
    assert_string_equal(reply_content(v), "always");
    json_decref(v);
    control(ch, "reset", "{}");
    v = http_json(ch, CHAT, req, 200);
    assert_string_equal(reply_content(v), "fake answer to: q");
    json_decref(v);
}

static void test_delay(void **state)
{
    const struct child *ch = *state;
    int64_t start;
    json_t *v;

    control(ch, "script", "{\"steps\":[{\"delay_ms\":300}]}");
    start = tg_clock_mono_ns();
    v = http_json(ch, CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"slow\"}]}", 200);
    assert_true(tg_clock_mono_ns() - start >= 300 * 1000000LL);
    assert_string_equal(reply_content(v), "fake answer to: slow");
    json_decref(v);
}

static void wait_open_connections(const struct child *ch, json_int_t want)
{
    int i;

    for (i = 0; i < 100 && stat_int(ch, "open_connections") != want; i++)
        usleep(20000);
    assert_int_equal(stat_int(ch, "open_connections"), want);
}

static void test_hang(void **state)
{
    const struct child *ch = *state;
    struct resp r;

    control(ch, "script", "{\"steps\":[{\"hang\":true}]}");
    http_on(NULL, ch, CHAT, "{\"messages\":[]}", NULL, 300, &r);
    assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(r.head.len, 0);
    resp_free(&r);
    wait_open_connections(ch, 0); /* the server let go once the client did */
}

static void test_reset(void **state)
{
    const struct child *ch = *state;
    char *req = chat_request("m", "boom", "");
    struct raw s;
    struct resp r;

    control(ch, "script", "{\"steps\":[{\"reset\":true},{\"reset\":true}]}");
    raw_open(&s, ch);
    raw_send(&s, req);
    assert_int_equal(raw_until_end(&s), ECONNRESET);
    assert_int_equal(s.in.len, 0);
    raw_close(&s);
    http(ch, CHAT, "{\"stream\":true,\"messages\":[]}", &r);
    assert_true(r.rc == CURLE_RECV_ERROR || r.rc == CURLE_GOT_NOTHING);
    assert_int_equal(r.head.len, 0);
    resp_free(&r);
    tg_free(req);
}

/* A streamed request with a 5-piece reply under the given step. */
static void stream_with(const struct child *ch, const char *step, long timeout_ms, struct resp *r,
                        struct events *ev)
{
    char script[256];

    snprintf(script, sizeof(script), "{\"steps\":[%s]}", step);
    control(ch, "script", script);
    http_on(
        NULL, ch, CHAT,
        "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        NULL, timeout_ms, r);
    events_parse(&r->body, ev);
}

#define ABC40 "\"content\":\"abcdefghijklmnopqrstuvwxyz0123456789ABCD\""

static void test_cut_after(void **state)
{
    struct resp r;
    struct events ev;
    struct tg_buf got;

    stream_with(*state, "{\"cut_after\":2," ABC40 "}", IO_TIMEOUT_MS, &r, &ev);
    assert_int_equal(r.rc, CURLE_PARTIAL_FILE);
    assert_int_equal(r.status, 200);
    assert_int_equal(ev.n, 3);
    tg_buf_init(&got, TG_BUF_UNLIMITED);
    assert_int_equal(events_content(&ev, ev.n, &got), 2);
    assert_string_equal(got.data, "abcdefghijklmnop");
    assert_false(events_have_done(&ev));
    tg_buf_free(&got);
    events_free(&ev);
    resp_free(&r);
}

static void test_stall_after(void **state)
{
    const struct child *ch = *state;
    struct resp r;
    struct events ev;
    struct tg_buf got;

    stream_with(ch, "{\"stall_after\":1," ABC40 "}", 400, &r, &ev);
    assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(ev.n, 2);
    tg_buf_init(&got, TG_BUF_UNLIMITED);
    assert_int_equal(events_content(&ev, ev.n, &got), 1);
    assert_string_equal(got.data, "abcdefgh");
    assert_false(events_have_done(&ev));
    wait_open_connections(ch, 0);
    tg_buf_free(&got);
    events_free(&ev);
    resp_free(&r);
}

static void test_malformed_at(void **state)
{
    struct resp r;
    struct events ev;
    size_t i;

    stream_with(*state, "{\"malformed_at\":1," ABC40 "}", IO_TIMEOUT_MS, &r, &ev);
    assert_int_equal(r.rc, CURLE_OK);
    /* role, 5 content events (the 2nd broken), finish, [DONE] */
    assert_int_equal(ev.n, 8);
    assert_string_equal(ev.data[2], "{not json");
    for (i = 0; i < ev.n - 1; i++) {
        json_t *v = json_loads(ev.data[i], 0, NULL);

        assert_true(i == 2 ? v == NULL : v != NULL);
        json_decref(v);
    }
    assert_string_equal(ev.data[ev.n - 1], "[DONE]");
    events_free(&ev);
    resp_free(&r);
}

static void test_reset_after(void **state)
{
    struct resp r;
    struct events ev;
    struct tg_buf got;

    stream_with(*state, "{\"reset_after\":2," ABC40 "}", IO_TIMEOUT_MS, &r, &ev);
    assert_int_equal(r.rc, CURLE_RECV_ERROR);
    assert_int_equal(r.status, 200);
    /* The chunks reach the socket before the reset does. */
    assert_int_equal(ev.n, 3);
    tg_buf_init(&got, TG_BUF_UNLIMITED);
    assert_int_equal(events_content(&ev, ev.n, &got), 2);
    assert_false(events_have_done(&ev));
    tg_buf_free(&got);
    events_free(&ev);
    resp_free(&r);
}

static void test_stream_timing(void **state)
{
    struct resp r;
    struct events ev;
    struct tg_buf got;

    /* 300 ms to the first chunk, then 50 ms before each of 4 more chunks and the finish */
    stream_with(*state, "{\"ttft_ms\":300,\"chunk_delay_ms\":50," ABC40 "}", IO_TIMEOUT_MS, &r,
                &ev);
    assert_int_equal(r.rc, CURLE_OK);
    assert_true(r.secs >= 0.3 + 5 * 0.05);
    tg_buf_init(&got, TG_BUF_UNLIMITED);
    assert_int_equal(events_content(&ev, ev.n - 2, &got), 5);
    assert_true(events_have_done(&ev));
    tg_buf_free(&got);
    events_free(&ev);
    resp_free(&r);
}

static void test_retry_after(void **state)
{
    const struct child *ch = *state;
    struct resp r;
    json_t *v;

    control(ch, "script", "{\"steps\":[{\"status\":429,\"retry_after\":7}]}");
    http(ch, CHAT, "{\"messages\":[]}", &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 429);
    assert_true(head_has(&r, "\r\nRetry-After: 7\r\n"));
    v = json_loadb(r.body.data, r.body.len, 0, NULL);
    assert_string_equal(tg_json_str(json_object_get(v, "error"), "type", ""), "rate_limit_error");
    assert_string_equal(tg_json_str(json_object_get(v, "error"), "code", ""),
                        "rate_limit_exceeded");
    json_decref(v);
    resp_free(&r);
}

/* A string retry_after is sent as it is (an HTTP date); one that would
 * break the header line, or a negative number, is refused. */
static void test_retry_after_text(void **state)
{
    const struct child *ch = *state;
    struct resp r;

    control(ch, "script",
            "{\"steps\":[{\"status\":503,\"retry_after\":\"Wed, 21 Oct 2026 07:28:00 GMT\"},"
            "{\"status\":429,\"retry_after\":0}]}");
    http(ch, CHAT, "{\"messages\":[]}", &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 503);
    assert_true(head_has(&r, "\r\nRetry-After: Wed, 21 Oct 2026 07:28:00 GMT\r\n"));
    resp_free(&r);
    http(ch, CHAT, "{\"messages\":[]}", &r);
    assert_int_equal(r.status, 429);
    assert_true(head_has(&r, "\r\nRetry-After: 0\r\n"));
    resp_free(&r);
    http(ch, CHAT, "{\"messages\":[]}", &r);
    assert_int_equal(r.status, 200);
    assert_false(head_has(&r, "Retry-After"));
    resp_free(&r);
    json_decref(http_json(ch, "/_control/script",
                          "{\"steps\":[{\"status\":429,\"retry_after\":\"1\\r\\nX-Evil: 1\"}]}",
                          400));
    json_decref(http_json(ch, "/_control/script",
                          "{\"steps\":[{\"status\":429,\"retry_after\":-1}]}", 400));
    json_decref(http_json(ch, "/_control/script",
                          "{\"steps\":[{\"status\":429,\"retry_after\":1.5}]}", 400));
    assert_int_equal(stat_int(ch, "queued"), 0);
}

static void test_stats_keepalive(void **state)
{
    const struct child *ch = *state;
    char *first = chat_request("one", "a", "");
    char *second = chat_request("two", "b", "Authorization: Bearer sk-x\r\nX-Test: Yes\r\n");
    struct tg_buf body;
    struct raw s;
    json_t *st;

    tg_buf_init(&body, TG_BUF_UNLIMITED);
    raw_open(&s, ch);
    raw_send(&s, first);
    assert_int_equal(raw_response(&s, &body), 200);
    assert_non_null(strstr(body.data, "fake answer to: a"));
    raw_send(&s, second);
    assert_int_equal(raw_response(&s, &body), 200);
    assert_non_null(strstr(body.data, "fake answer to: b"));
    st = stats(ch);
    assert_int_equal(tg_json_int(st, "requests", -1), 2);
    assert_int_equal(tg_json_int(st, "completions", -1), 2);
    assert_int_equal(tg_json_int(st, "total_connections", -1), 1);
    assert_int_equal(tg_json_int(st, "open_connections", -1), 1);
    assert_string_equal(tg_json_str(json_object_get(st, "last_request"), "model", ""), "two");
    assert_string_equal(tg_json_str(json_object_get(st, "last_headers"), "x-test", ""), "Yes");
    assert_string_equal(tg_json_str(json_object_get(st, "last_headers"), "authorization", ""),
                        "Bearer sk-x");
    json_decref(st);
    raw_close(&s);
    wait_open_connections(ch, 0);

    /* Both requests written at once (pipelined): two replies, in order, one connection. */
    control(ch, "reset", "{}");
    raw_open(&s, ch);
    tg_free(first);
    first = chat_request("one", "p1", "");
    tg_free(second);
    second = chat_request("two", "p2", "");
    raw_send(&s, first);
    raw_send(&s, second);
    assert_int_equal(raw_response(&s, &body), 200);
    assert_non_null(strstr(body.data, "fake answer to: p1"));
    assert_int_equal(raw_response(&s, &body), 200);
    assert_non_null(strstr(body.data, "fake answer to: p2"));
    assert_int_equal(stat_int(ch, "total_connections"), 1);
    assert_int_equal(stat_int(ch, "requests"), 2);
    raw_close(&s);
    tg_buf_free(&body);
    tg_free(first);
    tg_free(second);
}

static void test_curl_reuse(void **state)
{
    const struct child *ch = *state;
    CURL *h = curl_easy_init();
    struct resp r;
    int i;

    assert_non_null(h);
    for (i = 0; i < 3; i++) {
        http_on(h, ch, CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"r\"}]}", NULL,
                IO_TIMEOUT_MS, &r);
        assert_int_equal(r.rc, CURLE_OK);
        assert_int_equal(r.status, 200);
        resp_free(&r);
    }
    curl_easy_cleanup(h);
    assert_int_equal(stat_int(ch, "total_connections"), 1);
    assert_int_equal(stat_int(ch, "completions"), 3);
}

static void test_bad_requests(void **state)
{
    const struct child *ch = *state;
    json_t *v, *st;

    v = http_json(ch, CHAT, "{\"model\": \"m\", \"messages\": [", 400);
    assert_string_equal(tg_json_str(json_object_get(v, "error"), "type", ""),
                        "invalid_request_error");
    assert_non_null(tg_json_str(json_object_get(v, "error"), "message", NULL));
    json_decref(v);
    st = stats(ch);
    assert_int_equal(tg_json_int(st, "requests", -1), 1);
    assert_int_equal(tg_json_int(st, "completions", -1), 0);
    assert_true(json_is_string(json_object_get(st, "last_request")));
    json_decref(st);
    json_decref(http_json(ch, CHAT, "{\"model\":\"m\"}", 400));
    json_decref(http_json(ch, "/v1/nothing", NULL, 404));
    json_decref(http_json(ch, "/_control/script", "{\"steps\":[{\"stauts\":500}]}", 400));
    json_decref(http_json(ch, "/_control/script", "{\"steps\":[{\"status\":\"x\"}]}", 400));
    json_decref(http_json(ch, "/_control/default", "[1]", 400));
    assert_int_equal(stat_int(ch, "queued"), 0);
}

static void test_chunked_and_expect(void **state)
{
    const struct child *ch = *state;
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"chunky\"}]}";
    char req[512];
    struct tg_buf out;
    struct raw s;
    int n;

    n = snprintf(req, sizeof(req),
                 "POST " CHAT " HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "10\r\n%.16s\r\n%zx;ext=1\r\n%s\r\n0\r\n\r\n",
                 body, strlen(body) - 16, body + 16);
    assert_true(n > 0 && (size_t)n < sizeof(req));
    tg_buf_init(&out, TG_BUF_UNLIMITED);
    raw_open(&s, ch);
    raw_send(&s, req);
    assert_int_equal(raw_response(&s, &out), 200);
    assert_non_null(strstr(out.data, "fake answer to: chunky"));

    snprintf(req, sizeof(req),
             "POST " CHAT " HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
             "Content-Length: %zu\r\n\r\n",
             strlen(body));
    raw_send(&s, req);
    while (s.in.len < 25)
        assert_true(raw_fill(&s, IO_TIMEOUT_MS) > 0);
    assert_memory_equal(s.in.data, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    tg_buf_reset(&s.in);
    raw_send(&s, body);
    assert_int_equal(raw_response(&s, &out), 200);
    assert_non_null(strstr(out.data, "fake answer to: chunky"));
    raw_close(&s);
    tg_buf_free(&out);
}

static void test_concurrent_delays(void **state)
{
    enum { N = 40 };
    const struct child *ch = *state;
    CURLM *multi = curl_multi_init();
    CURL *h[N];
    struct resp r[N];
    struct curl_slist *hdrs[N];
    int i, running = 1;
    int64_t start;

    control(ch, "default", "{\"delay_ms\":300}");
    start = tg_clock_mono_ns();
    for (i = 0; i < N; i++) {
        h[i] = curl_easy_init();
        http_setup(h[i], ch, CHAT, "{\"messages\":[]}", NULL, IO_TIMEOUT_MS, &r[i], &hdrs[i]);
        curl_multi_add_handle(multi, h[i]);
    }
    while (running) {
        assert_int_equal(curl_multi_perform(multi, &running), CURLM_OK);
        if (running)
            curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    /* Run one after another they would take N * 300 ms. */
    assert_true(tg_clock_mono_ns() - start < 3000 * 1000000LL);
    for (i = 0; i < N; i++) {
        http_finish(h[i], &r[i]);
        assert_int_equal(r[i].status, 200);
        curl_multi_remove_handle(multi, h[i]);
        curl_easy_cleanup(h[i]);
        curl_slist_free_all(hdrs[i]);
        resp_free(&r[i]);
    }
    curl_multi_cleanup(multi);
    assert_int_equal(stat_int(ch, "completions"), N);
    assert_int_equal(stat_int(ch, "total_connections"), N);
}

static void test_require_key(void **state)
{
    struct child keyed;
    struct resp r;
    json_t *v;
    const char *req = "{\"messages\":[{\"role\":\"user\",\"content\":\"k\"}]}";

    (void)state;
    assert_int_equal(child_start(&keyed, "sk-secret"), 0);
    http_on(NULL, &keyed, CHAT, req, NULL, IO_TIMEOUT_MS, &r);
    assert_int_equal(r.status, 401);
    v = json_loadb(r.body.data, r.body.len, 0, NULL);
    assert_string_equal(tg_json_str(json_object_get(v, "error"), "code", ""), "invalid_api_key");
    json_decref(v);
    resp_free(&r);
    http_on(NULL, &keyed, CHAT, req, "Authorization: Bearer sk-wrong", IO_TIMEOUT_MS, &r);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    http_on(NULL, &keyed, "/v1/models", NULL, NULL, IO_TIMEOUT_MS, &r);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    http_on(NULL, &keyed, CHAT, req, "Authorization: Bearer sk-secret", IO_TIMEOUT_MS, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.data, "fake answer to: k"));
    resp_free(&r);
    assert_int_equal(stat_int(&keyed, "requests"), 3); /* control needs no key */
    assert_int_equal(child_stop(&keyed), 0);           /* SIGTERM: clean exit */
}

/* ------------------------------------------------------------------ dialects */

static const char *const all_dialects[] = {
    "compact", "spaced", "pretty",   "crlf",   "cr",      "comments", "nospace",
    "ascii",   "fields", "nodone",   "openai", "azure",   "vllm",     "llamacpp",
    "ollama",  "tgi",    "deepseek", "qwen",   "litellm",
};

/* One event as the WHATWG SSE parser dispatches it. */
struct sse_event {
    char *type; /* "message" unless an event: field said otherwise */
    char *data; /* data fields joined with "\n" */
};

struct sse {
    size_t n;
    size_t comments;
    struct sse_event ev[128];
};

/* Parse an SSE body per the WHATWG rules: lines end in CRLF, LF or CR; a
 * blank line dispatches; ':' lines are comments; one space after the colon
 * is dropped; data fields join with "\n"; an event without data is dropped. */
static void sse_parse(const struct tg_buf *body, struct sse *s)
{
    const char *p = body->data ? body->data : "", *end = p + body->len;
    struct tg_buf data, type;
    bool have_data = false;

    memset(s, 0, sizeof(*s));
    tg_buf_init(&data, TG_BUF_UNLIMITED);
    tg_buf_init(&type, TG_BUF_UNLIMITED);
    while (p < end) {
        const char *eol = p;
        const char *colon, *value;

        while (eol < end && *eol != '\n' && *eol != '\r')
            eol++;
        if (eol == p) {
            if (have_data && s->n < TG_ARRAY_LEN(s->ev)) {
                s->ev[s->n].data = tg_strndup(data.data ? data.data : "", data.len);
                s->ev[s->n].type = tg_strdup(type.len ? type.data : "message");
                s->n++;
            }
            tg_buf_reset(&data);
            tg_buf_reset(&type);
            have_data = false;
        } else if (*p == ':') {
            s->comments++;
        } else {
            colon = memchr(p, ':', (size_t)(eol - p));
            value = colon ? colon + 1 : eol;
            if (value < eol && *value == ' ')
                value++;
            if (colon && (size_t)(colon - p) == 4 && memcmp(p, "data", 4) == 0) {
                if (have_data)
                    assert_int_equal(tg_buf_append(&data, "\n", 1), TG_OK);
                assert_int_equal(tg_buf_append(&data, value, (size_t)(eol - value)), TG_OK);
                have_data = true;
            } else if (colon && (size_t)(colon - p) == 5 && memcmp(p, "event", 5) == 0) {
                tg_buf_reset(&type);
                assert_int_equal(tg_buf_append(&type, value, (size_t)(eol - value)), TG_OK);
            }
        }
        p = eol;
        if (p < end && *p == '\r')
            p++;
        else if (p < end)
            p++; /* the LF */
        if (p > eol && *eol == '\r' && p < end && *p == '\n')
            p++; /* CRLF */
    }
    tg_buf_free(&data);
    tg_buf_free(&type);
}

static void sse_free(struct sse *s)
{
    for (size_t i = 0; i < s->n; i++) {
        tg_free(s->ev[i].data);
        tg_free(s->ev[i].type);
    }
}

/* A stream reassembled the way a client must: every event JSON (or [DONE]),
 * content and reasoning concatenated, tool calls merged by index. */
struct replay {
    struct tg_buf content;
    struct tg_buf reasoning;
    json_t *calls; /* [{id, name, arguments}] by index */
    char finish[32];
    bool done;
    bool usage;
    size_t chunks;
    size_t logprob_chunks;
    bool reasoning_after_content;
};

static void replay_tool(struct replay *r, const json_t *tc)
{
    size_t idx = (size_t)tg_json_int(tc, "index", 0);
    const json_t *fn = json_object_get(tc, "function");
    const char *id = tg_json_str(tc, "id", "");
    const char *name = tg_json_str(fn, "name", NULL);
    const char *args = tg_json_str(fn, "arguments", "");
    json_t *call;

    while (json_array_size(r->calls) <= idx)
        json_array_append_new(r->calls,
                              json_pack("{s:s,s:s,s:s}", "id", "", "name", "", "arguments", ""));
    call = json_array_get(r->calls, idx);
    if (*id && !*tg_json_str(call, "id", ""))
        json_object_set_new(call, "id", json_string(id));
    if (name)
        json_object_set_new(call, "name", json_string(name));
    json_object_set_new(call, "arguments",
                        json_sprintf("%s%s", tg_json_str(call, "arguments", ""), args));
}

static void replay_event(struct replay *r, const char *data)
{
    json_error_t err;
    json_t *v, *choice, *delta;
    const json_t *tcs, *tc;
    const char *s;
    size_t i;

    if (strcmp(data, "[DONE]") == 0) {
        r->done = true;
        return;
    }
    v = json_loads(data, 0, &err);
    if (!v)
        fail_msg("event is not JSON (%s): %s", err.text, data);
    r->chunks++;
    if (json_is_object(json_object_get(v, "usage")))
        r->usage = true;
    choice = json_array_get(json_object_get(v, "choices"), 0);
    delta = json_object_get(choice, "delta");
    s = tg_json_str(delta, "content", NULL);
    if (s)
        assert_int_equal(tg_buf_puts(&r->content, s), TG_OK);
    s = tg_json_str(delta, "reasoning_content", tg_json_str(delta, "reasoning", NULL));
    if (s && *s) {
        r->reasoning_after_content |= r->content.len > 0;
        assert_int_equal(tg_buf_puts(&r->reasoning, s), TG_OK);
    }
    tcs = json_object_get(delta, "tool_calls");
    json_array_foreach(tcs, i, tc)
    {
        replay_tool(r, tc);
    }
    if (json_is_object(json_object_get(choice, "logprobs")))
        r->logprob_chunks++;
    s = tg_json_str(choice, "finish_reason", NULL);
    if (s)
        snprintf(r->finish, sizeof(r->finish), "%s", s);
    json_decref(v);
}

static void replay_free(struct replay *r)
{
    tg_buf_free(&r->content);
    tg_buf_free(&r->reasoning);
    json_decref(r->calls);
}

/* Run one chat request in dialect (set by header when by_header, else by
 * STEP with extra fields), return the raw body and the replay of it. */
static void dialect_turn(const struct child *ch, const char *dialect, bool by_header,
                         const char *step_extra, const char *req_extra, bool stream, struct resp *r,
                         struct replay *rp)
{
    char script[1024], body[512], hdr[64];
    struct sse s;

    if (by_header)
        snprintf(script, sizeof(script), "{\"steps\":[{%s}]}", step_extra ? step_extra : "");
    else
        snprintf(script, sizeof(script), "{\"steps\":[{\"dialect\":\"%s\"%s%s}]}", dialect,
                 step_extra ? "," : "", step_extra ? step_extra : "");
    control(ch, "script", script);
    snprintf(body, sizeof(body),
             "{\"model\":\"d-1\",\"stream\":%s,%s\"messages\":[{\"role\":\"user\",\"content\":"
             "\"h\xc3\xa9 <&> \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80 ok\"}]}",
             stream ? "true" : "false", req_extra ? req_extra : "");
    snprintf(hdr, sizeof(hdr), "X-Fake-Dialect: %s", dialect);
    http_on(NULL, ch, CHAT, body, by_header ? hdr : NULL, IO_TIMEOUT_MS, r);
    assert_int_equal(r->rc, CURLE_OK);
    assert_int_equal(r->status, 200);
    memset(rp, 0, sizeof(*rp));
    tg_buf_init(&rp->content, TG_BUF_UNLIMITED);
    tg_buf_init(&rp->reasoning, TG_BUF_UNLIMITED);
    rp->calls = json_array();
    if (!stream)
        return;
    sse_parse(&r->body, &s);
    assert_true(s.n >= 2);
    for (size_t i = 0; i < s.n; i++) {
        assert_string_equal(s.ev[i].type, "message");
        replay_event(rp, s.ev[i].data);
    }
    sse_free(&s);
}

#define DIALECT_ANSWER "fake answer to: h\xc3\xa9 <&> \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80 ok"

/* Every dialect streams valid JSON per event that reassembles to the same answer. */
static void test_dialect_streams(void **state)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(all_dialects); i++) {
        const char *d = all_dialects[i];
        struct resp r;
        struct replay rp;

        dialect_turn(*state, d, i % 2 == 0, NULL, "\"stream_options\":{\"include_usage\":true},",
                     true, &r, &rp);
        assert_true(head_has(&r, "Content-Type: text/event-stream"));
        assert_string_equal(rp.content.data, DIALECT_ANSWER);
        assert_string_equal(rp.finish, "stop");
        assert_true(rp.usage);
        assert_int_equal(rp.done, strcmp(d, "nodone") != 0);
        replay_free(&rp);
        resp_free(&r);
    }
}

/* Every dialect's non-stream body is one JSON object with the same answer. */
static void test_dialect_bodies(void **state)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(all_dialects); i++) {
        struct resp r;
        struct replay rp;
        json_t *v;

        dialect_turn(*state, all_dialects[i], i % 2 == 1, NULL, NULL, false, &r, &rp);
        v = json_loadb(r.body.data, r.body.len, 0, NULL);
        assert_non_null(v);
        assert_string_equal(reply_content(v), DIALECT_ANSWER);
        assert_string_equal(
            tg_json_str(json_array_get(json_object_get(v, "choices"), 0), "finish_reason", ""),
            "stop");
        assert_true(tg_json_int(json_object_get(v, "usage"), "total_tokens", 0) > 0);
        json_decref(v);
        replay_free(&rp);
        resp_free(&r);
    }
}

static bool body_has(const struct resp *r, const char *s)
{
    return r->body.data && strstr(r->body.data, s) != NULL;
}

/* The generic dialects each isolate one feature of the wire format. */
static void test_dialect_generic_features(void **state)
{
    const struct child *ch = *state;
    struct resp r;
    struct replay rp;
    const char *p;

    dialect_turn(ch, "spaced", true, NULL, NULL, true, &r, &rp);
    assert_true(body_has(&r, "\"id\": \"chatcmpl-fake-") && body_has(&r, "\", \"object\": "));
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "crlf", true, NULL, NULL, true, &r, &rp);
    for (p = r.body.data; (p = strchr(p, '\n')); p++)
        assert_true(p > r.body.data && p[-1] == '\r');
    assert_true(body_has(&r, "}\r\n\r\ndata: "));
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "cr", true, NULL, NULL, true, &r, &rp);
    assert_null(strchr(r.body.data, '\n'));
    assert_true(body_has(&r, "}\r\rdata: "));
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "comments", true, NULL, NULL, true, &r, &rp);
    assert_true(tg_str_has_prefix(r.body.data, ":\n\n"));
    assert_true(body_has(&r, "\n: keep-alive\n\ndata: "));
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "nospace", true, NULL, NULL, true, &r, &rp);
    assert_true(tg_str_has_prefix(r.body.data, "data:{") && body_has(&r, "data:[DONE]"));
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "pretty", true, NULL, NULL, true, &r, &rp);
    assert_true(tg_str_has_prefix(r.body.data, "data: {\ndata:   \"id\": "));
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "ascii", true, NULL, NULL, true, &r, &rp);
    for (p = r.body.data; *p; p++)
        assert_true((unsigned char)*p < 0x80);
    assert_true(body_has(&r, "h\\u00e9") && body_has(&r, "\\ud83d\\ude00"));
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "fields", true, NULL, NULL, true, &r, &rp);
    assert_true(tg_str_has_prefix(r.body.data, "retry: 3000\nid: 1\nevent: message\ndata: {"));
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "pretty", false, NULL, NULL, false, &r, &rp);
    assert_true(tg_str_has_prefix(r.body.data, "{\n  \"id\": \"chatcmpl-fake-"));
    replay_free(&rp);
    resp_free(&r);
}

/* Named servers: the features their documentation or source shows. */
static void test_dialect_server_features(void **state)
{
    const struct child *ch = *state;
    struct resp r;
    struct replay rp;
    struct sse s;
    json_t *v;

    dialect_turn(ch, "azure", true, NULL, NULL, true, &r, &rp);
    sse_parse(&r.body, &s);
    v = json_loads(s.ev[0].data, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(v, "choices")), 0);
    assert_true(json_is_array(json_object_get(v, "prompt_filter_results")));
    assert_true(tg_str_has_prefix(s.ev[1].data, "{\"choices\":[{\"content_filter_results\":{}"));
    json_decref(v);
    sse_free(&s);
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "openai", true, NULL, NULL, false, &r, &rp);
    assert_true(tg_str_has_prefix(r.body.data, "{\n  \"id\": \"chatcmpl-fake-"));
    assert_true(body_has(&r, "\"annotations\": []") && body_has(&r, "\"service_tier\": "));
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "openai", true, NULL, NULL, true, &r, &rp);
    assert_true(body_has(&r, ",\"obfuscation\":\""));
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "ollama", true, NULL, NULL, false, &r, &rp);
    assert_true(body_has(&r, "\\u003c\\u0026\\u003e") && r.body.data[r.body.len - 1] == '\n');
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "llamacpp", true, NULL, NULL, true, &r, &rp);
    assert_true(tg_str_has_prefix(r.body.data, "data: {\"choices\":[{\"finish_reason\":null,"));
    assert_true(body_has(&r, "\"timings\":{\"prompt_n\":"));
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "tgi", true, NULL, NULL, true, &r, &rp);
    assert_true(tg_str_has_prefix(r.body.data, "data:{\"object\":\"chat.completion.chunk\""));
    assert_true(body_has(&r, "\ndata:[DONE]\n\n"));
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "deepseek", true, NULL, NULL, true, &r, &rp);
    assert_true(tg_str_has_prefix(r.body.data, ": keep-alive\n\ndata: {"));
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "deepseek", true, NULL, NULL, false, &r, &rp);
    assert_true(tg_str_has_prefix(r.body.data, "\n\n{\"id\":"));
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "qwen", true, NULL, NULL, true, &r, &rp);
    assert_true(tg_str_has_prefix(r.body.data, "data: {\"choices\":[{\"delta\":{\"content\":\"\","
                                               "\"role\":\"assistant\"}"));
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "litellm", true, NULL, NULL, true, &r, &rp);
    assert_false(body_has(&r, "null"));
    replay_free(&rp);
    resp_free(&r);
    dialect_turn(ch, "vllm", true, NULL,
                 "\"stream_options\":{\"include_usage\":true,"
                 "\"continuous_usage_stats\":true},",
                 true, &r, &rp);
    sse_parse(&r.body, &s);
    for (size_t i = 0; i + 1 < s.n; i++)
        assert_non_null(strstr(s.ev[i].data, "\"usage\":{\"prompt_tokens\":"));
    sse_free(&s);
    replay_free(&rp);
    resp_free(&r);
}

#define TOOL_STEP                                                                                  \
    "\"tool_calls\":[{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": "                    \
    "\\\"P\xc3\xa4ris\\\", "                                                                       \
    "\\\"days\\\": [1, 2, 3]}\"},{\"name\":\"noop\",\"arguments\":\"{}\",\"id\":\"call_x\"}]"

/* Scripted tool calls stream in each dialect's way and reassemble exactly. */
static void test_dialect_tool_calls(void **state)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(all_dialects); i++) {
        struct resp r;
        struct replay rp;
        const json_t *call;
        json_t *v, *msg;

        dialect_turn(*state, all_dialects[i], false, TOOL_STEP,
                     "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}],",
                     true, &r, &rp);
        assert_int_equal(json_array_size(rp.calls), 2);
        call = json_array_get(rp.calls, 0);
        assert_string_equal(tg_json_str(call, "name", ""), "get_weather");
        assert_string_equal(tg_json_str(call, "arguments", ""),
                            "{\"city\": \"P\xc3\xa4ris\", \"days\": [1, 2, 3]}");
        assert_true(*tg_json_str(call, "id", ""));
        call = json_array_get(rp.calls, 1);
        assert_string_equal(tg_json_str(call, "id", ""), "call_x");
        assert_string_equal(tg_json_str(call, "arguments", ""), "{}");
        assert_string_equal(rp.finish, "tool_calls");
        assert_string_equal(rp.content.data ? rp.content.data : "", "");
        replay_free(&rp);
        resp_free(&r);
        dialect_turn(*state, all_dialects[i], false, TOOL_STEP, NULL, false, &r, &rp);
        v = json_loadb(r.body.data, r.body.len, 0, NULL);
        msg = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message");
        call = json_array_get(json_object_get(msg, "tool_calls"), 0);
        assert_string_equal(tg_json_str(call, "type", ""), "function");
        assert_string_equal(tg_json_str(json_object_get(call, "function"), "arguments", ""),
                            "{\"city\": \"P\xc3\xa4ris\", \"days\": [1, 2, 3]}");
        assert_true(!json_object_get(msg, "content") ||
                    json_is_null(json_object_get(msg, "content")) ||
                    strcmp(tg_json_str(msg, "content", "x"), "") == 0);
        json_decref(v);
        replay_free(&rp);
        resp_free(&r);
    }
}

/* Reasoning streams before the answer and sits beside it in the body. */
static void test_dialect_reasoning(void **state)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(all_dialects); i++) {
        struct resp r;
        struct replay rp;
        json_t *v, *msg;

        dialect_turn(*state, all_dialects[i], false,
                     "\"reasoning\":\"First, \xe6\x80\x9d\xe8\x80\x83 the <question>.\"", NULL,
                     true, &r, &rp);
        assert_string_equal(rp.reasoning.data, "First, \xe6\x80\x9d\xe8\x80\x83 the <question>.");
        assert_string_equal(rp.content.data, DIALECT_ANSWER);
        assert_false(rp.reasoning_after_content);
        replay_free(&rp);
        resp_free(&r);
        dialect_turn(*state, all_dialects[i], false, "\"reasoning\":\"Why.\"", NULL, false, &r,
                     &rp);
        v = json_loadb(r.body.data, r.body.len, 0, NULL);
        msg = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message");
        assert_string_equal(
            tg_json_str(msg, "reasoning_content", tg_json_str(msg, "reasoning", "")), "Why.");
        json_decref(v);
        replay_free(&rp);
        resp_free(&r);
    }
}

/* finish_reason overrides; logprobs: true gives one entry per content chunk. */
static void test_dialect_logprobs_finish(void **state)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(all_dialects); i++) {
        struct resp r;
        struct replay rp;
        json_t *v, *lp, *first;

        dialect_turn(*state, all_dialects[i], false, "\"finish_reason\":\"length\"",
                     "\"logprobs\":true,\"top_logprobs\":2,", true, &r, &rp);
        assert_string_equal(rp.finish, "length");
        assert_int_equal(rp.logprob_chunks, 4); /* 30 characters in pieces of 8 */
        replay_free(&rp);
        resp_free(&r);
        dialect_turn(*state, all_dialects[i], false, "\"finish_reason\":\"length\"",
                     "\"logprobs\":true,\"top_logprobs\":2,", false, &r, &rp);
        v = json_loadb(r.body.data, r.body.len, 0, NULL);
        lp = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "logprobs");
        assert_int_equal(json_array_size(json_object_get(lp, "content")), 4);
        first = json_array_get(json_object_get(lp, "content"), 0);
        assert_string_equal(tg_json_str(first, "token", ""), "fake ans");
        assert_true(json_is_real(json_object_get(first, "logprob")));
        assert_int_equal(json_array_size(json_object_get(first, "top_logprobs")), 2);
        assert_string_equal(
            tg_json_str(json_array_get(json_object_get(v, "choices"), 0), "finish_reason", ""),
            "length");
        json_decref(v);
        replay_free(&rp);
        resp_free(&r);
    }
}

/* Unknown dialects and malformed tool_calls are refused; the step survives. */
static void test_dialect_errors(void **state)
{
    const struct child *ch = *state;
    struct resp r;

    http(ch, "/_control/script", "{\"steps\":[{\"dialect\":\"nope\"}]}", &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    http(ch, "/_control/script", "{\"steps\":[{\"tool_calls\":[{\"name\":\"x\"}]}]}", &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    http(ch, "/_control/default", "{\"tool_calls\":[]}", &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    control(ch, "script", "{\"steps\":[{\"content\":\"kept\"}]}");
    http_on(NULL, ch, CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            "X-Fake-Dialect: nope", IO_TIMEOUT_MS, &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    assert_int_equal(stat_int(ch, "queued"), 1);
    http_on(NULL, ch, CHAT,
            "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":"
            "\"function\",\"function\":{\"name\":\"f\"}}]}",
            NULL, IO_TIMEOUT_MS, &r);
    assert_int_equal(r.status, 200);
    assert_true(body_has(&r, "\"content\":\"kept\"") && !body_has(&r, "tool_calls"));
    resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_nonstream, test_setup),
        cmocka_unit_test_setup(test_stream, test_setup),
        cmocka_unit_test_setup(test_models, test_setup),
        cmocka_unit_test_setup(test_script_order, test_setup),
        cmocka_unit_test_setup(test_default_step, test_setup),
        cmocka_unit_test_setup(test_delay, test_setup),
        cmocka_unit_test_setup(test_hang, test_setup),
        cmocka_unit_test_setup(test_reset, test_setup),
        cmocka_unit_test_setup(test_cut_after, test_setup),
        cmocka_unit_test_setup(test_stall_after, test_setup),
        cmocka_unit_test_setup(test_malformed_at, test_setup),
        cmocka_unit_test_setup(test_reset_after, test_setup),
        cmocka_unit_test_setup(test_stream_timing, test_setup),
        cmocka_unit_test_setup(test_retry_after, test_setup),
        cmocka_unit_test_setup(test_retry_after_text, test_setup),
        cmocka_unit_test_setup(test_stats_keepalive, test_setup),
        cmocka_unit_test_setup(test_curl_reuse, test_setup),
        cmocka_unit_test_setup(test_bad_requests, test_setup),
        cmocka_unit_test_setup(test_chunked_and_expect, test_setup),
        cmocka_unit_test_setup(test_concurrent_delays, test_setup),
        cmocka_unit_test_setup(test_require_key, test_setup),
        cmocka_unit_test_setup(test_dialect_streams, test_setup),
        cmocka_unit_test_setup(test_dialect_bodies, test_setup),
        cmocka_unit_test_setup(test_dialect_generic_features, test_setup),
        cmocka_unit_test_setup(test_dialect_server_features, test_setup),
        cmocka_unit_test_setup(test_dialect_tool_calls, test_setup),
        cmocka_unit_test_setup(test_dialect_reasoning, test_setup),
        cmocka_unit_test_setup(test_dialect_logprobs_finish, test_setup),
        cmocka_unit_test_setup(test_dialect_errors, test_setup),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
