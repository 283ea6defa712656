/*
 * http_int.h - private to the HTTP server (server.c, parse.c): the request
 * object and what each file offers the other.
 */
#ifndef TG_NET_HTTP_INT_H
#define TG_NET_HTTP_INT_H

#include "net/http.h"

#include <netinet/in.h>

struct conn;

struct tg_http_req {
    struct conn *conn; /* NULL once the client is gone */
    struct tg_http_server *srv;
    struct tg_arena arena;
    const char *method, *path, *query;
    int minor; /* HTTP/1.<minor> */
    struct tg_http_header *headers;
    int nheaders;
    uint64_t content_length; /* declared by the head; 0 when chunked or none */
    bool chunked;
    struct tg_buf body;
    bool keep_alive, streaming, head_only;
    void (*gone_cb)(struct tg_http_req *, void *);
    void *gone_arg;
    char peer[INET6_ADDRSTRLEN]; /* copied from the connection: outlives it */
};

/* server.c: a request of the connection c, its body bounded by max_body;
 * c NULL for one parsed from a buffer.  NULL when out of memory. */
struct tg_http_req *http_req_alloc(struct conn *c, size_t max_body);
/* server.c: free a request and all it holds. */
void http_req_free(struct tg_http_req *r);

/* parse.c: the limits in, with every 0 (or a NULL in) replaced by its default. */
void http_limits_fill(struct tg_http_limits *out, const struct tg_http_limits *in);
/*
 * parse.c: parse a head in place: head[0..len) is the request line and
 * header fields, each ending in CRLF, then the empty line's CRLF;
 * head[len] is writable.  Fills r (its strings point into head, its header
 * array comes from r's arena).  Returns 0 or an HTTP status to refuse with,
 * and why.
 */
int http_parse_head(struct tg_http_req *r, char *head, size_t len, const struct tg_http_limits *lim,
                    const char **why);

#endif
