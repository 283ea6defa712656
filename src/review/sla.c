/*
 * sla.c - review deadlines on the event loop.  Each pending task has a
 * timer at its deadline; when it fires and the task is still undecided,
 * the task is handed off to the human agent queue with the risk tag
 * review_sla_breached (tg_review_handoff).  At start-up every pending task
 * is re-armed and every overdue one handed off at once, so deadlines
 * survive a restart; only ids and deadlines are read for that.
 *
 * On a store several nodes share, every node arms the timers of every
 * task (the ones others create it learns of through tg_review_sla_remote),
 * and the hand-off, an act under the task's lock, happens once: whichever
 * node comes first, the others find the task no longer pending.  A node
 * that dies takes nothing with it.
 */
#include "review/review.h"

#include "store/store.h"

#include <event2/event.h>
#include <string.h>

struct timer {
    struct tg_review_sla *sla;
    struct event *ev;
    char id[TG_ID_MAX];
    bool warning;  /* the early warning, not the deadline */
    int64_t at_ms; /* when it is due (wall clock) */
    struct timer *prev, *next;
};

struct tg_review_sla {
    struct event_base *base;
    struct event *batch; /* runs the timers that fired in one loop iteration */
    struct timer *due;   /* fired, waiting for the batch (singly linked by next) */
    struct tg_store *st;
    struct tg_audit *audit;
    struct timer *timers;
    uint64_t handoffs;
    int64_t warn_before_ms; /* a warning event this long before the deadline; 0: none */
    void (*on_settle)(void *arg, const json_t *task);
    void *settle_arg;
    void (*on_event)(void *arg, const char *id, const char *event, const json_t *task);
    void *event_arg;
    void (*on_remote)(void *arg, const json_t *task);
    void *remote_arg;
};

static void expire(struct tg_review_sla *s, const char *id)
{
    json_t *task = NULL;
    int rc = tg_review_handoff(s->st, s->audit, id, "review SLA deadline passed", &task);
    if (rc == TG_OK) {
        s->handoffs++;
        tg_warn("review %s: SLA breached, handed off to a human agent", id);
        if (s->on_settle)
            s->on_settle(s->settle_arg, task);
        if (s->on_event)
            s->on_event(s->event_arg, id, "handed_off", task);
        json_decref(task);
    } else if (rc != TG_E_CONFLICT) {
        tg_error("review %s: hand-off failed: %s", id, tg_err_str(rc));
    }
}

/* Mark a still-undecided task as close to its deadline (the console
 * shows it): once, under the task's lock, whichever node comes first. */
static void warn(struct tg_review_sla *s, const char *id)
{
    json_t *task = NULL;
    struct tg_review_row row;
    if (tg_store_lock(s->st, id) != TG_OK)
        return;
    if (tg_store_review_get_bare(s->st, id, &row, &task) != TG_OK) {
        tg_store_unlock(s->st, id);
        return;
    }
    const char *state = tg_json_str(task, "state", "");
    if ((!strcmp(state, "pending") || !strcmp(state, "claimed")) &&
        !json_is_true(json_object_get(task, "sla_warning"))) {
        json_t *events = json_object_get(task, "events");
        int rc = tg_json_set(task, "sla_warning", json_true());
        if (!rc && json_is_array(events))
            rc = tg_json_push(events,
                              json_pack("{s:I, s:s, s:s}", "at", (json_int_t)tg_clock_wall_ms(),
                                        "actor", "trustgate", "event", "sla_warning"));
        row.updated_ms = tg_clock_wall_ms();
        /* a warning without its event is not stored: the task stays as it was */
        if (rc)
            tg_error("review %s: SLA warning not stored: %s", id, tg_err_str(rc));
        else if (tg_store_review_put(s->st, &row, task) == TG_OK && s->on_event)
            s->on_event(s->event_arg, id, "sla_warning", task);
        if (tg_store_shared(s->st))
            tg_store_flush(s->st); /* committed before another node may look */
    }
    tg_store_unlock(s->st, id);
    json_decref(task);
}

/* Unlink a timer from the armed list (it stays allocated). */
static void unlink_timer(struct timer *t)
{
    struct tg_review_sla *s = t->sla;
    if (t->prev)
        t->prev->next = t->next;
    else
        s->timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

/*
 * Timers that fire together are handled together: one flush of the store
 * (anything still queued for the writer becomes readable), then each task
 * in deadline order.  A flush per timer would wait for one commit per
 * task, and a burst of deadlines would fall behind.
 */
static int arm(struct tg_review_sla *s, const char *id, int64_t at_ms, bool warning);

static void batch_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_review_sla *s = arg;
    struct timer *list = s->due;
    s->due = NULL;
    tg_store_flush(s->st);
    /* due was built newest first: reverse it */
    struct timer *rev = NULL;
    while (list) {
        struct timer *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    while (rev) {
        struct timer *t = rev;
        rev = t->next;
        if (tg_clock_wall_ms() < t->at_ms) {
            /* the loop's cached time ran behind: not due yet, never early */
            if (arm(s, t->id, t->at_ms, t->warning))
                tg_error("review %s: cannot re-arm its timer", t->id);
            event_free(t->ev);
            tg_free(t);
            continue;
        }
        if (t->warning)
            warn(s, t->id);
        else
            expire(s, t->id);
        event_free(t->ev);
        tg_free(t);
    }
}

static void fire_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct timer *t = arg;
    struct tg_review_sla *s = t->sla;
    unlink_timer(t);
    t->next = s->due;
    s->due = t;
    /* runs after the timers of this loop iteration (activating twice is once) */
    event_active(s->batch, EV_TIMEOUT, 0);
}

