/*
 * chunks.h - an OpenAI-style streamed answer (`chat.completion.chunk`
 * server-sent events) read into one whole answer: content, tool calls,
 * logprobs, usage, model and finish reason, whatever the server's dialect.
 *
 * The events come through the SSE reader (core/sse.h), so framing follows
 * the WHATWG rules; each event's JSON is scanned in place (core/jscan.h),
 * with any whitespace, escapes and key order, unknown fields ignored.
 * `reasoning_content` deltas (DeepSeek, Qwen, vLLM reasoning parsers) are
 * counted, never taken as answer text.  Tool-call deltas are joined by
 * their `index`: the id, type and name from whichever chunk carries them,
 * the arguments appended piece by piece (a server that sends arguments as
 * an object instead of a string has it written out as JSON text).
 * `data: [DONE]`, an event of type `error` or a chunk with a top-level
 * `error` object are recognised; keep-alive comments and `ping` events
 * are skipped.
 *
 * Used by the upstream backend (openai.c) and by the fuzz target; no
 * network, no event loop.
 */
#ifndef TG_BACKEND_CHUNKS_H
#define TG_BACKEND_CHUNKS_H

#include "core/sse.h"

#define TG_CHUNKS_MAX_TOOLS 64

struct tg_chunk_tool {
    int index;
    struct tg_buf id, type, name, arguments;
};

struct tg_chunks {
    struct tg_sse sse;
    struct tg_buf content;   /* the answer text so far */
    size_t reasoning_bytes;  /* reasoning text seen (not part of the answer) */
    struct tg_chunk_tool *tools;
    size_t n_tools;
    json_t *logprobs;        /* {"content": [...]} joined over the chunks, or NULL */
    char model[96];
    char finish_reason[24];
    char error[256];         /* the upstream's in-stream error message, "" when none */
    int64_t prompt_tokens, completion_tokens;
    int malformed;           /* events that were not JSON, or over a limit */
    int events;              /* JSON events read */
    bool done_seen;          /* data: [DONE] */
    bool error_seen;
    size_t max;              /* limit of each buffer */
    /* called with each piece of answer text as it arrives (may be NULL) */
    void (*on_delta)(void *arg, const char *text, size_t len);
    void *delta_arg;
};

/* Start reading; every line, event, answer and tool argument is at most max bytes. */
void tg_chunks_init(struct tg_chunks *c, size_t max);
void tg_chunks_free(struct tg_chunks *c);

/* Read the next n bytes of the body.  TG_OK, or TG_E_TOOBIG when a line or
 * event is over the limit (counted as malformed too). */
int tg_chunks_feed(struct tg_chunks *c, const char *p, size_t n);
/* The body ended (reads a last event not closed by a blank line). */
int tg_chunks_finish(struct tg_chunks *c);

/*
 * The tool calls as the OpenAI shape [{id, type, function: {name,
 * arguments}}] in index order: a new reference, NULL when there were none
 * (or on allocation failure, then *err is TG_E_NOMEM).
 */
json_t *tg_chunks_tool_calls(const struct tg_chunks *c, int *err);

#endif
