/* test_encoder_train_state.c — several LoRA trainings over one loaded encoder (train_state.h, encoder side).
 *
 * An encoder training state is a training with the weights shared: two states with different adapters
 * (rank, targets, dropout, rsLoRA, label smoothing), each training its own copy of the task head (PEFT's
 * modules_to_save), trained in alternation over ONE encoder with AdamW, must give the losses, the trained
 * tensors (adapters and head) and the eval logits of the same trainings on encoders of their own
 * (ft_encoder_add_lora + ft_encoder_forward_ex / backward), bit for bit, on both backends, for BERT /
 * DistilBERT / RoBERTa classifiers, a token classifier, an MLM model and an int8 (QLoRA) base; the shared
 * weights are unchanged afterwards. Then the same two trainings on two threads at once (also under
 * ThreadSanitizer: `make SANITIZE=thread test`, reference backend only there), and the errors. */
#include "testutil.h"
#include "finetune/backend.h"
#include "finetune/encoder.h"
#include "finetune/lora.h"
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

#define FIX "tests/fixtures/encoder/"

/* the two trainings of the sweep */
static ft_lora_config config_of(int which) {
    ft_lora_config c = ft_lora_default_config();
    if (which == 0) { c.r = 4; c.alpha = 8; c.dropout = 0.1f; }
    else { c.r = 8; c.alpha = 16; c.dropout = 0.2f; c.rslora = 1; snprintf(c.targets, sizeof c.targets, "all-linear"); }
    return c;
}

typedef struct run {
    float loss[STEPS], final_loss;
    float *trained; size_t n_trained;   /* every trainable tensor (head, adapters), concatenated */
    float *logits; size_t n_logits;     /* eval forward after training */
} run;

static void run_free(run *r) { free(r->trained); free(r->logits); }

/* a batch of step: ids, a padding mask (sequence b has b padding positions), labels for the task */
static void batch(int step, const ft_encoder_model *m, int *ids, int *mask, int *labels) {
    const ft_encoder_config *c = ft_encoder_get_config(m);
    ft_encoder_task task = ft_encoder_get_task(m);
    for (int i = 0; i < B * T; i++) {
        ids[i] = (i * 7 + step * 13 + 3) % c->vocab_size;
        mask[i] = i % T < T - i / T;
        labels[i] = task == FT_TASK_MLM ? (i % 3 ? FT_IGNORE_INDEX : (i * 5 + step + 1) % c->vocab_size) : (i + step) % c->num_labels;
    }
}

/* one training, either of an encoder of its own (s NULL) or of state s */
typedef struct trainer {
    ft_encoder_model *m;            /* own-encoder run: its encoder; state run: the shared base */
    ft_encoder_train_state *s;      /* NULL: the encoder's own training */
    ft_optimizer *opt;
    int which, step;
    run out;
    int rc;
} trainer;

static int t_forward(trainer *t, int step, float *loss) {
    int ids[B * T], mask[B * T], labels[B * T];
    batch(step, t->m, ids, mask, labels);
    ft_encoder_inputs in = {ids, NULL, mask, labels, NULL, B, T};
    return t->s ? ft_encoder_train_state_forward(t->s, &in, loss) : ft_encoder_forward_ex(t->m, &in, loss);
}

static int t_setup(trainer *t) {
    ft_lora_config c = config_of(t->which);
    ft_optim_params op = ft_optim_default_params();
    op.lr = 5e-2f;
    op.weight_decay = 0.01f;
    if (t->s) {
        FT_TRY(ft_optim_create_params(&t->opt, ft_encoder_train_state_param(t->s, 0), ft_encoder_train_state_num_params(t->s), &op));
        if (t->which == 1) ft_encoder_train_state_set_label_smoothing(t->s, 0.1f);
    } else {
        FT_TRY(ft_encoder_add_lora(t->m, &c, 100 + (uint64_t)t->which));
        FT_TRY(ft_optim_create_params(&t->opt, ft_encoder_param(t->m, 0), ft_encoder_num_params(t->m), &op));
        if (t->which == 1) ft_encoder_set_label_smoothing(t->m, 0.1f);
    }
    return FT_OK;
}

