/*
 * serving.c - the sections that say who may call and what answers: auth
 * (API keys, kept as hashes), backends, route and models.
 */
#include "config/config_int.h"

#include <stdio.h>
#include <string.h>

/* Backend options besides name and type. */
static const struct tg_config_field backend_fields[] = {
    {.key = "base_url", .kind = F_URL, .off = BE(base_url), .types = BT_OPENAI},
    {.key = "api_key", .kind = F_OPT_STRING, .off = BE(api_key), .types = BT_OPENAI},
    {.key = "model", .kind = F_STRING, .off = BE(model), .min = 1, .types = BT_OPENAI},
    {.key = "connect_timeout",
     .kind = F_DURATION,
     .off = BE(connect_timeout_ms),
     .min = 1,
     .max = INT64_MAX,
     .types = BT_OPENAI},
    {.key = "header_timeout",
     .kind = F_DURATION,
     .off = BE(header_timeout_ms),
     .min = 1,
     .max = INT64_MAX,
     .types = BT_OPENAI},
    {.key = "total_timeout",
     .kind = F_DURATION,
     .off = BE(total_timeout_ms),
     .min = 1,
     .max = INT64_MAX,
     .types = BT_OPENAI},
    {.key = "idle_timeout",
     .kind = F_DURATION,
     .off = BE(idle_timeout_ms),
     .min = 1,
     .max = INT64_MAX,
     .types = BT_OPENAI},
    {.key = "first_token_timeout",
     .kind = F_DURATION,
     .off = BE(first_token_timeout_ms),
     .min = 1,
     .max = INT64_MAX,
     .types = BT_OPENAI},
    {.key = "stream", .kind = F_BOOL, .off = BE(stream), .types = BT_OPENAI},
    {.key = "max_connections",
     .kind = F_LONG,
     .off = BE(max_connections),
     .min = 1,
     .max = 100000,
     .types = BT_OPENAI},
    {.key = "reply", .kind = F_STRING, .off = BE(reply), .min = 1, .types = BT_SCRIPT},
    {.key = "min_confidence",
     .kind = F_REAL,
     .off = BE(min_confidence),
     .min = 0,
     .max = 1,
     .types = BT_BUILTIN},
    {.key = "low_confidence_reply",
     .kind = F_STRING,
     .off = BE(low_confidence_reply),
     .min = 1,
     .types = BT_BUILTIN},
    {.key = "max_sentences",
     .kind = F_LONG,
     .off = BE(max_sentences),
     .min = 1,
     .max = 20,
     .types = BT_BUILTIN},
};

/* ------------------------------------------------------------ auth, backends, route */

