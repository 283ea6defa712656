/*
 * stage_record.c - make the turn durable and provable: one audit leaf, the
 * turn record, the conversation and its messages, the metrics, and one
 * JSON log line.
 *
 * The turn record is written once, as canonical JSON (keys sorted, no
 * insignificant whitespace), and that same text is both the audit leaf
 * and the stored record.  It carries its own audit index, keyed digests
 * (HMAC-SHA256) of the customer's text and of the answer, and a keyed
 * pseudonym of the customer id, instead of the text itself: the log proves
 * what was said without holding personal data; the text (PII masked)
 * lives in the message store.  The log
 * line carries ids, the decision and timings only — never message text.
 *
 * Keys below are written in sorted order by hand; test_pipeline checks
 * that the result is canonical.
 */
#include "pipeline/pipeline.h"

#include "audit/audit.h"
#include "backend/backend.h"
#include "core/jw.h"
#include "policy/policy.h"

#include <stdlib.h>
#include <string.h>

/* Stages in alphabetical order of their names, for canonical stage_us. */
static const enum tg_stage_id stages_sorted[] = {
    TG_STAGE_ADMIT,    TG_STAGE_GATE,     TG_STAGE_GENERATE,   TG_STAGE_POSTCHECK,
    TG_STAGE_PRECHECK, TG_STAGE_RETRIEVE, TG_STAGE_UNDERSTAND,
};

/*
 * A keyed digest (HMAC-SHA256 with the deployment's pseudonym key): the
 * log proves what was said to whoever holds the key, and a guess at a
 * short text (a phone number) cannot be confirmed by hashing it.
 */
static void digest(const struct tg_turn *t, struct tg_jw *w, const char *key, const char *s,
                   size_t n)
{
    uint8_t h[TG_SHA256_LEN];
    char hex[2 * TG_SHA256_LEN + 1];
    tg_hmac_sha256(t->p->pseudonym_key, sizeof(t->p->pseudonym_key), s, n, h);
    tg_hex_encode(h, sizeof(h), hex);
    tg_jw_kstr(w, key, hex);
}

static void stage_us(struct tg_jw *w, const struct tg_turn *t)
{
    tg_jw_key(w, "stage_us");
    tg_jw_obj(w);
    for (size_t i = 0; i < TG_ARRAY_LEN(stages_sorted); i++)
        tg_jw_kint(w, tg_stage_name(stages_sorted[i]), t->run.stage_ns[stages_sorted[i]] / 1000);
    tg_jw_end(w);
}

static void sorted_json(struct tg_jw *w, const char *key, const json_t *v)
{
    tg_jw_key(w, key);
    if (v) {
        tg_jw_json(w, v);
    } else {
        tg_jw_arr(w);
        tg_jw_end(w);
    }
}

/* The functions the answer asked the client to call, with personal data in
 * their arguments masked (the arguments as written go only to the client). */
static int tool_calls(const struct tg_turn *t, struct tg_jw *w)
{
    struct tg_buf masked;
    int rc = TG_OK;
    tg_buf_init(&masked, TG_BUF_UNLIMITED);
    tg_jw_key(w, "tool_calls");
    tg_jw_arr(w);
    for (size_t i = 0; i < t->n_calls && !rc; i++) {
        const struct tg_policy_tool_call *c = &t->calls[i];
        tg_buf_reset(&masked);
        rc = tg_pii_mask(c->arguments, c->arguments_len, t->a->cfg->policy_pattern, &masked);
        tg_jw_obj(w);
        tg_jw_key(w, "arguments");
        tg_jw_strn(w, masked.data ? masked.data : "", masked.len);
        tg_jw_key(w, "name");
        tg_jw_strn(w, c->name, c->name_len);
        tg_jw_end(w);
    }
    tg_jw_end(w);
    tg_buf_free(&masked);
    return rc;
}

/* The canonical turn record (its index in the audit log is given where it
 * is committed, and kept beside it: tg_store_turn_get adds it). */
