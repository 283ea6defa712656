/*
 * api.h - the gateway's HTTP API on the transport of net/http.h: the
 * OpenAI-compatible chat route, reviews and hand-offs, the console, live
 * events, feedback and the FAR monitor, governance, the audit log's proofs
 * and the web pages; the background worker that keeps work whose cost
 * grows with the data off the event loop; signed webhooks.
 */
#ifndef TG_API_H
#define TG_API_H

#include "net/http.h"

struct tg_pipeline;
struct tg_turn;
struct tg_wait;
struct tg_webhooks;
struct tg_wf_engine;

struct tg_webhook_conf;
struct tg_store;
struct event_base;
/*
 * Signed webhooks (webhook.c) for the config's `webhooks:` targets (n of
 * them, borrowed: the config outlives the sender), through an outbox in
 * st watched on base; NULL when there are none.  queue writes one
 * delivery of the event for every target to the store, uncommitted (TG_OK
 * with no targets); notify also commits them; stop joins the sender thread
 * (what is not delivered stays in the outbox for the next start).
 */
struct tg_webhooks *tg_webhooks_start(const struct tg_webhook_conf *targets, size_t n,
                                      struct event_base *base, struct tg_store *st);
int tg_webhooks_queue(struct tg_webhooks *w, const json_t *event);
void tg_webhooks_notify(struct tg_webhooks *w, const json_t *event);
void tg_webhooks_stop(struct tg_webhooks *w);

/* The gateway's HTTP API: routes requests to turns and status endpoints. */
struct tg_api {
    struct tg_pipeline *p;
    struct tg_http_server *srv;
    bool draining; /* /readyz answers 503 once shutdown began */
    int64_t started_ms;
    struct tg_wait *waiters;          /* requests long-polling for a held answer (wait.c) */
    struct tg_webhooks *webhooks;     /* signed notifications of settled reviews, or NULL */
    struct tg_console *console;       /* console sessions and logins (console.c), or NULL */
    struct tg_events *events;         /* live event streams to consoles and chat pages (events.c) */
    struct tg_monitor *monitor;       /* daily FAR and its alarm (feedback.c) */
    struct tg_fairness_mon *fairness; /* the live fairness gate (governance.c) */
    struct tg_background *background; /* the worker for reads that grow with the data */
    struct tg_wf_engine *workflows;   /* the config's workflows (workflow.h), or NULL */
};

/*
 * Keep req open until the review of held turn t settles (tg_api_answer_waiters)
 * or seconds pass (then the holding reply t built is sent).  The turn may
 * be freed after the call.  TG_OK, or an error and req is not taken.
 */
int tg_api_wait(struct tg_api *api, struct tg_http_req *req, const struct tg_turn *t,
                int64_t seconds);
/* The requests waiting on this node for task's turn, answered (the task
 * was decided or handed off, here or on another node). */
void tg_api_answer_waiters(struct tg_api *api, const json_t *task);
/* tg_review_on_settle's hook (arg: the api): the webhook deliveries of a
 * task being settled, queued to commit with it. */
int tg_api_settle_hook(void *arg, struct tg_store *st, const json_t *task);
/* Answer every waiting request with its holding reply (shutdown). */
void tg_api_release_waiters(struct tg_api *api);

/*
 * Live events (events.c): Server-Sent Events streams for consoles (every
 * review event) and chat pages (the answers to one customer's held turns).
 * tg_api_review_event publishes one event about task id (task may be NULL
 * when only the id is known); stop ends every stream (shutdown).
 */
int tg_events_start(struct tg_api *api);
void tg_events_stop(struct tg_api *api);
/* Keep req open as an event stream; customer NULL: a console, else that customer's chat. */
void tg_events_subscribe(struct tg_api *api, struct tg_http_req *req, const char *customer);
void tg_api_review_event(struct tg_api *api, const char *id, const char *event, const json_t *task);

/* Feedback and the FAR monitor (feedback.c): start reads eval.monitor. */
int tg_monitor_start(struct tg_api *api);
void tg_monitor_stop(struct tg_api *api);
bool tg_api_feedback(struct tg_api *api, struct tg_http_req *req);

/* Experiments, the fairness gate and the release freeze (governance.c): start
 * reads the config's fairness section. */
int tg_fairness_start(struct tg_api *api);
void tg_fairness_stop(struct tg_api *api);
bool tg_api_governance(struct tg_api *api, struct tg_http_req *req);

/* Stop the background worker (background.c): finished jobs are answered,
 * queued ones refused (shutdown).  Call it after tg_pipeline_settle(), so
 * no job still waits for a commit. */
void tg_api_background_stop(struct tg_api *api);

/* Workflows and their runs (workflows.c); false when not one of them. */
bool tg_api_workflows(struct tg_api *api, struct tg_http_req *req);

/* The audit log's checkpoints and proofs (audit.c); false when not one of them. */
bool tg_api_audit(struct tg_api *api, struct tg_http_req *req);

/* The web pages (web.c): static files, the chat page's API; false when not one of them. */
bool tg_api_web(struct tg_api *api, struct tg_http_req *req);

/* The tg_http_handler_cb for the API; arg is a struct tg_api. */
void tg_api_handle(struct tg_http_req *req, void *arg);
/* The review and turn routes (reviews.c); false when the request is not one of them. */
bool tg_api_reviews(struct tg_api *api, struct tg_http_req *req);

#endif
