/*
 * policy_bench.c - what policy evaluation costs per turn: a demo-like set
 * of 15 rules (every kind of condition, both stages) plus a 10,000-term
 * keyword library, evaluated on realistic Chinese customer messages (the
 * insurance demo's intent examples, with their labels as the intent, plus
 * messages with amounts and identifiers).  Prints compile time, the heap a
 * compiled policy holds, and median / p99 / max of one tg_policy_eval call
 * (pre stage, post stage, and both: one turn), timed with clock_gettime.
 * The baseline beside it: the same library searched term by term with
 * strstr, as one would without an automaton.
 *
 * Built and run by bench/policy.sh; figures kept in bench/POLICY.md.
 *   policy_bench [intents.tsv] [evaluations]
 */
#include "policy/policy.h"
#include "text/text.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char demo_policy[] =
    "- id: large-amount-advice\n"
    "  description: 理财建议金额超过5万元需人工复核\n"
    "  when:\n"
    "    all:\n"
    "      - intent: [wealth_advice, product_recommend]\n"
    "      - money.max: {gt: 50000}\n"
    "  then:\n"
    "    - review: {sla: 90s, queue: wealth}\n"
    "    - tag: large_amount\n"
    "- id: guaranteed-return\n"
    "  description: 询问保本保收益须加风险提示\n"
    "  when: {keywords: [保本, 保收益, 稳赚, 刚性兑付, 零风险, guaranteed return, risk-free]}\n"
    "  then:\n"
    "    - prefix: 理财产品不保本，投资有风险。\n"
    "    - tag: guarantee_question\n"
    "- id: pii-in-message\n"
    "  description: 消息含身份证或银行卡号，存储前脱敏\n"
    "  when: {pii.type: [id_card, bank_card]}\n"
    "  then: {redact: true, tag: pii}\n"
    "- id: complaint-escalation\n"
    "  description: 投诉或监管举报转人工\n"
    "  when:\n"
    "    any:\n"
    "      - intent: complaint\n"
    "      - keywords: [投诉, 举报, 银保监, 金融监管, '12378', 曝光]\n"
    "  then:\n"
    "    - human_decision: {queue: complaints, attestations: [已阅读客户全部诉求, "
    "已核对保单信息]}\n"
    "    - tag: complaint\n"
    "- id: human-only-decisions\n"
    "  description: 贷款审批、责任认定、医疗诊断只能由人作出\n"
    "  when:\n"
    "    any:\n"
    "      - intent: [credit_decision, legal_judgement, medical_diagnosis]\n"
    "      - regex: '(能不能|会不会|是否).{0,6}(批|赔|报销)'\n"
    "  then: {human_decision: {queue: decisions}}\n"
    "- id: illegal-request\n"
    "  description: 违法请求拒答\n"
    "  when: {keywords: [洗钱, 套现, 代开发票, 假保单]}\n"
    "  then: {refuse: 抱歉，该请求我们无法协助。, tag: illegal}\n"
    "- id: low-evidence\n"
    "  description: 知识库没有可靠依据时转人工\n"
    "  when:\n"
    "    all:\n"
    "      - evidence.best_score: {lt: 0.2}\n"
    "      - not: {intent: [greeting, goodbye, human_agent]}\n"
    "  then: {review: {sla: 5m, queue: kb_gap}}\n"
    "- id: repeated-degradation\n"
    "  description: 连续降级两次以上转人工\n"
    "  when: {degradations: {ge: 2}}\n"
    "  then: {review: true, tag: degraded}\n"
    "- id: vip-large\n"
    "  description: VIP客户大额咨询优先复核\n"
    "  when: {all: [{tier: vip}, {money.max: {ge: 1000000}}, {intent_confidence: {ge: 0.5}}]}\n"
    "  then: {review: {sla: 30s, queue: vip}}\n"
    "- id: many-amounts-or-mobile\n"
    "  description: 多笔金额或手机号\n"
    "  when: {any: [{money.count: {ge: 3}}, {pii.type: mobile}, {channel: [sms]}]}\n"
    "  then: {tag: check_identity}\n"
    "- id: sensitive-library\n"
    "  description: 敏感词库（10,000 词）\n"
    "  when: {keywords: {file: terms.txt}}\n"
    "  then: {tag: sensitive_term}\n"
    "- id: ungrounded-numbers\n"
    "  stage: post\n"
    "  description: 回答里有证据中找不到的数字\n"
    "  when: {draft.ungrounded: {gt: 0}}\n"
    "  then: {review: {sla: 90s, queue: grounding}, tag: ungrounded}\n"
    "- id: draft-promise\n"
    "  stage: post\n"
    "  description: 回答含承诺性用语\n"
    "  when:\n"
    "    any:\n"
    "      - draft.keywords: [保证, 一定能, 肯定赔, guaranteed]\n"
    "      - draft.regex: '(年化|收益率)\\s*\\d+(\\.\\d+)?%'\n"
    "  then: {suffix: 以上信息仅供参考，以合同条款为准。}\n"
    "- id: low-confidence\n"
    "  stage: post\n"
    "  description: 置信度低且较长的回答先复核\n"
    "  when: {all: [{confidence: {lt: 0.6}}, {draft.length: {gt: 20}}]}\n"
    "  then: {review: true}\n"
    "- id: non-chinese-draft\n"
    "  stage: post\n"
    "  description: 非中文回答加提示\n"
    "  when: {not: {draft.language: zh}}\n"
    "  then: {prefix: 'Note: the binding terms are in the Chinese contract.'}\n";

