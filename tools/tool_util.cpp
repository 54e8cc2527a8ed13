// tool_util.cpp - option parsing, graph loading and error reporting for the tools.
#include "tool_util.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <new>
#include <sstream>

#include "kiln/frontend/onnx.h"
#include "kiln/ir/mxnet_json.h"
#include "kiln/ir/text.h"

namespace kiln::tools {

bool ArgReader::Option(std::string_view flag, std::string* value) {
  if (done()) return false;
  const std::string& arg = args_[pos_];
  if (arg == flag) {
    if (pos_ + 1 >= args_.size()) throw UsageError(StrCat(flag, " needs a value"));
    *value = args_[pos_ + 1];
    pos_ += 2;
    return true;
  }
  if (arg.size() > flag.size() && arg.starts_with(flag) && arg[flag.size()] == '=') {
    *value = arg.substr(flag.size() + 1);
    ++pos_;
    return true;
  }
  return false;
}

bool ArgReader::Flag(std::string_view flag) {
  if (done() || args_[pos_] != flag) return false;
  ++pos_;
  return true;
}

namespace {

std::pair<std::string, std::string> SplitAssignment(std::string_view text, const char* option,
                                                    const char* example) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0)
    throw UsageError(StrCat(option, " \"", text, "\" is not NAME=VALUE (e.g. ", example, ")"));
  return {std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
}

}  // namespace

std::pair<std::string, Shape> ParseShapeOption(std::string_view text) {
  auto [name, dims_text] = SplitAssignment(text, "--shape", "data=100x784");
  if (dims_text == "()") return {name, Shape::Scalar()};
  std::vector<int64_t> dims;
  size_t start = 0;
  while (true) {
    size_t x = dims_text.find('x', start);
    std::string item = dims_text.substr(start, x == std::string::npos ? x : x - start);
    int64_t d = 0;
    if (item == "?" || item == "-1") {
      d = Shape::kUnknownDim;
    } else {
      size_t used = 0;
      try {
        d = std::stoll(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (item.empty() || used != item.size() || d < 0)
        throw UsageError(StrCat("--shape ", text, ": \"", item,
                                "\" is not a dimension (use D1xD2x..., e.g. data=100x784)"));
    }
    dims.push_back(d);
    if (x == std::string::npos) break;
    start = x + 1;
  }
  return {name, Shape(dims)};
}

std::pair<std::string, DType> ParseDTypeOption(std::string_view text) {
  auto [name, type_text] = SplitAssignment(text, "--dtype", "data=float16");
  std::optional<DType> t = ParseDType(type_text);
  if (!t) {
    std::string names;
    for (DType d : kAllDTypes) names += (names.empty() ? "" : ", ") + std::string(DTypeName(d));
    throw UsageError(
        StrCat("--dtype ", text, ": \"", type_text, "\" is not a dtype (dtypes: ", names, ")"));
  }
  return {name, *t};
}

std::string ReadInput(const std::string& path) {
  if (path == "-") {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (std::cin.bad()) throw RuntimeError("cannot read standard input");
    return text;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw RuntimeError(StrCat("cannot open \"", path, "\""));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw RuntimeError(StrCat("cannot read \"", path, "\""));
  return text.str();
}

Graph LoadGraph(const std::string& path, const InferOptions& infer) {
  if (path.ends_with(".onnx")) {
    // ONNX models are binary and need the --shape values at import (static shapes); the
    // parameters' values are not needed by the tools, only their shapes and dtypes.
    OnnxImportOptions options;
    for (const auto& [name, shape] : infer.shapes) {
      if (!shape.rank_known()) continue;
      options.input_shapes[name] = shape.dims();
    }
    return ImportOnnxFile(path, options).graph;
  }
  std::string text = ReadInput(path);
  bool json = path.ends_with(".json");
  if (path == "-") {
    size_t first = text.find_first_not_of(" \t\r\n");
    json = first != std::string::npos && text[first] == '{';
  }
  std::string source = path == "-" ? "<stdin>" : path;
  return json ? LoadMXNetJson(text, source) : ParseGraph(text, source);
}

int RunTool(const char* tool, const char* usage, const std::function<int()>& body) {
  try {
    return body();
  } catch (const UsageError& e) {
    std::cerr << tool << ": error: " << e.what() << "\n" << usage;
    return 2;
  } catch (const UserError& e) {
    std::cerr << tool << ": error: " << e.what() << "\n";
  } catch (const Error& e) {
    // Not the user's fault: say what kind of failure it is.
    std::cerr << tool << ": error: " << e.kind() << ": " << e.what() << "\n";
  } catch (const std::bad_alloc&) {
    std::cerr << tool << ": error: out of memory\n";
  } catch (const std::exception& e) {
    std::cerr << tool << ": error: internal error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << tool << ": error: internal error: unknown exception\n";
  }
  return 1;
}

void ReadCommonArg(ArgReader& args, InferOptions& infer, std::string& file) {
  std::string value;
  if (args.Option("--shape", &value)) {
    auto [name, shape] = ParseShapeOption(value);
    infer.shapes[name] = shape;
  } else if (args.Option("--dtype", &value)) {
    auto [name, dtype] = ParseDTypeOption(value);
    infer.dtypes[name] = dtype;
  } else if (args.peek().starts_with("-") && args.peek() != "-") {
    throw UsageError(StrCat("unknown option ", args.peek()));
  } else {
    if (!file.empty())
      throw UsageError(StrCat("more than one input file: ", file, ", ", args.peek()));
    file = args.next();
  }
}

}  // namespace kiln::tools
