// artifact.cpp - loading, verifying and running .kiln files (kiln/runtime/artifact.h).
#include "kiln/runtime/artifact.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

#include "kiln/runtime/artifact_generated.h"
#include "kiln/runtime/cpu_features.h"
#include "kiln/runtime/error.h"

namespace kiln {

namespace {

constexpr int64_t kMaxSize = int64_t(1) << 42;  // no buffer of a sane model is near this

// FNV-1a over the kernel object: random corruption of machine code is caught before it runs.
uint64_t Fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

// flatbuffers' verifier (2.0) checks a vector's length field, not its elements' alignment: a
// damaged file can place a vector of 8-byte elements 4 bytes off. The buffer's base is page
// aligned, so the address tells.
template <class V>
bool Aligned(const V* v) {
  return v->size() == 0 || reinterpret_cast<uintptr_t>(v->Data()) % 8 == 0;
}

void* AlignedAlloc(size_t alignment, size_t bytes) {
  size_t rounded = (std::max<size_t>(bytes, 1) + alignment - 1) / alignment * alignment;
  void* p = std::aligned_alloc(alignment, rounded);
  if (!p) throw RuntimeError(StrCat("out of memory allocating ", bytes, " bytes"));
  return p;
}

std::shared_ptr<void> SharedAligned(size_t alignment, size_t bytes) {
  return std::shared_ptr<void>(AlignedAlloc(alignment, bytes), [](void* p) { std::free(p); });
}

}  // namespace

uint64_t ArtifactObjectChecksum(const void* data, size_t size) {
  return Fnv1a(static_cast<const uint8_t*>(data), size);
}

// The file's bytes: a read-only mapping of the file, or a copy of the caller's memory.
struct Artifact::Mapping {
  void* addr = nullptr;
  size_t length = 0;
  bool mapped = false;
  ~Mapping() {
    if (mapped)
      munmap(addr, length);
    else
      std::free(addr);
  }
};

Artifact::~Artifact() = default;

std::shared_ptr<const Artifact> Artifact::LoadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw RuntimeError(StrCat("cannot open ", path, ": ", std::strerror(errno)));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    throw RuntimeError(StrCat("cannot read ", path, ": not a regular file"));
  }
  std::shared_ptr<Artifact> a(new Artifact);
  a->what_ = path;
  a->mapping_ = std::make_unique<Mapping>();
  a->size_ = size_t(st.st_size);
  if (a->size_ > 0) {
    void* p = mmap(nullptr, a->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (p == MAP_FAILED) throw RuntimeError(StrCat("cannot map ", path, ": ", std::strerror(err)));
    a->mapping_->addr = p;
    a->mapping_->length = a->size_;
    a->mapping_->mapped = true;
  } else {
    close(fd);
  }
  a->data_ = static_cast<const uint8_t*>(a->mapping_->addr);
  a->Parse();
  return a;
}

std::shared_ptr<const Artifact> Artifact::LoadMemory(const void* data, size_t size,
                                                     const std::string& what) {
  std::shared_ptr<Artifact> a(new Artifact);
  a->what_ = what;
  a->mapping_ = std::make_unique<Mapping>();
  a->size_ = size;
  if (size > 0) {
    if (!data) throw UserError(StrCat(what, ": no data"));
    a->mapping_->addr = AlignedAlloc(4096, size);
    std::memcpy(a->mapping_->addr, data, size);
  }
  a->data_ = static_cast<const uint8_t*>(a->mapping_->addr);
  a->Parse();
  return a;
}

int64_t Artifact::FindInput(const std::string& name) const {
  for (size_t i = 0; i < inputs_.size(); ++i)
    if (inputs_[i].name == name) return int64_t(i);
  return -1;
}

int64_t Artifact::FindOutput(const std::string& name) const {
  for (size_t i = 0; i < outputs_.size(); ++i)
    if (outputs_[i].name == name) return int64_t(i);
  return -1;
}

