/* detect.c — which tokenizer file is this? Decided from the content, never from the name, so that
 * `finetune init --tokenizer mytok.dat` works whatever the file is called.
 *
 *   HF tokenizer.json      a JSON object with a "model" object
 *   GPT-2 / HF vocabulary  a JSON object of token -> integer id (encoder.json, vocab.json)
 *   llama2.c tokenizer.bin int32 max_token_length, then records {float32 score, int32 len, len bytes}
 *                          that end exactly at the end of the file, each len <= max_token_length
 *   BPE merges             text: a "#version" first line, or lines of two space-separated symbols
 *                          (vocab.bpe, merges.txt)
 *   WordPiece vocab.txt    text: one token per line without spaces, with [UNK] / [CLS] / [SEP] lines
 *
 * The file is memory-mapped: checking a big unrelated file (weights) costs a few page reads. */
#include "finetune/tokenizer.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define FT_TOKFILE_FORMATS                                                                                    \
    "recognised by content: HF tokenizer.json (a JSON object with \"model\"), llama2.c tokenizer.bin (binary: " \
    "max token length, then score / length / bytes records), GPT-2 encoder.json or vocab.json (a JSON object of " \
    "token -> id, with its merges file next to it), vocab.bpe or merges.txt (a \"#version\" line or lines of "  \
    "two symbols, with its vocabulary next to it), WordPiece vocab.txt (one token per line, with [UNK] / [CLS] / [SEP])"

const char *ft_tokenizer_file_formats(void) { return FT_TOKFILE_FORMATS; }

const char *ft_tokenizer_file_kind_name(ft_tokenizer_file_kind k) {
    switch (k) {
    case FT_TOKFILE_HF_JSON: return "HF tokenizer.json";
    case FT_TOKFILE_LLAMA2C: return "llama2.c tokenizer.bin";
    case FT_TOKFILE_BPE_VOCAB: return "BPE vocabulary (encoder.json / vocab.json)";
    case FT_TOKFILE_BPE_MERGES: return "BPE merges (vocab.bpe / merges.txt)";
    case FT_TOKFILE_WORDPIECE: return "WordPiece vocab.txt";
    default: return "unknown";
    }
}

const char *ft_tokenizer_file_canonical_name(ft_tokenizer_file_kind k) {
    switch (k) {
    case FT_TOKFILE_HF_JSON: return "tokenizer.json";
    case FT_TOKFILE_LLAMA2C: return "tokenizer.bin";
    case FT_TOKFILE_BPE_VOCAB: return "vocab.json";
    case FT_TOKFILE_BPE_MERGES: return "merges.txt";
    case FT_TOKFILE_WORDPIECE: return "vocab.txt";
    default: return NULL;
    }
}

static int32_t rd_i32(const unsigned char *p) { int32_t v; memcpy(&v, p, 4); return v; }

static int is_llama2c(const unsigned char *p, size_t n) {
    if (n < 4 + 8) return 0;
    int32_t maxlen = rd_i32(p);
    if (maxlen < 1 || maxlen > 4096) return 0;
    size_t pos = 4, count = 0;
    while (pos < n) {
        if (n - pos < 8) return 0;
        float score;
        memcpy(&score, p + pos, 4);
        int32_t len = rd_i32(p + pos + 4);
        if (!isfinite(score) || len < 0 || len > maxlen || (size_t)len > n - pos - 8) return 0;
        pos += 8 + (size_t)len;
        count++;
    }
    return count > 0;
}

/* JSON object: HF tokenizer.json (has "model") or a token -> id vocabulary; 0 if neither */
static ft_tokenizer_file_kind json_kind(const char *p, size_t n) {
    cJSON *j = cJSON_ParseWithLength(p, n);
    ft_tokenizer_file_kind k = FT_TOKFILE_UNKNOWN;
    if (cJSON_IsObject(j)) {
        if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "model"))) k = FT_TOKFILE_HF_JSON;
        else if (j->child) {
            k = FT_TOKFILE_BPE_VOCAB;
            for (const cJSON *it = j->child; it; it = it->next)
                if (!cJSON_IsNumber(it) || it->valuedouble != (double)(int64_t)it->valuedouble || it->valuedouble < 0) { k = FT_TOKFILE_UNKNOWN; break; }
        }
    }
    cJSON_Delete(j);
    return k;
}

