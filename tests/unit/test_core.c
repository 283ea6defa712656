/*
 * test_core.c - errors, buffers, arena, parsing, hashing, ids, canonical
 * JSON and allocation-failure injection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_error_table(void **state)
{
    (void)state;
    assert_int_equal(TG_OK, 0);
    assert_string_equal(tg_err_name(TG_E_TOOBIG), "TOOBIG");
    assert_int_equal(tg_err_status(TG_E_TOOBIG), 413);
    assert_int_equal(tg_err_status(TG_E_AUTH), 401);
    assert_int_equal(tg_err_status(TG_E_TIMEOUT), 504);
    assert_string_equal(tg_err_type(TG_E_AUTH), "authentication_error");
    assert_string_equal(tg_err_name(-5), "INTERNAL");
}

static void test_buffer_limits(void **state)
{
    (void)state;
    struct tg_buf b;
    tg_buf_init(&b, 10);
    assert_int_equal(tg_buf_puts(&b, "12345"), TG_OK);
    assert_int_equal(tg_buf_printf(&b, "%d", 678), TG_OK);
    assert_string_equal(b.data, "12345678");
    assert_int_equal(tg_buf_puts(&b, "abc"), TG_E_TOOBIG);
    assert_string_equal(b.data, "12345678"); /* unchanged on failure */
    assert_int_equal(tg_buf_puts(&b, "ab"), TG_OK);
    size_t n;
    char *s = tg_buf_steal(&b, &n);
    assert_int_equal(n, 10);
    assert_null(b.data);
    tg_free(s);
}

static void test_arena(void **state)
{
    (void)state;
    struct tg_arena a;
    tg_arena_init(&a, 64);
    char *p = tg_arena_strdup(&a, "hello");
    void *big = tg_arena_alloc(&a, 1000);
    char *q = tg_arena_printf(&a, "%s-%d", p, 7);
    assert_non_null(big);
    assert_string_equal(q, "hello-7");
    assert_int_equal((uintptr_t)big % 16, 0);
    memset(big, 1, 1000);
    assert_string_equal(p, "hello");
    tg_arena_free(&a);
    assert_null(a.head);
}

static void test_parsers(void **state)
{
    (void)state;
    int64_t ms;
    uint64_t sz;
    assert_int_equal(tg_parse_duration_ms("150ms", &ms), TG_OK);
    assert_int_equal(ms, 150);
    assert_int_equal(tg_parse_duration_ms("10s", &ms), TG_OK);
    assert_int_equal(ms, 10000);
    assert_int_equal(tg_parse_duration_ms("1.5m", &ms), TG_OK);
    assert_int_equal(ms, 90000);
    assert_int_equal(tg_parse_duration_ms("250", &ms), TG_OK);
    assert_int_equal(ms, 250);
    assert_int_equal(tg_parse_duration_ms("10 parsecs", &ms), TG_E_PARSE);
    assert_int_equal(tg_parse_duration_ms("-1s", &ms), TG_E_PARSE);
    assert_int_equal(tg_parse_size("1MiB", &sz), TG_OK);
    assert_int_equal(sz, 1048576);
    assert_int_equal(tg_parse_size("64k", &sz), TG_OK);
    assert_int_equal(sz, 65536);
    assert_int_equal(tg_parse_size("2MB", &sz), TG_OK);
    assert_int_equal(sz, 2000000);
    assert_int_equal(tg_parse_size("lots", &sz), TG_E_PARSE);
    int64_t v;
    assert_int_equal(tg_parse_i64("-42", &v), TG_OK);
    assert_int_equal(v, -42);
    assert_int_equal(tg_parse_i64("42x", &v), TG_E_PARSE);
    assert_int_equal(tg_parse_i64("", &v), TG_E_PARSE);
    assert_int_equal(tg_parse_i64("99999999999999999999", &v), TG_E_PARSE);
}

