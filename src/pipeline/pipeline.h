/*
 * pipeline.h - what every turn shares (config, store, audit log, backends,
 * metrics) and the runner that walks a turn through its stages.
 *
 * Ownership: tg_pipeline_open() creates and owns the store, the audit log,
 * the metrics and the backends; the config and the event base are borrowed
 * and must outlive the pipeline.  Everything runs on the event-loop thread.
 */
#ifndef TG_PIPELINE_H
#define TG_PIPELINE_H

#include "config/config.h"
#include "pipeline/turn.h"

struct event_base;
struct tg_audit;
struct tg_audit_signer;
struct tg_intent_model;
struct tg_kb;
struct tg_embedder;
struct tg_policy;
struct tg_review_sla;
struct tg_text;
struct tg_backend;
struct tg_metrics;
struct tg_store;

struct tg_ladder;

/*
 * What answers a turn: the knowledge base, intent classifier, policies and
 * backends of one release.  The pipeline's own (`main`) comes from its
 * config; an experiment's variant with `release:` or `config:` gets its own,
 * built from that config beside it, and answers the customers assigned to
 * it (admit_route.c).  Everything else (store, audit log, review queue,
 * conversations) is shared.
 */
struct tg_answerer {
    const struct tg_config *cfg; /* the answering settings (kb, understand, ladder, ...) */
    struct tg_backend **backends;
    size_t n_backends;
    struct tg_backend *route; /* the route's backend (the ladder's first when there is one) */
    struct tg_ladder *ladder; /* the backends in order of preference (ladder/ladder.h) */
    struct tg_kb *kb;         /* the knowledge base, or NULL when none is configured */
    struct tg_embedder *embedder; /* kb.embeddings' client (backend/embed.h), or NULL */
    struct tg_intent_model *intents;  /* the intent classifier, or NULL */
    struct tg_policy *policy;         /* the compiled rules, or NULL when none are configured */
    const char *experiment, *variant; /* the variant it answers for (NULL for main) */
    char release[160];                /* "NAME@VERSION" of a registered release, or "" */
    char hash[65];                    /* its content hash (SHA-256 hex), or "" */
};

struct tg_wf_engine;

struct tg_pipeline {
    const struct tg_config *cfg;
    struct event_base *base;
    struct tg_store *store;
    char *store_uri; /* what store was opened: another thread may open its own handle on it */
    struct tg_audit *audit;
    struct tg_metrics *metrics;
    struct tg_answerer main;   /* the release in force */
    struct tg_answerer **alts; /* experiments' variants answered by another release */
    size_t n_alts;
    struct tg_text *text;           /* normalizer and tokenizer for the event-loop thread */
    struct tg_s2t *s2t;             /* Simplified to Traditional, for zh-Hant customers */
    struct tg_review_sla *sla;      /* review deadlines on the event loop */
    struct tg_conversation *recent; /* latest conversation per customer, by hash (4096 slots) */
    json_t *with_person;            /* conversation id -> its open hand-off task (an agent's) */
    uint8_t pseudonym_key[32];      /* keys PII pseudonyms in the audit log (DATA/pseudonym.key) */
    struct tg_audit_signer *signer; /* signs the log\'s checkpoints (DATA/audit-ed25519.pem) */
    size_t inflight;                /* turns started and not finished */
    struct event *commit_ev;        /* the store's commit fd, watched on the loop */
    struct event *changes_ev;       /* a shared store: other nodes' changes to review tasks */
    struct tg_commit_wait *waits, *waits_tail; /* waiting for a commit, in ticket order */
    bool log_turns;                 /* one JSON line per turn on stderr */
    struct tg_wf_engine *workflows; /* the config's workflows, for turns their triggers meet
                                       (set by serve), or NULL */
};

/*
 * Open the store (cfg->store_uri, or "sqlite:<data_dir>/trustgate.db" when
 * data_dir is given to override the config), the audit log, the metrics,
 * the text resources, the knowledge base (ingesting cfg->kb_paths: files
 * unchanged since the last start are skipped), the intent classifier
 * (trained from cfg->intents_train or taken from its cache in the data
 * directory) and the backends.  On failure returns an error with a message
 * in err.
 */
