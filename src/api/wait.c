/*
 * wait.c - long-polling for held answers.  A client that sends
 * "X-Trustgate-Wait: SECONDS" with a chat request whose turn is held for a
 * person keeps its request open: it is answered with the final answer as
 * soon as a reviewer decides (or the SLA hands the turn to a human agent),
 * or with the holding reply when the wait runs out.  The turn itself was
 * recorded and answered (held) before the wait began; waiting only delays
 * the HTTP response.
 */
#include "api/api.h"

#include "core/jw.h"
#include "metrics/metrics.h"
#include "pipeline/pipeline.h"
#include "workflow/workflow.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>

struct tg_wait {
    struct tg_api *api;
    struct tg_http_req *req;
    char review_id[TG_ID_MAX];
    char id[TG_ID_MAX + 16]; /* chatcmpl-... */
    char model[128];
    int64_t created;
    bool stream;
    char *summary;         /* the turn's trustgate object (JSON text) */
    struct tg_buf holding; /* the reply already built: sent when the wait runs out */
    const char *holding_type;
    struct event *timer;
    struct tg_wait *prev, *next;
};

static void unlink_wait(struct tg_wait *w)
{
    struct tg_api *api = w->api;
    if (w->prev)
        w->prev->next = w->next;
    else
        api->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    event_free(w->timer);
    tg_free(w->summary);
    tg_buf_free(&w->holding);
    tg_free(w);
}

static void respond(struct tg_wait *w, const char *ctype, const char *body, size_t len)
{
    tg_metrics_request(w->api->p->metrics, "/v1/chat/completions",
                       tg_http_gone(w->req) ? 499 : 200);
    tg_http_respond(w->req, 200, ctype,
                    !strcmp(ctype, "text/event-stream")
                        ? "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
                        : NULL,
                    body, len);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_wait *w = arg;
    respond(w, w->holding_type, w->holding.data ? w->holding.data : "", w->holding.len);
    unlink_wait(w);
}

int tg_api_wait(struct tg_api *api, struct tg_http_req *req, const struct tg_turn *t,
                int64_t seconds)
{
    struct tg_wait *w = tg_calloc(1, sizeof(*w));
    struct tg_jw jw;
    struct tg_buf sum;
    if (!w)
        return TG_E_NOMEM;
    w->api = api;
    w->req = req;
    tg_strlcpy(w->review_id, t->review_id, sizeof(w->review_id));
    snprintf(w->id, sizeof(w->id), "chatcmpl-%s", t->admit.id + 5);
    tg_strlcpy(w->model, t->admit.model ? t->admit.model : "trustgate", sizeof(w->model));
    w->created = t->run.created_ms / 1000;
    w->stream = t->admit.stream;
    w->holding_type = t->reply.type;
    tg_buf_init(&w->holding, TG_BUF_UNLIMITED);
    tg_buf_init(&sum, TG_BUF_UNLIMITED);
    tg_jw_init(&jw, &sum);
    tg_turn_write_summary(t, &jw);
    int rc = tg_jw_finish(&jw);
    if (!rc)
        rc = tg_buf_append(&w->holding, t->reply.body.data, t->reply.body.len);
    w->summary = rc ? NULL : tg_buf_steal(&sum, NULL);
    tg_buf_free(&sum);
    w->timer = evtimer_new(api->p->base, timeout_cb, w);
    if (rc || !w->summary || !w->timer) {
        if (w->timer)
            event_free(w->timer);
        tg_free(w->summary);
        tg_buf_free(&w->holding);
        tg_free(w);
        return rc ? rc : TG_E_NOMEM;
    }
    struct timeval tv = {(time_t)seconds, 0};
    evtimer_add(w->timer, &tv);
    w->next = api->waiters;
    if (api->waiters)
        api->waiters->prev = w;
    api->waiters = w;
    return TG_OK;
}

int tg_api_settle_hook(void *arg, struct tg_store *st, const json_t *task)
{
    struct tg_api *api = arg;
    (void)st; /* the outbox is in the same store */
    const char *state = tg_json_str(task, "state", "");
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:I}", "event",
                           !strcmp(state, "handed_off") ? "review.handed_off" : "review.decided",
                           "review_id", tg_json_str(task, "id", ""), "turn_id",
                           tg_json_str(task, "turn_id", ""), "conversation_id",
                           tg_json_str(task, "conversation_id", ""), "state", state, "answer",
                           tg_json_str(task, "answer", NULL), "at", (json_int_t)tg_clock_wall_ms());
    int rc = ev ? tg_webhooks_queue(api->webhooks, ev) : TG_E_NOMEM;
    json_decref(ev);
    return rc;
}

void tg_api_answer_waiters(struct tg_api *api, const json_t *task)
{
    tg_wf_review_settled(api->workflows, task); /* a run waiting for this decision goes on */
    const char *rid = tg_json_str(task, "id", "");
    struct tg_wait *w = api->waiters;
    while (w) {
        struct tg_wait *next = w->next;
        if (strcmp(w->review_id, rid) == 0) {
            /* the final answer, with the review's outcome in the trustgate object */
            json_t *tg = json_loads(w->summary, 0, NULL);
            const json_t *dec = json_object_get(task, "decision");
            int rc = tg_json_set(tg, "review",
                                 json_pack("{s:s, s:s, s:s?, s:s?}", "id", rid, "state",
                                           tg_json_str(task, "state", ""), "action",
                                           tg_json_str(dec, "action", NULL), "actor",
                                           tg_json_str(dec, "actor", NULL)));
            char *extra = rc ? NULL : tg_json_dumps(tg, JSON_COMPACT);
            const char *answer = tg_json_str(task, "answer", "");
            struct tg_completion c = {
                .id = w->id,
                .created = w->created,
                .model = w->model,
                .content = answer,
                .content_len = strlen(answer),
                .finish_reason = "stop",
                .extra_key = extra ? "trustgate" : NULL,
                .extra = extra,
                .extra_len = extra ? strlen(extra) : 0,
            };
            struct tg_buf out;
            tg_buf_init(&out, TG_BUF_UNLIMITED);
            /* without its trustgate object the answer is not sent: the holding reply is */
            if (!extra)
                rc = TG_E_NOMEM;
            else
                rc = w->stream ? tg_wire_sse(&c, 48, &out) : tg_wire_completion(&c, &out);
            if (rc)
                respond(w, w->holding_type, w->holding.data, w->holding.len);
            else
                respond(w, w->stream ? "text/event-stream" : "application/json", out.data, out.len);
            tg_buf_free(&out);
            free(extra);
            json_decref(tg);
            unlink_wait(w);
        }
        w = next;
    }
}

void tg_api_release_waiters(struct tg_api *api)
{
    while (api->waiters) {
        struct tg_wait *w = api->waiters;
        respond(w, w->holding_type, w->holding.data ? w->holding.data : "", w->holding.len);
        unlink_wait(w);
    }
}
