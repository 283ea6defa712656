/*
 * config.c - from a parsed tree to a struct tg_config: ${ENV} expansion,
 * then validation of every known section against tables of fields, with
 * defaults for everything absent.
 *
 * Validation never stops at the first problem: each one is appended to an
 * error list as "FILE:LINE: message" and checking goes on, so a user fixes
 * a whole file in one round.  Sections owned by later modules (policies, kb,
 * review, ...) are left in cfg->root for them, but every file the
 * deployment reads at start-up (knowledge base, glossary, intents, policy
 * includes) must be readable here, reported at the line that names it, and
 * users are checked to be one person each (names, tokens, customer ids).
 */
#include "config/config_int.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
static const char *closest(const char *word, const char *const *known, size_t n)
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
        const char *hint = closest(key, known, n_known);
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

/* ------------------------------------------------------------ ${ENV} */

struct ectx {
    const char *path;
    json_t *errs;
    struct tg_config_lines *lines;
    bool failed;
};

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char ch = s[i];
        unsigned char lo = 0x80, hi = 0xbf;
        size_t n;
        if (ch < 0x80)
            n = 0;
        else if (ch >= 0xc2 && ch <= 0xdf)
            n = 1;
        else if (ch >= 0xe0 && ch <= 0xef)
            n = 2;
        else if (ch >= 0xf0 && ch <= 0xf4)
            n = 3;
        else
            return false;
        if (ch == 0xe0)
            lo = 0xa0;
        else if (ch == 0xed)
            hi = 0x9f;
        else if (ch == 0xf0)
            lo = 0x90;
        else if (ch == 0xf4)
            hi = 0x8f;
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            unsigned char cc = s[i + k];
            if (cc < (k == 1 ? lo : 0x80) || cc > (k == 1 ? hi : 0xbf))
                return false;
        }
        i += n + 1;
    }
    return true;
}

static bool env_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > 255 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

/*
 * Expand one ${NAME} at s (which starts with "${") into b.  *used is how many
 * bytes of s it consumed.  TG_E_CONFIG after reporting a problem.
 */
static int expand_one(struct ectx *c, const char *s, size_t len, int line, struct tg_buf *b,
                      size_t *used)
{
    const char *close = memchr(s + 2, '}', len - 2);
    if (!close) {
        tg_config_errorf(c->errs, c->path, line, "unterminated ${ (write $$ for a literal $)");
        *used = len;
        return TG_E_CONFIG;
    }
    const char *name = s + 2;
    size_t nlen = (size_t)(close - name);
    *used = nlen + 3;
    if (!env_name_ok(name, nlen)) {
        tg_config_errorf(c->errs, c->path, line, "bad environment variable name '%.*s'",
                         (int)TG_MIN(nlen, 255), name);
        return TG_E_CONFIG;
    }
    char nbuf[256];
    memcpy(nbuf, name, nlen);
    nbuf[nlen] = '\0';
    const char *val = getenv(nbuf);
    if (!val) {
        tg_config_errorf(c->errs, c->path, line, "environment variable %s is not set", nbuf);
        return TG_E_CONFIG;
    }
    if (!utf8_valid(val, strlen(val))) {
        tg_config_errorf(c->errs, c->path, line, "environment variable %s is not valid UTF-8",
                         nbuf);
        return TG_E_CONFIG;
    }
    return tg_buf_puts(b, val);
}

/*
 * The expansion of string s: TG_OK with *out NULL when s has no '$', TG_OK
 * with *out (caller tg_free()s) otherwise, TG_E_CONFIG after reporting,
 * TG_E_NOMEM.
 */
static int expand_str(struct ectx *c, const char *s, size_t len, int line, char **out,
                      size_t *outlen)
{
    int rc = TG_OK, bad = TG_OK;
    struct tg_buf b;
    tg_buf_init(&b, TG_CONFIG_MAX_FILE);
    *out = NULL;
    if (!memchr(s, '$', len))
        goto out;
    size_t i = 0;
    while (i < len && rc == TG_OK) {
        const char *d = memchr(s + i, '$', len - i);
        size_t upto = d ? (size_t)(d - s) : len;
        rc = tg_buf_append(&b, s + i, upto - i);
        i = upto;
        if (rc || i == len)
            break;
        if (i + 1 < len && s[i + 1] == '$') {
            rc = tg_buf_append(&b, "$", 1);
            i += 2;
        } else if (i + 1 < len && s[i + 1] == '{') {
            size_t used;
            int r = expand_one(c, s + i, len - i, line, &b, &used);
            if (r == TG_E_CONFIG)
                bad = r;
            else
                rc = r;
            i += used;
        } else {
            rc = tg_buf_append(&b, "$", 1);
            i++;
        }
    }
    if (rc == TG_E_TOOBIG) {
        tg_config_errorf(c->errs, c->path, line, "value is too long after ${} expansion");
        rc = TG_E_CONFIG;
    }
    if (!rc)
        rc = bad;
    if (!rc) {
        if (!b.data && tg_buf_append(&b, "", 0))
            rc = TG_E_NOMEM;
        else
            *out = tg_buf_steal(&b, outlen);
    }
out:
    tg_buf_free(&b);
    return rc;
}

/*
 * Expand string node v.  *repl is set to a new node to put in v's place
 * (a plain scalar re-read), or left NULL when v was changed in place or not
 * at all.
 */
static int expand_value(struct ectx *c, json_t *v, json_t **repl)
{
    int rc;
    char *s = NULL;
    size_t len = 0;
    int line = tg_config_lines_node(c->lines, v);
    unsigned flags = tg_config_lines_flags(c->lines, v);

    *repl = NULL;
    rc = expand_str(c, json_string_value(v), json_string_length(v), line, &s, &len);
    if (rc == TG_E_CONFIG) {
        c->failed = true;
        rc = tg_config_lines_set_node(c->lines, v, line, flags | TG_LINE_BADENV);
        goto out;
    }
    if (rc || !s)
        goto out;
    if (flags & TG_LINE_PLAIN) {
        json_t *n = tg_config_plain_scalar(s, len);
        if (!n) {
            rc = TG_E_NOMEM;
            goto out;
        }
        rc = tg_config_lines_set_node(c->lines, n, line, json_is_string(n) ? TG_LINE_PLAIN : 0);
        if (rc) {
            json_decref(n);
            goto out;
        }
        *repl = n;
    } else if (json_string_setn(v, s, len)) {
        rc = TG_E_NOMEM;
    }
out:
    tg_free(s);
    return rc;
}

static int expand_node(struct ectx *c, json_t *node);

/* Put repl in the place of old (object member at iter, or list element i), retiring old. */
static int expand_child(struct ectx *c, json_t *parent, void *iter, size_t i, json_t *child)
{
    int rc;
    json_t *repl = NULL;
    if (!json_is_string(child))
        return expand_node(c, child);
    rc = expand_value(c, child, &repl);
    if (rc || !repl)
        return rc;
    json_incref(child);
    if (iter)
        rc = json_object_iter_set_new(parent, iter, repl) ? TG_E_NOMEM : TG_OK;
    else
        rc = json_array_set_new(parent, i, repl) ? TG_E_NOMEM : TG_OK;
    if (rc) {
        json_decref(child);
        return rc;
    }
    return tg_config_lines_retire(c->lines, child);
}

static int expand_node(struct ectx *c, json_t *node)
{
    int rc = TG_OK;
    if (json_is_object(node)) {
        void *it = json_object_iter(node);
        while (it && !rc) {
            rc = expand_child(c, node, it, 0, json_object_iter_value(it));
            it = json_object_iter_next(node, it);
        }
    } else if (json_is_array(node)) {
        for (size_t i = 0; i < json_array_size(node) && !rc; i++)
            rc = expand_child(c, node, NULL, i, json_array_get(node, i));
    }
    return rc;
}

int tg_config_expand_env(json_t *root, struct tg_config_lines *lines, const char *path,
                         json_t *errs)
{
    int rc;
    struct ectx c = {.path = path, .errs = errs, .lines = lines};
    if (json_is_string(root)) {
        json_t *repl = NULL;
        rc = expand_value(&c, root, &repl);
        if (repl) {
            /* The root cannot be swapped: keep it a string. */
            json_decref(repl);
            c.failed = true;
            tg_config_errorf(errs, path, tg_config_lines_node(lines, root),
                             "a top-level ${} value is not supported");
        }
    } else {
        rc = expand_node(&c, root);
    }
    if (!rc && c.failed)
        rc = TG_E_CONFIG;
    return rc;
}

/* ------------------------------------------------------------ validation */

struct vctx {
    const char *path;
    const struct tg_config_lines *lines;
    json_t *errs;
    int rc; /* TG_E_NOMEM once an error message could not be stored */
};

static void verr(struct vctx *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void verr(struct vctx *c, int line, const char *fmt, ...)
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
static void type_err(struct vctx *c, int line, const char *where, const char *want, const json_t *v)
{
    if (json_is_null(v))
        verr(c, line, "%s has no value (expected %s)", where, want);
    else
        verr(c, line, "%s must be %s, not %s", where, want, tg_config_type_name(v));
}

/* A value whose ${ENV} expansion already failed and was reported. */
static bool env_failed(const struct vctx *c, const json_t *v)
{
    return (tg_config_lines_flags(c->lines, v) & TG_LINE_BADENV) != 0;
}

/* Line of member key of obj, falling back to the line of obj itself. */
static int key_line(const struct vctx *c, const json_t *obj, const char *key)
{
    int line = tg_config_lines_key(c->lines, obj, key);
    return line ? line : tg_config_lines_node(c->lines, obj);
}

/*
 * Member key of parent as a mapping, NULL when absent or null; a type error
 * is reported (and NULL returned) for anything else.
 */
static const json_t *get_mapping(struct vctx *c, const json_t *parent, const char *key,
                                 const char *where)
{
    const json_t *v = json_object_get(parent, key);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_object(v)) {
        if (!env_failed(c, v))
            type_err(c, key_line(c, parent, key), where, "a mapping", v);
        return NULL;
    }
    return v;
}

