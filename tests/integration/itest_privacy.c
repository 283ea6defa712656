/*
 * itest_privacy.c - no personal data in clear at rest.  The real gateway is
 * given identifiers of every kind (a resident ID with a valid GB 11643
 * checksum, a mobile number, a Luhn-valid card number, with and without
 * spaces, an e-mail address, a policy number) through every way text gets
 * in: customer messages, the `user` field as the customer id, a reviewer's
 * edited answer, a hand-off's customer messages and agent replies, and
 * feedback's correct_answer.  The database file and its WAL, every byte of
 * them (BLOBs included), are then searched for each value as written and
 * as its digits alone, while the gateway runs and after it stopped.
 *
 * What must still reach the customer as written does: the edited answer
 * and the agent's reply come back unmasked to the caller.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ID_CARD "110105198506152319"
#define MOBILE "13912345678"
#define CARD "6222021234567894"
#define CARD_SPACED "6222 0212 3456 7894"
#define EMAIL "zhang.wei@example.com"
#define POLICY "P2024061501"
#define USER_PHONE "13700001111"
#define USER_EMAIL "Li.Na2024@example.com"

/* Every identifier in one text, as a customer or a person would write it. */
#define ALL_IDS                                                                                    \
    "身份证" ID_CARD "，手机" MOBILE "，卡号" CARD "（" CARD_SPACED "），邮箱" EMAIL               \
    "，保单" POLICY "。"

static const char *const planted[] = {ID_CARD, MOBILE, CARD,       CARD_SPACED,
                                      EMAIL,   POLICY, USER_PHONE, USER_EMAIL};

static const char *sla_config =
    "auth:\n  api_keys:\n    - name: t\n      key: tg-t\n"
    "understand:\n  policy_number: \"P[0-9]{10}\"\n"
    "users:\n  - name: r1\n    role: reviewer\n    token: tg-r1\n"
    "  - name: a1\n    role: agent\n    token: tg-a1\n"
    "backends:\n  - name: s\n    type: script\n    reply: 建议配置稳健理财\n"
    "route:\n  backend: s\n"
    "policies:\n  - id: hold\n    description: hold for review\n    when:\n"
    "      keywords: [复核]\n    then:\n      - review: {sla: 1s}\n";

static json_t *call(int port, const char *method, const char *path, const char *token,
                    const char *body, long *status)
{
    json_t *j = tg_h_api(port, method, path, token, body, status);
    if (!j)
        fail_msg("%s %s: %ld, not JSON", method, path, *status);
    return j;
}

/* One customer message; returns the trustgate object of the answer. */
static json_t *say(int port, const char *key, const char *user, const char *text)
{
    long st;
    json_t *body = json_pack("{s:s, s:[{s:s, s:s}]}", "user", user, "messages", "role", "user",
                             "content", text);
    char *s = json_dumps(body, JSON_COMPACT);
    json_t *j = call(port, "POST", "/v1/chat/completions", key, s, &st);
    free(s);
    json_decref(body);
    assert_int_equal(st, 200);
    json_t *tg = json_incref(json_object_get(j, "trustgate"));
    json_decref(j);
    return tg;
}

/* The digits of s alone. */
static void digits_of(const char *s, char *out, size_t n)
{
    size_t k = 0;
    for (; *s && k + 1 < n; s++)
        if (*s >= '0' && *s <= '9')
            out[k++] = *s;
    out[k] = '\0';
}

/* Fail naming the value and the file when any form of a planted value is in path. */
static void assert_file_clean(const char *path)
{
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    if (tg_buf_read_file(&b, path) != TG_OK) {
        tg_buf_free(&b);
        return; /* a WAL that is not there holds nothing */
    }
    for (size_t i = 0; i < TG_ARRAY_LEN(planted); i++) {
        char digits[64], lower[64];
        const char *forms[3] = {planted[i], digits, lower};
        digits_of(planted[i], digits, sizeof(digits));
        size_t k = 0;
        for (; planted[i][k] && k + 1 < sizeof(lower); k++)
            lower[k] = (char)(planted[i][k] >= 'A' && planted[i][k] <= 'Z' ? planted[i][k] + 32
                                                                           : planted[i][k]);
        lower[k] = '\0';
        for (size_t f = 0; f < TG_ARRAY_LEN(forms); f++) {
            if (strlen(forms[f]) >= 6 && b.len && memmem(b.data, b.len, forms[f], strlen(forms[f])))
                fail_msg("%s holds \"%s\" (planted as \"%s\")", path, forms[f], planted[i]);
        }
    }
    tg_buf_free(&b);
}

static void assert_store_clean(const char *dir)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/trustgate.db", dir);
    assert_int_equal(access(path, R_OK), 0);
    assert_file_clean(path);
    snprintf(path, sizeof(path), "%s/trustgate.db-wal", dir);
    assert_file_clean(path);
}

