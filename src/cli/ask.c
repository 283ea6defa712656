/*
 * ask.c - `trustgate ask`: one turn through the whole pipeline, in
 * process, with no HTTP server — for scripts, demos and tests.
 */
#include "cli/cli.h"

#include "pipeline/pipeline.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

struct ask_args {
    const char *cfg, *data, *user;
    bool as_json;
};

#define ARG(f) TG_CLI_FIELD(struct ask_args, f)
static const struct tg_cli_opt ask_opts[] = {
    {"config", 'c', ARG(cfg), .arg = "FILE", .help = "the config file (YAML)",
     .flags = TG_CLI_REQUIRED},
    {"data", 'd', ARG(data), .arg = "DIR", .help = "data directory, overrides the config"},
    {"user", 'u', ARG(user), .arg = "ID", .help = "the customer id (continues their conversation)"},
    {"json", 'j', ARG(as_json), .help = "print the turn as JSON"},
    {0}};
#undef ARG

static const struct tg_cli_cmd ask_cmd = {
    .name = "ask",
    .usage = "usage: trustgate ask -c FILE [--data DIR] [--user CUSTOMER] [--json] TEXT...\n\n"
             "Run one turn in-process and print the answer, or with --json the whole turn as\n"
             "one JSON object (turn_id, decision, answer, intent, confidence, entities,\n"
             "citations, policy_hits, attestations, tags, backend, degradations, audit_index).\n"
             "Exit status: 0 when the turn completed, 1 when it failed.\n",
    .opts = ask_opts,
    .in_order = true,
    .min_args = 1,
    .max_args = TG_CLI_MANY,
};

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

/* The chat request asking the words of argv joined (for user, may be NULL),
 * as JSON text (free); NULL when out of memory. */
static char *request(int argc, char **argv, const char *user)
{
    char *text = tg_cli_join_args(argc, argv);
    json_t *req = json_pack("{s:[{s:s, s:s}], s:s?}", "messages", "role", "user", "content",
                            text ? text : "", "user", user);
    char *body = req ? tg_json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    tg_free(text);
    return body;
}

/* The turn's answer on stdout (its error on stderr), or with as_json the
 * whole turn; the exit status. */
static int print_turn(const struct tg_turn *t, bool as_json)
{
    if (as_json) {
        json_t *o = tg_turn_summary(t, true);
        char *s = o ? tg_json_dumps(o, JSON_INDENT(2)) : NULL;
        if (s)
            printf("%s\n", s);
        else
            fprintf(stderr, "trustgate ask: out of memory\n");
        json_decref(o);
        if (!s)
            return 1;
        free(s);
    } else if (t->err) {
        fprintf(stderr, "trustgate ask: %s\n", t->errmsg);
    } else {
        printf("%.*s\n", (int)t->reply.answer_len, t->reply.answer ? t->reply.answer : "");
    }
    return t->err ? 1 : 0;
}

/* Run the request body (borrowed) as one turn of cfg's pipeline on data
 * (--data, or NULL for the config's) and print it; the exit status. */
static int ask(const struct tg_config *cfg, const char *data, char *body, bool as_json)
{
    char err[512];
    struct event_base *base = NULL;
    struct tg_pipeline *p = NULL;
    struct tg_turn *t = NULL;
    struct ask_state st = {0};
    int status = 1;
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
    status = print_turn(t, as_json);
out:
    tg_turn_free(t);
    tg_pipeline_close(p);
    if (base)
        event_base_free(base);
    curl_global_cleanup();
    return status;
}

int tg_cli_ask(int argc, char **argv)
{
    struct ask_args a = {0};
    struct tg_config *cfg = NULL;
    char *body = NULL, dir[4096];
    int end, lockfd = -1, status = tg_cli_parse(&ask_cmd, argc, argv, &a, &end);
    if (status != TG_CLI_GO_ON)
        return status;
    status = 1;
    cfg = tg_cli_load_config(a.cfg);
    if (!cfg)
        goto out;
    tg_log_set_level(TG_LOG_WARN);
    tg_cli_data_dir(cfg, a.data, dir, sizeof(dir));
    body = request(argc - end, argv + end, a.user);
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
    status = ask(cfg, a.data, body, a.as_json);
out:
    free(body);
    tg_config_free(cfg);
    if (lockfd >= 0)
        close(lockfd);
    return status;
}
