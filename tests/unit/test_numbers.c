/*
 * test_numbers.c - the numeral scanner (src/text/numbers.h, numbers.c,
 * numeral.c, scan.h) as its two users need it: the entity extractor reads
 * the numeral at a position and what it says (its last unit, a magnitude,
 * Chinese characters, a leading zero, integer digits); the grounding check
 * reads the run of numeral characters, the longest numeral in it and the
 * characters around it; both read w/k/thousand multipliers, word lists and
 * characters of a text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "text/numbers.h"
#include "text/text.h"

#include <math.h>
#include <string.h>

static struct tg_scan scan_of(const char *s)
{
    return (struct tg_scan){s, strlen(s)};
}

static bool near(double a, double b)
{
    return fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b));
}

/* ------------------------------------------------------------ characters */

static void test_chinese_characters(void **state)
{
    static const struct {
        const char *s;
        enum tg_cn_kind kind;
        double val;
    } cases[] = {
        {"零", TG_CN_ZERO, 0},  {"〇", TG_CN_ZERO, 0},   {"一", TG_CN_DIGIT, 1},
        {"两", TG_CN_DIGIT, 2}, {"貳", TG_CN_DIGIT, 2},  {"玖", TG_CN_DIGIT, 9},
        {"十", TG_CN_UNIT, 10}, {"佰", TG_CN_UNIT, 100}, {"千", TG_CN_UNIT, 1e3},
        {"萬", TG_CN_BIG, 1e4}, {"亿", TG_CN_BIG, 1e8},  {"点", TG_CN_POINT, 0},
        {"點", TG_CN_POINT, 0}, {"元", TG_CN_NONE, -1},  {"5", TG_CN_NONE, -1},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t cp;
        double v = -1;
        assert_true(tg_utf8_decode(cases[i].s, strlen(cases[i].s), &cp) > 0);
        assert_int_equal(tg_cn_char(cp, &v), cases[i].kind);
        assert_true(v == cases[i].val);
    }
    assert_true(tg_cn_unit(0x5341) == 10);  /* 十 */
    assert_true(tg_cn_unit(0x4EDF) == 1e3); /* 仟 */
    assert_true(tg_cn_unit(0x5104) == 1e8); /* 億 */
    assert_true(tg_cn_unit(0x4E94) == 0);   /* 五 */
    assert_true(tg_cn_unit(0x70B9) == 0);   /* 点 */
}

static void test_scan_characters(void **state)
{
    struct tg_scan in = {"a\xff五\xef\xbc\x95　x", 0};
    uint32_t cp;
    (void)state;
    in.len = strlen(in.t);
    assert_int_equal(tg_scan_char(&in, 0, &cp), 1);
    assert_int_equal(cp, 'a');
    assert_int_equal(tg_scan_char(&in, 1, &cp), 1); /* an invalid byte */
    assert_int_equal(cp, 0xFFFD);
    assert_int_equal(tg_scan_char(&in, 2, &cp), 3);
    assert_int_equal(cp, 0x4E94);
    assert_int_equal(tg_scan_char(&in, in.len, &cp), 0);
    assert_int_equal(cp, 0);
    assert_int_equal(tg_scan_char_before(&in, 5, &cp), 2);
    assert_int_equal(cp, 0x4E94);
    assert_false(tg_scan_digit_at(&in, 2));
    assert_true(tg_scan_digit_at(&in, 5)); /* full-width 5 */
    assert_false(tg_scan_digit_at(&in, in.len));
    assert_int_equal(tg_scan_skip_space(&in, 8), 11); /* the ideographic space */
    assert_int_equal(tg_scan_skip_space(&in, 11), 11);
    assert_int_equal(tg_scan_skip_space_back(&in, 11), 8);
    assert_int_equal(tg_scan_skip_space_back(&in, 8), 8);
}

/* ------------------------------------------------------------ word lists */

