/*
 * postgres.c - the store on a PostgreSQL server, through libpq: what
 * several gateway nodes share.
 *
 * Two connections per store, as for SQLite: the write queue's writer
 * thread (wqueue.c) commits batches on one, in one transaction each; the
 * caller's thread reads on the other.  Every statement is prepared once
 * per connection; a lost connection is opened again (and its statements
 * prepared again) before the next statement, never inside a transaction.
 * The schema is brought to this build's version at open, under an
 * advisory lock so nodes starting together migrate once.
 *
 * This file opens and closes the store, holds the schema and the
 * statements and commits batches; postgres_reads.c reads.
 */
#include "store/postgres_int.h"

#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------ schema */

/*
 * migrations[v] takes a database from schema version v to v + 1, the same
 * steps as SQLite's where the two share a table (sqlite_schema.c).  Append
 * new steps; never edit a released one.  Keys compare byte by byte
 * (COLLATE "C") whatever the database's locale, as in SQLite.
 */
static const char *const migrations[] = {
    "CREATE TABLE conversations ("
    " id TEXT COLLATE \"C\" PRIMARY KEY, customer_id TEXT COLLATE \"C\" NOT NULL,"
    " created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL,"
    " turns BIGINT NOT NULL, degraded_streak BIGINT NOT NULL);"
    "CREATE INDEX conversations_customer ON conversations (customer_id, updated_ms);"
    "CREATE TABLE messages ("
    " seq BIGSERIAL PRIMARY KEY, conversation_id TEXT COLLATE \"C\" NOT NULL,"
    " turn_id TEXT NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL, ts_ms BIGINT NOT NULL);"
    "CREATE INDEX messages_conversation ON messages (conversation_id, seq);"
    "CREATE TABLE turns ("
    " id TEXT COLLATE \"C\" PRIMARY KEY, conversation_id TEXT NOT NULL,"
    " decision TEXT NOT NULL, created_ms BIGINT NOT NULL, record TEXT NOT NULL,"
    " audit_idx BIGINT);"
    "CREATE TABLE reviews ("
    " id TEXT COLLATE \"C\" PRIMARY KEY, turn_id TEXT NOT NULL, state TEXT NOT NULL,"
    " queue TEXT NOT NULL, priority BIGINT NOT NULL, deadline_ms BIGINT NOT NULL,"
    " updated_ms BIGINT NOT NULL, task TEXT NOT NULL,"
    " conversation_id TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX reviews_queue ON reviews (state, priority DESC, deadline_ms);"
    "CREATE INDEX reviews_state_deadline ON reviews (state, deadline_ms, id);"
    "CREATE INDEX reviews_state_updated ON reviews (state, updated_ms);"
    "CREATE TABLE handoff_messages ("
    " seq BIGSERIAL PRIMARY KEY, review_id TEXT COLLATE \"C\" NOT NULL,"
    " turn_id TEXT NOT NULL, sender TEXT NOT NULL, actor TEXT NOT NULL,"
    " text TEXT NOT NULL, at_ms BIGINT NOT NULL, after_events BIGINT NOT NULL);"
    "CREATE INDEX handoff_messages_review ON handoff_messages (review_id, seq);"
    "CREATE TABLE audit ("
    " idx BIGINT PRIMARY KEY CHECK (idx >= 0), data BYTEA NOT NULL,"
    " leaf_hash BYTEA NOT NULL, root BYTEA NOT NULL, ts_ms BIGINT NOT NULL);"
    "CREATE TABLE blobs ("
    " key TEXT COLLATE \"C\" PRIMARY KEY, data BYTEA NOT NULL, updated_ms BIGINT NOT NULL);"
    /* the compact range of the audit tree (range.h): whoever appends locks it */
    "CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 0), range BYTEA NOT NULL);"
    "INSERT INTO audit_head VALUES (0, '\\x0000000000000000');",
    "CREATE INDEX reviews_conversation ON reviews (conversation_id, state, updated_ms);",
    /* every committed change of a task, told to the nodes listening */
    "CREATE FUNCTION tg_review_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN PERFORM pg_notify('tg_reviews', NEW.id || ' ' || NEW.state); RETURN NULL; END $$;"
    "CREATE TRIGGER reviews_changed AFTER INSERT OR UPDATE ON reviews"
    " FOR EACH ROW EXECUTE FUNCTION tg_review_changed();",
};
#define SCHEMA_VERSION ((int)TG_ARRAY_LEN(migrations))

/* The advisory lock nodes take while they migrate: "tgschema" in ASCII. */
#define MIGRATION_LOCK "7453415410450989421"

/* ------------------------------------------------------------ statements */

