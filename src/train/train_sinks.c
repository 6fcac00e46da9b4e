/* train_sinks.c — the sinks a run reports to (train.h): the console (stderr), RUN/metrics.jsonl and
 * RUN/report.html; and the trainer's fan-out of messages and records to its sinks. */
#include "trainer_internal.h"
#include "train/dist.h"
#include "finetune/fileio.h"
#include "finetune/report.h"
#include "finetune/status.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ fan-out */

void ft__sinks_message(const ft_sinks *o, int level, const char *fmt, ...) {
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (int i = 0; o && i < o->n; i++)
        if (o->s[i].on_message) o->s[i].on_message(o->s[i].user, level, buf);
}

int ft__sinks_record(const ft_sinks *o, const char *json) {
    for (int i = 0; o && i < o->n; i++)
        if (o->s[i].on_record) FT_TRY(o->s[i].on_record(o->s[i].user, json));
    return FT_OK;
}

/* ------------------------------------------------------------------ console (stderr) */

typedef struct console {
    FILE *fp;
    int is_tty;
    int bar_open;      /* a progress bar ends the line: a newline comes before anything else */
} console;

static void con_break(console *c) {
    if (c->bar_open) fputc('\n', c->fp);
    c->bar_open = 0;
}

static int con_start(void *u, const ft_train_config *cfg, const char *defaults_text) {
    (void)u; (void)cfg; (void)defaults_text;   /* printed as a message when the task resolved it (dry runs too) */
    return FT_OK;
}

static int con_step(void *u, const ft_train_step_info *s) {
    console *c = u;
    ft_progress p = {s->step, s->total_steps, s->steps_per_epoch, s->train_time, c->is_tty, s->log_every, s->rate_unit,
                     ft__dist_get()->world};
    ft__train_progress(c->fp, &p, s->loss, s->lr, s->rate, 0);
    c->bar_open = c->is_tty;
    return FT_OK;
}

static int con_eval(void *u, const ft_train_eval *e) {
    console *c = u;
    con_break(c);
    fprintf(c->fp, "%s step %lld: %s%s\n", e->label, (long long)e->step, e->summary, e->is_best ? " *best*" : "");
    return FT_OK;
}

static void con_message(void *u, int level, const char *text) {
    console *c = u;
    con_break(c);
    if (level <= FT_LOG_WARN) fprintf(c->fp, "finetune: %s: %s\n", level == FT_LOG_ERROR ? "error" : "warning", text);
    else fprintf(c->fp, "%s\n", text);
}

static int con_end(void *u, const ft_train_result *res, int status) {
    con_break(u);
    return FT_OK;
}

static void con_close(void *u) { free(u); }

int ft_train_sink_console(ft_train_sink *out) {
    memset(out, 0, sizeof *out);
    console *c = calloc(1, sizeof *c);
    if (!c) return ft_error(FT_ERR_NOMEM, "out of memory");
    c->fp = stderr;
    c->is_tty = isatty(fileno(stderr));
    *out = (ft_train_sink){.name = "console", .user = c, .on_start = con_start, .on_step = con_step, .on_eval = con_eval,
                           .on_message = con_message, .on_end = con_end, .close = con_close};
    return FT_OK;
}

/* ------------------------------------------------------------------ RUN/metrics.jsonl */

typedef struct metrics {
    char path[4096];
    FILE *f;
    int rewound;       /* a resumed run appends */
} metrics;

static int met_line(metrics *m, const char *json) {
    if (!m->f) return FT_OK;
    if (fprintf(m->f, "%s\n", json) < 0 || fflush(m->f) != 0) return ft_error(FT_ERR_IO, "%s: write failed (disk full?)", m->path);
    return FT_OK;
}

static int met_start(void *u, const ft_train_config *cfg, const char *defaults_text) {
    metrics *m = u;
    if (m->f) return FT_OK;
    m->f = fopen(m->path, m->rewound ? "a" : "w");
    if (!m->f) return ft_error(FT_ERR_IO, "%s: cannot open for writing", m->path);
    return FT_OK;
}

int ft_train_step_json(const ft_train_step_info *s, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "{\"type\": \"train\", \"step\": %lld, \"epoch\": %.4f, \"loss\": %.6f, \"lr\": %.6g, \"grad_norm\": %.6g, \"%s\": %.1f}",
                     (long long)s->step, s->epoch, s->loss, s->lr, s->grad_norm, s->rate_key, s->rate);
    return n >= 0 && (size_t)n < cap ? FT_OK : ft_error(FT_ERR_RANGE, "metrics line longer than %zu bytes", cap);
}

static int met_step(void *u, const ft_train_step_info *s) {
    if (!s->logged) return FT_OK;
    char line[512];
    FT_TRY(ft_train_step_json(s, line, sizeof line));
    return met_line(u, line);
}

static int met_eval(void *u, const ft_train_eval *e) { return met_line(u, e->json); }
static int met_record(void *u, const char *json) { return met_line(u, json); }

static int64_t met_position(void *u) {
    metrics *m = u;
    if (!m->f) return 0;
    fflush(m->f);
    return (int64_t)ftell(m->f);
}

static int met_rewind(void *u, int64_t pos) {
    metrics *m = u;
    if (m->f) { fclose(m->f); m->f = NULL; }
    /* only ever shortened: a position past the end comes from an edited state.json (truncate would
     * extend the file, sparse, to any size) */
    struct stat st;
    int64_t size = stat(m->path, &st) == 0 ? (int64_t)st.st_size : 0;
    if (pos < 0 || pos > size)
        return ft_error(FT_ERR_FORMAT, "%s has %lld bytes; the checkpoint's position %lld is past its end", m->path, (long long)size,
                        (long long)pos);
    if (truncate(m->path, (off_t)pos) != 0) return ft_error(FT_ERR_IO, "%s: cannot truncate to %lld bytes", m->path, (long long)pos);
    m->rewound = 1;
    return FT_OK;
}

static int met_end(void *u, const ft_train_result *res, int status) {
    metrics *m = u;
    return m->f && fflush(m->f) != 0 ? ft_error(FT_ERR_IO, "%s: write failed", m->path) : FT_OK;
}

static void met_close(void *u) {
    metrics *m = u;
    if (m->f) fclose(m->f);
    free(m);
}

int ft_train_sink_metrics(ft_train_sink *out, const char *run_dir) {
    memset(out, 0, sizeof *out);
    metrics *m = calloc(1, sizeof *m);
    if (!m) return ft_error(FT_ERR_NOMEM, "out of memory");
    int rc = ft_path_join(m->path, sizeof m->path, run_dir, "metrics.jsonl");
    if (rc < 0) { free(m); return rc; }
    *out = (ft_train_sink){.name = "metrics", .user = m, .on_start = met_start, .on_step = met_step, .on_eval = met_eval,
                           .on_record = met_record, .on_end = met_end, .position = met_position, .rewind = met_rewind,
                           .close = met_close};
    return FT_OK;
}

/* ------------------------------------------------------------------ RUN/report.html */

static int rep_end(void *u, const ft_train_result *res, int status) { return ft_report_write(u); }
static void rep_close(void *u) { free(u); }

int ft_train_sink_report(ft_train_sink *out, const char *run_dir) {
    memset(out, 0, sizeof *out);
    char *dir = strdup(run_dir);
    if (!dir) return ft_error(FT_ERR_NOMEM, "out of memory");
    *out = (ft_train_sink){.name = "report", .user = dir, .on_end = rep_end, .close = rep_close};
    return FT_OK;
}
