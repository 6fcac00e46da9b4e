/* cmd_tokenize.c — `finetune tokenize`: print the token ids of a text, or of each stdin line.
 *
 *   finetune tokenize --text "Hello world"            ids on one line, space-separated
 *   printf 'a\nb\n' | finetune tokenize --model DIR   one line of ids per input line (the newline
 *                                                      itself is not tokenized)
 * BOS/EOS are added only where the tokenizer's config asks for it (llama2.c tokenizers: BOS). */
#include "cli.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_ids(const ft_tokenizer *tok, const char *text, size_t len, int flags) {
    int *ids, n;
    int rc = ft_tokenizer_encode(tok, text, len, flags, &ids, &n);
    if (rc < 0) return rc;
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    putchar('\n');
    free(ids);
    return FT_OK;
}

int ft_cmd_tokenize(int argc, char **argv) {
    ft_opt opts[] = {
        {"model", 1, "model or tokenizer directory (default: the embedded stories260K)", NULL},
        {"text", 1, "text to tokenize (default: every line of stdin, one line of ids each)", NULL},
        {"no-special", 0, "treat special-token strings such as <|endoftext|> in the text as plain text", NULL},
        {"plain", 0, "do not add BOS/EOS even where the tokenizer's config asks for them", NULL},
        {"save-json", 1, "write the tokenizer as a HF tokenizer.json to this path and exit", NULL},
        {NULL, 0, NULL, NULL},
    };
    int prc = ft_parse_opts(argc, argv, opts, "usage: finetune tokenize [--model DIR] [--text TEXT] [--no-special]");
    if (prc) return prc == 1 ? 0 : prc;

    const char *dir = ft_opt_str(opts, "model", ft_default_model_dir());
    ft_tokenizer *tok;
    int rc = ft_tokenizer_load(&tok, dir);
    if (rc < 0) return ft_cli_fail("tokenize", rc);

    const char *save = ft_opt_str(opts, "save-json", NULL);
    if (save) {
        rc = ft_tokenizer_save_json(tok, save);
        ft_tokenizer_free(tok);
        return rc < 0 ? ft_cli_fail("tokenize", rc) : 0;
    }

    int flags = (ft_opt_flag(opts, "plain") ? 0 : FT_TOK_ADD_SPECIAL) | (ft_opt_flag(opts, "no-special") ? FT_TOK_NO_SPECIAL_PARSE : 0);
    const char *text = ft_opt_str(opts, "text", NULL);
    if (text) {
        rc = print_ids(tok, text, strlen(text), flags);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (rc == FT_OK && (n = getline(&line, &cap, stdin)) >= 0) {
            if (n > 0 && line[n - 1] == '\n') n--;
            rc = print_ids(tok, line, (size_t)n, flags);
        }
        free(line);
    }
    ft_tokenizer_free(tok);
    if (rc < 0) return ft_cli_fail("tokenize", rc);
    return fflush(stdout) == 0 ? 0 : 1;
}
