// Decodes MetaGraphDef.object_graph_def: the root object's functions, for saved_model_cli's
// "Concrete Functions:" section, and the concrete functions TF's loader makes callable.
// Internal to saved_model_reader.cc.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "graph_def_reader.h"
#include "smrt/saved_model_info.h"

namespace smrt::detail {

// The listing would exceed its budget: the file asks for more than it holds.
struct ExpansionError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// `object_graph` is a SavedObjectGraph; `graph_def` the MetaGraph's GraphDef (its function
// library decides the order TensorFlow's loader names the concrete functions in). What it
// hands out (one per StructuredValue, plus their strings' bytes) is taken from `budget`,
// shared by the file's MetaGraphs; ExpansionError when it runs out. Throws wire::WireError on
// malformed bytes.
ObjectGraphInfo read_object_graph(std::string_view object_graph, const GraphDefInfo& graph_def,
                                  std::size_t& budget);

// The concrete functions the object graph names (in its concrete_functions map and in its
// function objects), duplicates included. Throws wire::WireError on malformed bytes.
std::vector<std::string> concrete_function_names(std::string_view object_graph);

// The whole object graph (nodes, concrete functions with their FunctionDefs' arg types) and
// each variable's binding to the graph's VarHandleOp through the checkpoint key the restore op
// (`saver_def`'s restore_op_name) assigns it from; each object the graph's own calls capture
// (signatures, table initializers) bound to the tensor they pass; each asset's filename
// (`asset_file_defs`: the MetaGraphDef's AssetFileDef messages, in order). Linear in the sizes;
// throws wire::WireError on malformed bytes. `graph_def` must be read with details.
ObjectTree read_object_tree(std::string_view object_graph, const GraphDefInfo& graph_def, std::string_view saver_def,
                            const std::vector<std::string_view>& asset_file_defs);

}  // namespace smrt::detail
