/*
 * Fused element-wise steps of the rnnzoo training kernels (float32), compiled on first use by
 * rnnzoo_train.training.native and called through ctypes. Each function does, in one pass
 * over memory, what the eager kernels in kernels.py do with 6-12 torch operations per step;
 * the GEMMs stay in torch (MKL). Layouts are those of kernels.py: per network and step, each
 * gate is a contiguous block of nb = N * B floats ("rows" of B trials); consecutive networks
 * are `stride` floats apart.
 *
 * exp is Cephes' single-precision approximation and sigmoid(x) = 1 / (1 + exp(-x)) (max
 * relative error 1.5e-7, as torch's); tanh is a rational approximation (below; 4.1e-7, and
 * 2.6e-7 in the AVX-512 version, which evaluates it with FMAs). The scalar versions are
 * written so that the compiler vectorises them: no libm calls, no branches (selects only);
 * where the compiler targets AVX-512 the LSTM steps use explicit 16-lane versions (below).
 * NaN and +-inf propagate like torch's: sigmoid(NaN) = tanh(NaN) = NaN, relu(NaN) = NaN,
 * sigmoid(inf) = 1, tanh(+-inf) = +-1; sigmoid(-inf) = 4e-39 (torch: 0).
 */
#include <stdint.h>

typedef int64_t idx;
#define RW float *__restrict
#define RO const float *__restrict

static inline float fexp(float x) {
    x = x < -87.33654f ? -87.33654f : x; /* NaN stays NaN */
    x = x > 88.37626f ? 88.37626f : x;
    float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float z = r * r;
    float p = 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * z + r + 1.0f;
    union { int32_t i; float f; } scale;
    scale.i = ((int32_t)n + 127) << 23;
    return p * scale.f;
}

static inline float fsigmoid(float x) { return 1.0f / (1.0f + fexp(-x)); }

/* tanh as the [13/6] odd/even rational minimax approximation on [-7.9053, 7.9053] whose
   coefficients Eigen uses (generic_fast_tanh_float); max error 4.1e-7 (relative and
   absolute, at |x| = 5.8, measured on 4e7 points of [-9, 9]; torch: 6e-8), a third cheaper
   than 1 - 2 / (exp(2x) + 1) and exact in sign and at 0. */
static inline float ftanh(float a) {
    float x = a > 7.90531110763549805f ? 7.90531110763549805f : a; /* NaN stays NaN */
    x = x < -7.90531110763549805f ? -7.90531110763549805f : x;
    float x2 = x * x;
    float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = x2 * p + -8.60467152213735e-11f;
    p = x2 * p + 5.12229709037114e-08f;
    p = x2 * p + 1.48572235717979e-05f;
    p = x2 * p + 6.37261928875436e-04f;
    p = x2 * p + 4.89352455891786e-03f;
    p = x * p;
    float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = x2 * q + 2.26843463243900e-03f;
    q = x2 * q + 4.89352518554385e-03f;
    float ax = a < 0.0f ? -a : a;
    return ax < 0.0004f ? a : p / q;
}

static inline float frelu(float x) { return x < 0.0f ? 0.0f : x; } /* NaN stays NaN */

/* dst[p] = src[p] (count floats) for each network, or zeros where src is NULL: the readout
   rows between the GEMM buffers and the (T, K_out, B) output arrays */
void copy_blocks(int n_net, idx count, float *dst, idx dst_stride, const float *src,
                 idx src_stride) {
    for (int p = 0; p < n_net; p++) {
        float *__restrict d = dst + p * dst_stride;
        if (src) {
            const float *__restrict s = src + p * src_stride;
            for (idx k = 0; k < count; k++) d[k] = s[k];
        } else {
            for (idx k = 0; k < count; k++) d[k] = 0.0f;
        }
    }
}

/* ---- AVX-512 versions of the functions (used where the compiler targets AVX-512) -------
 *
 * A 16-lane vector per iteration, with masked loads and stores for the tail, so that every
 * element of a block takes the same path (a network computes the same alone and in a
 * population). The divisions of sigmoid and tanh, which bound the LSTM's forward step
 * (five per element; a 16-lane division issues once every ~10 cycles), become a 14-bit
 * reciprocal estimate refined by Newton steps and a final residual correction, all FMAs:
 * the quotient is then within 1 ulp (measured errors: kernel tests). */
#if defined(__AVX512F__)
#include <immintrin.h>
#define HAVE_VEC 1
typedef __m512 vf;
#define VSET(a) _mm512_set1_ps(a)

static inline vf v_exp(vf x) {
    x = _mm512_max_ps(VSET(-87.33654f), x); /* NaN stays NaN (second operand) */
    x = _mm512_min_ps(VSET(88.37626f), x);
    vf n = _mm512_roundscale_ps(_mm512_fmadd_ps(x, VSET(1.44269504088896341f), VSET(0.5f)),
                                _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    vf r = _mm512_fnmadd_ps(n, VSET(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, VSET(-2.12194440e-4f), r);
    vf z = _mm512_mul_ps(r, r);
    vf p = VSET(1.9875691500E-4f);
    p = _mm512_fmadd_ps(p, r, VSET(1.3981999507E-3f));
    p = _mm512_fmadd_ps(p, r, VSET(8.3334519073E-3f));
    p = _mm512_fmadd_ps(p, r, VSET(4.1665795894E-2f));
    p = _mm512_fmadd_ps(p, r, VSET(1.6666665459E-1f));
    p = _mm512_fmadd_ps(p, r, VSET(5.0000001201E-1f));
    p = _mm512_add_ps(_mm512_fmadd_ps(p, z, r), VSET(1.0f));
    return _mm512_scalef_ps(p, n); /* p * 2^n */
}

/* 1 / d for d >= 1: estimate, one Newton step, then a residual correction */
static inline vf v_recip(vf d) {
    vf r = _mm512_rcp14_ps(d);
    r = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, VSET(1.0f)), r);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, VSET(1.0f)), r);
}

