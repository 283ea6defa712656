/* cli.c - subcommand dispatch (placeholder until the subcommands land). */
#include "cli/cli.h"

#include <stdio.h>

int tg_cli_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "trustgate: no subcommands yet\n");
    return 2;
}
