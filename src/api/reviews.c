/*
 * reviews.c - the review queue over HTTP, for reviewers and the channels
 * that wait for held answers:
 *
 *   GET  /v1/reviews?state=S&limit=N the queue, most urgent first (reviewer token)
 *   GET  /v1/reviews/{id}            one task with its whole context
 *   POST /v1/reviews/{id}/claim      one reviewer at a time; the claim lapses
 *   POST /v1/reviews/{id}/decision   {action, text?, reason?, attestations: [...]}
 *   GET  /v1/reviews/events          live events (Server-Sent Events)
 *   GET  /v1/reviews/stats           the last 24 hours, for supervisors
 *   GET  /v1/handoffs?limit=N        tasks handed to human agents (SLA breached)
 *   POST /v1/handoffs/{id}/reply     an agent answers the customer {text, close?}
 *   GET  /v1/turns/{id}              a turn's record and, when it was held, its
 *                                    task's state and final answer (API key)
 *   GET  /console/api/source?source=S  a cited document's text, for reviewers
 *
 * People authenticate with a bearer token from the config's `users:` list
 * or a console session (console.c).  Anyone listed may read; reviewers and
 * supervisors claim and decide; agents and supervisors answer hand-offs.  Decisions go through
 * tg_review_decide, so a decision without every required attestation is refused here whatever the
 * client sends, and every decision is an audit leaf written by this process, the data directory's
 * one writer.
 *
 * Reads whose cost grows with the data (the lists, the statistics) run on
 * the background worker (background.c), never on the event loop: a list
 * holds at most LIST_MAX tasks (read in the worker's lane for bounded
 * reads), and the statistics are summed as the tasks are read, one state at
 * a time, in the lane for scans.  Reads of one task wait for the commit of what the
 * loop queued before them without blocking it.
 */
#include "api/api_int.h"
#include "api/console.h"

#include "audit/audit.h"
#include "kb/kb.h"
#include "metrics/metrics.h"
#include "pipeline/pipeline.h"
#include "review/review.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool four_eyes(const struct tg_api *api);
static const char *const *customer_ids_of(const struct tg_api *api, const char *name, size_t *n);

static void send(struct tg_api *api, struct tg_http_req *req, const char *route, int status,
                 json_t *body)
{
    tg_api_send_json(api, req, route, status, body);
}

static void fail(struct tg_api *api, struct tg_http_req *req, const char *route, int status,
                 const char *code, const char *msg)
{
    tg_api_send_error(api, req, route, status,
                      status == 401 ? "authentication_error" : "invalid_request_error", code, msg);
}

const char *tg_api_person(struct tg_api *api, struct tg_http_req *req, const char *route,
                          const char *roles)
{
    struct tg_who who;
    const char *code, *msg;
    int st = tg_api_who(api, req, &who, &code, &msg);
    if (st) {
        fail(api, req, route, st, code, msg);
        return NULL;
    }
    char want[64];
    snprintf(want, sizeof(want), "|%s|", roles);
    char mine[40];
    snprintf(mine, sizeof(mine), "|%s|", who.role);
    if (!strstr(want, mine)) {
        char m[160];
        snprintf(m, sizeof(m), "this needs the role %s; %s is %s", roles, who.name, who.role);
        fail(api, req, route, 403, "forbidden_role", m);
        return NULL;
    }
    return who.name;
}

#define DECIDERS "reviewer|supervisor"
#define AGENTS "agent|supervisor"

/* Customers' tasks before internal ones, then by priority, then the nearest deadline. */
static int task_order(const void *pa, const void *pb)
{
    const json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
    int ia = tg_json_bool(a, "internal", false), ib = tg_json_bool(b, "internal", false);
    if (ia != ib)
        return ia - ib;
    int64_t pa_ = tg_json_int(a, "priority", 0), pb_ = tg_json_int(b, "priority", 0);
    if (pa_ != pb_)
        return pa_ > pb_ ? -1 : 1;
    int64_t da = tg_json_int(a, "deadline_ms", 0), db = tg_json_int(b, "deadline_ms", 0);
    if (da != db)
        return da < db ? -1 : 1;
    return strcmp(tg_json_str(a, "id", ""), tg_json_str(b, "id", ""));
}

#define LIST_DEFAULT 100 /* tasks in a list when the request names no limit */
#define LIST_MAX 500     /* the most a list holds */

