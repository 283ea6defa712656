/*
 * serve.c - `trustgate serve`: the gateway daemon.
 *
 * SIGTERM or SIGINT starts a drain: the listener closes, /readyz turns
 * 503, turns in flight finish and are recorded (up to the configured drain
 * timeout), then the store is flushed and the process exits 0.
 */
#include "cli/cli.h"

#include "api/console.h"
#include "api/api.h"
#include "pipeline/pipeline.h"
#include "review/review.h"
#include "workflow/workflow.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

struct daemon {
    struct tg_workflow **wfs; /* the config's workflows, for d.api.workflows */
    struct event_base *base;
    struct tg_api api;
    struct event *sigterm, *sigint, *drain_timer;
    int64_t drain_deadline_ns;
};

struct serve_args {
    const char *cfg, *listen, *data, *store;
};

#define ARG(f) TG_CLI_FIELD(struct serve_args, f)
static const struct tg_cli_opt serve_opts[] = {
    {"config", 'c', ARG(cfg), .arg = "FILE", .help = "the config file (YAML)",
     .flags = TG_CLI_REQUIRED},
    {"listen", 'l', ARG(listen), .arg = "H:P", .help = "listen address, overrides server.listen"},
    {"data", 'd', ARG(data), .arg = "DIR",
     .help = "data directory, overrides server.data_dir and store.uri"},
    {"store", 's', ARG(store), .arg = "URI",
     .help = "the store, overrides store.uri (then --data is only this node's directory)"},
    {0}};
#undef ARG

static const struct tg_cli_cmd serve_cmd = {
    .name = "serve",
    .usage = "usage: trustgate serve -c FILE [--listen HOST:PORT] [--data DIR] [--store URI]\n\n"
             "Run the gateway until SIGTERM or SIGINT.  Several nodes share one\n"
             "PostgreSQL store (--store postgresql://...), each with a data directory of\n"
             "its own holding copies of the same keys.\n",
    .opts = serve_opts,
};

static void drain_check_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon *d = arg;
    size_t inflight = d->api.p->inflight + tg_http_inflight(d->api.srv);
    if (inflight == 0 || tg_clock_mono_ns() >= d->drain_deadline_ns) {
        if (inflight)
            tg_warn("drain timeout: %zu requests still in flight", inflight);
        event_base_loopexit(d->base, NULL);
        return;
    }
    struct timeval tv = {0, 20000};
    evtimer_add(d->drain_timer, &tv);
}

static void settled_cb(void *arg, const json_t *task)
{
    tg_api_answer_waiters(arg, task);
}

static void review_event_cb(void *arg, const char *id, const char *event, const json_t *task)
{
    tg_api_review_event(arg, id, event, task);
}

/* Another node changed a task: this node's waiting requests and consoles learn of it. */
static void remote_cb(void *arg, const json_t *task)
{
    const char *state = tg_json_str(task, "state", "");
    if (strcmp(state, "pending") != 0 && strcmp(state, "claimed") != 0)
        tg_api_answer_waiters(arg, task);
    tg_api_review_event(arg, tg_json_str(task, "id", ""), state, task);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct daemon *d = arg;
    if (d->api.draining)
        return;
    tg_info("signal %d: draining %zu turns in flight", (int)sig, d->api.p->inflight);
    d->api.draining = true;
    tg_http_server_stop_accepting(d->api.srv);
    tg_api_release_waiters(&d->api);
    tg_events_stop(&d->api);
    d->drain_deadline_ns = tg_clock_mono_ns() + d->api.p->cfg->drain_timeout_ms * 1000000;
    drain_check_cb(-1, 0, d);
}

static int split_listen(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(s, ':');
    int64_t p;
    if (!colon || colon == s || tg_parse_i64(colon + 1, &p) || p < 0 || p > 65535)
        return TG_E_PARSE;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= hostlen)
        return TG_E_PARSE;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return TG_OK;
}

