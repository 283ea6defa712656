/*
 * test_eval.c - the evaluation metrics on small hand-computed cases:
 * consistency of an answer with its evidence, quantiles, the score and the
 * failing stage of a labelled turn, the FAR summary and its factors, and
 * loading a labelled set with its errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "eval/eval.h"
#include "govern/govern.h"
#include "store/store.h"
#include "text/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct tg_text *tx;

static int setup(void **state)
{
    (void)state;
    char err[256];
    return tg_text_open(&tx, err, sizeof(err)) == TG_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tg_text_close(tx);
    return 0;
}

static const char *evidence[] = {
    "意外险理赔需要提交身份证、保单、事故证明和医疗发票。报案须在事故发生后10日内完成。",
    "客服热线95386，工作时间为每天8:00至20:00。",
};

static struct tg_eval_consistency check(const char *answer, const char *const *skip, size_t nskip)
{
    struct tg_eval_consistency c;
    assert_int_equal(tg_eval_consistency(tx, answer, evidence, 2, skip, nskip, 0.5, &c), TG_OK);
    return c;
}

static void test_consistency(void **state)
{
    (void)state;
    /* quoted from the evidence: two claims, one quantity, all found */
    struct tg_eval_consistency c =
        check("理赔需要提交身份证、保单和事故证明。报案须在事故发生后10日内完成。", NULL, 0);
    assert_int_equal(c.claims, 2);
    assert_int_equal(c.supported, 2);
    assert_int_equal(c.quantities, 1);
    assert_int_equal(c.grounded, 1);
    assert_true(c.consistent);
    /* a number the evidence does not state */
    c = check("报案须在事故发生后30日内完成。", NULL, 0);
    assert_int_equal(c.quantities, 1);
    assert_int_equal(c.grounded, 0);
    assert_false(c.consistent);
    /* an invented sentence */
    c = check("理赔需要提交身份证。我们还会赠送您一份免费的旅游保险大礼包。", NULL, 0);
    assert_int_equal(c.claims, 2);
    assert_int_equal(c.supported, 1);
    assert_false(c.consistent);
    /* a disclaimer the policies add and a citation note are not claims */
    const char *skip[] = {"本结果不构成诊疗意见。"};
    c = check("本结果不构成诊疗意见。客服热线95386。\n\n（来源：《客服与联系方式》）", skip, 1);
    assert_int_equal(c.claims, 1);
    assert_true(c.consistent);
    /* a holding reply says nothing the evidence says */
    c = check("我需要更多时间分析，请稍候", NULL, 0);
    assert_false(c.consistent);
    assert_true(tg_eval_contains(tx, "請撥打９５３８６", "95386")); /* folded and simplified */
    assert_false(tg_eval_contains(tx, "请拨打95386", "95387"));
}

static void test_quantile(void **state)
{
    (void)state;
    double v[] = {5, 1, 4, 2, 3};
    assert_true(tg_eval_quantile(v, 5, 0.5) == 3);
    double w[] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100};
    assert_true(tg_eval_quantile(w, 10, 0.95) == 100);
    assert_true(tg_eval_quantile(w, 10, 0.5) == 50);
    assert_true(tg_eval_quantile(NULL, 0, 0.5) == 0);
}

/* An item as a test writes it. */
static struct tg_far_item item(const char *intent, const char *source, const char *decision,
                               const char *got_decision, const char *got_intent, const char *cited1,
                               bool consistent)
{
    struct tg_far_item it;
    memset(&it, 0, sizeof(it));
    it.id = (char *)"x";
    it.intent = (char *)intent;
    it.source = (char *)source;
    it.decision = (char *)decision;
    it.got_decision = (char *)got_decision;
    it.got_intent = (char *)got_intent;
    it.cited = json_pack("[s, s]", "/srv/kb/other.md", cited1);
    it.facts = json_array();
    it.cons.consistent = consistent;
    it.ran = true;
    return it;
}

