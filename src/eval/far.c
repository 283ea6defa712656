/*
 * far.c - first-response accuracy: the labelled set, the score of each
 * turn, the summary and the report (JSON, and HTML with inline SVG charts
 * that need no network to view).  See eval.h.
 */
#include "eval/eval.h"

#include "core/jw.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const tg_far_stages[5] = {"understand", "retrieve", "generate", "gate", "error"};

/* ------------------------------------------------------------ loading */

static char *dup_or_null(const char *s)
{
    return s ? tg_strdup(s) : NULL;
}

int tg_far_load(const char *path, struct tg_far_item **items, size_t *n, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, count = 0, alloc = 0;
    struct tg_far_item *v = NULL;
    int rc = TG_OK, lineno = 0;
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return TG_E_IO;
    }
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue;
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        const char *q = tg_json_str(j, "question", NULL);
        if (!json_is_object(j) || !q || !q[0]) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno,
                     j ? "an item needs a \"question\"" : je.text);
            json_decref(j);
            rc = TG_E_PARSE;
            break;
        }
        const json_t *facts = json_object_get(j, "facts");
        if (facts && !json_is_array(facts)) {
            snprintf(err, errlen, "%s:%d: \"facts\" must be a list of strings", path, lineno);
            json_decref(j);
            rc = TG_E_PARSE;
            break;
        }
        if (tg_grow(&v, &alloc, count, sizeof(*v), 64)) {
            json_decref(j);
            rc = TG_E_NOMEM;
            break;
        }
        struct tg_far_item *it = &v[count++];
        memset(it, 0, sizeof(*it));
        char idbuf[32];
        snprintf(idbuf, sizeof(idbuf), "line-%d", lineno);
        it->id = tg_strdup(tg_json_str(j, "id", idbuf));
        it->question = tg_strdup(q);
        it->intent = dup_or_null(tg_json_str(j, "intent", NULL));
        it->source = dup_or_null(tg_json_str(j, "source", NULL));
        it->decision = tg_strdup(tg_json_str(j, "decision", "deliver"));
        it->facts = facts ? json_deep_copy(facts) : json_array();
        json_decref(j);
    }
    free(line);
    fclose(f);
    if (!rc && !count) {
        snprintf(err, errlen, "%s: no items", path);
        rc = TG_E_PARSE;
    }
    if (rc) {
        tg_far_free(v, count);
        return rc;
    }
    *items = v;
    *n = count;
    return TG_OK;
}

void tg_far_free(struct tg_far_item *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        struct tg_far_item *it = &items[i];
        tg_free(it->id);
        tg_free(it->question);
        tg_free(it->intent);
        tg_free(it->source);
        tg_free(it->decision);
        tg_free(it->got_decision);
        tg_free(it->got_intent);
        tg_free(it->answer);
        json_decref(it->facts);
        json_decref(it->cited);
        json_decref(it->hits);
    }
    tg_free(items);
}

/* ------------------------------------------------------------ scoring */

/* Does a citation's source name the expected document?  The label names a
 * file ("claims-faq.md") or an FAQ line ("faq.jsonl:12"); citations carry
 * paths, so the label must be the citation's last path component(s). */
static bool same_source(const char *cited, const char *want)
{
    size_t lc = strlen(cited), lw = strlen(want);
    if (lw > lc || strcmp(cited + lc - lw, want) != 0)
        return false;
    return lw == lc || cited[lc - lw - 1] == '/';
}

void tg_far_score(struct tg_far_item *it, size_t k)
{
    bool deliver_expected = strcmp(it->decision, "deliver") == 0;
    it->failed_stage = NULL;
    if (!it->ran || !it->got_decision || !strcmp(it->got_decision, "error")) {
        it->failed_stage = "error";
        it->correct = false;
        return;
    }
    it->intent_ok = !it->intent || (it->got_intent && !strcmp(it->intent, it->got_intent));
    it->top1 = it->topk = !it->source;
    for (size_t i = 0; it->source && i < json_array_size(it->cited) && i < k; i++) {
        const char *s = json_string_value(json_array_get(it->cited, i));
        if (s && same_source(s, it->source)) {
            it->topk = true;
            it->top1 |= i == 0;
        }
    }
    it->decision_ok = !strcmp(it->decision, it->got_decision);
    it->consistent = it->cons.consistent;
    /* the first stage, in pipeline order, that went wrong */
    if (!it->intent_ok)
        it->failed_stage = "understand";
    else if (deliver_expected && !it->topk)
        it->failed_stage = "retrieve";
    else if (!it->decision_ok)
        it->failed_stage = "gate";
    else if (deliver_expected && !it->consistent)
        it->failed_stage = "generate";
    it->correct = it->failed_stage == NULL;
}

