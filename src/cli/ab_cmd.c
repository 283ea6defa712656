/*
 * ab_cmd.c - `trustgate ab report`: an experiment's results from its
 * per-turn outcomes (JSONL rows {variant, day, <metric>: value}), with the
 * statistics of src/eval/stats.h.
 *
 * For each variant against the control: counts and means, the difference and
 * relative lift, a fixed-horizon test (two proportions for 0/1 metrics,
 * Welch otherwise) with its CI, the always-valid mSPRT p-value taken day by
 * day (so the result may be read daily), and the asymptotic confidence
 * sequence around the difference.  Then the sample-ratio mismatch check of
 * the arms' sizes against the configured shares, and Benjamini–Hochberg over
 * the variants' always-valid p-values.  --html draws the cumulative
 * difference per day inside its confidence sequence.
 */
#include "cli/cli.h"

#include "eval/eval.h"
#include "eval/stats.h"
#include "store/store.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VARIANTS 8
#define MAX_DAYS 366

struct arm {
    char name[64];
    double share;
    struct tg_stats_moments day[MAX_DAYS]; /* per day */
    bool binary;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: trustgate ab export EXPERIMENT -c FILE [--data DIR]   (rows to stdout)\n"
               "       trustgate ab report --data FILE --control NAME [--metric NAME]\n"
               "       [--shares A=0.5,B=0.5] [--alpha A] [--tau T] [--html FILE] [--json]\n\n"
               "The results of an experiment from per-turn rows (JSONL: variant, day, and the\n"
               "metric, default \"converted\", 0/1 or a number): per variant against the control,\n"
               "the difference with a fixed-horizon test and CI, the always-valid mSPRT p-value\n"
               "read day by day (alpha default 0.01; mixture scale --tau, default 0.02), the\n"
               "asymptotic confidence sequence, sample-ratio mismatch against --shares (default\n"
               "equal) and Benjamini-Hochberg across variants.  Exit status 0 when read.\n");
}

static struct arm *find_arm(struct arm *arms, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(arms[i].name, name) == 0)
            return &arms[i];
    return NULL;
}

static struct arm *arm_of(struct arm *arms, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(arms[i].name, name))
            return &arms[i];
    if (*n == MAX_VARIANTS)
        return NULL;
    struct arm *a = &arms[(*n)++];
    memset(a, 0, sizeof(*a));
    tg_strlcpy(a->name, name, sizeof(a->name));
    a->binary = true;
    return a;
}

static struct tg_stats_moments upto(const struct arm *a, int day)
{
    struct tg_stats_moments m = {0, 0, 0};
    for (int d = 0; d <= day; d++) {
        m.n += a->day[d].n;
        m.sum += a->day[d].sum;
        m.sum_sq += a->day[d].sum_sq;
    }
    return m;
}

static double var_of_mean(const struct tg_stats_moments *m)
{
    if (m->n < 2)
        return 0;
    double mean = m->sum / m->n;
    return (m->sum_sq / m->n - mean * mean) * m->n / (m->n - 1) / m->n;
}

/* ------------------------------------------------------------ export */

struct exp_scan {
    const char *exp;
    json_t *rows; /* [{turn_id, variant, at, decision}] */
    int64_t first_ms;
};

static int exp_leaf(void *arg, const struct tg_audit_row *row)
{
    struct exp_scan *x = arg;
    json_t *j = json_loadb(row->data, row->len, 0, NULL);
    const char *v = tg_json_str(json_object_get(j, "experiments"), x->exp, NULL);
    if (j && v && !strcmp(tg_json_str(j, "kind", ""), "turn")) {
        int64_t at = tg_json_int(j, "created_ms", 0);
        if (!x->first_ms || at < x->first_ms)
            x->first_ms = at;
        int64_t us = 0;
        const char *k;
        json_t *s;
        json_object_foreach(json_object_get(j, "stage_us"), k, s) us += json_integer_value(s);
        json_array_append_new(
            x->rows, json_pack("{s:s, s:s, s:I, s:s, s:I}", "turn_id",
                               tg_json_str(j, "turn_id", ""), "variant", v, "at", (json_int_t)at,
                               "decision", tg_json_str(j, "decision", ""), "us", (json_int_t)us));
    }
    json_decref(j);
    return 0;
}

