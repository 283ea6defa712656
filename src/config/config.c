/*
 * config.c - from a parsed tree to a struct tg_config: ${ENV} expansion,
 * then validation of every known section against tables of fields, with
 * defaults for everything absent.
 *
 * Validation never stops at the first problem: each one is appended to an
 * error list as "FILE:LINE: message" and checking goes on, so a user fixes
 * a whole file in one round.  The sections are checked in serving.c,
 * governing.c and people.c, and filled into typed sections by defaults.c
 * (policies are handed as written to the policy module); every file the
 * deployment reads at start-up (knowledge base, glossary, intents, policy
 * includes) must be readable here, reported at the line that names it, and
 * users are checked to be one person each (names, tokens, customer ids).
 */
#include "config/config_int.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ tables of the plain sections */

static const struct tg_config_field server_fields[] = {
    {.key = "listen", .kind = F_LISTEN, .off = CFG(listen_host), .off2 = CFG(listen_port)},
    {.key = "data_dir", .kind = F_STRING, .off = CFG(data_dir), .min = 1},
    {.key = "max_body", .kind = F_SIZE, .off = CFG(max_body), .min = 1024, .max = INT64_MAX},
    {.key = "max_messages", .kind = F_SIZE_T, .off = CFG(max_messages), .min = 1, .max = 1000000},
    {.key = "customer_header", .kind = F_HEADER_NAME, .off = CFG(customer_header)},
    {.key = "log_level", .kind = F_LOG_LEVEL, .off = CFG(log_level)},
    {.key = "drain_timeout",
     .kind = F_DURATION,
     .off = CFG(drain_timeout_ms),
     .min = 1,
     .max = INT64_MAX},
};

static const struct tg_config_field store_fields[] = {
    {.key = "uri", .kind = F_STRING, .off = CFG(store_uri), .min = 1},
    {.key = "group_commit",
     .kind = F_DURATION,
     .off = CFG(group_commit_ms),
     .min = 0,
     .max = 60000},
};

static const struct tg_config_field conversation_fields[] = {
    {.key = "idle_timeout",
     .kind = F_DURATION,
     .off = CFG(idle_timeout_ms),
     .min = 1,
     .max = INT64_MAX},
    {.key = "history", .kind = F_SIZE_T, .off = CFG(history), .min = 0, .max = 1000},
};

static const struct tg_config_field kb_fields[] = {
    {.key = "glossary", .kind = F_PATH, .off = CFG(kb_glossary), .min = 1},
    {.key = "k1", .kind = F_REAL, .off = CFG(kb_k1), .min = 0, .max = 10},
    {.key = "b", .kind = F_REAL, .off = CFG(kb_b), .min = 0, .max = 1},
    {.key = "top_k", .kind = F_SIZE_T, .off = CFG(kb_top_k), .min = 1, .max = 100},
};

static const struct tg_config_field embed_fields[] = {
    {.key = "base_url", .kind = F_URL, .off = CFG(kb_embed_url)},
    {.key = "model", .kind = F_STRING, .off = CFG(kb_embed_model), .min = 1},
    {.key = "api_key", .kind = F_OPT_STRING, .off = CFG(kb_embed_key)},
    {.key = "query_prefix", .kind = F_OPT_STRING, .off = CFG(kb_embed_query_prefix)},
    {.key = "passage_prefix", .kind = F_OPT_STRING, .off = CFG(kb_embed_passage_prefix)},
    {.key = "dimensions",
     .kind = F_SIZE_T,
     .off = CFG(kb_embed_dimensions),
     .min = 0,
     .max = 16384},
    {.key = "batch", .kind = F_SIZE_T, .off = CFG(kb_embed_batch), .min = 1, .max = 2048},
    {.key = "timeout",
     .kind = F_DURATION,
     .off = CFG(kb_embed_timeout_ms),
     .min = 1,
     .max = 600000},
    {.key = "rrf_k", .kind = F_REAL, .off = CFG(kb_rrf_k), .min = 1, .max = 10000},
    {.key = "min_similarity",
     .kind = F_REAL,
     .off = CFG(kb_embed_min_similarity),
     .min = -1,
     .max = 1},
};

