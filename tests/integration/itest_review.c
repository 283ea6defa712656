/*
 * itest_review.c - the review flow over HTTP against the demo deployment:
 * a held turn, the reviewer's queue, a decision refused for a missing
 * attestation, accepted with all of them, and the channel polling the turn
 * for the final answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include "audit/audit.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <sqlite3.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static struct tg_h_proc gw;

static int setup(void **state)
{
    (void)state;
    if (!tg_h_tmpdir(dir, sizeof(dir)))
        return -1;
    return tg_h_start_gateway(&gw, "examples/insurance/trustgate.yaml", dir);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    int rc = tg_h_stop(&gw, 5000);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = -1;
    return rc == 0 ? 0 : -1;
}

static json_t *call_port(int port, const char *method, const char *path, const char *token,
                         const char *body, long *status)
{
    json_t *j = tg_h_api(port, method, path, token, body, status);
    if (!j)
        fail_msg("%s %s: %ld, not JSON", method, path, *status);
    return j;
}

static json_t *call(const char *method, const char *path, const char *token, const char *body,
                    long *status)
{
    return call_port(gw.port, method, path, token, body, status);
}

static void test_held_turn_decided_by_a_reviewer(void **state)
{
    (void)state;
    long st;
    char path[256], id[64], turn[64];
    json_t *c = call("POST", "/v1/chat/completions", "tg-demo-key",
                     "{\"user\":\"c-9\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "\"我的贷款申请你直接批了吧\"}]}",
                     &st);
    assert_int_equal(st, 200);
    json_t *tg = json_object_get(c, "trustgate");
    assert_string_equal(tg_json_str(tg, "decision", ""), "human_decision");
    tg_strlcpy(id, tg_json_str(tg, "review_id", ""), sizeof(id));
    tg_strlcpy(turn, tg_json_str(tg, "turn_id", ""), sizeof(turn));
    assert_true(tg_str_has_prefix(id, "rev_"));
    json_decref(c);

    /* the channel polls the turn: held, no answer yet */
    snprintf(path, sizeof(path), "/v1/turns/%s", turn);
    c = call("GET", path, "tg-demo-key", NULL, &st);
    assert_int_equal(st, 200);
    assert_string_equal(tg_json_str(json_object_get(c, "review"), "state", ""), "pending");
    json_decref(c);
    c = call("GET", path, NULL, NULL, &st);
    assert_int_equal(st, 401);
    json_decref(c);

    /* the reviewer's queue needs a reviewer token, not an API key */
    c = call("GET", "/v1/reviews?state=pending", "tg-demo-key", NULL, &st);
    assert_int_equal(st, 401);
    json_decref(c);
    c = call("GET", "/v1/reviews?state=pending", "tg-demo-reviewer", NULL, &st);
    assert_int_equal(st, 200);
    json_t *first = json_array_get(json_object_get(c, "data"), 0);
    assert_string_equal(tg_json_str(first, "id", ""), id);
    assert_int_equal(json_array_size(json_object_get(first, "required_attestations")), 2);
    json_decref(c);

    /* one attestation short: refused, whatever the client claims */
    snprintf(path, sizeof(path), "/v1/reviews/%s/decision", id);
    c = call("POST", path, "tg-demo-reviewer",
             "{\"action\":\"edit\",\"text\":\"您的申请已进入授信审批。\","
             "\"attestations\":[\"已核实收入流水真实性\"]}",
             &st);
    assert_int_equal(st, 422);
    assert_non_null(
        strstr(tg_json_str(json_object_get(c, "error"), "message", ""), "已评估突发失业风险"));
    json_decref(c);
    c = call("POST", path, "tg-demo-reviewer", "{\"action\":\"maybe\"}", &st);
    assert_int_equal(st, 400);
    json_decref(c);
    /* an agent sees the queues but does not decide */
    c = call("GET", "/v1/reviews", "tg-demo-agent", NULL, &st);
    assert_int_equal(st, 200);
    json_decref(c);
    c = call("POST", path, "tg-demo-agent",
             "{\"action\":\"edit\",\"text\":\"x\","
             "\"attestations\":[\"已核实收入流水真实性\",\"已评估突发失业风险\"]}",
             &st);
    assert_int_equal(st, 403);
    json_decref(c);
    c = call("POST", path, "tg-demo-reviewer",
             "{\"action\":\"edit\",\"text\":\"您的申请已进入授信审批。\","
             "\"attestations\":[\"已核实收入流水真实性\",\"已评估突发失业风险\"]}",
             &st);
    assert_int_equal(st, 200);
    assert_string_equal(tg_json_str(c, "state", ""), "decided");
    assert_string_equal(tg_json_str(json_object_get(c, "decision"), "actor", ""), "reviewer1");
    json_decref(c);
    /* decided once */
    c = call("POST", path, "tg-demo-reviewer",
             "{\"action\":\"reject\",\"reason\":\"x\","
             "\"attestations\":[\"已核实收入流水真实性\",\"已评估突发失业风险\"]}",
             &st);
    assert_int_equal(st, 409);
    json_decref(c);

    /* and the channel finds the final answer */
    snprintf(path, sizeof(path), "/v1/turns/%s", turn);
    c = call("GET", path, "tg-demo-key", NULL, &st);
    json_t *rv = json_object_get(c, "review");
    assert_string_equal(tg_json_str(rv, "state", ""), "decided");
    assert_string_equal(tg_json_str(rv, "answer", ""), "您的申请已进入授信审批。");
    json_decref(c);
}

