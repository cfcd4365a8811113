// `kiln export` and `kiln predict` (see export_predict_cli.h).
#include "export_predict_cli.h"

#include <iostream>

#include <fmt/format.h>

#include "checkpoint.h"
#include "compiled.h"
#include "onnx_export.h"
#include "predict.h"

namespace kiln {

CLI::App *add_export_command(CLI::App &app, ExportArgs &a) {
    CLI::App *cmd = app.add_subcommand("export", "Write a checkpoint's network as an ONNX model (opset 13)");
    cmd->add_option("NETWORK", a.network, "Name of a compiled network")->required();
    cmd->add_option("--checkpoint", a.checkpoint, "A checkpoint written by `kiln train`")->required();
    cmd->add_option("--onnx", a.onnx, "The ONNX file to write")->required();
    return cmd;
}

int cmd_export(const ExportArgs &a) {
    const CompiledModel model = find_model(a.network);
    const model::Network &net = model.net();
    const Checkpoint ck = load_checkpoint(a.checkpoint, net);
    write_onnx(a.onnx, net, ck.params);
    fmt::print("{}: {} after epoch {}, ONNX opset 13: input \"pixels\" [N, {}, {}, {}] in [0, 1], "
               "output \"scores\" [N, {}]\n",
               a.onnx, net.name, ck.epoch, net.input.channels, net.input.height, net.input.width,
               net.input.classes);
    return 0;
}

CLI::App *add_predict_command(CLI::App &app, PredictArgs &a) {
    CLI::App *cmd = app.add_subcommand("predict", "Classify digits in PNG or JPEG files of any size");
    cmd->add_option("NETWORK", a.network, "Name of a compiled network")->required();
    cmd->add_option("--checkpoint", a.checkpoint, "A checkpoint written by `kiln train`")->required();
    cmd->add_option("IMAGES", a.images, "PNG or JPEG files, each one digit")->required();
    cmd->add_flag("--json", a.json, "One JSON object per image: file, digit, probabilities");
    return cmd;
}

int cmd_predict(const PredictArgs &a) {
    const CompiledModel model = find_model(a.network);
    const Checkpoint ck = load_checkpoint(a.checkpoint, model.net());
    const Predictions p = predict_files(model, ck.params, a.images, std::cerr);
    print_predictions(p.classified, a.json, std::cout);
    return p.failed > 0 ? 1 : 0;
}

}  // namespace kiln
