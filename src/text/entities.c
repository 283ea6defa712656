/*
 * entities.c - amounts of money and personal identifiers in a customer's
 * own words (see text.h and docs/internals/entities.md).
 *
 * Identifiers are found first: e-mail addresses, then runs of digits
 * checked as resident ID numbers (GB 11643-1999), bank cards (Luhn
 * algorithm) and mobile numbers, then policy numbers through the
 * configured PCRE2 pattern.  Money is read afterwards in one left-to-right
 * pass that steps over every identifier, so digits that identify someone
 * never count as an amount.  A numeral is money when a currency sign or
 * word stands next to it, when it carries a unit of 千 or more (万, 亿, w,
 * k, thousand, ...), or, for a bare number of at least 100, when a money
 * word (投资, 预算, invest, ...) is in the same clause; measure words,
 * dates, times, percentages, ordinals and other currencies veto it.
 *
 * Nothing here allocates per character: the only allocations are the
 * growing entity arrays, one PCRE2 match block per call and, when the
 * policy pattern changes, its compilation.
 *
 * This file reads money and runs the whole; identifiers.c finds the
 * identifiers.
 */
#include "text/entities_int.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ word lists */

/* The word lists below are matched by length: 0 when no word matches. */
#define W(lit) TG_WORD(lit, 0, 0)
#define WORDS_END TG_WORDS_END

static size_t word_at(const struct ent_scan *sc, size_t pos, const struct tg_word *list)
{
    return tg_word_len(tg_word_at(&sc->in, pos, list));
}

static size_t word_before(const struct ent_scan *sc, size_t pos, const struct tg_word *list)
{
    return tg_word_len(tg_word_before(&sc->in, pos, list));
}

static size_t ascii_word_at(const struct ent_scan *sc, size_t pos, const struct tg_word *list,
                            bool prefix_ok)
{
    return tg_word_len(tg_ascii_word_at(&sc->in, pos, list, prefix_ok));
}

static size_t ascii_word_before(const struct ent_scan *sc, size_t pos, const struct tg_word *list)
{
    return tg_word_len(tg_ascii_word_before(&sc->in, pos, list));
}

static const struct tg_word cny_before[] = {W("¥"), W("￥"), W("人民币"), WORDS_END};
static const struct tg_word cny_before_ascii[] = {W("RMB"), W("CNY"), WORDS_END};
static const struct tg_word cny_after_ascii[] = {W("yuan"), W("rmb"), W("cny"), WORDS_END};
static const struct tg_word foreign_before[] = {W("$"),    W("€"),    W("£"),   W("＄"),
                                                W("美元"), W("港币"), WORDS_END};
static const struct tg_word foreign_before_ascii[] = {W("USD"), W("EUR"), W("HKD"),
                                                      W("JPY"), W("GBP"), WORDS_END};
static const struct tg_word foreign_after[] = {
    W("美元"), W("美金"), W("欧元"), W("英镑"), W("日元"), W("日币"),
    W("港币"), W("港元"), W("澳元"), W("加元"), W("韩元"), W("新台币"),
    W("台币"), W("卢布"), W("泰铢"), W("円"),   WORDS_END};
static const struct tg_word foreign_after_ascii[] = {
    W("dollars"), W("dollar"), W("usd"),    W("eur"),   W("euros"), W("euro"), W("hkd"),
    W("jpy"),     W("gbp"),    W("pounds"), W("bucks"), W("yen"),   WORDS_END};
static const struct tg_word approx_before[] = {
    W("大概"), W("大约"), W("约莫"), W("约"), W("大致"), W("差不多"), W("将近"),
    W("接近"), W("估计"), W("近"),   W("~"),  W("～"),   W("≈"),      WORDS_END};
static const struct tg_word approx_before_ascii[] = {
    W("about"),  W("around"), W("approximately"), W("approx."),   W("roughly"),
    W("nearly"), W("almost"), W("over"),          W("more than"), WORDS_END};
