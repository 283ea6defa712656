/*
 * monitor.c - FAR over time: one judgement per turn from reviews and
 * feedback, daily series by the turn's day, the Mann–Kendall trend test
 * with Sen's slope, and the exit criterion product owners configure.
 * See eval.h.
 */
#include "govern/govern.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int sign(double v)
{
    return (v > 0) - (v < 0);
}

int tg_monitor_mann_kendall(const double *x, size_t n, struct tg_mk *out)
{
    memset(out, 0, sizeof(*out));
    if (n < 3)
        return TG_E_INVAL;
    double s = 0;
    size_t np = n * (n - 1) / 2, k = 0;
    double *slopes = tg_malloc(np * sizeof(double));
    double *sorted = tg_malloc(n * sizeof(double));
    if (!slopes || !sorted) {
        tg_free(slopes);
        tg_free(sorted);
        return TG_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            s += sign(x[j] - x[i]);
            slopes[k++] = (x[j] - x[i]) / (double)(j - i);
        }
    /* ties: groups of equal values */
    memcpy(sorted, x, n * sizeof(double));
    qsort(sorted, n, sizeof(double), cmp_double);
    double ties = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && sorted[j] == sorted[i])
            j++;
        double t = (double)(j - i);
        ties += t * (t - 1) * (2 * t + 5);
        i = j;
    }
    double dn = (double)n;
    out->n = n;
    out->s = s;
    out->var = (dn * (dn - 1) * (2 * dn + 5) - ties) / 18.0;
    out->z = out->var > 0 ? (s - sign(s)) / sqrt(out->var) : 0;
    out->p = erfc(fabs(out->z) / sqrt(2.0));
    qsort(slopes, np, sizeof(double), cmp_double);
    out->slope = np % 2 ? slopes[np / 2] : (slopes[np / 2 - 1] + slopes[np / 2]) / 2;
    tg_free(slopes);
    tg_free(sorted);
    return TG_OK;
}

/* Does a judgement at (at, pos) come after the one kept in j? */
static bool later(const json_t *j, int64_t at, size_t pos)
{
    int64_t have = tg_json_int(j, "at_ms", INT64_MIN);
    return at > have || (at == have && pos >= (size_t)tg_json_int(j, "pos", 0));
}

/* Keep event e (at position pos) as the turn's judgement when it is the latest. */
static int keep(json_t *slot, const json_t *e, size_t pos)
{
    int64_t at = tg_json_int(e, "at_ms", 0);
    if (json_object_size(slot) && !later(slot, at, pos))
        return TG_OK;
    int rc = tg_json_set(slot, "turn_ms", json_integer(tg_json_int(e, "turn_ms", 0)));
    if (!rc)
        rc = tg_json_set(slot, "at_ms", json_integer(at));
    if (!rc)
        rc = tg_json_set(slot, "good", json_boolean(tg_json_bool(e, "good", false)));
    if (!rc)
        rc = tg_json_set(slot, "pos", json_integer((json_int_t)pos));
    return rc;
}

/*
 * Two passes: the reviews first (they say whose answer the customer got),
 * then the ratings of answers that were the AI's.  by_turn maps a turn to
 * {reviewed, person (the latest review was not an approval), kept: the
 * judgement so far}.
 */
json_t *tg_monitor_judgements(const json_t *events)
{
    json_t *by_turn = json_object(), *out = json_array(), *e, *t;
    const char *id;
    size_t i;
    int rc = by_turn && out ? TG_OK : TG_E_NOMEM;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        json_array_foreach(events, i, e)
        {
            const char *turn = tg_json_str(e, "turn_id", NULL);
            bool review = !strcmp(tg_json_str(e, "source", ""), "review");
            if (!turn || review != (pass == 0))
                continue;
            json_t *slot = json_object_get(by_turn, turn);
            if (!slot) {
                slot = json_pack("{s:b, s:b, s:{}}", "reviewed", 0, "person", 0, "kept");
                rc = tg_json_set(by_turn, turn, slot);
                if (rc)
                    break;
            }
            json_t *kept = json_object_get(slot, "kept");
            if (review) {
                /* the latest review decides whose answer the customer got */
                bool newest = !json_object_size(kept) || later(kept, tg_json_int(e, "at_ms", 0), i);
                rc = tg_json_set(slot, "reviewed", json_true());
                if (!rc && newest)
                    rc = tg_json_set(slot, "person", json_boolean(!tg_json_bool(e, "good", false)));
                if (rc)
                    break;
            } else {
                bool ai_answer = tg_json_bool(slot, "reviewed", false)
                                     ? !tg_json_bool(slot, "person", true)
                                     : tg_json_bool(e, "ai", false);
                if (!ai_answer)
                    continue; /* a rating of a person's answer, or of a holding reply */
            }
            rc = keep(kept, e, i);
            if (rc)
                break;
        }
    }
    json_object_foreach(by_turn, id, t)
    {
        const json_t *k = json_object_get(t, "kept");
        if (rc || !json_object_size(k))
            continue;
        rc = tg_json_push(out, json_pack("{s:s, s:O, s:O, s:O}", "turn_id", id, "turn_ms",
                                         json_object_get(k, "turn_ms"), "at_ms",
                                         json_object_get(k, "at_ms"), "good",
                                         json_object_get(k, "good")));
    }
    json_decref(by_turn);
    if (rc) {
        json_decref(out);
        return NULL;
    }
    return out;
}

void tg_monitor_daily_far(const json_t *judgements, int64_t now_ms, size_t days,
                       struct tg_far_day *out)
{
    int64_t today = now_ms - now_ms % DAY_MS, first = today - (int64_t)(days - 1) * DAY_MS;
    for (size_t d = 0; d < days; d++) {
        memset(&out[d], 0, sizeof(out[d]));
        out[d].day_ms = first + (int64_t)d * DAY_MS;
    }
    size_t i;
    json_t *e;
    json_array_foreach(judgements, i, e)
    {
        int64_t at = tg_json_int(e, "turn_ms", -1);
        if (at < first || at >= today + DAY_MS)
            continue;
        struct tg_far_day *d = &out[(at - first) / DAY_MS];
        if (tg_json_bool(e, "good", false))
            d->good++;
        else
            d->bad++;
    }
    for (size_t d = 0; d < days; d++)
        out[d].far = out[d].good + out[d].bad
                         ? (double)out[d].good / (double)(out[d].good + out[d].bad)
                         : NAN;
}

void tg_monitor_far_criterion(const struct tg_far_day *days, size_t n,
                           const struct tg_far_criterion *c, struct tg_far_verdict *v)
{
    memset(v, 0, sizeof(*v));
    size_t from = n > c->days ? n - c->days : 0, m = 0;
    double x[366];
    v->all_below = n >= c->days && c->days > 0;
    for (size_t i = from; i < n; i++) {
        bool data = days[i].good + days[i].bad > 0;
        v->all_below &= data && days[i].far < c->min_far;
        if (data && m < TG_ARRAY_LEN(x))
            x[m++] = days[i].far;
    }
    if (m >= 3 && tg_monitor_mann_kendall(x, m, &v->trend) == TG_OK)
        v->improving = v->trend.s > 0 && v->trend.p < c->alpha;
    v->met = v->all_below && !v->improving;
}
