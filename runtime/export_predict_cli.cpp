// `kiln export` (see export_predict_cli.h).
#include "export_predict_cli.h"

#include <fmt/format.h>

#include "checkpoint.h"
#include "compiled.h"
#include "onnx_export.h"

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

}  // namespace kiln