static void test_large_amount_review_approves_the_draft(void **state)
{
    (void)state;
    long st;
    char path[256], id[64];
    json_t *c = call(
        "POST", "/v1/chat/completions", "tg-demo-key",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"我想投资60万，买什么理财好\"}]}", &st);
    json_t *tg = json_object_get(c, "trustgate");
    assert_string_equal(tg_json_str(tg, "decision", ""), "review");
    /* the customer is told at once that a person will answer */
    const char *told =
        tg_json_str(json_object_get(json_array_get(json_object_get(c, "choices"), 0), "message"),
                    "content", "");
    assert_non_null(strstr(told, "人工复核"));
    tg_strlcpy(id, tg_json_str(tg, "review_id", ""), sizeof(id));
    json_decref(c);
    snprintf(path, sizeof(path), "/v1/reviews/%s", id);
    c = call("GET", path, "tg-demo-reviewer", NULL, &st);
    assert_int_equal(st, 200);
    const char *draft = tg_json_str(c, "draft", NULL);
    assert_non_null(draft); /* a review holds the AI's draft for approval */
    char want[2048];
    tg_strlcpy(want, draft, sizeof(want));
    json_decref(c);
    snprintf(path, sizeof(path), "/v1/reviews/%s/decision", id);
    /* the demo's wealth queue asks the reviewer to affirm the suitability check */
    c = call("POST", path, "tg-demo-reviewer", "{\"action\":\"approve\",\"attestations\":[]}", &st);
    assert_int_equal(st, 422);
    assert_non_null(strstr(tg_json_str(json_object_get(c, "error"), "message", ""),
                           "已核实客户风险承受能力与产品匹配"));
    json_decref(c);
    c = call("POST", path, "tg-demo-reviewer",
             "{\"action\":\"approve\",\"attestations\":[\"已核实客户风险承受能力与产品匹配\"]}",
             &st);
    assert_int_equal(st, 200);
    assert_string_equal(tg_json_str(c, "answer", ""), want);
    /* the draft is the answer the model wrote, not the holding reply */
    assert_null(strstr(want, "请稍候"));
    json_decref(c);
    c = call("GET", "/v1/reviews/rev_nothing", "tg-demo-reviewer", NULL, &st);
    assert_int_equal(st, 404);
    json_decref(c);
}

static const char *sla_config =
    "auth:\n  api_keys:\n    - name: t\n      key: tg-t\n"
    "review:\n  warn_before: 500ms\n"
    "users:\n  - name: r1\n    role: reviewer\n    token: tg-r1\n"
    "  - name: r2\n    role: reviewer\n    token: tg-r2\n"
    "backends:\n  - name: s\n    type: script\n    reply: 建议配置稳健理财\n"
    "route:\n  backend: s\n"
    "policies:\n  - id: hold\n    description: hold for review\n    when:\n"
    "      keywords: [复核]\n    then:\n      - review: {sla: 1s}\n      - tag: test_hold\n"
    "  - id: slow\n    description: a long review\n    when:\n"
    "      keywords: [慢审]\n    then:\n      - review: {sla: 60s}\n";

/* POST a chat to a gateway; returns the review id of the held turn in id. */
static void held(int port, const char *text, char id[64], char turn[64])
{
    struct tg_h_resp r;
    char body[256];
    snprintf(body, sizeof(body), "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", text);
    assert_int_equal(tg_h_chat(port, "tg-t", body, &r), 0);
    json_t *j = json_loads(r.body, 0, NULL);
    json_t *tg = json_object_get(j, "trustgate");
    assert_string_equal(tg_json_str(tg, "decision", ""), "review");
    tg_strlcpy(id, tg_json_str(tg, "review_id", ""), 64);
    tg_strlcpy(turn, tg_json_str(tg, "turn_id", ""), 64);
    json_decref(j);
    tg_h_resp_free(&r);
}

