/*
 * release.c - whether releases may be promoted: the freeze recorded in the
 * store (blob `release-state`), shared by `trustgate release` and the
 * server's fairness gate; the gates a promotion must pass, computed from
 * the release's own experiment traffic in the store (never from a file
 * someone typed), and the promotion itself; and a release's files, kept
 * in the store by content (blobs `release-file/<sha256>`) and written out
 * again where a variant or an operator needs them.  See eval.h.
 */
#include "govern/govern.h"

#include "audit/audit.h"
#include "config/config.h"
#include "core/jscan.h"
#include "eval/fairness.h"
#include "eval/stats.h"
#include "store/store.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

json_t *tg_release_state(struct tg_store *st)
{
    char *d = NULL;
    size_t len;
    json_t *s = NULL;
    if (tg_store_blob_get(st, "release-state", &d, &len) == TG_OK)
        s = json_loadb(d, len, 0, NULL);
    tg_free(d);
    return json_is_object(s) ? s : (json_decref(s), json_pack("{s:b}", "frozen", 0));
}

json_t *tg_release_latest(struct tg_store *st, const char *name)
{
    char prefix[300];
    json_t *all = NULL, *best = NULL, *r;
    size_t i;
    snprintf(prefix, sizeof(prefix), "release/%s/", name);
    if (tg_store_blob_list(st, prefix, 100000, &all))
        return NULL;
    json_array_foreach(all, i, r)
    {
        if (!strcmp(tg_json_str(r, "name", ""), name) &&
            (!best || tg_json_int(r, "version", 0) > tg_json_int(best, "version", 0)))
            best = r;
    }
    json_incref(best);
    json_decref(all);
    return best;
}

int tg_release_queue_frozen(struct tg_store *st, struct tg_audit *audit, bool frozen,
                            const char *by, const char *why)
{
    int64_t now = tg_clock_wall_ms();
    json_t *s = json_pack("{s:b, s:s, s:s, s:I}", "frozen", frozen, "by", by, "why", why, "at",
                          (json_int_t)now);
    json_t *leaf = json_pack("{s:s, s:s, s:I, s:s, s:s, s:I}", "kind", "release", "action",
                             frozen ? "freeze" : "unfreeze", "version", (json_int_t)0, "by", by,
                             "why", why, "at", (json_int_t)now);
    char *str = s ? tg_json_dumps(s, JSON_COMPACT) : NULL;
    int rc = str && leaf ? tg_audit_append_json(audit, leaf, NULL) : TG_E_NOMEM;
    if (!rc)
        rc = tg_store_blob_put(st, "release-state", str, strlen(str));
    free(str);
    json_decref(s);
    json_decref(leaf);
    return rc;
}

int tg_release_set_frozen(struct tg_store *st, struct tg_audit *audit, bool frozen, const char *by,
                          const char *why)
{
    int rc = tg_store_lock(st, TG_RELEASE_STATE_LOCK);
    if (rc)
        return rc;
    tg_store_hold(st);
    rc = tg_store_release(st, tg_release_queue_frozen(st, audit, frozen, by, why));
    if (!rc)
        rc = tg_store_flush(st);
    tg_store_unlock(st, TG_RELEASE_STATE_LOCK);
    return rc;
}

/* ------------------------------------------------------------ release files */

int tg_release_keep_file(struct tg_store *st, const char *sha256_hex, const void *data, size_t len)
{
    char key[128];
    snprintf(key, sizeof(key), "release-file/%s", sha256_hex);
    return tg_store_blob_put(st, key, data, len);
}