static inline vf v_sigmoid(vf x) {
    return v_recip(_mm512_add_ps(VSET(1.0f), v_exp(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

static inline vf v_tanh(vf a) {
    vf x = _mm512_min_ps(VSET(7.90531110763549805f), a); /* NaN stays NaN */
    x = _mm512_max_ps(VSET(-7.90531110763549805f), x);
    vf x2 = _mm512_mul_ps(x, x);
    vf p = _mm512_fmadd_ps(x2, VSET(-2.76076847742355e-16f), VSET(2.00018790482477e-13f));
    p = _mm512_fmadd_ps(x2, p, VSET(-8.60467152213735e-11f));
    p = _mm512_fmadd_ps(x2, p, VSET(5.12229709037114e-08f));
    p = _mm512_fmadd_ps(x2, p, VSET(1.48572235717979e-05f));
    p = _mm512_fmadd_ps(x2, p, VSET(6.37261928875436e-04f));
    p = _mm512_fmadd_ps(x2, p, VSET(4.89352455891786e-03f));
    p = _mm512_mul_ps(x, p);
    vf q = _mm512_fmadd_ps(x2, VSET(1.19825839466702e-06f), VSET(1.18534705686654e-04f));
    q = _mm512_fmadd_ps(x2, q, VSET(2.26843463243900e-03f));
    q = _mm512_fmadd_ps(x2, q, VSET(4.89352518554385e-03f));
    /* p / q: reciprocal estimate and one Newton step, quotient, residual correction */
    vf r = _mm512_rcp14_ps(q);
    r = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(q, r, VSET(1.0f)), r);
    vf t = _mm512_mul_ps(p, r);
    t = _mm512_fmadd_ps(_mm512_fnmadd_ps(q, t, p), r, t);
    __mmask16 tiny = _mm512_cmp_ps_mask(_mm512_abs_ps(a), VSET(0.0004f), _CMP_LT_OQ);
    t = _mm512_mask_blend_ps(tiny, t, a);
    /* beyond the clamp the quotient is 1 - 2^-22 (within 2.1e-7 of tanh up to |a| = 9);
       from |a| = 9 on, tanh rounds to +-1 */
    t = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, VSET(9.0f), _CMP_GT_OQ), t, VSET(1.0f));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, VSET(-9.0f), _CMP_LT_OQ), t, VSET(-1.0f));
}

static inline vf v_relu(vf x) { return _mm512_max_ps(_mm512_setzero_ps(), x); }

static inline __mmask16 v_mask(idx left) {
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
}
#define VLD(p) _mm512_maskz_loadu_ps(m, (p) + k)
#define VST(p, v) _mm512_mask_storeu_ps((p) + k, m, (v))
#endif

/* the scalar functions over arrays, for the accuracy tests (the vector ones where used) */
void vector_sigmoid(idx n, float *__restrict out, const float *__restrict x) {
#ifdef HAVE_VEC
    for (idx k = 0; k < n; k += 16) {
        __mmask16 m = v_mask(n - k);
        VST(out, v_sigmoid(VLD(x)));
    }
#else
    for (idx k = 0; k < n; k++) out[k] = fsigmoid(x[k]);
#endif
}
void vector_tanh(idx n, float *__restrict out, const float *__restrict x) {
#ifdef HAVE_VEC
    for (idx k = 0; k < n; k += 16) {
        __mmask16 m = v_mask(n - k);
        VST(out, v_tanh(VLD(x)));
    }
#else
    for (idx k = 0; k < n; k++) out[k] = ftanh(x[k]);
#endif
}

/* ---- LSTM: stored rows i, f, o, g; state c ------------------------------------------ */

/* The step's GEMM writes the pre-activations into a scratch block S that stays in cache; the
   activated gates go from there to the stored rows A, which only the backward pass reads,
   long after. With AVX-512 those stores are non-temporal (they bypass the caches, so the
   stored gates neither evict the working set nor cost a read of the line before the write:
   measured 8.7 -> 8.1 ms per LSTM network-iteration). The cell state and h are read again by
   the next step and are stored normally. */
#ifdef HAVE_VEC
static inline void v_store_stream(float *p, idx k, __mmask16 m, vf v) {
    if (m == (__mmask16)0xFFFF && (((uintptr_t)(p + k)) & 63) == 0)
        _mm512_stream_ps(p + k, v);
    else
        _mm512_mask_storeu_ps(p + k, m, v);
}
#define LSTM_FORWARD(NAME, ACT)                                                             \
    static void NAME(idx n, RO si, RO sf, RO so, RO sg, RW i, RW f, RW o, RW g, RO c0,      \
                     RW c1, RW h) {                                                         \
        for (idx k = 0; k < n; k += 16) {                                                   \
            __mmask16 m = v_mask(n - k);                                                    \
            vf ik = v_sigmoid(VLD(si)), fk = v_sigmoid(VLD(sf)), ok = v_sigmoid(VLD(so));   \
            vf gk = ACT(VLD(sg));                                                           \
            vf c = _mm512_fmadd_ps(fk, VLD(c0), _mm512_mul_ps(ik, gk));                     \
            v_store_stream(i, k, m, ik);                                                    \
            v_store_stream(f, k, m, fk);                                                    \
            v_store_stream(o, k, m, ok);                                                    \
            v_store_stream(g, k, m, gk);                                                    \
            VST(c1, c);                                                                     \
            VST(h, _mm512_mul_ps(ok, ACT(c)));                                              \
        }                                                                                   \
    }