void Artifact::Parse() {
  auto fail = [&](const std::string& what) -> void {
    throw ArtifactError(StrCat(what_, ": ", what));
  };
  if (size_ < 8 || !flatbuffers::BufferHasIdentifier(data_, fb::ModelIdentifier()))
    fail(size_ < 8 ? StrCat("not a kiln artifact (", size_, " bytes)")
                   : "not a kiln artifact (no \"KILN\" file identifier)");
  flatbuffers::Verifier verifier(data_, size_, 64, 10000000);
  if (!fb::VerifyModelBuffer(verifier))
    fail("corrupt artifact: the flatbuffers verifier rejects the file (truncated or damaged)");
  const fb::Model* m = fb::GetModel(data_);
  if (m->format_version() != kArtifactFormatVersion)
    fail(StrCat("artifact format version ", m->format_version(), "; this runtime reads version ",
                kArtifactFormatVersion, " (recompile the model with this kiln's kiln-compile)"));
  auto str = [](const flatbuffers::String* s) { return s ? s->str() : std::string(); };
  kiln_version_ = str(m->kiln_version());
  target_cpu_ = str(m->target_cpu());

  // The CPU features the code needs.
  std::string lacking;
  if (m->cpu_features())
    for (const flatbuffers::String* f : *m->cpu_features()) {
      std::string name = str(f);
      cpu_features_.push_back(name);
      const auto& known = CheckableCpuFeatures();
      if (std::find(known.begin(), known.end(), name) == known.end())
        fail(StrCat("the code needs CPU feature \"", name, "\", which this runtime cannot check"));
      if (!HostHasCpuFeature(name)) lacking += (lacking.empty() ? "" : ", ") + name;
    }
  if (!lacking.empty())
    fail(StrCat("compiled for ", target_cpu_, ": this machine lacks the CPU features ", lacking,
                " (recompile with kiln-compile --cpu for this machine)"));

  // The plan's frame.
  plan_.arena_size = m->arena_size();
  plan_.arena_alignment = m->arena_alignment();
  plan_.num_externals = m->num_externals();
  if (plan_.arena_size < 0 || plan_.arena_size > kMaxSize)
    fail(StrCat("arena size ", plan_.arena_size, " out of range"));
  if (plan_.arena_alignment < 1 || plan_.arena_alignment > 4096 ||
      (plan_.arena_alignment & (plan_.arena_alignment - 1)))
    fail(StrCat("arena alignment ", plan_.arena_alignment, " is not a power of 2 up to 4096"));
  if (plan_.num_externals < 0 || plan_.num_externals > (1 << 24))
    fail(StrCat("external count ", plan_.num_externals, " out of range"));
  // What each external is; each is given one meaning (outputs may name an input or parameter).
  enum Role : uint8_t { kNone, kInput, kParam, kOutput, kLibraryState, kLibraryNode };
  std::vector<Role> role(size_t(plan_.num_externals), kNone);
  auto claim = [&](int64_t ext, Role r, const std::string& who) {
    if (ext < 0 || ext >= plan_.num_externals)
      fail(StrCat(who, ": external ", ext, " outside [0, ", plan_.num_externals, ")"));
    Role& slot = role[size_t(ext)];
    if (slot != kNone && !(r == kOutput && (slot == kInput || slot == kParam || slot == kOutput)))
      fail(StrCat(who, ": external ", ext, " already has another use"));
    if (slot == kNone) slot = r;
  };

  // Inputs, outputs and parameters, and the bytes of each external that holds one.
  std::vector<int64_t> external_bytes(size_t(plan_.num_externals), 0);
  const flatbuffers::Vector<uint8_t>* param_data = m->param_data();
  auto read_tensors = [&](const auto* list, const char* kind, Role r,
                          std::vector<ArtifactTensor>& out) {
    if (!list) return;
    std::set<std::string> names;
    for (flatbuffers::uoffset_t i = 0; i < list->size(); ++i) {
      const fb::Tensor* t = list->Get(i);
      ArtifactTensor a;
      a.name = str(t->name());
      std::string who = StrCat(kind, " ", i, " (\"", a.name, "\")");
      if (a.name.empty() || !names.insert(a.name).second)
        fail(StrCat(who, ": empty or repeated name"));
      if (t->dtype() >= kNumDTypes) fail(StrCat(who, ": dtype code ", int(t->dtype()), " unknown"));
      a.dtype = DType(t->dtype());
      int64_t elements = 1;
      if (t->shape() && !Aligned(t->shape())) fail(StrCat(who, ": misaligned shape"));
      if (t->shape())
        for (int64_t d : *t->shape()) {
          if (d < 0 || (d > 0 && elements > kMaxSize / d)) fail(StrCat(who, ": bad shape"));
          a.shape.push_back(d);
          elements *= d;
        }
      a.bytes = elements * int64_t(DTypeSize(a.dtype));
      if (a.bytes > kMaxSize) fail(StrCat(who, ": too large"));
      a.external = t->external();
      claim(a.external, r, who);
      int64_t& held = external_bytes[size_t(a.external)];
      held = held == 0 ? a.bytes : std::min(held, a.bytes);
      if (r == kParam) {
        const uint64_t size = param_data ? param_data->size() : 0;
        if (t->bytes() != uint64_t(a.bytes) || t->offset() > size ||
            t->bytes() > size - t->offset())
          fail(StrCat(who, ": value bytes [", t->offset(), ", +", t->bytes(), ") outside the ",
                      size, " bytes of parameter data or not its shape's size"));
        const uint8_t* p = param_data->data() + t->offset();
        if (reinterpret_cast<uintptr_t>(p) % kArtifactParamAlignment != 0)
          fail(StrCat(who, ": value not aligned to ", kArtifactParamAlignment, " bytes"));
        param_data_.push_back(p);
      }
      out.push_back(std::move(a));
    }
  };
  read_tensors(m->inputs(), "input", kInput, inputs_);
  read_tensors(m->params(), "parameter", kParam, params_);
  read_tensors(m->outputs(), "output", kOutput, outputs_);
  if (outputs_.empty()) fail("the model has no outputs");

  // Runtime-library ops.
  library_state_external_ = m->library_state_external();
  if (m->library_ops() && m->library_ops()->size() > 0)
    claim(library_state_external_, kLibraryState, "the library state");
  if (m->library_ops())
    for (flatbuffers::uoffset_t i = 0; i < m->library_ops()->size(); ++i) {
      const fb::LibraryOp* op = m->library_ops()->Get(i);
      std::string who = StrCat("library op ", i);
      LibraryOpDesc d;
      d.kind = LibraryOpKind(op->kind());
      if ((op->ints() && !Aligned(op->ints())) || (op->reals() && !Aligned(op->reals())))
        fail(StrCat(who, ": misaligned numbers"));
      if (op->ints()) d.ints.assign(op->ints()->begin(), op->ints()->end());
      if (op->reals()) d.reals.assign(op->reals()->begin(), op->reals()->end());
      if (d.kind == LibraryOpKind::kBatchNormTrain)
        fail(StrCat(who,
                    ": training BatchNorm writes its moving statistics; artifacts hold "
                    "inference graphs"));
      auto node = std::make_unique<LibraryCallNode>();
      try {
        node->op = MakeLibraryOp(d);
      } catch (const Error& e) {
        fail(StrCat(who, ": ", e.what()));
      }
      if (op->threads() < 1 || op->threads() > 4096)
        fail(StrCat(who, ": thread count ", op->threads(), " out of range"));
      node->threads = op->threads();
      claim(op->external(), kLibraryNode, who);
      library_external_.push_back(op->external());
      library_.push_back(std::move(node));
    }

  // The kernels.
  if (m->object() && m->object()->size() > 0) {
    if (Fnv1a(m->object()->data(), m->object()->size()) != m->object_checksum())
      fail("corrupt artifact: the kernel object's checksum does not match");
    try {
      object_ = LoadedObject::Load(m->object()->data(), m->object()->size());
    } catch (const Error& e) {
      fail(StrCat("corrupt kernel object: ", e.what()));
    }
  }

  // The calls. Each library op belongs to one call (its row kernel reads that call's arguments).
  std::vector<bool> called(library_.size(), false);
  if (m->calls())
    for (flatbuffers::uoffset_t i = 0; i < m->calls()->size(); ++i) {
      const fb::Call* c = m->calls()->Get(i);
      PlanCall call;
      call.name = str(c->name());
      call.tasks = c->tasks();
      std::string who = StrCat("call ", i, " (", call.name, ")");
      if (c->args() && !Aligned(c->args())) fail(StrCat(who, ": misaligned arguments"));
      if (c->args())
        for (const fb::Arg* a : *c->args()) {
          std::string arg = StrCat(who, ": argument ", call.args.size());
          if (a->kind() > 1 || a->written() > 1 || a->bytes() < 0)
            fail(StrCat(arg, " is malformed"));
          PlanArg p = a->kind() == 1 ? PlanArg::External(a->index(), a->bytes())
                                     : PlanArg::Arena(a->offset(), a->bytes());
          if (a->written()) p = p.Written();
          if (a->kind() == 1) {
            if (a->index() < 0 || a->index() >= plan_.num_externals ||
                role[size_t(a->index())] == kNone)
              fail(StrCat(arg, " names external ", a->index(), ", which holds nothing"));
            const Role r = role[size_t(a->index())];
            if (r <= kOutput && a->bytes() > external_bytes[size_t(a->index())])
              fail(StrCat(arg, " touches ", a->bytes(), " bytes of a ",
                          external_bytes[size_t(a->index())], "-byte tensor"));
            if (a->written() && r != kOutput)
              fail(StrCat(arg, " writes external ", a->index(), ", which is not an output"));
          }
          call.args.push_back(p);
        }
      const std::string kernel = str(c->kernel());
      void* fn = nullptr;
      if (!kernel.empty()) {
        fn = object_ ? object_->Find(kernel) : nullptr;
        if (!fn) fail(StrCat(who, ": kernel \"", kernel, "\" is not in the kernel object"));
      }
      if (c->library() < 0) {
        if (!fn) fail(StrCat(who, ": neither a kernel nor a library op (", c->library(), ")"));
        call.fn = reinterpret_cast<KernelFn>(fn);
      } else {
        const int lib = c->library();
        if (size_t(lib) >= library_.size())
          fail(StrCat(who, ": library op ", lib, " of ", library_.size()));
        if (called[size_t(lib)]) fail(StrCat(who, ": library op ", lib, " has another call"));
        called[size_t(lib)] = true;
        LibraryCallNode& node = *library_[size_t(lib)];
        const LibraryOp& op = *node.op;
        const char* kind = LibraryOpKindName(LibraryOpKind(m->library_ops()->Get(lib)->kind()));
        // The op's state and tensors, its workspace, then (with a row kernel) the kernel's.
        const size_t ws = 2 + op.num_inputs() + op.num_outputs();
        if (call.args.size() < ws + 1 ||
            (fn ? call.args.size() == ws + 1 : call.args.size() > ws + 1) ||
            call.args[0].kind != PlanArg::Kind::kExternal ||
            call.args[0].index != library_state_external_ ||
            call.args[1].kind != PlanArg::Kind::kExternal ||
            call.args[1].index != library_external_[size_t(lib)] ||
            call.args[ws].kind != PlanArg::Kind::kArena)
          fail(StrCat(who, ": the arguments do not match library op ", lib, " (", kind, ")"));
        std::vector<int64_t> in_bytes, out_bytes;
        op.ArgBytes(in_bytes, out_bytes);
        in_bytes.insert(in_bytes.end(), out_bytes.begin(), out_bytes.end());
        for (size_t k = 2; k < ws; ++k) {
          const PlanArg& a = call.args[k];
          if ((a.kind == PlanArg::Kind::kExternal && role[size_t(a.index)] > kOutput) ||
              a.bytes != in_bytes[k - 2] || a.written != (k - 2 >= op.num_inputs()))
            fail(StrCat(who, ": argument ", k, " is not the library op's tensor"));
        }
        if (call.args[ws].bytes < op.WorkspaceBytes(node.threads))
          fail(StrCat(who, ": the workspace is smaller than the op needs"));
        if (fn) {
          if (!op.SupportsRowKernel())
            fail(StrCat(who, ": library op ", lib, " (", kind, ") runs no kernel on its rows"));
          node.row_kernel = reinterpret_cast<KernelFn>(fn);
        }
        call.fn = &LibraryCall;
      }
      plan_.calls.push_back(std::move(call));
    }
  std::vector<std::string> problems = VerifyPlan(plan_);
  if (!problems.empty()) {
    std::string all;
    for (const std::string& p : problems) all += (all.empty() ? "" : "; ") + p;
    fail("corrupt plan: " + all);
  }

  // Weights of library products that are parameters: packed once, shared by every session.
  std::vector<const void*> value_of(size_t(plan_.num_externals), nullptr);
  for (size_t p = 0; p < params_.size(); ++p)
    value_of[size_t(params_[p].external)] = param_data_[p];
  for (const PlanCall& call : plan_.calls) {
    if (call.fn != &LibraryCall) continue;
    const LibraryCallNode* node = nullptr;
    for (size_t l = 0; l < library_.size(); ++l)
      if (library_external_[l] == call.args[1].index) node = library_[l].get();
    if (!node || node->op->num_inputs() < 2 || prepacked_.count(node)) continue;
    const PlanArg& w = call.args[3];
    if (w.kind != PlanArg::Kind::kExternal || !value_of[size_t(w.index)]) continue;
    std::vector<const void*> in(node->op->num_inputs(), nullptr);
    in[1] = value_of[size_t(w.index)];
    if (std::shared_ptr<void> packed = node->op->Prepack(in.data(), nullptr))
      prepacked_.emplace(node, std::move(packed));
  }
}

