/*
 * text.h - what trustgate reads in a customer's words: normalized text,
 * tokens for retrieval and classification, and entities (amounts of money
 * in Chinese and Arabic numerals, personal identifiers).
 *
 * Chinese comes first, English must work, Japanese must not break
 * anything.  All text is UTF-8.  One tokenizer serves the knowledge-base
 * index, the intent classifier and the explanations, so that a token means
 * the same thing everywhere.
 *
 * Threading: a struct tg_text holds ICU objects (transliterator, break
 * iterators) that are not thread-safe; use one per thread.  The entity
 * functions need no struct tg_text and are safe from any thread.
 */
#ifndef TG_TEXT_H
#define TG_TEXT_H

#include "core/core.h"

struct tg_text;

/* Open the ICU resources.  On failure returns TG_E_INTERNAL and a message in err. */
int tg_text_open(struct tg_text **out, char *err, size_t errlen);
void tg_text_close(struct tg_text *tx);

/* ------------------------------------------------------------ normalization */

enum {
    TG_NORM_T2S = 1 << 0, /* Traditional Chinese -> Simplified (ICU "Traditional-Simplified") */
};

/*
 * Normalize for matching: NFKC (full-width letters, digits and punctuation
 * become their ASCII forms), case folding, every run of whitespace becomes
 * one space, leading and trailing space removed; with TG_NORM_T2S,
 * Traditional characters become Simplified ones.  Appends to out (a
 * NUL-terminated UTF-8 string).  Invalid UTF-8 is replaced by U+FFFD.
 */
int tg_text_normalize(struct tg_text *tx, const char *in, size_t len, unsigned flags,
                      struct tg_buf *out);

/* ------------------------------------------------------------ tokens */

enum tg_token_kind {
    TG_TOK_WORD,    /* a Latin-script word (lower-cased, lightly stemmed with TG_TOKEN_STEM) */
    TG_TOK_NUMBER,  /* digits, with . , kept inside: "50000", "1.5" */
    TG_TOK_CJK_WORD, /* a Chinese or Japanese word from ICU word segmentation */
    TG_TOK_CJK_BIGRAM, /* two adjacent CJK characters (Lucene CJK analyzer style) */
    TG_TOK_CJK_CHAR, /* a CJK character standing alone (a run of length one) */
};

enum {
    TG_TOKEN_WORDS = 1 << 0,   /* ICU word segmentation of CJK runs -> TG_TOK_CJK_WORD */
    TG_TOKEN_BIGRAMS = 1 << 1, /* CJK character bigrams -> TG_TOK_CJK_BIGRAM / _CHAR */
    TG_TOKEN_STEM = 1 << 2,    /* light English stemming of TG_TOK_WORD */
    TG_TOKEN_NO_STOP = 1 << 3, /* no English function words (tg_text_is_stopword) */
    TG_TOKEN_DEFAULT = TG_TOKEN_WORDS | TG_TOKEN_BIGRAMS | TG_TOKEN_STEM,
};

/*
 * Whether the lower-case word w (n bytes) is an English function word:
 * the stop set of Lucene's EnglishAnalyzer and the question words and
 * pronouns a customer's question opens with ("how do i", "what is my").
 * They say how a question is asked, not what it is about.
 */
bool tg_text_is_stopword(const char *w, size_t n);

struct tg_token {
    const char *text;  /* the token's text (NUL-terminated), owned by the token list */
    uint32_t len;      /* bytes */
    uint32_t start;    /* byte offset of the token in the tokenized (normalized) text */
    uint32_t end;      /* byte offset just past it */
    enum tg_token_kind kind;
};

/* A list of tokens; owns the token texts.  Reuse it across calls with
 * tg_tokens_reset() to avoid allocation. */
struct tg_tokens {
    struct tg_token *v;
    size_t n, cap;
    struct tg_arena arena;
};

void tg_tokens_init(struct tg_tokens *t);
void tg_tokens_reset(struct tg_tokens *t);
void tg_tokens_free(struct tg_tokens *t);

