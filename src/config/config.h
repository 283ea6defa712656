/*
 * config.h - one YAML (or JSON) file, loaded into a jansson tree that
 * remembers where every node came from, then validated into a struct
 * tg_config.
 *
 * Every problem is reported as "FILE:LINE: message", all of them in one
 * pass, so `trustgate config check` can print the whole list; a file the
 * config names that cannot be read is one of them.  Strings of
 * the form ${NAME} anywhere in a scalar are replaced by the environment
 * variable NAME; an unset variable is an error at its line.
 *
 * Ownership: tg_config_load() returns a config the caller frees with
 * tg_config_free(); every pointer inside it is owned by the config.
 * Plain API keys (auth.api_keys[].key) are kept only as SHA-256 hashes: their
 * text in cfg->root is replaced by "<redacted>" at load.
 */
#ifndef TG_CONFIG_H
#define TG_CONFIG_H

#include "core/core.h"

#define TG_CONFIG_NAME_MAX 64

/* Traffic classes, lowest first: who keeps a share of a busy model. */
enum tg_traffic_class { TG_CLASS_INTERNAL = 0, TG_CLASS_CUSTOMER = 1, TG_CLASS_VIP = 2 };

struct tg_api_key {
    char name[TG_CONFIG_NAME_MAX];
    uint8_t sha256[TG_SHA256_LEN]; /* keys are kept only as hashes */
    enum tg_traffic_class klass;   /* `class`: the class of the key's traffic (customer) */
    /* `class_from_metadata`: the channel may name a request's class itself
     * (metadata.tier "vip", metadata.class "internal"); false: metadata
     * never changes a class */
    bool class_from_metadata;
};

enum tg_backend_type { TG_BACKEND_OPENAI, TG_BACKEND_SCRIPT, TG_BACKEND_BUILTIN };

struct tg_backend_conf {
    char name[TG_CONFIG_NAME_MAX];
    enum tg_backend_type type;
    char *base_url;             /* openai: e.g. "http://127.0.0.1:9000/v1" (no trailing slash) */
    char *api_key;              /* openai: sent as "Authorization: Bearer"; may be NULL */
    char *model;                /* openai: upstream model name; NULL = pass the client's through */
    char *reply;                /* script: the canned reply text */
    int64_t connect_timeout_ms; /* default 2000 */
    int64_t header_timeout_ms;  /* default 10000: request sent -> response headers */
    int64_t total_timeout_ms;   /* default 60000 */
    int64_t idle_timeout_ms;    /* default 10000: stream silence */
    int64_t first_token_timeout_ms; /* stream: head -> first answer token; 0 = idle_timeout */
    bool stream;                    /* ask the upstream to stream; default true */
    long max_connections;           /* keep-alive pool size per host; default 64 */
    /* builtin: */
    double min_confidence;      /* below it the answer is low_confidence_reply; default 0.7 */
    char *low_confidence_reply; /* default "我需要更多时间分析，请稍候" */
    long max_sentences;         /* sentences quoted from an article; default 3 */
};

/*
 * The typed sections below are filled at load from the validated tree; every
 * default is in one table (config/defaults.c).  Strings marked "borrowed"
 * point into the config's own tree and live as long as the config.  One
 * member is a subtree handed as it is: the inline policy rules, written in
 * the policy module's rule language and compiled by it with their lines
 * (policy/policy.h), like a rules file named by an include.
 */

/* ladder.rungs[i]: one step of the ladder. */
struct tg_rung_conf {
    const char *name;         /* borrowed; default: the backend's name, else "human" */
    const char *backend;      /* borrowed; NULL: a person answers */
    const char *model;        /* borrowed; NULL: the backend's (or the client's) model */
    int64_t budget_ms;        /* default 0: none */
    bool large_context;       /* default false */
    int64_t max_inflight;     /* default 0: unlimited */
    int64_t queue;            /* calls waiting for a slot; default 0 */
    int64_t queue_timeout_ms; /* default 1000 */
};

