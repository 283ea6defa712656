/*
 * harness.h - what integration tests need: start the real trustgate daemon
 * and the fake upstream as child processes, and talk HTTP to them with
 * libcurl.  Every process started is stopped by tg_h_stop (SIGTERM, then
 * SIGKILL after a grace period).
 */
#ifndef TG_HARNESS_H
#define TG_HARNESS_H

#include "core/core.h"

#include <pthread.h>
#include <sys/types.h>

struct tg_h_proc {
    pid_t pid;
    int port;
    int out_fd;         /* the child's stdout, read for its banner */
    char log_path[256]; /* the child's stderr goes here */
};

struct tg_h_resp {
    long status;
    char *body; /* NUL-terminated, tg_free'd by tg_h_resp_free */
    size_t len;
    char *headers;  /* raw response head */
    double seconds; /* wall time of the request */
    int curl_code;
};

/* Path of a built program: $TG_BINARY_DIR/<name>. */
const char *tg_h_bin(const char *name, char *buf, size_t len);
/* A fresh temporary directory (mkdtemp) in buf. */
const char *tg_h_tmpdir(char *buf, size_t len);
/* Write text to dir/name and return the path in buf. */
const char *tg_h_write_file(const char *dir, const char *name, const char *text, char *buf,
                            size_t len);

/*
 * PostgreSQL for the tests that need it: the private server of ctest's
 * fixture "pg" (scripts/pg-test.sh), whose admin uri the file
 * $TG_TEST_PG_URI_FILE holds.  tg_h_pg_available reads it (false without
 * one: skip); tg_h_pg_create makes a fresh, empty database named
 * PREFIX_PID_N in db and its uri in uri; tg_h_pg_drop drops it (connections
 * to it are ended); tg_h_pg_exec runs admin SQL (0 on success).
 */
bool tg_h_pg_available(void);
int tg_h_pg_create(const char *prefix, char *db, size_t dblen, char *uri, size_t urilen);
void tg_h_pg_drop(const char *db);
int tg_h_pg_exec(const char *sql);
/* The admin uri with its database replaced by db. */
void tg_h_pg_uri_for(const char *db, char *out, size_t n);

/* Start the fake upstream on a free port; returns 0 on success. */
int tg_h_start_upstream(struct tg_h_proc *p, const char *logdir);
/* Start `trustgate serve -c config --listen 127.0.0.1:0 --data datadir`;
 * waits for the banner and reads the port. */
int tg_h_start_gateway(struct tg_h_proc *p, const char *config, const char *datadir);
/* SIGTERM and wait up to grace_ms; SIGKILL after.  Returns the exit status
 * (0..255), or -1 when it had to be killed or died by a signal. */
int tg_h_stop(struct tg_h_proc *p, int grace_ms);
/* The child's stderr so far (tg_free it). */
char *tg_h_log(const struct tg_h_proc *p);

/* One HTTP request.  headers: NULL-terminated "Name: value" strings.
 * body may be NULL.  timeout_ms 0 means 30 s. */
int tg_h_http(const char *method, const char *url, const char *const *headers, const char *body,
              size_t body_len, long timeout_ms, struct tg_h_resp *out);
void tg_h_resp_free(struct tg_h_resp *r);

/*
 * One JSON call to the daemon on port with a bearer token (NULL: none): the
 * status in *status (-1 when no answer came) and the body parsed, NULL when
 * it is not JSON (the body is printed then).
 */
json_t *tg_h_api(int port, const char *method, const char *path, const char *token,
                 const char *body, long *status);
/* Convenience: POST JSON to the gateway's chat endpoint with the demo key. */
int tg_h_chat(int port, const char *key, const char *body, struct tg_h_resp *out);
/* Tell the fake upstream what to do next: POST json to /_control/<what>. */
int tg_h_upstream_control(int port, const char *what, const char *json);
/* GET /_control/stats from the fake upstream, parsed. */
json_t *tg_h_upstream_stats(int port);

/*
 * A webhook receiver on a free port: a thread that takes up to max
 * requests, answering 500 to the first fail_first of them and 200 after,
 * and keeps the last body and X-Trustgate-Signature, and every body, one
 * per line, in all.  wait joins it after
 * max requests or timeout_ms and returns how many came.
 */
struct tg_h_hook {
    int fd, port, max, fail_first;
    volatile int requests;
    char body[8192], sig[256], all[65536];
    pthread_t th;
};
int tg_h_hook_start(struct tg_h_hook *h, int max, int fail_first);
int tg_h_hook_wait(struct tg_h_hook *h, int timeout_ms);

/* SQL making a database of schema version 3 (hand-off threads inside
 * the tasks), as an older trustgate left it. */
extern const char *const tg_h_schema_v3;

/* Run a command line (via /bin/sh -c), capture stdout into out (tg_free). Returns exit status. */
int tg_h_run(const char *cmd, char **out);

#endif
