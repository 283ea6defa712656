/*
 * openai.c - the upstream backend: an OpenAI-compatible chat-completions
 * server (vLLM, llama.cpp, Ollama, cloud APIs) reached with libcurl's multi
 * interface driven by the libevent loop.
 *
 * One curl multi handle per backend holds the keep-alive pool.  Each call
 * has its own timers beside curl's: a header-wait timer from the moment the
 * request is started until the response head arrives, then (streaming) a
 * time-to-first-token limit until the first answer token, then an idle
 * timer re-armed by every byte, so a silent upstream is detected without
 * waiting for the total timeout.  A stream that ends without a
 * finish reason or [DONE] is a failure, never a short success.
 */
#include "backend/backend_int.h"
#include "backend/chunks.h"
#include "core/httpdate.h"
#include "core/jscan.h"
#include "core/jw.h"
#include "metrics/metrics.h"
#include "net/curlev.h"

#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <event2/event.h>

struct openai {
    struct tg_backend *b;
    struct event_base *base;
    struct tg_metrics *metrics;
    struct tg_curlev *cv;
    char *url;
    struct curl_slist *headers;
    CURL **idle; /* easy handles kept for reuse */
    size_t nidle, idle_cap;
    size_t active;
};

struct tg_backend_call {
    struct tg_backend_call_head head;
    struct openai *o;
    CURL *easy;
    tg_backend_cb cb;
    void *arg;
    struct event *timer; /* header wait, then stream idle */
    char *req_body;
    struct tg_buf raw;     /* non-stream body, or error body */
    struct tg_chunks chunks; /* stream: the answer so far */
    bool stream;
    bool got_head;
    long status;
    struct tg_backend_result res;
    char errbuf[CURL_ERROR_SIZE];
};

/* ------------------------------------------------------------ completion */

static void call_release(struct tg_backend_call *c)
{
    struct openai *o = c->o;
    if (c->easy) {
        tg_curlev_remove(o->cv, c->easy);
        if (o->nidle < o->idle_cap)
            o->idle[o->nidle++] = c->easy;
        else
            curl_easy_cleanup(c->easy);
    }
    o->active--;
    if (c->timer)
        event_free(c->timer);
    tg_free(c->req_body);
    tg_buf_free(&c->raw);
    tg_chunks_free(&c->chunks);
    tg_free(c->res.content);
    json_decref(c->res.tool_calls);
    json_decref(c->res.logprobs);
    tg_free(c);
}

static void call_finish(struct tg_backend_call *c)
{
    struct openai *o = c->o;
    if (c->res.err && o->metrics)
        tg_metrics_backend_error(o->metrics, o->b->conf->name, c->res.kind);
    if (c->res.err)
        tg_warn("backend %s: %s", o->b->conf->name, c->res.message);
    c->cb(&c->res, c->arg);
    call_release(c);
}

/* usage and model of a whole completion (the top-level members). */
static void scan_meta(struct tg_backend_call *c, const char *j, size_t n)
{
    static const char *const model[] = {"model"};
    static const char *const usage[] = {"usage"};
    static const char *const pt[] = {"prompt_tokens"};
    static const char *const ct[] = {"completion_tokens"};
    const char *u;
    size_t ul;
    tg_jscan_str_at(j, n, model, 1, c->res.model, sizeof(c->res.model));
    if (tg_jscan_find(j, n, usage, 1, &u, &ul) == TG_OK && u[0] == '{') {
        c->res.prompt_tokens = tg_jscan_int_at(u, ul, pt, 1, 0);
        c->res.completion_tokens = tg_jscan_int_at(u, ul, ct, 1, 0);
    }
}

/* The value of one member of the object at j, or NULL. */
static const char *member(const char *j, size_t n, const char *key, size_t *vl)
{
    const char *path[] = {key};
    const char *v;
    return tg_jscan_find(j, n, path, 1, &v, vl) == TG_OK ? v : NULL;
}

