/*
 * ask.c - `trustgate ask`: one turn through the whole pipeline, in
 * process, with no HTTP server — for scripts, demos and tests.
 */
#include "cli/cli.h"

#include "pipeline/pipeline.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

static void ask_usage(FILE *f)
{
    fprintf(f, "usage: trustgate ask -c FILE [--data DIR] [--user CUSTOMER] [--json] TEXT...\n\n"
               "Run one turn in-process and print the answer, or with --json the whole turn as\n"
               "one JSON object (turn_id, decision, answer, intent, confidence, entities,\n"
               "citations, policy_hits, attestations, tags, backend, degradations, audit_index).\n"
               "Exit status: 0 when the turn completed, 1 when it failed.\n\n"
               "  -c, --config FILE    the config file (YAML)\n"
               "  -d, --data DIR       data directory, overrides the config\n"
               "  -u, --user ID        the customer id (continues their conversation)\n"
               "  -j, --json           print the turn as JSON\n"
               "  -h, --help           this text\n");
}

struct ask_state {
    struct event_base *base;
    bool done;
};

static void ask_done_cb(struct tg_turn *t, void *arg)
{
    (void)t;
    struct ask_state *st = arg;
    st->done = true;
    event_base_loopbreak(st->base);
}

int tg_cli_ask(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"data", required_argument, NULL, 'd'},
        {"user", required_argument, NULL, 'u'},   {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    const char *cfg_path = NULL, *data = NULL, *user = NULL;
    bool as_json = false;
    int c, status = 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+c:d:u:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cfg_path = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'u':
            user = optarg;
            break;
        case 'j':
            as_json = true;
            break;
        case 'h':
            ask_usage(stdout);
            return 0;
        default:
            ask_usage(stderr);
            return 2;
        }
    }
    if (!cfg_path || optind >= argc) {
        ask_usage(stderr);
        return 2;
    }
    struct tg_config *cfg = tg_cli_load_config(cfg_path);
    if (!cfg)
        return 1;
    tg_log_set_level(TG_LOG_WARN);
    char err[512], dir[4096];
    if (data)
        tg_strlcpy(dir, data, sizeof(dir));
    else
        tg_cli_store_dir(cfg->store_uri, dir, sizeof(dir));
    char *text = tg_cli_join_args(argc - optind, argv + optind);
    json_t *req = json_pack("{s:[{s:s, s:s}], s:s?}", "messages", "role", "user", "content",
                            text ? text : "", "user", user);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    tg_free(text);
    struct event_base *base = NULL;
    struct tg_pipeline *p = NULL;
    struct tg_turn *t = NULL;
    struct ask_state st = {0};
    int lockfd = -1;
    if (!body)
        goto out;
    if (tg_cli_mkdirs(dir)) {
        fprintf(stderr, "trustgate ask: cannot create data directory %s\n", dir);
        goto out;
    }
    /* The audit log has one writer: not beside a server on the same data. */
    lockfd = tg_cli_lock_data_dir(dir);
    if (lockfd < 0) {
        fprintf(stderr,
                "trustgate ask: another trustgate process (serve?) is using %s; "
                "ask it over HTTP or use another --data\n",
                dir);
        goto out;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    base = event_base_new();
    if (!base || tg_pipeline_open(cfg, base, data, &p, err, sizeof(err))) {
        fprintf(stderr, "trustgate ask: %s\n", base ? err : "cannot create event loop");
        goto out;
    }
    p->log_turns = false;
    t = tg_turn_new(p);
    if (!t)
        goto out;
    st.base = base;
    t->channel = "cli";
    t->trusted = true;
    t->body = body;
    t->body_len = strlen(body);
    t->done_cb = ask_done_cb;
    t->done_arg = &st;
    tg_pipeline_start(t);
    if (!st.done)
        event_base_dispatch(base);
    if (as_json) {
        json_t *o = tg_turn_summary(t, true);
        char *s = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
    } else if (t->err) {
        fprintf(stderr, "trustgate ask: %s\n", t->errmsg);
    } else {
        printf("%.*s\n", (int)t->reply.answer_len, t->reply.answer ? t->reply.answer : "");
    }
    status = t->err ? 1 : 0;
out:
    tg_turn_free(t);
    tg_pipeline_close(p);
    if (base)
        event_base_free(base);
    curl_global_cleanup();
    free(body);
    tg_config_free(cfg);
    if (lockfd >= 0)
        close(lockfd);
    return status;
}
