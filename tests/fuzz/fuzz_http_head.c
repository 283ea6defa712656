/*
 * fuzz_http_head.c - the server's request-head parser (tg_http_parse_request,
 * the code the server runs on every head) on arbitrary bytes, with no
 * sockets, so it runs thousands of inputs a second.  It must never crash or
 * leak, and a head it accepts must be one that no other reader could frame
 * differently:
 *   - the method is a token, the path starts with '/' and holds no '?';
 *   - the body length is the one Content-Length (digits only) or chunked,
 *     never both, and within the limit;
 *   - no header name or value holds a control character other than a tab,
 *     and no value starts or ends with a space.
 * The refusal status is one the server sends, with a reason.
 */
#include "fuzz.h"

#include "net/http.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static void check_text(const char *s, bool value)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && !(value && ch == '\t')) || ch == 0x7f)
            abort();
        if (!value && (ch == ':' || ch == ' ' || ch == '\t'))
            abort();
    }
    if (value && n && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        abort();
}

static void check_request(struct tg_http_req *r, const struct tg_http_limits *lim)
{
    const char *method = tg_http_method(r), *path = tg_http_path(r);
    if (!method[0] || strpbrk(method, " \t\r\n:/") || path[0] != '/' ||
        strchr(tg_http_query(r), ' '))
        abort();
    if (strchr(path, '?') || strpbrk(path, " \r\n"))
        abort();
    int64_t blen = tg_http_body_length(r);
    const char *cl = tg_http_header(r, "Content-Length");
    const char *te = tg_http_header(r, "Transfer-Encoding");
    if (cl && te)
        abort();
    if (blen == -1 && !te)
        abort();
    if (blen >= 0) {
        if ((uint64_t)blen > lim->max_body)
            abort();
        if (cl) {
            for (const char *p = cl; *p; p++)
                if (!isdigit((unsigned char)*p))
                    abort();
            if (strtoull(cl, NULL, 10) != (uint64_t)blen)
                abort();
        } else if (blen != 0) {
            abort();
        }
    }
    size_t n;
    const char *body = tg_http_body(r, &n);
    if (n != 0 || body[0] != '\0')
        abort();
    const char *host = tg_http_header(r, "Host");
    if (host)
        check_text(host, true);
    static const char *const names[] = {
        "Host", "Content-Length", "Transfer-Encoding", "Connection", "Cookie", "Expect", "X-A"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = tg_http_header(r, names[i]);
        if (v)
            check_text(v, true);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first byte picks small limits half the time, so the limits are met too. */
    struct tg_http_limits small = {.max_header = 256, .max_body = 100, .max_headers = 4};
    const struct tg_http_limits *lim = size && (data[0] & 1) ? &small : NULL;
    struct tg_http_limits dflt = {.max_body = 1048576};
    struct tg_http_req *r = NULL;
    const char *why = NULL;
    int status = tg_http_parse_request((const char *)data, size, lim, &r, &why);
    if (status == 0) {
        if (!r)
            abort();
        check_request(r, lim ? lim : &dflt);
        tg_http_req_free(r);
        return 0;
    }
    if (r || !why || !why[0])
        abort();
    switch (status) {
    case 400:
    case 413:
    case 431:
    case 500:
    case 501:
    case 505:
        break;
    default:
        abort();
    }
    return 0;
}
