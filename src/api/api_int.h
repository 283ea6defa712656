/*
 * api_int.h - private to src/api: what the API's route files share.
 */
#ifndef TG_HTTP_API_INT_H
#define TG_HTTP_API_INT_H

#include "api/api.h"

/* Answer with body (taken) as JSON, counting the request under route. */
void tg_api_send_json(struct tg_api *api, struct tg_http_req *req, const char *route, int status,
                      json_t *body);
/*
 * What a person's act tells others once it is on the record: the review
 * task (the answer's body) settles its turn's waiting customer, and up to
 * two live events about it go to the consoles.  Strings are static.
 */
struct tg_api_notice {
    bool settled;
    const char *events[2];
};
/*
 * Answer with body (taken) as JSON once every store write queued so far is
 * committed, publishing notice first (may be NULL); a store that cannot
 * commit answers 503 and publishes nothing.  route is a static string.
 */
void tg_api_send_committed(struct tg_api *api, struct tg_http_req *req, const char *route,
                           int status, json_t *body, const struct tg_api_notice *notice);
/* Answer with an OpenAI-style error, counting the request under route. */
void tg_api_send_error(struct tg_api *api, struct tg_http_req *req, const char *route, int status,
                       const char *type, const char *code, const char *message);
/* "Authorization: Bearer TOKEN" -> TOKEN, or NULL. */
const char *tg_api_bearer(const struct tg_http_req *req);
/*
 * The caller (a user's token or console session), when their role is one
 * of roles ("a|b"); otherwise answers the request (401, 403) and returns
 * NULL.  TG_ANYONE: every role.
 */
#define TG_ANYONE "reviewer|supervisor|agent"
const char *tg_api_person(struct tg_api *api, struct tg_http_req *req, const char *route,
                          const char *roles);
/* Does the request carry one of the configured API keys (constant-time compare)? */
bool tg_api_key_ok(const struct tg_api *api, const struct tg_http_req *req);

/* The value of query parameter name in q (no percent-decoding: for our own
 * names, numbers and states); false when absent.  A value longer than
 * outlen - 1 comes back empty, so the caller refuses it as invalid. */
bool tg_api_query(const char *q, const char *name, char *out, size_t outlen);
/* A timer on the API's event loop calling cb(-1, EV_TIMEOUT, arg) every every_ms;
 * NULL when it cannot be made (the caller fails to start). */
struct event *tg_api_every(struct tg_api *api, int64_t every_ms,
                           void (*cb)(int fd, short what, void *arg), void *arg);

/*
 * Work whose cost grows with the data runs on the background worker (with
 * its own store handle, once every write this loop queued before the call
 * is committed; the loop does not block waiting for that) so the event loop
 * never stalls on it.  work runs there and returns a JSON result (NULL with
 * a message in err); then, when not NULL, runs back on the loop with the
 * result (which it may change; NULL on failure) and returns TG_OK, or an
 * error when it could not finish the result (then answered as 500 out of
 * memory, never half made); req, when not NULL, is then answered with the
 * result (200) or a 503 naming the problem.
 * free_arg(arg) afterwards.  Such jobs run one at a time, in the order
 * their commits came.  TG_OK, or an error (req already answered, arg freed).
 */
struct tg_store;
typedef json_t *(*tg_api_work_fn)(struct tg_store *st, void *arg, char *err, size_t errlen);
typedef int (*tg_api_then_fn)(struct tg_api *api, json_t *result, void *arg);
int tg_api_background(struct tg_api *api, struct tg_http_req *req, const char *route,
                      tg_api_work_fn work, tg_api_then_fn then, void *arg,
                      void (*free_arg)(void *));
/*
 * The same for a read whose cost stays small whatever the data (a list of
 * at most a few hundred rows, a registry of deliberate releases): it runs
 * in a lane of its own, so it never waits behind a scan.
 */
int tg_api_background_bounded(struct tg_api *api, struct tg_http_req *req, const char *route,
                              tg_api_work_fn work, tg_api_then_fn then, void *arg,
                              void (*free_arg)(void *));
/*
 * The same as tg_api_background for a read whose answer depends on nothing
 * in the request (arg carries none of it): while a job of the same route
 * and work still waits for its lane, req joins it and gets its result, and
 * arg is freed at once.  Every request that comes while one scan runs is
 * answered by the next one, so any number of pollers keep at most one scan
 * running and one waiting.  A joined job still reads every write answered
 * to anyone before the request came (answers leave after their commit).
 * TG_OK, or an error (req already answered, arg freed).
 */
int tg_api_background_shared(struct tg_api *api, struct tg_http_req *req, const char *route,
                             tg_api_work_fn work, void *arg, void (*free_arg)(void *));

/* A customer's message to run as a turn (strings borrowed until answered). */
struct tg_turn_in {
    const char *channel; /* "api", "web" */
    const char *api_key; /* the bearer key, checked by the admit stage */
    bool trusted;        /* no key needed: the channel authenticated the customer */
    const char *body;    /* an OpenAI chat completions request */
    size_t body_len;
    const char *customer; /* the customer id when the body names none, or NULL */
};
/* Run a turn and answer req with its reply (or the review's, when the
 * request asks to wait).  TG_OK, or TG_E_NOMEM and req is not taken. */
int tg_api_start_turn(struct tg_api *api, struct tg_http_req *req, const struct tg_turn_in *in);

#endif
