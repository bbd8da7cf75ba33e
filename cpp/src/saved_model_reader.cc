// Decodes saved_model.pb: SavedModel{meta_graphs=2} -> MetaGraphDef{meta_info_def=1{tags=4},
// signature_def=5} -> SignatureDef{inputs=1, outputs=2, method_name=3} -> TensorInfo{name=1,
// dtype=2, tensor_shape=3{dim=2{size=1}, unknown_rank=3}}; object_graph_def=7 on request
// (object_graph_reader.cc). Everything else is skipped.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "smrt/errors.h"
#include "smrt/saved_model_info.h"
#include "object_graph_reader.h"
#include "graph_def_reader.h"
#include "wire_reader.h"

namespace smrt {
namespace {

namespace fs = std::filesystem;
using wire::Reader;

using wire::for_each_field;

// A map<string, V> entry: {key = 1, value = 2}.
void read_map_entry(std::string_view entry, std::map<std::string, std::string_view>& into) {
  std::string key;
  std::string_view value;
  for_each_field(entry, [&](Reader& r) {
    if (r.field() == 1) key = std::string(r.utf8());
    else if (r.field() == 2) value = r.bytes();
    else r.skip();
  });
  into[key] = value;  // protobuf map semantics: the last entry for a key wins
}

TensorSpec read_tensor_info(const std::string& key, std::string_view message) {
  TensorSpec spec;
  spec.key = key;
  for_each_field(message, [&](Reader& r) {
    switch (r.field()) {
      case 1: spec.tensor_name = std::string(r.utf8()); break;
      case 2: spec.dtype = static_cast<DType>(r.int64()); break;
      case 3: wire::read_tensor_shape(r.bytes(), spec.shape, spec.unknown_rank); break;
      default: r.skip();
    }
  });
  return spec;
}

std::vector<TensorSpec> read_tensor_map(const std::map<std::string, std::string_view>& entries) {
  std::vector<TensorSpec> specs;
  specs.reserve(entries.size());
  for (const auto& [key, value] : entries) specs.push_back(read_tensor_info(key, value));
  return specs;  // std::map iteration: sorted by key, as saved_model_cli prints them
}

SignatureInfo read_signature(const std::string& key, std::string_view message) {
  SignatureInfo sig;
  sig.key = key;
  std::map<std::string, std::string_view> inputs, outputs;
  for_each_field(message, [&](Reader& r) {
    switch (r.field()) {
      case 1: read_map_entry(r.bytes(), inputs); break;
      case 2: read_map_entry(r.bytes(), outputs); break;
      case 3: sig.method_name = std::string(r.utf8()); break;
      default: r.skip();
    }
  });
  sig.inputs = read_tensor_map(inputs);
  sig.outputs = read_tensor_map(outputs);
  return sig;
}

// The ops a GraphDef uses, as tensorflow's meta_graph.ops_used_by_graph_def counts them:
// functions are followed when a node's op names one, or through (Stateful)PartitionedCall's "f".
std::vector<std::string> read_ops(std::string_view graph_def) {
  const detail::GraphDefInfo graph = detail::read_graph_def(graph_def);
  std::map<std::string, const std::vector<detail::NodeInfo>*> functions;  // a later duplicate wins
  for (const auto& function : graph.functions) functions[function.name] = &function.nodes;
  std::set<std::string> used;
  std::vector<const std::vector<detail::NodeInfo>*> pending;
  auto mark = [&](const std::string& op) {
    if (!used.insert(op).second) return;
    if (auto f = functions.find(op); f != functions.end()) pending.push_back(f->second);
  };
  auto visit = [&](const detail::NodeInfo& node) {
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

MetaGraphInfo read_meta_graph(std::string_view message, bool with_ops, bool with_functions) {
  MetaGraphInfo meta;
  std::map<std::string, std::string_view> signatures;
  std::string_view graph_def, object_graph;  // the last of each (protobuf merges repeats;
                                             // they do not occur in practice)
  for_each_field(message, [&](Reader& r) {
    if (r.field() == 1) {
      for_each_field(r.bytes(), [&](Reader& info) {
        if (info.field() == 4) meta.tags.emplace_back(info.utf8());
        else info.skip();
      });
    } else if (r.field() == 5) {
      read_map_entry(r.bytes(), signatures);
    } else if (r.field() == 2) {
      graph_def = r.bytes();
      if (with_ops) meta.ops = read_ops(graph_def);
    } else if (r.field() == 7) {
      object_graph = r.bytes();
      meta.has_object_graph = true;
    } else {
      r.skip();  // graph_def, saver_def, collection_def, object_graph_def, asset_file_def
    }
  });
  for (const auto& [key, value] : signatures) meta.signatures.push_back(read_signature(key, value));
  if (with_ops && !meta.ops) meta.ops.emplace();  // a MetaGraph without a graph uses no ops
  if (with_functions && meta.has_object_graph) meta.object_graph = detail::read_object_graph(object_graph, graph_def);
  return meta;
}

std::string join_tags(const std::vector<std::string>& tags) {
  std::string out;
  for (const auto& tag : tags) out += (out.empty() ? "" : ", ") + tag;
  return out.empty() ? "(no tags)" : out;
}

// A TF Serving base path holds numbered versions; point the user at the newest one.
std::string version_hint(const fs::path& dir) {
  std::error_code ec;
  long best = -1;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.empty() && name.size() < 18 && std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isdigit(c); }) &&
        fs::exists(entry.path() / "saved_model.pb", ec)) {
      best = std::max(best, std::stol(name));
    }
  }
  return best < 0 ? "" : " (it looks like a TF Serving base path: try '" + (dir / std::to_string(best)).string() + "')";
}

}  // namespace

