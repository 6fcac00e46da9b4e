/* data_records.c — reading and writing labelled records for the data subcommands (data_records.h). */
#include "data_records.h"
#include "finetune/status.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int ft_cli_cls_load(ft_cls_dataset *ds, const char *in, const ft_opt *opts, const char **text_col,
                    const char **label_col, const char **pair_col) {
    ft_cls_options o = ft_cls_default_options();
    o.label_column = ft_opt_str(opts, "label-column", "label");
    o.pair_column = ft_opt_str(opts, "pair-column", NULL);
    const char *tc = ft_opt_str(opts, "text-column", NULL);
    int rc;
    if (tc) {
        o.text_column = tc;
        rc = ft_cls_dataset_load(ds, in, &o);
    } else {
        o.text_column = "text";
        rc = ft_cls_dataset_load(ds, in, &o);
        if (rc == FT_ERR_NOT_FOUND) {   /* SST-2's GLUE files call it "sentence" */
            o.text_column = "sentence";
            if (ft_cls_dataset_load(ds, in, &o) == FT_OK) { ft_error_clear(); rc = FT_OK; }
            else o.text_column = "text";
        }
    }
    *text_col = o.text_column;
    *label_col = o.label_column;
    *pair_col = o.pair_column;
    return rc;
}

int ft_cli_cls_out_open(ft_cli_cls_out *w, const char *path, const char *text_col, const char *label_col, const char *pair_col) {
    memset(w, 0, sizeof *w);
    size_t n = strlen(path);
    w->jsonl = (n > 6 && !strcmp(path + n - 6, ".jsonl")) || (n > 5 && !strcmp(path + n - 5, ".json"));
    w->delim = n > 4 && !strcmp(path + n - 4, ".tsv") ? '\t' : ',';
    w->text_col = text_col;
    w->label_col = label_col;
    w->pair_col = pair_col;
    w->f = fopen(path, "w");
    if (!w->f) return ft_error(FT_ERR_IO, "%s: cannot write", path);
    if (!w->jsonl) {
        fprintf(w->f, "%s%c", text_col, w->delim);
        if (pair_col) fprintf(w->f, "%s%c", pair_col, w->delim);
        fprintf(w->f, "%s%caugmented_from%caugmentation\n", label_col, w->delim, w->delim);
    }
    return FT_OK;
}

static void put_json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') { fputc('\\', f); fputc(*c, f); }
        else if (*c == '\n') fputs("\\n", f);
        else if (*c == '\r') fputs("\\r", f);
        else if (*c == '\t') fputs("\\t", f);
        else if (*c < 0x20) fprintf(f, "\\u%04x", *c);
        else fputc(*c, f);
    }
    fputc('"', f);
}

static void put_field(FILE *f, const char *s, char delim) {
    int quote = 0;
    for (const char *c = s; *c && !quote; c++) quote = *c == delim || *c == '"' || *c == '\n' || *c == '\r';
    if (!quote) { fputs(s, f); return; }
    fputc('"', f);
    for (const char *c = s; *c; c++) {
        if (*c == '"') fputc('"', f);
        fputc(*c, f);
    }
    fputc('"', f);
}

static int is_int(const char *s) {
    if (!*s || strlen(s) > 9) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

int ft_cli_cls_out_row(ft_cli_cls_out *w, const char *text, const char *pair, const char *label, int64_t from, const char *op) {
    FILE *f = w->f;
    if (w->jsonl) {
        fputc('{', f);
        put_json_str(f, w->text_col);
        fputs(": ", f);
        put_json_str(f, text);
        if (w->pair_col && pair) { fputs(", ", f); put_json_str(f, w->pair_col); fputs(": ", f); put_json_str(f, pair); }
        fputs(", ", f);
        put_json_str(f, w->label_col);
        fputs(": ", f);
        if (is_int(label)) fputs(label, f);
        else put_json_str(f, label);
        if (from >= 0) fprintf(f, ", \"augmented_from\": %lld, \"augmentation\": ", (long long)from);
        else fputs(", \"augmented_from\": null, \"augmentation\": ", f);
        put_json_str(f, op);
        fputs("}\n", f);
    } else {
        put_field(f, text, w->delim);
        fputc(w->delim, f);
        if (w->pair_col) { put_field(f, pair ? pair : "", w->delim); fputc(w->delim, f); }
        put_field(f, label, w->delim);
        fputc(w->delim, f);
        if (from >= 0) fprintf(f, "%lld", (long long)from);
        fputc(w->delim, f);
        fputs(op, f);
        fputc('\n', f);
    }
    w->rows++;
    return ferror(f) ? ft_error(FT_ERR_IO, "write failed") : FT_OK;
}

int ft_cli_cls_out_close(ft_cli_cls_out *w) {
    if (!w->f) return FT_OK;
    int bad = ferror(w->f) | (fclose(w->f) != 0);
    w->f = NULL;
    return bad ? ft_error(FT_ERR_IO, "write failed") : FT_OK;
}
