// RAII for TF_Status, and turning a failed status into a smrt::StatusError.
#pragma once

#include <string>

#include "smrt/errors.h"
#include "tf_c_api.h"

namespace smrt::tf {

class Status {
 public:
  Status() : status_(api().TF_NewStatus()) {}
  ~Status() { api().TF_DeleteStatus(status_); }
  Status(const Status&) = delete;
  Status& operator=(const Status&) = delete;

  TF_Status* get() const noexcept { return status_; }
  bool ok() const { return api().TF_GetCode(status_) == 0; }
  // Throws a StatusError with TensorFlow's code and message, prefixed by `context`.
  void throw_if_error(const std::string& context) const {
    const int code = api().TF_GetCode(status_);
    if (code == 0) return;
    throw StatusError(static_cast<ErrorCode>(code), context + ": " + api().TF_Message(status_));
  }

 private:
  TF_Status* status_;
};

}  // namespace smrt::tf
