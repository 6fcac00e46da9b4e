/* test_encoder_qlora.c — QLoRA on encoders (ft_encoder_quantize_base, src/models/encoder_quant.c and
 * the shared linear layer src/models/linear.c):
 *  (a) an encoder whose blocks' linear weights are stored NF4 / int8 gives the same logits, loss and
 *      gradients (LoRA A / B on every linear layer, the head, trainable block biases) as the f32 encoder
 *      whose weights were replaced by the dequantized values, for BERT, DistilBERT and RoBERTa, on the
 *      ref and cpu backends, in training mode (dropout on, same seed);
 *  (b) finite differences of the LoRA gradients on a quantized base;
 *  (c) `finetune train --task classify --method qlora` on the tiny fixture trains, saves a PEFT adapter,
 *      and `finetune eval` / `predict` read it back (onto the f32 base);
 *  (e) quantizing while loading (ft_encoder_load_quantized) gives the same bytes and logits;
 *  (d) NF4 on an input width that is not a multiple of 64: FT_ERR_SHAPE naming the tensor, the model
 *      left usable; the same through the CLI; and what a quantized encoder refuses (save, merge). */
#include "testutil.h"
#include "finetune/backend.h"
#include "finetune/encoder.h"
#include "finetune/fileio.h"
#include "finetune/lora.h"
#include "finetune/quant.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-5

static char g_bin[1024], g_tmp[1024];

typedef struct inputs {
    int B, T, *ids, *types, *mask, *labels;
} inputs;

static void read_inputs(inputs *in, const char *fixture) {
    char path[4200];
    snprintf(path, sizeof path, "%s/ref.safetensors", ft_fixture(fixture));
    ft_safetensors *st;
    assert_int_equal(ft_st_open(&st, path), 0);
    int b, t;
    in->ids = ft_test_read_i32(st, "input_ids", &in->B, &in->T);
    in->types = ft_test_read_i32(st, "token_type_ids", &b, &t);
    in->mask = ft_test_read_i32(st, "attention_mask", &b, &t);
    in->labels = ft_test_read_i32(st, "labels", &b, &t);
    assert_non_null(in->ids);
    assert_non_null(in->mask);
    assert_non_null(in->labels);
    ft_st_close(st);
}

static void free_inputs(inputs *in) { free(in->ids); free(in->types); free(in->mask); free(in->labels); }

static int is_block_linear(const ft_param *p) {
    return p->t.ndim == 2 && (strstr(p->name, "encoder.layer.") || strstr(p->name, "transformer.layer.")) && !strstr(p->name, "lora_");
}

/* block biases (not the key's: softmax ignores it, its gradient is round-off) */
static int is_block_bias(const ft_param *p) {
    return p->t.ndim == 1 && (strstr(p->name, "encoder.layer.") || strstr(p->name, "transformer.layer.")) &&
           !strstr(p->name, "LayerNorm") && !strstr(p->name, "layer_norm") && !strstr(p->name, "key.") && !strstr(p->name, "k_lin.");
}

/* LoRA on every linear layer (B perturbed: at init B = 0 and A would get no gradient), trainable biases */
static void add_adapters(ft_encoder_model *m) {
    ft_lora_config lc = ft_lora_default_config();
    lc.r = 4;
    lc.alpha = 8;
    lc.dropout = 0.1f;
    snprintf(lc.targets, sizeof lc.targets, "all-linear");
    assert_int_equal(ft_encoder_add_lora(m, &lc, 7), 0);
    for (int i = 0; i < ft_encoder_num_params(m); i++) {
        ft_param *p = ft_encoder_param(m, i);
        if (strstr(p->name, "lora_B")) {
            float *w = p->t.data;
            for (int64_t k = 0; k < ft_tensor_numel(&p->t); k++) w[k] = 0.05f * sinf(0.7f * (float)k + (float)i);
        }
        if (is_block_bias(p)) p->trainable = 1;
    }
}

static int forward_backward(ft_encoder_model *m, const inputs *in, float *loss) {
    const int *types = ft_encoder_get_config(m)->type_vocab_size > 1 ? in->types : NULL;
    ft_encoder_set_training(m, 1, 1234);
    if (ft_encoder_forward(m, in->ids, types, in->mask, in->labels, in->B, in->T, loss) < 0) return -1;
    if (ft_encoder_zero_grad(m) < 0) return -1;
    return ft_encoder_backward(m);
}

