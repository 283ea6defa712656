/*
 * run.c - running workflows (workflow.h): a run is a record in the store
 * (blob workflow-run/<id>) that moves from step to step on the event loop.
 * Every change of a step (started, ok, failed, waiting) is committed with
 * its audit leaf before the run goes on, so what the run did is what the
 * store and the log say, whatever happens to the process.
 *
 * Tool steps are HTTP POSTs of JSON through the engine's own libcurl multi
 * handle (curlev.h), never blocking the loop; a step is marked started,
 * with its idempotency key, and committed before the request goes out.
 */
#include "workflow/workflow.h"

#include "audit/audit.h"
#include "kb/kb.h"
#include "net/curlev.h"
#include "policy/policy.h"
#include "review/review.h"
#include "store/store.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN_PREFIX "workflow-run/"
#define MAX_EXECUTED 256               /* steps one run may execute: no endless loop */
#define MAX_RESPONSE ((size_t)1 << 20) /* a tool's answer */
#define RETRY_MS 200

struct run {
    struct tg_wf_engine *e;
    const struct tg_workflow *wf;
    json_t *rec; /* the record as stored */
    char id[TG_ID_MAX];
    char lock[TG_ID_MAX + 8];
    bool locked;
    CURL *easy;
    struct curl_slist *hdrs;
    char *payload;
    struct tg_buf resp;
    struct event *timer; /* the next step, on the loop */
    void *ask_call;      /* a model step's call in flight (env.ask) */
    tg_wf_done_fn done;  /* the caller waiting for the run (a chat turn), told once */
    void *done_arg;
    struct run *prev, *next;
};

struct tg_wf_engine {
    struct tg_wf_env env;
    struct tg_workflow *const *wfs;
    size_t n;
    struct tg_curlev *cv;
    struct run *runs;
    struct event *resume; /* one look at the store for runs to go on with */
    bool closing;         /* tg_wf_engine_free: nobody is told any more */
};

/* ------------------------------------------------------------ records */

static json_t *steps_of(struct run *r)
{
    return json_object_get(r->rec, "steps");
}

static json_t *step_rec(struct run *r, const char *id)
{
    json_t *s = json_object_get(steps_of(r), id);
    if (!s) {
        s = json_object();
        if (tg_json_set(steps_of(r), id, s))
            return NULL;
    }
    return s;
}

/* {input: ..., STEP: its output, ...}: what {{refs}} and conditions read. */
static json_t *context(struct run *r)
{
    json_t *ctx = json_pack("{s:O}", "input", json_object_get(r->rec, "input"));
    const char *k;
    json_t *s;
    json_object_foreach(steps_of(r), k, s)
    {
        const json_t *out = json_object_get(s, "output");
        if (ctx && out && tg_json_set(ctx, k, json_incref((json_t *)out))) {
            json_decref(ctx);
            return NULL;
        }
    }
    return ctx;
}

static void digest(const json_t *v, char hex[2 * TG_SHA256_LEN + 1])
{
    size_t n = 0;
    char *s = v ? tg_json_canonical(v, &n) : NULL;
    uint8_t h[TG_SHA256_LEN];
    hex[0] = '\0';
    if (s) {
        tg_sha256(s, n, h);
        tg_hex_encode(h, sizeof(h), hex);
    }
    tg_free(s);
}

/*
 * Queue the record and, for a step's change, its audit leaf (step id,
 * kind, status, digests of what it was given and gave) to commit
 * together; with durable, wait for the commit.  A step with an effect
 * outside (a tool's call) or one that tells someone (the run ends, waits
 * for a person, or starts) waits; the steps between need not, since a
 * restart computes them again from the record as committed, and the next
 * durable save commits them first.
 */
static int save(struct run *r, const char *step_id, bool durable)
{
    struct tg_wf_env *env = &r->e->env;
    int64_t now = tg_clock_wall_ms();
    int rc = tg_json_set(r->rec, "updated_ms", json_integer(now));
    json_t *leaf = NULL;
    if (!rc && step_id) {
        const json_t *s = json_object_get(steps_of(r), step_id);
        const struct tg_wf_step *def = tg_workflow_step(r->wf, step_id);
        static const char *const kinds[] = {"tool", "decide", "search", "review", "reply", "model"};
        char in[2 * TG_SHA256_LEN + 1], out[2 * TG_SHA256_LEN + 1];
        digest(json_object_get(s, "input"), in);
        digest(json_object_get(s, "output"), out);
        leaf =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:I, s:I}", "kind",
                      "workflow_step", "run", r->id, "workflow", r->wf->name, "hash", r->wf->hash,
                      "step", step_id, "step_kind", def ? kinds[def->kind] : "", "status",
                      tg_json_str(s, "status", ""), "input_sha256", in[0] ? in : NULL,
                      "output_sha256", out[0] ? out : NULL, "error", tg_json_str(s, "error", NULL),
                      "attempt", (json_int_t)tg_json_int(s, "attempt", 0), "at", (json_int_t)now);
        if (!leaf)
            rc = TG_E_NOMEM;
    }
    char key[sizeof(RUN_PREFIX) + TG_ID_MAX];
    snprintf(key, sizeof(key), RUN_PREFIX "%s", r->id);
    char *text = rc ? NULL : tg_json_dumps(r->rec, JSON_COMPACT);
    if (!rc && !text)
        rc = TG_E_NOMEM;
    tg_store_hold(env->st);
    if (!rc && leaf && env->audit)
        rc = tg_audit_append_json(env->audit, leaf, NULL);
    if (!rc)
        rc = tg_store_blob_put(env->st, key, text, strlen(text));
    rc = tg_store_release(env->st, rc);
    if (!rc && durable)
        rc = tg_store_flush(env->st);
    free(text);
    json_decref(leaf);
    if (rc)
        tg_error("workflow run %s: cannot store step %s: %s", r->id, step_id ? step_id : "-",
                 tg_err_str(rc));
    return rc;
}

