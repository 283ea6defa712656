/*
 * fairness_cmd.c - `trustgate fairness report`: group fairness of the
 * decisions in a delimited file (src/eval/fairness.h).
 *
 *   trustgate fairness report --data adult.data --attribute 9 --pred '14=>50K'
 *
 * Columns are numbered from 0; fields are trimmed; lines with too few fields
 * (a trailing blank line) are skipped.  With --limit the command also
 * applies the release gate (tg_fairness_gate) and exits 1 when it closes;
 * with --json stdout carries one JSON object and nothing else.
 */
#include "cli/cli.h"

#include "eval/fairness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fairness_args {
    const char *data, *pred, *truth, *sep;
    int64_t attr, boot, min_group;
    double limit, alpha;
    bool as_json;
};

#define ARG(f) TG_CLI_FIELD(struct fairness_args, f)
static const struct tg_cli_opt fairness_opts[] = {
    {"data", 'd', ARG(data), .arg = "FILE", .help = "the decisions, one delimited row each",
     .flags = TG_CLI_REQUIRED},
    {"attribute", 'a', ARG(attr), .arg = "COL", .help = "the sensitive attribute's column",
     .flags = TG_CLI_REQUIRED, .lo = 0, .hi = 100000},
    {"pred", 'p', ARG(pred), .arg = "COL=VALUE", .help = "a row is selected when COL is VALUE",
     .flags = TG_CLI_REQUIRED},
    {"truth", 't', ARG(truth), .arg = "COL=VALUE", .help = "and truly positive when COL is VALUE"},
    {"sep", 's', ARG(sep), .arg = "C", .help = "the field separator (default ','; 's': spaces)"},
    {"bootstrap", 'b', ARG(boot), .arg = "N",
     .help = "Monte-Carlo tables for small counts (default 1000)", .lo = 0, .hi = 100000},
    {"limit", 'l', ARG(limit), .arg = "X", .help = "exit 1 when the gap is proven above X", .lo = 0,
     .hi = 1},
    {"min-group", 'm', ARG(min_group), .arg = "N", .help = "groups tested from N rows (default 30)",
     .lo = 1, .hi = 1000000000},
    {"alpha", 'A', ARG(alpha), .arg = "A", .help = "the test's level (default 0.05)", .lo = 1e-9,
     .hi = 0.5},
    {"json", 'j', ARG(as_json), .help = "print one JSON object"},
    {0}};
#undef ARG

static const struct tg_cli_cmd fairness_cmd = {
    .name = "fairness",
    .usage = "usage: trustgate fairness report --data FILE --attribute COL --pred COL=VALUE\n"
             "       [--truth COL=VALUE] [--sep C] [--limit X] [--min-group N] [--alpha A]\n"
             "       [--bootstrap N] [--json]\n\n"
             "Selection rate per group of the sensitive attribute, demographic parity\n"
             "difference and ratio, equalized odds difference (with --truth; a rate without\n"
             "positives or negatives is undefined), the smallest group, and the gate's test\n"
             "over the groups of at least --min-group rows (default 30; smaller ones are\n"
             "shown, not tested): Pearson's chi-square test of homogeneity and a simultaneous\n"
             "1-A interval of the gap (Newcombe's pairwise intervals, Bonferroni; --alpha\n"
             "default 0.05).  --bootstrap N: Monte-Carlo tables for the chi-square p-value\n"
             "when an expected count is below 5 (default 1000; 0: the chi-square law).\n"
             "A row is selected when its --pred column equals VALUE (and truly positive when\n"
             "its --truth column does).  Columns count from 0; --sep is the field separator\n"
             "(default ','; 's' for runs of spaces).  --limit X: exit 1 when the test proves\n"
             "the gap above X (p < A and the interval's low end above X).  --json prints\n"
             "one JSON object on stdout and nothing else there.\n",
    .opts = fairness_opts,
    .max_args = TG_CLI_MANY,
};

/* The columns --pred and --truth name (tcol -1 without --truth) and the
 * values they test for. */
struct cols {
    long pcol, tcol;
    const char *pv, *tv;
};

/* Split line into at most max trimmed fields (in place). */
static size_t split(char *line, char sep, char **out, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '\n' || *p == '\r')
            break;
        char *start = p;
        if (sep == 's') {
            while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
                p++;
        } else {
            while (*p && *p != sep && *p != '\n' && *p != '\r')
                p++;
        }
        char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        bool last = !*p || *p == '\n' || *p == '\r';
        *end = '\0';
        out[n++] = start;
        if (last)
            break;
        p++; /* past the separator (or the space that ended the field) */
    }
    return n;
}

static bool col_value(const char *arg, long *col, const char **value)
{
    char *eq = strchr(arg, '='), num[24];
    int64_t v;
    if (!eq || (size_t)(eq - arg) >= sizeof(num))
        return false;
    memcpy(num, arg, (size_t)(eq - arg));
    num[eq - arg] = '\0';
    if (tg_parse_i64(num, &v) || v < 0 || v > 100000)
        return false; /* COL=VALUE: the column a whole number */
    *col = (long)v;
    *value = eq + 1;
    return true;
}

