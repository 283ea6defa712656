/*
 * test_policy.c - the policy language (src/policy/compile.c, eval.c,
 * ac.c): every condition kind true and false, combinators, comparison
 * forms and their strictness, keywords shared across rules and checked
 * against a naive search, a 10,000-term list from a file, regex spans,
 * tool calls (names, arguments as written and with their escapes decoded,
 * count), what each hit reports as its trigger, every compile error with
 * its exact FILE:LINE, merge, and evaluation that allocates nothing once
 * hits grew.
 *
 * Fixtures are written to a temporary folder and loaded with
 * tg_policy_load, as a deployment would.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "policy/policy.h"
#include "text/text.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/tg-test-policy-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* Write text to dir/name; the path is returned in buf. */
static const char *put(const char *name, const char *text, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    FILE *f = fopen(buf, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return buf;
}

static void dump(const json_t *errs)
{
    size_t i;
    const json_t *e;
    json_array_foreach(errs, i, e)
    {
        fprintf(stderr, "  %s\n", json_string_value(e));
    }
}

static struct tg_policy *load_ok(const char *yaml)
{
    char path[256];
    struct tg_policy *p = NULL;
    json_t *errs = json_array();
    int rc = tg_policy_load(put("ok.yaml", yaml, path, sizeof(path)), &p, errs);
    if (rc)
        dump(errs);
    assert_int_equal(rc, TG_OK);
    assert_int_equal(json_array_size(errs), 0);
    json_decref(errs);
    assert_non_null(p);
    return p;
}

/* Load a broken file; the errors are returned and the file's path is in path. */
static json_t *load_bad(const char *yaml, char *path, size_t cap)
{
    struct tg_policy *p = (struct tg_policy *)(uintptr_t)1;
    json_t *errs = json_array();
    assert_int_equal(tg_policy_load(put("bad.yaml", yaml, path, cap), &p, errs), TG_E_CONFIG);
    assert_ptr_equal(p, (struct tg_policy *)(uintptr_t)1); /* untouched */
    assert_true(json_array_size(errs) > 0);
    return errs;
}

/* Assert that errs is exactly the list of "path:LINE: message" given as {line, message}. */
struct want_err {
    int line;
    const char *msg;
};

static void assert_errors(const json_t *errs, const char *path, const struct want_err *want,
                          size_t n)
{
    if (json_array_size(errs) != n)
        dump(errs);
    assert_int_equal(json_array_size(errs), n);
    for (size_t i = 0; i < n; i++) {
        char buf[1024];
        snprintf(buf, sizeof(buf), "%s:%d: %s", path, want[i].line, want[i].msg);
        const char *got = json_string_value(json_array_get(errs, i));
        if (strcmp(got, buf) != 0)
            dump(errs);
        assert_string_equal(got, buf);
    }
}

/* ------------------------------------------------------------ facts */

struct fx {
    struct tg_policy_facts f;
    struct tg_entities e;
    char norm[2048];
};

/* Facts for text: entities extracted, norm = the text lower-cased (ASCII). */
static void fx_init(struct fx *x, const char *text)
{
    static const struct tg_entity_opts opts = {.policy_pattern = "P[0-9]{10}"};
    memset(x, 0, sizeof(*x));
    tg_entities_init(&x->e);
    size_t len = strlen(text);
    assert_true(len < sizeof(x->norm));
    assert_int_equal(tg_entities_extract(text, len, &opts, &x->e), TG_OK);
    for (size_t i = 0; i <= len; i++)
        x->norm[i] = (text[i] >= 'A' && text[i] <= 'Z') ? (char)(text[i] + 32) : text[i];
    x->f.text = text;
    x->f.text_len = len;
    x->f.norm = x->norm;
    x->f.norm_len = len;
    x->f.entities = &x->e;
    x->f.confidence = -1;
    x->f.channel = "api";
}

static void fx_draft(struct fx *x, const char *draft, const char *lang)
{
    x->f.draft = draft;
    x->f.draft_len = strlen(draft);
    x->f.draft_language = lang;
}

static void fx_free(struct fx *x)
{
    tg_entities_free(&x->e);
}

/* The ids of the rules that fire, comma-separated. */
static const char *fired(const struct tg_policy *p, enum tg_policy_stage st,
                         const struct tg_policy_facts *f, struct tg_policy_hits *h, char *buf,
                         size_t cap)
{
    size_t len = 0;
    assert_int_equal(tg_policy_eval(p, st, f, h), TG_OK);
    buf[0] = '\0';
    for (size_t i = 0; i < h->n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? "," : "", h->v[i].rule);
    assert_true(len < cap);
    return buf;
}

static const struct tg_policy_hit *hit_of(const struct tg_policy_hits *h, const char *id)
{
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->v[i].rule, id) == 0)
            return &h->v[i];
    }
    fail_msg("rule %s did not fire", id);
    return NULL;
}

/* The text of a hit's span in s. */
static const char *span(const char *s, const struct tg_policy_hit *h, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.*s", (int)(h->end - h->start), s + h->start);
    return buf;
}

/* ------------------------------------------------------------ conversation */

/*
 * conversation.keywords reads the customer's earlier messages: on a first
 * message it never holds, its span is one of the conversation's text, and
 * it shares the automaton (and the once-per-text scan) with keywords.
 */
static void test_conversation_keywords(void **state)
{
    (void)state;
    struct tg_policy *p = load_ok(
        "- {id: conv, description: d, when: {conversation.keywords: [贷款, Loan]}, then: {tag: "
        "t}}\n"
        "- {id: now, description: d, when: {keywords: [贷款]}, then: {tag: t}}\n"
        "- id: redline\n"
        "  description: d\n"
        "  when:\n"
        "    all:\n"
        "      - any: [{keywords: [贷款]}, {conversation.keywords: [贷款]}]\n"
        "      - keywords: [批]\n"
        "      - intent: credit_decision\n"
        "      - intent_confidence: {ge: 0.15}\n"
        "  then: {tag: t}\n");
    struct tg_policy_hits h;
    char buf[128], sb[64];
    struct fx x;
    tg_policy_hits_init(&h);

    /* A first message: no conversation, the subject must be in the message. */
    fx_init(&x, "那能批吗");
    x.f.intent = "credit_decision";
    x.f.intent_confidence = 0.4;
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "");
    /* The conversation so far supplies the subject. */
    const char *conv = "我申请了房贷款三十万\n审批要多久";
    x.f.conversation = conv;
    x.f.conversation_len = strlen(conv);
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "conv,redline");
    assert_string_equal(hit_of(&h, "conv")->field, "conversation");
    assert_string_equal(span(conv, hit_of(&h, "conv"), sb, sizeof(sb)), "贷款");
    assert_string_equal(hit_of(&h, "redline")->field, "conversation");
    /* Without enough confidence, or with no ask, the red line stays silent. */
    x.f.intent_confidence = 0.1;
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "conv");
    fx_free(&x);

    /* Words of the message are not the conversation's, and English folds case. */
    fx_init(&x, "贷款怎么还");
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "now");
    x.f.conversation = "my LOAN";
    x.f.conversation_len = 7;
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "conv,now");
    assert_int_equal(hit_of(&h, "conv")->start, 3);
    fx_free(&x);

    /* Merged after another policy, the leaf still reads the conversation. */
    struct tg_policy *a =
        load_ok("- {id: a, description: d, when: {keywords: [保本]}, then: {tag: t}}\n");
    assert_int_equal(tg_policy_merge(a, p), TG_OK);
    fx_init(&x, "保本吗");
    x.f.conversation = "贷款";
    x.f.conversation_len = strlen("贷款");
    assert_string_equal(fired(a, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "a,conv");
    fx_free(&x);

    tg_policy_hits_free(&h);
    tg_policy_free(a);
}

/* ------------------------------------------------------------ every condition */

static const char every_kind[] =
    "- {id: intent, description: d, when: {intent: [wealth_advice, product_recommend]}, then: "
    "{tag: t}}\n"
    "- {id: intent_conf, description: d, when: {intent_confidence: {ge: 0.8}}, then: {tag: t}}\n"
    "- {id: money_max, description: d, when: {money.max: {gt: 50000}}, then: {tag: t}}\n"
    "- {id: money_count, description: d, when: {money.count: {ge: 2}}, then: {tag: t}}\n"
    "- {id: money_any, description: d, when: {money.any: true}, then: {tag: t}}\n"
    "- {id: no_money, description: d, when: {money.any: false}, then: {tag: t}}\n"
    "- {id: pii_any, description: d, when: {pii.any: true}, then: {tag: t}}\n"
    "- {id: no_pii, description: d, when: {pii.any: false}, then: {tag: t}}\n"
    "- {id: pii_type, description: d, when: {pii.type: [mobile, email]}, then: {tag: t}}\n"
    "- {id: keywords, description: d, when: {keywords: [保本, Guaranteed]}, then: {tag: t}}\n"
    "- {id: regex, description: d, when: {regex: '收益率?\\d+%'}, then: {tag: t}}\n"
    "- {id: best, description: d, when: {evidence.best_score: {lt: 0.3}}, then: {tag: t}}\n"
    "- {id: ev_count, description: d, when: {evidence.count: 0}, then: {tag: t}}\n"
    "- {id: degraded, description: d, when: {degradations: {ge: 2}}, then: {tag: t}}\n"
    "- {id: channel, description: d, when: {channel: [web, app]}, then: {tag: t}}\n"
    "- {id: tier, description: d, when: {tier: vip}, then: {tag: t}}\n"
    "- {id: ungrounded, stage: post, description: d, when: {draft.ungrounded: {gt: 0}}, then: "
    "{tag: t}}\n"
    "- {id: length, stage: post, description: d, when: {draft.length: {gt: 10}}, then: {tag: t}}\n"
    "- {id: language, stage: post, description: d, when: {draft.language: en}, then: {tag: t}}\n"
    "- {id: draft_kw, stage: post, description: d, when: {draft.keywords: [保证]}, then: {tag: "
    "t}}\n"
    "- {id: draft_rx, stage: post, description: d, when: {draft.regex: '\\d+%'}, then: {tag: t}}\n"
    "- {id: confidence, stage: post, description: d, when: {confidence: {lt: 0.5}}, then: {tag: "
    "t}}\n";

