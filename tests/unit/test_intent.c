/*
 * test_intent.c - the intent classifier: TSV loading and its errors,
 * training on a small Chinese and English set, probabilities and
 * explanations, save/load, the training cache (reuse and recovery from a
 * corrupt file) and the evaluation figures on a hand-computed case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "intent/intent.h"
#include "kb/kb.h"
#include "text/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    struct tg_text *tx;
    char dir[64];
};

static struct fixture fx;

static int setup(void **state)
{
    (void)state;
    char err[256];
    if (tg_text_open(&fx.tx, err, sizeof(err))) {
        fprintf(stderr, "tg_text_open: %s\n", err);
        return -1;
    }
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/tg_model_XXXXXX");
    return mkdtemp(fx.dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
    tg_text_close(fx.tx);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", fx.dir, name);
    FILE *f = fopen(buf, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    return buf;
}

/* ------------------------------------------------------------ the training set */

/* Six intents, fifteen utterances each, Chinese and English mixed. */
static const char train_tsv[] = "text\tlabel\n"
                                "我的理赔进度怎么样了\tclaim_status\n"
                                "理赔申请提交了多久能到账\tclaim_status\n"
                                "查一下理赔审核结果\tclaim_status\n"
                                "理赔款什么时候打到我卡上\tclaim_status\n"
                                "我上周报的案，理赔到哪一步了\tclaim_status\n"
                                "理赔一直没有消息\tclaim_status\n"
                                "请问理赔处理到什么阶段\tclaim_status\n"
                                "医疗险理赔审核通过了吗\tclaim_status\n"
                                "where is my claim\tclaim_status\n"
                                "what is the status of my claim\tclaim_status\n"
                                "has my insurance claim been approved\tclaim_status\n"
                                "when will my claim be paid\tclaim_status\n"
                                "check claim progress\tclaim_status\n"
                                "my claim is still pending\tclaim_status\n"
                                "any update on the claim I filed\tclaim_status\n"
                                "我想退保\tcancel_policy\n"
                                "怎么办理退保手续\tcancel_policy\n"
                                "退保能退多少钱\tcancel_policy\n"
                                "保单不想要了，要退掉\tcancel_policy\n"
                                "犹豫期内退保全额退款吗\tcancel_policy\n"
                                "申请解除保险合同\tcancel_policy\n"
                                "退保需要带什么材料\tcancel_policy\n"
                                "我要注销这份保单\tcancel_policy\n"
                                "I want to cancel my policy\tcancel_policy\n"
                                "how do I cancel the insurance\tcancel_policy\n"
                                "cancel my policy please\tcancel_policy\n"
                                "what is the refund if I cancel\tcancel_policy\n"
                                "terminate my insurance contract\tcancel_policy\n"
                                "surrender the policy\tcancel_policy\n"
                                "stop my policy and refund me\tcancel_policy\n"
                                "保费怎么交\tpay_premium\n"
                                "续期保费从哪里缴纳\tpay_premium\n"
                                "可以用微信交保费吗\tpay_premium\n"
                                "保费扣款失败了\tpay_premium\n"
                                "下个月的保费什么时候扣\tpay_premium\n"
                                "我想改成按月缴费\tpay_premium\n"
                                "缴费银行卡要换一张\tpay_premium\n"
                                "交费宽限期有多长\tpay_premium\n"
                                "how do I pay my premium\tpay_premium\n"
                                "premium payment failed\tpay_premium\n"
                                "can I pay the premium by card\tpay_premium\n"
                                "when is my next premium due\tpay_premium\n"
                                "change my premium payment method\tpay_premium\n"
                                "pay monthly premium online\tpay_premium\n"
                                "the premium was not deducted\tpay_premium\n"
                                "我搬家了要改地址\tchange_address\n"
                                "修改保单上的联系地址\tchange_address\n"
                                "更新我的通讯地址\tchange_address\n"
                                "地址填错了怎么改\tchange_address\n"
                                "变更邮寄地址\tchange_address\n"
                                "我的住址变了需要更新\tchange_address\n"
                                "怎么修改家庭住址\tchange_address\n"
                                "联系地址要换成新的\tchange_address\n"
                                "I moved and need to change my address\tchange_address\n"
                                "update my mailing address\tchange_address\n"
                                "change the address on my policy\tchange_address\n"
                                "my address is wrong\tchange_address\n"
                                "new home address update\tchange_address\n"
                                "how to edit my postal address\tchange_address\n"
                                "correct the address you have for me\tchange_address\n"
                                "我要投诉你们的服务\tcomplaint\n"
                                "客服态度太差了，我要投诉\tcomplaint\n"
                                "对处理结果非常不满意\tcomplaint\n"
                                "投诉业务员误导销售\tcomplaint\n"
                                "你们的服务太糟糕了\tcomplaint\n"
                                "我要向监管部门投诉\tcomplaint\n"
                                "等了这么久没人管，很生气\tcomplaint\n"
                                "提交一个正式投诉\tcomplaint\n"
                                "I want to file a complaint\tcomplaint\n"
                                "your service is terrible\tcomplaint\n"
                                "I am very unhappy with the agent\tcomplaint\n"
                                "complain about rude staff\tcomplaint\n"
                                "this is unacceptable, I want to complain\tcomplaint\n"
                                "make a formal complaint\tcomplaint\n"
                                "the agent misled me and I am angry\tcomplaint\n"
                                "重疾险每年保费多少钱\tquote\n"
                                "帮我算一下保费报价\tquote\n"
                                "三十岁买意外险要多少钱\tquote\n"
                                "这个产品一年交多少\tquote\n"
                                "给我一个医疗险的报价\tquote\n"
                                "买五十万保额的寿险多少钱\tquote\n"
                                "孩子的教育险价格是多少\tquote\n"
                                "报价单能发给我吗\tquote\n"
                                "how much does life insurance cost\tquote\n"
                                "give me a quote for travel insurance\tquote\n"
                                "price of accident cover for a 30 year old\tquote\n"
                                "get a quote for health insurance\tquote\n"
                                "what would the yearly price be\tquote\n"
                                "quote me for term life\tquote\n"
                                "how much is car insurance for me\tquote\n";