static void test_sha256_and_hmac(void **state)
{
    (void)state;
    uint8_t h[32];
    char hex[65];
    /* FIPS 180-2 test vector "abc" */
    tg_sha256("abc", 3, h);
    tg_hex_encode(h, 32, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* RFC 4231 test case 2 */
    tg_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, h);
    tg_hex_encode(h, 32, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    uint8_t back[32];
    assert_int_equal(tg_hex_decode(hex, back, 32), TG_OK);
    assert_memory_equal(back, h, 32);
    assert_int_equal(tg_hex_decode("zz", back, 1), TG_E_PARSE);
    assert_true(tg_ct_equal("abc", "abc", 3));
    assert_false(tg_ct_equal("abc", "abd", 3));
    /* RFC 4231 test cases 1 (20-byte key) and 6 (a 131-byte key, hashed first) */
    uint8_t key[131];
    memset(key, 0x0b, 20);
    tg_hmac_sha256(key, 20, "Hi There", 8, h);
    tg_hex_encode(h, 32, hex);
    assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    memset(key, 0xaa, sizeof(key));
    const char *big = "Test Using Larger Than Block-Size Key - Hash Key First";
    tg_hmac_sha256(key, sizeof(key), big, strlen(big), h);
    tg_hex_encode(h, 32, hex);
    assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    /* a key of exactly one block */
    memset(key, 0x61, 64);
    uint8_t h2[32];
    tg_hmac_sha256(key, 64, "x", 1, h);
    tg_hmac_sha256(key, 63, "x", 1, h2);
    assert_memory_not_equal(h, h2, 32);
}

/* PBKDF2-HMAC-SHA256 against RFC 7914, section 11 (P="Password", S="NaCl",
 * c=80000; the first 32 of its 64 bytes), then our own hashes round-trip. */
static void test_password_hashes(void **state)
{
    (void)state;
    const char *rfc = "pbkdf2-sha256$80000$4e61436c$"
                      "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56";
    assert_true(tg_password_hash_valid(rfc));
    assert_int_equal(tg_password_verify("Password", rfc), TG_OK);
    assert_int_equal(tg_password_verify("password", rfc), TG_E_AUTH);
    char h[TG_PASSWORD_HASH_MAX], h2[TG_PASSWORD_HASH_MAX];
    assert_int_equal(tg_password_hash("demo", 1000, h), TG_OK);
    assert_int_equal(tg_password_hash("demo", 1000, h2), TG_OK);
    assert_string_not_equal(h, h2); /* a fresh salt each time */
    assert_true(tg_str_has_prefix(h, "pbkdf2-sha256$1000$"));
    assert_int_equal(tg_password_verify("demo", h), TG_OK);
    assert_int_equal(tg_password_verify("demo ", h), TG_E_AUTH);
    assert_int_equal(tg_password_verify("", h), TG_E_AUTH);
    /* malformed: wrong scheme, too few iterations, odd salt, short hash */
    const char *bad[] = {"sha256$80000$4e61436c$00",
                         "pbkdf2-sha256$10$4e61436c$"
                         "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56",
                         "pbkdf2-sha256$80000$4e6143c$"
                         "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56",
                         "pbkdf2-sha256$80000$4e61436c$4ddcd8f6",
                         "pbkdf2-sha256$80000$$00",
                         "",
                         NULL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(tg_password_hash_valid(bad[i]));
        assert_int_equal(tg_password_verify("Password", bad[i]), TG_E_PARSE);
    }
}

static void test_ids_are_unique_and_sortable(void **state)
{
    (void)state;
    char a[TG_ID_MAX], b[TG_ID_MAX];
    assert_int_equal(tg_id_new("turn", a), TG_OK);
    assert_int_equal(tg_id_new("turn", b), TG_OK);
    assert_true(tg_str_has_prefix(a, "turn_"));
    assert_int_equal(strlen(a), 5 + 28);
    assert_string_not_equal(a, b);
    /* the time prefix orders ids by creation */
    assert_true(memcmp(a, b, 5 + 12) <= 0);
}

static void test_utf8_decode(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len, want;
        uint32_t cp;
    } cases[] = {
        {"a", 1, 1, 'a'},          {"\xc3\xa9", 2, 2, 0xE9},
        {"中", 3, 3, 0x4E2D},      {"😀", 4, 4, 0x1F600},
        {"\xc3", 1, 0, 0},         {"\xc0\xaf", 2, 0, 0},
        {"\xed\xa0\x80", 3, 0, 0}, {"\xf4\x90\x80\x80", 4, 0, 0},
        {"\x80", 1, 0, 0},         {"", 0, 0, 0},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        uint32_t cp = 0;
        assert_int_equal(tg_utf8_decode(cases[i].s, cases[i].len, &cp), cases[i].want);
        if (cases[i].want)
            assert_int_equal(cp, cases[i].cp);
    }
}