static void test_every_condition(void **state)
{
    (void)state;
    struct tg_policy *p = load_ok(every_kind);
    struct tg_policy_hits h;
    char buf[1024];
    struct fx a, b;
    tg_policy_hits_init(&h);
    assert_int_equal(tg_policy_count(p), 22);

    fx_init(&a, "我想买理财产品，预算8万元和3万元，电话13812345678，听说GUARANTEED保本，收益率5%");
    assert_int_equal(a.e.n_money, 2);
    assert_int_equal(a.e.n_pii, 1);
    a.f.intent = "wealth_advice";
    a.f.intent_confidence = 0.9;
    a.f.best_score = 0.2;
    a.f.n_evidence = 0;
    a.f.degradations = 2;
    a.f.channel = "web";
    a.f.tier = "vip";
    fx_draft(&a, "This is guaranteed 保证收益 5%", "en");
    a.f.confidence = 0.4;
    a.f.ungrounded = 1;
    assert_string_equal(fired(p, TG_POLICY_PRE, &a.f, &h, buf, sizeof(buf)),
                        "intent,intent_conf,money_max,money_count,money_any,pii_any,pii_type,"
                        "keywords,regex,best,ev_count,degraded,channel,tier");
    /* Names have no span or value: the hit names the test. */
    assert_string_equal(hit_of(&h, "channel")->field, "channel");
    assert_string_equal(hit_of(&h, "tier")->field, "tier");
    assert_false(hit_of(&h, "tier")->has_value);
    assert_string_equal(hit_of(&h, "keywords")->field, "norm");
    assert_string_equal(hit_of(&h, "regex")->field, "text");
    assert_string_equal(hit_of(&h, "intent")->field, "intent");
    assert_true(hit_of(&h, "intent")->value == 0.9);
    assert_string_equal(fired(p, TG_POLICY_POST, &a.f, &h, buf, sizeof(buf)),
                        "ungrounded,length,language,draft_kw,draft_rx,confidence");

    fx_init(&b, "你好，请问怎么退保");
    b.f.intent = "surrender";
    b.f.intent_confidence = 0.5;
    b.f.best_score = 0.9;
    b.f.n_evidence = 3;
    b.f.channel = "api";
    fx_draft(&b, "好的，我来帮您办理。", "zh");
    b.f.confidence = -1; /* none: even lt 0.5 does not hold */
    assert_string_equal(fired(p, TG_POLICY_PRE, &b.f, &h, buf, sizeof(buf)), "no_money,no_pii");
    assert_string_equal(fired(p, TG_POLICY_POST, &b.f, &h, buf, sizeof(buf)), "");
    assert_int_equal(h.n, 0);

    /* No intent, no entities at all, NULL channel and draft. */
    memset(&b.f, 0, sizeof(b.f));
    b.f.confidence = 0.1;
    assert_string_equal(fired(p, TG_POLICY_PRE, &b.f, &h, buf, sizeof(buf)),
                        "no_money,no_pii,best,ev_count");
    assert_string_equal(fired(p, TG_POLICY_POST, &b.f, &h, buf, sizeof(buf)), "confidence");

    fx_free(&a);
    fx_free(&b);
    tg_policy_hits_free(&h);
    tg_policy_free(p);
}

/* ------------------------------------------------------------ combinators */

static void test_combinators(void **state)
{
    (void)state;
    struct tg_policy *p = load_ok(
        "- id: all\n"
        "  description: d\n"
        "  when:\n"
        "    all:\n"
        "      - intent: wealth_advice\n"
        "      - money.max: {gt: 50000}\n"
        "  then: {tag: t}\n"
        "- id: any\n"
        "  description: d\n"
        "  when:\n"
        "    any:\n"
        "      - all: [{keywords: [保本]}, {tier: vip}]\n"
        "      - money.count: {ge: 1}\n"
        "  then: {tag: t}\n"
        "- id: not\n"
        "  description: d\n"
        "  when: {not: {channel: web}}\n"
        "  then: {tag: t}\n"
        "- id: deep\n"
        "  description: d\n"
        "  when: {all: [{not: {not: {keywords: [保本]}}}, {any: [{tier: x}, {not: {tier: x}}]}]}\n"
        "  then: {tag: t}\n");
    struct tg_policy_hits h;
    struct fx x;
    char buf[256], sb[64];
    tg_policy_hits_init(&h);

    fx_init(&x, "保本吗？投10万");
    x.f.intent = "wealth_advice";
    x.f.intent_confidence = 0.75;
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "all,any,not,deep");
    /* all: the amount, a fact, is preferred over the intent's confidence before it. */
    const struct tg_policy_hit *hit = hit_of(&h, "all");
    assert_string_equal(hit->field, "money");
    assert_true(hit->has_value);
    assert_true(hit->value == 100000);
    assert_string_equal(span(x.f.text, hit, sb, sizeof(sb)), "10万");
    /* any: the first branch held keywords then failed on tier; the money count triggered. */
    hit = hit_of(&h, "any");
    assert_string_equal(hit->field, "money.count");
    assert_true(hit->has_value && hit->value == 1);
    /* not contributes no span or value: the hit names it, and nothing else. */
    hit = hit_of(&h, "not");
    assert_string_equal(hit->field, "not");
    assert_false(hit->has_value);
    assert_int_equal(hit->start, hit->end);
    /* not of not: still no span. */
    hit = hit_of(&h, "deep");
    assert_string_equal(hit->field, "not");

    x.f.tier = "vip";
    x.f.channel = "web";
    x.f.intent = "other";
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "any,deep");
    hit = hit_of(&h, "any");
    assert_string_equal(hit->field, "norm");
    assert_string_equal(span(x.f.norm, hit, sb, sizeof(sb)), "保本");
    fx_free(&x);

    /* Only names held: the first one is reported, without span or value. */
    fx_init(&x, "随便问问");
    x.f.tier = "x";
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "not");
    assert_string_equal(hit_of(&h, "not")->field, "not");
    fx_free(&x);

    fx_init(&x, "随便问问");
    x.f.channel = "web";
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "");
    fx_free(&x);
    tg_policy_hits_free(&h);
    tg_policy_free(p);
}

/* ------------------------------------------------------------ comparisons */

static void test_cmp_forms(void **state)
{
    (void)state;
    static const struct {
        const char *cmp;
        double value;
        bool fires;
    } cases[] = {
        {"{gt: 50000}", 50000, false},
        {"{gt: 50000}", 50000.01, true},
        {"{ge: 50000}", 50000, true},
        {"{ge: 50000}", 49999.99, false},
        {"{lt: 100}", 100, false},
        {"{lt: 100}", 99.5, true},
        {"{le: 100}", 100, true},
        {"{le: 100}", 100.01, false},
        {"{eq: 300}", 300, true},
        {"{eq: 300}", 301, false},
        {"{ne: 300}", 300, false},
        {"{ne: 300}", 301, true},
        {"300", 300, true},
        {"300", 300.5, false},
        {"{ge: 1000, lt: 5000}", 1000, true},
        {"{ge: 1000, lt: 5000}", 4999, true},
        {"{ge: 1000, lt: 5000}", 5000, false},
        {"{ge: 1000, lt: 5000}", 999, false},
        {"{gt: 5万}", 50000, false},
        {"{gt: 5万}", 50001, true},
        {"'12,500'", 12500, true},
        {"{gt: 0.5}", 0.6, true},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        char yaml[512], buf[64];
        snprintf(yaml, sizeof(yaml),
                 "- {id: r, description: d, when: {money.max: %s}, then: {tag: t}}\n",
                 cases[i].cmp);
        struct tg_policy *p = load_ok(yaml);
        struct tg_money m[2] = {{.start = 0, .end = 3, .value_cny = 1}, {.start = 4, .end = 9}};
        struct tg_entities e = {.money = m, .n_money = 2, .cap_money = 2};
        struct tg_policy_facts f = {.text = "abc defgh", .text_len = 9, .entities = &e};
        struct tg_policy_hits h;
        m[1].value_cny = cases[i].value;
        tg_policy_hits_init(&h);
        fired(p, TG_POLICY_PRE, &f, &h, buf, sizeof(buf));
        if ((h.n == 1) != cases[i].fires)
            fail_msg("money.max: %s with %.2f: expected %s", cases[i].cmp, cases[i].value,
                     cases[i].fires ? "a hit" : "none");
        if (h.n) {
            /* The largest amount (here always the second) is the trigger. */
            if (cases[i].value > 1) {
                assert_int_equal(h.v[0].start, 4);
                assert_int_equal(h.v[0].end, 9);
            }
            assert_string_equal(h.v[0].field, "money");
            assert_true(h.v[0].has_value);
        }
        tg_policy_hits_free(&h);
        tg_policy_free(p);
    }
}

