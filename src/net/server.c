/*
 * server.c - HTTP/1.1 server: connections, request parsing, responses and
 * chunked streaming, on libevent bufferevents.  See http.h.
 *
 * A connection is in one of a few states: reading the head, reading a body
 * (by length or chunked), handling (the request is with the handler), or
 * closing (the last response is draining).  The request object is separate
 * from the connection so that a handler that answers late never touches a
 * freed connection: if the client leaves, the request is detached and the
 * late answer is dropped.
 *
 * The parser is as strict as RFC 9112 asks where leniency lets two readers
 * of one byte stream disagree (request smuggling): one Content-Length of
 * digits only, never with Transfer-Encoding, exactly one Host on HTTP/1.1,
 * field names of token characters only (no space before the colon), no
 * control characters in field values.  A whole request head must arrive
 * within head_timeout_s, however slowly its bytes trickle in.  When accept
 * fails for want of descriptors, the listener pauses (100 ms doubling to
 * 1 s) instead of spinning on a connection it cannot take.
 *
 * The request head is parsed by parse.c.
 */
#include "net/http_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

/* Pauses of the listener after a failed accept, and how often it is logged. */
#define ACCEPT_PAUSE_MIN_MS 100
#define ACCEPT_PAUSE_MAX_MS 1000
#define ACCEPT_LOG_EVERY_MS 5000
/* How long a closing connection drains what the client still sends. */
#define LINGER_S 2

enum conn_state {
    ST_HEAD,
    ST_BODY,
    ST_CHUNK_SIZE,
    ST_CHUNK_DATA,
    ST_CHUNK_END,
    ST_TRAILER,
    ST_HANDLING,
    ST_CLOSING,
    ST_LINGER
};

struct conn {
    struct tg_http_server *srv;
    struct bufferevent *bev;
    struct event *resume;    /* parse pipelined input after a late answer */
    struct event *deadline;  /* the head's deadline, then the linger's end */
    struct tg_http_req *req; /* current request, or NULL */
    enum conn_state state;
    size_t body_left;
    bool in_read; /* inside read_cb: answers must not re-enter parsing */
    char peer[INET6_ADDRSTRLEN]; /* the client's address, "" when not an IP socket */
    struct conn *prev, *next;
};

struct tg_http_server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct tg_http_limits lim;
    tg_http_handler_cb cb;
    void *cb_arg;
    int port;
    bool draining;
    size_t inflight;
    struct conn *conns;
    struct event *relisten;   /* re-enables the listener after a failed accept */
    int accept_pause_ms;      /* the current pause; 0 after an accept succeeded */
    int64_t accept_logged_ns; /* when a failed accept was last logged */
    unsigned accept_unlogged; /* failed accepts since then */
};

static void conn_free(struct conn *c);
static void conn_process(struct conn *c);
static void read_cb(struct bufferevent *bev, void *arg);
static void linger(struct conn *c);

/* Give up on a connection from inside the parser: it is freed from the
 * resume event, so callers up the stack may still look at it. */
static void conn_abort(struct conn *c)
{
    c->state = ST_CLOSING;
    bufferevent_disable(c->bev, EV_READ);
    event_active(c->resume, 0, 0);
}

/* ------------------------------------------------------------ helpers */

const char *tg_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

struct tg_http_req *http_req_alloc(struct conn *c, size_t max_body)
{
    struct tg_http_req *r = tg_calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->conn = c;
    r->srv = c ? c->srv : NULL;
    if (c)
        memcpy(r->peer, c->peer, sizeof(r->peer));
    tg_arena_init(&r->arena, 4096);
    tg_buf_init(&r->body, max_body);
    return r;
}

static struct tg_http_req *req_new(struct conn *c)
{
    return http_req_alloc(c, c->srv->lim.max_body);
}

void http_req_free(struct tg_http_req *r)
{
    tg_arena_free(&r->arena);
    tg_buf_free(&r->body);
    tg_free(r);
}

