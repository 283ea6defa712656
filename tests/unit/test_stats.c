/*
 * test_stats.c - the experiment statistics against published test vectors
 * (the pooled two-proportion z-test on 120/1000 against 150/1000, computed
 * from its formula; the Welch vector of GrowthBook's gbstats tests) and
 * hand-computed cases, each to at least five significant digits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "eval/eval.h"
#include "govern/govern.h"
#include "config/config.h"
#include "eval/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

static void near(double got, double want, double tol)
{
    if (fabs(got - want) > tol)
        fail_msg("got %.9g, want %.9g (tolerance %g)", got, want, tol);
}

static void test_two_proportions(void **state)
{
    (void)state;
    struct tg_stats_test t;
    tg_stats_two_proportions(120, 1000, 150, 1000, &t);
    near(t.diff, 0.03, 1e-12);
    near(t.stat, 1.963050, 5e-7);
    near(t.p, 0.049640, 5e-7);
    /* the unpooled CI at the level asked for: 95 % by default, 99 % at alpha 0.01 */
    double se = sqrt(0.12 * 0.88 / 1000 + 0.15 * 0.85 / 1000);
    near(t.ci_high - t.diff, 1.959964 * se, 1e-7);
    tg_stats_two_proportions_at(120, 1000, 150, 1000, 0.01, &t);
    near(t.stat, 1.963050, 5e-7);
    near(t.ci_low, 0.03 - 2.575829 * se, 1e-7);
    near(t.ci_high, 0.03 + 2.575829 * se, 1e-7);
}

/* GrowthBook gbstats: A sum 1396.87, sum of squares 52377.9767, n 3407;
 * B 2422.7, 134698.29, 3461 -> difference 0.29, 95 % CI (0.04538, 0.53462),
 * p = 0.02016. */
static void test_welch_gbstats_vector(void **state)
{
    (void)state;
    struct tg_stats_moments a = {3407, 1396.87, 52377.9767}, b = {3461, 2422.7, 134698.29};
    struct tg_stats_test t;
    tg_stats_welch(&a, &b, 0.05, &t);
    near(t.diff, 0.29, 1e-9);
    near(t.ci_low, 0.04538, 5e-6);
    near(t.ci_high, 0.53462, 5e-6);
    near(t.p, 0.02016, 5e-6);
}

static void test_distributions(void **state)
{
    (void)state;
    near(tg_stats_t_quantile(0.975, 10), 2.228139, 5e-7);
    near(tg_stats_t_two_sided(2.228139, 10), 0.05, 5e-7);
    near(tg_stats_t_quantile(0.025, 10), -2.228139, 5e-7);
    near(tg_stats_chi2_upper(3.841459, 1), 0.05, 5e-7);
    near(tg_stats_chi2_upper(5.991465, 2), 0.05, 5e-7);
    near(tg_stats_normal_two_sided(1.959964), 0.05, 5e-7);
    near(tg_stats_normal_quantile(0.975), 1.959964, 5e-7);
    near(tg_stats_normal_quantile(0.995), 2.575829, 5e-7);
    near(tg_stats_normal_quantile(0.025), -1.959964, 5e-7);
    near(tg_stats_normal_quantile(1 - 0.05 / 12), 2.638257, 5e-7); /* Bonferroni, 6 pairs */
    near(tg_stats_betai(2, 3, 0.4), 0.5248, 1e-9); /* 1 - (1-x)^3 (1 + 3x) at x = 0.4 */
}

static void test_sequential(void **state)
{
    (void)state;
    /* diff 0.1, var 0.01, tau2 0.01: sqrt(1/2) exp(0.25) */
    near(tg_stats_msprt(0.1, 0.01, 0.01), 0.9079430793557843, 1e-12);
    /* sigma 1, n 1000, alpha 0.05, N* 5000 (GrowthBook's default) */
    near(tg_stats_cs_halfwidth(1, 1000, 0.05, 5000), 0.10637547006557503, 1e-12);
    /* wider than the fixed-horizon 95 % half-width 1.96/sqrt(1000): the price of peeking */
    assert_true(tg_stats_cs_halfwidth(1, 1000, 0.05, 5000) > 1.96 / sqrt(1000));
}

