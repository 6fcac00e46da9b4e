/* dataset.c — ft_dataset_load: files -> records -> cleaned records -> token examples; accessors,
 * option names, and the printed summary. */
#include "data/data_internal.h"
#include "finetune/fileio.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ft_dataset {
    char    *path;        /* as given to ft_dataset_load (a file or a directory) */
    int64_t  n;           /* examples */
    int64_t *tok_off;     /* [n+1] into ids / learned */
    int     *ids;
    uint8_t *learned;
    int64_t *text_off;    /* [n+1] into text (each text NUL-terminated) */
    char    *text;
    int32_t *line;        /* [n] source line */
    int64_t *record;      /* [n] source record index */
    int32_t *file;        /* [n] source file */
    char   **files;
    ft_data_format *file_format;  /* [nfiles] as read */
    int      nfiles;
    int      pad_id, eos_id;
    ft_data_stats stats;
};

/* ---- names ---- */
static const char *FORMAT_NAMES[FT_DATA_FORMAT_COUNT] = {
    "auto", "dialogue", "prompt-completion", "chat", "alpaca", "sharegpt", "text", "dailydialog", "csv"};

const char *ft_data_format_name(ft_data_format f) {
    return (unsigned)f < FT_DATA_FORMAT_COUNT ? FORMAT_NAMES[f] : "?";
}

int ft_data_format_from_name(const char *name, ft_data_format *out) {
    if (!name || !name[0]) { *out = FT_DATA_AUTO; return FT_OK; }
    for (int i = 0; i < FT_DATA_FORMAT_COUNT; i++)
        if (strcasecmp(name, FORMAT_NAMES[i]) == 0) { *out = (ft_data_format)i; return FT_OK; }
    static const struct { const char *n; ft_data_format f; } alias[] = {
        {"completion", FT_DATA_PROMPT_COMPLETION}, {"prompt_completion", FT_DATA_PROMPT_COMPLETION},
        {"messages", FT_DATA_CHAT}, {"tsv", FT_DATA_CSV}, {"plain", FT_DATA_TEXT}, {"dialog", FT_DATA_DIALOGUE}};
    for (size_t i = 0; i < sizeof alias / sizeof *alias; i++)
        if (strcasecmp(name, alias[i].n) == 0) { *out = alias[i].f; return FT_OK; }
    return ft_error(FT_ERR_INVALID, "unknown data format '%s' (auto, dialogue, prompt-completion, chat, alpaca, "
                    "sharegpt, text, dailydialog, csv)", name);
}

static const char *TRAIN_ON_NAMES[] = {"auto", "completion", "all"};
const char *ft_train_on_name(ft_train_on t) { return (unsigned)t < 3 ? TRAIN_ON_NAMES[t] : "?"; }
int ft_train_on_from_name(const char *name, ft_train_on *out) {
    if (!name || !name[0]) { *out = FT_TRAIN_ON_AUTO; return FT_OK; }
    for (int i = 0; i < 3; i++)
        if (strcasecmp(name, TRAIN_ON_NAMES[i]) == 0) { *out = (ft_train_on)i; return FT_OK; }
    if (strcasecmp(name, "assistant") == 0 || strcasecmp(name, "response") == 0) { *out = FT_TRAIN_ON_COMPLETION; return FT_OK; }
    return ft_error(FT_ERR_INVALID, "unknown train_on '%s' (auto, completion, all)", name);
}

static const char *TRUNC_NAMES[] = {"auto", "right", "left", "none"};
const char *ft_truncate_name(ft_truncate t) { return (unsigned)t < 4 ? TRUNC_NAMES[t] : "?"; }
int ft_truncate_from_name(const char *name, ft_truncate *out) {
    if (!name || !name[0]) { *out = FT_TRUNC_AUTO; return FT_OK; }
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, TRUNC_NAMES[i]) == 0) { *out = (ft_truncate)i; return FT_OK; }
    return ft_error(FT_ERR_INVALID, "unknown truncation '%s' (auto, right, left, none)", name);
}

