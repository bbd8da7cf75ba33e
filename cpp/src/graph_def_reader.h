// The parts of a GraphDef both SavedModel readers need: each node's op and the functions its
// attributes name, for the graph and for every function of its library (in library order).
// GraphDef{node=1 NodeDef, library=2 FunctionDefLibrary{function=1 FunctionDef{signature=1
// OpDef{name=1}, node_def=3 NodeDef}}}; NodeDef{op=2, attr=5 map<string, AttrValue>}.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace smrt::detail {

struct NodeInfo {
  std::string op;
  std::vector<std::string> attr_functions;  // AttrValue.func and AttrValue.list.func names
  std::string f_function;                   // the function of the attribute named "f"
};

struct FunctionDefInfo {
  std::string name;
  std::vector<NodeInfo> nodes;
};

struct GraphDefInfo {
  std::vector<NodeInfo> nodes;
  std::vector<FunctionDefInfo> functions;  // library order, duplicates included
};

// Throws wire::WireError on malformed bytes.
GraphDefInfo read_graph_def(std::string_view graph_def);

}  // namespace smrt::detail
