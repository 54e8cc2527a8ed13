// c_api.cpp - the C API of kiln/runtime.h over Artifact and ArtifactSession.
#include "kiln/runtime.h"

#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "kiln/runtime/artifact.h"
#include "kiln/runtime/error.h"

struct kiln_model {
  std::shared_ptr<const kiln::Artifact> artifact;
  std::vector<std::string> dtype_names;  // per input, then per output
};

struct kiln_session {
  std::unique_ptr<kiln::ThreadPool> own_pool;
  std::unique_ptr<kiln::ArtifactSession> session;
};

namespace {

thread_local std::string last_error;

kiln_status Fail(kiln_status status, const std::string& message) {
  last_error = message;
  return status;
}

// Runs `f`, turning every exception into a status and this thread's message.
template <class F>
kiln_status Guard(F&& f) {
  try {
    last_error.clear();
    return f();
  } catch (const kiln::ArtifactError& e) {
    return Fail(KILN_ERROR_MODEL, e.what());
  } catch (const kiln::UserError& e) {
    return Fail(KILN_ERROR_INVALID, e.what());
  } catch (const kiln::RuntimeError& e) {
    return Fail(KILN_ERROR_SYSTEM, e.what());
  } catch (const kiln::Error& e) {
    return Fail(KILN_ERROR_INTERNAL, e.what());
  } catch (const std::bad_alloc&) {
    return Fail(KILN_ERROR_SYSTEM, "out of memory");
  } catch (const std::exception& e) {
    return Fail(KILN_ERROR_INTERNAL, e.what());
  }
}

kiln_status Null(const char* what) {
  return Fail(KILN_ERROR_INVALID, std::string(what) + " is NULL");
}

void Describe(const kiln_model* m, const kiln::ArtifactTensor& t, const std::string& dtype_name,
              kiln_tensor_info* info) {
  info->name = t.name.c_str();
  kiln::DLPackType d = kiln::ToDLPackType(t.dtype);
  info->dtype = DLDataType{d.code, d.bits, 1};
  info->dtype_name = dtype_name.c_str();
  info->ndim = int32_t(t.shape.size());
  info->shape = t.shape.data();
  info->bytes = size_t(t.bytes);
  (void)m;
}

kiln_status Wrap(std::shared_ptr<const kiln::Artifact> artifact, kiln_model** model) {
  auto m = std::make_unique<kiln_model>();
  for (const auto& t : artifact->inputs()) m->dtype_names.emplace_back(kiln::DTypeName(t.dtype));
  for (const auto& t : artifact->outputs()) m->dtype_names.emplace_back(kiln::DTypeName(t.dtype));
  m->artifact = std::move(artifact);
  *model = m.release();
  return KILN_OK;
}

kiln_status CheckIndex(size_t index, size_t count, const char* kind) {
  if (index < count) return KILN_OK;
  return Fail(KILN_ERROR_INVALID,
              kiln::StrCat(kind, " ", index, " out of range (the model has ", count, ")"));
}

}  // namespace

