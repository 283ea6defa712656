/*
 * review.h - work that outlives a turn: an answer held for a person
 * (review) or a decision AI may not make (human_decision) becomes a task in
 * the store, and a person's decision on it is recorded with the
 * attestations they ticked.
 *
 * A task is a JSON object in the store's reviews table: id, turn_id,
 * conversation_id, kind, state (pending -> claimed -> decided, or
 * handed_off -> closed), queue, priority,
 * created_ms, deadline_ms, required_attestations, tags, policy_hits, the
 * question, the AI draft (or null), citations, the reply the customer was
 * given meanwhile, the events (who did what when) and, once decided, the
 * decision and the final answer.  Every decision appends an audit leaf
 * linked to the turn.
 *
 * Personal data at rest: the store keeps the task's started_by as the
 * store's pseudonym of the customer id (tg_store_pseudonym), and its
 * answer, decision texts and hand-off messages masked (store.h).  What a
 * call hands back in *task_out carries the texts as written, for the
 * customer who is to receive them.  A hand-off's thread (the customer's
 * later messages and the agents' replies) is kept in rows of its own, so
 * each message costs the same however long the thread grows;
 * tg_store_review_get puts it back in the task's shape.
 *
 * The server refuses a decision that lacks any required attestation,
 * whatever the client sends.
 */
#ifndef TG_REVIEW_H
#define TG_REVIEW_H

#include "core/core.h"

struct tg_store;
struct tg_audit;

/* What a new task is made from; strings and JSON borrowed for the call. */
struct tg_review_new {
    const char *turn_id;
    const char *conversation_id;
    const char *kind; /* "review" or "human_decision" */
    const char *queue;
    int64_t priority; /* larger first */
    int64_t created_ms;
    int64_t sla_ms;             /* deadline = created + sla */
    const json_t *attestations; /* required: array of strings (may be empty) */
    const json_t *tags;
    const json_t *policy_hits;
    const char *question;
    const char *draft; /* NULL when AI wrote none (human_decision) */
    const json_t *citations;
    const char *holding_reply; /* what the customer was told meanwhile */
    const char *started_by;    /* the customer id of the turn, for the four-eyes rule (may be
                                  NULL); stored as its pseudonym */
    const char *state;     /* NULL: "pending"; "handed_off" for a turn the ladder gave a person */
    const json_t *context; /* more of the turn's context, merged into the task (may be NULL):
                              intent, tier, explanation, conversation, internal */
};

/* Create a pending task; its id ("rev_...") goes to id.  TG_OK, TG_E_NOMEM
 * (nothing stored) or the store's error. */
int tg_review_create(struct tg_store *st, const struct tg_review_new *n, char id[TG_ID_MAX]);

enum tg_review_action { TG_REVIEW_APPROVE, TG_REVIEW_EDIT, TG_REVIEW_REJECT };

struct tg_review_decision {
    enum tg_review_action action;
    const char *text;           /* edit: the answer to send instead */
    const char *reason;         /* reject: why (told to the customer) */
    const json_t *attestations; /* ticked: array of strings */
    const char *actor;          /* who decides */
    const uint8_t *key; /* keys the answer's digest in the audit leaf (may be NULL: no digest) */
    size_t keylen;
    bool four_eyes;               /* refuse a decision by the person who started the turn */
    const char *const *actor_ids; /* four_eyes: the customer ids the config maps to actor */
    size_t n_actor_ids;
};

/*
 * Claim a pending task (or one whose claim lapsed) for actor until
 * now + lapse_ms: only the claimer may decide it meanwhile.  TG_E_CONFLICT
 * with a message when someone else holds it or it is decided; an audit
 * leaf records the claim.
 */
int tg_review_claim(struct tg_store *st, struct tg_audit *audit, const char *id, const char *actor,
                    int64_t lapse_ms, json_t **task_out, char *err, size_t errlen);

/*
 * Decide a pending task.  Refused with TG_E_INVAL and a message in err
 * when an attestation is missing, an edit has no text, a reject no reason,
 * or an approve has no draft to approve; TG_E_CONFLICT when the task is not
 * pending; TG_E_NOTFOUND for an unknown id.  With d->four_eyes, refused
 * with TG_E_FORBIDDEN when the customer who started the turn (the task's
 * started_by) is the decider: their name or one of d->actor_ids, compared
 * as tg_config_identity() forms (through the store's pseudonyms of them
 * when it has privacy hooks), so neither case nor full-width letters make
 * the same person another.  On success the task is stored
 * as decided with its final answer, an audit leaf is appended (audit may
 * be NULL only in tests) and *task_out (may be NULL) receives the task.
 * The final answer carries what the output rules put around people's
 * answers (the task's people_answers: {prefix: [...], suffix:
 * [...]}, disclaimers), each unless the text already has it.
 */