/* A JSON value as a jansson tree (tool calls, logprobs: rare and handed on
 * whole); NULL when absent or null. */
static json_t *tree(const char *v, size_t vl)
{
    if (!v || tg_jscan_is_null(v, vl))
        return NULL;
    return json_loadb(v, vl, JSON_DECODE_ANY, NULL);
}

/*
 * Tool calls in the shape every OpenAI client reads: an id, type
 * "function", and arguments as a JSON text (a server that writes them as
 * an object has them serialised).  TG_OK; TG_E_UPSTREAM when a call has no
 * function name; TG_E_NOMEM.
 */
static int normalize_tool_calls(json_t *calls)
{
    size_t i;
    json_t *call;
    int rc = TG_OK;
    json_array_foreach(calls, i, call)
    {
        json_t *fn = json_object_get(call, "function");
        if (!rc && (!json_is_object(fn) || !json_is_string(json_object_get(fn, "name"))))
            rc = TG_E_UPSTREAM;
        if (!rc && !json_is_string(json_object_get(call, "id")))
            rc = tg_json_set(call, "id", json_string(""));
        if (!rc && !json_is_string(json_object_get(call, "type")))
            rc = tg_json_set(call, "type", json_string("function"));
        json_t *args = rc ? NULL : json_object_get(fn, "arguments");
        if (!rc && !json_is_string(args)) {
            char *text = args ? tg_json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            rc = args && !text ? TG_E_NOMEM
                               : tg_json_set(fn, "arguments", json_string(text ? text : "{}"));
            free(text);
        }
    }
    return rc;
}

/* Fill the result from a complete non-stream body.  The message's content
 * may be null when it carries tool calls.  The body is validated once;
 * each lookup after that scans only the member it is in. */
static void parse_completion(struct tg_backend_call *c)
{
    static const char *const choice0[] = {"choices", "#0"};
    static const char *const finish[] = {"finish_reason"};
    const char *j = c->raw.data ? c->raw.data : "";
    const char *ch = NULL, *msg = NULL, *v;
    size_t n = c->raw.len, chl = 0, ml = 0, vl;
    struct tg_buf text;
    tg_buf_init(&text, 16u << 20);
    if (tg_jscan_validate(j, n) == TG_OK && tg_jscan_find(j, n, choice0, 2, &ch, &chl) == TG_OK &&
        ch[0] == '{')
        msg = member(ch, chl, "message", &ml);
    if (!msg || msg[0] != '{') {
        tg_backend_result_fail(&c->res, TG_E_UPSTREAM, "bad_response",
                               "upstream answered 200 without a chat.completion message");
        goto out;
    }
    v = member(msg, ml, "tool_calls", &vl);
    c->res.tool_calls = v && v[0] == '[' ? tree(v, vl) : NULL;
    if (c->res.tool_calls && json_array_size(c->res.tool_calls) == 0) {
        json_decref(c->res.tool_calls);
        c->res.tool_calls = NULL;
    }
    int nrc = c->res.tool_calls ? normalize_tool_calls(c->res.tool_calls) : TG_OK;
    if (nrc == TG_E_NOMEM) {
        tg_backend_result_fail(&c->res, TG_E_NOMEM, "nomem", "out of memory");
        goto out;
    }
    if (nrc) {
        tg_backend_result_fail(&c->res, TG_E_UPSTREAM, "bad_response",
                               "upstream answered with a tool call without a function name");
        goto out;
    }
    v = member(msg, ml, "content", &vl);
    if (v && v[0] == '"') {
        if (tg_jscan_string(v, vl, &text)) {
            tg_backend_result_fail(&c->res, TG_E_UPSTREAM, "bad_response",
                                   "upstream answer is too large");
            goto out;
        }
    } else if (!c->res.tool_calls) {
        tg_backend_result_fail(&c->res, TG_E_UPSTREAM, "bad_response",
                               "upstream answered 200 with neither content nor tool calls");
        goto out;
    }
    if (memchr(text.data ? text.data : "", '\0', text.len)) {
        tg_backend_result_fail(&c->res, TG_E_UPSTREAM, "bad_response",
                               "upstream answer contains a NUL character");
        goto out;
    }
    if (tg_buf_reserve(&text, 0)) {
        tg_backend_result_fail(&c->res, TG_E_NOMEM, "nomem", "out of memory");
        goto out;
    }
    c->res.content = tg_buf_steal(&text, &c->res.len);
    v = member(ch, chl, "logprobs", &vl);
    c->res.logprobs = v && v[0] == '{' ? tree(v, vl) : NULL;
    tg_jscan_str_at(ch, chl, finish, 1, c->res.finish_reason, sizeof(c->res.finish_reason));
    scan_meta(c, j, n);
    if (!c->res.finish_reason[0])
        tg_strlcpy(c->res.finish_reason, c->res.tool_calls ? "tool_calls" : "stop",
                   sizeof(c->res.finish_reason));
out:
    tg_buf_free(&text);
}

