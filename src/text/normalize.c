/*
 * normalize.c - the ICU resources of a struct tg_text, and normalization of
 * text for matching: NFKC with case folding (ICU's NFKC_Casefold, which also
 * drops default-ignorable characters such as zero-width spaces), optional
 * Traditional-to-Simplified Chinese, whitespace runs collapsed to one space
 * (and removed between Chinese or Japanese characters)
 * and trimmed.  Pure ASCII input takes a shortcut that gives the same result
 * without ICU.  See docs/internals/text.md.
 */
#include "text/text_int.h"

#include <stdio.h>
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>
#include <unicode/utf8.h>

#define CH_ZHANG_TENT 0x5E10    /* 帐: tent, curtain */
#define CH_ZHANG_ACCOUNT 0x8D26 /* 账: account */

#define BIT_SET(bm, c) ((bm)[(c) >> 5] |= 1u << ((c)&31))
#define BIT_HAS(bm, c) (((bm)[(c) >> 5] >> ((c)&31)) & 1u)

/* One side of a rule as utrans_toRules prints it: \uXXXX escapes and
 * nothing else.  Returns its length, or -1 for anything unexpected. */
static int32_t parse_side(const UChar *r, int32_t n, int32_t *i, UChar *out, int32_t max)
{
    int32_t k = 0;
    while (*i + 6 <= n && r[*i] == '\\' && r[*i + 1] == 'u') {
        uint32_t v = 0;
        for (int j = 2; j < 6; j++) {
            UChar h = r[*i + j];
            int d = h >= '0' && h <= '9' ? h - '0' : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (d < 0)
                return -1;
            v = v * 16 + (uint32_t)d;
        }
        if (k == max || U_IS_SURROGATE(v))
            return -1;
        out[k++] = (UChar)v;
        *i += 6;
    }
    return k;
}

static bool parse_rules(struct tg_text *tx, const UChar *r, int32_t n)
{
    int32_t i = 0;
    for (;;) {
        while (i < n && (r[i] == '\n' || r[i] == ' '))
            i++;
        if (i == n)
            return true;
        UChar key[32], val[32];
        int32_t kn = parse_side(r, n, &i, key, 32);
        while (i < n && r[i] == ' ')
            i++;
        if (kn <= 0 || i == n || r[i] != '>')
            return false;
        for (i++; i < n && r[i] == ' '; i++)
            ;
        int32_t vn = parse_side(r, n, &i, val, 32);
        if (vn < 0 || i == n || r[i] != ';')
            return false;
        i++;
        int32_t diff = 0;
        while (diff < kn && diff < vn && key[diff] == val[diff])
            diff++;
        for (int32_t k = 0; k < kn; k++)
            BIT_SET(tx->t2s_key, key[k]);
        if (diff < kn || kn != vn)
            BIT_SET(tx->t2s_mark, key[diff < kn ? diff : 0]);
    }
}

/*
 * Index the Traditional-Simplified rules.  They are plain string
 * replacements ("KEY > VALUE;"), so a rule only ever matches inside a run of
 * characters that occur in some key, and only a run holding a marked
 * character can change.  When the rules are not in that form the index is
 * left unused and whole texts are transliterated.
 */
static void t2s_index(struct tg_text *tx)
{
    UErrorCode st = U_ZERO_ERROR;
    int32_t n = utrans_toRules(tx->t2s, true, NULL, 0, &st);
    if (st != U_BUFFER_OVERFLOW_ERROR || n <= 0)
        return;
    UChar *r = tg_malloc(((size_t)n + 1) * sizeof(UChar));
    if (!r)
        return;
    st = U_ZERO_ERROR;
    utrans_toRules(tx->t2s, true, r, n + 1, &st);
    if (U_SUCCESS(st) && parse_rules(tx, r, n))
        tx->t2s_indexed = true;
    tg_free(r);
}

