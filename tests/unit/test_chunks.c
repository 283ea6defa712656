/*
 * test_chunks.c - streamed chat completions read into one answer, on
 * streams written the way real servers write them (each sample's shape is
 * taken from that server's public API documentation), fed whole, one byte
 * at a time and split at every position.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backend/chunks.h"

#include <stdlib.h>
#include <string.h>

/* Read text split at cut (0: whole), then compare with the expected answer. */
static void read_split(const char *text, size_t cut, struct tg_chunks *c)
{
    size_t n = strlen(text);
    tg_chunks_init(c, 1 << 20);
    if (cut && cut < n) {
        assert_int_equal(tg_chunks_feed(c, text, cut), TG_OK);
        assert_int_equal(tg_chunks_feed(c, text + cut, n - cut), TG_OK);
    } else {
        assert_int_equal(tg_chunks_feed(c, text, n), TG_OK);
    }
    assert_int_equal(tg_chunks_finish(c), TG_OK);
}

struct want {
    const char *content;
    const char *finish;
    const char *tools; /* compact JSON of the tool calls, or NULL */
    int64_t prompt, completion;
    bool done;
    const char *error; /* in-stream error message, or NULL */
};

static void check(const char *name, const char *text, const struct want *w)
{
    size_t n = strlen(text);
    for (size_t cut = 0; cut <= n; cut++) {
        struct tg_chunks c;
        read_split(text, cut, &c);
        if (c.malformed)
            fail_msg("%s cut %zu: %d malformed event(s)", name, cut, c.malformed);
        if (strcmp(c.content.data ? c.content.data : "", w->content) != 0)
            fail_msg("%s cut %zu: content '%s'", name, cut, c.content.data);
        assert_string_equal(c.finish_reason, w->finish);
        assert_int_equal(c.prompt_tokens, w->prompt);
        assert_int_equal(c.completion_tokens, w->completion);
        assert_int_equal(c.done_seen, w->done);
        assert_int_equal(c.error_seen, w->error != NULL);
        if (w->error)
            assert_string_equal(c.error, w->error);
        int err;
        json_t *tools = tg_chunks_tool_calls(&c, &err);
        assert_int_equal(err, TG_OK);
        char *got = tools ? json_dumps(tools, JSON_COMPACT) : NULL;
        if (w->tools ? !got || strcmp(got, w->tools) != 0 : got != NULL)
            fail_msg("%s cut %zu: tools %s", name, cut, got ? got : "(none)");
        free(got);
        json_decref(tools);
        tg_chunks_free(&c);
    }
}

/* OpenAI: compact events, a usage chunk with empty choices last, [DONE]. */
static void test_openai(void **state)
{
    (void)state;
    const char *s =
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
        "\"model\":\"gpt-4o\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":"
        "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,"
        "\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"x1\"}\n\n"
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"您好\"},"
        "\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{},"
        "\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,"
        "\"completion_tokens\":2,\"total_tokens\":11}}\n\n"
        "data: [DONE]\n\n";
    struct want w = {"您好", "stop", NULL, 9, 2, true, NULL};
    check("openai", s, &w);
}

/* Python's json.dumps defaults: ", " and ": " separators, non-ASCII as \u
 * escapes (surrogate pairs for emoji); CRLF line ends and keep-alive
 * comments between events; `data:` without the space. */
static void test_spaced_escaped_crlf(void **state)
{
    (void)state;
    const char *s =
        ": keep-alive\r\n\r\n"
        "data: {\"id\": \"c\", \"choices\": [{\"index\": 0, \"delta\": {\"role\": \"assistant\", "
        "\"content\": \"\\u4f60\\u597d \"}, \"finish_reason\": null}]}\r\n\r\n"
        ": keep-alive\r\n\r\n"
        "data:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\ud83d\\ude00\"},"
        "\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}"
        "\r\n\r\n";
    struct want w = {"你好 😀", "length", NULL, 3, 4, false, NULL};
    check("spaced", s, &w);
}

/* A pretty-printed event over several data lines, an event type, an id,
 * usage in every chunk (the last one counts). */
static void test_multiline_and_fields(void **state)
{
    (void)state;
    const char *s = "retry: 3000\n"
                    "event: message\nid: 1\n"
                    "data: {\n"
                    "data:   \"choices\": [ { \"index\": 0,\n"
                    "data:     \"delta\": { \"content\": \"a\" } } ],\n"
                    "data:   \"usage\": { \"prompt_tokens\": 5, \"completion_tokens\": 1 }\n"
                    "data: }\n\n"
                    "id: 2\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"},"
                    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,"
                    "\"completion_tokens\":2}}\n\n"
                    "event: ping\ndata: {}\n\n"
                    "data: [DONE]\n\n";
    struct want w = {"ab", "stop", NULL, 5, 2, true, NULL};
    check("multiline", s, &w);
}