struct probe {
    const char *text;
    const char *label;
    const char *token; /* a feature text expected among the top contributions */
};

/* Paraphrases that are not in the training set. */
static const struct probe probes[] = {
    {"我的理赔审核到哪一步了？", "claim_status", "理赔"},
    {"is there any news about my claim", "claim_status", "claim"},
    {"退保的话能拿回多少钱", "cancel_policy", "退保"},
    {"please cancel my insurance policy", "cancel_policy", "cancel"},
    {"保费可以用银行卡缴纳吗", "pay_premium", "保费"},
    {"I need to pay my premium", "pay_premium", "premium"},
    {"我想修改一下地址", "change_address", "地址"},
    {"please update my address", "change_address", "address"},
    {"我要投诉这个客服", "complaint", "投诉"},
    {"I want to complain about the service", "complaint", "complain"},
    {"意外险的报价是多少", "quote", "报价"},
    {"can you give me a quote", "quote", "quote"},
};

static struct tg_intent_model *train_small(void)
{
    char path[256], err[512];
    struct tg_dataset ds = {0};
    struct tg_intent_model *m = NULL;
    write_file("small.tsv", train_tsv, path, sizeof(path));
    assert_int_equal(tg_dataset_load_tsv(path, &ds, err, sizeof(err)), TG_OK);
    assert_int_equal(ds.n, 90);
    int rc = tg_intent_train(fx.tx, &ds, NULL, &m, err, sizeof(err));
    if (rc)
        fprintf(stderr, "train: %s\n", err);
    assert_int_equal(rc, TG_OK);
    tg_dataset_free(&ds);
    return m;
}

/* ------------------------------------------------------------ tests */

