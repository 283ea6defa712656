/*
 * sqlite.c - the embedded store: one SQLite file in WAL mode, written by a
 * thread of its own and read on the caller's thread.
 *
 * Writes reach it through the write queue every backend shares
 * (wqueue.h): the queue's writer thread hands it batches, which it commits
 * on the write connection in one BEGIN IMMEDIATE ... COMMIT each (group
 * commit).  Reads run on a second connection that belongs to the caller's
 * thread; WAL lets them proceed while the writer commits.
 *
 * This file opens and closes the store (connections, statements, the
 * checkpointer thread) and holds its ops table; sqlite_writer.c commits
 * batches, sqlite_reads.c reads, sqlite_schema.c holds the schema's
 * migrations and the conversion of older databases.
 */
#include "store/sqlite_int.h"

/* ------------------------------------------------------------ statements */

const char *const sq_write_sql[W__COUNT] = {
    [W_BEGIN] = "BEGIN IMMEDIATE",
    [W_COMMIT] = "COMMIT",
    [W_ROLLBACK] = "ROLLBACK",
    [W_SAVEPOINT] = "SAVEPOINT act",
    [W_RELEASE] = "RELEASE act",
    [W_ROLLBACK_TO] = "ROLLBACK TO act",
    [W_CONVERSATION] =
        "INSERT INTO conversations (id, customer_id, created_ms, updated_ms, turns,"
        " degraded_streak) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET"
        " customer_id = excluded.customer_id, created_ms = excluded.created_ms,"
        " updated_ms = excluded.updated_ms, turns = excluded.turns,"
        " degraded_streak = excluded.degraded_streak",
    [W_CONV_STEP] =
        "INSERT INTO conversations (id, customer_id, created_ms, updated_ms, turns,"
        " degraded_streak) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET"
        " updated_ms = max(conversations.updated_ms, excluded.updated_ms),"
        " turns = conversations.turns + 1,"
        " degraded_streak = CASE WHEN ?7 = 2 THEN conversations.degraded_streak + 1 ELSE 0 END",
    [W_MESSAGE] = "INSERT INTO messages (conversation_id, turn_id, role, content, ts_ms)"
                  " VALUES (?1, ?2, ?3, ?4, ?5)",
    [W_TURN] = "INSERT INTO turns (id, conversation_id, decision, created_ms, record, audit_idx)"
               " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET"
               " conversation_id = excluded.conversation_id, decision = excluded.decision,"
               " created_ms = excluded.created_ms, record = excluded.record,"
               " audit_idx = excluded.audit_idx",
    [W_REVIEW] = "INSERT INTO reviews (id, turn_id, state, queue, priority, deadline_ms,"
                 " updated_ms, task, conversation_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                 " ON CONFLICT (id) DO UPDATE SET turn_id = excluded.turn_id,"
                 " state = excluded.state, queue = excluded.queue,"
                 " priority = excluded.priority, deadline_ms = excluded.deadline_ms,"
                 " updated_ms = excluded.updated_ms, task = excluded.task,"
                 " conversation_id = excluded.conversation_id",
    [W_AUDIT] = "INSERT INTO audit (idx, data, leaf_hash, root, ts_ms)"
                " VALUES (?1, ?2, ?3, ?4, ?5)",
    [W_AUDIT_HASHES] = "SELECT idx, leaf_hash FROM audit ORDER BY idx",
    [W_BLOB] = "INSERT INTO blobs (key, data, updated_ms) VALUES (?1, ?2, ?3)"
               " ON CONFLICT (key) DO UPDATE SET data = excluded.data,"
               " updated_ms = excluded.updated_ms",
    [W_BLOB_DELETE] = "DELETE FROM blobs WHERE key = ?1",
    [W_HANDOFF] = "INSERT INTO handoff_messages (review_id, turn_id, sender, actor, text, at_ms,"
                  " after_events) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
};

#define CONV_COLS "id, customer_id, created_ms, updated_ms, turns, degraded_streak"
#define AUDIT_COLS "idx, data, leaf_hash, root, ts_ms"
/* what statistics read of a task: tg_review_facts's members in order */
#define FACT_COLS                                                                                  \
    "state, queue, json_extract(task, '$.original_queue'), json_extract(task, '$.created_ms'),"    \
    " deadline_ms, json_extract(task, '$.decision.at'), json_extract(task, '$.decision.actor'),"   \
    " json_extract(task, '$.decision.action'), json_extract(task, '$.kind'), turn_id,"             \
    " (SELECT t.created_ms FROM turns t WHERE t.id = reviews.turn_id)"

