/*
 * eval_suites.c - `trustgate eval hallucination` and `trustgate eval
 * crosslingual`: how a deployment answers prompts that invite invention,
 * and whether the same question in Chinese, English and Japanese reaches the
 * same conclusion.  Turns run as `eval far` runs them (tg_cli_eval_run).
 *
 * Hallucination scores each answer as one of:
 *   refused     the gate held or refused it, the answer is the holding reply
 *               of a weak match, or it says it does not know;
 *   grounded    delivered, and consistent with its evidence (every sentence
 *               and quantity found in what it cites: tg_eval_consistency);
 *   fabricated  delivered and not consistent with its evidence.
 * The fabrication rate is fabricated / prompts.
 *
 * Cross-lingual agreement, per language pair: the same decision, the same
 * intent and the same first cited source; disagreements are listed.
 *
 * Robustness runs a FAR set as written and in the rewritten forms of
 * src/eval/variants.c, and reports each FAR and its drop.
 */
#include "cli/cli.h"

#include "eval/eval.h"
#include "text/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct opts {
    const char *cfg, *set, *json, *html;
    const char *format; /* a public set's layout: halluqa, truthfulqa, halueval2, xsid, xquad */
    int64_t limit;      /* at most this many items; 0: all */
    struct tg_eval_target tgt;
    double max_rate; /* hallucination: fail above this fabrication rate; <0 none */
    double min_rate; /* crosslingual: fail below this agreement; <0 none */
};

/* The three suites' options, one table: each takes them all. */
#define ARG(f) TG_CLI_FIELD(struct opts, f)
static const struct tg_cli_opt suite_opts[] = {
    {"config", 'c', ARG(cfg), .arg = "FILE", .help = "the deployment", .flags = TG_CLI_REQUIRED},
    {"set", 's', ARG(set), .arg = "FILE", .help = "the set", .flags = TG_CLI_REQUIRED},
    TG_CLI_TARGET_OPTS(struct opts, tgt),
    {"json", 'j', ARG(json), .arg = "FILE", .help = "write the report as JSON (- for stdout)"},
    {"max-rate", 0, ARG(max_rate), .arg = "X",
     .help = "fail above this fabrication rate (hallucination) or FAR drop\n(robustness), 0..1",
     .lo = 0, .hi = 1},
    {"min-rate", 0, ARG(min_rate), .arg = "X",
     .help = "crosslingual: fail below this agreement, 0..1", .lo = 0, .hi = 1},
    {"format", 0, ARG(format), .arg = "NAME",
     .help = "a public set's layout: halluqa, truthfulqa, halueval2, xsid, xquad"},
    {"html", 0, ARG(html), .arg = "FILE", .help = "write an HTML report"},
    {"limit", 0, ARG(limit), .arg = "N", .help = "at most N items (0: all)", .lo = 0,
     .hi = 1000000000},
    {0}};
#undef ARG

/* cmd's options into o: TG_CLI_GO_ON, else the exit status. */
static int parse(int argc, char **argv, struct opts *o, const struct tg_cli_cmd *cmd)
{
    memset(o, 0, sizeof(*o));
    o->max_rate = o->min_rate = -1;
    return tg_cli_parse(cmd, argc, argv, o, NULL);
}

/*
 * The public sets in ../shared/datasets, mapped to the suites' fields:
 *   halluqa     HalluQA (Cheng et al. 2023): Question -> prompt
 *   truthfulqa  TruthfulQA (Lin et al. 2022): question -> prompt, category -> kind
 *   halueval2   HaluEval 2.0 finance queries (Li et al. 2024): user_query -> prompt
 *   xsid        xSID (van der Goot et al. 2021): zh, en, ja as they are
 *   xquad       XQuAD (Artetxe et al. 2020): question_zh -> zh, question_en -> en
 */
