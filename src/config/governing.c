/*
 * governing.c - the sections of the ladder and of live governance:
 * ladder, eval (FAR set, monitor, prices), audit, fairness and
 * experiments, each checked with its lines.
 */
#include "config/config_int.h"

#include <stdio.h>
#include <string.h>

/* ladder: {rungs: [{name, backend?, model?, budget?, large_context?}], budget, max_attempts,
 * backoff, backoff_max, degraded_to_human, min_confidence, breaker: {failures, open, probe}} */
void tg_config_check_ladder(struct tg_config_vctx *c, struct tg_config *cfg, const json_t *root)
{
    static const char *const keys[] = {"rungs",          "budget",      "max_attempts",
                                       "backoff",        "backoff_max", "degraded_to_human",
                                       "min_confidence", "breaker",     "stream_through"};
    static const char *const durs[] = {"budget", "backoff", "backoff_max"};
    static const char *const rung_keys[] = {"name",   "backend",       "model",
                                            "budget", "large_context", "max_inflight",
                                            "queue",  "queue_timeout"};
    static const char *const rung_durs[] = {"budget", "queue_timeout"};
    static const char *const br_keys[] = {"failures", "open", "probe"};
    static const char *const br_durs[] = {"open"};
    const json_t *sec = tg_config_get_mapping(c, root, "ladder", "ladder");
    if (!sec)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, sec, "ladder", keys, TG_ARRAY_LEN(keys));
    tg_config_check_durations(c, sec, "ladder", durs, TG_ARRAY_LEN(durs));
    tg_config_check_number(c, sec, "max_attempts", "ladder.max_attempts", 1, 10);
    tg_config_check_number(c, sec, "degraded_to_human", "ladder.degraded_to_human", 1, 1000);
    tg_config_check_number(c, sec, "min_confidence", "ladder.min_confidence", 0, 1);
    const json_t *st = json_object_get(sec, "stream_through");
    if (st && !json_is_boolean(st))
        tg_config_type_err(c, tg_config_key_line(c, sec, "stream_through"), "ladder.stream_through",
                           "true or false", st);
    const json_t *br = tg_config_get_mapping(c, sec, "breaker", "ladder.breaker");
    if (br) {
        tg_config_check_keys(c->errs, c->path, c->lines, br, "ladder.breaker", br_keys,
                             TG_ARRAY_LEN(br_keys));
        tg_config_check_durations(c, br, "ladder.breaker", br_durs, 1);
        tg_config_check_number(c, br, "failures", "ladder.breaker.failures", 1, 1000000);
        tg_config_check_number(c, br, "probe", "ladder.breaker.probe", 0, 1);
    }
    const json_t *rungs = tg_config_get_list(c, sec, "rungs", "ladder.rungs");
    if (!rungs || !json_array_size(rungs)) {
        tg_config_verr(c, tg_config_key_line(c, root, "ladder"),
                       "ladder.rungs needs at least one rung");
        return;
    }
    size_t i;
    json_t *r;
    bool human_seen = false;
    json_array_foreach(rungs, i, r)
    {
        char w[48];
        int line = tg_config_lines_elem(c->lines, rungs, i);
        snprintf(w, sizeof(w), "ladder.rungs[%zu]", i);
        if (!json_is_object(r)) {
            tg_config_type_err(c, line, w, "a mapping with name and backend", r);
            continue;
        }
        tg_config_check_keys(c->errs, c->path, c->lines, r, w, rung_keys, TG_ARRAY_LEN(rung_keys));
        tg_config_check_durations(c, r, w, rung_durs, TG_ARRAY_LEN(rung_durs));
        tg_config_check_number(c, r, "max_inflight", "max_inflight", 0, 1000000);
        tg_config_check_number(c, r, "queue", "queue", 0, 1000000);
        const char *b = tg_json_str(r, "backend", NULL);
        const json_t *lc = json_object_get(r, "large_context");
        if (lc && !json_is_boolean(lc))
            tg_config_type_err(c, tg_config_key_line(c, r, "large_context"), "large_context",
                               "true or false", lc);
        if (json_object_get(r, "backend") && !b)
            tg_config_type_err(c, tg_config_key_line(c, r, "backend"), "backend", "a backend name",
                               json_object_get(r, "backend"));
        else if (b && !tg_config_backend(cfg, b))
            tg_config_verr(c, tg_config_key_line(c, r, "backend"),
                           "%s.backend names unknown backend '%s'", w, b);
        if (human_seen)
            tg_config_verr(c, line, "%s comes after the human rung and can never be reached", w);
        if (!b)
            human_seen = true; /* a rung without a backend is a person */
    }
}

