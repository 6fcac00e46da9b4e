/* metrics.c — the server's Prometheus series: request counters and histograms, token counters with a
 * sliding-window rate, engine gauges, process memory and CPU (see metrics.h). */
#include "core/clock.h"
#include "serve/metrics.h"
#include "serve/prom.h"
#include "finetune/status.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { NAME_CAP = 128, WINDOW_BUCKETS = 64, MAX_NAMES = 4096 };

typedef struct known_name {
    char name[NAME_CAP];
    char base[NAME_CAP];     /* "" for a model */
} known_name;

struct ft__metrics {
    ft__prom_family *requests, *duration, *ttft, *prompt_tokens, *generated_tokens, *model_requests;
    pthread_mutex_t mu;                 /* names and the token window */
    known_name *names;
    int n_names, cap_names;
    int64_t win_sec[WINDOW_BUCKETS];    /* [64] monotonic second each bucket holds */
    double  win_tokens[WINDOW_BUCKETS]; /* [64] generated tokens finished in that second */
    double  start_wall;                 /* unix seconds at creation (fallback start time) */
};

static const double k_duration_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
static const double k_ttft_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

int ft__metrics_create(ft__metrics **out) {
    *out = NULL;
    ft__metrics *m = calloc(1, sizeof *m);
    if (!m) return ft_error(FT_ERR_NOMEM, "metrics: out of memory");
    static const char *const route_status[] = {"route", "status"}, *const route[] = {"route"},
                             *const model[] = {"model"}, *const model_adapter[] = {"model", "adapter"};
    enum { N_DUR = sizeof k_duration_bounds / sizeof *k_duration_bounds, N_TTFT = sizeof k_ttft_bounds / sizeof *k_ttft_bounds };
    int rc = FT_OK;
    if (rc == FT_OK)
        rc = ft__prom_family_create(&m->requests, "finetune_requests_total", "HTTP requests answered, by route template and status code.",
                                    FT__PROM_COUNTER, 2, route_status, NULL, 0, 512);
    if (rc == FT_OK)
        rc = ft__prom_family_create(&m->duration, "finetune_request_duration_seconds", "Time from request received to answer done, by route template.",
                                    FT__PROM_HISTOGRAM, 1, route, k_duration_bounds, N_DUR, 64);
    if (rc == FT_OK)
        rc = ft__prom_family_create(&m->ttft, "finetune_time_to_first_token_seconds", "Generation requests: time from request received to the first token, by base model.",
                                    FT__PROM_HISTOGRAM, 1, model, k_ttft_bounds, N_TTFT, 256);
    if (rc == FT_OK)
        rc = ft__prom_family_create(&m->prompt_tokens, "finetune_prompt_tokens_total", "Prompt / input tokens processed, by base model and adapter (\"\" for none).",
                                    FT__PROM_COUNTER, 2, model_adapter, NULL, 0, 1024);
    if (rc == FT_OK)
        rc = ft__prom_family_create(&m->generated_tokens, "finetune_generated_tokens_total", "Tokens generated, by base model and adapter (\"\" for none).",
                                    FT__PROM_COUNTER, 2, model_adapter, NULL, 0, 1024);
    if (rc == FT_OK)
        rc = ft__prom_family_create(&m->model_requests, "finetune_model_requests_total", "Requests that named a model or adapter, by base model and adapter (\"\" for none).",
                                    FT__PROM_COUNTER, 2, model_adapter, NULL, 0, 1024);
    pthread_mutex_init(&m->mu, NULL);
    for (int i = 0; i < WINDOW_BUCKETS; i++) m->win_sec[i] = -1;
    m->start_wall = (double)time(NULL);
    if (rc != FT_OK) {
        ft__metrics_free(m);
        return rc;
    }
    *out = m;
    return FT_OK;
}

void ft__metrics_free(ft__metrics *m) {
    if (!m) return;
    ft__prom_family_free(m->requests);
    ft__prom_family_free(m->duration);
    ft__prom_family_free(m->ttft);
    ft__prom_family_free(m->prompt_tokens);
    ft__prom_family_free(m->generated_tokens);
    ft__prom_family_free(m->model_requests);
    pthread_mutex_destroy(&m->mu);
    free(m->names);
    free(m);
}

