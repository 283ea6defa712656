/*
 * cli.h - the trustgate command line.  One file per subcommand; each takes
 * argc/argv after the subcommand name and returns the process exit status.
 */
#ifndef TG_CLI_H
#define TG_CLI_H

int tg_cli_main(int argc, char **argv);

#endif
