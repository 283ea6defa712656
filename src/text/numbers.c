/*
 * numbers.c - the numeral scanner (numbers.h): numerals as customers write
 * amounts: Arabic digits (ASCII or full-width, "," or "，" between groups
 * of three, "." or "．" before a fraction), Chinese numerals in everyday
 * and financial (大写) forms, and the mix of both ("3万5", "1.5亿").
 * tg_text_numeral_prefix reads the longest numeral at the start of a text,
 * tg_text_parse_number a whole string; numeral.c finds numerals in a text,
 * describes them and reads w/k/thousand multipliers for entities.c and the
 * grounding check.  Currency words and everything else that decides whether
 * a number is money or a quantity live with those callers.
 *
 * Chinese numerals are read as sections: a digit times a small unit
 * (十百千) adds to the section, 万 multiplies the section so far, 亿 the
 * whole value so far.  A lone digit after a unit of a hundred or more is
 * read as the next place down, as in speech (三千五 = 3500, 两万五 =
 * 25000), unless 零 came first (一万零五 = 10005).  Digits without units
 * are read positionally (二〇二四 = 2024).
 */
#include "text/numbers.h"
#include "text/text.h"

#include <math.h>
#include <string.h>

enum tg_cn_kind tg_cn_char(uint32_t cp, double *val)
{
    if (cp < 0x3007 || cp > 0x9EDE)
        return TG_CN_NONE; /* most characters, decided before the switch */
    switch (cp) {
    case 0x96F6: /* 零 */
    case 0x3007: /* 〇 */
        *val = 0;
        return TG_CN_ZERO;
    case 0x4E00: /* 一 */
    case 0x58F9: /* 壹 */
        *val = 1;
        return TG_CN_DIGIT;
    case 0x4E8C: /* 二 */
    case 0x8D30: /* 贰 */
    case 0x8CB3: /* 貳 */
    case 0x4E24: /* 两 */
    case 0x5169: /* 兩 */
        *val = 2;
        return TG_CN_DIGIT;
    case 0x4E09: /* 三 */
    case 0x53C1: /* 叁 */
    case 0x53C4: /* 叄 */
    case 0x53C3: /* 參 */
        *val = 3;
        return TG_CN_DIGIT;
    case 0x56DB: /* 四 */
    case 0x8086: /* 肆 */
        *val = 4;
        return TG_CN_DIGIT;
    case 0x4E94: /* 五 */
    case 0x4F0D: /* 伍 */
        *val = 5;
        return TG_CN_DIGIT;
    case 0x516D: /* 六 */
    case 0x9646: /* 陆 */
    case 0x9678: /* 陸 */
        *val = 6;
        return TG_CN_DIGIT;
    case 0x4E03: /* 七 */
    case 0x67D2: /* 柒 */
        *val = 7;
        return TG_CN_DIGIT;
    case 0x516B: /* 八 */
    case 0x634C: /* 捌 */
        *val = 8;
        return TG_CN_DIGIT;
    case 0x4E5D: /* 九 */
    case 0x7396: /* 玖 */
        *val = 9;
        return TG_CN_DIGIT;
    case 0x5341: /* 十 */
    case 0x62FE: /* 拾 */
        *val = 10;
        return TG_CN_UNIT;
    case 0x767E: /* 百 */
    case 0x4F70: /* 佰 */
        *val = 100;
        return TG_CN_UNIT;
    case 0x5343: /* 千 */
    case 0x4EDF: /* 仟 */
        *val = 1000;
        return TG_CN_UNIT;
    case 0x4E07: /* 万 */
    case 0x842C: /* 萬 */
        *val = 1e4;
        return TG_CN_BIG;
    case 0x4EBF: /* 亿 */
    case 0x5104: /* 億 */
        *val = 1e8;
        return TG_CN_BIG;
    case 0x70B9: /* 点 */
    case 0x9EDE: /* 點 */
        *val = 0;
        return TG_CN_POINT;
    default:
        return TG_CN_NONE;
    }
}

double tg_cn_unit(uint32_t cp)
{
    double v;
    enum tg_cn_kind k = tg_cn_char(cp, &v);
    return k == TG_CN_UNIT || k == TG_CN_BIG ? v : 0;
}

