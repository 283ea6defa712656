/*
 * jscan.c - a validating JSON scanner that finds values without building
 * a tree.  See jscan.h.
 *
 * Every function walks the text with a cursor; skip_value() is the whole
 * grammar and is used both to validate and to step over values while
 * searching.
 */
#include "core/jscan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct cur {
    const char *p, *end;
    int depth;
};

static void ws(struct cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int hexval(char h)
{
    if (h >= '0' && h <= '9')
        return h - '0';
    if (h >= 'a' && h <= 'f')
        return h - 'a' + 10;
    if (h >= 'A' && h <= 'F')
        return h - 'A' + 10;
    return -1;
}

/* Length of a valid UTF-8 sequence at p (end bounds), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

/* A \uXXXX escape at p: its value, or false. */
static bool hex_escape(const char *p, const char *end, uint32_t *u)
{
    if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
        return false;
    *u = 0;
    for (int i = 2; i < 6; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return false;
        *u = *u << 4 | (uint32_t)h;
    }
    return true;
}

static bool skip_string(struct cur *c)
{
    if (c->p >= c->end || *c->p != '"')
        return false;
    c->p++;
    while (c->p < c->end) {
        /* plain ASCII eight bytes at a time: nothing to check but the bytes themselves */
        while (c->end - c->p >= 8 && !tg_swar_special(c->p) && !tg_swar_high(c->p))
            c->p += 8;
        if (c->p >= c->end)
            break;
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            c->p++;
            return true;
        }
        if (ch < 0x20)
            return false;
        if (ch == '\\') {
            if (c->end - c->p < 2)
                return false;
            char e = c->p[1];
            if (e == 'u') {
                uint32_t u;
                if (!hex_escape(c->p, c->end, &u))
                    return false;
                c->p += 6;
                /* Surrogates only as a high-low pair, as jansson insists too. */
                if (u >= 0xDC00 && u <= 0xDFFF)
                    return false;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    uint32_t lo;
                    if (!hex_escape(c->p, c->end, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        return false;
                    c->p += 6;
                }
            } else if (strchr("\"\\/bfnrt", e) && e) {
                c->p += 2;
            } else {
                return false;
            }
            continue;
        }
        size_t n = utf8_len((const unsigned char *)c->p, (const unsigned char *)c->end);
        if (!n)
            return false;
        c->p += n;
    }
    return false;
}

static bool skip_number(struct cur *c)
{
    const char *s = c->p;
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p >= c->end)
        return false;
    if (*c->p == '0') {
        c->p++;
    } else if (*c->p >= '1' && *c->p <= '9') {
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    } else {
        return false;
    }
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return false;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return false;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    }
    return c->p > s;
}

static bool literal(struct cur *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return false;
    c->p += n;
    return true;
}

static bool skip_value(struct cur *c);

static bool skip_container(struct cur *c, char open, char close)
{
    if (++c->depth > TG_JSCAN_DEPTH)
        return false;
    c->p++; /* the opening bracket */
    ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        c->depth--;
        return true;
    }
    for (;;) {
        if (open == '{') {
            ws(c); /* RFC 8259: whitespace may precede a member's name, after '{' or ',' */
            if (!skip_string(c))
                return false;
            ws(c);
            if (c->p >= c->end || *c->p != ':')
                return false;
            c->p++;
        }
        if (!skip_value(c))
            return false;
        ws(c);
        if (c->p >= c->end)
            return false;
        if (*c->p == close) {
            c->p++;
            c->depth--;
            return true;
        }
        if (*c->p != ',')
            return false;
        c->p++;
    }
}

static bool skip_value(struct cur *c)
{
    ws(c);
    if (c->p >= c->end)
        return false;
    switch (*c->p) {
    case '{':
        return skip_container(c, '{', '}');
    case '[':
        return skip_container(c, '[', ']');
    case '"':
        return skip_string(c);
    case 't':
        return literal(c, "true");
    case 'f':
        return literal(c, "false");
    case 'n':
        return literal(c, "null");
    default:
        return skip_number(c);
    }
}

int tg_jscan_validate(const char *text, size_t len)
{
    struct cur c = {text, text + len, 0};
    if (!skip_value(&c))
        return TG_E_PARSE;
    ws(&c);
    return c.p == c.end ? TG_OK : TG_E_PARSE;
}

/* Does the raw string at c->p (with quotes) equal key?  Advances past it. */
static bool key_equals(struct cur *c, const char *key)
{
    const char *s = c->p + 1;
    if (!skip_string(c))
        return false;
    size_t n = (size_t)(c->p - 1 - s);
    /* Keys with escapes are compared decoded. */
    if (!memchr(s, '\\', n))
        return n == strlen(key) && memcmp(s, key, n) == 0;
    struct tg_buf b;
    tg_buf_init(&b, 4096);
    bool eq = tg_jscan_string(s - 1, n + 2, &b) == TG_OK && b.len == strlen(key) &&
              memcmp(b.data, key, b.len) == 0;
    tg_buf_free(&b);
    return eq;
}

