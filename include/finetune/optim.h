/* optim.h — optimizers over a model's trainable parameters (their grad buffers).
 * AdamW follows torch.optim.AdamW exactly: decoupled decay p *= 1 - lr*wd, then the bias-corrected
 * Adam update p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). Weight decay applies to params
 * whose `decay` flag is set (matrices; not embeddings, norms or biases) unless decay_all.
 * State lives in one allocation; its bytes can be saved and restored for exact resume. */
#ifndef FINETUNE_OPTIM_H
#define FINETUNE_OPTIM_H
#include <stddef.h>
#include <stdint.h>
#include "finetune/backend.h"
#include "finetune/model.h"

typedef enum ft_optim_kind {
    FT_OPT_ADAMW = 0, /* torch.optim.AdamW */
    FT_OPT_ADAM,      /* torch.optim.Adam (weight decay as an L2 term in the gradient) */
    FT_OPT_SGD,       /* torch.optim.SGD with momentum / Nesterov */
    FT_OPT_ADAGRAD,   /* torch.optim.Adagrad (lr_decay 0, initial accumulator 0) */
    FT_OPT_RMSPROP,   /* torch.optim.RMSprop (alpha = beta2, not centered; momentum optional) */
} ft_optim_kind;

typedef struct ft_optim_params {
    ft_optim_kind kind;
    float lr;            /* default 5e-5 */
    float beta1, beta2;  /* 0.9, 0.999 (RMSprop: alpha = beta2) */
    float eps;           /* 1e-8 */
    float weight_decay;  /* 0.0 */
    float momentum;      /* SGD */
    int   nesterov;      /* SGD */
    int   decay_all;     /* apply weight decay to every parameter */
} ft_optim_params;

ft_optim_params ft_optim_default_params(void);

typedef struct ft_optimizer ft_optimizer;
/* The updates run on the model's backend (ft_model_backend). */
int  ft_optim_create(ft_optimizer **out, ft_model *m, const ft_optim_params *p);
/* The same over any parameter array (an encoder's): params [n], updated where trainable && grad,
 * on ft_backend_cpu(). */
int  ft_optim_create_params(ft_optimizer **out, ft_param *params, int n, const ft_optim_params *p);
/* ... on backend be (NULL = ft_backend_cpu()): its update kernels (adamw_update, ...) run each step;
 * the moments are allocated through it (ft_arena_init_on), so with a device backend they live where the
 * parameters and gradients do. */
int  ft_optim_create_params_on(ft_optimizer **out, ft_param *params, int n, const ft_optim_params *p,
                               const ft_backend *be);
void ft_optim_free(ft_optimizer *o);
/* One update with learning rate lr (the schedule's value for this step). */
int  ft_optim_step(ft_optimizer *o, float lr);
int64_t ft_optim_steps(const ft_optimizer *o);
/* Raw state (moments) for checkpoints: in the backend's memory (host memory for ref / cpu; a device
 * backend's caller copies it with ft_backend_to_host / ft_backend_to_device). */
void  *ft_optim_state(ft_optimizer *o, size_t *nbytes);
void   ft_optim_set_steps(ft_optimizer *o, int64_t t);

/* Pre-packed weights (bf16 training on the cpu-bf16 backend; backend.h, wpack members). With on = 1 the
 * optimizer gives every trainable linear weight (ft_param.linear) a pack of its bf16 layouts (one allocation,
 * about 4 bytes per weight: ft_optim_prepack_bytes) and sets ft_param.pack; each step's update then refreshes
 * the pack in the same pass over W (AdamW; the other updates leave it stale and the next product refills
 * it), and the model's products read the pack instead of packing W twice per step. The packs start stale
 * (filled by their first product). on = 0 frees them and clears ft_param.pack; so does ft_optim_free, so an
 * optimizer with packs is freed (or set_prepack(o, 0)) while its parameters still exist.
 * The caller promises that while packs exist the weights change only through ft_optim_step, or calls
 * ft_optim_weights_changed after changing them another way (weights broadcast, written by hand);
 * ft_model_load_weights marks the packs of the weights it loads stale itself.
 * A backend without the members, or on = 1 with nothing to pack: FT_OK, no packs. */
int    ft_optim_set_prepack(ft_optimizer *o, int on);
/* marks every pack stale (refilled from the weights by its next product) */
void   ft_optim_weights_changed(ft_optimizer *o);
/* bytes ft_optim_set_prepack(o, 1) allocates for params [n] on backend be (0 when it would make none) */
size_t ft_optim_prepack_bytes(const ft_param *params, int n, const ft_backend *be);
#endif
