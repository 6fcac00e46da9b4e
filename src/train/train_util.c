/* train_util.c — what every training loop shares: clocks, seeds, memory readings, the global
 * gradient norm and clipping over a parameter array, the progress line and the stop request. */
#include "trainer_internal.h"
#include "finetune/fileio.h"
#include "finetune/lora.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <unistd.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t g_stop = 0;

void ft_train_request_stop(void) { g_stop = 1; }
int  ft_train_stop_requested(void) { return g_stop != 0; }
void ft_train_clear_stop(void) { g_stop = 0; }

static void on_sigint(int sig) { (void)sig; g_stop = 1; signal(SIGINT, SIG_DFL); }
ft_sighandler ft_train_catch_sigint(void) { g_stop = 0; return signal(SIGINT, on_sigint); }
void ft_train_restore_sigint(ft_sighandler old) { signal(SIGINT, old ? old : SIG_DFL); }

size_t ft_rss_now(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %zu kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

double ft_peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

double ft_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t ft_mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* global L2 norm of the gradients, deterministic (fixed chunking, ordered sum) */
double ft_params_grad_norm(const ft_param *params, int n_params) {
    double total = 0;
    for (int i = 0; i < n_params; i++) {
        const ft_param *p = &params[i];
        if (!p->grad) continue;
        int64_t n = ft_tensor_numel(&p->t);
        enum { CH = 64 };
        double part[CH] = {0};
        int64_t per = (n + CH - 1) / CH;
        #pragma omp parallel for schedule(static) if (n > 65536)
        for (int c = 0; c < CH; c++) {
            int64_t a = c * per, b = a + per < n ? a + per : n;
            double s = 0;
            for (int64_t k = a; k < b; k++) s += (double)p->grad[k] * p->grad[k];
            part[c] = s;
        }
        for (int c = 0; c < CH; c++) total += part[c];
    }
    return sqrt(total);
}

void ft_params_scale_grads(ft_param *params, int n_params, float s) {
    for (int i = 0; i < n_params; i++) {
        ft_param *p = &params[i];
        if (!p->grad) continue;
        int64_t n = ft_tensor_numel(&p->t);
        #pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t k = 0; k < n; k++) p->grad[k] *= s;
    }
}

void ft_fmt_duration(char *buf, size_t cap, double s) {
    if (!isfinite(s) || s < 0) { snprintf(buf, cap, "?"); return; }
    long v = (long)(s + 0.5);
    if (v >= 3600) snprintf(buf, cap, "%ldh%02ldm", v / 3600, (v / 60) % 60);
    else if (v >= 60) snprintf(buf, cap, "%ldm%02lds", v / 60, v % 60);
    else snprintf(buf, cap, "%lds", v);
}

void ft_train_progress(const ft_progress *p, double loss, float lr, double rate, int force) {
    double eta = p->step > 0 ? p->train_time / (double)p->step * (double)(p->total_steps - p->step) : NAN;
    char e[32];
    ft_fmt_duration(e, sizeof e, eta);
    int64_t spe = p->steps_per_epoch > 0 ? p->steps_per_epoch : 1;
    int64_t epoch = p->step == 0 ? 1 : (p->step - 1) / spe + 1;
    int64_t epochs = (p->total_steps + spe - 1) / spe;
    if (p->is_tty) {
        int width = 24, fill = (int)(width * (double)p->step / (double)(p->total_steps ? p->total_steps : 1));
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r[%s] step %lld/%lld  epoch %lld/%lld  loss %.4f  lr %.2e  %.0f %s  ETA %s   ", bar,
                (long long)p->step, (long long)p->total_steps, (long long)epoch, (long long)epochs, loss, lr, rate, p->unit, e);
        if (force) fputc('\n', stderr);
    } else {
        int64_t every = p->total_steps / 20 > p->log_every ? p->total_steps / 20 : p->log_every;
        if (every < 1) every = 1;
        if (force || p->step % every == 0 || p->step == p->total_steps)
            fprintf(stderr, "step %lld/%lld  epoch %lld/%lld  loss %.4f  lr %.2e  %.0f %s  ETA %s\n", (long long)p->step,
                    (long long)p->total_steps, (long long)epoch, (long long)epochs, loss, lr, rate, p->unit, e);
    }
}

