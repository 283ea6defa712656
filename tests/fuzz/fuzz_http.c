/*
 * fuzz_http.c - the HTTP/1.1 server on arbitrary bytes from a client: the
 * input is written into one end of a socketpair whose other end the real
 * server serves; the handler answers every request.  Whatever the input,
 * the server must not crash, leak or hang, and everything it writes back
 * must be HTTP responses.
 */
#include "fuzz.h"

#include "http/http.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void handler(struct tg_http_req *req, void *arg)
{
    (void)arg;
    size_t n;
    const char *body = tg_http_body(req, &n);
    (void)body;
    if (strcmp(tg_http_path(req), "/stream") == 0) {
        tg_http_stream_begin(req, 200, "text/event-stream", NULL);
        tg_http_stream_write(req, "data: x\n\n", 9);
        tg_http_stream_end(req);
        return;
    }
    tg_http_respond(req, 200, "text/plain", NULL, "ok", 2);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    char err[128];
    struct tg_http_server *srv = NULL;
    struct tg_http_limits lim = {.max_header = 2048, .max_body = 4096, .idle_timeout_s = 1};
    struct event_base *base = event_base_new();
    if (!base || socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        abort();
    if (tg_http_server_start(base, NULL, 0, &lim, handler, NULL, &srv, err, sizeof(err)) ||
        tg_http_server_adopt(srv, sv[0]))
        abort();
    /* Write what fits; a client that sends more than the server reads is refused. */
    size_t off = 0;
    while (off < size) {
        ssize_t w = send(sv[1], data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(sv[1], SHUT_WR);
    struct timeval tv = {0, 50000};
    struct event *stop = evtimer_new(base, stop_cb, base);
    evtimer_add(stop, &tv);
    event_base_dispatch(base);
    char out[65536];
    ssize_t got = recv(sv[1], out, sizeof(out) - 1, MSG_DONTWAIT);
    if (got > 0) {
        out[got] = '\0';
        if (strncmp(out, "HTTP/1.1 ", 9) != 0)
            abort(); /* the server wrote something that is not a response */
    }
    event_free(stop);
    tg_http_server_free(srv);
    close(sv[1]);
    event_base_free(base);
    return 0;
}
