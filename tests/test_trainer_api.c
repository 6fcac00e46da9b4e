/* test_trainer_api.c — the trainer as a library object (train.h): a run driven from C with a sink
 * that records every call (start, steps, evaluations, messages, end); a stop flag set after k steps
 * stops cleanly with a checkpoint and the resumed run ends bit-identical to an uninterrupted one;
 * step-by-step driving (step / evaluate / save / finish); nothing is written to stdout; and the
 * data-parallel shares: rank r of W takes rows of each global batch, and the W shares together are the
 * W = 1 batch. Model: the embedded stories260K; data: the dialogue fixture. */
#include "testutil.h"
#include "train/trainer_internal.h"
#include "finetune/fileio.h"
#include "finetune/tokenizer.h"
#include "finetune/train.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[256];
static const char *k_model = "models/stories260K";

/* ---- a sink that records what it is told ---- */
typedef struct rec {
    int starts, steps, evals, records, messages, ends;
    int64_t last_step, step_seq_bad;    /* steps must come 1, 2, 3, ... (after a resume: from the checkpoint on) */
    int64_t eval_steps[64];
    int best_flags;
    int end_status;
    int64_t stop_at;                    /* set *stop after this step (0: never) */
    volatile sig_atomic_t *stop;
    char first_summary[256];
} rec;

static int r_start(void *u, const ft_train_config *c, const char *d) { ((rec *)u)->starts++; return FT_OK; }
static int r_step(void *u, const ft_train_step_info *s) {
    rec *r = u;
    if (r->steps && s->step != r->last_step + 1) r->step_seq_bad++;
    r->last_step = s->step;
    r->steps++;
    if (!isfinite(s->loss) || s->total_steps <= 0 || !s->rate_unit) r->step_seq_bad++;
    if (r->stop_at && s->step == r->stop_at) *r->stop = 1;
    return FT_OK;
}
static int r_eval(void *u, const ft_train_eval *e) {
    rec *r = u;
    if (r->evals < 64) r->eval_steps[r->evals] = e->step;
    if (!r->evals) snprintf(r->first_summary, sizeof r->first_summary, "%s", e->summary);
    r->evals++;
    r->best_flags += e->is_best;
    return FT_OK;
}
static int r_record(void *u, const char *json) { ((rec *)u)->records++; return FT_OK; }
static void r_message(void *u, int level, const char *text) { ((rec *)u)->messages++; }
static int r_end(void *u, const ft_train_result *res, int status) { rec *r = u; r->ends++; r->end_status = status; return FT_OK; }

static ft_train_sink rec_sink(rec *r) {
    return (ft_train_sink){.name = "recorder", .user = r, .on_start = r_start, .on_step = r_step, .on_eval = r_eval,
                           .on_record = r_record, .on_message = r_message, .on_end = r_end};
}

static void config(ft_train_config *c, const char *out) {
    ft_train_config_defaults(c);
    assert_int_equal(ft_train_config_set(c, "model", k_model), FT_OK);
    assert_int_equal(ft_train_config_set(c, "data", ft_fixture("train/basketball_coach.json")), FT_OK);
    assert_int_equal(ft_train_config_set(c, "out", ft_test_path(g_dir, out)), FT_OK);
    const char *kv[][2] = {{"seq-len", "32"}, {"batch-size", "4"}, {"max-steps", "6"}, {"eval-every", "3"}, {"save-every", "2"},
                           {"eval-batches", "1"}, {"lr", "1e-3"}, {"seed", "7"}, {"threads", "2"}, {"log-every", "1"}};
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++) assert_int_equal(ft_train_config_set(c, kv[i][0], kv[i][1]), FT_OK);
}

