/* wordnet.h — synonyms from Princeton WordNet 3.0, read straight from its database files (Debian's
 * `wordnet-base`: /usr/share/wordnet/{index,data}.{noun,verb,adj,adv} and {noun,verb,adj,adv}.exc).
 *
 * What the files hold, and what this reader takes from them:
 *   index.POS   one line per lemma: "lemma pos synset_cnt p_cnt [ptr_symbol]*p_cnt sense_cnt
 *               tagsense_cnt synset_offset*synset_cnt"; multi-word lemmas use '_' ("motion_picture").
 *               Lines starting with a space are the license header.
 *   data.POS    one line per synset, found by its byte offset in the file (the synset_offset):
 *               "offset lex_filenum ss_type w_cnt(2 hex digits) [word lex_id(1 hex digit)]*w_cnt ...".
 *               Adjective words may carry a syntactic marker "(a)", "(p)" or "(ip)": dropped here.
 *   POS.exc     irregular forms: "inflected base [base ...]" ("geese goose").
 * A word is looked up as NLTK's wordnet.synsets(word) does: lower-cased, spaces as '_', then for each
 * part of speech in the order noun, verb, adjective, adverb its base forms by "morphy" (the exception
 * list, else the detachment rules: noun -s -ses -ves -xes -zes -ches -shes -men -ies; verb -s -ies -es
 * -ed -ing; adjective -er -est), and the synsets of each base form in index order.
 * ft_wordnet_synonyms returns the words of those synsets in that order, each once, '_' turned into a
 * space, the looked-up word itself (and its base forms) left out: "film" gives "movie", "picture",
 * "moving picture", ..., "take", "shoot".
 *
 *   ft_wordnet *wn;
 *   if (ft_wordnet_open(&wn, NULL) < 0) { puts(ft_last_error()); return; }   // /usr/share/wordnet
 *   char **syn; int n;
 *   if (ft_wordnet_synonyms(wn, "films", &syn, &n) == FT_OK) {               // base form "film"
 *       for (int i = 0; i < n; i++) puts(syn[i]);
 *       ft_wordnet_strings_free(syn, n);
 *   }
 *   ft_wordnet_close(wn);
 *
 * The files are untrusted input: a malformed line is skipped (index, exceptions) or makes that synset
 * give no words (data: an offset outside the file or not at a line start, a bad word count); nothing
 * reads outside the buffers (fuzz/fuzz_wordnet.c). Ownership: the ft_wordnet keeps its own copies of
 * the files; returned string arrays belong to the caller. Thread safety: after open, lookups only
 * read, so several threads may share one ft_wordnet. */
#ifndef FINETUNE_WORDNET_H
#define FINETUNE_WORDNET_H
#include <stddef.h>
#include <stdint.h>

typedef struct ft_wordnet ft_wordnet;

/* The four parts of speech, in lookup order (file suffixes "noun", "verb", "adj", "adv"). */
enum { FT_WN_NOUN = 0, FT_WN_VERB, FT_WN_ADJ, FT_WN_ADV, FT_WN_NPOS };

/* The default database directory: $WNSEARCHDIR when set, else /usr/share/wordnet. */
const char *ft_wordnet_default_dir(void);

/* Reads index.*, data.* (required) and *.exc (optional) from dir (NULL: ft_wordnet_default_dir()).
 * A missing index or data file -> FT_ERR_NOT_FOUND naming it and the Debian package. */
int  ft_wordnet_open(ft_wordnet **out, const char *dir);

/* The same from memory: index[p], data[p], exc[p] with their lengths (any may be NULL / 0), copied. */
typedef struct ft_wordnet_files {
    const char *index[FT_WN_NPOS], *data[FT_WN_NPOS], *exc[FT_WN_NPOS];
    size_t      index_len[FT_WN_NPOS], data_len[FT_WN_NPOS], exc_len[FT_WN_NPOS];
} ft_wordnet_files;
int  ft_wordnet_parse(ft_wordnet **out, const ft_wordnet_files *f);
void ft_wordnet_close(ft_wordnet *wn);

/* Lemmas indexed for part of speech pos (all four: pos < 0). */
int64_t ft_wordnet_lemma_count(const ft_wordnet *wn, int pos);

/* The base forms of word for pos (morphy, above) that are in the index: *out malloc'd, *n of them. */
int ft_wordnet_base_forms(const ft_wordnet *wn, const char *word, int pos, char ***out, int *n);
/* The synonyms of word over all parts of speech (above); *n = 0 (and *out NULL) when it has none. */
int ft_wordnet_synonyms(const ft_wordnet *wn, const char *word, char ***out, int *n);
void ft_wordnet_strings_free(char **v, int n);
#endif