/* A name safe to write under a directory: relative, no "..", no empty part. */
static bool safe_name(const char *n)
{
    if (!n[0] || n[0] == '/')
        return false;
    for (const char *p = n; *p;) {
        size_t k = strcspn(p, "/");
        if (k == 0 || (k == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += k;
        if (*p == '/')
            p++;
    }
    return true;
}

static int mkdirs_for(const char *path)
{
    char d[4400];
    tg_strlcpy(d, path, sizeof(d));
    for (char *p = d + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(d, 0755) != 0 && errno != EEXIST)
            return TG_E_IO;
        *p = '/';
    }
    return TG_OK;
}

int tg_release_materialize(struct tg_store *st, const json_t *record, const char *dir, char *config,
                           size_t config_len, char *err, size_t errlen)
{
    const json_t *files = json_object_get(record, "files");
    const char *conf = tg_json_str(record, "config_file", NULL), *name;
    json_t *sha;
    if (!conf || !json_is_object(files)) {
        snprintf(err, errlen,
                 "release %s v%lld keeps no files (proposed before releases kept "
                 "their content); propose it again",
                 tg_json_str(record, "name", ""), (long long)tg_json_int(record, "version", 0));
        return TG_E_INVAL;
    }
    json_object_foreach((json_t *)files, name, sha)
    {
        char key[128], path[4400];
        char *data = NULL;
        size_t len = 0;
        uint8_t h[TG_SHA256_LEN];
        char hex[2 * TG_SHA256_LEN + 1];
        if (!safe_name(name)) {
            snprintf(err, errlen, "%s lies outside the release's folder; it cannot be written out",
                     name);
            return TG_E_INVAL;
        }
        snprintf(key, sizeof(key), "release-file/%s", json_string_value(sha));
        int rc = tg_store_blob_get(st, key, &data, &len);
        bool altered = false;
        if (!rc) {
            tg_sha256(data ? data : "", len, h);
            tg_hex_encode(h, sizeof(h), hex);
            altered = strcmp(hex, json_string_value(sha)) != 0;
        }
        if (rc || altered) {
            tg_free(data);
            snprintf(err, errlen, "the stored content of %s is %s", name,
                     altered               ? "altered"
                     : rc == TG_E_NOTFOUND ? "missing"
                                           : "unreadable");
            return altered ? TG_E_DB : rc;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        /* a file already there with this content stays untouched (its time too) */
        struct tg_buf have;
        tg_buf_init(&have, TG_BUF_UNLIMITED);
        bool same = tg_buf_read_file(&have, path) == TG_OK && have.len == len &&
                    (!len || memcmp(have.data, data, len) == 0);
        tg_buf_free(&have);
        if (same) {
            tg_free(data);
            continue;
        }
        FILE *f = NULL;
        if (!mkdirs_for(path))
            f = fopen(path, "wb");
        bool ok = f && fwrite(data ? data : "", 1, len, f) == len;
        if (f && fclose(f) != 0)
            ok = false;
        tg_free(data);
        if (!ok) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            return TG_E_IO;
        }
    }
    snprintf(config, config_len, "%s/%s", dir, conf);
    return TG_OK;
}

/* ------------------------------------------------------------ records */

int tg_release_event(json_t *rel, const char *action, const char *by, const char *why)
{
    json_t *h = json_object_get(rel, "history");
    int rc = TG_OK;
    if (!json_is_array(h)) {
        h = json_array();
        rc = tg_json_set(rel, "history", json_incref(h));
        json_decref(h); /* rel holds it, or nobody */
    }
    if (!rc)
        rc = tg_json_push(h, json_pack("{s:s, s:s, s:s, s:I}", "action", action, "by", by, "why",
                                       why, "at", (json_int_t)tg_clock_wall_ms()));
    return rc;
}

int tg_release_record(struct tg_audit *audit, const char *action, const json_t *rel, const char *by,
                      const char *why, const json_t *evidence)
{
    json_t *leaf = json_pack("{s:s, s:s, s:s?, s:I, s:s?, s:s, s:s, s:I}", "kind", "release",
                             "action", action, "name", rel ? tg_json_str(rel, "name", NULL) : NULL,
                             "version", (json_int_t)(rel ? tg_json_int(rel, "version", 0) : 0),
                             "hash", rel ? tg_json_str(rel, "hash", NULL) : NULL, "by", by, "why",
                             why, "at", (json_int_t)tg_clock_wall_ms());
    int rc = leaf ? TG_OK : TG_E_NOMEM;
    if (!rc && evidence)
        rc = tg_json_set(leaf, "evidence", json_incref((json_t *)evidence));
    if (!rc)
        rc = tg_audit_append_json(audit, leaf, NULL);
    json_decref(leaf);
    return rc;
}

int tg_release_save(struct tg_store *st, const json_t *rel)
{
    char key[512];
    snprintf(key, sizeof(key), "release/%s/%08lld", tg_json_str(rel, "name", ""),
             (long long)tg_json_int(rel, "version", 0));
    char *s = tg_json_dumps(rel, JSON_COMPACT);
    int rc = s ? tg_store_blob_put(st, key, s, strlen(s)) : TG_E_NOMEM;
    free(s);
    return rc;
}

/* ------------------------------------------------------------ gates */

#define GATE_MIN_JUDGED 30 /* judged turns before a FAR means anything */
#define GATE_SRM_P 0.001   /* a split this unlikely is broken */
#define MAX_EXPS 8

/* What one pass over the audit log collects about a release's traffic. */
struct gate_scan {
    char release[300]; /* "NAME@VERSION" */
    int64_t since;
    const char *exps[MAX_EXPS]; /* experiments with a variant answered by the release */
    size_t nexps;
    json_t *turns;    /* turn_id -> {ms, deliver}: the turns the release answered */
    json_t *assigned; /* experiment -> variant -> {customer pseudonym: true} */
};

static int gate_leaf(void *arg, const struct tg_audit_row *row)
{
    struct gate_scan *x = arg;
    const char *d = row->data, *v;
    size_t n = row->len, vl;
    const char *kind[] = {"kind"}, *rel_p[] = {"release", "name"}, *at_p[] = {"created_ms"},
               *turn_p[] = {"turn_id"}, *dec_p[] = {"decision"}, *cust_p[] = {"customer_pseudonym"};
    if (tg_jscan_validate(d, n) || tg_jscan_find(d, n, kind, 1, &v, &vl) || vl != 6 ||
        memcmp(v, "\"turn\"", 6) != 0 || tg_jscan_int_at(d, n, at_p, 1, 0) < x->since)
        return 0;
    char rel[300] = "", turn[64] = "", decision[32] = "", cust[128] = "";
    tg_jscan_str_at(d, n, turn_p, 1, turn, sizeof(turn));
    tg_jscan_str_at(d, n, cust_p, 1, cust, sizeof(cust));
    if (tg_jscan_str_at(d, n, rel_p, 2, rel, sizeof(rel)) && !strcmp(rel, x->release) && turn[0]) {
        tg_jscan_str_at(d, n, dec_p, 1, decision, sizeof(decision));
        if (tg_json_set(x->turns, turn,
                        json_pack("{s:I, s:b}", "ms", (json_int_t)tg_jscan_int_at(d, n, at_p, 1, 0),
                                  "deliver", !strcmp(decision, "deliver"))))
            return TG_E_NOMEM;
    }
    /* the split counts customers, the unit of assignment */
    for (size_t i = 0; i < x->nexps && cust[0]; i++) {
        const char *exp_p[] = {"experiments", x->exps[i]};
        char variant[128];
        if (!tg_jscan_str_at(d, n, exp_p, 2, variant, sizeof(variant)))
            continue;
        json_t *e = json_object_get(x->assigned, x->exps[i]), *vs;
        if (!e && tg_json_set(x->assigned, x->exps[i], e = json_object()))
            return TG_E_NOMEM;
        vs = json_object_get(e, variant);
        if (!vs && tg_json_set(e, variant, vs = json_object()))
            return TG_E_NOMEM;
        if (tg_json_set(vs, cust, json_true()))
            return TG_E_NOMEM;
    }
    return 0;
}

/* A review decision on a draft of one of the release's turns, as a judgement. */
static int gate_review(void *ctx, const struct tg_review_facts *f)
{
    const struct gate_scan *x = ((void **)ctx)[0];
    json_t *ev = ((void **)ctx)[1];
    const json_t *t = json_object_get(x->turns, f->turn_id);
    if (!t || f->decided_ms <= 0 || strcmp(f->kind, "review") != 0)
        return TG_OK;
    return tg_json_push(ev, json_pack("{s:s, s:O, s:I, s:s, s:b}", "turn_id", f->turn_id, "turn_ms",
                                      json_object_get(t, "ms"), "at_ms", (json_int_t)f->decided_ms,
                                      "source", "review", "good", !strcmp(f->action, "approve")));
}

/* One judgement per judged turn the release answered (tg_monitor_judgements), or NULL. */
static json_t *gate_judgements(struct tg_store *st, const struct gate_scan *x)
{
    json_t *ev = json_array(), *fb = NULL, *f, *out = NULL;
    void *ctx[2] = {(void *)x, ev};
    size_t i;
    int rc = ev ? tg_store_review_facts(st, x->since, gate_review, ctx) : TG_E_NOMEM;
    if (!rc)
        rc = tg_store_blob_list(st, "feedback/", 1000000, &fb);
    json_array_foreach(fb, i, f)
    {
        const json_t *t = json_object_get(x->turns, tg_json_str(f, "turn_id", ""));
        if (rc || !t)
            continue;
        rc = tg_json_push(ev, json_pack("{s:s, s:O, s:I, s:s, s:b, s:O}", "turn_id",
                                        tg_json_str(f, "turn_id", ""), "turn_ms",
                                        json_object_get(t, "ms"), "at_ms",
                                        (json_int_t)tg_json_int(f, "at_ms", 0), "source", "rating",
                                        "good", tg_json_bool(f, "good", false), "ai",
                                        json_object_get(t, "deliver")));
    }
    if (!rc)
        out = tg_monitor_judgements(ev);
    json_decref(fb);
    json_decref(ev);
    return out;
}

/* Append one gate's outcome; a closed gate's detail joins the reasons.
 * TG_OK or TG_E_NOMEM: a gate left out could let a promotion through. */
static int gate(json_t *gates, struct tg_buf *why, const char *name, bool open, const char *detail)
{
    int rc = tg_json_push(
        gates, json_pack("{s:s, s:b, s:s}", "gate", name, "open", open, "detail", detail));
    if (!open)
        tg_buf_printf(why, "%s%s", why->len ? "; " : "", detail);
    return rc;
}

/* The experiments of the config with a variant answered by release name. */
static void experiments_of(const struct tg_config *cfg, const char *name, struct gate_scan *x)
{
    for (size_t i = 0; i < cfg->n_experiments; i++) {
        const struct tg_experiment_conf *e = &cfg->experiments[i];
        for (size_t k = 0; k < e->n_variants; k++) {
            const char *rel = e->variants[k].release;
            if (x->nexps < MAX_EXPS && !strcmp(rel ? rel : "", name)) {
                x->exps[x->nexps++] = e->name;
                break;
            }
        }
    }
}

/* Sample-ratio mismatch of one experiment's customers against its configured shares. */
static int srm_gate(const struct tg_config *cfg, const char *exp_name, const json_t *assigned,
                    json_t *gates, struct tg_buf *why)
{
    const struct tg_experiment_conf *exp = NULL;
    size_t k = 0, nv = 0;
    double obs[MAX_EXPS + 9], share[MAX_EXPS + 9], total = 0, chi2 = 0;
    char detail[400];
    for (size_t i = 0; i < cfg->n_experiments; i++)
        if (!strcmp(cfg->experiments[i].name, exp_name))
            exp = &cfg->experiments[i];
    double holdout = exp ? exp->holdout : 0;
    nv = exp ? exp->n_variants : 0;
    for (size_t i = 0; i < nv; i++)
        total += exp->variants[i].share;
    const json_t *by = json_object_get(assigned, exp_name);
    if (holdout > 0) {
        obs[k] = (double)json_object_size(json_object_get(by, "holdout"));
        share[k++] = holdout;
    }
    for (size_t i = 0; i < nv; i++) {
        if (k == TG_ARRAY_LEN(obs) || total <= 0)
            break;
        obs[k] = (double)json_object_size(json_object_get(by, exp->variants[i].name));
        share[k++] = (1 - holdout) * exp->variants[i].share / total;
    }
    double p = k >= 2 ? tg_stats_srm(obs, share, k, &chi2) : 1;
    snprintf(detail, sizeof(detail),
             "%s: customers per arm against the configured shares, chi-square %.2f, p %.3g%s",
             exp_name, chi2, p,
             p < GATE_SRM_P ? ": sample-ratio mismatch, the split is broken" : "");
    return gate(gates, why, "srm", p >= GATE_SRM_P, detail);
}

/* The live fairness gate on the turns the release answered. */
static int fairness_gate(struct tg_store *st, const struct tg_release_gate_in *in,
                         const struct gate_scan *x, json_t *gates, struct tg_buf *why)
{
    const struct tg_fairness_conf *fc = &in->cfg->fairness;
    char detail[700], closed[300];
    if (!fc->n_attributes)
        return gate(gates, why, "fairness", true, "no sensitive attributes configured (fairness)");
    struct tg_fair_live fl = {
        .cfg = fc,
        .key = in->key,
        .keylen = in->keylen,
        .since_ms = x->since,
        .release = x->release,
        .limit = fc->limit,
        .min_group = (size_t)fc->min_group,
        .bootstrap = (size_t)fc->bootstrap,
    };
    json_t *res = tg_fairness_live(st, &fl);
    bool shut = !res || tg_fairness_live_closed(res, closed, sizeof(closed));
    if (!res)
        snprintf(detail, sizeof(detail), "the fairness gate could not read the audit log");
    else if (shut)
        snprintf(detail, sizeof(detail), "fairness gate closed on the traffic %s answered: %s",
                 x->release, closed);
    else
        snprintf(detail, sizeof(detail), "fairness gate open on the traffic %s answered",
                 x->release);
    json_decref(res);
    return gate(gates, why, "fairness", !shut, detail);
}

/* FAR of the release's judged turns, and the monitor's criterion on them. */
static int far_gates(const struct tg_release_gate_in *in, const json_t *judged, json_t *gates,
                     struct tg_buf *why)
{
    const struct tg_eval_conf *ev = &in->cfg->eval;
    size_t good = 0, n = json_array_size(judged), i;
    json_t *j;
    char detail[400];
    json_array_foreach(judged, i, j) good += tg_json_bool(j, "good", false);
    double far = n ? (double)good / (double)n : 0;
    if (!ev->has_far_min)
        snprintf(detail, sizeof(detail),
                 "the config sets no eval.far.min: the FAR gate has no minimum to hold");
    else if (n < GATE_MIN_JUDGED)
        snprintf(detail, sizeof(detail),
                 "%zu of %s's turns judged (reviews, ratings); the FAR gate needs %d", n, in->name,
                 GATE_MIN_JUDGED);
    else
        snprintf(detail, sizeof(detail), "FAR %.1f%% on %zu judged turns %s the minimum %.1f%%",
                 far * 100, n, far < ev->far_min ? "is below" : "meets", ev->far_min * 100);
    int rc = gate(gates, why, "far", ev->has_far_min && n >= GATE_MIN_JUDGED && far >= ev->far_min,
                  detail);
    /* the exit criterion product owners set for the monitor, on this release's days */
    struct tg_far_criterion c = {
        .min_far = ev->monitor_min_far,
        .alpha = ev->monitor_alpha,
        .days = (size_t)TG_MAX(1, TG_MIN(ev->monitor_days, 90)),
    };
    struct tg_far_day days[90];
    struct tg_far_verdict v;
    tg_monitor_daily_far(judged, in->now_ms, c.days, days);
    tg_monitor_far_criterion(days, c.days, &c, &v);
    snprintf(detail, sizeof(detail), "FAR %s %.0f%% on each of the last %zu days%s",
             v.met ? "below" : "not below", c.min_far * 100, c.days,
             v.met ? " with no improving trend (eval.monitor's exit criterion)" : "");
    if (!rc)
        rc = gate(gates, why, "monitor", !v.met, detail);
    return rc;
}

/* tg_release_gates() with in->cfg set. */
static json_t *gates_of(struct tg_store *st, const struct tg_release_gate_in *in, char *err,
                        size_t errlen)
{
    json_t *rel = tg_release_latest(st, in->name), *gates = json_array(), *out = NULL;
    json_t *judged = NULL, *s = NULL;
    struct gate_scan x = {.turns = json_object(), .assigned = json_object()};
    struct tg_buf why;
    char detail[400];
    tg_buf_init(&why, 16384);
    if (!rel) {
        snprintf(err, errlen, "no release named %s", in->name);
        goto out;
    }
    if (!gates || !x.turns || !x.assigned) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    const char *state = tg_json_str(rel, "state", "");
    bool ran = !strcmp(state, "experiment"), by_override = !ran && in->override;
    snprintf(x.release, sizeof(x.release), "%s@%lld", in->name,
             (long long)tg_json_int(rel, "version", 0));
    x.since = tg_json_int(rel, "created_ms", 0);
    if (ran || !strcmp(state, "proposed"))
        snprintf(detail, sizeof(detail), "%s is %s%s", x.release, state,
                 ran           ? ""
                 : by_override ? "; it never ran as an experiment: a supervisor's override"
                               : "; a release runs as an experiment before promotion (or a "
                                 "supervisor overrides with a reason)");
    else
        snprintf(detail, sizeof(detail), "%s is %s, not a candidate", x.release, state);
    int rc = gate(gates, &why, "candidate", ran || by_override, detail);
    s = tg_release_state(st);
    snprintf(detail, sizeof(detail), "releases are %s%s%s",
             tg_json_bool(s, "frozen", false) ? "frozen (" : "not frozen",
             tg_json_bool(s, "frozen", false) ? tg_json_str(s, "why", "no reason recorded") : "",
             tg_json_bool(s, "frozen", false) ? ")" : "");
    if (!rc)
        rc = gate(gates, &why, "frozen", !tg_json_bool(s, "frozen", false), detail);
    if (!ran) {
        /* nothing answered as this release: no traffic to measure */
        static const char *const traffic[] = {"experiment", "far", "srm", "fairness", "monitor"};
        for (size_t i = 0; !rc && i < TG_ARRAY_LEN(traffic); i++)
            rc = gate(gates, &why, traffic[i], true,
                      "not measured: the release answered no traffic");
    } else if (!rc) {
        experiments_of(in->cfg, in->name, &x);
        if (tg_store_audit_scan(st, 0, gate_leaf, &x) || !(judged = gate_judgements(st, &x))) {
            snprintf(err, errlen, "the audit log could not be read");
            goto out;
        }
        snprintf(detail, sizeof(detail), "%s answered %zu turns as a variant of %s%s", x.release,
                 json_object_size(x.turns), x.nexps ? x.exps[0] : "no configured experiment",
                 x.nexps > 1 ? " and others" : "");
        rc = gate(gates, &why, "experiment", x.nexps > 0 && json_object_size(x.turns) > 0, detail);
        if (!rc)
            rc = far_gates(in, judged, gates, &why);
        for (size_t i = 0; !rc && i < x.nexps; i++)
            rc = srm_gate(in->cfg, x.exps[i], x.assigned, gates, &why);
        if (!rc)
            rc = fairness_gate(st, in, &x, gates, &why);
    }
    if (rc) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    bool open = true;
    size_t gi;
    json_t *g;
    json_array_foreach(gates, gi, g) open &= tg_json_bool(g, "open", false);
    out = json_pack("{s:s, s:I, s:s, s:s, s:s, s:b, s:s#, s:O}", "name", in->name, "version",
                    (json_int_t)tg_json_int(rel, "version", 0), "release", x.release, "hash",
                    tg_json_str(rel, "hash", ""), "state", state, "open", open, "refused",
                    why.data ? why.data : "", (int)why.len, "gates", gates);
    if (!out)
        snprintf(err, errlen, "out of memory");
out:
    json_decref(rel);
    json_decref(gates);
    json_decref(judged);
    json_decref(s);
    json_decref(x.turns);
    json_decref(x.assigned);
    tg_buf_free(&why);
    return out;
}

json_t *tg_release_gates(struct tg_store *st, const struct tg_release_gate_in *in, char *err,
                         size_t errlen)
{
    return gates_of(st, in, err, errlen);
}

/* Another release put into state by a transition (action in its history), saved. */
static int mark(struct tg_store *st, json_t *r, const char *state, const char *action,
                const char *by, const char *why)
{
    int rc = tg_json_set(r, "state", json_string(state));
    if (!rc)
        rc = tg_release_event(r, action, by, why);
    if (!rc)
        rc = tg_release_save(st, r);
    return rc;
}

int tg_release_promote(struct tg_store *st, struct tg_audit *audit, const json_t *evidence,
                       const char *by, const char *why, const char *override_why, char *err,
                       size_t errlen)
{
    const char *name = tg_json_str(evidence, "name", "");
    /* read every transition queued before this one: two promotions never both pass */
    int rc = tg_store_flush(st);
    json_t *rel = rc ? NULL : tg_release_latest(st, name), *all = NULL;
    json_t *s = tg_release_state(st), *r;
    size_t i;
    rc = TG_E_CONFLICT;
    /* what was measured must still be the candidate, and nothing froze since */
    if (!rel || tg_json_int(rel, "version", 0) != tg_json_int(evidence, "version", -1) ||
        strcmp(tg_json_str(rel, "state", ""), tg_json_str(evidence, "state", "")) != 0) {
        snprintf(err, errlen, "%s changed while its gates were computed; try again", name);
        goto out;
    }
    if (tg_json_bool(s, "frozen", false)) {
        snprintf(err, errlen, "releases are frozen (%s)", tg_json_str(s, "why", ""));
        goto out;
    }
    if (!tg_json_bool(evidence, "open", false)) {
        snprintf(err, errlen, "%s", tg_json_str(evidence, "refused", "a gate is closed"));
        rc = TG_E_FORBIDDEN;
        tg_release_record(audit, "promote_refused", rel, by, err, evidence);
        goto out;
    }
    rc = TG_OK;
    if (strcmp(tg_json_str(rel, "state", ""), "experiment") != 0)
        rc = tg_release_record(audit, "override", rel, by, override_why, NULL);
    if (!rc && tg_store_blob_list(st, "release/", 100000, &all))
        rc = TG_E_DB;
    json_array_foreach(all, i, r)
    {
        if (!rc && !strcmp(tg_json_str(r, "state", ""), "promoted"))
            rc = mark(st, r, "superseded", "superseded", by, why);
    }
    if (!rc)
        rc = tg_json_set(rel, "state", json_string("promoted"));
    if (!rc)
        rc = tg_release_event(rel, "promote", by, why);
    if (!rc)
        rc = tg_release_record(audit, "promote", rel, by, why, evidence);
    if (!rc)
        rc = tg_release_save(st, rel);
    if (rc)
        snprintf(err, errlen, "the promotion could not be recorded: %s", tg_err_str(rc));
out:
    json_decref(rel);
    json_decref(all);
    json_decref(s);
    return rc;
}

/* ------------------------------------------------------------ transitions */

/* Propose keeps every file of the release in the store, by content. */
struct keep {
    struct tg_store *st;
    int rc;
};

static void keep_file(void *arg, const char *name, const char *sha, const void *data, size_t len)
{
    struct keep *k = arg;
    (void)name;
    if (!k->rc)
        k->rc = tg_release_keep_file(k->st, sha, data, len);
}

/* The transition's leaf, then the record saved and committed. */
static int commit_transition(struct tg_store *st, struct tg_audit *audit, json_t *rel,
                             const char *action, const char *by, const char *why, json_t **out)
{
    int rc = tg_release_event(rel, action, by, why);
    if (!rc)
        rc = tg_release_record(audit, action, rel, by, why, NULL);
    if (!rc)
        rc = tg_release_save(st, rel);
    if (!rc)
        rc = tg_store_flush(st);
    if (!rc && out)
        *out = json_incref(rel);
    return rc;
}

int tg_release_propose(struct tg_store *st, struct tg_audit *audit, const struct tg_config *cfg,
                       const char *name, const char *by, const char *why, json_t **out, char *err,
                       size_t errlen)
{
    char hash[2 * TG_SHA256_LEN + 1];
    struct keep k = {.st = st};
    json_t *files = tg_config_snapshot(cfg, hash, keep_file, &k);
    char conf[PATH_MAX];
    if (!realpath(cfg->path, conf))
        tg_strlcpy(conf, cfg->path, sizeof(conf));
    const char *slash = strrchr(cfg->path, '/');
    if (k.rc || !files) {
        json_decref(files);
        snprintf(err, errlen, "cannot keep the release's files: %s",
                 tg_err_str(k.rc ? k.rc : TG_E_NOMEM));
        return k.rc ? k.rc : TG_E_NOMEM;
    }
    json_t *prev = tg_release_latest(st, name);
    json_int_t version = prev ? tg_json_int(prev, "version", 0) + 1 : 1;
    json_decref(prev);
    json_t *rel = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:o, s:I}", "name", name, "version",
                            version, "hash", hash, "state", "proposed", "config", conf,
                            "config_file", slash ? slash + 1 : cfg->path, "files", files,
                            "created_ms", (json_int_t)tg_clock_wall_ms());
    int rc = rel ? commit_transition(st, audit, rel, "propose", by, why, out) : TG_E_NOMEM;
    if (rc)
        snprintf(err, errlen, "cannot record the proposal: %s", tg_err_str(rc));
    json_decref(rel);
    return rc;
}

