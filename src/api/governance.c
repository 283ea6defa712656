/*
 * governance.c - experiments, the fairness gate and the release freeze,
 * on the traffic the gateway itself answers.
 *
 *   GET  /v1/experiments            the configured experiments and what answers each variant
 *   GET  /v1/experiments/{name}     per-variant metrics with their statistics (eval.h); looks
 *                                   every ?look=1d (a duration) or every ?turns=N turns
 *   GET  /v1/fairness               per attribute: delivery rate by group, parity, the gate
 *   GET  /v1/releases               the release registry (read off the event loop) and
 *                                   the freeze
 *   POST /v1/releases/freeze        {"why"}: a supervisor stops promotions
 *   POST /v1/releases/unfreeze      {"why"}: a supervisor resumes promotions
 *   POST /v1/releases/{name}/rollback {"why"}: a supervisor takes the release in force
 *                                   back; the one it superseded is in force again
 *   POST /v1/releases/{name}/promote {"why", "override"?}: a supervisor promotes the
 *                                   release when every gate computed from the store is
 *                                   open (tg_release_gates); override (a reason) stands in
 *                                   for the experiment a proposed release never ran.
 *                                   200 {promoted, evidence}; 409 {error, evidence}
 *
 * All for users (token or console session); freezing, unfreezing and
 * promoting for supervisors, each with a reason of at least 10 characters
 * and an audit leaf in their name.
 *
 * The fairness gate (config `fairness`): for each sensitive attribute the
 * channels send in `metadata` (kept only as keyed pseudonyms, admit stage),
 * per group over the last `window` (default 30 days): the share of turns
 * answered by AI at once (decision deliver), and the share of reviewed AI
 * drafts a reviewer approved as written.  When the demographic parity
 * difference exceeds `limit` (default 0.05) with its bootstrap interval
 * clear of it and every group has `min_group` turns (default 30), an alert
 * goes out (signed webhook `fairness.gate_closed`, console event, audit
 * leaf) and releases are frozen until a supervisor unfreezes them with a
 * reason.  Checked every `check_every` (default 1 h) and on every request
 * to /v1/fairness; an attribute alerts at most once a day, and a
 * supervisor's unfreeze holds for 24 hours (the gate still shows closed)
 * so the same evidence does not freeze releases again at once.
 */
#include "api/api_int.h"

#include "audit/audit.h"
#include "eval/eval.h"
#include "govern/govern.h"
#include "eval/fairness.h"
#include "pipeline/pipeline.h"
#include "store/store.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL
#define MAX_GATES 16 /* attributes x outcomes with their own daily alert */
#define UNFREEZE_HOLDS_MS DAY_MS

struct tg_fairness_mon {
    struct tg_api *api;
    struct event *timer;
    bool on;
    bool timer_busy; /* the timer's last check is still on the worker */
    double limit;
    size_t min_group, bootstrap;
    int64_t window_ms;
    int64_t alerted[MAX_GATES]; /* day of the last alert per attribute and outcome */
};

/* ------------------------------------------------------------ fairness */

static const char *const outcome_names[] = {"delivered", "review_approved"};

/* Whether the gate stays quiet: releases already frozen, or a supervisor's
 * unfreeze still holds. */
static bool quiet_state(const json_t *st, int64_t now)
{
    return tg_json_bool(st, "frozen", false) ||
           (strcmp(tg_json_str(st, "by", "trustgate"), "trustgate") != 0 &&
            now < tg_json_int(st, "at", 0) + UNFREEZE_HOLDS_MS);
}

/*
 * A closed gate: the alert (signed webhook, audit leaf) and the freeze,
 * committed together.  Nodes sharing the store decide one at a time
 * under the freeze's lock, on the state as committed: whichever comes
 * first alerts and freezes, the others find releases frozen.
 */
