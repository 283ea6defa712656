/*
 * api.c - the gateway's HTTP routes.
 *
 * The route table below is the single list of what the server answers;
 * a path that exists with another method gets 405 with an Allow header,
 * anything else 404, both as OpenAI-style JSON errors.
 */
#include "api/api_int.h"
#include "api/console.h"

#include "metrics/metrics.h"
#include "pipeline/pipeline.h"
#include "store/store.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef void (*route_fn)(struct tg_api *api, struct tg_http_req *req);

struct route {
    const char *method;
    const char *path;
    route_fn fn;
};

static void chat_completions(struct tg_api *api, struct tg_http_req *req);
static void list_models(struct tg_api *api, struct tg_http_req *req);
static void healthz(struct tg_api *api, struct tg_http_req *req);
static void readyz(struct tg_api *api, struct tg_http_req *req);
static void metrics(struct tg_api *api, struct tg_http_req *req);

static const struct route routes[] = {
    {"POST", "/v1/chat/completions", chat_completions},
    {"GET", "/v1/models", list_models},
    {"GET", "/healthz", healthz},
    {"GET", "/readyz", readyz},
    {"GET", "/metrics", metrics},
};

/* ------------------------------------------------------------ helpers */

void tg_api_send_json(struct tg_api *api, struct tg_http_req *req, const char *route, int status,
                      json_t *body)
{
    char *s = body ? tg_json_dumps(body, JSON_COMPACT) : NULL;
    tg_metrics_request(api->p->metrics, route, s ? status : 500);
    if (s)
        tg_http_respond(req, status, "application/json", NULL, s, strlen(s));
    else
        tg_http_error(req, 500, "server_error", "internal_error", "out of memory");
    free(s);
    json_decref(body);
}

/* An answer waiting for the store's commit (tg_api_send_committed). */
struct committed_send {
    struct tg_commit_wait wait; /* first: the callback gets it back */
    struct tg_api *api;
    struct tg_http_req *req;
    const char *route;
    int status;
    json_t *body;
    struct tg_api_notice notice;
};

static void committed_cb(struct tg_commit_wait *w, int err)
{
    struct committed_send *c = (struct committed_send *)w;
    if (err) {
        tg_api_send_error(c->api, c->req, c->route, 503, "server_error", "storage_unavailable",
                          "the act could not be recorded; nothing was changed for others to see");
        json_decref(c->body);
    } else {
        const char *id = tg_json_str(c->body, "id", NULL);
        if (c->notice.settled)
            tg_api_answer_waiters(c->api, c->body);
        for (size_t i = 0; id && i < TG_ARRAY_LEN(c->notice.events); i++)
            if (c->notice.events[i])
                tg_api_review_event(c->api, id, c->notice.events[i], c->body);
        tg_api_send_json(c->api, c->req, c->route, c->status, c->body);
    }
    tg_free(c);
}

void tg_api_send_committed(struct tg_api *api, struct tg_http_req *req, const char *route,
                           int status, json_t *body, const struct tg_api_notice *notice)
{
    struct committed_send *c = tg_calloc(1, sizeof(*c));
    if (!c) {
        json_decref(body);
        tg_api_send_error(api, req, route, 503, "server_error", "out_of_memory", "out of memory");
        return;
    }
    c->api = api;
    c->req = req;
    c->route = route;
    c->status = status;
    c->body = body;
    if (notice)
        c->notice = *notice;
    c->wait.cb = committed_cb;
    tg_pipeline_after_commit(api->p, &c->wait);
}

void tg_api_send_error(struct tg_api *api, struct tg_http_req *req, const char *route, int status,
                       const char *type, const char *code, const char *message)
{
    tg_metrics_request(api->p->metrics, route, status);
    tg_http_error(req, status, type, code, message);
}

