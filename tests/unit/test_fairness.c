/*
 * test_fairness.c - group fairness against Fairlearn's documented 18-row
 * example: selection rates a 0.75, b 0.5, c 0.5; demographic
 * parity difference 0.25, ratio 0.6667; equalized odds difference 1.0.  The
 * gate's test against Newcombe's published interval (1998, Table II), and its
 * error rate by simulation: 1,000 seeded null experiments per group layout,
 * equal true rates in every group, false closures at most alpha plus three
 * binomial standard errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "eval/fairness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const int y_true[18] = {0, 1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1};
static const int y_pred[18] = {0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0};
static const char *const groups[18] = {"b", "b", "a", "b", "b", "c", "c", "c", "a",
                                       "a", "c", "a", "b", "c", "c", "b", "c", "c"};

static const struct tg_fair_group *group(const struct tg_fair_report *r, const char *name)
{
    for (size_t i = 0; i < r->n_groups; i++)
        if (!strcmp(r->groups[i].name, name))
            return &r->groups[i];
    fail_msg("no group %s", name);
    return NULL;
}

/* A report from per-group counts, as tg_fairness_compute would fill it. */
static void from_counts(struct tg_fair_report *r, const size_t *n, const size_t *x, size_t k)
{
    memset(r, 0, sizeof(*r));
    r->n_groups = k;
    for (size_t g = 0; g < k; g++) {
        snprintf(r->groups[g].name, sizeof(r->groups[g].name), "g%zu", g);
        r->groups[g].n = n[g];
        r->groups[g].selected = x[g];
        r->groups[g].rate = (double)x[g] / (double)n[g];
    }
}

static void test_fairlearn_example(void **state)
{
    (void)state;
    struct tg_fair_report r;
    assert_int_equal(tg_fairness_compute(groups, y_pred, y_true, 18, &r), TG_OK);
    assert_int_equal(r.n_groups, 3);
    assert_true(fabs(group(&r, "a")->rate - 0.75) < 1e-12);
    assert_true(fabs(group(&r, "b")->rate - 0.5) < 1e-12);
    assert_true(fabs(group(&r, "c")->rate - 0.5) < 1e-12);
    assert_true(fabs(r.dpd - 0.25) < 1e-12);
    assert_true(fabs(r.dpr - 0.666667) < 5e-7);
    assert_true(fabs(r.eod - 1.0) < 1e-12);
    assert_int_equal(r.min_group, 4);
    /* 18 rows in groups of 4 to 8: at min_group 30 nothing is tested, nothing closes */
    tg_fairness_test(&r, 30, 0.05, 1000, 7);
    assert_int_equal(r.test.groups, 0);
    assert_false(group(&r, "a")->tested);
    assert_true(isnan(r.test.gap) && isnan(r.test.low));
    assert_false(tg_fairness_gate(&r, 0.0));
    /* all three tested (expected counts below 5: a seeded Monte-Carlo p-value) */
    tg_fairness_test(&r, 1, 0.05, 1000, 7);
    assert_int_equal(r.test.groups, 3);
    assert_int_equal(r.test.pairs, 3);
    assert_int_equal(r.test.resamples, 1000);
    assert_true(r.test.p > 0.05); /* 3 of 4 against 3 of 6 and 4 of 8: no evidence */
    double p = r.test.p;
    tg_fairness_test(&r, 1, 0.05, 1000, 7);
    assert_true(r.test.p == p);
    assert_true(r.test.low <= r.test.gap && r.test.gap <= r.test.high);
    assert_false(tg_fairness_gate(&r, 0.0));
    /* without true outcomes there is no equalized odds: undefined, not 0 */
    struct tg_fair_report again;
    tg_fairness_compute(groups, y_pred, NULL, 18, &again);
    assert_false(again.has_truth);
    assert_true(isnan(again.eod));
}

/* A group with no positives has no TPR (undefined, not 0); the spread skips it. */
static void test_undefined_rates(void **state)
{
    (void)state;
    const char *const g[6] = {"x", "x", "x", "y", "y", "y"};
    const int pred[6] = {1, 0, 1, 1, 0, 0}, truth[6] = {1, 0, 1, 0, 0, 0};
    struct tg_fair_report r;
    assert_int_equal(tg_fairness_compute(g, pred, truth, 6, &r), TG_OK);
    assert_true(fabs(group(&r, "x")->tpr - 1.0) < 1e-12);
    assert_true(isnan(group(&r, "y")->tpr));
    assert_true(fabs(group(&r, "x")->fpr - 0.0) < 1e-12);
    assert_true(fabs(group(&r, "y")->fpr - 1.0 / 3) < 1e-12);
    /* TPR spread over the one group that has it: 0; FPR spread 1/3 */
    assert_true(fabs(r.eod - 1.0 / 3) < 1e-12);
    /* nobody selected: the ratio is 0/0, undefined */
    const int none[6] = {0};
    tg_fairness_compute(g, none, NULL, 6, &r);
    assert_true(isnan(r.dpr));
    assert_true(r.dpd == 0);
}

