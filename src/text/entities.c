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
 */
#include "text/chars.h"
#include "text/text.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Defined in numbers.c: the longest numeral at the start of s, its value
 * in *value; returns the bytes read, 0 when s does not start with one. */
size_t tg_text_numeral_prefix(const char *s, size_t len, double *value);

/* The text being searched and where results go. */
struct scan {
    const char *t;
    size_t len;
    struct tg_entities *out;
};

/* ------------------------------------------------------------ characters */

/* The character at pos and its length (an invalid byte counts as one
 * character U+FFFD); 0 at the end of the text. */
static size_t char_at(const struct scan *sc, size_t pos, uint32_t *cp)
{
    size_t n;
    if (pos >= sc->len) {
        *cp = 0;
        return 0;
    }
    n = tg_utf8_decode(sc->t + pos, sc->len - pos, cp);
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
    unsigned char c = pos < sc->len ? (unsigned char)sc->t[pos] : 0;
    if (c >= '0' && c <= '9')
        return true;
    /* Full-width digits are EF BC 90..99; nothing else needs decoding. */
    return c == 0xEF && char_at(sc, pos, &cp) && tg_digit_value(cp) >= 0;
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

/* ------------------------------------------------------------ word lists */

/* A word list: entries with their lengths, ended by WORDS_END. */
struct word {
    const char *s;
    size_t n;
};
#define W(lit)                                                                                     \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }
#define WORDS_END                                                                                  \
    {                                                                                              \
        NULL, 0                                                                                    \
    }

/* Length of the first word of list (UTF-8, exact) found at pos, else 0. */
static size_t word_at(const struct scan *sc, size_t pos, const struct word *list)
{
    const char *t = sc->t + pos;
    size_t left = sc->len - pos;
    if (left == 0)
        return 0;
    for (; list->s; list++)
        if (list->n <= left && t[0] == list->s[0] && memcmp(t, list->s, list->n) == 0)
            return list->n;
    return 0;
}

/* Length of the first word of list ending at pos, else 0. */
static size_t word_before(const struct scan *sc, size_t pos, const struct word *list)
{
    if (pos == 0)
        return 0;
    for (; list->s; list++)
        if (list->n <= pos && sc->t[pos - 1] == list->s[list->n - 1] &&
            memcmp(sc->t + pos - list->n, list->s, list->n) == 0)
            return list->n;
    return 0;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static bool ascii_eq_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

/* An ASCII word of list (any case) at pos, not followed by a letter;
 * with prefix_ok, a word that merely starts there counts ("investing"). */
static size_t ascii_word_at(const struct scan *sc, size_t pos, const struct word *list,
                            bool prefix_ok)
{
    const char *t = sc->t + pos;
    size_t left = sc->len - pos;
    if (left == 0)
        return 0;
    for (; list->s; list++)
        if (list->n <= left && lower((unsigned char)t[0]) == lower((unsigned char)list->s[0]) &&
            ascii_eq_nocase(t, list->s, list->n) &&
            (prefix_ok || list->n == left || !tg_ascii_alpha((unsigned char)t[list->n])))
            return list->n;
    return 0;
}

/* An ASCII word of list (any case) ending at pos, not preceded by a letter. */
static size_t ascii_word_before(const struct scan *sc, size_t pos, const struct word *list)
{
    if (pos == 0)
        return 0;
    for (; list->s; list++)
        if (list->n <= pos &&
            lower((unsigned char)sc->t[pos - 1]) == lower((unsigned char)list->s[list->n - 1]) &&
            ascii_eq_nocase(sc->t + pos - list->n, list->s, list->n) &&
            (pos == list->n || !tg_ascii_alpha((unsigned char)sc->t[pos - list->n - 1])))
            return list->n;
    return 0;
}

static const struct word cny_before[] = {W("¥"), W("￥"), W("人民币"), WORDS_END};
static const struct word cny_before_ascii[] = {W("RMB"), W("CNY"), WORDS_END};
static const struct word cny_after_ascii[] = {W("yuan"), W("rmb"), W("cny"), WORDS_END};
static const struct word foreign_before[] = {W("$"),    W("€"),    W("£"),   W("＄"),
                                             W("美元"), W("港币"), WORDS_END};
static const struct word foreign_before_ascii[] = {W("USD"), W("EUR"), W("HKD"),
                                                   W("JPY"), W("GBP"), WORDS_END};
static const struct word foreign_after[] = {W("美元"), W("美金"),   W("欧元"), W("英镑"), W("日元"),
                                            W("日币"), W("港币"),   W("港元"), W("澳元"), W("加元"),
                                            W("韩元"), W("新台币"), W("台币"), W("卢布"), W("泰铢"),
                                            W("円"),   WORDS_END};
static const struct word foreign_after_ascii[] = {
    W("dollars"), W("dollar"), W("usd"),    W("eur"),   W("euros"), W("euro"), W("hkd"),
    W("jpy"),     W("gbp"),    W("pounds"), W("bucks"), W("yen"),   WORDS_END};
static const struct word approx_before[] = {W("大概"),   W("大约"), W("约莫"), W("约"),   W("大致"),
                                            W("差不多"), W("将近"), W("接近"), W("估计"), W("近"),
                                            W("~"),      W("～"),   W("≈"),    WORDS_END};
static const struct word approx_before_ascii[] = {
    W("about"),  W("around"), W("approximately"), W("approx."),   W("roughly"),
    W("nearly"), W("almost"), W("over"),          W("more than"), WORDS_END};
static const struct word approx_after[] = {W("左右"), W("上下"), W("出头"), W("+"), WORDS_END};
static const struct word range_words[] = {W("到"), W("至"), W("-"), W("~"),  W("～"),
                                          W("－"), W("—"),  W("–"), W("〜"), WORDS_END};
static const struct word english_scale[] = {W("thousand"), W("million"), W("billion"), WORDS_END};
static const double english_scale_value[] = {1e3, 1e6, 1e9};
static const struct word english_units[] = {
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
static const struct word money_words[] = {
    W("投资"), W("存"),   W("贷款"), W("借"),   W("理财"), W("金额"), W("预算"), W("资金"),
    W("本金"), W("收入"), W("工资"), W("月薪"), W("年薪"), W("薪水"), W("保费"), W("保额"),
    W("首付"), W("余额"), W("花了"), W("花费"), W("费用"), W("价格"), W("价钱"), W("售价"),
    W("总价"), W("付款"), W("支付"), W("付了"), W("转账"), W("转了"), W("汇款"), W("还款"),
    W("月供"), W("赔偿"), W("赔付"), W("理赔"), W("报销"), W("充值"), W("提现"), W("取现"),
    W("购买"), W("买了"), W("资产"), W("投入"), W("亏了"), W("赚了"), W("额度"), W("定投"),
    W("缴费"), W("交了"), W("钱"),   WORDS_END};
static const struct word money_words_ascii[] = {
    W("invest"), W("deposit"), W("loan"),     W("budget"), W("salary"),  W("income"),
    W("pay"),    W("amount"),  W("premium"),  W("saving"), W("save"),    W("borrow"),
    W("spend"),  W("price"),   W("cost"),     W("fee"),    W("balance"), W("fund"),
    W("money"),  W("worth"),   W("transfer"), WORDS_END};
/* Fixed expressions that start like a numeral. */
static const struct word idioms[] = {W("十万火急"), W("一五一十"), WORDS_END};

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
static bool measure_at(const struct scan *sc, size_t pos)
{
    uint32_t cp;
    if (!char_at(sc, pos, &cp) || cp < CJK_FIRST || cp > CJK_LAST)
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
    if (e->n_money == e->cap_money) {
        size_t cap = e->cap_money ? e->cap_money * 2 : 8;
        struct tg_money *v = tg_realloc(e->money, cap * sizeof(*v));
        if (!v)
            return TG_E_NOMEM;
        e->money = v;
        e->cap_money = cap;
    }
    e->money[e->n_money++] = *m;
    return TG_OK;
}

static int push_pii(struct tg_entities *e, size_t start, size_t end, enum tg_pii_type type)
{
    if (e->n_pii == e->cap_pii) {
        size_t cap = e->cap_pii ? e->cap_pii * 2 : 8;
        struct tg_pii *v = tg_realloc(e->pii, cap * sizeof(*v));
        if (!v)
            return TG_E_NOMEM;
        e->pii = v;
        e->cap_pii = cap;
    }
    e->pii[e->n_pii++] = (struct tg_pii){(uint32_t)start, (uint32_t)end, type};
    return TG_OK;
}

static int pii_cmp(const void *a, const void *b)
{
    const struct tg_pii *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

/* Whether [start, end) overlaps one of the first n (sorted, disjoint) spans. */
static bool overlaps_pii(const struct tg_pii *v, size_t n, size_t start, size_t end)
{
    size_t lo = 0, hi = n;
    while (lo < hi) { /* the first span that ends after start */
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].end <= start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo].start < end;
}

/* ------------------------------------------------------------ e-mail */

static bool email_local_char(unsigned char c)
{
    return tg_ascii_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static bool email_domain_char(unsigned char c)
{
    return tg_ascii_alnum(c) || c == '.' || c == '-';
}

/* A domain of at least two dot-separated labels, none empty or starting or
 * ending with '-', the last of two or more letters. */
static bool email_domain_ok(const char *d, size_t n)
{
    size_t labels = 0, s = 0;
    bool tld = false;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && d[i] != '.')
            continue;
        if (i == s || d[s] == '-' || d[i - 1] == '-')
            return false;
        labels++;
        tld = i - s >= 2;
        for (size_t j = s; j < i; j++)
            tld = tld && tg_ascii_alpha((unsigned char)d[j]);
        s = i + 1;
    }
    return labels >= 2 && tld;
}

static int find_emails(struct scan *sc)
{
    const char *t = sc->t;
    size_t floor = 0, at = 0;
    const char *hit;
    int rc = TG_OK;
    while (at < sc->len && (hit = memchr(t + at, '@', sc->len - at)) != NULL) {
        size_t a = (size_t)(hit - t), s = a, e = a + 1;
        at = a + 1;
        while (s > floor && email_local_char((unsigned char)t[s - 1]))
            s--;
        while (s < a && t[s] == '.')
            s++;
        if (s == a || t[a - 1] == '.' || memmem(t + s, a - s, "..", 2))
            continue;
        while (e < sc->len && email_domain_char((unsigned char)t[e]))
            e++;
        while (e > a + 1 && (t[e - 1] == '.' || t[e - 1] == '-'))
            e--;
        if (!email_domain_ok(t + a + 1, e - a - 1))
            continue;
        rc = push_pii(sc->out, s, e, TG_PII_EMAIL);
        if (rc)
            break;
        floor = e;
        at = e;
    }
    return rc;
}

/* ------------------------------------------------------------ digit identifiers */

/* Groups of digits separated by one space or dash: "6222 0212 3456 7890". */
#define MAX_GROUPS 8
struct group {
    size_t start, end;
    int ndig; /* digits, a final X of an ID number included */
    char sep; /* the separator before the next group */
};

struct chain {
    struct group g[MAX_GROUPS];
    int n;
    bool plus;       /* a '+' just before the first group */
    bool open_left;  /* the first group touches letters or a decimal point */
    bool open_right; /* so does the last */
};

/* The digits (and X) of groups [i, i + m) into buf; returns how many. */
static int chain_digits(const struct scan *sc, const struct chain *c, int i, int m, char *buf,
                        int cap)
{
    int k = 0;
    for (int j = i; j < i + m; j++) {
        size_t pos = c->g[j].start;
        while (pos < c->g[j].end && k < cap) {
            uint32_t cp;
            size_t n = char_at(sc, pos, &cp);
            int d = tg_digit_value(cp);
            buf[k++] = d >= 0 ? (char)('0' + d) : 'X';
            pos += n;
        }
    }
    return k;
}

static bool real_date(int y, int m, int d)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1900 || y > 2099 || m < 1 || m > 12 || d < 1)
        return false;
    return d <= mdays[m - 1] + (m == 2 && leap);
}

