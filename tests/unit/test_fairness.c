/*
 * test_fairness.c - group fairness against Fairlearn's documented 18-row
 * example (REFERENCES.md): selection rates a 0.75, b 0.5, c 0.5; demographic
 * parity difference 0.25, ratio 0.6667; equalized odds difference 1.0; and
 * the release gate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "eval/fairness.h"

#include <math.h>
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

static void test_fairlearn_example(void **state)
{
    (void)state;
    struct tg_fair_report r;
    assert_int_equal(tg_fairness_compute(groups, y_pred, y_true, 18, 2000, 7, &r), TG_OK);
    assert_int_equal(r.n_groups, 3);
    assert_true(fabs(group(&r, "a")->rate - 0.75) < 1e-12);
    assert_true(fabs(group(&r, "b")->rate - 0.5) < 1e-12);
    assert_true(fabs(group(&r, "c")->rate - 0.5) < 1e-12);
    assert_true(fabs(r.dpd - 0.25) < 1e-12);
    assert_true(fabs(r.dpr - 0.666667) < 5e-7);
    assert_true(fabs(r.eod - 1.0) < 1e-12);
    assert_int_equal(r.min_group, 4);
    /* the interval holds the estimate; the same seed gives the same interval */
    assert_true(r.ci_low <= r.dpd && r.dpd <= r.ci_high);
    struct tg_fair_report again;
    tg_fairness_compute(groups, y_pred, y_true, 18, 2000, 7, &again);
    assert_true(again.ci_low == r.ci_low && again.ci_high == r.ci_high);
    /* without true outcomes there is no equalized odds */
    tg_fairness_compute(groups, y_pred, NULL, 18, 0, 7, &again);
    assert_false(again.has_truth);
    assert_true(again.eod == 0);
}

static void test_gate(void **state)
{
    (void)state;
    struct tg_fair_report r;
    memset(&r, 0, sizeof(r));
    r.dpd = 0.08;
    r.ci_low = 0.06;
    r.min_group = 500;
    assert_true(tg_fairness_gate(&r, 0.05, 30));
    r.ci_low = 0.04; /* the interval reaches the limit: not proven */
    assert_false(tg_fairness_gate(&r, 0.05, 30));
    r.ci_low = 0.06;
    r.min_group = 10; /* too small a group to judge */
    assert_false(tg_fairness_gate(&r, 0.05, 30));
    r.min_group = 500;
    r.dpd = 0.04;
    assert_false(tg_fairness_gate(&r, 0.05, 30));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fairlearn_example),
        cmocka_unit_test(test_gate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
