/*
 * test_text.c - normalization, tokenizer and stemmer of the text module
 * (src/text/normalize.c, src/text/tokenize.c): table-driven cases for
 * Chinese, English and Japanese, token offsets, invalid UTF-8, long input,
 * reuse, allocation failure, and a throughput figure printed for Chinese.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "text/text.h"

#include <stdio.h>
#include <string.h>

#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utrans.h>

static int group_setup(void **state)
{
    char err[256];
    struct tg_text *tx = NULL;
    int rc = tg_text_open(&tx, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "tg_text_open: %s\n", err);
        return -1;
    }
    *state = tx;
    return 0;
}

static int group_teardown(void **state)
{
    tg_text_close(*state);
    return 0;
}

/* Normalize s (len bytes) and return a tg_malloc'd copy of the result. */
static char *norm_n(struct tg_text *tx, const char *s, size_t len, unsigned flags)
{
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    assert_int_equal(tg_text_normalize(tx, s, len, flags, &b), TG_OK);
    assert_non_null(b.data);
    assert_int_equal(strlen(b.data), b.len);
    return tg_buf_steal(&b, NULL);
}

static char *norm(struct tg_text *tx, const char *s, unsigned flags)
{
    return norm_n(tx, s, strlen(s), flags);
}

/* ------------------------------------------------------------ normalization */

static void test_normalize_table(void **state)
{
    struct tg_text *tx = *state;
    static const struct {
        const char *in;
        unsigned flags;
        const char *want;
    } cases[] = {
        {"ＡＢＣ１２３", 0, "abc123"},
        {"（保单号）：Ｐ１２３", 0, "(保单号):p123"},
        {"退保！？", 0, "退保!?"},
        {"Hello WORLD", 0, "hello world"},
        {"  Hello\t\n\r World  ", 0, "hello world"},
        /* U+3000; no space is kept between two Chinese characters */
        {"\xe3\x80\x80理赔\xe3\x80\x80\xe3\x80\x80材料\xe3\x80\x80", 0, "理赔材料"},
        {"我自 己去 不了 网点 ，让 别人", 0, "我自己去不了网点,让别人"},
        {"理赔 claim 材料", 0, "理赔 claim 材料"},
        {"x\xc2\xa0\xe2\x80\x83y\xe2\x80\xa8z", 0, "x y z"}, /* NBSP, EM SPACE, LINE SEP */
        {"ÀÉÎ Ωmega", 0, "àéî ωmega"},
        {"Straße", 0, "strasse"},        /* full case folding */
        {"理\xe2\x80\x8b赔", 0, "理赔"}, /* zero-width space is default-ignorable */
        {"x\x01\x1by", 0, "x y"},        /* controls count as space */
        {"①②", 0, "12"},
        {"ﾎｹﾝ", 0, "ホケン"}, /* half-width katakana */
        {"保險理賠", TG_NORM_T2S, "保险理赔"},
        {"銀行帳戶", TG_NORM_T2S, "银行账户"},
        {"轉帳到我的帳號", TG_NORM_T2S, "转账到我的账号"},
        {"帐户", TG_NORM_T2S, "账户"},
        {"蚊帳和帳篷", TG_NORM_T2S, "蚊帐和帐篷"},
        {"保險理賠", 0, "保險理賠"},
        {"保险理赔 ABC", TG_NORM_T2S, "保险理赔 abc"},
        {"保険の補償内容を確認したいです", 0, "保険の補償内容を確認したいです"},
        {"ＡＩ保険、ﾃｽﾄ。", 0, "ai保険、テスト。"},
        {"", 0, ""},
        {"   \t\n ", 0, ""},
        {"\xe3\x80\x80", 0, ""},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        char *got = norm(tx, cases[i].in, cases[i].flags);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu: \"%s\" -> \"%s\", want \"%s\"", i, cases[i].in, got, cases[i].want);
        tg_free(got);
    }
}

