/*
 * experiment.c - an experiment's per-turn rows, read from the audit log
 * with the outcomes people recorded (reviews, hand-offs, ratings), and their
 * analysis with the statistics of stats.c.  Shared by `trustgate ab` and the
 * console's experiment view.  See eval.h.
 */
#include "eval/eval.h"
#include "eval/stats.h"

#include "config/config.h"

#include "audit/audit.h"
#include "core/jscan.h"
#include "store/store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARMS 8
#define MAX_LOOKS 366

double tg_eval_price(const struct tg_eval_conf *e, const char *model, int64_t prompt,
                     int64_t completion)
{
    for (size_t i = 0; e && model && i < e->n_prices; i++)
        if (!strcmp(e->price_list[i].model, model))
            return (e->price_list[i].prompt * (double)prompt +
                    e->price_list[i].completion * (double)completion) /
                   1000.0;
    return 0;
}

/* ------------------------------------------------------------ rows */

struct scan {
    const char *exp;
    const struct tg_eval_conf *prices;
    json_t *rows;
    int64_t first_ms;
};

/*
 * One leaf, read with the scanner rather than a tree (a report reads every
 * leaf of the log): only turns of the experiment become rows.
 */
static int leaf(void *arg, const struct tg_audit_row *row)
{
    struct scan *x = arg;
    const char *d = row->data, *v;
    size_t n = row->len, vl;
    if (!memmem(d, n, "\"experiments\"", 13) || tg_jscan_validate(d, n))
        return 0;
    const char *kind[] = {"kind"}, *exp[] = {"experiments", x->exp}, *at_p[] = {"created_ms"},
               *turn_p[] = {"turn_id"}, *dec_p[] = {"decision"}, *st_p[] = {"stage_us"},
               *pt[] = {"usage", "prompt_tokens"}, *ct[] = {"usage", "completion_tokens"},
               *um[] = {"upstream_model"}, *be[] = {"backend"};
    if (tg_jscan_find(d, n, kind, 1, &v, &vl) || vl != 6 || memcmp(v, "\"turn\"", 6) != 0)
        return 0;
    char variant[128] = "", turn[64] = "", decision[32] = "", model[128] = "none";
    if (!tg_jscan_str_at(d, n, exp, 2, variant, sizeof(variant)))
        return 0;
    tg_jscan_str_at(d, n, turn_p, 1, turn, sizeof(turn));
    tg_jscan_str_at(d, n, dec_p, 1, decision, sizeof(decision));
    if (!tg_jscan_str_at(d, n, um, 1, model, sizeof(model)))
        tg_jscan_str_at(d, n, be, 1, model, sizeof(model));
    int64_t at = tg_jscan_int_at(d, n, at_p, 1, 0), us = 0;
    if (!x->first_ms || at < x->first_ms)
        x->first_ms = at;
    /* stage_us is a flat object of integers: add every number after a colon */
    if (!tg_jscan_find(d, n, st_p, 1, &v, &vl)) {
        for (size_t i = 0; i < vl; i++) {
            char *end = NULL;
            long long add = v[i] == ':' ? strtoll(v + i + 1, &end, 10) : 0;
            if (end && end != v + i + 1 && add > 0)
                us += add;
        }
    }
    double cost = tg_eval_price(x->prices, model, tg_jscan_int_at(d, n, pt, 2, 0),
                                tg_jscan_int_at(d, n, ct, 2, 0));
    /* a row left out would change every metric: out of memory stops the scan */
    return tg_json_push(x->rows, json_pack("{s:s, s:s, s:I, s:s, s:I, s:f}", "turn_id", turn,
                                           "variant", variant, "at", (json_int_t)at, "decision",
                                           decision, "us", (json_int_t)us, "cost", cost));
}

