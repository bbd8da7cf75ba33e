#include "graph_ops.h"

#include <set>
#include <string_view>

namespace smrt::detail {

std::vector<std::string> ops_used_by_graph_def(const GraphDefInfo& graph) {
  std::map<std::string, const std::vector<NodeInfo>*> functions;  // a later duplicate wins
  for (const auto& function : graph.functions) functions[function.name] = &function.nodes;
  std::set<std::string> used;
  std::vector<const std::vector<NodeInfo>*> pending;
  auto mark = [&](const std::string& op) {
    if (!used.insert(op).second) return;
    if (auto f = functions.find(op); f != functions.end()) pending.push_back(f->second);
  };
  auto visit = [&](const NodeInfo& node) {
    mark(node.op);
    if (node.op == "PartitionedCall" || node.op == "StatefulPartitionedCall") mark(node.f_function);
  };
  for (const auto& node : graph.nodes) visit(node);
  while (!pending.empty()) {
    const auto* body = pending.back();
    pending.pop_back();
    for (const auto& node : *body) visit(node);
  }
  std::vector<std::string> ops;
  for (const auto& op : used) {
    if (!functions.count(op)) ops.push_back(op);
  }
  return ops;  // std::set order: sorted
}

std::map<std::string, std::vector<std::string>> reachable_ops(const GraphDefInfo& graph,
                                                              const std::vector<std::string>& root_functions) {
  // Every body with a name is followed, duplicates included: which one TensorFlow keeps is
  // not a scan's guess to make.
  std::map<std::string, std::vector<const FunctionDefInfo*>> functions;
  for (const auto& function : graph.functions) functions[function.name].push_back(&function);
  std::map<std::string, std::vector<std::string>> gradients;
  for (const auto& [function, gradient] : graph.gradients) gradients[function].push_back(gradient);

  std::map<std::string, std::set<std::string>> holders;
  std::set<std::string> seen;
  std::vector<std::string> pending;
  auto call = [&](const std::string& name, const std::string& holder) {
    if (!functions.count(name)) {
      holders[name].insert(holder);  // an op instantiated as a function
    } else if (seen.insert(name).second) {
      pending.push_back(name);
    }
  };
  auto visit = [&](const NodeInfo& node, const std::string& holder) {
    if (functions.count(node.op)) call(node.op, holder);
    else holders[node.op].insert(holder);
    for (const auto& f : node.attr_functions) call(f, holder);
    for (const auto& f : node.nested_functions) call(f, holder);
  };
  const std::string graph_holder;
  for (const auto& node : graph.nodes) visit(node, graph_holder);
  for (const auto& name : root_functions) {
    if (functions.count(name) && seen.insert(name).second) pending.push_back(name);
  }
  while (!pending.empty()) {
    const std::string name = std::move(pending.back());
    pending.pop_back();
    for (const FunctionDefInfo* function : functions[name]) {
      for (const auto& node : function->nodes) visit(node, name);
    }
    for (const auto& gradient : gradients[name]) call(gradient, name);
  }
  std::map<std::string, std::vector<std::string>> out;
  for (auto& [op, where] : holders) out.emplace(op, std::vector<std::string>(where.begin(), where.end()));
  return out;
}

std::optional<std::vector<std::string>> ops_run_by(const GraphDefInfo& graph, const std::vector<std::string>& tensor_names,
                                                   const std::vector<std::string>& root_functions, std::size_t& budget) {
  auto spend = [&budget](std::size_t n) {
    if (n > budget) return false;
    budget -= n;
    return true;
  };
  if (!spend(graph.nodes.size() + graph.functions.size())) return std::nullopt;  // the indexes below
  std::map<std::string_view, const NodeInfo*> nodes;
  for (const auto& node : graph.nodes) nodes[node.name] = &node;
  std::map<std::string_view, std::vector<const FunctionDefInfo*>> functions;
  for (const auto& function : graph.functions) functions[function.name].push_back(&function);

  std::set<std::string> ops;
  std::set<std::string_view> seen_nodes, seen_functions;
  std::vector<std::string_view> pending_nodes, pending_functions;
  // "^name", "name:1", "name" -> name
  auto node_of = [](std::string_view input) {
    if (!input.empty() && input.front() == '^') input.remove_prefix(1);
    return input.substr(0, input.find(':'));
  };
  auto call = [&](const std::string& name) {
    if (!functions.count(name)) ops.insert(name);  // an op instantiated as a function
    else if (seen_functions.insert(name).second) pending_functions.push_back(name);
  };
  bool spent = false;
  auto visit = [&](const NodeInfo& node) {
    if (!spend(1)) spent = true;
    if (functions.count(node.op)) call(node.op);
    else ops.insert(node.op);
    for (const auto& f : node.attr_functions) call(f);
    for (const auto& f : node.nested_functions) call(f);
  };
  auto need_node = [&](std::string_view name) {
    if (seen_nodes.insert(name).second) pending_nodes.push_back(name);
  };
  for (const auto& tensor : tensor_names) need_node(node_of(tensor));
  for (const auto& name : root_functions) call(name);
  while (!spent && (!pending_nodes.empty() || !pending_functions.empty())) {
    if (!pending_nodes.empty()) {
      const std::string_view name = pending_nodes.back();
      pending_nodes.pop_back();
      auto found = nodes.find(name);
      if (found == nodes.end()) continue;
      visit(*found->second);
      for (const auto& input : found->second->inputs) need_node(node_of(input));
      continue;
    }
    const std::string_view name = pending_functions.back();
    pending_functions.pop_back();
    for (const FunctionDefInfo* function : functions[name]) {
      for (const auto& node : function->nodes) visit(node);
    }
  }
  if (spent) return std::nullopt;
  return std::vector<std::string>(ops.begin(), ops.end());
}

}  // namespace smrt::detail
