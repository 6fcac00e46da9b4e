/* http_monitor.c — the monitoring layer of the HTTP server: Prometheus metrics (metrics.h) and drift detection
 * (drift.h) fed from the one place a finished request is known (ft__serve_on_request_done) and from the
 * GET /metrics, and the web page at GET / (web.h).
 *
 * Drift signals per served name (a model, or an adapter: its outputs differ from its base's), from successful
 * requests:
 *   generators (completions, chat; one observation per request): prompt_tokens, unknown_token_rate,
 *                generated_tokens
 *   classifiers (predict; one observation per text): confidence and label:<name> of each text, and
 *                prompt_tokens / unknown_token_rate (the request's mean per text: the hook has the totals)
 * When an alarm fires, one JSON line {"event":"drift", ...} goes to the request log (params.log) or, without one,
 * to stderr through ft_log. Names reach the metrics and drift state only once the engine has loaded them, so a
 * client cannot create series. */
#include "serve/http_internal.h"
#include "serve/web.h"
#include "finetune/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void on_drift_alarm(void *user, const ft__drift_event *ev) {
    ft_server *s = user;
    ft__sb b = {0};
    char ts[40];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    ft__drift_event_json(ev, &b);
    if (b.err || b.n < 2) {
        ft__sb_free(&b);
        return;
    }
    /* {"event":"drift",...} -> {"time":"...","event":"drift",...} */
    ft__sb line = {0};
    ft__sb_printf(&line, "{\"time\":\"%s\",", ts);
    ft__sb_put(&line, b.p + 1, b.n - 1);
    ft__sb_putc(&line, '\n');
    if (!line.err) {
        if (s->p.log) {   /* one fwrite: stdio locks the stream, so lines of other threads do not interleave */
            fwrite(line.p, 1, line.n, s->p.log);
            fflush(s->p.log);
        } else {
            line.p[line.n - 1] = 0;
            FT_LOGW("%s", line.p);
        }
    }
    ft__sb_free(&line);
    ft__sb_free(&b);
}

int ft__monitor_start(ft_server *s) {
    int rc = ft__metrics_create(&s->metrics);
    if (rc == FT_OK) rc = ft__drift_create(&s->drift, NULL, on_drift_alarm, s);
    if (rc == FT_OK) ft__monitor_sync_names(s);
    return rc;
}

void ft__monitor_stop(ft_server *s) {
    ft__drift_free(s->drift);
    ft__metrics_free(s->metrics);
    s->drift = NULL;
    s->metrics = NULL;
}

void ft__monitor_sync_names(ft_server *s) {
    if (!s->metrics || !s->e) return;
    ft_engine_entry *v = NULL;
    int n = 0;
    if (ft_engine_list(s->e, &v, &n) < 0) return;
    ft__metrics_set_names(s->metrics, v, n);
    ft_engine_entries_free(v, n);
}

void ft__monitor_request_done(ft_server *s, const ft__request_info *info) {
    if (!s->metrics) return;
    const char *model = info->model && *info->model ? info->model : NULL;
    ft__request_obs o = {
        .route = info->route, .model = model, .adapter = info->adapter, .status = info->status,
        .latency_s = info->latency_ms / 1000.0, .ttft_s = info->ttft_ms >= 0 ? info->ttft_ms / 1000.0 : -1,
        .prompt_tokens = info->prompt_tokens, .generated_tokens = info->completion_tokens,
    };
    ft__metrics_observe(s->metrics, &o);
    if (!model || info->status != 200 || info->client_closed || !info->route) return;
    const char *served = info->adapter && *info->adapter ? info->adapter : model;
    if (!strcmp(info->route, "/v1/completions") || !strcmp(info->route, "/v1/chat/completions")) {
        ft__drift_observe_prompt(s->drift, served, (int)info->prompt_tokens, (int)info->unknown_tokens);
        ft__drift_observe_generation(s->drift, served, (int)info->completion_tokens);
    } else if (!strcmp(info->route, "/models/{id}/predict") && info->n_predictions > 0) {
        int n = info->n_predictions;
        ft_engine_entry *e = NULL;
        if (ft_engine_find(s->e, served, &e) != FT_OK) return;   /* unloaded meanwhile */
        int per_text = (int)((info->prompt_tokens + n / 2) / n), unk = (int)((info->unknown_tokens + n / 2) / n);
        for (int i = 0; i < n; i++) {
            ft__drift_observe_prompt(s->drift, served, per_text, unk);
            ft__drift_observe_prediction(s->drift, served, info->confidences[i], (const char *const *)e->labels,
                                         e->labels ? e->num_labels : 0, info->labels[i]);
        }
        ft_engine_entries_free(e, 1);
    }
}

ft__mhd_result ft__http_metrics(ft__http_req *r) {
    ft_server *s = r->s;
    ft_engine_stats st;
    ft_engine_get_stats(s->e, &st);
    ft__sb b = {0};
    if (ft__metrics_render(s->metrics, &st, s->drift, &b) < 0) {
        ft__sb_free(&b);
        return ft__http_error(r, 500, "internal_error", NULL, "out of memory rendering the metrics");
    }
    ft__mhd_result rc = ft__http_send_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.p ? b.p : "", b.n);
    ft__sb_free(&b);
    return rc;
}

ft__mhd_result ft__http_page(ft__http_req *r) {
    return ft__http_send_text(r, 200, "text/html; charset=utf-8", (const char *)ft__web_index_html, ft__web_index_html_len);
}
