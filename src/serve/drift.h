/* drift.h — drift detection per served model (internal: not installed).
 *
 * What is watched. For each model (or adapter: it is served under its own name) a few signals, one number per
 * request or per text:
 *   inputs   "prompt_tokens"       prompt / text length in tokens
 *            "unknown_token_rate"  share of the tokens that are the tokenizer's unknown token
 *   outputs  "generated_tokens"    tokens generated (generators)
 *            "confidence"          the top class probability (classifiers)
 *            "label:<name>"        1 when the prediction is <name>, else 0: its mean is the label's share of
 *                                  the predictions, so a change of the label mix moves one of these
 *
 * How. Each signal learns a reference from its first `ref_window` observations (W, default 200): the mean
 * mu0 and the standard deviation sd0 (floored at max(rel_sd_floor * |mu0|, abs_sd_floor), so a constant
 * reference still has a scale). Every later observation x becomes z = clip((x - mu0) / sd0, +-z_clip) and
 * feeds a two-sided Page-Hinkley test:
 *     up:    m+ = sum (z - delta),  M+ = min m+ so far,  PH+ = m+ - M+    (mean went up)
 *     down:  m- = sum (z + delta),  M- = max m- so far,  PH- = M- - m-    (mean went down)
 * An alarm fires when PH+ or PH- exceeds lambda. delta is the shift (in reference standard deviations)
 * tolerated without alarm, lambda trades detection delay against false alarms: a sustained shift of s
 * reference deviations alarms after about lambda / (s - delta) observations. The defaults, delta 0.5 and
 * lambda 30, alarm after ~60 observations for a 1-sd shift and ~20 for a 2-sd shift, and a stationary
 * stream (Gaussian, exponential or 0/1, W = 200) runs 100,000 observations without a false alarm in the
 * tests; clipping at 5 deviations keeps a single outlier from firing (it takes ~7 in a row).
 * After an alarm the signal re-learns its reference from the next W observations (the new normal) and
 * its alarm gauge stays 1 until that reference is complete; finetune_drift_alarms_total counts alarms.
 *
 * Exposed in /metrics (ft__drift_render):
 *     finetune_drift_statistic{model,signal}   max(PH+, PH-) now (compare with lambda)
 *     finetune_drift_alarm{model,signal}       1 while alarmed, else 0
 *     finetune_drift_alarms_total              alarms fired since start
 * and, when an alarm fires, on_alarm(user, event) is called (after the lock is released, on the observing
 * thread) so the server can log `{"event":"drift",...}` (ft__drift_event_json).
 *
 * Bounded: at most FT__DRIFT_MAX_MODELS models and FT__DRIFT_MAX_SIGNALS signals per model (label signals
 * for at most 16 labels); observations beyond are ignored. Callers pass only loaded model names.
 * Thread safety: one mutex; every function may be called from any thread. */
#ifndef FT_SERVE_DRIFT_H
#define FT_SERVE_DRIFT_H
#include <stdint.h>
#include "core/strbuf.h"

enum { FT__DRIFT_MAX_MODELS = 64, FT__DRIFT_MAX_SIGNALS = 24, FT__DRIFT_MAX_LABELS = 16 };

typedef struct ft__drift_params {
    int    ref_window;     /* W: observations in the reference (default 200) */
    double delta;          /* tolerated shift in reference deviations (default 0.5) */
    double lambda;         /* alarm threshold of the Page-Hinkley statistic (default 30) */
    double z_clip;         /* standardised observations clipped to +-z_clip (default 5) */
    double rel_sd_floor;   /* sd0 >= rel_sd_floor * |mu0| (default 0.05) */
    double abs_sd_floor;   /* sd0 >= abs_sd_floor (default 0.01) */
} ft__drift_params;
ft__drift_params ft__drift_default_params(void);

typedef struct ft__drift_event {
    const char *model, *signal;
    const char *direction;  /* "increase" or "decrease" */
    double statistic;       /* the PH value that crossed lambda */
    double lambda, delta;
    double ref_mean, ref_sd;
    double recent_mean;     /* exponentially weighted mean of the signal (last ~20 observations) */
    uint64_t n;             /* observations of this signal since its reference started */
} ft__drift_event;

typedef void (*ft__drift_alarm_fn)(void *user, const ft__drift_event *ev);

typedef struct ft__drift ft__drift;

/* p NULL: defaults. on_alarm may be NULL. */
int  ft__drift_create(ft__drift **out, const ft__drift_params *p, ft__drift_alarm_fn on_alarm, void *user);
void ft__drift_free(ft__drift *d);

/* One observation x of `signal` for `model`. Returns 1 when it fired an alarm, else 0. */
int  ft__drift_observe(ft__drift *d, const char *model, const char *signal, double x);
/* Conveniences: a prompt (length and unknown-token rate; n_tokens <= 0 is ignored), a generation, a
 * classification (confidence and the label mix: predicted is an index into labels[n_labels], < 0 none). */
void ft__drift_observe_prompt(ft__drift *d, const char *model, int n_tokens, int n_unknown);
void ft__drift_observe_generation(ft__drift *d, const char *model, int n_generated);
void ft__drift_observe_prediction(ft__drift *d, const char *model, double confidence, const char *const *labels,
                                  int n_labels, int predicted);

/* Current state of one signal: statistic (max of PH+ and PH-), alarm 0/1; FT_ERR_NOT_FOUND if unseen. */
int  ft__drift_state(ft__drift *d, const char *model, const char *signal, double *statistic, int *alarm);
uint64_t ft__drift_alarms_total(ft__drift *d);

/* Appends the three families above in the exposition format. */
int  ft__drift_render(ft__drift *d, ft__sb *out);
/* {"event":"drift","model":...,"signal":...,"direction":...,"statistic":...,"lambda":...,"delta":...,
 *  "reference_mean":...,"reference_sd":...,"recent_mean":...,"observations":...} (no newline). */
int  ft__drift_event_json(const ft__drift_event *ev, ft__sb *out);
#endif
