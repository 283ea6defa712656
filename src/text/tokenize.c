/*
 * tokenize.c - tokens of normalized text and the light English stemmer.
 *
 * One left-to-right pass over the UTF-8 bytes classifies code points: Han,
 * Hiragana and Katakana form CJK runs; letters and digits form words and
 * numbers (a subset of the Unicode word-boundary rules of UAX #29: "."
 * between digits, "," before a group of exactly three digits, an apostrophe
 * between letters); everything else separates.  CJK runs get ICU dictionary
 * word segmentation and/or overlapping bigrams.  Token texts live in the
 * token list's arena, so a call makes no allocation per token.  See
 * docs/internals/text.md for the rules and their limits.
 */
#include "text/text_int.h"

#include <string.h>

#include <unicode/uchar.h>
#include <unicode/uscript.h>
#include <unicode/utf8.h>

enum cls { C_SEP, C_LETTER, C_DIGIT, C_MARK, C_CJK };

struct tok {
    struct tg_text *tx;
    const uint8_t *s;
    int32_t len;
    unsigned flags;
    struct tg_tokens *out;
    bool words_ready; /* the break iterator has been given this text */
};

static enum cls classify(UChar32 c)
{
    if (c < 0x80) {
        if (c < 0)
            return C_SEP; /* an ill-formed byte */
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
            return C_LETTER;
        return c >= '0' && c <= '9' ? C_DIGIT : C_SEP;
    }
    if (c >= 0x4E00 && c <= 0x9FFF)
        return C_CJK;
    /* Kana block, with ー; without the double hyphen ゠ and the middle dot ・. */
    if (c >= 0x3040 && c <= 0x30FF)
        return c == 0x30A0 || c == 0x30FB ? C_SEP : C_CJK;
    UErrorCode st = U_ZERO_ERROR;
    UScriptCode sc = uscript_getScript(c, &st);
    if (sc == USCRIPT_HAN || sc == USCRIPT_HIRAGANA || sc == USCRIPT_KATAKANA)
        return C_CJK;
    if (u_isdigit(c))
        return C_DIGIT;
    if (u_isalpha(c))
        return C_LETTER;
    int8_t t = u_charType(c);
    if (t == U_NON_SPACING_MARK || t == U_COMBINING_SPACING_MARK || t == U_ENCLOSING_MARK)
        return C_MARK;
    return C_SEP;
}

static bool is_ascii_digit(const uint8_t *s, int32_t i, int32_t len)
{
    return i < len && s[i] >= '0' && s[i] <= '9';
}

/* A letter starts at byte i. */
static bool letter_at(const uint8_t *s, int32_t i, int32_t len)
{
    UChar32 c;
    if (i >= len)
        return false;
    U8_NEXT(s, i, len, c);
    return classify(c) == C_LETTER;
}

void tg_tokens_init(struct tg_tokens *t)
{
    t->v = NULL;
    t->n = t->cap = 0;
    tg_arena_init(&t->arena, 4096);
}

void tg_tokens_reset(struct tg_tokens *t)
{
    /* Core's arena cannot rewind, so its blocks go back; the token array
     * stays, and tg_text_tokenize sizes the next block to its text. */
    tg_arena_free(&t->arena);
    t->n = 0;
}

void tg_tokens_free(struct tg_tokens *t)
{
    tg_arena_free(&t->arena);
    tg_free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}

/* Append a token whose text d (d_len bytes, NUL-terminated) is already in the arena. */
static int push_owned(struct tg_tokens *t, const char *d, size_t d_len, int32_t start, int32_t end,
                      enum tg_token_kind kind)
{
    int rc = tg_grow(&t->v, &t->cap, t->n, sizeof(*t->v), 64);
    if (rc)
        return rc;
    struct tg_token *k = &t->v[t->n++];
    k->text = d;
    k->len = (uint32_t)d_len;
    k->start = (uint32_t)start;
    k->end = (uint32_t)end;
    k->kind = kind;
    return TG_OK;
}

/* Append a token whose text is the span itself. */
static int push_span(struct tok *k, int32_t start, int32_t end, enum tg_token_kind kind)
{
    size_t n = (size_t)(end - start);
    char *d = tg_arena_strndup(&k->out->arena, (const char *)k->s + start, n);
    if (!d)
        return TG_E_NOMEM;
    return push_owned(k->out, d, n, start, end, kind);
}

