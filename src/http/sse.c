/*
 * sse.c - server-sent events framing of an answer for streaming clients.
 *
 * trustgate decides on a whole answer before any of it leaves (the gate
 * needs the complete draft), so streaming to the client re-frames a
 * complete chat.completion as chunk events.  Framing follows the OpenAI
 * wire format: `data: <json>\\n\\n` per event, ending with `data: [DONE]`.
 */
#include "http/http.h"

#include <string.h>

static int emit(struct tg_buf *out, json_t *chunk)
{
    char *s = json_dumps(chunk, JSON_COMPACT);
    json_decref(chunk);
    if (!s)
        return TG_E_NOMEM;
    int rc = tg_buf_printf(out, "data: %s\n\n", s);
    free(s);
    return rc;
}

static json_t *chunk_base(const json_t *c)
{
    return json_pack("{s:O, s:s, s:O, s:O}", "id", json_object_get(c, "id"), "object",
                     "chat.completion.chunk", "created", json_object_get(c, "created"), "model",
                     json_object_get(c, "model"));
}

static json_t *with_choice(json_t *chunk, json_t *delta, const char *finish)
{
    if (chunk)
        json_object_set_new(
            chunk, "choices",
            json_pack("[{s:i, s:o, s:s?}]", "index", 0, "delta", delta, "finish_reason", finish));
    else
        json_decref(delta);
    if (chunk && !finish)
        json_object_set_new(json_array_get(json_object_get(chunk, "choices"), 0), "finish_reason",
                            json_null());
    return chunk;
}

/* Length of the longest prefix of s (at most max bytes) that ends on a character boundary. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    if (n == 0) {
        /* a piece smaller than one character: take the whole character */
        n = max;
        while (n < len && ((unsigned char)s[n] & 0xC0) == 0x80)
            n++;
    }
    return n;
}

int tg_sse_frame_completion(const json_t *c, size_t piece_bytes, struct tg_buf *out)
{
    json_t *choice = json_array_get(json_object_get(c, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    const char *text = tg_json_str(msg, "content", "");
    size_t len = strlen(text);
    int rc;
    if (!piece_bytes)
        piece_bytes = 64;
    rc = emit(out, with_choice(chunk_base(c),
                               json_pack("{s:s, s:s}", "role", "assistant", "content", ""), NULL));
    while (!rc && len) {
        size_t n = utf8_cut(text, len, piece_bytes);
        rc = emit(out, with_choice(chunk_base(c), json_pack("{s:s%}", "content", text, n), NULL));
        text += n;
        len -= n;
    }
    if (rc)
        return rc;
    json_t *last =
        with_choice(chunk_base(c), json_object(), tg_json_str(choice, "finish_reason", "stop"));
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)c, key, v)
    {
        if (strcmp(key, "id") && strcmp(key, "object") && strcmp(key, "created") &&
            strcmp(key, "model") && strcmp(key, "choices"))
            json_object_set(last, key, v);
    }
    rc = emit(out, last);
    if (!rc)
        rc = tg_buf_puts(out, "data: [DONE]\n\n");
    return rc;
}
