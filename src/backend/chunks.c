/*
 * chunks.c - a streamed chat completion read into one answer.  See chunks.h.
 *
 * Every event is validated once and then read by path with the scanner;
 * only tool calls and logprobs, which are rare, touch a jansson tree.
 */
#include "backend/chunks.h"

#include "core/jscan.h"

#include <stdio.h>
#include <string.h>

void tg_chunks_init(struct tg_chunks *c, size_t max)
{
    memset(c, 0, sizeof(*c));
    c->max = max;
    tg_sse_init(&c->sse, max);
    tg_buf_init(&c->content, max);
}

static void tool_free(struct tg_chunk_tool *t)
{
    tg_buf_free(&t->id);
    tg_buf_free(&t->type);
    tg_buf_free(&t->name);
    tg_buf_free(&t->arguments);
}

void tg_chunks_free(struct tg_chunks *c)
{
    tg_sse_free(&c->sse);
    tg_buf_free(&c->content);
    for (size_t i = 0; i < c->n_tools; i++)
        tool_free(&c->tools[i]);
    tg_free(c->tools);
    json_decref(c->logprobs);
    memset(c, 0, sizeof(*c));
}

/* The call with this index, made when first seen; NULL past the limit. */
static struct tg_chunk_tool *tool_at(struct tg_chunks *c, int index)
{
    for (size_t i = 0; i < c->n_tools; i++)
        if (c->tools[i].index == index)
            return &c->tools[i];
    if (c->n_tools >= TG_CHUNKS_MAX_TOOLS)
        return NULL;
    if (!c->tools) {
        c->tools = tg_calloc(TG_CHUNKS_MAX_TOOLS, sizeof(*c->tools));
        if (!c->tools)
            return NULL;
    }
    struct tg_chunk_tool *t = &c->tools[c->n_tools++];
    t->index = index;
    tg_buf_init(&t->id, 256);
    tg_buf_init(&t->type, 64);
    tg_buf_init(&t->name, 256);
    tg_buf_init(&t->arguments, c->max);
    return t;
}

/* The raw value at one key of the object at raw, or NULL. */
static const char *member(const char *raw, size_t len, const char *key, size_t *vl)
{
    const char *path[] = {key};
    const char *v;
    if (tg_jscan_find(raw, len, path, 1, &v, vl) != TG_OK)
        return NULL;
    return v;
}

/* A string member decoded into dst (replacing it); false when absent. */
static bool set_str(const char *raw, size_t len, const char *key, struct tg_buf *dst, bool append)
{
    size_t vl;
    const char *v = member(raw, len, key, &vl);
    if (!v || v[0] != '"')
        return false;
    if (!append)
        tg_buf_reset(dst);
    return tg_jscan_string(v, vl, dst) == TG_OK;
}

/* One element of delta.tool_calls; k is its position in the array. */
static int tool_delta(struct tg_chunks *c, const char *raw, size_t len, size_t k)
{
    static const char *const idx[] = {"index"};
    int64_t index = tg_jscan_int_at(raw, len, idx, 1, (int64_t)k);
    if (index < 0 || index > 1000000)
        return TG_E_PARSE;
    struct tg_chunk_tool *t = tool_at(c, (int)index);
    if (!t)
        return TG_E_TOOBIG;
    struct tg_buf tmp;
    size_t fl, al;
    int rc = TG_OK;
    set_str(raw, len, "id", &t->id, false);
    set_str(raw, len, "type", &t->type, false);
    const char *fn = member(raw, len, "function", &fl);
    if (!fn || fn[0] != '{')
        return TG_OK;
    /* A name comes whole in one chunk; a server that repeats it is not
     * taken as two pieces, one that splits it is joined. */
    tg_buf_init(&tmp, 256);
    if (set_str(fn, fl, "name", &tmp, false) && tmp.len &&
        !(t->name.len == tmp.len && memcmp(t->name.data, tmp.data, tmp.len) == 0))
        rc = tg_buf_append(&t->name, tmp.data, tmp.len);
    tg_buf_free(&tmp);
    const char *args = member(fn, fl, "arguments", &al);
    if (!rc && args) {
        if (args[0] == '"')
            rc = tg_jscan_string(args, al, &t->arguments);
        else if (args[0] == '{' || args[0] == '[')
            rc = tg_buf_append(&t->arguments, args, al); /* an object where a string belongs */
    }
    return rc;
}

