/*
 * stage_record.c - make the turn durable and provable: the conversation
 * and its messages, the turn record, one audit leaf, the metrics, and one
 * JSON log line.
 *
 * The audit leaf is the canonical JSON of the turn record.  It carries
 * SHA-256 digests of the customer's text and of the answer instead of the
 * text itself, so the log proves what was said without holding personal
 * data; the text lives in the message store.  The log line carries ids,
 * the decision and timings only — never message text.
 */
#include "pipeline/pipeline.h"

#include "audit/audit.h"
#include "backend/backend.h"

#include <string.h>

static json_t *digest(const char *s, size_t n)
{
    uint8_t h[TG_SHA256_LEN];
    char hex[2 * TG_SHA256_LEN + 1];
    tg_sha256(s, n, h);
    tg_hex_encode(h, sizeof(h), hex);
    return json_string(hex);
}

/* Stage timings in microseconds, keyed by stage name. */
static json_t *timings(const struct tg_turn *t)
{
    json_t *o = json_object();
    for (int s = 0; s < TG_STAGE_RECORD && o; s++)
        json_object_set_new(o, tg_stage_name((enum tg_stage_id)s),
                            json_integer(t->stage_ns[s] / 1000));
    return o;
}

/* The record kept in the store and hashed into the audit log. */
static json_t *turn_record(const struct tg_turn *t)
{
    json_t *r = tg_turn_summary(t, false);
    if (!r)
        return NULL;
    json_object_del(r, "audit_index");
    json_object_set_new(r, "kind", json_string("turn"));
    json_object_set_new(r, "created_ms", json_integer(t->created_ms));
    json_object_set_new(r, "channel", json_string(t->channel));
    json_object_set_new(r, "api_key", json_string(t->key_name ? t->key_name : ""));
    json_object_set_new(r, "customer_sha256",
                        digest(t->conv.customer_id, strlen(t->conv.customer_id)));
    json_object_set_new(r, "model_requested", json_string(t->model ? t->model : ""));
    json_object_set_new(r, "language", json_string(t->language ? t->language : ""));
    json_object_set_new(r, "input_sha256", digest(t->user_text, strlen(t->user_text)));
    if (t->draft && !t->err)
        json_object_set_new(r, "answer_sha256", digest(t->draft, t->draft_len));
    if (t->upstream_model[0])
        json_object_set_new(r, "upstream_model", json_string(t->upstream_model));
    json_object_set_new(r, "usage",
                        json_pack("{s:I, s:I}", "prompt_tokens", (json_int_t)t->prompt_tokens,
                                  "completion_tokens", (json_int_t)t->completion_tokens));
    if (t->err)
        json_object_set_new(r, "error",
                            json_pack("{s:s, s:i, s:s}", "code",
                                      t->err_code ? t->err_code : "error", "status", t->http_status,
                                      "message", t->errmsg));
    json_object_set_new(r, "stage_us", timings(t));
    return r;
}

static void log_line(const struct tg_turn *t)
{
    /* A short digest identifies the customer across lines without naming them. */
    uint8_t h[TG_SHA256_LEN];
    char hex[2 * TG_SHA256_LEN + 1];
    tg_sha256(t->conv.customer_id, strlen(t->conv.customer_id), h);
    tg_hex_encode(h, 8, hex);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:I, s:o, s:I}", "event", "turn",
                          "turn_id", t->id, "conversation_id", t->conv.id, "customer", hex,
                          "decision", tg_decision_name(t->decision), "backend",
                          t->backend ? tg_backend_name(t->backend) : NULL, "audit_index",
                          (json_int_t)t->audit_index, "stage_us", timings(t), "total_us",
                          (json_int_t)((tg_clock_mono_ns() - t->t0_ns) / 1000));
    if (o)
        tg_log_json(o);
    json_decref(o);
}

static int persist(struct tg_turn *t, const json_t *record)
{
    struct tg_pipeline *p = t->p;
    int rc;
    t->conv.updated_ms = t->created_ms;
    t->conv.turns++;
    t->conv.degraded_streak = t->degradations ? t->conv.degraded_streak + 1 : 0;
    rc = tg_store_conversation_put(p->store, &t->conv);
    struct tg_message m = {.role = "user", .content = t->user_text, .ts_ms = t->created_ms};
    tg_strlcpy(m.conversation_id, t->conv.id, sizeof(m.conversation_id));
    tg_strlcpy(m.turn_id, t->id, sizeof(m.turn_id));
    if (!rc)
        rc = tg_store_message_add(p->store, &m);
    if (!rc && t->draft && t->decision == TG_DECISION_DELIVER) {
        m.role = "assistant";
        m.content = t->draft;
        rc = tg_store_message_add(p->store, &m);
    }
    if (!rc)
        rc = tg_store_turn_put(p->store, t->id, t->conv.id, tg_decision_name(t->decision),
                               t->created_ms, record);
    return rc;
}

enum tg_stage_rc tg_stage_record(struct tg_turn *t)
{
    struct tg_pipeline *p = t->p;
    uint64_t index = 0;
    json_t *record = turn_record(t);
    int rc = record ? tg_audit_append_json(p->audit, record, &index) : TG_E_NOMEM;
    if (rc == TG_OK) {
        t->audit_index = (int64_t)index;
        json_object_set_new(record, "audit_index", json_integer(t->audit_index));
        rc = persist(t, record);
    }
    json_decref(record);
    if (rc) {
        /* Nothing may be delivered that is not on the record. */
        tg_error("turn %s: cannot record: %s", t->id, tg_err_str(rc));
        tg_turn_fail(t, rc, 503, "storage_unavailable", NULL,
                     "the turn could not be recorded; nothing was delivered");
        t->decision = TG_DECISION_ERROR;
    }
    t->recorded = rc == TG_OK;
    tg_metrics_decision(p->metrics, t->decision);
    if (p->log_turns)
        log_line(t);
    return TG_NEXT;
}
