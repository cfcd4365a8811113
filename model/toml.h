// toml++, included the one way every Kiln source includes it.
#pragma once

// toml++ 3.3 asserts (and, built by clang with NDEBUG, assumes) things about its input
// that malformed files break, e.g. "[.a]" or "x = [}]", before its parser goes on to
// refuse them with a parse_error anyway (as GCC release builds, where these checks are
// no-ops, show). Make them no-ops in every build, so that bad input can neither abort
// nor reach undefined behaviour. toml++'s other undefined behaviour is kept away by
// the text check in parse.cpp.
#include <toml++/impl/preprocessor.h>
#undef TOML_ASSERT_ASSUME
#define TOML_ASSERT_ASSUME(expr) static_assert(true)
#include <toml++/toml.h>
