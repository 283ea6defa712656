/*
 * test_config.c - the config loader: YAML to a tree with lines, ${ENV}
 * expansion, defaults, validation and its "FILE:LINE: message" errors.
 *
 * Fixtures live in tests/unit/data/config/; each broken one has its expected
 * errors (line and a piece of the message) in a table below.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "workflow/workflow.h"

static char fixture_buf[4096];

/* The path of a fixture under tests/unit/data/config/ (or of another source file). */
static const char *src_path(const char *rel)
{
    const char *root = getenv("TG_SOURCE_DIR");
    snprintf(fixture_buf, sizeof(fixture_buf), "%s/%s", root ? root : ".", rel);
    return fixture_buf;
}

static const char *fixture(const char *name)
{
    char rel[512];
    snprintf(rel, sizeof(rel), "tests/unit/data/config/%s", name);
    return src_path(rel);
}

/* A temporary file holding text; the caller unlink()s and tg_free()s the path. */
static char *write_tmp(const char *text)
{
    char tmpl[] = "/tmp/tg_test_config_XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return tg_strdup(tmpl);
}

static void assert_hex(const uint8_t *bytes, const char *hex)
{
    char got[2 * TG_SHA256_LEN + 1];
    tg_hex_encode(bytes, TG_SHA256_LEN, got);
    assert_string_equal(got, hex);
}

static void dump_errors(const json_t *errs)
{
    size_t i;
    json_t *v;
    json_array_foreach(errs, i, v) print_message("  error: %s\n", json_string_value(v));
}

/* ------------------------------------------------------------ valid files */

static void test_defaults_from_minimal_file(void **state)
{
    (void)state;
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    int rc = tg_config_load(fixture("minimal.yaml"), &cfg, &errs);
    dump_errors(errs);
    assert_int_equal(rc, TG_OK);
    assert_null(errs);
    assert_non_null(cfg);

    assert_string_equal(cfg->path, fixture("minimal.yaml"));
    assert_string_equal(cfg->listen_host, "127.0.0.1");
    assert_int_equal(cfg->listen_port, 8080);
    assert_string_equal(cfg->data_dir, "./data");
    assert_int_equal(cfg->max_body, 1024 * 1024);
    assert_int_equal(cfg->max_messages, 256);
    assert_string_equal(cfg->customer_header, "X-Customer-Id");
    assert_int_equal(cfg->log_level, TG_LOG_INFO);
    assert_int_equal(cfg->drain_timeout_ms, 10000);
    assert_int_equal(cfg->n_api_keys, 0);
    assert_string_equal(cfg->store_uri, "sqlite:./data/trustgate.db");
    assert_int_equal(cfg->group_commit_ms, 5);
    assert_int_equal(cfg->idle_timeout_ms, 30 * 60 * 1000);
    assert_int_equal(cfg->history, 20);
    assert_int_equal(cfg->n_models, 1);
    assert_string_equal(cfg->models[0], "trustgate");

    assert_int_equal(cfg->n_backends, 1);
    const struct tg_backend_conf *b = tg_config_backend(cfg, "only");
    assert_ptr_equal(b, &cfg->backends[0]);
    assert_int_equal(b->type, TG_BACKEND_SCRIPT);
    assert_string_equal(b->reply, "ok");
    assert_null(b->base_url);
    assert_null(b->api_key);
    assert_null(b->model);
    assert_int_equal(b->connect_timeout_ms, 2000);
    assert_int_equal(b->header_timeout_ms, 10000);
    assert_int_equal(b->total_timeout_ms, 60000);
    assert_int_equal(b->idle_timeout_ms, 10000);
    assert_true(b->stream);
    assert_int_equal(b->max_connections, 64);
    assert_string_equal(cfg->route_backend, "only");
    assert_null(tg_config_backend(cfg, "other"));
    tg_config_free(cfg);
}

static void test_empty_file_has_no_backends(void **state)
{
    (void)state;
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    const char *path = fixture("empty.yaml");
    char want[4200];
    assert_int_equal(tg_config_load(path, &cfg, &errs), TG_E_CONFIG);
    assert_null(cfg);
    assert_int_equal(json_array_size(errs), 1);
    snprintf(want, sizeof(want), "%s: no backends configured (add a backends: list)", path);
    assert_string_equal(json_string_value(json_array_get(errs, 0)), want);
    json_decref(errs);
}

static void set_schema_env(void)
{
    setenv("TRUSTGATE_API_KEY", "prod-secret", 1);
    setenv("OPENAI_API_KEY", "sk-test-123", 1);
}

