/*
 * itest_http.c - the real daemon's HTTP server against hostile clients,
 * over raw TCP: request smuggling with repeated Content-Length, a missing
 * Host, a request head sent one line a second, and more idle sockets than
 * the process has file descriptors.  Each test says what the server must
 * answer, and what it must never do (answer a hidden request, hold a
 * connection past the head deadline, spin on accept, flood its log).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* clang-format off */
#define CONFIG_FMT \
    "server:\n" \
    "  max_body: 64KiB\n" \
    "  drain_timeout: 2s\n" \
    "auth:\n" \
    "  api_keys:\n" \
    "    - name: it\n" \
    "      key: tg-it-key\n" \
    "backends:\n" \
    "  - name: primary\n" \
    "    type: openai\n" \
    "    base_url: http://127.0.0.1:%d/v1\n" \
    "    total_timeout: 5s\n" \
    "route:\n" \
    "  backend: primary\n" \
    "models: [trustgate]\n"
/* clang-format on */

/* The server's deadline for a whole request head (server.c's default). */
#define HEAD_DEADLINE_S 10

struct env {
    char dir[64], gw_dir[128], cfg[256];
    struct tg_h_proc up, gw;
};

static struct env E;

static int start_gateway(struct tg_h_proc *p, const char *name, char *dir, size_t dirlen)
{
    char text[2048], path[256];
    snprintf(dir, dirlen, "%s/%s", E.dir, name);
    if (mkdir(dir, 0755))
        return -1;
    snprintf(text, sizeof(text), CONFIG_FMT, E.up.port);
    if (!tg_h_write_file(dir, "trustgate.yaml", text, path, sizeof(path)))
        return -1;
    return tg_h_start_gateway(p, path, dir);
}

static int group_setup(void **state)
{
    (void)state;
    if (!tg_h_tmpdir(E.dir, sizeof(E.dir)) || tg_h_start_upstream(&E.up, E.dir))
        return -1;
    return start_gateway(&E.gw, "gw", E.gw_dir, sizeof(E.gw_dir));
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    int rc = 0;
    /* A clean exit (0) also means no sanitizer report in the children. */
    if (E.gw.pid && tg_h_stop(&E.gw, 5000) != 0)
        rc = -1;
    if (tg_h_stop(&E.up, 2000) != 0)
        rc = -1;
    if (rc) {
        fprintf(stderr, "a child did not exit cleanly; logs are in %s\n", E.dir);
    } else {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", E.dir);
        rc = system(cmd) == 0 ? 0 : -1;
    }
    return rc;
}

/* ------------------------------------------------------------ raw TCP */

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Send request (len bytes) and read until the server closes or wait_ms
 * pass without a byte; the answer, NUL-terminated (tg_free it). */
static char *exchange(int port, const char *request, size_t len, int wait_ms)
{
    int fd = dial(port);
    assert_int_equal(send(fd, request, len, MSG_NOSIGNAL), (ssize_t)len);
    struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct tg_buf b;
    char chunk[4096];
    ssize_t n;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        tg_buf_append(&b, chunk, (size_t)n);
    close(fd);
    char *out = tg_buf_steal(&b, NULL);
    assert_non_null(out);
    return out;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    while ((hay = strstr(hay, needle)) != NULL) {
        n++;
        hay += strlen(needle);
    }
    return n;
}

/* Responses in out: each head names the server once. */
static int answers(const char *out)
{
    return count(out, "\r\nServer: trustgate\r\n");
}

/* Exactly one response, with this status, and nothing else answered. */
static void expect_one_answer(const char *request, const char *status_line)
{
    char *out = exchange(E.gw.port, request, strlen(request), 3000);
    if (answers(out) != 1 || strncmp(out, status_line, strlen(status_line)) != 0)
        fail_msg("for\n%s\nwanted one \"%s\", got:\n%s", request, status_line, out);
    tg_free(out);
}

/* ------------------------------------------------------------ framing */

