/*
 * fairness.c - group fairness of decisions (Fairlearn's definitions,
 * REFERENCES.md "Fairness"): selection rate per group, demographic parity
 * difference (max − min selection rate) and ratio (min / max), equalized
 * odds difference (the larger of the TPR and FPR spreads, when true outcomes
 * are known), the smallest group, and a percentile bootstrap interval for
 * the parity difference.  See fairness.h.
 */
#include "eval/fairness.h"

#include "policy/policy.h"

#include <stdio.h>

#include <stdlib.h>
#include <string.h>

static int find_group(struct tg_fair_report *r, const char *name)
{
    for (size_t i = 0; i < r->n_groups; i++)
        if (!strcmp(r->groups[i].name, name))
            return (int)i;
    if (r->n_groups == TG_FAIR_MAX_GROUPS)
        return -1;
    struct tg_fair_group *g = &r->groups[r->n_groups];
    memset(g, 0, sizeof(*g));
    tg_strlcpy(g->name, name, sizeof(g->name));
    return (int)r->n_groups++;
}

/* DPD of a weighting of the rows (bootstrap counts), over the report's groups. */
static double dpd_of(const int *gi, const int *pred, const unsigned *w, size_t n, size_t ng)
{
    double sel[TG_FAIR_MAX_GROUPS] = {0}, cnt[TG_FAIR_MAX_GROUPS] = {0}, lo = 2, hi = -1;
    for (size_t i = 0; i < n; i++) {
        cnt[gi[i]] += w[i];
        sel[gi[i]] += pred[i] ? w[i] : 0;
    }
    for (size_t g = 0; g < ng; g++) {
        if (!cnt[g])
            continue;
        double r = sel[g] / cnt[g];
        lo = r < lo ? r : lo;
        hi = r > hi ? r : hi;
    }
    return hi >= lo ? hi - lo : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int tg_fairness_compute(const char *const *group, const int *pred, const int *truth, size_t n,
                        size_t bootstrap, uint64_t seed, struct tg_fair_report *r)
{
    memset(r, 0, sizeof(*r));
    int *gi = tg_malloc((n ? n : 1) * sizeof(int));
    if (!gi)
        return TG_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        int g = find_group(r, group[i]);
        if (g < 0) {
            tg_free(gi);
            return TG_E_TOOBIG;
        }
        gi[i] = g;
        struct tg_fair_group *G = &r->groups[g];
        G->n++;
        G->selected += pred[i] != 0;
        if (truth) {
            if (truth[i]) {
                G->pos++;
                G->tp += pred[i] != 0;
            } else {
                G->neg++;
                G->fp += pred[i] != 0;
            }
        }
    }
    r->has_truth = truth != NULL;
    double lo = 2, hi = -1, tlo = 2, thi = -1, flo = 2, fhi = -1;
    r->min_group = n;
    for (size_t g = 0; g < r->n_groups; g++) {
        struct tg_fair_group *G = &r->groups[g];
        G->rate = (double)G->selected / (double)G->n;
        lo = G->rate < lo ? G->rate : lo;
        hi = G->rate > hi ? G->rate : hi;
        r->min_group = G->n < r->min_group ? G->n : r->min_group;
        if (truth) {
            G->tpr = G->pos ? (double)G->tp / (double)G->pos : 0;
            G->fpr = G->neg ? (double)G->fp / (double)G->neg : 0;
            tlo = G->tpr < tlo ? G->tpr : tlo;
            thi = G->tpr > thi ? G->tpr : thi;
            flo = G->fpr < flo ? G->fpr : flo;
            fhi = G->fpr > fhi ? G->fpr : fhi;
        }
    }
    r->dpd = r->n_groups ? hi - lo : 0;
    r->dpr = r->n_groups && hi > 0 ? lo / hi : 0;
    if (truth)
        r->eod = (thi - tlo) > (fhi - flo) ? thi - tlo : fhi - flo;
    /* percentile bootstrap of the parity difference: resample the rows */
    r->ci_low = r->ci_high = r->dpd;
    if (bootstrap && n) {
        unsigned *w = tg_malloc(n * sizeof(unsigned));
        double *d = tg_malloc(bootstrap * sizeof(double));
        uint64_t s = seed ? seed : 0x9E3779B97F4A7C15ULL;
        if (!w || !d) {
            tg_free(w);
            tg_free(d);
            tg_free(gi);
            return TG_E_NOMEM;
        }
        for (size_t b = 0; b < bootstrap; b++) {
            memset(w, 0, n * sizeof(unsigned));
            for (size_t i = 0; i < n; i++) {
                s ^= s << 13; /* xorshift64 */
                s ^= s >> 7;
                s ^= s << 17;
                w[s % n]++;
            }
            d[b] = dpd_of(gi, pred, w, n, r->n_groups);
        }
        qsort(d, bootstrap, sizeof(double), cmp_double);
        r->ci_low = d[(size_t)(0.025 * (double)(bootstrap - 1))];
        r->ci_high = d[(size_t)(0.975 * (double)(bootstrap - 1))];
        tg_free(w);
        tg_free(d);
    }
    tg_free(gi);
    return TG_OK;
}

bool tg_fairness_gate(const struct tg_fair_report *r, double limit, size_t min_group)
{
    /* the difference is over the limit and its interval clear of it, on groups large enough */
    return r->dpd > limit && r->ci_low > limit && r->min_group >= min_group;
}

void tg_fairness_value_pseudonym(const uint8_t *key, size_t keylen, const char *attribute,
                                 const char *value, char out[33])
{
    char v[128], type[96];
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = 0;
    for (; value[n] && n + 1 < sizeof(v); n++)
        v[n] = (char)(value[n] >= 'A' && value[n] <= 'Z' ? value[n] - 'A' + 'a' : value[n]);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    v[n] = '\0';
    snprintf(type, sizeof(type), "attr:%s", attribute);
    tg_pii_pseudonym(key, keylen, type, v, n, out);
}
