/*
 * def.c - reading a workflow file (workflow.h): YAML with lines, every
 * problem reported as FILE:LINE, nothing half-built returned.
 */
#include "workflow/workflow.h"

#include "config/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_SLA_MS 120000
#define DEFAULT_TOP_K 3
#define MAX_STEPS 64

struct ld {
    const char *path;
    const struct tg_config_lines *lines;
    json_t *errs;
    int rc; /* TG_E_NOMEM sticks; errors count in bad */
    size_t bad;
};

static void err(struct ld *l, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void err(struct ld *l, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (tg_config_errorf(l->errs, l->path, line, "%s", msg))
        l->rc = TG_E_NOMEM;
    l->bad++;
}

/* A copy of the string at key (NULL when absent); a wrong type is reported. */
static char *str_of(struct ld *l, const json_t *obj, const char *key, const char *where, bool need)
{
    const json_t *v = json_object_get(obj, key);
    int line = tg_config_lines_key(l->lines, obj, key);
    if (!v) {
        if (need)
            err(l, tg_config_lines_node(l->lines, obj), "%s needs %s", where, key);
        return NULL;
    }
    if (!json_is_string(v) || !json_string_length(v)) {
        err(l, line, "%s.%s must be a non-empty string, not %s", where, key,
            tg_config_type_name(v));
        return NULL;
    }
    char *s = tg_strdup(json_string_value(v));
    if (!s)
        l->rc = TG_E_NOMEM;
    return s;
}

static int64_t duration_of(struct ld *l, const json_t *obj, const char *key, const char *where,
                           int64_t def)
{
    const json_t *v = json_object_get(obj, key);
    int64_t ms = def;
    if (!v)
        return def;
    if (json_is_integer(v))
        ms = json_integer_value(v) * 1000;
    else if (!json_is_string(v) || tg_parse_duration_ms(json_string_value(v), &ms) != TG_OK)
        err(l, tg_config_lines_key(l->lines, obj, key),
            "%s.%s must be a duration such as 500ms, 2s or 1m", where, key);
    if (ms <= 0 || ms > 24LL * 3600 * 1000) {
        err(l, tg_config_lines_key(l->lines, obj, key), "%s.%s must be between 1ms and 24h", where,
            key);
        ms = def;
    }
    return ms;
}

static const char *const kind_names[] = {
    [TG_WF_TOOL] = "tool",     [TG_WF_DECIDE] = "decide", [TG_WF_SEARCH] = "search",
    [TG_WF_REVIEW] = "review", [TG_WF_REPLY] = "reply",   [TG_WF_MODEL] = "model",
};

static const char *const op_names[] = {
    [TG_WF_EQ] = "eq", [TG_WF_NE] = "ne", [TG_WF_CONTAINS] = "contains", [TG_WF_EXISTS] = "exists",
    [TG_WF_GT] = "gt", [TG_WF_LT] = "lt", [TG_WF_MENTIONS] = "mentions",
};

/* {path, OP: value} */
static void load_case(struct ld *l, const json_t *c, const char *where, struct tg_wf_case *out)
{
    static const char *const keys[] = {"path",   "eq", "ne", "contains",
                                       "exists", "gt", "lt", "mentions"};
    int line = tg_config_lines_node(l->lines, c);
    if (!json_is_object(c)) {
        err(l, line, "%s must be a mapping {path, eq|ne|contains|exists|gt|lt}", where);
        return;
    }
    l->bad += tg_config_check_keys(l->errs, l->path, l->lines, c, where, keys, TG_ARRAY_LEN(keys));
    out->path = str_of(l, c, "path", where, true);
    size_t ops = 0;
    for (size_t k = 0; k < TG_ARRAY_LEN(op_names); k++) {
        const json_t *v = json_object_get(c, op_names[k]);
        if (!v)
            continue;
        ops++;
        out->op = (enum tg_wf_op)k;
        if (k == TG_WF_EXISTS) {
            if (!json_is_boolean(v))
                err(l, tg_config_lines_key(l->lines, c, "exists"),
                    "%s.exists must be true or false", where);
            out->exists = json_is_true(v);
        } else {
            if ((k == TG_WF_GT || k == TG_WF_LT) && !json_is_number(v))
                err(l, tg_config_lines_key(l->lines, c, op_names[k]), "%s.%s must be a number",
                    where, op_names[k]);
            out->value = json_incref((json_t *)v);
        }
    }
    if (ops != 1)
        err(l, line, "%s needs exactly one of eq, ne, contains, mentions, exists, gt, lt", where);
}

static void load_decide(struct ld *l, const json_t *s, const char *where, struct tg_wf_step *st)
{
    const json_t *cases = json_object_get(s, "cases");
    size_t i;
    json_t *c;
    if (!json_is_array(cases) || !json_array_size(cases)) {
        err(l, tg_config_lines_node(l->lines, s), "%s (decide) needs cases: a list", where);
        return;
    }
    st->cases = tg_calloc(json_array_size(cases), sizeof(*st->cases));
    if (!st->cases) {
        l->rc = TG_E_NOMEM;
        return;
    }
    json_array_foreach(cases, i, c)
    {
        static const char *const keys[] = {"when", "next"};
        char w[160];
        snprintf(w, sizeof(w), "%s.cases[%zu]", where, i);
        struct tg_wf_case *wc = &st->cases[st->n_cases++];
        if (!json_is_object(c)) {
            err(l, tg_config_lines_elem(l->lines, cases, i), "%s must be a mapping {when, next}",
                w);
            continue;
        }
        l->bad += tg_config_check_keys(l->errs, l->path, l->lines, c, w, keys, 2);
        char wh[176];
        snprintf(wh, sizeof(wh), "%s.when", w);
        load_case(l, json_object_get(c, "when"), wh, wc);
        wc->next = str_of(l, c, "next", w, true);
    }
    st->otherwise = str_of(l, s, "otherwise", where, false);
}

static const char *const common_keys[] = {"id", "kind", "next", "on_fail"};

static bool allowed(const char *k, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(k, keys[i]))
            return true;
    for (size_t i = 0; i < TG_ARRAY_LEN(common_keys); i++)
        if (!strcmp(k, common_keys[i]))
            return true;
    return false;
}

