/*
 * events.c - Server-Sent Events for the reviewer console and the chat page.
 *
 *   GET /v1/reviews/events   (reviews.c)  every review event, for people
 *   GET /chat/api/events     (web.c)      answers to one customer's held turns
 *
 * A console stream gets `event: review` with {event, review_id, state,
 * queue, at} whenever a task is created, claimed, decided, warned about,
 * handed off, answered by an agent or closed; the console refetches what it
 * shows.  A chat stream gets `event: answer` with the final answer of a
 * held turn of its own customer only (matched on the task's started_by),
 * with the task's people_answers: the texts the policies put around a
 * person's answer, so the page can show a disclaimer apart from it.
 * A comment line every 15 s keeps proxies from closing idle streams.
 *
 * A subscriber that does not read (a stalled tab, a dead network path the
 * kernel has not noticed) would keep every event in memory: once more than
 * MAX_UNSENT bytes wait unsent for it, its stream is cut and it is
 * forgotten.  The page's EventSource reconnects and refetches what it shows.
 */
#include "api/api.h"

#include "pipeline/pipeline.h"
#include "store/store.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#define MAX_STREAMS 1024
#define PING_S 15
#define MAX_UNSENT (1024 * 1024)

struct sub {
    struct tg_events *ev;
    struct tg_http_req *req;
    bool chat;
    char customer[128];
    struct sub *prev, *next;
};

struct tg_events {
    struct sub *subs;
    size_t n;
    struct event *ping;
};

static void unlink_sub(struct sub *s)
{
    struct tg_events *e = s->ev;
    if (s->prev)
        s->prev->next = s->next;
    else
        e->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    e->n--;
    tg_free(s);
}

static void gone_cb(struct tg_http_req *req, void *arg)
{
    struct sub *s = arg;
    tg_http_stream_end(req); /* frees the request: the client is gone */
    unlink_sub(s);
}

/* Write to s's stream, or cut it when its reader is too far behind;
 * false when s was cut (and freed). */
static bool write_or_cut(struct sub *s, const char *data, size_t len)
{
    if (tg_http_unsent(s->req) > MAX_UNSENT) {
        tg_http_abort(s->req);
        unlink_sub(s);
        return false;
    }
    tg_http_stream_write(s->req, data, len);
    return true;
}

static void ping_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_events *e = arg;
    struct sub *next;
    for (struct sub *s = e->subs; s; s = next) {
        next = s->next;
        write_or_cut(s, ": ping\n\n", 8);
    }
}

int tg_events_start(struct tg_api *api)
{
    struct tg_events *e = tg_calloc(1, sizeof(*e));
    if (!e)
        return TG_E_NOMEM;
    e->ping = event_new(api->p->base, -1, EV_PERSIST, ping_cb, e);
    struct timeval tv = {PING_S, 0};
    if (!e->ping || event_add(e->ping, &tv)) {
        if (e->ping)
            event_free(e->ping);
        tg_free(e);
        return TG_E_NOMEM;
    }
    api->events = e;
    return TG_OK;
}

void tg_events_stop(struct tg_api *api)
{
    struct tg_events *e = api->events;
    if (!e)
        return;
    while (e->subs) {
        struct sub *s = e->subs;
        tg_http_on_gone(s->req, NULL, NULL);
        tg_http_stream_end(s->req);
        unlink_sub(s);
    }
    event_free(e->ping);
    tg_free(e);
    api->events = NULL;
}

void tg_events_subscribe(struct tg_api *api, struct tg_http_req *req, const char *customer)
{
    struct tg_events *e = api->events;
    struct sub *s = e && e->n < MAX_STREAMS && !api->draining ? tg_calloc(1, sizeof(*s)) : NULL;
    if (!s) {
        tg_http_error(req, 503, "server_error", "too_many_streams",
                      "no more event streams can be opened now; retry later");
        return;
    }
    s->ev = e;
    s->req = req;
    s->chat = customer != NULL;
    /* tasks name their customer by the stored form (a pseudonym): match on it */
    if (customer && tg_store_pseudonym(api->p->store, customer, s->customer) != TG_OK)
        tg_strlcpy(s->customer, customer, sizeof(s->customer));
    s->next = e->subs;
    if (e->subs)
        e->subs->prev = s;
    e->subs = s;
    e->n++;
    tg_http_on_gone(req, gone_cb, s);
    tg_http_stream_begin(req, 200, "text/event-stream",
                         "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
    static const char hello[] = "retry: 2000\n: connected\n\n";
    tg_http_stream_write(req, hello, sizeof(hello) - 1);
}

/* "event: NAME\ndata: JSON\n\n" to one stream, which may be cut (and s freed). */
static void send_event(struct sub *s, const char *name, const json_t *data)
{
    char *js = tg_json_dumps(data, JSON_COMPACT);
    if (!js)
        return;
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    tg_buf_printf(&b, "event: %s\ndata: %s\n\n", name, js);
    if (b.data)
        write_or_cut(s, b.data, b.len);
    tg_buf_free(&b);
    free(js);
}

void tg_api_review_event(struct tg_api *api, const char *id, const char *event, const json_t *task)
{
    struct tg_events *e = api->events;
    /* a hand-off opened or closed: where the customer's next message goes */
    if (task && api->p && tg_pipeline_task_changed(api->p, task))
        tg_error("review %s: out of memory: the conversation's next message may not reach its "
                 "agent",
                 id);
    if (!e || !e->subs)
        return;
    int64_t now = tg_clock_wall_ms();
    json_t *console =
        json_pack("{s:s, s:s, s:s, s:s?, s:I}", "event", event, "review_id", id, "state",
                  task ? tg_json_str(task, "state", "") : "pending", "queue",
                  task ? tg_json_str(task, "queue", NULL) : NULL, "at", (json_int_t)now);
    /* what a customer may see: the final answer of their own turn */
    bool for_chat = task && (!strcmp(event, "decided") || !strcmp(event, "handed_off") ||
                             !strcmp(event, "agent_reply"));
    const char *owner = task ? tg_json_str(task, "started_by", "") : "";
    json_t *chat = NULL;
    if (for_chat && owner[0]) {
        const char *answer = tg_json_str(task, "answer", "");
        const json_t *replies = json_object_get(task, "agent_replies");
        if (!strcmp(event, "agent_reply") && json_array_size(replies))
            answer = tg_json_str(json_array_get(replies, json_array_size(replies) - 1), "text", "");
        chat = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "event", event, "review_id", id,
                         "turn_id", tg_json_str(task, "turn_id", ""), "state",
                         tg_json_str(task, "state", ""), "answer", answer, "from",
                         !strcmp(event, "agent_reply") ? "agent"
                         : !strcmp(event, "decided")   ? "reviewer"
                                                       : "trustgate");
        /* the texts the policies put around a person's answer (disclaimers:
         * {prefix: [...], suffix: [...]}), so the page shows them apart */
        json_t *pa = json_object_get(task, "people_answers");
        if (chat && json_is_object(pa) && tg_json_set(chat, "people_answers", json_incref(pa))) {
            /* never the answer without its banner: the page reads it on its next poll */
            json_decref(chat);
            chat = NULL;
        }
    }
    struct sub *next;
    for (struct sub *s = e->subs; s; s = next) {
        next = s->next;
        if (!s->chat && console)
            send_event(s, "review", console);
        else if (s->chat && chat && !strcmp(s->customer, owner))
            send_event(s, "answer", chat);
    }
    json_decref(console);
    json_decref(chat);
}