void tg_far_summarize(struct tg_far_item *items, size_t n, struct tg_far_summary *s)
{
    memset(s, 0, sizeof(*s));
    double *ms = tg_malloc((n ? n : 1) * sizeof(double));
    size_t intent_ok = 0, top1 = 0, topk = 0, delivered = 0, consistent = 0, facts = 0,
           facts_found = 0, nms = 0;
    s->n = n;
    for (size_t i = 0; i < n; i++) {
        const struct tg_far_item *it = &items[i];
        s->correct += it->correct;
        intent_ok += it->intent_ok;
        if (it->failed_stage)
            for (size_t st = 0; st < 5; st++)
                if (!strcmp(it->failed_stage, tg_far_stages[st]))
                    s->failed[st]++;
        if (!strcmp(it->decision, "deliver")) {
            s->delivered_expected++;
            top1 += it->top1;
            topk += it->topk;
            if (it->got_decision && !strcmp(it->got_decision, "deliver")) {
                s->answered++;
                s->answered_right += it->top1 || (json_array_size(it->facts) &&
                                                  it->facts_found == json_array_size(it->facts));
            }
        }
        if (it->got_decision && !strcmp(it->got_decision, "deliver")) {
            delivered++;
            consistent += it->consistent;
            facts += json_array_size(it->facts);
            facts_found += it->facts_found;
        }
        if (it->ran && ms)
            ms[nms++] = it->ms;
        s->prompt_tokens += it->prompt_tokens;
        s->completion_tokens += it->completion_tokens;
        s->cost += it->cost;
    }
    s->far = n ? (double)s->correct / (double)n : 0;
    s->intent_acc = n ? (double)intent_ok / (double)n : 0;
    s->source_top1 = s->delivered_expected ? (double)top1 / (double)s->delivered_expected : 0;
    s->source_topk = s->delivered_expected ? (double)topk / (double)s->delivered_expected : 0;
    s->consistency = delivered ? (double)consistent / (double)delivered : 0;
    s->product = s->intent_acc * s->source_topk * s->consistency;
    s->facts_recall = facts ? (double)facts_found / (double)facts : 0;
    if (ms) {
        double *copy = tg_malloc((nms ? nms : 1) * sizeof(double));
        if (copy) {
            memcpy(copy, ms, nms * sizeof(double));
            s->p50_ms = tg_eval_quantile(copy, nms, 0.5);
            s->p95_ms = tg_eval_quantile(copy, nms, 0.95);
            tg_free(copy);
        }
        tg_free(ms);
    }
    s->cost_per_turn = n ? s->cost / (double)n : 0;
}

/* ------------------------------------------------------------ JSON */

