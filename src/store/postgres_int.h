/*
 * postgres_int.h - private to the PostgreSQL store backend (postgres.c,
 * postgres_reads.c): the handle, the statements' names, parameter lists
 * and the small helpers both files use.
 */
#ifndef TG_STORE_POSTGRES_INT_H
#define TG_STORE_POSTGRES_INT_H

#include "store/store_int.h"

#include <endian.h>
#include <string.h>

#include <libpq-fe.h>

/* Rows a scan reads at a time: memory stays bounded whatever the table's
 * size, and the callback may read from the store between pages. */
#define PG_PAGE 256

enum pg_stmt {
    /* writes, prepared on the writer's connection */
    P_CONVERSATION,
    P_CONV_STEP,
    P_MESSAGE,
    P_TURN,
    P_REVIEW,
    P_AUDIT,
    P_BLOB,
    P_BLOB_DELETE,
    P_HANDOFF,
    P_TELL,
    P_HEAD_LOCK,
    P_HEAD_SET,
    /* reads, prepared on the caller's connection */
    P_CONV_GET,
    P_CONV_LATEST,
    P_MESSAGES,
    P_TURN_GET,
    P_REVIEW_GET,
    P_REVIEW_LIST,
    P_REVIEW_LIST_STATE,
    P_REVIEW_LIST_DONE,
    P_AUDIT_SIZE,
    P_AUDIT_GET,
    P_AUDIT_PAGE,
    P_BLOB_GET,
    P_BLOB_LIST,
    P_REVIEW_PAGE,
    P_REVIEW_OF_CONV,
    P_HANDOFF_LIST,
    P_FACTS_PAGE,
    P_LOCK,
    P_TRYLOCK,
    P_UNLOCK,
    P__COUNT
};
#define P_FIRST_READ P_CONV_GET

#define PG_TOLD 64

struct pg_store {
    struct tg_store base;  /* first: store.c sees only this */
    char *name;            /* the uri without a password, for messages */
    char *uri;             /* to connect again after a lost connection */
    PGconn *w;             /* the writer thread's, once the queue runs */
    PGconn *r;             /* the caller's thread's */
    PGconn *l;             /* the caller's thread's, listening for others' changes */
    int writer_pid;        /* w's server process (atomic: the writer reconnects) */
    struct tg_range range; /* the audit tree's head, read under its lock per batch */
    int64_t last_leaf;     /* the index of the leaf this store appended last, or -1 */
    /* what other nodes told (tg_store_tell), the latest PG_TOLD: "ID TEXT" */
    char *told[PG_TOLD];
    unsigned told_next;
};

static inline struct pg_store *pg(struct tg_store *st)
{
    return (struct pg_store *)st;
}

/*
 * A statement's parameters in the order they are bound.  Numbers are
 * written as text into num[]; bytes are passed in binary format.
 */
#define PG_MAX_PARAMS 10
struct pg_params {
    int n;
    const char *v[PG_MAX_PARAMS];
    int len[PG_MAX_PARAMS];
    int fmt[PG_MAX_PARAMS];
    char num[PG_MAX_PARAMS][24];
};

static inline void par_text(struct pg_params *p, const char *s)
{
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

static inline void par_bytes(struct pg_params *p, const void *b, size_t n)
{
    p->v[p->n] = n ? b : "";
    p->len[p->n] = (int)n;
    p->fmt[p->n++] = 1;
}

static inline void par_i64(struct pg_params *p, int64_t v)
{
    snprintf(p->num[p->n], sizeof(p->num[p->n]), "%lld", (long long)v);
    par_text(p, p->num[p->n]);
}

static inline void par_null(struct pg_params *p)
{
    p->v[p->n] = NULL;
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

/* A binary int8 column. */
static inline int64_t col_bin_i64(const PGresult *res, int row, int col)
{
    uint64_t v;
    if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8)
        return 0;
    memcpy(&v, PQgetvalue(res, row, col), 8);
    return (int64_t)be64toh(v);
}

/* A text column as an integer (0 for NULL or, never from our statements, not a number). */
static inline int64_t col_i64(const PGresult *res, int row, int col)
{
    int64_t v = 0;
    if (!PQgetisnull(res, row, col) && tg_parse_i64(PQgetvalue(res, row, col), &v) != TG_OK)
        v = 0;
    return v;
}

/*
 * Run prepared statement k (a read, or a task's lock) on the caller's
 * connection with params p, results in text (rfmt 0) or binary (1).  A
 * connection found lost (the server restarted, the connection killed) is
 * opened again and the statement run once more; writes never come here
 * (pg_run_batch rolls a batch back and runs it again).  The result, or NULL
 * with *rc the error (logged, SQLSTATE mapped: unique or check violations
 * are TG_E_CONFLICT).
 */
PGresult *pg_run(struct pg_store *s, enum pg_stmt k, const struct pg_params *p, int rfmt, int *rc);

int pg_conversation_latest(struct tg_store *st, const char *customer_id,
                           struct tg_conversation *out);
int pg_conversation_get(struct tg_store *st, const char *id, struct tg_conversation *out);
int pg_messages(struct tg_store *st, const char *conversation_id, size_t limit, json_t **out);
int pg_blob_get(struct tg_store *st, const char *key, char **data, size_t *len);
int pg_blob_list(struct tg_store *st, const char *prefix, size_t limit, json_t **out);
int pg_turn_get(struct tg_store *st, const char *turn_id, json_t **record);
int pg_review_get(struct tg_store *st, const char *id, struct tg_review_row *row, json_t **task);
int pg_review_list(struct tg_store *st, const char *state, size_t limit, json_t **out);
int pg_review_of_conversation(struct tg_store *st, const char *conversation_id, const char *state,
                              struct tg_review_row *row);
int pg_review_scan(struct tg_store *st, const char *state,
                   int (*cb)(void *ctx, const struct tg_review_row *row), void *ctx);
int pg_review_facts(struct tg_store *st, int64_t since_ms,
                    int (*cb)(void *ctx, const struct tg_review_facts *f), void *ctx);
int pg_handoff_list(struct tg_store *st, const char *review_id, size_t limit,
                    int (*cb)(void *ctx, const struct tg_handoff_msg *m), void *ctx);
int pg_audit_size(struct tg_store *st, uint64_t *n);
int pg_audit_get(struct tg_store *st, uint64_t index, struct tg_audit_row *row);
int pg_audit_scan(struct tg_store *st, uint64_t from,
                  int (*cb)(void *ctx, const struct tg_audit_row *row), void *ctx);

#endif
