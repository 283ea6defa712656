/*
 * fuzz_console_params.c - the console's cookie parsing (tg_api_cookie,
 * console.c) and the API's query-string parsing (tg_api_query, api.c) on
 * arbitrary bytes.  The input up to the first newline is a query string;
 * the rest is the value of a Cookie header, sent through the server's own
 * head parser first (what it refuses never reaches the cookie parser).
 * Neither may crash, leak or write past its output, and what they return
 * must be a value that stands in the input after "name=".
 */
#include "fuzz.h"

#include "api/api_int.h"
#include "api/console.h"

#include <stdlib.h>
#include <string.h>

static const char *const query_names[] = {"state", "source", "from", "to", "index",
                                          "size",  "turns",  "look", "a"};
static const char *const cookie_names[] = {"tg_session", "tg_chat", "a"};

/* value was found in text after "name=" (or is the empty string of a value too long). */
static bool stands_after(const char *text, const char *name, const char *value)
{
    size_t n = strlen(name);
    for (const char *p = strstr(text, name); p; p = strstr(p + 1, name))
        if (p[n] == '=' && strncmp(p + n + 1, value, strlen(value)) == 0)
            return true;
    return false;
}

static void fuzz_query(const char *q)
{
    for (size_t i = 0; i < sizeof(query_names) / sizeof(query_names[0]); i++) {
        char out[24];
        memset(out, 'x', sizeof(out));
        if (!tg_api_query(q, query_names[i], out, sizeof(out)))
            continue;
        if (!memchr(out, '\0', sizeof(out)) || strchr(out, '&'))
            abort();
        if (!stands_after(q, query_names[i], out))
            abort();
    }
}

static void fuzz_cookie(const char *value, size_t len)
{
    static const char pre[] = "GET / HTTP/1.1\r\nHost: x\r\nCookie: ";
    size_t hl = sizeof(pre) - 1 + len + 4;
    char *head = malloc(hl);
    if (!head)
        return;
    memcpy(head, pre, sizeof(pre) - 1);
    memcpy(head + sizeof(pre) - 1, value, len);
    memcpy(head + sizeof(pre) - 1 + len, "\r\n\r\n", 4);
    struct tg_http_req *r = NULL;
    const char *why = NULL;
    if (tg_http_parse_request(head, hl, NULL, &r, &why) == 0) {
        const char *cookie = tg_http_header(r, "Cookie");
        for (size_t i = 0; i < sizeof(cookie_names) / sizeof(cookie_names[0]); i++) {
            char out[29];
            memset(out, 'x', sizeof(out));
            if (!tg_api_cookie(r, cookie_names[i], out, sizeof(out)))
                continue;
            if (!memchr(out, '\0', sizeof(out)) || strchr(out, ';'))
                abort();
            if (!cookie || !stands_after(cookie, cookie_names[i], out))
                abort();
        }
        tg_http_req_free(r);
    }
    free(head);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    size_t ql = nl ? (size_t)(nl - in) : size;
    char *q = malloc(ql + 1);
    if (!q)
        return 0;
    memcpy(q, in, ql);
    q[ql] = '\0';
    fuzz_query(q);
    free(q);
    if (nl)
        fuzz_cookie(nl + 1, size - ql - 1);
    return 0;
}
