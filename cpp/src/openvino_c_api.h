// The part of OpenVINO's C API (libopenvino_c, in the `openvino` wheel) smrt uses, declared here
// because smrt loads it with dlopen at run time instead of linking it, as it loads libtensorflow.
// These declarations match openvino/c/ov_common.h, ov_core.h, ov_compiled_model.h,
// ov_infer_request.h, ov_tensor.h, ov_shape.h, ov_dimension.h, ov_partial_shape.h and ov_node.h
// (the C API is ABI-stable).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

extern "C" {
struct ov_core;
struct ov_model;
struct ov_compiled_model;
struct ov_infer_request;
struct ov_tensor;
struct ov_output_const_port;
typedef int ov_status_e;  // 0: OK; negative: an error (ov_common.h)
typedef struct {
  const char* buildNumber;
  const char* description;
} ov_version_t;
typedef struct {
  int64_t rank;
  int64_t* dims;
} ov_shape_t;
typedef struct {
  int64_t min;
  int64_t max;  // -1: no upper bound
} ov_dimension_t;
typedef struct {
  ov_dimension_t rank;   // min != max: any rank (dims is then null)
  ov_dimension_t* dims;  // rank.min of them
} ov_partial_shape_t;
}

namespace smrt::ov {

// ov_status_e values (ov_common.h) smrt tells apart.
constexpr ov_status_e kOk = 0;
constexpr ov_status_e kGeneralError = -1;     // an ov::Exception: its message is the last error
constexpr ov_status_e kNotImplemented = -2;   // an ov::NotImplemented: likewise
constexpr ov_status_e kRequestBusy = -8;      // an ov::Busy: likewise
constexpr ov_status_e kResultNotReady = -9;
constexpr ov_status_e kInferCancelled = -13;  // an ov::Cancelled: likewise
constexpr ov_status_e kUnknownException = -17;  // any other exception; a message of its own

// ov_element_type_e values (ov_common.h), the ones smrt maps to DTypes.
enum ElementType : int {
  kDynamic = 0, kBoolean = 1, kBF16 = 2, kF16 = 3, kF32 = 4, kF64 = 5, kI8 = 7, kI16 = 8,
  kI32 = 9, kI64 = 10, kU8 = 16, kU16 = 17, kU32 = 18, kU64 = 19, kString = 23,
};

// Every C API function smrt calls, resolved by dlsym once when the library loads.
struct Api {
#define SMRT_OV_FUNCTIONS(X)                                                                      \
  X(const char*, ov_get_last_err_msg, (void))                                                     \
  X(const char*, ov_get_error_info, (ov_status_e))                                                \
  X(void, ov_free, (const char*))                                                                 \
  X(ov_status_e, ov_get_openvino_version, (ov_version_t*))                                        \
  X(void, ov_version_free, (ov_version_t*))                                                       \
  X(ov_status_e, ov_core_create, (ov_core**))                                                     \
  X(void, ov_core_free, (ov_core*))                                                               \
  X(ov_status_e, ov_core_read_model, (const ov_core*, const char*, const char*, ov_model**))      \
  X(ov_status_e, ov_core_compile_model,                                                           \
    (const ov_core*, const ov_model*, const char*, size_t, ov_compiled_model**, ...))             \
  X(void, ov_model_free, (ov_model*))                                                             \
  X(ov_status_e, ov_compiled_model_inputs_size, (const ov_compiled_model*, size_t*))              \
  X(ov_status_e, ov_compiled_model_outputs_size, (const ov_compiled_model*, size_t*))             \
  X(ov_status_e, ov_compiled_model_input_by_index,                                                \
    (const ov_compiled_model*, size_t, ov_output_const_port**))                                   \
  X(ov_status_e, ov_compiled_model_output_by_index,                                               \
    (const ov_compiled_model*, size_t, ov_output_const_port**))                                   \
  X(ov_status_e, ov_compiled_model_create_infer_request, (const ov_compiled_model*, ov_infer_request**)) \
  X(void, ov_compiled_model_free, (ov_compiled_model*))                                           \
  X(ov_status_e, ov_port_get_any_name, (const ov_output_const_port*, char**))                     \
  X(ov_status_e, ov_port_get_element_type, (const ov_output_const_port*, int*))                   \
  X(ov_status_e, ov_port_get_partial_shape, (const ov_output_const_port*, ov_partial_shape_t*))   \
  X(void, ov_partial_shape_free, (ov_partial_shape_t*))                                           \
  X(void, ov_output_const_port_free, (ov_output_const_port*))                                     \
  X(ov_status_e, ov_infer_request_set_input_tensor_by_index, (ov_infer_request*, size_t, const ov_tensor*)) \
  X(ov_status_e, ov_infer_request_get_output_tensor_by_index,                                     \
    (const ov_infer_request*, size_t, ov_tensor**))                                               \
  X(ov_status_e, ov_infer_request_infer, (ov_infer_request*))                                     \
  X(ov_status_e, ov_infer_request_start_async, (ov_infer_request*))                               \
  X(ov_status_e, ov_infer_request_wait_for, (ov_infer_request*, int64_t))                         \
  X(ov_status_e, ov_infer_request_wait, (ov_infer_request*))                                      \
  X(ov_status_e, ov_infer_request_cancel, (ov_infer_request*))                                    \
  X(void, ov_infer_request_free, (ov_infer_request*))                                             \
  X(ov_status_e, ov_tensor_create_from_host_ptr, (int, ov_shape_t, void*, ov_tensor**))           \
  X(ov_status_e, ov_tensor_get_shape, (const ov_tensor*, ov_shape_t*))                            \
  X(ov_status_e, ov_tensor_get_element_type, (const ov_tensor*, int*))                            \
  X(ov_status_e, ov_tensor_get_byte_size, (const ov_tensor*, size_t*))                            \
  X(ov_status_e, ov_tensor_data, (const ov_tensor*, void**))                                      \
  X(void, ov_tensor_free, (ov_tensor*))                                                           \
  X(ov_status_e, ov_shape_free, (ov_shape_t*))
#define SMRT_DECLARE_POINTER(ret, name, args) ret(*name) args = nullptr;
  SMRT_OV_FUNCTIONS(SMRT_DECLARE_POINTER)
#undef SMRT_DECLARE_POINTER
};

// The loaded library's functions; loads it (runtime::ensure_openvino_loaded) on first use.
const Api& api();

}  // namespace smrt::ov
