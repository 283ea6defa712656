/*
 * policy.h - the rules that decide, for every turn, whether an AI answer
 * may go out as it is, must carry a disclaimer, must wait for a person, or
 * must never be given by AI at all.
 *
 * A policy is a list of rules (YAML, in the config's `policies:` section
 * or in files it names).  A rule has an `id`, a human `description`, a
 * `stage` (`pre`: on the customer's message, before any model; `post`: on
 * the draft answer, its text and the tool calls it asks for), a `when`
 * condition and one or more `then` actions.
 * Rules compile once at load; a bad rule is a config error with file:line.
 * Evaluation never allocates per rule and reports, for every rule that
 * fired, what triggered it (a span of the text, or a value).
 *
 * Grounding (numbers in a draft that no evidence contains) and PII
 * masking live here too: they are what the post-stage rules test and do.
 *
 * Threading: a compiled policy is immutable and may be shared by threads;
 * evaluation state lives in the caller's struct tg_policy_hits.
 */
#ifndef TG_POLICY_H
#define TG_POLICY_H

#include "core/core.h"

struct tg_policy;
struct tg_config_lines;
struct tg_entities;

enum tg_policy_stage { TG_POLICY_PRE, TG_POLICY_POST };

enum tg_policy_action_kind {
    TG_ACT_REVIEW,         /* hold for a person: sla_ms, queue, attestations */
    TG_ACT_HUMAN_DECISION, /* AI may not decide; a person must, ticking attestations */
    TG_ACT_PREFIX,         /* text in front of the answer (disclaimers) */
    TG_ACT_SUFFIX,         /* text after the answer */
    TG_ACT_REDACT,         /* mask PII in the reply and in what is stored (on: true/false) */
    TG_ACT_REFUSE,         /* answer with text instead, never by AI */
    TG_ACT_TAG,            /* risk tags carried to review, hand-off and audit */
    TG_ACT_SCRIPT,         /* answer with a canned reply (text) */
};

/* One action of a rule; strings owned by the compiled policy. */
struct tg_policy_action {
    enum tg_policy_action_kind kind;
    const char *text; /* prefix, suffix, refuse reply, script reply, review's holding reply (or NULL) */
    int64_t sla_ms;                   /* review: default 90000 */
    const char *queue;                /* review / human_decision: default "default" */
    const char *const *attestations;  /* review / human_decision */
    size_t n_attestations;
    const char *const *tags;          /* tag */
    size_t n_tags;
    bool on;                          /* redact */
};

/* One function call a draft asks the client to make (an OpenAI tool call); borrowed. */
struct tg_policy_tool_call {
    const char *name; /* the function's name */
    size_t name_len;
    const char *arguments; /* the arguments as the model wrote them (JSON text, may be invalid) */
    size_t arguments_len;
};

/* What the conditions test.  Strings are borrowed for the call. */
struct tg_policy_facts {
    /* the customer's message */
    const char *text;           /* original words (entity spans point here) */
    size_t text_len;
    const char *norm;           /* normalized (tg_text_normalize with T2S) for keywords */
    size_t norm_len;
    const struct tg_entities *entities; /* money and PII found in text, or NULL */
    const char *intent;         /* NULL when unclassified */
    double intent_confidence;
    /* the customer's earlier messages in this conversation, oldest first,
     * normalized like norm and separated by line breaks; NULL or empty on
     * a first message (conversation.keywords then never holds) */
    const char *conversation;
    size_t conversation_len;
    /* evidence and conversation */
    double best_score;          /* best retrieval score, 0 when none */
    size_t n_evidence;
    int degradations;           /* consecutive degraded turns so far */
    const char *channel;        /* "api", "web", "cli", ... */
    const char *tier;           /* customer tier from the request metadata ("vip"), or NULL */
    /* the draft answer (post stage only; NULL before) */
    const char *draft;
    size_t draft_len;
    const char *draft_language; /* "zh", "en", "ja" */
    double confidence;          /* the answer's confidence, -1 when none */
    size_t ungrounded;          /* claims in the draft found in no evidence (tg_grounding_check) */
    const struct tg_policy_tool_call *tool_calls; /* the draft's tool calls (post stage only) */
    size_t n_tool_calls;
};

/*
 * Whose answers an output rule (stage post) is for: `applies_to: ai`,
 * `human` or `both`.  By default a rule whose actions only put text around
 * an answer or tag it (disclaimers) is for both, any other for AI answers;
 * a rule on the customer's message (stage pre) is for AI answers.
 */
enum { TG_POLICY_FOR_AI = 1, TG_POLICY_FOR_HUMAN = 2 };