/* The latest version of name, or NULL with a message in err. */
static json_t *latest_or_err(struct tg_store *st, const char *name, char *err, size_t errlen)
{
    json_t *rel = tg_release_latest(st, name);
    if (!rel)
        snprintf(err, errlen, "no release named %s", name);
    return rel;
}

int tg_release_start_experiment(struct tg_store *st, struct tg_audit *audit, const char *name,
                                double share, const char *by, const char *why, json_t **out,
                                char *err, size_t errlen)
{
    json_t *rel = latest_or_err(st, name, err, errlen);
    if (!rel)
        return TG_E_NOTFOUND;
    const char *state = tg_json_str(rel, "state", "");
    int rc = TG_E_INVAL;
    if (strcmp(state, "proposed") != 0 || !(share > 0 && share <= 1)) {
        snprintf(err, errlen,
                 "%s is %s; an experiment starts from proposed, with a share in (0, 1]", name,
                 state);
    } else {
        rc = tg_json_set(rel, "state", json_string("experiment"));
        if (!rc)
            rc = tg_json_set(rel, "share", json_real(share));
        if (!rc)
            rc = commit_transition(st, audit, rel, "start-experiment", by, why, out);
        if (rc)
            snprintf(err, errlen, "cannot record the experiment: %s", tg_err_str(rc));
    }
    json_decref(rel);
    return rc;
}

