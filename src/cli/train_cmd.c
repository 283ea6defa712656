/*
 * train_cmd.c - `trustgate train` (placeholder until the module behind it lands).
 */
#include "cli/cli.h"

#include <stdio.h>

int tg_cli_train(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "trustgate train: not available in this build\n");
    return 2;
}