#define CONV_COLS "id, customer_id, created_ms, updated_ms, turns, degraded_streak"
#define REVIEW_KEYS "id, turn_id, state, queue, priority, deadline_ms, updated_ms"
#define AUDIT_COLS "idx, data, leaf_hash, root, ts_ms"
/* A number inside the task (0 when absent or not a number), and a text. */
#define J_INT(path)                                                                                \
    "COALESCE(CASE WHEN jsonb_typeof(t.j #> '{" path "}') = 'number'"                              \
    " THEN trunc((t.j #>> '{" path "}')::numeric)::bigint END, 0)"
#define J_TXT(path) "COALESCE(t.j #>> '{" path "}', '')"

static const char *const stmt_sql[P__COUNT] = {
    [P_CONVERSATION] = "INSERT INTO conversations (" CONV_COLS ") VALUES ($1, $2, $3, $4, $5, $6)"
                       " ON CONFLICT (id) DO UPDATE SET customer_id = EXCLUDED.customer_id,"
                       " created_ms = EXCLUDED.created_ms, updated_ms = EXCLUDED.updated_ms,"
                       " turns = EXCLUDED.turns, degraded_streak = EXCLUDED.degraded_streak",
    [P_CONV_STEP] = "INSERT INTO conversations (" CONV_COLS ") VALUES ($1, $2, $3, $4, $5, $6)"
                    " ON CONFLICT (id) DO UPDATE SET"
                    " updated_ms = GREATEST(conversations.updated_ms, EXCLUDED.updated_ms),"
                    " turns = conversations.turns + 1, degraded_streak = CASE WHEN $7::int = 2"
                    " THEN conversations.degraded_streak + 1 ELSE 0 END",
    [P_MESSAGE] = "INSERT INTO messages (conversation_id, turn_id, role, content, ts_ms)"
                  " VALUES ($1, $2, $3, $4, $5)",
    [P_TURN] = "INSERT INTO turns (id, conversation_id, decision, created_ms, record, audit_idx)"
               " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET"
               " conversation_id = EXCLUDED.conversation_id, decision = EXCLUDED.decision,"
               " created_ms = EXCLUDED.created_ms, record = EXCLUDED.record,"
               " audit_idx = EXCLUDED.audit_idx",
    [P_REVIEW] = "INSERT INTO reviews (" REVIEW_KEYS ", task, conversation_id)"
                 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO UPDATE SET"
                 " turn_id = EXCLUDED.turn_id, state = EXCLUDED.state, queue = EXCLUDED.queue,"
                 " priority = EXCLUDED.priority, deadline_ms = EXCLUDED.deadline_ms,"
                 " updated_ms = EXCLUDED.updated_ms, task = EXCLUDED.task,"
                 " conversation_id = EXCLUDED.conversation_id",
    [P_AUDIT] = "INSERT INTO audit (" AUDIT_COLS ") VALUES ($1, $2, $3, $4, $5)",
    [P_BLOB] = "INSERT INTO blobs (key, data, updated_ms) VALUES ($1, $2, $3)"
               " ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data,"
               " updated_ms = EXCLUDED.updated_ms",
    [P_BLOB_DELETE] = "DELETE FROM blobs WHERE key = $1",
    [P_HANDOFF] = "INSERT INTO handoff_messages (review_id, turn_id, sender, actor, text, at_ms,"
                  " after_events) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    /* delivered to the listeners when the transaction commits, never stored */
    [P_TELL] = "SELECT pg_notify('tg_answers', $1)",
    [P_HEAD_LOCK] = "SELECT range FROM audit_head WHERE id = 0 FOR UPDATE",
    [P_HEAD_SET] = "UPDATE audit_head SET range = $1 WHERE id = 0",

    [P_CONV_GET] = "SELECT " CONV_COLS " FROM conversations WHERE id = $1",
    [P_CONV_LATEST] = "SELECT " CONV_COLS " FROM conversations WHERE customer_id = $1"
                      " ORDER BY updated_ms DESC, id DESC LIMIT 1",
    [P_MESSAGES] = "SELECT role, content, turn_id, ts_ms FROM"
                   " (SELECT seq, role, content, turn_id, ts_ms FROM messages"
                   "  WHERE conversation_id = $1 ORDER BY seq DESC LIMIT $2) m ORDER BY seq",
    /* A record kept as an audit leaf is read from the leaf: written once. */
    [P_TURN_GET] = "SELECT CASE WHEN t.audit_idx IS NULL THEN t.record"
                   " ELSE convert_from(a.data, 'UTF8') END, t.audit_idx"
                   " FROM turns t LEFT JOIN audit a ON a.idx = t.audit_idx WHERE t.id = $1",
    [P_REVIEW_GET] = "SELECT " REVIEW_KEYS ", task, conversation_id FROM reviews WHERE id = $1",
    [P_REVIEW_LIST] = "SELECT task FROM reviews ORDER BY priority DESC, deadline_ms, id LIMIT $1",
    [P_REVIEW_LIST_STATE] = "SELECT task FROM reviews WHERE state = $1"
                            " ORDER BY priority DESC, deadline_ms, id LIMIT $2",
    [P_REVIEW_LIST_DONE] = "SELECT task FROM reviews WHERE state = $1"
                           " ORDER BY updated_ms DESC, id DESC LIMIT $2",
    [P_AUDIT_SIZE] = "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit",
    [P_AUDIT_GET] = "SELECT " AUDIT_COLS " FROM audit WHERE idx = $1",
    [P_AUDIT_PAGE] = "SELECT " AUDIT_COLS " FROM audit WHERE idx >= $1 ORDER BY idx LIMIT $2",
    [P_BLOB_GET] = "SELECT data FROM blobs WHERE key = $1",
    [P_BLOB_LIST] = "SELECT data FROM blobs WHERE key >= $1 AND starts_with(key, $1)"
                    " ORDER BY key LIMIT $2",
    /* key columns only, a page at a time after (deadline, id) */
    [P_REVIEW_PAGE] = "SELECT " REVIEW_KEYS ", conversation_id FROM reviews"
                      " WHERE state = $1 AND (deadline_ms, id) > ($2, $3)"
                      " ORDER BY deadline_ms, id LIMIT $4",
    [P_REVIEW_OF_CONV] = "SELECT " REVIEW_KEYS ", conversation_id FROM reviews"
                         " WHERE conversation_id = $1 AND state = $2"
                         " ORDER BY updated_ms DESC, id DESC LIMIT 1",
    [P_HANDOFF_LIST] = "SELECT review_id, turn_id, sender, actor, text, at_ms, after_events FROM"
                       " (SELECT * FROM handoff_messages WHERE review_id = $1"
                       "  ORDER BY seq DESC LIMIT $2) h ORDER BY seq",
    /* tg_review_facts's members in order after the id, a page at a time */
    /* clang-format off */
    [P_FACTS_PAGE] =
        "SELECT r.id, r.state, r.queue, " J_TXT("original_queue") ", " J_INT("created_ms") ","
        " r.deadline_ms, " J_INT("decision,at") ", " J_TXT("decision,actor") ","
        " " J_TXT("decision,action") ", " J_TXT("kind") ", r.turn_id,"
        " COALESCE((SELECT x.created_ms FROM turns x WHERE x.id = r.turn_id), 0)"
        " FROM reviews r CROSS JOIN LATERAL (SELECT r.task::jsonb AS j) t"
        " WHERE r.id > $2 AND (r.state IN ('pending', 'claimed') OR"
        " (r.state IN ('decided', 'handed_off', 'closed', 'expired') AND r.updated_ms >= $1))"
        " ORDER BY r.id LIMIT $3",
    /* clang-format on */
    [P_LOCK] = "SELECT pg_advisory_lock(hashtextextended($1, 0))",
    [P_TRYLOCK] = "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
    [P_UNLOCK] = "SELECT pg_advisory_unlock(hashtextextended($1, 0))",
};