/* Reasoning deltas (DeepSeek's reasoning_content) are not the answer;
 * the last event has no blank line after it and no [DONE]. */
static void test_reasoning_and_no_done(void **state)
{
    (void)state;
    const char *s =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,"
        "\"reasoning_content\":\"thinking\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"42\",\"reasoning_content\":null}}]}"
        "\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n";
    struct want w = {"42", "stop", NULL, 0, 0, false, NULL};
    check("reasoning", s, &w);
}

/* Tool calls as OpenAI streams them: id, type and name first, the arguments
 * in pieces; two calls interleaved by index; a server that sends a whole
 * call in one chunk with arguments as an object and no index. */
static void test_tool_calls(void **state)
{
    (void)state;
    const char *s =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,"
        "\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":"
        "{\"name\":\"get_policy\",\"arguments\":\"\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
        "{\"arguments\":\"{\\\"no\\\": \"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\","
        "\"type\":\"function\",\"function\":{\"name\":\"approve_loan\",\"arguments\":\"{}\"}}]}}]}"
        "\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
        "{\"arguments\":\"\\\"P1\\\"}\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
        "data: [DONE]\n\n";
    struct want w = {"", "tool_calls",
                     "[{\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"get_policy\","
                     "\"arguments\":\"{\\\"no\\\": \\\"P1\\\"}\"}},{\"id\":\"call_b\",\"type\":"
                     "\"function\",\"function\":{\"name\":\"approve_loan\",\"arguments\":\"{}\"}}]",
                     0, 0, true, NULL};
    check("tools", s, &w);
    const char *whole =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\","
        "\"tool_calls\":[{\"id\":\"call_x\",\"function\":{\"name\":\"lookup\",\"arguments\":"
        "{\"city\": \"北京\"}}}]},\"finish_reason\":\"tool_calls\"}]}\n\n"
        "data: [DONE]\n\n";
    struct want w2 = {"", "tool_calls",
                      "[{\"id\":\"call_x\",\"type\":\"function\",\"function\":{\"name\":\"lookup\","
                      "\"arguments\":\"{\\\"city\\\": \\\"北京\\\"}\"}}]",
                      0, 0, true, NULL};
    check("whole tool", whole, &w2);
}

/* An error in the stream, as an `error` event or a chunk with an error. */
static void test_stream_errors(void **state)
{
    (void)state;
    struct want w = {"a", "", NULL, 0, 0, false, "model overloaded"};
    check("error event",
          "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
          "event: error\ndata: {\"error\": {\"message\": \"model overloaded\", \"code\": 503}}\n\n",
          &w);
    check("error chunk",
          "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
          "data: {\"error\":{\"message\":\"model overloaded\",\"type\":\"server_error\"}}\n\n",
          &w);
}

/* Garbage is counted, never silently dropped; two JSON lines in one event
 * (a server that forgot the blank line) are two chunks. */
static void test_malformed(void **state)
{
    (void)state;
    struct tg_chunks c;
    read_split("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {not json\n\n", 0,
               &c);
    assert_int_equal(c.malformed, 1);
    tg_chunks_free(&c);
    struct want w = {"ab", "stop", NULL, 0, 0, true, NULL};
    check("joined",
          "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n"
          "data: {\"choices\":[{\"delta\":{\"content\":\"b\"},\"finish_reason\":\"stop\"}]}\n\n"
          "data: [DONE]\n\n",
          &w);
}

/* Logprobs items are joined over the chunks. */
static void test_logprobs(void **state)
{
    (void)state;
    struct tg_chunks c;
    read_split("data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"logprobs\":{\"content\":"
               "[{\"token\":\"a\",\"logprob\":-0.1,\"bytes\":[97],\"top_logprobs\":[]}]}}]}\n\n"
               "data: {\"choices\":[{\"delta\":{\"content\":\"b\"},\"logprobs\":{\"content\":"
               "[{\"token\":\"b\",\"logprob\":-0.2,\"bytes\":[98],\"top_logprobs\":[]}]},"
               "\"finish_reason\":\"stop\"}]}\n\n",
               0, &c);
    assert_non_null(c.logprobs);
    json_t *items = json_object_get(c.logprobs, "content");
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "token")),
                        "b");
    tg_chunks_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai),
        cmocka_unit_test(test_spaced_escaped_crlf),
        cmocka_unit_test(test_multiline_and_fields),
        cmocka_unit_test(test_reasoning_and_no_done),
        cmocka_unit_test(test_tool_calls),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_logprobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
