/*
 * itest_durability.c - nothing acknowledged is lost to kill -9.  The demo
 * deployment is driven by concurrent customers (answered turns and turns
 * held for review), a reviewer deciding held tasks and an auditor fetching
 * signed checkpoints; at a random moment the daemon is killed with SIGKILL
 * and restarted on the same data, five times.  Afterwards every turn,
 * review task, decision and audit index a client was told of must be in
 * the store, no audit index may have been promised twice, and every
 * checkpoint handed out before a kill must be consistent with the log
 * (`trustgate audit check --old`).  TG_KILLS sets the number of kills
 * (bench/durability.sh runs 20).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CUSTOMERS 3
#define MAX_ACKS 20000

/* What clients were told, over every life of the daemon. */
struct ack {
    char turn[48];
    char review[48];
    int64_t index;
};

static struct {
    char dir[64], data[128];
    struct tg_h_proc gw;
    pthread_mutex_t mu;
    struct ack acks[MAX_ACKS];
    size_t n_acks;
    char decided[MAX_ACKS / 4][48]; /* review tasks whose decision was acknowledged */
    size_t n_decided;
    int checkpoints; /* files dir/cp-N.txt */
    volatile int stop;
    int round;
} S;

static const char *const questions[] = {
    "意外险理赔需要哪些材料？",
    "我想投资60万买理财保险，推荐哪个产品？",
    "犹豫期多少天",
    "重疾险等待期是多久？",
};

static void add_ack(const char *turn, const char *review, int64_t index)
{
    pthread_mutex_lock(&S.mu);
    if (S.n_acks < MAX_ACKS) {
        struct ack *a = &S.acks[S.n_acks++];
        snprintf(a->turn, sizeof(a->turn), "%s", turn);
        snprintf(a->review, sizeof(a->review), "%s", review ? review : "");
        a->index = index;
    }
    pthread_mutex_unlock(&S.mu);
}

static void *customer(void *arg)
{
    long who = (long)arg;
    int port = S.gw.port;
    for (int n = 0; !S.stop; n++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"user\":\"c%d-%ld-%d\"}",
                 questions[(n + who) % TG_ARRAY_LEN(questions)], S.round, who, n);
        struct tg_h_resp r;
        if (tg_h_chat(port, "tg-demo-key", body, &r) == 0 && r.status == 200) {
            json_t *j = json_loads(r.body, 0, NULL);
            json_t *tg = json_object_get(j, "trustgate");
            const char *turn = tg_json_str(tg, "turn_id", NULL);
            if (turn)
                add_ack(turn, tg_json_str(tg, "review_id", NULL),
                        tg_json_int(tg, "audit_index", -1));
            json_decref(j);
        }
        tg_h_resp_free(&r);
    }
    return NULL;
}

