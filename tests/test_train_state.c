/* test_train_state.c — several LoRA trainings over one loaded model (train_state.h).
 *
 * A training state is a training with the weights shared: two states with different adapters (rank,
 * targets, dropout, rsLoRA, label smoothing), trained in alternation over ONE model with AdamW, must give
 * the losses, the adapters and the logits of the same trainings on models of their own (ft_model_add_lora +
 * ft_model_forward / backward), bit for bit, on both backends, for a GPT-2 and a Llama model and an int8
 * (QLoRA) base; the shared weights are unchanged afterwards. Then the same two trainings on two threads at
 * once (also under ThreadSanitizer: `make SANITIZE=thread test`, reference backend only there, as in
 * test_context_threads), and the errors. */
#include "testutil.h"
#include "finetune/backend.h"
#include "finetune/lora.h"
#include "finetune/model.h"
#include "finetune/optim.h"
#include "finetune/status.h"
#include "finetune/train_state.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_THREAD__)
#define FT_TSAN 1
#else
#define FT_TSAN 0
#endif

#define STEPS 3
#define B 2
#define T 7

static const char *k_gpt2 = "tests/fixtures/decoder/gpt2_tiny", *k_llama = "tests/fixtures/decoder/llama_gqa";

/* the two trainings of the sweep */
static ft_lora_config config_of(int which) {
    ft_lora_config c = ft_lora_default_config();
    if (which == 0) { c.r = 4; c.alpha = 8; c.dropout = 0.1f; }
    else { c.r = 8; c.alpha = 16; c.dropout = 0.2f; c.rslora = 1; snprintf(c.targets, sizeof c.targets, "all-linear"); }
    return c;
}

typedef struct run {
    float loss[STEPS], final_loss;
    float *adapters; size_t n_adapters;   /* every A and B, concatenated */
    float *logits; size_t n_logits;       /* eval forward after training */
} run;

static void run_free(run *r) { free(r->adapters); free(r->logits); }

static void batch(int step, int V, int *ids, int *tg) {
    for (int i = 0; i < B * T; i++) {
        ids[i] = (i * 7 + step * 13 + 3) % V;
        tg[i] = i % 6 == 0 ? -100 : (i * 5 + step + 1) % V;
    }
}

/* one training, either of a model of its own (s NULL) or of state s */
typedef struct trainer {
    ft_model *m;             /* own-model run: its model; state run: the shared base */
    ft_train_state *s;       /* NULL: the model's own training */
    ft_optimizer *opt;
    int which, step;
    run out;
    int rc;
} trainer;

static int t_forward(trainer *t, const int *ids, const int *tg, float *loss) {
    return t->s ? ft_train_state_forward(t->s, ids, tg, NULL, NULL, B, T, loss) : ft_model_forward(t->m, ids, tg, NULL, NULL, B, T, loss);
}

static int t_setup(trainer *t) {
    ft_lora_config c = config_of(t->which);
    ft_optim_params op = ft_optim_default_params();
    op.lr = 5e-2f;
    op.weight_decay = 0.01f;
    if (t->s) {
        FT_TRY(ft_optim_create_params_on(&t->opt, ft_train_state_param(t->s, 0), ft_train_state_num_params(t->s), &op, ft_model_backend(t->m)));
        if (t->which == 1) ft_train_state_set_label_smoothing(t->s, 0.1f);
    } else {
        FT_TRY(ft_model_add_lora(t->m, &c, 100 + (uint64_t)t->which));
        FT_TRY(ft_optim_create(&t->opt, t->m, &op));
        if (t->which == 1) ft_model_set_label_smoothing(t->m, 0.1f);
    }
    return FT_OK;
}

/* one optimizer step on this training's batch of the step */
static int t_step(trainer *t) {
    int V = ft_model_get_config(t->m)->vocab_size, ids[B * T], tg[B * T];
    batch(t->step, V, ids, tg);
    uint64_t seed = 1000 * (uint64_t)(t->which + 1) + (uint64_t)t->step;
    if (t->s) ft_train_state_set_training(t->s, 1, seed);
    else ft_model_set_training(t->m, 1, seed);
    FT_TRY(t_forward(t, ids, tg, &t->out.loss[t->step]));
    FT_TRY(t->s ? ft_train_state_zero_grad(t->s) : ft_model_zero_grad(t->m));
    FT_TRY(t->s ? ft_train_state_backward(t->s, 0.0f) : ft_model_backward(t->m, 0.0f));
    FT_TRY(ft_optim_step(t->opt, 5e-2f));
    t->step++;
    return FT_OK;
}

