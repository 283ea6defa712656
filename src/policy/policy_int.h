/*
 * policy_int.h - the compiled form of a policy, shared by compile.c (YAML
 * rules -> arrays), eval.c (arrays + facts -> hits) and ac.c (the one
 * Aho-Corasick automaton over every keyword of every rule).  Nothing outside
 * src/policy/ includes this.
 *
 * A compiled policy is flat: rules point at the root of their condition
 * tree in one node array; combinators name their children through one
 * index array; keyword and regex tests are leaves numbered in their own
 * arrays so an evaluation can cache one result per leaf.  All strings,
 * name lists and actions live in the policy's arenas.
 */
#ifndef TG_POLICY_INT_H
#define TG_POLICY_INT_H

#include "policy/policy.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Deepest nesting of all/any/not a rule may use. */
#define POLICY_MAX_DEPTH 32
/* Longest rule id. */
#define POLICY_MAX_ID 128
/* Largest keyword file read. */
#define POLICY_MAX_KW_FILE (64u * 1024 * 1024)
/* PCRE2 match limit per regex test, so no pattern can stall a turn. */
#define POLICY_MATCH_LIMIT 1000000u
/* "No match" in a span record. */
#define POLICY_NONE UINT32_MAX

enum policy_cond {
    PC_ALL,
    PC_ANY,
    PC_NOT,
    PC_INTENT,
    PC_INTENT_CONFIDENCE,
    PC_MONEY_MAX,
    PC_MONEY_COUNT,
    PC_MONEY_ANY,
    PC_PII_ANY,
    PC_PII_TYPE,
    PC_KEYWORDS,
    PC_CONV_KEYWORDS,
    PC_REGEX,
    PC_EVIDENCE_BEST,
    PC_EVIDENCE_COUNT,
    PC_DEGRADATIONS,
    PC_CHANNEL,
    PC_TIER,
    PC_DRAFT_UNGROUNDED,
    PC_DRAFT_LENGTH,
    PC_DRAFT_LANGUAGE,
    PC_DRAFT_KEYWORDS,
    PC_DRAFT_REGEX,
    PC_CONFIDENCE,
    PC_TOOL_NAME,
    PC_TOOL_COUNT,
    PC_TOOL_KEYWORDS,
    PC_TOOL_REGEX,
};

/*
 * The texts a keyword or regex test reads.  PF_TOOL is the arguments of
 * every tool call of the draft, each read twice: as written (JSON text) and
 * as its strings decoded (eval.c), spans always in the text as written.
 * PF_CONV is the customer's earlier messages of the conversation,
 * normalized (facts->conversation).
 */
enum policy_field { PF_TEXT, PF_NORM, PF_DRAFT, PF_TOOL, PF_CONV, PF_COUNT };

enum policy_op { OP_EQ, OP_NE, OP_GT, OP_GE, OP_LT, OP_LE };

/* One or two bounds, all of which must hold. */
struct policy_cmp {
    uint8_t n;
    uint8_t op[2];
    double v[2];
};

struct policy_node {
    uint8_t kind;             /* enum policy_cond */
    bool flag;                /* money.any / pii.any: the value wanted */
    uint32_t a, n;            /* all/any: kids[a..a+n); not: child a; keywords/regex: leaf a */
    unsigned pii_mask;        /* pii.type: 1 << enum tg_pii_type */
    const char *const *names; /* intent, channel, tier, draft.language, tool.name */
    size_t n_names;
    struct policy_cmp cmp;
    const char *name; /* the condition's name ("money.count"), for hits */
};

/* A keyword test: its terms (ASCII lower-cased) and the text it reads. */
struct policy_kw {
    const char *const *terms;
    const uint32_t *lens;
    uint32_t n_terms;
    uint8_t field; /* PF_NORM, PF_DRAFT, PF_TOOL or PF_CONV */
};

struct policy_rx {
    pcre2_code *code;
    const char *pattern;
    size_t pattern_len;
    uint8_t field;
};

struct policy_rule {
    const char *id;
    const char *description;
    enum tg_policy_stage stage;
    uint32_t root;
    const struct tg_policy_action *actions;
    size_t n_actions;
    unsigned audience; /* TG_POLICY_FOR_* (policy.h) */
};

struct policy_ac;

struct tg_policy {
    struct policy_rule *rules;
    size_t n_rules;
    struct policy_node *nodes;
    size_t n_nodes;
    uint32_t *kids;
    size_t n_kids;
    struct policy_kw *kw;
    size_t n_kw;
    struct policy_rx *rx;
    size_t n_rx;
    size_t n_stage[2]; /* rules per stage */
    bool tool_args;    /* some keyword or regex test reads tool-call arguments (PF_TOOL) */
    /* every distinct term of kw[], and the keyword leaves that use it */
    struct policy_ac *ac;      /* NULL when no rule has keywords */
    uint32_t *term_leaf_start; /* n_terms + 1 */
    uint32_t *term_leaf;
    pcre2_match_context *mctx; /* match limits; NULL when no regex */
    struct tg_arena **arenas;  /* strings, names, actions, terms */
    size_t n_arenas;
};

/* ------------------------------------------------------------ ac.c */

/* Called for every occurrence of a term: its id and byte span [start, end). */
typedef void (*policy_ac_cb)(void *arg, uint32_t term, uint32_t start, uint32_t end);

/*
 * Build the automaton over n distinct terms, sorted by their bytes (memcmp
 * order, a prefix before its extensions), none empty.  Term i keeps id i.
 * TG_OK and *out, or TG_E_NOMEM.
 */
int policy_ac_build(const char *const *terms, const uint32_t *lens, uint32_t n,
                    struct policy_ac **out);
void policy_ac_free(struct policy_ac *ac);
/*
 * Report every occurrence of every term in text (ASCII letters compared
 * without case), in order of their end, longest first for one end.
 * Never allocates.
 */
void policy_ac_scan(const struct policy_ac *ac, const char *text, size_t len, policy_ac_cb cb,
                    void *arg);
/* States of the automaton and bytes it holds (for benchmarks and docs). */
size_t policy_ac_states(const struct policy_ac *ac);
size_t policy_ac_bytes(const struct policy_ac *ac);

/* ------------------------------------------------------------ compile.c */

/* PCRE2 memory through tg_malloc/tg_free (pcre2_general_context_create). */
void *policy_pcre_alloc(size_t n, void *data);
void policy_pcre_release(void *p, void *data);

/*
 * (Re)build p->ac and the term-to-leaf index from p->kw.  On failure p is
 * unchanged.  TG_OK or TG_E_NOMEM.
 */
int policy_keywords_build(struct tg_policy *p);

#endif