static void test_schema_example(void **state)
{
    (void)state;
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    set_schema_env();
    int rc = tg_config_load(fixture("schema.yaml"), &cfg, &errs);
    dump_errors(errs);
    assert_int_equal(rc, TG_OK);

    assert_int_equal(cfg->n_api_keys, 3);
    assert_string_equal(cfg->api_keys[0].name, "demo");
    /* SHA-256("tg-demo-key"), computed independently with sha256sum. */
    assert_hex(cfg->api_keys[0].sha256,
               "e7aab4b439baa8c615eb31e352f5b4259085813fbcd95a65a5a346a6bdfb1bb3");
    assert_string_equal(cfg->api_keys[1].name, "prod");
    assert_hex(cfg->api_keys[1].sha256,
               "e2d097e6ec0d559bc076f6e49643bee69a8bd5ae0333158434cdd58abd263c60");
    /* The FIPS 180-2 "abc" example, given as a hash. */
    assert_string_equal(cfg->api_keys[2].name, "other");
    assert_hex(cfg->api_keys[2].sha256,
               "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    /* The plain keys are gone from the tree. */
    char *dump = json_dumps(cfg->root, JSON_COMPACT);
    assert_null(strstr(dump, "tg-demo-key"));
    assert_null(strstr(dump, "prod-secret"));
    free(dump);

    assert_int_equal(cfg->n_backends, 2);
    const struct tg_backend_conf *p = tg_config_backend(cfg, "primary");
    assert_non_null(p);
    assert_int_equal(p->type, TG_BACKEND_OPENAI);
    assert_string_equal(p->base_url, "http://127.0.0.1:9000/v1"); /* trailing / removed */
    assert_string_equal(p->api_key, "sk-test-123");
    assert_string_equal(p->model, "gpt-4o-mini");
    assert_int_equal(p->connect_timeout_ms, 2000);
    assert_int_equal(p->header_timeout_ms, 10000);
    assert_int_equal(p->total_timeout_ms, 60000);
    assert_int_equal(p->idle_timeout_ms, 10000);
    assert_true(p->stream);
    assert_int_equal(p->max_connections, 64);
    const struct tg_backend_conf *h = tg_config_backend(cfg, "holding");
    assert_non_null(h);
    assert_int_equal(h->type, TG_BACKEND_SCRIPT);
    assert_string_equal(h->reply, "我需要更多时间分析，请稍候");
    assert_string_equal(cfg->route_backend, "primary");
    assert_string_equal(cfg->store_uri, "sqlite:./data/trustgate.db");
    assert_int_equal(cfg->n_models, 1);
    tg_config_free(cfg);
}

static void test_custom_values(void **state)
{
    (void)state;
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    int rc = tg_config_load(fixture("custom.yaml"), &cfg, &errs);
    dump_errors(errs);
    assert_int_equal(rc, TG_OK);
    assert_string_equal(cfg->listen_host, "::1");
    assert_int_equal(cfg->listen_port, 0);
    assert_string_equal(cfg->data_dir, "/var/lib/trustgate/");
    assert_string_equal(cfg->store_uri, "sqlite:/var/lib/trustgate/trustgate.db");
    assert_int_equal(cfg->max_body, 65536);
    assert_int_equal(cfg->max_messages, 10);
    assert_string_equal(cfg->customer_header, "X-Tenant");
    assert_int_equal(cfg->log_level, TG_LOG_DEBUG);
    assert_int_equal(cfg->drain_timeout_ms, 2500);
    assert_int_equal(cfg->group_commit_ms, 0);
    assert_int_equal(cfg->idle_timeout_ms, 3600000);
    assert_int_equal(cfg->history, 0);
    const struct tg_backend_conf *a = tg_config_backend(cfg, "a");
    assert_string_equal(a->base_url, "https://api.example.com");
    assert_int_equal(a->connect_timeout_ms, 150);
    assert_false(a->stream);
    assert_int_equal(a->max_connections, 1);
    assert_string_equal(cfg->route_backend, "b");
    assert_int_equal(cfg->n_models, 2);
    assert_string_equal(cfg->models[0], "trustgate");
    assert_string_equal(cfg->models[1], "trustgate-mini");
    tg_config_free(cfg);
}

static void test_json_file(void **state)
{
    (void)state;
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    int rc = tg_config_load(fixture("full.json"), &cfg, &errs);
    dump_errors(errs);
    assert_int_equal(rc, TG_OK);
    assert_string_equal(cfg->listen_host, "0.0.0.0");
    assert_int_equal(cfg->listen_port, 9090);
    assert_int_equal(cfg->max_body, 2 * 1024 * 1024);
    assert_int_equal(cfg->n_api_keys, 1);
    assert_hex(cfg->api_keys[0].sha256,
               "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_false(cfg->backends[0].stream);
    assert_int_equal(cfg->n_models, 2);
    assert_string_equal(cfg->models[1], "m2");
    tg_config_free(cfg);
}

static void test_demo_config_loads(void **state)
{
    (void)state;
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    int rc = tg_config_load(src_path("examples/insurance/trustgate.yaml"), &cfg, &errs);
    dump_errors(errs);
    assert_int_equal(rc, TG_OK);
    assert_string_equal(cfg->listen_host, "127.0.0.1");
    assert_int_equal(cfg->listen_port, 8080);
    assert_string_equal(cfg->data_dir, "./data");
    assert_int_equal(cfg->n_api_keys, 1);
    assert_string_equal(cfg->api_keys[0].name, "demo");
    assert_hex(cfg->api_keys[0].sha256,
               "e7aab4b439baa8c615eb31e352f5b4259085813fbcd95a65a5a346a6bdfb1bb3");
    assert_int_equal(cfg->n_backends, 2);
    const struct tg_backend_conf *b = tg_config_backend(cfg, "builtin");
    assert_non_null(b);
    assert_int_equal(b->type, TG_BACKEND_BUILTIN);
    assert_string_equal(b->low_confidence_reply, "我需要更多时间分析，请稍候");
    b = tg_config_backend(cfg, "holding");
    assert_non_null(b);
    assert_int_equal(b->type, TG_BACKEND_SCRIPT);
    assert_non_null(strstr(b->reply, "保险"));
    assert_string_equal(cfg->route_backend, "builtin");
    /* the deployment's files, next to the config */
    assert_int_equal(cfg->n_kb_paths, 1);
    assert_non_null(strstr(cfg->kb_paths[0], "examples/insurance/kb"));
    assert_non_null(strstr(cfg->intents_train, "examples/insurance/intents.tsv"));
    assert_non_null(strstr(cfg->kb_glossary, "examples/insurance/glossary.yaml"));
    /* its workflow reads as written: a coverage check its chat turns start */
    assert_int_equal(cfg->n_workflows, 1);
    assert_non_null(strstr(cfg->workflow_paths[0], "examples/insurance/workflows/coverage.yaml"));
    struct tg_workflow **wfs = NULL;
    json_t *werrs = json_array();
    rc = tg_workflows_load(cfg->workflow_paths, cfg->n_workflows, &wfs, werrs);
    dump_errors(werrs);
    json_decref(werrs);
    assert_int_equal(rc, TG_OK);
    assert_string_equal(wfs[0]->name, "coverage_check");
    assert_non_null(wfs[0]->trigger);
    assert_non_null(tg_workflow_step(wfs[0], "ask_person"));
    tg_workflows_free(wfs, cfg->n_workflows);
    tg_config_free(cfg);
}

static void test_other_sections_pass_through(void **state)
{
    (void)state;
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    int rc = tg_config_load(fixture("passthrough.yaml"), &cfg, &errs);
    dump_errors(errs);
    assert_int_equal(rc, TG_OK);
    json_t *want = json_loads("{\"policies\":[{\"id\":\"no-guarantees\",\"match\":\"保证收益\","
                              "\"action\":\"refuse\"}],\"review\":{\"warn_before\":\"10s\"},"
                              "\"ladder\":{\"rungs\":[{\"name\":\"s\",\"backend\":\"s\"}]},"
                              "\"eval\":{},\"experiments\":[],"
                              "\"fairness\":{\"attributes\":[\"a\",\"b\"]},"
                              "\"webhooks\":[{\"url\":\"http://x/y\",\"secret\":\"s3\"}],"
                              "\"users\":[{\"name\":\"alice\",\"token\":\"t\"}]}",
                              0, NULL);
    assert_non_null(want);
    const char *key;
    json_t *v;
    json_object_foreach(want, key, v)
    {
        assert_true(json_equal(json_object_get(cfg->root, key), v));
    }
    /* Later modules find their lines through the config. */
    const json_t *policy = json_array_get(json_object_get(cfg->root, "policies"), 0);
    assert_int_equal(tg_config_line(cfg, policy), 8);
    assert_int_equal(tg_config_line(cfg, json_object_get(policy, "match")), 9);
    assert_int_equal(tg_config_lines_key(tg_config_line_table(cfg), policy, "action"), 10);
    json_decref(want);
    tg_config_free(cfg);
}

static void test_lines_of_config_nodes(void **state)
{
    (void)state;
    struct tg_config *cfg = NULL;
    set_schema_env();
    assert_int_equal(tg_config_load(fixture("schema.yaml"), &cfg, NULL), TG_OK);
    const json_t *backends = json_object_get(cfg->root, "backends");
    const json_t *holding = json_array_get(backends, 1);
    assert_int_equal(tg_config_line(cfg, json_object_get(cfg->root, "server")), 3);
    assert_int_equal(tg_config_line(cfg, backends), 25);
    assert_int_equal(tg_config_line(cfg, holding), 36);
    assert_int_equal(tg_config_line(cfg, json_object_get(holding, "reply")), 38);
    /* A boolean has no line of its own; its key does. */
    const json_t *primary = json_array_get(backends, 0);
    assert_int_equal(tg_config_line(cfg, json_object_get(primary, "stream")), 0);
    assert_int_equal(tg_config_lines_key(tg_config_line_table(cfg), primary, "stream"), 34);
    assert_int_equal(tg_config_lines_elem(tg_config_line_table(cfg), backends, 1), 36);
    /* Nodes from elsewhere are unknown. */
    json_t *foreign = json_string("x");
    assert_int_equal(tg_config_line(cfg, foreign), 0);
    json_decref(foreign);
    tg_config_free(cfg);
}

/* ------------------------------------------------------------ ${ENV} */

static void test_env_substitution(void **state)
{
    (void)state;
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    setenv("TG_TEST_HOST", "0.0.0.0", 1);
    setenv("TG_TEST_PORT", "7000", 1);
    setenv("TG_TEST_COUNT", "12", 1);
    setenv("TG_TEST_DIR", "d", 1);
    setenv("TG_TEST_REPLY", "yes", 1);
    int rc = tg_config_load(fixture("env.yaml"), &cfg, &errs);
    dump_errors(errs);
    assert_int_equal(rc, TG_OK);
    assert_string_equal(cfg->listen_host, "0.0.0.0");
    assert_int_equal(cfg->listen_port, 7000);
    /* A plain scalar is re-read after substitution: an integer. */
    assert_int_equal(cfg->max_messages, 12);
    /* $$ is one dollar, a $ not followed by { or $ stays. */
    assert_string_equal(cfg->data_dir, "/srv/$HOME/d/a$b");
    /* A quoted scalar stays a string even when it reads like a boolean. */
    assert_string_equal(cfg->backends[0].reply, "yes");
    tg_config_free(cfg);
}

struct env_case {
    const char *yaml; /* the value as written after "v: " */
    const char *want; /* JSON of the value after expansion, NULL = error */
};

static void test_env_expand_table(void **state)
{
    (void)state;
    static const struct env_case cases[] = {
        {"\"a$$b\"", "\"a$b\""},
        {"\"$x\"", "\"$x\""},
        {"\"5$\"", "\"5$\""},
        {"\"$${TG_T_A}\"", "\"${TG_T_A}\""},
        {"\"${TG_T_A}${TG_T_B}\"", "\"alphabeta\""},
        {"\"[${TG_T_EMPTY}]\"", "\"[]\""},
        {"${TG_T_NUM}", "42"},
        {"\"${TG_T_NUM}\"", "\"42\""},
        {"${TG_T_BOOL}", "true"},
        {"${TG_T_A} and more", "\"alpha and more\""},
        {"\"${TG_T_UNSET_XYZ}\"", NULL},
        {"\"${}\"", NULL},
        {"\"${1X}\"", NULL},
        {"\"${TG_T_A\"", NULL},
    };
    setenv("TG_T_A", "alpha", 1);
    setenv("TG_T_B", "beta", 1);
    setenv("TG_T_EMPTY", "", 1);
    setenv("TG_T_NUM", "42", 1);
    setenv("TG_T_BOOL", "on", 1);
    unsetenv("TG_T_UNSET_XYZ");
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        char text[256];
        snprintf(text, sizeof(text), "# case\nv: %s\n", cases[i].yaml);
        char *path = write_tmp(text);
        json_t *root = NULL, *errs = json_array();
        struct tg_config_lines *lines = NULL;
        print_message("case %zu: %s\n", i, cases[i].yaml);
        assert_int_equal(tg_config_parse_yaml(path, &root, &lines, errs), TG_OK);
        int rc = tg_config_expand_env(root, lines, path, errs);
        if (cases[i].want) {
            dump_errors(errs);
            assert_int_equal(rc, TG_OK);
            assert_int_equal(json_array_size(errs), 0);
            char *got = json_dumps(json_object_get(root, "v"), JSON_ENCODE_ANY | JSON_COMPACT);
            assert_string_equal(got, cases[i].want);
            free(got);
            assert_int_equal(tg_config_lines_key(lines, root, "v"), 2);
        } else {
            char prefix[300];
            assert_int_equal(rc, TG_E_CONFIG);
            assert_int_equal(json_array_size(errs), 1);
            snprintf(prefix, sizeof(prefix), "%s:2: ", path);
            assert_true(tg_str_has_prefix(json_string_value(json_array_get(errs, 0)), prefix));
        }
        json_decref(root);
        json_decref(errs);
        tg_config_lines_free(lines);
        unlink(path);
        tg_free(path);
    }
}

/* ------------------------------------------------------------ broken files */

struct want_err {
    int line; /* 0: "FILE: message" without a line */
    const char *text;
};

struct broken_case {
    const char *file;
    int rc;
    struct want_err errs[16];
};

static const struct broken_case broken[] = {
    {"bad_indent.yaml",
     TG_E_CONFIG,
     {{3, "5: did not find expected key (while parsing a block mapping at line 2)"}}},
    {"bad_tab.yaml", TG_E_CONFIG, {{2, "1: found character that cannot start any token"}}},
    {"unknown_key.yaml",
     TG_E_CONFIG,
     {{2, "unknown key 'lisen' in server (did you mean 'listen'?)"}}},
    {"unknown_section.yaml",
     TG_E_CONFIG,
     {{7, "unknown key 'sever' at the top level (did you mean 'server'?)"},
      {9, "unknown key 'zzzzzz' at the top level"}}},
    {"wrong_type.yaml",
     TG_E_CONFIG,
     {{2, "server.max_messages must be an integer, not a string"},
      {7, "backends[0].stream must be a boolean (true or false), not a string"}}},
    {"dup_key.yaml", TG_E_CONFIG, {{4, "duplicate key 'listen' (first at line 2)"}}},
    {"dup_backend.yaml", TG_E_CONFIG, {{5, "duplicate backend name 's'"}}},
    {"route_missing.yaml",
     TG_E_CONFIG,
     {{6, "route.backend names unknown backend 'primery' (did you mean 'primary'?)"}}},
    {"no_route.yaml", TG_E_CONFIG, {{1, "route.backend is required"}}},
    {"no_backends.yaml", TG_E_CONFIG, {{3, "no backends configured"}}},
    {"bad_duration.yaml",
     TG_E_CONFIG,
     {{2, "server.drain_timeout must be a duration such as 500ms, 10s or 30m, not 'soon'"},
      {7, "backends[0].connect_timeout must be greater than 0"},
      {8, "backends[0].total_timeout must be a duration"}}},
    {"bad_listen.yaml",
     TG_E_CONFIG,
     {{8, "server.listen must be HOST:PORT with a port from 0 to 65535, not '127.0.0.1:99999'"}}},
    {"key_and_sha.yaml",
     TG_E_CONFIG,
     {{5, "auth.api_keys[0] has both key and sha256"}, {6, "auth.api_keys[1] needs a key"}}},
    {"script_no_reply.yaml",
     TG_E_CONFIG,
     {{5, "backends[1] is a script backend and needs a reply"}}},
    {"cross_options.yaml",
     TG_E_CONFIG,
     {{5, "backends[0].reply is not an option of openai backends"},
      {9, "backends[1].base_url is not an option of script backends"}}},
    {"env_unset.yaml",
     TG_E_CONFIG,
     {{4, "environment variable TG_TEST_SURELY_UNSET is not set"},
      {8, "bad environment variable name 'bad-name'"},
      {9, "unterminated ${"}}},
    {"alias.yaml",
     TG_E_CONFIG,
     {{1, "anchors (&base) are not supported"}, {5, "aliases (*base) are not supported"}}},
    {"not_mapping.yaml", TG_E_CONFIG, {{1, "the top level must be a mapping"}}},
    {"two_docs.yaml", TG_E_CONFIG, {{2, "only one YAML document per file"}}},
    {"many.yaml",
     TG_E_CONFIG,
     {{2, "server.listen must be HOST:PORT"},
      {3, "server.max_body must be at least 1024 bytes"},
      {4, "server.log_level must be one of debug, info, warn, error, off, not 'loud'"},
      {5, "unknown key 'histroy' in server"},
      {7, "conversation.history must be between 0 and 1000"},
      {12, "duplicate API key name 'a'"},
      {15, "auth.api_keys[2].sha256 must be 64 hex digits"},
      {18, "backends[0].type must be openai, script or builtin, not 'carrier-pigeon'"},
      {21, "backends[1].base_url must be an http:// or https:// URL"},
      {22, "backends[1].max_connections must be between 1 and 100000"},
      {24, "route.backend names unknown backend 'nowhere'"},
      {25, "models must list at least one model id"}}},
};

static void check_broken(const struct broken_case *bc)
{
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    const char *path = fixture(bc->file);
    size_t n_want = 0;

    print_message("fixture %s\n", bc->file);
    int rc = tg_config_load(path, &cfg, &errs);
    dump_errors(errs);
    assert_int_equal(rc, bc->rc);
    assert_null(cfg);
    while (n_want < TG_ARRAY_LEN(bc->errs) && bc->errs[n_want].text)
        n_want++;
    assert_int_equal(json_array_size(errs), n_want);
    for (size_t i = 0; i < n_want; i++) {
        const char *got = json_string_value(json_array_get(errs, i));
        char prefix[4200];
        if (bc->errs[i].line)
            snprintf(prefix, sizeof(prefix), "%s:%d:", path, bc->errs[i].line);
        else
            snprintf(prefix, sizeof(prefix), "%s: ", path);
        assert_non_null(got);
        assert_true(tg_str_has_prefix(got, prefix));
        assert_non_null(strstr(got + strlen(prefix), bc->errs[i].text));
    }
    json_decref(errs);
}

static void test_broken_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < TG_ARRAY_LEN(broken); i++)
        check_broken(&broken[i]);
}

