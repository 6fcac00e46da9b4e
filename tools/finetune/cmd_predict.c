/* cmd_predict.c — `finetune predict`: an encoder's predictions for texts given on the command line
 * or read from stdin (one a line): the label and every class probability (classify), the value
 * (regress), a tag per word (token-classify), or the top tokens for each mask (mlm). */
#include "cli.h"
#include "finetune/predict.h"
#include "finetune/encoder.h"
#include "finetune/lora.h"
#include "finetune/multitask.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct predictor {
    ft_encoder_model *m;
    ft_multitask *mt;        /* a multi-task model: every head (m: its encoder), unless --head picked one */
    int all_heads;
    ft_tokenizer *tok;
    ft_predict_options o;
    int json, show;          /* show: classes printed (--top-k; 0 = all) */
} predictor;

/* one text: JSON (text and pair added) or a line: "label<TAB>name=p ..." / value / word/TAG ... / mask N: tok p ... */
/* every head of a multi-task model: JSON {text, tasks: {name: prediction}}, else one line per task "name<TAB>label<TAB>..." */
static int predict_heads(predictor *p, const char *text, const char *pair) {
    char *js = NULL;
    FT_TRY(ft_multitask_predict_json(p->mt, p->tok, text, pair, &p->o, &js));
    cJSON *j = cJSON_Parse(js), *tasks = cJSON_GetObjectItem(j, "tasks");
    free(js);
    if (!j) return ft_error(FT_ERR_NOMEM, "out of memory");
    if (p->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "text", text);
        if (pair) cJSON_AddStringToObject(o, "pair", pair);
        cJSON_AddItemToObject(o, "tasks", cJSON_DetachItemViaPointer(j, tasks));
        char *line = cJSON_PrintUnformatted(o);
        if (line) puts(line);
        free(line);
        cJSON_Delete(o);
    } else {
        for (const cJSON *t = tasks ? tasks->child : NULL; t; t = t->next) {
            printf("%s\t%s", t->string, cJSON_GetStringValue(cJSON_GetObjectItem(t, "label")));
            for (const cJSON *q = cJSON_GetObjectItem(t, "probabilities") ? cJSON_GetObjectItem(t, "probabilities")->child : NULL; q; q = q->next)
                printf("\t%s=%.4f", q->string, q->valuedouble);
            putchar('\n');
        }
    }
    cJSON_Delete(j);
    fflush(stdout);
    return FT_OK;
}

static int predict_one(predictor *p, const char *text, const char *pair) {
    if (p->all_heads) return predict_heads(p, text, pair);
    ft_prediction r;
    FT_TRY(ft_encoder_predict(&r, p->m, p->tok, text, pair, &p->o));
    int rc = FT_OK;
    if (p->json) {
        char *js = NULL;
        rc = ft_prediction_json(&r, &js);
        cJSON *j = js ? cJSON_Parse(js) : NULL;
        if (j) {
            /* the input first, then the prediction */
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "text", text);
            if (pair) cJSON_AddStringToObject(o, "pair", pair);
            while (j->child) {
                cJSON *it = cJSON_DetachItemViaPointer(j, j->child);
                cJSON_AddItemToObject(o, it->string, it);
            }
            char *line = cJSON_PrintUnformatted(o);
            if (line) puts(line);
            free(line);
            cJSON_Delete(o);
            cJSON_Delete(j);
        }
        free(js);
    } else if (r.task == FT_TASK_REGRESS) printf("%.6g\n", r.value);
    else if (r.task == FT_TASK_CLASSIFY) {
        int K = r.num_labels, *ord = malloc(sizeof(int) * (size_t)K);
        if (!ord) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        for (int k = 0; ord && k < K; k++) ord[k] = k;
        for (int i = 1; ord && i < K; i++)
            for (int j = i; j > 0 && r.probs[ord[j]] > r.probs[ord[j - 1]]; j--) { int x = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = x; }
        if (ord) {
            printf("%s", r.label_names[r.label]);
            int show = p->show > 0 && p->show < K ? p->show : K;
            for (int i = 0; i < show; i++) printf("\t%s=%.4f", r.label_names[ord[i]], r.probs[ord[i]]);
            printf("%s\n", r.truncated ? "\t(truncated)" : "");
        }
        free(ord);
    } else if (r.task == FT_TASK_TOKEN) {
        for (int i = 0; i < r.n_words; i++) printf("%s%s/%s", i ? " " : "", r.words[i], r.tags[i]);
        putchar('\n');
    } else {
        for (int k = 0; k < r.n_masks; k++) {
            printf("mask %d:", k + 1);
            for (int j = 0; j < r.top_k; j++) printf("  %s %.4f", r.tokens[(size_t)k * r.top_k + j], r.token_probs[(size_t)k * r.top_k + j]);
            putchar('\n');
        }
    }
    ft_prediction_free(&r);
    fflush(stdout);
    return rc;
}

