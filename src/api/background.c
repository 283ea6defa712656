/*
 * background.c - reads that would stall the event loop run on worker
 * threads, each with its own handle on the store, so the loop keeps
 * answering customers meanwhile.  Two lanes, one thread each: scans whose
 * cost grows with the data (review statistics, experiment reports, the
 * fairness gate, audit proofs, the release registry), and bounded reads
 * (review lists of at most a few hundred tasks, the release registry), so
 * a reviewer's queue never waits behind a supervisor's statistics.  A job reaches its lane
 * once every write the loop queued before it is committed (the loop waits
 * for that without blocking: tg_pipeline_after_commit), and its result
 * comes back through a pipe: the loop then runs the job's follow-up
 * (alerts, freezes) and answers the requests.  A shared job answers every
 * request that asked for the same read before its lane started it, so
 * many pollers cost one scan.  See api_int.h (tg_api_background).
 */
#include "api/api_int.h"

#include "metrics/metrics.h"
#include "pipeline/pipeline.h"
#include "store/store.h"

#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SHARED_MAX 64 /* requests one shared job answers; more start a new job */
#define LANE_NICE 5   /* the lanes' CPU priority (on Linux each thread has its own) */

enum lane_id { LANE_SCAN, LANE_BOUNDED, LANES };

struct job {
    struct tg_commit_wait wait; /* first: the commit wait's callback finds the job */
    struct tg_background *b;
    enum lane_id lane;
    struct job *next;
    struct job *next_shared;              /* in b->shared while it may take more requests */
    bool shared, started;                 /* started: the worker took it (written under b->mu) */
    struct tg_http_req *reqs[SHARED_MAX]; /* none for a job of the server's own (a timer) */
    size_t nreqs;
    char route[64];
    tg_api_work_fn work;
    tg_api_then_fn then;
    void *arg;
    void (*free_arg)(void *);
    json_t *result;
    char *text; /* the result as sent, made on the worker when no follow-up may change it */
    char err[256];
};

struct lane {
    struct tg_background *b;
    pthread_t thread;
    bool running;
    pthread_cond_t cv;
    struct job *todo, *todo_tail; /* under b->mu */
    struct tg_store *st;          /* the lane's own handle, opened on its first job */
};

struct tg_background {
    struct tg_api *api;
    bool started, stop; /* started: every lane runs */
    pthread_mutex_t mu;
    struct lane lanes[LANES];
    struct job *done;   /* under mu */
    struct job *shared; /* shared jobs not answered yet (the loop's list) */
    int pipe_rd, pipe_wr;
    struct event *ev;
};

