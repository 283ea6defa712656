/*
 * wqueue.c - the write queue of every store backend (wqueue.h): jobs made
 * from the public writes' arguments, the writer thread that hands them to
 * the backend in batches, and the tickets, flush and eventfd that report
 * its progress.
 */
#include "store/store_int.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

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

static void free_jobs(struct job *j)
{
    while (j) {
        struct job *next = j->next;
        tg_free(j);
        j = next;
    }
}

/*
 * Let more jobs join the batch: one commit (one sync point, one
 * transaction) then serves every turn of the window.  Replies never wait
 * for it; only durability is later, by at most the window.  Called with
 * the mutex held; a flush or a stop ends the window early.
 */
static void group_window(struct tg_wqueue *q)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    int64_t ns = dl.tv_nsec + q->group_ns;
    dl.tv_sec += (time_t)(ns / 1000000000);
    dl.tv_nsec = (long)(ns % 1000000000);
    while (!q->stop && !q->flushers && q->wanted <= q->committed &&
           q->queued_bytes < WQ_MAX_BYTES / 4) {
        if (pthread_cond_timedwait(&q->work_cv, &q->mu, &dl) == ETIMEDOUT)
            break;
    }
}

static void *writer_main(void *arg)
{
    struct tg_wqueue *q = arg;

    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stop)
            pthread_cond_wait(&q->work_cv, &q->mu);
        if (!q->head)
            break; /* stop requested and nothing left to commit */
        if (q->group_ns > 0 && !q->stop && !q->flushers && q->wanted <= q->committed)
            group_window(q);
        while (q->holds) /* an act is queueing writes that commit together */
            pthread_cond_wait(&q->work_cv, &q->mu);
        struct job *batch = q->head, *dropped = NULL;
        uint64_t upto = q->enqueued;
        size_t bytes = q->queued_bytes;
        q->head = q->tail = NULL;
        pthread_mutex_unlock(&q->mu);

        for (struct job **at = &batch; *at;) {
            struct job *j = *at;
            if (j->dropped) { /* an act given up (tg_wq_release) */
                *at = j->next;
                j->next = dropped;
                dropped = j;
            } else {
                at = &j->next;
            }
        }
        free_jobs(dropped);
        int rc = batch ? q->run(q->arg, batch) : TG_OK;

        pthread_mutex_lock(&q->mu);
        for (const struct job *j = batch; j; j = j->next) {
            if (j->numbered)
                q->numbered[j->seq % TG_STORE_AUDIT_REMEMBER] =
                    (struct wq_numbered){.seq = j->seq, .index = j->u.audit.index};
        }
        free_jobs(batch);
        if (rc != TG_OK && q->err == TG_OK)
            q->err = rc;
        q->committed = upto;
        q->queued_bytes -= bytes;
        pthread_cond_broadcast(&q->done_cv);
        if (q->commit_fd >= 0) {
            /* the loop learns of the commit; a full counter already says so */
            uint64_t one = 1;
            ssize_t w = write(q->commit_fd, &one, sizeof(one));
            (void)w;
        }
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* ------------------------------------------------------------ queueing */