int ft_cmd_predict(int argc, char **argv) {
    ft_opt opts[] = {
        {"model", 1, "a fine-tuned encoder directory (e.g. RUN/best or RUN/final)", NULL},
        {"text", 1, "the text (default: every line of stdin)", NULL},
        {"pair", 1, "second sentence of a pair (with --text); stdin lines may hold 'A<TAB>B' with --pairs", NULL},
        {"pairs", 0, "stdin lines are sentence pairs separated by a tab", NULL},
        {"task", 1, "override the model's task: classify, regress, token-classify, mlm", NULL},
        {"head", 1, "multi-task models (train --task multi): only this task's head (default: every head)", NULL},
        {"seq-len", 1, "truncate inputs to this many tokens (default: the tokenizer's limit)", NULL},
        {"top-k", 1, "classes (classify) or tokens (mlm, default 5) to print", NULL},
        {"json", 0, "one JSON object per text: {text, label, probabilities} / {value} / {tokens} / {masks}", NULL},
        {"threads", 1, "threads (default: all cores)", NULL},
        {NULL, 0, NULL, NULL},
    };
    int prc = ft_parse_opts(argc, argv, opts, "usage: finetune predict --model DIR [--text TEXT [--pair TEXT]] [--json]   (or texts on stdin, one a line)");
    if (prc) return prc == 1 ? 0 : prc;
    const char *dir = ft_opt_str(opts, "model", NULL);
    if (!dir) { fprintf(stderr, "finetune predict: --model DIR is required (a directory written by finetune train --task ...)\n"); return 2; }
    long seq_len, top_k, threads;
    if (ft_opt_int(opts, "seq-len", 0, &seq_len) || ft_opt_int(opts, "top-k", 0, &top_k) || ft_opt_int(opts, "threads", 0, &threads)) return 2;
    if (threads > 0) ft_set_threads((int)threads);
    predictor p = {0};
    p.o = ft_predict_default_options();
    p.o.max_len = (int)seq_len;
    if (top_k > 0) p.o.top_k = (int)top_k;
    p.show = (int)top_k;
    p.json = ft_opt_flag(opts, "json");
    ft_encoder_options eo = ft_encoder_default_options();
    int rc = FT_OK;
    const char *task = ft_opt_str(opts, "task", NULL);
    if (task) rc = ft_encoder_task_from_name(task, &eo.task);
    if (rc == FT_OK) rc = ft_tokenizer_load(&p.tok, dir);
    if (rc == FT_OK && ft_multitask_dir_is_multitask(dir)) {
        const char *head = ft_opt_str(opts, "head", NULL);
        rc = ft_multitask_load(&p.mt, dir, ft_backend_cpu());
        int h = rc == FT_OK && head ? ft_multitask_find(p.mt, head) : 0;
        if (rc == FT_OK && h < 0) rc = ft_error(FT_ERR_NOT_FOUND, "--head %s: not a task of this model (the first is %s)", head, ft_multitask_name(p.mt, 0));
        if (rc == FT_OK) rc = ft_multitask_select(p.mt, h);
        if (rc == FT_OK) { p.m = ft_multitask_encoder(p.mt); p.all_heads = !head; }
    } else if (rc == FT_OK) rc = (ft_encoder_dir_is_adapter(dir) ? ft_encoder_load_with_adapter(&p.m, dir, &eo, ft_backend_cpu()) : ft_encoder_load_ex(&p.m, dir, &eo, ft_backend_cpu()));
    int status = 0;
    if (rc < 0) status = ft_cli_fail("predict", rc);
    else if (ft_opt_str(opts, "text", NULL)) {
        if (predict_one(&p, ft_opt_str(opts, "text", NULL), ft_opt_str(opts, "pair", NULL)) < 0) status = ft_cli_fail("predict", FT_ERR_INVALID);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        long ln = 0;
        while ((len = getline(&line, &cap, stdin)) >= 0) {
            ln++;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
            if (len == 0) continue;
            char *pair = NULL;
            if (ft_opt_flag(opts, "pairs")) {
                pair = strchr(line, '\t');
                if (!pair) { fprintf(stderr, "finetune predict: stdin line %ld: expected 'A<TAB>B' (--pairs)\n", ln); status = 1; continue; }
                *pair++ = 0;
            }
            if (predict_one(&p, line, pair) < 0) { fprintf(stderr, "finetune predict: stdin line %ld: %s\n", ln, ft_last_error()); status = 1; }
        }
        free(line);
    }
    if (p.mt) ft_multitask_close(p.mt);
    else ft_encoder_close(p.m);
    ft_tokenizer_free(p.tok);
    return status;
}
