// Decodes saved_model.pb: SavedModel{meta_graphs=2} -> MetaGraphDef{meta_info_def=1{tags=4},
// signature_def=5} -> SignatureDef{inputs=1, outputs=2, method_name=3} -> TensorInfo{name=1,
// dtype=2, tensor_shape=3{dim=2{size=1}, unknown_rank=3}}; graph_def=2 (graph_def_reader.cc,
// graph_ops.cc) and object_graph_def=7 (object_graph_reader.cc) on request. Everything else
// is skipped. Parsed as protobuf parses: a singular message field that occurs several times
// merges (wire::Merged), the last scalar wins, repeated fields concatenate, and a map's last
// entry for a key wins.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "smrt/errors.h"
#include "smrt/saved_model_info.h"
#include "graph_def_reader.h"
#include "graph_ops.h"
#include "object_graph_reader.h"
#include "wire_reader.h"

namespace smrt {
namespace {

namespace fs = std::filesystem;
using wire::add_map_entry;
using wire::for_each_field;
using wire::Merged;
using wire::Reader;

// How much the functions listing may hand out per byte of saved_model.pb: room for every
// concrete function to be listed a few times, not for a small file to ask for gigabytes.
constexpr std::size_t kExpansionPerByte = 4;
constexpr std::size_t kExpansionFloor = 1 << 12;

// TensorInfo{name = 1 | coo_sparse = 4 | composite_tensor = 5 (the `encoding` oneof),
// dtype = 2, tensor_shape = 3}.
TensorSpec read_tensor_info(const std::string& key, std::string_view message) {
  TensorSpec spec;
  spec.key = key;
  Merged shape;
  for_each_field(message, [&](Reader& r) {
    switch (r.field()) {
      case 1: spec.tensor_name = std::string(r.utf8()); break;
      case 2: spec.dtype = static_cast<DType>(r.int64()); break;
      case 3: shape.add(r.bytes()); break;
      case 4: case 5:  // another encoding (a message; with another wire type, an unknown field)
        if (r.is(wire::kLengthDelimited)) spec.tensor_name.clear();
        r.skip();
        break;
      default: r.skip();
    }
  });
  wire::read_tensor_shape(shape.view(), spec.shape, spec.unknown_rank);
  return spec;
}

std::vector<TensorSpec> read_tensor_map(const std::map<std::string, Merged>& entries) {
  std::vector<TensorSpec> specs;
  specs.reserve(entries.size());
  for (const auto& [key, value] : entries) specs.push_back(read_tensor_info(key, value.view()));
  return specs;  // std::map iteration: sorted by key, as saved_model_cli prints them
}

SignatureInfo read_signature(const std::string& key, std::string_view message) {
  SignatureInfo sig;
  sig.key = key;
  std::map<std::string, Merged> inputs, outputs;
  for_each_field(message, [&](Reader& r) {
    switch (r.field()) {
      case 1: add_map_entry(r.bytes(), inputs); break;
      case 2: add_map_entry(r.bytes(), outputs); break;
      case 3: sig.method_name = std::string(r.utf8()); break;
      default: r.skip();
    }
  });
  sig.inputs = read_tensor_map(inputs);
  sig.outputs = read_tensor_map(outputs);
  return sig;
}

// MetaGraphDef{meta_info_def = 1 {tags = 4}, graph_def = 2, saver_def = 3, signature_def = 5,
// asset_file_def = 6 (repeated), object_graph_def = 7}; everything else is skipped. `budget`: what the functions listing of
// the whole file may still hand out.
MetaGraphInfo read_meta_graph(std::string_view message, bool with_ops, bool with_functions, bool with_tree,
                              const std::vector<std::string>* tree_tags, bool with_ops_run, std::size_t& budget) {
  MetaGraphInfo meta;
  std::map<std::string, Merged> signatures;
  Merged meta_info, graph_def, object_graph, saver_def;
  std::vector<std::string_view> asset_file_defs;  // repeated: one message each
  for_each_field(message, [&](Reader& r) {
    switch (r.field()) {
      case 1: meta_info.add(r.bytes()); break;
      case 2: graph_def.add(r.bytes()); break;
      case 3: saver_def.add(r.bytes()); break;
      case 5: add_map_entry(r.bytes(), signatures); break;
      case 6: asset_file_defs.push_back(r.bytes()); break;
      case 7: object_graph.add(r.bytes()); break;
      default: r.skip();  // collection_def...
    }
  });
  for_each_field(meta_info.view(), [&](Reader& info) {
    if (info.field() == 4) meta.tags.emplace_back(info.utf8());
    else info.skip();
  });
  for (const auto& [key, value] : signatures) meta.signatures.push_back(read_signature(key, value.view()));
  meta.has_object_graph = object_graph.present();
  // The MetaGraph being loaded (all of them when no tags are given) gets its object tree and
  // what each signature runs, which need node inputs; the others only what was asked for.
  const bool loading = with_tree && (!tree_tags || meta.has_tags(*tree_tags));
  const bool tree = loading && meta.has_object_graph;
  if (!with_ops && !with_functions && !loading) return meta;
  const detail::GraphDefInfo graph = detail::read_graph_def(graph_def.view(), loading);  // empty: no ops
  if (with_ops) {
    meta.ops = detail::ops_used_by_graph_def(graph);
    std::vector<std::string> roots;
    if (meta.has_object_graph) roots = detail::concrete_function_names(object_graph.view());
    meta.reachable_ops = detail::reachable_ops(graph, roots);
  }
  if (with_functions && meta.has_object_graph) {
    meta.object_graph = detail::read_object_graph(object_graph.view(), graph, budget);
  }
  if (tree) meta.object_tree = detail::read_object_tree(object_graph.view(), graph, saver_def.view(), asset_file_defs);
  if (loading && with_ops_run) {
    // Each signature walks the graph from its outputs; together the walks may visit at most
    // kExpansionPerByte values per byte of the MetaGraph, or ops_run stays empty.
    std::size_t walk_budget = kExpansionFloor + kExpansionPerByte * message.size();
    MetaGraphInfo::OpsRun ops_run;
    bool complete = true;
    for (const SignatureInfo& sig : meta.signatures) {
      std::vector<std::string> tensors;
      for (const TensorSpec& spec : sig.outputs) tensors.push_back(spec.tensor_name);
      auto ops = detail::ops_run_by(graph, tensors, {}, walk_budget);
      if (!ops) complete = false;
      if (!complete) break;
      ops_run.by_signature.emplace(sig.key, std::move(*ops));
    }
    if (complete && meta.has_object_graph) {
      auto ops = detail::ops_run_by(graph, {}, detail::concrete_function_names(object_graph.view()), walk_budget);
      if (ops) ops_run.by_functions = std::move(*ops);
      else complete = false;
    }
    if (complete) meta.ops_run = std::move(ops_run);
  }
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
                                 bool with_functions, bool with_tree, const std::vector<std::string>* tree_tags,
                                 bool with_ops_run) {
  SavedModelInfo info;
  if (bytes.empty()) throw StatusError(ErrorCode::kDataLoss, origin + " is empty");
  const std::size_t limit = kExpansionFloor + kExpansionPerByte * bytes.size();
  std::size_t budget = limit;
  try {
    for_each_field(bytes, [&](Reader& r) {
      if (r.field() == 2) info.meta_graphs.push_back(read_meta_graph(r.bytes(), with_ops, with_functions, with_tree, tree_tags, with_ops_run, budget));
      else r.skip();
    });
  } catch (const wire::WireError& e) {
    throw StatusError(ErrorCode::kDataLoss, origin + " is corrupt or truncated (" + e.what() + ")");
  } catch (const detail::ExpansionError& e) {
    throw StatusError(ErrorCode::kResourceExhausted,
                      origin + " is too large to list: its functions would expand to more than " + std::to_string(limit) +
                          " values from " + std::to_string(bytes.size()) + " bytes (" + e.what() + ")");
  }
  if (info.meta_graphs.empty()) {
    throw StatusError(ErrorCode::kDataLoss, origin + " holds no MetaGraph: it is not a SavedModel");
  }
  return info;
}

SavedModelInfo inspect(const std::string& dir, bool with_ops, bool with_functions, bool with_tree,
                       const std::vector<std::string>* tree_tags, bool with_ops_run) {
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
  SavedModelInfo info = parse_saved_model(contents, "'" + pb.string() + "'", with_ops, with_functions, with_tree, tree_tags,
                                          with_ops_run);
  info.path = dir;
  return info;
}

}  // namespace smrt