/*
 * Tokenize text that tg_text_normalize produced (the tokenizer does not
 * normalize).  Latin words are split on Unicode word boundaries,
 * lower-cased (already, by normalization) and stemmed with TG_TOKEN_STEM;
 * numbers are kept whole; CJK runs give words and/or bigrams as the flags
 * say.  Punctuation and spaces give no tokens.  Tokens are appended to
 * out in text order (for one position, a word before its bigrams).
 */
int tg_text_tokenize(struct tg_text *tx, const char *text, size_t len, unsigned flags,
                     struct tg_tokens *out);

/* Light English stemming (plural -s/-es/-ies, -ing, -ed, -ly) of one
 * lower-case ASCII word, in place; returns the new length. */
size_t tg_text_stem(char *word, size_t len);

/* ------------------------------------------------------------ entities */

/* An amount of money found in the text. */
struct tg_money {
    uint32_t start, end; /* byte span in the text given to tg_entities_extract */
    double value_cny;    /* the amount in yuan (for a range: the upper bound) */
    bool approximate;    /* 大概, 左右, 约, 多, about, around, ... */
    bool range;          /* "5到8万", "5-8万" */
};

enum tg_pii_type {
    TG_PII_ID_CARD,   /* mainland resident ID, GB 11643-1999 checksum and birth date valid */
    TG_PII_MOBILE,    /* 1[3-9] + 9 digits, optionally +86 / 86 / 0086 before it */
    TG_PII_BANK_CARD, /* 16-19 digits passing the Luhn check */
    TG_PII_EMAIL,
    TG_PII_POLICY_NO, /* matches the configured policy-number pattern */
};

struct tg_pii {
    uint32_t start, end;
    enum tg_pii_type type;
};

struct tg_entities {
    struct tg_money *money;
    size_t n_money, cap_money;
    struct tg_pii *pii;
    size_t n_pii, cap_pii;
};

struct tg_entity_opts {
    /* Policy numbers: a PCRE2 pattern, e.g. "P[0-9]{10}", or NULL for none. */
    const char *policy_pattern;
};

void tg_entities_init(struct tg_entities *e);
void tg_entities_reset(struct tg_entities *e);
void tg_entities_free(struct tg_entities *e);

/*
 * Find money amounts and personal identifiers in text (the customer's
 * original words: full-width digits and Chinese numerals are understood
 * here, no normalization needed first).  Spans of different entities do
 * not overlap; an identifier is never also read as money, and dates,
 * phone numbers, policy numbers, percentages and ages are not money.
 * Returns TG_OK, TG_E_NOMEM, or TG_E_CONFIG for a bad policy pattern.
 */
int tg_entities_extract(const char *text, size_t len, const struct tg_entity_opts *opts,
                        struct tg_entities *out);

/* "id_card", "mobile", "bank_card", "email", "policy_no". */
const char *tg_pii_type_name(enum tg_pii_type t);

/*
 * The entities as JSON: {"money": [{"text", "value_cny", "start", "end",
 * "approximate", "range"}], "pii": [{"type", "text", "start", "end"}]}, with
 * text taken from the given text.  New reference; NULL on failure.
 */
json_t *tg_entities_to_json(const struct tg_entities *e, const char *text);

/* The largest money value, or -1 when there is none. */
double tg_entities_money_max(const struct tg_entities *e);

/*
 * Parse a Chinese or Arabic numeral expression that is the whole string:
 * "十二万五千", "两百", "伍万", "1.5", "12,500", "三千五" (= 3500).  Returns
 * TG_OK and the value, or TG_E_PARSE.  Used by tg_entities_extract and
 * exposed for tests and the policy language.
 */
int tg_text_parse_number(const char *s, size_t len, double *out);

/*
 * The focus of a question (n bytes of UTF-8; lower case for the English
 * words to count): its clauses (split at , . ; ! ? and their full-width
 * forms, 。 、) that ask something — a question
 * mark, a Chinese question word or particle (吗, 多少, 能不能, 咋, ...), an
 * English question word, Japanese か — joined in their order, else its
 * last clause.  Written to out (reset first); "" when the question is one
 * clause (the focus is all of it); NULL when out of memory.
 */
const char *tg_text_focus(const char *q, size_t n, struct tg_buf *out);

#endif
