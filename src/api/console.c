/*
 * console.c - console logins, sessions and CSRF tokens; passwords with
 * PBKDF2.  See console.h.
 *
 *   POST /console/api/login   {"user", "password"} -> {user, role, csrf} + cookie
 *   POST /console/api/logout  ends the session
 *   GET  /console/api/me      {user, role, csrf} of the session, or 401
 *   GET  /console/api/labels  {labels: {LANG: {CODE: TEXT}}, risk_tags: [TAG]}:
 *                             the config's `labels:` (tags, events, rules,
 *                             queues in the interface's language) and the
 *                             tags that make a hand-off urgent (the
 *                             pipeline's own and review.risk_tags), to
 *                             anyone signed in
 *   GET  /console/api/texts   {texts: {LANG: {login_hint}}}: the config's
 *                             web.texts the login form shows, to anyone
 *
 * A password check costs ~0.3 s of CPU by design, so it runs on one
 * worker thread: the event loop hands it a job and learns of the result
 * through a pipe.  The queue is fair per client address: at most
 * MAX_QUEUED checks wait at a time, and at most MAX_QUEUED_PER_ADDR of
 * them from one address (429 beyond), so a flood from one client never
 * refuses the others.  Failures are counted per (name, client address):
 * after FREE_FAILS of them each further attempt from that address for that
 * name must wait 1, 2, 4 ... s (at most DELAY_MAX_MS; 429 with Retry-After
 * before), while the right password from another address still works at
 * once, so nobody can lock anyone out.  Known and unknown names get the
 * same answers (status, body, throttling) after the same work: every check
 * runs PBKDF2 for as many iterations as the costliest configured hash, an
 * unknown name against a dummy hash.  A password configured in plain text
 * is hashed at its user's first login and only the hash kept.  Sessions
 * are kept in the store too (by the SHA-256 of their id), so a restart
 * logs nobody out.
 *
 * Client addresses come from the HTTP server (tg_http_peer); IPv6 clients
 * are counted by their /64, which one host usually holds whole.
 */
#include "api/api_int.h"
#include "api/console.h"

#include "metrics/metrics.h"
#include "pipeline/pipeline.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#define MAX_SESSIONS 1024
#define MAX_QUEUED 32         /* login checks waiting or running, from all clients */
#define MAX_QUEUED_PER_ADDR 2 /* ... from one client address */
#define FREE_FAILS 5          /* failures for (name, address) before attempts are delayed */
#define DELAY_FIRST_MS 1000
#define DELAY_MAX_MS (15 * 60 * 1000)
#define FORGET_MS (60 * 60 * 1000) /* failures this old, with no delay pending, are forgotten */
#define MAX_THROTTLED 4096         /* (name, address) pairs with failures remembered */
#define ADDR_MAX 64
#define SESSION_IDLE_MS (30 * 60 * 1000)
#define SESSION_MAX_MS (12 * 60 * 60 * 1000)

/* ------------------------------------------------------------ state */

struct person {
    const char *name, *role; /* borrowed from the config */
    uint8_t token_sha[TG_SHA256_LEN];
    bool has_token;
    char hash[TG_PASSWORD_HASH_MAX]; /* "" until known; written by the worker under mu */
    char *plain;                     /* a configured plaintext password until first hashed (mu) */
};

/* Failed logins for one (name, client address), known name or not; loop thread only. */
struct throttle {
    uint8_t key[TG_SHA256_LEN]; /* SHA-256 of name, NUL, address */
    int fails;
    int64_t last_ms; /* the last failure */
    int64_t next_ms; /* no attempt is checked before this */
};

struct session {
    char id[2 * TG_SHA256_LEN + 1];
    char csrf[2 * TG_SHA256_LEN + 1];
    int person;
    int64_t created_ms, last_ms;
    int64_t saved_ms; /* last_ms as the store has it */
};

/* Sessions outlive a restart: kept in the store as blobs session/<SHA-256 of the
 * id> (a copy of the store yields no usable cookie); last use written at most
 * once a minute. */
#define SESSION_SAVE_EVERY_MS 60000

struct job {
    struct job *next;
    struct tg_http_req *req;
    int person; /* -1: unknown user (checked against a dummy hash) */
    char *password;
    bool ok;
    char addr[ADDR_MAX];        /* the client's address (its /64 for IPv6) */
    uint8_t key[TG_SHA256_LEN]; /* its struct throttle key */
};

struct tg_console {
    struct tg_api *api;
    struct person *people;
    size_t n_people;
    struct session *sessions;
    size_t n_sessions;
    struct throttle *throttled; /* MAX_THROTTLED slots, n_throttled used */
    size_t n_throttled;
    struct job *pending[MAX_QUEUED]; /* jobs sent and not yet answered (loop thread) */
    /* worker */
    uint32_t work_iter;          /* PBKDF2 iterations every check costs: the costliest hash's */
    char dummy_salt[2 * 16 + 1]; /* hex salt of the dummy hashes that pad checks */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *queue, *queue_tail;
    size_t queued; /* login jobs sent and not yet answered */
    bool stop;
    int pipe_rd, pipe_wr;
    struct event *done_ev;
};

