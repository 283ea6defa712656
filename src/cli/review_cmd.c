/*
 * review_cmd.c - `trustgate review list|show|decide`: the review queue
 * from the command line, either through a running server's review API
 * (--url, with a user's token) or on the store of a stopped deployment's
 * data directory.  Both end in tg_review_decide, so the same attestations
 * are required either way.
 *
 * A decision appends to the audit log, which one process writes at a time:
 * while `trustgate serve` holds the data directory's lock, deciding on the
 * store refuses and points at --url, rather than racing the server for the
 * next leaf.
 */
#include "cli/cli.h"

#include "audit/audit.h"
#include "review/review.h"
#include "store/store.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static void review_usage(FILE *f)
{
    fprintf(f,
            "usage: trustgate review list   WHERE [--state STATE] [--json]\n"
            "       trustgate review show   WHERE ID\n"
            "       trustgate review decide WHERE ID [--actor NAME]\n"
            "                               (--approve | --edit TEXT | --reject REASON)\n"
            "                               [--attest ITEM]...\n"
            "WHERE: --url URL [--token TOKEN]   a running server (token: a user's, or\n"
            "                                   $TRUSTGATE_TOKEN); decisions in its name\n"
            "       -c FILE | --data DIR         a stopped deployment's store (--actor needed)\n\n"
            "The review queue: answers held for a person and decisions AI may not make.\n"
            "A decision must tick every attestation the task requires (--attest, once per\n"
            "item, exactly as the task lists them); it is refused otherwise.\n"
            "STATE: open, pending, claimed, decided, handed_off, closed.\n");
}

/* Open the store named by -c or --data; the data directory is returned in dir. */
static struct tg_store *open_store(const char *cfg_path, const char *data, char *dir, size_t dirlen)
{
    struct tg_config *cfg = data ? NULL : tg_cli_load_config(cfg_path);
    if (!data && !cfg)
        return NULL;
    tg_cli_data_dir(cfg, data, dir, dirlen);
    struct tg_store *st = tg_cli_open_store(cfg, data, "review");
    tg_config_free(cfg);
    return st;
}

static void print_task(const json_t *t)
{
    printf("%s  %-14s %-8s queue=%s  turn=%s\n", tg_json_str(t, "id", ""),
           tg_json_str(t, "kind", ""), tg_json_str(t, "state", ""), tg_json_str(t, "queue", ""),
           tg_json_str(t, "turn_id", ""));
    printf("  question: %s\n", tg_json_str(t, "question", ""));
    const char *draft = tg_json_str(t, "draft", NULL);
    if (draft)
        printf("  AI draft: %s\n", draft);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(t, "required_attestations"), i, a)
        printf("  requires: %s\n", json_string_value(a));
}

static int do_list(struct tg_store *st, const char *state, bool as_json)
{
    json_t *list = NULL;
    if (tg_store_review_list(st, state, 1000, &list)) {
        fprintf(stderr, "trustgate review: cannot read the queue\n");
        return 1;
    }
    if (as_json) {
        char *s = json_dumps(list, JSON_COMPACT);
        printf("%s\n", s ? s : "[]");
        free(s);
    } else {
        size_t i;
        json_t *t;
        json_array_foreach(list, i, t) print_task(t);
        if (!json_array_size(list))
            printf("no review tasks%s%s\n", state ? " in state " : "", state ? state : "");
    }
    json_decref(list);
    return 0;
}

/* ------------------------------------------------------------ over HTTP */

/* One call to the review API; the parsed JSON answer, or NULL (message printed). */
static json_t *api(const char *base, const char *token, const char *method, const char *path,
                   const json_t *body, long *status)
{
    struct tg_buf out;
    char *js = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_t *res = NULL;
    tg_buf_init(&out, 64u << 20);
    if (!tg_cli_http(base, token, method, path, js, &out, status, "review")) {
        res = json_loadb(out.data ? out.data : "", out.len, 0, NULL);
        if (!res)
            fprintf(stderr, "trustgate review: %s%s answered %ld, not JSON\n", base, path, *status);
        else if (*status >= 400) {
            fprintf(stderr, "trustgate review: refused (%ld): %s\n", *status,
                    tg_json_str(json_object_get(res, "error"), "message", "?"));
            json_decref(res);
            res = NULL;
        }
    }
    tg_buf_free(&out);
    free(js);
    return res;
}

