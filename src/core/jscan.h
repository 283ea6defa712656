/*
 * jscan.h - reading a few values out of a JSON document without building
 * a tree.
 *
 * The upstream's chat.completion is read on every turn for five values;
 * parsing it into a jansson tree costs dozens of allocations.  The scanner
 * validates the whole text once (RFC 8259 grammar, UTF-8 in strings, depth
 * limit) and then finds values by path, pointing into the text.
 */
#ifndef TG_JSCAN_H
#define TG_JSCAN_H

#include "core/core.h"

#define TG_JSCAN_DEPTH 64

/* TG_OK when text[0..len) is exactly one valid JSON value (surrounding
 * whitespace allowed), TG_E_PARSE otherwise. */
int tg_jscan_validate(const char *text, size_t len);

/*
 * Find the value at path in a validated document.  path is a list of
 * object keys and array indexes: a string that starts with '#' is an index
 * ("#0"), anything else a key.  On success *v and *vlen give the raw value
 * (for a string, including its quotes).  TG_E_NOTFOUND when the path does
 * not exist.
 */
int tg_jscan_find(const char *text, size_t len, const char *const *path, size_t npath,
                  const char **v, size_t *vlen);

/* Decode a raw JSON string value (with quotes) to UTF-8, appending to out.
 * TG_E_PARSE when raw is not a string. */
int tg_jscan_string(const char *raw, size_t len, struct tg_buf *out);
/* A raw JSON integer; TG_E_PARSE otherwise. */
int tg_jscan_int(const char *raw, size_t len, int64_t *out);
/* The string at path decoded into dst (dstlen bytes, cut to fit); false when
 * absent or not a string, and dst is left as it was. */
bool tg_jscan_str_at(const char *text, size_t len, const char *const *path, size_t npath, char *dst,
                     size_t dstlen);
/* The integer at path, or def when absent or not an integer. */
int64_t tg_jscan_int_at(const char *text, size_t len, const char *const *path, size_t npath,
                        int64_t def);
/* True when the raw value is the literal null. */
bool tg_jscan_is_null(const char *raw, size_t len);

#endif
