/* test_continual.c — continual learning (continual.h, `finetune train --l2-sp / --replay / --eval-old /
 * --stream`) on the tiny BERT of tests/fixtures/train_encoder: the L2-SP gradient (exactly λ(θ − θ0), and the
 * gradient of cross-entropy + penalty against central finite differences through the encoder), a run with
 * L2-SP staying closer to its starting weights than one without, rehearsal batches and the forgetting record,
 * a stream run from stdin ending at EOF and one stopped by SIGTERM with a checkpoint. */
#include "testutil.h"
#include "finetune/continual.h"
#include "finetune/fileio.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_tmp[1024], g_base[1100];

static const char *fx(const char *rel) {
    static char buf[4][2048];
    static int k;
    char r[512];
    snprintf(r, sizeof r, "train_encoder/%s", rel);
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s", ft_fixture(r));
    return buf[k];
}

/* the penalty and its gradient on plain tensors: grad += λ(θ − θ0) exactly, Ω = λ/2 Σ(θ − θ0)², frozen tensors skipped */
static void test_l2sp_exact(void **s) {
    (void)s;
    float w[3][12], g[3][12], w0[3][12];
    ft_param p[3];
    memset(p, 0, sizeof p);
    for (int i = 0; i < 3; i++) {
        p[i].t.dtype = FT_F32;
        p[i].t.ndim = 2;
        p[i].t.shape[0] = 3;
        p[i].t.shape[1] = 4;
        p[i].t.data = w[i];
        p[i].grad = i == 1 ? NULL : g[i];
        p[i].trainable = i != 1;
        for (int j = 0; j < 12; j++) w[i][j] = w0[i][j] = sinf((float)(i * 12 + j));
    }
    ft_l2sp sp;
    assert_int_equal(ft_l2sp_init(&sp, p, 3, 0.3f), FT_OK);
    assert_true(ft_l2sp_apply(&sp, p, 3, 0) == 0.0);
    double want = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 12; j++) {
            w[i][j] += 0.1f * cosf((float)(j + 3 * i));
            g[i][j] = 1.0f;
            if (i != 1) want += (double)(w[i][j] - w0[i][j]) * (w[i][j] - w0[i][j]);
        }
    double om = ft_l2sp_apply(&sp, p, 3, 1);
    assert_true(fabs(om - 0.5 * (double)0.3f * want) <= 1e-9 * want);
    for (int i = 0; i < 3; i += 2)
        for (int j = 0; j < 12; j++) assert_true(g[i][j] == 1.0f + 0.3f * (w[i][j] - w0[i][j]));
    /* finite differences of Ω agree with the added gradient */
    for (int j = 0; j < 12; j += 5) {
        float x = w[2][j];
        double h = 1e-3;
        w[2][j] = (float)(x + h);
        double up = ft_l2sp_apply(&sp, p, 3, 0);
        w[2][j] = (float)(x - h);
        double dn = ft_l2sp_apply(&sp, p, 3, 0);
        w[2][j] = x;
        double fd = (up - dn) / (2 * h), an = g[2][j] - 1.0;
        assert_true(fabs(fd - an) <= 1e-3 * fabs(an) + 1e-6);
    }
    ft_l2sp_free(&sp);
}

