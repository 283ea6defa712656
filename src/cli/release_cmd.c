/*
 * release_cmd.c - `trustgate release …`: every change to what answers
 * customers is a named, versioned release with a content hash, and every
 * transition of a release is an audit leaf naming who and why.
 *
 *   propose NAME            snapshot the deployment: the SHA-256 of every file it reads (config,
 *                           policy includes, knowledge base, glossary, intents) and its answering
 *                           settings (backends, route, ladder), hashed together
 *   start-experiment NAME   mark it as under experiment on --share of traffic
 *   promote NAME            make it the release in force; refused while a gate fails: releases
 *                           frozen (fairness), the fairness gate closed on the turns the release
 *                           answered as an experiment, FAR below eval.far.min in --far-report
 *                           (the JSON of `eval far`), sample-ratio mismatch in --srm
 *                           OBSERVED/SHARE,...
 *   rollback NAME           take a promoted release back; the one before it is in force again
 *   freeze / unfreeze       stop and resume promotions; unfreezing takes a supervisor and a reason
 *   list / show NAME        the registry
 *   export NAME --to DIR    the release's files as proposed (kept in the store by content)
 *
 * Releases live in the store of the data directory (blobs release/NAME/VERSION
 * and release-state), written while no server holds it, like `review decide`
 * on a stopped deployment.
 */
#include "cli/cli.h"

#include "audit/audit.h"
#include "eval/eval.h"
#include "eval/fairness.h"
#include "eval/stats.h"
#include "store/store.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trustgate release propose NAME -c FILE --by WHO --why TEXT\n"
            "       trustgate release start-experiment NAME -c FILE --share X --by WHO --why TEXT\n"
            "       trustgate release promote NAME -c FILE --by WHO --why TEXT\n"
            "                         [--far-report FILE] [--srm N1/S1,N2/S2,...]\n"
            "       trustgate release rollback NAME -c FILE --by WHO --why TEXT\n"
            "       trustgate release freeze|unfreeze -c FILE --by WHO --why TEXT\n"
            "       trustgate release list|show [NAME] -c FILE [--json]\n"
            "       trustgate release export NAME -c FILE --to DIR [--version N]\n\n"
            "A release is a named, versioned snapshot of what answers customers, with its\n"
            "content hash; every transition is an audit leaf with who and why.  Promotion is\n"
            "refused while any gate fails, naming it: releases frozen, the fairness gate\n"
            "closed on the traffic the release answered, FAR in --far-report\n"
            "below eval.far.min, sample-ratio mismatch (p < 0.001) in --srm.  Unfreezing\n"
            "takes a supervisor from the config's users.  A release keeps its files in the\n"
            "store; export writes them out (checked against the release's hash) to serve\n"
            "them, e.g. after a rollback.  --data DIR overrides the store.\n");
}

/* ------------------------------------------------------------ registry */

struct ctx {
    struct tg_config *cfg;
    const char *data; /* --data, or NULL for the config's */
    struct tg_store *st;
    struct tg_audit *audit;
    int lockfd;
};

static json_t *all_releases(struct ctx *x)
{
    json_t *v = NULL;
    if (tg_store_blob_list(x->st, "release/", 100000, &v))
        return json_array();
    return v;
}

static int save(struct ctx *x, json_t *rel)
{
    char key[512];
    snprintf(key, sizeof(key), "release/%s/%08lld", tg_json_str(rel, "name", ""),
             (long long)tg_json_int(rel, "version", 0));
    char *s = json_dumps(rel, JSON_COMPACT);
    int rc = s ? tg_store_blob_put(x->st, key, s, strlen(s)) : TG_E_NOMEM;
    free(s);
    return rc ? rc : tg_store_flush(x->st);
}

static json_t *state(struct ctx *x)
{
    return tg_release_state(x->st);
}

