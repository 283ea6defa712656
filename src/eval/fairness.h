/*
 * fairness.h - group fairness of decisions, as Fairlearn defines it, and the
 * release gate: a test that closes on evidence of a gap above a limit, with
 * the error rate it claims (at most alpha under equal true rates, for any
 * number and size of groups).
 */
#ifndef TG_EVAL_FAIRNESS_H
#define TG_EVAL_FAIRNESS_H

#include "core/core.h"

#define TG_FAIR_MAX_GROUPS 64
#define TG_FAIR_ALPHA 0.05 /* the gate's default error rate */

struct tg_fair_group {
    char name[64];
    size_t n, selected; /* rows, and rows with a positive decision */
    size_t pos, tp;     /* with true outcomes: positives, and those selected */
    size_t neg, fp;     /* negatives, and those selected */
    double rate;        /* selected / n */
    double tpr, fpr;    /* tp / pos, fp / neg: NAN (undefined) without positives (negatives) */
    bool tested;        /* n >= the test's min_group: part of the gate (tg_fairness_test) */
};

/*
 * The gate's test over the groups with at least min_group rows (the others
 * are reported, not tested).  Two parts, both needed to close:
 *
 *  - Pearson's χ² test of homogeneity of the k×2 table (selected or not per
 *    group), k − 1 degrees of freedom; when an expected count is below 5 the
 *    p-value is a Monte-Carlo permutation p-value (1 + #{X*² >= X²}) / (B + 1)
 *    over B tables drawn with the margins fixed (Davison & Hinkley 1997,
 *    "Bootstrap methods and their application", ch. 4), when B > 0.
 *  - A simultaneous 1 − alpha interval [low, high] for the true gap (max − min
 *    of the tested groups' true rates): Newcombe's hybrid score interval for
 *    each pair's difference (Newcombe 1998, method 10, from Wilson's 1927
 *    score intervals) at level 1 − alpha/m, m = k(k − 1)/2 pairs (Bonferroni),
 *    so that all m cover together with probability >= 1 − alpha; low is the
 *    largest distance from 0 a pair's interval proves, high the largest
 *    distance it allows.
 */
struct tg_fair_test {
    double alpha;        /* error rate; the interval's level is 1 − alpha */
    size_t min_group;    /* groups with fewer rows are left out */
    size_t groups;       /* groups tested (k) */
    size_t pairs;        /* k(k − 1)/2 */
    double gap;          /* max − min rate over the tested groups; NAN when k < 2 */
    double chi2, df, p;  /* the homogeneity test (p 1 when k < 2 or no variation) */
    size_t resamples;    /* Monte-Carlo tables behind p (0: the χ² distribution) */
    double z;            /* the normal quantile of each pair's interval */
    double low, high;    /* the gap's simultaneous interval; NAN when k < 2 */
    size_t low_a, low_b; /* the pair (group indexes) whose interval gives low */
};

struct tg_fair_report {
    struct tg_fair_group groups[TG_FAIR_MAX_GROUPS];
    size_t n_groups;
    /* Fairlearn's figures over every group, tested or not: the demographic parity
     * difference (max − min rate) and ratio (min / max; NAN at 0/0), the equalized odds
     * difference (the larger of the TPR and FPR spreads over the groups where each is
     * defined; NAN without truth or any defined rate), the rows of the smallest group. */
    double dpd, dpr, eod;
    bool has_truth;
    size_t min_group;
    struct tg_fair_test test; /* written by tg_fairness_test */
};

/*
 * Rows i < n: group[i] (the sensitive attribute's value), pred[i] (the
 * decision, nonzero = selected) and truth[i] (the true outcome; truth may be
 * NULL).  Fills r (caller-owned) with the per-group counts and Fairlearn's
 * figures; r->test holds no test (gap NAN, p 1) until tg_fairness_test.
 * Allocates nothing.  TG_OK, or TG_E_TOOBIG beyond TG_FAIR_MAX_GROUPS.
 */
int tg_fairness_compute(const char *const *group, const int *pred, const int *truth, size_t n,
                        struct tg_fair_report *r);

/*
 * The gate's test (struct tg_fair_test) on r's counts: marks each group's
 * tested flag and writes r->test.  alpha outside (0, 1) means TG_FAIR_ALPHA.
 * resamples (B) and seed drive the Monte-Carlo p-value for small expected
 * counts (seeded: the same report gives the same p).  Allocates nothing.
 */
void tg_fairness_test(struct tg_fair_report *r, size_t min_group, double alpha, size_t resamples,
                      uint64_t seed);

/*
 * The release gate on a tested report: closed when at least two groups were
 * tested, the homogeneity test rejects (p < alpha) and the simultaneous
 * interval proves the true gap above limit (low > limit; a negative limit
 * counts as 0).  A gap equal to the limit never closes it.
 */
bool tg_fairness_gate(const struct tg_fair_report *r, double limit);

/*
 * The stored form of a sensitive attribute's value (gender, age band,
 * region from a channel's metadata): a keyed pseudonym per attribute of the
 * value trimmed and in ASCII lower case, so equal values group together and
 * the value itself is never kept.  Whoever holds the deployment's key and
 * the list of values can name the groups again (the fairness report).
 */
void tg_fairness_value_pseudonym(const uint8_t *key, size_t keylen, const char *attribute,
                                 const char *value, char out[33]);

#endif
