/* test_optim.c — our optimizers and LR schedules vs torch.optim and transformers' schedules.
 * Fixture: tests/fixtures/optim/optim_ref.safetensors (tests/parity/make_optim_fixtures.py).
 *
 * Optimizers: for every run listed in the fixture (AdamW, Adam with L2 decay, SGD plain / momentum /
 * Nesterov, Adagrad, RMSprop plain / momentum) a tiny GPT-2 model is made, every parameter but two is
 * frozen (h.0.attn_w [8,8], decay=1, and h.0.ln1_b [8], decay=0 — torch's two param groups with
 * weight_decay wd / 0), the fixture's initial values are copied in, and for 20 steps the fixture's
 * gradients are fed and ft_optim_step is called with ft_schedule_lr's value for that step. After every
 * step both parameters are compared with torch's float32 trajectory: max_rel = max|d| / max|ref| over the
 * tensor must stay <= 1e-6; the lr used must equal the one torch used within 1e-6 relative.
 *
 * Schedules: ft_schedule_lr(kind, 1, step, total, warmup, min_lr_ratio) for step = 0..total against
 * transformers' get_{constant,linear,cosine}_schedule_with_warmup (and the cosine with min_lr_rate)
 * multipliers, within 1e-6 absolute. */
#include "testutil.h"
#include "finetune/backend.h"
#include "finetune/model.h"
#include "finetune/optim.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"
#include "finetune/train.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE "optim/optim_ref.safetensors"
#define TOL_PARAM 1e-6   /* max|d| / max|ref| per tensor per step (torch float32 reference) */
#define TOL_LR    1e-6   /* relative, lr used at each step */
#define TOL_SCHED 1e-6   /* absolute, schedule multipliers in [0, 1] */

static const char *k_cfg = "{\"model_type\":\"gpt2\",\"vocab_size\":16,\"n_positions\":8,\"n_embd\":8,\"n_layer\":1,"
                           "\"n_head\":2,\"resid_pdrop\":0,\"embd_pdrop\":0,\"attn_pdrop\":0}";

/* Reads F32 tensor `name` whole (shape checked against expect/ndim); caller frees. */
static float *read_f32(const ft_safetensors *st, const char *name, const int64_t *expect, int ndim) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)expect[i];
    float *buf = malloc(n * sizeof(float));
    assert_non_null(buf);
    int rc = ft_st_read_f32(st, name, expect, ndim, buf);
    if (rc < 0) printf("%s\n", ft_last_error());
    assert_int_equal(rc, 0);
    return buf;
}

