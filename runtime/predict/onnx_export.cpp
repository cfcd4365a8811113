// The ONNX graph of a network in evaluation mode (see onnx_export.h), one node
// builder per layer kind.
#include "onnx_export.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

#include "onnx.pb.h"

#include "model/kinds/batchnorm.h"
#include "model/kinds/conv.h"
#include "model/kinds/pool.h"

namespace kiln {
namespace {

constexpr int64_t kOpset = 13;
constexpr int64_t kIrVersion = 7;  // the IR version that goes with opset 13

void add_ints(onnx::NodeProto &node, const char *name, const std::vector<int64_t> &values) {
    onnx::AttributeProto *a = node.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : values) a->add_ints(v);
}

void add_int(onnx::NodeProto &node, const char *name, int64_t value) {
    onnx::AttributeProto *a = node.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
}

void add_float(onnx::NodeProto &node, const char *name, float value) {
    onnx::AttributeProto *a = node.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(value);
}

void add_initializer(onnx::GraphProto &graph, const std::string &name, onnx::TensorProto::DataType type,
                     const std::vector<int64_t> &shape) {
    onnx::TensorProto *t = graph.add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    for (int64_t d : shape) t->add_dims(d);
}

// A float tensor [N, dims...] with a symbolic N.
void describe_value(onnx::ValueInfoProto &value, const std::string &name, const std::vector<int64_t> &dims) {
    value.set_name(name);
    onnx::TypeProto::Tensor *type = value.mutable_type()->mutable_tensor_type();
    type->set_elem_type(onnx::TensorProto::FLOAT);
    onnx::TensorShapeProto *shape = type->mutable_shape();
    shape->add_dim()->set_dim_param("N");
    for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

// Appends nodes to the graph layer after layer; `x_` names the tensor the next
// layer reads, `flat_` says whether it is [N, F] (after a dense layer) rather
// than [N, C, H, W].
class GraphBuilder {
public:
    GraphBuilder(onnx::GraphProto &graph, const model::Network &net, const std::vector<float> &params)
        : graph_(graph), net_(net), params_(params) {}

    void input(const std::string &name) {
        const model::InputSpec &in = net_.input;
        describe_value(*graph_.add_input(), name, {in.channels, in.height, in.width});
        x_ = name;
        const std::string mean = scalar("input.mean", float(in.mean)), std = scalar("input.std", float(in.std));
        node("Sub", {x_, mean}, "normalized.centred");
        node("Div", {x_, std}, "normalized");
        input_ = {x_, false};
    }

    // Layers in file order; each reads the tensors its inputs wrote.
    void layer(const model::Layer &l) {
        const Tensor &first = tensor_of(l.inputs[0]);
        x_ = first.name;
        flat_ = first.flat;
        const std::string_view kind = l.kind->name;
        if (kind == "conv") conv(l);
        else if (kind == "maxpool") pool(l, "MaxPool");
        else if (kind == "avgpool") pool(l, "AveragePool");
        else if (kind == "globalavgpool") spatial(l, "GlobalAveragePool", {}, l.name);
        else if (kind == "batchnorm") batchnorm(l);
        else if (kind == "dense") dense(l);
        else if (kind == "add") join(l, "Sum");
        else if (kind == "concat") join(l, "Concat");
        else if (kind != "dropout")  // dropout: the identity in evaluation
            throw std::runtime_error("unsupported: ONNX export of layer type '" + std::string(kind) + "'");
        tensors_.push_back({x_, flat_});
    }

    // The last layer's last node (the network ends with a dense layer) writes the output.
    void output(const std::string &name) {
        graph_.mutable_node()->rbegin()->set_output(0, name);
        describe_value(*graph_.add_output(), name, {net_.input.classes});
    }

private:
    struct Tensor {
        std::string name;
        bool flat = false;  // [N, F] rather than [N, C, H, W]
    };
    const Tensor &tensor_of(int index) const { return index < 0 ? input_ : tensors_[size_t(index)]; }

    // add (ONNX Sum, then the activation) and concat (along the channels): the
    // inputs in one layout.
    void join(const model::Layer &l, const std::string &op) {
        std::vector<std::string> names;
        for (int from : l.inputs) {
            if (tensor_of(from).flat != flat_)
                throw std::runtime_error("unsupported: ONNX export of layer '" + l.name +
                                         "', which joins flat and spatial tensors");
            names.push_back(tensor_of(from).name);
        }
        onnx::NodeProto &n = node(op, names, op == "Sum" ? pre_activation_name(l) : l.name);
        if (op == "Concat") add_int(n, "axis", 1);
        else activation(l);
    }

    onnx::NodeProto &node(const std::string &op, std::vector<std::string> inputs, const std::string &out) {
        onnx::NodeProto *n = graph_.add_node();
        n->set_op_type(op);
        n->set_name(out);
        for (const std::string &i : inputs) n->add_input(i);
        n->add_output(out);
        x_ = out;
        return *n;
    }

    std::string scalar(const std::string &name, float value) {
        add_initializer(graph_, name, onnx::TensorProto::FLOAT, {});
        graph_.mutable_initializer()->rbegin()->add_float_data(value);
        return name;
    }

    std::string param(int index) {
        const model::ParamTensor &t = net_.params[size_t(index)];
        add_initializer(graph_, t.name, onnx::TensorProto::FLOAT, t.shape);
        const float *data = params_.data() + t.offset;
        graph_.mutable_initializer()->rbegin()->mutable_float_data()->Add(data, data + t.count);
        return t.name;
    }

    // The layer's own op, then its activation: the op's output is the layer's
    // name, or "<name>.linear" when an activation follows.
    std::string pre_activation_name(const model::Layer &l) const {
        return l.activation == model::Activation::none ? l.name : l.name + ".linear";
    }

    void activation(const model::Layer &l) {
        switch (l.activation) {
            case model::Activation::none: return;
            case model::Activation::relu: node("Relu", {x_}, l.name); return;
            case model::Activation::tanh: node("Tanh", {x_}, l.name); return;
            case model::Activation::sigmoid: node("Sigmoid", {x_}, l.name); return;
        }
    }

    // A layer that needs rows and columns: [N, O] from a dense layer becomes [N, O, 1, 1] first.
    onnx::NodeProto &spatial(const model::Layer &l, const std::string &op, std::vector<std::string> params,
                             const std::string &out) {
        if (flat_) {
            add_initializer(graph_, l.name + ".in_shape", onnx::TensorProto::INT64, {4});
            for (int64_t d : {int64_t(0), l.in.channels, int64_t(1), int64_t(1)})
                graph_.mutable_initializer()->rbegin()->add_int64_data(d);
            node("Reshape", {x_, l.name + ".in_shape"}, l.name + ".in");
            flat_ = false;
        }
        params.insert(params.begin(), x_);
        return node(op, params, out);
    }

    void conv(const model::Layer &l) {
        const auto &c = l.spec_as<model::ConvSpec>();
        onnx::NodeProto &n = spatial(l, "Conv", {param(l.weight), param(l.bias)}, pre_activation_name(l));
        add_ints(n, "kernel_shape", {c.kernel, c.kernel});
        add_ints(n, "strides", {c.stride, c.stride});
        add_ints(n, "pads", {c.padding, c.padding, c.padding, c.padding});
        activation(l);
    }

    // Windows never reach past the input: no padding, rounding down (ONNX's default).
    void pool(const model::Layer &l, const std::string &op) {
        onnx::NodeProto &n = spatial(l, op, {}, l.name);
        const auto &p = l.spec_as<model::PoolSpec>();
        add_ints(n, "kernel_shape", {p.size, p.size});
        add_ints(n, "strides", {p.stride, p.stride});
    }

    // Evaluation mode: the running statistics. Works on [N, C, H, W] and on [N, C] alike.
    void batchnorm(const model::Layer &l) {
        onnx::NodeProto &n = node("BatchNormalization",
                                  {x_, param(l.weight), param(l.bias), param(l.running_mean), param(l.running_var)},
                                  pre_activation_name(l));
        add_float(n, "epsilon", float(l.spec_as<model::BatchNormSpec>().epsilon));
        activation(l);
    }

    // The input flattened in (channel, row, column) order, as the weight's columns are laid out.
    void dense(const model::Layer &l) {
        if (!flat_) {
            add_int(node("Flatten", {x_}, l.name + ".in"), "axis", 1);
            flat_ = true;
        }
        add_int(node("Gemm", {x_, param(l.weight), param(l.bias)}, pre_activation_name(l)), "transB", 1);
        activation(l);
    }

    onnx::GraphProto &graph_;
    const model::Network &net_;
    const std::vector<float> &params_;
    std::string x_;       // the tensor the op being added reads
    bool flat_ = false;   // whether x_ is [N, F]
    Tensor input_;                 // the normalized images
    std::vector<Tensor> tensors_;  // each layer's output, in layer order
};

}  // namespace

std::string onnx_model(const model::Network &net, const std::vector<float> &params) {
    if (int64_t(params.size()) != net.param_count)
        throw std::invalid_argument(fmt::format("onnx_model: {} parameters for network '{}', which has {}",
                                                params.size(), net.name, net.param_count));
    onnx::ModelProto model;
    model.set_ir_version(kIrVersion);
    model.set_producer_name("kiln");
    model.set_doc_string(net.description);
    model.add_opset_import()->set_version(kOpset);  // the default domain, ai.onnx
    onnx::StringStringEntryProto *hash = model.add_metadata_props();
    hash->set_key("kiln.network_hash");
    hash->set_value(net.hash());

    onnx::GraphProto &graph = *model.mutable_graph();
    graph.set_name(net.name);
    GraphBuilder builder(graph, net, params);
    builder.input("pixels");
    for (const model::Layer &l : net.layers) builder.layer(l);
    builder.output("scores");
    return model.SerializeAsString();
}

void write_onnx(const std::string &path, const model::Network &net, const std::vector<float> &params) {
    const std::string bytes = onnx_model(net, params);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (out) out.write(bytes.data(), std::streamsize(bytes.size()));
    if (out) out.close();
    if (!out) throw std::runtime_error(fmt::format("{}: error: cannot write: {}", path, std::strerror(errno)));
}

}  // namespace kiln