static const char *const extra_msgs[] = {
    "我有80万想买理财，保本吗？",
    "能不能推荐一款年化5%以上的产品，预算100万",
    "我要投诉你们的理赔员，已经拖了三个月了",
    "身份证号110105199003072316，帮我查下保单",
    "卡号6222600260001072444转账失败了怎么办",
    "我手机号13812345678，麻烦回电",
    "先转5万，再转3万，最后转2万可以吗",
    "这个产品是不是零风险稳赚的？",
    "我去年住院花了两万三，能不能报销",
    "你们的万能险收益率到底是多少",
    "Is this product risk-free? I want to invest 200k",
    "我想给孩子买一份重疾险，每年预算五千左右",
};

static const char *const drafts[][2] = {
    {"根据条款，意外险理赔需提供身份证明、病历和发票原件。", "zh"},
    {"该产品历史年化收益率 4.5%，但不保证未来收益。", "zh"},
    {"保证收益，一定能赔，请放心购买。", "zh"},
    {"您好，我需要更多时间分析，请稍候。", "zh"},
    {"Your claim is being processed; we will reply within 3 working days.", "en"},
    {"退保时可领取现金价值，具体金额以保单现金价值表为准，前两年退保损失较大。", "zh"},
};

/* ------------------------------------------------------------ the library */

static const char han_pool[] = "保险理财收益赔付基金股票债券利率风控投资贷款信用卡账户转账额度密码"
                               "冻结解冻挂失补办激活分期还款逾期罚息年费积分兑换退保续保保费缴费"
                               "现金价值犹豫期等待期免赔额报销住院门诊重疾意外寿险医疗养老教育"
                               "分红万能投连定投赎回申购净值回撤止损杠杆配资套利期货外汇黄金"
                               "洗钱诈骗传销非法集资高利贷套路虚假宣传误导销售强制搭售返佣"
                               "客户经理柜台网点手机银行短信验证码身份证银行卡合同条款";

