/*
 * stage_generate.c - the answer: the ladder (src/ladder) finds a backend
 * that writes a draft, or ends with a person.  A conversation whose last
 * turns degraded `ladder.degraded_to_human` times in a row (default 3) goes
 * straight to a person, tagged degraded_3x.
 *
 * The messages sent are the client's own.  When the client sends a single
 * user message (plus system prompts) and the customer has an ongoing
 * conversation, the stored earlier messages go in front of it, so a
 * conversation started on one device continues on another.
 */
#include "pipeline/pipeline.h"

#include "backend/backend.h"
#include "ladder/ladder.h"
#include "policy/policy.h"
#include "workflow/workflow.h"

#include <stdlib.h>
#include <string.h>

/* Build the message list for the model; a new reference, NULL on failure. */
static json_t *build_messages(struct tg_turn *t)
{
    json_t *client = json_object_get(t->admit.request, "messages");
    size_t n_user_side = 0, i;
    json_t *m;
    json_array_foreach(client, i, m)
    {
        const char *role = tg_json_str(m, "role", "");
        if (strcmp(role, "system") != 0 && strcmp(role, "developer") != 0)
            n_user_side++;
    }
    if (n_user_side != 1 || t->admit.new_conversation || t->p->cfg->history == 0)
        return json_incref(client);
    json_t *hist = NULL;
    /* The previous turn of a quick exchange may still be queued for the
     * writer; a flush ends its group window (one commit, about a millisecond). */
    if (t->run.created_ms - t->conv.updated_ms < 2000)
        tg_store_flush(t->p->store);
    int rc = tg_store_messages(t->p->store, t->conv.id, t->p->cfg->history, &hist);
    if (rc == TG_E_NOMEM)
        return NULL; /* never the model without the conversation for want of memory */
    if (rc || json_array_size(hist) == 0) {
        json_decref(hist);
        return json_incref(client);
    }
    json_t *out = json_array();
    rc = out ? TG_OK : TG_E_NOMEM;
    /* system prompts first, then the stored conversation, then the new message */
    json_array_foreach(client, i, m)
    {
        const char *role = tg_json_str(m, "role", "");
        if (!rc && (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0))
            rc = tg_json_push(out, json_incref(m));
    }
    json_array_foreach(hist, i, m)
    {
        if (!rc)
            rc = tg_json_push(out, json_pack("{s:s, s:s}", "role", tg_json_str(m, "role", "user"),
                                             "content", tg_json_str(m, "content", "")));
    }
    json_array_foreach(client, i, m)
    {
        const char *role = tg_json_str(m, "role", "");
        if (!rc && strcmp(role, "system") != 0 && strcmp(role, "developer") != 0)
            rc = tg_json_push(out, json_incref(m));
    }
    if (rc) {
        json_decref(out);
        json_decref(hist);
        out = NULL;
    } else {
        t->generate.history = hist;
    }
    return out;
}

/* The tool calls' names and arguments as the output rules read them. */
static int index_calls(struct tg_turn *t)
{
    size_t n = json_array_size(t->tool_calls), i;
    json_t *call;
    if (!n)
        return TG_OK;
    t->calls = tg_arena_alloc(&t->arena, n * sizeof(*t->calls));
    if (!t->calls)
        return TG_E_NOMEM;
    json_array_foreach(t->tool_calls, i, call)
    {
        const json_t *fn = json_object_get(call, "function");
        const json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
        struct tg_policy_tool_call *c = &t->calls[t->n_calls++];
        c->name = json_is_string(name) ? json_string_value(name) : "";
        c->name_len = json_is_string(name) ? json_string_length(name) : 0;
        c->arguments = json_is_string(args) ? json_string_value(args) : "";
        c->arguments_len = json_is_string(args) ? json_string_length(args) : 0;
    }
    return TG_OK;
}

