/*
 * release_cmd.c - `trustgate release …`: every change to what answers
 * customers is a named, versioned release with a content hash, and every
 * transition of a release is an audit leaf naming who and why.
 *
 *   propose NAME            snapshot the deployment: the SHA-256 of every file it reads (config,
 *                           policy includes, knowledge base, glossary, intents) and its answering
 *                           settings (backends, route, ladder), hashed together
 *   start-experiment NAME   mark it as under experiment on --share of traffic
 *   promote NAME            make it the release in force, through the running server (--url)
 *                           with a supervisor's token: the server computes every gate from its
 *                           store (tg_release_gates: the release's own experiment traffic, FAR,
 *                           the monitor's criterion, the split, fairness, the freeze) and refuses
 *                           while one is closed; --override REASON promotes a release that never
 *                           ran as an experiment
 *   rollback NAME           take a promoted release back; the one before it is in force again
 *                           (through the running server, --url)
 *   freeze / unfreeze       stop and resume promotions: a supervisor, through the server
 *   list / show NAME        the registry
 *   export NAME --to DIR    the release's files as proposed (kept in the store by content)
 *
 * Acts a person must authorize (promote, freeze, unfreeze) are made by the
 * server in the name its token proves, never by a name typed here: on a
 * stopped deployment's store they are refused, pointing at --url.  The
 * other transitions live in the store of the data directory (blobs
 * release/NAME/VERSION and release-state), written while no server holds
 * it, like `review decide` on a stopped deployment.
 */
#include "cli/cli.h"

#include "audit/audit.h"
#include "eval/eval.h"
#include "govern/govern.h"
#include "store/store.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct release_args {
    const char *cfg, *data, *by, *why, *to, *url, *token, *override;
    const char *far_report, *srm; /* no longer taken: refused with a reason */
    int64_t version;
    double share;
    bool as_json;
};

#define ARG(f) TG_CLI_FIELD(struct release_args, f)
static const struct tg_cli_opt release_opts[] = {
    {"config", 'c', ARG(cfg), .arg = "FILE", .help = "the deployment"},
    {"data", 'd', ARG(data), .arg = "DIR", .help = "data directory, overrides the config"},
    {"by", 'b', ARG(by), .arg = "WHO", .help = "who makes the transition"},
    {"why", 'w', ARG(why), .arg = "TEXT", .help = "why (for the server's acts, 10 characters)"},
    {"share", 's', ARG(share), .arg = "X", .help = "start-experiment: its share of traffic",
     .lo = 0, .hi = 1},
    {"far-report", 'f', ARG(far_report), .arg = "FILE"},
    {"srm", 'r', ARG(srm), .arg = "FILE"},
    {"json", 'j', ARG(as_json), .help = "list: print JSON"},
    {"to", 't', ARG(to), .arg = "DIR", .help = "export: the folder to write"},
    {"version", 'v', ARG(version), .arg = "N", .help = "export: this version (default the last)",
     .lo = 1, .hi = 1e9},
    {"url", 'u', ARG(url), .arg = "URL", .help = "the running server"},
    {"token", 'k', ARG(token), .arg = "TOKEN",
     .help = "a supervisor's token (default $TRUSTGATE_TOKEN)"},
    {"override", 'o', ARG(override), .arg = "REASON",
     .help = "promote: a release that never ran as an experiment"},
    {0}};
#undef ARG

static const struct tg_cli_cmd release_cmd = {
    .name = "release",
    .usage =
        "usage: trustgate release propose NAME -c FILE --by WHO --why TEXT\n"
        "       trustgate release start-experiment NAME -c FILE --share X --by WHO --why TEXT\n"
        "       trustgate release promote NAME --url URL [--token TOKEN] --why TEXT\n"
        "                                      [--override REASON]\n"
        "       trustgate release freeze|unfreeze --url URL [--token TOKEN] --why TEXT\n"
        "       trustgate release rollback NAME --url URL [--token TOKEN] --why TEXT\n"
        "       trustgate release list|show [NAME] -c FILE [--json]\n"
        "       trustgate release export NAME -c FILE --to DIR [--version N]\n\n"
        "A release is a named, versioned snapshot of what answers customers, with its\n"
        "content hash; every transition is an audit leaf with who and why.  Promoting,\n"
        "freezing and unfreezing are a supervisor's acts, made by the running server\n"
        "(--url) in the name of the token (--token or $TRUSTGATE_TOKEN), with a reason of\n"
        "at least 10 characters.  The server computes every gate from its store and names\n"
        "each one closed: the release must have run as an experiment (or a supervisor\n"
        "overrides with --override REASON), releases not frozen, FAR of its judged turns\n"
        "at least eval.far.min, the monitor's criterion not met on its days, no\n"
        "sample-ratio mismatch in its experiment's customers, the fairness gate open on\n"
        "its traffic.  A release keeps its files in the store; export writes them out\n"
        "(checked against the release's hash) to serve them, e.g. after a rollback.\n"
        "--data DIR overrides the store.\n",
    .opts = release_opts,
    .max_args = TG_CLI_MANY,
};

