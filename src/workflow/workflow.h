/*
 * workflow.h - declarative agent workflows: a question worked through in
 * steps (look a policy up, search the knowledge base, decide, ask a
 * person, reply), each step stored and recorded in the audit log as it
 * happens, so a run survives a restart and an auditor can see what every
 * step was given and gave.
 *
 * A workflow is a YAML file the config's `workflows:` section names:
 *
 *   name: coverage_check
 *   description: does the customer's policy cover what they ask about
 *   input: [policy_number, activity]          # what a run must be given
 *   steps:
 *     - id: lookup
 *       kind: tool                             # POST JSON to url
 *       url: http://127.0.0.1:9000/policies/lookup
 *       args: {policy: "{{input.policy_number}}"}
 *       headers: {Authorization: "Bearer ${POLICY_TOKEN}"}   # ${ENV} as in the config
 *       timeout: 2s                            # per attempt
 *       retries: 1                             # attempts after the first
 *       on_fail: ask_person                    # the fallback step
 *     - id: check
 *       kind: decide
 *       cases:
 *         - {when: {path: lookup.exclusions, contains: "{{input.activity}}"}, next: excluded}
 *         - {when: {path: lookup.coverage, contains: "{{input.activity}}"}, next: covered}
 *       otherwise: ask_person
 *     - id: search
 *       kind: search                           # the knowledge base
 *       query: "{{input.activity}} 保险责任"
 *     - id: ask_person
 *       kind: review                           # a person decides; the run waits
 *       queue: coverage
 *       question: "{{input.activity}} 是否在保单 {{input.policy_number}} 的保障范围内？"
 *       draft: "..."
 *       attestations: [已核对保单条款]
 *       sla: 2m
 *       next: answer
 *     - id: summary
 *       kind: model                            # the deployment's ladder answers
 *       system: 只根据给出的条款回答。
 *       prompt: "条款：{{search.top}}\n问题：{{input.activity}}能否理赔？"
 *     - id: covered
 *       kind: reply
 *       text: "您的保单 {{lookup.policy}} 承保{{input.activity}}（{{lookup.clause}}）。"
 *       next: end
 *
 * Steps run in order unless one names `next` (a step id, or `end`); a
 * failing step goes to its `on_fail` step, else the run fails.  Strings
 * may hold {{path}} references to the run's input (`input.x`) and to what
 * earlier steps gave (`STEP.field.sub`, `STEP.answer` of a review).
 * Conditions: {path, eq | ne | contains | mentions | exists | gt | lt}; a
 * decide step's output names the case taken and, for contains and
 * mentions, the word found (`matched`).
 *
 * A workflow with a `trigger` also answers chat turns: a turn whose intent
 * is the trigger's (when it names one, or a list of them), that holds every entity it names
 * (policy_no, mobile, ... as the understand stage finds them; money) and
 * one of its keywords (when it names some) starts a run with the input
 * its templates make of {turn: {text, intent, language}, entities: {...}}:
 *
 *   trigger:
 *     intent: policy_coverage
 *     entities: [policy_no]
 *     input: {policy_number: "{{entities.policy_no}}", question: "{{turn.text}}"}
 *
 * Red lines: before a tool step calls, the deployment's post rules see
 * it as a tool call (its `tool` name, default the step id, and its
 * arguments); a rule that holds it for a person (human_decision, review)
 * makes the step wait for a person's approval (a human_decision task with
 * the rule's attestations: approve or edit lets the call go, reject fails
 * the step), so a tool that decides (approve a claim, a loan) never runs
 * on AI's word alone; a refusing rule fails the step.
 *
 * Durable execution: a run is a blob `workflow-run/<id>`; every step's
 * start and outcome is committed with an audit leaf (kind
 * workflow_step) before the run moves on.  A tool is called with the
 * header Idempotency-Key: <run>:<step>, the same on every attempt and
 * after a restart, so a tool that honours the key runs its side effect
 * once; a restart resumes every running run at its current step; a run
 * waiting for a person resumes when the review task is settled, without
 * running its earlier steps again.
 */
#ifndef TG_WORKFLOW_H
#define TG_WORKFLOW_H

#include "core/core.h"

struct event_base;
struct tg_store;
struct tg_audit;
struct tg_kb;
struct tg_text;