static void test_missing_file_is_io_error(void **state)
{
    (void)state;
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    const char *path = fixture("does-not-exist.yaml");
    assert_int_equal(tg_config_load(path, &cfg, &errs), TG_E_IO);
    assert_null(cfg);
    assert_int_equal(json_array_size(errs), 1);
    assert_true(tg_str_has_prefix(json_string_value(json_array_get(errs, 0)), path));
    assert_non_null(strstr(json_string_value(json_array_get(errs, 0)), "cannot open"));
    json_decref(errs);
    /* errs may be NULL. */
    assert_int_equal(tg_config_load(path, &cfg, NULL), TG_E_IO);
    /* A directory cannot be read either. */
    assert_int_equal(tg_config_load("/", &cfg, NULL), TG_E_IO);
}

/* ------------------------------------------------------------ the YAML layer */

struct scalar_case {
    const char *yaml;
    const char *json; /* expected value, compact JSON */
};

static void test_scalar_typing(void **state)
{
    (void)state;
    static const struct scalar_case cases[] = {
        {"~", "null"},
        {"null", "null"},
        {"", "null"},
        {"NULL", "null"},
        {"true", "true"},
        {"False", "false"},
        {"yes", "true"},
        {"no", "false"},
        {"on", "true"},
        {"OFF", "false"},
        {"42", "42"},
        {"-7", "-7"},
        {"+3", "3"},
        {"3.5", "3.5"},
        {"1e3", "1000.0"},
        {"-.5", "-0.5"},
        {"0x10", "\"0x10\""},
        {".inf", "\".inf\""},
        {"10s", "\"10s\""},
        {"1MiB", "\"1MiB\""},
        {"\"42\"", "\"42\""},
        {"'true'", "\"true\""},
        {"\"\"", "\"\""},
        {"!!str 12", "\"12\""},
        {"hello world", "\"hello world\""},
        {"'it''s'", "\"it's\""},
        {"\"tab\\there\"", "\"tab\\there\""},
        {"99999999999999999999", "1e20"},
        {"\"保险\"", "\"保险\""},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        char text[256];
        snprintf(text, sizeof(text), "v: %s\n", cases[i].yaml);
        char *path = write_tmp(text);
        json_t *root = NULL, *errs = json_array();
        struct tg_config_lines *lines = NULL;
        print_message("scalar %zu: %s\n", i, cases[i].yaml);
        int rc = tg_config_parse_yaml(path, &root, &lines, errs);
        dump_errors(errs);
        assert_int_equal(rc, TG_OK);
        json_t *want = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        assert_non_null(want);
        const json_t *got = json_object_get(root, "v");
        if (json_is_real(want)) {
            assert_true(json_is_real(got));
            assert_true(json_real_value(got) == json_real_value(want));
        } else {
            assert_true(json_equal(got, want));
        }
        json_decref(want);
        json_decref(root);
        json_decref(errs);
        tg_config_lines_free(lines);
        unlink(path);
        tg_free(path);
    }
}

