/*
 * webhook.c - signed notifications to the channels when a held answer is
 * settled (a reviewer decided, or the SLA handed the turn to a person).
 *
 * Each configured webhook ({url, secret}) receives a JSON POST with the
 * header
 *   X-Trustgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t "." body)>
 * so the receiver can check origin and freshness.  Deliveries run on one
 * sender thread with blocking libcurl calls, off the event loop; a failed
 * delivery (no 2xx) is retried with exponential backoff and jitter
 * (0.5 s, 1 s, 2 s, 4 s: five attempts), then dropped with a log line.
 */
#include "api/api.h"

#include "config/config.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct delivery {
    char *url, *secret, *body;
    struct delivery *next;
};

struct tg_webhooks {
    const struct tg_webhook_conf *targets; /* borrowed from the config */
    size_t n_targets;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct delivery *head, *tail;
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
    char sig[160], ts[24], hex[2 * TG_SHA256_LEN + 1];
    uint8_t mac[TG_SHA256_LEN];
    struct tg_buf signed_part;
    long status = 0;
    snprintf(ts, sizeof(ts), "%lld", (long long)(tg_clock_wall_ms() / 1000));
    tg_buf_init(&signed_part, TG_BUF_UNLIMITED);
    tg_buf_printf(&signed_part, "%s.%s", ts, d->body);
    tg_hmac_sha256(d->secret, strlen(d->secret), signed_part.data, signed_part.len, mac);
    tg_buf_free(&signed_part);
    tg_hex_encode(mac, sizeof(mac), hex);
    snprintf(sig, sizeof(sig), "X-Trustgate-Signature: t=%s,v1=%s", ts, hex);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, sig);
    h = curl_slist_append(h, "Expect:");
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, d->url);
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

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void *sender_main(void *arg)
{
    struct tg_webhooks *w = arg;
    CURL *e = curl_easy_init();
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->head)
            break;
        struct delivery *d = w->head;
        w->head = d->next;
        if (!w->head)
            w->tail = NULL;
        bool stopping = w->stop;
        pthread_mutex_unlock(&w->mu);
        bool ok = false;
        for (int attempt = 0; e && attempt < (stopping ? 1 : 5) && !ok; attempt++) {
            if (attempt) {
                uint8_t r = 0;
                tg_random_bytes(&r, 1);
                sleep_ms((int64_t)250 << attempt | (r % 100)); /* 0.5 s, 1 s, 2 s, 4 s + jitter */
            }
            ok = post_once(e, d);
        }
        if (!ok)
            tg_warn("webhook %s: not delivered after retries", d->url);
        pthread_mutex_lock(&w->mu);
        if (ok)
            w->delivered++;
        else
            w->failed++;
        tg_free(d->url);
        tg_free(d->secret);
        tg_free(d->body);
        tg_free(d);
    }
    pthread_mutex_unlock(&w->mu);
    if (e)
        curl_easy_cleanup(e);
    return NULL;
}

struct tg_webhooks *tg_webhooks_start(const struct tg_webhook_conf *targets, size_t n)
{
    if (!n)
        return NULL;
    struct tg_webhooks *w = tg_calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->targets = targets;
    w->n_targets = n;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, sender_main, w) != 0) {
        tg_free(w);
        return NULL;
    }
    return w;
}

void tg_webhooks_notify(struct tg_webhooks *w, const json_t *event)
{
    if (!w)
        return;
    char *body = tg_json_dumps(event, JSON_COMPACT);
    for (size_t i = 0; i < w->n_targets; i++) {
        struct delivery *d = body ? tg_calloc(1, sizeof(*d)) : NULL;
        if (!d)
            continue;
        d->url = tg_strdup(w->targets[i].url);
        d->secret = tg_strdup(w->targets[i].secret);
        d->body = tg_strdup(body);
        if (!d->url || !d->secret || !d->body) {
            tg_free(d->url);
            tg_free(d->secret);
            tg_free(d->body);
            tg_free(d);
            continue;
        }
        pthread_mutex_lock(&w->mu);
        if (w->tail)
            w->tail->next = d;
        else
            w->head = d;
        w->tail = d;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    free(body);
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
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    tg_free(w);
}