enum tg_wf_kind { TG_WF_TOOL, TG_WF_DECIDE, TG_WF_SEARCH, TG_WF_REVIEW, TG_WF_REPLY, TG_WF_MODEL };

enum tg_wf_op {
    TG_WF_EQ,
    TG_WF_NE,
    TG_WF_CONTAINS, /* the list holds the value, or the text contains it */
    TG_WF_EXISTS,
    TG_WF_GT,
    TG_WF_LT,
    TG_WF_MENTIONS /* the text names one of the value's strings (a list or a string) */
};

struct tg_wf_case {
    char *path; /* what is tested: input.x or STEP.field... */
    enum tg_wf_op op;
    json_t *value; /* compared with (a string may hold {{refs}}); NULL for exists */
    bool exists;   /* for exists: whether it must be there */
    char *next;    /* the step taken when it holds */
};

struct tg_wf_step {
    char *id;
    enum tg_wf_kind kind;
    int line;      /* where the step starts in its file */
    char *next;    /* NULL: the following step; "end" */
    char *on_fail; /* NULL: a failure fails the run */
    /* tool */
    char *tool; /* the name policy rules match (tool.name); default the step's id */
    char *url;
    json_t *args;    /* a JSON template */
    json_t *headers; /* {name: template} sent with the call (a token), or NULL */
    int64_t timeout_ms;
    long retries;
    /* decide */
    struct tg_wf_case *cases;
    size_t n_cases;
    char *otherwise;
    /* search */
    char *query;
    size_t top_k;
    /* review */
    char *queue, *question, *draft;
    json_t *attestations; /* [string] */
    int64_t sla_ms;
    /* reply */
    char *text;
    /* model */
    char *prompt, *system;
};

struct tg_workflow {
    char *name, *description, *path;
    char hash[2 * TG_SHA256_LEN + 1]; /* of the file's bytes */
    json_t *input;                    /* [string]: the names a run must be given */
    /* trigger: {intent?: name or [name], entities?: [name], keywords?: [word],
     * input: {name: template}}:
     * a chat turn that matches starts a run (NULL: only the API does) */
    json_t *trigger;
    struct tg_wf_step *steps;
    size_t n_steps;
};

/*
 * Load and check one workflow file.  Every problem is appended to errs as
 * "FILE:LINE: message" (unknown keys, a step id used twice, a next or
 * on_fail naming no step, a {{ref}} to a step that does not come before,
 * ...); TG_OK, TG_E_CONFIG (*out untouched) or TG_E_NOMEM.
 */
int tg_workflow_load(const char *path, struct tg_workflow **out, json_t *errs);
void tg_workflow_free(struct tg_workflow *wf);
/*
 * Load the n files the config names (cfg->workflow_paths): *out gets an
 * array of n workflows.  Every problem of every file goes to errs, and two
 * workflows of one name are one too; TG_OK, TG_E_CONFIG or TG_E_NOMEM
 * (*out untouched).
 */
int tg_workflows_load(char *const *paths, size_t n, struct tg_workflow ***out, json_t *errs);
void tg_workflows_free(struct tg_workflow **wfs, size_t n);
/* The step of that id, or NULL. */
const struct tg_wf_step *tg_workflow_step(const struct tg_workflow *wf, const char *id);

/* ------------------------------------------------------------ templates and conditions */

/*
 * Resolve a dotted path (input.policy_number, lookup.coverage.0) in ctx
 * ({input: {...}, STEP: output, ...}); NULL when it is not there.
 * Borrowed from ctx.
 */
const json_t *tg_wf_lookup(const json_t *ctx, const char *path);
/* s with every {{path}} replaced by what it names in ctx (strings as they
 * are, lists of strings joined by 、, other values as compact JSON,
 * missing ones as ""): a tg_malloc'd string, NULL when out of memory. */
char *tg_wf_render(const char *s, const json_t *ctx);
/* A JSON template (args) rendered: every string in it, at any depth. */
json_t *tg_wf_render_json(const json_t *tmpl, const json_t *ctx);
/* Whether case c holds in ctx; *matched (may be NULL) gets what contains or
 * mentions found (a new reference), else NULL. */
bool tg_wf_case_holds(const struct tg_wf_case *c, const json_t *ctx, json_t **matched);

