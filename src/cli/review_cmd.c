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
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct review_args {
    const char *cfg, *data, *state, *actor, *url, *token;
    bool as_json;
    int nact;                    /* --approve, --edit and --reject given */
    struct tg_review_decision d; /* the action, its text or reason */
    json_t *att;                 /* --attest, in order */
};

/* --approve, --edit TEXT, --reject REASON: the decision (one of them). */
static int approve(void *args, const char *arg)
{
    struct review_args *a = args;
    (void)arg;
    a->d.action = TG_REVIEW_APPROVE;
    a->nact++;
    return 0;
}

static int edit(void *args, const char *arg)
{
    struct review_args *a = args;
    a->d.action = TG_REVIEW_EDIT;
    a->d.text = arg;
    a->nact++;
    return 0;
}

static int reject(void *args, const char *arg)
{
    struct review_args *a = args;
    a->d.action = TG_REVIEW_REJECT;
    a->d.reason = arg;
    a->nact++;
    return 0;
}

/* --attest ITEM, once per item. */
static int attest(void *args, const char *arg)
{
    struct review_args *a = args;
    if (tg_json_push(a->att, json_string(arg))) {
        fprintf(stderr, "trustgate review: out of memory\n");
        return 1;
    }
    return 0;
}

#define ARG(f) TG_CLI_FIELD(struct review_args, f)
static const struct tg_cli_opt review_opts[] = {
    {"config", 'c', ARG(cfg), .arg = "FILE", .help = "a stopped deployment's config"},
    {"data", 'd', ARG(data), .arg = "DIR", .help = "a stopped deployment's data directory"},
    {"state", 's', ARG(state), .arg = "STATE", .help = "list: the tasks in this state"},
    {"json", 'j', ARG(as_json), .help = "list: print JSON"},
    {"actor", 'a', ARG(actor), .arg = "NAME", .help = "decide on the store: who decides"},
    {"approve", 'A', TG_CLI_CALLS, .help = "decide: approve the AI's draft", .call = approve},
    {"edit", 'E', TG_CLI_CALLS, .arg = "TEXT", .help = "decide: answer TEXT instead", .call = edit},
    {"reject", 'R', TG_CLI_CALLS, .arg = "REASON", .help = "decide: refuse, telling why",
     .call = reject},
    {"attest", 't', TG_CLI_CALLS, .arg = "ITEM", .help = "decide: tick an attestation (repeat)",
     .call = attest},
    {"url", 'u', ARG(url), .arg = "URL", .help = "a running server"},
    {"token", 'k', ARG(token), .arg = "TOKEN", .help = "a user's token (default $TRUSTGATE_TOKEN)"},
    {0}};
#undef ARG

static const struct tg_cli_cmd review_cmd = {
    .name = "review",
    .usage = "usage: trustgate review list   WHERE [--state STATE] [--json]\n"
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
             "STATE: open, pending, claimed, decided, handed_off, closed.\n",
    .opts = review_opts,
    .max_args = TG_CLI_MANY,
};

/* Open the store named by -c or --data; the data directory is returned in
 * dir, the config (NULL with --data) in *cfg: the store's privacy hooks
 * read it (the policy-number pattern), so it is freed after the store. */
static struct tg_store *open_store(const char *cfg_path, const char *data, char *dir, size_t dirlen,
                                   struct tg_config **cfg)
{
    *cfg = data ? NULL : tg_cli_load_config(cfg_path);
    if (!data && !*cfg)
        return NULL;
    tg_cli_data_dir(*cfg, data, dir, dirlen);
    return tg_cli_open_store(*cfg, data, "review");
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
    int status = 0;
    if (as_json) {
        char *s = list ? tg_json_dumps(list, JSON_COMPACT) : NULL;
        if (s || !list)
            printf("%s\n", s ? s : "[]");
        else
            fprintf(stderr, "trustgate review: out of memory\n");
        status = s || !list ? 0 : 1;
        free(s);
    } else {
        size_t i;
        json_t *t;
        json_array_foreach(list, i, t) print_task(t);
        if (!json_array_size(list))
            printf("no review tasks%s%s\n", state ? " in state " : "", state ? state : "");
    }
    json_decref(list);
    return status;
}

/* ------------------------------------------------------------ over HTTP */

