/* explain_features.c — which tokens form a feature (explain.h): one per token, or one per word.
 *
 * Words: WordPiece continues a word with "##" pieces (so BERT's pre-tokenizer decides: punctuation is a word of
 * its own); byte-level BPE and SentencePiece start a word with a space marker ("Ġ", "▁"), so a word is a
 * whitespace-delimited stretch. Special tokens are never features. */
#include "finetune/explain.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <string.h>

/* 1 when token id starts a new word (given the previous token was a non-special feature) */
static int starts_word(const ft_tokenizer *tok, int id) {
    const char *s = ft_tokenizer_token_str(tok, id);
    if (!s) return 1;
    switch (ft_tokenizer_get_kind(tok)) {
    case FT_TOK_WORDPIECE: return strncmp(s, "##", 2) != 0;
    case FT_TOK_BYTE_BPE: return strncmp(s, "\xC4\xA0", 2) == 0 || strncmp(s, "\xC4\x8A", 2) == 0;   /* Ġ (space), Ċ (newline) */
    case FT_TOK_SPM_BPE: return strncmp(s, "\xE2\x96\x81", 3) == 0 || strcmp(s, "<0x0A>") == 0 || strcmp(s, "<0x20>") == 0;
    default: return 1;
    }
}

int ft_explain_features(const ft_tokenizer *tok, const int *ids, int T, ft_explain_unit unit, int *feature) {
    if (!tok || !ids || !feature || T < 0) return ft_error(FT_ERR_INVALID, "explain features: no tokenizer or tokens");
    int n = 0, prev_feature = 0;
    for (int t = 0; t < T; t++) {
        if (ft_tokenizer_is_special(tok, ids[t])) { feature[t] = -1; prev_feature = 0; continue; }
        if (unit == FT_EXPLAIN_WORD && prev_feature && !starts_word(tok, ids[t])) feature[t] = n - 1;
        else feature[t] = n++;
        prev_feature = 1;
    }
    return n;
}

void ft_explain_feature_sums(const int *feature, int T, int n_features, const double *tok_scores, double *feat_scores) {
    for (int i = 0; i < n_features; i++) feat_scores[i] = 0;
    for (int t = 0; t < T; t++)
        if (feature[t] >= 0 && feature[t] < n_features) feat_scores[feature[t]] += tok_scores[t];
}