static double jnum(const cJSON *o, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static cJSON *meta_json(const ft_safetensors *st, const char *key) {
    const char *text = ft_st_metadata(st, key);
    assert_non_null(text);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    return j;
}

static ft_schedule sched_kind(const char *name) {
    ft_schedule s;
    assert_int_equal(ft_schedule_from_name(name, &s), 0);
    return s;
}

static ft_optim_params run_params(const cJSON *run) {
    ft_optim_params p = ft_optim_default_params();
    const char *kind = jstr(run, "kind");
    if (!strcmp(kind, "adamw")) p.kind = FT_OPT_ADAMW;
    else if (!strcmp(kind, "adam")) p.kind = FT_OPT_ADAM;
    else if (!strcmp(kind, "sgd")) p.kind = FT_OPT_SGD;
    else if (!strcmp(kind, "adagrad")) p.kind = FT_OPT_ADAGRAD;
    else if (!strcmp(kind, "rmsprop")) p.kind = FT_OPT_RMSPROP;
    else fail_msg("unknown optimizer kind %s", kind);
    p.lr = (float)jnum(run, "lr", p.lr);
    p.weight_decay = (float)jnum(run, "weight_decay", 0.0);
    p.beta1 = (float)jnum(run, "beta1", p.beta1);
    p.beta2 = (float)jnum(run, "beta2", p.beta2);
    if (p.kind == FT_OPT_RMSPROP) p.beta2 = (float)jnum(run, "alpha", 0.99); /* our alpha is beta2 */
    p.eps = (float)jnum(run, "eps", p.eps);
    p.momentum = (float)jnum(run, "momentum", 0.0);
    p.nesterov = (int)jnum(run, "nesterov", 0);
    p.decay_all = 0;
    return p;
}

/* Moment buffers per trainable parameter, as torch keeps them. */
static int moments_of(const ft_optim_params *p) {
    switch (p->kind) {
    case FT_OPT_SGD: return p->momentum > 0 ? 1 : 0;
    case FT_OPT_ADAGRAD: return 1;
    case FT_OPT_RMSPROP: return p->momentum > 0 ? 2 : 1;
    default: return 2;
    }
}

/* One fixture run; returns the number of failed checks. */
static int check_run(const ft_safetensors *st, const cJSON *run, int steps, const float *init_w, const float *init_b,
                     const float *grad_w, const float *grad_b) {
    const char *name = jstr(run, "name");
    ft_optim_params op = run_params(run);
    ft_schedule sk = sched_kind(jstr(run, "schedule"));
    int64_t warmup = (int64_t)jnum(run, "warmup", 0), total = (int64_t)jnum(run, "total", steps);

    ft_model_config cfg;
    assert_int_equal(ft_model_config_from_json(&cfg, k_cfg, "test_optim"), 0);
    ft_model *m;
    assert_int_equal(ft_model_create_random(&m, &cfg, 7, ft_backend_cpu()), 0);
    ft_param *w = NULL, *b = NULL;
    int np = ft_model_num_params(m);
    for (int i = 0; i < np; i++) {
        ft_param *p = ft_model_param(m, i);
        if (!strcmp(p->name, "h.0.attn_w")) w = p;
        else if (!strcmp(p->name, "h.0.ln1_b")) b = p;
        else p->trainable = 0;
    }
    assert_non_null(w);
    assert_non_null(b);
    assert_true(w->t.ndim == 2 && w->t.shape[0] == 8 && w->t.shape[1] == 8 && w->decay == 1);
    assert_true(b->t.ndim == 1 && b->t.shape[0] == 8 && b->decay == 0);
    assert_int_equal(ft_model_zero_grad(m), 0);
    for (int i = 0; i < np; i++) {
        ft_param *p = ft_model_param(m, i);
        if (p == w || p == b) assert_non_null(p->grad);
        else assert_null(p->grad);
    }
    /* a frozen parameter, to check that it is left alone */
    ft_param *frozen = ft_model_param(m, 0);
    size_t frozen_n = (size_t)ft_tensor_numel(&frozen->t);
    float *frozen0 = malloc(frozen_n * sizeof(float));
    assert_non_null(frozen0);
    memcpy(frozen0, frozen->t.data, frozen_n * sizeof(float));

    memcpy(w->t.data, init_w, 64 * sizeof(float));
    memcpy(b->t.data, init_b, 8 * sizeof(float));
    ft_optimizer *o;
    int rc = ft_optim_create(&o, m, &op);
    if (rc < 0) printf("%s\n", ft_last_error());
    assert_int_equal(rc, 0);
    size_t state_bytes;
    ft_optim_state(o, &state_bytes);
    /* only the two trainable tensors have state: 256 B + 32 B (rounded up to 64) per moment */
    size_t want_state = (size_t)moments_of(&op) * (256 + 64);

    char key[128];
    int64_t sh_w3[3] = {steps, 8, 8}, sh_b[2] = {steps, 8}, sh_lr[1] = {steps};
    snprintf(key, sizeof key, "%s.w", name);
    float *ref_w = read_f32(st, key, sh_w3, 3);
    snprintf(key, sizeof key, "%s.b", name);
    float *ref_b = read_f32(st, key, sh_b, 2);
    snprintf(key, sizeof key, "%s.lr", name);
    float *ref_lr = read_f32(st, key, sh_lr, 1);

    double worst_w = 0, worst_b = 0, abs_w = 0, abs_b = 0, worst_lr = 0;
    int worst_step = 0, fails = 0;
    for (int s = 0; s < steps; s++) {
        float lr = ft_schedule_lr(sk, op.lr, s, total, warmup, 0.0f);
        double dlr = fabs((double)lr - ref_lr[s]) / (ref_lr[s] > 0 ? ref_lr[s] : 1.0);
        if (dlr > worst_lr) worst_lr = dlr;
        memcpy(w->grad, grad_w + (size_t)s * 64, 64 * sizeof(float));
        memcpy(b->grad, grad_b + (size_t)s * 8, 8 * sizeof(float));
        assert_int_equal(ft_optim_step(o, lr), 0);
        ft_cmp cw = ft_compare_f32(w->t.data, ref_w + (size_t)s * 64, 64);
        ft_cmp cb = ft_compare_f32(b->t.data, ref_b + (size_t)s * 8, 8);
        if (fmax(cw.max_rel, cb.max_rel) > fmax(worst_w, worst_b)) worst_step = s + 1;
        worst_w = fmax(worst_w, cw.max_rel);
        worst_b = fmax(worst_b, cb.max_rel);
        abs_w = fmax(abs_w, cw.max_abs);
        abs_b = fmax(abs_b, cb.max_abs);
    }
    assert_int_equal(ft_optim_steps(o), steps);
    int lr_ok = worst_lr <= TOL_LR, state_ok = state_bytes == want_state;
    int frozen_ok = memcmp(frozen0, frozen->t.data, frozen_n * sizeof(float)) == 0;
    int ok = worst_w <= TOL_PARAM && worst_b <= TOL_PARAM && lr_ok && state_ok && frozen_ok;
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(run, "f32_vs_f64");
    double dev_w = cJSON_GetArrayItem(dev, 0) ? cJSON_GetArrayItem(dev, 0)->valuedouble : NAN;
    printf("  %-17s %-8s w%-2lld lr %-6g wd %-5g | w[8,8] max_abs %.2e max_rel %.2e | b[8] max_abs %.2e max_rel %.2e "
           "(worst by step %d) | lr rel %.1e | state %zu B | torch f32-vs-f64 %.1e  %s\n",
           name, jstr(run, "schedule"), (long long)warmup, op.lr, op.weight_decay, abs_w, worst_w, abs_b, worst_b,
           worst_step, worst_lr, state_bytes, dev_w, ok ? "OK" : "FAIL");
    if (!state_ok) printf("    optimizer state %zu bytes, expected %zu\n", state_bytes, want_state);
    if (!frozen_ok) printf("    frozen parameter %s changed\n", frozen->name);
    fails += !ok;
    free(ref_w);
    free(ref_b);
    free(ref_lr);
    free(frozen0);
    ft_optim_free(o);
    ft_model_free(m);
    return fails;
}

static void test_optimizer_trajectories(void **state) {
    (void)state;
    if (!ft_fixture_present(FIXTURE)) { skip(); return; }
    ft_safetensors *st;
    assert_int_equal(ft_st_open(&st, ft_fixture(FIXTURE)), 0);
    int steps = atoi(ft_st_metadata(st, "steps"));
    assert_true(steps > 0);
    int64_t sh_w[2] = {8, 8}, sh_b[1] = {8}, sh_gw[3] = {steps, 8, 8}, sh_gb[2] = {steps, 8};
    float *init_w = read_f32(st, "init.w", sh_w, 2), *init_b = read_f32(st, "init.b", sh_b, 1);
    float *grad_w = read_f32(st, "grad.w", sh_gw, 3), *grad_b = read_f32(st, "grad.b", sh_gb, 2);
    cJSON *runs = meta_json(st, "runs");
    printf("optimizers vs torch.optim (float32), %d steps, tolerance max_rel <= %g per step:\n", steps, TOL_PARAM);
    int fails = 0, n = 0;
    const cJSON *run;
    cJSON_ArrayForEach(run, runs) {
        fails += check_run(st, run, steps, init_w, init_b, grad_w, grad_b);
        n++;
    }
    printf("%d runs, %d failed\n", n, fails);
    cJSON_Delete(runs);
    free(init_w);
    free(init_b);
    free(grad_w);
    free(grad_b);
    ft_st_close(st);
    assert_true(n >= 10);
    assert_int_equal(fails, 0);
}

static void test_schedules(void **state) {
    (void)state;
    if (!ft_fixture_present(FIXTURE)) { skip(); return; }
    ft_safetensors *st;
    assert_int_equal(ft_st_open(&st, ft_fixture(FIXTURE)), 0);
    cJSON *list = meta_json(st, "schedules");
    printf("ft_schedule_lr vs transformers' schedules (multipliers, step 0..total), tolerance %g:\n", TOL_SCHED);
    int fails = 0, n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, list) {
        const char *kind = jstr(e, "kind");
        int64_t warmup = (int64_t)jnum(e, "warmup", 0), total = (int64_t)jnum(e, "total", 0);
        float mlr = (float)jnum(e, "min_lr_ratio", 0.0);
        int64_t shape[1] = {total + 1};
        float *ref = read_f32(st, jstr(e, "tensor"), shape, 1);
        double worst = 0;
        int64_t worst_step = 0;
        for (int64_t s = 0; s <= total; s++) {
            float got = ft_schedule_lr(sched_kind(kind), 1.0f, s, total, warmup, mlr);
            double d = fabs((double)got - ref[s]);
            if (d > worst) { worst = d; worst_step = s; }
        }
        int ok = worst <= TOL_SCHED;
        printf("  %-8s warmup %-3lld total %-4lld min_lr %-3g  max_abs %.2e (step %lld)  %s\n", kind, (long long)warmup,
               (long long)total, mlr, worst, (long long)worst_step, ok ? "OK" : "FAIL");
        fails += !ok;
        n++;
        free(ref);
    }
    printf("%d schedules, %d failed\n", n, fails);
    cJSON_Delete(list);
    ft_st_close(st);
    assert_true(n > 0);
    assert_int_equal(fails, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_optimizer_trajectories),
        cmocka_unit_test(test_schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