static void stmt_name(enum pg_stmt k, char *out, size_t n)
{
    snprintf(out, n, "tg_%d", (int)k);
}

/* ------------------------------------------------------------ errors */

/* libpq's message on one line, without its trailing newline. */
static const char *one_line(const char *msg, char *buf, size_t n)
{
    tg_strlcpy(buf, msg ? msg : "", n);
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = (p[1] ? ' ' : '\0');
    return buf;
}

static int map_sqlstate(const char *state)
{
    if (!state)
        return TG_E_DB;
    if (!strncmp(state, "23", 2))
        return TG_E_CONFLICT; /* integrity constraint violation */
    if (!strcmp(state, "53200"))
        return TG_E_NOMEM;
    if (!strcmp(state, "54000"))
        return TG_E_TOOBIG;
    return TG_E_DB;
}

/* Log a failed statement with the server's message; its tg_err. */
static int stmt_fail(struct pg_store *s, PGconn *c, const PGresult *res, const char *what)
{
    char buf[512];
    const char *msg = res ? PQresultErrorMessage(res) : "";
    if (!msg[0])
        msg = PQerrorMessage(c);
    tg_error("store %s: %s: %s", s->name, what, one_line(msg, buf, sizeof(buf)));
    return res ? map_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE)) : TG_E_DB;
}

