// The IDX data loader: MNIST's image and label files (http://yann.lecun.com/exdb/mnist/).
// An IDX file is a big-endian header (a magic number whose low byte is the
// dimension count, then one 32-bit size per dimension) followed by the payload.
// Only unsigned-byte files are read: 3 dimensions for images, 1 for labels.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln {

// A bad or unreadable data file: the message is one line, "FILE: error: ...".
struct DataError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Images row-major, one byte per pixel, exactly as in the file.
struct Dataset {
    int64_t count = 0, rows = 0, cols = 0;
    std::vector<uint8_t> images;  // count * rows * cols
    std::vector<uint8_t> labels;  // count, each below the class count
};

// Reads and checks an image file and its label file: magic numbers, dimensions,
// exact file lengths, matching counts, and every label below `classes`.
// Throws DataError; std::invalid_argument if classes < 1.
Dataset load_idx(const std::string &images_path, const std::string &labels_path,
                 int64_t classes);

// MNIST's files in `dir`: train-{images-idx3,labels-idx1}-ubyte when `train`,
// t10k-... otherwise; 10 classes.
Dataset load_mnist(const std::string &dir, bool train);

// The first n images and labels (for --limit-train); n >= count returns them all.
// Throws std::invalid_argument if n < 0.
Dataset take_first(const Dataset &data, int64_t n);

// Reads a whole regular file with one allocation and one read (MNIST's 47 MB of
// training images load far below 100 ms). Returns "" on success, otherwise why
// not ("cannot open: No such file or directory"): the caller names the file in
// its own error type. Also used by checkpoint.cpp.
std::string read_whole_file(const std::string &path, std::vector<uint8_t> &bytes);

}  // namespace kiln
