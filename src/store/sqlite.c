/*
 * sqlite.c - the embedded store: one SQLite file in WAL mode, written by a
 * thread of its own and read on the caller's thread.
 *
 * A public write copies its arguments into one allocation (a job) and
 * appends it to a queue under a mutex; it never touches the database.  The
 * writer thread, which owns the write connection, takes every job queued so
 * far and commits them all in one BEGIN IMMEDIATE ... COMMIT (group commit),
 * so a burst of writes costs one commit.  The first failed write is kept as
 * the store's sticky error.  Reads run on a second connection that belongs
 * to the caller's thread; WAL lets them proceed while the writer commits.
 *
 * The queue holds at most QUEUE_MAX_BYTES of jobs.  Past that a write waits
 * for the writer to catch up: memory stays bounded when the disk cannot keep
 * up, at the price of the caller waiting in that (overload) case only.
 *
 * The writer thread never allocates, so tg_mem_fail_after() counts only the
 * caller's allocations and failure-injection tests stay deterministic.
 */
#include "store/store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define BUSY_TIMEOUT_MS 5000
#define QUEUE_MAX_BYTES ((size_t)64 << 20)
#define JOB_MAX_BYTES ((size_t)32 << 20) /* one write larger than this is refused */

/* ------------------------------------------------------------ schema */

struct sq_store;

/*
 * migrations[v] takes a database from schema version v (PRAGMA user_version)
 * to v + 1: SQL, or a C function for what SQL cannot do (run on the write
 * connection inside the migration's transaction).  Append new steps; never
 * edit a released one.
 */
struct migration {
    const char *sql;
    int (*run)(struct sq_store *s);
};

static int move_threads(struct sq_store *s);

/* Each step's SQL is parenthesized: several literals make one statement list. */
static const struct migration migrations[] = {
    {.sql = ("CREATE TABLE IF NOT EXISTS conversations ("
    " id TEXT PRIMARY KEY NOT NULL, customer_id TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " turns INTEGER NOT NULL, degraded_streak INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS conversations_customer"
    " ON conversations (customer_id, updated_ms);"
    "CREATE TABLE IF NOT EXISTS messages ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL,"
    " turn_id TEXT NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,"
    " ts_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS messages_conversation ON messages (conversation_id, seq);"
    "CREATE TABLE IF NOT EXISTS turns ("
    " id TEXT PRIMARY KEY NOT NULL, conversation_id TEXT NOT NULL,"
    " decision TEXT NOT NULL, created_ms INTEGER NOT NULL, record TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS reviews ("
    " id TEXT PRIMARY KEY NOT NULL, turn_id TEXT NOT NULL, state TEXT NOT NULL,"
    " queue TEXT NOT NULL, priority INTEGER NOT NULL, deadline_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL, task TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS reviews_queue ON reviews (state, priority DESC, deadline_ms);"
    "CREATE TABLE IF NOT EXISTS audit ("
    " idx INTEGER PRIMARY KEY, data BLOB NOT NULL, leaf_hash BLOB NOT NULL,"
    " root BLOB NOT NULL, ts_ms INTEGER NOT NULL);")},
    {.sql = ("CREATE TABLE IF NOT EXISTS blobs ("
     " key TEXT PRIMARY KEY NOT NULL, data BLOB NOT NULL, updated_ms INTEGER NOT NULL);")},
    {.sql = "ALTER TABLE turns ADD COLUMN audit_idx INTEGER;"},
    /* A hand-off's thread in rows of its own; the conversation of a task as
     * a column, so start-up maps conversations to hand-offs without reading
     * tasks; the mark of a database whose personal data was converted. */
    {.sql = ("CREATE TABLE handoff_messages ("
             " seq INTEGER PRIMARY KEY AUTOINCREMENT, review_id TEXT NOT NULL,"
             " turn_id TEXT NOT NULL, sender TEXT NOT NULL, actor TEXT NOT NULL,"
             " text TEXT NOT NULL, at_ms INTEGER NOT NULL, after_events INTEGER NOT NULL);"
             "CREATE INDEX handoff_messages_review ON handoff_messages (review_id, seq);"
             "ALTER TABLE reviews ADD COLUMN conversation_id TEXT NOT NULL DEFAULT '';"
             "UPDATE reviews SET conversation_id = COALESCE(CASE WHEN json_valid(task) THEN"
             " json_extract(task, '$.conversation_id') END, '');"
             "CREATE INDEX reviews_state_deadline ON reviews (state, deadline_ms, id);"
             "CREATE TABLE privacy (id INTEGER PRIMARY KEY CHECK (id = 0),"
             " converted_ms INTEGER NOT NULL);")},
    {.run = move_threads},
    {.sql = "CREATE INDEX reviews_state_updated ON reviews (state, updated_ms);"},
};
#define SCHEMA_VERSION ((int)TG_ARRAY_LEN(migrations))

/* ------------------------------------------------------------ statements */

enum wstmt {
    W_BEGIN,
    W_COMMIT,
    W_ROLLBACK,
    W_CONVERSATION,
    W_MESSAGE,
    W_TURN,
    W_REVIEW,
    W_AUDIT,
    W_AUDIT_NEXT,
    W_BLOB,
    W_BLOB_DELETE,
    W_HANDOFF,
    W__COUNT
};

static const char *const write_sql[W__COUNT] = {
    [W_BEGIN] = "BEGIN IMMEDIATE",
    [W_COMMIT] = "COMMIT",
    [W_ROLLBACK] = "ROLLBACK",
    [W_CONVERSATION] =
        "INSERT INTO conversations (id, customer_id, created_ms, updated_ms, turns,"
        " degraded_streak) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET"
        " customer_id = excluded.customer_id, created_ms = excluded.created_ms,"
        " updated_ms = excluded.updated_ms, turns = excluded.turns,"
        " degraded_streak = excluded.degraded_streak",
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
    [W_AUDIT_NEXT] = "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit",
    [W_BLOB] = "INSERT INTO blobs (key, data, updated_ms) VALUES (?1, ?2, ?3)"
               " ON CONFLICT (key) DO UPDATE SET data = excluded.data,"
               " updated_ms = excluded.updated_ms",
    [W_BLOB_DELETE] = "DELETE FROM blobs WHERE key = ?1",
    [W_HANDOFF] = "INSERT INTO handoff_messages (review_id, turn_id, sender, actor, text, at_ms,"
                  " after_events) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
};

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
    R_HANDOFF_LIST,
    R_REVIEW_FACTS,
    R__COUNT
};

#define CONV_COLS "id, customer_id, created_ms, updated_ms, turns, degraded_streak"
#define AUDIT_COLS "idx, data, leaf_hash, root, ts_ms"
/* what statistics read of a task: tg_review_facts's members in order */
#define FACT_COLS                                                                                  \
    "state, queue, json_extract(task, '$.original_queue'), json_extract(task, '$.created_ms'),"   \
    " deadline_ms, json_extract(task, '$.decision.at'), json_extract(task, '$.decision.actor'),"  \
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
    [R_TURN_GET] = "SELECT CASE WHEN t.audit_idx IS NULL THEN t.record ELSE a.data END"
                   " FROM turns t LEFT JOIN audit a ON a.idx = t.audit_idx WHERE t.id = ?1",
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
    [R_HANDOFF_LIST] = "SELECT review_id, turn_id, sender, actor, text, at_ms, after_events FROM"
                       " (SELECT * FROM handoff_messages WHERE review_id = ?1"
                       "  ORDER BY seq DESC LIMIT ?2) ORDER BY seq",
    /* open tasks through the queue index, recent ones through updated_ms */
    [R_REVIEW_FACTS] = "SELECT " FACT_COLS " FROM reviews WHERE state IN ('pending', 'claimed')"
                       " UNION ALL SELECT " FACT_COLS " FROM reviews"
                       " WHERE state IN ('decided', 'handed_off', 'closed', 'expired')"
                       " AND updated_ms >= ?1",
};

/* ------------------------------------------------------------ jobs */

enum job_kind {
    JOB_CONVERSATION,
    JOB_MESSAGE,
    JOB_TURN,
    JOB_REVIEW,
    JOB_AUDIT,
    JOB_BLOB,
    JOB_HANDOFF
};

struct job_blob {
    const char *key;
    const char *data; /* NULL: delete the key */
    size_t len;
    int64_t ts_ms;
};

struct job_turn {
    const char *id;
    const char *conversation_id;
    const char *decision;
    const char *record;
    size_t record_len;
    int64_t created_ms;
    int64_t audit_idx; /* -1: the record is in record */
};

