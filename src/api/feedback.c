/*
 * feedback.c - how good the answers are over time, and the alarm product
 * owners set on it.
 *
 *   POST /v1/feedback   {turn_id, rating: "good"|"bad"|1..5, correct_answer?}  (API key)
 *                       correct_answer is stored masked (store.h)
 *   GET  /v1/monitor    daily FAR, its trend and the exit criterion           (users)
 *
 * Daily FAR counts, per UTC day of the turn, the AI answers people judged,
 * each once (tg_monitor_judgements): a reviewer's approval or a customer's good
 * rating (4 or 5 stars) is good; an edit, a rejection or a bad rating is
 * not; the latest judgement of a turn wins, and a rating of an answer a
 * person wrote is ignored.  A day with no judgement is a gap (far null).  The criterion (config
 * eval.monitor: {min_far, days, alpha, check_every}) is "FAR below min_far on each of the last
 * `days` days, with no significantly improving Mann–Kendall trend"; it is checked every check_every
 * (default 1 h) and on every request to /v1/monitor.  When it holds, an alert goes out once per
 * day: a signed webhook `monitor.far_below`, a console event, and an audit leaf.
 */
#include "api/api_int.h"
#include "api/console.h"

#include "audit/audit.h"
#include "eval/eval.h"
#include "govern/govern.h"
#include "metrics/metrics.h"
#include "pipeline/pipeline.h"
#include "store/store.h"

#include <event2/event.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_DAYS 90
#define DAY_MS 86400000LL

struct tg_monitor {
    struct tg_api *api;
    struct event *timer;
    struct tg_far_criterion crit;
    size_t show_days;
    bool on;                /* eval.monitor configured */
    bool timer_busy;        /* the timer's last check is still on the worker */
    int64_t last_alert_day; /* day_ms of the last alert sent */
};

/*
 * What the judgements are gathered in.  A turn has at most one review task
 * (the gate makes one), so a reviewed turn no customer rated is judged by
 * its review alone: it is counted at once in its day (plain), and only the
 * turns customers rated too become events for tg_monitor_judgements — memory
 * grows with the ratings, not with every reviewed turn.
 */
struct judging {
    json_t *ev;     /* events of rated turns: their reviews and ratings */
    json_t *rated;  /* turn_id -> true */
    struct tg_far_day plain[MAX_DAYS]; /* reviews of turns nobody rated, by the turn's day */
    size_t n;
};

/* A review decision on an AI draft, as a judgement of its turn (tg_store_review_facts callback). */
static int judged_review(void *ctx, const struct tg_review_facts *f)
{
    struct judging *jg = ctx;
    json_t *ev = jg->ev;
    if (f->decided_ms <= 0 || strcmp(f->kind, "review") != 0 || !f->turn_id[0])
        return TG_OK; /* only answers AI wrote */
    int64_t turn_ms = f->turn_ms > 0 ? f->turn_ms : f->created_ms;
    if (!json_object_get(jg->rated, f->turn_id)) {
        int64_t first = jg->plain[0].day_ms;
        if (turn_ms >= first && turn_ms < first + (int64_t)jg->n * DAY_MS) {
            struct tg_far_day *d = &jg->plain[(turn_ms - first) / DAY_MS];
            if (!strcmp(f->action, "approve"))
                d->good++;
            else
                d->bad++;
        }
        return TG_OK;
    }
    return tg_json_push(ev, json_pack("{s:s, s:I, s:I, s:s, s:b}", "turn_id", f->turn_id, "turn_ms",
                                      (json_int_t)(f->turn_ms > 0 ? f->turn_ms : f->created_ms),
                                      "at_ms", (json_int_t)f->decided_ms, "source", "review",
                                      "good", !strcmp(f->action, "approve")));
}

/* A customer's rating as a judgement: the turn's time, and whether its answer was the AI's
 * as it went out (decision deliver).  A rating of a turn no longer stored is left out. */
static int judged_rating(struct tg_store *st, const json_t *fb, int64_t since_ms, json_t *ev)
{
    const char *turn = tg_json_str(fb, "turn_id", NULL);
    json_t *rec = NULL;
    if (!turn || tg_json_int(fb, "at_ms", 0) < since_ms)
        return TG_OK; /* a turn in the window was rated after it began */
    int rc = tg_store_turn_get(st, turn, &rec);
    if (rc == TG_E_NOTFOUND)
        return TG_OK;
    if (rc)
        return rc;
    rc = tg_json_push(ev, json_pack("{s:s, s:I, s:I, s:s, s:b, s:b}", "turn_id", turn, "turn_ms",
                                    (json_int_t)tg_json_int(rec, "created_ms", 0), "at_ms",
                                    (json_int_t)tg_json_int(fb, "at_ms", 0), "source", "rating",
                                    "good", tg_json_bool(fb, "good", false), "ai",
                                    !strcmp(tg_json_str(rec, "decision", ""), "deliver")));
    json_decref(rec);
    return rc;
}