/* eval: {far: {set, min}, monitor: {min_far, days, alpha, check_every}, prices: {MODEL:
 * {prompt, completion}}} — read by `trustgate eval` and the FAR monitor. */
void tg_config_check_eval(struct tg_config_vctx *c, const json_t *root)
{
    static const char *const keys[] = {"far", "monitor", "prices"};
    static const char *const far_keys[] = {"set", "min"};
    static const char *const mon_keys[] = {"min_far", "days", "alpha", "check_every"};
    static const char *const mon_durs[] = {"check_every"};
    static const char *const price_keys[] = {"prompt", "completion"};
    const json_t *sec = tg_config_get_mapping(c, root, "eval", "eval");
    if (!sec)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, sec, "eval", keys, TG_ARRAY_LEN(keys));
    const json_t *far = tg_config_get_mapping(c, sec, "far", "eval.far");
    if (far) {
        tg_config_check_keys(c->errs, c->path, c->lines, far, "eval.far", far_keys,
                             TG_ARRAY_LEN(far_keys));
        const json_t *set = json_object_get(far, "set");
        if (set && !json_is_string(set))
            tg_config_type_err(c, tg_config_key_line(c, far, "set"), "eval.far.set", "a file name",
                               set);
        tg_config_check_number(c, far, "min", "eval.far.min", 0, 1);
    }
    const json_t *mon = tg_config_get_mapping(c, sec, "monitor", "eval.monitor");
    if (mon) {
        tg_config_check_keys(c->errs, c->path, c->lines, mon, "eval.monitor", mon_keys,
                             TG_ARRAY_LEN(mon_keys));
        tg_config_check_number(c, mon, "min_far", "eval.monitor.min_far", 0, 1);
        tg_config_check_number(c, mon, "days", "eval.monitor.days", 1, 90);
        tg_config_check_number(c, mon, "alpha", "eval.monitor.alpha", 0, 1);
        tg_config_check_durations(c, mon, "eval.monitor", mon_durs, 1);
    }
    const json_t *prices = tg_config_get_mapping(c, sec, "prices", "eval.prices");
    const char *model;
    json_t *p;
    json_object_foreach((json_t *)prices, model, p)
    {
        char w[160];
        snprintf(w, sizeof(w), "eval.prices.%s", model);
        if (!json_is_object(p)) {
            tg_config_type_err(c, tg_config_key_line(c, prices, model), w,
                               "a mapping {prompt, completion}", p);
            continue;
        }
        tg_config_check_keys(c->errs, c->path, c->lines, p, w, price_keys,
                             TG_ARRAY_LEN(price_keys));
        char wp[200], wc[200];
        snprintf(wp, sizeof(wp), "%s.prompt", w);
        snprintf(wc, sizeof(wc), "%s.completion", w);
        tg_config_check_number(c, p, "prompt", wp, 0, 1e9);
        tg_config_check_number(c, p, "completion", wc, 0, 1e9);
    }
}

/* audit: {origin} — the name of the log in its signed checkpoints (audit/checkpoint.c). */
void tg_config_check_audit(struct tg_config_vctx *c, const json_t *root)
{
    static const char *const keys[] = {"origin"};
    const json_t *sec = tg_config_get_mapping(c, root, "audit", "audit");
    if (!sec)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, sec, "audit", keys, TG_ARRAY_LEN(keys));
    const json_t *o = json_object_get(sec, "origin");
    if (o && (!json_is_string(o) || !json_string_length(o) || json_string_length(o) > 100 ||
              strpbrk(json_string_value(o), " \t\n+")))
        tg_config_verr(
            c, tg_config_key_line(c, sec, "origin"),
            "audit.origin must be a name of 1 to 100 characters without spaces or '+', such as "
            "bank.example/trustgate");
}

/* fairness: {attributes: [NAME | {name, values}], limit, min_group, alpha, bootstrap, check_every,
 * window} — the live fairness gate (api/governance.c). */
