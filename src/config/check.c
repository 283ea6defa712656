/*
 * check.c - the checks every section shares: typed getters that report a
 * value of the wrong type at its line, and the field tables' kinds
 * (durations, sizes, URLs, paths, ...) applied to a struct.  See
 * config_int.h.
 */
#include "config/config_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ validation */

void tg_config_verr(struct tg_config_vctx *c, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (tg_config_verrorf(c->errs, c->path, line, 0, fmt, ap))
        c->rc = TG_E_NOMEM;
    va_end(ap);
}

const char *tg_config_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "a mapping";
    case JSON_ARRAY:
        return "a list";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* "WHERE must be WANT, not a list" or "WHERE has no value (WANT expected)". */
void tg_config_type_err(struct tg_config_vctx *c, int line, const char *where, const char *want,
                        const json_t *v)
{
    if (json_is_null(v))
        tg_config_verr(c, line, "%s has no value (expected %s)", where, want);
    else
        tg_config_verr(c, line, "%s must be %s, not %s", where, want, tg_config_type_name(v));
}

/* A value whose ${ENV} expansion already failed and was reported. */
bool tg_config_env_failed(const struct tg_config_vctx *c, const json_t *v)
{
    return (tg_config_lines_flags(c->lines, v) & TG_LINE_BADENV) != 0;
}

/* Line of member key of obj, falling back to the line of obj itself. */
int tg_config_key_line(const struct tg_config_vctx *c, const json_t *obj, const char *key)
{
    int line = tg_config_lines_key(c->lines, obj, key);
    return line ? line : tg_config_lines_node(c->lines, obj);
}

/*
 * Member key of parent as a mapping, NULL when absent or null; a type error
 * is reported (and NULL returned) for anything else.
 */
const json_t *tg_config_get_mapping(struct tg_config_vctx *c, const json_t *parent, const char *key,
                                    const char *where)
{
    const json_t *v = json_object_get(parent, key);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_object(v)) {
        if (!tg_config_env_failed(c, v))
            tg_config_type_err(c, tg_config_key_line(c, parent, key), where, "a mapping", v);
        return NULL;
    }
    return v;
}

/* Same for a list. */
const json_t *tg_config_get_list(struct tg_config_vctx *c, const json_t *parent, const char *key,
                                 const char *where)
{
    const json_t *v = json_object_get(parent, key);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_array(v)) {
        if (!tg_config_env_failed(c, v))
            tg_config_type_err(c, tg_config_key_line(c, parent, key), where, "a list", v);
        return NULL;
    }
    return v;
}

int tg_config_set_str(char **dst, const char *s, size_t len)
{
    char *d = tg_strndup(s, len);
    if (!d)
        return TG_E_NOMEM;
    tg_free(*dst);
    *dst = d;
    return TG_OK;
}

/* Names of API keys and backends: 1..63 bytes of [A-Za-z0-9._-]. */
static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= TG_CONFIG_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.'))
            return false;
    }
    return true;
}

/* Check obj.name and copy it into dst; false when absent or bad (reported). */
bool tg_config_get_name(struct tg_config_vctx *c, const json_t *obj, const char *where, int line,
                        char dst[TG_CONFIG_NAME_MAX])
{
    const json_t *v = json_object_get(obj, "name");
    char w[192];
    snprintf(w, sizeof(w), "%s.name", where);
    if (!v) {
        tg_config_verr(c, line, "%s needs a name", where);
        return false;
    }
    if (tg_config_env_failed(c, v))
        return false;
    if (!json_is_string(v)) {
        tg_config_type_err(c, tg_config_key_line(c, obj, "name"), w, "a string", v);
        return false;
    }
    if (!name_ok(json_string_value(v))) {
        tg_config_verr(c, tg_config_key_line(c, obj, "name"),
                       "%s must be 1 to %d letters, digits, '-', '_' or '.', not '%s'", w,
                       TG_CONFIG_NAME_MAX - 1, json_string_value(v));
        return false;
    }
    tg_strlcpy(dst, json_string_value(v), TG_CONFIG_NAME_MAX);
    return true;
}

