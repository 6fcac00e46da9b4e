/* quant.h — quantized frozen weights for QLoRA: NF4 (bitsandbytes 4-bit NormalFloat with double
 * quantization of the block scales) and int8 with one absmax per row (bitsandbytes LLM.int8()
 * vector-wise quantization), with fused matmuls that dequantize on the fly.
 *
 * Overview
 *   A frozen base weight W[OC, C] (nn.Linear layout: out features x in features, row-major) is
 *   quantized once with ft_nf4_quantize_ref (or ft_q8row_quantize_ref). The model then calls
 *     ft_nf4_matmul_forward   out[N,OC]  = inp[N,C] @ W^T (+ bias)
 *     ft_nf4_matmul_backward  dinp[N,C]  = dout[N,OC] @ W          (assigned; no dW: W is frozen)
 *   which never materialise W in f32 unless the caller's workspace is large enough for the fastest
 *   large-N path (see "Paths" below). Dequantizing to f32 is bit-exact between the scalar _ref
 *   routines (ground truth) and the SIMD ones (AVX2, AVX-512), chosen at run time.
 *
 *   ft_nf4_tensor w;
 *   FT_TRY(ft_nf4_create(&w, OC, C, FT_NF4_DOUBLE_QUANT));   // one allocation, 64-byte aligned
 *   FT_TRY(ft_nf4_quantize_ref(&w, w_f32));                     // w_f32[OC, C]
 *   size_t nws = ft_quant_workspace_floats(FT_QUANT_WS_FAST, N_max, C, OC, 0);
 *   float *ws = malloc(nws * sizeof(float));                  // once, at init
 *   FT_TRY(ft_nf4_matmul_forward(out, inp, &w, bias, N, ws, nws));
 *   FT_TRY(ft_nf4_matmul_backward(dinp, dout, &w, N, ws, nws));
 *   ft_nf4_destroy(&w);
 *
 * NF4 format (bitsandbytes, QLoRA paper; checked bit-exactly against a Python re-implementation of
 * the bitsandbytes CUDA kernels and cross-checked against the bitsandbytes 0.50.2 CPU package,
 * see tests/parity/make_quant_fixtures.py)
 *   - codebook: the 16 NormalFloat4 values FT_NF4_CODEBOOK below (bnb get_4bit_type("nf4"));
 *   - blocks of 64 consecutive weights along a row (C % 64 == 0, so a block never spans rows and
 *     the flat bnb layout equals the row-major one); absmax = max |w| of the block;
 *   - code = NF4 decision tree of (w * (1.0f / absmax)) with the test `x > t` (a value equal to a
 *     threshold takes the lower code), as bnb's dQuantizeNF4. FT_NF4_THRESHOLDS are its decimal
 *     literals rounded to float32 as the CUDA compiler does: 11 equal the float32 midpoints of
 *     adjacent codebook values, 4 (k = 0, 8, 12, 14) are one ulp off them (the exact midpoint is a
 *     float32 tie). bnb's torch CPU fallback bucketizes on the midpoints instead, so it differs
 *     from the CUDA kernel (and from this code) only for inputs equal to one of those 4 values.
 *     The scaling is a multiplication by the float reciprocal, as bnb's kQuantizeBlockwise. An all-zero block gives 0 * inf = NaN,
 *     which the tree sends to code 0 (-1.0): it dequantizes to -1.0 * 0 = -0.0 (bnb CUDA does the
 *     same; bnb's torch fallback clamps absmax to 1e-38 and gives code 7, +0.0);
 *   - packing: two codes per byte, element 2i in the HIGH nibble, element 2i+1 in the low nibble;
 *   - dequantize: value = codebook[code] * absmax (one float multiplication).
 *   Double quantization (bnb compress_statistics=True):
 *   - offset = mean of all first-level absmax values of the tensor (float64 sum in index order,
 *     divided by the count, rounded to float32; bnb uses torch's float32 mean(), whose summation
 *     order is torch's own: the two can differ in the last bit);
 *   - (absmax - offset) is quantized with the blockwise 8-bit dynamic quantizer, blocks of 256,
 *     giving one uint8 code per 64-weight block and one float absmax2 per 256 blocks;
 *   - block scale = dynamic_map[code] * absmax2[b / 256] + offset (float mul, then float add).
 *   Memory: 0.5 byte per weight + 1 byte per 64 + 4 bytes per 16384 + 4 = 0.5159 byte/weight
 *   (4.127 bits); without double quant 0.5625 byte/weight (4.5 bits).
 *
 * 8-bit dynamic map and blockwise 8-bit quantization (bnb create_dynamic_map, quantize_blockwise)
 *   - ft_quant_dynamic_map_create reproduces create_dynamic_map(signed, max_exponent_bits,
 *     total_bits) bit for bit, including torch.linspace's float32 arithmetic;
 *   - blockwise: absmax per block, x * (1.0f/absmax), then bnb's dQuantize binary search: after
 *     the 7-step search the value is compared with the float midpoint (a+b)*0.5f of its
 *     neighbours; a value exactly on a midpoint takes the index the search ended on.
 *
 * int8 row format (bnb int8_vectorwise_quant / int8_vectorwise_dequant)
 *   absmax[r] = max |w[r, :]|; q = round-half-even(w * (127.0f / absmax[r])) as int8 (a zero row
 *   gives q = 0); dequantize: (float)q * absmax[r] * (1/127 as float), two float multiplications
 *   in that order. Effective scale absmax/127. 1 + 4/C bytes per weight.
 *
 * Paths of the fused matmuls (chosen by ft_quant_path; FT_QUANT_PATH_AUTO picks)
 *   DIRECT  SIMD kernel: each thread takes a range of W rows (forward) or 64-column slices
 *           (backward), decodes the codes in registers and accumulates dot products. No workspace.
 *           Fastest for small N (generation, N = 1): it reads 0.5 byte per weight instead of 4.
 *   TILED   each thread dequantizes a tile of W (rows for forward, 64k columns for backward) into
 *           its part of the workspace and calls single-threaded cblas_sgemm on it. Workspace
 *           nthreads * tile, a fraction of the f32 weight.
 *   FULL    the whole W is dequantized (in parallel) into the workspace, then one multi-threaded
 *           cblas_sgemm. Workspace OC*C floats (one layer's f32 weight, reusable across layers).
 *   AUTO    DIRECT when N <= FT_QUANT_DIRECT_MAX_N, else FULL if the workspace holds OC*C floats,
 *           else TILED.
 *   All paths agree with "dequantize, then matmul in double" to about 1e-6 relative (max-norm);
 *   they are not bit-identical to each other (different summation orders). Every path is
 *   deterministic for a given thread count; DIRECT's results do not depend on the thread count
 *   (each output is summed by one thread in a fixed order); TILED and FULL give OpenBLAS's bits
 *   (TILED's tile sizes depend on the thread count and the workspace).
 *
 * Threads: OpenMP (omp_get_max_threads()). No function allocates memory except ft_*_create.
 * Errors: negative ft_status with a message (status.h); nothing here aborts. */
