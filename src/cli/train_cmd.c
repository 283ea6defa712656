/*
 * train_cmd.c - `trustgate train`: train the intent classifier from a TSV
 * file into the data directory's model cache (or find it there), and say
 * what was trained, how long it took and where the model is.
 */
#include "cli/cli.h"

#include "intent/intent.h"
#include "text/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct train_args {
    const char *intents, *data;
    bool as_json;
};

#define ARG(f) TG_CLI_FIELD(struct train_args, f)
static const struct tg_cli_opt train_opts[] = {
    {"intents", 'i', ARG(intents), .arg = "FILE", .help = "the training examples",
     .flags = TG_CLI_REQUIRED},
    {"data", 'd', ARG(data), .arg = "DIR", .help = "data directory (default ./data)"},
    {"json", 'j', ARG(as_json), .help = "print one JSON object"},
    {0}};
#undef ARG

static const struct tg_cli_cmd train_cmd = {
    .name = "train",
    .usage = "usage: trustgate train --intents FILE [--data DIR] [--json]\n\n"
             "Train the intent classifier on FILE (TSV: text<TAB>intent, optional header\n"
             "line text<TAB>label) and keep the model in DIR, named after the SHA-256 of\n"
             "the file and the options, where `trustgate serve` with the same data\n"
             "directory finds it; when that model is already there it is loaded instead\n"
             "of trained again.  Prints the intents, examples, features, the time taken\n"
             "and the model file.  Exit status: 0 success, 1 failure, 2 usage.\n",
    .opts = train_opts,
    .in_order = true,
};

int tg_cli_train(int argc, char **argv)
{
    struct train_args a = {.data = "data"};
    int status = tg_cli_parse(&train_cmd, argc, argv, &a, NULL);
    if (status != TG_CLI_GO_ON)
        return status;
    status = 1;
    const char *intents = a.intents, *data = a.data;
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
    if (a.as_json) {
        json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:f, s:b, s:s?}", "intents_file", intents,
                              "labels", (json_int_t)tg_intent_n_labels(m), "examples",
                              (json_int_t)tg_intent_n_examples(m), "features",
                              (json_int_t)tg_intent_n_features(m), "seconds", secs, "cached",
                              cached, "model", path);
        char *s = o ? tg_json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
        if (s)
            printf("%s\n", s);
        else
            fprintf(stderr, "trustgate train: out of memory\n");
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