struct job_review {
    struct tg_review_row row;
    const char *task;
    size_t task_len;
};

/* One queued write.  Every pointer inside u points into extra[]. */
struct job {
    struct job *next;
    enum job_kind kind;
    size_t size; /* counted against QUEUE_MAX_BYTES */
    union {
        struct tg_conversation conv;
        struct tg_message msg;
        struct job_turn turn;
        struct job_review review;
        struct tg_audit_row audit;
        struct job_blob blob;
        struct tg_handoff_msg handoff;
    } u;
    char extra[];
};

/* ------------------------------------------------------------ the handle */

struct sq_store {
    struct tg_store base; /* first: store.c sees only this */
    char *path;
    sqlite3 *wdb; /* used only by the writer thread once it runs */
    sqlite3 *rdb; /* used only by the caller's thread */
    sqlite3_stmt *w[W__COUNT];
    sqlite3_stmt *r[R__COUNT];
    int64_t audit_next; /* writer's view of the next audit index */

    bool sync_ready;
    pthread_t writer;
    pthread_mutex_t mu;     /* guards everything below */
    pthread_cond_t work_cv; /* jobs queued or stop requested */
    pthread_cond_t done_cv; /* a batch finished */
    struct job *head, *tail;
    size_t queued_bytes;
    uint64_t enqueued;  /* jobs ever queued */
    uint64_t committed; /* jobs ever finished by the writer */
    int err;            /* first write error, sticky */
    bool stop;
    int64_t group_ns; /* wait this long for more jobs before a commit */
    int flushers;     /* callers blocked in flush: commit at once */
    uint64_t wanted;  /* the highest ticket someone waits for: commit at once */
    /* checkpoints run on a thread of their own, so no reply waits for one */
    sqlite3 *cdb;            /* the checkpointer's connection */
    pthread_t ckpt;
    pthread_cond_t ckpt_cv;  /* a checkpoint is wanted, or stop */
    bool ckpt_started;
    bool ckpt_wanted;
    bool ckpt_stop;
    int commit_fd;    /* eventfd: readable after every commit (-1 before open) */
    /* the opener's privacy hooks, during sq_open only */
    const struct tg_store_privacy *priv;
};

static struct sq_store *sq(struct tg_store *st)
{
    return (struct sq_store *)st;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int map_sqlite(int rc)
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
static int db_fail(struct sq_store *s, sqlite3 *db, int rc, const char *what)
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

static void bind_text(struct binder *b, const char *s, size_t n)
{
    if (b->rc == SQLITE_OK)
        b->rc = sqlite3_bind_text64(b->st, ++b->i, s, n, SQLITE_STATIC, SQLITE_UTF8);
}

static void bind_str(struct binder *b, const char *s)
{
    bind_text(b, s, strlen(s));
}

static void bind_blob(struct binder *b, const void *p, size_t n)
{
    if (b->rc != SQLITE_OK)
        return;
    b->i++;
    if (n == 0)
        b->rc = sqlite3_bind_zeroblob(b->st, b->i, 0);
    else
        b->rc = sqlite3_bind_blob64(b->st, b->i, p, n, SQLITE_STATIC);
}

static void bind_i64(struct binder *b, int64_t v)
{
    if (b->rc == SQLITE_OK)
        b->rc = sqlite3_bind_int64(b->st, ++b->i, v);
}

static void bind_null(struct binder *b)
{
    if (b->rc == SQLITE_OK)
        b->rc = sqlite3_bind_null(b->st, ++b->i);
}

/* size_t limits larger than SQLite's integers mean "no limit" anyway. */
static int64_t clamp_limit(size_t limit)
{
    return limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit;
}

/* ------------------------------------------------------------ writer thread */

/* Run one statement that returns no rows (BEGIN, COMMIT, ...). */
static int exec_stmt(struct sq_store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? TG_OK : db_fail(s, s->wdb, rc, what);
}

/* Bind one job's values to its statement; returns the statement or NULL. */
static sqlite3_stmt *bind_job(struct sq_store *s, const struct job *j, int *bind_rc)
{
    struct binder b = {.rc = SQLITE_OK};

    switch (j->kind) {
    case JOB_CONVERSATION:
        b.st = s->w[W_CONVERSATION];
        bind_str(&b, j->u.conv.id);
        bind_str(&b, j->u.conv.customer_id);
        bind_i64(&b, j->u.conv.created_ms);
        bind_i64(&b, j->u.conv.updated_ms);
        bind_i64(&b, j->u.conv.turns);
        bind_i64(&b, j->u.conv.degraded_streak);
        break;
    case JOB_MESSAGE:
        b.st = s->w[W_MESSAGE];
        bind_str(&b, j->u.msg.conversation_id);
        bind_str(&b, j->u.msg.turn_id);
        bind_str(&b, j->u.msg.role);
        bind_str(&b, j->u.msg.content);
        bind_i64(&b, j->u.msg.ts_ms);
        break;
    case JOB_TURN:
        b.st = s->w[W_TURN];
        bind_str(&b, j->u.turn.id);
        bind_str(&b, j->u.turn.conversation_id);
        bind_str(&b, j->u.turn.decision);
        bind_i64(&b, j->u.turn.created_ms);
        bind_text(&b, j->u.turn.record, j->u.turn.record_len);
        if (j->u.turn.audit_idx >= 0)
            bind_i64(&b, j->u.turn.audit_idx);
        else
            bind_null(&b);
        break;
    case JOB_REVIEW:
        b.st = s->w[W_REVIEW];
        bind_str(&b, j->u.review.row.id);
        bind_str(&b, j->u.review.row.turn_id);
        bind_str(&b, j->u.review.row.state);
        bind_str(&b, j->u.review.row.queue);
        bind_i64(&b, j->u.review.row.priority);
        bind_i64(&b, j->u.review.row.deadline_ms);
        bind_i64(&b, j->u.review.row.updated_ms);
        bind_text(&b, j->u.review.task, j->u.review.task_len);
        bind_str(&b, j->u.review.row.conversation_id);
        break;
    case JOB_HANDOFF:
        b.st = s->w[W_HANDOFF];
        bind_str(&b, j->u.handoff.review_id);
        bind_str(&b, j->u.handoff.turn_id);
        bind_str(&b, j->u.handoff.from);
        bind_str(&b, j->u.handoff.actor);
        bind_str(&b, j->u.handoff.text);
        bind_i64(&b, j->u.handoff.at_ms);
        bind_i64(&b, j->u.handoff.after_events);
        break;
    case JOB_AUDIT:
        b.st = s->w[W_AUDIT];
        bind_i64(&b, (int64_t)j->u.audit.index);
        bind_blob(&b, j->u.audit.data, j->u.audit.len);
        bind_blob(&b, j->u.audit.leaf_hash, TG_SHA256_LEN);
        bind_blob(&b, j->u.audit.root, TG_SHA256_LEN);
        bind_i64(&b, j->u.audit.ts_ms);
        break;
    case JOB_BLOB:
        if (j->u.blob.data) {
            b.st = s->w[W_BLOB];
            bind_str(&b, j->u.blob.key);
            bind_blob(&b, j->u.blob.data, j->u.blob.len);
            bind_i64(&b, j->u.blob.ts_ms);
        } else {
            b.st = s->w[W_BLOB_DELETE];
            bind_str(&b, j->u.blob.key);
        }
        break;
    }
    *bind_rc = b.rc;
    return b.st;
}

static int run_job(struct sq_store *s, const struct job *j)
{
    int rc = TG_OK;
    int src;
    sqlite3_stmt *st;

    if (j->kind == JOB_AUDIT && (int64_t)j->u.audit.index != s->audit_next) {
        tg_error("store %s: audit leaf %llu out of order, expected %lld", s->path,
                 (unsigned long long)j->u.audit.index, (long long)s->audit_next);
        rc = TG_E_CONFLICT;
        goto out;
    }
    st = bind_job(s, j, &src);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = db_fail(s, s->wdb, src, "write");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st); /* the bound text lives in the job, about to be freed */
    if (rc == TG_OK && j->kind == JOB_AUDIT)
        s->audit_next++;
out:
    return rc;
}

/*
 * Commit a batch in one transaction.  A failing job does not stop the
 * others: SQLite undoes just that statement and the rest still commit,
 * unless SQLite had to roll the whole transaction back, which loses the
 * batch.  Returns the first error.
 */