/* Same for a list. */
static const json_t *get_list(struct vctx *c, const json_t *parent, const char *key,
                              const char *where)
{
    const json_t *v = json_object_get(parent, key);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_array(v)) {
        if (!env_failed(c, v))
            type_err(c, key_line(c, parent, key), where, "a list", v);
        return NULL;
    }
    return v;
}

static int set_str(char **dst, const char *s, size_t len)
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
static bool get_name(struct vctx *c, const json_t *obj, const char *where, int line,
                     char dst[TG_CONFIG_NAME_MAX])
{
    const json_t *v = json_object_get(obj, "name");
    char w[192];
    snprintf(w, sizeof(w), "%s.name", where);
    if (!v) {
        verr(c, line, "%s needs a name", where);
        return false;
    }
    if (env_failed(c, v))
        return false;
    if (!json_is_string(v)) {
        type_err(c, key_line(c, obj, "name"), w, "a string", v);
        return false;
    }
    if (!name_ok(json_string_value(v))) {
        verr(c, key_line(c, obj, "name"),
             "%s must be 1 to %d letters, digits, '-', '_' or '.', not '%s'", w,
             TG_CONFIG_NAME_MAX - 1, json_string_value(v));
        return false;
    }
    tg_strlcpy(dst, json_string_value(v), TG_CONFIG_NAME_MAX);
    return true;
}

/* ---- fields: one table row per scalar option */

enum fkind {
    F_STRING,      /* char *, at least min bytes */
    F_OPT_STRING,  /* char *, "" means NULL */
    F_DURATION,    /* int64_t milliseconds in [min, max] */
    F_SIZE,        /* uint64_t bytes in [min, max] */
    F_SIZE_T,      /* size_t in [min, max] */
    F_LONG,        /* long in [min, max] */
    F_BOOL,        /* bool */
    F_LOG_LEVEL,   /* enum tg_log_level */
    F_LISTEN,      /* char * host at off, int port at off2 */
    F_URL,         /* char *, http:// or https://, trailing '/' removed */
    F_HEADER_NAME, /* char *, an HTTP field name */
    F_REAL,        /* double in [min, max] */
    F_PATH,        /* char *, resolved against the config file's directory */
};

#define BT_OPENAI (1u << TG_BACKEND_OPENAI)
#define BT_SCRIPT (1u << TG_BACKEND_SCRIPT)
#define BT_BUILTIN (1u << TG_BACKEND_BUILTIN)

struct field {
    const char *key;
    enum fkind kind;
    size_t off;
    size_t off2;
    int64_t min;
    int64_t max;
    unsigned types; /* backends only: the backend types that take this option */
};

#define CFG(m) offsetof(struct tg_config, m)
#define BE(m) offsetof(struct tg_backend_conf, m)

static const struct field server_fields[] = {
    {.key = "listen", .kind = F_LISTEN, .off = CFG(listen_host), .off2 = CFG(listen_port)},
    {.key = "data_dir", .kind = F_STRING, .off = CFG(data_dir), .min = 1},
    {.key = "max_body", .kind = F_SIZE, .off = CFG(max_body), .min = 1024, .max = INT64_MAX},
    {.key = "max_messages", .kind = F_SIZE_T, .off = CFG(max_messages), .min = 1, .max = 1000000},
    {.key = "customer_header", .kind = F_HEADER_NAME, .off = CFG(customer_header)},
    {.key = "log_level", .kind = F_LOG_LEVEL, .off = CFG(log_level)},
    {.key = "drain_timeout",
     .kind = F_DURATION,
     .off = CFG(drain_timeout_ms),
     .min = 1,
     .max = INT64_MAX},
};

static const struct field store_fields[] = {
    {.key = "uri", .kind = F_STRING, .off = CFG(store_uri), .min = 1},
    {.key = "group_commit",
     .kind = F_DURATION,
     .off = CFG(group_commit_ms),
     .min = 0,
     .max = 60000},
};

static const struct field conversation_fields[] = {
    {.key = "idle_timeout",
     .kind = F_DURATION,
     .off = CFG(idle_timeout_ms),
     .min = 1,
     .max = INT64_MAX},
    {.key = "history", .kind = F_SIZE_T, .off = CFG(history), .min = 0, .max = 1000},
};

/* Backend options besides name and type. */
static const struct field backend_fields[] = {
    {.key = "base_url", .kind = F_URL, .off = BE(base_url), .types = BT_OPENAI},
    {.key = "api_key", .kind = F_OPT_STRING, .off = BE(api_key), .types = BT_OPENAI},
    {.key = "model", .kind = F_STRING, .off = BE(model), .min = 1, .types = BT_OPENAI},
    {.key = "connect_timeout",
     .kind = F_DURATION,
     .off = BE(connect_timeout_ms),
     .min = 1,
     .max = INT64_MAX,
     .types = BT_OPENAI},
    {.key = "header_timeout",
     .kind = F_DURATION,
     .off = BE(header_timeout_ms),
     .min = 1,
     .max = INT64_MAX,
     .types = BT_OPENAI},
    {.key = "total_timeout",
     .kind = F_DURATION,
     .off = BE(total_timeout_ms),
     .min = 1,
     .max = INT64_MAX,
     .types = BT_OPENAI},
    {.key = "idle_timeout",
     .kind = F_DURATION,
     .off = BE(idle_timeout_ms),
     .min = 1,
     .max = INT64_MAX,
     .types = BT_OPENAI},
    {.key = "first_token_timeout",
     .kind = F_DURATION,
     .off = BE(first_token_timeout_ms),
     .min = 1,
     .max = INT64_MAX,
     .types = BT_OPENAI},
    {.key = "stream", .kind = F_BOOL, .off = BE(stream), .types = BT_OPENAI},
    {.key = "max_connections",
     .kind = F_LONG,
     .off = BE(max_connections),
     .min = 1,
     .max = 100000,
     .types = BT_OPENAI},
    {.key = "reply", .kind = F_STRING, .off = BE(reply), .min = 1, .types = BT_SCRIPT},
    {.key = "min_confidence",
     .kind = F_REAL,
     .off = BE(min_confidence),
     .min = 0,
     .max = 1,
     .types = BT_BUILTIN},
    {.key = "low_confidence_reply",
     .kind = F_STRING,
     .off = BE(low_confidence_reply),
     .min = 1,
     .types = BT_BUILTIN},
    {.key = "max_sentences",
     .kind = F_LONG,
     .off = BE(max_sentences),
     .min = 1,
     .max = 20,
     .types = BT_BUILTIN},
};

static const struct field kb_fields[] = {
    {.key = "glossary", .kind = F_PATH, .off = CFG(kb_glossary), .min = 1},
    {.key = "k1", .kind = F_REAL, .off = CFG(kb_k1), .min = 0, .max = 10},
    {.key = "b", .kind = F_REAL, .off = CFG(kb_b), .min = 0, .max = 1},
    {.key = "top_k", .kind = F_SIZE_T, .off = CFG(kb_top_k), .min = 1, .max = 100},
};

static const struct field intents_fields[] = {
    {.key = "train", .kind = F_PATH, .off = CFG(intents_train), .min = 1},
};

static const struct field understand_fields[] = {
    {.key = "policy_number", .kind = F_STRING, .off = CFG(policy_pattern), .min = 1},
};

/* Sections that later modules read from cfg->root themselves. */
static const char *const passthrough_sections[] = {
    "policies",
};

static const char *const own_sections[] = {
    "server", "auth",    "store",       "conversation", "backends", "route",        "models",
    "kb",     "intents", "understand",  "review",       "users",    "webhooks",     "web",
    "ladder", "eval",    "experiments", "fairness",     "audit",    "translations", "labels",
    "privacy",
};

static bool get_duration(const json_t *v, int64_t *out)
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
static size_t url_ok(const char *s)
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

static void range_err(struct vctx *c, int line, const char *where, const struct field *f)
{
    if (f->max == INT64_MAX && f->min == 1 && f->kind == F_DURATION)
        verr(c, line, "%s must be greater than 0", where);
    else if (f->max == INT64_MAX)
        verr(c, line, "%s must be at least %lld%s", where, (long long)f->min,
             f->kind == F_SIZE ? " bytes" : "");
    else
        verr(c, line, "%s must be between %lld and %lld%s", where, (long long)f->min,
             (long long)f->max, f->kind == F_DURATION ? " ms" : "");
}

static void apply_string(struct vctx *c, const struct field *f, char *base, const json_t *v,
                         const char *where, int line)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    char **dst = (char **)(void *)(base + f->off);
    int rc = TG_OK;

    if (strlen(s) != len) {
        verr(c, line, "%s must not contain a NUL character", where);
        return;
    }
    switch (f->kind) {
    case F_OPT_STRING:
        if (len == 0) {
            tg_free(*dst);
            *dst = NULL;
        } else {
            rc = set_str(dst, s, len);
        }
        break;
    case F_URL:
        len = url_ok(s);
        if (!len)
            verr(c, line, "%s must be an http:// or https:// URL, not '%s'", where, s);
        else
            rc = set_str(dst, s, len);
        break;
    case F_HEADER_NAME:
        if (!header_name_ok(s))
            verr(c, line, "%s must be an HTTP header name, not '%s'", where, s);
        else
            rc = set_str(dst, s, len);
        break;
    case F_LISTEN: {
        const char *host;
        size_t hlen;
        int port;
        if (!parse_listen(s, &host, &hlen, &port)) {
            verr(c, line, "%s must be HOST:PORT with a port from 0 to 65535, not '%s'", where, s);
        } else {
            rc = set_str(dst, host, hlen);
            *(int *)(void *)(base + f->off2) = port;
        }
        break;
    }
    default:
        if (len < (size_t)f->min)
            verr(c, line, "%s must not be empty", where);
        else
            rc = set_str(dst, s, len);
        break;
    }
    if (rc)
        c->rc = rc;
}