/* kb.embeddings: both base_url and model, or neither. */
static void check_embeddings(struct tg_config_vctx *c, struct tg_config *cfg, const json_t *kb)
{
    const json_t *sec = tg_config_get_mapping(c, kb, "embeddings", "kb.embeddings");
    if (!sec)
        return;
    tg_config_apply_fields(c, sec, "kb.embeddings", embed_fields, TG_ARRAY_LEN(embed_fields), NULL,
                           0, cfg);
    if (!cfg->kb_embed_url != !cfg->kb_embed_model)
        tg_config_verr(c, tg_config_lines_node(c->lines, sec),
                       "kb.embeddings needs both base_url and model");
}

static const struct tg_config_field intents_fields[] = {
    {.key = "train", .kind = F_PATH, .off = CFG(intents_train), .min = 1},
};

static const struct tg_config_field understand_fields[] = {
    {.key = "policy_number", .kind = F_STRING, .off = CFG(policy_pattern), .min = 1},
};

/* Sections handed as written to the module that owns their format (config.h). */
static const char *const passthrough_sections[] = {
    "policies",
};

static const char *const own_sections[] = {
    "server",   "auth",         "store",   "conversation", "backends",    "route",
    "models",   "kb",           "intents", "understand",   "review",      "users",
    "webhooks", "web",          "ladder",  "eval",         "experiments", "fairness",
    "audit",    "translations", "labels",  "privacy",      "workflows",
};

/* A list of paths at obj.key (a single string is accepted too), each
 * resolved against the config's folder and checked readable: where names
 * it in messages (kb.paths, workflows). */
static void check_paths(struct tg_config_vctx *c, const json_t *obj, const char *key,
                        const char *where, char ***out, size_t *n_out)
{
    const json_t *v = json_object_get(obj, key);
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (!v)
        return;
    if (!json_is_array(v) && !json_is_string(v)) {
        tg_config_type_err(c, tg_config_key_line(c, obj, key), where, "a list of paths", v);
        return;
    }
    *out = tg_calloc(n ? n : 1, sizeof(**out));
    if (!*out) {
        c->rc = TG_E_NOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        int line = json_is_array(v) ? tg_config_lines_elem(c->lines, v, i)
                                    : tg_config_key_line(c, obj, key);
        char w[64];
        snprintf(w, sizeof(w), "%s[%zu]", where, i);
        if (tg_config_env_failed(c, e))
            continue;
        if (!json_is_string(e) || json_string_length(e) == 0) {
            tg_config_type_err(c, line, w, "a path", e);
            continue;
        }
        if (tg_config_resolve_path(c, json_string_value(e), &(*out)[*n_out]))
            c->rc = TG_E_NOMEM;
        else
            tg_config_check_readable(c, line, w, (*out)[(*n_out)++]);
    }
}

/* policies: rules are compiled by the policy module; an {include: FILE} must
 * name a file that is there, reported at the line that includes it. */
static void check_policy_includes(struct tg_config_vctx *c, const json_t *root)
{
    const json_t *list = json_object_get(root, "policies");
    size_t i;
    json_t *item;
    if (list && !json_is_array(list))
        tg_config_verr(c, tg_config_lines_node(c->lines, list),
                       "policies must be a list of rules or {include: FILE}");
    json_array_foreach(list, i, item)
    {
        const json_t *inc = json_object_get(item, "include");
        char where[48], *path = NULL;
        if (!json_is_string(inc) || tg_config_env_failed(c, inc) || json_string_length(inc) == 0)
            continue;
        snprintf(where, sizeof(where), "policies[%zu].include", i);
        if (tg_config_resolve_path(c, json_string_value(inc), &path))
            c->rc = TG_E_NOMEM;
        else
            tg_config_check_readable(c, tg_config_key_line(c, item, "include"), where, path);
        tg_free(path);
    }
}

