/* train_util.c — what the trainer and its tasks share: clocks, seeds, memory readings, the global
 * gradient norm and clipping over a parameter array, the progress line, the optimizer from a config. */
#include "trainer_internal.h"
#include "finetune/backend.h"
#include "finetune/fileio.h"
#include "finetune/gemm_bf16.h"
#include "finetune/lora.h"
#include "finetune/status.h"

#include <stdlib.h>

#include <math.h>
#include <stdio.h>
#include <sys/resource.h>
#include <string.h>
#include <time.h>

size_t ft__rss_now(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %zu kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

double ft__peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}


/* global L2 norm of the gradients, deterministic (fixed chunking, ordered sum) */
double ft__params_grad_norm(const ft_param *params, int n_params) {
    const ft_backend *be = ft_backend_cpu();   /* gradients live in host memory today */
    double total = 0;
    for (int i = 0; i < n_params; i++)
        if (params[i].grad) total += be->sumsq(be->ctx, params[i].grad, (size_t)ft_tensor_numel(&params[i].t));
    return sqrt(total);
}

void ft__params_scale_grads(ft_param *params, int n_params, float s) {
    for (int i = 0; i < n_params; i++) {
        ft_param *p = &params[i];
        if (!p->grad) continue;
        int64_t n = ft_tensor_numel(&p->t);
        #pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t k = 0; k < n; k++) p->grad[k] *= s;
    }
}

void ft__fmt_duration(char *buf, size_t cap, double s) {
    if (!isfinite(s) || s < 0) { snprintf(buf, cap, "?"); return; }
    long v = (long)(s + 0.5);
    if (v >= 3600) snprintf(buf, cap, "%ldh%02ldm", v / 3600, (v / 60) % 60);
    else if (v >= 60) snprintf(buf, cap, "%ldm%02lds", v / 60, v % 60);
    else snprintf(buf, cap, "%lds", v);
}

void ft__train_progress(FILE *fp, const ft_progress *p, double loss, float lr, double rate, int force) {
    double eta = p->step > 0 ? p->train_time / (double)p->step * (double)(p->total_steps - p->step) : NAN;
    char e[32];
    ft__fmt_duration(e, sizeof e, eta);
    char unit[48];
    if (p->ranks > 1) snprintf(unit, sizeof unit, "%s (%d ranks)", p->unit, p->ranks);
    else snprintf(unit, sizeof unit, "%s", p->unit);
    int64_t spe = p->steps_per_epoch > 0 ? p->steps_per_epoch : 1;
    int64_t epoch = p->step == 0 ? 1 : (p->step - 1) / spe + 1;
    int64_t epochs = (p->total_steps + spe - 1) / spe;
    if (p->is_tty) {
        int width = 24, fill = (int)(width * (double)p->step / (double)(p->total_steps ? p->total_steps : 1));
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(fp, "\r[%s] step %lld/%lld  epoch %lld/%lld  loss %.4f  lr %.2e  %.0f %s  ETA %s   ", bar,
                (long long)p->step, (long long)p->total_steps, (long long)epoch, (long long)epochs, loss, lr, rate, unit, e);
        if (force) fputc('\n', fp);
    } else {
        int64_t every = p->total_steps / 20 > p->log_every ? p->total_steps / 20 : p->log_every;
        if (every < 1) every = 1;
        if (force || p->step % every == 0 || p->step == p->total_steps)
            fprintf(fp, "step %lld/%lld  epoch %lld/%lld  loss %.4f  lr %.2e  %.0f %s  ETA %s\n", (long long)p->step,
                    (long long)p->total_steps, (long long)epoch, (long long)epochs, loss, lr, rate, unit, e);
    }
}

int ft__train_check_trainable(const ft_sinks *out, int64_t tr, int64_t all, const char *note) {
    if (tr < all)
        ft__sinks_message(out, FT_LOG_INFO, "trainable parameters: %lld of %lld (%.2f%%)%s", (long long)tr, (long long)all,
                         100.0 * (double)tr / (double)all, note);
    if (tr == 0) return ft_error(FT_ERR_INVALID, "nothing to train: every parameter is frozen");
    return FT_OK;
}

int ft__train_make_optimizer(ft_optimizer **out, const ft_train_config *c, ft_param *params, int n_params) {
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
    /* on the run's backend (its update kernels are the CPU ones either way): with bf16, the one whose weight
     * packs the optimizer can keep (ft_optim_set_prepack) */
    const ft_backend *be = NULL;
    if (ft_backend_for_precision(c->precision, &be) < 0) be = NULL;
    return ft_optim_create_params_on(out, params, n_params, &p, be);
}

int ft__train_optimizer_moments(const ft_train_config *c) {
    return !strcmp(c->optimizer, "adamw") || !strcmp(c->optimizer, "adam") ? 2
         : !strcmp(c->optimizer, "sgd") ? (c->momentum > 0 ? 1 : 0)
         : !strcmp(c->optimizer, "rmsprop") ? (c->momentum > 0 ? 2 : 1) : 1;
}

int ft__train_backend(const ft_sinks *out, const ft_train_config *c, const ft_backend **be) {
    FT_TRY(ft_backend_for_precision(c->precision, be));
    if (!strcmp(ft_backend_precision(*be), "bf16"))
        ft__sinks_message(out, FT_LOG_INFO, "precision bf16 (use --precision f32 for full precision): bf16 matmul inputs (%s kernel), "
                          "f32 accumulation, master weights, gradients and optimizer state", ft_bf16_isa_name(ft_bf16_isa_get()));
    return FT_OK;
}

size_t ft__train_bf16_workspace_bytes(const ft_train_config *c, int64_t N, int64_t C, int64_t H, int64_t V) {
    if (strcmp(c->precision, "bf16")) return 0;
    /* forward (N, OC, C), input gradient (N, C, OC), weight gradient (OC, C, N) of W [OC, C] for OC = V and H */
    int64_t oc[2] = {V, H};
    size_t best = 0;
    for (int i = 0; i < 2; i++) {
        size_t s[3] = {ft_gemm_bf16_workspace_bytes((int)N, (int)oc[i], (int)C), ft_gemm_bf16_workspace_bytes((int)N, (int)C, (int)oc[i]),
                       ft_gemm_bf16_workspace_bytes((int)oc[i], (int)C, (int)N)};
        for (int j = 0; j < 3; j++) if (s[j] > best) best = s[j];
    }
    return best;
}

ft_lora_config ft__train_lora_config(const ft_train_config *c) {
    ft_lora_config lc = ft_lora_default_config();
    lc.r = c->lora_r;
    lc.alpha = c->lora_alpha;
    lc.dropout = c->lora_dropout;
    lc.rslora = c->rslora;
    snprintf(lc.targets, sizeof lc.targets, "%s", c->lora_targets);
    return lc;
}