static int tool_deltas(struct tg_chunks *c, const char *raw, size_t len)
{
    int rc = TG_OK;
    for (size_t k = 0; !rc; k++) {
        char step[24];
        const char *path[] = {step};
        const char *v;
        size_t vl;
        snprintf(step, sizeof(step), "#%zu", k);
        if (tg_jscan_find(raw, len, path, 1, &v, &vl) != TG_OK)
            break;
        if (v[0] == '{')
            rc = tool_delta(c, v, vl, k);
    }
    return rc;
}

/* choices[0].logprobs.content items, appended to c->logprobs. */
static int logprobs_delta(struct tg_chunks *c, const char *raw, size_t len)
{
    size_t vl;
    const char *v = member(raw, len, "content", &vl);
    if (!v || v[0] != '[')
        return TG_OK;
    json_t *items = json_loadb(v, vl, 0, NULL);
    if (!items)
        return TG_E_NOMEM;
    if (!c->logprobs)
        c->logprobs = json_pack("{s:[]}", "content");
    int rc = c->logprobs && !json_array_extend(json_object_get(c->logprobs, "content"), items)
                 ? TG_OK
                 : TG_E_NOMEM;
    json_decref(items);
    return rc;
}

static void meta(struct tg_chunks *c, const char *j, size_t n)
{
    static const char *const model[] = {"model"};
    static const char *const fr[] = {"choices", "#0", "finish_reason"};
    static const char *const pt[] = {"usage", "prompt_tokens"};
    static const char *const ct[] = {"usage", "completion_tokens"};
    if (!c->model[0])
        tg_jscan_str_at(j, n, model, 1, c->model, sizeof(c->model));
    tg_jscan_str_at(j, n, fr, 3, c->finish_reason, sizeof(c->finish_reason));
    int64_t p = tg_jscan_int_at(j, n, pt, 2, 0), q = tg_jscan_int_at(j, n, ct, 2, 0);
    if (p || q) {
        c->prompt_tokens = p;
        c->completion_tokens = q;
    }
}

static void error_event(struct tg_chunks *c, const char *j, size_t n)
{
    static const char *const msg[] = {"error", "message"};
    static const char *const plain[] = {"error"};
    static const char *const top[] = {"message"};
    c->error_seen = true;
    if (!tg_jscan_str_at(j, n, msg, 2, c->error, sizeof(c->error)) &&
        !tg_jscan_str_at(j, n, plain, 1, c->error, sizeof(c->error)) &&
        !tg_jscan_str_at(j, n, top, 1, c->error, sizeof(c->error)))
        snprintf(c->error, sizeof(c->error), "%.*s", (int)TG_MIN(n, 200), j);
}

/* One chunk's JSON (validated). */
static int chunk(struct tg_chunks *c, const char *j, size_t n)
{
    static const char *const err[] = {"error"};
    static const char *const delta[] = {"choices", "#0", "delta"};
    static const char *const lp[] = {"choices", "#0", "logprobs"};
    const char *d, *v;
    size_t dl, vl;
    int rc = TG_OK;
    c->events++;
    if (tg_jscan_find(j, n, err, 1, &v, &vl) == TG_OK && !tg_jscan_is_null(v, vl)) {
        error_event(c, j, n);
        return TG_OK;
    }
    meta(c, j, n);
    if (tg_jscan_find(j, n, delta, 3, &d, &dl) == TG_OK && d[0] == '{') {
        size_t before = c->content.len;
        const char *s = member(d, dl, "content", &vl);
        if (s && s[0] == '"')
            rc = tg_jscan_string(s, vl, &c->content);
        if (!rc && c->on_delta && c->content.len > before && !c->malformed)
            c->on_delta(c->delta_arg, c->content.data + before, c->content.len - before);
        s = member(d, dl, "reasoning_content", &vl);
        if (!s)
            s = member(d, dl, "reasoning", &vl);
        if (s && s[0] == '"')
            c->reasoning_bytes += vl - 2;
        s = member(d, dl, "tool_calls", &vl);
        if (!rc && s && s[0] == '[')
            rc = tool_deltas(c, s, vl);
    }
    if (!rc && tg_jscan_find(j, n, lp, 3, &v, &vl) == TG_OK && v[0] == '{')
        rc = logprobs_delta(c, v, vl);
    return rc;
}

