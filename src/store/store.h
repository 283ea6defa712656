/*
 * store.h - durable state behind one interface: conversations and their
 * messages, turn records, review tasks and audit leaves.
 *
 * Callers never see which database is underneath.  A backend is a
 * `const struct tg_store_ops` table (store_int.h); SQLite (sqlite.c) is the
 * embedded default and PostgreSQL joins later behind the same calls, so both
 * must pass tests/unit/test_store.c, the conformance suite.
 *
 * Threading: a store is used from one thread (the event loop, or the CLI).
 * Writes are copied into a queue and committed in groups by the backend's
 * writer thread, so the caller never waits on disk.  Reads are synchronous
 * and see committed data; call tg_store_flush() first to read your own
 * writes.  A write error is sticky: it is reported by the next
 * tg_store_flush() and by every later write call.
 *
 * Ownership: strings and JSON passed in are copied (JSON by serialising);
 * JSON returned through an out-parameter is a new reference the caller
 * json_decref()s; struct fields returned are owned by the caller's struct.
 *
 * Personal data.  A store opened with privacy hooks (tg_store_open_private)
 * keeps no customer id and no free text a person wrote in clear, whoever
 * writes it: a conversation's customer id is stored as its keyed pseudonym
 * (given in clear to tg_store_conversation_put and _latest, read back as
 * the pseudonym); a review task is stored with its answer, decision.text,
 * decision.reason and conversation[].content masked; hand-off messages are
 * stored masked.  Callers pseudonymise other customer ids themselves
 * (tg_store_pseudonym: a task's started_by) and mask texts the store keeps
 * opaque (tg_store_mask: blobs).  Messages are stored as given: the record
 * stage masks them unless a rule says otherwise.  The first open with
 * hooks of a database an older version wrote converts what it holds
 * (customer ids, task texts, hand-off messages, feedback) once.  Without
 * hooks texts and ids are stored as given, and never converted later.
 */
#ifndef TG_STORE_H
#define TG_STORE_H

#include "core/core.h"

struct tg_store;

#define TG_STORE_KEY_MAX 128

struct tg_conversation {
    char id[TG_ID_MAX];
    char customer_id[TG_STORE_KEY_MAX];
    int64_t created_ms;
    int64_t updated_ms;
    int64_t turns;           /* turns taken in this conversation */
    int64_t degraded_streak; /* consecutive degraded turns, reset by a clean one */
};

struct tg_message {
    char conversation_id[TG_ID_MAX];
    char turn_id[TG_ID_MAX];
    const char *role;    /* "user", "assistant", "system", "tool" */
    const char *content; /* UTF-8 text */
    int64_t ts_ms;
};

struct tg_review_row {
    char id[TG_ID_MAX];
    char turn_id[TG_ID_MAX];
    /* "" on put: taken from the task's conversation_id */
    char conversation_id[TG_ID_MAX];
    char state[24]; /* pending, claimed, decided, expired, handed_off */
    char queue[64];
    int64_t priority; /* larger first */
    int64_t deadline_ms;
    int64_t updated_ms;
};

struct tg_audit_row {
    uint64_t index;
    char *data; /* the leaf's bytes (canonical JSON), tg_malloc'd, owned by the row */
    size_t len;
    uint8_t leaf_hash[TG_SHA256_LEN];
    uint8_t root[TG_SHA256_LEN]; /* tree head after this leaf: MTH(D[0:index+1]) */
    int64_t ts_ms;
};

/*
 * One message of a hand-off's thread: the customer writing to the agent
 * (from "customer", turn_id the turn that carried it) or the agent's reply
 * (from "agent", actor the agent).  Strings are borrowed for the call.
 */
struct tg_handoff_msg {
    char review_id[TG_ID_MAX];
    char turn_id[TG_ID_MAX]; /* "" for an agent's reply */
    const char *from;        /* "customer" or "agent" */
    const char *actor;       /* the agent's name; "customer" */
    const char *text;        /* as written; stored masked */
    int64_t at_ms;
    int64_t after_events; /* the task's events when it was written: its event follows them */
};