static void *worker(void *arg)
{
    struct lane *l = arg;
    struct tg_background *b = l->b;
    /* background reads give way to the loop and the store's writer when
     * the CPUs are busy; a thread that may not lower its priority runs all
     * the same */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), LANE_NICE) != 0) {
    }
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!l->todo && !b->stop)
            pthread_cond_wait(&l->cv, &b->mu);
        if (b->stop)
            break;
        struct job *j = l->todo;
        l->todo = j->next;
        if (!l->todo)
            l->todo_tail = NULL;
        j->started = true;
        pthread_mutex_unlock(&b->mu);

        if (!l->st && tg_pipeline_store_handle(b->api->p, &l->st, j->err, sizeof(j->err)))
            l->st = NULL;
        else
            j->result = j->work(l->st, j->arg, j->err, sizeof(j->err));
        /* a long answer is written out here too, not on the loop */
        if (j->result && !j->then && j->nreqs)
            j->text = tg_json_dumps(j->result, JSON_COMPACT);
        if (!j->result && !j->err[0])
            snprintf(j->err, sizeof(j->err), "the store could not be read");

        pthread_mutex_lock(&b->mu);
        j->next = b->done;
        b->done = j;
        pthread_mutex_unlock(&b->mu);
        char one = 1;
        if (write(b->pipe_wr, &one, 1) < 0) {
            /* the loop drains the pipe; a full pipe already wakes it */
        }
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static void finish(struct tg_background *b, struct job *j)
{
    struct tg_api *api = b->api;
    if (j->shared) {
        struct job **pp = &b->shared;
        while (*pp && *pp != j)
            pp = &(*pp)->next_shared;
        if (*pp)
            *pp = j->next_shared;
    }
    /* a result its follow-up could not finish is not sent half made */
    bool unfinished = j->then && j->then(api, j->result, j->arg) != TG_OK;
    if (unfinished) {
        json_decref(j->result);
        j->result = NULL;
    }
    for (size_t i = 0; i < j->nreqs; i++) {
        if (unfinished) {
            tg_api_send_json(api, j->reqs[i], j->route, 200, NULL); /* 500 out of memory */
        } else if (j->text) {
            tg_metrics_request(api->p->metrics, j->route, 200);
            tg_http_respond(j->reqs[i], 200, "application/json", NULL, j->text, strlen(j->text));
        } else if (j->result)
            tg_api_send_json(api, j->reqs[i], j->route, 200, json_incref(j->result));
        else
            tg_api_send_error(api, j->reqs[i], j->route, 503, "server_error", "storage_unavailable",
                              j->err[0] ? j->err : "the store could not be read");
    }
    json_decref(j->result);
    free(j->text);
    if (j->free_arg)
        j->free_arg(j->arg);
    tg_free(j);
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tg_background *b = arg;
    char buf[64];
    (void)what;
    while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0) {
    }
    pthread_mutex_lock(&b->mu);
    struct job *list = b->done;
    b->done = NULL;
    pthread_mutex_unlock(&b->mu);
    while (list) {
        struct job *next = list->next;
        finish(b, list);
        list = next;
    }
}

static int start(struct tg_api *api)
{
    struct tg_background *b = tg_calloc(1, sizeof(*b));
    int fds[2], rc = TG_OK;
    if (!b)
        return TG_E_NOMEM;
    b->api = api;
    b->pipe_rd = b->pipe_wr = -1;
    pthread_mutex_init(&b->mu, NULL);
    for (int i = 0; i < LANES; i++) {
        b->lanes[i].b = b;
        pthread_cond_init(&b->lanes[i].cv, NULL);
    }
    api->background = b;
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
        return TG_E_IO;
    b->pipe_rd = fds[0];
    b->pipe_wr = fds[1];
    b->ev = event_new(api->p->base, b->pipe_rd, EV_READ | EV_PERSIST, done_cb, b);
    if (!b->ev || event_add(b->ev, NULL))
        rc = TG_E_INTERNAL;
    for (int i = 0; i < LANES && !rc; i++) {
        if (pthread_create(&b->lanes[i].thread, NULL, worker, &b->lanes[i]))
            rc = TG_E_INTERNAL;
        else
            b->lanes[i].running = true;
    }
    b->started = rc == TG_OK;
    return rc;
}

/* The commit every write queued before the job came: hand it to the worker. */
static void committed_cb(struct tg_commit_wait *w, int err)
{
    struct job *j = (struct job *)w;
    struct tg_background *b = j->b;
    /* a store that cannot commit still has what was committed before: the
     * read goes ahead, as a flush's error never stopped it either */
    (void)err;
    struct lane *l = &b->lanes[j->lane];
    pthread_mutex_lock(&b->mu);
    if (l->todo_tail)
        l->todo_tail->next = j;
    else
        l->todo = j;
    l->todo_tail = j;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&b->mu);
}

/* Add req to a shared job for (route, work) that its lane has not started
 * and that has room for one more request; false when there is none. */
static bool join(struct tg_background *b, const char *route, tg_api_work_fn work,
                 struct tg_http_req *req)
{
    struct job *found = NULL;
    pthread_mutex_lock(&b->mu);
    for (struct job *j = b->shared; j && !found; j = j->next_shared) {
        if (!j->started && j->work == work && j->nreqs < SHARED_MAX && !strcmp(j->route, route))
            found = j;
    }
    /* joined under the lock: the lane cannot start it in between */
    if (found)
        found->reqs[found->nreqs++] = req;
    pthread_mutex_unlock(&b->mu);
    return found != NULL;
}