// --- Sessions ---

ArtifactSession::ArtifactSession(std::shared_ptr<const Artifact> model, ThreadPool* pool)
    : model_(std::move(model)), pool_(pool), executor_(model_->plan_, pool) {
  const Artifact& a = *model_;
  arena_ = SharedAligned(size_t(a.plan_.arena_alignment), size_t(a.plan_.arena_size));
  externals_.assign(size_t(a.plan_.num_externals), nullptr);
  for (size_t p = 0; p < a.params_.size(); ++p)
    externals_[size_t(a.params_[p].external)] = const_cast<void*>(a.param_data_[p]);
  if (a.library_state_external_ >= 0 && a.library_state_external_ < a.plan_.num_externals)
    externals_[size_t(a.library_state_external_)] = &library_;
  for (size_t l = 0; l < a.library_.size(); ++l)
    externals_[size_t(a.library_external_[l])] = a.library_[l].get();
  library_.pool = pool;
  library_.shared = &a.prepacked_;
  input_set_.assign(a.inputs_.size(), false);
  input_copies_.resize(a.inputs_.size());
  std::set<int64_t> inputs_and_params;
  for (const ArtifactTensor& t : a.inputs_) inputs_and_params.insert(t.external);
  for (const ArtifactTensor& t : a.params_) inputs_and_params.insert(t.external);
  for (const ArtifactTensor& t : a.outputs_) {
    if (inputs_and_params.count(t.external) || externals_[size_t(t.external)]) continue;
    owned_.push_back(SharedAligned(size_t(kArtifactParamAlignment), size_t(t.bytes)));
    externals_[size_t(t.external)] = owned_.back().get();
  }
}

