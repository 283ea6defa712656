/*
 * test_ladder.c - the ladder with backends that need no server: the
 * builtin answerer and canned scripts, and an openai backend pointed at a
 * closed port (every call fails at once with "connect").  Covers the
 * confidence-to-script rule, the person at the end of the ladder, going
 * straight to a person, the breaker opening and staying open, breakers per
 * client model on pass-through rungs (bounded, open ones kept longest) and
 * one per fixed-model rung, the call budget of a failing model, the events
 * each step down leaves, and ladders that cannot be built.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ladder/ladder.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fx {
    char dir[64];
    struct tg_config *cfg;
    struct event_base *base;
    struct tg_backend *b[8];
    size_t n;
    struct tg_ladder *l;
};

static struct fx F;

static void load(const char *yaml)
{
    char path[128];
    json_t *errs = NULL;
    snprintf(F.dir, sizeof(F.dir), "/tmp/tg-dispatch-XXXXXX");
    assert_non_null(mkdtemp(F.dir));
    snprintf(path, sizeof(path), "%s/t.yaml", F.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(yaml, f);
    fclose(f);
    int rc = tg_config_load(path, &F.cfg, &errs);
    if (rc) {
        char *s = json_dumps(errs, 0);
        fail_msg("config: %s", s);
    }
    json_decref(errs);
    F.base = event_base_new();
    struct tg_backend_env env = {.base = F.base};
    char err[256];
    for (size_t i = 0; i < F.cfg->n_backends; i++)
        assert_int_equal(
            tg_backend_create(&F.cfg->backends[i], &env, &F.b[F.n++], err, sizeof(err)), TG_OK);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    tg_ladder_free(F.l);
    for (size_t i = 0; i < F.n; i++)
        tg_backend_free(F.b[i]);
    event_base_free(F.base);
    tg_config_free(F.cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", F.dir);
    assert_int_equal(system(cmd), 0);
    memset(&F, 0, sizeof(F));
    return 0;
}

struct got {
    bool called;
    int err;
    bool human;
    char rung[64];
    char content[256];
    int degradations;
    bool holding;
    json_t *events;
};

static void done_cb(struct tg_dispatch_result *res, void *arg)
{
    struct got *g = arg;
    g->called = true;
    g->err = res->err;
    g->human = res->human;
    tg_strlcpy(g->rung, res->rung ? res->rung : "", sizeof(g->rung));
    if (res->content)
        snprintf(g->content, sizeof(g->content), "%.*s", (int)res->len, res->content);
    g->degradations = res->degradations;
    g->holding = res->holding;
    g->events = res->events;
    res->events = NULL;
}

/* Run one turn for model to its end on the event loop. */
static struct got run_model(bool to_human, const char *model)
{
    static const struct tg_evidence ev = {
        .source = "faq.jsonl:1",
        .title = "常见问题",
        .text = "理赔需要哪些材料？\n身份证、保单和事故证明。",
        .faq_question = "理赔需要哪些材料？",
        .faq_answer = "身份证、保单和事故证明。",
        .score = 12.0,
    };
    json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", "理赔需要哪些材料？");
    struct tg_backend_request rq = {
        .model = model,
        .messages = msgs,
        .question = "理赔需要哪些材料？",
        .evidence = &ev,
        .n_evidence = 1,
        .query_coverage = 1.0,
        .intent_probability = 0.9,
    };
    struct got g = {0};
    struct tg_dispatch *d = NULL;
    struct tg_dispatch_opts opts = {.to_human = to_human, .priority = TG_PRIORITY_CUSTOMER};
    assert_int_equal(tg_dispatch_start(F.l, F.base, &rq, &opts, done_cb, &g, &d), TG_OK);
    json_decref(msgs);
    for (int i = 0; i < 500 && !g.called; i++)
        event_base_loop(F.base, EVLOOP_ONCE);
    assert_true(g.called);
    return g;
}

static struct got run(bool to_human)
{
    return run_model(to_human, "m");
}

