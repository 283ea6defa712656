/*
 * test_cli_opts.c - the command line's option tables (src/cli/opts.c):
 * tg_cli_parse() stores each kind of option into its member, reads numbers
 * whole and within range, answers -h/--help, unknown options, missing
 * required options and arguments with the exit statuses the commands have
 * always had, and tg_cli_usage() prints every option of the table it parses
 * by, and no hidden one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct args {
    const char *cfg, *name, *hidden;
    bool json;
    double rate;
    int64_t count;
    const char *items[4];
    size_t n_items;
};

/* --item X, repeatable up to four times. */
static int add_item(void *p, const char *arg)
{
    struct args *a = p;
    if (a->n_items >= TG_ARRAY_LEN(a->items)) {
        fprintf(stderr, "trustgate test: at most 4 items\n");
        return 1;
    }
    a->items[a->n_items++] = arg;
    return 0;
}

#define ARG(f) TG_CLI_FIELD(struct args, f)
static const struct tg_cli_opt opts[] = {
    {"config", 'c', ARG(cfg), .arg = "FILE", .help = "the config", .flags = TG_CLI_REQUIRED},
    {"name", 0, ARG(name), .arg = "NAME", .help = "a name\nover two lines"},
    {"json", 'j', ARG(json), .help = "JSON"},
    {"rate", 'r', ARG(rate), .arg = "X", .help = "a rate", .lo = 0, .hi = 1},
    {NULL, 'n', ARG(count), .arg = "N", .help = "a count", .lo = 1, .hi = 100},
    {"item", 'i', TG_CLI_CALLS, .arg = "X", .help = "an item (repeat)", .call = add_item},
    {"hidden", 0, ARG(hidden), .arg = "X"},
    {0}};
#undef ARG

static const struct tg_cli_cmd cmd = {
    .name = "test",
    .usage = "usage: trustgate test -c FILE [ARG]\n",
    .opts = opts,
    .max_args = 1,
};

static const struct tg_cli_cmd in_order_cmd = {
    .name = "test",
    .usage = "usage: trustgate test -c FILE ARG...\n",
    .opts = opts,
    .in_order = true,
    .min_args = 1,
    .max_args = TG_CLI_MANY,
};

static char *out_text, *err_text;

/* Read fd's file from the start, as a string (tg_free). */
static char *slurp(int fd)
{
    struct tg_buf b;
    char chunk[4096];
    ssize_t n;
    tg_buf_init(&b, 1u << 20);
    lseek(fd, 0, SEEK_SET);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        tg_buf_append(&b, chunk, (size_t)n);
    return tg_buf_steal(&b, NULL);
}

/* tg_cli_parse(c, ARGS..., NULL) into *a (zeroed first) with stdout and
 * stderr caught in out_text and err_text; its status, *end the first
 * argument's index. */
static int parse(const struct tg_cli_cmd *c, struct args *a, int *end, ...)
{
    static char bufs[16][64];
    char *argv[17];
    int argc = 0;
    va_list ap;
    va_start(ap, end);
    for (const char *s = "test"; s && argc < 16; s = va_arg(ap, const char *)) {
        snprintf(bufs[argc], sizeof(bufs[argc]), "%s", s);
        argv[argc] = bufs[argc];
        argc++;
    }
    va_end(ap);
    argv[argc] = NULL;
    memset(a, 0, sizeof(*a));
    tg_free(out_text);
    tg_free(err_text);
    FILE *o = tmpfile(), *e = tmpfile();
    assert_non_null(o);
    assert_non_null(e);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fileno(o), 1);
    dup2(fileno(e), 2);
    int status = tg_cli_parse(c, argc, argv, a, end);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    out_text = slurp(fileno(o));
    err_text = slurp(fileno(e));
    fclose(o);
    fclose(e);
    return status;
}

static void test_kinds(void **state)
{
    (void)state;
    struct args a;
    int end = -1;
    /* the kinds follow the members' types */
    assert_int_equal(opts[0].kind, TG_CLI_STRING);
    assert_int_equal(opts[2].kind, TG_CLI_FLAG);
    assert_int_equal(opts[3].kind, TG_CLI_NUMBER);
    assert_int_equal(opts[4].kind, TG_CLI_INTEGER);
    assert_int_equal(opts[5].kind, TG_CLI_CALL);
    assert_int_equal(parse(&cmd, &a, &end, "-c", "f.yaml", "--name=x", "-j", "--rate", "0.25", "-n",
                           "7", "--item", "p", "-i", "q", "--hidden", "h", "arg", NULL),
                     TG_CLI_GO_ON);
    assert_string_equal(a.cfg, "f.yaml");
    assert_string_equal(a.name, "x");
    assert_true(a.json);
    assert_true(a.rate == 0.25);
    assert_int_equal(a.count, 7);
    assert_int_equal(a.n_items, 2);
    assert_string_equal(a.items[0], "p");
    assert_string_equal(a.items[1], "q");
    assert_string_equal(a.hidden, "h");
    assert_int_equal(end, 15);
    assert_string_equal(out_text, "");
    assert_string_equal(err_text, "");
    /* getopt_long moves the argument after the options */
    assert_int_equal(parse(&cmd, &a, &end, "arg", "--config", "f", NULL), TG_CLI_GO_ON);
    assert_int_equal(end, 3);
    assert_string_equal(a.cfg, "f");
    assert_false(a.json);
    assert_null(a.name);
}

