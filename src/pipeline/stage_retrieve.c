/*
 * stage_retrieve.c - evidence from the knowledge base, with citations.
 *
 * Until a knowledge base is configured the evidence list is empty; the
 * field is always present so every later stage and every answer can rely
 * on it.
 */
#include "pipeline/pipeline.h"

enum tg_stage_rc tg_stage_retrieve(struct tg_turn *t)
{
    t->citations = json_array();
    if (!t->citations) {
        tg_turn_fail(t, TG_E_NOMEM, 500, "internal_error", NULL, "out of memory");
        return TG_DONE;
    }
    return TG_NEXT;
}
