/*
 * fuzz_sse.c - the upstream stream reader (core/sse.c under
 * backend/chunks.c) on arbitrary bytes: it must never read out of bounds,
 * and where the network splits the body must not matter — the input read
 * whole, and read in pieces whose sizes the input's first byte chooses,
 * give the same answer, tool calls, finish reason and error count.
 * Seeds: the fake upstream's dialects (tests/support/fake_upstream.md).
 */
#include "fuzz.h"

#include "backend/chunks.h"

#include <stdlib.h>
#include <string.h>

static void read_all(const char *p, size_t n, size_t piece, struct tg_chunks *c)
{
    tg_chunks_init(c, 1 << 16);
    for (size_t i = 0; i < n; i += piece)
        if (tg_chunks_feed(c, p + i, n - i < piece ? n - i : piece))
            break;
    tg_chunks_finish(c);
}

static char *tools_text(const struct tg_chunks *c)
{
    int err;
    json_t *t = tg_chunks_tool_calls(c, &err);
    char *s = t ? json_dumps(t, JSON_COMPACT) : NULL;
    json_decref(t);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = (size_t)(data[0] % 17) + 1;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    struct tg_chunks a, b;
    read_all(text, n, n ? n : 1, &a);
    read_all(text, n, piece, &b);
    if (a.malformed != b.malformed || a.done_seen != b.done_seen ||
        a.error_seen != b.error_seen || strcmp(a.finish_reason, b.finish_reason) != 0 ||
        a.content.len != b.content.len ||
        (a.content.len && memcmp(a.content.data, b.content.data, a.content.len) != 0))
        abort();
    char *ta = tools_text(&a), *tb = tools_text(&b);
    if ((ta == NULL) != (tb == NULL) || (ta && strcmp(ta, tb) != 0))
        abort();
    free(ta);
    free(tb);
    tg_chunks_free(&a);
    tg_chunks_free(&b);
    return 0;
}