/*
 * `ab export EXP`: one row per turn of the experiment, from the audit log,
 * with the outcomes people recorded: resolved (answered by AI and neither
 * edited, rejected nor rated bad), handed_off (a person took it over),
 * reviewed, bad_rating, latency_ms; day counts from the first turn.
 */
static int ab_export(const char *exp, const char *cfg_path, const char *data)
{
    struct tg_config *cfg = tg_cli_load_config(cfg_path);
    if (!cfg)
        return 1;
    int status = 1;
    struct tg_store *st = tg_cli_open_store(cfg, data, "ab");
    if (!st) {
        tg_config_free(cfg);
        return 1;
    }
    struct exp_scan x = {.exp = exp, .rows = json_array()};
    json_t *tasks = NULL, *fb = NULL, *by_turn = json_object(), *rating = json_object();
    if (tg_store_audit_scan(st, 0, exp_leaf, &x) ||
        tg_store_review_list(st, NULL, 1000000, &tasks) ||
        tg_store_blob_list(st, "feedback/", 1000000, &fb)) {
        fprintf(stderr, "trustgate ab: cannot read the store\n");
        goto out;
    }
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t) json_object_set(by_turn, tg_json_str(t, "turn_id", ""), t);
    json_array_foreach(fb, i, t) json_object_set(rating, tg_json_str(t, "turn_id", ""), t);
    json_array_foreach(x.rows, i, t)
    {
        const char *turn = tg_json_str(t, "turn_id", ""), *dec = tg_json_str(t, "decision", "");
        const json_t *task = json_object_get(by_turn, turn), *f = json_object_get(rating, turn);
        const char *action = tg_json_str(json_object_get(task, "decision"), "action", "");
        const char *state = tg_json_str(task, "state", "");
        bool bad = f && !tg_json_bool(f, "good", true);
        bool by_person = !strcmp(action, "edit") || !strcmp(action, "reject");
        bool handed = !strcmp(state, "handed_off") || !strcmp(state, "closed") ||
                      !strcmp(dec, "handoff") || !strcmp(dec, "human_decision");
        bool resolved = (!strcmp(dec, "deliver") || !strcmp(action, "approve")) && !bad &&
                        !by_person && !handed;
        printf("{\"variant\":\"%s\",\"day\":%lld,\"resolved\":%d,\"handed_off\":%d,"
               "\"reviewed\":%d,\"bad_rating\":%d,\"latency_ms\":%.3f}\n",
               tg_json_str(t, "variant", ""),
               (long long)((tg_json_int(t, "at", 0) - x.first_ms) / 86400000), resolved, handed,
               task != NULL, bad, (double)tg_json_int(t, "us", 0) / 1000.0);
    }
    status = 0;
out:
    json_decref(x.rows);
    json_decref(tasks);
    json_decref(fb);
    json_decref(by_turn);
    json_decref(rating);
    tg_store_close(st);
    tg_config_free(cfg);
    return status;
}