static json_t *get_json(int port, const char *path, const char *token)
{
    char url[256], auth[96];
    struct tg_h_resp r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    const char *hdrs[] = {auth, NULL};
    assert_int_equal(tg_h_http("GET", url, hdrs, NULL, 0, 0, &r), 0);
    json_t *j = json_loads(r.body, 0, NULL);
    tg_h_resp_free(&r);
    return j;
}

static bool handed_off(int port, const char *id)
{
    json_t *l = get_json(port, "/v1/handoffs", "tg-r1");
    size_t i;
    json_t *t;
    bool found = false;
    json_array_foreach(json_object_get(l, "data"), i, t)
    {
        if (strcmp(tg_json_str(t, "id", ""), id) == 0) {
            json_t *tags = json_object_get(t, "tags");
            size_t k;
            json_t *tag;
            json_array_foreach(tags, k, tag) found |=
                !strcmp(json_string_value(tag), "review_sla_breached");
        }
    }
    json_decref(l);
    return found;
}

static void test_sla_breach_hands_off_also_across_a_restart(void **state)
{
    (void)state;
    char sdir[64], cfg[256], id[64], turn[64], id2[64], turn2[64], path[128];
    struct tg_h_proc g;
    assert_non_null(tg_h_tmpdir(sdir, sizeof(sdir)));
    tg_h_write_file(sdir, "sla.yaml", sla_config, cfg, sizeof(cfg));
    assert_int_equal(tg_h_start_gateway(&g, cfg, sdir), 0);
    held(g.port, "请帮我复核这笔理财", id, turn);
    assert_false(handed_off(g.port, id));
    usleep(700000);
    /* half a second before the deadline the task carries a warning */
    snprintf(path, sizeof(path), "/v1/reviews/%s", id);
    json_t *w = get_json(g.port, path, "tg-r1");
    assert_true(tg_json_bool(w, "sla_warning", false));
    json_decref(w);
    usleep(900000);
    /* the deadline passed with nobody deciding: a human agent takes over */
    assert_true(handed_off(g.port, id));
    snprintf(path, sizeof(path), "/v1/turns/%s", turn);
    json_t *t = get_json(g.port, path, "tg-t");
    json_t *rv = json_object_get(t, "review");
    assert_string_equal(tg_json_str(rv, "state", ""), "handed_off");
    assert_non_null(strstr(tg_json_str(rv, "answer", ""), "人工客服"));
    json_decref(t);

    /* a second held turn, then the server stops before its deadline ... */
    held(g.port, "再复核一次", id2, turn2);
    assert_int_equal(tg_h_stop(&g, 5000), 0);
    usleep(1300000);
    /* ... and the restarted server hands it off at once */
    assert_int_equal(tg_h_start_gateway(&g, cfg, sdir), 0);
    assert_true(handed_off(g.port, id2));
    assert_int_equal(tg_h_stop(&g, 5000), 0);
    /* every hand-off is on the record */
    char cmd[512], bin[256], *out = NULL;
    snprintf(cmd, sizeof(cmd), "%s audit verify --data %s --json",
             tg_h_bin("trustgate", bin, sizeof(bin)), sdir);
    assert_int_equal(tg_h_run(cmd, &out), 0);
    json_t *rep = json_loads(out, 0, NULL);
    assert_true(tg_json_bool(rep, "intact", false));
    assert_int_equal(tg_json_int(rep, "size", 0), 4); /* two turns, two hand-offs */
    json_decref(rep);
    tg_free(out);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", sdir);
    assert_int_equal(system(cmd), 0);
}

static long post_json(int port, const char *path, const char *token, const char *body)
{
    char url[256], auth[96];
    struct tg_h_resp r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    const char *hdrs[] = {auth, "Content-Type: application/json", NULL};
    assert_int_equal(tg_h_http("POST", url, hdrs, body, strlen(body), 0, &r), 0);
    long st = r.status;
    tg_h_resp_free(&r);
    return st;
}

