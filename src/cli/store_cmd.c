/*
 * store_cmd.c - `trustgate store migrate`: bring a store's schema to this
 * build's version, or copy a whole store into another (moving up from one
 * node's SQLite file to the PostgreSQL server several nodes share).
 *
 * The copy keeps every row as it was stored (pseudonyms and masked texts
 * stay so; the keys of the data directory still read them) and the audit
 * log with its indexes and tree heads: the target's log verifies to the
 * same root as the source's, which the command checks and prints.
 */
#include "cli/cli.h"

#include "audit/audit.h"
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

struct store_args {
    const char *cfg, *data, *from, *to;
};

#define ARG(f) TG_CLI_FIELD(struct store_args, f)
static const struct tg_cli_opt store_opts[] = {
    {"config", 'c', ARG(cfg), .arg = "FILE", .help = "the config file: migrate its store"},
    {"data", 'd', ARG(data), .arg = "DIR", .help = "data directory, overrides the config"},
    {"from", 'f', ARG(from), .arg = "URI", .help = "copy this store (sqlite:PATH or postgres://)"},
    {"to", 't', ARG(to), .arg = "URI", .help = "into this one, which holds no audit leaf yet"},
    {0}};
#undef ARG

static const struct tg_cli_cmd store_cmd = {
    .name = "store",
    .usage = "usage: trustgate store migrate -c FILE [--data DIR]\n"
             "       trustgate store migrate --from URI --to URI\n\n"
             "Bring the store's schema to this build's version (every start does it too),\n"
             "or copy a whole store into another: conversations, messages, turns,\n"
             "review tasks and threads, blobs and the audit log, whose root is checked\n"
             "to be the same after the copy.  Stop the gateway first.\n",
    .opts = store_opts,
    .min_args = 1,
    .max_args = 1,
};

static void progress(void *ctx, const char *table, uint64_t rows)
{
    (void)ctx;
    fprintf(stderr, "  %-17s %" PRIu64 " rows\n", table, rows);
}

static struct tg_store *open_uri(const char *uri)
{
    char err[512];
    struct tg_store *st = NULL;
    if (tg_store_open(uri, &st, err, sizeof(err)) != TG_OK)
        fprintf(stderr, "trustgate store: %s\n", err);
    return st;
}

/* The log's verified root, or a message: TG_OK when it verifies. */
static int verified(struct tg_store *st, const char *name, struct tg_audit_report *rep)
{
    int rc = tg_audit_verify(st, rep);
    if (rc)
        fprintf(stderr, "trustgate store: the audit log of %s does not verify: %s\n", name,
                rep->reason);
    return rc;
}

static int copy(const char *from_uri, const char *to_uri)
{
    struct tg_store *from = open_uri(from_uri), *to = from ? open_uri(to_uri) : NULL;
    struct tg_audit_report a, b;
    char hex[2 * TG_HASH_LEN + 1];
    char *src = tg_store_redact(from_uri), *dst = tg_store_redact(to_uri);
    int status = 1, rc;
    if (!to || !src || !dst || verified(from, src, &a))
        goto out;
    fprintf(stderr, "copying %s into %s\n", src, dst);
    rc = tg_store_copy(from, to, progress, NULL);
    if (rc) {
        fprintf(stderr, "trustgate store: copy failed: %s\n",
                rc == TG_E_CONFLICT ? "the target already holds an audit log" : tg_err_str(rc));
        goto out;
    }
    if (verified(to, dst, &b))
        goto out;
    tg_hex_encode(b.root, TG_HASH_LEN, hex);
    if (a.size != b.size || memcmp(a.root, b.root, TG_HASH_LEN) != 0) {
        fprintf(stderr, "trustgate store: the copy's audit root %s differs from the source's\n",
                hex);
        goto out;
    }
    printf("copied: audit log %" PRIu64 " leaves, root %s (the same in both)\n", b.size, hex);
    status = 0;
out:
    tg_free(src);
    tg_free(dst);
    tg_store_close(to);
    tg_store_close(from);
    return status;
}

int tg_cli_store(int argc, char **argv)
{
    struct store_args a = {0};
    int end, status = tg_cli_parse(&store_cmd, argc, argv, &a, &end);
    if (status != TG_CLI_GO_ON)
        return status;
    if (strcmp(argv[end], "migrate") != 0 || !a.from != !a.to || !a.cfg == !a.from)
        return tg_cli_usage_error(&store_cmd);
    if (a.from)
        return copy(a.from, a.to);
    struct tg_config *cfg = tg_cli_load_config(a.cfg);
    if (!cfg)
        return 1;
    /* opening brings the schema to this build's version */
    struct tg_store *st = tg_cli_open_store(cfg, a.data, "store");
    if (st)
        printf("%s store migrated to this build's schema\n", tg_store_kind(st));
    tg_store_close(st);
    tg_config_free(cfg);
    return st ? 0 : 1;
}