static void apply_duration(struct vctx *c, const struct field *f, char *base, const json_t *v,
                           const char *where, int line)
{
    int64_t ms = 0;
    if (!get_duration(v, &ms)) {
        if (json_is_string(v))
            verr(c, line, "%s must be a duration such as 500ms, 10s or 30m, not '%s'", where,
                 json_string_value(v));
        else
            type_err(c, line, where, "a duration (e.g. 10s)", v);
    } else if (ms < f->min || ms > f->max) {
        range_err(c, line, where, f);
    } else {
        *(int64_t *)(void *)(base + f->off) = ms;
    }
}

static void apply_size(struct vctx *c, const struct field *f, char *base, const json_t *v,
                       const char *where, int line)
{
    uint64_t n = 0;
    if (!get_size(v, &n)) {
        if (json_is_string(v))
            verr(c, line, "%s must be a size such as 65536, 64KiB or 1MiB, not '%s'", where,
                 json_string_value(v));
        else
            type_err(c, line, where, "a size (e.g. 1MiB)", v);
    } else if (n < (uint64_t)f->min || n > (uint64_t)f->max) {
        range_err(c, line, where, f);
    } else {
        *(uint64_t *)(void *)(base + f->off) = n;
    }
}

/* A path from the config: absolute as is, else relative to the config
 * file's directory, so a deployment folder can be run from anywhere. */
static int resolve_path(struct vctx *c, const char *p, char **dst)
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
static void check_readable(struct vctx *c, int line, const char *where, const char *path)
{
    if (access(path, R_OK) != 0)
        verr(c, line, "%s: cannot read '%s': %s", where, path, strerror(errno));
}

/* Check value v of option f and store it at base + f->off. */
static void apply_field(struct vctx *c, const struct field *f, char *base, const json_t *v,
                        const char *where, int line)
{
    int64_t i64 = 0;
    enum tg_log_level lv;

    if (env_failed(c, v))
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
            type_err(c, line, where, "an integer", v);
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
            type_err(c, line, where, "a boolean (true or false)", v);
        else
            *(bool *)(void *)(base + f->off) = json_is_true(v);
        break;
    case F_REAL:
        if (!json_is_number(v))
            type_err(c, line, where, "a number", v);
        else if (json_number_value(v) < (double)f->min || json_number_value(v) > (double)f->max)
            verr(c, line, "%s must be between %lld and %lld", where, (long long)f->min,
                 (long long)f->max);
        else
            *(double *)(void *)(base + f->off) = json_number_value(v);
        break;
    case F_PATH:
        if (!json_is_string(v) || json_string_length(v) == 0)
            type_err(c, line, where, "a file path", v);
        else if (resolve_path(c, json_string_value(v), (char **)(void *)(base + f->off)))
            c->rc = TG_E_NOMEM;
        else
            check_readable(c, line, where, *(char **)(void *)(base + f->off));
        break;
    case F_LOG_LEVEL:
        /* YAML 1.1 reads a plain `off` as false; it means the level "off". */
        if (json_is_false(v))
            *(enum tg_log_level *)(void *)(base + f->off) = TG_LOG_OFF;
        else if (!json_is_string(v))
            type_err(c, line, where, "a string", v);
        else if (tg_log_parse_level(json_string_value(v), &lv))
            verr(c, line, "%s must be one of debug, info, warn, error, off, not '%s'", where,
                 json_string_value(v));
        else
            *(enum tg_log_level *)(void *)(base + f->off) = lv;
        break;
    default:
        if (!json_is_string(v))
            type_err(c, line, where, "a string", v);
        else
            apply_string(c, f, base, v, where, line);
        break;
    }
}

/* Validate a mapping of options described by fields[] (plus extra known keys). */
static void apply_fields(struct vctx *c, const json_t *obj, const char *where,
                         const struct field *fields, size_t n, const char *const *extra,
                         size_t n_extra, void *base)
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
        apply_field(c, &fields[i], base, v, w, key_line(c, obj, fields[i].key));
    }
}

/* ---- sections */

/* Check one element of auth.api_keys into *k; false when it is unusable (reported). */
static bool check_api_key(struct vctx *c, const json_t *e, const char *where, int line,
                          struct tg_api_key *k)
{
    static const char *const key_keys[] = {"name", "key", "sha256", "class",
                                           "class_from_metadata"};
    static const char *const classes[] = {"internal", "customer", "vip"};
    char w[96];
    if (!json_is_object(e)) {
        if (!env_failed(c, e))
            type_err(c, line, where, "a mapping with name and key", e);
        return false;
    }
    tg_config_check_keys(c->errs, c->path, c->lines, e, where, key_keys, 5);
    bool ok = get_name(c, e, where, line, k->name);
    const json_t *cls = json_object_get(e, "class"), *cfm = json_object_get(e, "class_from_metadata");
    k->klass = TG_CLASS_CUSTOMER;
    if (cls) {
        const char *s = json_string_value(cls);
        size_t i = 0;
        while (s && i < TG_ARRAY_LEN(classes) && strcmp(s, classes[i]) != 0)
            i++;
        if (!s || i == TG_ARRAY_LEN(classes)) {
            snprintf(w, sizeof(w), "%s.class", where);
            type_err(c, key_line(c, e, "class"), w, "internal, customer or vip", cls);
            ok = false;
        } else {
            k->klass = (enum tg_traffic_class)i;
        }
    }
    if (cfm && !json_is_boolean(cfm)) {
        snprintf(w, sizeof(w), "%s.class_from_metadata", where);
        type_err(c, key_line(c, e, "class_from_metadata"), w, "true or false", cfm);
        ok = false;
    }
    k->class_from_metadata = json_is_true(cfm);
    const json_t *plain = json_object_get(e, "key");
    const json_t *hash = json_object_get(e, "sha256");
    if (plain && hash) {
        verr(c, key_line(c, e, "sha256"), "%s has both key and sha256: give only one", where);
        return false;
    }
    if (!plain && !hash) {
        verr(c, line, "%s needs a key (or its sha256)", where);
        return false;
    }
    if (env_failed(c, plain ? plain : hash))
        return false;
    snprintf(w, sizeof(w), "%s.%s", where, plain ? "key" : "sha256");
    if (!json_is_string(plain ? plain : hash)) {
        type_err(c, key_line(c, e, plain ? "key" : "sha256"), w, "a string", plain ? plain : hash);
        return false;
    }
    if (plain && json_string_length(plain) == 0) {
        verr(c, key_line(c, e, "key"), "%s must not be empty", w);
        return false;
    }
    if (plain) {
        tg_sha256(json_string_value(plain), json_string_length(plain), k->sha256);
    } else if (json_string_length(hash) != 2 * TG_SHA256_LEN ||
               tg_hex_decode(json_string_value(hash), k->sha256, TG_SHA256_LEN)) {
        verr(c, key_line(c, e, "sha256"), "%s must be 64 hex digits", w);
        return false;
    }
    return ok;
}

static void check_auth(struct vctx *c, struct tg_config *cfg, const json_t *root)
{
    static const char *const auth_keys[] = {"api_keys"};
    const json_t *auth = get_mapping(c, root, "auth", "auth");
    if (!auth)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, auth, "auth", auth_keys, 1);
    const json_t *list = get_list(c, auth, "api_keys", "auth.api_keys");
    size_t n = json_array_size(list);
    if (n == 0)
        return;
    cfg->api_keys = tg_calloc(n, sizeof(*cfg->api_keys));
    if (!cfg->api_keys) {
        c->rc = TG_E_NOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(list, i);
        int line = tg_config_lines_node(c->lines, e);
        char where[64];
        struct tg_api_key k = {0};
        snprintf(where, sizeof(where), "auth.api_keys[%zu]", i);
        if (!line)
            line = tg_config_lines_elem(c->lines, list, i);
        bool ok = check_api_key(c, e, where, line, &k);
        for (size_t j = 0; ok && j < cfg->n_api_keys; j++) {
            if (strcmp(cfg->api_keys[j].name, k.name) == 0) {
                verr(c, key_line(c, e, "name"), "duplicate API key name '%s'", k.name);
                ok = false;
            } else if (tg_ct_equal(cfg->api_keys[j].sha256, k.sha256, TG_SHA256_LEN)) {
                verr(c, line, "API key '%s' is the same key as '%s'", k.name,
                     cfg->api_keys[j].name);
                ok = false;
            }
        }
        if (ok)
            cfg->api_keys[cfg->n_api_keys++] = k;
    }
}

static void backend_defaults(struct tg_backend_conf *b)
{
    b->connect_timeout_ms = 2000;
    b->header_timeout_ms = 10000;
    b->total_timeout_ms = 60000;
    b->idle_timeout_ms = 10000;
    b->stream = true;
    b->max_connections = 64;
    b->min_confidence = 0.7;
    b->max_sentences = 3;
}

static const char *type_word(unsigned types)
{
    return types & BT_SCRIPT ? "script" : types & BT_BUILTIN ? "builtin" : "openai";
}

/* The type of backend e: BT_OPENAI, BT_SCRIPT, or 0 when missing or bad (reported). */
static unsigned backend_type(struct vctx *c, const json_t *e, const char *where, int line)
{
    const json_t *t = json_object_get(e, "type");
    if (!t) {
        verr(c, line, "%s needs a type (openai, script or builtin)", where);
        return 0;
    }
    if (env_failed(c, t))
        return 0;
    if (json_is_string(t) && strcmp(json_string_value(t), "openai") == 0)
        return BT_OPENAI;
    if (json_is_string(t) && strcmp(json_string_value(t), "script") == 0)
        return BT_SCRIPT;
    if (json_is_string(t) && strcmp(json_string_value(t), "builtin") == 0)
        return BT_BUILTIN;
    char w[96];
    snprintf(w, sizeof(w), "%s.type", where);
    if (json_is_string(t))
        verr(c, key_line(c, e, "type"), "%s must be openai, script or builtin, not '%s'", w,
             json_string_value(t));
    else
        type_err(c, key_line(c, e, "type"), w, "openai, script or builtin", t);
    return 0;
}