/* One audit leaf per transition: who, why, what. */
static int record(struct ctx *x, const char *action, const json_t *rel, const char *by,
                  const char *why)
{
    json_t *leaf = json_pack("{s:s, s:s, s:s?, s:I, s:s?, s:s, s:s, s:I}", "kind", "release",
                             "action", action, "name", rel ? tg_json_str(rel, "name", NULL) : NULL,
                             "version", (json_int_t)(rel ? tg_json_int(rel, "version", 0) : 0),
                             "hash", rel ? tg_json_str(rel, "hash", NULL) : NULL, "by", by, "why",
                             why, "at", (json_int_t)tg_clock_wall_ms());
    int rc = leaf ? tg_audit_append_json(x->audit, leaf, NULL) : TG_E_NOMEM;
    json_decref(leaf);
    return rc;
}

static void event(json_t *rel, const char *action, const char *by, const char *why)
{
    json_t *h = json_object_get(rel, "history");
    if (!json_is_array(h))
        json_object_set_new(rel, "history", h = json_array());
    json_array_append_new(h, json_pack("{s:s, s:s, s:s, s:I}", "action", action, "by", by, "why",
                                       why, "at", (json_int_t)tg_clock_wall_ms()));
}

static const char *role_of(const struct tg_config *cfg, const char *who)
{
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(cfg->root, "users"), i, u)
    {
        if (!strcmp(tg_json_str(u, "name", ""), who))
            return tg_json_str(u, "role", "reviewer");
    }
    return NULL;
}

/* The gates a promotion must pass; the reasons it fails in why (empty: open). */
/* The live fairness gate on the traffic the candidate answered as an experiment. */
static void fairness_gate(struct ctx *x, const json_t *rel, char *why, size_t len)
{
    const json_t *fc = json_object_get(x->cfg->root, "fairness");
    if (!json_array_size(json_object_get(fc, "attributes")))
        return;
    char name[200], detail[300], dir[4096], keypath[4200];
    uint8_t key[32];
    int64_t window = 30 * 86400000LL;
    const json_t *w = json_object_get(fc, "window");
    if (json_is_string(w))
        tg_parse_duration_ms(json_string_value(w), &window);
    snprintf(name, sizeof(name), "%s@%lld", tg_json_str(rel, "name", ""),
             (long long)tg_json_int(rel, "version", 0));
    /* the deployment's pseudonym key names the configured groups (optional) */
    tg_cli_data_dir(x->cfg, x->data, dir, sizeof(dir));
    snprintf(keypath, sizeof(keypath), "%s/pseudonym.key", dir);
    FILE *kf = fopen(keypath, "rb");
    bool have_key = kf && fread(key, 1, sizeof(key), kf) == sizeof(key);
    if (kf)
        fclose(kf);
    struct tg_fair_live in = {
        .cfg = fc,
        .key = have_key ? key : NULL,
        .keylen = sizeof(key),
        .since_ms = tg_clock_wall_ms() - window,
        .release = name,
        .limit = json_is_number(json_object_get(fc, "limit"))
                     ? json_number_value(json_object_get(fc, "limit"))
                     : 0.05,
        .min_group = (size_t)tg_json_int(fc, "min_group", 30),
        .bootstrap = (size_t)tg_json_int(fc, "bootstrap", 1000),
    };
    json_t *res = tg_fairness_live(x->st, &in);
    if (!res)
        snprintf(why + strlen(why), len - strlen(why), "the audit log is unreadable; ");
    else if (tg_fairness_live_closed(res, detail, sizeof(detail)))
        snprintf(why + strlen(why), len - strlen(why),
                 "fairness gate closed on the traffic %s answered: %s above %.3f; ", name, detail,
                 in.limit);
    json_decref(res);
}