static void test_normalize_invalid_utf8(void **state)
{
    struct tg_text *tx = *state;
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        {"x\xffy", 3, "x\xef\xbf\xbdy"},
        {"\xe7\x90", 2, "\xef\xbf\xbd"},                             /* truncated 理 */
        {"\xe7\x90xy", 4, "\xef\xbf\xbdxy"},                         /* truncated, then ASCII */
        {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},                 /* overlong '/' */
        {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* a surrogate */
        {"a\0b", 3, "a b"},                                          /* NUL inside */
        {"\x80\x80 \xfe", 4, "\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        char *got = norm_n(tx, cases[i].in, cases[i].len, 0);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, got, cases[i].want);
        tg_free(got);
    }
}

/* Pure ASCII takes a shortcut; it must agree with the ICU path, which a
 * trailing "\x01é" forces (the control becomes a space). */
static void test_normalize_ascii_matches_icu(void **state)
{
    struct tg_text *tx = *state;
    static const char *const cases[] = {
        "Hello  WORLD\t",   "  x ", "Claims Were COVERED", "x\x7fy\x1fz", "50,000 & 1.5%",
        "MiXeD-CaSe_under", "",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        char *fast = norm(tx, cases[i], 0);
        char forced_in[128], want[160];
        snprintf(forced_in, sizeof(forced_in), "%s\x01\xc3\xa9", cases[i]);
        snprintf(want, sizeof(want), "%s%s\xc3\xa9", fast, fast[0] ? " " : "");
        char *slow = norm(tx, forced_in, 0);
        assert_string_equal(slow, want);
        tg_free(fast);
        tg_free(slow);
    }
}

/* What ICU gives for NFKC_Casefold and then Traditional-Simplified over the
 * whole text at once, for text without whitespace runs or 帐. */
static char *icu_reference(const char *in)
{
    UErrorCode st = U_ZERO_ERROR;
    UParseError pe;
    static const UChar id[] = u"Traditional-Simplified";
    UTransliterator *t = utrans_openU(id, -1, UTRANS_FORWARD, NULL, 0, &pe, &st);
    const UNormalizer2 *nf = unorm2_getNFKCCasefoldInstance(&st);
    static UChar a[4096], b[8192];
    static char out[16384];
    int32_t n = 0, m, on = 0;
    u_strFromUTF8(a, 4096, &n, in, -1, &st);
    m = unorm2_normalize(nf, a, n, b, 4096, &st);
    int32_t limit = m;
    utrans_transUChars(t, b, &m, 8192, 0, &limit, &st);
    u_strToUTF8(out, sizeof(out), &on, b, m, &st);
    assert_true(U_SUCCESS(st));
    utrans_close(t);
    return out;
}

/*
 * T2S sends only the runs a rule can change through ICU; the result must
 * be what ICU gives for the whole text, phrase rules included (沈默 -> 沉默,
 * 剃发 -> 剃髮, corner brackets -> curly quotes).
 */
static void test_t2s_matches_whole_text(void **state)
{
    struct tg_text *tx = *state;
    static const char *const pieces[] = {
        "他沈默了很久", "像片",     "份子",   "剃发", "「引號」", "於是",
        "乾燥的頭髮",   "祇要你在", "英吋",   "巡察", "發展很快", "我们的份额",
        "理赔",         "P123",     "ＡＢＣ", "。",   "，",       "、",
        "茶餘飯後",     "下崙",     "沈",     "发",   "乾",       "后",
        "後",           "里",       "裡",     "𠀀",   "a",
    };
    uint64_t x = 88172645463325252u;
    for (int round = 0; round < 300; round++) {
        char in[1024] = "";
        size_t n = 0;
        int k = 1 + round % 12;
        for (int j = 0; j < k; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            const char *p = pieces[x % TG_ARRAY_LEN(pieces)];
            memcpy(in + n, p, strlen(p) + 1);
            n += strlen(p);
        }
        char *got = norm(tx, in, TG_NORM_T2S);
        const char *want = icu_reference(in);
        if (strcmp(got, want) != 0)
            fail_msg("T2S of \"%s\": \"%s\", ICU on the whole text: \"%s\"", in, got, want);
        tg_free(got);
    }
}

static void test_normalize_appends_and_limits(void **state)
{
    struct tg_text *tx = *state;
    struct tg_buf b;
    tg_buf_init(&b, 16);
    assert_int_equal(tg_buf_puts(&b, "q: "), TG_OK);
    assert_int_equal(tg_text_normalize(tx, "ＡＢ　Ｃ", strlen("ＡＢ　Ｃ"), 0, &b), TG_OK);
    assert_string_equal(b.data, "q: ab c");
    assert_int_equal(tg_text_normalize(tx, "x", 1, 0, &b), TG_OK);
    assert_string_equal(b.data, "q: ab cx");
    /* Past the buffer's maximum: an error, and the buffer as it was. */
    assert_int_equal(tg_text_normalize(tx, "理赔理赔理赔", strlen("理赔理赔理赔"), 0, &b),
                     TG_E_TOOBIG);
    assert_int_equal(tg_text_normalize(tx, "abcdefghijkl", 12, 0, &b), TG_E_TOOBIG);
    assert_string_equal(b.data, "q: ab cx");
    assert_int_equal(tg_text_normalize(tx, NULL, 3, 0, &b), TG_E_INVAL);
    assert_int_equal(tg_text_normalize(tx, NULL, 0, 0, &b), TG_OK);
    assert_string_equal(b.data, "q: ab cx");
    tg_buf_free(&b);
}

/* ------------------------------------------------------------ tokens */

struct want_tok {
    enum tg_token_kind kind;
    const char *text;
};

static const char *kind_name(enum tg_token_kind k)
{
    static const char *const names[] = {"word", "number", "cjk_word", "cjk_bigram", "cjk_char"};
    return (unsigned)k < TG_ARRAY_LEN(names) ? names[k] : "?";
}

static void dump(const struct tg_tokens *t)
{
    for (size_t i = 0; i < t->n; i++)
        fprintf(stderr, "  [%zu] %s \"%s\" %u..%u\n", i, kind_name(t->v[i].kind), t->v[i].text,
                t->v[i].start, t->v[i].end);
}

/* Tokenize text (already normalized) and compare with want, in order. */
static void expect_tokens(struct tg_text *tx, const char *text, unsigned flags,
                          const struct want_tok *want, size_t n_want)
{
    struct tg_tokens t;
    tg_tokens_init(&t);
    assert_int_equal(tg_text_tokenize(tx, text, strlen(text), flags, &t), TG_OK);
    bool ok = t.n == n_want;
    for (size_t i = 0; ok && i < n_want; i++)
        ok = t.v[i].kind == want[i].kind && strcmp(t.v[i].text, want[i].text) == 0 &&
             t.v[i].len == strlen(want[i].text);
    if (!ok) {
        dump(&t);
        fail_msg("tokens of \"%s\" (flags %u) differ (%zu, want %zu)", text, flags, t.n, n_want);
    }
    tg_tokens_free(&t);
}

static bool has_token(const struct tg_tokens *t, enum tg_token_kind kind, const char *text)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].kind == kind && strcmp(t->v[i].text, text) == 0)
            return true;
    return false;
}