static int get(int port, const char *token, const char *path, struct tg_h_resp *r)
{
    char url[256], auth[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    const char *h[] = {auth, NULL};
    return tg_h_http("GET", url, h, NULL, 0, 5000, r);
}

static int post(int port, const char *token, const char *path, const char *body,
                struct tg_h_resp *r)
{
    char url[256], auth[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    const char *h[] = {auth, "Content-Type: application/json", NULL};
    return tg_h_http("POST", url, h, body, strlen(body), 5000, r);
}

/* Claims and approves held tasks, with the attestations each requires. */
static void *reviewer(void *arg)
{
    (void)arg;
    int port = S.gw.port;
    while (!S.stop) {
        struct tg_h_resp r;
        if (get(port, "tg-demo-reviewer", "/v1/reviews?state=pending", &r) != 0 || r.status != 200) {
            tg_h_resp_free(&r);
            usleep(20000);
            continue;
        }
        json_t *j = json_loads(r.body, 0, NULL);
        tg_h_resp_free(&r);
        json_t *tasks = json_object_get(j, "data");
        size_t i;
        json_t *t;
        json_array_foreach(tasks, i, t)
        {
            if (S.stop || i >= 3)
                break;
            const char *id = tg_json_str(t, "id", NULL);
            char path[128], body[1024];
            if (!id)
                continue;
            snprintf(path, sizeof(path), "/v1/reviews/%s/claim", id);
            if (post(port, "tg-demo-reviewer", path, "{}", &r) != 0 || r.status != 200) {
                tg_h_resp_free(&r);
                continue;
            }
            tg_h_resp_free(&r);
            char *att = json_dumps(json_object_get(t, "required_attestations"), JSON_COMPACT);
            snprintf(body, sizeof(body), "{\"action\":\"approve\",\"attestations\":%s}",
                     att ? att : "[]");
            free(att);
            snprintf(path, sizeof(path), "/v1/reviews/%s/decision", id);
            if (post(port, "tg-demo-reviewer", path, body, &r) == 0 && r.status == 200) {
                pthread_mutex_lock(&S.mu);
                if (S.n_decided < TG_ARRAY_LEN(S.decided))
                    snprintf(S.decided[S.n_decided++], sizeof(S.decided[0]), "%s", id);
                pthread_mutex_unlock(&S.mu);
            }
            tg_h_resp_free(&r);
        }
        json_decref(j);
        usleep(10000);
    }
    return NULL;
}

/* Keeps every signed checkpoint it is given, for `audit check --old` later. */
static void *auditor(void *arg)
{
    (void)arg;
    int port = S.gw.port;
    while (!S.stop) {
        struct tg_h_resp r;
        if (get(port, "tg-demo-auditor", "/v1/audit/checkpoint", &r) == 0 && r.status == 200) {
            char path[256];
            snprintf(path, sizeof(path), "%s/cp-%d.txt", S.dir, S.checkpoints);
            FILE *f = fopen(path, "w");
            if (f) {
                fwrite(r.body, 1, r.len, f);
                fclose(f);
                S.checkpoints++;
            }
        }
        tg_h_resp_free(&r);
        usleep(50000);
    }
    return NULL;
}

static int start(void)
{
    return tg_h_start_gateway(&S.gw, "examples/insurance/trustgate.yaml", S.data);
}

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_ALL);
    pthread_mutex_init(&S.mu, NULL);
    if (!tg_h_tmpdir(S.dir, sizeof(S.dir)))
        return -1;
    snprintf(S.data, sizeof(S.data), "%s/data", S.dir);
    if (mkdir(S.data, 0755))
        return -1;
    return start();
}

static int teardown(void **state)
{
    (void)state;
    int rc = S.gw.pid && tg_h_stop(&S.gw, 10000) != 0 ? -1 : 0;
    if (rc) {
        fprintf(stderr, "the gateway did not exit cleanly; logs are in %s\n", S.dir);
    } else {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", S.dir);
        rc = system(cmd) == 0 ? 0 : -1;
    }
    pthread_mutex_destroy(&S.mu);
    curl_global_cleanup();
    return rc;
}

/* Drive the daemon for a random while, then SIGKILL it mid-flight. */
static void one_life(void)
{
    pthread_t th[CUSTOMERS + 2];
    S.stop = 0;
    for (long i = 0; i < CUSTOMERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, customer, (void *)i), 0);
    assert_int_equal(pthread_create(&th[CUSTOMERS], NULL, reviewer, NULL), 0);
    assert_int_equal(pthread_create(&th[CUSTOMERS + 1], NULL, auditor, NULL), 0);
    usleep((useconds_t)(400000 + rand() % 1200000));
    kill(S.gw.pid, SIGKILL);
    waitpid(S.gw.pid, NULL, 0);
    S.gw.pid = 0;
    close(S.gw.out_fd);
    S.stop = 1;
    for (int i = 0; i < CUSTOMERS + 2; i++)
        pthread_join(th[i], NULL);
}

static sqlite3 *open_db(void)
{
    char path[256];
    sqlite3 *db = NULL;
    snprintf(path, sizeof(path), "%s/trustgate.db", S.data);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    return db;
}