/*
 * What a store does to personal data before it reaches the disk (see the
 * top of this file).  pseudonym writes the stored form of a customer id
 * (a keyed pseudonym of its canonical form, NUL-terminated, shorter than
 * TG_STORE_KEY_MAX) to out; mask appends text with every personal
 * identifier masked to out.  Both return TG_OK or an error, are called on
 * the caller's thread (and on the opener's while a database is converted)
 * and must not call the store.  arg is passed to both.
 */
struct tg_store_privacy {
    int (*pseudonym)(void *arg, const char *id, char out[TG_STORE_KEY_MAX]);
    int (*mask)(void *arg, const char *text, size_t len, struct tg_buf *out);
    void *arg;
    void (*release)(void *arg); /* called with arg once the store is closed; may be NULL */
};

/*
 * Open the store named by uri: "sqlite:PATH", or a bare PATH meaning SQLite.
 * Creates the file and schema when missing.  On failure returns an error and
 * writes a message naming the problem to err (errlen bytes).
 */
int tg_store_open(const char *uri, struct tg_store **out, char *err, size_t errlen);
/*
 * The same with privacy hooks (copied; arg must outlive the store).  The
 * first open with hooks of a database an older version wrote converts the
 * personal data it holds, a row at a time in one transaction, before this
 * returns.
 */
int tg_store_open_private(const char *uri, const struct tg_store_privacy *priv,
                          struct tg_store **out, char *err, size_t errlen);
/* The stored form of customer id `id` in out: its pseudonym, or id itself
 * (cut to fit) in a store without hooks.  TG_OK or the hook's error. */
int tg_store_pseudonym(struct tg_store *st, const char *id, char out[TG_STORE_KEY_MAX]);
/* Append text masked as the store keeps free text (as written without
 * hooks) to out.  TG_OK, TG_E_NOMEM or the hook's error. */
int tg_store_mask(struct tg_store *st, const char *text, size_t len, struct tg_buf *out);
/* The uri with a password in it (user:PASSWORD@, password=...) starred
 * out, for messages and banners: a tg_malloc'd string, NULL when out of
 * memory. */
char *tg_store_redact(const char *uri);
/*
 * The directory of this node's own files that live beside the store (its
 * lock, the pseudonym and audit signing keys): the SQLite file's
 * directory, or data_dir for a store on a server.
 */
void tg_store_local_dir(const char *uri, const char *data_dir, char *out, size_t n);
/* Commit everything queued, stop the writer and free the store.  NULL is a no-op. */
void tg_store_close(struct tg_store *st);
/* "sqlite" or "postgres". */
const char *tg_store_kind(const struct tg_store *st);
/*
 * One act's writes in one transaction: what this thread queues from
 * tg_store_hold to tg_store_release is committed together or not at all
 * (a review task and the webhook deliveries it causes, say).  Released
 * with rc other than TG_OK, those writes are dropped unwritten; release
 * returns rc.  The writer waits meanwhile, so keep it short: no flush,
 * ticket wait or blocking call in between.  Holds do not nest.
 */
void tg_store_hold(struct tg_store *st);
int tg_store_release(struct tg_store *st, int rc);
/* Block until every write queued before the call is committed.  Returns the
 * first write error since the store opened, or TG_OK. */
int tg_store_flush(struct tg_store *st);

/*
 * Acknowledgement after commit, without blocking.  tg_store_ticket() names
 * every write queued so far: once tg_store_committed() reaches the ticket,
 * those writes are committed (durable against a crash of the process; the
 * SQLite file in WAL mode), or the store failed and *err says how.  Asking
 * for a ticket also tells the writer someone waits: it commits without a
 * group window.  tg_store_commit_fd() becomes readable after every commit,
 * for an event loop to watch; tg_store_commit_drain() empties it.  Tickets
 * start at 0 (nothing queued); the fd is -1 for a backend whose writes
 * commit before they return (then committed is always the latest ticket).
 */
