// onnx_conformance.cpp - runs the ONNX backend node tests on kiln's reference interpreter.
//
//   onnx_conformance --data DIR [--expected FILE] [--filter TEXT] [--verbose] [--list-passing]
//
// DIR is what `onnx.backend.test.cmd_tools generate-data -o DIR` wrote (generate_data.py);
// every case under DIR/node whose graph inputs and outputs are tensors is imported with
// ImportOnnxFile, run with Interpret on each test_data_set_*, and compared with the expected
// outputs:
//   - shapes and dtypes must be equal;
//   - integers and bool exactly; floating point |got - want| <= atol + rtol * |want| with
//     rtol = 1e-3, atol = 1e-5 (float16/bfloat16: rtol = atol = 1e-2), nan matching nan and
//     infinities matching exactly.
// Inputs whose values the importer needs statically (the node tests pass Reshape's shape,
// Slice's starts and the like as graph inputs) are given to it from the data set and the
// import retried ("frozen" inputs, OnnxImportOptions::input_values); when the value is computed
// from inputs, every integer input is frozen. The summary counts these cases.
// A case is "unsupported" when the importer or the tensor reader raises UnsupportedError (an
// operator, attribute form or dtype kiln lacks), "failed" for any other error or mismatch.
// The program prints a table by operator (cases run, passed, failed, unsupported), the summary
// for the operators issue 7 lists, and exits with 1 when a case in the expected-pass file
// (one case name per line, '#' comments) does not pass. --list-passing prints the passing cases
// (to grow the expected-pass list).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "kiln/frontend/onnx.h"
#include "kiln/ir/interpreter.h"
#include "onnx/onnx_pb.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

// The operators issue 7 asks for; a case counts toward the goal when all its ops are here.
const std::set<std::string> kListed = {"Gemm",
                                       "MatMul",
                                       "Conv",
                                       "ConvTranspose",
                                       "BatchNormalization",
                                       "Relu",
                                       "LeakyRelu",
                                       "PRelu",
                                       "Sigmoid",
                                       "Tanh",
                                       "Elu",
                                       "Selu",
                                       "HardSigmoid",
                                       "HardSwish",
                                       "Clip",
                                       "Softplus",
                                       "MaxPool",
                                       "AveragePool",
                                       "GlobalAveragePool",
                                       "GlobalMaxPool",
                                       "Add",
                                       "Sub",
                                       "Mul",
                                       "Div",
                                       "Pow",
                                       "Sqrt",
                                       "Exp",
                                       "Log",
                                       "Neg",
                                       "Abs",
                                       "Reciprocal",
                                       "Floor",
                                       "Ceil",
                                       "Min",
                                       "Max",
                                       "Sum",
                                       "Mean",
                                       "Reshape",
                                       "Flatten",
                                       "Transpose",
                                       "Squeeze",
                                       "Unsqueeze",
                                       "Concat",
                                       "Split",
                                       "Slice",
                                       "Gather",
                                       "Pad",
                                       "Expand",
                                       "Tile",
                                       "Shape",
                                       "Size",
                                       "Constant",
                                       "ConstantOfShape",
                                       "Identity",
                                       "Cast",
                                       "ReduceSum",
                                       "ReduceMean",
                                       "ReduceMax",
                                       "ReduceMin",
                                       "ReduceProd",
                                       "ReduceL2",
                                       "ArgMax",
                                       "ArgMin",
                                       "Softmax",
                                       "LogSoftmax",
                                       "LayerNormalization",
                                       "InstanceNormalization",
                                       "Dropout",
                                       "Where",
                                       "Equal",
                                       "Less",
                                       "Greater",
                                       "Not",
                                       "And",
                                       "Or",
                                       "Erf",
                                       "Resize",
                                       "Upsample",
                                       "Einsum",
                                       "LSTM",
                                       "GRU"};

enum class Outcome { kPassed, kFailed, kUnsupported };

struct Case {
  std::string name, op;
  bool listed = false;
  Outcome outcome = Outcome::kFailed;
  std::string message;
  std::vector<std::string> frozen;  // inputs given to the importer as constants
};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// "" when `got` matches `want`, else what differs.
std::string Compare(const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape())
    return StrCat("shape ", ShapeString(got.shape()), " but ", ShapeString(want.shape()),
                  " expected");
  if (got.dtype() != want.dtype())
    return StrCat("dtype ", DTypeName(got.dtype()), " but ", DTypeName(want.dtype()), " expected");
  bool half = want.dtype() == DType::kFloat16 || want.dtype() == DType::kBFloat16;
  double rtol = half ? 1e-2 : 1e-3, atol = half ? 1e-2 : 1e-5;
  bool exact = !IsFloatingPoint(want.dtype());
  for (int64_t i = 0; i < want.size(); ++i) {
    double g = got.At(i), w = want.At(i);
    bool ok;
    if (exact)
      ok = g == w;
    else if (std::isnan(w))
      ok = std::isnan(g);
    else if (std::isinf(w))
      ok = g == w;
    else
      ok = std::fabs(g - w) <= atol + rtol * std::fabs(w);
    if (!ok) return StrCat("element ", i, " is ", g, " but ", w, " expected");
  }
  return "";
}

