/*
 * fairness_live.c - the fairness gate on the traffic the gateway answered:
 * per sensitive attribute (kept in the audit leaves as keyed pseudonyms)
 * and group, two outcomes over a window — the AI answered at once
 * (decision deliver), and a reviewer approved the AI's draft as written
 * (review tasks joined by turn id, so the tasks reviewers see carry no
 * attribute).  Used by the server's gate (api/governance.c) and by
 * `trustgate release promote`.  See fairness.h.
 */
#include "govern/govern.h"

#include "config/config.h"

#include "audit/audit.h"
#include "core/jscan.h"
#include "store/store.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const outcome_names[] = {"delivered", "review_approved"};

struct rows {
    int64_t since;
    const char *release; /* only turns answered by this release ("NAME@V"), or NULL */
    const struct tg_fairness_conf *cfg; /* the configured attributes */
    json_t *list;        /* [{turn_id, sensitive, deliver}] */
};

/* One leaf, read with the scanner (the gate reads every leaf of its window). */
static int turn_leaf(void *arg, const struct tg_audit_row *row)
{
    struct rows *r = arg;
    const char *v;
    size_t vl;
    int64_t at = 0;
    const char *kind[] = {"kind"}, *at_p[] = {"created_ms"}, *rel_p[] = {"release", "name"},
               *turn_p[] = {"turn_id"}, *dec_p[] = {"decision"};
    /* cheap test first: only turns with attributes are read */
    if (!memmem(row->data, row->len, "\"sensitive\"", 11) ||
        tg_jscan_validate(row->data, row->len) ||
        tg_jscan_find(row->data, row->len, kind, 1, &v, &vl) || vl != 6 ||
        memcmp(v, "\"turn\"", 6) != 0 || tg_jscan_find(row->data, row->len, at_p, 1, &v, &vl) ||
        tg_jscan_int(v, vl, &at) || at < r->since)
        return 0;
    char rel[160] = "", ps[64], turn[64] = "", decision[32] = "";
    if (r->release && (!tg_jscan_str_at(row->data, row->len, rel_p, 2, rel, sizeof(rel)) ||
                       strcmp(rel, r->release) != 0))
        return 0;
    json_t *sens = json_object();
    int rc = sens ? TG_OK : TG_E_NOMEM;
    for (size_t i = 0; i < r->cfg->n_attributes; i++) {
        const char *name = r->cfg->attrs[i].name;
        const char *p[] = {"sensitive", name};
        if (!rc && tg_jscan_str_at(row->data, row->len, p, 2, ps, sizeof(ps)))
            rc = tg_json_set(sens, name, json_string(ps));
    }
    tg_jscan_str_at(row->data, row->len, turn_p, 1, turn, sizeof(turn));
    tg_jscan_str_at(row->data, row->len, dec_p, 1, decision, sizeof(decision));
    bool deliver = !strcmp(decision, "deliver");
    if (rc) {
        json_decref(sens);
        sens = NULL; /* the pack below fails: the scan stops, no turn left out unseen */
    }
    return tg_json_push(r->list, json_pack("{s:s, s:o, s:b}", "turn_id", turn, "sensitive", sens,
                                           "deliver", deliver));
}

/* A group's name: the configured value whose pseudonym it is, else the pseudonym. */
static const char *group_name(const struct tg_fair_live *in, const struct tg_fair_attr_conf *attr,
                              const char *ps)
{
    for (size_t i = 0; in->key && i < attr->n_values; i++) {
        char mine[33];
        tg_fairness_value_pseudonym(in->key, in->keylen, attr->name, attr->values[i], mine);
        if (!strcmp(mine, ps))
            return attr->values[i];
    }
    return ps;
}

/* A number, or null where it is undefined (NAN): never a made-up 0. */
static json_t *num_or_null(double x)
{
    return isnan(x) ? json_null() : json_real(x);
}

/* The gate's error rate: the caller's, else the section's "alpha", else the default. */
static double gate_alpha(const struct tg_fair_live *in)
{
    double a = in->alpha > 0 && in->alpha < 1 ? in->alpha : in->cfg->alpha;
    return a > 0 && a < 1 ? a : TG_FAIR_ALPHA;
}