/* Every state a task can be in: a list of them all reads each (indexed) in turn. */
#define ALL_STATES "pending|claimed|decided|handed_off|closed|expired"

struct list_job {
    char states[64]; /* "a|b" */
    size_t limit;    /* 1..LIST_MAX */
};

/* Whether states is one state of finished work (not open, not a list). */
static bool done_state(const char *states)
{
    return !strchr(states, '|') && strcmp(states, "pending") != 0 && strcmp(states, "claimed") != 0;
}

/*
 * On the worker: the first job->limit tasks in any of job->states in
 * task_order (one state of finished work: the latest updated first), as {"object": "list", "now_ms", "data", "has_more"}; NULL
 * with err set on a store error.  The store gives each state's tasks by
 * priority and deadline from its index, so limit + 1 of each state are
 * enough to know the first limit of them all and whether more remain: the
 * cost is bounded by the limit, not by the tasks stored.
 */
static json_t *list_work(struct tg_store *st, void *arg, char *err, size_t errlen)
{
    const struct list_job *job = arg;
    json_t *all = json_array(), *out = NULL;
    json_t **v = NULL;
    char buf[sizeof(job->states)];
    tg_strlcpy(buf, job->states, sizeof(buf));
    char *save = NULL, *state = strtok_r(buf, "|", &save);
    int rc = all ? TG_OK : TG_E_NOMEM;
    do {
        json_t *part = NULL;
        if (!rc)
            rc = tg_store_review_list(st, state, job->limit + 1, &part);
        if (!rc && json_array_extend(all, part))
            rc = TG_E_NOMEM;
        json_decref(part);
    } while (!rc && (state = strtok_r(NULL, "|", &save)));
    size_t n = json_array_size(all);
    if (!rc && !(v = tg_malloc((n ? n : 1) * sizeof(*v))))
        rc = TG_E_NOMEM;
    if (rc)
        goto out;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(all, i));
    if (!done_state(job->states)) /* finished work keeps the store's order: latest first */
        qsort(v, n, sizeof(*v), task_order);
    json_array_clear(all);
    for (size_t i = 0; i < n; i++) {
        if (!rc && i < job->limit)
            rc = tg_json_push(all, json_incref(v[i]));
        json_decref(v[i]);
    }
    if (rc)
        goto out;
    out = json_pack("{s:s, s:I, s:O, s:b}", "object", "list", "now_ms",
                    (json_int_t)tg_clock_wall_ms(), "data", all, "has_more", n > job->limit);
out:
    if (!out)
        snprintf(err, errlen, "cannot read the queue");
    tg_free(v);
    json_decref(all);
    return out;
}

/* Answer req with the tasks in states on the worker; limit from the query. */
static void send_list(struct tg_api *api, struct tg_http_req *req, const char *route,
                      const char *states)
{
    char lim[24];
    int64_t limit = LIST_DEFAULT;
    if (tg_api_query(tg_http_query(req), "limit", lim, sizeof(lim)) &&
        (tg_parse_i64(lim, &limit) || limit < 1 || limit > LIST_MAX)) {
        char m[80];
        snprintf(m, sizeof(m), "limit must be a number from 1 to %d", LIST_MAX);
        fail(api, req, route, 400, "invalid_limit", m);
        return;
    }
    struct list_job *job = tg_calloc(1, sizeof(*job));
    if (!job) {
        fail(api, req, route, 503, "out_of_memory", "out of memory");
        return;
    }
    tg_strlcpy(job->states, states, sizeof(job->states));
    job->limit = (size_t)limit;
    tg_api_background_bounded(api, req, route, list_work, NULL, job, tg_free);
}

static void list(struct tg_api *api, struct tg_http_req *req)
{
    static const char *const states[] = {"pending", "claimed", "decided", "handed_off", "closed"};
    char state[32];
    if (!tg_api_person(api, req, "/v1/reviews", TG_ANYONE))
        return;
    bool has_state = tg_api_query(tg_http_query(req), "state", state, sizeof(state));
    bool known = !has_state || !strcmp(state, "open");
    for (size_t i = 0; i < TG_ARRAY_LEN(states) && !known; i++)
        known = !strcmp(state, states[i]);
    if (!known) {
        fail(api, req, "/v1/reviews", 400, "invalid_state",
             "state must be open, pending, claimed, decided, handed_off or closed");
        return;
    }
    send_list(api, req, "/v1/reviews",
              !has_state               ? ALL_STATES
              : !strcmp(state, "open") ? "pending|claimed"
                                       : state);
}

