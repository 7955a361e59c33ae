/*
 * Fused element-wise steps of the rnnzoo training kernels (float32), compiled on first use by
 * rnnzoo_train.training.native and called through ctypes. Each function does, in one pass
 * over memory, what the eager kernels in kernels.py do with 6-12 torch operations per step;
 * the GEMMs stay in torch (MKL). Layouts are those of kernels.py: per network and step, each
 * gate is a contiguous block of nb = N * B floats ("rows" of B trials); consecutive networks
 * are `stride` floats apart.
 *
 * exp is Cephes' single-precision approximation and sigmoid(x) = 1 / (1 + exp(-x)) (max
 * relative error 1.5e-7, as torch's); tanh is a rational approximation (below; 4.1e-7).
 * All are written so that the compiler vectorises them: no libm calls, no branches (selects
 * only). NaN and +-inf propagate like torch's: sigmoid(NaN) = tanh(NaN) = NaN,
 * relu(NaN) = NaN, sigmoid(inf) = 1, tanh(+-inf) = +-1; sigmoid(-inf) = 4e-39 (torch: 0).
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

/* the scalar functions over arrays, for the accuracy tests */
void vector_sigmoid(idx n, float *__restrict out, const float *__restrict x) {
    for (idx k = 0; k < n; k++) out[k] = fsigmoid(x[k]);
}
void vector_tanh(idx n, float *__restrict out, const float *__restrict x) {
    for (idx k = 0; k < n; k++) out[k] = ftanh(x[k]);
}

/* ---- LSTM: stored rows i, f, o, g; state c ------------------------------------------ */

#define LSTM_FORWARD(NAME, ACT)                                                             \
    static void NAME(idx n, RW i, RW f, RW o, RW g, RO c0, RW c1, RW h) {                  \
        for (idx k = 0; k < n; k++) {                                                       \
            float ik = fsigmoid(i[k]), fk = fsigmoid(f[k]), ok = fsigmoid(o[k]);            \
            float gk = ACT(g[k]);                                                           \
            float c = fk * c0[k] + ik * gk;                                                 \
            i[k] = ik; f[k] = fk; o[k] = ok; g[k] = gk;                                     \
            c1[k] = c;                                                                      \
            h[k] = ok * ACT(c);                                                             \
        }                                                                                   \
    }
LSTM_FORWARD(lstm_forward_tanh, ftanh)
LSTM_FORWARD(lstm_forward_relu, frelu)

/* A: activated gates of the step (in place), c0/c1: c_{t-1}, c_t, h: h_t */
void lstm_forward(int n_net, idx nb, float *A, idx a_stride, const float *c0, float *c1,
                  idx c_stride, float *h, idx h_stride, int relu) {
    for (int p = 0; p < n_net; p++) {
        float *a = A + p * a_stride;
        (relu ? lstm_forward_relu : lstm_forward_tanh)(
            nb, a, a + nb, a + 2 * nb, a + 3 * nb, c0 + p * c_stride, c1 + p * c_stride,
            h + p * h_stride);
    }
}

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

/* ---- GRU: stored rows r, z, m = W_hn h + b_hn, and (at n_offset) n ------------------ */

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