static void test_parse_lines_and_structure(void **state)
{
    (void)state;
    char *path = write_tmp("# comment\n"
                           "top:\n"
                           "  list:\n"
                           "    - a\n"
                           "    - true\n"
                           "    -\n"
                           "      k: 1\n"
                           "  flow: {x: [1, 2], y: null}\n"
                           "other: \"text\"\n");
    json_t *root = NULL, *errs = json_array();
    struct tg_config_lines *lines = NULL;
    assert_int_equal(tg_config_parse_yaml(path, &root, &lines, errs), TG_OK);
    json_t *want = json_loads("{\"top\":{\"list\":[\"a\",true,{\"k\":1}],"
                              "\"flow\":{\"x\":[1,2],\"y\":null}},\"other\":\"text\"}",
                              0, NULL);
    assert_true(json_equal(root, want));
    json_decref(want);

    const json_t *top = json_object_get(root, "top");
    const json_t *list = json_object_get(top, "list");
    assert_int_equal(tg_config_lines_node(lines, root), 2);
    assert_int_equal(tg_config_lines_key(lines, root, "top"), 2);
    assert_int_equal(tg_config_lines_node(lines, top), 3);
    assert_int_equal(tg_config_lines_node(lines, list), 4);
    assert_int_equal(tg_config_lines_node(lines, json_array_get(list, 0)), 4);
    assert_int_equal(tg_config_lines_node(lines, json_array_get(list, 1)), 0); /* shared true */
    assert_int_equal(tg_config_lines_elem(lines, list, 1), 5);
    assert_int_equal(tg_config_lines_node(lines, json_array_get(list, 2)), 7);
    assert_int_equal(tg_config_lines_key(lines, top, "flow"), 8);
    assert_int_equal(tg_config_lines_key(lines, json_object_get(top, "flow"), "y"), 8);
    assert_int_equal(tg_config_lines_node(lines, json_object_get(root, "other")), 9);
    assert_int_equal(tg_config_lines_key(lines, root, "absent"), 0);
    assert_int_equal(json_array_size(errs), 0);

    json_decref(root);
    json_decref(errs);
    tg_config_lines_free(lines);
    unlink(path);
    tg_free(path);
}