LSTM_FORWARD(lstm_forward_tanh, v_tanh)
LSTM_FORWARD(lstm_forward_relu, v_relu)
#define STORE_FENCE() _mm_sfence()
#else
#define LSTM_FORWARD(NAME, ACT)                                                             \
    static void NAME(idx n, RO si, RO sf, RO so, RO sg, RW i, RW f, RW o, RW g, RO c0,      \
                     RW c1, RW h) {                                                         \
        for (idx k = 0; k < n; k++) {                                                       \
            float ik = fsigmoid(si[k]), fk = fsigmoid(sf[k]), ok = fsigmoid(so[k]);         \
            float gk = ACT(sg[k]);                                                          \
            float c = fk * c0[k] + ik * gk;                                                 \
            i[k] = ik; f[k] = fk; o[k] = ok; g[k] = gk;                                     \
            c1[k] = c;                                                                      \
            h[k] = ok * ACT(c);                                                             \
        }                                                                                   \
    }
LSTM_FORWARD(lstm_forward_tanh, ftanh)
LSTM_FORWARD(lstm_forward_relu, frelu)
#define STORE_FENCE() ((void)0)
#endif

/* S: the step's pre-activations (scratch), A: the stored activated gates, c0/c1: c_{t-1},
   c_t, h: h_t */
void lstm_forward(int n_net, idx nb, const float *S, idx s_stride, float *A, idx a_stride,
                  const float *c0, float *c1, idx c_stride, float *h, idx h_stride, int relu) {
    for (int p = 0; p < n_net; p++) {
        const float *s = S + p * s_stride;
        float *a = A + p * a_stride;
        (relu ? lstm_forward_relu : lstm_forward_tanh)(
            nb, s, s + nb, s + 2 * nb, s + 3 * nb, a, a + nb, a + 2 * nb, a + 3 * nb,
            c0 + p * c_stride, c1 + p * c_stride, h + p * h_stride);
    }
    STORE_FENCE(); /* order the streamed stores before anything that follows */
}

#ifdef HAVE_VEC
#define ONE VSET(1.0f)
#define DSIG(s) _mm512_mul_ps((s), _mm512_sub_ps(ONE, (s)))
static void lstm_backward_tanh(idx n, RO i, RO f, RO o, RO g, RO c1, RO c0, RO gh, RW gc,
                               RW di, RW df, RW d_o, RW dg) {
    for (idx k = 0; k < n; k += 16) {
        __mmask16 m = v_mask(n - k);
        vf y = v_tanh(VLD(c1));
        vf ik = VLD(i), fk = VLD(f), ok = VLD(o), gk = VLD(g), hk = VLD(gh);
        vf dc = _mm512_fmadd_ps(_mm512_mul_ps(hk, ok), _mm512_fnmadd_ps(y, y, ONE), VLD(gc));
        VST(di, _mm512_mul_ps(_mm512_mul_ps(dc, gk), DSIG(ik)));
        VST(df, _mm512_mul_ps(_mm512_mul_ps(dc, VLD(c0)), DSIG(fk)));
        VST(d_o, _mm512_mul_ps(_mm512_mul_ps(hk, y), DSIG(ok)));
        VST(dg, _mm512_mul_ps(_mm512_mul_ps(dc, ik), _mm512_fnmadd_ps(gk, gk, ONE)));
        VST(gc, _mm512_mul_ps(dc, fk));
    }
}

static void lstm_backward_relu(idx n, RO i, RO f, RO o, RO g, RO c1, RO c0, RO gh, RW gc,
                               RW di, RW df, RW d_o, RW dg) {
    for (idx k = 0; k < n; k += 16) {
        __mmask16 m = v_mask(n - k);
        vf c = VLD(c1);
        vf ik = VLD(i), fk = VLD(f), ok = VLD(o), gk = VLD(g), hk = VLD(gh);
        __mmask16 pos_c = _mm512_cmp_ps_mask(c, _mm512_setzero_ps(), _CMP_GT_OQ);
        __mmask16 pos_g = _mm512_cmp_ps_mask(gk, _mm512_setzero_ps(), _CMP_GT_OQ);
        vf dc = _mm512_mask_add_ps(VLD(gc), pos_c, VLD(gc), _mm512_mul_ps(hk, ok));
        VST(di, _mm512_mul_ps(_mm512_mul_ps(dc, gk), DSIG(ik)));
        VST(df, _mm512_mul_ps(_mm512_mul_ps(dc, VLD(c0)), DSIG(fk)));
        VST(d_o, _mm512_mul_ps(_mm512_mul_ps(hk, v_relu(c)), DSIG(ok)));
        VST(dg, _mm512_maskz_mul_ps(pos_g, dc, ik));
        VST(gc, _mm512_mul_ps(dc, fk));
    }
}
#else
static void lstm_backward_tanh(idx n, RO i, RO f, RO o, RO g, RO c1, RO c0, RO gh, RW gc,
                               RW di, RW df, RW d_o, RW dg) {
    for (idx k = 0; k < n; k++) {
        float y = ftanh(c1[k]);
        float ik = i[k], fk = f[k], ok = o[k], gk = g[k], hk = gh[k];
        float dc = gc[k] + hk * ok * (1.0f - y * y);
        di[k] = dc * gk * (ik * (1.0f - ik));
        df[k] = dc * c0[k] * (fk * (1.0f - fk));
        d_o[k] = hk * y * (ok * (1.0f - ok));
        dg[k] = dc * ik * (1.0f - gk * gk);
        gc[k] = dc * fk;
    }
}