json_t *tg_experiment_rows(struct tg_store *st, const char *exp, const struct tg_eval_conf *prices,
                           int64_t period_ms, size_t look_turns)
{
    struct scan x = {.exp = exp, .prices = prices, .rows = json_array()};
    json_t *tasks = NULL, *fb = NULL, *by_turn = json_object(), *rating = json_object();
    json_t *out = NULL;
    if (period_ms <= 0)
        period_ms = 86400000;
    if (!x.rows || !by_turn || !rating || tg_store_audit_scan(st, 0, leaf, &x) ||
        tg_store_review_list(st, NULL, 1000000, &tasks) ||
        tg_store_blob_list(st, "feedback/", 1000000, &fb))
        goto out;
    size_t i;
    json_t *t;
    int rc = TG_OK;
    json_array_foreach(tasks, i, t)
    {
        if (!rc)
            rc = tg_json_set(by_turn, tg_json_str(t, "turn_id", ""), json_incref(t));
    }
    json_array_foreach(fb, i, t)
    {
        if (!rc)
            rc = tg_json_set(rating, tg_json_str(t, "turn_id", ""), json_incref(t));
    }
    out = rc ? NULL : json_array();
    rc = out ? TG_OK : TG_E_NOMEM;
    json_array_foreach(x.rows, i, t)
    {
        if (rc)
            break;
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
        /* FAR counts the AI answers someone judged: a reviewer's approval or a good rating is
         * good, an edit, a rejection or a bad rating is not (as the FAR monitor counts them) */
        bool ai_draft = task && !strcmp(tg_json_str(task, "kind", ""), "review");
        bool judged = f || (ai_draft && (!strcmp(action, "approve") || by_person));
        json_t *row = json_pack(
            "{s:s, s:I, s:i, s:i, s:i, s:i, s:f, s:f}", "variant", tg_json_str(t, "variant", ""),
            "day",
            (json_int_t)(look_turns ? i / look_turns
                                    : (size_t)((tg_json_int(t, "at", 0) - x.first_ms) / period_ms)),
            "resolved", resolved, "handed_off", handed, "reviewed", task != NULL, "bad_rating", bad,
            "latency_ms", (double)tg_json_int(t, "us", 0) / 1000.0, "cost",
            tg_json_num(t, "cost", 0));
        rc = row ? TG_OK : TG_E_NOMEM;
        if (!rc && judged)
            rc = tg_json_set(row, "far", json_integer(!bad && !by_person));
        if (!rc && f)
            rc = tg_json_set(row, "rated_good", json_integer(!bad));
        if (rc)
            json_decref(row);
        else
            rc = tg_json_push(out, row);
    }
    if (rc) {
        json_decref(out);
        out = NULL;
    }
out:
    json_decref(x.rows);
    json_decref(tasks);
    json_decref(fb);
    json_decref(by_turn);
    json_decref(rating);
    return out;
}

/* ------------------------------------------------------------ analysis */

struct arm {
    char name[64];
    double share;
    struct tg_stats_moments look[MAX_LOOKS];
    double rows; /* every row of the arm, with the metric or not: the split */
    bool binary;
};