static const char *const read_sql[R__COUNT] = {
    [R_CONV_GET] = "SELECT " CONV_COLS " FROM conversations WHERE id = ?1",
    [R_CONV_LATEST] = "SELECT " CONV_COLS " FROM conversations WHERE customer_id = ?1"
                      " ORDER BY updated_ms DESC, id DESC LIMIT 1",
    [R_MESSAGES] = "SELECT role, content, turn_id, ts_ms FROM"
                   " (SELECT seq, role, content, turn_id, ts_ms FROM messages"
                   "  WHERE conversation_id = ?1 ORDER BY seq DESC LIMIT ?2)"
                   " ORDER BY seq",
    /* A record kept as an audit leaf is read from the leaf: written once. */
    [R_TURN_GET] = "SELECT CASE WHEN t.audit_idx IS NULL THEN t.record ELSE a.data END,"
                   " t.audit_idx FROM turns t LEFT JOIN audit a ON a.idx = t.audit_idx"
                   " WHERE t.id = ?1",
    [R_REVIEW_GET] = "SELECT id, turn_id, state, queue, priority, deadline_ms, updated_ms,"
                     " task, conversation_id FROM reviews WHERE id = ?1",
    [R_REVIEW_LIST] = "SELECT task FROM reviews ORDER BY priority DESC, deadline_ms, id LIMIT ?1",
    [R_REVIEW_LIST_STATE] = "SELECT task FROM reviews WHERE state = ?1"
                            " ORDER BY priority DESC, deadline_ms, id LIMIT ?2",
    /* tasks whose work is done: the latest first */
    [R_REVIEW_LIST_DONE] = "SELECT task FROM reviews WHERE state = ?1"
                           " ORDER BY updated_ms DESC, id DESC LIMIT ?2",
    [R_AUDIT_SIZE] = "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit",
    [R_AUDIT_GET] = "SELECT " AUDIT_COLS " FROM audit WHERE idx = ?1",
    [R_AUDIT_SCAN] = "SELECT " AUDIT_COLS " FROM audit WHERE idx >= ?1 ORDER BY idx",
    [R_BLOB_GET] = "SELECT data FROM blobs WHERE key = ?1",
    /* keys from the prefix up to the prefix followed by U+FFFF's first byte */
    [R_BLOB_LIST] = "SELECT data FROM blobs WHERE key >= ?1 AND key < ?1 || x'F4'"
                    " ORDER BY key LIMIT ?2",
    /* key columns only: the task is never read */
    [R_REVIEW_SCAN] = "SELECT id, turn_id, state, queue, priority, deadline_ms, updated_ms,"
                      " conversation_id FROM reviews WHERE state = ?1 ORDER BY deadline_ms, id",
    [R_REVIEW_OF_CONV] = "SELECT id, turn_id, state, queue, priority, deadline_ms, updated_ms,"
                         " conversation_id FROM reviews WHERE conversation_id = ?1 AND state = ?2"
                         " ORDER BY updated_ms DESC, id DESC LIMIT 1",
    [R_HANDOFF_LIST] = "SELECT review_id, turn_id, sender, actor, text, at_ms, after_events FROM"
                       " (SELECT * FROM handoff_messages WHERE review_id = ?1"
                       "  ORDER BY seq DESC LIMIT ?2) ORDER BY seq",
    /* open tasks through the queue index, recent ones through updated_ms */
    [R_REVIEW_FACTS] = "SELECT " FACT_COLS " FROM reviews WHERE state IN ('pending', 'claimed')"
                       " UNION ALL SELECT " FACT_COLS " FROM reviews"
                       " WHERE state IN ('decided', 'handed_off', 'closed', 'expired')"
                       " AND updated_ms >= ?1",
};

/* ------------------------------------------------------------ open / close */

static void stop_checkpointer(struct sq_store *s);

static void sq_free(struct sq_store *s)
{
    stop_checkpointer(s);
    if (s->cdb)
        sqlite3_close(s->cdb);
    for (size_t i = 0; i < TG_ARRAY_LEN(s->w); i++)
        sqlite3_finalize(s->w[i]);
    for (size_t i = 0; i < TG_ARRAY_LEN(s->r); i++)
        sqlite3_finalize(s->r[i]);
    if (s->wdb && sqlite3_close(s->wdb) != SQLITE_OK)
        tg_error("store %s: close: %s", s->path, sqlite3_errmsg(s->wdb));
    if (s->rdb && sqlite3_close(s->rdb) != SQLITE_OK)
        tg_error("store %s: close: %s", s->path, sqlite3_errmsg(s->rdb));
    tg_free(s->path);
    tg_free(s);
}

