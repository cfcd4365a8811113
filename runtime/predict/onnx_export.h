// A network with its weights as a standard ONNX model (https://onnx.ai), in
// evaluation mode, for runtimes other than Kiln (OpenCV's DNN module, ONNX
// Runtime, ...). The protobuf classes are generated at build time from the
// onnx.proto that Debian's libonnx-dev ships.
//
// The graph, opset 13:
//   input "pixels"  [N, C, H, W] float, pixels in [0, 1] (N symbolic)
//   Sub(mean), Div(std)          the network's [input] normalization
//   per layer: conv -> Conv; maxpool -> MaxPool; avgpool -> AveragePool;
//   globalavgpool -> GlobalAveragePool; batchnorm -> BatchNormalization with
//   its running statistics; dense -> Flatten (when its input has rows and
//   columns) and Gemm (transB = 1); dropout -> nothing (the identity in
//   evaluation); each activation -> Relu, Tanh or Sigmoid. A spatial layer
//   after a dense one gets its [N, O] input reshaped to [N, O, 1, 1].
//   output "scores" [N, classes] float: the last dense layer's output
// Initializers carry the parameter tensors' names ("conv1.weight") and shapes.
#pragma once

#include <string>
#include <vector>

#include "model/network.h"

namespace kiln {

// The serialized ModelProto. `params` is the flat vector (Network::params layout);
// std::invalid_argument if its size is not net.param_count.
std::string onnx_model(const model::Network &net, const std::vector<float> &params);

// Writes onnx_model() to `path`. Throws std::runtime_error "PATH: error: ..." if
// the file cannot be written.
void write_onnx(const std::string &path, const model::Network &net, const std::vector<float> &params);

}  // namespace kiln