int ft_text_split_from_name(const char *name, ft_text_split *out) {
    static const char *names[] = {"blocks", "whole", "lines"};
    for (int i = 0; i < 3; i++)
        if (name && strcasecmp(name, names[i]) == 0) { *out = (ft_text_split)i; return FT_OK; }
    return ft_error(FT_ERR_INVALID, "unknown text split '%s' (blocks, whole, lines)", name ? name : "");
}

const char *ft_data_drop_name(ft_data_drop d) {
    static const char *names[FT_DROP_COUNT] = {"malformed", "missing field", "empty field", "invalid UTF-8",
                                               "duplicate", "too short", "too long", "no learned tokens"};
    return (unsigned)d < FT_DROP_COUNT ? names[d] : "?";
}

ft_data_options ft_data_default_options(void) {
    ft_data_options o;
    memset(&o, 0, sizeof o);
    o.format = FT_DATA_AUTO;
    o.text_column = "text";
    o.csv_header = 1;
    o.text_split = FT_TEXT_BLOCKS;
    o.speakers[0] = "A";
    o.speakers[1] = "B";
    o.nfc = 1;
    o.clean_whitespace = 1;
    o.dedup = 1;
    o.min_chars = 1;
    o.max_warnings = 10;
    o.train_on = FT_TRAIN_ON_AUTO;
    o.seq_len = 1024;
    o.truncate = FT_TRUNC_AUTO;
    o.add_bos = -1;
    return o;
}

/* ---- reading files ---- */
static const char *ext_of(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    return dot ? dot + 1 : "";
}

static int has_data_ext(const char *name) {
    const char *e = ext_of(name);
    return !strcasecmp(e, "json") || !strcasecmp(e, "jsonl") || !strcasecmp(e, "csv") || !strcasecmp(e, "tsv") ||
           !strcasecmp(e, "txt");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* the files to read: path itself, or the data files of a directory in name order */
static int list_files(const char *path, char ***out, int *n) {
    *out = NULL;
    *n = 0;
    if (!ft_path_exists(path)) return ft_error(FT_ERR_NOT_FOUND, "%s: no such file or directory", path);
    if (!ft_path_is_dir(path)) {
        char **v = malloc(sizeof *v);
        if (!v || !(v[0] = strdup(path))) { free(v); return ft_error(FT_ERR_NOMEM, "out of memory"); }
        *out = v;
        *n = 1;
        return FT_OK;
    }
    DIR *d = opendir(path);
    if (!d) return ft_error(FT_ERR_IO, "%s: cannot open the directory", path);
    char **v = NULL;
    int64_t cap = 0;
    int k = 0, rc = FT_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !has_data_ext(de->d_name)) continue;
        char full[4096];
        if (ft_path_join(full, sizeof full, path, de->d_name) < 0 || ft_path_is_dir(full)) continue;
        if ((rc = ft__data_reserve((void **)&v, sizeof *v, k + 1, &cap)) < 0) break;
        if (!(v[k] = strdup(full))) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); break; }
        k++;
    }
    closedir(d);
    if (rc < 0) {
        for (int i = 0; i < k; i++) free(v[i]);
        free(v);
        return rc;
    }
    if (k == 0) return ft_error(FT_ERR_NOT_FOUND, "%s: no data files (*.json, *.jsonl, *.csv, *.tsv, *.txt) in the directory", path);
    qsort(v, (size_t)k, sizeof *v, cmp_str);
    *out = v;
    *n = k;
    return FT_OK;
}

