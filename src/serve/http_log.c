/* http_log.c — the end of every request: ft__serve_on_request_done, called once per finished request
 * (http_server.c, on libmicrohttpd's completion callback). Today it writes the request log: one JSON
 * line per request
 *   {"time": "2025-01-02T03:04:05.678Z", "request_id", "method", "route", "model", "adapter", "status",
 *    "latency_ms", "prompt_tokens", "completion_tokens", "client", "ttft_ms" (generations), "stream", "error"}
 * to params.log, for a fraction params.log_sample of successful requests (errors always). The monitoring
 * layer (metrics, drift) hooks in here too. */
#include "serve/http_internal.h"
#include "core/hash.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int sampled(ft_server *s, uint64_t n) {
    double rate = s->p.log_sample;
    if (rate >= 1) return 1;
    if (rate <= 0) return 0;
    return (double)(ft__mix64(n) >> 11) * (1.0 / 9007199254740992.0) < rate;
}

void ft__serve_on_request_done(ft_server *s, const ft__request_info *info) {
    ft__monitor_request_done(s, info);   /* metrics and drift detection (http_monitor.c) */
    if (!s->p.log) return;
    static uint64_t counter;
    uint64_t n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
    if (info->status < 400 && !sampled(s, n)) return;
    char ts[40];
    time_t sec = (time_t)info->start_time;
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t k = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + k, sizeof ts - k, ".%03dZ", (int)((info->start_time - (double)sec) * 1000) % 1000);
    ft__sb b = {0};
    ft__sb_printf(&b, "{\"time\":\"%s\",\"request_id\":", ts);
    ft__sb_put_json(&b, info->request_id, strlen(info->request_id), 0);
    ft__sb_puts(&b, ",\"method\":");
    ft__sb_put_json(&b, info->method, strlen(info->method), FT__SB_JSON_ASCII);
    ft__sb_puts(&b, ",\"route\":");
    ft__sb_put_json(&b, info->route, strlen(info->route), FT__SB_JSON_ASCII);
    ft__sb_puts(&b, ",\"model\":");
    if (info->model && *info->model) ft__sb_put_json(&b, info->model, strlen(info->model), FT__SB_JSON_ASCII);
    else ft__sb_puts(&b, "null");
    ft__sb_puts(&b, ",\"adapter\":");
    if (info->adapter && *info->adapter) ft__sb_put_json(&b, info->adapter, strlen(info->adapter), FT__SB_JSON_ASCII);
    else ft__sb_puts(&b, "null");
    ft__sb_printf(&b, ",\"status\":%d,\"latency_ms\":%.3f,\"prompt_tokens\":%ld,\"completion_tokens\":%ld,\"client\":",
                  info->status, info->latency_ms, info->prompt_tokens, info->completion_tokens);
    ft__sb_put_json(&b, info->client, strlen(info->client), FT__SB_JSON_ASCII);
    if (info->ttft_ms >= 0) ft__sb_printf(&b, ",\"ttft_ms\":%.3f", info->ttft_ms);
    ft__sb_printf(&b, ",\"stream\":%s", info->streamed ? "true" : "false");
    if (info->client_closed) ft__sb_puts(&b, ",\"client_closed\":true");
    if (info->error_code) {
        ft__sb_puts(&b, ",\"error\":");
        ft__sb_put_json(&b, info->error_code, strlen(info->error_code), FT__SB_JSON_ASCII);
    }
    ft__sb_puts(&b, "}\n");
    if (!b.err) {
        pthread_mutex_lock(&s->mu);
        fwrite(b.p, 1, b.n, s->p.log);
        fflush(s->p.log);
        pthread_mutex_unlock(&s->mu);
    }
    ft__sb_free(&b);
}
