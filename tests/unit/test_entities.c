/*
 * test_entities.c - money and personal identifiers in customers' words
 * (src/text/entities.c, src/text/numbers.c): numeral parsing, tables of
 * amounts and of numbers that are not money, identifier tables (GB
 * 11643-1999 ID numbers, Luhn bank cards, mobiles, e-mail, policy
 * numbers), spans, JSON, the policy-pattern cache across threads,
 * allocation failure, and a throughput figure for a 10 KB message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "text/text.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLICY "P[0-9]{10}"

static const struct tg_entity_opts opts = {.policy_pattern = POLICY};

static void extract(const char *text, struct tg_entities *e)
{
    assert_int_equal(tg_entities_extract(text, strlen(text), &opts, e), TG_OK);
}

/* The text of a span, for messages. */
static const char *span(const char *text, uint32_t start, uint32_t end, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.*s", (int)(end - start), text + start);
    return buf;
}

static bool near(double a, double b)
{
    return fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b));
}

/* ------------------------------------------------------------ numerals */

static void test_parse_number(void **state)
{
    static const struct {
        const char *s;
        double v;
    } ok[] = {
        {"十二万五千", 125000},
        {"两百", 200},
        {"伍万", 50000},
        {"1.5", 1.5},
        {"12,500", 12500},
        {"三千五", 3500},
        {"三千五百万", 35e6},
        {"十万八", 108000},
        {"两万五", 25000},
        {"一万零五百", 10500},
        {"一万零五", 10005},
        {"一千零五十", 1050},
        {"一亿", 1e8},
        {"一亿三千万", 1.3e8},
        {"一万亿", 1e12},
        {"七千八百", 7800},
        {"十", 10},
        {"十二", 12},
        {"二十五", 25},
        {"一百五", 150},
        {"一百零五万", 1050000},
        {"二〇二四", 2024},
        {"3万5", 35000},
        {"1.5万", 15000},
        {"0.5万", 5000},
        {"三点五万", 35000},
        {"3点5万", 35000},
        {"１２，５００", 12500},
        {"50,000.00", 50000},
        {"壹拾贰万", 120000},
        {"叁仟", 3000},
        {"玖佰玖拾玖", 999},
        {"贰拾", 20},
    };
    static const char *const bad[] = {"",         "万",    "abc",   "1,2345", "三千千", "三四万",
                                      "十万亿亿", "5万元", "1.2.3", "一万零", "百",     "萬"};
    (void)state;
    for (size_t i = 0; i < TG_ARRAY_LEN(ok); i++) {
        double v = -1;
        int rc = tg_text_parse_number(ok[i].s, strlen(ok[i].s), &v);
        if (rc != TG_OK || !near(v, ok[i].v))
            fail_msg("%s: rc %d value %.6f, want %.6f", ok[i].s, rc, v, ok[i].v);
    }
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        double v = -1;
        if (tg_text_parse_number(bad[i], strlen(bad[i]), &v) != TG_E_PARSE)
            fail_msg("%s parsed as %.6f", bad[i], v);
        assert_true(v == -1); /* untouched on failure */
    }
}

/* ------------------------------------------------------------ money */

struct money_case {
    const char *text;
    const char *span; /* the expected span */
    double value;
    bool approx, range;
};

