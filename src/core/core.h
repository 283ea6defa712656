/*
 * core.h - the foundation every trustgate module stands on: one error type,
 * one allocation entry point, bounded buffers, a per-turn arena, clocks,
 * logging, hashing and identifiers.
 *
 * Nothing here knows about turns, HTTP or storage.  Every other module may
 * include this header; this header includes only libc and jansson.
 */
#ifndef TG_CORE_H
#define TG_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

/* ------------------------------------------------------------------ errors */

/*
 * The one error table: symbol, HTTP status, OpenAI-style error type, text.
 * Everything that needs an error name or status derives it from here.
 */
#define TG_ERR_TABLE(X)                                                                            \
    X(OK, 200, "ok", "success")                                                                    \
    X(NOMEM, 500, "server_error", "out of memory")                                                 \
    X(INVAL, 400, "invalid_request_error", "invalid request")                                      \
    X(PARSE, 400, "invalid_request_error", "malformed input")                                      \
    X(AUTH, 401, "authentication_error", "invalid or missing API key")                             \
    X(FORBIDDEN, 403, "permission_error", "forbidden")                                             \
    X(NOTFOUND, 404, "not_found_error", "not found")                                               \
    X(METHOD, 405, "invalid_request_error", "method not allowed")                                  \
    X(CONFLICT, 409, "conflict_error", "conflict")                                                 \
    X(TOOBIG, 413, "invalid_request_error", "request too large")                                   \
    X(LIMIT, 429, "rate_limit_error", "too many requests")                                         \
    X(INTERNAL, 500, "server_error", "internal error")                                             \
    X(IO, 500, "server_error", "i/o error")                                                        \
    X(DB, 500, "server_error", "storage error")                                                    \
    X(CONFIG, 500, "server_error", "configuration error")                                          \
    X(UPSTREAM, 502, "upstream_error", "upstream failed")                                          \
    X(UNAVAILABLE, 503, "server_error", "service unavailable")                                     \
    X(TIMEOUT, 504, "timeout_error", "upstream timed out")

enum tg_err {
#define TG_ERR_ENUM(sym, status, type, text) TG_E_##sym,
    TG_ERR_TABLE(TG_ERR_ENUM)
#undef TG_ERR_ENUM
        TG_E__COUNT
};
#define TG_OK TG_E_OK

/* Symbolic name ("TOOBIG"), HTTP status, OpenAI error type and text of an error. */
const char *tg_err_name(int err);
int tg_err_status(int err);
const char *tg_err_type(int err);
const char *tg_err_str(int err);

/* ------------------------------------------------------------------ memory */

/*
 * All heap allocation goes through these so tests can make the Nth
 * allocation fail (tg_mem_fail_after).  They behave like their libc
 * namesakes; tg_free(NULL) is a no-op.
 */
void *tg_malloc(size_t n);
void *tg_calloc(size_t count, size_t size);
void *tg_realloc(void *p, size_t n);
void tg_free(void *p);
char *tg_strdup(const char *s);
char *tg_strndup(const char *s, size_t n);

/*
 * The growable array: room in *(T **)arr (n elements of elem bytes used,
 * *cap allocated) for at least one more, doubling from first when full.
 * Call as tg_grow(&v, &cap, n, sizeof(*v), 16).  TG_OK; TG_E_NOMEM (the
 * array unchanged) or TG_E_TOOBIG when the size would overflow.
 */
int tg_grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first);

/* Test hook: after n more successful allocations, every allocation fails.
 * n < 0 switches failure injection off (the default). */
void tg_mem_fail_after(long n);
/* Test hook: the allocation after n more successful ones fails, and only
 * that one (what a caller that ignores one failure would get away with).
 * n < 0 switches it off.  Returns how many allocations were still to go
 * before the armed failure, or a negative number when none was armed or
 * it has fired. */
long tg_mem_fail_once(long n);