static void test_srm_bh_cuped(void **state)
{
    (void)state;
    double obs[] = {5100, 4900}, shares[] = {0.5, 0.5}, chi2;
    near(tg_stats_srm(obs, shares, 2, &chi2), 0.0455003, 5e-7);
    near(chi2, 4.0, 1e-12);
    double even[] = {5000, 5000};
    near(tg_stats_srm(even, shares, 2, NULL), 1.0, 1e-12);
    double p1[] = {0.01, 0.04, 0.03, 0.005};
    bool r[4];
    size_t nrej = 9;
    assert_int_equal(tg_stats_bh(p1, 4, 0.05, r, &nrej), TG_OK);
    assert_int_equal(nrej, 4);
    double p2[] = {0.01, 0.02, 0.03, 0.5};
    assert_int_equal(tg_stats_bh(p2, 4, 0.05, r, &nrej), TG_OK);
    assert_int_equal(nrej, 3);
    assert_false(r[3]);
    assert_true(r[0] && r[1] && r[2]);
    /* out of memory: an error, and nothing marked (the caller may not read stale marks) */
    tg_mem_fail_after(0);
    assert_int_equal(tg_stats_bh(p1, 4, 0.05, r, &nrej), TG_E_NOMEM);
    tg_mem_fail_after(-1);
    assert_int_equal(nrej, 0);
    assert_false(r[0] || r[1] || r[2] || r[3]);
    double x[] = {1, 2, 3, 4}, y[] = {2.1, 3.9, 6.1, 7.9};
    near(tg_stats_cuped_theta(y, x, 4), 1.96, 1e-12); /* 9.8 / 5 */
}

