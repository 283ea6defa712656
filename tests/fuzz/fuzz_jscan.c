/*
 * fuzz_jscan.c - the JSON scanner on arbitrary bytes: it must never read
 * out of bounds, must agree with jansson on what is valid (within its
 * depth limit), and every string it decodes must be valid UTF-8.
 */
#include "fuzz.h"

#include "core/jscan.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    int ok = tg_jscan_validate(text, size) == TG_OK;
    json_error_t err;
    json_t *j = json_loadb(text, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    /* Whatever jansson accepts we must accept.  The reverse holds except
     * for jansson's own limits, which the grammar does not have: numbers it
     * cannot represent and NUL in object keys (its message names which; the
     * message prefix is compared because the rest quotes the input). */
    static const char *const limits[] = {"too big", "real number overflow",
                                         "NUL byte in object key"};
    /* (jansson stops reading at a raw NUL byte; the grammar does not.) */
    if (!ok && j && !memchr(data, 0, size))
        abort();
    if (ok && !j) {
        bool known = false;
        for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
            known |= strncmp(err.text, limits[i], strlen(limits[i])) == 0;
        if (!known)
            abort();
    }
    json_decref(j);
    if (!ok)
        return 0;
    static const char *const paths[][4] = {
        {"choices", "#0", "message", "content"}, {"#0", NULL, NULL, NULL}, {"a", "#1", "b", NULL}};
    static const size_t lens[] = {4, 1, 3};
    for (size_t i = 0; i < 3; i++) {
        const char *v;
        size_t vl;
        if (tg_jscan_find(text, size, paths[i], lens[i], &v, &vl) != TG_OK)
            continue;
        if (v < text || v + vl > text + size)
            abort();
        if (v[0] == '"') {
            struct tg_buf b;
            tg_buf_init(&b, TG_BUF_UNLIMITED);
            if (tg_jscan_string(v, vl, &b) != TG_OK)
                abort();
            json_t *s = json_stringn(b.data ? b.data : "", b.len);
            if (!s)
                abort(); /* decoded text is not UTF-8 */
            json_decref(s);
            tg_buf_free(&b);
        }
    }
    return 0;
}