/*
 * Every token lies inside the text, tokens come in order of start, and a
 * token's text is its span: exactly for CJK tokens, and for words and
 * numbers once thousands commas are dropped (without stemming).
 */
static void check_offsets(const char *text, size_t len, const struct tg_tokens *t, bool stemmed)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct tg_token *k = &t->v[i];
        assert_true(k->start < k->end);
        assert_true(k->end <= len);
        assert_int_equal(strlen(k->text), k->len);
        if (i > 0)
            assert_true(t->v[i - 1].start <= k->start);
        const char *span = text + k->start;
        size_t span_len = k->end - k->start;
        if (k->kind >= TG_TOK_CJK_WORD) {
            assert_int_equal(span_len, k->len);
            assert_memory_equal(span, k->text, k->len);
        } else if (!stemmed) {
            char buf[256];
            size_t n = 0;
            for (size_t j = 0; j < span_len && n < sizeof(buf); j++)
                if (span[j] != ',')
                    buf[n++] = span[j];
            if (span_len < sizeof(buf) && memchr(span, '\'', span_len) == NULL &&
                memchr(span, 0xE2, span_len) == NULL) {
                assert_int_equal(n, k->len);
                assert_memory_equal(buf, k->text, n);
            }
        }
    }
}

static void test_tokenize_chinese(void **state)
{
    struct tg_text *tx = *state;
    const char *s = "意外险理赔需要哪些材料";
    static const struct want_tok bigrams[] = {
        {TG_TOK_CJK_BIGRAM, "意外"}, {TG_TOK_CJK_BIGRAM, "外险"}, {TG_TOK_CJK_BIGRAM, "险理"},
        {TG_TOK_CJK_BIGRAM, "理赔"}, {TG_TOK_CJK_BIGRAM, "赔需"}, {TG_TOK_CJK_BIGRAM, "需要"},
        {TG_TOK_CJK_BIGRAM, "要哪"}, {TG_TOK_CJK_BIGRAM, "哪些"}, {TG_TOK_CJK_BIGRAM, "些材"},
        {TG_TOK_CJK_BIGRAM, "材料"},
    };
    expect_tokens(tx, s, TG_TOKEN_BIGRAMS, bigrams, TG_ARRAY_LEN(bigrams));

    /* ICU 72's dictionary has no 理赔: it splits it, the bigram keeps it. */
    struct tg_tokens t;
    tg_tokens_init(&t);
    assert_int_equal(tg_text_tokenize(tx, s, strlen(s), TG_TOKEN_WORDS, &t), TG_OK);
    static const char *const words[] = {"意外险", "需要", "哪些", "材料"};
    for (size_t i = 0; i < TG_ARRAY_LEN(words); i++)
        assert_true(has_token(&t, TG_TOK_CJK_WORD, words[i]));
    for (size_t i = 0; i < t.n; i++)
        assert_int_equal(t.v[i].kind, TG_TOK_CJK_WORD);
    /* The words cover the run, in order, without gaps. */
    uint32_t at = 0;
    for (size_t i = 0; i < t.n; i++) {
        assert_int_equal(t.v[i].start, at);
        at = t.v[i].end;
    }
    assert_int_equal(at, strlen(s));
    check_offsets(s, strlen(s), &t, false);
    tg_tokens_free(&t);

    /* Both: at each position a word comes before its bigram. */
    tg_tokens_init(&t);
    assert_int_equal(tg_text_tokenize(tx, s, strlen(s), TG_TOKEN_DEFAULT, &t), TG_OK);
    assert_true(has_token(&t, TG_TOK_CJK_WORD, "材料"));
    assert_true(has_token(&t, TG_TOK_CJK_BIGRAM, "理赔"));
    assert_int_equal(t.v[0].kind, TG_TOK_CJK_WORD);
    assert_string_equal(t.v[0].text, "意外险");
    assert_int_equal(t.v[1].kind, TG_TOK_CJK_BIGRAM);
    assert_string_equal(t.v[1].text, "意外");
    for (size_t i = 1; i < t.n; i++)
        if (t.v[i].start == t.v[i - 1].start)
            assert_true(t.v[i - 1].kind == TG_TOK_CJK_WORD && t.v[i].kind == TG_TOK_CJK_BIGRAM);
    check_offsets(s, strlen(s), &t, false);
    tg_tokens_free(&t);
}

