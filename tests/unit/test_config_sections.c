/*
 * test_config_sections.c - the config's typed sections: every default when
 * the file says nothing, the values a file gives (ladder, eval, fairness,
 * experiments, review, users, web, privacy, audit), a config made from a
 * tree, and the checks of the sections about people (users, review,
 * webhooks, the pages' texts and risk tags).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

#define MINIMAL "backends:\n  - name: s\n    type: script\n    reply: hi\nroute:\n  backend: s\n"

/* A temporary file holding text; the caller unlink()s and tg_free()s the path. */
static char *write_tmp(const char *text)
{
    char tmpl[] = "/tmp/tg_test_config_XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return tg_strdup(tmpl);
}

/* Every expected "FILE:LINE: message" piece is among errs. */
static void assert_errors(const json_t *errs, const char *const *want, size_t n)
{
    char *all = json_dumps(errs, 0);
    assert_non_null(all);
    for (size_t i = 0; i < n; i++)
        if (!strstr(all, want[i]))
            fail_msg("missing: %s\nin: %s", want[i], all);
    free(all);
}

/* The config of text, which must load. */
static struct tg_config *load_text(const char *text)
{
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    char *path = write_tmp(text);
    int rc = tg_config_load(path, &cfg, &errs);
    if (rc) {
        char *all = json_dumps(errs, 0);
        fail_msg("load: %s", all ? all : "?");
    }
    unlink(path);
    tg_free(path);
    return cfg;
}

/* ------------------------------------------------------------ typed sections */

static void test_section_defaults(void **state)
{
    (void)state;
    struct tg_config *cfg = load_text(MINIMAL);
    const struct tg_ladder_conf *l = &cfg->ladder;
    assert_false(l->present);
    assert_int_equal(l->n_rungs, 0);
    assert_int_equal(l->max_attempts, 1); /* no ladder: the route's backend, once */
    assert_int_equal(l->budget_ms, 0);
    assert_int_equal(l->backoff_ms, 200);
    assert_int_equal(l->backoff_max_ms, 2000);
    assert_int_equal(l->degraded_to_human, 3);
    assert_true(l->min_confidence < 0);
    assert_false(l->stream_through);
    assert_int_equal(l->class_weight[TG_CLASS_INTERNAL], 1);
    assert_int_equal(l->class_weight[TG_CLASS_CUSTOMER], 3);
    assert_int_equal(l->class_weight[TG_CLASS_VIP], 6);
    assert_int_equal(l->breaker_failures, 3);
    assert_int_equal(l->breaker_open_ms, 1000);
    assert_true(l->breaker_probe == 1.0);
    const struct tg_eval_conf *e = &cfg->eval;
    assert_null(e->far_set);
    assert_false(e->has_far_min);
    assert_false(e->monitor);
    assert_true(e->monitor_min_far == 0.85);
    assert_int_equal(e->monitor_days, 7);
    assert_true(e->monitor_alpha == 0.05);
    assert_int_equal(e->monitor_every_ms, 3600000);
    assert_int_equal(e->n_prices, 0);
    const struct tg_fairness_conf *f = &cfg->fairness;
    assert_int_equal(f->n_attributes, 0);
    assert_true(f->limit == 0.05);
    assert_int_equal(f->min_group, 30);
    assert_int_equal(f->bootstrap, 1000);
    assert_int_equal(f->window_ms, 30 * 86400000LL);
    assert_int_equal(f->check_every_ms, 3600000);
    assert_int_equal(cfg->n_experiments, 0);
    const struct tg_review_conf *r = &cfg->review;
    assert_int_equal(r->warn_before_ms, 30000);
    assert_int_equal(r->claim_lapse_ms, 300000);
    assert_true(r->four_eyes);
    assert_int_equal(r->n_internal_queues, 0);
    assert_string_equal(r->follow_up_queue, "follow_up");
    assert_int_equal(r->follow_up_sla_ms, 120000);
    /* trustgate's own risk tag, and no other */
    assert_int_equal(r->n_risk_tags, 1);
    assert_string_equal(r->risk_tags[0], "degraded_3x");
    assert_int_equal(cfg->n_users, 0);
    assert_int_equal(cfg->n_policy_includes, 0);
    assert_null(cfg->policy_rules);
    assert_int_equal(cfg->n_webhooks, 0);
    assert_int_equal(cfg->n_labels, 0);
    assert_string_equal(cfg->audit_origin, "trustgate");
    assert_false(cfg->web_chat);
    assert_true(cfg->web_console);
    assert_false(cfg->customer_map);
    assert_int_equal(cfg->n_web_texts, 0); /* no title, greeting, examples nor login hint */
    assert_null(cfg->web_texts);
    assert_null(tg_config_translation(cfg, "en", "您好"));
    tg_config_free(cfg);
}