static void test_parse_collects_several_problems(void **state)
{
    (void)state;
    char *path = write_tmp("a: 1\n"
                           "b: 2\n"
                           "a: 3\n"
                           "c:\n"
                           "  d: x\n"
                           "  d: y\n"
                           "? [complex]\n"
                           ": value\n"
                           "e: !!int 5\n");
    json_t *root = NULL, *errs = json_array();
    struct tg_config_lines *lines = NULL;
    assert_int_equal(tg_config_parse_yaml(path, &root, &lines, errs), TG_E_CONFIG);
    assert_null(root);
    assert_null(lines);
    dump_errors(errs);
    assert_int_equal(json_array_size(errs), 4);
    char want[300];
    snprintf(want, sizeof(want), "%s:3: duplicate key 'a' (first at line 1)", path);
    assert_string_equal(json_string_value(json_array_get(errs, 0)), want);
    snprintf(want, sizeof(want), "%s:6: duplicate key 'd' (first at line 5)", path);
    assert_string_equal(json_string_value(json_array_get(errs, 1)), want);
    snprintf(want, sizeof(want), "%s:7: ", path);
    assert_true(tg_str_has_prefix(json_string_value(json_array_get(errs, 2)), want));
    snprintf(want, sizeof(want), "%s:9: ", path);
    assert_true(tg_str_has_prefix(json_string_value(json_array_get(errs, 3)), want));
    json_decref(errs);
    unlink(path);
    tg_free(path);
}