/* ------------------------------------------------------------ fields */

bool tg_config_get_duration(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || fabs(d) > 9.0e15)
            return false;
        *out = (int64_t)llround(d);
        return true;
    }
    return json_is_string(v) && tg_parse_duration_ms(json_string_value(v), out) == TG_OK;
}

static bool get_size(const json_t *v, uint64_t *out)
{
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return false;
        *out = (uint64_t)json_integer_value(v);
        return true;
    }
    return json_is_string(v) && tg_parse_size(json_string_value(v), out) == TG_OK;
}

/* "HOST:PORT" or "[V6]:PORT", port 0..65535. */
static bool parse_listen(const char *s, const char **host, size_t *hlen, int *port)
{
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return false;
        *host = s + 1;
        *hlen = (size_t)(close - s - 1);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return false;
        *host = s;
        *hlen = (size_t)(colon - s);
    }
    const char *p = colon + 1;
    size_t n = strlen(p);
    if (*hlen == 0 || n == 0 || n > 5 || strspn(p, "0123456789") != n)
        return false;
    int64_t v;
    if (tg_parse_i64(p, &v) || v > 65535)
        return false;
    *port = (int)v;
    return true;
}

static bool header_name_ok(const char *s)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    if (!*s)
        return false;
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr(tchar, ch)))
            return false;
    }
    return true;
}

/* http(s)://HOST... with no spaces; returns the length without trailing slashes, 0 if bad. */
size_t tg_config_url_ok(const char *s)
{
    const char *rest;
    if (tg_str_has_prefix(s, "http://"))
        rest = s + 7;
    else if (tg_str_has_prefix(s, "https://"))
        rest = s + 8;
    else
        return 0;
    if (*rest == '\0' || *rest == '/' || strpbrk(s, " \t\r\n"))
        return 0;
    size_t n = strlen(s);
    while (n > (size_t)(rest - s) && s[n - 1] == '/')
        n--;
    return n;
}

static void range_err(struct tg_config_vctx *c, int line, const char *where,
                      const struct tg_config_field *f)
{
    if (f->max == INT64_MAX && f->min == 1 && f->kind == F_DURATION)
        tg_config_verr(c, line, "%s must be greater than 0", where);
    else if (f->max == INT64_MAX)
        tg_config_verr(c, line, "%s must be at least %lld%s", where, (long long)f->min,
                       f->kind == F_SIZE ? " bytes" : "");
    else
        tg_config_verr(c, line, "%s must be between %lld and %lld%s", where, (long long)f->min,
                       (long long)f->max, f->kind == F_DURATION ? " ms" : "");
}

static void apply_string(struct tg_config_vctx *c, const struct tg_config_field *f, char *base,
                         const json_t *v, const char *where, int line)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    char **dst = (char **)(void *)(base + f->off);
    int rc = TG_OK;

    if (strlen(s) != len) {
        tg_config_verr(c, line, "%s must not contain a NUL character", where);
        return;
    }
    switch (f->kind) {
    case F_OPT_STRING:
        if (len == 0) {
            tg_free(*dst);
            *dst = NULL;
        } else {
            rc = tg_config_set_str(dst, s, len);
        }
        break;
    case F_URL:
        len = tg_config_url_ok(s);
        if (!len)
            tg_config_verr(c, line, "%s must be an http:// or https:// URL, not '%s'", where, s);
        else
            rc = tg_config_set_str(dst, s, len);
        break;
    case F_HEADER_NAME:
        if (!header_name_ok(s))
            tg_config_verr(c, line, "%s must be an HTTP header name, not '%s'", where, s);
        else
            rc = tg_config_set_str(dst, s, len);
        break;
    case F_LISTEN: {
        const char *host;
        size_t hlen;
        int port;
        if (!parse_listen(s, &host, &hlen, &port)) {
            tg_config_verr(c, line, "%s must be HOST:PORT with a port from 0 to 65535, not '%s'",
                           where, s);
        } else {
            rc = tg_config_set_str(dst, host, hlen);
            *(int *)(void *)(base + f->off2) = port;
        }
        break;
    }
    default:
        if (len < (size_t)f->min)
            tg_config_verr(c, line, "%s must not be empty", where);
        else
            rc = tg_config_set_str(dst, s, len);
        break;
    }
    if (rc)
        c->rc = rc;
}