static void check_backend(struct vctx *c, struct tg_config *cfg, const json_t *list, size_t i)
{
    const json_t *e = json_array_get(list, i);
    struct tg_backend_conf *b = &cfg->backends[cfg->n_backends++];
    int line = tg_config_lines_node(c->lines, e);
    char where[64];

    backend_defaults(b);
    snprintf(where, sizeof(where), "backends[%zu]", i);
    if (!line)
        line = tg_config_lines_elem(c->lines, list, i);
    if (!json_is_object(e)) {
        if (!env_failed(c, e))
            type_err(c, line, where, "a mapping with name and type", e);
        return;
    }
    if (get_name(c, e, where, line, b->name)) {
        for (size_t j = 0; j + 1 < cfg->n_backends; j++) {
            if (strcmp(cfg->backends[j].name, b->name) == 0)
                verr(c, key_line(c, e, "name"), "duplicate backend name '%s'", b->name);
        }
    }
    unsigned type = backend_type(c, e, where, line);
    b->type = type == BT_SCRIPT    ? TG_BACKEND_SCRIPT
              : type == BT_BUILTIN ? TG_BACKEND_BUILTIN
                                   : TG_BACKEND_OPENAI;
    for (size_t k = 0; k < TG_ARRAY_LEN(backend_fields); k++) {
        const struct field *f = &backend_fields[k];
        const json_t *v = json_object_get(e, f->key);
        char w[192];
        if (!v)
            continue;
        snprintf(w, sizeof(w), "%s.%s", where, f->key);
        if (type && !(f->types & type))
            verr(c, key_line(c, e, f->key), "%s is not an option of %s backends (only of %s)", w,
                 type_word(type), type_word(f->types));
        else
            apply_field(c, f, (char *)b, v, w, key_line(c, e, f->key));
    }
    if (type == BT_OPENAI && !json_object_get(e, "base_url"))
        verr(c, line, "%s is an openai backend and needs a base_url", where);
    if (type == BT_SCRIPT && !json_object_get(e, "reply"))
        verr(c, line, "%s is a script backend and needs a reply", where);
}

/* The known keys of a backend mapping, for unknown-key checks. */
static void backend_known(const char **known, size_t *n)
{
    *n = 0;
    known[(*n)++] = "name";
    known[(*n)++] = "type";
    for (size_t k = 0; k < TG_ARRAY_LEN(backend_fields); k++)
        known[(*n)++] = backend_fields[k].key;
}

static void check_backends(struct vctx *c, struct tg_config *cfg, const json_t *root)
{
    const json_t *list = get_list(c, root, "backends", "backends");
    const char *known[2 + TG_ARRAY_LEN(backend_fields)];
    size_t nk;
    size_t n = json_array_size(list);
    if (n == 0)
        return;
    cfg->backends = tg_calloc(n, sizeof(*cfg->backends));
    if (!cfg->backends) {
        c->rc = TG_E_NOMEM;
        return;
    }
    backend_known(known, &nk);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(list, i);
        if (json_is_object(e)) {
            char where[64];
            snprintf(where, sizeof(where), "backends[%zu]", i);
            tg_config_check_keys(c->errs, c->path, c->lines, e, where, known, nk);
        }
        check_backend(c, cfg, list, i);
    }
}

static void check_route(struct vctx *c, struct tg_config *cfg, const json_t *root)
{
    static const char *const route_keys[] = {"backend"};
    const json_t *route = get_mapping(c, root, "route", "route");
    const json_t *name = NULL;
    if (route) {
        tg_config_check_keys(c->errs, c->path, c->lines, route, "route", route_keys, 1);
        name = json_object_get(route, "backend");
    }
    if (cfg->n_backends == 0) {
        /* An empty list has a line; a missing section does not. */
        const json_t *list = json_object_get(root, "backends");
        verr(c, list ? key_line(c, root, "backends") : 0,
             "no backends configured (add a backends: list)");
        return;
    }
    if (!name) {
        verr(c, route ? key_line(c, root, "route") : key_line(c, root, "backends"),
             "route.backend is required: name the backend that answers");
        return;
    }
    if (env_failed(c, name))
        return;
    if (!json_is_string(name)) {
        type_err(c, key_line(c, route, "backend"), "route.backend", "a backend name", name);
        return;
    }
    const char *s = json_string_value(name);
    if (!tg_config_backend(cfg, s)) {
        const char *names[64];
        size_t n = TG_MIN(cfg->n_backends, TG_ARRAY_LEN(names));
        for (size_t i = 0; i < n; i++)
            names[i] = cfg->backends[i].name;
        const char *hint = closest(s, names, n);
        if (hint)
            verr(c, key_line(c, route, "backend"),
                 "route.backend names unknown backend '%s' (did you mean '%s'?)", s, hint);
        else
            verr(c, key_line(c, route, "backend"), "route.backend names unknown backend '%s'", s);
        return;
    }
    if (set_str(&cfg->route_backend, s, strlen(s)))
        c->rc = TG_E_NOMEM;
}

/* A number in [lo, hi] (integer or real), else an error at its line. */
static void check_number(struct vctx *c, const json_t *obj, const char *key, const char *what,
                         double lo, double hi)
{
    const json_t *v = json_object_get(obj, key);
    char want[80];
    snprintf(want, sizeof(want), "a number from %g to %g", lo, hi);
    if (v && !json_is_number(v))
        type_err(c, key_line(c, obj, key), what, want, v);
    else if (v && (json_number_value(v) < lo || json_number_value(v) > hi))
        verr(c, key_line(c, obj, key), "%s must be %s, not %g", what, want, json_number_value(v));
}

static void check_durations(struct vctx *c, const json_t *obj, const char *prefix,
                            const char *const *keys, size_t n)
{
    int64_t ms;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_object_get(obj, keys[i]);
        char w[64];
        snprintf(w, sizeof(w), "%s.%s", prefix, keys[i]);
        if (v && !env_failed(c, v) && (!get_duration(v, &ms) || ms < 0))
            type_err(c, key_line(c, obj, keys[i]), w, "a duration such as \"150ms\"", v);
    }
}

/* ladder: {rungs: [{name, backend?, model?, budget?, large_context?}], budget, max_attempts,
 * backoff, backoff_max, degraded_to_human, min_confidence, breaker: {failures, open, probe}} */
static void check_ladder(struct vctx *c, struct tg_config *cfg, const json_t *root)
{
    static const char *const keys[] = {"rungs",          "budget",      "max_attempts",
                                       "backoff",        "backoff_max", "degraded_to_human",
                                       "min_confidence", "breaker",     "stream_through"};
    static const char *const durs[] = {"budget", "backoff", "backoff_max"};
    static const char *const rung_keys[] = {"name",   "backend",       "model",
                                            "budget", "large_context", "max_inflight",
                                            "queue",  "queue_timeout"};
    static const char *const rung_durs[] = {"budget", "queue_timeout"};
    static const char *const br_keys[] = {"failures", "open", "probe"};
    static const char *const br_durs[] = {"open"};
    const json_t *sec = get_mapping(c, root, "ladder", "ladder");
    if (!sec)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, sec, "ladder", keys, TG_ARRAY_LEN(keys));
    check_durations(c, sec, "ladder", durs, TG_ARRAY_LEN(durs));
    check_number(c, sec, "max_attempts", "ladder.max_attempts", 1, 10);
    check_number(c, sec, "degraded_to_human", "ladder.degraded_to_human", 1, 1000);
    check_number(c, sec, "min_confidence", "ladder.min_confidence", 0, 1);
    const json_t *st = json_object_get(sec, "stream_through");
    if (st && !json_is_boolean(st))
        type_err(c, key_line(c, sec, "stream_through"), "ladder.stream_through", "true or false",
                 st);
    const json_t *br = get_mapping(c, sec, "breaker", "ladder.breaker");
    if (br) {
        tg_config_check_keys(c->errs, c->path, c->lines, br, "ladder.breaker", br_keys,
                             TG_ARRAY_LEN(br_keys));
        check_durations(c, br, "ladder.breaker", br_durs, 1);
        check_number(c, br, "failures", "ladder.breaker.failures", 1, 1000000);
        check_number(c, br, "probe", "ladder.breaker.probe", 0, 1);
    }
    const json_t *rungs = get_list(c, sec, "rungs", "ladder.rungs");
    if (!rungs || !json_array_size(rungs)) {
        verr(c, key_line(c, root, "ladder"), "ladder.rungs needs at least one rung");
        return;
    }
    size_t i;
    json_t *r;
    bool human_seen = false;
    json_array_foreach(rungs, i, r)
    {
        char w[48];
        int line = tg_config_lines_elem(c->lines, rungs, i);
        snprintf(w, sizeof(w), "ladder.rungs[%zu]", i);
        if (!json_is_object(r)) {
            type_err(c, line, w, "a mapping with name and backend", r);
            continue;
        }
        tg_config_check_keys(c->errs, c->path, c->lines, r, w, rung_keys, TG_ARRAY_LEN(rung_keys));
        check_durations(c, r, w, rung_durs, TG_ARRAY_LEN(rung_durs));
        check_number(c, r, "max_inflight", "max_inflight", 0, 1000000);
        check_number(c, r, "queue", "queue", 0, 1000000);
        const char *b = tg_json_str(r, "backend", NULL);
        const json_t *lc = json_object_get(r, "large_context");
        if (lc && !json_is_boolean(lc))
            type_err(c, key_line(c, r, "large_context"), "large_context", "true or false", lc);
        if (json_object_get(r, "backend") && !b)
            type_err(c, key_line(c, r, "backend"), "backend", "a backend name",
                     json_object_get(r, "backend"));
        else if (b && !tg_config_backend(cfg, b))
            verr(c, key_line(c, r, "backend"), "%s.backend names unknown backend '%s'", w, b);
        if (human_seen)
            verr(c, line, "%s comes after the human rung and can never be reached", w);
        if (!b)
            human_seen = true; /* a rung without a backend is a person */
    }
}

