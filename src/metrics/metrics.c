/*
 * metrics.c - fixed-bucket histograms and labelled counters for
 * Prometheus.  Label sets are few (routes, statuses, backends), so
 * labelled counters live in a small array searched linearly.
 */
#include "metrics/metrics.h"

#include <stdio.h>
#include <string.h>

/* Upper bounds in seconds; spaced for a path measured in microseconds
 * that may wait seconds on a model. */
static const double buckets[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                 0.0025,  0.005,    0.01,    0.025,  0.05,    0.1,    0.25,
                                 0.5,     1,        2.5,     5,      10,      30,     60};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct histo {
    uint64_t counts[NBUCKETS]; /* non-cumulative; rendered cumulatively */
    uint64_t count;
    double sum;
};

#define LABEL_MAX 64
struct counter2 {
    char a[LABEL_MAX];
    char b[LABEL_MAX];
    uint64_t n;
};

struct counter_set {
    struct counter2 *items;
    size_t n, cap;
};

struct tg_metrics {
    struct counter_set requests;       /* route, status */
    struct counter_set backend_errors; /* backend, kind */
    struct counter_set degradations;   /* from rung, cause */
    struct counter_set attempts;       /* backend, outcome ("ok" or a failure kind) */
    struct counter_set tokens;         /* backend, "prompt" | "completion": answers given only */
    struct counter_set experiments;    /* experiment, variant */
    uint64_t decisions[TG_DECISION__COUNT];
    struct histo stages[TG_STAGE__COUNT];
    struct histo turn;
};

static const char *stage_names[] = {
#define TG_STAGE_NAME(sym, name) name,
    TG_STAGE_TABLE(TG_STAGE_NAME)
#undef TG_STAGE_NAME
};

static const char *decision_names[] = {
#define TG_DECISION_NAME(sym, name) name,
    TG_DECISION_TABLE(TG_DECISION_NAME)
#undef TG_DECISION_NAME
};

const char *tg_stage_name(enum tg_stage_id s)
{
    return (unsigned)s < TG_STAGE__COUNT ? stage_names[s] : "unknown";
}

const char *tg_decision_name(enum tg_decision d)
{
    return (unsigned)d < TG_DECISION__COUNT ? decision_names[d] : "unknown";
}

struct tg_metrics *tg_metrics_new(void)
{
    return tg_calloc(1, sizeof(struct tg_metrics));
}

void tg_metrics_free(struct tg_metrics *m)
{
    if (!m)
        return;
    tg_free(m->requests.items);
    tg_free(m->backend_errors.items);
    tg_free(m->degradations.items);
    tg_free(m->attempts.items);
    tg_free(m->tokens.items);
    tg_free(m->experiments.items);
    tg_free(m);
}

static void counter_add(struct counter_set *cs, const char *a, const char *b, uint64_t n)
{
    for (size_t i = 0; i < cs->n; i++) {
        if (strcmp(cs->items[i].a, a) == 0 && strcmp(cs->items[i].b, b) == 0) {
            cs->items[i].n += n;
            return;
        }
    }
    if (tg_grow(&cs->items, &cs->cap, cs->n, sizeof(*cs->items), 16))
        return; /* a lost sample is better than a failed request */
    struct counter2 *c = &cs->items[cs->n++];
    tg_strlcpy(c->a, a, sizeof(c->a));
    tg_strlcpy(c->b, b, sizeof(c->b));
    c->n = n;
}

static void counter_inc(struct counter_set *cs, const char *a, const char *b)
{
    counter_add(cs, a, b, 1);
}

static void histo_add(struct histo *h, int64_t ns)
{
    double s = (double)ns / 1e9;
    size_t i = 0;
    while (i < NBUCKETS && s > buckets[i])
        i++;
    if (i < NBUCKETS)
        h->counts[i]++;
    h->count++;
    h->sum += s;
}

void tg_metrics_request(struct tg_metrics *m, const char *route, int status)
{
    char st[16];
    snprintf(st, sizeof(st), "%d", status);
    counter_inc(&m->requests, route, st);
}

void tg_metrics_decision(struct tg_metrics *m, enum tg_decision d)
{
    if ((unsigned)d < TG_DECISION__COUNT)
        m->decisions[d]++;
}

void tg_metrics_stage(struct tg_metrics *m, enum tg_stage_id s, int64_t ns)
{
    if ((unsigned)s < TG_STAGE__COUNT)
        histo_add(&m->stages[s], ns);
}

void tg_metrics_turn(struct tg_metrics *m, int64_t ns)
{
    histo_add(&m->turn, ns);
}

void tg_metrics_backend_error(struct tg_metrics *m, const char *backend, const char *kind)
{
    counter_inc(&m->backend_errors, backend, kind);
}

void tg_metrics_degradation(struct tg_metrics *m, const char *from_rung, const char *cause)
{
    counter_inc(&m->degradations, from_rung, cause);
}

