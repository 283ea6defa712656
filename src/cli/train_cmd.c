/*
 * train_cmd.c - `trustgate train`: train the intent classifier from a TSV
 * file into the data directory's model cache (or find it there), and say
 * what was trained, how long it took and where the model is.
 */
#include "cli/cli.h"

#include "intent/intent.h"
#include "text/text.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void train_usage(FILE *f)
{
    fprintf(f, "usage: trustgate train --intents FILE [--data DIR] [--json]\n\n"
               "Train the intent classifier on FILE (TSV: text<TAB>intent, optional header\n"
               "line text<TAB>label) and keep the model in DIR, named after the SHA-256 of\n"
               "the file and the options, where `trustgate serve` with the same data\n"
               "directory finds it; when that model is already there it is loaded instead\n"
               "of trained again.  Prints the intents, examples, features, the time taken\n"
               "and the model file.  Exit status: 0 success, 1 failure, 2 usage.\n\n"
               "  -i, --intents FILE   the training examples\n"
               "  -d, --data DIR       data directory (default ./data)\n"
               "  -j, --json           print one JSON object\n"
               "  -h, --help           this text\n");
}

int tg_cli_train(int argc, char **argv)
{
    static const struct option opts[] = {{"intents", required_argument, NULL, 'i'},
                                         {"data", required_argument, NULL, 'd'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *intents = NULL, *data = "data";
    bool as_json = false;
    int c, status = 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+i:d:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            intents = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'j':
            as_json = true;
            break;
        case 'h':
            train_usage(stdout);
            return 0;
        default:
            train_usage(stderr);
            return 2;
        }
    }
    if (!intents || optind != argc) {
        train_usage(stderr);
        return 2;
    }
    tg_log_set_level(TG_LOG_WARN);
    char err[1024];
    struct tg_text *tx = NULL;
    struct tg_intent_model *m = NULL;
    if (tg_cli_mkdirs(data)) {
        fprintf(stderr, "trustgate train: cannot create the directory %s\n", data);
        goto out;
    }
    if (tg_text_open(&tx, err, sizeof(err))) {
        fprintf(stderr, "trustgate train: %s\n", err);
        goto out;
    }
    int64_t t0 = tg_clock_mono_ns();
    if (tg_intent_load_or_train(tx, intents, data, NULL, &m, err, sizeof(err))) {
        fprintf(stderr, "trustgate train: %s\n", err);
        goto out;
    }
    double secs = (double)(tg_clock_mono_ns() - t0) / 1e9;
    const char *path = tg_intent_cache_path(m);
    bool cached = tg_intent_from_cache(m);
    if (as_json) {
        json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:f, s:b, s:s?}", "intents_file", intents,
                              "labels", (json_int_t)tg_intent_n_labels(m), "examples",
                              (json_int_t)tg_intent_n_examples(m), "features",
                              (json_int_t)tg_intent_n_features(m), "seconds", secs, "cached",
                              cached, "model", path);
        char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
        if (!s)
            goto out;
    } else {
        printf("%s %zu intents, %zu examples, %zu features in %.2f s\n",
               cached ? "loaded (cached)" : "trained", tg_intent_n_labels(m),
               tg_intent_n_examples(m), tg_intent_n_features(m), secs);
        printf("model: %s\n", path ? path : "(not cached: the directory is not writable)");
    }
    status = 0;
out:
    tg_intent_free(m);
    tg_text_close(tx);
    return status;
}