static void test_score_and_failing_stage(void **state)
{
    (void)state;
    struct tg_far_item v[6] = {
        /* all right, source cited second: top-k but not top-1 */
        item("claim_materials", "claims-faq.md", "deliver", "deliver", "claim_materials",
             "/srv/kb/claims-faq.md", true),
        /* wrong intent */
        item("claim_materials", "claims-faq.md", "deliver", "deliver", "claim_status",
             "/srv/kb/claims-faq.md", true),
        /* the source not cited (a file whose name merely ends the same way does not count) */
        item("claim_materials", "faq.md", "deliver", "deliver", "claim_materials",
             "/srv/kb/claims-faq.md", true),
        /* held although it should have been answered */
        item("claim_materials", "claims-faq.md", "deliver", "review", "claim_materials",
             "/srv/kb/claims-faq.md", false),
        /* answered but not consistent with its evidence */
        item("claim_materials", "claims-faq.md", "deliver", "deliver", "claim_materials",
             "/srv/kb/claims-faq.md", false),
        /* a decision for a person, as labelled */
        item("credit_decision", NULL, "human_decision", "human_decision", "credit_decision",
             "/srv/kb/x.md", false),
    };
    const char *want[] = {NULL, "understand", "retrieve", "gate", "generate", NULL};
    for (int i = 0; i < 6; i++) {
        tg_far_score(&v[i], 3);
        if (want[i])
            assert_string_equal(v[i].failed_stage, want[i]);
        else
            assert_null(v[i].failed_stage);
    }
    assert_false(v[0].top1);
    assert_true(v[0].topk);
    struct tg_far_summary s;
    tg_far_summarize(v, 6, &s);
    assert_int_equal(s.correct, 2);
    assert_true(fabs(s.far - 2.0 / 6) < 1e-9);
    assert_true(fabs(s.intent_acc - 5.0 / 6) < 1e-9);
    assert_int_equal(s.delivered_expected, 5);
    assert_true(fabs(s.source_topk - 4.0 / 5) < 1e-9);
    assert_true(fabs(s.source_top1 - 0.0) < 1e-9);
    assert_true(fabs(s.consistency - 3.0 / 4) < 1e-9); /* of the four answers delivered */
    assert_true(fabs(s.product - (5.0 / 6) * (4.0 / 5) * (3.0 / 4)) < 1e-9);
    assert_int_equal(s.failed[0], 1);
    assert_int_equal(s.failed[1], 1);
    assert_int_equal(s.failed[2], 1);
    assert_int_equal(s.failed[3], 1);
    for (int i = 0; i < 6; i++) {
        json_decref(v[i].cited);
        json_decref(v[i].facts);
    }
}

static void variant_is(enum tg_eval_variant v, const char *in, const char *want)
{
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    assert_int_equal(tg_eval_variant(v, in, &b), TG_OK);
    if (strcmp(b.data, want) != 0)
        fail_msg("%s(%s) = %s, want %s", tg_eval_variant_names[v], in, b.data, want);
    tg_buf_free(&b);
}

static void test_variants(void **state)
{
    (void)state;
    variant_is(TG_VARIANT_ORIGINAL, "网点办退保", "网点办退保");
    variant_is(TG_VARIANT_TYPO, "网点办退保", "网点退办保"); /* the pair nearest the middle */
    variant_is(TG_VARIANT_TYPO, "ok", "ok");
    variant_is(TG_VARIANT_TRADITIONAL, "网点办退保", "網點辦退保");
    variant_is(TG_VARIANT_FULLWIDTH, "P1 办?", "Ｐ１ 办？");
    variant_is(TG_VARIANT_SPACES, "网点办退保", "网点 办退 保");
    variant_is(TG_VARIANT_MIXED, "我的银行卡丢了", "我的 bank card 丢了");
    variant_is(TG_VARIANT_MIXED, "你好", "你好 thanks");
    /* the variants a normalizer should undo come back to the original */
    struct tg_buf a, b;
    tg_buf_init(&a, TG_BUF_UNLIMITED);
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    tg_eval_variant(TG_VARIANT_SPACES, "我自己去不了网点，让别人帮我办退保", &a);
    assert_int_equal(tg_text_normalize(tx, a.data, a.len, 0, &b), TG_OK);
    assert_string_equal(b.data, "我自己去不了网点,让别人帮我办退保");
    tg_buf_free(&a);
    tg_buf_free(&b);
}