/* ladder: who answers, in which order, with which budgets and breakers. */
struct tg_ladder_conf {
    bool present; /* the config has a ladder: key (else the route's backend alone) */
    struct tg_rung_conf *rungs;
    size_t n_rungs;
    int64_t max_attempts;      /* default 3; 1 without a ladder: key */
    int64_t budget_ms;         /* the turn's budget; default 0: none */
    int64_t backoff_ms;        /* default 200 */
    int64_t backoff_max_ms;    /* default 2000 */
    int64_t degraded_to_human; /* failed turns in a row before a person takes over; default 3 */
    double min_confidence;     /* default -1: none */
    bool stream_through;       /* default false */
    int64_t class_weight[3];   /* per enum tg_traffic_class; default 1, 3, 6 */
    int64_t breaker_failures;  /* default 3 */
    int64_t breaker_open_ms;   /* default 1000 */
    double breaker_probe;      /* share of turns that probe an open breaker; default 1 */
};

/* eval.prices.MODEL: what a model's tokens cost, per 1,000. */
struct tg_price_conf {
    const char *model; /* borrowed */
    double prompt;     /* per 1,000 prompt tokens; default 0 */
    double completion; /* per 1,000 completion tokens; default 0 */
};

/* eval: the FAR set and minimum, the FAR monitor, the prices of models. */
struct tg_eval_conf {
    const char *far_set;      /* borrowed, as written (relative to the config's folder); NULL */
    bool has_far_min;         /* eval.far.min is set */
    double far_min;           /* eval.far.min when has_far_min */
    bool monitor;             /* eval.monitor is configured */
    double monitor_min_far;   /* default 0.85 */
    int64_t monitor_days;     /* default 7 */
    double monitor_alpha;     /* default 0.05 */
    int64_t monitor_every_ms; /* eval.monitor.check_every; default 1 h */
    struct tg_price_conf *price_list; /* eval.prices, in the file's order */
    size_t n_prices;
};

/* fairness.attributes[i]: a sensitive attribute, and the values whose groups are
 * named in reports (the others are counted under their pseudonyms). */
struct tg_fair_attr_conf {
    const char *name;    /* borrowed */
    const char **values; /* borrowed; NULL when none is listed */
    size_t n_values;
};

/* fairness: the live fairness gate. */
struct tg_fairness_conf {
    struct tg_fair_attr_conf *attrs; /* the sensitive attributes, with their values */
    size_t n_attributes;
    double alpha;           /* fairness.alpha; 0 when not set (the gate's own default) */
    double limit;           /* default 0.05 */
    int64_t min_group;      /* default 30 */
    int64_t bootstrap;      /* default 1000 */
    int64_t window_ms;      /* default 30 days */
    int64_t check_every_ms; /* default 1 h */
};

/* experiments[i].variants[k] */
struct tg_variant_conf {
    const char *name;    /* borrowed */
    double share;        /* above 0 */
    const char *release; /* borrowed; a registered release answers this variant, or NULL */
    const char *config;  /* borrowed; a config file answers this variant, or NULL */
    int line;            /* where the variant is written */
};

/* experiments[i] */
struct tg_experiment_conf {
    const char *name; /* borrowed */
    double holdout;   /* default 0 */
    struct tg_variant_conf *variants;
    size_t n_variants;
    const char *salt;   /* borrowed; what assignment hashes with the customer; default name */
};

/* review: deadlines, the four-eyes rule, internal queues, the follow-up queue. */
struct tg_review_conf {
    int64_t warn_before_ms;       /* default 30 s */
    int64_t claim_lapse_ms;       /* default 5 min */
    bool four_eyes;               /* default true */
    const char **internal_queues; /* borrowed names */
    size_t n_internal_queues;
    const char *follow_up_queue; /* default "follow_up" */
    int64_t follow_up_sla_ms;    /* default 2 min */
    /* The tags that make a hand-off urgent in the console (after a waiting
     * customer): the pipeline's own (degraded_3x, the one list of them is in
     * config/defaults.c) first, then review.risk_tags as written, each once;
     * borrowed or static. */
    const char **risk_tags;
    size_t n_risk_tags;
};

/* web.texts.LANG: the pages' words that belong to this deployment, in one
 * interface language; a text left out is the pages' generic one (title,
 * intro) or none (examples, login hint).  All borrowed. */