/* One rule that fired. */
struct tg_policy_hit {
    const char *rule;          /* the rule's id */
    const char *description;
    unsigned audience;         /* TG_POLICY_FOR_* bits */
    const struct tg_policy_action *actions;
    size_t n_actions;
    /* what triggered it: a byte span of facts->text (or of the draft for
     * draft tests), or a value (money.max), as the first condition that held
     * and points at a fact (a span, an amount, an identifier, a tool call),
     * else the first with a bare number (intent confidence, a score, a
     * count).  Tool-call tests give field "tool_calls" and value = the
     * index of the call in facts->tool_calls; tool.arguments.* tests also
     * give a span of that call's arguments (as written, escapes included). */
    const char *field;         /* "text", "norm", "draft", "money", "intent", "tool_calls",
                                  "conversation", ... */
    uint32_t start, end;       /* span in that field's text; start == end: no span */
    double value;              /* the value tested (amount, confidence, count, call index) */
    bool has_value;
};

/* Hits of one evaluation, reused across turns. */
struct tg_policy_hits {
    struct tg_policy_hit *v;
    size_t n, cap;
};

void tg_policy_hits_init(struct tg_policy_hits *h);
void tg_policy_hits_free(struct tg_policy_hits *h);

/*
 * Compile a list of rules (a jansson array as found in a config tree).
 * lines and path give file:line for errors (lines may be NULL).  Every
 * problem is appended to errs as "FILE:LINE: message"; returns TG_OK,
 * TG_E_CONFIG when any rule is bad (then *out is untouched), or TG_E_NOMEM.
 * Relative file names inside rules (keyword lists) are resolved against
 * base_dir.
 */
int tg_policy_compile(const json_t *rules, const struct tg_config_lines *lines, const char *path,
                      const char *base_dir, struct tg_policy **out, json_t *errs);
/* Load and compile a YAML or JSON file holding a list of rules (or {rules: [...]}). */
int tg_policy_load(const char *path, struct tg_policy **out, json_t *errs);
/* Append the rules of b to a (a keeps its own first); b is freed. */
int tg_policy_merge(struct tg_policy *a, struct tg_policy *b);
void tg_policy_free(struct tg_policy *p);
size_t tg_policy_count(const struct tg_policy *p);

/*
 * Evaluate the rules of one stage against facts, in rule order; the rules
 * that fire replace what hits held.  Returns TG_OK or TG_E_NOMEM (then
 * hits holds none).  hits grows to fit the policy and, when post rules
 * test tool-call arguments, room to decode the arguments of every call;
 * once grown, evaluating the same policy allocates nothing unless the
 * tool calls' arguments take more bytes in all than before.
 */
int tg_policy_eval(const struct tg_policy *p, enum tg_policy_stage stage,
                   const struct tg_policy_facts *facts, struct tg_policy_hits *hits);

const char *tg_policy_action_name(enum tg_policy_action_kind k);

/* ------------------------------------------------------------ grounding */

/* A claim of the draft that no evidence passage contains. */
struct tg_claim {
    uint32_t start, end; /* span in the draft */
    const char *kind;    /* "amount", "percent", "date", "number" */
};

/*
 * Find the numbers, amounts, rates, percentages and dates stated in a
 * draft and check each against the evidence texts: a claim is grounded
 * when some passage states the same quantity (compared by value, so
 * "5万元" is grounded by "50000元" and "3.5%" by "3.50%").  Writes at most
 * max ungrounded claims to out and their total count to *n.  TG_OK or
 * TG_E_NOMEM.
 */
int tg_grounding_check(const char *draft, size_t draft_len, const char *const *evidence,
                       size_t n_evidence, struct tg_claim *out, size_t max, size_t *n);

/* ------------------------------------------------------------ PII masking */

/*
 * Copy text to out with every PII span masked, keeping the first and last
 * characters where the type allows it so a customer recognises their own
 * data ("138****5678", "1101**********002X", "z***@example.com").  policy
 * numbers use opts' pattern.  TG_OK, TG_E_NOMEM or TG_E_CONFIG.
 */
int tg_pii_mask(const char *text, size_t len, const char *policy_pattern, struct tg_buf *out);

/*
 * A keyed pseudonym for a PII value: hex HMAC-SHA256(key, type || ":" ||
 * value) cut to 16 bytes, so equal values still match within a tenant and
 * the audit log never holds the value.  out holds 33 bytes.
 */
void tg_pii_pseudonym(const uint8_t *key, size_t keylen, const char *type, const char *value,
                      size_t len, char out[33]);

#endif