static const struct money_case money_cases[] = {
    {"我想投资60万", "60万", 600000, false, false},
    {"预算60万元，主要买理财", "60万元", 600000, false, false},
    {"账户里有¥80,000", "¥80,000", 80000, false, false},
    {"我手头有８万块", "８万块", 80000, false, false},
    {"每个月能存1.5万", "1.5万", 15000, false, false},
    {"首付准备5w", "5w", 50000, false, false},
    {"月薪12.5k", "12.5k", 12500, false, false},
    {"保额十二万五千元", "十二万五千元", 125000, false, false},
    {"家里有两百万存款", "两百万", 2e6, false, false},
    {"公司估值一亿", "一亿", 1e8, false, false},
    {"每个月能存三千五", "三千五", 3500, false, false},
    {"转账50,000.00元到对公账户", "50,000.00元", 50000, false, false},
    {"Budget is RMB 100,000 for this year", "RMB 100,000", 100000, false, false},
    {"I can invest 100k yuan", "100k yuan", 100000, false, false},
    {"合同金额人民币伍万元整", "人民币伍万元整", 50000, false, false},
    {"预算5到8万", "5到8万", 80000, false, true},
    {"想买5-8万的产品", "5-8万", 80000, false, true},
    {"大概三十万左右吧", "三十万左右", 300000, true, false},
    {"存款10万多", "10万多", 100000, true, false},
    {"Fee: CNY 2,000", "CNY 2,000", 2000, false, false},
    {"就2000块钱", "2000块钱", 2000, false, false},
    {"上个月花了七千八百元", "七千八百元", 7800, false, false},
    {"理财赎回一万零五百", "一万零五百", 10500, false, false},
    {"我有3万5", "3万5", 35000, false, false},
    {"先投0.5万试试", "0.5万", 5000, false, false},
    {"about 50 thousand yuan", "50 thousand yuan", 50000, true, false},
    {"I have 1 million RMB to invest", "1 million RMB", 1e6, false, false},
    {"我想投资50000", "50000", 50000, false, false},
    {"贷款 200000 能批吗", "200000", 200000, false, false},
    {"十多万的保险贵吗", "十多万", 100000, true, false},
    {"约20万", "20万", 200000, true, false},
    {"¥5000-8000都可以", "¥5000-8000", 8000, false, true},
    {"年收入30万-50万", "30万-50万", 500000, false, true},
    {"五到八万之间", "五到八万", 80000, false, true},
    {"收益10万+", "10万+", 100000, true, false},
    {"差不多三点五万元", "三点五万元", 35000, true, false},
    {"1.2亿的项目", "1.2亿", 1.2e8, false, false},
    {"买菜花了3块5", "3块5", 3.5, false, false},
    {"找零三元五角二分", "三元五角二分", 3.52, false, false},
    {"十万八的车", "十万八", 108000, false, false},
    {"两万五一年的保费", "两万五", 25000, false, false},
    {"月薪两万", "两万", 20000, false, false},
    {"伍佰元", "伍佰元", 500, false, false},
    {"玖仟元整", "玖仟元整", 9000, false, false},
    {"The premium is about 30,000 yuan.", "30,000 yuan", 30000, true, false},
    {"一千万的房子", "一千万", 1e7, false, false},
    {"价格：¥ 1,299.00", "¥ 1,299.00", 1299, false, false},
    {"￥８０，０００", "￥８０，０００", 80000, false, false},
    {"预算五百", "五百", 500, false, false},
    {"一块钱都没有", "一块钱", 1, false, false},
    {"将近一百万", "一百万", 1e6, true, false},
    {"5万元左右", "5万元左右", 50000, true, false},
    {"3000到5000元", "3000到5000元", 5000, false, true},
    {"投资3千块", "3千块", 3000, false, false},
    {"两万5千", "两万5千", 25000, false, false},
    {"3点5万", "3点5万", 35000, false, false},
    {"本金1,000,000元", "1,000,000元", 1e6, false, false},
    {"二十多万块", "二十多万块", 200000, true, false},
    {"刚拿到20万年终奖", "20万", 200000, false, false},
    {"十万月供压力大", "十万", 100000, false, false},
    {"医生说要七八万", "七八万", 80000, true, false},
    {"修车大概两三千块", "两三千块", 3000, true, false},
    {"额度提到5万行不行", "5万", 50000, false, false},
};

static void test_money_table(void **state)
{
    struct tg_entities e;
    char buf[128];
    (void)state;
    tg_entities_init(&e);
    for (size_t i = 0; i < TG_ARRAY_LEN(money_cases); i++) {
        const struct money_case *c = &money_cases[i];
        extract(c->text, &e);
        if (e.n_money != 1)
            fail_msg("%s: %zu amounts", c->text, e.n_money);
        const struct tg_money *m = &e.money[0];
        span(c->text, m->start, m->end, buf, sizeof(buf));
        if (strcmp(buf, c->span) != 0 || !near(m->value_cny, c->value) ||
            m->approximate != c->approx || m->range != c->range)
            fail_msg("%s: got \"%s\" %.4f approx %d range %d, want \"%s\" %.4f %d %d", c->text, buf,
                     m->value_cny, m->approximate, m->range, c->span, c->value, c->approx,
                     c->range);
        assert_int_equal(e.n_pii, 0);
    }
    tg_entities_free(&e);
}