/* End of the word or number that starts at byte start; *letters tells whether it has letters. */
static int32_t scan_word(const uint8_t *s, int32_t len, int32_t start, bool *letters)
{
    int32_t pos = start;
    enum cls prev = C_SEP;
    *letters = false;
    while (pos < len) {
        int32_t cs = pos;
        UChar32 c;
        U8_NEXT(s, pos, len, c);
        enum cls cl = classify(c);
        if (cl == C_LETTER || cl == C_DIGIT || (cl == C_MARK && prev != C_SEP)) {
            *letters = *letters || cl == C_LETTER;
            if (cl != C_MARK)
                prev = cl;
            continue;
        }
        bool prev_digit = cs > start && s[cs - 1] >= '0' && s[cs - 1] <= '9';
        if (c == '.' && prev_digit && is_ascii_digit(s, pos, len))
            continue;
        /* A thousands separator: exactly three digits follow. */
        if (c == ',' && prev_digit && is_ascii_digit(s, pos, len) &&
            is_ascii_digit(s, pos + 1, len) && is_ascii_digit(s, pos + 2, len) &&
            !is_ascii_digit(s, pos + 3, len))
            continue;
        if ((c == '\'' || c == 0x2019) && prev == C_LETTER && letter_at(s, pos, len))
            continue;
        pos = cs;
        break;
    }
    return pos;
}

bool tg_text_is_stopword(const char *w, size_t n)
{
    static const char *const stop[] = {
        "a",    "an",   "and",   "are",  "as",    "at",    "be",    "but",  "by",   "for",
        "if",   "in",   "into",  "is",   "it",    "no",    "not",   "of",   "on",   "or",
        "such", "that", "the",   "their", "then", "there", "these", "they", "this", "to",
        "was",  "will", "with",  "what", "how",   "do",    "does",  "i",    "my",   "me",
        "can",  "you",  "your",  "when", "where", "which", "who",   "why",
    };
    if (n == 0 || n > 5) /* the longest is five letters */
        return false;
    for (size_t i = 0; i < sizeof(stop) / sizeof(stop[0]); i++)
        if (stop[i][0] == w[0] && strlen(stop[i]) == n && memcmp(stop[i], w, n) == 0)
            return true;
    return false;
}

static int emit_word(struct tok *k, int32_t start, int32_t end, bool letters)
{
    const uint8_t *s = k->s;
    char *d = tg_arena_alloc(&k->out->arena, (size_t)(end - start) + 1);
    if (!d)
        return TG_E_NOMEM;
    size_t n = 0;
    for (int32_t i = start; i < end; i++) {
        if (s[i] == ',')
            continue;
        /* U+2019 RIGHT SINGLE QUOTATION MARK, as the apostrophe it is here. */
        if (s[i] == 0xE2 && i + 2 < end && s[i + 1] == 0x80 && s[i + 2] == 0x99) {
            d[n++] = '\'';
            i += 2;
            continue;
        }
        d[n++] = (char)s[i];
    }
    if (letters && n > 2 && d[n - 2] == '\'' && d[n - 1] == 's')
        n -= 2;
    if (letters && (k->flags & TG_TOKEN_NO_STOP) && tg_text_is_stopword(d, n))
        return TG_OK;
    if (letters && (k->flags & TG_TOKEN_STEM))
        n = tg_text_stem(d, n);
    d[n] = '\0';
    return push_owned(k->out, d, n, start, end, letters ? TG_TOK_WORD : TG_TOK_NUMBER);
}

static int words_start(struct tok *k)
{
    UErrorCode st = U_ZERO_ERROR;
    utext_openUTF8(&k->tx->ut, (const char *)k->s, k->len, &st);
    ubrk_setUText(k->tx->words, &k->tx->ut, &st);
    if (U_FAILURE(st))
        return TG_E_INTERNAL;
    k->words_ready = true;
    return TG_OK;
}

/* The next word boundary after pos, no further than limit. */
static int32_t word_end(struct tok *k, int32_t pos, int32_t limit)
{
    int32_t b = ubrk_following(k->tx->words, pos);
    return b == UBRK_DONE || b > limit ? limit : b;
}