static void gates(struct ctx *x, const json_t *rel, const char *far_report, const char *srm,
                  char *why, size_t len)
{
    why[0] = '\0';
    fairness_gate(x, rel, why, len);
    json_t *s = state(x);
    if (tg_json_bool(s, "frozen", false))
        snprintf(why + strlen(why), len - strlen(why), "releases are frozen (%s); ",
                 tg_json_str(s, "why", "no reason recorded"));
    json_decref(s);
    const json_t *min =
        json_object_get(json_object_get(json_object_get(x->cfg->root, "eval"), "far"), "min");
    if (far_report) {
        json_t *r = json_load_file(far_report, 0, NULL);
        double far = tg_json_num(r, "far", -1);
        if (!r)
            snprintf(why + strlen(why), len - strlen(why), "the FAR report %s is unreadable; ",
                     far_report);
        else if (json_is_number(min) && far < json_number_value(min))
            snprintf(why + strlen(why), len - strlen(why),
                     "FAR %.1f%% is below the minimum %.1f%%; ", far * 100,
                     json_number_value(min) * 100);
        json_decref(r);
    } else if (json_is_number(min)) {
        snprintf(why + strlen(why), len - strlen(why),
                 "no FAR report (--far-report, the JSON of `trustgate eval far`); ");
    }
    if (srm) {
        double obs[16], share[16];
        size_t k = 0;
        char buf[512];
        tg_strlcpy(buf, srm, sizeof(buf));
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t && k < 16; t = strtok_r(NULL, ",", &save)) {
            char *slash = strchr(t, '/');
            if (!slash)
                break;
            obs[k] = strtod(t, NULL);
            share[k++] = strtod(slash + 1, NULL);
        }
        double chi2, p = tg_stats_srm(obs, share, k, &chi2);
        if (k < 2)
            snprintf(why + strlen(why), len - strlen(why), "--srm needs N/SHARE for each arm; ");
        else if (p < 0.001)
            snprintf(why + strlen(why), len - strlen(why),
                     "sample-ratio mismatch (chi-square %.2f, p %.2g): the split is broken; ", chi2,
                     p);
    }
}

/* Propose keeps every file of the release in the store, by content. */
struct keep {
    struct tg_store *st;
    int rc;
};

static void keep_file(void *arg, const char *name, const char *sha, const void *data, size_t len)
{
    struct keep *k = arg;
    (void)name;
    if (!k->rc)
        k->rc = tg_release_keep_file(k->st, sha, data, len);
}

