# kiln_add_network(NAME <id> TOML <file>)
#
# Builds a network's ahead-of-time compiled pipelines, kiln_<id>_forward,
# kiln_<id>_train and kiln_<id>_features (every layer's output, for inspection),
# and the static library kiln_<id>_network: the pipelines, the TOML text they were
# built from (so that the runtime reads exactly the description the pipelines
# were compiled for) and, declared in its header kiln_<id>_network.h,
#   extern const kiln::CompiledNetwork kiln_<id>_network;
# which kiln::CompiledModel (compiled.h) takes. It links Kiln::runtime. A
# program's networks share one Halide runtime. In kiln's own build, call
# kiln_networks_library() once after the last network to gather them into the
# table `kiln_networks`.

# kiln_network_files(<var>): every network file, networks/*.toml and the study's
# family networks/study/*.toml (but its plan, study.toml), re-globbed at build time.
function(kiln_network_files var)
    file(GLOB files CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/networks/*.toml ${PROJECT_SOURCE_DIR}/networks/study/*.toml)
    list(FILTER files EXCLUDE REGEX "/study/study\\.toml$")
    set(${var} ${files} PARENT_SCOPE)
endfunction()

# The CPU targets every pipeline is compiled for, best first: at run time the
# first one the CPU supports runs (Halide's multi-target dispatch), so one build
# runs on AVX-512, AVX2 and older x86-64 machines. "host" alone builds for this
# machine only (a third of the generating time, for development).
if (CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
    set(kiln_default_targets
        "x86-64-linux-sse41-avx-f16c-fma-avx2-avx512-avx512_skylake;x86-64-linux-sse41-avx-f16c-fma-avx2;x86-64-linux-sse41")
else ()
    set(kiln_default_targets host)
endif ()
set(KILN_TARGETS "${kiln_default_targets}" CACHE STRING
    "Halide targets the pipelines are compiled for, best first (a list; host: this machine only)")

# A target string Halide does not know fails here, once per value, rather than in
# the middle of the build: Halide itself checks each (a small program, built and run).
if (NOT KILN_TARGETS STREQUAL KILN_TARGETS_CHECKED)
    try_run(run_result compile_result ${CMAKE_BINARY_DIR}/kiln_check_targets
            ${CMAKE_CURRENT_LIST_DIR}/check_targets.cpp
            CMAKE_FLAGS -DCMAKE_CXX_STANDARD=17
            LINK_LIBRARIES Halide::Halide
            COMPILE_OUTPUT_VARIABLE compile_output
            RUN_OUTPUT_VARIABLE bad_target
            ARGS ${KILN_TARGETS})
    if (NOT compile_result)
        message(FATAL_ERROR "cannot build the check of KILN_TARGETS against Halide:\n${compile_output}")
    elseif (NOT run_result EQUAL 0)
        string(STRIP "${bad_target}" bad_target)
        message(FATAL_ERROR "KILN_TARGETS: error: ${bad_target} (KILN_TARGETS is \"${KILN_TARGETS}\", "
                            "set with -DKILN_TARGETS=... or in CMakeCache.txt)")
    endif ()
    set(KILN_TARGETS_CHECKED "${KILN_TARGETS}" CACHE INTERNAL "KILN_TARGETS as last checked against Halide")
endif ()

# kiln_add_pipeline(LIBRARY <name> GENERATOR <generator> TOML <file> [TARGETS <target>...])
# One compiled pipeline of a network: a static library with function <name>,
# compiled for KILN_TARGETS (or TARGETS). If schedules/<file stem>.toml exists,
# the generator reads it: each target's variant takes [schedule] and the section
# of its target family, an `autoscheduler` there included (the generator runs it).
function(kiln_add_pipeline)
    cmake_parse_arguments(ARG "" "LIBRARY;GENERATOR;TOML" "TARGETS" ${ARGN})
    if (NOT ARG_TARGETS)
        set(ARG_TARGETS ${KILN_TARGETS})
    endif ()
    get_filename_component(toml "${ARG_TOML}" ABSOLUTE)
    get_filename_component(stem "${toml}" NAME_WE)
    get_property(runtime GLOBAL PROPERTY KILN_HALIDE_RUNTIME)
    set(use_runtime "")
    if (runtime)
        set(use_runtime USE_RUNTIME ${runtime})
    endif ()
    set(schedule_file ${PROJECT_SOURCE_DIR}/schedules/${stem}.toml)
    set(schedule_param "")
    set(depends ${toml})
    if (EXISTS ${schedule_file})
        set(schedule_param schedule=${schedule_file})
        list(APPEND depends ${schedule_file})
    endif ()
    add_halide_library(${ARG_LIBRARY} FROM kiln_generator
                       GENERATOR ${ARG_GENERATOR}
                       FUNCTION_NAME ${ARG_LIBRARY}
                       TARGETS ${ARG_TARGETS}
                       ${use_runtime}
                       PARAMS network=${toml} ${schedule_param})
    # Halide 14's add_halide_library has no DEPENDS: make the generator step
    # depend on the network and schedule files, so editing one regenerates
    # exactly that network.
    add_custom_command(OUTPUT ${ARG_LIBRARY}.h APPEND DEPENDS ${depends})
    if (NOT runtime)  # the first pipeline's runtime serves them all
        set_property(GLOBAL PROPERTY KILN_HALIDE_RUNTIME ${ARG_LIBRARY}.runtime)
    endif ()
endfunction()

function(kiln_add_network)
    cmake_parse_arguments(ARG "" "NAME;TOML" "" ${ARGN})
    if (NOT ARG_NAME OR NOT ARG_TOML OR ARG_UNPARSED_ARGUMENTS)
        message(FATAL_ERROR "kiln_add_network(NAME <id> TOML <file>): got ${ARGV}")
    endif ()
    if (NOT ARG_NAME MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
        message(FATAL_ERROR "kiln_add_network: NAME must be a C identifier, got '${ARG_NAME}'")
    endif ()
    get_filename_component(toml "${ARG_TOML}" ABSOLUTE)
    foreach (kind IN ITEMS forward train features)
        kiln_add_pipeline(LIBRARY kiln_${ARG_NAME}_${kind} GENERATOR kiln_${kind} TOML ${toml})
    endforeach ()
    # The name the runtime gives the file in messages: its path under networks/
    # in kiln's build (e.g. study/conv2-dense1.toml), else its file name.
    file(RELATIVE_PATH file_name ${PROJECT_SOURCE_DIR}/networks ${toml})
    if (file_name MATCHES "^\\.\\./")
        get_filename_component(file_name "${toml}" NAME)
    endif ()
    _kiln_network_library(${ARG_NAME} ${toml} ${file_name})
    set_property(GLOBAL APPEND PROPERTY KILN_NETWORK_LIBRARIES kiln_${ARG_NAME}_network)
    set_property(GLOBAL APPEND PROPERTY KILN_NETWORK_NAMES ${ARG_NAME})
    set_property(GLOBAL APPEND PROPERTY KILN_NETWORK_FILES ${file_name})
endfunction()

# The library kiln_<id>_network: the network's three pipelines, its TOML text
# embedded as kiln_<id>_toml, and the CompiledNetwork kiln_<id>_network naming
# them all, declared in kiln_<id>_network.h.
function(_kiln_network_library id toml file_name)
    set(network kiln_${id}_network)
    set(embedded ${CMAKE_CURRENT_BINARY_DIR}/kiln_${id}_toml.cpp)
    set(embed_script ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/embed_file.cmake)
    add_custom_command(OUTPUT ${embedded}
                       COMMAND ${CMAKE_COMMAND} -DINPUT=${toml} -DOUTPUT=${embedded}
                               -DSYMBOL=kiln_${id}_toml -P ${embed_script}
                       DEPENDS ${toml} ${embed_script}
                       VERBATIM)
    set(generated "// Generated by kiln_add_network: the network ${id}, compiled from ${file_name}.")
    file(CONFIGURE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/${network}.h CONTENT
"${generated}
#pragma once
#include \"registry.h\"
extern const kiln::CompiledNetwork ${network};
")
    file(CONFIGURE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/${network}.cpp CONTENT
"${generated}
#include \"${network}.h\"
#include \"kiln_${id}_forward.h\"
#include \"kiln_${id}_train.h\"
#include \"kiln_${id}_features.h\"
extern const char kiln_${id}_toml[];
const kiln::CompiledNetwork ${network} = {\"${file_name}\", kiln_${id}_toml, kiln_${id}_forward, kiln_${id}_train,
                                          kiln_${id}_features};
")
    add_library(${network} STATIC ${CMAKE_CURRENT_BINARY_DIR}/${network}.cpp ${embedded})
    target_include_directories(${network} PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_BINARY_DIR}>)
    # Kiln::runtime before the pipelines: it calls into the Halide runtime they bring.
    target_link_libraries(${network} PUBLIC Kiln::runtime kiln_${id}_forward kiln_${id}_train kiln_${id}_features)
endfunction()

# The table of compiled networks (runtime/core/registry.h) and the library holding them.
function(kiln_networks_library)
    get_property(names GLOBAL PROPERTY KILN_NETWORK_NAMES)
    get_property(libraries GLOBAL PROPERTY KILN_NETWORK_LIBRARIES)
    get_property(files GLOBAL PROPERTY KILN_NETWORK_FILES)
    set(decls "")
    set(rows "")
    foreach (name file IN ZIP_LISTS names files)
        foreach (kind IN ITEMS forward train features)
            string(APPEND decls "#include \"kiln_${name}_${kind}.h\"\n")
        endforeach ()
        string(APPEND decls "extern const char kiln_${name}_toml[];\n")
        string(APPEND rows "    {\"${file}\", kiln_${name}_toml, kiln_${name}_forward, kiln_${name}_train, kiln_${name}_features},\n")
    endforeach ()
    set(table ${CMAKE_CURRENT_BINARY_DIR}/kiln_networks.cpp)
    file(CONFIGURE OUTPUT ${table} CONTENT
"// Generated by cmake/KilnNetwork.cmake: the networks compiled into this build.
#include \"registry.h\"
${decls}
namespace kiln {
const CompiledNetwork compiled_networks[] = {
${rows}};
const size_t compiled_network_count = sizeof(compiled_networks) / sizeof(compiled_networks[0]);
}  // namespace kiln
")
    add_library(kiln_networks STATIC ${table})
    target_include_directories(kiln_networks PUBLIC ${PROJECT_SOURCE_DIR}/runtime)
    target_link_libraries(kiln_networks PUBLIC ${libraries})
endfunction()