/* ------------------------------------------------------------ registry */

struct ctx {
    struct tg_config *cfg;
    const char *data; /* --data, or NULL for the config's */
    struct tg_store *st;
    struct tg_audit *audit;
    int lockfd;
};

/* Every release in the store (none when it cannot be read); NULL when out
 * of memory. */
static json_t *all_releases(struct ctx *x)
{
    json_t *v = NULL;
    int rc = tg_store_blob_list(x->st, "release/", 100000, &v);
    if (rc)
        return rc == TG_E_NOMEM ? NULL : json_array();
    return v;
}

static json_t *state(struct ctx *x)
{
    return tg_release_state(x->st);
}

/* ------------------------------------------------------------ through the server */

/*
 * An act a person authorizes, made by the server at base in the name of
 * token: promote (name), freeze or unfreeze.  Prints the outcome and every
 * gate; 0 when done, 1 when refused or unreachable.
 */
static int remote(const char *base, const char *token, const char *cmd, const char *name,
                  const char *why, const char *override)
{
    char path[512];
    long status = 0;
    struct tg_buf out;
    bool promoting = !strcmp(cmd, "promote"), rolling = !strcmp(cmd, "rollback");
    json_t *body = json_pack("{s:s}", "why", why), *res = NULL;
    if (override && tg_json_set(body, "override", json_string(override))) {
        json_decref(body);
        body = NULL;
    }
    char *js = body ? tg_json_dumps(body, JSON_COMPACT) : NULL;
    int rc = 1;
    if (!js)
        fprintf(stderr, "trustgate release: out of memory\n");
    if (promoting || rolling)
        snprintf(path, sizeof(path), "/v1/releases/%s/%s", name, cmd);
    else
        snprintf(path, sizeof(path), "/v1/releases/%s", cmd);
    tg_buf_init(&out, 16u << 20);
    if (js && !tg_cli_http(base, token, "POST", path, js, &out, &status, "release"))
        res = json_loadb(out.data ? out.data : "", out.len, 0, NULL);
    const json_t *ev = json_object_get(res, "evidence"), *g;
    size_t i;
    if (!res) {
        if (js && status)
            fprintf(stderr, "trustgate release: %s%s answered %ld, not JSON\n", base, path, status);
    } else if (status >= 400) {
        printf("%s%s refused (%ld): %s\n",
               promoting ? "promotion of "
               : rolling ? "rollback of "
                         : cmd,
               promoting || rolling ? name : "", status,
               tg_json_str(json_object_get(res, "error"), "message", "?"));
    } else if (rolling) {
        const json_t *back = json_object_get(res, "restored");
        printf("%s v%lld: rolled_back\n", name,
               (long long)tg_json_int(json_object_get(res, "release"), "version", 0));
        if (json_is_object(back))
            printf("%s v%lld is in force again; its files: trustgate release export %s "
                   "--version %lld --to DIR\n",
                   tg_json_str(back, "name", ""), (long long)tg_json_int(back, "version", 0),
                   tg_json_str(back, "name", ""), (long long)tg_json_int(back, "version", 0));
        rc = 0;
    } else if (promoting) {
        printf("%s: promoted\n", tg_json_str(ev, "release", name));
        rc = 0;
    } else {
        printf("releases %s by %s: %s\n",
               tg_json_bool(res, "frozen", false) ? "frozen" : "unfrozen",
               tg_json_str(res, "by", "?"), tg_json_str(res, "why", ""));
        rc = 0;
    }
    json_array_foreach(json_object_get(ev, "gates"), i, g)
        printf("  %-10s %-6s %s\n", tg_json_str(g, "gate", ""),
               tg_json_bool(g, "open", false) ? "open" : "CLOSED", tg_json_str(g, "detail", ""));
    json_decref(res);
    json_decref(body);
    free(js);
    tg_buf_free(&out);
    return rc;
}

