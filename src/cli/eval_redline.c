/*
 * eval_redline.c - `trustgate eval redline`: how often questions that hold
 * no red line (out-of-domain requests, general knowledge questions) are
 * sent to a person for a decision the AI may not make.
 *
 * Every question of each set runs as one turn, as `eval far` runs them
 * (tg_cli_eval_run: in process or over HTTP).  A turn is a red line when
 * the gate decided `human_decision` or any rule that fired asks for a human
 * decision; on sets that hold no red line, each one is a false red line.
 * Per set the report gives the count, the rate, its 95 % Wilson upper
 * bound and every question that fired with its intent, rule and trigger,
 * so a rule that fires on nonsense can be read, not guessed at.  Turns
 * held for review (a person checks an answer the AI may give) are counted
 * apart: they are no red line.
 *
 * Sets are JSONL (the question is the field --field names, else the first
 * of question, Question, prompt, text, user_query, message) or TSV (a header naming a
 * `text` column and an `intent` or `label` column, else text<TAB>label);
 * --label keeps only the TSV rows with that label (CLINC150's `oos`).
 */
#include "cli/cli.h"

#include "eval/eval.h"
#include "text/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SETS 16
_Static_assert(MAX_SETS == 16, "the usage of --set says 16");

struct ropts {
    const char *cfg, *json, *label, *field;
    const char *sets[MAX_SETS];
    size_t n_sets;
    int64_t limit, show;
    double max_rate; /* < 0: none */
    struct tg_eval_target tgt;
};

/* --set FILE, once per set. */
static int add_set(void *args, const char *arg)
{
    struct ropts *o = args;
    int rc = 1;
    if (o->n_sets >= MAX_SETS) {
        fprintf(stderr, "trustgate eval redline: at most %d sets\n", MAX_SETS);
        goto out;
    }
    o->sets[o->n_sets++] = arg;
    rc = 0;
out:
    return rc;
}

#define ARG(f) TG_CLI_FIELD(struct ropts, f)
static const struct tg_cli_opt redline_opts[] = {
    {"config", 'c', ARG(cfg), .arg = "FILE", .help = "the deployment", .flags = TG_CLI_REQUIRED},
    {"set", 's', TG_CLI_CALLS, .arg = "FILE", .help = "a set of questions (up to 16)",
     .flags = TG_CLI_REQUIRED, .call = add_set},
    {"label", 'L', ARG(label), .arg = "NAME",
     .help = "keep only the TSV rows labelled NAME (CLINC150: oos)"},
    {"limit", 'l', ARG(limit), .arg = "N", .help = "at most the first N questions of each set",
     .lo = 1, .hi = 1e9},
    {"field", 'f', ARG(field), .arg = "NAME", .help = "the question's field in JSONL sets"},
    TG_CLI_TARGET_OPTS(struct ropts, tgt),
    {"json", 'j', ARG(json), .arg = "FILE", .help = "write the report as JSON (- for stdout)"},
    {"max-rate", 'X', ARG(max_rate), .arg = "X",
     .help = "fail when a set's false red-line rate is above X (0..1)", .lo = 0, .hi = 1},
    {"show", 0, ARG(show), .arg = "N", .help = "questions that fired listed per set (default 20)",
     .lo = 0, .hi = 1e9},
    {0}};
#undef ARG

static const struct tg_cli_cmd redline_cmd = {
    .name = "eval redline",
    .usage = "usage: trustgate eval redline -c FILE --set FILE [--set FILE ...] [--label NAME]\n"
             "       [--limit N] [--data DIR] [--url URL --key KEY] [--model NAME]\n"
             "       [--field NAME] [--json FILE] [--max-rate X] [--show N]\n\n"
             "Run every question of sets that hold no red line (out-of-domain or general\n"
             "questions) and count the turns sent to a person for a decision the AI may not\n"
             "make (decision human_decision, or a rule with a human_decision action that\n"
             "fired): the false red-line rate per set, its 95% upper bound, and the\n"
             "questions that fired with their intent, rule and trigger.  Exit status 1 when\n"
             "a set's rate is above --max-rate.\n\n"
             "Sets: JSONL (--field, else question, Question, prompt, text, user_query or\n"
             "message) or TSV (header with text and intent or label columns, else\n"
             "text<TAB>label).\n",
    .opts = redline_opts,
};

