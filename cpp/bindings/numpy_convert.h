// NumPy <-> smrt::Tensor. Inputs go to TensorFlow without a copy when they can; outputs are
// NumPy arrays viewing TensorFlow's buffers, which a capsule keeps alive.
#pragma once

#include <Python.h>

#include <vector>

#include "smrt/model.h"

namespace smrt::bindings {

// Memory an input shares with the caller, so an output aliasing it can be copied instead.
struct SharedRange {
  const char* begin;
  const char* end;
};

// Converts `value` for input `index` of `sig`, checking dtype and shape first (smrt errors).
// Appends to `shared` the caller's memory that TensorFlow now reads in place.
Tensor to_tensor(PyObject* value, const Signature& sig, std::size_t index, std::vector<SharedRange>& shared);

// A new NumPy array for `tensor` (a view of its buffer, or bytes objects for strings). `key`
// names it in errors. Returns nullptr with a Python error set on failure.
PyObject* to_numpy(Tensor tensor, const std::string& key, const std::vector<SharedRange>& shared);

}  // namespace smrt::bindings