struct tg_web_texts {
    const char *lang;           /* a language tag as written: "zh", "en", "zh-CN" */
    const char *chat_title;     /* the chat page's title, after "trustgate"; or NULL */
    const char *chat_intro;     /* the chat page's greeting; or NULL */
    const char *login_hint;     /* a line under the console's login form; or NULL */
    const char **chat_examples; /* questions offered on the chat page with one click */
    size_t n_chat_examples;
};

/* users[i]: a person of the console. */
struct tg_user_conf {
    const char *name;           /* borrowed; default "" */
    const char *role;           /* borrowed; default "reviewer" */
    const char *token;          /* borrowed, or NULL */
    const char *password_hash;  /* borrowed, or NULL */
    char *password;             /* borrowed plaintext, or NULL; the console wipes it */
    const char **customer_ids; /* borrowed: the channel ids they chat as, or NULL */
    size_t n_customer_ids;
};

/* webhooks[i]: who hears about reviews decided and alerts raised. */
struct tg_webhook_conf {
    const char *url;    /* borrowed */
    const char *secret; /* borrowed; signs each delivery (HMAC-SHA256) */
};

/* labels.LANG.CODE: a text the console shows for a code (tag, event, rule). */
struct tg_label_conf {
    const char *lang, *code, *text; /* borrowed */
};

struct tg_config {
    char *path;   /* the file loaded */
    json_t *root; /* the whole tree after ${ENV} substitution (read only inside config/) */

    /* server: */
    char *listen_host;           /* default "127.0.0.1" */
    int listen_port;             /* default 8080 */
    char *data_dir;              /* default "./data" */
    uint64_t max_body;           /* default 1 MiB */
    size_t max_messages;         /* default 256 */
    char *customer_header;       /* default "X-Customer-Id" */
    enum tg_log_level log_level; /* default info */
    int64_t drain_timeout_ms;    /* SIGTERM: wait this long for in-flight turns; default 10000 */

    /* auth: */
    struct tg_api_key *api_keys;
    size_t n_api_keys;

    /* store: */
    char *store_uri;         /* default "sqlite:<data_dir>/trustgate.db" */
    int64_t group_commit_ms; /* default 5 */

    /* conversation: */
    int64_t idle_timeout_ms; /* a new conversation starts after this silence; default 30 min */
    size_t history;          /* earlier messages sent to the model; default 20 */

    /* backends: and route: */
    struct tg_backend_conf *backends;
    size_t n_backends;
    char *route_backend; /* name of the backend that answers; must exist */

    /* kb: (file paths are resolved against the config file's directory) */
    char **kb_paths; /* folders or JSONL files to ingest at start-up */
    size_t n_kb_paths;
    char **workflow_paths; /* workflows: the files (workflow.h), resolved */
    size_t n_workflows;
    char *kb_glossary; /* glossary YAML/JSON, or NULL */
    double kb_k1;      /* BM25 k1; default 1.2 */
    double kb_b;       /* BM25 b; default 0.75 */
    size_t kb_top_k;   /* evidence passages kept per turn; default 5 */
    /* kb.embeddings: dense retrieval through an OpenAI-compatible
     * /v1/embeddings server, fused with BM25; off without base_url */
    char *kb_embed_url;            /* e.g. "http://127.0.0.1:8080/v1", or NULL */
    char *kb_embed_model;          /* required with base_url */
    char *kb_embed_key;            /* sent as "Authorization: Bearer", or NULL */
    char *kb_embed_query_prefix;   /* put before a question (e5: "query: "), or NULL */
    char *kb_embed_passage_prefix; /* put before a passage, or NULL */
    size_t kb_embed_dimensions;    /* asked of the server; 0 (default) for its own */
    size_t kb_embed_batch;         /* passages per request when indexing; default 32 */
    int64_t kb_embed_timeout_ms;   /* per request; default 2000 */
    double kb_rrf_k;               /* reciprocal rank fusion constant; default 60 */
    double kb_embed_min_similarity; /* cosine a passage needs to count as found; default 0.3 */

    /* intents: */
    char *intents_train; /* TSV text<TAB>intent, or NULL for no classifier */

    /* understand: */
    char *policy_pattern; /* PCRE2 pattern of policy numbers, or NULL */

