/*
 * jw.h - a fast JSON writer into a tg_buf, for the request path.
 *
 * jansson builds a tree and serialises it through callbacks; on a path
 * measured in microseconds that costs more than the rest of a turn.  The
 * writer appends text directly: compact, keys in the order written (the
 * caller writes them sorted where canonical JSON is needed), strings
 * escaped per RFC 8259 with UTF-8 kept as is.  Input strings must be valid
 * UTF-8 (everything on the request path already passed jansson's parser).
 *
 * Errors (allocation, buffer maximum, nesting deeper than TG_JW_DEPTH) are
 * sticky: the writer stops appending and tg_jw_finish() reports the first.
 */
#ifndef TG_JW_H
#define TG_JW_H

#include "core/core.h"

#define TG_JW_DEPTH 32

struct tg_jw {
    struct tg_buf *b;
    int depth;
    bool first[TG_JW_DEPTH];
    char close[TG_JW_DEPTH];
    bool after_key;
    bool sorted; /* tg_jw_json writes object keys sorted (canonical form) */
    int err;
};

void tg_jw_init(struct tg_jw *w, struct tg_buf *b);
void tg_jw_obj(struct tg_jw *w); /* { */
void tg_jw_end(struct tg_jw *w); /* } or ] */
void tg_jw_arr(struct tg_jw *w); /* [ */
void tg_jw_key(struct tg_jw *w, const char *key);
void tg_jw_str(struct tg_jw *w, const char *s); /* NULL writes null */
void tg_jw_strn(struct tg_jw *w, const char *s, size_t n);
void tg_jw_int(struct tg_jw *w, int64_t v);
/*
 * A real number, always with a decimal point: values from 1e-6 to 1e12 in
 * magnitude rounded to 6 decimals (scores, probabilities and timings need
 * no more, and printf's float formatting is slow), others with %.17g;
 * NaN and infinities as null.
 */
void tg_jw_real(struct tg_jw *w, double v);
void tg_jw_bool(struct tg_jw *w, bool v);
void tg_jw_null(struct tg_jw *w);
/* A jansson value (NULL writes null); object keys sorted when w->sorted. */
void tg_jw_json(struct tg_jw *w, const json_t *v);
/* Already-serialised JSON text, inserted as one value. */
void tg_jw_raw(struct tg_jw *w, const char *json, size_t n);
/* TG_OK when every call succeeded and all containers are closed. */
int tg_jw_finish(struct tg_jw *w);

/* Shorthands for "key": value. */
void tg_jw_kstr(struct tg_jw *w, const char *key, const char *s);
void tg_jw_kint(struct tg_jw *w, const char *key, int64_t v);

#endif