int tg_pipeline_open(const struct tg_config *cfg, struct event_base *base, const char *data_dir,
                     struct tg_pipeline **out, char *err, size_t errlen);
/* The same with the configuration in force only: no experiment's variant is
 * opened (an evaluation measures the configuration it is given). */
int tg_pipeline_open_in_force(const struct tg_config *cfg, struct event_base *base,
                              const char *data_dir, struct tg_pipeline **out, char *err,
                              size_t errlen);
/*
 * Compile the config's `policies:` section: a list whose items are rules or
 * {include: FILE} (relative to the config file).  Every problem goes to
 * errs as "FILE:LINE: message".  *out is NULL when there are no rules.
 */
int tg_pipeline_load_policies(const struct tg_config *cfg, struct tg_policy **out, json_t *errs);

/*
 * A question to the release in force's ladder outside a chat turn
 * (pipeline: a struct tg_pipeline; a workflow's model step): system (may
 * be NULL) and prompt as the messages.  done runs once, from the loop
 * after this returns: TG_OK with the answer and the model that gave it,
 * or an error and why (a holding reply or a person counts as no answer).
 * *call names the question for tg_pipeline_ask_cancel (then done never
 * runs).  TG_OK or TG_E_NOMEM.
 */
int tg_pipeline_ask(void *pipeline, const char *system, const char *prompt,
                    void (*done)(void *arg, int err, const char *text, const char *model),
                    void *arg, void **call);
void tg_pipeline_ask_cancel(void *call);

/* The client of a turn left: the ladder stops (no further attempts) and
 * the turn ends as an error once its stage resumes. */
void tg_turn_client_gone(struct tg_turn *t);

/*
 * Call w->cb once everything the store has queued so far is committed: at
 * once (before returning) when it already is or when there is no loop to
 * wait on (then the store is flushed), else from the loop.  Nothing an
 * outsider is told — a reply, a turn, review or audit index, a signed
 * checkpoint — may leave before its writes are committed.
 */
void tg_pipeline_after_commit(struct tg_pipeline *p, struct tg_commit_wait *w);
/* Forget a wait whose owner goes away; its callback will not run. */
void tg_pipeline_commit_cancel(struct tg_pipeline *p, struct tg_commit_wait *w);
/* Commit everything queued and answer every wait (on shutdown, while their
 * owners still exist). */
void tg_pipeline_settle(struct tg_pipeline *p);

/*
 * The store's privacy hooks (store.h) as every process of a deployment
 * must use them: customer ids kept as keyed pseudonyms of their canonical
 * form, free text masked with the config's policy-number pattern, under the
 * key in DIR/pseudonym.key (made on first use).  tg_pipeline_open uses it;
 * so does the command line when it opens a deployment's store.
 * tg_privacy_open allocates the context and fills hooks; the store releases
 * the context when it closes (hooks->release), or call tg_privacy_free
 * when the store is never opened.  cfg (NULL: the default policy-number
 * pattern) must outlive the store.
 */
/* Another handle on the pipeline's store, with the same privacy hooks:
 * for a worker thread (reads see what the pipeline's writes committed). */
int tg_pipeline_store_handle(struct tg_pipeline *p, struct tg_store **out, char *err,
                             size_t errlen);
struct tg_privacy;
int tg_privacy_open(const struct tg_config *cfg, const char *dir, struct tg_store_privacy *hooks,
                    char *err, size_t errlen);
void tg_privacy_free(void *privacy);
/* The key of a context filled by tg_privacy_open (32 bytes). */
const uint8_t *tg_privacy_key(const struct tg_store_privacy *hooks);

/* Flush the store and free everything.  No turn may be in flight. */
void tg_pipeline_close(struct tg_pipeline *p);

/*
 * Run turn t from the first stage.  t->done_cb is called exactly once when
 * the reply stage has run (possibly before this returns); the creator frees
 * the turn afterwards.
 */