static int read_one_file(ft_data_ctx *c, const char *path) {
    ft_recs *rs = c->rs;
    const ft_data_options *o = c->opt;
    {
        char **nf = realloc(rs->files, (size_t)(rs->nfiles + 1) * sizeof *nf);
        ft_data_format *ff = realloc(rs->file_format, (size_t)(rs->nfiles + 1) * sizeof *ff);
        if (nf) rs->files = nf;
        if (ff) rs->file_format = ff;
        if (!nf || !ff) return ft_error(FT_ERR_NOMEM, "out of memory");
        if (!(rs->files[rs->nfiles] = strdup(path))) return ft_error(FT_ERR_NOMEM, "out of memory");
        rs->file_format[rs->nfiles] = o->format;
        c->file = rs->nfiles++;
    }
    c->path = rs->files[c->file];
    c->format = o->format;
    char *buf = NULL;
    size_t len = 0;
    FT_TRY(ft_file_read_all(path, &buf, &len));
    size_t skip = len >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB && (unsigned char)buf[2] == 0xBF ? 3 : 0;
    const char *s = buf + skip;
    size_t n = len - skip;
    const char *ext = ext_of(path);
    int is_json_ext = !strcasecmp(ext, "json") || !strcasecmp(ext, "jsonl");
    int is_csv_ext = !strcasecmp(ext, "csv") || !strcasecmp(ext, "tsv");
    size_t first = 0;
    while (first < n && (s[first] == ' ' || s[first] == '\n' || s[first] == '\r' || s[first] == '\t')) first++;
    int looks_json = first < n && (s[first] == '[' || s[first] == '{');
    ft_data_format f = o->format;
    int64_t rec_begin = rs->n, read_before = c->st->read;
    int rc;
    if (f == FT_DATA_CSV || (f == FT_DATA_AUTO && is_csv_ext)) {
        c->format = FT_DATA_CSV;
        char delim = o->csv_delimiter ? o->csv_delimiter : !strcasecmp(ext, "tsv") ? '\t' : ',';
        rc = ft__data_read_csv(c, s, n, delim);
    } else if (f == FT_DATA_DAILYDIALOG ||
               (f == FT_DATA_AUTO && !is_json_ext && !looks_json && memmem(s, n < 65536 ? n : 65536, "__eou__", 7))) {
        c->format = FT_DATA_DAILYDIALOG;
        rc = ft__data_read_dailydialog(c, s, n);
    } else if ((f == FT_DATA_TEXT && !is_json_ext) || (f == FT_DATA_AUTO && !is_json_ext && !looks_json)) {
        c->format = FT_DATA_TEXT;
        rc = ft__data_read_text(c, s, n);
    } else {
        rc = ft__data_read_json(c, s, n, !strcasecmp(ext, "jsonl"));
    }
    free(buf);
    rs->file_format[c->file] = c->format;
    FT_TRY(rc);
    if (c->st->read == read_before) FT_LOGW("%s: no records", path);
    FT_TRY(ft__data_clean(c, rec_begin));
    FT_TRY(ft__data_split_dialogue_strings(c, c->file, rec_begin));
    return FT_OK;
}

/* ---- building the dataset ---- */
static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int hist_bin(int len) {
    int b = 0;
    while (len > 1 && b < FT_DATA_HIST_BINS - 1) { len >>= 1; b++; }
    return b;
}

void ft_dataset_free(ft_dataset *ds) {
    if (!ds) return;
    free(ds->path);
    free(ds->tok_off);
    free(ds->ids);
    free(ds->learned);
    free(ds->text_off);
    free(ds->text);
    free(ds->line);
    free(ds->record);
    free(ds->file);
    for (int i = 0; i < ds->nfiles; i++) free(ds->files[i]);
    free(ds->files);
    free(ds->file_format);
    free(ds);
}

/* The most bytes one token stands for (at most 1024): bounds how much text a truncated record needs. */
static int max_piece_bytes(const ft_tokenizer *tok) {
    char buf[1024];
    int best = 1;
    for (int id = 0, n = ft_tokenizer_vocab_size(tok); id < n && best < (int)sizeof buf; id++) {
        int m = ft_tokenizer_decode_piece(tok, 0, id, buf, sizeof buf);
        if (m == FT_ERR_RANGE) m = (int)sizeof buf;
        if (m > best) best = m;
    }
    return best;
}

/* A record that will be truncated to seq_len tokens anyway is cut before tokenizing (a 50 MB JSONL string
 * is not tokenized whole to keep 256 tokens): at most `keep` bytes stay, the end (RIGHT) or the start
 * (LEFT) is dropped at a whitespace or character boundary. keep is a few times what seq_len tokens can
 * cover (each token stands for at most max_piece_bytes bytes), so the tokens kept after truncation are
 * those of the whole text: BPE merges only reach as far as one token's bytes from the cut. The learned
 * spans follow the text. Returns 1 when cut. */