uint64_t tg_store_ticket(struct tg_store *st);
uint64_t tg_store_committed(struct tg_store *st, int *err);
int tg_store_commit_fd(struct tg_store *st);
void tg_store_commit_drain(struct tg_store *st);

/*
 * Group commit: the writer may wait up to ms milliseconds for more writes
 * before it commits, so one transaction serves many turns.  A flush or a
 * ticket (someone waiting for the commit) ends the wait at once; 0 commits
 * whatever is queued as soon as the writer is free.  Default 0.
 */
void tg_store_set_group_commit(struct tg_store *st, int64_t ms);

/* ------------------------------------------------------------ writes */

/* Insert or replace a conversation by id. */
int tg_store_conversation_put(struct tg_store *st, const struct tg_conversation *c);
/*
 * One more turn of conversation c: inserted as c says when it is new,
 * else counted where it is committed — turns + 1, the degraded streak + 1
 * or back to 0, updated_ms the later of the two — so turns of one customer
 * handled at once (on two nodes of a shared store) are all counted.
 */
int tg_store_conversation_step(struct tg_store *st, const struct tg_conversation *c, bool degraded);
/* Append a message; messages keep their insertion order.  Role and content
 * must be UTF-8 (else TG_E_INVAL: they are read back as JSON strings). */
int tg_store_message_add(struct tg_store *st, const struct tg_message *m);
/* Insert or replace a turn record (any JSON object) with its key columns. */
int tg_store_turn_put(struct tg_store *st, const char *turn_id, const char *conversation_id,
                      const char *decision, int64_t created_ms, const json_t *record);
/* The same with the record already serialised as a JSON object (len bytes),
 * stored byte for byte — the record stage stores its canonical audit leaf. */
int tg_store_turn_put_text(struct tg_store *st, const char *turn_id, const char *conversation_id,
                           const char *decision, int64_t created_ms, const char *record,
                           size_t len);
/* The same when the record is the audit leaf this store appended last
 * (tg_store_audit_append, queued before this call): the record is kept
 * once, in the audit log, and read from there with its audit_index. */
int tg_store_turn_put_leaf(struct tg_store *st, const char *turn_id, const char *conversation_id,
                           const char *decision, int64_t created_ms);
/*
 * Insert or replace a review task: key columns plus the whole task as JSON,
 * its texts masked (see the top of this file).  A task's hand-off thread
 * is not part of it: members customer_messages and agent_replies are left
 * out; tg_store_handoff_add appends to the thread.
 */
int tg_store_review_put(struct tg_store *st, const struct tg_review_row *r, const json_t *task);
/*
 * Append one message to a hand-off's thread: a row of its own, so the
 * cost does not grow with the thread and the task row keeps its size.
 * TG_E_INVAL without a review id, from, actor or text.
 */
int tg_store_handoff_add(struct tg_store *st, const struct tg_handoff_msg *m);
/* Append one audit leaf.  Indexes must arrive in order 0, 1, 2, ...; a
 * duplicate or gap is a write error (TG_E_CONFLICT). */
int tg_store_audit_put(struct tg_store *st, const struct tg_audit_row *row);
/*
 * Append one audit leaf (data, leaf_hash, ts_ms; index and root are not
 * read) at the end of the log: the writer gives it the next index and the
 * tree head after it when it commits, in commit order across every
 * process sharing the store.  *seq (may be NULL) receives the write's
 * sequence number for tg_store_audit_index.
 */
int tg_store_audit_append(struct tg_store *st, const struct tg_audit_row *row, uint64_t *seq);
/* The index the append numbered seq got, once committed; TG_E_NOTFOUND
 * when it is not committed yet or too old to be remembered (the last
 * TG_STORE_AUDIT_REMEMBER appends are). */
#define TG_STORE_AUDIT_REMEMBER 65536
int tg_store_audit_index(struct tg_store *st, uint64_t seq, uint64_t *index);