/* the adapters and an eval forward's logits and loss */
static int t_finish(trainer *t) {
    int n = t->s ? ft_train_state_num_params(t->s) : ft_model_num_params(t->m);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        ft_param *p = t->s ? ft_train_state_param(t->s, i) : ft_model_param(t->m, i);
        if (p->trainable) total += (size_t)ft_tensor_numel(&p->t);
    }
    t->out.adapters = malloc(sizeof(float) * total);
    t->out.n_adapters = total;
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        ft_param *p = t->s ? ft_train_state_param(t->s, i) : ft_model_param(t->m, i);
        if (!p->trainable) continue;
        memcpy(t->out.adapters + o, p->t.data, ft_tensor_nbytes(&p->t));
        o += (size_t)ft_tensor_numel(&p->t);
    }
    int V = ft_model_get_config(t->m)->vocab_size, ids[B * T], tg[B * T];
    batch(99, V, ids, tg);
    if (t->s) ft_train_state_set_training(t->s, 0, 0);
    else ft_model_set_training(t->m, 0, 0);
    FT_TRY(t_forward(t, ids, tg, &t->out.final_loss));
    t->out.n_logits = (size_t)B * T * V;
    t->out.logits = malloc(sizeof(float) * t->out.n_logits);
    memcpy(t->out.logits, t->s ? ft_train_state_logits(t->s) : ft_model_logits(t->m), sizeof(float) * t->out.n_logits);
    return FT_OK;
}

static void *t_thread(void *arg) {
    trainer *t = arg;
    t->rc = FT_OK;
    while (t->rc == FT_OK && t->step < STEPS) t->rc = t_step(t);
    if (t->rc == FT_OK) t->rc = t_finish(t);
    return NULL;
}

static int load(ft_model **m, const char *dir, const ft_backend *be, int int8) {
    return int8 ? ft_model_load_quantized(m, dir, be, FT_Q8_ROW) : ft_model_load(m, dir, be);
}

static uint64_t weights_hash(ft_model *m) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < ft_model_num_params(m); i++) {
        ft_param *p = ft_model_param(m, i);
        const unsigned char *d = p->t.data;
        size_t n = ft_tensor_nbytes(&p->t);
        for (size_t k = 0; k < n; k++) h = (h ^ d[k]) * 1099511628211ull;
    }
    return h;
}

static int same_run(const char *what, const run *a, const run *b) {
    int ok = !memcmp(a->loss, b->loss, sizeof a->loss) && a->final_loss == b->final_loss && a->n_adapters == b->n_adapters &&
             !memcmp(a->adapters, b->adapters, sizeof(float) * a->n_adapters) && a->n_logits == b->n_logits &&
             !memcmp(a->logits, b->logits, sizeof(float) * a->n_logits);
    printf("  %s: losses %.6f %.6f %.6f, eval %.6f vs %.6f %.6f %.6f, eval %.6f, %zu adapter floats: %s\n", what, (double)a->loss[0],
           (double)a->loss[1], (double)a->loss[2], (double)a->final_loss, (double)b->loss[0], (double)b->loss[1], (double)b->loss[2],
           (double)b->final_loss, a->n_adapters, ok ? "bit-identical" : "DIFFERENT");
    return ok;
}

/* trainings 0 and 1 over one shared model (threads: at once) vs each on a model of its own */
static int sweep(const char *dir, const ft_backend *be, int int8, int threads) {
    run ref[2];
    for (int w = 0; w < 2; w++) {
        trainer t = {.which = w};
        assert_int_equal(load(&t.m, dir, be, int8), 0);
        assert_int_equal(t_setup(&t), 0);
        t_thread(&t);
        if (t.rc < 0) printf("own model: %s\n", ft_last_error());
        assert_int_equal(t.rc, 0);
        ref[w] = t.out;
        ft_optim_free(t.opt);
        ft_model_free(t.m);
    }
    ft_model *base;
    assert_int_equal(load(&base, dir, be, int8), 0);
    uint64_t before = weights_hash(base);
    trainer t[2];
    for (int w = 0; w < 2; w++) {
        memset(&t[w], 0, sizeof t[w]);
        t[w].m = base;
        t[w].which = w;
        ft_lora_config c = config_of(w);
        assert_int_equal(ft_train_state_create(&t[w].s, base, &c, 100 + (uint64_t)w), 0);
        assert_int_equal(t_setup(&t[w]), 0);
    }
    if (threads) {
        pthread_t th[2];
        for (int w = 0; w < 2; w++) assert_int_equal(pthread_create(&th[w], NULL, t_thread, &t[w]), 0);
        for (int w = 0; w < 2; w++) pthread_join(th[w], NULL);
    } else {
        /* alternate: a step of one, a step of the other */
        for (int k = 0; k < STEPS; k++)
            for (int w = 0; w < 2; w++) { t[w].rc = t_step(&t[w]); assert_int_equal(t[w].rc, 0); }
        for (int w = 0; w < 2; w++) t[w].rc = t_finish(&t[w]);
    }
    int ok = 1;
    for (int w = 0; w < 2; w++) {
        if (t[w].rc < 0) printf("state %d: %s\n", w, ft_last_error());
        assert_int_equal(t[w].rc, 0);
        char what[160];
        snprintf(what, sizeof what, "%s %s%s %s, training %d", strrchr(dir, '/') + 1, be->name, int8 ? " int8" : "",
                 threads ? "threads" : "alternating", w);
        ok &= same_run(what, &t[w].out, &ref[w]);
        run_free(&t[w].out);
        run_free(&ref[w]);
        ft_optim_free(t[w].opt);
        ft_train_state_free(t[w].s);
    }
    uint64_t after = weights_hash(base);
    if (after != before) printf("  the shared weights changed\n");
    ok &= after == before;
    ft_model_free(base);
    return ok;
}

