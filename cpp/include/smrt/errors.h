// The exceptions smrt's C++ API throws. Every one derives from smrt::Error and carries an
// ErrorCode; codes 1..16 are TensorFlow's status codes (TF_Code), the rest are smrt's own.
#pragma once

#include <stdexcept>
#include <string>

namespace smrt {

// Every error code, once: (name, value). Codes 1..16 are TensorFlow's TF_Code values; 100 and
// up are smrt's own, for errors a caller makes before TensorFlow is involved. The Python module
// gets the same table (_core.ERROR_CODES), and each smrt.errors class names its code.
#define SMRT_ERROR_CODES(X)                                                                 \
  X(kCancelled, 1) X(kUnknown, 2) X(kInvalidArgument, 3) X(kDeadlineExceeded, 4)           \
  X(kNotFound, 5) X(kAlreadyExists, 6) X(kPermissionDenied, 7) X(kResourceExhausted, 8)    \
  X(kFailedPrecondition, 9) X(kAborted, 10) X(kOutOfRange, 11) X(kUnimplemented, 12)       \
  X(kInternal, 13) X(kUnavailable, 14) X(kDataLoss, 15) X(kUnauthenticated, 16)            \
  X(kSignatureNotFound, 100)                                                               \
  X(kInvalidInput, 101)    /* missing/unexpected input, wrong rank or fixed dimension */   \
  X(kInputType, 102)       /* wrong dtype, or a value that cannot be a tensor */           \
  X(kModelNotFound, 103)   /* no such directory or saved_model.pb */                       \
  X(kLibraryNotFound, 104) /* no usable libtensorflow */                                   \
  X(kModelClosed, 105)                                                                    \
  X(kNoMatchingFunction, 106) /* no concrete function of a saved function fits the call */ \
  X(kMissingOp, 107)       /* the model uses ops no loaded library registers */

enum class ErrorCode : int {
#define SMRT_ERROR_CODE_ENUM(name, value) name = value,
  SMRT_ERROR_CODES(SMRT_ERROR_CODE_ENUM)
#undef SMRT_ERROR_CODE_ENUM
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

// A TensorFlow status error (code 1..16), or smrt's DataLoss for a corrupt saved_model.pb.
class StatusError : public Error {
 public:
  using Error::Error;
};

#define SMRT_DEFINE_ERROR(Name, Code)                                               \
  class Name : public Error {                                                       \
   public:                                                                          \
    explicit Name(const std::string& message) : Error(ErrorCode::Code, message) {}  \
  };
SMRT_DEFINE_ERROR(SignatureNotFoundError, kSignatureNotFound)
SMRT_DEFINE_ERROR(InvalidInputError, kInvalidInput)
SMRT_DEFINE_ERROR(InputTypeError, kInputType)
SMRT_DEFINE_ERROR(ModelNotFoundError, kModelNotFound)
SMRT_DEFINE_ERROR(LibraryNotFoundError, kLibraryNotFound)
SMRT_DEFINE_ERROR(ModelClosedError, kModelClosed)
SMRT_DEFINE_ERROR(NoMatchingFunctionError, kNoMatchingFunction)
SMRT_DEFINE_ERROR(MissingOpError, kMissingOp)
#undef SMRT_DEFINE_ERROR

}  // namespace smrt
