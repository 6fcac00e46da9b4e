/* cmd_generate.c — `finetune generate`: stream a prompt and its continuation to stdout. */
#include "cli.h"
#include "finetune/backend.h"
#include "finetune/chat.h"
#include "finetune/fileio.h"
#include "finetune/generate.h"
#include "finetune/model.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static int print_piece(void *user, const char *text, size_t len) {
    fwrite(text, 1, len, (FILE *)user);
    fflush((FILE *)user);
    return 0;
}

/* --num-beams: the best hypotheses, each as prompt + text (a "# beam i, score S" line before each when
 * several), or their ids (EOS left out, as the sampling path does) one line each */
static int print_beams(ft_model *m, const ft_tokenizer *tok, const int *ids, int n, const char *prompt, int max_tokens,
                       int num_beams, float len_pen, int early, int nrs, int ngram, int stop_at_eos, int ids_only) {
    ft_beam_params bp = ft_beam_default_params();
    bp.num_beams = num_beams;
    bp.length_penalty = len_pen;
    bp.early_stopping = early;
    bp.num_return_sequences = nrs;
    bp.no_repeat_ngram_size = ngram;
    bp.max_new_tokens = max_tokens;
    if (!stop_at_eos) bp.eos_token_id = -2;
    if (max_tokens == 0) { if (!ids_only) puts(prompt); else puts(""); return FT_OK; }
    ft_beam_result r;
    FT_TRY(ft_beam_search(m, ids_only ? NULL : tok, ids, n, &bp, &r));
    for (int i = 0; i < r.n; i++) {
        const ft_beam_hyp *h = &r.hyps[i];
        if (ids_only) {
            for (int j = 0; j < h->n_ids - h->eos; j++) printf(j ? " %d" : "%d", h->ids[j]);
            printf("\n");
            continue;
        }
        if (r.n > 1) printf("# beam %d, score %.4f%s\n", i + 1, h->score, h->eos ? "" : " (max tokens)");
        printf("%s%s\n", prompt, h->text);
    }
    ft_beam_result_free(&r);
    return FT_OK;
}