json_t *tg_wf_run_get(struct tg_store *st, const char *id)
{
    char key[sizeof(RUN_PREFIX) + TG_ID_MAX];
    char *data = NULL;
    size_t len = 0;
    json_t *rec = NULL;
    if (strlen(id) >= TG_ID_MAX)
        return NULL;
    snprintf(key, sizeof(key), RUN_PREFIX "%s", id);
    if (tg_store_blob_get(st, key, &data, &len) == TG_OK)
        rec = json_loadb(data, len, 0, NULL);
    tg_free(data);
    return rec;
}

/* ------------------------------------------------------------ runs in memory */

/* Tell the caller waiting for the run, once. */
static void tell_waiter(struct run *r)
{
    tg_wf_done_fn done = r->done;
    r->done = NULL;
    if (done && !r->e->closing)
        done(r->done_arg, r->rec);
}

static void run_free(struct run *r)
{
    struct tg_wf_engine *e = r->e;
    tell_waiter(r); /* a run given up here: the caller goes on without it */
    if (r->ask_call && e->env.cancel)
        e->env.cancel(r->ask_call);
    if (r->easy) {
        tg_curlev_remove(e->cv, r->easy);
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->hdrs);
    free(r->payload);
    tg_buf_free(&r->resp);
    if (r->timer)
        event_free(r->timer);
    if (r->locked)
        tg_store_unlock(e->env.st, r->lock);
    if (r->prev)
        r->prev->next = r->next;
    else if (e->runs == r)
        e->runs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    json_decref(r->rec);
    tg_free(r);
}

static void step_cb(evutil_socket_t fd, short what, void *arg);

/* A run taken up on this node: its record (taken), held against the
 * other nodes sharing the store; NULL when another holds it or out of
 * memory. */
static struct run *run_new(struct tg_wf_engine *e, const struct tg_workflow *wf, json_t *rec)
{
    struct run *r = tg_calloc(1, sizeof(*r));
    if (!r) {
        json_decref(rec);
        return NULL;
    }
    r->e = e;
    r->wf = wf;
    r->rec = rec;
    tg_strlcpy(r->id, tg_json_str(rec, "id", ""), sizeof(r->id));
    snprintf(r->lock, sizeof(r->lock), "wf:%s", r->id);
    tg_buf_init(&r->resp, MAX_RESPONSE);
    r->timer = evtimer_new(e->env.base, step_cb, r);
    r->next = e->runs;
    if (e->runs)
        e->runs->prev = r;
    e->runs = r;
    if (!r->timer || tg_store_trylock(e->env.st, r->lock) != TG_OK) {
        run_free(r);
        return NULL;
    }
    r->locked = true;
    return r;
}

/* Run the current step on the loop after ms. */
static void schedule(struct run *r, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(r->timer, &tv);
}

/* The run ends: done or failed (error says why). */
static void finish(struct run *r, const char *error)
{
    int rc = tg_json_set(r->rec, "state", json_string(error ? "failed" : "done"));
    if (!rc && error)
        rc = tg_json_set(r->rec, "error", json_string(error));
    if (!rc)
        rc = tg_json_set(r->rec, "current", json_null());
    if (!rc)
        save(r, NULL, true);
    tg_info("workflow run %s (%s): %s%s", r->id, r->wf->name, error ? "failed: " : "done",
            error ? error : "");
    tell_waiter(r);
    run_free(r);
}

/* Where a step goes next: its next, else the following step (a reply:
 * the end). */
static const char *after(const struct tg_workflow *wf, const struct tg_wf_step *s)
{
    if (s->next)
        return s->next;
    if (s->kind == TG_WF_REPLY)
        return "end";
    size_t i = (size_t)(s - wf->steps);
    return i + 1 < wf->n_steps ? wf->steps[i + 1].id : "end";
}

/* The step ended: ok with output (taken), or failed (error); the run
 * moves to next (or on_fail) and goes on. */
static void step_done(struct run *r, const struct tg_wf_step *s, json_t *output, const char *error,
                      const char *next)
{
    json_t *sr = step_rec(r, s->id);
    int rc = sr ? TG_OK : TG_E_NOMEM;
    if (!rc)
        rc = tg_json_set(sr, "status", json_string(error ? "failed" : "ok"));
    if (!rc && output)
        rc = tg_json_set(sr, "output", output);
    else
        json_decref(output);
    if (!rc && error)
        rc = tg_json_set(sr, "error", json_string(error));
    if (!rc)
        rc = tg_json_set(sr, "ended_ms", json_integer(tg_clock_wall_ms()));
    const char *to = error ? s->on_fail : next ? next : after(r->wf, s);
    if (!rc)
        rc = tg_json_push(json_object_get(r->rec, "trail"), json_string(s->id));
    if (!rc)
        rc = tg_json_set(r->rec, "current", to ? json_string(to) : json_null());
    if (rc || save(r, s->id, false) != TG_OK) {
        run_free(r); /* as stored: the next start takes it up again */
        return;
    }
    if (!to) {
        char why[400];
        snprintf(why, sizeof(why), "step %s failed: %s", s->id, error);
        finish(r, why);
        return;
    }
    schedule(r, 0);
}

