/* train_state.h — training state apart from the weights: several LoRA trainings over one loaded model.
 *
 * Training is weights + gradients + optimizer state + what the passes write. An ft_model holds the
 * weights; a training state holds the rest of one training except the optimizer (optim.h): its own LoRA
 * adapters (A, B and their gradients), the activations of its last forward, its dropout stream and label
 * smoothing, the quantized-matmul workspace. Any number of states run over one model, so a LoRA
 * hyperparameter sweep (ranks, targets, learning rates, seeds) loads the base once:
 *
 *   ft_model *base;   ft_model_load(&base, "models/gpt2", ft_backend_cpu());   // or ft_model_load_quantized
 *   ft_lora_config lc = ft_lora_default_config();  lc.r = 16;
 *   ft_train_state *s;  ft_train_state_create(&s, base, &lc, seed);      // A Kaiming-uniform, B zero (PEFT)
 *   ft_optimizer *opt;  ft_optim_create_params_on(&opt, ft_train_state_param(s, 0), ft_train_state_num_params(s), &op,
 *                                             ft_model_backend(base));
 *   for (step...) {
 *       ft_train_state_set_training(s, 1, step_seed);                      // dropout on
 *       ft_train_state_forward(s, ids, targets, NULL, NULL, B, T, &loss);  // ids / targets [B*T]
 *       ft_train_state_zero_grad(s);
 *       ft_train_state_backward(s, 0.0f);                                 // mean over the targets
 *       ft_optim_step(opt, lr);                                           // updates the adapters only
 *   }
 *   ft_train_state_save_adapter(s, "runs/r16/final", "models/gpt2");       // a PEFT adapter (adapter.h loads it)
 *   ft_optim_free(opt); ft_train_state_free(s);
 *
 * The numbers are those of ft_model_add_lora + ft_model_forward / backward on a model of its own with
 * the same seeds, bit for bit (test_train_state): a state is that training with the weights shared.
 * Decoders (GPT-2, Llama family; f32 or quantized base) take ft_train_state; encoders (BERT, DistilBERT,
 * RoBERTa; f32 or QLoRA base) take its sibling ft_encoder_train_state, below: the two families' passes
 * write different activations, so each has its own state type, with the same life cycle.
 *
 * Ownership: the state borrows the model, which must outlive it and must not change while states exist
 * (no optimizer step on the model's own parameters, ft_model_merge_lora, ft_model_add_lora,
 * ft_model_quantize_base, ft_model_load_weights). The state applies only its own adapters: adapters the
 * model itself carries (ft_model_add_lora) are not part of a state's forward.
 *
 * Thread safety: a state is used by one thread at a time; states over one model may run on different
 * threads at once (they only read the weights), next to inference contexts (context.h) over the same
 * model. The model's own training (ft_model_forward / backward) writes only the model's own state and
 * gradients, so it too may run beside other states, as long as nothing updates the weights.
 *
 * Encoders: ft_encoder_train_state is the same for an ft_encoder_model (encoder.h). A state owns its LoRA
 * adapters, gradients, activations, dropout stream, label smoothing, quantized-matmul workspace and its own
 * copy of the task head PEFT keeps trainable (modules_to_save: the classifier; each training learns its
 * own head from the loaded one). ft_encoder_forward_ex / ft_encoder_backward are the model's own state.
 *
 *   ft_encoder_model *enc;  ft_encoder_load_ex(&enc, "models/minilm", &eo, ft_backend_cpu());
 *   ft_encoder_train_state *s;  ft_encoder_train_state_create(&s, enc, &lc, seed);
 *   ft_optim_create_params(&opt, ft_encoder_train_state_param(s, 0), ft_encoder_train_state_num_params(s), &op);
 *   ft_encoder_train_state_set_training(s, 1, step_seed);
 *   ft_encoder_train_state_forward(s, &in, &loss);                    // in: ids, mask, labels [B*T] / [B]
 *   ft_encoder_train_state_zero_grad(s);  ft_encoder_train_state_backward(s, 0.0f);  ft_optim_step(opt, lr);
 *   ft_encoder_train_state_save_adapter(s, "runs/r8/final", "models/minilm", NULL);
 *
 * The numbers are those of ft_encoder_add_lora + ft_encoder_forward_ex / backward on an encoder of its own
 * with the same seeds, bit for bit (test_encoder_train_state). Class weights are the model's
 * (ft_encoder_set_class_weights), read by every state. */
#ifndef FINETUNE_TRAIN_STATE_H
#define FINETUNE_TRAIN_STATE_H
#include <stdint.h>

struct ft_model;
struct ft_lora_config;
struct ft_param;
struct ft_encoder_model;
struct ft_encoder_inputs;
typedef struct ft_train_state ft_train_state;
typedef struct ft_encoder_train_state ft_encoder_train_state;