/* 10^n as a double; exact up to 10^22. */
static double pow10i(int n)
{
    static const double p[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (n >= 0 && n < (int)TG_ARRAY_LEN(p))
        return p[n];
    return pow(10.0, n);
}

/*
 * A number waiting for its unit, kept as digits and a count of fraction
 * digits so that 1.5万 is computed as 15 * 10^4 / 10 without rounding.
 */
struct pending {
    bool set;
    bool arabic;
    double mant;
    int frac;
    int digits; /* integer digits; 1 for a single Chinese digit */
};

static double pending_times(const struct pending *p, double unit)
{
    return p->mant * unit / pow10i(p->frac);
}

/* Append the Arabic digits at s (at most max) to *mant; returns the bytes
 * read and the count in *k. */
static size_t read_digits(const char *s, size_t len, int max, double *mant, int *k)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t pos = 0, n;
    uint32_t cp;
    int d;
    *k = 0;
    while (*k < max && (n = tg_utf8_decode(u + pos, len - pos, &cp)) &&
           (d = tg_digit_value(cp)) >= 0) {
        *mant = *mant * 10 + d;
        pos += n;
        (*k)++;
    }
    return pos;
}

/* The separator (",", "，", "." or "．") at s: its length, else 0. */
static size_t separator(const char *s, size_t len, bool decimal)
{
    uint32_t cp;
    size_t n = tg_utf8_decode((const unsigned char *)s, len, &cp);
    if (decimal)
        return n && (cp == '.' || cp == 0xFF0E) ? n : 0;
    return n && (cp == ',' || cp == 0xFF0C) ? n : 0;
}

/* Read an Arabic numeral: digits, optional groups of three after "," or
 * "，", and (when allow_frac) a fraction.  Returns the bytes read, 0 when s
 * does not start with a digit. */
static size_t read_arabic(const char *s, size_t len, bool allow_frac, struct pending *p)
{
    size_t pos, n, m;
    int k;
    double mant;
    memset(p, 0, sizeof(*p));
    pos = read_digits(s, len, INT32_MAX, &p->mant, &p->digits);
    if (p->digits == 0)
        return 0;
    /* Groups, when the first has at most three digits: exactly three
     * digits after each separator, then no fourth. */
    bool grouped = p->digits <= 3;
    while (grouped && (n = separator(s + pos, len - pos, false))) {
        mant = p->mant;
        m = read_digits(s + pos + n, len - pos - n, 4, &mant, &k);
        if (k != 3)
            break;
        p->mant = mant;
        p->digits += 3;
        pos += n + m;
    }
    if (allow_frac && (n = separator(s + pos, len - pos, true))) {
        mant = p->mant;
        m = read_digits(s + pos + n, len - pos - n, INT32_MAX, &mant, &k);
        if (k > 0) {
            p->mant = mant;
            p->frac = k;
            pos += n + m;
        }
    }
    p->set = true;
    p->arabic = true;
    return pos;
}

/* After 点: digits of the pending number's own script (Chinese, 零 included,
 * or Arabic) as a fraction: 三点五万, 3点5万.  Returns the bytes read. */
static size_t read_point_fraction(const char *s, size_t len, struct pending *p)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t pos = 0, n;
    uint32_t cp;
    double v;
    while ((n = tg_utf8_decode(u + pos, len - pos, &cp))) {
        if (p->arabic) {
            int d = tg_digit_value(cp);
            if (d < 0)
                break;
            v = d;
        } else {
            enum tg_cn_kind k = tg_cn_char(cp, &v);
            if (k != TG_CN_DIGIT && k != TG_CN_ZERO)
                break;
        }
        p->mant = p->mant * 10 + v;
        p->frac++;
        pos += n;
    }
    return pos;
}

/* Where a numeral stands while it is read. */
struct numeral {
    double total;      /* whole 亿 groups */
    double section;    /* the 万 part under the current 亿 */
    double cur;        /* the part under 万 */
    double last_unit;  /* the last unit applied, for a trailing digit */
    double last_small; /* the last 十/百/千 of the section, 0 at its start */
    bool units;        /* some unit was applied */
    bool zero_gap;     /* 零 since the last unit */
    bool wan, yi;      /* 万 (in this 亿 group) and 亿 seen */
    struct pending pend;
};

static double numeral_value(const struct numeral *st)
{
    double v = 0;
    if (st->pend.set) {
        v = pending_times(&st->pend, 1);
        /* 三千五: a lone digit after a unit takes the next place down. */
        if (st->units && !st->zero_gap && st->pend.digits == 1 && st->pend.frac == 0 &&
            st->last_unit >= 100)
            v *= st->last_unit / 10;
    }
    return st->total + st->section + st->cur + v;
}

