/*
 * ab_cmd.c - `trustgate ab report`: an experiment's results from its
 * per-turn outcomes (JSONL rows {variant, day, <metric>: value}), with the
 * statistics of src/eval/stats.h (tg_experiment_analyze), and `ab export`, the
 * rows of a deployment's experiment (tg_experiment_rows).
 *
 * For each variant against the control: counts and means, the difference and
 * relative lift, a fixed-horizon test (two proportions for 0/1 metrics,
 * Welch otherwise) with its CI, the always-valid mSPRT p-value taken day by
 * day (so the result may be read daily), and the asymptotic confidence
 * sequence around the difference.  Then the sample-ratio mismatch check of
 * the arms' sizes against the configured shares, and Benjamini–Hochberg over
 * the variants' always-valid p-values.  --html draws the cumulative
 * difference look by look inside its confidence sequence.
 */
#include "cli/cli.h"

#include "eval/eval.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct export_args {
    const char *cfg, *data;
    int64_t period, turns;
};

/* --look-every DURATION, into export_args.period */
static int look_every(void *args, const char *arg)
{
    struct export_args *a = args;
    int64_t ms;
    int rc = 1;
    if (tg_parse_duration_ms(arg, &ms) || ms <= 0) {
        fprintf(stderr,
                "trustgate ab: --look-every wants a duration such as 1d or 500ms, not '%s'\n", arg);
        goto out;
    }
    a->period = ms;
    rc = 0;
out:
    return rc;
}

#define ARG(f) TG_CLI_FIELD(struct export_args, f)
static const struct tg_cli_opt export_opts[] = {
    {"config", 'c', ARG(cfg), .arg = "FILE", .help = "the deployment (store, eval.prices)",
     .flags = TG_CLI_REQUIRED},
    {"data", 'd', ARG(data), .arg = "DIR", .help = "data directory, overrides the config"},
    {"look-every", 0, TG_CLI_CALLS, .arg = "DURATION", .help = "a look per period (default 1d)",
     .call = look_every},
    {"look-turns", 0, ARG(turns), .arg = "N", .help = "a look every N turns instead", .lo = 1,
     .hi = 1e9},
    {0}};
#undef ARG

static const struct tg_cli_cmd export_cmd = {
    .name = "ab",
    .usage = "usage: trustgate ab export EXPERIMENT -c FILE [--data DIR]\n"
             "                 [--look-every DURATION | --look-turns N]\n\n"
             "export writes the experiment's per-turn rows (JSONL) from the deployment's audit\n"
             "log, reviews and ratings: variant, day (the look: periods of --look-every,\n"
             "default 1d, from the first turn, or every --look-turns N turns), resolved,\n"
             "handed_off, reviewed, bad_rating, latency_ms, cost (eval.prices), and when\n"
             "someone judged the answer far (1 good, 0 not) and rated_good.  Rows without\n"
             "the metric (an answer nobody judged) are left out of it, not of the split.\n",
    .opts = export_opts,
    .min_args = 1,
    .max_args = 1,
};

struct report_args {
    const char *data, *control, *metric, *shares, *html;
    double alpha, tau;
    bool as_json;
};

#define ARG(f) TG_CLI_FIELD(struct report_args, f)
static const struct tg_cli_opt report_opts[] = {
    {"data", 'd', ARG(data), .arg = "FILE", .help = "the rows (JSONL: variant, day, metric)",
     .flags = TG_CLI_REQUIRED},
    {"control", 'c', ARG(control), .arg = "NAME", .help = "the control variant",
     .flags = TG_CLI_REQUIRED},
    {"metric", 'm', ARG(metric), .arg = "NAME", .help = "the metric (default converted)"},
    {"shares", 's', ARG(shares), .arg = "A=0.5,B=0.5",
     .help = "the arms' configured shares (default equal)"},
    {"alpha", 'a', ARG(alpha), .arg = "A", .help = "1 - the level (default 0.01)", .lo = 1e-9,
     .hi = 0.5},
    {"tau", 't', ARG(tau), .arg = "T", .help = "the mSPRT mixture's scale (default 0.02)",
     .lo = 1e-12, .hi = 1e12},
    {"html", 'H', ARG(html), .arg = "FILE", .help = "draw the looks in an HTML report"},
    {"json", 'j', ARG(as_json), .help = "print one JSON object"},
    {0}};
#undef ARG

static const struct tg_cli_cmd report_cmd = {
    .name = "ab",
    .usage =
        "usage: trustgate ab report --data FILE --control NAME [--metric NAME]\n"
        "       [--shares A=0.5,B=0.5] [--alpha A] [--tau T] [--html FILE] [--json]\n\n"
        "report reads rows like export's (metric default \"converted\", 0/1 or a number): per\n"
        "variant against the control, the difference with a fixed-horizon test and CI,\n"
        "the always-valid mSPRT p-value read look by look (alpha default 0.01; mixture\n"
        "scale --tau, default 0.02), the asymptotic confidence sequence, sample-ratio\n"
        "mismatch against --shares (default equal) and Benjamini-Hochberg across\n"
        "variants; every interval at level 1 - alpha, labelled.  --json prints one JSON\n"
        "object on stdout and nothing else there.  Exit status 0 when read.\n",
    .opts = report_opts,
    .max_args = TG_CLI_MANY,
};