/*
 * Keyed bytes for state that belongs to no turn: the knowledge-base index,
 * trained models, snapshots.  Put inserts or replaces (data copied);
 * delete removes the key.  Get returns a tg_malloc'd copy (NUL-terminated
 * for convenience, len excludes it) or TG_E_NOTFOUND.
 */
int tg_store_blob_put(struct tg_store *st, const char *key, const void *data, size_t len);
int tg_store_blob_delete(struct tg_store *st, const char *key);

/* ------------------------------------------------------------ reads */

int tg_store_blob_get(struct tg_store *st, const char *key, char **data, size_t *len);
/* The blobs whose keys start with prefix, in key order, at most limit, as a
 * JSON array of the blobs parsed as JSON (blobs that are not JSON are left
 * out).  TG_OK or the store's error. */
int tg_store_blob_list(struct tg_store *st, const char *prefix, size_t limit, json_t **out);

/* The most recently updated conversation of a customer; TG_E_NOTFOUND if none. */
int tg_store_conversation_latest(struct tg_store *st, const char *customer_id,
                                 struct tg_conversation *out);
int tg_store_conversation_get(struct tg_store *st, const char *id, struct tg_conversation *out);
/* The last `limit` messages of a conversation, oldest first, as a JSON array
 * of {"role", "content", "turn_id", "ts_ms"}.  Unknown id gives []. */
int tg_store_messages(struct tg_store *st, const char *conversation_id, size_t limit, json_t **out);
/* A turn record as stored (one kept as its audit leaf with audit_index
 * added); TG_E_NOTFOUND if none. */
int tg_store_turn_get(struct tg_store *st, const char *turn_id, json_t **record);
/*
 * A review task's row and JSON, as readers see it: the hand-off thread is
 * read from its rows and put back in the task's shape (customer_messages
 * [{at, turn_id, text}], agent_replies [{at, actor, text}], each with its
 * event in events).  Either out-parameter may be NULL.
 */
int tg_store_review_get(struct tg_store *st, const char *id, struct tg_review_row *row,
                        json_t **task);
/* The same without the thread: what a writer reads to change the task and
 * put it back, at a cost that does not grow with the thread. */
int tg_store_review_get_bare(struct tg_store *st, const char *id, struct tg_review_row *row,
                             json_t **task);
/*
 * Review tasks in a state (NULL: all), at most limit: open ones (pending,
 * claimed; NULL too) highest priority then earliest deadline first, the
 * others (decided, handed_off, closed, expired) the latest updated first;
 * as a JSON array of task objects.  A task's thread is read as by
 * tg_store_review_get, its latest TG_STORE_LIST_THREAD messages only
 * (tg_store_review_get has them all).
 */
#define TG_STORE_LIST_THREAD 50
int tg_store_review_list(struct tg_store *st, const char *state, size_t limit, json_t **out);
/*
 * Call cb with the key columns of every task in state (no task JSON), by
 * deadline: what timers and maps need at start-up, in memory that does
 * not grow with the tasks.  The row is valid only during the call; a
 * non-zero return from cb stops the scan and is returned.
 */
int tg_store_review_scan(struct tg_store *st, const char *state,
                         int (*cb)(void *ctx, const struct tg_review_row *row), void *ctx);
/* What the statistics need of one task, read without the task JSON
 * being parsed: strings valid only during the callback, "" when absent. */
struct tg_review_facts {
    const char *state, *queue;
    const char *kind;           /* the task's kind: review, human_decision, ... */
    const char *original_queue; /* the queue before a hand-off, or "" */
    int64_t created_ms, deadline_ms;
    int64_t decided_ms; /* 0: not decided */
    const char *actor, *action;
    const char *turn_id; /* the turn the task holds */
    int64_t turn_ms;     /* that turn's created_ms; 0 when its row is missing */
};
/*
 * Call cb with the facts of every open task (pending, claimed) of any
 * age and every task updated at or after since_ms, in no set order; what
 * is held at once is one row, whatever the number of tasks.  A non-zero
 * return from cb stops the scan and is returned.
 */