/* eval: {far: {set, min}, monitor: {min_far, days, alpha, check_every}, prices: {MODEL:
 * {prompt, completion}}} — read by `trustgate eval` and the FAR monitor. */
static void check_eval(struct vctx *c, const json_t *root)
{
    static const char *const keys[] = {"far", "monitor", "prices"};
    static const char *const far_keys[] = {"set", "min"};
    static const char *const mon_keys[] = {"min_far", "days", "alpha", "check_every"};
    static const char *const mon_durs[] = {"check_every"};
    static const char *const price_keys[] = {"prompt", "completion"};
    const json_t *sec = get_mapping(c, root, "eval", "eval");
    if (!sec)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, sec, "eval", keys, TG_ARRAY_LEN(keys));
    const json_t *far = get_mapping(c, sec, "far", "eval.far");
    if (far) {
        tg_config_check_keys(c->errs, c->path, c->lines, far, "eval.far", far_keys,
                             TG_ARRAY_LEN(far_keys));
        const json_t *set = json_object_get(far, "set");
        if (set && !json_is_string(set))
            type_err(c, key_line(c, far, "set"), "eval.far.set", "a file name", set);
        check_number(c, far, "min", "eval.far.min", 0, 1);
    }
    const json_t *mon = get_mapping(c, sec, "monitor", "eval.monitor");
    if (mon) {
        tg_config_check_keys(c->errs, c->path, c->lines, mon, "eval.monitor", mon_keys,
                             TG_ARRAY_LEN(mon_keys));
        check_number(c, mon, "min_far", "eval.monitor.min_far", 0, 1);
        check_number(c, mon, "days", "eval.monitor.days", 1, 90);
        check_number(c, mon, "alpha", "eval.monitor.alpha", 0, 1);
        check_durations(c, mon, "eval.monitor", mon_durs, 1);
    }
    const json_t *prices = get_mapping(c, sec, "prices", "eval.prices");
    const char *model;
    json_t *p;
    json_object_foreach((json_t *)prices, model, p)
    {
        char w[160];
        snprintf(w, sizeof(w), "eval.prices.%s", model);
        if (!json_is_object(p)) {
            type_err(c, key_line(c, prices, model), w, "a mapping {prompt, completion}", p);
            continue;
        }
        tg_config_check_keys(c->errs, c->path, c->lines, p, w, price_keys,
                             TG_ARRAY_LEN(price_keys));
        char wp[200], wc[200];
        snprintf(wp, sizeof(wp), "%s.prompt", w);
        snprintf(wc, sizeof(wc), "%s.completion", w);
        check_number(c, p, "prompt", wp, 0, 1e9);
        check_number(c, p, "completion", wc, 0, 1e9);
    }
}

/* audit: {origin} — the name of the log in its signed checkpoints (audit/checkpoint.c). */
static void check_audit(struct vctx *c, const json_t *root)
{
    static const char *const keys[] = {"origin"};
    const json_t *sec = get_mapping(c, root, "audit", "audit");
    if (!sec)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, sec, "audit", keys, TG_ARRAY_LEN(keys));
    const json_t *o = json_object_get(sec, "origin");
    if (o && (!json_is_string(o) || !json_string_length(o) || json_string_length(o) > 100 ||
              strpbrk(json_string_value(o), " \t\n+")))
        verr(c, key_line(c, sec, "origin"),
             "audit.origin must be a name of 1 to 100 characters without spaces or '+', such as "
             "bank.example/trustgate");
}

/* fairness: {attributes: [NAME | {name, values}], limit, min_group, alpha, bootstrap, check_every,
 * window} — the live fairness gate (api/governance.c). */
static void check_fairness(struct vctx *c, const json_t *root)
{
    static const char *const keys[] = {"attributes", "limit",       "min_group", "alpha",
                                       "bootstrap",  "check_every", "window"};
    static const char *const akeys[] = {"name", "values"};
    static const char *const durs[] = {"check_every", "window"};
    const json_t *sec = get_mapping(c, root, "fairness", "fairness");
    if (!sec)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, sec, "fairness", keys, TG_ARRAY_LEN(keys));
    check_number(c, sec, "limit", "fairness.limit", 0, 1);
    check_number(c, sec, "min_group", "fairness.min_group", 1, 1e9);
    check_number(c, sec, "bootstrap", "fairness.bootstrap", 0, 100000);
    check_number(c, sec, "alpha", "fairness.alpha", 1e-6, 0.5);
    check_durations(c, sec, "fairness", durs, TG_ARRAY_LEN(durs));
    const json_t *list = get_list(c, sec, "attributes", "fairness.attributes");
    size_t i;
    json_t *a;
    if (json_array_size(list) > 8)
        verr(c, key_line(c, sec, "attributes"), "fairness.attributes: at most 8 attributes");
    json_array_foreach(list, i, a)
    {
        char w[64];
        int line = tg_config_lines_elem(c->lines, list, i);
        snprintf(w, sizeof(w), "fairness.attributes[%zu]", i);
        if (json_is_string(a))
            continue;
        if (!json_is_object(a) || !tg_json_str(a, "name", NULL)) {
            type_err(c, line, w, "a name or {name, values: [...]}", a);
            continue;
        }
        tg_config_check_keys(c->errs, c->path, c->lines, a, w, akeys, TG_ARRAY_LEN(akeys));
        size_t k;
        json_t *v;
        json_array_foreach(json_object_get(a, "values"), k, v)
        {
            if (!json_is_string(v))
                verr(c, line, "%s.values[%zu] must be a string", w, k);
        }
    }
}

/* experiments: [{name, salt?, holdout?, variants: [{name, share}]}] */
static void check_experiments(struct vctx *c, const json_t *root)
{
    static const char *const keys[] = {"name", "salt", "holdout", "variants"};
    static const char *const vkeys[] = {"name", "share", "release", "config"};
    const char *answering = NULL; /* the experiment whose variants change what answers */
    const json_t *list = get_list(c, root, "experiments", "experiments");
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        char w[48];
        int line = tg_config_lines_elem(c->lines, list, i);
        snprintf(w, sizeof(w), "experiments[%zu]", i);
        if (!json_is_object(e)) {
            type_err(c, line, w, "a mapping with name and variants", e);
            continue;
        }
        tg_config_check_keys(c->errs, c->path, c->lines, e, w, keys, TG_ARRAY_LEN(keys));
        if (!tg_json_str(e, "name", NULL))
            verr(c, line, "%s needs a name", w);
        char h[64];
        snprintf(h, sizeof(h), "%s.holdout", w);
        check_number(c, e, "holdout", h, 0, 0.99);
        const json_t *vs = json_object_get(e, "variants");
        if (json_array_size(vs) < 2) {
            verr(c, line, "%s needs at least two variants", w);
            continue;
        }
        size_t k;
        json_t *v;
        json_array_foreach(vs, k, v)
        {
            char vw[80];
            snprintf(vw, sizeof(vw), "%s.variants[%zu]", w, k);
            tg_config_check_keys(c->errs, c->path, c->lines, v, vw, vkeys, TG_ARRAY_LEN(vkeys));
            const json_t *sh = json_object_get(v, "share");
            int vline = tg_config_lines_elem(c->lines, vs, k);
            if (!tg_json_str(v, "name", NULL) || !json_is_number(sh) || json_number_value(sh) <= 0)
                verr(c, vline, "%s needs a name and a share above 0", vw);
            const json_t *rel = json_object_get(v, "release"), *conf = json_object_get(v, "config");
            if ((rel && !json_is_string(rel)) || (conf && !json_is_string(conf)) || (rel && conf))
                verr(c, vline,
                     "%s answers with either release: NAME (a registered release) or config: "
                     "FILE, a string",
                     vw);
            if ((rel || conf) && answering && strcmp(answering, tg_json_str(e, "name", "")) != 0)
                verr(c, vline, "%s: only one experiment may change what answers (%s already does)",
                     vw, answering);
            else if (rel || conf)
                answering = tg_json_str(e, "name", "");
        }
    }
}

static void check_models(struct vctx *c, struct tg_config *cfg, const json_t *root)
{
    const json_t *list = get_list(c, root, "models", "models");
    size_t n = json_array_size(list);
    if (!list)
        return;
    if (n == 0) {
        verr(c, key_line(c, root, "models"), "models must list at least one model id");
        return;
    }
    char **models = tg_calloc(n, sizeof(*models));
    if (!models) {
        c->rc = TG_E_NOMEM;
        return;
    }
    for (size_t i = 0; i < cfg->n_models; i++)
        tg_free(cfg->models[i]);
    tg_free(cfg->models);
    cfg->models = models;
    cfg->n_models = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(list, i);
        int line = tg_config_lines_elem(c->lines, list, i);
        char where[48];
        snprintf(where, sizeof(where), "models[%zu]", i);
        if (env_failed(c, v))
            continue;
        if (!json_is_string(v)) {
            type_err(c, line, where, "a string", v);
            continue;
        }
        if (json_string_length(v) == 0 || strlen(json_string_value(v)) != json_string_length(v)) {
            verr(c, line, "%s must be a non-empty model id", where);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < cfg->n_models && !dup; j++)
            dup = strcmp(cfg->models[j], json_string_value(v)) == 0;
        if (dup) {
            verr(c, line, "duplicate model id '%s'", json_string_value(v));
            continue;
        }
        cfg->models[cfg->n_models] = tg_strdup(json_string_value(v));
        if (!cfg->models[cfg->n_models]) {
            c->rc = TG_E_NOMEM;
            return;
        }
        cfg->n_models++;
    }
}