static void test_tsv_loading(void **state)
{
    (void)state;
    char path[256], err[512];
    struct tg_dataset ds = {0};

    write_file("ok.tsv", "text\tlabel\r\n理赔多久到账\tclaim\r\n\nhello there\tgreet\nbye\tgreet",
               path, sizeof(path));
    assert_int_equal(tg_dataset_load_tsv(path, &ds, err, sizeof(err)), TG_OK);
    assert_int_equal(ds.n, 3);
    assert_string_equal(ds.v[0].text, "理赔多久到账");
    assert_string_equal(ds.v[0].label, "claim");
    assert_string_equal(ds.v[1].text, "hello there");
    assert_string_equal(ds.v[2].text, "bye");
    assert_string_equal(ds.v[2].label, "greet");

    /* a bad line leaves what was there before */
    write_file("bad.tsv", "text\tintent\na\tx\nno tab here\nb\ty\n", path, sizeof(path));
    assert_int_equal(tg_dataset_load_tsv(path, &ds, err, sizeof(err)), TG_E_PARSE);
    char want[300];
    snprintf(want, sizeof(want), "%s:3:", path);
    assert_non_null(strstr(err, want));
    assert_int_equal(ds.n, 3);

    write_file("empty_field.tsv", "a\tx\n\ty\n", path, sizeof(path));
    assert_int_equal(tg_dataset_load_tsv(path, &ds, err, sizeof(err)), TG_E_PARSE);
    snprintf(want, sizeof(want), "%s:2: empty text", path);
    assert_string_equal(err, want);

    write_file("three.tsv", "train\thi\tgreet\n", path, sizeof(path));
    assert_int_equal(tg_dataset_load_tsv(path, &ds, err, sizeof(err)), TG_E_PARSE);
    assert_non_null(strstr(err, ":1: more than two fields"));
    tg_dataset_free(&ds);

    /* an empty file holds no examples, and nothing can be trained on it */
    write_file("empty.tsv", "", path, sizeof(path));
    assert_int_equal(tg_dataset_load_tsv(path, &ds, err, sizeof(err)), TG_OK);
    assert_int_equal(ds.n, 0);
    struct tg_intent_model *m = NULL;
    assert_int_equal(tg_intent_train(fx.tx, &ds, NULL, &m, err, sizeof(err)), TG_E_INVAL);
    assert_null(m);
    assert_string_equal(err, "no training examples");

    snprintf(path, sizeof(path), "%s/missing.tsv", fx.dir);
    assert_int_equal(tg_dataset_load_tsv(path, &ds, err, sizeof(err)), TG_E_IO);
    assert_non_null(strstr(err, "missing.tsv"));

    /* one intent is not a classifier */
    write_file("one.tsv", "a b\tx\nc d\tx\n", path, sizeof(path));
    assert_int_equal(tg_dataset_load_tsv(path, &ds, err, sizeof(err)), TG_OK);
    assert_int_equal(tg_intent_train(fx.tx, &ds, NULL, &m, err, sizeof(err)), TG_E_INVAL);
    struct tg_intent_opts bad = {.c = -1};
    assert_int_equal(tg_intent_train(fx.tx, &ds, &bad, &m, err, sizeof(err)), TG_E_INVAL);
    tg_dataset_free(&ds);
}

/* Some top feature is the token, holds it, or is a piece of it (3+ bytes). */
static bool has_top(const struct tg_intent_result *r, const char *token)
{
    for (size_t i = 0; i < r->n_top; i++) {
        char body[64];
        const char *b = r->top[i].feature + 2;
        while (*b == ' ')
            b++;
        size_t n = tg_strlcpy(body, b, sizeof(body));
        while (n > 0 && body[n - 1] == ' ')
            body[--n] = '\0';
        if (strstr(body, token) || (n >= 3 && strstr(token, body)))
            return true;
    }
    return false;
}

