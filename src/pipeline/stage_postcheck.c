/*
 * stage_postcheck.c - rules on the draft answer: disclaimers, grounding of
 * numbers in the evidence, PII in the reply.
 *
 * With no output rules configured the draft passes unchanged.  The stage
 * keeps its place in the order so that output rules slot in here and are
 * measured like every other stage.
 */
#include "pipeline/pipeline.h"

enum tg_stage_rc tg_stage_postcheck(struct tg_turn *t)
{
    (void)t;
    return TG_NEXT;
}
