/*
 * sqlite_reads.c - the SQLite store's reads: conversations, messages,
 * turns, blobs, review tasks and their threads, audit leaves; each on the
 * read connection of the caller's thread, which WAL lets run beside the
 * writer.
 */
#include "store/sqlite_int.h"

/* size_t limits larger than SQLite's integers mean "no limit" anyway. */
static int64_t clamp_limit(size_t limit)
{
    return limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit;
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

static int col_json_string(json_t *obj, const char *key, sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    json_t *v = json_stringn(t ? t : "", n);
    /* not UTF-8 is the store's fault; anything else is out of memory */
    if (!v)
        return tg_utf8_valid(t ? t : "", n) ? TG_E_NOMEM : TG_E_DB;
    return tg_json_set(obj, key, v);
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

int sq_conversation_latest(struct tg_store *st, const char *customer_id,
                           struct tg_conversation *out)
{
    struct sq_store *s = sq(st);
    return read_conversation(s, s->r[R_CONV_LATEST], customer_id, out);
}

int sq_conversation_get(struct tg_store *st, const char *id, struct tg_conversation *out)
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
    if (rc == TG_OK)
        rc = tg_json_set(m, "ts_ms", json_integer(sqlite3_column_int64(st, 3)));
    if (rc == TG_OK)
        *out = m;
    else
        json_decref(m);
    return rc;
}

int sq_messages(struct tg_store *st, const char *conversation_id, size_t limit, json_t **out)
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
        if (rc == TG_OK)
            rc = tg_json_push(arr, m);
    }
    read_done(q);
    if (rc == TG_OK)
        *out = arr;
    else
        json_decref(arr);
    return rc;
}

int sq_blob_get(struct tg_store *st, const char *key, char **data, size_t *len)
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

int sq_blob_list(struct tg_store *st, const char *prefix, size_t limit, json_t **out)
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
        json_t *v =
            json_loadb(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0), 0, NULL);
        if (v)
            rc = tg_json_push(arr, v);
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

int sq_turn_get(struct tg_store *st, const char *turn_id, json_t **record)
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
    if (rc == TG_OK && sqlite3_column_type(q, 1) != SQLITE_NULL)
        rc = tg_store_record_index(*record, sqlite3_column_int64(q, 1));
    read_done(q);
    return rc;
}

/* The key columns 0..6 of a reviews row, and conversation_id at column cc. */
static void review_keys(sqlite3_stmt *q, int cc, struct tg_review_row *row)
{
    memset(row, 0, sizeof(*row));
    col_copy(row->id, sizeof(row->id), q, 0);
    col_copy(row->turn_id, sizeof(row->turn_id), q, 1);
    col_copy(row->state, sizeof(row->state), q, 2);
    col_copy(row->queue, sizeof(row->queue), q, 3);
    row->priority = sqlite3_column_int64(q, 4);
    row->deadline_ms = sqlite3_column_int64(q, 5);
    row->updated_ms = sqlite3_column_int64(q, 6);
    col_copy(row->conversation_id, sizeof(row->conversation_id), q, cc);
}

int sq_review_get(struct tg_store *st, const char *id, struct tg_review_row *row, json_t **task)
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
    if (row)
        review_keys(q, 8, row);
    if (task)
        *task = t;
out:
    read_done(q);
    return rc;
}

int sq_review_list(struct tg_store *st, const char *state, size_t limit, json_t **out)
{
    struct sq_store *s = sq(st);
    bool open = state && (!strcmp(state, "pending") || !strcmp(state, "claimed"));
    sqlite3_stmt *q = s->r[!state ? R_REVIEW_LIST
                           : open ? R_REVIEW_LIST_STATE
                                  : R_REVIEW_LIST_DONE];
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
        if (rc == TG_OK)
            rc = tg_json_push(arr, t);
    }
    read_done(q);
    if (rc == TG_OK)
        *out = arr;
    else
        json_decref(arr);
    return rc;
}

int sq_review_of_conversation(struct tg_store *st, const char *conversation_id, const char *state,
                              struct tg_review_row *row)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = s->r[R_REVIEW_OF_CONV];
    struct binder b = {.st = q, .rc = SQLITE_OK};
    bind_str(&b, conversation_id);
    bind_str(&b, state);
    int rc = bind_fail(s, &b);
    if (rc == TG_OK)
        rc = read_step(s, q);
    if (rc == TG_OK)
        review_keys(q, 7, row);
    read_done(q);
    return rc;
}

int sq_review_scan(struct tg_store *st, const char *state,
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
        review_keys(q, 7, &row);
        rc = cb(ctx, &row); /* non-zero stops the scan and is returned as is */
    }
    read_done(q);
    return rc;
}