/* Run sql (no parameters, any number of statements) expecting no rows. */
static int exec_sql(struct pg_store *s, PGconn *c, const char *sql, const char *what)
{
    PGresult *res = PQexec(c, sql);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK
                 ? TG_OK
                 : stmt_fail(s, c, res, what);
    PQclear(res);
    return rc;
}

/* ------------------------------------------------------------ connections */

/* Prepare the statements a connection runs: the writes on the writer's,
 * the reads on the reader's. */
static int prepare(struct pg_store *s, PGconn *c, bool writer)
{
    int rc = TG_OK;
    char name[16];
    for (int k = writer ? 0 : P_FIRST_READ; k < (writer ? P_FIRST_READ : P__COUNT) && !rc; k++) {
        stmt_name((enum pg_stmt)k, name, sizeof(name));
        PGresult *res = PQprepare(c, name, stmt_sql[k], 0, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = stmt_fail(s, c, res, "prepare");
        PQclear(res);
    }
    return rc;
}

/* The server's notices (NOTICE: relation exists, skipping) are for the log's debug level. */
static void on_notice(void *arg, const char *msg)
{
    char buf[512];
    tg_debug("store %s: %s", ((struct pg_store *)arg)->name, one_line(msg, buf, sizeof(buf)));
}

static PGconn *connect_db(struct pg_store *s)
{
    PGconn *c;
    /* Later keywords override what the uri (expanded from dbname) says. */
    bool timeout = strstr(s->uri, "connect_timeout") != NULL;
    const char *const keys[] = {"dbname", "client_encoding", "application_name",
                                timeout ? NULL : "connect_timeout", NULL};
    const char *const vals[] = {s->uri, "UTF8", "trustgate", "10", NULL};
    c = PQconnectdbParams(keys, vals, 1);
    if (c)
        PQsetNoticeProcessor(c, on_notice, s);
    return c;
}

/* Connect *c again after it was lost (or for the first time). */
static int reconnect(struct pg_store *s, PGconn **c)
{
    bool writer = c == &s->w;
    char buf[512];
    if (*c)
        PQfinish(*c);
    *c = connect_db(s);
    if (!*c)
        return TG_E_NOMEM;
    if (PQstatus(*c) != CONNECTION_OK) {
        tg_error("store %s: cannot connect: %s", s->name,
                 one_line(PQerrorMessage(*c), buf, sizeof(buf)));
        return TG_E_DB;
    }
    tg_warn("store %s: connected again after a lost connection", s->name);
    if (writer)
        __atomic_store_n(&s->writer_pid, PQbackendPID(*c), __ATOMIC_RELAXED);
    return prepare(s, *c, writer);
}

PGresult *pg_run(struct pg_store *s, enum pg_stmt k, const struct pg_params *p, int rfmt, int *rc)
{
    char name[16];
    PGresult *res;
    stmt_name(k, name, sizeof(name));
    for (int tries = 0; tries < 2; tries++) {
        if (PQstatus(s->r) != CONNECTION_OK && (*rc = reconnect(s, &s->r)) != TG_OK)
            return NULL;
        res = PQexecPrepared(s->r, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                             p ? p->fmt : NULL, rfmt);
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            *rc = TG_OK;
            return res;
        }
        if (PQstatus(s->r) == CONNECTION_OK)
            break; /* the statement failed, not the connection */
        PQclear(res);
        res = NULL;
    }
    *rc = stmt_fail(s, s->r, res, "read");
    PQclear(res);
    return NULL;
}

/* ------------------------------------------------------------ writes */

