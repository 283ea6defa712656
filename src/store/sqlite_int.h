/*
 * sqlite_int.h - private to the SQLite store backend (sqlite.c,
 * sqlite_writer.c, sqlite_reads.c, sqlite_schema.c): the handle, the
 * queued write jobs, the names of the prepared statements, the small
 * helpers every part uses, and what each file offers the others.
 */
#ifndef TG_STORE_SQLITE_INT_H
#define TG_STORE_SQLITE_INT_H

#include "store/store_int.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#define BUSY_TIMEOUT_MS 5000

/* ------------------------------------------------------------ statements */

enum wstmt {
    W_BEGIN,
    W_COMMIT,
    W_ROLLBACK,
    W_SAVEPOINT,
    W_RELEASE,
    W_ROLLBACK_TO,
    W_CONVERSATION,
    W_CONV_STEP,
    W_MESSAGE,
    W_TURN,
    W_REVIEW,
    W_AUDIT,
    W_AUDIT_HASHES,
    W_BLOB,
    W_BLOB_DELETE,
    W_HANDOFF,
    W__COUNT
};

/* The write statements' SQL, indexed by enum wstmt (sqlite.c). */
extern const char *const sq_write_sql[W__COUNT];

enum rstmt {
    R_CONV_GET,
    R_CONV_LATEST,
    R_MESSAGES,
    R_TURN_GET,
    R_REVIEW_GET,
    R_REVIEW_LIST,
    R_REVIEW_LIST_STATE,
    R_REVIEW_LIST_DONE,
    R_AUDIT_SIZE,
    R_AUDIT_GET,
    R_AUDIT_SCAN,
    R_BLOB_GET,
    R_BLOB_LIST,
    R_REVIEW_SCAN,
    R_REVIEW_OF_CONV,
    R_HANDOFF_LIST,
    R_REVIEW_FACTS,
    R__COUNT
};

/* ------------------------------------------------------------ the handle */

struct sq_store {
    struct tg_store base; /* first: store.c sees only this */
    char *path;
    sqlite3 *wdb; /* used only by the writer thread once it runs */
    sqlite3 *rdb; /* used only by the caller's thread */
    sqlite3_stmt *w[W__COUNT];
    sqlite3_stmt *r[R__COUNT];
    struct tg_range range; /* the writer's view of the audit log's tree */
    int64_t last_leaf;     /* the index of the leaf this store appended last, or -1 */

    /* checkpoints run on a thread of their own, so no reply waits for one */
    sqlite3 *cdb; /* the checkpointer's connection */
    pthread_t ckpt;
    pthread_mutex_t ckpt_mu; /* guards the three flags below */
    pthread_cond_t ckpt_cv;  /* a checkpoint is wanted, or stop */
    bool ckpt_started;
    bool ckpt_wanted;
    bool ckpt_stop;
    /* the opener's privacy hooks, during sq_open only */
    const struct tg_store_privacy *priv;
};

static inline struct sq_store *sq(struct tg_store *st)
{
    return (struct sq_store *)st;
}

static inline int map_sqlite(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return TG_OK;
    case SQLITE_NOMEM:
        return TG_E_NOMEM;
    case SQLITE_CONSTRAINT:
        return TG_E_CONFLICT;
    case SQLITE_TOOBIG:
        return TG_E_TOOBIG;
    default:
        return TG_E_DB;
    }
}

