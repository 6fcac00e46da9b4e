/* cmd_data.c — `finetune data SUB ...`: the data tools, one subcommand per file (cmd_data_<sub>.c),
 * dispatched by the table below. To add a subcommand, write `int ft_cmd_data_<sub>(int argc, char **argv)`
 * in its own file, declare it in cli.h and add one line to k_data_commands.
 *
 * A subcommand is called like a top-level command: argv[0] is "data <sub>" (so messages read
 * "finetune data <sub>: ..."), argv[1..] its arguments. ft_cli_data_input takes the input file that
 * comes first (`finetune data inspect FILE --json out.json`) and parses the options:
 *
 *     const char *in, *out;
 *     int st = ft_cli_data_input(argc, argv, opts, k_usage, &in, &out);
 *     if (st >= 0) return st;   // --help, or a usage error
 */
#include "cli.h"
#include "finetune/dataquality.h"
#include "finetune/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { const char *name; int (*fn)(int, char **); const char *summary; } ft_data_command;

static const ft_data_command k_data_commands[] = {
    /* one line per subcommand */
    {"inspect", ft_cmd_data_inspect, "a data-quality report: fields, duplicates, lengths, labels, scripts, personal data, overlap, score"},
    {"clean",   ft_cmd_data_clean,   "clean a data file: lower, html, punct, space, urls, ..., stopwords, stem, neardup, length, lang, conflicts"},
    {"augment", ft_cmd_data_augment, "more labelled examples: EDA (WordNet synonyms, insert, swap, delete), masked-LM substitution, counterfactual swaps"},
    {"balance", ft_cmd_data_balance, "class balance: random over/under-sampling to a ratio; SMOTE, Borderline-SMOTE, ADASYN, Tomek links on embeddings"},
    {NULL, NULL, NULL},
};

static void data_usage(FILE *f) {
    fprintf(f, "usage: finetune data <subcommand> FILE [options]   (finetune data <subcommand> --help for its options)\n\n"
               "subcommands:\n");
    for (const ft_data_command *c = k_data_commands; c->name; c++) fprintf(f, "  %-10s %s\n", c->name, c->summary);
}

int ft_cli_data_input(int argc, char **argv, ft_opt *opts, const char *usage, const char **in, const char **out) {
    *in = NULL;
    int shift = 0;
    if (argc > 1 && strncmp(argv[1], "--", 2) != 0 && strcmp(argv[1], "-h") != 0) {
        *in = argv[1];
        argv[1] = argv[0];      /* the options follow as argv + 1, with the command's name first */
        shift = 1;
    }
    int prc = ft_parse_opts(argc - shift, argv + shift, opts, usage);
    if (prc) return prc == 1 ? 0 : prc;
    if (out) *out = ft_opt_str(opts, "out", NULL);
    if (!*in || (out && !*out)) {
        fprintf(stderr, "finetune %s: %s\n%s\n", argv[0], !*in ? "give the input file first" : "--out OUT is required", usage);
        return 2;
    }
    return -1;
}

int ft_cli_dq_table_options(const ft_opt *opts, ft_dq_table_options *to) {
    *to = ft_dq_table_default_options();
    to->text_columns = ft_opt_str(opts, "text-column", NULL);
    to->label_column = ft_opt_str(opts, "label-column", NULL);
    const char *fmt = ft_opt_str(opts, "format", NULL);
    return fmt ? ft_dq_format_from_name(fmt, &to->format) : FT_OK;
}

int ft_cmd_data(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        data_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (const ft_data_command *c = k_data_commands; c->name; c++) {
        if (strcmp(argv[1], c->name) != 0) continue;
        char name[64];
        snprintf(name, sizeof name, "data %s", c->name);
        char **sub = malloc((size_t)argc * sizeof *sub);   /* argv[1..] with "data <sub>" as argv[0] */
        if (!sub) return 1;
        sub[0] = name;
        for (int i = 2; i < argc; i++) sub[i - 1] = argv[i];
        int rc = c->fn(argc - 1, sub);
        free(sub);
        return rc;
    }
    fprintf(stderr, "finetune data: unknown subcommand '%s'\n\n", argv[1]);
    data_usage(stderr);
    return 2;
}