static void test_sweep_equals_own_models(void **state) {
    (void)state;
    int ok = 1;
    if (FT_TSAN) { skip(); return; }
    const ft_backend *bes[2] = {ft_backend_ref(), ft_backend_cpu()};
    for (int b = 0; b < 2; b++) {
        ok &= sweep(k_gpt2, bes[b], 0, 0);
        ok &= sweep(k_llama, bes[b], 0, 0);
        ok &= sweep(k_llama, bes[b], 1, 0);
    }
    assert_true(ok);
}

static void test_threads(void **state) {
    (void)state;
    int ok = sweep(k_llama, ft_backend_ref(), 0, 1);
    if (!FT_TSAN) ok &= sweep(k_gpt2, ft_backend_cpu(), 0, 1);
    assert_true(ok);
}

static void test_errors_and_adapter(void **state) {
    (void)state;
    ft_model *m;
    assert_int_equal(ft_model_load(&m, k_gpt2, ft_backend_ref()), 0);
    ft_train_state *s;
    ft_lora_config c = ft_lora_default_config();
    snprintf(c.targets, sizeof c.targets, "no_such_module");
    assert_int_equal(ft_train_state_create(&s, m, &c, 1), FT_ERR_NOT_FOUND);
    printf("  expected error: %s\n", ft_last_error());
    c = ft_lora_default_config();
    c.r = 0;
    assert_int_equal(ft_train_state_create(&s, m, &c, 1), FT_ERR_INVALID);
    c = ft_lora_default_config();
    assert_int_equal(ft_train_state_create(&s, m, &c, 1), 0);
    assert_int_equal(ft_train_state_backward(s, 0.0f), FT_ERR_INVALID);   /* no forward yet */
    /* the model itself is untouched: no adapters, every base weight still trainable */
    assert_int_equal(ft_model_lora_count(m), 0);
    assert_int_equal(ft_model_trainable_count(m) > 0, 1);
    assert_int_equal(ft_train_state_lora_count(s), ft_model_get_config(m)->n_layer);   /* c_attn of every block */
    /* its adapter saves as PEFT's and loads as an adapter of the base (names and shapes) */
    char dir[4096];
    assert_int_equal(ft_test_tmpdir_make(dir, sizeof dir, "ft_train_state"), 0);
    assert_int_equal(ft_train_state_save_adapter(s, dir, k_gpt2), 0);
    ft_model *m2;
    assert_int_equal(ft_model_load(&m2, k_gpt2, ft_backend_ref()), 0);
    assert_int_equal(ft_model_load_adapter(m2, dir), 0);
    assert_int_equal(ft_model_lora_count(m2), ft_train_state_lora_count(s));
    for (int i = 0; i < ft_train_state_num_params(s); i++) {
        ft_param *a = ft_train_state_param(s, i), *b = ft_model_param(m2, ft_model_num_params(m2) - ft_train_state_num_params(s) + i);
        assert_int_equal(ft_tensor_numel(&a->t), ft_tensor_numel(&b->t));
        assert_memory_equal(a->t.data, b->t.data, ft_tensor_nbytes(&a->t));
    }
    ft_test_tmpdir_remove(dir);
    ft_model_free(m2);
    ft_train_state_free(s);
    ft_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep_equals_own_models),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_errors_and_adapter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