/* A state with LoRA adapters c (r, alpha, dropout, rsLoRA, targets; "" = the family's default) over m's
 * frozen base, initialised as ft_model_add_lora(m, c, seed) would. FT_ERR_INVALID for a bad config,
 * FT_ERR_NOT_FOUND (listing the module names) when the targets match nothing. */
int  ft_train_state_create(ft_train_state **out, struct ft_model *m, const struct ft_lora_config *c, uint64_t seed);
void ft_train_state_free(ft_train_state *s);   /* NULL: no-op */

/* As ft_model_set_training / ft_model_set_label_smoothing, for this state. */
void ft_train_state_set_training(ft_train_state *s, int training, uint64_t seed);
void ft_train_state_set_label_smoothing(ft_train_state *s, float eps);
/* As ft_model_set_recompute (model.h; mode an ft_recompute): what this state's forwards keep for backward. */
void ft_train_state_set_recompute(ft_train_state *s, int mode);

/* As ft_model_forward / ft_model_zero_grad / ft_model_backward (model.h), through the state's adapters:
 * logits [B*T, V] (ft_train_state_logits, valid until the next forward or backward; in training mode with
 * targets only the rows with a target, as ft_model_logits) and the mean loss
 * over the targets; the backward ACCUMULATES the adapters' gradients (the base gets none). */
int  ft_train_state_forward(ft_train_state *s, const int *ids, const int *targets, const int *pos, const int *seg,
                            int B, int T, float *loss);
int  ft_train_state_zero_grad(ft_train_state *s);
int  ft_train_state_backward(ft_train_state *s, float grad_scale);
const float *ft_train_state_logits(const ft_train_state *s);
int  ft_train_state_num_targets(const ft_train_state *s);

/* The state's trainable parameters: each adapter's A [r, in] then B [rows, r] (names "lora.<layer>.<site>.
 * <piece>.A"), contiguous, with their gradients after the first zero_grad / backward: hand them to
 * ft_optim_create_params. */
int  ft_train_state_num_params(const ft_train_state *s);
struct ft_param *ft_train_state_param(ft_train_state *s, int i);
int  ft_train_state_lora_count(const ft_train_state *s);

/* The adapters as a PEFT directory (adapter_config.json + adapter_model.safetensors), as
 * ft_model_save_adapter writes them. */
int  ft_train_state_save_adapter(const ft_train_state *s, const char *dir, const char *base_path);

/* ---- encoders (encoder.h) ---- */

/* A state with LoRA adapters c ("" targets: the family's default, query,value / q_lin,v_lin) over m's frozen
 * base, initialised as ft_encoder_add_lora(m, c, seed) would, and a copy of m's trainable head. Errors as
 * ft_train_state_create. */
int  ft_encoder_train_state_create(ft_encoder_train_state **out, struct ft_encoder_model *m, const struct ft_lora_config *c,
                                   uint64_t seed);
void ft_encoder_train_state_free(ft_encoder_train_state *s);   /* NULL: no-op */

/* As ft_encoder_set_training / ft_encoder_set_label_smoothing, for this state. */
void ft_encoder_train_state_set_training(ft_encoder_train_state *s, int training, uint64_t seed);
void ft_encoder_train_state_set_label_smoothing(ft_encoder_train_state *s, float eps);

/* As ft_encoder_forward_ex / ft_encoder_zero_grad / ft_encoder_backward_scaled (encoder.h) through the state:
 * logits [rows, cols] (valid until the next forward or backward); grad_scale 0: 1 / the loss denominator
 * (ft_encoder_backward's mean). The backward ACCUMULATES the adapters' and head's gradients. */
int  ft_encoder_train_state_forward(ft_encoder_train_state *s, const struct ft_encoder_inputs *in, float *loss);
int  ft_encoder_train_state_zero_grad(ft_encoder_train_state *s);
int  ft_encoder_train_state_backward(ft_encoder_train_state *s, float grad_scale);
const float *ft_encoder_train_state_logits(const ft_encoder_train_state *s);
int  ft_encoder_train_state_logit_rows(const ft_encoder_train_state *s);
int  ft_encoder_train_state_logit_cols(const ft_encoder_train_state *s);

/* The state's parameter table: the base's entries (frozen, the model's weights), the head tensors it trains
 * (its copies), then each adapter's A [r, in] and B [out, r]. Hand it all to ft_optim_create_params: frozen
 * entries have no gradient and are skipped. */
int  ft_encoder_train_state_num_params(const ft_encoder_train_state *s);
struct ft_param *ft_encoder_train_state_param(ft_encoder_train_state *s, int i);
int  ft_encoder_train_state_lora_count(const ft_encoder_train_state *s);

/* The adapters and the trained head as a PEFT directory, as ft_encoder_save_adapter writes them (label_names:
 * [num_labels] or NULL for the model's). */
int  ft_encoder_train_state_save_adapter(const ft_encoder_train_state *s, const char *dir, const char *base_path,
                                         const char *const *label_names);
#endif
