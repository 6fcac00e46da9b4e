/* ggml_types.h — the ggml tensor type ids finetune reads or writes (the "type" field of a GGUF tensor info).
 *
 * One list for the whole library: the GGUF reader (convert.h), the quantized matmuls (ggml_quant.h) and the
 * GGUF export's quantizers (gguf_quantize.h) all use these names. Values are facts of the GGUF format.
 *   multiplied in their blocks:   Q8_0, Q4_0, Q4_K          (ggml_quant.h)
 *   written by finetune export:   F32, F16, BF16, Q8_0, Q4_0, Q4_K, and Q5_0 as Q4_K's fallback (gguf_quantize.h)
 *   read as f32 at load only:     Q4_1, Q5_0, Q5_1, Q5_K, Q6_K
 *   activations of K-quant dots:  Q8_K (never stored in a file)
 * Other ids (Q2_K, Q3_K, IQ*, ...) are only named in error messages (ft_ggml_type_name, convert.h). */
#ifndef FINETUNE_GGML_TYPES_H
#define FINETUNE_GGML_TYPES_H

enum ft_ggml_type_id {
    FT_GGML_F32 = 0, FT_GGML_F16 = 1, FT_GGML_Q4_0 = 2, FT_GGML_Q4_1 = 3, FT_GGML_Q5_0 = 6, FT_GGML_Q5_1 = 7,
    FT_GGML_Q8_0 = 8, FT_GGML_Q4_K = 12, FT_GGML_Q5_K = 13, FT_GGML_Q6_K = 14, FT_GGML_Q8_K = 15, FT_GGML_BF16 = 30,
};
#endif