/*
 * One judgement per AI answer of a turn since since_ms, counted by the
 * turn's day into days (n of them, ending on now_ms's day): reviews of
 * drafts and customers' ratings, the latest of what counts
 * (tg_monitor_judgements; on the background worker: the cost grows with the
 * data).  TG_OK, or the store's error.
 */
static int judged(struct tg_store *st, int64_t since_ms, int64_t now_ms, size_t n,
                  struct tg_far_day *days)
{
    struct judging jg = {.ev = json_array(), .rated = json_object(), .n = n};
    json_t *fb = NULL, *f, *js = NULL;
    size_t i;
    int rc = jg.ev && jg.rated ? tg_store_blob_list(st, "feedback/", 100000, &fb) : TG_E_NOMEM;
    tg_monitor_daily_far(NULL, now_ms, n, jg.plain); /* the window's days, empty */
    json_array_foreach(fb, i, f)
    {
        const char *turn = tg_json_str(f, "turn_id", NULL);
        if (!rc && turn)
            rc = tg_json_set(jg.rated, turn, json_true());
    }
    /* reviews before ratings: of two judgements in the same millisecond the
     * later in the events, the rating, is the turn's */
    if (!rc)
        rc = tg_store_review_facts(st, since_ms, judged_review, &jg);
    json_array_foreach(fb, i, f)
    {
        if (!rc)
            rc = judged_rating(st, f, since_ms, jg.ev);
    }
    if (!rc && !(js = tg_monitor_judgements(jg.ev)))
        rc = TG_E_NOMEM;
    if (!rc) {
        tg_monitor_daily_far(js, now_ms, n, days);
        for (size_t d = 0; d < n; d++) {
            days[d].good += jg.plain[d].good;
            days[d].bad += jg.plain[d].bad;
            days[d].far = days[d].good + days[d].bad
                              ? (double)days[d].good / (double)(days[d].good + days[d].bad)
                              : NAN;
        }
    }
    json_decref(js);
    json_decref(fb);
    json_decref(jg.ev);
    json_decref(jg.rated);
    return rc;
}

/* What a check needs, copied for the worker. */
struct check_job {
    struct tg_far_criterion crit;
    size_t n;    /* days shown */
    bool on;     /* a criterion is configured */
    bool timer;  /* the timer's own check */
    int64_t now;
};

/* On the worker: the series, the trend and the verdict. */
static json_t *check_work(struct tg_store *st, void *arg, char *err, size_t errlen)
{
    const struct check_job *j = arg;
    struct tg_far_day days[MAX_DAYS];
    if (judged(st, (j->now / DAY_MS - (int64_t)j->n) * DAY_MS, j->now, j->n, days)) {
        snprintf(err, errlen, "the judgements could not be read");
        return NULL;
    }
    struct tg_far_verdict v;
    tg_monitor_far_criterion(days, j->n, &j->crit, &v);
    json_t *series = json_array(), *out;
    int rc = series ? TG_OK : TG_E_NOMEM;
    /* a day without judgements is a gap (null), not a FAR of 0 */
    for (size_t i = 0; !rc && i < j->n; i++)
        rc = tg_json_push(
            series, json_pack("{s:I, s:I, s:I, s:o}", "day_ms", (json_int_t)days[i].day_ms, "good",
                              (json_int_t)days[i].good, "bad", (json_int_t)days[i].bad, "far",
                              days[i].good + days[i].bad ? json_real(days[i].far) : json_null()));
    if (rc) {
        json_decref(series);
        series = NULL; /* the pack below fails */
    }
    out = json_pack("{s:o, s:{s:I, s:f, s:f, s:f, s:f}, s:{s:b, s:f, s:I, s:f, s:b, s:b, s:b}}",
                    "days", series, "trend", "n", (json_int_t)v.trend.n, "s", v.trend.s, "z",
                    v.trend.z, "p", v.trend.p, "sen_slope", v.trend.slope, "criterion",
                    "configured", j->on, "min_far", j->crit.min_far, "days",
                    (json_int_t)j->crit.days, "alpha", j->crit.alpha, "all_below", v.all_below,
                    "improving", v.improving, "met", j->on && v.met);
    if (!out)
        snprintf(err, errlen, "out of memory");
    return out;
}

