/*
 * test_review.c - review tasks on a real SQLite store and audit log:
 * creation, decisions with and without the required attestations, edits,
 * rejections, and the audit leaf each decision leaves; claims that lapse,
 * SLA timers and restart recovery with an injected clock, agent replies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit/audit.h"
#include "config/config.h"
#include "review/review.h"
#include "store/store.h"

#include <event2/event.h>
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

/* A pending task created now with the given SLA. */
static void create_now(struct fx *f, int64_t sla_ms, char id[TG_ID_MAX])
{
    struct tg_review_new n = {
        .turn_id = "turn_2",
        .conversation_id = "conv_2",
        .kind = "review",
        .queue = "wealth",
        .created_ms = tg_clock_wall_ms(),
        .sla_ms = sla_ms,
        .question = "q",
        .draft = "d",
    };
    assert_int_equal(tg_review_create(f->st, &n, id), TG_OK);
    assert_int_equal(tg_store_flush(f->st), TG_OK);
}

static json_t *get(struct fx *f, const char *id)
{
    json_t *t = NULL;
    assert_int_equal(tg_store_flush(f->st), TG_OK);
    assert_int_equal(tg_store_review_get(f->st, id, NULL, &t), TG_OK);
    return t;
}

/* Each allocation of a decision fails in turn, alone: the decision is then
 * refused and the task stays as it was, or it is made whole (state,
 * answer, decision, its event, its audit leaf); never a task stored with a
 * part of the decision missing. */
static void test_decide_out_of_memory(void **state)
{
    struct fx *f = *state;
    char id[TG_ID_MAX], err[256];
    json_t *att = json_pack("[s, s]", "已核实收入流水真实性", "已评估突发失业风险");
    struct tg_review_decision d = {
        .action = TG_REVIEW_APPROVE, .attestations = att, .actor = "reviewer1"};
    bool fired = true;
    int failed = 0;
    json_set_alloc_funcs(tg_malloc, tg_free);
    tg_log_set_level(TG_LOG_OFF); /* the store says each task it could not read */
    for (long n = 0; fired && n < 100000; n++) {
        create(f, "review", "建议配置稳健型理财产品。", id);
        uint64_t leaves = tg_audit_size(f->audit);
        json_t *out = NULL;
        tg_mem_fail_once(n);
        int rc = tg_review_decide(f->st, f->audit, id, &d, &out, err, sizeof(err));
        fired = tg_mem_fail_once(-1) < 0;
        json_t *task = get(f, id);
        const json_t *events = json_object_get(task, "events");
        const char *last =
            tg_json_str(json_array_get(events, json_array_size(events) - 1), "event", "");
        if (rc == TG_OK) {
            assert_string_equal(tg_json_str(task, "state", ""), "decided");
            assert_string_equal(tg_json_str(task, "answer", ""), "建议配置稳健型理财产品。");
            assert_string_equal(tg_json_str(json_object_get(task, "decision"), "action", ""),
                                "approve");
            assert_string_equal(last, "approve");
            assert_int_equal(tg_audit_size(f->audit), leaves + 1);
            assert_true(json_equal(out, task));
        } else {
            /* TG_E_NOMEM; TG_E_DB when the stored task did not read back whole
             * (jansson's parser reports some failed allocations as bad input,
             * and can drop a character of a string: review.c's read_bare) */
            failed++;
            assert_true(rc == TG_E_NOMEM || rc == TG_E_DB);
            assert_null(out);
            assert_string_equal(tg_json_str(task, "state", ""), "pending");
            assert_false(json_is_object(json_object_get(task, "decision")));
            assert_string_equal(last, "created");
        }
        json_decref(out);
        json_decref(task);
    }
    json_set_alloc_funcs(malloc, free);
    tg_log_set_level(TG_LOG_INFO);
    assert_false(fired);
    assert_true(failed > 0);
    json_decref(att);
}

static int settled;
static void on_settle(void *arg, const json_t *task)
{
    (void)arg;
    assert_string_equal(tg_json_str(task, "state", ""), "handed_off");
    settled++;
}