/* review: {warn_before, claim_lapse, four_eyes} — read by the review API; checked here. */
static void check_review(struct vctx *c, const json_t *root)
{
    static const char *const known[] = {"warn_before", "claim_lapse", "four_eyes",
                                        "internal_queues", "follow_up"};
    const json_t *sec = get_mapping(c, root, "review", "review");
    int64_t ms;
    if (!sec)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, sec, "review", known, TG_ARRAY_LEN(known));
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(sec, known[i]);
        char w[48];
        snprintf(w, sizeof(w), "review.%s", known[i]);
        if (v && !env_failed(c, v) && !get_duration(v, &ms))
            type_err(c, key_line(c, sec, known[i]), w, "a duration such as \"30s\"", v);
    }
    const json_t *iq = json_object_get(sec, "internal_queues");
    size_t i;
    json_t *q;
    if (iq && !json_is_array(iq))
        type_err(c, key_line(c, sec, "internal_queues"), "review.internal_queues",
                 "a list of queue names", iq);
    json_array_foreach(iq, i, q)
    {
        if (!json_is_string(q))
            type_err(c, tg_config_lines_elem(c->lines, iq, i), "review.internal_queues",
                     "a list of queue names", q);
    }
    const json_t *fe = json_object_get(sec, "four_eyes");
    if (fe && !json_is_boolean(fe))
        type_err(c, key_line(c, sec, "four_eyes"), "review.four_eyes", "true or false", fe);
    /* follow_up: {queue, sla} — where promises to wait go (stage_gate.c) */
    const json_t *fu = json_object_get(sec, "follow_up");
    static const char *const fu_keys[] = {"queue", "sla"};
    if (fu && !json_is_object(fu)) {
        type_err(c, key_line(c, sec, "follow_up"), "review.follow_up", "a mapping", fu);
        return;
    }
    if (!fu)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, fu, "review.follow_up", fu_keys, 2);
    const json_t *fq = json_object_get(fu, "queue"), *sla = json_object_get(fu, "sla");
    if (fq && (!json_is_string(fq) || !json_string_length(fq)))
        type_err(c, key_line(c, fu, "queue"), "review.follow_up.queue", "a queue name", fq);
    if (sla && !env_failed(c, sla) && (!get_duration(sla, &ms) || ms <= 0))
        type_err(c, key_line(c, fu, "sla"), "review.follow_up.sla", "a duration such as \"2m\"",
                 sla);
}

/*
 * translations: {LANG: {TEXT: TEXT}} — the customer-facing texts of the
 * configuration (scripts, holding replies, disclaimers, refusals) in
 * another language, keyed by the default (Chinese) text.  LANG is en,
 * zh-Hant or ja; zh-Hant falls back to the text in Traditional characters.
 */
static void check_translations(struct vctx *c, const json_t *root)
{
    static const char *const langs[] = {"en", "zh-Hant", "ja"};
    const json_t *sec = get_mapping(c, root, "translations", "translations");
    const char *lang, *text;
    const json_t *table, *v;
    if (!sec)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, sec, "translations", langs,
                         TG_ARRAY_LEN(langs));
    json_object_foreach((json_t *)sec, lang, table)
    {
        char w[64];
        snprintf(w, sizeof(w), "translations.%s", lang);
        if (!json_is_object(table)) {
            type_err(c, key_line(c, sec, lang), w, "a mapping of texts to their translations",
                     table);
            continue;
        }
        json_object_foreach((json_t *)table, text, v)
        {
            if (!json_is_string(v) || !json_string_length(v))
                type_err(c, key_line(c, table, text), w, "a text", v);
        }
    }
}

/*
 * labels: {LANG: {CODE: TEXT}} — what the console shows for a tag, an
 * event, a rule id or a queue in the interface's language (served by
 * console.c); a code without a label is shown as it is.
 */
#define LANG_TAG_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"

static void check_labels(struct vctx *c, const json_t *root)
{
    const json_t *sec = get_mapping(c, root, "labels", "labels");
    const char *lang, *code;
    const json_t *table, *v;
    if (!sec)
        return;
    json_object_foreach((json_t *)sec, lang, table)
    {
        char w[80];
        size_t len = strlen(lang);
        snprintf(w, sizeof(w), "labels.%.40s", lang);
        if (len < 2 || len > 16 || lang[0] == '-' || strspn(lang, LANG_TAG_CHARS) != len) {
            verr(c, key_line(c, sec, lang),
                 "labels: '%.40s' is not a language tag such as zh or en", lang);
            continue;
        }
        if (!json_is_object(table)) {
            if (!env_failed(c, table))
                type_err(c, key_line(c, sec, lang), w, "a mapping of codes to labels", table);
            continue;
        }
        json_object_foreach((json_t *)table, code, v)
        {
            if (!json_is_string(v) || !json_string_length(v)) {
                if (!env_failed(c, v))
                    verr(c, key_line(c, table, code), "%s.%.60s must be a non-empty text, not %s",
                         w, code, json_is_string(v) ? "an empty one" : tg_config_type_name(v));
            }
        }
    }
}

/* privacy: {customer_map} — whether the store keeps pseudonym -> customer
 * id (stage_record.c); a boolean. */
static void check_privacy(struct vctx *c, const json_t *root)
{
    static const char *const known[] = {"customer_map"};
    const json_t *sec = get_mapping(c, root, "privacy", "privacy");
    if (!sec)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, sec, "privacy", known, TG_ARRAY_LEN(known));
    const json_t *m = json_object_get(sec, "customer_map");
    if (m && !json_is_boolean(m))
        type_err(c, key_line(c, sec, "customer_map"), "privacy.customer_map", "true or false", m);
}

/* web: {chat, console} — the pages the daemon serves; booleans. */
static void check_web(struct vctx *c, const json_t *root)
{
    static const char *const known[] = {"chat", "console"};
    const json_t *sec = get_mapping(c, root, "web", "web");
    if (!sec)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, sec, "web", known, TG_ARRAY_LEN(known));
    for (size_t i = 0; i < TG_ARRAY_LEN(known); i++) {
        const json_t *v = json_object_get(sec, known[i]);
        char w[32];
        snprintf(w, sizeof(w), "web.%s", known[i]);
        if (v && !json_is_boolean(v))
            type_err(c, key_line(c, sec, known[i]), w, "true or false", v);
    }
}

/* One identity a user is known by: their name or a customer id mapped to them. */
struct ident {
    char *canon;       /* tg_config_identity() of it */
    const char *shown; /* as written (borrowed from the tree) */
    size_t user;       /* index in users */
    bool name;         /* the user's name, not a customer id */
};

/* A user's token, by hash, and whose it is. */
struct user_token {
    uint8_t sha256[TG_SHA256_LEN];
    size_t user;
};

/* What check_users() has seen so far. */
struct people {
    struct ident *ids;
    size_t n_ids, cap_ids;
    struct user_token *tokens;
    size_t n_tokens;
};

static void people_free(struct people *pp)
{
    for (size_t i = 0; i < pp->n_ids; i++)
        tg_free(pp->ids[i].canon);
    tg_free(pp->ids);
    tg_free(pp->tokens);
}

/*
 * Record identity v (a name or a customer id, at WHERE on line) of user ui,
 * refusing it when its canonical form already names another user, or is
 * the very same name twice.
 */
static void add_identity(struct vctx *c, struct people *pp, const json_t *users, size_t ui,
                         const json_t *v, const char *where, int line, bool is_name)
{
    struct tg_buf b;
    tg_buf_init(&b, TG_CONFIG_MAX_FILE);
    int rc = tg_config_identity(json_string_value(v), json_string_length(v), &b);
    if (rc == TG_E_NOMEM) {
        c->rc = rc;
        goto out;
    }
    if (rc) {
        verr(c, line, "%s is not a usable identity (at most 1024 characters)", where);
        goto out;
    }
    for (size_t i = 0; i < pp->n_ids; i++) {
        const struct ident *o = &pp->ids[i];
        if (o->user == ui || strcmp(o->canon, b.data) != 0)
            continue; /* a user's customer id may spell their own name */
        const char *other = tg_json_str(json_array_get(users, o->user), "name", "?");
        if (is_name && o->name && !strcmp(o->shown, json_string_value(v)))
            verr(c, line, "%s: duplicate user name '%s' (users[%zu] has it too)", where,
                 json_string_value(v), o->user);
        else
            verr(c, line,
                 "%s '%s' is the same identity as '%s' of users[%zu] ('%s') once case and "
                 "width are folded: one person, one user",
                 where, json_string_value(v), o->shown, o->user, other);
        goto out;
    }
    if (pp->n_ids == pp->cap_ids) {
        size_t cap = pp->cap_ids ? 2 * pp->cap_ids : 16;
        struct ident *grown = tg_realloc(pp->ids, cap * sizeof(*grown));
        if (!grown) {
            c->rc = TG_E_NOMEM;
            goto out;
        }
        pp->ids = grown;
        pp->cap_ids = cap;
    }
    pp->ids[pp->n_ids].canon = tg_buf_steal(&b, NULL);
    pp->ids[pp->n_ids].shown = json_string_value(v);
    pp->ids[pp->n_ids].user = ui;
    pp->ids[pp->n_ids].name = is_name;
    pp->n_ids++;
out:
    tg_buf_free(&b);
}

