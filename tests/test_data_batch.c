/* test_data_batch.c — batches for ft_model_forward (data.h): padded and packed rows, positions and
 * segments, targets that never cross examples, padding never counted, windows for long examples,
 * the per-epoch order and iterator save/restore (bit-exact next batch, also from a fresh batcher),
 * validation split / k folds / separate file determinism, and an end-to-end check with a real model
 * (tests/fixtures/decoder/llama_gqa, vocabulary 512 = tok512.bin): the logits of every example in a
 * packed row equal the logits of that example run alone. */
#include "testutil.h"

#include "finetune/backend.h"
#include "finetune/data.h"
#include "finetune/model.h"
#include "finetune/ops.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ft_tokenizer *g_gpt2;
static ft_dataset *g_dd;  /* the bundled fundialogues set, GPT-2 tokens, seq_len 256 */

static int setup(void **state) {
    (void)state;
    ft_log_set_level(FT_LOG_ERROR);
    if (ft_tokenizer_load(&g_gpt2, ft_fixture("tokenizer/gpt2")) < 0) return -1;
    ft_data_options o = ft_data_default_options();
    o.seq_len = 256;
    return ft_dataset_load(&g_dd, FT_DATA_DEFAULT_PATH, g_gpt2, &o) == FT_OK ? 0 : -1;
}
static int teardown(void **state) {
    (void)state;
    ft_dataset_free(g_dd);
    ft_tokenizer_free(g_gpt2);
    return 0;
}

static int64_t *all_indices(const ft_dataset *ds) {
    int64_t n = ft_dataset_size(ds);
    int64_t *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = i;
    return v;
}

/* learned targets of examples idx[0..n) (positions 1.. of each) */
static int64_t learned_total(const ft_dataset *ds, const int64_t *idx, int64_t n) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *L;
        int len;
        ft_dataset_example(ds, idx[i], NULL, &L, &len);
        for (int j = 1; j < len; j++) k += L[j];
    }
    return k;
}

/* Checks the invariants of one batch; returns its number of segments that hold an example.
 * Every counted target is the next id of the same segment at the next position; the last token of a
 * segment has no target; pos restarts at 0 and counts up within a segment; padding (pad id,
 * ignored) is a segment of its own at the end of a row. */
static int check_batch(const ft_batch *b, int pad_id, int packed) {
    int examples = 0, targets = 0;
    for (int r = 0; r < b->B; r++) {
        const int *ids = b->ids + r * b->T, *tg = b->targets + r * b->T, *pos = b->pos + r * b->T, *seg = b->seg + r * b->T;
        assert_int_equal(pos[0], 0);
        assert_int_equal(seg[0], 0);
        for (int t = 0; t < b->T; t++) {
            int same_next = t + 1 < b->T && seg[t + 1] == seg[t];
            if (t > 0 && seg[t] == seg[t - 1]) assert_int_equal(pos[t], pos[t - 1] + 1);
            if (t > 0 && seg[t] != seg[t - 1]) {
                assert_int_equal(seg[t], seg[t - 1] + 1);
                assert_int_equal(pos[t], 0);
            }
            if (tg[t] != FT_IGNORE_INDEX) {
                assert_true(same_next);               /* never across examples */
                assert_int_equal(tg[t], ids[t + 1]);
                targets++;
            }
            if (!same_next && tg[t] != FT_IGNORE_INDEX) fail();
        }
        /* segments: examples, then at most one padding run */
        int last = seg[b->T - 1];
        int pad_run = ids[b->T - 1] == pad_id && tg[b->T - 1] == FT_IGNORE_INDEX;
        int nseg = last + 1;
        if (pad_run) {
            int t = b->T - 1;
            while (t > 0 && seg[t - 1] == last) t--;
            int all_pad = 1;
            for (int j = t; j < b->T; j++) all_pad &= ids[j] == pad_id && tg[j] == FT_IGNORE_INDEX;
            if (all_pad) nseg--;  /* (an example ending in EOS == pad still has a counted target before) */
        }
        if (!packed) assert_true(nseg <= 1);
        examples += nseg;
    }
    assert_int_equal(targets, b->n_targets);
    return examples;
}