/* One job's statement and parameters. */
static enum pg_stmt job_params(const struct job *j, struct pg_params *p)
{
    switch (j->kind) {
    case JOB_CONVERSATION:
        par_text(p, j->u.conv.id);
        par_text(p, j->u.conv.customer_id);
        par_i64(p, j->u.conv.created_ms);
        par_i64(p, j->u.conv.updated_ms);
        par_i64(p, j->u.conv.turns);
        par_i64(p, j->u.conv.degraded_streak);
        if (!j->step)
            return P_CONVERSATION;
        par_i64(p, j->step);
        return P_CONV_STEP;
    case JOB_MESSAGE:
        par_text(p, j->u.msg.conversation_id);
        par_text(p, j->u.msg.turn_id);
        par_text(p, j->u.msg.role);
        par_text(p, j->u.msg.content);
        par_i64(p, j->u.msg.ts_ms);
        return P_MESSAGE;
    case JOB_TURN:
        par_text(p, j->u.turn.id);
        par_text(p, j->u.turn.conversation_id);
        par_text(p, j->u.turn.decision);
        par_i64(p, j->u.turn.created_ms);
        par_text(p, j->u.turn.record);
        if (j->u.turn.audit_idx >= 0)
            par_i64(p, j->u.turn.audit_idx);
        else
            par_null(p); /* WQ_LAST_LEAF: run_job binds it */
        return P_TURN;
    case JOB_REVIEW:
        par_text(p, j->u.review.row.id);
        par_text(p, j->u.review.row.turn_id);
        par_text(p, j->u.review.row.state);
        par_text(p, j->u.review.row.queue);
        par_i64(p, j->u.review.row.priority);
        par_i64(p, j->u.review.row.deadline_ms);
        par_i64(p, j->u.review.row.updated_ms);
        par_text(p, j->u.review.task);
        par_text(p, j->u.review.row.conversation_id);
        return P_REVIEW;
    case JOB_HANDOFF:
        par_text(p, j->u.handoff.review_id);
        par_text(p, j->u.handoff.turn_id);
        par_text(p, j->u.handoff.from);
        par_text(p, j->u.handoff.actor);
        par_text(p, j->u.handoff.text);
        par_i64(p, j->u.handoff.at_ms);
        par_i64(p, j->u.handoff.after_events);
        return P_HANDOFF;
    case JOB_AUDIT:
        par_i64(p, (int64_t)j->u.audit.index);
        par_bytes(p, j->u.audit.data, j->u.audit.len);
        par_bytes(p, j->u.audit.leaf_hash, TG_SHA256_LEN);
        par_bytes(p, j->u.audit.root, TG_SHA256_LEN);
        par_i64(p, j->u.audit.ts_ms);
        return P_AUDIT;
    case JOB_BLOB:
        par_text(p, j->u.blob.key);
        if (!j->u.blob.data)
            return P_BLOB_DELETE;
        par_bytes(p, j->u.blob.data, j->u.blob.len);
        par_i64(p, j->u.blob.ts_ms);
        return P_BLOB;
    case JOB_TELL:
        par_text(p, j->u.blob.data);
        return P_TELL;
    }
    return P__COUNT;
}

/*
 * A batch's statements go to the server in pipeline mode (libpq 14+):
 * sent without waiting, their results read after a sync, so a batch costs
 * one or two round trips instead of one per statement.  At most
 * PIPE_MAX statements go before a sync, so neither side's buffers fill.
 */
#define PIPE_MAX 256

/* A leaf, or a turn whose record is the leaf before it: numbered under the head's lock. */
static bool is_leaf(const struct job *j)
{
    return j->kind == JOB_AUDIT || (j->kind == JOB_TURN && j->u.turn.audit_idx == WQ_LAST_LEAF);
}

static int send_fail(struct pg_store *s, const char *what)
{
    char buf[512];
    tg_error("store %s: %s: %s", s->name, what, one_line(PQerrorMessage(s->w), buf, sizeof(buf)));
    return TG_E_DB;
}

static int send_stmt(struct pg_store *s, enum pg_stmt k, const struct pg_params *p, int rfmt)
{
    char name[16];
    stmt_name(k, name, sizeof(name));
    /* libpq copies the parameters into its buffer before this returns */
    return PQsendQueryPrepared(s->w, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                               p ? p->fmt : NULL, rfmt)
               ? TG_OK
               : send_fail(s, "send");
}

static int send_sql(struct pg_store *s, const char *sql)
{
    return PQsendQueryParams(s->w, sql, 0, NULL, NULL, NULL, NULL, 0) ? TG_OK
                                                                      : send_fail(s, "send");
}

/* Send one job; a leaf gets its index and head from s->range first. */
static int send_job(struct pg_store *s, struct job *j)
{
    struct pg_params p = {.n = 0};
    struct tg_range next;
    int rc;
    if (j->kind == JOB_AUDIT) {
        if ((rc = tg_wq_number_leaf(s->name, j, &s->range, &next)) != TG_OK)
            return rc;
        tg_range_copy(&s->range, &next); /* a failed transaction reads the head again */
        s->last_leaf = (int64_t)j->u.audit.index;
    }
    enum pg_stmt k = job_params(j, &p);
    if (j->kind == JOB_TURN && j->u.turn.audit_idx == WQ_LAST_LEAF) {
        if (s->last_leaf < 0)
            return TG_E_INVAL; /* no leaf appended before it */
        p.n--;
        par_i64(&p, s->last_leaf);
    }
    return send_stmt(s, k, &p, 0);
}

/*
 * Read the results of the n statements sent since the last sync, then the
 * sync's; the first error.  The rows of statement head_at (-1: none) are
 * the audit tree's head, read into s->range.
 */