/* Numbers that are not money (some are identifiers instead). */
static const char *const not_money[] = {
    "2024年3月5日投资",
    "2024-03-05买的理财",
    "2024/03/05存的",
    "3月5号到账",
    "10:30开会",
    "下午3点存钱",
    "年化3.5%",
    "收益率百分之五",
    "我35岁",
    "存了3年",
    "30天内到账",
    "买了2份保单",
    "第3条写了什么",
    "版本1.2.3",
    "升级到v2.0",
    "iPhone 15 Pro",
    "客服电话010-62345678",
    "400-820-8820",
    "10万人参加",
    "3万年前的化石",
    "一二三四五",
    "写了3万行代码",
    "跑了三千米",
    "买了5kg苹果",
    "3个月后",
    "一个问题",
    "十分满意",
    "100美元",
    "$300",
    "USD 500",
    "500日元",
    "100 dollars",
    "5G网络",
    "住在3楼",
    "一千零一夜",
    "千万不要买",
    "万一出事",
    "2024-2025年预算",
    "涨了3-5%",
    "打9.5折",
    "十万火急",
    "三分之一",
    "买了1000股",
    "50 GB",
    "invest for 3 years",
    "我有50000",
    "订单号123456789012",
    "手机13812345678",
    "身份证11010519491231002X",
    "保单号P2024000123",
    "13812345678元",
    "¥13812345678",
    "3万公里",
    "存款利率2.5",
    "房间1201",
};

static void test_not_money_table(void **state)
{
    struct tg_entities e;
    char buf[128];
    (void)state;
    tg_entities_init(&e);
    for (size_t i = 0; i < TG_ARRAY_LEN(not_money); i++) {
        extract(not_money[i], &e);
        if (e.n_money != 0)
            fail_msg("%s: read \"%s\" as %.2f yuan", not_money[i],
                     span(not_money[i], e.money[0].start, e.money[0].end, buf, sizeof(buf)),
                     e.money[0].value_cny);
    }
    tg_entities_free(&e);
}

/* ------------------------------------------------------------ identifiers */

#define NONE (-1)
struct pii_case {
    const char *text;
    int type; /* enum tg_pii_type, or NONE */
    const char *span;
};

/* ID numbers per GB 11643-1999 (11010519491231002 -> check X is the
 * standard's example); bank cards per the Luhn algorithm. */