/* ------------------------------------------------------------ keywords */

static void test_keywords_shared(void **state)
{
    (void)state;
    struct tg_policy *p =
        load_ok("- {id: a, description: d, when: {keywords: [保本, 收益]}, then: {tag: t}}\n"
                "- {id: b, description: d, when: {keywords: [保本收益, 稳赚]}, then: {tag: t}}\n"
                "- {id: c, description: d, when: {keywords: [本收, 保本]}, then: {tag: t}}\n"
                "- {id: d, description: d, when: {keywords: [Risk-Free, free]}, then: {tag: t}}\n"
                "- {id: e, description: d, when: {keywords: [不赔]}, then: {tag: t}}\n"
                "- {id: f, description: d, when: {all: [{keywords: [收益]}, {keywords: [收益]}]}, "
                "then: {tag: t}}\n"
                "- {id: g, stage: post, description: d, when: {draft.keywords: [保本, FREE]}, "
                "then: {tag: t}}\n");
    struct tg_policy_hits h;
    char buf[256], sb[64];
    struct fx x;
    tg_policy_hits_init(&h);

    fx_init(&x, "这款产品保本收益高吗，是risk-free的吗，会不会不赔");
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "a,b,c,d,e,f");
    /* Leftmost occurrence, longest at one start. */
    assert_string_equal(span(x.norm, hit_of(&h, "a"), sb, sizeof(sb)), "保本");
    assert_string_equal(span(x.norm, hit_of(&h, "b"), sb, sizeof(sb)), "保本收益");
    assert_string_equal(span(x.norm, hit_of(&h, "c"), sb, sizeof(sb)), "保本");
    assert_string_equal(span(x.norm, hit_of(&h, "d"), sb, sizeof(sb)), "risk-free");
    assert_string_equal(hit_of(&h, "d")->field, "norm");
    /* A term at the very end of the text. */
    assert_string_equal(span(x.norm, hit_of(&h, "e"), sb, sizeof(sb)), "不赔");
    assert_int_equal(hit_of(&h, "e")->end, strlen(x.norm));
    assert_string_equal(span(x.norm, hit_of(&h, "f"), sb, sizeof(sb)), "收益");
    fx_free(&x);

    /* Only the overlapping middle term. */
    fx_init(&x, "本收");
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "c");
    fx_free(&x);
    /* A term split across... nothing: half a character matches nothing. */
    fx_init(&x, "保");
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "");
    fx_free(&x);
    /* English in any case: terms are lower-cased, and so is what the scan reads. */
    fx_init(&x, "totally FREE");
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "d");
    fx_draft(&x, "It is Free and 保本", "en");
    assert_string_equal(fired(p, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)), "g");
    assert_string_equal(hit_of(&h, "g")->field, "draft");
    assert_string_equal(span(x.f.draft, hit_of(&h, "g"), sb, sizeof(sb)), "Free");
    /* draft.keywords do not read the message, keywords do not read the draft. */
    fx_draft(&x, "稳赚", "zh");
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "d");
    assert_string_equal(fired(p, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)), "");
    fx_free(&x);
    tg_policy_hits_free(&h);
    tg_policy_free(p);
}

/* A small pseudo-random generator (xorshift32), so every run checks the same cases. */
static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void append(char *buf, size_t cap, const char *s)
{
    size_t len = strlen(buf);
    snprintf(buf + len, cap - len, "%s", s);
}

/* Random terms over a tiny alphabet (lots of overlap), compared with a naive search. */
static void test_keywords_naive(void **state)
{
    (void)state;
    static const char *const alpha[] = {"a", "b", "保", "本"};
    enum { RULES = 40, TERMS = 4, ROUNDS = 300 };
    char terms[RULES][TERMS][16];
    struct tg_buf y;
    uint32_t seed = 12345;
    tg_buf_init(&y, TG_BUF_UNLIMITED);
    for (int r = 0; r < RULES; r++) {
        tg_buf_printf(&y, "- {id: r%d, description: d, when: {keywords: [", r);
        for (int t = 0; t < TERMS; t++) {
            int len = 1 + (int)(rnd(&seed) % 4);
            terms[r][t][0] = '\0';
            for (int k = 0; k < len; k++)
                append(terms[r][t], sizeof(terms[r][t]), alpha[rnd(&seed) % 4]);
            tg_buf_printf(&y, "%s'%s'", t ? ", " : "", terms[r][t]);
        }
        tg_buf_puts(&y, "]}, then: {tag: t}}\n");
    }
    struct tg_policy *p = load_ok(y.data);
    struct tg_policy_hits h;
    tg_policy_hits_init(&h);
    for (int round = 0; round < ROUNDS; round++) {
        char text[64] = "";
        int len = (int)(rnd(&seed) % 10);
        for (int k = 0; k < len; k++)
            append(text, sizeof(text), alpha[rnd(&seed) % 4]);
        struct tg_policy_facts f = {.norm = text, .norm_len = strlen(text), .confidence = -1};
        assert_int_equal(tg_policy_eval(p, TG_POLICY_PRE, &f, &h), TG_OK);
        size_t k = 0;
        for (int r = 0; r < RULES; r++) {
            /* Naive: leftmost start, longest there. */
            long best_s = -1, best_e = -1;
            for (int t = 0; t < TERMS; t++) {
                const char *at = strstr(text, terms[r][t]);
                if (!at)
                    continue;
                long s = at - text, e = s + (long)strlen(terms[r][t]);
                if (best_s < 0 || s < best_s || (s == best_s && e > best_e)) {
                    best_s = s;
                    best_e = e;
                }
            }
            char id[16];
            snprintf(id, sizeof(id), "r%d", r);
            if (best_s < 0)
                continue;
            if (k >= h.n || strcmp(h.v[k].rule, id) != 0)
                fail_msg("text '%s': rule %s should fire", text, id);
            assert_int_equal(h.v[k].start, best_s);
            assert_int_equal(h.v[k].end, best_e);
            k++;
        }
        assert_int_equal(k, h.n);
    }
    tg_policy_hits_free(&h);
    tg_policy_free(p);
    tg_buf_free(&y);
}

/* Term i of a deterministic 10,000-term library: Chinese or English. */
static void make_term(uint32_t i, char *out, size_t cap)
{
    static const char *const han[] = {"保", "险", "理", "财", "收", "益", "赔", "付", "基", "金",
                                      "股", "票", "债", "券", "利", "率", "风", "控", "投", "资"};
    static const char *const syl[] = {"ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi"};
    size_t len = 0;
    out[0] = '\0';
    if (i % 2 == 0) {
        for (uint32_t k = i / 2 + 1; k; k /= 20)
            len += (size_t)snprintf(out + len, cap - len, "%s", han[k % 20]);
    } else {
        for (uint32_t k = i / 2 + 1; k; k /= 8)
            len += (size_t)snprintf(out + len, cap - len, "%s", syl[k % 8]);
        snprintf(out + len, cap - len, "x");
    }
}

static void test_keywords_file(void **state)
{
    (void)state;
    struct tg_buf b;
    char path[256], t[64];
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    tg_buf_puts(&b, "\xEF\xBB\xBF# 10,000 terms\n\n");
    for (uint32_t i = 0; i < 10000; i++) {
        make_term(i, t, sizeof(t));
        tg_buf_printf(&b, "%s%s\r\n", i % 7 ? "" : "  ", t);
    }
    put("terms.txt", b.data, path, sizeof(path));
    struct tg_policy *p =
        load_ok("- {id: lib, description: d, when: {keywords: {file: terms.txt}}, then: {tag: t}}\n"
                "- {id: one, description: d, when: {keywords: [zzz]}, then: {tag: t}}\n");
    struct tg_policy_hits h;
    char buf[64], sb[64];
    tg_policy_hits_init(&h);
    for (uint32_t i = 0; i < 10000; i += 997) {
        char text[128];
        make_term(i, t, sizeof(t));
        snprintf(text, sizeof(text), "。。%s。", t);
        struct tg_policy_facts f = {.norm = text, .norm_len = strlen(text), .confidence = -1};
        assert_string_equal(fired(p, TG_POLICY_PRE, &f, &h, buf, sizeof(buf)), "lib");
        /* A shorter term may start at the same place; the hit is the longest there. */
        assert_int_equal(h.v[0].start, strlen("。。"));
        assert_string_equal(span(text, &h.v[0], sb, sizeof(sb)), t);
    }
    struct tg_policy_facts f = {.norm = "qqq zzz", .norm_len = 7, .confidence = -1};
    assert_string_equal(fired(p, TG_POLICY_PRE, &f, &h, buf, sizeof(buf)), "one");
    tg_policy_hits_free(&h);
    tg_policy_free(p);
    tg_buf_free(&b);
}

/* ------------------------------------------------------------ regex */