static void check_root(struct tg_config_vctx *c, struct tg_config *cfg, const json_t *root)
{
    const char *known[TG_ARRAY_LEN(own_sections) + TG_ARRAY_LEN(passthrough_sections)];
    size_t nk = 0;
    for (size_t i = 0; i < TG_ARRAY_LEN(own_sections); i++)
        known[nk++] = own_sections[i];
    for (size_t i = 0; i < TG_ARRAY_LEN(passthrough_sections); i++)
        known[nk++] = passthrough_sections[i];
    tg_config_check_keys(c->errs, c->path, c->lines, root, NULL, known, nk);

    const json_t *sec = tg_config_get_mapping(c, root, "server", "server");
    if (sec)
        tg_config_apply_fields(c, sec, "server", server_fields, TG_ARRAY_LEN(server_fields), NULL,
                               0, cfg);
    tg_config_check_auth(c, cfg, root);
    sec = tg_config_get_mapping(c, root, "store", "store");
    if (sec)
        tg_config_apply_fields(c, sec, "store", store_fields, TG_ARRAY_LEN(store_fields), NULL, 0,
                               cfg);
    sec = tg_config_get_mapping(c, root, "conversation", "conversation");
    if (sec)
        tg_config_apply_fields(c, sec, "conversation", conversation_fields,
                               TG_ARRAY_LEN(conversation_fields), NULL, 0, cfg);
    tg_config_check_backends(c, cfg, root);
    tg_config_check_route(c, cfg, root);
    tg_config_check_ladder(c, cfg, root);
    tg_config_check_eval(c, root);
    tg_config_check_fairness(c, root);
    tg_config_check_audit(c, root);
    tg_config_check_experiments(c, root);
    tg_config_check_models(c, cfg, root);
    sec = tg_config_get_mapping(c, root, "kb", "kb");
    if (sec) {
        static const char *const kb_extra[] = {"paths", "embeddings"};
        tg_config_apply_fields(c, sec, "kb", kb_fields, TG_ARRAY_LEN(kb_fields), kb_extra, 2, cfg);
        check_paths(c, sec, "paths", "kb.paths", &cfg->kb_paths, &cfg->n_kb_paths);
        check_embeddings(c, cfg, sec);
    }
    /* workflows: files the workflow module reads itself (workflow.h) */
    check_paths(c, root, "workflows", "workflows", &cfg->workflow_paths, &cfg->n_workflows);
    sec = tg_config_get_mapping(c, root, "intents", "intents");
    if (sec)
        tg_config_apply_fields(c, sec, "intents", intents_fields, TG_ARRAY_LEN(intents_fields),
                               NULL, 0, cfg);
    sec = tg_config_get_mapping(c, root, "understand", "understand");
    if (sec)
        tg_config_apply_fields(c, sec, "understand", understand_fields,
                               TG_ARRAY_LEN(understand_fields), NULL, 0, cfg);
    tg_config_check_review(c, root);
    tg_config_check_translations(c, root);
    tg_config_check_web(c, root);
    tg_config_check_labels(c, root);
    tg_config_check_privacy(c, root);
    tg_config_check_users(c, cfg, root);
    tg_config_check_hooks(c, root);
    check_policy_includes(c, root);
}
/* store.uri defaults to sqlite:<data_dir>/trustgate.db, after data_dir is known. */
static int default_store_uri(struct tg_config *cfg)
{
    struct tg_buf b;
    size_t n = strlen(cfg->data_dir);
    if (cfg->store_uri)
        return TG_OK;
    while (n > 1 && cfg->data_dir[n - 1] == '/')
        n--;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    int rc = tg_buf_printf(&b, "sqlite:%.*s%strustgate.db", (int)n, cfg->data_dir,
                           cfg->data_dir[n - 1] == '/' ? "" : "/");
    if (!rc)
        cfg->store_uri = tg_buf_steal(&b, NULL);
    tg_buf_free(&b);
    return rc;
}

/*
 * Plain API keys are kept only as hashes: wipe their text from the tree.
 * The bytes are overwritten before jansson frees them.
 */
