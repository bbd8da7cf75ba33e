// smrt._core.flatten_json: the shape check and flattening of a JSON tensor (nested Python
// lists, as orjson or the json module parse them) for the REST server, at C speed.
#pragma once

#include <pybind11/pybind11.h>

namespace smrt::bindings {

void register_json_tensor(pybind11::module_& m);

}  // namespace smrt::bindings
