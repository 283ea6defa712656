/*
 * test_review.c - review tasks on a real SQLite store and audit log:
 * creation, decisions with and without the required attestations, edits,
 * rejections, and the audit leaf each decision leaves.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit/audit.h"
#include "review/review.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fx {
    char dir[64];
    struct tg_store *st;
    struct tg_audit *audit;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char uri[128], err[256];
    snprintf(f->dir, sizeof(f->dir), "/tmp/tg-review-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(uri, sizeof(uri), "sqlite:%s/t.db", f->dir);
    assert_int_equal(tg_store_open(uri, &f->st, err, sizeof(err)), TG_OK);
    assert_int_equal(tg_audit_open(f->st, &f->audit), TG_OK);
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

static void create(struct fx *f, const char *kind, const char *draft, char id[TG_ID_MAX])
{
    json_t *att = json_pack("[s, s]", "已核实收入流水真实性", "已评估突发失业风险");
    json_t *tags = json_pack("[s]", "credit_decision");
    struct tg_review_new n = {
        .turn_id = "turn_1",
        .conversation_id = "conv_1",
        .kind = kind,
        .queue = "credit",
        .priority = 5,
        .created_ms = 1000,
        .sla_ms = 90000,
        .attestations = att,
        .tags = tags,
        .question = "我的贷款能批吗",
        .draft = draft,
        .holding_reply = "请稍候",
    };
    assert_int_equal(tg_review_create(f->st, &n, id), TG_OK);
    assert_int_equal(tg_store_flush(f->st), TG_OK);
    json_decref(att);
    json_decref(tags);
}

static void test_create_and_list(void **state)
{
    struct fx *f = *state;
    char id[TG_ID_MAX];
    create(f, "human_decision", NULL, id);
    assert_true(tg_str_has_prefix(id, "rev_"));
    json_t *list = NULL;
    assert_int_equal(tg_store_review_list(f->st, "pending", 10, &list), TG_OK);
    assert_int_equal(json_array_size(list), 1);
    json_t *t = json_array_get(list, 0);
    assert_string_equal(tg_json_str(t, "id", ""), id);
    assert_int_equal(tg_json_int(t, "deadline_ms", 0), 91000);
    assert_int_equal(json_array_size(json_object_get(t, "required_attestations")), 2);
    assert_true(json_is_null(json_object_get(t, "draft")));
    json_decref(list);
}

static void test_attestations_are_required(void **state)
{
    struct fx *f = *state;
    char id[TG_ID_MAX], err[256] = "";
    create(f, "human_decision", NULL, id);
    json_t *one = json_pack("[s]", "已核实收入流水真实性");
    struct tg_review_decision d = {.action = TG_REVIEW_EDIT,
                                   .text = "经审核，您的申请已通过。",
                                   .attestations = one,
                                   .actor = "reviewer1"};
    uint64_t before = tg_audit_size(f->audit);
    assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, NULL, err, sizeof(err)), TG_E_INVAL);
    assert_non_null(strstr(err, "已评估突发失业风险"));
    assert_int_equal(tg_audit_size(f->audit), before); /* nothing recorded */
    d.attestations = NULL;
    assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, NULL, err, sizeof(err)), TG_E_INVAL);
    /* approve needs an AI draft; a human decision has none */
    json_t *both = json_pack("[s, s, s]", "已评估突发失业风险", "已核实收入流水真实性", "extra");
    d.attestations = both;
    d.action = TG_REVIEW_APPROVE;
    assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, NULL, err, sizeof(err)), TG_E_INVAL);
    assert_non_null(strstr(err, "no AI draft"));
    /* with every attestation the edit goes through and is recorded */
    d.action = TG_REVIEW_EDIT;
    json_t *task = NULL;
    assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, &task, err, sizeof(err)), TG_OK);
    assert_string_equal(tg_json_str(task, "state", ""), "decided");
    assert_string_equal(tg_json_str(task, "answer", ""), "经审核，您的申请已通过。");
    assert_string_equal(tg_json_str(json_object_get(task, "decision"), "actor", ""), "reviewer1");
    assert_int_equal(json_array_size(json_object_get(task, "events")), 2);
    json_decref(task);
    assert_int_equal(tg_audit_size(f->audit), before + 1);
    assert_int_equal(tg_store_flush(f->st), TG_OK);
    struct tg_audit_row row;
    assert_int_equal(tg_store_audit_get(f->st, before, &row), TG_OK);
    char *leaf = tg_strndup(row.data, row.len);
    assert_non_null(strstr(leaf, "\"kind\":\"review_decision\""));
    assert_non_null(strstr(leaf, id));
    assert_non_null(strstr(leaf, "已评估突发失业风险"));
    tg_free(leaf);
    tg_free(row.data);
    /* a decided task is not decided twice */
    assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, NULL, err, sizeof(err)),
                     TG_E_CONFLICT);
    json_decref(one);
    json_decref(both);
}

static void test_approve_reject_and_unknown(void **state)
{
    struct fx *f = *state;
    char id[TG_ID_MAX], err[256];
    create(f, "review", "建议配置稳健型理财产品。", id);
    json_t *att = json_pack("[s, s]", "已核实收入流水真实性", "已评估突发失业风险");
    struct tg_review_decision d = {
        .action = TG_REVIEW_REJECT, .attestations = att, .actor = "reviewer1"};
    assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, NULL, err, sizeof(err)), TG_E_INVAL);
    assert_non_null(strstr(err, "reason"));
    d.action = TG_REVIEW_APPROVE;
    d.actor = "";
    assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, NULL, err, sizeof(err)), TG_E_INVAL);
    d.actor = "reviewer2";
    json_t *task = NULL;
    assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, &task, err, sizeof(err)), TG_OK);
    assert_string_equal(tg_json_str(task, "answer", ""), "建议配置稳健型理财产品。");
    json_decref(task);
    assert_int_equal(tg_review_decide(f->st, f->audit, "rev_nope", &d, NULL, err, sizeof(err)),
                     TG_E_NOTFOUND);
    enum tg_review_action a;
    assert_int_equal(tg_review_action_parse("edit", &a), TG_OK);
    assert_int_equal(a, TG_REVIEW_EDIT);
    assert_int_equal(tg_review_action_parse("maybe", &a), TG_E_PARSE);
    json_decref(att);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attestations_are_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_approve_reject_and_unknown, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