/* (a) one fixture, one format, one backend */
static int parity_case(const char *fixture, ft_dtype q, const ft_backend *be) {
    inputs in;
    read_inputs(&in, fixture);
    ft_encoder_model *mq, *mf;
    assert_int_equal(ft_encoder_load(&mq, ft_fixture(fixture), 0, be), 0);
    assert_int_equal(ft_encoder_load(&mf, ft_fixture(fixture), 0, be), 0);
    size_t f32_bytes = ft_encoder_weight_bytes(mq);
    int rc = ft_encoder_quantize_base(mq, q);
    if (rc < 0) printf("quantize: %s\n", ft_last_error());
    assert_int_equal(rc, 0);
    assert_int_equal(ft_encoder_base_quant(mq), q);
    /* mf's block weights := the dequantized values, frozen like the quantized ones */
    int nq = 0;
    for (int i = 0; i < ft_encoder_num_params(mq); i++) {
        ft_param *pq = ft_encoder_param(mq, i), *pf = ft_encoder_param(mf, i);
        assert_string_equal(pq->name, pf->name);
        if (!is_block_linear(pf)) { assert_int_equal(pq->t.dtype, FT_F32); continue; }
        assert_int_equal(pq->t.dtype, q);
        assert_non_null(pq->qdesc);
        assert_int_equal(pq->trainable, 0);
        if (q == FT_NF4) ft_nf4_dequantize_ref(pf->t.data, pq->qdesc);
        else ft_q8row_dequantize_ref(pf->t.data, pq->qdesc);
        pf->trainable = 0;
        nq++;
    }
    printf("[%s / %s / %s] %d linear weights quantized; weights %zu -> %zu bytes\n", fixture, q == FT_NF4 ? "nf4" : "int8",
           be->name, nq, f32_bytes, ft_encoder_weight_bytes(mq));
    assert_int_equal(nq, 6 * ft_encoder_get_config(mq)->n_layer);
    assert_true(ft_encoder_weight_bytes(mq) < f32_bytes);
    add_adapters(mq);
    add_adapters(mf);
    float lq, lf;
    assert_int_equal(forward_backward(mq, &in, &lq), 0);
    assert_int_equal(forward_backward(mf, &in, &lf), 0);
    int fails = 0, n = ft_encoder_logit_rows(mq) * ft_encoder_logit_cols(mq), compared = 0;
    fails += !ft_check_close("logits", ft_encoder_logits(mq), ft_encoder_logits(mf), (size_t)n, TOL);
    fails += !ft_check_close("loss", &lq, &lf, 1, TOL);
    for (int i = 0; i < ft_encoder_num_params(mq); i++) {
        ft_param *pq = ft_encoder_param(mq, i), *pf = ft_encoder_param(mf, i);
        assert_int_equal(pq->trainable, pf->trainable);
        if (!pq->trainable) { assert_null(pq->grad); continue; }
        fails += !ft_check_close(pq->name, pq->grad, pf->grad, (size_t)ft_tensor_numel(&pq->t), TOL);
        compared++;
    }
    printf("  %d gradients compared\n", compared);
    ft_encoder_close(mq);
    ft_encoder_close(mf);
    free_inputs(&in);
    return fails;
}

static void test_dequantized_parity(void **s) {
    (void)s;
    const ft_backend *bes[] = {ft_backend_ref(), ft_backend_cpu()};
    int fails = 0;
    for (int b = 0; b < 2; b++) {
        fails += parity_case("encoder/bert_tiny", FT_NF4, bes[b]);      /* width 64, FFN 128: NF4 fits */
        fails += parity_case("encoder/bert_tiny", FT_Q8_ROW, bes[b]);
        fails += parity_case("encoder/distilbert_tiny", FT_Q8_ROW, bes[b]);   /* width 16: int8 only */
        fails += parity_case("encoder/roberta_tiny", FT_Q8_ROW, bes[b]);
    }
    assert_int_equal(fails, 0);
}

/* (b) central differences of the loss (evaluation mode, ref backend) against the LoRA gradients */
static double loss_at(ft_encoder_model *m, const inputs *in) {
    float loss;
    const int *types = ft_encoder_get_config(m)->type_vocab_size > 1 ? in->types : NULL;
    assert_int_equal(ft_encoder_forward(m, in->ids, types, in->mask, in->labels, in->B, in->T, &loss), 0);
    return loss;
}