/* Tokens of the CJK run [rs, re) of nchars code points, in text order, a
 * word before the bigram that starts where it does. */
static int emit_cjk_run(struct tok *k, int32_t rs, int32_t re, int32_t nchars)
{
    bool words = k->flags & TG_TOKEN_WORDS, bigrams = k->flags & TG_TOKEN_BIGRAMS;
    int rc = TG_OK;
    if (words && !k->words_ready) {
        rc = words_start(k);
        if (rc)
            goto out;
    }
    if (nchars == 1) {
        if (words)
            rc = push_span(k, rs, re, TG_TOK_CJK_WORD);
        if (!rc && bigrams)
            rc = push_span(k, rs, re, TG_TOK_CJK_CHAR);
        goto out;
    }
    int32_t wb = rs; /* where the next word starts */
    int32_t pos = rs;
    while (pos < re && !rc) {
        int32_t cs = pos;
        UChar32 c;
        U8_NEXT(k->s, pos, re, c);
        while (words && wb < cs)
            wb = word_end(k, wb, re);
        if (words && wb == cs) {
            wb = word_end(k, cs, re);
            rc = push_span(k, cs, wb, TG_TOK_CJK_WORD);
        }
        if (!rc && bigrams && pos < re) {
            int32_t next_end = pos;
            U8_NEXT(k->s, next_end, re, c);
            rc = push_span(k, cs, next_end, TG_TOK_CJK_BIGRAM);
        }
    }
out:
    return rc;
}

int tg_text_tokenize(struct tg_text *tx, const char *text, size_t len, unsigned flags,
                     struct tg_tokens *out)
{
    if (!tx || !out || (!text && len))
        return TG_E_INVAL;
    if (len > TG_TEXT_MAX_BYTES)
        return TG_E_TOOBIG;
    struct tok k = {
        .tx = tx, .s = (const uint8_t *)text, .len = (int32_t)len, .flags = flags, .out = out};
    size_t n0 = out->n;
    int rc = TG_OK;
    if (!out->arena.head) {
        /* Token texts, 16-byte aligned, take up to about eight times the
         * input (a word and a bigram per CJK character, 16 bytes per short
         * Latin word); one block then serves a typical call. */
        size_t want = TG_MIN(8 * len + 256, (size_t)1 << 20);
        out->arena.chunk_size = TG_MAX(want, (size_t)4096);
    }
    int32_t pos = 0;
    while (pos < k.len && !rc) {
        int32_t cs = pos;
        UChar32 c;
        U8_NEXT(k.s, pos, k.len, c);
        enum cls cl = classify(c);
        if (cl == C_CJK) {
            int32_t nchars = 1;
            while (pos < k.len) {
                int32_t p = pos;
                U8_NEXT(k.s, p, k.len, c);
                if (classify(c) != C_CJK)
                    break;
                pos = p;
                nchars++;
            }
            rc = emit_cjk_run(&k, cs, pos, nchars);
        } else if (cl == C_LETTER || cl == C_DIGIT) {
            bool letters;
            pos = scan_word(k.s, k.len, cs, &letters);
            rc = emit_word(&k, cs, pos, letters);
        }
    }
    if (rc)
        out->n = n0;
    return rc;
}

/* ------------------------------------------------------------ stemming */

static bool ends(const char *w, size_t n, const char *suf)
{
    size_t m = strlen(suf);
    return n >= m && memcmp(w + n - m, suf, m) == 0;
}

/* Porter's consonant: not a vowel, and y only after a vowel or at the start. */
static bool cons(const char *w, size_t i)
{
    switch (w[i]) {
    case 'a':
    case 'e':
    case 'i':
    case 'o':
    case 'u':
        return false;
    case 'y':
        return i == 0 || !cons(w, i - 1);
    default:
        return true;
    }
}

static bool has_vowel(const char *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!cons(w, i))
            return true;
    return false;
}

/* Porter's measure m: the number of vowel-consonant sequences in w[0..n). */
static int measure(const char *w, size_t n)
{
    int m = 0;
    size_t i = 0;
    while (i < n && cons(w, i))
        i++;
    while (i < n) {
        while (i < n && !cons(w, i))
            i++;
        if (i >= n)
            break;
        while (i < n && cons(w, i))
            i++;
        m++;
    }
    return m;
}

