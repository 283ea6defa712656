/*
 * identity.c - the canonical form of a person's identity, so that the
 * config and the four-eyes rule agree on who is the same person: ICU's
 * NFKC_Casefold (full-width and compatibility forms become their plain
 * ones, case is folded, default-ignorable characters such as zero-width
 * spaces disappear), then whitespace runs become one space and the ends
 * are trimmed.  The normalizer is ICU's shared, immutable instance, so no
 * state is kept here and any thread may call it.
 */
#include "config/config.h"

#include <string.h>

#include <unicode/unorm2.h>
#include <unicode/ustring.h>

/* Identities are names and ids: anything longer is not one. */
#define IDENTITY_MAX_UNITS 1024

/* Append the UTF-8 of u[0..n) to out with whitespace collapsed and trimmed. */
static int append_collapsed(const UChar *u, int32_t n, struct tg_buf *out)
{
    char utf8[4 * IDENTITY_MAX_UNITS + 1];
    int32_t len = 0;
    UErrorCode st = U_ZERO_ERROR;
    u_strToUTF8(utf8, (int32_t)sizeof(utf8), &len, u, n, &st);
    if (U_FAILURE(st))
        return TG_E_PARSE;
    bool space = false, any = false;
    int rc = TG_OK;
    for (int32_t i = 0; i < len && !rc; i++) {
        char ch = utf8[i];
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v') {
            space = any;
            continue;
        }
        if (space)
            rc = tg_buf_append(out, " ", 1);
        if (!rc)
            rc = tg_buf_append(out, &ch, 1);
        space = false;
        any = true;
    }
    if (!rc && !any)
        rc = tg_buf_append(out, "", 0); /* an empty identity is still a string */
    return rc;
}

int tg_config_identity(const char *s, size_t len, struct tg_buf *out)
{
    UChar in[IDENTITY_MAX_UNITS], norm[IDENTITY_MAX_UNITS];
    int32_t n = 0;
    UErrorCode st = U_ZERO_ERROR;
    if (len > IDENTITY_MAX_UNITS)
        return TG_E_PARSE;
    u_strFromUTF8(in, IDENTITY_MAX_UNITS, &n, s, (int32_t)len, &st);
    if (U_FAILURE(st))
        return TG_E_PARSE;
    st = U_ZERO_ERROR;
    const UNormalizer2 *nfkc_cf = unorm2_getNFKCCasefoldInstance(&st);
    if (U_FAILURE(st))
        return TG_E_INTERNAL;
    int32_t m = unorm2_normalize(nfkc_cf, in, n, norm, IDENTITY_MAX_UNITS, &st);
    if (U_FAILURE(st) || st == U_STRING_NOT_TERMINATED_WARNING)
        return TG_E_PARSE;
    return append_collapsed(norm, m, out);
}
