/*
 * cli.c - subcommand dispatch, help and version, and helpers the
 * subcommands share.
 */
#include "cli/cli.h"

#include "pipeline/pipeline.h"

#include "store/store.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);
static int cmd_passwd(int argc, char **argv);

static const struct command commands[] = {
    {"serve", tg_cli_serve, "run the gateway (HTTP API) until SIGTERM"},
    {"ask", tg_cli_ask, "run one turn in-process and print the answer"},
    {"config", tg_cli_config, "check a config file: trustgate config check FILE"},
    {"audit", tg_cli_audit, "verify the audit log: trustgate audit verify"},
    {"kb", tg_cli_kb, "knowledge base: ingest, search, stats"},
    {"review", tg_cli_review, "the review queue: list, show, decide"},
    {"customer", tg_cli_customer, "the customer id behind a pseudonym (privacy.customer_map)"},
    {"store", tg_cli_store, "the store: migrate its schema, or copy it into another"},
    {"train", tg_cli_train, "train the intent classifier from a TSV file"},
    {"cost", tg_cli_cost, "cost per turn and per resolved conversation; release trade-off"},
    {"ab", tg_cli_ab, "an experiment's results: fixed and always-valid tests, SRM"},
    {"release", tg_cli_release, "releases: propose, experiment, promote behind gates, roll back"},
    {"fairness", tg_cli_fairness, "group fairness of decisions: parity, equalized odds"},
    {"eval", tg_cli_eval, "evaluate: intent, retrieval"},
    {"passwd", cmd_passwd, "hash a console password (read from stdin) for users[].password_hash"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "this overview"},
};

static void usage(FILE *f)
{
    fprintf(f,
            "trustgate %s - a trust gateway for AI customer service\n\n"
            "usage: trustgate COMMAND [options]\n\ncommands:\n",
            TG_VERSION);
    for (size_t i = 0; i < TG_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`trustgate COMMAND --help` describes each command.\n");
}

/* trustgate passwd: one line from stdin -> "pbkdf2-sha256$..." on stdout. */
static int cmd_passwd(int argc, char **argv)
{
    char line[1024], hash[TG_PASSWORD_HASH_MAX];
    if (tg_cli_wants_help(argc, argv) || argc != 1) {
        fprintf(argc != 1 ? stderr : stdout,
                "usage: trustgate passwd < FILE\n\n"
                "Read a password (the first line of stdin) and print its PBKDF2-HMAC-SHA256 hash\n"
                "(%d iterations, random salt) for a user's password_hash in the config.\n",
                TG_PBKDF2_ITERATIONS);
        return argc != 1 ? 2 : 0;
    }
    if (isatty(STDIN_FILENO))
        fprintf(stderr, "password: ");
    if (!fgets(line, sizeof(line), stdin)) {
        fprintf(stderr, "trustgate passwd: no password on stdin\n");
        return 1;
    }
    line[strcspn(line, "\r\n")] = '\0';
    int rc = line[0] ? tg_password_hash(line, TG_PBKDF2_ITERATIONS, hash) : TG_E_INVAL;
    memset(line, 0, sizeof(line));
    if (rc) {
        fprintf(stderr, "trustgate passwd: %s\n",
                rc == TG_E_INVAL ? "the password is empty" : "cannot hash the password");
        return 1;
    }
    printf("%s\n", hash);
    return 0;
}

static int cmd_version(int argc, char **argv)
{
    if (tg_cli_wants_help(argc, argv)) {
        printf("usage: trustgate version\n\nPrint the version.\n");
        return 0;
    }
    printf("trustgate %s\n", TG_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    usage(stdout);
    return 0;
}

int tg_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return cmd_help(argc - 1, argv + 1);
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < TG_ARRAY_LEN(commands); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "trustgate: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}

int tg_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    return 0;
}

struct tg_config *tg_cli_load_config(const char *path)
{
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    int rc = tg_config_load(path, &cfg, &errs);
    if (rc) {
        size_t i;
        json_t *e;
        json_array_foreach(errs, i, e) fprintf(stderr, "%s\n", json_string_value(e));
        if (json_array_size(errs) == 0)
            fprintf(stderr, "%s: %s\n", path, tg_err_str(rc));
        json_decref(errs);
        return NULL;
    }
    json_decref(errs);
    return cfg;
}

int tg_cli_mkdirs(const char *path)
{
    char buf[4096];
    if (tg_strlcpy(buf, path, sizeof(buf)) >= sizeof(buf))
        return TG_E_INVAL;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0750) && errno != EEXIST)
            return TG_E_IO;
        *p = '/';
    }
    if (mkdir(buf, 0750) && errno != EEXIST)
        return TG_E_IO;
    return TG_OK;
}