static int cut_text(ft_render *r, size_t keep, ft_truncate mode) {
    if (r->len <= keep || (mode != FT_TRUNC_RIGHT && mode != FT_TRUNC_LEFT)) return 0;
    size_t cut;   /* RIGHT: new length; LEFT: bytes dropped from the start */
    if (mode == FT_TRUNC_RIGHT) {
        cut = keep;
        size_t floor_ = keep - keep / 8;
        while (cut > floor_ && r->text[cut] != ' ' && r->text[cut] != '\n') cut--;
        if (cut == floor_) cut = keep;
        while (cut > 0 && ((unsigned char)r->text[cut] & 0xC0) == 0x80) cut--;  /* not inside a character */
        r->len = cut;
        r->text[cut] = 0;
        int64_t k = 0;
        for (int64_t i = 0; i < r->nspans; i++) {
            if (r->spans[i].s >= (int64_t)cut) continue;
            r->spans[k] = r->spans[i];
            if (r->spans[k].e > (int64_t)cut) r->spans[k].e = (int64_t)cut;
            k++;
        }
        r->nspans = k;
    } else {
        cut = r->len - keep;
        size_t ceil_ = cut + keep / 8;
        while (cut < ceil_ && r->text[cut] != ' ' && r->text[cut] != '\n') cut++;
        if (cut == ceil_) cut = r->len - keep;
        while (cut < r->len && ((unsigned char)r->text[cut] & 0xC0) == 0x80) cut++;
        memmove(r->text, r->text + cut, r->len - cut + 1);
        r->len -= cut;
        int64_t k = 0;
        for (int64_t i = 0; i < r->nspans; i++) {
            if (r->spans[i].e <= (int64_t)cut) continue;
            r->spans[k].s = r->spans[i].s > (int64_t)cut ? r->spans[i].s - (int64_t)cut : 0;
            r->spans[k].e = r->spans[i].e - (int64_t)cut;
            k++;
        }
        r->nspans = k;
    }
    return 1;
}