/* through the encoder: d(CE + Ω)/dθ from backward + ft_l2sp_apply against finite differences of CE + Ω */
static void test_l2sp_encoder_grad(void **s) {
    (void)s;
    ft_encoder_model *m;
    assert_int_equal(ft_encoder_load(&m, fx("tiny_bert"), 2, NULL), FT_OK);
    int n = ft_encoder_num_params(m);
    ft_param *p = ft_encoder_param(m, 0);
    ft_l2sp sp;
    assert_int_equal(ft_l2sp_init(&sp, p, n, 0.5f), FT_OK);
    /* move away from θ0 so that the penalty's gradient is not zero */
    for (int i = 0; i < n; i++) {
        float *w = p[i].t.data;
        for (int64_t j = 0; j < ft_tensor_numel(&p[i].t); j++) w[j] += 0.02f * sinf((float)(7 * i + j));
    }
    int ids[2 * 6] = {2, 40, 51, 77, 90, 3, 2, 101, 65, 3, 0, 0}, mask[2 * 6] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, labels[2] = {1, 0};
    ft_encoder_inputs in = {ids, NULL, mask, labels, NULL, 2, 6};
    float loss;
    assert_int_equal(ft_encoder_zero_grad(m), FT_OK);
    assert_int_equal(ft_encoder_forward_ex(m, &in, &loss), FT_OK);
    assert_int_equal(ft_encoder_backward(m), FT_OK);
    ft_l2sp_apply(&sp, p, n, 1);
    const char *names[] = {"bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.intermediate.dense.weight", "classifier.weight"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        ft_param *q = NULL;
        for (int i = 0; i < n; i++) if (!strcmp(p[i].name, names[k])) q = &p[i];
        assert_non_null(q);
        int64_t at = 0;
        for (int64_t j = 1; j < ft_tensor_numel(&q->t); j++) if (fabsf(q->grad[j]) > fabsf(q->grad[at])) at = j;
        float *w = (float *)q->t.data + at, x = *w;
        double h = 1e-2, up, dn;
        *w = (float)(x + h);
        assert_int_equal(ft_encoder_forward_ex(m, &in, &loss), FT_OK);
        up = loss + ft_l2sp_apply(&sp, p, n, 0);
        *w = (float)(x - h);
        assert_int_equal(ft_encoder_forward_ex(m, &in, &loss), FT_OK);
        dn = loss + ft_l2sp_apply(&sp, p, n, 0);
        *w = x;
        double fd = (up - dn) / (2 * h), an = q->grad[at];
        printf("  %-48s [%5lld] analytic %+.6e finite-diff %+.6e\n", names[k], (long long)at, an, fd);
        assert_true(fabs(fd - an) <= 2e-2 * fabs(an) + 2e-5);
    }
    ft_l2sp_free(&sp);
    ft_encoder_close(m);
}

/* Σ‖θ − θ_start‖² between RUN/final/model.safetensors and the starting model */
static double dist2(const char *run) {
    char path[2048];
    snprintf(path, sizeof path, "%s/final/model.safetensors", run);
    ft_safetensors *a, *b;
    assert_int_equal(ft_st_open(&a, path), FT_OK);
    snprintf(path, sizeof path, "%s/final/model.safetensors", g_base);
    assert_int_equal(ft_st_open(&b, path), FT_OK);
    double d = 0;
    for (int i = 0; i < ft_st_count(a); i++) {
        const ft_st_entry *e = ft_st_at(a, i), *f = ft_st_find(b, e->name);
        assert_non_null(f);
        size_t n = e->nbytes / 4;
        float *x = ft_test_read_f32(a, e->name, NULL), *y = ft_test_read_f32(b, e->name, NULL);
        for (size_t j = 0; j < n; j++) d += (double)(x[j] - y[j]) * (x[j] - y[j]);
        free(x);
        free(y);
    }
    ft_st_close(a);
    ft_st_close(b);
    return d;
}

static cJSON *record(const char *run, const char *type, int last) {
    char path[2048], *text;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    assert_int_equal(ft_file_read_all(path, &text, NULL), FT_OK);
    cJSON *found = NULL;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(l);
        const cJSON *t = j ? cJSON_GetObjectItem(j, "type") : NULL;
        if (cJSON_IsString(t) && !strcmp(t->valuestring, type) && (last || !found)) { cJSON_Delete(found); found = j; }
        else cJSON_Delete(j);
    }
    free(text);
    return found;
}

/* new sentiment data the old model has not seen (same labels): "good" / "bad" among filler words */
static void write_new(const char *tsv, const char *jsonl, int n) {
    FILE *a = fopen(tsv, "w"), *b = fopen(jsonl, "w");
    assert_non_null(a);
    assert_non_null(b);
    static const char *filler[] = {"the", "was", "it", "a", "and", "this", "of", "in"};
    fprintf(a, "sentence\tlabel\n");
    unsigned r = 3;
    for (int i = 0; i < n; i++) {
        const char *f[3];
        for (int k = 0; k < 3; k++) { r = r * 1103515245u + 12345u; f[k] = filler[(r >> 12) % 8]; }
        const char *w = i % 2 ? "good" : "bad", *lab = i % 2 ? "positive" : "negative";
        fprintf(a, "%s %s %s %s\t%s\n", f[0], w, f[1], f[2], lab);
        fprintf(b, "{\"sentence\": \"%s %s %s %s\", \"label\": \"%s\"}\n", f[0], w, f[1], f[2], lab);
    }
    fclose(a);
    fclose(b);
}

