// The interface a signature's execution backend other than the TensorFlow session implements
// (openvino_backend.cc). Model::load makes one per signature it can run; Signature::run checks
// inputs against the SignatureDef, then hands them here instead of to TF_SessionRun.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "smrt/model.h"

namespace smrt::detail {

class SignatureBackend {
 public:
  virtual ~SignatureBackend() = default;
  // Inputs are in inputs() order, already checked (dtype, and shape as options ask); fills
  // outputs[j] with output fetch[j] for j < n_fetch, or, when fetch is null, every output in
  // outputs() order (n_fetch is then their number). Only those are made: a bound call that
  // fetches some outputs costs no others. Thread-safe. Throws a StatusError for a failed run:
  // InvalidArgument for an input the backend cannot take, another code for its own failure.
  virtual void run(const Tensor* const* inputs, const std::size_t* fetch, std::size_t n_fetch, Tensor* outputs,
                   const RunOptions& options) const = 0;
  // Frees the native resources; called once, by Model::close, with no run in flight.
  virtual void close() = 0;
};

// Runs `tensorflow` (a signature still on its TensorFlow session) and `other` on a probe input
// (every unknown dimension 1; deterministic values) and returns "" when every output element
// satisfies |other - tensorflow| <= tolerance * (1 + |tensorflow|), else what differed.
std::string probe_disagreement(const Signature& tensorflow, const SignatureBackend& other, double tolerance);

}  // namespace smrt::detail