/* ------------------------------------------------------------ runs */

struct tg_wf_engine;

/* What the engine needs of the gateway around it; all borrowed. */
struct tg_review_sla;
struct tg_policy;

struct tg_wf_env {
    struct event_base *base;
    struct tg_review_sla *sla; /* deadlines of the review tasks runs make; may be NULL */
    struct tg_store *st;
    struct tg_audit *audit;
    struct tg_kb *kb;     /* for search steps; may be NULL */
    /* the deployment's rules: a post rule on tool calls (tool.name,
     * tool.arguments.*) whose actions hold for a person (human_decision,
     * review) makes a tool step wait for a person's approval before the
     * call, with the rule's attestations; refuse fails the step.  May be NULL. */
    const struct tg_policy *policy;
    struct tg_text *text; /* the same */
    /* model steps: ask the deployment's ladder (system may be NULL); done is
     * called once from the loop with TG_OK and the answer and the model
     * that gave it, or an error and why; *call names the call for cancel
     * (the engine stops).  NULL: model steps fail. */
    int (*ask)(void *arg, const char *system, const char *prompt,
               void (*done)(void *cbarg, int err, const char *text, const char *model),
               void *cbarg, void **call);
    void (*cancel)(void *call);
    void *ask_arg;
};

/*
 * The engine for the n workflows (borrowed; they outlive it).  Every run
 * left running by an earlier process resumes at its current step once
 * the loop runs.  TG_OK or TG_E_NOMEM.
 */
int tg_wf_engine_create(const struct tg_wf_env *env, struct tg_workflow *const *wfs, size_t n,
                        struct tg_wf_engine **out);
/* Stop: runs in flight stay as stored, resumed by the next start. */
void tg_wf_engine_free(struct tg_wf_engine *e);
const struct tg_workflow *tg_wf_find(const struct tg_wf_engine *e, const char *name);
size_t tg_wf_count(const struct tg_wf_engine *e);
const struct tg_workflow *tg_wf_at(const struct tg_wf_engine *e, size_t i);

/*
 * Start a run of workflow name on input (an object holding every name the
 * workflow's `input` lists; borrowed).  The run is committed before this
 * returns and its steps run on the loop.  conversation_id and by (who
 * started it) may be NULL.  TG_OK with the id in id; TG_E_NOTFOUND for an
 * unknown workflow; TG_E_INVAL with err saying which input is missing;
 * or the store's error.
 */
typedef void (*tg_wf_done_fn)(void *arg, const json_t *run);
int tg_wf_start(struct tg_wf_engine *e, const char *name, const json_t *input,
                const char *conversation_id, const char *by, char id[TG_ID_MAX], char *err,
                size_t errlen);
/*
 * The same for a caller that waits (a chat turn): done(arg, run) is called
 * once, from the loop, when the run ends (state done or failed), waits for
 * a person (state waiting, review_id) or is given up on this node (state
 * still running: the store failed); never after tg_wf_engine_free.
 */
int tg_wf_start_waiting(struct tg_wf_engine *e, const char *name, const json_t *input,
                        const char *conversation_id, const char *by, tg_wf_done_fn done, void *arg,
                        char id[TG_ID_MAX], char *err, size_t errlen);
/*
 * The first workflow whose trigger the turn's facts ({turn: {text, intent,
 * language}, entities: {TYPE: first text, money: value}}) meet, and the
 * input its templates make (a new reference, every input the workflow needs
 * present); NULL when none.
 */
const struct tg_workflow *tg_wf_match(const struct tg_wf_engine *e, const json_t *facts,
                                      json_t **input);
/* Whether some trigger takes turns of this intent: the turn's facts are
 * worth making (a cheap test for every turn). */
bool tg_wf_may_trigger(const struct tg_wf_engine *e, const char *intent);
/* The stored record of run id (a new reference), or NULL. */
json_t *tg_wf_run_get(struct tg_store *st, const char *id);
/*
 * A review task was decided or handed off (task as stored or as the act
 * made it): the run waiting for it, if any, takes the outcome as its step's
 * output ({state, action, answer, actor}) and goes on.
 */
void tg_wf_review_settled(struct tg_wf_engine *e, const json_t *task);

#endif
