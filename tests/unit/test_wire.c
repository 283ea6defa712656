/*
 * test_wire.c - the OpenAI wire format written by the reply stage: a
 * chat.completion object, and the same answer framed as
 * chat.completion.chunk server-sent events.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pipeline/pipeline.h"

#include <string.h>

/* Split an event stream into its data payloads; checks the framing. */
static json_t *parse_events(const char *s, bool *done)
{
    json_t *events = json_array();
    *done = false;
    while (*s) {
        assert_true(tg_str_has_prefix(s, "data: "));
        const char *end = strstr(s, "\n\n");
        assert_non_null(end);
        const char *payload = s + 6;
        size_t n = (size_t)(end - payload);
        assert_null(memchr(payload, '\n', n)); /* one line per event */
        if (n == 6 && memcmp(payload, "[DONE]", 6) == 0) {
            *done = true;
            assert_string_equal(end + 2, ""); /* nothing after [DONE] */
            break;
        }
        json_t *ev = json_loadb(payload, n, 0, NULL);
        assert_non_null(ev);
        json_array_append_new(events, ev);
        s = end + 2;
    }
    return events;
}

static struct tg_completion completion(const char *text)
{
    struct tg_completion c = {
        .id = "chatcmpl-x",
        .created = 1700000000,
        .model = "m",
        .content = text,
        .content_len = strlen(text),
        .finish_reason = "stop",
        .prompt_tokens = 1,
        .completion_tokens = 2,
        .extra_key = "trustgate",
        .extra = "{\"decision\":\"deliver\"}",
        .extra_len = 22,
    };
    return c;
}

static void test_completion_object(void **state)
{
    (void)state;
    struct tg_completion c = completion("引号\" 反斜杠\\ 换行\n 控制\x01 完");
    struct tg_buf out;
    tg_buf_init(&out, TG_BUF_UNLIMITED);
    assert_int_equal(tg_wire_completion(&c, &out), TG_OK);
    json_t *j = json_loads(out.data, 0, NULL);
    assert_non_null(j);
    assert_string_equal(tg_json_str(j, "object", ""), "chat.completion");
    assert_string_equal(tg_json_str(j, "id", ""), "chatcmpl-x");
    assert_int_equal(tg_json_int(j, "created", 0), 1700000000);
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    assert_int_equal(tg_json_int(ch, "index", -1), 0);
    assert_string_equal(tg_json_str(json_object_get(ch, "message"), "role", ""), "assistant");
    assert_string_equal(tg_json_str(json_object_get(ch, "message"), "content", ""), c.content);
    assert_string_equal(tg_json_str(ch, "finish_reason", ""), "stop");
    assert_int_equal(tg_json_int(json_object_get(j, "usage"), "total_tokens", 0), 3);
    assert_string_equal(tg_json_str(json_object_get(j, "trustgate"), "decision", ""), "deliver");
    json_decref(j);
    tg_buf_free(&out);
}

static void test_frames_reassemble_to_the_answer(void **state)
{
    (void)state;
    const char *texts[] = {"", "short",
                           "您好，我是保险智能客服。您的问题已收到，我们会尽快为您解答。",
                           "mixed 中文 and English 😀 emoji across piece boundaries 保险保险保险"};
    for (size_t k = 0; k < TG_ARRAY_LEN(texts); k++) {
        for (size_t piece = 1; piece <= 20; piece += 3) {
            struct tg_completion c = completion(texts[k]);
            struct tg_buf out;
            bool done;
            tg_buf_init(&out, TG_BUF_UNLIMITED);
            assert_int_equal(tg_wire_sse(&c, piece, &out), TG_OK);
            json_t *evs = parse_events(out.data, &done);
            assert_true(done);
            size_t n = json_array_size(evs);
            assert_true(n >= 2);
            struct tg_buf text;
            tg_buf_init(&text, TG_BUF_UNLIMITED);
            size_t i;
            json_t *ev;
            json_array_foreach(evs, i, ev) {
                assert_string_equal(tg_json_str(ev, "object", ""), "chat.completion.chunk");
                assert_string_equal(tg_json_str(ev, "id", ""), "chatcmpl-x");
                json_t *ch = json_array_get(json_object_get(ev, "choices"), 0);
                json_t *delta = json_object_get(ch, "delta");
                assert_non_null(delta);
                if (i == 0)
                    assert_string_equal(tg_json_str(delta, "role", ""), "assistant");
                const char *piece_text = tg_json_str(delta, "content", NULL);
                if (piece_text) /* each piece is valid UTF-8 on its own: jansson checked it */
                    tg_buf_puts(&text, piece_text);
                if (i + 1 < n) {
                    assert_true(json_is_null(json_object_get(ch, "finish_reason")));
                    assert_null(json_object_get(ev, "trustgate"));
                    if (i > 0 && piece_text)
                        assert_true(strlen(piece_text) <= TG_MAX(piece, 4));
                } else {
                    assert_string_equal(tg_json_str(ch, "finish_reason", ""), "stop");
                    assert_string_equal(
                        tg_json_str(json_object_get(ev, "trustgate"), "decision", ""), "deliver");
                    assert_int_equal(tg_json_int(json_object_get(ev, "usage"), "total_tokens", 0),
                                     3);
                }
            }
            assert_string_equal(text.data ? text.data : "", texts[k]);
            tg_buf_free(&text);
            tg_buf_free(&out);
            json_decref(evs);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completion_object),
        cmocka_unit_test(test_frames_reassemble_to_the_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