/*
 * A read of one task or turn, made once every write the loop queued before
 * it is committed (a task a console just heard of may still be queued), so
 * the loop never blocks on a flush.
 */
struct one_read {
    struct tg_commit_wait wait; /* first: the callback finds the read */
    struct tg_api *api;
    struct tg_http_req *req;
    void (*fn)(struct tg_api *api, struct tg_http_req *req, const char *id);
    char id[TG_ID_MAX];
};

static void one_read_cb(struct tg_commit_wait *w, int err)
{
    struct one_read *r = (struct one_read *)w;
    (void)err; /* what was committed before can still be read */
    r->fn(r->api, r->req, r->id);
    tg_free(r);
}

static void after_commit(struct tg_api *api, struct tg_http_req *req, const char *route,
                         void (*fn)(struct tg_api *, struct tg_http_req *, const char *),
                         const char *id)
{
    struct one_read *r = tg_calloc(1, sizeof(*r));
    if (!r) {
        fail(api, req, route, 503, "out_of_memory", "out of memory");
        return;
    }
    r->api = api;
    r->req = req;
    r->fn = fn;
    tg_strlcpy(r->id, id, sizeof(r->id));
    r->wait.cb = one_read_cb;
    tg_pipeline_after_commit(api->p, &r->wait);
}

static void read_task(struct tg_api *api, struct tg_http_req *req, const char *id)
{
    json_t *task = NULL;
    if (tg_store_review_get(api->p->store, id, NULL, &task)) {
        fail(api, req, "/v1/reviews/{id}", 404, "unknown_review", "no such review task");
        return;
    }
    send(api, req, "/v1/reviews/{id}", 200, task);
}

static void get_task(struct tg_api *api, struct tg_http_req *req, const char *id)
{
    if (tg_api_person(api, req, "/v1/reviews/{id}", TG_ANYONE))
        after_commit(api, req, "/v1/reviews/{id}", read_task, id);
}

static void decide(struct tg_api *api, struct tg_http_req *req, const char *id)
{
    const char *route = "/v1/reviews/{id}/decision";
    const char *who = tg_api_person(api, req, route, DECIDERS);
    char err[256] = "";
    size_t len;
    json_error_t jerr;
    json_t *j = NULL;
    enum tg_review_action action;
    if (!who)
        return; /* answered: req is gone */
    const char *body = tg_http_body(req, &len);
    j = json_loadb(body, len, 0, &jerr);
    if (!json_is_object(j) || tg_review_action_parse(tg_json_str(j, "action", NULL), &action)) {
        fail(api, req, route, 400, "invalid_decision",
             "the body must be {\"action\": \"approve\"|\"edit\"|\"reject\", \"text\"?, "
             "\"reason\"?, \"attestations\": [...]}");
        json_decref(j);
        return;
    }
    json_t *att = json_object_get(j, "attestations");
    size_t n_ids = 0;
    const char *const *ids = customer_ids_of(api, who, &n_ids);
    struct tg_review_decision d = {
        .action = action,
        .text = tg_json_str(j, "text", NULL),
        .reason = tg_json_str(j, "reason", NULL),
        .attestations = json_is_array(att) ? att : NULL,
        .actor = who,
        .key = api->p->pseudonym_key,
        .keylen = sizeof(api->p->pseudonym_key),
        .four_eyes = four_eyes(api),
        .actor_ids = ids,
        .n_actor_ids = n_ids,
    };
    json_t *task = NULL;
    int rc = tg_review_decide(api->p->store, api->p->audit, id, &d, &task, err, sizeof(err));
    json_decref(j);
    if (rc) {
        int status = rc == TG_E_NOTFOUND    ? 404
                     : rc == TG_E_CONFLICT  ? 409
                     : rc == TG_E_FORBIDDEN ? 403
                     : rc == TG_E_INVAL     ? 422
                                            : 503;
        fail(api, req, route, status, rc == TG_E_INVAL ? "decision_refused" : "review_error", err);
        return;
    }
    /* the customer, the consoles and the reviewer hear of it once it is on the record */
    const struct tg_api_notice notice = {.settled = true, .events = {"decided", NULL}};
    tg_api_send_committed(api, req, route, 200, task, &notice);
}