static void freeze(struct tg_api *api, const char *attr, const char *outcome, const json_t *m,
                   double limit)
{
    struct tg_store *st = api->p->store;
    char why[400];
    if (tg_store_trylock(st, TG_RELEASE_STATE_LOCK) != TG_OK)
        return; /* another node is changing the freeze now */
    json_t *state = tg_release_state(st);
    bool quiet = quiet_state(state, tg_clock_wall_ms());
    json_decref(state);
    if (quiet) {
        tg_store_unlock(st, TG_RELEASE_STATE_LOCK);
        return;
    }
    snprintf(why, sizeof(why),
             "fairness gate: %s %s demographic parity difference %.3f (95%% CI %.3f..%.3f) above "
             "the limit %.3f",
             attr, outcome, tg_json_num(m, "dpd", 0), tg_json_num(m, "ci_low", 0),
             tg_json_num(m, "ci_high", 0), limit);
    json_t *alert =
        json_pack("{s:s, s:I, s:s, s:s, s:f, s:f, s:f, s:f, s:s}", "event", "fairness.gate_closed",
                  "at", (json_int_t)tg_clock_wall_ms(), "attribute", attr, "outcome", outcome,
                  "dpd", tg_json_num(m, "dpd", 0), "ci_low", tg_json_num(m, "ci_low", 0), "ci_high",
                  tg_json_num(m, "ci_high", 0), "limit", limit, "why", why);
    json_t *leaf = alert ? json_pack("{s:s, s:O}", "kind", "fairness_alert", "alert", alert) : NULL;
    tg_store_hold(st);
    int rc = leaf ? tg_audit_append_json(api->p->audit, leaf, NULL) : TG_E_NOMEM;
    if (!rc)
        rc = tg_webhooks_queue(api->webhooks, alert);
    if (!rc)
        rc = tg_release_queue_frozen(st, api->p->audit, true, "trustgate", why);
    rc = tg_store_release(st, rc);
    if (!rc)
        rc = tg_store_flush(st);
    tg_store_unlock(st, TG_RELEASE_STATE_LOCK);
    json_decref(leaf);
    json_decref(alert);
    if (rc) {
        tg_error("fairness gate: %s; the alert and the freeze could not be recorded: %s", why,
                 tg_err_str(rc));
        return;
    }
    tg_warn("%s; releases frozen", why);
    tg_api_review_event(api, "fairness", "fairness_alert", NULL);
}

struct fair_job {
    struct tg_fair_live in; /* everything it points to is read-only */
    bool timer;             /* the timer's check (else a request's) */
};

/* On the background worker: the measures. */
static json_t *fairness_work(struct tg_store *st, void *arg, char *err, size_t errlen)
{
    const struct fair_job *fj = arg;
    json_t *attrs = tg_fairness_live(st, &fj->in);
    if (!attrs) {
        snprintf(err, errlen, "the audit log could not be read");
        return NULL;
    }
    json_t *out = json_pack("{s:o}", "attributes", attrs);
    if (!out)
        snprintf(err, errlen, "out of memory");
    return out;
}

/* Back on the loop: alert and freeze when a gate closed; the settings and the freeze. */
static int fairness_then(struct tg_api *api, json_t *result, void *arg)
{
    struct tg_fairness_mon *m = api->fairness;
    const struct fair_job *fj = arg;
    int rc;
    if (m && fj->timer)
        m->timer_busy = false; /* the timer's own check came back */
    if (!result || !m)
        return TG_OK;
    int64_t now = tg_clock_wall_ms(), today = now - now % DAY_MS;
    json_t *st = tg_release_state(api->p->store);
    bool quiet = quiet_state(st, now); /* freeze() looks again, under the lock */
    json_decref(st);
    size_t ai;
    json_t *a;
    json_array_foreach(json_object_get(result, "attributes"), ai, a)
    {
        for (size_t o = 0; o < TG_ARRAY_LEN(outcome_names); o++) {
            const json_t *res = json_object_get(a, outcome_names[o]);
            size_t slot = ai * TG_ARRAY_LEN(outcome_names) + o;
            if (m->on && tg_json_bool(res, "gate_closed", false) && !quiet && slot < MAX_GATES &&
                m->alerted[slot] != today) {
                m->alerted[slot] = today;
                freeze(api, tg_json_str(a, "attribute", ""), outcome_names[o], res, m->limit);
                quiet = true;
            }
        }
    }
    rc = tg_json_set(result, "limit", json_real(m->limit));
    if (!rc)
        rc = tg_json_set(result, "min_group", json_integer((json_int_t)m->min_group));
    if (!rc)
        rc = tg_json_set(result, "window_days", json_integer((json_int_t)(m->window_ms / DAY_MS)));
    if (!rc)
        rc = tg_json_set(result, "releases", tg_release_state(api->p->store));
    return rc;
}

