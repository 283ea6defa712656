/*
 * variants.c - the robustness probes of `trustgate eval robustness`: each
 * labelled question rewritten the way customers actually type it.  See
 * eval.h (tg_eval_variant).
 */
#include "eval/eval.h"

#include <stdio.h>
#include <string.h>
#include <unicode/utrans.h>

const char *const tg_eval_variant_names[TG_VARIANT__COUNT] = {"original",  "typo",   "traditional",
                                                              "fullwidth", "spaces", "mixed"};

/* One UTF-8 character at s (NUL-terminated); its length in *n.  An invalid
 * byte reads as U+FFFD, one byte long. */
static uint32_t cp_at(const char *s, size_t *n)
{
    uint32_t cp;
    *n = tg_utf8_decode(s, strnlen(s, 4), &cp);
    if (!*n) {
        *n = 1;
        return 0xFFFD;
    }
    return cp;
}

static void put_cp(struct tg_buf *b, uint32_t c)
{
    char o[4];
    tg_buf_append(b, o, tg_utf8_encode(c, o));
}

static bool is_cjk(uint32_t c)
{
    return c >= 0x4E00 && c <= 0x9FFF;
}

/* Swap the two CJK characters nearest the middle that stand side by side:
 * the commonest slip of a pinyin keyboard. */
static int typo(const char *q, struct tg_buf *out)
{
    size_t len = strlen(q), best = SIZE_MAX, bestd = SIZE_MAX, n1, n2;
    for (size_t i = 0; i < len;) {
        uint32_t a = cp_at(q + i, &n1);
        if (i + n1 < len && is_cjk(a) && is_cjk(cp_at(q + i + n1, &n2))) {
            size_t d = i > len / 2 ? i - len / 2 : len / 2 - i;
            if (d < bestd) {
                bestd = d;
                best = i;
            }
        }
        i += n1;
    }
    if (best == SIZE_MAX)
        return tg_buf_puts(out, q);
    cp_at(q + best, &n1);
    cp_at(q + best + n1, &n2);
    tg_buf_append(out, q, best);
    tg_buf_append(out, q + best + n1, n2);
    tg_buf_append(out, q + best, n1);
    return tg_buf_puts(out, q + best + n1 + n2);
}

/* ASCII letters, digits and punctuation as their full-width forms (U+FF01..FF5E). */
static int fullwidth(const char *q, struct tg_buf *out)
{
    for (const char *p = q; *p;) {
        size_t n;
        uint32_t c = cp_at(p, &n);
        put_cp(out, c > 0x20 && c < 0x7F ? c - 0x21 + 0xFF01 : c);
        p += n;
    }
    return out->data ? TG_OK : TG_E_NOMEM;
}

/* A space after every second character, as a hurried phone typist leaves them. */
static int spaces(const char *q, struct tg_buf *out)
{
    int k = 0;
    for (const char *p = q; *p;) {
        size_t n;
        cp_at(p, &n);
        tg_buf_append(out, p, n);
        if (++k % 2 == 0 && p[n])
            tg_buf_puts(out, " ");
        p += n;
    }
    return out->data ? TG_OK : TG_E_NOMEM;
}

/* A common term in English, as bilingual customers write. */
static int mixed(const char *q, struct tg_buf *out)
{
    static const char *const terms[][2] = {
        {"信用卡", "credit card"}, {"银行卡", "bank card"}, {"理赔", "claim"},
        {"保单", "policy"},        {"保险", "insurance"},   {"账户", "account"},
        {"转账", "transfer"},      {"密码", "password"},    {"贷款", "loan"},
        {"保费", "premium"},       {"医院", "hospital"},    {"手机", "phone"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(terms); i++) {
        const char *hit = strstr(q, terms[i][0]);
        if (hit) {
            tg_buf_append(out, q, (size_t)(hit - q));
            tg_buf_printf(out, " %s ", terms[i][1]);
            return tg_buf_puts(out, hit + strlen(terms[i][0]));
        }
    }
    tg_buf_puts(out, q);
    return tg_buf_puts(out, " thanks");
}

/* Simplified -> Traditional with ICU's Hans-Hant transliterator. */
static int traditional(const char *q, struct tg_buf *out)
{
    UErrorCode st = U_ZERO_ERROR;
    UParseError pe;
    static const UChar id[] = u"Hans-Hant";
    UTransliterator *t = utrans_openU(id, -1, UTRANS_FORWARD, NULL, 0, &pe, &st);
    if (U_FAILURE(st))
        return TG_E_INTERNAL;
    /* UTF-8 -> UTF-16 by hand: the questions are short */
    size_t len = strlen(q);
    UChar *u = tg_malloc((2 * len + 8) * sizeof(UChar));
    int32_t n = 0, cap = (int32_t)(2 * len + 8);
    for (const char *p = q; u && *p;) {
        size_t k;
        uint32_t c = cp_at(p, &k);
        if (c >= 0x10000) {
            c -= 0x10000;
            u[n++] = (UChar)(0xD800 + (c >> 10));
            u[n++] = (UChar)(0xDC00 + (c & 0x3FF));
        } else {
            u[n++] = (UChar)c;
        }
        p += k;
    }
    int32_t limit = n;
    if (u)
        utrans_transUChars(t, u, &n, cap, 0, &limit, &st);
    utrans_close(t);
    if (!u || U_FAILURE(st)) {
        tg_free(u);
        return TG_E_INTERNAL;
    }
    for (int32_t i = 0; i < n; i++) {
        uint32_t c = u[i];
        if (c >= 0xD800 && c < 0xDC00 && i + 1 < n)
            c = 0x10000 + ((c - 0xD800) << 10) + (u[++i] - 0xDC00);
        put_cp(out, c);
    }
    tg_free(u);
    return out->data ? TG_OK : TG_E_NOMEM;
}

int tg_eval_variant(enum tg_eval_variant v, const char *q, struct tg_buf *out)
{
    switch (v) {
    case TG_VARIANT_TYPO:
        return typo(q, out);
    case TG_VARIANT_TRADITIONAL:
        return traditional(q, out);
    case TG_VARIANT_FULLWIDTH:
        return fullwidth(q, out);
    case TG_VARIANT_SPACES:
        return spaces(q, out);
    case TG_VARIANT_MIXED:
        return mixed(q, out);
    default:
        return tg_buf_puts(out, q);
    }
}