static void wipe_free(char *s)
{
    if (s) {
        volatile char *p = s;
        while (*p)
            *p++ = '\0';
        tg_free(s);
    }
}

/* The iterations of a "pbkdf2-sha256$ITER$..." hash, 0 when it is not one. */
static uint32_t hash_iterations(const char *hash)
{
    static const char prefix[] = "pbkdf2-sha256$";
    char digits[16];
    int64_t n = 0;
    if (strncmp(hash, prefix, sizeof(prefix) - 1) != 0)
        return 0;
    hash += sizeof(prefix) - 1;
    size_t len = strspn(hash, "0123456789");
    if (len == 0 || len >= sizeof(digits))
        return 0;
    memcpy(digits, hash, len);
    digits[len] = '\0';
    return tg_parse_i64(digits, &n) == TG_OK && n > 0 && n <= UINT32_MAX ? (uint32_t)n : 0;
}

/*
 * Spend iter PBKDF2 iterations on pw against a dummy hash (which nothing
 * matches), so that every check costs the same whatever it found.  Runs
 * at least the 1000 iterations a hash may have when iter is not 0.
 */
static void burn(const struct tg_console *c, const char *pw, uint32_t iter)
{
    char dummy[TG_PASSWORD_HASH_MAX];
    if (iter == 0)
        return;
    snprintf(dummy, sizeof(dummy), "pbkdf2-sha256$%u$%s$%064d", iter < 1000 ? 1000 : iter,
             c->dummy_salt, 0);
    (void)tg_password_verify(pw, dummy);
}

/* Constant-time equality of two passwords (compared as SHA-256 digests). */
static bool same_password(const char *a, const char *b)
{
    uint8_t ha[TG_SHA256_LEN], hb[TG_SHA256_LEN];
    tg_sha256(a, strlen(a), ha);
    tg_sha256(b, strlen(b), hb);
    return tg_ct_equal(ha, hb, sizeof(ha));
}

/*
 * A login check on the worker.  Every check costs c->work_iter PBKDF2
 * iterations: a user's hash is verified and the difference burnt on a
 * dummy; an unknown name (or a user without a password) burns them all; a
 * configured plaintext password is hashed the first time its user logs in
 * (that hashing is the check's work; then only the hash is kept).
 */
static void check(struct tg_console *c, struct job *j)
{
    char hash[TG_PASSWORD_HASH_MAX] = "", fresh[TG_PASSWORD_HASH_MAX];
    char *plain = NULL;
    uint32_t spent = 0;
    pthread_mutex_lock(&c->mu);
    struct person *p = j->person >= 0 ? &c->people[j->person] : NULL;
    if (p && !p->hash[0]) {
        plain = p->plain;
        p->plain = NULL;
    }
    if (p)
        tg_strlcpy(hash, p->hash, sizeof(hash));
    pthread_mutex_unlock(&c->mu);
    j->ok = false;
    if (plain) {
        spent = TG_PBKDF2_ITERATIONS;
        if (tg_password_hash(plain, TG_PBKDF2_ITERATIONS, fresh) == TG_OK) {
            j->ok = same_password(j->password, plain);
            pthread_mutex_lock(&c->mu);
            memcpy(p->hash, fresh, sizeof(fresh));
            pthread_mutex_unlock(&c->mu);
        } else {
            pthread_mutex_lock(&c->mu);
            p->plain = plain; /* not hashed: kept for the next login */
            plain = NULL;
            pthread_mutex_unlock(&c->mu);
        }
        wipe_free(plain);
    } else if (hash[0]) {
        spent = hash_iterations(hash);
        j->ok = tg_password_verify(j->password, hash) == TG_OK;
    }
    burn(c, j->password, spent < c->work_iter ? c->work_iter - spent : 0);
}

static void *worker_main(void *arg)
{
    struct tg_console *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        while (!c->queue && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        struct job *j = c->queue;
        if (!j) {
            pthread_mutex_unlock(&c->mu);
            return NULL;
        }
        c->queue = j->next;
        if (!c->queue)
            c->queue_tail = NULL;
        pthread_mutex_unlock(&c->mu);
        check(c, j);
        wipe_free(j->password);
        j->password = NULL;
        ssize_t w;
        do
            w = write(c->pipe_wr, &j, sizeof(j));
        while (w < 0 && errno == EINTR);
    }
}

