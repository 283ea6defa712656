/*
 * core.c - errors, allocation, arena, buffers, string parsing, clocks,
 * logging, hashing and identifiers.  See core.h for the contracts.
 */
#include "core.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

/* ------------------------------------------------------------------ errors */

struct err_info {
    const char *name;
    int status;
    const char *type;
    const char *text;
};

static const struct err_info err_table[] = {
#define TG_ERR_ROW(sym, status, type, text) {#sym, status, type, text},
    TG_ERR_TABLE(TG_ERR_ROW)
#undef TG_ERR_ROW
};

static const struct err_info *err_lookup(int err)
{
    if (err < 0 || err >= TG_E__COUNT)
        err = TG_E_INTERNAL;
    return &err_table[err];
}

const char *tg_err_name(int err)
{
    return err_lookup(err)->name;
}

int tg_err_status(int err)
{
    return err_lookup(err)->status;
}

const char *tg_err_type(int err)
{
    return err_lookup(err)->type;
}

const char *tg_err_str(int err)
{
    return err_lookup(err)->text;
}

/* ------------------------------------------------------------------ memory */

/* Failure injection for tests; the only process-wide mutable state here. */
static atomic_long mem_budget = -1;
static atomic_long mem_once = -1;

void tg_mem_fail_after(long n)
{
    atomic_store(&mem_budget, n);
}

long tg_mem_fail_once(long n)
{
    return atomic_exchange(&mem_once, n < 0 ? -1 : n);
}

static bool mem_should_fail(void)
{
    long b = atomic_load(&mem_budget);
    long o = atomic_load(&mem_once);
    /* the one-shot counts down to 0, fails there once, then rests at -1 */
    if (o >= 0 && atomic_fetch_sub(&mem_once, 1) == 0)
        return true;
    if (b < 0)
        return false;
    if (b == 0)
        return true;
    atomic_fetch_sub(&mem_budget, 1);
    return false;
}

