/*
 * customer_cmd.c - `trustgate customer`: who is behind a pseudonym, and
 * the pseudonym of a customer id.
 *
 * The store keeps customer ids only as keyed pseudonyms.  Where the
 * deployment asks for it (privacy.customer_map: true) it also keeps the
 * mapping back, once per conversation (stage_record.c), so an agent can
 * call a customer back and a data-protection officer can answer a
 * subject's request; without it a pseudonym leads to no one.  With --id the
 * command gives the pseudonym an id is stored under, which needs no
 * mapping.
 */
#include "cli/cli.h"

#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void customer_usage(FILE *f)
{
    fprintf(f, "usage: trustgate customer -c FILE [--data DIR] PSEUDONYM\n"
               "       trustgate customer -c FILE [--data DIR] --id CUSTOMER_ID\n\n"
               "The customer id behind a pseudonym of the store, where the config keeps\n"
               "the mapping (privacy.customer_map: true); with --id, the pseudonym a\n"
               "customer id is stored under.  Exit status 1 when there is none.\n");
}

int tg_cli_customer(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"data", required_argument, NULL, 'd'},
                                         {"id", required_argument, NULL, 'i'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *cfg_path = NULL, *data = NULL, *id = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:d:i:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cfg_path = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'i':
            id = optarg;
            break;
        case 'h':
            customer_usage(stdout);
            return 0;
        default:
            customer_usage(stderr);
            return 2;
        }
    }
    if (!cfg_path || (!id && optind + 1 != argc) || (id && optind != argc)) {
        customer_usage(stderr);
        return 2;
    }
    struct tg_config *cfg = tg_cli_load_config(cfg_path);
    if (!cfg)
        return 1;
    struct tg_store *st = tg_cli_open_store(cfg, data, "customer");
    int status = 1;
    char ps[TG_STORE_KEY_MAX], key[TG_STORE_KEY_MAX + 16];
    if (!st)
        goto out;
    if (id) {
        if (tg_store_pseudonym(st, id, ps) == TG_OK) {
            printf("%s\n", ps);
            status = 0;
        }
        goto out;
    }
    char *v = NULL;
    size_t len = 0;
    snprintf(key, sizeof(key), "customer/%s", argv[optind]);
    if (tg_store_blob_get(st, key, &v, &len) == TG_OK) {
        json_t *j = json_loadb(v, len, 0, NULL);
        const char *who = tg_json_str(j, "customer_id", NULL);
        if (who) {
            printf("%s\n", who);
            status = 0;
        }
        json_decref(j);
        tg_free(v);
    }
    if (status)
        fprintf(stderr,
                "trustgate customer: no customer is known by %s here (the mapping is kept only "
                "with privacy.customer_map: true)\n",
                argv[optind]);
out:
    tg_store_close(st);
    tg_config_free(cfg);
    return status;
}