static void queue_job(struct tg_console *c, struct job *j)
{
    pthread_mutex_lock(&c->mu);
    if (c->queue_tail)
        c->queue_tail->next = j;
    else
        c->queue = j;
    c->queue_tail = j;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------ cookies */

bool tg_api_cookie(const struct tg_http_req *req, const char *name, char *out, size_t outlen)
{
    const char *h = tg_http_header(req, "Cookie");
    size_t n = strlen(name);
    while (h && *h) {
        while (*h == ' ' || *h == ';')
            h++;
        const char *end = strchr(h, ';');
        size_t len = end ? (size_t)(end - h) : strlen(h);
        if (len > n && strncmp(h, name, n) == 0 && h[n] == '=') {
            size_t vl = len - n - 1;
            if (vl >= outlen)
                return false;
            memcpy(out, h + n + 1, vl);
            out[vl] = '\0';
            return true;
        }
        h = end;
    }
    return false;
}

static void session_key(const char *id, char key[96])
{
    uint8_t h[TG_SHA256_LEN];
    char hex[2 * TG_SHA256_LEN + 1];
    tg_sha256(id, strlen(id), h);
    tg_hex_encode(h, sizeof(h), hex);
    snprintf(key, 96, "session/%s", hex);
}

static void save_session(struct tg_console *c, struct session *s)
{
    char key[96];
    session_key(s->id, key);
    json_t *j =
        json_pack("{s:s, s:s, s:I, s:I}", "user", c->people[s->person].name, "csrf", s->csrf,
                  "created_ms", (json_int_t)s->created_ms, "last_ms", (json_int_t)s->last_ms);
    char *str = j ? tg_json_dumps(j, JSON_COMPACT) : NULL;
    if (str && tg_store_blob_put(c->api->p->store, key, str, strlen(str)) == TG_OK)
        s->saved_ms = s->last_ms;
    free(str);
    json_decref(j);
}

static void drop_session(struct tg_console *c, size_t i)
{
    char key[96];
    session_key(c->sessions[i].id, key);
    tg_store_blob_delete(c->api->p->store, key);
    if (tg_store_shared(c->api->p->store))
        tg_store_flush(c->api->p->store); /* ended on every node at once */
    c->sessions[i] = c->sessions[--c->n_sessions];
}

static struct session *new_slot(struct tg_console *c)
{
    if (c->n_sessions == MAX_SESSIONS) {
        /* full: the least recently used one goes (from memory; the store keeps it) */
        size_t old = 0;
        for (size_t i = 1; i < c->n_sessions; i++)
            if (c->sessions[i].last_ms < c->sessions[old].last_ms)
                old = i;
        c->sessions[old] = c->sessions[--c->n_sessions];
    }
    return &c->sessions[c->n_sessions++];
}

/* A session this process does not hold: one from before a restart (or one
 * the memory let go), when the store has it and its user is still configured. */
static struct session *load_session(struct tg_console *c, const char *id)
{
    char key[96], *data = NULL;
    size_t len;
    session_key(id, key);
    if (tg_store_blob_get(c->api->p->store, key, &data, &len) != TG_OK)
        return NULL;
    json_t *j = json_loadb(data, len, 0, NULL);
    tg_free(data);
    int person = -1;
    for (size_t i = 0; i < c->n_people && j; i++)
        if (!strcmp(c->people[i].name, tg_json_str(j, "user", "")))
            person = (int)i;
    const char *csrf = tg_json_str(j, "csrf", "");
    struct session *s = NULL;
    if (person >= 0 && strlen(csrf) == 2 * TG_SHA256_LEN) {
        s = new_slot(c);
        tg_strlcpy(s->id, id, sizeof(s->id));
        tg_strlcpy(s->csrf, csrf, sizeof(s->csrf));
        s->person = person;
        s->created_ms = tg_json_int(j, "created_ms", 0);
        s->last_ms = s->saved_ms = tg_json_int(j, "last_ms", 0);
    } else {
        tg_store_blob_delete(c->api->p->store, key); /* its user is gone */
    }
    json_decref(j);
    return s;
}

/* Whether the store still has session id: on a store other nodes share,
 * the truth about a session is there, not in this node's memory. */
static bool session_stored(struct tg_console *c, const char *id)
{
    char key[96], *data = NULL;
    size_t len;
    session_key(id, key);
    int rc = tg_store_blob_get(c->api->p->store, key, &data, &len);
    tg_free(data);
    return rc != TG_E_NOTFOUND;
}

static struct session *find_session(struct tg_console *c, const struct tg_http_req *req)
{
    char id[2 * TG_SHA256_LEN + 1];
    int64_t now = tg_clock_wall_ms();
    if (!c || !tg_api_cookie(req, "tg_session", id, sizeof(id)) || strlen(id) != sizeof(id) - 1 ||
        strspn(id, "0123456789abcdef") != sizeof(id) - 1)
        return NULL;
    struct session *s = NULL;
    for (size_t i = 0; i < c->n_sessions && !s; i++)
        if (tg_ct_equal(c->sessions[i].id, id, sizeof(id) - 1))
            s = &c->sessions[i];
    if (s && tg_store_shared(c->api->p->store) && !session_stored(c, id)) {
        /* another node ended it (a logout, its idle time) */
        c->sessions[s - c->sessions] = c->sessions[--c->n_sessions];
        return NULL;
    }
    if (!s && !(s = load_session(c, id)))
        return NULL;
    if (now - s->last_ms > SESSION_IDLE_MS || now - s->created_ms > SESSION_MAX_MS) {
        drop_session(c, (size_t)(s - c->sessions));
        return NULL;
    }
    s->last_ms = now;
    if (now - s->saved_ms >= SESSION_SAVE_EVERY_MS)
        save_session(c, s);
    return s;
}

static struct session *new_session(struct tg_console *c, int person)
{
    uint8_t raw[2 * TG_SHA256_LEN];
    if (tg_random_bytes(raw, sizeof(raw)))
        return NULL;
    struct session *s = new_slot(c);
    tg_hex_encode(raw, TG_SHA256_LEN, s->id);
    tg_hex_encode(raw + TG_SHA256_LEN, TG_SHA256_LEN, s->csrf);
    s->person = person;
    s->created_ms = s->last_ms = tg_clock_wall_ms();
    save_session(c, s);
    if (tg_store_shared(c->api->p->store))
        tg_store_flush(c->api->p->store); /* the next request may reach another node */
    return s;
}

/* ------------------------------------------------------------ who */

int tg_api_who(struct tg_api *api, const struct tg_http_req *req, struct tg_who *who,
               const char **code, const char **msg)
{
    struct tg_console *c = api->console;
    const char *tok = tg_api_bearer(req);
    memset(who, 0, sizeof(*who));
    if (tok && c) {
        uint8_t h[TG_SHA256_LEN];
        int found = -1;
        tg_sha256(tok, strlen(tok), h);
        for (size_t i = 0; i < c->n_people; i++)
            if (c->people[i].has_token && tg_ct_equal(h, c->people[i].token_sha, sizeof(h)) &&
                found < 0)
                found = (int)i;
        if (found >= 0) {
            who->name = c->people[found].name;
            who->role = c->people[found].role;
            return TG_OK;
        }
    }
    struct session *s = tok ? NULL : find_session(c, req);
    if (!s) {
        *code = "invalid_token";
        *msg = "log in to the console or send a user's token as 'Authorization: Bearer <token>'";
        return 401;
    }
    if (strcmp(tg_http_method(req), "GET") != 0 && strcmp(tg_http_method(req), "HEAD") != 0) {
        const char *t = tg_http_header(req, "X-CSRF-Token");
        if (!t || strlen(t) != sizeof(s->csrf) - 1 ||
            !tg_ct_equal(t, s->csrf, sizeof(s->csrf) - 1)) {
            *code = "csrf_failed";
            *msg = "this request needs the session's CSRF token in the X-CSRF-Token header";
            return 403;
        }
    }
    who->name = c->people[s->person].name;
    who->role = c->people[s->person].role;
    who->session = true;
    return TG_OK;
}

/* ------------------------------------------------------------ routes */

static void send_me(struct tg_api *api, struct tg_http_req *req, const char *route,
                    const struct session *s, const char *cookie)
{
    const struct person *p = &api->console->people[s->person];
    json_t *body = json_pack("{s:s, s:s, s:s}", "user", p->name, "role", p->role, "csrf", s->csrf);
    char *str = body ? tg_json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    tg_metrics_request(api->p->metrics, route, str ? 200 : 500);
    if (!str) {
        tg_http_error(req, 500, "server_error", "internal_error", "out of memory");
        return;
    }
    tg_http_respond(req, 200, "application/json", cookie, str, strlen(str));
    free(str);
}

static void session_cookie(const struct tg_http_req *req, const char *id, int max_age, char *out,
                           size_t outlen)
{
    const char *proto = tg_http_header(req, "X-Forwarded-Proto");
    bool tls = proto && strcasecmp(proto, "https") == 0;
    snprintf(out, outlen,
             "Set-Cookie: tg_session=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s\r\n"
             "Cache-Control: no-store\r\n",
             id, max_age, tls ? "; Secure" : "");
}

/* ------------------------------------------------------------ throttling */

/* The client address logins are counted by: the peer's address, an IPv6
 * one cut to its /64. */
static void client_addr(const struct tg_http_req *req, char out[ADDR_MAX])
{
    const char *peer = tg_http_peer(req);
    struct in6_addr a6;
    tg_strlcpy(out, peer ? peer : "", ADDR_MAX);
    if (strchr(out, ':') && inet_pton(AF_INET6, out, &a6) == 1) {
        memset(a6.s6_addr + 8, 0, 8);
        if (!inet_ntop(AF_INET6, &a6, out, ADDR_MAX))
            out[0] = '\0';
    }
}

static void throttle_key(const char *user, const char *addr, uint8_t key[TG_SHA256_LEN])
{
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    if (tg_buf_puts(&b, user) || tg_buf_append(&b, "", 1) || tg_buf_puts(&b, addr))
        memset(key, 0, TG_SHA256_LEN); /* out of memory: one shared key, still throttled */
    else
        tg_sha256(b.data, b.len, key);
    tg_buf_free(&b);
}

/* An entry that no longer holds anything back. */
static bool throttle_stale(const struct throttle *t, int64_t now)
{
    return now >= t->next_ms && now - t->last_ms > FORGET_MS;
}

static struct throttle *throttle_find(struct tg_console *c, const uint8_t key[TG_SHA256_LEN])
{
    for (size_t i = 0; i < c->n_throttled; i++)
        if (!memcmp(c->throttled[i].key, key, TG_SHA256_LEN))
            return &c->throttled[i];
    return NULL;
}

/*
 * On a store other nodes share, failures count on every node: an entry is
 * the blob throttle/<hex key> ({fails, last_ms, next_ms}), read before it
 * is used and written (committed) when it changes; memory holds a copy.
 */
static bool throttle_shared(const struct tg_console *c)
{
    return tg_store_shared(c->api->p->store);
}

static void throttle_blob_key(const uint8_t key[TG_SHA256_LEN], char out[96])
{
    char hex[2 * TG_SHA256_LEN + 1];
    tg_hex_encode(key, TG_SHA256_LEN, hex);
    snprintf(out, 96, "throttle/%s", hex);
}

static struct throttle *throttle_slot(struct tg_console *c, int64_t now);

/* The store's entry for key into memory (gone from the store: from memory too). */
static void throttle_load(struct tg_console *c, const uint8_t key[TG_SHA256_LEN], int64_t now)
{
    char bk[96], *data = NULL;
    size_t len;
    struct throttle *t = throttle_find(c, key);
    throttle_blob_key(key, bk);
    if (tg_store_blob_get(c->api->p->store, bk, &data, &len) != TG_OK) {
        if (t)
            *t = c->throttled[--c->n_throttled];
        return;
    }
    json_t *j = json_loadb(data, len, 0, NULL);
    tg_free(data);
    if (!t) {
        t = throttle_slot(c, now);
        memcpy(t->key, key, TG_SHA256_LEN);
    }
    t->fails = (int)tg_json_int(j, "fails", 0);
    t->last_ms = tg_json_int(j, "last_ms", 0);
    t->next_ms = tg_json_int(j, "next_ms", 0);
    json_decref(j);
}

static void throttle_save(struct tg_console *c, const struct throttle *t)
{
    char bk[96], v[128];
    throttle_blob_key(t->key, bk);
    int n = snprintf(v, sizeof(v), "{\"fails\":%d,\"last_ms\":%lld,\"next_ms\":%lld}", t->fails,
                     (long long)t->last_ms, (long long)t->next_ms);
    tg_store_blob_put(c->api->p->store, bk, v, (size_t)n);
    tg_store_flush(c->api->p->store); /* the next attempt may come to another node */
}

/* Milliseconds before the next attempt for key may be checked; 0: now. */
static int64_t throttle_wait(struct tg_console *c, const uint8_t key[TG_SHA256_LEN], int64_t now)
{
    if (throttle_shared(c))
        throttle_load(c, key, now);
    const struct throttle *t = throttle_find(c, key);
    return t && now < t->next_ms ? t->next_ms - now : 0;
}

/*
 * A free slot for a new entry.  When the table is full, a stale entry goes
 * first, else the one with the fewest failures (the oldest among them):
 * failures spent on made-up names cannot push out a pair being delayed.
 */
static struct throttle *throttle_slot(struct tg_console *c, int64_t now)
{
    if (c->n_throttled < MAX_THROTTLED)
        return &c->throttled[c->n_throttled++];
    struct throttle *victim = &c->throttled[0];
    for (size_t i = 0; i < c->n_throttled; i++) {
        struct throttle *t = &c->throttled[i];
        if (throttle_stale(t, now))
            return t;
        if (t->fails < victim->fails || (t->fails == victim->fails && t->last_ms < victim->last_ms))
            victim = t;
    }
    return victim;
}

/* One more failure for key: after FREE_FAILS, the next attempt waits 1, 2, 4 ... s. */
static int throttle_fail(struct tg_console *c, const uint8_t key[TG_SHA256_LEN], int64_t now)
{
    if (throttle_shared(c))
        throttle_load(c, key, now);
    struct throttle *t = throttle_find(c, key);
    if (t && throttle_stale(t, now))
        t->fails = 0;
    if (!t) {
        t = throttle_slot(c, now);
        memcpy(t->key, key, TG_SHA256_LEN);
        t->fails = 0;
        t->next_ms = 0;
    }
    t->fails++;
    t->last_ms = now;
    if (t->fails >= FREE_FAILS) {
        int shift = TG_MIN(t->fails - FREE_FAILS, 20);
        t->next_ms = now + TG_MIN((int64_t)DELAY_FIRST_MS << shift, (int64_t)DELAY_MAX_MS);
    }
    if (throttle_shared(c))
        throttle_save(c, t);
    return t->fails;
}

static void throttle_clear(struct tg_console *c, const uint8_t key[TG_SHA256_LEN])
{
    struct throttle *t = throttle_find(c, key);
    if (t)
        *t = c->throttled[--c->n_throttled];
    if (throttle_shared(c)) {
        char bk[96];
        throttle_blob_key(key, bk);
        tg_store_blob_delete(c->api->p->store, bk);
        tg_store_flush(c->api->p->store);
    }
}

/* Login checks from addr that are queued or running. */
static size_t pending_from(const struct tg_console *c, const char *addr)
{
    size_t n = 0;
    for (size_t i = 0; i < c->queued; i++)
        n += strcmp(c->pending[i]->addr, addr) == 0;
    return n;
}

static void pending_remove(struct tg_console *c, const struct job *j)
{
    for (size_t i = 0; i < c->queued; i++) {
        if (c->pending[i] == j) {
            c->pending[i] = c->pending[--c->queued];
            return;
        }
    }
}

/* 429 too_many_attempts with a Retry-After of wait_ms (rounded up to seconds). */
static void refuse_attempt(struct tg_api *api, struct tg_http_req *req, int64_t wait_ms,
                           const char *message)
{
    const char *route = "/console/api/login";
    char hdr[64];
    json_t *err = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", message, "type",
                            "rate_limit_error", "param", "code", "too_many_attempts");
    char *body = err ? tg_json_dumps(err, JSON_COMPACT) : NULL;
    json_decref(err);
    if (!body) {
        tg_api_send_error(api, req, route, 503, "server_error", "internal_error", "out of memory");
        return;
    }
    snprintf(hdr, sizeof(hdr), "Retry-After: %lld\r\n", (long long)((wait_ms + 999) / 1000));
    tg_metrics_request(api->p->metrics, route, 429);
    tg_http_respond(req, 429, "application/json", hdr, body, strlen(body));
    free(body);
}

