/*
 * test_release.c - the gates of a promotion (src/govern/release.c), computed
 * from a store written here: the turns a candidate answered as a variant,
 * the reviews and ratings of them, the split of customers, the monitor's
 * criterion over days, the freeze.  Each bypass the old command allowed
 * (typed FAR, a config without eval.far.min, SRM only when typed, promotion
 * straight from proposed, the 7-day criterion ignored) is refused here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit/audit.h"
#include "eval/eval.h"
#include "config/config.h"
#include "govern/govern.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY 86400000LL

struct fx {
    char dir[64];
    struct tg_store *st;
    struct tg_audit *audit;
    int64_t now;
    int n; /* turns written */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char uri[128], err[256];
    snprintf(f->dir, sizeof(f->dir), "/tmp/tg-rel-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(uri, sizeof(uri), "sqlite:%s/t.db", f->dir);
    assert_int_equal(tg_store_open(uri, &f->st, err, sizeof(err)), TG_OK);
    assert_int_equal(tg_audit_open(f->st, &f->audit), TG_OK);
    f->now = tg_clock_wall_ms();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    tg_audit_close(f->audit);
    tg_store_close(f->st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* A release record in state, proposed created_ms ago. */
static void release(struct fx *f, const char *name, const char *state, int64_t created)
{
    json_t *r = json_pack("{s:s, s:i, s:s, s:s, s:I}", "name", name, "version", 1, "hash", "00ff",
                          "state", state, "created_ms", (json_int_t)created);
    assert_int_equal(tg_release_save(f->st, r), TG_OK);
    json_decref(r);
}

/* One turn of experiment kb2: customer cust in variant, answered by rel (or NULL), at ms;
 * rated (good or bad) when rate is 0 or 1. */
static void turn(struct fx *f, const char *cust, const char *variant, const char *rel, int64_t ms,
                 int rate)
{
    char id[64], key[96];
    snprintf(id, sizeof(id), "turn_%06d", f->n++);
    json_t *leaf =
        json_pack("{s:s, s:s, s:I, s:s, s:s, s:{s:s}, s:{s:s?}}", "kind", "turn", "turn_id", id,
                  "created_ms", (json_int_t)ms, "decision", "deliver", "customer_pseudonym", cust,
                  "experiments", "kb2", variant, "release", "name", rel);
    assert_int_equal(tg_audit_append_json(f->audit, leaf, NULL), TG_OK);
    json_decref(leaf);
    if (rate < 0)
        return;
    snprintf(key, sizeof(key), "feedback/%s", id);
    char body[200];
    snprintf(body, sizeof(body), "{\"turn_id\":\"%s\",\"at_ms\":%lld,\"good\":%s}", id,
             (long long)(ms + 1000), rate ? "true" : "false");
    assert_int_equal(tg_store_blob_put(f->st, key, body, strlen(body)), TG_OK);
}

/* n customers split evenly, good_pct % (a multiple of 10) of the candidate's
 * turns rated good, the rest bad, `ago` days back. */
static void traffic(struct fx *f, int n, int good_pct, int ago, const char *tag)
{
    for (int i = 0; i < n; i++) {
        char cust[64];
        snprintf(cust, sizeof(cust), "%s-%d", tag, i);
        bool cand = i % 2;
        turn(f, cust, cand ? "candidate" : "control", cand ? "cand@1" : NULL,
             f->now - ago * DAY - 1000 * i, cand ? (i / 2) % 10 < good_pct / 10 : -1);
    }
}

/* Experiment kb2 (control 1, candidate cand_share answered by cand); eval.far.min when
 * far_min >= 0; the monitor's criterion at 85 % over 7 days. */
static json_t *config(double far_min, double cand_share)
{
    json_t *j = json_pack("{s:[{s:s, s:[{s:s, s:i}, {s:s, s:f, s:s}]}], s:{s:{s:f, s:i}}}",
                          "experiments", "name", "kb2", "variants", "name", "control", "share", 1,
                          "name", "candidate", "share", cand_share, "release", "cand", "eval",
                          "monitor", "min_far", 0.85, "days", 7);
    if (far_min >= 0)
        json_object_set_new(json_object_get(j, "eval"), "far", json_pack("{s:f}", "min", far_min));
    return j;
}

/* The gates of cand; asserts they could be computed. */
static json_t *gates(struct fx *f, const json_t *root, bool override)
{
    char err[256] = "";
    assert_int_equal(tg_store_flush(f->st), TG_OK);
    struct tg_config *cfg = NULL;
    assert_int_equal(tg_config_from_tree(root, &cfg), TG_OK);
    struct tg_release_gate_in in = {
        .cfg = cfg, .name = "cand", .override = override, .now_ms = f->now};
    json_t *g = tg_release_gates(f->st, &in, err, sizeof(err));
    tg_config_free(cfg);
    if (!g)
        fail_msg("gates: %s", err);
    return g;
}

static bool open_gate(const json_t *g, const char *name)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(g, "gates"), i, x)
    {
        if (!strcmp(tg_json_str(x, "gate", ""), name)) {
            if (getenv("TG_VERBOSE"))
                print_message("%s: %s\n", name, tg_json_str(x, "detail", ""));
            return tg_json_bool(x, "open", false);
        }
    }
    fail_msg("no gate %s", name);
    return false;
}