static void load_step(struct ld *l, const json_t *s, size_t i, const json_t *list,
                      struct tg_wf_step *st)
{
    static const char *const tool_keys[] = {"tool", "url", "args", "headers", "timeout", "retries"};
    static const char *const decide_keys[] = {"cases", "otherwise"};
    static const char *const search_keys[] = {"query", "top_k"};
    static const char *const review_keys[] = {"queue", "question", "draft", "attestations", "sla"};
    static const char *const reply_keys[] = {"text"};
    static const char *const model_keys[] = {"prompt", "system"};
    char where[64];
    snprintf(where, sizeof(where), "steps[%zu]", i);
    st->line = tg_config_lines_elem(l->lines, list, i);
    if (!json_is_object(s)) {
        err(l, st->line, "%s must be a mapping with id and kind", where);
        return;
    }
    st->id = str_of(l, s, "id", where, true);
    const char *kind = tg_json_str(s, "kind", "");
    size_t k = 0;
    while (k < TG_ARRAY_LEN(kind_names) && strcmp(kind, kind_names[k]) != 0)
        k++;
    if (k == TG_ARRAY_LEN(kind_names)) {
        err(l,
            tg_config_lines_key(l->lines, s, "kind") ? tg_config_lines_key(l->lines, s, "kind")
                                                     : st->line,
            "%s.kind must be one of tool, decide, search, review, reply, model, not '%s'", where,
            kind);
        return;
    }
    st->kind = (enum tg_wf_kind)k;
    const char *const *keys[] = {tool_keys,   decide_keys, search_keys,
                                 review_keys, reply_keys,  model_keys};
    const size_t nkeys[] = {TG_ARRAY_LEN(tool_keys),   TG_ARRAY_LEN(decide_keys),
                            TG_ARRAY_LEN(search_keys), TG_ARRAY_LEN(review_keys),
                            TG_ARRAY_LEN(reply_keys),  TG_ARRAY_LEN(model_keys)};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)s, key, v)
    {
        if (!allowed(key, keys[k], nkeys[k]))
            err(l, tg_config_lines_key(l->lines, s, key), "unknown key '%s' in %s (a %s step)", key,
                where, kind);
    }
    st->next = str_of(l, s, "next", where, false);
    st->on_fail = str_of(l, s, "on_fail", where, false);
    switch (st->kind) {
    case TG_WF_TOOL: {
        st->url = str_of(l, s, "url", where, true);
        st->tool = str_of(l, s, "tool", where, false);
        if (st->url && !tg_str_has_prefix(st->url, "http://") &&
            !tg_str_has_prefix(st->url, "https://"))
            err(l, tg_config_lines_key(l->lines, s, "url"),
                "%s.url must be an http:// or https:// URL", where);
        const json_t *a = json_object_get(s, "args");
        if (a && !json_is_object(a))
            err(l, tg_config_lines_key(l->lines, s, "args"), "%s.args must be a mapping", where);
        st->args = a ? json_deep_copy(a) : json_object();
        if (!st->args)
            l->rc = TG_E_NOMEM;
        const json_t *hd = json_object_get(s, "headers");
        const char *hk;
        json_t *hv;
        if (hd && !json_is_object(hd))
            err(l, tg_config_lines_key(l->lines, s, "headers"),
                "%s.headers must be a mapping of header names to values", where);
        json_object_foreach((json_t *)hd, hk, hv)
        {
            bool name_ok = hk[0] != '\0' && strcspn(hk, " \t\r\n:") == strlen(hk);
            if (!name_ok || !json_is_string(hv) || strpbrk(json_string_value(hv), "\r\n"))
                err(l, tg_config_lines_key(l->lines, hd, hk),
                    "%s.headers.%s must be a header name with a one-line string value", where, hk);
        }
        st->headers = json_is_object(hd) ? json_deep_copy(hd) : NULL;
        st->timeout_ms = duration_of(l, s, "timeout", where, DEFAULT_TIMEOUT_MS);
        const json_t *r = json_object_get(s, "retries");
        st->retries = r ? (long)json_integer_value(r) : 0;
        if (r && (!json_is_integer(r) || st->retries < 0 || st->retries > 10))
            err(l, tg_config_lines_key(l->lines, s, "retries"),
                "%s.retries must be an integer from 0 to 10", where);
        break;
    }
    case TG_WF_DECIDE:
        load_decide(l, s, where, st);
        break;
    case TG_WF_SEARCH: {
        st->query = str_of(l, s, "query", where, true);
        const json_t *t = json_object_get(s, "top_k");
        st->top_k = t ? (size_t)json_integer_value(t) : DEFAULT_TOP_K;
        if (t && (!json_is_integer(t) || json_integer_value(t) < 1 || json_integer_value(t) > 20))
            err(l, tg_config_lines_key(l->lines, s, "top_k"),
                "%s.top_k must be an integer from 1 to 20", where);
        break;
    }
    case TG_WF_REVIEW: {
        st->queue = str_of(l, s, "queue", where, false);
        st->question = str_of(l, s, "question", where, true);
        st->draft = str_of(l, s, "draft", where, false);
        const json_t *a = json_object_get(s, "attestations");
        size_t j;
        json_t *e;
        if (a && !json_is_array(a))
            err(l, tg_config_lines_key(l->lines, s, "attestations"),
                "%s.attestations must be a list of strings", where);
        json_array_foreach(a, j, e)
        {
            if (!json_is_string(e))
                err(l, tg_config_lines_elem(l->lines, a, j),
                    "%s.attestations[%zu] must be a string", where, j);
        }
        st->attestations = json_is_array(a) ? json_deep_copy(a) : json_array();
        if (!st->attestations)
            l->rc = TG_E_NOMEM;
        st->sla_ms = duration_of(l, s, "sla", where, DEFAULT_SLA_MS);
        break;
    }
    case TG_WF_REPLY:
        st->text = str_of(l, s, "text", where, true);
        break;
    case TG_WF_MODEL:
        st->prompt = str_of(l, s, "prompt", where, true);
        st->system = str_of(l, s, "system", where, false);
        break;
    }
}

