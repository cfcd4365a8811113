// Networks named by a TOML file instead of a name compiled in: generated and
// compiled ahead of time on first use (kiln's Halide generator, then the system
// compiler) into a shared library in a cache, and loaded with dlopen. A second
// use loads the cached library.
//
// The cache is $KILN_CACHE, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln. An
// entry is a folder <network name>-<key hash> holding lib.so and key.txt; the key
// is the network file's text, its schedule file's text, kiln's version, a hash
// of the generator program and the CPU's feature flags, so an edit, another
// schedule, another kiln or another machine makes another entry and a stale
// library is never loaded. An entry is built in a temporary folder and renamed
// into place whole; a damaged entry is rebuilt.
//
// The generator is $KILN_GENERATOR, else kiln_generator beside the running
// program (PREFIX/bin of an installed kiln), else the build's own. The libraries
// are compiled without a Halide runtime: they use the program's, which it must
// export to them (ENABLE_EXPORTS, as the kiln command does).
#pragma once

#include <ostream>
#include <stdexcept>
#include <string>

#include "registry.h"

namespace kiln {

// A network file that cannot be compiled or loaded (generator or compiler
// failure, an unwritable cache): one line naming the file.
struct CompileError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Whether a command's NETWORK argument is a file (ends in .toml or holds a '/')
// rather than the name of a network compiled in.
bool names_a_file(const std::string &network);

// The schedule settings that apply to `network_file` when none is given: the
// file <stem>.schedule.toml beside it, if it exists, else "".
std::string schedule_beside(const std::string &network_file);

// The pipelines of `network_file` scheduled by `schedule_file` ("" for the
// defaults): loaded from the cache, or generated, compiled and cached first,
// printing one progress line on `progress` while it compiles. The entry lives
// as long as the process. Throws model::InputError for a bad network file (before
// anything is compiled), CompileError otherwise.
const CompiledNetwork &load_network_file(const std::string &network_file, const std::string &schedule_file,
                                         std::ostream &progress);

// The cache folder in use.
std::string cache_dir();

}  // namespace kiln