static void apply_duration(struct tg_config_vctx *c, const struct tg_config_field *f, char *base,
                           const json_t *v, const char *where, int line)
{
    int64_t ms = 0;
    if (!tg_config_get_duration(v, &ms)) {
        if (json_is_string(v))
            tg_config_verr(c, line, "%s must be a duration such as 500ms, 10s or 30m, not '%s'",
                           where, json_string_value(v));
        else
            tg_config_type_err(c, line, where, "a duration (e.g. 10s)", v);
    } else if (ms < f->min || ms > f->max) {
        range_err(c, line, where, f);
    } else {
        *(int64_t *)(void *)(base + f->off) = ms;
    }
}

static void apply_size(struct tg_config_vctx *c, const struct tg_config_field *f, char *base,
                       const json_t *v, const char *where, int line)
{
    uint64_t n = 0;
    if (!get_size(v, &n)) {
        if (json_is_string(v))
            tg_config_verr(c, line, "%s must be a size such as 65536, 64KiB or 1MiB, not '%s'",
                           where, json_string_value(v));
        else
            tg_config_type_err(c, line, where, "a size (e.g. 1MiB)", v);
    } else if (n < (uint64_t)f->min || n > (uint64_t)f->max) {
        range_err(c, line, where, f);
    } else {
        *(uint64_t *)(void *)(base + f->off) = n;
    }
}

/* A path from the config: absolute as is, else relative to the config
 * file's directory, so a deployment folder can be run from anywhere. */
int tg_config_resolve_path(struct tg_config_vctx *c, const char *p, char **dst)
{
    struct tg_buf b;
    const char *slash = strrchr(c->path, '/');
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    int rc = p[0] == '/' || !slash
                 ? tg_buf_puts(&b, p)
                 : tg_buf_printf(&b, "%.*s/%s", (int)(slash - c->path), c->path, p);
    if (!rc) {
        tg_free(*dst);
        *dst = tg_buf_steal(&b, NULL);
    }
    tg_buf_free(&b);
    return rc;
}

/*
 * A file the deployment reads at start-up (knowledge base, glossary,
 * intents, policy includes) must be there when the config is checked, so
 * `config check` names the line instead of `serve` failing later without one.
 */
void tg_config_check_readable(struct tg_config_vctx *c, int line, const char *where,
                              const char *path)
{
    if (access(path, R_OK) != 0)
        tg_config_verr(c, line, "%s: cannot read '%s': %s", where, path, strerror(errno));
}

