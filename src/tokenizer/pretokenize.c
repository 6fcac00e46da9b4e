/* pretokenize.c — normalizers and pre-tokenizers (HF tokenizers semantics), regexes through PCRE2.
 *
 * HF tokenizers runs its patterns with Oniguruma, where \s is the Unicode White_Space set; PCRE2
 * with UCP also counts U+180E as space. ft__tok_regex_compile rewrites \s and \S to the explicit
 * White_Space class so both engines split text identically. Subjects may hold invalid UTF-8
 * (PCRE2_MATCH_INVALID_UTF): such bytes never match and end up in the gaps between matches, which
 * are pieces too, so every input byte reaches the BPE. */
#include "tokenizer_impl.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

const char ft_gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* Unicode White_Space, as Oniguruma's \s (PCRE2 adds U+180E) */
static const char k_ws[] = "\\t-\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}";

int ft__tok_regex_compile(pcre2_code **out, const char *pattern, int is_regex) {
    *out = NULL;
    size_t n = strlen(pattern);
    char *pat = malloc(n * sizeof k_ws + 8);   /* each \s grows to at most the class plus brackets */
    if (!pat) return ft_error(FT_ERR_NOMEM, "tokenizer: out of memory");
    size_t k = 0;
    if (is_regex) {
        int depth = 0, class_start = 0;   /* class_start: just after '[' or '[^' (a ']' there is literal) */
        for (size_t i = 0; i < n; i++) {
            char c = pattern[i];
            if (c == '\\' && i + 1 < n) {
                char d = pattern[i + 1];
                if (d == 's' || (d == 'S' && depth == 0)) {
                    if (depth == 0) { pat[k++] = '['; if (d == 'S') pat[k++] = '^'; }
                    memcpy(pat + k, k_ws, sizeof k_ws - 1); k += sizeof k_ws - 1;
                    if (depth == 0) pat[k++] = ']';
                } else {
                    pat[k++] = c; pat[k++] = d;
                }
                i++;
                class_start = 0;
                continue;
            }
            if (c == '[' ) { depth++; class_start = 1; pat[k++] = c; if (i + 1 < n && pattern[i + 1] == '^') { pat[k++] = '^'; i++; } continue; }
            if (c == ']' && depth > 0 && !class_start) depth--;
            class_start = 0;
            pat[k++] = c;
        }
    } else {
        memcpy(pat, pattern, n); k = n;
    }
    int err; PCRE2_SIZE erroff;
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (is_regex ? PCRE2_UCP : PCRE2_LITERAL);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, k, opts, &err, &erroff, NULL);
    free(pat);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return ft_error(FT_ERR_FORMAT, "tokenizer: cannot compile pattern '%s': %s (at offset %zu)", pattern, (char *)msg,
                        (size_t)erroff);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);   /* without JIT the interpreter runs; same results */
    *out = re;
    return FT_OK;
}

void ft__pretok_step_free(ft_pretok_step *p) {
    free(p->pattern);
    free(p->replacement);
    if (p->re) pcre2_code_free(p->re);
}

/* ---- normalizers ---- */
static int all_ascii(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) if ((unsigned char)s[i] >= 0x80) return 0;
    return 1;
}

/* cur is s or one of w->nbuf; returns the other buffer index to write into */
static int other_buf(const ft_tok_work *w, const char *cur) { return cur == w->nbuf[0] ? 1 : 0; }