/* The text of the single row a query with one bound text parameter finds, or NULL. */
static char *one(sqlite3 *db, const char *sql, const char *arg, int64_t num)
{
    sqlite3_stmt *st = NULL;
    char *out = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (arg)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, num);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
}

static int cmp_index(const void *a, const void *b)
{
    int64_t x = ((const struct ack *)a)->index, y = ((const struct ack *)b)->index;
    return x < y ? -1 : x > y;
}

static void check_store(void)
{
    sqlite3 *db = open_db();
    for (size_t i = 0; i < S.n_acks; i++) {
        const struct ack *a = &S.acks[i];
        char *turn = one(db, "SELECT id FROM turns WHERE id = ?", a->turn, 0);
        if (!turn)
            fail_msg("acknowledged turn %s (audit index %lld) is missing", a->turn,
                     (long long)a->index);
        free(turn);
        char *leaf = one(db, "SELECT CAST(data AS TEXT) FROM audit WHERE idx = ?", NULL, a->index);
        if (!leaf || !strstr(leaf, a->turn))
            fail_msg("audit index %lld promised to %s holds %s", (long long)a->index, a->turn,
                     leaf ? leaf : "nothing");
        free(leaf);
        if (a->review[0]) {
            char *task = one(db, "SELECT id FROM reviews WHERE id = ?", a->review, 0);
            if (!task)
                fail_msg("acknowledged review task %s of turn %s is missing", a->review, a->turn);
            free(task);
        }
    }
    for (size_t i = 0; i < S.n_decided; i++) {
        char *state = one(db, "SELECT state FROM reviews WHERE id = ?", S.decided[i], 0);
        if (!state || strcmp(state, "decided") != 0)
            fail_msg("acknowledged decision on %s is missing (state %s)", S.decided[i],
                     state ? state : "none");
        free(state);
    }
    sqlite3_close(db);
    /* no index was ever promised to two turns */
    qsort(S.acks, S.n_acks, sizeof(S.acks[0]), cmp_index);
    for (size_t i = 1; i < S.n_acks; i++)
        if (S.acks[i].index == S.acks[i - 1].index)
            fail_msg("audit index %lld was promised to %s and %s", (long long)S.acks[i].index,
                     S.acks[i - 1].turn, S.acks[i].turn);
}

static void check_checkpoints(void)
{
    for (int i = 0; i < S.checkpoints; i++) {
        char cmd[768], *out = NULL, bin[512];
        tg_h_bin("trustgate", bin, sizeof(bin));
        snprintf(cmd, sizeof(cmd),
                 "%s audit check --url http://127.0.0.1:%d --token tg-demo-auditor "
                 "--old %s/cp-%d.txt 2>&1",
                 bin, S.gw.port, S.dir, i);
        int rc = tg_h_run(cmd, &out);
        if (rc != 0)
            fail_msg("checkpoint %d of %d no longer holds: %s", i, S.checkpoints, out ? out : "");
        tg_free(out);
    }
}

static void test_kill9_loses_nothing_acknowledged(void **state)
{
    (void)state;
    const char *env = getenv("TG_KILLS");
    int64_t kills = 5;
    if (env && (tg_parse_i64(env, &kills) || kills < 1))
        fail_msg("TG_KILLS must be a positive number, not '%s'", env);
    int64_t t0 = tg_clock_mono_ns();
    srand((unsigned)getpid());
    for (S.round = 0; S.round < kills; S.round++) {
        one_life();
        assert_int_equal(start(), 0);
    }
    if (S.n_acks < 50)
        fail_msg("only %zu turns answered: the load did not run", S.n_acks);
    check_checkpoints();
    check_store();
    /* one line for bench/durability.sh */
    print_message("durability: kills %lld, turns %zu, decisions %zu, checkpoints %d, lost 0, "
                  "duplicate indexes 0, seconds %.1f\n",
                  (long long)kills, S.n_acks, S.n_decided, S.checkpoints,
                  (double)(tg_clock_mono_ns() - t0) / 1e9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_loses_nothing_acknowledged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