static int transition(struct ctx *x, const char *cmd, const char *name, const char *by,
                      const char *why, double share, const char *far_report, const char *srm)
{
    if (!strcmp(cmd, "propose")) {
        char hash[2 * TG_SHA256_LEN + 1];
        struct keep k = {.st = x->st};
        json_t *files = tg_config_snapshot(x->cfg, hash, keep_file, &k);
        char conf[PATH_MAX];
        if (!realpath(x->cfg->path, conf))
            tg_strlcpy(conf, x->cfg->path, sizeof(conf));
        const char *slash = strrchr(x->cfg->path, '/');
        if (k.rc) {
            json_decref(files);
            fprintf(stderr, "trustgate release: cannot keep the release's files: %s\n",
                    tg_err_str(k.rc));
            return 1;
        }
        json_t *prev = tg_release_latest(x->st, name);
        json_int_t version = prev ? tg_json_int(prev, "version", 0) + 1 : 1;
        json_decref(prev);
        json_t *rel = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:o, s:I}", "name", name, "version",
                                version, "hash", hash, "state", "proposed", "config", conf,
                                "config_file", slash ? slash + 1 : x->cfg->path, "files", files,
                                "created_ms", (json_int_t)tg_clock_wall_ms());
        event(rel, "propose", by, why);
        int rc = record(x, "propose", rel, by, why);
        if (!rc)
            rc = save(x, rel);
        if (!rc)
            printf("%s v%lld proposed: %s (%zu files)\n", name, (long long)version, hash,
                   json_object_size(files));
        json_decref(rel);
        return rc ? 1 : 0;
    }
    if (!strcmp(cmd, "freeze") || !strcmp(cmd, "unfreeze")) {
        bool freeze = !strcmp(cmd, "freeze");
        const char *role = role_of(x->cfg, by);
        if (!freeze && (!role || strcmp(role, "supervisor") != 0)) {
            fprintf(stderr, "trustgate release: unfreezing takes a supervisor; %s is %s\n", by,
                    role ? role : "not a configured user");
            return 1;
        }
        int rc = tg_release_set_frozen(x->st, x->audit, freeze, by, why);
        if (!rc)
            printf("releases %s by %s: %s\n", freeze ? "frozen" : "unfrozen", by, why);
        return rc ? 1 : 0;
    }
    json_t *rel = tg_release_latest(x->st, name);
    if (!rel) {
        fprintf(stderr, "trustgate release: no release named %s\n", name);
        return 1;
    }
    const char *st = tg_json_str(rel, "state", "");
    int rc = 0;
    if (!strcmp(cmd, "start-experiment")) {
        if (strcmp(st, "proposed") != 0 || share <= 0 || share > 1) {
            fprintf(stderr,
                    "trustgate release: %s is %s; an experiment starts from proposed, "
                    "with --share in (0, 1]\n",
                    name, st);
            rc = 1;
        } else {
            json_object_set_new(rel, "state", json_string("experiment"));
            json_object_set_new(rel, "share", json_real(share));
        }
    } else if (!strcmp(cmd, "promote")) {
        char reasons[1024];
        gates(x, rel, far_report, srm, reasons, sizeof(reasons));
        if (strcmp(st, "proposed") != 0 && strcmp(st, "experiment") != 0) {
            fprintf(stderr, "trustgate release: %s is %s, not a candidate\n", name, st);
            rc = 1;
        } else if (reasons[0]) {
            printf("promotion of %s refused: %s\n", name, reasons);
            /* a refusal is a decision too: recorded with its reasons */
            record(x, "promote_refused", rel, by, reasons);
            rc = 1;
        } else {
            /* the release in force steps aside */
            json_t *all = all_releases(x);
            size_t i;
            json_t *r;
            json_array_foreach(all, i, r)
            {
                if (!strcmp(tg_json_str(r, "state", ""), "promoted")) {
                    json_object_set_new(r, "state", json_string("superseded"));
                    event(r, "superseded", by, why);
                    save(x, r);
                }
            }
            json_decref(all);
            json_object_set_new(rel, "state", json_string("promoted"));
        }
    } else if (!strcmp(cmd, "rollback")) {
        if (strcmp(st, "promoted") != 0) {
            fprintf(stderr, "trustgate release: %s is %s; only the release in force rolls back\n",
                    name, st);
            rc = 1;
        } else {
            json_object_set_new(rel, "state", json_string("rolled_back"));
            /* the newest superseded release is in force again */
            json_t *all = all_releases(x), *back = NULL;
            size_t i;
            json_t *r;
            json_array_foreach(all, i, r)
            {
                if (!strcmp(tg_json_str(r, "state", ""), "superseded") &&
                    (!back || tg_json_int(r, "created_ms", 0) > tg_json_int(back, "created_ms", 0)))
                    back = r;
            }
            if (back) {
                json_object_set_new(back, "state", json_string("promoted"));
                event(back, "restored", by, why);
                save(x, back);
                printf("%s v%lld is in force again; its files: trustgate release export %s "
                       "--version %lld --to DIR\n",
                       tg_json_str(back, "name", ""), (long long)tg_json_int(back, "version", 0),
                       tg_json_str(back, "name", ""), (long long)tg_json_int(back, "version", 0));
            }
            json_decref(all);
        }
    } else {
        json_decref(rel);
        return 2;
    }
    if (!rc) {
        event(rel, cmd, by, why);
        rc = record(x, cmd, rel, by, why) || save(x, rel);
        if (!rc)
            printf("%s v%lld: %s\n", name, (long long)tg_json_int(rel, "version", 0),
                   tg_json_str(rel, "state", ""));
    }
    json_decref(rel);
    return rc ? 1 : 0;
}