static void test_utf8_prev(void **state)
{
    (void)state;
    const char *s = "a中😀\x80";
    uint32_t cp;
    size_t n = strlen(s);
    assert_int_equal(tg_utf8_prev(s, n, &cp), n - 1); /* a stray continuation byte */
    assert_int_equal(cp, 0xFFFD);
    assert_int_equal(tg_utf8_prev(s, n - 1, &cp), 4);
    assert_int_equal(cp, 0x1F600);
    assert_int_equal(tg_utf8_prev(s, 4, &cp), 1);
    assert_int_equal(cp, 0x4E2D);
    assert_int_equal(tg_utf8_prev(s, 1, &cp), 0);
    assert_int_equal(cp, 'a');
    assert_int_equal(tg_utf8_prev(s, 0, &cp), 0);
    assert_int_equal(cp, 0);
}

static void test_canonical_json(void **state)
{
    (void)state;
    json_t *j = json_loads("{ \"b\" : [1, {\"z\":1, \"a\":\"中\"}], \"a\": null }", 0, NULL);
    char *s = tg_json_canonical(j, NULL);
    assert_string_equal(s, "{\"a\":null,\"b\":[1,{\"a\":\"中\",\"z\":1}]}");
    tg_free(s);
    json_decref(j);
}

static void test_allocation_failure_injection(void **state)
{
    (void)state;
    tg_mem_fail_after(2);
    void *a = tg_malloc(8), *b = tg_malloc(8), *c = tg_malloc(8);
    tg_mem_fail_after(-1);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    tg_free(a);
    tg_free(b);
    struct tg_buf buf;
    tg_buf_init(&buf, TG_BUF_UNLIMITED);
    tg_mem_fail_after(0);
    assert_int_equal(tg_buf_puts(&buf, "x"), TG_E_NOMEM);
    tg_mem_fail_after(-1);
    tg_buf_free(&buf);
    /* one failure only: the third allocation, then all succeed again */
    assert_true(tg_mem_fail_once(2) < 0);
    void *v[5];
    for (int i = 0; i < 5; i++)
        v[i] = tg_malloc(8);
    assert_true(tg_mem_fail_once(-1) < 0); /* it fired */
    for (int i = 0; i < 5; i++) {
        if (i == 2)
            assert_null(v[i]);
        else
            assert_non_null(v[i]);
        tg_free(v[i]);
    }
    assert_int_equal(tg_mem_fail_once(10), -1);
    tg_free(tg_malloc(8));
    assert_int_equal(tg_mem_fail_once(-1), 9); /* armed, not reached */
}

/* The eight-bytes-at-a-time tests agree with the byte-by-byte ones for every
 * byte value in every position, alone and next to another byte. */
static void test_swar(void **state)
{
    (void)state;
    for (int pos = 0; pos < 8; pos++) {
        for (int b = 0; b < 256; b++) {
            for (int other = 0; other < 256; other += 17) {
                char buf[8];
                memset(buf, 'a', sizeof(buf));
                buf[(pos + 3) % 8] = (char)other;
                buf[pos] = (char)b;
                bool special = false, high = false;
                for (int k = 0; k < 8; k++) {
                    unsigned char c = (unsigned char)buf[k];
                    special |= c < 0x20 || c == '"' || c == '\\';
                    high |= c >= 0x80;
                }
                assert_int_equal(tg_swar_special(buf), special);
                assert_int_equal(tg_swar_high(buf), high);
            }
        }
    }
}