static void loop_for_ms(struct event_base *base, int ms)
{
    struct timeval tv = {0, ms * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

/* A 90 s SLA without waiting 90 s: the clock jumps to 40 ms before the
 * deadline, the tracker (as after a restart) arms the timer, and the
 * hand-off comes at the deadline, not before. */
static void test_sla_timer_fires_at_the_deadline(void **state)
{
    struct fx *f = *state;
    char id[TG_ID_MAX], other[TG_ID_MAX];
    struct event_base *base = event_base_new();
    struct tg_review_sla *sla = NULL;
    create_now(f, 90000, id);
    create_now(f, 600000, other);
    json_t *t = get(f, id);
    int64_t deadline = tg_json_int(t, "deadline_ms", 0);
    json_decref(t);
    tg_clock_advance_ms(deadline - tg_clock_wall_ms() - 40);
    settled = 0;
    assert_int_equal(tg_review_sla_start(base, f->st, f->audit, &sla), TG_OK);
    tg_review_sla_on_settle(sla, on_settle, NULL);
    t = get(f, id);
    assert_string_equal(tg_json_str(t, "state", ""), "pending"); /* not yet */
    json_decref(t);
    loop_for_ms(base, 300);
    assert_int_equal(settled, 1);
    assert_int_equal(tg_review_sla_handoffs(sla), 1);
    t = get(f, id);
    assert_string_equal(tg_json_str(t, "state", ""), "handed_off");
    assert_string_equal(tg_json_str(t, "queue", ""), "human_agent");
    json_t *events = json_object_get(t, "events");
    const json_t *last = json_array_get(events, json_array_size(events) - 1);
    assert_string_equal(tg_json_str(last, "event", ""), "handed_off");
    assert_true(tg_json_int(last, "at", 0) >= deadline);
    json_t *tags = json_object_get(t, "tags");
    assert_string_equal(json_string_value(json_array_get(tags, json_array_size(tags) - 1)),
                        "review_sla_breached");
    json_decref(t);
    t = get(f, other); /* its deadline is far off */
    assert_string_equal(tg_json_str(t, "state", ""), "pending");
    json_decref(t);
    tg_review_sla_free(sla);
    event_base_free(base);
}

/* Overdue at start-up (the process was down at the deadline): handed off at once. */
static void test_restart_hands_off_what_is_overdue(void **state)
{
    struct fx *f = *state;
    char id[TG_ID_MAX], decided[TG_ID_MAX], err[256];
    struct event_base *base = event_base_new();
    struct tg_review_sla *sla = NULL;
    create_now(f, 90000, id);
    create_now(f, 90000, decided);
    struct tg_review_decision d = {.action = TG_REVIEW_APPROVE, .actor = "r1"};
    assert_int_equal(tg_review_decide(f->st, f->audit, decided, &d, NULL, err, sizeof(err)), TG_OK);
    tg_clock_advance_ms(91000);
    assert_int_equal(tg_review_sla_start(base, f->st, f->audit, &sla), TG_OK);
    json_t *t = get(f, id);
    assert_string_equal(tg_json_str(t, "state", ""), "handed_off");
    json_decref(t);
    t = get(f, decided); /* a decided task is left alone */
    assert_string_equal(tg_json_str(t, "state", ""), "decided");
    json_decref(t);
    assert_int_equal(tg_review_sla_handoffs(sla), 1);
    /* the audit log has the decision and the hand-off */
    assert_int_equal(tg_audit_size(f->audit), 2);
    tg_review_sla_free(sla);
    event_base_free(base);
}

static void test_claims_lapse(void **state)
{
    struct fx *f = *state;
    char id[TG_ID_MAX], err[256];
    create_now(f, 3600000, id);
    assert_int_equal(tg_review_claim(f->st, f->audit, id, "ann", 300000, NULL, err, sizeof(err)),
                     TG_OK);
    assert_int_equal(tg_review_claim(f->st, f->audit, id, "bob", 300000, NULL, err, sizeof(err)),
                     TG_E_CONFLICT);
    assert_non_null(strstr(err, "claimed by ann"));
    struct tg_review_decision d = {.action = TG_REVIEW_APPROVE, .actor = "bob"};
    assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, NULL, err, sizeof(err)),
                     TG_E_CONFLICT);
    tg_clock_advance_ms(300001); /* ann's claim lapses */
    assert_int_equal(tg_review_claim(f->st, f->audit, id, "bob", 300000, NULL, err, sizeof(err)),
                     TG_OK);
    assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, NULL, err, sizeof(err)), TG_OK);
    json_t *t = get(f, id);
    assert_string_equal(tg_json_str(json_object_get(t, "decision"), "actor", ""), "bob");
    json_decref(t);
}