bool IsTensorValue(const ::onnx::ValueInfoProto& v) {
  return v.type().has_tensor_type();
}

// Imports the case's model; an input whose value the importer needs at import time (the node
// tests feed Reshape's shape, Slice's starts, Resize's sizes ... as graph inputs) is given its
// value from the data set and the import retried. Such cases are counted as "frozen".
OnnxModel ImportWithFrozenInputs(const fs::path& model, const std::map<std::string, Tensor>& in,
                                 Case& c) {
  OnnxImportOptions opt;
  for (int attempt = 0;; ++attempt) {
    try {
      return ImportOnnxFile(model.string(), opt);
    } catch (const UserError& e) {
      std::string msg = e.what();
      const std::string known = "must be known when the model is imported";
      size_t at = msg.find(known);
      size_t q1 = msg.rfind("\"", at), q0 = q1 == std::string::npos ? q1 : msg.rfind("\"", q1 - 1);
      if (at == std::string::npos || q0 == std::string::npos || attempt > 16) throw;
      std::string name = msg.substr(q0 + 1, q1 - q0 - 1);
      auto it = in.find(name);
      if (it != in.end() && !opt.input_values.count(name)) {
        opt.input_values[name] = it->second;
        c.frozen.push_back(name);
        continue;
      }
      // The value is computed from inputs (a size feeding Range, say): freeze every integer
      // input, the ones that carry sizes and axes.
      bool more = false;
      for (const auto& [n, t] : in)
        if (!IsFloatingPoint(t.dtype()) && !opt.input_values.count(n)) {
          opt.input_values[n] = t;
          c.frozen.push_back(n);
          more = true;
        }
      if (!more) throw;
    }
  }
}

