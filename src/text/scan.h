/*
 * scan.h - a cursor over a UTF-8 text for the scanners that read numbers,
 * amounts and quantities out of it (text/entities.c, policy/grounding.c,
 * text/numbers.c): characters forward and backward, spaces, and word lists
 * matched at or before a position.
 *
 * Positions are byte offsets into the text; nothing here allocates or
 * writes.  Everything is inline because a scan calls it for nearly every
 * character.
 */
#ifndef TG_TEXT_SCAN_H
#define TG_TEXT_SCAN_H

#include "core/core.h"
#include "text/chars.h"

#include <string.h>

/* A text being scanned: bytes [t, t + len), not necessarily NUL-terminated. */
struct tg_scan {
    const char *t;
    size_t len;
};

/*
 * The character at pos and its length; an invalid byte is one U+FFFD; at
 * or past the end, 0 with *cp = 0.
 */
static inline size_t tg_scan_char(const struct tg_scan *in, size_t pos, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)in->t + pos;
    size_t n;
    *cp = 0;
    if (pos >= in->len)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    /* Most of a Chinese text: three bytes E1..EC, which need no range check. */
    if (s[0] >= 0xE1 && s[0] <= 0xEC && in->len - pos >= 3 && (s[1] & 0xC0) == 0x80 &&
        (s[2] & 0xC0) == 0x80) {
        *cp = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
        return 3;
    }
    n = tg_utf8_decode(s, in->len - pos, cp);
    if (n == 0) {
        *cp = 0xFFFD;
        n = 1;
    }
    return n;
}

/* The character ending at pos (0 when pos is 0); returns where it starts. */
static inline size_t tg_scan_char_before(const struct tg_scan *in, size_t pos, uint32_t *cp)
{
    return tg_utf8_prev(in->t, pos, cp);
}

/* Whether an ASCII or full-width digit stands at pos. */
static inline bool tg_scan_digit_at(const struct tg_scan *in, size_t pos)
{
    uint32_t cp;
    unsigned char c = pos < in->len ? (unsigned char)in->t[pos] : 0;
    if (c >= '0' && c <= '9')
        return true;
    /* Full-width digits are EF BC 90..99; nothing else needs decoding. */
    return c == 0xEF && tg_scan_char(in, pos, &cp) && tg_digit_value(cp) >= 0;
}

/* Past at most one space character (tg_space_char) at pos. */
static inline size_t tg_scan_skip_space(const struct tg_scan *in, size_t pos)
{
    uint32_t cp;
    size_t n = tg_scan_char(in, pos, &cp);
    return n && tg_space_char(cp) ? pos + n : pos;
}

/* Back over at most one space character ending at pos. */
static inline size_t tg_scan_skip_space_back(const struct tg_scan *in, size_t pos)
{
    uint32_t cp;
    size_t s = tg_scan_char_before(in, pos, &cp);
    return s < pos && tg_space_char(cp) ? s : pos;
}

/* ------------------------------------------------------------ word lists */

/*
 * One entry of a word list: the word, its length, and what it means to the
 * list's reader (a unit, a value, a kind of word).  A list ends with
 * TG_WORDS_END; the first match wins, so longer words stand before their
 * prefixes.
 */
struct tg_word {
    const char *s;
    size_t n;
    uint32_t val;
    uint8_t kind;
};
#define TG_WORD(lit, kind, val)                                                                    \
    {                                                                                              \
        lit, sizeof(lit) - 1, val, kind                                                            \
    }
#define TG_WORDS_END                                                                               \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

/* The length of a matched word, 0 for none. */
static inline size_t tg_word_len(const struct tg_word *w)
{
    return w ? w->n : 0;
}

/* An ASCII letter in lower case; any other byte as it is. */
static inline unsigned char tg_ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Whether a and b agree in their first n bytes, ASCII letters in any case. */
static inline bool tg_ascii_eq_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tg_ascii_lower((unsigned char)a[i]) != tg_ascii_lower((unsigned char)b[i]))
            return false;
    return true;
}

/* The first word of list (exact bytes) starting at pos, else NULL. */
static inline const struct tg_word *tg_word_at(const struct tg_scan *in, size_t pos,
                                               const struct tg_word *list)
{
    const char *t = in->t + pos;
    size_t left = pos < in->len ? in->len - pos : 0;
    for (; left && list->s; list++)
        if (list->n <= left && t[0] == list->s[0] && t[list->n - 1] == list->s[list->n - 1] &&
            memcmp(t, list->s, list->n) == 0)
            return list;
    return NULL;
}

/* The first word of list ending at pos, else NULL. */
static inline const struct tg_word *tg_word_before(const struct tg_scan *in, size_t pos,
                                                   const struct tg_word *list)
{
    for (; pos && list->s; list++)
        if (list->n <= pos && in->t[pos - 1] == list->s[list->n - 1] &&
            memcmp(in->t + pos - list->n, list->s, list->n) == 0)
            return list;
    return NULL;
}

/*
 * The first ASCII word of list, in any case, starting at pos and not
 * followed by a letter; with prefix_ok a word that merely starts there
 * counts too ("invest" in "investing").  Else NULL.
 */
static inline const struct tg_word *tg_ascii_word_at(const struct tg_scan *in, size_t pos,
                                                     const struct tg_word *list, bool prefix_ok)
{
    size_t left = pos < in->len ? in->len - pos : 0;
    const char *t = in->t + pos;
    unsigned char c0 = left ? tg_ascii_lower((unsigned char)t[0]) : 0;
    for (; left && list->s; list++)
        if (list->n <= left && c0 == tg_ascii_lower((unsigned char)list->s[0]) &&
            tg_ascii_eq_nocase(t, list->s, list->n) &&
            (prefix_ok || list->n == left || !tg_ascii_alpha((unsigned char)t[list->n])))
            return list;
    return NULL;
}

/* The first ASCII word of list, in any case, ending at pos and not preceded
 * by a letter, else NULL. */
static inline const struct tg_word *tg_ascii_word_before(const struct tg_scan *in, size_t pos,
                                                         const struct tg_word *list)
{
    for (; pos && list->s; list++)
        if (list->n <= pos &&
            tg_ascii_lower((unsigned char)in->t[pos - 1]) ==
                tg_ascii_lower((unsigned char)list->s[list->n - 1]) &&
            tg_ascii_eq_nocase(in->t + pos - list->n, list->s, list->n) &&
            (pos == list->n || !tg_ascii_alpha((unsigned char)in->t[pos - list->n - 1])))
            return list;
    return NULL;
}

#endif