    /* models: ids listed by GET /v1/models; default ["trustgate"] */
    char **models;
    size_t n_models;

    struct tg_ladder_conf ladder;
    struct tg_eval_conf eval;
    struct tg_fairness_conf fairness;
    struct tg_experiment_conf *experiments;
    size_t n_experiments;
    struct tg_review_conf review;
    struct tg_user_conf *users;
    size_t n_users;

    /* policies: each {include: FILE} as written (relative to the config's
     * folder), in order, and the other entries: rules compiled by the policy
     * module with the config's line table (a list owned by the config, NULL
     * when there are none). */
    const char **policy_includes;
    size_t n_policy_includes;
    json_t *policy_rules;
    struct tg_webhook_conf *webhook_list; /* webhooks, for tg_webhooks_start() */
    size_t n_webhooks;
    struct tg_label_conf *label_list; /* labels, served to the console, in the file's order */
    size_t n_labels;
    const char *audit_origin; /* audit.origin; default "trustgate" */
    bool web_chat;            /* web.chat; default false */
    bool web_console;         /* web.console; default true */
    bool customer_map;        /* privacy.customer_map; default false */

    /* web.texts: one per language, in the file's order; none by default */
    struct tg_web_texts *web_texts;
    size_t n_web_texts;
};

/*
 * The configured translation of text into the language lang (a tag of
 * translations:, e.g. "en"), borrowed from cfg; NULL when there is none.
 */
const char *tg_config_translation(const struct tg_config *cfg, const char *lang, const char *text);

/*
 * Load and validate a config file.  On success returns TG_OK and *out.  On
 * failure returns TG_E_CONFIG (or TG_E_IO when the file cannot be read) and,
 * when errs is not NULL, a new JSON array of strings "FILE:LINE: message",
 * one per problem, which the caller json_decref()s.
 */
int tg_config_load(const char *path, struct tg_config **out, json_t **errs);
void tg_config_free(struct tg_config *cfg);

/*
 * A config made from a tree already in memory (a reference to root is
 * kept): every option at its default, the typed sections filled from root,
 * nothing checked (the caller vouches for the tree, as a test or a tool
 * holding sections of a loaded config does); lines are unknown (0).
 * TG_OK and *out (freed with tg_config_free()), or TG_E_NOMEM.
 */
int tg_config_from_tree(const json_t *root, struct tg_config **out);

/*
 * What a release of this deployment contains (snapshot.c): every file it
 * reads to answer customers (the config, policy includes, knowledge base,
 * glossary, intents' training set) -> SHA-256 hex, returned as a new
 * object.  Files are named relative to the config's directory when they
 * are inside it (so the same deployment hashes the same wherever it lies).
 * hash gets the SHA-256 of the canonical JSON of those files with the
 * answering settings (backends, route, ladder).  A file that cannot be read
 * is left out (and so changes the hash).  keep, when not NULL, is given
 * each file's name, hash and content (to store the release's files).
 * Out of memory: NULL and hash "" (never a partial list or its hash).
 */
typedef void (*tg_snapshot_keep_fn)(void *arg, const char *name, const char *sha256_hex,
                                    const void *data, size_t len);
json_t *tg_config_snapshot(const struct tg_config *cfg, char hash[65], tg_snapshot_keep_fn keep,
                           void *arg);

/*
 * The canonical form of a person's identity (a user's name, a customer id),
 * appended to out: NFKC with case folding (ICU's NFKC_Casefold, so
 * "Reviewer1", "reviewer1" and the full-width "ｒｅｖｉｅｗｅｒ１" are one
 * identity), whitespace runs collapsed to one space, leading and trailing
 * space removed.  Two identities are the same person when their canonical
 * forms are equal: the config refuses two users that would be, and the
 * four-eyes rule compares these forms.  TG_OK; TG_E_PARSE when s is not
 * valid UTF-8 (nothing appended); TG_E_NOMEM.  Safe from any thread.
 */
int tg_config_identity(const char *s, size_t len, struct tg_buf *out);

/* The backend named name, or NULL. */
const struct tg_backend_conf *tg_config_backend(const struct tg_config *cfg, const char *name);
/* The API key entry matching key (compared as SHA-256, in constant time
 * over every configured key), or NULL. */