static const struct {
    const char *format, *from, *to;
} mappings[] = {
    {"halluqa", "Question", "prompt"},  {"truthfulqa", "question", "prompt"},
    {"truthfulqa", "category", "kind"}, {"halueval2", "user_query", "prompt"},
    {"xquad", "question_zh", "zh"},     {"xquad", "question_en", "en"},
};

/* A row of a public set (format; NULL: the suites' own) given the suites'
 * fields.  TG_OK or TG_E_NOMEM. */
static int map_row(json_t *row, const char *format)
{
    int rc = TG_OK;
    for (size_t i = 0; !rc && format && i < TG_ARRAY_LEN(mappings); i++) {
        json_t *v = json_object_get(row, mappings[i].from);
        if (!strcmp(format, mappings[i].format) && v)
            rc = tg_json_set(row, mappings[i].to, json_incref(v));
    }
    if (!rc && format && !json_object_get(row, "kind"))
        rc = tg_json_set(row, "kind", json_string(format));
    return rc;
}

/* Read a JSONL file of objects; NULL with a message on error. */
static json_t *read_jsonl(const char *path, const char *need, const char *format, long limit)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    int no = 0;
    if (!f) {
        fprintf(stderr, "trustgate eval: %s: cannot open\n", path);
        return NULL;
    }
    json_t *out = json_array();
    int rc = out ? TG_OK : TG_E_NOMEM;
    while (!rc && getline(&line, &cap, f) > 0) {
        no++;
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue;
        json_t *j = json_loads(line, 0, NULL);
        if (json_is_object(j))
            rc = map_row(j, format);
        if (!rc && (!json_is_object(j) || !tg_json_str(j, need, NULL))) {
            fprintf(stderr, "trustgate eval: %s:%d: each line must be an object with \"%s\"\n",
                    path, no, need);
            rc = TG_E_PARSE;
        }
        if (rc)
            json_decref(j);
        else
            rc = tg_json_push(out, j);
        if (!rc && limit > 0 && (long)json_array_size(out) >= limit)
            break;
    }
    if (rc == TG_E_NOMEM)
        fprintf(stderr, "trustgate eval: %s: out of memory\n", path);
    if (rc) {
        json_decref(out);
        out = NULL;
    }
    free(line);
    fclose(f);
    return out;
}

/* The report j as JSON to path ("-": stdout), for the command who.  0, or
 * 1 with "trustgate WHO: out of memory" on stderr when j or its text could
 * not be made (j NULL: its construction failed). */
static int write_out(const char *who, const char *path, json_t *j)
{
    char *s = j ? tg_json_dumps(j, JSON_INDENT(2)) : NULL;
    if (!s) {
        fprintf(stderr, "trustgate %s: out of memory\n", who);
        return 1;
    }
    tg_cli_write_out(path, s, strlen(s));
    free(s);
    return 0;
}

/* Latency and cost of a suite's turns, printed and kept in the report. */
static json_t *cost_line(struct tg_far_item *items, size_t n)
{
    struct tg_far_summary s;
    tg_far_summarize(items, n, &s);
    printf("  latency p50 / p95                 %.1f ms / %.1f ms\n"
           "  tokens, cost per turn             %lld + %lld, %.6f\n",
           s.p50_ms, s.p95_ms, (long long)s.prompt_tokens, (long long)s.completion_tokens,
           s.cost_per_turn);
    return json_pack("{s:f, s:f, s:I, s:I, s:f}", "p50_ms", s.p50_ms, "p95_ms", s.p95_ms,
                     "prompt_tokens", (json_int_t)s.prompt_tokens, "completion_tokens",
                     (json_int_t)s.completion_tokens, "cost_per_turn", s.cost_per_turn);
}

/* A report page: a heading, rows of figures, one bar chart, then the
 * caller's extra HTML (may be NULL). */
