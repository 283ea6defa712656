/*
 * ask.c - a question to the deployment's ladder outside a chat turn (a
 * workflow's model step, workflow.h): an optional system prompt and one
 * user message, answered by the rungs, breakers and timeouts of the
 * release in force, as internal work (shed first under overload).  The
 * answer always comes back from the loop, never before tg_pipeline_ask
 * returns.  See pipeline.h.
 */
#include "pipeline/pipeline.h"

#include "backend/backend.h"
#include "ladder/ladder.h"

#include <event2/event.h>
#include <string.h>

struct ask_call {
    struct tg_pipeline *p;
    json_t *messages;
    char *prompt;
    struct tg_backend_request rq;
    struct tg_dispatch *d;
    struct event *ev; /* hands the outcome to done on the loop */
    void (*done)(void *arg, int err, const char *text, const char *model);
    void *arg;
    /* the outcome, kept until ev runs */
    int err;
    char *text;
    char model[96];
};

static void call_free(struct ask_call *c)
{
    if (c->ev)
        event_free(c->ev);
    json_decref(c->messages);
    tg_free(c->prompt);
    tg_free(c->text);
    tg_free(c);
}

static void deliver_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ask_call *c = arg;
    c->done(c->arg, c->err, c->text ? c->text : "", c->model[0] ? c->model : NULL);
    call_free(c);
}

static void answered_cb(struct tg_dispatch_result *res, void *arg)
{
    struct ask_call *c = arg;
    c->d = NULL;
    if (res->err) {
        c->err = res->err;
        c->text = tg_strdup(res->message);
    } else if (res->human || res->holding) {
        /* a person, or a holding reply: no answer to work with */
        c->err = TG_E_UNAVAILABLE;
        c->text =
            tg_strdup(res->human ? "the ladder ended with a person" : "only a holding reply came");
    } else {
        c->text = tg_strndup(res->content ? res->content : "", res->len);
        c->err = c->text ? TG_OK : TG_E_NOMEM;
        tg_strlcpy(c->model, res->model, sizeof(c->model));
    }
    struct timeval now = {0, 0};
    evtimer_add(c->ev, &now);
}

int tg_pipeline_ask(void *pipeline, const char *system, const char *prompt,
                    void (*done)(void *arg, int err, const char *text, const char *model),
                    void *arg, void **call)
{
    struct tg_pipeline *p = pipeline;
    struct ask_call *c = tg_calloc(1, sizeof(*c));
    if (!c)
        return TG_E_NOMEM;
    c->p = p;
    c->done = done;
    c->arg = arg;
    c->prompt = tg_strdup(prompt);
    c->messages = json_array();
    c->ev = evtimer_new(p->base, deliver_cb, c);
    int rc = c->prompt && c->messages && c->ev ? TG_OK : TG_E_NOMEM;
    if (!rc && system)
        rc =
            tg_json_push(c->messages, json_pack("{s:s, s:s}", "role", "system", "content", system));
    if (!rc)
        rc = tg_json_push(c->messages, json_pack("{s:s, s:s}", "role", "user", "content", prompt));
    if (rc) {
        call_free(c);
        return rc;
    }
    c->rq = (struct tg_backend_request){
        .messages = c->messages, .question = c->prompt, .intent_probability = -1};
    struct tg_dispatch_opts opts = {.priority = TG_PRIORITY_INTERNAL};
    rc = tg_dispatch_start(p->main.ladder, p->base, &c->rq, &opts, answered_cb, c, &c->d);
    if (rc) {
        call_free(c);
        return rc;
    }
    *call = c;
    return TG_OK;
}

void tg_pipeline_ask_cancel(void *call)
{
    struct ask_call *c = call;
    if (!c)
        return;
    if (c->d)
        tg_dispatch_cancel(c->d);
    call_free(c);
}