static int write_record(const struct tg_turn *t, struct tg_buf *out)
{
    struct tg_jw w;
    tg_jw_init(&w, out);
    w.sorted = true;
    tg_jw_obj(&w);
    if (t->draft && !t->err)
        digest(t, &w, "answer_hmac", t->draft, t->draft_len);
    tg_jw_kstr(&w, "api_key", t->admit.key_name ? t->admit.key_name : "");
    sorted_json(&w, "attestations", t->check.attestations);
    tg_jw_kstr(&w, "backend", t->generate.backend ? tg_backend_name(t->generate.backend) : NULL);
    tg_jw_kstr(&w, "channel", t->channel);
    sorted_json(&w, "citations", t->retrieve.citations);
    tg_jw_key(&w, "confidence");
    if (t->confidence >= 0)
        tg_jw_real(&w, t->confidence);
    else
        tg_jw_null(&w);
    tg_jw_kstr(&w, "conversation_id", t->conv.id);
    tg_jw_kint(&w, "created_ms", t->run.created_ms);
    if (t->conv.customer_id[0]) {
        char ps[33];
        tg_pii_pseudonym(t->p->pseudonym_key, sizeof(t->p->pseudonym_key), "customer",
                         t->conv.customer_id, strlen(t->conv.customer_id), ps);
        tg_jw_kstr(&w, "customer_pseudonym", ps);
    } else {
        tg_jw_kstr(&w, "customer_pseudonym", NULL);
    }
    tg_jw_kstr(&w, "decision", tg_decision_name(t->decision));
    tg_jw_kint(&w, "degradations", t->generate.degradations + t->promise);
    if (t->err) {
        tg_jw_key(&w, "error");
        tg_jw_obj(&w);
        tg_jw_kstr(&w, "code", t->err_code ? t->err_code : "error");
        tg_jw_kstr(&w, "message", t->errmsg);
        tg_jw_kint(&w, "status", t->http_status);
        tg_jw_end(&w);
    }
    if (t->admit.variants) {
        tg_jw_key(&w, "experiments");
        tg_jw_json(&w, t->admit.variants);
    }
    tg_jw_key(&w, "explanation");
    tg_jw_obj(&w);
    sorted_json(&w, "intent_tokens", t->understand.intent_explain);
    tg_jw_kint(&w, "ungrounded_claims", (int64_t)t->check.ungrounded);
    tg_jw_end(&w);
    digest(t, &w, "input_hmac", t->admit.user_text, strlen(t->admit.user_text));
    tg_jw_key(&w, "intent");
    tg_jw_obj(&w);
    tg_jw_key(&w, "confidence");
    tg_jw_real(&w, t->understand.intent_confidence);
    tg_jw_kstr(&w, "name", t->understand.intent ? t->understand.intent : "unclassified");
    tg_jw_end(&w);
    tg_jw_kstr(&w, "kind", "turn");
    /* every retry and step down the ladder, with its cause (degradation events) */
    if (json_array_size(t->generate.ladder_events)) {
        tg_jw_key(&w, "ladder");
        tg_jw_json(&w, t->generate.ladder_events);
    }
    tg_jw_kstr(&w, "language", t->understand.language ? t->understand.language : "");
    tg_jw_kstr(&w, "model_requested", t->admit.model ? t->admit.model : "");
    sorted_json(&w, "policy_hits", t->check.policy_hits);
    /* what answered: the content hash of its files and settings (config.h) */
    tg_jw_key(&w, "release");
    tg_jw_obj(&w);
    tg_jw_kstr(&w, "hash", t->a->hash);
    tg_jw_kstr(&w, "name", t->a->release[0] ? t->a->release : NULL);
    tg_jw_end(&w);
    if (t->review_id[0])
        tg_jw_kstr(&w, "review_id", t->review_id);
    if (t->rung)
        tg_jw_kstr(&w, "rung", t->rung);
    /* fairness attributes, pseudonymised (admit); never read by a rule */
    if (t->admit.sensitive) {
        tg_jw_key(&w, "sensitive");
        tg_jw_json(&w, t->admit.sensitive);
    }
    stage_us(&w, t);
    sorted_json(&w, "tags", t->tags);
    int rc = t->n_calls ? tool_calls(t, &w) : TG_OK;
    tg_jw_kstr(&w, "turn_id", t->admit.id);
    if (t->generate.upstream_model[0])
        tg_jw_kstr(&w, "upstream_model", t->generate.upstream_model);
    tg_jw_key(&w, "usage");
    tg_jw_obj(&w);
    tg_jw_kint(&w, "completion_tokens", t->generate.completion_tokens);
    tg_jw_kint(&w, "prompt_tokens", t->generate.prompt_tokens);
    tg_jw_end(&w);
    if (t->workflow.run) {
        tg_jw_key(&w, "workflow");
        tg_jw_obj(&w);
        tg_jw_kstr(&w, "name", t->workflow.name);
        tg_jw_kstr(&w, "run", t->workflow.run);
        tg_jw_end(&w);
    }
    tg_jw_end(&w);
    return rc ? rc : tg_jw_finish(&w);
}