/* A job with room for extra bytes behind it; NULL when too big or out of memory. */
static struct job *job_new(enum job_kind kind, size_t extra, int *rc)
{
    struct job *j = NULL;
    if (extra > WQ_JOB_MAX_BYTES) {
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

/* The queue this thread holds (tg_wq_hold) and its group number. */
static _Thread_local struct tg_wqueue *held;
static _Thread_local uint64_t held_group;

void tg_wq_hold(struct tg_wqueue *q)
{
    pthread_mutex_lock(&q->mu);
    q->holds++;
    held = q;
    held_group = ++q->groups;
    pthread_mutex_unlock(&q->mu);
}

void tg_wq_release(struct tg_wqueue *q, bool keep)
{
    pthread_mutex_lock(&q->mu);
    /* still queued (the writer took no batch meanwhile): the writer counts
     * given-up jobs as done without handing them to the backend */
    for (struct job *j = q->head; !keep && j; j = j->next)
        if (j->group == held_group)
            j->dropped = true;
    q->holds--;
    held = NULL;
    held_group = 0;
    pthread_cond_signal(&q->work_cv);
    pthread_mutex_unlock(&q->mu);
}

struct job *tg_wq_group_end(struct job *j)
{
    uint64_t g = j->group;
    j = j->next;
    while (g && j && j->group == g)
        j = j->next;
    return j;
}

/* Queue a job for the writer, taking ownership of it either way; *seq
 * (may be NULL) receives its place in the queue. */
static int enqueue_seq(struct tg_wqueue *q, struct job *j, uint64_t *seq)
{
    int rc;

    pthread_mutex_lock(&q->mu);
    /* a full queue waits for the writer, unless this thread holds it back */
    while (held != q && q->queued_bytes > WQ_MAX_BYTES && q->err == TG_OK)
        pthread_cond_wait(&q->done_cv, &q->mu);
    if (held == q)
        j->group = held_group;
    rc = q->err;
    if (rc == TG_OK) {
        if (q->tail)
            q->tail->next = j;
        else
            q->head = j;
        q->tail = j;
        q->queued_bytes += j->size;
        j->seq = ++q->enqueued;
        if (seq)
            *seq = j->seq;
        /* The writer waits for work only on an empty queue. */
        if (q->head == j)
            pthread_cond_signal(&q->work_cv);
        j = NULL;
    }
    pthread_mutex_unlock(&q->mu);
    tg_free(j);
    return rc;
}

static int enqueue(struct tg_wqueue *q, struct job *j)
{
    return enqueue_seq(q, j, NULL);
}

int tg_wq_conversation_put(struct tg_wqueue *q, const struct tg_conversation *c, int step)
{
    int rc;
    struct job *j = job_new(JOB_CONVERSATION, 0, &rc);
    if (!j)
        return rc;
    j->u.conv = *c;
    j->step = step;
    return enqueue(q, j);
}

int tg_wq_message_add(struct tg_wqueue *q, const struct tg_message *m)
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
    return enqueue(q, j);
}

int tg_wq_turn_put(struct tg_wqueue *q, const char *turn_id, const char *conversation_id,
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
    rc = enqueue(q, j);
out:
    return rc;
}

int tg_wq_review_put(struct tg_wqueue *q, const struct tg_review_row *r, const json_t *task)
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
    rc = enqueue(q, j);
out:
    return rc;
}

int tg_wq_handoff_add(struct tg_wqueue *q, const struct tg_handoff_msg *m)
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
    return enqueue(q, j);
}

static int audit_job(struct tg_wqueue *q, const struct tg_audit_row *row, uint64_t *seq)
{
    int rc;
    struct job *j = NULL;
    if (row->len > WQ_JOB_MAX_BYTES)
        return TG_E_TOOBIG;
    j = job_new(JOB_AUDIT, row->len + 1, &rc);
    if (!j)
        return rc;
    char *cur = j->extra;
    j->u.audit = *row;
    j->u.audit.data = pack(&cur, row->data, row->len);
    return enqueue_seq(q, j, seq);
}

int tg_wq_audit_put(struct tg_wqueue *q, const struct tg_audit_row *row)
{
    return audit_job(q, row, NULL);
}

int tg_wq_audit_append(struct tg_wqueue *q, const struct tg_audit_row *row, uint64_t *seq)
{
    return audit_job(q, row, seq);
}