static const struct pii_case pii_cases[] = {
    {"身份证11010519491231002X", TG_PII_ID_CARD, "11010519491231002X"},
    {"身份证号：11010519491231002x。", TG_PII_ID_CARD, "11010519491231002x"},
    {"320106198511110012", TG_PII_ID_CARD, "320106198511110012"},
    {"ID 440304200002295552 (born on a leap day)", TG_PII_ID_CARD, "440304200002295552"},
    {"110105 19491231 002X", TG_PII_ID_CARD, "110105 19491231 002X"},
    {"110105 1949 1231 002X", TG_PII_ID_CARD, "110105 1949 1231 002X"},
    {"110105194912310021", NONE, NULL}, /* check character wrong */
    {"110105199902301237", NONE, NULL}, /* checksum right, 1999-02-30 is no date */
    {"440304190002295556", NONE, NULL}, /* 1900 was not a leap year */
    {"11010519491231002", NONE, NULL},  /* 17 digits */
    {"手机13812345678", TG_PII_MOBILE, "13812345678"},
    {"call 19912345678 now", TG_PII_MOBILE, "19912345678"},
    {"+8613812345678", TG_PII_MOBILE, "+8613812345678"},
    {"电话+86 13812345678", TG_PII_MOBILE, "+86 13812345678"},
    {"+86-138-1234-5678", TG_PII_MOBILE, "+86-138-1234-5678"},
    {"0086 13812345678", TG_PII_MOBILE, "0086 13812345678"},
    {"8613812345678", TG_PII_MOBILE, "8613812345678"},
    {"86-13812345678", TG_PII_MOBILE, "86-13812345678"},
    {"138 1234 5678", TG_PII_MOBILE, "138 1234 5678"},
    {"138-1234-5678", TG_PII_MOBILE, "138-1234-5678"},
    {"１３８１２３４５６７８", TG_PII_MOBILE, "１３８１２３４５６７８"},
    {"12812345678", NONE, NULL},  /* 12 is no mobile prefix */
    {"1381234567", NONE, NULL},   /* 10 digits */
    {"138123456789", NONE, NULL}, /* 12 digits: neither */
    {"123456789012", NONE, NULL},
    {"订单813812345678901", NONE, NULL}, /* inside a longer run */
    {"tel13812345678", NONE, NULL},      /* glued to letters */
    {"1.13812345678", NONE, NULL},       /* a decimal */
    {"卡号6222021234567890128", TG_PII_BANK_CARD, "6222021234567890128"},
    {"6222 0212 3456 7890 128", TG_PII_BANK_CARD, "6222 0212 3456 7890 128"},
    {"4111111111111111", TG_PII_BANK_CARD, "4111111111111111"},
    {"4111-1111-1111-1111", TG_PII_BANK_CARD, "4111-1111-1111-1111"},
    {"6212261202000005到账", TG_PII_BANK_CARD, "6212261202000005"},
    {"4111111111111112", NONE, NULL},     /* Luhn fails */
    {"378282246310005", NONE, NULL},      /* 15 digits */
    {"41111111111111111111", NONE, NULL}, /* 20 digits */
    {"zhang.san@example.com", TG_PII_EMAIL, "zhang.san@example.com"},
    {"user+tag@mail.example.com.cn", TG_PII_EMAIL, "user+tag@mail.example.com.cn"},
    {"a_b-c@sub-domain.example.org", TG_PII_EMAIL, "a_b-c@sub-domain.example.org"},
    {"邮箱：li@qq.com。", TG_PII_EMAIL, "li@qq.com"},
    {"mail me at Wang.Wei@Example.COM.", TG_PII_EMAIL, "Wang.Wei@Example.COM"},
    {"13812345678@163.com", TG_PII_EMAIL, "13812345678@163.com"},
    {"foo@bar", NONE, NULL},
    {"foo@.com", NONE, NULL},
    {"@example.com", NONE, NULL},
    {"foo..bar@x.com", NONE, NULL},
    {"a@b.c", NONE, NULL},
    {"保单P2024000123", TG_PII_POLICY_NO, "P2024000123"},
    {"policy P2024000123X", TG_PII_POLICY_NO, "P2024000123"},
    {"P20240001", NONE, NULL},
};

static void test_pii_table(void **state)
{
    struct tg_entities e;
    char buf[128];
    (void)state;
    tg_entities_init(&e);
    for (size_t i = 0; i < TG_ARRAY_LEN(pii_cases); i++) {
        const struct pii_case *c = &pii_cases[i];
        extract(c->text, &e);
        if (c->type == NONE) {
            if (e.n_pii != 0)
                fail_msg("%s: found %s \"%s\"", c->text, tg_pii_type_name(e.pii[0].type),
                         span(c->text, e.pii[0].start, e.pii[0].end, buf, sizeof(buf)));
            continue;
        }
        if (e.n_pii != 1)
            fail_msg("%s: %zu identifiers", c->text, e.n_pii);
        span(c->text, e.pii[0].start, e.pii[0].end, buf, sizeof(buf));
        if ((int)e.pii[0].type != c->type || strcmp(buf, c->span) != 0)
            fail_msg("%s: got %s \"%s\", want %s \"%s\"", c->text, tg_pii_type_name(e.pii[0].type),
                     buf, tg_pii_type_name((enum tg_pii_type)c->type), c->span);
        assert_int_equal(e.n_money, 0); /* an identifier is never money */
    }
    tg_entities_free(&e);
}

/* ------------------------------------------------------------ spans */

