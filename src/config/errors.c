/*
 * errors.c - the config's error lists: "FILE:LINE: message" strings, and
 * unknown keys reported with the known key they are closest to.  See
 * config.h (tg_config_errorf, tg_config_check_keys).
 */
#include "config/config_int.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ error lists */

/* Replace bytes that are not printable ASCII or UTF-8 by '?' (file names may be anything). */
static void sanitize(char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s >= 0x80 || (unsigned char)*s < 0x20)
            *s = '?';
    }
}

int tg_config_verrorf(json_t *errs, const char *path, int line, int col, const char *fmt,
                      va_list ap)
{
    int rc;
    struct tg_buf b;
    if (!errs)
        return TG_OK;
    tg_buf_init(&b, TG_CONFIG_MAX_FILE);
    if (line > 0 && col > 0)
        rc = tg_buf_printf(&b, "%s:%d:%d: ", path, line, col);
    else if (line > 0)
        rc = tg_buf_printf(&b, "%s:%d: ", path, line);
    else
        rc = tg_buf_printf(&b, "%s: ", path);
    if (!rc)
        rc = tg_buf_vprintf(&b, fmt, ap);
    if (rc)
        goto out;
    json_t *msg = json_string(b.data);
    if (!msg) {
        sanitize(b.data);
        msg = json_string(b.data);
    }
    if (json_array_append_new(errs, msg))
        rc = TG_E_NOMEM;
out:
    tg_buf_free(&b);
    return rc;
}

int tg_config_errorf_at(json_t *errs, const char *path, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = tg_config_verrorf(errs, path, line, col, fmt, ap);
    va_end(ap);
    return rc;
}

int tg_config_errorf(json_t *errs, const char *path, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = tg_config_verrorf(errs, path, line, 0, fmt, ap);
    va_end(ap);
    return rc;
}

/* Levenshtein distance; SIZE_MAX for strings too long to be worth comparing. */
static size_t edit_distance(const char *a, const char *b)
{
    enum { MAXLEN = 64 };
    size_t la = strlen(a), lb = strlen(b);
    size_t prev[MAXLEN + 1], cur[MAXLEN + 1];
    if (la > MAXLEN || lb > MAXLEN)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1;
            size_t ins = cur[j - 1] + 1;
            cur[j] = TG_MIN(sub, TG_MIN(del, ins));
        }
        memcpy(prev, cur, (lb + 1) * sizeof(prev[0]));
    }
    return prev[lb];
}

/* The known word closest to word, if it is at edit distance 2 or less. */
const char *tg_config_closest(const char *word, const char *const *known, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, known[i]);
        if (d < best_d) {
            best_d = d;
            best = known[i];
        }
    }
    return best;
}

size_t tg_config_check_keys(json_t *errs, const char *path, const struct tg_config_lines *lines,
                            const json_t *obj, const char *where, const char *const *known,
                            size_t n_known)
{
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool found = false;
        for (size_t i = 0; i < n_known && !found; i++)
            found = strcmp(key, known[i]) == 0;
        if (found)
            continue;
        const char *hint = tg_config_closest(key, known, n_known);
        int line = tg_config_lines_key(lines, obj, key);
        char in[160];
        if (where)
            snprintf(in, sizeof(in), " in %.150s", where);
        else
            tg_strlcpy(in, " at the top level", sizeof(in));
        if (hint)
            tg_config_errorf(errs, path, line, "unknown key '%s'%s (did you mean '%s'?)", key, in,
                             hint);
        else
            tg_config_errorf(errs, path, line, "unknown key '%s'%s", key, in);
        n++;
    }
    return n;
}