static int run_batch(struct sq_store *s, const struct job *batch)
{
    int64_t audit_next = s->audit_next;
    int rc = exec_stmt(s, s->w[W_BEGIN], "begin");
    if (rc != TG_OK)
        goto out;
    for (const struct job *j = batch; j; j = j->next) {
        int jr = run_job(s, j);
        if (jr != TG_OK && rc == TG_OK)
            rc = jr;
        if (sqlite3_get_autocommit(s->wdb))
            break;
    }
    if (sqlite3_get_autocommit(s->wdb)) {
        tg_error("store %s: transaction rolled back, a batch of writes is lost", s->path);
        s->audit_next = audit_next;
        if (rc == TG_OK)
            rc = TG_E_DB;
        goto out;
    }
    int cr = exec_stmt(s, s->w[W_COMMIT], "commit");
    if (cr != TG_OK) {
        exec_stmt(s, s->w[W_ROLLBACK], "rollback");
        s->audit_next = audit_next;
        if (rc == TG_OK)
            rc = cr;
    }
out:
    return rc;
}

static void free_jobs(struct job *j)
{
    while (j) {
        struct job *next = j->next;
        tg_free(j);
        j = next;
    }
}

/*
 * Let more jobs join the batch: one commit (one WAL sync point, one
 * transaction) then serves every turn of the window.  Replies never wait
 * for it; only durability is later, by at most the window.  Called with
 * the mutex held; a flush or a stop ends the window early.
 */
static void group_window(struct sq_store *s)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    int64_t ns = dl.tv_nsec + s->group_ns;
    dl.tv_sec += (time_t)(ns / 1000000000);
    dl.tv_nsec = (long)(ns % 1000000000);
    while (!s->stop && !s->flushers && s->wanted <= s->committed &&
           s->queued_bytes < QUEUE_MAX_BYTES / 4) {
        if (pthread_cond_timedwait(&s->work_cv, &s->mu, &dl) == ETIMEDOUT)
            break;
    }
}

static void *writer_main(void *arg)
{
    struct sq_store *s = arg;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stop)
            pthread_cond_wait(&s->work_cv, &s->mu);
        if (!s->head)
            break; /* stop requested and nothing left to commit */
        if (s->group_ns > 0 && !s->stop && !s->flushers && s->wanted <= s->committed)
            group_window(s);
        struct job *batch = s->head;
        uint64_t upto = s->enqueued;
        size_t bytes = s->queued_bytes;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->mu);

        int rc = run_batch(s, batch);
        free_jobs(batch);

        pthread_mutex_lock(&s->mu);
        if (rc != TG_OK && s->err == TG_OK)
            s->err = rc;
        s->committed = upto;
        s->queued_bytes -= bytes;
        pthread_cond_broadcast(&s->done_cv);
        if (s->commit_fd >= 0) {
            /* the loop learns of the commit; a full counter already says so */
            uint64_t one = 1;
            ssize_t w = write(s->commit_fd, &one, sizeof(one));
            (void)w;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ------------------------------------------------------------ queueing */

/* A job with room for extra bytes behind it; NULL when too big or out of memory. */
static struct job *job_new(enum job_kind kind, size_t extra, int *rc)
{
    struct job *j = NULL;
    if (extra > JOB_MAX_BYTES) {
        *rc = TG_E_TOOBIG;
        goto out;
    }
    j = tg_malloc(sizeof(*j) + extra);
    if (!j) {
        *rc = TG_E_NOMEM;
        goto out;
    }
    memset(j, 0, sizeof(*j));
    j->kind = kind;
    j->size = sizeof(*j) + extra;
    *rc = TG_OK;
out:
    return j;
}

/* Copy n bytes plus a terminating NUL to *cur and advance it. */
static char *pack(char **cur, const void *p, size_t n)
{
    char *d = *cur;
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    *cur = d + n + 1;
    return d;
}

/* Serialise json compactly to *cur (NUL-terminated) and advance it. */
static char *pack_json(char **cur, const json_t *v, size_t n)
{
    char *d = *cur;
    json_dumpb(v, d, n, JSON_COMPACT);
    d[n] = '\0';
    *cur = d + n + 1;
    return d;
}

static size_t json_size(const json_t *v, int *rc)
{
    size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT);
    *rc = n ? TG_OK : TG_E_INVAL;
    return n;
}

