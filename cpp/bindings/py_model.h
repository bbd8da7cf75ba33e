// The Python face of smrt::Model and smrt::Signature (smrt._core.Model / Signature).
#pragma once

#include <pybind11/pybind11.h>

#include "smrt/saved_model_info.h"

namespace smrt::bindings {

// (tags, [(key, method_name, inputs, outputs)], ops|None, has_object_graph, functions|None)
// with specs (key, dtype, shape|None, tensor_name) and functions (loadable, [(name, bare,
// [(concrete_name, input_signature, argument_keywords)])]), signatures as tagged tuples
// (see structured_to_python in py_model.cc).
pybind11::tuple meta_graph_to_python(const MetaGraphInfo& meta);

void register_model(pybind11::module_& m);

}  // namespace smrt::bindings