static void test_train_predict_explain(void **state)
{
    (void)state;
    struct tg_intent_model *m = train_small();
    assert_int_equal(tg_intent_n_labels(m), 6);
    assert_string_equal(tg_intent_label(m, 0), "claim_status");
    assert_null(tg_intent_label(m, 6));
    assert_int_equal(tg_intent_n_examples(m), 90);
    for (size_t i = 0; i < TG_ARRAY_LEN(probes); i++) {
        struct tg_intent_result r;
        const char *t = probes[i].text;
        assert_int_equal(tg_intent_predict(m, fx.tx, t, strlen(t), &r), TG_OK);
        if (strcmp(r.label, probes[i].label) != 0)
            fprintf(stderr, "%s -> %s (%.3f)\n", t, r.label, r.probability);
        assert_string_equal(r.label, probes[i].label);
        assert_true(r.probability > r.second_probability);
        assert_string_not_equal(r.second, r.label);

        const double *p = tg_intent_probabilities(m);
        double sum = 0;
        for (size_t j = 0; j < tg_intent_n_labels(m); j++) {
            assert_true(p[j] >= 0 && p[j] <= 1);
            assert_true(p[j] <= r.probability);
            sum += p[j];
        }
        assert_true(fabs(sum - 1) < 1e-9);

        /* contributions: positive, largest first, named features */
        assert_true(r.n_top > 0 && r.n_top <= 8);
        for (size_t j = 0; j < r.n_top; j++) {
            assert_true(r.top[j].weight > 0);
            if (j)
                assert_true(r.top[j].weight <= r.top[j - 1].weight);
            assert_true(strncmp(r.top[j].feature, "w:", 2) == 0 ||
                        strncmp(r.top[j].feature, "c:", 2) == 0);
        }
        if (!has_top(&r, probes[i].token)) {
            for (size_t j = 0; j < r.n_top; j++)
                fprintf(stderr, "  %s %.4f\n", r.top[j].feature, r.top[j].weight);
        }
        assert_true(has_top(&r, probes[i].token));
    }

    /* Traditional characters and full-width letters are normalized first */
    struct tg_intent_result r;
    const char *trad = "我的理賠進度查詢";
    assert_int_equal(tg_intent_predict(m, fx.tx, trad, strlen(trad), &r), TG_OK);
    assert_string_equal(r.label, "claim_status");
    const char *wide = "ＣＡＮＣＥＬ ｍｙ ｐｏｌｉｃｙ";
    assert_int_equal(tg_intent_predict(m, fx.tx, wide, strlen(wide), &r), TG_OK);
    assert_string_equal(r.label, "cancel_policy");

    /* nothing known: still an answer, with no contributions */
    assert_int_equal(tg_intent_predict(m, fx.tx, "", 0, &r), TG_OK);
    assert_non_null(r.label);
    assert_int_equal(r.n_top, 0);

    /* a long text costs the same few allocations as a short one (scratch is
     * reused), not one per feature */
    char longtext[4096];
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(longtext + n, sizeof(longtext) - n, "理赔 claim status %d ", i);
    assert_int_equal(tg_intent_predict(m, fx.tx, longtext, n, &r), TG_OK);
    tg_mem_fail_after(8);
    int rc = tg_intent_predict(m, fx.tx, longtext, n, &r);
    tg_mem_fail_after(-1);
    assert_int_equal(rc, TG_OK);
    assert_string_equal(r.label, "claim_status");
    tg_intent_free(m);
}

static void assert_same_predictions(struct tg_intent_model *a, struct tg_intent_model *b)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(probes); i++) {
        struct tg_intent_result ra, rb;
        const char *t = probes[i].text;
        assert_int_equal(tg_intent_predict(a, fx.tx, t, strlen(t), &ra), TG_OK);
        assert_int_equal(tg_intent_predict(b, fx.tx, t, strlen(t), &rb), TG_OK);
        assert_string_equal(ra.label, rb.label);
        assert_true(ra.probability == rb.probability);
        assert_string_equal(ra.second, rb.second);
        assert_true(ra.second_probability == rb.second_probability);
        assert_int_equal(ra.n_top, rb.n_top);
        for (size_t j = 0; j < ra.n_top; j++) {
            assert_string_equal(ra.top[j].feature, rb.top[j].feature);
            assert_true(ra.top[j].weight == rb.top[j].weight);
        }
    }
}

static void test_save_load(void **state)
{
    (void)state;
    char path[256], err[512];
    struct tg_intent_model *m = train_small(), *l = NULL;
    snprintf(path, sizeof(path), "%s/small.model", fx.dir);
    assert_int_equal(tg_intent_save(m, path), TG_OK);
    assert_int_equal(tg_intent_load(path, &l, err, sizeof(err)), TG_OK);
    assert_int_equal(tg_intent_n_labels(l), tg_intent_n_labels(m));
    assert_int_equal(tg_intent_n_features(l), tg_intent_n_features(m));
    for (size_t i = 0; i < tg_intent_n_labels(m); i++)
        assert_string_equal(tg_intent_label(l, i), tg_intent_label(m, i));
    assert_same_predictions(m, l);
    tg_intent_free(l);

    /* not a model: an error, not a crash */
    write_file("junk.model", "TGINTENT but not really a model at all, just text", path,
               sizeof(path));
    l = NULL;
    assert_int_equal(tg_intent_load(path, &l, err, sizeof(err)), TG_E_PARSE);
    assert_null(l);
    snprintf(path, sizeof(path), "%s/none.model", fx.dir);
    assert_int_equal(tg_intent_load(path, &l, err, sizeof(err)), TG_E_IO);
    tg_intent_free(m);
}

