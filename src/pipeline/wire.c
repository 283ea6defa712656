/*
 * wire.c - the OpenAI chat-completions wire format, written directly with
 * the JSON writer: a chat.completion object, or the same answer framed as
 * chat.completion.chunk server-sent events.
 *
 * trustgate decides on a whole answer before any of it leaves (the gate
 * needs the complete draft), so a streaming client receives the complete,
 * gated answer re-framed as chunks: a role chunk, content chunks that never
 * split a UTF-8 character, a final chunk with finish_reason, usage and the
 * `trustgate` object, then `data: [DONE]`.
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
    tg_jw_strn(&w, c->content, c->content_len);
    tg_jw_end(&w);
    tg_jw_kstr(&w, "finish_reason", c->finish_reason);
    tg_jw_end(&w);
    tg_jw_end(&w);
    usage(&w, c);
    extra(&w, c);
    tg_jw_end(&w);
    return tg_jw_finish(&w);
}

/* One chunk event; content NULL with role gives the opening chunk, both NULL
 * the final one. */
static int chunk(const struct tg_completion *c, struct tg_buf *out, const char *role,
                 const char *content, size_t len, bool last)
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
    if (role)
        tg_jw_kstr(&w, "role", role);
    if (content) {
        tg_jw_key(&w, "content");
        tg_jw_strn(&w, content, len);
    }
    tg_jw_end(&w);
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
        return chunk(c, out, "assistant", "", 0, false);
    case TG_SSE_TEXT:
        return len ? chunk(c, out, NULL, text, len, false) : TG_OK;
    case TG_SSE_CLOSE: {
        int rc = chunk(c, out, NULL, NULL, 0, true);
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
    int rc = chunk(c, out, "assistant", "", 0, false);
    while (!rc && len) {
        size_t n = utf8_cut(text, len, piece_bytes);
        rc = chunk(c, out, NULL, text, n, false);
        text += n;
        len -= n;
    }
    if (!rc)
        rc = chunk(c, out, NULL, NULL, 0, true);
    if (!rc)
        rc = tg_buf_append(out, "data: [DONE]\n\n", 14);
    return rc;
}
