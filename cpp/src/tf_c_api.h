// The part of libtensorflow's C API smrt uses, declared here because smrt loads the library
// with dlopen at run time instead of linking it (see third_party/README.md). The C API is
// ABI-stable; these declarations match tensorflow/c/c_api.h, tf_tensor.h and tf_tstring.h.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

extern "C" {
struct TF_Status;
struct TF_Tensor;
struct TF_Graph;
struct TF_Operation;
struct TF_Session;
struct TF_SessionOptions;
struct TF_OperationDescription;
struct TF_Library;  // an op library loaded by TF_LoadLibrary; never unloaded
// Serialized protos in and out (RunOptions, RunMetadata...): caller-owned bytes.
struct TF_Buffer {
  const void* data;
  size_t length;
  void (*data_deallocator)(void* data, size_t length);
};
struct TF_Output {
  TF_Operation* oper;
  int index;
};
// TensorFlow's tstring: 24 bytes, read and written only through the TF_String* functions.
struct TF_TString {
  alignas(8) unsigned char raw[24];
};
}

namespace smrt::tf {

// Every C API function smrt calls, resolved by dlsym once when the library loads.
struct Api {
#define SMRT_TF_FUNCTIONS(X)                                                                      \
  X(const char*, TF_Version, (void))                                                              \
  X(TF_Status*, TF_NewStatus, (void))                                                             \
  X(void, TF_DeleteStatus, (TF_Status*))                                                          \
  X(int, TF_GetCode, (const TF_Status*))                                                          \
  X(const char*, TF_Message, (const TF_Status*))                                                  \
  X(TF_Tensor*, TF_NewTensor,                                                                     \
    (int, const int64_t*, int, void*, size_t, void (*)(void*, size_t, void*), void*))             \
  X(TF_Tensor*, TF_AllocateTensor, (int, const int64_t*, int, size_t))                            \
  X(void, TF_DeleteTensor, (TF_Tensor*))                                                          \
  X(TF_Tensor*, TF_TensorMaybeMove, (TF_Tensor*))                                                 \
  X(int, TF_TensorType, (const TF_Tensor*))                                                       \
  X(int, TF_NumDims, (const TF_Tensor*))                                                          \
  X(int64_t, TF_Dim, (const TF_Tensor*, int))                                                     \
  X(size_t, TF_TensorByteSize, (const TF_Tensor*))                                                \
  X(void*, TF_TensorData, (const TF_Tensor*))                                                     \
  X(int64_t, TF_TensorElementCount, (const TF_Tensor*))                                           \
  X(void, TF_StringInit, (TF_TString*))                                                           \
  X(void, TF_StringCopy, (TF_TString*, const char*, size_t))                                      \
  X(const char*, TF_StringGetDataPointer, (const TF_TString*))                                    \
  X(size_t, TF_StringGetSize, (const TF_TString*))                                                \
  X(void, TF_StringDealloc, (TF_TString*))                                                        \
  X(TF_SessionOptions*, TF_NewSessionOptions, (void))                                             \
  X(void, TF_SetConfig, (TF_SessionOptions*, const void*, size_t, TF_Status*))                    \
  X(void, TF_DeleteSessionOptions, (TF_SessionOptions*))                                          \
  X(TF_Graph*, TF_NewGraph, (void))                                                               \
  X(void, TF_DeleteGraph, (TF_Graph*))                                                            \
  X(TF_Operation*, TF_GraphOperationByName, (TF_Graph*, const char*))                             \
  X(int, TF_OperationNumOutputs, (TF_Operation*))                                                 \
  X(int, TF_OperationOutputType, (TF_Output))                                                     \
  X(TF_OperationDescription*, TF_NewOperation, (TF_Graph*, const char*, const char*))             \
  X(void, TF_AddInput, (TF_OperationDescription*, TF_Output))                                     \
  X(void, TF_AddInputList, (TF_OperationDescription*, const TF_Output*, int))                     \
  X(void, TF_SetAttrType, (TF_OperationDescription*, const char*, int))                           \
  X(void, TF_SetAttrTypeList, (TF_OperationDescription*, const char*, const int*, int))           \
  X(void, TF_SetAttrFuncName, (TF_OperationDescription*, const char*, const char*, size_t))       \
  X(void, TF_SetAttrTensor, (TF_OperationDescription*, const char*, TF_Tensor*, TF_Status*))      \
  X(TF_Operation*, TF_FinishOperation, (TF_OperationDescription*, TF_Status*))                    \
  X(TF_Session*, TF_LoadSessionFromSavedModel,                                                    \
    (const TF_SessionOptions*, const TF_Buffer*, const char*, const char* const*, int, TF_Graph*, \
     TF_Buffer*, TF_Status*))                                                                     \
  X(void, TF_CloseSession, (TF_Session*, TF_Status*))                                             \
  X(void, TF_DeleteSession, (TF_Session*, TF_Status*))                                            \
  X(void, TF_SessionRun,                                                                          \
    (TF_Session*, const TF_Buffer*, const TF_Output*, TF_Tensor* const*, int, const TF_Output*,   \
     TF_Tensor**, int, const TF_Operation* const*, int, TF_Buffer*, TF_Status*))                 \
  X(TF_Library*, TF_LoadLibrary, (const char*, TF_Status*))                                       \
  X(TF_Buffer, TF_GetOpList, (TF_Library*))                                                       \
  X(TF_Buffer*, TF_GetAllOpList, (void))                                                          \
  X(void, TF_GraphGetOpDef, (TF_Graph*, const char*, TF_Buffer*, TF_Status*))                     \
  X(void, TF_DeleteBuffer, (TF_Buffer*))
#define SMRT_DECLARE_POINTER(ret, name, args) ret(*name) args = nullptr;
  SMRT_TF_FUNCTIONS(SMRT_DECLARE_POINTER)
#undef SMRT_DECLARE_POINTER
};

extern std::atomic<const Api*> g_loaded_api;
const Api& load_default_api();  // runtime::ensure_loaded, then the table

// The loaded library's functions; loads one (runtime::ensure_loaded) on first use.
inline const Api& api() {
  const Api* loaded = g_loaded_api.load(std::memory_order_acquire);
  return loaded ? *loaded : load_default_api();
}

}  // namespace smrt::tf