/* What the daemon serves, on stdout once it listens. */
static void print_banner(const struct tg_config *cfg, const struct daemon *d, const char *host,
                         const char *data)
{
    char base_url[300];
    char *store = tg_store_redact(data ? data : cfg->store_uri);
    snprintf(base_url, sizeof(base_url), strchr(host, ':') ? "http://[%s]:%d" : "http://%s:%d",
             host, tg_http_port(d->api.srv));
    printf(
        "trustgate %s serving on %s\n"
        "  chat API     %s/v1/chat/completions   (OpenAI-compatible; Authorization: Bearer <key>)\n"
        "  models       %s/v1/models\n"
        "  health       %s/healthz   %s/readyz\n"
        "  metrics      %s/metrics\n"
        "  backend      %s   store %s\n",
        TG_VERSION, base_url, base_url, base_url, base_url, base_url, base_url, cfg->route_backend,
        store ? store : "(out of memory)");
    tg_free(store);
    if (cfg->web_chat)
        printf("  chat page    %s/   (play the customer)\n", base_url);
    if (d->api.console && cfg->web_console)
        printf("  console      %s/console/   (reviewers, agents, supervisors, auditors log in)\n",
               base_url);
    fflush(stdout);
}

/* Stop and free what the daemon started (any part of it may be missing). */
static void daemon_stop(struct daemon *d)
{
    tg_pipeline_settle(d->api.p);
    tg_api_release_waiters(&d->api);
    tg_events_stop(&d->api);
    tg_console_stop(&d->api);
    tg_monitor_stop(&d->api);
    tg_fairness_stop(&d->api);
    tg_api_background_stop(&d->api);
    if (d->api.p)
        d->api.p->workflows = NULL;
    tg_wf_engine_free(d->api.workflows);
    tg_workflows_free(d->wfs, d->api.p ? d->api.p->cfg->n_workflows : 0);
    tg_review_on_settle(NULL, NULL);
    tg_webhooks_stop(d->api.webhooks);
    if (d->api.srv)
        tg_http_server_free(d->api.srv);
    if (d->api.p)
        tg_pipeline_close(d->api.p);
    if (d->sigterm)
        event_free(d->sigterm);
    if (d->sigint)
        event_free(d->sigint);
    if (d->drain_timer)
        event_free(d->drain_timer);
    if (d->base)
        event_base_free(d->base);
}

/* The workflows the config names, and their engine (runs left running
 * go on); 0, or 1 with the problems printed. */
static int start_workflows(struct daemon *d, const struct tg_config *cfg)
{
    json_t *errs = json_array();
    size_t i;
    json_t *e;
    if (!errs || tg_workflows_load(cfg->workflow_paths, cfg->n_workflows, &d->wfs, errs)) {
        json_array_foreach(errs, i, e) fprintf(stderr, "%s\n", json_string_value(e));
        if (!errs)
            fprintf(stderr, "trustgate serve: out of memory\n");
        json_decref(errs);
        return 1;
    }
    json_decref(errs);
    struct tg_wf_env env = {.base = d->base,
                            .sla = d->api.p->sla,
                            .policy = d->api.p->main.policy,
                            .ask = tg_pipeline_ask,
                            .cancel = tg_pipeline_ask_cancel,
                            .ask_arg = d->api.p,
                            .st = d->api.p->store,
                            .audit = d->api.p->audit,
                            .kb = d->api.p->main.kb,
                            .text = d->api.p->text};
    if (tg_wf_engine_create(&env, d->wfs, cfg->n_workflows, &d->api.workflows)) {
        fprintf(stderr, "trustgate serve: workflows: out of memory\n");
        return 1;
    }
    d->api.p->workflows = d->api.workflows; /* turns their triggers meet start runs */
    return 0;
}

/* Serve cfg on host:port until SIGTERM or SIGINT (data: --data, or NULL);
 * the exit status. */
