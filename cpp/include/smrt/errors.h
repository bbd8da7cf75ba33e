// The exceptions smrt's C++ API throws. Every one derives from smrt::Error and carries an
// ErrorCode; codes 1..16 are TensorFlow's status codes (TF_Code), the rest are smrt's own.
#pragma once

#include <stdexcept>
#include <string>

namespace smrt {

enum class ErrorCode : int {
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
  // smrt's own, for errors a caller makes before TensorFlow is involved.
  kSignatureNotFound = 100,
  kInvalidInput = 101,    // missing/unexpected input, wrong rank or fixed dimension
  kInputType = 102,       // wrong dtype, or a value that cannot be a tensor
  kModelNotFound = 103,   // no such directory or saved_model.pb
  kLibraryNotFound = 104, // no usable libtensorflow
  kModelClosed = 105,
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
#undef SMRT_DEFINE_ERROR

}  // namespace smrt