/* One attribute and one outcome: groups, parity, the gate's test. */
static json_t *measure(const struct tg_fair_live *in, const struct tg_fair_attr_conf *attr,
                       int outcome, const json_t *rows, const json_t *approved, const char **group,
                       int *pred)
{
    size_t k = 0, i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        const char *ps = tg_json_str(json_object_get(r, "sensitive"), attr->name, NULL);
        const json_t *ok = json_object_get(approved, tg_json_str(r, "turn_id", ""));
        if (!ps || (outcome == 1 && !ok))
            continue;
        group[k] = ps;
        pred[k++] = outcome == 1 ? json_is_true(ok) : tg_json_bool(r, "deliver", false);
    }
    struct tg_fair_report *rep = tg_calloc(1, sizeof(*rep));
    json_t *groups = json_array();
    bool closed = false;
    double alpha = gate_alpha(in);
    if (!rep || !groups) {
        tg_free(rep);
        json_decref(groups);
        return NULL;
    }
    int rc = TG_OK;
    if (tg_fairness_compute(group, pred, NULL, k, rep) == TG_OK) {
        tg_fairness_test(rep, in->min_group, alpha, in->bootstrap, 1);
        for (size_t g = 0; !rc && g < rep->n_groups; g++)
            rc = tg_json_push(groups,
                              json_pack("{s:s, s:I, s:I, s:f, s:b}", "group",
                                        group_name(in, attr, rep->groups[g].name), "n",
                                        (json_int_t)rep->groups[g].n, "selected",
                                        (json_int_t)rep->groups[g].selected, "rate",
                                        rep->groups[g].rate, "tested", rep->groups[g].tested));
        closed = tg_fairness_gate(rep, in->limit);
    } else {
        tg_fairness_test(rep, in->min_group, alpha, 0, 1); /* more groups than kept: no test */
        rep->dpd = rep->dpr = NAN;
    }
    const struct tg_fair_test *t = &rep->test;
    if (rc) {
        json_decref(groups);
        groups = NULL; /* a group left out would change the gate: the pack below fails */
    }
    json_t *out = json_pack(
        "{s:I, s:o, s:o, s:o, s:I, s:I, s:o, s:o, s:o, s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:b}",
        "turns", (json_int_t)k, "groups", groups, "dpd", num_or_null(rep->dpd), "dpr",
        num_or_null(rep->dpr), "min_group", (json_int_t)(k ? rep->min_group : 0), "tested_groups",
        (json_int_t)t->groups, "gap", num_or_null(t->gap), "ci_low", num_or_null(t->low), "ci_high",
        num_or_null(t->high), "level", 1 - t->alpha, "alpha", t->alpha, "chi2", t->chi2, "df",
        t->df, "p", t->p, "resamples", (json_int_t)t->resamples, "pairs", (json_int_t)t->pairs,
        "gate_closed", closed);
    tg_free(rep);
    return out;
}

json_t *tg_fairness_live(struct tg_store *st, const struct tg_fair_live *in)
{
    struct rows rows = {.since = in->since_ms,
                        .release = in->release,
                        .cfg = in->cfg,
                        .list = json_array()};
    json_t *out = NULL, *tasks = NULL, *approved = json_object();
    if (!rows.list || !approved || tg_store_audit_scan(st, 0, turn_leaf, &rows) ||
        tg_store_review_list(st, "decided", 1000000, &tasks))
        goto done;
    size_t i;
    json_t *t;
    int rc = TG_OK;
    json_array_foreach(tasks, i, t)
    {
        if (!rc && !strcmp(tg_json_str(t, "kind", ""), "review")) /* drafts the AI wrote */
            rc = tg_json_set(
                approved, tg_json_str(t, "turn_id", ""),
                json_boolean(
                    !strcmp(tg_json_str(json_object_get(t, "decision"), "action", ""), "approve")));
    }
    size_t n = json_array_size(rows.list);
    const char **group = tg_calloc(n ? n : 1, sizeof(*group));
    int *pred = tg_calloc(n ? n : 1, sizeof(*pred));
    if (rc || !group || !pred) {
        tg_free(group);
        tg_free(pred);
        goto done;
    }
    out = json_array();
    rc = out ? TG_OK : TG_E_NOMEM;
    for (size_t ai = 0; !rc && ai < in->cfg->n_attributes; ai++) {
        const struct tg_fair_attr_conf *attr = &in->cfg->attrs[ai];
        json_t *a = json_pack("{s:s}", "attribute", attr->name);
        rc = a ? TG_OK : TG_E_NOMEM;
        for (int o = 0; !rc && o < 2; o++)
            rc = tg_json_set(a, outcome_names[o],
                             measure(in, attr, o, rows.list, approved, group, pred));
        if (rc)
            json_decref(a);
        else
            rc = tg_json_push(out, a);
    }
    tg_free(group);
    tg_free(pred);
    if (rc) {
        json_decref(out);
        out = NULL;
    }
done:
    json_decref(rows.list);
    json_decref(tasks);
    json_decref(approved);
    return out;
}

bool tg_fairness_live_closed(const json_t *attributes, char *why, size_t whylen)
{
    size_t i;
    json_t *a;
    if (whylen)
        why[0] = '\0';
    json_array_foreach(attributes, i, a)
    {
        for (int o = 0; o < 2; o++) {
            const json_t *m = json_object_get(a, outcome_names[o]);
            if (tg_json_bool(m, "gate_closed", false)) {
                snprintf(why, whylen,
                         "%s %s demographic parity difference %.3f over %lld tested groups "
                         "(%g%% simultaneous interval %.3f..%.3f, homogeneity p %.2g)",
                         tg_json_str(a, "attribute", ""), outcome_names[o],
                         tg_json_num(m, "gap", 0), (long long)tg_json_int(m, "tested_groups", 0),
                         100 * tg_json_num(m, "level", 0), tg_json_num(m, "ci_low", 0),
                         tg_json_num(m, "ci_high", 0), tg_json_num(m, "p", 1));
                return true;
            }
        }
    }
    return false;
}