/* Both commands' usage on f. */
static void usage(FILE *f)
{
    tg_cli_usage(&export_cmd, f);
    fputc('\n', f);
    tg_cli_usage(&report_cmd, f);
}

/* `ab export EXP`: the rows of tg_experiment_rows as JSONL on stdout. */
static int ab_export(const char *exp, const char *cfg_path, const char *data, int64_t period,
                     size_t look_turns)
{
    struct tg_config *cfg = tg_cli_load_config(cfg_path);
    if (!cfg)
        return 1;
    int status = 1;
    struct tg_store *st = tg_cli_open_store(cfg, data, "ab");
    json_t *rows = st ? tg_experiment_rows(st, exp, &cfg->eval, period, look_turns) : NULL;
    if (!rows) {
        fprintf(stderr, "trustgate ab: cannot read the store\n");
    } else {
        size_t i;
        json_t *r;
        status = 0;
        json_array_foreach(rows, i, r)
        {
            char *line = status ? NULL : tg_json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (line)
                printf("%s\n", line);
            else if (!status)
                fprintf(stderr, "trustgate ab: out of memory\n");
            status = status || !line;
            free(line);
        }
    }
    json_decref(rows);
    tg_store_close(st);
    tg_config_free(cfg);
    return status;
}

/* The JSONL rows of path as an array; NULL with a message on error. */
static json_t *read_rows(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "trustgate ab: %s: cannot open\n", path);
        return NULL;
    }
    json_t *rows = json_array();
    char *line = NULL;
    size_t cap = 0;
    int no = 0, rc = rows ? TG_OK : TG_E_NOMEM;
    while (!rc && getline(&line, &cap, f) > 0) {
        no++;
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue;
        json_error_t e;
        json_t *r = json_loads(line, 0, &e);
        if (!json_is_object(r)) {
            fprintf(stderr, "trustgate ab: %s:%d: not a JSON object (%s)\n", path, no, e.text);
            json_decref(r);
            rc = TG_E_PARSE;
        } else {
            rc = tg_json_push(rows, r);
        }
    }
    if (rc == TG_E_NOMEM)
        fprintf(stderr, "trustgate ab: %s: out of memory\n", path);
    if (rc) {
        json_decref(rows);
        rows = NULL;
    }
    free(line);
    fclose(f);
    return rows;
}

static void print_report(const json_t *rep, const char *data, double alpha)
{
    const json_t *srm = json_object_get(rep, "srm");
    printf("experiment %s, metric %s, control %s, %lld looks, alpha %g\n", data,
           tg_json_str(rep, "metric", ""), tg_json_str(rep, "control", ""),
           (long long)tg_json_int(rep, "days", 0), alpha);
    printf("  sample-ratio mismatch: chi-square %.3f, p %.4g%s\n", tg_json_num(srm, "chi2", 0),
           tg_json_num(srm, "p", 1),
           tg_json_bool(srm, "mismatch", false) ? "  (MISMATCH: do not trust this experiment)"
                                                : "");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(rep, "variants"), i, v)
    {
        double base = tg_json_num(v, "control_mean", 0), diff = tg_json_num(v, "diff", 0);
        char when[48] = "  (not significant)";
        if (tg_json_num(v, "first_significant_day", -1) >= 0)
            snprintf(when, sizeof(when), "  (significant from day %.0f)",
                     tg_json_num(v, "first_significant_day", -1));
        printf("  %-12s n %-7.0f mean %.5f vs %.5f  diff %+.5f (%+.1f%%)  p %.4g  %g%% CI "
               "%+.5f..%+.5f\n"
               "  %-12s always-valid p %.4g%s\n",
               tg_json_str(v, "variant", ""), tg_json_num(v, "n", 0), tg_json_num(v, "mean", 0),
               base, diff, base ? diff / base * 100 : 0, tg_json_num(v, "p", 1), 100 * (1 - alpha),
               tg_json_num(v, "ci_low", 0), tg_json_num(v, "ci_high", 0), "",
               tg_json_num(v, "p_always_valid", 1), when);
    }
    printf("  Benjamini-Hochberg at %g: %lld of %zu variants significant\n", alpha,
           (long long)tg_json_int(rep, "bh_significant", 0),
           json_array_size(json_object_get(rep, "variants")));
}

/*
 * One level throughout, 1 - alpha, said where each interval is: the
 * fixed-horizon CI (two proportions and Welch both at 1 - alpha) and the
 * confidence sequence around the difference.  TG_OK or TG_E_NOMEM.
 */
static int label_levels(json_t *rep, double alpha)
{
    size_t i;
    json_t *v;
    int rc = tg_json_set(rep, "level", json_real(1 - alpha));
    json_array_foreach(json_object_get(rep, "variants"), i, v)
    {
        if (!rc)
            rc = tg_json_set(v, "ci_level", json_real(1 - alpha));
        if (!rc)
            rc = tg_json_set(v, "sequence_level", json_real(1 - alpha));
    }
    return rc;
}

