/*
 * config_int.h - what the files of config/ share and nobody else sees: the
 * line table's write side, the plain-scalar resolver, the private wrapper
 * around struct tg_config, the validation context with its typed getters,
 * the field tables' kinds, and one checker per section.
 */
#ifndef TG_CONFIG_INT_H
#define TG_CONFIG_INT_H

#include "config/config.h"

/* Flags stored with a node's line. */
#define TG_LINE_PLAIN 0x1u  /* a string that came from a plain (unquoted) scalar */
#define TG_LINE_BADENV 0x2u /* ${ENV} expansion failed here: already reported */

/* Deepest nesting of mappings and lists the loader accepts. */
#define TG_CONFIG_MAX_DEPTH 64
/* Largest file the loader reads, and largest string after ${ENV} expansion. */
#define TG_CONFIG_MAX_FILE (16u * 1024 * 1024)

/*
 * A config as allocated by tg_config_load(): the public struct first, so a
 * struct tg_config * converts back to its wrapper.
 */
struct tg_config_priv {
    struct tg_config pub;
    struct tg_config_lines *lines;
};

/* A new, empty line table, or NULL on allocation failure. */
struct tg_config_lines *tg_config_lines_new(void);

/*
 * Record the line (and flags) of a node, of key `key` of mapping obj, or of
 * element index of list arr.  An existing record for the same place is
 * overwritten.  TG_OK or TG_E_NOMEM.
 */
int tg_config_lines_set_node(struct tg_config_lines *l, const json_t *node, int line,
                             unsigned flags);
int tg_config_lines_set_key(struct tg_config_lines *l, const json_t *obj, const char *key,
                            int line);
int tg_config_lines_set_elem(struct tg_config_lines *l, const json_t *arr, size_t index, int line);
/* The flags recorded with a node, 0 when none. */
unsigned tg_config_lines_flags(const struct tg_config_lines *l, const json_t *node);

/*
 * Keep node (a reference the table steals) alive until the table is freed,
 * so that its address is never reused by another node while line records
 * may still name it.  TG_OK, or TG_E_NOMEM (the reference is then dropped).
 */
int tg_config_lines_retire(struct tg_config_lines *l, json_t *node);

/*
 * The value of a plain YAML scalar of len bytes: null, boolean, integer,
 * real or string.  Returns a new reference, or NULL on allocation failure or
 * when s is not valid UTF-8.
 */
json_t *tg_config_plain_scalar(const char *s, size_t len);

/* Like tg_config_errorf(), with a column when col > 0: "PATH:LINE:COL: message". */
int tg_config_verrorf(json_t *errs, const char *path, int line, int col, const char *fmt,
                      va_list ap) __attribute__((format(printf, 5, 0)));