static int remote(const char *base, const char *token, const char *sub, const char *id,
                  const char *state, bool as_json, const struct tg_review_decision *d)
{
    char path[512];
    long status = 0;
    json_t *res = NULL, *body = NULL;
    int rc = 1;
    if (!strcmp(sub, "list")) {
        snprintf(path, sizeof(path), "/v1/reviews%s%s", state ? "?state=" : "", state ? state : "");
        res = api(base, token, "GET", path, NULL, &status);
        const json_t *list = json_object_get(res, "data");
        if (res && as_json) {
            char *s = json_dumps(list, JSON_COMPACT);
            printf("%s\n", s ? s : "[]");
            free(s);
        } else if (res) {
            size_t i;
            json_t *t;
            json_array_foreach(list, i, t) print_task(t);
            if (!json_array_size(list))
                printf("no review tasks%s%s\n", state ? " in state " : "", state ? state : "");
        }
    } else if (!strcmp(sub, "show")) {
        snprintf(path, sizeof(path), "/v1/reviews/%s", id);
        res = api(base, token, "GET", path, NULL, &status);
        char *s = res ? json_dumps(res, JSON_INDENT(2)) : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
    } else {
        snprintf(path, sizeof(path), "/v1/reviews/%s/decision", id);
        body = json_pack("{s:s, s:s?, s:s?, s:O}", "action", tg_review_action_name(d->action),
                         "text", d->text, "reason", d->reason, "attestations", d->attestations);
        res = body ? api(base, token, "POST", path, body, &status) : NULL;
        if (res) {
            const json_t *dec = json_object_get(res, "decision");
            printf("%s decided (%s) by %s\n  answer: %s\n", id, tg_json_str(dec, "action", ""),
                   tg_json_str(dec, "actor", ""), tg_json_str(res, "answer", ""));
        }
    }
    if (res)
        rc = 0;
    json_decref(res);
    json_decref(body);
    return rc;
}

/* `review show ID`: the task as stored. */
static int do_show(struct tg_store *st, const char *id)
{
    json_t *t = NULL;
    int status = 1;
    if (tg_store_review_get(st, id, NULL, &t)) {
        fprintf(stderr, "trustgate review: no task %s\n", id);
    } else {
        char *s = json_dumps(t, JSON_INDENT(2));
        printf("%s\n", s ? s : "");
        free(s);
        status = 0;
    }
    json_decref(t);
    return status;
}

/* `review decide ID` on the data directory dir, when no server owns it:
 * the decision d by actor with the attestations att, in the audit log. */
static int do_decide(struct tg_store *st, const char *dir, const char *id, const char *actor,
                     json_t *att, struct tg_review_decision *d)
{
    char lockpath[4200], keypath[4200], err[512];
    struct tg_audit *audit = NULL;
    int status = 1;
    snprintf(lockpath, sizeof(lockpath), "%s/trustgate.lock", dir);
    int lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr,
                "trustgate review: a running `trustgate serve` owns %s; "
                "decide through it with --url and a reviewer's --token\n",
                dir);
        goto out;
    }
    if (tg_audit_open(st, &audit)) {
        fprintf(stderr, "trustgate review: the audit log in %s does not verify\n", dir);
        goto out;
    }
    d->attestations = att;
    d->actor = actor;
    /* the deployment's key for keyed digests, made by the first serve or ask */
    uint8_t key[32];
    snprintf(keypath, sizeof(keypath), "%s/pseudonym.key", dir);
    FILE *kf = fopen(keypath, "rb");
    if (kf && fread(key, 1, sizeof(key), kf) == sizeof(key)) {
        d->key = key;
        d->keylen = sizeof(key);
    }
    if (kf)
        fclose(kf);
    if (d->action == TG_REVIEW_REJECT && !d->reason)
        d->reason = "经人工审核，暂时无法按您的要求办理，客服人员会与您联系说明原因。";
    json_t *task = NULL;
    if (tg_review_decide(st, audit, id, d, &task, err, sizeof(err))) {
        fprintf(stderr, "trustgate review: refused: %s\n", err);
        goto out;
    }
    printf("%s decided (%s) by %s\n  answer: %s\n", id, tg_review_action_name(d->action), actor,
           tg_json_str(task, "answer", ""));
    json_decref(task);
    status = 0;
