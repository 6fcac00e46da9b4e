/* test_tokenizer_common.h — fixture readers and comparison loops shared by tests/test_tokenizer*.c.
 *
 * Fixtures (tests/fixtures/tokenizer, written by tests/parity/make_tokenizer_fixtures.py):
 *   lines.txt         one text per line ("\n"-separated, the last line ends with "\n")
 *   <name>_ids.txt    one line of reference ids per text line; "*" = not compared
 * Each comparison prints "<name>: N lines, T tokens compared, M mismatching lines" and the first few
 * mismatches with both id lists. */
#ifndef TEST_TOKENIZER_COMMON_H
#define TEST_TOKENIZER_COMMON_H
#include "testutil.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* helpers: not every test file uses all of them */
#define TT_FN static __attribute__((unused))

typedef struct tt_lines {
    char   *data;     /* the file, lines NUL-terminated in place */
    char  **s;        /* s[i]: line i (without its "\n") */
    size_t *len;
    int     n;
} tt_lines;

TT_FN void tt_lines_free(tt_lines *l) { free(l->data); free(l->s); free(l->len); memset(l, 0, sizeof *l); }

TT_FN int tt_read_lines(tt_lines *l, const char *rel) {
    memset(l, 0, sizeof *l);
    size_t size;
    if (ft_file_read_all(ft_fixture(rel), &l->data, &size) < 0) { printf("cannot read %s: %s\n", rel, ft_last_error()); return -1; }
    int cap = 0;
    for (size_t i = 0; i < size; i++) cap += l->data[i] == '\n';
    l->s = malloc(sizeof *l->s * (size_t)(cap + 1));
    l->len = malloc(sizeof *l->len * (size_t)(cap + 1));
    size_t start = 0;
    for (size_t i = 0; i < size; i++) {
        if (l->data[i] != '\n') continue;
        l->data[i] = 0;
        l->s[l->n] = l->data + start;
        l->len[l->n] = i - start;
        l->n++;
        start = i + 1;
    }
    return 0;
}

/* Reference ids: ids[i] (n[i] entries) for line i, n[i] = -1 for a "*" line. */
typedef struct tt_ids { int **ids; int *n; int lines; } tt_ids;

TT_FN void tt_ids_free(tt_ids *r) {
    for (int i = 0; i < r->lines; i++) free(r->ids[i]);
    free(r->ids); free(r->n);
    memset(r, 0, sizeof *r);
}

TT_FN void tt_parse_id_list(const char *s, int **ids, int *n) {
    int cap = 16, k = 0;
    *ids = malloc(sizeof **ids * (size_t)cap);
    char *end;
    for (;;) {
        long v = strtol(s, &end, 10);
        if (end == s) break;
        if (k == cap) { cap *= 2; *ids = realloc(*ids, sizeof **ids * (size_t)cap); }
        (*ids)[k++] = (int)v;
        s = end;
    }
    *n = k;
}

TT_FN int tt_read_ids(tt_ids *r, const char *rel) {
    memset(r, 0, sizeof *r);
    tt_lines l;
    if (tt_read_lines(&l, rel) < 0) return -1;
    r->lines = l.n;
    r->ids = calloc((size_t)l.n + 1, sizeof *r->ids);
    r->n = calloc((size_t)l.n + 1, sizeof *r->n);
    for (int i = 0; i < l.n; i++) {
        if (strcmp(l.s[i], "*") == 0) { r->n[i] = -1; continue; }
        tt_parse_id_list(l.s[i], &r->ids[i], &r->n[i]);
    }
    tt_lines_free(&l);
    return 0;
}

TT_FN void tt_print_ids(const char *label, const int *ids, int n) {
    printf("      %s (%d):", label, n);
    for (int i = 0; i < n && i < 40; i++) printf(" %d", ids[i]);
    printf(n > 40 ? " ...\n" : "\n");
}