/* ------------------------------------------------------------ reading sets */

/* Field i (0-based) of a tab-separated line, or NULL; *len its length. */
static const char *tsv_field(const char *line, size_t i, size_t *len)
{
    const char *s = line;
    for (; i > 0 && s; i--) {
        s = strchr(s, '\t');
        s = s ? s + 1 : NULL;
    }
    if (!s)
        return NULL;
    *len = strcspn(s, "\t\r\n");
    return s;
}

/* The column of a header line named one of names, or -1. */
static long tsv_column(const char *header, const char *const *names, size_t n_names)
{
    size_t len;
    const char *f;
    for (size_t i = 0; (f = tsv_field(header, i, &len)); i++) {
        for (size_t k = 0; k < n_names; k++) {
            if (strlen(names[k]) == len && memcmp(f, names[k], len) == 0)
                return (long)i;
        }
    }
    return -1;
}

/* Append the questions of a TSV file to out; TG_OK or an error with a message. */
static int read_tsv(FILE *f, const char *path, const char *label, long limit, json_t *out)
{
    static const char *const text_names[] = {"text"}, *const label_names[] = {"intent", "label"};
    char *line = NULL;
    size_t cap = 0, len;
    long text_col = 0, label_col = 1, no = 0, kept = 0;
    int rc = TG_OK;
    while (getline(&line, &cap, f) > 0 && (limit <= 0 || kept < limit)) {
        if (++no == 1 && tsv_column(line, text_names, 1) >= 0) {
            text_col = tsv_column(line, text_names, 1);
            label_col = tsv_column(line, label_names, 2);
            continue;
        }
        const char *text = tsv_field(line, (size_t)text_col, &len);
        size_t llen = 0;
        const char *lab = label_col >= 0 ? tsv_field(line, (size_t)label_col, &llen) : NULL;
        if (!text || !len)
            continue;
        if (label && (!lab || strlen(label) != llen || memcmp(lab, label, llen) != 0))
            continue;
        if (tg_json_push(out, json_stringn(text, len))) {
            fprintf(stderr, "trustgate eval redline: %s:%ld: out of memory\n", path, no);
            rc = TG_E_NOMEM;
            break;
        }
        kept++;
    }
    free(line);
    return rc;
}

/* Append the questions of a JSONL file to out; TG_OK or an error with a message. */
static int read_jsonl(FILE *f, const char *path, const char *field, long limit, json_t *out)
{
    static const char *const fields[] = {"question", "Question",   "prompt",
                                         "text",     "user_query", "message"};
    char *line = NULL;
    size_t cap = 0;
    long no = 0;
    int rc = TG_OK;
    while (getline(&line, &cap, f) > 0 && (limit <= 0 || (long)json_array_size(out) < limit)) {
        no++;
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue;
        json_t *j = json_loads(line, 0, NULL);
        const char *q = field ? tg_json_str(j, field, NULL) : NULL;
        for (size_t i = 0; !field && !q && i < TG_ARRAY_LEN(fields); i++)
            q = tg_json_str(j, fields[i], NULL);
        if (!q) {
            fprintf(stderr,
                    "trustgate eval redline: %s:%ld: each line must be an object with a "
                    "question (%s)\n",
                    path, no,
                    field ? field : "question, Question, prompt, text, user_query or message");
            json_decref(j);
            rc = TG_E_PARSE;
            break;
        }
        rc = tg_json_push(out, json_string(q));
        json_decref(j);
        if (rc) {
            fprintf(stderr, "trustgate eval redline: %s:%ld: out of memory\n", path, no);
            break;
        }
    }
    free(line);
    return rc;
}