/* A list of non-empty strings at obj.key (absent: fine). */
static void check_words(struct ld *l, const json_t *obj, const char *key, const char *where)
{
    const json_t *v = json_object_get(obj, key);
    size_t i;
    json_t *e;
    if (v && !json_is_array(v))
        err(l, tg_config_lines_key(l->lines, obj, key), "%s.%s must be a list of strings", where,
            key);
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) || !json_string_length(e))
            err(l, tg_config_lines_elem(l->lines, v, i), "%s.%s[%zu] must be a non-empty string",
                where, key, i);
    }
}

/* trigger: {intent?, entities?, keywords?, input}: every input the
 * workflow needs made by a template of the turn's facts. */
static void load_trigger(struct ld *l, const json_t *root, struct tg_workflow *wf)
{
    static const char *const keys[] = {"intent", "entities", "keywords", "input"};
    const json_t *t = json_object_get(root, "trigger");
    if (!t)
        return;
    int line = tg_config_lines_key(l->lines, root, "trigger");
    if (!json_is_object(t)) {
        err(l, line, "trigger must be a mapping {intent, entities, keywords, input}");
        return;
    }
    l->bad += tg_config_check_keys(l->errs, l->path, l->lines, t, "trigger", keys, 4);
    const json_t *intent = json_object_get(t, "intent");
    if (json_is_array(intent))
        check_words(l, t, "intent", "trigger");
    else if (intent && (!json_is_string(intent) || !json_string_length(intent)))
        err(l, tg_config_lines_key(l->lines, t, "intent"),
            "trigger.intent must be an intent name or a list of them");
    check_words(l, t, "entities", "trigger");
    check_words(l, t, "keywords", "trigger");
    const json_t *in = json_object_get(t, "input");
    size_t i;
    json_t *name;
    if (!json_is_object(in)) {
        err(l, line, "trigger needs input: a mapping of the run's input to templates");
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v)
    {
        if (!json_is_string(v))
            err(l, tg_config_lines_key(l->lines, in, k), "trigger.input.%s must be a string", k);
    }
    json_array_foreach(wf->input, i, name)
    {
        if (json_is_string(name) && !json_object_get(in, json_string_value(name)))
            err(l, line, "trigger.input does not make input %s, which the workflow needs",
                json_string_value(name));
    }
    wf->trigger = json_deep_copy(t);
    if (!wf->trigger)
        l->rc = TG_E_NOMEM;
}

