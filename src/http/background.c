/*
 * background.c - work that reads the whole store (experiment reports, the
 * fairness gate, audit proofs) runs on one worker thread with its own
 * handle on the store, so the event loop keeps answering customers while
 * it scans.  The loop flushes the store before handing a job over (the
 * worker reads what was committed), and gets the result back through a
 * pipe: it then runs the job's follow-up (alerts, freezes) and answers the
 * request.  See api_int.h (tg_api_background).
 */
#include "http/api_int.h"

#include "pipeline/pipeline.h"
#include "store/store.h"

#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct job {
    struct job *next;
    struct tg_http_req *req; /* NULL for a job of the server's own (a timer) */
    char route[64];
    tg_api_work_fn work;
    tg_api_then_fn then;
    void *arg;
    void (*free_arg)(void *);
    json_t *result;
    char err[256];
};

struct tg_background {
    struct tg_api *api;
    pthread_t thread;
    bool started, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *todo, *todo_tail, *done;
    int pipe_rd, pipe_wr;
    struct event *ev;
    struct tg_store *st; /* the worker's own handle, opened on its first job */
};

static void *worker(void *arg)
{
    struct tg_background *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->todo && !b->stop)
            pthread_cond_wait(&b->cv, &b->mu);
        if (b->stop)
            break;
        struct job *j = b->todo;
        b->todo = j->next;
        if (!b->todo)
            b->todo_tail = NULL;
        pthread_mutex_unlock(&b->mu);

        if (!b->st && tg_store_open(b->api->p->store_uri, &b->st, j->err, sizeof(j->err)))
            b->st = NULL;
        else
            j->result = j->work(b->st, j->arg, j->err, sizeof(j->err));
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
    if (j->then)
        j->then(api, j->result, j->arg);
    if (j->req) {
        if (j->result)
            tg_api_send_json(api, j->req, j->route, 200, json_incref(j->result));
        else
            tg_api_send_error(api, j->req, j->route, 503, "server_error", "storage_unavailable",
                              j->err[0] ? j->err : "the store could not be read");
    }
    json_decref(j->result);
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
    int fds[2];
    if (!b)
        return TG_E_NOMEM;
    b->api = api;
    b->pipe_rd = b->pipe_wr = -1;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    api->background = b;
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
        return TG_E_IO;
    b->pipe_rd = fds[0];
    b->pipe_wr = fds[1];
    b->ev = event_new(api->p->base, b->pipe_rd, EV_READ | EV_PERSIST, done_cb, b);
    if (!b->ev || event_add(b->ev, NULL) || pthread_create(&b->thread, NULL, worker, b))
        return TG_E_INTERNAL;
    b->started = true;
    return TG_OK;
}

int tg_api_background(struct tg_api *api, struct tg_http_req *req, const char *route,
                      tg_api_work_fn work, tg_api_then_fn then, void *arg, void (*free_arg)(void *))
{
    struct job *j = tg_calloc(1, sizeof(*j));
    if (!j || (!api->background && start(api)) || !api->background->started) {
        tg_free(j);
        if (free_arg)
            free_arg(arg);
        if (req)
            tg_api_send_error(api, req, route, 503, "server_error", "unavailable",
                              "the background worker could not be started");
        return TG_E_INTERNAL;
    }
    struct tg_background *b = api->background;
    j->req = req;
    tg_strlcpy(j->route, route, sizeof(j->route));
    j->work = work;
    j->then = then;
    j->arg = arg;
    j->free_arg = free_arg;
    /* the worker reads committed data: commit what this loop queued */
    tg_store_flush(api->p->store);
    pthread_mutex_lock(&b->mu);
    if (b->todo_tail)
        b->todo_tail->next = j;
    else
        b->todo = j;
    b->todo_tail = j;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return TG_OK;
}

void tg_api_background_stop(struct tg_api *api)
{
    struct tg_background *b = api->background;
    if (!b)
        return;
    if (b->started) {
        pthread_mutex_lock(&b->mu);
        b->stop = true;
        pthread_cond_signal(&b->cv);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->thread, NULL);
    }
    /* what finished is answered; what never ran is refused */
    done_cb(b->pipe_rd, EV_READ, b);
    for (struct job *j = b->todo, *next; j; j = next) {
        next = j->next;
        snprintf(j->err, sizeof(j->err), "the server is stopping");
        finish(b, j);
    }
    if (b->ev)
        event_free(b->ev);
    if (b->pipe_rd >= 0)
        close(b->pipe_rd);
    if (b->pipe_wr >= 0)
        close(b->pipe_wr);
    tg_store_close(b->st);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    tg_free(b);
    api->background = NULL;
}