static int t_step(trainer *t) {
    uint64_t seed = 1000 * (uint64_t)(t->which + 1) + (uint64_t)t->step;
    if (t->s) ft_encoder_train_state_set_training(t->s, 1, seed);
    else ft_encoder_set_training(t->m, 1, seed);
    FT_TRY(t_forward(t, t->step, &t->out.loss[t->step]));
    FT_TRY(t->s ? ft_encoder_train_state_zero_grad(t->s) : ft_encoder_zero_grad(t->m));
    FT_TRY(t->s ? ft_encoder_train_state_backward(t->s, 0.0f) : ft_encoder_backward(t->m));
    FT_TRY(ft_optim_step(t->opt, 5e-2f));
    t->step++;
    return FT_OK;
}

static ft_param *t_param(trainer *t, int i) { return t->s ? ft_encoder_train_state_param(t->s, i) : ft_encoder_param(t->m, i); }

/* the trained tensors and an eval forward's logits and loss */
static int t_finish(trainer *t) {
    int n = t->s ? ft_encoder_train_state_num_params(t->s) : ft_encoder_num_params(t->m);
    size_t total = 0, o = 0;
    for (int i = 0; i < n; i++)
        if (t_param(t, i)->trainable) total += (size_t)ft_tensor_numel(&t_param(t, i)->t);
    t->out.trained = malloc(sizeof(float) * total);
    t->out.n_trained = total;
    for (int i = 0; i < n; i++) {
        ft_param *p = t_param(t, i);
        if (!p->trainable) continue;
        memcpy(t->out.trained + o, p->t.data, ft_tensor_nbytes(&p->t));
        o += (size_t)ft_tensor_numel(&p->t);
    }
    if (t->s) ft_encoder_train_state_set_training(t->s, 0, 0);
    else ft_encoder_set_training(t->m, 0, 0);
    FT_TRY(t_forward(t, 99, &t->out.final_loss));
    int rows = t->s ? ft_encoder_train_state_logit_rows(t->s) : ft_encoder_logit_rows(t->m);
    int cols = t->s ? ft_encoder_train_state_logit_cols(t->s) : ft_encoder_logit_cols(t->m);
    t->out.n_logits = (size_t)rows * cols;
    t->out.logits = malloc(sizeof(float) * t->out.n_logits);
    memcpy(t->out.logits, t->s ? ft_encoder_train_state_logits(t->s) : ft_encoder_logits(t->m), sizeof(float) * t->out.n_logits);
    return FT_OK;
}

static void *t_thread(void *arg) {
    trainer *t = arg;
    t->rc = FT_OK;
    while (t->rc == FT_OK && t->step < STEPS) t->rc = t_step(t);
    if (t->rc == FT_OK) t->rc = t_finish(t);
    return NULL;
}

static int load(ft_encoder_model **m, const char *dir, const ft_backend *be, int int8) {
    ft_encoder_options o = ft_encoder_default_options();
    return int8 ? ft_encoder_load_quantized(m, dir, &o, be, FT_Q8_ROW) : ft_encoder_load_ex(m, dir, &o, be);
}

/* the f32 weights (a quantized weight's bytes are read-only storage the state never writes either) */
static uint64_t weights_hash(ft_encoder_model *m) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < ft_encoder_num_params(m); i++) {
        ft_param *p = ft_encoder_param(m, i);
        if (p->qdesc) continue;
        const unsigned char *d = p->t.data;
        size_t n = ft_tensor_nbytes(&p->t);
        for (size_t k = 0; k < n; k++) h = (h ^ d[k]) * 1099511628211ull;
    }
    return h;
}

