/*
 * fairness.c - group fairness of decisions (Fairlearn's definitions, as
 * its documentation states them): selection rate per group, demographic parity
 * difference (max − min selection rate) and ratio (min / max), equalized
 * odds difference (the larger of the TPR and FPR spreads, when true outcomes
 * are known), the smallest group; and the release gate's test, a gate with the error
 * rate it claims: Pearson's χ² test of homogeneity
 * with Newcombe's pairwise intervals under a Bonferroni split of alpha.
 *
 * Why not a bootstrap of max − min: the maximum over groups of noisy rates is
 * biased upward (with equal true rates its expectation grows with the number
 * of groups and shrinks with their size), so a percentile interval of it
 * closes on noise; simultaneous pairwise intervals hold their coverage for
 * any number and size of groups.  See fairness.h.
 */
#include "eval/fairness.h"

#include "eval/stats.h"
#include "policy/policy.h"

#include <math.h>
#include <stdio.h>
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

/* Spread (max − min) of the defined values x[g] of the groups; NAN when none is defined. */
static double spread(const double *x, size_t n)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t g = 0; g < n; g++) {
        if (isnan(x[g]))
            continue;
        lo = x[g] < lo ? x[g] : lo;
        hi = x[g] > hi ? x[g] : hi;
    }
    return hi >= lo ? hi - lo : NAN;
}

int tg_fairness_compute(const char *const *group, const int *pred, const int *truth, size_t n,
                        struct tg_fair_report *r)
{
    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i < n; i++) {
        int g = find_group(r, group[i]);
        if (g < 0)
            return TG_E_TOOBIG;
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
    double rate[TG_FAIR_MAX_GROUPS], tpr[TG_FAIR_MAX_GROUPS], fpr[TG_FAIR_MAX_GROUPS];
    double lo = INFINITY, hi = -INFINITY;
    r->min_group = n;
    for (size_t g = 0; g < r->n_groups; g++) {
        struct tg_fair_group *G = &r->groups[g];
        G->rate = rate[g] = (double)G->selected / (double)G->n;
        lo = G->rate < lo ? G->rate : lo;
        hi = G->rate > hi ? G->rate : hi;
        r->min_group = G->n < r->min_group ? G->n : r->min_group;
        /* a rate without a denominator is undefined, not 0 */
        G->tpr = tpr[g] = truth && G->pos ? (double)G->tp / (double)G->pos : NAN;
        G->fpr = fpr[g] = truth && G->neg ? (double)G->fp / (double)G->neg : NAN;
    }
    r->dpd = r->n_groups ? spread(rate, r->n_groups) : NAN;
    r->dpr = r->n_groups && hi > 0 ? lo / hi : NAN;
    r->eod = NAN;
    if (truth) {
        double t = spread(tpr, r->n_groups), f = spread(fpr, r->n_groups);
        r->eod = isnan(t) ? f : isnan(f) ? t : t > f ? t : f;
    }
    r->test.gap = r->test.low = r->test.high = NAN;
    r->test.p = 1;
    return TG_OK;
}

/* ------------------------------------------------------------ the gate's test */

/*
 * Wilson's score interval for x of n at normal quantile z (Wilson 1927,
 * "Probable inference, the law of succession, and statistical inference",
 * JASA 22:209-212): centre (p + z²/2n) / (1 + z²/n), half-width
 * z/(1 + z²/n) · √(p(1 − p)/n + z²/4n²).
 */
static void wilson(double x, double n, double z, double *l, double *u)
{
    double p = x / n, z2 = z * z, d = 1 + z2 / n;
    double c = (p + z2 / (2 * n)) / d, h = z / d * sqrt(p * (1 - p) / n + z2 / (4 * n * n));
    *l = c - h > 0 ? c - h : 0;
    *u = c + h < 1 ? c + h : 1;
}

/*
 * Newcombe's hybrid score interval for p1 − p2 (Newcombe 1998, "Interval
 * estimation for the difference between independent proportions: comparison
 * of eleven methods", Stat Med 17:873-890, method 10): with Wilson limits
 * (l1, u1) and (l2, u2) at the same z, L = D − √((p1 − l1)² + (u2 − p2)²) and
 * U = D + √((u1 − p1)² + (p2 − l2)²), D = p1 − p2.
 */
static void newcombe(const struct tg_fair_group *a, const struct tg_fair_group *b, double z,
                     double *lo, double *hi)
{
    double l1, u1, l2, u2, p1 = a->rate, p2 = b->rate;
    wilson((double)a->selected, (double)a->n, z, &l1, &u1);
    wilson((double)b->selected, (double)b->n, z, &l2, &u2);
    double d = p1 - p2;
    *lo = d - sqrt((p1 - l1) * (p1 - l1) + (u2 - p2) * (u2 - p2));
    *hi = d + sqrt((u1 - p1) * (u1 - p1) + (p2 - l2) * (p2 - l2));
}

/* Pearson's X² of the tested groups' k×2 table with x[g] selected of n[g]. */
static double pearson(const size_t *x, const size_t *n, size_t k, double sel, double all)
{
    double share = sel / all, x2 = 0;
    for (size_t g = 0; g < k; g++) {
        double e1 = (double)n[g] * share, e0 = (double)n[g] - e1, d = (double)x[g] - e1;
        x2 += d * d / e1 + d * d / e0; /* (O1 − E1)² = (O0 − E0)² */
    }
    return x2;
}

