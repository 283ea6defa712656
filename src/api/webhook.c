/*
 * webhook.c - signed notifications to the channels when a held answer is
 * settled (a reviewer decided, or the SLA handed the turn to a person), or
 * an alert goes out.
 *
 * Each configured webhook ({url, secret}) receives a JSON POST with the
 * headers
 *   X-Trustgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t "." body)>
 *   X-Trustgate-Delivery: <id>   (the same for every attempt: the receiver's idempotency key)
 * so the receiver can check origin and freshness and take a delivery once.
 *
 * Deliveries go through an outbox in the store: queue writes one blob
 * outbox/<ms>-<id> per target (for a settled review, in the transaction
 * that settles it: tg_review_on_settle), and it stays until the target answered 2xx,
 * so a delivery survives a restart and, on a store several nodes share,
 * the death of the node that wrote it (delivered at least once).  The
 * event loop looks at the outbox every half second and hands each due
 * delivery it could claim (the blob's lock, tg_store_trylock) to one
 * sender thread, whose blocking libcurl call is off the loop; a failure
 * is tried again after 0.5, 1, 2, 4 s (with jitter), five attempts in all,
 * then the delivery moves to outbox-failed/ with a log line.
 */
#include "api/api.h"

#include "config/config.h"
#include "store/store.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define ATTEMPTS 5
#define SCAN_MS 500
#define SCAN_MAX 64
#define INFLIGHT_MAX 64

/* One delivery taken from the outbox: on the sender's list, then the loop's. */
struct delivery {
    char key[96]; /* its blob */
    char id[33];  /* X-Trustgate-Delivery */
    const struct tg_webhook_conf *target;
    char *body;
    int attempts; /* before this one */
    bool ok;
    struct delivery *next;
};

struct tg_webhooks {
    const struct tg_webhook_conf *targets; /* borrowed from the config */
    size_t n_targets;
    struct event_base *base;
    struct tg_store *st;
    struct event *scan, *done_ev;
    int done_fd;
    char inflight[INFLIGHT_MAX][96]; /* keys handed to the sender, not back yet */
    size_t n_inflight;
    pthread_mutex_t mu; /* guards todo, done and stop */
    pthread_cond_t cv;
    struct delivery *todo, *done;
    bool stop;
    pthread_t thread;
    uint64_t delivered, failed;
};

static size_t discard_cb(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static bool post_once(CURL *e, const struct delivery *d)
{
    char sig[160], idh[64], ts[24], hex[2 * TG_SHA256_LEN + 1];
    uint8_t mac[TG_SHA256_LEN];
    struct tg_buf signed_part;
    long status = 0;
    snprintf(ts, sizeof(ts), "%lld", (long long)(tg_clock_wall_ms() / 1000));
    tg_buf_init(&signed_part, TG_BUF_UNLIMITED);
    tg_buf_printf(&signed_part, "%s.%s", ts, d->body);
    tg_hmac_sha256(d->target->secret, strlen(d->target->secret), signed_part.data, signed_part.len,
                   mac);
    tg_buf_free(&signed_part);
    tg_hex_encode(mac, sizeof(mac), hex);
    snprintf(sig, sizeof(sig), "X-Trustgate-Signature: t=%s,v1=%s", ts, hex);
    snprintf(idh, sizeof(idh), "X-Trustgate-Delivery: %s", d->id);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, sig);
    h = curl_slist_append(h, idh);
    h = curl_slist_append(h, "Expect:");
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, d->target->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_cb);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    bool ok = curl_easy_perform(e) == CURLE_OK &&
              curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status >= 200 &&
              status < 300;
    curl_slist_free_all(h);
    return ok;
}

/* The sender thread: one attempt per delivery, the outcome back to the loop. */
static void *sender_main(void *arg)
{
    struct tg_webhooks *w = arg;
    CURL *e = curl_easy_init();
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->todo && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->stop)
            break; /* what is left stays in the outbox for the next start */
        struct delivery *d = w->todo;
        w->todo = d->next;
        pthread_mutex_unlock(&w->mu);
        d->ok = e && post_once(e, d);
        pthread_mutex_lock(&w->mu);
        d->next = w->done;
        w->done = d;
        uint64_t one = 1;
        ssize_t wr = write(w->done_fd, &one, sizeof(one));
        (void)wr;
    }
    pthread_mutex_unlock(&w->mu);
    if (e)
        curl_easy_cleanup(e);
    return NULL;
}