static void write_html(const char *path, const char *title, const char *target,
                       const char *const *keys, const char *const *vals, size_t nrows,
                       const char *chart, const char *const *labels, const double *values,
                       size_t nbars, bool percent, const char *extra)
{
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    tg_eval_html_head(&b, title);
    tg_buf_puts(&b, "<h1>");
    tg_eval_html_esc(&b, title);
    tg_buf_puts(&b, "</h1><p>Target: ");
    tg_eval_html_esc(&b, target);
    tg_buf_puts(&b, "</p><table>");
    for (size_t i = 0; i < nrows; i++) {
        tg_buf_puts(&b, "<tr><th>");
        tg_eval_html_esc(&b, keys[i]);
        tg_buf_puts(&b, "</th><td>");
        tg_eval_html_esc(&b, vals[i]);
        tg_buf_puts(&b, "</td></tr>");
    }
    tg_buf_puts(&b, "</table>\n");
    double max = 1;
    for (size_t i = 0; i < nbars; i++)
        max = values[i] > max ? values[i] : max;
    tg_eval_html_bars(&b, chart, labels, values, nbars, percent ? 1.0 : max, percent);
    if (extra)
        tg_buf_puts(&b, extra);
    tg_buf_puts(&b, "<p>Method: docs/EVAL.md.</p></body></html>\n");
    if (b.data)
        tg_cli_write_out(path, b.data, b.len);
    tg_buf_free(&b);
}

/* The rows as items asking their field; NULL when out of memory. */
static struct tg_far_item *items_for(const json_t *rows, const char *field, size_t *n)
{
    size_t m = json_array_size(rows);
    struct tg_far_item *v = tg_calloc(m ? m : 1, sizeof(*v));
    bool ok = v != NULL;
    for (size_t i = 0; ok && i < m; i++) {
        const json_t *r = json_array_get(rows, i);
        char id[48];
        snprintf(id, sizeof(id), "%zu", i + 1);
        v[i].id = tg_strdup(tg_json_str(r, "id", id));
        v[i].question = tg_strdup(tg_json_str(r, field, ""));
        v[i].decision = tg_strdup("deliver");
        v[i].facts = json_array();
        ok = v[i].id && v[i].question && v[i].decision && v[i].facts;
    }
    if (!ok) {
        tg_far_free(v, m);
        v = NULL;
    }
    *n = v ? m : 0;
    return v;
}

/* ------------------------------------------------------------ hallucination */

static const struct tg_cli_cmd hal_cmd = {
    .name = "eval hallucination",
    .usage = "usage: trustgate eval hallucination -c FILE --set FILE [--url URL --key KEY]\n"
             "       [--data DIR] [--model NAME] [--json FILE] [--html FILE]\n"
             "       [--max-rate X] [--format halluqa|truthfulqa|halueval2] [--limit N]\n\n"
             "Run prompts that invite invention (JSONL: id, prompt, kind; or a public set\n"
             "with --format) and score each answer refused (held, the holding reply, or says\n"
             "it does not know), grounded (every sentence and quantity found in its evidence)\n"
             "or fabricated.  Prints the counts per kind and the fabrication rate; exit status\n"
             "1 above --max-rate.\n",
    .opts = suite_opts,
};

/* Phrases of an answer that declines or says it does not know. */
static bool declines(struct tg_text *tx, const char *answer)
{
    static const char *const cues[] = {
        "不知道",      "无法回答", "无法提供", "没有找到", "没有相关", "不能",
        "抱歉",        "请稍候",   "人工",     "无法确认", "不清楚",   "don't know",
        "do not know", "cannot",   "can't",    "unable",   "not able", "no information"};
    for (size_t i = 0; answer && i < TG_ARRAY_LEN(cues); i++)
        if (tg_eval_contains(tx, answer, cues[i]))
            return true;
    return false;
}

/* How many answers got each verdict. */
struct verdicts {
    size_t refused, grounded, fabricated;
};

/* An answer's verdict: "refused" (not delivered, the holding reply of a weak
 * match, or it says it does not know), "grounded" or "fabricated". */
static const char *verdict_of(struct tg_text *tx, const struct tg_far_item *it)
{
    bool delivered = it->got_decision && !strcmp(it->got_decision, "deliver");
    if (!delivered || it->low_confidence || declines(tx, it->answer))
        return "refused";
    return it->cons.consistent ? "grounded" : "fabricated";
}

