/*
 * httpdate.c - HTTP dates and Retry-After.  See httpdate.h.
 *
 * The date is read through a cursor, one grammar per form, and turned into
 * Unix seconds by counting days (no timegm, no strptime: both depend on
 * the process's locale or time zone, and a server thread must not).
 */
#include "core/httpdate.h"

#include <stdbool.h>

struct cur {
    const char *p, *end;
};

struct civil {
    int year, mon, day, hour, min, sec;
};

static const char *const day_short[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const day_long[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                       "Friday", "Saturday", "Sunday"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static bool is_alpha(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Consume exactly the characters of lit. */
static bool take(struct cur *c, const char *lit)
{
    const char *p = c->p;
    for (; *lit; lit++, p++)
        if (p >= c->end || *p != *lit)
            return false;
    c->p = p;
    return true;
}

/* Consume exactly n decimal digits into *v. */
static bool digits(struct cur *c, int n, int *v)
{
    int x = 0;
    if (c->end - c->p < n)
        return false;
    for (int i = 0; i < n; i++) {
        char ch = c->p[i];
        if (ch < '0' || ch > '9')
            return false;
        x = x * 10 + (ch - '0');
    }
    c->p += n;
    *v = x;
    return true;
}

/* Consume a run of letters equal, ignoring case, to one of the n names;
 * its index in *idx. */
static bool name(struct cur *c, const char *const *names, int n, int *idx)
{
    size_t len = 0;
    while (c->p + len < c->end && is_alpha(c->p[len]))
        len++;
    for (int i = 0; i < n; i++) {
        size_t k = 0;
        while (k < len && names[i][k] && lower(c->p[k]) == lower(names[i][k]))
            k++;
        if (k == len && !names[i][k]) {
            c->p += len;
            *idx = i;
            return true;
        }
    }
    return false;
}

/* time-of-day = hour ":" minute ":" second */
static bool time_of_day(struct cur *c, struct civil *t)
{
    return digits(c, 2, &t->hour) && take(c, ":") && digits(c, 2, &t->min) && take(c, ":") &&
           digits(c, 2, &t->sec);
}

static bool month(struct cur *c, struct civil *t)
{
    int m;
    if (!name(c, months, 12, &m))
        return false;
    t->mon = m + 1;
    return true;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/*
 * Days from 1970-01-01 to y-m-d (y >= 1).  Counting years from March puts
 * the leap day at the end of the counted year, so a month's first day is
 * a fixed function of the month: (153 * m + 2) / 5 days into the year.
 */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t yy = m <= 2 ? y - 1 : y;
    int64_t mm = m <= 2 ? m + 9 : m - 3;
    int64_t before = 365 * yy + yy / 4 - yy / 100 + yy / 400;
    /* 719468: the same count for 1970-01-01 */
    return before + (153 * mm + 2) / 5 + d - 1 - 719468;
}

static int64_t year_of(int64_t unix_ms)
{
    int64_t days = unix_ms / 86400000;
    if (unix_ms < 0 && unix_ms % 86400000)
        days--;
    int64_t y = 1970 + days / 366;
    if (y < 1)
        y = 1;
    while (days_from_civil(y + 1, 1, 1) <= days)
        y++;
    return y;
}

/* IMF-fixdate after the day name: ", " DD " " Mon " " YYYY " " hh:mm:ss " GMT" */
static bool imf_fixdate(struct cur *c, struct civil *t)
{
    return take(c, ", ") && digits(c, 2, &t->day) && take(c, " ") && month(c, t) && take(c, " ") &&
           digits(c, 4, &t->year) && take(c, " ") && time_of_day(c, t) && take(c, " GMT");
}

/* rfc850-date after the day name: ", " DD "-" Mon "-" YY " " hh:mm:ss " GMT" */
static bool rfc850_date(struct cur *c, struct civil *t, int64_t now_unix_ms)
{
    int yy;
    if (!(take(c, ", ") && digits(c, 2, &t->day) && take(c, "-") && month(c, t) && take(c, "-") &&
          digits(c, 2, &yy) && take(c, " ") && time_of_day(c, t) && take(c, " GMT")))
        return false;
    int64_t now_year = year_of(now_unix_ms);
    int64_t y = now_year - now_year % 100 + yy;
    if (y > now_year + 50)
        y -= 100; /* RFC 9110: never read as more than 50 years ahead */
    t->year = (int)y;
    return true;
}

/* asctime-date after the day name: " " Mon " " (DD | " " D) " " hh:mm:ss " " YYYY */
static bool asctime_date(struct cur *c, struct civil *t)
{
    if (!(take(c, " ") && month(c, t) && take(c, " ")))
        return false;
    if (!(take(c, " ") ? digits(c, 1, &t->day) : digits(c, 2, &t->day)))
        return false;
    return take(c, " ") && time_of_day(c, t) && take(c, " ") && digits(c, 4, &t->year);
}

int tg_http_date_parse(const char *s, size_t len, int64_t now_unix_ms, int64_t *out)
{
    struct cur c = {s, s + len};
    struct civil t = {0};
    int wd;
    bool ok;
    if (name(&c, day_short, 7, &wd))
        ok = c.p < c.end && *c.p == ',' ? imf_fixdate(&c, &t) : asctime_date(&c, &t);
    else if (name(&c, day_long, 7, &wd))
        ok = rfc850_date(&c, &t, now_unix_ms);
    else
        ok = false;
    if (!ok || c.p != c.end || t.year < 1 || t.day < 1 || t.day > month_days(t.year, t.mon) ||
        t.hour > 23 || t.min > 59 || t.sec > 60)
        return -1;
    *out = days_from_civil(t.year, t.mon, t.day) * 86400 + t.hour * 3600 + t.min * 60 + t.sec;
    return 0;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

int64_t tg_http_retry_after_ms(const char *value, size_t len, int64_t now_unix_ms)
{
    const char *p = value, *end = value + len;
    while (p < end && is_space(*p))
        p++;
    while (end > p && is_space(end[-1]))
        end--;
    if (p == end)
        return -1;
    if (*p >= '0' && *p <= '9') {
        /* delay-seconds = 1*DIGIT */
        const int64_t max_s = INT64_MAX / 1000;
        int64_t secs = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            if (secs <= (max_s - 9) / 10)
                secs = secs * 10 + (*p - '0');
            else
                secs = max_s;
        }
        return secs * 1000;
    }
    int64_t at;
    if (tg_http_date_parse(p, (size_t)(end - p), now_unix_ms, &at))
        return -1;
    if (at > INT64_MAX / 1000 || at * 1000 <= now_unix_ms)
        return 0;
    return at * 1000 - now_unix_ms;
}