static void free_delivery(struct delivery *d)
{
    tg_free(d->body);
    tg_free(d);
}

/* ------------------------------------------------------------ the outbox, on the loop */

static const struct tg_webhook_conf *target_of(const struct tg_webhooks *w, const char *url)
{
    for (size_t i = 0; i < w->n_targets; i++)
        if (!strcmp(w->targets[i].url, url))
            return &w->targets[i];
    return NULL;
}

static bool inflight(const struct tg_webhooks *w, const char *key)
{
    for (size_t i = 0; i < w->n_inflight; i++)
        if (!strcmp(w->inflight[i], key))
            return true;
    return false;
}

static void inflight_drop(struct tg_webhooks *w, const char *key)
{
    for (size_t i = 0; i < w->n_inflight; i++)
        if (!strcmp(w->inflight[i], key)) {
            memcpy(w->inflight[i], w->inflight[--w->n_inflight], sizeof(w->inflight[i]));
            return;
        }
}

/* Write a delivery's blob: attempts made and when the next one is due
 * (queued: committed by shared_commit or the next group). */
static int outbox_put(struct tg_webhooks *w, const char *key, const char *id, const char *url,
                      const char *body, int attempts, int64_t next_ms)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:I}", "key", key, "id", id, "url", url,
                          "body", body, "attempts", attempts, "next_ms", (json_int_t)next_ms);
    char *s = j ? tg_json_dumps(j, JSON_COMPACT) : NULL;
    int rc = s ? tg_store_blob_put(w->st, key, s, strlen(s)) : TG_E_NOMEM;
    free(s);
    json_decref(j);
    return rc;
}

/* On a store other nodes share, commit the outbox's changes before another
 * node may look (and before this one lets go of an entry's lock). */
static void shared_commit(struct tg_webhooks *w)
{
    if (tg_store_shared(w->st))
        tg_store_flush(w->st);
}

/* Hand one outbox entry to the sender if it is due and this node may claim it. */
static void take(struct tg_webhooks *w, const json_t *entry, int64_t now)
{
    const char *key = tg_json_str(entry, "key", ""), *url = tg_json_str(entry, "url", "");
    const struct tg_webhook_conf *target = target_of(w, url);
    char *still = NULL;
    size_t len;
    if (!key[0] || tg_json_int(entry, "next_ms", 0) > now || inflight(w, key) ||
        w->n_inflight == INFLIGHT_MAX || !tg_str_has_prefix(key, "outbox/"))
        return;
    if (!target) {
        tg_warn("webhook %s: no longer configured; its delivery %s is dropped", url, key);
        tg_store_blob_delete(w->st, key);
        return;
    }
    if (tg_store_trylock(w->st, key) != TG_OK)
        return; /* another node is delivering it */
    /* delivered by another node since the list was read: its blob is gone */
    if (tg_store_blob_get(w->st, key, &still, &len) != TG_OK) {
        tg_store_unlock(w->st, key);
        return;
    }
    tg_free(still);
    struct delivery *d = tg_calloc(1, sizeof(*d));
    if (d)
        d->body = tg_strdup(tg_json_str(entry, "body", ""));
    if (!d || !d->body) {
        if (d)
            free_delivery(d);
        tg_store_unlock(w->st, key);
        return;
    }
    tg_strlcpy(d->key, key, sizeof(d->key));
    tg_strlcpy(d->id, tg_json_str(entry, "id", ""), sizeof(d->id));
    d->target = target;
    d->attempts = (int)tg_json_int(entry, "attempts", 0);
    tg_strlcpy(w->inflight[w->n_inflight++], key, sizeof(w->inflight[0]));
    pthread_mutex_lock(&w->mu);
    d->next = w->todo;
    w->todo = d;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void scan_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_webhooks *w = arg;
    json_t *list = NULL, *entry;
    size_t i;
    int64_t now = tg_clock_wall_ms();
    if (tg_store_blob_list(w->st, "outbox/", SCAN_MAX, &list) == TG_OK) {
        json_array_foreach(list, i, entry) take(w, entry, now);
    }
    json_decref(list);
}

