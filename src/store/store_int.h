/*
 * store_int.h - what a store backend implements: one function pointer per
 * public call of store.h, gathered in a `const struct tg_store_ops` table.
 *
 * store.c parses the uri, picks the backend and checks every argument before
 * dispatching, so a backend may assume non-NULL pointers and the string
 * arguments store.h requires.  A backend allocates its own handle with
 * `struct tg_store` as its first member and sets `ops`; store.c never looks
 * further inside it.  Writes go through the queue every backend shares
 * (wqueue.h): the backend commits batches of them (run_batch) and answers
 * reads.  A backend is one ops table and one line in store.c's backend
 * list; callers do not change.
 */
#ifndef TG_STORE_INT_H
#define TG_STORE_INT_H

#include "store/store.h"
#include "store/wqueue.h"

struct tg_store_ops {
    const char *kind; /* returned by tg_store_kind() */
    bool shared;      /* other processes may write it too (tg_store_shared) */

    /* target is the backend's part of the uri (for SQLite the path); priv
     * is NULL or the hooks a database holding personal data in clear is
     * converted with (once: the backend remembers it did).  On failure
     * writes a message to err (errlen may be 0) and sets nothing. */
    int (*open)(const char *target, const struct tg_store_privacy *priv, struct tg_store **out,
                char *err, size_t errlen);
    void (*close)(struct tg_store *st);
    /* Commit a batch of queued writes (wqueue.h) in one transaction, on
     * the queue's writer thread: TG_OK or the first error.  Writes reach
     * a backend only this way. */
    int (*run_batch)(struct tg_store *st, struct job *batch);

    int (*blob_get)(struct tg_store *st, const char *key, char **data, size_t *len);
    int (*blob_list)(struct tg_store *st, const char *prefix, size_t limit, json_t **out);

    int (*conversation_latest)(struct tg_store *st, const char *customer_id,
                               struct tg_conversation *out);
    int (*conversation_get)(struct tg_store *st, const char *id, struct tg_conversation *out);
    int (*messages)(struct tg_store *st, const char *conversation_id, size_t limit, json_t **out);
    int (*turn_get)(struct tg_store *st, const char *turn_id, json_t **record);
    /* Tasks as stored, without their threads (store.c reads those). */
    int (*review_get)(struct tg_store *st, const char *id, struct tg_review_row *row,
                      json_t **task);
    int (*review_list)(struct tg_store *st, const char *state, size_t limit, json_t **out);
    int (*review_of_conversation)(struct tg_store *st, const char *conversation_id,
                                  const char *state, struct tg_review_row *row);
    /* Optional (tg_store_copy): every row of every table, each as the write
     * that makes it (a job whose pointers are valid during the call), to
     * cb in an order a copy can write them: blobs, conversations,
     * messages, audit leaves, turns, reviews, hand-off messages.  A
     * non-zero return from cb stops and is returned. */
    int (*dump)(struct tg_store *st, int (*cb)(void *ctx, struct job *row), void *ctx);
    /* Optional, for a shared store (tg_store_lock, tg_store_changes). */
    int (*lock)(struct tg_store *st, const char *key, bool on);
    int (*trylock)(struct tg_store *st, const char *key);
    int (*changes_fd)(struct tg_store *st);
    int (*changes)(struct tg_store *st, void (*cb)(void *ctx, const char *id, const char *state),
                   void *ctx);
    int (*told)(struct tg_store *st, const char *id, char **text);
    int (*review_scan)(struct tg_store *st, const char *state,
                       int (*cb)(void *ctx, const struct tg_review_row *row), void *ctx);
    int (*review_facts)(struct tg_store *st, int64_t since_ms,
                        int (*cb)(void *ctx, const struct tg_review_facts *f), void *ctx);
    /* The latest `limit` messages of a task's thread, oldest first, to cb
     * (valid during the call; non-zero stops and is returned). */
    int (*handoff_list)(struct tg_store *st, const char *review_id, size_t limit,
                        int (*cb)(void *ctx, const struct tg_handoff_msg *m), void *ctx);
    int (*audit_size)(struct tg_store *st, uint64_t *n);
    int (*audit_get)(struct tg_store *st, uint64_t index, struct tg_audit_row *row);
    int (*audit_scan)(struct tg_store *st, uint64_t from,
                      int (*cb)(void *ctx, const struct tg_audit_row *row), void *ctx);
};

/* The part of every backend's handle that store.c knows about.  store.c
 * sets priv and starts the write queue after the backend's open returns,
 * and stops the queue before the backend's close. */
struct tg_store {
    const struct tg_store_ops *ops;
    struct tg_store_privacy priv; /* hooks, or all NULL */
    struct tg_wqueue wq;
};

/*
 * Make a review task private in place: its masked members (store.h) masked
 * with priv's mask, its thread members removed.  With convert, also what
 * older versions kept in clear: started_by pseudonymised.  TG_OK or the
 * hook's error.  For store.c's writes and a backend's conversion.
 */
int tg_store_private_task(const struct tg_store_privacy *priv, json_t *task, bool convert);
/* Mask one JSON string member of obj in place (absent or not a string: nothing). */
int tg_store_private_member(const struct tg_store_privacy *priv, json_t *obj, const char *key);

/* A turn record kept as its audit leaf, read back: its index in the log
 * added as audit_index (an older leaf that carries it keeps its own). */
int tg_store_record_index(json_t *record, int64_t index);

/* A message for a person in err (NULL or errlen 0: none), as snprintf
 * writes it; for store.c's and the backends' open errors. */
void tg_store_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

extern const struct tg_store_ops tg_store_sqlite_ops;
extern const struct tg_store_ops tg_store_postgres_ops;

#endif