static int count_events(const struct got *g, const char *cause)
{
    size_t i;
    json_t *e;
    int n = 0;
    json_array_foreach(g->events, i, e)
    {
        n += !strcmp(tg_json_str(e, "cause", ""), cause);
    }
    return n;
}

static bool has_event(const struct got *g, const char *cause)
{
    size_t i;
    json_t *e;
    json_array_foreach(g->events, i, e)
    {
        if (!strcmp(tg_json_str(e, "cause", ""), cause))
            return true;
    }
    return false;
}

static void build(void)
{
    char err[256] = "";
    int rc = tg_ladder_build(F.cfg, F.b, F.n, NULL, &F.l, err, sizeof(err));
    if (rc)
        fail_msg("ladder: %s", err);
}

static void test_weak_answer_gives_way_to_the_script(void **state)
{
    (void)state;
    load("backends:\n"
         "  - {name: kb, type: builtin, min_confidence: 0}\n"
         "  - {name: holding, type: script, reply: 请稍候}\n"
         "route: {backend: kb}\n"
         "ladder:\n  min_confidence: 0.999\n  rungs:\n"
         "    - {name: answer, backend: kb}\n    - {name: script, backend: holding}\n");
    build();
    struct got g = run(false);
    assert_int_equal(g.err, TG_OK);
    assert_string_equal(g.rung, "script");
    assert_string_equal(g.content, "请稍候");
    assert_int_equal(g.degradations, 1);
    assert_true(has_event(&g, "low_confidence"));
    assert_true(g.holding); /* a script stepped down to asks the customer to wait */
    json_decref(g.events);
}

static void test_confident_answer_stays(void **state)
{
    (void)state;
    load("backends:\n"
         "  - {name: kb, type: builtin, min_confidence: 0}\n"
         "  - {name: holding, type: script, reply: 请稍候}\n"
         "route: {backend: kb}\n"
         "ladder:\n  min_confidence: 0.01\n  rungs:\n"
         "    - {name: answer, backend: kb}\n    - {name: script, backend: holding}\n");
    build();
    struct got g = run(false);
    assert_string_equal(g.rung, "answer");
    assert_non_null(strstr(g.content, "身份证"));
    assert_int_equal(g.degradations, 0);
    assert_false(g.holding); /* an answer */
    assert_int_equal(json_array_size(g.events), 0);
    json_decref(g.events);
}

static const char *dead_ladder =
    "backends:\n"
    "  - {name: dead, type: openai, base_url: \"http://127.0.0.1:1/v1\", connect_timeout: 200ms}\n"
    "route: {backend: dead}\n"
    "ladder:\n  max_attempts: 1\n  breaker: {failures: 2, open: 1h, probe: 0}\n  rungs:\n"
    "    - {name: primary, backend: dead}\n    - {name: human}\n";

static void test_a_person_ends_the_ladder_and_the_breaker_opens(void **state)
{
    (void)state;
    load(dead_ladder);
    build();
    for (int i = 0; i < 2; i++) {
        struct got g = run(false);
        assert_true(g.human);
        assert_string_equal(g.rung, "human");
        assert_int_equal(g.degradations, 1);
        assert_true(has_event(&g, "connect"));
        json_decref(g.events);
    }
    /* two faults in a row: open, and with no probes it stays open */
    for (int i = 0; i < 3; i++) {
        struct got g = run(false);
        assert_true(g.human);
        assert_true(has_event(&g, "breaker_open"));
        assert_false(has_event(&g, "connect"));
        json_decref(g.events);
    }
}

/* Calls a turn for model made to the dead upstream (one "connect" event each). */
static int calls(const char *model)
{
    struct got g = run_model(false, model);
    int n = count_events(&g, "connect");
    assert_string_equal(g.rung, "script");
    json_decref(g.events);
    return n;
}

