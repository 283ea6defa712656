/*
 * turn.h - one customer message on its way through the nine stages.
 *
 * A turn is created by the HTTP layer or the CLI, filled by the stages in
 * order (pipeline.c is the only place that knows the order) and freed by
 * its creator after done_cb.  Everything a stage allocates for the turn
 * comes from t->arena or is a jansson reference the turn owns (released in
 * tg_turn_free).  Fields are grouped by the stage that writes them; a stage
 * reads only fields of the stages before it.
 */
#ifndef TG_TURN_H
#define TG_TURN_H

#include "core/core.h"
#include "metrics/metrics.h"
#include "store/store.h"

struct tg_pipeline;
struct tg_backend;
struct tg_backend_call;
struct tg_evidence;
struct tg_dispatch;
struct tg_entities;
struct tg_kb_result;
struct tg_policy_tool_call;

/*
 * A wait for the store to commit what was queued (tg_pipeline_after_commit),
 * embedded in whatever waits: a turn before its reply, a route before it
 * hands out an id.  cb runs once, on the loop, with TG_OK or the store's
 * write error.
 */
struct tg_commit_wait {
    void (*cb)(struct tg_commit_wait *w, int err);
    uint64_t ticket;
    struct tg_commit_wait *next, *prev;
    bool queued;
};

/* What a stage tells the pipeline. */
enum tg_stage_rc {
    TG_NEXT, /* go on to the next stage */
    TG_WAIT, /* async work started; tg_pipeline_resume() will continue */
    TG_DONE, /* the outcome is settled: skip to record (or reply if nothing to record) */
};

struct tg_turn {
    struct tg_pipeline *p;
    const struct tg_answerer *a; /* what answers: &p->main, or an experiment's variant (admit) */
    struct tg_arena arena;

    /* Set by the creator. */
    const char *channel; /* "api", "cli" */
    const char *api_key; /* the presented key, NULL when none */
    bool trusted;        /* in-process caller: no key needed */
    const char *body;    /* the raw request JSON */
    size_t body_len;
    const char *customer_hint; /* the customer header, NULL when absent */
    void (*done_cb)(struct tg_turn *t, void *arg);
    void *done_arg;

    /* admit */
    char id[TG_ID_MAX];
    const char *key_name; /* which configured key matched */
    int klass;            /* enum tg_traffic_class of the key's traffic */
    bool class_from_metadata; /* the key may name a request's class (metadata) */
    json_t *request;      /* parsed body (owned) */
    const char *model;    /* requested model, or the first configured one */
    bool stream;
    const char *user_text; /* the last user message (its text parts, joined) */
    bool media;            /* that message carries images, audio or files too */
    struct tg_conversation conv;
    bool new_conversation;
    json_t *history; /* earlier stored messages sent along (owned) */

    /* understand */
    struct tg_entities *ents; /* entities found in user_text (owned) */
    const char *norm_text;    /* user_text normalized (NFKC, folded, Simplified) */
    size_t norm_len;
    unsigned norm_flags;      /* the TG_NORM_* flags norm_text was made with */
    const char *language;     /* "zh", "en", "ja" */
    json_t *entities;         /* {"money": [...], "pii": [...]} (owned) */
    const char *intent;       /* intent name */
    double intent_confidence; /* its probability; 0 without a classifier */
    json_t *intent_explain;   /* [{feature, weight}] that drove the intent (owned) */
    double money_max;         /* the largest amount of money mentioned, -1 when none */
    /* the knowledge base's answer to the question (one passage per document,
     * best first), searched once for the intent vote and kept for retrieve */
    struct tg_kb_result *kb_found; /* arena; NULL when understand did not search */

    /* retrieve */
    json_t *citations;            /* [{source, chunk, score}] (owned) */
    struct tg_evidence *evidence; /* best first (arena; strings owned by the knowledge base) */
    size_t n_evidence;
    double query_coverage; /* share of the question's tokens in the best passage */
    double retrieval_lead; /* (best - second best score) / best, 0 when no evidence */

    /* precheck, postcheck */
    const char *conv_text; /* the customer's earlier messages, normalized, oldest first (arena) */
    size_t conv_len;
    json_t *policy_hits;  /* [{rule, description, actions, trigger}] (owned) */
    json_t *tags;         /* risk tags (owned) */
    json_t *attestations; /* attestations a person must tick (owned) */
    struct tg_turn_rules {
        bool refuse, human_decision, review, script, skip_generate;
        bool redact_off;                       /* a rule said redact: false */
        const char *refuse_text, *script_text; /* owned by the compiled policy */
        const char *review_text; /* a review's own holding reply, or NULL (policy-owned) */
        const char *queue;
        int64_t sla_ms;
        json_t *prefixes, *suffixes; /* texts to put around the answer (owned) */
    } rules;
    int lang;                  /* enum tg_lang (text/lang.h) of user_text: what the reply is written in */
    size_t ungrounded;         /* claims in the draft that no evidence contains */
    char review_id[TG_ID_MAX]; /* the review task, when the gate made one */

