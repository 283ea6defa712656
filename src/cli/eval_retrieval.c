/*
 * eval_retrieval.c - `trustgate eval retrieval` (placeholder until the module behind it lands).
 */
#include "cli/cli.h"

#include <stdio.h>

int tg_cli_eval_retrieval(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "trustgate eval retrieval: not available in this build\n");
    return 2;
}