static void on_event(const struct tg_sse_event *ev, void *arg)
{
    struct tg_chunks *c = arg;
    if (strcmp(ev->type, "ping") == 0 || strcmp(ev->type, "keep-alive") == 0)
        return;
    const char *d = ev->data;
    size_t n = ev->len;
    while (n && (*d == ' ' || *d == '\t' || *d == '\n')) {
        d++;
        n--;
    }
    if (n == 0)
        return;
    if (n == 6 && memcmp(d, "[DONE]", 6) == 0) {
        c->done_seen = true;
        return;
    }
    if (tg_jscan_validate(d, n) != TG_OK) {
        /* Lines a server meant as separate events without the blank line
         * between them: each is whole JSON on its own. */
        const char *nl = memchr(d, '\n', n);
        if (!nl || strcmp(ev->type, "error") == 0) {
            if (strcmp(ev->type, "error") == 0)
                error_event(c, d, n);
            else
                c->malformed++;
            return;
        }
        struct tg_sse_event one = *ev;
        const char *end = d + n;
        while (d < end) {
            const char *e = memchr(d, '\n', (size_t)(end - d));
            if (!e)
                e = end;
            one.data = d;
            one.len = (size_t)(e - d);
            if (one.len && tg_jscan_validate(d, one.len) != TG_OK) {
                c->malformed++;
                return;
            }
            d = e + 1;
        }
        d = ev->data;
        while (d < end) {
            const char *e = memchr(d, '\n', (size_t)(end - d));
            if (!e)
                e = end;
            if (e > d && chunk(c, d, (size_t)(e - d)))
                c->malformed++;
            d = e + 1;
        }
        return;
    }
    if (strcmp(ev->type, "error") == 0) {
        error_event(c, d, n);
        return;
    }
    if (chunk(c, d, n))
        c->malformed++; /* over a limit: the answer would not be whole */
}

int tg_chunks_feed(struct tg_chunks *c, const char *p, size_t n)
{
    int rc = tg_sse_feed(&c->sse, p, n, on_event, c);
    if (rc)
        c->malformed++;
    return rc;
}

int tg_chunks_finish(struct tg_chunks *c)
{
    int rc = tg_sse_finish(&c->sse, on_event, c);
    if (rc)
        c->malformed++;
    return rc;
}

static json_t *buf_json(const struct tg_buf *b)
{
    return json_stringn(b->data ? b->data : "", b->len);
}

json_t *tg_chunks_tool_calls(const struct tg_chunks *c, int *err)
{
    *err = TG_OK;
    if (!c->n_tools)
        return NULL;
    json_t *out = json_array();
    bool ok = out != NULL;
    /* index order, whatever order the indexes first appeared in */
    int last = -1;
    for (size_t done = 0; ok && done < c->n_tools; done++) {
        const struct tg_chunk_tool *next = NULL;
        for (size_t i = 0; i < c->n_tools; i++)
            if (c->tools[i].index > last && (!next || c->tools[i].index < next->index))
                next = &c->tools[i];
        last = next->index;
        json_t *call = json_pack("{s:o, s:s, s:{s:o, s:o}}", "id", buf_json(&next->id), "type",
                                 next->type.len ? next->type.data : "function", "function", "name",
                                 buf_json(&next->name), "arguments", buf_json(&next->arguments));
        ok = !tg_json_push(out, call);
    }
    if (!ok) {
        json_decref(out);
        *err = TG_E_NOMEM;
        return NULL;
    }
    return out;
}
