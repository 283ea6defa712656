/*
 * config_int.h - what yaml.c and config.c share and nobody else sees: the
 * line table's write side, the plain-scalar resolver and the private
 * wrapper around struct tg_config.
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

#endif