static int build_examples(ft_dataset *ds, ft_data_ctx *c, const ft_tokenizer *tok) {
    const ft_data_options *o = c->opt;
    ft_recs *rs = c->rs;
    ft_data_stats *st = c->st;
    ft_render r;
    ft_encoder e;
    memset(&r, 0, sizeof r);
    int rc = ft__encoder_init(&e, tok, o->add_bos);
    if (rc < 0) return rc;
    int64_t n_ok = 0, learned_cap = 0, ids_cap = 0, text_cap = 0, lens_cap = 0, ntok = 0, ntext = 0;
    int *lens = NULL;
    int64_t kept_cap = rs->n + 1;
    ds->tok_off = malloc((size_t)kept_cap * sizeof *ds->tok_off);
    ds->text_off = malloc((size_t)kept_cap * sizeof *ds->text_off);
    ds->line = malloc((size_t)kept_cap * sizeof *ds->line);
    ds->record = malloc((size_t)kept_cap * sizeof *ds->record);
    ds->file = malloc((size_t)kept_cap * sizeof *ds->file);
    if (!ds->tok_off || !ds->text_off || !ds->line || !ds->record || !ds->file) {
        rc = ft_error(FT_ERR_NOMEM, "data: out of memory");
        goto done;
    }
    int first_kind = 0;
    /* text kept of a record that is truncated: 2x what seq_len tokens can stand for, and at least 64 KiB */
    size_t keep_bytes = (size_t)(o->seq_len + 16) * (size_t)max_piece_bytes(tok) * 2 + 65536;
    for (int64_t i = 0; i < rs->n; i++) {
        const ft_rec *x = &rs->recs[i];
        if (x->dropped) continue;
        c->path = rs->files[x->file];
        rc = ft__data_render(&r, rs, i, o->train_on, o);
        if (rc == FT_ERR_INVALID || rc == FT_ERR_UNSUPPORTED) {  /* the chat template refused this record */
            char msg[512];
            snprintf(msg, sizeof msg, "%s", ft_last_error());
            if ((rc = ft__data_drop_rec(c, i, FT_DROP_MALFORMED, NULL, "chat template: %s", msg)) < 0) goto done;
            continue;
        }
        if (rc < 0) goto done;
        if (rc == 1) {
            if ((rc = ft__data_drop_rec(c, i, FT_DROP_NO_TARGET, NULL, "nothing to learn under train_on=completion "
                                       "(no assistant turn / completion / response speaker)")) < 0)
                goto done;
            continue;
        }
        int n = 0;
        ft_truncate tm = o->truncate;
        if (tm == FT_TRUNC_AUTO) tm = x->kind == FT_REC_TEXT ? FT_TRUNC_NONE : FT_TRUNC_RIGHT;
        int text_cut = o->seq_len > 0 && cut_text(&r, keep_bytes, tm);
        if ((rc = ft__encoder_run(&e, &r, &n)) < 0) {
            ft_error_wrap(rc, "%s: line %d: record %lld", rs->files[x->file], x->line, (long long)x->index);
            goto done;
        }
        int full = n;   /* of the text kept: a record cut before tokenizing had more */
        int cut = ft__encoder_truncate(&e, &n, o->seq_len, tm) || text_cut;
        st->over_seq_len += full > o->seq_len;
        int any = 0;
        for (int k = 1; k < n && !any; k++) any = e.learn[k];
        if (!any) {
            if (cut)
                rc = ft__data_drop_rec(c, i, FT_DROP_NO_TARGET, NULL, "no learned token left after %s truncation to %d "
                                      "tokens (of %d)", ft_truncate_name(tm), o->seq_len, full);
            else
                rc = ft__data_drop_rec(c, i, FT_DROP_NO_TARGET, NULL, "no learned token (%d tokens)", n);
            if (rc < 0)
                goto done;
            continue;
        }
        if (!first_kind) {
            first_kind = x->kind;
            st->truncate = tm;
            st->train_on = ft__data_resolve_train_on(o->train_on, x->kind);
        }
        st->truncated += cut;
        if ((rc = ft__data_reserve((void **)&ds->ids, sizeof *ds->ids, ntok + n, &ids_cap)) < 0) goto done;
        if ((rc = ft__data_reserve((void **)&ds->learned, 1, ntok + n, &learned_cap)) < 0) goto done;
        memcpy(ds->ids + ntok, e.ids, (size_t)n * sizeof *e.ids);
        memcpy(ds->learned + ntok, e.learn, (size_t)n);
        for (int k = 1; k < n; k++) st->learned += e.learn[k];
        if ((rc = ft__data_reserve((void **)&ds->text, 1, ntext + (int64_t)r.len + 1, &text_cap)) < 0) goto done;
        memcpy(ds->text + ntext, r.text, r.len + 1);
        if ((rc = ft__data_reserve((void **)&lens, sizeof *lens, n_ok + 1, &lens_cap)) < 0) goto done;
        lens[n_ok] = full;
        ds->tok_off[n_ok] = ntok;
        ds->text_off[n_ok] = ntext;
        ds->line[n_ok] = x->line;
        ds->record[n_ok] = x->index;
        ds->file[n_ok] = x->file;
        ntok += n;
        ntext += (int64_t)r.len + 1;
        n_ok++;
    }
    ds->tok_off[n_ok] = ntok;
    ds->text_off[n_ok] = ntext;
    ds->n = n_ok;
    st->kept = n_ok;
    st->tokens = ntok;
    if (n_ok > 0) {
        double sum = 0;
        for (int64_t i = 0; i < n_ok; i++) { sum += lens[i]; st->hist[hist_bin(lens[i])]++; }
        qsort(lens, (size_t)n_ok, sizeof *lens, cmp_int);
        st->len_min = lens[0];
        st->len_max = lens[n_ok - 1];
        st->len_mean = sum / (double)n_ok;
        st->len_p50 = lens[(n_ok - 1) * 50 / 100];
        st->len_p90 = lens[(n_ok - 1) * 90 / 100];
        st->len_p99 = lens[(n_ok - 1) * 99 / 100];
    }
    rc = FT_OK;
done:
    free(lens);
    ft__render_free(&r);
    ft__encoder_free(&e);
    return rc;
}