/* One call to the review API; the parsed JSON answer, or NULL (message printed). */
static json_t *api(const char *base, const char *token, const char *method, const char *path,
                   const json_t *body, long *status)
{
    struct tg_buf out;
    char *js = body ? tg_json_dumps(body, JSON_COMPACT) : NULL;
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
    bool oom = false;
    if (!strcmp(sub, "list")) {
        snprintf(path, sizeof(path), "/v1/reviews%s%s", state ? "?state=" : "", state ? state : "");
        res = api(base, token, "GET", path, NULL, &status);
        const json_t *list = json_object_get(res, "data");
        if (res && as_json) {
            char *s = list ? tg_json_dumps(list, JSON_COMPACT) : NULL;
            if (s || !list)
                printf("%s\n", s ? s : "[]");
            oom = list && !s;
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
        char *s = res ? tg_json_dumps(res, JSON_INDENT(2)) : NULL;
        if (s)
            printf("%s\n", s);
        oom = res && !s;
        free(s);
    } else {
        snprintf(path, sizeof(path), "/v1/reviews/%s/decision", id);
        body = json_pack("{s:s, s:s?, s:s?, s:O}", "action", tg_review_action_name(d->action),
                         "text", d->text, "reason", d->reason, "attestations", d->attestations);
        res = body ? api(base, token, "POST", path, body, &status) : NULL;
        oom = !body;
        if (res) {
            const json_t *dec = json_object_get(res, "decision");
            printf("%s decided (%s) by %s\n  answer: %s\n", id, tg_json_str(dec, "action", ""),
                   tg_json_str(dec, "actor", ""), tg_json_str(res, "answer", ""));
        }
    }
    if (oom)
        fprintf(stderr, "trustgate review: out of memory\n");
    if (res && !oom)
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
        char *s = tg_json_dumps(t, JSON_INDENT(2));
        if (s)
            printf("%s\n", s);
        else
            fprintf(stderr, "trustgate review: out of memory\n");
        status = s ? 0 : 1;
        free(s);
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

/* Does sub (list, show, decide) have what it needs in a, with id (NULL
 * when not given)?  Says why on stderr where the usage does not. */
static bool complete(const char *sub, const struct review_args *a, const char *id)
{
    bool is_list = !strcmp(sub, "list"), is_decide = !strcmp(sub, "decide");
    bool tokenless = a->url && (!a->token || !a->token[0]);
    if (tokenless)
        fprintf(stderr, "trustgate review: --url needs a user's token (--token or "
                        "$TRUSTGATE_TOKEN)\n");
    return (a->cfg || a->data || a->url) && (is_list || is_decide || !strcmp(sub, "show")) &&
           (is_list || id) && (!is_decide || (a->nact == 1 && (a->actor || a->url))) && !tokenless;
}

/* The command once its options are read into a; the exit status. */
static int review(const char *sub, struct review_args *a, const char *id)
{
    struct tg_review_decision *d = &a->d;
    char dir[4096];
    int status = 1;
    if (a->url) {
        d->attestations = a->att;
        if (!strcmp(sub, "decide") && d->action == TG_REVIEW_REJECT && !d->reason)
            d->reason = "经人工审核，暂时无法按您的要求办理，客服人员会与您联系说明原因。";
        return remote(a->url, a->token, sub, id, a->state, a->as_json, d);
    }
    struct tg_config *cfg = NULL;
    struct tg_store *st = open_store(a->cfg, a->data, dir, sizeof(dir), &cfg);
    if (st && !strcmp(sub, "list"))
        status = do_list(st, a->state, a->as_json);
    else if (st && !strcmp(sub, "show"))
        status = do_show(st, id);
    else if (st)
        status = do_decide(st, dir, id, a->actor, a->att, d);
    tg_store_close(st);
    tg_config_free(cfg);
    return status;
}

int tg_cli_review(int argc, char **argv)
{
    struct review_args a = {.token = getenv("TRUSTGATE_TOKEN"), .att = json_array()};
    int end = 0, status = 2;
    if (tg_cli_wants_help(argc, argv) || argc < 2) {
        status = tg_cli_usage_or_help(&review_cmd, argc, argv);
        goto out;
    }
    status = tg_cli_parse(&review_cmd, argc - 1, argv + 1, &a, &end);
    if (status != TG_CLI_GO_ON)
        goto out;
    const char *id = end + 1 < argc ? argv[end + 1] : NULL;
    if (!a.att) {
        fprintf(stderr, "trustgate review: out of memory\n");
        status = 1;
    } else if (!complete(argv[1], &a, id)) {
        status = tg_cli_usage_error(&review_cmd);
    } else {
        status = review(argv[1], &a, id);
    }
out:
    json_decref(a.att);
    return status;
}
