/*
 * jw.c - the JSON writer.  See jw.h.
 */
#include "core/jw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tg_jw_init(struct tg_jw *w, struct tg_buf *b)
{
    memset(w, 0, sizeof(*w));
    w->b = b;
    w->first[0] = true;
}

static void put(struct tg_jw *w, const char *s, size_t n)
{
    struct tg_buf *b = w->b;
    /* Fast path: room already there (the usual case after the first turns). */
    if (!w->err && b->cap - b->len > n && b->max - b->len >= n) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
        return;
    }
    if (!w->err)
        w->err = tg_buf_append(b, s, n);
}

/* Separator before a value or a key. */
static void sep(struct tg_jw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (!w->first[w->depth])
        put(w, ",", 1);
    w->first[w->depth] = false;
}

static void open_container(struct tg_jw *w, char c)
{
    sep(w);
    put(w, &c, 1);
    if (w->depth + 1 >= TG_JW_DEPTH) {
        if (!w->err)
            w->err = TG_E_TOOBIG;
        return;
    }
    w->depth++;
    w->first[w->depth] = true;
    w->close[w->depth] = c == '{' ? '}' : ']';
}

void tg_jw_obj(struct tg_jw *w)
{
    open_container(w, '{');
}

void tg_jw_arr(struct tg_jw *w)
{
    open_container(w, '[');
}

void tg_jw_end(struct tg_jw *w)
{
    if (w->depth == 0) {
        if (!w->err)
            w->err = TG_E_INVAL;
        return;
    }
    put(w, &w->close[w->depth], 1);
    w->depth--;
    w->after_key = false;
}

static void string(struct tg_jw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    put(w, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        /* eight bytes at a time while none needs escaping */
        while (i + 8 <= n && !tg_swar_special(s + i))
            i += 8;
        if (i >= n)
            break;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(w, s + start, i - start);
        start = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t el = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        }
        put(w, esc, el);
    }
    put(w, s + start, n - start);
    put(w, "\"", 1);
}

void tg_jw_key(struct tg_jw *w, const char *key)
{
    sep(w);
    string(w, key, strlen(key));
    put(w, ":", 1);
    w->after_key = true;
}

void tg_jw_strn(struct tg_jw *w, const char *s, size_t n)
{
    sep(w);
    string(w, s, n);
}

void tg_jw_str(struct tg_jw *w, const char *s)
{
    if (!s) {
        tg_jw_null(w);
        return;
    }
    tg_jw_strn(w, s, strlen(s));
}

void tg_jw_int(struct tg_jw *w, int64_t v)
{
    char num[24];
    char *p = num + sizeof(num);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    sep(w);
    put(w, p, (size_t)(num + sizeof(num) - p));
}

void tg_jw_real(struct tg_jw *w, double v)
{
    char num[48];
    int n;
    if (!isfinite(v)) {
        tg_jw_null(w);
        return;
    }
    double a = fabs(v);
    if (a >= 1e-6 && a < 1e12) {
        /* Integer arithmetic for the common case: printf's float formatting
         * costs more than the rest of a short JSON document. */
        uint64_t micro = (uint64_t)llround(a * 1e6);
        uint64_t ip = micro / 1000000, fp = micro % 1000000;
        char *p = num;
        if (v < 0)
            *p++ = '-';
        char digits[24];
        int nd = 0;
        do {
            digits[nd++] = (char)('0' + ip % 10);
            ip /= 10;
        } while (ip);
        while (nd)
            *p++ = digits[--nd];
        *p++ = '.';
        int dec = 6;
        while (dec > 1 && fp % 10 == 0) {
            fp /= 10;
            dec--;
        }
        for (int i = dec - 1; i >= 0; i--) {
            p[i] = (char)('0' + fp % 10);
            fp /= 10;
        }
        p += dec;
        n = (int)(p - num);
    } else if (a == 0) {
        n = snprintf(num, sizeof(num), "0.0");
    } else {
        n = snprintf(num, sizeof(num), "%.17g", v);
        if (!strpbrk(num, ".eEn"))
            n += snprintf(num + n, sizeof(num) - (size_t)n, ".0");
    }
    sep(w);
    put(w, num, (size_t)n);
}

void tg_jw_bool(struct tg_jw *w, bool v)
{
    sep(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void tg_jw_null(struct tg_jw *w)
{
    sep(w);
    put(w, "null", 4);
}

void tg_jw_raw(struct tg_jw *w, const char *json, size_t n)
{
    sep(w);
    put(w, json, n);
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void object(struct tg_jw *w, const json_t *v)
{
    size_t n = json_object_size(v);
    const char *small[32];
    const char **keys = n <= 32 ? small : tg_malloc(n * sizeof(*keys));
    const char *k;
    json_t *val;
    size_t i = 0;
    if (!keys) {
        if (!w->err)
            w->err = TG_E_NOMEM;
        return;
    }
    json_object_foreach((json_t *)v, k, val) keys[i++] = k;
    if (w->sorted)
        qsort(keys, n, sizeof(*keys), cmp_keys);
    tg_jw_obj(w);
    for (i = 0; i < n; i++) {
        tg_jw_key(w, keys[i]);
        tg_jw_json(w, json_object_get(v, keys[i]));
    }
    tg_jw_end(w);
    if (keys != small)
        tg_free(keys);
}

void tg_jw_json(struct tg_jw *w, const json_t *v)
{
    size_t i;
    json_t *e;
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_OBJECT:
        object(w, v);
        break;
    case JSON_ARRAY:
        tg_jw_arr(w);
        json_array_foreach((json_t *)v, i, e) tg_jw_json(w, e);
        tg_jw_end(w);
        break;
    case JSON_STRING:
        tg_jw_strn(w, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        tg_jw_int(w, (int64_t)json_integer_value(v));
        break;
    case JSON_REAL:
        tg_jw_real(w, json_real_value(v));
        break;
    case JSON_TRUE:
        tg_jw_bool(w, true);
        break;
    case JSON_FALSE:
        tg_jw_bool(w, false);
        break;
    default:
        tg_jw_null(w);
        break;
    }
}

int tg_jw_finish(struct tg_jw *w)
{
    if (!w->err && w->depth != 0)
        w->err = TG_E_INVAL;
    return w->err;
}

void tg_jw_kstr(struct tg_jw *w, const char *key, const char *s)
{
    tg_jw_key(w, key);
    tg_jw_str(w, s);
}

void tg_jw_kint(struct tg_jw *w, const char *key, int64_t v)
{
    tg_jw_key(w, key);
    tg_jw_int(w, v);
}
