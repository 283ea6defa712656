/*
 * eval_intent.c - `trustgate eval intent`: train the intent classifier on
 * one TSV file, classify another, and report accuracy, macro-F1, the most
 * confused pairs, prediction latency and, with a probability threshold,
 * out-of-scope detection.
 */
#include "cli/cli.h"

#include "intent/intent.h"
#include "text/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eval_args {
    const char *train, *test, *oos_label, *cache;
    bool as_json, has_threshold;
    double threshold; /* < 0: none */
    struct tg_intent_opts opts;
};

/* --word-ngrams N: -1 (none) or 1 to 8. */
static int word_ngrams(void *args, const char *arg)
{
    struct eval_args *a = args;
    int64_t n;
    int rc = 1;
    if (tg_parse_i64(arg, &n) || n < -1 || n == 0 || n > 8) {
        fprintf(stderr,
                "trustgate eval intent: --word-ngrams wants -1 or a whole number from 1 to 8, "
                "not '%s'\n",
                arg);
        goto out;
    }
    a->opts.max_ngram = (int)n;
    rc = 0;
out:
    return rc;
}

static int parse_char_range(const char *s, struct tg_intent_opts *o)
{
    int64_t a, b;
    char lo[32];
    const char *dash = strchr(s[0] ? s + 1 : s, '-');
    if (strcmp(s, "-1") == 0) {
        o->char_ngram_min = o->char_ngram_max = -1;
        return TG_OK;
    }
    if (!dash || (size_t)(dash - s) >= sizeof(lo))
        return TG_E_PARSE;
    memcpy(lo, s, (size_t)(dash - s));
    lo[dash - s] = '\0';
    if (tg_parse_i64(lo, &a) || tg_parse_i64(dash + 1, &b) || a < 1 || b < a || b > 8)
        return TG_E_PARSE;
    o->char_ngram_min = (int)a;
    o->char_ngram_max = (int)b;
    return TG_OK;
}

/* --char-ngrams MIN-MAX (1 <= MIN <= MAX <= 8), or -1 for none. */
static int char_ngrams(void *args, const char *arg)
{
    struct eval_args *a = args;
    int rc = parse_char_range(arg, &a->opts);
    if (rc)
        fprintf(stderr,
                "trustgate eval intent: --char-ngrams wants MIN-MAX from 1 to 8 or -1, not '%s'\n",
                arg);
    return rc;
}

#define ARG(f) TG_CLI_FIELD(struct eval_args, f)
static const struct tg_cli_opt intent_opts[] = {
    {"train", 0, ARG(train), .arg = "FILE", .help = "training examples", .flags = TG_CLI_REQUIRED},
    {"test", 0, ARG(test), .arg = "FILE", .help = "test examples", .flags = TG_CLI_REQUIRED},
    {"json", 'j', ARG(as_json), .help = "print one JSON object"},
    {"threshold", 't', ARG(threshold), .arg = "T",
     .help = "out-of-scope below this probability (0..1)", .lo = 0, .hi = 1},
    {"oos-label", 0, ARG(oos_label), .arg = "NAME",
     .help = "the out-of-scope label in the test file (default oos)"},
    {"cache", 0, ARG(cache), .arg = "DIR", .help = "keep the trained model in DIR and reuse it"},
    {"c", 0, ARG(opts.c), .arg = "C", .help = "liblinear's C (default: the tuned one)", .lo = 1e-9,
     .hi = 1e9},
    {"word-ngrams", 0, TG_CLI_CALLS, .arg = "N", .help = "word n-grams up to N (-1: none)",
     .call = word_ngrams},
    {"char-ngrams", 0, TG_CLI_CALLS, .arg = "MIN-MAX", .help = "character n-grams (-1: none)",
     .call = char_ngrams},
    {0}};
#undef ARG

