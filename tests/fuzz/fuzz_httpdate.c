/*
 * fuzz_httpdate.c - Retry-After values and HTTP dates (core/httpdate.c) on
 * arbitrary bytes.  It must never read out of bounds, and:
 *   - the answer of tg_http_retry_after_ms is -1 or a delay >= 0;
 *   - an HTTP date that tg_http_date_parse accepts lies in the years 1 to
 *     9999 (one second more for a leap second), and as a Retry-After value
 *     it asks for the wait until then, or 0 once it has passed;
 *   - that date written back as an IMF-fixdate parses to the same second;
 *   - any accepted value's wait, written as the IMF-fixdate of the moment
 *     it ends, asks for the same wait within one second (dates have whole
 *     seconds, the clock has milliseconds).
 * The clock is fixed and not on a whole second, so the rounding is seen.
 */
#include "fuzz.h"

#include "core/httpdate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2026-11-29 00:00:00.123 GMT */
#define NOW_MS INT64_C(1795910400123)
/* 0001-01-01 and 10000-01-01 00:00:00 GMT, in Unix seconds */
#define FIRST_S INT64_C(-62135596800)
#define END_S INT64_C(253402300800)

/* Unix seconds (FIRST_S <= secs < END_S) as an IMF-fixdate; its length. */
static size_t imf_fixdate(int64_t secs, char *buf, size_t len)
{
    static const char *const wdays[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    /* civil date from a day count, years counted from March (leap day last) */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1;
    int64_t mon = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (mon <= 2);
    int64_t wd = ((days % 7) + 7) % 7; /* 1970-01-01 was a Thursday */
    int n = snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[wd], (int)day,
                     months[mon - 1], (int)year, (int)(sod / 3600), (int)(sod / 60 % 60),
                     (int)(sod % 60));
    if (n < 0 || (size_t)n >= len)
        abort();
    return (size_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    char fix[64];
    size_t n;

    int64_t wait = tg_http_retry_after_ms(text, size, NOW_MS);
    if (wait < -1)
        abort();

    int64_t at, again;
    if (tg_http_date_parse(text, size, NOW_MS, &at) == 0) {
        if (at < FIRST_S || at > END_S)
            abort();
        if (wait != (at * 1000 > NOW_MS ? at * 1000 - NOW_MS : 0))
            abort();
        if (at < END_S) {
            n = imf_fixdate(at, fix, sizeof(fix));
            if (tg_http_date_parse(fix, n, NOW_MS, &again) != 0 || again != at)
                abort();
        }
    }

    /* the moment the wait ends, unless it ends past the year 9999 */
    if (wait > 0 && wait < END_S * 1000 - NOW_MS) {
        n = imf_fixdate((NOW_MS + wait) / 1000, fix, sizeof(fix));
        again = tg_http_retry_after_ms(fix, n, NOW_MS);
        if (again < 0 || again > wait || wait - again >= 1000)
            abort();
    }
    return 0;
}
