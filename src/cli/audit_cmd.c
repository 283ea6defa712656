/*
 * audit_cmd.c - `trustgate audit verify`: recompute the Merkle tree from
 * the store and report the first leaf that does not agree, if any;
 * `audit checkpoint`: the log's signed tree head; `audit check`: an
 * auditor's check of a running gateway against a checkpoint held earlier.
 */
#include "cli/cli.h"

#include "audit/audit.h"
#include "store/store.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

struct audit_args {
    const char *cfg, *data;
    bool as_json;
    const char *url, *token, *key, *old, *save; /* check */
};

#define ARG(f) TG_CLI_FIELD(struct audit_args, f)
static const struct tg_cli_opt verify_opts[] = {
    {"config", 'c', ARG(cfg), .arg = "FILE",
     .help = "take the store (and the log's origin) from this config"},
    {"data", 'd', ARG(data), .arg = "DIR", .help = "the data directory (overrides the config)"},
    {"json", 'j', ARG(as_json), .help = "print the report as JSON"},
    {0}};

static const struct tg_cli_opt checkpoint_opts[] = {
    {"config", 'c', ARG(cfg), .arg = "FILE", .help = "the deployment (the log's origin)",
     .flags = TG_CLI_REQUIRED},
    {"data", 'd', ARG(data), .arg = "DIR", .help = "the data directory (overrides the config)"},
    {0}};

static const struct tg_cli_opt check_opts[] = {
    {"url", 0, ARG(url), .arg = "URL", .help = "the running gateway", .flags = TG_CLI_REQUIRED},
    {"token", 0, ARG(token), .arg = "TOKEN", .help = "an auditor's token",
     .flags = TG_CLI_REQUIRED},
    {"key", 0, ARG(key), .arg = "VKEY",
     .help = "the log's verifier key (default: the gateway's own)"},
    {"old", 0, ARG(old), .arg = "FILE", .help = "a checkpoint held from before"},
    {"save", 0, ARG(save), .arg = "FILE", .help = "keep the new checkpoint here"},
    {0}};
#undef ARG

static const struct tg_cli_cmd verify_cmd = {
    .name = "audit",
    .usage = "usage: trustgate audit verify (-c FILE | --data DIR) [--json]\n\n"
             "verify recomputes the audit log's RFC 6962 Merkle tree from the store and checks\n"
             "every leaf and every stored tree head: exit status 0 when intact, 1 when a leaf\n"
             "was altered (the first bad leaf is named), 2 on usage errors.\n",
    .opts = verify_opts,
    .max_args = TG_CLI_MANY,
};

static const struct tg_cli_cmd checkpoint_cmd = {
    .name = "audit",
    .usage = "usage: trustgate audit checkpoint -c FILE [--data DIR]\n\n"
             "checkpoint prints the log's signed tree head (C2SP tlog-checkpoint, Ed25519).\n",
    .opts = checkpoint_opts,
};

static const struct tg_cli_cmd check_cmd = {
    .name = "audit",
    .usage = "usage: trustgate audit check --url URL --token TOKEN [--key VKEY] [--old FILE]\n"
             "                             [--save FILE]\n\n"
             "check, for an auditor: fetches a running gateway's checkpoint and checks its\n"
             "signature with --key (else the gateway's own key, trusted on first use); with\n"
             "--old, a checkpoint held from before, it checks the RFC 6962 consistency proof\n"
             "that the log only grew since.  --save keeps the new checkpoint for next time.\n"
             "Exit status 0 when consistent, 1 when not.\n",
    .opts = check_opts,
};

/* The three commands' usage on f. */
static void audit_usage(FILE *f)
{
    tg_cli_usage(&verify_cmd, f);
    fputc('\n', f);
    tg_cli_usage(&checkpoint_cmd, f);
    fputc('\n', f);
    tg_cli_usage(&check_cmd, f);
}

/* GET a text route of the gateway; NULL (reason printed) unless 200. */
static char *get_text(const char *url, const char *token, const char *path, size_t *len)
{
    struct tg_buf out;
    long status = 0;
    tg_buf_init(&out, 1u << 26);
    if (tg_cli_http(url, token, "GET", path, NULL, &out, &status, "audit")) {
        tg_buf_free(&out);
        return NULL;
    }
    if (status != 200) {
        fprintf(stderr, "trustgate audit: %s%s answered %ld: %.*s\n", url, path, status,
                (int)TG_MIN(out.len, 300), out.data ? out.data : "");
        tg_buf_free(&out);
        return NULL;
    }
    return tg_buf_steal(&out, len);
}

