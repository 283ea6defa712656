/*
 * http.h - trustgate's HTTP/1.1 server on libevent bufferevents: the
 * transport, knowing nothing of trustgate's routes (src/api has those).
 *
 * A small server of our own rather than evhttp, so that every refusal
 * (oversized body, bad framing, unknown route) gets our JSON error body and
 * so the request path allocates little: one request object with an arena,
 * headers parsed in place, the body read into one buffer.
 *
 * Requests are handed to a single handler callback once complete.  The
 * handler answers at once or later (from any callback on the same event
 * loop) with tg_http_respond() or the stream calls.  If the client goes
 * away first, the request stays valid, tg_http_gone() turns true, and the
 * answer is dropped when it comes; the request is freed after its answer.
 *
 * Keep-alive and pipelining follow HTTP/1.1: the next request on a
 * connection is parsed only after the current one is answered.  A head
 * whose framing two readers could take differently (repeated or listed
 * Content-Length, Content-Length with Transfer-Encoding, no Host on
 * HTTP/1.1, a space before a colon, a control character in a value) is
 * refused with 400 and the connection closed.  A head not complete within
 * head_timeout_s gets 408 and the connection closed, however steadily its
 * bytes trickle in.  When accept fails (out of descriptors), the listener
 * pauses and retries instead of spinning, with one log line every few
 * seconds at most.
 */
#ifndef TG_NET_HTTP_H
#define TG_NET_HTTP_H

#include "core/core.h"

struct event_base;
struct tg_http_server;
struct tg_http_req;

struct tg_http_header {
    const char *name; /* as sent */
    const char *value;
};

struct tg_http_limits {
    size_t max_header;  /* request line + headers; default 16 KiB */
    size_t max_body;    /* default 1 MiB */
    int idle_timeout_s; /* keep-alive connection idle; default 60 */
    int max_headers;    /* count; default 64 */
    int head_timeout_s; /* a whole request head, from the accept or its first byte; default 10 */
};

/* Called once per complete request, on the event loop thread. */
typedef void (*tg_http_handler_cb)(struct tg_http_req *req, void *arg);

/*
 * Bind host:port and start accepting on base.  port 0 picks a free port
 * (tg_http_port tells which); host NULL creates a server with no listener,
 * fed only through tg_http_server_adopt().  On failure returns TG_E_IO and
 * writes the reason to err.
 */
int tg_http_server_start(struct event_base *base, const char *host, int port,
                         const struct tg_http_limits *limits, tg_http_handler_cb cb, void *arg,
                         struct tg_http_server **out, char *err, size_t errlen);
int tg_http_port(const struct tg_http_server *srv);
/* Serve a connected socket (from accept, a socketpair, socket activation).
 * The server owns fd from now on, also on failure. */
int tg_http_server_adopt(struct tg_http_server *srv, int fd);
/* Stop accepting new connections; idle keep-alive connections are closed. */
void tg_http_server_stop_accepting(struct tg_http_server *srv);
/* Requests received and not yet answered, plus answers not yet written to their sockets. */
size_t tg_http_inflight(const struct tg_http_server *srv);
/* Close every connection and free the server. */
void tg_http_server_free(struct tg_http_server *srv);

/* Request accessors; strings are valid until the request is answered. */
const char *tg_http_method(const struct tg_http_req *req);
const char *tg_http_path(const struct tg_http_req *req);                     /* without the query */
const char *tg_http_query(const struct tg_http_req *req);                    /* after '?', or "" */
const char *tg_http_header(const struct tg_http_req *req, const char *name); /* case-insensitive */
const char *tg_http_body(const struct tg_http_req *req, size_t *len);        /* NUL-terminated */
struct tg_arena *tg_http_arena(struct tg_http_req *req); /* freed with the request */
bool tg_http_gone(const struct tg_http_req *req);
/* The client's address as text ("127.0.0.1", "::1"), "" when the connection
 * is not an IP socket; valid as long as the request. */
const char *tg_http_peer(const struct tg_http_req *req);
/* Called once if the client disconnects before the answer is complete. */
void tg_http_on_gone(struct tg_http_req *req, void (*cb)(struct tg_http_req *, void *), void *arg);

/*
 * Answer with a complete body.  extra_headers is NULL or "Name: value\r\n"
 * lines.  After this call the request must not be used.
 */
void tg_http_respond(struct tg_http_req *req, int status, const char *content_type,
                     const char *extra_headers, const char *body, size_t len);
/* Answer with an OpenAI-style error {"error":{"message","type","param","code"}}. */
void tg_http_error(struct tg_http_req *req, int status, const char *type, const char *code,
                   const char *message);

/* Streamed answer: begin, any number of writes, end.  Chunked on HTTP/1.1. */
void tg_http_stream_begin(struct tg_http_req *req, int status, const char *content_type,
                          const char *extra_headers);
void tg_http_stream_write(struct tg_http_req *req, const char *data, size_t len);
void tg_http_stream_end(struct tg_http_req *req);

/*
 * A stream's bytes still waiting in its connection's output buffer, not yet
 * taken by the socket: how far a slow reader is behind.  0 once gone.
 */
size_t tg_http_unsent(const struct tg_http_req *req);
/*
 * Give up on req: drop what its connection has not sent yet, close the
 * connection (the client sees it end, a stream cut short) and free req.
 * The gone callback is not called.  After this call req must not be used.
 */
void tg_http_abort(struct tg_http_req *req);

/* Reason phrase for a status code. */
const char *tg_http_reason(int status);

/*
 * Parse one request head the way the server does, from a buffer and with
 * no connection: for tests and fuzzing.  buf[0..len) holds the request
 * line and header fields up to the empty line that ends them; bytes after
 * it are ignored.  limits NULL means the defaults.  Returns 0 and a new
 * request in *out: the accessors work on it, it has no body and must not
 * be answered; free it with tg_http_req_free.  Otherwise returns the HTTP
 * status the server refuses the head with (400, 413, 431, 500, 501, 505),
 * *why says why in a static string, and *out is not written.
 */
int tg_http_parse_request(const char *buf, size_t len, const struct tg_http_limits *limits,
                          struct tg_http_req **out, const char **why);
/* Free a request from tg_http_parse_request; NULL is a no-op. */
void tg_http_req_free(struct tg_http_req *req);
/* The body a parsed head announces: its Content-Length (0 when none), or -1 when chunked. */
int64_t tg_http_body_length(const struct tg_http_req *req);

#endif