int tg_cli_store_override(struct tg_config *cfg, const char *uri, const char **data)
{
    char *u = tg_strdup(uri), *d = *data ? tg_strdup(*data) : NULL;
    if (!u || (*data && !d)) {
        tg_free(u);
        tg_free(d);
        return TG_E_NOMEM;
    }
    tg_free(cfg->store_uri);
    cfg->store_uri = u;
    if (d) {
        tg_free(cfg->data_dir);
        cfg->data_dir = d;
        *data = NULL;
    }
    return TG_OK;
}

int tg_cli_lock_data_dir(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/trustgate.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int tg_cli_write_out(const char *path, const char *data, size_t len)
{
    if (!strcmp(path, "-")) {
        fwrite(data, 1, len, stdout);
        return TG_OK;
    }
    FILE *f = fopen(path, "w");
    if (!f || fwrite(data, 1, len, f) != len) {
        if (f)
            fclose(f);
        fprintf(stderr, "trustgate: cannot write %s\n", path);
        return TG_E_IO;
    }
    return fclose(f) ? TG_E_IO : TG_OK;
}

void tg_cli_data_dir(const struct tg_config *cfg, const char *data, char *dir, size_t len)
{
    if (data)
        tg_strlcpy(dir, data, len);
    else
        tg_store_local_dir(cfg->store_uri, cfg->data_dir, dir, len);
}

struct tg_store *tg_cli_open_store(const struct tg_config *cfg, const char *data, const char *what)
{
    char uri[4200], err[512];
    struct tg_store *st = NULL;
    if (data)
        snprintf(uri, sizeof(uri), "sqlite:%s/trustgate.db", data);
    else
        tg_strlcpy(uri, cfg->store_uri, sizeof(uri));
    /* with the deployment's privacy hooks: what the command writes is stored as
     * the daemon would store it, and customers are found by their pseudonyms */
    char dir[4200];
    struct tg_store_privacy priv;
    tg_store_local_dir(uri, data ? data : cfg->data_dir, dir, sizeof(dir));
    if (tg_privacy_open(cfg, dir, &priv, err, sizeof(err))) {
        fprintf(stderr, "trustgate %s: %s\n", what, err);
        return NULL;
    }
    if (tg_store_open_private(uri, &priv, &st, err, sizeof(err))) {
        tg_privacy_free(priv.arg);
        fprintf(stderr, "trustgate %s: %s\n", what, err);
        return NULL;
    }
    return st;
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    return tg_buf_append(arg, p, size * n) == TG_OK ? size * n : 0;
}

int tg_cli_http(const char *base, const char *token, const char *method, const char *path,
                const char *body, struct tg_buf *out, long *status, const char *who)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char url[2048], auth[1024];
    size_t bl = strlen(base);
    snprintf(url, sizeof(url), "%.*s%s", (int)(bl && base[bl - 1] == '/' ? bl - 1 : bl), base,
             path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token ? token : "");
    hdrs = curl_slist_append(hdrs, auth);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    int rc = 1;
    if (h && hdrs) {
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        if (body)
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        CURLcode cc = curl_easy_perform(h);
        if (cc != CURLE_OK) {
            fprintf(stderr, "trustgate %s: %s: %s\n", who, url, curl_easy_strerror(cc));
        } else {
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
            rc = 0;
        }
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return rc;
}

char *tg_cli_join_args(int argc, char **argv)
{
    struct tg_buf b;
    tg_buf_init(&b, 1u << 20);
    for (int i = 0; i < argc; i++) {
        if (i)
            tg_buf_puts(&b, " ");
        tg_buf_puts(&b, argv[i]);
    }
    return tg_buf_steal(&b, NULL);
}