/* Check every attribute and outcome on the worker; answer req (may be NULL) after. */
static void fairness_check(struct tg_api *api, struct tg_http_req *req)
{
    struct tg_fairness_mon *m = api->fairness;
    struct fair_job *fj = tg_calloc(1, sizeof(*fj));
    if (!fj) {
        if (req)
            tg_api_send_error(api, req, "/v1/fairness", 503, "server_error", "out_of_memory",
                              "out of memory");
        else
            m->timer_busy = false;
        return;
    }
    fj->in = (struct tg_fair_live){.cfg = &api->p->cfg->fairness,
                                   .key = api->p->pseudonym_key,
                                   .keylen = sizeof(api->p->pseudonym_key),
                                   .since_ms = tg_clock_wall_ms() - m->window_ms,
                                   .limit = m->limit,
                                   .min_group = m->min_group,
                                   .bootstrap = m->bootstrap};
    fj->timer = req == NULL;
    if (tg_api_background(api, req, "/v1/fairness", fairness_work, fairness_then, fj, tg_free) &&
        !req)
        m->timer_busy = false;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tg_api *api = arg;
    (void)fd;
    (void)what;
    /* one check at a time from the timer: a slow scan does not pile up */
    if (api->fairness && !api->fairness->timer_busy) {
        api->fairness->timer_busy = true;
        fairness_check(api, NULL);
    }
}

int tg_fairness_start(struct tg_api *api)
{
    struct tg_fairness_mon *m = tg_calloc(1, sizeof(*m));
    if (!m)
        return TG_E_NOMEM;
    const struct tg_fairness_conf *c = &api->p->cfg->fairness;
    m->api = api;
    m->on = c->n_attributes > 0;
    m->limit = c->limit;
    m->min_group = (size_t)c->min_group;
    m->bootstrap = (size_t)c->bootstrap;
    m->window_ms = c->window_ms;
    api->fairness = m;
    if (m->on && !(m->timer = tg_api_every(api, c->check_every_ms, timer_cb, api)))
        return TG_E_NOMEM;
    return TG_OK;
}

void tg_fairness_stop(struct tg_api *api)
{
    struct tg_fairness_mon *m = api->fairness;
    if (!m)
        return;
    if (m->timer)
        event_free(m->timer);
    tg_free(m);
    api->fairness = NULL;
}

/* ------------------------------------------------------------ experiments */

/* The running experiments and what answers each variant; NULL when out of memory. */
static json_t *experiment_list(struct tg_api *api)
{
    json_t *out = json_array();
    int rc = out ? TG_OK : TG_E_NOMEM;
    const struct tg_config *cfg = api->p->cfg;
    for (size_t i = 0; !rc && i < cfg->n_experiments; i++) {
        const struct tg_experiment_conf *e = &cfg->experiments[i];
        json_t *vs = json_array();
        const char *name = e->name;
        rc = vs ? TG_OK : TG_E_NOMEM;
        for (size_t k = 0; !rc && k < e->n_variants; k++) {
            const struct tg_variant_conf *v = &e->variants[k];
            const struct tg_answerer *a = tg_pipeline_answerer(api->p, name, v->name);
            if (!a)
                a = &api->p->main;
            /* what answers this variant: the release in force, a registered
             * release started as an experiment, or a config file */
            const char *kind = a == &api->p->main ? "in_force"
                               : a->release[0]    ? "release"
                                                  : "config";
            rc = tg_json_push(vs,
                              json_pack("{s:s, s:f, s:s, s:s?, s:s?, s:s}", "name", v->name,
                                        "share", v->share, "answered_by", kind, "release",
                                        a->release[0] ? a->release : NULL, "config",
                                        a == &api->p->main ? NULL : a->cfg->path, "hash", a->hash));
        }
        if (rc)
            json_decref(vs);
        else
            rc = tg_json_push(out, json_pack("{s:s, s:f, s:o}", "name", name, "holdout", e->holdout,
                                             "variants", vs));
    }
    if (rc) {
        json_decref(out);
        out = NULL;
    }
    return out;
}