static void job_done(struct tg_console *c, struct job *j)
{
    struct tg_api *api = c->api;
    const char *route = "/console/api/login";
    int64_t now = tg_clock_wall_ms();
    pending_remove(c, j);
    if (!j->ok) {
        int fails = throttle_fail(c, j->key, now);
        if (j->person >= 0)
            tg_warn("console: failed login for %s from %s (%d in a row)", c->people[j->person].name,
                    j->addr[0] ? j->addr : "?", fails);
        else
            tg_warn("console: failed login for an unknown name from %s (%d in a row)",
                    j->addr[0] ? j->addr : "?", fails);
        tg_api_send_error(api, j->req, route, 401, "authentication_error", "invalid_credentials",
                          "unknown user or wrong password");
    } else {
        struct session *s = new_session(c, j->person);
        if (!s) {
            tg_api_send_error(api, j->req, route, 503, "server_error", "internal_error",
                              "cannot create a session");
        } else {
            char cookie[256];
            throttle_clear(c, j->key);
            tg_info("console: %s logged in", c->people[j->person].name);
            session_cookie(j->req, s->id, (int)(SESSION_MAX_MS / 1000), cookie, sizeof(cookie));
            send_me(api, j->req, route, s, cookie);
        }
    }
    tg_free(j);
}