static void test_tokenize_table(void **state)
{
    struct tg_text *tx = *state;
    static const struct want_tok claims[] = {
        {TG_TOK_WORD, "claim"}, {TG_TOK_WORD, "were"}, {TG_TOK_WORD, "cover"}};
    expect_tokens(tx, "claims were covered", TG_TOKEN_DEFAULT, claims, TG_ARRAY_LEN(claims));

    /* without function words: what the question is about */
    static const struct want_tok content[] = {
        {TG_TOK_WORD, "report"}, {TG_TOK_WORD, "lost"}, {TG_TOK_WORD, "card"}};
    expect_tokens(tx, "how do i report a lost card", TG_TOKEN_DEFAULT | TG_TOKEN_NO_STOP, content,
                  TG_ARRAY_LEN(content));
    assert_true(tg_text_is_stopword("the", 3));
    assert_true(tg_text_is_stopword("there", 5));
    assert_false(tg_text_is_stopword("theft", 5));
    assert_false(tg_text_is_stopword("th", 2));

    static const struct want_tok unstemmed[] = {
        {TG_TOK_WORD, "claims"}, {TG_TOK_WORD, "were"}, {TG_TOK_WORD, "covered"}};
    expect_tokens(tx, "claims were covered.", TG_TOKEN_WORDS | TG_TOKEN_BIGRAMS, unstemmed,
                  TG_ARRAY_LEN(unstemmed));

    static const struct want_tok numbers[] = {
        {TG_TOK_NUMBER, "50000"},      {TG_TOK_NUMBER, "50000"}, {TG_TOK_NUMBER, "1.5"},
        {TG_TOK_NUMBER, "1000000.25"}, {TG_TOK_NUMBER, "3"},     {TG_TOK_NUMBER, "5"},
        {TG_TOK_NUMBER, "12"},         {TG_TOK_NUMBER, "3456"},  {TG_TOK_NUMBER, "7"},
        {TG_TOK_NUMBER, "2024"},       {TG_TOK_NUMBER, "01"},    {TG_TOK_NUMBER, "05"}};
    expect_tokens(tx, "50,000 50000 1.5 1,000,000.25 3,5 12,3456 7. 2024-01-05", TG_TOKEN_DEFAULT,
                  numbers, TG_ARRAY_LEN(numbers));

    static const struct want_tok mixed[] = {
        {TG_TOK_WORD, "5g"},          {TG_TOK_CJK_WORD, "套餐"}, {TG_TOK_CJK_BIGRAM, "套餐"},
        {TG_TOK_WORD, "p1234567890"}, {TG_TOK_NUMBER, "50000"},  {TG_TOK_CJK_WORD, "元"},
        {TG_TOK_CJK_CHAR, "元"},      {TG_TOK_WORD, "v1.2"},
    };
    expect_tokens(tx, "5g套餐 p1234567890,50,000元 v1.2", TG_TOKEN_DEFAULT, mixed,
                  TG_ARRAY_LEN(mixed));

    static const struct want_tok lone[] = {
        {TG_TOK_WORD, "a"}, {TG_TOK_CJK_CHAR, "险"}, {TG_TOK_WORD, "b"}};
    expect_tokens(tx, "a 险 b", TG_TOKEN_BIGRAMS, lone, TG_ARRAY_LEN(lone));

    static const struct want_tok apostrophes[] = {{TG_TOK_WORD, "don't"},
                                                  {TG_TOK_WORD, "customer"},
                                                  {TG_TOK_WORD, "it"},
                                                  {TG_TOK_WORD, "o'neil"}};
    expect_tokens(tx, "don't customer's it\xe2\x80\x99s 'o'neil'", TG_TOKEN_WORDS, apostrophes,
                  TG_ARRAY_LEN(apostrophes));

    static const struct want_tok other_scripts[] = {{TG_TOK_WORD, "café"},
                                                    {TG_TOK_WORD, "страховка"},
                                                    {TG_TOK_WORD, "보험"},
                                                    {TG_TOK_NUMBER, "٣٤"}};
    expect_tokens(tx, "café, страховка! 보험 ٣٤ \xef\xbf\xbd", TG_TOKEN_DEFAULT, other_scripts,
                  TG_ARRAY_LEN(other_scripts));

    static const struct want_tok punct_only[] = {{TG_TOK_WORD, "x"}};
    expect_tokens(tx, "，。！？、「」 ... x ・", TG_TOKEN_DEFAULT, punct_only, 1);
    expect_tokens(tx, "", TG_TOKEN_DEFAULT, NULL, 0);
    expect_tokens(tx, "理赔", 0, NULL, 0);
}

