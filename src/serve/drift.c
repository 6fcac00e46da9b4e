/* drift.c — Page-Hinkley drift detection per model and signal (see drift.h for the method). */
#include "serve/drift.h"
#include "serve/prom.h"
#include "finetune/status.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NAME_MAX_ = 128 };

typedef struct drift_signal {
    char name[NAME_MAX_];
    /* reference (Welford over the first W observations) */
    int    n_ref;
    double ref_mean, ref_m2, ref_sd;     /* ref_sd set (floored) when n_ref reaches W */
    /* Page-Hinkley, after the reference is complete */
    double up_sum, up_min;               /* m+ and M+ */
    double dn_sum, dn_max;               /* m- and M- */
    double stat;                         /* max(PH+, PH-) */
    int    alarm;                        /* 1 from an alarm until the next reference is complete */
    double ewma;                         /* recent mean (alpha 0.05) */
    int    have_ewma;
    uint64_t n;                          /* observations since the reference started */
} drift_signal;

typedef struct drift_model {
    char name[NAME_MAX_];
    drift_signal sig[FT__DRIFT_MAX_SIGNALS];
    int n_sig;
} drift_model;

struct ft__drift {
    ft__drift_params p;
    ft__drift_alarm_fn on_alarm;
    void *user;
    drift_model *models;                 /* [FT__DRIFT_MAX_MODELS] */
    int n_models;
    uint64_t alarms_total;
    pthread_mutex_t mu;
};

ft__drift_params ft__drift_default_params(void) {
    ft__drift_params p = {.ref_window = 200, .delta = 0.5, .lambda = 30, .z_clip = 5,
                          .rel_sd_floor = 0.05, .abs_sd_floor = 0.01};
    return p;
}

int ft__drift_create(ft__drift **out, const ft__drift_params *p, ft__drift_alarm_fn on_alarm, void *user) {
    *out = NULL;
    ft__drift_params q = p ? *p : ft__drift_default_params();
    if (q.ref_window < 2 || !(q.delta >= 0) || !(q.lambda > 0) || !(q.z_clip > 0) || !(q.rel_sd_floor >= 0)
        || !(q.abs_sd_floor > 0))
        return ft_error(FT_ERR_INVALID, "drift detection: invalid parameters (ref_window >= 2, delta >= 0, "
                        "lambda > 0, z_clip > 0, abs_sd_floor > 0)");
    ft__drift *d = calloc(1, sizeof *d);
    if (d) d->models = calloc(FT__DRIFT_MAX_MODELS, sizeof *d->models);
    if (!d || !d->models) {
        free(d);
        return ft_error(FT_ERR_NOMEM, "drift detection: out of memory");
    }
    d->p = q;
    d->on_alarm = on_alarm;
    d->user = user;
    pthread_mutex_init(&d->mu, NULL);
    *out = d;
    return FT_OK;
}

void ft__drift_free(ft__drift *d) {
    if (!d) return;
    pthread_mutex_destroy(&d->mu);
    free(d->models);
    free(d);
}