static void file_id(const char *path, struct stat *st)
{
    assert_int_equal(stat(path, st), 0);
}

static void test_cache(void **state)
{
    (void)state;
    char tsv[256], cache[256], err[512];
    struct tg_intent_model *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    struct stat s1, s2;
    write_file("cached.tsv", train_tsv, tsv, sizeof(tsv));
    snprintf(cache, sizeof(cache), "%s/cache", fx.dir);
    assert_int_equal(mkdir(cache, 0700), 0);

    assert_int_equal(tg_intent_load_or_train(fx.tx, tsv, cache, NULL, &a, err, sizeof(err)), TG_OK);
    assert_false(tg_intent_from_cache(a));
    const char *path = tg_intent_cache_path(a);
    assert_non_null(path);
    assert_true(strncmp(path, cache, strlen(cache)) == 0);
    file_id(path, &s1);

    /* the second time the file is read, not written again */
    assert_int_equal(tg_intent_load_or_train(fx.tx, tsv, cache, NULL, &b, err, sizeof(err)), TG_OK);
    assert_true(tg_intent_from_cache(b));
    assert_string_equal(tg_intent_cache_path(b), path);
    file_id(path, &s2);
    assert_true(s1.st_ino == s2.st_ino && s1.st_mtim.tv_sec == s2.st_mtim.tv_sec &&
                s1.st_mtim.tv_nsec == s2.st_mtim.tv_nsec);
    assert_same_predictions(a, b);
    tg_intent_free(b);

    /* flip one byte in the middle: ignored and trained again */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, s1.st_size / 2, SEEK_SET), 0);
    int ch = fgetc(f);
    assert_int_equal(fseek(f, s1.st_size / 2, SEEK_SET), 0);
    fputc(ch ^ 0x5a, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(tg_intent_load_or_train(fx.tx, tsv, cache, NULL, &c, err, sizeof(err)), TG_OK);
    assert_false(tg_intent_from_cache(c));
    assert_same_predictions(a, c);
    tg_intent_free(c);
    c = NULL;

    /* truncated, and then garbage: the same */
    assert_int_equal(truncate(path, 40), 0);
    assert_int_equal(tg_intent_load_or_train(fx.tx, tsv, cache, NULL, &c, err, sizeof(err)), TG_OK);
    assert_false(tg_intent_from_cache(c));
    tg_intent_free(c);
    c = NULL;
    f = fopen(path, "wb");
    assert_non_null(f);
    fputs("garbage", f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(tg_intent_load_or_train(fx.tx, tsv, cache, NULL, &c, err, sizeof(err)), TG_OK);
    assert_false(tg_intent_from_cache(c));
    tg_intent_free(c);
    c = NULL;

    /* the rewritten file is good again */
    assert_int_equal(tg_intent_load_or_train(fx.tx, tsv, cache, NULL, &c, err, sizeof(err)), TG_OK);
    assert_true(tg_intent_from_cache(c));
    tg_intent_free(c);

    /* other options or other data: another cache file */
    struct tg_intent_opts o = {.c = 3};
    assert_int_equal(tg_intent_load_or_train(fx.tx, tsv, cache, &o, &d, err, sizeof(err)), TG_OK);
    assert_false(tg_intent_from_cache(d));
    assert_string_not_equal(tg_intent_cache_path(d), path);
    tg_intent_free(d);

    /* a model saved under the cache's name for other data is not taken */
    assert_int_equal(tg_intent_save(a, path), TG_OK);
    char other[256];
    snprintf(other, sizeof(other), "%s/other.tsv", fx.dir);
    write_file("other.tsv", "保费怎么交\tpay\n我要退保\tcancel\n", other, sizeof(other));
    d = NULL;
    assert_int_equal(tg_intent_load_or_train(fx.tx, other, cache, NULL, &d, err, sizeof(err)),
                     TG_OK);
    assert_false(tg_intent_from_cache(d));
    assert_int_equal(tg_intent_n_labels(d), 2);
    /* copy a's file over d's cache name: same format, wrong key */
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path, tg_intent_cache_path(d));
    assert_int_equal(system(cmd), 0);
    struct tg_intent_model *e = NULL;
    assert_int_equal(tg_intent_load_or_train(fx.tx, other, cache, NULL, &e, err, sizeof(err)),
                     TG_OK);
    assert_false(tg_intent_from_cache(e));
    assert_int_equal(tg_intent_n_labels(e), 2);
    tg_intent_free(e);
    tg_intent_free(d);

    /* no cache directory: trains, caches nothing */
    assert_int_equal(tg_intent_load_or_train(fx.tx, tsv, NULL, NULL, &d, err, sizeof(err)), TG_OK);
    assert_null(tg_intent_cache_path(d));
    tg_intent_free(d);
    tg_intent_free(a);
}