static void test_finite_differences(void **s) {
    (void)s;
    inputs in;
    read_inputs(&in, "encoder/bert_tiny");
    ft_encoder_model *m;
    assert_int_equal(ft_encoder_load(&m, ft_fixture("encoder/bert_tiny"), 0, ft_backend_ref()), 0);
    assert_int_equal(ft_encoder_quantize_base(m, FT_NF4), 0);
    add_adapters(m);
    ft_encoder_set_training(m, 0, 0);
    float l0;
    assert_int_equal(ft_encoder_forward(m, in.ids, in.types, in.mask, in.labels, in.B, in.T, &l0), 0);
    assert_int_equal(ft_encoder_zero_grad(m), 0);
    assert_int_equal(ft_encoder_backward(m), 0);
    int checked = 0, bad = 0;
    double worst = 0;
    const float eps = 1e-2f;
    for (int i = 0; i < ft_encoder_num_params(m); i++) {
        ft_param *p = ft_encoder_param(m, i);
        if (!strstr(p->name, "lora_")) continue;
        float *w = p->t.data;
        int64_t n = ft_tensor_numel(&p->t);
        /* the largest-gradient entry and one fixed entry of each adapter matrix */
        int64_t big = 0;
        for (int64_t k = 1; k < n; k++) if (fabsf(p->grad[k]) > fabsf(p->grad[big])) big = k;
        int64_t ks[2] = {big, (n * 3) / 7};
        for (int j = 0; j < 2; j++) {
            int64_t k = ks[j];
            float keep = w[k];
            w[k] = keep + eps;
            double lp = loss_at(m, &in);
            w[k] = keep - eps;
            double lm = loss_at(m, &in);
            w[k] = keep;
            double fd = (lp - lm) / (2.0 * eps), g = p->grad[k];
            double err = fabs(fd - g) / (fabs(g) + 1e-3);
            if (err > worst) worst = err;
            if (fabs(fd - g) > 2e-2 * fabs(g) + 2e-4) { bad++; printf("  %s[%lld]: analytic %.6e, finite difference %.6e\n", p->name, (long long)k, g, fd); }
            checked++;
        }
    }
    printf("  finite differences: %d LoRA entries checked on an NF4 base, worst relative error %.3e, %d bad\n", checked, worst, bad);
    assert_true(checked >= 4 * 6 * 2);
    assert_int_equal(bad, 0);
    ft_encoder_close(m);
    free_inputs(&in);
}

/* (d) NF4 on width 16; what a quantized encoder refuses */
static void test_errors(void **s) {
    (void)s;
    inputs in;
    read_inputs(&in, "encoder/roberta_tiny");
    ft_encoder_model *m;
    assert_int_equal(ft_encoder_load(&m, ft_fixture("encoder/roberta_tiny"), 0, ft_backend_cpu()), 0);
    assert_int_equal(ft_encoder_forward(m, in.ids, NULL, in.mask, NULL, in.B, in.T, NULL), 0);
    int n = ft_encoder_logit_rows(m) * ft_encoder_logit_cols(m);
    float *before = malloc(sizeof(float) * (size_t)n);
    memcpy(before, ft_encoder_logits(m), sizeof(float) * (size_t)n);
    assert_int_equal(ft_encoder_quantize_base(m, FT_NF4), FT_ERR_SHAPE);
    printf("  nf4 on width 16: %s\n", ft_last_error());
    assert_non_null(strstr(ft_last_error(), "roberta.encoder.layer.0.attention.self.query.weight"));
    assert_non_null(strstr(ft_last_error(), "multiples of 64"));
    assert_int_equal(ft_encoder_base_quant(m), FT_F32);
    /* nothing changed */
    assert_int_equal(ft_encoder_forward(m, in.ids, NULL, in.mask, NULL, in.B, in.T, NULL), 0);
    assert_memory_equal(before, ft_encoder_logits(m), sizeof(float) * (size_t)n);
    assert_int_equal(ft_encoder_quantize_base(m, FT_BF16), FT_ERR_INVALID);
    assert_int_equal(ft_encoder_quantize_base(m, FT_Q8_ROW), 0);
    assert_int_equal(ft_encoder_quantize_base(m, FT_Q8_ROW), FT_ERR_INVALID);
    printf("  twice: %s\n", ft_last_error());
    assert_int_equal(ft_encoder_save(m, ft_test_path(g_tmp, "full"), NULL), FT_ERR_UNSUPPORTED);
    printf("  save: %s\n", ft_last_error());
    ft_lora_config lc = ft_lora_default_config();
    assert_int_equal(ft_encoder_add_lora(m, &lc, 1), 0);
    assert_int_equal(ft_encoder_merge_lora(m), FT_ERR_UNSUPPORTED);
    printf("  merge: %s\n", ft_last_error());
    ft_encoder_close(m);
    /* LoRA first, then quantize: refused */
    assert_int_equal(ft_encoder_load(&m, ft_fixture("encoder/bert_tiny"), 0, ft_backend_cpu()), 0);
    assert_int_equal(ft_encoder_add_lora(m, &lc, 1), 0);
    assert_int_equal(ft_encoder_quantize_base(m, FT_NF4), FT_ERR_INVALID);
    ft_encoder_close(m);
    free(before);
    free_inputs(&in);
}