static int redact_api_keys(json_t *root)
{
    json_t *list = json_object_get(json_object_get(root, "auth"), "api_keys");
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *k = json_object_get(json_array_get(list, i), "key");
        if (!json_is_string(k))
            continue;
        explicit_bzero((char *)(uintptr_t)json_string_value(k), json_string_length(k));
        if (json_string_set(k, "<redacted>"))
            return TG_E_NOMEM;
    }
    return TG_OK;
}

static int validate(struct tg_config_priv *p, json_t *errs)
{
    struct tg_config *cfg = &p->pub;
    struct tg_config_vctx c = {.path = cfg->path, .lines = p->lines, .errs = errs};
    int rc = tg_config_set_defaults(cfg);
    if (rc)
        goto out;
    if (json_is_object(cfg->root))
        check_root(&c, cfg, cfg->root);
    else if (!json_is_null(cfg->root))
        tg_config_verr(&c, tg_config_lines_node(p->lines, cfg->root),
                       "the top level must be a mapping of sections, not %s",
                       tg_config_type_name(cfg->root));
    rc = c.rc;
    if (!rc)
        rc = default_store_uri(cfg);
    if (!rc && !json_array_size(errs))
        rc = tg_config_fill_sections(cfg, p->lines);
out:
    return rc;
}

struct sorted_err {
    long line; /* 0 for messages without a line: they come first */
    size_t pos;
    json_t *msg;
};

static int cmp_err(const void *a, const void *b)
{
    const struct sorted_err *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Put "PATH:LINE: ..." messages in line order, keeping the order of equal lines. */
static int sort_errors(json_t *errs, const char *path)
{
    size_t n = json_array_size(errs), plen = strlen(path);
    if (n < 2)
        return TG_OK;
    struct sorted_err *v = tg_calloc(n, sizeof(*v));
    if (!v)
        return TG_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(errs, i));
        v[i].pos = i;
        v[i].msg = json_incref(json_array_get(errs, i));
        if (s && strncmp(s, path, plen) == 0 && s[plen] == ':') {
            char *end = NULL;
            long line = strtol(s + plen + 1, &end, 10);
            if (end != s + plen + 1 && *end == ':')
                v[i].line = line;
        }
    }
    qsort(v, n, sizeof(*v), cmp_err);
    for (size_t i = 0; i < n; i++)
        json_array_set_new(errs, i, v[i].msg);
    tg_free(v);
    return TG_OK;
}

int tg_config_load(const char *path, struct tg_config **out, json_t **errs)
{
    int rc;
    json_t *list = json_array();
    json_t *root = NULL;
    struct tg_config_lines *lines = NULL;
    struct tg_config_priv *p = NULL;

    if (!list) {
        rc = TG_E_NOMEM;
        goto out;
    }
    rc = tg_config_parse_yaml(path, &root, &lines, list);
    if (rc)
        goto out_reported;
    rc = tg_config_expand_env(root, lines, path, list);
    if (rc == TG_E_NOMEM)
        goto out;
    p = tg_calloc(1, sizeof(*p));
    if (!p) {
        rc = TG_E_NOMEM;
        goto out;
    }
    p->lines = lines;
    p->pub.root = root;
    p->pub.path = tg_strdup(path);
    lines = NULL;
    root = NULL;
    if (!p->pub.path) {
        rc = TG_E_NOMEM;
        goto out;
    }
    if (json_is_null(p->pub.root)) {
        /* An empty file is an empty mapping: every section takes its defaults. */
        json_decref(p->pub.root);
        p->pub.root = json_object();
        if (!p->pub.root) {
            rc = TG_E_NOMEM;
            goto out;
        }
    }
    rc = validate(p, list);
    if (!rc && json_array_size(list) > 0)
        rc = sort_errors(list, path) ? TG_E_NOMEM : TG_E_CONFIG;
    if (!rc)
        rc = redact_api_keys(p->pub.root);
out:
    if (rc == TG_E_NOMEM)
        tg_config_errorf(list, path, 0, "out of memory");
out_reported:
    json_decref(root);
    tg_config_lines_free(lines);
    if (rc) {
        tg_config_free(p ? &p->pub : NULL);
    } else {
        *out = &p->pub;
    }
    if (errs && rc) {
        *errs = list;
    } else {
        if (errs)
            *errs = NULL;
        json_decref(list);
    }
    return rc;
}