#ifndef FINETUNE_QUANT_H
#define FINETUNE_QUANT_H
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------------
 * Constants */
#define FT_NF4_BLOCK        64   /* weights per NF4 block (one absmax) */
#define FT_NF4_DQ_BLOCK     256  /* first-level absmax values per second-level block */
#define FT_QUANT_DIRECT_MAX_N 8  /* AUTO uses the direct SIMD kernels up to this many rows */

/* The 16 NF4 values, index = 4-bit code (bnb get_4bit_type("nf4"), as float32). */
extern const float FT_NF4_CODEBOOK[16];
/* The 15 decision thresholds of bnb's dQuantizeNF4, ascending (see the overview). */
extern const float FT_NF4_THRESHOLDS[15];

/* One NF4 block: 64 codes, two per byte, element 2i in the high nibble. */
typedef struct ft_nf4_block {
    uint8_t qs[FT_NF4_BLOCK / 2];
} ft_nf4_block;
_Static_assert(sizeof(ft_nf4_block) == FT_NF4_BLOCK / 2, "ft_nf4_block: 64 4-bit codes in 32 bytes, no padding");
_Static_assert(FT_NF4_DQ_BLOCK == 256, "double quant groups 256 block scales (bnb blocksize=256); the kernels index b >> 8");

/* ---------------------------------------------------------------------------------------------
 * NF4 tensor */
enum { FT_NF4_DOUBLE_QUANT = 1 }; /* flags of ft_nf4_create / ft_nf4_view */

typedef struct ft_nf4_tensor {
    int64_t rows, cols;     /* logical shape [rows, cols] = [OC, C]; cols % 64 == 0 */
    int64_t nblocks;        /* rows * cols / 64 */
    int64_t nblocks2;       /* ceil(nblocks / 256) (0 without double quant) */
    int     double_quant;   /* 1: absmax_q/absmax2/offset hold the scales; 0: absmax does */
    ft_nf4_block *blocks;   /* [nblocks]      codes, block b = row b/(cols/64), columns 64*(b%(cols/64)).. */
    uint8_t *absmax_q;      /* [nblocks]      double quant: 8-bit dynamic-map codes of (absmax - offset) */
    float   *absmax2;       /* [nblocks2]     double quant: absmax of (absmax - offset) per 256 blocks */
    float    offset;        /*                double quant: mean of the first-level absmax values */
    float   *absmax;        /* [nblocks]      without double quant: the float absmax per block */
    void    *mem_;          /* the allocation of ft_nf4_create (NULL for views) */
} ft_nf4_tensor;