static void dispatched_cb(struct tg_dispatch_result *res, void *arg)
{
    struct tg_turn *t = arg;
    int rc = res->events_err; /* a step down missing from the record fails the turn */
    t->generate.dispatch = NULL;
    t->generate.degradations = res->degradations;
    /* the result lives only for this call: keep copies of what the turn points at */
    t->rung = res->rung ? tg_arena_strdup(&t->arena, res->rung) : NULL;
    t->generate.backend = res->backend;
    json_decref(t->generate.ladder_events);
    t->generate.ladder_events = res->events;
    res->events = NULL;
    if (t->generate.client_gone) {
        /* nothing was asked after the client left; the turn is recorded as such */
    } else if (res->human) {
        t->handoff = true;
    } else if (res->err) {
        tg_turn_fail(t, res->err, res->http_status, tg_arena_strdup(&t->arena, res->code), NULL,
                     "%s", res->message);
    } else {
        t->draft = tg_arena_strndup(&t->arena, res->content, res->len);
        t->draft_len = res->len;
        if (!t->draft)
            tg_turn_fail(t, TG_E_NOMEM, 500, "internal_error", NULL, "out of memory");
        t->tool_calls = res->tool_calls;
        res->tool_calls = NULL;
        t->logprobs = res->logprobs;
        res->logprobs = NULL;
        if (index_calls(t))
            tg_turn_fail(t, TG_E_NOMEM, 500, "internal_error", NULL, "out of memory");
        tg_strlcpy(t->generate.finish_reason, res->finish_reason,
                   sizeof(t->generate.finish_reason));
        if (res->confidence >= 0)
            t->confidence = res->confidence;
        if (!rc && res->low_confidence)
            rc = tg_json_push(t->tags, json_string("low_confidence"));
        /* the evidence the answer quotes: its citation has the same index */
        if (!rc && res->cited >= 0 && (size_t)res->cited < t->retrieve.n_evidence)
            rc = tg_json_set(json_array_get(t->retrieve.citations, (size_t)res->cited), "cited",
                             json_true());
        t->promise = res->holding; /* a promise to come back, not an answer */
        tg_strlcpy(t->generate.upstream_model, res->model, sizeof(t->generate.upstream_model));
        t->generate.prompt_tokens = res->prompt_tokens;
        t->generate.completion_tokens = res->completion_tokens;
    }
    if (!rc && t->generate.degradations && !res->human)
        rc = tg_json_push(t->tags, json_string("degraded"));
    if (rc && !t->err)
        tg_turn_fail(t, rc, 500, "internal_error", NULL, "out of memory");
    if (t->run.waiting)
        tg_pipeline_resume(t);
}

void tg_turn_client_gone(struct tg_turn *t)
{
    if (t->generate.client_gone)
        return;
    t->generate.client_gone = true;
    if (!t->generate.dispatch)
        return;
    /* no further attempts for a client that is not there to read them */
    tg_dispatch_cancel(t->generate.dispatch);
    t->generate.dispatch = NULL;
    tg_turn_fail(t, TG_E_UNAVAILABLE, 499, "client_closed", NULL,
                 "the client closed the connection before the answer");
    if (t->run.waiting)
        tg_pipeline_resume(t);
}

/* The turn's admission class: its traffic class (tg_turn_class), which
 * the ladder's classes follow (VIP, customers, internal work). */
static int turn_priority(const struct tg_turn *t)
{
    static const int by_class[] = {[TG_CLASS_INTERNAL] = TG_PRIORITY_INTERNAL,
                                   [TG_CLASS_CUSTOMER] = TG_PRIORITY_CUSTOMER,
                                   [TG_CLASS_VIP] = TG_PRIORITY_VIP};
    return by_class[tg_turn_class(t)];
}

