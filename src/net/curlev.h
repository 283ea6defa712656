/*
 * curlev.h - a libcurl multi handle driven by a libevent loop: the one
 * piece of glue every upstream client of the gateway shares (the chat
 * backend, the embeddings client).
 *
 * The owner adds easy handles it configured itself; when a transfer ends
 * (done, failed or aborted by a callback) done_cb is called from the loop
 * with the easy handle and curl's result, after the handle was removed from
 * the multi handle, so the callback may clean it up, reuse it or add it
 * again.  The multi handle is the keep-alive pool of its owner.
 *
 * Ownership: struct tg_curlev belongs to its creator and borrows the event
 * base, which must outlive it.  Used from the loop's thread only.
 */
#ifndef TG_CURLEV_H
#define TG_CURLEV_H

#include <curl/curl.h>

struct event_base;
struct tg_curlev;

typedef void (*tg_curlev_done_cb)(CURL *easy, CURLcode result, void *arg);

/*
 * Create the glue on base with at most max_connections kept to any one host
 * (0: curl's default).  done_cb and arg receive every finished transfer.
 * TG_OK or TG_E_NOMEM (*out untouched).
 */
int tg_curlev_create(struct event_base *base, long max_connections, tg_curlev_done_cb done_cb,
                     void *arg, struct tg_curlev **out);
/* Start a transfer; TG_E_UPSTREAM when curl refuses the handle. */
int tg_curlev_add(struct tg_curlev *cv, CURL *easy);
/* Take a transfer off before it ends (done_cb is not called for it). */
void tg_curlev_remove(struct tg_curlev *cv, CURL *easy);
/* Free the glue; transfers still running are dropped without callbacks.  NULL is a no-op. */
void tg_curlev_free(struct tg_curlev *cv);

#endif
