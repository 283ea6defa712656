/*
 * text_int.h - private to the normalization and tokenizer half of the text
 * module: the ICU objects and scratch buffers a struct tg_text owns, shared
 * by normalize.c (which opens and closes them) and tokenize.c.
 */
#ifndef TG_TEXT_INT_H
#define TG_TEXT_INT_H

#include "text/text.h"

#include <unicode/ubrk.h>
#include <unicode/unorm2.h>
#include <unicode/utext.h>
#include <unicode/utrans.h>

/* The largest input tg_text_normalize and tg_text_tokenize accept.  NFKC may
 * grow a text sixfold in UTF-16 units, and ICU counts in int32_t. */
#define TG_TEXT_MAX_BYTES ((size_t)64 << 20)

/* A UTF-16 scratch buffer that only grows. */
struct tg_ubuf {
    UChar *p;
    int32_t cap;
};

struct tg_text {
    const UNormalizer2 *nfkc_cf; /* owned by ICU, never closed */
    UTransliterator *t2s;
    UBreakIterator *words; /* word break iterator, locale "zh", dictionary-based for CJK */
    UText ut;              /* reopened on each tokenized text, read by words */
    struct tg_ubuf a, b;
    /* An index of the transliterator's rules (BMP bitmaps), so that runs of
     * text no rule can change are skipped; see to_simplified(). */
    bool t2s_indexed;
    uint32_t t2s_key[0x10000 / 32];  /* in the left side of some rule */
    uint32_t t2s_mark[0x10000 / 32]; /* one character of each rule that changes text */
};

#endif
