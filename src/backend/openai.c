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
#include "core/jscan.h"
#include "core/jw.h"
#include "metrics/metrics.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <event2/event.h>

struct openai {
    struct tg_backend *b;
    struct event_base *base;
    struct tg_metrics *metrics;
    CURLM *multi;
    struct event *timer;
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
    struct tg_buf line;    /* stream: partial line */
    struct tg_buf content; /* stream: answer so far */
    bool stream;
    bool got_head;
    bool done_seen;
    long status;
    struct tg_backend_result res;
    char errbuf[CURL_ERROR_SIZE];
    void (*on_delta)(void *arg, const char *text, size_t len); /* see backend.h */
    void *delta_arg;
};

struct sockctx {
    struct event *ev;
    struct openai *o;
};

static void check_done(struct openai *o);

/* ------------------------------------------------------------ completion */

static void call_release(struct tg_backend_call *c)
{
    struct openai *o = c->o;
    if (c->easy) {
        curl_multi_remove_handle(o->multi, c->easy);
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
    tg_buf_free(&c->line);
    tg_buf_free(&c->content);
    tg_free(c->res.content);
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

/* usage, model and finish_reason of a completion or chunk (whichever are present). */
static void scan_meta(struct tg_backend_call *c, const char *j, size_t n)
{
    static const char *const model[] = {"model"};
    static const char *const fr[] = {"choices", "#0", "finish_reason"};
    static const char *const pt[] = {"usage", "prompt_tokens"};
    static const char *const ct[] = {"usage", "completion_tokens"};
    if (!c->res.model[0])
        tg_jscan_str_at(j, n, model, 1, c->res.model, sizeof(c->res.model));
    tg_jscan_str_at(j, n, fr, 3, c->res.finish_reason, sizeof(c->res.finish_reason));
    int64_t p = tg_jscan_int_at(j, n, pt, 2, 0), q = tg_jscan_int_at(j, n, ct, 2, 0);
    if (p || q) {
        c->res.prompt_tokens = p;
        c->res.completion_tokens = q;
    }
}

/* Fill the result from a complete non-stream body. */
static void parse_completion(struct tg_backend_call *c)
{
    static const char *const content[] = {"choices", "#0", "message", "content"};
    const char *j = c->raw.data ? c->raw.data : "";
    const char *v;
    size_t n = c->raw.len, vl;
    struct tg_buf text;
    tg_buf_init(&text, 16u << 20);
    if (tg_jscan_validate(j, n) || tg_jscan_find(j, n, content, 4, &v, &vl) || v[0] != '"' ||
        tg_jscan_string(v, vl, &text)) {
        tg_backend_result_fail(&c->res, TG_E_UPSTREAM, "bad_response",
                               "upstream answered 200 without a chat.completion message");
        goto out;
    }
    if (memchr(text.data ? text.data : "", '\0', text.len)) {
        tg_backend_result_fail(&c->res, TG_E_UPSTREAM, "bad_response",
                               "upstream answer contains a NUL character");
        goto out;
    }
    c->res.content = tg_buf_steal(&text, &c->res.len);
    scan_meta(c, j, n);
    if (!c->res.finish_reason[0])
        tg_strlcpy(c->res.finish_reason, "stop", sizeof(c->res.finish_reason));
out:
    tg_buf_free(&text);
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
        tg_backend_result_fail(&c->res, TG_E_TIMEOUT,
                               c->got_head ? "total_timeout" : "connect_timeout",
                               "upstream timed out: %s", c->errbuf[0] ? c->errbuf : "timeout");
    } else if (code != CURLE_OK && !(c->stream && c->got_head && c->status == 200)) {
        tg_backend_result_fail(
            &c->res, TG_E_UPSTREAM, code == CURLE_COULDNT_CONNECT ? "connect" : "transport",
            "upstream transfer failed: %s", c->errbuf[0] ? c->errbuf : curl_easy_strerror(code));
    } else if (c->status < 200 || c->status > 299) {
        fail_status(c);
    } else if (!c->stream) {
        parse_completion(c);
    } else if (c->res.malformed_events) {
        /* A lost event may have carried part of the answer: never deliver a gap. */
        tg_backend_result_fail(&c->res, TG_E_UPSTREAM, "malformed_stream",
                               "upstream stream had %d unparseable event(s)",
                               c->res.malformed_events);
    } else if (!c->done_seen && !c->res.finish_reason[0]) {
        tg_backend_result_fail(&c->res, TG_E_UPSTREAM, "stream_cut",
                               "upstream stream ended before its final event (%zu bytes received)",
                               c->content.len);
    } else if (memchr(c->content.data ? c->content.data : "", '\0', c->content.len)) {
        tg_backend_result_fail(&c->res, TG_E_UPSTREAM, "bad_response",
                               "upstream answer contains a NUL character");
    } else {
        c->res.content = tg_buf_steal(&c->content, &c->res.len);
        if (!c->res.content)
            tg_backend_result_fail(&c->res, TG_E_NOMEM, "nomem", "out of memory");
        if (!c->res.finish_reason[0])
            tg_strlcpy(c->res.finish_reason, "stop", sizeof(c->res.finish_reason));
    }
    call_finish(c);
}

static void check_done(struct openai *o)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(o->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct tg_backend_call *c = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        on_transfer_done(c, msg->data.result);
    }
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
    else if (!c->content.len)
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
        const char *sp = memchr(buf, ' ', len);
        c->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    } else if (len > 12 && strncasecmp(buf, "retry-after:", 12) == 0) {
        char tmp[32];
        size_t vl = TG_MIN(len - 12, sizeof(tmp) - 1);
        memcpy(tmp, buf + 12, vl);
        tmp[vl] = '\0';
        long secs = strtol(tmp, NULL, 10);
        if (secs >= 0)
            c->res.retry_after_ms = (int64_t)secs * 1000;
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

/* One SSE line of a streamed answer. */
static void stream_line(struct tg_backend_call *c, const char *line, size_t len)
{
    if (len < 5 || strncmp(line, "data:", 5) != 0)
        return; /* comments, event names, ids and blank separators */
    line += 5;
    len -= 5;
    while (len && *line == ' ') {
        line++;
        len--;
    }
    if (len == 6 && memcmp(line, "[DONE]", 6) == 0) {
        c->done_seen = true;
        return;
    }
    static const char *const delta[] = {"choices", "#0", "delta", "content"};
    const char *v;
    size_t vl;
    if (tg_jscan_validate(line, len)) {
        c->res.malformed_events++;
        return;
    }
    size_t before = c->content.len;
    if (tg_jscan_find(line, len, delta, 4, &v, &vl) == TG_OK && v[0] == '"' &&
        tg_jscan_string(v, vl, &c->content))
        c->res.malformed_events++; /* over the size cap: the answer is not whole */
    else if (c->on_delta && c->content.len > before && !c->res.malformed_events)
        c->on_delta(c->delta_arg, c->content.data + before, c->content.len - before);
    scan_meta(c, line, len);
}

static size_t write_cb(char *buf, size_t size, size_t n, void *arg)
{
    struct tg_backend_call *c = arg;
    size_t len = size * n;
    if (!c->stream || c->status != 200) {
        /* Whole body (or an error body) is collected; the cap guards memory. */
        return tg_buf_append(&c->raw, buf, len) ? 0 : len;
    }
    /* Until the first token the time-to-first-token limit runs from the head. */
    bool had_token = c->content.len > 0;
    if (tg_buf_append(&c->line, buf, len))
        return 0;
    char *p = c->line.data, *end = c->line.data + c->line.len;
    for (;;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        size_t ll = (size_t)(nl - p);
        if (ll && p[ll - 1] == '\r')
            ll--;
        stream_line(c, p, ll);
        p = nl + 1;
    }
    size_t rest = (size_t)(end - p);
    memmove(c->line.data, p, rest);
    c->line.len = rest;
    c->line.data[rest] = '\0';
    if (had_token || c->content.len)
        arm(c, c->o->b->conf->idle_timeout_ms);
    return len;
}

/* ------------------------------------------------------------ curl <-> libevent */

static void socket_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct openai *o = arg;
    int running = 0;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(o->multi, fd, flags, &running);
    check_done(o);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int action, void *userp, void *sockp)
{
    (void)easy;
    struct openai *o = userp;
    struct sockctx *sc = sockp;
    if (action == CURL_POLL_REMOVE) {
        if (sc) {
            event_free(sc->ev);
            tg_free(sc);
            curl_multi_assign(o->multi, fd, NULL);
        }
        return 0;
    }
    short kind = (short)((action & CURL_POLL_IN ? EV_READ : 0) |
                         (action & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    if (!sc) {
        sc = tg_calloc(1, sizeof(*sc));
        if (!sc)
            return -1;
        sc->o = o;
        curl_multi_assign(o->multi, fd, sc);
    } else {
        event_free(sc->ev);
    }
    sc->ev = event_new(o->base, fd, kind, socket_event_cb, o);
    if (!sc->ev)
        return -1;
    event_add(sc->ev, NULL);
    return 0;
}

static void multi_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct openai *o = arg;
    int running = 0;
    curl_multi_socket_action(o->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(o);
}

static int timer_cb(CURLM *multi, long ms, void *userp)
{
    (void)multi;
    struct openai *o = userp;
    if (ms < 0) {
        evtimer_del(o->timer);
    } else {
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        evtimer_add(o->timer, &tv);
    }
    return 0;
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
    o->multi = curl_multi_init();
    o->timer = evtimer_new(env->base, multi_timer_cb, o);
    if (!o->idle || !o->multi || !o->timer)
        goto out;
    curl_multi_setopt(o->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(o->multi, CURLMOPT_SOCKETDATA, o);
    curl_multi_setopt(o->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(o->multi, CURLMOPT_TIMERDATA, o);
    curl_multi_setopt(o->multi, CURLMOPT_MAX_HOST_CONNECTIONS, conf->max_connections);
    curl_multi_setopt(o->multi, CURLMOPT_MAXCONNECTS, conf->max_connections);
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
            if (o->timer)
                event_free(o->timer);
            if (o->multi)
                curl_multi_cleanup(o->multi);
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
    curl_multi_cleanup(o->multi);
    event_free(o->timer);
    curl_slist_free_all(o->headers);
    tg_free(o->url);
    tg_free(o->idle);
    tg_free(o);
}

static const char *const forwarded_params[] = {
    "temperature",       "top_p", "max_tokens", "max_completion_tokens", "stop", "presence_penalty",
    "frequency_penalty", "seed",  "n",          "response_format",
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
    c->on_delta = rq->on_delta;
    c->delta_arg = rq->delta_arg;
    tg_backend_result_init(&c->res);
    tg_buf_init(&c->raw, 16u << 20);
    tg_buf_init(&c->line, 1u << 20);
    tg_buf_init(&c->content, 16u << 20);
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
    if (curl_multi_add_handle(o->multi, e) != CURLM_OK) {
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
