// smrt_run: load a SavedModel with smrt's C++ API, feed a signature inputs read from .npy files
// (or generated to fit it), print the outputs, then time N calls from T threads.
//
//   smrt_run MODEL_DIR [--signature KEY] [--tags serve,gpu] [--input KEY=FILE.npy]...
//            [--batch N] [--iterations N] [--threads T] [--library libtensorflow.so.2]
#include <smrt/smrt.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

const char kUsage[] =
    "usage: smrt_run MODEL_DIR [options]\n"
    "Loads a SavedModel, runs a signature once on inputs from .npy files (or generated to fit\n"
    "it), prints the outputs, then times calls from several threads.\n"
    "  --signature KEY       the signature to run (default: serving_default, or the only one)\n"
    "  --tags serve,gpu      the MetaGraph's tag-set (default: serve)\n"
    "  --input KEY=FILE.npy  an input from a little-endian, C-order .npy file (repeatable)\n"
    "  --batch N             the size of unknown dimensions of generated inputs (default: 1)\n"
    "  --iterations N        calls to time (default: 100)\n"
    "  --threads T           threads making them (default: 1)\n"
    "  --library PATH        libtensorflow to use (a file or a directory)\n"
    "  --help                this text\n";

struct Options {
  bool help = false;
  std::string dir, signature, library;
  std::vector<std::string> tags{"serve"};
  std::map<std::string, std::string> npy_files;
  int64_t batch = 1;
  int iterations = 100, threads = 1;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      o.help = true;
      return o;
    }
    if (arg == "--signature") o.signature = value();
    else if (arg == "--tags") o.tags = split(value(), ',');
    else if (arg == "--library") o.library = value();
    else if (arg == "--batch") o.batch = std::stoll(value());
    else if (arg == "--iterations") o.iterations = std::stoi(value());
    else if (arg == "--threads") o.threads = std::stoi(value());
    else if (arg == "--input") {
      const std::string kv = value();
      const auto eq = kv.find('=');
      if (eq == std::string::npos) throw std::invalid_argument("--input takes KEY=FILE.npy");
      o.npy_files[kv.substr(0, eq)] = kv.substr(eq + 1);
    } else if (o.dir.empty() && arg.rfind("--", 0) != 0) o.dir = arg;
    else throw std::invalid_argument("unknown argument " + arg);
  }
  if (o.dir.empty()) throw std::invalid_argument(std::string("no MODEL_DIR given\n") + kUsage);
  if (o.threads < 1 || o.iterations < 0 || o.batch < 0) throw std::invalid_argument("bad count");
  return o;
}

// A little-endian, C-order .npy file of a numeric dtype.
smrt::Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw std::runtime_error(path + ": not a .npy file");
  uint32_t header_len = 0;
  unsigned char len_bytes[4] = {};
  in.read(reinterpret_cast<char*>(len_bytes), magic[6] == 1 ? 2 : 4);
  for (int i = 3; i >= 0; --i) header_len = header_len << 8 | len_bytes[i];
  std::string header(header_len, '\0');
  in.read(header.data(), header_len);
  auto field = [&](const std::string& key) {
    const auto at = header.find("'" + key + "':");
    if (at == std::string::npos) throw std::runtime_error(path + ": no " + key + " in the header");
    return header.substr(at + key.size() + 3);
  };
  if (field("fortran_order").find("True") < field("fortran_order").find(',')) throw std::runtime_error(path + ": Fortran order");
  const std::string descr = field("descr").substr(field("descr").find('\'') + 1, 3);
  static const std::map<std::string, smrt::DType> kTypes = {
      {"<f2", smrt::DType::kFloat16}, {"<f4", smrt::DType::kFloat32}, {"<f8", smrt::DType::kFloat64},
      {"|i1", smrt::DType::kInt8},    {"<i2", smrt::DType::kInt16},   {"<i4", smrt::DType::kInt32},
      {"<i8", smrt::DType::kInt64},   {"|u1", smrt::DType::kUInt8},   {"<u2", smrt::DType::kUInt16},
      {"<u4", smrt::DType::kUInt32},  {"<u8", smrt::DType::kUInt64},  {"|b1", smrt::DType::kBool},
      {"<c8", smrt::DType::kComplex64}};
  const auto type = kTypes.find(descr);
  if (type == kTypes.end()) throw std::runtime_error(path + ": unsupported dtype " + descr);
  std::vector<int64_t> shape;
  const std::string dims = field("shape");
  for (const auto& d : split(dims.substr(dims.find('(') + 1, dims.find(')') - dims.find('(') - 1), ',')) {
    if (d.find_first_of("0123456789") != std::string::npos) shape.push_back(std::stoll(d));
  }
  smrt::Tensor t = smrt::Tensor::allocate(type->second, shape);
  if (!in.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(t.byte_size()))) {
    throw std::runtime_error(path + ": truncated data");
  }
  return t;
}

