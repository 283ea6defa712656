/*
 * eval_far.c - `trustgate eval far`: first-response accuracy of a
 * deployment on a labelled set, decomposed (see src/eval/eval.h).
 *
 * Turns run in-process through the whole pipeline (-c CONFIG, on a fresh
 * temporary data directory unless --data names one), or over HTTP against
 * any OpenAI-compatible endpoint (--url, --key): trustgate itself, or a
 * bare model for comparison.  Over HTTP the evidence for the consistency
 * test is the text of the documents the answer cites (from the config's
 * knowledge base folders), or the labelled source when it cites none.
 */
#include "cli/cli.h"

#include "backend/backend.h"
#include "eval/eval.h"
#include "pipeline/pipeline.h"
#include "text/text.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct far_args {
    const char *cfg, *set, *json_out, *html_out;
    int64_t k;
    double min_far; /* < 0: none */
    struct tg_eval_target tgt;
};

#define ARG(f) TG_CLI_FIELD(struct far_args, f)
static const struct tg_cli_opt far_opts[] = {
    {"config", 'c', ARG(cfg), .arg = "FILE",
     .help = "the deployment (also its knowledge base for --url)", .flags = TG_CLI_REQUIRED},
    {"set", 's', ARG(set), .arg = "FILE",
     .help = "the labelled set (default: eval.far.set in the config)"},
    TG_CLI_TARGET_OPTS(struct far_args, tgt),
    {"k", 0, ARG(k), .arg = "K", .help = "citations that count (default 3)", .lo = 1, .hi = 100},
    {"json", 'j', ARG(json_out), .arg = "FILE", .help = "write the report as JSON (- for stdout)"},
    {"html", 0, ARG(html_out), .arg = "FILE",
     .help = "write a self-contained HTML report with charts"},
    {"min-far", 0, ARG(min_far), .arg = "X",
     .help = "fail below this FAR, 0..1 (default: eval.far.min or none)", .lo = 0, .hi = 1},
    {"signals", 0, ARG(tgt.signals), .arg = "FILE",
     .help = "in process: write each turn's evidence and the builtin\n"
             "answerer's confidence signals as JSONL (bench/calibrate.sh)"},
    {0}};
#undef ARG

static const struct tg_cli_cmd far_cmd = {
    .name = "eval far",
    .usage = "usage: trustgate eval far -c FILE [--set FILE] [--data DIR] [--url URL --key KEY]\n"
             "       [--model NAME] [--k K] [--json FILE] [--html FILE] [--min-far X]\n"
             "       [--signals FILE]\n\n"
             "Run every labelled turn of a set (JSONL: id, question, intent, source, facts,\n"
             "decision) and report first-response accuracy (FAR): the share of turns the gate\n"
             "decided as labelled and, for answers delivered, with the right intent, the\n"
             "expected source among the top K citations and an answer consistent with its\n"
             "evidence; each factor, their product, the stage that failed first for every\n"
             "failing turn, latency and cost.  Exit status 1 when FAR is below the minimum.\n",
    .opts = far_opts,
};

/* ------------------------------------------------------------ in-process */

struct run {
    struct event_base *base;
    struct tg_text *tx;
    const struct tg_eval_conf *prices;
    struct tg_far_item *it;
    FILE *signals; /* --signals, or NULL */
    int64_t t0;
    bool done;
    int rc; /* TG_E_NOMEM when the outcome could not be kept whole */
};

/* The turn's evidence as [{source, score, match, rank, features}];
 * NULL when out of memory. */
static json_t *evidence_json(const struct tg_turn *t)
{
    json_t *ev = json_array();
    int rc = ev ? TG_OK : TG_E_NOMEM;
    for (size_t i = 0; !rc && i < t->retrieve.n_evidence; i++) {
        const struct tg_evidence *e = &t->retrieve.evidence[i];
        json_t *feat = json_array();
        for (size_t j = 0; feat && j < TG_RANK_FEATURES; j++) {
            if (tg_json_push(feat, json_real(e->features[j]))) {
                json_decref(feat);
                feat = NULL; /* the pack below fails */
            }
        }
        rc = tg_json_push(ev, json_pack("{s:s, s:f, s:f, s:f, s:o}", "source", e->source, "score",
                                        e->score, "match", e->match, "rank", e->rank, "features",
                                        feat));
    }
    if (rc) {
        json_decref(ev);
        ev = NULL;
    }
    return ev;
}