/* ------------------------------------------------------------ a person */

/* What a person is asked: a review task carrying the run and the step. */
struct ask {
    const char *kind, *queue, *question, *draft;
    const json_t *attestations;
    int64_t sla_ms;
};

/*
 * Put the question to a person (a review task with the run's context, its
 * deadline armed) and let the run wait for the answer: the step's record
 * (waiting, with input) and the run's are committed, the waiting caller
 * told.  The run leaves this node's memory: the decision brings it back
 * (tg_wf_review_settled).
 */
static void ask_person(struct run *r, const struct tg_wf_step *s, const struct ask *a,
                       json_t *input, const json_t *ctx)
{
    struct tg_wf_env *env = &r->e->env;
    json_t *sr = step_rec(r, s->id);
    json_t *context = json_pack("{s:{s:s, s:s, s:s, s:O}}", "workflow", "run", r->id, "name",
                                r->wf->name, "step", s->id, "so_far", ctx);
    json_t *tags = json_pack("[s]", "workflow");
    char rid[TG_ID_MAX] = "";
    int64_t now = tg_clock_wall_ms();
    int rc = sr && input && context && tags ? TG_OK : TG_E_NOMEM;
    if (!rc) {
        struct tg_review_new n = {
            .turn_id = r->id,
            .conversation_id = tg_json_str(r->rec, "conversation_id", ""),
            .kind = a->kind,
            .queue = a->queue ? a->queue : "workflow",
            .priority = 5,
            .created_ms = now,
            .sla_ms = a->sla_ms,
            .attestations = a->attestations,
            .tags = tags,
            .question = a->question,
            .draft = a->draft,
            .holding_reply = "您的问题需要人工复核，请稍候。",
            .context = context,
        };
        rc = tg_review_create(env->st, &n, rid);
    }
    if (!rc)
        rc = tg_json_set(input, "review_id", json_string(rid));
    if (!rc)
        rc = tg_json_set(sr, s->kind == TG_WF_TOOL ? "approval" : "input", json_incref(input));
    if (!rc)
        rc = tg_json_set(sr, "status", json_string("waiting"));
    if (!rc)
        rc = tg_json_set(r->rec, "state", json_string("waiting"));
    if (!rc)
        rc = tg_json_set(r->rec, "review_id", json_string(rid));
    json_decref(input);
    json_decref(context);
    json_decref(tags);
    if (rc) {
        step_done(r, s, NULL, tg_err_str(rc), NULL);
        return;
    }
    if (save(r, s->id, true) == TG_OK) {
        tg_info("workflow run %s (%s): step %s waits for review %s", r->id, r->wf->name, s->id,
                rid);
        if (env->sla && tg_review_sla_track(env->sla, rid, now + a->sla_ms))
            tg_error("workflow run %s: review %s: its deadline is not armed", r->id, rid);
        tell_waiter(r);
    }
    run_free(r);
}

/* ------------------------------------------------------------ tool steps */

static size_t write_cb(char *p, size_t size, size_t n, void *arg)
{
    struct run *r = arg;
    return tg_buf_append(&r->resp, p, size * n) == TG_OK ? size * n : 0;
}

/* Send the tool's request (its step is marked started and committed). */
static void tool_call(struct run *r, const struct tg_wf_step *s, const json_t *input,
                      const char *key)
{
    char h[300];
    tg_buf_reset(&r->resp);
    free(r->payload);
    r->payload = tg_json_dumps(json_object_get(input, "args"), JSON_COMPACT);
    curl_slist_free_all(r->hdrs);
    r->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(h, sizeof(h), "Idempotency-Key: %s", key);
    r->hdrs = r->hdrs ? curl_slist_append(r->hdrs, h) : NULL;
    snprintf(h, sizeof(h), "X-Trustgate-Workflow-Run: %s", r->id);
    r->hdrs = r->hdrs ? curl_slist_append(r->hdrs, h) : NULL;
    /* the step's own headers (a token): rendered for the call, never stored */
    json_t *ctx = s->headers ? context(r) : NULL;
    json_t *hd = ctx ? tg_wf_render_json(s->headers, ctx) : NULL;
    const char *name;
    json_t *v;
    bool all = !s->headers || hd;
    json_object_foreach(hd, name, v)
    {
        struct tg_buf line;
        struct curl_slist *more = NULL;
        tg_buf_init(&line, 8192);
        if (all && r->hdrs && tg_buf_printf(&line, "%s: %s", name, json_string_value(v)) == TG_OK)
            more = curl_slist_append(r->hdrs, line.data);
        if (more)
            r->hdrs = more;
        else
            all = false;
        tg_buf_free(&line);
    }
    json_decref(hd);
    json_decref(ctx);
    if (!all) { /* the call does not go without its headers */
        curl_slist_free_all(r->hdrs);
        r->hdrs = NULL;
    }
    r->easy = r->payload && r->hdrs ? curl_easy_init() : NULL;
    if (!r->easy) {
        step_done(r, s, NULL, "out of memory", NULL);
        return;
    }
    curl_easy_setopt(r->easy, CURLOPT_URL, tg_json_str(input, "url", s->url));
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->payload);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    if (tg_curlev_add(r->e->cv, r->easy) != TG_OK) {
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
        step_done(r, s, NULL, "the tool's request could not be started", NULL);
    }
}