static void pipe_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct tg_console *c = arg;
    struct job *j;
    while (read(fd, &j, sizeof(j)) == (ssize_t)sizeof(j))
        job_done(c, j);
}

/* The request's Origin, when sent, must be this server (login CSRF). */
static bool same_origin(const struct tg_http_req *req)
{
    const char *origin = tg_http_header(req, "Origin"), *host = tg_http_header(req, "Host");
    if (!origin)
        return true;
    const char *p = strstr(origin, "://");
    return p && host && strcmp(p + 3, host) == 0;
}

/*
 * A login attempt with a name and a password: refused at once while its
 * (name, address) must wait or its address has its share of the queue,
 * else queued for the worker.  Known and unknown names take the same path.
 */
static void queue_login(struct tg_console *c, struct tg_http_req *req, const char *user,
                        const char *pw)
{
    struct tg_api *api = c->api;
    struct job *jb = tg_calloc(1, sizeof(*jb));
    char *copy = jb ? tg_strdup(pw) : NULL;
    if (!copy) {
        tg_free(jb);
        tg_api_send_error(api, req, "/console/api/login", 503, "server_error", "internal_error",
                          "out of memory");
        return;
    }
    client_addr(req, jb->addr);
    throttle_key(user, jb->addr, jb->key);
    int64_t wait = throttle_wait(c, jb->key, tg_clock_wall_ms());
    if (wait > 0) {
        refuse_attempt(api, req, wait, "too many failed logins; wait before trying again");
    } else if (c->queued >= MAX_QUEUED || pending_from(c, jb->addr) >= MAX_QUEUED_PER_ADDR) {
        refuse_attempt(api, req, 1000, "too many logins at once; try again in a moment");
    } else {
        jb->person = -1;
        for (size_t i = 0; i < c->n_people; i++)
            if (strcmp(c->people[i].name, user) == 0)
                jb->person = (int)i;
        jb->req = req;
        jb->password = copy;
        c->pending[c->queued++] = jb;
        queue_job(c, jb);
        return;
    }
    wipe_free(copy);
    tg_free(jb);
}

