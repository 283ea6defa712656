/*
 * sqlite_schema.c - the SQLite store's schema: the migrations that take a
 * database from any released version to this build's, and the one-time
 * conversion of what older versions kept in clear (customer ids, texts,
 * hand-off threads inside tasks) into private form.
 */
#include "store/sqlite_int.h"

#include <stdlib.h>

/* ------------------------------------------------------------ schema */

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
    {.sql =
         ("CREATE TABLE IF NOT EXISTS conversations ("
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
    {.sql = "CREATE INDEX reviews_conversation ON reviews (conversation_id, state, updated_ms);"},
};
#define SCHEMA_VERSION ((int)TG_ARRAY_LEN(migrations))

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
    char *d = tg_json_dumps(v, JSON_COMPACT);
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
        else if (rc == TG_OK)
            rc = tg_json_push(kept, json_incref(e));
    }
    for (; rc == TG_OK && ci < json_array_size(cm); ci++)
        rc = thread_row(ins, id, json_array_get(cm, ci), true, json_array_size(kept));
    for (; rc == TG_OK && ai < json_array_size(ar); ai++)
        rc = thread_row(ins, id, json_array_get(ar, ai), false, json_array_size(kept));
    if (rc == TG_OK && json_object_get(task, "events"))
        rc = tg_json_set(task, "events", json_incref(kept));
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
    int rc = wprep(s, sq_write_sql[W_HANDOFF], &ins);
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
    int rc = sq_query_text(s->wdb, "SELECT COUNT(*) FROM privacy", buf, sizeof(buf));
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
int sq_migrate(struct sq_store *s, char *err, size_t errlen)
{
    bool done = true;
    char buf[32];
    int64_t version = 0;
    int rc = sqlite3_exec(s->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL);

    if (rc != SQLITE_OK) {
        rc = sq_open_fail(s, s->wdb, rc, "cannot begin", err, errlen);
        goto out;
    }
    rc = sq_query_text(s->wdb, "PRAGMA user_version", buf, sizeof(buf));
    if (rc != SQLITE_OK || tg_parse_i64(buf, &version) != TG_OK) {
        rc = sq_open_fail(s, s->wdb, rc ? rc : SQLITE_CORRUPT, "schema version", err, errlen);
        goto rollback;
    }
    if (version > SCHEMA_VERSION) {
        tg_store_set_err(err, errlen,
                         "sqlite store %s: schema version %lld is newer than this build's %d",
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
            tg_store_set_err(err, errlen, "sqlite store %s: schema migration %lld failed", s->path,
                             (long long)v + 1);
            rc = TG_E_DB;
            goto rollback;
        }
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->wdb, pragma, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            rc = sq_open_fail(s, s->wdb, rc, "schema migration", err, errlen);
            goto rollback;
        }
    }
    /* a new database holds nothing an older version wrote: nothing to convert */
    if (version == 0)
        rc = sqlite3_exec(s->wdb, "INSERT INTO privacy (id, converted_ms) VALUES (0, 0)", NULL,
                          NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = sq_open_fail(s, s->wdb, rc, "privacy mark", err, errlen);
        goto rollback;
    }
    if (s->priv && converted(s, &done) == TG_OK && !done && convert_private(s) != TG_OK) {
        tg_store_set_err(err, errlen, "sqlite store %s: cannot convert the personal data it holds",
                         s->path);
        rc = TG_E_DB;
        goto rollback;
    }
    rc = sqlite3_exec(s->wdb, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = sq_open_fail(s, s->wdb, rc, "schema commit", err, errlen);
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
