/*
 * env.c - ${NAME} in the config's scalars replaced by the environment
 * variable NAME, each failure reported at its line.  See config.h
 * (tg_config_expand_env).
 */
#include "config/config_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
