/*
 * numeral.c - numerals found in a text (numbers.h): where a run of numeral
 * characters ends, the numeral read from it, and what its characters say
 * besides its value (script, digits, decimal point, a unit of 千 or more).
 * The values themselves come from tg_text_numeral_prefix (numbers.c), so a
 * numeral means the same to every caller.
 */
#include "text/numbers.h"
#include "text/text.h"

#include <string.h>

/* What the characters of the numeral [nm->start, nm->end) say besides its
 * value, and the characters around it; 点 is a decimal point when
 * point_cn, else a Chinese character. */
static void describe(const struct tg_scan *in, struct tg_numeral *nm, bool point_cn)
{
    size_t p = nm->start, n;
    uint32_t cp;
    double u;
    nm->last_unit = 1;
    while (p < nm->end && (n = tg_scan_char(in, p, &cp))) {
        int d = tg_digit_value(cp);
        enum tg_cn_kind k = d >= 0 ? TG_CN_NONE : tg_cn_char(cp, &u);
        nm->last_unit = k == TG_CN_UNIT || k == TG_CN_BIG ? u : 1;
        nm->magnitude |= nm->last_unit >= 1e3;
        if (d >= 0) {
            nm->arabic = true;
            nm->lead_zero |=
                d == 0 && nm->int_digits == 0 && !nm->point && tg_scan_digit_at(in, p + n);
            nm->int_digits += !nm->point;
            nm->digits += d > 0 || nm->digits > 0;
        } else if (cp == '.' || cp == 0xFF0E || (point_cn && k == TG_CN_POINT)) {
            nm->point = true;
        } else if (cp != ',' && cp != 0xFF0C) {
            nm->chinese = true;
        }
        p += n;
    }
    nm->just_one = nm->end - nm->start == 3 && (memcmp(in->t + nm->start, "一", 3) == 0 ||
                                                memcmp(in->t + nm->start, "壹", 3) == 0);
    tg_scan_char_before(in, nm->start, &nm->before);
    tg_scan_char(in, nm->end, &nm->after);
}

static void numeral_found(const struct tg_scan *in, size_t start, size_t end, double v,
                          bool point_cn, struct tg_numeral *nm)
{
    memset(nm, 0, sizeof(*nm));
    nm->start = start;
    nm->end = end;
    nm->v = v;
    describe(in, nm, point_cn);
}

bool tg_numeral_at(const struct tg_scan *in, size_t pos, bool point_cn, struct tg_numeral *nm)
{
    double v;
    size_t n = pos < in->len ? tg_text_numeral_prefix(in->t + pos, in->len - pos, &v) : 0;
    if (n == 0)
        return false;
    numeral_found(in, pos, pos + n, v, point_cn, nm);
    return true;
}

/* A digit of either script after 点. */
static bool point_digit(uint32_t cp)
{
    double v;
    enum tg_cn_kind k = tg_cn_char(cp, &v);
    return tg_digit_value(cp) >= 0 || k == TG_CN_DIGIT || k == TG_CN_ZERO;
}

size_t tg_numeral_extent(const struct tg_scan *in, size_t pos, bool stop_at_point)
{
    size_t p = pos, n;
    uint32_t cp, nx;
    double v;
    bool last_arabic = false;
    while ((n = tg_scan_char(in, p, &cp))) {
        bool arabic = tg_digit_value(cp) >= 0;
        enum tg_cn_kind k = arabic ? TG_CN_NONE : tg_cn_char(cp, &v);
        if (arabic || (k != TG_CN_NONE && k != TG_CN_POINT)) {
            last_arabic = arabic;
            p += n;
            continue;
        }
        if (last_arabic && (cp == ',' || cp == 0xFF0C || cp == '.' || cp == 0xFF0E) &&
            tg_scan_char(in, p + n, &nx) && tg_digit_value(nx) >= 0) {
            p += n;
            continue;
        }
        if (k == TG_CN_POINT && !stop_at_point && p > pos && tg_scan_char(in, p + n, &nx) &&
            point_digit(nx)) {
            p += n;
            continue;
        }
        break;
    }
    return p;
}

/*
 * ASCII digits with at most one decimal point, as most numerals are: read
 * here, with the arithmetic of numbers.c (the digits as one integer, then
 * divided by a power of ten), so that they equal what it reads, without
 * its state machine.
 */
static bool plain_numeral(const char *s, size_t len, double *v)
{
    static const double pow10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    double mant = 0;
    int digits = 0, frac = 0;
    bool point = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            mant = mant * 10 + (s[i] - '0');
            digits++;
            frac += point;
        } else if (s[i] == '.' && !point && i > 0 && i + 1 < len) {
            point = true;
        } else {
            return false;
        }
    }
    if (digits == 0 || digits > 15)
        return false;
    *v = mant / pow10[frac];
    return true;
}

bool tg_numeral_in(const struct tg_scan *in, size_t pos, size_t e, bool point_cn,
                   struct tg_numeral *nm, size_t *end)
{
    uint32_t cp;
    double v;
    *end = e > pos ? e : pos + TG_MAX(tg_scan_char(in, pos, &cp), (size_t)1);
    if (e - pos > TG_NUMERAL_MAX)
        return false;
    while (e > pos) {
        if (plain_numeral(in->t + pos, e - pos, &v) ||
            tg_text_parse_number(in->t + pos, e - pos, &v) == TG_OK) {
            numeral_found(in, pos, e, v, point_cn, nm);
            return true;
        }
        e = tg_scan_char_before(in, e, &cp);
    }
    return false;
}

double tg_numeral_scale(const struct tg_scan *in, size_t p, size_t *end)
{
    static const struct tg_word scales[] = {TG_WORD("thousand", 0, 1000),
                                            TG_WORD("million", 0, 1000000),
                                            TG_WORD("billion", 0, 1000000000), TG_WORDS_END};
    unsigned char c = p < in->len ? (unsigned char)in->t[p] : 0;
    const struct tg_word *w;
    size_t s;
    if ((c == 'w' || c == 'W' || c == 'k' || c == 'K') &&
        !(p + 1 < in->len && tg_ascii_alnum((unsigned char)in->t[p + 1]))) {
        *end = p + 1;
        return c == 'w' || c == 'W' ? 1e4 : 1e3;
    }
    s = tg_scan_skip_space(in, p);
    if (!(w = tg_ascii_word_at(in, s, scales, false)))
        return 0;
    *end = s + w->n;
    return w->val;
}