/*
 * One line of --signals: the labelled item, what the turn found and the
 * builtin answerer's confidence signals computed from it exactly as the
 * answerer does (tg_backend_builtin_signals), so a fit on these lines
 * fits the answerer.  TG_OK, or TG_E_NOMEM with no line written.
 */
static int write_signals(FILE *f, const struct tg_turn *t, const struct tg_far_item *it)
{
    struct tg_backend_request rq = {
        .question = t->admit.user_text,
        .evidence = t->retrieve.evidence,
        .n_evidence = t->retrieve.n_evidence,
        .query_coverage = t->retrieve.query_coverage,
        .intent_probability = t->a->intents ? t->understand.intent_confidence : -1,
    };
    double x[TG_BUILTIN_SIGNALS];
    tg_backend_builtin_signals(&rq, x);
    json_t *sig = json_array(), *ev = evidence_json(t);
    int rc = sig ? TG_OK : TG_E_NOMEM;
    for (size_t i = 0; !rc && i < TG_BUILTIN_SIGNALS; i++)
        rc = tg_json_push(sig, json_real(x[i]));
    if (rc) {
        json_decref(sig);
        sig = NULL; /* the pack below fails */
    }
    json_t *j = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:f, s:f, s:o, s:o}", "id", it->id,
                          "question", it->question, "source", it->source, "intent", it->intent,
                          "got_intent", it->got_intent, "got_decision", it->got_decision,
                          "confidence", tg_backend_builtin_confidence(&rq), "intent_probability",
                          t->understand.intent_confidence, "signals", sig, "evidence", ev);
    char *s = j ? tg_json_dumps(j, JSON_COMPACT) : NULL;
    rc = s ? TG_OK : TG_E_NOMEM;
    if (s)
        fprintf(f, "%s\n", s);
    free(s);
    json_decref(j);
    return rc;
}

/* The sources of citations ([{source}]) in their order into *out (a new
 * array; NULL when out of memory).  TG_OK or TG_E_NOMEM. */
static int cited_sources(const json_t *citations, json_t **out)
{
    json_t *cited = json_array(), *c;
    int rc = cited ? TG_OK : TG_E_NOMEM;
    size_t i;
    json_array_foreach(citations, i, c)
    {
        if (!rc)
            rc = tg_json_push(cited, json_string(tg_json_str(c, "source", "")));
    }
    if (rc) {
        json_decref(cited);
        cited = NULL;
    }
    *out = cited;
    return rc;
}

/* Fill the outcome of it and score its answer against evidence. */
static void judge(struct run *r, struct tg_far_item *it, const char *const *evidence, size_t nev,
                  const char *const *skip, size_t nskip)
{
    if (it->got_decision && !strcmp(it->got_decision, "deliver") && it->answer) {
        tg_eval_consistency(r->tx, it->answer, evidence, nev, skip, nskip, 0.5, &it->cons);
        size_t i;
        json_t *f;
        json_array_foreach(it->facts, i, f)
        {
            it->facts_found +=
                json_is_string(f) && tg_eval_contains(r->tx, it->answer, json_string_value(f));
        }
    }
}

/* Whether every part of the turn's outcome was copied into it. */
static bool outcome_kept(const struct tg_turn *t, const struct tg_far_item *it)
{
    return it->got_decision && (!t->understand.intent || it->got_intent) &&
           (!t->check.policy_hits || it->hits) && (!t->reply.answer || it->answer);
}

