/*
 * sqlite_writer.c - the SQLite store's writes: the write queue's writer
 * thread (wqueue.c) hands it every job queued so far, which it commits in
 * one BEGIN IMMEDIATE ... COMMIT on the write connection.
 */
#include "store/sqlite_int.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

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
        b.st = s->w[j->step ? W_CONV_STEP : W_CONVERSATION];
        bind_str(&b, j->u.conv.id);
        bind_str(&b, j->u.conv.customer_id);
        bind_i64(&b, j->u.conv.created_ms);
        bind_i64(&b, j->u.conv.updated_ms);
        bind_i64(&b, j->u.conv.turns);
        bind_i64(&b, j->u.conv.degraded_streak);
        if (j->step)
            bind_i64(&b, j->step);
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
        if (j->u.turn.audit_idx == WQ_LAST_LEAF)
            bind_i64(&b, s->last_leaf);
        else if (j->u.turn.audit_idx >= 0)
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
    case JOB_TELL: /* nobody else to tell: run_job skips it */
        break;
    }
    *bind_rc = b.rc;
    return b.st;
}

static int run_job(struct sq_store *s, struct job *j)
{
    struct tg_range next;
    int rc = TG_OK;
    int src;
    sqlite3_stmt *st;

    if (j->kind == JOB_TELL)
        return TG_OK; /* one process writes this file: nobody else waits */
    if (j->kind == JOB_AUDIT && (rc = tg_wq_number_leaf(s->path, j, &s->range, &next)) != TG_OK)
        return rc;
    if (j->kind == JOB_TURN && j->u.turn.audit_idx == WQ_LAST_LEAF && s->last_leaf < 0)
        return TG_E_INVAL; /* no leaf appended before it */
    st = bind_job(s, j, &src);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = db_fail(s, s->wdb, src, "write");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st); /* the bound text lives in the job, about to be freed */
    if (j->kind == JOB_AUDIT) {
        if (rc == TG_OK) {
            tg_range_copy(&s->range, &next);
            s->last_leaf = (int64_t)j->u.audit.index;
        } else if (j->numbered) {
            j->numbered = false;
            j->u.audit.index = WQ_NEXT_LEAF;
        }
    }
    return rc;
}

/*
 * The jobs of one act (tg_store_hold) from j up to end, inside a
 * savepoint: one failing undoes them all, and the leaves they numbered.
 */
static int run_group(struct sq_store *s, struct job *j, struct job *end)
{
    struct tg_range range;
    tg_range_copy(&range, &s->range);
    int64_t last_leaf = s->last_leaf;
    int rc = exec_stmt(s, s->w[W_SAVEPOINT], "savepoint");
    for (struct job *k = j; rc == TG_OK && k != end; k = k->next)
        rc = run_job(s, k);
    if (rc != TG_OK && !sqlite3_get_autocommit(s->wdb)) {
        exec_stmt(s, s->w[W_ROLLBACK_TO], "rollback to savepoint");
        tg_range_copy(&s->range, &range);
        s->last_leaf = last_leaf;
        tg_wq_forget_numbers(j, end);
    }
    if (!sqlite3_get_autocommit(s->wdb))
        exec_stmt(s, s->w[W_RELEASE], "release savepoint");
    return rc;
}

/*
 * Commit a batch in one transaction.  A failing job does not stop the
 * others: SQLite undoes just that statement (or that act's writes, held
 * together) and the rest still commit,
 * unless SQLite had to roll the whole transaction back, which loses the
 * batch.  Returns the first error.
 */
int sq_run_batch(struct tg_store *st, struct job *batch)
{
    struct sq_store *s = sq(st);
    struct tg_range range;
    tg_range_copy(&range, &s->range);
    int64_t last_leaf = s->last_leaf;
    int rc = exec_stmt(s, s->w[W_BEGIN], "begin");
    if (rc != TG_OK)
        goto out;
    for (struct job *j = batch, *end; j && !sqlite3_get_autocommit(s->wdb); j = end) {
        end = tg_wq_group_end(j);
        int jr = end == j->next ? run_job(s, j) : run_group(s, j, end);
        if (jr != TG_OK && rc == TG_OK)
            rc = jr;
    }
    if (sqlite3_get_autocommit(s->wdb)) {
        tg_error("store %s: transaction rolled back, a batch of writes is lost", s->path);
        tg_range_copy(&s->range, &range);
        s->last_leaf = last_leaf;
        tg_wq_forget_numbers(batch, NULL);
        if (rc == TG_OK)
            rc = TG_E_DB;
        goto out;
    }
    int cr = exec_stmt(s, s->w[W_COMMIT], "commit");
    if (cr != TG_OK) {
        exec_stmt(s, s->w[W_ROLLBACK], "rollback");
        tg_range_copy(&s->range, &range);
        s->last_leaf = last_leaf;
        tg_wq_forget_numbers(batch, NULL);
        if (rc == TG_OK)
            rc = cr;
    }
out:
    return rc;
}
