/*
 * sqlite_writer.c - the SQLite store's writes: a public write copies its
 * arguments into one job and queues it (bounded by QUEUE_MAX_BYTES); the
 * writer thread takes every job queued so far and commits them in one
 * transaction, waiting a group-commit window for more when one is set.
 * Acknowledgement tickets, flush and the commit eventfd report progress.
 */
#include "store/sqlite_int.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

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

void sq_free_jobs(struct job *j)
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

void *sq_writer_main(void *arg)
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
        sq_free_jobs(batch);

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

/* Serialise json compactly to *cur (NUL-terminated) and advance it. */
/* v as JSON text at *cur (n bytes, as json_size said, and a NUL); NULL when
 * jansson could not write all of it (it allocates while it writes). */
static char *pack_json(char **cur, const json_t *v, size_t n)
{
    char *d = *cur;
    size_t w = json_dumpb(v, d, n, JSON_COMPACT);
    d[n] = '\0';
    *cur = d + n + 1;
    return w == n ? d : NULL;
}

/* The length of v as JSON text; 0 with TG_E_NOMEM when it cannot be written
 * (our trees have no cycles: only allocation fails). */
static size_t json_size(const json_t *v, int *rc)
{
    size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT);
    *rc = n ? TG_OK : TG_E_NOMEM;
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

int sq_conversation_put(struct tg_store *st, const struct tg_conversation *c)
{
    int rc;
    struct job *j = job_new(JOB_CONVERSATION, 0, &rc);
    if (!j)
        return rc;
    j->u.conv = *c;
    return enqueue(sq(st), j);
}

int sq_message_add(struct tg_store *st, const struct tg_message *m)
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

int sq_turn_put(struct tg_store *st, const char *turn_id, const char *conversation_id,
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

int sq_review_put(struct tg_store *st, const struct tg_review_row *r, const json_t *task)
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
    if (!j->u.review.task) {
        tg_free(j); /* never a task stored cut short */
        rc = TG_E_NOMEM;
        goto out;
    }
    rc = enqueue(sq(st), j);
out:
    return rc;
}

int sq_handoff_add(struct tg_store *st, const struct tg_handoff_msg *m)
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

int sq_audit_put(struct tg_store *st, const struct tg_audit_row *row)
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

void sq_set_group_commit(struct tg_store *st, int64_t ms)
{
    struct sq_store *s = sq(st);
    pthread_mutex_lock(&s->mu);
    s->group_ns = ms > 0 ? ms * 1000000 : 0;
    pthread_mutex_unlock(&s->mu);
}

int sq_blob_put(struct tg_store *st, const char *key, const void *data, size_t len)
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

int sq_flush(struct tg_store *st)
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

uint64_t sq_ticket(struct tg_store *st)
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

uint64_t sq_committed(struct tg_store *st, int *err)
{
    struct sq_store *s = sq(st);
    pthread_mutex_lock(&s->mu);
    uint64_t c = s->committed;
    *err = s->err;
    pthread_mutex_unlock(&s->mu);
    return c;
}

int sq_commit_fd(struct tg_store *st)
{
    return sq(st)->commit_fd;
}

void sq_commit_drain(struct tg_store *st)
{
    uint64_t n;
    ssize_t r = read(sq(st)->commit_fd, &n, sizeof(n));
    (void)r;
}