static void test_agent_replies_after_a_handoff(void **state)
{
    struct fx *f = *state;
    char id[TG_ID_MAX], err[256];
    json_t *t = NULL;
    create_now(f, 90000, id);
    assert_int_equal(
        tg_review_agent_reply(f->st, f->audit, id, "ann", "hi", false, NULL, err, sizeof(err)),
        TG_E_CONFLICT); /* not handed off yet */
    assert_int_equal(tg_review_handoff(f->st, f->audit, id, "test", NULL), TG_OK);
    assert_int_equal(
        tg_review_agent_reply(f->st, f->audit, id, "ann", "", false, NULL, err, sizeof(err)),
        TG_E_INVAL);
    assert_int_equal(tg_review_agent_reply(f->st, f->audit, id, "ann", "您好，我来处理。", false,
                                           &t, err, sizeof(err)),
                     TG_OK);
    assert_string_equal(tg_json_str(t, "state", ""), "handed_off");
    assert_int_equal(json_array_size(json_object_get(t, "agent_replies")), 1);
    json_decref(t);
    assert_int_equal(
        tg_review_agent_reply(f->st, f->audit, id, "ann", NULL, true, &t, err, sizeof(err)), TG_OK);
    assert_string_equal(tg_json_str(t, "state", ""), "closed");
    json_decref(t);
    /* hand-off, reply and close are three audit leaves */
    assert_int_equal(tg_audit_size(f->audit), 3);
}

/* People's answers carry the disclaimers the output rules give them (in
 * the task's people_answers), once: a draft that has one keeps one. */
static void test_people_answers_carry_the_disclaimer(void **state)
{
    struct fx *f = *state;
    char id[TG_ID_MAX], err[256];
    static const char *pre = "本结果不构成诊疗意见。";
    json_t *ctx =
        json_pack("{s:{s:[s], s:[s]}}", "people_answers", "prefix", pre, "suffix", "（人工答复）");
    struct tg_review_new n = {
        .turn_id = "turn_m",
        .conversation_id = "conv_m",
        .kind = "human_decision",
        .queue = "medical",
        .created_ms = tg_clock_wall_ms(),
        .sla_ms = 90000,
        .question = "我胸口疼是不是心梗",
        .holding_reply = "请稍候",
        .context = ctx,
    };
    assert_int_equal(tg_review_create(f->st, &n, id), TG_OK);
    struct tg_review_decision d = {
        .action = TG_REVIEW_EDIT, .text = "请尽快到医院就诊。", .actor = "doc"};
    json_t *t = NULL;
    assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, &t, err, sizeof(err)), TG_OK);
    assert_string_equal(tg_json_str(t, "answer", ""),
                        "本结果不构成诊疗意见。请尽快到医院就诊。（人工答复）");
    json_decref(t);

    /* a text that already carries them is not given them twice */
    n.turn_id = "turn_m2";
    n.kind = "review";
    n.draft = "本结果不构成诊疗意见。住院费用可以报销。（人工答复）";
    assert_int_equal(tg_review_create(f->st, &n, id), TG_OK);
    d.action = TG_REVIEW_APPROVE;
    assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, &t, err, sizeof(err)), TG_OK);
    assert_string_equal(tg_json_str(t, "answer", ""), n.draft);
    json_decref(t);

    /* an agent's reply after a hand-off too */
    n.turn_id = "turn_m3";
    n.draft = NULL;
    assert_int_equal(tg_review_create(f->st, &n, id), TG_OK);
    assert_int_equal(tg_store_flush(f->st), TG_OK);
    assert_int_equal(tg_review_handoff(f->st, f->audit, id, "test", NULL), TG_OK);
    assert_int_equal(
        tg_review_agent_reply(f->st, f->audit, id, "ann", "您好", false, &t, err, sizeof(err)),
        TG_OK);
    const json_t *ar = json_object_get(t, "agent_replies");
    assert_string_equal(tg_json_str(json_array_get(ar, json_array_size(ar) - 1), "text", ""),
                        "本结果不构成诊疗意见。您好（人工答复）");
    json_decref(t);
    json_decref(ctx);
}