/* A number, or null where it is undefined (NAN): never a made-up 0. */
static json_t *num_or_null(double x)
{
    return isnan(x) ? json_null() : json_real(x);
}

/* Group G of r appended to gs; TPR and FPR only with a truth column.
 * TG_OK or TG_E_NOMEM. */
static int push_group(json_t *gs, const struct tg_fair_report *r, const struct tg_fair_group *G)
{
    json_t *tpr = r->has_truth ? num_or_null(G->tpr) : NULL;
    json_t *fpr = r->has_truth ? num_or_null(G->fpr) : NULL;
    if (r->has_truth && (!tpr || !fpr)) {
        /* never a group without the rates it has */
        json_decref(tpr);
        json_decref(fpr);
        return TG_E_NOMEM;
    }
    return tg_json_push(gs, json_pack("{s:s, s:I, s:I, s:f, s:o?, s:o?, s:b}", "group", G->name,
                                      "n", (json_int_t)G->n, "selected", (json_int_t)G->selected,
                                      "selection_rate", G->rate, "tpr", tpr, "fpr", fpr, "tested",
                                      G->tested));
}

/* The report as one JSON object on stdout, nothing else.  0, or 1 with the
 * reason on stderr when out of memory. */
static int print_json(const struct tg_fair_report *r, size_t n, size_t skipped, double limit,
                      bool closed)
{
    const struct tg_fair_test *t = &r->test;
    json_t *gs = json_array();
    int rc = gs ? TG_OK : TG_E_NOMEM;
    for (size_t g = 0; !rc && g < r->n_groups; g++)
        rc = push_group(gs, r, &r->groups[g]);
    if (rc) {
        json_decref(gs);
        gs = NULL; /* the pack below fails */
    }
    json_t *test =
        json_pack("{s:f, s:I, s:I, s:I, s:o, s:f, s:f, s:f, s:I, s:{s:f, s:o, s:o}}", "alpha",
                  t->alpha, "min_group", (json_int_t)t->min_group, "groups", (json_int_t)t->groups,
                  "pairs", (json_int_t)t->pairs, "gap", num_or_null(t->gap), "chi2", t->chi2, "df",
                  t->df, "p", t->p, "resamples", (json_int_t)t->resamples, "gap_interval", "level",
                  1 - t->alpha, "low", num_or_null(t->low), "high", num_or_null(t->high));
    json_t *o = json_pack(
        "{s:I, s:I, s:o, s:o, s:o, s:o, s:I, s:o, s:o}", "rows", (json_int_t)n, "skipped",
        (json_int_t)skipped, "groups", gs, "demographic_parity_difference", num_or_null(r->dpd),
        "demographic_parity_ratio", num_or_null(r->dpr), "equalized_odds_difference",
        num_or_null(r->eod), "min_group", (json_int_t)r->min_group, "test", test, "gate",
        limit >= 0 ? json_pack("{s:f, s:b}", "limit", limit, "closed", closed) : json_null());
    char *s = o ? tg_json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) : NULL;
    int status = s ? 0 : 1;
    if (s)
        printf("%s\n", s);
    else
        fprintf(stderr, "trustgate fairness: out of memory\n");
    free(s);
    json_decref(o);
    return status;
}

/* x with digits decimals into buf, or "undefined" (NAN). */
static const char *fmt(char *buf, size_t len, int digits, double x)
{
    if (isnan(x))
        snprintf(buf, len, "undefined");
    else
        snprintf(buf, len, "%.*f", digits, x);
    return buf;
}

static void print_text(const struct tg_fair_report *r, size_t n, const char *data, long attr)
{
    char a[32], b[32];
    const struct tg_fair_test *t = &r->test;
    printf("fairness of %zu decisions in %s (attribute column %ld)\n", n, data, attr);
    for (size_t g = 0; g < r->n_groups; g++) {
        const struct tg_fair_group *G = &r->groups[g];
        printf("  %-24s n %7zu  selected %7zu  rate %.6f", G->name, G->n, G->selected, G->rate);
        if (r->has_truth)
            printf("  TPR %s  FPR %s", fmt(a, sizeof(a), 4, G->tpr), fmt(b, sizeof(b), 4, G->fpr));
        printf("%s\n", G->tested ? "" : "  (under min-group: not tested)");
    }
    printf("  demographic parity difference %s, ratio %s\n", fmt(a, sizeof(a), 6, r->dpd),
           fmt(b, sizeof(b), 6, r->dpr));
    if (r->has_truth)
        printf("  equalized odds difference     %s\n", fmt(a, sizeof(a), 6, r->eod));
    printf("  smallest group                %zu\n", r->min_group);
    if (t->groups < 2) {
        printf("  test: fewer than two groups of at least %zu rows, nothing to test\n",
               t->min_group);
        return;
    }
    printf("  test over %zu groups: gap %.6f, %g%% simultaneous interval %.6f to %.6f\n"
           "        homogeneity chi-square %.4f, df %.0f, p %.4g%s\n",
           t->groups, t->gap, 100 * (1 - t->alpha), t->low, t->high, t->chi2, t->df, t->p,
           t->resamples ? " (Monte-Carlo)" : "");
}

