/*
 * eval_intent.c - `trustgate eval intent` (placeholder until the module behind it lands).
 */
#include "cli/cli.h"

#include <stdio.h>

int tg_cli_eval_intent(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "trustgate eval intent: not available in this build\n");
    return 2;
}
