/*
 * defaults.c - every default of the configuration in one table, and the
 * typed sections (ladder, eval, fairness, experiments, review, users, web,
 * privacy, audit) filled from the validated tree.  See config.h.
 *
 * The fill runs after validation has passed, so it reads each value the way
 * trustgate has always read it: a value of another type than the one
 * expected keeps the default.
 */
#include "config/config_int.h"

#include <string.h>

#define MINUTE_MS (60 * 1000)
#define HOUR_MS (60 * MINUTE_MS)
#define DAY_MS (24 * (int64_t)HOUR_MS)

/* The defaults of every scalar option; strings are copied by tg_config_set_defaults(). */
static const struct tg_config defaults = {
    .listen_port = 8080,
    .max_body = 1024 * 1024,
    .max_messages = 256,
    .log_level = TG_LOG_INFO,
    .drain_timeout_ms = 10000,
    .group_commit_ms = 5,
    .idle_timeout_ms = 30 * MINUTE_MS,
    .history = 20,
    .kb_k1 = 1.2,
    .kb_b = 0.75,
    .kb_top_k = 5,
    .kb_embed_batch = 32,
    .kb_embed_timeout_ms = 2000,
    .kb_rrf_k = 60,
    .kb_embed_min_similarity = 0.3,
    .ladder =
        {
            .max_attempts = 3, /* 1 without a ladder: key (tg_config_fill_sections) */
            .budget_ms = 0,
            .backoff_ms = 200,
            .backoff_max_ms = 2000,
            .degraded_to_human = 3,
            .min_confidence = -1,
            .stream_through = false,
            /* the classes' weights: customers keep a third of a rung under a VIP flood */
            .class_weight = {1, 3, 6},
            .breaker_failures = 3,
            .breaker_open_ms = 1000,
            .breaker_probe = 1.0,
        },
    .eval =
        {
            .monitor_min_far = 0.85,
            .monitor_days = 7,
            .monitor_alpha = 0.05,
            .monitor_every_ms = HOUR_MS,
        },
    .fairness =
        {
            .limit = 0.05,
            .min_group = 30,
            .bootstrap = 1000,
            .window_ms = 30 * DAY_MS,
            .check_every_ms = HOUR_MS,
        },
    .review =
        {
            .warn_before_ms = 30000,
            .claim_lapse_ms = 5 * MINUTE_MS,
            .four_eyes = true,
            .follow_up_queue = "follow_up",
            .follow_up_sla_ms = 2 * MINUTE_MS,
        },
    .audit_origin = "trustgate",
    .web_chat = false,
    .web_console = true,
    .customer_map = false,
};

/* The pipeline's own tags that make a hand-off urgent in the console, whatever the config says:
 * the customer got no real answer three times in a row (stage_generate.c, stage_gate.c).
 * review.risk_tags adds the deployment's own. */
static const char *const builtin_risk_tags[] = {"degraded_3x"};

static const struct tg_rung_conf rung_defaults = {
    .budget_ms = 0,
    .large_context = false,
    .max_inflight = 0,
    .queue = 0,
    .queue_timeout_ms = 1000,
};

static const struct tg_backend_conf backend_defaults = {
    .connect_timeout_ms = 2000,
    .header_timeout_ms = 10000,
    .total_timeout_ms = 60000,
    .idle_timeout_ms = 10000,
    .stream = true,
    .max_connections = 64,
    .min_confidence = 0.7,
    .max_sentences = 3,
};

int tg_config_set_defaults(struct tg_config *cfg)
{
    char *path = cfg->path;
    json_t *root = cfg->root;
    *cfg = defaults;
    cfg->path = path;
    cfg->root = root;
    cfg->listen_host = tg_strdup("127.0.0.1");
    cfg->data_dir = tg_strdup("./data");
    cfg->customer_header = tg_strdup("X-Customer-Id");
    cfg->models = tg_calloc(1, sizeof(*cfg->models));
    if (cfg->models) {
        cfg->models[0] = tg_strdup("trustgate");
        cfg->n_models = cfg->models[0] ? 1 : 0;
    }
    if (!cfg->listen_host || !cfg->data_dir || !cfg->customer_header || !cfg->n_models)
        return TG_E_NOMEM;
    return TG_OK;
}

void tg_config_backend_defaults(struct tg_backend_conf *b)
{
    *b = backend_defaults;
}