static const struct tg_cli_cmd intent_cmd = {
    .name = "eval intent",
    .usage = "usage: trustgate eval intent --train FILE --test FILE [--json] [--threshold T]\n"
             "       [--oos-label NAME] [--cache DIR] [--c C] [--word-ngrams N]\n"
             "       [--char-ngrams MIN-MAX]\n\n"
             "Train on one TSV file and evaluate on another (text<TAB>label lines; a header\n"
             "line text<TAB>label is skipped).  Prints accuracy, macro-F1, the most confused\n"
             "pairs and the prediction time per utterance; --json prints one JSON object with\n"
             "the keys n, accuracy, macro_f1, labels, train_examples, features, train_seconds,\n"
             "predict_us, baseline_text_us (normalizing and tokenizing alone, the same-run\n"
             "baseline for predict_us) and confused, plus the out-of-scope keys below.\n\n"
             "With --threshold T, a prediction whose probability is below T counts as out of\n"
             "scope, and the report adds in-scope accuracy and out-of-scope recall over the\n"
             "test utterances labelled NAME (default oos).  Files with a split column\n"
             "(split<TAB>text<TAB>intent, as CLINC150) are cut into such files first; see\n"
             "bench/intent.sh.\n"
             "Exit status: 0 success, 1 failure, 2 usage.\n",
    .opts = intent_opts,
    .in_order = true,
};

static void print_text(const struct eval_args *a, json_t *o)
{
    printf("intent evaluation: %s on %s\n", a->test, a->train);
    printf("  trained on %lld examples, %lld intents, %lld features in %.2f s%s\n",
           (long long)tg_json_int(o, "train_examples", 0), (long long)tg_json_int(o, "labels", 0),
           (long long)tg_json_int(o, "features", 0), tg_json_num(o, "train_seconds", 0),
           tg_json_bool(o, "cached", false) ? " (from the cache)" : "");
    printf("  test utterances  %lld\n", (long long)tg_json_int(o, "n", 0));
    printf("  accuracy         %.4f\n", tg_json_num(o, "accuracy", 0));
    printf("  macro-F1         %.4f\n", tg_json_num(o, "macro_f1", 0));
    printf("  prediction       %.1f us per utterance (baseline, same run: normalize and tokenize "
           "alone %.1f us)\n",
           tg_json_num(o, "predict_us", 0), tg_json_num(o, "baseline_text_us", 0));
    if (a->has_threshold) {
        printf("  threshold        %.3f (%s below it)\n", a->threshold, a->oos_label);
        printf("  in-scope acc.    %.4f (%lld utterances)\n",
               tg_json_num(o, "in_scope_accuracy", 0), (long long)tg_json_int(o, "n_in", 0));
        if (tg_json_int(o, "n_oos", 0) > 0)
            printf("  oos recall       %.4f (%lld utterances), precision %.4f\n",
                   tg_json_num(o, "oos_recall", 0), (long long)tg_json_int(o, "n_oos", 0),
                   tg_json_num(o, "oos_precision", 0));
        else
            printf("  oos recall       - (no test utterance is labelled %s)\n", a->oos_label);
    }
    json_t *conf = json_object_get(o, "confused");
    size_t i;
    json_t *p;
    if (json_array_size(conf))
        printf("  most confused (gold -> predicted: count):\n");
    json_array_foreach(conf, i, p)
    {
        printf("    %s -> %s: %lld\n", tg_json_str(p, "gold", ""), tg_json_str(p, "predicted", ""),
               (long long)tg_json_int(p, "count", 0));
    }
}

/*
 * The same-run baseline for the prediction latency: microseconds per test
 * utterance spent only normalizing and tokenizing it as the classifier does
 * (what any text model on this tokenizer pays), so that the classifier's
 * own share can be read off.  Negative on error.
 */
static double text_baseline_us(struct tg_text *tx, const struct tg_dataset *ds)
{
    struct tg_buf norm;
    struct tg_tokens toks;
    int rc = TG_OK;
    tg_buf_init(&norm, TG_BUF_UNLIMITED);
    tg_tokens_init(&toks);
    int64_t t0 = tg_clock_mono_ns();
    for (size_t i = 0; !rc && i < ds->n; i++) {
        const char *t = ds->v[i].text;
        tg_buf_reset(&norm);
        tg_tokens_reset(&toks);
        rc = tg_text_normalize(tx, t, strlen(t), TG_NORM_T2S, &norm);
        if (!rc)
            rc = tg_text_tokenize(tx, norm.data, norm.len, TG_TOKEN_WORDS | TG_TOKEN_STEM, &toks);
    }
    int64_t t1 = tg_clock_mono_ns();
    tg_buf_free(&norm);
    tg_tokens_free(&toks);
    return rc || !ds->n ? -1.0 : (double)(t1 - t0) / 1e3 / (double)ds->n;
}