static void log_line(const struct tg_turn *t)
{
    /* A keyed pseudonym identifies the customer across lines without naming them. */
    char hex[33];
    struct tg_buf b;
    struct tg_jw w;
    tg_pii_pseudonym(t->p->pseudonym_key, sizeof(t->p->pseudonym_key), "customer",
                     t->conv.customer_id, strlen(t->conv.customer_id), hex);
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    tg_jw_init(&w, &b);
    tg_jw_obj(&w);
    tg_jw_kstr(&w, "event", "turn");
    tg_jw_kstr(&w, "turn_id", t->admit.id);
    tg_jw_kstr(&w, "conversation_id", t->conv.id);
    tg_jw_kstr(&w, "customer", t->conv.customer_id[0] ? hex : NULL);
    tg_jw_kstr(&w, "decision", tg_decision_name(t->decision));
    tg_jw_kstr(&w, "backend", t->generate.backend ? tg_backend_name(t->generate.backend) : NULL);
    tg_jw_kint(&w, "audit_index", t->record.audit_index);
    stage_us(&w, t);
    tg_jw_kint(&w, "total_us", (tg_clock_mono_ns() - t->run.t0_ns) / 1000);
    tg_jw_end(&w);
    if (tg_jw_finish(&w) == TG_OK)
        tg_log_line(b.data, b.len);
    tg_buf_free(&b);
}

/*
 * Where the deployment asks for it (privacy.customer_map), the customer id
 * behind the pseudonym the store keeps, once per new conversation, as the
 * blob customer/PSEUDONYM: {"customer_id", "since_ms"}.  Without it the id
 * is nowhere at rest (`trustgate customer` then finds nothing).
 */
static int map_customer(struct tg_turn *t)
{
    char ps[TG_STORE_KEY_MAX], key[TG_STORE_KEY_MAX + 16];
    if (!t->admit.new_conversation || !t->conv.customer_id[0] || !t->p->cfg->customer_map)
        return TG_OK;
    int rc = tg_store_pseudonym(t->p->store, t->conv.customer_id, ps);
    if (rc)
        return rc;
    snprintf(key, sizeof(key), "customer/%s", ps);
    json_t *v = json_pack("{s:s, s:I}", "customer_id", t->conv.customer_id, "since_ms",
                          (json_int_t)t->run.created_ms);
    char *s = v ? tg_json_dumps(v, JSON_COMPACT) : NULL;
    rc = s ? tg_store_blob_put(t->p->store, key, s, strlen(s)) : TG_E_NOMEM;
    free(s);
    json_decref(v);
    return rc;
}

