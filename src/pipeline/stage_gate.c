/*
 * stage_gate.c - the one place that decides what happens to the answer.
 *
 * Fixed precedence over what the rules asked for:
 *   refuse > human_decision > review > script > deliver.
 * A turn whose generation failed is decided "error".  A review or human
 * decision creates a review task in the store: the customer is told at
 * once that a person will answer, and the task carries the turn's whole
 * context, its required attestations and its SLA.
 */
#include "pipeline/pipeline.h"

#include "policy/policy.h"
#include "review/review.h"

#include <string.h>

/* The holding reply a held turn gives at once. */
const char *tg_gate_holding_text(enum tg_decision d)
{
    switch (d) {
    case TG_DECISION_REVIEW:
        return "您的问题需要人工复核，我们会尽快回复您。";
    case TG_DECISION_HUMAN_DECISION:
    case TG_DECISION_HANDOFF:
        return "您的问题将由人工为您处理，请稍候。";
    case TG_DECISION_REFUSE:
        return "抱歉，这个问题我无法回答。";
    default:
        return "";
    }
}

static int create_task(struct tg_turn *t)
{
    /* The task keeps the question with personal data masked, as the message store does. */
    struct tg_buf q;
    tg_buf_init(&q, TG_BUF_UNLIMITED);
    if (!t->rules.redact_off &&
        tg_pii_mask(t->user_text, strlen(t->user_text), t->p->cfg->policy_pattern, &q) != TG_OK)
        tg_buf_reset(&q);
    bool human = t->decision == TG_DECISION_HUMAN_DECISION;
    const char *meta_tier = tg_json_str(json_object_get(t->request, "metadata"), "tier", "");
    struct tg_review_new n = {
        .turn_id = t->id,
        .conversation_id = t->conv.id,
        .kind = human ? "human_decision" : "review",
        .queue = t->rules.queue,
        .priority = strcmp(meta_tier, "vip") == 0 ? 10 : 5,
        .created_ms = t->created_ms,
        .sla_ms = t->rules.sla_ms ? t->rules.sla_ms : 90000,
        .attestations = t->attestations,
        .tags = t->tags,
        .policy_hits = t->policy_hits,
        .question = q.data ? q.data : t->user_text,
        .draft = human ? NULL : t->draft,
        .citations = t->citations,
        .holding_reply = tg_gate_holding_text(t->decision),
        .started_by = t->conv.customer_id,
    };
    int rc = tg_review_create(t->p->store, &n, t->review_id);
    tg_buf_free(&q);
    if (!rc)
        rc = tg_review_sla_track(t->p->sla, t->review_id, n.created_ms + n.sla_ms);
    return rc;
}

enum tg_stage_rc tg_stage_gate(struct tg_turn *t)
{
    const struct tg_turn_rules *r = &t->rules;
    if (t->err)
        t->decision = TG_DECISION_ERROR;
    else if (r->refuse)
        t->decision = TG_DECISION_REFUSE;
    else if (r->human_decision)
        t->decision = TG_DECISION_HUMAN_DECISION;
    else if (r->review)
        t->decision = TG_DECISION_REVIEW;
    else
        t->decision = TG_DECISION_DELIVER; /* a script, if any, is already the draft */
    if (t->decision == TG_DECISION_REVIEW || t->decision == TG_DECISION_HUMAN_DECISION) {
        int rc = create_task(t);
        if (rc) {
            tg_turn_fail(t, rc, 503, "storage_unavailable", NULL,
                         "the turn needs a person but no review task could be stored");
            t->decision = TG_DECISION_ERROR;
        }
    }
    return TG_NEXT;
}
