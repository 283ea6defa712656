/*
 * fuzz_policy.c - the policy compiler on arbitrary file contents, and the
 * evaluator on whatever compiles: it must never crash or leak, every
 * refusal must name the file, and evaluation of a compiled policy must
 * succeed on a few fixed turns (pre and post stage, with and without
 * entities, draft and tool calls, some with escaped or broken arguments),
 * every span inside its text.
 */
#include "fuzz.h"

#include "policy/policy.h"
#include "text/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char msg[] =
    "我想买理财，预算8万元，手机13812345678，听说保本收益率5%，APR 12 risk-free";

static const char args0[] = "{\"decision\": \"\\u6279\\u51c6\", \"amount\": 800000}";
static const char args1[] = "{\"q\": \"\\ud83d\\ude00 \\u62";

static const struct tg_policy_tool_call calls[] = {
    {.name = "approve_credit_line",
     .name_len = 19,
     .arguments = args0,
     .arguments_len = sizeof(args0) - 1},
    {.name = "lookup", .name_len = 6, .arguments = args1, .arguments_len = sizeof(args1) - 1},
    {.name = NULL, .name_len = 0, .arguments = NULL, .arguments_len = 0},
};

/* The length of the text a hit's span lies in, or SIZE_MAX when unknown. */
static size_t field_len(const struct tg_policy_facts *f, const struct tg_policy_hit *h)
{
    if (strcmp(h->field, "tool_calls") == 0) {
        size_t i = (size_t)h->value;
        if (!h->has_value || i >= f->n_tool_calls)
            abort();
        return f->tool_calls[i].arguments_len;
    }
    if (strcmp(h->field, "draft") == 0)
        return f->draft_len;
    if (strcmp(h->field, "norm") == 0)
        return f->norm_len;
    if (strcmp(h->field, "text") == 0)
        return f->text_len;
    return SIZE_MAX;
}

static void eval_all(const struct tg_policy *p)
{
    struct tg_money money[2] = {{.start = 33, .end = 40, .value_cny = 80000}, {0}};
    struct tg_pii pii[1] = {{.start = 50, .end = 61, .type = TG_PII_MOBILE}};
    struct tg_entities ent = {.money = money, .n_money = 1, .pii = pii, .n_pii = 1};
    struct tg_policy_facts facts[3] = {
        {.text = msg,
         .text_len = sizeof(msg) - 1,
         .norm = msg,
         .norm_len = sizeof(msg) - 1,
         .entities = &ent,
         .intent = "wealth_advice",
         .intent_confidence = 0.9,
         .best_score = 0.2,
         .n_evidence = 1,
         .degradations = 2,
         .channel = "web",
         .tier = "vip",
         .draft = "保证收益 5%，guaranteed",
         .draft_len = strlen("保证收益 5%，guaranteed"),
         .draft_language = "zh",
         .confidence = 0.4,
         .ungrounded = 1,
         .tool_calls = calls,
         .n_tool_calls = 3},
        {.text = "", .norm = "", .channel = "api", .confidence = -1},
        {.confidence = -1},
    };
    struct tg_policy_hits hits;
    tg_policy_hits_init(&hits);
    for (size_t i = 0; i < 3; i++) {
        for (int st = TG_POLICY_PRE; st <= TG_POLICY_POST; st++) {
            if (tg_policy_eval(p, (enum tg_policy_stage)st, &facts[i], &hits) != TG_OK)
                abort();
            for (size_t k = 0; k < hits.n; k++) {
                const struct tg_policy_hit *h = &hits.v[k];
                if (!h->rule || !h->description || h->n_actions == 0 || h->start > h->end ||
                    !h->field || h->end > field_len(&facts[i], h))
                    abort();
            }
        }
    }
    tg_policy_hits_free(&hits);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/tg-fuzz-policy-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        unlink(path);
        return 0;
    }
    close(fd);
    struct tg_policy *p = NULL;
    json_t *errs = json_array();
    int rc = tg_policy_load(path, &p, errs);
    if (rc == TG_OK) {
        if (json_array_size(errs) != 0 || tg_policy_count(p) == 0)
            abort();
        eval_all(p);
        tg_policy_free(p);
    } else {
        size_t i;
        json_t *e;
        json_array_foreach(errs, i, e)
        {
            if (!json_is_string(e) || strncmp(json_string_value(e), path, strlen(path)) != 0)
                abort();
        }
        if (rc == TG_E_CONFIG && json_array_size(errs) == 0)
            abort();
    }
    json_decref(errs);
    unlink(path);
    return 0;
}