static int collect(struct pg_store *s, int n, int head_at)
{
    int rc = PQpipelineSync(s->w) ? TG_OK : send_fail(s, "sync");
    for (int i = 0; i < n; i++) {
        PGresult *res = PQgetResult(s->w);
        if (!res)
            return rc ? rc : send_fail(s, "read");
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            if (rc == TG_OK)
                rc = st == PGRES_PIPELINE_ABORTED ? TG_E_DB : stmt_fail(s, s->w, res, "write");
        } else if (i == head_at &&
                   (PQntuples(res) != 1 ||
                    tg_range_decode(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0),
                                    &s->range) != TG_OK)) {
            tg_error("store %s: the audit log's head is missing or malformed", s->name);
            rc = TG_E_DB;
        }
        PQclear(res);
        PQclear(PQgetResult(s->w)); /* the NULL that ends this statement's results */
    }
    PGresult *res = PQgetResult(s->w);
    if (PQresultStatus(res) != PGRES_PIPELINE_SYNC && rc == TG_OK)
        rc = send_fail(s, "sync");
    PQclear(res);
    return rc;
}

/* Send the jobs from `from` up to `to` that are (leaves) or are not leaves,
 * a sync every PIPE_MAX statements; n counts what is sent and not read. */
static int send_jobs(struct pg_store *s, struct job *from, const struct job *to, bool leaves,
                     int *n)
{
    int rc = TG_OK;
    for (struct job *j = from; j != to && rc == TG_OK; j = j->next) {
        if (is_leaf(j) != leaves)
            continue;
        rc = send_job(s, j);
        if (rc == TG_OK && ++*n >= PIPE_MAX) {
            rc = collect(s, *n, -1);
            *n = 0;
        }
    }
    return rc;
}

/*
 * The jobs from `from` up to `to` in one transaction, TG_OK when
 * committed: first every job that is not a leaf, then the head's lock and
 * the leaves, so the lock that makes nodes take turns is held for the
 * leaves and the commit only.  Everything locked before the head is a row
 * of this batch's own making or an upsert; after it, only new rows: no
 * two nodes wait on each other in a cycle.
 */
static int run_txn(struct pg_store *s, struct job *from, const struct job *to)
{
    bool leaves = false;
    int n = 0, rc = TG_OK;
    for (const struct job *j = from; j != to && !leaves; j = j->next)
        leaves = is_leaf(j);
    if (PQstatus(s->w) != CONNECTION_OK)
        rc = reconnect(s, &s->w);
    if (rc == TG_OK && !PQenterPipelineMode(s->w))
        rc = send_fail(s, "pipeline");
    if (rc != TG_OK)
        return rc;
    rc = send_sql(s, "BEGIN");
    n = 1;
    if (rc == TG_OK)
        rc = send_jobs(s, from, to, false, &n);
    if (rc == TG_OK && leaves && (rc = send_stmt(s, P_HEAD_LOCK, NULL, 1)) == TG_OK) {
        rc = collect(s, n + 1, n);
        n = 0;
        if (rc == TG_OK)
            rc = send_jobs(s, from, to, true, &n);
        if (rc == TG_OK) {
            struct pg_params p = {.n = 0};
            uint8_t buf[TG_RANGE_BYTES];
            par_bytes(&p, buf, tg_range_encode(&s->range, buf));
            if ((rc = send_stmt(s, P_HEAD_SET, &p, 0)) == TG_OK)
                n++;
        }
    }
    if (rc == TG_OK && (rc = send_sql(s, "COMMIT")) == TG_OK)
        n++;
    int cr = collect(s, n, -1);
    if (rc == TG_OK)
        rc = cr;
    PQexitPipelineMode(s->w);
    if (rc != TG_OK && PQstatus(s->w) == CONNECTION_OK)
        exec_sql(s, s->w, "ROLLBACK", "rollback");
    return rc;
}

/*
 * Commit a batch in one transaction.  PostgreSQL aborts a transaction at
 * its first failed statement, so a failure rolls the batch back and runs
 * its jobs again one by one, each in a transaction of its own (the writes
 * of one act held together, tg_store_hold, as one): as in SQLite, a
 * failing write loses itself and not its neighbours.  Returns
 * the first error.
 */
static int pg_run_batch(struct tg_store *st, struct job *batch)
{
    struct pg_store *s = pg(st);
    int64_t last_leaf = s->last_leaf;
    int rc = run_txn(s, batch, NULL);
    if (rc == TG_OK)
        return TG_OK;
    tg_wq_forget_numbers(batch, NULL);
    s->last_leaf = last_leaf;
    rc = TG_OK;
    for (struct job *j = batch, *end; j; j = end) {
        int64_t before = s->last_leaf;
        end = tg_wq_group_end(j); /* an act's writes (tg_store_hold) stay together */
        int jr = run_txn(s, j, end);
        if (jr != TG_OK) {
            tg_wq_forget_numbers(j, end);
            s->last_leaf = before;
            if (rc == TG_OK)
                rc = jr;
        }
    }
    return rc;
}

