/* status.h — status codes, error messages, logging.
 *
 * Every library function that can fail returns an int: FT_OK (0) or a negative ft_status.
 * The function that detects the failure records a detailed, human-readable message with
 * ft_error(), naming the file / record / tensor involved; callers read it with ft_last_error().
 * The message is thread-local and overwritten by the next ft_error() on the same thread.
 * Library code never calls exit() or abort(). */
#ifndef FINETUNE_STATUS_H
#define FINETUNE_STATUS_H

#include <stdarg.h>

typedef enum ft_status {
    FT_OK              = 0,
    FT_ERR_NOMEM       = -1,  /* allocation failed */
    FT_ERR_IO          = -2,  /* open/read/write/fsync/rename failed */
    FT_ERR_FORMAT      = -3,  /* malformed or corrupt input (JSON, safetensors, GGUF, ...) */
    FT_ERR_INVALID     = -4,  /* invalid argument or option value */
    FT_ERR_UNSUPPORTED = -5,  /* valid input that this build does not handle */
    FT_ERR_NOT_FOUND   = -6,  /* missing file, tensor, key or token */
    FT_ERR_SHAPE       = -7,  /* tensor shape mismatch */
    FT_ERR_DTYPE       = -8,  /* tensor dtype mismatch / unsupported dtype */
    FT_ERR_RANGE       = -9,  /* value out of range (token id, sequence length, ...) */
    FT_ERR_INTERRUPTED = -10, /* stopped on request (Ctrl-C) */
    FT_ERR_BUSY        = -11, /* overloaded: a queue is full or the service is draining (try again later) */
} ft_status;

/* Short, static description of a status code ("I/O error", ...). Never NULL. */
const char *ft_strerror(int status);

/* Records a formatted message for the calling thread and returns `status` unchanged,
 * so that failing paths read `return ft_error(FT_ERR_FORMAT, "%s: ...", path);`. */
int ft_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the current thread's message with more context: "ctx: previous message". Returns status. */
int ft_error_wrap(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last message recorded on this thread, or ft_strerror of nothing ("") if none. Never NULL. */
const char *ft_last_error(void);
void ft_error_clear(void);

/* ---- logging (stderr) ---- */
typedef enum { FT_LOG_ERROR = 0, FT_LOG_WARN = 1, FT_LOG_INFO = 2, FT_LOG_DEBUG = 3 } ft_log_level;
void ft_log_set_level(ft_log_level level);
ft_log_level ft_log_get_level(void);
void ft_log(ft_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define FT_LOGE(...) ft_log(FT_LOG_ERROR, __VA_ARGS__)
#define FT_LOGW(...) ft_log(FT_LOG_WARN, __VA_ARGS__)
#define FT_LOGI(...) ft_log(FT_LOG_INFO, __VA_ARGS__)
#define FT_LOGD(...) ft_log(FT_LOG_DEBUG, __VA_ARGS__)

/* Propagate a failing status: FT_TRY(f(x)); */
#define FT_TRY(expr) do { int ft_try_rc_ = (expr); if (ft_try_rc_ < 0) return ft_try_rc_; } while (0)

#endif