int ft__tok_normalize(const ft_tokenizer *tok, ft_tok_work *w, const char *s, size_t len, const char **out, size_t *out_len) {
    const char *cur = s;
    size_t n = len;
    for (int si = 0; si < tok->n_norm; si++) {
        const ft_norm_step *st = &tok->norm[si];
        int o = other_buf(w, cur);
        switch (st->kind) {
        case FT_NORM_NFC: case FT_NORM_NFD: case FT_NORM_NFKC: case FT_NORM_NFKD: {
            if (all_ascii(cur, n)) break;
            int opt = UTF8PROC_STABLE;
            if (st->kind == FT_NORM_NFC || st->kind == FT_NORM_NFKC) opt |= UTF8PROC_COMPOSE; else opt |= UTF8PROC_DECOMPOSE;
            if (st->kind == FT_NORM_NFKC || st->kind == FT_NORM_NFKD) opt |= UTF8PROC_COMPAT;
            utf8proc_uint8_t *dst = NULL;
            utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)cur, (utf8proc_ssize_t)n, &dst, (utf8proc_option_t)opt);
            if (m < 0) break;  /* invalid UTF-8: left as it is */
            int rc = ft__tok_reserve_bytes(&w->nbuf[o], (size_t)m + 1, &w->ncap[o]);
            if (rc == FT_OK) memcpy(w->nbuf[o], dst, (size_t)m);
            free(dst);
            FT_TRY(rc);
            cur = w->nbuf[o]; n = (size_t)m;
            break;
        }
        case FT_NORM_LOWERCASE: {   /* Rust's char::to_lowercase, as HF (U+0130 gives two characters) */
            FT_TRY(ft__tok_reserve_bytes(&w->nbuf[o], 4 * n + 1, &w->ncap[o]));
            size_t k = 0;
            for (size_t i = 0; i < n;) {
                int32_t cp, lc[2];
                int c = ft__tok_utf8_next((const unsigned char *)cur + i, n - i, &cp);
                if (cp < 0) { w->nbuf[o][k++] = cur[i]; i++; continue; }
                int m = ft__tok_lowercase_cp(cp, lc);
                for (int j = 0; j < m; j++) k += (size_t)ft__utf8_encode((uint32_t)lc[j], w->nbuf[o] + k);
                i += (size_t)c;
            }
            cur = w->nbuf[o]; n = k;
            break;
        }
        case FT_NORM_BERT: case FT_NORM_STRIP_ACCENTS: {
            size_t k;
            FT_TRY(ft__tok_bert_normalize(st, w, o, cur, n, &k));
            cur = w->nbuf[o]; n = k;
            break;
        }
        case FT_NORM_PREPEND: {
            if (n == 0) break;
            size_t pl = strlen(st->a);
            FT_TRY(ft__tok_reserve_bytes(&w->nbuf[o], pl + n + 1, &w->ncap[o]));
            memcpy(w->nbuf[o], st->a, pl);
            memcpy(w->nbuf[o] + pl, cur, n);
            cur = w->nbuf[o]; n += pl;
            break;
        }
        case FT_NORM_REPLACE: {
            size_t fl = strlen(st->a), tl = strlen(st->b);
            if (fl == 0) break;
            size_t cnt = 0;
            for (size_t i = 0; i + fl <= n;) {
                if (memcmp(cur + i, st->a, fl) == 0) { cnt++; i += fl; } else i++;
            }
            if (cnt == 0) break;
            FT_TRY(ft__tok_reserve_bytes(&w->nbuf[o], n + cnt * tl + 1, &w->ncap[o]));
            size_t k = 0;
            for (size_t i = 0; i < n;) {
                if (i + fl <= n && memcmp(cur + i, st->a, fl) == 0) { memcpy(w->nbuf[o] + k, st->b, tl); k += tl; i += fl; }
                else w->nbuf[o][k++] = cur[i++];
            }
            cur = w->nbuf[o]; n = k;
            break;
        }
        }
    }
    *out = cur; *out_len = n;
    return FT_OK;
}

/* ---- pieces ---- */
static int emit(ft_tok_work *w, int dst, const char *s, size_t n, int origin) {
    if (n == 0) return FT_OK;
    size_t used = w->npc[dst] ? w->pc[dst][w->npc[dst] - 1].off + w->pc[dst][w->npc[dst] - 1].len : 0;
    if (used + n > UINT32_MAX) return ft_error(FT_ERR_RANGE, "tokenizer: text too long");
    FT_TRY(ft__tok_reserve_bytes(&w->buf[dst], used + n + 1, &w->bcap[dst]));
    FT_TRY(ft__tok_reserve((void **)&w->pc[dst], sizeof *w->pc[dst], w->npc[dst] + 1, &w->pccap[dst]));
    memcpy(w->buf[dst] + used, s, n);
    w->pc[dst][w->npc[dst]++] = (ft_tok_piece){ (uint32_t)used, (uint32_t)n, (uint8_t)origin };
    return FT_OK;
}

static int add_span(ft_tok_work *w, size_t s, size_t e, int m) {
    FT_TRY(ft__tok_reserve((void **)&w->spans, sizeof *w->spans, w->nspans + 1, &w->spans_cap));
    w->spans[w->nspans].s = s; w->spans[w->nspans].e = e; w->spans[w->nspans].m = (uint8_t)m;
    w->nspans++;
    return FT_OK;
}

