/*
 * httpdate.h - HTTP dates (RFC 9110 §5.6.7) and the Retry-After field
 * (RFC 9110 §10.2.3), parsed without the C library's locale or time zone.
 *
 * An HTTP date comes in three forms, all in GMT: the preferred IMF-fixdate
 * "Sun, 06 Nov 1994 08:49:37 GMT", and the obsolete RFC 850 form "Sunday,
 * 06-Nov-94 08:49:37 GMT" and asctime form "Sun Nov  6 08:49:37 1994",
 * which recipients must still accept.  Day and month names are matched
 * without regard to case; the day name is checked to be one, not checked
 * against the date.  Pure functions: no allocation, no global state.
 */
#ifndef TG_HTTPDATE_H
#define TG_HTTPDATE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse an HTTP date of len bytes at s (no surrounding space) into Unix
 * seconds in *out.  now_unix_ms places an RFC 850 two-digit year: it is
 * the year in the current century unless that is more than 50 years ahead
 * of now, then the century before.  Returns 0, or -1 (and *out untouched)
 * when s is not one of the three forms or names an impossible time.
 */
int tg_http_date_parse(const char *s, size_t len, int64_t now_unix_ms, int64_t *out);

/*
 * The wait a Retry-After field value asks for, in milliseconds from
 * now_unix_ms: delay-seconds ("120") or an HTTP date.  Space, tabs and a
 * trailing CR LF around the value are ignored.  Returns the delay (a huge
 * delay-seconds saturates near INT64_MAX / 1000 seconds), 0 for a date
 * that is not in the future, or -1 when the value is neither form.
 */
int64_t tg_http_retry_after_ms(const char *value, size_t len, int64_t now_unix_ms);

#endif
