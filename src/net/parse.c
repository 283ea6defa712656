/*
 * parse.c - the HTTP/1.1 request head parser (http.h, http_int.h): the
 * request line, header fields and body framing, as strict as RFC 9112
 * asks where leniency lets two readers of one byte stream disagree
 * (request smuggling): one Content-Length of digits only, never with
 * Transfer-Encoding, exactly one Host on HTTP/1.1, field names of token
 * characters only, no control characters in field values.
 */
#include "net/http_int.h"

#include <assert.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

/* tchar (RFC 9110 §5.6.2): the characters of a method and a field name. */
static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static bool all_tchar(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return false;
    return n > 0;
}

/* A field value may hold anything but control characters other than HTAB
 * (RFC 9110 §5.5): a CR, LF or NUL in a value is refused, not repaired. */
static bool valid_value(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return true;
}

/* Host (RFC 9112 §3.2, RFC 3986 §3.2.2): a host and an optional port, in
 * the characters of a reg-name, an IP literal or an IPv4 address. */
static bool valid_host(const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (!isalnum(ch) && !strchr("-._~%!$&'()*+,;=:[]", ch))
            return false;
    }
    return true;
}

/* Content-Length: 1*DIGIT and nothing else (no sign, list or spaces). */
static bool parse_length(const char *s, uint64_t *out)
{
    uint64_t n = 0;
    size_t i = 0;
    for (; isdigit((unsigned char)s[i]); i++) {
        if (n > (UINT64_MAX - 9) / 10)
            return false;
        n = n * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0 || s[i] != '\0')
        return false;
    *out = n;
    return true;
}

static bool header_has_token(const char *v, const char *token)
{
    size_t n = strlen(token);
    while (v && *v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        if (strncasecmp(v, token, n) == 0 &&
            (v[n] == '\0' || v[n] == ',' || v[n] == ' ' || v[n] == '\t'))
            return true;
        v = strchr(v, ',');
    }
    return false;
}

/* Does any Connection field of r name token? */
static bool connection_has(const struct tg_http_req *r, const char *token)
{
    for (int i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, "Connection") == 0 &&
            header_has_token(r->headers[i].value, token))
            return true;
    return false;
}

/* The request line, "METHOD SP target SP HTTP/1.x", NUL-terminated in
 * place (line[0..len) holds no CRLF).  0 or a status to refuse with. */
static int parse_request_line(struct tg_http_req *r, char *line, size_t len, const char **why)
{
    char *end = line + len;
    char *sp1 = memchr(line, ' ', len);
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
    *why = "malformed request line";
    if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1)
        return 400;
    *sp1 = *sp2 = '\0';
    *end = '\0';
    const char *version = sp2 + 1;
    if ((size_t)(end - version) == 8 && memcmp(version, "HTTP/1.1", 8) == 0) {
        r->minor = 1;
    } else if ((size_t)(end - version) == 8 && memcmp(version, "HTTP/1.0", 8) == 0) {
        r->minor = 0;
    } else {
        *why = "unsupported HTTP version";
        return 505;
    }
    if (!all_tchar(line, (size_t)(sp1 - line)))
        return 400;
    char *target = sp1 + 1;
    for (const char *t = target; t < sp2; t++)
        if ((unsigned char)*t <= 0x20 || *t == 0x7f)
            return 400;
    if (target[0] != '/') {
        *why = "request target must be an absolute path";
        return 400;
    }
    char *q = strchr(target, '?');
    if (q)
        *q++ = '\0';
    r->method = line;
    r->path = target;
    r->query = q ? q : "";
    return 0;
}

/* One header field line, line[0..len), NUL-terminated in place and added
 * to r's headers.  0 or a status to refuse with. */
static int parse_field(struct tg_http_req *r, char *line, size_t len, int max, const char **why)
{
    char *end = line + len;
    char *colon = memchr(line, ':', len);
    /* no folded lines, no space before the colon (RFC 9112 §5.1, §5.2) */
    *why = "malformed header line";
    if (!colon || !all_tchar(line, (size_t)(colon - line)))
        return 400;
    char *v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *why = "invalid character in a header value";
    if (!valid_value(v, (size_t)(end - v)))
        return 400;
    if (r->nheaders >= max) {
        *why = "too many header fields";
        return 431;
    }
    *colon = '\0';
    *end = '\0';
    r->headers[r->nheaders].name = line;
    r->headers[r->nheaders].value = v;
    r->nheaders++;
    return 0;
}