/* Back on the loop: the day's alert when the criterion is met and none went out today. */
static int check_then(struct tg_api *api, json_t *result, void *arg)
{
    struct tg_monitor *m = api->monitor;
    const struct check_job *j = arg;
    if (m && j->timer)
        m->timer_busy = false;
    const json_t *c = json_object_get(result, "criterion");
    const json_t *trend = json_object_get(result, "trend");
    int64_t now = tg_clock_wall_ms(), today = now - now % DAY_MS;
    if (!m || !result || !tg_json_bool(c, "met", false) || m->last_alert_day == today)
        return TG_OK;
    json_t *alert = json_pack("{s:s, s:I, s:f, s:I, s:O, s:O}", "event", "monitor.far_below", "at",
                              (json_int_t)now, "min_far", m->crit.min_far, "days",
                              (json_int_t)m->crit.days, "trend_z", json_object_get(trend, "z"),
                              "trend_p", json_object_get(trend, "p"));
    /* the alert goes out with its audit leaf or not at all (the next check tries again) */
    json_t *leaf = alert ? json_pack("{s:s, s:O}", "kind", "monitor_alert", "alert", alert) : NULL;
    if (!leaf) {
        tg_error("monitor: out of memory: the FAR alert waits for the next check");
        json_decref(alert);
        return TG_OK;
    }
    m->last_alert_day = today;
    tg_warn("monitor: FAR below %.0f%% for %zu days with no improving trend",
            m->crit.min_far * 100, m->crit.days);
    if (api->webhooks)
        tg_webhooks_notify(api->webhooks, alert);
    tg_audit_append_json(api->p->audit, leaf, NULL);
    json_decref(leaf);
    tg_api_review_event(api, "monitor", "far_alert", NULL);
    char key[64];
    snprintf(key, sizeof(key), "alert/%lld", (long long)today);
    char *s = tg_json_dumps(alert, JSON_COMPACT);
    if (s)
        tg_store_blob_put(api->p->store, key, s, strlen(s));
    free(s);
    json_decref(alert);
    return TG_OK; /* the alert is the server's own business: the check's result is whole */
}

/* Start a check on the worker; req (may be NULL) is answered with its result. */
static void check(struct tg_api *api, struct tg_http_req *req, bool timer)
{
    struct tg_monitor *m = api->monitor;
    struct check_job *j = tg_calloc(1, sizeof(*j));
    if (!j) {
        if (req)
            tg_api_send_error(api, req, "/v1/monitor", 503, "server_error", "out_of_memory",
                              "out of memory");
        return;
    }
    j->crit = m->crit;
    j->n = TG_MAX(m->show_days, m->crit.days);
    j->on = m->on;
    j->timer = timer;
    j->now = tg_clock_wall_ms();
    if (timer)
        m->timer_busy = true;
    if (tg_api_background(api, req, "/v1/monitor", check_work, check_then, j, tg_free) && timer)
        m->timer_busy = false;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_api *api = arg;
    if (api->monitor && !api->monitor->timer_busy)
        check(api, NULL, true);
}

int tg_monitor_start(struct tg_api *api)
{
    struct tg_monitor *m = tg_calloc(1, sizeof(*m));
    if (!m)
        return TG_E_NOMEM;
    const struct tg_eval_conf *c = &api->p->cfg->eval;
    m->api = api;
    m->on = c->monitor;
    m->crit.min_far = c->monitor_min_far;
    m->crit.days = (size_t)TG_MIN(c->monitor_days, MAX_DAYS);
    m->crit.alpha = c->monitor_alpha;
    m->show_days = 14;
    api->monitor = m;
    /* no second alert for a day already alerted, across restarts */
    char key[64], *data = NULL;
    size_t len;
    int64_t now = tg_clock_wall_ms(), today = now - now % DAY_MS;
    snprintf(key, sizeof(key), "alert/%lld", (long long)today);
    if (tg_store_blob_get(api->p->store, key, &data, &len) == TG_OK)
        m->last_alert_day = today;
    tg_free(data);
    if (m->on && !(m->timer = tg_api_every(api, c->monitor_every_ms, timer_cb, api)))
        return TG_E_NOMEM;
    return TG_OK;
}

void tg_monitor_stop(struct tg_api *api)
{
    struct tg_monitor *m = api->monitor;
    if (!m)
        return;
    if (m->timer)
        event_free(m->timer);
    tg_free(m);
    api->monitor = NULL;
}

/* ------------------------------------------------------------ routes */

