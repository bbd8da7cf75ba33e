// The smallest smrt program: load a SavedModel, list a signature, run it once.
//   quickstart MODEL_DIR   (a signature "serving_default" with one float32 input of shape [?, ?])
#include <smrt/smrt.h>

#include <iostream>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: quickstart MODEL_DIR\n";
    return 2;
  }
  try {
    smrt::Model model = smrt::Model::load(argv[1], {"serve"});  // throws smrt::Error subclasses
    const smrt::Signature& sig = model.signature("serving_default");
    for (const auto& [key, spec] : sig.inputs()) {
      std::cout << "input " << key << ": " << smrt::dtype_name(spec.dtype) << ", rank "
                << spec.shape.size() << ", " << spec.tensor_name << "\n";
    }
    const auto& [input_key, input_spec] = *sig.inputs().begin();
    const std::vector<float> values = {1, 2, 3, 4, 5, 6};
    std::map<std::string, smrt::Tensor> out =
        sig.run({{input_key, smrt::Tensor::from_vector<float>({2, 3}, values)}});
    for (const auto& [key, tensor] : out) {
      const float* y = tensor.data<float>();
      const std::vector<int64_t> dims = tensor.shape();
      std::cout << key << " (" << dims[0] << "x" << dims[1] << "):";
      for (int64_t i = 0; i < tensor.num_elements(); ++i) std::cout << " " << y[i];
      std::cout << "\n";
    }
    (void)input_spec;
    return 0;
  } catch (const smrt::Error& e) {
    std::cerr << "quickstart: " << e.what() << "\n";
    return 1;
  }
}