void tg_pipeline_start(struct tg_turn *t);
/* Continue a turn whose stage returned TG_WAIT: that stage is finished. */
void tg_pipeline_resume(struct tg_turn *t);
/* The same, with the outcome the waiting stage would have returned
 * (TG_NEXT: go on; TG_DONE: settled early, skip to record). */
void tg_pipeline_resume_with(struct tg_turn *t, enum tg_stage_rc rc);

/* ------------------------------------------------------------ wire format */

/* An answer in the OpenAI chat-completions shape; strings are borrowed. */
struct tg_completion {
    const char *id;  /* "chatcmpl-..." */
    int64_t created; /* Unix seconds */
    const char *model;
    const char *content;
    size_t content_len;
    const char *finish_reason;
    int64_t prompt_tokens, completion_tokens;
    const json_t *tool_calls; /* OpenAI tool_calls of the answer, or NULL; with none and no
                                 content, the message's content is null */
    const json_t *logprobs;   /* the choice's logprobs object, or NULL */
    const char *extra_key; /* one extra top-level member ("trustgate"), or NULL */
    const char *extra;     /* its value, serialised JSON */
    size_t extra_len;
};

/* Append the chat.completion JSON object to out.  Tool calls go in the
 * message, logprobs in the choice, both as given. */
int tg_wire_completion(const struct tg_completion *c, struct tg_buf *out);
/*
 * Append the answer as chat.completion.chunk server-sent events: a role
 * chunk, content chunks of at most piece_bytes (never splitting a UTF-8
 * character), for each tool call a chunk with its index, id, type and name
 * and one with its arguments, a final chunk with finish_reason, logprobs,
 * usage and the extra member, then `data: [DONE]`.
 */
int tg_wire_sse(const struct tg_completion *c, size_t piece_bytes, struct tg_buf *out);
/* One part of such a stream, for answers released as they are written:
 * the opening chunk, a content chunk, or the tool calls, then the final
 * chunk with [DONE]. */
enum tg_sse_part { TG_SSE_OPEN, TG_SSE_TEXT, TG_SSE_CLOSE };
int tg_wire_sse_part(const struct tg_completion *c, enum tg_sse_part part, const char *text,
                     size_t len, struct tg_buf *out);

/*
 * Stream-through (ladder.stream_through, stream_through.c): on such a route
 * a client that asked to stream gets the answer sentence by sentence while
 * the model writes it, each sentence released only once the draft so far
 * passes the output rules (nothing held, refused or scripted; a disclaimer
 * only in front), with personal data masked.  If a rule fires after text
 * went out, the release stops there and the turn is decided on the whole
 * draft as usual; the client gets the rest (or the holding reply) at the end.
 */
bool tg_stream_through_applies(const struct tg_turn *t);
void tg_stream_through_delta(void *arg, const char *text, size_t len);

/*
 * The customer's latest conversation as this process last recorded it (the
 * store may not have committed it yet), or NULL.  tg_pipeline_remember()
 * updates it from the record stage.
 */
const struct tg_conversation *tg_pipeline_recent(const struct tg_pipeline *p,
                                                 const char *customer_id);
void tg_pipeline_remember(struct tg_pipeline *p, const struct tg_conversation *c);

/*
 * Conversations with a person: once a conversation is handed to a human
 * agent (the ladder's hand-off, or a review whose deadline passed), the
 * customer's later messages go to that agent (admit_route.c) until the
 * agent closes the hand-off.  tg_pipeline_task_changed follows a task's
 * state (handed_off adds, anything else removes); the open ones are read
 * from the store at start.  Both return TG_OK, or TG_E_NOMEM when a
 * conversation could not be added (the map is then unchanged).
 */
int tg_pipeline_task_changed(struct tg_pipeline *p, const json_t *task);
int tg_pipeline_with_person(struct tg_pipeline *p, const char *conversation_id,
                            const char *review_id);

/* What answers for an experiment's variant, or NULL when the release in force does. */
const struct tg_answerer *tg_pipeline_answerer(const struct tg_pipeline *p, const char *experiment,
                                               const char *variant);

#endif
