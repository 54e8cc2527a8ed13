// kiln/runtime/artifact.h - loading and running a compiled model (.kiln) with the runtime alone.
//
// A .kiln file (schema: runtime/schema/artifact.fbs; format: docs/artifacts.md) holds a plan of
// kernel calls on one arena, the kernels as an ELF relocatable object, the runtime-library ops
// by description, and the parameters, each aligned so that it is used in place. Loading one
// needs no compiler: the object is mapped by kiln's own loader (object_loader.h).
//
//   std::shared_ptr<const Artifact> model = Artifact::LoadFile("mlp.kiln");  // verified
//   ArtifactSession s(model);                       // arena + buffers; one per thread
//   s.SetInput(0, images.data());                   // no copy (or CopyInput)
//   s.Run();
//   const float* probs = static_cast<const float*>(s.output(0));
//
// Load verifies everything before anything runs: flatbuffers' verifier for the container, then
// the meaning (format version, every offset and index in range, every kernel present in the
// object, every library op valid, every parameter inside the file and aligned, and the CPU
// features the code needs present on this machine). Any problem is a UserError naming the file
// and what is wrong (a RuntimeError when the file cannot be read).
//
// An Artifact is immutable after loading and shared by any number of sessions, each on its own
// thread. Weights of the runtime-library products are packed once at load.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/runtime/dtype.h"
#include "kiln/runtime/error.h"
#include "kiln/runtime/library_ops.h"
#include "kiln/runtime/object_loader.h"
#include "kiln/runtime/plan.h"
#include "kiln/runtime/thread_pool.h"

namespace kiln {

// The format version this runtime reads and kiln-compile writes.
inline constexpr uint32_t kArtifactFormatVersion = 2;
// The alignment of every parameter value within the file.
inline constexpr int64_t kArtifactParamAlignment = 64;

// What the loader throws for a file that is not a sound artifact for this machine: truncated,
// corrupt, another format version, CPU features missing.
class ArtifactError : public UserError {
 public:
  using UserError::UserError;
};

// The checksum Model.object_checksum holds: FNV-1a (64-bit) over the kernel object's bytes.
uint64_t ArtifactObjectChecksum(const void* data, size_t size);

struct ArtifactTensor {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  int64_t external = 0;  // the plan external holding it
  int64_t bytes = 0;     // shape's element count times the dtype's size
};

class Artifact {
 public:
  // Maps the file read-only (parameters are used in place) and verifies it.
  static std::shared_ptr<const Artifact> LoadFile(const std::string& path);
  // Copies `size` bytes from `data` (the caller may free them after the call) and verifies them.
  // `what` names the model in messages.
  static std::shared_ptr<const Artifact> LoadMemory(const void* data, size_t size,
                                                    const std::string& what = "<memory>");
  ~Artifact();
  Artifact(const Artifact&) = delete;
  Artifact& operator=(const Artifact&) = delete;

  const std::vector<ArtifactTensor>& inputs() const { return inputs_; }
  const std::vector<ArtifactTensor>& outputs() const { return outputs_; }
  const std::vector<ArtifactTensor>& params() const { return params_; }
  // The input or output named `name`, or -1.
  int64_t FindInput(const std::string& name) const;
  int64_t FindOutput(const std::string& name) const;

  const Plan& plan() const { return plan_; }
  const std::string& kiln_version() const { return kiln_version_; }
  const std::string& target_cpu() const { return target_cpu_; }
  const std::vector<std::string>& cpu_features() const { return cpu_features_; }
  const std::string& what() const { return what_; }
  size_t file_bytes() const { return size_; }

 private:
  friend class ArtifactSession;
  struct Mapping;
  Artifact() = default;
  void Parse();

  std::string what_;
  std::unique_ptr<Mapping> mapping_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string kiln_version_, target_cpu_;
  std::vector<std::string> cpu_features_;
  std::vector<ArtifactTensor> inputs_, outputs_, params_;
  std::vector<const void*> param_data_;  // per parameter, in the file
  Plan plan_;
  std::unique_ptr<LoadedObject> object_;
  std::vector<std::unique_ptr<LibraryCallNode>> library_;  // per library op
  std::vector<int64_t> library_external_;                  // its context's external
  int64_t library_state_external_ = -1;
  std::map<const LibraryCallNode*, std::shared_ptr<void>> prepacked_;
};

// One set of buffers for running an artifact: the arena, the outputs and the inputs given by
// copy. Not shared between threads; any number of sessions may share one Artifact.
class ArtifactSession {
 public:
  // `pool` null runs every call on the calling thread; otherwise parallel kernels split over it.
  explicit ArtifactSession(std::shared_ptr<const Artifact> model, ThreadPool* pool = nullptr);

  // Input i from now on reads `data` in place (the caller keeps it alive and unchanged during
  // runs); it must hold inputs()[i].bytes bytes and be 64-byte aligned (UserError otherwise).
  void SetInput(size_t i, const void* data);
  // Copies `bytes` bytes (exactly inputs()[i].bytes) into the session's own buffer for input i.
  void CopyInput(size_t i, const void* data, size_t bytes);
  // Runs the plan; every input must be set (a UserError naming the first that is not).
  void Run();
  // Output k after a run (outputs()[k].bytes bytes), valid until the next run.
  const void* output(size_t k) const;
  const Artifact& model() const { return *model_; }

 private:
  std::shared_ptr<const Artifact> model_;
  ThreadPool* pool_;
  PlanExecutor executor_;
  std::shared_ptr<void> arena_;
  std::vector<std::shared_ptr<void>> owned_;         // output buffers
  std::vector<std::shared_ptr<void>> input_copies_;  // per input, once CopyInput is used
  std::vector<void*> externals_;
  std::vector<bool> input_set_;
  LibraryRunState library_;
};

}  // namespace kiln