static const struct tg_word approx_after[] = {W("左右"), W("上下"), W("出头"), W("+"), WORDS_END};
static const struct tg_word range_words[] = {W("到"), W("至"), W("-"), W("~"),  W("～"),
                                             W("－"), W("—"),  W("–"), W("〜"), WORDS_END};
static const struct tg_word english_units[] = {
    W("year"),  W("years"),   W("month"),    W("months"), W("day"),     W("days"),   W("week"),
    W("weeks"), W("hour"),    W("hours"),    W("minute"), W("minutes"), W("people"), W("persons"),
    W("times"), W("percent"), W("policies"), W("policy"), W("km"),      W("kg"),     WORDS_END};
/* Measure words and units: a number directly before one is not money.
 * All lie in the CJK Unified Ideographs block; measure_at() looks them
 * up in a bitmap built once from this string. */
static const char measure_words[] =
    "人个位名次回遍份件条张本页章节篇首句字行段年岁月日号天周时点分秒刻钟小世代届期级层楼室栋座"
    "户家间所套台辆架艘只头匹棵株朵颗粒支根把双对副瓶杯碗盒包袋箱桶斤两公米里克吨升度倍成票股手"
    "步场轮局盘部款种类项门科道题班集季码寸尺亩平方胎口顿餐辈趟下声眼招批群笔单例起宗处夜折角线"
    "路站格毫厘";
/* Words that make a bare number an amount when they share its clause. */
static const struct tg_word money_words[] = {
    W("投资"), W("存"),   W("贷款"), W("借"),   W("理财"), W("金额"), W("预算"), W("资金"),
    W("本金"), W("收入"), W("工资"), W("月薪"), W("年薪"), W("薪水"), W("保费"), W("保额"),
    W("首付"), W("余额"), W("花了"), W("花费"), W("费用"), W("价格"), W("价钱"), W("售价"),
    W("总价"), W("付款"), W("支付"), W("付了"), W("转账"), W("转了"), W("汇款"), W("还款"),
    W("月供"), W("赔偿"), W("赔付"), W("理赔"), W("报销"), W("充值"), W("提现"), W("取现"),
    W("购买"), W("买了"), W("资产"), W("投入"), W("亏了"), W("赚了"), W("额度"), W("定投"),
    W("缴费"), W("交了"), W("钱"),   WORDS_END};
static const struct tg_word money_words_ascii[] = {
    W("invest"), W("deposit"), W("loan"),     W("budget"), W("salary"),  W("income"),
    W("pay"),    W("amount"),  W("premium"),  W("saving"), W("save"),    W("borrow"),
    W("spend"),  W("price"),   W("cost"),     W("fee"),    W("balance"), W("fund"),
    W("money"),  W("worth"),   W("transfer"), WORDS_END};
/* Fixed expressions that start like a numeral. */
static const struct tg_word idioms[] = {W("十万火急"), W("一五一十"), WORDS_END};

#define CJK_FIRST 0x4E00
#define CJK_LAST 0x9FFF
static uint8_t measure_bits[(CJK_LAST - CJK_FIRST + 8) / 8];
static pthread_once_t measure_once = PTHREAD_ONCE_INIT;

static void measure_init(void)
{
    size_t len = sizeof(measure_words) - 1, pos = 0, n;
    uint32_t cp;
    while ((n = tg_utf8_decode(measure_words + pos, len - pos, &cp))) {
        TG_ASSERT(cp >= CJK_FIRST && cp <= CJK_LAST);
        measure_bits[(cp - CJK_FIRST) / 8] |= (uint8_t)(1u << ((cp - CJK_FIRST) % 8));
        pos += n;
    }
}

/* Whether the character at pos is a measure word. */
static bool measure_at(const struct ent_scan *sc, size_t pos)
{
    uint32_t cp;
    if (!tg_scan_char(&sc->in, pos, &cp) || cp < CJK_FIRST || cp > CJK_LAST)
        return false;
    pthread_once(&measure_once, measure_init);
    return measure_bits[(cp - CJK_FIRST) / 8] >> ((cp - CJK_FIRST) % 8) & 1;
}