/* Queue a job for the writer, taking ownership of it either way. */
static int enqueue(struct sq_store *s, struct job *j)
{
    int rc;

    pthread_mutex_lock(&s->mu);
    while (s->queued_bytes > QUEUE_MAX_BYTES && s->err == TG_OK)
        pthread_cond_wait(&s->done_cv, &s->mu);
    rc = s->err;
    if (rc == TG_OK) {
        if (s->tail)
            s->tail->next = j;
        else
            s->head = j;
        s->tail = j;
        s->queued_bytes += j->size;
        s->enqueued++;
        /* The writer waits for work only on an empty queue. */
        if (s->head == j)
            pthread_cond_signal(&s->work_cv);
        j = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    tg_free(j);
    return rc;
}

static int sq_conversation_put(struct tg_store *st, const struct tg_conversation *c)
{
    int rc;
    struct job *j = job_new(JOB_CONVERSATION, 0, &rc);
    if (!j)
        return rc;
    j->u.conv = *c;
    return enqueue(sq(st), j);
}

static int sq_message_add(struct tg_store *st, const struct tg_message *m)
{
    int rc;
    size_t rl = strlen(m->role), cl = strlen(m->content);
    struct job *j = job_new(JOB_MESSAGE, rl + cl + 2, &rc);
    if (!j)
        return rc;
    char *cur = j->extra;
    j->u.msg = *m;
    j->u.msg.role = pack(&cur, m->role, rl);
    j->u.msg.content = pack(&cur, m->content, cl);
    return enqueue(sq(st), j);
}

static int sq_turn_put(struct tg_store *st, const char *turn_id, const char *conversation_id,
                       const char *decision, int64_t created_ms, const char *record, size_t rl,
                       int64_t audit_idx)
{
    int rc;
    struct job *j = NULL;
    size_t il = strlen(turn_id), cl = strlen(conversation_id), dl = strlen(decision);
    j = job_new(JOB_TURN, il + cl + dl + rl + 4, &rc);
    if (!j)
        goto out;
    char *cur = j->extra;
    j->u.turn.id = pack(&cur, turn_id, il);
    j->u.turn.conversation_id = pack(&cur, conversation_id, cl);
    j->u.turn.decision = pack(&cur, decision, dl);
    j->u.turn.record = pack(&cur, record, rl);
    j->u.turn.record_len = rl;
    j->u.turn.created_ms = created_ms;
    j->u.turn.audit_idx = audit_idx;
    rc = enqueue(sq(st), j);
out:
    return rc;
}

static int sq_review_put(struct tg_store *st, const struct tg_review_row *r, const json_t *task)
{
    int rc;
    struct job *j = NULL;
    size_t tl = json_size(task, &rc);
    if (rc != TG_OK)
        goto out;
    j = job_new(JOB_REVIEW, tl + 1, &rc);
    if (!j)
        goto out;
    char *cur = j->extra;
    j->u.review.row = *r;
    j->u.review.task = pack_json(&cur, task, tl);
    j->u.review.task_len = tl;
    rc = enqueue(sq(st), j);
out:
    return rc;
}

static int sq_handoff_add(struct tg_store *st, const struct tg_handoff_msg *m)
{
    int rc;
    size_t fl = strlen(m->from), al = strlen(m->actor), tl = strlen(m->text);
    struct job *j = job_new(JOB_HANDOFF, fl + al + tl + 3, &rc);
    if (!j)
        return rc;
    char *cur = j->extra;
    j->u.handoff = *m;
    j->u.handoff.from = pack(&cur, m->from, fl);
    j->u.handoff.actor = pack(&cur, m->actor, al);
    j->u.handoff.text = pack(&cur, m->text, tl);
    return enqueue(sq(st), j);
}

static int sq_audit_put(struct tg_store *st, const struct tg_audit_row *row)
{
    int rc;
    struct job *j = NULL;
    if (row->len > JOB_MAX_BYTES)
        return TG_E_TOOBIG;
    j = job_new(JOB_AUDIT, row->len + 1, &rc);
    if (!j)
        return rc;
    char *cur = j->extra;
    j->u.audit = *row;
    j->u.audit.data = pack(&cur, row->data, row->len);
    return enqueue(sq(st), j);
}

static void sq_set_group_commit(struct tg_store *st, int64_t ms)
{
    struct sq_store *s = sq(st);
    pthread_mutex_lock(&s->mu);
    s->group_ns = ms > 0 ? ms * 1000000 : 0;
    pthread_mutex_unlock(&s->mu);
}

static int sq_blob_put(struct tg_store *st, const char *key, const void *data, size_t len)
{
    int rc;
    size_t kl = strlen(key);
    struct job *j = job_new(JOB_BLOB, kl + (data ? len : 0) + 2, &rc);
    if (!j)
        return rc;
    char *cur = j->extra;
    j->u.blob.key = pack(&cur, key, kl);
    j->u.blob.data = data ? pack(&cur, data, len) : NULL;
    j->u.blob.len = data ? len : 0;
    j->u.blob.ts_ms = tg_clock_wall_ms();
    return enqueue(sq(st), j);
}

static int sq_flush(struct tg_store *st)
{
    struct sq_store *s = sq(st);
    int rc;

    pthread_mutex_lock(&s->mu);
    uint64_t target = s->enqueued;
    s->flushers++;
    pthread_cond_signal(&s->work_cv); /* end a group window now */
    while (s->committed < target)
        pthread_cond_wait(&s->done_cv, &s->mu);
    s->flushers--;
    rc = s->err;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static uint64_t sq_ticket(struct tg_store *st)
{
    struct sq_store *s = sq(st);
    pthread_mutex_lock(&s->mu);
    uint64_t t = s->enqueued;
    if (t > s->wanted) {
        s->wanted = t;
        pthread_cond_signal(&s->work_cv); /* end a group window now */
    }
    pthread_mutex_unlock(&s->mu);
    return t;
}

static uint64_t sq_committed(struct tg_store *st, int *err)
{
    struct sq_store *s = sq(st);
    pthread_mutex_lock(&s->mu);
    uint64_t c = s->committed;
    *err = s->err;
    pthread_mutex_unlock(&s->mu);
    return c;
}

static int sq_commit_fd(struct tg_store *st)
{
    return sq(st)->commit_fd;
}

static void sq_commit_drain(struct tg_store *st)
{
    uint64_t n;
    ssize_t r = read(sq(st)->commit_fd, &n, sizeof(n));
    (void)r;
}

/* ------------------------------------------------------------ reads */

/* TG_OK on a row, TG_E_NOTFOUND when the statement is done, else the error. */
static int read_step(struct sq_store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return TG_OK;
    if (rc == SQLITE_DONE)
        return TG_E_NOTFOUND;
    return db_fail(s, s->rdb, rc, "read");
}

/* The next row of a multi-row read: true with one at hand; false at the
 * end (*rc TG_OK) or on an error (*rc says which). */
static bool next_row(struct sq_store *s, sqlite3_stmt *st, int *rc)
{
    *rc = read_step(s, st);
    if (*rc == TG_E_NOTFOUND)
        *rc = TG_OK;
    else if (*rc == TG_OK)
        return true;
    return false;
}

static void read_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static int bind_fail(struct sq_store *s, const struct binder *b)
{
    return b->rc == SQLITE_OK ? TG_OK : db_fail(s, s->rdb, b->rc, "bind");
}

static void col_copy(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    tg_strlcpy(dst, t ? t : "", size);
}

/* A text column, valid until the statement moves on; "" for NULL. */
static const char *col_text(sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    return t ? t : "";
}

static int col_json_string(json_t *obj, const char *key, sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    json_t *v = json_stringn(t ? t : "", n);
    if (!v || json_object_set_new(obj, key, v) != 0)
        return TG_E_DB; /* not UTF-8, or out of memory */
    return TG_OK;
}

/* Parse a stored JSON text column into a new reference. */
static int col_json(struct sq_store *s, sqlite3_stmt *st, int col, json_t **out)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    json_error_t jerr;
    json_t *v = json_loadb(t ? t : "", n, 0, &jerr);
    if (!v) {
        tg_error("store %s: stored JSON does not parse: %s", s->path, jerr.text);
        return TG_E_DB;
    }
    *out = v;
    return TG_OK;
}

static int read_conversation(struct sq_store *s, sqlite3_stmt *st, const char *key,
                             struct tg_conversation *out)
{
    struct binder b = {.st = st, .rc = SQLITE_OK};
    struct tg_conversation c;
    int rc;

    bind_str(&b, key);
    rc = bind_fail(s, &b);
    if (rc == TG_OK)
        rc = read_step(s, st);
    if (rc != TG_OK)
        goto out;
    memset(&c, 0, sizeof(c));
    col_copy(c.id, sizeof(c.id), st, 0);
    col_copy(c.customer_id, sizeof(c.customer_id), st, 1);
    c.created_ms = sqlite3_column_int64(st, 2);
    c.updated_ms = sqlite3_column_int64(st, 3);
    c.turns = sqlite3_column_int64(st, 4);
    c.degraded_streak = sqlite3_column_int64(st, 5);
    *out = c;
out:
    read_done(st);
    return rc;
}

static int sq_conversation_latest(struct tg_store *st, const char *customer_id,
                                  struct tg_conversation *out)
{
    struct sq_store *s = sq(st);
    return read_conversation(s, s->r[R_CONV_LATEST], customer_id, out);
}

static int sq_conversation_get(struct tg_store *st, const char *id, struct tg_conversation *out)
{
    struct sq_store *s = sq(st);
    return read_conversation(s, s->r[R_CONV_GET], id, out);
}

static int message_json(sqlite3_stmt *st, json_t **out)
{
    json_t *m = json_object();
    int rc = m ? TG_OK : TG_E_NOMEM;
    if (rc == TG_OK)
        rc = col_json_string(m, "role", st, 0);
    if (rc == TG_OK)
        rc = col_json_string(m, "content", st, 1);
    if (rc == TG_OK)
        rc = col_json_string(m, "turn_id", st, 2);
    if (rc == TG_OK &&
        json_object_set_new(m, "ts_ms", json_integer(sqlite3_column_int64(st, 3))) != 0)
        rc = TG_E_NOMEM;
    if (rc == TG_OK)
        *out = m;
    else
        json_decref(m);
    return rc;
}

static int sq_messages(struct tg_store *st, const char *conversation_id, size_t limit, json_t **out)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = s->r[R_MESSAGES];
    struct binder b = {.st = q, .rc = SQLITE_OK};
    json_t *arr = json_array();
    int rc = arr ? TG_OK : TG_E_NOMEM;

    bind_str(&b, conversation_id);
    bind_i64(&b, clamp_limit(limit));
    if (rc == TG_OK)
        rc = bind_fail(s, &b);
    while (rc == TG_OK && next_row(s, q, &rc)) {
        json_t *m = NULL;
        rc = message_json(q, &m);
        if (rc == TG_OK && json_array_append_new(arr, m) != 0)
            rc = TG_E_NOMEM;
    }
    read_done(q);
    if (rc == TG_OK)
        *out = arr;
    else
        json_decref(arr);
    return rc;
}

static int sq_blob_get(struct tg_store *st, const char *key, char **data, size_t *len)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = s->r[R_BLOB_GET];
    struct binder b = {.st = q, .rc = SQLITE_OK};
    int rc;

    bind_str(&b, key);
    rc = bind_fail(s, &b);
    if (rc == TG_OK)
        rc = read_step(s, q);
    if (rc == TG_OK) {
        const void *p = sqlite3_column_blob(q, 0);
        size_t n = (size_t)sqlite3_column_bytes(q, 0);
        char *d = tg_malloc(n + 1);
        if (!d) {
            rc = TG_E_NOMEM;
        } else {
            if (n)
                memcpy(d, p, n);
            d[n] = '\0';
            *data = d;
            *len = n;
        }
    }
    read_done(q);
    return rc;
}

static int sq_blob_list(struct tg_store *st, const char *prefix, size_t limit, json_t **out)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = s->r[R_BLOB_LIST];
    struct binder b = {.st = q, .rc = SQLITE_OK};
    json_t *arr = json_array();
    int rc;

    bind_str(&b, prefix);
    bind_i64(&b, clamp_limit(limit));
    rc = arr ? bind_fail(s, &b) : TG_E_NOMEM;
    while (rc == TG_OK && (rc = read_step(s, q)) == TG_OK) {
        json_t *v = json_loadb(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0), 0,
                               NULL);
        if (v)
            json_array_append_new(arr, v);
    }
    if (rc == TG_E_NOTFOUND)
        rc = TG_OK;
    read_done(q);
    if (rc == TG_OK)
        *out = arr;
    else
        json_decref(arr);
    return rc;
}