/*
 * The deployment's post rules on the step as a tool call (its name and
 * arguments): a rule on tool calls that refuses fails the step; one that
 * holds the call for a person (human_decision, review) puts it to one
 * with the rule's queue and attestations.  True when the step does not
 * call now.
 */
static bool red_line(struct run *r, const struct tg_wf_step *s, json_t *sr, const json_t *ctx)
{
    const struct tg_policy *pol = r->e->env.policy;
    if (!pol)
        return false;
    const char *name = s->tool ? s->tool : s->id;
    char *args = tg_json_dumps(json_object_get(json_object_get(sr, "input"), "args"), JSON_COMPACT);
    struct tg_policy_tool_call call = {.name = name,
                                       .name_len = strlen(name),
                                       .arguments = args ? args : "{}",
                                       .arguments_len = args ? strlen(args) : 2};
    struct tg_policy_facts f = {.text = "",
                                .norm = "",
                                .draft = "",
                                .confidence = -1,
                                .tool_calls = &call,
                                .n_tool_calls = 1};
    struct tg_policy_hits hits;
    tg_policy_hits_init(&hits);
    const struct tg_policy_hit *hit = NULL;
    const struct tg_policy_action *act = NULL;
    bool refuse = false;
    if (tg_policy_eval(pol, TG_POLICY_POST, &f, &hits) == TG_OK)
        for (size_t i = 0; !act && !refuse && i < hits.n; i++) {
            if (!hits.v[i].field || strcmp(hits.v[i].field, "tool_calls") != 0)
                continue; /* only rules on the call itself */
            for (size_t k = 0; k < hits.v[i].n_actions; k++) {
                enum tg_policy_action_kind kind = hits.v[i].actions[k].kind;
                if (kind == TG_ACT_REFUSE)
                    refuse = true;
                else if (!act && (kind == TG_ACT_HUMAN_DECISION || kind == TG_ACT_REVIEW))
                    act = &hits.v[i].actions[k];
            }
            if (act || refuse)
                hit = &hits.v[i];
        }
    bool held = hit != NULL;
    if (refuse) {
        char why[300];
        snprintf(why, sizeof(why), "rule %s refuses the call to %s", hit->rule, name);
        step_done(r, s, NULL, why, NULL);
    } else if (act) {
        char q[1200];
        json_t *att = json_array();
        for (size_t k = 0; att && k < act->n_attestations; k++)
            if (tg_json_push(att, json_string(act->attestations[k]))) {
                json_decref(att);
                att = NULL;
            }
        snprintf(q, sizeof(q), "工作流「%s」要调用 %s（规则 %s：%s），参数：%s", r->wf->name, name,
                 hit->rule, hit->description ? hit->description : "", args ? args : "{}");
        struct ask a = {.kind = act->kind == TG_ACT_HUMAN_DECISION ? "human_decision" : "review",
                        .queue = act->queue,
                        .question = q,
                        .draft = args ? args : "{}",
                        .attestations = att,
                        .sla_ms = act->sla_ms > 0 ? act->sla_ms : 90000};
        if (!att)
            step_done(r, s, NULL, "out of memory", NULL);
        else
            ask_person(
                r, s, &a,
                json_pack("{s:s, s:s, s:s}", "rule", hit->rule, "tool", name, "state", "waiting"),
                ctx);
        json_decref(att);
    }
    tg_policy_hits_free(&hits);
    free(args);
    return held;
}

/* Start (or, after a restart or a failed attempt, start again) a tool step. */
static void tool_step(struct run *r, const struct tg_wf_step *s, json_t *ctx)
{
    json_t *sr = step_rec(r, s->id);
    if (!sr) {
        step_done(r, s, NULL, "out of memory", NULL);
        return;
    }
    int64_t attempt = tg_json_int(sr, "attempt", 0) + 1;
    if (!json_object_get(sr, "input")) {
        char *url = tg_wf_render(s->url, ctx);
        json_t *in = json_pack("{s:s?, s:o?}", "url", url, "args", tg_wf_render_json(s->args, ctx));
        tg_free(url);
        char key[TG_ID_MAX + 80];
        snprintf(key, sizeof(key), "%s:%s", r->id, s->id);
        if (!in || tg_json_set(sr, "input", in) || tg_json_set(sr, "key", json_string(key)) ||
            tg_json_set(sr, "started_ms", json_integer(tg_clock_wall_ms()))) {
            step_done(r, s, NULL, "out of memory", NULL);
            return;
        }
    }
    /* a call the deployment's rules keep for a person waits for one */
    if (!json_object_get(sr, "approval") && red_line(r, s, sr, ctx))
        return;
    if (tg_json_set(sr, "status", json_string("started")) ||
        tg_json_set(sr, "attempt", json_integer(attempt)) || save(r, s->id, true) != TG_OK) {
        run_free(r);
        return;
    }
    tool_call(r, s, json_object_get(sr, "input"), tg_json_str(sr, "key", ""));
}

