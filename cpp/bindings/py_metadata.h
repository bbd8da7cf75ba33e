// SavedModel metadata (smrt/saved_model_info.h) as smrt.saved_model's Python dataclasses.
#pragma once

#include <pybind11/pybind11.h>

#include "smrt/saved_model_info.h"

namespace smrt::bindings {

// A smrt.saved_model.MetaGraphInfo, every field built by keyword from `meta`: the dataclasses
// are the one Python definition of each field, and StructuredValue kinds are told apart here
// only.
pybind11::object meta_graph_to_python(const MetaGraphInfo& meta);

// The object tree as (nodes, concrete_functions): each node a dict (kind, children as
// (local_name, node id), a variable's dtype/shape/name/checkpoint_key/bound, a function's
// concrete_functions, argument_keywords and fullargspec); each callable concrete function a
// dict (input_signature, output_signature as smrt.saved_model values, has_outputs).
pybind11::object object_tree_to_python(const ObjectTree& tree);

}  // namespace smrt::bindings