/* How the body is framed (RFC 9112 §6.1-6.3, §3.2): 0 or a status. */
static int parse_framing(struct tg_http_req *r, const struct tg_http_limits *lim, const char **why)
{
    const char *cl = NULL, *te = NULL, *host = NULL;
    int ncl = 0, nte = 0, nhost = 0;
    for (int i = 0; i < r->nheaders; i++) {
        const struct tg_http_header *h = &r->headers[i];
        if (strcasecmp(h->name, "Content-Length") == 0) {
            cl = h->value;
            ncl++;
        } else if (strcasecmp(h->name, "Transfer-Encoding") == 0) {
            te = h->value;
            nte++;
        } else if (strcasecmp(h->name, "Host") == 0) {
            host = h->value;
            nhost++;
        }
    }
    *why = r->minor >= 1 && nhost == 0 ? "an HTTP/1.1 request needs a Host header"
           : nhost > 1                 ? "more than one Host header"
           : host && !valid_host(host) ? "invalid Host header"
           : ncl > 1                   ? "more than one Content-Length header"
           : nte > 1                   ? "more than one Transfer-Encoding header"
           : ncl && nte                ? "both Transfer-Encoding and Content-Length"
           : nte && r->minor == 0      ? "Transfer-Encoding in an HTTP/1.0 request"
                                       : NULL;
    if (*why)
        return 400;
    if (te) {
        *why = "unsupported Transfer-Encoding";
        if (!tg_str_eq_nocase(te, "chunked"))
            return 501;
        r->chunked = true;
    } else if (cl) {
        *why = "invalid Content-Length";
        if (!parse_length(cl, &r->content_length))
            return 400;
        *why = "request body exceeds the limit";
        if (r->content_length > lim->max_body)
            return 413;
    }
    return 0;
}

int http_parse_head(struct tg_http_req *r, char *head, size_t len, const struct tg_http_limits *lim,
                    const char **why)
{
    char *p = head, *end = head + len;
    char *eol = memmem(p, len, "\r\n", 2);
    *why = "malformed request line";
    if (!eol)
        return 400;
    int status = parse_request_line(r, p, (size_t)(eol - p), why);
    if (status)
        return status;
    r->headers = tg_arena_alloc(&r->arena, sizeof(*r->headers) * (size_t)lim->max_headers);
    *why = "out of memory";
    if (!r->headers)
        return 500;
    p = eol + 2;
    for (;;) {
        eol = p < end ? memmem(p, (size_t)(end - p), "\r\n", 2) : NULL;
        *why = "request head without an empty line at its end";
        if (!eol)
            return 400;
        if (eol == p)
            break;
        status = parse_field(r, p, (size_t)(eol - p), lim->max_headers, why);
        if (status)
            return status;
        p = eol + 2;
    }
    status = parse_framing(r, lim, why);
    if (status)
        return status;
    r->keep_alive = r->minor >= 1 ? !connection_has(r, "close") : connection_has(r, "keep-alive");
    r->head_only = strcmp(r->method, "HEAD") == 0;
    return 0;
}

void http_limits_fill(struct tg_http_limits *out, const struct tg_http_limits *in)
{
    out->max_header = in && in->max_header ? in->max_header : 16384;
    out->max_body = in && in->max_body ? in->max_body : 1048576;
    out->idle_timeout_s = in && in->idle_timeout_s ? in->idle_timeout_s : 60;
    out->max_headers = in && in->max_headers ? in->max_headers : 64;
    out->head_timeout_s = in && in->head_timeout_s ? in->head_timeout_s : 10;
}

int tg_http_parse_request(const char *buf, size_t len, const struct tg_http_limits *limits,
                          struct tg_http_req **out, const char **why)
{
    struct tg_http_limits lim;
    http_limits_fill(&lim, limits);
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    size_t hlen = end ? (size_t)(end - buf) + 4 : len;
    *why = "request head too large";
    if (hlen > lim.max_header)
        return 431;
    *why = "request head without an empty line at its end";
    if (!end)
        return 400;
    struct tg_http_req *r = http_req_alloc(NULL, lim.max_body);
    char *head = r ? tg_arena_alloc(&r->arena, hlen + 1) : NULL;
    *why = "out of memory";
    if (!head) {
        if (r)
            http_req_free(r);
        return 500;
    }
    memcpy(head, buf, hlen);
    head[hlen] = '\0';
    int status = http_parse_head(r, head, hlen, &lim, why);
    if (status) {
        http_req_free(r);
        return status;
    }
    *out = r;
    return 0;
}

void tg_http_req_free(struct tg_http_req *r)
{
    if (!r)
        return;
    assert(r->conn == NULL && r->srv == NULL);
    http_req_free(r);
}

int64_t tg_http_body_length(const struct tg_http_req *r)
{
    return r->chunked ? -1 : (int64_t)r->content_length;
}
