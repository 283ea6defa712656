/*
 * reviews.c - the review queue over HTTP, for reviewers and the channels
 * that wait for held answers:
 *
 *   GET  /v1/reviews?state=S         the queue (reviewer token)
 *   GET  /v1/reviews/{id}            one task with its whole context
 *   POST /v1/reviews/{id}/claim      one reviewer at a time; the claim lapses
 *   POST /v1/reviews/{id}/decision   {action, text?, reason?, attestations: [...]}
 *   GET  /v1/handoffs                tasks handed to human agents (SLA breached)
 *   GET  /v1/turns/{id}              a turn's record and, when it was held, its
 *                                    task's state and final answer (API key)
 *
 * Reviewers authenticate with a bearer token from the config's `users:`
 * list ({name, role, token}); tokens are kept as SHA-256 hashes and
 * compared in constant time.  Decisions go through tg_review_decide, so a
 * decision without every required attestation is refused here whatever
 * the client sends, and every decision is an audit leaf written by this
 * process, the data directory's one writer.
 */
#include "http/api_int.h"

#include "audit/audit.h"
#include "metrics/metrics.h"
#include "pipeline/pipeline.h"
#include "review/review.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool four_eyes(const struct tg_api *api);

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

/* The user whose token the request carries (their `users:` entry), or NULL. */
static const json_t *user_of(struct tg_api *api, const struct tg_http_req *req)
{
    const char *tok = tg_api_bearer(req);
    const json_t *who = NULL;
    uint8_t h[TG_SHA256_LEN], want[TG_SHA256_LEN];
    size_t i;
    json_t *u;
    if (!tok)
        return NULL;
    tg_sha256(tok, strlen(tok), h);
    json_array_foreach(json_object_get(api->p->cfg->root, "users"), i, u)
    {
        const char *t = tg_json_str(u, "token", NULL);
        if (!t || !tg_json_str(u, "name", NULL))
            continue;
        tg_sha256(t, strlen(t), want);
        if (tg_ct_equal(h, want, sizeof(h)) && !who)
            who = u;
    }
    return who;
}

/* Anyone in `users:` may read the queues; only reviewers and supervisors
 * may claim and decide (agents take the hand-offs). */
static const char *reviewer(struct tg_api *api, const struct tg_http_req *req)
{
    const json_t *u = user_of(api, req);
    return u ? tg_json_str(u, "name", NULL) : NULL;
}

static const char *decider(struct tg_api *api, const struct tg_http_req *req)
{
    const json_t *u = user_of(api, req);
    const char *role = tg_json_str(u, "role", "reviewer");
    return u && (!strcmp(role, "reviewer") || !strcmp(role, "supervisor"))
               ? tg_json_str(u, "name", NULL)
               : NULL;
}

/* Does the request carry one of the API keys (for channels polling turns)? */
static bool api_key_ok(struct tg_api *api, const struct tg_http_req *req)
{
    const char *k = tg_api_bearer(req);
    uint8_t h[TG_SHA256_LEN];
    bool ok = false;
    if (!k)
        return false;
    tg_sha256(k, strlen(k), h);
    for (size_t i = 0; i < api->p->cfg->n_api_keys; i++)
        ok |= tg_ct_equal(h, api->p->cfg->api_keys[i].sha256, TG_SHA256_LEN);
    return ok;
}