/* Does the gateway prove that its log of size leaves (root) extends the one
 * of old_size leaves (old_root)?  False too when the proof cannot be had. */
static bool consistent(const char *url, const char *token, uint64_t old_size,
                       const uint8_t old_root[TG_HASH_LEN], uint64_t size,
                       const uint8_t root[TG_HASH_LEN])
{
    char path[128];
    size_t len = 0;
    snprintf(path, sizeof(path), "/v1/audit/consistency?from=%llu&to=%llu",
             (unsigned long long)old_size, (unsigned long long)size);
    char *body = get_text(url, token, path, &len);
    json_t *j = body ? json_loadb(body, len, 0, NULL) : NULL;
    tg_free(body);
    const json_t *pf = json_object_get(j, "proof");
    size_t n = json_array_size(pf);
    uint8_t(*proof)[TG_HASH_LEN] = tg_calloc(n ? n : 1, TG_HASH_LEN);
    bool ok = j && proof && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok =
            json_is_string(json_array_get(pf, i)) &&
            tg_hex_decode(json_string_value(json_array_get(pf, i)), proof[i], TG_HASH_LEN) == TG_OK;
    ok = ok && tg_audit_consistency_verify(old_size, old_root, size, root,
                                           (const uint8_t(*)[TG_HASH_LEN])proof, n);
    tg_free(proof);
    json_decref(j);
    return ok;
}

/* `audit check` (argv from "check"); the exit status. */
static int check(int argc, char **argv)
{
    struct audit_args a = {0};
    int status = tg_cli_parse(&check_cmd, argc, argv, &a, NULL);
    if (status != TG_CLI_GO_ON)
        return status;
    const char *url = a.url, *token = a.token, *key = a.key, *old = a.old, *save = a.save;
    char vkey[512], err[256];
    size_t len = 0;
    char *fetched = NULL;
    if (!key) {
        if (!(fetched = get_text(url, token, "/v1/audit/key", &len)))
            return 1;
        tg_strlcpy(vkey, fetched, sizeof(vkey));
        vkey[strcspn(vkey, "\r\n")] = '\0';
        tg_free(fetched);
        printf("key (trusted on first use; pass it as --key from now on): %s\n", vkey);
    } else {
        tg_strlcpy(vkey, key, sizeof(vkey));
    }
    char *now = get_text(url, token, "/v1/audit/checkpoint", &len);
    uint8_t root[TG_HASH_LEN], old_root[TG_HASH_LEN];
    uint64_t size = 0, old_size = 0;
    char *held = NULL;
    status = 1;
    size_t held_len = 0;
    if (!now)
        goto out;
    if (tg_audit_checkpoint_verify(now, len, vkey, &size, root, err, sizeof(err))) {
        printf("the gateway's checkpoint does NOT verify: %s\n", err);
        goto out;
    }
    char hex[2 * TG_HASH_LEN + 1];
    tg_hex_encode(root, TG_HASH_LEN, hex);
    printf("checkpoint: %llu leaves, root %s, signature good\n", (unsigned long long)size, hex);
    if (old) {
        struct tg_buf hb;
        tg_buf_init(&hb, 1u << 20);
        if (tg_buf_read_file(&hb, old)) {
            tg_buf_free(&hb);
            fprintf(stderr, "trustgate audit: %s: cannot read\n", old);
            goto out;
        }
        held = tg_buf_steal(&hb, &held_len);
        if (tg_audit_checkpoint_verify(held, held_len, vkey, &old_size, old_root, err,
                                       sizeof(err))) {
            printf("the checkpoint in %s does NOT verify with this key: %s\n", old, err);
            goto out;
        }
        if (old_size > size) {
            printf("INCONSISTENT: the log had %llu leaves and now has %llu\n",
                   (unsigned long long)old_size, (unsigned long long)size);
            goto out;
        }
        if (!consistent(url, token, old_size, old_root, size, root)) {
            printf("INCONSISTENT: the log of %llu leaves does not extend the one of %llu you "
                   "held: something recorded was changed or removed\n",
                   (unsigned long long)size, (unsigned long long)old_size);
            goto out;
        }
        printf("consistent: the log of %llu leaves extends the one of %llu in %s\n",
               (unsigned long long)size, (unsigned long long)old_size, old);
    }
    if (save && tg_cli_write_out(save, now, strlen(now)))
        goto out;
    status = 0;
out:
    tg_free(now);
    tg_free(held);
    return status;
}

