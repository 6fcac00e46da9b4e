/* mlm_mask.c — masked language modelling inputs as transformers' DataCollatorForLanguageModeling
 * makes them: each eligible position is chosen with probability prob; of the chosen, 80% become the
 * mask token, 10% a uniformly random id, 10% stay; labels hold the original id where chosen.
 *
 * Draws (one xoshiro256** stream per call, seeded by `seed`), per eligible position in order:
 *   u ~ U[0,1): chosen when u < prob;
 *   chosen only: r ~ U[0,1): r < 0.8 -> mask_id; r < 0.9 -> ft_rng_below(vocab_size); else unchanged.
 * HF draws the 80% mask and then the "half of the rest" random choice as two Bernoullis; r above is the
 * same split (0.8, 0.1, 0.1). Skipped positions (special ids, attention mask 0) draw nothing. */
#include "finetune/classify_data.h"
#include "finetune/rng.h"
#include "finetune/status.h"

#include <stddef.h>

int ft_mlm_mask(int *ids, int *labels, const int *attn_mask, int n, const ft_tokenizer *tok, int mask_id,
                int vocab_size, double prob, uint64_t seed, int *n_chosen) {
    if (n_chosen) *n_chosen = 0;
    if (mask_id < 0) return ft_error(FT_ERR_INVALID, "masked LM: mask id %d (the tokenizer has no mask token?)", mask_id);
    if (vocab_size <= 0) return ft_error(FT_ERR_INVALID, "masked LM: vocab size %d", vocab_size);
    if (n < 0 || (n > 0 && (!ids || !labels))) return ft_error(FT_ERR_INVALID, "masked LM: %d positions, ids or labels missing", n);
    if (!(prob >= 0.0 && prob <= 1.0)) return ft_error(FT_ERR_INVALID, "masked LM: probability %g not in [0, 1]", prob);
    ft_rng rng;
    ft_rng_seed(&rng, seed);
    int chosen = 0;
    for (int i = 0; i < n; i++) {
        labels[i] = FT_CLS_IGNORE;
        if ((attn_mask && attn_mask[i] == 0) || (tok && ft_tokenizer_is_special(tok, ids[i]))) continue;
        if (!(ft_rng_uniform_f64(&rng) < prob)) continue;
        labels[i] = ids[i];
        chosen++;
        double r = ft_rng_uniform_f64(&rng);
        if (r < 0.8) ids[i] = mask_id;
        else if (r < 0.9) ids[i] = (int)ft_rng_below(&rng, (uint64_t)vocab_size);
    }
    if (n_chosen) *n_chosen = chosen;
    return FT_OK;
}
