/*
 * test_jscan.c - the validating JSON scanner: grammar (checked against
 * jansson's verdict on the same inputs), paths, string decoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/jscan.h"

#include <stdlib.h>
#include <string.h>

static void test_validate_agrees_with_jansson(void **state)
{
    (void)state;
    static const char *docs[] = {
        "{}",
        "[]",
        "0",
        "-0.5e+3",
        "\"x\"",
        "true",
        "null",
        " {\"a\" : [1, 2, {\"b\": null}]} ",
        "{\"s\":\"\\u4e2d\\n\\\"\"}",
        "\"\\ud83d\\ude00\"",
        "\"中文\"",
        "[1,]",
        "{,}",
        "{\"a\"}",
        "{\"a\":1,}",
        "01",
        "1.",
        ".5",
        "-",
        "1e",
        "tru",
        "nul",
        "\"\\x\"",
        "\"abc",
        "[1 2]",
        "{\"a\":1}{}",
        "\"\x01\"",
        "\"\xff\"",
        "\"\xc3\x28\"",
        "\"\xed\xa0\x80\"",
        "",
        "   ",
        "[[[[]]]]",
        "{\"a\":{\"b\":{\"c\":[true,false,null]}}}",
        "1 2",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(docs); i++) {
        bool ours = tg_jscan_validate(docs[i], strlen(docs[i])) == TG_OK;
        json_t *j = json_loads(docs[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        bool theirs = j != NULL;
        json_decref(j);
        if (ours != theirs)
            fail_msg("doc %zu '%s': scanner %d, jansson %d", i, docs[i], ours, theirs);
    }
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    assert_int_equal(tg_jscan_validate(deep, 200), TG_E_PARSE); /* deeper than the limit */
}

static void test_find_and_decode(void **state)
{
    (void)state;
    const char *doc =
        "{\"id\":\"c-1\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
        "\"content\":\"您好\\n\\\"引号\\\" \\u00e9 \\ud83d\\ude00\"},"
        "\"finish_reason\":\"length\"},{\"index\":1}],"
        "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":-3},"
        "\"we\\u0069rd\":7,\"n\":null}";
    size_t n = strlen(doc);
    assert_int_equal(tg_jscan_validate(doc, n), TG_OK);
    const char *v;
    size_t vl;
    const char *content[] = {"choices", "#0", "message", "content"};
    assert_int_equal(tg_jscan_find(doc, n, content, 4, &v, &vl), TG_OK);
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    assert_int_equal(tg_jscan_string(v, vl, &b), TG_OK);
    assert_string_equal(b.data, "您好\n\"引号\" é 😀");
    tg_buf_free(&b);
    const char *second[] = {"choices", "#1", "index"};
    int64_t x;
    assert_int_equal(tg_jscan_find(doc, n, second, 3, &v, &vl), TG_OK);
    assert_int_equal(tg_jscan_int(v, vl, &x), TG_OK);
    assert_int_equal(x, 1);
    const char *neg[] = {"usage", "completion_tokens"};
    assert_int_equal(tg_jscan_find(doc, n, neg, 2, &v, &vl), TG_OK);
    assert_int_equal(tg_jscan_int(v, vl, &x), TG_OK);
    assert_int_equal(x, -3);
    const char *escaped_key[] = {"weird"};
    assert_int_equal(tg_jscan_find(doc, n, escaped_key, 1, &v, &vl), TG_OK);
    assert_int_equal(vl, 1);
    const char *null_key[] = {"n"};
    assert_int_equal(tg_jscan_find(doc, n, null_key, 1, &v, &vl), TG_OK);
    assert_true(tg_jscan_is_null(v, vl));
    const char *missing[][3] = {{"choices", "#2", "index"},
                                {"usage", "total", NULL},
                                {"id", "x", NULL},
                                {"choices", "x", NULL}};
    size_t lens[] = {3, 2, 2, 2};
    for (size_t i = 0; i < TG_ARRAY_LEN(lens); i++)
        assert_int_equal(tg_jscan_find(doc, n, missing[i], lens[i], &v, &vl), TG_E_NOTFOUND);
    const char *whole_obj[] = {"usage"};
    assert_int_equal(tg_jscan_find(doc, n, whole_obj, 1, &v, &vl), TG_OK);
    assert_int_equal(vl, strlen("{\"prompt_tokens\":12,\"completion_tokens\":-3}"));
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    assert_int_equal(tg_jscan_string("12", 2, &b), TG_E_PARSE);
    tg_buf_free(&b);
}

/* doc with ws written before and after every structural character outside
 * strings: the whitespace RFC 8259 allows anywhere between tokens. */
