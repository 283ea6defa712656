/*
 * test_grounding.c - grounding checks and PII masking (src/policy/grounding.c,
 * src/policy/pii.c): a table of drafts against evidence (values across
 * notations, percentages, dates with and without a year, durations in
 * Chinese and English, ungrounded claims with their spans), what is no
 * claim, a text grounding itself, limits and allocation failure; a table
 * of masks; pseudonyms against HMAC-SHA256 vectors computed with
 * `openssl dgst -sha256 -hmac`; and a timing figure, printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ grounding */

struct ground_case {
    const char *draft;
    const char *evidence[3]; /* NULL-terminated */
    const char *ungrounded;  /* "kind:text|kind:text", in draft order; "" for none */
};

static const struct ground_case ground_cases[] = {
    /* the same string */
    {"犹豫期为15天，请知悉。", {"犹豫期15天。"}, ""},
    {"客服热线95386，全天服务。", {"客服热线：95386"}, ""},
    /* amounts across notations */
    {"最高保额5万元。", {"最高保额为50000元。"}, ""},
    {"最高保额50000元。", {"最高保额为五万元。"}, ""},
    {"最高保额五万元。", {"保额最高5万元"}, ""},
    {"年保费1,200元。", {"年保费1200元"}, ""},
    {"最高赔付50万。", {"最高赔付500,000元"}, ""},
    {"首付¥5,000.00即可。", {"首付5000元"}, ""},
    {"额度1.5亿。", {"额度150000000元"}, ""},
    {"预算5w左右", {"预算5万"}, ""},
    {"保额50万元", {"保额：500000"}, ""}, /* a table without 元 */
    {"5到8万的产品", {"50000-80000元"}, ""},
    /* percentages */
    {"年化3.5%。", {"年化收益率3.50%"}, ""},
    {"手续费为百分之五。", {"手续费5%"}, ""},
    {"费率0.5%", {"费率千分之五"}, ""},
    {"rate of 3.5 percent", {"利率3.5%"}, ""},
    {"利率2.5-3.5%", {"利率2.5%至3.5%"}, ""},
    {"年化3.5%", {"年化3.6%"}, "percent:3.5%"},
    /* dates */
    {"2024年3月5日起生效", {"生效日期：2024-03-05"}, ""},
    {"3月5日起生效", {"自2024年3月5日起生效"}, ""},
    {"2024年3月5日起生效", {"3月5日起生效"}, ""},
    {"March 5, 2024", {"2024年3月5日"}, ""},
    {"二〇二四年三月五日", {"2024-3-5"}, ""},
    {"2024年3月6日起生效", {"2024年3月5日起生效"}, "date:2024年3月6日"},
    {"2025年3月5日前", {"2024年3月5日前"}, "date:2025年3月5日"},
    {"the 2024 edition", {"2024年版条款"}, ""},
    /* durations and counts */
    {"犹豫期30天", {"犹豫期三十天"}, ""},
    {"犹豫期三十日", {"犹豫期30天"}, ""},
    {"within 90 days", {"90天内"}, ""},
    {"refund in 5 business days", {"五个工作日内退款"}, ""},
    {"3-5个工作日到账", {"三到五个工作日到账"}, ""},
    {"等待期3个月", {"等待期为三个月"}, ""},
    {"年满18周岁", {"18周岁以上"}, ""},
    {"30天到账", {"30个工作日到账"}, "number:30天"},
    {"等待期180天", {"等待期90天"}, "number:180天"},
    /* times of day */
    {"下午3点前", {"15:00前"}, ""},
    {"9:00-17:00", {"上午9点至下午5点"}, ""},
    /* ungrounded amounts */
    {"最高保额6万元。", {"最高保额5万元。"}, "amount:6万元"},
    {"退款1000元", {"退款1000美元"}, "amount:1000元"},
    {"保费每年2580元", {"保费每年2,850元"}, "amount:2580元"},
    /* codes */
    {"请拨打400-820-8820", {"热线4008208820"}, ""},
    {"请拨打4008208820", {"热线400-820-8820"}, ""},
    {"请拨打400-820-8821", {"热线400-820-8820"}, "number:400-820-8821"},
    /* several claims: exactly the ungrounded ones, with their spans */
    {"保额50万元，犹豫期15天，年化3.5%，等待期90天，2024年3月5日起生效。",
     {"保额五十万元；犹豫期十五日", "年化3.0%；2024年3月5日"},
     "percent:3.5%|number:90天"},
    /* no evidence at all: every claim */
    {"保额50万元，犹豫期15天，热线95386。", {NULL}, "amount:50万元|number:15天|number:95386"},
    /* no claims */
    {"您好，请问有什么可以帮您？", {"保额5万元"}, ""},
    {"第1步，共3步；一次性付清；两个方面。", {NULL}, ""},
    {"1. 登录\n2. 提交资料\n10. 等待审核", {NULL}, ""},
    {"版本v2.0，保单号P2024000123，5G网络，邮箱123@qq.com", {NULL}, ""},
};