static void done_cb(struct tg_turn *t, void *arg)
{
    struct run *r = arg;
    struct tg_far_item *it = r->it;
    it->ran = true;
    it->ms = (double)(tg_clock_mono_ns() - r->t0) / 1e6;
    it->got_decision = tg_strdup(t->err ? "error" : tg_decision_name(t->decision));
    it->got_intent = t->understand.intent ? tg_strdup(t->understand.intent) : NULL;
    it->got_confidence = t->understand.intent_confidence;
    it->hits = t->check.policy_hits ? json_deep_copy(t->check.policy_hits) : NULL;
    it->answer = t->reply.answer ? tg_strndup(t->reply.answer, t->reply.answer_len) : NULL;
    r->rc = cited_sources(t->retrieve.citations, &it->cited);
    if (!outcome_kept(t, it))
        r->rc = TG_E_NOMEM;
    size_t i;
    const char *ev[64], *skip[16];
    size_t nev = 0, nskip = 0;
    for (i = 0; i < t->retrieve.n_evidence && nev < TG_ARRAY_LEN(ev); i++)
        ev[nev++] = t->retrieve.evidence[i].text;
    json_t *s;
    json_array_foreach(t->check.rules.prefixes, i, s)
    {
        if (json_is_string(s) && nskip < TG_ARRAY_LEN(skip))
            skip[nskip++] = json_string_value(s);
    }
    json_array_foreach(t->check.rules.suffixes, i, s)
    {
        if (json_is_string(s) && nskip < TG_ARRAY_LEN(skip))
            skip[nskip++] = json_string_value(s);
    }
    json_array_foreach(t->tags, i, s)
    {
        if (json_is_string(s) && !strcmp(json_string_value(s), "low_confidence"))
            it->low_confidence = true;
    }
    it->prompt_tokens = t->generate.prompt_tokens;
    it->completion_tokens = t->generate.completion_tokens;
    it->cost = tg_eval_price(r->prices,
                             t->generate.upstream_model[0] ? t->generate.upstream_model : t->rung,
                             t->generate.prompt_tokens, t->generate.completion_tokens);
    judge(r, it, ev, nev, skip, nskip);
    if (!r->rc && r->signals)
        r->rc = write_signals(r->signals, t, it);
    r->done = true;
    event_base_loopbreak(r->base);
}

static int run_local(const struct tg_config *cfg, const char *data, FILE *signals,
                     struct tg_far_item *items, size_t n, struct tg_text *tx, const struct tg_eval_conf *prices)
{
    char dir[4096], err[512];
    struct tg_pipeline *p = NULL;
    struct event_base *base = event_base_new();
    int rc = TG_E_INTERNAL;
    if (data) {
        tg_strlcpy(dir, data, sizeof(dir));
    } else {
        snprintf(dir, sizeof(dir), "%s/tg-eval-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir)) {
            fprintf(stderr, "trustgate eval far: cannot create a temporary data directory\n");
            event_base_free(base);
            return TG_E_IO;
        }
    }
    if (!base || tg_cli_mkdirs(dir) ||
        tg_pipeline_open_in_force(cfg, base, dir, &p, err, sizeof(err))) {
        fprintf(stderr, "trustgate eval far: %s\n", base ? err : "cannot create event loop");
        goto out;
    }
    p->log_turns = false;
    bool tty = isatty(STDERR_FILENO);
    for (size_t i = 0; i < n; i++) {
        struct tg_far_item *it = &items[i];
        char user[96];
        snprintf(user, sizeof(user), "eval-%s", it->id);
        json_t *req = json_pack("{s:[{s:s, s:s}], s:s}", "messages", "role", "user", "content",
                                it->question, "user", user);
        char *body = req ? tg_json_dumps(req, JSON_COMPACT) : NULL;
        json_decref(req);
        struct tg_turn *t = body ? tg_turn_new(p) : NULL;
        if (!t) {
            free(body);
            rc = TG_E_NOMEM;
            goto out;
        }
        struct run r = {.base = base, .tx = tx, .prices = prices, .it = it, .signals = signals};
        t->channel = "eval";
        t->trusted = true;
        t->body = body;
        t->body_len = strlen(body);
        t->done_cb = done_cb;
        t->done_arg = &r;
        r.t0 = tg_clock_mono_ns();
        tg_pipeline_start(t);
        if (!r.done)
            event_base_dispatch(base);
        tg_turn_free(t);
        free(body);
        rc = r.rc;
        if (rc)
            goto out;
        if (tty)
            fprintf(stderr, "\r  [%-40.*s] %zu/%zu", (int)((i + 1) * 40 / n),
                    "########################################", i + 1, n);
    }
    if (tty)
        fprintf(stderr, "\n");
    rc = TG_OK;
out:
    if (rc == TG_E_NOMEM)
        fprintf(stderr, "trustgate eval: out of memory\n");
    tg_pipeline_close(p);
    if (base)
        event_base_free(base);
    if (!data) {
        char cmd[4200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "trustgate eval far: could not remove %s\n", dir);
    }
    return rc;
}