/* A task whose turn was started by customer id by. */
static void create_by(struct fx *f, const char *by, char id[TG_ID_MAX])
{
    struct tg_review_new n = {
        .turn_id = "turn_4e",
        .conversation_id = "conv_4e",
        .kind = "review",
        .queue = "default",
        .created_ms = 1000,
        .sla_ms = 90000,
        .question = "q",
        .draft = "the draft",
        .holding_reply = "请稍候",
        .started_by = by,
    };
    assert_int_equal(tg_review_create(f->st, &n, id), TG_OK);
    assert_int_equal(tg_store_flush(f->st), TG_OK);
}

/* The four-eyes rule compares identities, not bytes: whoever started a
 * turn, in any case or width, or under a customer id mapped to them,
 * cannot decide it; somebody else can. */
static void test_four_eyes_on_a_canonical_identity(void **state)
{
    struct fx *f = *state;
    static const char *const starters[] = {"reviewer1", "Reviewer1", "ｒｅｖｉｅｗｅｒ１",
                                           " REVIEWER1 ", "WX-OpenID-77"};
    const char *const ids[] = {"wx-openid-77"};
    for (size_t i = 0; i < TG_ARRAY_LEN(starters); i++) {
        char id[TG_ID_MAX], err[256] = "";
        create_by(f, starters[i], id);
        struct tg_review_decision d = {.action = TG_REVIEW_APPROVE,
                                       .actor = "reviewer1",
                                       .four_eyes = true,
                                       .actor_ids = ids,
                                       .n_actor_ids = 1};
        assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, NULL, err, sizeof(err)),
                         TG_E_FORBIDDEN);
        assert_non_null(strstr(err, "four-eyes"));
        /* without the rule the same person may decide; here another reviewer does */
        d.actor = "reviewer2";
        d.actor_ids = NULL;
        d.n_actor_ids = 0;
        assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, NULL, err, sizeof(err)), TG_OK);
    }
    /* a customer id mapped to nobody is nobody's */
    char id[TG_ID_MAX], err[256] = "";
    create_by(f, "wx-openid-77", id);
    struct tg_review_decision d = {
        .action = TG_REVIEW_APPROVE, .actor = "reviewer1", .four_eyes = true};
    assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, NULL, err, sizeof(err)), TG_OK);
}

/* Privacy hooks as a deployment's: the pseudonym of the canonical form, digits masked. */
static int canon_pseudonym(void *arg, const char *id, char out[TG_STORE_KEY_MAX])
{
    struct tg_buf b;
    uint8_t h[TG_SHA256_LEN];
    (void)arg;
    tg_buf_init(&b, 4096);
    int rc = tg_config_identity(id, strlen(id), &b);
    if (!rc)
        tg_sha256(b.data ? b.data : "", b.len, h);
    tg_buf_free(&b);
    if (!rc)
        tg_hex_encode(h, 16, out);
    return rc;
}

static int digits_masked(void *arg, const char *text, size_t len, struct tg_buf *out)
{
    int rc = TG_OK;
    (void)arg;
    for (size_t i = 0; i < len && rc == TG_OK; i++)
        rc = tg_buf_append(out, text[i] >= '0' && text[i] <= '9' ? "*" : text + i, 1);
    return rc;
}