static void test_tokenize_japanese(void **state)
{
    struct tg_text *tx = *state;
    char *s = norm(tx, "保険の補償内容を確認したいです。ｺﾝﾃﾝﾂをダウンロード", 0);
    struct tg_tokens t;
    tg_tokens_init(&t);
    assert_int_equal(tg_text_tokenize(tx, s, strlen(s), TG_TOKEN_DEFAULT, &t), TG_OK);
    assert_true(t.n > 10);
    for (size_t i = 0; i < t.n; i++)
        assert_true(t.v[i].kind >= TG_TOK_CJK_WORD);
    assert_true(has_token(&t, TG_TOK_CJK_WORD, "保険"));
    assert_true(has_token(&t, TG_TOK_CJK_WORD, "補償"));
    assert_true(has_token(&t, TG_TOK_CJK_WORD, "コンテンツ"));
    assert_true(has_token(&t, TG_TOK_CJK_BIGRAM, "険の"));
    assert_true(has_token(&t, TG_TOK_CJK_BIGRAM, "ロー"));
    check_offsets(s, strlen(s), &t, false);
    tg_tokens_free(&t);
    tg_free(s);
}

/* Normalized mixed text: offsets hold for every token under every flag set. */
static void test_tokenize_offsets(void **state)
{
    struct tg_text *tx = *state;
    static const char *const texts[] = {
        "您好，我想咨询一下意外险理赔需要哪些材料。保单号P1234567890，保额50,000元。",
        "My Policy covers 1.5x the claims; 30% off!  Call 400-800-1234 now.",
        "保険の補償内容 and 銀行帳戶 ＡＢＣ１２３ 理 赔",
        "x",
        "理",
    };
    static const unsigned flags[] = {TG_TOKEN_WORDS, TG_TOKEN_BIGRAMS,
                                     TG_TOKEN_WORDS | TG_TOKEN_BIGRAMS, TG_TOKEN_DEFAULT};
    for (size_t i = 0; i < TG_ARRAY_LEN(texts); i++) {
        char *s = norm(tx, texts[i], TG_NORM_T2S);
        for (size_t f = 0; f < TG_ARRAY_LEN(flags); f++) {
            struct tg_tokens t;
            tg_tokens_init(&t);
            assert_int_equal(tg_text_tokenize(tx, s, strlen(s), flags[f], &t), TG_OK);
            assert_true(t.n > 0);
            check_offsets(s, strlen(s), &t, flags[f] & TG_TOKEN_STEM);
            tg_tokens_free(&t);
        }
        tg_free(s);
    }
}

static void test_tokens_reset_reuse(void **state)
{
    struct tg_text *tx = *state;
    const char *a = "意外险理赔需要哪些材料 claims were covered";
    const char *b = "銀行账户 50,000";
    struct tg_tokens t, fresh;
    tg_tokens_init(&t);
    tg_tokens_init(&fresh);
    assert_int_equal(tg_text_tokenize(tx, a, strlen(a), TG_TOKEN_DEFAULT, &t), TG_OK);
    size_t na = t.n;
    assert_int_equal(tg_text_tokenize(tx, b, strlen(b), TG_TOKEN_DEFAULT, &t), TG_OK);
    assert_true(t.n > na); /* appends */
    assert_int_equal(t.v[na].start, 0);
    for (int round = 0; round < 3; round++) {
        tg_tokens_reset(&t);
        assert_int_equal(t.n, 0);
        assert_int_equal(tg_text_tokenize(tx, b, strlen(b), TG_TOKEN_DEFAULT, &t), TG_OK);
    }
    assert_int_equal(tg_text_tokenize(tx, b, strlen(b), TG_TOKEN_DEFAULT, &fresh), TG_OK);
    assert_int_equal(t.n, fresh.n);
    for (size_t i = 0; i < t.n; i++) {
        assert_string_equal(t.v[i].text, fresh.v[i].text);
        assert_int_equal(t.v[i].start, fresh.v[i].start);
        assert_int_equal(t.v[i].kind, fresh.v[i].kind);
    }
    tg_tokens_free(&t);
    tg_tokens_free(&fresh);
    tg_tokens_free(&fresh); /* twice is harmless */
}