static void test_mixed_spans(void **state)
{
    const char *text = "我叫张三，手机+86 138-1234-5678，身份证11010519491231002X，"
                       "卡号6222 0212 3456 7890 128，邮箱zhang.san@example.com，"
                       "保单P2024000123，想存5万到8万，另外还有¥3,000和两千块。";
    static const struct {
        int type;
        const char *span;
    } want_pii[] = {
        {TG_PII_MOBILE, "+86 138-1234-5678"},
        {TG_PII_ID_CARD, "11010519491231002X"},
        {TG_PII_BANK_CARD, "6222 0212 3456 7890 128"},
        {TG_PII_EMAIL, "zhang.san@example.com"},
        {TG_PII_POLICY_NO, "P2024000123"},
    };
    static const char *const want_money[] = {"5万到8万", "¥3,000", "两千块"};
    struct tg_entities e;
    char buf[128];
    (void)state;
    tg_entities_init(&e);
    extract(text, &e);
    assert_int_equal(e.n_pii, TG_ARRAY_LEN(want_pii));
    assert_int_equal(e.n_money, TG_ARRAY_LEN(want_money));
    for (size_t i = 0; i < e.n_pii; i++) {
        assert_int_equal(e.pii[i].type, want_pii[i].type);
        assert_string_equal(span(text, e.pii[i].start, e.pii[i].end, buf, sizeof(buf)),
                            want_pii[i].span);
    }
    for (size_t i = 0; i < e.n_money; i++)
        assert_string_equal(span(text, e.money[i].start, e.money[i].end, buf, sizeof(buf)),
                            want_money[i]);
    assert_true(near(e.money[0].value_cny, 80000) && e.money[0].range);
    assert_true(near(e.money[1].value_cny, 3000));
    assert_true(near(e.money[2].value_cny, 2000));
    /* Sorted, and no money span touches an identifier. */
    for (size_t i = 0; i < e.n_money; i++)
        for (size_t j = 0; j < e.n_pii; j++)
            assert_true(e.money[i].end <= e.pii[j].start || e.pii[j].end <= e.money[i].start);
    for (size_t i = 1; i < e.n_pii; i++)
        assert_true(e.pii[i - 1].end <= e.pii[i].start);
    for (size_t i = 1; i < e.n_money; i++)
        assert_true(e.money[i - 1].end <= e.money[i].start);
    assert_true(near(tg_entities_money_max(&e), 80000));

    /* A currency word between two amounts belongs to the first (found by fuzzing). */
    text = "¥80,000 RMB 100k yuan";
    extract(text, &e);
    assert_int_equal(e.n_money, 2);
    assert_string_equal(span(text, e.money[0].start, e.money[0].end, buf, sizeof(buf)),
                        "¥80,000 RMB");
    assert_string_equal(span(text, e.money[1].start, e.money[1].end, buf, sizeof(buf)),
                        "100k yuan");
    tg_entities_free(&e);
}

static void test_json(void **state)
{
    const char *text = "预算5到8万，电话13812345678";
    struct tg_entities e;
    json_t *j;
    char *s;
    (void)state;
    tg_entities_init(&e);
    extract(text, &e);
    j = tg_entities_to_json(&e, text);
    assert_non_null(j);
    s = json_dumps(j, JSON_COMPACT);
    assert_string_equal(s, "{\"money\":[{\"text\":\"5到8万\",\"value_cny\":80000.0,\"start\":6,"
                           "\"end\":14,\"approximate\":false,\"range\":true}],\"pii\":[{\"type\":"
                           "\"mobile\",\"text\":\"13812345678\",\"start\":23,\"end\":34}]}");
    free(s);
    json_decref(j);

    extract("", &e);
    j = tg_entities_to_json(&e, "");
    s = json_dumps(j, JSON_COMPACT);
    assert_string_equal(s, "{\"money\":[],\"pii\":[]}");
    free(s);
    json_decref(j);
    assert_true(tg_entities_money_max(&e) == -1);
    assert_null(tg_entities_to_json(&e, NULL));
    tg_entities_free(&e);
}

static void test_names_and_max(void **state)
{
    struct tg_entities e;
    (void)state;
    assert_string_equal(tg_pii_type_name(TG_PII_ID_CARD), "id_card");
    assert_string_equal(tg_pii_type_name(TG_PII_MOBILE), "mobile");
    assert_string_equal(tg_pii_type_name(TG_PII_BANK_CARD), "bank_card");
    assert_string_equal(tg_pii_type_name(TG_PII_EMAIL), "email");
    assert_string_equal(tg_pii_type_name(TG_PII_POLICY_NO), "policy_no");
    tg_entities_init(&e);
    extract("先存三千，年底再投资50万，最多不超过1.2万的手续费", &e);
    assert_int_equal(e.n_money, 3);
    assert_true(near(tg_entities_money_max(&e), 500000));
    /* Reuse: a new text replaces the old results. */
    extract("没有金额", &e);
    assert_int_equal(e.n_money, 0);
    assert_true(tg_entities_money_max(&e) == -1);
    tg_entities_reset(&e);
    tg_entities_free(&e);
    assert_null(e.money);
    assert_int_equal(e.cap_money, 0);
}

