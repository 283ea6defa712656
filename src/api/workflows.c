/*
 * workflows.c - the workflow API (workflow.h):
 *
 *   GET  /v1/workflows                     the workflows and their steps
 *   POST /v1/workflows/{name}/runs         {input, conversation_id?}: start a run (201)
 *   GET  /v1/workflow-runs/{id}            a run as stored: state, current step, every
 *                                          step's input, output, status and times, the reply
 *
 * A channel (API key) or a person (token or console session) may call them.
 */
#include "api/api_int.h"

#include "pipeline/pipeline.h"
#include "workflow/workflow.h"

/* An API key, else a person of any role (answered 401/403 otherwise); who
 * in who (the key's name is not kept: "channel"). */
static bool allowed(struct tg_api *api, struct tg_http_req *req, const char *route, char *who,
                    size_t n)
{
    if (tg_api_key_ok(api, req)) {
        tg_strlcpy(who, "channel", n);
        return true;
    }
    const char *p = tg_api_person(api, req, route, TG_ANYONE);
    if (p)
        tg_strlcpy(who, p, n);
    return p != NULL;
}

static void list(struct tg_api *api, struct tg_http_req *req)
{
    static const char *const kinds[] = {"tool", "decide", "search", "review", "reply", "model"};
    json_t *out = json_array();
    for (size_t i = 0; out && i < tg_wf_count(api->workflows); i++) {
        const struct tg_workflow *wf = tg_wf_at(api->workflows, i);
        json_t *steps = json_array();
        for (size_t k = 0; steps && k < wf->n_steps; k++)
            if (tg_json_push(steps, json_pack("{s:s, s:s}", "id", wf->steps[k].id, "kind",
                                              kinds[wf->steps[k].kind]))) {
                json_decref(steps);
                steps = NULL;
            }
        if (!steps || tg_json_push(out, json_pack("{s:s, s:s?, s:O, s:o, s:s}", "name", wf->name,
                                                  "description", wf->description, "input",
                                                  wf->input, "steps", steps, "hash", wf->hash))) {
            json_decref(out);
            out = NULL;
        }
    }
    if (!out)
        tg_api_send_error(api, req, "/v1/workflows", 503, "server_error", "out_of_memory",
                          "out of memory");
    else
        tg_api_send_json(api, req, "/v1/workflows", 200, json_pack("{s:o}", "workflows", out));
}

static void start(struct tg_api *api, struct tg_http_req *req, const char *name, const char *who)
{
    const char *route = "/v1/workflows/{name}/runs";
    size_t len;
    const char *body = tg_http_body(req, &len);
    json_error_t jerr;
    json_t *j = json_loadb(body, len, 0, &jerr);
    char id[TG_ID_MAX], err[512] = "";
    if (!json_is_object(j)) {
        tg_api_send_error(api, req, route, 400, "invalid_request_error", "invalid_json",
                          "the body must be a JSON object {input, conversation_id?}");
        json_decref(j);
        return;
    }
    const json_t *conv = json_object_get(j, "conversation_id");
    if (conv && !json_is_string(conv)) {
        tg_api_send_error(api, req, route, 400, "invalid_request_error", "invalid_value",
                          "conversation_id must be a string");
        json_decref(j);
        return;
    }
    int rc = tg_wf_start(api->workflows, name, json_object_get(j, "input"),
                         conv ? json_string_value(conv) : NULL, who, id, err, sizeof(err));
    json_decref(j);
    if (rc == TG_E_NOTFOUND) {
        tg_api_send_error(api, req, route, 404, "invalid_request_error", "unknown_workflow", err);
    } else if (rc == TG_E_INVAL) {
        tg_api_send_error(api, req, route, 400, "invalid_request_error", "invalid_input", err);
    } else if (rc) {
        tg_api_send_error(api, req, route, 503, "server_error", "storage_unavailable",
                          err[0] ? err : tg_err_str(rc));
    } else {
        json_t *run = tg_wf_run_get(api->p->store, id);
        if (run)
            tg_api_send_json(api, req, route, 201, run);
        else
            tg_api_send_json(api, req, route, 201, json_pack("{s:s}", "id", id));
    }
}

bool tg_api_workflows(struct tg_api *api, struct tg_http_req *req)
{
    const char *m = tg_http_method(req), *path = tg_http_path(req);
    char who[128];
    if (!strcmp(path, "/v1/workflows")) {
        if (strcmp(m, "GET") != 0)
            tg_api_send_error(api, req, path, 405, "invalid_request_error", "method_not_allowed",
                              "GET only");
        else if (allowed(api, req, path, who, sizeof(who)))
            list(api, req);
        return true;
    }
    if (tg_str_has_prefix(path, "/v1/workflows/") && strlen(path) > strlen("/v1/workflows//runs") &&
        !strcmp(path + strlen(path) - strlen("/runs"), "/runs")) {
        const char *route = "/v1/workflows/{name}/runs";
        char name[256];
        size_t n = strlen(path) - strlen("/v1/workflows/") - strlen("/runs");
        if (strcmp(m, "POST") != 0)
            tg_api_send_error(api, req, route, 405, "invalid_request_error", "method_not_allowed",
                              "POST only");
        else if (n >= sizeof(name) || memchr(path + strlen("/v1/workflows/"), '/', n))
            tg_api_send_error(api, req, route, 404, "invalid_request_error", "unknown_workflow",
                              "no workflow of that name");
        else if (allowed(api, req, route, who, sizeof(who))) {
            tg_strlcpy(name, path + strlen("/v1/workflows/"), n + 1);
            start(api, req, name, who);
        }
        return true;
    }
    if (tg_str_has_prefix(path, "/v1/workflow-runs/")) {
        const char *route = "/v1/workflow-runs/{id}", *id = path + strlen("/v1/workflow-runs/");
        if (strcmp(m, "GET") != 0) {
            tg_api_send_error(api, req, route, 405, "invalid_request_error", "method_not_allowed",
                              "GET only");
            return true;
        }
        if (!allowed(api, req, route, who, sizeof(who)))
            return true;
        json_t *run = id[0] && !strchr(id, '/') ? tg_wf_run_get(api->p->store, id) : NULL;
        if (run)
            tg_api_send_json(api, req, route, 200, run);
        else
            tg_api_send_error(api, req, route, 404, "invalid_request_error", "unknown_run",
                              "no workflow run with that id");
        return true;
    }
    return false;
}