/* ------------------------------------------------------------ open / close */

/* Bring the schema to this build's version in one transaction. */
static int migrate(struct pg_store *s, char *err, size_t errlen)
{
    PGresult *res = NULL;
    int version = 0, rc;
    char buf[512];

    rc = exec_sql(s, s->w,
                  "BEGIN; SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ");"
                  "CREATE TABLE IF NOT EXISTS tg_schema ("
                  " id INTEGER PRIMARY KEY CHECK (id = 0), version INTEGER NOT NULL);"
                  "INSERT INTO tg_schema VALUES (0, 0) ON CONFLICT (id) DO NOTHING",
                  "schema");
    if (rc == TG_OK) {
        res = PQexec(s->w, "SELECT version FROM tg_schema");
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
            rc = stmt_fail(s, s->w, res, "schema version");
        else
            version = (int)col_i64(res, 0, 0);
        PQclear(res);
    }
    if (rc == TG_OK && version > SCHEMA_VERSION) {
        tg_store_set_err(err, errlen,
                         "postgres store %s: schema version %d is newer than this build's %d",
                         s->name, version, SCHEMA_VERSION);
        exec_sql(s, s->w, "ROLLBACK", "rollback");
        return TG_E_CONFIG;
    }
    for (int v = version; v < SCHEMA_VERSION && rc == TG_OK; v++)
        rc = exec_sql(s, s->w, migrations[v], "migrate");
    if (rc == TG_OK && version < SCHEMA_VERSION) {
        snprintf(buf, sizeof(buf), "UPDATE tg_schema SET version = %d", SCHEMA_VERSION);
        rc = exec_sql(s, s->w, buf, "schema version");
    }
    if (rc == TG_OK)
        rc = exec_sql(s, s->w, "COMMIT", "commit the schema");
    if (rc != TG_OK) {
        tg_store_set_err(err, errlen,
                         "postgres store %s: cannot bring the schema to version %d: %s", s->name,
                         SCHEMA_VERSION, one_line(PQerrorMessage(s->w), buf, sizeof(buf)));
        exec_sql(s, s->w, "ROLLBACK", "rollback");
    }
    return rc;
}

static void pg_free(struct pg_store *s)
{
    PQfinish(s->w);
    PQfinish(s->r);
    PQfinish(s->l);
    for (size_t i = 0; i < PG_TOLD; i++)
        tg_free(s->told[i]);
    tg_free(s->name);
    tg_free(s->uri);
    tg_free(s);
}

static int open_conn(struct pg_store *s, PGconn **c, char *err, size_t errlen)
{
    char buf[512];
    *c = connect_db(s);
    if (!*c) {
        tg_store_set_err(err, errlen, "postgres store %s: out of memory", s->name);
        return TG_E_NOMEM;
    }
    if (PQstatus(*c) != CONNECTION_OK) {
        tg_store_set_err(err, errlen, "postgres store %s: cannot connect: %s", s->name,
                         one_line(PQerrorMessage(*c), buf, sizeof(buf)));
        return TG_E_DB;
    }
    return TG_OK;
}

static int pg_open(const char *uri, const struct tg_store_privacy *priv, struct tg_store **out,
                   char *err, size_t errlen)
{
    struct pg_store *s = tg_calloc(1, sizeof(*s));
    char buf[512];
    int rc;
    (void)priv; /* no older version wrote personal data in clear here */

    if (s) {
        s->uri = tg_strdup(uri);
        s->name = tg_store_redact(uri);
    }
    if (!s || !s->uri || !s->name) {
        tg_store_set_err(err, errlen, "postgres store: out of memory");
        rc = TG_E_NOMEM;
        goto out;
    }
    s->base.ops = &tg_store_postgres_ops;
    s->last_leaf = -1;
    rc = open_conn(s, &s->w, err, errlen);
    if (rc == TG_OK)
        rc = migrate(s, err, errlen);
    if (rc == TG_OK) {
        s->writer_pid = PQbackendPID(s->w);
        rc = prepare(s, s->w, true);
    }
    if (rc == TG_OK)
        rc = open_conn(s, &s->r, err, errlen);
    if (rc == TG_OK && (rc = prepare(s, s->r, false)) != TG_OK)
        tg_store_set_err(err, errlen, "postgres store %s: %s", s->name,
                         one_line(PQerrorMessage(s->r), buf, sizeof(buf)));
out:
    if (rc == TG_OK) {
        *out = &s->base;
    } else if (s) {
        if (err && errlen && !err[0])
            tg_store_set_err(err, errlen, "postgres store %s: %s", s->name,
                             one_line(PQerrorMessage(s->w), buf, sizeof(buf)));
        pg_free(s);
    }
    return rc;
}