static struct run *run_of(struct tg_wf_engine *e, CURL *easy)
{
    for (struct run *r = e->runs; r; r = r->next)
        if (r->easy == easy)
            return r;
    return NULL;
}

/* A tool's request ended. */
static void curl_done(CURL *easy, CURLcode result, void *arg)
{
    struct run *r = run_of(arg, easy);
    if (!r) {
        curl_easy_cleanup(easy);
        return;
    }
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(easy);
    r->easy = NULL;
    const struct tg_wf_step *s = tg_workflow_step(r->wf, tg_json_str(r->rec, "current", ""));
    if (!s)
        return;
    char why[300] = "";
    json_t *out = NULL;
    if (result != CURLE_OK)
        snprintf(why, sizeof(why), "%s: %s",
                 result == CURLE_OPERATION_TIMEDOUT ? "timeout" : "error",
                 curl_easy_strerror(result));
    else if (status < 200 || status > 299)
        snprintf(why, sizeof(why), "the tool answered %ld", status);
    else if (!(out = json_loadb(r->resp.data ? r->resp.data : "", r->resp.len, 0, NULL)) ||
             !json_is_object(out))
        snprintf(why, sizeof(why), "the tool's answer is not a JSON object");
    if (!why[0]) {
        step_done(r, s, out, NULL, NULL);
        return;
    }
    json_decref(out);
    json_t *sr = step_rec(r, s->id);
    /* a refusal (4xx but 408 and 429) is the tool's answer: asking again changes nothing */
    bool again = result != CURLE_OK || status >= 500 || status == 408 || status == 429;
    if (sr && again && tg_json_int(sr, "attempt", 1) <= s->retries) {
        tg_warn("workflow run %s: step %s: %s; trying again", r->id, s->id, why);
        tg_json_set(sr, "error", json_string(why));
        schedule(r, RETRY_MS * tg_json_int(sr, "attempt", 1));
        return;
    }
    step_done(r, s, NULL, why, NULL);
}

/* ------------------------------------------------------------ the other steps */

static void decide_step(struct run *r, const struct tg_wf_step *s, json_t *ctx)
{
    for (size_t i = 0; i < s->n_cases; i++) {
        json_t *m = NULL;
        if (tg_wf_case_holds(&s->cases[i], ctx, &m)) {
            step_done(r, s,
                      json_pack("{s:s, s:i, s:o?}", "next", s->cases[i].next, "case", (int)i,
                                "matched", m),
                      NULL, s->cases[i].next);
            return;
        }
    }
    if (s->otherwise) {
        step_done(r, s, json_pack("{s:s, s:n}", "next", s->otherwise, "case"), NULL, s->otherwise);
        return;
    }
    step_done(r, s, NULL, "no case held and there is no otherwise", NULL);
}

static void search_step(struct run *r, const struct tg_wf_step *s, json_t *ctx)
{
    struct tg_wf_env *env = &r->e->env;
    char *q = tg_wf_render(s->query, ctx);
    json_t *passages = json_array();
    struct tg_kb_result res;
    tg_kb_result_init(&res);
    int rc = q && passages ? TG_OK : TG_E_NOMEM;
    if (!rc && !env->kb)
        rc = TG_E_NOTFOUND;
    if (!rc)
        rc = tg_kb_search(env->kb, q, strlen(q), s->top_k, TG_KB_SEARCH_PER_DOC, &res);
    for (size_t i = 0; !rc && i < res.n; i++) {
        struct tg_kb_chunk c;
        if (tg_kb_chunk_get(env->kb, res.hits[i].chunk, &c))
            continue;
        rc = tg_json_push(passages, json_pack("{s:s, s:s, s:s, s:s, s:f}", "source",
                                              c.question || !c.source[0] ? c.doc_id : c.source,
                                              "title", c.title, "heading", c.heading, "text",
                                              c.text, "score", res.hits[i].score));
    }
    tg_kb_result_free(&res);
    json_t *sr = step_rec(r, s->id);
    if (!rc && sr)
        rc = tg_json_set(sr, "input", json_pack("{s:s}", "query", q));
    tg_free(q);
    if (rc) {
        json_decref(passages);
        step_done(r, s, NULL, rc == TG_E_NOTFOUND ? "no knowledge base" : tg_err_str(rc), NULL);
        return;
    }
    step_done(r, s,
              json_pack("{s:o, s:s?, s:s?}", "passages", passages, "top",
                        json_array_size(passages)
                            ? tg_json_str(json_array_get(passages, 0), "text", NULL)
                            : NULL,
                        "source",
                        json_array_size(passages)
                            ? tg_json_str(json_array_get(passages, 0), "source", NULL)
                            : NULL),
              NULL, NULL);
}