static void test_l2sp_replay_runs(void **s) {
    (void)s;
    char nw[1100], js[1100], run[1100], *out;
    snprintf(nw, sizeof nw, "%s", ft_test_path(g_tmp, "new.tsv"));
    snprintf(js, sizeof js, "%s", ft_test_path(g_tmp, "new.jsonl"));
    write_new(nw, js, 96);
    const char *common = "--task classify --text-column sentence --epochs 2 --batch-size 16 --lr 3e-3 --warmup-ratio 0 --seed 5 --no-db";
    double d[2];
    for (int k = 0; k < 2; k++) {
        snprintf(run, sizeof run, "%s/l2sp-%d", g_tmp, k);
        assert_int_equal(ft_test_finetune(&out, "train %s --model %s/final --data %s %s --out %s", common, g_base, nw, k ? "--l2-sp 50" : "", run), 0);
        free(out);
        d[k] = dist2(run);
        cJSON *r = record(run, "l2_sp", 1);
        if (k) {
            assert_non_null(r);
            /* the penalty of the last step's starting weights: the same size as that of the final ones */
            double pen = cJSON_GetObjectItem(r, "penalty")->valuedouble;
            printf("  last logged penalty %.6f, 25 |theta_final - theta_0|^2 = %.6f\n", pen, 25.0 * d[k]);
            assert_true(pen > 0.2 * 25.0 * d[k] && pen < 5 * 25.0 * d[k]);
        } else assert_null(r);
        cJSON_Delete(r);
    }
    printf("  |theta - theta_0|^2 after 2 epochs: without L2-SP %.5f, with --l2-sp 50 %.5f\n", d[0], d[1]);
    assert_true(d[1] < 0.5 * d[0]);
    /* rehearsal: half of each batch from the old data; the old task before / after */
    snprintf(run, sizeof run, "%s/replay", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train %s --model %s/final --data %s --replay %s --replay-ratio 0.5 --eval-old %s --out %s", common, g_base,
                                      nw, fx("sst_train.tsv"), fx("sst_dev.tsv"), run), 0);
    assert_non_null(strstr(out, "replay: 8 of every 16 rows"));
    assert_non_null(strstr(out, "old task"));
    assert_non_null(strstr(out, "forgetting"));
    /* 96 * 0.8 = 77 new training examples in batches of 8: 10 batches per epoch */
    assert_non_null(strstr(out, "20 steps"));
    free(out);
    cJSON *f = record(run, "forgetting", 1);
    assert_non_null(f);
    double before = cJSON_GetObjectItem(f, "before")->valuedouble, after = cJSON_GetObjectItem(f, "after")->valuedouble;
    printf("  replay run: old-task accuracy %.4f -> %.4f\n", before, after);
    assert_true(fabs(cJSON_GetObjectItem(f, "forgetting")->valuedouble - (before - after)) < 1e-12);
    assert_string_equal(cJSON_GetObjectItem(f, "metric")->valuestring, "accuracy");
    cJSON_Delete(f);
    /* language models take --l2-sp too (the trainer core adds it): the embedded stories260K, a few steps */
    snprintf(run, sizeof run, "%s/lm-l2sp", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train --max-steps 4 --batch-size 4 --seq-len 64 --l2-sp 0.5 --no-db --out %s", run), 0);
    assert_non_null(strstr(out, "L2-SP: penalty 0.5/2"));
    free(out);
    cJSON *lr = record(run, "l2_sp", 1);
    assert_non_null(lr);
    assert_true(cJSON_GetObjectItem(lr, "penalty")->valuedouble > 0);
    cJSON_Delete(lr);
    /* what is not supported says so */
    assert_int_not_equal(ft_test_finetune(&out, "train --model %s --data %s --task lm --replay %s --no-db --out %s/bad", fx("tiny_bert"), nw, nw, g_tmp), 0);
    assert_non_null(strstr(out, "encoder tasks"));
    free(out);
    assert_int_not_equal(ft_test_finetune(&out, "train %s --model %s --data %s --replay-ratio 1.5 --out %s/bad2", common, fx("tiny_bert"), nw, g_tmp), 0);
    assert_non_null(strstr(out, "--replay-ratio"));
    free(out);
}

