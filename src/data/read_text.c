/* read_text.c — plain text, DailyDialog and CSV/TSV files -> records. */
#include "data/data_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_blank_line(const char *s, size_t a, size_t b) {
    for (size_t i = a; i < b; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\f' && s[i] != '\v') return 0;
    return 1;
}

static int add_text(ft_data_ctx *c, const char *s, size_t len, int line, int64_t index) {
    c->st->read++;
    FT_TRY(ft__recs_begin(c->rs, FT_REC_TEXT, c->file, line, index));
    return ft__recs_msg(c->rs, FT_ROLE_TEXT, 0, "text", NULL, 0, s, len);
}

int ft__data_read_text(ft_data_ctx *c, const char *s, size_t n) {
    ft_text_split mode = c->opt->text_split;
    if (mode == FT_TEXT_WHOLE) return is_blank_line(s, 0, n) ? FT_OK : add_text(c, s, n, 1, 0);
    size_t i = 0, blk = 0;
    int line = 1, blk_line = 0;
    int64_t index = 0;
    int in_block = 0;
    size_t blk_end = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && s[e] != '\n') e++;
        int blank = is_blank_line(s, i, e);
        if (mode == FT_TEXT_LINES) {
            if (!blank) FT_TRY(add_text(c, s + i, e - i, line, index++));
        } else if (!blank) {
            if (!in_block) { in_block = 1; blk = i; blk_line = line; }
            blk_end = e;
        } else if (in_block) {
            FT_TRY(add_text(c, s + blk, blk_end - blk, blk_line, index++));
            in_block = 0;
        }
        i = e + 1;
        line++;
    }
    if (in_block) FT_TRY(add_text(c, s + blk, blk_end - blk, blk_line, index++));
    return FT_OK;
}

/* DailyDialog: "turn __eou__ turn __eou__ ..." one dialogue a line; speakers alternate. */
int ft__data_read_dailydialog(ft_data_ctx *c, const char *s, size_t n) {
    static const char eou[] = "__eou__";
    size_t i = 0;
    int line = 1;
    int64_t index = 0;
    char field[32];
    while (i < n) {
        size_t e = i;
        while (e < n && s[e] != '\n') e++;
        if (!is_blank_line(s, i, e)) {
            c->st->read++;
            FT_TRY(ft__recs_begin(c->rs, FT_REC_DIALOGUE, c->file, line, index));
            int k = 0;
            size_t a = i;
            while (a < e) {
                const char *hit = memmem(s + a, e - a, eou, sizeof eou - 1);
                size_t b = hit ? (size_t)(hit - s) : e;
                size_t x = a, y = b;
                while (x < y && isspace((unsigned char)s[x])) x++;
                while (y > x && isspace((unsigned char)s[y - 1])) y--;
                if (y > x) {
                    const char *name = c->opt->speakers[k % 2];
                    snprintf(field, sizeof field, "turn[%d]", k);
                    FT_TRY(ft__recs_msg(c->rs, FT_ROLE_TURN, 0, field, name, strlen(name), s + x, y - x));
                    k++;
                }
                a = hit ? b + sizeof eou - 1 : e;
            }
            if (k == 0) {
                ft__recs_cancel(c->rs);
                FT_TRY(ft__data_drop_record(c, FT_DROP_EMPTY, line, index, NULL, "no turns (only __eou__ markers)"));
            }
            index++;
        }
        i = e + 1;
        line++;
    }
    return FT_OK;
}

/* ---- CSV / TSV (RFC 4180) ---- */
static int csv_push(csv_row *r, char ch) {
    FT_TRY(ft__data_reserve((void **)&r->buf, 1, r->len + 1, &r->cap));
    r->buf[r->len++] = ch;
    return FT_OK;
}
static int csv_field_start(csv_row *r) {
    FT_TRY(ft__data_reserve((void **)&r->off, sizeof *r->off, r->n + 1, &r->off_cap));
    r->off[r->n++] = r->len;
    return FT_OK;
}