const SignatureInfo* MetaGraphInfo::find_signature(std::string_view key) const noexcept {
  for (const auto& sig : signatures) {
    if (sig.key == key) return &sig;
  }
  return nullptr;
}

bool MetaGraphInfo::has_tags(const std::vector<std::string>& wanted) const {
  return std::set<std::string>(tags.begin(), tags.end()) == std::set<std::string>(wanted.begin(), wanted.end());
}

const MetaGraphInfo& SavedModelInfo::meta_graph(const std::vector<std::string>& tags) const {
  for (const auto& meta : meta_graphs) {
    if (meta.has_tags(tags)) return meta;
  }
  std::string available;
  for (const auto& meta : meta_graphs) available += (available.empty() ? "'" : ", '") + join_tags(meta.tags) + "'";
  throw StatusError(ErrorCode::kNotFound, "the SavedModel at '" + path + "' has no MetaGraph with tag-set '" +
                                              join_tags(tags) + "'; its tag-sets are: " + available);
}

SavedModelInfo parse_saved_model(std::string_view bytes, const std::string& origin, bool with_ops,
                                 bool with_functions) {
  SavedModelInfo info;
  if (bytes.empty()) throw StatusError(ErrorCode::kDataLoss, origin + " is empty");
  try {
    for_each_field(bytes, [&](Reader& r) {
      if (r.field() == 2) info.meta_graphs.push_back(read_meta_graph(r.bytes(), with_ops, with_functions));
      else r.skip();
    });
  } catch (const wire::WireError& e) {
    throw StatusError(ErrorCode::kDataLoss, origin + " is corrupt or truncated (" + e.what() + ")");
  }
  if (info.meta_graphs.empty()) {
    throw StatusError(ErrorCode::kDataLoss, origin + " holds no MetaGraph: it is not a SavedModel");
  }
  return info;
}

SavedModelInfo inspect(const std::string& dir, bool with_ops, bool with_functions) {
  const fs::path path(dir);
  std::error_code ec;
  if (!fs::exists(path, ec)) throw ModelNotFoundError("SavedModel directory '" + dir + "' does not exist");
  if (!fs::is_directory(path, ec)) throw ModelNotFoundError("'" + dir + "' is not a SavedModel directory");
  const fs::path pb = path / "saved_model.pb";
  if (fs::exists(pb, ec) && !fs::is_regular_file(pb, ec)) {
    throw StatusError(ErrorCode::kDataLoss, "'" + pb.string() + "' is not a regular file");
  }
  if (!fs::exists(pb, ec)) {
    if (fs::exists(path / "saved_model.pbtxt", ec)) {
      throw StatusError(ErrorCode::kUnimplemented, "'" + dir + "' holds a text-format saved_model.pbtxt; smrt reads the binary saved_model.pb only");
    }
    throw ModelNotFoundError("no saved_model.pb in '" + dir + "'" + version_hint(path));
  }
  std::ifstream file(pb, std::ios::binary | std::ios::ate);
  const std::streamoff size = file ? static_cast<std::streamoff>(file.tellg()) : -1;
  std::string contents(size > 0 ? static_cast<std::size_t>(size) : 0, '\0');
  if (size < 0 || !file.seekg(0) || !file.read(contents.data(), size)) {
    throw StatusError(ErrorCode::kPermissionDenied, "cannot read '" + pb.string() + "'");
  }
  SavedModelInfo info = parse_saved_model(contents, "'" + pb.string() + "'", with_ops, with_functions);
  info.path = dir;
  return info;
}

}  // namespace smrt
