/*
 * admit_route.c - admit's routing: what answers this customer (the variant
 * of each running experiment, and the variant's answerer), whether it can
 * answer this message at all, and whether a person already has the
 * conversation (an open hand-off), so that no model answers.
 */
#include "pipeline/admit.h"

#include "backend/backend.h"
#include "govern/govern.h"
#include "ladder/ladder.h"
#include "metrics/metrics.h"
#include "review/review.h"

#include <string.h>

int tg_admit_variants(struct tg_turn *t)
{
    int rc = TG_OK;
    for (size_t i = 0; !rc && i < t->p->cfg->n_experiments; i++) {
        const struct tg_experiment_conf *exp = &t->p->cfg->experiments[i];
        const char *v = tg_experiment_assign(exp, t->conv.customer_id);
        if (!v)
            continue;
        if (!t->admit.variants)
            t->admit.variants = json_object();
        rc = tg_json_set(t->admit.variants, exp->name, json_string(v));
        if (rc)
            break;
        tg_metrics_experiment(t->p->metrics, exp->name, v);
        /* a variant of another release answers this customer (at most one experiment
         * changes what answers: the config's check) */
        const struct tg_answerer *a = tg_pipeline_answerer(t->p, exp->name, v);
        if (a)
            t->a = a;
    }
    return rc;
}

bool tg_admit_answerable(struct tg_turn *t)
{
    /* An image or a recording with no words, where nothing that answers can
     * see it: say so rather than answer a question nobody asked. */
    struct tg_backend *first = tg_ladder_first_backend(t->a->ladder);
    if (t->admit.media && !t->admit.user_text[0] &&
        !(first && strcmp(tg_backend_type(first), "openai") == 0)) {
        tg_turn_fail(t, TG_E_INVAL, 400, "unsupported_content", "messages",
                     "the last user message has only image, audio or file parts, and this route "
                     "answers from text; send the question as text");
        return false;
    }
    return true;
}

/* The task of the person who has the conversation now, into id: this
 * node's map, or on a store other nodes write too, the store. */
static bool with_person(struct tg_turn *t, char id[TG_ID_MAX])
{
    struct tg_review_row row;
    const char *rid = tg_json_str(t->p->with_person, t->conv.id, NULL);
    if (tg_store_shared(t->p->store)) {
        if (tg_store_review_of_conversation(t->p->store, t->conv.id, "handed_off", &row) != TG_OK)
            return false;
        rid = row.id;
    }
    if (!rid)
        return false;
    tg_strlcpy(id, rid, TG_ID_MAX);
    return true;
}

bool tg_admit_to_person(struct tg_turn *t)
{
    char id[TG_ID_MAX], err[256];
    if (t->admit.new_conversation || !with_person(t, id))
        return false;
    json_t *task = NULL;
    int rc = tg_review_customer_message(t->p->store, id, t->admit.id, t->admit.user_text, &task,
                                        err, sizeof(err));
    if (rc == TG_E_CONFLICT || rc == TG_E_NOTFOUND) {
        tg_pipeline_with_person(t->p, t->conv.id, NULL); /* closed meanwhile: the AI answers */
        return false;
    }
    if (rc) {
        tg_turn_fail(t, rc, 503, "storage_unavailable", NULL,
                     "the message could not be passed to the agent: %s", err);
        t->decision = TG_DECISION_ERROR;
        return true;
    }
    tg_strlcpy(t->review_id, id, sizeof(t->review_id));
    t->decision = TG_DECISION_HANDOFF;
    t->handoff = true;
    t->rung = "human";
    tg_review_sla_notify(t->p->sla, id, "customer_message", task);
    json_decref(task);
    return true;
}