/* the next line of [p, end) (without \n / \r\n); returns the start of the line after it */
static const char *line_at(const char *p, const char *end, size_t *len) {
    const char *e = memchr(p, '\n', (size_t)(end - p));
    const char *next = e ? e + 1 : end;
    if (!e) e = end;
    if (e > p && e[-1] == '\r') e--;
    *len = (size_t)(e - p);
    return next;
}

static ft_tokenizer_file_kind text_kind(const char *p, size_t n) {
    if (memchr(p, 0, n)) return FT_TOKFILE_UNKNOWN; /* binary */
    const char *end = p + n;
    size_t len;
    line_at(p, end, &len);
    if (len >= 8 && !memcmp(p, "#version", 8)) return FT_TOKFILE_BPE_MERGES;
    /* merges: the first lines (up to 200) are "a b" with exactly one space and no tabs */
    int pairs = 1, lines = 0;
    for (const char *l = p; l < end && lines < 200; lines++) {
        const char *nx = line_at(l, end, &len);
        if (len == 0 && nx >= end) break;
        const char *sp = memchr(l, ' ', len);
        if (!sp || sp == l || sp == l + len - 1 || memchr(sp + 1, ' ', (size_t)(l + len - sp - 1)) || memchr(l, '\t', len)) { pairs = 0; break; }
        l = nx;
    }
    if (pairs && lines > 0) return FT_TOKFILE_BPE_MERGES;
    /* WordPiece: special-token lines, and (almost) no line with a space */
    int64_t total = 0, spaced = 0;
    int special = 0;
    for (const char *l = p; l < end;) {
        const char *nx = line_at(l, end, &len);
        total++;
        if (memchr(l, ' ', len) || memchr(l, '\t', len)) spaced++;
        if ((len == 5 && (!memcmp(l, "[UNK]", 5) || !memcmp(l, "[CLS]", 5) || !memcmp(l, "[SEP]", 5)))) special = 1;
        l = nx;
    }
    if (special && total >= 3 && spaced * 100 <= total) return FT_TOKFILE_WORDPIECE;
    return FT_TOKFILE_UNKNOWN;
}

ft_tokenizer_file_kind ft_tokenizer_classify_bytes(const void *data, size_t n) {
    const unsigned char *p = data;
    if (!p || n == 0) return FT_TOKFILE_UNKNOWN;
    if (is_llama2c(p, n)) return FT_TOKFILE_LLAMA2C;
    size_t s = n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF ? 3 : 0; /* UTF-8 BOM */
    size_t i = s;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) i++;
    if (i < n && p[i] == '{') return json_kind((const char *)p + s, n - s);
    return text_kind((const char *)p + s, n - s);
}

int ft_tokenizer_detect_file(const char *path, ft_tokenizer_file_kind *kind) {
    *kind = FT_TOKFILE_UNKNOWN;
    if (!path) return ft_error(FT_ERR_INVALID, "ft_tokenizer_detect_file: no path");
    if (ft_path_is_dir(path)) return ft_error(FT_ERR_INVALID, "%s: a directory, not a tokenizer file", path);
    ft_mmap m;
    FT_TRY(ft_file_map(&m, path));
    *kind = ft_tokenizer_classify_bytes(m.data, m.size);
    ft_file_unmap(&m);
    if (*kind == FT_TOKFILE_UNKNOWN) return ft_error(FT_ERR_FORMAT, "%s: not a tokenizer file I recognise; %s", path, FT_TOKFILE_FORMATS);
    return FT_OK;
}