int tg_cli_ab(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},   {"control", required_argument, NULL, 'c'},
        {"metric", required_argument, NULL, 'm'}, {"shares", required_argument, NULL, 's'},
        {"alpha", required_argument, NULL, 'a'},  {"tau", required_argument, NULL, 't'},
        {"html", required_argument, NULL, 'H'},   {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    const char *data = NULL, *control = NULL, *metric = "converted", *shares = NULL, *html = NULL;
    double alpha = 0.01, tau = 0.02;
    bool as_json = false;
    int c;
    if (argc >= 3 && strcmp(argv[1], "export") == 0) {
        /* ab export EXP -c FILE [--data DIR] */
        const char *cfgp = NULL, *dd = NULL;
        for (int i = 3; i + 1 < argc; i++) {
            if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config"))
                cfgp = argv[++i];
            else if (!strcmp(argv[i], "--data") || !strcmp(argv[i], "-d"))
                dd = argv[++i];
        }
        if (!cfgp) {
            usage(stderr);
            return 2;
        }
        return ab_export(argv[2], cfgp, dd);
    }
    if (argc < 2 || strcmp(argv[1], "report") != 0) {
        bool help = argc >= 2 && tg_cli_wants_help(argc, argv);
        usage(help ? stdout : stderr);
        return help ? 0 : 2;
    }
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "d:c:m:s:a:t:H:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'c':
            control = optarg;
            break;
        case 'm':
            metric = optarg;
            break;
        case 's':
            shares = optarg;
            break;
        case 'a':
            alpha = strtod(optarg, NULL);
            break;
        case 't':
            tau = strtod(optarg, NULL);
            break;
        case 'H':
            html = optarg;
            break;
        case 'j':
            as_json = true;
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!data || !control || alpha <= 0 || alpha >= 1 || tau <= 0) {
        usage(stderr);
        return 2;
    }
    struct arm *arms = tg_calloc(MAX_VARIANTS, sizeof(*arms)); /* ~9 KB each */
    size_t na = 0;
    if (!arms)
        return 1;
    int last_day = 0;
    FILE *f = fopen(data, "r");
    if (!f) {
        fprintf(stderr, "trustgate ab: %s: cannot open\n", data);
        tg_free(arms);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    int no = 0;
    while (getline(&line, &cap, f) > 0) {
        no++;
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue;
        json_t *r = json_loads(line, 0, NULL);
        const json_t *v = json_object_get(r, metric);
        int64_t day = tg_json_int(r, "day", -1);
        struct arm *a = tg_json_str(r, "variant", NULL)
                            ? arm_of(arms, &na, tg_json_str(r, "variant", ""))
                            : NULL;
        if (!a || !json_is_number(v) || day < 0 || day >= MAX_DAYS) {
            fprintf(stderr,
                    "trustgate ab: %s:%d: need {\"variant\", \"day\" 0..%d, \"%s\": number}\n",
                    data, no, MAX_DAYS - 1, metric);
            json_decref(r);
            free(line);
            fclose(f);
            tg_free(arms);
            return 1;
        }
        double x = json_number_value(v);
        a->binary &= x == 0 || x == 1;
        a->day[day].n++;
        a->day[day].sum += x;
        a->day[day].sum_sq += x * x;
        last_day = (int)day > last_day ? (int)day : last_day;
        json_decref(r);
    }
    free(line);
    fclose(f);
    struct arm *ctl = NULL;
    for (size_t i = 0; i < na; i++) {
        arms[i].share = 1.0 / (double)na;
        if (!strcmp(arms[i].name, control))
            ctl = &arms[i];
    }
    if (!ctl) {
        fprintf(stderr, "trustgate ab: no rows for the control '%s'\n", control);
        tg_free(arms);
        return 1;
    }
    if (shares) {
        char buf[512];
        tg_strlcpy(buf, shares, sizeof(buf));
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(t, '=');
            if (!eq)
                continue;
            *eq = '\0';
            struct arm *a = find_arm(arms, na, t);
            if (a)
                a->share = strtod(eq + 1, NULL);
        }
    }
    /* sample-ratio mismatch of the arms' sizes */
    double obs[MAX_VARIANTS], sh[MAX_VARIANTS], chi2;
    for (size_t i = 0; i < na; i++) {
        struct tg_stats_moments m = upto(&arms[i], last_day);
        obs[i] = m.n;
        sh[i] = arms[i].share;
    }
    double srm_p = tg_stats_srm(obs, sh, na, &chi2);
    json_t *variants = json_array();
    double pv[MAX_VARIANTS];
    size_t npv = 0;
    struct tg_buf page;
    tg_buf_init(&page, TG_BUF_UNLIMITED);
    printf("experiment %s, metric %s, control %s, %d days, alpha %g\n", data, metric, control,
           last_day + 1, alpha);
    printf("  sample-ratio mismatch: chi-square %.3f, p %.4g%s\n", chi2, srm_p,
           srm_p < 0.001 ? "  (MISMATCH: do not trust this experiment)" : "");
    for (size_t i = 0; i < na; i++) {
        struct arm *a = &arms[i];
        if (a == ctl)
            continue;
        /* day by day: the always-valid p-value and the confidence sequence */
        double avp = 1, first_day = -1;
        json_t *series = json_array();
        for (int d = 0; d <= last_day; d++) {
            struct tg_stats_moments mc = upto(ctl, d), mt = upto(a, d);
            if (mc.n < 2 || mt.n < 2)
                continue;
            double diff = mt.sum / mt.n - mc.sum / mc.n;
            double var = var_of_mean(&mc) + var_of_mean(&mt);
            double lambda = var > 0 ? tg_stats_msprt(diff, var, tau * tau) : 1;
            avp = fmin(avp, 1 / lambda);
            if (avp < alpha && first_day < 0)
                first_day = d;
            /* the sequence for the difference: per-arm half-widths combined */
            double sd = sqrt(var * (mc.n + mt.n) / 2);
            double hw = tg_stats_cs_halfwidth(sd, (mc.n + mt.n) / 2, alpha, 5000);
            json_array_append_new(series, json_pack("{s:i, s:f, s:f, s:f, s:f}", "day", d, "diff",
                                                    diff, "low", diff - hw, "high", diff + hw,
                                                    "p_always_valid", avp));
        }
        struct tg_stats_moments mc = upto(ctl, last_day), mt = upto(a, last_day);
        struct tg_stats_test t;
        if (a->binary && ctl->binary)
            tg_stats_two_proportions(mc.sum, mc.n, mt.sum, mt.n, &t);
        else
            tg_stats_welch(&mc, &mt, alpha, &t);
        double base = mc.sum / mc.n;
        char when[48] = "  (not significant)";
        if (first_day >= 0)
            snprintf(when, sizeof(when), "  (significant from day %.0f)", first_day);
        printf("  %-12s n %-7.0f mean %.5f vs %.5f  diff %+.5f (%+.1f%%)  p %.4g  CI %+.5f..%+.5f\n"
               "  %-12s always-valid p %.4g%s\n",
               a->name, mt.n, mt.sum / mt.n, base, t.diff, base ? t.diff / base * 100 : 0, t.p,
               t.ci_low, t.ci_high, "", avp, when);
        pv[npv++] = avp;
        json_array_append_new(variants,
                              json_pack("{s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:o}",
                                        "variant", a->name, "first_significant_day", first_day, "n",
                                        mt.n, "mean", mt.sum / mt.n, "control_mean", base, "diff",
                                        t.diff, "p", t.p, "ci_low", t.ci_low, "ci_high", t.ci_high,
                                        "p_always_valid", avp, "days", series));
        if (html) {
            const char *labels[MAX_DAYS];
            double values[MAX_DAYS];
            char names[MAX_DAYS][16];
            size_t nd = 0;
            size_t k;
            json_t *pt;
            json_array_foreach(series, k, pt)
            {
                if (nd < MAX_DAYS) {
                    snprintf(names[nd], sizeof(names[nd]), "day %lld",
                             (long long)tg_json_int(pt, "day", 0));
                    labels[nd] = names[nd];
                    /* the lower bound of the sequence: above 0 means a proven gain */
                    values[nd++] = fmax(0, tg_json_num(pt, "low", 0) * 100);
                }
            }
            char title[160];
            snprintf(title, sizeof(title),
                     "%s: lower bound of the confidence sequence for the difference, in points",
                     a->name);
            double vmax = 0;
            for (size_t q = 0; q < nd; q++)
                vmax = fmax(vmax, values[q]);
            tg_eval_html_bars(&page, title, labels, values, nd, vmax > 0 ? vmax : 1, false);
        }
    }
    bool reject[MAX_VARIANTS];
    size_t nrej = tg_stats_bh(pv, npv, alpha, reject);
    printf("  Benjamini-Hochberg at %g: %zu of %zu variants significant\n", alpha, nrej, npv);
    if (as_json) {
        json_t *o = json_pack("{s:s, s:s, s:f, s:{s:f, s:f}, s:o, s:I}", "metric", metric,
                              "control", control, "alpha", alpha, "srm", "chi2", chi2, "p", srm_p,
                              "variants", variants, "bh_significant", (json_int_t)nrej);
        char *s = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
    } else {
        json_decref(variants);
    }
    if (html) {
        struct tg_buf out;
        tg_buf_init(&out, TG_BUF_UNLIMITED);
        tg_eval_html_head(&out, "trustgate experiment report");
        tg_buf_printf(&out, "<h1>Experiment: %s</h1><p>control ", metric);
        tg_eval_html_esc(&out, control);
        tg_buf_printf(&out, ", sample-ratio mismatch p %.4g</p>", srm_p);
        tg_buf_append(&out, page.data ? page.data : "", page.len);
        tg_buf_puts(&out, "</body></html>\n");
        tg_cli_write_out(html, out.data, out.len);
        tg_buf_free(&out);
    }
    tg_buf_free(&page);
    tg_free(arms);
    return 0;
}