int tg_config_errorf_at(json_t *errs, const char *path, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ------------------------------------------------------------ fields: one table row per scalar
 * option */

enum tg_config_fkind {
    F_STRING,      /* char *, at least min bytes */
    F_OPT_STRING,  /* char *, "" means NULL */
    F_DURATION,    /* int64_t milliseconds in [min, max] */
    F_SIZE,        /* uint64_t bytes in [min, max] */
    F_SIZE_T,      /* size_t in [min, max] */
    F_LONG,        /* long in [min, max] */
    F_BOOL,        /* bool */
    F_LOG_LEVEL,   /* enum tg_log_level */
    F_LISTEN,      /* char * host at off, int port at off2 */
    F_URL,         /* char *, http:// or https://, trailing '/' removed */
    F_HEADER_NAME, /* char *, an HTTP field name */
    F_REAL,        /* double in [min, max] */
    F_PATH,        /* char *, resolved against the config file's directory */
};

#define BT_OPENAI (1u << TG_BACKEND_OPENAI)
#define BT_SCRIPT (1u << TG_BACKEND_SCRIPT)
#define BT_BUILTIN (1u << TG_BACKEND_BUILTIN)

struct tg_config_field {
    const char *key;
    enum tg_config_fkind kind;
    size_t off;
    size_t off2;
    int64_t min;
    int64_t max;
    unsigned types; /* backends only: the backend types that take this option */
};

#define CFG(m) offsetof(struct tg_config, m)
#define BE(m) offsetof(struct tg_backend_conf, m)

/* What every check reports into: the file, its line table and the error list. */
struct tg_config_vctx {
    const char *path;
    const struct tg_config_lines *lines;
    json_t *errs;
    int rc; /* TG_E_NOMEM once an error message could not be stored */
};

/* Append "PATH:LINE: message" to c's errors (rc becomes TG_E_NOMEM when it cannot). */
void tg_config_verr(struct tg_config_vctx *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "WHERE must be WANT, not a list" or "WHERE has no value (WANT expected)". */
void tg_config_type_err(struct tg_config_vctx *c, int line, const char *where, const char *want,
                        const json_t *v);
/* A value whose ${ENV} expansion already failed and was reported. */
bool tg_config_env_failed(const struct tg_config_vctx *c, const json_t *v);
/* Line of member key of obj, falling back to the line of obj itself. */
int tg_config_key_line(const struct tg_config_vctx *c, const json_t *obj, const char *key);
/* Member key of parent as a mapping (or a list), NULL when absent or null; a
 * type error is reported (and NULL returned) for anything else. */
const json_t *tg_config_get_mapping(struct tg_config_vctx *c, const json_t *parent, const char *key,
                                    const char *where);
const json_t *tg_config_get_list(struct tg_config_vctx *c, const json_t *parent, const char *key,
                                 const char *where);
/* Replace *dst by a copy of s[0..len).  TG_OK or TG_E_NOMEM (*dst kept). */
int tg_config_set_str(char **dst, const char *s, size_t len);
/* Check obj.name (1..63 of [A-Za-z0-9._-]) and copy it into dst; false when absent or bad
 * (reported at line, or at the name's own line). */
bool tg_config_get_name(struct tg_config_vctx *c, const json_t *obj, const char *where, int line,
                        char dst[TG_CONFIG_NAME_MAX]);
/* A duration (integer or real milliseconds, or a string such as "10s") into *out; false if not one.
 */
bool tg_config_get_duration(const json_t *v, int64_t *out);
/* http(s)://HOST... with no spaces; returns the length without trailing slashes, 0 if bad. */
size_t tg_config_url_ok(const char *s);
/* A path from the config: absolute as is, else relative to the config file's directory,
 * into *dst (replacing it).  TG_OK or TG_E_NOMEM. */
int tg_config_resolve_path(struct tg_config_vctx *c, const char *p, char **dst);
/* A file the deployment reads at start-up must be readable now: else an error at line. */
void tg_config_check_readable(struct tg_config_vctx *c, int line, const char *where,
                              const char *path);
/* Check value v of option f (at WHERE, line) and store it at base + f->off. */
void tg_config_apply_field(struct tg_config_vctx *c, const struct tg_config_field *f, char *base,
                           const json_t *v, const char *where, int line);
/* Validate a mapping of options described by fields[0..n) (plus extra known keys) into base. */
void tg_config_apply_fields(struct tg_config_vctx *c, const json_t *obj, const char *where,
                            const struct tg_config_field *fields, size_t n,
                            const char *const *extra, size_t n_extra, void *base);
/* obj.key, when present, a number in [lo, hi] (integer or real), else an error at its line. */
void tg_config_check_number(struct tg_config_vctx *c, const json_t *obj, const char *key,
                            const char *what, double lo, double hi);
/* obj.keys[0..n), when present, durations of 0 or more, else errors at their lines. */
void tg_config_check_durations(struct tg_config_vctx *c, const json_t *obj, const char *prefix,
                               const char *const *keys, size_t n);
/* The known word closest to word, if it is at edit distance 2 or less; else NULL. */
const char *tg_config_closest(const char *word, const char *const *known, size_t n);

/*
 * One checker per top-level section of root: each reports every problem
 * into c and fills what it owns of cfg (serving.c: auth, backends, route,
 * models; governing.c: ladder, eval, fairness, audit, experiments;
 * people.c: review, translations, web, labels, privacy, users, webhooks).
 */
void tg_config_check_auth(struct tg_config_vctx *c, struct tg_config *cfg, const json_t *root);
void tg_config_check_backends(struct tg_config_vctx *c, struct tg_config *cfg, const json_t *root);
void tg_config_check_route(struct tg_config_vctx *c, struct tg_config *cfg, const json_t *root);
void tg_config_check_models(struct tg_config_vctx *c, struct tg_config *cfg, const json_t *root);
void tg_config_check_ladder(struct tg_config_vctx *c, struct tg_config *cfg, const json_t *root);
void tg_config_check_eval(struct tg_config_vctx *c, const json_t *root);
void tg_config_check_fairness(struct tg_config_vctx *c, const json_t *root);
void tg_config_check_audit(struct tg_config_vctx *c, const json_t *root);
void tg_config_check_experiments(struct tg_config_vctx *c, const json_t *root);
void tg_config_check_review(struct tg_config_vctx *c, const json_t *root);
void tg_config_check_translations(struct tg_config_vctx *c, const json_t *root);
void tg_config_check_web(struct tg_config_vctx *c, const json_t *root);
void tg_config_check_labels(struct tg_config_vctx *c, const json_t *root);
void tg_config_check_privacy(struct tg_config_vctx *c, const json_t *root);
void tg_config_check_users(struct tg_config_vctx *c, const struct tg_config *cfg,
                           const json_t *root);
void tg_config_check_hooks(struct tg_config_vctx *c, const json_t *root);

/* ------------------------------------------------------------ defaults (defaults.c) */

/* Set every option of cfg (but path and root) to its default.  TG_OK or TG_E_NOMEM. */
int tg_config_set_defaults(struct tg_config *cfg);
/* Set every option of a backend to its default. */
void tg_config_backend_defaults(struct tg_backend_conf *b);
/* Fill the typed sections of cfg from its validated tree.  TG_OK or TG_E_NOMEM. */
int tg_config_fill_sections(struct tg_config *cfg, const struct tg_config_lines *lines);
/* Free what tg_config_fill_sections() allocated. */
void tg_config_free_sections(struct tg_config *cfg);

#endif
