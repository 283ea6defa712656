/*
 * curlev.c - libcurl's multi socket interface on a libevent loop.
 *
 * curl says which sockets it waits on (socket_cb) and when it next wants to
 * be called (timer_cb); each socket gets a persistent libevent event, and
 * one timer stands for curl's.  After every action the finished transfers
 * are read from curl and handed to the owner.
 */
#include "net/curlev.h"

#include "core/core.h"

#include <event2/event.h>

struct tg_curlev {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    tg_curlev_done_cb done_cb;
    void *arg;
};

struct sockctx {
    struct event *ev;
};

static void check_done(struct tg_curlev *cv)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(cv->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        /* msg is invalid once the handle is removed */
        curl_multi_remove_handle(cv->multi, easy);
        cv->done_cb(easy, result, cv->arg);
    }
}

static void socket_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tg_curlev *cv = arg;
    int running = 0;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(cv->multi, fd, flags, &running);
    check_done(cv);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int action, void *userp, void *sockp)
{
    (void)easy;
    struct tg_curlev *cv = userp;
    struct sockctx *sc = sockp;
    if (action == CURL_POLL_REMOVE) {
        if (sc) {
            event_free(sc->ev);
            tg_free(sc);
            curl_multi_assign(cv->multi, fd, NULL);
        }
        return 0;
    }
    short kind = (short)((action & CURL_POLL_IN ? EV_READ : 0) |
                         (action & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    if (!sc) {
        sc = tg_calloc(1, sizeof(*sc));
        if (!sc)
            return -1;
        curl_multi_assign(cv->multi, fd, sc);
    } else {
        event_free(sc->ev);
    }
    sc->ev = event_new(cv->base, fd, kind, socket_event_cb, cv);
    if (!sc->ev)
        return -1;
    event_add(sc->ev, NULL);
    return 0;
}

static void multi_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_curlev *cv = arg;
    int running = 0;
    curl_multi_socket_action(cv->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(cv);
}

static int timer_cb(CURLM *multi, long ms, void *userp)
{
    (void)multi;
    struct tg_curlev *cv = userp;
    if (ms < 0) {
        evtimer_del(cv->timer);
    } else {
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        evtimer_add(cv->timer, &tv);
    }
    return 0;
}

int tg_curlev_create(struct event_base *base, long max_connections, tg_curlev_done_cb done_cb,
                     void *arg, struct tg_curlev **out)
{
    struct tg_curlev *cv = tg_calloc(1, sizeof(*cv));
    if (!cv)
        return TG_E_NOMEM;
    cv->base = base;
    cv->done_cb = done_cb;
    cv->arg = arg;
    cv->multi = curl_multi_init();
    cv->timer = evtimer_new(base, multi_timer_cb, cv);
    if (!cv->multi || !cv->timer) {
        tg_curlev_free(cv);
        return TG_E_NOMEM;
    }
    curl_multi_setopt(cv->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(cv->multi, CURLMOPT_SOCKETDATA, cv);
    curl_multi_setopt(cv->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(cv->multi, CURLMOPT_TIMERDATA, cv);
    if (max_connections > 0) {
        curl_multi_setopt(cv->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_connections);
        curl_multi_setopt(cv->multi, CURLMOPT_MAXCONNECTS, max_connections);
    }
    *out = cv;
    return TG_OK;
}

int tg_curlev_add(struct tg_curlev *cv, CURL *easy)
{
    return curl_multi_add_handle(cv->multi, easy) == CURLM_OK ? TG_OK : TG_E_UPSTREAM;
}

void tg_curlev_remove(struct tg_curlev *cv, CURL *easy)
{
    curl_multi_remove_handle(cv->multi, easy);
}

void tg_curlev_free(struct tg_curlev *cv)
{
    if (!cv)
        return;
    if (cv->multi)
        curl_multi_cleanup(cv->multi);
    if (cv->timer)
        event_free(cv->timer);
    tg_free(cv);
}