static void test_repeated_content_length(void **state)
{
    (void)state;
    /* 57 bytes of body, then a request the other reading (91) would hide. */
    char body[58], req[1024];
    memset(body, 'a', 57);
    body[57] = '\0';
    snprintf(req, sizeof(req),
             "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
             "Authorization: Bearer tg-it-key\r\nContent-Type: application/json\r\n"
             "Content-Length: 57\r\nContent-Length: 91\r\n\r\n%s"
             "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             body);
    char *out = exchange(E.gw.port, req, strlen(req), 3000);
    assert_int_equal(answers(out), 1);
    assert_true(tg_str_has_prefix(out, "HTTP/1.1 400 "));
    assert_non_null(strstr(out, "Connection: close"));
    assert_null(strstr(out, "\"status\"")); /* /healthz never answered */
    tg_free(out);

    /* The same value twice, a list, a sign, a space before the colon,
     * Content-Length with Transfer-Encoding: all refused. */
    static const char *const bad[] = {
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n"
        "abcd",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\nabcd",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length : 4\r\n\r\nabcd",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Content-Length: 4\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
        "POST /healthz HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\nContent-Length: 4\r\n\r\nabcd",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_one_answer(bad[i], "HTTP/1.1 400 ");
}

static void test_host_required(void **state)
{
    (void)state;
    expect_one_answer("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", "HTTP/1.1 400 ");
    expect_one_answer("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
                      "HTTP/1.1 400 ");
    expect_one_answer("GET /healthz HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
                      "HTTP/1.1 400 ");
    /* HTTP/1.0 has no Host requirement; HTTP/1.1 with one is served. */
    expect_one_answer("GET /healthz HTTP/1.0\r\n\r\n", "HTTP/1.1 200 ");
    expect_one_answer("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n",
                      "HTTP/1.1 200 ");
}

/* ------------------------------------------------------------ deadlines */

static void test_slow_head_cut_off(void **state)
{
    (void)state;
    int fd = dial(E.gw.port);
    int64_t start = tg_clock_mono_ns();
    const char *line = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    assert_int_equal(send(fd, line, strlen(line), MSG_NOSIGNAL), (ssize_t)strlen(line));
    struct tg_buf got;
    tg_buf_init(&got, TG_BUF_UNLIMITED);
    bool closed = false;
    double secs = 0;
    /* One more header line every second, never the empty line that ends the head. */
    for (int i = 0; !closed && secs < HEAD_DEADLINE_S + 2.5; i++) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 1000) > 0) {
            char buf[4096];
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n > 0)
                tg_buf_append(&got, buf, (size_t)n);
            else
                closed = true;
        } else {
            char h[64];
            int hl = snprintf(h, sizeof(h), "X-Slow-%d: %d\r\n", i, i);
            if (send(fd, h, (size_t)hl, MSG_NOSIGNAL) < 0)
                closed = true;
        }
        secs = (double)(tg_clock_mono_ns() - start) / 1e9;
    }
    close(fd);
    if (!closed)
        fail_msg("a head sent one line a second was still open after %.1f s", secs);
    assert_true(secs <= HEAD_DEADLINE_S + 1.5);
    assert_true(secs >= HEAD_DEADLINE_S - 1.0);
    /* What came before the close, if anything, is one 408 and nothing more. */
    if (got.len) {
        assert_true(tg_str_has_prefix(got.data, "HTTP/1.1 408 "));
        assert_int_equal(answers(got.data), 1);
    }
    tg_buf_free(&got);
    expect_one_answer("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                      "HTTP/1.1 200 ");
}

/* ------------------------------------------------------------ descriptors */

/* Clock ticks of CPU time (user + system) pid has used. */
static long long cpu_ticks(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command's closing parenthesis: state is field 3,
     * utime 14 and stime 15. */
    const char *p = strrchr(buf, ')');
    assert_non_null(p);
    long long utime = 0, stime = 0;
    assert_int_equal(
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &utime, &stime), 2);
    return utime + stime;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

#define FD_LIMIT 64
#define IDLE_SOCKETS 150

static void test_descriptors_exhausted(void **state)
{
    (void)state;
    struct tg_h_proc gw;
    char dir[128];
    struct rlimit old, low;
    /* The gateway inherits the lowered limit; this process gets its own back. */
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = FD_LIMIT;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int rc = start_gateway(&gw, "fds", dir, sizeof(dir));
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(rc, 0);

    int fds[IDLE_SOCKETS];
    for (int i = 0; i < IDLE_SOCKETS; i++)
        fds[i] = dial(gw.port);
    usleep(500000); /* it has accepted what it could and met its limit */
    long long log_before = file_size(gw.log_path);
    long long t0 = cpu_ticks(gw.pid);
    int64_t w0 = tg_clock_mono_ns();
    sleep(2);
    long long t1 = cpu_ticks(gw.pid);
    double wall = (double)(tg_clock_mono_ns() - w0) / 1e9;
    double cpu = (double)(t1 - t0) / (double)sysconf(_SC_CLK_TCK) / wall;
    long long log_after = file_size(gw.log_path);
    for (int i = 0; i < IDLE_SOCKETS; i++)
        close(fds[i]);
    print_message("out of descriptors: %.0f %% CPU, log %lld bytes (%lld before)\n", cpu * 100,
                  log_after, log_before);
    assert_true(cpu < 0.2);
    assert_true(log_after >= 0 && log_after < 4096);

    /* Once the idle sockets are gone, a new client is served. */
    char url[128];
    struct tg_h_resp r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", gw.port);
    assert_int_equal(tg_h_http("GET", url, NULL, NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    tg_h_resp_free(&r);
    char *log = tg_h_log(&gw);
    assert_non_null(log);
    assert_non_null(strstr(log, "accept"));
    tg_free(log);
    assert_int_equal(tg_h_stop(&gw, 5000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repeated_content_length),
        cmocka_unit_test(test_host_required),
        cmocka_unit_test(test_slow_head_cut_off),
        cmocka_unit_test(test_descriptors_exhausted),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
