/* porter.c — the Porter stemmer as NLTK's PorterStemmer() runs it by default (mode NLTK_EXTENSIONS), the
 * stemmer rouge-score uses with use_stemmer=True. Written from the algorithm (Porter 1980) and NLTK's
 * documented deviations, which are:
 *   - irregular forms looked up first: sky/skies -> sky, dying -> die, lying -> lie, tying -> tie, news,
 *     innings/inning -> inning, outings/outing -> outing, cannings/canning -> canning, howe, proceed,
 *     exceed, succeed (unchanged);
 *   - words of 1..2 letters are returned as they are;
 *   - *o (cvc) also holds for a 2-letter stem vowel + consonant;
 *   - step 1a: a 4-letter word in -ies -> -ie; step 1b: -ied -> -ie (4 letters) or -i, unconditionally;
 *   - step 1c: y -> i only after a consonant that is not the first letter;
 *   - step 2: -alli -> -al (m > 0) then step 2 again; -bli -> -ble (Martin's), -fulli -> -ful, -logi -> -log
 *     (m > 0 of the stem with the l).
 * Rules inside a step are tried in order, and the first whose suffix matches decides: when its condition
 * fails the word is left as it is (NLTK's _apply_rule_list). Letters are lower-case ASCII; any other byte is
 * a consonant. */
#include "eval/textmetrics_internal.h"

#include <string.h>

#include "finetune/status.h"

typedef struct word { char *s; int n; } word;