const struct tg_api_key *tg_config_api_key(const struct tg_config *cfg, const char *key);

/*
 * The source line of a node of cfg->root (or of a tree returned by
 * tg_config_parse_yaml), 0 if unknown.  Later modules that read their own
 * sections (policies, review) use it for their own file:line errors.
 */
int tg_config_line(const struct tg_config *cfg, const json_t *node);

/*
 * ------------------------------------------------------------ YAML with lines
 *
 * The loader underneath tg_config_load(), for modules that read YAML files
 * of their own (policies, intents, eval suites) and want the same
 * "FILE:LINE: message" errors.
 *
 * Scalars: quoted scalars are always strings; plain ones become null ("",
 * "~", "null"), booleans (true/false/yes/no/on/off, any case), integers,
 * reals, or else strings.  Anchors, aliases and tags other than !!str are
 * rejected; a key given twice in one mapping is an error.
 *
 * A node's line is 1-based.  Booleans and null are shared jansson
 * singletons, so they have no line of their own: ask for the line of the
 * mapping key or list element that holds them instead.
 */
struct tg_config_lines;

/*
 * Parse the file at path (YAML or JSON) into a new tree.  On success returns
 * TG_OK, *root (a new reference; an empty file gives JSON null) and *lines
 * (freed with tg_config_lines_free()).  On failure returns TG_E_IO when the
 * file cannot be read, TG_E_CONFIG when it is not acceptable YAML,
 * TG_E_NOMEM, and appends one string "FILE:LINE: message" per problem (or
 * "FILE: message" when there is no line) to errs if errs is not NULL;
 * *root and *lines are then left untouched.  ${ENV} is not expanded here.
 */
int tg_config_parse_yaml(const char *path, json_t **root, struct tg_config_lines **lines,
                         json_t *errs);
/* Free a line table; NULL is a no-op.  The tree it describes is not touched. */
void tg_config_lines_free(struct tg_config_lines *lines);
/* The line of a node of the tree, 0 if unknown (null, booleans, foreign nodes). */
int tg_config_lines_node(const struct tg_config_lines *lines, const json_t *node);
/* The line of the key `key` of mapping obj, or of element index of list arr; 0 if unknown. */
int tg_config_lines_key(const struct tg_config_lines *lines, const json_t *obj, const char *key);
int tg_config_lines_elem(const struct tg_config_lines *lines, const json_t *arr, size_t index);

/*
 * Replace ${NAME} in every string value of root (not in mapping keys) by
 * getenv(NAME); "$$" stands for one "$", any other "$" is kept.  A plain
 * (unquoted) scalar is re-read after substitution, so `port: ${PORT}` gives
 * an integer.  Every problem (unset variable, bad name, unterminated ${) is
 * appended to errs as "FILE:LINE: message", the offending value is left as
 * it was, and the function returns TG_E_CONFIG; TG_E_NOMEM on allocation
 * failure.  Nodes replaced are kept alive by lines, so line lookups stay
 * valid.
 */
int tg_config_expand_env(json_t *root, struct tg_config_lines *lines, const char *path,
                         json_t *errs);

/* The line table of cfg->root, owned by cfg. */
const struct tg_config_lines *tg_config_line_table(const struct tg_config *cfg);

/*
 * Append "PATH:LINE: message" (or "PATH: message" when line <= 0) to the
 * JSON array errs.  Returns TG_OK or TG_E_NOMEM.
 */
int tg_config_errorf(json_t *errs, const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "a mapping", "a list", "a string", "an integer", "a number", "a boolean" or "null":
 * how error messages name the type of a value found in a config tree. */
const char *tg_config_type_name(const json_t *v);

/*
 * Report every key of mapping obj that is not in known[0..n_known) as
 * "PATH:LINE: unknown key 'k' in WHERE" plus "(did you mean 'x'?)" when a
 * known key is at edit distance 2 or less.  Returns the number reported.
 */
size_t tg_config_check_keys(json_t *errs, const char *path, const struct tg_config_lines *lines,
                            const json_t *obj, const char *where, const char *const *known,
                            size_t n_known);

#endif