static void run_epoch(ft_batcher *bt, const ft_dataset *ds, int packed, const char *name) {
    int64_t nb = ft_batcher_batches_per_epoch(bt);
    ft_batch b;
    int B = 4, T = 256;
    assert_int_equal(ft_batch_alloc(&b, B, T), FT_OK);
    ft_batch_iter it = ft_batch_iter_start(7);
    int64_t targets = 0, examples = 0;
    for (int64_t k = 0; k < nb; k++) {
        assert_int_equal(ft_batcher_next(bt, &it, &b), FT_OK);
        int seen = check_batch(&b, ft_dataset_pad_id(ds), packed);
        assert_int_equal(seen, b.n_examples);
        targets += b.n_targets;
        examples += b.n_examples;
    }
    assert_int_equal(it.epoch, 0);
    assert_int_equal(it.cursor, nb);
    printf("%s: %lld batches of %dx%d, %lld examples in %lld rows, %lld targets (epoch total %lld), "
           "fill %.1f%%\n", name, (long long)nb, B, T, (long long)examples, (long long)ft_batcher_rows(bt),
           (long long)targets, (long long)ft_batcher_targets_per_epoch(bt),
           100.0 * (double)ft_dataset_stats(ds)->tokens / (double)(nb * B * T));
    assert_int_equal(examples, ft_batcher_units(bt));
    assert_int_equal(targets, ft_batcher_targets_per_epoch(bt));
    ft_batch_free(&b);
}

static void test_padded_and_packed(void **state) {
    (void)state;
    int64_t n = ft_dataset_size(g_dd);
    int64_t *idx = all_indices(g_dd);
    int64_t learned = learned_total(g_dd, idx, n);
    ft_batcher_options o = ft_batcher_default_options();
    o.B = 4;
    o.T = 256;
    ft_batcher *pad, *pack;
    assert_int_equal(ft_batcher_create(&pad, g_dd, idx, n, &o), FT_OK);
    o.mode = FT_BATCH_PACKED;
    assert_int_equal(ft_batcher_create(&pack, g_dd, idx, n, &o), FT_OK);
    assert_int_equal(ft_batcher_units(pad), n);
    assert_int_equal(ft_batcher_targets_per_epoch(pad), learned);  /* every learned token once */
    assert_int_equal(ft_batcher_targets_per_epoch(pack), learned);
    assert_int_equal(ft_batcher_batches_per_epoch(pad), (n + 3) / 4);
    assert_true(ft_batcher_rows(pack) * 3 < n);                   /* short dialogues: several per row */
    run_epoch(pad, g_dd, 0, "padded");
    run_epoch(pack, g_dd, 1, "packed");
    ft_batcher_free(pad);
    ft_batcher_free(pack);
    free(idx);
}

/* EOS is learned although GPT-2's pad id is its EOS; padding is never counted */
static void test_eos_is_target_when_pad_is_eos(void **state) {
    (void)state;
    int eos = ft_dataset_eos_id(g_dd);
    assert_int_equal(ft_dataset_pad_id(g_dd), eos);
    int64_t idx[1] = {0};
    const int *ids;
    int n;
    ft_dataset_example(g_dd, 0, &ids, NULL, &n);
    ft_batcher_options o = ft_batcher_default_options();
    o.B = 2;
    o.T = 256;
    o.shuffle = 0;
    ft_batcher *bt;
    assert_int_equal(ft_batcher_create(&bt, g_dd, idx, 1, &o), FT_OK);
    ft_batch b;
    ft_batch_alloc(&b, 2, 256);
    ft_batch_iter it = ft_batch_iter_start(0);
    assert_int_equal(ft_batcher_next(bt, &it, &b), FT_OK);
    printf("example 0: %d tokens; target[%d] = %d (EOS %d); targets counted %d of %d positions\n", n, n - 2,
           b.targets[n - 2], eos, b.n_targets, b.B * b.T);
    assert_int_equal(b.ids[n - 1], eos);
    assert_int_equal(b.targets[n - 2], eos);        /* the EOS is predicted ... */
    assert_int_equal(b.targets[n - 1], FT_IGNORE_INDEX);
    for (int t = n; t < b.B * b.T; t++) {           /* ... and the EOS-valued padding is not */
        assert_int_equal(b.ids[t], eos);
        assert_int_equal(b.targets[t], FT_IGNORE_INDEX);
    }
    assert_int_equal(b.n_targets, n - 1);           /* DailyDialog-style data: train_on all */
    assert_int_equal(b.n_examples, 1);
    assert_int_equal(b.seg[n - 1], 0);
    assert_int_equal(b.seg[n], 1);                   /* padding: its own segment */
    assert_int_equal(b.seg[256], 0);                 /* the empty second row */
    ft_batch_free(&b);
    ft_batcher_free(bt);
}