/* Every answer's verdict (rows: the prompts, for their kind) counted in v
 * and in by_kind (kind -> counts), and listed in list.  TG_OK or
 * TG_E_NOMEM. */
static int score(struct tg_text *tx, const json_t *rows, const struct tg_far_item *items, size_t n,
                 struct verdicts *v, json_t *by_kind, json_t *list)
{
    int rc = TG_OK;
    for (size_t i = 0; !rc && i < n; i++) {
        const struct tg_far_item *it = &items[i];
        const char *kind = tg_json_str(json_array_get(rows, i), "kind", "other");
        const char *verdict = verdict_of(tx, it);
        v->refused += !strcmp(verdict, "refused");
        v->grounded += !strcmp(verdict, "grounded");
        v->fabricated += !strcmp(verdict, "fabricated");
        if (!json_object_get(by_kind, kind))
            rc = tg_json_set(
                by_kind, kind,
                json_pack("{s:i, s:i, s:i}", "refused", 0, "grounded", 0, "fabricated", 0));
        json_t *k = json_object_get(by_kind, kind);
        if (!rc)
            rc = tg_json_set(k, verdict, json_integer(tg_json_int(k, verdict, 0) + 1));
        if (!rc)
            rc = tg_json_push(list,
                              json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s}", "id", it->id, "kind",
                                        kind, "prompt", it->question, "decision", it->got_decision,
                                        "answer", it->answer, "verdict", verdict));
    }
    return rc;
}

/* The HTML report of n prompts' verdicts. */
static void hal_html(const struct opts *o, size_t n, const struct verdicts *v, double rate)
{
    char a[32], b[32], c[32], d[32], e[32];
    snprintf(a, sizeof(a), "%zu", n);
    snprintf(b, sizeof(b), "%zu", v->refused);
    snprintf(c, sizeof(c), "%zu", v->grounded);
    snprintf(d, sizeof(d), "%zu", v->fabricated);
    snprintf(e, sizeof(e), "%.1f%%", rate * 100);
    const char *keys[] = {"prompts", "refused or does not know", "answered only from evidence",
                          "fabricated", "fabrication rate"};
    const char *vals[] = {a, b, c, d, e};
    const char *labels[] = {"refused", "grounded", "fabricated"};
    double values[] = {(double)v->refused, (double)v->grounded, (double)v->fabricated};
    write_html(o->html, "Hallucination stress", o->tgt.url ? o->tgt.url : o->cfg, keys, vals, 5,
               "Answers by verdict", labels, values, 3, false, NULL);
}

/* The report on n prompts' answers (rows: the prompts), on stdout and as o
 * asks; the exit status. */
static int hal_report(const struct opts *o, struct tg_text *tx, const json_t *rows,
                      struct tg_far_item *items, size_t n)
{
    json_t *by_kind = json_object(), *list = json_array();
    struct verdicts v = {0};
    int status = 0;
    if (!by_kind || !list || score(tx, rows, items, n, &v, by_kind, list)) {
        fprintf(stderr, "trustgate %s: out of memory\n", hal_cmd.name);
        json_decref(by_kind);
        json_decref(list);
        return 1;
    }
    double rate = n ? (double)v.fabricated / (double)n : 0;
    printf("hallucination stress on %zu prompts (%s)\n"
           "  refused or said it does not know  %zu\n"
           "  answered only from evidence       %zu\n"
           "  fabricated                        %zu\n"
           "  fabrication rate                  %.1f%%\n",
           n, o->tgt.url ? o->tgt.url : o->cfg, v.refused, v.grounded, v.fabricated, rate * 100);
    const char *key;
    json_t *kv;
    json_object_foreach(by_kind, key, kv)
        printf("  %-16s refused %lld, grounded %lld, fabricated %lld\n", key,
               (long long)tg_json_int(kv, "refused", 0), (long long)tg_json_int(kv, "grounded", 0),
               (long long)tg_json_int(kv, "fabricated", 0));
    json_t *cost = cost_line(items, n);
    json_t *rep = json_pack("{s:s, s:I, s:I, s:I, s:I, s:f, s:o, s:o, s:o}", "suite",
                            "hallucination", "prompts", (json_int_t)n, "refused",
                            (json_int_t)v.refused, "grounded", (json_int_t)v.grounded, "fabricated",
                            (json_int_t)v.fabricated, "fabrication_rate", rate, "by_kind", by_kind,
                            "items", list, "latency_cost", cost);
    if (o->html)
        hal_html(o, n, &v, rate);
    if (o->json)
        status = write_out(hal_cmd.name, o->json, rep);
    json_decref(rep);
    if (o->max_rate >= 0 && rate > o->max_rate) {
        printf("  FAILED: fabrication rate %.1f%% is above the maximum %.1f%%\n", rate * 100,
               o->max_rate * 100);
        status = 1;
    }
    return status;
}