int tg_release_rollback(struct tg_store *st, struct tg_audit *audit, const char *name,
                        const char *by, const char *why, json_t **out, json_t **restored, char *err,
                        size_t errlen)
{
    json_t *rel = latest_or_err(st, name, err, errlen), *all = NULL, *back = NULL;
    if (restored)
        *restored = NULL;
    if (!rel)
        return TG_E_NOTFOUND;
    const char *state = tg_json_str(rel, "state", "");
    int rc = TG_E_INVAL;
    if (strcmp(state, "promoted") != 0) {
        snprintf(err, errlen, "%s is %s; only the release in force rolls back", name, state);
        goto out;
    }
    rc = tg_json_set(rel, "state", json_string("rolled_back"));
    /* the newest superseded release is in force again */
    if (!rc)
        rc = tg_store_blob_list(st, "release/", 100000, &all);
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        if (!strcmp(tg_json_str(r, "state", ""), "superseded") &&
            (!back || tg_json_int(r, "created_ms", 0) > tg_json_int(back, "created_ms", 0)))
            back = r;
    }
    if (!rc && back)
        rc = mark(st, back, "promoted", "restored", by, why);
    if (!rc)
        rc = commit_transition(st, audit, rel, "rollback", by, why, out);
    if (rc)
        snprintf(err, errlen, "cannot record the rollback: %s", tg_err_str(rc));
    else if (back && restored)
        *restored = json_incref(back);
out:
    json_decref(all);
    json_decref(rel);
    return rc;
}