/* Characters that end a clause for the money-word search. */
static bool clause_break(uint32_t cp)
{
    switch (cp) {
    case '\n':
    case '\r':
    case '!':
    case '?':
    case ';':
    case ',':
    case 0x3001: /* 、 */
    case 0x3002: /* 。 */
    case 0xFF01: /* ！ */
    case 0xFF0C: /* ， */
    case 0xFF1B: /* ； */
    case 0xFF1F: /* ？ */
        return true;
    default:
        return false;
    }
}

/* ------------------------------------------------------------ entity lists */

void tg_entities_init(struct tg_entities *e)
{
    memset(e, 0, sizeof(*e));
}

void tg_entities_reset(struct tg_entities *e)
{
    e->n_money = 0;
    e->n_pii = 0;
}

void tg_entities_free(struct tg_entities *e)
{
    tg_free(e->money);
    tg_free(e->pii);
    tg_entities_init(e);
}

static int push_money(struct tg_entities *e, const struct tg_money *m)
{
    if (tg_grow(&e->money, &e->cap_money, e->n_money, sizeof(*e->money), 8))
        return TG_E_NOMEM;
    e->money[e->n_money++] = *m;
    return TG_OK;
}

static int pii_cmp(const void *a, const void *b)
{
    const struct tg_pii *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

/* ------------------------------------------------------------ money */

/* One numeral with what follows it: w/k, 多, a currency word. */
struct amount {
    size_t start, num_end, end;
    double value;
    double tail;    /* the unit the numeral or its suffix ends with: 万 -> 1e4 */
    bool magnitude; /* 千, 万, 亿, w, k, thousand, million, billion */
    bool currency;  /* 元, 块, yuan, ... after it */
    bool foreign;   /* another currency after it */
    bool approx;    /* 多, 余, 几, 来 */
    bool chinese;   /* Chinese numeral characters in it */
    bool leading_zero;
    int int_digits; /* Arabic integer digits */
};

/* 万 or 亿 at pos: its value, else 0. */
static double big_unit_at(const struct ent_scan *sc, size_t pos)
{
    uint32_t cp;
    double u = tg_scan_char(&sc->in, pos, &cp) ? tg_cn_unit(cp) : 0;
    return u >= 1e4 ? u : 0;
}

/* 多/余 ("more than"), or 几/来 after a Chinese unit, at pos: its length. */
static size_t approx_infix_at(const struct ent_scan *sc, size_t pos, const struct amount *a)
{
    static const struct tg_word more[] = {W("多"), W("余"), WORDS_END},
                                few[] = {W("几"), W("来"), WORDS_END};
    static const struct tg_word not_more[] = {W("多少"), W("余额"), W("多元"), WORDS_END};
    if (word_at(sc, pos, not_more))
        return 0;
    if (word_at(sc, pos, more))
        return 3;
    if (a->chinese && a->tail > 1 && word_at(sc, pos, few))
        return 3;
    return 0;
}

/* w/W = 万, k/K = thousand, or an English multiplier after an Arabic numeral. */
static size_t read_scale(const struct ent_scan *sc, size_t p, struct amount *a)
{
    double f = tg_numeral_scale(&sc->in, p, &p);
    if (f == 0)
        return p;
    a->tail = f;
    a->value *= a->tail;
    a->magnitude = true;
    return p;
}

/* Whether a lone digit ending at q stands alone ("5块5" but not "5块5天"). */
static bool lone_digit_end(const struct ent_scan *sc, size_t q)
{
    uint32_t cp;
    double v;
    if (!tg_scan_char(&sc->in, q, &cp))
        return true;
    return !tg_ascii_alnum(cp) && !measure_at(sc, q) && !big_unit_at(sc, q) &&
           tg_text_numeral_prefix(sc->in.t + q, sc->in.len - q, &v) == 0;
}

/* One numeral character of value 0-9 at p: its length, else 0. */
static size_t one_digit_at(const struct ent_scan *sc, size_t p, double *d)
{
    uint32_t cp;
    size_t n = tg_text_numeral_prefix(sc->in.t + p, sc->in.len - p, d);
    return n > 0 && n == tg_scan_char(&sc->in, p, &cp) && *d <= 9 ? n : 0;
}

/* 角/毛 and 分 after 元 or 块 ("三元五角", "5块5毛"), or a lone digit after
 * them ("5块5" = 5.5). */
static size_t read_jiao_fen(const struct ent_scan *sc, size_t p, struct amount *a)
{
    static const struct tg_word jiao[] = {W("角"), W("毛"), WORDS_END},
                                fen[] = {W("分"), WORDS_END};
    double d, e;
    size_t n = one_digit_at(sc, p, &d), m;
    if (n == 0)
        return p;
    if (word_at(sc, p + n, jiao)) {
        a->value += d / 10;
        p += n + 3;
        if ((m = one_digit_at(sc, p, &e)) && word_at(sc, p + m, fen)) {
            a->value += e / 100;
            p += m + 3;
        }
    } else if (word_at(sc, p + n, fen)) {
        a->value += d / 100;
        p += n + 3;
    } else if (lone_digit_end(sc, p + n)) {
        a->value += d / 10;
        p += n;
    }
    return p;
}

/* A currency word after the amount. */
static size_t read_currency(const struct ent_scan *sc, size_t p, struct amount *a)
{
    static const struct tg_word kuai_qian[] = {W("块钱"), WORDS_END}, kuai[] = {W("块"), WORDS_END};
    static const struct tg_word yuan[] = {W("元"), W("圆"), WORDS_END},
                                rmb[] = {W("人民币"), WORDS_END};
    static const struct tg_word er[] = {W("儿"), WORDS_END}, zheng[] = {W("整"), WORDS_END};
    size_t q = tg_scan_skip_space(&sc->in, p), n;
    bool yuan_unit = false;
    if ((n = word_at(sc, p, foreign_after))) {
        a->foreign = true;
        return p + n;
    }
    if ((n = ascii_word_at(sc, q, foreign_after_ascii, false))) {
        a->foreign = true;
        return q + n;
    }
    if ((n = word_at(sc, p, kuai_qian))) {
        a->currency = true;
        return p + n;
    }
    if ((n = word_at(sc, p, kuai)) && !word_at(sc, p + n, er)) {
        a->currency = yuan_unit = true;
        p += n;
    } else if ((n = word_at(sc, p, yuan))) {
        a->currency = yuan_unit = true;
        p += n;
    } else if ((n = word_at(sc, p, rmb))) {
        a->currency = true;
        return p + n;
    } else if ((n = ascii_word_at(sc, q, cny_after_ascii, false))) {
        a->currency = true;
        return q + n;
    }
    if (yuan_unit) {
        p = read_jiao_fen(sc, p, a);
        p += word_at(sc, p, rmb);
        p += word_at(sc, p, zheng);
    }
    return p;
}

/*
 * Two neighbouring Chinese digits before a unit, as in 七八万 (seventy or
 * eighty thousand) or 两三千: the length of the first, for the amount to be
 * read from the second (the larger: a threshold is never passed by
 * rounding down) and marked approximate; 0 when pos starts none.
 */
static size_t neighbour_digit(const struct ent_scan *sc, size_t pos)
{
    uint32_t a, b, u;
    double va, vb, vu;
    size_t n1 = tg_scan_char(&sc->in, pos, &a), n2;
    if (!n1 || tg_cn_char(a, &va) != TG_CN_DIGIT)
        return 0;
    n2 = tg_scan_char(&sc->in, pos + n1, &b);
    if (!n2 || tg_cn_char(b, &vb) != TG_CN_DIGIT || vb != va + 1 ||
        !tg_scan_char(&sc->in, pos + n1 + n2, &u))
        return 0;
    enum tg_cn_kind k = tg_cn_char(u, &vu);
    return k == TG_CN_UNIT || k == TG_CN_BIG ? n1 : 0;
}

/* Read the numeral at pos and the units and currency after it. */
static bool read_amount(const struct ent_scan *sc, size_t pos, struct amount *a)
{
    struct tg_numeral nm;
    size_t n, p, pair = neighbour_digit(sc, pos);
    double big;
    if (!tg_numeral_at(&sc->in, pos + pair, false, &nm)) /* 点 is read as a Chinese character */
        return false;
    *a = (struct amount){.start = pos,
                         .approx = pair > 0,
                         .num_end = nm.end,
                         .value = nm.v,
                         .tail = nm.last_unit,
                         .magnitude = nm.magnitude,
                         .chinese = nm.chinese,
                         .leading_zero = nm.lead_zero,
                         .int_digits = nm.int_digits};
    p = nm.end;
    if ((n = approx_infix_at(sc, p, a)) && (a->tail > 1 || !a->chinese)) {
        a->approx = true; /* 十多万, 10多万, 三千多 */
        p += n;
        if ((big = big_unit_at(sc, p)) > 0) {
            a->value *= big;
            a->tail = big;
            a->magnitude = true;
            p += 3;
        }
    }
    if (!a->chinese && !a->magnitude) {
        p = read_scale(sc, p, a);
        if (a->magnitude && (n = approx_infix_at(sc, p, a))) {
            a->approx = true; /* 5w多 */
            p += n;
        }
    }
    a->end = read_currency(sc, p, a);
    return true;
}

/* ":", ".", "/" and a digit after a numeral: a time, date, version or fraction. */
static bool compound_after(const struct ent_scan *sc, size_t p)
{
    uint32_t cp;
    size_t n = tg_scan_char(&sc->in, p, &cp);
    return n && (cp == ':' || cp == 0xFF1A || cp == '.' || cp == 0xFF0E || cp == '/') &&
           tg_scan_digit_at(&sc->in, p + n);
}

/* Past a run of digits joined by . : / - , (a date, phone number, version). */
static size_t skip_compound(const struct ent_scan *sc, size_t p)
{
    uint32_t cp;
    size_t n;
    while ((n = tg_scan_char(&sc->in, p, &cp))) {
        if (tg_digit_value(cp) < 0 &&
            !((cp == '.' || cp == ':' || cp == '/' || cp == '-' || cp == ',' || cp == 0xFF1A ||
               cp == 0xFF0E || cp == 0xFF0C) &&
              tg_scan_digit_at(&sc->in, p + n)))
            break;
        p += n;
    }
    return p;
}

static bool percent_after(const struct ent_scan *sc, size_t p)
{
    static const struct tg_word pct[] = {W("%"), W("％"), W("‰"), WORDS_END},
                                pct_ascii[] = {W("percent"), WORDS_END};
    size_t q = tg_scan_skip_space(&sc->in, p);
    return word_at(sc, q, pct) || ascii_word_at(sc, q, pct_ascii, false);
}

/* What stands before the numeral rules it out: letters (a code, a version),
 * 第 (an ordinal), 分之 (a fraction), a joined digit run, '+', '#'. */
static bool vetoed_before(const struct ent_scan *sc, size_t pos)
{
    static const struct tg_word ordinal[] = {W("第"), W("分之"), W("#"), W("＃"),
                                             W("+"),  W("_"),    W("@"), WORDS_END};
    uint32_t cp, cp2;
    size_t s = tg_scan_char_before(&sc->in, pos, &cp);
    if (pos == 0)
        return word_at(sc, pos, idioms) != 0;
    if (tg_ascii_alpha(cp))
        return !ascii_word_before(sc, pos, cny_before_ascii) &&
               !ascii_word_before(sc, pos, foreign_before_ascii);
    if (cp == '.' || cp == ':' || cp == '/' || cp == '-' || cp == 0xFF1A || cp == 0xFF0E) {
        tg_scan_char_before(&sc->in, s, &cp2);
        if (tg_digit_value(cp2) >= 0)
            return true;
    }
    return word_before(sc, pos, ordinal) || word_at(sc, pos, idioms);
}

/* Words that start with a measure character and are no measure: the 年 of
 * 20万年终奖 begins a bonus, not a count of years; 提到5万行不行 asks. */
static const struct tg_word measure_money_words[] = {
    W("年终奖"), W("年薪"), W("年费"), W("年金"),   W("年收入"), W("月薪"), W("月供"), W("月租"),
    W("月收入"), W("日薪"), W("分红"), W("行不行"), W("行吗"),   W("行么"), W("行啊"), WORDS_END};

/* A measure word, unit or attached letters after a number that has no
 * currency: 3年, 10万人, 5kg, 3 years. */
static bool measured_after(const struct ent_scan *sc, size_t p)
{
    uint32_t cp;
    if (tg_scan_char(&sc->in, p, &cp) &&
        (tg_ascii_alpha(cp) || (measure_at(sc, p) && !word_at(sc, p, measure_money_words))))
        return true;
    return ascii_word_at(sc, tg_scan_skip_space(&sc->in, p), english_units, false) != 0;
}

/* A money word in the same clause: up to 24 characters before the number
 * and 8 after it. */
static bool money_context(const struct ent_scan *sc, size_t start, size_t end)
{
    size_t b = start, f = end, n;
    uint32_t cp;
    for (int i = 0; i < 24 && b > 0; i++) {
        size_t s = tg_scan_char_before(&sc->in, b, &cp);
        if (clause_break(cp))
            break;
        b = s;
    }
    for (int i = 0; i < 8 && (n = tg_scan_char(&sc->in, f, &cp)); i++) {
        if (clause_break(cp))
            break;
        f += n;
    }
    for (size_t p = b; p < f; p++) {
        if (p == start)
            p = end;
        if (p >= f)
            break;
        if (word_at(sc, p, money_words))
            return true;
        if ((p == 0 || !tg_ascii_alpha((unsigned char)sc->in.t[p - 1])) &&
            ascii_word_at(sc, p, money_words_ascii, true))
            return true;
    }
    return false;
}

/* A currency sign or word just before pos and not before floor (the end of
 * the previous amount, which may have taken it as its suffix): its start,
 * or pos. */
static size_t currency_before(const struct ent_scan *sc, size_t pos, size_t floor, bool *cny,
                              bool *foreign)
{
    size_t q = tg_scan_skip_space_back(&sc->in, pos), n;
    *cny = *foreign = false;
    if (q < floor)
        return pos;
    if ((n = word_before(sc, q, cny_before)) || (n = ascii_word_before(sc, q, cny_before_ascii))) {
        *cny = q - n >= floor;
        return *cny ? q - n : pos;
    }
    if ((n = word_before(sc, q, foreign_before)) ||
        (n = ascii_word_before(sc, q, foreign_before_ascii))) {
        *foreign = q - n >= floor;
        return *foreign ? q - n : pos;
    }
    return pos;
}

/* A second amount after a range word: "5到8万", "3000-5000元".  Returns
 * false when there is none; *bad when there is one that rules out both
 * (a date, a phone number, a percentage). */
static bool read_range_end(const struct ent_scan *sc, const struct amount *a, struct amount *b,
                           bool *bad)
{
    static const struct tg_word sign[] = {W("¥"), W("￥"), WORDS_END};
    size_t q = tg_scan_skip_space(&sc->in, a->end), n = word_at(sc, q, range_words), r;
    *bad = false;
    if (n == 0)
        return false;
    r = tg_scan_skip_space(&sc->in, q + n);
    r += word_at(sc, r, sign);
    if (!read_amount(sc, r, b) || ent_overlaps_pii(sc->out->pii, sc->out->n_pii, r, b->end))
        return false;
    q = tg_scan_skip_space(&sc->in, b->end);
    *bad = b->leading_zero || compound_after(sc, b->num_end) || percent_after(sc, b->end) ||
           (!b->currency && measured_after(sc, b->end)) ||
           ((n = word_at(sc, q, range_words)) &&
            tg_scan_digit_at(&sc->in, tg_scan_skip_space(&sc->in, q + n)));
    return true;
}

/* Whether the amount is money by its cue: a currency, a magnitude, or a bare
 * number of 100 or more with a money word in its clause. */
static bool money_cue(const struct ent_scan *sc, const struct amount *a, size_t start, size_t end)
{
    if (a->currency)
        return true;
    if (a->magnitude)
        return true;
    return a->value >= 100 && a->int_digits <= 9 && money_context(sc, start, end);
}

/* Whether the numeral itself rules out money, whatever follows: it belongs
 * to a code, date, time, version, ordinal or percentage, or is malformed
 * (三四万).  *next is set past what was ruled out. */
static bool ruled_out(const struct ent_scan *sc, const struct amount *a, size_t *next)
{
    size_t n;
    if (vetoed_before(sc, a->start) || a->leading_zero || compound_after(sc, a->num_end) ||
        a->int_digits > 15) {
        n = skip_compound(sc, a->start);
        *next = TG_MAX(a->num_end, n);
        return true;
    }
    *next = a->num_end;
    return percent_after(sc, a->num_end) || percent_after(sc, a->end) ||
           (a->end == a->num_end && big_unit_at(sc, a->end));
}

/* "5到8万": the lower end takes the upper end's unit; the amount is the upper end. */
static void merge_range(struct amount *a, const struct amount *b)
{
    if (!a->magnitude && b->magnitude)
        a->value *= b->tail;
    a->value = TG_MAX(a->value, b->value);
    a->magnitude |= b->magnitude;
    a->currency |= b->currency;
    a->foreign |= b->foreign;
    a->approx |= b->approx;
    a->end = b->end;
}

/*
 * Look at the numeral at pos; floor is the end of the previous amount.
 * Returns true and fills m when it is money; *next is where the scan goes
 * on (always past pos).
 */
static bool money_at(const struct ent_scan *sc, size_t pos, size_t floor, struct tg_money *m,
                     size_t *next)
{
    struct amount a, b;
    uint32_t cp;
    size_t start, end, n;
    bool cny, foreign, bad, range;

    if (!read_amount(sc, pos, &a)) {
        n = tg_scan_char(&sc->in, pos, &cp);
        *next = pos + (n ? n : 1);
        return false;
    }
    if (ruled_out(sc, &a, next))
        return false;
    range = read_range_end(sc, &a, &b, &bad);
    if (bad) {
        n = skip_compound(sc, pos);
        *next = TG_MAX(b.num_end, n);
        return false;
    }
    if (range)
        merge_range(&a, &b);
    start = currency_before(sc, pos, floor, &cny, &foreign);
    a.currency |= cny;
    end = *next = a.end;
    if (foreign || a.foreign || (!a.currency && measured_after(sc, end)))
        return false;
    if ((n = word_at(sc, end, approx_after))) {
        a.approx = true;
        end += n;
    }
    n = tg_scan_skip_space_back(&sc->in, start);
    a.approx |= word_before(sc, n, approx_before) || ascii_word_before(sc, n, approx_before_ascii);
    if (!money_cue(sc, &a, start, end) || !isfinite(a.value) || a.value > 1e15 ||
        (a.value <= 0 && !a.currency) || ent_overlaps_pii(sc->out->pii, sc->out->n_pii, start, end))
        return false;
    *m = (struct tg_money){.start = (uint32_t)start,
                           .end = (uint32_t)end,
                           .value_cny = a.value,
                           .approximate = a.approx,
                           .range = range};
    *next = end;
    return true;
}

static int find_money(struct ent_scan *sc)
{
    const struct tg_pii *pii = sc->out->pii;
    size_t np = sc->out->n_pii, pi = 0, pos = 0, next, floor = 0;
    struct tg_money m;
    int rc = TG_OK;
    while (pos < sc->in.len && rc == TG_OK) {
        unsigned char c = (unsigned char)sc->in.t[pos];
        while (pi < np && pii[pi].end <= pos)
            pi++;
        if (pi < np && pii[pi].start <= pos) {
            pos = pii[pi].end;
            continue;
        }
        /* Only ASCII digits and non-ASCII characters can open a numeral. */
        if ((c < 0x80 && (c < '0' || c > '9')) || (c & 0xC0) == 0x80) {
            pos++;
            continue;
        }
        if (money_at(sc, pos, floor, &m, &next)) {
            rc = push_money(sc->out, &m);
            floor = m.end;
        }
        pos = next;
    }
    return rc;
}

/* ------------------------------------------------------------ public */

/*
 * Beyond text.h: out is emptied first, so it describes this text only; an
 * empty policy pattern means none; TG_E_INVAL for a NULL text of non-zero
 * length, TG_E_TOOBIG past 4 GiB (spans are 32-bit).  On any failure out
 * is left empty.
 */
int tg_entities_extract(const char *text, size_t len, const struct tg_entity_opts *opts,
                        struct tg_entities *out)
{
    struct ent_scan sc = {.in = {text, len}, .out = out};
    int rc;
    tg_entities_reset(out);
    if (!text && len) {
        rc = TG_E_INVAL;
        goto out;
    }
    if (len > UINT32_MAX) {
        rc = TG_E_TOOBIG;
        goto out;
    }
    rc = ent_find_emails(&sc);
    if (rc)
        goto out;
    rc = ent_find_digit_ids(&sc, out->n_pii);
    if (rc)
        goto out;
    if (out->n_pii > 1)
        qsort(out->pii, out->n_pii, sizeof(*out->pii), pii_cmp);
    if (opts && opts->policy_pattern && opts->policy_pattern[0]) {
        rc = ent_find_policy_numbers(&sc, opts->policy_pattern);
        if (rc)
            goto out;
        if (out->n_pii > 1)
            qsort(out->pii, out->n_pii, sizeof(*out->pii), pii_cmp);
    }
    rc = find_money(&sc);
out:
    if (rc)
        tg_entities_reset(out);
    return rc;
}

const char *tg_pii_type_name(enum tg_pii_type t)
{
    switch (t) {
    case TG_PII_ID_CARD:
        return "id_card";
    case TG_PII_MOBILE:
        return "mobile";
    case TG_PII_BANK_CARD:
        return "bank_card";
    case TG_PII_EMAIL:
        return "email";
    case TG_PII_POLICY_NO:
        return "policy_no";
    }
    return "unknown";
}

json_t *tg_entities_to_json(const struct tg_entities *e, const char *text)
{
    json_t *root = json_object(), *money = json_array(), *pii = json_array();
    int rc = root && money && pii && text ? TG_OK : TG_E_NOMEM;
    for (size_t i = 0; !rc && i < e->n_money; i++) {
        const struct tg_money *m = &e->money[i];
        rc = tg_json_push(money, json_pack("{s:s%,s:f,s:I,s:I,s:b,s:b}", "text", text + m->start,
                                           (size_t)(m->end - m->start), "value_cny", m->value_cny,
                                           "start", (json_int_t)m->start, "end", (json_int_t)m->end,
                                           "approximate", m->approximate, "range", m->range));
    }
    for (size_t i = 0; !rc && i < e->n_pii; i++) {
        const struct tg_pii *p = &e->pii[i];
        rc = tg_json_push(pii, json_pack("{s:s,s:s%,s:I,s:I}", "type", tg_pii_type_name(p->type),
                                         "text", text + p->start, (size_t)(p->end - p->start),
                                         "start", (json_int_t)p->start, "end", (json_int_t)p->end));
    }
    if (!rc)
        rc = tg_json_set(root, "money", json_incref(money));
    if (!rc)
        rc = tg_json_set(root, "pii", json_incref(pii));
    json_decref(money);
    json_decref(pii);
    if (rc) {
        json_decref(root);
        root = NULL;
    }
    return root;
}

double tg_entities_money_max(const struct tg_entities *e)
{
    double max = -1;
    for (size_t i = 0; i < e->n_money; i++)
        max = TG_MAX(max, e->money[i].value_cny);
    return max;
}