static int is_vowel_letter(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

/* consonant at i within s: y is a consonant at 0 or after a vowel (iterative: a run of y's alternates) */
static int cons(const char *s, int i) {
    if (is_vowel_letter(s[i])) return 0;
    if (s[i] != 'y') return 1;
    int flip = 0;
    while (i > 0 && s[i] == 'y') { flip ^= 1; i--; }
    /* s[i] is the letter before the run, or the run's first y at 0 */
    if (i == 0 && s[0] == 'y') return flip ? 0 : 1;  /* y at 0 is a consonant; each y after alternates */
    int before = !is_vowel_letter(s[i]);            /* the letter before the run: a consonant? */
    return flip ? !before : before;
}

/* m of s[0, n): the number of VC transitions (one pass, the consonant flag carried along) */
static int measure(const char *s, int n) {
    int m = 0, prev_c = 1, prev_v = 0;
    for (int i = 0; i < n; i++) {
        int c = is_vowel_letter(s[i]) ? 0 : s[i] == 'y' ? (i == 0 ? 1 : !prev_c) : 1;
        if (c && prev_v) m++;
        prev_v = !c;
        prev_c = c;
    }
    return m;
}

static int has_vowel(const char *s, int n) {
    int prev_c = 1;
    for (int i = 0; i < n; i++) {
        int c = is_vowel_letter(s[i]) ? 0 : s[i] == 'y' ? (i == 0 ? 1 : !prev_c) : 1;
        if (!c) return 1;
        prev_c = c;
    }
    return 0;
}

static int ends_double_cons(const char *s, int n) { return n >= 2 && s[n - 1] == s[n - 2] && cons(s, n - 1); }

static int ends_cvc(const char *s, int n) {
    if (n >= 3 && cons(s, n - 3) && !cons(s, n - 2) && cons(s, n - 1) && s[n - 1] != 'w' && s[n - 1] != 'x' &&
        s[n - 1] != 'y') return 1;
    return n == 2 && !cons(s, 0) && cons(s, 1);
}

static int ends(const word *w, const char *suf) {
    int l = (int)strlen(suf);
    return w->n >= l && !memcmp(w->s + w->n - l, suf, (size_t)l);
}

/* replace the last `strip` letters by rep */
static void set_end(word *w, int strip, const char *rep) {
    int l = (int)strlen(rep);
    memcpy(w->s + w->n - strip, rep, (size_t)l);
    w->n = w->n - strip + l;
}

enum cond { ANY, M_GT0, M_GT1, M_GT1_ST, LOGI };

typedef struct rule { const char *suf, *rep; enum cond c; } rule;

static int cond_holds(const word *w, int stem_n, enum cond c) {
    switch (c) {
    case ANY: return 1;
    case M_GT0: return measure(w->s, stem_n) > 0;
    case M_GT1: return measure(w->s, stem_n) > 1;
    case M_GT1_ST: return measure(w->s, stem_n) > 1 && stem_n > 0 && (w->s[stem_n - 1] == 's' || w->s[stem_n - 1] == 't');
    case LOGI: return measure(w->s, w->n - 3) > 0;  /* word[:-3]: the stem keeps its l */
    }
    return 0;
}

static void apply_rules(word *w, const rule *r, int nr) {
    for (int k = 0; k < nr; k++) {
        if (!ends(w, r[k].suf)) continue;
        int stem_n = w->n - (int)strlen(r[k].suf);
        if (cond_holds(w, stem_n, r[k].c)) set_end(w, (int)strlen(r[k].suf), r[k].rep);
        return;
    }
}

static void step1a(word *w) {
    if (ends(w, "ies") && w->n == 4) { set_end(w, 3, "ie"); return; }
    static const rule r[] = {{"sses", "ss", ANY}, {"ies", "i", ANY}, {"ss", "ss", ANY}, {"s", "", ANY}};
    apply_rules(w, r, 4);
}

static void step1b(word *w) {
    if (ends(w, "ied")) { set_end(w, 3, w->n == 4 ? "ie" : "i"); return; }
    if (ends(w, "eed")) {
        if (measure(w->s, w->n - 3) > 0) set_end(w, 3, "ee");
        return;
    }
    int stripped = 0;
    if (ends(w, "ed") && has_vowel(w->s, w->n - 2)) { w->n -= 2; stripped = 1; }
    else if (ends(w, "ing") && has_vowel(w->s, w->n - 3)) { w->n -= 3; stripped = 1; }
    if (!stripped) return;
    /* on the intermediate stem: at -> ate, bl -> ble, iz -> ize, *d (not l s z) -> single letter,
     * "" with m = 1 and *o -> + e; the first matching rule decides */
    if (ends(w, "at")) { set_end(w, 2, "ate"); return; }
    if (ends(w, "bl")) { set_end(w, 2, "ble"); return; }
    if (ends(w, "iz")) { set_end(w, 2, "ize"); return; }
    if (ends_double_cons(w->s, w->n)) {
        char last = w->s[w->n - 1];
        if (last != 'l' && last != 's' && last != 'z') w->n -= 1;  /* stem[:-2] + last letter */
        return;
    }
    if (measure(w->s, w->n) == 1 && ends_cvc(w->s, w->n)) set_end(w, 0, "e");
}

static void step1c(word *w) {
    if (!ends(w, "y")) return;
    int stem_n = w->n - 1;
    if (stem_n > 1 && cons(w->s, stem_n - 1)) w->s[w->n - 1] = 'i';
}

static void step2(word *w) {
    if (ends(w, "alli") && measure(w->s, w->n - 4) > 0) {
        set_end(w, 4, "al");
        step2(w);
        return;
    }
    static const rule r[] = {
        {"ational", "ate", M_GT0}, {"tional", "tion", M_GT0}, {"enci", "ence", M_GT0}, {"anci", "ance", M_GT0},
        {"izer", "ize", M_GT0},    {"bli", "ble", M_GT0},     {"alli", "al", M_GT0},   {"entli", "ent", M_GT0},
        {"eli", "e", M_GT0},       {"ousli", "ous", M_GT0},   {"ization", "ize", M_GT0}, {"ation", "ate", M_GT0},
        {"ator", "ate", M_GT0},    {"alism", "al", M_GT0},    {"iveness", "ive", M_GT0}, {"fulness", "ful", M_GT0},
        {"ousness", "ous", M_GT0}, {"aliti", "al", M_GT0},    {"iviti", "ive", M_GT0},   {"biliti", "ble", M_GT0},
        {"fulli", "ful", M_GT0},   {"logi", "log", LOGI},
    };
    apply_rules(w, r, (int)(sizeof r / sizeof *r));
}

static void step3(word *w) {
    static const rule r[] = {{"icate", "ic", M_GT0}, {"ative", "", M_GT0}, {"alize", "al", M_GT0},
                             {"iciti", "ic", M_GT0}, {"ical", "ic", M_GT0}, {"ful", "", M_GT0}, {"ness", "", M_GT0}};
    apply_rules(w, r, (int)(sizeof r / sizeof *r));
}

static void step4(word *w) {
    static const rule r[] = {
        {"al", "", M_GT1},   {"ance", "", M_GT1}, {"ence", "", M_GT1}, {"er", "", M_GT1},   {"ic", "", M_GT1},
        {"able", "", M_GT1}, {"ible", "", M_GT1}, {"ant", "", M_GT1},  {"ement", "", M_GT1}, {"ment", "", M_GT1},
        {"ent", "", M_GT1},  {"ion", "", M_GT1_ST}, {"ou", "", M_GT1}, {"ism", "", M_GT1},  {"ate", "", M_GT1},
        {"iti", "", M_GT1},  {"ous", "", M_GT1},  {"ive", "", M_GT1},  {"ize", "", M_GT1},
    };
    apply_rules(w, r, (int)(sizeof r / sizeof *r));
}

static void step5a(word *w) {
    if (!ends(w, "e")) return;
    int m = measure(w->s, w->n - 1);
    if (m > 1 || (m == 1 && !ends_cvc(w->s, w->n - 1))) w->n -= 1;
}

static void step5b(word *w) {
    if (ends(w, "ll") && measure(w->s, w->n - 1) > 1) w->n -= 1;
}

static const struct { const char *form, *stem; } k_irregular[] = {
    {"sky", "sky"},         {"skies", "sky"},       {"dying", "die"},   {"lying", "lie"},       {"tying", "tie"},
    {"news", "news"},       {"innings", "inning"},  {"inning", "inning"}, {"outings", "outing"}, {"outing", "outing"},
    {"cannings", "canning"}, {"canning", "canning"}, {"howe", "howe"},  {"proceed", "proceed"}, {"exceed", "exceed"},
    {"succeed", "succeed"},
};

int ft_porter_stem(const char *in, int n, char *out, int cap) {
    if (!in || !out || n < 0 || cap < n + 2) return ft_error(FT_ERR_INVALID, "ft_porter_stem: output buffer of %d bytes for a %d-letter word", cap, n);
    for (size_t k = 0; k < sizeof k_irregular / sizeof *k_irregular; k++) {
        if ((int)strlen(k_irregular[k].form) == n && !memcmp(k_irregular[k].form, in, (size_t)n)) {
            int l = (int)strlen(k_irregular[k].stem);
            memcpy(out, k_irregular[k].stem, (size_t)l + 1);
            return l;
        }
    }
    memcpy(out, in, (size_t)n);
    out[n] = 0;
    if (n <= 2) return n;
    /* the steps can grow the word by at most one letter at a time and shrink it after (ize / ate / ble / e) */
    word w = {out, n};
    step1a(&w);
    step1b(&w);
    step1c(&w);
    step2(&w);
    step3(&w);
    step4(&w);
    step5a(&w);
    step5b(&w);
    out[w.n] = 0;
    return w.n;
}