/* A file that sets every option of the typed sections. */
static struct tg_config *load_values(void)
{
    return load_text(
        MINIMAL "ladder:\n  budget: 8s\n  max_attempts: 2\n  backoff: 50\n  backoff_max: 1s\n"
                "  degraded_to_human: 5\n  min_confidence: 0.4\n  stream_through: true\n"
                "  breaker: {failures: 7, open: 2s, probe: 0.25}\n"
                "  rungs:\n    - {backend: s, model: m1, budget: 3s, max_inflight: 4, queue: 9,"
                " queue_timeout: 250ms}\n"
                "    - {name: big, backend: s, large_context: true}\n    - {name: person}\n"
                "eval:\n  far: {set: far.jsonl, min: 0.9}\n"
                "  monitor: {min_far: 0.8, days: 5, alpha: 0.1, check_every: 10m}\n"
                "  prices: {m1: {prompt: 1, completion: 2}}\n"
                "fairness:\n  attributes: [age, {name: region, values: [n, s]}]\n"
                "  limit: 0.1\n  min_group: 12\n  bootstrap: 50\n  window: 7d\n"
                "  check_every: 30m\n"
                "experiments:\n  - name: kb2\n    holdout: 0.1\n    variants:\n"
                "      - {name: a, share: 1}\n      - {name: b, share: 3, release: cand}\n"
                "review:\n  warn_before: 10s\n  claim_lapse: 1m\n  four_eyes: false\n"
                "  internal_queues: [bi, audit]\n  follow_up: {queue: later, sla: 5m}\n"
                "  risk_tags: [vip, degraded_3x, angry, vip]\n"
                "users:\n  - {name: ann, role: supervisor, token: t1, customer_ids: [c9]}\n"
                "  - {name: bob, password: pw}\n"
                "webhooks: [{url: \"http://x/y\", secret: s3}]\n"
                "labels: {en: {refund: Refund}}\n"
                "translations: {en: {\"您好\": Hello}}\n"
                "audit: {origin: bank.example/tg}\n"
                "web:\n  chat: true\n  console: false\n"
                "  texts:\n    zh: {chat_title: 家电客服, chat_intro: 您好,\n"
                "         chat_examples: [q1, q2]}\n"
                "    en-GB: {login_hint: \"Users: ann\"}\n"
                "privacy: {customer_map: true}\n"
                "policies:\n  - {id: r1, match: x, action: refuse}\n  - {include: /dev/null}\n"
                "  - {id: r2, match: y, action: refuse}\n");
}

static void test_section_values(void **state)
{
    (void)state;
    struct tg_config *cfg = load_values();
    const struct tg_ladder_conf *l = &cfg->ladder;
    assert_true(l->present);
    assert_int_equal(l->budget_ms, 8000);
    assert_int_equal(l->max_attempts, 2);
    assert_int_equal(l->backoff_ms, 50);
    assert_int_equal(l->backoff_max_ms, 1000);
    assert_int_equal(l->degraded_to_human, 5);
    assert_true(l->min_confidence == 0.4);
    assert_true(l->stream_through);
    assert_int_equal(l->breaker_failures, 7);
    assert_int_equal(l->breaker_open_ms, 2000);
    assert_true(l->breaker_probe == 0.25);
    assert_int_equal(l->n_rungs, 3);
    assert_string_equal(l->rungs[0].name, "s"); /* a rung is named after its backend */
    assert_string_equal(l->rungs[0].model, "m1");
    assert_int_equal(l->rungs[0].budget_ms, 3000);
    assert_int_equal(l->rungs[0].max_inflight, 4);
    assert_int_equal(l->rungs[0].queue, 9);
    assert_int_equal(l->rungs[0].queue_timeout_ms, 250);
    assert_string_equal(l->rungs[1].name, "big");
    assert_true(l->rungs[1].large_context);
    assert_int_equal(l->rungs[1].queue_timeout_ms, 1000);
    assert_null(l->rungs[2].backend);
    assert_string_equal(l->rungs[2].name, "person");
    const struct tg_eval_conf *e = &cfg->eval;
    assert_string_equal(e->far_set, "far.jsonl");
    assert_true(e->has_far_min && e->far_min == 0.9);
    assert_true(e->monitor);
    assert_true(e->monitor_min_far == 0.8);
    assert_int_equal(e->monitor_days, 5);
    assert_true(e->monitor_alpha == 0.1);
    assert_int_equal(e->monitor_every_ms, 600000);
    assert_int_equal(e->n_prices, 1);
    assert_string_equal(e->price_list[0].model, "m1");
    assert_true(e->price_list[0].prompt == 1 && e->price_list[0].completion == 2);
    tg_config_free(cfg);
}