int tg_text_open(struct tg_text **out, char *err, size_t errlen)
{
    static const UChar t2s_id[] = u"Traditional-Simplified";
    UErrorCode st = U_ZERO_ERROR;
    UParseError pe;
    const char *what = NULL;
    int rc = TG_E_INTERNAL;
    struct tg_text *tx = tg_calloc(1, sizeof(*tx));
    if (!tx) {
        rc = TG_E_NOMEM;
        what = "struct tg_text";
        goto out;
    }
    UText init = UTEXT_INITIALIZER;
    tx->ut = init;
    what = "NFKC_Casefold normalizer";
    tx->nfkc_cf = unorm2_getNFKCCasefoldInstance(&st);
    if (U_FAILURE(st))
        goto out;
    what = "transliterator Traditional-Simplified";
    tx->t2s = utrans_openU(t2s_id, -1, UTRANS_FORWARD, NULL, 0, &pe, &st);
    if (U_FAILURE(st))
        goto out;
    t2s_index(tx);
    what = "word break iterator";
    tx->words = ubrk_open(UBRK_WORD, "zh", NULL, 0, &st);
    if (U_FAILURE(st))
        goto out;
    rc = TG_OK;
out:
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "text: cannot open %s: %s", what,
                     rc == TG_E_NOMEM ? "out of memory" : u_errorName(st));
        tg_text_close(tx);
    } else {
        *out = tx;
    }
    return rc;
}

void tg_text_close(struct tg_text *tx)
{
    if (!tx)
        return;
    if (tx->words)
        ubrk_close(tx->words);
    if (tx->t2s)
        utrans_close(tx->t2s);
    utext_close(&tx->ut);
    tg_free(tx->a.p);
    tg_free(tx->b.p);
    tg_free(tx);
}

static int ubuf_reserve(struct tg_ubuf *u, int64_t need)
{
    if (need > INT32_MAX / 2)
        return TG_E_TOOBIG;
    if (need <= u->cap)
        return TG_OK;
    int64_t cap = u->cap ? u->cap : 256;
    while (cap < need)
        cap *= 2;
    UChar *p = tg_realloc(u->p, (size_t)cap * sizeof(UChar));
    if (!p)
        return TG_E_NOMEM;
    u->p = p;
    u->cap = (int32_t)cap;
    return TG_OK;
}

/* Controls count as whitespace: they carry nothing to match on, and a NUL
 * would cut the C string short. */
static bool is_space(UChar32 c)
{
    if (c <= 0x20 || (c >= 0x7F && c <= 0x9F))
        return true;
    return c > 0x9F && u_isUWhiteSpace(c);
}

static bool is_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] & 0x80)
            return false;
    return true;
}

/* NFKC_Casefold restricted to ASCII is lower-casing, so this gives exactly
 * what the ICU path gives. */
static int normalize_ascii(const char *in, size_t len, struct tg_buf *out)
{
    size_t n = 0;
    bool pending = false;
    for (size_t i = 0; i < len; i++) {
        if (is_space((unsigned char)in[i])) {
            pending = n > 0;
            continue;
        }
        n += 1 + pending;
        pending = false;
    }
    int rc = tg_buf_reserve(out, n);
    if (rc)
        return rc;
    char *w = out->data + out->len;
    pending = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (is_space(c)) {
            pending = w > out->data + out->len;
            continue;
        }
        if (pending)
            *w++ = ' ';
        pending = false;
        *w++ = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    out->len += n;
    out->data[out->len] = '\0';
    return TG_OK;
}

/*
 * ICU maps 帳 to 帐, but mainland usage writes accounts with 账 (账户, 账号,
 * 转账), the words customers of a bank or insurer use.  So 帐 becomes 账
 * unless it is a tent or curtain (帐篷, 帐幕, 帐子, 蚊帐, 营帐, 纱帐, ...).
 */
