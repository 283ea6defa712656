/*
 * test_pipeline.c - the turn pipeline: stage order, and each stage on its
 * own (admit, understand, retrieve, precheck, generate, postcheck, gate,
 * record, reply) with a real SQLite store and the script backend.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit/audit.h"
#include "pipeline/pipeline.h"
#include "store/store.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fixture {
    char dir[64];
    struct tg_config *cfg;
    struct event_base *base;
    struct tg_pipeline *p;
};

static const char *config_yaml = "auth:\n"
                                 "  api_keys:\n"
                                 "    - name: demo\n"
                                 "      key: tg-test-key\n"
                                 "backends:\n"
                                 "  - name: canned\n"
                                 "    type: script\n"
                                 "    reply: \"您好，这是固定回复。\"\n"
                                 "route:\n"
                                 "  backend: canned\n"
                                 "server:\n"
                                 "  max_messages: 4\n"
                                 "  log_level: off\n"
                                 "policies:\n"
                                 "  - id: loan-then-approve\n"
                                 "    description: asked to approve a loan named earlier\n"
                                 "    stage: pre\n"
                                 "    when: {all: [{conversation.keywords: [贷款]}, "
                                 "{keywords: [批下来]}]}\n"
                                 "    then: [{tag: loan_followup}]\n";

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char path[128], err[256];
    snprintf(f->dir, sizeof(f->dir), "/tmp/tg-pipe-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(path, sizeof(path), "%s/c.yaml", f->dir);
    FILE *fp = fopen(path, "w");
    fputs(config_yaml, fp);
    fclose(fp);
    json_t *errs = NULL;
    assert_int_equal(tg_config_load(path, &f->cfg, &errs), TG_OK);
    json_decref(errs);
    tg_log_set_level(TG_LOG_OFF);
    f->base = event_base_new();
    assert_int_equal(tg_pipeline_open(f->cfg, f->base, f->dir, &f->p, err, sizeof(err)), TG_OK);
    f->p->log_turns = false;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    tg_pipeline_close(f->p);
    event_base_free(f->base);
    tg_config_free(f->cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static struct tg_turn *turn_with(struct fixture *f, const char *key, const char *body)
{
    struct tg_turn *t = tg_turn_new(f->p);
    assert_non_null(t);
    t->api_key = key;
    t->body = body;
    t->body_len = strlen(body);
    t->run.created_ms = tg_clock_wall_ms();
    return t;
}

static void done_cb(struct tg_turn *t, void *arg)
{
    (void)t;
    *(int *)arg += 1;
}

/* Run the whole pipeline (the script backend answers at once; the reply
 * waits on the loop for the store to commit the record). */
static struct tg_turn *run_turn(struct fixture *f, const char *body)
{
    static int calls;
    struct tg_turn *t = turn_with(f, "tg-test-key", body);
    int before = calls;
    t->done_cb = done_cb;
    t->done_arg = &calls;
    tg_pipeline_start(t);
    for (int i = 0; i < 1000 && calls == before; i++)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(calls, before + 1);
    return t;
}

static const char *simple = "{\"messages\":[{\"role\":\"user\",\"content\":\"我想了解重疾险\"}],"
                            "\"user\":\"cust-42\"}";

static void test_stages_run_in_order(void **state)
{
    struct fixture *f = *state;
    struct tg_turn *t = run_turn(f, simple);
    assert_int_equal(t->run.ntrace, TG_STAGE__COUNT);
    for (int i = 0; i < TG_STAGE__COUNT; i++)
        assert_int_equal(t->run.trace[i], i);
    assert_int_equal(t->decision, TG_DECISION_DELIVER);
    assert_int_equal(t->http_status, 200);
    tg_turn_free(t);
}

static void test_refused_at_admit_skips_to_reply(void **state)
{
    struct fixture *f = *state;
    struct tg_turn *t = turn_with(f, "wrong-key", simple);
    int calls = 0;
    t->done_cb = done_cb;
    t->done_arg = &calls;
    tg_pipeline_start(t);
    assert_int_equal(calls, 1);
    assert_int_equal(t->run.ntrace, 2);
    assert_int_equal(t->run.trace[0], TG_STAGE_ADMIT);
    assert_int_equal(t->run.trace[1], TG_STAGE_REPLY);
    assert_int_equal(t->http_status, 401);
    assert_int_equal(t->record.audit_index, -1);
    tg_turn_free(t);
}

