/* cmd_eval_encoder.c — `finetune eval` for encoder models: loss and the task's metrics
 * (accuracy, precision / recall / F1, ECE, ... see encoder_task.h) of a fine-tuned encoder on a
 * labelled file. */
#include "cli.h"
#include "finetune/encoder_task.h"
#include "finetune/lora.h"
#include "finetune/multitask.h"
#include "finetune/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ft_cmd_eval_encoder(const ft_opt *opts, const char *dir, const char *data) {
    long seq_len, bs;
    if (ft_opt_int(opts, "seq-len", 0, &seq_len) || ft_opt_int(opts, "batch-size", 32, &bs)) return 2;
    ft_encoder_options eo = ft_encoder_default_options();
    ft_tokenizer *tok = NULL;
    ft_encoder_model *m = NULL;
    ft_multitask *mt = NULL;   /* a multi-task model: m is its encoder with the --head task selected */
    ft_enc_data d = {0};
    ft_enc_eval ev = {0};
    ft_label_map given = {0};
    int rc = FT_OK;
    const char *task = ft_opt_str(opts, "task", NULL);
    if (task && strcmp(task, "auto")) rc = ft_encoder_task_from_name(task, &eo.task);
    if (rc == FT_OK) rc = ft_tokenizer_load(&tok, dir);
    const ft_backend *be = NULL;
    if (rc == FT_OK) rc = ft_backend_for_precision(ft_opt_str(opts, "precision", "f32"), &be);
    if (rc == FT_OK && ft_multitask_dir_is_multitask(dir)) {
        const char *head = ft_opt_str(opts, "head", NULL);
        rc = ft_multitask_load(&mt, dir, be);
        int h = rc == FT_OK && head ? ft_multitask_find(mt, head) : 0;
        if (rc == FT_OK && h < 0) rc = ft_error(FT_ERR_NOT_FOUND, "--head %s: the model's tasks are %s ...", head, ft_multitask_name(mt, 0));
        if (rc == FT_OK) rc = ft_multitask_select(mt, h);
        if (rc == FT_OK) {
            m = ft_multitask_encoder(mt);
            if (!head) fprintf(stderr, "multi-task model: evaluating the head of task %s (--head NAME for another)\n", ft_multitask_name(mt, h));
        }
    } else if (rc == FT_OK) rc = (ft_encoder_dir_is_adapter(dir) ? ft_encoder_load_with_adapter(&m, dir, &eo, be) : ft_encoder_load_ex(&m, dir, &eo, be));
    /* labels are read as the model's names (an unknown label is an error naming its line) */
    ft_encoder_task t = m ? ft_encoder_get_task(m) : FT_TASK_CLASSIFY;
    if (rc == FT_OK && (t == FT_TASK_CLASSIFY || t == FT_TASK_TOKEN) && ft_encoder_label_name(m, 0)) {
        int K = ft_encoder_get_config(m)->num_labels;
        const char **names = malloc(sizeof *names * (size_t)K);
        if (!names) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        for (int k = 0; names && k < K; k++) names[k] = ft_encoder_label_name(m, k);
        if (rc == FT_OK) rc = ft_label_map_init(&given, names, K);
        free(names);
    }
    if (rc == FT_OK) {
        ft_enc_data_options o = ft_enc_data_default_options();
        o.text_column = ft_opt_str(opts, "text-column", "text");
        o.pair_column = ft_opt_str(opts, "pair-column", NULL);
        o.label_column = ft_opt_str(opts, "label-column", "label");
        o.label_map = given.n ? &given : NULL;
        o.max_len = (int)seq_len;
        o.header = !ft_opt_flag(opts, "no-header");
        rc = ft_enc_data_load(&d, data, t, tok, &o);
    }
    const char *gcol = ft_opt_str(opts, "group-column", NULL);
    if (rc == FT_OK && gcol && t != FT_TASK_CLASSIFY)
        rc = ft_error(FT_ERR_INVALID, "--group-column needs a classifier; the model does %s", ft_encoder_task_name(t));
    if (rc == FT_OK) rc = ft_enc_evaluate(&ev, m, tok, &d, NULL, d.n, (int)bs, 0.15f, 1234);
    char *fair_text = NULL;
    size_t fair_len = 0;
    if (rc == FT_OK && gcol) {
        FILE *ft = open_memstream(&fair_text, &fair_len);
        if (!ft) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        else {
            rc = ft_cli_eval_fairness(opts, data, &d, &ev, ft_opt_flag(opts, "json"), ft);
            fclose(ft);
        }
    }
    int status = 0;
    if (rc < 0) status = ft_cli_fail("eval", rc);
    else if (ft_opt_flag(opts, "json")) printf("%s\n", ev.json);
    else {
        printf("%s: loss %.4f  examples %lld", ft_encoder_task_name(t), ev.loss, (long long)ev.examples);
        const ft_metrics_report *r = &ev.report;
        if (t == FT_TASK_CLASSIFY) {
            printf("  accuracy %.4f  precision %.4f  recall %.4f  F1 %.4f (macro)  ECE %.4f", r->accuracy, r->precision_macro,
                   r->recall_macro, r->f1_macro, r->ece);
            if (r->num_classes == 2) printf("  ROC-AUC %.4f", r->roc_auc);
            printf("\n%-20s %9s %9s %9s %8s\n", "label", "precision", "recall", "f1", "support");
            for (int k = 0; k < r->num_classes; k++) {
                const char *n = d.labels && k < d.labels->n ? d.labels->names[k] : ft_encoder_label_name(m, k);
                printf("%-20s %9.4f %9.4f %9.4f %8lld\n", n ? n : "?", r->per_class[k].precision, r->per_class[k].recall,
                       r->per_class[k].f1, (long long)r->per_class[k].support);
            }
            printf("confusion matrix (rows = true, columns = predicted):\n");
            for (int i = 0; i < r->num_classes; i++) {
                for (int j = 0; j < r->num_classes; j++) printf("%8lld", (long long)r->confusion[(size_t)i * r->num_classes + j]);
                putchar('\n');
            }
        } else if (t == FT_TASK_REGRESS) printf("  MSE %.4f\n", ev.main);
        else if (t == FT_TASK_TOKEN) printf("  entity F1 %.4f\n", ev.main);
        else printf("  perplexity %.3f\n", ev.main);
        if (fair_text) fputs(fair_text, stdout);
    }
    free(fair_text);
    ft_enc_eval_free(&ev);
    ft_enc_data_free(&d);
    ft_label_map_free(&given);
    if (mt) ft_multitask_close(mt);
    else ft_encoder_close(m);
    ft_tokenizer_free(tok);
    return status;
}