/* A small linear congruential generator (Numerical Recipes constants): same library every run. */
static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void make_library(const char *path, size_t n)
{
    static const char *const syl[] = {"ka",    "ri",   "sto",  "len",  "mar", "gin",
                                      "pro",   "fit",  "cash", "loan", "bit", "coin",
                                      "trade", "bond", "fx",   "hedge"};
    size_t n_han = (sizeof(han_pool) - 1) / 3;
    uint32_t s = 20240601u;
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs("# generated sensitive-term library: 70% Chinese (2-4 characters), 30% English\n", f);
    for (size_t i = 0; i < n; i++) {
        if (lcg(&s) % 10 < 7) {
            unsigned len = 2 + lcg(&s) % 3;
            for (unsigned k = 0; k < len; k++)
                fwrite(han_pool + 3 * (lcg(&s) % n_han), 1, 3, f);
        } else {
            unsigned words = 1 + lcg(&s) % 2;
            for (unsigned w = 0; w < words; w++) {
                unsigned parts = 2 + lcg(&s) % 2;
                for (unsigned k = 0; k < parts; k++)
                    fputs(syl[lcg(&s) % 16], f);
                fputs(w + 1 < words ? " " : "", f);
            }
        }
        fputc('\n', f);
    }
    fclose(f);
}

/* ------------------------------------------------------------ messages */

struct turn {
    char *text;
    char *norm;
    char *intent;
    struct tg_entities ent;
    struct tg_policy_facts f;
};

static void add_turn(struct turn *t, struct tg_text *tx, const char *text, const char *intent,
                     size_t i)
{
    struct tg_buf nb;
    const struct tg_entity_opts opts = {.policy_pattern = "P[0-9]{10}"};
    tg_buf_init(&nb, TG_BUF_UNLIMITED);
    t->text = tg_strdup(text);
    t->intent = intent ? tg_strdup(intent) : NULL;
    if (tg_text_normalize(tx, text, strlen(text), TG_NORM_T2S, &nb) || !nb.data) {
        fprintf(stderr, "normalize failed\n");
        exit(1);
    }
    t->norm = tg_buf_steal(&nb, NULL);
    tg_entities_init(&t->ent);
    tg_entities_extract(t->text, strlen(t->text), &opts, &t->ent);
    const char *const *d = drafts[i % TG_ARRAY_LEN(drafts)];
    t->f = (struct tg_policy_facts){
        .text = t->text,
        .text_len = strlen(t->text),
        .norm = t->norm,
        .norm_len = strlen(t->norm),
        .entities = &t->ent,
        .intent = t->intent,
        .intent_confidence = 0.55 + (double)(i % 40) / 100,
        .best_score = (double)(i % 10) / 10,
        .n_evidence = i % 6,
        .degradations = (int)(i % 4),
        .channel = i % 3 ? "web" : "api",
        .tier = i % 10 == 0 ? "vip" : NULL,
        .draft = d[0],
        .draft_len = strlen(d[0]),
        .draft_language = d[1],
        .confidence = i % 5 == 0 ? -1 : (double)(i % 10) / 10,
        .ungrounded = i % 3 == 0,
    };
}

static size_t load_turns(const char *tsv, struct tg_text *tx, struct turn **out)
{
    size_t n = 0, cap = 1024;
    struct turn *v = calloc(cap, sizeof(*v));
    char line[4096];
    FILE *f = tsv ? fopen(tsv, "r") : NULL;
    while (f && fgets(line, sizeof(line), f)) {
        char *tab = strchr(line, '\t');
        if (!tab || strncmp(line, "text\t", 5) == 0)
            continue;
        *tab = '\0';
        tab[strcspn(tab + 1, "\r\n") + 1] = '\0';
        if (n == cap)
            v = realloc(v, (cap *= 2) * sizeof(*v));
        add_turn(&v[n], tx, line, tab + 1, n);
        n++;
    }
    if (f)
        fclose(f);
    for (size_t i = 0; i < TG_ARRAY_LEN(extra_msgs); i++) {
        if (n == cap)
            v = realloc(v, (cap *= 2) * sizeof(*v));
        add_turn(&v[n], tx, extra_msgs[i], i % 2 ? "wealth_advice" : "product_recommend", n);
        n++;
    }
    *out = v;
    return n;
}

/* ------------------------------------------------------------ timing */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v. */
static double pct_us(const int64_t *v, size_t n, double p)
{
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    k = k ? k - 1 : 0;
    return (double)v[k < n ? k : n - 1] / 1000.0;
}

