// The `kiln export` and `kiln predict` subcommands: their flags and their bodies
// (main.cpp registers them).
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace kiln {

struct ExportArgs {
    std::string network, checkpoint, onnx;
};
CLI::App *add_export_command(CLI::App &app, ExportArgs &a);
// Writes the checkpoint's network as an ONNX model (onnx_export.h).
int cmd_export(const ExportArgs &a);

struct PredictArgs {
    std::string network, checkpoint;
    std::vector<std::string> images;
    bool json = false;
};
CLI::App *add_predict_command(CLI::App &app, PredictArgs &a);
// Prints each image's digit; 1 if any image could not be used (the others are
// still classified).
int cmd_predict(const PredictArgs &a);

}  // namespace kiln
