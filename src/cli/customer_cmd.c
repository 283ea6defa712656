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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct customer_args {
    const char *cfg, *data, *id;
};

#define ARG(f) TG_CLI_FIELD(struct customer_args, f)
static const struct tg_cli_opt customer_opts[] = {
    {"config", 'c', ARG(cfg), .arg = "FILE", .help = "the config file (YAML)",
     .flags = TG_CLI_REQUIRED},
    {"data", 'd', ARG(data), .arg = "DIR", .help = "data directory, overrides the config"},
    {"id", 'i', ARG(id), .arg = "CUSTOMER_ID", .help = "the pseudonym of this customer id"},
    {0}};
#undef ARG

static const struct tg_cli_cmd customer_cmd = {
    .name = "customer",
    .usage = "usage: trustgate customer -c FILE [--data DIR] PSEUDONYM\n"
             "       trustgate customer -c FILE [--data DIR] --id CUSTOMER_ID\n\n"
             "The customer id behind a pseudonym of the store, where the config keeps\n"
             "the mapping (privacy.customer_map: true); with --id, the pseudonym a\n"
             "customer id is stored under.  Exit status 1 when there is none.\n",
    .opts = customer_opts,
    .max_args = 1,
};

int tg_cli_customer(int argc, char **argv)
{
    struct customer_args a = {0};
    int end, status = tg_cli_parse(&customer_cmd, argc, argv, &a, &end);
    if (status != TG_CLI_GO_ON)
        return status;
    if ((end == argc) == !a.id) /* a PSEUDONYM or --id: one of them */
        return tg_cli_usage_error(&customer_cmd);
    struct tg_config *cfg = tg_cli_load_config(a.cfg);
    if (!cfg)
        return 1;
    struct tg_store *st = tg_cli_open_store(cfg, a.data, "customer");
    status = 1;
    char ps[TG_STORE_KEY_MAX], key[TG_STORE_KEY_MAX + 16];
    if (!st)
        goto out;
    if (a.id) {
        if (tg_store_pseudonym(st, a.id, ps) == TG_OK) {
            printf("%s\n", ps);
            status = 0;
        }
        goto out;
    }
    char *v = NULL;
    size_t len = 0;
    snprintf(key, sizeof(key), "customer/%s", argv[end]);
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
                argv[end]);
out:
    tg_store_close(st);
    tg_config_free(cfg);
    return status;
}
