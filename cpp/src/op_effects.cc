#include "op_effects.h"

#include <algorithm>
#include <iterator>
#include <memory>
#include <string_view>

#include "status.h"
#include "tf_c_api.h"
#include "wire_reader.h"

namespace smrt::detail {
namespace {

// Stateful ops that keep no tensor they are fed: they read variables or tables, call
// functions (whose own ops are in the list too), check, print or draw random numbers. Sorted.
constexpr std::string_view kKeepNothing[] = {
    "Assert", "LookupTableFindV2", "LookupTableSizeV2", "PartitionedCall", "Print", "PrintV2",
    "RandomStandardNormal", "RandomUniform", "RandomUniformInt", "ReadVariableOp", "StatefulPartitionedCall",
    "TruncatedNormal", "VarHandleOp", "VarIsInitializedOp", "VariableShape",
};

// OpDef.is_stateful (field 17, a bool) of a serialized OpDef.
bool stateful(std::string_view op_def) {
  wire::Reader r(op_def);
  bool result = false;
  while (r.next()) {
    if (r.field() == 17 && r.is(wire::kVarint)) result = r.varint() != 0;  // the last one wins, as in protobuf
    else r.skip();
  }
  return result;
}

}  // namespace

bool may_keep_inputs(const std::vector<std::string>& ops) {
  const auto& api = tf::api();
  struct GraphDeleter {
    void operator()(TF_Graph* g) const { tf::api().TF_DeleteGraph(g); }
  };
  std::unique_ptr<TF_Graph, GraphDeleter> graph(api.TF_NewGraph());
  for (const std::string& op : ops) {
    if (std::binary_search(std::begin(kKeepNothing), std::end(kKeepNothing), op)) continue;
    tf::Status status;
    TF_Buffer def{nullptr, 0, nullptr};
    api.TF_GraphGetOpDef(graph.get(), op.c_str(), &def, status.get());
    bool keeps = !status.ok();  // unknown to the registry: assume the worst
    if (!keeps) {
      try {
        keeps = stateful({static_cast<const char*>(def.data), def.length});
      } catch (const wire::WireError&) {
        keeps = true;
      }
    }
    if (def.data_deallocator) def.data_deallocator(const_cast<void*>(def.data), def.length);
    if (keeps) return true;
  }
  return false;
}

}  // namespace smrt::detail
