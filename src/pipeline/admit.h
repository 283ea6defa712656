/*
 * admit.h - private to the pipeline: the admit stage's concerns, each in
 * its own file and run in this order by tg_stage_admit (stage_admit.c).
 * Each writes only t->admit (and what its contract names); a function that
 * returns false has failed the turn (tg_turn_fail) and admit stops.
 */
#ifndef TG_PIPELINE_ADMIT_H
#define TG_PIPELINE_ADMIT_H

#include "pipeline/pipeline.h"

/*
 * Authentication (admit_auth.c): the configured key the request presents,
 * or the in-process caller (trusted); writes key_name, klass and
 * class_from_metadata.  False, with 401 invalid_api_key, when the key is
 * missing or matches none.
 */
bool tg_admit_auth(struct tg_turn *t);

/*
 * Validation (admit_request.c): parse the body and check the OpenAI chat
 * shape; writes request, model, stream, user_text (the last user message,
 * text parts joined, in the arena) and media.  False with a 400 naming the
 * problem (invalid_json, invalid_type, missing_field, empty_messages,
 * too_many_messages, invalid_value, invalid_content_part,
 * missing_user_message).
 */
bool tg_admit_request(struct tg_turn *t);
/*
 * Take the attributes `fairness.attributes` names out of the request's
 * metadata before any rule or model sees them, keeping each value only as
 * a keyed pseudonym in t->admit.sensitive (admit_request.c).  TG_OK or
 * TG_E_NOMEM (the attributes are taken out all the same).
 */
int tg_admit_sensitive(struct tg_turn *t);

/*
 * Conversation (admit_conversation.c): the customer's latest conversation
 * (the pipeline's recent cache, else the store) when it moved within
 * `conversation.idle_timeout`, else a new one (new_conversation, a new
 * conv_ id).  Writes t->conv.  TG_OK, or an error when no id can be made.
 */
int tg_admit_conversation(struct tg_turn *t);

/*
 * Routing (admit_route.c).  tg_admit_variants: the variant of each running
 * experiment this customer sees (sticky; t->admit.variants), and the
 * variant's answerer in t->a when one is another release.  TG_OK or
 * TG_E_NOMEM.
 */
int tg_admit_variants(struct tg_turn *t);
/* False, with 400 unsupported_content, when the message has only media
 * and the first backend of the answerer cannot see it. */
bool tg_admit_answerable(struct tg_turn *t);
/*
 * A conversation already with a person (an open hand-off): the message goes
 * to the agent and no model answers; writes review_id, decision (handoff),
 * handoff and rung ("human").  True when it did, or when passing it on
 * failed (503 storage_unavailable, decision error); false when the
 * conversation is not with a person (any more).
 */
bool tg_admit_to_person(struct tg_turn *t);

#endif