static void test_admit_auth(void **state)
{
    struct fixture *f = *state;
    struct tg_turn *t = turn_with(f, NULL, simple);
    assert_int_equal(tg_stage_admit(t), TG_DONE);
    assert_int_equal(t->err, TG_E_AUTH);
    assert_int_equal(t->http_status, 401);
    assert_non_null(strstr(t->errmsg, "Missing API key"));
    tg_turn_free(t);

    t = turn_with(f, "tg-test-keyX", simple);
    assert_int_equal(tg_stage_admit(t), TG_DONE);
    assert_int_equal(t->err, TG_E_AUTH);
    tg_turn_free(t);

    t = turn_with(f, "tg-test-key", simple);
    assert_int_equal(tg_stage_admit(t), TG_NEXT);
    assert_string_equal(t->admit.key_name, "demo");
    assert_string_equal(t->admit.user_text, "我想了解重疾险");
    assert_string_equal(t->conv.customer_id, "cust-42");
    assert_true(tg_str_has_prefix(t->admit.id, "turn_"));
    tg_turn_free(t);
}

static void test_admit_bad_input_table(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *body;
        const char *code;
        const char *needle;
    } cases[] = {
        {"{bad", "invalid_json", "not valid JSON"},
        {"[]", "invalid_json", "must be a JSON object"},
        {"{}", "missing_field", "'messages' is required"},
        {"{\"messages\":\"hi\"}", "invalid_type", "must be an array"},
        {"{\"messages\":[]}", "empty_messages", "must not be empty"},
        {"{\"messages\":[1]}", "invalid_type", "messages[0] must be an object"},
        {"{\"messages\":[{\"content\":\"x\"}]}", "invalid_type", "role is required"},
        {"{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", "invalid_value", "robot"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "invalid_type", "content must be"},
        {"{\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}", "missing_user_message",
         "user message"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"model\":7}", "invalid_type",
         "'model'"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":\"yes\"}",
         "invalid_type", "'stream'"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}",
         "invalid_type", "'temperature'"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}", "invalid_type",
         "'max_tokens'"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"user\":5}", "invalid_type",
         "'user'"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"metadata\":[]}", "invalid_type",
         "'metadata'"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":"
         "\"b\"},{\"role\":\"user\",\"content\":\"c\"},{\"role\":\"user\",\"content\":\"d\"},"
         "{\"role\":\"user\",\"content\":\"e\"}]}",
         "too_many_messages", "limit is 4"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"a\":1,\"a\":2}", "invalid_json",
         "duplicate"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        struct tg_turn *t = turn_with(f, "tg-test-key", cases[i].body);
        assert_int_equal(tg_stage_admit(t), TG_DONE);
        assert_int_equal(t->http_status, 400);
        if (strcmp(t->err_code, cases[i].code) != 0 || !strstr(t->errmsg, cases[i].needle))
            fail_msg("case %zu (%s): got code %s, message %s", i, cases[i].body, t->err_code,
                     t->errmsg);
        tg_turn_free(t);
    }
}

static void test_admit_accepts_openai_shapes(void **state)
{
    struct fixture *f = *state;
    const char *body =
        "{\"model\":\"gpt-4o\",\"stream\":true,\"temperature\":0.2,\"unknown_field\":{\"x\":1},"
        "\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"第一\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}},{\"type\":\"text\",\"text\":"
        "\"第二\"}]}]}";
    struct tg_turn *t = turn_with(f, "tg-test-key", body);
    assert_int_equal(tg_stage_admit(t), TG_NEXT);
    assert_string_equal(t->admit.model, "gpt-4o");
    assert_true(t->admit.stream);
    assert_string_equal(t->admit.user_text, "第一\n第二");
    assert_true(t->admit.new_conversation);
    tg_turn_free(t);
}

