/*
 * cost_cmd.c - `trustgate cost report`: what answering costs, from the turn
 * records in the audit log, priced with the config's eval.prices (per model:
 * {prompt, completion} per 1,000 tokens).
 *
 * Per model and rung: turns, tokens and cost, cost per turn; overall, the
 * cost per conversation resolved without a person (no turn of it held,
 * handed off or decided by a person).  With --baseline and --candidate (two
 * `eval far --json` reports of the release in force and a candidate), the
 * trade-off product owners ask for: the change in FAR against the change in
 * cost per query, and the break-even: the value a correct first response must
 * be worth (--value, in the price table's currency) for the candidate to pay.
 */
#include "cli/cli.h"

#include "eval/eval.h"

#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cost_args {
    const char *cfg, *data, *base, *cand;
    int64_t days;
    double value;
    bool as_json;
};

#define ARG(f) TG_CLI_FIELD(struct cost_args, f)
static const struct tg_cli_opt cost_opts[] = {
    {"config", 'c', ARG(cfg), .arg = "FILE", .help = "the deployment (store, eval.prices)",
     .flags = TG_CLI_REQUIRED},
    {"data", 'd', ARG(data), .arg = "DIR", .help = "data directory, overrides the config"},
    {"days", 'n', ARG(days), .arg = "N", .help = "the last N days of turns (default 30)", .lo = 1,
     .hi = 36500},
    {"baseline", 'b', ARG(base), .arg = "FAR.json",
     .help = "`eval far --json` of the release in force"},
    {"candidate", 'k', ARG(cand), .arg = "FAR.json", .help = "`eval far --json` of a candidate"},
    {"value", 'v', ARG(value), .arg = "V",
     .help = "what a correct first response is worth, for the break-even", .lo = 0, .hi = 1e12},
    {"json", 'j', ARG(as_json), .help = "print one JSON object"},
    {0}};
#undef ARG

static const struct tg_cli_cmd cost_cmd = {
    .name = "cost",
    .usage = "usage: trustgate cost report -c FILE [--data DIR] [--days N] [--json]\n"
             "       [--baseline FAR.json --candidate FAR.json [--value V]]\n\n"
             "Cost per turn by model and rung, and per conversation resolved without a person,\n"
             "over the last N days (default 30) of the deployment's turns, priced with\n"
             "eval.prices.  With two `trustgate eval far --json` reports: the change in FAR\n"
             "against the change in cost per query, and the break-even value of a correct\n"
             "first response.\n",
    .opts = cost_opts,
    .max_args = TG_CLI_MANY,
};

struct acc {
    const struct tg_eval_conf *prices;
    int64_t since_ms;
    json_t *by;    /* "model|rung" -> {turns, prompt, completion, cost} */
    json_t *convs; /* conversation -> resolved (bool) */
    double cost;
    int64_t turns;
};

/* One turn's usage added to its model and rung's entry e.  TG_OK or
 * TG_E_NOMEM (e then partly updated). */
static int add_usage(json_t *e, int64_t p, int64_t c, double cost)
{
    int rc = tg_json_set(e, "turns", json_integer(tg_json_int(e, "turns", 0) + 1));
    if (!rc)
        rc = tg_json_set(e, "prompt_tokens", json_integer(tg_json_int(e, "prompt_tokens", 0) + p));
    if (!rc)
        rc = tg_json_set(e, "completion_tokens",
                         json_integer(tg_json_int(e, "completion_tokens", 0) + c));
    if (!rc)
        rc = tg_json_set(e, "cost", json_real(tg_json_num(e, "cost", 0) + cost));
    return rc;
}

/* A leaf of the audit log: a turn's usage into the accumulator arg.  0, or
 * TG_E_NOMEM (which stops the scan). */
