/*
 * config.h - one YAML (or JSON) file, loaded into a jansson tree that
 * remembers where every node came from, then validated into a struct
 * tg_config.
 *
 * Every problem is reported as "FILE:LINE: message", all of them in one
 * pass, so `trustgate config check` can print the whole list.  Strings of
 * the form ${NAME} anywhere in a scalar are replaced by the environment
 * variable NAME; an unset variable is an error at its line.
 *
 * Ownership: tg_config_load() returns a config the caller frees with
 * tg_config_free(); every pointer inside it is owned by the config.
 */
#ifndef TG_CONFIG_H
#define TG_CONFIG_H

#include "core/core.h"

#define TG_CONFIG_NAME_MAX 64

struct tg_api_key {
    char name[TG_CONFIG_NAME_MAX];
    uint8_t sha256[TG_SHA256_LEN]; /* keys are kept only as hashes */
};

enum tg_backend_type { TG_BACKEND_OPENAI, TG_BACKEND_SCRIPT };

struct tg_backend_conf {
    char name[TG_CONFIG_NAME_MAX];
    enum tg_backend_type type;
    char *base_url;  /* openai: e.g. "http://127.0.0.1:9000/v1" (no trailing slash) */
    char *api_key;   /* openai: sent as "Authorization: Bearer"; may be NULL */
    char *model;     /* openai: upstream model name; NULL = pass the client's through */
    char *reply;     /* script: the canned reply text */
    int64_t connect_timeout_ms; /* default 2000 */
    int64_t header_timeout_ms;  /* default 10000: request sent -> response headers */
    int64_t total_timeout_ms;   /* default 60000 */
    int64_t idle_timeout_ms;    /* default 10000: stream silence */
    bool stream;                /* ask the upstream to stream; default true */
    long max_connections;       /* keep-alive pool size per host; default 64 */
};

struct tg_config {
    char *path;    /* the file loaded */
    json_t *root;  /* the whole tree after ${ENV} substitution */

    /* server: */
    char *listen_host;          /* default "127.0.0.1" */
    int listen_port;            /* default 8080 */
    char *data_dir;             /* default "./data" */
    uint64_t max_body;          /* default 1 MiB */
    size_t max_messages;        /* default 256 */
    char *customer_header;      /* default "X-Customer-Id" */
    enum tg_log_level log_level; /* default info */
    int64_t drain_timeout_ms;   /* SIGTERM: wait this long for in-flight turns; default 10000 */

    /* auth: */
    struct tg_api_key *api_keys;
    size_t n_api_keys;

    /* store: */
    char *store_uri;            /* default "sqlite:<data_dir>/trustgate.db" */
    int64_t group_commit_ms;    /* default 5 */

    /* conversation: */
    int64_t idle_timeout_ms;    /* a new conversation starts after this silence; default 30 min */
    size_t history;             /* earlier messages sent to the model; default 20 */

    /* backends: and route: */
    struct tg_backend_conf *backends;
    size_t n_backends;
    char *route_backend;        /* name of the backend that answers; must exist */

    /* models: ids listed by GET /v1/models; default ["trustgate"] */
    char **models;
    size_t n_models;
};

/*
 * Load and validate a config file.  On success returns TG_OK and *out.  On
 * failure returns TG_E_CONFIG (or TG_E_IO when the file cannot be read) and,
 * when errs is not NULL, a new JSON array of strings "FILE:LINE: message",
 * one per problem, which the caller json_decref()s.
 */
int tg_config_load(const char *path, struct tg_config **out, json_t **errs);
void tg_config_free(struct tg_config *cfg);

/* The backend named name, or NULL. */
const struct tg_backend_conf *tg_config_backend(const struct tg_config *cfg, const char *name);

/*
 * The source line of a node of cfg->root (or of a tree returned by
 * tg_config_parse_yaml), 0 if unknown.  Later modules that read their own
 * sections (policies, review) use it for their own file:line errors.
 */
int tg_config_line(const struct tg_config *cfg, const json_t *node);

#endif
