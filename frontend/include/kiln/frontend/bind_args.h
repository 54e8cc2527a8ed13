// kiln/frontend/bind_args.h - what Symbol::Bind and SimpleBind take: gradient requests, arrays.
//
// Kept apart from executor.h so that symbol.h can declare Bind and SimpleBind with MXNet's
// defaults without including the executor. The meaning of each is in executor.h.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "kiln/runtime/tensor.h"

namespace kiln {

// What Backward does with an argument's gradient array (MXNet's OpReqType, without inplace).
enum class GradReq : uint8_t {
  kNull,   // no gradient: none is computed, the array (if any) is left alone
  kWrite,  // overwritten with the gradient
  kAdd,    // the gradient is added to it (accumulation over several Backward calls)
};
// "null", "write", "add".
std::string_view GradReqName(GradReq req);

// grad_req as MXNet takes it: one request for every argument, one per argument in
// ListArguments order, or by argument name (names not given are null).
class GradReqs {
 public:
  GradReqs(GradReq all);                        // NOLINT: implicit, as MXNet's grad_req="write"
  GradReqs(std::vector<GradReq> per_argument);  // NOLINT
  GradReqs(std::map<std::string, GradReq> by_name);  // NOLINT
  // Literals: {{"fc1_weight", GradReq::kWrite}} by name, {GradReq::kNull, ...} per argument.
  GradReqs(std::initializer_list<std::pair<const std::string, GradReq>> by_name)
      : GradReqs(std::map<std::string, GradReq>(by_name)) {}
  GradReqs(std::initializer_list<GradReq> per_argument)
      : GradReqs(std::vector<GradReq>(per_argument)) {}
  // `all` for every argument except `null_names` (the data and label inputs), which are null.
  static GradReqs Except(GradReq all, std::vector<std::string> null_names);

  // One request per argument; UserError for a wrong count or a name that is not an argument.
  std::vector<GradReq> Resolve(const std::vector<std::string>& arguments) const;

 private:
  struct AllExcept {
    GradReq req;
    std::vector<std::string> null_names;
  };
  std::variant<AllExcept, std::vector<GradReq>, std::map<std::string, GradReq>> value_;
};

// Arrays given to Bind: by name, or by position. Default: none given.
class BindArrays {
 public:
  BindArrays() = default;
  BindArrays(std::map<std::string, Tensor> by_name);  // NOLINT: implicit, for {{"data", t}}
  BindArrays(std::vector<Tensor> by_position);        // NOLINT
  // Literals: {{"x", x}, {"w", w}} by name, {x, w} by position.
  BindArrays(std::initializer_list<std::pair<const std::string, Tensor>> by_name)
      : BindArrays(std::map<std::string, Tensor>(by_name)) {}
  BindArrays(std::initializer_list<Tensor> by_position)
      : BindArrays(std::vector<Tensor>(by_position)) {}

  bool empty() const;
  // One tensor per name (undefined where none was given); UserError naming `what` ("argument",
  // "gradient", "auxiliary state") for a wrong count or an unknown name.
  std::vector<Tensor> Resolve(const std::vector<std::string>& names, const char* what) const;

 private:
  std::variant<std::map<std::string, Tensor>, std::vector<Tensor>> value_;
};

}  // namespace kiln