/*
 * Arena: memory for one turn, released at once by tg_arena_free().
 * Allocations are 16-byte aligned and never freed individually.
 * Returns NULL on allocation failure.
 */
struct tg_arena_chunk;
struct tg_arena {
    struct tg_arena_chunk *head;
    size_t chunk_size;
    size_t total;
};
void tg_arena_init(struct tg_arena *a, size_t chunk_size);
void *tg_arena_alloc(struct tg_arena *a, size_t n);
char *tg_arena_strndup(struct tg_arena *a, const char *s, size_t n);
char *tg_arena_strdup(struct tg_arena *a, const char *s);
char *tg_arena_printf(struct tg_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void tg_arena_free(struct tg_arena *a);

/* ------------------------------------------------------------------ buffers */

/*
 * A growable byte buffer with a hard maximum.  data is always
 * NUL-terminated (when non-NULL) so it may be used as a C string.
 * Appends past max fail with TG_E_TOOBIG and leave the buffer unchanged.
 */
struct tg_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};
#define TG_BUF_UNLIMITED ((size_t)-1)
void tg_buf_init(struct tg_buf *b, size_t max);
int tg_buf_append(struct tg_buf *b, const void *p, size_t n);
/* Make room for n more bytes (plus the terminator) without changing len. */
int tg_buf_reserve(struct tg_buf *b, size_t n);
int tg_buf_puts(struct tg_buf *b, const char *s);
int tg_buf_printf(struct tg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tg_buf_vprintf(struct tg_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void tg_buf_reset(struct tg_buf *b);
/* Append the whole file at path to b.  TG_E_NOTFOUND when it cannot be
 * opened (errno kept), TG_E_IO on a read error, TG_E_TOOBIG past b's max. */
int tg_buf_read_file(struct tg_buf *b, const char *path);
void tg_buf_free(struct tg_buf *b);
/* Take ownership of the data (caller tg_free()s it); the buffer is left empty. */
char *tg_buf_steal(struct tg_buf *b, size_t *len);

/* ------------------------------------------------------------------ strings */

/* Bounded copy: copies at most size-1 bytes and always terminates (size > 0).
 * Returns strlen(src); truncation happened when the result >= size. */
size_t tg_strlcpy(char *dst, const char *src, size_t size);
/* Parse a whole string as a number.  Return TG_E_PARSE on junk or range. */
int tg_parse_i64(const char *s, int64_t *out);
int tg_parse_u64(const char *s, uint64_t *out);
int tg_parse_double(const char *s, double *out);
/* "150ms", "10s", "2m", "1h", or a bare number of milliseconds. */
int tg_parse_duration_ms(const char *s, int64_t *out);
/* "1048576", "64k", "1MiB", "1MB", "2G". */
int tg_parse_size(const char *s, uint64_t *out);
bool tg_str_has_prefix(const char *s, const char *prefix);
bool tg_str_eq_nocase(const char *a, const char *b);
/* Scale v (n floats) to unit length in place; false (v untouched) for a
 * zero or non-finite vector. */
bool tg_unit_vector(float *v, size_t n);

/*
 * FNV-1a (Fowler, Noll and Vo; the offset bases and primes of the
 * published parameters): tg_fnv1a64 continues from h (TG_FNV64_INIT to
 * start), so a hash can be built from pieces; tg_fnv1a64_byte adds one
 * byte.  For hash tables and slots, never where someone may choose keys
 * to collide against us (they are not keyed).
 */
#define TG_FNV64_INIT 14695981039346656037ULL
#define TG_FNV64_PRIME 1099511628211ULL
uint64_t tg_fnv1a64(const void *p, size_t n, uint64_t h);
static inline uint64_t tg_fnv1a64_byte(uint64_t h, unsigned char b)
{
    return (h ^ b) * TG_FNV64_PRIME;
}
uint32_t tg_fnv1a32(const void *p, size_t n);

/* Decode one UTF-8 character of s (len bytes available) into *cp; returns
 * its length, or 0 when the bytes are not valid UTF-8 (overlong forms,
 * surrogates and values past U+10FFFF included) or len is 0. */
size_t tg_utf8_decode(const void *s, size_t len, uint32_t *cp);
/* Encode code point cp (at most U+10FFFF) as UTF-8 into out; its length (1..4). */
size_t tg_utf8_encode(uint32_t cp, char out[4]);
/* The character ending at byte pos of s: its start (pos when pos is 0, with
 * *cp = 0); bytes that are not valid UTF-8 give U+FFFD one byte back. */
size_t tg_utf8_prev(const void *s, size_t pos, uint32_t *cp);
/* Are the len bytes at s all valid UTF-8 (as tg_utf8_decode reads it)?
 * Tells a string jansson refuses apart from one it had no memory for. */
bool tg_utf8_valid(const void *s, size_t len);

/* ------------------------------------------------------------------ clocks */

int64_t tg_clock_mono_ns(void); /* monotonic, for durations */
int64_t tg_clock_wall_ms(void); /* Unix time in milliseconds */
/* Tests only: move tg_clock_wall_ms forward by ms (deadlines, lapses, restarts). */
void tg_clock_advance_ms(int64_t ms);

/* ------------------------------------------------------------------ logging */

enum tg_log_level { TG_LOG_DEBUG, TG_LOG_INFO, TG_LOG_WARN, TG_LOG_ERROR, TG_LOG_OFF };
void tg_log_set_level(enum tg_log_level lv);
int tg_log_parse_level(const char *s, enum tg_log_level *out);
/* Whether messages at lv are written. */
bool tg_log_enabled(enum tg_log_level lv);
/* One line of text as it is (already formatted, e.g. JSON) to stderr, at level info. */
void tg_log_line(const char *text, size_t len);
/* One human-readable line to stderr: "<iso time> <level> <message>". */
void tg_log(enum tg_log_level lv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One JSON object as one line to stderr (structured per-turn log), at level info. */
void tg_log_json(const json_t *obj);
#define tg_debug(...) tg_log(TG_LOG_DEBUG, __VA_ARGS__)
#define tg_info(...) tg_log(TG_LOG_INFO, __VA_ARGS__)
#define tg_warn(...) tg_log(TG_LOG_WARN, __VA_ARGS__)
#define tg_error(...) tg_log(TG_LOG_ERROR, __VA_ARGS__)

/* ------------------------------------------------------------------ crypto */

#define TG_SHA256_LEN 32
void tg_sha256(const void *data, size_t len, uint8_t out[TG_SHA256_LEN]);
/* SHA-256 over the concatenation of n parts.  False, with out zeroed, when
 * libcrypto fails (allocation). */
bool tg_sha256_parts(const void *const parts[], const size_t lens[], size_t n,
                     uint8_t out[TG_SHA256_LEN]);
void tg_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                    uint8_t out[TG_SHA256_LEN]);
/* Fill buf with cryptographically strong random bytes; TG_E_INTERNAL on failure. */
int tg_random_bytes(void *buf, size_t n);
/* Constant-time comparison of two equal-length byte strings. */
bool tg_ct_equal(const void *a, const void *b, size_t n);
/* Lower-case hex; out must hold 2*n+1 bytes. */
void tg_hex_encode(const uint8_t *in, size_t n, char *out);
/* Decode exactly 2*n hex digits into n bytes; TG_E_PARSE otherwise. */
int tg_hex_decode(const char *in, uint8_t *out, size_t n);

/* Passwords: OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256. */
#define TG_PBKDF2_ITERATIONS 600000
#define TG_PASSWORD_HASH_MAX 160
/*
 * Hash a password as "pbkdf2-sha256$ITERATIONS$SALT$HASH" (salt 16 random
 * bytes and hash 32 bytes, both in hex).  TG_OK or TG_E_INTERNAL.
 */
int tg_password_hash(const char *password, uint32_t iterations, char out[TG_PASSWORD_HASH_MAX]);
/* TG_OK when password matches encoded, TG_E_AUTH when not, TG_E_PARSE when
 * encoded is not a hash tg_password_hash writes.  Constant time in the hash. */
int tg_password_verify(const char *password, const char *encoded);
/* Is encoded well formed (for the config check)? */
bool tg_password_hash_valid(const char *encoded);

/* ------------------------------------------------------------------ ids */

/*
 * A new identifier "<prefix>_<12 hex ms time><16 hex random>": unique,
 * sortable by creation time.  out must hold TG_ID_MAX bytes.
 */
#define TG_ID_MAX 48
int tg_id_new(const char *prefix, char out[TG_ID_MAX]);

/* ------------------------------------------------------------------ json */

/* Canonical JSON: sorted keys, no insignificant whitespace, UTF-8 kept as is.
 * Returns a tg_malloc'd string the caller frees, or NULL on failure. */
char *tg_json_canonical(const json_t *v, size_t *len);
/*
 * json_dumps that fails whole: the text of v with jansson's flags (tg_free
 * it), or NULL when v is NULL, cannot be encoded or an allocation failed
 * anywhere on the way.  jansson's own json_dumps can return a text with a
 * piece missing when memory runs out while it writes an object's key (its
 * dumper ignores that failure); this one writes through a buffer whose
 * failure is remembered.
 */
char *tg_json_dumps(const json_t *v, size_t flags);
/* Typed getters that tolerate absent keys: return def when absent or of another type. */
const char *tg_json_str(const json_t *obj, const char *key, const char *def);
int64_t tg_json_int(const json_t *obj, const char *key, int64_t def);
double tg_json_num(const json_t *obj, const char *key, double def);
bool tg_json_bool(const json_t *obj, const char *key, bool def);
/*
 * Checked construction.  Each steals v: the container owns it on success
 * and v is released on failure, so a call may take a constructor's result
 * unchecked, as in tg_json_set(o, "k", json_string(s)).  TG_OK, or
 * TG_E_NOMEM when v is NULL (its constructor failed) or the container
 * could not grow, or when the container itself is NULL (its constructor
 * failed); the container is then unchanged.  A container of another type
 * is TG_E_INTERNAL.
 */
int tg_json_set(json_t *obj, const char *key, json_t *v);
int tg_json_push(json_t *arr, json_t *v);

/* Invariants: checked in every build; a broken invariant aborts with its place. */
#define TG_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            tg_assert_fail(#cond, __FILE__, __LINE__);                                             \
    } while (0)
void tg_assert_fail(const char *cond, const char *file, int line) __attribute__((noreturn));

#define TG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TG_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ------------------------------------------------------------ scanning eight bytes at a time */

/* The eight bytes at p (any alignment) as a little- or big-endian word: only
 * which bytes match matters, not where. */
static inline uint64_t tg_swar_load(const char *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof(x));
    return x;
}
/* Does any of the eight bytes at p need escaping in a JSON string: a control
 * character (< 0x20), '"' or '\\'?  (Bytes >= 0x80 do not.) */
static inline bool tg_swar_special(const char *p)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t x = tg_swar_load(p);
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    /* a byte is below 0x20, or zero after the xor, exactly when (v - k) borrows into
     * its high bit while v's own high bit was clear */
    uint64_t lt = (x - ones * 0x20) & ~x;
    uint64_t zq = (q - ones) & ~q, zb = (b - ones) & ~b;
    return ((lt | zq | zb) & highs) != 0;
}
/* Is any of the eight bytes at p 0x80 or above (a UTF-8 sequence)? */
static inline bool tg_swar_high(const char *p)
{
    return (tg_swar_load(p) & 0x8080808080808080ULL) != 0;
}

#endif