/* splitmix64 (Steele, Lea, Flood 2014): a seeded stream for the Monte-Carlo tables. */
static double next_unit(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

/*
 * Monte-Carlo permutation p-value of X² with both margins fixed: each table
 * deals the sel selected rows at random among the groups' rows (a row is
 * selected with probability selected-left / rows-left), which draws from the
 * multivariate hypergeometric distribution of the null.
 */
static double permutation_p(const size_t *n, size_t k, size_t sel, size_t all, double x2,
                            size_t resamples, uint64_t seed)
{
    size_t at_least = 0, y[TG_FAIR_MAX_GROUPS];
    uint64_t s = seed;
    for (size_t b = 0; b < resamples; b++) {
        size_t sel_left = sel, left = all;
        for (size_t g = 0; g < k; g++) {
            y[g] = 0;
            for (size_t i = 0; i < n[g]; i++, left--) {
                if (next_unit(&s) * (double)left < (double)sel_left) {
                    y[g]++;
                    sel_left--;
                }
            }
        }
        /* a relative tolerance: equal tables must count as "at least as extreme" */
        if (pearson(y, n, k, (double)sel, (double)all) >= x2 * (1 - 1e-12))
            at_least++;
    }
    return (double)(at_least + 1) / (double)(resamples + 1);
}

/* Pearson's χ² of the tested groups, or its Monte-Carlo p-value when an expected count is
 * below 5 and resamples > 0.  No variation at all (every row alike) proves nothing: p 1. */
static void homogeneity(struct tg_fair_test *t, const size_t *x, const size_t *n, size_t k,
                        size_t resamples, uint64_t seed)
{
    size_t sel = 0, all = 0;
    bool small = false;
    for (size_t i = 0; i < k; i++) {
        sel += x[i];
        all += n[i];
    }
    if (sel == 0 || sel == all)
        return;
    t->chi2 = pearson(x, n, k, (double)sel, (double)all);
    t->p = tg_stats_chi2_upper(t->chi2, t->df);
    for (size_t i = 0; i < k; i++) {
        double e1 = (double)n[i] * (double)sel / (double)all;
        small |= e1 < 5 || (double)n[i] - e1 < 5;
    }
    if (small && resamples) {
        t->resamples = resamples;
        t->p =
            permutation_p(n, k, sel, all, t->chi2, resamples, seed ? seed : 0x2545F4914F6CDD1DULL);
    }
}

/* The gap's simultaneous interval from Newcombe's interval of every pair at t->z. */
static void simultaneous(struct tg_fair_test *t, const struct tg_fair_report *r, const size_t *idx,
                         size_t k)
{
    t->low = t->high = 0;
    t->low_a = idx[0];
    t->low_b = idx[1];
    for (size_t i = 0; i < k; i++) {
        for (size_t j = i + 1; j < k; j++) {
            double l, u;
            newcombe(&r->groups[idx[i]], &r->groups[idx[j]], t->z, &l, &u);
            /* what the pair proves about |p_i − p_j|, and the most it allows */
            double proven = l > 0 ? l : -u > 0 ? -u : 0, allowed = fmax(fabs(l), fabs(u));
            if (proven > t->low) {
                t->low = proven;
                t->low_a = l > 0 ? idx[i] : idx[j];
                t->low_b = l > 0 ? idx[j] : idx[i];
            }
            t->high = fmax(t->high, allowed);
        }
    }
    t->high = fmin(t->high, 1);
}

void tg_fairness_test(struct tg_fair_report *r, size_t min_group, double alpha, size_t resamples,
                      uint64_t seed)
{
    struct tg_fair_test *t = &r->test;
    size_t x[TG_FAIR_MAX_GROUPS], n[TG_FAIR_MAX_GROUPS], idx[TG_FAIR_MAX_GROUPS], k = 0;
    double lo = INFINITY, hi = -INFINITY;
    memset(t, 0, sizeof(*t));
    t->alpha = alpha > 0 && alpha < 1 ? alpha : TG_FAIR_ALPHA;
    t->min_group = min_group;
    t->gap = t->low = t->high = NAN;
    t->p = 1;
    for (size_t g = 0; g < r->n_groups; g++) {
        struct tg_fair_group *G = &r->groups[g];
        G->tested = G->n > 0 && G->n >= min_group;
        if (!G->tested)
            continue;
        x[k] = G->selected;
        n[k] = G->n;
        idx[k++] = g;
        lo = fmin(lo, G->rate);
        hi = fmax(hi, G->rate);
    }
    t->groups = k;
    if (k < 2)
        return;
    t->pairs = k * (k - 1) / 2;
    t->df = (double)(k - 1);
    t->gap = hi - lo;
    homogeneity(t, x, n, k, resamples, seed);
    /* Bonferroni: each of the m pairs at 1 − alpha/m, two-sided */
    t->z = tg_stats_normal_quantile(1 - t->alpha / (2 * (double)t->pairs));
    simultaneous(t, r, idx, k);
}

bool tg_fairness_gate(const struct tg_fair_report *r, double limit)
{
    const struct tg_fair_test *t = &r->test;
    /* both parts of the test, and a strict inequality: a gap at the limit is no proof */
    return t->groups >= 2 && t->p < t->alpha && t->low > (limit > 0 ? limit : 0);
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