/* Write a response head.  Content-Length when len >= 0, else chunked/close. */
static void write_head(struct tg_http_req *r, int status, const char *ctype, const char *extra,
                       long long len)
{
    struct evbuffer *out = bufferevent_get_output(r->conn->bev);
    if (r->srv->draining)
        r->keep_alive = false;
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nServer: trustgate\r\n", status,
                        tg_http_reason(status));
    if (ctype)
        evbuffer_add_printf(out, "Content-Type: %s\r\n", ctype);
    if (status == 304 || status == 204)
        ; /* no body and no length (RFC 9110, 8.6) */
    else if (len >= 0)
        evbuffer_add_printf(out, "Content-Length: %lld\r\n", len);
    else if (r->minor >= 1)
        evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
    else
        r->keep_alive = false;
    if (!r->keep_alive)
        evbuffer_add(out, "Connection: close\r\n", 19);
    else if (r->minor == 0)
        evbuffer_add(out, "Connection: keep-alive\r\n", 24);
    if (extra)
        evbuffer_add(out, extra, strlen(extra));
    evbuffer_add(out, "\r\n", 2);
}

/* The answer is complete: free the request and move the connection on. */
static void finish(struct tg_http_req *r)
{
    struct conn *c = r->conn;
    struct tg_http_server *srv = r->srv;
    srv->inflight--;
    if (c) {
        c->req = NULL;
        if (r->keep_alive) {
            struct timeval tv = {c->srv->lim.idle_timeout_s, 0};
            c->state = ST_HEAD;
            bufferevent_set_timeouts(c->bev, &tv, NULL);
            bufferevent_enable(c->bev, EV_READ);
            if (!c->in_read && evbuffer_get_length(bufferevent_get_input(c->bev)))
                event_active(c->resume, 0, 0);
        } else {
            c->state = ST_CLOSING;
            bufferevent_disable(c->bev, EV_READ);
            if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
                event_active(c->resume, 0, 0);
        }
    }
    http_req_free(r);
}

/* ------------------------------------------------------------ answers */

void tg_http_respond(struct tg_http_req *r, int status, const char *ctype, const char *extra,
                     const char *body, size_t len)
{
    if (r->conn) {
        write_head(r, status, ctype, extra, (long long)len);
        if (len && !r->head_only)
            evbuffer_add(bufferevent_get_output(r->conn->bev), body, len);
    }
    finish(r);
}

void tg_http_error(struct tg_http_req *r, int status, const char *type, const char *code,
                   const char *message)
{
    json_t *err = json_pack("{s:{s:s, s:s, s:n, s:s?}}", "error", "message", message, "type", type,
                            "param", "code", code);
    char *s = err ? tg_json_dumps(err, JSON_COMPACT) : NULL;
    if (s)
        tg_http_respond(r, status, "application/json", NULL, s, strlen(s));
    else
        tg_http_respond(r, 500, "text/plain", NULL, "out of memory\n", 14);
    free(s);
    json_decref(err);
}

void tg_http_stream_begin(struct tg_http_req *r, int status, const char *ctype, const char *extra)
{
    r->streaming = true;
    if (r->conn)
        write_head(r, status, ctype, extra, -1);
}

void tg_http_stream_write(struct tg_http_req *r, const char *data, size_t len)
{
    if (!r->conn || !len)
        return;
    struct evbuffer *out = bufferevent_get_output(r->conn->bev);
    if (r->minor >= 1) {
        evbuffer_add_printf(out, "%zx\r\n", len);
        evbuffer_add(out, data, len);
        evbuffer_add(out, "\r\n", 2);
    } else {
        evbuffer_add(out, data, len);
    }
}

void tg_http_stream_end(struct tg_http_req *r)
{
    if (r->conn && r->minor >= 1)
        evbuffer_add(bufferevent_get_output(r->conn->bev), "0\r\n\r\n", 5);
    finish(r);
}

size_t tg_http_unsent(const struct tg_http_req *r)
{
    return r->conn ? evbuffer_get_length(bufferevent_get_output(r->conn->bev)) : 0;
}

void tg_http_abort(struct tg_http_req *r)
{
    if (r->conn) {
        struct evbuffer *out = bufferevent_get_output(r->conn->bev);
        evbuffer_drain(out, evbuffer_get_length(out));
        r->keep_alive = false;
    }
    finish(r);
}

/* ------------------------------------------------------------ accessors */

const char *tg_http_method(const struct tg_http_req *r)
{
    return r->method;
}

const char *tg_http_path(const struct tg_http_req *r)
{
    return r->path;
}

const char *tg_http_query(const struct tg_http_req *r)
{
    return r->query;
}

