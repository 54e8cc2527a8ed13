// pass_manager.cpp - the pass registry and the pass manager.
#include "kiln/passes/pass_manager.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>

#include "kiln/ir/text.h"
#include "kiln/ir/verifier.h"

namespace kiln {

PassRegistry& PassRegistry::Global() {
  static PassRegistry* registry = [] {
    auto* r = new PassRegistry();
    RegisterBuiltinPasses(*r);
    return r;
  }();
  return *registry;
}

const PassInfo& PassRegistry::Register(std::string name, std::string description,
                                       PassFunction run) {
  KILN_INTERNAL_CHECK(!name.empty(), "a pass needs a name");
  KILN_INTERNAL_CHECK(Find(name) == nullptr, "pass \"", name, "\" registered twice");
  KILN_INTERNAL_CHECK(run != nullptr, "pass \"", name, "\" has no function");
  return passes_.emplace_back(PassInfo{std::move(name), std::move(description), std::move(run)});
}

const PassInfo* PassRegistry::Find(std::string_view name) const {
  for (const PassInfo& p : passes_)
    if (p.name == name) return &p;
  return nullptr;
}

const PassInfo& PassRegistry::Get(std::string_view name) const {
  if (const PassInfo* p = Find(name)) return *p;
  std::string known;
  for (const PassInfo* p : List()) known += (known.empty() ? "" : ", ") + p->name;
  throw UserError(
      StrCat("unknown pass \"", name, "\" (passes: ", known.empty() ? "none" : known, ")"));
}

std::vector<const PassInfo*> PassRegistry::List() const {
  std::vector<const PassInfo*> out;
  for (const PassInfo& p : passes_) out.push_back(&p);
  std::sort(out.begin(), out.end(),
            [](const PassInfo* a, const PassInfo* b) { return a->name < b->name; });
  return out;
}

std::string PassRegistry::Describe() const {
  size_t width = 0;
  for (const PassInfo& p : passes_) width = std::max(width, p.name.size());
  std::string out;
  for (const PassInfo* p : List())
    out +=
        StrCat("  ", p->name, std::string(width - p->name.size() + 2, ' '), p->description, "\n");
  return out;
}

bool PassManagerOptions::DefaultVerifyEach() {
  const char* env = std::getenv("KILN_VERIFY_EACH");
  return env != nullptr && std::string_view(env) == "1";
}

PassManager::PassManager(const std::vector<std::string>& pipeline, const PassRegistry& registry) {
  for (const std::string& name : pipeline) pipeline_.push_back(&registry.Get(name));
}

Graph PassManager::Run(Graph g, const PassContext& ctx) {
  for (const std::string& name : options_.print_after) {
    bool found = std::any_of(pipeline_.begin(), pipeline_.end(),
                             [&](const PassInfo* p) { return p->name == name; });
    if (!found) {
      std::string names;
      for (const PassInfo* p : pipeline_) names += (names.empty() ? "" : ", ") + p->name;
      throw UserError(StrCat("print-after names pass \"", name,
                             "\", which is not in the pipeline (", names.empty() ? "empty" : names,
                             ")"));
    }
  }
  std::ostream& dump = options_.dump ? *options_.dump : std::cerr;
  timings_.clear();
  // Checking the input first tells a broken loader apart from a broken pass.
  if (options_.verify_each) VerifyGraphOrThrow(g, "before the first pass");
  for (const PassInfo* pass : pipeline_) {
    auto start = std::chrono::steady_clock::now();
    g = pass->run(std::move(g), ctx);
    auto elapsed = std::chrono::steady_clock::now() - start;
    timings_.push_back({pass->name, std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed)});
    if (options_.verify_each) VerifyGraphOrThrow(g, StrCat("after pass ", pass->name));
    if (options_.print_after_all || options_.print_after.count(pass->name)) {
      // A `//` line keeps the dump parseable text IR.
      dump << "// *** IR after " << pass->name << " ***\n" << PrintGraph(g);
      dump.flush();
    }
  }
  return g;
}

std::string PassManager::TimingReport() const {
  double total_ms = 0;
  for (const PassTiming& t : timings_) total_ms += double(t.time.count()) / 1e6;
  size_t width = 4;
  for (const PassTiming& t : timings_) width = std::max(width, t.pass.size());
  std::string out = "===-- kiln pass timing --===\n  time (ms)   share  pass\n";
  char line[64];
  for (const PassTiming& t : timings_) {
    double ms = double(t.time.count()) / 1e6;
    std::snprintf(line, sizeof line, "  %9.3f  %5.1f%%  ", ms,
                  total_ms > 0 ? 100.0 * ms / total_ms : 0.0);
    out += line + t.pass + "\n";
  }
  std::snprintf(line, sizeof line, "  %9.3f  100.0%%  ", total_ms);
  out += StrCat(line, "total (", timings_.size(), " pass", timings_.size() == 1 ? "" : "es", ")\n");
  return out;
}

std::vector<std::string> SplitPipeline(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) throw UserError(StrCat("empty pass name in pipeline \"", text, "\""));
    out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::vector<std::string> OptPipeline(int level) {
  if (level < 0 || level > 3)
    throw UserError(StrCat("optimisation level ", level, " does not exist (levels: 0 to 3)"));
  std::vector<std::string> pipeline = {"infer-shape", "infer-type"};
  if (level >= 1) pipeline.push_back("dce");
  if (level >= 2) pipeline.push_back("cse");
  if (level >= 3)
    pipeline.insert(pipeline.end(), {"simplify", "simplify-inference", "constant-fold", "fuse"});
  return pipeline;
}

}  // namespace kiln