/* Fill the result from a stream read to its end. */
static void finish_stream(struct tg_backend_call *c)
{
    struct tg_chunks *k = &c->chunks;
    int err;
    tg_chunks_finish(k);
    tg_strlcpy(c->res.model, k->model, sizeof(c->res.model));
    tg_strlcpy(c->res.finish_reason, k->finish_reason, sizeof(c->res.finish_reason));
    c->res.prompt_tokens = k->prompt_tokens;
    c->res.completion_tokens = k->completion_tokens;
    c->res.malformed_events = k->malformed;
    if (k->error_seen) {
        tg_backend_result_fail(&c->res, TG_E_UPSTREAM, "stream_error",
                               "upstream reported an error in its stream: %s", k->error);
    } else if (k->malformed) {
        /* A lost event may have carried part of the answer: never deliver a gap. */
        tg_backend_result_fail(&c->res, TG_E_UPSTREAM, "malformed_stream",
                               "upstream stream had %d unparseable event(s)", k->malformed);
    } else if (!k->done_seen && !k->finish_reason[0]) {
        tg_backend_result_fail(&c->res, TG_E_UPSTREAM, "stream_cut",
                               "upstream stream ended before its final event (%zu bytes received)",
                               k->content.len);
    } else if (memchr(k->content.data ? k->content.data : "", '\0', k->content.len)) {
        tg_backend_result_fail(&c->res, TG_E_UPSTREAM, "bad_response",
                               "upstream answer contains a NUL character");
    } else if (!k->content.len && !k->n_tools && !k->events) {
        tg_backend_result_fail(&c->res, TG_E_UPSTREAM, "bad_response",
                               "upstream stream carried no chunk");
    } else {
        c->res.tool_calls = tg_chunks_tool_calls(k, &err);
        c->res.logprobs = json_incref(k->logprobs);
        if (!err)
            err = tg_buf_reserve(&k->content, 0);
        c->res.content = err ? NULL : tg_buf_steal(&k->content, &c->res.len);
        if (!c->res.content)
            tg_backend_result_fail(&c->res, TG_E_NOMEM, "nomem", "out of memory");
        if (!c->res.finish_reason[0])
            tg_strlcpy(c->res.finish_reason, c->res.tool_calls ? "tool_calls" : "stop",
                       sizeof(c->res.finish_reason));
    }
}

/* Describe a non-2xx answer using the upstream's own error message if any. */
static void fail_status(struct tg_backend_call *c)
{
    char kind[32];
    json_t *root = json_loadb(c->raw.data ? c->raw.data : "", c->raw.len, 0, NULL);
    const char *msg = tg_json_str(json_object_get(root, "error"), "message", NULL);
    tg_strlcpy(c->res.code, tg_json_str(json_object_get(root, "error"), "code", ""),
               sizeof(c->res.code));
    snprintf(kind, sizeof(kind), "status_%ld", c->status);
    tg_backend_result_fail(
        &c->res, c->status == 408 || c->status == 504 ? TG_E_TIMEOUT : TG_E_UPSTREAM, kind,
        "upstream answered HTTP %ld%s%s", c->status, msg ? ": " : "", msg ? msg : "");
    json_decref(root);
}

