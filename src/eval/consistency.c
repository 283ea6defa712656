/*
 * consistency.c - whether an answer says only what its evidence says, and
 * the small statistics the evaluation reports use.  See eval.h.
 */
#include "eval/eval.h"

#include "policy/policy.h"
#include "text/text.h"

#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double tg_eval_quantile(double *v, size_t n, double q)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof(*v), cmp_double);
    size_t r = (size_t)(q * (double)n + 0.999999);
    return v[r ? (r > n ? n - 1 : r - 1) : 0];
}

static int normalize(struct tg_text *tx, const char *s, size_t len, struct tg_buf *out)
{
    tg_buf_reset(out);
    return tg_text_normalize(tx, s, len, TG_NORM_T2S, out);
}

bool tg_eval_contains(struct tg_text *tx, const char *text, const char *fact)
{
    struct tg_buf a, b;
    tg_buf_init(&a, TG_BUF_UNLIMITED);
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    bool found = normalize(tx, text, strlen(text), &a) == TG_OK &&
                 normalize(tx, fact, strlen(fact), &b) == TG_OK && b.len &&
                 strstr(a.data ? a.data : "", b.data) != NULL;
    tg_buf_free(&a);
    tg_buf_free(&b);
    return found;
}

/* A sorted, de-duplicated token list of a normalized text. */
struct bag {
    char **v;
    size_t n;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int bag_of(struct tg_text *tx, const char *norm, size_t len, struct bag *out)
{
    struct tg_tokens toks;
    tg_tokens_init(&toks);
    int rc = tg_text_tokenize(tx, norm, len, TG_TOKEN_DEFAULT, &toks);
    out->v = rc ? NULL : tg_malloc((toks.n ? toks.n : 1) * sizeof(char *));
    out->n = 0;
    if (!rc && !out->v)
        rc = TG_E_NOMEM;
    for (size_t i = 0; !rc && i < toks.n; i++) {
        if (!(out->v[out->n] = tg_strdup(toks.v[i].text)))
            rc = TG_E_NOMEM;
        else
            out->n++;
    }
    tg_tokens_free(&toks);
    if (!rc && out->n) {
        qsort(out->v, out->n, sizeof(char *), cmp_str);
        size_t w = 1;
        for (size_t i = 1; i < out->n; i++) {
            if (strcmp(out->v[i], out->v[w - 1]) != 0)
                out->v[w++] = out->v[i];
            else
                tg_free(out->v[i]);
        }
        out->n = w;
    }
    return rc;
}

static void bag_free(struct bag *b)
{
    for (size_t i = 0; i < b->n; i++)
        tg_free(b->v[i]);
    tg_free(b->v);
    b->v = NULL;
    b->n = 0;
}

static bool bag_has(const struct bag *b, const char *tok)
{
    return b->n && bsearch(&tok, b->v, b->n, sizeof(char *), cmp_str) != NULL;
}

/* Bytes of the sentence terminator at s (0 when none): 。！？；!?; and line ends. */
static size_t terminator(const char *s)
{
    static const char *const ends[] = {"。", "！", "？", "；", "!", "?", ";", "\n"};
    for (size_t i = 0; i < TG_ARRAY_LEN(ends); i++)
        if (strncmp(s, ends[i], strlen(ends[i])) == 0)
            return strlen(ends[i]);
    return 0;
}

static bool is_skip(struct tg_text *tx, const char *sent, size_t len, const char *const *skip,
                    size_t n_skip)
{
    /* a citation note: "（来源：…）" (in either script) or "(Source: …)" */
    if ((len >= 9 && (strncmp(sent, "（来源", 6) == 0 || strncmp(sent, "（來源", 6) == 0)) ||
        (len >= 7 && strncmp(sent, "(Source", 7) == 0))
        return true;
    for (size_t i = 0; i < n_skip; i++) {
        struct tg_buf a, b;
        tg_buf_init(&a, TG_BUF_UNLIMITED);
        tg_buf_init(&b, TG_BUF_UNLIMITED);
        bool same = normalize(tx, sent, len, &a) == TG_OK &&
                    normalize(tx, skip[i], strlen(skip[i]), &b) == TG_OK && a.len && b.len &&
                    (strcmp(a.data, b.data) == 0 || strstr(b.data, a.data));
        tg_buf_free(&a);
        tg_buf_free(&b);
        if (same)
            return true;
    }
    return false;
}

int tg_eval_consistency(struct tg_text *tx, const char *answer, const char *const *evidence,
                        size_t n_evidence, const char *const *skip, size_t n_skip,
                        double min_overlap, struct tg_eval_consistency *out)
{
    memset(out, 0, sizeof(*out));
    /* quantities: every one must be found in the evidence */
    size_t ungrounded = 0, stated = 0;
    int rc = tg_grounding_check(answer, strlen(answer), evidence, n_evidence, NULL, 0, &ungrounded);
    if (rc)
        return rc;
    /* the number of quantities stated: check against no evidence at all */
    rc = tg_grounding_check(answer, strlen(answer), NULL, 0, NULL, 0, &stated);
    if (rc)
        return rc;
    out->quantities = stated;
    out->grounded = stated - TG_MIN(stated, ungrounded);

    /* the evidence's tokens, all passages together */
    struct tg_buf all, norm;
    struct bag ev = {0};
    tg_buf_init(&all, TG_BUF_UNLIMITED);
    tg_buf_init(&norm, TG_BUF_UNLIMITED);
    for (size_t i = 0; !rc && i < n_evidence; i++) {
        if (!evidence[i])
            continue;
        rc = tg_text_normalize(tx, evidence[i], strlen(evidence[i]), TG_NORM_T2S, &all);
        if (!rc)
            rc = tg_buf_append(&all, "\n", 1);
    }
    if (!rc)
        rc = bag_of(tx, all.data ? all.data : "", all.len, &ev);

    /* each sentence of the answer */
    const char *p = answer;
    while (!rc && *p) {
        const char *q = p;
        while (*q && !terminator(q))
            q++;
        size_t len = (size_t)(q - p);
        while (len && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        if (len && !is_skip(tx, p, len, skip, n_skip)) {
            struct bag s = {0};
            rc = normalize(tx, p, len, &norm);
            if (!rc)
                rc = bag_of(tx, norm.data ? norm.data : "", norm.len, &s);
            if (!rc && s.n >= 2) {
                size_t hit = 0;
                for (size_t i = 0; i < s.n; i++)
                    hit += bag_has(&ev, s.v[i]);
                out->claims++;
                if ((double)hit >= min_overlap * (double)s.n)
                    out->supported++;
            }
            bag_free(&s);
        }
        p = *q ? q + terminator(q) : q;
    }
    bag_free(&ev);
    tg_buf_free(&all);
    tg_buf_free(&norm);
    out->consistent = !rc && out->supported == out->claims && out->grounded == out->quantities;
    return rc;
}