/* ------------------------------------------------------------ reading values */

static const json_t *get(const json_t *obj, const char *key)
{
    return json_object_get(obj, key);
}

static int64_t int_or(const json_t *v, int64_t def)
{
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static double num_or(const json_t *v, double def)
{
    return json_is_number(v) ? json_number_value(v) : def;
}

static bool bool_or(const json_t *v, bool def)
{
    return json_is_boolean(v) ? json_is_true(v) : def;
}

static const char *str_or(const json_t *v, const char *def)
{
    return json_is_string(v) ? json_string_value(v) : def;
}

/* Milliseconds from an integer or a duration string ("30s"), else def. */
static int64_t ms_or(const json_t *v, int64_t def)
{
    int64_t ms = def;
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_string(v) && tg_parse_duration_ms(json_string_value(v), &ms) != TG_OK)
        return def;
    return ms;
}

/* A new array of n elements of size each (one when n is 0), or NULL. */
static void *alloc_n(size_t n, size_t size)
{
    return tg_calloc(n ? n : 1, size);
}

/* ------------------------------------------------------------ sections */

static int fill_ladder(struct tg_ladder_conf *l, const json_t *root)
{
    const json_t *sec = get(root, "ladder"), *br = get(sec, "breaker");
    const json_t *rungs = get(sec, "rungs");
    l->present = sec != NULL;
    if (!sec) {
        l->max_attempts = 1; /* no ladder: the route's backend, tried once */
        return TG_OK;
    }
    l->max_attempts = int_or(get(sec, "max_attempts"), l->max_attempts);
    l->budget_ms = ms_or(get(sec, "budget"), l->budget_ms);
    l->backoff_ms = ms_or(get(sec, "backoff"), l->backoff_ms);
    l->backoff_max_ms = ms_or(get(sec, "backoff_max"), l->backoff_max_ms);
    l->degraded_to_human = int_or(get(sec, "degraded_to_human"), l->degraded_to_human);
    l->min_confidence = num_or(get(sec, "min_confidence"), l->min_confidence);
    l->stream_through = bool_or(get(sec, "stream_through"), l->stream_through);
    l->breaker_failures = int_or(get(br, "failures"), l->breaker_failures);
    l->breaker_open_ms = ms_or(get(br, "open"), l->breaker_open_ms);
    l->breaker_probe = num_or(get(br, "probe"), l->breaker_probe);
    size_t n = json_array_size(rungs);
    if (!n)
        return TG_OK;
    if (!(l->rungs = alloc_n(n, sizeof(*l->rungs))))
        return TG_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(rungs, i);
        struct tg_rung_conf *rc = &l->rungs[l->n_rungs++];
        *rc = rung_defaults;
        rc->backend = str_or(get(r, "backend"), NULL);
        rc->name = str_or(get(r, "name"), rc->backend ? rc->backend : "human");
        rc->model = str_or(get(r, "model"), NULL);
        rc->budget_ms = ms_or(get(r, "budget"), rc->budget_ms);
        rc->large_context = bool_or(get(r, "large_context"), rc->large_context);
        rc->max_inflight = int_or(get(r, "max_inflight"), rc->max_inflight);
        rc->queue = int_or(get(r, "queue"), rc->queue);
        rc->queue_timeout_ms = ms_or(get(r, "queue_timeout"), rc->queue_timeout_ms);
    }
    return TG_OK;
}

static int fill_prices(struct tg_eval_conf *e, const json_t *prices)
{
    const char *model;
    json_t *p;
    size_t n = json_object_size(prices);
    if (!n)
        return TG_OK;
    if (!(e->price_list = alloc_n(n, sizeof(*e->price_list))))
        return TG_E_NOMEM;
    json_object_foreach((json_t *)prices, model, p)
    {
        e->price_list[e->n_prices++] = (struct tg_price_conf){
            .model = model,
            .prompt = num_or(get(p, "prompt"), 0),
            .completion = num_or(get(p, "completion"), 0),
        };
    }
    return TG_OK;
}