/* The claims as "kind:text|...", for comparing with the table. */
static void describe_claims(const char *draft, const struct tg_claim *c, size_t n, char *buf,
                            size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%s:%.*s", i ? "|" : "", c[i].kind,
                                (int)(c[i].end - c[i].start), draft + c[i].start);
}

static void test_grounding_table(void **state)
{
    struct tg_claim claims[16];
    char got[512];
    (void)state;
    for (size_t i = 0; i < TG_ARRAY_LEN(ground_cases); i++) {
        const struct ground_case *c = &ground_cases[i];
        size_t n_ev = 0, n = 99;
        while (n_ev < 3 && c->evidence[n_ev])
            n_ev++;
        assert_int_equal(tg_grounding_check(c->draft, strlen(c->draft), c->evidence, n_ev, claims,
                                            TG_ARRAY_LEN(claims), &n),
                         TG_OK);
        assert_true(n <= TG_ARRAY_LEN(claims));
        for (size_t k = 0; k < n; k++)
            assert_true(claims[k].start < claims[k].end && claims[k].end <= strlen(c->draft));
        describe_claims(c->draft, claims, n, got, sizeof(got));
        if (strcmp(got, c->ungrounded) != 0)
            fail_msg("case %zu \"%s\": ungrounded \"%s\", want \"%s\"", i, c->draft, got,
                     c->ungrounded);
    }
}

/* Every claim of a text is grounded by the text itself, whatever it holds. */
static void test_grounds_itself(void **state)
{
    static const char *const pieces[] = {
        "5",     "30", "1.5", "3,000", "万",     "元", "%",      "天",   "年",   "月",   "日",
        "号",    "点", "半",  "个",    "工作日", "到", "-",      ":",    ".",    "/",    " ",
        "，",    "三", "十",  "两",    "一",     "零", "百分之", "下午", "$",    "¥",    "days",
        "March", "k",  "w",   "多",    "\n",     "@",  "P",      "x",    "\xff", "2024", "0086"};
    struct tg_claim claims[8];
    char text[256];
    size_t n;
    unsigned seed = 12345;
    (void)state;
    for (int round = 0; round < 3000; round++) {
        size_t len = 0;
        int parts = 1 + (int)((seed = seed * 1103515245 + 12345) >> 16) % 24;
        for (int k = 0; k < parts; k++) {
            const char *p =
                pieces[((seed = seed * 1103515245 + 12345) >> 16) % TG_ARRAY_LEN(pieces)];
            size_t m = strlen(p);
            if (len + m >= sizeof(text))
                break;
            memcpy(text + len, p, m);
            len += m;
        }
        text[len] = '\0';
        const char *ev[1] = {text};
        assert_int_equal(tg_grounding_check(text, len, ev, 1, claims, 8, &n), TG_OK);
        if (n)
            fail_msg("\"%s\" does not ground itself: %zu claims, first %s at %u-%u", text, n,
                     claims[0].kind, claims[0].start, claims[0].end);
    }
}

