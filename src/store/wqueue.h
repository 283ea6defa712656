/*
 * wqueue.h - the write queue every store backend shares (private to
 * src/store).
 *
 * A public write copies its arguments into one allocation (a job) and
 * appends it to a queue under a mutex; it never touches the database.  A
 * writer thread of the queue's own takes every job queued so far and hands
 * the list to the backend's run_batch, which commits them in one
 * transaction (group commit), so a burst of writes costs one commit.  The
 * first failed batch is kept as the store's sticky error.  Acknowledgement
 * tickets, flush and an eventfd readable after every commit report
 * progress (store.h).
 *
 * The queue holds at most WQ_MAX_BYTES of jobs.  Past that a write waits
 * for the writer to catch up: memory stays bounded when the database cannot
 * keep up, at the price of the caller waiting in that (overload) case only.
 *
 * The writer thread itself never allocates through tg_malloc, so
 * tg_mem_fail_after() counts only the caller's allocations and
 * failure-injection tests stay deterministic.
 */
#ifndef TG_STORE_WQUEUE_H
#define TG_STORE_WQUEUE_H

#include "store/store.h"
#include "audit/range.h"

#include <pthread.h>

#define WQ_MAX_BYTES ((size_t)64 << 20)
#define WQ_JOB_MAX_BYTES ((size_t)32 << 20) /* one write larger than this is refused */

enum job_kind {
    JOB_CONVERSATION,
    JOB_MESSAGE,
    JOB_TURN,
    JOB_REVIEW,
    JOB_AUDIT,
    JOB_BLOB,
    JOB_HANDOFF,
    JOB_TELL /* u.blob: key the task's id, data "ID TEXT"; only on a shared store */
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

/* An audit job's index when the writer is to give it the next one (and
 * the tree head after it); a turn job's audit_idx when its record is the
 * leaf the queue appended last. */
#define WQ_NEXT_LEAF UINT64_MAX
#define WQ_LAST_LEAF (-2)

/* One queued write.  Every pointer inside u points into extra[]. */
struct job {
    struct job *next;
    enum job_kind kind;
    size_t size;  /* counted against WQ_MAX_BYTES */
    uint64_t seq; /* its place in the queue: 1, 2, ... (a ticket) */
    /* a conversation's turn (tg_store_conversation_step): 0 put as given,
     * 1 one more turn, 2 one more degraded turn */
    int step;
    /* an appended audit leaf (index WQ_NEXT_LEAF when queued): the backend
     * writes the index and root it gave into u.audit and sets numbered */
    bool numbered;
    /* queued between tg_wq_hold and tg_wq_release by one caller: a
     * non-zero number shared by that act's jobs, which commit together */
    uint64_t group;
    bool dropped; /* its group was released without keeping it */
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

/*
 * Commit a batch (a list of jobs in queue order) in one transaction, on
 * the writer thread; TG_OK or the first error.  The queue frees the jobs.
 * An audit job queued with index WQ_NEXT_LEAF gets its index and root
 * from the backend, which marks it numbered once that is committed.
 */
typedef int (*tg_wq_run_fn)(void *arg, struct job *batch);

/* What the writer remembers of the leaves it numbered. */
struct wq_numbered {
    uint64_t seq, index;
};

struct tg_wqueue {
    tg_wq_run_fn run;
    void *arg;
    bool started;
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
    int64_t group_ns;             /* wait this long for more jobs before a commit */
    int flushers;                 /* callers blocked in flush: commit at once */
    int holds;                    /* callers between hold and release: take no batch */
    uint64_t groups;              /* the last group number given */
    uint64_t wanted;              /* the highest ticket someone waits for: commit at once */
    int commit_fd;                /* eventfd: readable after every commit */
    struct wq_numbered *numbered; /* TG_STORE_AUDIT_REMEMBER, by seq modulo */
};

/*
 * Everything this thread queues from tg_wq_hold to tg_wq_release goes to
 * the backend in one batch (one transaction): the writer takes no batch
 * while a hold is on, and the jobs carry one group number.  Released
 * without keep, they are dropped from the queue instead.  The caller must
 * not flush or wait for a ticket in between; holds do not nest.
 */
void tg_wq_hold(struct tg_wqueue *q);
void tg_wq_release(struct tg_wqueue *q, bool keep);
/* The end of j's group: the first job after j and the jobs queued right
 * behind it in its group (j->next when j is in none). */
struct job *tg_wq_group_end(struct job *j);
/* Start the writer thread with run(arg, batch) as the backend's commit.
 * TG_OK, or an error with a message in err naming `name`. */
int tg_wq_start(struct tg_wqueue *q, const char *name, tg_wq_run_fn run, void *arg, char *err,
                size_t errlen);
/* Commit what is queued, stop the writer and free what the queue holds;
 * the first write error, or TG_OK.  A queue never started: nothing. */
int tg_wq_stop(struct tg_wqueue *q);

/*
 * For a backend's run_batch: number audit job j against the log's compact
 * range r (the leaves committed before it).  A leaf queued with
 * WQ_NEXT_LEAF gets index r->size and the tree head after it; one that
 * brought its index must bring r->size (else TG_E_CONFLICT, logged with
 * name).  On TG_OK *next is r with the leaf pushed, for the backend to
 * keep once the leaf is written.
 */
int tg_wq_number_leaf(const char *name, struct job *j, const struct tg_range *r,
                      struct tg_range *next);
/* Forget the numbers of the jobs from j up to end (NULL: the list's end),
 * rolled back. */
void tg_wq_forget_numbers(struct job *j, struct job *end);

/* The writes of store.h, arguments already checked and made private. */
/* step: 0 put c as given, else one more turn (2: a degraded one; struct job). */
int tg_wq_conversation_put(struct tg_wqueue *q, const struct tg_conversation *c, int step);
int tg_wq_message_add(struct tg_wqueue *q, const struct tg_message *m);
int tg_wq_turn_put(struct tg_wqueue *q, const char *turn_id, const char *conversation_id,
                   const char *decision, int64_t created_ms, const char *record, size_t rl,
                   int64_t audit_idx);
int tg_wq_review_put(struct tg_wqueue *q, const struct tg_review_row *r, const json_t *task);
int tg_wq_handoff_add(struct tg_wqueue *q, const struct tg_handoff_msg *m);
int tg_wq_audit_put(struct tg_wqueue *q, const struct tg_audit_row *row);
/* row->index WQ_NEXT_LEAF: the writer numbers it; *seq (may be NULL) its seq. */
int tg_wq_audit_append(struct tg_wqueue *q, const struct tg_audit_row *row, uint64_t *seq);
/* The index the append numbered seq got, once committed, else TG_E_NOTFOUND. */
int tg_wq_audit_index(struct tg_wqueue *q, uint64_t seq, uint64_t *index);
/* data NULL: delete the key. */
int tg_wq_blob_put(struct tg_wqueue *q, const char *key, const void *data, size_t len);
/* Tell the other processes sharing the store text for task id on commit. */
int tg_wq_tell(struct tg_wqueue *q, const char *id, const char *text);

int tg_wq_flush(struct tg_wqueue *q);
uint64_t tg_wq_ticket(struct tg_wqueue *q);
uint64_t tg_wq_committed(struct tg_wqueue *q, int *err);
int tg_wq_commit_fd(struct tg_wqueue *q);
void tg_wq_commit_drain(struct tg_wqueue *q);
void tg_wq_set_group_commit(struct tg_wqueue *q, int64_t ms);

#endif