static void lstm_backward_relu(idx n, RO i, RO f, RO o, RO g, RO c1, RO c0, RO gh, RW gc,
                               RW di, RW df, RW d_o, RW dg) {
    for (idx k = 0; k < n; k++) {
        float c = c1[k];
        float ik = i[k], fk = f[k], ok = o[k], gk = g[k], hk = gh[k];
        float dc = gc[k] + (c > 0.0f ? hk * ok : 0.0f);
        di[k] = dc * gk * (ik * (1.0f - ik));
        df[k] = dc * c0[k] * (fk * (1.0f - fk));
        d_o[k] = hk * frelu(c) * (ok * (1.0f - ok));
        dg[k] = gk > 0.0f ? dc * ik : 0.0f;
        gc[k] = dc * fk;
    }
}

#endif

/* gh: dL/dh_t; gc: dL/dc_t carried from step t+1, updated to the part carried to c_{t-1};
   D: dL/d(pre-activations) of i, f, o, g */
void lstm_backward(int n_net, idx nb, const float *A, idx a_stride, const float *c1,
                   const float *c0, idx c_stride, const float *gh, float *gc, idx g_stride,
                   float *D, idx d_stride, int relu) {
    for (int p = 0; p < n_net; p++) {
        const float *a = A + p * a_stride;
        float *d = D + p * d_stride;
        (relu ? lstm_backward_relu : lstm_backward_tanh)(
            nb, a, a + nb, a + 2 * nb, a + 3 * nb, c1 + p * c_stride, c0 + p * c_stride,
            gh + p * g_stride, gc + p * g_stride, d, d + nb, d + 2 * nb, d + 3 * nb);
    }
}

/* ---- the LSTM's whole time loop in C ---------------------------------------------------
 *
 * Per step the LSTM kernel makes one GEMM forward and two backward per network, plus the
 * element-wise steps above; driven from Python that is ~7 calls per step and chunk, whose
 * overhead (and torch.bmm's) was ~10% of an LSTM network-iteration at 64 units. These drivers
 * run the whole sequence of a chunk in C, calling the BLAS that torch itself uses: its
 * Fortran sgemm_ (LP64), whose address the loader passes to set_sgemm after checking it on a
 * small product. Every network gets the same calls alone and in a population. */
typedef void (*sgemm_fn)(const char *, const char *, const int *, const int *, const int *,
                         const float *, const float *, const int *, const float *, const int *,
                         const float *, float *, const int *);
static sgemm_fn blas_sgemm = 0;

/* the BLAS sgemm_ to use (NULL: none); returns 1 if set */
int set_sgemm(void *f) {
    blas_sgemm = (sgemm_fn)f;
    return blas_sgemm != 0;
}

/* row-major C (m x n) = op(A) (m x k) op(B) (k x n) + beta C; ta, tb: 'N' or 'T' for the
   row-major operands (a column-major sgemm computing C^T = op(B)^T op(A)^T) */
static void gemm_rm(char ta, char tb, idx m, idx n, idx k, const float *A, idx lda,
                    const float *B, idx ldb, float beta, float *C, idx ldc) {
    const float one = 1.0f;
    const int im = (int)m, in = (int)n, ik = (int)k, la = (int)lda, lb = (int)ldb;
    const int lc = (int)ldc;
    blas_sgemm(&tb, &ta, &in, &im, &ik, &one, B, &lb, A, &la, &beta, C, &lc);
}

/* test hook: row-major C (m x n) = A (m x k) B (k x n) */
void gemm_check(int n_net, idx count, idx m, idx n, idx k, const float *A, const float *B,
                float *C) {
    (void)n_net;
    (void)count;
    gemm_rm('N', 'N', m, n, k, A, k, B, n, 0.0f, C, n);
}

/* The end of backward step s of every sequence driver, once D holds dA_s: its readout rows
   get dy_{s-1} (zero for s = 1); then per network gh = WbT D_rec (dL/dh_{s-1}; WbT: rows
   0..N-1, columns 0..R-1 of Wf, K x W) and dWf^T += D Z_{s-1}^T. */
static void backward_tail(int n_net, idx s, idx N, idx W, idx K, idx B, idx R, idx n_out,
                          idx out_offset, float *gh, idx g_stride, float *D, idx d_stride,
                          const float *dY, idx dy_stride, idx dy_step, const float *Wf,
                          idx wf_stride, const float *Z, idx z_stride, idx z_step, float *dWfT,
                          idx dw_stride) {
    copy_blocks(n_net, n_out, D + out_offset, d_stride, s > 1 ? dY + (s - 2) * dy_step : 0,
                dy_stride);
    for (int p = 0; p < n_net; p++) {
        const float *d = D + p * d_stride;
        if (s > 1)
            gemm_rm('N', 'N', N, B, R, Wf + p * wf_stride, W, d, B, 0.0f, gh + p * g_stride, B);
        gemm_rm('N', 'T', W, K, B, d, B, Z + p * z_stride + (s - 1) * z_step, B, 1.0f,
                dWfT + p * dw_stride, K);
    }
}

