/*
 * grounding_scan.c - the lexical scanner of the grounding check
 * (grounding_int.h): one pass over a text that reads its quantities:
 * amounts of money, percentages, counts and durations with a unit, other
 * numbers of two or more digits, and digit codes; dates and times of day
 * through grounding_dates.c.  Numerals come from the numeral scanner
 * (text/numbers.h); a table over the CJK block lets the scan spend one
 * lookup on most characters of a Chinese text.
 */
#include "policy/grounding_int.h"

#include <pthread.h>
#include <string.h>

/* ------------------------------------------------------------ characters */

enum cn { CN_NONE, CN_DIGIT, CN_TEN, CN_UNIT, CN_BIG, CN_POINT };

/* The role of a character in a Chinese numeral (tg_cn_char), with 十 apart
 * from the other units; the scan asks cn_class, which reads it from a table
 * built from this. */
static enum cn cn_role(uint32_t cp)
{
    double v;
    switch (tg_cn_char(cp, &v)) {
    case TG_CN_DIGIT:
    case TG_CN_ZERO:
        return CN_DIGIT;
    case TG_CN_UNIT:
        return v == 10 ? CN_TEN : CN_UNIT;
    case TG_CN_BIG:
        return CN_BIG;
    case TG_CN_POINT:
        return CN_POINT;
    default:
        return CN_NONE;
    }
}

static bool is_point(uint32_t cp)
{
    return cn_role(cp) == CN_POINT;
}

/* ------------------------------------------------------------ word lists */

static const struct tg_word cur_before[] = {W("US$", U_USD), W("HK$", U_HKD),    W("¥", U_CNY),
                                            W("￥", U_CNY),  W("人民币", U_CNY), W("$", U_USD),
                                            W("＄", U_USD),  W("美元", U_USD),   W("€", U_EUR),
                                            W("£", U_GBP),   W("港币", U_HKD),   WORDS_END};