static void test_regex(void **state)
{
    (void)state;
    struct tg_policy *p = load_ok(
        "- {id: text, description: d, when: {regex: '年化\\s*\\d+(\\.\\d+)?%'}, then: {tag: t}}\n"
        "- {id: norm, description: d, when: {regex: {pattern: 'apr \\d+', on: norm}}, then: {tag: "
        "t}}\n"
        "- {id: text2, description: d, when: {regex: {pattern: '年化\\s*\\d+(\\.\\d+)?%'}}, then: "
        "{tag: t}}\n"
        "- {id: cjk, description: d, when: {regex: '\\p{Han}{2}险'}, then: {tag: t}}\n"
        "- {id: post, stage: post, description: d, when: {regex: {pattern: '\\d+%', on: draft}}, "
        "then: {tag: t}}\n"
        "- {id: post2, stage: post, description: d, when: {draft.regex: '保证'}, then: {tag: "
        "t}}\n");
    struct tg_policy_hits h;
    char buf[128], sb[64];
    struct fx x;
    tg_policy_hits_init(&h);
    fx_init(&x, "这个重疾险年化 3.5% 吗？APR 12");
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "text,norm,text2,cjk");
    assert_string_equal(hit_of(&h, "text")->field, "text");
    assert_string_equal(span(x.f.text, hit_of(&h, "text"), sb, sizeof(sb)), "年化 3.5%");
    assert_string_equal(hit_of(&h, "norm")->field, "norm");
    assert_string_equal(span(x.norm, hit_of(&h, "norm"), sb, sizeof(sb)), "apr 12");
    assert_string_equal(span(x.f.text, hit_of(&h, "cjk"), sb, sizeof(sb)), "重疾险");
    fx_draft(&x, "保证收益 4%", "zh");
    assert_string_equal(fired(p, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)), "post,post2");
    assert_string_equal(hit_of(&h, "post")->field, "draft");
    assert_string_equal(span(x.f.draft, hit_of(&h, "post"), sb, sizeof(sb)), "4%");
    assert_string_equal(span(x.f.draft, hit_of(&h, "post2"), sb, sizeof(sb)), "保证");
    fx_free(&x);
    /* Bytes that are not UTF-8 are not matched, and do not stop the rest. */
    fx_init(&x, "\xff\xfe 年化5%");
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "text,text2");
    fx_free(&x);
    tg_policy_hits_free(&h);
    tg_policy_free(p);
}

/* ------------------------------------------------------------ triggers */

static void test_triggers(void **state)
{
    (void)state;
    struct tg_policy *p = load_ok(
        "- {id: pii, description: d, when: {pii.type: bank_card}, then: {tag: t}}\n"
        "- {id: pii_any, description: d, when: {pii.any: true}, then: {tag: t}}\n"
        "- {id: money_any, description: d, when: {money.any: true}, then: {tag: t}}\n"
        "- {id: count, description: d, when: {money.count: 2}, then: {tag: t}}\n"
        "- {id: order, description: d, when: {all: [{channel: api}, {not: {tier: vip}}, "
        "{degradations: {lt: 5}}, {keywords: [转账]}]}, then: {tag: t}}\n"
        "- {id: ev, description: d, when: {any: [{evidence.count: {gt: 9}}, "
        "{evidence.best_score: {ge: 0.5}}]}, then: {tag: t}}\n"
        "- {id: post_len, stage: post, description: d, when: {draft.length: 5}, then: {tag: t}}\n"
        "- {id: post_conf, stage: post, description: d, when: {confidence: {gt: 0.5}}, then: {tag: "
        "t}}\n"
        "- {id: post_ung, stage: post, description: d, when: {draft.ungrounded: 3}, then: {tag: "
        "t}}\n");
    struct tg_policy_hits h;
    char buf[128], sb[64];
    struct fx x;
    tg_policy_hits_init(&h);
    fx_init(&x, "手机13812345678，卡号6222600260001072444，转账2000元和300元");
    x.f.best_score = 0.75;
    x.f.degradations = 1;
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)),
                        "pii,pii_any,money_any,count,order,ev");
    const struct tg_policy_hit *t = hit_of(&h, "pii");
    assert_string_equal(t->field, "pii");
    assert_string_equal(span(x.f.text, t, sb, sizeof(sb)), "6222600260001072444");
    assert_false(t->has_value);
    assert_string_equal(span(x.f.text, hit_of(&h, "pii_any"), sb, sizeof(sb)), "13812345678");
    t = hit_of(&h, "money_any");
    assert_string_equal(t->field, "money");
    assert_string_equal(span(x.f.text, t, sb, sizeof(sb)), "2000元");
    assert_true(t->value == 2000);
    t = hit_of(&h, "count");
    assert_string_equal(t->field, "money.count");
    assert_true(t->has_value && t->value == 2);
    assert_int_equal(t->start, t->end);
    /* channel and not have nothing to show; the keyword is a fact, preferred over the count
     * of degradations before it. */
    t = hit_of(&h, "order");
    assert_string_equal(t->field, "norm");
    assert_string_equal(span(x.f.norm, t, sb, sizeof(sb)), "转账");
    assert_false(t->has_value);
    t = hit_of(&h, "ev");
    assert_string_equal(t->field, "evidence.best_score");
    assert_true(t->value == 0.75);

    fx_draft(&x, "ab中文c", "zh");
    x.f.confidence = 0.8;
    x.f.ungrounded = 3;
    assert_string_equal(fired(p, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)),
                        "post_len,post_conf,post_ung");
    assert_true(hit_of(&h, "post_len")->value == 5);
    assert_string_equal(hit_of(&h, "post_conf")->field, "confidence");
    assert_true(hit_of(&h, "post_conf")->value == 0.8);
    assert_true(hit_of(&h, "post_ung")->value == 3);
    fx_free(&x);
    tg_policy_hits_free(&h);
    tg_policy_free(p);
}

/*
 * A trigger names the fact that fired, not a score: in all and any, the
 * first leaf with a span, amount, identifier or tool call wins over an
 * intent's confidence, a score or a count evaluated before it, however
 * deeply nested; without any fact the first number stays.
 */
static void test_trigger_prefers_facts(void **state)
{
    (void)state;
    struct tg_policy *p =
        load_ok("- {id: amount, description: d, when: {all: [{any: [{intent: [wealth_advice]}, "
                "{keywords: [推荐]}]}, {money.max: {gt: 50000}}]}, then: {tag: t}}\n"
                "- {id: kw, description: d, when: {all: [{intent_confidence: {ge: 0.5}}, "
                "{degradations: {lt: 9}}, {any: [{evidence.count: {ge: 0}}, {keywords: [理财]}]}, "
                "{keywords: [推荐]}, {money.any: true}]}, then: {tag: t}}\n"
                "- {id: pii, description: d, when: {all: [{intent: [wealth_advice]}, "
                "{pii.type: mobile}]}, then: {tag: t}}\n"
                "- {id: scores, description: d, when: {all: [{intent: [wealth_advice]}, "
                "{evidence.best_score: {ge: 0.5}}]}, then: {tag: t}}\n"
                "- {id: tool, stage: post, description: d, when: {all: [{confidence: {lt: 0.9}}, "
                "{tool.name: [approve_*]}]}, then: {tag: t}}\n");
    struct tg_policy_hits h;
    char buf[128], sb[64];
    struct fx x;
    tg_policy_hits_init(&h);
    fx_init(&x, "我想投资60万买理财保险，推荐哪个产品？电话13812345678");
    x.f.intent = "wealth_advice";
    x.f.intent_confidence = 0.7862462695400155;
    x.f.best_score = 0.75;
    x.f.n_evidence = 3;
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)),
                        "amount,kw,pii,scores");
    const struct tg_policy_hit *t = hit_of(&h, "amount");
    assert_string_equal(t->field, "money");
    assert_true(t->has_value && t->value == 600000);
    assert_string_equal(span(x.f.text, t, sb, sizeof(sb)), "60万");
    /* any gives its child's number: the keyword later in all still wins */
    t = hit_of(&h, "kw");
    assert_string_equal(t->field, "norm");
    assert_string_equal(span(x.f.norm, t, sb, sizeof(sb)), "推荐");
    t = hit_of(&h, "pii");
    assert_string_equal(t->field, "pii");
    assert_string_equal(span(x.f.text, t, sb, sizeof(sb)), "13812345678");
    /* numbers only: the first one, as before */
    t = hit_of(&h, "scores");
    assert_string_equal(t->field, "intent");
    assert_true(t->has_value && t->value == 0.7862462695400155);

    struct tg_policy_tool_call call = {
        .name = "approve_loan", .name_len = 12, .arguments = "{}", .arguments_len = 2};
    fx_draft(&x, "好的", "zh");
    x.f.confidence = 0.5;
    x.f.tool_calls = &call;
    x.f.n_tool_calls = 1;
    assert_string_equal(fired(p, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)), "tool");
    t = hit_of(&h, "tool");
    assert_string_equal(t->field, "tool_calls");
    assert_true(t->has_value && t->value == 0);
    fx_free(&x);
    tg_policy_hits_free(&h);
    tg_policy_free(p);
}

/* ------------------------------------------------------------ tool calls */