/* ------------------------------------------------------------ over HTTP */

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    return tg_buf_append(arg, p, size * n) == TG_OK ? size * n : 0;
}

/* The text of a knowledge-base document named by a citation or label
 * ("dir/file.md" or "faq.jsonl:N"), looked up under the config's kb paths. */
static char *document(const struct tg_config *cfg, const char *source)
{
    char name[1024];
    const char *base = strrchr(source, '/');
    tg_strlcpy(name, base ? base + 1 : source, sizeof(name));
    char *colon = strrchr(name, ':');
    long line = 0;
    int64_t lno;
    if (colon && strstr(name, ".jsonl:")) {
        line = tg_parse_i64(colon + 1, &lno) || lno < 1 || lno > 100000000 ? -1 : (long)lno;
        *colon = '\0';
    }
    for (size_t i = 0; i < cfg->n_kb_paths; i++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", cfg->kb_paths[i], name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        struct tg_buf b;
        tg_buf_init(&b, 16u << 20);
        char *ln = NULL;
        size_t cap = 0;
        long no = 0;
        while (getline(&ln, &cap, f) > 0) {
            no++;
            if (!line || no == line)
                tg_buf_puts(&b, ln);
        }
        free(ln);
        fclose(f);
        return tg_buf_steal(&b, NULL);
    }
    return NULL;
}

/* The outcome of it from the gateway's reply j (model: the one asked
 * for), and its answer scored against the documents it cites.  TG_OK, or
 * TG_E_NOMEM when the outcome could not be kept whole. */
static int http_outcome(const struct tg_config *cfg, struct tg_text *tx,
                        const struct tg_eval_conf *prices, const char *model,
                        struct tg_far_item *it, const json_t *j)
{
    const json_t *tgo = json_object_get(j, "trustgate"), *c;
    const json_t *hits = json_object_get(tgo, "policy_hits");
    it->got_decision = tg_strdup(tg_json_str(tgo, "decision", "deliver"));
    const char *gi = tg_json_str(json_object_get(tgo, "intent"), "name", NULL);
    it->got_intent = gi ? tg_strdup(gi) : NULL;
    it->got_confidence =
        json_number_value(json_object_get(json_object_get(tgo, "intent"), "confidence"));
    it->hits = json_deep_copy(hits);
    it->answer = tg_strdup(
        tg_json_str(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"),
                    "content", ""));
    int rc = cited_sources(json_object_get(tgo, "citations"), &it->cited);
    if (!it->got_decision || (gi && !it->got_intent) || (hits && !it->hits) || !it->answer)
        rc = TG_E_NOMEM;
    size_t ci;
    json_array_foreach(json_object_get(tgo, "tags"), ci, c)
    {
        if (json_is_string(c) && !strcmp(json_string_value(c), "low_confidence"))
            it->low_confidence = true;
    }
    const json_t *usage = json_object_get(j, "usage");
    it->prompt_tokens = tg_json_int(usage, "prompt_tokens", 0);
    it->completion_tokens = tg_json_int(usage, "completion_tokens", 0);
    it->cost = tg_eval_price(prices, tg_json_str(j, "model", model), it->prompt_tokens,
                             it->completion_tokens);
    /* the evidence: the cited documents, else the labelled source */
    char *docs[8];
    const char *skip[8];
    size_t nd = 0, nskip = 0;
    json_array_foreach(json_object_get(tgo, "disclaimers"), ci, c)
    {
        if (json_is_string(c) && nskip < TG_ARRAY_LEN(skip))
            skip[nskip++] = json_string_value(c);
    }
    for (ci = 0; ci < json_array_size(it->cited) && nd < TG_ARRAY_LEN(docs); ci++)
        if ((docs[nd] = document(cfg, json_string_value(json_array_get(it->cited, ci)))))
            nd++;
    if (!nd && it->source && (docs[nd] = document(cfg, it->source)))
        nd++;
    struct run r = {.tx = tx};
    judge(&r, it, (const char *const *)docs, nd, skip, nskip);
    for (size_t d = 0; d < nd; d++)
        tg_free(docs[d]);
    return rc;
}