TT_FN double tt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Encodes every line and compares with the reference; returns the number of mismatching lines. */
TT_FN int tt_compare(const char *name, const ft_tokenizer *tok, const tt_lines *lines, const tt_ids *ref, int flags) {
    int bad = 0, compared = 0;
    long tokens = 0;
    double t0 = tt_now();
    for (int i = 0; i < lines->n && i < ref->lines; i++) {
        if (ref->n[i] < 0) continue;
        int *ids, n;
        int rc = ft_tokenizer_encode(tok, lines->s[i], lines->len[i], flags, &ids, &n);
        if (rc < 0) { printf("    line %d: encode failed: %s\n", i + 1, ft_last_error()); bad++; continue; }
        compared++;
        tokens += ref->n[i];
        if (n != ref->n[i] || memcmp(ids, ref->ids[i], sizeof *ids * (size_t)n) != 0) {
            if (++bad <= 5) {
                printf("    MISMATCH line %d: '%s'\n", i + 1, lines->s[i]);
                tt_print_ids("ref", ref->ids[i], ref->n[i]);
                tt_print_ids("got", ids, n);
            }
        }
        free(ids);
    }
    double dt = tt_now() - t0;
    printf("%s: %d lines, %ld tokens compared, %d mismatching lines (%.1f ms, %.0f tokens/s)\n", name, compared, tokens, bad,
           1e3 * dt, dt > 0 ? (double)tokens / dt : 0.0);
    if (lines->n != ref->lines) { printf("%s: %d text lines but %d id lines\n", name, lines->n, ref->lines); bad++; }
    return bad;
}

/* decode(encode(x)) == x for every line for which keep(line) is true; also checks that the
 * concatenated decode_piece output equals decode. Returns the number of failing lines. */
TT_FN int tt_roundtrip(const char *name, const ft_tokenizer *tok, const tt_lines *lines, int enc_flags, int dec_flags,
                        int (*keep)(const char *, size_t)) {
    int bad = 0, checked = 0;
    char *pieces = NULL;
    size_t pcap = 0;
    for (int i = 0; i < lines->n; i++) {
        if (keep && !keep(lines->s[i], lines->len[i])) continue;
        int *ids, n;
        char *text; size_t len;
        if (ft_tokenizer_encode(tok, lines->s[i], lines->len[i], enc_flags, &ids, &n) < 0 ||
            ft_tokenizer_decode(tok, ids, n, dec_flags, &text, &len) < 0) {
            printf("    line %d: %s\n", i + 1, ft_last_error()); bad++; continue;
        }
        checked++;
        if (len != lines->len[i] || memcmp(text, lines->s[i], len) != 0) {
            if (++bad <= 5) printf("    ROUNDTRIP line %d:\n      in  '%s'\n      out '%s'\n", i + 1, lines->s[i], text);
        } else if (!(dec_flags & FT_TOK_SKIP_SPECIAL)) {
            size_t k = 0;
            for (int j = 0; j < n; j++) {
                if (pcap < k + 256) { pcap = 2 * (k + 256); pieces = realloc(pieces, pcap); }
                int m = ft_tokenizer_decode_piece(tok, j ? ids[j - 1] : -1, ids[j], pieces + k, pcap - k);
                if (m < 0) { k = (size_t)-1; break; }
                k += (size_t)m;
            }
            if (k != len || memcmp(pieces, text, len) != 0) {
                if (++bad <= 5) printf("    decode_piece concatenation differs from decode on line %d\n", i + 1);
            }
        }
        free(ids); free(text);
    }
    free(pieces);
    printf("%s: decode(encode(x)) == x on %d of %d lines checked (%d failing)\n", name, checked - bad, checked, bad);
    return bad;
}

TT_FN int tt_load(ft_tokenizer **tok, const char *rel) {
    int rc = ft_tokenizer_load(tok, ft_fixture(rel));
    if (rc < 0) printf("load %s: %s\n", rel, ft_last_error());
    return rc;
}

/* Reads chunk_ids.txt's line for `name` ("name id id ..."); n = -1 if absent. */
TT_FN void tt_read_chunk(const char *name, int **ids, int *n) {
    *ids = NULL; *n = -1;
    tt_lines l;
    if (tt_read_lines(&l, "tokenizer/chunk_ids.txt") < 0) return;
    size_t nl = strlen(name);
    for (int i = 0; i < l.n; i++)
        if (strncmp(l.s[i], name, nl) == 0 && l.s[i][nl] == ' ') { tt_parse_id_list(l.s[i] + nl + 1, ids, n); break; }
    tt_lines_free(&l);
}

