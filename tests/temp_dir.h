// A fresh directory under the system's temporary directory for one test, removed
// with its contents at the end.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace kiln::testing {

struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string &purpose) {
        static int made = 0;
        path = std::filesystem::temp_directory_path() /
               ("kiln-test-" + purpose + "-" + std::to_string(::getpid()) + "-" + std::to_string(made++));
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    std::string file(const std::string &name) const { return (path / name).string(); }
    // The names of the files in the directory, sorted.
    std::vector<std::string> entries() const {
        std::vector<std::string> names;
        for (const auto &e : std::filesystem::directory_iterator(path)) names.push_back(e.path().filename().string());
        std::sort(names.begin(), names.end());
        return names;
    }
};

}  // namespace kiln::testing