/* A person's step: a review task carrying the run; the run waits. */
static void review_step(struct run *r, const struct tg_wf_step *s, json_t *ctx)
{
    char *question = tg_wf_render(s->question, ctx);
    char *draft = s->draft ? tg_wf_render(s->draft, ctx) : NULL;
    struct ask a = {.kind = "review",
                    .queue = s->queue,
                    .question = question,
                    .draft = draft,
                    .attestations = s->attestations,
                    .sla_ms = s->sla_ms};
    if (!question || (s->draft && !draft))
        step_done(r, s, NULL, "out of memory", NULL);
    else
        ask_person(r, s, &a, json_pack("{s:s, s:s?}", "question", question, "draft", draft), ctx);
    tg_free(question);
    tg_free(draft);
}

/* The ladder's answer to a model step. */
static void asked(void *arg, int err, const char *text, const char *model)
{
    struct run *r = arg;
    r->ask_call = NULL;
    const struct tg_wf_step *s = tg_workflow_step(r->wf, tg_json_str(r->rec, "current", ""));
    if (!s)
        return;
    if (err) {
        char why[400];
        snprintf(why, sizeof(why), "no model answered: %s",
                 text && text[0] ? text : tg_err_str(err));
        step_done(r, s, NULL, why, NULL);
        return;
    }
    step_done(r, s, json_pack("{s:s, s:s?}", "text", text ? text : "", "model", model), NULL, NULL);
}

/* A question to the deployment's ladder (its rungs, its breakers). */
static void model_step(struct run *r, const struct tg_wf_step *s, json_t *ctx)
{
    struct tg_wf_env *env = &r->e->env;
    char *prompt = tg_wf_render(s->prompt, ctx);
    char *system = s->system ? tg_wf_render(s->system, ctx) : NULL;
    json_t *sr = step_rec(r, s->id);
    int rc = prompt && sr && (!s->system || system) ? TG_OK : TG_E_NOMEM;
    if (!rc)
        rc = tg_json_set(sr, "input", json_pack("{s:s, s:s?}", "prompt", prompt, "system", system));
    if (!rc && !env->ask)
        rc = TG_E_UNAVAILABLE;
    if (!rc)
        rc = env->ask(env->ask_arg, system, prompt, asked, r, &r->ask_call);
    tg_free(prompt);
    tg_free(system);
    if (rc)
        step_done(r, s, NULL, rc == TG_E_UNAVAILABLE ? "no model to ask here" : tg_err_str(rc),
                  NULL);
}

static void reply_step(struct run *r, const struct tg_wf_step *s, json_t *ctx)
{
    char *text = tg_wf_render(s->text, ctx);
    if (!text || tg_json_set(r->rec, "reply", json_string(text))) {
        tg_free(text);
        step_done(r, s, NULL, "out of memory", NULL);
        return;
    }
    step_done(r, s, json_pack("{s:s}", "text", text), NULL, NULL);
    tg_free(text);
}

/* Run the current step. */
static void step_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct run *r = arg;
    const char *cur = tg_json_str(r->rec, "current", NULL);
    if (!cur || !strcmp(cur, "end")) {
        finish(r, NULL);
        return;
    }
    const struct tg_wf_step *s = tg_workflow_step(r->wf, cur);
    int64_t executed = tg_json_int(r->rec, "executed", 0) + 1;
    if (!s) {
        finish(r, "the workflow changed: its current step is gone");
        return;
    }
    if (executed > MAX_EXECUTED || tg_json_set(r->rec, "executed", json_integer(executed))) {
        finish(r, "too many steps: the workflow goes round in circles");
        return;
    }
    json_t *ctx = context(r);
    if (!ctx) {
        run_free(r);
        return;
    }
    switch (s->kind) {
    case TG_WF_TOOL:
        tool_step(r, s, ctx);
        break;
    case TG_WF_DECIDE:
        decide_step(r, s, ctx);
        break;
    case TG_WF_SEARCH:
        search_step(r, s, ctx);
        break;
    case TG_WF_REVIEW:
        review_step(r, s, ctx);
        break;
    case TG_WF_REPLY:
        reply_step(r, s, ctx);
        break;
    case TG_WF_MODEL:
        model_step(r, s, ctx);
        break;
    }
    json_decref(ctx);
}

/* ------------------------------------------------------------ the engine */

const struct tg_workflow *tg_wf_find(const struct tg_wf_engine *e, const char *name)
{
    for (size_t i = 0; e && name && i < e->n; i++)
        if (!strcmp(e->wfs[i]->name, name))
            return e->wfs[i];
    return NULL;
}

size_t tg_wf_count(const struct tg_wf_engine *e)
{
    return e ? e->n : 0;
}

const struct tg_workflow *tg_wf_at(const struct tg_wf_engine *e, size_t i)
{
    return e && i < e->n ? e->wfs[i] : NULL;
}

