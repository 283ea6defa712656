/*
 * stage_precheck.c - policy rules on the input, before any model sees it.
 *
 * Creates the lists every rule writes into (policy hits, risk tags,
 * required attestations).  The rule evaluator fills them when policies are
 * configured.
 */
#include "pipeline/pipeline.h"

enum tg_stage_rc tg_stage_precheck(struct tg_turn *t)
{
    t->policy_hits = json_array();
    t->tags = json_array();
    t->attestations = json_array();
    if (!t->policy_hits || !t->tags || !t->attestations) {
        tg_turn_fail(t, TG_E_NOMEM, 500, "internal_error", NULL, "out of memory");
        return TG_DONE;
    }
    return TG_NEXT;
}