/* Per variant, the difference look by look inside its confidence sequence. */
static void write_html(const json_t *rep, const char *path)
{
    struct tg_buf out;
    tg_buf_init(&out, TG_BUF_UNLIMITED);
    tg_eval_html_head(&out, "trustgate experiment report");
    tg_buf_puts(&out, "<h1>Experiment: ");
    tg_eval_html_esc(&out, tg_json_str(rep, "metric", ""));
    tg_buf_puts(&out, "</h1><p>control ");
    tg_eval_html_esc(&out, tg_json_str(rep, "control", ""));
    tg_buf_printf(&out, ", sample-ratio mismatch p %.4g, alpha %g (intervals at %g %%)</p>",
                  tg_json_num(json_object_get(rep, "srm"), "p", 1), tg_json_num(rep, "alpha", 0),
                  100 * (1 - tg_json_num(rep, "alpha", 0)));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(rep, "variants"), i, v)
    {
        char title[200];
        snprintf(title, sizeof(title),
                 "%s: difference from the control look by look, in points, inside its "
                 "%g %% confidence sequence (always-valid p %.3g)",
                 tg_json_str(v, "variant", ""), 100 * tg_json_num(v, "sequence_level", 0),
                 tg_json_num(v, "p_always_valid", 1));
        tg_experiment_html_sequence(&out, title, json_object_get(v, "days"));
    }
    tg_buf_puts(&out, "</body></html>\n");
    tg_cli_write_out(path, out.data, out.len);
    tg_buf_free(&out);
}

/* `ab export EXP -c FILE [--data DIR] [--look-every DURATION | --look-turns N]`
 * (argv from "export"): the options, then ab_export(); the exit status. */
static int ab_export_cmd(int argc, char **argv)
{
    struct export_args a = {.period = 86400000};
    int end, status = tg_cli_parse(&export_cmd, argc, argv, &a, &end);
    if (status != TG_CLI_GO_ON)
        return status;
    return ab_export(argv[end], a.cfg, a.data, a.period, (size_t)a.turns);
}

/* --shares A=0.5,B=0.5 (NULL: none) as variant -> share; a new reference,
 * NULL when out of memory.  A bad number exits (tg_cli_number). */
static json_t *read_shares(const char *shares)
{
    json_t *sh = json_object();
    int rc = sh ? TG_OK : TG_E_NOMEM;
    if (!rc && shares) {
        char buf[512];
        tg_strlcpy(buf, shares, sizeof(buf));
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); !rc && t; t = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(t, '=');
            if (eq) {
                *eq = '\0';
                rc = tg_json_set(sh, t, json_real(tg_cli_number("ab", "--shares", eq + 1, 0, 1e9)));
            }
        }
    }
    if (rc) {
        json_decref(sh);
        sh = NULL;
    }
    return sh;
}

/* `ab report`'s work once its options are read; the exit status. */
static int ab_report(const char *data, const char *control, const char *metric, const char *shares,
                     double alpha, double tau, const char *html, bool as_json)
{
    json_t *rows = read_rows(data), *sh = rows ? read_shares(shares) : NULL;
    if (!sh) {
        if (rows)
            fprintf(stderr, "trustgate ab: out of memory\n");
        json_decref(rows);
        return 1;
    }
    char err[256];
    json_t *rep = tg_experiment_analyze(rows, control, metric, alpha, tau, sh, err, sizeof(err));
    json_decref(rows);
    json_decref(sh);
    if (!rep) {
        fprintf(stderr, "trustgate ab: %s: %s\n", data, err);
        return 1;
    }
    int status = label_levels(rep, alpha) ? 1 : 0;
    char *s = NULL;
    if (!status && as_json) {
        s = tg_json_dumps(rep, JSON_INDENT(2));
        status = s ? 0 : 1;
    }
    if (status) {
        fprintf(stderr, "trustgate ab: out of memory\n");
    } else if (as_json) {
        /* stdout carries the JSON alone, so that it parses */
        printf("%s\n", s);
    } else {
        print_report(rep, data, alpha);
    }
    if (!status && html)
        write_html(rep, html);
    free(s);
    json_decref(rep);
    return status;
}

int tg_cli_ab(int argc, char **argv)
{
    struct report_args a = {.metric = "converted", .alpha = 0.01, .tau = 0.02};
    int status;
    if (argc >= 2 && strcmp(argv[1], "export") == 0)
        return ab_export_cmd(argc - 1, argv + 1);
    if (argc < 2 || strcmp(argv[1], "report") != 0) {
        bool help = argc >= 2 && tg_cli_wants_help(argc, argv);
        usage(help ? stdout : stderr);
        return help ? 0 : 2;
    }
    status = tg_cli_parse(&report_cmd, argc - 1, argv + 1, &a, NULL);
    if (status != TG_CLI_GO_ON)
        return status;
    return ab_report(a.data, a.control, a.metric, a.shares, a.alpha, a.tau, a.html, a.as_json);
}