/* A delivery's outcome: gone from the outbox, tried again later, or failed for good. */
static void settle(struct tg_webhooks *w, struct delivery *d)
{
    int64_t now = tg_clock_wall_ms();
    if (d->ok) {
        w->delivered++;
        tg_store_blob_delete(w->st, d->key);
    } else if (d->attempts + 1 >= ATTEMPTS) {
        char dead[112];
        w->failed++;
        tg_warn("webhook %s: delivery %s not taken after %d attempts; kept in outbox-failed/",
                d->target->url, d->id, ATTEMPTS);
        snprintf(dead, sizeof(dead), "outbox-failed/%s", d->key + strlen("outbox/"));
        outbox_put(w, dead, d->id, d->target->url, d->body, ATTEMPTS, 0);
        tg_store_blob_delete(w->st, d->key);
    } else {
        uint8_t r = 0;
        tg_random_bytes(&r, 1);
        /* 0.5 s, 1 s, 2 s, 4 s, with jitter */
        int64_t wait = ((int64_t)250 << (d->attempts + 1)) + r % 100;
        outbox_put(w, d->key, d->id, d->target->url, d->body, d->attempts + 1, now + wait);
    }
    shared_commit(w);
    tg_store_unlock(w->st, d->key);
    inflight_drop(w, d->key);
    free_delivery(d);
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct tg_webhooks *w = arg;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof(n));
    (void)r;
    pthread_mutex_lock(&w->mu);
    struct delivery *list = w->done;
    w->done = NULL;
    pthread_mutex_unlock(&w->mu);
    while (list) {
        struct delivery *d = list;
        list = d->next;
        settle(w, d);
    }
}

/* ------------------------------------------------------------ start, notify, stop */

struct tg_webhooks *tg_webhooks_start(const struct tg_webhook_conf *targets, size_t n,
                                      struct event_base *base, struct tg_store *st)
{
    if (!n)
        return NULL;
    struct tg_webhooks *w = tg_calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->targets = targets;
    w->n_targets = n;
    w->base = base;
    w->st = st;
    w->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->scan = event_new(base, -1, EV_PERSIST, scan_cb, w);
    w->done_ev =
        w->done_fd >= 0 ? event_new(base, w->done_fd, EV_READ | EV_PERSIST, done_cb, w) : NULL;
    struct timeval every = {0, SCAN_MS * 1000};
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (!w->scan || !w->done_ev || event_add(w->scan, &every) || event_add(w->done_ev, NULL) ||
        pthread_create(&w->thread, NULL, sender_main, w) != 0) {
        if (w->scan)
            event_free(w->scan);
        if (w->done_ev)
            event_free(w->done_ev);
        if (w->done_fd >= 0)
            close(w->done_fd);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        tg_free(w);
        return NULL;
    }
    return w;
}

int tg_webhooks_queue(struct tg_webhooks *w, const json_t *event)
{
    if (!w)
        return TG_OK;
    char *body = tg_json_dumps(event, JSON_COMPACT);
    int64_t now = tg_clock_wall_ms();
    int rc = body ? TG_OK : TG_E_NOMEM;
    for (size_t i = 0; !rc && i < w->n_targets; i++) {
        /* the same event to the same target is the same delivery, whichever node sends it */
        char id[33], key[96], hex[2 * TG_SHA256_LEN + 1];
        uint8_t h[TG_SHA256_LEN];
        struct tg_buf b;
        tg_buf_init(&b, TG_BUF_UNLIMITED);
        rc = tg_buf_printf(&b, "%s\n%s", w->targets[i].url, body);
        if (!rc)
            tg_sha256(b.data, b.len, h);
        tg_buf_free(&b);
        tg_hex_encode(h, sizeof(h), hex);
        tg_strlcpy(id, hex, sizeof(id));
        snprintf(key, sizeof(key), "outbox/%013" PRId64 "-%s", now, id);
        if (!rc)
            rc = outbox_put(w, key, id, w->targets[i].url, body, 0, now);
        if (rc)
            tg_error("webhook %s: the delivery could not be stored: %s", w->targets[i].url,
                     tg_err_str(rc));
    }
    free(body);
    return rc;
}

void tg_webhooks_notify(struct tg_webhooks *w, const json_t *event)
{
    if (w && tg_webhooks_queue(w, event) == TG_OK)
        shared_commit(w);
}

void tg_webhooks_stop(struct tg_webhooks *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    event_free(w->scan);
    event_free(w->done_ev);
    close(w->done_fd);
    struct delivery *lists[2] = {w->todo, w->done};
    for (int k = 0; k < 2; k++)
        while (lists[k]) {
            struct delivery *d = lists[k];
            lists[k] = d->next;
            free_delivery(d); /* their blobs stay: delivered after the next start */
        }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    tg_free(w);
}