static void test_section_values_people(void **state)
{
    (void)state;
    struct tg_config *cfg = load_values();
    const struct tg_fairness_conf *f = &cfg->fairness;
    assert_int_equal(f->n_attributes, 2);
    assert_string_equal(f->attrs[0].name, "age");
    assert_string_equal(f->attrs[1].name, "region");
    assert_int_equal(f->attrs[0].n_values, 0);
    assert_int_equal(f->attrs[1].n_values, 2);
    assert_string_equal(f->attrs[1].values[1], "s");
    assert_true(f->alpha == 0);
    assert_true(f->limit == 0.1);
    assert_int_equal(f->min_group, 12);
    assert_int_equal(f->bootstrap, 50);
    assert_int_equal(f->window_ms, 7 * 86400000LL);
    assert_int_equal(f->check_every_ms, 1800000);
    assert_int_equal(cfg->n_experiments, 1);
    const struct tg_experiment_conf *x = &cfg->experiments[0];
    assert_string_equal(x->name, "kb2");
    assert_true(x->holdout == 0.1);
    assert_int_equal(x->n_variants, 2);
    assert_string_equal(x->variants[1].name, "b");
    assert_true(x->variants[1].share == 3);
    assert_string_equal(x->variants[1].release, "cand");
    assert_null(x->variants[0].release);
    assert_null(x->variants[1].config);
    assert_int_equal(x->variants[1].line, 36);
    assert_string_equal(x->salt, "kb2"); /* the name unless a salt is written */
    const struct tg_review_conf *r = &cfg->review;
    assert_int_equal(r->warn_before_ms, 10000);
    assert_int_equal(r->claim_lapse_ms, 60000);
    assert_false(r->four_eyes);
    assert_int_equal(r->n_internal_queues, 2);
    assert_string_equal(r->internal_queues[1], "audit");
    assert_string_equal(r->follow_up_queue, "later");
    assert_int_equal(r->follow_up_sla_ms, 300000);
    /* trustgate's own first, then the file's, each once */
    assert_int_equal(r->n_risk_tags, 3);
    assert_string_equal(r->risk_tags[0], "degraded_3x");
    assert_string_equal(r->risk_tags[1], "vip");
    assert_string_equal(r->risk_tags[2], "angry");
    assert_int_equal(cfg->n_users, 2);
    assert_string_equal(cfg->users[0].name, "ann");
    assert_string_equal(cfg->users[0].role, "supervisor");
    assert_string_equal(cfg->users[0].token, "t1");
    assert_int_equal(cfg->users[0].n_customer_ids, 1);
    assert_string_equal(cfg->users[0].customer_ids[0], "c9");
    assert_string_equal(cfg->users[1].role, "reviewer");
    assert_string_equal(cfg->users[1].password, "pw");
    assert_null(cfg->users[1].token);
    assert_int_equal(cfg->n_webhooks, 1);
    assert_string_equal(cfg->webhook_list[0].url, "http://x/y");
    assert_string_equal(cfg->webhook_list[0].secret, "s3");
    assert_int_equal(cfg->n_labels, 1);
    assert_string_equal(cfg->label_list[0].lang, "en");
    assert_string_equal(cfg->label_list[0].code, "refund");
    assert_string_equal(cfg->label_list[0].text, "Refund");
    assert_string_equal(tg_config_translation(cfg, "en", "您好"), "Hello");
    assert_null(tg_config_translation(cfg, "ja", "您好"));
    assert_int_equal(cfg->n_policy_includes, 1);
    assert_string_equal(cfg->policy_includes[0], "/dev/null");
    assert_int_equal(json_array_size(cfg->policy_rules), 2);
    assert_string_equal(tg_json_str(json_array_get(cfg->policy_rules, 1), "id", ""), "r2");
    assert_string_equal(cfg->audit_origin, "bank.example/tg");
    assert_true(cfg->web_chat);
    assert_false(cfg->web_console);
    assert_int_equal(cfg->n_web_texts, 2);
    const struct tg_web_texts *zh = &cfg->web_texts[0], *en = &cfg->web_texts[1];
    assert_string_equal(zh->lang, "zh");
    assert_string_equal(zh->chat_title, "家电客服");
    assert_string_equal(zh->chat_intro, "您好");
    assert_int_equal(zh->n_chat_examples, 2);
    assert_string_equal(zh->chat_examples[1], "q2");
    assert_null(zh->login_hint);
    assert_string_equal(en->lang, "en-GB");
    assert_string_equal(en->login_hint, "Users: ann");
    assert_null(en->chat_title);
    assert_null(en->chat_intro);
    assert_int_equal(en->n_chat_examples, 0);
    assert_true(cfg->customer_map);
    tg_config_free(cfg);
}