extern "C" {

const char* kiln_last_error(void) {
  return last_error.c_str();
}

kiln_status kiln_model_load_file(const char* path, kiln_model** model) {
  if (!path) return Null("path");
  if (!model) return Null("model");
  return Guard([&] { return Wrap(kiln::Artifact::LoadFile(path), model); });
}

kiln_status kiln_model_load_memory(const void* data, size_t size, kiln_model** model) {
  if (!data && size > 0) return Null("data");
  if (!model) return Null("model");
  return Guard([&] { return Wrap(kiln::Artifact::LoadMemory(data, size), model); });
}

kiln_status kiln_model_free(kiln_model* model) {
  delete model;
  return KILN_OK;
}

kiln_status kiln_model_num_inputs(const kiln_model* model, size_t* count) {
  if (!model || !count) return Null(model ? "count" : "model");
  *count = model->artifact->inputs().size();
  return KILN_OK;
}

kiln_status kiln_model_num_outputs(const kiln_model* model, size_t* count) {
  if (!model || !count) return Null(model ? "count" : "model");
  *count = model->artifact->outputs().size();
  return KILN_OK;
}

kiln_status kiln_model_input_info(const kiln_model* model, size_t index, kiln_tensor_info* info) {
  if (!model || !info) return Null(model ? "info" : "model");
  const auto& inputs = model->artifact->inputs();
  if (kiln_status s = CheckIndex(index, inputs.size(), "input"); s != KILN_OK) return s;
  Describe(model, inputs[index], model->dtype_names[index], info);
  return KILN_OK;
}

kiln_status kiln_model_output_info(const kiln_model* model, size_t index, kiln_tensor_info* info) {
  if (!model || !info) return Null(model ? "info" : "model");
  const auto& outputs = model->artifact->outputs();
  if (kiln_status s = CheckIndex(index, outputs.size(), "output"); s != KILN_OK) return s;
  Describe(model, outputs[index], model->dtype_names[model->artifact->inputs().size() + index],
           info);
  return KILN_OK;
}

kiln_status kiln_model_find_input(const kiln_model* model, const char* name, size_t* index) {
  if (!model || !name || !index) return Null(!model ? "model" : !name ? "name" : "index");
  int64_t i = model->artifact->FindInput(name);
  if (i < 0)
    return Fail(KILN_ERROR_INVALID, kiln::StrCat("the model has no input \"", name, "\"", [&] {
                  std::string all;
                  for (const auto& t : model->artifact->inputs()) all += " " + t.name;
                  return " (inputs:" + all + ")";
                }()));
  *index = size_t(i);
  return KILN_OK;
}

kiln_status kiln_model_find_output(const kiln_model* model, const char* name, size_t* index) {
  if (!model || !name || !index) return Null(!model ? "model" : !name ? "name" : "index");
  int64_t i = model->artifact->FindOutput(name);
  if (i < 0)
    return Fail(KILN_ERROR_INVALID, kiln::StrCat("the model has no output \"", name, "\""));
  *index = size_t(i);
  return KILN_OK;
}

kiln_status kiln_session_create(kiln_model* model, int num_threads, kiln_session** session) {
  if (!model || !session) return Null(model ? "session" : "model");
  if (num_threads < 0 || num_threads > 1024)
    return Fail(KILN_ERROR_INVALID, kiln::StrCat("thread count ", num_threads, " out of range"));
  return Guard([&] {
    auto s = std::make_unique<kiln_session>();
    kiln::ThreadPool* pool = nullptr;
    if (num_threads == 0) {
      pool = &kiln::ThreadPool::Global();
    } else if (num_threads > 1) {
      s->own_pool = std::make_unique<kiln::ThreadPool>(num_threads);
      pool = s->own_pool.get();
    }
    s->session = std::make_unique<kiln::ArtifactSession>(model->artifact, pool);
    *session = s.release();
    return KILN_OK;
  });
}

kiln_status kiln_session_free(kiln_session* session) {
  delete session;
  return KILN_OK;
}

kiln_status kiln_session_set_input(kiln_session* session, size_t index, const void* data,
                                   size_t bytes) {
  if (!session) return Null("session");
  return Guard([&] {
    session->session->CopyInput(index, data, bytes);
    return KILN_OK;
  });
}

kiln_status kiln_session_set_input_dlpack(kiln_session* session, size_t index,
                                          const DLTensor* tensor) {
  if (!session || !tensor) return Null(session ? "tensor" : "session");
  return Guard([&] {
    const kiln::Artifact& a = session->session->model();
    if (kiln_status s = CheckIndex(index, a.inputs().size(), "input"); s != KILN_OK) return s;
    const kiln::ArtifactTensor& t = a.inputs()[index];
    const std::string who = kiln::StrCat("input \"", t.name, "\"");
    if (tensor->device.device_type != kDLCPU)
      return Fail(KILN_ERROR_INVALID, who + ": the DLPack tensor is not on the CPU");
    kiln::DLPackType d = kiln::ToDLPackType(t.dtype);
    if (tensor->dtype.code != d.code || tensor->dtype.bits != d.bits || tensor->dtype.lanes != 1)
      return Fail(
          KILN_ERROR_INVALID,
          kiln::StrCat(who, ": the DLPack tensor's dtype (code ", int(tensor->dtype.code), ", ",
                       int(tensor->dtype.bits), " bits) is not ", kiln::DTypeName(t.dtype)));
    bool same = size_t(tensor->ndim) == t.shape.size() && (tensor->ndim == 0 || tensor->shape);
    for (size_t i = 0; same && i < t.shape.size(); ++i) same = tensor->shape[i] == t.shape[i];
    if (!same) {
      std::string given;
      for (int32_t i = 0; tensor->shape && i < tensor->ndim; ++i)
        given += kiln::StrCat(i ? "x" : "", tensor->shape[i]);
      std::string want;
      for (size_t i = 0; i < t.shape.size(); ++i) want += kiln::StrCat(i ? "x" : "", t.shape[i]);
      return Fail(KILN_ERROR_INVALID,
                  kiln::StrCat(who, ": the DLPack tensor's shape (", given, ") is not ", want));
    }
    if (tensor->strides) {
      int64_t expect = 1;
      for (int32_t i = tensor->ndim - 1; i >= 0; --i) {
        if (t.shape[size_t(i)] != 1 && tensor->strides[i] != expect)
          return Fail(KILN_ERROR_INVALID, who + ": the DLPack tensor is not compact row-major");
        expect *= t.shape[size_t(i)];
      }
    }
    session->session->SetInput(index, static_cast<const char*>(tensor->data) + tensor->byte_offset);
    return KILN_OK;
  });
}

kiln_status kiln_session_run(kiln_session* session) {
  if (!session) return Null("session");
  return Guard([&] {
    session->session->Run();
    return KILN_OK;
  });
}

kiln_status kiln_session_get_output(kiln_session* session, size_t index, const void** data,
                                    size_t* bytes) {
  if (!session || !data) return Null(session ? "data" : "session");
  return Guard([&] {
    const kiln::Artifact& a = session->session->model();
    if (kiln_status s = CheckIndex(index, a.outputs().size(), "output"); s != KILN_OK) return s;
    *data = session->session->output(index);
    if (bytes) *bytes = size_t(a.outputs()[index].bytes);
    return KILN_OK;
  });
}

}  // extern "C"
