/*
 * http.h - trustgate's HTTP/1.1 server on libevent bufferevents.
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
#ifndef TG_HTTP_H
#define TG_HTTP_H

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

/* ------------------------------------------------------------ the API */

struct tg_pipeline;
struct tg_turn;
struct tg_wait;
struct tg_webhooks;

/*
 * Signed webhooks (webhook.c): start a sender thread for the config's
 * `webhooks:` list ([{url, secret}]); NULL when there are none.  notify
 * queues one event (copied) for every target; stop delivers what is queued
 * (one attempt each) and joins the thread.
 */
struct tg_webhooks *tg_webhooks_start(const json_t *targets);
void tg_webhooks_notify(struct tg_webhooks *w, const json_t *event);
void tg_webhooks_stop(struct tg_webhooks *w);

/* The gateway's HTTP API: routes requests to turns and status endpoints. */
struct tg_api {
    struct tg_pipeline *p;
    struct tg_http_server *srv;
    bool draining; /* /readyz answers 503 once shutdown began */
    int64_t started_ms;
    struct tg_wait *waiters;          /* requests long-polling for a held answer (wait.c) */
    struct tg_webhooks *webhooks;     /* signed notifications of settled reviews, or NULL */
    struct tg_console *console;       /* console sessions and logins (console.c), or NULL */
    struct tg_events *events;         /* live event streams to consoles and chat pages (events.c) */
    struct tg_monitor *monitor;       /* daily FAR and its alarm (feedback.c) */
    struct tg_fairness_mon *fairness; /* the live fairness gate (governance.c) */
    struct tg_background *background; /* the worker for reads that grow with the data */
};

/*
 * Keep req open until the review of held turn t settles (tg_api_settled)
 * or seconds pass (then the holding reply t built is sent).  The turn may
 * be freed after the call.  TG_OK, or an error and req is not taken.
 */
int tg_api_wait(struct tg_api *api, struct tg_http_req *req, const struct tg_turn *t,
                int64_t seconds);
/* A review task was decided or handed off: answer the requests waiting for it. */
void tg_api_settled(struct tg_api *api, const json_t *task);
/* Answer every waiting request with its holding reply (shutdown). */
void tg_api_release_waiters(struct tg_api *api);

/*
 * Live events (events.c): Server-Sent Events streams for consoles (every
 * review event) and chat pages (the answers to one customer's held turns).
 * tg_api_review_event publishes one event about task id (task may be NULL
 * when only the id is known); stop ends every stream (shutdown).
 */
int tg_events_start(struct tg_api *api);
void tg_events_stop(struct tg_api *api);
/* Keep req open as an event stream; customer NULL: a console, else that customer's chat. */
void tg_events_subscribe(struct tg_api *api, struct tg_http_req *req, const char *customer);
void tg_api_review_event(struct tg_api *api, const char *id, const char *event, const json_t *task);

/* Feedback and the FAR monitor (feedback.c): start reads eval.monitor. */
int tg_monitor_start(struct tg_api *api);
void tg_monitor_stop(struct tg_api *api);
bool tg_api_feedback(struct tg_api *api, struct tg_http_req *req);

/* Experiments, the fairness gate and the release freeze (governance.c): start
 * reads the config's fairness section. */
int tg_fairness_start(struct tg_api *api);
void tg_fairness_stop(struct tg_api *api);
bool tg_api_governance(struct tg_api *api, struct tg_http_req *req);

/* Stop the background worker (background.c): finished jobs are answered,
 * queued ones refused (shutdown).  Call it after tg_pipeline_settle(), so
 * no job still waits for a commit. */
void tg_api_background_stop(struct tg_api *api);

/* The audit log's checkpoints and proofs (audit_api.c); false when not one of them. */
bool tg_api_audit(struct tg_api *api, struct tg_http_req *req);

/* The web pages (web.c): static files, the chat page's API; false when not one of them. */
bool tg_api_web(struct tg_api *api, struct tg_http_req *req);

/* The tg_http_handler_cb for the API; arg is a struct tg_api. */
void tg_api_handle(struct tg_http_req *req, void *arg);
/* The review and turn routes (reviews.c); false when the request is not one of them. */
bool tg_api_reviews(struct tg_api *api, struct tg_http_req *req);

#endif
