/*
 * eval_intent.c - `trustgate eval intent`: train the intent classifier on
 * one TSV file, classify another, and report accuracy, macro-F1, the most
 * confused pairs, prediction latency and, with a probability threshold,
 * out-of-scope detection.
 */
#include "cli/cli.h"

#include "intent/intent.h"
#include "text/text.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void eval_intent_usage(FILE *f)
{
    fprintf(f, "usage: trustgate eval intent --train FILE --test FILE [--json] [--threshold T]\n"
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
               "Exit status: 0 success, 1 failure, 2 usage.\n\n"
               "  --train FILE          training examples\n"
               "  --test FILE           test examples\n"
               "  -j, --json            print one JSON object\n"
               "  -t, --threshold T     out-of-scope below this probability (0..1)\n"
               "  --oos-label NAME      the out-of-scope label in the test file (default oos)\n"
               "  --cache DIR           keep the trained model in DIR and reuse it\n"
               "  --c C                 liblinear's C (default: the tuned one)\n"
               "  --word-ngrams N       word n-grams up to N (-1: none)\n"
               "  --char-ngrams MIN-MAX character n-grams (-1: none)\n"
               "  -h, --help            this text\n");
}

enum { O_TRAIN = 256, O_TEST, O_OOS, O_CACHE, O_C, O_WORD, O_CHAR };

static int parse_char_range(const char *s, struct tg_intent_opts *o)
{
    int64_t a, b;
    char lo[32];
    const char *dash = strchr(s + 1, '-');
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

struct eval_args {
    const char *train, *test, *oos_label, *cache;
    bool as_json, has_threshold;
    double threshold;
    struct tg_intent_opts opts;
};

/* 0 to go on, else the exit status. */
static int eval_parse_args(int argc, char **argv, struct eval_args *a)
{
    static const struct option opts[] = {{"train", required_argument, NULL, O_TRAIN},
                                         {"test", required_argument, NULL, O_TEST},
                                         {"json", no_argument, NULL, 'j'},
                                         {"threshold", required_argument, NULL, 't'},
                                         {"oos-label", required_argument, NULL, O_OOS},
                                         {"cache", required_argument, NULL, O_CACHE},
                                         {"c", required_argument, NULL, O_C},
                                         {"word-ngrams", required_argument, NULL, O_WORD},
                                         {"char-ngrams", required_argument, NULL, O_CHAR},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    int64_t n;
    a->oos_label = "oos";
    optind = 1;
    while ((c = getopt_long(argc, argv, "+jt:h", opts, NULL)) != -1) {
        bool bad = false;
        switch (c) {
        case O_TRAIN:
            a->train = optarg;
            break;
        case O_TEST:
            a->test = optarg;
            break;
        case 'j':
            a->as_json = true;
            break;
        case 't':
            a->has_threshold = true;
            bad = tg_parse_double(optarg, &a->threshold) || a->threshold < 0 || a->threshold > 1;
            break;
        case O_OOS:
            a->oos_label = optarg;
            break;
        case O_CACHE:
            a->cache = optarg;
            break;
        case O_C:
            bad = tg_parse_double(optarg, &a->opts.c) || !(a->opts.c > 0);
            break;
        case O_WORD:
            bad = tg_parse_i64(optarg, &n) || n < -1 || n == 0 || n > 8;
            a->opts.max_ngram = bad ? 0 : (int)n;
            break;
        case O_CHAR:
            bad = parse_char_range(optarg, &a->opts) != TG_OK;
            break;
        case 'h':
            eval_intent_usage(stdout);
            return -1;
        default:
            bad = true;
            break;
        }
        if (bad) {
            if (c != '?')
                fprintf(stderr, "trustgate eval intent: bad value '%s'\n\n", optarg);
            eval_intent_usage(stderr);
            return 2;
        }
    }
    if (!a->train || !a->test || optind != argc) {
        eval_intent_usage(stderr);
        return 2;
    }
    return 0;
}

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
    struct eval_args a = {0};
    int st = eval_parse_args(argc, argv, &a);
    if (st)
        return st < 0 ? 0 : st;
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
    if (!o)
        goto out;
    if (a.as_json) {
        char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
        if (!s)
            goto out;
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
