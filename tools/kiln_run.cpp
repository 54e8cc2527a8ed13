// kiln-run: run a .kiln artifact on NumPy inputs with the runtime alone (no compiler linked).
//
//   kiln-run mlp.kiln --input data=images.npy --output-dir out/   # writes out/NAME.npy
//   kiln-run mlp.kiln --input data=images.npy --bench 200 --threads 1
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/runtime/artifact.h"
#include "kiln/runtime/error.h"
#include "kiln/runtime/npy.h"
#include "kiln/runtime/tensor.h"

namespace kiln {
namespace {

constexpr const char* kUsage =
    "usage: kiln-run MODEL.kiln --input NAME=FILE.npy... [--output-dir DIR] [--bench N]\n"
    "                [--threads T]\n"
    "  --input NAME=FILE.npy  the value of input NAME (NumPy's .npy; its dtype and shape must be\n"
    "                         the model's); every input needs one\n"
    "  --output-dir DIR       where each output is written as NAME.npy (default: .)\n"
    "  --bench N              run N more times and print the median, minimum and 99th\n"
    "                         percentile latency\n"
    "  --threads T            threads for parallel kernels (default: KILN_NUM_THREADS, else the\n"
    "                         CPU count)\n"
    "  --list                 print the model's inputs and outputs and exit\n";

struct Usage : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string Describe(const ArtifactTensor& t) {
  std::string s = StrCat(DTypeName(t.dtype), "(");
  for (size_t i = 0; i < t.shape.size(); ++i) s += StrCat(i ? ", " : "", t.shape[i]);
  return s + ")";
}

// An output's name as a file name: anything but letters, digits, '.', '-' and '_' becomes '_'.
std::string FileName(const std::string& name) {
  std::string out;
  for (char c : name)
    out +=
        (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') ? c : '_';
  if (out.empty() || out[0] == '.') out = "_" + out;
  return out + ".npy";
}

int Main(int argc, char** argv) {
  std::string model_path, output_dir = ".";
  std::vector<std::pair<std::string, std::string>> inputs;
  int64_t bench = 0;
  int threads = -1;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> std::string {
      std::string f = flag;
      if (a.size() > f.size() && a.compare(0, f.size() + 1, f + "=") == 0)
        return a.substr(f.size() + 1);
      if (i + 1 >= argc) throw Usage(f + " needs a value");
      return argv[++i];
    };
    auto is = [&](const char* flag) {
      std::string f = flag;
      return a == f || a.compare(0, f.size() + 1, f + "=") == 0;
    };
    auto count = [&](const std::string& flag, const std::string& text) {
      char* end = nullptr;
      long long n = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end || n < 0 || n > 100000000)
        throw Usage(StrCat(flag, " ", text, ": expected a count"));
      return int64_t(n);
    };
    if (is("--input")) {
      std::string v = value("--input");
      size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
        throw Usage("--input " + v + ": expected NAME=FILE.npy");
      inputs.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else if (is("--output-dir")) {
      output_dir = value("--output-dir");
    } else if (is("--bench")) {
      bench = count("--bench", value("--bench"));
    } else if (is("--threads")) {
      threads = int(count("--threads", value("--threads")));
      if (threads < 1 || threads > 1024) throw Usage("--threads: expected 1 to 1024");
    } else if (a == "--list") {
      list = true;
    } else if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      throw Usage("unknown option " + a);
    } else if (model_path.empty()) {
      model_path = a;
    } else {
      throw Usage("more than one model given (" + model_path + ", " + a + ")");
    }
  }
  if (model_path.empty()) throw Usage("no model given");

  std::shared_ptr<const Artifact> model = Artifact::LoadFile(model_path);
  if (list) {
    for (const ArtifactTensor& t : model->inputs())
      std::cout << "input  " << t.name << " " << Describe(t) << "\n";
    for (const ArtifactTensor& t : model->outputs())
      std::cout << "output " << t.name << " " << Describe(t) << "\n";
    return 0;
  }
  std::unique_ptr<ThreadPool> own_pool;
  ThreadPool* pool = &ThreadPool::Global();
  if (threads == 1) pool = nullptr;
  if (threads > 1) pool = (own_pool = std::make_unique<ThreadPool>(threads)).get();
  ArtifactSession session(model, pool);

  // Inputs: every one given once, with the model's dtype and shape.
  std::vector<Tensor> values(model->inputs().size());
  for (const auto& [name, path] : inputs) {
    int64_t i = model->FindInput(name);
    if (i < 0) {
      std::string all;
      for (const ArtifactTensor& t : model->inputs()) all += " " + t.name;
      throw UserError(StrCat("--input ", name, ": the model has no input \"", name,
                             "\" (its inputs:", all.empty() ? " none" : all, ")"));
    }
    if (values[size_t(i)].defined()) throw UserError("--input " + name + " given twice");
    Tensor t = ReadNpy(path);
    const ArtifactTensor& want = model->inputs()[size_t(i)];
    if (t.dtype() != want.dtype || t.shape() != want.shape)
      throw UserError(StrCat(path, ": input \"", name, "\" must be ", Describe(want),
                             "; the file holds ", t.TypeString()));
    session.SetInput(size_t(i), t.raw_data());  // tensors are 64-byte aligned
    values[size_t(i)] = std::move(t);
  }
  std::string missing;
  for (size_t i = 0; i < values.size(); ++i)
    if (!values[i].defined())
      missing += StrCat(missing.empty() ? "" : ", ", model->inputs()[i].name, " ",
                        Describe(model->inputs()[i]));
  if (!missing.empty())
    throw UserError("no value for the input(s) " + missing + " (--input NAME=FILE.npy)");

  session.Run();
  for (size_t k = 0; k < model->outputs().size(); ++k) {
    const ArtifactTensor& t = model->outputs()[k];
    Tensor out = Tensor::View(const_cast<void*>(session.output(k)), t.shape, t.dtype);
    std::string path = output_dir + "/" + FileName(t.name);
    WriteNpy(path, out);
    std::cerr << "kiln-run: wrote " << path << " " << Describe(t) << "\n";
  }

  if (bench > 0) {
    std::vector<double> ms;
    for (int64_t r = 0; r < std::max<int64_t>(1, bench / 10); ++r) session.Run();  // warm-up
    for (int64_t r = 0; r < bench; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      session.Run();
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    auto pct = [&](double p) {
      return ms[std::min(ms.size() - 1, size_t(p * double(ms.size() - 1) + 0.5))];
    };
    std::printf("kiln-run: %lld runs, %d thread(s): median %.4f ms, min %.4f ms, p99 %.4f ms\n",
                static_cast<long long>(bench), pool ? pool->num_threads() : 1, pct(0.5), ms.front(),
                pct(0.99));
  }
  return 0;
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) {
  try {
    return kiln::Main(argc, argv);
  } catch (const kiln::Usage& e) {
    std::cerr << "kiln-run: error: " << e.what() << "\n" << kiln::kUsage;
    return 2;
  } catch (const kiln::UserError& e) {
    std::cerr << "kiln-run: error: " << e.what() << "\n";
  } catch (const kiln::Error& e) {
    std::cerr << "kiln-run: " << e.kind() << ": " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "kiln-run: error: " << e.what() << "\n";
  }
  return 1;
}
