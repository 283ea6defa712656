/*
 * ladder.c - the degradation ladder.  See ladder.h.
 *
 * One tg_dispatch per turn walks the rungs.  Each attempt has a timer at
 * the sooner of its rung's budget and the turn's deadline; a retry waits on
 * the same timer (backoff or Retry-After).  Failures are classified once
 * (classify) into: retry on this rung, step down now, look for a
 * large-context rung, drop an assistant prefill and restart, or end the turn
 * with an error.  Breakers count only the upstream's own faults (5xx,
 * resets, timeouts, broken streams), not rate limits or client errors.
 *
 * A breaker guards one upstream model: a rung with a fixed model has its
 * own, a pass-through rung one per model the clients name, kept in a small
 * table of the models that are failing now (a model that answers leaves
 * it, so a healthy model costs one failed look-up per turn).  From a
 * model's first fault on, the breaker counts the turns that wanted it and
 * the calls it got; a turn is let through only while calls < turns, so an
 * outage never draws more calls than turns, and a turn that finds its
 * model failing calls it once, without retries.
 */
#include "ladder/ladder.h"

#include "metrics/metrics.h"

#include <event2/event.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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
    uint64_t stride[TG_CLASSES]; /* STRIDE_ONE / the class's weight (ladder.shares) */
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

/* ------------------------------------------------------------ ladder */