/* The signal's state, created when new; NULL when a limit is reached. Called with d->mu held. */
static drift_signal *signal_get(ft__drift *d, const char *model, const char *signal, int create) {
    drift_model *m = NULL;
    for (int i = 0; i < d->n_models && !m; i++)
        if (!strncmp(d->models[i].name, model, NAME_MAX_ - 1)) m = &d->models[i];
    if (!m) {
        if (!create || d->n_models == FT__DRIFT_MAX_MODELS) return NULL;
        m = &d->models[d->n_models++];
        snprintf(m->name, sizeof m->name, "%s", model);
    }
    for (int i = 0; i < m->n_sig; i++)
        if (!strncmp(m->sig[i].name, signal, NAME_MAX_ - 1)) return &m->sig[i];
    if (!create || m->n_sig == FT__DRIFT_MAX_SIGNALS) return NULL;
    drift_signal *s = &m->sig[m->n_sig++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", signal);
    return s;
}

static void reference_restart(drift_signal *s) {
    s->n_ref = 0;
    s->ref_mean = s->ref_m2 = s->ref_sd = 0;
    s->up_sum = s->up_min = s->dn_sum = s->dn_max = s->stat = 0;
    s->n = 0;
}

/* Feeds x; fills *ev and returns 1 when an alarm fires. Called with d->mu held. */
static int signal_update(const ft__drift_params *p, drift_signal *s, double x, ft__drift_event *ev) {
    s->ewma = s->have_ewma ? s->ewma + 0.05 * (x - s->ewma) : x;
    s->have_ewma = 1;
    s->n++;
    if (s->n_ref < p->ref_window) {   /* still learning the reference (Welford) */
        s->n_ref++;
        double dx = x - s->ref_mean;
        s->ref_mean += dx / s->n_ref;
        s->ref_m2 += dx * (x - s->ref_mean);
        if (s->n_ref == p->ref_window) {
            double sd = sqrt(s->ref_m2 / (s->n_ref - 1));
            double floor_sd = fmax(p->rel_sd_floor * fabs(s->ref_mean), p->abs_sd_floor);
            s->ref_sd = fmax(sd, floor_sd);
            s->alarm = 0;
        }
        return 0;
    }
    double z = (x - s->ref_mean) / s->ref_sd;
    z = fmax(-p->z_clip, fmin(p->z_clip, z));
    s->up_sum += z - p->delta;
    s->up_min = fmin(s->up_min, s->up_sum);
    s->dn_sum += z + p->delta;
    s->dn_max = fmax(s->dn_max, s->dn_sum);
    double up = s->up_sum - s->up_min, dn = s->dn_max - s->dn_sum;
    s->stat = fmax(up, dn);
    if (s->stat <= p->lambda) return 0;
    ev->signal = s->name;
    ev->direction = up >= dn ? "increase" : "decrease";
    ev->statistic = s->stat;
    ev->lambda = p->lambda;
    ev->delta = p->delta;
    ev->ref_mean = s->ref_mean;
    ev->ref_sd = s->ref_sd;
    ev->recent_mean = s->ewma;
    ev->n = s->n;
    s->alarm = 1;
    reference_restart(s);   /* learn the new normal; the alarm shows until it is learnt */
    return 1;
}

int ft__drift_observe(ft__drift *d, const char *model, const char *signal, double x) {
    if (!d || !model || !signal || !isfinite(x)) return 0;
    ft__drift_event ev = {0};
    char model_copy[NAME_MAX_], signal_copy[NAME_MAX_];
    pthread_mutex_lock(&d->mu);
    drift_signal *s = signal_get(d, model, signal, 1);
    int fired = s ? signal_update(&d->p, s, x, &ev) : 0;
    if (fired) {
        d->alarms_total++;
        snprintf(model_copy, sizeof model_copy, "%s", model);
        snprintf(signal_copy, sizeof signal_copy, "%s", s->name);
        ev.model = model_copy;
        ev.signal = signal_copy;
    }
    pthread_mutex_unlock(&d->mu);
    if (fired && d->on_alarm) d->on_alarm(d->user, &ev);
    return fired;
}

void ft__drift_observe_prompt(ft__drift *d, const char *model, int n_tokens, int n_unknown) {
    if (n_tokens <= 0) return;
    ft__drift_observe(d, model, "prompt_tokens", n_tokens);
    ft__drift_observe(d, model, "unknown_token_rate", (double)(n_unknown > 0 ? n_unknown : 0) / n_tokens);
}

void ft__drift_observe_generation(ft__drift *d, const char *model, int n_generated) {
    if (n_generated >= 0) ft__drift_observe(d, model, "generated_tokens", n_generated);
}

void ft__drift_observe_prediction(ft__drift *d, const char *model, double confidence, const char *const *labels,
                                  int n_labels, int predicted) {
    if (isfinite(confidence)) ft__drift_observe(d, model, "confidence", confidence);
    if (!labels || predicted < 0 || predicted >= n_labels) return;
    for (int i = 0; i < n_labels && i < FT__DRIFT_MAX_LABELS; i++) {
        char name[NAME_MAX_];
        snprintf(name, sizeof name, "label:%s", labels[i] ? labels[i] : "");
        ft__drift_observe(d, model, name, i == predicted ? 1.0 : 0.0);
    }
}

int ft__drift_state(ft__drift *d, const char *model, const char *signal, double *statistic, int *alarm) {
    pthread_mutex_lock(&d->mu);
    drift_signal *s = signal_get(d, model, signal, 0);
    if (s) {
        if (statistic) *statistic = s->stat;
        if (alarm) *alarm = s->alarm;
    }
    pthread_mutex_unlock(&d->mu);
    return s ? FT_OK : ft_error(FT_ERR_NOT_FOUND, "drift: no signal %s for model %s", signal, model);
}

uint64_t ft__drift_alarms_total(ft__drift *d) {
    pthread_mutex_lock(&d->mu);
    uint64_t n = d->alarms_total;
    pthread_mutex_unlock(&d->mu);
    return n;
}

int ft__drift_render(ft__drift *d, ft__sb *out) {
    static const char *const lbl[] = {"model", "signal"};
    pthread_mutex_lock(&d->mu);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0)
            ft__prom_put_header(out, "finetune_drift_statistic",
                                "Page-Hinkley statistic of the signal (max of increase and decrease tests); an alarm fires above lambda.",
                                FT__PROM_GAUGE);
        else
            ft__prom_put_header(out, "finetune_drift_alarm",
                                "1 from a drift alarm until the signal has learnt its new reference, else 0.",
                                FT__PROM_GAUGE);
        for (int i = 0; i < d->n_models; i++)
            for (int j = 0; j < d->models[i].n_sig; j++) {
                const drift_signal *s = &d->models[i].sig[j];
                const char *v[] = {d->models[i].name, s->name};
                ft__prom_put_sample(out, pass == 0 ? "finetune_drift_statistic" : "finetune_drift_alarm", 2, lbl, v,
                                    pass == 0 ? s->stat : (double)s->alarm);
            }
    }
    ft__prom_put_header(out, "finetune_drift_alarms_total", "Drift alarms fired since the server started.",
                        FT__PROM_COUNTER);
    ft__prom_put_sample(out, "finetune_drift_alarms_total", 0, NULL, NULL, (double)d->alarms_total);
    pthread_mutex_unlock(&d->mu);
    return out->err;
}

static void put_num(ft__sb *out, const char *key, double v) {
    ft__sb_printf(out, ",\"%s\":", key);
    if (isfinite(v)) ft__sb_printf(out, "%.6g", v);
    else ft__sb_puts(out, "null");
}

int ft__drift_event_json(const ft__drift_event *ev, ft__sb *out) {
    ft__sb_puts(out, "{\"event\":\"drift\",\"model\":");
    ft__sb_put_json(out, ev->model ? ev->model : "", strlen(ev->model ? ev->model : ""), 0);
    ft__sb_puts(out, ",\"signal\":");
    ft__sb_put_json(out, ev->signal ? ev->signal : "", strlen(ev->signal ? ev->signal : ""), 0);
    ft__sb_printf(out, ",\"direction\":\"%s\"", ev->direction ? ev->direction : "");
    put_num(out, "statistic", ev->statistic);
    put_num(out, "lambda", ev->lambda);
    put_num(out, "delta", ev->delta);
    put_num(out, "reference_mean", ev->ref_mean);
    put_num(out, "reference_sd", ev->ref_sd);
    put_num(out, "recent_mean", ev->recent_mean);
    ft__sb_printf(out, ",\"observations\":%llu}", (unsigned long long)ev->n);
    return out->err;
}