json_t *tg_far_json(const struct tg_far_item *items, size_t n, const struct tg_far_summary *s,
                    const char *target)
{
    json_t *failed = json_object(), *list = json_array();
    int rc = failed && list ? TG_OK : TG_E_NOMEM;
    for (size_t st = 0; !rc && st < 5; st++)
        rc = tg_json_set(failed, tg_far_stages[st], json_integer((json_int_t)s->failed[st]));
    for (size_t i = 0; !rc && i < n; i++) {
        const struct tg_far_item *it = &items[i];
        rc = tg_json_push(
            list,
            json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s, s:s?, s:O?, s:b, s:b, s:b, s:b, "
                      "s:b, s:b, s:s?, s:{s:I, s:I, s:I, s:I}, s:I, s:I, s:f}",
                      "id", it->id, "question", it->question, "intent", it->intent, "got_intent",
                      it->got_intent, "source", it->source, "answer", it->answer, "decision",
                      it->decision, "got_decision", it->got_decision, "cited", it->cited, "correct",
                      it->correct, "intent_ok", it->intent_ok, "top1", it->top1, "topk", it->topk,
                      "consistent", it->consistent, "decision_ok", it->decision_ok, "failed_stage",
                      it->failed_stage, "consistency", "claims", (json_int_t)it->cons.claims,
                      "supported", (json_int_t)it->cons.supported, "quantities",
                      (json_int_t)it->cons.quantities, "grounded", (json_int_t)it->cons.grounded,
                      "facts", (json_int_t)json_array_size(it->facts), "facts_found",
                      (json_int_t)it->facts_found, "ms", it->ms));
    }
    if (rc) {
        /* the pack below fails and releases the other: NULL, never a report missing an item */
        json_decref(list);
        list = NULL;
    }
    return json_pack(
        "{s:s, s:s, s:I, s:I, s:f, s:{s:f, s:f, s:f, s:f, s:f}, s:f, s:{s:I, s:I}, s:o, "
        "s:{s:f, s:f}, "
        "s:{s:I, s:I, s:f, s:f}, s:o}",
        "suite", "far", "target", target, "turns", (json_int_t)n, "correct", (json_int_t)s->correct,
        "far", s->far, "factors", "intent_accuracy", s->intent_acc, "source_top1", s->source_top1,
        "source_topk", s->source_topk, "consistency", s->consistency, "product", s->product,
        "facts_recall", s->facts_recall, "answers", "delivered", (json_int_t)s->answered, "right",
        (json_int_t)s->answered_right, "failed_by_stage", failed, "latency_ms", "p50", s->p50_ms,
        "p95", s->p95_ms, "usage", "prompt_tokens", (json_int_t)s->prompt_tokens,
        "completion_tokens", (json_int_t)s->completion_tokens, "cost", s->cost, "cost_per_turn",
        s->cost_per_turn, "items", list);
}

/* ------------------------------------------------------------ HTML */

void tg_eval_html_head(struct tg_buf *out, const char *title)
{
    tg_buf_puts(out, "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>");
    tg_eval_html_esc(out, title);
    tg_buf_puts(out,
                "</title><style>"
                "body{font:14px/1.5 system-ui,sans-serif;margin:2em;color:#1f2937}"
                "table{border-collapse:collapse;margin:1em 0}"
                "td,th{border:1px solid #d1d5db;padding:4px 8px;text-align:left;vertical-align:top}"
                "th{background:#f3f4f6}.bad{color:#b91c1c}figure{margin:1em 0}"
                "figcaption{font-weight:600}</style></head><body>\n");
}

void tg_eval_html_esc(struct tg_buf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            tg_buf_puts(b, "&lt;");
            break;
        case '>':
            tg_buf_puts(b, "&gt;");
            break;
        case '&':
            tg_buf_puts(b, "&amp;");
            break;
        case '"':
            tg_buf_puts(b, "&quot;");
            break;
        default:
            tg_buf_append(b, s, 1);
        }
    }
}

/* A horizontal bar chart: one bar per value (0..max), labelled. */
void tg_eval_html_bars(struct tg_buf *b, const char *title, const char *const *labels,
                       const double *values, size_t n, double max, bool percent)
{
    const int w = 560, row = 28, left = 170, h = (int)n * row + 36;
    tg_buf_printf(b, "<figure><figcaption>");
    tg_eval_html_esc(b, title);
    tg_buf_printf(b,
                  "</figcaption><svg class=\"chart\" role=\"img\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" xmlns=\"http://www.w3.org/2000/svg\">",
                  w, h, w, h);
    for (size_t i = 0; i < n; i++) {
        double v = max > 0 ? values[i] / max : 0;
        int y = 10 + (int)i * row, bw = (int)lround(v * (w - left - 70));
        tg_buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"13\">", left - 8,
                      y + 15);
        tg_eval_html_esc(b, labels[i]);
        tg_buf_printf(b,
                      "</text><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"18\" fill=\"#2563eb\"/>"
                      "<text x=\"%d\" y=\"%d\" font-size=\"13\">",
                      left, y + 2, bw > 0 ? bw : 1, left + bw + 6, y + 15);
        if (percent)
            tg_buf_printf(b, "%.1f%%", values[i] * 100);
        else
            tg_buf_printf(b, "%.0f", values[i]);
        tg_buf_puts(b, "</text>");
    }
    tg_buf_puts(b, "</svg></figure>\n");
}

