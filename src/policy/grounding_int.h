/*
 * grounding_int.h - private to the grounding check (grounding.c,
 * grounding_scan.c, grounding_dates.c): the quantities a scan reads out of
 * a text, the scan itself, and what each file offers the others.
 */
#ifndef TG_POLICY_GROUNDING_INT_H
#define TG_POLICY_GROUNDING_INT_H

#include "policy/policy.h"
#include "text/numbers.h"

#include <math.h>

/* ------------------------------------------------------------ quantities */

enum kind { K_AMOUNT, K_PERCENT, K_DATE, K_NUMBER };

/* How a quantity is compared. */
enum group { G_VALUE, G_DATE, G_CODE };

/* A quantity's unit; U_NONE matches every unit. */
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

/* A quantity read from a text. */
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

/* One scan of a text: its quantities go to emit, in the draft only its
 * claims, in evidence what is worth keeping. */
struct qscan {
    struct tg_scan in;
    bool draft;
    int (*emit)(void *ctx, const struct qty *q);
    void *ctx;
};

/* What reading at a position gave: a quantity, nothing (read it as an
 * ordinary numeral), or something skipped whole. */
enum step { ST_NONE, ST_EMIT, ST_SKIP };

/* ------------------------------------------------------------ word lists */

/* What a word after a numeral makes of it. */
enum tail_kind { T_NONE, T_PCT, T_CUR, T_UNIT };

#define WK(lit, kind, val) TG_WORD(lit, kind, val)
#define W(lit, val) WK(lit, T_NONE, val)
#define WORDS_END TG_WORDS_END

/* ------------------------------------------------------------ numerals */

/* The numeral at pos, in the run of numeral characters there (numbers.h). */
static inline bool read_numeral(const struct qscan *sc, size_t pos, bool stop_at_point,
                                struct tg_numeral *nm, size_t *end)
{
    return tg_numeral_in(&sc->in, pos, tg_numeral_extent(&sc->in, pos, stop_at_point), true, nm,
                         end);
}

/* Whether the numeral is an integer in [lo, hi], with no decimal point. */
static inline bool is_integer(const struct tg_numeral *nm, double lo, double hi)
{
    return !nm->point && nm->v >= lo && nm->v <= hi && nm->v == floor(nm->v);
}

/* A bare number of value v at [start, end). */
static inline void make_value(struct qty *q, size_t start, size_t end, double v)
{
    memset(q, 0, sizeof(*q));
    q->start = start;
    q->end = end;
    q->kind = K_NUMBER;
    q->group = G_VALUE;
    q->v = v;
    q->scale = 1;
}

/* ------------------------------------------------------------ across the files */

/* grounding_scan.c: scan the text, passing each quantity to sc->emit (a
 * non-zero return stops the scan and is returned). */
int grounding_scan_text(const struct qscan *sc);
/* grounding_scan.c: a phone number, hotline or other digit code at
 * [start, end), compared digit by digit. */
void grounding_make_code(const struct qscan *sc, size_t start, size_t end, struct qty *q);

/* grounding_dates.c: a date of (year, month, day), each 0 when not stated. */
void grounding_make_date(struct qty *q, size_t start, size_t end, int y, int m, int d);
/* grounding_dates.c: a chain of digit groups at pos joined by "-./:": a
 * date, a time, a code, or skipped (a version); ST_NONE when it is an
 * ordinary numeral.  *next is past what was read. */
enum step grounding_chain_at(const struct qscan *sc, size_t pos, struct qty *q, size_t *next);
/* grounding_dates.c: a date whose numeral is nm ("2024年3月5日", "March 5"). */
bool grounding_date_at(const struct qscan *sc, const struct tg_numeral *nm, struct qty *q);
/* grounding_dates.c: a time of day whose hour's numeral characters are
 * [pos, e), before the character after ("下午3点", "9点半", "3 pm"). */
bool grounding_clock_at(const struct qscan *sc, size_t pos, size_t e, uint32_t after, struct qty *q,
                        size_t *next);
/* grounding_dates.c: 月 and 日/号, which the scan's character table marks. */
extern const struct tg_word grounding_month_w[], grounding_day_w[];

#endif