static char *spread(const char *doc, const char *ws)
{
    size_t n = strlen(doc), wl = strlen(ws);
    char *out = malloc(n * (2 * wl + 1) + 1), *o = out;
    bool in_str = false;
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        char ch = doc[i];
        bool structural = !in_str && strchr("{}[]:,", ch);
        if (structural) {
            memcpy(o, ws, wl);
            o += wl;
        }
        *o++ = ch;
        if (structural) {
            memcpy(o, ws, wl);
            o += wl;
        }
        if (in_str && ch == '\\') {
            *o++ = doc[++i];
            continue;
        }
        if (ch == '"')
            in_str = !in_str;
    }
    *o = '\0';
    return out;
}

/* Every path found in the compact form is found, with the same value, in
 * the spaced, pretty and CRLF forms real servers write. */
static void test_whitespace_anywhere(void **state)
{
    (void)state;
    const char *doc =
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
        "\"message\":{\"role\":\"assistant\",\"content\":\"a, b: {c} [d]\\\"e\",\"tool_calls\":"
        "[{\"id\":\"t1\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\": 1}\"}}]},"
        "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5},"
        "\"empty\":{},\"list\":[]}";
    static const char *const gaps[] = {" ", "  ", "\t", "\n", "\r\n", " \n\t "};
    static const char *const paths[][4] = {
        {"choices", "#0", "message", "content"},
        {"choices", "#0", "message", "tool_calls"},
        {"choices", "#0", "finish_reason", NULL},
        {"usage", "completion_tokens", NULL, NULL},
        {"empty", NULL, NULL, NULL},
    };
    static const size_t depth[] = {4, 4, 3, 2, 1};
    for (size_t g = 0; g < TG_ARRAY_LEN(gaps); g++) {
        char *sp = spread(doc, gaps[g]);
        size_t n = strlen(sp);
        json_t *j = json_loads(sp, 0, NULL);
        assert_non_null(j);
        json_decref(j);
        if (tg_jscan_validate(sp, n) != TG_OK)
            fail_msg("gap %zu: '%s' rejected", g, sp);
        for (size_t k = 0; k < TG_ARRAY_LEN(depth); k++) {
            const char *v0, *v1;
            size_t l0, l1;
            assert_int_equal(tg_jscan_find(doc, strlen(doc), paths[k], depth[k], &v0, &l0), TG_OK);
            if (tg_jscan_find(sp, n, paths[k], depth[k], &v1, &l1) != TG_OK)
                fail_msg("gap %zu: path %zu not found in '%s'", g, k, sp);
            if (v0[0] == '"') {
                assert_int_equal(l0, l1);
                assert_memory_equal(v0, v1, l0);
            } else {
                assert_int_equal(v0[0], v1[0]); /* containers keep their inner gaps */
                assert_int_equal(tg_jscan_validate(v1, l1), TG_OK);
            }
        }
        free(sp);
    }
}

/* The by-path helpers: a string decoded and cut to fit, an integer with a
 * default, and a missing or mistyped value leaving the destination alone. */
static void test_at_helpers(void **state)
{
    (void)state;
    const char *doc = "{\"a\":{\"s\":\"h\\u00e9llo\",\"n\":42,\"z\":null},\"l\":[\"x\"]}";
    size_t n = strlen(doc);
    const char *s[] = {"a", "s"}, *num[] = {"a", "n"}, *z[] = {"a", "z"}, *none[] = {"a", "q"},
               *l0[] = {"l", "#0"};
    char out[16] = "kept", small[4];
    assert_int_equal(tg_jscan_validate(doc, n), TG_OK);
    assert_true(tg_jscan_str_at(doc, n, s, 2, out, sizeof(out)));
    assert_string_equal(out, "h\xc3\xa9llo");
    assert_true(tg_jscan_str_at(doc, n, s, 2, small, sizeof(small)));
    assert_string_equal(small, "h\xc3\xa9"); /* cut to fit */
    tg_strlcpy(out, "kept", sizeof(out));
    assert_false(tg_jscan_str_at(doc, n, z, 2, out, sizeof(out)));   /* null */
    assert_false(tg_jscan_str_at(doc, n, num, 2, out, sizeof(out))); /* a number */
    assert_false(tg_jscan_str_at(doc, n, none, 2, out, sizeof(out)));
    assert_string_equal(out, "kept");
    assert_true(tg_jscan_str_at(doc, n, l0, 2, out, sizeof(out)));
    assert_string_equal(out, "x");
    assert_int_equal(tg_jscan_int_at(doc, n, num, 2, -1), 42);
    assert_int_equal(tg_jscan_int_at(doc, n, s, 2, -1), -1);
    assert_int_equal(tg_jscan_int_at(doc, n, none, 2, 7), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_agrees_with_jansson),
        cmocka_unit_test(test_find_and_decode),
        cmocka_unit_test(test_whitespace_anywhere),
        cmocka_unit_test(test_at_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