static const char tool_rules[] =
    "- id: loan_approval_tool\n"
    "  description: 批贷是人的决定：模型调用审批类函数时交由信贷员\n"
    "  stage: post\n"
    "  when: {tool.name: [approve_loan, approve_credit*]}\n"
    "  then: [{human_decision: {queue: credit, attestations: [已核实收入流水真实性, "
    "已评估突发失业风险]}}]\n"
    "- {id: one_name, stage: post, description: d, when: {tool.name: lookup_policy}, then: {tag: "
    "t}}\n"
    "- {id: any_name, stage: post, description: d, when: {tool.name: '*'}, then: {tag: t}}\n"
    "- {id: args_kw, stage: post, description: d, when: {tool.arguments.keywords: [批准, "
    "Approved, 😀]}, then: {tag: t}}\n"
    "- {id: args_rx, stage: post, description: d, when: {tool.arguments.regex: "
    "'\"amount\":\\s*\\d{6,}'}, then: {tag: t}}\n"
    "- {id: args_rx_dec, stage: post, description: d, when: {tool.arguments.regex: {pattern: "
    "'额度\\d+万'}}, then: {tag: t}}\n"
    "- {id: many, stage: post, description: d, when: {tool.count: {gt: 1}}, then: {tag: t}}\n"
    "- {id: none, stage: post, description: d, when: {tool.count: 0}, then: {tag: t}}\n"
    "- {id: draft_kw, stage: post, description: d, when: {draft.keywords: [批准]}, then: {tag: "
    "t}}\n"
    "- {id: pre_kw, description: d, when: {keywords: [批准]}, then: {tag: t}}\n";

/* Tool calls from (name, arguments) pairs; the strings are borrowed. */
static void fx_tools(struct fx *x, struct tg_policy_tool_call *calls, const char *const *spec,
                     size_t n)
{
    for (size_t i = 0; i < n; i++) {
        calls[i] = (struct tg_policy_tool_call){.name = spec[2 * i],
                                                .name_len = strlen(spec[2 * i]),
                                                .arguments = spec[2 * i + 1],
                                                .arguments_len = strlen(spec[2 * i + 1])};
    }
    x->f.tool_calls = calls;
    x->f.n_tool_calls = n;
}

static void test_tool_calls(void **state)
{
    (void)state;
    struct tg_policy *p = load_ok(tool_rules);
    struct tg_policy_hits h;
    struct tg_policy_tool_call calls[4];
    const struct tg_policy_hit *t;
    char buf[256], sb[64];
    struct fx x;
    tg_policy_hits_init(&h);
    fx_init(&x, "帮我批准贷款");
    fx_draft(&x, "好的，正在为您办理。", "zh");

    /* No tool calls: only the count of zero holds; the pre stage never reads tool calls. */
    assert_string_equal(fired(p, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)), "none");
    assert_string_equal(hit_of(&h, "none")->field, "tool.count");
    assert_true(hit_of(&h, "none")->has_value && hit_of(&h, "none")->value == 0);
    x.f.n_tool_calls = 3; /* a count without an array is no call */
    assert_string_equal(fired(p, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)), "none");

    /* Three calls: names, raw and escaped arguments, the count. */
    static const char *const three[] = {
        "lookup_policy",       "{\"policy_no\": \"P1234567890\"}",
        "approve_credit_line", "{\"decision\": \"\\u6279\\u51c6\", \"amount\": 800000}",
        "approve_loan",        "{\"note\": \"APPROVED\", \"memo\": \"额度80万\"}",
    };
    fx_tools(&x, calls, three, 3);
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "pre_kw");
    assert_string_equal(fired(p, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)),
                        "loan_approval_tool,one_name,any_name,args_kw,args_rx,args_rx_dec,many");
    /* A name: the first call with one, by index, no span. */
    t = hit_of(&h, "loan_approval_tool");
    assert_string_equal(t->field, "tool_calls");
    assert_true(t->has_value && t->value == 1);
    assert_int_equal(t->start, t->end);
    assert_int_equal(t->n_actions, 1);
    assert_int_equal(t->actions[0].kind, TG_ACT_HUMAN_DECISION);
    assert_string_equal(t->actions[0].queue, "credit");
    assert_int_equal(t->actions[0].n_attestations, 2);
    assert_string_equal(t->actions[0].attestations[0], "已核实收入流水真实性");
    assert_string_equal(t->actions[0].attestations[1], "已评估突发失业风险");
    assert_true(hit_of(&h, "one_name")->value == 0);
    assert_true(hit_of(&h, "any_name")->value == 0);
    /* Keywords: the first call holding a term, decoded or not; the span is the text as
     * written, here the escapes themselves. */
    t = hit_of(&h, "args_kw");
    assert_string_equal(t->field, "tool_calls");
    assert_true(t->has_value && t->value == 1);
    assert_string_equal(span(calls[1].arguments, t, sb, sizeof(sb)), "\\u6279\\u51c6");
    t = hit_of(&h, "args_rx");
    assert_true(t->value == 1);
    assert_string_equal(span(calls[1].arguments, t, sb, sizeof(sb)), "\"amount\": 800000");
    t = hit_of(&h, "args_rx_dec");
    assert_true(t->value == 2);
    assert_string_equal(span(calls[2].arguments, t, sb, sizeof(sb)), "额度80万");
    assert_true(hit_of(&h, "many")->value == 3);

    /* Names that almost match, arguments with neither term, one call. */
    static const char *const near[] = {
        "approve_credi",
        "{\"批\": \"准\", \"amount\": 99999, \"x\": \"approve\"}",
    };
    fx_tools(&x, calls, near, 1);
    assert_string_equal(fired(p, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)), "any_name");
    static const char *const exact[] = {"approve_loan_v2", "{}", "Approve_Loan", "{}"};
    fx_tools(&x, calls, exact, 2);
    assert_string_equal(fired(p, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)), "any_name,many");

    /* Keywords fold ASCII case; a later call is reported when earlier ones hold nothing. */
    static const char *const later[] = {"a", "{\"k\": 1}", "b", "", "c", "[\"ok\", \"approved\"]"};
    fx_tools(&x, calls, later, 3);
    assert_string_equal(fired(p, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)),
                        "any_name,args_kw,many");
    t = hit_of(&h, "args_kw");
    assert_true(t->value == 2);
    assert_string_equal(span(calls[2].arguments, t, sb, sizeof(sb)), "approved");

    /* The draft's own text is not the arguments, nor the reverse. */
    fx_draft(&x, "已批准", "zh");
    static const char *const plain[] = {"notify", "{\"text\": \"hello\"}"};
    fx_tools(&x, calls, plain, 1);
    assert_string_equal(fired(p, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)), "any_name,draft_kw");

    fx_free(&x);
    tg_policy_hits_free(&h);
    tg_policy_free(p);
}

/* Arguments as a model may write them: escapes of every kind, broken JSON, odd bytes. */
static void test_tool_arguments_escaped(void **state)
{
    (void)state;
    struct tg_policy *p = load_ok(tool_rules);
    struct tg_policy_hits h;
    struct tg_policy_tool_call call;
    char buf[256], sb[64];
    struct fx x;
    static const struct {
        const char *args;
        bool fires;
        const char *span; /* of args_kw, in the text as written */
    } cases[] = {
        {"{\"d\": \"\\u6279\\u51C6\"}", true, "\\u6279\\u51C6"},           /* upper-case hex */
        {"{\"d\": \"\\u6279准\"}", true, "\\u6279准"},                     /* half escaped */
        {"{\"\\u6279\\u51c6\": true}", true, "\\u6279\\u51c6"},            /* in a key */
        {"{\"d\": \"\\\"批准\\\"\"}", true, "批准"},                       /* quoted quotes */
        {"{\"d\": \"\\ud83d\\ude00\"}", true, "\\ud83d\\ude00"},           /* surrogate pair */
        {"{\"d\": \"ok \\u0041pproved\"}", true, "\\u0041pproved"},        /* ASCII escape */
        {"{\"d\": \"\\u6279\\u51c6", true, "\\u6279\\u51c6"},              /* unterminated */
        {"\"\\u6279\\u51c6\" trailing garbage {", true, "\\u6279\\u51c6"}, /* not JSON */
        {"{\"d\": \"\\\\u6279\\\\u51c6\"}", false, NULL},          /* an escaped backslash: text */
        {"{\"d\": \"\\u6279\", \"e\": \"\\u51c6\"}", false, NULL}, /* split across strings */
        {"{\"d\": \"\\u627\"}", false, NULL},                      /* short escape */
        {"{\"d\": \"\\ud83d\"}", false, NULL},                     /* lone surrogate */
        {"{\"d\": \"\\u62\\u6279\\u51c6", true, "\\u6279\\u51c6"}, /* bad then good */
        {"\\", false, NULL},
        {"\"\\", false, NULL},
        {"\"\\u", false, NULL},
        {"\"\\ud83d\\u", false, NULL},
        {"\"\xff\\u6279\\u51c6\xfe\"", true, "\\u6279\\u51c6"},
        {"", false, NULL},
    };
    tg_policy_hits_init(&h);
    fx_init(&x, "q");
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        call = (struct tg_policy_tool_call){.name = "f",
                                            .name_len = 1,
                                            .arguments = cases[i].args,
                                            .arguments_len = strlen(cases[i].args)};
        x.f.tool_calls = &call;
        x.f.n_tool_calls = 1;
        fired(p, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf));
        bool hit = strstr(buf, "args_kw") != NULL;
        if (hit != cases[i].fires)
            fail_msg("arguments %zu '%s': fired '%s'", i, cases[i].args, buf);
        if (hit)
            assert_string_equal(span(cases[i].args, hit_of(&h, "args_kw"), sb, sizeof(sb)),
                                cases[i].span);
        for (size_t k = 0; k < h.n; k++)
            assert_true(h.v[k].start <= h.v[k].end && h.v[k].end <= strlen(cases[i].args));
    }
    /* NULL name and arguments are empty. */
    call = (struct tg_policy_tool_call){0};
    assert_string_equal(fired(p, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)), "any_name");
    fx_free(&x);
    tg_policy_hits_free(&h);
    tg_policy_free(p);
}