/* Many entities in one text grow the arrays. */
static void test_many(void **state)
{
    struct tg_buf b;
    struct tg_entities e;
    (void)state;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    for (int i = 0; i < 300; i++)
        assert_int_equal(tg_buf_printf(&b, "第%d笔%d万元，手机13812345678；", i + 1, i + 1), TG_OK);
    tg_entities_init(&e);
    extract(b.data, &e);
    assert_int_equal(e.n_money, 300);
    assert_int_equal(e.n_pii, 300);
    for (size_t i = 0; i < e.n_money; i++)
        assert_true(near(e.money[i].value_cny, (double)(i + 1) * 1e4));
    assert_true(near(tg_entities_money_max(&e), 3e6));
    tg_entities_free(&e);
    tg_buf_free(&b);
}

static void test_invalid_utf8(void **state)
{
    const char text[] = "\xff\xfe预算5万\xc3 \xe4\xb8 P2024000123 \xe5";
    struct tg_entities e;
    char buf[64];
    (void)state;
    tg_entities_init(&e);
    assert_int_equal(tg_entities_extract(text, sizeof(text) - 1, &opts, &e), TG_OK);
    assert_int_equal(e.n_money, 1);
    assert_string_equal(span(text, e.money[0].start, e.money[0].end, buf, sizeof(buf)), "5万");
    assert_int_equal(e.n_pii, 1);
    assert_int_equal(e.pii[0].type, TG_PII_POLICY_NO);
    /* A length that cuts a character in half. */
    assert_int_equal(tg_entities_extract("5万", 3, &opts, &e), TG_OK);
    assert_int_equal(e.n_money, 0);
    assert_int_equal(tg_entities_extract(NULL, 0, NULL, &e), TG_OK);
    assert_int_equal(tg_entities_extract(NULL, 3, NULL, &e), TG_E_INVAL);
    tg_entities_free(&e);
}

/* ------------------------------------------------------------ policy numbers */

static void test_policy_pattern(void **state)
{
    const char *text = "保单P2024000123和POL-123456";
    struct tg_entity_opts other = {.policy_pattern = "POL-[0-9]{6}"};
    struct tg_entity_opts bad = {.policy_pattern = "P[0-9"};
    struct tg_entity_opts empty_match = {.policy_pattern = "x*"};
    struct tg_entities e;
    char buf[64];
    (void)state;
    tg_entities_init(&e);
    extract(text, &e);
    assert_int_equal(e.n_pii, 1);
    assert_string_equal(span(text, e.pii[0].start, e.pii[0].end, buf, sizeof(buf)), "P2024000123");
    assert_int_equal(tg_entities_extract(text, strlen(text), &other, &e), TG_OK);
    assert_int_equal(e.n_pii, 1);
    assert_string_equal(span(text, e.pii[0].start, e.pii[0].end, buf, sizeof(buf)), "POL-123456");
    assert_int_equal(tg_entities_extract(text, strlen(text), NULL, &e), TG_OK);
    assert_int_equal(e.n_pii, 0);
    assert_int_equal(tg_entities_extract(text, strlen(text), &bad, &e), TG_E_CONFIG);
    assert_int_equal(e.n_pii, 0);
    assert_int_equal(e.n_money, 0);
    assert_int_equal(tg_entities_extract(text, strlen(text), &empty_match, &e), TG_OK);
    assert_int_equal(e.n_pii, 0);
    /* A pattern that would also cover an identifier yields to it. */
    struct tg_entity_opts digits = {.policy_pattern = "[0-9]{11,}"};
    assert_int_equal(tg_entities_extract("13812345678 99999999999", 23, &digits, &e), TG_OK);
    assert_int_equal(e.n_pii, 2);
    assert_int_equal(e.pii[0].type, TG_PII_MOBILE);
    assert_int_equal(e.pii[1].type, TG_PII_POLICY_NO);
    tg_entities_free(&e);
}

struct worker {
    int id;
    int failures;
};

