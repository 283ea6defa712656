/*
 * ladder.h - the degradation ladder: which backend answers a turn, and
 * what happens when it cannot.
 *
 * A ladder is an ordered list of rungs (config `ladder.rungs`), e.g.
 * primary model -> lighter model -> canned script -> human.  A rung's model
 * is fixed (the rung's `model`, else its backend's) or, for an upstream
 * rung with neither, the one the client named (pass-through).  A turn
 * starts on the first rung; a failure is retried on the same rung when
 * retrying can help (a 429 or 5xx, after its Retry-After if it gives one;
 * a reset before the head: with exponential backoff and jitter, at most
 * max_attempts calls), or steps down at once when it cannot (a silent upstream — no
 * connection or no response head in time —, a late first token, a cut or
 * stalled stream, an exhausted rung budget).  A Retry-After, in seconds or
 * as an HTTP date, is obeyed and never undercut; one that reaches past the
 * turn's budget (30 s without a budget) is not waited for: the turn steps
 * down at once.  A later rung that would send the same model to the same
 * upstream after it failed in this turn is skipped.  A 400 for context
 * length goes to a `large_context` rung if there is one; a content-policy
 * rejection or other client error ends the turn with the provider's reason.
 * Every step down is an event with its cause.  A rung may limit its calls
 * in flight (max_inflight) and let turns queue for a slot (queue,
 * queue_timeout); when the queue is full a more important turn takes the
 * place of a less important one, which steps down ("shed").
 *
 * Circuit breakers guard upstream models: one per rung with a fixed model,
 * one per (backend, model) on a pass-through rung, so one model's outage
 * never holds back another model on the same upstream.  The pass-through
 * breakers live in a table of at most 64 failing models per ladder (a
 * model that answers leaves it; when it is full the least recently used
 * breaker that is not open is forgotten first), so clients naming random
 * models cannot grow memory.  From a model's first fault the breaker counts
 * turns and calls: a turn that finds the model failing calls it at most
 * once, without retries, and only while the model has had fewer calls than
 * turns, so an outage never draws more calls than turns (the first turn's
 * own retries aside, which later turns then skip).  After `failures`
 * consecutive faults (default 3) it opens for `open` (default 1 s); then
 * one probe at a time (a `probe` share of turns, default all) may call:
 * any answer from the upstream, even a refusal, closes it at once; a fault
 * opens it again.  Rate limits and
 * client errors are not faults.  Faults that never opened a breaker are
 * forgotten after a minute.  The whole turn has a budget no timer can
 * extend: when it runs out, the ladder skips to its first rung that needs
 * no upstream (script, builtin or human).
 *
 * Without a `ladder` section the route's backend is the only rung, nothing
 * is retried and no breaker holds it back: the gateway behaves as a plain
 * proxy.
 */
#ifndef TG_LADDER_H
#define TG_LADDER_H

#include "backend/backend.h"

struct tg_ladder;
struct tg_dispatch;
struct tg_metrics;

/*
 * Build the ladder from cfg (`ladder`, else `route.backend` alone) over the
 * created backends.  TG_OK, or an error with a message in err.
 */
int tg_ladder_build(const struct tg_config *cfg, struct tg_backend *const *backends, size_t n,
                    struct tg_metrics *metrics, struct tg_ladder **out, char *err, size_t errlen);
void tg_ladder_free(struct tg_ladder *l);
/* Degraded turns in a row after which a conversation goes to a person (default 3). */
int tg_ladder_max_streak(const struct tg_ladder *l);
/* The first rung's backend (for a turn that never reaches the ladder). */
struct tg_backend *tg_ladder_first_backend(const struct tg_ladder *l);

struct tg_dispatch_result {
    int err;           /* TG_OK, or why no rung answered */
    int http_status;   /* for an error: the status the client is sent: 400, 502, 504, 499 */
    char code[64];     /* for an error: the OpenAI-style error code */
    char message[320]; /* for an error: the reason, the provider's own when it gave one */
    char *content;     /* the answer (tg_malloc'd); the callback may take it */
    size_t len;
    json_t *tool_calls; /* the answer's tool calls, NULL when none (owned; may be taken) */
    json_t *logprobs;   /* the answer's logprobs, NULL when none (owned; may be taken) */
    char model[96];     /* the model that answered */
    char finish_reason[24];
    int64_t prompt_tokens, completion_tokens;
    double confidence; /* the backend's own, or -1 */
    bool low_confidence;
    /* a holding reply, not an answer: the backend's own, or a script rung
     * stepped down to */
    bool holding;
    int cited;                  /* the evidence index the answer quotes, or -1 (backend.h) */
    bool human;                 /* the ladder ended with a person: hand the turn off */
    const char *rung;           /* the rung that answered (or "human") */
    struct tg_backend *backend; /* the backend that answered, NULL for a person */
    int degradations;           /* rungs stepped down in this turn */
    json_t *events; /* [{rung, backend, attempt, cause, status, ms}] (owned; may be taken) */
    int events_err; /* TG_E_NOMEM when an event could not be kept: events is incomplete */
};

typedef void (*tg_dispatch_cb)(struct tg_dispatch_result *res, void *arg);

/* Admission classes: under overload internal work degrades first, VIP customers last. */
enum { TG_PRIORITY_INTERNAL = 0, TG_PRIORITY_CUSTOMER = 1, TG_PRIORITY_VIP = 2, TG_CLASSES = 3 };

struct tg_dispatch_opts {
    bool to_human; /* straight to a person (the conversation degraded too often) */
    int priority;  /* TG_PRIORITY_* */
};

/*
 * Answer rq (borrowed; its messages and params are referenced, the rest
 * must live until the callback) on the ladder, starting at the first rung
 * or, with opts->to_human, straight with a person.  The callback runs
 * exactly once (possibly before this returns) unless the dispatch is
 * cancelled first.  TG_OK or TG_E_NOMEM (no callback).
 */
int tg_dispatch_start(struct tg_ladder *l, struct event_base *base,
                      const struct tg_backend_request *rq, const struct tg_dispatch_opts *opts,
                      tg_dispatch_cb cb, void *arg, struct tg_dispatch **out);
/* The client left: stop the call in progress, make no more attempts, no callback. */
void tg_dispatch_cancel(struct tg_dispatch *d);

#endif