/* Tool tests after a merge, and no allocation once hits and the decoding room have grown. */
static void test_tool_memory(void **state)
{
    (void)state;
    struct tg_policy *a = load_ok("- {id: a1, description: d, when: {keywords: [x]}, then: "
                                  "{tag: t}}\n"
                                  "- {id: a2, description: d, when: {regex: y}, then: {tag: t}}\n");
    assert_int_equal(tg_policy_merge(a, load_ok(tool_rules)), TG_OK);
    struct tg_policy_hits h;
    struct tg_policy_tool_call calls[2];
    char buf[256];
    struct fx x;
    static const char *const two[] = {
        "approve_credit",
        "{\"d\": \"\\u6279\\u51c6\", \"amount\": 1234567}",
        "lookup_policy",
        "{\"memo\": \"额度9万\"}",
    };
    static const char *const big[] = {
        "approve_credit",
        "{\"d\": \"\\u6279\\u51c6\", \"amount\": 1234567, \"pad\": \"xxxxxxxxxxxxxxxxxxxxxxxx\"}",
        "lookup_policy",
        "{\"memo\": \"额度9万\"}",
    };
    tg_policy_hits_init(&h);
    fx_init(&x, "x y");
    fx_tools(&x, calls, two, 2);
    const char *want = "loan_approval_tool,one_name,any_name,args_kw,args_rx,args_rx_dec,many";
    assert_string_equal(fired(a, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "a1,a2");
    assert_string_equal(fired(a, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)), want);
    assert_true(hit_of(&h, "args_rx_dec")->value == 1);
    tg_mem_fail_after(0);
    for (int i = 0; i < 20; i++) {
        assert_string_equal(fired(a, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)), want);
        assert_string_equal(fired(a, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "a1,a2");
    }
    /* Longer arguments need more room: the evaluation fails whole, and works again after. */
    fx_tools(&x, calls, big, 2);
    assert_int_equal(tg_policy_eval(a, TG_POLICY_POST, &x.f, &h), TG_E_NOMEM);
    assert_int_equal(h.n, 0);
    tg_mem_fail_after(-1);
    assert_string_equal(fired(a, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)), want);
    /* Fresh hits under failing allocation: NOMEM or the full answer. */
    for (long n = 0; n < 6; n++) {
        struct tg_policy_hits h2;
        tg_policy_hits_init(&h2);
        tg_mem_fail_after(n);
        int rc = tg_policy_eval(a, TG_POLICY_POST, &x.f, &h2);
        tg_mem_fail_after(-1);
        assert_true(rc == TG_OK ? h2.n == 7 : rc == TG_E_NOMEM && h2.n == 0);
        tg_policy_hits_free(&h2);
    }
    fx_free(&x);
    tg_policy_hits_free(&h);
    tg_policy_free(a);
}

/* The insurance example hands a model's loan approval to a credit officer. */
static void test_tool_example(void **state)
{
    (void)state;
    struct tg_policy *p = NULL;
    json_t *errs = json_array();
    struct tg_policy_hits h;
    struct tg_policy_tool_call calls[2];
    char buf[512];
    struct fx x;
    if (tg_policy_load("examples/insurance/policies.yaml", &p, errs))
        dump(errs);
    assert_non_null(p);
    json_decref(errs);
    tg_policy_hits_init(&h);
    fx_init(&x, "我的贷款申请怎么样了");
    fx_draft(&x, "", "zh");
    x.f.confidence = 0.9;
    static const char *const ask[] = {"get_application_status", "{\"id\": \"A1\"}",
                                      "approve_credit_limit", "{\"amount\": 50000}"};
    fx_tools(&x, calls, ask, 2);
    fired(p, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf));
    const struct tg_policy_hit *t = hit_of(&h, "loan-approval-tool");
    assert_string_equal(t->field, "tool_calls");
    assert_true(t->value == 1);
    assert_int_equal(t->actions[0].kind, TG_ACT_HUMAN_DECISION);
    assert_string_equal(t->actions[0].queue, "credit");
    assert_int_equal(t->actions[0].n_attestations, 2);
    fx_tools(&x, calls, ask, 1);
    assert_null(strstr(fired(p, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)), "loan-approval"));
    fx_free(&x);
    tg_policy_hits_free(&h);
    tg_policy_free(p);
}

/* ------------------------------------------------------------ actions */

static void test_actions(void **state)
{
    (void)state;
    struct tg_policy *p = load_ok(
        "- id: large-amount-advice\n"
        "  description: 理财建议金额超过5万元需人工复核\n"
        "  stage: pre\n"
        "  when:\n"
        "    all:\n"
        "      - intent: [wealth_advice, product_recommend]\n"
        "      - money.max: {gt: 50000}\n"
        "  then:\n"
        "    - review: {sla: 2m, queue: wealth, attestations: [已核实风险等级, 已告知风险]}\n"
        "    - tag: large_amount\n"
        "    - prefix: 以下内容仅供参考。\n"
        "    - suffix: 投资有风险。\n"
        "    - redact: true\n"
        "- id: r2\n"
        "  description: d\n"
        "  when: {intent: wealth_advice}\n"
        "  then: {review: true, human_decision: {queue: legal}, refuse: 不能回答, "
        "script: {reply: 请稍候}, tag: [a, b], redact: false}\n");
    struct tg_policy_hits h;
    char buf[128];
    struct fx x;
    tg_policy_hits_init(&h);
    fx_init(&x, "我有10万想买理财");
    x.f.intent = "wealth_advice";
    assert_string_equal(fired(p, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)),
                        "large-amount-advice,r2");
    const struct tg_policy_hit *t = &h.v[0];
    assert_string_equal(t->description, "理财建议金额超过5万元需人工复核");
    assert_int_equal(t->n_actions, 5);
    assert_int_equal(t->actions[0].kind, TG_ACT_REVIEW);
    assert_int_equal(t->actions[0].sla_ms, 120000);
    assert_string_equal(t->actions[0].queue, "wealth");
    assert_int_equal(t->actions[0].n_attestations, 2);
    assert_string_equal(t->actions[0].attestations[1], "已告知风险");
    assert_int_equal(t->actions[1].kind, TG_ACT_TAG);
    assert_int_equal(t->actions[1].n_tags, 1);
    assert_string_equal(t->actions[1].tags[0], "large_amount");
    assert_string_equal(t->actions[2].text, "以下内容仅供参考。");
    assert_int_equal(t->actions[3].kind, TG_ACT_SUFFIX);
    assert_true(t->actions[4].on);
    assert_string_equal(t->field, "money");

    t = &h.v[1];
    assert_int_equal(t->n_actions, 6);
    assert_int_equal(t->actions[0].kind, TG_ACT_REVIEW);
    assert_int_equal(t->actions[0].sla_ms, 90000);
    assert_string_equal(t->actions[0].queue, "default");
    assert_int_equal(t->actions[0].n_attestations, 0);
    assert_int_equal(t->actions[1].kind, TG_ACT_HUMAN_DECISION);
    assert_string_equal(t->actions[1].queue, "legal");
    assert_int_equal(t->actions[2].kind, TG_ACT_REFUSE);
    assert_string_equal(t->actions[2].text, "不能回答");
    assert_int_equal(t->actions[3].kind, TG_ACT_SCRIPT);
    assert_string_equal(t->actions[3].text, "请稍候");
    assert_int_equal(t->actions[4].n_tags, 2);
    assert_int_equal(t->actions[5].kind, TG_ACT_REDACT);
    assert_false(t->actions[5].on);

    assert_string_equal(tg_policy_action_name(TG_ACT_HUMAN_DECISION), "human_decision");
    assert_string_equal(tg_policy_action_name(TG_ACT_SCRIPT), "script");
    assert_string_equal(tg_policy_action_name((enum tg_policy_action_kind)99), "unknown");
    fx_free(&x);
    tg_policy_hits_free(&h);
    tg_policy_free(p);
}

/* ------------------------------------------------------------ errors */