static void on_transfer_done(struct tg_backend_call *c, CURLcode code)
{
    c->res.status = (int)c->status;
    if (code == CURLE_OPERATION_TIMEDOUT) {
        curl_off_t connected = 0;
        curl_easy_getinfo(c->easy, CURLINFO_CONNECT_TIME_T, &connected);
        tg_backend_result_fail(&c->res, TG_E_TIMEOUT,
                               c->got_head    ? "total_timeout"
                               : connected > 0 ? "header_timeout"
                                               : "connect_timeout",
                               "upstream timed out: %s", c->errbuf[0] ? c->errbuf : "timeout");
    } else if (code != CURLE_OK && !(c->stream && c->got_head && c->status == 200)) {
        tg_backend_result_fail(
            &c->res, TG_E_UPSTREAM, code == CURLE_COULDNT_CONNECT ? "connect" : "transport",
            "upstream transfer failed: %s", c->errbuf[0] ? c->errbuf : curl_easy_strerror(code));
    } else if (c->status < 200 || c->status > 299) {
        fail_status(c);
    } else if (!c->stream) {
        parse_completion(c);
    } else {
        finish_stream(c);
    }
    call_finish(c);
}

/* A transfer of this backend ended (tg_curlev). */
static void transfer_cb(CURL *easy, CURLcode result, void *arg)
{
    (void)arg;
    struct tg_backend_call *c = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
    on_transfer_done(c, result);
}

/* ------------------------------------------------------------ call timers */

/* The limit from the response head to the first answer token. */
static int64_t first_token_ms(const struct tg_backend_conf *conf)
{
    return conf->first_token_timeout_ms > 0 ? conf->first_token_timeout_ms : conf->idle_timeout_ms;
}

static void call_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_backend_call *c = arg;
    struct openai *o = c->o;
    if (!c->got_head)
        tg_backend_result_fail(&c->res, TG_E_TIMEOUT, "header_timeout",
                               "upstream sent no response head within %lld ms",
                               (long long)o->b->conf->header_timeout_ms);
    else if (!c->chunks.content.len && !c->chunks.n_tools)
        tg_backend_result_fail(&c->res, TG_E_TIMEOUT, "first_token_timeout",
                               "upstream sent no answer token within %lld ms of its head",
                               (long long)first_token_ms(o->b->conf));
    else
        tg_backend_result_fail(&c->res, TG_E_TIMEOUT, "idle_timeout",
                               "upstream stream was silent for %lld ms",
                               (long long)o->b->conf->idle_timeout_ms);
    c->res.status = (int)c->status;
    call_finish(c);
}