struct report_job {
    const struct tg_eval_conf *prices;    /* borrowed from the config, read-only */
    const struct tg_experiment_conf *exp; /* the same */
    int64_t period;
    size_t look_turns; /* a look every this many turns instead of by period, or 0 */
};

/* On the worker: every metric of the rows, each variant against the first (the control). */
static json_t *report_work(struct tg_store *st, void *arg, char *err, size_t errlen)
{
    static const char *const metrics[] = {"resolved",   "far",        "handed_off", "reviewed",
                                          "rated_good", "bad_rating", "latency_ms", "cost"};
    const struct report_job *rj = arg;
    const char *name = rj->exp->name;
    const char *control = rj->exp->n_variants ? rj->exp->variants[0].name : "";
    json_t *rows = tg_experiment_rows(st, name, rj->prices, rj->period, rj->look_turns);
    if (!rows) {
        snprintf(err, errlen, "the audit log could not be read");
        return NULL;
    }
    json_t *shares = json_object(), *res = json_object(), *out = NULL;
    int rc = shares && res ? TG_OK : TG_E_NOMEM;
    double total = 0;
    for (size_t k = 0; k < rj->exp->n_variants; k++)
        total += rj->exp->variants[k].share;
    for (size_t k = 0; !rc && k < rj->exp->n_variants; k++)
        rc = tg_json_set(shares, rj->exp->variants[k].name,
                         json_real(rj->exp->variants[k].share / total));
    for (size_t i = 0; !rc && i < TG_ARRAY_LEN(metrics); i++) {
        char why[200];
        json_t *a =
            tg_experiment_analyze(rows, control, metrics[i], 0.01, 0.02, shares, why, sizeof(why));
        rc = tg_json_set(res, metrics[i], a ? a : json_pack("{s:s}", "error", why));
    }
    if (!rc) {
        out = json_pack("{s:s, s:s, s:I, s:I, s:o}", "experiment", name, "control", control,
                        "turns", (json_int_t)json_array_size(rows), "look_ms",
                        (json_int_t)(rj->look_turns ? 0 : rj->period), "metrics", res);
        res = NULL; /* taken by the pack, even when it fails */
        rc = out ? TG_OK : TG_E_NOMEM;
    }
    if (!rc && rj->look_turns)
        rc = tg_json_set(out, "look_turns", json_integer((json_int_t)rj->look_turns));
    if (rc) {
        json_decref(out);
        out = NULL;
        snprintf(err, errlen, "out of memory");
    }
    json_decref(res);
    json_decref(rows);
    json_decref(shares);
    return out;
}

/* ------------------------------------------------------------ releases */

/* On the worker: every registered release, without its file list. */
static json_t *releases_work(struct tg_store *st, void *arg, char *err, size_t errlen)
{
    json_t *all = NULL, *r;
    size_t i;
    (void)arg;
    if (tg_store_blob_list(st, "release/", 100000, &all))
        all = json_array(); /* a registry that cannot be read shows as empty */
    json_array_foreach(all, i, r) json_object_del(r, "files");
    json_t *out = json_pack("{s:o}", "releases", all);
    if (!out)
        snprintf(err, errlen, "out of memory");
    return out;
}

