// SavedModel metadata (smrt/saved_model_info.h) as smrt.saved_model's Python dataclasses.
#pragma once

#include <pybind11/pybind11.h>

#include "smrt/saved_model_info.h"

namespace smrt::bindings {

// A smrt.saved_model.MetaGraphInfo, every field built by keyword from `meta`: the dataclasses
// are the one Python definition of each field, and StructuredValue kinds are told apart here
// only.
pybind11::object meta_graph_to_python(const MetaGraphInfo& meta);

}  // namespace smrt::bindings
