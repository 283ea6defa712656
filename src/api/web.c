/*
 * web.c - the pages the daemon serves from its own binary, and the chat
 * page's channel.
 *
 *   GET  /                  the customer chat page (web.chat: true)
 *   GET  /console/          the reviewer console (when there are users)
 *   GET  /X                 the embedded file web/X
 *   POST /chat/api/messages {"text"}: one customer message as a turn
 *   GET  /chat/api/events   the answers to this customer's held turns (SSE)
 *   GET  /chat/api/texts    {texts: {LANG: {chat_title, chat_intro,
 *                           chat_examples}}}: the config's web.texts that
 *                           the chat page shows (the pages have only
 *                           generic words of their own)
 *
 * Files carry a strong ETag (304 on If-None-Match) and a Content Security
 * Policy that allows only the daemon's own scripts and styles.  The chat
 * page identifies its customer by a random cookie set when the page loads
 * (HttpOnly, SameSite=Strict); its messages must be JSON, which a form on
 * another site cannot send without the browser asking first.
 */
#include "api/api_int.h"
#include "api/assets.h"
#include "api/console.h"

#include "metrics/metrics.h"
#include "pipeline/pipeline.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_CHAT_TEXT 4000

static const char security_headers[] =
    "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n";

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < TG_ARRAY_LEN(types); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static bool console_on(const struct tg_api *api)
{
    return api->console && api->p->cfg->web_console;
}

static bool chat_on(const struct tg_api *api)
{
    return api->p->cfg->web_chat;
}

/* The chat page's customer id from its cookie: "web_" and 24 hex digits. */
static bool chat_customer(const struct tg_http_req *req, char out[32])
{
    if (!tg_api_cookie(req, "tg_chat", out, 32) || strlen(out) != 28 ||
        strncmp(out, "web_", 4) != 0)
        return false;
    for (const char *p = out + 4; *p; p++)
        if (!strchr("0123456789abcdef", *p))
            return false;
    return true;
}

static void serve_asset(struct tg_api *api, struct tg_http_req *req, const struct tg_asset *a,
                        bool new_customer)
{
    char extra[1024];
    size_t used =
        (size_t)snprintf(extra, sizeof(extra), "%sETag: %s\r\nCache-Control: no-cache\r\n",
                         security_headers, a->etag);
    if (new_customer) {
        uint8_t raw[12];
        char hex[25];
        if (tg_random_bytes(raw, sizeof(raw)) == TG_OK) {
            tg_hex_encode(raw, sizeof(raw), hex);
            snprintf(extra + used, sizeof(extra) - used,
                     "Set-Cookie: tg_chat=web_%s; Path=/; HttpOnly; SameSite=Strict; "
                     "Max-Age=2592000\r\n",
                     hex);
        }
    }
    const char *inm = tg_http_header(req, "If-None-Match");
    if (inm && strstr(inm, a->etag) && !new_customer) {
        tg_metrics_request(api->p->metrics, "web", 304);
        tg_http_respond(req, 304, content_type(a->path), extra, NULL, 0);
        return;
    }
    tg_metrics_request(api->p->metrics, "web", 200);
    tg_http_respond(req, 200, content_type(a->path), extra, (const char *)a->data, a->len);
}

static const struct tg_asset *find_asset(const char *path)
{
    for (size_t i = 0; i < tg_n_assets; i++)
        if (strcmp(tg_assets[i].path, path) == 0)
            return &tg_assets[i];
    return NULL;
}

static void chat_message(struct tg_api *api, struct tg_http_req *req)
{
    const char *route = "/chat/api/messages";
    char customer[32];
    const char *ctype = tg_http_header(req, "Content-Type");
    size_t len;
    const char *body = tg_http_body(req, &len);
    if (!chat_customer(req, customer)) {
        tg_api_send_error(api, req, route, 400, "invalid_request_error", "no_chat_session",
                          "no chat session: load the chat page first");
        return;
    }
    if (!ctype || strncasecmp(ctype, "application/json", 16) != 0) {
        tg_api_send_error(api, req, route, 415, "invalid_request_error", "unsupported_media_type",
                          "send the message as application/json");
        return;
    }
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *text = tg_json_str(j, "text", NULL);
    if (!text || !text[0] || strlen(text) > MAX_CHAT_TEXT) {
        json_decref(j);
        tg_api_send_error(api, req, route, 400, "invalid_request_error", "invalid_message",
                          "the body must be {\"text\": \"...\"} with 1 to 4000 bytes of text");
        return;
    }
    const struct tg_config *cfg = api->p->cfg;
    json_t *turn = json_pack("{s:s, s:[{s:s, s:s}], s:s}", "model",
                             cfg->n_models ? cfg->models[0] : "trustgate", "messages", "role",
                             "user", "content", text, "user", customer);
    char *s = turn ? tg_json_dumps(turn, JSON_COMPACT) : NULL;
    json_decref(turn);
    json_decref(j);
    /* the turn reads its body until it answers: keep it with the request */
    char *copy = s ? tg_arena_strdup(tg_http_arena(req), s) : NULL;
    free(s);
    struct tg_turn_in in = {.channel = "web", .trusted = true, .body = copy};
    in.body_len = copy ? strlen(copy) : 0;
    if (!copy || tg_api_start_turn(api, req, &in))
        tg_api_send_error(api, req, route, 503, "server_error", "overloaded", "out of memory");
}