/* The signed checkpoint of a stopped deployment's log. */
static int checkpoint(int argc, char **argv)
{
    struct audit_args a = {0};
    int status = tg_cli_parse(&checkpoint_cmd, argc, argv, &a, NULL);
    if (status != TG_CLI_GO_ON)
        return status;
    const char *data = a.data;
    struct tg_config *cfg = tg_cli_load_config(a.cfg);
    if (!cfg)
        return 1;
    char dir[4096], err[512];
    struct tg_store *st = tg_cli_open_store(cfg, data, "audit");
    struct tg_audit *log = NULL;
    struct tg_audit_signer *signer = NULL;
    struct tg_buf b;
    status = 1;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    tg_cli_data_dir(cfg, data, dir, sizeof(dir));
    if (!st || tg_audit_open(st, &log)) {
        fprintf(stderr, "trustgate audit: cannot open the audit log in %s\n", dir);
    } else if (tg_audit_signer_open(dir, cfg->audit_origin, &signer, err, sizeof(err))) {
        fprintf(stderr, "trustgate audit: %s\n", err);
    } else {
        uint8_t root[TG_HASH_LEN];
        uint64_t size = 0;
        if (!tg_audit_head(log, &size, root) && !tg_audit_checkpoint(signer, size, root, &b)) {
            fwrite(b.data, 1, b.len, stdout);
            status = 0;
        }
    }
    tg_buf_free(&b);
    tg_audit_signer_free(signer);
    tg_audit_close(log);
    tg_store_close(st);
    tg_config_free(cfg);
    return status;
}

/* `audit verify` (argv from "verify"); the exit status. */
static int verify(int argc, char **argv)
{
    struct audit_args a = {0};
    int status = tg_cli_parse(&verify_cmd, argc, argv, &a, NULL);
    if (status != TG_CLI_GO_ON)
        return status;
    if (!a.cfg && !a.data)
        return tg_cli_usage_error(&verify_cmd);
    const char *cfg_path = a.cfg, *data = a.data;
    bool as_json = a.as_json;
    char uri[4200], err[512];
    struct tg_config *cfg = NULL;
    if (data) {
        snprintf(uri, sizeof(uri), "sqlite:%s/trustgate.db", data);
    } else {
        cfg = tg_cli_load_config(cfg_path);
        if (!cfg)
            return 1;
        tg_strlcpy(uri, cfg->store_uri, sizeof(uri));
    }
    tg_log_set_level(TG_LOG_WARN);
    struct tg_store *st = NULL;
    status = 1;
    if (tg_store_open(uri, &st, err, sizeof(err))) {
        fprintf(stderr, "trustgate audit: %s\n", err);
        goto out;
    }
    struct tg_audit_report rep;
    int rc = tg_audit_verify(st, &rep);
    char root[2 * TG_HASH_LEN + 1];
    tg_hex_encode(rep.root, TG_HASH_LEN, root);
    if (as_json) {
        json_t *o = json_pack("{s:b, s:I, s:s, s:I, s:s}", "intact", rc == TG_OK, "size",
                              (json_int_t)rep.size, "root", root, "first_bad",
                              (json_int_t)rep.first_bad, "reason", rc == TG_OK ? "" : rep.reason);
        char *s = o ? tg_json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            printf("%s\n", s);
        else
            fprintf(stderr, "trustgate audit: out of memory\n");
        if (!s && rc == TG_OK)
            rc = TG_E_NOMEM; /* the exit status says the report is missing */
        free(s);
        json_decref(o);
    } else if (rc == TG_OK) {
        printf("audit log intact: %llu leaves, root %s\n", (unsigned long long)rep.size, root);
    } else if (rep.first_bad >= 0) {
        printf("audit log ALTERED: first bad leaf %lld: %s\n", (long long)rep.first_bad,
               rep.reason);
    } else {
        printf("audit log could not be verified: %s\n",
               rep.reason[0] ? rep.reason : tg_err_str(rc));
    }
    status = rc == TG_OK ? 0 : 1;
out:
    tg_store_close(st);
    tg_config_free(cfg);
    return status;
}

int tg_cli_audit(int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : "";
    if (!strcmp(sub, "verify"))
        return verify(argc - 1, argv + 1);
    if (!strcmp(sub, "check"))
        return check(argc - 1, argv + 1);
    if (!strcmp(sub, "checkpoint"))
        return checkpoint(argc - 1, argv + 1);
    audit_usage(tg_cli_wants_help(argc, argv) ? stdout : stderr);
    return tg_cli_wants_help(argc, argv) ? 0 : 2;
}