/* A paragraph of customer-service Chinese, varied enough for the dictionary. */
static const char PARA[] =
    "您好，我想咨询一下意外险理赔需要哪些材料。我的保单号是P1234567890，去年在贵公司购买了"
    "重疾险，保额50万元。请问住院医疗费用报销比例是多少？等待期过后出险可以申请理赔吗？"
    "如果银行账户信息变更，理赔款会打到哪个账户？另外，保費可以按月繳納嗎？謝謝！ ";

/* Repeat PARA into a text of about size bytes (whole paragraphs). */
static char *chinese_text(size_t size, size_t *len)
{
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    while (b.len + sizeof(PARA) <= size)
        assert_int_equal(tg_buf_puts(&b, PARA), TG_OK);
    return tg_buf_steal(&b, len);
}

static void test_long_input(void **state)
{
    struct tg_text *tx = *state;
    size_t len;
    char *raw = chinese_text(100 * 1024, &len);
    assert_true(len > 95 * 1024);
    struct tg_buf nb;
    tg_buf_init(&nb, TG_BUF_UNLIMITED);
    assert_int_equal(tg_text_normalize(tx, raw, len, TG_NORM_T2S, &nb), TG_OK);
    assert_non_null(strstr(nb.data, "保费可以按月缴纳吗?谢谢!"));
    struct tg_tokens t;
    tg_tokens_init(&t);
    assert_int_equal(tg_text_tokenize(tx, nb.data, nb.len, TG_TOKEN_DEFAULT, &t), TG_OK);
    check_offsets(nb.data, nb.len, &t, true);
    /* Each paragraph gives the same tokens, so the count divides evenly. */
    size_t paras = len / (sizeof(PARA) - 1);
    assert_int_equal(t.n % paras, 0);
    assert_true(t.n / paras > 60);
    assert_true(has_token(&t, TG_TOK_NUMBER, "50"));
    assert_true(has_token(&t, TG_TOK_WORD, "p1234567890"));
    assert_int_equal(t.v[t.n - 1].end <= nb.len, 1);
    tg_tokens_free(&t);

    /* One run of 100 KB without a break, and a 100 KB Latin "word". */
    struct tg_buf run;
    tg_buf_init(&run, TG_BUF_UNLIMITED);
    for (int i = 0; i < 100 * 1024 / 3; i++)
        assert_int_equal(tg_buf_puts(&run, i % 2 ? "赔" : "理"), TG_OK);
    tg_tokens_init(&t);
    assert_int_equal(tg_text_tokenize(tx, run.data, run.len, TG_TOKEN_DEFAULT, &t), TG_OK);
    assert_true(t.n >= 100 * 1024 / 3 - 1);
    check_offsets(run.data, run.len, &t, false);
    tg_tokens_reset(&t);
    memset(run.data, 'a', run.len);
    assert_int_equal(tg_text_tokenize(tx, run.data, run.len, TG_TOKEN_DEFAULT, &t), TG_OK);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.v[0].len, run.len);
    tg_tokens_free(&t);
    tg_buf_free(&run);
    tg_buf_free(&nb);
    tg_free(raw);
}

/* Random bytes, normalized or not: no crash, and sane tokens. */
static void test_random_bytes(void **state)
{
    struct tg_text *tx = *state;
    uint64_t x = 0x9E3779B97F4A7C15u;
    static const char *const pieces[] = {"理",       "赔", "a",  "B",  "1",
                                         ",",        ".",  " ",  "'",  "\xff",
                                         "\xe7\x90", "の", "ー", "５", "\xe2\x80\x99",
                                         "\xcc\x81"};
    for (int round = 0; round < 400; round++) {
        char in[200];
        size_t n = 0;
        while (n < sizeof(in) - 8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (x % 5 == 0) {
                in[n++] = (char)(x >> 24);
            } else {
                const char *p = pieces[(x >> 8) % TG_ARRAY_LEN(pieces)];
                memcpy(in + n, p, strlen(p));
                n += strlen(p);
            }
            if ((x >> 40) % 16 == 0)
                break;
        }
        struct tg_tokens t;
        tg_tokens_init(&t);
        assert_int_equal(tg_text_tokenize(tx, in, n, TG_TOKEN_DEFAULT, &t), TG_OK);
        for (size_t i = 0; i < t.n; i++)
            assert_true(t.v[i].start < t.v[i].end && t.v[i].end <= n);
        tg_tokens_reset(&t);
        char *s = norm_n(tx, in, n, round % 2 ? TG_NORM_T2S : 0);
        assert_int_equal(tg_text_tokenize(tx, s, strlen(s), TG_TOKEN_DEFAULT, &t), TG_OK);
        check_offsets(s, strlen(s), &t, true);
        tg_tokens_free(&t);
        tg_free(s);
    }
}

