/*
 * numbers.h - the one numeral scanner: reads numerals as customers and
 * answers write them (Arabic digits, ASCII or full-width, with "," groups
 * and a decimal point; Chinese numerals in everyday and financial forms;
 * mixes such as "3万5" and "1.5亿") out of a text, and tells what each
 * says besides its value.  Money (text/entities.c) and the quantities of
 * the grounding check (policy/grounding.c) are built on it;
 * tg_text_parse_number (text.h) reads a whole string with it.
 *
 * Everything here is pure and thread-safe; nothing allocates.
 */
#ifndef TG_TEXT_NUMBERS_H
#define TG_TEXT_NUMBERS_H

#include "text/scan.h"

/* The role of a character in a Chinese numeral. */
enum tg_cn_kind {
    TG_CN_NONE,
    TG_CN_DIGIT, /* 一..九, their financial forms, 两 */
    TG_CN_ZERO,  /* 零 〇 */
    TG_CN_UNIT,  /* 十 百 千 (and 拾 佰 仟) */
    TG_CN_BIG,   /* 万 亿 (and 萬 億) */
    TG_CN_POINT, /* 点 點: a decimal point between digits */
};

/* The role of cp in a Chinese numeral; *val is set to its value (a digit,
 * or 10, 100, 1e3, 1e4, 1e8 for a unit) unless the role is TG_CN_NONE. */
enum tg_cn_kind tg_cn_char(uint32_t cp, double *val);

/* The value of a unit character (十 百 千 万 亿, any form), else 0. */
double tg_cn_unit(uint32_t cp);

/*
 * The longest numeral at the start of s[0..len): stores its value in
 * *value and returns the bytes read, 0 (and *value untouched) when s does
 * not start with one.  "三千五" is 3500, "3万5" 35000, "二〇二四" 2024.
 */
size_t tg_text_numeral_prefix(const char *s, size_t len, double *value);

/*
 * A numeral found in a text, and what its characters say.  Its readers
 * differ on 点 (as in 三点五万): the grounding check counts it as a
 * decimal point, the money reader as a Chinese character; point_cn below
 * says which, and changes only the description, never the value.
 */
struct tg_numeral {
    size_t start, end;      /* its span */
    double v;               /* its value */
    double last_unit;       /* the value of the 十/百/千/万/亿 it ends with, else 1 */
    int digits;             /* significant Arabic digits (leading zeros left out) */
    int int_digits;         /* Arabic digits before any decimal point */
    bool arabic;            /* Arabic digits in it */
    bool chinese;           /* Chinese numeral characters in it */
    bool point;             /* a decimal point: ".", "．" (or 点) */
    bool lead_zero;         /* Arabic digits before any decimal point start with 0 ("0755") */
    bool magnitude;         /* a unit of 千 or more in it */
    bool just_one;          /* the single character 一 or 壹, mostly an article */
    uint32_t before, after; /* the characters around it; 0 at either end of the text */
};

/*
 * The numeral at pos, as tg_text_numeral_prefix reads it: true with *nm
 * filled, 点 counted as a decimal point when point_cn; false when none
 * starts there (*nm is then unspecified).
 */
bool tg_numeral_at(const struct tg_scan *in, size_t pos, bool point_cn, struct tg_numeral *nm);

/*
 * The end of the run of numeral characters at pos: digits, Chinese numeral
 * characters, "," "，" "." "．" between Arabic digits and, unless
 * stop_at_point, 点 between digits.  pos when none is there.
 */
size_t tg_numeral_extent(const struct tg_scan *in, size_t pos, bool stop_at_point);

/*
 * The numeral in the run of numeral characters [pos, e) (see
 * tg_numeral_extent): the longest start of it that tg_text_parse_number
 * accepts whole.  True with *nm filled, 点 counted as a decimal point when
 * point_cn; false when there is none or the run is longer than
 * TG_NUMERAL_MAX bytes.  Either way *end is where the run ends, at least
 * one character past pos.
 */
#define TG_NUMERAL_MAX 64
bool tg_numeral_in(const struct tg_scan *in, size_t pos, size_t e, bool point_cn,
                   struct tg_numeral *nm, size_t *end);

/*
 * A multiplier written after an Arabic numeral that ends at p: w/W (万) or
 * k/K (thousand) not followed by a letter or digit, or, after at most one
 * space, thousand, million or billion in any case.  Returns the factor and
 * sets *end past it; 0 when there is none.
 */
double tg_numeral_scale(const struct tg_scan *in, size_t p, size_t *end);

#endif