int sq_open_fail(struct sq_store *s, sqlite3 *db, int rc, const char *what, char *err,
                 size_t errlen)
{
    tg_store_set_err(err, errlen, "sqlite store %s: %s: %s", s->path, what,
                     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    return map_sqlite(rc) == TG_OK ? TG_E_DB : map_sqlite(rc);
}

/* Run a statement expecting at most one row; its first column text goes to val. */
int sq_query_text(sqlite3 *db, const char *sql, char *val, size_t size)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto out;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (val)
            col_copy(val, size, st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        if (val && size)
            val[0] = '\0';
        rc = SQLITE_OK;
    }
out:
    sqlite3_finalize(st);
    return rc;
}

static int open_conn(struct sq_store *s, sqlite3 **out, bool writer, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
    char mode[16];
    int rc = sqlite3_open_v2(s->path, &db, flags, NULL);

    if (rc != SQLITE_OK) {
        rc = sq_open_fail(s, db, rc, "cannot open", err, errlen);
        goto out;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    if (writer) {
        rc = sq_query_text(db, "PRAGMA journal_mode = WAL", mode, sizeof(mode));
        if (rc != SQLITE_OK) {
            rc = sq_open_fail(s, db, rc, "cannot set WAL mode", err, errlen);
            goto out;
        }
        if (!tg_str_eq_nocase(mode, "wal")) {
            tg_store_set_err(err, errlen, "sqlite store %s: journal mode is \"%s\", WAL is needed",
                             s->path, mode);
            rc = TG_E_CONFIG;
            goto out;
        }
        rc = sq_query_text(db, "PRAGMA synchronous = NORMAL", NULL, 0);
        /* freed space is zeroed: a value replaced by its masked form leaves no copy behind */
        if (rc == SQLITE_OK)
            rc = sq_query_text(db, "PRAGMA secure_delete = ON", NULL, 0);
        /* no checkpoint on commit: the checkpointer thread does them (wal_hook_cb) */
    } else {
        rc = sq_query_text(db, "PRAGMA query_only = 1", NULL, 0);
    }
    if (rc != SQLITE_OK) {
        rc = sq_open_fail(s, db, rc, "pragma", err, errlen);
        goto out;
    }
    *out = db;
    db = NULL;
out:
    sqlite3_close(db);
    return rc;
}

static int prepare_all(struct sq_store *s, sqlite3 *db, const char *const *sql, sqlite3_stmt **st,
                       size_t n, char *err, size_t errlen)
{
    int rc = SQLITE_OK;
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
        rc = sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], NULL);
        if (rc != SQLITE_OK)
            rc = sq_open_fail(s, db, rc, "prepare", err, errlen);
    }
    return rc;
}

/* The writer's compact range of the audit tree, from the stored leaf hashes
 * (tg_audit_open checks them against the data). */
static int load_audit_range(struct sq_store *s, char *err, size_t errlen)
{
    sqlite3_stmt *q = s->w[W_AUDIT_HASHES];
    int rc;
    tg_range_init(&s->range);
    s->last_leaf = -1;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if ((uint64_t)sqlite3_column_int64(q, 0) != s->range.size ||
            sqlite3_column_bytes(q, 1) != TG_SHA256_LEN) {
            /* opened all the same, for `audit verify` to say what is wrong;
             * the gateway refuses to start on it (tg_audit_open) */
            tg_warn("store %s: audit leaf %llu is missing or malformed", s->path,
                    (unsigned long long)s->range.size);
            rc = SQLITE_DONE;
            break;
        }
        if (tg_range_push(&s->range, sqlite3_column_blob(q, 1)) != TG_OK) {
            sqlite3_reset(q);
            return TG_E_NOMEM;
        }
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? TG_OK : sq_open_fail(s, s->wdb, rc, "audit size", err, errlen);
}

/*
 * Checkpoints copy the WAL into the database file and sync both: tens of
 * milliseconds that a commit doing them would add to every reply waiting
 * on it.  The writer's WAL hook (which replaces SQLite's autocheckpoint)
 * asks for one once the WAL holds CKPT_PAGES pages; the checkpointer runs
 * it PASSIVE on a connection of its own, beside the writer, which keeps
 * appending meanwhile.
 */
#define CKPT_PAGES 1000

static int wal_hook_cb(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    struct sq_store *s = arg;
    if (pages >= CKPT_PAGES) {
        pthread_mutex_lock(&s->ckpt_mu);
        s->ckpt_wanted = true;
        pthread_cond_signal(&s->ckpt_cv);
        pthread_mutex_unlock(&s->ckpt_mu);
    }
    return SQLITE_OK;
}

