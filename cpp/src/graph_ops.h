// Which ops a MetaGraph's GraphDef uses: saved_model_cli's count, and the complete reachable set.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "graph_def_reader.h"

namespace smrt::detail {

// The ops tensorflow's meta_graph.ops_used_by_graph_def counts, sorted: graph nodes, and the
// functions reached through a node whose op names one or through (Stateful)PartitionedCall's
// "f" (a later library duplicate wins). Kept exact for `saved_model_cli --list_ops`.
std::vector<std::string> ops_used_by_graph_def(const GraphDefInfo& graph);

// Every op that can run: from every node of the graph and from `root_functions` (the concrete
// functions TensorFlow's loader makes callable), following a node whose op names a library
// function, every function any attr names (func, list.func, and the functions bound in their
// attrs), and a function's registered gradient, each function once. A name an attr gives that
// is not in the library counts as an op (TensorFlow can instantiate an op as a function).
// Maps each op to its holders, sorted: the function names, "" for the graph itself.
std::map<std::string, std::vector<std::string>> reachable_ops(const GraphDefInfo& graph,
                                                              const std::vector<std::string>& root_functions);

// The ops that running `tensor_names` ("node:0") can execute: the graph nodes they depend on
// through data and control inputs, transitively, and every function those nodes or
// `root_functions` reach (as reachable_ops follows them; gradients are not followed: they do
// not run in a forward call). Sorted. Needs a graph read with details (node inputs). Each
// node or function visited, and each indexed, takes one from `budget`; nothing once it is spent.
std::optional<std::vector<std::string>> ops_run_by(const GraphDefInfo& graph, const std::vector<std::string>& tensor_names,
                                                   const std::vector<std::string>& root_functions, std::size_t& budget);

}  // namespace smrt::detail