/* users[ui].token: one person's, never another user's nor an API key. */
static void check_token(struct vctx *c, const struct tg_config *cfg, struct people *pp,
                        const json_t *users, size_t ui, const json_t *u, const char *w)
{
    const json_t *tok = json_object_get(u, "token");
    int line = key_line(c, u, "token");
    struct user_token t = {.user = ui};
    if (!tok || env_failed(c, tok))
        return;
    if (!json_is_string(tok) || json_string_length(tok) == 0) {
        verr(c, line, "%s.token must be a non-empty string", w);
        return;
    }
    tg_sha256(json_string_value(tok), json_string_length(tok), t.sha256);
    for (size_t i = 0; i < pp->n_tokens; i++) {
        if (tg_ct_equal(pp->tokens[i].sha256, t.sha256, TG_SHA256_LEN)) {
            verr(c, line, "%s.token is the token of users[%zu] ('%s') too: one token, one person",
                 w, pp->tokens[i].user,
                 tg_json_str(json_array_get(users, pp->tokens[i].user), "name", "?"));
            return;
        }
    }
    for (size_t i = 0; i < cfg->n_api_keys; i++) {
        if (tg_ct_equal(cfg->api_keys[i].sha256, t.sha256, TG_SHA256_LEN)) {
            verr(c, line,
                 "%s.token is also API key '%s': a person's token must not be a channel's key", w,
                 cfg->api_keys[i].name);
            return;
        }
    }
    pp->tokens[pp->n_tokens++] = t;
}

/* users[ui].customer_ids: the channel customer ids this person chats as. */
static void check_customer_ids(struct vctx *c, struct people *pp, const json_t *users, size_t ui,
                               const json_t *u, const char *w)
{
    const json_t *list = json_object_get(u, "customer_ids");
    char where[96];
    size_t i;
    json_t *v;
    if (!list || env_failed(c, list))
        return;
    snprintf(where, sizeof(where), "%s.customer_ids", w);
    if (!json_is_array(list)) {
        type_err(c, key_line(c, u, "customer_ids"), where, "a list of customer ids", list);
        return;
    }
    json_array_foreach(list, i, v)
    {
        int line = tg_config_lines_elem(c->lines, list, i);
        snprintf(where, sizeof(where), "%s.customer_ids[%zu]", w, i);
        if (env_failed(c, v))
            continue;
        if (!json_is_string(v) || json_string_length(v) == 0)
            type_err(c, line, where, "a non-empty string", v);
        else
            add_identity(c, pp, users, ui, v, where, line, false);
    }
}

/* users[i], one person each: a role, a way to authenticate, and identities
 * (name, token, customer ids) that are no one else's. */
static void check_user(struct vctx *c, const struct tg_config *cfg, struct people *pp,
                       const json_t *users, size_t i)
{
    static const char *const user_keys[] = {"name",     "role",          "token",
                                            "password", "password_hash", "customer_ids"};
    const json_t *u = json_array_get(users, i);
    char w[48];
    int line = tg_config_lines_elem(c->lines, users, i);
    snprintf(w, sizeof(w), "users[%zu]", i);
    if (!json_is_object(u)) {
        type_err(c, line, w, "a mapping with name, role and token", u);
        return;
    }
    tg_config_check_keys(c->errs, c->path, c->lines, u, w, user_keys, TG_ARRAY_LEN(user_keys));
    const char *ph = tg_json_str(u, "password_hash", NULL);
    const json_t *name = json_object_get(u, "name");
    if (!json_is_string(name) ||
        !(json_object_get(u, "token") || tg_json_str(u, "password", NULL) || ph))
        verr(c, line, "%s needs a name and a token, a password or a password_hash", w);
    if (ph && !tg_password_hash_valid(ph))
        verr(c, key_line(c, u, "password_hash"),
             "%s.password_hash is not a hash from 'trustgate passwd' "
             "(pbkdf2-sha256$ITERATIONS$SALT$HASH)",
             w);
    if (tg_json_str(u, "password", NULL) && ph)
        verr(c, line, "%s has both a password and a password_hash; keep one", w);
    const char *role = tg_json_str(u, "role", "reviewer");
    if (strcmp(role, "reviewer") && strcmp(role, "supervisor") && strcmp(role, "agent") &&
        strcmp(role, "auditor"))
        verr(c, key_line(c, u, "role"),
             "%s.role must be reviewer, supervisor, agent or auditor, not '%s'", w, role);
    if (json_is_string(name) && json_string_length(name) > 0) {
        char where[64];
        snprintf(where, sizeof(where), "%s.name", w);
        add_identity(c, pp, users, i, name, where, key_line(c, u, "name"), true);
    }
    check_token(c, cfg, pp, users, i, u, w);
    check_customer_ids(c, pp, users, i, u, w);
}

/* users: [{name, role: reviewer|supervisor|agent|auditor, token?, password? | password_hash?,
 * customer_ids?}] — each element checked with its line; no two users share a name (as
 * tg_config_identity() compares them), a token or a customer id, and no token is an API key. */
static void check_users(struct vctx *c, const struct tg_config *cfg, const json_t *root)
{
    const json_t *users = get_list(c, root, "users", "users");
    struct people pp = {0};
    size_t n = json_array_size(users);
    if (n == 0)
        return;
    pp.tokens = tg_calloc(n, sizeof(*pp.tokens));
    if (!pp.tokens) {
        c->rc = TG_E_NOMEM;
        return;
    }
    for (size_t i = 0; i < n && !c->rc; i++)
        check_user(c, cfg, &pp, users, i);
    people_free(&pp);
}

/* webhooks: [{url, secret}] — each element checked with its line. */
static void check_hooks(struct vctx *c, const json_t *root)
{
    static const char *const hook_keys[] = {"url", "secret"};
    const json_t *hooks = get_list(c, root, "webhooks", "webhooks");
    size_t i;
    json_t *u;
    json_array_foreach(hooks, i, u)
    {
        char w[48];
        int line = tg_config_lines_elem(c->lines, hooks, i);
        snprintf(w, sizeof(w), "webhooks[%zu]", i);
        if (!json_is_object(u)) {
            type_err(c, line, w, "a mapping with url and secret", u);
            continue;
        }
        tg_config_check_keys(c->errs, c->path, c->lines, u, w, hook_keys, TG_ARRAY_LEN(hook_keys));
        const char *url = tg_json_str(u, "url", "");
        if (!url_ok(url))
            verr(c, key_line(c, u, "url"), "%s.url must be an http:// or https:// URL, not '%s'", w,
                 url);
        if (!tg_json_str(u, "secret", NULL) || !tg_json_str(u, "secret", "")[0])
            verr(c, line, "%s needs a secret (it signs every delivery)", w);
    }
}

/* kb.paths: a list of folders or JSONL files (a single string is accepted too). */
static void check_kb_paths(struct vctx *c, struct tg_config *cfg, const json_t *sec)
{
    const json_t *v = json_object_get(sec, "paths");
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (!v)
        return;
    if (!json_is_array(v) && !json_is_string(v)) {
        type_err(c, key_line(c, sec, "paths"), "kb.paths", "a list of paths", v);
        return;
    }
    cfg->kb_paths = tg_calloc(n ? n : 1, sizeof(*cfg->kb_paths));
    if (!cfg->kb_paths) {
        c->rc = TG_E_NOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        int line =
            json_is_array(v) ? tg_config_lines_elem(c->lines, v, i) : key_line(c, sec, "paths");
        char where[48];
        snprintf(where, sizeof(where), "kb.paths[%zu]", i);
        if (env_failed(c, e))
            continue;
        if (!json_is_string(e) || json_string_length(e) == 0) {
            type_err(c, line, where, "a path", e);
            continue;
        }
        if (resolve_path(c, json_string_value(e), &cfg->kb_paths[cfg->n_kb_paths]))
            c->rc = TG_E_NOMEM;
        else
            check_readable(c, line, where, cfg->kb_paths[cfg->n_kb_paths++]);
    }
}

/* policies: rules are compiled by the policy module; an {include: FILE} must
 * name a file that is there, reported at the line that includes it. */
static void check_policy_includes(struct vctx *c, const json_t *root)
{
    const json_t *list = json_object_get(root, "policies");
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        const json_t *inc = json_object_get(item, "include");
        char where[48], *path = NULL;
        if (!json_is_string(inc) || env_failed(c, inc) || json_string_length(inc) == 0)
            continue;
        snprintf(where, sizeof(where), "policies[%zu].include", i);
        if (resolve_path(c, json_string_value(inc), &path))
            c->rc = TG_E_NOMEM;
        else
            check_readable(c, key_line(c, item, "include"), where, path);
        tg_free(path);
    }
}

static void check_root(struct vctx *c, struct tg_config *cfg, const json_t *root)
{
    const char *known[TG_ARRAY_LEN(own_sections) + TG_ARRAY_LEN(passthrough_sections)];
    size_t nk = 0;
    for (size_t i = 0; i < TG_ARRAY_LEN(own_sections); i++)
        known[nk++] = own_sections[i];
    for (size_t i = 0; i < TG_ARRAY_LEN(passthrough_sections); i++)
        known[nk++] = passthrough_sections[i];
    tg_config_check_keys(c->errs, c->path, c->lines, root, NULL, known, nk);

    const json_t *sec = get_mapping(c, root, "server", "server");
    if (sec)
        apply_fields(c, sec, "server", server_fields, TG_ARRAY_LEN(server_fields), NULL, 0, cfg);
    check_auth(c, cfg, root);
    sec = get_mapping(c, root, "store", "store");
    if (sec)
        apply_fields(c, sec, "store", store_fields, TG_ARRAY_LEN(store_fields), NULL, 0, cfg);
    sec = get_mapping(c, root, "conversation", "conversation");
    if (sec)
        apply_fields(c, sec, "conversation", conversation_fields, TG_ARRAY_LEN(conversation_fields),
                     NULL, 0, cfg);
    check_backends(c, cfg, root);
    check_route(c, cfg, root);
    check_ladder(c, cfg, root);
    check_eval(c, root);
    check_fairness(c, root);
    check_audit(c, root);
    check_experiments(c, root);
    check_models(c, cfg, root);
    sec = get_mapping(c, root, "kb", "kb");
    if (sec) {
        static const char *const kb_extra[] = {"paths"};
        apply_fields(c, sec, "kb", kb_fields, TG_ARRAY_LEN(kb_fields), kb_extra, 1, cfg);
        check_kb_paths(c, cfg, sec);
    }
    sec = get_mapping(c, root, "intents", "intents");
    if (sec)
        apply_fields(c, sec, "intents", intents_fields, TG_ARRAY_LEN(intents_fields), NULL, 0, cfg);
    sec = get_mapping(c, root, "understand", "understand");
    if (sec)
        apply_fields(c, sec, "understand", understand_fields, TG_ARRAY_LEN(understand_fields), NULL,
                     0, cfg);
    check_review(c, root);
    check_translations(c, root);
    check_web(c, root);
    check_labels(c, root);
    check_privacy(c, root);
    check_users(c, cfg, root);
    check_hooks(c, root);
    check_policy_includes(c, root);
}