void tg_metrics_attempt(struct tg_metrics *m, const char *backend, const char *outcome)
{
    counter_inc(&m->attempts, backend, outcome);
}

void tg_metrics_tokens(struct tg_metrics *m, const char *backend, int64_t prompt,
                       int64_t completion)
{
    if (prompt > 0)
        counter_add(&m->tokens, backend, "prompt", (uint64_t)prompt);
    if (completion > 0)
        counter_add(&m->tokens, backend, "completion", (uint64_t)completion);
}

void tg_metrics_experiment(struct tg_metrics *m, const char *experiment, const char *variant)
{
    counter_inc(&m->experiments, experiment, variant);
}

/* One labelled counter family. */
static int render_counters(struct tg_buf *out, const char *name, const char *help, const char *la,
                           const char *lb, const struct counter_set *cs)
{
    int rc = tg_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (size_t i = 0; i < cs->n && !rc; i++)
        rc = tg_buf_printf(out, "%s{%s=\"%s\",%s=\"%s\"} %llu\n", name, la, cs->items[i].a, lb,
                           cs->items[i].b, (unsigned long long)cs->items[i].n);
    return rc;
}

static int render_histo(struct tg_buf *out, const char *name, const char *label,
                        const struct histo *h)
{
    int rc = 0;
    uint64_t cum = 0;
    const char *sep = label[0] ? "," : "";
    for (size_t i = 0; i < NBUCKETS && !rc; i++) {
        cum += h->counts[i];
        rc = tg_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, label, sep, buckets[i],
                           (unsigned long long)cum);
    }
    if (!rc)
        rc = tg_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, label, sep,
                           (unsigned long long)h->count);
    if (!rc)
        rc = tg_buf_printf(out, "%s_sum{%s} %.9f\n%s_count{%s} %llu\n", name, label, h->sum, name,
                           label, (unsigned long long)h->count);
    return rc;
}

int tg_metrics_render(const struct tg_metrics *m, struct tg_buf *out)
{
    int rc = tg_buf_puts(out, "# HELP trustgate_http_requests_total HTTP requests answered.\n"
                              "# TYPE trustgate_http_requests_total counter\n");
    for (size_t i = 0; i < m->requests.n && !rc; i++)
        rc = tg_buf_printf(out, "trustgate_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                           m->requests.items[i].a, m->requests.items[i].b,
                           (unsigned long long)m->requests.items[i].n);
    if (!rc)
        rc = tg_buf_puts(out, "# HELP trustgate_decisions_total Turns by gate decision.\n"
                              "# TYPE trustgate_decisions_total counter\n");
    for (int d = 1; d < TG_DECISION__COUNT && !rc; d++)
        rc = tg_buf_printf(out, "trustgate_decisions_total{decision=\"%s\"} %llu\n",
                           decision_names[d], (unsigned long long)m->decisions[d]);
    if (!rc)
        rc = tg_buf_puts(out, "# HELP trustgate_stage_duration_seconds Time spent per stage.\n"
                              "# TYPE trustgate_stage_duration_seconds histogram\n");
    for (int s = 0; s < TG_STAGE__COUNT && !rc; s++) {
        char label[64];
        snprintf(label, sizeof(label), "stage=\"%s\"", stage_names[s]);
        rc = render_histo(out, "trustgate_stage_duration_seconds", label, &m->stages[s]);
    }
    if (!rc)
        rc = tg_buf_puts(out, "# HELP trustgate_turn_duration_seconds Whole-turn latency.\n"
                              "# TYPE trustgate_turn_duration_seconds histogram\n");
    if (!rc)
        rc = render_histo(out, "trustgate_turn_duration_seconds", "", &m->turn);
    if (!rc)
        rc = tg_buf_puts(out, "# HELP trustgate_backend_errors_total Upstream failures.\n"
                              "# TYPE trustgate_backend_errors_total counter\n");
    for (size_t i = 0; i < m->backend_errors.n && !rc; i++)
        rc = tg_buf_printf(out, "trustgate_backend_errors_total{backend=\"%s\",kind=\"%s\"} %llu\n",
                           m->backend_errors.items[i].a, m->backend_errors.items[i].b,
                           (unsigned long long)m->backend_errors.items[i].n);
    if (!rc)
        rc = render_counters(out, "trustgate_degradations_total",
                             "Steps down the backend ladder, by the rung left and why.", "from",
                             "cause", &m->degradations);
    if (!rc)
        rc = render_counters(out, "trustgate_upstream_attempts_total",
                             "Calls to backends, by outcome.", "backend", "outcome", &m->attempts);
    if (!rc)
        rc = render_counters(out, "trustgate_tokens_total",
                             "Tokens of answers given (failed attempts are not counted).",
                             "backend", "kind", &m->tokens);
    if (!rc)
        rc = render_counters(out, "trustgate_experiment_turns_total",
                             "Turns by the experiment variant their customer was assigned (a "
                             "sample-ratio mismatch shows here first).",
                             "experiment", "variant", &m->experiments);
    return rc;
}