/* Steps 0..T-1 of lstm_forward for a chunk: S = WfT Z_s (per network; W x B), the readout
   rows of S to Y_{s-1}, then the gates, c_{s+1} and h_{s+1} (which is row block 0 of
   Z_{s+1}). Strides are per network, steps per time step, in floats. */
void lstm_forward_sequence(int n_net, idx nb, idx T, idx W, idx K, idx B, idx n_out,
                           idx out_offset, const float *WfT, idx w_stride, const float *Z,
                           idx z_stride, idx z_step, float *S, idx s_stride, float *A,
                           idx a_stride, idx a_step, float *C, idx c_stride, idx c_step,
                           float *H, idx h_stride, idx h_step, float *Y, idx y_stride,
                           idx y_step, int relu) {
    for (idx s = 0; s < T; s++) {
        for (int p = 0; p < n_net; p++)
            gemm_rm('N', 'N', W, B, K, WfT + p * w_stride, K, Z + p * z_stride + s * z_step, B,
                    0.0f, S + p * s_stride, B);
        if (s) copy_blocks(n_net, n_out, Y + (s - 1) * y_step, y_stride, S + out_offset, s_stride);
        lstm_forward(n_net, nb, S, s_stride, A + s * a_step, a_stride, C + s * c_step,
                     C + (s + 1) * c_step, c_stride, H + (s + 1) * h_step, h_stride, relu);
    }
}

/* Steps T..1 of the LSTM's BPTT for a chunk, from gh = dL/dh_T and gc = 0: D = [dA_s;
   dy_{s-1}], then gh = WbT D_rec (WbT: rows 0..N-1, columns 0..R-1 of Wf, K x W per network)
   and dWf^T += D Z_{s-1}^T. */
void lstm_backward_sequence(int n_net, idx nb, idx T, idx W, idx K, idx B, idx R, idx n_out,
                            idx out_offset, const float *A, idx a_stride, idx a_step,
                            const float *C, idx c_stride, idx c_step, float *gh, float *gc,
                            idx g_stride, float *D, idx d_stride, const float *dY,
                            idx dy_stride, idx dy_step, const float *Wf, idx wf_stride,
                            const float *Z, idx z_stride, idx z_step, float *dWfT,
                            idx dw_stride, int relu) {
    const idx N = nb / B;
    for (idx s = T; s > 0; s--) {
        lstm_backward(n_net, nb, A + (s - 1) * a_step, a_stride, C + s * c_step,
                      C + (s - 1) * c_step, c_stride, gh, gc, g_stride, D, d_stride, relu);
        backward_tail(n_net, s, N, W, K, B, R, n_out, out_offset, gh, g_stride, D, d_stride, dY,
                      dy_stride, dy_step, Wf, wf_stride, Z, z_stride, z_step, dWfT, dw_stride);
    }
}

/* ---- GRU: stored rows r, z, m = W_hn h + b_hn, and (at n_offset) n ------------------ */

/* With AVX-512 the forward steps of the GRU and the UGRNN are 16-lane code whose sigmoid and
   tanh need no division, as the LSTM's. Measured per element with the data in cache (64
   units, batch 64): GRU 1.9 -> 1.45 ns (tanh), 1.25 -> 0.9 ns (relu); UGRNN 1.0 -> 0.85 ns,
   0.7 -> 0.5 ns; whole training iterations (P = 16, sequence drivers) 0.92-0.98x. */
#ifdef HAVE_VEC
#define GRU_FORWARD(NAME, ACT)                                                              \
    static void NAME(idx n, RW r, RW z, RO hn, RW c, RO h0, RW h1) {                        \
        for (idx k = 0; k < n; k += 16) {                                                   \
            __mmask16 m = v_mask(n - k);                                                    \
            vf rk = v_sigmoid(VLD(r)), zk = v_sigmoid(VLD(z));                              \
            vf ck = ACT(_mm512_fmadd_ps(rk, VLD(hn), VLD(c)));                              \
            VST(r, rk);                                                                     \
            VST(z, zk);                                                                     \
            VST(c, ck);                                                                     \
            VST(h1, _mm512_fmadd_ps(zk, _mm512_sub_ps(VLD(h0), ck), ck));                   \
        }                                                                                   \
    }
GRU_FORWARD(gru_forward_tanh, v_tanh)
GRU_FORWARD(gru_forward_relu, v_relu)
#else
#define GRU_FORWARD(NAME, ACT)                                                              \
    static void NAME(idx n, RW r, RW z, RO m, RW c, RO h0, RW h1) {                         \
        for (idx k = 0; k < n; k++) {                                                       \
            float rk = fsigmoid(r[k]), zk = fsigmoid(z[k]);                                 \
            float ck = ACT(c[k] + rk * m[k]);                                               \
            r[k] = rk; z[k] = zk; c[k] = ck;                                                \
            h1[k] = ck + zk * (h0[k] - ck);                                                 \
        }                                                                                   \
    }
GRU_FORWARD(gru_forward_tanh, ftanh)
GRU_FORWARD(gru_forward_relu, frelu)
#endif