static int fill_eval(struct tg_eval_conf *e, const json_t *root)
{
    const json_t *sec = get(root, "eval"), *far = get(sec, "far"), *mon = get(sec, "monitor");
    e->far_set = str_or(get(far, "set"), NULL);
    e->has_far_min = json_is_number(get(far, "min"));
    e->far_min = num_or(get(far, "min"), 0);
    e->monitor = json_is_object(mon);
    e->monitor_min_far = num_or(get(mon, "min_far"), e->monitor_min_far);
    e->monitor_days = int_or(get(mon, "days"), e->monitor_days);
    e->monitor_alpha = num_or(get(mon, "alpha"), e->monitor_alpha);
    e->monitor_every_ms = ms_or(get(mon, "check_every"), e->monitor_every_ms);
    return fill_prices(e, get(sec, "prices"));
}

static int fill_fairness(struct tg_fairness_conf *f, const json_t *root)
{
    const json_t *sec = get(root, "fairness"), *list = get(sec, "attributes");
    f->limit = num_or(get(sec, "limit"), f->limit);
    f->min_group = int_or(get(sec, "min_group"), f->min_group);
    f->bootstrap = int_or(get(sec, "bootstrap"), f->bootstrap);
    f->window_ms = ms_or(get(sec, "window"), f->window_ms);
    f->check_every_ms = ms_or(get(sec, "check_every"), f->check_every_ms);
    f->alpha = num_or(get(sec, "alpha"), 0);
    size_t n = json_array_size(list);
    if (!n)
        return TG_OK;
    if (!(f->attrs = alloc_n(n, sizeof(*f->attrs))))
        return TG_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *a = json_array_get(list, i), *values = get(a, "values");
        struct tg_fair_attr_conf *fa = &f->attrs[i];
        fa->name = json_is_string(a) ? json_string_value(a) : str_or(get(a, "name"), "");
        f->n_attributes++;
        size_t nv = json_array_size(values);
        if (nv && !(fa->values = alloc_n(nv, sizeof(*fa->values))))
            return TG_E_NOMEM;
        for (size_t k = 0; k < nv; k++) {
            const char *v = str_or(json_array_get(values, k), NULL);
            if (v)
                fa->values[fa->n_values++] = v;
        }
    }
    return TG_OK;
}

/* webhooks: [{url, secret}] */
static int fill_webhooks(struct tg_config *cfg, const json_t *list)
{
    size_t n = json_array_size(list);
    if (n && !(cfg->webhook_list = alloc_n(n, sizeof(*cfg->webhook_list))))
        return TG_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *w = json_array_get(list, i);
        cfg->webhook_list[cfg->n_webhooks++] = (struct tg_webhook_conf){
            .url = str_or(get(w, "url"), ""),
            .secret = str_or(get(w, "secret"), ""),
        };
    }
    return TG_OK;
}

/* labels: {LANG: {CODE: TEXT}}, in the file's order. */
static int fill_labels(struct tg_config *cfg, const json_t *labels)
{
    const char *lang, *code;
    json_t *table, *text;
    size_t n = 0;
    json_object_foreach((json_t *)labels, lang, table) n += json_object_size(table);
    if (n && !(cfg->label_list = alloc_n(n, sizeof(*cfg->label_list))))
        return TG_E_NOMEM;
    json_object_foreach((json_t *)labels, lang, table)
    {
        json_object_foreach(table, code, text)
        {
            if (json_is_string(text))
                cfg->label_list[cfg->n_labels++] =
                    (struct tg_label_conf){lang, code, json_string_value(text)};
        }
    }
    return TG_OK;
}

static int fill_experiment(struct tg_experiment_conf *x, const json_t *e,
                           const struct tg_config_lines *lines)
{
    const json_t *vs = get(e, "variants");
    size_t n = json_array_size(vs);
    x->name = str_or(get(e, "name"), "");
    x->salt = str_or(get(e, "salt"), x->name);
    x->holdout = num_or(get(e, "holdout"), 0);
    if (!n)
        return TG_OK;
    if (!(x->variants = alloc_n(n, sizeof(*x->variants))))
        return TG_E_NOMEM;
    for (size_t k = 0; k < n; k++) {
        const json_t *v = json_array_get(vs, k);
        struct tg_variant_conf *vc = &x->variants[x->n_variants++];
        vc->name = str_or(get(v, "name"), "");
        vc->share = num_or(get(v, "share"), 0);
        vc->release = str_or(get(v, "release"), NULL);
        vc->config = str_or(get(v, "config"), NULL);
        vc->line = tg_config_lines_node(lines, v);
    }
    return TG_OK;
}

