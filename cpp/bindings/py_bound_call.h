// smrt._core.BoundCall: a signature's call over fixed, preallocated arrays (sig.bind), as ONNX
// Runtime's IOBinding. Inputs are lent to TensorFlow once, at bind time, and read in place at
// every run; outputs are copied into the caller's arrays. A run allocates nothing of smrt's.
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <vector>

#include "numpy_convert.h"
#include "smrt/model.h"

namespace smrt::bindings {

class BoundCall {
 public:
  // `inputs`: one array per input, in inputs() order; `outputs`: output key -> array, the
  // outputs to fetch. Throws, naming the array at fault, if any cannot be bound.
  BoundCall(pybind11::object model, const Signature& sig, const RunOptions& options,
            const std::vector<pybind11::object>& inputs, const pybind11::dict& outputs);
  BoundCall(const BoundCall&) = delete;
  BoundCall& operator=(const BoundCall&) = delete;

  // bound(): runs and fills the output arrays; returns None (vectorcall entry, fast_call.h).
  PyObject* call(PyObject* const* args, std::size_t nargs, PyObject* kwnames);
  // {key: array} of the bound inputs and outputs.
  pybind11::dict inputs() const;
  pybind11::dict outputs() const;

 private:
  pybind11::object model_;  // keeps the session alive
  const Signature& sig_;
  RunOptions options_;
  Loans loans_;  // declared before the tensors: it must outlive them
  std::vector<pybind11::object> input_arrays_;
  std::vector<Tensor> inputs_;  // views of input_arrays_, made once
  std::vector<std::size_t> fetch_;  // positions in sig.outputs()
  std::vector<pybind11::object> output_arrays_;  // one per fetch_
  std::vector<Tensor> fetched_;  // scratch for one run's outputs, reused
  std::atomic<bool> running_{false};
};

void register_bound_call(pybind11::module_& m);

}  // namespace smrt::bindings
