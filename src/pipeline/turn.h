/*
 * turn.h - one customer message on its way through the nine stages.
 *
 * A turn is created by the HTTP layer or the CLI, filled by the stages in
 * order (pipeline.c is the only place that knows the order) and freed by
 * its creator after done_cb.  Everything a stage allocates for the turn
 * comes from t->arena or is a jansson reference the turn owns (released in
 * tg_turn_free).
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
struct tg_embed_call;
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

/*
 * What each stage writes is a sub-struct named after it: t->admit.* is
 * written in admit, t->generate.* in generate, and so on, so a write
 * outside its stage shows at a glance.  The fields at the top level are the
 * creator's inputs, and the few that several stages write (each names its
 * writers).  A stage reads only what the stages before it wrote.
 */

/* admit (stage_admit.c and the admit_*.c files it runs) */
struct tg_turn_admit {
    char id[TG_ID_MAX];       /* turn_… */
    const char *key_name;     /* which configured key matched */
    int klass;                /* enum tg_traffic_class of the key's traffic */
    bool class_from_metadata; /* the key may name a request's class (metadata) */
    json_t *request;          /* parsed body (owned) */
    const char *model;        /* requested model, or the first configured one */
    bool stream;
    const char *user_text; /* the last user message (its text parts, joined) */
    bool media;            /* that message carries images, audio or files too */
    bool new_conversation;
    json_t *variants;  /* experiment name -> variant the customer sees (owned), or NULL */
    json_t *sensitive; /* fairness attribute -> pseudonym of its value (owned), or NULL */
};

/* understand (stage_understand.c) */
struct tg_turn_understand {
    struct tg_entities *ents; /* entities found in user_text (owned) */
    const char *norm_text;    /* user_text normalized (NFKC, folded, Simplified) */
    size_t norm_len;
    unsigned norm_flags;      /* the TG_NORM_* flags norm_text was made with */
    const char *focus;        /* norm_text's asking clauses (tg_text_focus), "" for all; NULL: not yet */
    const char *language;     /* "zh", "en", "ja" */
    json_t *entities;         /* {"money": [...], "pii": [...]} (owned) */
    const char *intent;       /* intent name */
    double intent_confidence; /* its probability; 0 without a classifier */
    json_t *intent_explain;   /* [{feature, weight}] that drove the intent (owned) */
    double money_max;         /* the largest amount of money mentioned, -1 when none */
    /* kb.embeddings: the question's vector (arena), NULL when none is configured or
     * the embeddings server failed; the call while the stage waits for it */
    const float *qvec;
    size_t qdim;
    struct tg_embed_call *embed_call;
};

/* retrieve (stage_retrieve.c) */
struct tg_turn_retrieve {
    /* [{source, chunk, score}] (owned); generate marks the one the answer quoted "cited" */
    json_t *citations;
    struct tg_evidence *evidence; /* best first (arena; strings owned by the knowledge base) */
    size_t n_evidence;
    double query_coverage; /* share of the question's tokens in the best passage */
    double retrieval_lead; /* (best - second best score) / best, 0 when no evidence */
};

/* The actions of the policy rules that fired, folded (rules.c: tg_rules_apply). */
struct tg_turn_rules {
    bool refuse, human_decision, review, script, skip_generate;
    bool redact_off;                       /* a rule said redact: false */
    const char *refuse_text, *script_text; /* owned by the compiled policy */
    const char *review_text; /* a review's own holding reply, or NULL (policy-owned) */
    const char *queue;
    int64_t sla_ms;
    json_t *prefixes, *suffixes; /* texts to put around the answer (owned) */
};

/*
 * check: the policy rules, run by precheck and postcheck (stage_precheck.c,
 * stage_postcheck.c, rules.c) and by postcheck's rules on a streamed draft
 * as it arrives (stream_through.c, during generate).
 */
struct tg_turn_check {
    int lang; /* enum tg_lang (text/lang.h) of user_text: what the reply is written in */
    const char *conv_text; /* the customer's earlier messages, normalized, oldest first (arena) */
    size_t conv_len;
    json_t *policy_hits;  /* [{rule, description, actions, trigger}] (owned) */
    json_t *attestations; /* attestations a person must tick (owned) */
    struct tg_turn_rules rules;
    size_t ungrounded; /* claims in the draft that no evidence contains */
};

/* generate (stage_generate.c, with the stream-through in stream_through.c) */
struct tg_turn_generate {
    json_t *history;              /* earlier stored messages sent along (owned) */
    struct tg_backend *backend;   /* the backend that answered */
    struct tg_dispatch *dispatch; /* the ladder at work, NULL when idle */
    json_t *ladder_events;        /* steps down and retries, with causes (owned) */
    char finish_reason[24];
    char upstream_model[96];
    int64_t prompt_tokens, completion_tokens;
    int degradations;
    /* the client left: no more attempts (tg_turn_client_gone, which the channel calls) */
    bool client_gone;
    /* stream-through (stream_through.c) */
    bool committed;         /* text has gone to the client: no restart on another backend */
    bool release_stopped;   /* a rule fired after release began: the rest waits for the end */
    struct tg_buf partial;  /* the draft as it arrives */
    size_t partial_done;    /* bytes of partial handled (released or judged) */
    struct tg_buf released; /* what the client has been sent */
};