/* Check one element of auth.api_keys into *k; false when it is unusable (reported). */
static bool check_api_key(struct tg_config_vctx *c, const json_t *e, const char *where, int line,
                          struct tg_api_key *k)
{
    static const char *const key_keys[] = {"name", "key", "sha256", "class", "class_from_metadata"};
    static const char *const classes[] = {"internal", "customer", "vip"};
    char w[96];
    if (!json_is_object(e)) {
        if (!tg_config_env_failed(c, e))
            tg_config_type_err(c, line, where, "a mapping with name and key", e);
        return false;
    }
    tg_config_check_keys(c->errs, c->path, c->lines, e, where, key_keys, 5);
    bool ok = tg_config_get_name(c, e, where, line, k->name);
    const json_t *cls = json_object_get(e, "class"),
                 *cfm = json_object_get(e, "class_from_metadata");
    k->klass = TG_CLASS_CUSTOMER;
    if (cls) {
        const char *s = json_string_value(cls);
        size_t i = 0;
        while (s && i < TG_ARRAY_LEN(classes) && strcmp(s, classes[i]) != 0)
            i++;
        if (!s || i == TG_ARRAY_LEN(classes)) {
            snprintf(w, sizeof(w), "%s.class", where);
            tg_config_type_err(c, tg_config_key_line(c, e, "class"), w, "internal, customer or vip",
                               cls);
            ok = false;
        } else {
            k->klass = (enum tg_traffic_class)i;
        }
    }
    if (cfm && !json_is_boolean(cfm)) {
        snprintf(w, sizeof(w), "%s.class_from_metadata", where);
        tg_config_type_err(c, tg_config_key_line(c, e, "class_from_metadata"), w, "true or false",
                           cfm);
        ok = false;
    }
    k->class_from_metadata = json_is_true(cfm);
    const json_t *plain = json_object_get(e, "key");
    const json_t *hash = json_object_get(e, "sha256");
    if (plain && hash) {
        tg_config_verr(c, tg_config_key_line(c, e, "sha256"),
                       "%s has both key and sha256: give only one", where);
        return false;
    }
    if (!plain && !hash) {
        tg_config_verr(c, line, "%s needs a key (or its sha256)", where);
        return false;
    }
    if (tg_config_env_failed(c, plain ? plain : hash))
        return false;
    snprintf(w, sizeof(w), "%s.%s", where, plain ? "key" : "sha256");
    if (!json_is_string(plain ? plain : hash)) {
        tg_config_type_err(c, tg_config_key_line(c, e, plain ? "key" : "sha256"), w, "a string",
                           plain ? plain : hash);
        return false;
    }
    if (plain && json_string_length(plain) == 0) {
        tg_config_verr(c, tg_config_key_line(c, e, "key"), "%s must not be empty", w);
        return false;
    }
    if (plain) {
        tg_sha256(json_string_value(plain), json_string_length(plain), k->sha256);
    } else if (json_string_length(hash) != 2 * TG_SHA256_LEN ||
               tg_hex_decode(json_string_value(hash), k->sha256, TG_SHA256_LEN)) {
        tg_config_verr(c, tg_config_key_line(c, e, "sha256"), "%s must be 64 hex digits", w);
        return false;
    }
    return ok;
}

void tg_config_check_auth(struct tg_config_vctx *c, struct tg_config *cfg, const json_t *root)
{
    static const char *const auth_keys[] = {"api_keys"};
    const json_t *auth = tg_config_get_mapping(c, root, "auth", "auth");
    if (!auth)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, auth, "auth", auth_keys, 1);
    const json_t *list = tg_config_get_list(c, auth, "api_keys", "auth.api_keys");
    size_t n = json_array_size(list);
    if (n == 0)
        return;
    cfg->api_keys = tg_calloc(n, sizeof(*cfg->api_keys));
    if (!cfg->api_keys) {
        c->rc = TG_E_NOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(list, i);
        int line = tg_config_lines_node(c->lines, e);
        char where[64];
        struct tg_api_key k = {0};
        snprintf(where, sizeof(where), "auth.api_keys[%zu]", i);
        if (!line)
            line = tg_config_lines_elem(c->lines, list, i);
        bool ok = check_api_key(c, e, where, line, &k);
        for (size_t j = 0; ok && j < cfg->n_api_keys; j++) {
            if (strcmp(cfg->api_keys[j].name, k.name) == 0) {
                tg_config_verr(c, tg_config_key_line(c, e, "name"), "duplicate API key name '%s'",
                               k.name);
                ok = false;
            } else if (tg_ct_equal(cfg->api_keys[j].sha256, k.sha256, TG_SHA256_LEN)) {
                tg_config_verr(c, line, "API key '%s' is the same key as '%s'", k.name,
                               cfg->api_keys[j].name);
                ok = false;
            }
        }
        if (ok)
            cfg->api_keys[cfg->n_api_keys++] = k;
    }
}

static const char *type_word(unsigned types)
{
    return types & BT_SCRIPT ? "script" : types & BT_BUILTIN ? "builtin" : "openai";
}