/* propose, start-experiment, rollback: govern's transitions, said on stdout. */
static int transition(struct ctx *x, const char *cmd, const char *name, const char *by,
                      const char *why, double share)
{
    char err[256] = "";
    json_t *rel = NULL, *back = NULL;
    int rc;
    if (!strcmp(cmd, "propose"))
        rc = tg_release_propose(x->st, x->audit, x->cfg, name, by, why, &rel, err, sizeof(err));
    else if (!strcmp(cmd, "start-experiment"))
        rc = tg_release_start_experiment(x->st, x->audit, name, share, by, why, &rel, err,
                                         sizeof(err));
    else if (!strcmp(cmd, "rollback"))
        rc = tg_release_rollback(x->st, x->audit, name, by, why, &rel, &back, err, sizeof(err));
    else
        return 2;
    if (rc) {
        fprintf(stderr, "trustgate release: %s\n", err);
        return 1;
    }
    if (!strcmp(cmd, "propose"))
        printf("%s v%lld proposed: %s (%zu files)\n", name,
               (long long)tg_json_int(rel, "version", 0), tg_json_str(rel, "hash", ""),
               json_object_size(json_object_get(rel, "files")));
    else
        printf("%s v%lld: %s\n", name, (long long)tg_json_int(rel, "version", 0),
               tg_json_str(rel, "state", ""));
    if (back)
        printf("%s v%lld is in force again; its files: trustgate release export %s "
               "--version %lld --to DIR\n",
               tg_json_str(back, "name", ""), (long long)tg_json_int(back, "version", 0),
               tg_json_str(back, "name", ""), (long long)tg_json_int(back, "version", 0));
    json_decref(rel);
    json_decref(back);
    return 0;
}

/* `release list` / `release show NAME`: the registry on stdout; 1 when
 * NAME has no release or out of memory. */
static int show(struct ctx *x, const char *name, bool as_json)
{
    json_t *all = all_releases(x), *out = json_array();
    int rc = all && out ? TG_OK : TG_E_NOMEM;
    char *js = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        if (rc || (name && strcmp(tg_json_str(r, "name", ""), name) != 0))
            continue;
        if (!name)
            json_object_del(r, "files");
        rc = tg_json_push(out, json_incref(r));
    }
    if (!rc && (as_json || name)) {
        js = tg_json_dumps(out, JSON_INDENT(2));
        rc = js ? TG_OK : TG_E_NOMEM;
    }
    if (rc) {
        fprintf(stderr, "trustgate release: out of memory\n");
    } else if (js) {
        printf("%s\n", js);
    } else {
        json_t *s = state(x);
        printf("releases%s\n", tg_json_bool(s, "frozen", false) ? " (FROZEN)" : "");
        json_decref(s);
        json_array_foreach(out, i, r)
            printf("  %-20s v%-3lld %-12s %.16s\n", tg_json_str(r, "name", ""),
                   (long long)tg_json_int(r, "version", 0), tg_json_str(r, "state", ""),
                   tg_json_str(r, "hash", ""));
    }
    int status = rc || (name && !json_array_size(out)) ? 1 : 0;
    free(js);
    json_decref(out);
    json_decref(all);
    return status;
}

/* `release export NAME --to DIR`: the release's files as they were proposed. */
static int export_release(struct ctx *x, const char *name, long long version, const char *to)
{
    json_t *all = all_releases(x), *r, *rel = NULL;
    size_t i;
    json_array_foreach(all, i, r)
    {
        if (!strcmp(tg_json_str(r, "name", ""), name) &&
            (version ? tg_json_int(r, "version", 0) == version
                     : !rel || tg_json_int(r, "version", 0) > tg_json_int(rel, "version", 0)))
            rel = r;
    }
    char conf[4400], err[512] = "";
    int rc = 1;
    if (!all)
        fprintf(stderr, "trustgate release: out of memory\n");
    else if (!rel)
        fprintf(stderr, "trustgate release: no release named %s%s\n", name,
                version ? " with that version" : "");
    else if (tg_cli_mkdirs(to) ||
             tg_release_materialize(x->st, rel, to, conf, sizeof(conf), err, sizeof(err)))
        fprintf(stderr, "trustgate release: %s v%lld: %s\n", name,
                (long long)tg_json_int(rel, "version", 0),
                err[0] ? err : "cannot create the folder");
    else
        rc = 0;
    if (!rc) {
        /* what was written out must hash to what was proposed */
        struct tg_config *c = tg_cli_load_config(conf);
        char hash[2 * TG_SHA256_LEN + 1] = "";
        json_t *files = c ? tg_config_snapshot(c, hash, NULL, NULL) : NULL;
        if (c && !files) {
            fprintf(stderr, "trustgate release: out of memory\n");
            rc = 1;
        } else if (strcmp(hash, tg_json_str(rel, "hash", "")) != 0) {
            fprintf(stderr, "trustgate release: %s v%lld written to %s does not hash to %s\n", name,
                    (long long)tg_json_int(rel, "version", 0), to, tg_json_str(rel, "hash", ""));
            rc = 1;
        } else {
            printf("%s v%lld (%.16s) written to %s; serve it with: trustgate serve -c %s\n", name,
                   (long long)tg_json_int(rel, "version", 0), hash, to, conf);
        }
        json_decref(files);
        tg_config_free(c);
    }
    json_decref(all);
    return rc;
}