static void test_dynamic_padding_and_drop_last(void **state) {
    (void)state;
    int64_t n = ft_dataset_size(g_dd);
    int64_t *idx = all_indices(g_dd);
    ft_batcher_options o = ft_batcher_default_options();
    o.B = 8;
    o.T = 256;
    o.dynamic_pad = 1;
    o.shuffle = 0;
    ft_batcher *bt;
    assert_int_equal(ft_batcher_create(&bt, g_dd, idx, n, &o), FT_OK);
    ft_batch b;
    ft_batch_alloc(&b, 8, 256);
    ft_batch_iter it = ft_batch_iter_start(0);
    assert_int_equal(ft_batcher_next(bt, &it, &b), FT_OK);
    int longest = 0;
    for (int r = 0; r < 8; r++) { int len; ft_dataset_example(g_dd, r, NULL, NULL, &len); if (len > longest) longest = len; }
    printf("dynamic padding: longest %d -> T %d\n", longest, b.T);
    assert_int_equal(b.T, (longest + 7) / 8 * 8);
    check_batch(&b, ft_dataset_pad_id(g_dd), 0);
    ft_batcher_free(bt);
    o.dynamic_pad = 0;
    o.drop_last = 1;
    assert_int_equal(ft_batcher_create(&bt, g_dd, idx, n, &o), FT_OK);
    assert_int_equal(ft_batcher_batches_per_epoch(bt), n / 8);
    ft_batcher_free(bt);
    assert_int_equal(ft_batcher_create(&bt, g_dd, idx, 5, &o), FT_ERR_RANGE);  /* fewer than B rows */
    /* a batch too small for the options */
    o.drop_last = 0;
    assert_int_equal(ft_batcher_create(&bt, g_dd, idx, n, &o), FT_OK);
    ft_batch small;
    ft_batch_alloc(&small, 4, 256);
    assert_int_equal(ft_batcher_next(bt, &it, &small), FT_ERR_INVALID);
    ft_batch_free(&small);
    ft_batcher_free(bt);
    ft_batch_free(&b);
    free(idx);
}

/* examples longer than T: windows overlapping by one token, each target once */
static void test_windows(void **state) {
    (void)state;
    ft_data_options d = ft_data_default_options();
    d.seq_len = 4096;
    d.truncate = FT_TRUNC_NONE;
    ft_dataset *ds;
    assert_int_equal(ft_dataset_load(&ds, ft_fixture("data/text_mini.txt"), g_gpt2, &d), FT_OK);
    int64_t *idx = all_indices(ds);
    int64_t n = ft_dataset_size(ds);
    int64_t learned = learned_total(ds, idx, n);
    for (int mode = 0; mode < 2; mode++) {
        ft_batcher_options o = ft_batcher_default_options();
        o.B = 3;
        o.T = 32;
        o.mode = (ft_batch_mode)mode;
        ft_batcher *bt;
        assert_int_equal(ft_batcher_create(&bt, ds, idx, n, &o), FT_OK);
        int64_t expect_units = 0;
        for (int64_t i = 0; i < n; i++) {
            int len;
            ft_dataset_example(ds, i, NULL, NULL, &len);
            expect_units += len <= 32 ? 1 : (len - 1 + 30) / 31;  /* ceil((len-1)/(T-1)) */
        }
        printf("%s windows of 32: %lld units (expected %lld), %lld targets (learned %lld)\n", mode ? "packed" : "padded",
               (long long)ft_batcher_units(bt), (long long)expect_units, (long long)ft_batcher_targets_per_epoch(bt),
               (long long)learned);
        assert_int_equal(ft_batcher_units(bt), expect_units);
        assert_int_equal(ft_batcher_targets_per_epoch(bt), learned);
        ft_batch b;
        ft_batch_alloc(&b, 3, 32);
        ft_batch_iter it = ft_batch_iter_start(1);
        int64_t got = 0;
        for (int64_t k = 0; k < ft_batcher_batches_per_epoch(bt); k++) {
            assert_int_equal(ft_batcher_next(bt, &it, &b), FT_OK);
            check_batch(&b, ft_dataset_pad_id(ds), mode);
            got += b.n_targets;
        }
        assert_int_equal(got, learned);
        ft_batch_free(&b);
        ft_batcher_free(bt);
    }
    free(idx);
    ft_dataset_free(ds);
}

