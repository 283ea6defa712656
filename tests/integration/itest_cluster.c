/*
 * itest_cluster.c - several gateway nodes sharing one PostgreSQL store
 * behave as one gateway: a customer's conversation (its turns and its
 * degradation streak) continues whichever node takes a message, the nodes
 * write one audit log with no gap and no index given twice, a node killed
 * with SIGKILL loses nothing it acknowledged and stops nobody else, and a
 * conversation handed to a person on one node reaches that person from
 * every node.
 *
 * Each case makes a scratch database on the private server whose libpq uri
 * the file $TG_TEST_PG_URI_FILE holds (ctest's fixture "pg",
 * scripts/pg-test.sh; skipped without it), and starts the fake upstream and
 * three nodes A, B and C on it, each with a config of its own naming its
 * data directory (its lock) and a free port, and the same keys, as pods
 * share a mounted secret: A makes them, B and C get copies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#define NODES 3
#define KEY "tg-cl"
#define MAX_ACKS 4096

/*
 * A node's config (its data directory, then the upstream's port twice and
 * the store's uri): any free port; the client's model on the primary rung,
 * a fixed light model below it, a script, a person; turns asking for a
 * review (复核) are held with a 1 s SLA, after which an agent takes the
 * customer; the fairness gate looks at gender every 200 ms.
 */
#define CONFIG_FMT                                                                                 \
    "server:\n  listen: \"127.0.0.1:0\"\n  data_dir: %s\n"                                         \
    "auth:\n  api_keys:\n    - name: t\n      key: " KEY "\n"                                      \
    "users:\n  - name: a1\n    role: agent\n    token: tg-a1\n"                                    \
    "  - name: r1\n    role: reviewer\n    token: tg-r1\n    password: demo\n"                     \
    "review:\n  warn_before: 500ms\n"                                                              \
    "backends:\n"                                                                                  \
    "  - name: primary\n    type: openai\n    base_url: http://127.0.0.1:%d/v1\n"                  \
    "    header_timeout: 2s\n"                                                                     \
    "  - name: light\n    type: openai\n    base_url: http://127.0.0.1:%d/v1\n"                    \
    "    model: light-model\n    header_timeout: 2s\n"                                             \
    "  - name: holding\n    type: script\n    reply: 您好，系统繁忙，请稍候。\n"       \
    "route:\n  backend: primary\n"                                                                 \
    "ladder:\n  budget: 10s\n  max_attempts: 1\n  degraded_to_human: 3\n"                          \
    "  rungs:\n"                                                                                   \
    "    - {name: primary, backend: primary}\n"                                                    \
    "    - {name: light, backend: light}\n"                                                        \
    "    - {name: script, backend: holding}\n"                                                     \
    "    - {name: human}\n"                                                                        \
    "policies:\n  - id: hold\n    description: hold for review\n    when:\n"                       \
    "      keywords: [复核]\n    then:\n      - review: {sla: 1s}\n"                             \
    "  - id: slow\n    description: a slow review\n    when:\n"                                    \
    "      keywords: [审核]\n    then:\n      - review: {sla: 60s}\n"                            \
    "fairness:\n  attributes: [{name: gender, values: [female, male]}]\n"                          \
    "  min_group: 10\n  bootstrap: 200\n  check_every: 200ms\n"                                    \
    "store:\n  uri: \"%s\"\n"

static const char *const node_names[NODES] = {"a", "b", "c"};
static const char *const shared_keys[] = {"pseudonym.key", "audit-ed25519.pem"};

/* The cluster of the running case. */
static struct {
    bool up;              /* false: no PostgreSQL here, the case is skipped */
    char dir[64];         /* config, logs, the nodes' data directories */
    char cfg[NODES][128]; /* each node's config */
    char db[64];          /* the scratch database */
    char uri[600];        /* its libpq uri */
    char data[NODES][128];
    struct tg_h_proc node[NODES];
    struct tg_h_proc upstream;
    PGconn *conn; /* the test's own connection, to read what the nodes wrote */
} C;

/* What a client was told by one chat turn. */
struct reply {
    long status;
    int node;
    char conv[64], turn[64], decision[32], rung[32], review[64], content[1024];
    int64_t audit;
    bool degraded_3x;
};

/* The turns acknowledged (status 200 with a turn id) under load. */
static struct {
    pthread_mutex_t mu;
    struct reply acks[MAX_ACKS];
    size_t n;
    int per_node[NODES];
    volatile int stop;
} L = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ------------------------------------------------------------ PostgreSQL */

/* A fresh, empty database for this case in C.db, its uri in C.uri. */
static int pg_init(void)
{
    return tg_h_pg_create("tg_cluster", C.db, sizeof(C.db), C.uri, sizeof(C.uri));
}

static void pg_fini(void)
{
    tg_h_pg_drop(C.db);
}

/* The number in the one row sql finds with text parameters params[0..n-1];
 * -1 when it finds no row (or fails, which is printed). */
static int64_t db_int(const char *sql, int n, const char *const *params)
{
    PGresult *res = PQexecParams(C.conn, sql, n, NULL, params, NULL, NULL, 0);
    int64_t v = -1;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        print_error("%s: %s\n", sql, PQerrorMessage(C.conn));
    else if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
             tg_parse_i64(PQgetvalue(res, 0, 0), &v) != TG_OK)
        v = -1;
    PQclear(res);
    return v;
}