static void report(const char *name, int64_t *v, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    qsort(v, n, sizeof(*v), cmp_i64);
    printf("%-34s n=%-7zu median %7.2f us   p99 %7.2f us   p99.9 %7.2f us   max %8.2f us   "
           "mean %6.2f us\n",
           name, n, pct_us(v, n, 50), pct_us(v, n, 99), pct_us(v, n, 99.9),
           (double)v[n - 1] / 1000.0, sum / (double)n / 1000.0);
}

int main(int argc, char **argv)
{
    const char *tsv = argc > 1 ? argv[1] : "examples/insurance/intents.tsv";
    size_t evals = argc > 2 ? strtoul(argv[2], NULL, 10) : 100000;
    char dir[] = "/tmp/tg-policy-bench-XXXXXX", path[256], lib[256];
    char err[256];
    struct tg_text *tx = NULL;
    if (!mkdtemp(dir) || tg_text_open(&tx, err, sizeof(err))) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    snprintf(lib, sizeof(lib), "%s/terms.txt", dir);
    make_library(lib, 10000);
    snprintf(path, sizeof(path), "%s/policy.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs(demo_policy, f);
    fclose(f);

    /* Compile: median of 21 loads (YAML parse, 10,000 terms read, automaton, regex JIT). */
    int64_t ct[21];
    struct tg_policy *p = NULL;
    size_t heap = 0;
    for (size_t i = 0; i < TG_ARRAY_LEN(ct); i++) {
        json_t *errs = json_array();
        struct mallinfo2 m0 = mallinfo2();
        int64_t t0 = now_ns();
        int rc = tg_policy_load(path, &p, errs);
        ct[i] = now_ns() - t0;
        heap = mallinfo2().uordblks - m0.uordblks;
        if (rc) {
            fprintf(stderr, "load failed: %s\n", json_dumps(errs, 0));
            return 1;
        }
        json_decref(errs);
        if (i + 1 < TG_ARRAY_LEN(ct))
            tg_policy_free(p);
    }
    qsort(ct, TG_ARRAY_LEN(ct), sizeof(ct[0]), cmp_i64);

    struct turn *turns = NULL;
    size_t nt = load_turns(tsv, tx, &turns);
    printf("policy: %zu rules (11 pre, 4 post), a 10,000-term library and 21 inline terms\n",
           tg_policy_count(p));
    printf("compile (load + parse + automaton + JIT): median %.2f ms, best %.2f ms; "
           "heap held %.2f MB\n",
           (double)ct[10] / 1e6, (double)ct[0] / 1e6, (double)heap / 1048576.0);
    printf("messages: %zu (%s + %zu with amounts/identifiers)\n", nt, tsv,
           TG_ARRAY_LEN(extra_msgs));

    struct tg_policy_hits h;
    tg_policy_hits_init(&h);
    int64_t *pre = malloc(evals * sizeof(int64_t));
    int64_t *post = malloc(evals * sizeof(int64_t));
    int64_t *turn = malloc(evals * sizeof(int64_t));
    size_t fired_pre = 0, fired_post = 0, fired_lib = 0, bytes = 0;
    for (size_t i = 0; i < nt; i++)
        bytes += turns[i].f.text_len;
    printf("mean message %.1f bytes (UTF-8)\n", (double)bytes / (double)nt);
    /* Warm-up: grows the hits once; after this no evaluation allocates. */
    for (size_t i = 0; i < nt; i++) {
        tg_policy_eval(p, TG_POLICY_PRE, &turns[i].f, &h);
        tg_policy_eval(p, TG_POLICY_POST, &turns[i].f, &h);
    }
    for (size_t i = 0; i < evals; i++) {
        const struct tg_policy_facts *fx = &turns[i % nt].f;
        int64_t t0 = now_ns();
        tg_policy_eval(p, TG_POLICY_PRE, fx, &h);
        int64_t t1 = now_ns();
        fired_pre += h.n;
        for (size_t k = 0; k < h.n; k++)
            fired_lib += strcmp(h.v[k].rule, "sensitive-library") == 0;
        int64_t t2 = now_ns();
        tg_policy_eval(p, TG_POLICY_POST, fx, &h);
        int64_t t3 = now_ns();
        fired_post += h.n;
        pre[i] = t1 - t0;
        post[i] = t3 - t2;
        turn[i] = pre[i] + post[i];
    }
    printf("hits per turn: %.2f pre, %.2f post; library rule fired on %.0f%% of turns\n",
           (double)fired_pre / (double)evals, (double)fired_post / (double)evals,
           100.0 * (double)fired_lib / (double)evals);
    report("tg_policy_eval pre", pre, evals);
    report("tg_policy_eval post", post, evals);
    report("one turn (pre + post)", turn, evals);
    int64_t pre_median = (int64_t)(pct_us(pre, evals, 50) * 1000);

    /* Longer messages: eight consecutive ones joined (a customer pasting a paragraph). */
    size_t nl = nt / 8;
    struct turn *longs = calloc(nl, sizeof(*longs));
    size_t long_bytes = 0;
    for (size_t i = 0; i < nl; i++) {
        struct tg_buf jb;
        tg_buf_init(&jb, TG_BUF_UNLIMITED);
        for (size_t k = 0; k < 8; k++)
            tg_buf_printf(&jb, "%s%s", k ? "，" : "", turns[8 * i + k].text);
        add_turn(&longs[i], tx, jb.data, turns[8 * i].intent, i);
        long_bytes += longs[i].f.text_len;
        tg_buf_free(&jb);
    }
    for (size_t i = 0; i < evals; i++) {
        const struct tg_policy_facts *fx = &longs[i % nl].f;
        int64_t t0 = now_ns();
        tg_policy_eval(p, TG_POLICY_PRE, fx, &h);
        pre[i] = now_ns() - t0;
    }
    char name[64];
    snprintf(name, sizeof(name), "pre, %.0f-byte messages", (double)long_bytes / (double)nl);
    report(name, pre, evals);
    for (size_t i = 0; i < nl; i++) {
        tg_free(longs[i].text);
        tg_free(longs[i].norm);
        tg_free(longs[i].intent);
        tg_entities_free(&longs[i].ent);
    }
    free(longs);

    /* Baseline: the 10,000 terms searched one by one with strstr over norm. */
    size_t nb = evals / 100 ? evals / 100 : 1, nterms = 0;
    char **terms = calloc(10000, sizeof(char *));
    char line[256];
    f = fopen(lib, "r");
    while (f && fgets(line, sizeof(line), f) && nterms < 10000) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] && line[0] != '#')
            terms[nterms++] = strdup(line);
    }
    if (f)
        fclose(f);
    int64_t *base = malloc(nb * sizeof(int64_t));
    size_t found = 0;
    for (size_t i = 0; i < nb; i++) {
        const char *norm = turns[i % nt].norm;
        int64_t t0 = now_ns();
        for (size_t k = 0; k < nterms; k++)
            found += strstr(norm, terms[k]) != NULL;
        base[i] = now_ns() - t0;
    }
    report("baseline: strstr x 10,000 terms", base, nb);
    printf("baseline median / tg_policy_eval pre median: %.0fx (%zu term hits)\n",
           pct_us(base, nb, 50) * 1000 / (double)pre_median, found);

    for (size_t i = 0; i < nterms; i++)
        free(terms[i]);
    free(terms);
    free(base);
    free(pre);
    free(post);
    free(turn);
    for (size_t i = 0; i < nt; i++) {
        tg_free(turns[i].text);
        tg_free(turns[i].norm);
        tg_free(turns[i].intent);
        tg_entities_free(&turns[i].ent);
    }
    free(turns);
    tg_policy_hits_free(&h);
    tg_policy_free(p);
    tg_text_close(tx);
    unlink(lib);
    unlink(path);
    rmdir(dir);
    return 0;
}
