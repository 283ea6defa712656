/*
 * lang.h - the language a customer writes in, and Chinese in the script
 * the customer reads.
 *
 * Detection is by script, which is what a reply must match: kana makes
 * Japanese; Han characters outnumbering Latin words make Chinese, which is
 * Traditional (zh-Hant) when it holds characters that only Traditional
 * writing uses (those ICU's Traditional-Simplified transliterator changes),
 * else Simplified (zh-Hans); otherwise English.  Mixed messages ("我的debit
 * card丢了") go by the majority.
 */
#ifndef TG_TEXT_LANG_H
#define TG_TEXT_LANG_H

#include "core/core.h"
#include "text/text.h"

enum tg_lang { TG_LANG_ZH_HANS, TG_LANG_ZH_HANT, TG_LANG_EN, TG_LANG_JA };

/* The language of s (len bytes of UTF-8); tx gives the Traditional
 * characters (NULL: Chinese is always zh-Hans). */
enum tg_lang tg_lang_detect(const struct tg_text *tx, const char *s, size_t len);
/* "zh-Hans", "zh-Hant", "en", "ja". */
const char *tg_lang_tag(enum tg_lang l);
/* Whether a reply in `reply` can be read by a customer writing `customer`:
 * the same script family (Chinese in either script for Chinese; Japanese
 * reads Chinese characters too, but not a reply without them). */
bool tg_lang_readable(enum tg_lang customer, enum tg_lang reply);
/* Whether the reply text s is written for a customer writing `customer`:
 * an English customer's reply is not mostly Chinese characters; a Chinese
 * or Japanese customer's reply has some of their characters, or is too
 * short to be in any language (fewer than three Latin words). */
bool tg_lang_reads(const struct tg_text *tx, enum tg_lang customer, const char *s, size_t len);

/* Simplified Chinese rewritten in Traditional characters (ICU's
 * Simplified-Traditional transliterator).  Not thread-safe: one per thread. */
struct tg_s2t;
int tg_s2t_open(struct tg_s2t **out, char *err, size_t errlen);
void tg_s2t_close(struct tg_s2t *c);
/* Append s converted to out; TG_OK, TG_E_NOMEM or TG_E_INVAL (bad UTF-8, too long). */
int tg_s2t_convert(struct tg_s2t *c, const char *s, size_t len, struct tg_buf *out);

#endif