static void feedback(struct tg_api *api, struct tg_http_req *req)
{
    const char *route = "/v1/feedback";
    size_t len;
    if (!tg_api_key_ok(api, req)) {
        tg_api_send_error(api, req, route, 401, "authentication_error", "invalid_api_key",
                          "Incorrect or missing API key.");
        return;
    }
    const char *body = tg_http_body(req, &len);
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *turn = tg_json_str(j, "turn_id", NULL), *rs = tg_json_str(j, "rating", NULL);
    const json_t *rv = json_object_get(j, "rating");
    int good = -1;
    if (rs && (!strcmp(rs, "good") || !strcmp(rs, "up")))
        good = 1;
    else if (rs && (!strcmp(rs, "bad") || !strcmp(rs, "down")))
        good = 0;
    else if (json_is_integer(rv) && json_integer_value(rv) >= 1 && json_integer_value(rv) <= 5)
        good = json_integer_value(rv) >= 4;
    const json_t *ca = json_object_get(j, "correct_answer");
    if (!turn || good < 0 || (ca && !json_is_string(ca))) {
        json_decref(j);
        tg_api_send_error(api, req, route, 400, "invalid_request_error", "invalid_feedback",
                          "the body must be {\"turn_id\": \"turn_...\", \"rating\": \"good\"|"
                          "\"bad\"|1..5, \"correct_answer\"?: \"...\"}");
        return;
    }
    json_t *rec = NULL;
    tg_store_flush(api->p->store);
    if (tg_store_turn_get(api->p->store, turn, &rec) != TG_OK) {
        json_decref(j);
        tg_api_send_error(api, req, route, 404, "invalid_request_error", "unknown_turn",
                          "no such turn");
        return;
    }
    json_decref(rec);
    int64_t now = tg_clock_wall_ms();
    /* what the customer wrote is kept masked, as the store keeps free text */
    struct tg_buf masked;
    tg_buf_init(&masked, TG_BUF_UNLIMITED);
    int mrc =
        ca ? tg_store_mask(api->p->store, json_string_value(ca), json_string_length(ca), &masked)
           : TG_OK;
    json_t *fb = mrc ? NULL
                     : json_pack("{s:s, s:I, s:b, s:O}", "turn_id", turn, "at_ms", (json_int_t)now,
                                 "good", good, "rating", rv);
    if (fb && ca &&
        tg_json_set(fb, "correct_answer",
                    json_stringn(masked.data ? masked.data : "", masked.len)) != TG_OK) {
        json_decref(fb);
        fb = NULL;
    }
    tg_buf_free(&masked);
    char key[128];
    snprintf(key, sizeof(key), "feedback/%s", turn);
    char *s = fb ? tg_json_dumps(fb, JSON_COMPACT) : NULL;
    /* the audit log keeps the judgement, not the text; made first, so that
     * no feedback is stored without its leaf */
    json_t *leaf = json_pack("{s:s, s:s, s:b, s:b, s:I}", "kind", "feedback", "turn_id", turn,
                             "good", good, "has_correct_answer", ca != NULL, "at", (json_int_t)now);
    int rc = s && leaf ? tg_store_blob_put(api->p->store, key, s, strlen(s)) : TG_E_NOMEM;
    if (!rc)
        rc = tg_audit_append_json(api->p->audit, leaf, NULL);
    json_decref(leaf);
    free(s);
    json_decref(j);
    if (rc) {
        json_decref(fb);
        tg_api_send_error(api, req, route, 503, "server_error", "storage_unavailable",
                          "the feedback could not be stored");
        return;
    }
    json_object_del(fb, "correct_answer");
    if (tg_json_set(fb, "object", json_string("feedback"))) {
        json_decref(fb);
        fb = NULL; /* 500 out of memory */
    }
    tg_api_send_json(api, req, route, 201, fb);
}

static void monitor(struct tg_api *api, struct tg_http_req *req)
{
    if (!tg_api_person(api, req, "/v1/monitor", TG_ANYONE))
        return;
    if (!api->monitor) {
        tg_api_send_error(api, req, "/v1/monitor", 503, "server_error", "monitor_unavailable",
                          "the monitor is not running");
        return;
    }
    check(api, req, false);
}

bool tg_api_feedback(struct tg_api *api, struct tg_http_req *req)
{
    const char *m = tg_http_method(req), *path = tg_http_path(req);
    if (!strcmp(path, "/v1/feedback") && !strcmp(m, "POST"))
        feedback(api, req);
    else if (!strcmp(path, "/v1/monitor") && !strcmp(m, "GET"))
        monitor(api, req);
    else
        return false;
    return true;
}