/* Log a failed database call with SQLite's message and return its tg_err. */
static inline int db_fail(struct sq_store *s, sqlite3 *db, int rc, const char *what)
{
    tg_error("store %s: %s: %s", s->path, what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    return map_sqlite(rc) == TG_OK ? TG_E_DB : map_sqlite(rc);
}

/*
 * Sequential parameter binding that remembers the first failure, so a
 * statement's binds read as a list and are checked once.
 */
struct binder {
    sqlite3_stmt *st;
    int i;
    int rc;
};

static inline void bind_text(struct binder *b, const char *s, size_t n)
{
    if (b->rc == SQLITE_OK)
        b->rc = sqlite3_bind_text64(b->st, ++b->i, s, n, SQLITE_STATIC, SQLITE_UTF8);
}

static inline void bind_str(struct binder *b, const char *s)
{
    bind_text(b, s, strlen(s));
}

static inline void bind_blob(struct binder *b, const void *p, size_t n)
{
    if (b->rc != SQLITE_OK)
        return;
    b->i++;
    if (n == 0)
        b->rc = sqlite3_bind_zeroblob(b->st, b->i, 0);
    else
        b->rc = sqlite3_bind_blob64(b->st, b->i, p, n, SQLITE_STATIC);
}

static inline void bind_i64(struct binder *b, int64_t v)
{
    if (b->rc == SQLITE_OK)
        b->rc = sqlite3_bind_int64(b->st, ++b->i, v);
}

static inline void bind_null(struct binder *b)
{
    if (b->rc == SQLITE_OK)
        b->rc = sqlite3_bind_null(b->st, ++b->i);
}

static inline void col_copy(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    tg_strlcpy(dst, t ? t : "", size);
}

/* A text column, valid until the statement moves on; "" for NULL. */
static inline const char *col_text(sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    return t ? t : "";
}

/* Copy n bytes plus a terminating NUL to *cur and advance it. */
static inline char *pack(char **cur, const void *p, size_t n)
{
    char *d = *cur;
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    *cur = d + n + 1;
    return d;
}

/* ------------------------------------------------------------ across the files */

/* sqlite.c: an open-time failure as a message in err and a tg_err (SQLite's
 * code mapped, never TG_OK). */
int sq_open_fail(struct sq_store *s, sqlite3 *db, int rc, const char *what, char *err,
                 size_t errlen);
/* sqlite.c: run sql, expecting at most one row; its first column's text
 * goes to val (NULL: ignored; "" when there is no row).  A SQLite code. */
int sq_query_text(sqlite3 *db, const char *sql, char *val, size_t size);

/* sqlite_schema.c: bring the schema of the write connection's database to
 * this build's version in one transaction, converting what an older
 * version kept in clear when s->priv is set.  TG_OK, or a tg_err with a
 * message in err; nothing changes on failure. */
int sq_migrate(struct sq_store *s, char *err, size_t errlen);

/*
 * The backend's ops, as store_int.h states them (tg_store_sqlite_ops lists
 * them).  sqlite_writer.c commits the write queue's batches on the write
 * connection; reads (sqlite_reads.c) run on the caller's connection.
 */
int sq_run_batch(struct tg_store *st, struct job *batch);
int sq_dump(struct tg_store *st, int (*cb)(void *ctx, struct job *row), void *ctx);
int sq_conversation_latest(struct tg_store *st, const char *customer_id,
                           struct tg_conversation *out);
int sq_conversation_get(struct tg_store *st, const char *id, struct tg_conversation *out);
int sq_messages(struct tg_store *st, const char *conversation_id, size_t limit, json_t **out);
int sq_blob_get(struct tg_store *st, const char *key, char **data, size_t *len);
int sq_blob_list(struct tg_store *st, const char *prefix, size_t limit, json_t **out);
int sq_turn_get(struct tg_store *st, const char *turn_id, json_t **record);
int sq_review_get(struct tg_store *st, const char *id, struct tg_review_row *row, json_t **task);
int sq_review_list(struct tg_store *st, const char *state, size_t limit, json_t **out);
int sq_review_of_conversation(struct tg_store *st, const char *conversation_id, const char *state,
                              struct tg_review_row *row);
int sq_review_scan(struct tg_store *st, const char *state,
                   int (*cb)(void *ctx, const struct tg_review_row *row), void *ctx);
int sq_review_facts(struct tg_store *st, int64_t since_ms,
                    int (*cb)(void *ctx, const struct tg_review_facts *f), void *ctx);
int sq_handoff_list(struct tg_store *st, const char *review_id, size_t limit,
                    int (*cb)(void *ctx, const struct tg_handoff_msg *m), void *ctx);
int sq_audit_size(struct tg_store *st, uint64_t *n);
int sq_audit_get(struct tg_store *st, uint64_t index, struct tg_audit_row *row);
int sq_audit_scan(struct tg_store *st, uint64_t from,
                  int (*cb)(void *ctx, const struct tg_audit_row *row), void *ctx);

#endif
