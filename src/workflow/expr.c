/*
 * expr.c - what a workflow step reads of its run: dotted paths into the
 * run's context, {{path}} templates and the decide step's conditions
 * (workflow.h).
 */
#include "workflow/workflow.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const json_t *tg_wf_lookup(const json_t *ctx, const char *path)
{
    const json_t *v = ctx;
    const char *p = path;
    while (v && p && *p) {
        size_t n = strcspn(p, ".");
        char key[128];
        if (n == 0 || n >= sizeof(key))
            return NULL;
        memcpy(key, p, n);
        key[n] = '\0';
        if (json_is_object(v)) {
            v = json_object_get(v, key);
        } else if (json_is_array(v)) {
            char *end;
            long i = strtol(key, &end, 10);
            v = *end || i < 0 ? NULL : json_array_get(v, (size_t)i);
        } else {
            v = NULL;
        }
        p += n;
        if (*p == '.')
            p++;
    }
    return v;
}

/* Append what v is as text: a string as it is, a list of strings joined
 * by 、 (what a sentence lists), else compact JSON. */
static int put_value(struct tg_buf *b, const json_t *v)
{
    size_t i;
    json_t *e;
    bool words = json_is_array(v);
    if (!v || json_is_null(v))
        return TG_OK;
    if (json_is_string(v))
        return tg_buf_append(b, json_string_value(v), json_string_length(v));
    json_array_foreach(v, i, e) words = words && json_is_string(e);
    if (words) {
        int rc = TG_OK;
        json_array_foreach(v, i, e)
        {
            if (!rc && i)
                rc = tg_buf_puts(b, "、");
            if (!rc)
                rc = tg_buf_append(b, json_string_value(e), json_string_length(e));
        }
        return rc;
    }
    char *s = tg_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    int rc = s ? tg_buf_puts(b, s) : TG_E_NOMEM;
    free(s);
    return rc;
}

char *tg_wf_render(const char *s, const json_t *ctx)
{
    struct tg_buf b;
    int rc = TG_OK;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    while (!rc && *s) {
        const char *open = strstr(s, "{{"), *close = open ? strstr(open + 2, "}}") : NULL;
        if (!close) {
            rc = tg_buf_puts(&b, s);
            break;
        }
        rc = tg_buf_append(&b, s, (size_t)(open - s));
        const char *p = open + 2, *e = close;
        while (p < e && *p == ' ')
            p++;
        while (e > p && e[-1] == ' ')
            e--;
        char path[256];
        size_t n = (size_t)(e - p);
        if (!rc && n < sizeof(path)) {
            memcpy(path, p, n);
            path[n] = '\0';
            rc = put_value(&b, tg_wf_lookup(ctx, path));
        }
        s = close + 2;
    }
    if (!rc && !b.data)
        rc = tg_buf_puts(&b, "");
    if (rc) {
        tg_buf_free(&b);
        return NULL;
    }
    return tg_buf_steal(&b, NULL);
}

json_t *tg_wf_render_json(const json_t *tmpl, const json_t *ctx)
{
    const char *k;
    json_t *v, *out;
    size_t i;
    if (json_is_string(tmpl)) {
        const char *s = json_string_value(tmpl);
        /* "{{path}}" alone keeps the value's own type (a number, a list) */
        size_t n = strlen(s);
        if (n > 4 && !strncmp(s, "{{", 2) && !strcmp(s + n - 2, "}}") && !strstr(s + 2, "{{")) {
            char path[256];
            const char *p = s + 2, *e = s + n - 2;
            while (p < e && *p == ' ')
                p++;
            while (e > p && e[-1] == ' ')
                e--;
            if ((size_t)(e - p) < sizeof(path)) {
                memcpy(path, p, (size_t)(e - p));
                path[e - p] = '\0';
                const json_t *got = tg_wf_lookup(ctx, path);
                return got ? json_deep_copy(got) : json_null();
            }
        }
        char *r = tg_wf_render(s, ctx);
        out = r ? json_string(r) : NULL;
        tg_free(r);
        return out;
    }
    if (json_is_object(tmpl)) {
        out = json_object();
        json_object_foreach((json_t *)tmpl, k, v)
        {
            if (!out || tg_json_set(out, k, tg_wf_render_json(v, ctx))) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    if (json_is_array(tmpl)) {
        out = json_array();
        json_array_foreach(tmpl, i, v)
        {
            if (!out || tg_json_push(out, tg_wf_render_json(v, ctx))) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    return json_deep_copy(tmpl);
}

/* Does have hold want: a list holding it, or a string containing it
 * (case folded for ASCII). */
static bool contains(const json_t *have, const json_t *want)
{
    size_t i;
    json_t *e;
    if (json_is_array(have)) {
        json_array_foreach(have, i, e)
        {
            if (json_equal(e, want) || (json_is_string(e) && contains(e, want)))
                return true;
        }
        return false;
    }
    if (!json_is_string(have) || !json_is_string(want) || !json_string_length(want))
        return false;
    const char *h = json_string_value(have), *w = json_string_value(want);
    size_t hn = strlen(h), wn = strlen(w);
    for (size_t k = 0; k + wn <= hn; k++)
        if (!strncasecmp(h + k, w, wn))
            return true;
    return false;
}

bool tg_wf_case_holds(const struct tg_wf_case *c, const json_t *ctx, json_t **matched)
{
    const json_t *found = NULL;
    const json_t *have = tg_wf_lookup(ctx, c->path);
    if (c->op == TG_WF_EXISTS)
        return (have && !json_is_null(have)) == c->exists;
    json_t *want = c->value ? tg_wf_render_json(c->value, ctx) : NULL;
    bool r = false;
    switch (c->op) {
    case TG_WF_EQ:
    case TG_WF_NE: {
        bool same = have && want && json_equal((json_t *)have, want);
        if (!same && have && want && json_is_number(have) && json_is_number(want))
            same = json_number_value(have) == json_number_value(want);
        r = c->op == TG_WF_EQ ? same : !same;
        break;
    }
    case TG_WF_CONTAINS:
        r = have && want && contains(have, want);
        found = r ? want : NULL;
        break;
    case TG_WF_MENTIONS: {
        /* the text at path names one of the strings given */
        size_t i;
        json_t *e;
        if (json_is_string(want) && have && contains(have, want))
            found = want;
        json_array_foreach(want, i, e)
        {
            if (!found && have && json_is_string(e) && contains(have, e))
                found = e;
        }
        r = found != NULL;
        break;
    }
    case TG_WF_GT:
    case TG_WF_LT:
        if (json_is_number(have) && json_is_number(want))
            r = c->op == TG_WF_GT ? json_number_value(have) > json_number_value(want)
                                  : json_number_value(have) < json_number_value(want);
        break;
    case TG_WF_EXISTS:
        break;
    }
    if (matched)
        *matched = found ? json_incref((json_t *)found) : NULL;
    json_decref(want);
    return r;
}