/* A ladder: key without rungs still counts as a ladder (three attempts a rung). */
static void test_ladder_key_alone(void **state)
{
    (void)state;
    struct tg_config *cfg = load_text(MINIMAL "ladder:\n");
    assert_true(cfg->ladder.present);
    assert_int_equal(cfg->ladder.max_attempts, 3);
    assert_int_equal(cfg->ladder.n_rungs, 0);
    tg_config_free(cfg);
}

static void test_from_tree(void **state)
{
    (void)state;
    json_t *root =
        json_pack("{s:[{s:s, s:[{s:s, s:i}, {s:s, s:f, s:s}]}], s:{s:{s:f}}}", "experiments",
                  "name", "kb2", "variants", "name", "control", "share", 1, "name", "candidate",
                  "share", 0.5, "release", "cand", "eval", "far", "min", 0.7);
    struct tg_config *cfg = NULL;
    assert_int_equal(tg_config_from_tree(root, &cfg), TG_OK);
    json_decref(root); /* the config keeps its own reference */
    assert_int_equal(cfg->n_experiments, 1);
    assert_string_equal(cfg->experiments[0].variants[1].release, "cand");
    assert_int_equal(cfg->experiments[0].variants[1].line, 0);
    assert_true(cfg->eval.has_far_min && cfg->eval.far_min == 0.7);
    assert_int_equal(cfg->eval.monitor_days, 7);
    assert_int_equal(cfg->listen_port, 8080);
    tg_config_free(cfg);
    /* anything but a mapping is an empty config */
    assert_int_equal(tg_config_from_tree(NULL, &cfg), TG_OK);
    assert_int_equal(cfg->n_experiments, 0);
    assert_int_equal(cfg->ladder.max_attempts, 1);
    tg_config_free(cfg);
}

static void test_sections_allocation_failures(void **state)
{
    (void)state;
    const char *text =
        MINIMAL "ladder:\n  rungs: [{backend: s}]\nfairness: {attributes: [a]}\n"
                "experiments: [{name: e, variants: [{name: a, share: 1},"
                " {name: b, share: 1}]}]\n"
                "review: {internal_queues: [q], risk_tags: [r]}\n"
                "users: [{name: u, token: t}]\n"
                "web: {texts: {zh: {chat_examples: [x]}, en: {chat_examples: [y]}}}\n";
    char *path = write_tmp(text);
    int rc = TG_E_NOMEM;
    long n;
    for (n = 0; n < 100000 && rc != TG_OK; n++) {
        struct tg_config *cfg = NULL;
        json_t *errs = NULL;
        tg_mem_fail_after(n);
        rc = tg_config_load(path, &cfg, &errs);
        tg_mem_fail_after(-1);
        assert_true(rc == TG_OK || rc == TG_E_NOMEM);
        if (rc == TG_OK) {
            assert_int_equal(cfg->n_users, 1);
            assert_int_equal(cfg->review.n_risk_tags, 2);
            assert_int_equal(cfg->n_web_texts, 2);
            assert_string_equal(cfg->web_texts[1].chat_examples[0], "y");
        }
        tg_config_free(cfg);
        json_decref(errs);
    }
    assert_int_equal(rc, TG_OK);
    assert_true(n > 10);
    unlink(path);
    tg_free(path);
}