static int sq_turn_get(struct tg_store *st, const char *turn_id, json_t **record)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = s->r[R_TURN_GET];
    struct binder b = {.st = q, .rc = SQLITE_OK};
    int rc;

    bind_str(&b, turn_id);
    rc = bind_fail(s, &b);
    if (rc == TG_OK)
        rc = read_step(s, q);
    if (rc == TG_OK)
        rc = col_json(s, q, 0, record);
    read_done(q);
    return rc;
}

static int sq_review_get(struct tg_store *st, const char *id, struct tg_review_row *row,
                         json_t **task)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = s->r[R_REVIEW_GET];
    struct binder b = {.st = q, .rc = SQLITE_OK};
    json_t *t = NULL;
    int rc;

    bind_str(&b, id);
    rc = bind_fail(s, &b);
    if (rc == TG_OK)
        rc = read_step(s, q);
    if (rc == TG_OK && task)
        rc = col_json(s, q, 7, &t);
    if (rc != TG_OK)
        goto out;
    if (row) {
        memset(row, 0, sizeof(*row));
        col_copy(row->id, sizeof(row->id), q, 0);
        col_copy(row->turn_id, sizeof(row->turn_id), q, 1);
        col_copy(row->state, sizeof(row->state), q, 2);
        col_copy(row->queue, sizeof(row->queue), q, 3);
        row->priority = sqlite3_column_int64(q, 4);
        row->deadline_ms = sqlite3_column_int64(q, 5);
        row->updated_ms = sqlite3_column_int64(q, 6);
        col_copy(row->conversation_id, sizeof(row->conversation_id), q, 8);
    }
    if (task)
        *task = t;
out:
    read_done(q);
    return rc;
}

static int sq_review_list(struct tg_store *st, const char *state, size_t limit, json_t **out)
{
    struct sq_store *s = sq(st);
    bool open = state && (!strcmp(state, "pending") || !strcmp(state, "claimed"));
    sqlite3_stmt *q = s->r[!state ? R_REVIEW_LIST : open ? R_REVIEW_LIST_STATE : R_REVIEW_LIST_DONE];
    struct binder b = {.st = q, .rc = SQLITE_OK};
    json_t *arr = json_array();
    int rc = arr ? TG_OK : TG_E_NOMEM;

    if (state)
        bind_str(&b, state);
    bind_i64(&b, clamp_limit(limit));
    if (rc == TG_OK)
        rc = bind_fail(s, &b);
    while (rc == TG_OK && next_row(s, q, &rc)) {
        json_t *t = NULL;
        rc = col_json(s, q, 0, &t);
        if (rc == TG_OK && json_array_append_new(arr, t) != 0)
            rc = TG_E_NOMEM;
    }
    read_done(q);
    if (rc == TG_OK)
        *out = arr;
    else
        json_decref(arr);
    return rc;
}

static int sq_review_scan(struct tg_store *st, const char *state,
                          int (*cb)(void *ctx, const struct tg_review_row *row), void *ctx)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = s->r[R_REVIEW_SCAN];
    struct binder b = {.st = q, .rc = SQLITE_OK};
    int rc;

    if (sqlite3_stmt_busy(q))
        return TG_E_INVAL; /* a scan started from inside a scan's callback */
    bind_str(&b, state);
    rc = bind_fail(s, &b);
    while (rc == TG_OK && next_row(s, q, &rc)) {
        struct tg_review_row row;
        memset(&row, 0, sizeof(row));
        col_copy(row.id, sizeof(row.id), q, 0);
        col_copy(row.turn_id, sizeof(row.turn_id), q, 1);
        col_copy(row.state, sizeof(row.state), q, 2);
        col_copy(row.queue, sizeof(row.queue), q, 3);
        row.priority = sqlite3_column_int64(q, 4);
        row.deadline_ms = sqlite3_column_int64(q, 5);
        row.updated_ms = sqlite3_column_int64(q, 6);
        col_copy(row.conversation_id, sizeof(row.conversation_id), q, 7);
        rc = cb(ctx, &row); /* non-zero stops the scan and is returned as is */
    }
    read_done(q);
    return rc;
}

static int sq_review_facts(struct tg_store *st, int64_t since_ms,
                           int (*cb)(void *ctx, const struct tg_review_facts *f), void *ctx)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = s->r[R_REVIEW_FACTS];
    struct binder b = {.st = q, .rc = SQLITE_OK};
    int rc;

    if (sqlite3_stmt_busy(q))
        return TG_E_INVAL;
    bind_i64(&b, since_ms);
    rc = bind_fail(s, &b);
    while (rc == TG_OK && next_row(s, q, &rc)) {
        const struct tg_review_facts f = {
            .state = col_text(q, 0),
            .queue = col_text(q, 1),
            .original_queue = col_text(q, 2),
            .created_ms = sqlite3_column_int64(q, 3),
            .deadline_ms = sqlite3_column_int64(q, 4),
            .decided_ms = sqlite3_column_int64(q, 5),
            .actor = col_text(q, 6),
            .action = col_text(q, 7),
            .kind = col_text(q, 8),
            .turn_id = col_text(q, 9),
            .turn_ms = sqlite3_column_int64(q, 10),
        };
        rc = cb(ctx, &f);
    }
    read_done(q);
    return rc;
}

static int sq_handoff_list(struct tg_store *st, const char *review_id, size_t limit,
                           int (*cb)(void *ctx, const struct tg_handoff_msg *m), void *ctx)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = s->r[R_HANDOFF_LIST];
    struct binder b = {.st = q, .rc = SQLITE_OK};
    int rc;

    if (sqlite3_stmt_busy(q))
        return TG_E_INVAL;
    bind_str(&b, review_id);
    bind_i64(&b, clamp_limit(limit));
    rc = bind_fail(s, &b);
    while (rc == TG_OK && next_row(s, q, &rc)) {
        struct tg_handoff_msg m;
        memset(&m, 0, sizeof(m));
        col_copy(m.review_id, sizeof(m.review_id), q, 0);
        col_copy(m.turn_id, sizeof(m.turn_id), q, 1);
        m.from = col_text(q, 2);
        m.actor = col_text(q, 3);
        m.text = col_text(q, 4);
        m.at_ms = sqlite3_column_int64(q, 5);
        m.after_events = sqlite3_column_int64(q, 6);
        rc = cb(ctx, &m);
    }
    read_done(q);
    return rc;
}

static int sq_audit_size(struct tg_store *st, uint64_t *n)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = s->r[R_AUDIT_SIZE];
    int rc = read_step(s, q);
    if (rc == TG_OK)
        *n = (uint64_t)sqlite3_column_int64(q, 0);
    else if (rc == TG_E_NOTFOUND)
        rc = TG_E_DB; /* an aggregate always yields a row */
    read_done(q);
    return rc;
}

/*
 * Fill row from the current audit result row.  With copy the data is a new
 * NUL-terminated tg_malloc'd string; without, it points into SQLite's
 * memory, valid until the statement moves on.
 */
static int audit_row(struct sq_store *s, sqlite3_stmt *q, bool copy, struct tg_audit_row *row)
{
    struct tg_audit_row r;
    const void *data = sqlite3_column_blob(q, 1);
    size_t len = (size_t)sqlite3_column_bytes(q, 1);
    const void *leaf = sqlite3_column_blob(q, 2);
    int leaf_len = sqlite3_column_bytes(q, 2);
    const void *root = sqlite3_column_blob(q, 3);
    int root_len = sqlite3_column_bytes(q, 3);
    int rc = TG_OK;

    if (leaf_len != TG_SHA256_LEN || root_len != TG_SHA256_LEN) {
        tg_error("store %s: audit leaf %lld has a malformed hash", s->path,
                 (long long)sqlite3_column_int64(q, 0));
        rc = TG_E_DB;
        goto out;
    }
    memset(&r, 0, sizeof(r));
    r.index = (uint64_t)sqlite3_column_int64(q, 0);
    r.len = len;
    memcpy(r.leaf_hash, leaf, TG_SHA256_LEN);
    memcpy(r.root, root, TG_SHA256_LEN);
    r.ts_ms = sqlite3_column_int64(q, 4);
    if (copy) {
        r.data = tg_malloc(len + 1);
        if (!r.data) {
            rc = TG_E_NOMEM;
            goto out;
        }
        char *cur = r.data;
        pack(&cur, data, len);
    } else {
        r.data = len ? (char *)data : (char *)"";
    }
    *row = r;
out:
    return rc;
}