static int run(const struct tg_config *cfg, const char *host, int port, const char *data)
{
    char err[512];
    int status = 1;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct daemon d;
    memset(&d, 0, sizeof(d));
    d.base = event_base_new();
    d.api.started_ms = tg_clock_wall_ms();
    if (!d.base || tg_pipeline_open(cfg, d.base, data, &d.api.p, err, sizeof(err))) {
        fprintf(stderr, "trustgate serve: %s\n", d.base ? err : "cannot create event loop");
        goto out;
    }
    if (cfg->n_workflows && (status = start_workflows(&d, cfg)) != 0)
        goto out;
    status = 1;
    struct tg_http_limits lim = {.max_body = cfg->max_body};
    if (tg_http_server_start(d.base, host, port, &lim, tg_api_handle, &d.api, &d.api.srv, err,
                             sizeof(err))) {
        fprintf(stderr, "trustgate serve: %s\n", err);
        goto out;
    }
    if (tg_events_start(&d.api) || tg_console_start(&d.api) || tg_monitor_start(&d.api) ||
        tg_fairness_start(&d.api)) {
        fprintf(stderr, "trustgate serve: cannot start the console: out of memory\n");
        goto out;
    }
    tg_review_sla_on_settle(d.api.p->sla, settled_cb, &d.api);
    tg_review_sla_on_event(d.api.p->sla, review_event_cb, &d.api);
    tg_review_sla_on_remote(d.api.p->sla, remote_cb, &d.api);
    d.api.webhooks = tg_webhooks_start(cfg->webhook_list, cfg->n_webhooks, d.base, d.api.p->store);
    if (d.api.webhooks) /* a settled review's deliveries commit with it */
        tg_review_on_settle(tg_api_settle_hook, &d.api);
    d.sigterm = evsignal_new(d.base, SIGTERM, signal_cb, &d);
    d.sigint = evsignal_new(d.base, SIGINT, signal_cb, &d);
    d.drain_timer = evtimer_new(d.base, drain_check_cb, &d);
    evsignal_add(d.sigterm, NULL);
    evsignal_add(d.sigint, NULL);

    print_banner(cfg, &d, host, data);

    event_base_dispatch(d.base);
    status = 0;
    tg_info("stopped; store flushed");
out:
    daemon_stop(&d);
    curl_global_cleanup();
    return status;
}

int tg_cli_serve(int argc, char **argv)
{
    struct serve_args a = {0};
    struct tg_config *cfg = NULL;
    char host[256], dir[4096];
    int port, lockfd = -1, status = tg_cli_parse(&serve_cmd, argc, argv, &a, NULL);
    if (status != TG_CLI_GO_ON)
        return status;
    status = 1;
    cfg = tg_cli_load_config(a.cfg);
    if (!cfg)
        goto out;
    tg_log_set_level(cfg->log_level);
    port = cfg->listen_port;
    tg_strlcpy(host, cfg->listen_host, sizeof(host));
    if (a.listen && split_listen(a.listen, host, sizeof(host), &port)) {
        fprintf(stderr, "trustgate serve: --listen '%s' is not HOST:PORT\n", a.listen);
        status = 2;
        goto out;
    }
    if (a.store && tg_cli_store_override(cfg, a.store, &a.data)) {
        fprintf(stderr, "trustgate serve: out of memory\n");
        goto out;
    }
    tg_cli_data_dir(cfg, a.data, dir, sizeof(dir));
    if (tg_cli_mkdirs(dir)) {
        fprintf(stderr, "trustgate serve: cannot create data directory %s\n", dir);
        goto out;
    }
    /* One server per data directory: the audit log has one writer. */
    lockfd = tg_cli_lock_data_dir(dir);
    if (lockfd < 0) {
        fprintf(stderr, "trustgate serve: another trustgate process is using %s\n", dir);
        goto out;
    }
    status = run(cfg, host, port, a.data);
out:
    tg_config_free(cfg);
    if (lockfd >= 0)
        close(lockfd);
    return status;
}