/* db_int must find want. */
static void db_expect(const char *sql, int n, const char *const *params, int64_t want)
{
    int64_t got = db_int(sql, n, params);
    if (got != want)
        fail_msg("%s finds %lld, not %lld", sql, (long long)got, (long long)want);
}

/* The audit log's indexes are exactly 0..n-1, in the order the table
 * returns them; returns n. */
static int64_t audit_contiguous(void)
{
    PGresult *res = PQexec(C.conn, "SELECT idx FROM audit ORDER BY idx");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("SELECT idx FROM audit: %s", PQerrorMessage(C.conn));
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        int64_t idx = -1;
        if (tg_parse_i64(PQgetvalue(res, i, 0), &idx) != TG_OK || idx != i) {
            const char *got = PQgetvalue(res, i, 0);
            char text[32];
            tg_strlcpy(text, got, sizeof(text));
            PQclear(res);
            fail_msg("audit row %d of %d has index %s, not %d (a gap)", i, n, text, i);
        }
    }
    PQclear(res);
    return n;
}

/* ------------------------------------------------------------ the cluster */

/* Copy dir_from/name to dir_to/name (0600): the nodes share their keys. */
static int copy_key(const char *dir_from, const char *dir_to, const char *name)
{
    char from[256], to[256], buf[8192];
    snprintf(from, sizeof(from), "%s/%s", dir_from, name);
    snprintf(to, sizeof(to), "%s/%s", dir_to, name);
    int in = open(from, O_RDONLY);
    int out = in >= 0 ? open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600) : -1;
    ssize_t n = 0;
    while (out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            n = -1;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (in < 0 || out < 0 || n < 0) {
        fprintf(stderr, "cannot copy %s to %s\n", from, to);
        return -1;
    }
    return 0;
}

/* Read p's stdout until its banner, "serving on http://HOST:PORT"; 0 and
 * p->port set, or -1 after 10 s. */