static const struct tg_word cur_before_ascii[] = {W("RMB", U_CNY), W("CNY", U_CNY), W("USD", U_USD),
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
static const struct tg_word tails_cn[] = {
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
static const struct tg_word tails_ascii[] = {
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
static const struct tg_word pct_signs[] = {PCT("%", 1), PCT("％", 1), PCT("‰", 10), WORDS_END};
static const struct tg_word pct_before[] = {W("百分之", 1), W("千分之", 10), WORDS_END};
static const struct tg_word approx_infix[] = {W("多", 0), W("余", 0), WORDS_END};
static const struct tg_word not_approx[] = {W("多少", 0), W("余额", 0), WORDS_END};
static const struct tg_word range_words[] = {W("到", 0), W("至", 0), W("-", 0), W("~", 0),
                                             W("～", 0), W("—", 0),  W("–", 0), W("〜", 0),
                                             W("－", 0), WORDS_END};
static const struct tg_word range_ascii[] = {W("to", 0), WORDS_END};
static const struct tg_word point_w[] = {W("点", 0), W("點", 0), WORDS_END};
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

static void cjk_mark(const struct tg_word *list, uint8_t bit)
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
    cjk_mark(grounding_month_w, B_TAIL);
    cjk_mark(grounding_day_w, B_TAIL);
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

/* ------------------------------------------------------------ claims */

/*
 * Whether a quantity is a claim in a draft and worth keeping in evidence.
 * Percentages, amounts and quantities with a unit are claims, except
 * where Chinese uses a small numeral as a word: 一 alone ("一次性",
 * "一块去") and 两/三... before a counting word ("两个方面").  A bare
 * number is a claim when it has two or more Arabic digits.  Evidence keeps
 * everything but bare numbers that are no claim.
 */
static void judge(struct qty *q, const struct tg_numeral *nm, bool bare)
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

/* ------------------------------------------------------------ codes and chains */

/* FNV-1a (64 bit) of the digits in [start, end). */
static uint64_t digits_hash(const struct qscan *sc, size_t start, size_t end, int *count)
{
    uint64_t h = TG_FNV64_INIT;
    size_t p = start, n;
    uint32_t cp;
    *count = 0;
    while (p < end && (n = tg_scan_char(&sc->in, p, &cp))) {
        int d = tg_digit_value(cp);
        if (d >= 0) {
            h = tg_fnv1a64_byte(h, (unsigned char)('0' + d));
            (*count)++;
        }
        p += n;
    }
    return h;
}

void grounding_make_code(const struct qscan *sc, size_t start, size_t end, struct qty *q)
{
    int count;
    make_value(q, start, end, 0);
    q->group = G_CODE;
    q->code = digits_hash(sc, start, end, &count);
    q->claim = q->keep = count >= 2;
}

/* Past letters, digits and "_" at pos, and "-", ".", "/", ":" between them. */
static size_t skip_token(const struct qscan *sc, size_t pos)
{
    uint32_t cp, nx;
    size_t n, start = pos;
    while ((n = tg_scan_char(&sc->in, pos, &cp))) {
        bool word = tg_ascii_alnum(cp) || cp == '_' || tg_digit_value(cp) >= 0;
        bool inner = (cp == '-' || cp == '.' || cp == '/' || cp == ':' || cp == '@') &&
                     tg_scan_char(&sc->in, pos + n, &nx) &&
                     (tg_ascii_alnum(nx) || tg_digit_value(nx) >= 0);
        if (!word && !inner)
            break;
        pos += n;
    }
    return pos > start ? pos : start + 1;
}

/* ------------------------------------------------------------ tails */

/* w/W (万), k/K, thousand, million, billion after an Arabic numeral: its
 * factor and end, or 0.  A word after other space than " " is no scale. */
static double ascii_scale(const struct qscan *sc, size_t p, size_t *end)
{
    unsigned char c = p < sc->in.len ? (unsigned char)sc->in.t[p] : 0;
    if (c != ' ' && !tg_ascii_alpha(c))
        return 0;
    return tg_numeral_scale(&sc->in, p, end);
}

/* 多/余 with a magnitude ("10多万"), w/k, thousand/million: scales q.
 * Returns where the numeral and its scale end. */
static size_t read_scale(const struct qscan *sc, struct tg_numeral *nm, struct qty *q)
{
    size_t p = nm->end, e;
    uint32_t cp;
    double mag;
    if ((nm->after == 0x591A /* 多 */ || nm->after == 0x4F59 /* 余 */) &&
        !tg_word_at(&sc->in, p, not_approx)) {
        p += 3;
        tg_scan_char(&sc->in, p, &cp);
        mag = tg_cn_unit(cp);
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
static const struct tg_word *tail_cn_at(const struct qscan *sc, size_t pos, uint32_t cp)
{
    const struct tg_word *w, *first;
    size_t left = sc->in.len - pos;
    if (!cjk_tail[cp - CJK_FIRST])
        return NULL;
    first = &tails_cn[cjk_tail[cp - CJK_FIRST] - 1];
    for (w = first; w->s && memcmp(w->s, first->s, 3) == 0; w++)
        if (w->n <= left && memcmp(sc->in.t + pos, w->s, w->n) == 0)
            return w;
    return NULL;
}

/* A percent sign, currency or unit after one optional space ("30天",
 * "90 days", "3.5 %") or a hyphen ("30-day"); *at is where it starts. */
static const struct tg_word *tail_at(const struct qscan *sc, size_t p, size_t *at)
{
    size_t s = tg_scan_skip_space(&sc->in, p);
    const struct tg_word *w = NULL;
    uint32_t cp;
    *at = s;
    if (!tg_scan_char(&sc->in, s, &cp))
        return NULL;
    if (cjk_flags(cp) & B_TAIL)
        w = tail_cn_at(sc, s, cp);
    else if (tg_ascii_alpha(cp))
        w = tg_ascii_word_at(&sc->in, s, tails_ascii, false);
    else if (cp == '%' || cp == 0xFF05 || cp == 0x2030)
        w = tg_word_at(&sc->in, s, pct_signs);
    else if (cp == '-' && s == p && (w = tg_ascii_word_at(&sc->in, s + 1, tails_ascii, false)) &&
             w->kind == T_UNIT)
        *at = s + 1;
    else
        w = NULL;
    return w;
}

/* What follows the numeral.  Returns false when nothing does: a bare number. */
static bool read_tail(const struct qscan *sc, struct tg_numeral *nm, struct qty *q)
{
    size_t p = read_scale(sc, nm, q), at;
    const struct tg_word *w = tail_at(sc, p, &at);
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
        tg_scan_char(&sc->in, at, &cp);
        q->unit = w->val ? w->val : U_MEASURE + cp;
    }
    q->v = nm->v * q->scale;
    return w || nm->magnitude;
}

/* A currency sign or code before the numeral ("¥5,000", "RMB 300", "$20"). */
static void currency_before(const struct qscan *sc, const struct tg_numeral *nm, struct qty *q)
{
    size_t b;
    const struct tg_word *w;
    uint32_t cp = nm->before;
    if (!currency_char(cp) && !tg_space_char(cp))
        return;
    b = tg_scan_skip_space_back(&sc->in, q->start);
    if (b < q->start)
        tg_scan_char_before(&sc->in, b, &cp);
    if (!currency_char(cp))
        return;
    w = tg_word_before(&sc->in, b, cur_before);
    if (!w)
        w = tg_ascii_word_before(&sc->in, b, cur_before_ascii);
    if (!w || q->kind == K_PERCENT || (q->kind == K_NUMBER && q->unit != U_NONE) ||
        (q->kind == K_AMOUNT && q->unit != U_NONE && q->unit != w->val))
        return;
    q->kind = K_AMOUNT;
    q->unit = w->val;
    q->start = b - w->n;
}

/* After a numeral: ".", ":" or "/" and more (a version, a domain), or "@". */
static bool compound_after(const struct qscan *sc, size_t p)
{
    unsigned char c = p < sc->in.len ? (unsigned char)sc->in.t[p] : 0, d;
    if (c == '@')
        return true;
    if (c != '.' && c != ':' && c != '/')
        return false;
    d = p + 1 < sc->in.len ? (unsigned char)sc->in.t[p + 1] : 0;
    return tg_scan_digit_at(&sc->in, p + 1) || tg_ascii_alpha(d);
}

/*
 * The quantity whose numeral starts at pos and lies in the run of numeral
 * characters [pos, e) (not a chain, not a clock).
 * ST_EMIT with q and nm filled, or ST_SKIP; *next is past what was read.
 * *bare tells whether nothing but the numeral was found.
 */
static enum step quantity_at(const struct qscan *sc, size_t pos, size_t e, struct qty *q,
                             struct tg_numeral *nm, size_t *next, bool *bare)
{
    *bare = false;
    if (!tg_numeral_in(&sc->in, pos, e, true, nm, next))
        return ST_SKIP;
    if (compound_after(sc, nm->end)) {
        *next = skip_token(sc, pos);
        return ST_SKIP; /* "3.5.1", "163.com", "123@qq.com" */
    }
    make_value(q, pos, nm->end, nm->v);
    if (grounding_date_at(sc, nm, q)) {
        *next = q->end;
        return ST_EMIT;
    }
    *bare = !read_tail(sc, nm, q);
    currency_before(sc, nm, q);
    *bare = *bare && q->kind == K_NUMBER;
    *next = q->end;
    if (*bare && q->end < sc->in.len && tg_ascii_alpha((unsigned char)sc->in.t[q->end])) {
        *next = skip_token(sc, pos);
        return ST_SKIP; /* "5G", "3a", "100ml" */
    }
    if (*bare && nm->arabic && !nm->chinese && (nm->lead_zero || nm->int_digits > 15)) {
        grounding_make_code(sc, pos, q->end, q);
        *bare = false;
        return ST_EMIT;
    }
    judge(q, nm, *bare);
    if (*bare && nm->arabic && !nm->chinese && !nm->point) {
        int count;
        q->code = digits_hash(sc, pos, q->end, &count);
        q->coded = true;
    }
    return ST_EMIT;
}

/* ------------------------------------------------------------ the scan */

static int emit(const struct qscan *sc, const struct qty *q)
{
    if (sc->draft ? !q->claim : !q->keep)
        return TG_OK;
    return sc->emit(sc->ctx, q);
}

/* After a bare numeral: "到", "-" or "to" and a second quantity ("5到8万",
 * "3-5个工作日", "2.5-3.5%").  The first takes the second's unit and scale.
 * Emits both and returns true; false when no range follows. */
static bool range_after(const struct qscan *sc, struct qty *q, const struct tg_numeral *nm,
                        size_t *next, int *rc)
{
    size_t p = tg_scan_skip_space(&sc->in, q->end), r, skip;
    const struct tg_word *w = tg_word_at(&sc->in, p, range_words);
    struct qty q2;
    struct tg_numeral n2;
    uint32_t cp;
    bool bare2;
    if (!w && p > q->end)
        w = tg_ascii_word_at(&sc->in, p, range_ascii, false);
    if (!w)
        return false;
    r = tg_scan_skip_space(&sc->in, p + w->n);
    if (!tg_scan_char(&sc->in, r, &cp) || !numeral_start(cp) ||
        quantity_at(sc, r, tg_numeral_extent(&sc->in, r, false), &q2, &n2, &skip, &bare2) !=
            ST_EMIT ||
        q2.group != G_VALUE)
        return false;
    if (!bare2) {
        q->kind = q2.kind;
        q->unit = q2.unit;
        q->coded = false;
        q->v = nm->v * (n2.last_unit >= 1e3 ? n2.last_unit : 1) * q2.scale;
        judge(q, nm, false);
    }
    *rc = emit(sc, q);
    if (*rc == TG_OK)
        *rc = emit(sc, &q2);
    *next = skip;
    return true;
}

/* A list marker at the start of a line: "1.", "2、", "3)", "(4)". */
static bool list_marker(const struct qscan *sc, size_t pos)
{
    uint32_t cp;
    size_t b = pos, e = pos, n, s;
    while (b > 0) {
        s = tg_scan_char_before(&sc->in, b, &cp);
        if (cp == '\n')
            break;
        if (!tg_space_char(cp) && cp != '(' && cp != 0xFF08)
            return false;
        b = s;
    }
    while ((n = tg_scan_char(&sc->in, e, &cp)) && tg_digit_value(cp) >= 0)
        e += n;
    n = tg_scan_char(&sc->in, e, &cp);
    return n && (cp == '.' || cp == ')' || cp == 0x3001 || cp == 0xFF09) &&
           !tg_scan_digit_at(&sc->in, e + n);
}

/* Characters before an Arabic numeral that make it part of something else:
 * a path, a reference, an identifier, a country code. */
static bool vetoed_before(const struct qscan *sc, size_t pos)
{
    uint32_t cp, cp2;
    size_t s = tg_scan_char_before(&sc->in, pos, &cp);
    if (pos == 0)
        return false;
    if (cp == '/' || cp == '\\' || cp == '#' || cp == '@' || cp == '_' || cp == '+' || cp == '=' ||
        cp == '&' || cp == '?')
        return true;
    if (cp == '.' || cp == '-') { /* "v.2", "COVID-19" */
        tg_scan_char_before(&sc->in, s, &cp2);
        return tg_ascii_alpha(cp2);
    }
    return false;
}

/*
 * A numeral in Chinese characters only, with no magnitude and nothing after
 * it that could make it a quantity ("一般", "统一", "三甲"): never emitted,
 * so it is passed over without being parsed.  Returns its end, or 0.
 */
static size_t quiet_chinese(const struct qscan *sc, size_t pos, size_t e)
{
    size_t p;
    uint32_t cp;
    for (p = pos; p < e; p += tg_scan_char(&sc->in, p, &cp)) {
        tg_scan_char(&sc->in, p, &cp);
        if (tg_digit_value(cp) >= 0 || cn_class(cp) == CN_BIG || cn_class(cp) == CN_UNIT)
            return 0;
    }
    p = tg_scan_skip_space(&sc->in, e);
    if (!tg_scan_char(&sc->in, p, &cp))
        return e;
    if (cp >= 0x80 ? (cp < CJK_FIRST || cp > CJK_LAST || (cjk_flags(cp) & B_TAIL))
                   : (tg_ascii_alnum(cp) || !strchr(",.;:!?()[]\"' \n\r\t", (int)cp)))
        return 0;
    tg_scan_char_before(&sc->in, pos, &cp);
    return currency_char(cp) ? 0 : e;
}

static int at_numeral(const struct qscan *sc, size_t pos, size_t *next)
{
    struct qty q;
    struct tg_numeral nm;
    enum step st;
    bool bare;
    int rc = TG_OK;
    size_t e_point = tg_numeral_extent(&sc->in, pos, true), e = e_point, quiet;
    bool arabic = tg_scan_digit_at(&sc->in, pos);
    uint32_t after;
    tg_scan_char(&sc->in, e_point, &after); /* 点 may be a decimal point: 三点五万 */
    if (is_point(after))
        e = tg_numeral_extent(&sc->in, pos, false);
    if (!arabic && (quiet = quiet_chinese(sc, pos, e)) > pos) {
        *next = quiet;
        return TG_OK;
    }
    if (arabic) {
        if (vetoed_before(sc, pos) || list_marker(sc, pos)) {
            *next = skip_token(sc, pos);
            return TG_OK;
        }
        st = grounding_chain_at(sc, pos, &q, next);
        if (st == ST_EMIT)
            return emit(sc, &q);
        if (st == ST_SKIP)
            return TG_OK;
    }
    if (grounding_clock_at(sc, pos, e_point, after, &q, next))
        return emit(sc, &q);
    st = quantity_at(sc, pos, e, &q, &nm, next, &bare);
    if (st != ST_EMIT)
        return TG_OK;
    if (bare && range_after(sc, &q, &nm, next, &rc))
        return rc;
    return emit(sc, &q);
}

/* "百分之五", "千分之三". */
static int at_percent_word(const struct qscan *sc, size_t pos, const struct tg_word *w,
                           size_t *next)
{
    struct tg_numeral nm;
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
    for (const struct tg_word *w = cur_before_ascii; w->s; w++)
        if (w->n == n && tg_ascii_eq_nocase(s, w->s, n))
            return true;
    return false;
}

/* An ASCII word at pos: its end.  Letters glued to digits make a code
 * ("P2024000123", "v2"), skipped whole, unless they are a currency code. */
static size_t skip_word(const struct qscan *sc, size_t pos)
{
    size_t e = pos;
    while (e < sc->in.len && tg_ascii_alpha((unsigned char)sc->in.t[e]))
        e++;
    if ((tg_scan_digit_at(&sc->in, e) || (e < sc->in.len && sc->in.t[e] == '_')) &&
        !is_currency_code(sc->in.t + pos, e - pos))
        return skip_token(sc, pos);
    return e;
}

/* Past the characters at pos, of the CJK block, that open no quantity:
 * most of a Chinese text, decoded inline. */
static size_t skip_plain_cjk(const struct qscan *sc, size_t pos)
{
    const unsigned char *t = (const unsigned char *)sc->in.t;
    while (pos + 2 < sc->in.len && t[pos] >= 0xE4 && t[pos] <= 0xE9 &&
           (t[pos + 1] & 0xC0) == 0x80 && (t[pos + 2] & 0xC0) == 0x80) {
        uint32_t cp = (uint32_t)(t[pos] & 0x0F) << 12 | (uint32_t)(t[pos + 1] & 0x3F) << 6 |
                      (t[pos + 2] & 0x3F);
        if (cjk_flags(cp) & (B_NUMERAL | B_PCT_WORD))
            break;
        pos += 3;
    }
    return pos;
}

int grounding_scan_text(const struct qscan *sc)
{
    size_t pos = 0, next, n;
    uint32_t cp;
    const struct tg_word *w;
    int rc = TG_OK;
    pthread_once(&cjk_once, cjk_init);
    while (pos < sc->in.len && rc == TG_OK) {
        unsigned char c = (unsigned char)sc->in.t[pos];
        next = pos + 1;
        if (c >= '0' && c <= '9') {
            rc = at_numeral(sc, pos, &next);
        } else if (tg_ascii_alpha(c)) {
            next = skip_word(sc, pos);
        } else if (c >= 0xE4 && c <= 0xE9 && (next = skip_plain_cjk(sc, pos)) > pos) {
            /* passed over */
        } else if (c >= 0x80 && (n = tg_scan_char(&sc->in, pos, &cp))) {
            next = pos + n;
            if (numeral_start(cp))
                rc = at_numeral(sc, pos, &next);
            else if ((cp == 0x767E || cp == 0x5343) && (w = tg_word_at(&sc->in, pos, pct_before)))
                rc = at_percent_word(sc, pos, w, &next);
        }
        TG_ASSERT(next > pos);
        pos = next;
    }
    return rc;
}
