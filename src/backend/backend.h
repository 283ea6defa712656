/*
 * backend.h - the things that write answers: upstream models (openai.c),
 * canned replies (script.c) and the builtin knowledge-base answerer
 * (builtin.c).
 *
 * A backend is created from its config section and answers one request at
 * a time per call, asynchronously, on the server's event loop.  Every
 * backend kind is a `const struct tg_backend_ops` table; callers use only
 * the functions below.
 *
 * Callback rule: tg_backend_generate() either returns an error and never
 * calls cb, or returns TG_OK and calls cb exactly once — possibly before it
 * returns (script answers at once) — unless the call is cancelled first.
 */
#ifndef TG_BACKEND_H
#define TG_BACKEND_H

#include "config/config.h"
#include "core/core.h"

struct event_base;
struct tg_backend;
struct tg_backend_call;
struct tg_metrics;

#define TG_RANK_FEATURES 7

/* One retrieved passage, as the retrieve stage found it (strings borrowed). */
struct tg_evidence {
    const char *source; /* file or document id, for the citation */
    const char *title;
    const char *text;         /* the chunk's text */
    const char *faq_question; /* for an FAQ chunk: its question and answer, else NULL */
    const char *faq_answer;
    double score; /* retrieval score (BM25 plus the key match) */
    double match; /* the chunk key's cosine with the question, 0..1 (kb.h) */
    double rank;  /* the learned ranker's probability that this passage is the one
                     that answers, among the turn's passages (stage_retrieve.c) */
    double features[TG_RANK_FEATURES]; /* what the ranker weighed (stage_retrieve.c) */
    uint32_t chunk;                    /* chunk number in the knowledge base */
};

struct tg_backend_request {
    const char *model;      /* requested model; a backend with a fixed model ignores it */
    const json_t *messages; /* OpenAI messages array (role, content) */
    const json_t *params;   /* the client's request: its allow-listed fields are forwarded, or NULL */
    const char *user;       /* the customer's pseudonym, sent as the upstream's `user`, or NULL */
    /* What the understand and retrieve stages found (used by the builtin answerer). */
    const char *question;               /* the customer's last message */
    const struct tg_evidence *evidence; /* best first */
    size_t n_evidence;
    double query_coverage;     /* share of the question's tokens found in the best passage, 0..1 */
    double intent_probability; /* the classifier's probability, or -1 when none */
    bool for_review;           /* a person checks the answer before it is sent: a weakly
                                  supported draft is still worth writing for them */
    /* Streaming backends call on_delta with each piece of answer text as it
     * arrives (may be NULL).  committed (may be NULL) turns true once the
     * caller has passed text on: from then the answer cannot be restarted
     * on another backend. */
    void (*on_delta)(void *arg, const char *text, size_t len);
    void *delta_arg;
    const bool *committed;
};

struct tg_backend_result {
    int err;       /* TG_OK, TG_E_UPSTREAM, TG_E_TIMEOUT, TG_E_NOMEM */
    int status;    /* upstream HTTP status, 0 when none was received */
    char *content; /* the answer (tg_malloc'd); the callback may take it and set NULL */
    size_t len;
    /* OpenAI `tool_calls` of the answer ([{id, type, function: {name, arguments}}]) and its
     * `logprobs` object, each NULL when absent; owned, the callback may take them and set NULL.
     * An answer with tool calls may have no content (content "" and len 0). */
    json_t *tool_calls;
    json_t *logprobs;
    char finish_reason[24];
    char model[96]; /* the model that answered */
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t retry_after_ms; /* from a Retry-After header, -1 when absent */
    int malformed_events;   /* stream events skipped as unparseable */
    double confidence;      /* the backend's own confidence in the answer, or -1 when none */
    bool low_confidence;    /* its confidence is below min_confidence */
    bool holding;           /* the text is a holding reply, not an answer: the customer waits */
    int cited;              /* index of the evidence the answer came from, or -1 */
    char kind[32];          /* short failure class for metrics: "header_timeout", "status_503" */
    char code[64];          /* the upstream's own error code, e.g. "context_length_exceeded" */
    char message[256];      /* human-readable failure description */
};

/* Called once with the result, valid only during the call. */
typedef void (*tg_backend_cb)(struct tg_backend_result *res, void *arg);

struct tg_backend_env {
    struct event_base *base;
    struct tg_metrics *metrics; /* may be NULL */
};

/*
 * Create a backend from conf, which must outlive it.  Returns TG_OK, or an
 * error with a message in err.
 */
int tg_backend_create(const struct tg_backend_conf *conf, const struct tg_backend_env *env,
                      struct tg_backend **out, char *err, size_t errlen);
void tg_backend_free(struct tg_backend *b);
const char *tg_backend_name(const struct tg_backend *b);
const char *tg_backend_type(const struct tg_backend *b);

/* Start answering rq (copied as needed).  *call (may be NULL) receives a
 * handle for tg_backend_cancel() that is valid until cb runs. */
int tg_backend_generate(struct tg_backend *b, const struct tg_backend_request *rq, tg_backend_cb cb,
                        void *arg, struct tg_backend_call **call);
/* Abandon a call: cb will not be called, the upstream request is dropped. */
void tg_backend_cancel(struct tg_backend_call *call);

/*
 * The builtin answerer's confidence signals for rq (see builtin.c), in
 * x[0..TG_BUILTIN_SIGNALS): what its confidence is a logistic function of.
 * Exposed so that the calibration harness (`trustgate eval far --signals`)
 * fits the weights on exactly what the answerer computes.  No evidence
 * gives all zeros.  tg_backend_builtin_confidence() is the answerer's own
 * confidence for rq, in [0, 1].
 */
#define TG_BUILTIN_SIGNALS 13
void tg_backend_builtin_signals(const struct tg_backend_request *rq, double *x);
double tg_backend_builtin_confidence(const struct tg_backend_request *rq);

/* Result helpers for backend implementations. */
void tg_backend_result_init(struct tg_backend_result *res);
void tg_backend_result_fail(struct tg_backend_result *res, int err, const char *kind,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