void gru_forward(int n_net, idx nb, float *A, idx a_stride, idx n_offset, const float *h0,
                 float *h1, idx h_stride, int relu) {
    for (int p = 0; p < n_net; p++) {
        float *a = A + p * a_stride;
        (relu ? gru_forward_relu : gru_forward_tanh)(nb, a, a + nb, a + 2 * nb, a + n_offset,
                                                     h0 + p * h_stride, h1 + p * h_stride);
    }
}

#define GRU_BACKWARD(NAME, DACT)                                                            \
    static void NAME(idx n, RO r, RO z, RO m, RO c, RO h0, RO gh, RW carry, RW dr, RW dz,  \
                     RW dm, RW dc) {                                                        \
        for (idx k = 0; k < n; k++) {                                                       \
            float g = gh[k] + carry[k];                                                     \
            float rk = r[k], zk = z[k], ck = c[k];                                          \
            float dn = g * (1.0f - zk) * DACT(ck);                                          \
            dc[k] = dn;                                                                     \
            dz[k] = g * (h0[k] - ck) * (zk * (1.0f - zk));                                  \
            dr[k] = dn * m[k] * (rk * (1.0f - rk));                                         \
            dm[k] = dn * rk;                                                                \
            carry[k] = g * zk;                                                              \
        }                                                                                   \
    }
#define DTANH(y) (1.0f - (y) * (y))
#define DRELU(y) ((y) > 0.0f ? 1.0f : 0.0f)
GRU_BACKWARD(gru_backward_tanh, DTANH)
GRU_BACKWARD(gru_backward_relu, DRELU)

/* dL/dh_t = gh + carry (the recurrent GEMM's part and the part carried directly through
   h' = n + z (h - n)); carry is overwritten with the direct part for h_{t-1} */
void gru_backward(int n_net, idx nb, const float *A, idx a_stride, idx n_offset,
                  const float *h0, idx h_stride, const float *gh, float *carry, idx g_stride,
                  float *D, idx d_stride, int relu) {
    for (int p = 0; p < n_net; p++) {
        const float *a = A + p * a_stride;
        float *d = D + p * d_stride;
        (relu ? gru_backward_relu : gru_backward_tanh)(
            nb, a, a + nb, a + 2 * nb, a + n_offset, h0 + p * h_stride, gh + p * g_stride,
            carry + p * g_stride, d, d + nb, d + 2 * nb, d + n_offset);
    }
}

/* ---- UGRNN: stored rows u (update gate), c (candidate) ------------------------------- */

#ifdef HAVE_VEC
#define UGRNN_FORWARD(NAME, ACT)                                                            \
    static void NAME(idx n, RW u, RW c, RO h0, RW h1) {                                     \
        for (idx k = 0; k < n; k += 16) {                                                   \
            __mmask16 m = v_mask(n - k);                                                    \
            vf uk = v_sigmoid(VLD(u)), ck = ACT(VLD(c));                                    \
            VST(u, uk);                                                                     \
            VST(c, ck);                                                                     \
            VST(h1, _mm512_fmadd_ps(uk, _mm512_sub_ps(VLD(h0), ck), ck));                   \
        }                                                                                   \
    }
UGRNN_FORWARD(ugrnn_forward_tanh, v_tanh)
UGRNN_FORWARD(ugrnn_forward_relu, v_relu)
#else
#define UGRNN_FORWARD(NAME, ACT)                                                            \
    static void NAME(idx n, RW u, RW c, RO h0, RW h1) {                                     \
        for (idx k = 0; k < n; k++) {                                                       \
            float uk = fsigmoid(u[k]), ck = ACT(c[k]);                                      \
            u[k] = uk; c[k] = ck;                                                           \
            h1[k] = ck + uk * (h0[k] - ck);                                                 \
        }                                                                                   \
    }
UGRNN_FORWARD(ugrnn_forward_tanh, ftanh)
UGRNN_FORWARD(ugrnn_forward_relu, frelu)
#endif

void ugrnn_forward(int n_net, idx nb, float *A, idx a_stride, const float *h0, float *h1,
                   idx h_stride, int relu) {
    for (int p = 0; p < n_net; p++) {
        float *a = A + p * a_stride;
        (relu ? ugrnn_forward_relu : ugrnn_forward_tanh)(nb, a, a + nb, h0 + p * h_stride,
                                                         h1 + p * h_stride);
    }
}

#define UGRNN_BACKWARD(NAME, DACT)                                                          \
    static void NAME(idx n, RO u, RO c, RO h0, RO gh, RW carry, RW du, RW dc) {             \
        for (idx k = 0; k < n; k++) {                                                       \
            float g = gh[k] + carry[k];                                                     \
            float uk = u[k], ck = c[k];                                                     \
            du[k] = g * (h0[k] - ck) * (uk * (1.0f - uk));                                  \
            dc[k] = g * (1.0f - uk) * DACT(ck);                                             \
            carry[k] = g * uk;                                                              \
        }                                                                                   \
    }
UGRNN_BACKWARD(ugrnn_backward_tanh, DTANH)
UGRNN_BACKWARD(ugrnn_backward_relu, DRELU)

void ugrnn_backward(int n_net, idx nb, const float *A, idx a_stride, const float *h0,
                    idx h_stride, const float *gh, float *carry, idx g_stride, float *D,
                    idx d_stride, int relu) {
    for (int p = 0; p < n_net; p++) {
        const float *a = A + p * a_stride;
        float *d = D + p * d_stride;
        (relu ? ugrnn_backward_relu : ugrnn_backward_tanh)(
            nb, a, a + nb, h0 + p * h_stride, gh + p * g_stride, carry + p * g_stride, d,
            d + nb);
    }
}