static int batch_equal(const ft_batch *a, const ft_batch *b) {
    size_t n = (size_t)a->B * (size_t)a->T * sizeof(int);
    return a->B == b->B && a->T == b->T && a->n_targets == b->n_targets && a->n_examples == b->n_examples &&
           !memcmp(a->ids, b->ids, n) && !memcmp(a->targets, b->targets, n) && !memcmp(a->pos, b->pos, n) &&
           !memcmp(a->seg, b->seg, n);
}

static void test_iterator_resume(void **state) {
    (void)state;
    int64_t n = ft_dataset_size(g_dd);
    int64_t *idx = all_indices(g_dd);
    for (int mode = 0; mode < 2; mode++) {
        ft_batcher_options o = ft_batcher_default_options();
        o.B = 4;
        o.T = 256;
        o.mode = (ft_batch_mode)mode;
        ft_batcher *bt, *fresh;
        assert_int_equal(ft_batcher_create(&bt, g_dd, idx, n, &o), FT_OK);
        int64_t nb = ft_batcher_batches_per_epoch(bt);
        ft_batch a, b;
        ft_batch_alloc(&a, 4, 256);
        ft_batch_alloc(&b, 4, 256);
        /* run 1.5 epochs, saving the state at a few points; resume from each in a new batcher */
        ft_batch_iter it = ft_batch_iter_start(1234);
        int64_t save_at[] = {0, 3, nb - 1, nb, nb + 2};
        ft_batch_iter saved[5];
        int ns = 0;
        ft_batch *ref = calloc((size_t)(2 * nb), sizeof *ref);
        for (int64_t k = 0; k < nb + nb / 2; k++) {
            if (ns < 5 && save_at[ns] == k) saved[ns++] = it;
            ft_batch_alloc(&ref[k], 4, 256);
            assert_int_equal(ft_batcher_next(bt, &it, &ref[k]), FT_OK);
        }
        assert_int_equal(it.epoch, 1);
        assert_int_equal(it.cursor, nb / 2);
        for (int s = 0; s < ns; s++) {
            assert_int_equal(ft_batcher_create(&fresh, g_dd, idx, n, &o), FT_OK);
            ft_batch_iter r = saved[s];  /* three integers restored, as from a checkpoint */
            assert_int_equal(ft_batcher_next(fresh, &r, &a), FT_OK);
            assert_true(batch_equal(&a, &ref[save_at[s]]));
            assert_int_equal(ft_batcher_next(fresh, &r, &a), FT_OK);
            assert_true(batch_equal(&a, &ref[save_at[s] + 1]));
            ft_batcher_free(fresh);
        }
        /* epochs differ in order, contain the same examples; another seed gives another order */
        int same_first = batch_equal(&ref[0], &ref[nb]);
        ft_batch_iter other = ft_batch_iter_start(99);
        assert_int_equal(ft_batcher_next(bt, &other, &b), FT_OK);
        printf("%s: %lld batches/epoch; resumed bit-exactly at 5 points; epoch 1 batch 0 %s epoch 0 batch 0; "
               "seed 99 %s\n", mode ? "packed" : "padded", (long long)nb, same_first ? "==" : "!=",
               batch_equal(&b, &ref[0]) ? "same" : "different");
        assert_false(same_first);
        assert_false(batch_equal(&b, &ref[0]));
        for (int64_t k = 0; k < nb + nb / 2; k++) ft_batch_free(&ref[k]);
        free(ref);
        ft_batch_free(&a);
        ft_batch_free(&b);
        ft_batcher_free(bt);
    }
    /* no shuffle: dataset order */
    ft_batcher_options o = ft_batcher_default_options();
    o.B = 2;
    o.T = 256;
    o.shuffle = 0;
    ft_batcher *bt;
    assert_int_equal(ft_batcher_create(&bt, g_dd, idx, n, &o), FT_OK);
    ft_batch b;
    ft_batch_alloc(&b, 2, 256);
    ft_batch_iter it = ft_batch_iter_start(5);
    ft_batcher_next(bt, &it, &b);
    const int *ids;
    int len;
    ft_dataset_example(g_dd, 1, &ids, NULL, &len);
    assert_memory_equal(b.ids + 256, ids, (size_t)len * sizeof *ids);
    ft_batch_free(&b);
    ft_batcher_free(bt);
    free(idx);
}