/* Ends consonant-vowel-consonant, the last not w, x or y ("hop", "mak"). */
static bool cvc(const char *w, size_t n)
{
    if (n < 3 || !cons(w, n - 1) || cons(w, n - 2) || !cons(w, n - 3))
        return false;
    return w[n - 1] != 'w' && w[n - 1] != 'x' && w[n - 1] != 'y';
}

/* After -ing or -ed: put back the e the suffix took ("creat" -> "create",
 * "mak" -> "make") or undo a doubled consonant ("runn" -> "run"). */
static size_t restore_stem(char *w, size_t n)
{
    bool at = ends(w, n, "at") && (!ends(w, n, "eat") || ends(w, n, "creat")) && !ends(w, n, "oat");
    if (at || ends(w, n, "bl") || ends(w, n, "iz")) {
        w[n++] = 'e';
    } else if (w[n - 1] == w[n - 2] && cons(w, n - 1) && !strchr("lsz", w[n - 1])) {
        n--;
    } else if (measure(w, n) == 1 && cvc(w, n)) {
        w[n++] = 'e';
    }
    return n;
}

/* Words the rules below would mangle. */
static bool keep_as_is(const char *w, size_t n)
{
    static const char *const keep[] = {"always",  "calories", "cookies", "does",
                                       "goes",    "hundred",  "movies",  "news",
                                       "perhaps", "series",   "species"};
    for (size_t i = 0; i < TG_ARRAY_LEN(keep); i++)
        if (strlen(keep[i]) == n && memcmp(keep[i], w, n) == 0)
            return true;
    return false;
}

/* -ies -> -y unless the stem is too short or ends in a or e ("ties", "aies"). */
static size_t ie_to_y(char *w, size_t n)
{
    if (n < 5 || w[n - 4] == 'a' || w[n - 4] == 'e')
        return n;
    w[n - 3] = 'y';
    return n - 2;
}

static size_t stem_plural(char *w, size_t n)
{
    if (ends(w, n, "sses"))
        return n - 2; /* classes -> class */
    if (ends(w, n, "ies"))
        return ie_to_y(w, n); /* policies -> policy */
    if (ends(w, n, "xes") || ends(w, n, "ches") || ends(w, n, "shes") || ends(w, n, "zzes"))
        return n >= 5 ? n - 2 : n; /* boxes -> box, matches -> match */
    if (ends(w, n, "ss") || ends(w, n, "us") || ends(w, n, "is"))
        return n; /* class, status, basis */
    return n - 1; /* claims -> claim */
}

static size_t stem_ing_ed(char *w, size_t n)
{
    if (ends(w, n, "ied"))
        return ie_to_y(w, n); /* denied -> deny */
    size_t stem = n - (w[n - 1] == 'g' ? 3 : 2);
    if (stem < 3 || !has_vowel(w, stem))
        return n;                 /* being, thing, string */
    return restore_stem(w, stem); /* covered -> cover, running -> run */
}

static size_t stem_ly(char *w, size_t n)
{
    size_t stem = n - 2;
    char last = w[stem - 1];
    /* family, apply, supply, fully, early stay as they are */
    if (stem < 4 || last == 'i' || last == 'p' || last == w[stem - 2] || !has_vowel(w, stem))
        return n;
    if (last == 'b') {
        w[n - 1] = 'e'; /* possibly -> possible */
        return n;
    }
    return stem; /* quickly -> quick */
}

size_t tg_text_stem(char *w, size_t len)
{
    size_t n = len;
    if (n < 4 || keep_as_is(w, n))
        return len;
    for (size_t i = 0; i < n; i++)
        if (w[i] < 'a' || w[i] > 'z')
            return len;
    if (w[n - 1] == 's')
        n = stem_plural(w, n);
    else if (ends(w, n, "ing") || (ends(w, n, "ed") && !ends(w, n, "eed")))
        n = stem_ing_ed(w, n);
    else if (ends(w, n, "ly"))
        n = stem_ly(w, n);
    if (n < len)
        w[n] = '\0';
    return n;
}