static void zhang_to_account(UChar *u, int32_t n)
{
    static const UChar before[] = {0x868A, 0x8425, 0x519B, 0x7EB1, 0x5E54, 0x5E37, 0x5E8A, 0x7F57};
    static const UChar after[] = {0x7BF7, 0x5E55, 0x5E54, 0x5B50};
    for (int32_t i = 0; i < n; i++) {
        if (u[i] != CH_ZHANG_TENT)
            continue;
        bool tent = false;
        for (size_t k = 0; i > 0 && k < TG_ARRAY_LEN(before); k++)
            tent = tent || u[i - 1] == before[k];
        for (size_t k = 0; i + 1 < n && k < TG_ARRAY_LEN(after); k++)
            tent = tent || u[i + 1] == after[k];
        if (!tent)
            u[i] = CH_ZHANG_ACCOUNT;
    }
}

/*
 * Transliterate [*start, *limit) of tx->a (holding *len units) in place;
 * ICU moves the text after the range when its length changes.  False on
 * U_BUFFER_OVERFLOW_ERROR (retry with more room); other failures set *rc.
 */
static bool trans_range(struct tg_text *tx, int32_t *len, int32_t start, int32_t *limit, int *rc)
{
    UErrorCode st = U_ZERO_ERROR;
    utrans_transUChars(tx->t2s, tx->a.p, len, tx->a.cap, start, limit, &st);
    if (st == U_BUFFER_OVERFLOW_ERROR)
        return false;
    if (U_FAILURE(st))
        *rc = TG_E_INTERNAL;
    return true;
}

/*
 * Traditional to Simplified: src[0..n) into tx->a; *res points at the
 * result.  With the rule index only runs that a rule can change go through
 * ICU, each on its own, which gives what one call on the whole text gives
 * (no rule matches across a run's end) at a fraction of the cost on text
 * that is mostly Simplified already.
 */
static int to_simplified(struct tg_text *tx, const UChar *src, int32_t n, UChar **res,
                         int32_t *res_len)
{
    int rc = TG_OK;
    int64_t cap = 2 * (int64_t)n + 64;
    for (int attempt = 0; attempt < 4; attempt++, cap *= 2) {
        rc = ubuf_reserve(&tx->a, cap);
        if (rc)
            return rc;
        memcpy(tx->a.p, src, (size_t)n * sizeof(UChar));
        int32_t len = n;
        bool room = true;
        if (!tx->t2s_indexed) {
            int32_t limit = len;
            room = trans_range(tx, &len, 0, &limit, &rc);
        }
        for (int32_t i = 0; tx->t2s_indexed && room && !rc && i < len;) {
            UChar c = tx->a.p[i];
            if (!BIT_HAS(tx->t2s_key, c) && !U16_IS_SURROGATE(c)) {
                i++;
                continue;
            }
            int32_t rs = i;
            bool change = false;
            for (; i < len; i++) {
                c = tx->a.p[i];
                /* Supplementary characters are not indexed: assume the worst. */
                bool any = U16_IS_SURROGATE(c);
                if (!any && !BIT_HAS(tx->t2s_key, c))
                    break;
                change = change || any || BIT_HAS(tx->t2s_mark, c);
            }
            if (change)
                room = trans_range(tx, &len, rs, &i, &rc);
        }
        if (rc)
            return rc;
        if (!room)
            continue;
        zhang_to_account(tx->a.p, len);
        *res = tx->a.p;
        *res_len = len;
        return TG_OK;
    }
    return TG_E_INTERNAL;
}

/* Chinese and Japanese characters and their punctuation: scripts written
 * without spaces between words. */
static bool unspaced(UChar32 c)
{
    return (c >= 0x3000 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x9FFF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFF00 && c <= 0xFF0F) ||
           (c >= 0xFF1A && c <= 0xFF20) || (c >= 0x20000 && c <= 0x3134F);
}

