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
 *
 * No dead ends.  A reply that tells the customer to wait (the answerer's
 * low-confidence reply, a script, a script rung) is a promise: the turn is
 * held like a review, in the follow-up queue (config review.follow_up:
 * {queue, sla}, default follow_up and 2 minutes), the promise being what
 * the customer is told at once; the person's answer reaches the customer
 * as every review's does, and past the SLA the hand-off rules apply.  An
 * answer in a language the customer does not write is not given: it is a
 * promise too, the draft kept for the person.  A turn is degraded when
 * the customer got no real answer from the first choice (a step down the
 * ladder, or a promise).  After ladder.degraded_to_human (default 3)
 * degraded turns in a row in one conversation the next goes to a person
 * (degraded_3x); a promise that would be the last of the run goes to the
 * person itself, so the customer is not told to wait three times.
 */
#include "pipeline/pipeline.h"
#include "pipeline/rules.h"

#include "backend/backend.h"
#include "ladder/ladder.h"
#include "policy/policy.h"
#include "review/review.h"
#include "text/lang.h"

#include <string.h>

/* what the customer is told while a workflow waits for a person */
#define WORKFLOW_HOLDING_TEXT "您的问题需要人工复核，请稍候。"

/* what a customer is told when the answer was in a language they do not write */
#define FOLLOW_UP_TEXT "您的问题需要进一步核实，我们会尽快回复您。"

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

const char *tg_turn_holding(struct tg_turn *t)
{
    return t->gate.holding ? t->gate.holding : tg_turn_text(t, tg_gate_holding_text(t->decision));
}

/* Is queue one of the config's review.internal_queues (work such as BI
 * reports that must never delay customers)? */
static bool internal_queue(const struct tg_turn *t, const char *queue)
{
    const struct tg_review_conf *r = &t->p->cfg->review;
    for (size_t i = 0; queue && i < r->n_internal_queues; i++)
        if (strcmp(r->internal_queues[i], queue) == 0)
            return true;
    return false;
}

/* The messages before this one: the stored history, or what the client
 * sent.  New reference; NULL when out of memory. */
static json_t *conversation_so_far(const struct tg_turn *t)
{
    if (t->generate.history)
        return json_deep_copy(t->generate.history);
    json_t *out = json_array();
    int rc = out ? TG_OK : TG_E_NOMEM;
    const json_t *msgs = json_object_get(t->admit.request, "messages");
    size_t n = json_array_size(msgs);
    for (size_t i = 0; !rc && i + 1 < n; i++) {
        const json_t *m = json_array_get(msgs, i);
        const json_t *c = json_object_get(m, "content");
        if (json_is_string(c))
            rc = tg_json_push(
                out, json_pack("{s:s, s:O}", "role", tg_json_str(m, "role", "user"), "content", c));
    }
    if (rc) {
        json_decref(out);
        out = NULL;
    }
    return out;
}

/* The citations with the passages they point at, for the reviewer.  New
 * reference; NULL when out of memory. */
static json_t *evidence(const struct tg_turn *t)
{
    json_t *out = t->retrieve.citations ? json_deep_copy(t->retrieve.citations) : json_array();
    int rc = out ? TG_OK : TG_E_NOMEM;
    for (size_t i = 0; !rc && i < json_array_size(out) && i < t->retrieve.n_evidence; i++)
        if (t->retrieve.evidence[i].text)
            rc = tg_json_set(json_array_get(out, i), "text",
                             json_string(t->retrieve.evidence[i].text));
    if (rc) {
        json_decref(out);
        out = NULL;
    }
    return out;
}

static int create_task(struct tg_turn *t)
{
    /* The task keeps the question with personal data masked, as the message store does. */
    struct tg_buf q;
    tg_buf_init(&q, TG_BUF_UNLIMITED);
    if (!t->check.rules.redact_off && tg_pii_mask(t->admit.user_text, strlen(t->admit.user_text),
                                                  t->a->cfg->policy_pattern, &q) != TG_OK)
        tg_buf_reset(&q);
    bool human = t->decision == TG_DECISION_HUMAN_DECISION;
    bool handoff = t->decision == TG_DECISION_HANDOFF;
    bool internal = internal_queue(t, t->check.rules.queue);
    bool vip = tg_turn_class(t) == TG_CLASS_VIP; /* the key's class, never free metadata */
    json_t *context = json_pack(
        "{s:{s:s?, s:f}, s:s, s:b, s:{s:o, s:I}, s:o}", "intent", "name", t->understand.intent,
        "confidence", t->understand.intent_confidence, "tier", vip ? "vip" : "standard", "internal",
        internal, "explanation", "intent_tokens",
        t->understand.intent_explain ? json_deep_copy(t->understand.intent_explain) : json_array(),
        "ungrounded_claims", (json_int_t)t->check.ungrounded, "conversation",
        conversation_so_far(t));
    json_t *cites = evidence(t);
    /* what a person's answer will carry (disclaimers), shown before they send */
    int rc = tg_json_set(context, "people_answers", tg_rules_for_people(t));
    int64_t sla_ms = t->check.rules.sla_ms ? t->check.rules.sla_ms : 90000;
    if (t->gate.follow_up)
        sla_ms = t->a->cfg->review.follow_up_sla_ms;
    struct tg_review_new n = {
        .turn_id = t->admit.id,
        .conversation_id = t->conv.id,
        .kind = handoff             ? "handoff"
                : human             ? "human_decision"
                : t->gate.follow_up ? "follow_up"
                                    : "review",
        .queue = handoff             ? "human_agent"
                 : t->gate.follow_up ? t->a->cfg->review.follow_up_queue
                                     : t->check.rules.queue,
        .state = handoff ? "handed_off" : NULL,
        /* internal work sorts after every customer's task, VIP customers first */
        .priority = internal ? 0
                    : vip    ? 10
                             : 5,
        .created_ms = t->run.created_ms,
        .sla_ms = sla_ms,
        .attestations = t->check.attestations,
        .tags = t->tags,
        .policy_hits = t->check.policy_hits,
        .question = q.data ? q.data : t->admit.user_text,
        /* a promise is not an answer: the person writes one */
        .draft = human || handoff || (t->gate.follow_up && t->promise && !t->gate.unreadable)
                     ? NULL
                     : t->draft,
        .citations = cites,
        .holding_reply = tg_turn_holding(t),
        .started_by = t->conv.customer_id,
        .context = context,
    };
    if (!rc)
        rc = cites ? tg_review_create(t->p->store, &n, t->review_id) : TG_E_NOMEM;
    json_decref(context);
    json_decref(cites);
    tg_buf_free(&q);
    if (!rc && handoff) {
        /* later messages go to the person only if the conversation is known to be theirs */
        rc = tg_pipeline_with_person(t->p, t->conv.id, t->review_id);
        if (!rc)
            tg_review_sla_notify(t->p->sla, t->review_id, "handed_off", NULL);
    } else if (!rc)
        rc = tg_review_sla_track(t->p->sla, t->review_id, n.created_ms + n.sla_ms);
    return rc;
}