/*
 * Newcombe (1998), Table II, example (a): 56/70 against 48/80, the hybrid
 * score interval (method 10) for the difference at 95 %: 0.0524 to 0.3339.
 * With two groups there is one pair, so the gate's interval is that one.
 */
static void test_newcombe_vector(void **state)
{
    (void)state;
    struct tg_fair_report r;
    const size_t n[2] = {70, 80}, x[2] = {56, 48};
    from_counts(&r, n, x, 2);
    tg_fairness_test(&r, 30, 0.05, 0, 1);
    assert_int_equal(r.test.pairs, 1);
    assert_true(fabs(r.test.z - 1.959964) < 5e-7);
    assert_true(fabs(r.test.gap - 0.2) < 1e-12);
    if (fabs(r.test.low - 0.0524) > 5e-5 || fabs(r.test.high - 0.3339) > 5e-5)
        fail_msg("Newcombe interval %.5f..%.5f, want 0.0524..0.3339", r.test.low, r.test.high);
    /* Pearson's χ² of the 2×2 table by the shortcut N(ad − bc)² / (r1 r2 c1 c2), and its
     * p-value on one degree of freedom, P(χ²₁ >= x) = erfc(√(x/2)) */
    double x2 = 150.0 * pow(56.0 * 32 - 14.0 * 48, 2) / (70.0 * 80 * 104 * 46);
    assert_true(fabs(r.test.chi2 - x2) < 1e-9);
    assert_true(fabs(r.test.p - erfc(sqrt(x2 / 2))) < 1e-9);
    assert_true(tg_fairness_gate(&r, 0.05));  /* proven above 5 points */
    assert_false(tg_fairness_gate(&r, 0.06)); /* not above 6 */
}

static void test_gate(void **state)
{
    (void)state;
    struct tg_fair_report r;
    /* a gap equal to the limit never closes, whatever the size or the resamples */
    const size_t n1[2] = {100, 100}, x1[2] = {55, 50};
    from_counts(&r, n1, x1, 2);
    tg_fairness_test(&r, 30, 0.05, 0, 1);
    assert_false(tg_fairness_gate(&r, 0.05));
    const size_t n2[2] = {1000000, 1000000}, x2[2] = {550000, 500000};
    from_counts(&r, n2, x2, 2);
    tg_fairness_test(&r, 30, 0.05, 1000, 1);
    assert_true(r.test.p < 1e-12);
    assert_true(r.test.low < 0.05 && r.test.high > 0.05);
    assert_false(tg_fairness_gate(&r, 0.05));
    assert_true(tg_fairness_gate(&r, 0.04));
    /* a 10-point gap between two 50,000-turn groups closes, a 10-turn third group is
     * shown but not tested (it neither blocks the gate nor drives it) */
    const size_t n3[3] = {50000, 50000, 10}, x3[3] = {30000, 25000, 10};
    from_counts(&r, n3, x3, 3);
    tg_fairness_test(&r, 30, 0.05, 1000, 1);
    assert_int_equal(r.test.groups, 2);
    assert_false(r.groups[2].tested);
    assert_true(fabs(r.test.gap - 0.1) < 1e-12);
    assert_true(tg_fairness_gate(&r, 0.05));
    /* a big gap the χ² does not see (every row alike in the tested groups) cannot close */
    const size_t n4[2] = {40, 40}, x4[2] = {40, 40};
    from_counts(&r, n4, x4, 2);
    tg_fairness_test(&r, 30, 0.05, 1000, 1);
    assert_true(r.test.p == 1 && r.test.gap == 0);
    assert_false(tg_fairness_gate(&r, 0.0));
}

/* ------------------------------------------------------------ null simulations */

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13; /* xorshift64 (Marsaglia 2003) */
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

struct layout {
    const char *name;
    size_t k;
    size_t n[10];
    double rate; /* the true rate of every group */
    size_t min_group;
};

