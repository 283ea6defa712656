/*
 * rules.h - private to the pipeline: the bridge between the turn and the
 * policy module, shared by precheck and postcheck.
 */
#ifndef TG_PIPELINE_RULES_H
#define TG_PIPELINE_RULES_H

#include "pipeline/pipeline.h"

struct tg_policy_facts;
struct tg_policy_hits;

/* Fill the facts the rules test from the turn (borrowing its strings). */
void tg_rules_facts(const struct tg_turn *t, struct tg_policy_facts *f);
/*
 * Read the customer's earlier messages in this conversation (at most
 * `conversation.history` of them, as stored: masked) into t->check.conv_text,
 * normalized like the current message, for `conversation.*` conditions.
 * Nothing for a new conversation.  TG_OK or TG_E_NOMEM (also when the
 * store ran out of memory reading them); a store that cannot be read
 * otherwise leaves the text empty.
 */
int tg_rules_conversation(struct tg_turn *t);
/* Write the rules that fired into the turn: hits, tags, attestations,
 * actions; rules only for people's answers are left out. */
int tg_rules_apply(struct tg_turn *t, const struct tg_policy_hits *hits);
/*
 * What the output rules for people's answers (applies_to human or both)
 * put around an answer a person writes to this turn, from the customer's
 * message and its context, in the customer's language:
 * {"prefix": [...], "suffix": [...]}.  New reference; NULL when out of
 * memory.
 */
json_t *tg_rules_for_people(struct tg_turn *t);

#endif