    /* generate */
    struct tg_backend *backend;   /* the backend that answered */
    struct tg_dispatch *dispatch; /* the ladder at work, NULL when idle */
    const char *rung;             /* the ladder's rung that answered, or "human" */
    json_t *ladder_events;        /* steps down and retries, with causes (owned) */
    bool handoff;                 /* the ladder ended with a person */
    json_t *variants;  /* experiment name -> variant the customer sees (owned), or NULL */
    json_t *sensitive; /* fairness attribute -> pseudonym of its value (owned), or NULL */
    /* stream-through (stream_through.c) */
    void (*release_cb)(struct tg_turn *t, const char *text, size_t len, void *arg);
    void *release_arg;      /* the channel's, set before the turn starts (NULL: no release) */
    bool committed;         /* text has gone to the client: no restart on another backend */
    bool release_stopped;   /* a rule fired after release began: the rest waits for the end */
    struct tg_buf partial;  /* the draft as it arrives */
    size_t partial_done;    /* bytes of partial handled (released or judged) */
    struct tg_buf released; /* what the client has been sent */
    bool client_gone;       /* the client left: no more attempts */
    char *draft;            /* the answer (arena) */
    size_t draft_len;
    json_t *tool_calls;     /* the answer's OpenAI tool calls, NULL when none (owned) */
    json_t *logprobs;       /* the answer's logprobs as the upstream gave them, or NULL (owned) */
    struct tg_policy_tool_call *calls; /* tool_calls as the rules read them (arena) */
    size_t n_calls;
    char finish_reason[24];
    char upstream_model[96];
    int64_t prompt_tokens, completion_tokens;
    int degradations;
    /* the reply asks the customer to wait (the low-confidence reply, a
     * script, a script rung): a person must own it (the gate) */
    bool promise;

    /* gate */
    enum tg_decision decision;
    bool degraded;       /* the customer got no real answer from the first choice */
    bool unreadable;     /* the draft is not in a language the customer writes */
    int degraded_run;    /* degraded turns in a row in this conversation, this one included */
    bool follow_up;      /* a promise the gate gave a person to keep (a review task) */
    const char *holding; /* what a held turn says at once, in the customer's language */
    double confidence; /* < 0: not estimated */

    /* Failure of the turn: set by any stage, rendered by reply. */
    int err;               /* TG_OK or an error */
    int http_status;       /* status to answer with when err is set */
    const char *err_code;  /* OpenAI error code, e.g. "invalid_api_key" */
    const char *err_param; /* the offending request field, or NULL */
    char errmsg[256];

    /* record */
    int64_t audit_index; /* -1 until recorded */
    bool recorded;
    struct tg_commit_wait commit; /* the reply waits until the record is committed */
    bool commit_pending;

    /* reply */
    struct tg_buf reply;    /* the HTTP body: chat.completion, SSE events or an error */
    const char *reply_type; /* its Content-Type */
    const char *answer;     /* what the customer is told (draft or holding text) */
    size_t answer_len;

    /* pipeline bookkeeping */
    enum tg_stage_id stage;
    bool waiting;
    int64_t t0_ns;
    int64_t created_ms;
    int64_t stage_ns[TG_STAGE__COUNT];
    enum tg_stage_id trace[TG_STAGE__COUNT]; /* the stages run, in the order they ran */
    int ntrace;
};

/* Allocate a turn for pipeline p; NULL on allocation failure. */
struct tg_turn *tg_turn_new(struct tg_pipeline *p);
/* Cancel outstanding work and free everything the turn owns. */
void tg_turn_free(struct tg_turn *t);

/* Mark the turn failed: status is the HTTP status, code the OpenAI error code. */
void tg_turn_fail(struct tg_turn *t, int err, int status, const char *code, const char *param,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

struct tg_jw;
/*
 * Write the turn's public summary as one JSON object: turn_id,
 * conversation_id, decision, intent, confidence, citations, policy_hits,
 * tags, attestations, backend, degradations, audit_index.  This is the
 * `trustgate` object of every answer.
 */
void tg_turn_write_summary(const struct tg_turn *t, struct tg_jw *w);
/*
 * The summary as a jansson object; with_answer adds answer, entities and
 * any error (for the in-process CLI; never for logs).  New reference, NULL
 * on failure.
 */
json_t *tg_turn_summary(const struct tg_turn *t, bool with_answer);

/* The turn's traffic class (enum tg_traffic_class): the API key's, or
 * metadata.tier "vip" / metadata.class "internal" where the key lets the
 * channel name it (class_from_metadata; an in-process caller may). */
int tg_turn_class(const struct tg_turn *t);
/* What a customer is told at once when the decision is not deliver (Chinese). */
const char *tg_gate_holding_text(enum tg_decision d);
/* What this turn's customer is told at once when it is held: t->holding,
 * else the decision's holding text in the customer's language. */
const char *tg_turn_holding(struct tg_turn *t);
/*
 * A text of the configuration (written in Chinese: a script, a holding
 * reply, a disclaimer, a refusal) as the turn's customer reads it: the
 * variant config `translations` has for the customer's language, else for
 * zh-Hant the text in Traditional characters, else the text itself.  The
 * result lives as long as the turn or the configuration.
 */
const char *tg_turn_text(struct tg_turn *t, const char *text);

/*
 * The knowledge base's best passages for the turn's question (at least k,
 * one per document, best first; its glossary entries too), searched once
 * per turn and kept in t->kb_found: the understand stage's intent vote and
 * the retrieve stage share one search.  *out lives as long as the turn.
 * TG_OK or TG_E_NOMEM.  (stage_retrieve.c)
 */
int tg_turn_kb_search(struct tg_turn *t, size_t k, const struct tg_kb_result **out);

/* The stages, in order.  Each reads and writes only its part of the turn. */
enum tg_stage_rc tg_stage_admit(struct tg_turn *t);
enum tg_stage_rc tg_stage_understand(struct tg_turn *t);
enum tg_stage_rc tg_stage_retrieve(struct tg_turn *t);
enum tg_stage_rc tg_stage_precheck(struct tg_turn *t);
enum tg_stage_rc tg_stage_generate(struct tg_turn *t);
enum tg_stage_rc tg_stage_postcheck(struct tg_turn *t);
enum tg_stage_rc tg_stage_gate(struct tg_turn *t);
enum tg_stage_rc tg_stage_record(struct tg_turn *t);
enum tg_stage_rc tg_stage_reply(struct tg_turn *t);

#endif