static void test_numbers_are_strict(void **state)
{
    (void)state;
    static const char *const bad_rate[] = {"abc", "0.5x", "", "2", "-0.1", "nan"};
    struct args a;
    for (size_t i = 0; i < TG_ARRAY_LEN(bad_rate); i++) {
        assert_int_equal(parse(&cmd, &a, NULL, "-c", "f", "--rate", bad_rate[i], NULL), 2);
        char want[128];
        snprintf(want, sizeof(want),
                 "trustgate test: --rate wants a number from 0 to 1, not '%s'\n", bad_rate[i]);
        assert_string_equal(err_text, want);
    }
    assert_int_equal(parse(&cmd, &a, NULL, "-c", "f", "-n", "1e3", NULL), 2);
    assert_string_equal(err_text,
                        "trustgate test: -n wants a whole number from 1 to 100, not '1e3'\n");
    assert_int_equal(parse(&cmd, &a, NULL, "-c", "f", "-n", "101", NULL), 2);
    assert_int_equal(parse(&cmd, &a, NULL, "-c", "f", "-n", "100", "-r", "1", NULL), TG_CLI_GO_ON);
    assert_int_equal(a.count, 100);
    assert_true(a.rate == 1);
}

static void test_usage_errors(void **state)
{
    (void)state;
    struct args a;
    /* an unknown option: getopt_long's message, then the usage */
    assert_int_equal(parse(&cmd, &a, NULL, "-c", "f", "--bogus", NULL), 2);
    assert_non_null(strstr(err_text, "unrecognized option '--bogus'"));
    assert_non_null(strstr(err_text, "usage: trustgate test"));
    assert_int_equal(parse(&cmd, &a, NULL, "-c", NULL), 2);
    assert_non_null(strstr(err_text, "requires an argument"));
    assert_int_equal(parse(&cmd, &a, NULL, "-x", "-c", "f", NULL), 2);
    assert_non_null(strstr(err_text, "invalid option -- 'x'"));
    /* a required option missing */
    assert_int_equal(parse(&cmd, &a, NULL, "-j", NULL), 2);
    assert_non_null(strstr(err_text, "usage: trustgate test"));
    /* too many arguments, too few */
    assert_int_equal(parse(&cmd, &a, NULL, "-c", "f", "a", "b", NULL), 2);
    assert_int_equal(parse(&in_order_cmd, &a, NULL, "-c", "f", NULL), 2);
    /* a call that refuses: its message alone */
    assert_int_equal(parse(&cmd, &a, NULL, "-c", "f", "-i1", "-i2", "-i3", "-i4", "-i5", NULL), 2);
    assert_string_equal(err_text, "trustgate test: at most 4 items\n");
    assert_string_equal(out_text, "");
}

static void test_in_order(void **state)
{
    (void)state;
    struct args a;
    int end = 0;
    /* options end at the first argument: "-j" after it is an argument */
    assert_int_equal(parse(&in_order_cmd, &a, &end, "-c", "f", "text", "-j", NULL), TG_CLI_GO_ON);
    assert_int_equal(end, 3);
    assert_false(a.json);
    /* and the next parse, without "+", permutes again (getopt starts afresh) */
    assert_int_equal(parse(&cmd, &a, &end, "text", "-j", "-c", "f", NULL), TG_CLI_GO_ON);
    assert_true(a.json);
    assert_int_equal(end, 4);
}

static void test_help_is_the_table(void **state)
{
    (void)state;
    struct args a;
    assert_int_equal(parse(&cmd, &a, NULL, "--rate", "0.5", "--help", "--bogus", NULL), 0);
    assert_string_equal(err_text, "");
    assert_string_equal(out_text, "usage: trustgate test -c FILE [ARG]\n"
                                  "\n"
                                  "  -c, --config FILE  the config\n"
                                  "      --name NAME    a name\n"
                                  "                     over two lines\n"
                                  "  -j, --json         JSON\n"
                                  "  -r, --rate X       a rate\n"
                                  "  -n N               a count\n"
                                  "  -i, --item X       an item (repeat)\n"
                                  "  -h, --help         this text\n");
    assert_null(strstr(out_text, "hidden"));
    assert_int_equal(parse(&cmd, &a, NULL, "-h", NULL), 0);
    assert_non_null(strstr(out_text, "  -h, --help "));
}

static int teardown(void **state)
{
    (void)state;
    tg_free(out_text);
    tg_free(err_text);
    out_text = err_text = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_numbers_are_strict),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_help_is_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