/* The questions of one set as a JSON array of strings, or NULL with a message. */
static json_t *read_set(const char *path, const char *label, const char *field, long limit)
{
    FILE *f = fopen(path, "r");
    json_t *out = json_array();
    size_t plen = strlen(path);
    int rc = TG_E_NOMEM;
    if (!f) {
        fprintf(stderr,
                "trustgate eval redline: %s: cannot open (the public sets live in\n"
                "  ../shared/datasets; see docs/EVAL.md)\n",
                path);
        json_decref(out);
        return NULL;
    }
    if (out)
        rc = plen > 4 && strcmp(path + plen - 4, ".tsv") == 0
                 ? read_tsv(f, path, label, limit, out)
                 : read_jsonl(f, path, field, limit, out);
    else
        fprintf(stderr, "trustgate eval redline: %s: out of memory\n", path);
    fclose(f);
    if (rc) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ------------------------------------------------------------ scoring */

/* Does a turn's hit list hold a rule with a human_decision action?  The first such hit, or NULL. */
static const json_t *red_hit(const json_t *hits)
{
    size_t i, k;
    json_t *h, *a;
    json_array_foreach(hits, i, h)
    {
        json_array_foreach(json_object_get(h, "actions"), k, a)
        {
            if (json_is_string(a) && !strcmp(json_string_value(a), "human_decision"))
                return h;
        }
    }
    return NULL;
}

/* The upper end of the 95 % Wilson score interval for k successes in n. */
static double wilson_upper(size_t k, size_t n)
{
    const double z = 1.959964;
    if (!n)
        return 1.0;
    double p = (double)k / (double)n, nn = (double)n, z2 = z * z;
    double centre = p + z2 / (2 * nn);
    double half = z * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
    return TG_MIN((centre + half) / (1 + z2 / nn), 1.0);
}

struct set_result {
    size_t n, red, review;
    double rate, upper;
};

/* Score the turns of one set into r, print it, and return its report (new
 * reference); NULL when out of memory. */
static json_t *score_set(const char *name, const struct tg_far_item *items, size_t n, long show,
                         struct set_result *r)
{
    json_t *fired = json_array();
    long shown = 0;
    int rc = fired ? TG_OK : TG_E_NOMEM;
    memset(r, 0, sizeof(*r));
    r->n = n;
    for (size_t i = 0; !rc && i < n; i++) {
        const struct tg_far_item *it = &items[i];
        const json_t *h = red_hit(it->hits);
        bool red = h || (it->got_decision && !strcmp(it->got_decision, "human_decision"));
        r->review += !red && it->got_decision && !strcmp(it->got_decision, "review");
        if (!red)
            continue;
        r->red++;
        const json_t *trig = json_object_get(h, "trigger");
        rc = tg_json_push(fired, json_pack("{s:s, s:s?, s:s?, s:f, s:s?, s:s?, s:s?}", "question",
                                           it->question, "decision", it->got_decision, "intent",
                                           it->got_intent, "intent_confidence", it->got_confidence,
                                           "rule", tg_json_str(h, "rule", NULL), "trigger_field",
                                           tg_json_str(trig, "field", NULL), "trigger_text",
                                           tg_json_str(trig, "text", NULL)));
    }
    if (rc) {
        json_decref(fired);
        return NULL;
    }
    r->rate = n ? (double)r->red / (double)n : 0;
    r->upper = wilson_upper(r->red, n);
    printf("  %-44s %5zu questions  %4zu red lines  %5.2f%%  (95%% upper %5.2f%%)  review %zu\n",
           name, n, r->red, r->rate * 100, r->upper * 100, r->review);
    size_t i;
    json_t *v;
    json_array_foreach(fired, i, v)
    {
        if (shown++ >= show)
            break;
        const char *tt = tg_json_str(v, "trigger_text", NULL);
        printf("      %s -> %s (%s %.2f)%s%s%s\n", tg_json_str(v, "question", ""),
               tg_json_str(v, "rule", tg_json_str(v, "decision", "?")),
               tg_json_str(v, "intent", "unclassified"),
               json_number_value(json_object_get(v, "intent_confidence")), tt ? " on \"" : "",
               tt ? tt : "", tt ? "\"" : "");
    }
    return json_pack("{s:s, s:I, s:I, s:f, s:f, s:I, s:o}", "set", name, "questions", (json_int_t)n,
                     "red_lines", (json_int_t)r->red, "rate", r->rate, "upper95", r->upper,
                     "review", (json_int_t)r->review, "fired", fired);
}

/* A set's name in the report: its path, and the label kept (TSV) or the field read (JSONL). */
static void set_name(const char *path, const struct ropts *o, char *out, size_t cap)
{
    size_t plen = strlen(path);
    bool tsv = plen > 4 && strcmp(path + plen - 4, ".tsv") == 0;
    const char *which = tsv ? o->label : o->field;
    if (which)
        snprintf(out, cap, "%s [%s]", path, which);
    else
        snprintf(out, cap, "%s", path);
}

/* The questions as items to run; NULL with a message when out of memory. */
static struct tg_far_item *items_for(const json_t *questions, size_t *n)
{
    size_t m = json_array_size(questions);
    struct tg_far_item *v = tg_calloc(m ? m : 1, sizeof(*v));
    bool ok = v != NULL;
    for (size_t i = 0; ok && i < m; i++) {
        char id[48];
        snprintf(id, sizeof(id), "redline-%zu", i + 1);
        v[i].id = tg_strdup(id);
        v[i].question = tg_strdup(json_string_value(json_array_get(questions, i)));
        v[i].decision = tg_strdup("deliver");
        v[i].facts = json_array();
        ok = v[i].id && v[i].question && v[i].decision && v[i].facts;
    }
    if (!ok) {
        fprintf(stderr, "trustgate eval redline: out of memory\n");
        tg_far_free(v, m);
        v = NULL;
    }
    *n = v ? m : 0;
    return v;
}

int tg_cli_eval_redline(int argc, char **argv)
{
    struct ropts o = {.show = 20, .max_rate = -1};
    int rc = tg_cli_parse(&redline_cmd, argc, argv, &o, NULL);
    if (rc != TG_CLI_GO_ON)
        return rc;
    struct tg_config *cfg = tg_cli_load_config(o.cfg);
    if (!cfg)
        return 1;
    tg_log_set_level(TG_LOG_ERROR);
    struct tg_text *tx = NULL;
    char err[256];
    int status = 1;
    bool over = false;
    size_t total = 0, total_red = 0;
    json_t *report = json_array();
    if (!report)
        fprintf(stderr, "trustgate eval redline: out of memory\n");
    if (!report || tg_text_open(&tx, err, sizeof(err)))
        goto out;
    printf("false red lines on questions that hold none (%s)\n", o.tgt.url ? o.tgt.url : o.cfg);
    for (size_t s = 0; s < o.n_sets; s++) {
        char name[1200];
        size_t n = 0;
        struct set_result r;
        json_t *questions = read_set(o.sets[s], o.label, o.field, o.limit);
        struct tg_far_item *items = questions ? items_for(questions, &n) : NULL;
        json_decref(questions);
        if (!items || tg_cli_eval_run(cfg, &o.tgt, items, n, tx)) {
            tg_far_free(items, n);
            goto out;
        }
        set_name(o.sets[s], &o, name, sizeof(name));
        rc = tg_json_push(report, score_set(name, items, n, o.show, &r));
        tg_far_free(items, n);
        if (rc) {
            fprintf(stderr, "trustgate eval redline: out of memory\n");
            goto out;
        }
        total += r.n;
        total_red += r.red;
        over |= o.max_rate >= 0 && r.rate > o.max_rate;
    }
    double rate = total ? (double)total_red / (double)total : 0;
    printf("  %-44s %5zu questions  %4zu red lines  %5.2f%%  (95%% upper %5.2f%%)\n", "all sets",
           total, total_red, rate * 100, wilson_upper(total_red, total) * 100);
    status = 0;
    if (o.json) {
        json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:f, s:O}", "suite", "redline", "target",
                              o.tgt.url ? o.tgt.url : o.cfg, "questions", (json_int_t)total,
                              "red_lines", (json_int_t)total_red, "rate", rate, "sets", report);
        char *str = j ? tg_json_dumps(j, JSON_INDENT(2)) : NULL;
        if (!str)
            fprintf(stderr, "trustgate eval redline: out of memory\n");
        if (!str || tg_cli_write_out(o.json, str, strlen(str)))
            status = 1;
        free(str);
        json_decref(j);
    }
    if (over) {
        printf("  FAILED: a set's false red-line rate is above the maximum %.2f%%\n",
               o.max_rate * 100);
        status = 1;
    }
out:
    json_decref(report);
    tg_text_close(tx);
    tg_config_free(cfg);
    return status;
}
