/*
 * itest_experiments.c - experiments, releases and the fairness gate on the
 * traffic the daemon itself answers:
 *
 *   - a variant answered by a candidate release beside the release in force,
 *     refused until the release is started as an experiment, and refused
 *     again when its files change after it was proposed;
 *   - sensitive attributes from the channel's metadata, stored only as
 *     pseudonyms; the fairness gate closing on a real disparity, alerting
 *     (signed webhook) and freezing releases until a supervisor unfreezes;
 *     and staying open on the demo's four age bands with equal mixes, where
 *     the gap is noise (the old bootstrap gate closed there);
 *   - an experiment on simulated traffic with a known true lift, run through
 *     the daemon: the always-valid test stops where the same generator's
 *     simulations say it should, and twenty A/A experiments on the same
 *     traffic stay quiet at alpha 0.01 (the observed false positive rate is
 *     printed with that of 400 simulated null experiments).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include "eval/eval.h"
#include "govern/govern.h"
#include "config/config.h"
#include "eval/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char bin[256];

static int setup(void **state)
{
    (void)state;
    tg_h_bin("trustgate", bin, sizeof(bin));
    return 0;
}

/* Remove a test's directory, unless TG_KEEP is set (then say where it is). */
static void cleanup(const char *dir)
{
    char cmd[128];
    if (getenv("TG_KEEP")) {
        print_message("kept %s\n", dir);
        return;
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static int tg(const char *args, char **out)
{
    char cmd[3000];
    snprintf(cmd, sizeof(cmd), "%s %s 2>&1", bin, args);
    return tg_h_run(cmd, out);
}

static json_t *call(int port, const char *method, const char *path, const char *token,
                    const char *body, long *status)
{
    json_t *j = tg_h_api(port, method, path, token, body, status);
    if (!j)
        fail_msg("%s %s: %ld, not JSON", method, path, *status);
    return j;
}

/* One customer's message; the response's trustgate object is returned. */
static json_t *turn(int port, const char *customer, const char *text, const char *meta,
                    char *answer, size_t answer_len)
{
    char body[1024];
    long st;
    snprintf(body, sizeof(body),
             "{\"user\":\"%s\",\"metadata\":%s,\"messages\":[{\"role\":\"user\",\"content\":"
             "\"%s\"}]}",
             customer, meta ? meta : "{}", text);
    json_t *j = call(port, "POST", "/v1/chat/completions", "tg-t", body, &st);
    assert_int_equal(st, 200);
    if (answer)
        tg_strlcpy(answer,
                   tg_json_str(
                       json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"),
                       "content", ""),
                   answer_len);
    json_t *tgo = json_incref(json_object_get(j, "trustgate"));
    json_decref(j);
    return tgo;
}

static const char *base_config = "auth:\n  api_keys:\n    - name: t\n      key: tg-t\n"
                                 "users:\n"
                                 "  - {name: rex, role: reviewer, token: tg-rex}\n"
                                 "  - {name: sue, role: supervisor, token: tg-sue}\n"
                                 "backends:\n  - name: s\n    type: script\n"
                                 "    reply: 在用版本的回答\n"
                                 "route:\n  backend: s\n"
                                 "policies:\n"
                                 "  - id: hold\n    description: hold for review\n"
                                 "    when:\n      keywords: [复核]\n"
                                 "    then:\n      - review: {sla: 60s, queue: q}\n";

static const char *candidate_config = "backends:\n  - name: s\n    type: script\n"
                                      "    reply: 候选版本的回答\n"
                                      "route:\n  backend: s\n"
                                      "policies:\n"
                                      "  - id: mark\n    description: the candidate's disclaimer\n"
                                      "    when:\n      keywords: [你好, 问题]\n"
                                      "    then:\n      - prefix: 【候选】\n"
                                      "  - id: hold\n    description: hold for review\n"
                                      "    when:\n      keywords: [复核]\n"
                                      "    then:\n      - review: {sla: 60s, queue: q}\n";

/* `trustgate serve` that must refuse to start: its message. */
static char *refused(const char *cfg, const char *data)
{
    char args[1024], *out = NULL;
    snprintf(args, sizeof(args), "serve -c %s --data %s --listen 127.0.0.1:0", cfg, data);
    char cmd[2000];
    snprintf(cmd, sizeof(cmd), "timeout 20 %s %s 2>&1", bin, args);
    int rc = tg_h_run(cmd, &out);
    if (rc != 1)
        fail_msg("serve should refuse (exit 1), got %d: %s", rc, out);
    return out;
}

static void test_variant_answered_by_a_release(void **state)
{
    (void)state;
    char dir[64], cfg[256], cand[256], text[4096], args[1024], *out = NULL;
    assert_non_null(tg_h_tmpdir(dir, sizeof(dir)));
    snprintf(text, sizeof(text),
             "%sexperiments:\n  - name: kb2\n    salt: kb2\n"
             "    variants: [{name: control, share: 1}, {name: candidate, share: 1, "
             "release: cand}]\n"
             "fairness:\n  attributes: [{name: gender, values: [female, male]}]\n"
             "  min_group: 10\n  bootstrap: 200\n",
             base_config);
    tg_h_write_file(dir, "main.yaml", text, cfg, sizeof(cfg));
    tg_h_write_file(dir, "candidate.yaml", candidate_config, cand, sizeof(cand));

    /* no such release yet, then one only proposed: the gateway will not start */
    out = refused(cfg, dir);
    assert_non_null(strstr(out, "main.yaml:"));
    assert_non_null(strstr(out, "no release named cand"));
    tg_free(out);
    /* an evaluation measures the configuration in force, whatever its experiments */
    snprintf(args, sizeof(args), "eval far -c %s --set examples/insurance/eval/far.jsonl", cfg);
    assert_int_equal(tg(args, &out), 0);
    assert_null(strstr(out, "no release named"));
    tg_free(out);
    snprintf(args, sizeof(args), "release propose cand -c %s --data %s --by sue --why 'new tone'",
             cand, dir);
    assert_int_equal(tg(args, &out), 0);
    tg_free(out);
    out = refused(cfg, dir);
    assert_non_null(strstr(out, "is proposed; only a release started as an experiment"));
    tg_free(out);
    snprintf(args, sizeof(args),
             "release start-experiment cand -c %s --data %s --share 0.5 --by sue --why trial", cand,
             dir);
    assert_int_equal(tg(args, &out), 0);
    tg_free(out);
    /* the configuration in force is a registered release too: its name goes on the record */
    snprintf(args, sizeof(args), "release propose base -c %s --data %s --by sue --why 'in force'",
             cfg, dir);
    assert_int_equal(tg(args, &out), 0);
    tg_free(out);

    struct tg_h_proc gw;
    assert_int_equal(tg_h_start_gateway(&gw, cfg, dir), 0);
    int n[2] = {0, 0};
    char hash_main[65] = "", hash_cand[65] = "";
    for (int i = 0; i < 80; i++) {
        char who[32], answer[256];
        snprintf(who, sizeof(who), "rel-%d", i);
        json_t *t = turn(gw.port, who, "你好", NULL, answer, sizeof(answer));
        const char *v = tg_json_str(json_object_get(t, "experiments"), "kb2", "");
        const json_t *rel = json_object_get(t, "release");
        if (!strcmp(v, "candidate")) {
            /* the candidate's backend and its policy (the prefix) answered */
            assert_string_equal(answer, "【候选】候选版本的回答");
            assert_string_equal(tg_json_str(rel, "name", ""), "cand@1");
            tg_strlcpy(hash_cand, tg_json_str(rel, "hash", ""), sizeof(hash_cand));
            n[1]++;
        } else {
            assert_string_equal(v, "control");
            assert_string_equal(answer, "在用版本的回答");
            assert_null(rel);
            n[0]++;
        }
        /* a customer stays with what answered them */
        if (i < 3) {
            json_t *again = turn(gw.port, who, "还有问题", NULL, answer, sizeof(answer));
            assert_string_equal(tg_json_str(json_object_get(again, "experiments"), "kb2", ""), v);
            json_decref(again);
        }
        json_decref(t);
    }
    assert_true(n[0] >= 25 && n[1] >= 25);
    assert_int_equal(strlen(hash_cand), 64);
    /* the experiment as the console sees it */
    long st;
    json_t *j = call(gw.port, "GET", "/v1/experiments", "tg-rex", NULL, &st);
    assert_int_equal(st, 200);
    const json_t *vs =
        json_object_get(json_array_get(json_object_get(j, "experiments"), 0), "variants");
    assert_string_equal(tg_json_str(json_array_get(vs, 1), "release", ""), "cand@1");
    assert_string_equal(tg_json_str(json_array_get(vs, 1), "hash", ""), hash_cand);
    tg_strlcpy(hash_main, tg_json_str(json_array_get(vs, 0), "hash", ""), sizeof(hash_main));
    assert_string_equal(tg_json_str(json_array_get(vs, 0), "release", ""), "base@1");
    assert_int_equal(strlen(hash_main), 64);
    assert_string_not_equal(hash_main, hash_cand);
    json_decref(j);
    j = call(gw.port, "GET", "/v1/experiments/kb2", "tg-rex", NULL, &st);
    assert_int_equal(st, 200);
    const json_t *res = json_object_get(json_object_get(j, "metrics"), "resolved");
    assert_int_equal(tg_json_int(j, "turns", 0), 83);
    assert_int_equal(json_array_size(json_object_get(res, "arms")), 2);
    /* the split on /metrics too, for alerting on a sample-ratio mismatch */
    struct tg_h_resp mr;
    char murl[64], want[128];
    snprintf(murl, sizeof(murl), "http://127.0.0.1:%d/metrics", gw.port);
    assert_int_equal(tg_h_http("GET", murl, NULL, NULL, 0, 0, &mr), 0);
    size_t ai;
    json_t *arm;
    json_array_foreach(json_object_get(res, "arms"), ai, arm)
    {
        snprintf(want, sizeof(want),
                 "trustgate_experiment_turns_total{experiment=\"kb2\",variant=\"%s\"} %.0f\n",
                 tg_json_str(arm, "name", ""), tg_json_num(arm, "rows", -1));
        if (!strstr(mr.body, want))
            fail_msg("/metrics lacks %s", want);
    }
    tg_h_resp_free(&mr);
    assert_non_null(json_object_get(json_object_get(j, "metrics"), "cost"));
    json_decref(j);
    j = call(gw.port, "GET", "/v1/experiments/nope", "tg-rex", NULL, &st);
    assert_int_equal(st, 404);
    json_decref(j);
    j = call(gw.port, "GET", "/v1/experiments/kb2?look=soon", "tg-rex", NULL, &st);
    assert_int_equal(st, 400);
    json_decref(j);
    /* looks every 20 turns: 83 turns make five */
    j = call(gw.port, "GET", "/v1/experiments/kb2?turns=20", "tg-rex", NULL, &st);
    assert_int_equal(st, 200);
    assert_int_equal(
        tg_json_int(json_object_get(json_object_get(j, "metrics"), "resolved"), "days", 0), 5);
    json_decref(j);
    j = call(gw.port, "GET", "/v1/experiments/kb2?turns=0", "tg-rex", NULL, &st);
    assert_int_equal(st, 400);
    json_decref(j);
    /* a value too long for any we take is refused, not ignored */
    j = call(gw.port, "GET", "/v1/experiments/kb2?look=1000000000000000000000000000000000000000d",
             "tg-rex", NULL, &st);
    assert_int_equal(st, 400);
    json_decref(j);
    j = call(gw.port, "GET", "/v1/reviews?state=handed_offhanded_offhanded_offhanded_off", "tg-rex",
             NULL, &st);
    assert_int_equal(st, 400);
    json_decref(j);
    /* the candidate's customers again, with their gender: women's second questions are
     * held, men's answered — a gap on the traffic the candidate answers */
    int held = 0;
    for (int i = 0; i < 80; i++) {
        char who[32], meta[64];
        snprintf(who, sizeof(who), "rel-%d", i);
        snprintf(meta, sizeof(meta), "{\"gender\":\"%s\"}", i % 2 ? "male" : "female");
        json_t *t = turn(gw.port, who, "你好", meta, NULL, 0);
        bool cand_arm =
            !strcmp(tg_json_str(json_object_get(t, "experiments"), "kb2", ""), "candidate");
        json_decref(t);
        if (!cand_arm)
            continue;
        t = turn(gw.port, who, i % 2 ? "你好" : "请复核", meta, NULL, 0);
        held += tg_json_str(t, "review_id", NULL) != NULL;
        json_decref(t);
    }
    assert_true(held >= 12);
    /* promotion is refused: the fairness gate is closed on what the candidate answered */
    snprintf(args, sizeof(args),
             "release promote cand --url http://127.0.0.1:%d --token tg-sue --why 'ready to ship'",
             gw.port);
    assert_int_equal(tg(args, &out), 1);
    if (!strstr(out, "fairness gate closed on the traffic cand@1 answered: gender delivered"))
        fail_msg("%s", out);
    tg_free(out);
    assert_int_equal(tg_h_stop(&gw, 5000), 0);

    /* the deployment's files change after the release was proposed: the variant still
     * answers with the release as proposed, kept in the store */
    FILE *f = fopen(cand, "w");
    assert_non_null(f);
    fputs("backends:\n  - name: s\n    type: script\n    reply: 改过的回答\nroute:\n  backend: s\n",
          f);
    fclose(f);
    assert_int_equal(tg_h_start_gateway(&gw, cfg, dir), 0);
    for (int i = 0; i < 20; i++) {
        char who[32], answer[256];
        snprintf(who, sizeof(who), "rel-%d", i);
        json_t *t = turn(gw.port, who, "你好", NULL, answer, sizeof(answer));
        if (!strcmp(tg_json_str(json_object_get(t, "experiments"), "kb2", ""), "candidate")) {
            assert_string_equal(answer, "【候选】候选版本的回答");
            assert_string_equal(tg_json_str(json_object_get(t, "release"), "hash", ""), hash_cand);
        }
        json_decref(t);
    }
    assert_int_equal(tg_h_stop(&gw, 5000), 0);
    /* and an operator gets the same files back, checked against the hash */
    snprintf(args, sizeof(args), "release export cand -c %s --data %s --to %s/out", cfg, dir, dir);
    assert_int_equal(tg(args, &out), 0);
    assert_non_null(strstr(out, "written to"));
    tg_free(out);
    snprintf(args, sizeof(args), "cat %s/out/candidate.yaml", dir);
    assert_int_equal(tg_h_run(args, &out), 0);
    assert_string_equal(out, candidate_config);
    tg_free(out);
    /* a version that does not exist */
    snprintf(args, sizeof(args), "release export cand -c %s --data %s --to %s/out2 --version 9",
             cfg, dir, dir);
    assert_int_equal(tg(args, &out), 1);
    assert_non_null(strstr(out, "no release named cand with that version"));
    tg_free(out);
    cleanup(dir);
}

/* ------------------------------------------------------------ promotion */

/* Promotion, freezing and unfreezing are a supervisor's acts through the
 * server, and every gate is computed from its store: a reviewer's token, a
 * short reason, a typed FAR, a release that never ran as an experiment, a
 * candidate nobody judged are each refused; the candidate's own rated
 * traffic opens the gates; an override is an audit leaf. */
static void test_promotion_through_the_server(void **state)
{
    (void)state;
    char dir[64], cfg[256], cand[256], text[4096], args[1024], url[64], *out = NULL;
    long st;
    assert_non_null(tg_h_tmpdir(dir, sizeof(dir)));
    snprintf(text, sizeof(text),
             "%sexperiments:\n  - name: kb2\n    salt: kb2p\n"
             "    variants: [{name: control, share: 1}, {name: candidate, share: 1, "
             "release: cand}]\n"
             "eval:\n  far: {min: 0.8}\n  monitor: {min_far: 0.85, days: 7}\n",
             base_config);
    tg_h_write_file(dir, "main.yaml", text, cfg, sizeof(cfg));
    tg_h_write_file(dir, "candidate.yaml", candidate_config, cand, sizeof(cand));
    snprintf(args, sizeof(args), "release propose cand -c %s --data %s --by sue --why 'new tone'",
             cand, dir);
    assert_int_equal(tg(args, &out), 0);
    tg_free(out);
    snprintf(args, sizeof(args), "release propose fix -c %s --data %s --by sue --why 'legal fix'",
             cand, dir);
    assert_int_equal(tg(args, &out), 0);
    tg_free(out);
    snprintf(args, sizeof(args),
             "release start-experiment cand -c %s --data %s --share 0.5 --by sue --why trial", cand,
             dir);
    assert_int_equal(tg(args, &out), 0);
    tg_free(out);
    struct tg_h_proc gw;
    assert_int_equal(tg_h_start_gateway(&gw, cfg, dir), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", gw.port);
    /* anyone could freeze: now a supervisor's act, with a reason */
    json_t *j = call(gw.port, "POST", "/v1/releases/freeze", "tg-rex",
                     "{\"why\":\"this looks wrong to me\"}", &st);
    assert_int_equal(st, 403);
    json_decref(j);
    j = call(gw.port, "POST", "/v1/releases/freeze", "tg-sue", "{\"why\":\"ok\"}", &st);
    assert_int_equal(st, 400);
    json_decref(j);
    snprintf(args, sizeof(args), "release freeze --url %s --token tg-sue --why 'checking a "
                                 "complaint'", url);
    assert_int_equal(tg(args, &out), 0);
    assert_non_null(strstr(out, "releases frozen by sue"));
    tg_free(out);
    /* unfreeze --by super1 --why ok worked for anyone: the token decides, the reason counts */
    snprintf(args, sizeof(args), "release unfreeze --url %s --token tg-rex --why 'it is fine now'",
             url);
    assert_int_equal(tg(args, &out), 1);
    assert_non_null(strstr(out, "(403)"));
    tg_free(out);
    snprintf(args, sizeof(args), "release unfreeze --url %s --token tg-sue --why ok", url);
    assert_int_equal(tg(args, &out), 1);
    assert_non_null(strstr(out, "at least 10 characters"));
    tg_free(out);
    snprintf(args, sizeof(args), "release promote cand --url %s --token tg-sue --why 'while frozen'",
             url);
    assert_int_equal(tg(args, &out), 1);
    if (!strstr(out, "frozen     CLOSED"))
        fail_msg("%s", out);
    tg_free(out);
    snprintf(args, sizeof(args),
             "TRUSTGATE_TOKEN=tg-sue %s release unfreeze --url %s --why 'complaint answered' 2>&1",
             bin, url);
    assert_int_equal(tg_h_run(args, &out), 0);
    assert_non_null(strstr(out, "releases unfrozen by sue"));
    tg_free(out);
    /* a reviewer cannot promote */
    snprintf(args, sizeof(args), "release promote cand --url %s --token tg-rex --why 'ready to "
                                 "ship'", url);
    assert_int_equal(tg(args, &out), 1);
    assert_non_null(strstr(out, "(403)"));
    tg_free(out);
    /* straight from proposed: refused, the fairness gate never saw its traffic */
    snprintf(args, sizeof(args), "release promote fix --url %s --token tg-sue --why 'ready to "
                                 "ship'", url);
    assert_int_equal(tg(args, &out), 1);
    assert_non_null(strstr(out, "a release runs as an experiment before promotion"));
    tg_free(out);
    /* a FAR typed into the request is not evidence: nothing was judged */
    j = call(gw.port, "POST", "/v1/releases/cand/promote", "tg-sue",
             "{\"why\":\"the report says 99 %\",\"far\":0.99}", &st);
    assert_int_equal(st, 409);
    assert_string_equal(tg_json_str(json_object_get(j, "error"), "code", ""), "gate_closed");
    assert_non_null(strstr(tg_json_str(json_object_get(j, "error"), "message", ""),
                           "0 of cand's turns judged"));
    json_decref(j);
    /* the candidate's customers rate its answers: 9 of 10 good */
    int rated = 0;
    for (int i = 0; i < 120; i++) {
        char who[32], body[256];
        snprintf(who, sizeof(who), "p-%d", i);
        json_t *t = turn(gw.port, who, "你好", NULL, NULL, 0);
        if (!strcmp(tg_json_str(json_object_get(t, "experiments"), "kb2", ""), "candidate")) {
            snprintf(body, sizeof(body), "{\"turn_id\":\"%s\",\"rating\":%d}",
                     tg_json_str(t, "turn_id", ""), rated++ % 10 ? 5 : 1);
            json_t *fb = call(gw.port, "POST", "/v1/feedback", "tg-t", body, &st);
            assert_int_equal(st, 201);
            json_decref(fb);
        }
        json_decref(t);
    }
    assert_true(rated >= 40);
    snprintf(args, sizeof(args), "release promote cand --url %s --token tg-sue --why 'ready to "
                                 "ship'", url);
    assert_int_equal(tg(args, &out), 0);
    assert_non_null(strstr(out, "cand@1: promoted"));
    assert_non_null(strstr(out, "far        open"));
    assert_non_null(strstr(out, "srm        open"));
    tg_free(out);
    /* a supervisor may stand in for the experiment, with a reason on the record */
    snprintf(args, sizeof(args), "release promote fix --url %s --token tg-sue --why 'legal notice "
                                 "due today' --override 'regulator deadline, no time to test'",
             url);
    assert_int_equal(tg(args, &out), 0);
    assert_non_null(strstr(out, "fix@1: promoted"));
    tg_free(out);
    j = call(gw.port, "GET", "/v1/releases", "tg-sue", NULL, &st);
    assert_int_equal(st, 200);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(j, "releases"), i, r)
        assert_string_equal(tg_json_str(r, "state", ""),
                            !strcmp(tg_json_str(r, "name", ""), "fix") ? "promoted" : "superseded");
    json_decref(j);
    /* a rollback is a supervisor's act too: a reviewer, a short reason, a release not in
     * force are refused; then the one it superseded is in force again */
    j = call(gw.port, "POST", "/v1/releases/fix/rollback", "tg-rex",
             "{\"why\":\"customers complain\"}", &st);
    assert_int_equal(st, 403);
    json_decref(j);
    j = call(gw.port, "POST", "/v1/releases/fix/rollback", "tg-sue", "{\"why\":\"bad\"}", &st);
    assert_int_equal(st, 400);
    json_decref(j);
    j = call(gw.port, "POST", "/v1/releases/cand/rollback", "tg-sue",
             "{\"why\":\"customers complain\"}", &st);
    assert_int_equal(st, 409);
    json_decref(j);
    snprintf(args, sizeof(args), "release rollback fix --url %s --token tg-sue --why 'customers "
                                 "complain about the notice'", url);
    assert_int_equal(tg(args, &out), 0);
    assert_non_null(strstr(out, "fix v1: rolled_back"));
    assert_non_null(strstr(out, "cand v1 is in force again"));
    tg_free(out);
    assert_int_equal(tg_h_stop(&gw, 5000), 0);
    snprintf(args, sizeof(args),
             "cat %s/trustgate.db* | grep -a -c '\"action\":\"override\"'", dir);
    assert_int_equal(tg_h_run(args, &out), 0);
    assert_true(strtol(out, NULL, 10) >= 1);
    tg_free(out);
    cleanup(dir);
}

/* ------------------------------------------------------------ fairness */

/*
 * The demo's case (issue 17): 120 customers in 4 age bands, each band with
 * the same 70/30 mix of questions answered at once and questions held for
 * review.  The draw gave 23, 20, 18 and 21 of 30 answered at once: a gap of
 * 0.167 that is noise (Pearson's χ² 2.0, 3 degrees of freedom, p 0.57).  The
 * old gate (bootstrap of max − min) closed on exactly this table and froze
 * releases; the gate now stays open and says why.
 */
static void test_fairness_equal_mixes_stay_open(void **state)
{
    (void)state;
    char dir[64], cfg[256], text[4096];
    static const int answered[4] = {23, 20, 18, 21};
    static const char *const bands[4] = {"18-29", "30-44", "45-59", "60+"};
    assert_non_null(tg_h_tmpdir(dir, sizeof(dir)));
    snprintf(text, sizeof(text),
             "%sfairness:\n  attributes: [{name: age_band, values: [\"18-29\", \"30-44\", "
             "\"45-59\", \"60+\"]}]\n  limit: 0.05\n  min_group: 30\n",
             base_config);
    tg_h_write_file(dir, "fair.yaml", text, cfg, sizeof(cfg));
    struct tg_h_proc gw;
    assert_int_equal(tg_h_start_gateway(&gw, cfg, dir), 0);
    for (int b = 0; b < 4; b++) {
        for (int i = 0; i < 30; i++) {
            char who[32], meta[128];
            bool held = i >= answered[b];
            snprintf(who, sizeof(who), "band%d-%d", b, i);
            snprintf(meta, sizeof(meta), "{\"age_band\":\"%s\"}", bands[b]);
            json_t *t = turn(gw.port, who, held ? "请复核我的保单" : "你好", meta, NULL, 0);
            assert_int_equal(tg_json_str(t, "review_id", NULL) != NULL, held);
            json_decref(t);
        }
    }
    long st;
    json_t *j = call(gw.port, "GET", "/v1/fairness", "tg-rex", NULL, &st);
    assert_int_equal(st, 200);
    const json_t *a = json_array_get(json_object_get(j, "attributes"), 0);
    assert_string_equal(tg_json_str(a, "attribute", ""), "age_band");
    const json_t *g = json_object_get(a, "delivered");
    assert_int_equal(tg_json_int(g, "turns", 0), 120);
    assert_int_equal(tg_json_int(g, "tested_groups", 0), 4);
    assert_int_equal(tg_json_int(g, "pairs", 0), 6);
    assert_float_equal(tg_json_num(g, "dpd", 0), 5.0 / 30, 1e-9);
    assert_float_equal(tg_json_num(g, "gap", 0), 5.0 / 30, 1e-9);
    /* X² = Σ d²(1/E1 + 1/E0) with E1 = 20.5, E0 = 9.5 and d = 2.5, 0.5, 2.5, 0.5 */
    assert_float_equal(tg_json_num(g, "chi2", 0), 13 * (1 / 20.5 + 1 / 9.5), 1e-9);
    assert_float_equal(tg_json_num(g, "df", 0), 3, 0);
    assert_true(tg_json_num(g, "p", 0) > 0.5 && tg_json_num(g, "p", 0) < 0.6);
    assert_float_equal(tg_json_num(g, "level", 0), 0.95, 1e-12);
    assert_true(tg_json_num(g, "ci_low", 1) < 0.05); /* nothing proven above the limit */
    assert_false(tg_json_bool(g, "gate_closed", true));
    assert_false(tg_json_bool(json_object_get(j, "releases"), "frozen", true));
    /* nobody decided a review yet: that outcome has no rows, and no figures */
    const json_t *rv = json_object_get(a, "review_approved");
    assert_int_equal(tg_json_int(rv, "turns", -1), 0);
    assert_true(json_is_null(json_object_get(rv, "dpd")));
    assert_true(json_is_null(json_object_get(rv, "gap")));
    assert_false(tg_json_bool(rv, "gate_closed", true));
    json_decref(j);
    assert_int_equal(tg_h_stop(&gw, 5000), 0);
    cleanup(dir);
}

static void test_fairness_gate_freezes_releases(void **state)
{
    (void)state;
    char dir[64], cfg[256], text[4096], args[512];
    struct tg_h_hook hook;
    /* 25 review decisions, then the alert */
    assert_int_equal(tg_h_hook_start(&hook, 26, 0), 0);
    assert_non_null(tg_h_tmpdir(dir, sizeof(dir)));
    snprintf(text, sizeof(text),
             "%sfairness:\n  attributes: [{name: gender, values: [female, male]}, region]\n"
             "  limit: 0.05\n  min_group: 20\n  bootstrap: 200\n"
             "webhooks:\n  - url: http://127.0.0.1:%d/hook\n    secret: s3cr3t\n",
             base_config, hook.port);
    tg_h_write_file(dir, "fair.yaml", text, cfg, sizeof(cfg));
    struct tg_h_proc gw;
    assert_int_equal(tg_h_start_gateway(&gw, cfg, dir), 0);
    /* women's questions are held for review four times as often as men's (20 of 40
     * against 5 of 40), and reviewers reject every woman's draft and approve every
     * man's: real disparities in both outcomes */
    long st;
    for (int i = 0; i < 80; i++) {
        char who[32], meta[128], path[128];
        bool woman = i % 2 == 0, held = woman ? i % 4 == 0 : i % 16 == 1;
        snprintf(who, sizeof(who), "fair-%d", i);
        snprintf(meta, sizeof(meta), "{\"gender\":\"%s\",\"region\":\"%s\",\"tier\":\"std\"}",
                 woman ? "Female" : "male", i % 3 ? "north-east" : "south");
        json_t *t = turn(gw.port, who, held ? "请复核我的保单" : "你好", meta, NULL, 0);
        /* the attribute is nowhere in what the channel gets back */
        char *s = json_dumps(t, 0);
        assert_null(strstr(s, "emale"));
        free(s);
        assert_int_equal(tg_json_str(t, "review_id", NULL) != NULL, held);
        if (held) {
            snprintf(path, sizeof(path), "/v1/reviews/%s/decision",
                     tg_json_str(t, "review_id", ""));
            json_t *d = call(gw.port, "POST", path, "tg-rex",
                             woman ? "{\"action\":\"reject\",\"reason\":\"needs a check\"}"
                                   : "{\"action\":\"approve\",\"attestations\":[]}",
                             &st);
            assert_int_equal(st, 200);
            json_decref(d);
        }
        json_decref(t);
    }
    json_t *j = call(gw.port, "GET", "/v1/fairness", "tg-rex", NULL, &st);
    assert_int_equal(st, 200);
    const json_t *ga = json_array_get(json_object_get(j, "attributes"), 0);
    assert_string_equal(tg_json_str(ga, "attribute", ""), "gender");
    const json_t *g = json_object_get(ga, "delivered");
    assert_int_equal(tg_json_int(g, "turns", 0), 80);
    assert_true(tg_json_bool(g, "gate_closed", false));
    assert_float_equal(tg_json_num(g, "dpd", 0), 0.375, 1e-9);
    assert_true(tg_json_num(g, "ci_low", 0) > 0.05);
    size_t i;
    json_t *grp;
    int named = 0;
    json_array_foreach(json_object_get(g, "groups"), i, grp)
    {
        /* configured values are named again; "Female" and "female" are one group */
        if (!strcmp(tg_json_str(grp, "group", ""), "female")) {
            named++;
            assert_int_equal(tg_json_int(grp, "n", 0), 40);
            assert_int_equal(tg_json_int(grp, "selected", 0), 20);
        } else if (!strcmp(tg_json_str(grp, "group", ""), "male")) {
            named++;
            assert_int_equal(tg_json_int(grp, "selected", 0), 35);
        }
    }
    assert_int_equal(named, 2);
    /* the reviews: every woman's draft rejected, every man's approved — a gap of 1.0,
     * but 5 reviewed men are fewer than min_group, so that gate stays open */
    const json_t *rv = json_object_get(ga, "review_approved");
    assert_int_equal(tg_json_int(rv, "turns", 0), 25);
    assert_float_equal(tg_json_num(rv, "dpd", 0), 1.0, 1e-9);
    assert_int_equal(tg_json_int(rv, "min_group", 0), 5);
    assert_false(tg_json_bool(rv, "gate_closed", true));
    /* region: no values configured, so groups stay pseudonyms; no disparity by design */
    const json_t *r = json_array_get(json_object_get(j, "attributes"), 1);
    assert_string_equal(tg_json_str(r, "attribute", ""), "region");
    assert_int_equal(
        strlen(tg_json_str(
            json_array_get(json_object_get(json_object_get(r, "delivered"), "groups"), 0), "group",
            "")),
        32);
    const json_t *rel = json_object_get(j, "releases");
    assert_true(tg_json_bool(rel, "frozen", false));
    assert_string_equal(tg_json_str(rel, "by", ""), "trustgate");
    assert_non_null(
        strstr(tg_json_str(rel, "why", ""), "gender delivered demographic parity difference"));
    json_decref(j);
    /* the alert went out as a signed webhook */
    assert_int_equal(tg_h_hook_wait(&hook, 5000), 26);
    const char *line = strstr(hook.all, "{\"event\":\"fairness.gate_closed\"");
    assert_non_null(line);
    json_t *ev = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);
    assert_string_equal(tg_json_str(ev, "event", ""), "fairness.gate_closed");
    assert_string_equal(tg_json_str(ev, "attribute", ""), "gender");
    assert_string_equal(tg_json_str(ev, "outcome", ""), "delivered");
    assert_true(tg_str_has_prefix(hook.sig, "t="));
    json_decref(ev);
    /* only a supervisor unfreezes, and only with a reason */
    j = call(gw.port, "POST", "/v1/releases/unfreeze", "tg-rex", "{\"why\":\"looks fine to me\"}",
             &st);
    assert_int_equal(st, 403);
    json_decref(j);
    j = call(gw.port, "POST", "/v1/releases/unfreeze", "tg-sue", "{}", &st);
    assert_int_equal(st, 400);
    assert_string_equal(tg_json_str(json_object_get(j, "error"), "code", ""), "reason_required");
    json_decref(j);
    j = call(gw.port, "POST", "/v1/releases/unfreeze", "tg-sue",
             "{\"why\":\"holds follow a regulator's request for this product\"}", &st);
    assert_int_equal(st, 200);
    assert_false(tg_json_bool(j, "frozen", true));
    assert_string_equal(tg_json_str(j, "by", ""), "sue");
    json_decref(j);
    j = call(gw.port, "GET", "/v1/releases", "tg-sue", NULL, &st);
    assert_int_equal(st, 200);
    assert_false(tg_json_bool(json_object_get(j, "state"), "frozen", true));
    json_decref(j);
    /* the same evidence does not freeze again at once: the unfreeze holds */
    j = call(gw.port, "GET", "/v1/fairness", "tg-sue", NULL, &st);
    assert_true(tg_json_bool(
        json_object_get(json_array_get(json_object_get(j, "attributes"), 0), "delivered"),
        "gate_closed", false));
    assert_false(tg_json_bool(json_object_get(j, "releases"), "frozen", true));
    json_decref(j);
    assert_int_equal(tg_h_stop(&gw, 5000), 0);
    /* nothing the gateway stored holds the attribute's value */
    char *out = NULL;
    snprintf(args, sizeof(args), "cat %s/trustgate.db* | grep -a -c -i -e female -e north-east",
             dir);
    tg_h_run(args, &out);
    assert_int_equal(strtol(out, NULL, 10), 0);
    tg_free(out);
    /* the alert, the freeze and the unfreeze are in an intact audit log */
    snprintf(args, sizeof(args), "audit verify --data %s", dir);
    assert_int_equal(tg(args, &out), 0);
    tg_free(out);
    cleanup(dir);
}

/* ------------------------------------------------------------ simulated traffic */

#define SIM_CUSTOMERS 3000
#define SIM_LOOK 200 /* turns between looks */
#define SIM_NULLS 20 /* A/A experiments on the same traffic */
#define P_CONTROL 0.50
#define P_CANDIDATE 0.62

static uint64_t next(uint64_t *s)
{
    /* xorshift64*: deterministic outcomes for a seed */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static double uniform(uint64_t *s)
{
    return (double)(next(s) >> 11) / 9007199254740992.0;
}

static const char *sim_experiments =
    "experiments:\n  - name: lift\n    salt: lift\n"
    "    variants: [{name: control, share: 1}, {name: candidate, share: 1, config: cand.yaml}]\n";

/* The first look at which the candidate is significant (-1: never), for rows in order. */
static double stop_look(json_t *rows, const char *metric)
{
    char err[200];
    json_t *rep =
        tg_experiment_analyze(rows, "control", metric, 0.01, 0.02, NULL, err, sizeof(err));
    assert_non_null(rep);
    double d = tg_json_num(json_array_get(json_object_get(rep, "variants"), 0),
                           "first_significant_day", -1);
    json_decref(rep);
    return d;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_simulated_experiment_through_the_daemon(void **state)
{
    (void)state;
    char dir[64], cfg[256], cand[256], text[8192], args[1024];
    assert_non_null(tg_h_tmpdir(dir, sizeof(dir)));
    size_t off = (size_t)snprintf(text, sizeof(text), "%s%s", base_config, sim_experiments);
    for (int k = 1; k <= SIM_NULLS; k++)
        off += (size_t)snprintf(text + off, sizeof(text) - off,
                                "  - name: aa%02d\n    salt: null-%d\n"
                                "    variants: [{name: control, share: 1}, {name: b, share: 1}]\n",
                                k, k);
    tg_h_write_file(dir, "sim.yaml", text, cfg, sizeof(cfg));
    tg_h_write_file(dir, "cand.yaml", candidate_config, cand, sizeof(cand));
    const struct tg_experiment_conf *lift_exp = NULL;
    struct tg_variant_conf lift_v[] = {{.name = "control", .share = 1},
                                       {.name = "candidate", .share = 1}};
    const struct tg_experiment_conf lift = {
        .name = "lift", .salt = "lift", .variants = lift_v, .n_variants = 2};
    lift_exp = &lift;

    /* 1. what the generator's experiment should do: 400 simulations of it in process,
     * with the same customers (so the same assignment) and fresh outcomes */
    enum { SIMS = 400 };
    double stops[SIMS];
    int found = 0, false_pos = 0;
    for (int s = 0; s < SIMS; s++) {
        uint64_t rng = 0x9E3779B97F4A7C15ULL + (uint64_t)s * 7919;
        json_t *rows = json_array(), *nulls = json_array();
        for (int i = 0; i < SIM_CUSTOMERS; i++) {
            char who[32];
            snprintf(who, sizeof(who), "sim-%d", i);
            const char *v = tg_experiment_assign(lift_exp, who);
            bool cand_arm = !strcmp(v, "candidate");
            int good = uniform(&rng) < (cand_arm ? P_CANDIDATE : P_CONTROL);
            int good0 = uniform(&rng) < P_CONTROL; /* the same arms, no lift */
            json_array_append_new(rows, json_pack("{s:s, s:i, s:i}", "variant", v, "day",
                                                  i / SIM_LOOK, "resolved", good));
            json_array_append_new(nulls, json_pack("{s:s, s:i, s:i}", "variant", v, "day",
                                                   i / SIM_LOOK, "resolved", good0));
        }
        stops[s] = stop_look(rows, "resolved");
        found += stops[s] >= 0;
        false_pos += stop_look(nulls, "resolved") >= 0;
        if (stops[s] < 0)
            stops[s] = 1e9; /* never: after every look */
        json_decref(rows);
        json_decref(nulls);
    }
    qsort(stops, SIMS, sizeof(double), cmp_double);
    double lo = stops[SIMS / 40], hi = stops[SIMS - 1 - SIMS / 40];
    print_message("simulated: lift found in %d of %d runs; stopping look 2.5%%..97.5%%: %.0f..%.0f "
                  "(1e9: never); null experiments significant: %d of %d (FPR %.4f)\n",
                  found, SIMS, lo, hi, false_pos, SIMS, (double)false_pos / SIMS);
    assert_true(found >= SIMS * 8 / 10); /* the design has the power it was chosen for */
    assert_true(false_pos <= SIMS * 3 / 100);

    /* 2. the same generator through the daemon: customers ask, get an answer from
     * the variant they are assigned, and rate it */
    struct tg_h_proc gw;
    assert_int_equal(tg_h_start_gateway(&gw, cfg, dir), 0);
    uint64_t rng = 0x5DEECE66DULL;
    for (int i = 0; i < SIM_CUSTOMERS; i++) {
        char who[32], body[256];
        long st;
        snprintf(who, sizeof(who), "sim-%d", i);
        json_t *t = turn(gw.port, who, "你好", NULL, NULL, 0);
        const char *v = tg_json_str(json_object_get(t, "experiments"), "lift", "");
        assert_string_equal(v, tg_experiment_assign(lift_exp, who));
        bool good = uniform(&rng) < (!strcmp(v, "candidate") ? P_CANDIDATE : P_CONTROL);
        snprintf(body, sizeof(body), "{\"turn_id\":\"%s\",\"rating\":\"%s\"}",
                 tg_json_str(t, "turn_id", ""), good ? "good" : "bad");
        json_t *fb = call(gw.port, "POST", "/v1/feedback", "tg-t", body, &st);
        assert_int_equal(st, 201);
        json_decref(fb);
        json_decref(t);
    }
    assert_int_equal(tg_h_stop(&gw, 5000), 0);

    /* 3. the rows the daemon recorded, read as an operator would */
    char rows_path[256], *out = NULL;
    snprintf(rows_path, sizeof(rows_path), "%s/lift.jsonl", dir);
    snprintf(args, sizeof(args), "%s ab export lift -c %s --data %s --look-turns %d > %s", bin, cfg,
             dir, SIM_LOOK, rows_path);
    assert_int_equal(tg_h_run(args, &out), 0);
    tg_free(out);
    snprintf(args, sizeof(args),
             "report --data %s --control control --metric resolved --json --html %s/lift.html",
             rows_path, dir);
    char full[1200];
    snprintf(full, sizeof(full), "ab %s", args);
    assert_int_equal(tg(full, &out), 0);
    json_t *rep = json_loads(strchr(out, '{'), JSON_DISABLE_EOF_CHECK, NULL);
    tg_free(out);
    assert_non_null(rep);
    const json_t *cv = json_array_get(json_object_get(rep, "variants"), 0);
    double stop = tg_json_num(cv, "first_significant_day", -1);
    print_message("through the daemon: candidate %.4f vs control %.4f, significant from look %.0f "
                  "(always-valid p %.2g)\n",
                  tg_json_num(cv, "mean", 0), tg_json_num(cv, "control_mean", 0), stop,
                  tg_json_num(cv, "p_always_valid", 1));
    assert_false(tg_json_bool(json_object_get(rep, "srm"), "mismatch", true));
    assert_true(stop >= lo && stop <= hi);
    json_decref(rep);

    /* 4. the twenty A/A experiments on the same traffic: quiet at alpha 0.01 */
    int loud = 0;
    for (int k = 1; k <= SIM_NULLS; k++) {
        snprintf(args, sizeof(args), "%s ab export aa%02d -c %s --data %s --look-turns %d > %s",
                 bin, k, cfg, dir, SIM_LOOK, rows_path);
        assert_int_equal(tg_h_run(args, &out), 0);
        tg_free(out);
        snprintf(full, sizeof(full), "ab report --data %s --control control --metric resolved",
                 rows_path);
        assert_int_equal(tg(full, &out), 0);
        loud += strstr(out, "(significant from day") != NULL;
        tg_free(out);
    }
    print_message("A/A experiments through the daemon significant at 0.01: %d of %d\n", loud,
                  SIM_NULLS);
    assert_true(loud <= 2);
    cleanup(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_variant_answered_by_a_release),
        cmocka_unit_test(test_promotion_through_the_server),
        cmocka_unit_test(test_fairness_gate_freezes_releases),
        cmocka_unit_test(test_fairness_equal_mixes_stay_open),
        cmocka_unit_test(test_simulated_experiment_through_the_daemon),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
