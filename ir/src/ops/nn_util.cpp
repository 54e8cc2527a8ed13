// nn_util.cpp - helpers shared by the neural-network op files.
#include "ops/nn_util.h"

namespace kiln::ops {

std::vector<int64_t> TupleOr(const std::vector<int64_t>& v, size_t n, int64_t def) {
  return v.empty() ? std::vector<int64_t>(n, def) : v;
}

std::string CheckTupleLength(const char* name, const std::vector<int64_t>& v, size_t n) {
  if (v.empty() || v.size() == n) return "";
  return StrCat(name, " = ", attr_text::Print(v), " has ", v.size(), " elements but kernel has ",
                n);
}

std::string ChannelFirstLayout(size_t spatial) {
  switch (spatial) {
    case 1:
      return "NCW";
    case 2:
      return "NCHW";
    case 3:
      return "NCDHW";
    default:
      return "?";
  }
}

bool IsChannelLast(const std::string& layout) {
  return layout == "NWC" || layout == "NHWC" || layout == "NDHWC";
}

std::string CheckLayout(const std::optional<std::string>& layout, size_t spatial) {
  if (!layout) return "";
  size_t want = spatial + 2;
  if (layout->size() != want)
    return StrCat("layout ", *layout, " is for ", layout->size() - 2, "-D data but kernel has ",
                  spatial, " axes");
  return "";
}

Window3 MakeWindow3(const std::vector<int64_t>& in_shape, const std::vector<int64_t>& out_shape,
                    const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride,
                    const std::vector<int64_t>& pad, const std::vector<int64_t>& dilate) {
  Window3 w;
  size_t nd = kernel.size();
  size_t off = 3 - nd;
  for (size_t i = 0; i < nd; ++i) {
    w.in[off + i] = in_shape[in_shape.size() - nd + i];
    w.out[off + i] = out_shape[out_shape.size() - nd + i];
    w.kernel[off + i] = kernel[i];
    w.stride[off + i] = stride[i];
    w.pad[off + i] = pad[i];
    w.dilate[off + i] = dilate[i];
  }
  return w;
}

Shape UnifyDataAndOutput(ShapeInferCtx& ctx, int out) {
  Shape s = ctx.in(0);
  if (!s.Merge(ctx.out(out)))
    ctx.Fail(StrCat(ctx.InName(0), " ", ctx.in(0).ToString(), " and ", ctx.OutName(out), " ",
                    ctx.out(out).ToString(), " differ but must have one shape"));
  ctx.SetIn(0, s);
  ctx.SetOut(out, s);
  return s;
}

void InferShapesAsForward(ShapeInferCtx& ctx, std::string_view fwd_op,
                          const std::vector<int>& fwd_in, const std::vector<int>& fwd_out) {
  const OpDef& op = OpRegistry::Global().Get(fwd_op);
  std::vector<Shape> in, out;
  for (int i : fwd_in) in.push_back(i >= 0 ? ctx.in(i) : Shape());
  for (int i : fwd_out) out.push_back(i >= 0 ? ctx.in(i) : Shape());
  ShapeInferCtx fwd(op, ctx.node_name(), ctx.raw_attrs(), in, out);
  op.infer_shape()(fwd);
  for (size_t k = 0; k < fwd_in.size(); ++k)
    if (fwd_in[k] >= 0) ctx.SetIn(fwd_in[k], in[k]);
  for (size_t k = 0; k < fwd_out.size(); ++k)
    if (fwd_out[k] >= 0) ctx.SetIn(fwd_out[k], out[k]);
}

std::vector<double> ReadDoubles(const Tensor& t) {
  return t.ToDoubles();
}

void WriteDoubles(const Tensor& t, const std::vector<double>& v) {
  KILN_INTERNAL_CHECK(int64_t(v.size()) == t.size(), "WriteDoubles: ", v.size(), " values for ",
                      t.TypeString());
  KILN_DTYPE_SWITCH(t.dtype(), T, {
    T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = static_cast<T>(v[i]);
  });
}

void RequireNumeric(const TypeInferCtx& ctx, DType t, const std::string& what) {
  if (t == DType::kBool) ctx.Fail(StrCat(what, " has dtype bool but a numeric type is required"));
}

}  // namespace kiln::ops