static void login(struct tg_api *api, struct tg_http_req *req)
{
    struct tg_console *c = api->console;
    const char *route = "/console/api/login";
    size_t len;
    const char *body = tg_http_body(req, &len);
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *user = tg_json_str(j, "user", NULL), *pw = tg_json_str(j, "password", NULL);
    if (!same_origin(req)) {
        tg_api_send_error(api, req, route, 403, "invalid_request_error", "csrf_failed",
                          "a login must come from this server's own pages");
    } else if (!user || !pw) {
        tg_api_send_error(api, req, route, 400, "invalid_request_error", "invalid_login",
                          "the body must be {\"user\": \"...\", \"password\": \"...\"}");
    } else {
        queue_login(c, req, user, pw);
    }
    if (j) {
        json_t *v = json_object_get(j, "password");
        if (json_is_string(v))
            memset((char *)json_string_value(v), 0, strlen(json_string_value(v)));
    }
    json_decref(j);
}

static void logout(struct tg_api *api, struct tg_http_req *req)
{
    struct tg_console *c = api->console;
    struct tg_who who;
    const char *code, *msg;
    int st = tg_api_who(api, req, &who, &code, &msg);
    if (st) {
        tg_api_send_error(api, req, "/console/api/logout", st,
                          st == 401 ? "authentication_error" : "invalid_request_error", code, msg);
        return;
    }
    struct session *s = find_session(c, req);
    if (s) {
        drop_session(c, (size_t)(s - c->sessions));
        /* gone from the store before the answer: the cookie may not come back */
        tg_store_flush(api->p->store);
    }
    char cookie[256];
    session_cookie(req, "", 0, cookie, sizeof(cookie));
    tg_metrics_request(api->p->metrics, "/console/api/logout", 200);
    tg_http_respond(req, 200, "application/json", cookie, "{\"ok\":true}", 11);
}