/* Every code point's encoding decodes back to it, in the length UTF-8 gives it. */
static void test_utf8_encode(void **state)
{
    (void)state;
    static const uint32_t cps[] = {0, 0x41, 0x7F, 0x80, 0x7FF, 0x800, 0x4E2D, 0xFFFD, 0xFFFF,
                                   0x10000, 0x1F600, 0x10FFFF};
    static const size_t lens[] = {1, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4};
    for (size_t i = 0; i < TG_ARRAY_LEN(cps); i++) {
        char b[4];
        uint32_t back = 0;
        size_t n = tg_utf8_encode(cps[i], b);
        assert_int_equal(n, lens[i]);
        assert_int_equal(tg_utf8_decode(b, n, &back), n);
        assert_int_equal(back, cps[i]);
    }
    char b[4];
    assert_int_equal(tg_utf8_encode(0x4E2D, b), 3);
    assert_memory_equal(b, "\xE4\xB8\xAD", 3); /* 中 */
}

/* FNV-1a against the published test vectors (the FNV reference test suite):
 * "" is the offset basis, "a" and "foobar" their known hashes, and a hash
 * built from pieces equals the hash of the whole. */
static void test_fnv1a(void **state)
{
    (void)state;
    assert_true(tg_fnv1a64("", 0, TG_FNV64_INIT) == 0xcbf29ce484222325ULL);
    assert_true(tg_fnv1a64("a", 1, TG_FNV64_INIT) == 0xaf63dc4c8601ec8cULL);
    assert_true(tg_fnv1a64("foobar", 6, TG_FNV64_INIT) == 0x85944171f73967e8ULL);
    assert_true(tg_fnv1a64("bar", 3, tg_fnv1a64("foo", 3, TG_FNV64_INIT)) ==
                0x85944171f73967e8ULL);
    assert_true(tg_fnv1a32("", 0) == 0x811c9dc5u);
    assert_true(tg_fnv1a32("a", 1) == 0xe40c292cu);
    assert_true(tg_fnv1a32("foobar", 6) == 0xbf9cf968u);
}

/* The growable array doubles from its first size, keeps what it holds, and
 * leaves the array as it was when an allocation fails. */
static void test_grow(void **state)
{
    (void)state;
    int *v = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(tg_grow(&v, &cap, n, sizeof(*v), 4), TG_OK);
        v[n++] = i;
    }
    assert_int_equal(cap, 128); /* 4, 8, 16, 32, 64, 128 */
    for (int i = 0; i < 100; i++)
        assert_int_equal(v[i], i);
    /* room left: no allocation at all */
    tg_mem_fail_after(0);
    assert_int_equal(tg_grow(&v, &cap, n, sizeof(*v), 4), TG_OK);
    n = cap;
    int *before = v;
    assert_int_equal(tg_grow(&v, &cap, n, sizeof(*v), 4), TG_E_NOMEM);
    tg_mem_fail_after(-1);
    assert_ptr_equal(v, before);
    assert_int_equal(cap, 128);
    assert_int_equal(v[99], 99);
    /* a size that would overflow is refused */
    assert_int_equal(tg_grow(&v, &cap, n, SIZE_MAX / 2, 4), TG_E_TOOBIG);
    tg_free(v);
}

/* What jansson refuses as a string is told apart from what it had no memory for. */
static void test_utf8_valid(void **state)
{
    (void)state;
    assert_true(tg_utf8_valid("", 0));
    assert_true(tg_utf8_valid("保单 ok", strlen("保单 ok")));
    assert_false(tg_utf8_valid("\xe4\xbf", 2));     /* cut in the middle */
    assert_false(tg_utf8_valid("\xed\xa0\x80", 3)); /* a surrogate */
    assert_false(tg_utf8_valid("a\xc0\xaf", 3));    /* overlong */
    assert_true(tg_utf8_valid("a\0b", 3));          /* NUL is a character */
}

/* The checked setters: ownership of v passes in every case, a failed
 * constructor or a failed grow is TG_E_NOMEM and leaves the container as it
 * was.  jansson allocates through tg_malloc here as in the daemon. */