static void test_errors(void **state)
{
    (void)state;
    char path[256];
    json_t *errs = load_bad("- id: ok\n"                              /* 1 */
                            "  description: fine\n"                   /* 2 */
                            "  when: {intent: a}\n"                   /* 3 */
                            "  then: {tag: t}\n"                      /* 4 */
                            "- id: ok\n"                              /* 5 */
                            "  descripton: typo\n"                    /* 6 */
                            "  when: {intnet: a}\n"                   /* 7 */
                            "- id: 'bad id'\n"                        /* 8 */
                            "  description: d\n"                      /* 9 */
                            "  stage: middle\n"                       /* 10 */
                            "  when:\n"                               /* 11 */
                            "    all: []\n"                           /* 12 */
                            "  then: []\n"                            /* 13 */
                            "- description: d\n"                      /* 14 */
                            "  when:\n"                               /* 15 */
                            "    any:\n"                              /* 16 */
                            "      - money.max: {gte: 5}\n"           /* 17 */
                            "      - money.max: [1]\n"                /* 18 */
                            "      - money.any: 1\n"                  /* 19 */
                            "      - pii.type: [phone]\n"             /* 20 */
                            "      - keywords: []\n"                  /* 21 */
                            "      - keywords: {file: missing.txt}\n" /* 22 */
                            "      - regex: 'a(b'\n"                  /* 23 */
                            "      - intent: a\n"                     /* 24 */
                            "        tier: b\n"                       /* 25 */
                            "      - not: [x]\n"                      /* 26 */
                            "      - money.max: {gt: 一些}\n"         /* 27 */
                            "      - channel: ''\n"                   /* 28 */
                            "      - regex: {pattern: x, on: body}\n" /* 29 */
                            "  then:\n"                               /* 30 */
                            "    - reveiw: true\n"                    /* 31 */
                            "    - review: {sla: soon}\n"             /* 32 */
                            "    - tag: []\n"                         /* 33 */
                            "    - prefix: 1\n"                       /* 34 */
                            "    - {tag: a, redact: true}\n"          /* 35 */
                            "- id: x1\n"                              /* 36 */
                            "  description: d\n"                      /* 37 */
                            "  when: {draft.length: 5}\n"             /* 38 */
                            "  then: {review: false}\n"               /* 39 */
                            "- 7\n",                                  /* 40 */
                            path, sizeof(path));
    static const struct want_err want[] = {
        {5, "rule 'ok': duplicate rule id 'ok' (first at line 1)"},
        {6, "unknown key 'descripton' in rule 'ok' (did you mean 'description'?)"},
        {5, "rule 'ok': description is missing"},
        {7, "unknown key 'intnet' in a condition of rule 'ok' (did you mean 'intent'?)"},
        {5, "rule 'ok': then is missing: give at least one action"},
        {8, "rule 3: id 'bad id' must be at most 128 of A-Z a-z 0-9 . _ -"},
        {10, "rule 3: stage must be pre or post"},
        {12, "rule 3: all is an empty list"},
        {13, "rule 3: then is empty: give at least one action"},
        {14, "rule 4: id is missing"},
        {17, "unknown key 'gte' in the comparison money.max of rule 4 (did you mean 'gt'?)"},
        {18, "rule 4: money.max must be a number or a mapping such as {gt: 50000}, not a list"},
        {19, "rule 4: money.any must be true or false, not an integer"},
        {20, "rule 4: pii.type: unknown type 'phone' (one of id_card, mobile, bank_card, email, "
             "policy_no)"},
        {21, "rule 4: keywords is an empty list"},
        {22, NULL},
        {23, "rule 4: regex: bad pattern: missing closing parenthesis at offset 3"},
        {24, "rule 4: a condition has exactly one key, not 2 (put several tests under all: or "
             "any:)"},
        {26, "rule 4: a condition must be a mapping with one key (all, any, not, intent, ...), "
             "not a list"},
        {27, "rule 4: money.max.gt: '一些' is not a number"},
        {28, "rule 4: channel must not be empty"},
        {29, "rule 4: regex.on must be text, norm or draft"},
        {31, "unknown key 'reveiw' in then of rule 4 (did you mean 'review'?)"},
        {32, "rule 4: review.sla: 'soon' is not a duration (such as 90s, 5m)"},
        {33, "rule 4: tag is an empty list"},
        {34, "rule 4: prefix must be a string, not an integer"},
        {35, "rule 4: each action of then is a mapping with one key, not 2"},
        {38, "rule 'x1': draft.length tests the draft answer: only post rules (stage: post) may "
             "use it"},
        {39, "rule 'x1': review must be true or a mapping of options, not a boolean"},
        {40, "rule 6: a rule must be a mapping with id, description, when and then, not an "
             "integer"},
    };
    /* The missing file's message names its full path and the system's reason. */
    char missing[512];
    snprintf(missing, sizeof(missing),
             "rule 4: cannot read keyword file '%s/missing.txt': No such file or directory", dir);
    struct want_err w[TG_ARRAY_LEN(want)];
    memcpy(w, want, sizeof(want));
    for (size_t i = 0; i < TG_ARRAY_LEN(w); i++) {
        if (!w[i].msg)
            w[i].msg = missing;
    }
    assert_errors(errs, path, w, TG_ARRAY_LEN(w));
    json_decref(errs);
}

static void test_errors_post_only(void **state)
{
    (void)state;
    char path[256];
    json_t *errs = load_bad("- id: pre\n"
                            "  description: d\n"
                            "  when:\n"
                            "    any:\n"
                            "      - draft.ungrounded: {gt: 0}\n"
                            "      - draft.length: 5\n"
                            "      - draft.language: en\n"
                            "      - draft.keywords: [x]\n"
                            "      - draft.regex: x\n"
                            "      - confidence: {lt: 0.5}\n"
                            "      - regex: {pattern: x, on: draft}\n"
                            "  then: {tag: t}\n",
                            path, sizeof(path));
    static const struct want_err want[] = {
        {5, "rule 'pre': draft.ungrounded tests the draft answer: only post rules (stage: post) "
            "may use it"},
        {6, "rule 'pre': draft.length tests the draft answer: only post rules (stage: post) may "
            "use it"},
        {7, "rule 'pre': draft.language tests the draft answer: only post rules (stage: post) "
            "may use it"},
        {8, "rule 'pre': draft.keywords tests the draft answer: only post rules (stage: post) "
            "may use it"},
        {9, "rule 'pre': draft.regex tests the draft answer: only post rules (stage: post) may "
            "use it"},
        {10, "rule 'pre': confidence tests the draft answer: only post rules (stage: post) may "
             "use it"},
        {11, "rule 'pre': regex.on: draft is only known in post rules (stage: post)"},
    };
    assert_errors(errs, path, want, TG_ARRAY_LEN(want));
    json_decref(errs);
}

static void test_errors_tools(void **state)
{
    (void)state;
    char path[256];
    json_t *errs = load_bad("- id: t1\n"                                             /* 1 */
                            "  description: d\n"                                     /* 2 */
                            "  stage: post\n"                                        /* 3 */
                            "  when:\n"                                              /* 4 */
                            "    any:\n"                                             /* 5 */
                            "      - tool.name: 7\n"                                 /* 6 */
                            "      - tool.name:\n"                                   /* 7 */
                            "          - approve_*\n"                                /* 8 */
                            "          - approve_*_loan\n"                           /* 9 */
                            "      - tool.arguments.regex: 'a(b'\n"                  /* 10 */
                            "      - tool.arguments.keywords: []\n"                  /* 11 */
                            "      - tool.arguments.regex: {pattern: x, on: text}\n" /* 12 */
                            "      - tool.count: {gt: many}\n"                       /* 13 */
                            "      - tool.nmae: x\n"                                 /* 14 */
                            "      - tool.name: []\n"                                /* 15 */
                            "  then: {tag: t}\n"                                     /* 16 */
                            "- id: t2\n"                                             /* 17 */
                            "  description: d\n"                                     /* 18 */
                            "  when:\n"                                              /* 19 */
                            "    all:\n"                                             /* 20 */
                            "      - tool.name: approve_loan\n"                      /* 21 */
                            "      - tool.count: {gt: 0}\n"                          /* 22 */
                            "      - tool.arguments.keywords: [批准]\n"              /* 23 */
                            "      - tool.arguments.regex: x\n"                      /* 24 */
                            "  then: {tag: t}\n",                                    /* 25 */
                            path, sizeof(path));
    static const struct want_err want[] = {
        {6, "rule 't1': tool.name must be a name or a list of names, not an integer"},
        {9, "rule 't1': tool.name: 'approve_*_loan': '*' may only end a name (approve_*)"},
        {10, "rule 't1': tool.arguments.regex: bad pattern: missing closing parenthesis at offset "
             "3"},
        {11, "rule 't1': tool.arguments.keywords is an empty list"},
        {12, "unknown key 'on' in tool.arguments.regex of rule 't1'"},
        {13, "rule 't1': tool.count.gt: 'many' is not a number"},
        {14, "unknown key 'tool.nmae' in a condition of rule 't1' (did you mean 'tool.name'?)"},
        {15, "rule 't1': tool.name is an empty list"},
        {21, "rule 't2': tool.name tests the draft's tool calls: only post rules (stage: post) may "
             "use it"},
        {22, "rule 't2': tool.count tests the draft's tool calls: only post rules (stage: post) "
             "may use it"},
        {23, "rule 't2': tool.arguments.keywords tests the draft's tool calls: only post rules "
             "(stage: post) may use it"},
        {24, "rule 't2': tool.arguments.regex tests the draft's tool calls: only post rules "
             "(stage: post) may use it"},
    };
    assert_errors(errs, path, want, TG_ARRAY_LEN(want));
    json_decref(errs);
}

