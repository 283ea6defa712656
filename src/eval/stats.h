/*
 * stats.h - the statistics experiments are judged by (formulas and test
 * vectors from the papers and tools named below).
 *
 * Fixed horizon: the two-proportion z-test and Welch's t-test.  Sequential
 * (results may be looked at daily without inflating false positives): the
 * mixture sequential probability ratio test (mSPRT, Johari et al. 2017) and
 * the asymptotic confidence sequences of Waudby-Smith et al. (2021) as
 * GrowthBook uses them.  Checks: sample-ratio mismatch (χ² goodness of
 * fit), Benjamini–Hochberg across metrics, and CUPED's θ (Deng et al. 2013)
 * for variance reduction with a pre-period covariate.
 */
#ifndef TG_EVAL_STATS_H
#define TG_EVAL_STATS_H

#include "core/core.h"

struct tg_stats_test {
    double diff;            /* treatment minus control */
    double stat;            /* z or t */
    double df;              /* Welch's degrees of freedom (0 for z) */
    double p;               /* two-sided */
    double ci_low, ci_high; /* for diff */
};

/* Sufficient statistics of one arm. */
struct tg_stats_moments {
    double n, sum, sum_sq;
};

/* x1 of n1 (control) against x2 of n2 (treatment): pooled z, and the
 * unpooled (Wald) CI of the difference at level 1 - alpha. */
void tg_stats_two_proportions_at(double x1, double n1, double x2, double n2, double alpha,
                                 struct tg_stats_test *out);
/* The same at alpha 0.05 (a 95 % CI). */
void tg_stats_two_proportions(double x1, double n1, double x2, double n2,
                              struct tg_stats_test *out);
/* Welch's t-test of b (treatment) against a (control), with a 1 - alpha CI. */
void tg_stats_welch(const struct tg_stats_moments *a, const struct tg_stats_moments *b,
                    double alpha, struct tg_stats_test *out);

/* mSPRT likelihood ratio for an observed difference diff whose estimate has
 * variance var, normal mixture of variance tau2: reject when >= 1/alpha; the
 * always-valid p-value is the running minimum of 1/Λ. */
double tg_stats_msprt(double diff, double var, double tau2);
/* Half-width of the asymptotic confidence sequence after n observations
 * with standard deviation sigma, tuned for n_star (GrowthBook: 5000). */
double tg_stats_cs_halfwidth(double sigma, double n, double alpha, double n_star);

/* Sample-ratio mismatch: the χ² p-value of observed counts against the
 * configured shares (k arms); the statistic in *chi2 (may be NULL). */
double tg_stats_srm(const double *observed, const double *shares, size_t k, double *chi2);
/* Benjamini–Hochberg at false discovery rate q: marks reject[i] (all
 * cleared first) and counts the rejected hypotheses in *n.  TG_OK, or
 * TG_E_NOMEM with every reject[i] false and *n 0. */
int tg_stats_bh(const double *p, size_t m, double q, bool *reject, size_t *n);
/* CUPED's θ = cov(y, x) / var(x); the adjusted metric is y - θ(x - mean x). */
double tg_stats_cuped_theta(const double *y, const double *x, size_t n);

/* Distribution functions. */
double tg_stats_betai(double a, double b, double x); /* regularized incomplete beta */
double tg_stats_t_two_sided(double t, double df);    /* P(|T| >= |t|) */
double tg_stats_t_quantile(double p, double df);     /* P(T <= q) = p */
double tg_stats_normal_two_sided(double z);          /* P(|Z| >= |z|) */
double tg_stats_normal_quantile(double p);           /* P(Z <= q) = p, 0 < p < 1 */
double tg_stats_chi2_upper(double x, double df);     /* P(X >= x) */

#endif