/* Matches and the gaps between them, covering s[0..n). Empty matches are skipped. */
static int regex_spans(ft_tok_work *w, const pcre2_code *re, const char *s, size_t n) {
    w->nspans = 0;
    size_t off = 0, prev = 0;
    while (off < n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, off, 0, w->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return ft_error(FT_ERR_INVALID, "tokenizer: regex match failed: %s", (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
        size_t ms = ov[0], me = ov[1];
        if (me <= ms) {   /* empty match: step over one character */
            int32_t cp;
            off = ms + (size_t)ft__tok_utf8_next((const unsigned char *)s + ms, n - ms, &cp);
            continue;
        }
        if (ms > prev) FT_TRY(add_span(w, prev, ms, 0));
        FT_TRY(add_span(w, ms, me, 1));
        prev = off = me;
    }
    if (prev < n) FT_TRY(add_span(w, prev, n, 0));
    return FT_OK;
}

/* Literal delimiter spans (Metaspace split). */
static int literal_spans(ft_tok_work *w, const char *delim, const char *s, size_t n) {
    w->nspans = 0;
    size_t dl = strlen(delim), prev = 0;
    for (size_t i = 0; dl && i + dl <= n;) {
        if (memcmp(s + i, delim, dl) == 0) {
            if (i > prev) FT_TRY(add_span(w, prev, i, 0));
            FT_TRY(add_span(w, i, i + dl, 1));
            i += dl; prev = i;
        } else i++;
    }
    if (prev < n) FT_TRY(add_span(w, prev, n, 0));
    return FT_OK;
}

/* Applies a split behavior (HF SplitDelimiterBehavior) to w->spans and emits the pieces. */
static int emit_spans(ft_tok_work *w, int dst, const char *s, ft_split_behavior beh, int invert, int origin) {
    int n = w->nspans;
    if (invert) for (int i = 0; i < n; i++) w->spans[i].m ^= 1;
    /* fold in place into (start, end, removed) pieces */
    int k = 0;
    switch (beh) {
    case FT_SPLIT_ISOLATED:
        for (int i = 0; i < n; i++) w->spans[i].m = 0;
        k = n;
        break;
    case FT_SPLIT_REMOVED:
        k = n;   /* matches stay flagged and are dropped below */
        break;
    case FT_SPLIT_CONTIGUOUS: {
        int prevm = 0;
        for (int i = 0; i < n; i++) {
            int m = w->spans[i].m;
            if (m == prevm && k > 0) w->spans[k - 1].e = w->spans[i].e;
            else { w->spans[k] = w->spans[i]; w->spans[k].m = 0; k++; }
            prevm = m;
        }
        break;
    }
    case FT_SPLIT_MERGED_PREV: {
        int prevm = 0;
        for (int i = 0; i < n; i++) {
            int m = w->spans[i].m;
            if (m && !prevm && k > 0) w->spans[k - 1].e = w->spans[i].e;
            else { w->spans[k] = w->spans[i]; w->spans[k].m = 0; k++; }
            prevm = m;
        }
        break;
    }
    case FT_SPLIT_MERGED_NEXT: {
        /* right to left: a delimiter joins the piece after it unless that one is a delimiter too */
        int prevm = 0;
        k = n;
        for (int i = n - 1; i >= 0; i--) {
            int m = w->spans[i].m;
            if (m && !prevm && k < n) w->spans[k].s = w->spans[i].s;
            else { k--; w->spans[k] = w->spans[i]; w->spans[k].m = 0; }
            prevm = m;
        }
        for (int i = k; i < n; i++) w->spans[i - k] = w->spans[i];
        k = n - k;
        break;
    }
    }
    for (int i = 0; i < k; i++) {
        if (w->spans[i].m) continue;
        FT_TRY(emit(w, dst, s + w->spans[i].s, w->spans[i].e - w->spans[i].s, origin && w->spans[i].s == 0));
    }
    return FT_OK;
}

static int step_metaspace(const ft_pretok_step *st, ft_tok_work *w, int src, int dst) {
    const char *rep = st->replacement ? st->replacement : FT_SPM_SPACE;
    size_t rl = strlen(rep);
    for (int p = 0; p < w->npc[src]; p++) {
        const ft_tok_piece pc = w->pc[src][p];
        const char *s = w->buf[src] + pc.off;
        /* replace ' ' -> rep, then maybe prepend rep (into w->tmp, free while pre-tokenizing) */
        size_t spaces = 0;
        for (uint32_t i = 0; i < pc.len; i++) spaces += s[i] == ' ';
        FT_TRY(ft__tok_reserve_bytes(&w->tmp, pc.len + spaces * rl + rl + 1, &w->tmp_cap));
        char *o = w->tmp;
        size_t k = 0;
        int starts = pc.len > 0 && (s[0] == ' ' || (pc.len >= rl && memcmp(s, rep, rl) == 0));
        int prepend = !starts && (st->prepend_scheme == FT_PREPEND_ALWAYS ||
                                  (st->prepend_scheme == FT_PREPEND_FIRST && pc.origin));
        if (prepend) { memcpy(o, rep, rl); k += rl; }
        for (uint32_t i = 0; i < pc.len; i++) {
            if (s[i] == ' ') { memcpy(o + k, rep, rl); k += rl; } else o[k++] = s[i];
        }
        if (!st->split) { FT_TRY(emit(w, dst, o, k, pc.origin)); continue; }
        /* split on rep, each rep joining the text after it (MergedWithNext) */
        FT_TRY(literal_spans(w, rep, o, k));
        FT_TRY(emit_spans(w, dst, o, FT_SPLIT_MERGED_NEXT, 0, pc.origin));
    }
    return FT_OK;
}

/* BertPreTokenizer: whitespace ends a word and is dropped; punctuation is a piece of its own. */
int ft__tok_bert_pretokenize(ft_tok_work *w, int src, int dst) {
    for (int p = 0; p < w->npc[src]; p++) {
        const ft_tok_piece pc = w->pc[src][p];
        const char *ps = w->buf[src] + pc.off;
        size_t word = 0, i = 0;
        while (i < pc.len) {
            int32_t cp;
            size_t k = (size_t)ft__tok_utf8_next((const unsigned char *)ps + i, pc.len - i, &cp);
            int sp = cp >= 0 && ft__tok_is_bert_whitespace(cp), pu = !sp && cp >= 0 && ft__tok_is_bert_punct(cp);
            if (sp || pu) {
                FT_TRY(emit(w, dst, ps + word, i - word, pc.origin && word == 0));
                if (pu) FT_TRY(emit(w, dst, ps + i, k, pc.origin && i == 0));
                word = i + k;
            }
            i += k;
        }
        FT_TRY(emit(w, dst, ps + word, pc.len - word, pc.origin && word == 0));
    }
    return FT_OK;
}

int ft__tok_pretokenize(const ft_tokenizer *tok, ft_tok_work *w, const char *s, size_t len, int origin) {
    w->cur = 0;
    w->npc[0] = 0;
    FT_TRY(emit(w, 0, s, len, origin));
    for (int si = 0; si < tok->n_pre; si++) {
        const ft_pretok_step *st = &tok->pre[si];
        int src = w->cur, dst = src ^ 1;
        w->npc[dst] = 0;
        switch (st->kind) {
        case FT_PRE_BERT:
            FT_TRY(ft__tok_bert_pretokenize(w, src, dst));
            break;
        case FT_PRE_METASPACE:
            FT_TRY(step_metaspace(st, w, src, dst));
            break;
        case FT_PRE_BYTE_LEVEL:
            if (st->add_prefix_space) {
                for (int p = 0; p < w->npc[src]; p++) {
                    const ft_tok_piece pc = w->pc[src][p];
                    const char *ps = w->buf[src] + pc.off;
                    if (ps[0] == ' ') { FT_TRY(emit(w, dst, ps, pc.len, pc.origin)); continue; }
                    size_t used = w->npc[dst] ? w->pc[dst][w->npc[dst] - 1].off + w->pc[dst][w->npc[dst] - 1].len : 0;
                    FT_TRY(emit(w, dst, " ", 1, pc.origin));
                    FT_TRY(emit(w, dst, ps, pc.len, 0));
                    w->npc[dst]--;                       /* join the two into one piece */
                    w->pc[dst][w->npc[dst] - 1] = (ft_tok_piece){ (uint32_t)used, pc.len + 1, pc.origin };
                }
                if (!st->use_regex) break;
                w->cur = dst; src = dst; dst = src ^ 1; w->npc[dst] = 0;
            }
            if (!st->use_regex) {   /* no split: pieces pass through */
                w->npc[dst] = 0;
                for (int p = 0; p < w->npc[src]; p++)
                    FT_TRY(emit(w, dst, w->buf[src] + w->pc[src][p].off, w->pc[src][p].len, w->pc[src][p].origin));
                break;
            }
            __attribute__((fallthrough));   /* split with the GPT-2 pattern, isolated */
        case FT_PRE_SPLIT: case FT_PRE_DIGITS: {
            ft_split_behavior beh = st->kind == FT_PRE_SPLIT ? st->behavior
                                  : st->kind == FT_PRE_DIGITS ? (st->individual_digits ? FT_SPLIT_ISOLATED : FT_SPLIT_CONTIGUOUS)
                                  : FT_SPLIT_ISOLATED;
            int inv = st->kind == FT_PRE_SPLIT ? st->invert : 0;
            for (int p = 0; p < w->npc[src]; p++) {
                const ft_tok_piece pc = w->pc[src][p];
                const char *ps = w->buf[src] + pc.off;
                FT_TRY(regex_spans(w, st->re, ps, pc.len));
                FT_TRY(emit_spans(w, dst, ps, beh, inv, pc.origin));
            }
            break;
        }
        }
        w->cur = dst;
    }
    return FT_OK;
}