/* Bytes of the arrays of a [rows, cols] NF4 tensor as ft_nf4_view lays them out (compact: at most
 * ft_tensor_nbytes of an FT_NF4 tensor of that shape). ft_nf4_bits_per_weight: payload bits per
 * weight, the 4-byte offset included. */
size_t ft_nf4_nbytes(int64_t rows, int64_t cols, int flags);
double ft_nf4_bits_per_weight(int64_t rows, int64_t cols, int flags);

/* Points t's arrays into mem (ft_nf4_nbytes(rows, cols, flags) bytes, 4-byte aligned, 64 for best
 * speed; caller keeps ownership). FT_ERR_SHAPE if rows < 1, cols < 64 or cols % 64 != 0. */
int  ft_nf4_view(ft_nf4_tensor *t, int64_t rows, int64_t cols, int flags, void *mem);
/* Same with one allocation owned by t; release with ft_nf4_destroy (safe on a zeroed struct). */
int  ft_nf4_create(ft_nf4_tensor *t, int64_t rows, int64_t cols, int flags);
void ft_nf4_destroy(ft_nf4_tensor *t);

/* Quantizes w[rows, cols] (scalar reference, single thread). Also computes the double-quant
 * statistics when t->double_quant. Never fails on finite or infinite input; NaN inputs give
 * unspecified codes. absmax_out (may be NULL): [nblocks] first-level absmax values (as computed
 * before double quantization, for tests and diagnostics). */
int  ft_nf4_quantize_ref(ft_nf4_tensor *t, const float *w, float *absmax_out);

/* The float scale of block b, exactly as every dequantization uses it. */
float ft_nf4_block_scale(const ft_nf4_tensor *t, int64_t b);

/* out[rows, cols] = dequantized t. _ref: plain loops; no suffix: SIMD, multi-threaded,
 * bit-identical to _ref. */
void ft_nf4_dequantize_ref(float *out, const ft_nf4_tensor *t);
void ft_nf4_dequantize(float *out, const ft_nf4_tensor *t);
/* Rows [r0, r0+nr), columns [c0, c0+nc) into out (row stride ldo floats); c0 and nc multiples of
 * 64. Single-threaded SIMD, bit-identical to _ref. */
void ft_nf4_dequantize_tile(float *out, size_t ldo, const ft_nf4_tensor *t, int64_t r0, int64_t nr, int64_t c0, int64_t nc);

/* ---------------------------------------------------------------------------------------------
 * 8-bit dynamic map and blockwise 8-bit quantization (used by NF4 double quant, exposed for tests) */

/* code[256] = bnb create_dynamic_map(is_signed, max_exponent_bits, total_bits), sorted ascending.
 * FT_ERR_INVALID if the parameters do not give exactly 2^total_bits values (bnb asserts) or
 * total_bits is not in 1..8. The default map is (1, 7, 8). */
int ft_quant_dynamic_map_create(float code[256], int is_signed, int max_exponent_bits, int total_bits);
/* The default signed map (1, 7, 8), built once; never NULL. */
const float *ft_quant_dynamic_map(void);

/* Nearest index of x in the sorted 256-entry code, as bnb's dQuantize (see the overview). */
uint8_t ft_quant_code8_nearest(const float code[256], float x);

/* codes[n], absmax[ceil(n/blocksize)] = blockwise 8-bit quantization of x[n] with code
 * (bnb quantize_blockwise). dequantize: out[i] = code[codes[i]] * absmax[i / blocksize]. */
void ft_quant_blockwise8_ref(uint8_t *codes, float *absmax, const float *x, int64_t n, int blocksize, const float code[256]);
void ft_quant_blockwise8_dequantize_ref(float *out, const uint8_t *codes, const float *absmax, int64_t n, int blocksize, const float code[256]);

/* ---------------------------------------------------------------------------------------------
 * int8 rows */
typedef struct ft_q8row_tensor {
    int64_t rows, cols;     /* [rows, cols] = [OC, C] */
    int8_t *q;              /* [rows, cols] */
    float  *absmax;         /* [rows] max |w| of each row (bnb's SCB / row_stats) */
    void   *mem_;
} ft_q8row_tensor;

#define FT_Q8ROW_INV127 7.874015718698502e-3f /* bnb's 1/127 in int8_vectorwise_dequant */

/* rows*4 + rows*cols bytes (absmax first, then the codes) = ft_tensor_nbytes of FT_Q8_ROW; mem of
 * ft_q8row_view 4-byte aligned. */
