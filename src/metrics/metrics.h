/*
 * metrics.h - counters and latency histograms, rendered in the Prometheus
 * text exposition format for GET /metrics.
 *
 * Every metric name, its help text and its labels are defined once, in the
 * table in metrics.c.  A tg_metrics is owned by the server and updated from
 * the event-loop thread only, so updates are plain increments.
 */
#ifndef TG_METRICS_H
#define TG_METRICS_H

#include "core/core.h"

struct tg_metrics;

/* Stages of a turn, in order; the pipeline and the metrics share this list. */
#define TG_STAGE_TABLE(X)                                                                          \
    X(ADMIT, "admit")                                                                              \
    X(UNDERSTAND, "understand")                                                                    \
    X(RETRIEVE, "retrieve")                                                                        \
    X(PRECHECK, "precheck")                                                                        \
    X(GENERATE, "generate")                                                                        \
    X(POSTCHECK, "postcheck")                                                                      \
    X(GATE, "gate")                                                                                \
    X(RECORD, "record")                                                                            \
    X(REPLY, "reply")

enum tg_stage_id {
#define TG_STAGE_ENUM(sym, name) TG_STAGE_##sym,
    TG_STAGE_TABLE(TG_STAGE_ENUM)
#undef TG_STAGE_ENUM
        TG_STAGE__COUNT
};
const char *tg_stage_name(enum tg_stage_id s);

/* Decisions a gate can take; "error" marks a turn that failed outright. */
#define TG_DECISION_TABLE(X)                                                                       \
    X(NONE, "none")                                                                                \
    X(DELIVER, "deliver")                                                                          \
    X(REVIEW, "review")                                                                            \
    X(HUMAN_DECISION, "human_decision")                                                            \
    X(HANDOFF, "handoff")                                                                          \
    X(REFUSE, "refuse")                                                                            \
    X(ERROR, "error")

enum tg_decision {
#define TG_DECISION_ENUM(sym, name) TG_DECISION_##sym,
    TG_DECISION_TABLE(TG_DECISION_ENUM)
#undef TG_DECISION_ENUM
        TG_DECISION__COUNT
};
const char *tg_decision_name(enum tg_decision d);

/* Returns NULL on allocation failure.  Free with tg_metrics_free(). */
struct tg_metrics *tg_metrics_new(void);
void tg_metrics_free(struct tg_metrics *m);

/* One HTTP request answered with status on a route (the route's pattern, not the raw path). */
void tg_metrics_request(struct tg_metrics *m, const char *route, int status);
void tg_metrics_decision(struct tg_metrics *m, enum tg_decision d);
void tg_metrics_stage(struct tg_metrics *m, enum tg_stage_id s, int64_t ns);
void tg_metrics_turn(struct tg_metrics *m, int64_t ns);
/* An upstream failure of a backend; kind is a short word such as "timeout" or "status_503". */
void tg_metrics_backend_error(struct tg_metrics *m, const char *backend, const char *kind);
/* The ladder stepped down from a rung, and why ("status_503", "breaker_open", ...). */
void tg_metrics_degradation(struct tg_metrics *m, const char *from_rung, const char *cause);
/* One call to a backend ended: "ok" or its failure kind. */
void tg_metrics_attempt(struct tg_metrics *m, const char *backend, const char *outcome);
/* Usage of an answer that was given (never of failed attempts). */
void tg_metrics_tokens(struct tg_metrics *m, const char *backend, int64_t prompt,
                       int64_t completion);

/* Append the Prometheus text exposition to out. */
/* A turn of an experiment's variant (admit_route.c). */
void tg_metrics_experiment(struct tg_metrics *m, const char *experiment, const char *variant);
int tg_metrics_render(const struct tg_metrics *m, struct tg_buf *out);

#endif