static double uniform(struct tg_ladder *l)
{
    /* xorshift64*: jitter and probe choices need no cryptographic quality */
    l->rng ^= l->rng >> 12;
    l->rng ^= l->rng << 25;
    l->rng ^= l->rng >> 27;
    return (double)((l->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static int64_t dur(const json_t *v, int64_t def)
{
    int64_t ms = def;
    if (json_is_integer(v))
        ms = json_integer_value(v);
    else if (json_is_string(v) && tg_parse_duration_ms(json_string_value(v), &ms))
        ms = def;
    return ms;
}

static struct tg_backend *find_backend(struct tg_backend *const *b, size_t n, const char *name)
{
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(tg_backend_name(b[i]), name) == 0)
            return b[i];
    return NULL;
}

static void set_rung(const struct tg_config *cfg, struct rung *r, const char *name,
                     struct tg_backend *b, const char *model)
{
    const struct tg_backend_conf *bc = b ? tg_config_backend(cfg, tg_backend_name(b)) : NULL;
    tg_strlcpy(r->name, name, sizeof(r->name));
    r->backend = b;
    r->local = !b || strcmp(tg_backend_type(b), "openai") != 0;
    r->model = model;
    r->fixed = model ? model : (bc ? bc->model : NULL);
    r->upstream = bc ? bc->base_url : NULL;
    r->pass_through = !r->local && !r->fixed;
}

int tg_ladder_build(const struct tg_config *cfg, struct tg_backend *const *backends, size_t n,
                    struct tg_metrics *metrics, struct tg_ladder **out, char *err, size_t errlen)
{
    const json_t *sec = json_object_get(cfg->root, "ladder");
    const json_t *rungs = json_object_get(sec, "rungs");
    struct tg_ladder *l = tg_calloc(1, sizeof(*l));
    size_t nr = json_array_size(rungs);
    if (!l)
        return TG_E_NOMEM;
    l->metrics = metrics;
    l->rungs = tg_calloc(nr ? nr : 1, sizeof(*l->rungs));
    if (!l->rungs || tg_random_bytes(&l->rng, sizeof(l->rng))) {
        tg_ladder_free(l);
        return TG_E_NOMEM;
    }
    l->rng |= 1;
    const json_t *br = json_object_get(sec, "breaker");
    l->max_attempts = (int)tg_json_int(sec, "max_attempts", sec ? 3 : 1);
    l->budget_ms = dur(json_object_get(sec, "budget"), 0);
    l->backoff_ms = dur(json_object_get(sec, "backoff"), 200);
    l->backoff_max_ms = dur(json_object_get(sec, "backoff_max"), 2000);
    l->max_streak = (int)tg_json_int(sec, "degraded_to_human", 3);
    /* the classes' weights: customers keep a third of a rung under a VIP flood */
    static const char *const class_names[TG_CLASSES] = {"internal", "customer", "vip"};
    static const int64_t default_weight[TG_CLASSES] = {1, 3, 6};
    const json_t *shares = json_object_get(sec, "shares");
    for (int c = 0; c < TG_CLASSES; c++) {
        int64_t w = tg_json_int(shares, class_names[c], default_weight[c]);
        l->stride[c] = STRIDE_ONE / (uint64_t)(w > 0 ? w : 1);
    }
    const json_t *mc = json_object_get(sec, "min_confidence");
    l->min_confidence = json_is_number(mc) ? json_number_value(mc) : -1;
    l->breaker_failures = (int)tg_json_int(br, "failures", 3);
    l->breaker_open_ms = dur(json_object_get(br, "open"), 1000);
    const json_t *ps = json_object_get(br, "probe");
    l->probe_share = json_is_number(ps) ? json_number_value(ps) : 1.0;
    l->breakers = nr > 0;
    if (!nr) {
        /* the route's backend alone, as a plain proxy */
        struct tg_backend *b = find_backend(backends, n, cfg->route_backend);
        if (!b && n)
            b = backends[0];
        if (!b) {
            snprintf(err, errlen, "no backend to route turns to");
            tg_ladder_free(l);
            return TG_E_CONFIG;
        }
        set_rung(cfg, &l->rungs[0], tg_backend_name(b), b, NULL);
        l->n = 1;
        *out = l;
        return TG_OK;
    }
    for (size_t i = 0; i < nr; i++) {
        const json_t *r = json_array_get(rungs, i);
        const char *bname = tg_json_str(r, "backend", NULL);
        struct tg_backend *b = find_backend(backends, n, bname);
        if (bname && !b) {
            snprintf(err, errlen, "ladder.rungs[%zu]: no backend named '%s'", i, bname);
            tg_ladder_free(l);
            return TG_E_CONFIG;
        }
        struct rung *rg = &l->rungs[l->n++];
        set_rung(cfg, rg, tg_json_str(r, "name", bname ? bname : "human"), b,
                 tg_json_str(r, "model", NULL));
        rg->budget_ms = dur(json_object_get(r, "budget"), 0);
        rg->large_context = tg_json_bool(r, "large_context", false);
        rg->max_inflight = (int)tg_json_int(r, "max_inflight", 0);
        rg->max_queue = (int)tg_json_int(r, "queue", 0);
        rg->queue_timeout_ms = dur(json_object_get(r, "queue_timeout"), 1000);
    }
    *out = l;
    return TG_OK;
}

void tg_ladder_free(struct tg_ladder *l)
{
    if (!l)
        return;
    tg_free(l->rungs);
    tg_free(l);
}

int tg_ladder_max_streak(const struct tg_ladder *l)
{
    return l->max_streak;
}

struct tg_backend *tg_ladder_first_backend(const struct tg_ladder *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->rungs[i].backend)
            return l->rungs[i].backend;
    return NULL;
}

/* ------------------------------------------------------------ breakers */

static uint64_t name_hash(const char *s, size_t len)
{
    return tg_fnv1a64(s, len, TG_FNV64_INIT);
}

static bool breaker_failing(const struct breaker *b)
{
    return b->fails || b->open_until_ns;
}

/* Back to healthy; a table entry gives up its slot. */
static void breaker_clear(struct tg_ladder *l, struct breaker *b)
{
    if (b->backend) {
        memset(b, 0, sizeof(*b));
        l->tracked--;
        return;
    }
    b->fails = 0;
    b->open_until_ns = 0;
    b->turns = b->calls = 0;
    b->probe = 0;
}

/* Faults that never opened the breaker and are long past are forgotten. */
static bool breaker_stale(const struct breaker *b, int64_t now)
{
    return b->fails && !b->open_until_ns && !b->probe && now - b->fault_ns > FORGET_NS;
}

/* Which entry a full table gives up first: closed before open, then the least recently used. */
static bool evict_before(const struct breaker *a, const struct breaker *b)
{
    if (!b)
        return true;
    if (!a->open_until_ns != !b->open_until_ns)
        return !a->open_until_ns;
    return a->used_ns < b->used_ns;
}

/*
 * The breaker that guards rung r's calls for model (the client's): the
 * rung's own when its model is fixed, else the table entry of (backend,
 * model); NULL on a ladder without breakers.  A healthy pass-through model
 * has no entry: NULL, unless create, which takes a free slot or, with the
 * table full, the entry evict_before picks among those without a probe in
 * flight (NULL when every entry has one).  A client naming random models
 * thus costs at most BREAKERS entries.
 */
static struct breaker *breaker_get(struct tg_ladder *l, struct rung *r, const char *model,
                                   bool create, int64_t now)
{
    if (!l->breakers)
        return NULL;
    if (!r->pass_through) {
        if (breaker_stale(&r->br, now))
            breaker_clear(l, &r->br);
        return &r->br;
    }
    if (!l->tracked && !create)
        return NULL;
    const char *m = model ? model : "";
    size_t len = strlen(m);
    uint64_t h = name_hash(m, len);
    struct breaker *slot = NULL, *victim = NULL;
    size_t seen = 0;
    for (size_t i = 0; i < BREAKERS && (create || seen < l->tracked); i++) {
        struct breaker *e = &l->models[i];
        if (!e->backend) {
            if (!slot)
                slot = e;
            continue;
        }
        seen++;
        if (e->backend == r->backend && e->hash == h && e->len == len &&
            !strncmp(e->model, m, sizeof(e->model) - 1)) {
            if (!breaker_stale(e, now)) {
                e->used_ns = now;
                return e;
            }
            breaker_clear(l, e);
            slot = e;
            break;
        }
        if (!e->probe && evict_before(e, victim))
            victim = e;
    }
    if (!create)
        return NULL;
    if (!slot && victim) {
        tg_info("ladder: %d failing models tracked; forgetting model '%s' of backend %s", BREAKERS,
                victim->model, tg_backend_name(victim->backend));
        breaker_clear(l, victim);
        slot = victim;
    }
    if (!slot)
        return NULL;
    slot->backend = r->backend;
    slot->hash = h;
    slot->len = len;
    tg_strlcpy(slot->model, m, sizeof(slot->model));
    slot->used_ns = now;
    l->tracked++;
    return slot;
}

/*
 * May turn d call rung r's model now?  A healthy model: yes, with retries.
 * A failing one counts the turn, and lets it call once, without retries,
 * only while the model has had fewer calls than turns since its first
 * fault; while open, not at all; half-open, as the one probe in flight (a
 * probe_share of the turns that find it so), which d then holds.
 */
static bool breaker_admit(struct tg_dispatch *d, struct rung *r, int64_t now)
{
    struct tg_ladder *l = d->l;
    struct breaker *b = breaker_get(l, r, d->rq.model, false, now);
    d->may_retry = !b || !breaker_failing(b);
    if (d->may_retry)
        return true;
    b->turns++;
    if (b->calls >= b->turns)
        return false;
    if (b->open_until_ns) {
        if (now < b->open_until_ns || b->probe || uniform(l) >= l->probe_share)
            return false;
        b->probe = d->probe = ++l->probe_seq;
    }
    return true;
}

/* A call on rung r is about to start: a failing model counts it. */
static void breaker_call(struct tg_dispatch *d, struct rung *r, int64_t now)
{
    struct breaker *b = breaker_get(d->l, r, d->rq.model, false, now);
    if (b && breaker_failing(b))
        b->calls++;
}

/* d leaves its rung or its call ended: give back the probe it holds, if any. */
static void probe_release(struct tg_dispatch *d)
{
    if (!d->probe)
        return;
    if (d->rung < d->l->n) {
        struct breaker *b =
            breaker_get(d->l, &d->l->rungs[d->rung], d->rq.model, false, tg_clock_mono_ns());
        if (b && b->probe == d->probe)
            b->probe = 0;
    }
    d->probe = 0;
}

/* What d's call on rung r did: any answer from the upstream (even a
 * refusal) closes the breaker; a fault starts or continues its count, and
 * opens it after `failures` in a row, or again when a probe fails. */
static void breaker_result(struct tg_dispatch *d, struct rung *r, bool fault, int64_t now)
{
    struct tg_ladder *l = d->l;
    probe_release(d);
    struct breaker *b = breaker_get(l, r, d->rq.model, fault, now);
    if (!b)
        return;
    if (!fault) {
        if (b->open_until_ns)
            tg_info("ladder: rung %s (model %s) answered again; breaker closed", r->name,
                    r->fixed ? r->fixed : b->model);
        if (breaker_failing(b))
            breaker_clear(l, b);
        return;
    }
    if (!breaker_failing(b)) {
        b->turns = 1; /* this turn and its call begin the count */
        b->calls = 1;
    }
    b->fails++;
    b->fault_ns = now;
    bool half_open = b->open_until_ns && now >= b->open_until_ns;
    if (half_open || (!b->open_until_ns && b->fails >= l->breaker_failures)) {
        if (!b->open_until_ns)
            tg_warn("ladder: rung %s (model %s) failed %d times in a row; breaker open, "
                    "probed every %lld ms",
                    r->name, r->fixed ? r->fixed : b->model, b->fails,
                    (long long)l->breaker_open_ms);
        b->open_until_ns = now + l->breaker_open_ms * 1000000;
    }
}

/* The model rung r sends for d. */
static const char *sent_model(const struct tg_dispatch *d, const struct rung *r)
{
    return r->fixed ? r->fixed : (d->rq.model ? d->rq.model : "");
}

/* Has d already seen rung r's upstream model fail, on an earlier rung? */
static bool failed_before(const struct tg_dispatch *d, const struct rung *r)
{
    for (int i = 0; i < d->n_failed; i++) {
        const struct rung *f = &d->l->rungs[d->failed[i]];
        if (f->upstream && r->upstream && !strcmp(f->upstream, r->upstream) &&
            !strcmp(sent_model(d, f), sent_model(d, r)))
            return true;
    }
    return false;
}

/* The upstream model of d's rung failed by its own fault. */
static void mark_failed(struct tg_dispatch *d)
{
    if (d->n_failed < FAILED_MAX && (!d->n_failed || d->failed[d->n_failed - 1] != d->rung))
        d->failed[d->n_failed++] = d->rung;
}

/* ------------------------------------------------------------ dispatch */

enum verdict { V_RETRY, V_DOWN, V_CONTEXT, V_PREFILL, V_FATAL };

/* What a failed call means for the ladder; *fault: the upstream's own fault. */
static enum verdict classify(const struct tg_backend_result *res, bool has_prefill, bool *fault)
{
    const char *k = res->kind;
    *fault = false;
    if (res->err == TG_E_NOMEM)
        return V_FATAL;
    if (res->status == 429)
        return V_RETRY;
    if (res->status >= 500 || !strcmp(k, "connect") || !strcmp(k, "transport")) {
        *fault = true;
        return V_RETRY;
    }
    if (res->status == 400 || res->status == 413 || res->status == 422) {
        if (strstr(res->code, "context_length") || res->status == 413)
            return V_CONTEXT;
        if (has_prefill && (strstr(res->code, "prefill") || strstr(res->message, "prefill")))
            return V_PREFILL;
        return V_FATAL; /* content policy, bad request: the provider's reason stands */
    }
    if (res->status >= 401 && res->status < 500)
        return V_DOWN; /* this rung is misconfigured (key, model): another may answer */
    /* connect, header, first-token, idle and total timeouts, cut or garbled
     * streams: a silent upstream is not asked again, the next rung is */
    *fault = true;
    return V_DOWN;
}

static void event_add_json(struct tg_dispatch *d, const char *cause, int status)
{
    struct rung *r = &d->l->rungs[d->rung];
    if (!d->res.events && !(d->res.events = json_array()))
        return;
    json_array_append_new(d->res.events,
                          json_pack("{s:s, s:s, s:i, s:s, s:i, s:I}", "rung", r->name, "backend",
                                    r->backend ? tg_backend_name(r->backend) : "human", "attempt",
                                    d->attempt, "cause", cause, "status", status, "ms",
                                    (json_int_t)((tg_clock_mono_ns() - d->started_ns) / 1000000)));
}

static void finish(struct tg_dispatch *d)
{
    probe_release(d);
    d->finished = true;
    d->phase = PH_IDLE;
    if (d->in_start)
        return; /* start() calls back once it is done */
    d->cb(&d->res, d->arg);
    tg_dispatch_cancel(d);
}

static void fail(struct tg_dispatch *d, int err, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void fail(struct tg_dispatch *d, int err, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->res.message, sizeof(d->res.message), fmt, ap);
    va_end(ap);
    d->res.err = err;
    d->res.http_status = status;
    tg_strlcpy(d->res.code, code, sizeof(d->res.code));
    finish(d);
}

static void try_rung(struct tg_dispatch *d);

/* Leave the current rung for cause; the next one is tried at once. */
static void step_down(struct tg_dispatch *d, const char *cause, int status)
{
    struct rung *r = &d->l->rungs[d->rung];
    probe_release(d);
    event_add_json(d, cause, status);
    if (d->l->metrics)
        tg_metrics_degradation(d->l->metrics, r->name, cause);
    d->rung++;
    d->steps++;
    d->attempt = 0;
    d->prefill_dropped = false;
    try_rung(d);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg);

/* Stop the turn's timer, if it has one. */
static void disarm(struct tg_dispatch *d)
{
    if (d->timer)
        evtimer_del(d->timer);
}

/* The timer is made when first needed: a turn answered at once never needs one. */
static void arm(struct tg_dispatch *d, int64_t ms)
{
    if (!d->timer && !(d->timer = evtimer_new(d->base, timer_cb, d))) {
        tg_error("ladder: out of memory for a timer; the attempt has no time limit");
        return;
    }
    if (ms < 0)
        ms = 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(d->timer, &tv);
}

/* Milliseconds left in the turn, or INT64_MAX without a deadline. */
static int64_t left_ms(const struct tg_dispatch *d)
{
    if (!d->deadline_ns)
        return INT64_MAX;
    return (d->deadline_ns - tg_clock_mono_ns()) / 1000000;
}

static void call_done(struct tg_backend_result *res, void *arg);

/* ------------------------------------------------------------ admission */

static void queue_remove(struct rung *r, struct tg_dispatch *d)
{
    int c = d->priority;
    struct tg_dispatch *prev = NULL;
    for (struct tg_dispatch **p = &r->queue[c]; *p; prev = *p, p = &(*p)->qnext) {
        if (*p == d) {
            *p = d->qnext;
            if (r->tail[c] == d)
                r->tail[c] = prev;
            d->qnext = NULL;
            r->nq[c]--;
            r->queued--;
            return;
        }
    }
}

/* At the end of its class's queue.  A class that had nothing waiting
 * starts from the present (vtime), not from the credit it left unused. */
static void queue_insert(struct rung *r, struct tg_dispatch *d)
{
    int c = d->priority;
    if (!r->nq[c] && r->pass[c] < r->vtime)
        r->pass[c] = r->vtime;
    d->qnext = NULL;
    if (r->tail[c])
        r->tail[c]->qnext = d;
    else
        r->queue[c] = d;
    r->tail[c] = d;
    r->nq[c]++;
    r->queued++;
}

/* Wake a waiting turn on the next loop iteration (never inside another's call stack). */
static void wake(struct tg_dispatch *d, int phase)
{
    d->phase = phase;
    disarm(d);
    event_active(d->timer, EV_TIMEOUT, 0); /* queued, so armed once: it has a timer */
}

/*
 * Give freed slots to waiting turns, by stride scheduling (Waldspurger and
 * Weihl, "Stride Scheduling", MIT/LCS/TM-528, 1995): the class with
 * turns waiting and the least pass goes next (ties: the higher class), and
 * its pass grows by its stride, so under contention each class gets slots
 * in proportion to its weight and none is starved — a VIP flood leaves
 * customers their share.
 */
static void admit_next(struct rung *r, const struct tg_ladder *l)
{
    while (r->queued && r->inflight < r->max_inflight) {
        int best = -1;
        for (int c = TG_CLASSES - 1; c >= 0; c--)
            if (r->nq[c] && (best < 0 || r->pass[c] < r->pass[best]))
                best = c;
        struct tg_dispatch *w = r->queue[best];
        queue_remove(r, w);
        r->vtime = r->pass[best];
        r->pass[best] += l->stride[best];
        w->has_slot = true;
        r->inflight++;
        wake(w, PH_ADMITTED);
    }
}

static void release_slot(struct tg_dispatch *d)
{
    if (!d->has_slot)
        return;
    struct rung *r = &d->l->rungs[d->rung];
    d->has_slot = false;
    r->inflight--;
    admit_next(r, d->l);
}

/*
 * May d call its rung now?  True with a slot taken (or no limit); false
 * when it was queued (it wakes later) or stepped down (overloaded).  A full
 * queue makes room in the class that holds the most places for its weight
 * (its latest turn is shed), unless that is the newcomer's own: so
 * internal work yields queued places first, and no class's flood takes
 * every place from the others.
 */
static bool admit(struct tg_dispatch *d)
{
    struct rung *r = &d->l->rungs[d->rung];
    const uint64_t *stride = d->l->stride;
    int c = d->priority;
    if (!r->max_inflight || d->has_slot)
        return true;
    if (r->inflight < r->max_inflight && !r->queued) {
        d->has_slot = true;
        r->inflight++;
        r->vtime = r->pass[c] > r->vtime ? r->pass[c] : r->vtime;
        return true;
    }
    if (r->queued >= r->max_queue) {
        /* places per weight: nq × stride; the newcomer counts in its own class */
        int worst = -1;
        uint64_t most = 0;
        for (int k = 0; k < TG_CLASSES; k++) {
            uint64_t load = (uint64_t)(r->nq[k] + (k == c)) * stride[k];
            if (r->nq[k] && (worst < 0 || load > most))
                worst = k, most = load;
        }
        uint64_t own = (uint64_t)(r->nq[c] + 1) * stride[c];
        if (worst < 0 || worst == c || own >= most) {
            step_down(d, "overloaded", 0);
            return false;
        }
        struct tg_dispatch *shed = r->tail[worst]; /* the latest of that class */
        queue_remove(r, shed);
        wake(shed, PH_SHED);
    }
    queue_insert(r, d);
    d->phase = PH_QUEUED;
    int64_t wait = r->queue_timeout_ms;
    if (left_ms(d) < wait)
        wait = left_ms(d);
    arm(d, wait);
    return false;
}

static void attempt(struct tg_dispatch *d)
{
    struct rung *r = &d->l->rungs[d->rung];
    if (!admit(d))
        return;
    struct tg_backend_request rq = d->rq;
    json_t *trimmed = NULL;
    if (r->model)
        rq.model = r->model;
    if (d->prefill_dropped) {
        /* the fallback refused an assistant prefill: restart the answer without it */
        trimmed = json_deep_copy(d->messages);
        json_array_remove(trimmed, json_array_size(trimmed) - 1);
        rq.messages = trimmed;
    }
    d->attempt++;
    d->phase = PH_CALL;
    int64_t limit = left_ms(d);
    d->turn_limited = true;
    if (r->budget_ms > 0 && r->budget_ms < limit) {
        limit = r->budget_ms;
        d->turn_limited = false;
    }
    if (limit != INT64_MAX)
        arm(d, limit);
    breaker_call(d, r, tg_clock_mono_ns());
    int rc = tg_backend_generate(r->backend, &rq, call_done, d, &d->call);
    json_decref(trimmed);
    if (rc) {
        disarm(d);
        d->call = NULL;
        d->phase = PH_IDLE;
        release_slot(d);
        step_down(d, "start_failed", 0);
    }
}

/* May d call its rung again after a retryable failure?  Only within
 * max_attempts, when the rung's model was healthy as the turn came to it,
 * and while its breaker is not open. */
static bool may_retry(struct tg_dispatch *d, struct rung *r, int64_t now)
{
    if (!d->may_retry || d->attempt >= d->l->max_attempts)
        return false;
    const struct breaker *b = breaker_get(d->l, r, d->rq.model, false, now);
    return !b || !b->open_until_ns;
}

static bool has_prefill(const struct tg_dispatch *d)
{
    const json_t *last = json_array_get(d->messages, json_array_size(d->messages) - 1);
    return strcmp(tg_json_str(last, "role", ""), "assistant") == 0;
}

static void call_done(struct tg_backend_result *res, void *arg)
{
    struct tg_dispatch *d = arg;
    struct tg_ladder *l = d->l;
    struct rung *r = &l->rungs[d->rung];
    int64_t now = tg_clock_mono_ns();
    d->call = NULL;
    d->phase = PH_IDLE;
    disarm(d);
    release_slot(d);
    if (l->metrics)
        tg_metrics_attempt(l->metrics, tg_backend_name(r->backend), res->err ? res->kind : "ok");
    if (!res->err) {
        breaker_result(d, r, false, now);
        bool weak =
            l->min_confidence >= 0 && res->confidence >= 0 && res->confidence < l->min_confidence;
        if (weak) {
            /* a weak answer gives way to the next script rung, when there is one */
            for (size_t i = d->rung + 1; i < l->n; i++) {
                if (l->rungs[i].backend &&
                    !strcmp(tg_backend_type(l->rungs[i].backend), "script")) {
                    event_add_json(d, "low_confidence", 200);
                    if (l->metrics)
                        tg_metrics_degradation(l->metrics, r->name, "low_confidence");
                    d->rung = i;
                    d->steps++;
                    d->attempt = 0;
                    d->may_retry = true;
                    attempt(d);
                    return;
                }
            }
        }
        d->res.content = res->content;
        d->res.len = res->len;
        res->content = NULL;
        d->res.tool_calls = res->tool_calls;
        res->tool_calls = NULL;
        d->res.logprobs = res->logprobs;
        res->logprobs = NULL;
        tg_strlcpy(d->res.model, res->model, sizeof(d->res.model));
        tg_strlcpy(d->res.finish_reason, res->finish_reason, sizeof(d->res.finish_reason));
        d->res.prompt_tokens = res->prompt_tokens;
        d->res.completion_tokens = res->completion_tokens;
        d->res.confidence = res->confidence;
        d->res.low_confidence = res->low_confidence;
        d->res.holding =
            res->holding || (d->steps && !strcmp(tg_backend_type(r->backend), "script"));
        d->res.cited = res->cited;
        d->res.rung = r->name;
        d->res.backend = r->backend;
        d->res.degradations = d->steps;
        if (l->metrics)
            tg_metrics_tokens(l->metrics, tg_backend_name(r->backend), res->prompt_tokens,
                              res->completion_tokens);
        finish(d);
        return;
    }
    bool fault;
    enum verdict v = classify(res, has_prefill(d) && !d->prefill_dropped, &fault);
    if (d->rq.committed && *d->rq.committed && v != V_FATAL) {
        /* part of this answer already reached the client: no restart elsewhere */
        breaker_result(d, r, fault, now);
        event_add_json(d, res->kind, res->status);
        fail(d, res->err ? res->err : TG_E_UPSTREAM, 502, "stream_broken",
             "backend '%s' failed after part of the answer was sent: %s",
             tg_backend_name(r->backend), res->message);
        return;
    }
    d->last_err = res->err;
    snprintf(d->last_msg, sizeof(d->last_msg), "backend '%s' failed: %s",
             tg_backend_name(r->backend), res->message);
    breaker_result(d, r, fault, now);
    if (fault)
        mark_failed(d);
    switch (v) {
    case V_FATAL:
        event_add_json(d, res->kind, res->status);
        fail(d, res->err ? res->err : TG_E_UPSTREAM, res->status >= 400 ? res->status : 502,
             res->code[0] ? res->code : "upstream_error", "backend '%s' refused: %s",
             tg_backend_name(r->backend), res->message);
        return;
    case V_PREFILL:
        event_add_json(d, "prefill_rejected", res->status);
        d->prefill_dropped = true;
        d->attempt--; /* a restart, not a retry */
        attempt(d);
        return;
    case V_CONTEXT:
        for (size_t i = d->rung + 1; i < l->n; i++) {
            if (l->rungs[i].large_context) {
                event_add_json(d, "context_length_exceeded", res->status);
                if (l->metrics)
                    tg_metrics_degradation(l->metrics, r->name, "context_length_exceeded");
                probe_release(d);
                d->rung = i;
                d->steps++;
                d->want_large = true;
                try_rung(d); /* through the larger rung's breaker */
                return;
            }
        }
        event_add_json(d, res->kind, res->status);
        fail(d, TG_E_INVAL, 400, "context_length_exceeded",
             "the conversation is too long for backend '%s' and no larger-context rung is "
             "configured: %s",
             tg_backend_name(r->backend), res->message);
        return;
    case V_RETRY:
        if (may_retry(d, r, now)) {
            /* exponential backoff with jitter; a Retry-After is obeyed, never undercut, and
             * one past the turn's budget (or, without one, a ceiling) is not waited for */
            double base = (double)l->backoff_ms * pow(2.0, d->attempt - 1);
            int64_t wait =
                (int64_t)(fmin(base, (double)l->backoff_max_ms) * (0.5 + 0.5 * uniform(l)));
            int64_t room = left_ms(d);
            if (res->retry_after_ms >= 0) {
                wait = res->retry_after_ms;
                if (room == INT64_MAX)
                    room = RETRY_AFTER_CEILING_MS;
            }
            if (wait < room) {
                event_add_json(d, res->kind, res->status);
                d->phase = PH_WAIT;
                arm(d, wait);
                return;
            }
        }
        step_down(d, res->kind, res->status);
        return;
    case V_DOWN:
        step_down(d, res->kind, res->status);
        return;
    }
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_dispatch *d = arg;
    switch (d->phase) {
    case PH_WAIT:     /* the backoff is over */
    case PH_ADMITTED: /* a slot came free */
        attempt(d);
        return;
    case PH_SHED: /* a more important turn took the place in the queue */
        d->phase = PH_IDLE;
        step_down(d, "shed", 0);
        return;
    case PH_QUEUED: /* no slot came free in time */
        queue_remove(&d->l->rungs[d->rung], d);
        d->phase = PH_IDLE;
        step_down(d, "queue_timeout", 0);
        return;
    default:
        break;
    }
    /* the attempt ran out of time: its rung's budget, or the turn's */
    if (d->call)
        tg_backend_cancel(d->call);
    d->call = NULL;
    d->phase = PH_IDLE;
    release_slot(d);
    if (d->rq.committed && *d->rq.committed) {
        fail(d, TG_E_TIMEOUT, 504, "stream_broken",
             "backend '%s' ran out of time after part of the answer was sent",
             tg_backend_name(d->l->rungs[d->rung].backend));
        return;
    }
    struct rung *r = &d->l->rungs[d->rung];
    if (d->l->metrics)
        tg_metrics_attempt(d->l->metrics, tg_backend_name(r->backend), "budget");
    d->last_err = TG_E_TIMEOUT;
    snprintf(d->last_msg, sizeof(d->last_msg), "backend '%s' failed: no answer within the %s",
             tg_backend_name(r->backend), d->turn_limited ? "turn's budget" : "rung's budget");
    if (d->turn_limited) {
        d->budget_gone = true;
        step_down(d, "turn_budget", 0);
    } else {
        breaker_result(d, r, true, tg_clock_mono_ns());
        mark_failed(d);
        step_down(d, "rung_budget", 0);
    }
}

static void try_rung(struct tg_dispatch *d)
{
    struct tg_ladder *l = d->l;
    int64_t now = tg_clock_mono_ns();
    for (; d->rung < l->n; d->rung++) {
        struct rung *r = &l->rungs[d->rung];
        if (r->large_context && !d->want_large)
            continue; /* only for conversations too long for the others */
        if (d->budget_gone && !r->local)
            continue; /* no time left for an upstream */
        if (!r->backend) {
            d->res.human = true;
            d->res.rung = r->name;
            d->res.degradations = d->steps;
            finish(d);
            return;
        }
        if (!r->local && failed_before(d, r)) {
            /* the same upstream model already failed this turn: not asked twice */
            event_add_json(d, "same_model_failed", 0);
            if (l->metrics)
                tg_metrics_degradation(l->metrics, r->name, "same_model_failed");
            d->steps++;
            continue;
        }
        if (!r->local && !breaker_admit(d, r, now)) {
            event_add_json(d, "breaker_open", 0);
            if (l->metrics)
                tg_metrics_degradation(l->metrics, r->name, "breaker_open");
            d->steps++;
            continue;
        }
        if (r->local)
            d->may_retry = true;
        d->attempt = 0;
        attempt(d);
        return;
    }
    /* no rung left: the last failure decides what the client hears */
    bool timeout = d->last_err == TG_E_TIMEOUT;
    fail(d, timeout ? TG_E_TIMEOUT : TG_E_UPSTREAM, timeout ? 504 : 502,
         timeout ? "upstream_timeout" : "upstream_error", "%s",
         d->last_msg[0] ? d->last_msg : "no backend could answer (every rung's breaker is open)");
}

int tg_dispatch_start(struct tg_ladder *l, struct event_base *base,
                      const struct tg_backend_request *rq, const struct tg_dispatch_opts *opts,
                      tg_dispatch_cb cb, void *arg, struct tg_dispatch **out)
{
    struct tg_dispatch *d = tg_calloc(1, sizeof(*d));
    if (!d)
        return TG_E_NOMEM;
    d->l = l;
    d->base = base;
    d->rq = *rq;
    d->messages = json_incref((json_t *)rq->messages);
    d->params = json_incref((json_t *)rq->params);
    d->cb = cb;
    d->arg = arg;
    d->res.confidence = -1;
    d->res.cited = -1;
    d->started_ns = tg_clock_mono_ns();
    if (l->budget_ms > 0)
        d->deadline_ns = d->started_ns + l->budget_ms * 1000000;
    *out = d;
    d->in_start = true;
    d->priority = opts ? opts->priority : TG_PRIORITY_CUSTOMER;
    if (opts && opts->to_human) {
        d->res.human = true;
        d->res.rung = "human";
        d->finished = true;
    } else {
        try_rung(d);
    }
    d->in_start = false;
    if (d->finished) {
        *out = NULL;
        cb(&d->res, arg);
        tg_dispatch_cancel(d);
    }
    return TG_OK;
}

void tg_dispatch_cancel(struct tg_dispatch *d)
{
    if (!d)
        return;
    if (d->call)
        tg_backend_cancel(d->call);
    if (d->phase == PH_QUEUED)
        queue_remove(&d->l->rungs[d->rung], d);
    probe_release(d);
    release_slot(d);
    if (d->timer)
        event_free(d->timer);
    json_decref(d->messages);
    json_decref(d->params);
    json_decref(d->res.events);
    tg_free(d->res.content);
    json_decref(d->res.tool_calls);
    json_decref(d->res.logprobs);
    tg_free(d);
}