static int sq_audit_get(struct tg_store *st, uint64_t index, struct tg_audit_row *row)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = s->r[R_AUDIT_GET];
    struct binder b = {.st = q, .rc = SQLITE_OK};
    int rc;

    if (index > (uint64_t)INT64_MAX)
        return TG_E_NOTFOUND;
    bind_i64(&b, (int64_t)index);
    rc = bind_fail(s, &b);
    if (rc == TG_OK)
        rc = read_step(s, q);
    if (rc == TG_OK)
        rc = audit_row(s, q, true, row);
    read_done(q);
    return rc;
}

static int sq_audit_scan(struct tg_store *st, uint64_t from,
                         int (*cb)(void *ctx, const struct tg_audit_row *row), void *ctx)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = s->r[R_AUDIT_SCAN];
    struct binder b = {.st = q, .rc = SQLITE_OK};
    int rc;

    if (from > (uint64_t)INT64_MAX)
        return TG_OK;
    if (sqlite3_stmt_busy(q))
        return TG_E_INVAL; /* a scan started from inside a scan's callback */
    bind_i64(&b, (int64_t)from);
    rc = bind_fail(s, &b);
    while (rc == TG_OK && next_row(s, q, &rc)) {
        struct tg_audit_row row;
        rc = audit_row(s, q, false, &row);
        if (rc == TG_OK)
            rc = cb(ctx, &row); /* non-zero stops the scan and is returned as is */
    }
    read_done(q);
    return rc;
}

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
    if (s->sync_ready) {
        pthread_cond_destroy(&s->done_cv);
        pthread_cond_destroy(&s->work_cv);
        pthread_mutex_destroy(&s->mu);
    }
    free_jobs(s->head);
    if (s->commit_fd >= 0)
        close(s->commit_fd);
    tg_free(s->path);
    tg_free(s);
}

static int open_fail(struct sq_store *s, sqlite3 *db, int rc, const char *what, char *err,
                     size_t errlen)
{
    set_err(err, errlen, "sqlite store %s: %s: %s", s->path, what,
            db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    return map_sqlite(rc) == TG_OK ? TG_E_DB : map_sqlite(rc);
}

/* Run a statement expecting at most one row; its first column text goes to val. */
static int query_text(sqlite3 *db, const char *sql, char *val, size_t size)
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
        rc = open_fail(s, db, rc, "cannot open", err, errlen);
        goto out;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    if (writer) {
        rc = query_text(db, "PRAGMA journal_mode = WAL", mode, sizeof(mode));
        if (rc != SQLITE_OK) {
            rc = open_fail(s, db, rc, "cannot set WAL mode", err, errlen);
            goto out;
        }
        if (!tg_str_eq_nocase(mode, "wal")) {
            set_err(err, errlen, "sqlite store %s: journal mode is \"%s\", WAL is needed", s->path,
                    mode);
            rc = TG_E_CONFIG;
            goto out;
        }
        rc = query_text(db, "PRAGMA synchronous = NORMAL", NULL, 0);
        /* freed space is zeroed: a value replaced by its masked form leaves no copy behind */
        if (rc == SQLITE_OK)
            rc = query_text(db, "PRAGMA secure_delete = ON", NULL, 0);
        /* no checkpoint on commit: the checkpointer thread does them (wal_hook_cb) */
    } else {
        rc = query_text(db, "PRAGMA query_only = 1", NULL, 0);
    }
    if (rc != SQLITE_OK) {
        rc = open_fail(s, db, rc, "pragma", err, errlen);
        goto out;
    }
    *out = db;
    db = NULL;
out:
    sqlite3_close(db);
    return rc;
}

/* ------------------------------------------------------------ conversions */

#define CONVERT_BATCH 256

/*
 * What a conversion does to one value: append the new value to out and
 * set *changed, or leave it unchanged.  ctx is the conversion's own.
 */
struct rewrite {
    const char *table, *col;
    const char *where; /* more of the WHERE clause ("AND ..."), or "" */
    bool blob;         /* the column holds a BLOB, not TEXT */
    int (*fn)(struct sq_store *s, void *ctx, const char *in, size_t len, struct tg_buf *out,
              bool *changed);
    void *ctx;
};

static int wprep(struct sq_store *s, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(s->wdb, sql, -1, st, NULL);
    return rc == SQLITE_OK ? TG_OK : db_fail(s, s->wdb, rc, "prepare a conversion");
}

/* Convert one row's value (read by rowid, written back when changed). */
static int rewrite_one(struct sq_store *s, const struct rewrite *w, sqlite3_stmt *get,
                       sqlite3_stmt *set, int64_t rowid)
{
    struct tg_buf out;
    struct binder b = {.st = get, .rc = SQLITE_OK};
    bool changed = false;
    int rc, src;
    tg_buf_init(&out, TG_BUF_UNLIMITED);
    bind_i64(&b, rowid);
    src = b.rc == SQLITE_OK ? sqlite3_step(get) : b.rc;
    if (src == SQLITE_DONE) {
        rc = TG_OK; /* gone meanwhile */
        goto out;
    }
    if (src != SQLITE_ROW) {
        rc = db_fail(s, s->wdb, src, "read for a conversion");
        goto out;
    }
    const char *in =
        w->blob ? sqlite3_column_blob(get, 0) : (const char *)sqlite3_column_text(get, 0);
    size_t len = (size_t)sqlite3_column_bytes(get, 0);
    rc = w->fn(s, w->ctx, in ? in : "", len, &out, &changed);
    if (rc != TG_OK || !changed)
        goto out;
    sqlite3_reset(get);
    struct binder u = {.st = set, .rc = SQLITE_OK};
    if (w->blob)
        bind_blob(&u, out.data, out.len);
    else
        bind_text(&u, out.data ? out.data : "", out.len);
    bind_i64(&u, rowid);
    src = u.rc == SQLITE_OK ? sqlite3_step(set) : u.rc;
    rc = src == SQLITE_DONE ? TG_OK : db_fail(s, s->wdb, src, "write a conversion");
out:
    sqlite3_reset(get);
    sqlite3_clear_bindings(get);
    sqlite3_reset(set);
    sqlite3_clear_bindings(set);
    tg_buf_free(&out);
    return rc;
}

/*
 * Rewrite one column of every row (matching w->where) a row at a time:
 * rowids are read in batches and each value is read, converted and written
 * back on its own, so memory holds one value whatever the table's size.
 */
static int rewrite_column(struct sq_store *s, const struct rewrite *w)
{
    char sql[3][512];
    sqlite3_stmt *ids = NULL, *get = NULL, *set = NULL;
    int64_t batch[CONVERT_BATCH], last = 0;
    size_t n;
    int rc;
    snprintf(sql[0], sizeof(sql[0]),
             "SELECT rowid FROM %s WHERE rowid > ?1 %s ORDER BY rowid LIMIT %d", w->table, w->where,
             CONVERT_BATCH);
    snprintf(sql[1], sizeof(sql[1]), "SELECT %s FROM %s WHERE rowid = ?1", w->col, w->table);
    snprintf(sql[2], sizeof(sql[2]), "UPDATE %s SET %s = ?1 WHERE rowid = ?2", w->table, w->col);
    rc = wprep(s, sql[0], &ids);
    if (rc == TG_OK)
        rc = wprep(s, sql[1], &get);
    if (rc == TG_OK)
        rc = wprep(s, sql[2], &set);
    do {
        n = 0;
        if (rc == TG_OK && sqlite3_bind_int64(ids, 1, last) != SQLITE_OK)
            rc = db_fail(s, s->wdb, SQLITE_ERROR, "bind a conversion");
        while (rc == TG_OK) {
            int src = sqlite3_step(ids);
            if (src == SQLITE_DONE)
                break;
            if (src != SQLITE_ROW) {
                rc = db_fail(s, s->wdb, src, "list rows for a conversion");
                break;
            }
            batch[n++] = sqlite3_column_int64(ids, 0);
        }
        sqlite3_reset(ids);
        for (size_t i = 0; i < n && rc == TG_OK; i++)
            rc = rewrite_one(s, w, get, set, batch[i]);
        if (n)
            last = batch[n - 1];
    } while (rc == TG_OK && n == CONVERT_BATCH);
    sqlite3_finalize(ids);
    sqlite3_finalize(get);
    sqlite3_finalize(set);
    return rc;
}

