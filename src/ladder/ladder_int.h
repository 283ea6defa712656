/*
 * ladder_int.h - what the ladder's files share and nobody else sees: the
 * ladder, its rungs, the breakers that guard upstream models, and one
 * turn's walk down the rungs (struct tg_dispatch).
 */
#ifndef TG_LADDER_INT_H
#define TG_LADDER_INT_H

#include "ladder/ladder.h"

#define NAME_MAX_ 64
#define BREAKERS 64 /* failing pass-through models tracked at once, per ladder */
/* a breaker that never opened forgets faults this old: they were not an outage */
#define FORGET_NS (60 * INT64_C(1000000000))
/* without a turn budget, the longest Retry-After the ladder waits for */
#define RETRY_AFTER_CEILING_MS 30000
#define FAILED_MAX 4 /* upstream models remembered as failed within one turn */

/*
 * The health of one upstream model.  Healthy: fails 0 and not open.  After
 * `failures` faults in a row it opens for `open`; then it is half-open: one
 * probe at a time (a `probe` share of the turns that find it so) may call,
 * a fault opens it again, an answer closes it.
 */
struct breaker {
    const struct tg_backend *backend; /* table entries: the key with model; NULL: a free slot */
    uint64_t hash;                    /* of the whole model name */
    size_t len;                       /* of the whole model name */
    char model[96];                   /* the name (cut if longer) */
    int fails;                        /* consecutive upstream faults */
    int64_t open_until_ns;            /* 0: closed; else open until then, half-open after */
    int64_t turns, calls;             /* since the first fault: turns that wanted it, calls */
    int64_t fault_ns, used_ns;        /* the last fault; the last look-up (for eviction) */
    uint64_t probe;                   /* the half-open probe in flight, 0: none */
};

/* stride scheduling's unit: a class of weight w advances STRIDE_ONE / w per slot */
#define STRIDE_ONE ((uint64_t)1 << 32)

struct tg_dispatch;

struct rung {
    char name[NAME_MAX_];
    /* admission: at most max_inflight calls at once (0: no limit); up to
     * max_queue turns wait for a slot, at most queue_timeout_ms each, in
     * one queue per class, shared out by weight (admit_next) */
    int max_inflight, max_queue;
    int64_t queue_timeout_ms;
    int inflight;
    struct tg_dispatch *queue[TG_CLASSES], *tail[TG_CLASSES]; /* first come first */
    int nq[TG_CLASSES];
    uint64_t pass[TG_CLASSES]; /* stride scheduling: the class's virtual time */
    uint64_t vtime;            /* the pass of the class served last */
    int queued;
    struct tg_backend *backend; /* NULL: a person */
    const char *model;          /* fixed model for this rung, or NULL (borrowed from the config) */
    const char *fixed;          /* the model sent: the rung's, else the backend's, else NULL */
    const char *upstream;       /* the backend's base URL, NULL when it has none */
    bool pass_through;          /* an upstream rung without a fixed model: breakers per model */
    int64_t budget_ms;          /* this rung's own time limit per attempt; 0: none */
    bool large_context;         /* only for context_length_exceeded */
    bool local;                 /* needs no upstream (script, builtin, human) */
    struct breaker br;          /* a rung with a fixed model */
};

struct tg_ladder {
    struct rung *rungs;
    size_t n;
    struct tg_metrics *metrics;
    int max_attempts;  /* calls per rung for retryable failures */
    int64_t budget_ms; /* the whole turn; 0: no limit beyond the backends' own */
    int64_t backoff_ms, backoff_max_ms;
    int max_streak;
    uint64_t stride[TG_CLASSES]; /* STRIDE_ONE / the class's weight (config ladder.class_weight) */
    double
        min_confidence; /* below it a confident-looking rung gives way to a script rung; <0 off */
    int breaker_failures;
    int64_t breaker_open_ms;
    double probe_share;
    bool breakers; /* false for the route alone (no `ladder`): a plain proxy refuses nothing */
    uint64_t rng;
    uint64_t probe_seq;
    size_t tracked;                  /* entries in use in models[] */
    struct breaker models[BREAKERS]; /* pass-through rungs' breakers, failing models only */
};

struct tg_dispatch {
    struct tg_ladder *l;
    struct event_base *base;
    struct tg_backend_request rq;
    json_t *messages, *params;
    tg_dispatch_cb cb;
    void *arg;
    size_t rung;               /* the rung being tried */
    int attempt;               /* calls made on this rung */
    int steps;                 /* rungs left behind: the turn's degradations */
    int priority;              /* admission: larger first (VIP 2, customers 1, internal 0) */
    bool has_slot;             /* holds one of its rung's max_inflight slots */
    struct tg_dispatch *qnext; /* in its rung's queue */
    bool prefill_dropped, want_large, budget_gone;
    bool turn_limited; /* the attempt's timer is the turn's deadline, not the rung's budget */
    int64_t started_ns, deadline_ns; /* deadline 0: none */
    struct tg_backend_call *call;
    struct event *timer;
    enum { PH_IDLE, PH_CALL, PH_WAIT, PH_QUEUED, PH_ADMITTED, PH_SHED } phase;
    bool in_start; /* the callback may not free us while start() still runs */
    int last_err;  /* the last failure, for the client when no rung is left */
    char last_msg[300];
    bool finished;
    bool may_retry; /* the rung's model was healthy when the turn came to it */
    uint64_t probe; /* the half-open probe this turn holds on its rung's breaker, 0: none */
    size_t failed[FAILED_MAX]; /* rungs whose upstream model failed in this turn */
    int n_failed;
    struct tg_dispatch_result res;
};

/* A uniform random number in [0, 1) from the ladder's own generator (jitter, probes). */
double tg_ladder_uniform(struct tg_ladder *l);

/* ------------------------------------------------------------ breakers (breaker.c) */

/* Is breaker b counting faults (failing, open or half-open)? */
bool tg_ladder_breaker_failing(const struct breaker *b);
/*
 * The breaker that guards rung r's calls for model (the client's): the
 * rung's own when its model is fixed, else the table entry of (backend,
 * model); NULL on a ladder without breakers.  A healthy pass-through model
 * has no entry: NULL, unless create, which takes a free slot or, with the
 * table full, evicts one without a probe in flight (NULL when every entry
 * has one).
 */
struct breaker *tg_ladder_breaker_get(struct tg_ladder *l, struct rung *r, const char *model,
                                      bool create, int64_t now);
/* May turn d call rung r's model now?  (A failing model lets a turn call once, without
 * retries, while it has had fewer calls than turns; open, only as the one probe.) */
bool tg_ladder_breaker_admit(struct tg_dispatch *d, struct rung *r, int64_t now);
/* A call on rung r is about to start: a failing model counts it. */
void tg_ladder_breaker_call(struct tg_dispatch *d, struct rung *r, int64_t now);
/* d leaves its rung or its call ended: give back the probe it holds, if any. */
void tg_ladder_probe_release(struct tg_dispatch *d);
/* What d's call on rung r did: an answer closes the breaker, a fault counts and may open it. */
void tg_ladder_breaker_result(struct tg_dispatch *d, struct rung *r, bool fault, int64_t now);

#endif