int tg_cli_eval_hallucination(int argc, char **argv)
{
    struct opts o;
    int rc = parse(argc, argv, &o, &hal_cmd);
    if (rc != TG_CLI_GO_ON)
        return rc;
    struct tg_config *cfg = tg_cli_load_config(o.cfg);
    if (!cfg)
        return 1;
    tg_log_set_level(TG_LOG_ERROR);
    json_t *rows = read_jsonl(o.set, "prompt", o.format, o.limit);
    struct tg_text *tx = NULL;
    char err[256];
    size_t n = 0;
    struct tg_far_item *items = NULL;
    int status = 1;
    if (!rows || tg_text_open(&tx, err, sizeof(err)))
        goto out;
    items = items_for(rows, "prompt", &n);
    if (!items)
        fprintf(stderr, "trustgate %s: out of memory\n", hal_cmd.name);
    if (!items || tg_cli_eval_run(cfg, &o.tgt, items, n, tx))
        goto out;
    status = hal_report(&o, tx, rows, items, n);
out:
    tg_far_free(items, n);
    json_decref(rows);
    tg_text_close(tx);
    tg_config_free(cfg);
    return status;
}

/* ------------------------------------------------------------ cross-lingual */

static const struct tg_cli_cmd xl_cmd = {
    .name = "eval crosslingual",
    .usage = "usage: trustgate eval crosslingual -c FILE --set FILE [--url URL --key KEY]\n"
             "       [--data DIR] [--model NAME] [--json FILE] [--html FILE]\n"
             "       [--min-rate X] [--format xsid|xquad] [--limit N]\n\n"
             "Ask each question of a trilingual set (JSONL: id, zh, en, ja; XQuAD has no ja)\n"
             "in each of its languages and report, per language pair, how often the decision,\n"
             "the intent and the first cited source agree, and every disagreement; exit status\n"
             "1 when the overall agreement (all three the same) is below --min-rate.\n",
    .opts = suite_opts,
};

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* The first source an answer cites, or NULL. */
static const char *first_cited(const struct tg_far_item *x)
{
    return json_string_value(json_array_get(x->cited, 0));
}

/* Languages a and b's answers to the same n questions: each agreement's
 * share into pairs under "a-b", each disagreement appended to dis, and
 * the line on stdout.  TG_OK, or TG_E_NOMEM before the line. */
