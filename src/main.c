/* main.c - the trustgate command line: dispatch to src/cli. */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return tg_cli_main(argc, argv);
}