/* review.claim_lapse (default 5 min) and review.four_eyes (default true) from the config. */
static int64_t claim_lapse_ms(const struct tg_api *api)
{
    return api->p->cfg->review.claim_lapse_ms;
}

static bool four_eyes(const struct tg_api *api)
{
    return api->p->cfg->review.four_eyes;
}

/* users[].customer_ids of the user named name (*n of them): the ids they
 * chat as on a channel, which the four-eyes rule counts as them.  Borrowed
 * from the config; NULL when none. */
static const char *const *customer_ids_of(const struct tg_api *api, const char *name, size_t *n)
{
    const struct tg_config *cfg = api->p->cfg;
    *n = 0;
    for (size_t i = 0; i < cfg->n_users; i++)
        if (!strcmp(cfg->users[i].name, name)) {
            *n = cfg->users[i].n_customer_ids;
            return cfg->users[i].customer_ids;
        }
    return NULL;
}

static void claim(struct tg_api *api, struct tg_http_req *req, const char *id)
{
    const char *route = "/v1/reviews/{id}/claim";
    const char *who = tg_api_person(api, req, route, DECIDERS);
    char err[256] = "";
    json_t *task = NULL;
    if (!who)
        return;
    int rc = tg_review_claim(api->p->store, api->p->audit, id, who, claim_lapse_ms(api), &task, err,
                             sizeof(err));
    if (rc) {
        fail(api, req, route,
             rc == TG_E_NOTFOUND   ? 404
             : rc == TG_E_CONFLICT ? 409
                                   : 503,
             "claim_refused", err);
        return;
    }
    const struct tg_api_notice notice = {.events = {"claimed", NULL}};
    tg_api_send_committed(api, req, route, 200, task, &notice);
}

static void read_turn(struct tg_api *api, struct tg_http_req *req, const char *id)
{
    const char *route = "/v1/turns/{id}";
    json_t *rec = NULL;
    if (tg_store_turn_get(api->p->store, id, &rec)) {
        fail(api, req, route, 404, "unknown_turn", "no such turn");
        return;
    }
    json_t *out = json_pack("{s:s, s:o}", "object", "turn", "record", rec);
    const char *rid = tg_json_str(rec, "review_id", NULL);
    json_t *task = NULL;
    if (out && rid && tg_store_review_get(api->p->store, rid, NULL, &task) == TG_OK) {
        if (tg_json_set(out, "review",
                        json_pack("{s:s, s:O, s:O}", "id", rid, "state",
                                  json_object_get(task, "state"), "answer",
                                  json_object_get(task, "answer") ? json_object_get(task, "answer")
                                                                  : json_null()))) {
            json_decref(out);
            out = NULL; /* 500 out of memory */
        }
        json_decref(task);
    }
    send(api, req, route, 200, out);
}

static void get_turn(struct tg_api *api, struct tg_http_req *req, const char *id)
{
    if (tg_api_key_ok(api, req))
        after_commit(api, req, "/v1/turns/{id}", read_turn, id);
    else
        fail(api, req, "/v1/turns/{id}", 401, "invalid_api_key", "Incorrect or missing API key.");
}

static void handoffs(struct tg_api *api, struct tg_http_req *req)
{
    if (!tg_api_person(api, req, "/v1/handoffs", TG_ANYONE))
        return;
    send_list(api, req, "/v1/handoffs", "handed_off");
}

static void reply(struct tg_api *api, struct tg_http_req *req, const char *id)
{
    const char *route = "/v1/handoffs/{id}/reply";
    const char *who = tg_api_person(api, req, route, AGENTS);
    size_t len;
    char err[256] = "";
    json_t *task = NULL;
    if (!who)
        return; /* answered: req is gone */
    const char *body = tg_http_body(req, &len);
    json_t *j = json_loadb(body, len, 0, NULL);
    const json_t *close = json_object_get(j, "close");
    if (!json_is_object(j) || (json_object_get(j, "text") && !tg_json_str(j, "text", NULL)) ||
        (close && !json_is_boolean(close))) {
        json_decref(j);
        fail(api, req, route, 400, "invalid_reply",
             "the body must be {\"text\": \"...\", \"close\"?: true|false}");
        return;
    }
    int rc =
        tg_review_agent_reply(api->p->store, api->p->audit, id, who, tg_json_str(j, "text", NULL),
                              json_is_true(close), &task, err, sizeof(err));
    bool has_text = tg_json_str(j, "text", NULL) && tg_json_str(j, "text", "")[0];
    json_decref(j);
    if (rc) {
        fail(api, req, route,
             rc == TG_E_NOTFOUND   ? 404
             : rc == TG_E_CONFLICT ? 409
             : rc == TG_E_INVAL    ? 422
                                   : 503,
             "reply_refused", err);
        return;
    }
    const struct tg_api_notice notice = {
        .events = {has_text ? "agent_reply" : NULL, json_is_true(close) ? "closed" : NULL}};
    tg_api_send_committed(api, req, route, 200, task, &notice);
}