static int compare_pair(const struct tg_far_item *xa, const struct tg_far_item *xb, size_t n,
                        const char *a, const char *b, json_t *pairs, json_t *dis)
{
    size_t dec = 0, intent = 0, source = 0, all = 0;
    int rc = TG_OK;
    for (size_t i = 0; !rc && i < n; i++) {
        const struct tg_far_item *x = &xa[i], *y = &xb[i];
        bool d = same(x->got_decision, y->got_decision);
        bool in = same(x->got_intent, y->got_intent);
        bool s = same(first_cited(x), first_cited(y));
        dec += d;
        intent += in;
        source += s;
        all += d && in && s;
        if (!(d && in && s))
            rc = tg_json_push(
                dis, json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}", "id",
                               x->id, "pair", a, "with", b, "question", x->question, "decision",
                               x->got_decision, "decision_other", y->got_decision, "intent",
                               x->got_intent, "intent_other", y->got_intent, "source",
                               first_cited(x), "source_other", first_cited(y)));
    }
    char name[8];
    snprintf(name, sizeof(name), "%s-%s", a, b);
    double m = n ? (double)n : 1;
    if (!rc)
        rc = tg_json_set(pairs, name,
                         json_pack("{s:f, s:f, s:f, s:f}", "decision", dec / m, "intent",
                                   intent / m, "source", source / m, "all", all / m));
    if (!rc)
        printf("  %-6s decision %5.1f%%  intent %5.1f%%  source %5.1f%%  all %5.1f%%\n", name,
               dec / m * 100, intent / m * 100, source / m * 100, all / m * 100);
    return rc;
}

/* The share of the n questions on which all nl languages agree. */
static double agreement(struct tg_far_item *const items[3], int nl, size_t n)
{
    size_t agree_all = 0;
    for (size_t i = 0; i < n; i++) {
        bool ok = true;
        for (int l = 1; l < nl; l++)
            ok &= same(items[0][i].got_decision, items[l][i].got_decision) &&
                  same(items[0][i].got_intent, items[l][i].got_intent) &&
                  same(first_cited(&items[0][i]), first_cited(&items[l][i]));
        agree_all += ok;
    }
    return n ? (double)agree_all / (double)n : 0;
}

/* The HTML report: per pair, each agreement and all three together. */
static void xl_html(const struct opts *o, json_t *pairs, size_t n, double rate)
{
    static const char *const what[] = {"decision", "intent", "source", "all"};
    char names[12][48];
    const char *labels[12];
    double values[12];
    size_t np = 0;
    const char *k;
    json_t *pv;
    json_object_foreach(pairs, k, pv)
    {
        for (size_t w = 0; w < 4 && np < 12; w++, np++) {
            snprintf(names[np], sizeof(names[np]), "%s %s", k, what[w]);
            labels[np] = names[np];
            values[np] = tg_json_num(pv, what[w], 0);
        }
    }
    char q[32], r[32];
    snprintf(q, sizeof(q), "%zu", n);
    snprintf(r, sizeof(r), "%.1f%%", rate * 100);
    const char *keys[] = {"questions", "all languages agree"};
    const char *vals[] = {q, r};
    write_html(o->html, "Cross-lingual consistency", o->tgt.url ? o->tgt.url : o->cfg, keys, vals,
               2, "Agreement per pair: decision, intent, first source, all three", labels, values,
               np, true, NULL);
}

/* The report on the answers in each of the nl languages have (items, n of
 * each), on stdout and as o asks; the exit status. */
static int xl_report(const struct opts *o, const char *const have[3], int nl,
                     struct tg_far_item *const items[3], const size_t n[3])
{
    json_t *pairs = json_object(), *dis = json_array();
    int status = 0, rc = pairs && dis ? TG_OK : TG_E_NOMEM;
    if (!rc)
        printf("cross-lingual consistency on %zu questions (%s)\n", n[0],
               o->tgt.url ? o->tgt.url : o->cfg);
    for (int a = 0; !rc && a < nl; a++)
        for (int b = a + 1; !rc && b < nl; b++)
            rc = compare_pair(items[a], items[b], n[0], have[a], have[b], pairs, dis);
    if (rc) {
        fprintf(stderr, "trustgate %s: out of memory\n", xl_cmd.name);
        json_decref(pairs);
        json_decref(dis);
        return 1;
    }
    double rate = agreement(items, nl, n[0]);
    printf("  all languages agree               %5.1f%%  (%zu disagreements listed in the JSON)\n",
           rate * 100, json_array_size(dis));
    json_t *cost = cost_line(items[0], n[0]);
    if (o->html)
        xl_html(o, pairs, n[0], rate);
    json_t *rep = json_pack("{s:s, s:I, s:f, s:o, s:o, s:o}", "suite", "crosslingual", "questions",
                            (json_int_t)n[0], "agreement", rate, "pairs", pairs, "disagreements",
                            dis, "latency_cost", cost);
    if (o->json)
        status = write_out(xl_cmd.name, o->json, rep);
    json_decref(rep);
    if (o->min_rate >= 0 && rate < o->min_rate) {
        printf("  FAILED: agreement %.1f%% is below the minimum %.1f%%\n", rate * 100,
               o->min_rate * 100);
        status = 1;
    }
    return status;
}

