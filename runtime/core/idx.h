// The IDX data loader: MNIST's image and label files (http://yann.lecun.com/exdb/mnist/).
// An IDX file is a big-endian header (a magic number whose low byte is the
// dimension count, then one 32-bit size per dimension) followed by the payload.
// Only unsigned-byte files are read: 3 dimensions for images, 1 for labels.
// A file may be gzipped (as MNIST and Fashion-MNIST are distributed): a file that
// starts with gzip's magic bytes is inflated with zlib first, and gzip's own
// checks (a complete stream, the CRC-32 and the length in its trailer, nothing
// after it) come before the IDX ones.
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
// t10k-... otherwise, each plain or with ".gz" appended (plain first when both
// are there); 10 classes. Fashion-MNIST's folder has the same names.
Dataset load_mnist(const std::string &dir, bool train);

// What a data folder holds, to name its classes in pictures.
struct DataSetInfo {
    std::string name;                      // "MNIST", "Fashion-MNIST", else the folder's name
    std::vector<std::string> class_names;  // one per class, in label order
};

// Identifies the data set in `dir` (the MNIST file names, as load_mnist):
//  - the name: a known data set (MNIST, Fashion-MNIST) is recognised by the
//    CRC-32 of its decompressed t10k-labels-idx1-ubyte file; otherwise the
//    folder's name;
//  - the class names: from `dir`/classes.txt if there is one (UTF-8, one name
//    per line, exactly `classes` lines, none empty); else the known data set's;
//    else "0", "1", ... .
// Throws DataError (a bad classes.txt: "FILE:LINE: error: ..."; an unreadable
// label file as load_mnist would).
DataSetInfo identify_data(const std::string &dir, int64_t classes = 10);

// The first n images and labels (for --limit-train); n >= count returns them all.
// Throws std::invalid_argument if n < 0.
Dataset take_first(const Dataset &data, int64_t n);

// Reads a whole regular file with one allocation and one read (MNIST's 47 MB of
// training images load far below 100 ms). Returns "" on success, otherwise why
// not ("cannot open: No such file or directory"): the caller names the file in
// its own error type. Also used by checkpoint.cpp.
std::string read_whole_file(const std::string &path, std::vector<uint8_t> &bytes);

// The bytes of a whole gzip file (one or more members, as gunzip takes them),
// inflated with zlib. Returns "" on success, otherwise why not, in one line
// ("gzip stream truncated ...", "gzip CRC-32 mismatch ...", ...); the caller
// names the file.
std::string gunzip(const std::vector<uint8_t> &compressed, std::vector<uint8_t> &bytes);

}  // namespace kiln