/* The value of a query parameter (no decoding needed for our names and states). */
static bool query_param(const char *q, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    while (q && *q) {
        if (strncmp(q, name, n) == 0 && q[n] == '=') {
            const char *v = q + n + 1, *e = strchr(v, '&');
            size_t l = e ? (size_t)(e - v) : strlen(v);
            if (l >= outlen)
                return false;
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

static void list(struct tg_api *api, struct tg_http_req *req)
{
    char state[32];
    json_t *tasks = NULL;
    if (!reviewer(api, req)) {
        fail(api, req, "/v1/reviews", 401, "invalid_token", "a reviewer token is required");
        return;
    }
    bool has_state = query_param(tg_http_query(req), "state", state, sizeof(state));
    if (tg_store_review_list(api->p->store, has_state ? state : NULL, 500, &tasks)) {
        fail(api, req, "/v1/reviews", 503, "storage_unavailable", "cannot read the queue");
        return;
    }
    send(api, req, "/v1/reviews", 200, json_pack("{s:s, s:o}", "object", "list", "data", tasks));
}

static void get_task(struct tg_api *api, struct tg_http_req *req, const char *id)
{
    json_t *task = NULL;
    if (!reviewer(api, req)) {
        fail(api, req, "/v1/reviews/{id}", 401, "invalid_token", "a reviewer token is required");
        return;
    }
    if (tg_store_review_get(api->p->store, id, NULL, &task)) {
        fail(api, req, "/v1/reviews/{id}", 404, "unknown_review", "no such review task");
        return;
    }
    send(api, req, "/v1/reviews/{id}", 200, task);
}

static void decide(struct tg_api *api, struct tg_http_req *req, const char *id)
{
    const char *route = "/v1/reviews/{id}/decision";
    const char *who = decider(api, req);
    char err[256] = "";
    size_t len;
    const char *body = tg_http_body(req, &len);
    json_error_t jerr;
    json_t *j = NULL;
    enum tg_review_action action;
    if (!who) {
        fail(api, req, route, 403, "not_a_reviewer", "a reviewer or supervisor token is required");
        return;
    }
    j = json_loadb(body, len, 0, &jerr);
    if (!json_is_object(j) || tg_review_action_parse(tg_json_str(j, "action", NULL), &action)) {
        fail(api, req, route, 400, "invalid_decision",
             "the body must be {\"action\": \"approve\"|\"edit\"|\"reject\", \"text\"?, "
             "\"reason\"?, \"attestations\": [...]}");
        json_decref(j);
        return;
    }
    json_t *att = json_object_get(j, "attestations");
    struct tg_review_decision d = {
        .action = action,
        .text = tg_json_str(j, "text", NULL),
        .reason = tg_json_str(j, "reason", NULL),
        .attestations = json_is_array(att) ? att : NULL,
        .actor = who,
        .key = api->p->pseudonym_key,
        .keylen = sizeof(api->p->pseudonym_key),
        .four_eyes = four_eyes(api),
    };
    json_t *task = NULL;
    int rc = tg_review_decide(api->p->store, api->p->audit, id, &d, &task, err, sizeof(err));
    json_decref(j);
    if (!rc)
        tg_api_settled(api, task);
    if (rc) {
        int status = rc == TG_E_NOTFOUND    ? 404
                     : rc == TG_E_CONFLICT  ? 409
                     : rc == TG_E_FORBIDDEN ? 403
                     : rc == TG_E_INVAL     ? 422
                                            : 503;
        fail(api, req, route, status, rc == TG_E_INVAL ? "decision_refused" : "review_error", err);
        return;
    }
    send(api, req, route, 200, task);
}

/* review.claim_lapse (default 5 min) and review.four_eyes (default true) from the config. */
static int64_t claim_lapse_ms(const struct tg_api *api)
{
    int64_t ms = 300000;
    const json_t *v = json_object_get(json_object_get(api->p->cfg->root, "review"), "claim_lapse");
    if (json_is_string(v))
        tg_parse_duration_ms(json_string_value(v), &ms);
    else if (json_is_integer(v))
        ms = json_integer_value(v);
    return ms;
}

static bool four_eyes(const struct tg_api *api)
{
    return tg_json_bool(json_object_get(api->p->cfg->root, "review"), "four_eyes", true);
}

static void claim(struct tg_api *api, struct tg_http_req *req, const char *id)
{
    const char *route = "/v1/reviews/{id}/claim";
    const char *who = decider(api, req);
    char err[256] = "";
    json_t *task = NULL;
    if (!who) {
        fail(api, req, route, 401, "invalid_token", "a reviewer token is required");
        return;
    }
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
    send(api, req, route, 200, task);
}

static void get_turn(struct tg_api *api, struct tg_http_req *req, const char *id)
{
    const char *route = "/v1/turns/{id}";
    json_t *rec = NULL;
    if (!api_key_ok(api, req)) {
        fail(api, req, route, 401, "invalid_api_key", "Incorrect or missing API key.");
        return;
    }
    if (tg_store_turn_get(api->p->store, id, &rec)) {
        fail(api, req, route, 404, "unknown_turn", "no such turn");
        return;
    }
    json_t *out = json_pack("{s:s, s:o}", "object", "turn", "record", rec);
    const char *rid = tg_json_str(rec, "review_id", NULL);
    json_t *task = NULL;
    if (out && rid && tg_store_review_get(api->p->store, rid, NULL, &task) == TG_OK) {
        json_object_set_new(
            out, "review",
            json_pack(
                "{s:s, s:O, s:O}", "id", rid, "state", json_object_get(task, "state"), "answer",
                json_object_get(task, "answer") ? json_object_get(task, "answer") : json_null()));
        json_decref(task);
    }
    send(api, req, route, 200, out);
}

static void handoffs(struct tg_api *api, struct tg_http_req *req)
{
    json_t *tasks = NULL;
    if (!reviewer(api, req)) {
        fail(api, req, "/v1/handoffs", 401, "invalid_token",
             "a reviewer or agent token is required");
        return;
    }
    if (tg_store_review_list(api->p->store, "handed_off", 500, &tasks)) {
        fail(api, req, "/v1/handoffs", 503, "storage_unavailable", "cannot read the queue");
        return;
    }
    send(api, req, "/v1/handoffs", 200, json_pack("{s:s, s:o}", "object", "list", "data", tasks));
}

bool tg_api_reviews(struct tg_api *api, struct tg_http_req *req)
{
    const char *m = tg_http_method(req), *path = tg_http_path(req);
    char id[TG_ID_MAX];
    /* Reads see committed rows; a task made by a turn just answered may
     * still be queued for the writer (flush ends its group window). */
    if (strcmp(path, "/v1/reviews") == 0 || tg_str_has_prefix(path, "/v1/reviews/") ||
        tg_str_has_prefix(path, "/v1/turns/") || strcmp(path, "/v1/handoffs") == 0)
        tg_store_flush(api->p->store);
    if (strcmp(path, "/v1/handoffs") == 0) {
        if (strcmp(m, "GET") != 0)
            return false;
        handoffs(api, req);
        return true;
    }
    if (strcmp(path, "/v1/reviews") == 0) {
        if (strcmp(m, "GET") != 0)
            return false;
        list(api, req);
        return true;
    }
    if (tg_str_has_prefix(path, "/v1/turns/")) {
        if (strcmp(m, "GET") != 0 || tg_strlcpy(id, path + 10, sizeof(id)) >= sizeof(id) ||
            strchr(id, '/'))
            return false;
        get_turn(api, req, id);
        return true;
    }
    if (!tg_str_has_prefix(path, "/v1/reviews/"))
        return false;
    const char *rest = path + 12, *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (!n || n >= sizeof(id))
        return false;
    memcpy(id, rest, n);
    id[n] = '\0';
    if (!slash && strcmp(m, "GET") == 0) {
        get_task(api, req, id);
        return true;
    }
    if (slash && strcmp(slash, "/decision") == 0 && strcmp(m, "POST") == 0) {
        decide(api, req, id);
        return true;
    }
    if (slash && strcmp(slash, "/claim") == 0 && strcmp(m, "POST") == 0) {
        claim(api, req, id);
        return true;
    }
    return false;
}
