/* main.c - the trustgate command line: dispatch to src/cli.  Every JSON
 * value is allocated through tg_malloc, like the rest of the program. */
#include "cli/cli.h"

#include <jansson.h>

int main(int argc, char **argv)
{
    json_set_alloc_funcs(tg_malloc, tg_free);
    return tg_cli_main(argc, argv);
}