static void test_conversation_follows_customer(void **state)
{
    struct fixture *f = *state;
    struct tg_turn *a = run_turn(f, simple);
    assert_int_equal(tg_store_flush(f->p->store), TG_OK);
    struct tg_turn *b = turn_with(f, "tg-test-key",
                                  "{\"messages\":[{\"role\":\"user\",\"content\":\"第二个问题\"}],"
                                  "\"user\":\"cust-42\"}");
    assert_int_equal(tg_stage_admit(b), TG_NEXT);
    assert_false(b->admit.new_conversation);
    assert_string_equal(a->conv.id, b->conv.id);
    /* Another customer gets another conversation. */
    struct tg_turn *c = turn_with(f, "tg-test-key",
                                  "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                                  "\"user\":\"cust-43\"}");
    assert_int_equal(tg_stage_admit(c), TG_NEXT);
    assert_true(c->admit.new_conversation);
    assert_string_not_equal(a->conv.id, c->conv.id);
    /* The header names the customer when the body does not. */
    struct tg_turn *d =
        turn_with(f, "tg-test-key", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    d->customer_hint = "cust-42";
    assert_int_equal(tg_stage_admit(d), TG_NEXT);
    assert_string_equal(a->conv.id, d->conv.id);
    tg_turn_free(a);
    tg_turn_free(b);
    tg_turn_free(c);
    tg_turn_free(d);
}

/* conversation.keywords reads the customer's earlier messages, as stored. */
static void test_rules_read_the_conversation(void **state)
{
    struct fixture *f = *state;
    struct tg_turn *a = run_turn(f, "{\"messages\":[{\"role\":\"user\",\"content\":"
                                    "\"我想申请贷款\"}],\"user\":\"cust-77\"}");
    assert_int_equal(json_array_size(a->tags), 0);
    assert_int_equal(tg_store_flush(f->p->store), TG_OK);
    struct tg_turn *b = run_turn(f, "{\"messages\":[{\"role\":\"user\",\"content\":"
                                    "\"能批下来吗\"}],\"user\":\"cust-77\"}");
    assert_string_equal(json_string_value(json_array_get(b->tags, 0)), "loan_followup");
    assert_non_null(b->check.conv_text);
    json_t *hit = json_array_get(b->check.policy_hits, 0);
    assert_string_equal(tg_json_str(hit, "rule", ""), "loan-then-approve");
    /* the same words from someone who never spoke of a loan */
    struct tg_turn *c = run_turn(f, "{\"messages\":[{\"role\":\"user\",\"content\":"
                                    "\"能批下来吗\"}],\"user\":\"cust-78\"}");
    assert_int_equal(json_array_size(c->tags), 0);
    tg_turn_free(a);
    tg_turn_free(b);
    tg_turn_free(c);
}

static void test_understand_language(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *text, *lang;
    } cases[] = {
        {"我想了解重疾险", "zh"},
        {"What does my policy cover?", "en"},
        {"保険の補償内容を教えてください", "ja"},
        {"12345", "en"},
        {"我的保單號碼", "zh"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        struct tg_turn *t = turn_with(f, "tg-test-key", "{}");
        t->admit.user_text = cases[i].text;
        assert_int_equal(tg_stage_understand(t), TG_NEXT);
        assert_string_equal(t->understand.language, cases[i].lang);
        assert_true(json_is_array(json_object_get(t->understand.entities, "money")));
        assert_true(json_is_array(json_object_get(t->understand.entities, "pii")));
        assert_non_null(t->understand.intent);
        tg_turn_free(t);
    }
}

static void test_retrieve_and_precheck_lists(void **state)
{
    struct fixture *f = *state;
    struct tg_turn *t = turn_with(f, "tg-test-key", simple);
    assert_int_equal(tg_stage_admit(t), TG_NEXT); /* the stages after admit read its fields */
    assert_int_equal(tg_stage_understand(t), TG_NEXT);
    assert_int_equal(tg_stage_retrieve(t), TG_NEXT);
    assert_true(json_is_array(t->retrieve.citations));
    assert_int_equal(tg_stage_precheck(t), TG_NEXT);
    assert_true(json_is_array(t->check.policy_hits));
    assert_true(json_is_array(t->tags));
    assert_true(json_is_array(t->check.attestations));
    tg_turn_free(t);
}

static void test_generate_and_postcheck(void **state)
{
    struct fixture *f = *state;
    struct tg_turn *t = turn_with(f, "tg-test-key", simple);
    assert_int_equal(tg_stage_admit(t), TG_NEXT);
    assert_int_equal(tg_stage_generate(t), TG_NEXT);
    assert_string_equal(t->draft, "您好，这是固定回复。");
    assert_int_equal(t->draft_len, strlen("您好，这是固定回复。"));
    assert_null(t->generate.dispatch);
    assert_string_equal(t->rung, "canned");
    assert_int_equal(tg_stage_postcheck(t), TG_NEXT);
    assert_string_equal(t->draft, "您好，这是固定回复。");
    tg_turn_free(t);
}

static void test_gate_decisions(void **state)
{
    struct fixture *f = *state;
    /* refuse > human_decision > review > script > deliver; an error beats all */
    static const struct {
        bool refuse, human, review, script;
        int err;
        enum tg_decision want;
    } cases[] = {
        {false, false, false, false, TG_OK, TG_DECISION_DELIVER},
        {false, false, false, true, TG_OK, TG_DECISION_DELIVER},
        {false, false, true, true, TG_OK, TG_DECISION_REVIEW},
        {false, true, true, false, TG_OK, TG_DECISION_HUMAN_DECISION},
        {true, true, true, true, TG_OK, TG_DECISION_REFUSE},
        {true, false, false, false, TG_E_UPSTREAM, TG_DECISION_ERROR},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        struct tg_turn *t = turn_with(f, "tg-test-key", simple);
        assert_int_equal(tg_stage_admit(t), TG_NEXT);
        assert_int_equal(tg_stage_precheck(t), TG_NEXT);
        t->check.rules.refuse = cases[i].refuse;
        t->check.rules.human_decision = cases[i].human;
        t->check.rules.review = cases[i].review;
        t->check.rules.script = cases[i].script;
        t->err = cases[i].err;
        t->draft = "draft";
        t->draft_len = 5;
        assert_int_equal(tg_stage_gate(t), TG_NEXT);
        assert_int_equal(t->decision, cases[i].want);
        /* a held turn has a review task in the store, with its context */
        bool held =
            cases[i].want == TG_DECISION_REVIEW || cases[i].want == TG_DECISION_HUMAN_DECISION;
        assert_int_equal(t->review_id[0] != '\0', held);
        if (held) {
            json_t *task = NULL;
            assert_int_equal(tg_store_flush(f->p->store), TG_OK);
            assert_int_equal(tg_store_review_get(f->p->store, t->review_id, NULL, &task), TG_OK);
            assert_string_equal(tg_json_str(task, "turn_id", ""), t->admit.id);
            assert_string_equal(tg_json_str(task, "question", ""), "我想了解重疾险");
            /* AI may not decide: a human decision carries no AI draft */
            assert_int_equal(json_is_null(json_object_get(task, "draft")),
                             cases[i].want == TG_DECISION_HUMAN_DECISION);
            json_decref(task);
        }
        tg_turn_free(t);
    }
}

/* A promise to come back (and an answer in a language the customer does
 * not write) has an owner; the promise that would be the third weak reply
 * in a row goes to a person at once. */
static void test_gate_promises(void **state)
{
    struct fixture *f = *state;
    static const char english[] =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"how do I renew my policy\"}]}";
    const struct {
        const char *body, *draft;
        bool promise;
        int64_t streak;
        enum tg_decision want;
        const char *kind, *tag, *told;
    } cases[] = {
        {simple, "我需要更多时间分析，请稍候", true, 0, TG_DECISION_REVIEW, "follow_up", "follow_up",
         "我需要更多时间分析，请稍候"},
        {simple, "我需要更多时间分析，请稍候", true, 2, TG_DECISION_HANDOFF, "handoff", "degraded_3x",
         "您的问题将由人工为您处理，请稍候。"},
        {english, "续保请在保单到期前三十天内办理，可在App中操作。", false, 0, TG_DECISION_REVIEW,
         "follow_up", "language_mismatch", "您的问题需要进一步核实，我们会尽快回复您。"},
        {english, "Renew in the app up to 30 days before the policy ends.", false, 2,
         TG_DECISION_DELIVER, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        struct tg_turn *t = turn_with(f, "tg-test-key", cases[i].body);
        assert_int_equal(tg_stage_admit(t), TG_NEXT);
        assert_int_equal(tg_stage_precheck(t), TG_NEXT);
        t->draft = (char *)cases[i].draft;
        t->draft_len = strlen(cases[i].draft);
        t->promise = cases[i].promise;
        t->conv.degraded_streak = cases[i].streak;
        assert_int_equal(tg_stage_gate(t), TG_NEXT);
        assert_int_equal(t->decision, cases[i].want);
        assert_int_equal(t->gate.degraded, cases[i].want != TG_DECISION_DELIVER);
        if (cases[i].kind) {
            json_t *task = NULL;
            assert_int_equal(tg_store_flush(f->p->store), TG_OK);
            assert_int_equal(tg_store_review_get(f->p->store, t->review_id, NULL, &task), TG_OK);
            assert_string_equal(tg_json_str(task, "kind", ""), cases[i].kind);
            assert_string_equal(tg_turn_holding(t), cases[i].told);
            assert_string_equal(tg_json_str(task, "holding_reply", ""), cases[i].told);
            bool tagged = false;
            size_t k;
            json_t *v;
            json_array_foreach(t->tags, k, v) tagged |= !strcmp(json_string_value(v), cases[i].tag);
            assert_true(tagged);
            json_decref(task);
        }
        tg_turn_free(t);
    }
}

/* Every object's keys in strictly ascending byte order (needs JSON_PRESERVE_ORDER). */
static bool keys_sorted(const json_t *v)
{
    const char *key, *prev = NULL;
    json_t *e;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key, e)
        {
            if ((prev && strcmp(prev, key) >= 0) || !keys_sorted(e))
                return false;
            prev = key;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, e) if (!keys_sorted(e)) return false;
    }
    return true;
}