/* ---- vanilla RNN: h' = act(a); nothing stored but h ---------------------------------- */

/* h = act(S rows 0..N-1) for each network (S: the step's GEMM output, scratch) */
void vanilla_forward(int n_net, idx nb, const float *S, idx s_stride, float *h, idx h_stride,
                     int relu) {
    for (int p = 0; p < n_net; p++) {
        const float *__restrict s = S + p * s_stride;
        float *__restrict o = h + p * h_stride;
        if (relu) {
            for (idx k = 0; k < nb; k++) o[k] = frelu(s[k]);
        } else {
            vector_tanh(nb, o, s);
        }
    }
}

/* D rows 0..N-1 = gh act'(a), written in terms of h = act(a) */
void vanilla_backward(int n_net, idx nb, const float *h, idx h_stride, const float *gh,
                      idx g_stride, float *D, idx d_stride, int relu) {
    for (int p = 0; p < n_net; p++) {
        const float *__restrict y = h + p * h_stride;
        const float *__restrict g = gh + p * g_stride;
        float *__restrict d = D + p * d_stride;
        if (relu) {
            for (idx k = 0; k < nb; k++) d[k] = y[k] > 0.0f ? g[k] : 0.0f;
        } else {
            for (idx k = 0; k < nb; k++) d[k] = g[k] * DTANH(y[k]);
        }
    }
}

/* ---- the GRU's, UGRNN's and vanilla RNN's whole time loops in C -------------------------
 *
 * The drivers of the LSTM's time loop (above) for the other cells: per step one sgemm_ per
 * network forward (into the stored gate rows A_s, or the scratch S for the vanilla RNN,
 * whose a_step is then 0), the readout rows to Y_{s-1}, then the cell's element-wise step;
 * backward the element-wise step, [dA_s; dy_{s-1}], then two sgemm_ per network. They make
 * exactly the calls of the per-step loops in native.py, so the numbers are the same. */
enum { ARCH_UGRNN, ARCH_GRU, ARCH_VANILLA };

static void step_forward(int arch, int n_net, idx nb, float *G, idx g_stride, idx n_offset,
                         const float *h0, float *h1, idx h_stride, int relu) {
    if (arch == ARCH_GRU)
        gru_forward(n_net, nb, G, g_stride, n_offset, h0, h1, h_stride, relu);
    else if (arch == ARCH_UGRNN)
        ugrnn_forward(n_net, nb, G, g_stride, h0, h1, h_stride, relu);
    else
        vanilla_forward(n_net, nb, G, g_stride, h1, h_stride, relu);
}

static void forward_sequence(int arch, int n_net, idx nb, idx T, idx W, idx K, idx B,
                             idx n_out, idx out_offset, idx n_offset, const float *WfT,
                             idx w_stride, const float *Z, idx z_stride, idx z_step, float *A,
                             idx a_stride, idx a_step, float *H, idx h_stride, idx h_step,
                             float *Y, idx y_stride, idx y_step, int relu) {
    for (idx s = 0; s < T; s++) {
        float *a = A + s * a_step;
        for (int p = 0; p < n_net; p++)
            gemm_rm('N', 'N', W, B, K, WfT + p * w_stride, K, Z + p * z_stride + s * z_step, B,
                    0.0f, a + p * a_stride, B);
        if (s) copy_blocks(n_net, n_out, Y + (s - 1) * y_step, y_stride, a + out_offset, a_stride);
        step_forward(arch, n_net, nb, a, a_stride, n_offset, H + s * h_step,
                     H + (s + 1) * h_step, h_stride, relu);
    }
}

/* gh: dL/dh_s from the recurrent GEMM (in: from step s + 1); carry: the part carried
   directly through the gated update (GRU, UGRNN; unused by the vanilla RNN) */
static void backward_sequence(int arch, int n_net, idx nb, idx T, idx W, idx K, idx B, idx R,
                              idx n_out, idx out_offset, idx n_offset, const float *A,
                              idx a_stride, idx a_step, const float *H, idx h_stride,
                              idx h_step, float *gh, float *carry, idx g_stride, float *D,
                              idx d_stride, const float *dY, idx dy_stride, idx dy_step,
                              const float *Wf, idx wf_stride, const float *Z, idx z_stride,
                              idx z_step, float *dWfT, idx dw_stride, int relu) {
    const idx N = nb / B;
    for (idx s = T; s > 0; s--) {
        if (arch == ARCH_GRU)
            gru_backward(n_net, nb, A + (s - 1) * a_step, a_stride, n_offset,
                         H + (s - 1) * h_step, h_stride, gh, carry, g_stride, D, d_stride, relu);
        else if (arch == ARCH_UGRNN)
            ugrnn_backward(n_net, nb, A + (s - 1) * a_step, a_stride, H + (s - 1) * h_step,
                           h_stride, gh, carry, g_stride, D, d_stride, relu);
        else
            vanilla_backward(n_net, nb, H + s * h_step, h_stride, gh, g_stride, D, d_stride,
                             relu);
        backward_tail(n_net, s, N, W, K, B, R, n_out, out_offset, gh, g_stride, D, d_stride, dY,
                      dy_stride, dy_step, Wf, wf_stride, Z, z_stride, z_step, dWfT, dw_stride);
    }
}

/* Steps 0..T-1 of the GRU's forward for a chunk (stored rows r, z, m, y, n; n at n_offset
   floats into a network's block): A_s = WfT Z_s, y_{s-1}, then gru_forward. */