/* The type of backend e: BT_OPENAI, BT_SCRIPT, or 0 when missing or bad (reported). */
static unsigned backend_type(struct tg_config_vctx *c, const json_t *e, const char *where, int line)
{
    const json_t *t = json_object_get(e, "type");
    if (!t) {
        tg_config_verr(c, line, "%s needs a type (openai, script or builtin)", where);
        return 0;
    }
    if (tg_config_env_failed(c, t))
        return 0;
    if (json_is_string(t) && strcmp(json_string_value(t), "openai") == 0)
        return BT_OPENAI;
    if (json_is_string(t) && strcmp(json_string_value(t), "script") == 0)
        return BT_SCRIPT;
    if (json_is_string(t) && strcmp(json_string_value(t), "builtin") == 0)
        return BT_BUILTIN;
    char w[96];
    snprintf(w, sizeof(w), "%s.type", where);
    if (json_is_string(t))
        tg_config_verr(c, tg_config_key_line(c, e, "type"),
                       "%s must be openai, script or builtin, not '%s'", w, json_string_value(t));
    else
        tg_config_type_err(c, tg_config_key_line(c, e, "type"), w, "openai, script or builtin", t);
    return 0;
}

static void check_backend(struct tg_config_vctx *c, struct tg_config *cfg, const json_t *list,
                          size_t i)
{
    const json_t *e = json_array_get(list, i);
    struct tg_backend_conf *b = &cfg->backends[cfg->n_backends++];
    int line = tg_config_lines_node(c->lines, e);
    char where[64];

    tg_config_backend_defaults(b);
    snprintf(where, sizeof(where), "backends[%zu]", i);
    if (!line)
        line = tg_config_lines_elem(c->lines, list, i);
    if (!json_is_object(e)) {
        if (!tg_config_env_failed(c, e))
            tg_config_type_err(c, line, where, "a mapping with name and type", e);
        return;
    }
    if (tg_config_get_name(c, e, where, line, b->name)) {
        for (size_t j = 0; j + 1 < cfg->n_backends; j++) {
            if (strcmp(cfg->backends[j].name, b->name) == 0)
                tg_config_verr(c, tg_config_key_line(c, e, "name"), "duplicate backend name '%s'",
                               b->name);
        }
    }
    unsigned type = backend_type(c, e, where, line);
    b->type = type == BT_SCRIPT    ? TG_BACKEND_SCRIPT
              : type == BT_BUILTIN ? TG_BACKEND_BUILTIN
                                   : TG_BACKEND_OPENAI;
    for (size_t k = 0; k < TG_ARRAY_LEN(backend_fields); k++) {
        const struct tg_config_field *f = &backend_fields[k];
        const json_t *v = json_object_get(e, f->key);
        char w[192];
        if (!v)
            continue;
        snprintf(w, sizeof(w), "%s.%s", where, f->key);
        if (type && !(f->types & type))
            tg_config_verr(c, tg_config_key_line(c, e, f->key),
                           "%s is not an option of %s backends (only of %s)", w, type_word(type),
                           type_word(f->types));
        else
            tg_config_apply_field(c, f, (char *)b, v, w, tg_config_key_line(c, e, f->key));
    }
    if (type == BT_OPENAI && !json_object_get(e, "base_url"))
        tg_config_verr(c, line, "%s is an openai backend and needs a base_url", where);
    if (type == BT_SCRIPT && !json_object_get(e, "reply"))
        tg_config_verr(c, line, "%s is a script backend and needs a reply", where);
}

/* The known keys of a backend mapping, for unknown-key checks. */
static void backend_known(const char **known, size_t *n)
{
    *n = 0;
    known[(*n)++] = "name";
    known[(*n)++] = "type";
    for (size_t k = 0; k < TG_ARRAY_LEN(backend_fields); k++)
        known[(*n)++] = backend_fields[k].key;
}

void tg_config_check_backends(struct tg_config_vctx *c, struct tg_config *cfg, const json_t *root)
{
    const json_t *list = tg_config_get_list(c, root, "backends", "backends");
    const char *known[2 + TG_ARRAY_LEN(backend_fields)];
    size_t nk;
    size_t n = json_array_size(list);
    if (n == 0)
        return;
    cfg->backends = tg_calloc(n, sizeof(*cfg->backends));
    if (!cfg->backends) {
        c->rc = TG_E_NOMEM;
        return;
    }
    backend_known(known, &nk);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(list, i);
        if (json_is_object(e)) {
            char where[64];
            snprintf(where, sizeof(where), "backends[%zu]", i);
            tg_config_check_keys(c->errs, c->path, c->lines, e, where, known, nk);
        }
        check_backend(c, cfg, list, i);
    }
}