/* The figures as one JSON object (new reference), NULL when out of memory. */
static json_t *report(const struct eval_args *a, const struct tg_intent_model *m,
                      const struct tg_intent_eval *ev, const struct tg_intent_oos_eval *oe,
                      json_t *confused, double train_s, double predict_us, double text_us)
{
    json_t *o = json_pack("{s:I, s:f, s:f, s:I, s:I, s:I, s:f, s:b, s:f, s:f, s:O}", "n",
                          (json_int_t)ev->n, "accuracy", ev->accuracy, "macro_f1", ev->macro_f1,
                          "labels", (json_int_t)tg_intent_n_labels(m), "train_examples",
                          (json_int_t)tg_intent_n_examples(m), "features",
                          (json_int_t)tg_intent_n_features(m), "train_seconds", train_s, "cached",
                          tg_intent_from_cache(m), "predict_us", predict_us, "baseline_text_us",
                          text_us, "confused", confused);
    if (o && a->has_threshold) {
        json_t *oos =
            json_pack("{s:f, s:I, s:I, s:f, s:o, s:o}", "threshold", a->threshold, "n_in",
                      (json_int_t)oe->n_in, "n_oos", (json_int_t)oe->n_oos, "in_scope_accuracy",
                      oe->in_scope_accuracy, "oos_recall",
                      oe->n_oos ? json_real(oe->oos_recall) : json_null(), "oos_precision",
                      oe->n_oos ? json_real(oe->oos_precision) : json_null());
        if (!oos || json_object_update(o, oos)) {
            json_decref(o);
            o = NULL;
        }
        json_decref(oos);
    }
    return o;
}

int tg_cli_eval_intent(int argc, char **argv)
{
    struct eval_args a = {.oos_label = "oos", .threshold = -1};
    int st = tg_cli_parse(&intent_cmd, argc, argv, &a, NULL);
    if (st != TG_CLI_GO_ON)
        return st;
    a.has_threshold = a.threshold >= 0;
    tg_log_set_level(TG_LOG_WARN);
    char err[1024];
    int status = 1, rc;
    struct tg_text *tx = NULL;
    struct tg_intent_model *m = NULL;
    struct tg_dataset train = {0}, test = {0};
    struct tg_intent_eval ev;
    struct tg_intent_oos_eval oe = {0};
    json_t *confused = NULL, *o = NULL;
    if (tg_text_open(&tx, err, sizeof(err)) ||
        tg_dataset_load_tsv(a.test, &test, err, sizeof(err))) {
        fprintf(stderr, "trustgate eval intent: %s\n", err);
        goto out;
    }
    if (a.cache && tg_cli_mkdirs(a.cache)) {
        fprintf(stderr, "trustgate eval intent: cannot create %s\n", a.cache);
        goto out;
    }
    int64_t t0 = tg_clock_mono_ns();
    if (a.cache) {
        rc = tg_intent_load_or_train(tx, a.train, a.cache, &a.opts, &m, err, sizeof(err));
    } else {
        rc = tg_dataset_load_tsv(a.train, &train, err, sizeof(err));
        if (!rc)
            rc = tg_intent_train(tx, &train, &a.opts, &m, err, sizeof(err));
    }
    if (rc) {
        fprintf(stderr, "trustgate eval intent: %s\n", err);
        goto out;
    }
    int64_t t1 = tg_clock_mono_ns();
    rc = tg_intent_evaluate(m, tx, &test, &ev, &confused);
    int64_t t2 = tg_clock_mono_ns();
    double text_us = rc ? -1.0 : text_baseline_us(tx, &test);
    if (!rc && a.has_threshold)
        rc = tg_intent_evaluate_oos(m, tx, &test, a.oos_label, a.threshold, &oe);
    if (rc) {
        fprintf(stderr, "trustgate eval intent: %s\n", tg_err_str(rc));
        goto out;
    }
    o = report(&a, m, &ev, &oe, confused, (double)(t1 - t0) / 1e9,
               (double)(t2 - t1) / 1e3 / (double)ev.n, text_us);
    if (!o) {
        fprintf(stderr, "trustgate eval intent: out of memory\n");
        goto out;
    }
    if (a.as_json) {
        char *s = tg_json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
        if (!s) {
            fprintf(stderr, "trustgate eval intent: out of memory\n");
            goto out;
        }
        printf("%s\n", s);
        free(s);
    } else {
        print_text(&a, o);
    }
    status = 0;
out:
    json_decref(o);
    json_decref(confused);
    tg_intent_free(m);
    tg_dataset_free(&train);
    tg_dataset_free(&test);
    tg_text_close(tx);
    return status;
}
