/*
 * stage_gate.c - the one place that decides what happens to the answer.
 *
 * Fixed precedence over what the rules asked for:
 *   refuse > human_decision > handoff > review > script > deliver,
 * where handoff is the ladder ending with a person (no rung could answer,
 * or the conversation degraded too often): the task goes straight to the
 * human agents' queue.
 * A turn whose generation failed is decided "error".  A review or human
 * decision creates a review task in the store: the customer is told at
 * once that a person will answer, and the task carries the turn's whole
 * context, its required attestations and its SLA.
 */
#include "pipeline/pipeline.h"

#include "backend/backend.h"
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

/* Is queue one of the config's review.internal_queues (work such as BI
 * reports that must never delay customers)? */
static bool internal_queue(const struct tg_turn *t, const char *queue)
{
    const json_t *list =
        json_object_get(json_object_get(t->p->cfg->root, "review"), "internal_queues");
    size_t i;
    json_t *q;
    json_array_foreach(list, i, q)
    {
        if (queue && json_is_string(q) && strcmp(json_string_value(q), queue) == 0)
            return true;
    }
    return false;
}

/* The messages before this one: the stored history, or what the client sent. */
static json_t *conversation_so_far(const struct tg_turn *t)
{
    if (t->history)
        return json_deep_copy(t->history);
    json_t *out = json_array();
    const json_t *msgs = json_object_get(t->request, "messages");
    size_t n = json_array_size(msgs);
    for (size_t i = 0; i + 1 < n; i++) {
        const json_t *m = json_array_get(msgs, i);
        const json_t *c = json_object_get(m, "content");
        if (json_is_string(c))
            json_array_append_new(
                out, json_pack("{s:s, s:O}", "role", tg_json_str(m, "role", "user"), "content", c));
    }
    return out;
}

/* The citations with the passages they point at, for the reviewer. */
static json_t *evidence(const struct tg_turn *t)
{
    json_t *out = t->citations ? json_deep_copy(t->citations) : json_array();
    for (size_t i = 0; i < json_array_size(out) && i < t->n_evidence; i++)
        if (t->evidence[i].text)
            json_object_set_new(json_array_get(out, i), "text", json_string(t->evidence[i].text));
    return out;
}

static int create_task(struct tg_turn *t)
{
    /* The task keeps the question with personal data masked, as the message store does. */
    struct tg_buf q;
    tg_buf_init(&q, TG_BUF_UNLIMITED);
    if (!t->rules.redact_off &&
        tg_pii_mask(t->user_text, strlen(t->user_text), t->a->cfg->policy_pattern, &q) != TG_OK)
        tg_buf_reset(&q);
    bool human = t->decision == TG_DECISION_HUMAN_DECISION;
    bool handoff = t->decision == TG_DECISION_HANDOFF;
    const char *meta_tier = tg_json_str(json_object_get(t->request, "metadata"), "tier", "");
    bool internal = internal_queue(t, t->rules.queue);
    bool vip = strcmp(meta_tier, "vip") == 0;
    json_t *context = json_pack(
        "{s:{s:s?, s:f}, s:s, s:b, s:{s:o, s:I}, s:o}", "intent", "name", t->intent, "confidence",
        t->intent_confidence, "tier", vip ? "vip" : "standard", "internal", internal, "explanation",
        "intent_tokens", t->intent_explain ? json_deep_copy(t->intent_explain) : json_array(),
        "ungrounded_claims", (json_int_t)t->ungrounded, "conversation", conversation_so_far(t));
    json_t *cites = evidence(t);
    struct tg_review_new n = {
        .turn_id = t->id,
        .conversation_id = t->conv.id,
        .kind = handoff ? "handoff"
                : human ? "human_decision"
                        : "review",
        .queue = handoff ? "human_agent" : t->rules.queue,
        .state = handoff ? "handed_off" : NULL,
        /* internal work sorts after every customer's task, VIP customers first */
        .priority = internal ? 0
                    : vip    ? 10
                             : 5,
        .created_ms = t->created_ms,
        .sla_ms = t->rules.sla_ms ? t->rules.sla_ms : 90000,
        .attestations = t->attestations,
        .tags = t->tags,
        .policy_hits = t->policy_hits,
        .question = q.data ? q.data : t->user_text,
        .draft = human || handoff ? NULL : t->draft,
        .citations = cites,
        .holding_reply = tg_gate_holding_text(t->decision),
        .started_by = t->conv.customer_id,
        .context = context,
    };
    int rc = context && cites ? tg_review_create(t->p->store, &n, t->review_id) : TG_E_NOMEM;
    json_decref(context);
    json_decref(cites);
    tg_buf_free(&q);
    if (!rc && handoff) {
        tg_pipeline_with_person(t->p, t->conv.id, t->review_id);
        tg_review_sla_notify(t->p->sla, t->review_id, "handed_off", NULL);
    } else if (!rc)
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
    else if (t->handoff)
        t->decision = TG_DECISION_HANDOFF; /* the ladder ended with a person */
    else if (r->review)
        t->decision = TG_DECISION_REVIEW;
    else
        t->decision = TG_DECISION_DELIVER; /* a script, if any, is already the draft */
    if (t->decision == TG_DECISION_REVIEW || t->decision == TG_DECISION_HUMAN_DECISION ||
        t->decision == TG_DECISION_HANDOFF) {
        int rc = create_task(t);
        if (rc) {
            tg_turn_fail(t, rc, 503, "storage_unavailable", NULL,
                         "the turn needs a person but no review task could be stored");
            t->decision = TG_DECISION_ERROR;
        }
    }
    return TG_NEXT;
}