static bool take_digit(struct numeral *st, double v)
{
    struct pending *p = &st->pend;
    if (!p->set) {
        *p = (struct pending){.set = true, .mant = v, .digits = 1};
        return true;
    }
    /* Only a run of bare digits continues: 二〇二四. */
    if (p->arabic || st->units || p->frac)
        return false;
    p->mant = p->mant * 10 + v;
    p->digits++;
    return true;
}

/* 零: a digit in a run of bare digits, or a gap after a unit (一万零五百),
 * which leaves the numeral incomplete. */
static bool take_zero(struct numeral *st, bool *complete)
{
    if (st->pend.set && !st->pend.arabic && !st->units && !st->pend.frac) {
        st->pend.mant *= 10;
        st->pend.digits++;
        return true;
    }
    if (st->pend.set || !st->units)
        return false;
    st->zero_gap = true;
    *complete = false;
    return true;
}

/* 点 and the digits after it: bytes read after 点, 0 if it is no decimal point. */
static size_t take_point(struct numeral *st, const char *s, size_t len)
{
    struct pending frac = st->pend;
    size_t m;
    if (!st->pend.set || st->pend.frac)
        return 0;
    m = read_point_fraction(s, len, &frac);
    if (m)
        st->pend = frac;
    return m;
}

static void unit_applied(struct numeral *st, double unit)
{
    st->last_unit = unit;
    st->pend.set = false;
    st->zero_gap = false;
    st->units = true;
}

/* 十, 百 or 千. */
static bool take_unit(struct numeral *st, double u)
{
    const struct pending *p = &st->pend;
    if (p->set && !p->arabic && p->digits > 1)
        return false; /* 三四百: a guess, not a number */
    if (st->last_small != 0 && u >= st->last_small)
        return false;
    if (!p->set && (u != 10 || st->last_small != 0))
        return false; /* only 十 stands without a digit: 十二, 十万 */
    st->cur += p->set ? pending_times(p, u) : u;
    st->last_small = u;
    unit_applied(st, u);
    return true;
}

/* 万 multiplies the section so far, 亿 everything so far. */
static bool take_big(struct numeral *st, double b)
{
    const struct pending *p = &st->pend;
    double sec = st->cur + (p->set ? pending_times(p, 1) : 0);
    if (p->set && !p->arabic && p->digits > 1)
        return false;
    if (b == 1e4) {
        if (st->wan || (!p->set && st->cur == 0))
            return false;
        st->section = sec * 1e4;
        st->wan = true;
    } else {
        if (st->yi || (!p->set && st->cur == 0 && st->section == 0))
            return false;
        st->total = (st->section + sec) * 1e8;
        st->section = 0;
        st->wan = false;
        st->yi = true;
    }
    st->cur = 0;
    st->last_small = 0;
    unit_applied(st, b);
    return true;
}

size_t tg_text_numeral_prefix(const char *s, size_t len, double *value)
{
    const unsigned char *u = (const unsigned char *)s;
    struct numeral st = {.last_unit = 1};
    size_t pos = 0, best = 0, n;
    double best_val = 0, v;
    uint32_t cp;

    while ((n = tg_utf8_decode(u + pos, len - pos, &cp))) {
        bool ok, complete = true;
        if (tg_digit_value(cp) >= 0) {
            /* Arabic numbers open the numeral or follow a unit: 3万5. */
            ok = !st.pend.set;
            if (ok)
                n = read_arabic(s + pos, len - pos, !st.units, &st.pend);
        } else {
            switch (tg_cn_char(cp, &v)) {
            case TG_CN_DIGIT:
                ok = take_digit(&st, v);
                break;
            case TG_CN_ZERO:
                ok = take_zero(&st, &complete);
                break;
            case TG_CN_POINT: {
                size_t m = take_point(&st, s + pos + n, len - pos - n);
                ok = m > 0;
                n += m;
                break;
            }
            case TG_CN_UNIT:
                ok = take_unit(&st, v);
                break;
            case TG_CN_BIG:
                ok = take_big(&st, v);
                break;
            default:
                ok = false;
                break;
            }
        }
        if (!ok)
            break;
        pos += n;
        if (complete) {
            best = pos;
            best_val = numeral_value(&st);
        }
    }
    if (best)
        *value = best_val;
    return best;
}

int tg_text_parse_number(const char *s, size_t len, double *out)
{
    double v = 0;
    if (!s || len == 0 || tg_text_numeral_prefix(s, len, &v) != len || !isfinite(v))
        return TG_E_PARSE;
    *out = v;
    return TG_OK;
}