static int setup_private(void **state)
{
    static const struct tg_store_privacy priv = {.pseudonym = canon_pseudonym,
                                                 .mask = digits_masked};
    struct fx *f = calloc(1, sizeof(*f));
    char uri[128], err[256];
    snprintf(f->dir, sizeof(f->dir), "/tmp/tg-review-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(uri, sizeof(uri), "sqlite:%s/t.db", f->dir);
    assert_int_equal(tg_store_open_private(uri, &priv, &f->st, err, sizeof(err)), TG_OK);
    assert_int_equal(tg_audit_open(f->st, &f->audit), TG_OK);
    *state = f;
    return 0;
}

/* With a store that keeps pseudonyms, the four-eyes rule still knows the
 * person in any case or width, though the task holds no customer id. */
static void test_four_eyes_through_pseudonyms(void **state)
{
    struct fx *f = *state;
    static const char *const starters[] = {"Reviewer1", "ｒｅｖｉｅｗｅｒ１", "WX-OpenID-77"};
    const char *const ids[] = {"wx-openid-77"};
    for (size_t i = 0; i < TG_ARRAY_LEN(starters); i++) {
        char id[TG_ID_MAX], err[256] = "";
        json_t *t = NULL;
        create_by(f, starters[i], id);
        assert_int_equal(tg_store_review_get(f->st, id, NULL, &t), TG_OK);
        assert_string_not_equal(tg_json_str(t, "started_by", ""), starters[i]);
        assert_null(strstr(tg_json_str(t, "started_by", ""), "eviewer"));
        assert_null(strstr(tg_json_str(t, "started_by", ""), "penID"));
        json_decref(t);
        struct tg_review_decision d = {.action = TG_REVIEW_APPROVE,
                                       .actor = "reviewer1",
                                       .four_eyes = true,
                                       .actor_ids = ids,
                                       .n_actor_ids = 1};
        assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, NULL, err, sizeof(err)),
                         TG_E_FORBIDDEN);
        d.actor = "reviewer2";
        d.actor_ids = NULL;
        d.n_actor_ids = 0;
        assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, NULL, err, sizeof(err)), TG_OK);
    }
}

/* An edited answer, a hand-off's messages and an agent's reply are stored
 * masked; what goes to the customer is the text as written. */
static void test_texts_stored_masked_delivered_as_written(void **state)
{
    struct fx *f = *state;
    char id[TG_ID_MAX], id2[TG_ID_MAX], err[256] = "";
    json_t *t = NULL, *att = json_pack("[s, s]", "已核实收入流水真实性", "已评估突发失业风险");
    create(f, "human_decision", NULL, id);
    struct tg_review_decision d = {
        .action = TG_REVIEW_EDIT, .text = "请致电13912345678", .actor = "ann", .attestations = att};
    assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, &t, err, sizeof(err)), TG_OK);
    assert_string_equal(tg_json_str(t, "answer", ""), "请致电13912345678");
    json_decref(t);
    assert_int_equal(tg_store_review_get(f->st, id, NULL, &t), TG_OK);
    assert_string_equal(tg_json_str(t, "answer", ""), "请致电***********");
    assert_string_equal(tg_json_str(json_object_get(t, "decision"), "text", ""),
                        "请致电***********");
    json_decref(t);

    create(f, "review", "draft", id2);
    assert_int_equal(tg_review_handoff(f->st, f->audit, id2, "test", NULL), TG_OK);
    assert_int_equal(tg_review_customer_message(f->st, id2, "turn_9", "卡号6222021234567894", NULL,
                                                err, sizeof(err)),
                     TG_OK);
    assert_int_equal(tg_review_agent_reply(f->st, f->audit, id2, "bob", "已致电13912345678", false,
                                           &t, err, sizeof(err)),
                     TG_OK);
    const json_t *ar = json_object_get(t, "agent_replies");
    assert_string_equal(tg_json_str(json_array_get(ar, 0), "text", ""), "已致电13912345678");
    assert_string_equal(
        tg_json_str(json_array_get(json_object_get(t, "customer_messages"), 0), "text", ""),
        "卡号****************");
    json_decref(t);
    assert_int_equal(tg_store_review_get(f->st, id2, NULL, &t), TG_OK);
    ar = json_object_get(t, "agent_replies");
    assert_string_equal(tg_json_str(json_array_get(ar, 0), "text", ""), "已致电***********");
    json_decref(t);
    json_decref(att);
}