/* The step ids a string's {{refs}} name (their first path component),
 * each checked to be input or a step before index i. */
static void check_refs(struct ld *l, const struct tg_workflow *wf, size_t i, const char *s,
                       int line, const char *where)
{
    for (const char *p = s ? strstr(s, "{{") : NULL; p; p = strstr(p + 2, "{{")) {
        const char *q = p + 2;
        while (*q == ' ')
            q++;
        size_t n = strcspn(q, ".} ");
        if (n == 5 && !strncmp(q, "input", 5))
            continue;
        size_t j = 0;
        while (j < i && !(strlen(wf->steps[j].id ? wf->steps[j].id : "") == n &&
                          !strncmp(wf->steps[j].id, q, n)))
            j++;
        if (j == i)
            err(l, line, "%s refers to '%.*s', which is neither input nor an earlier step", where,
                (int)n, q);
    }
}

static void check_refs_json(struct ld *l, const struct tg_workflow *wf, size_t i, const json_t *v,
                            int line, const char *where)
{
    const char *k;
    json_t *e;
    size_t j;
    if (json_is_string(v))
        check_refs(l, wf, i, json_string_value(v), line, where);
    else if (json_is_object(v))
        json_object_foreach((json_t *)v, k, e) check_refs_json(l, wf, i, e, line, where);
    else if (json_is_array(v))
        json_array_foreach(v, j, e) check_refs_json(l, wf, i, e, line, where);
}

static void check_target(struct ld *l, const struct tg_workflow *wf, const char *name, int line,
                         const char *where, const char *what)
{
    if (name && strcmp(name, "end") != 0 && !tg_workflow_step(wf, name))
        err(l, line, "%s.%s names no step: '%s'", where, what, name);
}

