/* enc_data.c — labelled data for the encoder tasks and their batches (encoder_task.h). */
#include "finetune/encoder_task.h"
#include "finetune/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ft_enc_data_options ft_enc_data_default_options(void) {
    ft_enc_data_options o = {.text_column = "text", .pair_column = NULL, .label_column = "label", .label_map = NULL, .max_len = 0, .header = 1};
    return o;
}

void ft_enc_data_free(ft_enc_data *d) {
    if (!d) return;
    ft_cls_features_free(&d->f);
    ft_cls_dataset_free(&d->ds);
    ft_tok_features_free(&d->tf);
    ft_conll_free(&d->conll);
    free(d->targets);
    memset(d, 0, sizeof *d);
}

/* regression: every label name must be a number */
static int parse_targets(ft_enc_data *d, const char *path) {
    d->targets = malloc(sizeof(float) * (size_t)(d->n ? d->n : 1));
    if (!d->targets) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < d->n; i++) {
        const char *s = ft_label_map_name(&d->ds.labels, d->ds.label[i]);
        char *end = NULL;
        double v = s ? strtod(s, &end) : NAN;
        if (!s || end == s || *end || !isfinite(v))
            return ft_error(FT_ERR_FORMAT, "%s: line %d: regression label \"%s\" is not a number", path, d->ds.line[i], s ? s : "");
        d->targets[i] = (float)v;
    }
    return FT_OK;
}

int ft_enc_data_load(ft_enc_data *d, const char *path, ft_encoder_task task, const ft_tokenizer *tok,
                     const ft_enc_data_options *o) {
    memset(d, 0, sizeof *d);
    ft_enc_data_options def = ft_enc_data_default_options();
    if (!o) o = &def;
    d->task = task;
    int rc;
    if (task == FT_TASK_TOKEN) {
        rc = ft_conll_load(&d->conll, path, o->label_map);
        if (rc == FT_OK) rc = ft_tok_features_build(&d->tf, &d->conll, tok, o->max_len);
        if (rc == FT_OK) {
            d->n = d->tf.n;
            d->labels = &d->conll.tag_map;
            d->max_len = d->tf.max_len;
            d->truncated = d->tf.truncated;
            if (d->n == 0) rc = ft_error(FT_ERR_FORMAT, "%s: no sentences", path);
        }
    } else {
        ft_cls_options co = ft_cls_default_options();
        co.text_column = o->text_column ? o->text_column : "text";
        co.pair_column = o->pair_column && o->pair_column[0] ? o->pair_column : NULL;
        co.label_column = o->label_column ? o->label_column : "label";
        co.label_map = task == FT_TASK_CLASSIFY ? o->label_map : NULL;
        co.no_labels = task == FT_TASK_MLM;
        co.header = o->header;
        rc = ft_cls_dataset_load(&d->ds, path, &co);
        /* the default column name missing: the names public datasets use (GLUE's sentence / sentence1 +
         * sentence2, reviews, tweets), with a note saying which was taken */
        static const char *const single[] = {"sentence", "review", "content", "tweet", "document", "question"};
        int defaulted = !strcmp(co.text_column, "text") && !co.pair_column && o->header != 0 && co.format != FT_CLS_JSONL;
        if (rc == FT_ERR_NOT_FOUND && defaulted && strstr(ft_last_error(), "no text column")) {
            char first_error[512];
            snprintf(first_error, sizeof first_error, "%s", ft_last_error());
            co.text_column = "sentence1";
            co.pair_column = "sentence2";
            rc = ft_cls_dataset_load(&d->ds, path, &co);
            co.pair_column = NULL;
            for (size_t i = 0; rc == FT_ERR_NOT_FOUND && i < sizeof single / sizeof *single && strstr(ft_last_error(), "no text column"); i++) {
                co.text_column = single[i];
                rc = ft_cls_dataset_load(&d->ds, path, &co);
            }
            if (rc == FT_OK)
                fprintf(stderr, "note: %s has no 'text' column; using '%s'%s (choose with --text-column / --pair-column)\n", path,
                        d->ds.pair ? "sentence1" : co.text_column, d->ds.pair ? " and 'sentence2' as a sentence pair" : "");
            else if (strstr(ft_last_error(), "no text column")) rc = ft_error(FT_ERR_NOT_FOUND, "%s", first_error);
        }
        if (rc == FT_OK) {
            d->n = d->ds.n;
            if (d->n == 0) rc = ft_error(FT_ERR_FORMAT, "%s: no examples", path);
        }
        if (rc == FT_OK && task == FT_TASK_REGRESS) rc = parse_targets(d, path);
        if (rc == FT_OK) rc = ft_cls_features_build(&d->f, &d->ds, tok, o->max_len);
        if (rc == FT_OK) {
            d->labels = &d->ds.labels;
            d->max_len = d->f.max_len;
            d->truncated = d->f.truncated;
        }
    }
    if (rc < 0) ft_enc_data_free(d);
    return rc;
}