/* Check value v of option f and store it at base + f->off. */
void tg_config_apply_field(struct tg_config_vctx *c, const struct tg_config_field *f, char *base,
                           const json_t *v, const char *where, int line)
{
    int64_t i64 = 0;
    enum tg_log_level lv;

    if (tg_config_env_failed(c, v))
        return;
    switch (f->kind) {
    case F_DURATION:
        apply_duration(c, f, base, v, where, line);
        break;
    case F_SIZE:
        apply_size(c, f, base, v, where, line);
        break;
    case F_SIZE_T:
    case F_LONG:
        if (!json_is_integer(v)) {
            tg_config_type_err(c, line, where, "an integer", v);
            break;
        }
        i64 = (int64_t)json_integer_value(v);
        if (i64 < f->min || i64 > f->max)
            range_err(c, line, where, f);
        else if (f->kind == F_SIZE_T)
            *(size_t *)(void *)(base + f->off) = (size_t)i64;
        else
            *(long *)(void *)(base + f->off) = (long)i64;
        break;
    case F_BOOL:
        if (!json_is_boolean(v))
            tg_config_type_err(c, line, where, "a boolean (true or false)", v);
        else
            *(bool *)(void *)(base + f->off) = json_is_true(v);
        break;
    case F_REAL:
        if (!json_is_number(v))
            tg_config_type_err(c, line, where, "a number", v);
        else if (json_number_value(v) < (double)f->min || json_number_value(v) > (double)f->max)
            tg_config_verr(c, line, "%s must be between %lld and %lld", where, (long long)f->min,
                           (long long)f->max);
        else
            *(double *)(void *)(base + f->off) = json_number_value(v);
        break;
    case F_PATH:
        if (!json_is_string(v) || json_string_length(v) == 0)
            tg_config_type_err(c, line, where, "a file path", v);
        else if (tg_config_resolve_path(c, json_string_value(v), (char **)(void *)(base + f->off)))
            c->rc = TG_E_NOMEM;
        else
            tg_config_check_readable(c, line, where, *(char **)(void *)(base + f->off));
        break;
    case F_LOG_LEVEL:
        /* YAML 1.1 reads a plain `off` as false; it means the level "off". */
        if (json_is_false(v))
            *(enum tg_log_level *)(void *)(base + f->off) = TG_LOG_OFF;
        else if (!json_is_string(v))
            tg_config_type_err(c, line, where, "a string", v);
        else if (tg_log_parse_level(json_string_value(v), &lv))
            tg_config_verr(c, line, "%s must be one of debug, info, warn, error, off, not '%s'",
                           where, json_string_value(v));
        else
            *(enum tg_log_level *)(void *)(base + f->off) = lv;
        break;
    default:
        if (!json_is_string(v))
            tg_config_type_err(c, line, where, "a string", v);
        else
            apply_string(c, f, base, v, where, line);
        break;
    }
}

/* Validate a mapping of options described by fields[] (plus extra known keys). */
void tg_config_apply_fields(struct tg_config_vctx *c, const json_t *obj, const char *where,
                            const struct tg_config_field *fields, size_t n,
                            const char *const *extra, size_t n_extra, void *base)
{
    const char *known[32];
    size_t nk = 0;
    for (size_t i = 0; i < n_extra && nk < TG_ARRAY_LEN(known); i++)
        known[nk++] = extra[i];
    for (size_t i = 0; i < n && nk < TG_ARRAY_LEN(known); i++)
        known[nk++] = fields[i].key;
    tg_config_check_keys(c->errs, c->path, c->lines, obj, where, known, nk);
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_object_get(obj, fields[i].key);
        char w[192];
        if (!v)
            continue;
        snprintf(w, sizeof(w), "%s.%s", where, fields[i].key);
        tg_config_apply_field(c, &fields[i], base, v, w, tg_config_key_line(c, obj, fields[i].key));
    }
}

/* A number in [lo, hi] (integer or real), else an error at its line. */
void tg_config_check_number(struct tg_config_vctx *c, const json_t *obj, const char *key,
                            const char *what, double lo, double hi)
{
    const json_t *v = json_object_get(obj, key);
    char want[80];
    snprintf(want, sizeof(want), "a number from %g to %g", lo, hi);
    if (v && !json_is_number(v))
        tg_config_type_err(c, tg_config_key_line(c, obj, key), what, want, v);
    else if (v && (json_number_value(v) < lo || json_number_value(v) > hi))
        tg_config_verr(c, tg_config_key_line(c, obj, key), "%s must be %s, not %g", what, want,
                       json_number_value(v));
}

void tg_config_check_durations(struct tg_config_vctx *c, const json_t *obj, const char *prefix,
                               const char *const *keys, size_t n)
{
    int64_t ms;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_object_get(obj, keys[i]);
        char w[64];
        snprintf(w, sizeof(w), "%s.%s", prefix, keys[i]);
        if (v && !tg_config_env_failed(c, v) && (!tg_config_get_duration(v, &ms) || ms < 0))
            tg_config_type_err(c, tg_config_key_line(c, obj, keys[i]), w,
                               "a duration such as \"150ms\"", v);
    }
}