static int same_run(const char *what, const run *a, const run *b) {
    int ok = !memcmp(a->loss, b->loss, sizeof a->loss) && a->final_loss == b->final_loss && a->n_trained == b->n_trained &&
             !memcmp(a->trained, b->trained, sizeof(float) * a->n_trained) && a->n_logits == b->n_logits &&
             !memcmp(a->logits, b->logits, sizeof(float) * a->n_logits);
    printf("  %s: losses %.6f %.6f %.6f, eval %.6f vs %.6f %.6f %.6f, eval %.6f, %zu trained floats: %s\n", what, (double)a->loss[0],
           (double)a->loss[1], (double)a->loss[2], (double)a->final_loss, (double)b->loss[0], (double)b->loss[1], (double)b->loss[2],
           (double)b->final_loss, a->n_trained, ok ? "bit-identical" : "DIFFERENT");
    return ok;
}

/* trainings 0 and 1 over one shared encoder (threads: at once) vs each on an encoder of its own */
static int sweep(const char *dir, const ft_backend *be, int int8, int threads) {
    run ref[2];
    for (int w = 0; w < 2; w++) {
        trainer t = {.which = w};
        assert_int_equal(load(&t.m, dir, be, int8), 0);
        assert_int_equal(t_setup(&t), 0);
        t_thread(&t);
        if (t.rc < 0) printf("own encoder: %s\n", ft_last_error());
        assert_int_equal(t.rc, 0);
        ref[w] = t.out;
        ft_optim_free(t.opt);
        ft_encoder_close(t.m);
    }
    ft_encoder_model *base;
    assert_int_equal(load(&base, dir, be, int8), 0);
    uint64_t before = weights_hash(base);
    int64_t trainable = ft_encoder_trainable_count(base);
    trainer t[2];
    for (int w = 0; w < 2; w++) {
        memset(&t[w], 0, sizeof t[w]);
        t[w].m = base;
        t[w].which = w;
        ft_lora_config c = config_of(w);
        assert_int_equal(ft_encoder_train_state_create(&t[w].s, base, &c, 100 + (uint64_t)w), 0);
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
        ft_encoder_train_state_free(t[w].s);
    }
    uint64_t after = weights_hash(base);
    if (after != before) printf("  the shared weights changed\n");
    ok &= after == before;
    /* the encoder itself is untouched: no adapters, the same weights trainable */
    if (ft_encoder_lora_count(base) != 0 || ft_encoder_trainable_count(base) != trainable) printf("  the shared encoder changed\n");
    ok &= ft_encoder_lora_count(base) == 0 && ft_encoder_trainable_count(base) == trainable;
    ft_encoder_close(base);
    return ok;
}

static void test_sweep_equals_own_encoders(void **state) {
    (void)state;
    int ok = 1;
    if (FT_TSAN) { skip(); return; }
    const ft_backend *bes[2] = {ft_backend_ref(), ft_backend_cpu()};
    const char *dirs[] = {FIX "bert_tiny", FIX "distilbert_tiny", FIX "roberta_tiny", FIX "bert_token", FIX "bert_mlm"};
    for (int b = 0; b < 2; b++) {
        for (size_t d = 0; d < sizeof dirs / sizeof *dirs; d++) ok &= sweep(dirs[d], bes[b], 0, 0);
        ok &= sweep(FIX "bert_tiny", bes[b], 1, 0);
    }
    assert_true(ok);
}

static void test_threads(void **state) {
    (void)state;
    int ok = sweep(FIX "bert_tiny", ft_backend_ref(), 0, 1);
    if (!FT_TSAN) ok &= sweep(FIX "roberta_tiny", ft_backend_cpu(), 0, 1);
    else ok &= sweep(FIX "roberta_tiny", ft_backend_ref(), 0, 1);
    assert_true(ok);
}

