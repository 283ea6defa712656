/*
 * cli.h - the trustgate command line.  One file per subcommand; each takes
 * argc/argv starting at the subcommand's name and returns the process exit
 * status (0 success, 1 failure found, 2 usage error).
 */
#ifndef TG_CLI_H
#define TG_CLI_H

#include "config/config.h"

#include <stddef.h>
#include <stdio.h>

int tg_cli_main(int argc, char **argv);

int tg_cli_serve(int argc, char **argv);
int tg_cli_ask(int argc, char **argv);
int tg_cli_config(int argc, char **argv);
int tg_cli_audit(int argc, char **argv);
int tg_cli_store(int argc, char **argv);
int tg_cli_kb(int argc, char **argv);
int tg_cli_review(int argc, char **argv);
int tg_cli_customer(int argc, char **argv);
int tg_cli_train(int argc, char **argv);
int tg_cli_eval(int argc, char **argv);
int tg_cli_fairness(int argc, char **argv);
int tg_cli_release(int argc, char **argv);
int tg_cli_ab(int argc, char **argv);
int tg_cli_cost(int argc, char **argv);
int tg_cli_eval_intent(int argc, char **argv);
int tg_cli_eval_retrieval(int argc, char **argv);
int tg_cli_eval_far(int argc, char **argv);
int tg_cli_eval_hallucination(int argc, char **argv);
int tg_cli_eval_crosslingual(int argc, char **argv);
int tg_cli_eval_robustness(int argc, char **argv);
int tg_cli_eval_redline(int argc, char **argv);

/* Where evaluation turns go: in process (data: a data directory, NULL for a
 * fresh temporary one) or over HTTP (url, key, model).  signals (in process
 * only, may be NULL) names a JSONL file that receives each turn's evidence
 * and the builtin answerer's confidence signals, for bench/calibrate.sh. */
struct tg_eval_target {
    const char *url, *key, *model, *data, *signals;
};
struct tg_far_item;
struct tg_text;
/* Run every item's question as a turn and fill its outcome (eval_far.c). */
int tg_cli_eval_run(const struct tg_config *cfg, const struct tg_eval_target *tgt,
                    struct tg_far_item *items, size_t n, struct tg_text *tx);

/*
 * Option tables (opts.c).  A command describes its options once, in a table
 * of struct tg_cli_opt, and tg_cli_parse() reads argv with getopt_long into
 * the command's args struct by it; tg_cli_usage() prints the options part
 * of the usage from the same table, so the two cannot disagree.
 */
enum tg_cli_kind {
    TG_CLI_FLAG,    /* no argument: the bool becomes true */
    TG_CLI_STRING,  /* the argument (const char *, pointing into argv) */
    TG_CLI_NUMBER,  /* double: the whole argument a number within [lo, hi] */
    TG_CLI_INTEGER, /* int64_t: the whole argument a whole number within [lo, hi] */
    TG_CLI_CALL,    /* call(args, arg): repeatable options and those read by hand */
};

/* tg_cli_opt.flags */
#define TG_CLI_REQUIRED 1u /* a usage error when the option is missing */

struct tg_cli_opt {
    const char *name; /* the long name without "--", or NULL */
    char short_name;  /* the short name, or 0 */
    enum tg_cli_kind kind;
    size_t off;       /* where the value goes in the args struct */
    const char *arg;  /* the argument's name in the usage; NULL for a flag */
    const char *help; /* its line(s) in the usage; NULL leaves the option out */
    unsigned flags;
    double lo, hi; /* NUMBER and INTEGER: the range allowed */
    /* CALL: take arg (NULL for a flag) into args; 0, else a usage error
     * the function has said on stderr ("trustgate CMD: ..."). */
    int (*call)(void *args, const char *arg);
};

/* The kind and offset of member f of args struct T, the kind following the
 * member's type (bool, const char *, double, int64_t), so they cannot
 * disagree.  A table entry names the option and its member, the rest by
 * designators: {"config", 'c', TG_CLI_FIELD(struct x, cfg), .arg = "FILE",
 * .help = "the config file"}. */
#define TG_CLI_FIELD(T, f)                                                                         \
    _Generic(((T *)0)->f, bool: TG_CLI_FLAG, const char *: TG_CLI_STRING, double: TG_CLI_NUMBER,  \
             int64_t: TG_CLI_INTEGER),                                                             \
        offsetof(T, f)
/* A CALL option's kind and offset. */
#define TG_CLI_CALLS TG_CLI_CALL, 0

/* tg_cli_cmd.max_args: any number of arguments after the options */
#define TG_CLI_MANY 100000
/* tg_cli_parse(): the command goes on (any other value is the exit status) */
#define TG_CLI_GO_ON (-1)
/* At most this many options in a table (-h/--help comes on top). */
#define TG_CLI_MAX_OPTS 32

struct tg_cli_cmd {
    const char *name;              /* "eval far": messages say "trustgate eval far: ..." */
    const char *usage;             /* "usage: trustgate ..." and the description, ending in "\n" */
    const struct tg_cli_opt *opts; /* ends with an entry with neither name */
    bool in_order;                 /* options end at the first argument (getopt's "+") */
    int min_args, max_args;        /* arguments allowed after the options */
};