static void *policy_worker(void *arg)
{
    struct worker *w = arg;
    const char *text = "保单P2024000123和POL-123456，预算5万";
    const char *pat[2] = {POLICY, "POL-[0-9]{6}"};
    const char *want[2] = {"P2024000123", "POL-123456"};
    struct tg_entities e;
    tg_entities_init(&e);
    for (int i = 0; i < 400; i++) {
        int k = (i / 7 + w->id) % 2;
        struct tg_entity_opts o = {.policy_pattern = pat[k]};
        size_t n = strlen(want[k]);
        if (tg_entities_extract(text, strlen(text), &o, &e) != TG_OK || e.n_pii != 1 ||
            e.n_money != 1 || e.pii[0].end - e.pii[0].start != n ||
            memcmp(text + e.pii[0].start, want[k], n) != 0)
            w->failures++;
    }
    tg_entities_free(&e);
    return NULL;
}

/* Threads switching between two patterns share and replace the cached one. */
static void test_policy_threads(void **state)
{
    pthread_t th[4];
    struct worker w[4];
    (void)state;
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.id = i};
        assert_int_equal(pthread_create(&th[i], NULL, policy_worker, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
}

/* ------------------------------------------------------------ failure, speed */

static void test_allocation_failure(void **state)
{
    const char *text = "卡号4111111111111111，邮箱a@b.cn，保单P2024000123，Q123456，存5万";
    struct tg_entity_opts fresh = {.policy_pattern = "Q[0-9]{6}"};
    struct tg_entities e;
    int failed = 0;
    (void)state;
    tg_entities_init(&e);
    for (long n = 0; n < 60; n++) {
        tg_mem_fail_after(n);
        int rc = tg_entities_extract(text, strlen(text), n % 2 ? &opts : &fresh, &e);
        tg_mem_fail_after(-1);
        if (rc == TG_E_NOMEM) {
            assert_int_equal(e.n_pii, 0);
            assert_int_equal(e.n_money, 0);
            failed++;
            continue;
        }
        assert_int_equal(rc, TG_OK);
        assert_int_equal(e.n_pii, 3);
        assert_int_equal(e.n_money, 1);
    }
    assert_true(failed > 0);
    tg_entities_free(&e);
}

static void test_throughput(void **state)
{
    static const char *const parts[] = {
        "您好，我想咨询一下理财产品。我今年35岁，手头大概有三十万左右，",
        "想投资5到8万试试，年化3.5%的那款还有吗？我的手机是13812345678，",
        "邮箱zhang.san@example.com，卡号6222 0212 3456 7890 128。",
        "Also, I could put about 50 thousand yuan into a fund for 3 years. ",
        "保单P2024000123去年3月5号到期，保费每年两万五，2024-03-05已缴。\n",
    };
    struct tg_buf b;
    struct tg_entities e;
    size_t reps = 0;
    int iters = 300;
    (void)state;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    while (b.len < 10 * 1024) {
        for (size_t i = 0; i < TG_ARRAY_LEN(parts); i++)
            assert_int_equal(tg_buf_puts(&b, parts[i]), TG_OK);
        reps++;
    }
    tg_entities_init(&e);
    int64_t t0 = tg_clock_mono_ns();
    for (int i = 0; i < iters; i++)
        extract(b.data, &e);
    int64_t dt = tg_clock_mono_ns() - t0;
    /* Each repetition: 三十万左右, 5到8万, 50 thousand yuan, 两万五; mobile,
     * e-mail, bank card, policy number. */
    assert_int_equal(e.n_money, 4 * reps);
    assert_int_equal(e.n_pii, 4 * reps);
    printf("entities: %zu bytes, %zu amounts, %zu identifiers; %.1f us per text, %.1f MB/s\n",
           b.len, e.n_money, e.n_pii, (double)dt / iters / 1e3,
           (double)b.len * iters / ((double)dt / 1e9) / 1e6);
    tg_entities_free(&e);
    tg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_number),    cmocka_unit_test(test_money_table),
        cmocka_unit_test(test_not_money_table), cmocka_unit_test(test_pii_table),
        cmocka_unit_test(test_mixed_spans),     cmocka_unit_test(test_json),
        cmocka_unit_test(test_names_and_max),   cmocka_unit_test(test_many),
        cmocka_unit_test(test_invalid_utf8),    cmocka_unit_test(test_policy_pattern),
        cmocka_unit_test(test_policy_threads),  cmocka_unit_test(test_allocation_failure),
        cmocka_unit_test(test_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