/* gate (stage_gate.c) */
struct tg_turn_gate {
    bool degraded;       /* the customer got no real answer from the first choice */
    bool unreadable;     /* the draft is not in a language the customer writes */
    int degraded_run;    /* degraded turns in a row in this conversation, this one included */
    bool follow_up;      /* a promise the gate gave a person to keep (a review task) */
    const char *holding; /* what a held turn says at once, in the customer's language */
};

/* record (stage_record.c) */
struct tg_turn_record {
    int64_t audit_index; /* -1 until recorded and committed */
    uint64_t leaf_seq;   /* the audit append's sequence number (tg_audit_index) */
    bool recorded;
    struct tg_commit_wait commit; /* the reply waits until the record is committed */
    bool commit_pending;
};

/* reply (stage_reply.c) */
struct tg_turn_reply {
    struct tg_buf body; /* the HTTP body: chat.completion, SSE events or an error */
    const char *type;   /* its Content-Type */
    const char *answer; /* what the customer is told (draft or holding text) */
    size_t answer_len;
};

/* The runner's bookkeeping (pipeline.c). */
struct tg_turn_run {
    enum tg_stage_id stage;
    bool waiting;
    int64_t t0_ns;
    int64_t created_ms;
    int64_t stage_ns[TG_STAGE__COUNT];
    enum tg_stage_id trace[TG_STAGE__COUNT]; /* the stages run, in the order they ran */
    int ntrace;
};

struct tg_turn {
    struct tg_pipeline *p;
    /* what answers: &p->main (tg_turn_new), or an experiment's variant (admit) */
    const struct tg_answerer *a;
    struct tg_arena arena;

    /* Set by the creator before tg_pipeline_start. */
    const char *channel; /* "api", "cli" */
    const char *api_key; /* the presented key, NULL when none */
    bool trusted;        /* in-process caller: no key needed */
    const char *body;    /* the raw request JSON */
    size_t body_len;
    const char *customer_hint; /* the customer header, NULL when absent */
    void (*done_cb)(struct tg_turn *t, void *arg);
    void *done_arg;
    /* stream-through: the channel's, NULL when it takes no text before the end */
    void (*release_cb)(struct tg_turn *t, const char *text, size_t len, void *arg);
    void *release_arg;

    /* One sub-struct per stage, each written only by its stage. */
    struct tg_turn_admit admit;
    struct tg_turn_understand understand;
    struct tg_turn_retrieve retrieve;
    struct tg_turn_check check;
    struct tg_turn_generate generate;
    struct tg_turn_gate gate;
    struct tg_turn_record record;
    struct tg_turn_reply reply;
    struct tg_turn_run run;

    /* Written by several stages (each field names its writers). */
    /* the customer's conversation: admit finds or starts it, record updates it */
    struct tg_conversation conv;
    /* the knowledge base's answer to the question (one passage per document,
     * best first), searched once by tg_turn_kb_search: in understand for the
     * intent vote, else in retrieve (arena; NULL until then) */
    struct tg_kb_result *kb_found;
    /* risk tags (owned): precheck makes the array; precheck, generate,
     * postcheck and gate add to it */
    json_t *tags;
    /* the answer: generate writes it; postcheck frames, masks or replaces it
     * (and stream-through judges a draft in it as it arrives); gate puts it in
     * Traditional characters; a changed draft drops its logprobs */
    char *draft; /* arena */
    size_t draft_len;
    /* the answer's OpenAI tool calls, NULL when none (owned): generate; postcheck drops them */
    json_t *tool_calls;
    json_t *logprobs; /* the answer's logprobs as the upstream gave them, or NULL (owned) */
    struct tg_policy_tool_call *calls; /* tool_calls as the rules read them (arena; generate) */
    size_t n_calls;                    /* generate; postcheck drops them */
    /* the answerer's confidence, < 0 when not estimated: generate; postcheck
     * lowers it for evidence the customer cannot read */
    double confidence;
    /* the reply asks the customer to wait (the low-confidence reply, a script,
     * a script rung): a person must own it.  generate, postcheck (a script),
     * gate (a draft the customer cannot read) */
    bool promise;
    bool handoff;     /* the turn ends with a person: admit (an open hand-off) or generate */
    const char *rung; /* the ladder's rung that answered, or "human": admit or generate */
    char review_id[TG_ID_MAX]; /* the review task: admit (an open hand-off) or gate */
    /* the workflow a trigger started for the turn (generate; workflow.h): its run, and
     * whether the run waits for a person (its review task is then the turn's) */
    struct {
        const char *name, *run, *review_id; /* arena */
        bool waiting;
    } workflow;
    enum tg_decision decision; /* gate; admit (an open hand-off), record (storage failure) */

    /* Failure of the turn: set by any stage (tg_turn_fail), rendered by reply. */
    int err;               /* TG_OK or an error */
    int http_status;       /* status to answer with when err is set (reply sets it too) */
    const char *err_code;  /* OpenAI error code, e.g. "invalid_api_key" */
    const char *err_param; /* the offending request field, or NULL */
    char errmsg[256];
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
/* What this turn's customer is told at once when it is held: t->gate.holding,
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
/* The question's focus (tg_text_focus of understand.norm_text), made once
 * per turn in its arena: "" when it is the whole question; NULL when out
 * of memory. */
const char *tg_turn_focus(struct tg_turn *t);

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