int ft_cmd_generate(int argc, char **argv) {
    ft_opt opts[] = {
        {"model", 1, "model directory (HF layout) or a LoRA adapter directory; default: the embedded stories260K", NULL},
        {"adapter", 1, "a LoRA adapter directory (PEFT layout) applied without merging", NULL},
        {"prompt", 1, "prompt text (default: empty, i.e. start from BOS)", NULL},
        {"max-tokens", 1, "new tokens to generate (default 128)", NULL},
        {"temperature", 1, "sampling temperature; 0 = greedy (default 1.0)", NULL},
        {"top-k", 1, "keep the k most likely tokens (default 0 = off)", NULL},
        {"top-p", 1, "nucleus sampling mass (default 1.0 = off)", NULL},
        {"repetition-penalty", 1, "penalty > 1 discourages repeats (default 1.0 = off)", NULL},
        {"stop", 1, "stop before this string (may be given several times, separated by '|')", NULL},
        {"seed", 1, "random seed (default: from the clock, printed to stderr)", NULL},
        {"ids", 0, "print only the generated token ids, space-separated, on one line", NULL},
        {"dump-logits", 1, "write the prompt's logits [T, V] as raw float32 to FILE and exit (for parity checks)", NULL},
        {"prompt-ids", 1, "the prompt as token ids ('15496 11 995'); with --ids no tokenizer is needed", NULL},
        {"chat", 0, "format --prompt as a user message with the model's chat template (tokenizer_config.json)", NULL},
        {"system", 1, "with --chat: a system message before the user message", NULL},
        {"chat-template", 1, "with --chat: a built-in template (chatml, llama2, llama3, llama3.1, mistral, zephyr, alpaca) or a .jinja file", NULL},
        {"no-bos", 0, "do not add the BOS token even if the tokenizer asks for it", NULL},
        {"ignore-eos", 0, "keep generating after the end-of-sequence token", NULL},
        {"num-beams", 1, "beam search with N beams, as transformers' generate(num_beams=N, do_sample=False) (default 1 = no beams)", NULL},
        {"length-penalty", 1, "beam search: a hypothesis scores sum_logprobs / length^L (default 1.0)", NULL},
        {"early-stopping", 0, "beam search: stop once num-beams hypotheses are finished (transformers' early_stopping=True)", NULL},
        {"early-stopping-never", 0, "beam search: transformers' early_stopping=\"never\" (default: False, its heuristic)", NULL},
        {"num-return-sequences", 1, "beam search: print the K best hypotheses, K <= num-beams (default 1)", NULL},
        {"no-repeat-ngram-size", 1, "beam search: no n-gram of this size occurs twice (default 0 = off)", NULL},
        {"precision", 1, FT_CLI_PRECISION_HELP, NULL},
        {"backend", 1, "cpu (default) or ref (scalar reference kernels)", NULL},
        {"threads", 1, "threads (default: all cores)", NULL},
        {NULL, 0, NULL, NULL},
    };
    int prc = ft_parse_opts(argc, argv, opts,
        "usage: finetune generate [--model DIR] [--prompt TEXT] [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--ids]\n"
        "                         [--num-beams N [--length-penalty L] [--early-stopping] [--num-return-sequences K]] [--precision f32|bf16]");
    if (prc) return prc == 1 ? 0 : prc;
    long max_tokens, top_k, seed, threads, num_beams, nrs, ngram;
    double temperature, top_p, rep, len_pen;
    if (ft_opt_int(opts, "num-beams", 1, &num_beams) || ft_opt_int(opts, "num-return-sequences", 1, &nrs) ||
        ft_opt_int(opts, "no-repeat-ngram-size", 0, &ngram) || ft_opt_float(opts, "length-penalty", 1.0, &len_pen))
        return 2;
    if (num_beams < 1 || nrs < 1 || nrs > num_beams || ngram < 0) {
        fprintf(stderr, "finetune generate: invalid value: need --num-beams >= 1, 1 <= --num-return-sequences <= --num-beams, --no-repeat-ngram-size >= 0\n");
        return 2;
    }
    if (num_beams > 1 && (ft_opt_str(opts, "stop", NULL) || ft_opt_str(opts, "top-k", NULL) || ft_opt_str(opts, "top-p", NULL) ||
                          ft_opt_str(opts, "repetition-penalty", NULL) || ft_opt_str(opts, "chat", NULL))) {
        fprintf(stderr, "finetune generate: --num-beams is a deterministic beam search: it takes no --stop, --top-k, --top-p, --repetition-penalty or --chat\n");
        return 2;
    }
    if (ft_opt_int(opts, "max-tokens", 128, &max_tokens) || ft_opt_int(opts, "top-k", 0, &top_k) ||
        ft_opt_int(opts, "seed", -1, &seed) || ft_opt_int(opts, "threads", 0, &threads) ||
        ft_opt_float(opts, "temperature", 1.0, &temperature) || ft_opt_float(opts, "top-p", 1.0, &top_p) ||
        ft_opt_float(opts, "repetition-penalty", 1.0, &rep))
        return 2;
    if (max_tokens < 0 || temperature < 0 || top_k < 0 || top_p <= 0 || top_p > 1 || rep <= 0) {
        fprintf(stderr, "finetune generate: invalid value: need --max-tokens >= 0, --temperature >= 0, --top-k >= 0, 0 < --top-p <= 1, --repetition-penalty > 0\n");
        return 2;
    }
    ft_dtype weights;
    if (ft_cli_weights_precision(opts, "generate", &weights)) return 2;
    if (threads > 0) ft_set_threads((int)threads);
    const ft_backend *be = ft_backend_by_name(ft_opt_str(opts, "backend", "cpu"));
    if (!be) { fprintf(stderr, "finetune generate: unknown backend '%s' (cpu, ref)\n", ft_opt_str(opts, "backend", "")); return 2; }
    const char *dir = ft_opt_str(opts, "model", NULL);
    if (!dir) dir = ft_default_model_dir();
    const char *prompt = ft_opt_str(opts, "prompt", "");

    const char *prompt_ids = ft_opt_str(opts, "prompt-ids", NULL);
    int ids_only = ft_opt_flag(opts, "ids");
    ft_tokenizer *tok = NULL;
    ft_model *m = NULL;
    int rc = FT_OK;
    if (!(prompt_ids && ids_only)) {
        char tbuf[4096];
        rc = ft_tokenizer_load(&tok, ft_cli_tokenizer_dir(dir, tbuf, sizeof tbuf));
        if (rc < 0) return ft_cli_fail("generate", rc);
    }
    rc = ft_cli_load_model_as(&m, dir, ft_opt_str(opts, "adapter", NULL), be, weights);
    if (rc < 0) { ft_tokenizer_free(tok); return ft_cli_fail("generate", rc); }

    int *ids = NULL, n = 0;
    int flags = ft_opt_flag(opts, "no-bos") ? 0 : FT_TOK_ADD_SPECIAL;
    char *chat_text = NULL;
    int chat = ft_opt_flag(opts, "chat") || ft_opt_str(opts, "chat-template", NULL);
    if (chat && !prompt_ids) {
        ft_chat_template *tmpl = NULL;
        const char *name = ft_opt_str(opts, "chat-template", NULL);
        if (name && ft_path_exists(name)) {
            char *src;
            rc = ft_file_read_all(name, &src, NULL);
            if (rc == FT_OK) {
                const char *bos = ft_tokenizer_bos(tok) >= 0 ? ft_tokenizer_token_str(tok, ft_tokenizer_bos(tok)) : NULL;
                const char *eos = ft_tokenizer_eos(tok) >= 0 ? ft_tokenizer_token_str(tok, ft_tokenizer_eos(tok)) : NULL;
                rc = ft_chat_template_from_string(&tmpl, src, bos, eos);
                free(src);
            }
        } else if (name) rc = ft_chat_template_builtin(&tmpl, name, NULL, NULL);
        else {
            rc = ft_chat_template_load(&tmpl, dir);
            if (rc == FT_ERR_NOT_FOUND)
                rc = ft_error(FT_ERR_NOT_FOUND, "%s has no chat template (tokenizer_config.json \"chat_template\"); choose one with --chat-template NAME (chatml, llama2, llama3, llama3.1, mistral, zephyr, alpaca)", dir);
        }
        ft_chat_msg msgs[2];
        int nm = 0;
        const char *sys = ft_opt_str(opts, "system", NULL);
        if (sys) msgs[nm++] = (ft_chat_msg){"system", sys};
        msgs[nm++] = (ft_chat_msg){"user", prompt};
        size_t clen;
        if (rc == FT_OK) rc = ft_chat_render(tmpl, msgs, nm, 1, &chat_text, &clen);
        ft_chat_template_free(tmpl);
        if (rc == FT_OK) { prompt = chat_text; flags = 0; } /* the template writes BOS itself */
    }
    if (rc != FT_OK) {
    } else if (prompt_ids) {
        size_t cap = strlen(prompt_ids) / 2 + 2;
        ids = malloc(sizeof(int) * cap);
        const char *p = prompt_ids;
        char *end;
        while (ids && *p) {
            long v = strtol(p, &end, 10);
            if (end == p) {
                if (*p == ' ' || *p == ',') { p++; continue; }
                rc = ft_error(FT_ERR_INVALID, "--prompt-ids: expected integers separated by spaces, got '%s'", prompt_ids);
                break;
            }
            ids[n++] = (int)v;
            p = end;
        }
        if (rc == FT_OK && n == 0) rc = ft_error(FT_ERR_INVALID, "--prompt-ids: no ids given");
        if (rc == FT_OK && tok) {
            char *text = NULL;
            size_t tl;
            if (ft_tokenizer_decode(tok, ids, n, 0, &text, &tl) == FT_OK) prompt = text; /* printed below */
            else free(text);
        }
    } else
        rc = ft_tokenizer_encode(tok, prompt, strlen(prompt), flags, &ids, &n);
    int status = 0;
    if (rc == FT_OK && n == 0) {
        /* an empty prompt starts from BOS, or from EOS (GPT-2's <|endoftext|> separates documents) */
        int start = ft_generate_start_token(tok, ft_model_get_config(m));
        free(ids);
        ids = malloc(sizeof(int));
        if (!ids || start < 0) rc = ft_error(FT_ERR_INVALID, "the prompt is empty and the tokenizer has no BOS/EOS token to start from");
        else { ids[0] = start; n = 1; }
    }
    const char *dump = ft_opt_str(opts, "dump-logits", NULL);
    if (rc == FT_OK && dump) {
        rc = ft_model_forward(m, ids, NULL, NULL, NULL, 1, n, NULL);
        if (rc == FT_OK) {
            size_t nb = sizeof(float) * (size_t)n * (size_t)ft_model_get_config(m)->vocab_size;
            rc = ft_file_write_atomic(dump, ft_model_logits(m), nb);
        }
        if (rc == FT_OK) fprintf(stderr, "finetune generate: logits [%d, %d] -> %s\n", n, ft_model_get_config(m)->vocab_size, dump);
    } else if (rc == FT_OK) {
        ft_generate_params p = ft_generate_default_params();
        p.max_new_tokens = (int)max_tokens;
        p.temperature = (float)temperature;
        p.top_k = (int)top_k;
        p.top_p = (float)top_p;
        p.repetition_penalty = (float)rep;
        p.stop_at_eos = !ft_opt_flag(opts, "ignore-eos");
        if (seed < 0) {
            seed = (long)(time(NULL) & 0x7fffffff);
            if (temperature > 0 && num_beams == 1) fprintf(stderr, "finetune generate: seed %ld\n", seed);
        }
        p.seed = (uint64_t)seed;
        /* --stop a|b|c */
        char *stop_copy = NULL;
        const char *stops[16];
        if (chat) {
            const char *const *chat_stops;
            int n_chat_stops = ft_chat_turn_stops(&chat_stops);
            for (int i = 0; i < n_chat_stops; i++) stops[p.n_stop++] = chat_stops[i];
            p.stop = stops;
        }
        const char *stop_arg = ft_opt_str(opts, "stop", NULL);
        if (stop_arg && *stop_arg) {
            stop_copy = strdup(stop_arg);
            for (char *s = strtok(stop_copy, "|"); s && p.n_stop < 16; s = strtok(NULL, "|")) stops[p.n_stop++] = s;
            p.stop = stops;
        }
        if (num_beams > 1) {
            rc = print_beams(m, tok, ids, n, prompt, (int)max_tokens, (int)num_beams, (float)len_pen,
                             ft_opt_flag(opts, "early-stopping-never") ? FT_BEAM_STOP_NEVER
                             : ft_opt_flag(opts, "early-stopping") ? FT_BEAM_STOP_EARLY : FT_BEAM_STOP_HEURISTIC,
                             (int)nrs, (int)ngram, p.stop_at_eos, ids_only);
            free(stop_copy);
            goto done;
        }
        if (!ids_only) { fputs(prompt, stdout); fflush(stdout); }
        ft_generation g;
        rc = ft_generate(m, tok, ids, n, &p, ids_only ? NULL : print_piece, stdout, &g);
        if (rc == FT_OK) {
            if (ids_only) for (int i = 0; i < g.n_ids; i++) printf(i ? " %d" : "%d", g.ids[i]);
            printf("\n");
            ft_generation_free(&g);
        }
        free(stop_copy);
    }
done:
    if (rc < 0) status = ft_cli_fail("generate", rc);
    if (prompt_ids && tok && prompt != ft_opt_str(opts, "prompt", "")) free((char *)prompt);
    free(chat_text);
    free(ids);
    ft_model_free(m);
    ft_tokenizer_free(tok);
    return status;
}