void *tg_malloc(size_t n)
{
    if (mem_should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *tg_calloc(size_t count, size_t size)
{
    if (mem_should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *tg_realloc(void *p, size_t n)
{
    if (mem_should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void tg_free(void *p)
{
    free(p);
}

int tg_grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first)
{
    void **v = arr;
    if (n < *cap)
        return TG_OK;
    size_t nc = *cap ? *cap * 2 : (first ? first : 1);
    if (nc < n + 1)
        nc = n + 1;
    if (!elem || nc > SIZE_MAX / elem)
        return TG_E_TOOBIG;
    void *nv = tg_realloc(*v, nc * elem);
    if (!nv)
        return TG_E_NOMEM;
    *v = nv;
    *cap = nc;
    return TG_OK;
}

char *tg_strndup(const char *s, size_t n)
{
    char *d = tg_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *tg_strdup(const char *s)
{
    return tg_strndup(s, strlen(s));
}

/* ------------------------------------------------------------------ arena */

struct tg_arena_chunk {
    struct tg_arena_chunk *next;
    size_t used;
    size_t size;
    _Alignas(16) unsigned char mem[];
};

void tg_arena_init(struct tg_arena *a, size_t chunk_size)
{
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 4096;
    a->total = 0;
}

void *tg_arena_alloc(struct tg_arena *a, size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    struct tg_arena_chunk *c = a->head;
    if (need < n)
        return NULL;
    if (!c || c->size - c->used < need) {
        size_t sz = need > a->chunk_size ? need : a->chunk_size;
        c = tg_malloc(sizeof(*c) + sz);
        if (!c)
            return NULL;
        c->used = 0;
        c->size = sz;
        /* A large one-off block goes behind the head so the head keeps its free space. */
        if (a->head && sz > a->chunk_size) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
        a->total += sz;
    }
    void *p = c->mem + c->used;
    c->used += need;
    return p;
}

char *tg_arena_strndup(struct tg_arena *a, const char *s, size_t n)
{
    char *d = tg_arena_alloc(a, n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *tg_arena_strdup(struct tg_arena *a, const char *s)
{
    return tg_arena_strndup(a, s, strlen(s));
}

char *tg_arena_printf(struct tg_arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *d = NULL;
    if (n >= 0) {
        d = tg_arena_alloc(a, (size_t)n + 1);
        if (d)
            vsnprintf(d, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    return d;
}

void tg_arena_free(struct tg_arena *a)
{
    struct tg_arena_chunk *c = a->head;
    while (c) {
        struct tg_arena_chunk *n = c->next;
        tg_free(c);
        c = n;
    }
    a->head = NULL;
    a->total = 0;
}

/* ------------------------------------------------------------------ buffers */

void tg_buf_init(struct tg_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

static int buf_reserve(struct tg_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return TG_E_TOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return TG_OK;
    size_t cap = b->cap ? b->cap : 1024; /* most documents fit at once */
    while (cap < need)
        cap *= 2;
    char *d = tg_realloc(b->data, cap);
    if (!d)
        return TG_E_NOMEM;
    b->data = d;
    b->cap = cap;
    return TG_OK;
}

int tg_buf_reserve(struct tg_buf *b, size_t n)
{
    return buf_reserve(b, n);
}

int tg_buf_read_file(struct tg_buf *b, const char *path)
{
    FILE *f = fopen(path, "rb");
    char chunk[65536];
    size_t n;
    int rc = TG_OK;
    if (!f)
        return TG_E_NOTFOUND;
    while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = tg_buf_append(b, chunk, n);
    if (!rc && ferror(f))
        rc = TG_E_IO;
    fclose(f);
    return rc;
}

int tg_buf_append(struct tg_buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return TG_OK;
}

int tg_buf_puts(struct tg_buf *b, const char *s)
{
    return tg_buf_append(b, s, strlen(s));
}

int tg_buf_vprintf(struct tg_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return TG_E_INVAL;
    int rc = buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return TG_OK;
}

int tg_buf_printf(struct tg_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = tg_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void tg_buf_reset(struct tg_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void tg_buf_free(struct tg_buf *b)
{
    tg_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *tg_buf_steal(struct tg_buf *b, size_t *len)
{
    char *d = b->data;
    if (!d)
        d = tg_strdup("");
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

/* ------------------------------------------------------------------ JSON text */

struct dump_ctx {
    struct tg_buf b;
    bool failed; /* sticky: jansson does not always stop at the first failure */
};

static int dump_cb(const char *buf, size_t size, void *data)
{
    struct dump_ctx *d = data;
    if (d->failed || tg_buf_append(&d->b, buf, size)) {
        d->failed = true;
        return -1;
    }
    return 0;
}

char *tg_json_dumps(const json_t *v, size_t flags)
{
    struct dump_ctx d = {.failed = false};
    tg_buf_init(&d.b, TG_BUF_UNLIMITED);
    if (!v || json_dump_callback(v, dump_cb, &d, flags) != 0 || d.failed || !d.b.len) {
        tg_buf_free(&d.b);
        return NULL;
    }
    return tg_buf_steal(&d.b, NULL);
}

/* ------------------------------------------------------------------ strings */

size_t tg_strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = strlen(src);
    if (size) {
        size_t c = n < size - 1 ? n : size - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

int tg_parse_i64(const char *s, int64_t *out)
{
    char *end = NULL;
    if (!s || !*s || isspace((unsigned char)*s))
        return TG_E_PARSE;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return TG_E_PARSE;
    *out = v;
    return TG_OK;
}

int tg_parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    if (!s || !isdigit((unsigned char)*s))
        return TG_E_PARSE;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return TG_E_PARSE;
    *out = v;
    return TG_OK;
}

int tg_parse_double(const char *s, double *out)
{
    char *end = NULL;
    if (!s || !*s || isspace((unsigned char)*s))
        return TG_E_PARSE;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return TG_E_PARSE;
    *out = v;
    return TG_OK;
}

/* Parse "<number><suffix>" where suffix is looked up in a table of multipliers. */
struct unit {
    const char *suffix;
    double mult;
};

static int parse_with_units(const char *s, const struct unit *units, size_t nunits, double *out)
{
    char *end = NULL;
    if (!s || !*s || isspace((unsigned char)*s) || *s == '-')
        return TG_E_PARSE;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0)
        return TG_E_PARSE;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < nunits; i++) {
        if (tg_str_eq_nocase(end, units[i].suffix)) {
            *out = v * units[i].mult;
            return TG_OK;
        }
    }
    return TG_E_PARSE;
}

int tg_parse_duration_ms(const char *s, int64_t *out)
{
    static const struct unit units[] = {
        {"", 1},        {"ms", 1},      {"s", 1000},     {"m", 60000},
        {"min", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    double v;
    int rc = parse_with_units(s, units, TG_ARRAY_LEN(units), &v);
    if (rc || v > 9.0e15)
        return TG_E_PARSE;
    *out = (int64_t)llround(v);
    return TG_OK;
}

int tg_parse_size(const char *s, uint64_t *out)
{
    static const struct unit units[] = {
        {"", 1},           {"b", 1},           {"k", 1024},         {"kb", 1000},
        {"kib", 1024},     {"m", 1048576},     {"mb", 1000000},     {"mib", 1048576},
        {"g", 1073741824}, {"gb", 1000000000}, {"gib", 1073741824},
    };
    double v;
    int rc = parse_with_units(s, units, TG_ARRAY_LEN(units), &v);
    if (rc || v > 1.8e19)
        return TG_E_PARSE;
    *out = (uint64_t)llround(v);
    return TG_OK;
}

bool tg_str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool tg_unit_vector(float *v, size_t n)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += (double)v[i] * v[i];
    if (!(ss > 0) || !isfinite(ss))
        return false;
    double inv = 1.0 / sqrt(ss);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(v[i] * inv);
    return true;
}

bool tg_str_eq_nocase(const char *a, const char *b)
{
    while (*a && *b) {
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
        a++;
        b++;
    }
    return *a == *b;
}

size_t tg_utf8_decode(const void *str, size_t len, uint32_t *cp)
{
    const unsigned char *s = str;
    size_t n;
    uint32_t c;
    if (len == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2;
        c = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        c = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        c = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
        (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

size_t tg_utf8_prev(const void *str, size_t pos, uint32_t *cp)
{
    const unsigned char *s = str;
    size_t b;
    *cp = 0;
    if (pos == 0)
        return 0;
    b = pos - 1;
    if (s[b] < 0x80) {
        *cp = s[b];
        return b;
    }
    while (b > 0 && pos - b < 4 && (s[b] & 0xC0) == 0x80)
        b--;
    if (tg_utf8_decode(s + b, pos - b, cp) != pos - b) {
        *cp = 0xFFFD;
        b = pos - 1;
    }
    return b;
}

bool tg_utf8_valid(const void *str, size_t len)
{
    const char *s = str;
    size_t i = 0, k = 1;
    uint32_t cp;
    while (i < len && k) {
        k = tg_utf8_decode(s + i, len - i, &cp);
        i += k;
    }
    return i == len;
}

/* ------------------------------------------------------------------ clocks */

int64_t tg_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Tests move the wall clock forward instead of waiting (tg_clock_advance_ms). */
static _Atomic int64_t wall_offset_ms;

int64_t tg_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + wall_offset_ms;
}

void tg_clock_advance_ms(int64_t ms)
{
    wall_offset_ms += ms;
}

/* ------------------------------------------------------------------ logging */

/* Set once at start-up, before any thread starts. */
static enum tg_log_level log_level = TG_LOG_INFO;

void tg_log_set_level(enum tg_log_level lv)
{
    log_level = lv;
}

int tg_log_parse_level(const char *s, enum tg_log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    for (size_t i = 0; i < TG_ARRAY_LEN(names); i++) {
        if (tg_str_eq_nocase(s, names[i])) {
            *out = (enum tg_log_level)i;
            return TG_OK;
        }
    }
    return TG_E_PARSE;
}

void tg_log(enum tg_log_level lv, const char *fmt, ...)
{
    static const char *tags[] = {"debug", "info", "warn", "error"};
    if (lv < log_level || lv >= TG_LOG_OFF)
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int off = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    off += snprintf(line + off, sizeof(line) - (size_t)off, ".%03ldZ %s ", ts.tv_nsec / 1000000,
                    tags[lv]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + off, sizeof(line) - (size_t)off, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

bool tg_log_enabled(enum tg_log_level lv)
{
    return lv >= log_level && lv < TG_LOG_OFF;
}

void tg_log_line(const char *text, size_t len)
{
    if (log_level > TG_LOG_INFO)
        return;
    /* One write, so lines from concurrent processes sharing the file do not interleave. */
    fprintf(stderr, "%.*s\n", (int)len, text);
}

void tg_log_json(const json_t *obj)
{
    if (log_level > TG_LOG_INFO)
        return;
    char *s = tg_json_dumps(obj, JSON_COMPACT);
    if (s) {
        fprintf(stderr, "%s\n", s);
        tg_free(s);
    }
}

/* ------------------------------------------------------------------ crypto */

void tg_sha256(const void *data, size_t len, uint8_t out[TG_SHA256_LEN])
{
    const void *parts[1] = {data};
    const size_t lens[1] = {len};
    tg_sha256_parts(parts, lens, 1, out);
}

/*
 * HMAC-SHA-256 as RFC 2104 defines it, H((K ^ opad) || H((K ^ ipad) || m)),
 * on the reused per-thread digest context: OpenSSL's one-shot HMAC() fetches
 * and frees a MAC context on every call, which cost more than the hashing
 * for the short texts digested on every turn.
 */
void tg_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                    uint8_t out[TG_SHA256_LEN])
{
    uint8_t k[64] = {0}, ipad[64], opad[64], inner[TG_SHA256_LEN];
    if (keylen > sizeof(k))
        tg_sha256(key, keylen, k); /* a longer key is hashed first */
    else if (keylen)
        memcpy(k, key, keylen);
    for (size_t i = 0; i < sizeof(k); i++) {
        ipad[i] = (uint8_t)(k[i] ^ 0x36);
        opad[i] = (uint8_t)(k[i] ^ 0x5c);
    }
    const void *in_parts[2] = {ipad, data};
    const size_t in_lens[2] = {sizeof(ipad), len};
    const void *out_parts[2] = {opad, inner};
    const size_t out_lens[2] = {sizeof(opad), sizeof(inner)};
    tg_sha256_parts(in_parts, in_lens, 2, inner);
    tg_sha256_parts(out_parts, out_lens, 2, out);
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(ipad, sizeof(ipad));
    OPENSSL_cleanse(opad, sizeof(opad));
}

int tg_random_bytes(void *buf, size_t n)
{
    /* Small requests (identifiers) come from a per-thread pool refilled
     * 512 bytes at a time: one DRBG call instead of one per identifier. */
    static _Thread_local uint8_t pool[512];
    static _Thread_local size_t left;
    if (n > sizeof(pool) / 4)
        return RAND_bytes(buf, (int)n) == 1 ? TG_OK : TG_E_INTERNAL;
    if (left < n) {
        if (RAND_bytes(pool, (int)sizeof(pool)) != 1)
            return TG_E_INTERNAL;
        left = sizeof(pool);
    }
    memcpy(buf, pool + sizeof(pool) - left, n);
    memset(pool + sizeof(pool) - left, 0, n);
    left -= n;
    return TG_OK;
}

bool tg_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

void tg_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int tg_hex_decode(const char *in, uint8_t *out, size_t n)
{
    if (strlen(in) != 2 * n)
        return TG_E_PARSE;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return TG_E_PARSE;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return TG_OK;
}

/* ------------------------------------------------------------------ ids */

int tg_id_new(const char *prefix, char out[TG_ID_MAX])
{
    uint8_t raw[14];
    uint64_t ms = (uint64_t)tg_clock_wall_ms();
    for (int i = 0; i < 6; i++)
        raw[i] = (uint8_t)(ms >> (8 * (5 - i)));
    if (tg_random_bytes(raw + 6, 8))
        return TG_E_INTERNAL;
    char hex[29];
    tg_hex_encode(raw, sizeof(raw), hex);
    int n = snprintf(out, TG_ID_MAX, "%s_%s", prefix, hex);
    return n > 0 && n < TG_ID_MAX ? TG_OK : TG_E_INVAL;
}

/* ------------------------------------------------------------------ json */

char *tg_json_canonical(const json_t *v, size_t *len)
{
    char *s = tg_json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (s && len)
        *len = strlen(s);
    return s;
}

const char *tg_json_str(const json_t *obj, const char *key, const char *def)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : def;
}

int64_t tg_json_int(const json_t *obj, const char *key, int64_t def)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

double tg_json_num(const json_t *obj, const char *key, double def)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : def;
}

bool tg_json_bool(const json_t *obj, const char *key, bool def)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

/* jansson's *_new setters release v themselves when they fail, so v is
 * released here only on the paths that never reach them. */
int tg_json_set(json_t *obj, const char *key, json_t *v)
{
    int rc = TG_OK;
    if (!obj || !v) {
        rc = TG_E_NOMEM;
        json_decref(v);
    } else if (!json_is_object(obj) || !key) {
        rc = TG_E_INTERNAL;
        json_decref(v);
    } else if (json_object_set_new(obj, key, v)) {
        rc = TG_E_NOMEM;
    }
    return rc;
}

int tg_json_push(json_t *arr, json_t *v)
{
    int rc = TG_OK;
    if (!arr || !v) {
        rc = TG_E_NOMEM;
        json_decref(v);
    } else if (!json_is_array(arr)) {
        rc = TG_E_INTERNAL;
        json_decref(v);
    } else if (json_array_append_new(arr, v)) {
        rc = TG_E_NOMEM;
    }
    return rc;
}

void tg_assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "trustgate: invariant failed at %s:%d: %s\n", file, line, cond);
    abort();
}

uint64_t tg_fnv1a64(const void *p, size_t n, uint64_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = tg_fnv1a64_byte(h, s[i]);
    return h;
}

uint32_t tg_fnv1a32(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 16777619u;
    return h;
}

size_t tg_utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