/* Position c at the member `step` of the container at c->p. */
static bool descend(struct cur *c, const char *step)
{
    ws(c);
    if (c->p >= c->end)
        return false;
    if (step[0] == '#') {
        char *endp = NULL;
        errno = 0;
        long idx = strtol(step + 1, &endp, 10);
        if (errno || *endp || idx < 0 || *c->p != '[')
            return false;
        c->p++;
        ws(c);
        if (c->p < c->end && *c->p == ']')
            return false;
        for (long i = 0;; i++) {
            ws(c);
            if (i == idx)
                return true;
            if (!skip_value(c))
                return false;
            ws(c);
            if (c->p >= c->end || *c->p != ',')
                return false;
            c->p++;
        }
    }
    if (*c->p != '{')
        return false;
    c->p++;
    ws(c);
    if (c->p < c->end && *c->p == '}')
        return false;
    for (;;) {
        ws(c);
        bool hit = key_equals(c, step);
        ws(c);
        if (c->p >= c->end || *c->p != ':')
            return false;
        c->p++;
        ws(c);
        if (hit)
            return true;
        if (!skip_value(c))
            return false;
        ws(c);
        if (c->p >= c->end || *c->p != ',')
            return false;
        c->p++;
    }
}

int tg_jscan_find(const char *text, size_t len, const char *const *path, size_t npath,
                  const char **v, size_t *vlen)
{
    struct cur c = {text, text + len, 0};
    for (size_t i = 0; i < npath; i++)
        if (!descend(&c, path[i]))
            return TG_E_NOTFOUND;
    ws(&c);
    const char *start = c.p;
    if (!skip_value(&c))
        return TG_E_NOTFOUND;
    *v = start;
    *vlen = (size_t)(c.p - start);
    return TG_OK;
}

/* Append code point cp as UTF-8. */
static int put_cp(struct tg_buf *out, uint32_t cp)
{
    char u[4];
    return tg_buf_append(out, u, tg_utf8_encode(cp, u));
}

static uint32_t hex4(const char *p)
{
    return (uint32_t)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

int tg_jscan_string(const char *raw, size_t len, struct tg_buf *out)
{
    struct cur c = {raw, raw + len, 0};
    if (!skip_string(&c) || c.p != c.end)
        return TG_E_PARSE;
    const char *p = raw + 1, *end = raw + len - 1, *run = p;
    int rc = TG_OK;
    while (p < end && !rc) {
        if (*p != '\\') {
            p++;
            continue;
        }
        rc = tg_buf_append(out, run, (size_t)(p - run));
        char e = p[1];
        p += 2;
        if (rc)
            break;
        switch (e) {
        case 'b':
            rc = tg_buf_append(out, "\b", 1);
            break;
        case 'f':
            rc = tg_buf_append(out, "\f", 1);
            break;
        case 'n':
            rc = tg_buf_append(out, "\n", 1);
            break;
        case 'r':
            rc = tg_buf_append(out, "\r", 1);
            break;
        case 't':
            rc = tg_buf_append(out, "\t", 1);
            break;
        case 'u': {
            uint32_t cp = hex4(p);
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                uint32_t lo = hex4(p + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF)
                cp = 0xFFFD; /* a lone surrogate is not a character */
            rc = put_cp(out, cp);
            break;
        }
        default:
            rc = tg_buf_append(out, &e, 1);
            break; /* " \ / */
        }
        run = p;
    }
    if (!rc)
        rc = tg_buf_append(out, run, (size_t)(end - run));
    return rc;
}

int tg_jscan_int(const char *raw, size_t len, int64_t *out)
{
    char tmp[32];
    if (len == 0 || len >= sizeof(tmp))
        return TG_E_PARSE;
    memcpy(tmp, raw, len);
    tmp[len] = '\0';
    return tg_parse_i64(tmp, out);
}

bool tg_jscan_is_null(const char *raw, size_t len)
{
    return len == 4 && memcmp(raw, "null", 4) == 0;
}

bool tg_jscan_str_at(const char *text, size_t len, const char *const *path, size_t npath, char *dst,
                     size_t dstlen)
{
    const char *v;
    size_t vl;
    struct tg_buf b;
    bool ok = false;
    if (!dstlen || tg_jscan_find(text, len, path, npath, &v, &vl) || v[0] != '"')
        return false;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    if (tg_jscan_string(v, vl, &b) == TG_OK) {
        tg_strlcpy(dst, b.data ? b.data : "", dstlen);
        ok = true;
    }
    tg_buf_free(&b);
    return ok;
}

int64_t tg_jscan_int_at(const char *text, size_t len, const char *const *path, size_t npath,
                        int64_t def)
{
    const char *v;
    size_t vl;
    int64_t x;
    if (tg_jscan_find(text, len, path, npath, &v, &vl) || tg_jscan_int(v, vl, &x))
        return def;
    return x;
}
