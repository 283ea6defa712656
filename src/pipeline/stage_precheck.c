/*
 * stage_precheck.c - policy rules on the customer's message, before any
 * model sees it: red lines (decisions AI may not make), amount thresholds,
 * blocked topics.  A human decision or a refusal settles that no model is
 * asked at all.
 */
#include "pipeline/rules.h"

#include "policy/policy.h"
#include "text/lang.h"

#include <string.h>

enum tg_stage_rc tg_stage_precheck(struct tg_turn *t)
{
    int rc = TG_OK;
    /* the language every text the customer is given is written in */
    t->check.lang = (int)tg_lang_detect(t->p->text, t->admit.user_text, strlen(t->admit.user_text));
    t->check.policy_hits = json_array();
    t->tags = json_array();
    t->check.attestations = json_array();
    if (!t->check.policy_hits || !t->tags || !t->check.attestations)
        rc = TG_E_NOMEM;
    if (!rc && t->a->policy)
        rc = tg_rules_conversation(t);
    if (!rc && t->a->policy) {
        struct tg_policy_facts f;
        struct tg_policy_hits hits;
        tg_policy_hits_init(&hits);
        tg_rules_facts(t, &f);
        rc = tg_policy_eval(t->a->policy, TG_POLICY_PRE, &f, &hits);
        if (!rc)
            rc = tg_rules_apply(t, &hits);
        tg_policy_hits_free(&hits);
    }
    if (rc) {
        tg_turn_fail(t, rc, 500, "internal_error", NULL, "policy check failed: %s", tg_err_str(rc));
        return TG_DONE;
    }
    return TG_NEXT;
}
