/*
 * fuzz_admit.c - the admit stage (stage_admit.c: the chat request's
 * validation, the customer's conversation, sensitive metadata) on
 * arbitrary request bodies, run on a real pipeline opened once in a
 * temporary data directory.  It must never crash or leak, and:
 *   - a body it refuses gets a 400 with an error code;
 *   - a body it lets through is a JSON object with a non-empty messages
 *     array, a user message's text, a model, a turn id and a conversation;
 *   - sensitive metadata named by the config never stays in the request.
 */
#include "fuzz.h"

#include "config/config.h"
#include "pipeline/pipeline.h"
#include "pipeline/turn.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* clang-format off */
#define CONFIG \
    "server:\n" \
    "  max_messages: 8\n" \
    "auth:\n" \
    "  api_keys:\n" \
    "    - name: fuzz\n" \
    "      key: tg-fuzz-key\n" \
    "backends:\n" \
    "  - name: primary\n" \
    "    type: openai\n" \
    "    base_url: http://127.0.0.1:9/v1\n" \
    "route:\n" \
    "  backend: primary\n" \
    "models: [trustgate]\n" \
    "fairness:\n" \
    "  attributes: [region]\n"
/* clang-format on */

struct world {
    char dir[64];
    struct tg_config *cfg;
    struct event_base *base;
    struct tg_pipeline *p;
};

/* Opened on the first input, closed at exit so the sanitizers see no leak. */
static struct world W;

static void close_world(void)
{
    char cmd[128];
    tg_pipeline_close(W.p);
    tg_config_free(W.cfg);
    event_base_free(W.base);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", W.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_admit: cannot remove %s\n", W.dir);
}

static void open_world(void)
{
    char path[128], err[512];
    json_t *errs = NULL;
    snprintf(W.dir, sizeof(W.dir), "/tmp/tg-fuzz-admit-XXXXXX");
    if (!mkdtemp(W.dir))
        abort();
    snprintf(path, sizeof(path), "%s/trustgate.yaml", W.dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(CONFIG, f) < 0 || fclose(f))
        abort();
    tg_log_set_level(TG_LOG_ERROR);
    W.base = event_base_new();
    if (!W.base || tg_config_load(path, &W.cfg, &errs)) {
        char *s = errs ? json_dumps(errs, 0) : NULL;
        fprintf(stderr, "fuzz_admit: config: %s\n", s ? s : "?");
        abort();
    }
    if (tg_pipeline_open(W.cfg, W.base, W.dir, &W.p, err, sizeof(err))) {
        fprintf(stderr, "fuzz_admit: pipeline: %s\n", err);
        abort();
    }
    atexit(close_world);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!W.p)
        open_world();
    struct tg_turn *t = tg_turn_new(W.p);
    if (!t)
        return 0;
    t->trusted = true;
    t->body = (const char *)data;
    t->body_len = size;
    t->run.created_ms = tg_clock_wall_ms();
    enum tg_stage_rc rc = tg_stage_admit(t);
    if (rc == TG_NEXT) {
        const json_t *msgs = json_object_get(t->admit.request, "messages");
        if (!json_is_object(t->admit.request) || !json_array_size(msgs) || !t->admit.user_text ||
            !t->admit.model || !t->admit.id[0] || !t->conv.id[0])
            abort();
        const json_t *meta = json_object_get(t->admit.request, "metadata");
        if (json_object_get(meta, "region"))
            abort();
    } else if (rc == TG_DONE) {
        /* trusted, so never 401; a refusal names its code */
        if (!t->err || t->http_status != 400 || !t->err_code || !t->err_code[0])
            abort();
    } else {
        abort();
    }
    tg_turn_free(t);
    return 0;
}
