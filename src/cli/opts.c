/*
 * opts.c - the command line's options, one table per command: tg_cli_parse()
 * builds getopt_long's long options and short-option string from a table
 * of struct tg_cli_opt and stores what argv gives into the command's args
 * struct; tg_cli_usage() prints the usage's option lines from the same
 * table.  Every number an option takes is read strictly here: the whole
 * argument, within the range its table entry allows.
 */
#include "cli/cli.h"

#include <assert.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* getopt_long's value for the option at index i of a table without a
 * short name: above every character. */
#define LONG_ONLY 256

static const struct tg_cli_opt help_opt = {"help",      'h', TG_CLI_FLAG, 0, NULL,
                                           "this text", 0,   0,           0, NULL};

static bool opt_end(const struct tg_cli_opt *o)
{
    return !o->name && !o->short_name;
}

/* "--name", or "-c" for an option without a long name, in buf. */
static const char *opt_name(const struct tg_cli_opt *o, char *buf, size_t len)
{
    if (o->name)
        snprintf(buf, len, "--%s", o->name);
    else
        snprintf(buf, len, "-%c", o->short_name);
    return buf;
}

/* A number within [lo, hi], the whole of arg, into *out: 0, else 2 with
 * "trustgate CMD: OPT wants ..." on stderr. */
static int read_number(const char *cmd, const char *opt, const char *arg, double lo, double hi,
                       double *out)
{
    double v;
    int status = 2;
    if (!arg || tg_parse_double(arg, &v) || !(v >= lo && v <= hi)) {
        fprintf(stderr, "trustgate %s: %s wants a number from %g to %g, not '%s'\n", cmd, opt, lo,
                hi, arg ? arg : "");
        goto out;
    }
    *out = v;
    status = 0;
out:
    return status;
}

/* A whole number within [lo, hi], as read_number(). */
static int read_integer(const char *cmd, const char *opt, const char *arg, long long lo,
                        long long hi, int64_t *out)
{
    int64_t v;
    int status = 2;
    if (!arg || tg_parse_i64(arg, &v) || v < lo || v > hi) {
        fprintf(stderr, "trustgate %s: %s wants a whole number from %lld to %lld, not '%s'\n", cmd,
                opt, lo, hi, arg ? arg : "");
        goto out;
    }
    *out = v;
    status = 0;
out:
    return status;
}

double tg_cli_number(const char *cmd, const char *opt, const char *arg, double lo, double hi)
{
    double v = 0;
    if (read_number(cmd, opt, arg, lo, hi, &v))
        exit(2);
    return v;
}

/* getopt_long's view of cmd's table: the long options into lo (room for
 * TG_CLI_MAX_OPTS + 2) and the short ones into so (2 * TG_CLI_MAX_OPTS + 4). */
static void build(const struct tg_cli_cmd *cmd, struct option *lo, char *so)
{
    size_t n = 0, k = 0, i = 0;
    if (cmd->in_order)
        so[k++] = '+';
    for (const struct tg_cli_opt *o = cmd->opts; !opt_end(o); o++, i++) {
        assert(i < TG_CLI_MAX_OPTS && o->short_name != 'h');
        assert((o->arg == NULL) == (o->kind == TG_CLI_FLAG) || o->kind == TG_CLI_CALL);
        int has_arg = o->arg ? required_argument : no_argument;
        if (o->name)
            lo[n++] = (struct option){o->name, has_arg, NULL,
                                      o->short_name ? o->short_name : LONG_ONLY + (int)i};
        if (o->short_name)
            so[k++] = o->short_name;
        if (o->short_name && o->arg)
            so[k++] = ':';
    }
    lo[n++] = (struct option){"help", no_argument, NULL, 'h'};
    lo[n] = (struct option){NULL, 0, NULL, 0};
    so[k++] = 'h';
    so[k] = '\0';
}

/* The table entry getopt_long's value c stands for, or NULL. */
static const struct tg_cli_opt *find(const struct tg_cli_cmd *cmd, int c)
{
    const struct tg_cli_opt *o = cmd->opts;
    if (c >= LONG_ONLY)
        return o + (c - LONG_ONLY);
    while (!opt_end(o) && o->short_name != c)
        o++;
    return opt_end(o) ? NULL : o;
}