static int leaf_cb(void *arg, const struct tg_audit_row *row)
{
    struct acc *a = arg;
    json_t *j = json_loadb(row->data, row->len, 0, NULL);
    if (!j || strcmp(tg_json_str(j, "kind", ""), "turn") != 0 ||
        tg_json_int(j, "created_ms", 0) < a->since_ms) {
        json_decref(j);
        return 0;
    }
    const char *model = tg_json_str(j, "upstream_model", tg_json_str(j, "backend", "none"));
    const char *rung = tg_json_str(j, "rung", "-");
    const json_t *u = json_object_get(j, "usage");
    int64_t p = tg_json_int(u, "prompt_tokens", 0), c = tg_json_int(u, "completion_tokens", 0);
    double cost = tg_eval_price(a->prices, model, p, c);
    char key[256];
    snprintf(key, sizeof(key), "%s|%s", model, rung);
    int rc = TG_OK;
    if (!json_object_get(a->by, key))
        rc = tg_json_set(a->by, key,
                         json_pack("{s:s, s:s, s:i, s:i, s:i, s:f}", "model", model, "rung", rung,
                                   "turns", 0, "prompt_tokens", 0, "completion_tokens", 0, "cost",
                                   0.0));
    if (!rc)
        rc = add_usage(json_object_get(a->by, key), p, c, cost);
    const char *conv = tg_json_str(j, "conversation_id", "");
    bool by_ai = !strcmp(tg_json_str(j, "decision", ""), "deliver");
    const json_t *prev = json_object_get(a->convs, conv);
    if (!rc)
        rc = tg_json_set(a->convs, conv, json_boolean((prev ? json_is_true(prev) : true) && by_ai));
    if (!rc) {
        a->cost += cost;
        a->turns++;
    }
    json_decref(j);
    return rc;
}

/* What the report says: the period, its turns and conversations, the costs. */
struct totals {
    long days;
    int64_t turns;
    size_t resolved;
    double cost, per_turn, per_resolved;
    double value; /* of a correct first response, for the break-even; < 0: not given */
};

/*
 * The trade-off of a candidate's evaluation (cand, `trustgate eval --json`
 * output) against a baseline's, or NULL with *failed when a file cannot be
 * read or out of memory (reported).
 */
static json_t *tradeoff(const char *base, const char *cand, bool *failed)
{
    json_t *b = json_load_file(base, 0, NULL), *n = json_load_file(cand, 0, NULL);
    if (!b || !n) {
        fprintf(stderr, "trustgate cost: cannot read %s\n", !b ? base : cand);
        json_decref(b);
        json_decref(n);
        *failed = true;
        return NULL;
    }
    double dfar = tg_json_num(n, "far", 0) - tg_json_num(b, "far", 0);
    double dcost = tg_json_num(json_object_get(n, "usage"), "cost_per_turn", 0) -
                   tg_json_num(json_object_get(b, "usage"), "cost_per_turn", 0);
    /* break-even: the value of one more correct first response that pays the extra cost */
    double breakeven = dfar > 0 ? dcost / dfar : -1;
    json_t *trade = json_pack("{s:f, s:f, s:f, s:f, s:f}", "far_baseline", tg_json_num(b, "far", 0),
                              "far_candidate", tg_json_num(n, "far", 0), "delta_far", dfar,
                              "delta_cost_per_query", dcost, "breakeven_value", breakeven);
    if (!trade) {
        fprintf(stderr, "trustgate cost: out of memory\n");
        *failed = true;
    }
    json_decref(b);
    json_decref(n);
    return trade;
}

/* The report as JSON on stdout; takes rows and trade.  0, or 1 with the
 * reason on stderr when out of memory. */
static int print_json(const struct totals *t, json_t *rows, json_t *trade)
{
    json_t *o =
        json_pack("{s:I, s:I, s:I, s:f, s:f, s:f, s:o, s:o?}", "days", (json_int_t)t->days, "turns",
                  (json_int_t)t->turns, "resolved_conversations", (json_int_t)t->resolved, "cost",
                  t->cost, "cost_per_turn", t->per_turn, "cost_per_resolved_conversation",
                  t->per_resolved, "by_model_rung", rows, "tradeoff", trade);
    char *s = o ? tg_json_dumps(o, JSON_INDENT(2)) : NULL;
    int status = s ? 0 : 1;
    if (s)
        printf("%s\n", s);
    else
        fprintf(stderr, "trustgate cost: out of memory\n");
    free(s);
    json_decref(o);
    return status;
}