static void test_parse_empty_and_deep(void **state)
{
    (void)state;
    json_t *root = NULL, *errs = json_array();
    struct tg_config_lines *lines = NULL;
    char *path = write_tmp("# only a comment\n");
    assert_int_equal(tg_config_parse_yaml(path, &root, &lines, errs), TG_OK);
    assert_true(json_is_null(root));
    tg_config_lines_free(lines);
    unlink(path);
    tg_free(path);

    /* 100 nested lists: deeper than the loader accepts, reported once. */
    char deep[256] = "v: ";
    for (int i = 0; i < 100; i++)
        deep[3 + i] = '[';
    for (int i = 0; i < 100; i++)
        deep[103 + i] = ']';
    deep[203] = '\n';
    deep[204] = '\0';
    path = write_tmp(deep);
    assert_int_equal(tg_config_parse_yaml(path, &root, &lines, errs), TG_E_CONFIG);
    assert_int_equal(json_array_size(errs), 1);
    assert_non_null(strstr(json_string_value(json_array_get(errs, 0)), "nested deeper"));
    json_decref(errs);
    unlink(path);
    tg_free(path);
}

static void test_check_keys_suggestions(void **state)
{
    (void)state;
    static const char *const known[] = {"listen", "data_dir", "max_body"};
    json_t *obj =
        json_pack("{s:i, s:i, s:i, s:i}", "listen", 1, "lsten", 2, "dta_dr", 3, "maxxxxbody", 4);
    json_t *errs = json_array();
    assert_int_equal(tg_config_check_keys(errs, "f.yaml", NULL, obj, "server", known, 3), 3);
    assert_string_equal(json_string_value(json_array_get(errs, 0)),
                        "f.yaml: unknown key 'lsten' in server (did you mean 'listen'?)");
    assert_string_equal(json_string_value(json_array_get(errs, 1)),
                        "f.yaml: unknown key 'dta_dr' in server (did you mean 'data_dir'?)");
    /* Three edits away: no suggestion. */
    assert_string_equal(json_string_value(json_array_get(errs, 2)),
                        "f.yaml: unknown key 'maxxxxbody' in server");
    json_decref(obj);
    json_decref(errs);

    errs = json_array();
    assert_int_equal(tg_config_errorf(errs, "f.yaml", 12, "bad %s", "thing"), TG_OK);
    assert_string_equal(json_string_value(json_array_get(errs, 0)), "f.yaml:12: bad thing");
    json_decref(errs);
}