/* quantized while loading == loaded in f32, then quantized: the same bytes, the same logits */
static void load_case(const char *fixture, ft_dtype q) {
    inputs in;
    read_inputs(&in, fixture);
    ft_encoder_model *a, *b;
    assert_int_equal(ft_encoder_load(&a, ft_fixture(fixture), 0, ft_backend_cpu()), 0);
    assert_int_equal(ft_encoder_quantize_base(a, q), 0);
    ft_encoder_options o = ft_encoder_default_options();
    o.task = FT_TASK_CLASSIFY;
    int rc = ft_encoder_load_quantized(&b, ft_fixture(fixture), &o, ft_backend_cpu(), q);
    if (rc < 0) printf("load_quantized: %s\n", ft_last_error());
    assert_int_equal(rc, 0);
    assert_int_equal(ft_encoder_base_quant(b), q);
    assert_int_equal(ft_encoder_weight_bytes(a), ft_encoder_weight_bytes(b));
    int same = 1;
    for (int i = 0; i < ft_encoder_num_params(a); i++) {
        ft_param *pa = ft_encoder_param(a, i), *pb = ft_encoder_param(b, i);
        assert_int_equal(pa->t.dtype, pb->t.dtype);
        size_t nb = pa->t.dtype == FT_NF4 ? ft_nf4_nbytes(pa->t.shape[0], pa->t.shape[1], FT_NF4_DOUBLE_QUANT)
                  : pa->t.dtype == FT_Q8_ROW ? ft_q8row_nbytes(pa->t.shape[0], pa->t.shape[1]) : ft_tensor_nbytes(&pa->t);
        same &= memcmp(pa->t.data, pb->t.data, nb) == 0;
        if (pa->qdesc && pa->t.dtype == FT_NF4) same &= ((ft_nf4_tensor *)pa->qdesc)->offset == ((ft_nf4_tensor *)pb->qdesc)->offset;
    }
    const int *types = ft_encoder_get_config(a)->type_vocab_size > 1 ? in.types : NULL;
    assert_int_equal(ft_encoder_forward(a, in.ids, types, in.mask, NULL, in.B, in.T, NULL), 0);
    assert_int_equal(ft_encoder_forward(b, in.ids, types, in.mask, NULL, in.B, in.T, NULL), 0);
    size_t n = (size_t)ft_encoder_logit_rows(a) * ft_encoder_logit_cols(a);
    same &= memcmp(ft_encoder_logits(a), ft_encoder_logits(b), sizeof(float) * n) == 0;
    printf("  [%s / %s] quantized while loading vs after: weights and logits %s (%zu weight bytes)\n", fixture,
           q == FT_NF4 ? "nf4" : "int8", same ? "bit-identical" : "DIFFERENT", ft_encoder_weight_bytes(b));
    assert_true(same);
    ft_encoder_close(a);
    ft_encoder_close(b);
    free_inputs(&in);
}

static void test_load_quantized(void **s) {
    (void)s;
    load_case("encoder/bert_tiny", FT_NF4);
    load_case("encoder/bert_tiny", FT_Q8_ROW);
    load_case("encoder/distilbert_tiny", FT_Q8_ROW);
    load_case("encoder/roberta_tiny", FT_Q8_ROW);
    ft_encoder_model *m = (ft_encoder_model *)1;
    assert_int_equal(ft_encoder_load_quantized(&m, ft_fixture("encoder/roberta_tiny"), NULL, ft_backend_cpu(), FT_NF4), FT_ERR_SHAPE);
    assert_null(m);
    printf("  nf4 while loading width 16: %s\n", ft_last_error());
    assert_non_null(strstr(ft_last_error(), "multiples of 64"));
}