/* Parse a stored JSON object for a conversion; NULL (and no change) when it is not one. */
static json_t *parse_object(const char *in, size_t len)
{
    json_t *v = json_loadb(in, len, 0, NULL);
    if (v && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

static int dump_to(const json_t *v, struct tg_buf *out, bool *changed)
{
    char *d = json_dumps(v, JSON_COMPACT);
    int rc = d ? tg_buf_puts(out, d) : TG_E_NOMEM;
    free(d);
    *changed = rc == TG_OK;
    return rc;
}

/* One message of an old task's thread as a row; after: the events kept before it. */
static int thread_row(sqlite3_stmt *ins, const char *review_id, const json_t *m, bool customer,
                      size_t after)
{
    struct binder b = {.st = ins, .rc = SQLITE_OK};
    int rc;
    bind_str(&b, review_id);
    bind_str(&b, customer ? tg_json_str(m, "turn_id", "") : "");
    bind_str(&b, customer ? "customer" : "agent");
    bind_str(&b, customer ? "customer" : tg_json_str(m, "actor", ""));
    bind_str(&b, tg_json_str(m, "text", ""));
    bind_i64(&b, tg_json_int(m, "at", 0));
    bind_i64(&b, (int64_t)after);
    rc = b.rc == SQLITE_OK ? sqlite3_step(ins) : b.rc;
    sqlite3_reset(ins);
    sqlite3_clear_bindings(ins);
    return rc == SQLITE_DONE ? TG_OK : TG_E_DB;
}

/*
 * An old task whose thread (customer_messages, agent_replies and their
 * events) lived inside it: the messages become rows, in the order of
 * their events, each remembering how many other events came before it.
 */
static int thread_fn(struct sq_store *s, void *ctx, const char *in, size_t len, struct tg_buf *out,
                     bool *changed)
{
    sqlite3_stmt *ins = ctx;
    json_t *task = parse_object(in, len), *kept = json_array();
    const json_t *cm = json_object_get(task, "customer_messages");
    const json_t *ar = json_object_get(task, "agent_replies");
    const char *id = tg_json_str(task, "id", "");
    size_t ci = 0, ai = 0, i;
    json_t *e;
    int rc = kept ? TG_OK : TG_E_NOMEM;
    if (!task || rc)
        goto out;
    json_array_foreach(json_object_get(task, "events"), i, e)
    {
        const char *ev = tg_json_str(e, "event", "");
        bool c = !strcmp(ev, "customer_message") && ci < json_array_size(cm);
        bool a = !strcmp(ev, "agent_reply") && ai < json_array_size(ar);
        if (rc == TG_OK && (c || a))
            rc = thread_row(ins, id, c ? json_array_get(cm, ci++) : json_array_get(ar, ai++), c,
                            json_array_size(kept));
        else if (json_array_append(kept, e))
            rc = TG_E_NOMEM;
    }
    for (; rc == TG_OK && ci < json_array_size(cm); ci++)
        rc = thread_row(ins, id, json_array_get(cm, ci), true, json_array_size(kept));
    for (; rc == TG_OK && ai < json_array_size(ar); ai++)
        rc = thread_row(ins, id, json_array_get(ar, ai), false, json_array_size(kept));
    if (rc == TG_OK && json_object_get(task, "events") && json_object_set(task, "events", kept))
        rc = TG_E_NOMEM;
    json_object_del(task, "customer_messages");
    json_object_del(task, "agent_replies");
    if (rc == TG_OK)
        rc = dump_to(task, out, changed);
    if (rc)
        db_fail(s, s->wdb, SQLITE_ERROR, "move a hand-off thread to rows");
out:
    json_decref(task);
    json_decref(kept);
    return rc;
}

static int move_threads(struct sq_store *s)
{
    sqlite3_stmt *ins = NULL;
    struct rewrite w = {
        .table = "reviews",
        .col = "task",
        .where = "AND (instr(task, '\"customer_messages\"') OR instr(task, '\"agent_replies\"'))",
        .fn = thread_fn,
    };
    int rc = wprep(s, write_sql[W_HANDOFF], &ins);
    w.ctx = ins;
    if (rc == TG_OK)
        rc = rewrite_column(s, &w);
    sqlite3_finalize(ins);
    return rc;
}

static int pseudonym_fn(struct sq_store *s, void *ctx, const char *in, size_t len,
                        struct tg_buf *out, bool *changed)
{
    char ps[TG_STORE_KEY_MAX];
    (void)ctx;
    if (!len)
        return TG_OK;
    int rc = s->priv->pseudonym(s->priv->arg, in, ps);
    if (rc == TG_OK)
        rc = tg_buf_puts(out, ps);
    *changed = rc == TG_OK;
    return rc;
}

static int mask_fn(struct sq_store *s, void *ctx, const char *in, size_t len, struct tg_buf *out,
                   bool *changed)
{
    (void)ctx;
    int rc = s->priv->mask(s->priv->arg, in, len, out);
    *changed = rc == TG_OK && (out->len != len || memcmp(out->data ? out->data : "", in, len));
    return rc;
}

static int task_fn(struct sq_store *s, void *ctx, const char *in, size_t len, struct tg_buf *out,
                   bool *changed)
{
    (void)ctx;
    json_t *task = parse_object(in, len);
    int rc = task ? tg_store_private_task(s->priv, task, true) : TG_OK;
    if (task && rc == TG_OK)
        rc = dump_to(task, out, changed);
    json_decref(task);
    return rc;
}

/* Feedback: what the customer wrote besides the rating. */
static int feedback_fn(struct sq_store *s, void *ctx, const char *in, size_t len,
                       struct tg_buf *out, bool *changed)
{
    (void)ctx;
    json_t *fb = parse_object(in, len);
    int rc = fb ? tg_store_private_member(s->priv, fb, "correct_answer") : TG_OK;
    if (fb && rc == TG_OK)
        rc = tg_store_private_member(s->priv, fb, "comment");
    if (fb && rc == TG_OK)
        rc = dump_to(fb, out, changed);
    json_decref(fb);
    return rc;
}

/* Has this database's personal data been converted (or was it written private)? */
static int converted(struct sq_store *s, bool *yes)
{
    char buf[32];
    int rc = query_text(s->wdb, "SELECT COUNT(*) FROM privacy", buf, sizeof(buf));
    *yes = rc == SQLITE_OK && strcmp(buf, "0") != 0;
    return rc == SQLITE_OK ? TG_OK : db_fail(s, s->wdb, rc, "privacy mark");
}

/*
 * Convert what an older version kept in clear: customer ids to pseudonyms,
 * texts masked.  Runs once, on the first open with hooks of a database an
 * older version wrote, inside the migration's transaction, and leaves its
 * mark (a database created by this version has the mark from the start).
 */
static int convert_private(struct sq_store *s)
{
    const struct rewrite steps[] = {
        {.table = "conversations", .col = "customer_id", .where = "", .fn = pseudonym_fn},
        {.table = "reviews", .col = "task", .where = "", .fn = task_fn},
        {.table = "handoff_messages", .col = "text", .where = "", .fn = mask_fn},
        {.table = "blobs",
         .col = "data",
         .where = "AND key >= 'feedback/' AND key < 'feedback0'",
         .blob = true,
         .fn = feedback_fn},
    };
    char mark[96];
    int rc = TG_OK;
    for (size_t i = 0; i < TG_ARRAY_LEN(steps) && rc == TG_OK; i++)
        rc = rewrite_column(s, &steps[i]);
    snprintf(mark, sizeof(mark), "INSERT INTO privacy (id, converted_ms) VALUES (0, %lld)",
             (long long)tg_clock_wall_ms());
    if (rc == TG_OK) {
        int src = sqlite3_exec(s->wdb, mark, NULL, NULL, NULL);
        if (src != SQLITE_OK)
            rc = db_fail(s, s->wdb, src, "privacy mark");
    }
    return rc;
}

/* Bring the schema to SCHEMA_VERSION inside one write transaction. */
static int migrate(struct sq_store *s, char *err, size_t errlen)
{
    bool done = true;
    char buf[32];
    int64_t version = 0;
    int rc = sqlite3_exec(s->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL);

    if (rc != SQLITE_OK) {
        rc = open_fail(s, s->wdb, rc, "cannot begin", err, errlen);
        goto out;
    }
    rc = query_text(s->wdb, "PRAGMA user_version", buf, sizeof(buf));
    if (rc != SQLITE_OK || tg_parse_i64(buf, &version) != TG_OK) {
        rc = open_fail(s, s->wdb, rc ? rc : SQLITE_CORRUPT, "schema version", err, errlen);
        goto rollback;
    }
    if (version > SCHEMA_VERSION) {
        set_err(err, errlen, "sqlite store %s: schema version %lld is newer than this build's %d",
                s->path, (long long)version, SCHEMA_VERSION);
        rc = TG_E_CONFIG;
        goto rollback;
    }
    for (int64_t v = version; v < SCHEMA_VERSION; v++) {
        char pragma[48];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %lld", (long long)v + 1);
        if (migrations[v].sql) {
            rc = sqlite3_exec(s->wdb, migrations[v].sql, NULL, NULL, NULL);
        } else if (migrations[v].run(s) != TG_OK) {
            set_err(err, errlen, "sqlite store %s: schema migration %lld failed", s->path,
                    (long long)v + 1);
            rc = TG_E_DB;
            goto rollback;
        }
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->wdb, pragma, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            rc = open_fail(s, s->wdb, rc, "schema migration", err, errlen);
            goto rollback;
        }
    }
    /* a new database holds nothing an older version wrote: nothing to convert */
    if (version == 0)
        rc = sqlite3_exec(s->wdb, "INSERT INTO privacy (id, converted_ms) VALUES (0, 0)", NULL,
                          NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = open_fail(s, s->wdb, rc, "privacy mark", err, errlen);
        goto rollback;
    }
    if (s->priv && converted(s, &done) == TG_OK && !done && convert_private(s) != TG_OK) {
        set_err(err, errlen, "sqlite store %s: cannot convert the personal data it holds", s->path);
        rc = TG_E_DB;
        goto rollback;
    }
    rc = sqlite3_exec(s->wdb, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = open_fail(s, s->wdb, rc, "schema commit", err, errlen);
        goto rollback;
    }
    /* the pages that held the clear values leave the WAL and the file now */
    if (!done)
        sqlite3_wal_checkpoint_v2(s->wdb, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    goto out;
rollback:
    sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
out:
    return rc;
}

static int prepare_all(struct sq_store *s, sqlite3 *db, const char *const *sql, sqlite3_stmt **st,
                       size_t n, char *err, size_t errlen)
{
    int rc = SQLITE_OK;
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
        rc = sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], NULL);
        if (rc != SQLITE_OK)
            rc = open_fail(s, db, rc, "prepare", err, errlen);
    }
    return rc;
}