#define HOUR_MS 3600000LL

/* The statistics being summed, one task at a time. */
struct stats_acc {
    int64_t now, since; /* since: the first of the 24 whole hours, this one last */
    int64_t created, decided, handed, open;
    int64_t hc[24], hd[24], hh[24];
    struct tg_buf times; /* int64_t decision times of the window */
    json_t *reviewers;   /* actor -> [decision times] */
    json_t *queues;      /* queue -> {queue, created, open} */
    json_t *actions;     /* action -> count */
};

static int64_t hour_of(const struct stats_acc *a, int64_t at)
{
    return TG_MIN(TG_MAX((at - a->since) / HOUR_MS, 0), 23);
}

/* Add one to the count obj[key].  TG_OK or TG_E_NOMEM. */
static int bump(json_t *obj, const char *key)
{
    return tg_json_set(obj, key, json_integer(tg_json_int(obj, key, 0) + 1));
}

/* Count one task: a tg_store_review_facts callback; TG_OK or TG_E_NOMEM.
 * A handed-off task counts in the queue it was raised in. */
static int stats_add(void *ctx, const struct tg_review_facts *f)
{
    struct stats_acc *a = ctx;
    bool open = !strcmp(f->state, "pending") || !strcmp(f->state, "claimed");
    int64_t c = f->created_ms;
    a->open += open;
    if (c < a->since)
        return TG_OK;
    a->created++;
    a->hc[hour_of(a, c)]++;
    const char *q = f->original_queue[0] ? f->original_queue : f->queue[0] ? f->queue : "default";
    json_t *qe = json_object_get(a->queues, q);
    int rc = TG_OK;
    if (!qe) {
        qe = json_pack("{s:s, s:i, s:i}", "queue", q, "created", 0, "open", 0);
        rc = tg_json_set(a->queues, q, qe);
    }
    if (!rc)
        rc = bump(qe, "created");
    if (!rc && open)
        rc = bump(qe, "open");
    if (!rc && f->decided_ms > 0) {
        int64_t took = f->decided_ms - c;
        a->decided++;
        a->hd[hour_of(a, f->decided_ms)]++;
        rc = tg_buf_append(&a->times, &took, sizeof(took)) ? TG_E_NOMEM : TG_OK;
        const char *who = f->actor[0] ? f->actor : "?";
        json_t *re = rc ? NULL : json_object_get(a->reviewers, who);
        if (!rc && !re) {
            re = json_array();
            rc = tg_json_set(a->reviewers, who, json_incref(re));
            json_decref(re); /* the reviewers object holds it, or nobody */
        }
        if (!rc)
            rc = tg_json_push(re, json_integer(took));
        if (!rc)
            rc = bump(a->actions, f->action[0] ? f->action : "?");
    }
    if (!strcmp(f->state, "handed_off") || !strcmp(f->state, "closed")) {
        a->handed++;
        a->hh[hour_of(a, f->deadline_ms ? f->deadline_ms : c)]++;
    }
    return rc;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (nearest rank) of n sorted values. */
static int64_t quantile(const int64_t *v, size_t n, double q)
{
    if (!n)
        return 0;
    size_t r = (size_t)(q * (double)n + 0.999999);
    return v[r ? r - 1 : 0];
}

/* The figures of what was summed; NULL when out of memory. */
static json_t *stats_result(struct stats_acc *a)
{
    size_t nd = a->times.len / sizeof(int64_t);
    int64_t *times = (int64_t *)(void *)a->times.data;
    if (nd)
        qsort(times, nd, sizeof(*times), cmp_i64);
    json_t *by_hour = json_array(), *by_reviewer = json_array(), *by_queue = json_array();
    int rc = by_hour && by_reviewer && by_queue ? TG_OK : TG_E_NOMEM;
    for (int h = 0; !rc && h < 24; h++)
        rc = tg_json_push(by_hour, json_pack("{s:I, s:I, s:I, s:I}", "hour_ms",
                                             (json_int_t)(a->since + h * HOUR_MS), "created",
                                             (json_int_t)a->hc[h], "decided", (json_int_t)a->hd[h],
                                             "handed_off", (json_int_t)a->hh[h]));
    const char *key;
    json_t *val;
    json_object_foreach(a->reviewers, key, val)
    {
        size_t k = json_array_size(val);
        int64_t *v = rc ? NULL : tg_malloc((k ? k : 1) * sizeof(*v));
        if (!rc && !v)
            rc = TG_E_NOMEM; /* never a median of 0 for want of memory */
        for (size_t j = 0; v && j < k; j++)
            v[j] = json_integer_value(json_array_get(val, j));
        if (v)
            qsort(v, k, sizeof(*v), cmp_i64);
        if (v)
            rc = tg_json_push(by_reviewer,
                              json_pack("{s:s, s:I, s:I}", "actor", key, "decisions", (json_int_t)k,
                                        "median_ms", (json_int_t)quantile(v, k, 0.5)));
        tg_free(v);
    }
    json_object_foreach(a->queues, key, val)
    {
        if (!rc)
            rc = tg_json_push(by_queue, json_incref(val));
    }
    if (rc) {
        /* the pack below fails and releases the others */
        json_decref(by_hour);
        by_hour = NULL;
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I}, s:o, s:o, s:o, s:O}",
                     "since_ms", (json_int_t)a->since, "now_ms", (json_int_t)a->now, "created",
                     (json_int_t)a->created, "decided", (json_int_t)a->decided, "handed_off",
                     (json_int_t)a->handed, "open", (json_int_t)a->open, "decision_ms", "n",
                     (json_int_t)nd, "median", (json_int_t)quantile(times, nd, 0.5), "p95",
                     (json_int_t)quantile(times, nd, 0.95), "by_hour", by_hour, "by_reviewer",
                     by_reviewer, "by_queue", by_queue, "by_action", a->actions);
}