const char *tg_http_header(const struct tg_http_req *r, const char *name)
{
    for (int i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

const char *tg_http_body(const struct tg_http_req *r, size_t *len)
{
    if (len)
        *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

struct tg_arena *tg_http_arena(struct tg_http_req *r)
{
    return &r->arena;
}

const char *tg_http_peer(const struct tg_http_req *r)
{
    return r->peer;
}

bool tg_http_gone(const struct tg_http_req *r)
{
    return r->conn == NULL;
}

void tg_http_on_gone(struct tg_http_req *r, void (*cb)(struct tg_http_req *, void *), void *arg)
{
    r->gone_cb = cb;
    r->gone_arg = arg;
}

/* ------------------------------------------------------------ parsing */

/* Refuse a request the parser could not accept and close the connection. */
static void refuse(struct conn *c, int status, const char *message)
{
    struct tg_http_req *r = c->req;
    if (!r) {
        r = req_new(c);
        if (!r) {
            conn_abort(c);
            return;
        }
        c->req = r;
        r->minor = 1;
    }
    r->keep_alive = false;
    c->srv->inflight++;
    c->state = ST_HANDLING;
    const char *code = status == 413   ? "request_too_large"
                       : status == 431 ? "headers_too_large"
                       : status == 505 ? "http_version_not_supported"
                       : status == 501 ? "not_implemented"
                       : status == 408 ? "request_timeout"
                                       : "bad_request";
    tg_http_error(r, status, "invalid_request_error", code, message);
}

static void dispatch(struct conn *c)
{
    struct tg_http_req *r = c->req;
    c->state = ST_HANDLING;
    c->srv->inflight++;
    /* While a request is with the handler, no idle timeout applies. */
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    c->srv->cb(r, c->srv->cb_arg);
}

static void arm(struct event *ev, int seconds)
{
    struct timeval tv = {seconds, 0};
    evtimer_add(ev, &tv);
}

/* Parse a head from the input; returns false when more input is needed or
 * the connection was refused. */
static bool read_head(struct conn *c, struct evbuffer *in)
{
    struct tg_http_server *srv = c->srv;
    /* Tolerate empty lines between pipelined requests (RFC 9112 §2.2). */
    while (evbuffer_get_length(in) >= 2) {
        unsigned char two[2];
        evbuffer_copyout(in, two, 2);
        if (two[0] != '\r' || two[1] != '\n')
            break;
        evbuffer_drain(in, 2);
    }
    /* The head's deadline runs from its first byte (or from the accept). */
    if (evbuffer_get_length(in) && !evtimer_pending(c->deadline, NULL))
        arm(c->deadline, srv->lim.head_timeout_s);
    struct evbuffer_ptr pos = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (pos.pos < 0) {
        if (evbuffer_get_length(in) > srv->lim.max_header)
            refuse(c, 431, "request head too large");
        return false;
    }
    size_t hlen = (size_t)pos.pos + 4;
    if (hlen > srv->lim.max_header) {
        refuse(c, 431, "request head too large");
        return false;
    }
    evtimer_del(c->deadline);
    struct tg_http_req *r = req_new(c);
    char *head = r ? tg_arena_alloc(&r->arena, hlen + 1) : NULL;
    if (!head) {
        if (r)
            http_req_free(r);
        conn_abort(c);
        return false;
    }
    c->req = r;
    evbuffer_remove(in, head, hlen);
    head[hlen] = '\0';
    const char *why = NULL;
    int status = http_parse_head(r, head, hlen, &srv->lim, &why);
    if (status == 413) {
        char msg[128];
        snprintf(msg, sizeof(msg), "request body of %llu bytes exceeds the limit of %zu bytes",
                 (unsigned long long)r->content_length, srv->lim.max_body);
        refuse(c, 413, msg);
        return false;
    }
    if (status) {
        r->minor = r->minor ? r->minor : 1;
        refuse(c, status, why);
        return false;
    }
    if (r->chunked) {
        c->state = ST_CHUNK_SIZE;
    } else {
        c->body_left = (size_t)r->content_length;
        c->state = c->body_left ? ST_BODY : ST_HEAD;
    }
    const char *expect = tg_http_header(r, "Expect");
    if (expect && tg_str_eq_nocase(expect, "100-continue") && c->state != ST_HEAD)
        evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    if (c->state == ST_HEAD) {
        dispatch(c);
        return false;
    }
    return true;
}

/* Read body bytes; returns false when more input is needed or done. */
static bool read_body(struct conn *c, struct evbuffer *in)
{
    struct tg_http_req *r = c->req;
    char line[64];
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        switch (c->state) {
        case ST_BODY:
        case ST_CHUNK_DATA: {
            size_t n = TG_MIN(avail, c->body_left);
            if (n) {
                if (tg_buf_reserve(&r->body, n)) {
                    refuse(c, 413, "request body exceeds the limit");
                    return false;
                }
                evbuffer_remove(in, r->body.data + r->body.len, n);
                r->body.len += n;
                r->body.data[r->body.len] = '\0';
                c->body_left -= n;
            }
            if (c->body_left)
                return false;
            if (c->state == ST_BODY) {
                dispatch(c);
                return false;
            }
            c->state = ST_CHUNK_END;
            break;
        }
        case ST_CHUNK_END: {
            if (avail < 2)
                return false;
            unsigned char two[2];
            evbuffer_copyout(in, two, 2);
            if (two[0] != '\r' || two[1] != '\n') {
                refuse(c, 400, "malformed chunked body");
                return false;
            }
            evbuffer_drain(in, 2);
            c->state = ST_CHUNK_SIZE;
            break;
        }
        case ST_CHUNK_SIZE:
        case ST_TRAILER: {
            struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_CRLF_STRICT);
            if (eol.pos < 0) {
                if (avail > sizeof(line) && c->state == ST_CHUNK_SIZE) {
                    refuse(c, 400, "malformed chunk size");
                    return false;
                }
                if (avail > c->srv->lim.max_header) {
                    refuse(c, 431, "trailer too large");
                    return false;
                }
                return false;
            }
            size_t ll = (size_t)eol.pos;
            if (c->state == ST_TRAILER) {
                evbuffer_drain(in, ll + 2);
                if (ll == 0) {
                    dispatch(c);
                    return false;
                }
                break;
            }
            if (ll >= sizeof(line)) {
                refuse(c, 400, "malformed chunk size");
                return false;
            }
            evbuffer_remove(in, line, ll + 2);
            line[ll] = '\0';
            char *semi = strchr(line, ';');
            if (semi)
                *semi = '\0';
            char *endp = NULL;
            errno = 0;
            unsigned long long n = strtoull(line, &endp, 16);
            if (errno || endp == line || (*endp && *endp != ' ')) {
                refuse(c, 400, "malformed chunk size");
                return false;
            }
            if (n > c->srv->lim.max_body - r->body.len) {
                refuse(c, 413, "request body exceeds the limit");
                return false;
            }
            c->body_left = (size_t)n;
            c->state = n ? ST_CHUNK_DATA : ST_TRAILER;
            break;
        }
        default:
            return false;
        }
    }
}

static void conn_process(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    c->in_read = true;
    for (;;) {
        size_t before = evbuffer_get_length(in);
        bool more;
        if (c->state == ST_HEAD)
            more = read_head(c, in);
        else if (c->state == ST_BODY || c->state == ST_CHUNK_SIZE || c->state == ST_CHUNK_DATA ||
                 c->state == ST_CHUNK_END || c->state == ST_TRAILER)
            more = read_body(c, in);
        else
            break;
        if (more)
            continue;
        /* A request answered at once may have pipelined ones behind it; go on
         * only when this round consumed input, or an incomplete head would
         * spin here instead of waiting for the rest. */
        if (c->state == ST_HEAD && c->req == NULL && evbuffer_get_length(in) > 0 &&
            evbuffer_get_length(in) < before && !c->srv->draining)
            continue;
        break;
    }
    c->in_read = false;
}

/* ------------------------------------------------------------ connections */

static void conn_free(struct conn *c)
{
    struct tg_http_server *srv = c->srv;
    struct tg_http_req *r = c->req;
    if (r) {
        if (c->state == ST_HANDLING) {
            /* The handler still owns the request: detach and tell it. */
            r->conn = NULL;
            if (r->gone_cb)
                r->gone_cb(r, r->gone_arg);
        } else {
            http_req_free(r);
        }
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    event_free(c->resume);
    event_free(c->deadline);
    bufferevent_free(c->bev);
    tg_free(c);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (c->state == ST_LINGER) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    if (c->state == ST_HANDLING || c->state == ST_CLOSING) {
        /* Pipelined input waits; a flood while handling is cut off. */
        struct evbuffer *in = bufferevent_get_input(c->bev);
        if (evbuffer_get_length(in) > c->srv->lim.max_header + c->srv->lim.max_body)
            bufferevent_disable(c->bev, EV_READ);
        return;
    }
    conn_process(c);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->state == ST_HEAD)
        conn_process(c);
    else if (c->state == ST_CLOSING && !c->req)
        linger(c);
}

/*
 * After the last answer on a connection is written, half-close and keep
 * draining what the client still sends for a moment: closing with unread
 * input would reset the connection and could destroy the answer in flight
 * (e.g. a 413 sent while the client is still uploading).
 */
static void linger(struct conn *c)
{
    struct timeval tv = {LINGER_S, 0};
    c->state = ST_LINGER;
    shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    /* for at most LINGER_S in all, however often the client writes */
    arm(c->deadline, LINGER_S);
    bufferevent_set_timeouts(c->bev, &tv, NULL);
    bufferevent_enable(c->bev, EV_READ);
    read_cb(c->bev, c);
}

/* The head's deadline passed (a partial head gets a 408), or the linger's. */
static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->state == ST_LINGER || (c->state == ST_HEAD && !c->req &&
                                  evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)) {
        conn_free(c);
    } else if (c->state == ST_HEAD && !c->req) {
        char msg[96];
        snprintf(msg, sizeof(msg), "request head not complete within %d s",
                 c->srv->lim.head_timeout_s);
        refuse(c, 408, msg);
    }
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (c->state == ST_CLOSING && !c->req)
        linger(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        conn_free(c);
}