int sq_review_facts(struct tg_store *st, int64_t since_ms,
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

int sq_handoff_list(struct tg_store *st, const char *review_id, size_t limit,
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

int sq_audit_size(struct tg_store *st, uint64_t *n)
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

int sq_audit_get(struct tg_store *st, uint64_t index, struct tg_audit_row *row)
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

int sq_audit_scan(struct tg_store *st, uint64_t from,
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

/* ------------------------------------------------------------ dump */

static const char *const dump_sql[] = {
    [JOB_BLOB] = "SELECT key, data, updated_ms FROM blobs ORDER BY key",
    [JOB_CONVERSATION] = "SELECT id, customer_id, created_ms, updated_ms, turns, degraded_streak"
                         " FROM conversations ORDER BY id",
    [JOB_MESSAGE] = "SELECT conversation_id, turn_id, role, content, ts_ms FROM messages"
                    " ORDER BY seq",
    [JOB_AUDIT] = "SELECT idx, data, leaf_hash, root, ts_ms FROM audit ORDER BY idx",
    [JOB_TURN] = "SELECT id, conversation_id, decision, created_ms, record, audit_idx FROM turns"
                 " ORDER BY rowid",
    [JOB_REVIEW] = "SELECT id, turn_id, state, queue, priority, deadline_ms, updated_ms, task,"
                   " conversation_id FROM reviews ORDER BY rowid",
    [JOB_HANDOFF] = "SELECT review_id, turn_id, sender, actor, text, at_ms, after_events"
                    " FROM handoff_messages ORDER BY seq",
};
static const enum job_kind dump_order[] = {JOB_BLOB, JOB_CONVERSATION, JOB_MESSAGE, JOB_AUDIT,
                                           JOB_TURN, JOB_REVIEW,       JOB_HANDOFF};

/* The current row of a dump statement as the job that writes it. */
static int dump_row(struct sq_store *s, sqlite3_stmt *q, struct job *j)
{
    switch (j->kind) {
    case JOB_BLOB: {
        const void *d = sqlite3_column_blob(q, 1);
        j->u.blob = (struct job_blob){.key = col_text(q, 0),
                                      .data = d ? d : "",
                                      .len = (size_t)sqlite3_column_bytes(q, 1),
                                      .ts_ms = sqlite3_column_int64(q, 2)};
        break;
    }
    case JOB_CONVERSATION:
        col_copy(j->u.conv.id, sizeof(j->u.conv.id), q, 0);
        col_copy(j->u.conv.customer_id, sizeof(j->u.conv.customer_id), q, 1);
        j->u.conv.created_ms = sqlite3_column_int64(q, 2);
        j->u.conv.updated_ms = sqlite3_column_int64(q, 3);
        j->u.conv.turns = sqlite3_column_int64(q, 4);
        j->u.conv.degraded_streak = sqlite3_column_int64(q, 5);
        break;
    case JOB_MESSAGE:
        col_copy(j->u.msg.conversation_id, sizeof(j->u.msg.conversation_id), q, 0);
        col_copy(j->u.msg.turn_id, sizeof(j->u.msg.turn_id), q, 1);
        j->u.msg.role = col_text(q, 2);
        j->u.msg.content = col_text(q, 3);
        j->u.msg.ts_ms = sqlite3_column_int64(q, 4);
        break;
    case JOB_AUDIT:
        return audit_row(s, q, false, &j->u.audit);
    case JOB_TURN:
        j->u.turn = (struct job_turn){
            .id = col_text(q, 0),
            .conversation_id = col_text(q, 1),
            .decision = col_text(q, 2),
            .created_ms = sqlite3_column_int64(q, 3),
            .record = col_text(q, 4),
            .record_len = (size_t)sqlite3_column_bytes(q, 4),
            .audit_idx = sqlite3_column_type(q, 5) == SQLITE_NULL ? -1 : sqlite3_column_int64(q, 5),
        };
        break;
    case JOB_REVIEW:
        review_keys(q, 8, &j->u.review.row);
        j->u.review.task = col_text(q, 7);
        j->u.review.task_len = (size_t)sqlite3_column_bytes(q, 7);
        break;
    case JOB_HANDOFF:
        col_copy(j->u.handoff.review_id, sizeof(j->u.handoff.review_id), q, 0);
        col_copy(j->u.handoff.turn_id, sizeof(j->u.handoff.turn_id), q, 1);
        j->u.handoff.from = col_text(q, 2);
        j->u.handoff.actor = col_text(q, 3);
        j->u.handoff.text = col_text(q, 4);
        j->u.handoff.at_ms = sqlite3_column_int64(q, 5);
        j->u.handoff.after_events = sqlite3_column_int64(q, 6);
        break;
    case JOB_TELL: /* not a table: never dumped */
        return TG_E_INVAL;
    }
    return TG_OK;
}

int sq_dump(struct tg_store *st, int (*cb)(void *ctx, struct job *row), void *ctx)
{
    struct sq_store *s = sq(st);
    int rc = TG_OK;
    for (size_t t = 0; t < TG_ARRAY_LEN(dump_order) && rc == TG_OK; t++) {
        sqlite3_stmt *q = NULL;
        int src = sqlite3_prepare_v2(s->rdb, dump_sql[dump_order[t]], -1, &q, NULL);
        if (src != SQLITE_OK)
            rc = db_fail(s, s->rdb, src, "dump");
        while (rc == TG_OK && next_row(s, q, &rc)) {
            struct job j;
            memset(&j, 0, sizeof(j));
            j.kind = dump_order[t];
            rc = dump_row(s, q, &j);
            if (rc == TG_OK)
                rc = cb(ctx, &j);
        }
        sqlite3_finalize(q);
    }
    return rc;
}