static int load_audit_next(struct sq_store *s, char *err, size_t errlen)
{
    sqlite3_stmt *q = s->w[W_AUDIT_NEXT];
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        s->audit_next = sqlite3_column_int64(q, 0);
        rc = SQLITE_OK;
    } else {
        rc = open_fail(s, s->wdb, rc, "audit size", err, errlen);
    }
    sqlite3_reset(q);
    return rc;
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
        pthread_mutex_lock(&s->mu);
        s->ckpt_wanted = true;
        pthread_cond_signal(&s->ckpt_cv);
        pthread_mutex_unlock(&s->mu);
    }
    return SQLITE_OK;
}

static void *checkpointer_main(void *arg)
{
    struct sq_store *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->ckpt_wanted && !s->ckpt_stop)
            pthread_cond_wait(&s->ckpt_cv, &s->mu);
        if (s->ckpt_stop)
            break;
        s->ckpt_wanted = false;
        pthread_mutex_unlock(&s->mu);
        int rc = sqlite3_wal_checkpoint_v2(s->cdb, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            tg_warn("store %s: checkpoint: %s", s->path, sqlite3_errmsg(s->cdb));
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static int start_checkpointer(struct sq_store *s, char *err, size_t errlen)
{
    int rc = sqlite3_open_v2(s->path, &s->cdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return open_fail(s, s->cdb, rc, "cannot open the checkpointer's connection", err, errlen);
    sqlite3_busy_timeout(s->cdb, BUSY_TIMEOUT_MS);
    rc = pthread_cond_init(&s->ckpt_cv, NULL);
    if (rc == 0) {
        rc = pthread_create(&s->ckpt, NULL, checkpointer_main, s);
        if (rc != 0)
            pthread_cond_destroy(&s->ckpt_cv);
    }
    if (rc != 0) {
        set_err(err, errlen, "sqlite store %s: cannot start the checkpointer: %s", s->path,
                strerror(rc));
        return TG_E_INTERNAL;
    }
    s->ckpt_started = true;
    sqlite3_wal_hook(s->wdb, wal_hook_cb, s);
    return TG_OK;
}

static int start_writer(struct sq_store *s, char *err, size_t errlen)
{
    int rc = pthread_mutex_init(&s->mu, NULL);
    if (rc == 0) {
        rc = pthread_cond_init(&s->work_cv, NULL);
        if (rc == 0) {
            rc = pthread_cond_init(&s->done_cv, NULL);
            if (rc != 0)
                pthread_cond_destroy(&s->work_cv);
        }
        if (rc != 0)
            pthread_mutex_destroy(&s->mu);
    }
    if (rc == 0) {
        s->sync_ready = true;
        rc = pthread_create(&s->writer, NULL, writer_main, s);
    }
    if (rc != 0) {
        set_err(err, errlen, "sqlite store %s: cannot start the writer thread: %s", s->path,
                strerror(rc));
        return TG_E_INTERNAL;
    }
    return TG_OK;
}

static void sq_close(struct tg_store *st);

static int sq_open(const char *path, const struct tg_store_privacy *priv, struct tg_store **out,
                   char *err, size_t errlen)
{
    struct sq_store *s = tg_calloc(1, sizeof(*s));
    int rc = TG_OK;

    if (s) {
        s->commit_fd = -1;
        s->path = tg_strdup(path);
    }
    if (!s || !s->path) {
        set_err(err, errlen, "sqlite store %s: out of memory", path);
        rc = TG_E_NOMEM;
        goto out;
    }
    s->base.ops = &tg_store_sqlite_ops;
    s->commit_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->commit_fd < 0) {
        set_err(err, errlen, "sqlite store %s: eventfd: %s", path, strerror(errno));
        rc = TG_E_IO;
        goto out;
    }
    rc = open_conn(s, &s->wdb, true, err, errlen);
    s->priv = priv;
    if (rc == TG_OK)
        rc = migrate(s, err, errlen);
    s->priv = NULL;
    if (rc == TG_OK)
        rc = prepare_all(s, s->wdb, write_sql, s->w, W__COUNT, err, errlen);
    if (rc == TG_OK)
        rc = load_audit_next(s, err, errlen);
    if (rc == TG_OK)
        rc = open_conn(s, &s->rdb, false, err, errlen);
    if (rc == TG_OK)
        rc = prepare_all(s, s->rdb, read_sql, s->r, R__COUNT, err, errlen);
    if (rc == TG_OK)
        rc = start_writer(s, err, errlen);
    if (rc == TG_OK && (rc = start_checkpointer(s, err, errlen)) != TG_OK) {
        sq_close(&s->base); /* stops the writer and frees the store */
        return rc;
    }
out:
    if (rc == TG_OK)
        *out = &s->base;
    else if (s)
        sq_free(s);
    return rc;
}

static void sq_close(struct tg_store *st)
{
    struct sq_store *s = sq(st);

    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->writer, NULL);
    if (s->err != TG_OK)
        tg_warn("store %s: closed after a write error (%s)", s->path, tg_err_name(s->err));
    sq_free(s);
}

/* Stop the checkpointer (the writer has stopped: nothing asks for more). */
static void stop_checkpointer(struct sq_store *s)
{
    if (!s->ckpt_started)
        return;
    pthread_mutex_lock(&s->mu);
    s->ckpt_stop = true;
    pthread_cond_signal(&s->ckpt_cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->ckpt, NULL);
    pthread_cond_destroy(&s->ckpt_cv);
    s->ckpt_started = false;
}

const struct tg_store_ops tg_store_sqlite_ops = {
    .kind = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .flush = sq_flush,
    .ticket = sq_ticket,
    .committed = sq_committed,
    .commit_fd = sq_commit_fd,
    .commit_drain = sq_commit_drain,
    .conversation_put = sq_conversation_put,
    .message_add = sq_message_add,
    .turn_put = sq_turn_put,
    .set_group_commit = sq_set_group_commit,
    .blob_put = sq_blob_put,
    .blob_get = sq_blob_get,
    .blob_list = sq_blob_list,
    .review_put = sq_review_put,
    .handoff_add = sq_handoff_add,
    .review_scan = sq_review_scan,
    .review_facts = sq_review_facts,
    .handoff_list = sq_handoff_list,
    .audit_put = sq_audit_put,
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