static int run_http(const struct tg_config *cfg, const char *url, const char *key,
                    const char *model, struct tg_far_item *items, size_t n, struct tg_text *tx,
                    const struct tg_eval_conf *prices)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char auth[1024], endpoint[2048];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key ? key : "");
    snprintf(endpoint, sizeof(endpoint), "%s/v1/chat/completions", url);
    hdrs = curl_slist_append(hdrs, auth);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    bool tty = isatty(STDERR_FILENO);
    int rc = h ? TG_OK : TG_E_NOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        struct tg_far_item *it = &items[i];
        char user[96];
        snprintf(user, sizeof(user), "eval-%s", it->id);
        json_t *req = json_pack("{s:s, s:[{s:s, s:s}], s:s}", "model", model, "messages", "role",
                                "user", "content", it->question, "user", user);
        char *body = req ? tg_json_dumps(req, JSON_COMPACT) : NULL;
        json_decref(req);
        if (!body) {
            rc = TG_E_NOMEM;
            break;
        }
        struct tg_buf out;
        tg_buf_init(&out, 64u << 20);
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, endpoint);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        int64_t t0 = tg_clock_mono_ns();
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        it->ms = (double)(tg_clock_mono_ns() - t0) / 1e6;
        free(body);
        json_t *j = cc == CURLE_OK ? json_loadb(out.data ? out.data : "", out.len, 0, NULL) : NULL;
        tg_buf_free(&out);
        it->ran = true;
        if (!j || status != 200) {
            it->cited = json_array();
            it->got_decision = tg_strdup("error");
            rc = it->cited && it->got_decision ? TG_OK : TG_E_NOMEM;
            json_decref(j);
            continue;
        }
        rc = http_outcome(cfg, tx, prices, model, it, j);
        json_decref(j);
        if (tty)
            fprintf(stderr, "\r  [%-40.*s] %zu/%zu", (int)((i + 1) * 40 / n),
                    "########################################", i + 1, n);
    }
    if (tty)
        fprintf(stderr, "\n");
    if (rc)
        fprintf(stderr, "trustgate eval: out of memory\n");
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return rc;
}