/* ------------------------------------------------------------ sharing */

static int pg_lock(struct tg_store *st, const char *key, bool on)
{
    struct pg_params p = {.n = 0};
    int rc;
    par_text(&p, key);
    PQclear(pg_run(pg(st), on ? P_LOCK : P_UNLOCK, &p, 0, &rc));
    return rc;
}

static int pg_trylock(struct tg_store *st, const char *key)
{
    struct pg_params p = {.n = 0};
    int rc;
    par_text(&p, key);
    PGresult *res = pg_run(pg(st), P_TRYLOCK, &p, 0, &rc);
    if (rc == TG_OK && (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0))
        rc = TG_E_CONFLICT;
    PQclear(res);
    return rc;
}

/* The listening connection, made (and LISTEN sent) when first asked for. */
static int listen_conn(struct pg_store *s)
{
    if (s->l && PQstatus(s->l) == CONNECTION_OK)
        return TG_OK;
    PQfinish(s->l);
    s->l = connect_db(s);
    if (!s->l || PQstatus(s->l) != CONNECTION_OK) {
        char buf[512];
        tg_error("store %s: cannot listen for other nodes' changes: %s", s->name,
                 one_line(s->l ? PQerrorMessage(s->l) : "out of memory", buf, sizeof(buf)));
        return TG_E_DB;
    }
    return exec_sql(s, s->l, "LISTEN tg_reviews; LISTEN tg_answers", "listen");
}

static int pg_changes_fd(struct tg_store *st)
{
    struct pg_store *s = pg(st);
    return listen_conn(s) == TG_OK ? PQsocket(s->l) : -1;
}

/* Changes other processes made: this store's writer's own are known here already. */
static int pg_changes(struct tg_store *st, void (*cb)(void *ctx, const char *id, const char *state),
                      void *ctx)
{
    struct pg_store *s = pg(st);
    PGnotify *n;
    if (!s->l || !PQconsumeInput(s->l) || PQstatus(s->l) != CONNECTION_OK) {
        listen_conn(s);
        return TG_E_DB;
    }
    int self = __atomic_load_n(&s->writer_pid, __ATOMIC_RELAXED);
    while ((n = PQnotifies(s->l)) != NULL) {
        char id[TG_ID_MAX];
        const char *sp = strchr(n->extra, ' ');
        if (sp && n->be_pid != self && (size_t)(sp - n->extra) < sizeof(id)) {
            snprintf(id, sizeof(id), "%.*s", (int)(sp - n->extra), n->extra);
            if (strcmp(n->relname, "tg_answers") == 0) { /* kept for tg_store_told */
                unsigned k = s->told_next++ % PG_TOLD;
                tg_free(s->told[k]);
                s->told[k] = tg_strdup(n->extra);
            } else {
                cb(ctx, id, sp + 1);
            }
        }
        PQfreemem(n);
    }
    return TG_OK;
}

/* The newest text told for id (tg_store_tell, by another node). */
static int pg_told(struct tg_store *st, const char *id, char **text)
{
    struct pg_store *s = pg(st);
    size_t il = strlen(id);
    for (unsigned i = 1; i <= PG_TOLD; i++) {
        const char *t = s->told[(s->told_next - i) % PG_TOLD];
        if (t && strncmp(t, id, il) == 0 && t[il] == ' ') {
            *text = tg_strdup(t + il + 1);
            return *text ? TG_OK : TG_E_NOMEM;
        }
    }
    return TG_E_NOTFOUND;
}

/* The write queue has stopped (store.c): nothing writes any more. */
static void pg_close(struct tg_store *st)
{
    pg_free(pg(st));
}

const struct tg_store_ops tg_store_postgres_ops = {
    .kind = "postgres",
    .shared = true,
    .open = pg_open,
    .close = pg_close,
    .run_batch = pg_run_batch,
    .blob_get = pg_blob_get,
    .blob_list = pg_blob_list,
    .review_of_conversation = pg_review_of_conversation,
    .lock = pg_lock,
    .trylock = pg_trylock,
    .changes_fd = pg_changes_fd,
    .changes = pg_changes,
    .told = pg_told,
    .review_scan = pg_review_scan,
    .review_facts = pg_review_facts,
    .handoff_list = pg_handoff_list,
    .conversation_latest = pg_conversation_latest,
    .conversation_get = pg_conversation_get,
    .messages = pg_messages,
    .turn_get = pg_turn_get,
    .review_get = pg_review_get,
    .review_list = pg_review_list,
    .audit_size = pg_audit_size,
    .audit_get = pg_audit_get,
    .audit_scan = pg_audit_scan,
};