/* Mann–Kendall by hand: x = 5 3 4 6 8 gives S = 8 - 2 = 6, Var(S) = 5*4*15/18,
 * z = 5 / sqrt(16.667) = 1.22474, p = erfc(z / sqrt 2) = 0.220671, Sen's slope
 * the median of the ten pairwise slopes = (1 + 1.5) / 2.  With a tie group of
 * two (1 1 2 3): S = 5, Var = (156 - 18) / 18, z = 4 / sqrt(7.6667). */
static void test_mann_kendall(void **state)
{
    (void)state;
    struct tg_mk mk;
    const double x[] = {5, 3, 4, 6, 8};
    assert_int_equal(tg_monitor_mann_kendall(x, 5, &mk), TG_OK);
    assert_true(mk.s == 6);
    assert_true(fabs(mk.var - 50.0 / 3) < 1e-9);
    assert_true(fabs(mk.z - 1.224745) < 1e-5);
    assert_true(fabs(mk.p - 0.220671) < 1e-5);
    assert_true(fabs(mk.slope - 1.25) < 1e-12);
    const double y[] = {1, 1, 2, 3};
    assert_int_equal(tg_monitor_mann_kendall(y, 4, &mk), TG_OK);
    assert_true(mk.s == 5);
    assert_true(fabs(mk.var - 138.0 / 18) < 1e-9);
    assert_true(fabs(mk.z - 4 / sqrt(138.0 / 18)) < 1e-9);
    assert_int_equal(tg_monitor_mann_kendall(y, 2, &mk), TG_E_INVAL);
}

static void test_daily_far_and_criterion(void **state)
{
    (void)state;
    const int64_t day = 86400000, now = 20000 * day + 3600000; /* one o'clock, day 20000 */
    json_t *ev = json_array();
    /* seven days of 70 % ... 76 %: below 85 %, rising one point a day */
    for (int d = 0; d < 7; d++)
        for (int k = 0; k < 100; k++)
            json_array_append_new(ev, json_pack("{s:I, s:b}", "turn_ms",
                                                (json_int_t)((20000 - 6 + d) * day + k * 1000),
                                                "good", k < 70 + d));
    json_array_append_new(ev, json_pack("{s:I, s:b}", "turn_ms", (json_int_t)(now - 30 * day),
                                        "good", false)); /* outside the window */
    struct tg_far_day days[7];
    tg_monitor_daily_far(ev, now, 7, days);
    assert_true(days[0].day_ms == (20000 - 6) * day);
    assert_int_equal(days[0].good, 70);
    assert_int_equal(days[6].bad, 24);
    assert_true(fabs(days[6].far - 0.76) < 1e-12);
    struct tg_far_criterion c = {.min_far = 0.85, .alpha = 0.05, .days = 7};
    struct tg_far_verdict v;
    tg_monitor_far_criterion(days, 7, &c, &v);
    assert_true(v.all_below);
    assert_true(v.improving); /* a steady rise: S = 21 of 21, p < 0.01 */
    assert_false(v.met);
    /* flat: below and not improving: the alert fires */
    for (int d = 0; d < 7; d++) {
        days[d].far = d % 2 ? 0.70 : 0.71;
    }
    tg_monitor_far_criterion(days, 7, &c, &v);
    assert_true(v.met);
    /* one day without data: nothing can be claimed */
    days[3].good = days[3].bad = 0;
    tg_monitor_far_criterion(days, 7, &c, &v);
    assert_false(v.met);
    json_decref(ev);
}

