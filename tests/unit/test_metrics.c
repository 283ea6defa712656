/*
 * test_metrics.c - counters and histograms in the Prometheus text format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "metrics/metrics.h"

#include <string.h>

static void test_render(void **state)
{
    (void)state;
    struct tg_metrics *m = tg_metrics_new();
    struct tg_buf out;
    tg_buf_init(&out, TG_BUF_UNLIMITED);
    tg_metrics_request(m, "/v1/chat/completions", 200);
    tg_metrics_request(m, "/v1/chat/completions", 200);
    tg_metrics_request(m, "/v1/chat/completions", 401);
    tg_metrics_decision(m, TG_DECISION_DELIVER);
    tg_metrics_stage(m, TG_STAGE_ADMIT, 7000);      /* 7 µs */
    tg_metrics_stage(m, TG_STAGE_ADMIT, 3000000);   /* 3 ms */
    tg_metrics_backend_error(m, "primary", "status_503");
    assert_int_equal(tg_metrics_render(m, &out), TG_OK);
    const char *want[] = {
        "trustgate_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 2\n",
        "trustgate_http_requests_total{route=\"/v1/chat/completions\",status=\"401\"} 1\n",
        "trustgate_decisions_total{decision=\"deliver\"} 1\n",
        "trustgate_decisions_total{decision=\"review\"} 0\n",
        "trustgate_stage_duration_seconds_bucket{stage=\"admit\",le=\"1e-05\"} 1\n",
        "trustgate_stage_duration_seconds_bucket{stage=\"admit\",le=\"0.0025\"} 1\n",
        "trustgate_stage_duration_seconds_bucket{stage=\"admit\",le=\"0.005\"} 2\n",
        "trustgate_stage_duration_seconds_bucket{stage=\"admit\",le=\"+Inf\"} 2\n",
        "trustgate_stage_duration_seconds_count{stage=\"admit\"} 2\n",
        "trustgate_stage_duration_seconds_count{stage=\"reply\"} 0\n",
        "trustgate_backend_errors_total{backend=\"primary\",kind=\"status_503\"} 1\n",
        "# TYPE trustgate_turn_duration_seconds histogram\n",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(want); i++)
        if (!strstr(out.data, want[i]))
            fail_msg("missing line: %s", want[i]);
    assert_string_equal(tg_stage_name(TG_STAGE_RECORD), "record");
    assert_string_equal(tg_decision_name(TG_DECISION_HUMAN_DECISION), "human_decision");
    tg_buf_free(&out);
    tg_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_render)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
