/*
 * stage_admit.c - the door: who is asking, is the request well formed,
 * which conversation it continues and what answers it.  The runner of
 * admit's concerns (admit.h), each in its own file: authentication
 * (admit_auth.c), validation (admit_request.c), the conversation
 * (admit_conversation.c) and routing (admit_route.c).
 */
#include "pipeline/admit.h"

enum tg_stage_rc tg_stage_admit(struct tg_turn *t)
{
    int rc;
    if (!tg_admit_auth(t) || !tg_admit_request(t))
        return TG_DONE;
    rc = tg_admit_sensitive(t);
    if (rc) {
        /* before the turn has an id: refused, nothing to record */
        tg_turn_fail(t, rc, 500, "internal_error", NULL, "cannot admit the request: %s",
                     tg_err_str(rc));
        return TG_DONE;
    }
    if (tg_id_new("turn", t->admit.id) || tg_admit_conversation(t)) {
        t->admit.id[0] = '\0';
        tg_turn_fail(t, TG_E_INTERNAL, 500, "internal_error", NULL, "cannot create identifiers");
        return TG_DONE;
    }
    /* the variant of each running experiment this customer sees (sticky) */
    rc = tg_admit_variants(t);
    if (rc) {
        tg_turn_fail(t, rc, 500, "internal_error", NULL, "cannot route the turn: %s",
                     tg_err_str(rc));
        return TG_DONE;
    }
    if (!tg_admit_answerable(t))
        return TG_DONE;
    /* with a person: straight to the record, nothing is generated */
    return tg_admit_to_person(t) ? TG_DONE : TG_NEXT;
}
