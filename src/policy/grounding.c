/*
 * grounding.c - whether the quantities an answer states can be found in
 * the evidence it was drawn from (policy.h, docs/internals/grounding.md).
 *
 * One lexical scanner reads the quantities of a text: amounts of money,
 * percentages, calendar dates, times of day, durations and counts with a
 * unit, other numbers of two or more digits, and digit codes such as
 * hotlines.  Each becomes a key: a value with its unit, a (year, month,
 * day) triple, or a hash of a code's digits.  The evidence is scanned once
 * per call into a hash set of keys; every claim of the draft is then
 * looked up in it.  Values are compared as numbers, so notation does not
 * matter ("5万元" = "50000元" = "五万元"); a unit or a year missing on
 * either side matches any.
 *
 * Numerals are read by tg_text_parse_number.  Money is recognised by the
 * cues tg_entities_extract uses (currency signs and words, 千/万/亿, w/k,
 * thousand/million), but here, in the same single pass over the text as
 * everything else: extraction reads every character through its money
 * word lists (about 25 ns a byte on Chinese text), which alone would take
 * most of the time a check may cost.
 */
#include "policy/policy.h"
#include "text/chars.h"
#include "text/text.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ quantities */

enum kind { K_AMOUNT, K_PERCENT, K_DATE, K_NUMBER };
static const char *const kind_names[] = {"amount", "percent", "date", "number"};

/* How a quantity is compared. */
enum group { G_VALUE, G_DATE, G_CODE };

enum unit {
    U_NONE, /* matches every unit */
    U_CNY,
    U_USD,
    U_EUR,
    U_GBP,
    U_HKD,
    U_JPY,
    U_PERCENT,
    U_CLOCK, /* time of day, in minutes after midnight */
    U_DAY,
    U_WORKDAY,
    U_WEEK,
    U_MONTH,
    U_YEAR,
    U_HOUR,
    U_MINUTE,
    U_SECOND,
    U_AGE,
    U_TIMES,
    U_FOLD,
    U_PERSON,
    U_TERM,
    U_TXN,
    U_DISCOUNT,
    U_KM,
    U_KG,
    U_MEASURE = 0x100000, /* plus the code point of a counting measure word (个, 种, ...) */
};

struct qty {
    size_t start, end; /* span in the scanned text */
    uint32_t unit;
    uint8_t kind, group;
    bool claim;   /* a claim when it stands in a draft */
    bool keep;    /* worth keeping when it stands in evidence */
    bool coded;   /* a bare Arabic integer: code holds its digits too ("4008208820") */
    int y, m, d;  /* dates; 0: not stated */
    double v;     /* value; dates: y * 10000 + m * 100 + d */
    double scale; /* what the tail multiplied the numeral by: 万 after 多, k, % */
    uint64_t code;
};

/* A numeral as written. */
struct num {
    size_t start, end;
    double v;
    double tail;    /* 1e3, 1e4 or 1e8 when it ends with 千, 万 or 亿; else 1 */
    int digits;     /* Arabic digits, leading zeros left out */
    int int_digits; /* Arabic digits before any decimal point */
    bool arabic, chinese, frac, lead_zero, magnitude;
    bool just_one;          /* the single character 一 or 壹, mostly an article */
    uint32_t before, after; /* the characters around it; 0 at either end of the text */
};

struct scan {
    const char *t;
    size_t len;
    bool draft;
    int (*emit)(void *ctx, const struct qty *q);
    void *ctx;
};

/* The longest numeral considered; longer runs are not quantities. */
#define NUMERAL_MAX 64

/* ------------------------------------------------------------ characters */

/* The character at pos and its length; an invalid byte is one U+FFFD; 0 at the end. */
static inline size_t char_at(const struct scan *sc, size_t pos, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)sc->t + pos;
    size_t n;
    *cp = 0;
    if (pos >= sc->len)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    /* Most of a Chinese text: three bytes E1..EC, which need no range check. */
    if (s[0] >= 0xE1 && s[0] <= 0xEC && sc->len - pos >= 3 && (s[1] & 0xC0) == 0x80 &&
        (s[2] & 0xC0) == 0x80) {
        *cp = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
        return 3;
    }
    n = tg_utf8_decode((const unsigned char *)sc->t + pos, sc->len - pos, cp);
    if (n == 0) {
        *cp = 0xFFFD;
        n = 1;
    }
    return n;
}

/* The character ending at pos (0 when pos is 0); returns where it starts. */
static size_t char_before(const struct scan *sc, size_t pos, uint32_t *cp)
{
    return tg_utf8_prev(sc->t, pos, cp);
}

static bool digit_at(const struct scan *sc, size_t pos)
{
    uint32_t cp;
    return char_at(sc, pos, &cp) && tg_digit_value(cp) >= 0;
}

/* Past at most one space character. */
static size_t skip_space(const struct scan *sc, size_t pos)
{
    uint32_t cp;
    size_t n = char_at(sc, pos, &cp);
    return n && tg_space_char(cp) ? pos + n : pos;
}

/* Back over at most one space character. */
static size_t skip_space_back(const struct scan *sc, size_t pos)
{
    uint32_t cp;
    size_t s = char_before(sc, pos, &cp);
    return s < pos && tg_space_char(cp) ? s : pos;
}

enum cn { CN_NONE, CN_DIGIT, CN_TEN, CN_UNIT, CN_BIG, CN_POINT };

/* The role of a character in a Chinese numeral (see numbers.c); the scan
 * asks cn_class, which reads it from a table built from this. */
static enum cn cn_role(uint32_t cp)
{
    switch (cp) {
    case 0x96F6: /* 零 */
    case 0x3007: /* 〇 */
    case 0x4E00: /* 一 */
    case 0x58F9: /* 壹 */
    case 0x4E8C: /* 二 */
    case 0x8D30: /* 贰 */
    case 0x8CB3: /* 貳 */
    case 0x4E24: /* 两 */
    case 0x5169: /* 兩 */
    case 0x4E09: /* 三 */
    case 0x53C1: /* 叁 */
    case 0x53C4: /* 叄 */
    case 0x53C3: /* 參 */
    case 0x56DB: /* 四 */
    case 0x8086: /* 肆 */
    case 0x4E94: /* 五 */
    case 0x4F0D: /* 伍 */
    case 0x516D: /* 六 */
    case 0x9646: /* 陆 */
    case 0x9678: /* 陸 */
    case 0x4E03: /* 七 */
    case 0x67D2: /* 柒 */
    case 0x516B: /* 八 */
    case 0x634C: /* 捌 */
    case 0x4E5D: /* 九 */
    case 0x7396: /* 玖 */
        return CN_DIGIT;
    case 0x5341: /* 十 */
    case 0x62FE: /* 拾 */
        return CN_TEN;
    case 0x767E: /* 百 */
    case 0x4F70: /* 佰 */
    case 0x5343: /* 千 */
    case 0x4EDF: /* 仟 */
        return CN_UNIT;
    case 0x4E07: /* 万 */
    case 0x842C: /* 萬 */
    case 0x4EBF: /* 亿 */
    case 0x5104: /* 億 */
        return CN_BIG;
    case 0x70B9: /* 点 */
    case 0x9EDE: /* 點 */
        return CN_POINT;
    default:
        return CN_NONE;
    }
}

static bool is_point(uint32_t cp)
{
    return cp == 0x70B9 /* 点 */ || cp == 0x9EDE /* 點 */;
}

