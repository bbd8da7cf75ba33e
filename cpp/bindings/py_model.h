// The Python face of smrt::Model and smrt::Signature (smrt._core.Model / Signature).
#pragma once

#include <pybind11/pybind11.h>

namespace smrt::bindings {

void register_model(pybind11::module_& m);

}  // namespace smrt::bindings