/*
 * On the worker: the last 24 hours of review work for the supervisor view:
 * volumes by hour, time to decision (median, p95 by nearest rank), SLA
 * breaches (hand-offs), decisions per reviewer and per queue, and the open
 * tasks of any age.  The store streams the few facts of each task (no
 * task is parsed), so what is held is the window's figures alone.
 */
static json_t *stats_work(struct tg_store *st, void *arg, char *err, size_t errlen)
{
    struct stats_acc a = {.now = tg_clock_wall_ms()};
    json_t *out = NULL;
    int rc = TG_OK;
    (void)arg;
    a.since = (a.now / HOUR_MS - 23) * HOUR_MS;
    tg_buf_init(&a.times, TG_BUF_UNLIMITED);
    a.reviewers = json_object();
    a.queues = json_object();
    a.actions = json_object();
    if (!a.reviewers || !a.queues || !a.actions)
        rc = TG_E_NOMEM;
    if (!rc)
        rc = tg_store_review_facts(st, a.since, stats_add, &a);
    if (!rc)
        out = stats_result(&a);
    if (!out)
        snprintf(err, errlen, "cannot read the queue");
    tg_buf_free(&a.times);
    json_decref(a.reviewers);
    json_decref(a.queues);
    json_decref(a.actions);
    return out;
}

static void stats(struct tg_api *api, struct tg_http_req *req)
{
    const char *route = "/v1/reviews/stats";
    if (tg_api_person(api, req, route, "supervisor"))
        tg_api_background_shared(api, req, route, stats_work, NULL, NULL);
}

/* Decode %XX and '+' in place. */
static void url_decode(char *s)
{
    char *o = s;
    uint8_t b;
    for (; *s; s++) {
        if (*s == '%' && s[1] && s[2] && tg_hex_decode((char[]){s[1], s[2], 0}, &b, 1) == TG_OK) {
            *o++ = (char)b;
            s += 2;
        } else {
            *o++ = *s == '+' ? ' ' : *s;
        }
    }
    *o = '\0';
}

