/*
 * test_jw.c - the JSON writer: structure, escaping, numbers, jansson
 * values (sorted and not), and sticky errors.  Everything it writes must
 * parse back with jansson to the same value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/jw.h"

#include <math.h>
#include <string.h>

static void test_structure_and_escaping(void **state)
{
    (void)state;
    struct tg_buf b;
    struct tg_jw w;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    tg_jw_init(&w, &b);
    tg_jw_obj(&w);
    tg_jw_kstr(&w, "s", "q\" b\\ n\n t\t c\x01 u中文😀 /");
    tg_jw_kint(&w, "i", -9007199254740993LL);
    tg_jw_key(&w, "a");
    tg_jw_arr(&w);
    tg_jw_bool(&w, true);
    tg_jw_null(&w);
    tg_jw_obj(&w);
    tg_jw_end(&w);
    tg_jw_arr(&w);
    tg_jw_end(&w);
    tg_jw_raw(&w, "{\"x\":1}", 7);
    tg_jw_end(&w);
    tg_jw_kstr(&w, "n", NULL);
    tg_jw_end(&w);
    assert_int_equal(tg_jw_finish(&w), TG_OK);
    assert_string_equal(b.data, "{\"s\":\"q\\\" b\\\\ n\\n t\\t c\\u0001 u中文😀 /\","
                                "\"i\":-9007199254740993,\"a\":[true,null,{},[],{\"x\":1}],"
                                "\"n\":null}");
    json_t *j = json_loads(b.data, 0, NULL);
    assert_non_null(j);
    assert_string_equal(tg_json_str(j, "s", ""), "q\" b\\ n\n t\t c\x01 u中文😀 /");
    json_decref(j);
    tg_buf_free(&b);
}

static void test_reals(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {0.0, "0.0"},           {1.0, "1.0"},         {-2.5, "-2.5"},
        {0.7, "0.7"},           {0.1 + 0.2, "0.3"},   {0.6527395364428625, "0.65274"},
        {43.949602232439624, "43.949602"}, {123456789.125, "123456789.125"},
        {1e-7, "9.9999999999999995e-08"},  {1e300, "1.0000000000000001e+300"},
        {-0.0000004, "-3.9999999999999998e-07"}, {999999.9999996, "1000000.0"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        struct tg_buf b;
        struct tg_jw w;
        tg_buf_init(&b, TG_BUF_UNLIMITED);
        tg_jw_init(&w, &b);
        tg_jw_real(&w, cases[i].v);
        assert_int_equal(tg_jw_finish(&w), TG_OK);
        if (strcmp(b.data, cases[i].want) != 0)
            fail_msg("%.17g: got %s, want %s", cases[i].v, b.data, cases[i].want);
        json_t *j = json_loads(b.data, JSON_DECODE_ANY, NULL);
        assert_true(json_is_real(j)); /* never written as an integer */
        assert_true(fabs(json_real_value(j) - cases[i].v) <= 5e-7 * TG_MAX(1.0, fabs(cases[i].v)));
        json_decref(j);
        tg_buf_free(&b);
    }
    struct tg_buf b;
    struct tg_jw w;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    tg_jw_init(&w, &b);
    tg_jw_real(&w, NAN);
    tg_jw_finish(&w);
    assert_string_equal(b.data, "null");
    tg_buf_free(&b);
}

static void test_jansson_values(void **state)
{
    (void)state;
    const char *in = "{\"z\":[1,2.5,\"x\",{\"b\":null,\"a\":false}],\"a\":{\"d\":{},\"c\":true}}";
    json_t *v = json_loads(in, JSON_PRESERVE_ORDER, NULL);
    for (int sorted = 0; sorted <= 1; sorted++) {
        struct tg_buf b;
        struct tg_jw w;
        tg_buf_init(&b, TG_BUF_UNLIMITED);
        tg_jw_init(&w, &b);
        w.sorted = sorted;
        tg_jw_json(&w, v);
        assert_int_equal(tg_jw_finish(&w), TG_OK);
        if (sorted)
            assert_string_equal(b.data, "{\"a\":{\"c\":true,\"d\":{}},\"z\":[1,2.5,\"x\",{\"a\":"
                                        "false,\"b\":null}]}");
        else
            assert_string_equal(b.data, in);
        json_t *back = json_loads(b.data, 0, NULL);
        assert_true(json_equal(back, v));
        json_decref(back);
        tg_buf_free(&b);
    }
    json_decref(v);
}

static void test_errors_are_sticky(void **state)
{
    (void)state;
    struct tg_buf b;
    struct tg_jw w;
    tg_buf_init(&b, 8);
    tg_jw_init(&w, &b);
    tg_jw_obj(&w);
    tg_jw_kstr(&w, "long key", "long value");
    tg_jw_end(&w);
    assert_int_equal(tg_jw_finish(&w), TG_E_TOOBIG);
    tg_buf_free(&b);

    tg_buf_init(&b, TG_BUF_UNLIMITED);
    tg_jw_init(&w, &b);
    tg_jw_arr(&w);
    assert_int_equal(tg_jw_finish(&w), TG_E_INVAL); /* unclosed */
    tg_buf_free(&b);

    tg_buf_init(&b, TG_BUF_UNLIMITED);
    tg_jw_init(&w, &b);
    for (int i = 0; i < TG_JW_DEPTH + 2; i++)
        tg_jw_arr(&w);
    assert_int_equal(tg_jw_finish(&w), TG_E_TOOBIG);
    tg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure_and_escaping),
        cmocka_unit_test(test_reals),
        cmocka_unit_test(test_jansson_values),
        cmocka_unit_test(test_errors_are_sticky),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