static void drops_text(const ft_data_stats *st, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    for (int d = 0; d < FT_DROP_COUNT; d++) {
        if (!st->dropped[d]) continue;
        int w = snprintf(buf + n, cap - n, "%s%s %lld", n ? ", " : "", ft_data_drop_name((ft_data_drop)d),
                         (long long)st->dropped[d]);
        if (w < 0 || (size_t)w >= cap - n) break;
        n += (size_t)w;
    }
}

int ft_dataset_load(ft_dataset **out, const char *path, const ft_tokenizer *tok, const ft_data_options *opt) {
    *out = NULL;
    ft_data_options defaults = ft_data_default_options();
    const ft_data_options *o = opt ? opt : &defaults;
    if (!path || !tok) return ft_error(FT_ERR_INVALID, "ft_dataset_load: missing path or tokenizer");
    if (o->seq_len < 2) return ft_error(FT_ERR_INVALID, "data: seq_len must be at least 2 (got %d)", o->seq_len);
    if ((unsigned)o->format >= FT_DATA_FORMAT_COUNT) return ft_error(FT_ERR_INVALID, "data: bad format %d", o->format);
    if ((o->prompt_column == NULL) != (o->completion_column == NULL))
        return ft_error(FT_ERR_INVALID, "data: prompt_column and completion_column go together");
    if (!o->speakers[0] || !o->speakers[1]) return ft_error(FT_ERR_INVALID, "data: two speaker names are needed");
    if (o->max_chars > 0 && o->max_chars < o->min_chars)
        return ft_error(FT_ERR_INVALID, "data: max_chars %d < min_chars %d", o->max_chars, o->min_chars);
    ft_dataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->path = strdup(path))) { free(ds); return ft_error(FT_ERR_NOMEM, "data: out of memory"); }
    ft_recs rs;
    memset(&rs, 0, sizeof rs);
    ft_data_ctx c;
    memset(&c, 0, sizeof c);
    c.opt = o;
    c.st = &ds->stats;
    c.rs = &rs;
    c.path = path;
    ds->stats.seq_len = o->seq_len;
    char **files = NULL;
    int nfiles = 0;
    int rc = list_files(path, &files, &nfiles);
    for (int i = 0; rc == FT_OK && i < nfiles; i++) rc = read_one_file(&c, files[i]);
    for (int i = 0; i < nfiles; i++) free(files[i]);
    free(files);
    if (rc == FT_OK) {
        ds->stats.files = rs.nfiles;
        ds->stats.format = rs.nfiles ? rs.file_format[0] : FT_DATA_AUTO;
        c.path = path;
        rc = ft__data_filter(&c);
    }
    if (rc == FT_OK) rc = build_examples(ds, &c, tok);
    for (int d = 0; rc == FT_OK && d < FT_DROP_COUNT; d++)
        if (c.warned[d] > o->max_warnings && !o->strict)
            FT_LOGW("%s: %lld more '%s' records skipped (not shown)", path, (long long)(c.warned[d] - o->max_warnings),
                    ft_data_drop_name((ft_data_drop)d));
    if (rc == FT_OK && ds->n == 0) {
        char drops[512];
        drops_text(&ds->stats, drops, sizeof drops);
        rc = ft_error(FT_ERR_FORMAT, "%s: no usable record (%lld read%s%s)", path, (long long)ds->stats.read,
                      drops[0] ? "; dropped: " : "", drops);
    }
    if (rc == FT_OK) {
        ds->files = rs.files;
        ds->file_format = rs.file_format;
        ds->nfiles = rs.nfiles;
        rs.files = NULL;
        rs.file_format = NULL;
        rs.nfiles = 0;
        int pad = ft_tokenizer_pad(tok), eos = ft_tokenizer_eos(tok);
        ds->eos_id = eos;
        ds->pad_id = pad >= 0 ? pad : eos >= 0 ? eos : 0;
    }
    ft__recs_free(&rs);
    if (rc < 0) { ft_dataset_free(ds); return rc; }
    *out = ds;
    return FT_OK;
}