static int show(struct ctx *x, const char *name, bool as_json)
{
    json_t *all = all_releases(x), *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        if (name && strcmp(tg_json_str(r, "name", ""), name) != 0)
            continue;
        if (!name)
            json_object_del(r, "files");
        json_array_append(out, r);
    }
    if (as_json || name) {
        char *s = json_dumps(out, JSON_INDENT(2));
        printf("%s\n", s ? s : "[]");
        free(s);
    } else {
        json_t *s = state(x);
        printf("releases%s\n", tg_json_bool(s, "frozen", false) ? " (FROZEN)" : "");
        json_decref(s);
        json_array_foreach(out, i, r)
            printf("  %-20s v%-3lld %-12s %.16s\n", tg_json_str(r, "name", ""),
                   (long long)tg_json_int(r, "version", 0), tg_json_str(r, "state", ""),
                   tg_json_str(r, "hash", ""));
    }
    int rc = name && !json_array_size(out) ? 1 : 0;
    json_decref(out);
    json_decref(all);
    return rc;
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
    char conf[4400], err[512];
    int rc = 1;
    if (!rel)
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
        if (c)
            json_decref(tg_config_snapshot(c, hash, NULL, NULL));
        tg_config_free(c);
        if (strcmp(hash, tg_json_str(rel, "hash", "")) != 0) {
            fprintf(stderr, "trustgate release: %s v%lld written to %s does not hash to %s\n", name,
                    (long long)tg_json_int(rel, "version", 0), to, tg_json_str(rel, "hash", ""));
            rc = 1;
        } else {
            printf("%s v%lld (%.16s) written to %s; serve it with: trustgate serve -c %s\n", name,
                   (long long)tg_json_int(rel, "version", 0), hash, to, conf);
        }
    }
    json_decref(all);
    return rc;
}

int tg_cli_release(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"data", required_argument, NULL, 'd'},
        {"by", required_argument, NULL, 'b'},     {"why", required_argument, NULL, 'w'},
        {"share", required_argument, NULL, 's'},  {"far-report", required_argument, NULL, 'f'},
        {"srm", required_argument, NULL, 'r'},    {"json", no_argument, NULL, 'j'},
        {"to", required_argument, NULL, 't'},     {"version", required_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    const char *cfg_path = NULL, *data = NULL, *by = NULL, *why = NULL, *far = NULL, *srm = NULL;
    const char *to = NULL;
    int64_t version = 0;
    double share = 0;
    bool as_json = false;
    int c;
    if (argc < 2 || tg_cli_wants_help(argc, argv)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "c:d:b:w:s:f:r:jt:v:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cfg_path = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'b':
            by = optarg;
            break;
        case 'w':
            why = optarg;
            break;
        case 's':
            share = strtod(optarg, NULL);
            break;
        case 'f':
            far = optarg;
            break;
        case 'r':
            srm = optarg;
            break;
        case 'j':
            as_json = true;
            break;
        case 't':
            to = optarg;
            break;
        case 'v':
            if (tg_parse_i64(optarg, &version) || version < 1) {
                fprintf(stderr, "trustgate release: --version wants a number from 1\n");
                return 2;
            }
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    const char *name = optind + 1 < argc ? argv[optind + 1] : NULL;
    bool exporting = !strcmp(cmd, "export");
    if (exporting && (!name || !to)) {
        usage(stderr);
        return 2;
    }
    bool reading = !strcmp(cmd, "list") || !strcmp(cmd, "show") || exporting;
    bool global = !strcmp(cmd, "freeze") || !strcmp(cmd, "unfreeze");
    if (!cfg_path || (!reading && (!by || !why || !why[0])) || (!reading && !global && !name)) {
        usage(stderr);
        return 2;
    }
    struct ctx x = {.lockfd = -1, .data = data};
    char dir[4096];
    int status = 1;
    x.cfg = tg_cli_load_config(cfg_path);
    if (!x.cfg)
        return 1;
    tg_cli_data_dir(x.cfg, data, dir, sizeof(dir));
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
    if (!(x.st = tg_cli_open_store(x.cfg, data, "release")) || tg_audit_open(x.st, &x.audit)) {
        fprintf(stderr, "trustgate release: cannot open the store in %s\n", dir);
        goto out;
    }
    status = exporting ? export_release(&x, name, (long long)version, to)
             : reading ? show(&x, name, as_json)
                       : transition(&x, cmd, name, by, why, share, far, srm);
    if (status == 2)
        usage(stderr);
out:
    tg_audit_close(x.audit);
    tg_store_close(x.st);
    if (x.lockfd >= 0)
        close(x.lockfd);
    tg_config_free(x.cfg);
    return status;
}