/* A deterministic stream of uniform numbers (xorshift64*). */
static double uniform(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/*
 * Simulated experiments, looked at every day for 30 days with the mSPRT at
 * alpha 0.01: 300 per arm a day, conversion 10 % in control and 10 % (null)
 * or 13 % (a true lift of 3 points) in treatment, 400 seeds each.  Peeking
 * daily must not inflate false positives: the null's rejection rate stays
 * near alpha; the true lift is found, and early.
 */
static void run_sequential(double p_treat, int seeds, bool naive, double *reject_rate,
                           double *mean_day)
{
    const double alpha = 0.01, tau2 = 0.02 * 0.02;
    int rejected = 0, days_sum = 0;
    for (int seed = 1; seed <= seeds; seed++) {
        uint64_t s = 0x9E3779B97F4A7C15ULL * (uint64_t)seed;
        double x1 = 0, x2 = 0, n = 0;
        for (int day = 1; day <= 30; day++) {
            for (int k = 0; k < 300; k++) {
                x1 += uniform(&s) < 0.10;
                x2 += uniform(&s) < p_treat;
            }
            n += 300;
            double p1 = x1 / n, p2 = x2 / n;
            double var = p1 * (1 - p1) / n + p2 * (1 - p2) / n;
            struct tg_stats_test z;
            tg_stats_two_proportions(x1, n, x2, n, &z);
            bool reject = naive ? z.p < alpha /* a fixed-horizon test, peeked at daily */
                                : var > 0 && tg_stats_msprt(p2 - p1, var, tau2) >= 1 / alpha;
            if (reject) {
                rejected++;
                days_sum += day;
                break;
            }
        }
    }
    *reject_rate = (double)rejected / seeds;
    *mean_day = rejected ? (double)days_sum / rejected : 0;
}

static void test_sequential_simulation(void **state)
{
    (void)state;
    double fpr, day, power, stop, naive_fpr, naive_day;
    run_sequential(0.10, 400, false, &fpr, &day);
    run_sequential(0.13, 400, false, &power, &stop);
    run_sequential(0.10, 400, true, &naive_fpr, &naive_day);
    printf("mSPRT, daily looks for 30 days, alpha 0.01: false positive rate %.4f (null), "
           "power %.3f, mean stopping day %.1f (lift of 3 points); a z-test peeked at daily: "
           "false positive rate %.4f\n",
           fpr, power, stop, naive_fpr);
    assert_true(naive_fpr > fpr); /* why a sequential test: peeking inflates a fixed one */
    assert_true(fpr <= 0.02);     /* alpha plus Monte Carlo error on 400 seeds */
    assert_true(power >= 0.9);
    assert_true(stop < 20);
}

/* Assignment: sticky, in the configured shares, independent across salts. */
static void test_assignment(void **state)
{
    (void)state;
    struct tg_variant_conf v1[] = {{.name = "a", .share = 1}, {.name = "b", .share = 3}};
    struct tg_variant_conf v2[] = {{.name = "a", .share = 1}, {.name = "b", .share = 1}};
    const struct tg_experiment_conf x1 = {
        .name = "e1", .salt = "s1", .holdout = 0.1, .variants = v1, .n_variants = 2};
    const struct tg_experiment_conf x2 = {.name = "e2", .variants = v2, .n_variants = 2};
    const struct tg_experiment_conf *e1 = &x1, *e2 = &x2;
    int n[3] = {0, 0, 0}, same = 0;
    for (int i = 0; i < 20000; i++) {
        char id[32];
        snprintf(id, sizeof(id), "customer-%d", i);
        const char *v = tg_experiment_assign(e1, id);
        assert_string_equal(v, tg_experiment_assign(e1, id)); /* sticky */
        n[!strcmp(v, "holdout") ? 2 : !strcmp(v, "a") ? 0 : 1]++;
        same += !strcmp(tg_experiment_assign(e2, id), "a") == !strcmp(v, "a");
    }
    /* holdout 10 %, then a 1:3 split of the rest: 2,000 / 4,500 / 13,500 */
    assert_true(abs(n[2] - 2000) < 200);
    assert_true(abs(n[0] - 4500) < 300);
    assert_true(abs(n[1] - 13500) < 400);
    /* the SRM check agrees the split is as configured */
    double obs[3] = {n[0], n[1], n[2]}, sh[3] = {0.225, 0.675, 0.1};
    assert_true(tg_stats_srm(obs, sh, 3, NULL) > 0.001);
    /* another experiment's salt splits independently of this one: whether a customer is in
     * e1's "a" (22.5 %) says nothing of e2's "a" (50 %), so they agree half the time */
    assert_true(abs(same - 10000) < 400);
    assert_null(tg_experiment_assign(e1, ""));
    double u = tg_experiment_unit("s1", "customer-1");
    assert_true(u >= 0 && u < 1);
}

/* The analysis of an experiment's rows: a metric measured on some turns only
 * (FAR: the answers someone judged) leaves the others out of the metric but
 * not out of the split; the fixed-horizon test is the two-proportion z. */
static void test_experiment_analysis(void **state)
{
    (void)state;
    json_t *rows = json_array();
    /* 500 turns per arm; 100 judged in control (60 good), 100 in b (75 good) */
    for (int i = 0; i < 1000; i++) {
        bool b = i % 2;
        int k = i / 2;
        json_t *r = json_pack("{s:s, s:i, s:i}", "variant", b ? "b" : "control", "day", k / 100,
                              "resolved", k % 3 == 0);
        if (k < 100)
            json_object_set_new(r, "far", json_integer(k < (b ? 75 : 60)));
        json_array_append_new(rows, r);
    }
    char err[200];
    json_t *rep = tg_experiment_analyze(rows, "control", "far", 0.01, 0.02, NULL, err, sizeof(err));
    assert_non_null(rep);
    const json_t *v = json_array_get(json_object_get(rep, "variants"), 0);
    assert_float_equal(tg_json_num(v, "n", 0), 100, 1e-9);
    assert_float_equal(tg_json_num(v, "mean", 0), 0.75, 1e-9);
    assert_float_equal(tg_json_num(v, "control_mean", 0), 0.60, 1e-9);
    struct tg_stats_test z;
    tg_stats_two_proportions(60, 100, 75, 100, &z);
    assert_float_equal(tg_json_num(v, "p", 0), z.p, 1e-9);
    /* the split is judged on every row: 500 / 500 */
    const json_t *arm = json_array_get(json_object_get(rep, "arms"), 0);
    assert_float_equal(tg_json_num(arm, "n", 0), 100, 1e-9);
    assert_float_equal(tg_json_num(arm, "rows", 0), 500, 1e-9);
    assert_float_equal(tg_json_num(json_object_get(rep, "srm"), "chi2", 1), 0, 1e-9);
    json_decref(rep);
    /* a metric no row has, a control with no rows, a metric of the wrong type */
    assert_null(tg_experiment_analyze(rows, "control", "fra", 0.01, 0.02, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "no row has the metric 'fra'"));
    assert_null(tg_experiment_analyze(rows, "ctl", "far", 0.01, 0.02, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "no rows for the control 'ctl'"));
    json_object_set_new(json_array_get(rows, 3), "far", json_string("yes"));
    assert_null(tg_experiment_analyze(rows, "control", "far", 0.01, 0.02, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "row 4"));
    json_decref(rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_proportions), cmocka_unit_test(test_welch_gbstats_vector),
        cmocka_unit_test(test_distributions),   cmocka_unit_test(test_sequential),
        cmocka_unit_test(test_srm_bh_cuped),    cmocka_unit_test(test_sequential_simulation),
        cmocka_unit_test(test_assignment),      cmocka_unit_test(test_experiment_analysis),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