/* ---- accessors ---- */
int64_t ft_dataset_size(const ft_dataset *ds) { return ds ? ds->n : 0; }
const ft_data_stats *ft_dataset_stats(const ft_dataset *ds) { return &ds->stats; }
int ft_dataset_pad_id(const ft_dataset *ds) { return ds->pad_id; }
int ft_dataset_eos_id(const ft_dataset *ds) { return ds->eos_id; }

int ft_dataset_example(const ft_dataset *ds, int64_t i, const int **ids, const uint8_t **learned, int *n) {
    if (!ds || i < 0 || i >= ds->n)
        return ft_error(FT_ERR_RANGE, "data: example %lld out of range (%lld examples)", (long long)i, (long long)(ds ? ds->n : 0));
    if (ids) *ids = ds->ids + ds->tok_off[i];
    if (learned) *learned = ds->learned + ds->tok_off[i];
    if (n) *n = (int)(ds->tok_off[i + 1] - ds->tok_off[i]);
    return FT_OK;
}

const char *ft_dataset_text(const ft_dataset *ds, int64_t i, size_t *len) {
    if (!ds || i < 0 || i >= ds->n) return NULL;
    if (len) *len = (size_t)(ds->text_off[i + 1] - ds->text_off[i] - 1);
    return ds->text + ds->text_off[i];
}

const char *ft_dataset_source(const ft_dataset *ds, int64_t i, int *line, int64_t *record) {
    if (!ds || i < 0 || i >= ds->n) return NULL;
    if (line) *line = ds->line[i];
    if (record) *record = ds->record[i];
    return ds->files[ds->file[i]];
}

void ft_dataset_print_summary(const ft_dataset *ds, FILE *fp) {
    const ft_data_stats *s = &ds->stats;
    char drops[512];
    drops_text(s, drops, sizeof drops);
    int64_t dropped = 0;
    for (int d = 0; d < FT_DROP_COUNT; d++) dropped += s->dropped[d];
    int mixed = 0;
    for (int i = 1; i < ds->nfiles; i++) mixed |= ds->file_format[i] != ds->file_format[0];
    fprintf(fp, "data: %s (%s%s, %lld file%s)\n", ds->path, ft_data_format_name(s->format),
            mixed ? " and other formats" : "", (long long)s->files, s->files == 1 ? "" : "s");
    fprintf(fp, "  records: %lld read, %lld kept, %lld dropped%s%s%s\n", (long long)s->read, (long long)s->kept,
            (long long)dropped, dropped ? " (" : "", drops, dropped ? ")" : "");
    fprintf(fp, "  cleaning: %lld records NFC-normalised, %lld with whitespace cleaned\n", (long long)s->nfc_changed,
            (long long)s->ws_changed);
    fprintf(fp, "  tokens: %lld in %lld examples, %lld learned (train_on=%s)\n", (long long)s->tokens,
            (long long)s->kept, (long long)s->learned, ft_train_on_name(s->train_on));
    fprintf(fp, "  length (tokens, before truncation): min %d, mean %.1f, p50 %d, p90 %d, p99 %d, max %d\n", s->len_min,
            s->len_mean, s->len_p50, s->len_p90, s->len_p99, s->len_max);
    fprintf(fp, "  longer than seq_len %d: %lld; truncated (%s): %lld\n", s->seq_len, (long long)s->over_seq_len,
            ft_truncate_name(s->truncate), (long long)s->truncated);
    int64_t top = 1;
    for (int b = 0; b < FT_DATA_HIST_BINS; b++) if (s->hist[b] > top) top = s->hist[b];
    int lo = 0, hi = FT_DATA_HIST_BINS - 1;
    while (lo < hi && !s->hist[lo]) lo++;
    while (hi > lo && !s->hist[hi]) hi--;
    fprintf(fp, "  length histogram:\n");
    for (int b = lo; b <= hi; b++) {
        char bar[41];
        int w = (int)(40 * s->hist[b] / top);
        if (s->hist[b] && w == 0) w = 1;
        memset(bar, '#', (size_t)w);
        bar[w] = 0;
        fprintf(fp, "    %7lld-%-7lld %7lld %s%s\n", 1LL << b, (1LL << (b + 1)) - 1, (long long)s->hist[b], bar,
                (1LL << b) > s->seq_len ? "  (> seq_len)" : "");
    }
}