static void test_errors_top(void **state)
{
    (void)state;
    char path[256];
    json_t *errs = load_bad("[]\n", path, sizeof(path));
    static const struct want_err w1[] = {{1, "policies: the list of rules is empty"}};
    assert_errors(errs, path, w1, 1);
    json_decref(errs);

    errs = load_bad("rulez: []\n", path, sizeof(path));
    assert_int_equal(json_array_size(errs), 2);
    json_decref(errs);

    errs = load_bad("just text\n", path, sizeof(path));
    static const struct want_err w3[] = {{1, "policies: must be a list of rules, not a string"}};
    assert_errors(errs, path, w3, 1);
    json_decref(errs);

    /* Too deep. */
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    tg_buf_puts(&b, "- {id: deep, description: d, then: {tag: t}, when: ");
    for (int i = 0; i < 40; i++)
        tg_buf_puts(&b, "{not: ");
    tg_buf_puts(&b, "{tier: x}");
    for (int i = 0; i < 40; i++)
        tg_buf_puts(&b, "}");
    tg_buf_puts(&b, "}\n");
    errs = load_bad(b.data, path, sizeof(path));
    static const struct want_err w4[] = {{1, "rule 'deep': conditions nest deeper than 32 levels"}};
    assert_errors(errs, path, w4, 1);
    json_decref(errs);
    tg_buf_free(&b);

    /* A missing file is an I/O error, not a config error. */
    struct tg_policy *p = NULL;
    errs = json_array();
    snprintf(path, sizeof(path), "%s/nope.yaml", dir);
    assert_int_equal(tg_policy_load(path, &p, errs), TG_E_IO);
    assert_null(p);
    json_decref(errs);

    /* {rules: [...]} and JSON are accepted. */
    p = load_ok(
        "{\"rules\": [{\"id\": \"j\", \"description\": \"d\", \"when\": {\"tier\": \"vip\"},"
        " \"then\": {\"tag\": \"t\"}}]}");
    assert_int_equal(tg_policy_count(p), 1);
    tg_policy_free(p);
}

/* ------------------------------------------------------------ merge */

static void test_merge(void **state)
{
    (void)state;
    struct tg_policy *a =
        load_ok("- {id: a1, description: d, when: {keywords: [保本, 刚兑]}, then: {tag: t}}\n"
                "- {id: a2, description: d, when: {regex: '\\d{4}'}, then: {tag: t}}\n"
                "- {id: a3, stage: post, description: d, when: {draft.keywords: [稳赚]}, then: "
                "{tag: t}}\n");
    struct tg_policy *b = load_ok(
        "- {id: b1, description: d, when: {all: [{keywords: [刚兑, 保本]}, {not: {tier: x}}]}, "
        "then: {tag: t}}\n"
        "- {id: b2, description: d, when: {any: [{regex: '\\d{4}'}, {regex: 'zz'}]}, then: {tag: "
        "t}}\n"
        "- {id: b3, stage: post, description: d, when: {draft.keywords: [稳赚, 翻倍]}, then: {tag: "
        "t}}\n");
    assert_int_equal(tg_policy_merge(a, b), TG_OK);
    assert_int_equal(tg_policy_count(a), 6);
    struct tg_policy_hits h;
    char buf[128], sb[32];
    struct fx x;
    tg_policy_hits_init(&h);
    fx_init(&x, "刚兑吗 2024 zz");
    fx_draft(&x, "保证翻倍", "zh");
    assert_string_equal(fired(a, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "a1,a2,b1,b2");
    assert_string_equal(span(x.norm, hit_of(&h, "b1"), sb, sizeof(sb)), "刚兑");
    assert_string_equal(span(x.f.text, hit_of(&h, "b2"), sb, sizeof(sb)), "2024");
    assert_string_equal(fired(a, TG_POLICY_POST, &x.f, &h, buf, sizeof(buf)), "b3");
    fx_free(&x);

    /* A duplicate id is refused; a is unchanged and b is consumed. */
    struct tg_policy *c = load_ok("- {id: a2, description: d, when: {tier: x}, then: {tag: t}}\n");
    assert_int_equal(tg_policy_merge(a, c), TG_E_CONFIG);
    assert_int_equal(tg_policy_count(a), 6);

    /* Into a policy with no keywords or regexes at all. */
    struct tg_policy *d = load_ok("- {id: d1, description: d, when: {tier: x}, then: {tag: t}}\n");
    struct tg_policy *e =
        load_ok("- {id: e1, description: d, when: {keywords: [ab]}, then: {tag: t}}\n"
                "- {id: e2, description: d, when: {regex: b}, then: {tag: t}}\n");
    assert_int_equal(tg_policy_merge(d, e), TG_OK);
    struct tg_policy_facts f = {
        .text = "ab", .text_len = 2, .norm = "ab", .norm_len = 2, .tier = "x", .confidence = -1};
    assert_string_equal(fired(d, TG_POLICY_PRE, &f, &h, buf, sizeof(buf)), "d1,e1,e2");
    assert_int_equal(tg_policy_merge(d, NULL), TG_OK);
    tg_policy_free(d);
    tg_policy_hits_free(&h);
    tg_policy_free(a);
}

/* ------------------------------------------------------------ memory */

/* Once hits have grown, evaluation allocates nothing: every allocation would now fail. */
static void test_hits_reuse(void **state)
{
    (void)state;
    struct tg_policy *small =
        load_ok("- {id: s, description: d, when: {tier: x}, then: {tag: t}}\n");
    struct tg_policy *p = load_ok(every_kind);
    struct tg_policy_hits h;
    char buf[1024];
    struct fx x;
    tg_policy_hits_init(&h);
    fx_init(&x, "预算8万元，电话13812345678，保本收益率5%");
    fx_draft(&x, "保证 5% guaranteed", "en");
    x.f.confidence = 0.3;
    /* Grown by a small policy first, then by the larger one. */
    assert_string_equal(fired(small, TG_POLICY_PRE, &x.f, &h, buf, sizeof(buf)), "");
    assert_int_equal(tg_policy_eval(p, TG_POLICY_PRE, &x.f, &h), TG_OK);
    assert_int_equal(tg_policy_eval(p, TG_POLICY_POST, &x.f, &h), TG_OK);
    tg_mem_fail_after(0);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(tg_policy_eval(p, TG_POLICY_PRE, &x.f, &h), TG_OK);
        assert_int_equal(h.n, 8);
        assert_int_equal(tg_policy_eval(p, TG_POLICY_POST, &x.f, &h), TG_OK);
        assert_int_equal(h.n, 5);
        assert_int_equal(tg_policy_eval(small, TG_POLICY_PRE, &x.f, &h), TG_OK);
        assert_int_equal(h.n, 0);
    }
    tg_mem_fail_after(-1);
    /* Fresh hits under failing allocation: NOMEM, nothing leaked, hits empty. */
    struct tg_policy_hits h2;
    tg_policy_hits_init(&h2);
    for (long n = 0; n < 4; n++) {
        tg_mem_fail_after(n);
        int rc = tg_policy_eval(p, TG_POLICY_PRE, &x.f, &h2);
        tg_mem_fail_after(-1);
        assert_true(rc == TG_OK || rc == TG_E_NOMEM);
        assert_true(rc == TG_OK ? h2.n == 8 : h2.n == 0);
    }
    tg_policy_hits_free(&h2);
    fx_free(&x);
    tg_policy_hits_free(&h);
    tg_policy_hits_free(&h); /* twice is fine */
    tg_policy_free(p);
    tg_policy_free(small);
    tg_policy_free(NULL);
}

/* Compile under allocation failure at every point: NOMEM or OK, never a leak or a crash. */
static void test_compile_nomem(void **state)
{
    (void)state;
    char path[256];
    put("alloc.yaml", every_kind, path, sizeof(path));
    put("alloc-b.yaml",
        "- {id: z1, description: d, when: {keywords: [保本, x]}, then: {tag: t}}\n"
        "- {id: z2, description: d, when: {regex: y}, then: {tag: t}}\n"
        "- {id: z3, stage: post, description: d, when: {all: [{tool.name: [a, b*]}, "
        "{tool.count: {gt: 0}}, {tool.arguments.keywords: [批准]}, {tool.arguments.regex: z}]}, "
        "then: {tag: t}}\n",
        path, sizeof(path));
    bool ok = false;
    for (long n = 0; !ok && n < 100000; n++) {
        struct tg_policy *p = NULL, *q = NULL;
        snprintf(path, sizeof(path), "%s/alloc.yaml", dir);
        tg_mem_fail_after(n);
        int rc = tg_policy_load(path, &p, NULL);
        snprintf(path, sizeof(path), "%s/alloc-b.yaml", dir);
        int rc2 = rc ? rc : tg_policy_load(path, &q, NULL);
        int rc3 = rc2 ? rc2 : tg_policy_merge(p, q);
        tg_mem_fail_after(-1);
        assert_true(rc == TG_OK || rc == TG_E_NOMEM);
        assert_true(rc2 == TG_OK || rc2 == TG_E_NOMEM);
        assert_true(rc3 == TG_OK || rc3 == TG_E_NOMEM);
        if (rc == TG_OK && rc2 != TG_OK)
            tg_policy_free(p);
        else if (rc == TG_OK) {
            assert_int_equal(tg_policy_count(p), rc3 == TG_OK ? 25 : 22);
            tg_policy_free(p);
        }
        ok = rc3 == TG_OK;
    }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_condition),
        cmocka_unit_test(test_combinators),
        cmocka_unit_test(test_cmp_forms),
        cmocka_unit_test(test_keywords_shared),
        cmocka_unit_test(test_keywords_naive),
        cmocka_unit_test(test_keywords_file),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_conversation_keywords),
        cmocka_unit_test(test_triggers),
        cmocka_unit_test(test_trigger_prefers_facts),
        cmocka_unit_test(test_tool_calls),
        cmocka_unit_test(test_tool_arguments_escaped),
        cmocka_unit_test(test_tool_memory),
        cmocka_unit_test(test_tool_example),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_errors_post_only),
        cmocka_unit_test(test_errors_tools),
        cmocka_unit_test(test_errors_top),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_hits_reuse),
        cmocka_unit_test(test_compile_nomem),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