int tg_config_from_tree(const json_t *root, struct tg_config **out)
{
    struct tg_config_priv *p = tg_calloc(1, sizeof(*p));
    int rc = TG_E_NOMEM;
    if (!p)
        return rc;
    p->pub.path = tg_strdup("(tree)");
    p->pub.root = json_is_object(root) ? json_incref((json_t *)(uintptr_t)root) : json_object();
    if (p->pub.path && p->pub.root)
        rc = tg_config_set_defaults(&p->pub);
    if (!rc)
        rc = default_store_uri(&p->pub);
    if (!rc)
        rc = tg_config_fill_sections(&p->pub, NULL);
    if (rc) {
        tg_config_free(&p->pub);
        return rc;
    }
    *out = &p->pub;
    return TG_OK;
}

void tg_config_free(struct tg_config *cfg)
{
    if (!cfg)
        return;
    struct tg_config_priv *p = (struct tg_config_priv *)(void *)cfg;
    tg_free(cfg->path);
    json_decref(cfg->root);
    tg_free(cfg->listen_host);
    tg_free(cfg->data_dir);
    tg_free(cfg->customer_header);
    tg_free(cfg->api_keys);
    tg_free(cfg->store_uri);
    for (size_t i = 0; i < cfg->n_backends; i++) {
        tg_free(cfg->backends[i].base_url);
        tg_free(cfg->backends[i].api_key);
        tg_free(cfg->backends[i].model);
        tg_free(cfg->backends[i].reply);
        tg_free(cfg->backends[i].low_confidence_reply);
    }
    for (size_t i = 0; i < cfg->n_kb_paths; i++)
        tg_free(cfg->kb_paths[i]);
    tg_free(cfg->kb_paths);
    for (size_t i = 0; i < cfg->n_workflows; i++)
        tg_free(cfg->workflow_paths[i]);
    tg_free(cfg->workflow_paths);
    tg_free(cfg->kb_glossary);
    tg_free(cfg->kb_embed_url);
    tg_free(cfg->kb_embed_model);
    tg_free(cfg->kb_embed_key);
    tg_free(cfg->kb_embed_query_prefix);
    tg_free(cfg->kb_embed_passage_prefix);
    tg_free(cfg->intents_train);
    tg_free(cfg->policy_pattern);
    tg_free(cfg->backends);
    tg_free(cfg->route_backend);
    for (size_t i = 0; i < cfg->n_models; i++)
        tg_free(cfg->models[i]);
    tg_free(cfg->models);
    tg_config_free_sections(cfg);
    tg_config_lines_free(p->lines);
    tg_free(p);
}

const struct tg_api_key *tg_config_api_key(const struct tg_config *cfg, const char *key)
{
    uint8_t h[TG_SHA256_LEN];
    const struct tg_api_key *found = NULL;
    if (!key)
        return NULL;
    tg_sha256(key, strlen(key), h);
    for (size_t i = 0; i < cfg->n_api_keys; i++) {
        bool eq = tg_ct_equal(h, cfg->api_keys[i].sha256, TG_SHA256_LEN);
        if (eq && !found)
            found = &cfg->api_keys[i];
    }
    return found;
}

const struct tg_backend_conf *tg_config_backend(const struct tg_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n_backends; i++) {
        if (strcmp(cfg->backends[i].name, name) == 0)
            return &cfg->backends[i];
    }
    return NULL;
}

int tg_config_line(const struct tg_config *cfg, const json_t *node)
{
    return cfg ? tg_config_lines_node(tg_config_line_table(cfg), node) : 0;
}

const struct tg_config_lines *tg_config_line_table(const struct tg_config *cfg)
{
    const struct tg_config_priv *p = (const struct tg_config_priv *)(const void *)cfg;
    return cfg ? p->lines : NULL;
}