/* Promotion straight from proposed is refused; a supervisor's override
 * stands in for the experiment, and the traffic gates are then not measured. */
static void test_proposed_needs_experiment_or_override(void **state)
{
    struct fx *f = *state;
    json_t *root = config(0.5, 1);
    release(f, "cand", "proposed", f->now - DAY);
    json_t *g = gates(f, root, false);
    assert_false(tg_json_bool(g, "open", true));
    assert_false(open_gate(g, "candidate"));
    assert_non_null(strstr(tg_json_str(g, "refused", ""), "runs as an experiment before"));
    json_decref(g);
    g = gates(f, root, true);
    assert_true(tg_json_bool(g, "open", false));
    json_decref(g);
    /* an override does not lift a freeze */
    assert_int_equal(tg_release_set_frozen(f->st, f->audit, true, "sue", "a fairness alert"),
                     TG_OK);
    g = gates(f, root, true);
    assert_false(open_gate(g, "frozen"));
    json_decref(g);
    json_decref(root);
}

/* FAR comes from the candidate's own judged turns: too few, too low, or no
 * minimum configured all keep the gate closed; enough good ones open it. */
static void test_far_from_the_candidates_traffic(void **state)
{
    struct fx *f = *state;
    json_t *root = config(0.8, 1), *bare = config(-1, 1);
    release(f, "cand", "experiment", f->now - 20 * DAY);
    json_t *g = gates(f, root, false);
    assert_false(open_gate(g, "experiment")); /* answered nothing yet */
    assert_false(open_gate(g, "far"));
    json_decref(g);
    /* 40 customers, 20 on the candidate, 40 % rated good */
    traffic(f, 40, 40, 0, "a");
    g = gates(f, root, false);
    assert_true(open_gate(g, "experiment"));
    assert_false(open_gate(g, "far")); /* 20 judged: too few */
    json_decref(g);
    traffic(f, 40, 40, 0, "b");
    g = gates(f, root, false);
    assert_false(open_gate(g, "far")); /* 40 judged, FAR 40 % < 80 % */
    assert_non_null(strstr(tg_json_str(g, "refused", ""), "is below the minimum 80.0%"));
    json_decref(g);
    /* the control's ratings are not the candidate's */
    for (int i = 0; i < 60; i++) {
        char c[32];
        snprintf(c, sizeof(c), "ctl-%d", i);
        turn(f, c, "control", NULL, f->now - 1000, 1);
    }
    traffic(f, 160, 100, 0, "c");
    g = gates(f, root, false);
    assert_true(open_gate(g, "far")); /* 120 judged: 16 + 80 good of 120 = 80 % */
    /* and the 60 customers of the control only skew the split they were assigned by */
    assert_false(open_gate(g, "srm"));
    json_decref(g);
    /* a config without eval.far.min does not skip the gate */
    g = gates(f, bare, false);
    assert_false(open_gate(g, "far"));
    assert_non_null(strstr(tg_json_str(g, "refused", ""), "eval.far.min"));
    json_decref(g);
    json_decref(root);
    json_decref(bare);
}