static void chat_events(struct tg_api *api, struct tg_http_req *req)
{
    char customer[32];
    if (!chat_customer(req, customer)) {
        tg_api_send_error(api, req, "/chat/api/events", 400, "invalid_request_error",
                          "no_chat_session", "no chat session: load the chat page first");
        return;
    }
    tg_metrics_request(api->p->metrics, "/chat/api/events", 200);
    tg_events_subscribe(api, req, customer);
}

/* One language's texts of the chat page, {chat_title, chat_intro, chat_examples} with what the
 * config gives; a new object, or NULL when out of memory. */
static json_t *chat_texts_of(const struct tg_web_texts *w)
{
    json_t *o = json_object(), *ex = json_array();
    int rc = o && ex ? TG_OK : TG_E_NOMEM;
    if (!rc && w->chat_title)
        rc = tg_json_set(o, "chat_title", json_string(w->chat_title));
    if (!rc && w->chat_intro)
        rc = tg_json_set(o, "chat_intro", json_string(w->chat_intro));
    for (size_t k = 0; !rc && k < w->n_chat_examples; k++)
        rc = tg_json_push(ex, json_string(w->chat_examples[k]));
    if (!rc && w->n_chat_examples)
        rc = tg_json_set(o, "chat_examples", json_incref(ex));
    json_decref(ex);
    if (rc) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* The chat page's texts from web.texts, per language. */
static void chat_texts(struct tg_api *api, struct tg_http_req *req)
{
    const struct tg_config *cfg = api->p->cfg;
    json_t *body = json_pack("{s:{}}", "texts"), *all = json_object_get(body, "texts");
    int rc = all ? TG_OK : TG_E_NOMEM;
    for (size_t i = 0; !rc && i < cfg->n_web_texts; i++) {
        const struct tg_web_texts *w = &cfg->web_texts[i];
        rc = tg_json_set(all, w->lang, chat_texts_of(w));
    }
    if (rc) {
        json_decref(body);
        body = NULL;
    }
    tg_api_send_json(api, req, "/chat/api/texts", 200, body);
}

bool tg_api_web(struct tg_api *api, struct tg_http_req *req)
{
    const char *m = tg_http_method(req), *path = tg_http_path(req);
    bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    char customer[32];
    if (tg_str_has_prefix(path, "/chat/api/")) {
        if (!chat_on(api))
            tg_api_send_error(api, req, "other", 404, "invalid_request_error", "chat_disabled",
                              "the chat page is off (web.chat in the config)");
        else if (strcmp(path, "/chat/api/messages") == 0 && strcmp(m, "POST") == 0)
            chat_message(api, req);
        else if (strcmp(path, "/chat/api/events") == 0 && get)
            chat_events(api, req);
        else if (strcmp(path, "/chat/api/texts") == 0 && get)
            chat_texts(api, req);
        else
            return false;
        return true;
    }
    if (!get)
        return false;
    if (strcmp(path, "/console") == 0 && console_on(api)) {
        tg_metrics_request(api->p->metrics, "web", 301);
        tg_http_respond(req, 301, "text/plain", "Location: /console/\r\n", NULL, 0);
        return true;
    }
    const char *file = strcmp(path, "/") == 0           ? "/chat/index.html"
                       : strcmp(path, "/console/") == 0 ? "/console/index.html"
                                                        : path;
    bool allowed = tg_str_has_prefix(file, "/chat/")      ? chat_on(api)
                   : tg_str_has_prefix(file, "/console/") ? console_on(api)
                                                          : chat_on(api) || console_on(api);
    const struct tg_asset *a = allowed ? find_asset(file) : NULL;
    if (!a)
        return false;
    serve_asset(api, req, a,
                strcmp(file, "/chat/index.html") == 0 && !chat_customer(req, customer));
    return true;
}