/* The first nlines lines joined with "\n" (the multi-line chunk of chunk_ids.txt). */
TT_FN char *tt_join(const tt_lines *l, int nlines, size_t *len) {
    size_t total = 0;
    for (int i = 0; i < nlines; i++) total += l->len[i] + 1;
    char *s = malloc(total + 1);
    size_t k = 0;
    for (int i = 0; i < nlines; i++) {
        if (i) s[k++] = '\n';
        memcpy(s + k, l->s[i], l->len[i]);
        k += l->len[i];
    }
    s[k] = 0;
    *len = k;
    return s;
}

#define TT_CHUNK_LINES 300

/* Compares the ids of the joined chunk; with lossless, decode(encode(chunk)) == chunk is required too. */
TT_FN int tt_compare_chunk(const char *name, const ft_tokenizer *tok, const tt_lines *lines, int lossless) {
    int *ref, nref;
    tt_read_chunk(name, &ref, &nref);
    if (nref < 0) { printf("%s: no chunk ids\n", name); return 1; }
    size_t len;
    char *text = tt_join(lines, TT_CHUNK_LINES, &len);
    int *ids, n, bad = 0;
    if (ft_tokenizer_encode(tok, text, len, 0, &ids, &n) < 0) { printf("%s\n", ft_last_error()); free(text); free(ref); return 1; }
    int first = -1;
    for (int i = 0; i < n && i < nref; i++) if (ids[i] != ref[i]) { first = i; break; }
    if (n != nref || first >= 0) bad = 1;
    printf("%s chunk: %d lines joined with \\n (%zu bytes): %d tokens vs %d reference, %s", name, TT_CHUNK_LINES, len, n, nref,
           bad ? "MISMATCH" : "identical\n");
    if (bad) printf(" at token %d\n", first);
    char *back; size_t blen;
    if (lossless) {
        int same = 0;
        if (ft_tokenizer_decode(tok, ids, n, 0, &back, &blen) == 0) {
            same = blen == len && memcmp(back, text, len) == 0;
            free(back);
        }
        printf("%s chunk: decode(encode(chunk)) %s\n", name, same ? "== chunk" : "!= chunk");
        bad |= !same;
    }
    free(ids); free(text); free(ref);
    return bad;
}

/* 200 KB inputs of one kind each (a whitespace run, one long word, digits, newlines, a mix): encode
 * must finish quickly and decode back exactly. Returns the number of inexact decodes. */
TT_FN int tt_long_inputs(const char *name, const ft_tokenizer *tok) {
    const size_t N = 200000;
    char *s = malloc(N + 16);
    const char *kinds[] = { "spaces then word", "one long word", "long digits", "newlines", "mixed" };
    int bad = 0;
    for (int k = 0; k < 5; k++) {
        for (size_t i = 0; i < N; i++)
            s[i] = k == 0 ? ' ' : k == 1 ? (char)('a' + i % 26) : k == 2 ? (char)('0' + i % 10) : k == 3 ? '\n' : "ab \n\t1."[i % 7];
        if (k == 0) memcpy(s + N - 4, "word", 4);
        double t0 = tt_now();
        int *ids, n;
        if (ft_tokenizer_encode(tok, s, N, 0, &ids, &n) < 0) { printf("%s: %s\n", name, ft_last_error()); bad++; continue; }
        double dt = tt_now() - t0;
        char *out; size_t olen;
        if (ft_tokenizer_decode(tok, ids, n, 0, &out, &olen) < 0) { free(ids); bad++; continue; }
        int exact = olen == N && memcmp(out, s, N) == 0;
        printf("%s: %zu bytes of %-16s -> %7d tokens in %6.1f ms, decode exact: %s\n", name, N, kinds[k], n, 1e3 * dt,
               exact ? "yes" : "NO");
        bad += !exact;
        free(ids); free(out);
    }
    free(s);
    return bad;
}
#endif