/*
 * Resident ID number, GB 11643-1999: 17 digits and a check character.  The
 * weighted sum of the digits (weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2)
 * mod 11 indexes "10X98765432"; digits 7-14 are a real birth date.
 */
static bool id_card_ok(const char *d)
{
    static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    int sum = 0;
    char check = d[17] == 'x' ? 'X' : d[17];
    if (d[0] == '0')
        return false; /* region codes start at 1 */
    for (int i = 0; i < 17; i++) {
        if (d[i] < '0' || d[i] > '9')
            return false;
        sum += (d[i] - '0') * w[i];
    }
    if ("10X98765432"[sum % 11] != check)
        return false;
    return real_date((d[6] - '0') * 1000 + (d[7] - '0') * 100 + (d[8] - '0') * 10 + (d[9] - '0'),
                     (d[10] - '0') * 10 + (d[11] - '0'), (d[12] - '0') * 10 + (d[13] - '0'));
}

/* The Luhn algorithm (ISO/IEC 7812-1 check digit) over n digits. */
static bool luhn_ok(const char *d, int n)
{
    int sum = 0;
    if (d[0] == '0')
        return false;
    for (int i = 0; i < n; i++) {
        int v = d[n - 1 - i] - '0';
        if (v < 0 || v > 9)
            return false;
        if (i % 2 == 1) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

static bool mobile_ok(const char *d, int n)
{
    if (n != 11 || d[0] != '1' || d[1] < '3' || d[1] > '9')
        return false;
    for (int i = 0; i < n; i++)
        if (d[i] < '0' || d[i] > '9')
            return false;
    return true;
}

/* Groups [i, i + m) have the given sizes and one kind of separator. */
static bool groups_are(const struct chain *c, int i, int m, const int *sizes)
{
    if (i + m > c->n)
        return false;
    for (int j = i; j < i + m; j++) {
        if (c->g[j].ndig != sizes[j - i])
            return false;
        if (j > i && c->g[j - 1].sep != c->g[i].sep)
            return false;
    }
    return true;
}

/* A mobile number written as one group or as 3-4-4 at group i; returns the
 * groups it takes, 0 if none. */
static int mobile_at(const struct scan *sc, const struct chain *c, int i)
{
    static const int g344[3] = {3, 4, 4};
    char d[24];
    if (c->g[i].ndig == 11 && mobile_ok(d, chain_digits(sc, c, i, 1, d, 24)))
        return 1;
    if (groups_are(c, i, 3, g344) && mobile_ok(d, chain_digits(sc, c, i, 3, d, 24)))
        return 3;
    return 0;
}

static bool country_code(const char *d, int k)
{
    return (k == 2 && memcmp(d, "86", 2) == 0) || (k == 4 && memcmp(d, "0086", 4) == 0);
}

/* A mobile number behind +86 / 86 / 0086, apart or joined, at group i. */
static int prefixed_mobile_at(const struct scan *sc, const struct chain *c, int i)
{
    char d[24];
    int k = chain_digits(sc, c, i, 1, d, 24), m;
    if (i + 1 < c->n && country_code(d, k) && (m = mobile_at(sc, c, i + 1)) > 0)
        return 1 + m;
    if ((k == 13 || k == 15) && country_code(d, k - 11) && mobile_ok(d + k - 11, 11))
        return 1;
    return 0;
}

/* An ID number written 6-8-4 or 6-4-4-4, or a card number in groups of
 * four, at group i. */
static int grouped_id_at(const struct scan *sc, const struct chain *c, int i,
                         enum tg_pii_type *type)
{
    static const int id684[3] = {6, 8, 4}, id6444[4] = {6, 4, 4, 4}, card[4] = {4, 4, 4, 4};
    char d[24];
    int m = groups_are(c, i, 3, id684) ? 3 : groups_are(c, i, 4, id6444) ? 4 : 0;
    if (m && chain_digits(sc, c, i, m, d, 24) == 18 && id_card_ok(d)) {
        *type = TG_PII_ID_CARD;
        return m;
    }
    if (!groups_are(c, i, 4, card))
        return 0;
    m = i + 4 < c->n && c->g[i + 4].ndig <= 3 && c->g[i + 3].sep == c->g[i].sep ? 5 : 4;
    *type = TG_PII_BANK_CARD;
    return luhn_ok(d, chain_digits(sc, c, i, m, d, 24)) ? m : 0;
}

/* Try every identifier shape at group i of the chain.  Returns the groups
 * the identifier takes (0: none) and sets its type and start. */
static int identify(const struct scan *sc, const struct chain *c, int i, enum tg_pii_type *type,
                    size_t *start)
{
    char d[24];
    int k, m;
    *start = c->plus && i == 0 ? c->g[0].start - 1 : c->g[i].start;
    *type = TG_PII_MOBILE;
    if ((m = prefixed_mobile_at(sc, c, i)) > 0)
        return m;
    *start = c->g[i].start;
    if ((m = grouped_id_at(sc, c, i, type)) > 0)
        return m;
    *type = TG_PII_MOBILE;
    if ((m = mobile_at(sc, c, i)) > 0)
        return m;
    k = chain_digits(sc, c, i, 1, d, 24);
    if (k == 18 && id_card_ok(d)) {
        *type = TG_PII_ID_CARD;
        return 1;
    }
    *type = TG_PII_BANK_CARD;
    return k >= 16 && k <= 19 && luhn_ok(d, k) ? 1 : 0;
}

/* A separator (one space or dash) at pos with a digit after it, before limit. */
static bool joined_at(const struct scan *sc, size_t pos, size_t limit)
{
    return pos + 1 < limit && (sc->t[pos] == ' ' || sc->t[pos] == '-') && digit_at(sc, pos + 1);
}

/* One group of digits at pos; returns the position after it. */
static size_t read_group(const struct scan *sc, size_t pos, size_t limit, struct group *g)
{
    uint32_t cp;
    size_t n;
    g->start = pos;
    while (pos < limit && (n = char_at(sc, pos, &cp)) && tg_digit_value(cp) >= 0) {
        g->ndig++;
        pos += n;
    }
    /* The check character X ends an ID number: 17 digits, or 6-8-4 / 6-4-4-4. */
    if ((g->ndig == 17 || g->ndig == 3) && pos < limit &&
        (sc->t[pos] == 'X' || sc->t[pos] == 'x') &&
        !(pos + 1 < sc->len && tg_ascii_alnum((unsigned char)sc->t[pos + 1]))) {
        g->ndig++;
        pos++;
    }
    g->end = pos;
    return pos;
}

/* Read the chain of digit groups starting at pos (a digit), stopping before
 * limit.  Returns the position after it. */
static size_t read_chain(const struct scan *sc, size_t pos, size_t limit, struct chain *c)
{
    uint32_t cp;
    memset(c, 0, sizeof(*c));
    char_before(sc, pos, &cp);
    c->plus = cp == '+';
    c->open_left = tg_ascii_alpha(cp) || cp == '.' || cp == '_';
    for (;;) {
        struct group *g = &c->g[c->n++];
        pos = read_group(sc, pos, limit, g);
        if (c->n == MAX_GROUPS || !joined_at(sc, pos, limit))
            break;
        g->sep = sc->t[pos];
        pos++;
    }
    char_at(sc, pos, &cp);
    c->open_right = tg_ascii_alpha(cp) || cp == '_' || (cp == '.' && digit_at(sc, pos + 1)) ||
                    (c->n == MAX_GROUPS && joined_at(sc, pos, sc->len));
    return pos;
}

static int find_digit_ids(struct scan *sc, size_t n_email)
{
    size_t pos = 0, ei = 0;
    struct chain c;
    int rc = TG_OK;
    while (pos < sc->len && rc == TG_OK) {
        const struct tg_pii *em = sc->out->pii; /* may move as identifiers are added */
        size_t limit;
        if (ei < n_email && pos >= em[ei].start) {
            pos = TG_MAX(pos, (size_t)em[ei].end);
            ei++;
            continue;
        }
        limit = ei < n_email ? em[ei].start : sc->len;
        if (!digit_at(sc, pos)) {
            pos++;
            continue;
        }
        pos = read_chain(sc, pos, limit, &c);
        for (int i = 0; i < c.n && rc == TG_OK;) {
            enum tg_pii_type type;
            size_t start;
            int m = identify(sc, &c, i, &type, &start);
            bool bounded = m > 0 && !(i == 0 && c.open_left) && !(i + m == c.n && c.open_right);
            if (bounded)
                rc = push_pii(sc->out, start, c.g[i + m - 1].end, type);
            i += bounded ? m : 1;
        }
    }
    return rc;
}

/* ------------------------------------------------------------ policy numbers */

/*
 * The compiled policy pattern.  One entry is cached for the process,
 * guarded by policy_lock: extraction runs on every message with the same
 * pattern, so it is compiled (and JIT-compiled) once.  Each user holds a
 * reference, so a new pattern can replace the entry while another thread
 * still matches with the old one.
 */
struct policy_re {
    char *pattern;
    pcre2_general_context *gctx;
    pcre2_code *code;
    unsigned refs;
};

static pthread_mutex_t policy_lock = PTHREAD_MUTEX_INITIALIZER;
static struct policy_re *policy_cache;

static void *re_malloc(PCRE2_SIZE n, void *data)
{
    (void)data;
    return tg_malloc(n);
}

static void re_free(void *p, void *data)
{
    (void)data;
    tg_free(p);
}

static void policy_re_free(struct policy_re *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    pcre2_general_context_free(re->gctx);
    tg_free(re->pattern);
    tg_free(re);
}

static int policy_compile(const char *pattern, struct policy_re **out)
{
    int rc = TG_E_NOMEM, err;
    PCRE2_SIZE off;
    pcre2_compile_context *cctx = NULL;
    struct policy_re *re = tg_calloc(1, sizeof(*re));
    if (!re)
        goto out;
    re->pattern = tg_strdup(pattern);
    re->gctx = pcre2_general_context_create(re_malloc, re_free, NULL);
    if (!re->pattern || !re->gctx)
        goto out;
    cctx = pcre2_compile_context_create(re->gctx);
    if (!cctx)
        goto out;
    /* MATCH_INVALID_UTF: a stray byte in a message must not stop the search. */
    re->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &off, cctx);
    if (!re->code) {
        rc = err == PCRE2_ERROR_HEAP_FAILED ? TG_E_NOMEM : TG_E_CONFIG;
        goto out;
    }
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* the interpreter serves without JIT */
    re->refs = 1;
    *out = re;
    re = NULL;
    rc = TG_OK;
out:
    pcre2_compile_context_free(cctx);
    policy_re_free(re);
    return rc;
}

static void policy_release(struct policy_re *re)
{
    bool last;
    pthread_mutex_lock(&policy_lock);
    last = --re->refs == 0;
    pthread_mutex_unlock(&policy_lock);
    if (last)
        policy_re_free(re);
}

/* A reference to the compiled pattern, from the cache or compiled now. */
static int policy_acquire(const char *pattern, struct policy_re **out)
{
    struct policy_re *re = NULL, *drop = NULL;
    int rc = TG_OK;
    pthread_mutex_lock(&policy_lock);
    if (policy_cache && strcmp(policy_cache->pattern, pattern) == 0) {
        policy_cache->refs++;
        re = policy_cache;
    }
    pthread_mutex_unlock(&policy_lock);
    if (re)
        goto out;
    rc = policy_compile(pattern, &re); /* outside the lock: compiling takes a while */
    if (rc)
        goto out;
    pthread_mutex_lock(&policy_lock);
    if (policy_cache && strcmp(policy_cache->pattern, pattern) == 0) {
        drop = re; /* another thread compiled it meanwhile */
        re = policy_cache;
        re->refs++;
    } else {
        if (policy_cache && --policy_cache->refs == 0)
            drop = policy_cache;
        policy_cache = re;
        re->refs++; /* one for the cache, one for the caller */
    }
    pthread_mutex_unlock(&policy_lock);
    policy_re_free(drop);
out:
    if (rc == TG_OK)
        *out = re;
    return rc;
}

/* Policy numbers are appended after the sorted, disjoint identifiers found
 * so far and may not overlap them. */
static int find_policy_numbers(struct scan *sc, const char *pattern)
{
    struct policy_re *re = NULL;
    pcre2_match_data *md = NULL;
    size_t n_base = sc->out->n_pii, off = 0;
    int rc = policy_acquire(pattern, &re);
    if (rc)
        goto out;
    md = pcre2_match_data_create_from_pattern(re->code, re->gctx);
    if (!md) {
        rc = TG_E_NOMEM;
        goto out;
    }
    while (off < sc->len) {
        int m = pcre2_match(re->code, (PCRE2_SPTR)sc->t, sc->len, off, 0, md, NULL);
        PCRE2_SIZE *ov;
        if (m < 0) {
            /* No more matches; a match or depth limit also ends the search. */
            rc = m == PCRE2_ERROR_NOMEMORY ? TG_E_NOMEM : TG_OK;
            break;
        }
        ov = pcre2_get_ovector_pointer(md);
        if (ov[1] <= ov[0]) { /* an empty match: step one character */
            off = ov[0] + 1;
            while (off < sc->len && ((unsigned char)sc->t[off] & 0xC0) == 0x80)
                off++;
            continue;
        }
        if (!overlaps_pii(sc->out->pii, n_base, ov[0], ov[1])) {
            rc = push_pii(sc->out, ov[0], ov[1], TG_PII_POLICY_NO);
            if (rc)
                break;
        }
        off = ov[1];
    }
out:
    pcre2_match_data_free(md);
    if (re)
        policy_release(re);
    return rc;
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

/* The value of a Chinese unit character, else 0. */
static double unit_value(uint32_t cp)
{
    switch (cp) {
    case 0x5341: /* 十 */
    case 0x62FE: /* 拾 */
        return 10;
    case 0x767E: /* 百 */
    case 0x4F70: /* 佰 */
        return 100;
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

/* What the numeral text itself says: its script, its Arabic integer
 * digits, a leading zero, a unit of 千 or more, the unit it ends with. */
static void describe_numeral(const struct scan *sc, struct amount *a)
{
    size_t pos = a->start, n;
    uint32_t cp;
    bool frac = false;
    while (pos < a->num_end && (n = char_at(sc, pos, &cp))) {
        int d = tg_digit_value(cp);
        double u = unit_value(cp);
        a->tail = u > 0 ? u : 1;
        a->magnitude = a->magnitude || u >= 1e3;
        if (d == 0 && !frac && a->int_digits == 0 && digit_at(sc, pos + n))
            a->leading_zero = true;
        if (d >= 0 && !frac)
            a->int_digits++;
        frac = frac || cp == '.' || cp == 0xFF0E;
        a->chinese = a->chinese || (d < 0 && cp >= 0x80 && cp != 0xFF0C && cp != 0xFF0E);
        pos += n;
    }
}

/* 万 or 亿 at pos: its value, else 0. */
static double big_unit_at(const struct scan *sc, size_t pos)
{
    static const struct word wan[] = {W("万"), W("萬"), WORDS_END},
                             yi[] = {W("亿"), W("億"), WORDS_END};
    if (word_at(sc, pos, wan))
        return 1e4;
    if (word_at(sc, pos, yi))
        return 1e8;
    return 0;
}

/* 多/余 ("more than"), or 几/来 after a Chinese unit, at pos: its length. */
static size_t approx_infix_at(const struct scan *sc, size_t pos, const struct amount *a)
{
    static const struct word more[] = {W("多"), W("余"), WORDS_END},
                             few[] = {W("几"), W("来"), WORDS_END};
    static const struct word not_more[] = {W("多少"), W("余额"), W("多元"), WORDS_END};
    if (word_at(sc, pos, not_more))
        return 0;
    if (word_at(sc, pos, more))
        return 3;
    if (a->chinese && a->tail > 1 && word_at(sc, pos, few))
        return 3;
    return 0;
}

/* w/W = 万, k/K = thousand, or an English multiplier after an Arabic numeral. */
static size_t read_scale(const struct scan *sc, size_t p, struct amount *a)
{
    unsigned char c = p < sc->len ? (unsigned char)sc->t[p] : 0;
    size_t q, n;
    if ((c == 'w' || c == 'W' || c == 'k' || c == 'K') &&
        !(p + 1 < sc->len && tg_ascii_alnum((unsigned char)sc->t[p + 1]))) {
        a->tail = c == 'w' || c == 'W' ? 1e4 : 1e3;
        p++;
    } else {
        q = skip_space(sc, p);
        if (!(n = ascii_word_at(sc, q, english_scale, false)))
            return p;
        for (int i = 0; english_scale[i].s; i++)
            if (english_scale[i].n == n && ascii_eq_nocase(sc->t + q, english_scale[i].s, n))
                a->tail = english_scale_value[i];
        p = q + n;
    }
    a->value *= a->tail;
    a->magnitude = true;
    return p;
}

/* Whether a lone digit ending at q stands alone ("5块5" but not "5块5天"). */
static bool lone_digit_end(const struct scan *sc, size_t q)
{
    uint32_t cp;
    double v;
    if (!char_at(sc, q, &cp))
        return true;
    return !tg_ascii_alnum(cp) && !measure_at(sc, q) && !big_unit_at(sc, q) &&
           tg_text_numeral_prefix(sc->t + q, sc->len - q, &v) == 0;
}

/* One numeral character of value 0-9 at p: its length, else 0. */
static size_t one_digit_at(const struct scan *sc, size_t p, double *d)
{
    uint32_t cp;
    size_t n = tg_text_numeral_prefix(sc->t + p, sc->len - p, d);
    return n > 0 && n == char_at(sc, p, &cp) && *d <= 9 ? n : 0;
}

/* 角/毛 and 分 after 元 or 块 ("三元五角", "5块5毛"), or a lone digit after
 * them ("5块5" = 5.5). */
static size_t read_jiao_fen(const struct scan *sc, size_t p, struct amount *a)
{
    static const struct word jiao[] = {W("角"), W("毛"), WORDS_END}, fen[] = {W("分"), WORDS_END};
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
static size_t read_currency(const struct scan *sc, size_t p, struct amount *a)
{
    static const struct word kuai_qian[] = {W("块钱"), WORDS_END}, kuai[] = {W("块"), WORDS_END};
    static const struct word yuan[] = {W("元"), W("圆"), WORDS_END},
                             rmb[] = {W("人民币"), WORDS_END};
    static const struct word er[] = {W("儿"), WORDS_END}, zheng[] = {W("整"), WORDS_END};
    size_t q = skip_space(sc, p), n;
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

/* Read the numeral at pos and the units and currency after it. */
static bool read_amount(const struct scan *sc, size_t pos, struct amount *a)
{
    size_t n, p;
    double v, big;
    n = tg_text_numeral_prefix(sc->t + pos, sc->len - pos, &v);
    if (n == 0)
        return false;
    memset(a, 0, sizeof(*a));
    a->start = pos;
    p = a->num_end = pos + n;
    a->value = v;
    describe_numeral(sc, a);
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
static bool compound_after(const struct scan *sc, size_t p)
{
    uint32_t cp;
    size_t n = char_at(sc, p, &cp);
    return n && (cp == ':' || cp == 0xFF1A || cp == '.' || cp == 0xFF0E || cp == '/') &&
           digit_at(sc, p + n);
}

/* Past a run of digits joined by . : / - , (a date, phone number, version). */
static size_t skip_compound(const struct scan *sc, size_t p)
{
    uint32_t cp;
    size_t n;
    while ((n = char_at(sc, p, &cp))) {
        if (tg_digit_value(cp) < 0 &&
            !((cp == '.' || cp == ':' || cp == '/' || cp == '-' || cp == ',' || cp == 0xFF1A ||
               cp == 0xFF0E || cp == 0xFF0C) &&
              digit_at(sc, p + n)))
            break;
        p += n;
    }
    return p;
}

static bool percent_after(const struct scan *sc, size_t p)
{
    static const struct word pct[] = {W("%"), W("％"), W("‰"), WORDS_END},
                             pct_ascii[] = {W("percent"), WORDS_END};
    size_t q = skip_space(sc, p);
    return word_at(sc, q, pct) || ascii_word_at(sc, q, pct_ascii, false);
}

/* What stands before the numeral rules it out: letters (a code, a version),
 * 第 (an ordinal), 分之 (a fraction), a joined digit run, '+', '#'. */
static bool vetoed_before(const struct scan *sc, size_t pos)
{
    static const struct word ordinal[] = {W("第"), W("分之"), W("#"), W("＃"),
                                          W("+"),  W("_"),    W("@"), WORDS_END};
    uint32_t cp, cp2;
    size_t s = char_before(sc, pos, &cp);
    if (pos == 0)
        return word_at(sc, pos, idioms) != 0;
    if (tg_ascii_alpha(cp))
        return !ascii_word_before(sc, pos, cny_before_ascii) &&
               !ascii_word_before(sc, pos, foreign_before_ascii);
    if (cp == '.' || cp == ':' || cp == '/' || cp == '-' || cp == 0xFF1A || cp == 0xFF0E) {
        char_before(sc, s, &cp2);
        if (tg_digit_value(cp2) >= 0)
            return true;
    }
    return word_before(sc, pos, ordinal) || word_at(sc, pos, idioms);
}

/* A measure word, unit or attached letters after a number that has no
 * currency: 3年, 10万人, 5kg, 3 years. */
static bool measured_after(const struct scan *sc, size_t p)
{
    uint32_t cp;
    if (char_at(sc, p, &cp) && (tg_ascii_alpha(cp) || measure_at(sc, p)))
        return true;
    return ascii_word_at(sc, skip_space(sc, p), english_units, false) != 0;
}

/* A money word in the same clause: up to 24 characters before the number
 * and 8 after it. */
static bool money_context(const struct scan *sc, size_t start, size_t end)
{
    size_t b = start, f = end, n;
    uint32_t cp;
    for (int i = 0; i < 24 && b > 0; i++) {
        size_t s = char_before(sc, b, &cp);
        if (clause_break(cp))
            break;
        b = s;
    }
    for (int i = 0; i < 8 && (n = char_at(sc, f, &cp)); i++) {
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
        if ((p == 0 || !tg_ascii_alpha((unsigned char)sc->t[p - 1])) &&
            ascii_word_at(sc, p, money_words_ascii, true))
            return true;
    }
    return false;
}

/* A currency sign or word just before pos and not before floor (the end of
 * the previous amount, which may have taken it as its suffix): its start,
 * or pos. */
static size_t currency_before(const struct scan *sc, size_t pos, size_t floor, bool *cny,
                              bool *foreign)
{
    size_t q = skip_space_back(sc, pos), n;
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
static bool read_range_end(const struct scan *sc, const struct amount *a, struct amount *b,
                           bool *bad)
{
    static const struct word sign[] = {W("¥"), W("￥"), WORDS_END};
    size_t q = skip_space(sc, a->end), n = word_at(sc, q, range_words), r;
    *bad = false;
    if (n == 0)
        return false;
    r = skip_space(sc, q + n);
    r += word_at(sc, r, sign);
    if (!read_amount(sc, r, b) || overlaps_pii(sc->out->pii, sc->out->n_pii, r, b->end))
        return false;
    q = skip_space(sc, b->end);
    *bad = b->leading_zero || compound_after(sc, b->num_end) || percent_after(sc, b->end) ||
           (!b->currency && measured_after(sc, b->end)) ||
           ((n = word_at(sc, q, range_words)) && digit_at(sc, skip_space(sc, q + n)));
    return true;
}

/* Whether the amount is money by its cue: a currency, a magnitude, or a bare
 * number of 100 or more with a money word in its clause. */
static bool money_cue(const struct scan *sc, const struct amount *a, size_t start, size_t end)
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
static bool ruled_out(const struct scan *sc, const struct amount *a, size_t *next)
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
static bool money_at(const struct scan *sc, size_t pos, size_t floor, struct tg_money *m,
                     size_t *next)
{
    struct amount a, b;
    uint32_t cp;
    size_t start, end, n;
    bool cny, foreign, bad, range;

    if (!read_amount(sc, pos, &a)) {
        n = char_at(sc, pos, &cp);
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
    n = skip_space_back(sc, start);
    a.approx |= word_before(sc, n, approx_before) || ascii_word_before(sc, n, approx_before_ascii);
    if (!money_cue(sc, &a, start, end) || !isfinite(a.value) || a.value > 1e15 ||
        (a.value <= 0 && !a.currency) || overlaps_pii(sc->out->pii, sc->out->n_pii, start, end))
        return false;
    *m = (struct tg_money){.start = (uint32_t)start,
                           .end = (uint32_t)end,
                           .value_cny = a.value,
                           .approximate = a.approx,
                           .range = range};
    *next = end;
    return true;
}

static int find_money(struct scan *sc)
{
    const struct tg_pii *pii = sc->out->pii;
    size_t np = sc->out->n_pii, pi = 0, pos = 0, next, floor = 0;
    struct tg_money m;
    int rc = TG_OK;
    while (pos < sc->len && rc == TG_OK) {
        unsigned char c = (unsigned char)sc->t[pos];
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
    struct scan sc = {.t = text, .len = len, .out = out};
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
    rc = find_emails(&sc);
    if (rc)
        goto out;
    rc = find_digit_ids(&sc, out->n_pii);
    if (rc)
        goto out;
    if (out->n_pii > 1)
        qsort(out->pii, out->n_pii, sizeof(*out->pii), pii_cmp);
    if (opts && opts->policy_pattern && opts->policy_pattern[0]) {
        rc = find_policy_numbers(&sc, opts->policy_pattern);
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

/* Append obj to arr, taking the reference; false when anything is NULL. */
static bool append_new(json_t *arr, json_t *obj)
{
    return obj && json_array_append_new(arr, obj) == 0;
}

json_t *tg_entities_to_json(const struct tg_entities *e, const char *text)
{
    json_t *root = json_object(), *money = json_array(), *pii = json_array();
    bool ok = root && money && pii && text;
    for (size_t i = 0; ok && i < e->n_money; i++) {
        const struct tg_money *m = &e->money[i];
        ok = append_new(money, json_pack("{s:s%,s:f,s:I,s:I,s:b,s:b}", "text", text + m->start,
                                         (size_t)(m->end - m->start), "value_cny", m->value_cny,
                                         "start", (json_int_t)m->start, "end", (json_int_t)m->end,
                                         "approximate", m->approximate, "range", m->range));
    }
    for (size_t i = 0; ok && i < e->n_pii; i++) {
        const struct tg_pii *p = &e->pii[i];
        ok = append_new(pii, json_pack("{s:s,s:s%,s:I,s:I}", "type", tg_pii_type_name(p->type),
                                       "text", text + p->start, (size_t)(p->end - p->start),
                                       "start", (json_int_t)p->start, "end", (json_int_t)p->end));
    }
    ok = ok && json_object_set(root, "money", money) == 0 && json_object_set(root, "pii", pii) == 0;
    json_decref(money);
    json_decref(pii);
    if (!ok) {
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