/* Every allocation that can fail does so cleanly, and the list stays as it was. */
static void test_allocation_failure(void **state)
{
    struct tg_text *tx = *state;
    const char *s = "意外险理赔需要哪些材料 claims were covered 50,000 保險理賠";
    bool finished = false;
    for (long k = 0; k < 200 && !finished; k++) {
        struct tg_tokens t;
        struct tg_buf b;
        tg_tokens_init(&t);
        tg_buf_init(&b, TG_BUF_UNLIMITED);
        tg_mem_fail_after(k);
        int rc = tg_text_normalize(tx, s, strlen(s), TG_NORM_T2S, &b);
        if (rc == TG_OK)
            rc = tg_text_tokenize(tx, b.data, b.len, TG_TOKEN_DEFAULT, &t);
        tg_mem_fail_after(-1);
        if (rc == TG_OK)
            finished = true;
        else
            assert_int_equal(rc, TG_E_NOMEM);
        if (rc)
            assert_int_equal(t.n, 0);
        tg_tokens_free(&t);
        tg_buf_free(&b);
    }
    assert_true(finished);
}

/* ------------------------------------------------------------ stemming */

static void test_stem_table(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"policies", "policy"},
        {"claims", "claim"},
        {"covered", "cover"},
        {"covering", "cover"},
        {"running", "run"},
        {"denied", "deny"},
        {"classes", "class"},
        {"boxes", "box"},
        {"matches", "match"},
        {"purchases", "purchase"},
        {"fees", "fee"},
        {"days", "day"},
        {"created", "create"},
        {"creating", "create"},
        {"treated", "treat"},
        {"making", "make"},
        {"hoped", "hope"},
        {"hopped", "hop"},
        {"enabled", "enable"},
        {"billing", "bill"},
        {"paying", "pay"},
        {"quickly", "quick"},
        {"usually", "usual"},
        {"possibly", "possible"},
        {"family", "family"},
        {"apply", "apply"},
        {"supply", "supply"},
        {"early", "early"},
        {"only", "only"},
        {"status", "status"},
        {"this", "this"},
        {"basis", "basis"},
        {"class", "class"},
        {"need", "need"},
        {"agreed", "agreed"},
        {"string", "string"},
        {"thing", "thing"},
        {"being", "being"},
        {"used", "used"},
        {"news", "news"},
        {"series", "series"},
        {"always", "always"},
        {"was", "was"},
        {"is", "is"},
        {"a", "a"},
        {"ties", "ties"},
        {"5gs", "5gs"},
        {"don't", "don't"},
        {"Claims", "Claims"},
        {"", ""},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        char w[32];
        size_t n = strlen(cases[i].in);
        memcpy(w, cases[i].in, n + 1);
        size_t m = tg_text_stem(w, n);
        if (m != strlen(cases[i].want) || memcmp(w, cases[i].want, m) != 0)
            fail_msg("stem(%s) = %.*s, want %s", cases[i].in, (int)m, w, cases[i].want);
        assert_int_equal(w[m], '\0');
    }
}

/* ------------------------------------------------------------ throughput */

static double mb_per_s(size_t bytes, int64_t ns)
{
    return ns > 0 ? (double)bytes / (1024.0 * 1024.0) / ((double)ns / 1e9) : 0;
}

