/*
 * lang.c - the customer's language by script, and Simplified Chinese
 * written in Traditional characters.  See lang.h.
 */
#include "text/lang.h"

#include "text/text_int.h"

#include <stdio.h>

#include <unicode/ustring.h>

static bool is_han(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x2FA1F);
}

static bool is_kana(uint32_t c)
{
    return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x31F0 && c <= 0x31FF) ||
           (c >= 0xFF66 && c <= 0xFF9D);
}

static bool is_latin(uint32_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0x24F);
}

struct counts {
    size_t han, trad, kana, words;
};

static void count(const struct tg_text *tx, const char *s, size_t len, struct counts *k)
{
    size_t han = 0, trad = 0, kana = 0, words = 0, i = 0;
    bool in_word = false;
    while (i < len) {
        uint32_t c;
        size_t n = tg_utf8_decode(s + i, len - i, &c);
        if (!n) {
            i++;
            continue;
        }
        i += n;
        bool latin = is_latin(c);
        words += latin && !in_word;
        in_word = latin || (in_word && (c == '\'' || c == '-'));
        if (is_kana(c))
            kana++;
        else if (is_han(c)) {
            han++;
            trad +=
                tx && tx->t2s_indexed && c < 0x10000 && ((tx->t2s_mark[c >> 5] >> (c & 31)) & 1u);
        }
    }
    *k = (struct counts){han, trad, kana, words};
}

enum tg_lang tg_lang_detect(const struct tg_text *tx, const char *s, size_t len)
{
    struct counts k;
    count(tx, s, len, &k);
    size_t han = k.han, trad = k.trad, words = k.words;
    if (k.kana)
        return TG_LANG_JA;
    if (han && han >= words) {
        /* a single Traditional character may be a name; two, or one in a
         * short message, is how the customer writes */
        return trad >= 2 || (trad == 1 && han <= 8) ? TG_LANG_ZH_HANT : TG_LANG_ZH_HANS;
    }
    return TG_LANG_EN;
}

const char *tg_lang_tag(enum tg_lang l)
{
    switch (l) {
    case TG_LANG_ZH_HANT:
        return "zh-Hant";
    case TG_LANG_EN:
        return "en";
    case TG_LANG_JA:
        return "ja";
    default:
        return "zh-Hans";
    }
}

static bool chinese(enum tg_lang l)
{
    return l == TG_LANG_ZH_HANS || l == TG_LANG_ZH_HANT;
}

bool tg_lang_readable(enum tg_lang customer, enum tg_lang reply)
{
    if (chinese(customer))
        return chinese(reply);
    if (customer == TG_LANG_JA)
        return reply == TG_LANG_JA || chinese(reply);
    return reply == customer;
}

bool tg_lang_reads(const struct tg_text *tx, enum tg_lang customer, const char *s, size_t len)
{
    struct counts k;
    count(tx, s, len, &k);
    if (customer == TG_LANG_EN)
        return !(k.han + k.kana > k.words);
    return k.han + k.kana > 0 || k.words < 3;
}

/* ------------------------------------------------------------ Simplified to Traditional */

struct tg_s2t {
    UTransliterator *tr;
    struct tg_ubuf u;
};

int tg_s2t_open(struct tg_s2t **out, char *err, size_t errlen)
{
    static const UChar id[] = u"Simplified-Traditional";
    UErrorCode st = U_ZERO_ERROR;
    UParseError pe;
    struct tg_s2t *c = tg_calloc(1, sizeof(*c));
    if (!c)
        return TG_E_NOMEM;
    c->tr = utrans_openU(id, -1, UTRANS_FORWARD, NULL, 0, &pe, &st);
    if (U_FAILURE(st)) {
        snprintf(err, errlen, "text: cannot open transliterator Simplified-Traditional: %s",
                 u_errorName(st));
        tg_free(c);
        return TG_E_INTERNAL;
    }
    *out = c;
    return TG_OK;
}

void tg_s2t_close(struct tg_s2t *c)
{
    if (!c)
        return;
    if (c->tr)
        utrans_close(c->tr);
    tg_free(c->u.p);
    tg_free(c);
}

/* Make room for cap UTF-16 units. */
static int grow(struct tg_ubuf *u, int32_t cap)
{
    if (u->cap >= cap)
        return TG_OK;
    UChar *p = tg_realloc(u->p, (size_t)cap * sizeof(UChar));
    if (!p)
        return TG_E_NOMEM;
    u->p = p;
    u->cap = cap;
    return TG_OK;
}

int tg_s2t_convert(struct tg_s2t *c, const char *s, size_t len, struct tg_buf *out)
{
    if (len > TG_TEXT_MAX_BYTES / 8)
        return TG_E_INVAL;
    /* UTF-16 never needs more units than UTF-8 has bytes; the rules may
     * lengthen a text a little: room for twice as much */
    int32_t cap = (int32_t)len * 2 + 16, n = 0, limit;
    UErrorCode st = U_ZERO_ERROR;
    if (grow(&c->u, cap))
        return TG_E_NOMEM;
    u_strFromUTF8(c->u.p, cap, &n, s, (int32_t)len, &st);
    if (U_FAILURE(st))
        return TG_E_INVAL;
    limit = n;
    utrans_transUChars(c->tr, c->u.p, &n, cap, 0, &limit, &st);
    if (U_FAILURE(st))
        return st == U_BUFFER_OVERFLOW_ERROR ? TG_E_NOMEM : TG_E_INVAL;
    int32_t need = 0;
    st = U_ZERO_ERROR;
    u_strToUTF8(NULL, 0, &need, c->u.p, n, &st);
    if (st != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(st))
        return TG_E_INVAL;
    size_t at = out->len;
    if (tg_buf_reserve(out, (size_t)need))
        return TG_E_NOMEM;
    st = U_ZERO_ERROR;
    u_strToUTF8(out->data + at, need + 1, NULL, c->u.p, n, &st);
    if (U_FAILURE(st))
        return TG_E_INVAL;
    out->len = at + (size_t)need;
    out->data[out->len] = '\0';
    return TG_OK;
}