static void test_eval_exact(void **state)
{
    (void)state;
    char path[256], err[512];
    struct tg_dataset train = {0}, test = {0};
    struct tg_intent_model *m = NULL;
    write_file("fruit.tsv",
               "apple\tA\napple pie\tA\ngreen apple\tA\nred apple\tA\n"
               "train ticket\tB\nbuy a ticket\tB\nticket office\tB\nticket price\tB\n"
               "rain today\tC\nheavy rain\tC\nrain tomorrow\tC\nrain forecast\tC\n",
               path, sizeof(path));
    assert_int_equal(tg_dataset_load_tsv(path, &train, err, sizeof(err)), TG_OK);
    assert_int_equal(tg_intent_train(fx.tx, &train, NULL, &m, err, sizeof(err)), TG_OK);
    /*
     * gold A, predicted A;  gold A, predicted B;  gold C, predicted C;
     * gold D (unknown to the model), predicted A.
     * accuracy 2/4.  F1: A = 2*1/(2+1+1) = 0.5, B = 0 (one FP), C = 1,
     * D = 0 (one FN): macro-F1 = 1.5/4 = 0.375.
     */
    write_file("fruit_test.tsv", "text\tlabel\napple\tA\nticket\tA\nrain\tC\napple\tD\n", path,
               sizeof(path));
    assert_int_equal(tg_dataset_load_tsv(path, &test, err, sizeof(err)), TG_OK);
    struct tg_intent_eval ev;
    json_t *conf = NULL;
    assert_int_equal(tg_intent_evaluate(m, fx.tx, &test, &ev, &conf), TG_OK);
    assert_int_equal(ev.n, 4);
    assert_true(fabs(ev.accuracy - 0.5) < 1e-12);
    assert_true(fabs(ev.macro_f1 - 0.375) < 1e-12);
    assert_int_equal(json_array_size(conf), 2);
    json_t *p0 = json_array_get(conf, 0), *p1 = json_array_get(conf, 1);
    assert_string_equal(tg_json_str(p0, "gold", ""), "A");
    assert_string_equal(tg_json_str(p0, "predicted", ""), "B");
    assert_int_equal(tg_json_int(p0, "count", 0), 1);
    assert_string_equal(tg_json_str(p1, "gold", ""), "D");
    assert_string_equal(tg_json_str(p1, "predicted", ""), "A");
    json_decref(conf);

    /* out of scope: 'oos' utterances, caught only below the threshold */
    tg_dataset_free(&test);
    write_file("oos_test.tsv", "apple\tA\nticket\tB\nrain\tA\nhello\toos\nwhat\toos\n", path,
               sizeof(path));
    assert_int_equal(tg_dataset_load_tsv(path, &test, err, sizeof(err)), TG_OK);
    struct tg_intent_oos_eval oe;
    assert_int_equal(tg_intent_evaluate_oos(m, fx.tx, &test, "oos", 0, &oe), TG_OK);
    assert_int_equal(oe.n_in, 3);
    assert_int_equal(oe.n_oos, 2);
    assert_true(fabs(oe.in_scope_accuracy - 2.0 / 3) < 1e-12);
    assert_true(oe.oos_recall == 0);
    assert_int_equal(tg_intent_evaluate_oos(m, fx.tx, &test, "oos", 1, &oe), TG_OK);
    assert_true(oe.in_scope_accuracy == 0);
    assert_true(oe.oos_recall == 1);
    assert_true(fabs(oe.oos_precision - 0.4) < 1e-12);
    /* between: the known words are confident, the unknown ones are not */
    struct tg_intent_result r;
    assert_int_equal(tg_intent_predict(m, fx.tx, "hello", 5, &r), TG_OK);
    double low = r.probability;
    assert_int_equal(tg_intent_predict(m, fx.tx, "apple", 5, &r), TG_OK);
    assert_true(r.probability > low);
    double mid = (low + r.probability) / 2;
    assert_int_equal(tg_intent_evaluate_oos(m, fx.tx, &test, "oos", mid, &oe), TG_OK);
    assert_true(oe.oos_recall > 0);
    assert_true(oe.in_scope_accuracy > 0);

    tg_dataset_free(&test);
    assert_int_equal(tg_intent_evaluate(m, fx.tx, &test, &ev, NULL), TG_E_INVAL);
    tg_dataset_free(&train);
    tg_intent_free(m);
}