static int arm(struct tg_review_sla *s, const char *id, int64_t at_ms, bool warning)
{
    struct timer *t = tg_calloc(1, sizeof(*t));
    if (!t)
        return TG_E_NOMEM;
    t->sla = s;
    t->warning = warning;
    t->at_ms = at_ms;
    tg_strlcpy(t->id, id, sizeof(t->id));
    t->ev = evtimer_new(s->base, fire_cb, t);
    if (!t->ev) {
        tg_free(t);
        return TG_E_NOMEM;
    }
    /* +1: the loop rounds timeouts to the millisecond; never fire before at_ms */
    int64_t left = at_ms - tg_clock_wall_ms() + 1;
    if (left < 0)
        left = 0;
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    evtimer_add(t->ev, &tv);
    t->next = s->timers;
    if (s->timers)
        s->timers->prev = t;
    s->timers = t;
    return TG_OK;
}

int tg_review_sla_track(struct tg_review_sla *s, const char *id, int64_t deadline_ms)
{
    int rc = arm(s, id, deadline_ms, false);
    if (!rc && s->warn_before_ms > 0 && deadline_ms - s->warn_before_ms > tg_clock_wall_ms())
        rc = arm(s, id, deadline_ms - s->warn_before_ms, true);
    if (!rc && s->on_event)
        s->on_event(s->event_arg, id, "created", NULL);
    return rc;
}

void tg_review_sla_warn_before(struct tg_review_sla *s, int64_t ms)
{
    s->warn_before_ms = ms;
}

/* One open task at start-up: armed for its deadline, or handed off when it passed. */
static int start_cb(void *ctx, const struct tg_review_row *row)
{
    struct tg_review_sla *s = ctx;
    if (row->deadline_ms <= tg_clock_wall_ms()) {
        expire(s, row->id);
        return TG_OK;
    }
    return tg_review_sla_track(s, row->id, row->deadline_ms);
}

int tg_review_sla_start(struct event_base *base, struct tg_store *st, struct tg_audit *audit,
                        struct tg_review_sla **out)
{
    struct tg_review_sla *s = tg_calloc(1, sizeof(*s));
    const char *states[2] = {"pending", "claimed"};
    int rc = TG_OK;
    if (!s)
        return TG_E_NOMEM;
    s->base = base;
    s->st = st;
    s->audit = audit;
    s->batch = event_new(base, -1, 0, batch_cb, s);
    if (!s->batch) {
        tg_free(s);
        return TG_E_NOMEM;
    }
    for (int k = 0; k < 2 && !rc; k++)
        rc = tg_store_review_scan(st, states[k], start_cb, s);
    if (rc) {
        tg_review_sla_free(s);
        return rc;
    }
    *out = s;
    return TG_OK;
}

void tg_review_sla_on_settle(struct tg_review_sla *s, void (*cb)(void *arg, const json_t *task),
                             void *arg)
{
    s->on_settle = cb;
    s->settle_arg = arg;
}

void tg_review_sla_on_event(struct tg_review_sla *s,
                            void (*cb)(void *arg, const char *id, const char *event,
                                       const json_t *task),
                            void *arg)
{
    s->on_event = cb;
    s->event_arg = arg;
}

void tg_review_sla_notify(struct tg_review_sla *s, const char *id, const char *event,
                          const json_t *task)
{
    if (s && s->on_event)
        s->on_event(s->event_arg, id, event, task);
}

void tg_review_sla_on_remote(struct tg_review_sla *s, void (*cb)(void *arg, const json_t *task),
                             void *arg)
{
    s->on_remote = cb;
    s->remote_arg = arg;
}

static bool tracking(const struct tg_review_sla *s, const char *id)
{
    for (const struct timer *t = s->timers; t; t = t->next)
        if (!t->warning && !strcmp(t->id, id))
            return true;
    return false;
}

void tg_review_sla_remote(struct tg_review_sla *s, const char *id, const char *state)
{
    struct tg_review_row row;
    json_t *task = NULL;
    if (tg_store_review_get_bare(s->st, id, &row, &task) != TG_OK)
        return;
    if (!strcmp(row.state, "pending") || !strcmp(row.state, "claimed")) {
        if (!tracking(s, id) && tg_review_sla_track(s, id, row.deadline_ms) != TG_OK)
            tg_error("review %s: cannot arm its deadline", id);
    }
    char *told = NULL;
    if (strcmp(state, "pending") != 0 && tg_store_told(s->st, id, &told) == TG_OK &&
        tg_json_set(task, "answer", json_string(told)) != TG_OK)
        tg_error("review %s: out of memory: the answer goes as stored", id);
    tg_free(told);
    if (strcmp(state, "pending") != 0 && s->on_remote)
        s->on_remote(s->remote_arg, task);
    json_decref(task);
}

uint64_t tg_review_sla_handoffs(const struct tg_review_sla *s)
{
    return s->handoffs;
}

void tg_review_sla_free(struct tg_review_sla *s)
{
    if (!s)
        return;
    struct timer *lists[2] = {s->timers, s->due};
    for (int k = 0; k < 2; k++) {
        while (lists[k]) {
            struct timer *t = lists[k];
            lists[k] = t->next;
            event_free(t->ev);
            tg_free(t);
        }
    }
    if (s->batch)
        event_free(s->batch);
    tg_free(s);
}