/* The address of fd's peer as text ("127.0.0.1", "::1"; an IPv4-mapped IPv6
 * address as IPv4), or "" when it is not an IP socket. */
static void peer_name(int fd, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    const void *addr = NULL;
    int family = AF_UNSPEC;
    out[0] = '\0';
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        family = AF_INET;
        addr = &((struct sockaddr_in *)&ss)->sin_addr;
    } else if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a6 = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        family = IN6_IS_ADDR_V4MAPPED(a6) ? AF_INET : AF_INET6;
        addr = family == AF_INET ? (const void *)(a6->s6_addr + 12) : (const void *)a6;
    }
    if (addr && !inet_ntop(family, addr, out, (socklen_t)outlen))
        out[0] = '\0';
}

int tg_http_server_adopt(struct tg_http_server *srv, int fd)
{
    struct conn *c = tg_calloc(1, sizeof(*c));
    if (!c) {
        evutil_closesocket(fd);
        return TG_E_NOMEM;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* fails harmlessly off TCP */
    evutil_make_socket_nonblocking(fd);
    c->srv = srv;
    peer_name(fd, c->peer, sizeof(c->peer));
    c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->resume = event_new(srv->base, -1, 0, resume_cb, c);
    c->deadline = evtimer_new(srv->base, deadline_cb, c);
    if (!c->bev || !c->resume || !c->deadline) {
        if (c->bev)
            bufferevent_free(c->bev);
        else
            evutil_closesocket(fd);
        if (c->resume)
            event_free(c->resume);
        if (c->deadline)
            event_free(c->deadline);
        tg_free(c);
        return TG_E_NOMEM;
    }
    c->state = ST_HEAD;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    struct timeval tv = {srv->lim.idle_timeout_s, 0};
    bufferevent_set_timeouts(c->bev, &tv, NULL);
    /* a new connection has its first head's time from now, sent or not */
    arm(c->deadline, srv->lim.head_timeout_s);
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    return TG_OK;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    struct tg_http_server *srv = arg;
    srv->accept_pause_ms = 0;
    tg_http_server_adopt(srv, fd);
}

static void relisten_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_http_server *srv = arg;
    if (srv->listener && !srv->draining)
        evconnlistener_enable(srv->listener);
}