static void test_splits(void **state) {
    (void)state;
    int64_t n = ft_dataset_size(g_dd);
    ft_data_split a, b, c;
    assert_int_equal(ft_data_split_make(&a, g_dd, NULL, 0.2, 0, 0, 42), FT_OK);
    assert_int_equal(ft_data_split_make(&b, g_dd, NULL, 0.2, 0, 0, 42), FT_OK);
    assert_int_equal(ft_data_split_make(&c, g_dd, NULL, 0.2, 0, 0, 43), FT_OK);
    printf("split 0.2 of %lld: train %lld, val %lld; val[0..3] = %lld %lld %lld (seed 43: %lld %lld %lld)\n",
           (long long)n, (long long)a.n_train, (long long)a.n_val, (long long)a.val[0], (long long)a.val[1],
           (long long)a.val[2], (long long)c.val[0], (long long)c.val[1], (long long)c.val[2]);
    assert_int_equal(a.n_val, (int64_t)llround(0.2 * (double)n));
    assert_int_equal(a.n_train + a.n_val, n);
    assert_memory_equal(a.val, b.val, (size_t)a.n_val * sizeof *a.val);
    assert_memory_equal(a.train, b.train, (size_t)a.n_train * sizeof *a.train);
    assert_true(memcmp(a.val, c.val, (size_t)a.n_val * sizeof *a.val) != 0);
    char *seen = calloc((size_t)n, 1);
    for (int64_t i = 0; i < a.n_train; i++) seen[a.train[i]]++;
    for (int64_t i = 0; i < a.n_val; i++) seen[a.val[i]]++;
    for (int64_t i = 0; i < n; i++) assert_int_equal(seen[i], 1);  /* disjoint, complete */
    for (int64_t i = 1; i < a.n_val; i++) assert_true(a.val[i] > a.val[i - 1]);
    ft_data_split_free(&a);
    ft_data_split_free(&b);
    ft_data_split_free(&c);
    /* k folds: the validation parts partition the data; each fold is deterministic */
    memset(seen, 0, (size_t)n);
    for (int f = 0; f < 5; f++) {
        assert_int_equal(ft_data_split_make(&a, g_dd, NULL, 0.2, 5, f, 7), FT_OK);
        assert_int_equal(ft_data_split_make(&b, g_dd, NULL, 0.9, 5, f, 7), FT_OK);  /* fraction ignored */
        assert_int_equal(a.n_val, b.n_val);
        assert_memory_equal(a.val, b.val, (size_t)a.n_val * sizeof *a.val);
        assert_int_equal(a.n_train + a.n_val, n);
        assert_true(a.n_val == n / 5 || a.n_val == n / 5 + 1);
        for (int64_t i = 0; i < a.n_val; i++) seen[a.val[i]]++;
        ft_data_split_free(&a);
        ft_data_split_free(&b);
    }
    for (int64_t i = 0; i < n; i++) assert_int_equal(seen[i], 1);
    free(seen);
    assert_int_equal(ft_data_split_make(&a, g_dd, NULL, 0.2, 5, 5, 7), FT_ERR_INVALID);
    assert_non_null(strstr(ft_last_error(), "fold 5 out of range"));
    assert_int_equal(ft_data_split_make(&a, g_dd, NULL, 1.0, 0, 0, 7), FT_ERR_INVALID);
    /* no validation; a separate validation file */
    assert_int_equal(ft_data_split_make(&a, g_dd, NULL, 0.0, 0, 0, 7), FT_OK);
    assert_int_equal(a.n_val, 0);
    assert_null(a.val);
    ft_data_split_free(&a);
    ft_data_options d = ft_data_default_options();
    d.seq_len = 256;
    ft_dataset *val;
    assert_int_equal(ft_dataset_load(&val, ft_fixture("data/dailydialog_mini.txt"), g_gpt2, &d), FT_OK);
    assert_int_equal(ft_data_split_make(&a, g_dd, val, 0.2, 0, 0, 7), FT_OK);
    assert_int_equal(a.n_train, n);
    assert_int_equal(a.n_val, 6);
    assert_ptr_equal(a.val_ds, val);
    ft_batcher_options o = ft_batcher_default_options();
    o.B = 2;
    o.T = 256;
    o.shuffle = 0;
    ft_batcher *vb;
    assert_int_equal(ft_batcher_create(&vb, a.val_ds, a.val, a.n_val, &o), FT_OK);
    assert_int_equal(ft_batcher_batches_per_epoch(vb), 3);
    ft_batcher_free(vb);
    ft_data_split_free(&a);
    ft_dataset_free(val);
}