static int fill_experiments(struct tg_config *cfg, const json_t *root,
                            const struct tg_config_lines *lines)
{
    const json_t *list = get(root, "experiments");
    size_t n = json_array_size(list);
    if (!n)
        return TG_OK;
    if (!(cfg->experiments = alloc_n(n, sizeof(*cfg->experiments))))
        return TG_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = fill_experiment(&cfg->experiments[cfg->n_experiments++], json_array_get(list, i),
                                 lines);
        if (rc)
            return rc;
    }
    return TG_OK;
}

/* The pipeline's risk tags, then those of review.risk_tags not among them yet. */
static int fill_risk_tags(struct tg_review_conf *r, const json_t *list)
{
    size_t n = TG_ARRAY_LEN(builtin_risk_tags) + json_array_size(list);
    if (!(r->risk_tags = alloc_n(n, sizeof(*r->risk_tags))))
        return TG_E_NOMEM;
    for (size_t i = 0; i < TG_ARRAY_LEN(builtin_risk_tags); i++)
        r->risk_tags[r->n_risk_tags++] = builtin_risk_tags[i];
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *tag = str_or(json_array_get(list, i), "");
        bool seen = !tag[0];
        for (size_t k = 0; k < r->n_risk_tags && !seen; k++)
            seen = strcmp(r->risk_tags[k], tag) == 0;
        if (!seen)
            r->risk_tags[r->n_risk_tags++] = tag;
    }
    return TG_OK;
}

static int fill_review(struct tg_review_conf *r, const json_t *root)
{
    const json_t *sec = get(root, "review"), *fu = get(sec, "follow_up");
    const json_t *iq = get(sec, "internal_queues");
    r->warn_before_ms = ms_or(get(sec, "warn_before"), r->warn_before_ms);
    r->claim_lapse_ms = ms_or(get(sec, "claim_lapse"), r->claim_lapse_ms);
    r->four_eyes = bool_or(get(sec, "four_eyes"), r->four_eyes);
    r->follow_up_queue = str_or(get(fu, "queue"), r->follow_up_queue);
    r->follow_up_sla_ms = ms_or(get(fu, "sla"), r->follow_up_sla_ms);
    size_t n = json_array_size(iq);
    if (n && !(r->internal_queues = alloc_n(n, sizeof(*r->internal_queues))))
        return TG_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *q = str_or(json_array_get(iq, i), NULL);
        if (q)
            r->internal_queues[r->n_internal_queues++] = q;
    }
    return fill_risk_tags(r, get(sec, "risk_tags"));
}

static int fill_users(struct tg_config *cfg, const json_t *root)
{
    const json_t *list = get(root, "users");
    size_t n = json_array_size(list);
    if (!n)
        return TG_OK;
    if (!(cfg->users = alloc_n(n, sizeof(*cfg->users))))
        return TG_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *u = json_array_get(list, i);
        const json_t *pw = get(u, "password");
        struct tg_user_conf *uc = &cfg->users[cfg->n_users++];
        uc->name = str_or(get(u, "name"), "");
        uc->role = str_or(get(u, "role"), "reviewer");
        uc->token = str_or(get(u, "token"), NULL);
        uc->password_hash = str_or(get(u, "password_hash"), NULL);
        uc->password = json_is_string(pw) ? (char *)(uintptr_t)json_string_value(pw) : NULL;
        const json_t *ids = get(u, "customer_ids");
        size_t nid = json_array_size(ids);
        if (nid && !(uc->customer_ids = alloc_n(nid, sizeof(*uc->customer_ids))))
            return TG_E_NOMEM;
        for (size_t k = 0; k < nid; k++) {
            const char *id = str_or(json_array_get(ids, k), NULL);
            if (id)
                uc->customer_ids[uc->n_customer_ids++] = id;
        }
    }
    return TG_OK;
}

/* web.texts.LANG.chat_examples: the example questions, texts only. */
static int fill_examples(struct tg_web_texts *w, const json_t *list)
{
    size_t n = json_array_size(list);
    if (!n)
        return TG_OK;
    if (!(w->chat_examples = alloc_n(n, sizeof(*w->chat_examples))))
        return TG_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *q = str_or(json_array_get(list, i), "");
        if (q[0])
            w->chat_examples[w->n_chat_examples++] = q;
    }
    return TG_OK;
}