/*
 * accept failed for a reason other than a client that left (EMFILE,
 * ENFILE, ENOBUFS...): the connection stays in the backlog and the
 * listener would report it again at once, so pause the listener, longer
 * each time in a row, and say so at most every ACCEPT_LOG_EVERY_MS.
 */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct tg_http_server *srv = arg;
    int err = EVUTIL_SOCKET_ERROR();
    srv->accept_pause_ms = srv->accept_pause_ms
                               ? TG_MIN(srv->accept_pause_ms * 2, ACCEPT_PAUSE_MAX_MS)
                               : ACCEPT_PAUSE_MIN_MS;
    evconnlistener_disable(l);
    struct timeval tv = {srv->accept_pause_ms / 1000, (srv->accept_pause_ms % 1000) * 1000};
    evtimer_add(srv->relisten, &tv);
    int64_t now = tg_clock_mono_ns();
    if (srv->accept_logged_ns &&
        now - srv->accept_logged_ns < ACCEPT_LOG_EVERY_MS * INT64_C(1000000)) {
        srv->accept_unlogged++;
        return;
    }
    tg_warn("cannot accept connections: %s; not accepting for %d ms (%u more failures since the "
            "last report)",
            evutil_socket_error_to_string(err), srv->accept_pause_ms, srv->accept_unlogged);
    srv->accept_logged_ns = now;
    srv->accept_unlogged = 0;
}