/* Ids unique, targets real, references to earlier steps only. */
static void check_graph(struct ld *l, const struct tg_workflow *wf)
{
    for (size_t i = 0; i < wf->n_steps; i++) {
        const struct tg_wf_step *s = &wf->steps[i];
        char where[64];
        snprintf(where, sizeof(where), "steps[%zu]", i);
        for (size_t j = 0; s->id && j < i; j++)
            if (wf->steps[j].id && !strcmp(wf->steps[j].id, s->id))
                err(l, s->line, "%s: the id '%s' is used by steps[%zu] too", where, s->id, j);
        if (s->id && (!strcmp(s->id, "end") || !strcmp(s->id, "input")))
            err(l, s->line, "%s: '%s' is reserved, not a step id", where, s->id);
        check_target(l, wf, s->next, s->line, where, "next");
        check_target(l, wf, s->on_fail, s->line, where, "on_fail");
        check_target(l, wf, s->otherwise, s->line, where, "otherwise");
        for (size_t c = 0; c < s->n_cases; c++) {
            check_target(l, wf, s->cases[c].next, s->line, where, "cases.next");
            check_refs(l, wf, i, s->cases[c].path ? s->cases[c].path : "", s->line, where);
            check_refs_json(l, wf, i, s->cases[c].value, s->line, where);
            /* a path is a reference without braces */
            char buf[200];
            snprintf(buf, sizeof(buf), "{{%s}}", s->cases[c].path ? s->cases[c].path : "input");
            check_refs(l, wf, i, buf, s->line, where);
        }
        check_refs_json(l, wf, i, s->args, s->line, where);
        const char *texts[] = {s->url,  s->query,  s->question, s->draft,
                               s->text, s->prompt, s->system};
        for (size_t t = 0; t < TG_ARRAY_LEN(texts); t++)
            check_refs(l, wf, i, texts[t], s->line, where);
    }
    if (wf->n_steps && wf->steps[wf->n_steps - 1].kind == TG_WF_DECIDE &&
        !wf->steps[wf->n_steps - 1].otherwise)
        err(l, wf->steps[wf->n_steps - 1].line,
            "the last step decides without otherwise: a run that matches no case would have "
            "nowhere to go");
}

int tg_workflow_load(const char *path, struct tg_workflow **out, json_t *errs)
{
    static const char *const top_keys[] = {"name", "description", "input", "trigger", "steps"};
    json_t *root = NULL;
    struct tg_config_lines *lines = NULL;
    struct tg_buf bytes;
    struct tg_workflow *wf = NULL;
    int rc = tg_config_parse_yaml(path, &root, &lines, errs);
    if (rc)
        return rc;
    /* ${NAME} from the environment, as in the config: tool addresses, tokens */
    rc = tg_config_expand_env(root, lines, path, errs);
    if (rc) {
        json_decref(root);
        tg_config_lines_free(lines);
        return rc;
    }
    struct ld l = {.path = path, .lines = lines, .errs = errs};
    tg_buf_init(&bytes, TG_BUF_UNLIMITED);
    wf = tg_calloc(1, sizeof(*wf));
    if (!wf || !(wf->path = tg_strdup(path))) {
        l.rc = TG_E_NOMEM;
        goto out;
    }
    if (tg_buf_read_file(&bytes, path) == TG_OK) {
        uint8_t h[TG_SHA256_LEN];
        tg_sha256(bytes.data, bytes.len, h);
        tg_hex_encode(h, sizeof(h), wf->hash);
    }
    if (!json_is_object(root)) {
        err(&l, 1, "a workflow is a mapping with name and steps");
        goto out;
    }
    l.bad += tg_config_check_keys(errs, path, lines, root, NULL, top_keys, TG_ARRAY_LEN(top_keys));
    wf->name = str_of(&l, root, "name", "the workflow", true);
    wf->description = str_of(&l, root, "description", "the workflow", false);
    const json_t *in = json_object_get(root, "input");
    size_t i;
    json_t *e;
    if (in && !json_is_array(in))
        err(&l, tg_config_lines_key(lines, root, "input"), "input must be a list of names");
    json_array_foreach(in, i, e)
    {
        if (!json_is_string(e) || !json_string_length(e))
            err(&l, tg_config_lines_elem(lines, in, i), "input[%zu] must be a name", i);
    }
    wf->input = json_is_array(in) ? json_deep_copy(in) : json_array();
    if (!wf->input)
        l.rc = TG_E_NOMEM;
    else
        load_trigger(&l, root, wf);
    const json_t *steps = json_object_get(root, "steps");
    if (!json_is_array(steps) || !json_array_size(steps) || json_array_size(steps) > MAX_STEPS) {
        err(&l, steps ? tg_config_lines_key(lines, root, "steps") : 1,
            "steps must be a list of 1 to %d steps", MAX_STEPS);
        goto out;
    }
    wf->steps = tg_calloc(json_array_size(steps), sizeof(*wf->steps));
    if (!wf->steps) {
        l.rc = TG_E_NOMEM;
        goto out;
    }
    json_array_foreach(steps, i, e)
    {
        load_step(&l, e, i, steps, &wf->steps[wf->n_steps++]);
        if (l.rc)
            goto out;
    }
    check_graph(&l, wf);
out:
    tg_buf_free(&bytes);
    json_decref(root);
    tg_config_lines_free(lines);
    rc = l.rc ? l.rc : l.bad ? TG_E_CONFIG : TG_OK;
    if (rc) {
        tg_workflow_free(wf);
        return rc;
    }
    *out = wf;
    return TG_OK;
}

