// The `kiln export` subcommand: its flags and its body (main.cpp registers it).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace kiln {

struct ExportArgs {
    std::string network, checkpoint, onnx;
};
CLI::App *add_export_command(CLI::App &app, ExportArgs &a);
// Writes the checkpoint's network as an ONNX model (onnx_export.h).
int cmd_export(const ExportArgs &a);

}  // namespace kiln