static int set_defaults(struct tg_config *cfg)
{
    cfg->listen_host = tg_strdup("127.0.0.1");
    cfg->listen_port = 8080;
    cfg->data_dir = tg_strdup("./data");
    cfg->max_body = 1024 * 1024;
    cfg->max_messages = 256;
    cfg->customer_header = tg_strdup("X-Customer-Id");
    cfg->log_level = TG_LOG_INFO;
    cfg->drain_timeout_ms = 10000;
    cfg->group_commit_ms = 5;
    cfg->idle_timeout_ms = 30 * 60 * 1000;
    cfg->history = 20;
    cfg->kb_k1 = 1.2;
    cfg->kb_b = 0.75;
    cfg->kb_top_k = 5;
    cfg->models = tg_calloc(1, sizeof(*cfg->models));
    if (cfg->models) {
        cfg->models[0] = tg_strdup("trustgate");
        cfg->n_models = cfg->models[0] ? 1 : 0;
    }
    if (!cfg->listen_host || !cfg->data_dir || !cfg->customer_header || !cfg->n_models)
        return TG_E_NOMEM;
    return TG_OK;
}

/* store.uri defaults to sqlite:<data_dir>/trustgate.db, after data_dir is known. */
static int default_store_uri(struct tg_config *cfg)
{
    struct tg_buf b;
    size_t n = strlen(cfg->data_dir);
    if (cfg->store_uri)
        return TG_OK;
    while (n > 1 && cfg->data_dir[n - 1] == '/')
        n--;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    int rc = tg_buf_printf(&b, "sqlite:%.*s%strustgate.db", (int)n, cfg->data_dir,
                           cfg->data_dir[n - 1] == '/' ? "" : "/");
    if (!rc)
        cfg->store_uri = tg_buf_steal(&b, NULL);
    tg_buf_free(&b);
    return rc;
}

/*
 * Plain API keys are kept only as hashes: wipe their text from the tree.
 * The bytes are overwritten before jansson frees them.
 */
static int redact_api_keys(json_t *root)
{
    json_t *list = json_object_get(json_object_get(root, "auth"), "api_keys");
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *k = json_object_get(json_array_get(list, i), "key");
        if (!json_is_string(k))
            continue;
        explicit_bzero((char *)(uintptr_t)json_string_value(k), json_string_length(k));
        if (json_string_set(k, "<redacted>"))
            return TG_E_NOMEM;
    }
    return TG_OK;
}

static int validate(struct tg_config_priv *p, json_t *errs)
{
    struct tg_config *cfg = &p->pub;
    struct vctx c = {.path = cfg->path, .lines = p->lines, .errs = errs};
    int rc = set_defaults(cfg);
    if (rc)
        goto out;
    if (json_is_object(cfg->root))
        check_root(&c, cfg, cfg->root);
    else if (!json_is_null(cfg->root))
        verr(&c, tg_config_lines_node(p->lines, cfg->root),
             "the top level must be a mapping of sections, not %s", tg_config_type_name(cfg->root));
    rc = c.rc;
    if (!rc)
        rc = default_store_uri(cfg);
out:
    return rc;
}

struct sorted_err {
    long line; /* 0 for messages without a line: they come first */
    size_t pos;
    json_t *msg;
};

static int cmp_err(const void *a, const void *b)
{
    const struct sorted_err *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Put "PATH:LINE: ..." messages in line order, keeping the order of equal lines. */
static int sort_errors(json_t *errs, const char *path)
{
    size_t n = json_array_size(errs), plen = strlen(path);
    if (n < 2)
        return TG_OK;
    struct sorted_err *v = tg_calloc(n, sizeof(*v));
    if (!v)
        return TG_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(errs, i));
        v[i].pos = i;
        v[i].msg = json_incref(json_array_get(errs, i));
        if (s && strncmp(s, path, plen) == 0 && s[plen] == ':') {
            char *end = NULL;
            long line = strtol(s + plen + 1, &end, 10);
            if (end != s + plen + 1 && *end == ':')
                v[i].line = line;
        }
    }
    qsort(v, n, sizeof(*v), cmp_err);
    for (size_t i = 0; i < n; i++)
        json_array_set_new(errs, i, v[i].msg);
    tg_free(v);
    return TG_OK;
}

int tg_config_load(const char *path, struct tg_config **out, json_t **errs)
{
    int rc;
    json_t *list = json_array();
    json_t *root = NULL;
    struct tg_config_lines *lines = NULL;
    struct tg_config_priv *p = NULL;

    if (!list) {
        rc = TG_E_NOMEM;
        goto out;
    }
    rc = tg_config_parse_yaml(path, &root, &lines, list);
    if (rc)
        goto out_reported;
    rc = tg_config_expand_env(root, lines, path, list);
    if (rc == TG_E_NOMEM)
        goto out;
    p = tg_calloc(1, sizeof(*p));
    if (!p) {
        rc = TG_E_NOMEM;
        goto out;
    }
    p->lines = lines;
    p->pub.root = root;
    p->pub.path = tg_strdup(path);
    lines = NULL;
    root = NULL;
    if (!p->pub.path) {
        rc = TG_E_NOMEM;
        goto out;
    }
    if (json_is_null(p->pub.root)) {
        /* An empty file is an empty mapping: every section takes its defaults. */
        json_decref(p->pub.root);
        p->pub.root = json_object();
        if (!p->pub.root) {
            rc = TG_E_NOMEM;
            goto out;
        }
    }
    rc = validate(p, list);
    if (!rc && json_array_size(list) > 0)
        rc = sort_errors(list, path) ? TG_E_NOMEM : TG_E_CONFIG;
    if (!rc)
        rc = redact_api_keys(p->pub.root);
out:
    if (rc == TG_E_NOMEM)
        tg_config_errorf(list, path, 0, "out of memory");
out_reported:
    json_decref(root);
    tg_config_lines_free(lines);
    if (rc) {
        tg_config_free(p ? &p->pub : NULL);
    } else {
        *out = &p->pub;
    }
    if (errs && rc) {
        *errs = list;
    } else {
        if (errs)
            *errs = NULL;
        json_decref(list);
    }
    return rc;
}

void tg_config_free(struct tg_config *cfg)
{
    if (!cfg)
        return;
    struct tg_config_priv *p = (struct tg_config_priv *)(void *)cfg;
    tg_free(cfg->path);
    json_decref(cfg->root);
    tg_free(cfg->listen_host);
    tg_free(cfg->data_dir);
    tg_free(cfg->customer_header);
    tg_free(cfg->api_keys);
    tg_free(cfg->store_uri);
    for (size_t i = 0; i < cfg->n_backends; i++) {
        tg_free(cfg->backends[i].base_url);
        tg_free(cfg->backends[i].api_key);
        tg_free(cfg->backends[i].model);
        tg_free(cfg->backends[i].reply);
        tg_free(cfg->backends[i].low_confidence_reply);
    }
    for (size_t i = 0; i < cfg->n_kb_paths; i++)
        tg_free(cfg->kb_paths[i]);
    tg_free(cfg->kb_paths);
    tg_free(cfg->kb_glossary);
    tg_free(cfg->intents_train);
    tg_free(cfg->policy_pattern);
    tg_free(cfg->backends);
    tg_free(cfg->route_backend);
    for (size_t i = 0; i < cfg->n_models; i++)
        tg_free(cfg->models[i]);
    tg_free(cfg->models);
    tg_config_lines_free(p->lines);
    tg_free(p);
}

const struct tg_api_key *tg_config_api_key(const struct tg_config *cfg, const char *key)
{
    uint8_t h[TG_SHA256_LEN];
    const struct tg_api_key *found = NULL;
    if (!key)
        return NULL;
    tg_sha256(key, strlen(key), h);
    for (size_t i = 0; i < cfg->n_api_keys; i++) {
        bool eq = tg_ct_equal(h, cfg->api_keys[i].sha256, TG_SHA256_LEN);
        if (eq && !found)
            found = &cfg->api_keys[i];
    }
    return found;
}

const struct tg_backend_conf *tg_config_backend(const struct tg_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n_backends; i++) {
        if (strcmp(cfg->backends[i].name, name) == 0)
            return &cfg->backends[i];
    }
    return NULL;
}

int tg_config_line(const struct tg_config *cfg, const json_t *node)
{
    return cfg ? tg_config_lines_node(tg_config_line_table(cfg), node) : 0;
}

const struct tg_config_lines *tg_config_line_table(const struct tg_config *cfg)
{
    const struct tg_config_priv *p = (const struct tg_config_priv *)(const void *)cfg;
    return cfg ? p->lines : NULL;
}