static void test_record_writes_audit_without_text(void **state)
{
    struct fixture *f = *state;
    struct tg_turn *t = run_turn(f, simple);
    assert_true(t->record.recorded);
    assert_true(t->record.audit_index >= 0);
    assert_int_equal(tg_store_flush(f->p->store), TG_OK);
    struct tg_audit_row row;
    assert_int_equal(tg_store_audit_get(f->p->store, (uint64_t)t->record.audit_index, &row), TG_OK);
    char *leaf = tg_strndup(row.data, row.len);
    assert_non_null(strstr(leaf, t->admit.id));
    assert_non_null(strstr(leaf, "\"decision\":\"deliver\""));
    assert_non_null(strstr(leaf, "input_hmac"));
    assert_null(strstr(leaf, "我想了解重疾险")); /* no message text in the audit log */
    assert_null(strstr(leaf, "cust-42"));        /* nor the customer id */
    /* canonical: keys sorted at every level, no insignificant whitespace */
    json_t *j = json_loads(leaf, JSON_PRESERVE_ORDER, NULL);
    assert_non_null(j);
    assert_true(keys_sorted(j));
    assert_null(strstr(leaf, ": "));
    assert_null(strstr(leaf, ", "));
    assert_null(strchr(leaf, '\n'));
    /* the leaf is numbered where it is committed, not by what it says */
    assert_null(json_object_get(j, "audit_index"));
    json_decref(j);
    tg_free(leaf);
    /* the stored record is the audit leaf itself, read back with its index */
    json_t *rec = NULL, *leafj = json_loadb(row.data, row.len, 0, NULL);
    assert_int_equal(tg_store_turn_get(f->p->store, t->admit.id, &rec), TG_OK);
    assert_int_equal(tg_json_int(rec, "audit_index", -1), t->record.audit_index);
    json_object_del(rec, "audit_index");
    assert_true(json_equal(rec, leafj));
    json_decref(rec);
    json_decref(leafj);
    tg_free(row.data);
    json_t *msgs = NULL;
    assert_int_equal(tg_store_messages(f->p->store, t->conv.id, 10, &msgs), TG_OK);
    assert_true(json_array_size(msgs) >= 2);
    json_decref(msgs);
    struct tg_audit_report rep;
    assert_int_equal(tg_audit_verify(f->p->store, &rep), TG_OK);
    tg_turn_free(t);
}