/* Printed, not asserted: machines and sanitizers differ too much. */
static void test_throughput(void **state)
{
    struct tg_text *tx = *state;
    size_t len;
    char *raw = chinese_text(1 << 20, &len);
    struct tg_buf nb;
    tg_buf_init(&nb, TG_BUF_UNLIMITED);
    struct tg_tokens t;
    tg_tokens_init(&t);

    int64_t t0 = tg_clock_mono_ns();
    int rounds = 0;
    do {
        tg_buf_reset(&nb);
        assert_int_equal(tg_text_normalize(tx, raw, len, TG_NORM_T2S, &nb), TG_OK);
        rounds++;
    } while (tg_clock_mono_ns() - t0 < 300000000);
    double norm_mbs = mb_per_s(len * (size_t)rounds, tg_clock_mono_ns() - t0);

    const unsigned flags[] = {TG_TOKEN_DEFAULT, TG_TOKEN_BIGRAMS, TG_TOKEN_WORDS};
    const char *names[] = {"words+bigrams", "bigrams only", "words only"};
    for (size_t f = 0; f < TG_ARRAY_LEN(flags); f++) {
        size_t ntok = 0;
        rounds = 0;
        t0 = tg_clock_mono_ns();
        do {
            tg_tokens_reset(&t);
            assert_int_equal(tg_text_tokenize(tx, nb.data, nb.len, flags[f], &t), TG_OK);
            ntok = t.n;
            rounds++;
        } while (tg_clock_mono_ns() - t0 < 300000000);
        print_message("text: tokenize Chinese (%s): %.1f MB/s, %zu tokens per %.1f MB\n", names[f],
                      mb_per_s(nb.len * (size_t)rounds, tg_clock_mono_ns() - t0), ntok,
                      (double)nb.len / (1024.0 * 1024.0));
    }
    /* A customer's turn: about 100 bytes, tokenized with a reused list. */
    const char *turn = "我想问一下意外险理赔需要哪些材料，大概多久能到账？";
    char *turn_n = norm(tx, turn, TG_NORM_T2S);
    rounds = 0;
    t0 = tg_clock_mono_ns();
    do {
        tg_tokens_reset(&t);
        assert_int_equal(tg_text_tokenize(tx, turn_n, strlen(turn_n), TG_TOKEN_DEFAULT, &t), TG_OK);
        rounds++;
    } while (tg_clock_mono_ns() - t0 < 200000000);
    double per_turn_us = (double)(tg_clock_mono_ns() - t0) / 1e3 / rounds;
    print_message("text: normalize Chinese (NFKC_Casefold + T2S): %.1f MB/s; one %zu-byte turn "
                  "tokenized in %.2f us\n",
                  norm_mbs, strlen(turn_n), per_turn_us);
    tg_free(turn_n);
    tg_tokens_free(&t);
    tg_buf_free(&nb);
    tg_free(raw);
}

/* The focus of a question: the clauses that ask, not the story before them. */
static void test_focus(void **state)
{
    (void)state;
    static const struct {
        const char *q, *want;
    } cases[] = {
        /* one clause: the focus is all of it ("") */
        {"犹豫期多少天?", ""},
        {"how do i report a lost card", ""},
        /* a story, then the question */
        {"上周我爸在小区里摔了一跤,手腕骨折了,今年72。手腕这种是按几成算的",
         "手腕这种是按几成算的"},
        {"孩子被狗咬了,花了三百多。少儿意外险能报吗?要扣免赔不", "少儿意外险能报吗?"},
        {"i fell and needed stitches. what do i need to claim?", " what do i need to claim?"},
        /* nothing asks: the last clause */
        {"车被追尾了,对方全责,我想走理赔", "我想走理赔"},
        /* two asking clauses, in order */
        {"我退休了,保费怎么交?能不能月缴?", "保费怎么交?能不能月缴?"},
        /* full-width marks, as a customer types them */
        {"上周摔了一跤，花了一千多。能赔吗？", "能赔吗？"},
        /* a word that starts a clause asks only at its start */
        {"this is my card, does it work abroad?", " does it work abroad?"},
    };
    struct tg_buf b;
    tg_buf_init(&b, 1024);
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        const char *f = tg_text_focus(cases[i].q, strlen(cases[i].q), &b);
        assert_non_null(f);
        if (strcmp(f, cases[i].want) != 0)
            fail_msg("focus of '%s': '%s', want '%s'", cases[i].q, f, cases[i].want);
    }
    /* out of memory: NULL */
    tg_buf_free(&b);
    tg_buf_init(&b, 4);
    assert_null(tg_text_focus(cases[2].q, strlen(cases[2].q), &b));
    tg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_table),
        cmocka_unit_test(test_normalize_invalid_utf8),
        cmocka_unit_test(test_normalize_ascii_matches_icu),
        cmocka_unit_test(test_t2s_matches_whole_text),
        cmocka_unit_test(test_normalize_appends_and_limits),
        cmocka_unit_test(test_tokenize_chinese),
        cmocka_unit_test(test_tokenize_table),
        cmocka_unit_test(test_tokenize_japanese),
        cmocka_unit_test(test_tokenize_offsets),
        cmocka_unit_test(test_tokens_reset_reuse),
        cmocka_unit_test(test_long_input),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_allocation_failure),
        cmocka_unit_test(test_stem_table),
        cmocka_unit_test(test_focus),
        cmocka_unit_test(test_throughput),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