void RunCase(const fs::path& dir, const std::vector<std::string>& runtime_inputs, Case& c) {
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().starts_with("test_data_set_"))
      sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  if (sets.empty()) throw UserError("no test_data_set_* directory");
  for (const auto& set : sets) {
    std::map<std::string, Tensor> inputs;
    for (size_t k = 0; k < runtime_inputs.size(); ++k) {
      fs::path p = set / StrCat("input_", k, ".pb");
      if (fs::exists(p)) inputs[runtime_inputs[k]] = ReadOnnxTensorFile(p.string());
    }
    c.frozen.clear();
    OnnxModel m = ImportWithFrozenInputs(dir / "model.onnx", inputs, c);
    std::map<std::string, Tensor> vars = m.params;
    for (const std::string& name : m.input_names) {
      if (!inputs.count(name)) throw UserError(StrCat(set.string(), ": no value for ", name));
      vars[name] = inputs.at(name);
    }
    std::vector<Tensor> out = Interpret(m.graph, vars);
    for (size_t k = 0; k < m.output_names.size(); ++k) {
      fs::path p = set / StrCat("output_", k, ".pb");
      if (!fs::exists(p)) continue;
      Tensor want = ReadOnnxTensorFile(p.string());
      std::string diff = Compare(out.at(k), want);
      if (!diff.empty())
        throw UserError(StrCat(set.filename().string(), " output ", k, " (\"", m.output_names[k],
                               "\"): ", diff));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string data, expected_file, filter;
  bool verbose = false, list_passing = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--data" && i + 1 < argc) {
      data = argv[++i];
    } else if (a == "--expected" && i + 1 < argc) {
      expected_file = argv[++i];
    } else if (a == "--filter" && i + 1 < argc) {
      filter = argv[++i];
    } else if (a == "--verbose") {
      verbose = true;
    } else if (a == "--list-passing") {
      list_passing = true;
    } else {
      std::cerr << "usage: onnx_conformance --data DIR [--expected FILE] [--filter TEXT] "
                   "[--verbose] [--list-passing]\n";
      return 2;
    }
  }
  fs::path root = fs::path(data) / "node";
  if (data.empty() || !fs::is_directory(root)) {
    std::cerr << "onnx_conformance: error: no ONNX node tests under \"" << root.string()
              << "\"; generate them with tests/onnx/generate_data.py\n";
    return 1;
  }
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory()) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());

  std::vector<Case> cases;
  int skipped = 0;
  for (const auto& dir : dirs) {
    Case c;
    c.name = dir.filename().string();
    if (!filter.empty() && c.name.find(filter) == std::string::npos) continue;
    ::onnx::ModelProto model;
    if (!model.ParseFromString(ReadFile(dir / "model.onnx"))) {
      std::cerr << c.name << ": model.onnx does not parse\n";
      return 1;
    }
    const auto& g = model.graph();
    bool tensors = std::all_of(g.input().begin(), g.input().end(), IsTensorValue) &&
                   std::all_of(g.output().begin(), g.output().end(), IsTensorValue);
    if (!tensors) {
      ++skipped;
      continue;
    }
    std::set<std::string> inits, types;
    std::vector<std::string> runtime_inputs;
    for (const auto& t : g.initializer()) inits.insert(t.name());
    for (const auto& in : g.input())
      if (!inits.count(in.name())) runtime_inputs.push_back(in.name());
    for (const auto& n : g.node()) types.insert(n.op_type());
    c.listed = std::all_of(types.begin(), types.end(),
                           [](const std::string& t) { return kListed.count(t) > 0; });
    if (types.size() == 1)
      c.op = *types.begin();
    else
      c.op = g.node_size() > 0 ? g.node(g.node_size() - 1).op_type() + " (composite)" : "(none)";
    try {
      RunCase(dir, runtime_inputs, c);
      c.outcome = Outcome::kPassed;
    } catch (const UnsupportedError& e) {
      c.outcome = Outcome::kUnsupported;
      c.message = e.what();
    } catch (const std::exception& e) {
      c.outcome = Outcome::kFailed;
      c.message = e.what();
    }
    if (verbose && c.outcome != Outcome::kPassed)
      std::cout << (c.outcome == Outcome::kFailed ? "FAIL " : "UNSUP ") << c.name << ": "
                << c.message << "\n";
    cases.push_back(std::move(c));
  }

  struct Row {
    int run = 0, passed = 0, failed = 0, unsupported = 0;
  };
  std::map<std::string, Row> rows;
  Row all, listed;
  for (const Case& c : cases) {
    for (Row* r : {&rows[c.op], &all, c.listed ? &listed : nullptr}) {
      if (!r) continue;
      ++r->run;
      r->passed += c.outcome == Outcome::kPassed;
      r->failed += c.outcome == Outcome::kFailed;
      r->unsupported += c.outcome == Outcome::kUnsupported;
    }
  }
  std::cout << std::left << std::setw(34) << "operator" << std::right << std::setw(6) << "run"
            << std::setw(8) << "passed" << std::setw(8) << "failed" << std::setw(8) << "unsup"
            << "\n";
  auto print = [](const std::string& name, const Row& r) {
    std::cout << std::left << std::setw(34) << name << std::right << std::setw(6) << r.run
              << std::setw(8) << r.passed << std::setw(8) << r.failed << std::setw(8)
              << r.unsupported << "\n";
  };
  for (const auto& [op, r] : rows) print(op, r);
  print("all cases with tensor inputs/outputs", all);
  print("cases of the issue's operators", listed);
  if (listed.run > 0)
    std::cout << "issue-7 operators: " << listed.passed << " of " << listed.run << " pass ("
              << std::fixed << std::setprecision(1) << 100.0 * listed.passed / listed.run << "%); "
              << skipped << " cases with non-tensor inputs or outputs not run\n";

  int frozen = 0;
  for (const Case& c : cases)
    frozen += c.listed && c.outcome == Outcome::kPassed && !c.frozen.empty();
  std::cout << "of those, " << frozen
            << " pass with inputs frozen as import-time constants (shapes, axes, pads, sizes "
               "fed as graph inputs)\n";

  if (list_passing)
    for (const Case& c : cases)
      if (c.outcome == Outcome::kPassed) std::cout << "PASSING " << c.name << "\n";

  int regressions = 0;
  if (!expected_file.empty()) {
    std::ifstream in(expected_file);
    if (!in) {
      std::cerr << "onnx_conformance: error: cannot read " << expected_file << "\n";
      return 1;
    }
    std::map<std::string, const Case*> by_name;
    for (const Case& c : cases) by_name[c.name] = &c;
    std::set<std::string> expected;
    std::string line;
    while (std::getline(in, line)) {
      line.erase(0, line.find_first_not_of(" \t"));
      line.erase(line.find_last_not_of(" \t\r") + 1);
      if (line.empty() || line[0] == '#') continue;
      expected.insert(line);
      if (!filter.empty() && line.find(filter) == std::string::npos) continue;
      auto it = by_name.find(line);
      if (it == by_name.end()) {
        std::cout << "REGRESSION " << line << ": expected to pass but was not run (missing)\n";
        ++regressions;
      } else if (it->second->outcome != Outcome::kPassed) {
        std::cout << "REGRESSION " << line << ": " << it->second->message << "\n";
        ++regressions;
      }
    }
    int fresh = 0;
    for (const Case& c : cases)
      if (c.outcome == Outcome::kPassed && !expected.count(c.name)) ++fresh;
    if (fresh > 0)
      std::cout << fresh << " passing cases are not in " << expected_file
                << " yet (add them: --list-passing)\n";
    std::cout << regressions << " of " << expected.size() << " expected passes failed\n";
  }
  return regressions == 0 ? 0 : 1;
}
