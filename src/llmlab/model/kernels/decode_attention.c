/* Attention of one new token per row over a left-padded KV cache, on a CPU (llmlab/model/kernels/decode_attention.py).

   For each row b and query head h: the keys and values of slots [pad[b], S) of kv head h / (H / Hkv),
   scores q.k * scale, a softmax, the weighted sum of the values. Rows skip their masked prefix instead of
   reading it (SDPA with a mask reads every slot), and each (row, head) is three passes over contiguous
   memory the compiler vectorises: the decode step's attention is bound by the bytes of the cache it reads.

   Layouts (element strides, last dimension contiguous):
     q    (B, H, hd)           row stride q_sb, head stride q_sh
     k, v (B, Hkv, slots, hd)  row stride kv_sb, head stride kv_sh, slot stride hd
     out  (B, H, hd)           contiguous
   scratch holds S floats (the scores of one row and head). */
#include <math.h>
#include <stdint.h>
#include <string.h>

/* e^x for x <= 0 (a score minus the row's maximum): 2^n * p(r) with n = round(x / ln 2), r = x - n ln 2 in
   [-ln2/2, ln2/2] (ln 2 in two parts, so r is exact to float precision) and p the degree-6 Taylor polynomial
   of e^r (relative error below 2e-7). Written out, rather than expf, so the loop over a row's scores
   vectorises without -ffast-math. Below -87, e^x underflows float's normal range: it is taken as e^-87. */
static inline float exp_nonpos(float x) {
    x = x < -87.0f ? -87.0f : x;
    float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest: 1.5 * 2^23 */
    float r = x - n * 0.693145752f - n * 1.42860677e-6f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666667f + r * (0.0416666667f +
              r * (0.00833333333f + r * 0.00138888889f)))));
    int32_t bits = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &bits, 4);
    return p * s;
}

static inline float bf16_to_f32(uint16_t x) {
    uint32_t bits = (uint32_t)x << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t f32_to_bf16(float f) { /* round to nearest even (scores are finite) */
    uint32_t bits;
    memcpy(&bits, &f, 4);
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

/* The softmax of scratch[s0, S) (scores) in place; returns 1 / the sum of its exponentials. */
static inline float softmax_inplace(float* sc, int64_t s0, int64_t S, float m) {
    float l = 0.f;
#pragma omp simd reduction(+ : l)
    for (int64_t s = s0; s < S; s++) {
        float e = exp_nonpos(sc[s] - m);
        sc[s] = e;
        l += e;
    }
    return 1.f / l;
}

void llmlab_decode_attn_f32(const float* q, int64_t q_sb, int64_t q_sh, const float* k, const float* v,
                            int64_t kv_sb, int64_t kv_sh, const int64_t* pad, int64_t b0, int64_t b1, int64_t H,
                            int64_t Hkv, int64_t S, int64_t hd, float scale, float* out, float* sc) {
    int64_t G = H / Hkv;
    for (int64_t b = b0; b < b1; b++) {
        int64_t s0 = pad[b] < 0 ? 0 : pad[b];
        for (int64_t h = 0; h < H; h++) {
            const float* qq = q + b * q_sb + h * q_sh;
            const float* kk = k + b * kv_sb + (h / G) * kv_sh;
            const float* vv = v + b * kv_sb + (h / G) * kv_sh;
            float* o = out + (b * H + h) * hd;
            for (int64_t i = 0; i < hd; i++) o[i] = 0.f;
            if (s0 >= S) continue; /* no slot to attend to (a dead row riding along) */
            float m = -INFINITY;
            for (int64_t s = s0; s < S; s++) {
                const float* ks = kk + s * hd;
                float d = 0.f;
#pragma omp simd reduction(+ : d)
                for (int64_t i = 0; i < hd; i++) d += qq[i] * ks[i];
                d *= scale;
                sc[s] = d;
                m = d > m ? d : m;
            }
            float inv = softmax_inplace(sc, s0, S, m);
            for (int64_t s = s0; s < S; s++) {
                const float* vs = vv + s * hd;
                float p = sc[s];
#pragma omp simd
                for (int64_t i = 0; i < hd; i++) o[i] += p * vs[i];
            }
            for (int64_t i = 0; i < hd; i++) o[i] *= inv;
        }
    }
}

/* The same over a bf16 cache, computed in float32. q and out are bf16 (q_f32 / out_f32 = 0: bf16 weights) or
   float32 (1: a bf16 cache under float32 weights, whose queries and output need no rounding). acc holds
   2 * hd floats. */
void llmlab_decode_attn_bf16(const void* q, int64_t q_sb, int64_t q_sh, const uint16_t* k, const uint16_t* v,
                             int64_t kv_sb, int64_t kv_sh, const int64_t* pad, int64_t b0, int64_t b1, int64_t H,
                             int64_t Hkv, int64_t S, int64_t hd, float scale, void* out, float* sc, float* acc,
                             int64_t q_f32, int64_t out_f32) {
    int64_t G = H / Hkv;
    float* qf = acc + hd;
    for (int64_t b = b0; b < b1; b++) {
        int64_t s0 = pad[b] < 0 ? 0 : pad[b];
        for (int64_t h = 0; h < H; h++) {
            int64_t qo = b * q_sb + h * q_sh;
            const uint16_t* kk = k + b * kv_sb + (h / G) * kv_sh;
            const uint16_t* vv = v + b * kv_sb + (h / G) * kv_sh;
            for (int64_t i = 0; i < hd; i++) {
                acc[i] = 0.f;
                qf[i] = q_f32 ? ((const float*)q)[qo + i] : bf16_to_f32(((const uint16_t*)q)[qo + i]);
            }
            if (s0 < S) {
                float m = -INFINITY;
                for (int64_t s = s0; s < S; s++) {
                    const uint16_t* ks = kk + s * hd;
                    float d = 0.f;
#pragma omp simd reduction(+ : d)
                    for (int64_t i = 0; i < hd; i++) d += qf[i] * bf16_to_f32(ks[i]);
                    d *= scale;
                    sc[s] = d;
                    m = d > m ? d : m;
                }
                float inv = softmax_inplace(sc, s0, S, m);
                for (int64_t s = s0; s < S; s++) {
                    const uint16_t* vs = vv + s * hd;
                    float p = sc[s];
#pragma omp simd
                    for (int64_t i = 0; i < hd; i++) acc[i] += p * bf16_to_f32(vs[i]);
                }
                for (int64_t i = 0; i < hd; i++) acc[i] *= inv;
            }
            int64_t oo = (b * H + h) * hd;
            if (out_f32)
                for (int64_t i = 0; i < hd; i++) ((float*)out)[oo + i] = acc[i];
            else
                for (int64_t i = 0; i < hd; i++) ((uint16_t*)out)[oo + i] = f32_to_bf16(acc[i]);
        }
    }
}