/* Back on the loop: the freeze as it is now. */
static int releases_then(struct tg_api *api, json_t *result, void *arg)
{
    (void)arg;
    return result ? tg_json_set(result, "state", tg_release_state(api->p->store)) : TG_OK;
}

/* ------------------------------------------------------------ routes */

/* A duration in the query (absent: *out unchanged); false when malformed. */
static bool query_ms(const char *q, const char *key, int64_t *out)
{
    char v[32];
    if (!tg_api_query(q, key, v, sizeof(v)))
        return true;
    return tg_parse_duration_ms(v, out) == TG_OK && *out > 0;
}

/* A person's reason of at least MIN_REASON characters at key of body j, or NULL (answered 400). */
#define MIN_REASON 10
static const char *reason(struct tg_api *api, struct tg_http_req *req, const char *route,
                          const json_t *j, const char *key)
{
    const char *why = tg_json_str(j, key, NULL);
    char msg[200];
    if (why && strlen(why) >= MIN_REASON)
        return why;
    snprintf(msg, sizeof(msg),
             "\"%s\" must be a justification of at least %d characters, recorded in the audit "
             "log",
             key, MIN_REASON);
    tg_api_send_error(api, req, route, 400, "invalid_request_error", "reason_required", msg);
    return NULL;
}

/* POST /v1/releases/freeze and /unfreeze {why}: a supervisor stops or resumes promotions. */
static void set_frozen(struct tg_api *api, struct tg_http_req *req, bool frozen)
{
    const char *route = frozen ? "/v1/releases/freeze" : "/v1/releases/unfreeze";
    const char *who = tg_api_person(api, req, route, "supervisor");
    if (!who)
        return;
    size_t len;
    const char *body = tg_http_body(req, &len);
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *why = reason(api, req, route, j, "why");
    int rc = why ? tg_release_set_frozen(api->p->store, api->p->audit, frozen, who, why) : TG_OK;
    json_decref(j);
    if (!why)
        return;
    if (rc) {
        tg_api_send_error(api, req, route, 503, "server_error", "storage_unavailable",
                          "the change could not be recorded");
        return;
    }
    tg_api_review_event(api, "releases", frozen ? "frozen" : "unfrozen", NULL);
    tg_api_send_json(api, req, route, 200, tg_release_state(api->p->store));
}

/* POST /v1/releases/{name}/rollback {why}: a supervisor takes the release in force back. */
static void rollback(struct tg_api *api, struct tg_http_req *req, const char *name)
{
    const char *route = "/v1/releases/{name}/rollback";
    const char *who = tg_api_person(api, req, route, "supervisor");
    if (!who)
        return;
    size_t len;
    const char *body = tg_http_body(req, &len);
    json_t *j = json_loadb(body, len, 0, NULL), *rel = NULL, *back = NULL;
    const char *why = reason(api, req, route, j, "why");
    char err[256] = "";
    int rc = why ? tg_release_rollback(api->p->store, api->p->audit, name, who, why, &rel, &back,
                                       err, sizeof(err))
                 : TG_OK;
    json_decref(j);
    if (!why)
        return;
    if (rc) {
        int status = rc == TG_E_NOTFOUND ? 404 : rc == TG_E_INVAL ? 409 : 503;
        tg_api_send_error(api, req, route, status, "invalid_request_error",
                          status == 409   ? "conflict"
                          : status == 404 ? "not_found"
                                          : "server_error",
                          err);
    } else {
        tg_api_review_event(api, "releases", "rolled_back", NULL);
        tg_api_send_json(
            api, req, route, 200,
            json_pack("{s:o, s:o}", "release", rel, "restored", back ? back : json_null()));
        rel = back = NULL;
    }
    json_decref(rel);
    json_decref(back);
}

/* A promotion in flight: the gates are computed on the worker, the act recorded on the loop. */
struct promote_job {
    struct tg_release_gate_in in;
    struct tg_http_req *req;
    char name[200], by[128], why[1024], override[1024];
    char err[256]; /* why the worker computed nothing */
};

static void promote_free(void *arg)
{
    tg_free(arg);
}