const struct tg_wf_step *tg_workflow_step(const struct tg_workflow *wf, const char *id)
{
    for (size_t i = 0; id && i < wf->n_steps; i++)
        if (wf->steps[i].id && !strcmp(wf->steps[i].id, id))
            return &wf->steps[i];
    return NULL;
}

void tg_workflow_free(struct tg_workflow *wf)
{
    if (!wf)
        return;
    for (size_t i = 0; i < wf->n_steps; i++) {
        struct tg_wf_step *s = &wf->steps[i];
        for (size_t c = 0; c < s->n_cases; c++) {
            tg_free(s->cases[c].path);
            tg_free(s->cases[c].next);
            json_decref(s->cases[c].value);
        }
        tg_free(s->cases);
        char *strs[] = {s->id,    s->next, s->on_fail, s->url,  s->otherwise, s->query, s->question,
                        s->draft, s->text, s->queue,   s->tool, s->prompt,    s->system};
        for (size_t k = 0; k < TG_ARRAY_LEN(strs); k++)
            tg_free(strs[k]);
        json_decref(s->args);
        json_decref(s->headers);
        json_decref(s->attestations);
    }
    tg_free(wf->steps);
    json_decref(wf->input);
    json_decref(wf->trigger);
    tg_free(wf->name);
    tg_free(wf->description);
    tg_free(wf->path);
    tg_free(wf);
}

int tg_workflows_load(char *const *paths, size_t n, struct tg_workflow ***out, json_t *errs)
{
    struct tg_workflow **wfs = tg_calloc(n ? n : 1, sizeof(*wfs));
    int rc = wfs ? TG_OK : TG_E_NOMEM;
    size_t got = 0;
    for (size_t i = 0; rc != TG_E_NOMEM && i < n; i++) {
        struct tg_workflow *wf = NULL;
        int r = tg_workflow_load(paths[i], &wf, errs);
        if (r) {
            rc = r == TG_E_NOMEM ? r : TG_E_CONFIG;
            continue;
        }
        for (size_t j = 0; j < got; j++)
            if (!strcmp(wfs[j]->name, wf->name)) {
                if (tg_config_errorf(errs, paths[i], 1, "workflow %s is defined in %s too",
                                     wf->name, wfs[j]->path))
                    rc = TG_E_NOMEM;
                else if (!rc)
                    rc = TG_E_CONFIG;
            }
        wfs[got++] = wf;
    }
    if (rc) {
        tg_workflows_free(wfs, got);
        return rc;
    }
    *out = wfs;
    return TG_OK;
}

void tg_workflows_free(struct tg_workflow **wfs, size_t n)
{
    for (size_t i = 0; wfs && i < n; i++)
        tg_workflow_free(wfs[i]);
    tg_free(wfs);
}
