/*
 * harness.c - child processes and HTTP for integration tests.  See harness.h.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

const char *tg_h_bin(const char *name, char *buf, size_t len)
{
    const char *dir = getenv("TG_BINARY_DIR");
    snprintf(buf, len, "%s/%s", dir ? dir : "build", name);
    return buf;
}

const char *tg_h_tmpdir(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/tg-itest-XXXXXX");
    return mkdtemp(buf);
}

const char *tg_h_write_file(const char *dir, const char *name, const char *text, char *buf,
                            size_t len)
{
    snprintf(buf, len, "%s/%s", dir, name);
    FILE *f = fopen(buf, "w");
    if (!f)
        return NULL;
    fputs(text, f);
    fclose(f);
    return buf;
}

static int spawn(struct tg_h_proc *p, char *const argv[], const char *logpath)
{
    int pipefd[2];
    if (pipe(pipefd))
        return -1;
    tg_strlcpy(p->log_path, logpath, sizeof(p->log_path));
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int log = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(pipefd[1], 1);
        if (log >= 0)
            dup2(log, 2);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pipefd[1]);
    p->pid = pid;
    p->out_fd = pipefd[0];
    return 0;
}

/* Read the child's stdout until a line contains needle or timeout; the
 * text read goes to buf. */
static int read_until(struct tg_h_proc *p, const char *needle, char *buf, size_t len,
                      int timeout_ms)
{
    size_t used = 0;
    buf[0] = '\0';
    int64_t deadline = tg_clock_mono_ns() + (int64_t)timeout_ms * 1000000;
    while (tg_clock_mono_ns() < deadline && used + 1 < len) {
        struct pollfd pfd = {p->out_fd, POLLIN, 0};
        int left = (int)((deadline - tg_clock_mono_ns()) / 1000000);
        if (poll(&pfd, 1, left > 0 ? left : 0) <= 0)
            continue;
        ssize_t n = read(p->out_fd, buf + used, len - used - 1);
        if (n <= 0)
            return -1;
        used += (size_t)n;
        buf[used] = '\0';
        char *hit = strstr(buf, needle);
        if (hit && strchr(hit, '\n'))
            return 0;
    }
    return -1;
}

int tg_h_start_upstream(struct tg_h_proc *p, const char *logdir)
{
    char bin[512], log[300], buf[256];
    memset(p, 0, sizeof(*p));
    tg_h_bin("fake-upstream", bin, sizeof(bin));
    snprintf(log, sizeof(log), "%s/upstream.log", logdir);
    char *argv[] = {bin, "--listen", "127.0.0.1:0", NULL};
    if (spawn(p, argv, log))
        return -1;
    if (read_until(p, "", buf, sizeof(buf), 5000) && !strchr(buf, '\n'))
        return -1;
    int64_t port;
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    if (tg_parse_i64(buf, &port))
        return -1;
    p->port = (int)port;
    return 0;
}

int tg_h_start_gateway(struct tg_h_proc *p, const char *config, const char *datadir)
{
    char bin[512], log[300], buf[4096];
    memset(p, 0, sizeof(*p));
    tg_h_bin("trustgate", bin, sizeof(bin));
    snprintf(log, sizeof(log), "%s/gateway.log", datadir);
    char *argv[] = {bin,      "serve",         "-c", (char *)config, "--listen", "127.0.0.1:0",
                    "--data", (char *)datadir, NULL};
    if (spawn(p, argv, log))
        return -1;
    if (read_until(p, "serving on http://", buf, sizeof(buf), 10000)) {
        fprintf(stderr, "gateway did not start; its log:\n");
        char *l = tg_h_log(p);
        fprintf(stderr, "%s\n", l ? l : "");
        tg_free(l);
        return -1;
    }
    const char *u = strstr(buf, "serving on http://");
    const char *colon = strchr(u + 18, ':');
    p->port = colon ? (int)strtol(colon + 1, NULL, 10) : 0;
    return p->port > 0 ? 0 : -1;
}

int tg_h_stop(struct tg_h_proc *p, int grace_ms)
{
    int status = 0;
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    int64_t deadline = tg_clock_mono_ns() + (int64_t)grace_ms * 1000000;
    pid_t r = 0;
    while ((r = waitpid(p->pid, &status, WNOHANG)) == 0 && tg_clock_mono_ns() < deadline)
        usleep(10000);
    if (r == 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, &status, 0);
        status = -1;
    } else {
        status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    close(p->out_fd);
    p->pid = 0;
    return status;
}

char *tg_h_log(const struct tg_h_proc *p)
{
    FILE *f = fopen(p->log_path, "r");
    struct tg_buf b;
    char chunk[4096];
    size_t n;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    if (f) {
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            tg_buf_append(&b, chunk, n);
        fclose(f);
    }
    return tg_buf_steal(&b, NULL);
}

