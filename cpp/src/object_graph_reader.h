// Decodes MetaGraphDef.object_graph_def: the root object's functions, for saved_model_cli's
// "Concrete Functions:" section. Internal to saved_model_reader.cc.
#pragma once

#include <string_view>

#include "smrt/saved_model_info.h"

namespace smrt::detail {

// `object_graph` is a SavedObjectGraph; `graph_def` the MetaGraph's GraphDef (its function
// library decides the order TensorFlow's loader names the concrete functions in). Throws
// wire::WireError on malformed bytes.
ObjectGraphInfo read_object_graph(std::string_view object_graph, std::string_view graph_def);

}  // namespace smrt::detail