out:
    tg_audit_close(audit);
    if (lockfd >= 0)
        close(lockfd);
    return status;
}

int tg_cli_review(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"data", required_argument, NULL, 'd'},
                                         {"state", required_argument, NULL, 's'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"actor", required_argument, NULL, 'a'},
                                         {"approve", no_argument, NULL, 'A'},
                                         {"edit", required_argument, NULL, 'E'},
                                         {"reject", required_argument, NULL, 'R'},
                                         {"attest", required_argument, NULL, 't'},
                                         {"url", required_argument, NULL, 'u'},
                                         {"token", required_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *cfg_path = NULL, *data = NULL, *state = NULL, *actor = NULL, *url = NULL,
               *token = getenv("TRUSTGATE_TOKEN");
    bool as_json = false;
    int c, status = 1, nact = 0;
    struct tg_review_decision d = {0};
    json_t *att = json_array();
    if (tg_cli_wants_help(argc, argv)) {
        review_usage(stdout);
        json_decref(att);
        return 0;
    }
    if (argc < 2) {
        review_usage(stderr);
        json_decref(att);
        return 2;
    }
    const char *sub = argv[1];
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "c:d:s:ja:AE:R:t:u:k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cfg_path = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 's':
            state = optarg;
            break;
        case 'j':
            as_json = true;
            break;
        case 'a':
            actor = optarg;
            break;
        case 'A':
            d.action = TG_REVIEW_APPROVE;
            nact++;
            break;
        case 'E':
            d.action = TG_REVIEW_EDIT;
            d.text = optarg;
            nact++;
            break;
        case 'R':
            d.action = TG_REVIEW_REJECT;
            d.reason = optarg;
            nact++;
            break;
        case 't':
            json_array_append_new(att, json_string(optarg));
            break;
        case 'u':
            url = optarg;
            break;
        case 'k':
            token = optarg;
            break;
        default:
            review_usage(stderr);
            json_decref(att);
            return 2;
        }
    }
    const char *id = optind + 1 < argc ? argv[optind + 1] : NULL;
    bool is_list = strcmp(sub, "list") == 0, is_show = strcmp(sub, "show") == 0,
         is_decide = strcmp(sub, "decide") == 0;
    if ((!cfg_path && !data && !url) || !(is_list || is_show || is_decide) || (!is_list && !id) ||
        (is_decide && (nact != 1 || (!actor && !url))) || (url && (!token || !token[0]))) {
        if (url && (!token || !token[0]))
            fprintf(stderr, "trustgate review: --url needs a user's token (--token or "
                            "$TRUSTGATE_TOKEN)\n");
        review_usage(stderr);
        json_decref(att);
        return 2;
    }
    if (url) {
        d.attestations = att;
        if (is_decide && d.action == TG_REVIEW_REJECT && !d.reason)
            d.reason = "经人工审核，暂时无法按您的要求办理，客服人员会与您联系说明原因。";
        status = remote(url, token, sub, id, state, as_json, &d);
        json_decref(att);
        return status;
    }
    char dir[4096];
    struct tg_store *st = open_store(cfg_path, data, dir, sizeof(dir));
    if (st && is_list)
        status = do_list(st, state, as_json);
    else if (st && is_show)
        status = do_show(st, id);
    else if (st)
        status = do_decide(st, dir, id, actor, att, &d);
    tg_store_close(st);
    json_decref(att);
    return status;
}