/* Every allocation failure point: no crash, no leak, a clean TG_E_NOMEM. */
static void test_allocation_failures(void **state)
{
    (void)state;
    set_schema_env();
    int rc = TG_E_NOMEM;
    long n;
    for (n = 0; n < 100000 && rc != TG_OK; n++) {
        struct tg_config *cfg = NULL;
        json_t *errs = NULL;
        tg_mem_fail_after(n);
        rc = tg_config_load(fixture("schema.yaml"), &cfg, &errs);
        tg_mem_fail_after(-1);
        if (rc != TG_OK && rc != TG_E_NOMEM)
            dump_errors(errs);
        assert_true(rc == TG_OK || rc == TG_E_NOMEM);
        if (rc == TG_OK)
            assert_null(errs);
        json_decref(errs);
        tg_config_free(cfg);
    }
    assert_int_equal(rc, TG_OK);
    assert_true(n > 10);
}

/* Write text to dir/name (a file), or make dir/name a folder when text is NULL. */
static void put_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (!text) {
        assert_int_equal(mkdir(path, 0700), 0);
        return;
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    fclose(f);
}

/* Every expected "FILE:LINE: message" piece is among errs. */
static void assert_errors(const json_t *errs, const char *const *want, size_t n)
{
    char *all = json_dumps(errs, 0);
    assert_non_null(all);
    for (size_t i = 0; i < n; i++)
        if (!strstr(all, want[i]))
            fail_msg("missing: %s\nin: %s", want[i], all);
    free(all);
}