/* Two intents: liblinear keeps one weight column, negated for the second. */
static void test_two_intents(void **state)
{
    (void)state;
    char path[256], err[512];
    struct tg_dataset ds = {0};
    struct tg_intent_model *m = NULL;
    write_file("two.tsv",
               "保费怎么交\tpay\n交保费\tpay\n保费扣款\tpay\npay the premium\tpay\n"
               "我要退保\tcancel\n退保流程\tcancel\n怎么退保\tcancel\ncancel my policy\tcancel\n",
               path, sizeof(path));
    assert_int_equal(tg_dataset_load_tsv(path, &ds, err, sizeof(err)), TG_OK);
    assert_int_equal(tg_intent_train(fx.tx, &ds, NULL, &m, err, sizeof(err)), TG_OK);
    static const struct probe two[] = {
        {"保费什么时候交", "pay", "保费"},
        {"退保要多久", "cancel", "退保"},
        {"premium", "pay", "premium"},
        {"cancel", "cancel", "cancel"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(two); i++) {
        struct tg_intent_result r;
        assert_int_equal(tg_intent_predict(m, fx.tx, two[i].text, strlen(two[i].text), &r), TG_OK);
        assert_string_equal(r.label, two[i].label);
        const double *p = tg_intent_probabilities(m);
        assert_true(fabs(p[0] + p[1] - 1) < 1e-12);
        assert_true(r.probability > 0.5);
        assert_true(r.n_top > 0 && r.top[0].weight > 0);
        assert_true(has_top(&r, two[i].token));
    }
    tg_dataset_free(&ds);
    tg_intent_free(m);
}

/* Probabilities of a known text: the same as a prediction's, computed once. */
static void test_probabilities_memo(void **state)
{
    (void)state;
    struct tg_intent_model *m = train_small();
    size_t n = tg_intent_n_labels(m);
    double want[16];
    assert_true(n <= TG_ARRAY_LEN(want));
    for (size_t i = 0; i < TG_ARRAY_LEN(probes); i++) {
        struct tg_intent_result r;
        const char *t = probes[i].text;
        const double *p, *again;
        assert_int_equal(tg_intent_predict(m, fx.tx, t, strlen(t), &r), TG_OK);
        memcpy(want, tg_intent_probabilities(m), n * sizeof(double));
        assert_int_equal(tg_intent_probabilities_of(m, fx.tx, t, strlen(t), &p), TG_OK);
        for (size_t j = 0; j < n; j++)
            assert_true(fabs(p[j] - want[j]) < 1e-12);
        assert_int_equal(tg_intent_probabilities_of(m, fx.tx, t, strlen(t), &again), TG_OK);
        assert_ptr_equal(again, p); /* remembered, not classified again */
    }
    /* many texts: the table grows and keeps every row */
    for (int k = 0; k < 600; k++) {
        char t[64];
        const double *p;
        snprintf(t, sizeof(t), "我想查询第%d号理赔进度", k);
        assert_int_equal(tg_intent_probabilities_of(m, fx.tx, t, strlen(t), &p), TG_OK);
        double sum = 0;
        for (size_t j = 0; j < n; j++)
            sum += p[j];
        assert_true(fabs(sum - 1.0) < 1e-9);
    }
    tg_intent_free(m);
}


/* The knowledge base's labelled questions and headings train the classifier
 * beside the file; a label the file does not know is refused. */
static void test_kb_examples(void **state)
{
    (void)state;
    char tsv[256], tsv2[256], path[256], err[512] = "", kbdir[128];
    struct tg_kb *kb = NULL;
    struct tg_intent_model *m = NULL;
    struct tg_intent_result r;
    struct tg_buf x;
    const char *q = "半路没电了能搭电换胎吗";
    write_file("kbx.tsv", train_tsv, tsv, sizeof(tsv));
    snprintf(kbdir, sizeof(kbdir), "%s/kb", fx.dir);
    assert_int_equal(mkdir(kbdir, 0700), 0);
    write_file("kb/rescue.md",
               "---\nintent: roadside\n---\n# 道路救援服务\n\n## 搭电换胎送油\n\n"
               "电瓶没电可以搭电，爆胎可以换备胎。\n\n## 拖车\n\n五十公里内免费拖车。\n",
               path, sizeof(path));
    write_file("kb/faq.jsonl",
               "{\"question\": \"车半路抛锚能叫拖车吗\", \"answer\": \"能。\", "
               "\"intent\": \"roadside\"}\n"
               "{\"question\": \"没有标签的问题\", \"answer\": \"无。\"}\n",
               path, sizeof(path));
    assert_int_equal(tg_kb_open(NULL, fx.tx, NULL, &kb, err, sizeof(err)), TG_OK);
    assert_int_equal(tg_kb_ingest(kb, kbdir, NULL, err, sizeof(err)), TG_OK);
    tg_buf_init(&x, TG_BUF_UNLIMITED);
    assert_int_equal(tg_intent_kb_examples(kb, &x), TG_OK);
    assert_non_null(x.data);
    assert_non_null(strstr(x.data, "车半路抛锚能叫拖车吗\troadside\n"));
    assert_non_null(strstr(x.data, "道路救援服务\troadside\n"));
    assert_non_null(strstr(x.data, "道路救援服务 搭电换胎送油\troadside\n"));
    assert_null(strstr(x.data, "没有标签的问题"));

    /* an intent the file has no example of is refused, by name */
    assert_int_equal(tg_intent_load_or_train_with(fx.tx, tsv, x.data, x.len, NULL, NULL, &m, err,
                                                  sizeof(err)),
                     TG_E_CONFIG);
    assert_non_null(strstr(err, "roadside"));
    assert_null(m);

    /* one example in the file: alone it does not carry the question ... */
    size_t n = sizeof(train_tsv) + 64;
    char *both = malloc(n);
    assert_non_null(both);
    snprintf(both, n, "%s%s", train_tsv, "我要道路救援\troadside\n");
    write_file("kbx2.tsv", both, tsv2, sizeof(tsv2));
    free(both);
    assert_int_equal(tg_intent_load_or_train_with(fx.tx, tsv2, NULL, 0, NULL, NULL, &m, err,
                                                  sizeof(err)),
                     TG_OK);
    assert_int_equal(tg_intent_predict(m, fx.tx, q, strlen(q), &r), TG_OK);
    assert_string_not_equal(r.label, "roadside");
    tg_intent_free(m);
    m = NULL;
    /* ... with the knowledge base's examples it does */
    assert_int_equal(tg_intent_load_or_train_with(fx.tx, tsv2, x.data, x.len, NULL, NULL, &m, err,
                                                  sizeof(err)),
                     TG_OK);
    assert_int_equal(tg_intent_predict(m, fx.tx, q, strlen(q), &r), TG_OK);
    assert_string_equal(r.label, "roadside");
    tg_intent_free(m);
    tg_buf_free(&x);
    tg_kb_close(kb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tsv_loading),        cmocka_unit_test(test_train_predict_explain),
        cmocka_unit_test(test_save_load),          cmocka_unit_test(test_cache),
        cmocka_unit_test(test_eval_exact),         cmocka_unit_test(test_two_intents),
        cmocka_unit_test(test_probabilities_memo), cmocka_unit_test(test_kb_examples),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