int tg_cli_eval_run(const struct tg_config *cfg, const struct tg_eval_target *tgt,
                    struct tg_far_item *items, size_t n, struct tg_text *tx)
{
    const struct tg_eval_conf *prices = &cfg->eval;
    FILE *sig = NULL;
    if (tgt->signals && !tgt->url && !(sig = fopen(tgt->signals, "w"))) {
        fprintf(stderr, "trustgate eval: cannot write %s\n", tgt->signals);
        return TG_E_IO;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = tgt->url
                 ? run_http(cfg, tgt->url, tgt->key,
                            tgt->model ? tgt->model : (cfg->n_models ? cfg->models[0] : "default"),
                            items, n, tx, prices)
                 : run_local(cfg, tgt->data, sig, items, n, tx, prices);
    curl_global_cleanup();
    if (sig && fclose(sig) && !rc)
        rc = TG_E_IO;
    return rc;
}

/* ------------------------------------------------------------ command */

/* Score the answered items, print the summary, write --json and --html;
 * the exit status (1 when a file cannot be written or FAR is below min_far). */
static int far_report(struct tg_far_item *items, size_t n, long k, const char *target,
                      const char *json_out, const char *html_out, double min_far)
{
    for (size_t i = 0; i < n; i++)
        tg_far_score(&items[i], (size_t)k);
    struct tg_far_summary s;
    tg_far_summarize(items, n, &s);
    printf("first-response accuracy on %zu turns (%s)\n"
           "  FAR                         %5.1f%%  (%zu correct)\n"
           "  intent accuracy             %5.1f%%\n"
           "  source in top 1 / top %ld     %5.1f%% / %5.1f%%\n"
           "  consistent with evidence    %5.1f%%\n"
           "  product of the factors      %5.1f%%\n"
           "  key facts in answers        %5.1f%%\n"
           "  answers given, right        %zu of %zu (first source or every key fact)\n"
           "  failing turns by stage      understand %zu, retrieve %zu, generate %zu, gate %zu, "
           "error %zu\n"
           "  latency p50 / p95           %.1f ms / %.1f ms\n"
           "  tokens, cost per turn       %lld + %lld, %.6f\n",
           n, target, s.far * 100, s.correct, s.intent_acc * 100, k, s.source_top1 * 100,
           s.source_topk * 100, s.consistency * 100, s.product * 100, s.facts_recall * 100,
           s.answered_right, s.answered, s.failed[0], s.failed[1], s.failed[2], s.failed[3],
           s.failed[4], s.p50_ms, s.p95_ms, (long long)s.prompt_tokens,
           (long long)s.completion_tokens, s.cost_per_turn);
    int status = 0;
    if (json_out) {
        json_t *j = tg_far_json(items, n, &s, target);
        char *str = j ? tg_json_dumps(j, JSON_INDENT(2)) : NULL;
        if (!str || tg_cli_write_out(json_out, str, strlen(str)))
            status = 1;
        free(str);
        json_decref(j);
    }
    if (html_out) {
        struct tg_buf b;
        tg_buf_init(&b, TG_BUF_UNLIMITED);
        if (tg_far_html(items, n, &s, target, &b) || tg_cli_write_out(html_out, b.data, b.len))
            status = 1;
        tg_buf_free(&b);
    }
    if (min_far >= 0 && s.far < min_far) {
        printf("  FAILED: FAR %.1f%% is below the minimum %.1f%%\n", s.far * 100, min_far * 100);
        status = 1;
    }
    return status;
}

int tg_cli_eval_far(int argc, char **argv)
{
    struct far_args a = {.k = 3, .min_far = -1};
    int status = tg_cli_parse(&far_cmd, argc, argv, &a, NULL);
    if (status != TG_CLI_GO_ON)
        return status;
    const char *cfg_path = a.cfg, *set = a.set;
    double min_far = a.min_far;
    struct tg_config *cfg = tg_cli_load_config(cfg_path);
    if (!cfg)
        return 1;
    tg_log_set_level(TG_LOG_ERROR);
    char setpath[4200], cfgdir[4096];
    tg_strlcpy(cfgdir, cfg_path, sizeof(cfgdir));
    if (!set && cfg->eval.far_set) {
        const char *rel = cfg->eval.far_set;
        if (rel[0] == '/')
            tg_strlcpy(setpath, rel, sizeof(setpath));
        else
            snprintf(setpath, sizeof(setpath), "%s/%s", dirname(cfgdir), rel);
        set = setpath;
    }
    if (min_far < 0 && cfg->eval.has_far_min)
        min_far = cfg->eval.far_min;
    status = 1;
    struct tg_far_item *items = NULL;
    size_t n = 0;
    struct tg_text *tx = NULL;
    char err[512];
    if (!set) {
        fprintf(stderr, "trustgate eval far: name the labelled set with --set (or eval.far.set)\n");
        goto out;
    }
    if (tg_far_load(set, &items, &n, err, sizeof(err))) {
        fprintf(stderr, "trustgate eval far: %s\n", err);
        goto out;
    }
    if (tg_text_open(&tx, err, sizeof(err))) {
        fprintf(stderr, "trustgate eval far: %s\n", err);
        goto out;
    }
    if (tg_cli_eval_run(cfg, &a.tgt, items, n, tx))
        goto out;
    status = far_report(items, n, (long)a.k, a.tgt.url ? a.tgt.url : cfg_path, a.json_out,
                        a.html_out, min_far);
out:
    tg_text_close(tx);
    tg_far_free(items, n);
    tg_config_free(cfg);
    return status;
}