void ArtifactSession::SetInput(size_t i, const void* data) {
  const Artifact& a = *model_;
  if (i >= a.inputs_.size())
    throw UserError(
        StrCat(a.what_, ": input ", i, " out of range (the model has ", a.inputs_.size(), ")"));
  if (!data || reinterpret_cast<uintptr_t>(data) % kArtifactParamAlignment != 0)
    throw UserError(StrCat(a.what_, ": input \"", a.inputs_[i].name, "\" must be ",
                           data ? "64-byte aligned to be used in place (or copied)" : "non-null"));
  externals_[size_t(a.inputs_[i].external)] = const_cast<void*>(data);
  input_set_[i] = true;
}

void ArtifactSession::CopyInput(size_t i, const void* data, size_t bytes) {
  const Artifact& a = *model_;
  if (i >= a.inputs_.size())
    throw UserError(
        StrCat(a.what_, ": input ", i, " out of range (the model has ", a.inputs_.size(), ")"));
  const ArtifactTensor& t = a.inputs_[i];
  if (bytes != size_t(t.bytes) || (!data && bytes > 0))
    throw UserError(StrCat(a.what_, ": input \"", t.name, "\" takes ", t.bytes, " bytes (",
                           DTypeName(t.dtype), " ", t.shape.size(), "-d), given ", bytes));
  std::shared_ptr<void>& copy = input_copies_[i];
  if (!copy) copy = SharedAligned(size_t(kArtifactParamAlignment), bytes);
  if (bytes > 0) std::memcpy(copy.get(), data, bytes);
  externals_[size_t(t.external)] = copy.get();
  input_set_[i] = true;
}

void ArtifactSession::Run() {
  const Artifact& a = *model_;
  for (size_t i = 0; i < input_set_.size(); ++i)
    if (!input_set_[i])
      throw UserError(StrCat(a.what_, ": input \"", a.inputs_[i].name, "\" has no value"));
  executor_.Run(arena_.get(), externals_.data());
}

const void* ArtifactSession::output(size_t k) const {
  const Artifact& a = *model_;
  if (k >= a.outputs_.size())
    throw UserError(
        StrCat(a.what_, ": output ", k, " out of range (the model has ", a.outputs_.size(), ")"));
  return externals_[size_t(a.outputs_[k].external)];
}

}  // namespace kiln