/* stdout (fd 1) into a file while the library runs */
static int stdout_to(const char *path) {
    fflush(stdout);
    int saved = dup(1), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 1);
    close(fd);
    return saved;
}
static long stdout_back(int saved, const char *path) {
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int present(void) { return ft_fixture_present("train/basketball_coach.json") && ft_path_exists(k_model); }

/* ---- a whole run through ft_trainer_run, every sink call recorded, stdout empty ---- */
static void test_run_with_sink(void **s) {
    (void)s;
    if (!present()) skip();
    ft_train_config c;
    config(&c, "full");
    rec r = {0};
    ft_train_sink sink = rec_sink(&r);
    const char *outp = ft_test_path(g_dir, "stdout.txt");
    int saved = stdout_to(outp);
    ft_trainer *t = NULL;
    int rc = ft_trainer_create(&t, &c, NULL, &sink, 1, NULL);
    ft_train_result res;
    if (rc == FT_OK) rc = ft_trainer_run(t, &res);
    ft_trainer_close(t);
    long bytes = stdout_back(saved, outp);
    if (rc) printf("  error: %s\n", ft_last_error());
    assert_int_equal(rc, FT_OK);
    printf("  sink calls: %d start, %d steps (last %lld), %d evaluations (steps", r.starts, r.steps, (long long)r.last_step, r.evals);
    for (int i = 0; i < r.evals && i < 64; i++) printf(" %lld", (long long)r.eval_steps[i]);
    printf("), %d records, %d messages, %d end; stdout: %ld bytes\n", r.records, r.messages, r.ends, bytes);
    printf("  first evaluation: %s\n", r.first_summary);
    assert_int_equal(r.starts, 1);
    assert_int_equal(r.steps, 6);
    assert_int_equal(r.step_seq_bad, 0);
    assert_int_equal(r.last_step, 6);
    assert_true(r.evals >= 3);                      /* step 0, every 3 steps, the end */
    assert_int_equal(r.eval_steps[0], 0);
    assert_int_equal(r.eval_steps[1], 3);
    assert_int_equal(r.eval_steps[r.evals - 1], 6);
    assert_true(r.records >= 1);                    /* the memory line */
    assert_true(r.messages >= 3);                   /* data summary, "training ...", peak RSS */
    assert_int_equal(r.ends, 1);
    assert_int_equal(r.end_status, FT_OK);
    assert_true(strstr(r.first_summary, "validation loss") != NULL);
    assert_int_equal(bytes, 0);
    assert_int_equal(res.steps, 6);
    assert_true(isfinite(res.final_train_loss));
    assert_true(ft_path_exists(ft_test_path(g_dir, "full/metrics.jsonl")));
    assert_true(ft_path_exists(ft_test_path(g_dir, "full/report.html")));
    assert_true(ft_path_exists(ft_test_path(g_dir, "full/final/model.safetensors")));
}

/* ---- a stop flag set after step 3: checkpoint, FT_ERR_INTERRUPTED; the resumed run is bit-identical ---- */
static void test_stop_flag_and_resume(void **s) {
    (void)s;
    if (!present()) skip();
    ft_train_config c;
    config(&c, "stopped");
    volatile sig_atomic_t stop = 0;
    rec r = {0};
    r.stop_at = 3;
    r.stop = &stop;
    ft_train_sink sink = rec_sink(&r);
    ft_trainer *t = NULL;
    assert_int_equal(ft_trainer_create(&t, &c, NULL, &sink, 1, &stop), FT_OK);
    ft_train_result res;
    int rc = ft_trainer_run(t, &res);
    int64_t done = ft_trainer_steps_done(t);
    ft_trainer_close(t);
    printf("  stop set after step 3: status %d (%s), %lld steps done, interrupted %d, checkpoint step-3 %s\n", rc, ft_last_error(),
           (long long)done, res.interrupted, ft_path_exists(ft_test_path(g_dir, "stopped/checkpoints/step-00000003")) ? "present" : "MISSING");
    assert_int_equal(rc, FT_ERR_INTERRUPTED);
    assert_int_equal(done, 3);
    assert_int_equal(res.interrupted, 1);
    assert_int_equal(r.ends, 1);
    assert_true(ft_path_exists(ft_test_path(g_dir, "stopped/checkpoints/step-00000003/state.json")));
    assert_false(ft_path_exists(ft_test_path(g_dir, "stopped/final")));
    /* resume: cfg NULL, the run directory */
    rec r2 = {0};
    ft_train_sink sink2 = rec_sink(&r2);
    stop = 0;
    assert_int_equal(ft_trainer_create(&t, NULL, ft_test_path(g_dir, "stopped"), &sink2, 1, &stop), FT_OK);
    assert_int_equal(ft_trainer_steps_done(t), 3);
    rc = ft_trainer_run(t, &res);
    ft_trainer_close(t);
    assert_int_equal(rc, FT_OK);
    assert_int_equal(r2.steps, 3);
    assert_int_equal(res.steps, 6);
    int same = ft_test_files_equal(ft_test_path(g_dir, "stopped/final/model.safetensors"), ft_test_path(g_dir, "full/final/model.safetensors"));
    printf("  resumed from step 3: %d more steps; final model %s the uninterrupted run's\n", r2.steps, same ? "byte-identical to" : "DIFFERENT from");
    assert_true(same);
}

/* ---- step by step: step / evaluate / save / finish ---- */
static void test_step_by_step(void **s) {
    (void)s;
    if (!present()) skip();
    ft_train_config c;
    config(&c, "manual");
    ft_train_config_set(&c, "max-steps", "3");
    ft_train_config_set(&c, "eval-every", "0");
    ft_train_config_set(&c, "save-every", "0");
    rec r = {0};
    ft_train_sink sink = rec_sink(&r);
    ft_trainer *t = NULL;
    assert_int_equal(ft_trainer_create(&t, &c, NULL, &sink, 1, NULL), FT_OK);
    assert_int_equal(ft_trainer_total_steps(t), 3);
    ft_train_step_info si;
    int rc, n = 0;
    while ((rc = ft_trainer_step(t, &si)) == 1) {
        n++;
        assert_int_equal(si.step, n);
        if (n == 1) {
            char *json = NULL;
            assert_int_equal(ft_trainer_evaluate(t, &json), FT_OK);
            assert_non_null(json);
            printf("  after step 1: %s\n", json);
            assert_non_null(strstr(json, "\"val_loss\""));
            assert_non_null(strstr(json, "\"type\":\"eval\""));
            free(json);
            assert_int_equal(ft_trainer_save(t), FT_OK);
            assert_true(ft_path_exists(ft_test_path(g_dir, "manual/checkpoints/step-00000001/state.json")));
        }
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, 3);
    assert_int_equal(ft_trainer_step(t, NULL), 0);    /* nothing left */
    ft_train_result res;
    assert_int_equal(ft_trainer_finish(t, &res), FT_OK);
    ft_trainer_close(t);
    printf("  %d steps by hand, %d evaluations seen by the sink, final loss %.4f\n", n, r.evals, res.final_train_loss);
    assert_int_equal(res.steps, 3);
    assert_true(r.evals >= 3);   /* step 0, the one asked for, the last step */
    assert_true(ft_path_exists(ft_test_path(g_dir, "manual/final/model.safetensors")));
}

/* ---- rank / world-size shares of a global batch ---- */
static void test_shard_rows(void **s) {
    (void)s;
    int checked = 0;
    for (int64_t n = 0; n <= 11; n++)
        for (int w = 1; w <= 4; w++) {
            int64_t next = 0;
            for (int r = 0; r < w; r++) {
                int64_t first, count;
                ft__shard_rows(n, r, w, &first, &count);
                assert_int_equal(first, next);   /* contiguous, in rank order */
                assert_true(count == n / w || count == n / w + 1);
                next = first + count;
                checked++;
            }
            assert_int_equal(next, n);           /* together: every row once */
        }
    printf("  ft__shard_rows: %d (n, rank, world) cases contiguous and complete\n", checked);
}

static void test_batch_shards(void **s) {
    (void)s;
    if (!present()) skip();
    ft_tokenizer *tok;
    assert_int_equal(ft_tokenizer_load(&tok, k_model), FT_OK);
    ft_data_options o = ft_data_default_options();
    o.seq_len = 32;
    ft_dataset *ds;
    assert_int_equal(ft_dataset_load(&ds, ft_fixture("train/basketball_coach.json"), tok, &o), FT_OK);
    ft_data_split sp;
    assert_int_equal(ft_data_split_make(&sp, ds, NULL, 0.1f, 0, 0, 7), FT_OK);
    const int B = 5, T = 32;
    for (int packed = 0; packed <= 1; packed++) {
        ft_batcher_options bo = ft_batcher_default_options();
        bo.B = B;
        bo.T = T;
        bo.mode = packed ? FT_BATCH_PACKED : FT_BATCH_PADDED;
        bo.shuffle = 1;
        ft_batcher *b;
        assert_int_equal(ft_batcher_create(&b, sp.train_ds, sp.train, sp.n_train, &bo), FT_OK);
        ft_batch whole, part, scratch, stream;
        assert_int_equal(ft_batch_alloc(&whole, B, T), FT_OK);
        assert_int_equal(ft_batch_alloc(&part, B, T), FT_OK);
        assert_int_equal(ft_batch_alloc(&scratch, B, T), FT_OK);
        assert_int_equal(ft_batch_alloc(&stream, B, T), FT_OK);
        int64_t nb = ft_batcher_batches_per_epoch(b), compared = 0;
        ft_batch_iter it = ft_batch_iter_start(7);
        for (int64_t e = 0; e < 2; e++)
            for (int64_t i = 0; i < nb; i++) {
                /* W = 1: exactly the batch of the sequential stream (today's batches) */
                assert_int_equal(ft_batcher_next(b, &it, &stream), FT_OK);
                assert_int_equal(ft__batcher_shard(b, 7, e, i, 0, 1, &scratch, &whole), FT_OK);
                assert_int_equal(whole.B * whole.T, stream.B * stream.T);
                assert_memory_equal(whole.ids, stream.ids, sizeof(int) * (size_t)(whole.B * whole.T));
                assert_memory_equal(whole.targets, stream.targets, sizeof(int) * (size_t)(whole.B * whole.T));
                assert_int_equal(whole.n_targets, stream.n_targets);
                for (int w = 2; w <= 3; w++) {
                    int64_t row = 0, targets = 0;
                    for (int r = 0; r < w; r++) {
                        assert_int_equal(ft__batcher_shard(b, 7, e, i, r, w, &scratch, &part), FT_OK);
                        size_t off = (size_t)row * (size_t)T, len = (size_t)part.B * (size_t)T;
                        assert_memory_equal(part.ids, whole.ids + off, sizeof(int) * len);
                        assert_memory_equal(part.targets, whole.targets + off, sizeof(int) * len);
                        assert_memory_equal(part.pos, whole.pos + off, sizeof(int) * len);
                        assert_memory_equal(part.seg, whole.seg + off, sizeof(int) * len);
                        row += part.B;
                        targets += part.n_targets;
                    }
                    assert_int_equal(row, whole.B);
                    assert_int_equal(targets, whole.n_targets);
                    compared++;
                }
            }
        printf("  %s batches: %lld global batches over 2 epochs; W=1 equals the sequential stream; W=2 and W=3 shares "
               "together equal it (%lld comparisons)\n", packed ? "packed" : "padded", (long long)(2 * nb), (long long)compared);
        ft_batch_free(&whole);
        ft_batch_free(&part);
        ft_batch_free(&scratch);
        ft_batch_free(&stream);
        ft_batcher_free(b);
    }
    ft_data_split_free(&sp);
    ft_dataset_free(ds);
    ft_tokenizer_free(tok);
}

static int setup(void **s) { (void)s; return ft_test_tmpdir_make(g_dir, sizeof g_dir, "ft_trainer_api"); }
static int teardown(void **s) { (void)s; return ft_test_tmpdir_remove(g_dir); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_with_sink),
        cmocka_unit_test(test_stop_flag_and_resume),
        cmocka_unit_test(test_step_by_step),
        cmocka_unit_test(test_shard_rows),
        cmocka_unit_test(test_batch_shards),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
