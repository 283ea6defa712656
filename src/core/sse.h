/*
 * sse.h - a reader for server-sent event streams as the WHATWG HTML
 * standard defines them (section 9.2, "Server-sent events"), fed the bytes
 * of a response body in whatever pieces the network delivers.
 *
 * Lines end in CRLF, LF or CR (a CR at the end of one piece and an LF at
 * the start of the next are one line end).  A line starting with ':' is a
 * comment (keep-alive pings).  `data:` lines, with or without a space after
 * the colon, append to the event's data, joined by LF; `event:` names its
 * type; `id:` and `retry:` are kept; any other field is ignored.  A blank
 * line dispatches the event.  A byte-order mark at the very start is
 * skipped.
 *
 * One deviation, on purpose: the standard discards an event still pending
 * when the stream ends.  tg_sse_finish() hands it over instead, flagged, so
 * a server that ends its body without the last blank line loses nothing;
 * callers decide whether a truncated stream is complete by its content
 * (a finish reason), never by framing alone.
 *
 * A reader owns two bounded buffers; an event or line longer than the
 * limit given at init is an error, never a truncated event.
 */
#ifndef TG_SSE_H
#define TG_SSE_H

#include "core/core.h"

struct tg_sse {
    struct tg_buf line;  /* the line being read */
    struct tg_buf data;  /* the pending event's data, lines joined by LF */
    char event[32];      /* the pending event's type (cut to fit), "" for the default ("message") */
    char last_id[128];   /* the last event ID seen (kept across events, as the standard says) */
    int64_t retry_ms;    /* the last `retry:` value, -1 when none */
    bool has_data;       /* a data line was seen since the last dispatch */
    bool cr_pending;     /* the last piece ended in CR: a leading LF belongs to it */
    bool started;        /* the first line was read (BOM check done) */
};

/* One dispatched event: data is NUL-terminated (len excludes it); type is ""
 * for the default type.  at_eof marks an event not closed by a blank line. */
struct tg_sse_event {
    const char *type;
    const char *data;
    size_t len;
    const char *id;
    bool at_eof;
};

typedef void (*tg_sse_cb)(const struct tg_sse_event *ev, void *arg);

/* Start a reader whose lines and events may be at most max bytes each. */
void tg_sse_init(struct tg_sse *s, size_t max);
void tg_sse_free(struct tg_sse *s);

/*
 * Read the next n bytes of the stream, calling cb for every event they
 * complete, in order, before returning.  TG_OK, or TG_E_TOOBIG when a line
 * or an event's data exceeds the limit (the reader is then unusable).
 */
int tg_sse_feed(struct tg_sse *s, const char *p, size_t n, tg_sse_cb cb, void *arg);

/*
 * The stream ended: a last line without its line end is read, and an event
 * with data still pending is dispatched with at_eof set.  TG_OK or
 * TG_E_TOOBIG.
 */
int tg_sse_finish(struct tg_sse *s, tg_sse_cb cb, void *arg);

#endif