static json_t *promote_work(struct tg_store *st, void *arg, char *err, size_t errlen)
{
    struct promote_job *pj = arg;
    pj->in.now_ms = tg_clock_wall_ms();
    json_t *res = tg_release_gates(st, &pj->in, err, errlen);
    if (!res)
        tg_strlcpy(pj->err, err, sizeof(pj->err));
    return res;
}

/* Back on the loop: promote when every gate is open, else record the refusal; answer. */
static int promote_then(struct tg_api *api, json_t *result, void *arg)
{
    const char *route = "/v1/releases/{name}/promote";
    struct promote_job *pj = arg;
    char err[2048];
    if (!result) {
        bool missing = tg_str_has_prefix(pj->err, "no release named");
        tg_api_send_error(api, pj->req, route, missing ? 404 : 503,
                          missing ? "invalid_request_error" : "server_error",
                          missing ? "unknown_release" : "storage_unavailable",
                          pj->err[0] ? pj->err : "the server is stopping");
        return TG_OK;
    }
    int rc = tg_release_promote(api->p->store, api->p->audit, result, pj->by, pj->why, pj->override,
                                err, sizeof(err));
    if (rc == TG_OK) {
        tg_api_review_event(api, "releases", "promoted", NULL);
        tg_api_send_committed(api, pj->req, route, 200,
                              json_pack("{s:b, s:O}", "promoted", 1, "evidence", result), NULL);
        return TG_OK;
    }
    json_t *body = json_pack("{s:{s:s, s:s, s:s}, s:O}", "error", "type", "invalid_request_error",
                             "code", rc == TG_E_FORBIDDEN ? "gate_closed" : "conflict", "message",
                             err, "evidence", result);
    /* a refusal is a decision too: its leaf is committed before the answer */
    tg_api_send_committed(api, pj->req, route, 409, body, NULL);
    return TG_OK; /* the answer went (or failed) here: nothing is left to send */
}

/* POST /v1/releases/{name}/promote {why, override?}: a supervisor promotes on computed gates. */
static void promote(struct tg_api *api, struct tg_http_req *req, const char *name)
{
    const char *route = "/v1/releases/{name}/promote";
    const char *who = tg_api_person(api, req, route, "supervisor");
    if (!who)
        return;
    size_t len;
    const char *body = tg_http_body(req, &len);
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *why = reason(api, req, route, j, "why");
    const json_t *oj = json_object_get(j, "override");
    const char *ov = why && oj && !json_is_null(oj) ? reason(api, req, route, j, "override") : "";
    struct promote_job *pj = NULL;
    if (why && ov && (!name[0] || strlen(name) >= sizeof(pj->name) || strchr(name, '/')))
        tg_api_send_error(api, req, route, 404, "invalid_request_error", "unknown_release",
                          "no release of that name");
    else if (why && ov && !(pj = tg_calloc(1, sizeof(*pj))))
        tg_api_send_error(api, req, route, 503, "server_error", "out_of_memory", "out of memory");
    if (pj) {
        tg_strlcpy(pj->name, name, sizeof(pj->name));
        tg_strlcpy(pj->by, who, sizeof(pj->by));
        tg_strlcpy(pj->why, why, sizeof(pj->why));
        tg_strlcpy(pj->override, ov, sizeof(pj->override));
        pj->req = req;
        pj->in = (struct tg_release_gate_in){.cfg = api->p->cfg,
                                             .key = api->p->pseudonym_key,
                                             .keylen = sizeof(api->p->pseudonym_key),
                                             .name = pj->name,
                                             .override = ov[0] != '\0'};
        /* the job answers req itself (409 on a closed gate), so the worker gets none */
        if (tg_api_background(api, NULL, route, promote_work, promote_then, pj, promote_free))
            tg_api_send_error(api, req, route, 503, "server_error", "unavailable",
                              "the gates could not be computed now");
    }
    json_decref(j);
}