/*
 * Read argv's options by cmd's table into args (the struct the table's
 * offsets are in; fields of options not given keep their values, so set
 * the defaults first), with getopt_long (argv[0] is the name getopt's own
 * messages give).  -h/--help prints the usage on stdout: 0.  An unknown
 * option or a missing argument (getopt_long's complaint), a missing
 * required option, too few or too many arguments: 2 with the usage on
 * stderr; a bad number ("trustgate CMD: OPT wants ...") or a failed call:
 * 2 with that message alone.  Otherwise TG_CLI_GO_ON, with the index of the first argument in
 * *optind_out (unless NULL; getopt_long has moved the arguments after the options).
 */
int tg_cli_parse(const struct tg_cli_cmd *cmd, int argc, char **argv, void *args, int *optind_out);
/* cmd's usage: its text, then a line per option of its table and -h. */
void tg_cli_usage(const struct tg_cli_cmd *cmd, FILE *f);
/* The usage on stderr; 2, the exit status of a usage error. */
int tg_cli_usage_error(const struct tg_cli_cmd *cmd);
/* For argv (from the command's name) that names no subcommand cmd can run:
 * the usage on stdout and 0 when -h or --help is among argv, else
 * tg_cli_usage_error(). */
int tg_cli_usage_or_help(const struct tg_cli_cmd *cmd, int argc, char **argv);

/* The table entries of an evaluation target's options, -d/--data, -u/--url,
 * -k/--key and -m/--model, for an args struct T whose member m is the target. */
/* clang-format off */
#define TG_CLI_TARGET_OPTS(T, m)                                                                   \
    {"data", 'd', TG_CLI_FIELD(T, m.data), .arg = "DIR",                                           \
     .help = "data directory for in-process turns (default: a fresh one)"},                        \
    {"url", 'u', TG_CLI_FIELD(T, m.url), .arg = "URL",                                             \
     .help = "send the turns to an OpenAI-compatible server instead"},                             \
    {"key", 'k', TG_CLI_FIELD(T, m.key), .arg = "KEY", .help = "its API key"},                     \
    {"model", 'm', TG_CLI_FIELD(T, m.model), .arg = "NAME",                                        \
     .help = "the model to ask for over HTTP (default: the config's first)"}
/* clang-format on */

/*
 * An option argument read strictly (the whole text a number, within
 * [lo, hi]): otherwise "trustgate CMD: OPT wants ..." on stderr and the
 * process exits with status 2, as for any other usage error.  For numbers
 * read outside an option table (inside a value, as ab's --shares);
 * tg_cli_parse() reads its own the same way and returns instead of exiting.
 */
double tg_cli_number(const char *cmd, const char *opt, const char *arg, double lo, double hi);
/* The arguments joined by single spaces (tg_free), e.g. a question typed
 * without quotes; NULL when out of memory. */
char *tg_cli_join_args(int argc, char **argv);
/* Load a config, printing every problem as FILE:LINE: message on stderr.
 * Returns NULL on failure. */
struct tg_config *tg_cli_load_config(const char *path);
/* Create a directory and its parents (mode 0750); TG_OK if it exists. */
int tg_cli_mkdirs(const char *path);
/* --store URI: cfg's store becomes uri and a --data DIR given with it
 * (*data, then NULL) only this node's own directory.  TG_OK or TG_E_NOMEM. */
int tg_cli_store_override(struct tg_config *cfg, const char *uri, const char **data);
/* Hold the data directory's lock (DIR/trustgate.lock) for the life of the
 * process, so commands that must not run beside a server can tell.
 * Returns the descriptor, or -1 when another process holds it. */
int tg_cli_lock_data_dir(const char *dir);
/* True when argv[i] is -h or --help for any i >= 1. */
int tg_cli_wants_help(int argc, char **argv);
struct tg_store;
/* A deployment's data directory: data (--data) when given, else the one the
 * config's store.uri names (cfg may be NULL with data). */
void tg_cli_data_dir(const struct tg_config *cfg, const char *data, char *dir, size_t len);
/* Open a deployment's store: sqlite:DATA/trustgate.db for --data DATA, else
 * the config's store.uri.  NULL with "trustgate WHAT: reason" on stderr. */
struct tg_store *tg_cli_open_store(const struct tg_config *cfg, const char *data, const char *what);
/* Write data to path ("-": stdout); TG_OK or TG_E_IO with a message on stderr. */
int tg_cli_write_out(const char *path, const char *data, size_t len);
/* One HTTP request to a running gateway at base (Bearer token, JSON body or
 * NULL); the answer's body appended to out and its status in *status.  0 on
 * an answer, 1 when none came (the reason printed, prefixed "trustgate WHO"). */
int tg_cli_http(const char *base, const char *token, const char *method, const char *path,
                const char *body, struct tg_buf *out, long *status, const char *who);

#endif
