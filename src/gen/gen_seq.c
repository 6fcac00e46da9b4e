/* gen_seq.c — one sequence's generation after its prompt (gen_seq.h): sample a token, decode it to text,
 * cut at a stop string, hold back text that may begin one, end at EOS / max tokens / a full slot. */
#include "gen/gen_seq.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>

int ft__gen_eos(const ft_model_config *c, const ft_tokenizer *tok) {
    int eos = tok ? ft_tokenizer_eos(tok) : -1;
    return eos >= 0 ? eos : c->eos_token_id;
}

int ft__gen_seq_init(ft__gen_seq *s, const ft_generate_params *p, const ft_tokenizer *tok, int V, int eos, int capacity,
                     const int *prompt, int n_prompt) {
    memset(s, 0, sizeof *s);
    s->stopped_by = FT__GEN_RUNNING;
    if (n_prompt <= 0) return ft_error(FT_ERR_INVALID, "generate: the prompt is empty (no tokens)");
    if (n_prompt >= capacity)
        return ft_error(FT_ERR_RANGE, "generate: the prompt has %d tokens, the model's context is %d", n_prompt, capacity);
    s->p = p;
    s->tok = tok;
    s->V = V;
    s->eos = eos;
    s->capacity = capacity;
    /* the sequence ends at max_new_tokens or when the slot is full, whichever comes first */
    size_t max_new = p->max_new_tokens > 0 ? (size_t)p->max_new_tokens : 0, room = (size_t)(capacity - n_prompt);
    s->hist = malloc(sizeof(int) * ((size_t)n_prompt + (max_new < room ? max_new : room) + 1));
    s->work = malloc(ft_sample_work_size(V));
    if (!s->hist || !s->work) { ft__gen_seq_free(s); return ft_error(FT_ERR_NOMEM, "generate: out of memory"); }
    memcpy(s->hist, prompt, sizeof(int) * (size_t)n_prompt);
    s->n_hist = s->n_prompt = n_prompt;
    s->prev = prompt[n_prompt - 1];
    ft_rng_seed(&s->rng, p->seed);
    return FT_OK;
}

/* length of the longest suffix of text[0..len) that is a proper prefix of a stop string */
static size_t stop_holdback(const char *text, size_t len, const ft_generate_params *p) {
    size_t hold = 0;
    for (int k = 0; k < p->n_stop; k++) {
        size_t sl = strlen(p->stop[k]);
        for (size_t h = sl > 1 ? sl - 1 : 0; h > hold; h--)
            if (h <= len && memcmp(text + len - h, p->stop[k], h) == 0) { hold = h; break; }
    }
    return hold;
}

/* appends token id's text; *hit = 1 when a stop string now occurs (the text is cut before it) */
static int append_text(ft__gen_seq *s, int id, int *hit) {
    const ft_generate_params *p = s->p;
    char piece[256];
    int n = ft_tokenizer_decode_piece(s->tok, s->prev, id, piece, sizeof piece);
    if (n < 0) return n;
    size_t before = s->text.n;
    if (ft__sb_put(&s->text, piece, (size_t)n) != FT_OK) return ft_error(FT_ERR_NOMEM, "generate: out of memory");
    size_t limit = s->text.n;
    for (int k = 0; k < p->n_stop; k++) {
        size_t sl = strlen(p->stop[k]);
        if (!sl) continue;
        /* a new occurrence ends in the new bytes: start looking sl - 1 bytes before them */
        size_t from = before >= sl ? before - sl + 1 : 0;
        char *at = memmem(s->text.p + from, s->text.n - from, p->stop[k], sl);
        if (at && (size_t)(at - s->text.p) < limit) { limit = (size_t)(at - s->text.p); *hit = 1; }
    }
    if (*hit) { s->text.n = limit; s->text.p[limit] = 0; }
    return FT_OK;
}

/* the text past what was handed out: up to the hold-back while running, all of it once ended */
static void ready_piece(ft__gen_seq *s, const char **piece, size_t *len) {
    size_t ready = s->text.n;
    if (s->stopped_by == FT__GEN_RUNNING && s->tok) ready -= stop_holdback(s->text.p, s->text.n, s->p);
    if (ready < s->emitted) ready = s->emitted;
    *piece = s->text.p ? s->text.p + s->emitted : "";
    *len = ready - s->emitted;
    s->emitted = ready;
}

int ft__gen_seq_next(ft__gen_seq *s, float *logits, int *id, const char **piece, size_t *piece_len) {
    const ft_generate_params *p = s->p;
    *id = -1;
    *piece = "";
    *piece_len = 0;
    if (s->stopped_by != FT__GEN_RUNNING) return 0;
    if (ft__gen_seq_n_generated(s) >= p->max_new_tokens) {
        s->stopped_by = FT__GEN_MAX_TOKENS;
        ready_piece(s, piece, piece_len);
        return 0;
    }
    int tk = ft_sample_logits(logits, s->V, s->hist, s->n_hist, p, &s->rng, s->work);
    if (p->stop_at_eos && tk == s->eos) {
        s->stopped_by = FT__GEN_EOS;
        ready_piece(s, piece, piece_len);
        return 0;
    }
    s->hist[s->n_hist++] = tk;
    *id = tk;
    int hit = 0;
    if (s->tok) FT_TRY(append_text(s, tk, &hit));
    s->prev = tk;
    if (hit) s->stopped_by = FT__GEN_STOP_STRING;
    else if (ft__gen_seq_n_generated(s) >= p->max_new_tokens) s->stopped_by = FT__GEN_MAX_TOKENS;
    else if (s->n_hist >= s->capacity) s->stopped_by = FT__GEN_CONTEXT_FULL;
    ready_piece(s, piece, piece_len);
    return s->stopped_by == FT__GEN_RUNNING;
}

void ft__gen_seq_end(ft__gen_seq *s, int why) {
    if (s->stopped_by == FT__GEN_RUNNING) s->stopped_by = why;
}

int ft__gen_seq_result(ft__gen_seq *s, ft_generation *out) {
    memset(out, 0, sizeof *out);
    int n = ft__gen_seq_n_generated(s);
    out->ids = malloc(sizeof(int) * (size_t)(n ? n : 1));
    out->text = ft__sb_take(&s->text, &out->text_len);   /* "" when nothing was generated */
    if (!out->ids || !out->text) { ft_generation_free(out); return ft_error(FT_ERR_NOMEM, "generate: out of memory"); }
    memcpy(out->ids, s->hist + s->n_prompt, sizeof(int) * (size_t)n);
    out->n_ids = n;
    out->stopped_by = s->stopped_by == FT__GEN_RUNNING ? FT__GEN_MAX_TOKENS : s->stopped_by;
    s->emitted = 0;
    return FT_OK;
}

void ft__gen_seq_free(ft__gen_seq *s) {
    if (!s) return;
    free(s->hist);
    free(s->work);
    ft__sb_free(&s->text);
    memset(s, 0, sizeof *s);
}