static void test_reply_shapes(void **state)
{
    struct fixture *f = *state;
    struct tg_turn *t = run_turn(f, simple);
    assert_string_equal(t->reply.type, "application/json");
    json_t *r = json_loadb(t->reply.body.data, t->reply.body.len, 0, NULL);
    assert_string_equal(tg_json_str(r, "object", ""), "chat.completion");
    assert_true(tg_str_has_prefix(tg_json_str(r, "id", ""), "chatcmpl-"));
    json_t *choice = json_array_get(json_object_get(r, "choices"), 0);
    assert_string_equal(tg_json_str(json_object_get(choice, "message"), "content", ""),
                        "您好，这是固定回复。");
    assert_string_equal(tg_json_str(choice, "finish_reason", ""), "stop");
    json_t *tg = json_object_get(r, "trustgate");
    assert_string_equal(tg_json_str(tg, "turn_id", ""), t->admit.id);
    assert_string_equal(tg_json_str(tg, "decision", ""), "deliver");
    assert_string_equal(tg_json_str(tg, "backend", ""), "canned");
    assert_int_equal(tg_json_int(tg, "audit_index", -1), t->record.audit_index);
    const char *keys[] = {"conversation_id", "citations", "policy_hits", "confidence", "intent"};
    for (size_t i = 0; i < TG_ARRAY_LEN(keys); i++)
        assert_non_null(json_object_get(tg, keys[i]));
    json_decref(r);
    tg_turn_free(t);

    t = turn_with(f, "tg-test-key", "{}");
    tg_turn_fail(t, TG_E_INVAL, 400, "missing_field", "messages", "'messages' is required");
    assert_int_equal(tg_stage_reply(t), TG_NEXT);
    assert_int_equal(t->http_status, 400);
    r = json_loadb(t->reply.body.data, t->reply.body.len, 0, NULL);
    json_t *e = json_object_get(r, "error");
    assert_string_equal(tg_json_str(e, "code", ""), "missing_field");
    assert_string_equal(tg_json_str(e, "param", ""), "messages");
    assert_string_equal(tg_json_str(e, "type", ""), "invalid_request_error");
    assert_null(json_object_get(r, "trustgate")); /* refused before it was a turn */
    json_decref(r);
    tg_turn_free(t);
}

