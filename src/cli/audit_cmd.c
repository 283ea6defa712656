/*
 * audit_cmd.c - `trustgate audit verify`: recompute the Merkle tree from
 * the store and report the first leaf that does not agree, if any.
 */
#include "cli/cli.h"

#include "audit/audit.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void audit_usage(FILE *f)
{
    fprintf(f, "usage: trustgate audit verify (-c FILE | --data DIR) [--json]\n\n"
               "Recompute the audit log's RFC 6962 Merkle tree from the store and check every\n"
               "leaf and every stored tree head.  Exit status 0 when intact, 1 when a leaf was\n"
               "altered (the first bad leaf is named), 2 on usage errors.\n\n"
               "  -c, --config FILE    take the store from this config\n"
               "  -d, --data DIR       the data directory (overrides the config)\n"
               "  -j, --json           print the report as JSON\n");
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