static void test_errors_and_adapter(void **state) {
    (void)state;
    ft_encoder_model *m;
    assert_int_equal(load(&m, FIX "bert_tiny", ft_backend_ref(), 0), 0);
    ft_encoder_train_state *s;
    ft_lora_config c = ft_lora_default_config();
    snprintf(c.targets, sizeof c.targets, "no_such_module");
    assert_int_equal(ft_encoder_train_state_create(&s, m, &c, 1), FT_ERR_NOT_FOUND);
    printf("  expected error: %s\n", ft_last_error());
    c = ft_lora_default_config();
    c.r = 0;
    assert_int_equal(ft_encoder_train_state_create(&s, m, &c, 1), FT_ERR_INVALID);
    c = ft_lora_default_config();
    assert_int_equal(ft_encoder_train_state_create(&s, m, &c, 1), 0);
    assert_int_equal(ft_encoder_train_state_backward(s, 0.0f), FT_ERR_INVALID);   /* no forward yet */
    assert_int_equal(ft_encoder_lora_count(m), 0);
    assert_int_equal(ft_encoder_train_state_lora_count(s), 2 * ft_encoder_get_config(m)->n_layer);   /* query, value */
    /* one training step, so that the head differs from the base's; then the state's adapter and head save as
     * PEFT's and load onto the base as its adapter */
    int ids[B * T], mask[B * T], labels[B * T];
    batch(0, m, ids, mask, labels);
    ft_encoder_inputs in = {ids, NULL, mask, labels, NULL, B, T};
    ft_optimizer *opt;
    ft_optim_params op = ft_optim_default_params();
    assert_int_equal(ft_optim_create_params(&opt, ft_encoder_train_state_param(s, 0), ft_encoder_train_state_num_params(s), &op), 0);
    float loss;
    assert_int_equal(ft_encoder_train_state_forward(s, &in, &loss), 0);
    assert_int_equal(ft_encoder_train_state_backward(s, 0.0f), 0);
    assert_int_equal(ft_optim_step(opt, 1e-2f), 0);
    ft_optim_free(opt);
    char dir[4096];
    assert_int_equal(ft_test_tmpdir_make(dir, sizeof dir, "ft_enc_train_state"), 0);
    assert_int_equal(ft_encoder_train_state_save_adapter(s, dir, FIX "bert_tiny", NULL), 0);
    ft_encoder_model *m2;
    assert_int_equal(load(&m2, FIX "bert_tiny", ft_backend_ref(), 0), 0);
    assert_int_equal(ft_encoder_load_adapter(m2, dir), 0);
    assert_int_equal(ft_encoder_lora_count(m2), ft_encoder_train_state_lora_count(s));
    int n = ft_encoder_train_state_num_params(s), checked = 0;
    assert_int_equal(ft_encoder_num_params(m2), n);
    for (int i = 0; i < n; i++) {
        ft_param *a = ft_encoder_train_state_param(s, i), *b = ft_encoder_param(m2, i);
        assert_string_equal(a->name, b->name);
        assert_int_equal(a->trainable, b->trainable);
        if (!a->trainable) continue;
        assert_memory_equal(a->t.data, b->t.data, ft_tensor_nbytes(&a->t));
        checked++;
    }
    assert_true(checked > 2 * ft_encoder_train_state_lora_count(s));   /* the adapters and the head */
    /* the base's own head is not the state's */
    int differ = 0;
    for (int i = 0; i < n; i++) {
        ft_param *a = ft_encoder_train_state_param(s, i);
        if (a->trainable && i < ft_encoder_num_params(m)) differ |= memcmp(a->t.data, ft_encoder_param(m, i)->t.data, ft_tensor_nbytes(&a->t)) != 0;
    }
    assert_true(differ);
    ft_test_tmpdir_remove(dir);
    ft_encoder_close(m2);
    ft_encoder_train_state_free(s);
    ft_encoder_close(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep_equals_own_encoders),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_errors_and_adapter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