static void test_pass_through_models_have_their_own_breakers(void **state)
{
    (void)state;
    load("backends:\n"
         "  - {name: dead, type: openai, base_url: \"http://127.0.0.1:1/v1\"}\n"
         "  - {name: holding, type: script, reply: 请稍候}\n"
         "route: {backend: dead}\n"
         "ladder:\n  max_attempts: 1\n  breaker: {open: 1h}\n  rungs:\n"
         "    - {name: primary, backend: dead}\n    - {name: script, backend: holding}\n");
    build();
    for (int i = 0; i < 3; i++)
        assert_int_equal(calls("a"), 1);
    assert_int_equal(calls("a"), 0); /* open */
    assert_int_equal(calls("b"), 1); /* another model on the same upstream is still asked */
    /* a client naming ever new models fills a bounded table; the open
     * breaker outlives the merely failing ones */
    for (int i = 0; i < 300; i++) {
        char m[32];
        snprintf(m, sizeof(m), "random-%d", i);
        assert_int_equal(calls(m), 1);
    }
    assert_int_equal(calls("a"), 0);
}

static void test_a_fixed_model_has_one_breaker(void **state)
{
    (void)state;
    load("backends:\n"
         "  - {name: dead, type: openai, base_url: \"http://127.0.0.1:1/v1\", model: fixed}\n"
         "  - {name: holding, type: script, reply: 请稍候}\n"
         "route: {backend: dead}\n"
         "ladder:\n  max_attempts: 1\n  breaker: {open: 1h}\n  rungs:\n"
         "    - {name: primary, backend: dead}\n    - {name: script, backend: holding}\n");
    build();
    for (int i = 0; i < 3; i++)
        assert_int_equal(calls("a"), 1);
    assert_int_equal(calls("b"), 0); /* the client's name changes nothing: one model is sent */
}

static void test_a_failing_model_never_gets_more_calls_than_turns(void **state)
{
    (void)state;
    /* every breaker setting at its default */
    load("backends:\n"
         "  - {name: dead, type: openai, base_url: \"http://127.0.0.1:1/v1\"}\n"
         "  - {name: holding, type: script, reply: 请稍候}\n"
         "route: {backend: dead}\n"
         "ladder:\n  backoff: 1ms\n  backoff_max: 2ms\n  rungs:\n"
         "    - {name: primary, backend: dead}\n    - {name: script, backend: holding}\n");
    build();
    assert_int_equal(calls("m"), 3); /* healthy until now: retried, then open */
    assert_int_equal(calls("m"), 0);
    usleep(1100 * 1000);             /* the default open time is over: half-open */
    assert_int_equal(calls("m"), 0); /* 3 calls for 3 turns: this one is not owed a call */
    assert_int_equal(calls("m"), 1); /* the probe, without retries */
    assert_int_equal(calls("m"), 0); /* open again */
}

static void test_straight_to_a_person(void **state)
{
    (void)state;
    load(dead_ladder);
    build();
    struct got g = run(true);
    assert_true(g.human);
    assert_int_equal(json_array_size(g.events), 0); /* nobody was asked */
    json_decref(g.events);
}

static void test_without_a_ladder_the_route_answers_alone(void **state)
{
    (void)state;
    load("backends:\n  - {name: a, type: script, reply: one}\n  - {name: b, type: script, "
         "reply: two}\nroute: {backend: b}\n");
    build();
    assert_int_equal(tg_ladder_max_streak(F.l), 3);
    struct got g = run(false);
    assert_string_equal(g.rung, "b");
    assert_string_equal(g.content, "two");
    json_decref(g.events);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_weak_answer_gives_way_to_the_script, teardown),
        cmocka_unit_test_teardown(test_confident_answer_stays, teardown),
        cmocka_unit_test_teardown(test_a_person_ends_the_ladder_and_the_breaker_opens, teardown),
        cmocka_unit_test_teardown(test_pass_through_models_have_their_own_breakers, teardown),
        cmocka_unit_test_teardown(test_a_fixed_model_has_one_breaker, teardown),
        cmocka_unit_test_teardown(test_a_failing_model_never_gets_more_calls_than_turns, teardown),
        cmocka_unit_test_teardown(test_straight_to_a_person, teardown),
        cmocka_unit_test_teardown(test_without_a_ladder_the_route_answers_alone, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