/* see data_internal.h */
int ft__csv_read_row(const char *s, size_t n, size_t *pos, int *line, char delim, csv_row *r, const char **bad, int64_t *bad_col) {
    size_t i = *pos;
    *bad = NULL;
    if (bad_col) *bad_col = 0;
    r->len = 0;
    r->n = 0;
    if (i >= n) return 0;
    FT_TRY(csv_field_start(r));
    int quoted = 0, at_start = 1, after_quote = 0;
    while (i < n) {
        char ch = s[i];
        if (quoted) {
            if (ch == '"') {
                if (i + 1 < n && s[i + 1] == '"') { FT_TRY(csv_push(r, '"')); i += 2; continue; }
                quoted = 0;
                after_quote = 1;
                i++;
                continue;
            }
            if (ch == '\n') (*line)++;
            FT_TRY(csv_push(r, ch));
            i++;
            continue;
        }
        if (ch == delim) {
            FT_TRY(csv_push(r, 0));
            FT_TRY(csv_field_start(r));
            at_start = 1;
            after_quote = 0;
            i++;
            continue;
        }
        if (ch == '\n' || ch == '\r') {
            i++;
            if (ch == '\r' && i < n && s[i] == '\n') i++;
            (*line)++;
            break;
        }
        if (ch == '"' && at_start) { quoted = 1; at_start = 0; i++; continue; }
        if (after_quote && !*bad) {
            *bad = "text after a closing quote";
            if (bad_col) *bad_col = r->n;
        }
        /* a quote inside an unquoted field is kept as text (as Python's csv module does) */
        FT_TRY(csv_push(r, ch));
        at_start = 0;
        i++;
    }
    if (quoted) {
        *bad = "a quoted field is not closed before the end of the file";
        if (bad_col) *bad_col = r->n;
    }
    FT_TRY(csv_push(r, 0));
    *pos = i;
    return 1;
}

void ft__csv_free(char **names, int ncol, csv_row *row) {
    for (int i = 0; names && i < ncol; i++) free(names[i]);
    free(names);
    free(row->buf);
    free(row->off);
}

int ft__csv_find_column(const char *want, char **names, int ncol, int header) {
    if (header) {
        for (int i = 0; i < ncol; i++) if (strcmp(names[i], want) == 0) return i;
        for (int i = 0; i < ncol; i++) if (strcasecmp(names[i], want) == 0) return i;
    }
    int all_digits = want[0] != 0;
    for (const char *p = want; *p; p++) all_digits &= isdigit((unsigned char)*p) != 0;
    if (all_digits && strlen(want) < 6) {   /* a column number (short enough for atoi) */
        int k = atoi(want);
        if (k >= 1 && (ncol == 0 || k <= ncol)) return k - 1;
    }
    return -1;
}