/* The ladder: a backend's draft, or a person. */
static enum tg_stage_rc ladder(struct tg_turn *t)
{
    t->generate.backend = t->a->route;
    json_t *messages = build_messages(t);
    if (!messages) {
        tg_turn_fail(t, TG_E_NOMEM, 500, "internal_error", NULL, "out of memory");
        return TG_NEXT;
    }
    struct tg_backend_request rq = {
        .model = t->admit.model,
        .messages = messages,
        .params = t->admit.request,
        .question = t->admit.user_text,
        .evidence = t->retrieve.evidence,
        .n_evidence = t->retrieve.n_evidence,
        .query_coverage = t->retrieve.query_coverage,
        .intent_probability = t->a->intents ? t->understand.intent_confidence : -1,
        .for_review = t->check.rules.review,
    };
    if (t->conv.customer_id[0]) {
        /* the upstream's `user` (abuse monitoring, caching) never names the customer */
        char ps[33];
        tg_pii_pseudonym(t->p->pseudonym_key, sizeof(t->p->pseudonym_key), "customer",
                         t->conv.customer_id, strlen(t->conv.customer_id), ps);
        rq.user = tg_arena_strdup(&t->arena, ps);
    }
    if (tg_stream_through_applies(t)) {
        rq.on_delta = tg_stream_through_delta;
        rq.delta_arg = t;
        rq.committed = &t->generate.committed;
    }
    /* A conversation that degraded too often in a row goes to a person. */
    struct tg_dispatch_opts opts = {
        .to_human = t->conv.degraded_streak >= tg_ladder_max_streak(t->a->ladder),
        .priority = turn_priority(t),
    };
    int rc = opts.to_human ? tg_json_push(t->tags, json_string("degraded_3x")) : TG_OK;
    bool done = false;
    if (!rc)
        rc = tg_dispatch_start(t->a->ladder, t->p->base, &rq, &opts, dispatched_cb, t,
                               &t->generate.dispatch);
    json_decref(messages);
    if (rc) {
        tg_turn_fail(t, rc, 500, "internal_error", NULL, "the ladder could not start: %s",
                     tg_err_str(rc));
        return TG_NEXT;
    }
    /* A rung that answered at once has already filled the turn. */
    done = t->generate.dispatch == NULL;
    return done ? TG_NEXT : TG_WAIT;
}

/* ------------------------------------------------------------ workflows */

/* What a trigger reads of the turn: {turn: {text, intent, language},
 * entities: {TYPE: the first one's text, money: the first amount}}. */
static json_t *turn_facts(const struct tg_turn *t)
{
    json_t *ents = json_object();
    size_t i;
    json_t *e;
    int rc = ents ? TG_OK : TG_E_NOMEM;
    json_array_foreach(json_object_get(t->understand.entities, "pii"), i, e)
    {
        const char *type = tg_json_str(e, "type", "");
        if (!rc && type[0] && !json_object_get(ents, type))
            rc = tg_json_set(ents, type, json_string(tg_json_str(e, "text", "")));
    }
    e = json_array_get(json_object_get(t->understand.entities, "money"), 0);
    if (!rc && e)
        rc = tg_json_set(ents, "money", json_real(tg_json_num(e, "value_cny", 0)));
    if (rc) {
        json_decref(ents);
        return NULL;
    }
    return json_pack("{s:{s:s, s:s?, s:s?}, s:o}", "turn", "text", t->admit.user_text, "intent",
                     t->understand.intent, "language", t->understand.language, "entities", ents);
}

/*
 * The run's tool outputs as evidence (the grounding check finds the
 * numbers of its reply there) and as a citation, inserted after the
 * passages so that citation i stays evidence i.
 */