size_t ft_q8row_nbytes(int64_t rows, int64_t cols);
int  ft_q8row_view(ft_q8row_tensor *t, int64_t rows, int64_t cols, void *mem);
int  ft_q8row_create(ft_q8row_tensor *t, int64_t rows, int64_t cols);
void ft_q8row_destroy(ft_q8row_tensor *t);
int  ft_q8row_quantize_ref(ft_q8row_tensor *t, const float *w);
void ft_q8row_dequantize_ref(float *out, const ft_q8row_tensor *t);
void ft_q8row_dequantize(float *out, const ft_q8row_tensor *t);
/* Rows [r0, r0+nr), columns [c0, c0+nc) (any c0, nc) into out, row stride ldo. */
void ft_q8row_dequantize_tile(float *out, size_t ldo, const ft_q8row_tensor *t, int64_t r0, int64_t nr, int64_t c0, int64_t nc);

/* ---------------------------------------------------------------------------------------------
 * Fused matmuls (shapes: inp/dinp [N, C], out/dout [N, OC], W [OC, C], bias [OC] or NULL) */
typedef enum ft_quant_path {
    FT_QUANT_PATH_AUTO = 0,
    FT_QUANT_PATH_DIRECT,
    FT_QUANT_PATH_TILED,
    FT_QUANT_PATH_FULL,
} ft_quant_path;
const char *ft_quant_path_name(ft_quant_path p);

typedef enum ft_quant_ws_kind {
    FT_QUANT_WS_FAST = 0,   /* enough for every path: max(OC*C, tiles) floats */
    FT_QUANT_WS_LEAN,       /* enough for TILED with nthreads threads (and DIRECT) */
} ft_quant_ws_kind;

/* Floats of workspace for matmuls with W [OC, C] run on nthreads threads (0: omp_get_max_threads()).
 * Size once at init for the largest layer; pass the same buffer to every call. N_max is unused
 * today (kept so that a future path may size by it). */
size_t ft_quant_workspace_floats(ft_quant_ws_kind kind, int N_max, int64_t C, int64_t OC, int nthreads);

/* out[N,OC] = inp[N,C] @ W^T + bias (bias may be NULL); out is assigned. ws may be NULL when
 * ws_floats is 0 (then AUTO uses DIRECT for every N). FT_ERR_INVALID for a forced path whose
 * workspace is too small, FT_ERR_SHAPE for non-positive sizes. */
int ft_nf4_matmul_forward(float *out, const float *inp, const ft_nf4_tensor *w, const float *bias, int N, float *ws, size_t ws_floats);
int ft_nf4_matmul_forward_path(float *out, const float *inp, const ft_nf4_tensor *w, const float *bias, int N, float *ws, size_t ws_floats, ft_quant_path path);
/* dinp[N,C] = dout[N,OC] @ W (assigned). */
int ft_nf4_matmul_backward(float *dinp, const float *dout, const ft_nf4_tensor *w, int N, float *ws, size_t ws_floats);
int ft_nf4_matmul_backward_path(float *dinp, const float *dout, const ft_nf4_tensor *w, int N, float *ws, size_t ws_floats, ft_quant_path path);

int ft_q8row_matmul_forward(float *out, const float *inp, const ft_q8row_tensor *w, const float *bias, int N, float *ws, size_t ws_floats);
int ft_q8row_matmul_forward_path(float *out, const float *inp, const ft_q8row_tensor *w, const float *bias, int N, float *ws, size_t ws_floats, ft_quant_path path);
int ft_q8row_matmul_backward(float *dinp, const float *dout, const ft_q8row_tensor *w, int N, float *ws, size_t ws_floats);
int ft_q8row_matmul_backward_path(float *dinp, const float *dout, const ft_q8row_tensor *w, int N, float *ws, size_t ws_floats, ft_quant_path path);

/* ---------------------------------------------------------------------------------------------
 * SIMD dispatch. The best instruction set the CPU has is chosen at the first call; both SIMD
 * versions are compiled whatever -march says (function target attributes), so tests run each. */
typedef enum ft_quant_isa {
    FT_QUANT_ISA_SCALAR = 0,
    FT_QUANT_ISA_AVX2,      /* AVX2 + FMA */
    FT_QUANT_ISA_AVX512,    /* AVX-512 F + BW */
} ft_quant_isa;
ft_quant_isa ft_quant_isa_best(void);            /* what this CPU supports */
ft_quant_isa ft_quant_isa_get(void);             /* in use */
/* Forces an instruction set (tests, benchmarks); FT_ERR_UNSUPPORTED if the CPU lacks it. Not
 * thread-safe with concurrent quant calls. */
int          ft_quant_isa_set(ft_quant_isa isa);
const char  *ft_quant_isa_name(ft_quant_isa isa);
#endif
