/*
 * stage_gate.c - the one place that decides what happens to the answer:
 * deliver, hold for review, a human decision, hand-off, or refusal.
 *
 * A turn whose generation failed is decided "error" and answered with the
 * upstream's status; otherwise the draft is delivered unless a policy hit
 * asks for more.
 */
#include "pipeline/pipeline.h"

#include <string.h>

/* The strongest action among the policy hits decides; later rules add more. */
static enum tg_decision from_hits(const json_t *hits)
{
    enum tg_decision d = TG_DECISION_DELIVER;
    size_t i;
    json_t *h;
    json_array_foreach(hits, i, h)
    {
        const char *a = tg_json_str(h, "action", "");
        if (strcmp(a, "refuse") == 0)
            return TG_DECISION_REFUSE;
        if (strcmp(a, "human_decision") == 0)
            d = TG_DECISION_HUMAN_DECISION;
        else if (strcmp(a, "review") == 0 && d == TG_DECISION_DELIVER)
            d = TG_DECISION_REVIEW;
    }
    return d;
}

enum tg_stage_rc tg_stage_gate(struct tg_turn *t)
{
    t->decision = t->err ? TG_DECISION_ERROR : from_hits(t->policy_hits);
    return TG_NEXT;
}