/* Take up a stored record that is running (here or after a restart). */
static void take_up(struct tg_wf_engine *e, json_t *rec)
{
    const struct tg_workflow *wf = tg_wf_find(e, tg_json_str(rec, "workflow", ""));
    if (!wf) {
        tg_warn("workflow run %s: no workflow %s any more; left as it is",
                tg_json_str(rec, "id", ""), tg_json_str(rec, "workflow", ""));
        json_decref(rec);
        return;
    }
    for (struct run *r = e->runs; r; r = r->next)
        if (!strcmp(r->id, tg_json_str(rec, "id", ""))) {
            json_decref(rec); /* already running here */
            return;
        }
    struct run *r = run_new(e, wf, rec);
    if (r)
        schedule(r, 0);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_wf_engine *e = arg;
    json_t *all = NULL;
    size_t i, n = 0;
    json_t *rec;
    if (tg_store_blob_list(e->env.st, RUN_PREFIX, 100000, &all) != TG_OK)
        return;
    json_array_foreach(all, i, rec)
    {
        if (!strcmp(tg_json_str(rec, "state", ""), "running")) {
            take_up(e, json_incref(rec));
            n++;
        } else if (!strcmp(tg_json_str(rec, "state", ""), "waiting")) {
            /* a person may have decided while no node ran (trustgate review decide) */
            json_t *task = NULL;
            const char *rid = tg_json_str(rec, "review_id", "");
            if (rid[0] && tg_store_review_get(e->env.st, rid, NULL, &task) == TG_OK) {
                const char *st = tg_json_str(task, "state", "");
                if (strcmp(st, "pending") != 0 && strcmp(st, "claimed") != 0) {
                    tg_wf_review_settled(e, task);
                    n++;
                }
            }
            json_decref(task);
        }
    }
    if (n)
        tg_info("workflows: %zu runs taken up where they were", n);
    json_decref(all);
}

int tg_wf_engine_create(const struct tg_wf_env *env, struct tg_workflow *const *wfs, size_t n,
                        struct tg_wf_engine **out)
{
    struct tg_wf_engine *e = tg_calloc(1, sizeof(*e));
    if (!e)
        return TG_E_NOMEM;
    e->env = *env;
    e->wfs = wfs;
    e->n = n;
    e->resume = evtimer_new(env->base, resume_cb, e);
    if (!e->resume || tg_curlev_create(env->base, 0, curl_done, e, &e->cv) != TG_OK) {
        if (e->resume)
            event_free(e->resume);
        tg_free(e);
        return TG_E_NOMEM;
    }
    struct timeval now = {0, 0};
    evtimer_add(e->resume, &now);
    *out = e;
    return TG_OK;
}

void tg_wf_engine_free(struct tg_wf_engine *e)
{
    if (!e)
        return;
    e->closing = true;
    while (e->runs)
        run_free(e->runs);
    tg_curlev_free(e->cv);
    event_free(e->resume);
    tg_free(e);
}

static int start_run(struct tg_wf_engine *e, const char *name, const json_t *input,
                     const char *conversation_id, const char *by, tg_wf_done_fn done, void *arg,
                     char id[TG_ID_MAX], char *err, size_t errlen)
{
    const struct tg_workflow *wf = tg_wf_find(e, name);
    size_t i;
    json_t *want;
    if (!wf) {
        snprintf(err, errlen, "no workflow named %s", name);
        return TG_E_NOTFOUND;
    }
    if (!json_is_object(input)) {
        snprintf(err, errlen, "input must be an object");
        return TG_E_INVAL;
    }
    json_array_foreach(wf->input, i, want)
    {
        const json_t *v = json_object_get(input, json_string_value(want));
        if (!v || json_is_null(v) || (json_is_string(v) && !json_string_length(v))) {
            snprintf(err, errlen, "input.%s is missing: workflow %s needs it",
                     json_string_value(want), name);
            return TG_E_INVAL;
        }
    }
    int rc = tg_id_new("wfr", id);
    if (rc)
        return rc;
    int64_t now = tg_clock_wall_ms();
    json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s?, s:s?, s:I, s:I, s:s, s:{}, s:[], "
                            "s:i}",
                            "id", id, "workflow", wf->name, "hash", wf->hash, "state", "running",
                            "input", input, "conversation_id", conversation_id, "by", by,
                            "created_ms", (json_int_t)now, "updated_ms", (json_int_t)now, "current",
                            wf->steps[0].id, "steps", "trail", "executed", 0);
    if (!rec)
        return TG_E_NOMEM;
    struct run *r = run_new(e, wf, rec);
    if (!r)
        return TG_E_NOMEM;
    rc = save(r, NULL, true);
    if (!rc) {
        r->done = done;
        r->done_arg = arg;
    }
    if (rc) {
        snprintf(err, errlen, "the run could not be stored: %s", tg_err_str(rc));
        run_free(r);
        return rc;
    }
    tg_info("workflow run %s (%s) started", id, wf->name);
    schedule(r, 0);
    return TG_OK;
}

int tg_wf_start(struct tg_wf_engine *e, const char *name, const json_t *input,
                const char *conversation_id, const char *by, char id[TG_ID_MAX], char *err,
                size_t errlen)
{
    return start_run(e, name, input, conversation_id, by, NULL, NULL, id, err, errlen);
}

int tg_wf_start_waiting(struct tg_wf_engine *e, const char *name, const json_t *input,
                        const char *conversation_id, const char *by, tg_wf_done_fn done, void *arg,
                        char id[TG_ID_MAX], char *err, size_t errlen)
{
    return start_run(e, name, input, conversation_id, by, done, arg, id, err, errlen);
}

/* Does the turn meet wf's trigger? */
/* Does wf's trigger take turns of this intent (one it names, or any)? */
static bool takes_intent(const struct tg_workflow *wf, const char *have)
{
    const json_t *intent = json_object_get(wf->trigger, "intent");
    size_t i;
    json_t *e;
    bool named = !intent || (json_is_string(intent) && !strcmp(json_string_value(intent), have));
    json_array_foreach(intent, i, e) named = named || !strcmp(json_string_value(e), have);
    return wf->trigger && named;
}