int ft_enc_data_length(const ft_enc_data *d, int64_t i) {
    const int64_t *off = d->task == FT_TASK_TOKEN ? d->tf.off : d->f.off;
    return (int)(off[i + 1] - off[i]);
}

int ft_enc_data_label(const ft_enc_data *d, int64_t i) {
    return d->task == FT_TASK_CLASSIFY ? d->ds.label[i] : 0;
}

int ft_enc_batch_alloc(ft_enc_batch *eb, int B, int T) {
    memset(eb, 0, sizeof *eb);
    FT_TRY(ft_cls_batch_alloc(&eb->b, B, T));
    eb->targets = malloc(sizeof(float) * (size_t)B);
    if (!eb->targets) { ft_cls_batch_free(&eb->b); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    return FT_OK;
}

void ft_enc_batch_free(ft_enc_batch *eb) {
    if (!eb) return;
    ft_cls_batch_free(&eb->b);
    free(eb->targets);
    memset(eb, 0, sizeof *eb);
}

int ft_enc_batch_fill(ft_enc_batch *eb, const ft_enc_data *d, const int64_t *idx, int n, const ft_tokenizer *tok,
                      int vocab_size, float mlm_probability, uint64_t seed) {
    int pad = ft_cls_pad_id(tok);
    if (d->task == FT_TASK_TOKEN) return ft_cls_batch_fill_tokens(&eb->b, &d->tf, idx, n, pad, 0);
    FT_TRY(ft_cls_batch_fill(&eb->b, &d->f, idx, n, pad, 0));
    if (d->task == FT_TASK_REGRESS)
        for (int r = 0; r < n; r++) eb->targets[r] = d->targets[idx[r]];
    if (d->task == FT_TASK_MLM) {
        int mask_id = ft_tokenizer_mask(tok);
        if (mask_id < 0) return ft_error(FT_ERR_INVALID, "mlm: the tokenizer has no mask token ([MASK] / <mask>)");
        FT_TRY(ft_mlm_mask(eb->b.ids, eb->b.labels, eb->b.mask, eb->b.B * eb->b.T, tok, mask_id, vocab_size,
                           (double)mlm_probability, seed, NULL));
    }
    return FT_OK;
}

ft_encoder_inputs ft_enc_batch_inputs(const ft_enc_batch *eb, const ft_encoder_model *m) {
    const ft_encoder_config *c = ft_encoder_get_config(m);
    ft_encoder_task task = ft_encoder_get_task(m);
    ft_encoder_inputs in = {0};
    in.ids = eb->b.ids;
    in.type_ids = c->type_vocab_size > 1 ? eb->b.type_ids : NULL;
    in.mask = eb->b.mask;
    in.B = eb->b.B;
    in.T = eb->b.T;
    if (task == FT_TASK_REGRESS) in.targets = eb->targets;
    else in.labels = eb->b.labels;
    return in;
}