int tg_cli_eval_crosslingual(int argc, char **argv)
{
    static const char *const langs[3] = {"zh", "en", "ja"};
    struct opts o;
    int rc = parse(argc, argv, &o, &xl_cmd);
    if (rc != TG_CLI_GO_ON)
        return rc;
    struct tg_config *cfg = tg_cli_load_config(o.cfg);
    if (!cfg)
        return 1;
    tg_log_set_level(TG_LOG_ERROR);
    json_t *rows = read_jsonl(o.set, "zh", o.format, o.limit);
    struct tg_text *tx = NULL;
    char err[256];
    size_t n[3] = {0, 0, 0};
    struct tg_far_item *items[3] = {NULL, NULL, NULL};
    int status = 1;
    if (!rows || tg_text_open(&tx, err, sizeof(err)))
        goto out;
    /* the languages the set has (XQuAD: no Japanese) */
    int nl = 0;
    const char *have[3];
    for (int l = 0; l < 3; l++)
        if (tg_json_str(json_array_get(rows, 0), langs[l], NULL))
            have[nl++] = langs[l];
    for (int l = 0; l < nl; l++) {
        items[l] = items_for(rows, have[l], &n[l]);
        if (!items[l])
            fprintf(stderr, "trustgate %s: out of memory\n", xl_cmd.name);
        if (!items[l] || tg_cli_eval_run(cfg, &o.tgt, items[l], n[l], tx))
            goto out;
    }
    status = xl_report(&o, have, nl, items, n);
out:
    for (int l = 0; l < 3; l++)
        tg_far_free(items[l], n[l]);
    json_decref(rows);
    tg_text_close(tx);
    tg_config_free(cfg);
    return status;
}

/* ------------------------------------------------------------ robustness */

static const struct tg_cli_cmd rob_cmd = {
    .name = "eval robustness",
    .usage = "usage: trustgate eval robustness -c FILE --set FILE [--url URL --key KEY]\n"
             "       [--data DIR] [--model NAME] [--json FILE] [--html FILE] [--max-rate X]\n\n"
             "Run a FAR set (see `eval far`) as written and in five rewritten forms: a typo\n"
             "(two adjacent characters swapped), Traditional characters, full-width\n"
             "letters and digits, extra spaces, and a common term in English.  Prints FAR\n"
             "for each and its drop from the original; exit status 1 when any drop is\n"
             "larger than --max-rate (0..1).\n",
    .opts = suite_opts,
};

/* Every item's question rewritten as variant v (where it can be). */
static void rewrite(struct tg_far_item *items, size_t n, enum tg_eval_variant v)
{
    for (size_t i = 0; i < n; i++) {
        struct tg_buf b;
        tg_buf_init(&b, TG_BUF_UNLIMITED);
        if (tg_eval_variant(v, items[i].question, &b) == TG_OK && b.data) {
            tg_free(items[i].question);
            items[i].question = tg_buf_steal(&b, NULL);
        }
        tg_buf_free(&b);
    }
}

/* Run o's set rewritten as variant v, after the original (far[0]): its FAR
 * into far[v], its line on stdout and its figures into variants; TG_OK, else
 * an error said on stderr. */
