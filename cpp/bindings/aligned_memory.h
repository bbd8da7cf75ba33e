// A NumPy data-memory handler (NEP 49) that hands out 64-byte-aligned buffers, so arrays made
// while it is installed go to TensorFlow without the copy it makes of less-aligned data.
#pragma once

#include <Python.h>

namespace smrt::bindings {

// A new reference to the handler's "mem_handler" capsule (NumPy's handler object).
PyObject* aligned_handler_capsule();

}  // namespace smrt::bindings