/* The audit leaf of a recorded turn, parsed. */
static json_t *leaf_of(struct fixture *f, const struct tg_turn *t)
{
    struct tg_audit_row row;
    assert_int_equal(tg_store_flush(f->p->store), TG_OK);
    assert_int_equal(tg_store_audit_get(f->p->store, (uint64_t)t->record.audit_index, &row), TG_OK);
    json_t *leaf = json_loadb(row.data, row.len, 0, NULL);
    assert_non_null(leaf);
    tg_free(row.data);
    return leaf;
}

/*
 * Each allocation of a turn fails in turn, alone (the Nth; the ones before
 * and after it succeed): the turn always ends, and either it is whole (the
 * same decision, tags, hits and audit leaf as with memory to spare) or it
 * failed with a 5xx and, when recorded, its leaf says so.  Never an answer
 * or a record with a tag, a hit or its trigger silently left out.
 */
static void test_turn_out_of_memory(void **state)
{
    struct fixture *f = *state;
    static const char first[] = "{\"messages\":[{\"role\":\"user\",\"content\":"
                                "\"我想申请贷款\"}],\"user\":\"%s\"}";
    static const char second[] = "{\"messages\":[{\"role\":\"user\",\"content\":"
                                 "\"能批下来吗\"}],\"user\":\"%s\"}";
    char body[256], customer[32];
    long n;
    int failed = 0;
    bool fired = true;
    json_t *want = NULL; /* the leaf's tags and policy hits with memory to spare */
    for (n = -1; fired && n < 100000; n++) {
        snprintf(customer, sizeof(customer), "cust-oom-%ld", n);
        snprintf(body, sizeof(body), first, customer);
        struct tg_turn *a = run_turn(f, body);
        assert_int_equal(a->err, TG_OK);
        assert_int_equal(tg_store_flush(f->p->store), TG_OK);
        snprintf(body, sizeof(body), second, customer);
        struct tg_turn *t = turn_with(f, "tg-test-key", body);
        static int calls;
        int before = calls;
        t->done_cb = done_cb;
        t->done_arg = &calls;
        tg_mem_fail_once(n); /* n = -1: the reference turn */
        tg_pipeline_start(t);
        for (int i = 0; i < 1000 && calls == before; i++)
            event_base_loop(f->base, EVLOOP_ONCE);
        assert_int_equal(tg_store_flush(f->p->store), TG_OK); /* the record's commit too */
        fired = tg_mem_fail_once(-1) < 0;
        assert_int_equal(calls, before + 1);
        if (t->err == TG_OK) {
            /* recorded whole; the reply itself may still fail to be written (500) */
            assert_int_equal(t->decision, TG_DECISION_DELIVER);
            assert_true(t->http_status == 200 || t->http_status == 500);
            assert_true(t->record.recorded);
            assert_int_equal(json_array_size(t->tags), 1);
            assert_string_equal(json_string_value(json_array_get(t->tags, 0)), "loan_followup");
            assert_int_equal(json_array_size(t->check.policy_hits), 1);
            json_t *leaf = leaf_of(f, t);
            json_t *got = json_pack("{s:O, s:O, s:O}", "tags", json_object_get(leaf, "tags"),
                                    "policy_hits", json_object_get(leaf, "policy_hits"), "decision",
                                    json_object_get(leaf, "decision"));
            assert_non_null(got);
            assert_null(json_object_get(leaf, "error"));
            if (!want) {
                assert_int_equal(n, -1);
                want = json_incref(got);
                const json_t *hit = json_array_get(json_object_get(want, "policy_hits"), 0);
                assert_string_equal(tg_json_str(hit, "rule", ""), "loan-then-approve");
                assert_non_null(json_object_get(hit, "trigger"));
            }
            assert_true(json_equal(got, want));
            json_decref(got);
            json_decref(leaf);
        } else {
            failed++;
            /* jansson reports some failed allocations while parsing as bad input:
             * a 400 before the turn had an id, with nothing recorded */
            bool refused = t->http_status == 400 && !strcmp(t->err_code, "invalid_json");
            assert_true(t->http_status >= 500 || (refused && !t->admit.id[0]));
            assert_true(t->decision == TG_DECISION_ERROR || t->decision == TG_DECISION_NONE);
            if (t->record.recorded) {
                json_t *leaf = leaf_of(f, t);
                assert_non_null(json_object_get(leaf, "error"));
                assert_string_not_equal(tg_json_str(leaf, "decision", ""), "deliver");
                json_decref(leaf);
            }
        }
        tg_turn_free(a);
        tg_turn_free(t);
    }
    assert_false(fired); /* the last turn made fewer allocations than n: it ran whole */
    assert_true(failed > 0);
    json_decref(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stages_run_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_at_admit_skips_to_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admit_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admit_bad_input_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admit_accepts_openai_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conversation_follows_customer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rules_read_the_conversation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_understand_language, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retrieve_and_precheck_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generate_and_postcheck, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gate_promises, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gate_decisions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_writes_audit_without_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_turn_out_of_memory, setup, teardown),
    };
    /* jansson allocates through tg_malloc, as in the daemon, so it can fail too */
    json_set_alloc_funcs(tg_malloc, tg_free);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
