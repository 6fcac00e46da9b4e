/* status.c — status strings, thread-local error messages, stderr logging. */
#include "finetune/status.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char g_msg[2048];
static ft_log_level g_level = FT_LOG_INFO;

const char *ft_strerror(int status) {
    switch (status) {
    case FT_OK: return "success";
    case FT_ERR_NOMEM: return "out of memory";
    case FT_ERR_IO: return "I/O error";
    case FT_ERR_FORMAT: return "malformed input";
    case FT_ERR_INVALID: return "invalid argument";
    case FT_ERR_UNSUPPORTED: return "unsupported";
    case FT_ERR_NOT_FOUND: return "not found";
    case FT_ERR_SHAPE: return "shape mismatch";
    case FT_ERR_DTYPE: return "dtype mismatch";
    case FT_ERR_RANGE: return "out of range";
    case FT_ERR_INTERRUPTED: return "interrupted";
    case FT_ERR_BUSY:        return "busy";
    default: return "unknown error";
    }
}

int ft_error(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return status;
}

int ft_error_wrap(int status, const char *fmt, ...) {
    char prev[sizeof g_msg];
    memcpy(prev, g_msg, sizeof prev);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n < sizeof g_msg)
        snprintf(g_msg + n, sizeof g_msg - (size_t)n, ": %s", prev[0] ? prev : ft_strerror(status));
    return status;
}

const char *ft_last_error(void) { return g_msg; }
void ft_error_clear(void) { g_msg[0] = 0; }

void ft_log_set_level(ft_log_level level) { g_level = level; }
ft_log_level ft_log_get_level(void) { return g_level; }

void ft_log(ft_log_level level, const char *fmt, ...) {
    if (level > g_level) return;
    static const char *tag[] = {"error", "warning", "info", "debug"};
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "finetune: %s: %s\n", tag[level], buf);
}