int ft_train_make_optimizer(ft_optimizer **out, const ft_train_config *c, ft_param *params, int n_params) {
    ft_optim_params p = ft_optim_default_params();
    p.kind = !strcmp(c->optimizer, "adam") ? FT_OPT_ADAM : !strcmp(c->optimizer, "sgd") ? FT_OPT_SGD
           : !strcmp(c->optimizer, "adagrad") ? FT_OPT_ADAGRAD : !strcmp(c->optimizer, "rmsprop") ? FT_OPT_RMSPROP : FT_OPT_ADAMW;
    p.lr = c->lr;
    p.beta1 = c->beta1;
    p.beta2 = c->beta2;
    p.eps = c->eps;
    p.weight_decay = c->weight_decay;
    p.momentum = c->momentum;
    p.nesterov = c->nesterov;
    return ft_optim_create_params(out, params, n_params, &p);
}

int ft_train_optimizer_moments(const ft_train_config *c) {
    return !strcmp(c->optimizer, "adamw") || !strcmp(c->optimizer, "adam") ? 2
         : !strcmp(c->optimizer, "sgd") ? (c->momentum > 0 ? 1 : 0)
         : !strcmp(c->optimizer, "rmsprop") ? (c->momentum > 0 ? 2 : 1) : 1;
}

int ft_train_loop_run(const ft_loop *L, int resumed, int *stop, int *interrupted, double *rate) {
    const ft_train_config *c = L->cfg;
    *stop = 0;
    *interrupted = 0;
    *rate = 0;
    ft_sighandler old = ft_train_catch_sigint();
    int rc = FT_OK;
    if (!resumed) {
        rc = L->eval(L->ctx, stop);
        if (rc == FT_OK) rc = L->save(L->ctx); /* step 0: resume works from the very start */
    }
    while (rc == FT_OK && *L->step < L->total_steps && !*stop) {
        if (ft_train_stop_requested()) break;
        double t0 = ft_now_s(), loss = 0, gn = 0;
        float lr = 0;
        int64_t count = 0;
        if ((rc = L->step_fn(L->ctx, &loss, &gn, &lr, &count)) != FT_OK) break;
        double dt = ft_now_s() - t0;
        *L->train_time += dt;
        *rate = (double)count / dt;
        *L->last_train = (float)loss;
        int64_t step = *L->step;
        double epoch = (double)step / (double)L->steps_per_epoch;
        if (step % (c->log_every > 0 ? c->log_every : 1) == 0 || step == L->total_steps) {
            char line[512];
            snprintf(line, sizeof line, "{\"type\": \"train\", \"step\": %lld, \"epoch\": %.4f, \"loss\": %.6f, \"lr\": %.6g, \"grad_norm\": %.6g, \"%s\": %.1f}",
                     (long long)step, epoch, loss, lr, gn, L->rate_key, *rate);
            if ((rc = L->metric(L->ctx, line)) != FT_OK) break;
        }
        ft_progress p = {step, L->total_steps, L->steps_per_epoch, *L->train_time, L->is_tty, c->log_every, L->rate_unit};
        ft_train_progress(&p, loss, lr, *rate, 0);
        int epoch_end = L->epoch_ended(L->ctx);
        if ((c->eval_every > 0 && step % c->eval_every == 0) || epoch_end || step == L->total_steps)
            if ((rc = L->eval(L->ctx, stop)) != FT_OK) break;
        if (epoch_end && L->after_epoch) L->after_epoch(L->ctx);
        if ((c->save_every > 0 && step % c->save_every == 0) || epoch_end || step == L->total_steps || *stop)
            if ((rc = L->save(L->ctx)) != FT_OK) break;
    }
    *interrupted = rc == FT_OK && ft_train_stop_requested() && *L->step < L->total_steps;
    if (*interrupted) {
        if (L->is_tty) fputc('\n', stderr);
        fprintf(stderr, "interrupted: saving a checkpoint at step %lld (resume with: finetune train --resume %s)\n", (long long)*L->step, c->out);
        rc = L->save(L->ctx);
    }
    ft_train_restore_sigint(old);
    if (L->is_tty) fputc('\n', stderr);
    return rc;
}

ft_lora_config ft_train_lora_config(const ft_train_config *c) {
    ft_lora_config lc = ft_lora_default_config();
    lc.r = c->lora_r;
    lc.alpha = c->lora_alpha;
    lc.dropout = c->lora_dropout;
    lc.rslora = c->rslora;
    snprintf(lc.targets, sizeof lc.targets, "%s", c->lora_targets);
    return lc;
}

double ft_train_state_num(const cJSON *state, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(state, key);
    return cJSON_IsString(v) ? strtod(v->valuestring, NULL) : cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

int ft_train_truncate_metrics(const char *run_dir, long bytes) {
    char path[4096];
    FT_TRY(ft_path_join(path, sizeof path, run_dir, "metrics.jsonl"));
    if (truncate(path, bytes) != 0) return ft_error(FT_ERR_IO, "%s: cannot truncate to %ld bytes", path, bytes);
    return FT_OK;
}
