/*
 * sse.c - the server-sent events reader.  See sse.h.
 *
 * Complete lines are read in place from the piece the caller gives; only
 * a line split across pieces is copied into s->line first.  Data lines go
 * into s->data, so an event is handed over as one contiguous string
 * whatever its framing.
 */
#include "core/sse.h"

#include <string.h>

void tg_sse_init(struct tg_sse *s, size_t max)
{
    memset(s, 0, sizeof(*s));
    tg_buf_init(&s->line, max);
    tg_buf_init(&s->data, max);
    s->retry_ms = -1;
}

void tg_sse_free(struct tg_sse *s)
{
    tg_buf_free(&s->line);
    tg_buf_free(&s->data);
}

static void reset_event(struct tg_sse *s)
{
    tg_buf_reset(&s->data);
    s->event[0] = '\0';
    s->has_data = false;
}

static void dispatch(struct tg_sse *s, tg_sse_cb cb, void *arg, bool at_eof)
{
    if (s->has_data) {
        struct tg_sse_event ev = {
            .type = s->event,
            .data = s->data.data ? s->data.data : "",
            .len = s->data.len,
            .id = s->last_id,
            .at_eof = at_eof,
        };
        cb(&ev, arg);
    }
    reset_event(s);
}

static bool field_is(const char *name, size_t nl, const char *want)
{
    size_t wl = strlen(want);
    return nl == wl && memcmp(name, want, wl) == 0;
}

/* One line, without its line end. */
static int line(struct tg_sse *s, const char *p, size_t n, tg_sse_cb cb, void *arg)
{
    if (!s->started) {
        s->started = true;
        if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
            p += 3;
            n -= 3;
        }
    }
    if (n == 0) {
        dispatch(s, cb, arg, false);
        return TG_OK;
    }
    if (p[0] == ':')
        return TG_OK; /* a comment */
    const char *colon = memchr(p, ':', n);
    size_t nl = colon ? (size_t)(colon - p) : n;
    const char *v = colon ? colon + 1 : p + n;
    size_t vl = (size_t)(p + n - v);
    if (vl && v[0] == ' ') {
        v++;
        vl--;
    }
    if (field_is(p, nl, "data")) {
        int rc = s->has_data ? tg_buf_append(&s->data, "\n", 1) : TG_OK;
        if (!rc)
            rc = tg_buf_append(&s->data, v, vl);
        s->has_data = true;
        return rc;
    }
    if (field_is(p, nl, "event")) {
        size_t k = TG_MIN(vl, sizeof(s->event) - 1);
        memcpy(s->event, v, k);
        s->event[k] = '\0';
    } else if (field_is(p, nl, "id")) {
        if (!memchr(v, '\0', vl)) {
            size_t k = TG_MIN(vl, sizeof(s->last_id) - 1);
            memcpy(s->last_id, v, k);
            s->last_id[k] = '\0';
        }
    } else if (field_is(p, nl, "retry")) {
        int64_t ms = 0;
        size_t i;
        for (i = 0; i < vl && v[i] >= '0' && v[i] <= '9' && ms < INT64_MAX / 10 - 9; i++)
            ms = ms * 10 + (v[i] - '0');
        if (i == vl && vl)
            s->retry_ms = ms;
    }
    return TG_OK;
}

int tg_sse_feed(struct tg_sse *s, const char *p, size_t n, tg_sse_cb cb, void *arg)
{
    const char *end = p + n;
    int rc = TG_OK;
    if (s->cr_pending && p < end) {
        s->cr_pending = false;
        if (*p == '\n')
            p++;
    }
    while (p < end && !rc) {
        const char *q = p;
        while (q < end && *q != '\n' && *q != '\r')
            q++;
        if (q == end) {
            rc = tg_buf_append(&s->line, p, (size_t)(q - p));
            break;
        }
        if (s->line.len) {
            rc = tg_buf_append(&s->line, p, (size_t)(q - p));
            if (!rc)
                rc = line(s, s->line.data, s->line.len, cb, arg);
            tg_buf_reset(&s->line);
        } else {
            rc = line(s, p, (size_t)(q - p), cb, arg);
        }
        p = q + 1;
        if (*q == '\r') {
            if (p < end && *p == '\n')
                p++;
            else if (p == end)
                s->cr_pending = true;
        }
    }
    return rc;
}

int tg_sse_finish(struct tg_sse *s, tg_sse_cb cb, void *arg)
{
    int rc = TG_OK;
    if (s->line.len) {
        rc = line(s, s->line.data, s->line.len, cb, arg);
        tg_buf_reset(&s->line);
    }
    if (!rc)
        dispatch(s, cb, arg, true);
    s->cr_pending = false;
    return rc;
}
