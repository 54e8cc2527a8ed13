// bind_args.cpp - resolving gradient requests and bound arrays against a symbol's names.
#include "kiln/frontend/bind_args.h"

#include <algorithm>
#include <set>

namespace kiln {

namespace {

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "(none)" : out;
}

// UserError for every key of `keys` that is not in `names`: a misspelt name would otherwise
// bind nothing and surface much later as a missing array or an untrained weight.
template <class Map>
void CheckNames(const Map& keys, const std::vector<std::string>& names, const char* what) {
  std::vector<std::string> unknown;
  for (const auto& [key, value] : keys)
    if (std::find(names.begin(), names.end(), key) == names.end()) unknown.push_back(key);
  if (!unknown.empty())
    throw UserError(
        StrCat("no ", what, " named ", Join(unknown), "; the ", what, "s are ", Join(names)));
}

}  // namespace

std::string_view GradReqName(GradReq req) {
  switch (req) {
    case GradReq::kNull:
      return "null";
    case GradReq::kWrite:
      return "write";
    case GradReq::kAdd:
      return "add";
  }
  return "?";
}

GradReqs::GradReqs(GradReq all) : value_(AllExcept{all, {}}) {}
GradReqs::GradReqs(std::vector<GradReq> per_argument) : value_(std::move(per_argument)) {}
GradReqs::GradReqs(std::map<std::string, GradReq> by_name) : value_(std::move(by_name)) {}

GradReqs GradReqs::Except(GradReq all, std::vector<std::string> null_names) {
  GradReqs r(all);
  r.value_ = AllExcept{all, std::move(null_names)};
  return r;
}

std::vector<GradReq> GradReqs::Resolve(const std::vector<std::string>& arguments) const {
  std::vector<GradReq> out(arguments.size(), GradReq::kNull);
  if (const auto* all = std::get_if<AllExcept>(&value_)) {
    std::map<std::string, int> excluded;
    for (const auto& n : all->null_names) excluded[n] = 0;
    CheckNames(excluded, arguments, "argument");
    for (size_t i = 0; i < arguments.size(); ++i)
      out[i] = excluded.count(arguments[i]) ? GradReq::kNull : all->req;
  } else if (const auto* list = std::get_if<std::vector<GradReq>>(&value_)) {
    if (list->size() != arguments.size())
      throw UserError(StrCat("grad_req lists ", list->size(), " requests for ", arguments.size(),
                             " arguments (", Join(arguments), ")"));
    out = *list;
  } else {
    const auto& by_name = std::get<std::map<std::string, GradReq>>(value_);
    CheckNames(by_name, arguments, "argument");
    // MXNet's rule: an argument the map does not name gets no gradient.
    for (size_t i = 0; i < arguments.size(); ++i) {
      auto it = by_name.find(arguments[i]);
      if (it != by_name.end()) out[i] = it->second;
    }
  }
  return out;
}

BindArrays::BindArrays(std::map<std::string, Tensor> by_name) : value_(std::move(by_name)) {}
BindArrays::BindArrays(std::vector<Tensor> by_position) : value_(std::move(by_position)) {}

bool BindArrays::empty() const {
  return std::visit([](const auto& v) { return v.empty(); }, value_);
}

std::vector<Tensor> BindArrays::Resolve(const std::vector<std::string>& names,
                                        const char* what) const {
  if (const auto* list = std::get_if<std::vector<Tensor>>(&value_)) {
    // An empty list means "none given", whatever the count.
    if (list->empty()) return std::vector<Tensor>(names.size());
    if (list->size() != names.size())
      throw UserError(StrCat(list->size(), " ", what, " arrays given by position for ",
                             names.size(), " ", what, "s (", Join(names), ")"));
    return *list;
  }
  const auto& by_name = std::get<std::map<std::string, Tensor>>(value_);
  CheckNames(by_name, names, what);
  std::vector<Tensor> out(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    auto it = by_name.find(names[i]);
    if (it != by_name.end()) out[i] = it->second;
  }
  return out;
}

}  // namespace kiln