int ft__data_read_csv(ft_data_ctx *c, const char *s, size_t n, char delim) {
    const ft_data_options *o = c->opt;
    csv_row row = {0};
    char **names = NULL;
    int ncol = 0, rc = FT_OK, line = 1;
    size_t pos = 0;
    const char *bad;
    if (n >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF) pos = 3;
    int pc = o->prompt_column && o->completion_column;
    int col_text = -1, col_p = -1, col_c = -1;
    if (o->csv_header) {
        int got;
        do {  /* the header: the first non-empty row */
            got = ft__csv_read_row(s, n, &pos, &line, delim, &row, &bad, NULL);
        } while (got == 1 && row.n == 1 && row.buf[0] == 0);
        if (got < 0) { rc = got; goto done; }
        if (got == 0) goto done;  /* empty file */
        if (bad) { rc = ft_error(FT_ERR_FORMAT, "%s: line 1: malformed CSV header: %s", c->path, bad); goto done; }
        ncol = (int)row.n;
        names = calloc((size_t)ncol, sizeof *names);
        if (!names) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", c->path); goto done; }
        for (int i = 0; i < ncol; i++) {
            names[i] = strdup(row.buf + row.off[i]);
            if (!names[i]) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", c->path); goto done; }
        }
    }
    char cols[512];
    cols[0] = 0;
    for (int i = 0, w = 0; i < ncol && w < (int)sizeof cols - 1; i++)
        w += snprintf(cols + w, sizeof cols - (size_t)w, "%s%s", i ? ", " : "", names[i]);
    if (pc) {
        col_p = ft__csv_find_column(o->prompt_column, names, ncol, o->csv_header);
        col_c = ft__csv_find_column(o->completion_column, names, ncol, o->csv_header);
        const char *miss = col_p < 0 ? o->prompt_column : col_c < 0 ? o->completion_column : NULL;
        if (miss) {
            rc = ft_error(FT_ERR_NOT_FOUND, "%s: line 1: no column '%s' (columns: %s)", c->path, miss,
                          o->csv_header ? cols : "no header row: use a 1-based column number");
            goto done;
        }
    } else {
        col_text = ft__csv_find_column(o->text_column, names, ncol, o->csv_header);
        if (col_text < 0) {
            rc = ft_error(FT_ERR_NOT_FOUND, "%s: line 1: no column '%s' (columns: %s); choose one with --text-column",
                          c->path, o->text_column, o->csv_header ? cols : "no header row: use a 1-based column number");
            goto done;
        }
    }
    int64_t index = 0;
    for (;;) {
        int row_line = line;
        int got = ft__csv_read_row(s, n, &pos, &line, delim, &row, &bad, NULL);
        if (got < 0) { rc = got; goto done; }
        if (got == 0) break;
        if (row.n == 1 && row.buf[0] == 0) continue;  /* empty line */
        c->st->read++;
        int need = pc ? (col_p > col_c ? col_p : col_c) + 1 : col_text + 1;
        if (bad) {
            rc = ft__data_drop_record(c, FT_DROP_MALFORMED, row_line, index, NULL, "malformed CSV row: %s", bad);
        } else if (o->csv_header && row.n != ncol) {
            rc = ft__data_drop_record(c, FT_DROP_MALFORMED, row_line, index, NULL,
                                     "malformed CSV row: %lld fields, the header has %d", (long long)row.n, ncol);
        } else if (row.n < need) {
            rc = ft__data_drop_record(c, FT_DROP_MALFORMED, row_line, index, NULL,
                                     "malformed CSV row: %lld fields, column %d needed", (long long)row.n, need);
        } else if (pc) {
            char fp[80], fc[80];
            snprintf(fp, sizeof fp, "%s", o->csv_header ? names[col_p] : o->prompt_column);
            snprintf(fc, sizeof fc, "%s", o->csv_header ? names[col_c] : o->completion_column);
            const char *p = row.buf + row.off[col_p], *q = row.buf + row.off[col_c];
            if ((rc = ft__recs_begin(c->rs, FT_REC_PC, c->file, row_line, index)) == FT_OK &&
                (rc = ft__recs_msg(c->rs, FT_ROLE_USER, FT_MSGF_OPTIONAL | FT_MSGF_KEEP_TRAIL, fp, NULL, 0, p, strlen(p))) == FT_OK)
                rc = ft__recs_msg(c->rs, FT_ROLE_ASSISTANT, FT_MSGF_KEEP_LEAD, fc, NULL, 0, q, strlen(q));
        } else {
            char ft[80];
            snprintf(ft, sizeof ft, "%s", o->csv_header ? names[col_text] : o->text_column);
            const char *t = row.buf + row.off[col_text];
            if ((rc = ft__recs_begin(c->rs, FT_REC_TEXT, c->file, row_line, index)) == FT_OK)
                rc = ft__recs_msg(c->rs, FT_ROLE_TEXT, 0, ft, NULL, 0, t, strlen(t));
        }
        if (rc < 0) goto done;
        index++;
    }
done:
    ft__csv_free(names, ncol, &row);
    return rc;
}
