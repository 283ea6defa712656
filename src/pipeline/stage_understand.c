/*
 * stage_understand.c - what the customer said: language, entities
 * (amounts, identifiers) and intent with its confidence.
 *
 * For now this stage detects the language from the script of the text and
 * leaves entities empty and the intent unclassified; the normalizer, the
 * entity extractors and the classifier fill it in as they land.
 */
#include "pipeline/pipeline.h"

#include <string.h>

/* Decode one UTF-8 code point; returns its length (1 for invalid bytes). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80 || n < 2) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xE0) == 0xC0) {
        *cp = (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
        return 2;
    }
    if ((s[0] & 0xF0) == 0xE0 && n >= 3) {
        *cp = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
        return 3;
    }
    if ((s[0] & 0xF8) == 0xF0 && n >= 4) {
        *cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
              (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
        return 4;
    }
    *cp = 0xFFFD;
    return 1;
}

/* "ja" if any kana, else "zh" if any Han, else "en". */
static const char *detect_language(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text);
    bool han = false;
    while (n) {
        uint32_t cp;
        size_t l = utf8_next(s, n, &cp);
        if ((cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x31F0 && cp <= 0x31FF))
            return "ja";
        if ((cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF))
            han = true;
        s += l;
        n -= l;
    }
    return han ? "zh" : "en";
}

enum tg_stage_rc tg_stage_understand(struct tg_turn *t)
{
    t->language = detect_language(t->user_text);
    t->entities = json_pack("{s:[], s:[]}", "money", "pii");
    t->intent = "unclassified";
    t->intent_confidence = 0.0;
    if (!t->entities) {
        tg_turn_fail(t, TG_E_NOMEM, 500, "internal_error", NULL, "out of memory");
        return TG_DONE;
    }
    return TG_NEXT;
}