/* policies: must be a list, reported by the config at its line. */
static void test_policies_not_a_list(void **state)
{
    (void)state;
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    char *path = write_tmp(MINIMAL "policies: 3\n");
    assert_int_equal(tg_config_load(path, &cfg, &errs), TG_E_CONFIG);
    const char *want[] = {":7: policies must be a list of rules or {include: FILE}"};
    assert_errors(errs, want, 1);
    json_decref(errs);
    unlink(path);
    tg_free(path);
}

/* ------------------------------------------------------------ people */

/* One person, one user: names (as tg_config_identity() compares them),
 * tokens and customer ids belong to one user each, and no token is an API
 * key; API keys are distinct too. */
static void test_users_are_one_person_each(void **state)
{
    (void)state;
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    char *path = write_tmp("backends:\n  - name: s\n    type: script\n    reply: hi\n" /* 1-4 */
                           "route:\n  backend: s\n"                                    /* 5-6 */
                           "auth:\n  api_keys:\n"                                      /* 7-8 */
                           "    - {name: web, key: tg-web}\n"                          /* 9 */
                           "    - {name: app, key: tg-web}\n"                          /* 10 */
                           "users:\n"                                                  /* 11 */
                           "  - name: ann\n    token: tg-ann\n"                        /* 12-13 */
                           "    customer_ids: [cust-9, ann]\n"                         /* 14 */
                           "  - name: bob\n    token: tg-ann\n"                        /* 15-16 */
                           "  - name: ann\n    token: tg-ann2\n"                       /* 17-18 */
                           "  - name: Reviewer1\n    token: tg-r1\n"                   /* 19-20 */
                           "  - name: \"ｒｅｖｉｅｗｅｒ１\"\n    token: tg-r2\n"      /* 21-22 */
                           "  - name: cy\n    token: tg-web\n"                         /* 23-24 */
                           "  - name: dee\n    token: tg-dee\n"                        /* 25-26 */
                           "    customer_ids: [CUST-9, bob, \"\"]\n"                   /* 27 */
                           "  - name: eve\n    token: \"\"\n");                        /* 28-29 */
    assert_int_equal(tg_config_load(path, &cfg, &errs), TG_E_CONFIG);
    const char *want[] = {
        ":10: API key 'app' is the same key as 'web'",
        ":16: users[1].token is the token of users[0] ('ann') too: one token, one person",
        ":17: users[2].name: duplicate user name 'ann' (users[0] has it too)",
        ":21: users[4].name 'ｒｅｖｉｅｗｅｒ１' is the same identity as 'Reviewer1' of users[3]",
        ":24: users[5].token is also API key 'web': a person's token must not be a channel's key",
        (":27: users[6].customer_ids[0] 'CUST-9' is the same identity as 'cust-9' of users[0] "
         "('ann')"),
        ":27: users[6].customer_ids[1] 'bob' is the same identity as 'bob' of users[1] ('bob')",
        ":27: users[6].customer_ids[2] must be a non-empty string",
        ":29: users[7].token must be a non-empty string",
    };
    assert_errors(errs, want, TG_ARRAY_LEN(want));
    /* ann's customer id spelling her own name is no clash */
    assert_int_equal(json_array_size(errs), TG_ARRAY_LEN(want));
    json_decref(errs);
    unlink(path);
    tg_free(path);
}

static void test_identity_is_canonical(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"reviewer1", "reviewer1"},
        {"Reviewer1", "reviewer1"},
        {"ｒｅｖｉｅｗｅｒ１", "reviewer1"},
        {"ＲＥＶＩＥＷＥＲ１", "reviewer1"},
        {"  Ann\t Lee ", "ann lee"},
        {"re\xe2\x80\x8bviewer1", "reviewer1"}, /* a zero-width space */
        {"Straße", "strasse"},
        {"张三", "张三"},
        {"", ""},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        struct tg_buf b;
        tg_buf_init(&b, 4096);
        assert_int_equal(tg_config_identity(cases[i].in, strlen(cases[i].in), &b), TG_OK);
        assert_non_null(b.data);
        assert_string_equal(b.data, cases[i].out);
        tg_buf_free(&b);
    }
    struct tg_buf b;
    tg_buf_init(&b, 4096);
    assert_int_equal(tg_config_identity("a\xff", 2, &b), TG_E_PARSE);
    char big[2000];
    memset(big, 'a', sizeof(big));
    assert_int_equal(tg_config_identity(big, sizeof(big), &b), TG_E_PARSE);
    tg_buf_free(&b);
}