static void test_stream(void **s) {
    (void)s;
    char js[1100], run[1100], *out;
    snprintf(js, sizeof js, "%s", ft_test_path(g_tmp, "stream.jsonl"));
    char tsv[1100];
    snprintf(tsv, sizeof tsv, "%s", ft_test_path(g_tmp, "stream.tsv"));
    write_new(tsv, js, 100);
    /* EOF: 100 records in batches of 16 = 7 steps, final/ written, checkpoints as usual */
    snprintf(run, sizeof run, "%s/stream", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train --task classify --stream --model %s/final --text-column sentence --batch-size 16 --lr 3e-3 "
                                            "--save-every 3 --no-db --out %s < %s", g_base, run, js), 0);
    assert_non_null(strstr(out, "end of the input stream after 7 steps"));
    free(out);
    char path[2048];
    snprintf(path, sizeof path, "%s/final/model.safetensors", run);
    assert_true(ft_path_exists(path));
    snprintf(path, sizeof path, "%s/checkpoints/step-00000006", run);
    assert_true(ft_path_exists(path));
    /* SIGTERM while it waits for more input: a checkpoint of the steps done, exit 130 */
    snprintf(run, sizeof run, "%s/stream-term", g_tmp);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    char log[1100];
    snprintf(log, sizeof log, "%s", ft_test_path(g_tmp, "term.log"));
    const char *b = getenv("BUILD");
    char bin[1100], model[1200];
    snprintf(bin, sizeof bin, "%s/finetune", b && *b ? b : "build");
    snprintf(model, sizeof model, "%s/final", g_base);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[0], 0);
        close(fds[1]);
        FILE *lf = freopen(log, "w", stderr);
        (void)lf;
        execl(bin, bin, "train", "--task", "classify", "--stream", "--model", model, "--text-column", "sentence", "--batch-size", "16", "--no-db",
              "--out", run, (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    FILE *w = fdopen(fds[1], "w");
    char *text;
    assert_int_equal(ft_file_read_all(js, &text, NULL), FT_OK);
    /* 40 records: two full batches and 8 waiting for more */
    char *p = text;
    for (int i = 0; i < 40; i++) p = strchr(p, '\n') + 1;
    fwrite(text, 1, (size_t)(p - text), w);
    fflush(w);
    free(text);
    char ck[2048];
    snprintf(ck, sizeof ck, "%s/metrics.jsonl", run);
    for (int i = 0; i < 600; i++) {   /* up to 60 s for two steps on a loaded machine */
        char *mt = NULL;
        if (ft_path_exists(ck) && ft_file_read_all(ck, &mt, NULL) == FT_OK && strstr(mt, "\"step\": 2")) { free(mt); break; }
        free(mt);
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(kill(pid, SIGTERM), 0);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    fclose(w);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 130);
    snprintf(ck, sizeof ck, "%s/checkpoints/step-00000002", run);
    assert_true(ft_path_exists(ck));
    assert_int_equal(ft_file_read_all(log, &text, NULL), FT_OK);
    assert_non_null(strstr(text, "interrupted: saving a checkpoint at step 2"));
    free(text);
}

static int setup(void **s) {
    (void)s;
    /* the "old" model: the tiny BERT fine-tuned on the SST sample */
    snprintf(g_base, sizeof g_base, "%s/base", g_tmp);
    char *out;
    int rc = ft_test_finetune(&out, "train --task classify --model %s --data %s --val-data %s --text-column sentence --epochs 4 --batch-size 16 "
                                    "--lr 3e-3 --warmup-ratio 0 --seed 7 --no-db --out %s", fx("tiny_bert"), fx("sst_train.tsv"), fx("sst_dev.tsv"), g_base);
    free(out);
    return rc;
}

int main(void) {
    if (ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft-continual") != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_l2sp_exact),
        cmocka_unit_test(test_l2sp_encoder_grad),
        cmocka_unit_test(test_l2sp_replay_runs),
        cmocka_unit_test(test_stream),
    };
    int rc = cmocka_run_group_tests(tests, setup, NULL);
    ft_test_tmpdir_remove(g_tmp);
    return rc;
}