static void test_word_lists(void **state)
{
    static const struct tg_word cn[] = {TG_WORD("块钱", 0, 1), TG_WORD("块", 0, 2),
                                        TG_WORD("元", 1, 3), TG_WORDS_END};
    static const struct tg_word en[] = {TG_WORD("invest", 0, 1), TG_WORD("usd", 0, 2),
                                        TG_WORDS_END};
    struct tg_scan in = scan_of("5块钱 USD 7 investing RMBusd");
    const struct tg_word *w;
    (void)state;
    w = tg_word_at(&in, 1, cn);
    assert_non_null(w);
    assert_int_equal(w->val, 1); /* the longer word first */
    assert_int_equal(tg_word_len(w), 6);
    assert_null(tg_word_at(&in, 0, cn));
    assert_null(tg_word_at(&in, in.len, cn));
    assert_int_equal(tg_word_len(NULL), 0);
    w = tg_word_before(&in, 7, cn);
    assert_non_null(w);
    assert_int_equal(w->val, 1);
    assert_null(tg_word_before(&in, 0, cn));
    /* ASCII: any case, not followed (or preceded) by a letter */
    w = tg_ascii_word_at(&in, 8, en, false);
    assert_non_null(w);
    assert_int_equal(w->val, 2);
    assert_null(tg_ascii_word_at(&in, 14, en, false));
    assert_non_null(tg_ascii_word_at(&in, 14, en, true));
    assert_non_null(tg_ascii_word_before(&in, 11, en));
    assert_null(tg_ascii_word_before(&in, in.len, en)); /* "RMBusd": a letter before */
    assert_true(tg_ascii_eq_nocase("UsD", "usd", 3));
    assert_false(tg_ascii_eq_nocase("usx", "usd", 3));
}

/* ------------------------------------------------------------ numerals */

static void test_numeral_prefix(void **state)
{
    static const struct {
        const char *s;
        size_t n;
        double v;
    } cases[] = {
        {"三千五块", 9, 3500},
        {"3万5千", 8, 35000},
        {"1.5亿元", 6, 1.5e8},
        {"12,500元", 6, 12500},
        {"1,23", 1, 1},
        {"二〇二四年", 12, 2024},
        {"一万零五", 12, 10005},
        {"三点五万", 12, 35000},
        {"十二", 6, 12},
        {"５０００", 12, 5000},
        {"元", 0, 0},
        {"三四百", 6, 34},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double v = -1;
        size_t n = tg_text_numeral_prefix(cases[i].s, strlen(cases[i].s), &v);
        assert_int_equal(n, cases[i].n);
        if (n)
            assert_true(near(v, cases[i].v));
        else
            assert_true(v == -1);
    }
}

/* What the entity extractor reads of a numeral (点 as a Chinese character). */
static void test_numeral_at(void **state)
{
    struct tg_scan in = scan_of("约3点5万元，0755，十几万，12.50元，2千5");
    struct tg_numeral nm;
    (void)state;
    assert_false(tg_numeral_at(&in, 0, false, &nm)); /* 约 */
    assert_true(tg_numeral_at(&in, 3, false, &nm));  /* 3点5万 */
    assert_int_equal(nm.end, 3 + 8);
    assert_true(near(nm.v, 35000));
    assert_true(nm.arabic && nm.chinese && nm.magnitude);
    assert_false(nm.point);
    assert_int_equal(nm.int_digits, 2);
    assert_true(nm.last_unit == 1e4);
    assert_int_equal(nm.before, 0x7EA6); /* 约 */
    assert_int_equal(nm.after, 0x5143);  /* 元 */

    assert_true(tg_numeral_at(&in, 17, false, &nm)); /* 0755 */
    assert_true(nm.lead_zero);
    assert_int_equal(nm.int_digits, 4);
    assert_int_equal(nm.digits, 3);
    assert_false(nm.magnitude);

    assert_true(tg_numeral_at(&in, 24, false, &nm)); /* 十, before 几 */
    assert_true(nm.chinese && !nm.arabic);
    assert_true(nm.last_unit == 10);
    assert_false(nm.magnitude);

    assert_true(tg_numeral_at(&in, 36, false, &nm)); /* 12.50 */
    assert_true(near(nm.v, 12.5));
    assert_true(nm.point && !nm.chinese);
    assert_int_equal(nm.int_digits, 2);
    assert_int_equal(nm.digits, 4);

    assert_true(tg_numeral_at(&in, 47, false, &nm)); /* 2千5: a lone digit after 千 */
    assert_true(near(nm.v, 2500));
    assert_true(nm.magnitude);
    assert_true(nm.last_unit == 1); /* it ends with a digit */
    assert_int_equal(nm.after, 0);
    assert_false(tg_numeral_at(&in, in.len, false, &nm));
}

/* 点 in the description: a decimal point for the grounding check, a
 * Chinese character for money; the value is the same. */
