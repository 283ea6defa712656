/*
 * cli.h - the trustgate command line.  One file per subcommand; each takes
 * argc/argv starting at the subcommand's name and returns the process exit
 * status (0 success, 1 failure found, 2 usage error).
 */
#ifndef TG_CLI_H
#define TG_CLI_H

#include "config/config.h"

int tg_cli_main(int argc, char **argv);

int tg_cli_serve(int argc, char **argv);
int tg_cli_ask(int argc, char **argv);
int tg_cli_config(int argc, char **argv);
int tg_cli_audit(int argc, char **argv);
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
/* Take option c (-d/--data, -u/--url, -k/--key, -m/--model) with its argument
 * into t; false when c is not one of them. */
bool tg_cli_target_option(struct tg_eval_target *t, int c, const char *arg);
struct tg_far_item;
struct tg_text;
/* Run every item's question as a turn and fill its outcome (eval_far.c). */
int tg_cli_eval_run(const struct tg_config *cfg, const struct tg_eval_target *tgt,
                    struct tg_far_item *items, size_t n, struct tg_text *tx);

/*
 * Option arguments read strictly (the whole text a number, within
 * [lo, hi]): otherwise "trustgate CMD: OPT wants ..." on stderr and the
 * process exits with status 2, as for any other usage error.
 */
double tg_cli_number(const char *cmd, const char *opt, const char *arg, double lo, double hi);
long long tg_cli_integer(const char *cmd, const char *opt, const char *arg, long long lo,
                         long long hi);
/* The arguments joined by single spaces (tg_free), e.g. a question typed
 * without quotes; NULL when out of memory. */
char *tg_cli_join_args(int argc, char **argv);
/* Load a config, printing every problem as FILE:LINE: message on stderr.
 * Returns NULL on failure. */
struct tg_config *tg_cli_load_config(const char *path);
/* Create a directory and its parents (mode 0750); TG_OK if it exists. */
int tg_cli_mkdirs(const char *path);
/* The directory a store URI of the form sqlite:PATH lives in, into out. */
void tg_cli_store_dir(const char *uri, char *out, size_t outlen);
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