/*
 * Called inside every act that settles a task (decided, handed off) with
 * the task as it is stored, after the act's writes are queued and before
 * they commit: what fn writes to st commits in the same transaction
 * (tg_store_hold), so a settled task never goes without what fn adds (the
 * webhook outbox's deliveries).  fn must only queue writes; its error
 * fails the act.  One per process, set before acts run; NULL for none.
 */
typedef int (*tg_review_settle_fn)(void *arg, struct tg_store *st, const json_t *task);
void tg_review_on_settle(tg_review_settle_fn fn, void *arg);

int tg_review_decide(struct tg_store *st, struct tg_audit *audit, const char *id,
                     const struct tg_review_decision *d, json_t **task_out, char *err,
                     size_t errlen);

/*
 * Hand a task that nobody decided in time to the human agent queue: state
 * handed_off, tag review_sla_breached, an event and an audit leaf.  A task
 * that is no longer pending or claimed is left alone (TG_E_CONFLICT).
 */
int tg_review_handoff(struct tg_store *st, struct tg_audit *audit, const char *id,
                      const char *reason, json_t **task_out);

/*
 * A human agent answers the customer of a handed-off task: the reply is
 * appended to the thread (agent_replies, with an event) and an audit leaf;
 * close also ends the hand-off (state closed).  Committed before it
 * returns.  *task_out (may be NULL) receives the task as
 * tg_store_review_get reads it, the new reply's text as written with what
 * the output rules put around people's answers, as tg_review_decide (the
 * customer is sent that; the store keeps it masked).  TG_E_CONFLICT unless
 * the task is handed_off; TG_E_INVAL without text (unless closing);
 * TG_E_NOMEM, *task_out untouched, when the reply was stored but that task
 * could not be made.
 */
int tg_review_agent_reply(struct tg_store *st, struct tg_audit *audit, const char *id,
                          const char *actor, const char *text, bool close, json_t **task_out,
                          char *err, size_t errlen);

/*
 * The customer of a handed-off task wrote again: the message goes to the
 * agent, appended to the thread (customer_messages, with an event) and
 * stored masked; it costs one small row however long the thread is.  It is
 * queued, not committed: the turn that carries it waits for its commit.
 * *task_out (may be NULL) receives the task without its thread
 * (tg_store_review_get_bare).  TG_E_CONFLICT unless the task is handed_off.
 */
int tg_review_customer_message(struct tg_store *st, const char *id, const char *turn_id,
                               const char *text, json_t **task_out, char *err, size_t errlen);

struct event_base;
struct tg_review_sla;

/*
 * SLA timers on an event loop: every pending task is armed for its
 * deadline; one already past it is handed off at once (so timers survive a
 * restart).  Start-up reads only the tasks' ids and deadlines
 * (tg_store_review_scan), never whole tasks.  The store and audit log are
 * borrowed.
 */
int tg_review_sla_start(struct event_base *base, struct tg_store *st, struct tg_audit *audit,
                        struct tg_review_sla **out);
/* Also mark tasks (sla_warning: true, an event) this long before their deadline; 0: never. */
void tg_review_sla_warn_before(struct tg_review_sla *sla, int64_t ms);
/* Arm the timer of a task just created. */
int tg_review_sla_track(struct tg_review_sla *sla, const char *id, int64_t deadline_ms);
/* Call cb with the task whenever the tracker hands one off (the HTTP layer
 * answers requests waiting for it). */
void tg_review_sla_on_settle(struct tg_review_sla *sla, void (*cb)(void *arg, const json_t *task),
                             void *arg);
/* Call cb for every task this tracker arms ("created"), warns about
 * ("sla_warning") or hands off ("handed_off"); task is NULL for "created". */
void tg_review_sla_on_event(struct tg_review_sla *sla,
                            void (*cb)(void *arg, const char *id, const char *event,
                                       const json_t *task),
                            void *arg);
/* Tell the tracker's event callback about a task made or changed elsewhere. */
void tg_review_sla_notify(struct tg_review_sla *sla, const char *id, const char *event,
                          const json_t *task);
/*
 * Another node sharing the store changed task id (tg_store_changes): a
 * task still open gets its deadline armed here too; any other change is
 * passed to cb (the HTTP layer answers its own waiting requests and tells
 * its consoles; the node that acted sent the webhooks).
 */
void tg_review_sla_remote(struct tg_review_sla *sla, const char *id, const char *state);
void tg_review_sla_on_remote(struct tg_review_sla *sla, void (*cb)(void *arg, const json_t *task),
                             void *arg);
/* Tasks handed off by this tracker since it started. */
uint64_t tg_review_sla_handoffs(const struct tg_review_sla *sla);
void tg_review_sla_free(struct tg_review_sla *sla);

/* Parse "approve" | "edit" | "reject". */
int tg_review_action_parse(const char *s, enum tg_review_action *out);
const char *tg_review_action_name(enum tg_review_action a);

#endif