bool tg_api_governance(struct tg_api *api, struct tg_http_req *req)
{
    const char *m = tg_http_method(req), *path = tg_http_path(req);
    bool get = !strcmp(m, "GET");
    bool post = !strcmp(m, "POST");
    if ((!strcmp(path, "/v1/releases/unfreeze") || !strcmp(path, "/v1/releases/freeze")) && post) {
        set_frozen(api, req, !strcmp(path, "/v1/releases/freeze"));
    } else if (tg_str_has_prefix(path, "/v1/releases/") && post &&
               strlen(path) > strlen("/v1/releases//promote") &&
               !strcmp(path + strlen(path) - strlen("/promote"), "/promote")) {
        char name[256];
        size_t n = strlen(path) - strlen("/v1/releases/") - strlen("/promote");
        tg_strlcpy(name, path + strlen("/v1/releases/"), TG_MIN(n + 1, sizeof(name)));
        promote(api, req, n < sizeof(name) ? name : "");
    } else if (tg_str_has_prefix(path, "/v1/releases/") && post &&
               strlen(path) > strlen("/v1/releases//rollback") &&
               !strcmp(path + strlen(path) - strlen("/rollback"), "/rollback")) {
        char name[256];
        size_t n = strlen(path) - strlen("/v1/releases/") - strlen("/rollback");
        tg_strlcpy(name, path + strlen("/v1/releases/"), TG_MIN(n + 1, sizeof(name)));
        rollback(api, req, n < sizeof(name) ? name : "");
    } else if (!strcmp(path, "/v1/fairness") && get) {
        if (!tg_api_person(api, req, path, TG_ANYONE))
            return true;
        if (api->fairness)
            fairness_check(api, req);
        else
            tg_api_send_error(api, req, path, 503, "server_error", "unavailable",
                              "the fairness gate is not running");
    } else if (!strcmp(path, "/v1/releases") && get) {
        if (!tg_api_person(api, req, path, TG_ANYONE))
            return true;
        tg_api_background_bounded(api, req, "/v1/releases", releases_work, releases_then, NULL,
                                  NULL);
    } else if (!strcmp(path, "/v1/experiments") && get) {
        if (tg_api_person(api, req, path, TG_ANYONE))
            tg_api_send_json(api, req, path, 200,
                             json_pack("{s:o}", "experiments", experiment_list(api)));
    } else if (tg_str_has_prefix(path, "/v1/experiments/") && get) {
        const char *route = "/v1/experiments/{name}";
        if (!tg_api_person(api, req, route, TG_ANYONE))
            return true;
        const char *name = path + strlen("/v1/experiments/");
        const struct tg_experiment_conf *exp = NULL;
        for (size_t i = 0; i < api->p->cfg->n_experiments; i++)
            if (!strcmp(api->p->cfg->experiments[i].name, name))
                exp = &api->p->cfg->experiments[i];
        int64_t period = DAY_MS, turns = 0;
        char tv[24];
        bool turns_ok = !tg_api_query(tg_http_query(req), "turns", tv, sizeof(tv)) ||
                        (tg_parse_i64(tv, &turns) == TG_OK && turns > 0);
        struct report_job *rj = NULL;
        if (!exp)
            tg_api_send_error(api, req, route, 404, "invalid_request_error", "unknown_experiment",
                              "no experiment of that name is configured");
        else if (!query_ms(tg_http_query(req), "look", &period) || !turns_ok)
            tg_api_send_error(api, req, route, 400, "invalid_request_error", "invalid_value",
                              "look must be a duration such as 1d, 1h or 500ms, turns a number "
                              "of turns between looks");
        else if (!(rj = tg_calloc(1, sizeof(*rj))))
            tg_api_send_error(api, req, route, 503, "server_error", "out_of_memory",
                              "out of memory");
        else {
            rj->prices = &api->p->cfg->eval;
            rj->exp = exp;
            rj->period = period;
            rj->look_turns = (size_t)turns;
            tg_api_background(api, req, route, report_work, NULL, rj, tg_free);
        }
    } else {
        return false;
    }
    return true;
}