static struct tg_stats_moments upto(const struct arm *a, int look)
{
    struct tg_stats_moments m = {0, 0, 0};
    for (int d = 0; d <= look; d++) {
        m.n += a->look[d].n;
        m.sum += a->look[d].sum;
        m.sum_sq += a->look[d].sum_sq;
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

static struct arm *arm_of(struct arm *arms, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(arms[i].name, name))
            return &arms[i];
    if (*n == MAX_ARMS)
        return NULL;
    struct arm *a = &arms[(*n)++];
    memset(a, 0, sizeof(*a));
    tg_strlcpy(a->name, name, sizeof(a->name));
    a->binary = true;
    return a;
}

/* One variant against the control: look by look, then at the end. */
static json_t *compare(const struct arm *ctl, const struct arm *a, int last, double alpha,
                       double tau)
{
    double avp = 1, first = -1;
    json_t *series = json_array();
    int rc = series ? TG_OK : TG_E_NOMEM;
    for (int d = 0; !rc && d <= last; d++) {
        struct tg_stats_moments mc = upto(ctl, d), mt = upto(a, d);
        if (mc.n < 2 || mt.n < 2)
            continue;
        double diff = mt.sum / mt.n - mc.sum / mc.n;
        double var = var_of_mean(&mc) + var_of_mean(&mt);
        double lambda = var > 0 ? tg_stats_msprt(diff, var, tau * tau) : 1;
        avp = fmin(avp, 1 / lambda);
        if (avp < alpha && first < 0)
            first = d;
        /* the sequence for the difference: per-arm half-widths combined */
        double sd = sqrt(var * (mc.n + mt.n) / 2);
        double hw = tg_stats_cs_halfwidth(sd, (mc.n + mt.n) / 2, alpha, 5000);
        rc = tg_json_push(series, json_pack("{s:i, s:f, s:f, s:f, s:f, s:f}", "day", d, "n",
                                            mc.n + mt.n, "diff", diff, "low", diff - hw, "high",
                                            diff + hw, "p_always_valid", avp));
    }
    if (rc) {
        json_decref(series);
        series = NULL; /* the pack below fails: NULL */
    }
    struct tg_stats_moments mc = upto(ctl, last), mt = upto(a, last);
    struct tg_stats_test t = {0};
    if (mc.n >= 2 && mt.n >= 2) {
        if (a->binary && ctl->binary)
            tg_stats_two_proportions_at(mc.sum, mc.n, mt.sum, mt.n, alpha, &t);
        else
            tg_stats_welch(&mc, &mt, alpha, &t);
    } else {
        t.p = 1;
    }
    return json_pack("{s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:o}", "variant", a->name,
                     "first_significant_day", first, "n", mt.n, "mean", mt.n ? mt.sum / mt.n : 0,
                     "control_mean", mc.n ? mc.sum / mc.n : 0, "diff", t.diff, "p", t.p, "ci_low",
                     t.ci_low, "ci_high", t.ci_high, "p_always_valid", avp, "days", series);
}

json_t *tg_experiment_analyze(const json_t *rows, const char *control, const char *metric,
                              double alpha, double tau, const json_t *shares, char *err,
                              size_t errlen)
{
    struct arm *arms = tg_calloc(MAX_ARMS, sizeof(*arms));
    size_t na = 0, i, measured = 0;
    int last = 0;
    json_t *r, *out = NULL;
    if (!arms) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_array_foreach(rows, i, r)
    {
        const json_t *v = json_object_get(r, metric);
        int64_t day = tg_json_int(r, "day", -1);
        struct arm *a = tg_json_str(r, "variant", NULL)
                            ? arm_of(arms, &na, tg_json_str(r, "variant", ""))
                            : NULL;
        if (!a || (v && !json_is_null(v) && !json_is_number(v)) || day < 0 || day >= MAX_LOOKS) {
            snprintf(err, errlen, "row %zu: need {\"variant\", \"day\" 0..%d, \"%s\": number}%s",
                     i + 1, MAX_LOOKS - 1, metric, a || na < MAX_ARMS ? "" : " (at most 8 arms)");
            goto out;
        }
        a->rows++;
        if (!json_is_number(v))
            continue; /* not measured on this turn (e.g. FAR of a turn nobody judged) */
        measured++;
        double x = json_number_value(v);
        a->binary &= x == 0 || x == 1;
        a->look[day].n++;
        a->look[day].sum += x;
        a->look[day].sum_sq += x * x;
        last = (int)day > last ? (int)day : last;
    }
    struct arm *ctl = NULL;
    for (i = 0; i < na; i++) {
        const json_t *sh = json_object_get(shares, arms[i].name);
        arms[i].share = json_is_number(sh) ? json_number_value(sh) : 1.0 / (double)na;
        if (!strcmp(arms[i].name, control))
            ctl = &arms[i];
    }
    if (!ctl) {
        snprintf(err, errlen, "no rows for the control '%s'", control);
        goto out;
    }
    if (!measured) {
        snprintf(err, errlen, "no row has the metric '%s'", metric);
        goto out;
    }
    /* sample-ratio mismatch of the arms' sizes */
    double obs[MAX_ARMS], sh[MAX_ARMS], chi2 = 0, pv[MAX_ARMS];
    for (i = 0; i < na; i++) {
        obs[i] = arms[i].rows;
        sh[i] = arms[i].share;
    }
    double srm_p = na > 1 ? tg_stats_srm(obs, sh, na, &chi2) : 1;
    json_t *variants = json_array(), *list = json_array();
    int rc = variants && list ? TG_OK : TG_E_NOMEM;
    size_t npv = 0;
    for (i = 0; !rc && i < na; i++) {
        struct tg_stats_moments m = upto(&arms[i], last);
        rc = tg_json_push(list, json_pack("{s:s, s:f, s:f, s:f, s:f}", "name", arms[i].name, "rows",
                                          arms[i].rows, "n", m.n, "mean", m.n ? m.sum / m.n : 0,
                                          "share", arms[i].share));
        if (rc || &arms[i] == ctl)
            continue;
        json_t *c = compare(ctl, &arms[i], last, alpha, tau);
        pv[npv++] = tg_json_num(c, "p_always_valid", 1);
        rc = tg_json_push(variants, c);
    }
    bool reject[MAX_ARMS];
    size_t nrej = 0;
    if (!rc)
        rc = tg_stats_bh(pv, npv, alpha, reject, &nrej);
    for (i = 0; !rc && i < npv; i++)
        rc = tg_json_set(json_array_get(variants, i), "significant_bh", json_boolean(reject[i]));
    if (rc) {
        json_decref(variants);
        json_decref(list);
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    out = json_pack("{s:s, s:s, s:f, s:f, s:i, s:{s:f, s:f, s:b}, s:o, s:o, s:I}", "metric", metric,
                    "control", control, "alpha", alpha, "tau", tau, "days", last + 1, "srm", "chi2",
                    chi2, "p", srm_p, "mismatch", srm_p < 0.001, "arms", list, "variants", variants,
                    "bh_significant", (json_int_t)nrej);
    if (!out)
        snprintf(err, errlen, "out of memory");
out:
    tg_free(arms);
    return out;
}

/* ------------------------------------------------------------ report chart */

void tg_experiment_html_sequence(struct tg_buf *b, const char *title, const json_t *series)
{
    const double w = 560, h = 220, l = 50, r = 10, t = 12, bot = 28;
    size_t n = json_array_size(series), i;
    json_t *p;
    double lo = 0, hi = 0;
    json_array_foreach(series, i, p)
    {
        lo = fmin(lo, fmax(tg_json_num(p, "low", 0), -1));
        hi = fmax(hi, fmin(tg_json_num(p, "high", 0), 1));
    }
    double span = hi - lo > 0 ? hi - lo : 1;
#define X(k) (l + (n > 1 ? (double)(k) / (double)(n - 1) : 0.5) * (w - l - r))
#define Y(v) (t + (1 - (fmin(fmax((v), lo), hi) - lo) / span) * (h - t - bot))
    tg_buf_puts(b, "<figure><figcaption>");
    tg_eval_html_esc(b, title);
    tg_buf_printf(b,
                  "</figcaption><svg class=\"chart\" role=\"img\" width=\"%.0f\" height=\"%.0f\" "
                  "viewBox=\"0 0 %.0f %.0f\" xmlns=\"http://www.w3.org/2000/svg\">",
                  w, h, w, h);
    if (n) {
        /* the confidence sequence as a band: upper bound forward, lower bound back */
        tg_buf_puts(b, "<polygon fill=\"#2563eb22\" points=\"");
        json_array_foreach(series, i, p)
            tg_buf_printf(b, "%.1f,%.1f ", X(i), Y(tg_json_num(p, "high", 0)));
        for (i = n; i-- > 0;)
            tg_buf_printf(b, "%.1f,%.1f ", X(i),
                          Y(tg_json_num(json_array_get(series, i), "low", 0)));
        tg_buf_puts(b,
                    "\"/><polyline fill=\"none\" stroke=\"#2563eb\" stroke-width=\"2\" points=\"");
        json_array_foreach(series, i, p)
            tg_buf_printf(b, "%.1f,%.1f ", X(i), Y(tg_json_num(p, "diff", 0)));
        tg_buf_puts(b, "\"/>");
        json_array_foreach(series, i, p)
        {
            if (i % (n / 10 + 1) == 0)
                tg_buf_printf(b,
                              "<text x=\"%.1f\" y=\"%.0f\" font-size=\"11\" "
                              "text-anchor=\"middle\">%lld</text>",
                              X(i), h - 8, (long long)tg_json_int(p, "day", 0));
        }
    }
    tg_buf_printf(b,
                  "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#666\" "
                  "stroke-dasharray=\"4 3\"/>"
                  "<text x=\"%.0f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%+.1f</text>"
                  "<text x=\"%.0f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">0</text>"
                  "<text x=\"%.0f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%+.1f</text>"
                  "</svg></figure>\n",
                  l, w - r, Y(0), Y(0), l - 4, Y(hi) + 4, hi * 100, l - 4, Y(0) + 4, l - 4,
                  Y(lo) + 4, lo * 100);
#undef X
#undef Y
}
