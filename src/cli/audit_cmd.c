/*
 * audit_cmd.c - `trustgate audit verify`: recompute the Merkle tree from
 * the store and report the first leaf that does not agree, if any;
 * `audit checkpoint`: the log's signed tree head; `audit check`: an
 * auditor's check of a running gateway against a checkpoint held earlier.
 */
#include "cli/cli.h"

#include "audit/audit.h"
#include "store/store.h"

#include <getopt.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static void audit_usage(FILE *f)
{
    fprintf(f, "usage: trustgate audit verify (-c FILE | --data DIR) [--json]\n"
               "       trustgate audit checkpoint -c FILE [--data DIR]\n"
               "       trustgate audit check --url URL --token TOKEN [--key VKEY] [--old FILE]\n"
               "                             [--save FILE]\n\n"
               "verify recomputes the audit log's RFC 6962 Merkle tree from the store and checks\n"
               "every leaf and every stored tree head: exit status 0 when intact, 1 when a leaf\n"
               "was altered (the first bad leaf is named), 2 on usage errors.\n"
               "checkpoint prints the log's signed tree head (C2SP tlog-checkpoint, Ed25519).\n"
               "check, for an auditor: fetches a running gateway's checkpoint and checks its\n"
               "signature with --key (else the gateway's own key, trusted on first use); with\n"
               "--old, a checkpoint held from before, it checks the RFC 6962 consistency proof\n"
               "that the log only grew since.  --save keeps the new checkpoint for next time.\n"
               "Exit status 0 when consistent, 1 when not.\n\n"
               "  -c, --config FILE    take the store (and the log's origin) from this config\n"
               "  -d, --data DIR       the data directory (overrides the config)\n"
               "  -j, --json           print the report as JSON\n");
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

static int check(int argc, char **argv)
{
    const char *url = NULL, *token = NULL, *key = NULL, *old = NULL, *save = NULL;
    for (int i = 2; i < argc; i += 2) { /* every option takes a value */
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **dst = !strcmp(o, "--url")     ? &url
                           : !strcmp(o, "--token") ? &token
                           : !strcmp(o, "--key")   ? &key
                           : !strcmp(o, "--old")   ? &old
                           : !strcmp(o, "--save")  ? &save
                                                   : NULL;
        if (!dst || !v) {
            audit_usage(stderr);
            return 2;
        }
        *dst = v;
    }
    if (!url || !token) {
        audit_usage(stderr);
        return 2;
    }
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
    int status = 1;
    char *held = NULL;
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
    const char *cfg_path = NULL, *data = NULL;
    bool bad = (argc - 2) % 2 != 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config"))
            cfg_path = argv[i + 1];
        else if (!strcmp(argv[i], "-d") || !strcmp(argv[i], "--data"))
            data = argv[i + 1];
        else
            bad = true;
    }
    if (!cfg_path || bad) {
        audit_usage(stderr);
        return 2;
    }
    struct tg_config *cfg = tg_cli_load_config(cfg_path);
    if (!cfg)
        return 1;
    char dir[4096], err[512];
    struct tg_store *st = tg_cli_open_store(cfg, data, "audit");
    struct tg_audit *log = NULL;
    struct tg_audit_signer *signer = NULL;
    struct tg_buf b;
    int status = 1;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    tg_cli_data_dir(cfg, data, dir, sizeof(dir));
    if (!st || tg_audit_open(st, &log)) {
        fprintf(stderr, "trustgate audit: cannot open the audit log in %s\n", dir);
    } else if (tg_audit_signer_open(dir, cfg->audit_origin, &signer, err, sizeof(err))) {
        fprintf(stderr, "trustgate audit: %s\n", err);
    } else {
        uint8_t root[TG_HASH_LEN];
        tg_audit_root(log, root);
        if (!tg_audit_checkpoint(signer, tg_audit_size(log), root, &b)) {
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

int tg_cli_audit(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"data", required_argument, NULL, 'd'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *cfg_path = NULL, *data = NULL;
    bool as_json = false;
    int c;
    if (tg_cli_wants_help(argc, argv)) {
        audit_usage(stdout);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "check"))
        return check(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "checkpoint"))
        return checkpoint(argc, argv);
    if (argc < 2 || strcmp(argv[1], "verify") != 0) {
        audit_usage(stderr);
        return 2;
    }
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "c:d:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cfg_path = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'j':
            as_json = true;
            break;
        default:
            audit_usage(stderr);
            return 2;
        }
    }
    if (!cfg_path && !data) {
        audit_usage(stderr);
        return 2;
    }
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
    int status = 1;
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
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            printf("%s\n", s);
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
