// rnn.cpp - LSTM, GRU and plain (tanh) recurrent layers with ONNX's layout and equations.
//
// Inputs (every one given; the ONNX importer supplies zeros for omitted ones):
//   LSTM: data, W (D, 4H, I), R (D, 4H, H), B (D, 8H), initial_h (D, N, H), initial_c (D, N, H),
//         P (D, 3H) (peepholes)
//   GRU:  data, W (D, 3H, I), R (D, 3H, H), B (D, 6H), initial_h (D, N, H)
//   RNN_tanh: data, W (D, H, I), R (D, H, H), B (D, 2H), initial_h (D, N, H)
// data is (S, N, I) with layout 0 and (N, S, I) with layout 1; D is 2 for a bidirectional
// layer, else 1. Gate order is ONNX's: LSTM i, o, f, c (peepholes i, o, f); GRU z, r, h. B holds
// the input biases of every gate, then the recurrent ones. With sigmoid f and tanh g, h:
//   LSTM  i = f(x Wi' + h Ri' + Pi.c + bi)   f = f(x Wf' + h Rf' + Pf.c + bf)
//         c~ = g(x Wc' + h Rc' + bc)          c = f.c + i.c~
//         o = f(x Wo' + h Ro' + Po.c + bo)    h = o.h(c)
//   GRU   z = f(x Wz' + h Rz' + bz)           r = f(x Wr' + h Rr' + br)
//         h~ = g(x Wh' + (r.h) Rh' + Rbh + Wbh), or with linear_before_reset
//         h~ = g(x Wh' + r.(h Rh' + Rbh) + Wbh);  h = (1 - z).h~ + z.h
//   RNN_tanh  h = tanh(x W' + h R' + Wb + Rb)
// `clip` (when given) clamps every gate's pre-activation to [-clip, clip]. Outputs: Y (every
// step's h: (S, D, N, H), or (N, S, D, H) with layout 1), Y_h (the last h: (D, N, H), or
// (N, D, H)) and, for LSTM, Y_c (the last c). The reverse direction runs from the last step.
// The reference kernel accumulates in double. No gradient yet (a UserError from the gradient
// pass).
#include <cmath>

#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

enum class Direction { kForward, kReverse, kBidirectional };

struct RnnAttrs {
  int64_t hidden_size = 0;
  Direction direction = Direction::kForward;
  int64_t layout = 0;
  std::optional<double> clip;
  bool linear_before_reset = false;  // GRU only
  bool input_forget = false;         // LSTM only: couples the input and forget gates
  static void Describe(AttrSchema<RnnAttrs>& s) {
    s.Field("hidden_size", &RnnAttrs::hidden_size).Required().Min(1);
    s.Enum("direction", &RnnAttrs::direction,
           {{"forward", Direction::kForward},
            {"reverse", Direction::kReverse},
            {"bidirectional", Direction::kBidirectional}});
    s.Field("layout", &RnnAttrs::layout).Min(0).Max(1);
    s.Field("clip", &RnnAttrs::clip).Min(0);
    s.Field("linear_before_reset", &RnnAttrs::linear_before_reset);
    s.Field("input_forget", &RnnAttrs::input_forget);
  }
};

int NumDirections(const RnnAttrs& a) {
  return a.direction == Direction::kBidirectional ? 2 : 1;
}

template <int kGates>
void RnnShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<RnnAttrs>();
  const Shape& x = ctx.in(0);
  RequireRank(ctx, x, 3, "data");
  if (!x.IsFullyKnown()) return;
  constexpr bool kLstm = kGates == 4;
  const int64_t gates = kGates, d = NumDirections(a), h = a.hidden_size;
  const int64_t s = a.layout ? x[1] : x[0], n = a.layout ? x[0] : x[1], i = x[2];
  ctx.SetIn(1, Shape{d, gates * h, i}, "W is (directions, gates * hidden_size, input_size)");
  ctx.SetIn(2, Shape{d, gates * h, h}, "R is (directions, gates * hidden_size, hidden_size)");
  ctx.SetIn(3, Shape{d, 2 * gates * h}, "B is (directions, 2 * gates * hidden_size)");
  Shape state = a.layout ? Shape{n, d, h} : Shape{d, n, h};
  ctx.SetIn(4, state, "the initial state");
  if (kLstm) {
    ctx.SetIn(5, state, "the initial cell state");
    ctx.SetIn(6, Shape{d, 3 * h}, "P is (directions, 3 * hidden_size)");
  }
  ctx.SetOut(0, a.layout ? Shape{n, s, d, h} : Shape{s, d, n, h});
  ctx.SetOut(1, state);
  if (kLstm) ctx.SetOut(2, state);
}