const char *tg_api_bearer(const struct tg_http_req *req)
{
    const char *h = tg_http_header(req, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

bool tg_api_key_ok(const struct tg_api *api, const struct tg_http_req *req)
{
    return tg_config_api_key(api->p->cfg, tg_api_bearer(req)) != NULL;
}

/* ------------------------------------------------------------ chat */

struct chat_ctx {
    struct tg_api *api;
    struct tg_http_req *req; /* valid until answered, even after the client left */
    struct tg_turn *turn;
    bool streaming; /* stream-through: the SSE response has begun */
};

/* Stream-through: send released text as it passes the rules. */
static void chat_release_cb(struct tg_turn *t, const char *text, size_t len, void *arg)
{
    struct chat_ctx *cc = arg;
    char id[TG_ID_MAX + 16];
    snprintf(id, sizeof(id), "chatcmpl-%s", t->admit.id + 5);
    struct tg_completion c = {
        .id = id, .created = t->run.created_ms / 1000, .model = t->admit.model};
    struct tg_buf out;
    tg_buf_init(&out, TG_BUF_UNLIMITED);
    if (!cc->streaming) {
        cc->streaming = true;
        tg_http_stream_begin(cc->req, 200, "text/event-stream",
                             "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
        tg_wire_sse_part(&c, TG_SSE_OPEN, NULL, 0, &out);
    }
    tg_wire_sse_part(&c, TG_SSE_TEXT, text, len, &out);
    if (out.data)
        tg_http_stream_write(cc->req, out.data, out.len);
    tg_buf_free(&out);
}

static void chat_done_cb(struct tg_turn *t, void *arg)
{
    struct chat_ctx *cc = arg;
    struct tg_api *api = cc->api;
    /* The turn was recorded either way.  A client that left gets nothing,
     * but its request is still answered so the server can free it; 499 is
     * nginx's convention for "client closed the connection". */
    bool gone = tg_http_gone(cc->req);
    tg_http_on_gone(cc->req, NULL, NULL); /* cc goes with the turn */
    if (cc->streaming) {
        /* the rest of a streamed-through answer, and its end */
        tg_metrics_request(api->p->metrics, "/v1/chat/completions", gone ? 499 : 200);
        tg_http_stream_write(cc->req, t->reply.body.data ? t->reply.body.data : "",
                             t->reply.body.len);
        tg_http_stream_end(cc->req);
        tg_turn_free(t);
        tg_free(cc);
        return;
    }
    /* A held turn whose client asked to wait gets the final answer later. */
    const char *wait = tg_http_header(cc->req, "X-Trustgate-Wait");
    int64_t secs = 0;
    if (!gone && t->review_id[0] && t->http_status == 200 && wait &&
        tg_parse_i64(wait, &secs) == TG_OK && secs > 0 &&
        tg_api_wait(api, cc->req, t, TG_MIN(secs, 600)) == TG_OK) {
        tg_turn_free(t);
        tg_free(cc);
        return;
    }
    tg_metrics_request(api->p->metrics, "/v1/chat/completions", gone ? 499 : t->http_status);
    tg_http_respond(cc->req, t->http_status, t->reply.type,
                    strcmp(t->reply.type, "text/event-stream") == 0
                        ? "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
                        : NULL,
                    t->reply.body.data, t->reply.body.len);
    tg_turn_free(t);
    tg_free(cc);
}

/* The client left mid-turn: the ladder makes no further attempts. */
static void chat_gone_cb(struct tg_http_req *req, void *arg)
{
    (void)req;
    struct chat_ctx *cc = arg;
    tg_turn_client_gone(cc->turn);
}

int tg_api_start_turn(struct tg_api *api, struct tg_http_req *req, const struct tg_turn_in *in)
{
    struct chat_ctx *cc = tg_calloc(1, sizeof(*cc));
    struct tg_turn *t = cc ? tg_turn_new(api->p) : NULL;
    if (!t) {
        tg_free(cc);
        return TG_E_NOMEM;
    }
    cc->api = api;
    cc->req = req;
    cc->turn = t;
    t->channel = in->channel;
    t->api_key = in->api_key;
    t->trusted = in->trusted;
    t->body = in->body;
    t->body_len = in->body_len;
    t->customer_hint = in->customer;
    t->done_cb = chat_done_cb;
    t->done_arg = cc;
    t->release_cb = chat_release_cb;
    t->release_arg = cc;
    tg_http_on_gone(req, chat_gone_cb, cc);
    tg_pipeline_start(t);
    return TG_OK;
}

static void chat_completions(struct tg_api *api, struct tg_http_req *req)
{
    struct tg_turn_in in = {.channel = "api", .api_key = tg_api_bearer(req)};
    in.body = tg_http_body(req, &in.body_len);
    in.customer = tg_http_header(req, api->p->cfg->customer_header);
    if (tg_api_start_turn(api, req, &in))
        tg_api_send_error(api, req, "/v1/chat/completions", 503, "server_error", "overloaded",
                          "out of memory");
}

/* ------------------------------------------------------------ status */

/* Add a model entry unless data lists the id already.  TG_OK or TG_E_NOMEM. */
static int add_model(json_t *data, const char *id, const char *owner, int64_t created)
{
    size_t i;
    json_t *m;
    bool listed = false;
    json_array_foreach(data, i, m) listed = listed || !strcmp(tg_json_str(m, "id", ""), id);
    return listed
               ? TG_OK
               : tg_json_push(data, json_pack("{s:s, s:s, s:I, s:s}", "id", id, "object", "model",
                                              "created", (json_int_t)created, "owned_by", owner));
}

/*
 * What the routes serve: the configured `models` (the names clients use),
 * then every upstream model a backend or ladder rung is fixed to, owned by
 * that backend.  A backend without a fixed model passes the client's model
 * name through, so any name the configured list does not hold reaches it.
 */
static void list_models(struct tg_api *api, struct tg_http_req *req)
{
    const struct tg_config *cfg = api->p->cfg;
    int64_t created = api->started_ms / 1000;
    json_t *data = json_array();
    int rc = data ? TG_OK : TG_E_NOMEM;
    size_t i;
    for (i = 0; !rc && i < cfg->n_models; i++)
        rc = add_model(data, cfg->models[i], "trustgate", created);
    for (i = 0; !rc && i < cfg->n_backends; i++)
        if (cfg->backends[i].type == TG_BACKEND_OPENAI && cfg->backends[i].model)
            rc = add_model(data, cfg->backends[i].model, cfg->backends[i].name, created);
    for (i = 0; !rc && i < cfg->ladder.n_rungs; i++) {
        const struct tg_rung_conf *rung = &cfg->ladder.rungs[i];
        if (rung->model)
            rc = add_model(data, rung->model, rung->backend ? rung->backend : "trustgate", created);
    }
    if (rc) {
        json_decref(data);
        data = NULL; /* the pack below fails: 500 out of memory */
    }
    tg_api_send_json(api, req, "/v1/models", 200,
                     json_pack("{s:s, s:o}", "object", "list", "data", data));
}

static void healthz(struct tg_api *api, struct tg_http_req *req)
{
    tg_api_send_json(api, req, "/healthz", 200,
                     json_pack("{s:s, s:s}", "status", "ok", "version", TG_VERSION));
}

static void readyz(struct tg_api *api, struct tg_http_req *req)
{
    /* Ready means: not draining, and the store accepts writes. */
    int rc = tg_store_flush(api->p->store);
    bool ready = !api->draining && rc == TG_OK;
    tg_api_send_json(api, req, "/readyz", ready ? 200 : 503,
                     json_pack("{s:s, s:s, s:s, s:I}", "status", ready ? "ready" : "not_ready",
                               "store", rc == TG_OK ? "ok" : tg_err_str(rc), "state",
                               api->draining ? "draining" : "serving", "inflight",
                               (json_int_t)api->p->inflight));
}

static void metrics(struct tg_api *api, struct tg_http_req *req)
{
    struct tg_buf out;
    tg_buf_init(&out, TG_BUF_UNLIMITED);
    tg_metrics_request(api->p->metrics, "/metrics", 200);
    if (tg_metrics_render(api->p->metrics, &out) == TG_OK)
        tg_http_respond(req, 200, "text/plain; version=0.0.4", NULL, out.data, out.len);
    else
        tg_http_error(req, 500, "server_error", "internal_error", "out of memory");
    tg_buf_free(&out);
}

/* ------------------------------------------------------------ dispatch */

void tg_api_handle(struct tg_http_req *req, void *arg)
{
    struct tg_api *api = arg;
    const char *method = tg_http_method(req);
    const char *path = tg_http_path(req);
    char allow[64] = "";
    if (tg_api_reviews(api, req) || tg_api_console(api, req) || tg_api_feedback(api, req) ||
        tg_api_governance(api, req) || tg_api_workflows(api, req) || tg_api_audit(api, req) ||
        tg_api_web(api, req))
        return;
    for (size_t i = 0; i < TG_ARRAY_LEN(routes); i++) {
        if (strcmp(routes[i].path, path) != 0)
            continue;
        bool head_get = strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0;
        if (strcmp(routes[i].method, method) == 0 || head_get) {
            routes[i].fn(api, req);
            return;
        }
        size_t used = strlen(allow);
        snprintf(allow + used, sizeof(allow) - used, "%s%s", used ? ", " : "", routes[i].method);
    }
    char msg[300];
    if (allow[0]) {
        char extra[96];
        snprintf(msg, sizeof(msg), "method %s is not allowed on %s; use %s", method, path, allow);
        snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
        json_t *e = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", msg, "type",
                              "invalid_request_error", "param", "code", "method_not_allowed");
        char *s = e ? tg_json_dumps(e, JSON_COMPACT) : NULL;
        tg_metrics_request(api->p->metrics, "other", 405);
        if (s)
            tg_http_respond(req, 405, "application/json", extra, s, strlen(s));
        else
            tg_http_error(req, 500, "server_error", "internal_error", "out of memory");
        free(s);
        json_decref(e);
        return;
    }
    snprintf(msg, sizeof(msg), "no route for %s %s", method, path);
    tg_api_send_error(api, req, "other", 404, "invalid_request_error", "unknown_route", msg);
}

struct event *tg_api_every(struct tg_api *api, int64_t every_ms,
                           void (*cb)(int fd, short what, void *arg), void *arg)
{
    struct event *ev = event_new(api->p->base, -1, EV_PERSIST, cb, arg);
    struct timeval tv = {(time_t)(every_ms / 1000), (suseconds_t)(every_ms % 1000) * 1000};
    if (ev && event_add(ev, &tv)) {
        event_free(ev);
        ev = NULL;
    }
    return ev;
}

bool tg_api_query(const char *q, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    while (q && *q) {
        if (strncmp(q, name, n) == 0 && q[n] == '=') {
            const char *v = q + n + 1, *e = strchr(v, '&');
            size_t l = e ? (size_t)(e - v) : strlen(v);
            if (l >= outlen)
                l = 0; /* too long for any value we take: present, and empty (invalid) */
            memcpy(out, v, l);
            out[l] = '\0';
            return true;
        }
        q = strchr(q, '&');
        if (q)
            q++;
    }
    return false;
}