static int read_port(struct tg_h_proc *p)
{
    char buf[4096];
    size_t used = 0;
    int64_t deadline = tg_clock_mono_ns() + 10000 * 1000000LL;
    while (tg_clock_mono_ns() < deadline && used + 1 < sizeof(buf)) {
        struct pollfd pfd = {p->out_fd, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t n = read(p->out_fd, buf + used, sizeof(buf) - used - 1);
        if (n <= 0)
            return -1;
        used += (size_t)n;
        buf[used] = '\0';
        const char *u = strstr(buf, "serving on http://");
        const char *colon = u ? strchr(u + 18, ':') : NULL;
        if (colon && strchr(colon, '\n')) {
            char *end = NULL;
            long port = strtol(colon + 1, &end, 10);
            p->port = end != colon + 1 && port > 0 && port < 65536 ? (int)port : 0;
            return p->port ? 0 : -1;
        }
    }
    return -1;
}

/*
 * `trustgate serve -c` node i's config, stderr to its data directory's
 * gateway.log; waits for the banner.  Not tg_h_start_gateway: its --data
 * overrides store.uri, which would give each node a SQLite file of its own.
 */
static int start_node(int i)
{
    struct tg_h_proc *p = &C.node[i];
    char bin[512], data[sizeof(C.data[i])];
    int fds[2];
    memset(p, 0, sizeof(*p));
    tg_strlcpy(data, C.data[i], sizeof(data)); /* not C.data itself: snprintf into C */
    snprintf(p->log_path, sizeof(p->log_path), "%s/gateway.log", data);
    tg_h_bin("trustgate", bin, sizeof(bin));
    if (pipe(fds))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int log = open(p->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fds[1], 1);
        if (log >= 0)
            dup2(log, 2);
        close(fds[0]);
        close(fds[1]);
        execl(bin, bin, "serve", "-c", C.cfg[i], (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    p->pid = pid;
    p->out_fd = fds[0];
    if (read_port(p) == 0)
        return 0;
    char *log = tg_h_log(p);
    fprintf(stderr, "node %s did not start; its log:\n%s\n", node_names[i], log ? log : "");
    tg_free(log);
    return -1;
}

/* A webhook receiver the nodes' configs name, when not 0 (test 8). */
static int hook_port;

/* Each node's data directory and config; node A first, which makes the
 * keys; then B and C with copies of them. */
static int start_nodes(void)
{
    char text[4096];
    for (int i = 0; i < NODES; i++) {
        char name[16], dir[sizeof(C.dir)];
        tg_strlcpy(dir, C.dir, sizeof(dir)); /* not C.dir itself: snprintf into C */
        snprintf(C.data[i], sizeof(C.data[i]), "%s/%s", dir, node_names[i]);
        snprintf(name, sizeof(name), "%s.yaml", node_names[i]);
        int n = snprintf(text, sizeof(text), CONFIG_FMT, C.data[i], C.upstream.port,
                         C.upstream.port, C.uri);
        if (hook_port)
            snprintf(text + n, sizeof(text) - (size_t)n,
                     "webhooks:\n  - url: http://127.0.0.1:%d/hook\n    secret: s3cr3t\n",
                     hook_port);
        if (mkdir(C.data[i], 0700) ||
            !tg_h_write_file(C.dir, name, text, C.cfg[i], sizeof(C.cfg[i])))
            return -1;
    }
    if (start_node(0))
        return -1;
    for (int i = 1; i < NODES; i++) {
        for (size_t k = 0; k < TG_ARRAY_LEN(shared_keys); k++)
            if (copy_key(C.data[0], C.data[i], shared_keys[k]))
                return -1;
        if (start_node(i))
            return -1;
    }
    return 0;
}

static int start_cluster(void **state)
{
    (void)state;
    memset(&C, 0, sizeof(C));
    if (!tg_h_pg_available())
        return 0;
    if (!tg_h_tmpdir(C.dir, sizeof(C.dir)) || pg_init() ||
        tg_h_start_upstream(&C.upstream, C.dir) || start_nodes())
        return -1;
    C.conn = PQconnectdb(C.uri);
    if (PQstatus(C.conn) != CONNECTION_OK) {
        fprintf(stderr, "%s: %s\n", C.uri, PQerrorMessage(C.conn));
        return -1;
    }
    C.up = true;
    return 0;
}

static int stop_cluster(void **state)
{
    (void)state;
    int rc = 0;
    char cmd[128];
    if (!C.dir[0])
        return 0; /* skipped */
    /* A clean exit (0) also means no sanitizer report in the children. */
    for (int i = 0; i < NODES; i++)
        if (C.node[i].pid && tg_h_stop(&C.node[i], 5000) != 0)
            rc = -1;
    if (C.upstream.pid && tg_h_stop(&C.upstream, 2000) != 0)
        rc = -1;
    PQfinish(C.conn);
    C.conn = NULL;
    if (C.db[0])
        pg_fini();
    if (rc) {
        fprintf(stderr, "a child did not exit cleanly; logs are in %s\n", C.dir);
        return -1;
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", C.dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void need_cluster(void)
{
    if (!C.up)
        skip(); /* no PostgreSQL: TG_TEST_PG_URI_FILE is unset */
}

/* ------------------------------------------------------------ clients */

static void read_reply(const json_t *j, struct reply *out)
{
    const json_t *tg = json_object_get(j, "trustgate");
    const json_t *msg =
        json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    tg_strlcpy(out->conv, tg_json_str(tg, "conversation_id", ""), sizeof(out->conv));
    tg_strlcpy(out->turn, tg_json_str(tg, "turn_id", ""), sizeof(out->turn));
    tg_strlcpy(out->decision, tg_json_str(tg, "decision", ""), sizeof(out->decision));
    tg_strlcpy(out->rung, tg_json_str(tg, "rung", ""), sizeof(out->rung));
    tg_strlcpy(out->review, tg_json_str(tg, "review_id", ""), sizeof(out->review));
    tg_strlcpy(out->content, tg_json_str(msg, "content", ""), sizeof(out->content));
    out->audit = tg_json_int(tg, "audit_index", -1);
    size_t i;
    json_t *tag;
    json_array_foreach(json_object_get(tg, "tags"), i, tag)
    {
        if (json_is_string(tag) && !strcmp(json_string_value(tag), "degraded_3x"))
            out->degraded_3x = true;
    }
}

/* One chat turn of customer user on node, asking for model; what the client
 * was told in out.  0 when a reply came (any status), -1 when none did.
 * Safe in any thread. */
static int say(int node, const char *user, const char *model, const char *text, struct reply *out)
{
    char body[1024];
    struct tg_h_resp r;
    memset(out, 0, sizeof(*out));
    out->node = node;
    out->audit = -1;
    snprintf(body, sizeof(body),
             "{\"model\":\"%s\",\"user\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":"
             "\"%s\"}]}",
             model, user, text);
    int rc = tg_h_chat(C.node[node].port, KEY, body, &r);
    out->status = r.status;
    json_t *j = rc == 0 ? json_loads(r.body, 0, NULL) : NULL;
    if (j)
        read_reply(j, out);
    json_decref(j);
    tg_h_resp_free(&r);
    return rc;
}

/* say, which must be answered with 200. */
static void turn_ok(int node, const char *user, const char *model, const char *text,
                    struct reply *out)
{
    assert_int_equal(say(node, user, model, text, out), 0);
    if (out->status != 200)
        fail_msg("node %s answered %ld", node_names[node], out->status);
}

/* Script model on the fake upstream: {"model", "default": def}. */
static void script_model(const char *model, const char *def)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"model\":\"%s\",\"default\":%s}", model, def);
    assert_int_equal(tg_h_upstream_control(C.upstream.port, "model", body), 0);
}

/* How many chat requests the fake upstream saw for model (0 when never asked). */
static int64_t upstream_requests(const char *model)
{
    char url[128];
    struct tg_h_resp r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_control/models", C.upstream.port);
    assert_int_equal(tg_h_http("GET", url, NULL, NULL, 0, 0, &r), 0);
    json_t *all = json_loads(r.body, 0, NULL);
    tg_h_resp_free(&r);
    assert_non_null(all);
    int64_t n = tg_json_int(json_object_get(all, model), "requests", 0);
    json_decref(all);
    return n;
}

/* `trustgate audit verify -c CONFIG` must pass, counting that many leaves. */
static void audit_verifies(int64_t leaves)
{
    char cmd[512], bin[256], want[64], *out = NULL;
    snprintf(cmd, sizeof(cmd), "%s audit verify -c %s 2>&1",
             tg_h_bin("trustgate", bin, sizeof(bin)), C.cfg[0]);
    int rc = tg_h_run(cmd, &out);
    snprintf(want, sizeof(want), "audit log intact: %lld leaves,", (long long)leaves);
    if (rc != 0 || !strstr(out ? out : "", want))
        fail_msg("audit verify exited %d, wanted 0 and '%s': %s", rc, want, out ? out : "");
    tg_free(out);
}

/* ------------------------------------------------------------ 1. one conversation */

/* Six messages of cust-1 on A, B, C, A, B, C: one conversation of six turns. */
static void round_robin(char conv[64])
{
    struct reply r;
    char text[64];
    for (int i = 0; i < 6; i++) {
        snprintf(text, sizeof(text), "第%d个问题", i + 1);
        turn_ok(i % NODES, "cust-1", "m-ok", text, &r);
        assert_string_equal(r.decision, "deliver");
        if (i == 0)
            tg_strlcpy(conv, r.conv, 64);
        if (strcmp(r.conv, conv) != 0)
            fail_msg("message %d on node %s went to %s, not %s", i + 1, node_names[i % NODES],
                     r.conv, conv);
    }
    assert_true(tg_str_has_prefix(conv, "conv_"));
    const char *id[] = {conv};
    db_expect("SELECT turns FROM conversations WHERE id = $1", 1, id, 6);
    db_expect("SELECT count(*) FROM turns", 0, NULL, 6);
}

/* Three degraded turns in a row, one on each node, then a person: what
 * itest_ladder's single-node case asserts. */
static void degrade_across_nodes(const char *conv)
{
    struct reply r;
    script_model("light-model", "{}");
    script_model("m-weak", "{\"status\":503}");
    for (int i = 0; i < NODES; i++) {
        turn_ok(i, "cust-1", "m-weak", "还在吗", &r);
        assert_string_equal(r.conv, conv);
        assert_string_equal(r.rung, "light");
    }
    int64_t before = upstream_requests("m-weak");
    turn_ok(0, "cust-1", "m-weak", "还在吗", &r);
    assert_string_equal(r.conv, conv);
    assert_string_equal(r.decision, "handoff");
    assert_non_null(strstr(r.content, "人工"));
    assert_true(r.degraded_3x);
    assert_true(tg_str_has_prefix(r.review, "rev_"));
    assert_int_equal(upstream_requests("m-weak"), before); /* no model was asked */
}

static void test_one_conversation_across_nodes(void **state)
{
    (void)state;
    char conv[64];
    need_cluster();
    round_robin(conv);
    degrade_across_nodes(conv);
}

/* ------------------------------------------------------------ load */

static void add_ack(const struct reply *r)
{
    pthread_mutex_lock(&L.mu);
    if (L.n < MAX_ACKS) {
        L.acks[L.n++] = *r;
        L.per_node[r->node]++;
    }
    pthread_mutex_unlock(&L.mu);
}

static int acked_on(int node)
{
    pthread_mutex_lock(&L.mu);
    int n = L.per_node[node];
    pthread_mutex_unlock(&L.mu);
    return n;
}

static void reset_acks(void)
{
    pthread_mutex_lock(&L.mu);
    L.n = 0;
    memset(L.per_node, 0, sizeof(L.per_node));
    L.stop = 0;
    pthread_mutex_unlock(&L.mu);
}

struct worker {
    int node, id;
    int turns; /* this many, or until L.stop when 0 */
    pthread_t th;
};

/* A customer after another on one node, every acknowledged turn kept. */
static void *customer(void *arg)
{
    struct worker *w = arg;
    for (int n = 0; w->turns ? n < w->turns : !L.stop; n++) {
        char user[64];
        struct reply r;
        snprintf(user, sizeof(user), "load-%d-%d-%d", w->node, w->id, n);
        if (say(w->node, user, "m-ok", "犹豫期多少天", &r) == 0 && r.status == 200 && r.turn[0])
            add_ack(&r);
        else if (!w->turns)
            usleep(20000); /* a dead node refuses at once */
    }
    return NULL;
}

/* Every acknowledged turn is in the store once, pointing at its own leaf,
 * and no audit index was promised twice. */
static void acks_are_stored(void)
{
    for (size_t i = 0; i < L.n; i++) {
        const struct reply *a = &L.acks[i];
        char idx[24];
        snprintf(idx, sizeof(idx), "%lld", (long long)a->audit);
        const char *p[] = {a->turn, idx};
        int64_t rows = db_int("SELECT count(*) FROM turns WHERE id = $1", 1, p);
        if (rows != 1)
            fail_msg("turn %s acknowledged by node %s is in the store %lld times", a->turn,
                     node_names[a->node], (long long)rows);
        rows = db_int("SELECT count(*) FROM audit WHERE idx = $2::bigint"
                      " AND position($1 in convert_from(data, 'UTF8')) > 0",
                      2, p);
        if (rows != 1)
            fail_msg("audit index %s promised to %s (node %s) does not hold it", idx, a->turn,
                     node_names[a->node]);
        for (size_t k = 0; k < i; k++)
            if (L.acks[k].audit == a->audit)
                fail_msg("audit index %s was promised to %s (node %s) and %s (node %s)", idx,
                         L.acks[k].turn, node_names[L.acks[k].node], a->turn, node_names[a->node]);
    }
}

/* ------------------------------------------------------------ 2. one audit log */

static void test_audit_log_shared(void **state)
{
    (void)state;
    struct worker w[2 * NODES];
    need_cluster();
    reset_acks();
    for (int i = 0; i < 2 * NODES; i++) {
        w[i] = (struct worker){.node = i % NODES, .id = i, .turns = 5};
        assert_int_equal(pthread_create(&w[i].th, NULL, customer, &w[i]), 0);
    }
    for (int i = 0; i < 2 * NODES; i++)
        pthread_join(w[i].th, NULL);
    if (L.n != 30)
        fail_msg("%zu of 30 turns answered (A %d, B %d, C %d)", L.n, L.per_node[0], L.per_node[1],
                 L.per_node[2]);
    acks_are_stored();
    assert_int_equal(audit_contiguous(), 30);
    audit_verifies(30);
}

/* ------------------------------------------------------------ 3. kill -9 */

/* Wait up to timeout_ms until node has acknowledged at least n turns. */
static bool wait_acks(int node, int n, int timeout_ms)
{
    for (int t = 0; t < timeout_ms && acked_on(node) < n; t += 20)
        usleep(20000);
    return acked_on(node) >= n;
}

static void kill_node(int node)
{
    kill(C.node[node].pid, SIGKILL);
    waitpid(C.node[node].pid, NULL, 0);
    C.node[node].pid = 0;
    close(C.node[node].out_fd);
}

static void test_kill_one_node_under_load(void **state)
{
    (void)state;
    struct worker w[2 * NODES];
    struct reply r;
    need_cluster();
    reset_acks();
    for (int i = 0; i < 2 * NODES; i++) {
        w[i] = (struct worker){.node = i % NODES, .id = i};
        assert_int_equal(pthread_create(&w[i].th, NULL, customer, &w[i]), 0);
    }
    bool b_answered = wait_acks(1, 5, 15000);
    kill_node(1); /* B, mid-flight */
    int a0 = acked_on(0), c0 = acked_on(2);
    bool others_go_on = wait_acks(0, a0 + 10, 15000) && wait_acks(2, c0 + 10, 15000);
    L.stop = 1;
    for (int i = 0; i < 2 * NODES; i++)
        pthread_join(w[i].th, NULL);
    if (!b_answered)
        fail_msg("node B answered %d turns before the kill, wanted 5", acked_on(1));
    if (!others_go_on)
        fail_msg("after B died A answered %d and C %d more turns, wanted 10 each", acked_on(0) - a0,
                 acked_on(2) - c0);
    acks_are_stored();
    int64_t n = audit_contiguous();
    assert_true(n >= (int64_t)L.n);
    audit_verifies(n);
    for (int node = 0; node < NODES; node += 2) { /* A and C */
        turn_ok(node, "after-the-kill", "m-ok", "犹豫期多少天", &r);
        assert_string_equal(r.decision, "deliver");
    }
}

/* ------------------------------------------------------------ 4. hand-off */

/* Wait up to timeout_ms until review task id is with an agent. */
static bool handed_off(const char *id, int timeout_ms)
{
    const char *p[] = {id};
    for (int t = 0; t <= timeout_ms; t += 50) {
        if (db_int("SELECT count(*) FROM reviews WHERE id = $1 AND state = 'handed_off'", 1, p) ==
            1)
            return true;
        usleep(50000);
    }
    return false;
}

static void test_handoff_follows_the_customer(void **state)
{
    (void)state;
    struct reply r;
    char id[64], conv[64];
    need_cluster();
    turn_ok(0, "cust-h", "m-ok", "请帮我复核这笔理财", &r);
    assert_string_equal(r.decision, "review");
    tg_strlcpy(id, r.review, sizeof(id));
    tg_strlcpy(conv, r.conv, sizeof(conv));
    assert_true(tg_str_has_prefix(id, "rev_"));
    /* nobody decides within the 1 s SLA: node A hands the customer to an agent */
    assert_true(handed_off(id, 5000));
    /* the customer writes again, now to node C: the agent gets it, no model */
    turn_ok(2, "cust-h", "m-after", "我的问题还没解决，请尽快联系我", &r);
    assert_string_equal(r.conv, conv);
    assert_string_equal(r.decision, "handoff");
    assert_string_equal(r.review, id);
    assert_non_null(strstr(r.content, "人工"));
    assert_int_equal(upstream_requests("m-after"), 0);
    const char *p[] = {id};
    db_expect("SELECT count(*) FROM handoff_messages WHERE review_id = $1 AND sender = 'customer'",
              1, p, 1);
}

/* ------------------------------------------------------------ 5. reviews across nodes */

/* A chat request on a node that waits for its review's outcome. */
struct waiting {
    int node;
    const char *text;
    struct tg_h_resp r;
};

static void *wait_for_answer(void *arg)
{
    struct waiting *w = arg;
    char url[128], body[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", C.node[w->node].port);
    snprintf(body, sizeof(body),
             "{\"model\":\"m-ok\",\"user\":\"cust-w\",\"messages\":[{\"role\":\"user\","
             "\"content\":\"%s\"}]}",
             w->text);
    const char *hdrs[] = {"Authorization: Bearer " KEY, "Content-Type: application/json",
                          "X-Trustgate-Wait: 20", NULL};
    tg_h_http("POST", url, hdrs, body, strlen(body), 30000, &w->r);
    return NULL;
}

/* A reviewer's act through node, by the reviewer's token: its HTTP status. */
static long review_act(int node, const char *id, const char *act, const char *body)
{
    char url[160];
    struct tg_h_resp r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/reviews/%s/%s", C.node[node].port, id, act);
    const char *hdrs[] = {"Authorization: Bearer tg-r1", "Content-Type: application/json", NULL};
    assert_int_equal(tg_h_http("POST", url, hdrs, body, strlen(body), 10000, &r), 0);
    long status = r.status;
    tg_h_resp_free(&r);
    return status;
}

/* The id of the one task in state, waiting up to timeout_ms for it. */
static bool task_in(const char *state, char id[64], int timeout_ms)
{
    const char *p[] = {state};
    for (int t = 0; t <= timeout_ms; t += 50) {
        PGresult *res = PQexecParams(C.conn, "SELECT id FROM reviews WHERE state = $1", 1, NULL, p,
                                     NULL, NULL, 0);
        bool one = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
        if (one)
            tg_strlcpy(id, PQgetvalue(res, 0, 0), 64);
        PQclear(res);
        if (one)
            return true;
        usleep(50000);
    }
    return false;
}

/* A reviewer's answer with a phone number in it, which the store masks. */
#define ANSWER "人工答复：建议分散配置，详情请致电13800138000。"

static void test_review_across_nodes(void **state)
{
    (void)state;
    pthread_t th;
    char id[64];
    need_cluster();
    /* held through A, whose request waits for the outcome */
    struct waiting w = {.node = 0, .text = "请审核这笔理财配置"};
    assert_int_equal(pthread_create(&th, NULL, wait_for_answer, &w), 0);
    assert_true(task_in("pending", id, 5000));
    /* claimed through B: C may not take it meanwhile, and r1 decides through C */
    assert_int_equal(review_act(1, id, "claim", "{}"), 200);
    assert_true(task_in("claimed", id, 2000));
    assert_int_equal(review_act(2, id, "decision",
                                "{\"action\":\"edit\",\"text\":\"" ANSWER "\","
                                "\"attestations\":[]}"),
                     200);
    pthread_join(th, NULL);
    /* A's waiting request got the decision made on C */
    assert_int_equal(w.r.status, 200);
    json_t *j = json_loads(w.r.body, 0, NULL);
    assert_non_null(j);
    struct reply r;
    read_reply(j, &r);
    json_decref(j);
    /* as the reviewer wrote it: the store keeps the number masked */
    assert_string_equal(r.content, ANSWER);
    assert_non_null(strstr(w.r.body, "\"state\":\"decided\""));
    const char *p[] = {id};
    db_expect("SELECT count(*) FROM reviews WHERE id = $1 AND task LIKE '%13800138000%'", 1, p, 0);
    assert_true(w.r.seconds < 10);
    tg_h_resp_free(&w.r);
    audit_verifies(db_int("SELECT count(*) FROM audit", 0, NULL));
}

/* The SLA of a task runs out after the node that holds it died: another
 * node hands it to an agent, once. */
static void test_sla_survives_its_node(void **state)
{
    (void)state;
    struct reply r;
    char id[64];
    need_cluster();
    turn_ok(0, "cust-s", "m-ok", "请帮我复核这笔转账", &r);
    assert_string_equal(r.decision, "review");
    tg_strlcpy(id, r.review, sizeof(id));
    kill_node(0);
    assert_true(handed_off(id, 5000));
    usleep(1500 * 1000); /* the other node's timer has fired too by now */
    const char *p[] = {id};
    db_expect("SELECT count(*) FROM reviews, jsonb_array_elements(task::jsonb -> 'events') e"
              " WHERE id = $1 AND e ->> 'event' = 'handed_off'",
              1, p, 1);
    db_expect("SELECT count(*) FROM audit WHERE position(convert_to($1, 'UTF8') in data) > 0"
              " AND convert_from(data, 'UTF8')::jsonb ->> 'kind' = 'handoff'",
              1, p, 1);
}

/* ------------------------------------------------------------ 6. console sessions */

/* A request to node with optional headers; its status, and the body parsed in *out. */
static long node_req(int node, const char *method, const char *path, const char *const *hdrs,
                     const char *body, struct tg_h_resp *out)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", C.node[node].port, path);
    assert_int_equal(tg_h_http(method, url, hdrs, body, body ? strlen(body) : 0, 10000, out), 0);
    return out->status;
}

/* The cookie a response set, as a request header. */
static void session_cookie(const struct tg_h_resp *r, char *out, size_t n)
{
    const char *c = strstr(r->headers, "Set-Cookie: tg_session=");
    assert_non_null(c);
    c += strlen("Set-Cookie: ");
    snprintf(out, n, "Cookie: %.*s", (int)strcspn(c, ";\r\n"), c);
}

/* A reviewer logged in on one node is logged in on every node, and logged
 * out on every node when the session ends on one. */
static void test_console_session_on_every_node(void **state)
{
    (void)state;
    struct tg_h_resp r;
    char ck[256], csrf[128];
    const char *json[] = {"Content-Type: application/json", NULL};
    need_cluster();
    assert_int_equal(node_req(0, "POST", "/console/api/login", json,
                              "{\"user\":\"r1\",\"password\":\"demo\"}", &r),
                     200);
    session_cookie(&r, ck, sizeof(ck));
    json_t *j = json_loads(r.body, 0, NULL);
    snprintf(csrf, sizeof(csrf), "X-CSRF-Token: %s", tg_json_str(j, "csrf", ""));
    json_decref(j);
    tg_h_resp_free(&r);
    const char *with_cookie[] = {ck, NULL}, *with_both[] = {ck, csrf, NULL};
    for (int n = 0; n < NODES; n++) {
        assert_int_equal(node_req(n, "GET", "/console/api/me", with_cookie, NULL, &r), 200);
        assert_non_null(strstr(r.body, "\"r1\""));
        tg_h_resp_free(&r);
    }
    assert_int_equal(node_req(2, "POST", "/console/api/logout", with_both, NULL, &r), 200);
    tg_h_resp_free(&r);
    for (int n = 0; n < NODES; n++) {
        assert_int_equal(node_req(n, "GET", "/console/api/me", with_cookie, NULL, &r), 401);
        tg_h_resp_free(&r);
    }
}

/* Failed logins count on every node: five wrong passwords spread over the
 * nodes, and the next attempt waits whichever node it reaches. */
static void test_failed_logins_count_on_every_node(void **state)
{
    (void)state;
    struct tg_h_resp r;
    const char *json[] = {"Content-Type: application/json", NULL};
    need_cluster();
    for (int i = 0; i < 5; i++) {
        assert_int_equal(node_req(i % NODES, "POST", "/console/api/login", json,
                                  "{\"user\":\"r1\",\"password\":\"guess\"}", &r),
                         401);
        tg_h_resp_free(&r);
    }
    for (int n = 0; n < NODES; n++) {
        assert_int_equal(node_req(n, "POST", "/console/api/login", json,
                                  "{\"user\":\"r1\",\"password\":\"demo\"}", &r),
                         429);
        assert_non_null(strstr(r.headers, "Retry-After: "));
        tg_h_resp_free(&r);
    }
}

/* ------------------------------------------------------------ 9. one customer at once */

struct burst {
    int node;
    struct reply r;
};

static void *burst_turn(void *arg)
{
    struct burst *b = arg;
    say(b->node, "cust-b", "m-ok", "同时发来的问题", &b->r);
    return NULL;
}

/* Messages of one customer taken at the same moment by every node: one
 * conversation, and every turn counted. */
static void test_one_customer_at_once(void **state)
{
    (void)state;
    struct reply first;
    struct burst b[2 * NODES];
    pthread_t th[2 * NODES];
    need_cluster();
    turn_ok(0, "cust-b", "m-ok", "第一个问题", &first);
    for (int i = 0; i < 2 * NODES; i++) {
        b[i].node = i % NODES;
        assert_int_equal(pthread_create(&th[i], NULL, burst_turn, &b[i]), 0);
    }
    for (int i = 0; i < 2 * NODES; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(b[i].r.status, 200);
        assert_string_equal(b[i].r.conv, first.conv);
    }
    const char *id[] = {first.conv};
    db_expect("SELECT turns FROM conversations WHERE id = $1", 1, id, 1 + 2 * NODES);
}

/* ------------------------------------------------------------ 8. webhooks */

static struct tg_h_hook hook;

/* The receiver answers 500 once, then 200. */
static int start_cluster_hooked(void **state)
{
    if (tg_h_hook_start(&hook, 2, 1))
        return -1;
    hook_port = hook.port;
    return start_cluster(state);
}

static int stop_cluster_hooked(void **state)
{
    hook_port = 0;
    return stop_cluster(state);
}

static int64_t outbox_size(void)
{
    return db_int("SELECT count(*) FROM blobs WHERE key LIKE 'outbox/%'", 0, NULL);
}

/* A webhook the node that wrote it could not deliver before it died is
 * delivered by another node, with the same delivery id. */
static void test_webhook_outlives_its_node(void **state)
{
    (void)state;
    struct reply r;
    need_cluster();
    kill_node(1); /* A alone hands the task off and writes the delivery */
    kill_node(2);
    turn_ok(0, "cust-k", "m-ok", "请帮我复核这笔款", &r);
    assert_string_equal(r.decision, "review");
    for (int i = 0; i < 300 && hook.requests < 1; i++)
        usleep(20000);
    assert_int_equal(hook.requests, 1); /* the first attempt: refused */
    char first[8192];
    tg_strlcpy(first, hook.body, sizeof(first));
    kill_node(0);
    assert_int_equal(outbox_size(), 1);
    assert_int_equal(start_node(1), 0); /* B comes back: the outbox is its too */
    assert_int_equal(tg_h_hook_wait(&hook, 10000), 2);
    assert_string_equal(hook.body, first);
    json_t *ev = json_loads(hook.body, 0, NULL);
    assert_string_equal(tg_json_str(ev, "event", ""), "review.handed_off");
    assert_string_equal(tg_json_str(ev, "review_id", ""), r.review);
    json_decref(ev);
    for (int i = 0; i < 150 && outbox_size() != 0; i++)
        usleep(20000);
    assert_int_equal(outbox_size(), 0);
}

/* ------------------------------------------------------------ 9. fairness */

static int64_t leaves_of(const char *fragment)
{
    const char *p[] = {fragment};
    return db_int("SELECT count(*) FROM audit WHERE position(convert_to($1, 'UTF8') in data) > 0",
                  1, p);
}

static void *fairness_get(void *arg)
{
    int node = (int)(intptr_t)arg;
    struct tg_h_resp r;
    const char *auth[] = {"Authorization: Bearer tg-r1", NULL};
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/fairness", C.node[node].port);
    if (tg_h_http("GET", url, auth, NULL, 0, 10000, &r) == 0)
        tg_h_resp_free(&r);
    return NULL;
}

/* A fairness gate that closes while every node watches it alerts and
 * freezes releases once, whichever node sees it first. */
static void test_fairness_freezes_once(void **state)
{
    (void)state;
    need_cluster();
    /* half of the women's questions are held for review, none of the men's */
    for (int i = 0; i < 40; i++) {
        char body[512];
        struct tg_h_resp r;
        bool woman = i % 2 == 0, held = woman && i % 4 == 0;
        snprintf(body, sizeof(body),
                 "{\"model\":\"m-ok\",\"user\":\"fair-%d\",\"metadata\":{\"gender\":\"%s\"},"
                 "\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
                 i, woman ? "female" : "male", held ? "请审核我的保单" : "你好");
        assert_int_equal(tg_h_chat(C.node[i % NODES].port, KEY, body, &r), 0);
        assert_int_equal(r.status, 200);
        tg_h_resp_free(&r);
    }
    /* every node asked at once, and their timers every 200 ms */
    pthread_t th[NODES];
    for (int i = 0; i < NODES; i++)
        assert_int_equal(pthread_create(&th[i], NULL, fairness_get, (void *)(intptr_t)i), 0);
    for (int i = 0; i < NODES; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 100 && leaves_of("\"action\":\"freeze\"") < 1; i++)
        usleep(20000);
    usleep(600 * 1000); /* three more rounds of every node's timer */
    assert_int_equal(leaves_of("\"kind\":\"fairness_alert\""), 1);
    assert_int_equal(leaves_of("\"action\":\"freeze\""), 1);
    struct tg_h_resp r;
    const char *auth[] = {"Authorization: Bearer tg-r1", NULL};
    for (int i = 0; i < NODES; i++) {
        assert_int_equal(node_req(i, "GET", "/v1/fairness", auth, NULL, &r), 200);
        json_t *j = json_loads(r.body, 0, NULL);
        assert_true(tg_json_bool(json_object_get(j, "releases"), "frozen", false));
        json_decref(j);
        tg_h_resp_free(&r);
    }
    audit_verifies(audit_contiguous());
}

/* ------------------------------------------------------------ 7. moving up */

/* A deployment that ran on one node's SQLite file moves to the shared
 * server: `store migrate --from --to` copies it with the same audit root,
 * and its customers' conversations go on on any node. */
static void test_move_up_from_sqlite(void **state)
{
    (void)state;
    char dir[256], cmd[1400], bin[256], root[80], *out = NULL;
    struct reply r;
    need_cluster();
    snprintf(dir, sizeof(dir), "%s/single", C.dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    /* the deployment's keys go with it */
    assert_int_equal(copy_key(C.data[0], dir, "pseudonym.key"), 0);
    tg_h_bin("trustgate", bin, sizeof(bin));
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof(cmd), "%s ask -c %s -d %s -u cust-m 'm-ok 第%d个问题' >/dev/null 2>&1",
                 bin, C.cfg[0], dir, i);
        assert_int_equal(system(cmd), 0);
    }
    snprintf(cmd, sizeof(cmd), "%s audit verify -c %s -d %s 2>&1", bin, C.cfg[0], dir);
    assert_int_equal(tg_h_run(cmd, &out), 0);
    const char *at = strstr(out, "root ");
    assert_non_null(at);
    tg_strlcpy(root, at + 5, 65);
    tg_free(out);
    snprintf(cmd, sizeof(cmd), "%s store migrate --from sqlite:%s/trustgate.db --to '%s' 2>&1", bin,
             dir, C.uri);
    assert_int_equal(tg_h_run(cmd, &out), 0);
    if (!strstr(out, root))
        fail_msg("the copy's root is not %s: %s", root, out);
    tg_free(out);
    /* a second copy into a store with a log is refused */
    assert_int_not_equal(tg_h_run(cmd, &out), 0);
    tg_free(out);
    /* the customer's conversation goes on, on node B */
    turn_ok(1, "cust-m", "m-ok", "第四个问题", &r);
    const char *p[] = {r.conv};
    db_expect("SELECT turns FROM conversations WHERE id = $1", 1, p, 4);
    audit_verifies(4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_conversation_across_nodes, start_cluster,
                                        stop_cluster),
        cmocka_unit_test_setup_teardown(test_audit_log_shared, start_cluster, stop_cluster),
        cmocka_unit_test_setup_teardown(test_kill_one_node_under_load, start_cluster, stop_cluster),
        cmocka_unit_test_setup_teardown(test_handoff_follows_the_customer, start_cluster,
                                        stop_cluster),
        cmocka_unit_test_setup_teardown(test_review_across_nodes, start_cluster, stop_cluster),
        cmocka_unit_test_setup_teardown(test_sla_survives_its_node, start_cluster, stop_cluster),
        cmocka_unit_test_setup_teardown(test_console_session_on_every_node, start_cluster,
                                        stop_cluster),
        cmocka_unit_test_setup_teardown(test_failed_logins_count_on_every_node, start_cluster,
                                        stop_cluster),
        cmocka_unit_test_setup_teardown(test_move_up_from_sqlite, start_cluster, stop_cluster),
        cmocka_unit_test_setup_teardown(test_fairness_freezes_once, start_cluster, stop_cluster),
        cmocka_unit_test_setup_teardown(test_webhook_outlives_its_node, start_cluster_hooked,
                                        stop_cluster_hooked),
        cmocka_unit_test_setup_teardown(test_one_customer_at_once, start_cluster, stop_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
