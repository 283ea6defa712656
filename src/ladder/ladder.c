/*
 * ladder.c - the degradation ladder (its breakers: breaker.c).  See ladder.h.
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
#include "ladder/ladder_int.h"

#include "metrics/metrics.h"

#include <event2/event.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ ladder */

double tg_ladder_uniform(struct tg_ladder *l)
{
    /* xorshift64*: jitter and probe choices need no cryptographic quality */
    l->rng ^= l->rng >> 12;
    l->rng ^= l->rng << 25;
    l->rng ^= l->rng >> 27;
    return (double)((l->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
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
    const struct tg_ladder_conf *lc = &cfg->ladder;
    struct tg_ladder *l = tg_calloc(1, sizeof(*l));
    size_t nr = lc->n_rungs;
    if (!l)
        return TG_E_NOMEM;
    l->metrics = metrics;
    l->rungs = tg_calloc(nr ? nr : 1, sizeof(*l->rungs));
    if (!l->rungs || tg_random_bytes(&l->rng, sizeof(l->rng))) {
        tg_ladder_free(l);
        return TG_E_NOMEM;
    }
    l->rng |= 1;
    l->max_attempts = (int)lc->max_attempts;
    l->budget_ms = lc->budget_ms;
    l->backoff_ms = lc->backoff_ms;
    l->backoff_max_ms = lc->backoff_max_ms;
    l->max_streak = (int)lc->degraded_to_human;
    for (int c = 0; c < TG_CLASSES; c++) {
        int64_t w = lc->class_weight[c];
        l->stride[c] = STRIDE_ONE / (uint64_t)(w > 0 ? w : 1);
    }
    l->min_confidence = lc->min_confidence;
    l->breaker_failures = (int)lc->breaker_failures;
    l->breaker_open_ms = lc->breaker_open_ms;
    l->probe_share = lc->breaker_probe;
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
        const struct tg_rung_conf *r = &lc->rungs[i];
        struct tg_backend *b = find_backend(backends, n, r->backend);
        if (r->backend && !b) {
            snprintf(err, errlen, "ladder.rungs[%zu]: no backend named '%s'", i, r->backend);
            tg_ladder_free(l);
            return TG_E_CONFIG;
        }
        struct rung *rg = &l->rungs[l->n++];
        set_rung(cfg, rg, r->name, b, r->model);
        rg->budget_ms = r->budget_ms;
        rg->large_context = r->large_context;
        rg->max_inflight = (int)r->max_inflight;
        rg->max_queue = (int)r->queue;
        rg->queue_timeout_ms = r->queue_timeout_ms;
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

/* Keep a degradation event; one that cannot be kept is said in res.events_err
 * (the dispatch goes on: what to do about it is the caller's). */
static void event_add_json(struct tg_dispatch *d, const char *cause, int status)
{
    struct rung *r = &d->l->rungs[d->rung];
    if (!d->res.events)
        d->res.events = json_array();
    int rc = tg_json_push(d->res.events,
                          json_pack("{s:s, s:s, s:i, s:s, s:i, s:I}", "rung", r->name, "backend",
                                    r->backend ? tg_backend_name(r->backend) : "human", "attempt",
                                    d->attempt, "cause", cause, "status", status, "ms",
                                    (json_int_t)((tg_clock_mono_ns() - d->started_ns) / 1000000)));
    if (rc)
        d->res.events_err = rc;
}

static void finish(struct tg_dispatch *d)
{
    tg_ladder_probe_release(d);
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
    tg_ladder_probe_release(d);
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
    tg_ladder_breaker_call(d, r, tg_clock_mono_ns());
    /* never the prefill the fallback refused, for want of memory to drop it */
    int rc = d->prefill_dropped && !trimmed
                 ? TG_E_NOMEM
                 : tg_backend_generate(r->backend, &rq, call_done, d, &d->call);
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
    const struct breaker *b = tg_ladder_breaker_get(d->l, r, d->rq.model, false, now);
    return !b || !b->open_until_ns;
}

static bool has_prefill(const struct tg_dispatch *d)
{
    const json_t *last = json_array_get(d->messages, json_array_size(d->messages) - 1);
    return strcmp(tg_json_str(last, "role", ""), "assistant") == 0;
}

/* A weak answer (below min_confidence) gives way to the next script rung,
 * when there is one: true when d went on to it. */
static bool weak_gives_way(struct tg_dispatch *d, struct rung *r,
                           const struct tg_backend_result *res)
{
    struct tg_ladder *l = d->l;
    bool weak =
        l->min_confidence >= 0 && res->confidence >= 0 && res->confidence < l->min_confidence;
    if (!weak)
        return false;
    for (size_t i = d->rung + 1; i < l->n; i++) {
        if (l->rungs[i].backend && !strcmp(tg_backend_type(l->rungs[i].backend), "script")) {
            event_add_json(d, "low_confidence", 200);
            if (l->metrics)
                tg_metrics_degradation(l->metrics, r->name, "low_confidence");
            d->rung = i;
            d->steps++;
            d->attempt = 0;
            d->may_retry = true;
            attempt(d);
            return true;
        }
    }
    return false;
}

/* Rung r answered: the answer (taken from res) ends the turn. */
static void take_answer(struct tg_dispatch *d, struct rung *r, struct tg_backend_result *res)
{
    struct tg_ladder *l = d->l;
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
    d->res.holding = res->holding || (d->steps && !strcmp(tg_backend_type(r->backend), "script"));
    d->res.cited = res->cited;
    d->res.rung = r->name;
    d->res.backend = r->backend;
    d->res.degradations = d->steps;
    if (l->metrics)
        tg_metrics_tokens(l->metrics, tg_backend_name(r->backend), res->prompt_tokens,
                          res->completion_tokens);
    finish(d);
}

/* The conversation is too long for rung r: on to the next large-context
 * rung (through its breaker), else the turn fails with 400. */
static void to_large_rung(struct tg_dispatch *d, struct rung *r,
                          const struct tg_backend_result *res)
{
    struct tg_ladder *l = d->l;
    for (size_t i = d->rung + 1; i < l->n; i++) {
        if (l->rungs[i].large_context) {
            event_add_json(d, "context_length_exceeded", res->status);
            if (l->metrics)
                tg_metrics_degradation(l->metrics, r->name, "context_length_exceeded");
            tg_ladder_probe_release(d);
            d->rung = i;
            d->steps++;
            d->want_large = true;
            try_rung(d);
            return;
        }
    }
    event_add_json(d, res->kind, res->status);
    fail(d, TG_E_INVAL, 400, "context_length_exceeded",
         "the conversation is too long for backend '%s' and no larger-context rung is "
         "configured: %s",
         tg_backend_name(r->backend), res->message);
}

/* A retryable failure: wait and call rung r again when allowed and in
 * time, else step down. */
static void retry_or_step_down(struct tg_dispatch *d, struct rung *r,
                               const struct tg_backend_result *res, int64_t now)
{
    struct tg_ladder *l = d->l;
    if (may_retry(d, r, now)) {
        /* exponential backoff with jitter; a Retry-After is obeyed, never undercut, and
         * one past the turn's budget (or, without one, a ceiling) is not waited for */
        double base = (double)l->backoff_ms * pow(2.0, d->attempt - 1);
        int64_t wait =
            (int64_t)(fmin(base, (double)l->backoff_max_ms) * (0.5 + 0.5 * tg_ladder_uniform(l)));
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
}

/* Rung r's call failed: classify once, then end, restart, step aside or retry. */
static void call_failed(struct tg_dispatch *d, struct rung *r, const struct tg_backend_result *res,
                        int64_t now)
{
    bool fault;
    enum verdict v = classify(res, has_prefill(d) && !d->prefill_dropped, &fault);
    if (d->rq.committed && *d->rq.committed && v != V_FATAL) {
        /* part of this answer already reached the client: no restart elsewhere */
        tg_ladder_breaker_result(d, r, fault, now);
        event_add_json(d, res->kind, res->status);
        fail(d, res->err ? res->err : TG_E_UPSTREAM, 502, "stream_broken",
             "backend '%s' failed after part of the answer was sent: %s",
             tg_backend_name(r->backend), res->message);
        return;
    }
    d->last_err = res->err;
    snprintf(d->last_msg, sizeof(d->last_msg), "backend '%s' failed: %s",
             tg_backend_name(r->backend), res->message);
    tg_ladder_breaker_result(d, r, fault, now);
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
        to_large_rung(d, r, res);
        return;
    case V_RETRY:
        retry_or_step_down(d, r, res, now);
        return;
    case V_DOWN:
        step_down(d, res->kind, res->status);
        return;
    }
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
    if (res->err) {
        call_failed(d, r, res, now);
        return;
    }
    tg_ladder_breaker_result(d, r, false, now);
    if (!weak_gives_way(d, r, res))
        take_answer(d, r, res);
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
        tg_ladder_breaker_result(d, r, true, tg_clock_mono_ns());
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
        if (!r->local && !tg_ladder_breaker_admit(d, r, now)) {
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
    tg_ladder_probe_release(d);
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