static int persist(struct tg_turn *t)
{
    struct tg_pipeline *p = t->p;
    int rc;
    t->conv.updated_ms = t->run.created_ms;
    t->conv.turns++;
    /* weak replies in a row; a real answer, or a person taking over, ends the run */
    bool degraded = t->decision != TG_DECISION_HANDOFF && t->gate.degraded;
    t->conv.degraded_streak = degraded ? t->conv.degraded_streak + 1 : 0;
    /* counted where committed: a turn of the same customer elsewhere is not lost */
    rc = tg_store_conversation_step(p->store, &t->conv, degraded);
    if (!rc)
        rc = map_customer(t);
    tg_pipeline_remember(p, &t->conv);
    /* Personal data is stored masked unless a rule said otherwise. */
    struct tg_buf masked;
    tg_buf_init(&masked, TG_BUF_UNLIMITED);
    const char *said = t->admit.user_text;
    if (!rc && !t->check.rules.redact_off) {
        rc = tg_pii_mask(t->admit.user_text, strlen(t->admit.user_text), t->a->cfg->policy_pattern,
                         &masked);
        if (!rc && masked.data)
            said = masked.data;
    }
    struct tg_message m = {.role = "user", .content = said, .ts_ms = t->run.created_ms};
    tg_strlcpy(m.conversation_id, t->conv.id, sizeof(m.conversation_id));
    tg_strlcpy(m.turn_id, t->admit.id, sizeof(m.turn_id));
    if (!rc)
        rc = tg_store_message_add(p->store, &m);
    if (!rc && t->draft && t->decision == TG_DECISION_DELIVER && (t->draft_len || !t->n_calls)) {
        m.role = "assistant";
        m.content = t->draft;
        rc = tg_store_message_add(p->store, &m);
    } else if (!rc &&
               (t->decision == TG_DECISION_REVIEW || t->decision == TG_DECISION_HUMAN_DECISION ||
                t->decision == TG_DECISION_HANDOFF)) {
        /* what a held customer was told, so whoever reads the conversation
         * later (an agent, the model) sees the promises made */
        m.role = "assistant";
        m.content = tg_turn_holding(t);
        rc = tg_store_message_add(p->store, &m);
    }
    if (!rc)
        rc = tg_store_turn_put_leaf(p->store, t->admit.id, t->conv.id,
                                    tg_decision_name(t->decision), t->run.created_ms);
    tg_buf_free(&masked);
    return rc;
}

/* Mark the turn failed because its record is not durable: nothing is delivered. */
static void unrecorded(struct tg_turn *t, int rc)
{
    tg_error("turn %s: cannot record: %s", t->admit.id, tg_err_str(rc));
    tg_turn_fail(t, rc, 503, "storage_unavailable", NULL,
                 "the turn could not be recorded; nothing was delivered");
    t->decision = TG_DECISION_ERROR;
    t->record.recorded = false;
}

/* The record is committed (or can never be): the reply may go. */
static void committed_cb(struct tg_commit_wait *w, int err)
{
    struct tg_turn *t = (struct tg_turn *)((char *)w - offsetof(struct tg_turn, record.commit));
    uint64_t index;
    t->record.commit_pending = false;
    if (!err && tg_audit_index(t->p->audit, t->record.leaf_seq, &index) == TG_OK)
        t->record.audit_index = (int64_t)index;
    if (err)
        unrecorded(t, err);
    if (t->p->log_turns && tg_log_enabled(TG_LOG_INFO))
        log_line(t);
    if (t->run.waiting)
        tg_pipeline_resume(t);
}

enum tg_stage_rc tg_stage_record(struct tg_turn *t)
{
    struct tg_pipeline *p = t->p;
    struct tg_buf record;
    tg_buf_init(&record, TG_BUF_UNLIMITED);
    int rc = write_record(t, &record);
    if (!rc)
        rc = tg_audit_append(p->audit, record.data, record.len, &t->record.leaf_seq);
    if (!rc)
        rc = persist(t);
    tg_buf_free(&record);
    t->record.recorded = rc == TG_OK;
    if (rc)
        unrecorded(t, rc); /* nothing may be delivered that is not on the record */
    tg_metrics_decision(p->metrics, t->decision);
    if (rc) {
        if (p->log_turns && tg_log_enabled(TG_LOG_INFO))
            log_line(t);
        return TG_NEXT;
    }
    /* The reply, with its turn id, review id and audit index, waits for the
     * commit that makes them durable (group commit serves every turn waiting). */
    t->record.commit_pending = true;
    t->record.commit.cb = committed_cb;
    tg_pipeline_after_commit(p, &t->record.commit);
    return t->record.commit_pending ? TG_WAIT : TG_NEXT;
}