static void me(struct tg_api *api, struct tg_http_req *req)
{
    struct session *s = find_session(api->console, req);
    if (!s) {
        tg_api_send_error(api, req, "/console/api/me", 401, "authentication_error", "not_logged_in",
                          "not logged in");
        return;
    }
    send_me(api, req, "/console/api/me", s, "Cache-Control: no-store\r\n");
}

/*
 * The config's label table as it is (checked by config.c: languages, each
 * a mapping of codes to texts), or {} without one, and the risk tags of
 * the hand-offs (cfg->review.risk_tags).  Cacheable for a minute: it
 * changes only with the config.
 */
static void labels(struct tg_api *api, struct tg_http_req *req)
{
    const char *route = "/console/api/labels";
    if (!tg_api_person(api, req, route, TG_ANYONE "|auditor"))
        return;
    const struct tg_config *cfg = api->p->cfg;
    json_t *body = json_pack("{s:{}}", "labels"), *tags = json_array();
    json_t *all = json_object_get(body, "labels");
    int rc = body && tags ? TG_OK : TG_E_NOMEM;
    for (size_t i = 0; !rc && i < cfg->n_labels; i++) {
        const struct tg_label_conf *l = &cfg->label_list[i];
        json_t *table = json_object_get(all, l->lang);
        if (!table && !(rc = tg_json_set(all, l->lang, json_object())))
            table = json_object_get(all, l->lang);
        if (!rc)
            rc = tg_json_set(table, l->code, json_string(l->text));
    }
    for (size_t i = 0; !rc && i < cfg->review.n_risk_tags; i++)
        rc = tg_json_push(tags, json_string(cfg->review.risk_tags[i]));
    if (rc) {
        json_decref(tags);
        tags = NULL;
    }
    if (tg_json_set(body, "risk_tags", tags)) {
        json_decref(body);
        body = NULL;
    }
    char *str = body ? tg_json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    tg_metrics_request(api->p->metrics, route, str ? 200 : 500);
    if (!str) {
        tg_http_error(req, 500, "server_error", "internal_error", "out of memory");
        return;
    }
    tg_http_respond(req, 200, "application/json", "Cache-Control: private, max-age=60\r\n", str,
                    strlen(str));
    free(str);
}

/*
 * The texts of web.texts the login form shows, per language: {LANG:
 * {login_hint}}, languages without one left out.  Read before anyone signs
 * in, so nothing else of the config is in it.
 */
static void texts(struct tg_api *api, struct tg_http_req *req)
{
    const struct tg_config *cfg = api->p->cfg;
    json_t *body = json_pack("{s:{}}", "texts");
    json_t *all = json_object_get(body, "texts");
    for (size_t i = 0; all && i < cfg->n_web_texts; i++) {
        const struct tg_web_texts *w = &cfg->web_texts[i];
        if (w->login_hint &&
            tg_json_set(all, w->lang, json_pack("{s:s}", "login_hint", w->login_hint))) {
            json_decref(body);
            body = all = NULL;
        }
    }
    tg_api_send_json(api, req, "/console/api/texts", 200, body);
}

