/*
 * wire.c - the OpenAI chat-completions wire format, written directly with
 * the JSON writer: a chat.completion object, or the same answer framed as
 * chat.completion.chunk server-sent events.
 *
 * trustgate decides on a whole answer before any of it leaves (the gate
 * needs the complete draft), so a streaming client receives the complete,
 * gated answer re-framed as chunks: a role chunk, content chunks that never
 * split a UTF-8 character, the tool calls as deltas (as OpenAI streams
 * them: index, id, type and name first, then the arguments), a final chunk
 * with finish_reason, logprobs, usage and the `trustgate` object, then
 * `data: [DONE]`.
 */
#include "pipeline/pipeline.h"

#include "core/jw.h"

#include <string.h>

static void head(struct tg_jw *w, const struct tg_completion *c, const char *object)
{
    tg_jw_kstr(w, "id", c->id);
    tg_jw_kstr(w, "object", object);
    tg_jw_kint(w, "created", c->created);
    tg_jw_kstr(w, "model", c->model);
}

static void usage(struct tg_jw *w, const struct tg_completion *c)
{
    tg_jw_key(w, "usage");
    tg_jw_obj(w);
    tg_jw_kint(w, "prompt_tokens", c->prompt_tokens);
    tg_jw_kint(w, "completion_tokens", c->completion_tokens);
    tg_jw_kint(w, "total_tokens", c->prompt_tokens + c->completion_tokens);
    tg_jw_end(w);
}

static void extra(struct tg_jw *w, const struct tg_completion *c)
{
    if (c->extra_key && c->extra) {
        tg_jw_key(w, c->extra_key);
        tg_jw_raw(w, c->extra, c->extra_len);
    }
}

int tg_wire_completion(const struct tg_completion *c, struct tg_buf *out)
{
    struct tg_jw w;
    tg_jw_init(&w, out);
    tg_jw_obj(&w);
    head(&w, c, "chat.completion");
    tg_jw_key(&w, "choices");
    tg_jw_arr(&w);
    tg_jw_obj(&w);
    tg_jw_kint(&w, "index", 0);
    tg_jw_key(&w, "message");
    tg_jw_obj(&w);
    tg_jw_kstr(&w, "role", "assistant");
    tg_jw_key(&w, "content");
    if (c->tool_calls && !c->content_len)
        tg_jw_null(&w);
    else
        tg_jw_strn(&w, c->content, c->content_len);
    if (c->tool_calls) {
        tg_jw_key(&w, "tool_calls");
        tg_jw_json(&w, c->tool_calls);
    }
    tg_jw_end(&w);
    if (c->logprobs) {
        tg_jw_key(&w, "logprobs");
        tg_jw_json(&w, c->logprobs);
    }
    tg_jw_kstr(&w, "finish_reason", c->finish_reason);
    tg_jw_end(&w);
    tg_jw_end(&w);
    usage(&w, c);
    extra(&w, c);
    tg_jw_end(&w);
    return tg_jw_finish(&w);
}

/* What one chunk's delta carries: a role, text, or one tool call's head
 * (index, id, type, name) or arguments; all empty for the final chunk. */
struct delta {
    const char *role;
    const char *content;
    size_t len;
    const json_t *call; /* a tool call, or NULL */
    size_t call_index;
    bool call_head;
};

static void tool_delta(struct tg_jw *w, const struct delta *d)
{
    const json_t *fn = json_object_get(d->call, "function");
    tg_jw_key(w, "tool_calls");
    tg_jw_arr(w);
    tg_jw_obj(w);
    tg_jw_kint(w, "index", (int64_t)d->call_index);
    if (d->call_head) {
        tg_jw_kstr(w, "id", tg_json_str(d->call, "id", ""));
        tg_jw_kstr(w, "type", tg_json_str(d->call, "type", "function"));
    }
    tg_jw_key(w, "function");
    tg_jw_obj(w);
    if (d->call_head)
        tg_jw_kstr(w, "name", tg_json_str(fn, "name", ""));
    tg_jw_kstr(w, "arguments", d->call_head ? "" : tg_json_str(fn, "arguments", ""));
    tg_jw_end(w);
    tg_jw_end(w);
    tg_jw_end(w);
}

