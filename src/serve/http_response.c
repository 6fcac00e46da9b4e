/* http_response.c — queuing responses: JSON bodies, the request id header, and errors in the shape of
 * each API (OpenAI's {"error": {message, type, param, code}} under /v1; the classification API's
 * {"error", "message", "status_code", "request_id"} elsewhere). */
#include "serve/http_internal.h"
#include "finetune/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ft__mhd_result ft__http_queue(ft__http_req *r, int status, struct MHD_Response *resp) {
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    if (r->retry_after > 0) {
        char b[32];
        snprintf(b, sizeof b, "%d", r->retry_after);
        MHD_add_response_header(resp, "Retry-After", b);
    }
    if (r->allow) MHD_add_response_header(resp, "Allow", r->allow);
    if (status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    if (__atomic_load_n(&r->s->draining, __ATOMIC_ACQUIRE)) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    ft__mhd_result rc = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->responded = 1;
    r->status = status;
    return rc;
}

ft__mhd_result ft__http_send_text(ft__http_req *r, int status, const char *content_type, const char *text, size_t n) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(n, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    return ft__http_queue(r, status, resp);
}

ft__mhd_result ft__http_send_json(ft__http_req *r, int status, cJSON *body) {
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!text) {
        static const char oom[] = "{\"error\":\"internal_error\",\"message\":\"out of memory\"}";
        return ft__http_send_text(r, 500, "application/json", oom, sizeof oom - 1);
    }
    size_t n = strlen(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) { free(text); return MHD_NO; }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return ft__http_queue(r, status, resp);
}

/* OpenAI's error "type" for a status */
static const char *openai_type(int status) {
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "invalid_request_error";
    case 429: return "rate_limit_exceeded";
    case 503: return "service_unavailable";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

/* the classification API's short error name for a status */
static const char *plain_error(int status) {
    switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 409: return "conflict";
    case 413: return "payload_too_large";
    case 422: return "validation_error";
    case 431: return "headers_too_large";
    case 429: return "rate_limited";
    case 503: return "service_unavailable";
    default: return status >= 500 ? "internal_error" : "bad_request";
    }
}

ft__mhd_result ft__http_error(ft__http_req *r, int status, const char *code, const char *param, const char *fmt, ...) {
    char raw[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    /* messages may quote client input: keep the JSON valid whatever it held */
    ft__sb m = {0};
    ft__utf8_sanitize(&m, raw, strlen(raw));
    const char *msg = m.p ? m.p : "";
    r->error_code = code ? code : plain_error(status);
    cJSON *o = cJSON_CreateObject();
    if (r->api == FT__API_OPENAI) {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "message", msg);
        cJSON_AddStringToObject(e, "type", openai_type(status));
        if (param) cJSON_AddStringToObject(e, "param", param); else cJSON_AddNullToObject(e, "param");
        if (code) cJSON_AddStringToObject(e, "code", code); else cJSON_AddNullToObject(e, "code");
    } else {
        cJSON_AddStringToObject(o, "error", code ? code : plain_error(status));
        cJSON_AddStringToObject(o, "message", msg);
        cJSON_AddNumberToObject(o, "status_code", status);
        if (param) cJSON_AddStringToObject(o, "field", param);
        cJSON_AddStringToObject(o, "request_id", r->id);
    }
    ft__sb_free(&m);
    return ft__http_send_json(r, status, o);
}

ft__mhd_result ft__http_send_entry_list(ft__http_req *r, int adapters_only, cJSON *(*object)(const ft_engine_entry *e)) {
    ft_engine_entry *v = NULL;
    int n = 0;
    int rc = ft_engine_list(r->s->e, &v, &n);
    if (rc < 0) return ft__http_engine_error(r, rc, NULL);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    for (int i = 0; i < n; i++)
        if (!adapters_only || v[i].is_adapter) cJSON_AddItemToArray(data, object(&v[i]));
    ft_engine_entries_free(v, n);
    return ft__http_send_json(r, 200, o);
}

ft__mhd_result ft__http_engine_error(ft__http_req *r, int status, const char *param) {
    const char *msg = ft_last_error();
    if (!msg || !*msg) msg = ft_strerror(status);
    int invalid = r->api == FT__API_CLASSIFY ? 422 : 400;
    switch (status) {
    case FT_ERR_NOT_FOUND: return ft__http_error(r, 404, r->api == FT__API_OPENAI ? "model_not_found" : "not_found", param, "%s", msg);
    case FT_ERR_RANGE: return ft__http_error(r, invalid, r->api == FT__API_OPENAI ? "context_length_exceeded" : "validation_error", param, "%s", msg);
    case FT_ERR_INVALID:
    case FT_ERR_FORMAT:
    case FT_ERR_UNSUPPORTED: return ft__http_error(r, invalid, r->api == FT__API_OPENAI ? "invalid_value" : "validation_error", param, "%s", msg);
    case FT_ERR_BUSY: r->retry_after = 1; return ft__http_error(r, 503, "overloaded", NULL, "%s", msg);
    case FT_ERR_INTERRUPTED: return ft__http_error(r, 503, "shutting_down", NULL, "%s", msg);
    default: return ft__http_error(r, 500, "internal_error", NULL, "%s", msg);
    }
}