/* Hand a filled-in job over: to the shared list when it is shared, to its
 * lane once this loop's queued writes are committed. */
static void enqueue(struct tg_api *api, struct job *j)
{
    struct tg_background *b = j->b;
    if (j->shared) {
        j->next_shared = b->shared;
        b->shared = j;
    }
    j->wait.cb = committed_cb;
    tg_pipeline_after_commit(api->p, &j->wait);
}

static int submit(struct tg_api *api, struct tg_http_req *req, const char *route,
                  tg_api_work_fn work, tg_api_then_fn then, void *arg, void (*free_arg)(void *),
                  bool shared, enum lane_id lane)
{
    int rc = TG_OK;
    struct job *j = NULL;
    if (!api->background)
        start(api); /* on failure b->started stays false: refused below */
    struct tg_background *b = api->background;
    bool up = b && b->started;
    if (up && shared && req && join(b, route, work, req)) {
        if (free_arg)
            free_arg(arg);
        goto out;
    }
    if (!up || !(j = tg_calloc(1, sizeof(*j)))) {
        if (free_arg)
            free_arg(arg);
        if (req)
            tg_api_send_error(api, req, route, 503, "server_error", "unavailable",
                              "the background worker could not be started");
        rc = TG_E_INTERNAL;
        goto out;
    }
    *j = (struct job){.b = b,
                      .lane = lane,
                      .shared = shared,
                      .work = work,
                      .then = then,
                      .arg = arg,
                      .free_arg = free_arg};
    if (req)
        j->reqs[j->nreqs++] = req;
    tg_strlcpy(j->route, route, sizeof(j->route));
    enqueue(api, j);
out:
    return rc;
}

int tg_api_background(struct tg_api *api, struct tg_http_req *req, const char *route,
                      tg_api_work_fn work, tg_api_then_fn then, void *arg, void (*free_arg)(void *))
{
    return submit(api, req, route, work, then, arg, free_arg, false, LANE_SCAN);
}

int tg_api_background_bounded(struct tg_api *api, struct tg_http_req *req, const char *route,
                              tg_api_work_fn work, tg_api_then_fn then, void *arg,
                              void (*free_arg)(void *))
{
    return submit(api, req, route, work, then, arg, free_arg, false, LANE_BOUNDED);
}

int tg_api_background_shared(struct tg_api *api, struct tg_http_req *req, const char *route,
                             tg_api_work_fn work, void *arg, void (*free_arg)(void *))
{
    return submit(api, req, route, work, NULL, arg, free_arg, true, LANE_SCAN);
}

void tg_api_background_stop(struct tg_api *api)
{
    struct tg_background *b = api->background;
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->stop = true;
    for (int i = 0; i < LANES; i++)
        pthread_cond_signal(&b->lanes[i].cv);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < LANES; i++) {
        if (b->lanes[i].running)
            pthread_join(b->lanes[i].thread, NULL);
    }
    /* what finished is answered; what never ran is refused */
    done_cb(b->pipe_rd, EV_READ, b);
    for (int i = 0; i < LANES; i++) {
        for (struct job *j = b->lanes[i].todo, *next; j; j = next) {
            next = j->next;
            snprintf(j->err, sizeof(j->err), "the server is stopping");
            finish(b, j);
        }
        tg_store_close(b->lanes[i].st);
        pthread_cond_destroy(&b->lanes[i].cv);
    }
    if (b->ev)
        event_free(b->ev);
    if (b->pipe_rd >= 0)
        close(b->pipe_rd);
    if (b->pipe_wr >= 0)
        close(b->pipe_wr);
    pthread_mutex_destroy(&b->mu);
    tg_free(b);
    api->background = NULL;
}
