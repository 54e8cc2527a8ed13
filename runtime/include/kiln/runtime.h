/* kiln/runtime.h - the C API of kiln's runtime: load a compiled model (.kiln) and run it.
 *
 * libkiln_rt.so exports these functions and nothing else; it needs no compiler, no LLVM and no
 * protobuf. Every call but kiln_last_error returns a status; on failure kiln_last_error() returns
 * the message (per thread, valid until the thread's next kiln call).
 *
 *   kiln_model* model;  kiln_session* s;
 *   if (kiln_model_load_file("mlp.kiln", &model) != KILN_OK) { puts(kiln_last_error()); ... }
 *   kiln_session_create(model, 1, &s);                 // one per thread
 *   kiln_session_set_input(s, 0, images, images_bytes);  // a copy (or _set_input_dlpack)
 *   kiln_session_run(s);
 *   const void* probs; size_t bytes;
 *   kiln_session_get_output(s, 0, &probs, &bytes);
 *   kiln_session_free(s);  kiln_model_free(model);
 *
 * A model is immutable once loaded and may be shared by sessions on any number of threads; a
 * session (its arena and buffers) belongs to one thread at a time.
 */
#ifndef KILN_RUNTIME_H_
#define KILN_RUNTIME_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* DLPack's tensor description (https://github.com/dmlc/dlpack), declared here when dlpack.h is
 * not included first; the layout is DLPack's. */
#ifndef DLPACK_VERSION
typedef enum { kDLCPU = 1, kDLCUDA = 2 } DLDeviceType;
typedef struct {
  int32_t device_type; /* DLDeviceType */
  int32_t device_id;
} DLDevice;
typedef enum { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4, kDLBool = 6 } DLDataTypeCode;
typedef struct {
  uint8_t code; /* DLDataTypeCode */
  uint8_t bits;
  uint16_t lanes;
} DLDataType;
typedef struct {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides; /* NULL: compact row-major */
  uint64_t byte_offset;
} DLTensor;
#endif

typedef enum {
  KILN_OK = 0,
  KILN_ERROR_INVALID = 1,  /* a bad argument, input, name, shape or dtype */
  KILN_ERROR_MODEL = 2,    /* a truncated, corrupt, wrong-version or wrong-CPU artifact */
  KILN_ERROR_SYSTEM = 3,   /* a file that cannot be read, memory exhausted */
  KILN_ERROR_INTERNAL = 4, /* a bug in kiln */
} kiln_status;

typedef struct kiln_model kiln_model;
typedef struct kiln_session kiln_session;

typedef struct {
  const char* name;
  DLDataType dtype;
  const char* dtype_name; /* "float32", ... */
  int32_t ndim;
  const int64_t* shape;
  size_t bytes;
} kiln_tensor_info;

/* The message of this thread's last failed call ("" when none). */
const char* kiln_last_error(void);

/* Loads and verifies a model; `*model` is set only on success. The file is mapped read-only
 * and its parameters are used in place; load_memory copies the bytes (free them after). */
kiln_status kiln_model_load_file(const char* path, kiln_model** model);
kiln_status kiln_model_load_memory(const void* data, size_t size, kiln_model** model);
kiln_status kiln_model_free(kiln_model* model); /* after its sessions; NULL is ignored */

kiln_status kiln_model_num_inputs(const kiln_model* model, size_t* count);
kiln_status kiln_model_num_outputs(const kiln_model* model, size_t* count);
/* The strings and shape stay valid as long as the model. */
kiln_status kiln_model_input_info(const kiln_model* model, size_t index, kiln_tensor_info* info);
kiln_status kiln_model_output_info(const kiln_model* model, size_t index, kiln_tensor_info* info);
kiln_status kiln_model_find_input(const kiln_model* model, const char* name, size_t* index);
kiln_status kiln_model_find_output(const kiln_model* model, const char* name, size_t* index);

/* A session: `num_threads` 1 runs on the calling thread, > 1 on a pool of its own, 0 on the
 * process-wide pool (KILN_NUM_THREADS, else the CPU count). */
kiln_status kiln_session_create(kiln_model* model, int num_threads, kiln_session** session);
kiln_status kiln_session_free(kiln_session* session); /* NULL is ignored */

/* Input `index` by copy (`bytes` must be its exact size). */
kiln_status kiln_session_set_input(kiln_session* session, size_t index, const void* data,
                                   size_t bytes);
/* Input `index` read in place from a CPU DLPack tensor of its dtype and shape, compact
 * row-major, data + byte_offset 64-byte aligned; the tensor must stay alive and unchanged
 * while the session runs. */
kiln_status kiln_session_set_input_dlpack(kiln_session* session, size_t index,
                                          const DLTensor* tensor);
kiln_status kiln_session_run(kiln_session* session);
/* Output `index` of the last run, owned by the session and valid until its next run. */
kiln_status kiln_session_get_output(kiln_session* session, size_t index, const void** data,
                                    size_t* bytes);

#ifdef __cplusplus
}
#endif

#endif /* KILN_RUNTIME_H_ */