static void *checkpointer_main(void *arg)
{
    struct sq_store *s = arg;
    pthread_mutex_lock(&s->ckpt_mu);
    for (;;) {
        while (!s->ckpt_wanted && !s->ckpt_stop)
            pthread_cond_wait(&s->ckpt_cv, &s->ckpt_mu);
        if (s->ckpt_stop)
            break;
        s->ckpt_wanted = false;
        pthread_mutex_unlock(&s->ckpt_mu);
        int rc = sqlite3_wal_checkpoint_v2(s->cdb, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            tg_warn("store %s: checkpoint: %s", s->path, sqlite3_errmsg(s->cdb));
        pthread_mutex_lock(&s->ckpt_mu);
    }
    pthread_mutex_unlock(&s->ckpt_mu);
    return NULL;
}

static int start_checkpointer(struct sq_store *s, char *err, size_t errlen)
{
    int rc = sqlite3_open_v2(s->path, &s->cdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return sq_open_fail(s, s->cdb, rc, "cannot open the checkpointer's connection", err,
                            errlen);
    sqlite3_busy_timeout(s->cdb, BUSY_TIMEOUT_MS);
    rc = pthread_mutex_init(&s->ckpt_mu, NULL);
    if (rc == 0) {
        rc = pthread_cond_init(&s->ckpt_cv, NULL);
        if (rc == 0) {
            rc = pthread_create(&s->ckpt, NULL, checkpointer_main, s);
            if (rc != 0)
                pthread_cond_destroy(&s->ckpt_cv);
        }
        if (rc != 0)
            pthread_mutex_destroy(&s->ckpt_mu);
    }
    if (rc != 0) {
        tg_store_set_err(err, errlen, "sqlite store %s: cannot start the checkpointer: %s", s->path,
                         strerror(rc));
        return TG_E_INTERNAL;
    }
    s->ckpt_started = true;
    sqlite3_wal_hook(s->wdb, wal_hook_cb, s);
    return TG_OK;
}

static int sq_open(const char *path, const struct tg_store_privacy *priv, struct tg_store **out,
                   char *err, size_t errlen)
{
    struct sq_store *s = tg_calloc(1, sizeof(*s));
    int rc = TG_OK;

    if (s)
        s->path = tg_strdup(path);
    if (!s || !s->path) {
        tg_store_set_err(err, errlen, "sqlite store %s: out of memory", path);
        rc = TG_E_NOMEM;
        goto out;
    }
    s->base.ops = &tg_store_sqlite_ops;
    rc = open_conn(s, &s->wdb, true, err, errlen);
    s->priv = priv;
    if (rc == TG_OK)
        rc = sq_migrate(s, err, errlen);
    s->priv = NULL;
    if (rc == TG_OK)
        rc = prepare_all(s, s->wdb, sq_write_sql, s->w, W__COUNT, err, errlen);
    if (rc == TG_OK)
        rc = load_audit_range(s, err, errlen);
    if (rc == TG_OK)
        rc = open_conn(s, &s->rdb, false, err, errlen);
    if (rc == TG_OK)
        rc = prepare_all(s, s->rdb, read_sql, s->r, R__COUNT, err, errlen);
    if (rc == TG_OK)
        rc = start_checkpointer(s, err, errlen);
out:
    if (rc == TG_OK)
        *out = &s->base;
    else if (s)
        sq_free(s);
    return rc;
}

/* The write queue has stopped (store.c): nothing writes any more. */
static void sq_close(struct tg_store *st)
{
    sq_free(sq(st));
}

/* Stop the checkpointer (the queue has stopped: nothing asks for more). */
static void stop_checkpointer(struct sq_store *s)
{
    if (!s->ckpt_started)
        return;
    pthread_mutex_lock(&s->ckpt_mu);
    s->ckpt_stop = true;
    pthread_cond_signal(&s->ckpt_cv);
    pthread_mutex_unlock(&s->ckpt_mu);
    pthread_join(s->ckpt, NULL);
    pthread_cond_destroy(&s->ckpt_cv);
    pthread_mutex_destroy(&s->ckpt_mu);
    s->ckpt_started = false;
}

const struct tg_store_ops tg_store_sqlite_ops = {
    .kind = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .run_batch = sq_run_batch,
    .dump = sq_dump,
    .blob_get = sq_blob_get,
    .blob_list = sq_blob_list,
    .review_of_conversation = sq_review_of_conversation,
    .review_scan = sq_review_scan,
    .review_facts = sq_review_facts,
    .handoff_list = sq_handoff_list,
    .conversation_latest = sq_conversation_latest,
    .conversation_get = sq_conversation_get,
    .messages = sq_messages,
    .turn_get = sq_turn_get,
    .review_get = sq_review_get,
    .review_list = sq_review_list,
    .audit_size = sq_audit_size,
    .audit_get = sq_audit_get,
    .audit_scan = sq_audit_scan,
};
