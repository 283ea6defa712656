/*
 * stats.c - the statistics of experiments (stats.h): fixed-horizon tests,
 * sequential tests that may be looked at every day, sample-ratio mismatch,
 * multiple testing and variance reduction.  The distribution functions are
 * the textbook ones: the regularized incomplete beta function by its
 * continued fraction (modified Lentz) for Student's t, and the regularized
 * incomplete gamma function by its series and continued fraction for χ².
 */
#include "eval/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ distributions */

/* Continued fraction of the incomplete beta function (modified Lentz). */
static double betacf(double a, double b, double x)
{
    const double tiny = 1e-300, eps = 1e-15;
    double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
    if (fabs(d) < tiny)
        d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 10000; m++) {
        int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < eps)
            break;
    }
    return h;
}

double tg_stats_betai(double a, double b, double x)
{
    if (x <= 0)
        return 0;
    if (x >= 1)
        return 1;
    double bt = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log(1 - x));
    if (x < (a + 1) / (a + b + 2))
        return bt * betacf(a, b, x) / a;
    return 1 - bt * betacf(b, a, 1 - x) / b;
}

double tg_stats_t_two_sided(double t, double df)
{
    return tg_stats_betai(df / 2, 0.5, df / (df + t * t));
}

double tg_stats_t_quantile(double p, double df)
{
    /* the t with P(T <= t) = p, by bisection on the two-sided tail */
    double want = 2 * (p > 0.5 ? 1 - p : p), lo = 0, hi = 1;
    while (tg_stats_t_two_sided(hi, df) > want && hi < 1e6)
        hi *= 2;
    for (int i = 0; i < 200; i++) {
        double mid = (lo + hi) / 2;
        if (tg_stats_t_two_sided(mid, df) > want)
            lo = mid;
        else
            hi = mid;
    }
    double t = (lo + hi) / 2;
    return p > 0.5 ? t : -t;
}

double tg_stats_normal_two_sided(double z)
{
    return erfc(fabs(z) / sqrt(2.0));
}

double tg_stats_normal_quantile(double p)
{
    /* bisection on the upper tail P(Z >= q) = erfc(q/√2)/2, to double precision */
    double want = p > 0.5 ? 1 - p : p, lo = 0, hi = 40;
    if (p <= 0 || p >= 1)
        return p <= 0 ? -INFINITY : INFINITY;
    for (int i = 0; i < 200 && hi - lo > 1e-15; i++) {
        double mid = (lo + hi) / 2;
        if (erfc(mid / sqrt(2.0)) / 2 > want)
            lo = mid;
        else
            hi = mid;
    }
    double q = (lo + hi) / 2;
    return p > 0.5 ? q : -q;
}

/* Regularized upper incomplete gamma Q(a, x). */
static double gammq(double a, double x)
{
    if (x <= 0)
        return 1;
    double gln = lgamma(a);
    if (x < a + 1) {
        double ap = a, sum = 1 / a, del = sum;
        for (int n = 0; n < 10000; n++) {
            ap += 1;
            del *= x / ap;
            sum += del;
            if (fabs(del) < fabs(sum) * 1e-15)
                break;
        }
        return 1 - sum * exp(-x + a * log(x) - gln);
    }
    const double tiny = 1e-300;
    double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
    for (int i = 1; i <= 10000; i++) {
        double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        if (fabs(d) < tiny)
            d = tiny;
        c = b + an / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < 1e-15)
            break;
    }
    return exp(-x + a * log(x) - gln) * h;
}

double tg_stats_chi2_upper(double x, double df)
{
    return gammq(df / 2, x / 2);
}

/* ------------------------------------------------------------ fixed horizon */

void tg_stats_two_proportions_at(double x1, double n1, double x2, double n2, double alpha,
                                 struct tg_stats_test *out)
{
    memset(out, 0, sizeof(*out));
    double p1 = x1 / n1, p2 = x2 / n2, p = (x1 + x2) / (n1 + n2);
    double se0 = sqrt(p * (1 - p) * (1 / n1 + 1 / n2));
    double se = sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2);
    out->diff = p2 - p1;
    out->stat = se0 > 0 ? out->diff / se0 : 0;
    out->p = tg_stats_normal_two_sided(out->stat);
    double z = tg_stats_normal_quantile(1 - alpha / 2);
    out->ci_low = out->diff - z * se;
    out->ci_high = out->diff + z * se;
}

