/*
 * chars.h - character classes shared by the scanners that read numbers and
 * amounts out of text (text/entities.c, policy/grounding.c).
 */
#ifndef TG_TEXT_CHARS_H
#define TG_TEXT_CHARS_H

#include <stdbool.h>
#include <stdint.h>

static inline bool tg_ascii_alpha(uint32_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool tg_ascii_alnum(uint32_t c)
{
    return tg_ascii_alpha(c) || (c >= '0' && c <= '9');
}

/* An ASCII or full-width (U+FF10..FF19) digit's value, else -1. */
static inline int tg_digit_value(uint32_t c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 0xFF10 && c <= 0xFF19)
        return (int)(c - 0xFF10);
    return -1;
}

/* A space inside a number phrase: ASCII space, tab, ideographic space, NBSP. */
static inline bool tg_space_char(uint32_t c)
{
    return c == ' ' || c == '\t' || c == 0x3000 || c == 0xA0;
}

#endif
