#include "network_cache.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "model/network.h"
#include "schedules/settings.h"

extern char **environ;

#ifndef KILN_VERSION
#define KILN_VERSION "unknown"
#endif
#ifndef KILN_GENERATOR_PATH
#define KILN_GENERATOR_PATH "kiln_generator"
#endif

namespace kiln {
namespace {

namespace fs = std::filesystem;

// The pipelines each entry's library holds, as the generator names them.
constexpr const char *kPipelines[] = {"forward", "train", "features"};
constexpr const char *kGenerators[] = {"kiln_forward", "kiln_train", "kiln_features"};

std::string read_text(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw CompileError(path + ": error: cannot read: " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

uint64_t fnv1a(const std::string &text) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char ch : text) h = (h ^ ch) * 0x100000001b3ull;
    return h;
}

// $KILN_GENERATOR, else kiln_generator beside the running program (an installed
// kiln: both in PREFIX/bin), else the generator of the build this was built in.
std::string generator_path() {
    const char *env = std::getenv("KILN_GENERATOR");
    if (env && *env) return env;
    std::error_code ec;
    const fs::path beside = fs::read_symlink("/proc/self/exe", ec).parent_path() / "kiln_generator";
    if (!ec && fs::is_regular_file(beside, ec)) return beside.string();
    return KILN_GENERATOR_PATH;
}

// The CPU's feature flags: the pipelines are compiled for this machine (host).
std::string cpu_flags() {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("flags", 0) == 0) return line;
    return "unknown";
}

// Everything a compiled library depends on, as text.
std::string cache_key(const std::string &network_text, const std::string &schedule_text) {
    std::string generator_bytes;
    try {
        generator_bytes = read_text(generator_path());
    } catch (const CompileError &) {
        throw CompileError(generator_path() +
                           ": error: kiln's Halide generator is missing, needed to compile network files (set "
                           "KILN_GENERATOR to its path, or rebuild kiln)");
    }
    return fmt::format("kiln {}\ngenerator {:016x}\ntarget host\n{}\n[network]\n{}\n[schedule]\n{}", KILN_VERSION,
                       fnv1a(generator_bytes), cpu_flags(), network_text, schedule_text);
}

// Runs argv, its output to `log`; "" on success, else the first line it printed
// (or how it ended).
std::string run_logged(const std::vector<std::string> &argv, const std::string &log) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<char *> args;
    for (const std::string &a : argv) args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    const int spawned = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) return fmt::format("cannot run {}: {}", argv[0], std::strerror(spawned));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);)
        if (line.find_first_not_of(" \t") != std::string::npos) return line;
    return WIFSIGNALED(status) ? fmt::format("{} was killed by signal {}", argv[0], WTERMSIG(status))
                               : fmt::format("{} exited with status {}", argv[0], WEXITSTATUS(status));
}

// Generates the three pipelines and links them into `dir`/lib.so.
void build_entry(const std::string &network_file, const std::string &schedule_file, const fs::path &dir) {
    for (int i = 0; i < 3; i++) {
        std::vector<std::string> argv = {generator_path(), "-g", kGenerators[i], "-f", std::string("kiln_file_") + kPipelines[i],
                                         "-n", kPipelines[i], "-o", dir.string(), "-e", "object",
                                         "target=host-no_runtime", "network=" + network_file};
        if (!schedule_file.empty()) argv.push_back("schedule=" + schedule_file);
        const std::string failed = run_logged(argv, (dir / "generator.log").string());
        if (!failed.empty()) {
            // The generator's own error already names the network or schedule file.
            if (failed.find(": error: ") != std::string::npos) throw model::InputError(failed);
            throw CompileError(fmt::format("{}: error: generating its {} pipeline failed: {}", network_file,
                                           kPipelines[i], failed));
        }
    }
    const char *cxx = std::getenv("CXX");
    std::vector<std::string> link = {cxx && *cxx ? cxx : "c++", "-shared", "-o", (dir / "lib.so").string()};
    for (const char *p : kPipelines) link.push_back((dir / (std::string(p) + ".o")).string());
    const std::string failed = run_logged(link, (dir / "link.log").string());
    if (!failed.empty()) throw CompileError(fmt::format("{}: error: linking its pipelines failed: {}", network_file, failed));
}

// What a loaded entry keeps alive: its text and its library.
struct Loaded {
    std::string file, toml;
    void *library = nullptr;
    CompiledNetwork entry{};
};

std::mutex loaded_mutex;
std::deque<Loaded> loaded;  // never unloaded: CompiledModels refer to their entries

