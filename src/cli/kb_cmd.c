/*
 * kb_cmd.c - `trustgate kb` (placeholder until the module behind it lands).
 */
#include "cli/cli.h"

#include <stdio.h>

int tg_cli_kb(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "trustgate kb: not available in this build\n");
    return 2;
}