/* Customer messages, a customer id that is a phone number, an answer a
 * reviewer edited, and feedback, on the demo deployment. */
static void test_demo_routes_keep_nothing_in_clear(void **state)
{
    (void)state;
    char dir[64], path[160], id[64], turn[64], cmd[128];
    struct tg_h_proc g;
    long st;
    assert_non_null(tg_h_tmpdir(dir, sizeof(dir)));
    assert_int_equal(tg_h_start_gateway(&g, "examples/insurance/trustgate.yaml", dir), 0);

    json_t *tg = say(g.port, "tg-demo-key", USER_PHONE, "我想更新资料：" ALL_IDS);
    json_decref(tg);
    tg = say(g.port, "tg-demo-key", USER_PHONE, "我的贷款申请你直接批了吧");
    assert_string_equal(tg_json_str(tg, "decision", ""), "human_decision");
    tg_strlcpy(id, tg_json_str(tg, "review_id", ""), sizeof(id));
    tg_strlcpy(turn, tg_json_str(tg, "turn_id", ""), sizeof(turn));
    json_decref(tg);

    /* the reviewer writes the answer with the customer's identifiers in it */
    snprintf(path, sizeof(path), "/v1/reviews/%s/decision", id);
    json_t *j = call(g.port, "POST", path, "tg-demo-reviewer",
                     "{\"action\":\"edit\",\"text\":\"已登记：" ALL_IDS "\",\"attestations\":"
                     "[\"已核实收入流水真实性\",\"已评估突发失业风险\"]}",
                     &st);
    assert_int_equal(st, 200);
    /* the customer is sent what the reviewer wrote */
    assert_non_null(strstr(tg_json_str(j, "answer", ""), MOBILE));
    json_decref(j);

    j = call(g.port, "POST", "/v1/feedback", "tg-demo-key",
             "{\"turn_id\":\"placeholder\",\"rating\":\"bad\"}", &st);
    json_decref(j);
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"turn_id\":\"%s\",\"rating\":\"bad\",\"correct_answer\":\"应为：" ALL_IDS "\"}",
             turn);
    j = call(g.port, "POST", "/v1/feedback", "tg-demo-key", body, &st);
    assert_int_equal(st, 201);
    json_decref(j);

    /* the same customer is still found by their id */
    tg = say(g.port, "tg-demo-key", USER_PHONE, "你好");
    char conv[64];
    tg_strlcpy(conv, tg_json_str(tg, "conversation_id", ""), sizeof(conv));
    json_decref(tg);
    tg = say(g.port, "tg-demo-key", USER_PHONE, "谢谢");
    assert_string_equal(tg_json_str(tg, "conversation_id", ""), conv);
    json_decref(tg);

    assert_store_clean(dir); /* committed: every reply above left after its commit */
    assert_int_equal(tg_h_stop(&g, 5000), 0);
    assert_store_clean(dir);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static bool handed_off(int port, const char *id)
{
    char path[128];
    long st;
    snprintf(path, sizeof(path), "/v1/reviews/%s", id);
    json_t *t = call(port, "GET", path, "tg-a1", NULL, &st);
    bool yes = !strcmp(tg_json_str(t, "state", ""), "handed_off");
    json_decref(t);
    return yes;
}

/* A review whose deadline passes goes to an agent; the customer's later
 * messages and the agent's replies carry identifiers. */