/* The commands that work on a stopped deployment's store: list, show,
 * export, and the transitions the store records (cmd). */
static int on_store(const struct release_args *a, const char *cmd, const char *name)
{
    bool exporting = !strcmp(cmd, "export");
    bool reading = !strcmp(cmd, "list") || !strcmp(cmd, "show") || exporting;
    struct ctx x = {.lockfd = -1, .data = a->data};
    char dir[4096];
    int status = 1;
    x.cfg = tg_cli_load_config(a->cfg);
    if (!x.cfg)
        return 1;
    tg_cli_data_dir(x.cfg, a->data, dir, sizeof(dir));
    if (tg_cli_mkdirs(dir)) {
        fprintf(stderr, "trustgate release: cannot create %s\n", dir);
        goto out;
    }
    x.lockfd = tg_cli_lock_data_dir(dir);
    if (x.lockfd < 0) {
        fprintf(stderr, "trustgate release: a running `trustgate serve` owns %s; stop it first\n",
                dir);
        goto out;
    }
    if (!(x.st = tg_cli_open_store(x.cfg, a->data, "release")) || tg_audit_open(x.st, &x.audit)) {
        fprintf(stderr, "trustgate release: cannot open the store in %s\n", dir);
        goto out;
    }
    status = exporting ? export_release(&x, name, (long long)a->version, a->to)
             : reading ? show(&x, name, a->as_json)
                       : transition(&x, cmd, name, a->by, a->why, a->share);
    if (status == 2)
        tg_cli_usage(&release_cmd, stderr);
out:
    tg_audit_close(x.audit);
    tg_store_close(x.st);
    if (x.lockfd >= 0)
        close(x.lockfd);
    tg_config_free(x.cfg);
    return status;
}

/* promote, rollback, freeze, unfreeze: through the server at --url; the
 * exit status. */
static int authorized(const struct release_args *a, const char *cmd, const char *name)
{
    bool global = !strcmp(cmd, "freeze") || !strcmp(cmd, "unfreeze");
    int status = 2;
    if (!a->url) {
        /* a name typed here proves nothing: the server acts in the name its token proves */
        fprintf(stderr,
                "trustgate release: %s is a supervisor's act, made by the running server in the "
                "name of their token: trustgate release %s%s%s --url URL --token TOKEN --why "
                "TEXT%s; it is never written to a stopped deployment's store\n",
                cmd, cmd, name ? " " : "", name ? name : "",
                !strcmp(cmd, "promote") ? " [--override REASON]" : "");
        status = 1;
    } else if (!a->token || !a->token[0] || !a->why || (!global && !name)) {
        if (!a->token || !a->token[0])
            fprintf(stderr, "trustgate release: --url needs a supervisor's token (--token or "
                            "$TRUSTGATE_TOKEN)\n");
        tg_cli_usage(&release_cmd, stderr);
    } else {
        status = remote(a->url, a->token, cmd, name, a->why, a->override);
    }
    return status;
}

/* The command once its options are read into a (name: NULL when not
 * given); the exit status. */
static int release(const struct release_args *a, const char *cmd, const char *name)
{
    bool exporting = !strcmp(cmd, "export");
    bool reading = !strcmp(cmd, "list") || !strcmp(cmd, "show") || exporting;
    if (exporting && (!name || !a->to))
        return tg_cli_usage_error(&release_cmd);
    if (a->far_report || a->srm) {
        fprintf(stderr, "trustgate release: --far-report and --srm are no longer taken: the server "
                        "computes every gate from its store\n");
        return 2;
    }
    if (!strcmp(cmd, "freeze") || !strcmp(cmd, "unfreeze") || !strcmp(cmd, "promote") ||
        !strcmp(cmd, "rollback"))
        return authorized(a, cmd, name);
    if (a->url || a->override) {
        fprintf(stderr, "trustgate release: %s works on the store (-c or --data)%s\n", cmd,
                a->override ? "; --override is for promote" : "");
        return 2;
    }
    if (!a->cfg || (!reading && (!a->by || !a->why || !a->why[0] || !name)))
        return tg_cli_usage_error(&release_cmd);
    return on_store(a, cmd, name);
}

int tg_cli_release(int argc, char **argv)
{
    struct release_args a = {.token = getenv("TRUSTGATE_TOKEN")};
    int end, status;
    if (argc < 2 || tg_cli_wants_help(argc, argv))
        return tg_cli_usage_or_help(&release_cmd, argc, argv);
    status = tg_cli_parse(&release_cmd, argc - 1, argv + 1, &a, &end);
    if (status != TG_CLI_GO_ON)
        return status;
    return release(&a, argv[1], end + 1 < argc ? argv[end + 1] : NULL);
}