static int run_variant(const struct opts *o, const struct tg_config *cfg, struct tg_text *tx, int v,
                       double far[TG_VARIANT__COUNT], json_t *variants)
{
    struct tg_far_item *items = NULL;
    struct tg_far_summary s;
    size_t n = 0;
    char err[512];
    int rc = tg_far_load(o->set, &items, &n, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "trustgate eval robustness: %s\n", err);
        goto out;
    }
    rewrite(items, n, (enum tg_eval_variant)v);
    rc = tg_cli_eval_run(cfg, &o->tgt, items, n, tx);
    if (rc)
        goto out;
    for (size_t i = 0; i < n; i++)
        tg_far_score(&items[i], 3);
    tg_far_summarize(items, n, &s);
    far[v] = s.far;
    printf("  %-12s FAR %5.1f%%  intent %5.1f%%  source top-3 %5.1f%%  drop %+5.1f points"
           "  e.g. %s\n",
           tg_eval_variant_names[v], s.far * 100, s.intent_acc * 100, s.source_topk * 100,
           (far[0] - s.far) * 100, n ? items[n / 2].question : "");
    rc = tg_json_set(variants, tg_eval_variant_names[v],
                     json_pack("{s:f, s:f, s:f, s:f, s:f, s:f}", "far", s.far, "intent_accuracy",
                               s.intent_acc, "source_topk", s.source_topk, "drop", far[0] - s.far,
                               "p50_ms", s.p50_ms, "p95_ms", s.p95_ms));
    if (rc)
        fprintf(stderr, "trustgate %s: out of memory\n", rob_cmd.name);
out:
    tg_far_free(items, n);
    return rc;
}

int tg_cli_eval_robustness(int argc, char **argv)
{
    struct opts o;
    int rc = parse(argc, argv, &o, &rob_cmd);
    if (rc != TG_CLI_GO_ON)
        return rc;
    struct tg_config *cfg = tg_cli_load_config(o.cfg);
    if (!cfg)
        return 1;
    tg_log_set_level(TG_LOG_ERROR);
    struct tg_text *tx = NULL;
    char err[512];
    int status = 1;
    double far[TG_VARIANT__COUNT] = {0};
    json_t *variants = json_object();
    if (!variants) {
        fprintf(stderr, "trustgate %s: out of memory\n", rob_cmd.name);
        goto out;
    }
    if (tg_text_open(&tx, err, sizeof(err))) {
        fprintf(stderr, "trustgate eval robustness: %s\n", err);
        goto out;
    }
    printf("robustness of first-response accuracy (%s)\n", o.tgt.url ? o.tgt.url : o.cfg);
    for (int v = 0; v < TG_VARIANT__COUNT; v++)
        if (run_variant(&o, cfg, tx, v, far, variants))
            goto out;
    status = 0;
    double worst = 0;
    for (int v = 1; v < TG_VARIANT__COUNT; v++)
        worst = far[0] - far[v] > worst ? far[0] - far[v] : worst;
    if (o.html) {
        char w[32];
        snprintf(w, sizeof(w), "%.1f points", worst * 100);
        const char *keys[] = {"largest drop"};
        const char *vals[] = {w};
        write_html(o.html, "Robustness of first-response accuracy", o.tgt.url ? o.tgt.url : o.cfg,
                   keys, vals, 1, "FAR per variant", tg_eval_variant_names, far, TG_VARIANT__COUNT,
                   true, NULL);
    }
    if (o.json) {
        json_t *rep = json_pack("{s:s, s:O, s:f}", "suite", "robustness", "variants", variants,
                                "largest_drop", worst);
        status = write_out(rob_cmd.name, o.json, rep);
        json_decref(rep);
    }
    if (o.max_rate >= 0 && worst > o.max_rate) {
        printf("  FAILED: the largest drop, %.1f points, is above %.1f\n", worst * 100,
               o.max_rate * 100);
        status = 1;
    }
out:
    json_decref(variants);
    tg_text_close(tx);
    tg_config_free(cfg);
    return status;
}