/* A Simplified answer for a zh-Hant customer, in Traditional characters. */
static void to_traditional(struct tg_turn *t)
{
    const char *tr = tg_turn_text(t, t->draft);
    if (tr && tr != t->draft && strcmp(tr, t->draft) != 0) {
        t->draft = (char *)tr;
        t->draft_len = strlen(tr);
        json_decref(t->logprobs); /* they describe the model's own tokens */
        t->logprobs = NULL;
    }
}

enum tg_stage_rc tg_stage_gate(struct tg_turn *t)
{
    const struct tg_turn_rules *r = &t->check.rules;
    int rc = TG_OK;
    bool answer = !t->err && !r->refuse && !r->human_decision && !t->handoff;
    enum tg_lang lang = (enum tg_lang)t->check.lang;
    if (answer && !t->promise && t->draft &&
        !tg_lang_reads(t->p->text, lang, t->draft, t->draft_len)) {
        t->promise = t->gate.unreadable = true; /* not given: a person answers in their language */
        t->gate.holding = tg_turn_text(t, FOLLOW_UP_TEXT);
        rc = tg_json_push(t->tags, json_string("language_mismatch"));
    }
    t->gate.degraded = !t->err && (t->generate.degradations > 0 || t->promise);
    t->gate.degraded_run = t->gate.degraded ? (int)t->conv.degraded_streak + 1 : 0;
    if (t->err)
        t->decision = TG_DECISION_ERROR;
    else if (r->refuse)
        t->decision = TG_DECISION_REFUSE;
    else if (r->human_decision)
        t->decision = TG_DECISION_HUMAN_DECISION;
    else if (t->handoff)
        t->decision = TG_DECISION_HANDOFF; /* the ladder ended with a person */
    else if (t->workflow.waiting) {
        /* the turn's workflow waits for a person: its task is the turn's */
        t->decision = TG_DECISION_REVIEW;
        tg_strlcpy(t->review_id, t->workflow.review_id, sizeof(t->review_id));
        t->gate.holding = tg_turn_text(t, WORKFLOW_HOLDING_TEXT);
    } else if (r->review) {
        t->decision = TG_DECISION_REVIEW;
        if (r->review_text) /* the rule's own words while the customer waits */
            t->gate.holding = tg_turn_text(t, r->review_text);
    } else if (t->promise) {
        t->decision = TG_DECISION_REVIEW; /* a promise has an owner */
        t->gate.follow_up = true;
        if (!t->gate.holding)
            t->gate.holding = tg_turn_text(t, t->draft);
        if (!rc)
            rc = tg_json_push(t->tags, json_string("follow_up"));
    } else
        t->decision = TG_DECISION_DELIVER; /* a script, if any, is already the draft */
    /* a promise that would be the third weak reply in a row: a person takes
     * over now (an answer from a lower rung is given, and the next turn goes
     * to a person: stage_generate.c) */
    if (t->gate.degraded && t->gate.follow_up &&
        t->conv.degraded_streak + 1 >= tg_ladder_max_streak(t->a->ladder)) {
        t->decision = TG_DECISION_HANDOFF;
        t->gate.follow_up = false;
        t->gate.holding = NULL;
        size_t i;
        json_t *v;
        json_array_foreach(t->tags, i, v) if (!strcmp(json_string_value(v), "follow_up"))
        {
            json_array_remove(t->tags, i);
            break;
        }
        if (!rc)
            rc = tg_json_push(t->tags, json_string("degraded_3x"));
    }
    if (rc) {
        /* a decision whose tags are not all on the record is not taken */
        tg_turn_fail(t, rc, 500, "internal_error", NULL, "gate failed: %s", tg_err_str(rc));
        t->decision = TG_DECISION_ERROR;
    }
    if (t->decision == TG_DECISION_DELIVER && lang == TG_LANG_ZH_HANT && t->draft)
        to_traditional(t);
    if ((t->decision == TG_DECISION_REVIEW && !t->workflow.waiting) ||
        t->decision == TG_DECISION_HUMAN_DECISION || t->decision == TG_DECISION_HANDOFF) {
        rc = create_task(t);
        if (rc) {
            tg_turn_fail(t, rc, 500, "storage_unavailable", NULL,
                         "the turn needs a person but no review task could be stored");
            t->decision = TG_DECISION_ERROR;
        }
    }
    return TG_NEXT;
}