/* 千, 万 or 亿 (any form): its value, else 0. */
static double magnitude_of(uint32_t cp)
{
    switch (cp) {
    case 0x5343: /* 千 */
    case 0x4EDF: /* 仟 */
        return 1e3;
    case 0x4E07: /* 万 */
    case 0x842C: /* 萬 */
        return 1e4;
    case 0x4EBF: /* 亿 */
    case 0x5104: /* 億 */
        return 1e8;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------ word lists */

/* What a word after a numeral makes of it. */
enum tail_kind { T_NONE, T_PCT, T_CUR, T_UNIT };

struct word {
    const char *s;
    size_t n;
    uint32_t val; /* a unit, a currency, a divisor to percent, a month, ... */
    uint8_t kind; /* enum tail_kind, for words after a numeral */
};
#define WK(lit, kind, val)                                                                         \
    {                                                                                              \
        lit, sizeof(lit) - 1, val, kind                                                            \
    }
#define W(lit, val) WK(lit, T_NONE, val)
#define WORDS_END                                                                                  \
    {                                                                                              \
        NULL, 0, 0, T_NONE                                                                         \
    }

static const struct word *word_at(const struct scan *sc, size_t pos, const struct word *list)
{
    const char *t = sc->t + pos;
    size_t left = pos < sc->len ? sc->len - pos : 0;
    for (; left && list->s; list++)
        if (list->n <= left && t[0] == list->s[0] && t[list->n - 1] == list->s[list->n - 1] &&
            memcmp(t, list->s, list->n) == 0)
            return list;
    return NULL;
}

static const struct word *word_before(const struct scan *sc, size_t pos, const struct word *list)
{
    for (; pos && list->s; list++)
        if (list->n <= pos && sc->t[pos - 1] == list->s[list->n - 1] &&
            memcmp(sc->t + pos - list->n, list->s, list->n) == 0)
            return list;
    return NULL;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static bool eq_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

/* An ASCII word of list (any case) at pos and not followed by a letter. */
static const struct word *ascii_at(const struct scan *sc, size_t pos, const struct word *list)
{
    size_t left = pos < sc->len ? sc->len - pos : 0;
    unsigned char c0 = left ? lower((unsigned char)sc->t[pos]) : 0;
    for (; left && list->s; list++)
        if (list->n <= left && c0 == lower((unsigned char)list->s[0]) &&
            eq_nocase(sc->t + pos, list->s, list->n) &&
            (list->n == left || !tg_ascii_alpha((unsigned char)sc->t[pos + list->n])))
            return list;
    return NULL;
}

/* An ASCII word of list (any case) ending at pos and not preceded by a letter. */
static const struct word *ascii_before(const struct scan *sc, size_t pos, const struct word *list)
{
    for (; pos && list->s; list++)
        if (list->n <= pos && eq_nocase(sc->t + pos - list->n, list->s, list->n) &&
            (pos == list->n || !tg_ascii_alpha((unsigned char)sc->t[pos - list->n - 1])))
            return list;
    return NULL;
}

static const struct word cur_before[] = {W("US$", U_USD), W("HK$", U_HKD),    W("¥", U_CNY),
                                         W("￥", U_CNY),  W("人民币", U_CNY), W("$", U_USD),
                                         W("＄", U_USD),  W("美元", U_USD),   W("€", U_EUR),
                                         W("£", U_GBP),   W("港币", U_HKD),   WORDS_END};
static const struct word cur_before_ascii[] = {W("RMB", U_CNY), W("CNY", U_CNY), W("USD", U_USD),
                                               W("HKD", U_HKD), W("EUR", U_EUR), W("GBP", U_GBP),
                                               W("JPY", U_JPY), WORDS_END};
/* Words after a numeral: percent (val: the divisor to percent), currency
 * and units (val: the unit; 0 for a counting measure word, which becomes
 * U_MEASURE + its code point).  Words with the same first character stand
 * together, longest first: tails_cn is looked up by its first character. */
#define PCT(lit, div) WK(lit, T_PCT, div)
#define CUR(lit, u) WK(lit, T_CUR, u)
#define UNIT(lit, u) WK(lit, T_UNIT, u)
/* Word tables read best as tables. */
/* clang-format off */
static const struct word tails_cn[] = {
    UNIT("个工作日", U_WORKDAY), UNIT("个自然日", U_DAY), PCT("个百分点", 1), UNIT("个月", U_MONTH),
    UNIT("个星期", U_WEEK), UNIT("个礼拜", U_WEEK), UNIT("个小时", U_HOUR), UNIT("个", 0),
    UNIT("工作日", U_WORKDAY), UNIT("自然日", U_DAY), UNIT("小时", U_HOUR), UNIT("分钟", U_MINUTE),
    UNIT("周岁", U_AGE), UNIT("周", U_WEEK), UNIT("星期", U_WEEK), UNIT("礼拜", U_WEEK),
    UNIT("公里", U_KM), UNIT("公斤", U_KG), UNIT("天", U_DAY), CUR("日元", U_JPY),
    CUR("日币", U_JPY), UNIT("日", U_DAY), UNIT("年", U_YEAR), UNIT("秒", U_SECOND),
    UNIT("岁", U_AGE), UNIT("次", U_TIMES), UNIT("倍", U_FOLD), CUR("人民币", U_CNY),
    UNIT("人", U_PERSON), UNIT("位", U_PERSON), UNIT("名", U_PERSON), UNIT("期", U_TERM),
    UNIT("笔", U_TXN), UNIT("折", U_DISCOUNT), UNIT("种", 0), UNIT("项", 0),
    UNIT("类", 0), UNIT("条", 0), UNIT("款", 0), UNIT("件", 0),
    UNIT("份", 0), UNIT("张", 0), UNIT("家", 0), UNIT("户", 0),
    UNIT("点", 0), CUR("块钱", U_CNY), CUR("块", U_CNY), CUR("元", U_CNY),
    CUR("圆", U_CNY), CUR("美元", U_USD), CUR("美金", U_USD), CUR("欧元", U_EUR),
    CUR("英镑", U_GBP), CUR("港币", U_HKD), CUR("港元", U_HKD), CUR("円", U_JPY),
    WORDS_END};
static const struct word tails_ascii[] = {
    PCT("percent", 1), PCT("per cent", 1), CUR("yuan", U_CNY), CUR("rmb", U_CNY),
    CUR("cny", U_CNY), CUR("dollars", U_USD), CUR("dollar", U_USD), CUR("usd", U_USD),
    CUR("euros", U_EUR), CUR("euro", U_EUR), CUR("eur", U_EUR), CUR("pounds", U_GBP),
    CUR("gbp", U_GBP), CUR("hkd", U_HKD), CUR("yen", U_JPY), CUR("jpy", U_JPY),
    UNIT("business days", U_WORKDAY), UNIT("business day", U_WORKDAY),
    UNIT("working days", U_WORKDAY), UNIT("working day", U_WORKDAY), UNIT("workdays", U_WORKDAY),
    UNIT("calendar days", U_DAY), UNIT("days", U_DAY), UNIT("day", U_DAY),
    UNIT("weeks", U_WEEK), UNIT("week", U_WEEK), UNIT("months", U_MONTH), UNIT("month", U_MONTH),
    UNIT("years old", U_AGE), UNIT("years", U_YEAR), UNIT("year", U_YEAR), UNIT("yrs", U_YEAR),
    UNIT("hours", U_HOUR), UNIT("hour", U_HOUR), UNIT("hrs", U_HOUR),
    UNIT("minutes", U_MINUTE), UNIT("minute", U_MINUTE), UNIT("mins", U_MINUTE),
    UNIT("seconds", U_SECOND), UNIT("times", U_TIMES), UNIT("people", U_PERSON),
    UNIT("persons", U_PERSON), UNIT("installments", U_TERM), UNIT("km", U_KM), UNIT("kg", U_KG),
    WORDS_END};
/* clang-format on */
static const struct word pct_signs[] = {PCT("%", 1), PCT("％", 1), PCT("‰", 10), WORDS_END};
static const struct word pct_before[] = {W("百分之", 1), W("千分之", 10), WORDS_END};
static const struct word scale_ascii[] = {W("thousand", 1000), W("million", 1000000),
                                          W("billion", 1000000000), WORDS_END};
static const struct word approx_infix[] = {W("多", 0), W("余", 0), WORDS_END};
static const struct word not_approx[] = {W("多少", 0), W("余额", 0), WORDS_END};
static const struct word range_words[] = {W("到", 0), W("至", 0), W("-", 0), W("~", 0),
                                          W("～", 0), W("—", 0),  W("–", 0), W("〜", 0),
                                          W("－", 0), WORDS_END};
static const struct word range_ascii[] = {W("to", 0), WORDS_END};
static const struct word months_ascii[] = {
    W("january", 1),   W("february", 2),  W("march", 3),  W("april", 4),     W("may", 5),
    W("june", 6),      W("july", 7),      W("august", 8), W("september", 9), W("october", 10),
    W("november", 11), W("december", 12), W("jan", 1),    W("feb", 2),       W("mar", 3),
    W("apr", 4),       W("jun", 6),       W("jul", 7),    W("aug", 8),       W("sept", 9),
    W("sep", 9),       W("oct", 10),      W("nov", 11),   W("dec", 12),      WORDS_END};
static const struct word ordinal_ascii[] = {W("st", 0), W("nd", 0), W("rd", 0), W("th", 0),
                                            WORDS_END};
/* Times of day before a clock time; val: hours added to an hour below 12. */
static const struct word time_of_day[] = {
    W("上午", 0),  W("早上", 0),  W("早晨", 0),  W("凌晨", 0),  W("中午", 12),
    W("下午", 12), W("傍晚", 12), W("晚上", 12), W("夜里", 12), WORDS_END};
static const struct word clock_suffix_ascii[] = {W("am", 0), W("a.m.", 0), W("pm", 12),
                                                 W("p.m.", 12), WORDS_END};
static const struct word month_w[] = {W("月", 0), WORDS_END};
static const struct word day_w[] = {W("日", 0), W("号", 0), W("號", 0), WORDS_END};
static const struct word point_w[] = {W("点", 0), W("點", 0), WORDS_END};
static const struct word half_w[] = {W("半", 0), WORDS_END};
static const struct word minute_w[] = {W("分", 0), WORDS_END};

/* ------------------------------------------------------------ character classes */

/*
 * Per character of the CJK Unified Ideographs block: whether a numeral may
 * start with it, and whether a unit, currency or percent word may.  Built
 * once; the scan then spends one table lookup on most characters.
 */
#define CJK_FIRST 0x4E00
#define CJK_LAST 0x9FFF
enum { B_CN = 7 /* enum cn */, B_NUMERAL = 8, B_TAIL = 16, B_PCT_WORD = 32 /* 百分之, 千分之 */ };
static uint8_t cjk_bits[CJK_LAST - CJK_FIRST + 1];
static uint8_t cjk_tail[CJK_LAST - CJK_FIRST + 1]; /* 1 + the first tails_cn index */
static pthread_once_t cjk_once = PTHREAD_ONCE_INIT;

static void cjk_mark(const struct word *list, uint8_t bit)
{
    uint32_t cp;
    for (; list->s; list++)
        if (tg_utf8_decode((const unsigned char *)list->s, list->n, &cp) && cp >= CJK_FIRST &&
            cp <= CJK_LAST)
            cjk_bits[cp - CJK_FIRST] |= bit;
}

static void cjk_init(void)
{
    uint32_t cp;
    for (cp = CJK_FIRST; cp <= CJK_LAST; cp++) {
        enum cn k = cn_role(cp);
        cjk_bits[cp - CJK_FIRST] = (uint8_t)k;
        if (k == CN_DIGIT || k == CN_TEN)
            cjk_bits[cp - CJK_FIRST] |= B_NUMERAL;
    }
    cjk_mark(pct_before, B_PCT_WORD);
    for (size_t i = 0; tails_cn[i].s; i++) {
        tg_utf8_decode((const unsigned char *)tails_cn[i].s, tails_cn[i].n, &cp);
        TG_ASSERT(cp >= CJK_FIRST && cp <= CJK_LAST && i < UINT8_MAX);
        /* words with one first character stand together */
        TG_ASSERT(!cjk_tail[cp - CJK_FIRST] || memcmp(tails_cn[i - 1].s, tails_cn[i].s, 3) == 0);
        if (!cjk_tail[cp - CJK_FIRST])
            cjk_tail[cp - CJK_FIRST] = (uint8_t)(i + 1);
    }
    cjk_mark(tails_cn, B_TAIL);
    cjk_mark(month_w, B_TAIL);
    cjk_mark(day_w, B_TAIL);
    cjk_mark(point_w, B_TAIL);
    cjk_mark(approx_infix, B_TAIL);
    cjk_mark(range_words, B_TAIL);
}

static inline uint8_t cjk_flags(uint32_t cp)
{
    return cp >= CJK_FIRST && cp <= CJK_LAST ? cjk_bits[cp - CJK_FIRST] : 0;
}

static inline enum cn cn_class(uint32_t cp)
{
    return cp == 0x3007 /* 〇 */ ? CN_DIGIT : (enum cn)(cjk_flags(cp) & B_CN);
}

/* Whether a numeral may start with this character. */
static bool numeral_start(uint32_t cp)
{
    return tg_digit_value(cp) >= 0 || cp == 0x3007 /* 〇 */ || (cjk_flags(cp) & B_NUMERAL);
}

/* Whether a currency sign or code may end with this character. */
static bool currency_char(uint32_t cp)
{
    switch (cp) {
    case '$':
    case 0xA5:   /* ¥ */
    case 0xFFE5: /* ￥ */
    case 0xFF04: /* ＄ */
    case 0x20AC: /* € */
    case 0xA3:   /* £ */
    case 0x5E01: /* 币 */
    case 0x5143: /* 元 */
        return true;
    default:
        return tg_ascii_alpha(cp);
    }
}

/* ------------------------------------------------------------ numerals */

/* The end of the run of numeral characters at pos: digits, Chinese
 * numerals, "," or "." between Arabic digits, 点 before a digit. */
static size_t numeral_extent(const struct scan *sc, size_t pos, bool stop_at_point)
{
    size_t p = pos, n;
    uint32_t cp, nx;
    bool last_arabic = false;
    while ((n = char_at(sc, p, &cp))) {
        enum cn k = cn_class(cp);
        bool arabic = tg_digit_value(cp) >= 0;
        if (arabic || (k != CN_NONE && k != CN_POINT)) {
            last_arabic = arabic;
            p += n;
            continue;
        }
        if (last_arabic && (cp == ',' || cp == 0xFF0C || cp == '.' || cp == 0xFF0E) &&
            char_at(sc, p + n, &nx) && tg_digit_value(nx) >= 0) {
            p += n;
            continue;
        }
        if (k == CN_POINT && !stop_at_point && p > pos && char_at(sc, p + n, &nx) &&
            (tg_digit_value(nx) >= 0 || cn_class(nx) == CN_DIGIT)) {
            p += n;
            continue;
        }
        break;
    }
    return p;
}

/* What the numeral text says besides its value. */
static void describe(const struct scan *sc, struct num *nm)
{
    size_t p = nm->start, n;
    uint32_t cp;
    bool point = false;
    nm->tail = 1;
    while (p < nm->end && (n = char_at(sc, p, &cp))) {
        int d = tg_digit_value(cp);
        double mag = magnitude_of(cp);
        nm->tail = mag > 0 ? mag : 1;
        nm->magnitude |= mag > 0;
        if (d >= 0) {
            nm->arabic = true;
            nm->lead_zero |= d == 0 && nm->int_digits == 0 && !point && digit_at(sc, p + n);
            nm->int_digits += !point;
            nm->digits += d > 0 || nm->digits > 0;
        } else if (cp == '.' || cp == 0xFF0E || cn_class(cp) == CN_POINT) {
            point = nm->frac = true;
        } else if (cp != ',' && cp != 0xFF0C) {
            nm->chinese = true;
        }
        p += n;
    }
    nm->just_one = nm->end - nm->start == 3 && (memcmp(sc->t + nm->start, "一", 3) == 0 ||
                                                memcmp(sc->t + nm->start, "壹", 3) == 0);
}

/*
 * ASCII digits with at most one decimal point, as most numerals are: read
 * here, with the arithmetic of numbers.c (the digits as one integer, then
 * divided by a power of ten), so that they equal what it reads.
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

/*
 * Read the numeral in the run of numeral characters [pos, e): the longest
 * start of it that tg_text_parse_number accepts.  False when there is
 * none; *end is then where the run ends (at least one character past pos).
 */
static bool read_numeral_in(const struct scan *sc, size_t pos, size_t e, struct num *nm,
                            size_t *end)
{
    uint32_t cp;
    *end = e > pos ? e : pos + TG_MAX(char_at(sc, pos, &cp), (size_t)1);
    if (e - pos > NUMERAL_MAX)
        return false;
    memset(nm, 0, sizeof(*nm));
    while (e > pos) {
        if (plain_numeral(sc->t + pos, e - pos, &nm->v) ||
            tg_text_parse_number(sc->t + pos, e - pos, &nm->v) == TG_OK) {
            nm->start = pos;
            nm->end = e;
            describe(sc, nm);
            char_before(sc, pos, &nm->before);
            char_at(sc, e, &nm->after);
            return true;
        }
        e = char_before(sc, e, &cp);
    }
    return false;
}

static bool read_numeral(const struct scan *sc, size_t pos, bool stop_at_point, struct num *nm,
                         size_t *end)
{
    return read_numeral_in(sc, pos, numeral_extent(sc, pos, stop_at_point), nm, end);
}

static bool is_integer(const struct num *nm, double lo, double hi)
{
    return !nm->frac && nm->v >= lo && nm->v <= hi && nm->v == floor(nm->v);
}

/* ------------------------------------------------------------ claims */

/*
 * Whether a quantity is a claim in a draft and worth keeping in evidence.
 * Percentages, amounts and quantities with a unit are claims, except
 * where Chinese uses a small numeral as a word: 一 alone ("一次性",
 * "一块去") and 两/三... before a counting word ("两个方面").  A bare
 * number is a claim when it has two or more Arabic digits.  Evidence keeps
 * everything but bare numbers that are no claim.
 */
static void judge(struct qty *q, const struct num *nm, bool bare)
{
    bool small_cn = nm->chinese && !nm->arabic && nm->v < 10;
    if (bare)
        q->claim = nm->arabic && !nm->chinese && nm->digits >= 2;
    else if (q->kind == K_PERCENT)
        q->claim = true;
    else if (nm->just_one)
        q->claim = false;
    else
        q->claim = !(small_cn && q->unit >= U_MEASURE);
    q->keep = q->claim || !bare;
}

static void make_value(struct qty *q, size_t start, size_t end, double v)
{
    memset(q, 0, sizeof(*q));
    q->start = start;
    q->end = end;
    q->kind = K_NUMBER;
    q->group = G_VALUE;
    q->v = v;
    q->scale = 1;
}

/* ------------------------------------------------------------ codes and chains */

/* FNV-1a (64 bit) of the digits in [start, end). */
static uint64_t digits_hash(const struct scan *sc, size_t start, size_t end, int *count)
{
    uint64_t h = TG_FNV64_INIT;
    size_t p = start, n;
    uint32_t cp;
    *count = 0;
    while (p < end && (n = char_at(sc, p, &cp))) {
        int d = tg_digit_value(cp);
        if (d >= 0) {
            h = tg_fnv1a64_byte(h, (unsigned char)('0' + d));
            (*count)++;
        }
        p += n;
    }
    return h;
}

/* A phone number, hotline or other digit code, compared digit by digit. */
static void make_code(const struct scan *sc, size_t start, size_t end, struct qty *q)
{
    int count;
    make_value(q, start, end, 0);
    q->group = G_CODE;
    q->code = digits_hash(sc, start, end, &count);
    q->claim = q->keep = count >= 2;
}

static void make_date(struct qty *q, size_t start, size_t end, int y, int m, int d)
{
    make_value(q, start, end, (double)y * 10000 + m * 100 + d);
    q->kind = K_DATE;
    q->group = G_DATE;
    q->y = y;
    q->m = m;
    q->d = d;
    q->claim = q->keep = true;
}

static void make_clock(struct qty *q, size_t start, size_t end, int h, int min)
{
    make_value(q, start, end, h * 60 + min);
    q->unit = U_CLOCK;
    q->claim = q->keep = true;
}

/* Past letters, digits and "_" at pos, and "-", ".", "/", ":" between them. */
static size_t skip_token(const struct scan *sc, size_t pos)
{
    uint32_t cp, nx;
    size_t n, start = pos;
    while ((n = char_at(sc, pos, &cp))) {
        bool word = tg_ascii_alnum(cp) || cp == '_' || tg_digit_value(cp) >= 0;
        bool inner = (cp == '-' || cp == '.' || cp == '/' || cp == ':' || cp == '@') &&
                     char_at(sc, pos + n, &nx) && (tg_ascii_alnum(nx) || tg_digit_value(nx) >= 0);
        if (!word && !inner)
            break;
        pos += n;
    }
    return pos > start ? pos : start + 1;
}

/* Digit groups joined by one of "-./:" ("2024-03-05", "400-820-8820", "9:30"). */
#define MAX_GROUPS 6
struct chain {
    size_t start[MAX_GROUPS], end[MAX_GROUPS];
    int ndig[MAX_GROUPS];
    int n;
    char sep; /* the separator between them; a different one ends the chain */
};

static bool chain_sep(const struct scan *sc, size_t pos)
{
    char c = pos < sc->len ? sc->t[pos] : 0;
    return (c == '-' || c == '.' || c == '/' || c == ':') && digit_at(sc, pos + 1);
}

static size_t read_chain(const struct scan *sc, size_t pos, struct chain *c)
{
    uint32_t cp;
    size_t n;
    memset(c, 0, sizeof(*c));
    for (;;) {
        int i = c->n++;
        c->start[i] = pos;
        while ((n = char_at(sc, pos, &cp)) && tg_digit_value(cp) >= 0) {
            c->ndig[i]++;
            pos += n;
        }
        c->end[i] = pos;
        if (c->n == MAX_GROUPS || !chain_sep(sc, pos) || (i > 0 && sc->t[pos] != c->sep))
            break;
        c->sep = sc->t[pos];
        pos++;
    }
    return pos;
}

/* The value of group i (at most 9 digits are read). */
static int group_value(const struct scan *sc, const struct chain *c, int i)
{
    int v = 0, k = 0;
    size_t p = c->start[i], n;
    uint32_t cp;
    while (p < c->end[i] && k++ < 9 && (n = char_at(sc, p, &cp))) {
        v = v * 10 + tg_digit_value(cp);
        p += n;
    }
    return v;
}

static bool valid_date(int y, int m, int d)
{
    return y >= 1000 && y <= 2999 && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

/* Hours to add for a time-of-day word before pos (下午: 12), or -1 when none. */
static int time_of_day_before(const struct scan *sc, size_t pos)
{
    const struct word *w = word_before(sc, skip_space_back(sc, pos), time_of_day);
    return w ? (int)w->val : -1;
}

/* "am"/"pm" after a clock time: its end, and the hours it adds in *shift. */
static size_t clock_suffix(const struct scan *sc, size_t p, int *shift)
{
    size_t q = skip_space(sc, p);
    const struct word *w = ascii_at(sc, q, clock_suffix_ascii);
    if (!w)
        return p;
    *shift = (int)w->val;
    return q + w->n;
}

/* The hour on a 24-hour clock: "下午3点" is 15, "12 am" is 0. */
static int shifted_hour(int h, int shift)
{
    if (shift == 12 && h < 12)
        return h + 12;
    if (shift == 0 && h == 12)
        return 0;
    return h;
}

enum step { ST_NONE, ST_EMIT, ST_SKIP };

/* A time "9:30" or "17:00:00"; anything else joined by ":" is skipped. */
static enum step chain_clock(const struct scan *sc, const struct chain *c, size_t end,
                             struct qty *q, size_t *next)
{
    int h = group_value(sc, c, 0), min = group_value(sc, c, 1), shift;
    size_t e;
    if (c->n > 3 || c->ndig[0] > 2 || c->ndig[1] != 2 || h > 24 || min > 59)
        return ST_SKIP;
    shift = time_of_day_before(sc, c->start[0]);
    e = clock_suffix(sc, end, &shift);
    make_clock(q, c->start[0], e, shifted_hour(h, shift), min);
    *next = e;
    return ST_EMIT;
}

/*
 * A chain of digit groups at pos: a date, a time, a code (hotline, phone)
 * or a version.  ST_NONE when it is an ordinary numeral (one group, a
 * decimal, a range "3000-5000"), to be read as such.
 */
static enum step chain_at(const struct scan *sc, size_t pos, struct qty *q, size_t *next)
{
    struct chain c;
    size_t end = read_chain(sc, pos, &c);
    int y, m, d;
    *next = end;
    if (c.n == 1 || (c.n == 2 && c.sep == '.'))
        return ST_NONE;
    if (c.sep == ':')
        return chain_clock(sc, &c, end, q, next);
    y = group_value(sc, &c, 0);
    m = c.n > 1 ? group_value(sc, &c, 1) : 0;
    d = c.n > 2 ? group_value(sc, &c, 2) : 0;
    if (c.n == 3 && c.ndig[0] == 4 && c.ndig[1] <= 2 && c.ndig[2] <= 2 && valid_date(y, m, d)) {
        make_date(q, pos, end, y, m, d);
        return ST_EMIT;
    }
    if (c.sep == '.' || c.sep == '/')
        return ST_SKIP; /* versions, addresses, fractions */
    /* Joined by "-": a range of two plain numbers, else a code. */
    if (c.n == 2 && c.ndig[0] <= 6 && c.ndig[1] <= 6 && sc->t[c.start[0]] != '0' &&
        sc->t[c.start[1]] != '0')
        return ST_NONE;
    make_code(sc, pos, end, q);
    return ST_EMIT;
}

/* ------------------------------------------------------------ dates */

/* After "2024年": a month numeral and 月, if there is one. */
static bool month_after(const struct scan *sc, size_t p, struct num *m)
{
    size_t skip;
    return read_numeral(sc, p, true, m, &skip) && m->after == 0x6708 /* 月 */ &&
           is_integer(m, 1, 12);
}

/* A Chinese date at the numeral: "2024年3月5日", "3月5日", "3月", "2024年",
 * and "每月5日" (a day of the month). */
static bool date_cn(const struct scan *sc, const struct num *nm, struct qty *q)
{
    struct num m2, d2;
    size_t e, skip;
    const struct word *w;
    int y = 0, d = 0;
    if (nm->after == 0x5E74 /* 年 */) {
        if (!is_integer(nm, 1000, 2999))
            return false;
        y = (int)nm->v;
        if (!month_after(sc, nm->end + 3, &m2)) {
            make_date(q, nm->start, nm->end + 3, y, 0, 0);
            return true;
        }
        nm = &m2;
    }
    if (nm->after == 0x6708 /* 月 */ && is_integer(nm, 1, 12)) {
        e = nm->end + 3;
        if (read_numeral(sc, e, true, &d2, &skip) && (w = word_at(sc, d2.end, day_w)) &&
            is_integer(&d2, 1, 31)) {
            d = (int)d2.v;
            e = d2.end + w->n;
        }
        make_date(q, q->start, e, y, (int)nm->v, d);
        return true;
    }
    if (nm->before == 0x6708 /* 月 */ && (w = word_at(sc, nm->end, day_w)) &&
        is_integer(nm, 1, 31)) {
        make_date(q, nm->start, nm->end + w->n, 0, 0, (int)nm->v);
        return true;
    }
    return false;
}

/* A four-digit Arabic year at p. */
static bool year_at(const struct scan *sc, size_t p, struct num *yr)
{
    size_t skip;
    return digit_at(sc, p) && read_numeral(sc, p, true, yr, &skip) && !yr->chinese &&
           yr->int_digits == 4 && is_integer(yr, 1000, 2999);
}

/* After a day number: an ordinal suffix ("5th"). */
static size_t past_ordinal(const struct scan *sc, size_t p)
{
    const struct word *o = ascii_at(sc, p, ordinal_ascii);
    return o ? p + o->n : p;
}

/* "March 5", "Mar. 5, 2024", "March 2024": a month name before the numeral. */
static bool date_en_month_first(const struct scan *sc, const struct num *nm, struct qty *q)
{
    size_t b = skip_space_back(sc, nm->start), ms, e, p;
    const struct word *w;
    struct num yr;
    if (b == nm->start || b == 0 ||
        !tg_ascii_alpha((unsigned char)sc->t[b - 1 - (b > 1 && sc->t[b - 1] == '.')]))
        return false; /* no month name before */
    if (b > 0 && sc->t[b - 1] == '.')
        b--;
    if (!(w = ascii_before(sc, b, months_ascii)))
        return false;
    ms = b - w->n;
    if (nm->int_digits == 4 && is_integer(nm, 1000, 2999)) {
        make_date(q, ms, nm->end, (int)nm->v, (int)w->val, 0);
        return true;
    }
    if (nm->int_digits > 2 || !is_integer(nm, 1, 31))
        return false;
    e = past_ordinal(sc, nm->end);
    p = skip_space(sc, e < sc->len && sc->t[e] == ',' ? e + 1 : e);
    if (p > e && year_at(sc, p, &yr))
        make_date(q, ms, yr.end, (int)yr.v, (int)w->val, (int)nm->v);
    else
        make_date(q, ms, e, 0, (int)w->val, (int)nm->v);
    return true;
}

/* "5 March 2024", "5th March": a month name after the numeral. */
static bool date_en_day_first(const struct scan *sc, const struct num *nm, struct qty *q)
{
    size_t e, p;
    const struct word *w;
    struct num yr;
    if (!tg_space_char(nm->after) && !tg_ascii_alpha(nm->after))
        return false;
    e = past_ordinal(sc, nm->end);
    p = skip_space(sc, e);
    if (nm->int_digits > 2 || !is_integer(nm, 1, 31) || p == e ||
        !(w = ascii_at(sc, p, months_ascii)))
        return false;
    e = p + w->n;
    p = skip_space(sc, e);
    if (p > e && year_at(sc, p, &yr))
        make_date(q, nm->start, yr.end, (int)yr.v, (int)w->val, (int)nm->v);
    else
        make_date(q, nm->start, e, 0, (int)w->val, (int)nm->v);
    return true;
}

static bool date_at(const struct scan *sc, const struct num *nm, struct qty *q)
{
    if (date_cn(sc, nm, q))
        return true;
    if (!nm->arabic || nm->chinese || nm->frac)
        return false;
    return date_en_month_first(sc, nm, q) || date_en_day_first(sc, nm, q);
}

/* ------------------------------------------------------------ times of day */

/* After "3点": the minutes ("半", "30分") and where they end; -1 when a
 * digit follows that is no minute (3点5万: a decimal point). */
static int clock_minutes(const struct scan *sc, size_t *p, bool *sure)
{
    struct num mm;
    size_t skip;
    uint32_t cp;
    if (word_at(sc, *p, half_w)) {
        *p += 3;
        *sure = true;
        return 30;
    }
    if (read_numeral(sc, *p, true, &mm, &skip) && is_integer(&mm, 0, 59) &&
        word_at(sc, mm.end, minute_w)) {
        *p = mm.end + 3;
        *sure = true;
        return (int)mm.v;
    }
    if (char_at(sc, *p, &cp) && (tg_digit_value(cp) >= 0 || cn_class(cp) == CN_DIGIT))
        return -1;
    return 0;
}

/* "下午3点", "9点半", "10点30分", "上午九点", "3 pm": a clock time at pos,
 * whose numeral characters (up to any 点) end at e, before the character after. */
static bool clock_at(const struct scan *sc, size_t pos, size_t e, uint32_t after, struct qty *q,
                     size_t *next)
{
    struct num h;
    size_t p, skip;
    int shift = -1, min;
    bool sure, point = is_point(after);
    bool ampm = after < 0x80 && (after == ' ' || lower((unsigned char)after) == 'a' ||
                                 lower((unsigned char)after) == 'p');
    if (!point && (!ampm || clock_suffix(sc, e, &shift) == e))
        return false; /* neither 点 nor am/pm: the common case, decided before parsing */
    if (!read_numeral_in(sc, pos, e, &h, &skip) || !is_integer(&h, 0, 24) || h.end != e)
        return false;
    if (!point) {
        if (!h.arabic || h.chinese || h.v < 1 || h.v > 12)
            return false;
        p = clock_suffix(sc, e, &shift);
        make_clock(q, pos, p, shifted_hour((int)h.v, shift), 0); /* "3 pm" */
        *next = p;
        return true;
    }
    shift = time_of_day_before(sc, pos);
    sure = shift >= 0;
    p = h.end + 3; /* past 点 */
    min = clock_minutes(sc, &p, &sure);
    /* "以下3点" is three points; two Arabic digits are an hour. */
    if (min < 0 || (!sure && !(h.arabic && h.int_digits == 2)))
        return false;
    make_clock(q, pos, p, shifted_hour((int)h.v, shift), min);
    *next = p;
    return true;
}

/* ------------------------------------------------------------ tails */

/* w/W (万), k/K, thousand, million, billion after an Arabic numeral: its
 * factor and end, or 0. */
static double ascii_scale(const struct scan *sc, size_t p, size_t *end)
{
    unsigned char c = p < sc->len ? (unsigned char)sc->t[p] : 0;
    const struct word *w;
    size_t s;
    if ((c == 'w' || c == 'W' || c == 'k' || c == 'K') &&
        !(p + 1 < sc->len && tg_ascii_alnum((unsigned char)sc->t[p + 1]))) {
        *end = p + 1;
        return c == 'w' || c == 'W' ? 1e4 : 1e3;
    }
    s = skip_space(sc, p);
    if ((c == ' ' || tg_ascii_alpha(c)) && (w = ascii_at(sc, s, scale_ascii))) {
        *end = s + w->n;
        return w->val;
    }
    return 0;
}

/* 多/余 with a magnitude ("10多万"), w/k, thousand/million: scales q.
 * Returns where the numeral and its scale end. */
static size_t read_scale(const struct scan *sc, struct num *nm, struct qty *q)
{
    size_t p = nm->end, e;
    uint32_t cp;
    double mag;
    if ((nm->after == 0x591A /* 多 */ || nm->after == 0x4F59 /* 余 */) &&
        !word_at(sc, p, not_approx)) {
        p += 3;
        char_at(sc, p, &cp);
        mag = magnitude_of(cp);
        if (mag >= 1e4 && !nm->magnitude) {
            q->scale = mag;
            nm->magnitude = true;
            p += 3;
        }
        return p;
    }
    if (nm->chinese || nm->magnitude || (mag = ascii_scale(sc, p, &e)) == 0)
        return p;
    q->scale = mag;
    nm->magnitude = true;
    return e;
}

/* A tails_cn word at pos, whose first character is cp. */
static const struct word *tail_cn_at(const struct scan *sc, size_t pos, uint32_t cp)
{
    const struct word *w, *first;
    size_t left = sc->len - pos;
    if (!cjk_tail[cp - CJK_FIRST])
        return NULL;
    first = &tails_cn[cjk_tail[cp - CJK_FIRST] - 1];
    for (w = first; w->s && memcmp(w->s, first->s, 3) == 0; w++)
        if (w->n <= left && memcmp(sc->t + pos, w->s, w->n) == 0)
            return w;
    return NULL;
}

/* A percent sign, currency or unit after one optional space ("30天",
 * "90 days", "3.5 %") or a hyphen ("30-day"); *at is where it starts. */
static const struct word *tail_at(const struct scan *sc, size_t p, size_t *at)
{
    size_t s = skip_space(sc, p);
    const struct word *w = NULL;
    uint32_t cp;
    *at = s;
    if (!char_at(sc, s, &cp))
        return NULL;
    if (cjk_flags(cp) & B_TAIL)
        w = tail_cn_at(sc, s, cp);
    else if (tg_ascii_alpha(cp))
        w = ascii_at(sc, s, tails_ascii);
    else if (cp == '%' || cp == 0xFF05 || cp == 0x2030)
        w = word_at(sc, s, pct_signs);
    else if (cp == '-' && s == p && (w = ascii_at(sc, s + 1, tails_ascii)) && w->kind == T_UNIT)
        *at = s + 1;
    else
        w = NULL;
    return w;
}

/* What follows the numeral.  Returns false when nothing does: a bare number. */
static bool read_tail(const struct scan *sc, struct num *nm, struct qty *q)
{
    size_t p = read_scale(sc, nm, q), at;
    const struct word *w = tail_at(sc, p, &at);
    uint32_t cp;
    q->end = w ? at + w->n : p;
    if (!w) {
        if (nm->magnitude)
            q->kind = K_AMOUNT;
    } else if (w->kind == T_PCT) {
        q->kind = K_PERCENT;
        q->unit = U_PERCENT;
        q->scale /= w->val;
    } else if (w->kind == T_CUR) {
        q->kind = K_AMOUNT;
        q->unit = w->val;
    } else {
        char_at(sc, at, &cp);
        q->unit = w->val ? w->val : U_MEASURE + cp;
    }
    q->v = nm->v * q->scale;
    return w || nm->magnitude;
}

/* A currency sign or code before the numeral ("¥5,000", "RMB 300", "$20"). */
static void currency_before(const struct scan *sc, const struct num *nm, struct qty *q)
{
    size_t b;
    const struct word *w;
    uint32_t cp = nm->before;
    if (!currency_char(cp) && !tg_space_char(cp))
        return;
    b = skip_space_back(sc, q->start);
    if (b < q->start)
        char_before(sc, b, &cp);
    if (!currency_char(cp))
        return;
    w = word_before(sc, b, cur_before);
    if (!w)
        w = ascii_before(sc, b, cur_before_ascii);
    if (!w || q->kind == K_PERCENT || (q->kind == K_NUMBER && q->unit != U_NONE) ||
        (q->kind == K_AMOUNT && q->unit != U_NONE && q->unit != w->val))
        return;
    q->kind = K_AMOUNT;
    q->unit = w->val;
    q->start = b - w->n;
}

/* After a numeral: ".", ":" or "/" and more (a version, a domain), or "@". */
static bool compound_after(const struct scan *sc, size_t p)
{
    unsigned char c = p < sc->len ? (unsigned char)sc->t[p] : 0, d;
    if (c == '@')
        return true;
    if (c != '.' && c != ':' && c != '/')
        return false;
    d = p + 1 < sc->len ? (unsigned char)sc->t[p + 1] : 0;
    return digit_at(sc, p + 1) || tg_ascii_alpha(d);
}

/*
 * The quantity whose numeral starts at pos and lies in the run of numeral
 * characters [pos, e) (not a chain, not a clock).
 * ST_EMIT with q and nm filled, or ST_SKIP; *next is past what was read.
 * *bare tells whether nothing but the numeral was found.
 */
static enum step quantity_at(const struct scan *sc, size_t pos, size_t e, struct qty *q,
                             struct num *nm, size_t *next, bool *bare)
{
    *bare = false;
    if (!read_numeral_in(sc, pos, e, nm, next))
        return ST_SKIP;
    if (compound_after(sc, nm->end)) {
        *next = skip_token(sc, pos);
        return ST_SKIP; /* "3.5.1", "163.com", "123@qq.com" */
    }
    make_value(q, pos, nm->end, nm->v);
    if (date_at(sc, nm, q)) {
        *next = q->end;
        return ST_EMIT;
    }
    *bare = !read_tail(sc, nm, q);
    currency_before(sc, nm, q);
    *bare = *bare && q->kind == K_NUMBER;
    *next = q->end;
    if (*bare && q->end < sc->len && tg_ascii_alpha((unsigned char)sc->t[q->end])) {
        *next = skip_token(sc, pos);
        return ST_SKIP; /* "5G", "3a", "100ml" */
    }
    if (*bare && nm->arabic && !nm->chinese && (nm->lead_zero || nm->int_digits > 15)) {
        make_code(sc, pos, q->end, q);
        *bare = false;
        return ST_EMIT;
    }
    judge(q, nm, *bare);
    if (*bare && nm->arabic && !nm->chinese && !nm->frac) {
        int count;
        q->code = digits_hash(sc, pos, q->end, &count);
        q->coded = true;
    }
    return ST_EMIT;
}

/* ------------------------------------------------------------ the scan */

static int emit(const struct scan *sc, const struct qty *q)
{
    if (sc->draft ? !q->claim : !q->keep)
        return TG_OK;
    return sc->emit(sc->ctx, q);
}

/* After a bare numeral: "到", "-" or "to" and a second quantity ("5到8万",
 * "3-5个工作日", "2.5-3.5%").  The first takes the second's unit and scale.
 * Emits both and returns true; false when no range follows. */
static bool range_after(const struct scan *sc, struct qty *q, const struct num *nm, size_t *next,
                        int *rc)
{
    size_t p = skip_space(sc, q->end), r, skip;
    const struct word *w = word_at(sc, p, range_words);
    struct qty q2;
    struct num n2;
    uint32_t cp;
    bool bare2;
    if (!w && p > q->end)
        w = ascii_at(sc, p, range_ascii);
    if (!w)
        return false;
    r = skip_space(sc, p + w->n);
    if (!char_at(sc, r, &cp) || !numeral_start(cp) ||
        quantity_at(sc, r, numeral_extent(sc, r, false), &q2, &n2, &skip, &bare2) != ST_EMIT ||
        q2.group != G_VALUE)
        return false;
    if (!bare2) {
        q->kind = q2.kind;
        q->unit = q2.unit;
        q->coded = false;
        q->v = nm->v * n2.tail * q2.scale;
        judge(q, nm, false);
    }
    *rc = emit(sc, q);
    if (*rc == TG_OK)
        *rc = emit(sc, &q2);
    *next = skip;
    return true;
}

/* A list marker at the start of a line: "1.", "2、", "3)", "(4)". */
static bool list_marker(const struct scan *sc, size_t pos)
{
    uint32_t cp;
    size_t b = pos, e = pos, n, s;
    while (b > 0) {
        s = char_before(sc, b, &cp);
        if (cp == '\n')
            break;
        if (!tg_space_char(cp) && cp != '(' && cp != 0xFF08)
            return false;
        b = s;
    }
    while ((n = char_at(sc, e, &cp)) && tg_digit_value(cp) >= 0)
        e += n;
    n = char_at(sc, e, &cp);
    return n && (cp == '.' || cp == ')' || cp == 0x3001 || cp == 0xFF09) && !digit_at(sc, e + n);
}

/* Characters before an Arabic numeral that make it part of something else:
 * a path, a reference, an identifier, a country code. */
static bool vetoed_before(const struct scan *sc, size_t pos)
{
    uint32_t cp, cp2;
    size_t s = char_before(sc, pos, &cp);
    if (pos == 0)
        return false;
    if (cp == '/' || cp == '\\' || cp == '#' || cp == '@' || cp == '_' || cp == '+' || cp == '=' ||
        cp == '&' || cp == '?')
        return true;
    if (cp == '.' || cp == '-') { /* "v.2", "COVID-19" */
        char_before(sc, s, &cp2);
        return tg_ascii_alpha(cp2);
    }
    return false;
}

/*
 * A numeral in Chinese characters only, with no magnitude and nothing after
 * it that could make it a quantity ("一般", "统一", "三甲"): never emitted,
 * so it is passed over without being parsed.  Returns its end, or 0.
 */
static size_t quiet_chinese(const struct scan *sc, size_t pos, size_t e)
{
    size_t p;
    uint32_t cp;
    for (p = pos; p < e; p += char_at(sc, p, &cp)) {
        char_at(sc, p, &cp);
        if (tg_digit_value(cp) >= 0 || cn_class(cp) == CN_BIG || cn_class(cp) == CN_UNIT)
            return 0;
    }
    p = skip_space(sc, e);
    if (!char_at(sc, p, &cp))
        return e;
    if (cp >= 0x80 ? (cp < CJK_FIRST || cp > CJK_LAST || (cjk_flags(cp) & B_TAIL))
                   : (tg_ascii_alnum(cp) || !strchr(",.;:!?()[]\"' \n\r\t", (int)cp)))
        return 0;
    char_before(sc, pos, &cp);
    return currency_char(cp) ? 0 : e;
}

static int at_numeral(const struct scan *sc, size_t pos, size_t *next)
{
    struct qty q;
    struct num nm;
    enum step st;
    bool bare;
    int rc = TG_OK;
    size_t e_point = numeral_extent(sc, pos, true), e = e_point, quiet;
    bool arabic = digit_at(sc, pos);
    uint32_t after;
    char_at(sc, e_point, &after); /* 点 may be a decimal point: 三点五万 */
    if (is_point(after))
        e = numeral_extent(sc, pos, false);
    if (!arabic && (quiet = quiet_chinese(sc, pos, e)) > pos) {
        *next = quiet;
        return TG_OK;
    }
    if (arabic) {
        if (vetoed_before(sc, pos) || list_marker(sc, pos)) {
            *next = skip_token(sc, pos);
            return TG_OK;
        }
        st = chain_at(sc, pos, &q, next);
        if (st == ST_EMIT)
            return emit(sc, &q);
        if (st == ST_SKIP)
            return TG_OK;
    }
    if (clock_at(sc, pos, e_point, after, &q, next))
        return emit(sc, &q);
    st = quantity_at(sc, pos, e, &q, &nm, next, &bare);
    if (st != ST_EMIT)
        return TG_OK;
    if (bare && range_after(sc, &q, &nm, next, &rc))
        return rc;
    return emit(sc, &q);
}

/* "百分之五", "千分之三". */
static int at_percent_word(const struct scan *sc, size_t pos, const struct word *w, size_t *next)
{
    struct num nm;
    struct qty q;
    if (!read_numeral(sc, pos + w->n, false, &nm, next)) {
        *next = pos + w->n;
        return TG_OK;
    }
    make_value(&q, pos, nm.end, nm.v / w->val);
    q.kind = K_PERCENT;
    q.unit = U_PERCENT;
    q.claim = q.keep = true;
    *next = nm.end;
    return emit(sc, &q);
}

static bool is_currency_code(const char *s, size_t n)
{
    for (const struct word *w = cur_before_ascii; w->s; w++)
        if (w->n == n && eq_nocase(s, w->s, n))
            return true;
    return false;
}

/* An ASCII word at pos: its end.  Letters glued to digits make a code
 * ("P2024000123", "v2"), skipped whole, unless they are a currency code. */
static size_t skip_word(const struct scan *sc, size_t pos)
{
    size_t e = pos;
    while (e < sc->len && tg_ascii_alpha((unsigned char)sc->t[e]))
        e++;
    if ((digit_at(sc, e) || (e < sc->len && sc->t[e] == '_')) &&
        !is_currency_code(sc->t + pos, e - pos))
        return skip_token(sc, pos);
    return e;
}

/* Past the characters at pos, of the CJK block, that open no quantity:
 * most of a Chinese text, decoded inline. */
static size_t skip_plain_cjk(const struct scan *sc, size_t pos)
{
    const unsigned char *t = (const unsigned char *)sc->t;
    while (pos + 2 < sc->len && t[pos] >= 0xE4 && t[pos] <= 0xE9 && (t[pos + 1] & 0xC0) == 0x80 &&
           (t[pos + 2] & 0xC0) == 0x80) {
        uint32_t cp = (uint32_t)(t[pos] & 0x0F) << 12 | (uint32_t)(t[pos + 1] & 0x3F) << 6 |
                      (t[pos + 2] & 0x3F);
        if (cjk_flags(cp) & (B_NUMERAL | B_PCT_WORD))
            break;
        pos += 3;
    }
    return pos;
}

static int scan_text(const struct scan *sc)
{
    size_t pos = 0, next, n;
    uint32_t cp;
    const struct word *w;
    int rc = TG_OK;
    while (pos < sc->len && rc == TG_OK) {
        unsigned char c = (unsigned char)sc->t[pos];
        next = pos + 1;
        if (c >= '0' && c <= '9') {
            rc = at_numeral(sc, pos, &next);
        } else if (tg_ascii_alpha(c)) {
            next = skip_word(sc, pos);
        } else if (c >= 0xE4 && c <= 0xE9 && (next = skip_plain_cjk(sc, pos)) > pos) {
            /* passed over */
        } else if (c >= 0x80 && (n = char_at(sc, pos, &cp))) {
            next = pos + n;
            if (numeral_start(cp))
                rc = at_numeral(sc, pos, &next);
            else if ((cp == 0x767E || cp == 0x5343) && (w = word_at(sc, pos, pct_before)))
                rc = at_percent_word(sc, pos, w, &next);
        }
        TG_ASSERT(next > pos);
        pos = next;
    }
    return rc;
}

/* ------------------------------------------------------------ the evidence set */

/*
 * The quantities of the evidence, and an open-addressing hash table over
 * the values and codes among them (dates, few and matched with wildcards,
 * are looked through in order).  Small evidence fits the local arrays.
 */
struct set {
    struct qty *v;
    size_t n, cap;
    uint32_t *slot; /* 1 + an index into v; 0: empty */
    size_t nslot;   /* a power of two, at least twice n */
    struct qty local[128];
    uint32_t local_slot[256];
};

static void set_init(struct set *s)
{
    s->v = s->local;
    s->n = 0;
    s->cap = TG_ARRAY_LEN(s->local);
    s->slot = s->local_slot;
    s->nslot = 0;
}

static void set_free(struct set *s)
{
    if (s->v != s->local)
        tg_free(s->v);
    if (s->slot != s->local_slot)
        tg_free(s->slot);
    set_init(s);
}

static int set_add(struct set *s, const struct qty *q)
{
    if (s->n == s->cap) {
        size_t cap = s->cap * 2;
        struct qty *v =
            s->v == s->local ? tg_malloc(cap * sizeof(*v)) : tg_realloc(s->v, cap * sizeof(*v));
        if (!v)
            return TG_E_NOMEM;
        if (s->v == s->local)
            memcpy(v, s->local, sizeof(s->local));
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = *q;
    return TG_OK;
}

/* Evidence: a bare integer is also a code, so "4008208820" grounds "400-820-8820". */
static int set_add_qty(void *ctx, const struct qty *q)
{
    struct qty c;
    int rc = set_add(ctx, q);
    if (rc || !q->coded)
        return rc;
    c = *q;
    c.group = G_CODE;
    return set_add(ctx, &c);
}

/* Values are equal when they agree to a millionth (integers past 10^9: to a unit). */
static uint64_t value_key(double v)
{
    double r = (fabs(v) < 1e9 ? nearbyint(v * 1e6) : nearbyint(v)) + 0.0;
    uint64_t bits;
    memcpy(&bits, &r, sizeof(bits));
    return bits;
}

static uint64_t key_of(const struct qty *q)
{
    return q->group == G_CODE ? q->code : value_key(q->v);
}

/* The splitmix64 finalizer: spreads a key over the table. */
static size_t key_slot(uint8_t group, uint64_t key, size_t mask)
{
    key ^= (uint64_t)group << 56;
    key = (key ^ (key >> 30)) * 0xbf58476d1ce4e5b9ULL;
    key = (key ^ (key >> 27)) * 0x94d049bb133111ebULL;
    return (size_t)(key ^ (key >> 31)) & mask;
}

static int set_index(struct set *s)
{
    size_t nslot = 16, h;
    while (nslot < 2 * s->n)
        nslot *= 2;
    if (nslot > TG_ARRAY_LEN(s->local_slot)) {
        s->slot = tg_calloc(nslot, sizeof(*s->slot));
        if (!s->slot) {
            s->slot = s->local_slot;
            return TG_E_NOMEM;
        }
    } else {
        memset(s->slot, 0, nslot * sizeof(*s->slot));
    }
    s->nslot = nslot;
    for (size_t i = 0; i < s->n; i++) {
        const struct qty *q = &s->v[i];
        uint64_t key = key_of(q);
        if (q->group == G_DATE)
            continue;
        /* Evidence repeats itself; a quantity already there is not added
         * again, which keeps the probe runs short. */
        for (h = key_slot(q->group, key, nslot - 1); s->slot[h]; h = (h + 1) & (nslot - 1)) {
            const struct qty *e = &s->v[s->slot[h] - 1];
            if (e->group == q->group && e->unit == q->unit && key_of(e) == key)
                break;
        }
        if (!s->slot[h])
            s->slot[h] = (uint32_t)(i + 1);
    }
    return TG_OK;
}

/* Whether the set holds a value (unit: U_NONE for any) or a code. */
static bool key_found(const struct set *s, uint8_t group, uint64_t key, uint32_t unit)
{
    size_t mask = s->nslot - 1, h = key_slot(group, key, mask);
    for (; s->slot[h]; h = (h + 1) & mask) {
        const struct qty *e = &s->v[s->slot[h] - 1];
        if (e->group == group && key_of(e) == key &&
            (unit == U_NONE || e->unit == U_NONE || e->unit == unit))
            return true;
    }
    return false;
}

static bool date_matches(const struct qty *c, const struct qty *e)
{
    if (c->y && e->y && c->y != e->y)
        return false;
    if (c->y && !e->y && !c->m)
        return false; /* a year needs the year */
    if (c->m && c->m != e->m)
        return false;
    return !c->d || c->d == e->d;
}

static bool date_found(const struct set *s, const struct qty *c)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].group == G_DATE && date_matches(c, &s->v[i]))
            return true;
    return false;
}

/* Whether the evidence holds the claim.  A bare year ("2024") and a date
 * of that year ("2024年") ground each other. */
static bool grounded(const struct set *s, const struct qty *c)
{
    struct qty year;
    if (c->group == G_CODE)
        return key_found(s, G_CODE, c->code, U_NONE);
    if (c->group == G_DATE)
        return date_found(s, c) ||
               (c->y && !c->m && key_found(s, G_VALUE, value_key(c->y), U_NONE));
    if (key_found(s, G_VALUE, value_key(c->v), c->unit) ||
        (c->coded && key_found(s, G_CODE, c->code, U_NONE)))
        return true;
    if (c->kind != K_NUMBER || c->unit != U_NONE || c->v < 1000 || c->v > 2999 ||
        c->v != floor(c->v))
        return false;
    make_date(&year, 0, 0, (int)c->v, 0, 0);
    return date_found(s, &year);
}

/* ------------------------------------------------------------ public */

struct check {
    const struct set *set;
    struct tg_claim *out;
    size_t max, count;
};

static int check_claim(void *ctx, const struct qty *q)
{
    struct check *ck = ctx;
    if (grounded(ck->set, q))
        return TG_OK;
    if (ck->count < ck->max)
        ck->out[ck->count] = (struct tg_claim){
            .start = (uint32_t)q->start, .end = (uint32_t)q->end, .kind = kind_names[q->kind]};
    ck->count++;
    return TG_OK;
}

/*
 * Beyond policy.h: evidence entries are NUL-terminated and may be NULL
 * (skipped); out may be NULL when max is 0; claim kinds are static
 * strings.  TG_E_INVAL for a NULL draft of non-zero length or a NULL
 * evidence array with n_evidence > 0, TG_E_TOOBIG for a draft past 4 GiB
 * (spans are 32-bit).  *n is written only on success.
 */
int tg_grounding_check(const char *draft, size_t draft_len, const char *const *evidence,
                       size_t n_evidence, struct tg_claim *out, size_t max, size_t *n)
{
    struct set set;
    struct check ck = {.set = &set, .out = out, .max = out ? max : 0};
    struct scan sc;
    int rc = TG_OK;
    set_init(&set);
    pthread_once(&cjk_once, cjk_init);
    if ((!draft && draft_len) || (!evidence && n_evidence)) {
        rc = TG_E_INVAL;
        goto out;
    }
    if (draft_len > UINT32_MAX) {
        rc = TG_E_TOOBIG;
        goto out;
    }
    for (size_t i = 0; i < n_evidence && rc == TG_OK; i++) {
        if (!evidence[i])
            continue;
        sc = (struct scan){
            .t = evidence[i], .len = strlen(evidence[i]), .emit = set_add_qty, .ctx = &set};
        rc = scan_text(&sc);
    }
    if (rc)
        goto out;
    rc = set_index(&set);
    if (rc)
        goto out;
    sc =
        (struct scan){.t = draft, .len = draft_len, .draft = true, .emit = check_claim, .ctx = &ck};
    rc = scan_text(&sc);
    if (rc == TG_OK)
        *n = ck.count;
out:
    set_free(&set);
    return rc;
}