int tg_far_html(const struct tg_far_item *items, size_t n, const struct tg_far_summary *s,
                const char *target, struct tg_buf *out)
{
    tg_eval_html_head(out, "trustgate FAR report");
    tg_buf_puts(out, "<h1>First-response accuracy</h1><p>Target: ");
    tg_eval_html_esc(out, target);
    tg_buf_printf(out,
                  " &middot; %zu turns</p>\n<table><tr><th>FAR</th><td id=\"far\">%.1f%%</td></tr>"
                  "<tr><th>intent accuracy</th><td>%.1f%%</td></tr>"
                  "<tr><th>expected source in top 1 / top k</th><td>%.1f%% / %.1f%%</td></tr>"
                  "<tr><th>answers consistent with evidence</th><td>%.1f%%</td></tr>"
                  "<tr><th>product of the factors</th><td>%.1f%%</td></tr>"
                  "<tr><th>key facts in delivered answers</th><td>%.1f%%</td></tr>"
                  "<tr><th>latency p50 / p95</th><td>%.1f ms / %.1f ms</td></tr>"
                  "<tr><th>tokens (prompt / completion), cost per turn</th>"
                  "<td>%lld / %lld, %.6f</td></tr></table>\n",
                  n, s->far * 100, s->intent_acc * 100, s->source_top1 * 100, s->source_topk * 100,
                  s->consistency * 100, s->product * 100, s->facts_recall * 100, s->p50_ms,
                  s->p95_ms, (long long)s->prompt_tokens, (long long)s->completion_tokens,
                  s->cost_per_turn);
    const char *fl[] = {"FAR", "intent", "source top-k", "consistency", "product"};
    double fv[] = {s->far, s->intent_acc, s->source_topk, s->consistency, s->product};
    tg_eval_html_bars(out, "FAR and its factors", fl, fv, 5, 1.0, true);
    double sv[5], smax = 1;
    for (size_t i = 0; i < 5; i++) {
        sv[i] = (double)s->failed[i];
        smax = fmax(smax, sv[i]);
    }
    tg_eval_html_bars(out, "Failing turns by the stage that failed first", tg_far_stages, sv, 5,
                      smax, false);
    tg_buf_puts(out, "<h2>Failing turns</h2><table><tr><th>id</th><th>stage</th><th>question</th>"
                     "<th>intent (expected / got)</th><th>source (expected / cited first)</th>"
                     "<th>decision (expected / got)</th><th>answer</th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        const struct tg_far_item *it = &items[i];
        if (it->correct)
            continue;
        tg_buf_puts(out, "<tr><td>");
        tg_eval_html_esc(out, it->id);
        tg_buf_puts(out, "</td><td class=\"bad\">");
        tg_eval_html_esc(out, it->failed_stage);
        tg_buf_puts(out, "</td><td>");
        tg_eval_html_esc(out, it->question);
        tg_buf_puts(out, "</td><td>");
        tg_eval_html_esc(out, it->intent ? it->intent : "-");
        tg_buf_puts(out, " / ");
        tg_eval_html_esc(out, it->got_intent ? it->got_intent : "-");
        tg_buf_puts(out, "</td><td>");
        tg_eval_html_esc(out, it->source ? it->source : "-");
        tg_buf_puts(out, " / ");
        tg_eval_html_esc(out, json_string_value(json_array_get(it->cited, 0)));
        tg_buf_puts(out, "</td><td>");
        tg_eval_html_esc(out, it->decision);
        tg_buf_puts(out, " / ");
        tg_eval_html_esc(out, it->got_decision ? it->got_decision : "-");
        tg_buf_puts(out, "</td><td>");
        tg_eval_html_esc(out, it->answer ? it->answer : "");
        tg_buf_puts(out, "</td></tr>\n");
    }
    tg_buf_puts(out, "</table><p>Method: a turn is correct when the gate decided what its label "
                     "expects and, for an answer delivered, the intent was right, the expected "
                     "source was cited in the top k and every sentence and quantity of the answer "
                     "is found in the cited evidence (token overlap; quantities by value). See "
                     "docs/EVAL.md.</p></body></html>\n");
    return out->data ? TG_OK : TG_E_NOMEM;
}