/* Store option o's argument arg into args: TG_CLI_GO_ON, else 2 said. */
static int take(const struct tg_cli_cmd *cmd, const struct tg_cli_opt *o, const char *arg,
                void *args)
{
    char *dest = (char *)args + o->off, name[64];
    int status = 0;
    switch (o->kind) {
    case TG_CLI_FLAG:
        *(bool *)dest = true;
        break;
    case TG_CLI_STRING:
        *(const char **)dest = arg;
        break;
    case TG_CLI_NUMBER:
        status = read_number(cmd->name, opt_name(o, name, sizeof(name)), arg, o->lo, o->hi,
                             (double *)dest);
        break;
    case TG_CLI_INTEGER:
        status = read_integer(cmd->name, opt_name(o, name, sizeof(name)), arg, (long long)o->lo,
                              (long long)o->hi, (int64_t *)dest);
        break;
    case TG_CLI_CALL:
        status = o->call(args, arg) ? 2 : 0;
        break;
    }
    return status ? status : TG_CLI_GO_ON;
}

/* After the options: every required one seen, and nargs arguments allowed. */
static int check(const struct tg_cli_cmd *cmd, uint64_t seen, int nargs)
{
    int status = TG_CLI_GO_ON;
    size_t i = 0;
    for (const struct tg_cli_opt *o = cmd->opts; !opt_end(o); o++, i++)
        if ((o->flags & TG_CLI_REQUIRED) && !(seen & (UINT64_C(1) << i)))
            status = 2;
    if (nargs < cmd->min_args || nargs > cmd->max_args)
        status = 2;
    if (status == 2)
        tg_cli_usage(cmd, stderr);
    return status;
}

int tg_cli_parse(const struct tg_cli_cmd *cmd, int argc, char **argv, void *args, int *optind_out)
{
    struct option lo[TG_CLI_MAX_OPTS + 2];
    char so[2 * TG_CLI_MAX_OPTS + 4];
    uint64_t seen = 0;
    int status = TG_CLI_GO_ON;
    build(cmd, lo, so);
    optind = 0; /* glibc: start afresh, reading so's "+" again */
    while (status == TG_CLI_GO_ON) {
        int c = getopt_long(argc, argv, so, lo, NULL);
        const struct tg_cli_opt *o = c == -1 || c == 'h' ? NULL : find(cmd, c);
        if (c == -1)
            break;
        if (c == 'h') {
            tg_cli_usage(cmd, stdout);
            status = 0;
        } else if (!o) {
            status = tg_cli_usage_error(cmd); /* getopt_long said what */
        } else {
            status = take(cmd, o, optarg, args);
            seen |= UINT64_C(1) << (o - cmd->opts);
        }
    }
    if (status == TG_CLI_GO_ON)
        status = check(cmd, seen, argc - optind);
    if (optind_out)
        *optind_out = optind;
    return status;
}

/* An option's left column in the usage ("-c, --config FILE") into buf; its length. */
static int left_column(const struct tg_cli_opt *o, char *buf, size_t len)
{
    int n;
    if (o->short_name && o->name)
        n = snprintf(buf, len, "-%c, --%s", o->short_name, o->name);
    else if (o->name)
        n = snprintf(buf, len, "    --%s", o->name);
    else
        n = snprintf(buf, len, "-%c", o->short_name);
    if (o->arg && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, " %s", o->arg);
    return n;
}

/* One option's line(s): its left column padded to width, then its help,
 * each further line of the help under the first. */
static void usage_line(FILE *f, const struct tg_cli_opt *o, int width)
{
    char left[128];
    left_column(o, left, sizeof(left));
    fprintf(f, "  %-*s  ", width, left);
    for (const char *p = o->help; *p; p++) {
        fputc(*p, f);
        if (*p == '\n')
            fprintf(f, "%*s", width + 4, "");
    }
    fputc('\n', f);
}

void tg_cli_usage(const struct tg_cli_cmd *cmd, FILE *f)
{
    char left[128];
    int width = left_column(&help_opt, left, sizeof(left));
    for (const struct tg_cli_opt *o = cmd->opts; !opt_end(o); o++)
        if (o->help)
            width = TG_MAX(width, left_column(o, left, sizeof(left)));
    fprintf(f, "%s\n", cmd->usage);
    for (const struct tg_cli_opt *o = cmd->opts; !opt_end(o); o++)
        if (o->help)
            usage_line(f, o, width);
    usage_line(f, &help_opt, width);
}

int tg_cli_usage_error(const struct tg_cli_cmd *cmd)
{
    tg_cli_usage(cmd, stderr);
    return 2;
}

int tg_cli_usage_or_help(const struct tg_cli_cmd *cmd, int argc, char **argv)
{
    int status = tg_cli_wants_help(argc, argv) ? 0 : 2;
    tg_cli_usage(cmd, status ? stderr : stdout);
    return status;
}