/* The rows of a CSV file: each row's group, prediction and truth. */
struct rows {
    char **groups;
    int *pred, *truth;
    size_t n, skipped; /* skipped: rows with too few fields */
    size_t cap_groups, cap_pred, cap_truth;
};

/* Read every row with the attribute, the prediction (pv in column pcol) and
 * the truth (tv in column tcol, when tcol >= 0).  TG_OK, or TG_E_NOMEM
 * (stopped early, keeping what it read, for the caller to free). */
static int read_rows(FILE *f, char sep, long attr, long pcol, const char *pv, long tcol,
                     const char *tv, struct rows *r)
{
    char *line = NULL;
    size_t lcap = 0;
    long need = attr > pcol ? attr : pcol;
    need = tcol > need ? tcol : need;
    int rc = TG_OK;
    while (!rc && getline(&line, &lcap, f) > 0) {
        char *fields[256];
        size_t nf = split(line, sep, fields, TG_ARRAY_LEN(fields));
        if ((long)nf <= need) {
            r->skipped += nf > 0;
            continue;
        }
        if (tg_grow(&r->groups, &r->cap_groups, r->n, sizeof(*r->groups), 1024) ||
            tg_grow(&r->pred, &r->cap_pred, r->n, sizeof(*r->pred), 1024) ||
            tg_grow(&r->truth, &r->cap_truth, r->n, sizeof(*r->truth), 1024)) {
            rc = TG_E_NOMEM;
            continue;
        }
        r->groups[r->n] = tg_strdup(fields[attr]);
        if (!r->groups[r->n]) {
            rc = TG_E_NOMEM;
            continue;
        }
        r->pred[r->n] = strcmp(fields[pcol], pv) == 0;
        r->truth[r->n] = tcol >= 0 && strcmp(fields[tcol], tv) == 0;
        r->n++;
    }
    free(line);
    return rc;
}

/* The report on the rows of a->data, with c's columns; the exit status. */
static int fairness_report(const struct fairness_args *a, const struct cols *c)
{
    char sep = a->sep[0] == '\\' && a->sep[1] == 't' ? '\t' : a->sep[0];
    const char *data = a->data;
    long attr = (long)a->attr, pcol = c->pcol, tcol = c->tcol;
    const char *pv = c->pv, *tv = c->tv;
    double limit = a->limit;
    FILE *f = fopen(data, "r");
    if (!f) {
        fprintf(stderr, "trustgate fairness: %s: cannot open\n", data);
        return 1;
    }
    struct rows rows = {0};
    int read_rc = read_rows(f, sep, attr, pcol, pv, tcol, tv, &rows);
    fclose(f);
    size_t n = rows.n, skipped = rows.skipped;
    char **groups = rows.groups;
    int *pred = rows.pred, *truth = rows.truth, status = 1;
    struct tg_fair_report *r = read_rc ? NULL : tg_calloc(1, sizeof(*r));
    int rc =
        r ? tg_fairness_compute((const char *const *)groups, pred, tcol >= 0 ? truth : NULL, n, r)
          : TG_E_NOMEM;
    if (rc) {
        fprintf(stderr, "trustgate fairness: %s\n",
                rc == TG_E_TOOBIG ? "more than 64 groups" : tg_err_str(rc));
    } else {
        tg_fairness_test(r, (size_t)a->min_group, a->alpha, (size_t)a->boot, 42);
        bool closed = limit >= 0 && tg_fairness_gate(r, limit);
        status = 0;
        if (a->as_json)
            status = print_json(r, n, skipped, limit, closed);
        else
            print_text(r, n, data, attr);
        if (closed) {
            /* with --json, stdout carries the JSON alone */
            fprintf(a->as_json ? stderr : stdout,
                    "  GATE CLOSED: the parity gap %.4f is above the limit %.4f with %g%% "
                    "confidence (interval %.4f to %.4f, homogeneity p %.3g)\n",
                    r->test.gap, limit, 100 * (1 - r->test.alpha), r->test.low, r->test.high,
                    r->test.p);
            status = 1;
        }
    }
    for (size_t i = 0; groups && i < n; i++)
        tg_free(groups[i]);
    tg_free(groups);
    tg_free(pred);
    tg_free(truth);
    tg_free(r);
    return status;
}

int tg_cli_fairness(int argc, char **argv)
{
    struct fairness_args a = {
        .sep = ",", .attr = -1, .boot = 1000, .min_group = 30, .limit = -1, .alpha = TG_FAIR_ALPHA};
    struct cols c = {.pcol = -1, .tcol = -1};
    int status;
    if (argc < 2 || strcmp(argv[1], "report") != 0)
        return tg_cli_usage_or_help(&fairness_cmd, argc, argv);
    status = tg_cli_parse(&fairness_cmd, argc - 1, argv + 1, &a, NULL);
    if (status != TG_CLI_GO_ON)
        return status;
    if (!col_value(a.pred, &c.pcol, &c.pv) || (a.truth && !col_value(a.truth, &c.tcol, &c.tv)))
        return tg_cli_usage_error(&fairness_cmd);
    return fairness_report(&a, &c);
}