void gru_forward_sequence(int n_net, idx nb, idx T, idx W, idx K, idx B, idx n_out,
                          idx out_offset, idx n_offset, const float *WfT, idx w_stride,
                          const float *Z, idx z_stride, idx z_step, float *A, idx a_stride,
                          idx a_step, float *H, idx h_stride, idx h_step, float *Y,
                          idx y_stride, idx y_step, int relu) {
    forward_sequence(ARCH_GRU, n_net, nb, T, W, K, B, n_out, out_offset, n_offset, WfT,
                     w_stride, Z, z_stride, z_step, A, a_stride, a_step, H, h_stride, h_step, Y,
                     y_stride, y_step, relu);
}

/* Steps T..1 of the GRU's BPTT for a chunk, from gh = dL/dh_T and carry = 0 */
void gru_backward_sequence(int n_net, idx nb, idx T, idx W, idx K, idx B, idx R, idx n_out,
                           idx out_offset, idx n_offset, const float *A, idx a_stride,
                           idx a_step, const float *H, idx h_stride, idx h_step, float *gh,
                           float *carry, idx g_stride, float *D, idx d_stride, const float *dY,
                           idx dy_stride, idx dy_step, const float *Wf, idx wf_stride,
                           const float *Z, idx z_stride, idx z_step, float *dWfT,
                           idx dw_stride, int relu) {
    backward_sequence(ARCH_GRU, n_net, nb, T, W, K, B, R, n_out, out_offset, n_offset, A,
                      a_stride, a_step, H, h_stride, h_step, gh, carry, g_stride, D, d_stride,
                      dY, dy_stride, dy_step, Wf, wf_stride, Z, z_stride, z_step, dWfT,
                      dw_stride, relu);
}

/* Steps 0..T-1 of the UGRNN's forward for a chunk (stored rows u, c, y) */
void ugrnn_forward_sequence(int n_net, idx nb, idx T, idx W, idx K, idx B, idx n_out,
                            idx out_offset, const float *WfT, idx w_stride, const float *Z,
                            idx z_stride, idx z_step, float *A, idx a_stride, idx a_step,
                            float *H, idx h_stride, idx h_step, float *Y, idx y_stride,
                            idx y_step, int relu) {
    forward_sequence(ARCH_UGRNN, n_net, nb, T, W, K, B, n_out, out_offset, 0, WfT, w_stride,
                     Z, z_stride, z_step, A, a_stride, a_step, H, h_stride, h_step, Y, y_stride,
                     y_step, relu);
}

/* Steps T..1 of the UGRNN's BPTT for a chunk, from gh = dL/dh_T and carry = 0 */
void ugrnn_backward_sequence(int n_net, idx nb, idx T, idx W, idx K, idx B, idx R, idx n_out,
                             idx out_offset, const float *A, idx a_stride, idx a_step,
                             const float *H, idx h_stride, idx h_step, float *gh, float *carry,
                             idx g_stride, float *D, idx d_stride, const float *dY,
                             idx dy_stride, idx dy_step, const float *Wf, idx wf_stride,
                             const float *Z, idx z_stride, idx z_step, float *dWfT,
                             idx dw_stride, int relu) {
    backward_sequence(ARCH_UGRNN, n_net, nb, T, W, K, B, R, n_out, out_offset, 0, A, a_stride,
                      a_step, H, h_stride, h_step, gh, carry, g_stride, D, d_stride, dY,
                      dy_stride, dy_step, Wf, wf_stride, Z, z_stride, z_step, dWfT, dw_stride,
                      relu);
}

/* Steps 0..T-1 of the vanilla RNN's forward for a chunk: S = WfT Z_s (scratch, the same
   block every step), y_{s-1}, then h_{s+1} = act(S rows 0..N-1) */
void vanilla_forward_sequence(int n_net, idx nb, idx T, idx W, idx K, idx B, idx n_out,
                              idx out_offset, const float *WfT, idx w_stride, const float *Z,
                              idx z_stride, idx z_step, float *S, idx s_stride, float *H,
                              idx h_stride, idx h_step, float *Y, idx y_stride, idx y_step,
                              int relu) {
    forward_sequence(ARCH_VANILLA, n_net, nb, T, W, K, B, n_out, out_offset, 0, WfT, w_stride,
                     Z, z_stride, z_step, S, s_stride, 0, H, h_stride, h_step, Y, y_stride,
                     y_step, relu);
}

/* Steps T..1 of the vanilla RNN's BPTT for a chunk, from gh = dL/dh_T (act' from h_s) */
void vanilla_backward_sequence(int n_net, idx nb, idx T, idx W, idx K, idx B, idx R,
                               idx n_out, idx out_offset, const float *H, idx h_stride,
                               idx h_step, float *gh, idx g_stride, float *D, idx d_stride,
                               const float *dY, idx dy_stride, idx dy_step, const float *Wf,
                               idx wf_stride, const float *Z, idx z_stride, idx z_step,
                               float *dWfT, idx dw_stride, int relu) {
    backward_sequence(ARCH_VANILLA, n_net, nb, T, W, K, B, R, n_out, out_offset, 0, 0, 0, 0, H,
                      h_stride, h_step, gh, 0, g_stride, D, d_stride, dY, dy_stride, dy_step, Wf,
                      wf_stride, Z, z_stride, z_step, dWfT, dw_stride, relu);
}
