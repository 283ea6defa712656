/*
 * test_monitor.c - the FAR monitor's counting (src/govern/monitor.c): one
 * judgement per turn, the latest of what counts; a rating of an answer a
 * person wrote ignored; days by the turn's day; days without data a gap.
 * (The Mann–Kendall test and the criterion: test_eval.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "eval/eval.h"
#include "govern/govern.h"

#include <math.h>
#include <string.h>

#define DAY 86400000LL

static json_t *review(const char *turn, int64_t turn_ms, int64_t at, bool approved)
{
    return json_pack("{s:s, s:I, s:I, s:s, s:b}", "turn_id", turn, "turn_ms", (json_int_t)turn_ms,
                     "at_ms", (json_int_t)at, "source", "review", "good", approved);
}

static json_t *rating(const char *turn, int64_t turn_ms, int64_t at, bool good, bool ai)
{
    return json_pack("{s:s, s:I, s:I, s:s, s:b, s:b}", "turn_id", turn, "turn_ms",
                     (json_int_t)turn_ms, "at_ms", (json_int_t)at, "source", "rating", "good", good,
                     "ai", ai);
}

/* The judgement kept for turn, or NULL. */
static const json_t *of(const json_t *js, const char *turn)
{
    size_t i;
    json_t *j;
    json_array_foreach(js, i, j)
    {
        if (!strcmp(tg_json_str(j, "turn_id", ""), turn))
            return j;
    }
    return NULL;
}

/* A reviewer's approval and a customer's bad rating of one turn are one
 * judgement, the later; so are a good and a later bad rating. */
static void test_one_judgement_per_turn(void **state)
{
    (void)state;
    const int64_t t0 = 20000 * DAY;
    json_t *ev = json_array();
    json_array_append_new(ev, review("a", t0, t0 + 10, true));
    json_array_append_new(ev, rating("a", t0, t0 + 20, false, false)); /* held, then approved */
    json_array_append_new(ev, rating("b", t0, t0 + 30, false, false)); /* rated first ... */
    json_array_append_new(ev, review("b", t0, t0 + 40, true));         /* ... approved later */
    json_array_append_new(ev, rating("c", t0, t0 + 5, true, true));
    json_array_append_new(ev, rating("c", t0, t0 + 6, false, true));
    json_t *js = tg_monitor_judgements(ev);
    assert_non_null(js);
    assert_int_equal(json_array_size(js), 3);
    assert_false(tg_json_bool(of(js, "a"), "good", true));
    assert_true(tg_json_bool(of(js, "b"), "good", false));
    assert_false(tg_json_bool(of(js, "c"), "good", true));
    struct tg_far_day d[1];
    tg_monitor_daily_far(js, t0 + 100, 1, d);
    assert_int_equal(d[0].good + d[0].bad, 3); /* today's code counted 6 */
    json_decref(js);
    json_decref(ev);
}

/* A person's answer never counts against the AI: a rating of an edited or
 * rejected draft, of a held turn never approved, or of an answer that did
 * not go out as the AI wrote it, is ignored; the edit itself counts once. */
static void test_person_answer_never_counts(void **state)
{
    (void)state;
    const int64_t t0 = 20000 * DAY;
    json_t *ev = json_array();
    json_array_append_new(ev, rating("e", t0, t0 + 50, false, false)); /* rated the edit ... */
    json_array_append_new(ev, review("e", t0, t0 + 10, false));        /* ... the reviewer's */
    json_array_append_new(ev, review("r", t0, t0 + 10, false));
    json_array_append_new(ev, rating("r", t0, t0 + 60, true, false));
    json_array_append_new(ev, rating("h", t0, t0 + 70, false, false)); /* hand-off, refusal */
    json_t *js = tg_monitor_judgements(ev);
    assert_int_equal(json_array_size(js), 2);
    assert_false(tg_json_bool(of(js, "e"), "good", true));
    assert_int_equal(tg_json_int(of(js, "e"), "at_ms", 0),
                     t0 + 10); /* the review, not the rating */
    assert_false(tg_json_bool(of(js, "r"), "good", true));
    assert_null(of(js, "h"));
    json_decref(js);
    json_decref(ev);
}

/* Days are the turn's, not the rating's; a day without data is a gap. */
static void test_days_by_turn_and_gaps(void **state)
{
    (void)state;
    const int64_t today = 20000 * DAY, now = today + 3600000;
    json_t *ev = json_array();
    /* asked two days ago, rated today */
    json_array_append_new(ev, rating("old", today - 2 * DAY + 5, now - 10, false, true));
    json_array_append_new(ev, rating("new", today + 5, now - 5, true, true));
    json_t *js = tg_monitor_judgements(ev);
    struct tg_far_day d[3];
    tg_monitor_daily_far(js, now, 3, d);
    assert_int_equal(d[0].bad, 1);
    assert_true(d[0].far == 0.0);
    assert_int_equal(d[1].good + d[1].bad, 0);
    assert_true(isnan(d[1].far)); /* a gap, not FAR 0 */
    assert_int_equal(d[2].good, 1);
    assert_int_equal(d[2].bad, 0);
    assert_true(d[2].far == 1.0);
    /* a gap breaks the run the criterion needs */
    struct tg_far_criterion c = {.min_far = 0.85, .alpha = 0.05, .days = 3};
    struct tg_far_verdict v;
    d[2].good = 0;
    d[2].bad = 1;
    d[2].far = 0;
    tg_monitor_far_criterion(d, 3, &c, &v);
    assert_false(v.met);
    json_decref(js);
    json_decref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_judgement_per_turn),
        cmocka_unit_test(test_person_answer_never_counts),
        cmocka_unit_test(test_days_by_turn_and_gaps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