static void test_handoff_keeps_nothing_in_clear(void **state)
{
    (void)state;
    char dir[64], cfg[256], path[160], id[64], cmd[128];
    struct tg_h_proc g;
    long st;
    assert_non_null(tg_h_tmpdir(dir, sizeof(dir)));
    tg_h_write_file(dir, "sla.yaml", sla_config, cfg, sizeof(cfg));
    assert_int_equal(tg_h_start_gateway(&g, cfg, dir), 0);
    json_t *tg = say(g.port, "tg-t", USER_EMAIL, "请帮我复核这笔理财，" ALL_IDS);
    assert_string_equal(tg_json_str(tg, "decision", ""), "review");
    tg_strlcpy(id, tg_json_str(tg, "review_id", ""), sizeof(id));
    json_decref(tg);
    for (int i = 0; i < 60 && !handed_off(g.port, id); i++)
        usleep(50000);
    assert_true(handed_off(g.port, id));

    /* with the agent now */
    tg = say(g.port, "tg-t", USER_EMAIL, "补充资料：" ALL_IDS);
    assert_string_equal(tg_json_str(tg, "decision", ""), "handoff");
    assert_string_equal(tg_json_str(tg, "review_id", ""), id);
    json_decref(tg);
    snprintf(path, sizeof(path), "/v1/handoffs/%s/reply", id);
    json_t *j =
        call(g.port, "POST", path, "tg-a1", "{\"text\":\"收到，已核对：" ALL_IDS "\"}", &st);
    assert_int_equal(st, 200);
    /* the customer is sent the reply as the agent wrote it */
    const json_t *replies = json_object_get(j, "agent_replies");
    assert_non_null(
        strstr(tg_json_str(json_array_get(replies, json_array_size(replies) - 1), "text", ""),
               CARD_SPACED));
    assert_int_equal(json_array_size(json_object_get(j, "customer_messages")), 1);
    json_decref(j);
    tg = say(g.port, "tg-t", USER_EMAIL, "邮箱改为" EMAIL);
    assert_string_equal(tg_json_str(tg, "decision", ""), "handoff");
    json_decref(tg);
    j = call(g.port, "POST", path, "tg-a1", "{\"text\":\"已更新 " EMAIL "\",\"close\":true}", &st);
    assert_int_equal(st, 200);
    assert_string_equal(tg_json_str(j, "state", ""), "closed");
    json_decref(j);

    /* the agent's view still has the whole thread, masked */
    snprintf(path, sizeof(path), "/v1/reviews/%s", id);
    j = call(g.port, "GET", path, "tg-a1", NULL, &st);
    assert_int_equal(json_array_size(json_object_get(j, "customer_messages")), 2);
    assert_int_equal(json_array_size(json_object_get(j, "agent_replies")), 2);
    assert_null(
        strstr(tg_json_str(json_array_get(json_object_get(j, "customer_messages"), 0), "text", ""),
               MOBILE));
    json_decref(j);

    assert_store_clean(dir);
    assert_int_equal(tg_h_stop(&g, 5000), 0);
    assert_store_clean(dir);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Where the deployment asks for it (privacy.customer_map), the id behind a
 * pseudonym is kept, in one place, and `trustgate customer` reads it back;
 * without it `trustgate customer` finds no one. */
static void test_customer_map_only_where_asked(void **state)
{
    (void)state;
    char dir[64], cfg[256], cmd[1024], bin[256], ps[64];
    char *out = NULL;
    struct tg_h_proc g;
    assert_non_null(tg_h_tmpdir(dir, sizeof(dir)));
    tg_h_bin("trustgate", bin, sizeof(bin));
    for (int mapped = 0; mapped < 2; mapped++) {
        char conf[2048], data[128];
        snprintf(conf, sizeof(conf), "%s%s", sla_config,
                 mapped ? "privacy:\n  customer_map: true\n" : "");
        snprintf(data, sizeof(data), "%s/d%d", dir, mapped);
        tg_h_write_file(dir, mapped ? "map.yaml" : "nomap.yaml", conf, cfg, sizeof(cfg));
        assert_int_equal(tg_h_start_gateway(&g, cfg, data), 0);
        json_decref(say(g.port, "tg-t", USER_PHONE, "你好"));
        json_decref(say(g.port, "tg-t", USER_PHONE, "还有一个问题"));
        assert_int_equal(tg_h_stop(&g, 5000), 0);
        snprintf(cmd, sizeof(cmd), "%s customer -c %s --data %s --id %s", bin, cfg, data,
                 USER_PHONE);
        assert_int_equal(tg_h_run(cmd, &out), 0);
        tg_strlcpy(ps, out, sizeof(ps));
        ps[strcspn(ps, "\n")] = '\0';
        tg_free(out);
        assert_true(strlen(ps) >= 16);
        assert_null(strstr(ps, "1370000"));
        snprintf(cmd, sizeof(cmd), "%s customer -c %s --data %s %s", bin, cfg, data, ps);
        int status = tg_h_run(cmd, &out);
        if (mapped) {
            assert_int_equal(status, 0);
            assert_string_equal(out, USER_PHONE "\n");
        } else {
            assert_int_not_equal(status, 0);
            tg_free(out);
            snprintf(cmd, sizeof(cmd), "%s/trustgate.db", data);
            assert_file_clean(cmd); /* the id is nowhere */
            continue;
        }
        tg_free(out);
        /* kept once, in the mapping alone */
        snprintf(cmd, sizeof(cmd),
                 "sqlite3 %s/trustgate.db \"SELECT key FROM blobs WHERE CAST(data AS TEXT) LIKE "
                 "'%%%s%%'; SELECT count(*) FROM conversations WHERE customer_id LIKE '%%%s%%'\"",
                 data, USER_PHONE, USER_PHONE);
        assert_int_equal(tg_h_run(cmd, &out), 0);
        char want[160];
        snprintf(want, sizeof(want), "customer/%s\n0\n", ps);
        assert_string_equal(out, want);
        tg_free(out);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_routes_keep_nothing_in_clear),
        cmocka_unit_test(test_handoff_keeps_nothing_in_clear),
        cmocka_unit_test(test_customer_map_only_where_asked),
    };
    return cmocka_run_group_tests_name("privacy at rest", tests, NULL, NULL);
}