void tg_stats_two_proportions(double x1, double n1, double x2, double n2, struct tg_stats_test *out)
{
    tg_stats_two_proportions_at(x1, n1, x2, n2, 0.05, out);
}

void tg_stats_welch(const struct tg_stats_moments *a, const struct tg_stats_moments *b,
                    double alpha, struct tg_stats_test *out)
{
    memset(out, 0, sizeof(*out));
    double ma = a->sum / a->n, mb = b->sum / b->n;
    double va = (a->sum_sq - a->sum * a->sum / a->n) / (a->n - 1);
    double vb = (b->sum_sq - b->sum * b->sum / b->n) / (b->n - 1);
    double qa = va / a->n, qb = vb / b->n, se = sqrt(qa + qb);
    out->diff = mb - ma;
    out->df = (qa + qb) * (qa + qb) / (qa * qa / (a->n - 1) + qb * qb / (b->n - 1));
    out->stat = se > 0 ? out->diff / se : 0;
    out->p = tg_stats_t_two_sided(out->stat, out->df);
    double t = tg_stats_t_quantile(1 - alpha / 2, out->df);
    out->ci_low = out->diff - t * se;
    out->ci_high = out->diff + t * se;
}

/* ------------------------------------------------------------ sequential */

double tg_stats_msprt(double diff, double var, double tau2)
{
    return sqrt(var / (var + tau2)) * exp(tau2 * diff * diff / (2 * var * (var + tau2)));
}

double tg_stats_cs_halfwidth(double sigma, double n, double alpha, double n_star)
{
    double l = -2 * log(alpha);
    double rho2 = (l + log(l + 1)) / n_star; /* ρ² */
    return sigma * sqrt(2 * (n * rho2 + 1) / (n * n * rho2) * log(sqrt(n * rho2 + 1) / alpha));
}

/* ------------------------------------------------------------ checks */

double tg_stats_srm(const double *observed, const double *shares, size_t k, double *chi2)
{
    double total = 0, x = 0, share_sum = 0;
    for (size_t i = 0; i < k; i++) {
        total += observed[i];
        share_sum += shares[i];
    }
    for (size_t i = 0; i < k; i++) {
        double e = total * shares[i] / share_sum;
        x += e > 0 ? (observed[i] - e) * (observed[i] - e) / e : 0;
    }
    if (chi2)
        *chi2 = x;
    return k > 1 ? tg_stats_chi2_upper(x, (double)(k - 1)) : 1;
}

struct pv {
    double p;
    size_t i;
};

static int cmp_pv(const void *a, const void *b)
{
    double x = ((const struct pv *)a)->p, y = ((const struct pv *)b)->p;
    return (x > y) - (x < y);
}

int tg_stats_bh(const double *p, size_t m, double q, bool *reject, size_t *n)
{
    struct pv *v = tg_malloc((m ? m : 1) * sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        reject[i] = false;
    *n = 0;
    if (!v)
        return TG_E_NOMEM;
    for (size_t i = 0; i < m; i++) {
        v[i].p = p[i];
        v[i].i = i;
    }
    qsort(v, m, sizeof(*v), cmp_pv);
    for (size_t r = 1; r <= m; r++)
        if (v[r - 1].p <= (double)r * q / (double)m)
            k = r;
    for (size_t r = 0; r < k; r++)
        reject[v[r].i] = true;
    tg_free(v);
    *n = k;
    return TG_OK;
}

double tg_stats_cuped_theta(const double *y, const double *x, size_t n)
{
    double my = 0, mx = 0, cov = 0, var = 0;
    for (size_t i = 0; i < n; i++) {
        my += y[i];
        mx += x[i];
    }
    my /= (double)n;
    mx /= (double)n;
    for (size_t i = 0; i < n; i++) {
        cov += (y[i] - my) * (x[i] - mx);
        var += (x[i] - mx) * (x[i] - mx);
    }
    return var > 0 ? cov / var : 0;
}
