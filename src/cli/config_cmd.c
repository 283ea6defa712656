/*
 * config_cmd.c - `trustgate config check FILE`: report every problem in a
 * config file as FILE:LINE: message; exit 1 when there is any.
 */
#include "cli/cli.h"

#include "workflow/workflow.h"

#include "pipeline/pipeline.h"
#include "policy/policy.h"

#include <stdio.h>
#include <string.h>

static void config_usage(FILE *f)
{
    fprintf(f, "usage: trustgate config check FILE\n\n"
               "Load and validate FILE; print every problem as FILE:LINE: message.\n"
               "Exit status 0 when the file is valid, 1 when not.\n");
}

int tg_cli_config(int argc, char **argv)
{
    if (tg_cli_wants_help(argc, argv)) {
        config_usage(stdout);
        return 0;
    }
    if (argc != 3 || strcmp(argv[1], "check") != 0) {
        config_usage(stderr);
        return 2;
    }
    struct tg_config *cfg = tg_cli_load_config(argv[2]);
    if (!cfg)
        return 1;
    /* The policies are part of the configuration: every bad rule, with its line. */
    struct tg_policy *pol = NULL;
    json_t *errs = json_array();
    if (!errs) {
        fprintf(stderr, "trustgate config: out of memory\n");
        tg_config_free(cfg);
        return 1;
    }
    struct tg_workflow **wfs = NULL;
    int wrc = tg_workflows_load(cfg->workflow_paths, cfg->n_workflows, &wfs, errs);
    if (!wrc)
        tg_workflows_free(wfs, cfg->n_workflows);
    if (tg_pipeline_load_policies(cfg, &pol, errs) || wrc) {
        tg_policy_free(pol);
        size_t i;
        json_t *e;
        json_array_foreach(errs, i, e) fprintf(stderr, "%s\n", json_string_value(e));
        json_decref(errs);
        tg_config_free(cfg);
        return 1;
    }
    json_decref(errs);
    size_t nrules = pol ? tg_policy_count(pol) : 0;
    tg_policy_free(pol);
    printf("%s: ok (%zu backend%s, %zu API key%s, %zu polic%s, %zu workflow%s, route -> %s)\n",
           argv[2], cfg->n_backends, cfg->n_backends == 1 ? "" : "s", cfg->n_api_keys,
           cfg->n_api_keys == 1 ? "" : "s", nrules, nrules == 1 ? "y" : "ies", cfg->n_workflows,
           cfg->n_workflows == 1 ? "" : "s", cfg->route_backend);
    tg_config_free(cfg);
    return 0;
}
