/*
 * grounding_dates.c - the dates, times of day and joined digit groups the
 * grounding check reads (grounding_int.h): "2024年3月5日", "3月5日",
 * "March 5, 2024", "5th March", "2024-03-05", "下午3点", "9点半", "10:30",
 * "3 pm"; a chain of digit groups that is no date or time is a code
 * ("400-820-8820") or skipped (a version, an address).
 */
#include "policy/grounding_int.h"

#include <string.h>

static const struct tg_word months_ascii[] = {
    W("january", 1),   W("february", 2),  W("march", 3),  W("april", 4),     W("may", 5),
    W("june", 6),      W("july", 7),      W("august", 8), W("september", 9), W("october", 10),
    W("november", 11), W("december", 12), W("jan", 1),    W("feb", 2),       W("mar", 3),
    W("apr", 4),       W("jun", 6),       W("jul", 7),    W("aug", 8),       W("sept", 9),
    W("sep", 9),       W("oct", 10),      W("nov", 11),   W("dec", 12),      WORDS_END};
static const struct tg_word ordinal_ascii[] = {W("st", 0), W("nd", 0), W("rd", 0), W("th", 0),
                                               WORDS_END};
/* Times of day before a clock time; val: hours added to an hour below 12. */
static const struct tg_word time_of_day[] = {
    W("上午", 0),  W("早上", 0),  W("早晨", 0),  W("凌晨", 0),  W("中午", 12),
    W("下午", 12), W("傍晚", 12), W("晚上", 12), W("夜里", 12), WORDS_END};
static const struct tg_word clock_suffix_ascii[] = {W("am", 0), W("a.m.", 0), W("pm", 12),
                                                    W("p.m.", 12), WORDS_END};
const struct tg_word grounding_month_w[] = {W("月", 0), WORDS_END};
const struct tg_word grounding_day_w[] = {W("日", 0), W("号", 0), W("號", 0), WORDS_END};
static const struct tg_word half_w[] = {W("半", 0), WORDS_END};
static const struct tg_word minute_w[] = {W("分", 0), WORDS_END};

/* A Chinese digit (零 and 〇 included). */
static bool digit_cn(uint32_t cp)
{
    double v;
    enum tg_cn_kind k = tg_cn_char(cp, &v);
    return k == TG_CN_DIGIT || k == TG_CN_ZERO;
}

void grounding_make_date(struct qty *q, size_t start, size_t end, int y, int m, int d)
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

/* Digit groups joined by one of "-./:" ("2024-03-05", "400-820-8820", "9:30"). */
#define MAX_GROUPS 6
struct chain {
    size_t start[MAX_GROUPS], end[MAX_GROUPS];
    int ndig[MAX_GROUPS];
    int n;
    char sep; /* the separator between them; a different one ends the chain */
};

static bool chain_sep(const struct qscan *sc, size_t pos)
{
    char c = pos < sc->in.len ? sc->in.t[pos] : 0;
    return (c == '-' || c == '.' || c == '/' || c == ':') && tg_scan_digit_at(&sc->in, pos + 1);
}

static size_t read_chain(const struct qscan *sc, size_t pos, struct chain *c)
{
    uint32_t cp;
    size_t n;
    memset(c, 0, sizeof(*c));
    for (;;) {
        int i = c->n++;
        c->start[i] = pos;
        while ((n = tg_scan_char(&sc->in, pos, &cp)) && tg_digit_value(cp) >= 0) {
            c->ndig[i]++;
            pos += n;
        }
        c->end[i] = pos;
        if (c->n == MAX_GROUPS || !chain_sep(sc, pos) || (i > 0 && sc->in.t[pos] != c->sep))
            break;
        c->sep = sc->in.t[pos];
        pos++;
    }
    return pos;
}