/* One chunk event; last adds finish_reason, logprobs, usage and the extra member. */
static int chunk(const struct tg_completion *c, struct tg_buf *out, const struct delta *d,
                 bool last)
{
    struct tg_jw w;
    int rc = tg_buf_append(out, "data: ", 6);
    tg_jw_init(&w, out);
    tg_jw_obj(&w);
    head(&w, c, "chat.completion.chunk");
    tg_jw_key(&w, "choices");
    tg_jw_arr(&w);
    tg_jw_obj(&w);
    tg_jw_kint(&w, "index", 0);
    tg_jw_key(&w, "delta");
    tg_jw_obj(&w);
    if (d->role)
        tg_jw_kstr(&w, "role", d->role);
    if (d->content) {
        tg_jw_key(&w, "content");
        tg_jw_strn(&w, d->content, d->len);
    }
    if (d->call)
        tool_delta(&w, d);
    tg_jw_end(&w);
    if (last && c->logprobs) {
        tg_jw_key(&w, "logprobs");
        tg_jw_json(&w, c->logprobs);
    }
    tg_jw_kstr(&w, "finish_reason", last ? c->finish_reason : NULL);
    tg_jw_end(&w);
    tg_jw_end(&w);
    if (last) {
        usage(&w, c);
        extra(&w, c);
    }
    tg_jw_end(&w);
    if (!rc)
        rc = tg_jw_finish(&w);
    if (!rc)
        rc = tg_buf_append(out, "\n\n", 2);
    return rc;
}

/* The opening chunk (role), a text chunk, or the final chunk (last). */
static int text_chunk(const struct tg_completion *c, struct tg_buf *out, const char *role,
                      const char *content, size_t len, bool last)
{
    struct delta d = {.role = role, .content = content, .len = len};
    return chunk(c, out, &d, last);
}

/* Each tool call as two chunks: its head, then its arguments. */
static int tools(const struct tg_completion *c, struct tg_buf *out)
{
    int rc = TG_OK;
    for (size_t i = 0; !rc && i < json_array_size(c->tool_calls); i++) {
        struct delta d = {.call = json_array_get(c->tool_calls, i), .call_index = i};
        for (int part = 0; part < 2 && !rc; part++) {
            d.call_head = part == 0;
            rc = chunk(c, out, &d, false);
        }
    }
    return rc;
}

/* Length of the longest prefix of s (at most max bytes) that ends on a
 * character boundary; a whole character when max is smaller than one. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    if (n == 0) {
        n = max;
        while (n < len && ((unsigned char)s[n] & 0xC0) == 0x80)
            n++;
    }
    return n;
}

int tg_wire_sse_part(const struct tg_completion *c, enum tg_sse_part part, const char *text,
                     size_t len, struct tg_buf *out)
{
    switch (part) {
    case TG_SSE_OPEN:
        return text_chunk(c, out, "assistant", "", 0, false);
    case TG_SSE_TEXT:
        return len ? text_chunk(c, out, NULL, text, len, false) : TG_OK;
    case TG_SSE_CLOSE: {
        int rc = tools(c, out);
        if (!rc)
            rc = text_chunk(c, out, NULL, NULL, 0, true);
        return rc ? rc : tg_buf_append(out, "data: [DONE]\n\n", 14);
    }
    }
    return TG_E_INVAL;
}

int tg_wire_sse(const struct tg_completion *c, size_t piece_bytes, struct tg_buf *out)
{
    const char *text = c->content;
    size_t len = c->content_len;
    if (!piece_bytes)
        piece_bytes = 64;
    int rc = text_chunk(c, out, "assistant", "", 0, false);
    while (!rc && len) {
        size_t n = utf8_cut(text, len, piece_bytes);
        rc = text_chunk(c, out, NULL, text, n, false);
        text += n;
        len -= n;
    }
    if (!rc)
        rc = tools(c, out);
    if (!rc)
        rc = text_chunk(c, out, NULL, NULL, 0, true);
    if (!rc)
        rc = tg_buf_append(out, "data: [DONE]\n\n", 14);
    return rc;
}