// dlopen's entry, or nullptr (with `why`) if the library is missing or damaged.
const CompiledNetwork *open_entry(const fs::path &dir, const std::string &key, const std::string &file,
                                  const std::string &toml, std::string &why) {
    std::error_code ec;
    if (!fs::exists(dir / "lib.so", ec)) return nullptr;
    std::string stored;
    try {
        stored = read_text((dir / "key.txt").string());
    } catch (const CompileError &) {
    }
    if (stored != key) {
        why = "its key differs";
        return nullptr;
    }
    void *library = dlopen((dir / "lib.so").c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        why = dlerror();
        return nullptr;
    }
    void *symbols[3];
    for (int i = 0; i < 3; i++)
        if (!(symbols[i] = dlsym(library, (std::string("kiln_file_") + kPipelines[i]).c_str()))) {
            why = dlerror();
            dlclose(library);
            return nullptr;
        }
    Loaded &l = loaded.emplace_back();
    l.file = file;
    l.toml = toml;
    l.library = library;
    l.entry.file = l.file.c_str();
    l.entry.toml = l.toml.c_str();
    l.entry.forward = reinterpret_cast<decltype(l.entry.forward)>(symbols[0]);
    l.entry.train = reinterpret_cast<decltype(l.entry.train)>(symbols[1]);
    l.entry.features = reinterpret_cast<decltype(l.entry.features)>(symbols[2]);
    return &l.entry;
}

std::string message_of(const std::error_code &ec) { return ec.message(); }

}  // namespace

bool names_a_file(const std::string &network) {
    return network.find('/') != std::string::npos ||
           (network.size() > 5 && network.compare(network.size() - 5, 5, ".toml") == 0);
}

std::string schedule_beside(const std::string &network_file) {
    fs::path p(network_file);
    const fs::path beside = p.parent_path() / (p.stem().string() + ".schedule.toml");
    std::error_code ec;
    return fs::exists(beside, ec) ? beside.string() : std::string();
}

std::string cache_dir() {
    if (const char *env = std::getenv("KILN_CACHE"); env && *env) return env;
    if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/kiln";
    const char *home = std::getenv("HOME");
    return std::string(home && *home ? home : "/tmp") + "/.cache/kiln";
}

const CompiledNetwork &load_network_file(const std::string &network_file, const std::string &schedule_file,
                                         std::ostream &progress) {
    // Bad input is reported before anything is compiled.
    const model::Network net = model::load_network(network_file);
    const std::string toml = read_text(network_file);
    const std::string schedule_text = schedule_file.empty() ? std::string() : read_text(schedule_file);
    // The whole file is checked here; the generator takes [schedule] and the
    // section of this machine's target family (host), an autoscheduler included.
    schedules::load_schedule_file(schedule_file, &net);
    const std::string key = cache_key(toml, schedule_text);
    const fs::path dir = fs::path(cache_dir()) / fmt::format("{}-{:016x}", net.name, fnv1a(key));

    std::lock_guard<std::mutex> lock(loaded_mutex);
    std::string why;
    if (const CompiledNetwork *entry = open_entry(dir, key, network_file, toml, why)) return *entry;

    const auto start = std::chrono::steady_clock::now();
    progress << fmt::format("compiling {}: forward, train, features ... ", network_file) << std::flush;
    std::error_code ec;
    fs::create_directories(cache_dir(), ec);
    if (ec) throw CompileError(fmt::format("{}: error: cannot create the cache folder: {} (set KILN_CACHE)", cache_dir(),
                                           message_of(ec)));
    const fs::path tmp = dir.string() + fmt::format(".tmp-{}", getpid());
    fs::remove_all(tmp, ec);
    if (!fs::create_directory(tmp, ec) || ec)
        throw CompileError(fmt::format("{}: error: cannot write in the cache folder: {} (set KILN_CACHE)", cache_dir(),
                                       ec ? message_of(ec) : "it exists"));
    struct Cleanup {
        fs::path path;
        ~Cleanup() {
            std::error_code ignored;
            fs::remove_all(path, ignored);
        }
    } cleanup{tmp};
    try {
        build_entry(network_file, schedule_file, tmp);
    } catch (...) {
        progress << "failed\n" << std::flush;
        throw;
    }
    {
        std::ofstream key_file(tmp / "key.txt", std::ios::binary);
        key_file << key;
        if (!key_file.flush())
            throw CompileError(fmt::format("{}: error: cannot write in the cache folder (disk full?)", cache_dir()));
    }
    // Into place whole: an old or damaged entry goes first; if another process
    // put the same entry there meanwhile, either is the same library.
    fs::remove_all(dir, ec);
    fs::rename(tmp, dir, ec);
    if (ec && !fs::exists(dir / "lib.so"))
        throw CompileError(fmt::format("{}: error: cannot write in the cache folder: {}", cache_dir(), message_of(ec)));
    progress << fmt::format("{:.1f} s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count())
             << std::flush;
    if (const CompiledNetwork *entry = open_entry(dir, key, network_file, toml, why)) return *entry;
    throw CompileError(fmt::format("{}: error: the library just compiled for it does not load: {}", network_file, why));
}

}  // namespace kiln