bool tg_api_console(struct tg_api *api, struct tg_http_req *req)
{
    const char *m = tg_http_method(req), *path = tg_http_path(req);
    if (!tg_str_has_prefix(path, "/console/api/"))
        return false;
    if (!api->console) {
        tg_api_send_error(api, req, "other", 404, "invalid_request_error", "console_disabled",
                          "the console needs users in the config");
        return true;
    }
    if (strcmp(path, "/console/api/login") == 0 && strcmp(m, "POST") == 0)
        login(api, req);
    else if (strcmp(path, "/console/api/logout") == 0 && strcmp(m, "POST") == 0)
        logout(api, req);
    else if (strcmp(path, "/console/api/me") == 0 && strcmp(m, "GET") == 0)
        me(api, req);
    else if (strcmp(path, "/console/api/labels") == 0 && strcmp(m, "GET") == 0)
        labels(api, req);
    else if (strcmp(path, "/console/api/texts") == 0 && strcmp(m, "GET") == 0)
        texts(api, req);
    else
        return false;
    return true;
}

/* ------------------------------------------------------------ lifetime */

int tg_console_start(struct tg_api *api)
{
    const struct tg_config *cfg = api->p->cfg;
    size_t n = cfg->n_users;
    int fds[2];
    if (n == 0)
        return TG_OK;
    struct tg_console *c = tg_calloc(1, sizeof(*c));
    if (!c)
        return TG_E_NOMEM;
    c->api = api;
    c->pipe_rd = c->pipe_wr = -1;
    c->people = tg_calloc(n, sizeof(*c->people));
    c->sessions = tg_calloc(MAX_SESSIONS, sizeof(*c->sessions));
    c->throttled = tg_calloc(MAX_THROTTLED, sizeof(*c->throttled));
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    api->console = c;
    uint8_t salt[16];
    if (!c->people || !c->sessions || !c->throttled || tg_random_bytes(salt, sizeof(salt)) ||
        pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
        goto fail;
    tg_hex_encode(salt, sizeof(salt), c->dummy_salt);
    c->pipe_rd = fds[0];
    c->pipe_wr = fds[1];
    /* the worker blocks on nothing but the pipe being full, which MAX_QUEUED jobs cannot fill */
    c->done_ev = event_new(api->p->base, c->pipe_rd, EV_READ | EV_PERSIST, pipe_cb, c);
    if (!c->done_ev || event_add(c->done_ev, NULL))
        goto fail;
    if (pthread_create(&c->thread, NULL, worker_main, c) != 0)
        goto fail;
    c->thread_started = true;
    for (size_t i = 0; i < n; i++) {
        const struct tg_user_conf *u = &cfg->users[i];
        struct person *p = &c->people[c->n_people++];
        p->name = u->name;
        p->role = u->role;
        if (u->token) {
            tg_sha256(u->token, strlen(u->token), p->token_sha);
            p->has_token = true;
        }
        if (u->password_hash) {
            tg_strlcpy(p->hash, u->password_hash, sizeof(p->hash));
            c->work_iter = TG_MAX(c->work_iter, hash_iterations(u->password_hash));
        } else if (u->password) {
            c->work_iter = TG_MAX(c->work_iter, (uint32_t)TG_PBKDF2_ITERATIONS);
            if (!(p->plain = tg_strdup(u->password)))
                goto fail;
            /* the plaintext leaves the config held in memory */
            memset(u->password, 0, strlen(u->password));
        }
    }
    return TG_OK;
fail:
    tg_console_stop(api);
    return TG_E_NOMEM;
}

void tg_console_stop(struct tg_api *api)
{
    struct tg_console *c = api->console;
    if (!c)
        return;
    if (c->thread_started) {
        pthread_mutex_lock(&c->mu);
        c->stop = true;
        /* logins not started yet are answered below; hashing jobs are dropped */
        struct job *q = c->queue;
        c->queue = c->queue_tail = NULL;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
        while (q) {
            struct job *next = q->next;
            tg_api_send_error(api, q->req, "/console/api/login", 503, "server_error",
                              "shutting_down", "the server is shutting down");
            wipe_free(q->password);
            tg_free(q);
            q = next;
        }
        /* checks that finished meanwhile */
        pipe_cb(c->pipe_rd, 0, c);
    }
    if (c->done_ev)
        event_free(c->done_ev);
    if (c->pipe_rd >= 0)
        close(c->pipe_rd);
    if (c->pipe_wr >= 0)
        close(c->pipe_wr);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    for (size_t i = 0; c->people && i < c->n_people; i++)
        wipe_free(c->people[i].plain);
    tg_free(c->people);
    tg_free(c->sessions);
    tg_free(c->throttled);
    tg_free(c);
    api->console = NULL;
}