int ft__metrics_set_names(ft__metrics *m, const ft_engine_entry *v, int n) {
    pthread_mutex_lock(&m->mu);
    int rc = FT_OK;
    for (int i = 0; i < n && rc == FT_OK; i++) {
        known_name *k = NULL;
        for (int j = 0; j < m->n_names && !k; j++)
            if (!strcmp(m->names[j].name, v[i].name)) k = &m->names[j];
        if (!k) {
            if (m->n_names == MAX_NAMES) break;   /* bounded: later names count as "unknown" */
            if (m->n_names == m->cap_names) {
                int cap = m->cap_names ? 2 * m->cap_names : 16;
                known_name *p = realloc(m->names, (size_t)cap * sizeof *p);
                if (!p) {
                    rc = ft_error(FT_ERR_NOMEM, "metrics: out of memory");
                    break;
                }
                m->names = p;
                m->cap_names = cap;
            }
            k = &m->names[m->n_names++];
        }
        snprintf(k->name, sizeof k->name, "%s", v[i].name);
        snprintf(k->base, sizeof k->base, "%s", v[i].is_adapter ? v[i].base : "");
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* model / adapter labels of a request (copied into the caller's buffers). Called with m->mu held. */
static void resolve_names(ft__metrics *m, const ft__request_obs *o, char *model, char *adapter) {
    const known_name *k = NULL;
    model[0] = adapter[0] = 0;
    const char *asked = o->adapter && *o->adapter ? o->adapter : o->model;
    for (int j = 0; asked && j < m->n_names && !k; j++)
        if (!strcmp(m->names[j].name, asked)) k = &m->names[j];
    if (!k) {
        snprintf(model, NAME_CAP, "unknown");
        return;
    }
    if (k->base[0]) {
        snprintf(model, NAME_CAP, "%s", k->base);
        snprintf(adapter, NAME_CAP, "%s", k->name);
    } else {
        snprintf(model, NAME_CAP, "%s", k->name);
    }
}

void ft__metrics_observe(ft__metrics *m, const ft__request_obs *o) {
    if (!m || !o) return;
    const char *route = ft__metrics_route_label(o->route);
    char status[8];
    snprintf(status, sizeof status, "%d", o->status >= 100 && o->status <= 599 ? o->status : 0);
    const char *rs[] = {route, status};
    ft__prom_add(m->requests, rs, 1);
    if (o->latency_s >= 0) ft__prom_observe(m->duration, &route, o->latency_s);
    if (!o->model || !*o->model) return;

    char model[NAME_CAP], adapter[NAME_CAP];
    pthread_mutex_lock(&m->mu);
    resolve_names(m, o, model, adapter);
    if (o->generated_tokens > 0) {   /* the sliding window of generated tokens */
        int64_t sec = (int64_t)floor(ft__now_mono());
        int b = (int)(sec % WINDOW_BUCKETS);
        if (m->win_sec[b] != sec) {
            m->win_sec[b] = sec;
            m->win_tokens[b] = 0;
        }
        m->win_tokens[b] += (double)o->generated_tokens;
    }
    pthread_mutex_unlock(&m->mu);
    const char *ma[] = {model, adapter};
    const char *mo[] = {model};
    ft__prom_add(m->model_requests, ma, 1);
    if (o->prompt_tokens > 0) ft__prom_add(m->prompt_tokens, ma, (double)o->prompt_tokens);
    if (o->generated_tokens > 0) ft__prom_add(m->generated_tokens, ma, (double)o->generated_tokens);
    if (o->ttft_s >= 0) ft__prom_observe(m->ttft, mo, o->ttft_s);
}

double ft__metrics_tokens_per_second(ft__metrics *m, double window_s) {
    if (!(window_s > 0)) return 0;
    if (window_s > WINDOW_BUCKETS - 4) window_s = WINDOW_BUCKETS - 4;
    int64_t now = (int64_t)floor(ft__now_mono());
    int whole = (int)ceil(window_s);
    double sum = 0;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < WINDOW_BUCKETS; i++)   /* buckets of the last `whole` seconds, the current one included */
        if (m->win_sec[i] >= 0 && m->win_sec[i] > now - whole && m->win_sec[i] <= now) sum += m->win_tokens[i];
    pthread_mutex_unlock(&m->mu);
    return sum / whole;
}

/* ---- routes ---- */

/* 1 when s starts with prefix; *rest = what follows. */
static int starts(const char *s, const char *prefix, const char **rest) {
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n)) return 0;
    *rest = s + n;
    return 1;
}

/* 1 when s[0, n) is one path segment (non-empty, no '/'). */
static int one_segment(const char *s, size_t n) {
    return n > 0 && !memchr(s, '/', n);
}

const char *ft__metrics_route_label(const char *path) {
    static const char *const exact[] = {"/", "/health", "/metrics", "/v1/models", "/v1/completions",
                                        "/v1/chat/completions", "/v1/embeddings", "/v1/adapters", "/models"};
    /* the server's own labels for requests that ended before routing (static strings) */
    static const char *const pseudo[] = {"(auth)", "(loading)", "(rate limit)", "(too large)", "(draining)", "(unknown)", "(none)"};
    if (!path) return "other";
    for (size_t i = 0; i < sizeof pseudo / sizeof *pseudo; i++)
        if (!strcmp(path, pseudo[i])) return pseudo[i];
    size_t n = strcspn(path, "?#");
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
        if (strlen(exact[i]) == n && !strncmp(path, exact[i], n)) return exact[i];
    char p[1024];
    if (n >= sizeof p) return "other";
    memcpy(p, path, n);
    p[n] = 0;
    const char *rest;
    if (starts(p, "/v1/models/", &rest) && one_segment(rest, strlen(rest))) return "/v1/models/{id}";
    if (starts(p, "/v1/adapters/", &rest) && one_segment(rest, strlen(rest))) return "/v1/adapters/{name}";
    if (starts(p, "/models/", &rest)) {
        size_t len = strlen(rest);
        if (one_segment(rest, len)) return "/models/{id}";
        const char *slash = strchr(rest, '/');
        if (slash && slash > rest && !strcmp(slash, "/predict")) return "/models/{id}/predict";
    }
    return "other";
}

