/*
 * compile_int.h - private to the policy compiler (compile.c,
 * compile_terms.c): the compiling context, its error reporting and
 * allocation helpers, and the keyword and regex tests compile_terms.c reads.
 */
#ifndef TG_POLICY_COMPILE_INT_H
#define TG_POLICY_COMPILE_INT_H

#include "policy/policy_int.h"

#include "config/config.h"

struct seen_id {
    const char *id;
    int line;
};

struct cctx {
    const char *path;
    const char *base_dir;
    const struct tg_config_lines *lines;
    json_t *errs;
    size_t n_errs;
    int rc; /* TG_E_NOMEM once an allocation failed */
    struct tg_policy *p;
    struct tg_arena *arena;
    char where[POLICY_MAX_ID + 16]; /* "rule 'id'" */
    enum tg_policy_stage stage;
    size_t cap_rules, cap_nodes, cap_kids, cap_kw, cap_rx;
    struct seen_id *ids;
    size_t n_ids, cap_ids;
    pcre2_general_context *gctx;
    pcre2_compile_context *ccx;
};

/* ------------------------------------------------------------ compile.c */

/* Out of memory: the compilation fails with TG_E_NOMEM. */
void cctx_nomem(struct cctx *c);
/* Report "PATH:LINE: rule 'id': message" into the error list. */
void cctx_err(struct cctx *c, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Report that what is not of the type want (or has no value). */
void cctx_type_err(struct cctx *c, int line, const char *what, const char *want, const json_t *v);
/* The line of member key of obj, else of obj itself (0: unknown). */
int cctx_kline(const struct cctx *c, const json_t *obj, const char *key);
/* The line of element i of arr, else of the element, else fallback. */
int cctx_eline(const struct cctx *c, const json_t *arr, size_t i, int fallback);
/* Report the keys of obj not among known[0..n) "in WHAT of rule 'id'"
 * (what NULL: "in rule 'id'"); returns their number. */
size_t cctx_check_keys(struct cctx *c, const json_t *obj, const char *what,
                       const char *const *known, size_t n);
/* Room for one more element in the array *pv (elements of elem bytes, n
 * used, *cap held), grown when needed; false (out of memory noted) if not. */
bool cctx_room(struct cctx *c, void *pv, size_t n, size_t *cap, size_t elem);
/* s[0..len) copied into the policy's arena; NULL (out of memory noted). */
char *cctx_adup(struct cctx *c, const char *s, size_t len);
/* A non-empty string value copied into the arena; NULL (reported) otherwise. */
const char *cctx_get_text(struct cctx *c, const json_t *v, int line, const char *what);

/* ------------------------------------------------------------ compile_terms.c */

/* keywords: [TERMS...] | TERM | {file: PATH} (relative to the base
 * directory) -> a new keyword leaf reading field; false when reported. */
bool compile_keywords(struct cctx *c, const json_t *v, int line, const char *what, uint8_t field,
                      uint32_t *leaf);
/*
 * regex: PATTERN | {pattern: P, on: norm|text|draft} -> a regex leaf
 * (shared when equal), compiled and JIT-compiled; draft.regex and
 * tool.arguments.regex (field_in other than PF_TEXT): PATTERN |
 * {pattern: P} on their own field.  False when reported.
 */
bool compile_regex(struct cctx *c, const json_t *v, int line, const char *what, uint8_t field_in,
                   uint32_t *leaf);

#endif
