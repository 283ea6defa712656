/*
 * test_httpdate.c - HTTP dates and Retry-After: RFC 9110's own examples in
 * all three forms, the two-digit year rule, leap days, values that must be
 * refused, and every day from 1970 to 2100 against a plain day count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/httpdate.h"

#include <stdio.h>
#include <string.h>

/* 2026-11-29 00:00:00 GMT */
#define NOW_MS INT64_C(1795910400000)

static int64_t date(const char *s)
{
    int64_t t = -42;
    if (tg_http_date_parse(s, strlen(s), NOW_MS, &t))
        return -1;
    return t;
}

static int64_t ra(const char *s, int64_t now_ms)
{
    return tg_http_retry_after_ms(s, strlen(s), now_ms);
}

static void test_rfc_examples_in_all_three_forms(void **state)
{
    (void)state;
    /* RFC 9110 §5.6.7 */
    assert_int_equal(date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    assert_int_equal(date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
    assert_int_equal(date("Sun Nov  6 08:49:37 1994"), 784111777);
    /* RFC 9110 §10.2.3 */
    assert_int_equal(date("Fri, 31 Dec 1999 23:59:59 GMT"), 946684799);
    assert_int_equal(ra("Fri, 31 Dec 1999 23:59:59 GMT", NOW_MS), 0); /* long past */
    assert_int_equal(ra("120", NOW_MS), 120000);
    /* names are matched without regard to case */
    assert_int_equal(date("sun, 06 NOV 1994 08:49:37 GMT"), 784111777);
    assert_int_equal(date("Thu Feb 29 00:00:00 2024"), 1709164800);
}

static void test_two_digit_years_are_never_far_ahead(void **state)
{
    (void)state;
    /* from 2026: 94 would be 2094, more than 50 years ahead, so 1994; 30 is 2030 */
    assert_int_equal(date("Tuesday, 01-Jan-30 00:00:00 GMT"), 1893456000);
    int64_t t = 0;
    const char *s = "Saturday, 06-Nov-94 08:49:37 GMT";
    /* seen from 2090 the same text is 2094 */
    assert_int_equal(tg_http_date_parse(s, strlen(s), INT64_C(3786825600000), &t), 0);
    assert_int_equal(t, 3939871777);
}

static void test_leap_days(void **state)
{
    (void)state;
    assert_int_equal(date("Thu, 29 Feb 2024 00:00:00 GMT"), 1709164800);
    assert_int_equal(date("Tue, 29 Feb 2000 00:00:00 GMT"), 951782400);
    assert_int_equal(date("Wed, 29 Feb 2023 00:00:00 GMT"), -1);
    assert_int_equal(date("Thu, 29 Feb 1900 00:00:00 GMT"), -1);
    assert_int_equal(date("Sun, 31 Apr 1994 00:00:00 GMT"), -1);
}

static void test_values_that_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "   ",
        "soon",
        "1.5",
        "-1",
        "+5",
        "120s",
        "12 0",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 GMT ok",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun,06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nvm 1994 08:49:37 GMT",
        "Sunny, 06 Nov 1994 08:49:37 GMT",
        "Sund, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 94",
        "Sun Nov 06 08:49:37 1994 GMT",
        "Sun, 06 Nov 0000 08:49:37 GMT",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ra(bad[i], NOW_MS) != -1)
            fail_msg("accepted: \"%s\"", bad[i]);
    int64_t t = 7;
    assert_int_equal(tg_http_date_parse("Sun", 3, NOW_MS, &t), -1);
    assert_int_equal(t, 7); /* untouched on failure */
}

static void test_retry_after_delays(void **state)
{
    (void)state;
    const int64_t at = INT64_C(784111777000);
    assert_int_equal(ra("Sun, 06 Nov 1994 08:49:37 GMT", at - 5000), 5000);
    assert_int_equal(ra("Sun, 06 Nov 1994 08:49:37 GMT", at - 1), 1);
    assert_int_equal(ra("Sun, 06 Nov 1994 08:49:37 GMT", at), 0);
    assert_int_equal(ra("Sun Nov  6 08:49:37 1994", at - 2500), 2500);
    assert_int_equal(ra(" \t30\r\n", NOW_MS), 30000);
    assert_int_equal(ra("0", NOW_MS), 0);
    assert_int_equal(ra("007", NOW_MS), 7000);
    assert_int_equal(ra(" Sun, 06 Nov 1994 08:49:37 GMT\r\n", at - 3000), 3000);
    /* a huge number saturates instead of overflowing */
    assert_int_equal(ra("99999999999999999999999999", NOW_MS), (INT64_MAX / 1000) * 1000);
    /* the length is honoured: nothing is read past it */
    assert_int_equal(tg_http_retry_after_ms("12345", 2, NOW_MS), 12000);
}

static void test_every_day_from_1970_to_2100(void **state)
{
    (void)state;
    static const char *const wd[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int y = 1970, m = 1, d = 1;
    for (int64_t n = 0; y <= 2100; n++) {
        char s[64];
        snprintf(s, sizeof(s), "%s, %02d %s %04d 23:59:58 GMT", wd[n % 7], d, mon[m - 1], y);
        if (date(s) != n * 86400 + 86398)
            fail_msg("%s: %lld", s, (long long)date(s));
        int len = m == 2 ? ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28)
                         : (m == 4 || m == 6 || m == 9 || m == 11 ? 30 : 31);
        if (++d > len) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_examples_in_all_three_forms),
        cmocka_unit_test(test_two_digit_years_are_never_far_ahead),
        cmocka_unit_test(test_leap_days),
        cmocka_unit_test(test_values_that_are_refused),
        cmocka_unit_test(test_retry_after_delays),
        cmocka_unit_test(test_every_day_from_1970_to_2100),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