/* A cited document's whole text (its chunks in order, overlaps removed). */
static void source(struct tg_api *api, struct tg_http_req *req)
{
    const char *route = "/console/api/source";
    char src[2048];
    if (!tg_api_person(api, req, route, TG_ANYONE))
        return;
    if (!tg_api_query(tg_http_query(req), "source", src, sizeof(src))) {
        fail(api, req, route, 400, "invalid_source", "give the citation's source as ?source=");
        return;
    }
    url_decode(src);
    struct tg_buf text;
    tg_buf_init(&text, TG_BUF_UNLIMITED);
    const char *title = NULL;
    size_t n = api->p->main.kb ? tg_kb_chunk_count(api->p->main.kb) : 0, end = 0;
    for (uint32_t id = 0; id < n; id++) {
        struct tg_kb_chunk ch;
        if (tg_kb_chunk_get(api->p->main.kb, id, &ch) || strcmp(ch.source, src) != 0)
            continue;
        title = title ? title : ch.title;
        size_t len = strlen(ch.text), skip = 0;
        if (ch.offset < end) /* overlapping chunks: only the new part */
            skip = TG_MIN(len, end - ch.offset);
        if (text.len && !skip)
            tg_buf_append(&text, "\n", 1);
        tg_buf_append(&text, ch.text + skip, len - skip);
        end = TG_MAX(end, ch.offset + len);
    }
    if (!title) {
        tg_buf_free(&text);
        fail(api, req, route, 404, "unknown_source", "no document with that source");
        return;
    }
    json_t *out = json_pack("{s:s, s:s, s:s%}", "source", src, "title", title, "text",
                            text.data ? text.data : "", text.len);
    tg_buf_free(&text);
    send(api, req, route, 200, out);
}

static void events(struct tg_api *api, struct tg_http_req *req)
{
    if (tg_api_person(api, req, "/v1/reviews/events", TG_ANYONE)) {
        tg_metrics_request(api->p->metrics, "/v1/reviews/events", 200);
        tg_events_subscribe(api, req, NULL);
    }
}

/* "PREFIX{id}SUFFIX" -> id; false when path is not of that shape. */
static bool path_id(const char *path, const char *prefix, const char *suffix, char id[TG_ID_MAX])
{
    size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(path);
    if (n <= pl + sl || strncmp(path, prefix, pl) != 0 || strcmp(path + n - sl, suffix) != 0 ||
        n - pl - sl >= TG_ID_MAX)
        return false;
    memcpy(id, path + pl, n - pl - sl);
    id[n - pl - sl] = '\0';
    return strchr(id, '/') == NULL;
}

bool tg_api_reviews(struct tg_api *api, struct tg_http_req *req)
{
    const char *m = tg_http_method(req), *path = tg_http_path(req);
    bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0, post = strcmp(m, "POST") == 0;
    char id[TG_ID_MAX];
    if (!tg_str_has_prefix(path, "/v1/reviews") && !tg_str_has_prefix(path, "/v1/turns/") &&
        !tg_str_has_prefix(path, "/v1/handoffs") && strcmp(path, "/console/api/source") != 0)
        return false;
    /* no flush here: reads wait for their commit without blocking the
     * loop, and a person's act reads its task through tg_review_*, which
     * commits what was queued first */
    if (get && strcmp(path, "/v1/reviews") == 0)
        list(api, req);
    else if (get && strcmp(path, "/v1/reviews/events") == 0)
        events(api, req);
    else if (get && strcmp(path, "/v1/reviews/stats") == 0)
        stats(api, req);
    else if (get && strcmp(path, "/v1/handoffs") == 0)
        handoffs(api, req);
    else if (get && strcmp(path, "/console/api/source") == 0)
        source(api, req);
    else if (post && path_id(path, "/v1/handoffs/", "/reply", id))
        reply(api, req, id);
    else if (get && path_id(path, "/v1/turns/", "", id))
        get_turn(api, req, id);
    else if (get && path_id(path, "/v1/reviews/", "", id))
        get_task(api, req, id);
    else if (post && path_id(path, "/v1/reviews/", "/decision", id))
        decide(api, req, id);
    else if (post && path_id(path, "/v1/reviews/", "/claim", id))
        claim(api, req, id);
    else
        return false;
    return true;
}
