// digit-recognizer CHECKPOINT IMAGE...: the digit in each PNG or JPEG file, by the
// network digits.toml compiled into this program, with weights trained by
//   kiln train digits.toml --out runs/digits
// Prints "FILE: DIGIT (P%)" per image; a file that cannot be used gets one line on
// stderr and exit code 1.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <vector>

#include <kiln/checkpoint.h>
#include <kiln/compiled.h>
#include <kiln/digit_image.h>

#include "kiln_digits_network.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        std::cerr << "usage: digit-recognizer CHECKPOINT IMAGE...\n";
        return 2;
    }
    // Kiln changes nothing process-wide here; kiln::configure_process() (process.h)
    // would opt in to the kiln command's settings.
    try {
        const kiln::CompiledModel model(kiln_digits_network);
        const kiln::model::Network &net = model.net();
        const kiln::Checkpoint checkpoint = kiln::load_checkpoint(argv[1], net);
        int failed = 0;
        for (int i = 2; i < argc; i++) {
            try {
                const std::vector<float> image = kiln::mnist_style_input(kiln::read_gray_image(argv[i]), net.input, argv[i]);
                std::vector<float> scores(size_t(net.input.classes));
                model.forward(checkpoint.params.data(), image.data(), 1, scores.data());
                const auto best = std::max_element(scores.begin(), scores.end());
                double sum = 0;  // softmax: the top class's probability
                for (float s : scores) sum += std::exp(double(s - *best));
                std::printf("%s: %d (%.1f%%)\n", argv[i], int(best - scores.begin()), 100.0 / sum);
            } catch (const kiln::ImageError &e) {
                std::cerr << e.what() << "\n";
                failed++;
            }
        }
        return failed ? 1 : 0;
    } catch (const std::exception &e) {  // a missing or damaged checkpoint, another network's
        std::cerr << e.what() << "\n";
        return 1;
    }
}