static size_t collect_cb(char *data, size_t size, size_t n, void *arg)
{
    return tg_buf_append(arg, data, size * n) ? 0 : size * n;
}

int tg_h_http(const char *method, const char *url, const char *const *headers, const char *body,
              size_t body_len, long timeout_ms, struct tg_h_resp *out)
{
    struct tg_buf b, h;
    struct curl_slist *hl = NULL;
    CURL *e = curl_easy_init();
    memset(out, 0, sizeof(*out));
    if (!e)
        return -1;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    tg_buf_init(&h, TG_BUF_UNLIMITED);
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    if (body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, collect_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms ? timeout_ms : 30000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    int64_t t0 = tg_clock_mono_ns();
    CURLcode rc = curl_easy_perform(e);
    out->seconds = (double)(tg_clock_mono_ns() - t0) / 1e9;
    out->curl_code = (int)rc;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->status);
    out->body = tg_buf_steal(&b, &out->len);
    out->headers = tg_buf_steal(&h, NULL);
    curl_slist_free_all(hl);
    curl_easy_cleanup(e);
    return rc == CURLE_OK ? 0 : -1;
}

void tg_h_resp_free(struct tg_h_resp *r)
{
    tg_free(r->body);
    tg_free(r->headers);
    r->body = r->headers = NULL;
}

json_t *tg_h_api(int port, const char *method, const char *path, const char *token,
                 const char *body, long *status)
{
    char url[512], auth[256];
    struct tg_h_resp r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token ? token : "");
    const char *hdrs[] = {"Content-Type: application/json", token ? auth : NULL, NULL};
    *status = -1;
    if (tg_h_http(method, url, hdrs, body, body ? strlen(body) : 0, 0, &r) != 0)
        return NULL;
    *status = r.status;
    json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
    if (!j)
        fprintf(stderr, "%s %s: %ld, not JSON: %s\n", method, path, r.status, r.body ? r.body : "");
    tg_h_resp_free(&r);
    return j;
}