static void test_numeral_point_cn(void **state)
{
    struct tg_scan in = scan_of("三点五万0755");
    struct tg_numeral nm;
    (void)state;
    assert_true(tg_numeral_at(&in, 0, true, &nm));
    assert_true(near(nm.v, 35755));
    assert_true(nm.point && nm.chinese);
    assert_false(nm.lead_zero); /* 0755 stands after the decimal point */
    assert_int_equal(nm.int_digits, 0);
    assert_true(tg_numeral_at(&in, 0, false, &nm));
    assert_true(near(nm.v, 35755));
    assert_true(!nm.point && nm.chinese);
    assert_true(nm.lead_zero);
    assert_int_equal(nm.int_digits, 4);

    in = scan_of("5.5万3点5");
    assert_true(tg_numeral_at(&in, 0, true, &nm));
    assert_true(near(nm.v, 55003.5));
    assert_int_equal(nm.int_digits, 1);
    assert_true(nm.point && nm.chinese); /* 万 */
    assert_true(tg_numeral_at(&in, 0, false, &nm));
    assert_int_equal(nm.int_digits, 1); /* "." came first */
    assert_true(nm.chinese);
}

/* What the grounding check reads: the run, then the longest numeral in it. */
static void test_numeral_extent_and_in(void **state)
{
    struct tg_scan in = scan_of("3点5万 9点半 1,234.5元 一 2024-03");
    struct tg_numeral nm;
    size_t end;
    (void)state;
    assert_int_equal(tg_numeral_extent(&in, 0, true), 1);    /* stops at 点 */
    assert_int_equal(tg_numeral_extent(&in, 0, false), 8);   /* 点 between digits */
    assert_int_equal(tg_numeral_extent(&in, 9, false), 10);  /* 点 before 半: no */
    assert_int_equal(tg_numeral_extent(&in, 17, false), 24); /* 1,234.5 */
    assert_int_equal(tg_numeral_extent(&in, 8, false), 8);   /* a space */
    assert_int_equal(tg_numeral_extent(&in, 32, false), 36); /* 2024, not -03 */

    assert_true(tg_numeral_in(&in, 0, tg_numeral_extent(&in, 0, false), true, &nm, &end));
    assert_true(near(nm.v, 35000));
    assert_int_equal(end, 8);
    assert_true(tg_numeral_in(&in, 17, 24, true, &nm, &end));
    assert_true(near(nm.v, 1234.5));
    assert_true(nm.point && nm.arabic && !nm.chinese);
    assert_int_equal(nm.int_digits, 4);
    assert_int_equal(nm.digits, 5);
    assert_int_equal(nm.after, 0x5143); /* 元 */
    assert_true(tg_numeral_in(&in, 28, 31, true, &nm, &end));
    assert_true(nm.just_one);
    assert_true(nm.chinese);
}

static void test_numeral_in_longest(void **state)
{
    /* "三四百" is no numeral, but its start "三四" is, read digit by digit. */
    struct tg_scan in = scan_of("三四百人");
    char longrun[TG_NUMERAL_MAX + 8];
    struct tg_numeral nm;
    size_t end;
    (void)state;
    assert_true(tg_numeral_in(&in, 0, 9, true, &nm, &end));
    assert_int_equal(nm.end, 6);
    assert_true(near(nm.v, 34));
    assert_int_equal(end, 9);
    /* no numeral in an empty run: end is still one character on */
    assert_false(tg_numeral_in(&in, 9, 9, true, &nm, &end));
    assert_int_equal(end, 12);
    /* a run longer than TG_NUMERAL_MAX is no quantity */
    memset(longrun, '7', sizeof(longrun) - 1);
    longrun[sizeof(longrun) - 1] = 0;
    in = scan_of(longrun);
    assert_false(tg_numeral_in(&in, 0, in.len, true, &nm, &end));
    assert_int_equal(end, in.len);
}

static void test_numeral_scale(void **state)
{
    static const struct {
        const char *s;
        size_t p;
        double f;
        size_t end;
    } cases[] = {
        {"5w", 1, 1e4, 2},       {"5K", 1, 1e3, 2},
        {"5k元", 1, 1e3, 2},     {"5kg", 1, 0, 0},
        {"5k2", 1, 0, 0},        {"5 thousand", 1, 1e3, 10},
        {"5Million", 1, 1e6, 8}, {"5\tbillion", 1, 1e9, 9},
        {"5 millions", 1, 0, 0}, {"5  million", 1, 0, 0},
        {"5", 1, 0, 0},          {"5 kilo", 1, 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tg_scan in = scan_of(cases[i].s);
        size_t end = 0;
        assert_true(tg_numeral_scale(&in, cases[i].p, &end) == cases[i].f);
        assert_int_equal(end, cases[i].end);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chinese_characters),
        cmocka_unit_test(test_scan_characters),
        cmocka_unit_test(test_word_lists),
        cmocka_unit_test(test_numeral_prefix),
        cmocka_unit_test(test_numeral_at),
        cmocka_unit_test(test_numeral_point_cn),
        cmocka_unit_test(test_numeral_extent_and_in),
        cmocka_unit_test(test_numeral_in_longest),
        cmocka_unit_test(test_numeral_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