/* The value of group i (at most 9 digits are read). */
static int group_value(const struct qscan *sc, const struct chain *c, int i)
{
    int v = 0, k = 0;
    size_t p = c->start[i], n;
    uint32_t cp;
    while (p < c->end[i] && k++ < 9 && (n = tg_scan_char(&sc->in, p, &cp))) {
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
static int time_of_day_before(const struct qscan *sc, size_t pos)
{
    const struct tg_word *w =
        tg_word_before(&sc->in, tg_scan_skip_space_back(&sc->in, pos), time_of_day);
    return w ? (int)w->val : -1;
}

/* "am"/"pm" after a clock time: its end, and the hours it adds in *shift. */
static size_t clock_suffix(const struct qscan *sc, size_t p, int *shift)
{
    size_t q = tg_scan_skip_space(&sc->in, p);
    const struct tg_word *w = tg_ascii_word_at(&sc->in, q, clock_suffix_ascii, false);
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

/* A time "9:30" or "17:00:00"; anything else joined by ":" is skipped. */
static enum step chain_clock(const struct qscan *sc, const struct chain *c, size_t end,
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
enum step grounding_chain_at(const struct qscan *sc, size_t pos, struct qty *q, size_t *next)
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
        grounding_make_date(q, pos, end, y, m, d);
        return ST_EMIT;
    }
    if (c.sep == '.' || c.sep == '/')
        return ST_SKIP; /* versions, addresses, fractions */
    /* Joined by "-": a range of two plain numbers, else a code. */
    if (c.n == 2 && c.ndig[0] <= 6 && c.ndig[1] <= 6 && sc->in.t[c.start[0]] != '0' &&
        sc->in.t[c.start[1]] != '0')
        return ST_NONE;
    grounding_make_code(sc, pos, end, q);
    return ST_EMIT;
}

/* ------------------------------------------------------------ dates */

/* After "2024年": a month numeral and 月, if there is one. */
static bool month_after(const struct qscan *sc, size_t p, struct tg_numeral *m)
{
    size_t skip;
    return read_numeral(sc, p, true, m, &skip) && m->after == 0x6708 /* 月 */ &&
           is_integer(m, 1, 12);
}

/* A Chinese date at the numeral: "2024年3月5日", "3月5日", "3月", "2024年",
 * and "每月5日" (a day of the month). */
static bool date_cn(const struct qscan *sc, const struct tg_numeral *nm, struct qty *q)
{
    struct tg_numeral m2, d2;
    size_t e, skip;
    const struct tg_word *w;
    int y = 0, d = 0;
    if (nm->after == 0x5E74 /* 年 */) {
        if (!is_integer(nm, 1000, 2999))
            return false;
        y = (int)nm->v;
        if (!month_after(sc, nm->end + 3, &m2)) {
            grounding_make_date(q, nm->start, nm->end + 3, y, 0, 0);
            return true;
        }
        nm = &m2;
    }
    if (nm->after == 0x6708 /* 月 */ && is_integer(nm, 1, 12)) {
        e = nm->end + 3;
        if (read_numeral(sc, e, true, &d2, &skip) &&
            (w = tg_word_at(&sc->in, d2.end, grounding_day_w)) && is_integer(&d2, 1, 31)) {
            d = (int)d2.v;
            e = d2.end + w->n;
        }
        grounding_make_date(q, q->start, e, y, (int)nm->v, d);
        return true;
    }
    if (nm->before == 0x6708 /* 月 */ && (w = tg_word_at(&sc->in, nm->end, grounding_day_w)) &&
        is_integer(nm, 1, 31)) {
        grounding_make_date(q, nm->start, nm->end + w->n, 0, 0, (int)nm->v);
        return true;
    }
    return false;
}

/* A four-digit Arabic year at p. */
static bool year_at(const struct qscan *sc, size_t p, struct tg_numeral *yr)
{
    size_t skip;
    return tg_scan_digit_at(&sc->in, p) && read_numeral(sc, p, true, yr, &skip) && !yr->chinese &&
           yr->int_digits == 4 && is_integer(yr, 1000, 2999);
}

/* After a day number: an ordinal suffix ("5th"). */
static size_t past_ordinal(const struct qscan *sc, size_t p)
{
    const struct tg_word *o = tg_ascii_word_at(&sc->in, p, ordinal_ascii, false);
    return o ? p + o->n : p;
}

/* "March 5", "Mar. 5, 2024", "March 2024": a month name before the numeral. */
static bool date_en_month_first(const struct qscan *sc, const struct tg_numeral *nm, struct qty *q)
{
    size_t b = tg_scan_skip_space_back(&sc->in, nm->start), ms, e, p;
    const struct tg_word *w;
    struct tg_numeral yr;
    if (b == nm->start || b == 0 ||
        !tg_ascii_alpha((unsigned char)sc->in.t[b - 1 - (b > 1 && sc->in.t[b - 1] == '.')]))
        return false; /* no month name before */
    if (b > 0 && sc->in.t[b - 1] == '.')
        b--;
    if (!(w = tg_ascii_word_before(&sc->in, b, months_ascii)))
        return false;
    ms = b - w->n;
    if (nm->int_digits == 4 && is_integer(nm, 1000, 2999)) {
        grounding_make_date(q, ms, nm->end, (int)nm->v, (int)w->val, 0);
        return true;
    }
    if (nm->int_digits > 2 || !is_integer(nm, 1, 31))
        return false;
    e = past_ordinal(sc, nm->end);
    p = tg_scan_skip_space(&sc->in, e < sc->in.len && sc->in.t[e] == ',' ? e + 1 : e);
    if (p > e && year_at(sc, p, &yr))
        grounding_make_date(q, ms, yr.end, (int)yr.v, (int)w->val, (int)nm->v);
    else
        grounding_make_date(q, ms, e, 0, (int)w->val, (int)nm->v);
    return true;
}

/* "5 March 2024", "5th March": a month name after the numeral. */
static bool date_en_day_first(const struct qscan *sc, const struct tg_numeral *nm, struct qty *q)
{
    size_t e, p;
    const struct tg_word *w;
    struct tg_numeral yr;
    if (!tg_space_char(nm->after) && !tg_ascii_alpha(nm->after))
        return false;
    e = past_ordinal(sc, nm->end);
    p = tg_scan_skip_space(&sc->in, e);
    if (nm->int_digits > 2 || !is_integer(nm, 1, 31) || p == e ||
        !(w = tg_ascii_word_at(&sc->in, p, months_ascii, false)))
        return false;
    e = p + w->n;
    p = tg_scan_skip_space(&sc->in, e);
    if (p > e && year_at(sc, p, &yr))
        grounding_make_date(q, nm->start, yr.end, (int)yr.v, (int)w->val, (int)nm->v);
    else
        grounding_make_date(q, nm->start, e, 0, (int)w->val, (int)nm->v);
    return true;
}

bool grounding_date_at(const struct qscan *sc, const struct tg_numeral *nm, struct qty *q)
{
    if (date_cn(sc, nm, q))
        return true;
    if (!nm->arabic || nm->chinese || nm->point)
        return false;
    return date_en_month_first(sc, nm, q) || date_en_day_first(sc, nm, q);
}

/* ------------------------------------------------------------ times of day */

/* After "3点": the minutes ("半", "30分") and where they end; -1 when a
 * digit follows that is no minute (3点5万: a decimal point). */
static int clock_minutes(const struct qscan *sc, size_t *p, bool *sure)
{
    struct tg_numeral mm;
    size_t skip;
    uint32_t cp;
    if (tg_word_at(&sc->in, *p, half_w)) {
        *p += 3;
        *sure = true;
        return 30;
    }
    if (read_numeral(sc, *p, true, &mm, &skip) && is_integer(&mm, 0, 59) &&
        tg_word_at(&sc->in, mm.end, minute_w)) {
        *p = mm.end + 3;
        *sure = true;
        return (int)mm.v;
    }
    if (tg_scan_char(&sc->in, *p, &cp) && (tg_digit_value(cp) >= 0 || digit_cn(cp)))
        return -1;
    return 0;
}

/* "下午3点", "9点半", "10点30分", "上午九点", "3 pm": a clock time at pos,
 * whose numeral characters (up to any 点) end at e, before the character after. */
bool grounding_clock_at(const struct qscan *sc, size_t pos, size_t e, uint32_t after, struct qty *q,
                        size_t *next)
{
    struct tg_numeral h;
    size_t p, skip;
    int shift = -1, min;
    double pv;
    bool sure, point = tg_cn_char(after, &pv) == TG_CN_POINT;
    bool ampm = after < 0x80 && (after == ' ' || (after | 0x20) == 'a' || (after | 0x20) == 'p');
    if (!point && (!ampm || clock_suffix(sc, e, &shift) == e))
        return false; /* neither 点 nor am/pm: the common case, decided before parsing */
    if (!tg_numeral_in(&sc->in, pos, e, true, &h, &skip) || !is_integer(&h, 0, 24) || h.end != e)
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