int tg_h_chat(int port, const char *key, const char *body, struct tg_h_resp *out)
{
    char url[128], auth[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", port);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key ? key : "");
    const char *hdrs[] = {"Content-Type: application/json", key ? auth : NULL, NULL};
    return tg_h_http("POST", url, hdrs, body, strlen(body), 30000, out);
}

int tg_h_upstream_control(int port, const char *what, const char *json)
{
    char url[128];
    struct tg_h_resp r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_control/%s", port, what);
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    int rc = tg_h_http("POST", url, hdrs, json, strlen(json), 5000, &r);
    rc = rc == 0 && r.status == 200 ? 0 : -1;
    tg_h_resp_free(&r);
    return rc;
}

json_t *tg_h_upstream_stats(int port)
{
    char url[128];
    struct tg_h_resp r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_control/stats", port);
    json_t *j = NULL;
    if (tg_h_http("GET", url, NULL, NULL, 0, 5000, &r) == 0)
        j = json_loads(r.body, 0, NULL);
    tg_h_resp_free(&r);
    return j;
}

int tg_h_run(const char *cmd, char **out)
{
    FILE *f = popen(cmd, "r");
    struct tg_buf b;
    char chunk[4096];
    size_t n;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    if (!f)
        return -1;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        tg_buf_append(&b, chunk, n);
    int st = pclose(f);
    if (out)
        *out = tg_buf_steal(&b, NULL);
    else
        tg_buf_free(&b);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ------------------------------------------------------------ webhook receiver */

static void *hook_loop(void *arg)
{
    struct tg_h_hook *h = arg;
    for (int n = 0; n < h->max; n++) {
        int c = accept(h->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char buf[16384];
        size_t got = 0;
        ssize_t k;
        /* read the head, then the body by Content-Length */
        while (got < sizeof(buf) - 1 && (k = read(c, buf + got, sizeof(buf) - 1 - got)) > 0) {
            got += (size_t)k;
            buf[got] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            char *cl = strcasestr(buf, "Content-Length:");
            if (end && cl && got >= (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10))
                break;
        }
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            tg_strlcpy(h->body, end + 4, sizeof(h->body));
            size_t used = strlen(h->all);
            snprintf(h->all + used, sizeof(h->all) - used, "%s\n", end + 4);
        }
        char *sig = strcasestr(buf, "X-Trustgate-Signature: ");
        if (sig) {
            sig += 23;
            snprintf(h->sig, sizeof(h->sig), "%.*s", (int)strcspn(sig, "\r\n"), sig);
        }
        const char *resp =
            n < h->fail_first
                ? "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                : "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        ssize_t w = write(c, resp, strlen(resp));
        close(c);
        h->requests++;
        if (w < 0)
            break;
    }
    return NULL;
}

int tg_h_hook_start(struct tg_h_hook *h, int max, int fail_first)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    memset(h, 0, sizeof(*h));
    h->max = max;
    h->fail_first = fail_first;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0 || bind(h->fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(h->fd, 8) ||
        getsockname(h->fd, (struct sockaddr *)&sa, &sl))
        return -1;
    h->port = ntohs(sa.sin_port);
    return pthread_create(&h->th, NULL, hook_loop, h) ? -1 : 0;
}

int tg_h_hook_wait(struct tg_h_hook *h, int timeout_ms)
{
    for (int i = 0; i < timeout_ms / 20 && h->requests < h->max; i++)
        usleep(20000);
    /* a receiver still waiting is woken by closing its socket */
    if (h->requests < h->max)
        shutdown(h->fd, SHUT_RDWR);
    pthread_join(h->th, NULL);
    close(h->fd);
    return h->requests;
}

/* The schema of version 3, as released (migrations 0..2): a database as an
 * older trustgate left it, for the tests of upgrades. */
const char *const tg_h_schema_v3 =
    "CREATE TABLE conversations (id TEXT PRIMARY KEY NOT NULL, customer_id TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, turns INTEGER NOT NULL,"
    " degraded_streak INTEGER NOT NULL);"
    "CREATE INDEX conversations_customer ON conversations (customer_id, updated_ms);"
    "CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL,"
    " turn_id TEXT NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL, ts_ms INTEGER NOT NULL);"
    "CREATE INDEX messages_conversation ON messages (conversation_id, seq);"
    "CREATE TABLE turns (id TEXT PRIMARY KEY NOT NULL, conversation_id TEXT NOT NULL,"
    " decision TEXT NOT NULL, created_ms INTEGER NOT NULL, record TEXT NOT NULL);"
    "CREATE TABLE reviews (id TEXT PRIMARY KEY NOT NULL, turn_id TEXT NOT NULL, state TEXT NOT "
    "NULL,"
    " queue TEXT NOT NULL, priority INTEGER NOT NULL, deadline_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL, task TEXT NOT NULL);"
    "CREATE INDEX reviews_queue ON reviews (state, priority DESC, deadline_ms);"
    "CREATE TABLE audit (idx INTEGER PRIMARY KEY, data BLOB NOT NULL, leaf_hash BLOB NOT NULL,"
    " root BLOB NOT NULL, ts_ms INTEGER NOT NULL);"
    "CREATE TABLE blobs (key TEXT PRIMARY KEY NOT NULL, data BLOB NOT NULL,"
    " updated_ms INTEGER NOT NULL);"
    "ALTER TABLE turns ADD COLUMN audit_idx INTEGER;"
    "PRAGMA user_version = 3;";

/* ------------------------------------------------------------ PostgreSQL */

static char pg_admin[512];

bool tg_h_pg_available(void)
{
    const char *file = getenv("TG_TEST_PG_URI_FILE");
    FILE *f = file ? fopen(file, "r") : NULL;
    if (!f)
        return false;
    if (!fgets(pg_admin, sizeof(pg_admin), f))
        pg_admin[0] = '\0';
    fclose(f);
    pg_admin[strcspn(pg_admin, "\r\n")] = '\0';
    return pg_admin[0] != '\0';
}

void tg_h_pg_uri_for(const char *db, char *out, size_t n)
{
    const char *auth = strstr(pg_admin, "://");
    const char *slash = auth ? strchr(auth + 3, '/') : NULL;
    const char *rest = slash ? slash + strcspn(slash, "?") : "";
    int head = slash ? (int)(slash - pg_admin) : (int)strlen(pg_admin);
    snprintf(out, n, "%.*s/%s%s", head, pg_admin, db, rest);
}

static void pg_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "database ... does not exist, skipping" and the like */
}

int tg_h_pg_exec(const char *sql)
{
    PGconn *c = PQconnectdb(pg_admin);
    PQsetNoticeProcessor(c, pg_quiet, NULL);
    PGresult *res = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    ExecStatusType st = PQresultStatus(res);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
    if (rc)
        fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
    PQclear(res);
    PQfinish(c);
    return rc;
}

int tg_h_pg_create(const char *prefix, char *db, size_t dblen, char *uri, size_t urilen)
{
    static int seq;
    char sql[256];
    snprintf(db, dblen, "%s_%d_%d", prefix, (int)getpid(), seq++);
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    if (tg_h_pg_exec(sql) != 0)
        return -1;
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
    if (tg_h_pg_exec(sql) != 0)
        return -1;
    tg_h_pg_uri_for(db, uri, urilen);
    return 0;
}

void tg_h_pg_drop(const char *db)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    tg_h_pg_exec(sql);
}
