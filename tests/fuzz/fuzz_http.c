/*
 * fuzz_http.c - the HTTP/1.1 server on arbitrary bytes from a client: the
 * input is written into one end of a socketpair whose other end the real
 * server serves; the handler answers every request.  Whatever the input,
 * the server must not crash, leak or hang (once the client has sent all
 * and shut its side, the server must close without waiting on a timer),
 * and everything it writes back must be HTTP responses.
 */
#include "fuzz.h"

#include "net/http.h"

#include <errno.h>
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
    /* Turn the loop until the server closes its end: it reads our end of
     * input at once, so it must, without waiting on any timer. */
    static char out[65536];
    size_t got = 0;
    bool closed = false;
    for (int round = 0; !closed; round++) {
        if (round == 10000)
            abort(); /* the server hangs on to a connection whose client is done */
        event_base_loop(base, EVLOOP_NONBLOCK);
        for (;;) {
            char chunk[4096];
            ssize_t n = recv(sv[1], chunk, sizeof(chunk), MSG_DONTWAIT);
            if (n <= 0) {
                closed = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
                break;
            }
            size_t keep = TG_MIN((size_t)n, sizeof(out) - 1 - got);
            memcpy(out + got, chunk, keep);
            got += keep;
        }
    }
    out[got] = '\0';
    if (got > 0 && strncmp(out, "HTTP/1.1 ", 9) != 0)
        abort(); /* the server wrote something that is not a response */
    tg_http_server_free(srv);
    close(sv[1]);
    event_base_free(base);
    return 0;
}