int tg_store_review_facts(struct tg_store *st, int64_t since_ms,
                          int (*cb)(void *ctx, const struct tg_review_facts *f), void *ctx);
/* The latest updated task of a conversation in state (e.g. handed_off:
 * whether a person has it now), its key columns only; TG_E_NOTFOUND if
 * none. */
int tg_store_review_of_conversation(struct tg_store *st, const char *conversation_id,
                                    const char *state, struct tg_review_row *row);
/* Whether other processes may write the store too (a server several gateway
 * nodes share): what a node remembers of it may then be out of date. */
bool tg_store_shared(const struct tg_store *st);
/*
 * Hold key (a review task's id) against the acts of other processes that
 * share the store, until tg_store_unlock: an act reads, changes and writes
 * its task under the lock, so two nodes never both claim one task or both
 * hand it off.  Waits while another process holds it.  A no-op on a store
 * only this process writes.  TG_OK or the store's error.
 */
int tg_store_lock(struct tg_store *st, const char *key);
/* The same without waiting: TG_E_CONFLICT when another process holds key. */
int tg_store_trylock(struct tg_store *st, const char *key);
void tg_store_unlock(struct tg_store *st, const char *key);
/*
 * What other processes sharing the store changed: a descriptor that
 * becomes readable when they changed a review task (-1: a store nobody
 * else writes), and the changes, each to cb(ctx, task id, its state now).
 * After TG_E_DB (a lost connection, opened again) the descriptor may be
 * another: ask for it again.
 */
int tg_store_changes_fd(struct tg_store *st);
int tg_store_changes(struct tg_store *st, void (*cb)(void *ctx, const char *id, const char *state),
                     void *ctx);
/*
 * Tell the other processes sharing the store text for task id as written
 * (a reviewer's answer, which the store keeps masked), with the writes
 * queued before it: never stored, it reaches their listeners when those
 * writes commit (PostgreSQL's notifications), where tg_store_told gives
 * it.  A no-op on a store only this process writes, and for a text longer
 * than TG_STORE_TELL_MAX bytes (the others read the stored one).
 */
#define TG_STORE_TELL_MAX 7000
int tg_store_tell(struct tg_store *st, const char *id, const char *text);
/* What another process told for task id, as tg_store_changes received it
 * (the latest 64 kept): a tg_malloc'd copy in *text, else TG_E_NOTFOUND.
 * On the thread that calls tg_store_changes. */
int tg_store_told(struct tg_store *st, const char *id, char **text);
/*
 * Copy everything from holds into to, which must hold no audit leaf
 * (TG_E_CONFLICT otherwise): conversations, messages, turns, review tasks
 * and their threads, blobs and the audit log with its indexes and tree
 * heads, so to's log verifies to the same root.  Rows are copied as
 * stored (pseudonyms and masked texts stay so): open to without privacy
 * hooks.  progress (may be NULL) is told each table's rows as they go.
 * TG_OK once to has committed it all.
 */
int tg_store_copy(struct tg_store *from, struct tg_store *to,
                  void (*progress)(void *ctx, const char *table, uint64_t rows), void *ctx);
/* Number of audit leaves committed. */
int tg_store_audit_size(struct tg_store *st, uint64_t *n);
/* One leaf; free row->data with tg_free().  TG_E_NOTFOUND past the end. */
int tg_store_audit_get(struct tg_store *st, uint64_t index, struct tg_audit_row *row);
/*
 * Call cb for every leaf from index `from` in order.  The row (and its data)
 * is valid only during the call.  A non-zero return from cb stops the scan
 * and is returned.
 */
int tg_store_audit_scan(struct tg_store *st, uint64_t from,
                        int (*cb)(void *ctx, const struct tg_audit_row *row), void *ctx);

#endif
