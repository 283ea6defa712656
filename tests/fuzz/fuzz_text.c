/*
 * fuzz_text.c - what trustgate reads in a customer's words (src/text) on
 * arbitrary bytes: normalization, tokenization of what normalization
 * made, entity extraction and masking of personal identifiers.  None may
 * crash or leak, and each keeps its contract (text.h, policy.h):
 *   - normalized text is valid UTF-8 with single spaces, none at either end;
 *   - every token lies inside the normalized text, in text order;
 *   - every entity span lies inside the input, and spans of different
 *     entities do not overlap;
 *   - masking succeeds and leaves valid UTF-8 when given valid UTF-8.
 * The first byte chooses the normalization flags.
 */
#include "fuzz.h"

#include "policy/policy.h"
#include "text/text.h"

#include <stdlib.h>
#include <string.h>

#define POLICY_PATTERN "P[0-9]{10}"

/* Opened once: ICU's transliterator takes long to build. */
static struct tg_text *tx;

static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k = c < 0x80             ? 0
                   : (c & 0xe0) == 0xc0 ? 1
                   : (c & 0xf0) == 0xe0 ? 2
                   : (c & 0xf8) == 0xf0 ? 3
                                        : 9;
        if (k == 9 || (k && (c < 0xc2 || i + k >= n)))
            return false;
        for (size_t j = 1; j <= k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
        i += k + 1;
    }
    return true;
}

static void check_normalized(const struct tg_buf *b)
{
    const char *s = b->data ? b->data : "";
    size_t n = b->len;
    if (s[n] != '\0' || !valid_utf8((const unsigned char *)s, n))
        abort();
    if (n && (s[0] == ' ' || s[n - 1] == ' '))
        abort();
    if (memmem(s, n, "  ", 2))
        abort();
}

static void check_tokens(const struct tg_tokens *t, size_t len)
{
    uint32_t last = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct tg_token *k = &t->v[i];
        if (k->start > k->end || k->end > len || k->start < last || strlen(k->text) != k->len)
            abort();
        last = k->start;
    }
}

struct span {
    uint32_t start, end;
};

static int by_start(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static void check_entities(const struct tg_entities *e, size_t len)
{
    size_t n = e->n_money + e->n_pii;
    struct span *v = malloc((n ? n : 1) * sizeof(*v));
    if (!v)
        return;
    for (size_t i = 0; i < e->n_money; i++)
        v[i] = (struct span){e->money[i].start, e->money[i].end};
    for (size_t i = 0; i < e->n_pii; i++)
        v[e->n_money + i] = (struct span){e->pii[i].start, e->pii[i].end};
    qsort(v, n, sizeof(*v), by_start);
    for (size_t i = 0; i < n; i++) {
        if (v[i].start >= v[i].end || v[i].end > len)
            abort();
        if (i && v[i].start < v[i - 1].end)
            abort();
    }
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    if (!tx && tg_text_open(&tx, err, sizeof(err)))
        abort();
    if (size == 0)
        return 0;
    unsigned flags = data[0] & 1 ? TG_NORM_T2S : 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    struct tg_buf norm;
    tg_buf_init(&norm, TG_BUF_UNLIMITED);
    if (tg_text_normalize(tx, text, len, flags, &norm) == TG_OK) {
        check_normalized(&norm);
        struct tg_tokens toks;
        tg_tokens_init(&toks);
        if (tg_text_tokenize(tx, norm.data ? norm.data : "", norm.len, TG_TOKEN_DEFAULT, &toks) ==
            TG_OK)
            check_tokens(&toks, norm.len);
        tg_tokens_free(&toks);
    }
    tg_buf_free(&norm);

    struct tg_entities ents;
    struct tg_entity_opts opts = {.policy_pattern = POLICY_PATTERN};
    tg_entities_init(&ents);
    if (tg_entities_extract(text, len, &opts, &ents) == TG_OK)
        check_entities(&ents, len);
    tg_entities_free(&ents);

    struct tg_buf masked;
    tg_buf_init(&masked, TG_BUF_UNLIMITED);
    int rc = tg_pii_mask(text, len, POLICY_PATTERN, &masked);
    if (valid_utf8((const unsigned char *)text, len) &&
        (rc != TG_OK ||
         !valid_utf8((const unsigned char *)(masked.data ? masked.data : ""), masked.len)))
        abort();
    tg_buf_free(&masked);
    return 0;
}
