// tools/tool_util.h - what kiln's command-line tools share: option parsing, graph loading, and
// the main() wrapper that turns errors into messages and exit codes.
//
// Exit codes: 0 success; 1 an error in the input (the message names what is wrong, printed as
// `<tool>: error: <message>`); 2 a bad command line (the message, then the usage text).
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/ir/graph.h"
#include "kiln/passes/infer.h"

namespace kiln::tools {

// A bad command line: exit code 2 with the usage text.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Walks argv. Options take their value as the next argument or after '=' (`--shape=x=1x2`).
class ArgReader {
 public:
  ArgReader(int argc, char** argv) : args_(argv + 1, argv + argc) {}
  bool done() const { return pos_ >= args_.size(); }
  const std::string& peek() const { return args_[pos_]; }
  std::string next() { return args_[pos_++]; }
  // True (and `*value` set, the argument consumed) if the current argument is `flag` with a
  // value; UsageError if the value is missing.
  bool Option(std::string_view flag, std::string* value);
  // True (and consumed) if the current argument is exactly `flag`.
  bool Flag(std::string_view flag);

 private:
  std::vector<std::string> args_;
  size_t pos_ = 0;
};

// "data=100x784" -> ("data", (100, 784)); "?" or "-1" is an unknown dim, "x=()" a scalar.
std::pair<std::string, Shape> ParseShapeOption(std::string_view text);
// "data=float16" -> ("data", float16).
std::pair<std::string, DType> ParseDTypeOption(std::string_view text);

// Reads a file ("-": standard input); RuntimeError when it cannot be read.
std::string ReadInput(const std::string& path);

// Reads the argument both tools share, when no tool-specific option matched it: --shape and
// --dtype (into `infer`), or the one input file (into `file`); any other "-x" is a UsageError.
void ReadCommonArg(ArgReader& args, InferOptions& infer, std::string& file);
// A graph from a file: an ONNX model if the name ends in ".onnx" (its dynamic input dims fixed
// by the shapes in `infer`, i.e. --shape), MXNet JSON if it ends in ".json" (or, for "-", the
// text starts with '{'), kiln text IR otherwise.
Graph LoadGraph(const std::string& path, const InferOptions& infer = {});

// Runs `body`, mapping exceptions to messages on stderr and exit codes (see above). Never lets
// an exception escape.
int RunTool(const char* tool, const char* usage, const std::function<int()>& body);

}  // namespace kiln::tools