bool tg_wf_may_trigger(const struct tg_wf_engine *e, const char *intent)
{
    for (size_t i = 0; e && i < e->n; i++)
        if (takes_intent(e->wfs[i], intent ? intent : ""))
            return true;
    return false;
}

static bool triggered(const struct tg_workflow *wf, const json_t *facts)
{
    const json_t *t = wf->trigger, *turn = json_object_get(facts, "turn");
    const char *text = tg_json_str(turn, "text", "");
    size_t i;
    json_t *e;
    if (!takes_intent(wf, tg_json_str(turn, "intent", "")))
        return false;
    json_array_foreach(json_object_get(t, "entities"), i, e)
    {
        if (!json_object_get(json_object_get(facts, "entities"), json_string_value(e)))
            return false;
    }
    const json_t *kw = json_object_get(t, "keywords");
    bool said = json_array_size(kw) == 0;
    json_array_foreach(kw, i, e) said = said || strstr(text, json_string_value(e)) != NULL;
    return said;
}

const struct tg_workflow *tg_wf_match(const struct tg_wf_engine *e, const json_t *facts,
                                      json_t **input)
{
    for (size_t i = 0; e && i < e->n; i++) {
        const struct tg_workflow *wf = e->wfs[i];
        if (!triggered(wf, facts))
            continue;
        json_t *in = json_object();
        const char *k;
        json_t *v;
        bool ok = in != NULL;
        json_object_foreach(json_object_get(wf->trigger, "input"), k, v)
        {
            char *s = ok ? tg_wf_render(json_string_value(v), facts) : NULL;
            ok = s && s[0] && !tg_json_set(in, k, json_string(s));
            tg_free(s);
        }
        if (ok) {
            *input = in;
            return wf;
        }
        json_decref(in); /* an input it needs is empty: not this one */
    }
    return NULL;
}

void tg_wf_review_settled(struct tg_wf_engine *e, const json_t *task)
{
    const json_t *w = json_object_get(task, "workflow");
    const char *run_id = tg_json_str(w, "run", NULL), *step = tg_json_str(w, "step", NULL);
    if (!e || !run_id || !step)
        return;
    json_t *rec = tg_wf_run_get(e->env.st, run_id);
    const struct tg_workflow *wf = tg_wf_find(e, tg_json_str(rec, "workflow", ""));
    const struct tg_wf_step *s = wf ? tg_workflow_step(wf, step) : NULL;
    /* the run must still wait at that step for that task */
    if (!s || strcmp(tg_json_str(rec, "state", ""), "waiting") != 0 ||
        strcmp(tg_json_str(rec, "current", ""), step) != 0 ||
        strcmp(tg_json_str(rec, "review_id", ""), tg_json_str(task, "id", "")) != 0) {
        json_decref(rec);
        return;
    }
    struct run *r = run_new(e, wf, rec);
    if (!r)
        return; /* another node takes it up */
    /* read again under the run's lock: another node may have been first */
    json_t *fresh = tg_wf_run_get(e->env.st, run_id);
    if (!fresh || strcmp(tg_json_str(fresh, "state", ""), "waiting") != 0) {
        json_decref(fresh);
        run_free(r);
        return;
    }
    json_decref(r->rec);
    r->rec = fresh;
    const json_t *dec = json_object_get(task, "decision");
    json_t *out =
        json_pack("{s:s, s:s?, s:s?, s:s?}", "state", tg_json_str(task, "state", ""), "action",
                  tg_json_str(dec, "action", NULL), "answer", tg_json_str(task, "answer", NULL),
                  "actor", tg_json_str(dec, "actor", NULL));
    json_object_del(r->rec, "review_id");
    if (tg_json_set(r->rec, "state", json_string("running"))) {
        json_decref(out);
        run_free(r);
        return;
    }
    tg_info("workflow run %s (%s): review %s %s; going on", r->id, wf->name,
            tg_json_str(task, "id", ""), tg_json_str(task, "state", ""));
    if (s->kind != TG_WF_TOOL) {
        step_done(r, s, out, NULL, NULL);
        return;
    }
    /* a call kept for a person: approved (as drafted, or edited) it goes,
     * else the step fails */
    const char *action = tg_json_str(out, "action", "");
    bool yes = !strcmp(tg_json_str(task, "state", ""), "decided") &&
               (!strcmp(action, "approve") || !strcmp(action, "edit"));
    json_t *appr = json_object_get(step_rec(r, s->id), "approval");
    int rc =
        appr ? tg_json_set(appr, "state", json_string(yes ? "approved" : "refused")) : TG_E_NOMEM;
    if (!rc)
        rc = tg_json_set(appr, "by", json_string(tg_json_str(out, "actor", "")));
    json_decref(out);
    if (rc) {
        run_free(r);
    } else if (!yes) {
        step_done(r, s, NULL, "a person did not approve the call", NULL);
    } else if (save(r, s->id, false) == TG_OK) {
        schedule(r, 0); /* the call goes now */
    } else {
        run_free(r);
    }
}