void tg_config_check_route(struct tg_config_vctx *c, struct tg_config *cfg, const json_t *root)
{
    static const char *const route_keys[] = {"backend"};
    const json_t *route = tg_config_get_mapping(c, root, "route", "route");
    const json_t *name = NULL;
    if (route) {
        tg_config_check_keys(c->errs, c->path, c->lines, route, "route", route_keys, 1);
        name = json_object_get(route, "backend");
    }
    if (cfg->n_backends == 0) {
        /* An empty list has a line; a missing section does not. */
        const json_t *list = json_object_get(root, "backends");
        tg_config_verr(c, list ? tg_config_key_line(c, root, "backends") : 0,
                       "no backends configured (add a backends: list)");
        return;
    }
    if (!name) {
        tg_config_verr(c,
                       route ? tg_config_key_line(c, root, "route")
                             : tg_config_key_line(c, root, "backends"),
                       "route.backend is required: name the backend that answers");
        return;
    }
    if (tg_config_env_failed(c, name))
        return;
    if (!json_is_string(name)) {
        tg_config_type_err(c, tg_config_key_line(c, route, "backend"), "route.backend",
                           "a backend name", name);
        return;
    }
    const char *s = json_string_value(name);
    if (!tg_config_backend(cfg, s)) {
        const char *names[64];
        size_t n = TG_MIN(cfg->n_backends, TG_ARRAY_LEN(names));
        for (size_t i = 0; i < n; i++)
            names[i] = cfg->backends[i].name;
        const char *hint = tg_config_closest(s, names, n);
        if (hint)
            tg_config_verr(c, tg_config_key_line(c, route, "backend"),
                           "route.backend names unknown backend '%s' (did you mean '%s'?)", s,
                           hint);
        else
            tg_config_verr(c, tg_config_key_line(c, route, "backend"),
                           "route.backend names unknown backend '%s'", s);
        return;
    }
    if (tg_config_set_str(&cfg->route_backend, s, strlen(s)))
        c->rc = TG_E_NOMEM;
}

void tg_config_check_models(struct tg_config_vctx *c, struct tg_config *cfg, const json_t *root)
{
    const json_t *list = tg_config_get_list(c, root, "models", "models");
    size_t n = json_array_size(list);
    if (!list)
        return;
    if (n == 0) {
        tg_config_verr(c, tg_config_key_line(c, root, "models"),
                       "models must list at least one model id");
        return;
    }
    char **models = tg_calloc(n, sizeof(*models));
    if (!models) {
        c->rc = TG_E_NOMEM;
        return;
    }
    for (size_t i = 0; i < cfg->n_models; i++)
        tg_free(cfg->models[i]);
    tg_free(cfg->models);
    cfg->models = models;
    cfg->n_models = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(list, i);
        int line = tg_config_lines_elem(c->lines, list, i);
        char where[48];
        snprintf(where, sizeof(where), "models[%zu]", i);
        if (tg_config_env_failed(c, v))
            continue;
        if (!json_is_string(v)) {
            tg_config_type_err(c, line, where, "a string", v);
            continue;
        }
        if (json_string_length(v) == 0 || strlen(json_string_value(v)) != json_string_length(v)) {
            tg_config_verr(c, line, "%s must be a non-empty model id", where);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < cfg->n_models && !dup; j++)
            dup = strcmp(cfg->models[j], json_string_value(v)) == 0;
        if (dup) {
            tg_config_verr(c, line, "duplicate model id '%s'", json_string_value(v));
            continue;
        }
        cfg->models[cfg->n_models] = tg_strdup(json_string_value(v));
        if (!cfg->models[cfg->n_models]) {
            c->rc = TG_E_NOMEM;
            return;
        }
        cfg->n_models++;
    }
}