/* ---- process ---- */

typedef struct proc_info {
    double rss_bytes, vm_bytes, cpu_s, start_time_s;
} proc_info;

static void read_proc(proc_info *pi, double fallback_start) {
    memset(pi, 0, sizeof *pi);
    pi->start_time_s = fallback_start;
    long page = sysconf(_SC_PAGESIZE), tck = sysconf(_SC_CLK_TCK);
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        unsigned long long size = 0, resident = 0;
        if (fscanf(f, "%llu %llu", &size, &resident) == 2) {
            pi->vm_bytes = (double)size * (double)page;
            pi->rss_bytes = (double)resident * (double)page;
        }
        fclose(f);
    }
    char buf[4096];
    f = fopen("/proc/self/stat", "r");
    size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[len] = 0;
    const char *p = strrchr(buf, ')');   /* the command name may hold spaces and parentheses */
    double btime = 0;
    FILE *st = fopen("/proc/stat", "r");
    if (st) {
        char line[256];
        while (fgets(line, sizeof line, st))
            if (!strncmp(line, "btime ", 6)) btime = strtod(line + 6, NULL);
        fclose(st);
    }
    if (p && tck > 0) {
        /* fields after ")": 3 state ... 14 utime, 15 stime ... 22 starttime (man 5 proc) */
        double field[23] = {0};
        int k = 3;
        char *save = NULL;
        for (char *t = strtok_r((char *)p + 1, " ", &save); t && k <= 22; t = strtok_r(NULL, " ", &save), k++)
            field[k] = strtod(t, NULL);
        if (k > 22) {
            pi->cpu_s = (field[14] + field[15]) / (double)tck;
            if (btime > 0) pi->start_time_s = btime + field[22] / (double)tck;
        }
    }
}

int ft__metrics_render(ft__metrics *m, const ft_engine_stats *st, ft__drift *drift, ft__sb *out) {
    ft__prom_render(m->requests, out);
    ft__prom_render(m->duration, out);
    ft__prom_render(m->ttft, out);
    ft__prom_render(m->prompt_tokens, out);
    ft__prom_render(m->generated_tokens, out);
    ft__prom_render(m->model_requests, out);
    ft__prom_put_header(out, "finetune_generated_tokens_per_second", "Tokens generated per second over the last 10 seconds.",
                        FT__PROM_GAUGE);
    ft__prom_put_sample(out, "finetune_generated_tokens_per_second", 0, NULL, NULL, ft__metrics_tokens_per_second(m, 10));
    if (st) {
        static const struct { const char *name, *help; ft__prom_kind kind; } k[] = {
            {"finetune_queue_depth", "Generation requests waiting for a slot (all models).", FT__PROM_GAUGE},
            {"finetune_active_slots", "Sequences holding a KV-cache slot now.", FT__PROM_GAUGE},
            {"finetune_slots", "KV-cache slots in all (all generator models).", FT__PROM_GAUGE},
            {"finetune_batch_rows_mean", "Mean sequences advanced per batched decode step since start.", FT__PROM_GAUGE},
            {"finetune_decode_steps_total", "Batched decode steps run.", FT__PROM_COUNTER},
            {"finetune_encoder_batches_total", "Batched encoder forwards run.", FT__PROM_COUNTER},
            {"finetune_encoder_texts_total", "Texts through the encoders.", FT__PROM_COUNTER},
        };
        double v[] = {st->queued, st->active, st->slots, st->steps ? (double)st->batched_rows / (double)st->steps : 0,
                      (double)st->steps, (double)st->encoder_batches, (double)st->encoder_texts};
        for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
            ft__prom_put_header(out, k[i].name, k[i].help, k[i].kind);
            ft__prom_put_sample(out, k[i].name, 0, NULL, NULL, v[i]);
        }
    }
    proc_info pi;
    read_proc(&pi, m->start_wall);
    ft__prom_put_header(out, "process_resident_memory_bytes", "Resident memory size in bytes.", FT__PROM_GAUGE);
    ft__prom_put_sample(out, "process_resident_memory_bytes", 0, NULL, NULL, pi.rss_bytes);
    ft__prom_put_header(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.", FT__PROM_GAUGE);
    ft__prom_put_sample(out, "process_virtual_memory_bytes", 0, NULL, NULL, pi.vm_bytes);
    ft__prom_put_header(out, "process_cpu_seconds_total", "User and system CPU time spent in seconds.", FT__PROM_COUNTER);
    ft__prom_put_sample(out, "process_cpu_seconds_total", 0, NULL, NULL, pi.cpu_s);
    ft__prom_put_header(out, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.", FT__PROM_GAUGE);
    ft__prom_put_sample(out, "process_start_time_seconds", 0, NULL, NULL, pi.start_time_s);
    if (drift) ft__drift_render(drift, out);
    return out->err;
}