static void test_load(void **state)
{
    (void)state;
    char path[] = "/tmp/tg-far-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\"id\":\"a\",\"question\":\"q1\",\"intent\":\"i\",\"source\":\"s.md\",\"facts\":[\"x\"]"
          "}\n"
          "\n{\"question\":\"q2\",\"decision\":\"review\"}\n",
          f);
    fclose(f);
    struct tg_far_item *items = NULL;
    size_t n = 0;
    char err[256];
    assert_int_equal(tg_far_load(path, &items, &n, err, sizeof(err)), TG_OK);
    assert_int_equal(n, 2);
    assert_string_equal(items[0].decision, "deliver");
    assert_string_equal(items[1].decision, "review");
    assert_string_equal(items[1].id, "line-3");
    tg_far_free(items, n);
    f = fopen(path, "w");
    fputs("{\"question\":\"q1\"}\n{\"facts\":[]}\n", f);
    fclose(f);
    assert_int_equal(tg_far_load(path, &items, &n, err, sizeof(err)), TG_E_PARSE);
    assert_non_null(strstr(err, ":2:"));
    unlink(path);
}

/* A release's files come back from the store exactly, each checked against
 * its hash; an altered or missing file and a name escaping the folder are
 * refused. */
static void test_release_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/tg-release-XXXXXX", uri[128], out[128], conf[4400], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(uri, sizeof(uri), "sqlite:%s/t.db", dir);
    struct tg_store *st = NULL;
    assert_int_equal(tg_store_open(uri, &st, err, sizeof(err)), TG_OK);
    const char *text = "reply: hi\n", *faq = "# FAQ\n";
    char h1[65], h2[65];
    uint8_t h[32];
    tg_sha256(text, strlen(text), h);
    tg_hex_encode(h, 32, h1);
    tg_sha256(faq, strlen(faq), h);
    tg_hex_encode(h, 32, h2);
    assert_int_equal(tg_release_keep_file(st, h1, text, strlen(text)), TG_OK);
    assert_int_equal(tg_release_keep_file(st, h2, faq, strlen(faq)), TG_OK);
    assert_int_equal(tg_store_flush(st), TG_OK);
    json_t *rec = json_pack("{s:s, s:I, s:s, s:{s:s, s:s}}", "name", "r", "version", 1,
                            "config_file", "c.yaml", "files", "c.yaml", h1, "kb/faq.md", h2);
    snprintf(out, sizeof(out), "%s/out", dir);
    assert_int_equal(tg_release_materialize(st, rec, out, conf, sizeof(conf), err, sizeof(err)),
                     TG_OK);
    char path[4400], buf[64] = "";
    snprintf(path, sizeof(path), "%s/kb/faq.md", out);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, sizeof(buf) - 1, f), strlen(faq));
    fclose(f);
    assert_string_equal(buf, faq);
    assert_true(strstr(conf, "/out/c.yaml") != NULL);
    /* the stored content altered */
    char key[128];
    snprintf(key, sizeof(key), "release-file/%s", h2);
    assert_int_equal(tg_store_blob_put(st, key, "# FAQ!\n", 7), TG_OK);
    assert_int_equal(tg_store_flush(st), TG_OK);
    assert_int_not_equal(tg_release_materialize(st, rec, out, conf, sizeof(conf), err, sizeof(err)),
                         TG_OK);
    assert_non_null(strstr(err, "kb/faq.md is altered"));
    /* missing */
    json_object_set_new(json_object_get(rec, "files"), "kb/gone.md",
                        json_string("00000000000000000000000000000000000000000000000000000000000"
                                    "00000"));
    json_object_set_new(json_object_get(rec, "files"), "kb/faq.md", json_string(h1));
    assert_int_not_equal(tg_release_materialize(st, rec, out, conf, sizeof(conf), err, sizeof(err)),
                         TG_OK);
    assert_non_null(strstr(err, "kb/gone.md is missing"));
    /* a name that would escape the folder */
    json_object_del(json_object_get(rec, "files"), "kb/gone.md");
    json_object_set_new(json_object_get(rec, "files"), "../evil", json_string(h1));
    assert_int_not_equal(tg_release_materialize(st, rec, out, conf, sizeof(conf), err, sizeof(err)),
                         TG_OK);
    assert_non_null(strstr(err, "../evil lies outside"));
    json_decref(rec);
    tg_store_close(st);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consistency),
        cmocka_unit_test(test_quantile),
        cmocka_unit_test(test_score_and_failing_stage),
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_mann_kendall),
        cmocka_unit_test(test_daily_far_and_criterion),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_release_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
