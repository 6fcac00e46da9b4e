/* train_eval.c — validation loss / perplexity, sample generations, metrics lines. */
#include "trainer_internal.h"
#include "finetune/generate.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int ft_trainer_metric(ft_trainer *t, const char *json) {
    if (fprintf(t->metrics, "%s\n", json) < 0 || fflush(t->metrics) != 0)
        return ft_error(FT_ERR_IO, "%s/metrics.jsonl: write failed (disk full?)", t->cfg.out);
    return FT_OK;
}

int ft_eval_batches(ft_model *m, ft_batcher *vb, int64_t max_batches, ft_batch *scratch, double *loss, int64_t *tokens) {
    ft_batch_iter it = ft_batch_iter_start(0);
    int64_t n = ft_batcher_batches_per_epoch(vb);
    if (max_batches > 0 && max_batches < n) n = max_batches;
    double sum = 0;
    int64_t tok = 0;
    ft_model_set_training(m, 0, 0);
    for (int64_t i = 0; i < n; i++) {
        FT_TRY(ft_batcher_next(vb, &it, scratch));
        if (scratch->n_targets == 0) continue;
        float l;
        FT_TRY(ft_model_forward(m, scratch->ids, scratch->targets, scratch->pos, scratch->seg, scratch->B, scratch->T, &l));
        sum += (double)l * scratch->n_targets;
        tok += scratch->n_targets;
    }
    *loss = tok ? sum / (double)tok : NAN;
    *tokens = tok;
    return FT_OK;
}

int ft_trainer_evaluate(ft_trainer *t, double *loss, int64_t *tokens) {
    *loss = NAN;
    *tokens = 0;
    if (!t->vb) return FT_OK;
    return ft_eval_batches(t->model, t->vb, t->cfg.eval_batches, &t->micro[0], loss, tokens);
}

static int print_piece(void *user, const char *text, size_t len) { (void)user; (void)text; (void)len; return 0; }

/* prompts: --sample-prompts, else the beginning of the first validation (or training) examples: the
 * tokens before the first learned token, or the first quarter of the example */
int ft_trainer_samples(ft_trainer *t, int epoch) {
    const ft_train_config *c = &t->cfg;
    int want = c->samples;
    char *prompts_copy = c->sample_prompts[0] ? strdup(c->sample_prompts) : NULL;
    char *save = NULL, *next = prompts_copy ? strtok_r(prompts_copy, "|", &save) : NULL;
    const ft_dataset *ds = t->split.n_val ? t->split.val_ds : t->split.train_ds;
    const int64_t *idx = t->split.n_val ? t->split.val : t->split.train;
    int64_t nidx = t->split.n_val ? t->split.n_val : t->split.n_train;
    fprintf(stderr, "samples after epoch %d:\n", epoch);
    int rc = FT_OK;
    for (int s = 0; s < want && rc == FT_OK; s++) {
        int *prompt = NULL, np = 0;
        if (prompts_copy) {
            if (!next) break;
            rc = ft_tokenizer_encode(t->tok, next, strlen(next), FT_TOK_ADD_SPECIAL, &prompt, &np);
            next = strtok_r(NULL, "|", &save);
            if (rc < 0) break;
        } else {
            if (s >= nidx) break;
            const int *ids;
            const uint8_t *learned;
            int n;
            if ((rc = ft_dataset_example(ds, idx[s], &ids, &learned, &n)) < 0) break;
            int first = 0;
            while (first < n && !learned[first]) first++;
            /* prompt/chat data: everything before the response; text/dialogue: the first quarter */
            np = first > 1 && first < n ? first : (n / 4 > 1 ? n / 4 : 1);
            if (np > 96) np = 96;
            prompt = malloc(sizeof(int) * (size_t)np);
            if (!prompt) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); break; }
            memcpy(prompt, ids, sizeof(int) * (size_t)np);
        }
        if (np == 0) { free(prompt); continue; }
        ft_generate_params p = ft_generate_default_params();
        p.max_new_tokens = c->sample_tokens;
        p.temperature = 0.7f;
        p.top_p = 0.9f;
        p.seed = (uint64_t)c->seed * 1000003u + (uint64_t)epoch * 101u + (uint64_t)s;
        ft_generation g;
        rc = ft_generate(t->model, t->tok, prompt, np, &p, print_piece, NULL, &g);
        if (rc == FT_OK) {
            char *ptext = NULL;
            size_t plen = 0;
            ft_tokenizer_decode(t->tok, prompt, np, FT_TOK_SKIP_SPECIAL, &ptext, &plen);
            if (t->is_tty) fprintf(stderr, "  --- sample %d ---\n%s\033[1m%s\033[0m\n", s + 1, ptext ? ptext : "", g.text);
            else fprintf(stderr, "  --- sample %d ---\n%s%s\n", s + 1, ptext ? ptext : "", g.text);
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "type", "sample");
            cJSON_AddNumberToObject(j, "step", (double)t->step);
            cJSON_AddNumberToObject(j, "epoch", epoch);
            cJSON_AddStringToObject(j, "prompt", ptext ? ptext : "");
            cJSON_AddStringToObject(j, "text", g.text);
            char *line = cJSON_PrintUnformatted(j);
            if (line) rc = ft_trainer_metric(t, line);
            free(line);
            cJSON_Delete(j);
            free(ptext);
            ft_generation_free(&g);
        }
        free(prompt);
    }
    free(prompts_copy);
    return rc;
}