/* The split is read from the stored assignments, never typed in: customers
 * 50/50 against configured shares of 1:3 is a mismatch. */
static void test_srm_from_assignments(void **state)
{
    struct fx *f = *state;
    json_t *even = config(0.5, 1), *skew = config(0.5, 3);
    release(f, "cand", "experiment", f->now - DAY);
    traffic(f, 400, 100, 0, "s");
    json_t *g = gates(f, even, false);
    assert_true(open_gate(g, "srm"));
    assert_true(tg_json_bool(g, "open", false));
    json_decref(g);
    g = gates(f, skew, false);
    assert_false(open_gate(g, "srm"));
    assert_non_null(strstr(tg_json_str(g, "refused", ""), "sample-ratio mismatch"));
    json_decref(g);
    /* a customer's second turn is the same assignment, not a second customer */
    for (int i = 0; i < 300; i++)
        turn(f, "s-1", "candidate", "cand@1", f->now - 5, -1);
    g = gates(f, even, false);
    assert_true(open_gate(g, "srm"));
    json_decref(g);
    json_decref(even);
    json_decref(skew);
}

/* The monitor's exit criterion on the candidate's days: FAR below 85 % on
 * each of the last 7 days, flat, closes the gate even above eval.far.min. */
static void test_seven_day_criterion(void **state)
{
    struct fx *f = *state;
    json_t *root = config(0.5, 1);
    release(f, "cand", "experiment", f->now - 30 * DAY);
    for (int d = 0; d < 7; d++)
        traffic(f, 40, 70, d, d % 2 ? "odd" : "even");
    json_t *g = gates(f, root, false);
    assert_true(open_gate(g, "far")); /* 70 % >= 50 % */
    assert_false(open_gate(g, "monitor"));
    assert_non_null(strstr(tg_json_str(g, "refused", ""), "below 85% on each of the last 7 days"));
    json_decref(g);
    json_decref(root);
}

/* Promotion acts only on open gates, and records the evidence. */
static void test_promote_records_evidence(void **state)
{
    struct fx *f = *state;
    json_t *root = config(0.5, 1);
    char err[512];
    release(f, "cand", "experiment", f->now - DAY);
    json_t *g = gates(f, root, false);
    assert_int_equal(
        tg_release_promote(f->st, f->audit, g, "sue", "ready to ship", "", err, sizeof(err)),
        TG_E_FORBIDDEN);
    json_decref(g);
    traffic(f, 100, 90, 0, "p");
    g = gates(f, root, false);
    assert_true(tg_json_bool(g, "open", false));
    assert_int_equal(
        tg_release_promote(f->st, f->audit, g, "sue", "ready to ship", "", err, sizeof(err)),
        TG_OK);
    /* the same evidence twice: the release is no longer what was measured */
    assert_int_equal(
        tg_release_promote(f->st, f->audit, g, "sue", "ready to ship", "", err, sizeof(err)),
        TG_E_CONFLICT);
    json_decref(g);
    assert_int_equal(tg_store_flush(f->st), TG_OK);
    json_t *r = tg_release_latest(f->st, "cand");
    assert_string_equal(tg_json_str(r, "state", ""), "promoted");
    json_decref(r);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_proposed_needs_experiment_or_override, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_far_from_the_candidates_traffic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_srm_from_assignments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seven_day_criterion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_promote_records_evidence, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