/* ------------------------------------------------------------ (c) the CLI */


static const char *fx(const char *rel) {
    static char buf[4][4096];
    static int k = 0;
    char r[512];
    snprintf(r, sizeof r, "train_encoder/%s", rel);
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s", ft_fixture(r));
    return buf[k];
}

/* the number after `key` in the last line of text holding it (NAN when absent) */
static double last_number(const char *text, const char *key) {
    double v = NAN;
    for (const char *p = strstr(text, key); p; p = strstr(p + 1, key)) v = atof(p + strlen(key));
    return v;
}

static void test_cli_train_eval(void **s) {
    (void)s;
    char run[4200], *out;
    snprintf(run, sizeof run, "%s/cli", g_tmp);
    /* validation = the training file: "loss goes down" is then about fitting, not generalising */
    assert_int_equal(ft_test_finetune(&out, "train --task classify --model %s --data %s --val-data %s --text-column sentence --method qlora --quant int8 "
                              "--lora-r 8 --lora-alpha 16 --lora-targets all-linear --epochs 6 --batch-size 8 --lr 5e-3 --seed 3 --out %s",
                        fx("tiny_bert"), fx("sst_train.tsv"), fx("sst_train.tsv"), run), 0);
    const char *first = strstr(out, "eval step");
    assert_non_null(first);
    double l_first = atof(strstr(first, "loss ") + 5), l_end = last_number(out, "eval step");
    const char *lastev = NULL;
    for (const char *p = strstr(out, "eval step"); p; p = strstr(p + 1, "eval step")) lastev = p;
    l_end = atof(strstr(lastev, "loss ") + 5);
    printf("  qlora int8 on tiny_bert: validation loss %.4f (first eval) -> %.4f (last eval)\n", l_first, l_end);
    assert_non_null(strstr(out, "the base is frozen"));
    assert_true(l_end < l_first);
    free(out);
    /* the saved directory is a PEFT adapter of the f32 base */
    char path[4300];
    snprintf(path, sizeof path, "%s/final/adapter_config.json", run);
    assert_true(ft_path_exists(path));
    snprintf(path, sizeof path, "%s/final/adapter_model.safetensors", run);
    assert_true(ft_path_exists(path));
    snprintf(path, sizeof path, "%s/final", run);
    assert_int_equal(ft_test_finetune(&out, "eval --model %s --data %s --text-column sentence --json", path, fx("sst_train.tsv")), 0);
    printf("  eval of the saved adapter: %.200s\n", strstr(out, "{") ? strstr(out, "{") : out);
    assert_non_null(strstr(out, "\"accuracy\""));
    /* eval reloads the base in f32 and the adapter on top: the same loss as the run's last (int8) evaluation,
     * up to the int8 rounding of the base and the printed digits */
    double vl = last_number(out, "\"val_loss\":");
    printf("  eval val_loss %.6f vs the run's last evaluation %.4f\n", vl, l_end);
    assert_true(fabs(vl - l_end) < 2e-2);
    free(out);
    /* NF4 through the CLI on width 32 */
    snprintf(run, sizeof run, "%s/cli-nf4", g_tmp);
    assert_int_not_equal(ft_test_finetune(&out, "train --task classify --model %s --data %s --text-column sentence --method qlora --out %s",
                            fx("tiny_bert"), fx("sst_train.tsv"), run), 0);
    printf("  nf4 on tiny_bert: %s", strstr(out, "error") ? strstr(out, "error") : out);
    assert_non_null(strstr(out, "NF4 needs input widths that are multiples of 64; bert.encoder.layer.0.attention.self.query.weight has 32"));
    free(out);
}

int main(void) {
    const char *b = getenv("BUILD");
    snprintf(g_bin, sizeof g_bin, "%s/finetune", b && *b ? b : "build");
    if (ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft-enc-qlora") != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dequantized_parity),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_load_quantized),
        cmocka_unit_test(test_cli_train_eval),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ft_test_tmpdir_remove(g_tmp);
    return rc;
}