static void test_json_checked_set(void **state)
{
    (void)state;
    json_set_alloc_funcs(tg_malloc, tg_free);
    json_t *o = json_object(), *a = json_array();
    assert_int_equal(tg_json_set(o, "k", json_string("v")), TG_OK);
    assert_int_equal(tg_json_push(a, json_integer(1)), TG_OK);
    assert_int_equal(tg_json_set(o, "n", NULL), TG_E_NOMEM);
    assert_int_equal(tg_json_push(a, NULL), TG_E_NOMEM);
    assert_int_equal(tg_json_set(NULL, "k", json_string("v")), TG_E_NOMEM);
    assert_int_equal(tg_json_push(NULL, json_integer(2)), TG_E_NOMEM);
    assert_int_equal(tg_json_set(a, "k", json_string("v")), TG_E_INTERNAL);
    assert_int_equal(tg_json_push(o, json_integer(2)), TG_E_INTERNAL);
    /* the constructor's allocation fails */
    tg_mem_fail_after(0);
    assert_int_equal(tg_json_set(o, "s", json_string("longer than a small string")), TG_E_NOMEM);
    assert_int_equal(tg_json_push(a, json_string("x")), TG_E_NOMEM);
    tg_mem_fail_after(-1);
    /* the value is made but the container cannot grow (an object's new key
     * always allocates, an array only when full): v is released (ASan) */
    for (int i = 0; i < 64; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        json_t *v = json_integer(i), *w = json_integer(i);
        size_t na = json_array_size(a);
        tg_mem_fail_after(0);
        int rs = tg_json_set(o, key, v), rp = tg_json_push(a, w);
        tg_mem_fail_after(-1);
        assert_int_equal(rs, TG_E_NOMEM);
        assert_true(rp == TG_OK || rp == TG_E_NOMEM);
        assert_int_equal(json_array_size(a), rp == TG_OK ? na + 1 : na);
        if (rp)
            assert_int_equal(tg_json_push(a, json_integer(i)), TG_OK);
    }
    char *s = tg_json_canonical(o, NULL);
    assert_non_null(s);
    assert_string_equal(s, "{\"k\":\"v\"}");
    tg_free(s);
    assert_int_equal(json_array_size(a), 65);
    json_decref(o);
    json_decref(a);
    json_set_alloc_funcs(malloc, free);
}

/* tg_json_dumps writes what json_dumps writes, and under a failed
 * allocation anywhere gives the whole text or nothing, never a text with a
 * piece missing (jansson's dumper ignores a failure while writing a key). */
static void test_json_dumps_whole_or_nothing(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:s, s:[i, f, s], s:{s:b, s:n}}", "a long key that spans the buffer",
                          "值 value", "list", 1, 2.5, "x", "nested", "yes", 1, "none");
    assert_non_null(v);
    char *want = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    char *got = tg_json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(got, want);
    tg_free(got);
    int whole = 0, none = 0;
    for (long k = 0; k < 64; k++) {
        tg_mem_fail_once(k);
        got = tg_json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        tg_mem_fail_once(-1);
        if (got) {
            assert_string_equal(got, want);
            whole++;
        } else {
            none++;
        }
        tg_free(got);
    }
    assert_true(none > 0 && whole > 0); /* some allocations were on the way, then none */
    assert_null(tg_json_dumps(NULL, 0));
    free(want);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_buffer_limits),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_sha256_and_hmac),
        cmocka_unit_test(test_swar),
        cmocka_unit_test(test_password_hashes),
        cmocka_unit_test(test_ids_are_unique_and_sortable),
        cmocka_unit_test(test_canonical_json),
        cmocka_unit_test(test_utf8_decode),
        cmocka_unit_test(test_utf8_prev),
        cmocka_unit_test(test_allocation_failure_injection),
        cmocka_unit_test(test_utf8_encode),
        cmocka_unit_test(test_fnv1a),
        cmocka_unit_test(test_grow),
        cmocka_unit_test(test_json_checked_set),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_json_dumps_whole_or_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