/* packed rows through a real model: each example's logits equal those of the example alone */
static void test_packed_forward_matches_alone(void **state) {
    (void)state;
    if (!ft_fixture_present("decoder/llama_gqa/config.json") || !ft_fixture_present("tokenizer/tok512.bin")) return;
    ft_tokenizer *tok;
    assert_int_equal(ft_tokenizer_load(&tok, ft_fixture("tokenizer")), FT_OK);  /* tok512.bin */
    ft_model *m;
    assert_int_equal(ft_model_load(&m, ft_fixture("decoder/llama_gqa"), ft_backend_cpu()), FT_OK);
    const int V = ft_model_get_config(m)->vocab_size;
    assert_int_equal(V, ft_tokenizer_vocab_size(tok));
    ft_data_options d = ft_data_default_options();
    d.seq_len = 64;
    ft_dataset *ds;
    assert_int_equal(ft_dataset_load(&ds, ft_fixture("data/fundialogues_mini.json"), tok, &d), FT_OK);
    int64_t *idx = all_indices(ds);
    ft_batcher_options o = ft_batcher_default_options();
    o.B = 2;
    o.T = 128;
    o.mode = FT_BATCH_PACKED;
    o.shuffle = 0;
    ft_batcher *bt;
    assert_int_equal(ft_batcher_create(&bt, ds, idx, ft_dataset_size(ds), &o), FT_OK);
    ft_batch b;
    ft_batch_alloc(&b, 2, 128);
    ft_batch_iter it = ft_batch_iter_start(0);
    assert_int_equal(ft_batcher_next(bt, &it, &b), FT_OK);
    assert_true(b.n_examples >= 3);
    float loss_packed;
    assert_int_equal(ft_model_prepare(m, 2, 128), FT_OK);
    assert_int_equal(ft_model_forward(m, b.ids, b.targets, b.pos, b.seg, 2, 128, &loss_packed), FT_OK);
    float *packed = malloc((size_t)2 * 128 * V * sizeof *packed);
    memcpy(packed, ft_model_logits(m), (size_t)2 * 128 * V * sizeof *packed);
    double worst = 0, sum_loss = 0;
    int segs = 0, counted = 0;
    for (int r = 0; r < 2; r++) {
        for (int t = 0; t < 128;) {
            int s = b.seg[r * 128 + t], e = t;
            while (e < 128 && b.seg[r * 128 + e] == s) e++;
            int len = e - t;
            int is_pad = e == 128;  /* the row's last segment is padding when all pad and ignored */
            for (int j = t; j < e && is_pad; j++)
                is_pad = b.ids[r * 128 + j] == ft_dataset_pad_id(ds) && b.targets[r * 128 + j] == FT_IGNORE_INDEX;
            if (!is_pad && len >= 2) {
                float loss_alone;
                assert_int_equal(ft_model_prepare(m, 1, len), FT_OK);
                assert_int_equal(ft_model_forward(m, b.ids + r * 128 + t, b.targets + r * 128 + t, NULL, NULL, 1, len,
                                                  &loss_alone), FT_OK);
                ft_cmp c = ft_compare_f32(packed + (size_t)(r * 128 + t) * V, ft_model_logits(m), (size_t)len * V);
                if (c.max_abs > worst) worst = c.max_abs;
                int nt = ft_model_num_targets(m);
                sum_loss += (double)loss_alone * nt;
                counted += nt;
                segs++;
            }
            t = e;
        }
    }
    printf("packed forward: %d examples in 2 rows of 128; logits max abs diff vs alone %.3g; loss packed %.6f, "
           "token-weighted mean of alone %.6f (%d targets)\n", segs, worst, loss_packed, sum_loss / counted, counted);
    assert_int_equal(counted, b.n_targets);
    assert_true(worst < 1e-4);
    assert_true(fabs(loss_packed - sum_loss / counted) < 1e-4);
    free(packed);
    ft_batch_free(&b);
    ft_batcher_free(bt);
    free(idx);
    ft_dataset_free(ds);
    ft_model_free(m);
    ft_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_padded_and_packed),
        cmocka_unit_test(test_eos_is_target_when_pad_is_eos),
        cmocka_unit_test(test_dynamic_padding_and_drop_last),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_iterator_resume),
        cmocka_unit_test(test_splits),
        cmocka_unit_test(test_packed_forward_matches_alone),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