// An input that fits `spec`: unknown leading dimension = batch, other unknown ones = 1.
smrt::Tensor generate(const smrt::TensorSpec& spec, int64_t batch) {
  std::vector<int64_t> shape = spec.unknown_rank ? std::vector<int64_t>{batch} : spec.shape;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) shape[i] = i == 0 ? batch : 1;
  }
  if (spec.dtype == smrt::DType::kString) {
    smrt::Tensor t = smrt::Tensor::strings(shape.data(), static_cast<int>(shape.size()));
    for (int64_t i = 0; i < t.num_elements(); ++i) t.set_string(i, "example " + std::to_string(i));
    return t;
  }
  smrt::Tensor t = smrt::Tensor::allocate(spec.dtype, shape);
  auto* bytes = static_cast<unsigned char*>(t.raw_data());
  for (std::size_t i = 0; i < t.byte_size(); ++i) bytes[i] = 0;  // zeros: valid for every dtype
  if (spec.dtype == smrt::DType::kFloat32) {
    float* f = t.data<float>();
    for (int64_t i = 0; i < t.num_elements(); ++i) f[i] = static_cast<float>(i % 7) * 0.5f;
  }
  return t;
}

void print(const std::string& key, const smrt::Tensor& t) {
  std::cout << key << ": " << smrt::dtype_name(t.dtype()) << " (";
  const auto shape = t.shape();
  for (std::size_t i = 0; i < shape.size(); ++i) std::cout << (i ? ", " : "") << shape[i];
  std::cout << ") [";
  const int64_t n = std::min<int64_t>(t.num_elements(), 6);
  for (int64_t i = 0; i < n; ++i) {
    std::cout << (i ? ", " : "");
    switch (t.dtype()) {
      case smrt::DType::kFloat32: std::cout << t.data<float>()[i]; break;
      case smrt::DType::kFloat64: std::cout << t.data<double>()[i]; break;
      case smrt::DType::kInt32: std::cout << t.data<int32_t>()[i]; break;
      case smrt::DType::kInt64: std::cout << t.data<int64_t>()[i]; break;
      case smrt::DType::kString: std::cout << '"' << t.string_at(i) << '"'; break;
      default: std::cout << "?";
    }
  }
  std::cout << (t.num_elements() > n ? ", ...]" : "]") << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    if (o.help) {
      std::cout << kUsage;
      return 0;
    }
    if (!o.library.empty()) smrt::runtime::load_library(o.library);
    const smrt::Model model = smrt::Model::load(o.dir, o.tags);
    const smrt::Signature& sig = o.signature.empty() ? model.default_signature() : model.signature(o.signature);
    const smrt::runtime::Info library = smrt::runtime::info();
    std::cout << "libtensorflow " << library.version << " (" << library.source << ": " << library.path
              << "), signature '" << sig.key() << "'\n";

    std::vector<smrt::Tensor> inputs;
    for (const auto& [key, spec] : sig.inputs()) {
      const auto file = o.npy_files.find(key);
      inputs.push_back(file != o.npy_files.end() ? read_npy(file->second) : generate(spec, o.batch));
    }
    std::vector<smrt::Tensor> outputs(sig.outputs().size());
    sig.run(inputs.data(), outputs.data());
    for (std::size_t i = 0; i < outputs.size(); ++i) print(sig.outputs()[i].key, outputs[i]);

    // Time the calls: every thread runs its share on the same Signature.
    std::vector<std::vector<double>> latencies(static_cast<std::size_t>(o.threads));
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> workers;
    for (int w = 0; w < o.threads; ++w) {
      workers.emplace_back([&, w] {
        std::vector<smrt::Tensor> out(sig.outputs().size());
        for (int i = w; i < o.iterations; i += o.threads) {
          const auto t0 = std::chrono::steady_clock::now();
          sig.run(inputs.data(), out.data());
          latencies[static_cast<std::size_t>(w)].push_back(
              std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
        }
      });
    }
    for (auto& t : workers) t.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::vector<double> all;
    for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    if (!all.empty()) {
      auto pct = [&](double q) { return all[std::min(all.size() - 1, static_cast<std::size_t>(q * all.size()))]; };
      std::cout << all.size() << " calls on " << o.threads << " thread(s): p50 " << pct(0.50) << " us, p90 "
                << pct(0.90) << " us, p99 " << pct(0.99) << " us, " << all.size() / seconds << " calls/s\n";
    }
    return 0;
  } catch (const smrt::Error& e) {
    std::cerr << "smrt_run: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "smrt_run: " << e.what() << "\n";
    return 2;
  }
}