static bool ascii_punct(UChar32 c)
{
    return c < 0x80 && c > 0x20 &&
           !((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'));
}

/* Is a space between a and b no word break (Chinese or Japanese on either
 * side and the other side the same or punctuation)? */
static bool joins(UChar32 a, UChar32 b)
{
    return (unspaced(a) && (unspaced(b) || ascii_punct(b))) || (ascii_punct(a) && unspaced(b));
}

/* Collapse whitespace in place: each run becomes one space, none at the
 * ends, and none between two characters of a script written without spaces
 * ("办 退 保" is 办退保: stray spaces would break its words). */
static int32_t collapse_space(UChar *u, int32_t n)
{
    int32_t i = 0, w = 0;
    bool pending = false;
    UChar32 prev = 0;
    while (i < n) {
        int32_t s = i;
        UChar32 c;
        U16_NEXT(u, i, n, c);
        if (is_space(c)) {
            pending = w > 0;
            continue;
        }
        if (pending && !joins(prev, c))
            u[w++] = ' ';
        pending = false;
        prev = c;
        while (s < i)
            u[w++] = u[s++];
    }
    return w;
}

/* Append u[0..n) to out as UTF-8; unpaired surrogates become U+FFFD. */
static int append_utf8(struct tg_buf *out, const UChar *u, int32_t n)
{
    size_t bytes = 0;
    for (int32_t i = 0; i < n;) {
        UChar32 c;
        U16_NEXT(u, i, n, c);
        bytes += U_IS_SURROGATE(c) ? 3 : (size_t)U8_LENGTH(c);
    }
    int rc = tg_buf_reserve(out, bytes);
    if (rc)
        return rc;
    uint8_t *d = (uint8_t *)out->data + out->len;
    size_t w = 0;
    for (int32_t i = 0; i < n;) {
        UChar32 c;
        U16_NEXT(u, i, n, c);
        if (U_IS_SURROGATE(c))
            c = 0xFFFD;
        U8_APPEND_UNSAFE(d, w, c);
    }
    TG_ASSERT(w == bytes);
    out->len += bytes;
    out->data[out->len] = '\0';
    return TG_OK;
}

int tg_text_normalize(struct tg_text *tx, const char *in, size_t len, unsigned flags,
                      struct tg_buf *out)
{
    int rc;
    if (!tx || !out || (!in && len))
        return TG_E_INVAL;
    if (len > TG_TEXT_MAX_BYTES)
        return TG_E_TOOBIG;
    if (is_ascii(in, len))
        return normalize_ascii(in, len, out);

    /* UTF-8 never needs more UTF-16 units than bytes, substitutes included. */
    rc = ubuf_reserve(&tx->a, (int64_t)len + 1);
    if (rc)
        goto out;
    UErrorCode st = U_ZERO_ERROR;
    int32_t n = 0;
    u_strFromUTF8WithSub(tx->a.p, tx->a.cap, &n, in, (int32_t)len, 0xFFFD, NULL, &st);
    if (U_FAILURE(st)) {
        rc = TG_E_INTERNAL;
        goto out;
    }

    int32_t m = 0;
    for (int64_t cap = (int64_t)n + n / 4 + 16;; cap = m) {
        rc = ubuf_reserve(&tx->b, cap);
        if (rc)
            goto out;
        st = U_ZERO_ERROR;
        m = unorm2_normalize(tx->nfkc_cf, tx->a.p, n, tx->b.p, tx->b.cap, &st);
        if (st != U_BUFFER_OVERFLOW_ERROR)
            break;
    }
    if (U_FAILURE(st)) {
        rc = TG_E_INTERNAL;
        goto out;
    }

    UChar *u = tx->b.p;
    if (flags & TG_NORM_T2S) {
        rc = to_simplified(tx, tx->b.p, m, &u, &m);
        if (rc)
            goto out;
    }
    m = collapse_space(u, m);
    rc = append_utf8(out, u, m);
out:
    return rc;
}