static void test_review_users_webhooks(void **state)
{
    (void)state;
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    assert_int_equal(tg_config_load("tests/unit/data/config/people_bad.yaml", &cfg, &errs),
                     TG_E_CONFIG);
    const char *want[] = {
        "people_bad.yaml:8: review.warn_before must be a duration",
        "people_bad.yaml:9: review.four_eyes must be true or false",
        ("people_bad.yaml:12: users[0].role must be reviewer, supervisor, agent or auditor, not "
         "'boss'"),
        "people_bad.yaml:14: users[1] needs a name and a token",
        "people_bad.yaml:16: webhooks[0].url must be an http:// or https:// URL, not 'ftp://x'",
        "people_bad.yaml:18: webhooks[1] needs a secret",
    };
    char *all = json_dumps(errs, 0);
    for (size_t i = 0; i < TG_ARRAY_LEN(want); i++)
        if (!strstr(all, want[i]))
            fail_msg("missing: %s\nin: %s", want[i], all);
    free(all);
    json_decref(errs);
}

/* web.texts and review.risk_tags: each bad value at its line. */
static void test_web_texts_and_risk_tags(void **state)
{
    (void)state;
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    char *path = write_tmp(MINIMAL                                      /* 1-6 */
                           "review:\n  risk_tags: [ok, \"\", {a: b}]\n" /* 7-8 */
                           "web:\n  texts:\n    zh:\n"                  /* 9-11 */
                           "      chat_title: \"\"\n"                   /* 12 */
                           "      chat_intro: [a]\n"                    /* 13 */
                           "      chat_examples: [q1, 7]\n"             /* 14 */
                           "      login_hint: \"\"\n"                   /* 15 */
                           "      chat_exampels: [q]\n"                 /* 16 */
                           "    \"-x\": {chat_title: t}\n"              /* 17 */
                           "    en: [a]\n");                            /* 18 */
    assert_int_equal(tg_config_load(path, &cfg, &errs), TG_E_CONFIG);
    const char *want[] = {
        ":8: review.risk_tags[1] must be a tag name, not an empty text",
        ":8: review.risk_tags[2] must be a tag name, not a mapping",
        ":12: web.texts.zh.chat_title must be a non-empty text, not an empty one",
        ":13: web.texts.zh.chat_intro must be a non-empty text, not a list",
        ":14: web.texts.zh.chat_examples[1] must be a non-empty text, not an integer",
        ":15: web.texts.zh.login_hint must be a non-empty text, not an empty one",
        ":16: unknown key 'chat_exampels' in web.texts.zh (did you mean 'chat_examples'?)",
        ":17: web.texts: '-x' is not a language tag such as zh or en",
        ":18: web.texts.en must be a mapping of the pages' texts, not a list",
    };
    assert_errors(errs, want, TG_ARRAY_LEN(want));
    assert_int_equal(json_array_size(errs), TG_ARRAY_LEN(want));
    json_decref(errs);
    unlink(path);
    tg_free(path);
    /* risk_tags must be a list; an example longer than the chat page takes is refused */
    char big[4100 + 200];
    int n = snprintf(big, sizeof(big),
                     MINIMAL "review: {risk_tags: vip}\n"
                             "web: {texts: {zh: {chat_examples: [\"");
    memset(big + n, 'x', 4001);
    snprintf(big + n + 4001, sizeof(big) - (size_t)n - 4001, "\"]}}}\n");
    path = write_tmp(big);
    errs = NULL;
    assert_int_equal(tg_config_load(path, &cfg, &errs), TG_E_CONFIG);
    const char *want2[] = {
        ":7: review.risk_tags must be a list of tag names, not a string",
        ":8: web.texts.zh.chat_examples[0] is longer than the chat page takes (4000 bytes at most)",
    };
    assert_errors(errs, want2, TG_ARRAY_LEN(want2));
    json_decref(errs);
    unlink(path);
    tg_free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_section_defaults),
        cmocka_unit_test(test_section_values),
        cmocka_unit_test(test_section_values_people),
        cmocka_unit_test(test_ladder_key_alone),
        cmocka_unit_test(test_from_tree),
        cmocka_unit_test(test_sections_allocation_failures),
        cmocka_unit_test(test_policies_not_a_list),
        cmocka_unit_test(test_users_are_one_person_each),
        cmocka_unit_test(test_identity_is_canonical),
        cmocka_unit_test(test_review_users_webhooks),
        cmocka_unit_test(test_web_texts_and_risk_tags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