/* The report as text on stdout; takes rows and trade. */
static void print_text(const struct totals *t, json_t *rows, json_t *trade)
{
    size_t i;
    json_t *v;
    printf("cost over the last %ld days: %lld turns, %zu conversations resolved without a "
           "person\n",
           t->days, (long long)t->turns, t->resolved);
    json_array_foreach(rows, i, v) printf(
        "  %-24s rung %-10s turns %-7lld tokens %lld + %lld  cost %.6f (%.6f per turn)\n",
        tg_json_str(v, "model", ""), tg_json_str(v, "rung", ""),
        (long long)tg_json_int(v, "turns", 0), (long long)tg_json_int(v, "prompt_tokens", 0),
        (long long)tg_json_int(v, "completion_tokens", 0), tg_json_num(v, "cost", 0),
        tg_json_int(v, "turns", 0) ? tg_json_num(v, "cost", 0) / (double)tg_json_int(v, "turns", 1)
                                   : 0);
    printf("  total %.6f: %.6f per turn, %.6f per resolved conversation\n", t->cost, t->per_turn,
           t->per_resolved);
    if (trade) {
        double br = tg_json_num(trade, "breakeven_value", -1);
        printf("  candidate vs baseline: FAR %+.1f points, cost per query %+.6f\n",
               tg_json_num(trade, "delta_far", 0) * 100,
               tg_json_num(trade, "delta_cost_per_query", 0));
        if (br >= 0)
            printf("  break-even: a correct first response must be worth %.6f%s\n", br,
                   t->value < 0     ? ""
                   : t->value >= br ? " (it is: the candidate pays)"
                                    : " (it is not: the candidate costs more than it earns)");
        else
            printf("  break-even: none (the candidate does not improve FAR)\n");
    }
    json_decref(rows);
    json_decref(trade);
}

/* The cost report over the store's audit log; the exit status. */
static int report(struct tg_store *st, const struct tg_config *cfg, struct totals *t,
                  const char *base, const char *cand, bool as_json)
{
    int status = 1;
    struct acc a = {
        .prices = &cfg->eval,
        .since_ms = tg_clock_wall_ms() - t->days * 86400000LL,
        .by = json_object(),
        .convs = json_object(),
    };
    int rc = a.by && a.convs ? TG_OK : TG_E_NOMEM;
    if (!rc)
        rc = tg_store_audit_scan(st, 0, leaf_cb, &a);
    if (rc) {
        fprintf(stderr, "trustgate cost: %s\n",
                rc == TG_E_NOMEM ? "out of memory" : "cannot read the audit log");
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(a.convs, k, v) t->resolved += json_is_true(v);
    t->turns = a.turns;
    t->cost = a.cost;
    t->per_turn = a.turns ? a.cost / (double)a.turns : 0;
    t->per_resolved = t->resolved ? a.cost / (double)t->resolved : 0;
    json_t *rows = json_array(), *trade = NULL;
    rc = rows ? TG_OK : TG_E_NOMEM;
    json_object_foreach(a.by, k, v)
    {
        if (!rc)
            rc = tg_json_push(rows, json_incref(v));
    }
    if (rc) {
        fprintf(stderr, "trustgate cost: out of memory\n");
        json_decref(rows);
        goto out;
    }
    bool failed = false;
    if (base && !(trade = tradeoff(base, cand, &failed)) && failed) {
        json_decref(rows);
        goto out;
    }
    if (as_json) {
        status = print_json(t, rows, trade);
    } else {
        print_text(t, rows, trade);
        status = 0;
    }
out:
    json_decref(a.by);
    json_decref(a.convs);
    return status;
}

int tg_cli_cost(int argc, char **argv)
{
    struct cost_args a = {.days = 30, .value = -1};
    struct tg_config *cfg = NULL;
    struct tg_store *st = NULL;
    char dir[4096];
    int status;
    if (argc < 2 || strcmp(argv[1], "report") != 0)
        return tg_cli_usage_or_help(&cost_cmd, argc, argv);
    status = tg_cli_parse(&cost_cmd, argc - 1, argv + 1, &a, NULL);
    if (status != TG_CLI_GO_ON)
        return status;
    if (!a.base != !a.cand)
        return tg_cli_usage_error(&cost_cmd);
    status = 1;
    cfg = tg_cli_load_config(a.cfg);
    if (!cfg)
        goto out;
    tg_cli_data_dir(cfg, a.data, dir, sizeof(dir));
    /* reading only: a running server may hold the directory; never create one */
    if (access(dir, F_OK) != 0) {
        fprintf(stderr, "trustgate cost: no store in %s\n", dir);
        goto out;
    }
    st = tg_cli_open_store(cfg, a.data, "cost");
    if (!st)
        goto out;
    struct totals t = {.days = (long)a.days, .value = a.value};
    status = report(st, cfg, &t, a.base, a.cand, a.as_json);
out:
    tg_store_close(st);
    tg_config_free(cfg);
    return status;
}