static void test_kb_intents_builtin(void **state)
{
    (void)state;
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    char dir[] = "/tmp/tg_test_config_kb_XXXXXX", path[128], want[1024], cmd[128];
    assert_non_null(mkdtemp(dir));
    put_file(dir, "kb", NULL);
    put_file(dir, "faq.jsonl", "");
    put_file(dir, "glossary.yaml", "[]\n");
    put_file(dir, "intents.tsv", "");
    snprintf(path, sizeof(path), "%s/faq.jsonl", dir);
    snprintf(want, sizeof(want),
             "backends:\n  - name: offline\n    type: builtin\n    min_confidence: 0.65\n"
             "    low_confidence_reply: 请稍候\n    max_sentences: 2\n"
             "route:\n  backend: offline\n"
             "kb:\n  paths: [kb, %s]\n  glossary: glossary.yaml\n  k1: 1.5\n  b: 0.6\n"
             "  top_k: 3\nintents:\n  train: intents.tsv\n"
             "understand:\n  policy_number: \"P[0-9]{10}\"\n",
             path);
    put_file(dir, "trustgate.yaml", want);
    snprintf(path, sizeof(path), "%s/trustgate.yaml", dir);
    int rc = tg_config_load(path, &cfg, &errs);
    dump_errors(errs);
    assert_int_equal(rc, TG_OK);
    assert_int_equal(cfg->backends[0].type, TG_BACKEND_BUILTIN);
    assert_true(cfg->backends[0].min_confidence > 0.64 && cfg->backends[0].min_confidence < 0.66);
    assert_string_equal(cfg->backends[0].low_confidence_reply, "请稍候");
    assert_int_equal(cfg->backends[0].max_sentences, 2);
    /* relative paths are resolved against the config file's directory */
    assert_int_equal(cfg->n_kb_paths, 2);
    snprintf(want, sizeof(want), "%s/kb", dir);
    assert_string_equal(cfg->kb_paths[0], want);
    snprintf(want, sizeof(want), "%s/faq.jsonl", dir);
    assert_string_equal(cfg->kb_paths[1], want);
    snprintf(want, sizeof(want), "%s/glossary.yaml", dir);
    assert_string_equal(cfg->kb_glossary, want);
    snprintf(want, sizeof(want), "%s/intents.tsv", dir);
    assert_string_equal(cfg->intents_train, want);
    assert_string_equal(cfg->policy_pattern, "P[0-9]{10}");
    assert_true(cfg->kb_k1 > 1.49 && cfg->kb_k1 < 1.51);
    assert_true(cfg->kb_b > 0.59 && cfg->kb_b < 0.61);
    assert_int_equal(cfg->kb_top_k, 3);
    assert_null(cfg->kb_embed_url); /* dense retrieval is off unless configured */
    assert_true(cfg->kb_rrf_k > 59.9 && cfg->kb_rrf_k < 60.1);
    tg_config_free(cfg);
    json_decref(errs);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);

    /* defaults */
    assert_int_equal(tg_config_load("tests/unit/data/config/minimal.yaml", &cfg, &errs), TG_OK);
    assert_int_equal(cfg->n_kb_paths, 0);
    assert_null(cfg->intents_train);
    assert_true(cfg->kb_k1 > 1.19 && cfg->kb_k1 < 1.21);
    assert_int_equal(cfg->kb_top_k, 5);
    tg_config_free(cfg);
    json_decref(errs);

    errs = NULL;
    assert_int_equal(tg_config_load("tests/unit/data/config/kb_bad.yaml", &cfg, &errs),
                     TG_E_CONFIG);
    const char *bad[] = {
        "kb_bad.yaml:4: backends[0].reply is not an option of builtin backends (only of script)",
        "kb_bad.yaml:5: backends[0].min_confidence must be between 0 and 1",
        "kb_bad.yaml:9: kb.paths must be a list of paths",
        "kb_bad.yaml:10: kb.k1 must be between 0 and 10",
        "kb_bad.yaml:11: kb.top_k must be between 1 and 100",
        "kb_bad.yaml:12: unknown key 'glosary' in kb (did you mean 'glossary'?)",
        "kb_bad.yaml:15: kb.embeddings.min_similarity must be between -1 and 1",
        "kb_bad.yaml:16: kb.embeddings.batch must be between 1 and 2048",
        "kb_bad.yaml:14: kb.embeddings needs both base_url and model",
    };
    assert_errors(errs, bad, TG_ARRAY_LEN(bad));
    json_decref(errs);
}

/* Every file the deployment reads at start-up is checked with the config:
 * a missing one is an error at the line that names it (kb.yaml names files
 * that do not exist). */
static void test_missing_files_name_their_line(void **state)
{
    (void)state;
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    assert_int_equal(tg_config_load("tests/unit/data/config/kb.yaml", &cfg, &errs), TG_E_CONFIG);
    assert_null(cfg);
    const char *want[] = {
        "kb.yaml:10: kb.paths[0]: cannot read 'tests/unit/data/config/kb': No such file",
        "kb.yaml:10: kb.paths[1]: cannot read '/abs/faq.jsonl': No such file",
        "kb.yaml:11: kb.glossary: cannot read 'tests/unit/data/config/glossary.yaml': No such",
        "kb.yaml:16: intents.train: cannot read 'tests/unit/data/config/intents.tsv': No such",
    };
    assert_errors(errs, want, TG_ARRAY_LEN(want));
    assert_int_equal(json_array_size(errs), TG_ARRAY_LEN(want));
    json_decref(errs);

    /* a policy include that is not there: the line that includes it */
    char *path = write_tmp("backends:\n  - name: s\n    type: script\n    reply: hi\n"
                           "route:\n  backend: s\n"
                           "policies:\n"
                           "  - id: r1\n    when: {keywords: [x]}\n    then: [refuse]\n"
                           "  - include: no-such-rules.yaml\n");
    errs = NULL;
    assert_int_equal(tg_config_load(path, &cfg, &errs), TG_E_CONFIG);
    char line[600];
    snprintf(line, sizeof(line),
             "%s:11: policies[1].include: cannot read '/tmp/no-such-rules.yaml'", path);
    const char *inc[] = {line};
    assert_errors(errs, inc, 1);
    json_decref(errs);
    unlink(path);
    tg_free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kb_intents_builtin),
        cmocka_unit_test(test_missing_files_name_their_line),
        cmocka_unit_test(test_defaults_from_minimal_file),
        cmocka_unit_test(test_empty_file_has_no_backends),
        cmocka_unit_test(test_schema_example),
        cmocka_unit_test(test_custom_values),
        cmocka_unit_test(test_json_file),
        cmocka_unit_test(test_demo_config_loads),
        cmocka_unit_test(test_other_sections_pass_through),
        cmocka_unit_test(test_lines_of_config_nodes),
        cmocka_unit_test(test_env_substitution),
        cmocka_unit_test(test_env_expand_table),
        cmocka_unit_test(test_broken_fixtures),
        cmocka_unit_test(test_missing_file_is_io_error),
        cmocka_unit_test(test_scalar_typing),
        cmocka_unit_test(test_parse_lines_and_structure),
        cmocka_unit_test(test_parse_collects_several_problems),
        cmocka_unit_test(test_parse_empty_and_deep),
        cmocka_unit_test(test_check_keys_suggestions),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