/* Closures of the gate at limit over 1,000 null experiments of the layout. */
static int null_closures(const struct layout *L, double limit, double alpha, uint64_t seed)
{
    int closed = 0;
    uint64_t s = seed;
    for (int sim = 0; sim < 1000; sim++) {
        size_t x[10];
        for (size_t g = 0; g < L->k; g++) {
            x[g] = 0;
            for (size_t i = 0; i < L->n[g]; i++)
                x[g] += (double)(next(&s) >> 11) / 9007199254740992.0 < L->rate;
        }
        struct tg_fair_report r;
        from_counts(&r, L->n, x, L->k);
        tg_fairness_test(&r, L->min_group, alpha, 200, (uint64_t)sim + 1);
        closed += tg_fairness_gate(&r, limit);
    }
    return closed;
}

/*
 * The old gate (bootstrap of max − min) closed 20 of 20 times on 4 × 30,
 * 10 × 300, 8 × 200 and 10 × 50 under equal rates at the limit 0.05.  Here
 * the limit 0 is the hardest case (any proven gap closes) and 0.05 the
 * deployed one; both must stay within alpha + 3σ, σ = √(α(1 − α)/1000).
 */
static void test_null_simulations(void **state)
{
    (void)state;
    static const struct layout layouts[] = {
        {"4 x 30", 4, {30, 30, 30, 30}, 0.7, 30},
        {"10 x 300", 10, {300, 300, 300, 300, 300, 300, 300, 300, 300, 300}, 0.7, 30},
        {"8 x 200", 8, {200, 200, 200, 200, 200, 200, 200, 200}, 0.7, 30},
        {"10 x 50", 10, {50, 50, 50, 50, 50, 50, 50, 50, 50, 50}, 0.7, 30},
        {"4 x 100", 4, {100, 100, 100, 100}, 0.7, 30},
        {"2 x 40 at 0.5", 2, {40, 40}, 0.5, 30},
        {"30+50+300+1000", 4, {30, 50, 300, 1000}, 0.7, 30},
        {"500+4 x 40", 5, {500, 40, 40, 40, 40}, 0.3, 30},
        {"4 x 30 at 0.1", 4, {30, 30, 30, 30}, 0.1, 30}, /* Monte-Carlo p */
        {"2 x 2000 + 10", 3, {2000, 2000, 10}, 0.7, 30}, /* one group excluded */
    };
    const double alpha = 0.05, bound = alpha + 3 * sqrt(alpha * (1 - alpha) / 1000);
    for (size_t i = 0; i < TG_ARRAY_LEN(layouts); i++) {
        int c0 = null_closures(&layouts[i], 0.0, alpha, 0x9E3779B97F4A7C15ULL + i);
        int c5 = null_closures(&layouts[i], 0.05, alpha, 0x9E3779B97F4A7C15ULL + i);
        print_message("  %-16s rate %.1f  false closures of 1000: limit 0 %3d, limit 0.05 %3d\n",
                      layouts[i].name, layouts[i].rate, c0, c5);
        assert_true(c0 / 1000.0 <= bound);
        assert_true(c5 <= c0); /* a higher limit only closes less */
    }
    /* at alpha 0.01 too */
    const double b01 = 0.01 + 3 * sqrt(0.01 * 0.99 / 1000);
    assert_true(null_closures(&layouts[1], 0.0, 0.01, 99) / 1000.0 <= b01);
}

/*
 * The boundary of the composite null: true rates 0.55 and 0.50, a true gap
 * exactly at the limit 0.05.  Closing says "above the limit", so it may
 * happen at most alpha of the time here too.
 */
static void test_gap_at_the_limit(void **state)
{
    (void)state;
    const double alpha = 0.05, bound = alpha + 3 * sqrt(alpha * (1 - alpha) / 1000);
    const size_t n[2] = {2000, 2000};
    int closed = 0;
    uint64_t s = 12345;
    for (int sim = 0; sim < 1000; sim++) {
        size_t x[2] = {0, 0};
        for (size_t i = 0; i < n[0]; i++) {
            x[0] += (double)(next(&s) >> 11) / 9007199254740992.0 < 0.55;
            x[1] += (double)(next(&s) >> 11) / 9007199254740992.0 < 0.50;
        }
        struct tg_fair_report r;
        from_counts(&r, n, x, 2);
        tg_fairness_test(&r, 30, alpha, 0, 1);
        closed += tg_fairness_gate(&r, 0.05);
    }
    print_message("  true gap at the limit (0.55 vs 0.50, 2 x 2000): %d of 1000 closed\n", closed);
    assert_true(closed / 1000.0 <= bound);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fairlearn_example), cmocka_unit_test(test_undefined_rates),
        cmocka_unit_test(test_newcombe_vector),   cmocka_unit_test(test_gate),
        cmocka_unit_test(test_null_simulations),  cmocka_unit_test(test_gap_at_the_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
