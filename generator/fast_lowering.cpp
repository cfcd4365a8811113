// Halide 14 lowers a pipeline of many stages in time that grows with the cube of
// their number in three passes whose work Kiln's pipelines do not need. A
// training step has some 10 stages a layer: the ResNet of networks/resnet.toml
// (10 convolutions) spent 97 of its 100 s of lowering in the first below, and a
// plain stack of 17 convolutions with batchnorm some 110 s in the three.
//
//   fork_async_producers  forks the producers of stages scheduled `async()` onto
//                         tasks of their own; first it tightens every consume
//                         node, walking for each the whole statement below it.
//                         Without an async stage, nothing after it reads what
//                         it changes.
//   add_atomic_mutex      wraps the updates scheduled `atomic()` that need a
//                         mutex in one. Without an atomic update, nothing to do.
//   skip_stages           guards a stage with the condition under which its
//                         values are used, when that is not always. Kiln's
//                         stages are always used; skipping is an optimization
//                         only, so leaving the statement as it is is correct.
//
// This file, linked into the programs that lower pipelines (kiln_generator,
// kiln-tune), defines the three in their place: libHalide calls them through its
// PLT, so the executable's definitions are the ones bound. Each hands a pipeline
// that needs it (an async stage, an atomic update) to Halide's own pass, found
// with dlsym(RTLD_NEXT); KILN_HALIDE_PASSES=1 hands every pipeline to Halide's
// passes (tests/fast_lowering_test.sh compares the code both ways).
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "Halide.h"

namespace Halide::Internal {

using Env = std::map<std::string, Function>;

Stmt fork_async_producers(Stmt s, const Env &env);
Stmt add_atomic_mutex(Stmt s, const Env &env);
Stmt skip_stages(Stmt s, const std::vector<std::string> &order);

namespace {

// Halide's own definition of the function whose mangled name is `symbol`.
template<typename Pass>
Pass halide_pass(const char *symbol) {
    void *pass = dlsym(RTLD_NEXT, symbol);
    if (!pass) {
        std::fprintf(stderr, "kiln_generator: error: %s not found in libHalide (%s)\n", symbol, dlerror());
        std::abort();
    }
    return reinterpret_cast<Pass>(pass);
}

bool halide_passes_asked() {
    static const bool asked = std::getenv("KILN_HALIDE_PASSES") != nullptr;
    return asked;
}

bool any_async(const Env &env) {
    for (const auto &[name, f] : env)
        if (f.schedule().async()) return true;
    return false;
}

bool any_atomic(const Env &env) {
    for (const auto &[name, f] : env) {
        if (f.definition().defined() && f.definition().schedule().atomic()) return true;
        for (const Definition &update : f.updates())
            if (update.schedule().atomic()) return true;
    }
    return false;
}

}  // namespace

Stmt fork_async_producers(Stmt s, const Env &env) {
    using Pass = Stmt (*)(Stmt, const Env &);
    static const Pass halide = halide_pass<Pass>(
        "_ZN6Halide8Internal20fork_async_producersENS0_4StmtERKSt3mapINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE"
        "ENS0_8FunctionESt4lessIS8_ESaISt4pairIKS8_S9_EEE");
    return halide_passes_asked() || any_async(env) ? halide(s, env) : s;
}

Stmt add_atomic_mutex(Stmt s, const Env &env) {
    using Pass = Stmt (*)(Stmt, const Env &);
    static const Pass halide = halide_pass<Pass>(
        "_ZN6Halide8Internal16add_atomic_mutexENS0_4StmtERKSt3mapINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEENS0_"
        "8FunctionESt4lessIS8_ESaISt4pairIKS8_S9_EEE");
    return halide_passes_asked() || any_atomic(env) ? halide(s, env) : s;
}

Stmt skip_stages(Stmt s, const std::vector<std::string> &order) {
    using Pass = Stmt (*)(Stmt, const std::vector<std::string> &);
    static const Pass halide = halide_pass<Pass>(
        "_ZN6Halide8Internal11skip_stagesENS0_4StmtERKSt6vectorINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEESaIS8_"
        "EE");
    return halide_passes_asked() ? halide(s, order) : s;
}

}  // namespace Halide::Internal