/* web.texts: {LANG: {chat_title, chat_intro, chat_examples, login_hint}}, in the file's order. */
static int fill_web_texts(struct tg_config *cfg, const json_t *root)
{
    const json_t *texts = get(get(root, "web"), "texts"), *table;
    const char *lang;
    size_t n = json_object_size(texts);
    if (!n)
        return TG_OK;
    if (!(cfg->web_texts = alloc_n(n, sizeof(*cfg->web_texts))))
        return TG_E_NOMEM;
    json_object_foreach((json_t *)texts, lang, table)
    {
        if (!json_is_object(table))
            continue;
        struct tg_web_texts *w = &cfg->web_texts[cfg->n_web_texts++];
        w->lang = lang;
        w->chat_title = str_or(get(table, "chat_title"), NULL);
        w->chat_intro = str_or(get(table, "chat_intro"), NULL);
        w->login_hint = str_or(get(table, "login_hint"), NULL);
        int rc = fill_examples(w, get(table, "chat_examples"));
        if (rc)
            return rc;
    }
    return TG_OK;
}

/* policies: [{include: FILE} | RULE]: the includes in order, the rules in a list of their own. */
static int fill_policies(struct tg_config *cfg, const json_t *root)
{
    const json_t *list = get(root, "policies");
    size_t n = json_array_size(list);
    if (!n)
        return TG_OK;
    if (!(cfg->policy_includes = alloc_n(n, sizeof(*cfg->policy_includes))))
        return TG_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(list, i);
        const char *inc = str_or(get(item, "include"), NULL);
        if (inc) {
            cfg->policy_includes[cfg->n_policy_includes++] = inc;
            continue;
        }
        if (!cfg->policy_rules && !(cfg->policy_rules = json_array()))
            return TG_E_NOMEM;
        if (json_array_append(cfg->policy_rules, item))
            return TG_E_NOMEM;
    }
    return TG_OK;
}

int tg_config_fill_sections(struct tg_config *cfg, const struct tg_config_lines *lines)
{
    const json_t *root = cfg->root;
    int rc = fill_ladder(&cfg->ladder, root);
    if (!rc)
        rc = fill_eval(&cfg->eval, root);
    if (!rc)
        rc = fill_fairness(&cfg->fairness, root);
    if (!rc)
        rc = fill_experiments(cfg, root, lines);
    if (!rc)
        rc = fill_review(&cfg->review, root);
    if (!rc)
        rc = fill_users(cfg, root);
    if (!rc)
        rc = fill_policies(cfg, root);
    if (!rc)
        rc = fill_web_texts(cfg, root);
    if (!rc)
        rc = fill_webhooks(cfg, get(root, "webhooks"));
    if (!rc)
        rc = fill_labels(cfg, get(root, "labels"));
    cfg->audit_origin = str_or(get(get(root, "audit"), "origin"), cfg->audit_origin);
    cfg->web_chat = bool_or(get(get(root, "web"), "chat"), cfg->web_chat);
    cfg->web_console = bool_or(get(get(root, "web"), "console"), cfg->web_console);
    cfg->customer_map = json_is_true(get(get(root, "privacy"), "customer_map"));
    return rc;
}

void tg_config_free_sections(struct tg_config *cfg)
{
    tg_free(cfg->ladder.rungs);
    for (size_t i = 0; cfg->fairness.attrs && i < cfg->fairness.n_attributes; i++)
        tg_free(cfg->fairness.attrs[i].values);
    tg_free(cfg->fairness.attrs);
    tg_free(cfg->eval.price_list);
    tg_free(cfg->webhook_list);
    tg_free(cfg->label_list);
    for (size_t i = 0; i < cfg->n_experiments; i++)
        tg_free(cfg->experiments[i].variants);
    tg_free(cfg->experiments);
    tg_free(cfg->review.internal_queues);
    tg_free(cfg->review.risk_tags);
    for (size_t i = 0; i < cfg->n_web_texts; i++)
        tg_free(cfg->web_texts[i].chat_examples);
    tg_free(cfg->web_texts);
    for (size_t i = 0; i < cfg->n_users; i++)
        tg_free(cfg->users[i].customer_ids);
    tg_free(cfg->users);
    tg_free(cfg->policy_includes);
    json_decref(cfg->policy_rules);
}

const char *tg_config_translation(const struct tg_config *cfg, const char *lang, const char *text)
{
    return str_or(get(get(get(cfg->root, "translations"), lang), text), NULL);
}