static void test_grounding_limits(void **state)
{
    const char *draft = "保额6万元，犹豫期20天，利率4%";
    const char *ev[] = {NULL, "保额5万元", NULL};
    struct tg_claim one[1];
    size_t n = 99;
    (void)state;
    /* fewer slots than claims: the count is the total */
    assert_int_equal(tg_grounding_check(draft, strlen(draft), ev, 3, one, 1, &n), TG_OK);
    assert_int_equal(n, 3);
    assert_string_equal(one[0].kind, "amount");
    assert_int_equal(one[0].start, strlen("保额"));
    assert_int_equal(one[0].end, strlen("保额6万元"));
    /* only the count */
    n = 99;
    assert_int_equal(tg_grounding_check(draft, strlen(draft), ev, 3, NULL, 0, &n), TG_OK);
    assert_int_equal(n, 3);
    /* a span never runs past the length given */
    n = 99;
    assert_int_equal(tg_grounding_check(draft, strlen("保额6万"), NULL, 0, one, 1, &n), TG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(one[0].end, strlen("保额6万"));
    /* empty draft */
    n = 99;
    assert_int_equal(tg_grounding_check(NULL, 0, NULL, 0, NULL, 0, &n), TG_OK);
    assert_int_equal(n, 0);
    /* bad arguments leave *n alone */
    n = 99;
    assert_int_equal(tg_grounding_check(NULL, 5, ev, 3, one, 1, &n), TG_E_INVAL);
    assert_int_equal(tg_grounding_check(draft, strlen(draft), NULL, 2, one, 1, &n), TG_E_INVAL);
    assert_int_equal(n, 99);
}

/* Evidence with more quantities than the set holds without the heap, and
 * allocation failing at every step until the check succeeds. */
static void test_grounding_large_and_nomem(void **state)
{
    struct tg_buf ev, draft;
    struct tg_claim claims[4];
    const char *evp[1];
    size_t n = 0;
    int rc = TG_E_NOMEM;
    long fail;
    (void)state;
    tg_buf_init(&ev, TG_BUF_UNLIMITED);
    tg_buf_init(&draft, TG_BUF_UNLIMITED);
    for (int i = 1; i <= 600; i++)
        assert_int_equal(tg_buf_printf(&ev, "第%d项%d元，", i, i * 100), TG_OK);
    assert_int_equal(tg_buf_puts(&draft, "甲30000元，乙59900元，丙60100元，丁123456元"), TG_OK);
    evp[0] = ev.data;
    assert_int_equal(tg_grounding_check(draft.data, draft.len, evp, 1, claims, 4, &n), TG_OK);
    assert_int_equal(n, 2); /* 60100 and 123456 */
    for (fail = 0; rc == TG_E_NOMEM && fail < 100; fail++) {
        tg_mem_fail_after(fail);
        rc = tg_grounding_check(draft.data, draft.len, evp, 1, claims, 4, &n);
        tg_mem_fail_after(-1);
        assert_true(rc == TG_OK || rc == TG_E_NOMEM);
    }
    assert_true(fail > 1); /* it did allocate, and failed cleanly first */
    assert_int_equal(rc, TG_OK);
    assert_int_equal(n, 2);
    tg_buf_free(&ev);
    tg_buf_free(&draft);
}

/* CPU time of this process: the wall clock also counts other processes
 * on a busy machine. */
static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A 1,000-character draft against five 600-character passages, dense with
 * numbers (one every dozen characters). */
static void test_grounding_speed(void **state)
{
    static const char draft_part[] =
        "您好，根据您的保单条款，合同生效满30天后可以申请退保，退保金额为保单的现金价值，"
        "一般在5个工作日内退回到您的银行账户。本产品年化收益率3.5%，最高保额50万元，"
        "如有疑问请拨打客服热线95386，服务时间9:00-21:00。";
    static const char ev_part[] =
        "第十二条 犹豫期：投保人收到保险合同之日起15日内为犹豫期。犹豫期后退保的，"
        "本公司收取保费的百分之二作为手续费，退保款于五个工作日内退还。"
        "本产品预定利率3.50%，最高保额五十万元，2024年3月5日起执行。";
    struct tg_buf draft, ev[5];
    const char *evp[5];
    struct tg_claim claims[32];
    size_t n = 0, chars = 0;
    int iters = 2000;
    (void)state;
    tg_buf_init(&draft, TG_BUF_UNLIMITED);
    while (chars < 1000) {
        assert_int_equal(tg_buf_puts(&draft, draft_part), TG_OK);
        chars = 0;
        for (size_t i = 0; i < draft.len; i++)
            chars += ((unsigned char)draft.data[i] & 0xC0) != 0x80;
    }
    for (int k = 0; k < 5; k++) {
        tg_buf_init(&ev[k], TG_BUF_UNLIMITED);
        while (ev[k].len < 600 * 3)
            assert_int_equal(tg_buf_puts(&ev[k], ev_part), TG_OK);
        evp[k] = ev[k].data;
    }
    int64_t t0 = tg_clock_mono_ns(), c0 = cpu_ns();
    for (int i = 0; i < iters; i++)
        assert_int_equal(tg_grounding_check(draft.data, draft.len, evp, 5, claims, 32, &n), TG_OK);
    int64_t dt = tg_clock_mono_ns() - t0, dc = cpu_ns() - c0;
    /* 30天 and 9:00/21:00 (and their repetitions) are in no passage */
    assert_true(n > 0);
    printf("grounding: %zu-character draft (%zu bytes), 5 passages of %zu bytes: "
           "%zu ungrounded, %.1f us per check (%.1f us of CPU)\n",
           chars, draft.len, ev[0].len, n, (double)dt / iters / 1e3, (double)dc / iters / 1e3);
    tg_buf_free(&draft);
    for (int k = 0; k < 5; k++)
        tg_buf_free(&ev[k]);
}

/* ------------------------------------------------------------ masking */

#define POLICY "P[0-9]{10}"

struct mask_case {
    const char *text;
    const char *masked;
};

static const struct mask_case mask_cases[] = {
    {"手机13812345678", "手机138****5678"},
    {"13812345678", "138****5678"},
    {"+8613812345678", "+86138****5678"},
    {"电话+86 13812345678。", "电话+86 138****5678。"},
    {"138-1234-5678请回电", "138-****-5678请回电"},
    {"１３８１２３４５６７８", "１３８****５６７８"},
    {"身份证11010519491231002X", "身份证1101**********002X"},
    {"110105 19491231 002X", "1101** ******** 002X"},
    {"卡号6222021234567890128", "卡号***************0128"},
    {"4111-1111-1111-1111 到账", "****-****-****-1111 到账"},
    {"邮箱zhang.san@example.com。", "邮箱z***@example.com。"},
    {"mail me at Wang.Wei@Example.COM.", "mail me at W***@Example.COM."},
    {"a@example.com", "***@example.com"},
    {"保单P2024000123已生效", "保单P2****23已生效"},
    {"我是张三，手机13812345678，邮箱zs@example.com，卡号4111111111111111，保单P2024000123。",
     "我是张三，手机138****5678，邮箱z***@example.com，卡号************1111，保单P2****23。"},
    {"\xff"
     "13812345678\xfe",
     "\xff"
     "138****5678\xfe"},
    {"您好，请问有什么可以帮您？金额5万元，日期2024-03-05。",
     "您好，请问有什么可以帮您？金额5万元，日期2024-03-05。"},
    {"", ""},
};

static void test_mask_table(void **state)
{
    struct tg_buf out;
    (void)state;
    tg_buf_init(&out, TG_BUF_UNLIMITED);
    for (size_t i = 0; i < TG_ARRAY_LEN(mask_cases); i++) {
        const struct mask_case *c = &mask_cases[i];
        tg_buf_reset(&out);
        assert_int_equal(tg_pii_mask(c->text, strlen(c->text), POLICY, &out), TG_OK);
        if (out.len != strlen(c->masked) || memcmp(out.data, c->masked, out.len) != 0)
            fail_msg("case %zu: \"%s\" masked as \"%s\", want \"%s\"", i, c->text, out.data,
                     c->masked);
    }
    tg_buf_free(&out);
}

static void test_mask_details(void **state)
{
    struct tg_buf out, a, b;
    const char *text = "保单P2024000123";
    (void)state;
    tg_buf_init(&out, TG_BUF_UNLIMITED);
    tg_buf_init(&a, TG_BUF_UNLIMITED);
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    /* appended after what the buffer holds */
    assert_int_equal(tg_buf_puts(&out, "回复："), TG_OK);
    assert_int_equal(tg_pii_mask("手机13812345678", strlen("手机13812345678"), NULL, &out), TG_OK);
    assert_string_equal(out.data, "回复：手机138****5678");
    /* no pattern, no policy numbers */
    tg_buf_reset(&out);
    assert_int_equal(tg_pii_mask(text, strlen(text), NULL, &out), TG_OK);
    assert_string_equal(out.data, text);
    tg_buf_reset(&out);
    assert_int_equal(tg_pii_mask(text, strlen(text), "", &out), TG_OK);
    assert_string_equal(out.data, text);
    /* a bad pattern fails and leaves the buffer as it was */
    tg_buf_reset(&out);
    assert_int_equal(tg_buf_puts(&out, "kept"), TG_OK);
    assert_int_equal(tg_pii_mask(text, strlen(text), "P[0-9", &out), TG_E_CONFIG);
    assert_string_equal(out.data, "kept");
    /* a buffer too small fails the same way */
    struct tg_buf small;
    tg_buf_init(&small, 8);
    assert_int_equal(tg_pii_mask("手机13812345678", strlen("手机13812345678"), NULL, &small),
                     TG_E_TOOBIG);
    assert_int_equal(small.len, 0);
    tg_buf_free(&small);
    /* an e-mail mask does not tell how long the local part was */
    assert_int_equal(tg_pii_mask("ab@x.com", 8, NULL, &a), TG_OK);
    assert_int_equal(tg_pii_mask("averyveryverylongname@x.com", 27, NULL, &b), TG_OK);
    assert_int_equal(a.len, b.len);
    /* only the length given is read */
    tg_buf_reset(&out);
    assert_int_equal(tg_pii_mask("138123456789999", 11, NULL, &out), TG_OK);
    assert_string_equal(out.data, "138****5678");
    /* allocation failure */
    tg_buf_reset(&out);
    tg_mem_fail_after(0);
    int rc = tg_pii_mask("手机13812345678", strlen("手机13812345678"), POLICY, &out);
    tg_mem_fail_after(-1);
    assert_int_equal(rc, TG_E_NOMEM);
    assert_int_equal(out.len, 0);
    tg_buf_free(&out);
    tg_buf_free(&a);
    tg_buf_free(&b);
}

/* ------------------------------------------------------------ pseudonyms */

static void test_pseudonym(void **state)
{
    static const char key[] = "tenant-key", other[] = "other-key";
    char p1[33], p2[33], long_key[101], long_value[301];
    (void)state;
    memset(long_key, 'K', 100);
    long_key[100] = '\0';
    memset(long_value, 'x', 300);
    long_value[300] = '\0';
    /* printf 'mobile:13812345678' | openssl dgst -sha256 -hmac 'tenant-key' */
    tg_pii_pseudonym((const uint8_t *)key, strlen(key), "mobile", "13812345678", 11, p1);
    assert_string_equal(p1, "73083d4c402aaed267db71c672adf8af");
    tg_pii_pseudonym((const uint8_t *)key, strlen(key), "mobile", "13812345678", 11, p2);
    assert_string_equal(p1, p2);
    /* ... -hmac 'other-key' */
    tg_pii_pseudonym((const uint8_t *)other, strlen(other), "mobile", "13812345678", 11, p2);
    assert_string_equal(p2, "d0b68562734ff1a13abecbc5ac1e140d");
    /* the type is part of the message */
    tg_pii_pseudonym((const uint8_t *)key, strlen(key), "bank_card", "13812345678", 11, p2);
    assert_string_not_equal(p1, p2);
    /* only len bytes of the value count */
    tg_pii_pseudonym((const uint8_t *)key, strlen(key), "mobile", "13812345678999", 11, p2);
    assert_string_equal(p1, p2);
    /* an empty value: printf 'mobile:' | ... */
    tg_pii_pseudonym((const uint8_t *)key, strlen(key), "mobile", "", 0, p2);
    assert_string_equal(p2, "566d64333c05e0c37e66c16ccc9e857a");
    /* a value too long for the stack buffer: 'email:' + 300 x */
    tg_pii_pseudonym((const uint8_t *)key, strlen(key), "email", long_value, 300, p2);
    assert_string_equal(p2, "677019a171ca4fe6a2a589a327039149");
    /* a key longer than the SHA-256 block, with a short and a long value */
    tg_pii_pseudonym((const uint8_t *)long_key, 100, "id_card", "11010519491231002X", 18, p2);
    assert_string_equal(p2, "1a7b4327f1005da27b54d3b2421acd36");
    tg_pii_pseudonym((const uint8_t *)long_key, 100, "email", long_value, 300, p2);
    assert_string_equal(p2, "cd17c47aebd69a4cc4c9bc5807cc0e05");
    assert_int_equal(strlen(p2), 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grounding_table),  cmocka_unit_test(test_grounds_itself),
        cmocka_unit_test(test_grounding_limits), cmocka_unit_test(test_grounding_large_and_nomem),
        cmocka_unit_test(test_grounding_speed),  cmocka_unit_test(test_mask_table),
        cmocka_unit_test(test_mask_details),     cmocka_unit_test(test_pseudonym),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