void tg_config_check_fairness(struct tg_config_vctx *c, const json_t *root)
{
    static const char *const keys[] = {"attributes", "limit",       "min_group", "alpha",
                                       "bootstrap",  "check_every", "window"};
    static const char *const akeys[] = {"name", "values"};
    static const char *const durs[] = {"check_every", "window"};
    const json_t *sec = tg_config_get_mapping(c, root, "fairness", "fairness");
    if (!sec)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, sec, "fairness", keys, TG_ARRAY_LEN(keys));
    tg_config_check_number(c, sec, "limit", "fairness.limit", 0, 1);
    tg_config_check_number(c, sec, "min_group", "fairness.min_group", 1, 1e9);
    tg_config_check_number(c, sec, "bootstrap", "fairness.bootstrap", 0, 100000);
    tg_config_check_number(c, sec, "alpha", "fairness.alpha", 1e-6, 0.5);
    tg_config_check_durations(c, sec, "fairness", durs, TG_ARRAY_LEN(durs));
    const json_t *list = tg_config_get_list(c, sec, "attributes", "fairness.attributes");
    size_t i;
    json_t *a;
    if (json_array_size(list) > 8)
        tg_config_verr(c, tg_config_key_line(c, sec, "attributes"),
                       "fairness.attributes: at most 8 attributes");
    json_array_foreach(list, i, a)
    {
        char w[64];
        int line = tg_config_lines_elem(c->lines, list, i);
        snprintf(w, sizeof(w), "fairness.attributes[%zu]", i);
        if (json_is_string(a))
            continue;
        if (!json_is_object(a) || !tg_json_str(a, "name", NULL)) {
            tg_config_type_err(c, line, w, "a name or {name, values: [...]}", a);
            continue;
        }
        tg_config_check_keys(c->errs, c->path, c->lines, a, w, akeys, TG_ARRAY_LEN(akeys));
        size_t k;
        json_t *v;
        json_array_foreach(json_object_get(a, "values"), k, v)
        {
            if (!json_is_string(v))
                tg_config_verr(c, line, "%s.values[%zu] must be a string", w, k);
        }
    }
}

/* experiments: [{name, salt?, holdout?, variants: [{name, share}]}] */
void tg_config_check_experiments(struct tg_config_vctx *c, const json_t *root)
{
    static const char *const keys[] = {"name", "salt", "holdout", "variants"};
    static const char *const vkeys[] = {"name", "share", "release", "config"};
    const char *answering = NULL; /* the experiment whose variants change what answers */
    const json_t *list = tg_config_get_list(c, root, "experiments", "experiments");
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        char w[48];
        int line = tg_config_lines_elem(c->lines, list, i);
        snprintf(w, sizeof(w), "experiments[%zu]", i);
        if (!json_is_object(e)) {
            tg_config_type_err(c, line, w, "a mapping with name and variants", e);
            continue;
        }
        tg_config_check_keys(c->errs, c->path, c->lines, e, w, keys, TG_ARRAY_LEN(keys));
        if (!tg_json_str(e, "name", NULL))
            tg_config_verr(c, line, "%s needs a name", w);
        char h[64];
        snprintf(h, sizeof(h), "%s.holdout", w);
        tg_config_check_number(c, e, "holdout", h, 0, 0.99);
        const json_t *vs = json_object_get(e, "variants");
        if (json_array_size(vs) < 2) {
            tg_config_verr(c, line, "%s needs at least two variants", w);
            continue;
        }
        size_t k;
        json_t *v;
        json_array_foreach(vs, k, v)
        {
            char vw[80];
            snprintf(vw, sizeof(vw), "%s.variants[%zu]", w, k);
            tg_config_check_keys(c->errs, c->path, c->lines, v, vw, vkeys, TG_ARRAY_LEN(vkeys));
            const json_t *sh = json_object_get(v, "share");
            int vline = tg_config_lines_elem(c->lines, vs, k);
            if (!tg_json_str(v, "name", NULL) || !json_is_number(sh) || json_number_value(sh) <= 0)
                tg_config_verr(c, vline, "%s needs a name and a share above 0", vw);
            const json_t *rel = json_object_get(v, "release"), *conf = json_object_get(v, "config");
            if ((rel && !json_is_string(rel)) || (conf && !json_is_string(conf)) || (rel && conf))
                tg_config_verr(
                    c, vline,
                    "%s answers with either release: NAME (a registered release) or config: "
                    "FILE, a string",
                    vw);
            if ((rel || conf) && answering && strcmp(answering, tg_json_str(e, "name", "")) != 0)
                tg_config_verr(c, vline,
                               "%s: only one experiment may change what answers (%s already does)",
                               vw, answering);
            else if (rel || conf)
                answering = tg_json_str(e, "name", "");
        }
    }
}