/* The settle hook's writes: one blob per settled task, or a refusal. */
static int hook_calls;
static int settle_hook(void *arg, struct tg_store *st, const json_t *task)
{
    char key[96];
    hook_calls++;
    if (arg)
        return TG_E_IO; /* the outbox could not be written */
    snprintf(key, sizeof(key), "outbox/%s", tg_json_str(task, "id", ""));
    const char *state = tg_json_str(task, "state", "");
    return tg_store_blob_put(st, key, state, strlen(state));
}

/* What the settle hook writes commits with the act that settles a task,
 * and a hook that fails fails the act: nothing of it is stored. */
static void test_settle_hook_commits_with_the_act(void **state)
{
    struct fx *f = *state;
    char id[TG_ID_MAX], other[TG_ID_MAX], err[256] = "", key[96];
    char *data = NULL;
    size_t len = 0;
    json_t *both = json_pack("[s, s]", "已评估突发失业风险", "已核实收入流水真实性");
    struct tg_review_decision d = {
        .action = TG_REVIEW_EDIT, .text = "已通过。", .attestations = both, .actor = "r1"};
    create(f, "human_decision", NULL, id);
    create(f, "human_decision", NULL, other);

    tg_review_on_settle(settle_hook, (void *)1); /* failing */
    uint64_t before = tg_audit_size(f->audit);
    assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, NULL, err, sizeof(err)), TG_E_IO);
    assert_int_equal(tg_review_handoff(f->st, f->audit, other, "test", NULL), TG_E_IO);
    assert_int_equal(hook_calls, 2);
    assert_int_equal(tg_store_flush(f->st), TG_OK);
    assert_int_equal(tg_audit_size(f->audit), before); /* no leaf */
    json_t *t = NULL;
    assert_int_equal(tg_store_review_get(f->st, id, NULL, &t), TG_OK);
    assert_string_equal(tg_json_str(t, "state", ""), "pending");
    json_decref(t);
    assert_int_equal(tg_store_review_get(f->st, other, NULL, &t), TG_OK);
    assert_string_equal(tg_json_str(t, "state", ""), "pending");
    json_decref(t);

    tg_review_on_settle(settle_hook, NULL);
    assert_int_equal(tg_review_decide(f->st, f->audit, id, &d, NULL, err, sizeof(err)), TG_OK);
    assert_int_equal(tg_review_handoff(f->st, f->audit, other, "test", NULL), TG_OK);
    tg_review_on_settle(NULL, NULL);
    assert_int_equal(hook_calls, 4);
    assert_int_equal(tg_audit_size(f->audit), before + 2);
    snprintf(key, sizeof(key), "outbox/%s", id);
    assert_int_equal(tg_store_blob_get(f->st, key, &data, &len), TG_OK);
    assert_memory_equal(data, "decided", len);
    tg_free(data);
    snprintf(key, sizeof(key), "outbox/%s", other);
    assert_int_equal(tg_store_blob_get(f->st, key, &data, &len), TG_OK);
    assert_memory_equal(data, "handed_off", len);
    tg_free(data);
    json_decref(both);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settle_hook_commits_with_the_act, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attestations_are_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_approve_reject_and_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decide_out_of_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sla_timer_fires_at_the_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_hands_off_what_is_overdue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claims_lapse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_replies_after_a_handoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_people_answers_carry_the_disclaimer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_four_eyes_on_a_canonical_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_four_eyes_through_pseudonyms, setup_private, teardown),
        cmocka_unit_test_setup_teardown(test_texts_stored_masked_delivered_as_written,
                                        setup_private, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