static void arm(struct tg_backend_call *c, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

/* ------------------------------------------------------------ curl callbacks */

static size_t header_cb(char *buf, size_t size, size_t n, void *arg)
{
    struct tg_backend_call *c = arg;
    size_t len = size * n;
    if (len > 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* A new status line (also after a 100 Continue). */
        /* "HTTP/x SSS ...": exactly three digits after the first space */
        const char *sp = memchr(buf, ' ', len);
        size_t at = sp ? (size_t)(sp - buf) + 1 : len;
        c->status = 0;
        if (at + 3 <= len && isdigit((unsigned char)buf[at]) &&
            isdigit((unsigned char)buf[at + 1]) && isdigit((unsigned char)buf[at + 2]))
            c->status = (buf[at] - '0') * 100 + (buf[at + 1] - '0') * 10 + (buf[at + 2] - '0');
    } else if (len > 12 && strncasecmp(buf, "retry-after:", 12) == 0) {
        /* delay-seconds or an HTTP-date (RFC 9110 section 10.2.3) */
        c->res.retry_after_ms = tg_http_retry_after_ms(buf + 12, len - 12, tg_clock_wall_ms());
    } else if (len <= 2 && c->status >= 200 && !c->got_head) {
        /* End of the final head. */
        c->got_head = true;
        if (c->stream && c->status == 200)
            arm(c, first_token_ms(c->o->b->conf));
        else
            evtimer_del(c->timer);
    }
    return len;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *arg)
{
    struct tg_backend_call *c = arg;
    size_t len = size * n;
    if (!c->stream || c->status != 200) {
        /* Whole body (or an error body) is collected; the cap guards memory. */
        return tg_buf_append(&c->raw, buf, len) ? 0 : len;
    }
    /* Until the first token the time-to-first-token limit runs from the head;
     * a tool call's first piece counts as a token. */
    struct tg_chunks *k = &c->chunks;
    bool had_token = k->content.len || k->n_tools;
    if (tg_chunks_feed(k, buf, len))
        return 0; /* over a limit: curl ends the transfer, the stream is not whole */
    if (had_token || k->content.len || k->n_tools)
        arm(c, c->o->b->conf->idle_timeout_ms);
    return len;
}

/* ------------------------------------------------------------ ops */

static int openai_create(struct tg_backend *b, const struct tg_backend_env *env, char *err,
                         size_t errlen)
{
    const struct tg_backend_conf *conf = b->conf;
    struct openai *o = tg_calloc(1, sizeof(*o));
    struct tg_buf url, auth;
    int rc = TG_E_NOMEM;
    tg_buf_init(&url, 4096);
    tg_buf_init(&auth, 4096);
    if (!o)
        goto out;
    o->b = b;
    o->base = env->base;
    o->metrics = env->metrics;
    o->idle_cap = 64;
    o->idle = tg_calloc(o->idle_cap, sizeof(*o->idle));
    if (!o->idle || tg_curlev_create(env->base, conf->max_connections, transfer_cb, o, &o->cv))
        goto out;
    if (tg_buf_printf(&url, "%s/chat/completions", conf->base_url))
        goto out;
    o->url = tg_buf_steal(&url, NULL);
    o->headers = curl_slist_append(NULL, "Content-Type: application/json");
    /* curl would otherwise wait for 100 Continue on larger bodies. */
    o->headers = curl_slist_append(o->headers, "Expect:");
    if (conf->api_key && conf->api_key[0]) {
        if (tg_buf_printf(&auth, "Authorization: Bearer %s", conf->api_key))
            goto out;
        o->headers = curl_slist_append(o->headers, auth.data);
    }
    if (!o->url || !o->headers)
        goto out;
    b->impl = o;
    rc = TG_OK;
out:
    tg_buf_free(&url);
    tg_buf_free(&auth);
    if (rc) {
        snprintf(err, errlen, "backend %s: out of memory", conf->name);
        if (o) {
            tg_curlev_free(o->cv);
            curl_slist_free_all(o->headers);
            tg_free(o->url);
            tg_free(o->idle);
            tg_free(o);
        }
    }
    return rc;
}

static void openai_destroy(struct tg_backend *b)
{
    struct openai *o = b->impl;
    if (!o)
        return;
    for (size_t i = 0; i < o->nidle; i++)
        curl_easy_cleanup(o->idle[i]);
    tg_curlev_free(o->cv);
    curl_slist_free_all(o->headers);
    tg_free(o->url);
    tg_free(o->idle);
    tg_free(o);
}

/*
 * The request fields passed on to the upstream as the client sent them: the
 * one allow-list of the OpenAI chat-completions parameters (docs/UPSTREAMS.md
 * lists them).  Everything else is trustgate's own or unknown and stays
 * here; `model`, `messages`, `stream` and `stream_options` are written by
 * the backend itself, and `user` becomes the customer's pseudonym.
 */
static const char *const forwarded_params[] = {
    "temperature",      "top_p",           "max_tokens",        "max_completion_tokens",
    "stop",             "presence_penalty", "frequency_penalty", "seed",
    "n",                "response_format",  "logit_bias",        "logprobs",
    "top_logprobs",     "tools",            "tool_choice",       "parallel_tool_calls",
    "functions",        "function_call",    "metadata",          "reasoning_effort",
    "service_tier",     "store",            "modalities",        "audio",
    "prediction",       "web_search_options", "verbosity",       "prompt_cache_key",
    "safety_identifier",
};

static char *build_body(const struct tg_backend_conf *conf, const struct tg_backend_request *rq)
{
    struct tg_buf b;
    struct tg_jw w;
    tg_buf_init(&b, 64u << 20);
    tg_jw_init(&w, &b);
    tg_jw_obj(&w);
    tg_jw_kstr(&w, "model", conf->model ? conf->model : (rq->model ? rq->model : "default"));
    tg_jw_key(&w, "messages");
    tg_jw_json(&w, rq->messages);
    tg_jw_key(&w, "stream");
    tg_jw_bool(&w, conf->stream);
    if (conf->stream) {
        /* the usage of a streamed answer comes in a last chunk, when asked for */
        tg_jw_key(&w, "stream_options");
        tg_jw_obj(&w);
        tg_jw_key(&w, "include_usage");
        tg_jw_bool(&w, true);
        tg_jw_end(&w);
    }
    if (rq->user && rq->user[0])
        tg_jw_kstr(&w, "user", rq->user);
    for (size_t i = 0; rq->params && i < TG_ARRAY_LEN(forwarded_params); i++) {
        json_t *v = json_object_get(rq->params, forwarded_params[i]);
        if (v && !json_is_null(v)) {
            tg_jw_key(&w, forwarded_params[i]);
            tg_jw_json(&w, v);
        }
    }
    tg_jw_end(&w);
    if (tg_jw_finish(&w)) {
        tg_buf_free(&b);
        return NULL;
    }
    return tg_buf_steal(&b, NULL);
}

static int openai_generate(struct tg_backend *b, const struct tg_backend_request *rq,
                           tg_backend_cb cb, void *arg, struct tg_backend_call **out)
{
    struct openai *o = b->impl;
    const struct tg_backend_conf *conf = b->conf;
    struct tg_backend_call *c = tg_calloc(1, sizeof(*c));
    if (!c)
        return TG_E_NOMEM;
    c->head.backend = b;
    c->o = o;
    c->cb = cb;
    c->arg = arg;
    c->stream = conf->stream;
    tg_backend_result_init(&c->res);
    tg_buf_init(&c->raw, 16u << 20);
    tg_chunks_init(&c->chunks, 16u << 20);
    c->chunks.on_delta = rq->on_delta;
    c->chunks.delta_arg = rq->delta_arg;
    o->active++;
    c->req_body = build_body(conf, rq);
    c->timer = evtimer_new(o->base, call_timer_cb, c);
    c->easy = o->nidle ? o->idle[--o->nidle] : curl_easy_init();
    if (!c->req_body || !c->timer || !c->easy) {
        call_release(c);
        return TG_E_NOMEM;
    }
    CURL *e = c->easy;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, o->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->req_body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(c->req_body));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)conf->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)conf->total_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (tg_curlev_add(o->cv, e)) {
        call_release(c);
        return TG_E_INTERNAL;
    }
    arm(c, conf->header_timeout_ms);
    if (out)
        *out = c;
    return TG_OK;
}

static void openai_cancel(struct tg_backend_call *c)
{
    call_release(c);
}

const struct tg_backend_ops tg_backend_openai_ops = {
    .type = "openai",
    .create = openai_create,
    .destroy = openai_destroy,
    .generate = openai_generate,
    .cancel = openai_cancel,
};