int tg_wq_audit_index(struct tg_wqueue *q, uint64_t seq, uint64_t *index)
{
    int rc = TG_E_NOTFOUND;
    pthread_mutex_lock(&q->mu);
    const struct wq_numbered *n = &q->numbered[seq % TG_STORE_AUDIT_REMEMBER];
    if (seq && n->seq == seq) {
        *index = n->index;
        rc = TG_OK;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void tg_wq_set_group_commit(struct tg_wqueue *q, int64_t ms)
{
    pthread_mutex_lock(&q->mu);
    q->group_ns = ms > 0 ? ms * 1000000 : 0;
    pthread_mutex_unlock(&q->mu);
}

int tg_wq_blob_put(struct tg_wqueue *q, const char *key, const void *data, size_t len)
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
    return enqueue(q, j);
}

int tg_wq_tell(struct tg_wqueue *q, const char *id, const char *text)
{
    int rc;
    size_t il = strlen(id), tl = strlen(text);
    struct job *j = job_new(JOB_TELL, il + 1 + il + 1 + tl + 1, &rc);
    if (!j)
        return rc;
    char *cur = j->extra;
    j->u.blob.key = pack(&cur, id, il);
    char *d = cur; /* "ID TEXT" */
    memcpy(d, id, il);
    d[il] = ' ';
    memcpy(d + il + 1, text, tl);
    d[il + 1 + tl] = '\0';
    j->u.blob.data = d;
    j->u.blob.len = il + 1 + tl;
    return enqueue(q, j);
}

int tg_wq_flush(struct tg_wqueue *q)
{
    int rc;

    pthread_mutex_lock(&q->mu);
    uint64_t target = q->enqueued;
    q->flushers++;
    pthread_cond_signal(&q->work_cv); /* end a group window now */
    while (q->committed < target)
        pthread_cond_wait(&q->done_cv, &q->mu);
    q->flushers--;
    rc = q->err;
    pthread_mutex_unlock(&q->mu);
    return rc;
}

uint64_t tg_wq_ticket(struct tg_wqueue *q)
{
    pthread_mutex_lock(&q->mu);
    uint64_t t = q->enqueued;
    if (t > q->wanted) {
        q->wanted = t;
        pthread_cond_signal(&q->work_cv); /* end a group window now */
    }
    pthread_mutex_unlock(&q->mu);
    return t;
}

uint64_t tg_wq_committed(struct tg_wqueue *q, int *err)
{
    pthread_mutex_lock(&q->mu);
    uint64_t c = q->committed;
    *err = q->err;
    pthread_mutex_unlock(&q->mu);
    return c;
}

int tg_wq_commit_fd(struct tg_wqueue *q)
{
    return q->commit_fd;
}

void tg_wq_commit_drain(struct tg_wqueue *q)
{
    uint64_t n;
    ssize_t r = read(q->commit_fd, &n, sizeof(n));
    (void)r;
}

/* ------------------------------------------------------------ start / stop */

int tg_wq_start(struct tg_wqueue *q, const char *name, tg_wq_run_fn run, void *arg, char *err,
                size_t errlen)
{
    int rc;
    memset(q, 0, sizeof(*q));
    q->run = run;
    q->arg = arg;
    q->numbered = tg_calloc(TG_STORE_AUDIT_REMEMBER, sizeof(*q->numbered));
    if (!q->numbered) {
        tg_store_set_err(err, errlen, "store %s: out of memory", name);
        return TG_E_NOMEM;
    }
    q->commit_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->commit_fd < 0) {
        tg_store_set_err(err, errlen, "store %s: eventfd: %s", name, strerror(errno));
        tg_free(q->numbered);
        return TG_E_IO;
    }
    rc = pthread_mutex_init(&q->mu, NULL);
    if (rc == 0) {
        rc = pthread_cond_init(&q->work_cv, NULL);
        if (rc == 0) {
            rc = pthread_cond_init(&q->done_cv, NULL);
            if (rc != 0)
                pthread_cond_destroy(&q->work_cv);
        }
        if (rc != 0)
            pthread_mutex_destroy(&q->mu);
    }
    if (rc == 0) {
        rc = pthread_create(&q->writer, NULL, writer_main, q);
        if (rc != 0) {
            pthread_cond_destroy(&q->done_cv);
            pthread_cond_destroy(&q->work_cv);
            pthread_mutex_destroy(&q->mu);
        }
    }
    if (rc != 0) {
        close(q->commit_fd);
        q->commit_fd = -1;
        tg_free(q->numbered);
        tg_store_set_err(err, errlen, "store %s: cannot start the writer thread: %s", name,
                         strerror(rc));
        return TG_E_INTERNAL;
    }
    q->started = true;
    return TG_OK;
}

int tg_wq_stop(struct tg_wqueue *q)
{
    if (!q->started)
        return TG_OK;
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_signal(&q->work_cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->writer, NULL);
    pthread_cond_destroy(&q->done_cv);
    pthread_cond_destroy(&q->work_cv);
    pthread_mutex_destroy(&q->mu);
    free_jobs(q->head);
    close(q->commit_fd);
    tg_free(q->numbered);
    q->started = false;
    return q->err;
}

/* ------------------------------------------------------------ numbering leaves */

int tg_wq_number_leaf(const char *name, struct job *j, const struct tg_range *r,
                      struct tg_range *next)
{
    bool assign = j->u.audit.index == WQ_NEXT_LEAF || j->numbered;
    int rc;
    if (!assign && j->u.audit.index != r->size) {
        tg_error("store %s: audit leaf %llu out of order, expected %llu", name,
                 (unsigned long long)j->u.audit.index, (unsigned long long)r->size);
        return TG_E_CONFLICT;
    }
    tg_range_copy(next, r);
    rc = tg_range_push(next, j->u.audit.leaf_hash);
    if (rc == TG_OK && assign) {
        j->u.audit.index = r->size;
        rc = tg_range_root(next, j->u.audit.root);
        j->numbered = rc == TG_OK;
    }
    return rc;
}

void tg_wq_forget_numbers(struct job *j, struct job *end)
{
    for (; j != end; j = j->next) {
        if (j->numbered) {
            j->numbered = false;
            j->u.audit.index = WQ_NEXT_LEAF;
        }
    }
}
