/*
 * eval_cmd.c - `trustgate eval SUITE ...`: dispatch to the evaluation
 * suites (intent classification, retrieval quality, ...).
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

struct suite {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct suite suites[] = {
    {"intent", tg_cli_eval_intent, "intent accuracy and macro-F1 on a labelled TSV"},
    {"retrieval", tg_cli_eval_retrieval, "P@1, MRR@10, Recall@10 against an FTS5 baseline"},
    {"far", tg_cli_eval_far, "first-response accuracy, decomposed, on a labelled set"},
    {"hallucination", tg_cli_eval_hallucination,
     "refused / grounded / fabricated on prompts that invite invention"},
    {"robustness", tg_cli_eval_robustness,
     "FAR on typos, Traditional, full-width, spaces and mixed-language variants"},
    {"crosslingual", tg_cli_eval_crosslingual,
     "the same question in zh, en and ja: the same conclusion?"},
    {"redline", tg_cli_eval_redline,
     "false red lines: questions that hold none sent to a person for a decision"},
};

static void eval_usage(FILE *f)
{
    fprintf(f, "usage: trustgate eval SUITE [options]\n\nsuites:\n");
    for (size_t i = 0; i < TG_ARRAY_LEN(suites); i++)
        fprintf(f, "  %-14s %s\n", suites[i].name, suites[i].summary);
    fprintf(f, "\n`trustgate eval SUITE --help` describes each suite.\n");
}

int tg_cli_eval(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        eval_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < TG_ARRAY_LEN(suites); i++)
        if (strcmp(argv[1], suites[i].name) == 0)
            return suites[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "trustgate eval: unknown suite '%s'\n\n", argv[1]);
    eval_usage(stderr);
    return 2;
}