static int workflow_evidence(struct tg_turn *t, const json_t *run)
{
    json_t *outs = json_object();
    const char *k;
    json_t *s;
    int rc = outs ? TG_OK : TG_E_NOMEM;
    json_object_foreach(json_object_get(run, "steps"), k, s)
    {
        const json_t *o = json_object_get(s, "output");
        if (!rc && o)
            rc = tg_json_set(outs, k, json_incref((json_t *)o));
    }
    char *text = rc ? NULL : tg_json_dumps(outs, JSON_COMPACT);
    json_decref(outs);
    struct tg_evidence *ev =
        text ? tg_arena_alloc(&t->arena, (t->retrieve.n_evidence + 1) * sizeof(*ev)) : NULL;
    const char *src = tg_arena_printf(&t->arena, "workflow:%s", t->workflow.run);
    const char *title = tg_arena_printf(&t->arena, "工作流「%s」", t->workflow.name);
    const char *copy = text ? tg_arena_strdup(&t->arena, text) : NULL;
    free(text);
    if (!ev || !src || !title || !copy)
        return TG_E_NOMEM;
    if (t->retrieve.n_evidence)
        memcpy(ev, t->retrieve.evidence, t->retrieve.n_evidence * sizeof(*ev));
    ev[t->retrieve.n_evidence] = (struct tg_evidence){.source = src, .title = title, .text = copy};
    if (!t->retrieve.citations)
        t->retrieve.citations = json_array();
    if (!t->retrieve.citations ||
        json_array_insert_new(t->retrieve.citations, t->retrieve.n_evidence,
                              json_pack("{s:s, s:s, s:s, s:s, s:b}", "source", src, "title", title,
                                        "workflow", t->workflow.name, "run", t->workflow.run,
                                        "cited", 1)))
        return TG_E_NOMEM;
    t->retrieve.evidence = ev;
    t->retrieve.n_evidence++;
    return TG_OK;
}

/* The turn's run ended, waits for a person, or was given up (the ladder
 * answers then). */
static void workflow_cb(void *arg, const json_t *run)
{
    struct tg_turn *t = arg;
    const char *state = tg_json_str(run, "state", ""), *reply = tg_json_str(run, "reply", NULL);
    int rc = TG_OK;
    if (!strcmp(state, "done") && reply && reply[0]) {
        t->draft = tg_arena_strdup(&t->arena, reply);
        t->draft_len = t->draft ? strlen(t->draft) : 0;
        t->rung = "workflow";
        t->generate.backend = NULL;
        rc = t->draft ? workflow_evidence(t, run) : TG_E_NOMEM;
    } else if (!strcmp(state, "waiting")) {
        t->workflow.waiting = true;
        t->workflow.review_id = tg_arena_strdup(&t->arena, tg_json_str(run, "review_id", ""));
        t->rung = "workflow";
        t->generate.backend = NULL;
        rc = t->workflow.review_id ? TG_OK : TG_E_NOMEM;
    } else {
        /* failed, or given up here: the customer still gets an answer */
        tg_warn("turn %s: workflow run %s %s; the ladder answers", t->admit.id, t->workflow.run,
                state);
        rc = tg_json_push(t->tags, json_string("workflow_failed"));
        if (!rc && ladder(t) == TG_WAIT)
            return; /* dispatched_cb resumes the turn */
    }
    if (rc && !t->err)
        tg_turn_fail(t, rc, 500, "internal_error", NULL, "out of memory");
    if (t->run.waiting)
        tg_pipeline_resume(t);
}

/* A workflow whose trigger the turn meets: started, the turn waits for it. */
static bool start_workflow(struct tg_turn *t)
{
    if (!tg_wf_may_trigger(t->p->workflows, t->understand.intent))
        return false; /* most turns: nothing to make */
    json_t *facts = turn_facts(t), *input = NULL;
    const struct tg_workflow *wf = facts ? tg_wf_match(t->p->workflows, facts, &input) : NULL;
    char id[TG_ID_MAX], err[256];
    bool started = false;
    json_decref(facts);
    if (wf && tg_wf_start_waiting(t->p->workflows, wf->name, input, t->conv.id, "chat", workflow_cb,
                                  t, id, err, sizeof(err)) == TG_OK) {
        t->workflow.name = tg_arena_strdup(&t->arena, wf->name);
        t->workflow.run = tg_arena_strdup(&t->arena, id);
        started = t->workflow.name && t->workflow.run;
    } else if (wf) {
        tg_warn("turn %s: workflow %s could not start: %s", t->admit.id, wf->name, err);
    }
    json_decref(input);
    return started && tg_json_push(t->tags, json_string("workflow")) == TG_OK;
}

enum tg_stage_rc tg_stage_generate(struct tg_turn *t)
{
    /* A decision AI may not make, or a refusal: no model is asked. */
    if (t->check.rules.skip_generate)
        return TG_NEXT;
    if (start_workflow(t))
        return TG_WAIT; /* workflow_cb resumes the turn */
    return ladder(t);
}