double Sigmoid(double v) {
  return 1 / (1 + std::exp(-v));
}

template <int kGates, class T>
void RnnKernel(KernelCtx& ctx) {
  const auto& a = ctx.Attr<RnnAttrs>();
  const Tensor& x = ctx.in[0];
  constexpr bool kLstm = kGates == 4;
  const int64_t G = kGates, D = NumDirections(a), H = a.hidden_size;
  const int64_t S = a.layout ? x.dim(1) : x.dim(0), N = a.layout ? x.dim(0) : x.dim(1),
                I = x.dim(2);
  auto rd = [](const Tensor& t) { return t.ToDoubles(); };
  const std::vector<double> X = rd(x), W = rd(ctx.in[1]), R = rd(ctx.in[2]), B = rd(ctx.in[3]),
                            H0 = rd(ctx.in[4]);
  const std::vector<double> C0 = kLstm ? rd(ctx.in[5]) : std::vector<double>{};
  const std::vector<double> P = kLstm ? rd(ctx.in[6]) : std::vector<double>{};
  auto xat = [&](int64_t t, int64_t n, int64_t i) {
    return X[size_t(a.layout ? (n * S + t) * I + i : (t * N + n) * I + i)];
  };
  auto state_at = [&](int64_t d, int64_t n) {  // offset of (d, n, 0) in a state tensor
    return size_t(a.layout ? (n * D + d) * H : (d * N + n) * H);
  };
  auto clip = [&](double v) { return a.clip ? std::clamp(v, -*a.clip, *a.clip) : v; };
  std::vector<double> Y(size_t(S * D * N * H)), Yh(size_t(D * N * H)), Yc(size_t(D * N * H));
  std::vector<double> gx(size_t(G * H)), gh(size_t(G * H));
  for (int64_t d = 0; d < D; ++d) {
    bool reverse = a.direction == Direction::kReverse || d == 1;
    const double* w = &W[size_t(d * G * H * I)];
    const double* r = &R[size_t(d * G * H * H)];
    const double* wb = &B[size_t(d * 2 * G * H)];
    const double* rb = wb + G * H;
    for (int64_t n = 0; n < N; ++n) {
      std::vector<double> h(H0.begin() + long(state_at(d, n)),
                            H0.begin() + long(state_at(d, n) + size_t(H)));
      std::vector<double> c(size_t(H), 0.0);
      if (kLstm)
        c.assign(C0.begin() + long(state_at(d, n)), C0.begin() + long(state_at(d, n) + size_t(H)));
      for (int64_t step = 0; step < S; ++step) {
        int64_t t = reverse ? S - 1 - step : step;
        // gx = x W' + Wb, gh = h R' + Rb, per gate row.
        for (int64_t j = 0; j < G * H; ++j) {
          double sx = wb[j], sh = rb[j];
          for (int64_t i = 0; i < I; ++i) sx += xat(t, n, i) * w[j * I + i];
          for (int64_t k = 0; k < H; ++k) sh += h[size_t(k)] * r[j * H + k];
          gx[size_t(j)] = sx;
          gh[size_t(j)] = sh;
        }
        std::vector<double> nh(static_cast<size_t>(H));
        for (int64_t k = 0; k < H; ++k) {
          if constexpr (kLstm) {
            const double* p = P.data() + d * 3 * H;
            auto pre = [&](int g) { return gx[size_t(g * H + k)] + gh[size_t(g * H + k)]; };
            double ig = Sigmoid(clip(pre(0) + p[k] * c[size_t(k)]));
            double fg = Sigmoid(clip(pre(2) + p[2 * H + k] * c[size_t(k)]));
            if (a.input_forget) fg = 1 - ig;
            double cg = std::tanh(clip(pre(3)));
            double cn = fg * c[size_t(k)] + ig * cg;
            double og = Sigmoid(clip(pre(1) + p[H + k] * cn));
            c[size_t(k)] = cn;
            nh[size_t(k)] = og * std::tanh(cn);
          } else if constexpr (kGates == 1) {
            nh[size_t(k)] = std::tanh(clip(gx[size_t(k)] + gh[size_t(k)]));
          } else {
            double z = Sigmoid(clip(gx[size_t(k)] + gh[size_t(k)]));
            double rg = Sigmoid(clip(gx[size_t(H + k)] + gh[size_t(H + k)]));
            double hh;
            if (a.linear_before_reset) {
              hh = gx[size_t(2 * H + k)] + rg * gh[size_t(2 * H + k)];
            } else {
              // x Wh' + Wbh + Rbh here; (r.h) Rh' is added below, once every r is known.
              hh = gx[size_t(2 * H + k)] + rb[2 * H + k];
            }
            nh[size_t(k)] = hh;  // the candidate's pre-activation, finished below
            gx[size_t(k)] = z;   // z, kept for the update (gx's z row is not read again)
          }
        }
        if constexpr (kGates == 3) {
          if (!a.linear_before_reset) {
            // (r.h) Rh': needs every r first.
            std::vector<double> rh(static_cast<size_t>(H));
            for (int64_t m = 0; m < H; ++m)
              rh[size_t(m)] = Sigmoid(clip(gx[size_t(H + m)] + gh[size_t(H + m)])) * h[size_t(m)];
            for (int64_t k = 0; k < H; ++k) {
              double sum = 0;
              for (int64_t m = 0; m < H; ++m) sum += rh[size_t(m)] * r[(2 * H + k) * H + m];
              nh[size_t(k)] += sum;
            }
          }
          for (int64_t k = 0; k < H; ++k) {
            double z = gx[size_t(k)];
            double hh = std::tanh(clip(nh[size_t(k)]));
            nh[size_t(k)] = (1 - z) * hh + z * h[size_t(k)];
          }
        }
        h = nh;
        for (int64_t k = 0; k < H; ++k) {
          size_t yo =
              size_t(a.layout ? ((n * S + t) * D + d) * H + k : ((t * D + d) * N + n) * H + k);
          Y[yo] = h[size_t(k)];
        }
      }
      for (int64_t k = 0; k < H; ++k) {
        Yh[state_at(d, n) + size_t(k)] = h[size_t(k)];
        if (kLstm) Yc[state_at(d, n) + size_t(k)] = c[size_t(k)];
      }
    }
  }
  auto store = [](const Tensor& t, const std::vector<double>& v) {
    T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = ConvertValue<T>(v[i]);
  };
  store(ctx.out[0], Y);
  store(ctx.out[1], Yh);
  if (kLstm) store(ctx.out[2], Yc);
}

template <int kGates>
void RegisterRnn(OpRegistry& r, const char* name, const char* doc) {
  r.Register(name)
      .Describe(doc)
      .SetAttrs<RnnAttrs>()
      .Inputs(kGates == 4
                  ? std::vector<std::string>{"data", "W", "R", "B", "initial_h", "initial_c", "P"}
                  : std::vector<std::string>{"data", "W", "R", "B", "initial_h"})
      .Outputs(kGates == 4 ? std::vector<std::string>{"Y", "Y_h", "Y_c"}
                           : std::vector<std::string>{"Y", "Y_h"})
      .InferShape(RnnShape<kGates>)
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, (RnnKernel<kGates, T>(ctx)));
      });
}

}  // namespace

void RegisterRnnOps(OpRegistry& r) {
  RegisterRnn<4>(r, "LSTM", "a long short-term memory layer (ONNX's layout and gate order)");
  RegisterRnn<3>(r, "GRU", "a gated recurrent unit layer (ONNX's layout and gate order)");
  RegisterRnn<1>(r, "RNN_tanh", "a plain recurrent layer, h = tanh(x W' + h R' + b) (ONNX's RNN)");
}

}  // namespace kiln::ops