static void test_claims_and_four_eyes(void **state)
{
    (void)state;
    char sdir[64], cfg[256], path[128];
    struct tg_h_proc g;
    struct tg_h_resp r;
    assert_non_null(tg_h_tmpdir(sdir, sizeof(sdir)));
    tg_h_write_file(sdir, "sla.yaml", sla_config, cfg, sizeof(cfg));
    assert_int_equal(tg_h_start_gateway(&g, cfg, sdir), 0);
    /* r2 is also a customer here and starts the turn */
    assert_int_equal(tg_h_chat(g.port, "tg-t",
                               "{\"user\":\"r2\",\"messages\":[{\"role\":\"user\",\"content\":"
                               "\"请慢审这笔\"}]}",
                               &r),
                     0);
    json_t *j = json_loads(r.body, 0, NULL);
    char id[64];
    tg_strlcpy(id, tg_json_str(json_object_get(j, "trustgate"), "review_id", ""), sizeof(id));
    json_decref(j);
    tg_h_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/reviews/%s/claim", id);
    assert_int_equal(post_json(g.port, path, "tg-r1", "{}"), 200);
    assert_int_equal(post_json(g.port, path, "tg-r2", "{}"), 409); /* one reviewer at a time */
    snprintf(path, sizeof(path), "/v1/reviews/%s/decision", id);
    const char *approve = "{\"action\":\"approve\",\"attestations\":[]}";
    assert_int_equal(post_json(g.port, path, "tg-r2", approve), 409); /* r1 holds the claim */
    snprintf(path, sizeof(path), "/v1/reviews/%s/claim", id);
    assert_int_equal(post_json(g.port, path, "tg-r1", "{}"), 200); /* renewing one's own claim */
    snprintf(path, sizeof(path), "/v1/reviews/%s/decision", id);
    assert_int_equal(post_json(g.port, path, "tg-r1", approve), 200);

    /* four eyes: the person who started a turn may not decide it */
    assert_int_equal(tg_h_chat(g.port, "tg-t",
                               "{\"user\":\"r2\",\"messages\":[{\"role\":\"user\",\"content\":"
                               "\"请慢审第二笔\"}]}",
                               &r),
                     0);
    j = json_loads(r.body, 0, NULL);
    tg_strlcpy(id, tg_json_str(json_object_get(j, "trustgate"), "review_id", ""), sizeof(id));
    json_decref(j);
    tg_h_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/reviews/%s/decision", id);
    assert_int_equal(post_json(g.port, path, "tg-r2", approve), 403);
    assert_int_equal(post_json(g.port, path, "tg-r1", approve), 200);
    assert_int_equal(tg_h_stop(&g, 5000), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", sdir);
    assert_int_equal(system(cmd), 0);
}

struct waiting {
    int port;
    const char *text;
    const char *wait;
    struct tg_h_resp r;
};

static void *wait_for_answer(void *arg)
{
    struct waiting *w = arg;
    char url[128], body[256], hdr[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", w->port);
    snprintf(body, sizeof(body), "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             w->text);
    snprintf(hdr, sizeof(hdr), "X-Trustgate-Wait: %s", w->wait);
    const char *hdrs[] = {"Authorization: Bearer tg-t", "Content-Type: application/json", hdr,
                          NULL};
    tg_h_http("POST", url, hdrs, body, strlen(body), 30000, &w->r);
    return NULL;
}

static const char *content_of(const char *body)
{
    static char buf[1024];
    json_t *j = json_loads(body, 0, NULL);
    tg_strlcpy(
        buf,
        tg_json_str(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"),
                    "content", ""),
        sizeof(buf));
    json_decref(j);
    return buf;
}

static void test_long_poll_gets_the_final_answer(void **state)
{
    (void)state;
    char sdir[64], cfg[256], path[128];
    struct tg_h_proc g;
    pthread_t th;
    assert_non_null(tg_h_tmpdir(sdir, sizeof(sdir)));
    tg_h_write_file(sdir, "sla.yaml", sla_config, cfg, sizeof(cfg));
    assert_int_equal(tg_h_start_gateway(&g, cfg, sdir), 0);

    /* 1. the reviewer decides while the customer's request waits */
    struct waiting w = {.port = g.port, .text = "请慢审这一笔", .wait = "20"};
    assert_int_equal(pthread_create(&th, NULL, wait_for_answer, &w), 0);
    char id[64] = "";
    for (int i = 0; i < 100 && !id[0]; i++) {
        usleep(50000);
        json_t *l = get_json(g.port, "/v1/reviews?state=pending", "tg-r1");
        json_t *t = json_array_get(json_object_get(l, "data"), 0);
        if (t)
            tg_strlcpy(id, tg_json_str(t, "id", ""), sizeof(id));
        json_decref(l);
    }
    assert_true(id[0] != '\0');
    snprintf(path, sizeof(path), "/v1/reviews/%s/decision", id);
    assert_int_equal(post_json(g.port, path, "tg-r1",
                               "{\"action\":\"edit\",\"text\":\"人工答复：建议分散配置。\","
                               "\"attestations\":[]}"),
                     200);
    pthread_join(th, NULL);
    assert_int_equal(w.r.status, 200);
    assert_string_equal(content_of(w.r.body), "人工答复：建议分散配置。");
    assert_non_null(strstr(w.r.body, "\"state\":\"decided\""));
    assert_true(w.r.seconds < 10);
    tg_h_resp_free(&w.r);

    /* 2. nobody decides within the wait: the holding reply */
    struct waiting w2 = {.port = g.port, .text = "请慢审另一笔", .wait = "1"};
    wait_for_answer(&w2);
    assert_int_equal(w2.r.status, 200);
    assert_non_null(strstr(content_of(w2.r.body), "人工复核"));
    assert_true(w2.r.seconds >= 0.9 && w2.r.seconds < 5);
    tg_h_resp_free(&w2.r);

    /* 3. the SLA runs out while waiting: a human agent takes over */
    struct waiting w3 = {.port = g.port, .text = "请复核这个", .wait = "10"};
    wait_for_answer(&w3);
    assert_int_equal(w3.r.status, 200);
    assert_non_null(strstr(content_of(w3.r.body), "人工客服"));
    assert_non_null(strstr(w3.r.body, "\"state\":\"handed_off\""));
    assert_true(w3.r.seconds < 5);
    tg_h_resp_free(&w3.r);

    assert_int_equal(tg_h_stop(&g, 5000), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", sdir);
    assert_int_equal(system(cmd), 0);
}

static void test_webhook_signed_and_retried(void **state)
{
    (void)state;
    char sdir[64], cfg[256], text[2048];
    struct tg_h_proc g;
    struct tg_h_hook rc;
    /* the first delivery fails (500), the second is taken */
    assert_int_equal(tg_h_hook_start(&rc, 2, 1), 0);

    assert_non_null(tg_h_tmpdir(sdir, sizeof(sdir)));
    snprintf(text, sizeof(text),
             "%swebhooks:\n  - url: http://127.0.0.1:%d/hook\n    secret: s3cr3t\n", sla_config,
             rc.port);
    tg_h_write_file(sdir, "hook.yaml", text, cfg, sizeof(cfg));
    assert_int_equal(tg_h_start_gateway(&g, cfg, sdir), 0);
    char id[64], turn[64];
    held(g.port, "请复核一下", id, turn);
    /* SLA 1 s, then the first delivery fails and the retry succeeds */
    assert_int_equal(tg_h_hook_wait(&rc, 5000), 2);
    json_t *ev = json_loads(rc.body, 0, NULL);
    assert_string_equal(tg_json_str(ev, "event", ""), "review.handed_off");
    assert_string_equal(tg_json_str(ev, "review_id", ""), id);
    assert_string_equal(tg_json_str(ev, "turn_id", ""), turn);
    json_decref(ev);
    /* t=<unix>,v1=<hex HMAC-SHA256(secret, t "." body)> */
    char *comma = strchr(rc.sig, ',');
    assert_non_null(comma);
    assert_true(tg_str_has_prefix(rc.sig, "t=") && tg_str_has_prefix(comma + 1, "v1="));
    char signed_part[8600], hex[65];
    uint8_t mac[32];
    snprintf(signed_part, sizeof(signed_part), "%.*s.%s", (int)(comma - rc.sig - 2), rc.sig + 2,
             rc.body);
    tg_hmac_sha256("s3cr3t", 6, signed_part, strlen(signed_part), mac);
    tg_hex_encode(mac, 32, hex);
    assert_string_equal(comma + 4, hex);
    assert_int_equal(tg_h_stop(&g, 5000), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", sdir);
    assert_int_equal(system(cmd), 0);
}

/* One message from customer who; the response's trustgate object, the answer in answer. */
static json_t *say(int port, const char *who, const char *text, char *answer, size_t answer_len)
{
    char body[512];
    long st;
    snprintf(body, sizeof(body),
             "{\"user\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", who, text);
    json_t *j = call_port(port, "POST", "/v1/chat/completions", "tg-t", body, &st);
    assert_int_equal(st, 200);
    tg_strlcpy(
        answer,
        tg_json_str(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"),
                    "content", ""),
        answer_len);
    json_t *tg = json_incref(json_object_get(j, "trustgate"));
    json_decref(j);
    return tg;
}

/* Once a conversation is with a person, the customer's later messages go to
 * that agent (masked, on the task, no model answering), also after a
 * restart, until the agent closes the hand-off; then the AI answers again. */
static void test_messages_after_a_handoff_go_to_the_agent(void **state)
{
    (void)state;
    char sdir[64], cfg[256], text[2048], id[64], path[128], answer[512];
    struct tg_h_proc g;
    long st;
    assert_non_null(tg_h_tmpdir(sdir, sizeof(sdir)));
    /* the same deployment with an agent among the users */
    const char *users = strstr(sla_config, "users:\n");
    assert_non_null(users);
    snprintf(text, sizeof(text), "%.*susers:\n  - name: a1\n    role: agent\n    token: tg-a1\n%s",
             (int)(users - sla_config), sla_config, users + 7);
    tg_h_write_file(sdir, "agent.yaml", text, cfg, sizeof(cfg));
    assert_int_equal(tg_h_start_gateway(&g, cfg, sdir), 0);
    json_t *t = say(g.port, "cust-h", "请帮我复核这笔理财", answer, sizeof(answer));
    assert_string_equal(tg_json_str(t, "decision", ""), "review");
    tg_strlcpy(id, tg_json_str(t, "review_id", ""), sizeof(id));
    json_decref(t);
    for (int i = 0; i < 60 && !handed_off(g.port, id); i++)
        usleep(50000);
    assert_true(handed_off(g.port, id));
    /* with a person now: the next message goes to the agent */
    t = say(g.port, "cust-h", "我的电话是13812345678，请尽快联系我", answer, sizeof(answer));
    assert_string_equal(tg_json_str(t, "decision", ""), "handoff");
    assert_string_equal(tg_json_str(t, "review_id", ""), id);
    assert_non_null(strstr(answer, "人工"));
    json_decref(t);
    snprintf(path, sizeof(path), "/v1/reviews/%s", id);
    json_t *task = call_port(g.port, "GET", path, "tg-a1", NULL, &st);
    const json_t *msgs = json_object_get(task, "customer_messages");
    assert_int_equal(json_array_size(msgs), 1);
    const char *said = tg_json_str(json_array_get(msgs, 0), "text", "");
    assert_non_null(strstr(said, "请尽快联系我"));
    assert_null(strstr(said, "13812345678")); /* personal data masked, as the store keeps it */
    json_decref(task);
    /* across a restart the conversation stays with the agent */
    assert_int_equal(tg_h_stop(&g, 5000), 0);
    assert_int_equal(tg_h_start_gateway(&g, cfg, sdir), 0);
    t = say(g.port, "cust-h", "还在吗？", answer, sizeof(answer));
    assert_string_equal(tg_json_str(t, "decision", ""), "handoff");
    assert_string_equal(tg_json_str(t, "review_id", ""), id);
    json_decref(t);
    /* another customer is still answered by the AI */
    t = say(g.port, "cust-other", "你好", answer, sizeof(answer));
    assert_string_equal(tg_json_str(t, "decision", ""), "deliver");
    json_decref(t);
    /* the agent answers and closes: the AI answers this customer again */
    snprintf(path, sizeof(path), "/v1/handoffs/%s/reply", id);
    task = call_port(g.port, "POST", path, "tg-a1", "{\"text\":\"已为您处理完毕\",\"close\":true}",
                     &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_array_size(json_object_get(task, "customer_messages")), 2);
    json_decref(task);
    t = say(g.port, "cust-h", "你好", answer, sizeof(answer));
    assert_string_equal(tg_json_str(t, "decision", ""), "deliver");
    assert_string_equal(answer, "建议配置稳健理财");
    json_decref(t);
    assert_int_equal(tg_h_stop(&g, 5000), 0);
    char cmd[512], bin[256], *out = NULL;
    snprintf(cmd, sizeof(cmd), "%s audit verify --data %s", tg_h_bin("trustgate", bin, sizeof(bin)),
             sdir);
    assert_int_equal(tg_h_run(cmd, &out), 0);
    tg_free(out);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", sdir);
    assert_int_equal(system(cmd), 0);
}

/* An auditor holds the log to its word: signed checkpoints, a consistency
 * proof that the log only grew, an inclusion proof of a leaf; a log rewritten
 * under the same key (history replaced) is caught. */
static void test_auditor_checks_the_log(void **state)
{
    (void)state;
    char sdir[64], sdir2[64], cfg[256], cfg2[256], cmd[2048], bin[256], url[64], key[256];
    char *out = NULL, answer[256];
    struct tg_h_proc g, g2;
    long st;
    tg_h_bin("trustgate", bin, sizeof(bin));
    assert_non_null(tg_h_tmpdir(sdir, sizeof(sdir)));
    tg_h_write_file(sdir, "sla.yaml", sla_config, cfg, sizeof(cfg));
    assert_int_equal(tg_h_start_gateway(&g, cfg, sdir), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", g.port);
    for (int i = 0; i < 3; i++)
        json_decref(say(g.port, "aud-1", "你好", answer, sizeof(answer)));
    /* first contact: the key is taken on trust, the checkpoint kept */
    snprintf(cmd, sizeof(cmd), "%s audit check --url %s --token tg-r1 --save %s/c1 2>&1", bin, url,
             sdir);
    assert_int_equal(tg_h_run(cmd, &out), 0);
    assert_non_null(strstr(out, "checkpoint: 3 leaves"));
    tg_free(out);
    struct tg_h_resp r;
    char kurl[128];
    snprintf(kurl, sizeof(kurl), "%s/v1/audit/key", url);
    const char *auth[] = {"Authorization: Bearer tg-r1", NULL};
    assert_int_equal(tg_h_http("GET", kurl, auth, NULL, 0, 0, &r), 0);
    assert_int_equal(r.status, 200);
    tg_strlcpy(key, r.body, sizeof(key));
    key[strcspn(key, "\n")] = '\0';
    tg_h_resp_free(&r);
    assert_true(tg_str_has_prefix(key, "trustgate+"));
    /* the log grows; the new checkpoint is consistent with the old */
    for (int i = 0; i < 4; i++)
        json_decref(say(g.port, "aud-1", "还有问题", answer, sizeof(answer)));
    snprintf(cmd, sizeof(cmd),
             "%s audit check --url %s --token tg-r1 --key '%s' --old %s/c1 --save %s/c2 2>&1", bin,
             url, key, sdir, sdir);
    assert_int_equal(tg_h_run(cmd, &out), 0);
    assert_non_null(strstr(out, "consistent: the log of 7 leaves extends the one of 3"));
    tg_free(out);
    /* leaf 2 is in the tree of the new checkpoint */
    char *note = NULL, err[256];
    snprintf(cmd, sizeof(cmd), "cat %s/c2", sdir);
    assert_int_equal(tg_h_run(cmd, &note), 0);
    uint64_t size = 0;
    uint8_t root[32], leaf[32], proof[16][32];
    assert_int_equal(
        tg_audit_checkpoint_verify(note, strlen(note), key, &size, root, err, sizeof(err)), TG_OK);
    tg_free(note);
    assert_int_equal(size, 7);
    json_t *inc =
        call_port(g.port, "GET", "/v1/audit/inclusion?index=2&size=7", "tg-r1", NULL, &st);
    assert_int_equal(st, 200);
    const json_t *pth = json_object_get(inc, "path");
    assert_int_equal(tg_hex_decode(tg_json_str(inc, "leaf_hash", ""), leaf, 32), TG_OK);
    for (size_t i = 0; i < json_array_size(pth); i++)
        assert_int_equal(tg_hex_decode(json_string_value(json_array_get(pth, i)), proof[i], 32),
                         TG_OK);
    assert_true(tg_audit_inclusion_verify(leaf, 2, 7, (const uint8_t(*)[32])proof,
                                          json_array_size(pth), root));
    json_decref(inc);
    /* malformed asks, and nobody without a token */
    json_t *j = call_port(g.port, "GET", "/v1/audit/consistency?from=9", "tg-r1", NULL, &st);
    assert_int_equal(st, 400);
    json_decref(j);
    j = call_port(g.port, "GET", "/v1/audit/inclusion?index=7", "tg-r1", NULL, &st);
    assert_int_equal(st, 400);
    json_decref(j);
    j = call_port(g.port, "GET", "/v1/audit/checkpoint", "tg-t", NULL, &st);
    assert_int_equal(st, 401); /* an API key is not a user */
    json_decref(j);
    assert_int_equal(tg_h_stop(&g, 5000), 0);
    /* history replaced: another log under the same key, with other leaves */
    assert_non_null(tg_h_tmpdir(sdir2, sizeof(sdir2)));
    snprintf(cmd, sizeof(cmd), "cp %s/audit-ed25519.pem %s/", sdir, sdir2);
    assert_int_equal(system(cmd), 0);
    tg_h_write_file(sdir2, "sla.yaml", sla_config, cfg2, sizeof(cfg2));
    assert_int_equal(tg_h_start_gateway(&g2, cfg2, sdir2), 0);
    for (int i = 0; i < 9; i++)
        json_decref(say(g2.port, "aud-2", "你好", answer, sizeof(answer)));
    snprintf(cmd, sizeof(cmd),
             "%s audit check --url http://127.0.0.1:%d --token tg-r1 --key '%s' --old %s/c2 2>&1",
             bin, g2.port, key, sdir);
    assert_int_equal(tg_h_run(cmd, &out), 1);
    assert_non_null(strstr(out, "signature good")); /* the same key signed it ... */
    assert_non_null(strstr(out, "INCONSISTENT"));   /* ... but it is not the log we saw */
    tg_free(out);
    assert_int_equal(tg_h_stop(&g2, 5000), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", sdir, sdir2);
    assert_int_equal(system(cmd), 0);
}

/* The peak resident memory of a process, in kB (VmHWM), or -1. */
static long peak_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmHWM:", 6))
            kb = strtol(line + 6, NULL, 10);
    }
    if (f)
        fclose(f);
    return kb;
}

#define OPEN_HANDOFFS 20000

/* Privacy hooks for a conversion run by the test itself: ids and texts
 * pass through unchanged (the data holds no personal data). */
static int same_id(void *arg, const char *id, char out[TG_STORE_KEY_MAX])
{
    (void)arg;
    tg_strlcpy(out, id, TG_STORE_KEY_MAX);
    return TG_OK;
}

static int same_text(void *arg, const char *text, size_t len, struct tg_buf *out)
{
    (void)arg;
    return tg_buf_append(out, text, len);
}

/*
 * Start-up with 20,000 open hand-offs, each task carrying 4 kB of context
 * and its thread, written in the format of an older version and converted
 * (a row at a time): start-up reads ids and deadlines only, so the process
 * stays small (loading every open task, as the older version did, peaks
 * above 200 MB on this data); a task still reads back whole, its thread
 * from rows.
 */
static void test_startup_with_many_open_handoffs_stays_small(void **state)
{
    (void)state;
    char sdir[64], cfg[256], path[256], cmd[128];
    struct tg_h_proc g;
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    char context[4097];
    long st;
    memset(context, 'x', sizeof(context) - 1);
    context[sizeof(context) - 1] = '\0';
    assert_non_null(tg_h_tmpdir(sdir, sizeof(sdir)));
    snprintf(path, sizeof(path), "%s/trustgate.db", sdir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, tg_h_schema_v3, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO reviews VALUES (?1, ?2, 'handed_off',"
                                        " 'human_agent', 5, 1000, 1000, ?3)",
                                        -1, &ins, NULL),
                     SQLITE_OK);
    for (int i = 0; i < OPEN_HANDOFFS; i++) {
        char id[32], turn[32];
        snprintf(id, sizeof(id), "rev_%d", i);
        snprintf(turn, sizeof(turn), "turn_%d", i);
        json_t *task =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:[{s:s}],"
                      " s:[{s:i, s:s, s:s}, {s:i, s:s, s:s}, {s:i, s:s, s:s}],"
                      " s:[{s:i, s:s, s:s}]}",
                      "id", id, "turn_id", turn, "conversation_id", turn, "kind", "review", "state",
                      "handed_off", "queue", "human_agent", "priority", 5, "deadline_ms", 1000,
                      "citations", "text", context, "events", "at", 1, "actor", "trustgate",
                      "event", "created", "at", 2, "actor", "trustgate", "event", "handed_off",
                      "at", 3, "actor", "customer", "event", "customer_message",
                      "customer_messages", "at", 3, "turn_id", "turn_x", "text", "还在吗");
        char *text = json_dumps(task, JSON_COMPACT);
        sqlite3_bind_text(ins, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 2, turn, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 3, text, -1, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
        free(text);
        json_decref(task);
    }
    sqlite3_finalize(ins);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    /* converted here, once, as the first start of a new version would */
    struct tg_store *store = NULL;
    const struct tg_store_privacy keep = {.pseudonym = same_id, .mask = same_text};
    char uri[300], err[256] = "";
    snprintf(uri, sizeof(uri), "sqlite:%s", path);
    if (tg_store_open_private(uri, &keep, &store, err, sizeof(err)) != TG_OK)
        fail_msg("%s", err);
    tg_store_close(store);

    tg_h_write_file(sdir, "sla.yaml", sla_config, cfg, sizeof(cfg));
    assert_int_equal(tg_h_start_gateway(&g, cfg, sdir), 0);
    long kb = peak_rss_kb(g.pid);
    print_message("start-up with %d open hand-offs: VmHWM %ld kB\n", OPEN_HANDOFFS, kb);
    assert_true(kb > 0 && kb < 150 * 1024);
    json_t *t = get_json(g.port, "/v1/reviews/rev_777", "tg-r1");
    assert_string_equal(tg_json_str(t, "state", ""), "handed_off");
    assert_int_equal(json_array_size(json_object_get(t, "customer_messages")), 1);
    assert_int_equal(json_array_size(json_object_get(t, "events")), 3);
    assert_string_equal(tg_json_str(json_array_get(json_object_get(t, "events"), 2), "event", ""),
                        "customer_message");
    json_decref(t);
    (void)st;
    assert_int_equal(tg_h_stop(&g, 10000), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", sdir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_held_turn_decided_by_a_reviewer),
        cmocka_unit_test(test_large_amount_review_approves_the_draft),
        cmocka_unit_test(test_sla_breach_hands_off_also_across_a_restart),
        cmocka_unit_test(test_claims_and_four_eyes),
        cmocka_unit_test(test_long_poll_gets_the_final_answer),
        cmocka_unit_test(test_webhook_signed_and_retried),
        cmocka_unit_test(test_messages_after_a_handoff_go_to_the_agent),
        cmocka_unit_test(test_auditor_checks_the_log),
        cmocka_unit_test(test_startup_with_many_open_handoffs_stays_small),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