/* ------------------------------------------------------------ server */

static int server_new(struct event_base *base, const struct tg_http_limits *limits,
                      tg_http_handler_cb cb, void *arg, struct tg_http_server **out, char *err,
                      size_t errlen)
{
    struct tg_http_server *srv = tg_calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return TG_E_NOMEM;
    }
    srv->base = base;
    srv->cb = cb;
    srv->cb_arg = arg;
    http_limits_fill(&srv->lim, limits);
    srv->relisten = evtimer_new(base, relisten_cb, srv);
    if (!srv->relisten) {
        tg_free(srv);
        snprintf(err, errlen, "out of memory");
        return TG_E_NOMEM;
    }
    *out = srv;
    return TG_OK;
}

int tg_http_server_start(struct event_base *base, const char *host, int port,
                         const struct tg_http_limits *limits, tg_http_handler_cb cb, void *arg,
                         struct tg_http_server **out, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    char addr[300];
    memset(&ss, 0, sizeof(ss));
    if (!host)
        return server_new(base, limits, cb, arg, out, err, errlen);
    /* Parse the host alone: libevent refuses an explicit port 0. */
    snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    if (evutil_parse_sockaddr_port(host, (struct sockaddr *)&ss, &sslen) != 0) {
        snprintf(err, errlen, "cannot parse listen address %s", addr);
        return TG_E_INVAL;
    }
    if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
    struct tg_http_server *srv = NULL;
    int rc = server_new(base, limits, cb, arg, &srv, err, errlen);
    if (rc)
        return rc;
    srv->listener = evconnlistener_new_bind(
        base, accept_cb, srv, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        1024, (struct sockaddr *)&ss, sslen);
    if (!srv->listener) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
        event_free(srv->relisten);
        tg_free(srv);
        return TG_E_IO;
    }
    evconnlistener_set_error_cb(srv->listener, accept_error_cb);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    getsockname(evconnlistener_get_fd(srv->listener), (struct sockaddr *)&bound, &blen);
    if (bound.ss_family == AF_INET6)
        srv->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    else
        srv->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    *out = srv;
    return TG_OK;
}

int tg_http_port(const struct tg_http_server *srv)
{
    return srv->port;
}

size_t tg_http_inflight(const struct tg_http_server *srv)
{
    /* An answered request still counts while its bytes wait in an output
     * buffer: a drain that stopped here would cut the answer off. */
    size_t n = srv->inflight;
    for (const struct conn *c = srv->conns; c; c = c->next)
        n += evbuffer_get_length(bufferevent_get_output(c->bev)) > 0;
    return n;
}

void tg_http_server_stop_accepting(struct tg_http_server *srv)
{
    srv->draining = true;
    evtimer_del(srv->relisten);
    if (srv->listener)
        evconnlistener_disable(srv->listener);
    struct conn *c = srv->conns;
    while (c) {
        struct conn *next = c->next;
        if (c->state == ST_HEAD && !c->req)
            conn_free(c);
        c = next;
    }
}

void tg_http_server_free(struct tg_http_server *srv)
{
    if (!srv)
        return;
    while (srv->conns)
        conn_free(srv->conns);
    if (srv->listener)
        evconnlistener_free(srv->listener);
    event_free(srv->relisten);
    tg_free(srv);
}
