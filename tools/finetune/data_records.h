/* data_records.h — shared by `finetune data augment` and `finetune data balance`: reading a classification
 * file with the usual column options, and writing records back with provenance columns.
 *
 * Output format by the name of --out: *.jsonl / *.json -> one JSON object a line
 *   {"<text column>": "...", ["<pair column>": "...",] "<label column>": 1 | "neg", "augmented_from": null | 7,
 *    "augmentation": "original" | "synonym_replacement" | ...}
 * (an integer-looking label name is written as a JSON number, so the file reads back with the same ids);
 * anything else -> CSV, or TSV for *.tsv, with a header row and RFC 4180 quoting where needed.
 * augmented_from is the 0-based index of the input record a row comes from (null / empty for the input
 * records themselves). */
#ifndef FT_CLI_DATA_RECORDS_H
#define FT_CLI_DATA_RECORDS_H
#include <stdint.h>
#include <stdio.h>
#include "cli.h"
#include "finetune/classify_data.h"

/* the column options every data subcommand that reads labelled text takes (append to an ft_opt table) */
#define FT_CLI_CLS_COLUMN_OPTS \
    {"text-column", 1, "text column: header name or 1-based number (default: text, else sentence)", NULL}, \
    {"label-column", 1, "label column (default: label)", NULL}, \
    {"pair-column", 1, "second text of sentence pairs (default: none)", NULL}

/* Loads in with the column options; the text column defaults to "text", then "sentence" (SST-2's). *text_col
 * and friends: the names to write back. */
int ft_cli_cls_load(ft_cls_dataset *ds, const char *in, const ft_opt *opts, const char **text_col,
                    const char **label_col, const char **pair_col);

typedef struct ft_cli_cls_out {
    FILE *f;
    int   jsonl;
    char  delim;
    const char *text_col, *label_col, *pair_col;
    int64_t rows;
} ft_cli_cls_out;
int ft_cli_cls_out_open(ft_cli_cls_out *w, const char *path, const char *text_col, const char *label_col, const char *pair_col);
/* from < 0: an input record (augmented_from null); op: "original", an ft_aug_op name, ... */
int ft_cli_cls_out_row(ft_cli_cls_out *w, const char *text, const char *pair, const char *label, int64_t from, const char *op);
int ft_cli_cls_out_close(ft_cli_cls_out *w);
#endif
