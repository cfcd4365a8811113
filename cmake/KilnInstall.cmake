# cmake --install BUILD --prefix P installs
#   P/bin                 kiln and kiln-tune (with KILN_BUILD_CLI), kiln_generator
#   P/lib                 the libraries a program links: Kiln::runtime (kiln_core),
#                         Kiln::training, Kiln::predict and what they link in turn
#   P/include/kiln        their headers (those runtime/*/CMakeLists.txt name with
#                         kiln_install_headers, model/, schedules/settings.h)
#   P/lib/cmake/Kiln      KilnConfig.cmake: find_package(Kiln) gives those targets,
#                         Kiln::generator and kiln_add_network() (KilnNetwork.cmake)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(kiln_installed_libraries kiln_core kiln_training kiln_predict kiln_model kiln_schedule_settings kiln_toml)
set_target_properties(kiln_model PROPERTIES EXPORT_NAME model)
set_target_properties(kiln_schedule_settings PROPERTIES EXPORT_NAME schedule_settings)
set_target_properties(kiln_toml PROPERTIES EXPORT_NAME toml)
set_target_properties(kiln_generator PROPERTIES EXPORT_NAME generator)

# Include folders in the source or build tree hold in the build only; installed,
# the headers are in include/kiln (and include, for <kiln/compiled.h>).
foreach (target IN LISTS kiln_installed_libraries)
    get_target_property(dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
    if (NOT dirs)
        continue()
    endif ()
    set(fixed "")
    foreach (dir IN LISTS dirs)
        string(FIND "${dir}/" "${PROJECT_SOURCE_DIR}/" in_source)
        string(FIND "${dir}/" "${PROJECT_BINARY_DIR}/" in_build)
        if (in_source EQUAL 0 OR in_build EQUAL 0)
            list(APPEND fixed "$<BUILD_INTERFACE:${dir}>")
        else ()
            list(APPEND fixed "${dir}")
        endif ()
    endforeach ()
    set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${fixed}")
endforeach ()

set(kiln_include_dir ${CMAKE_INSTALL_INCLUDEDIR}/kiln)
install(TARGETS ${kiln_installed_libraries} EXPORT KilnTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${kiln_include_dir} ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS kiln_generator EXPORT KilnTargets RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
get_property(kiln_installed_headers GLOBAL PROPERTY KILN_INSTALLED_HEADERS)
install(FILES ${kiln_installed_headers} DESTINATION ${kiln_include_dir})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/model/ DESTINATION ${kiln_include_dir}/model FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_SOURCE_DIR}/schedules/settings.h DESTINATION ${kiln_include_dir}/schedules)
if (KILN_BUILD_CLI)
    # kiln finds kiln_generator (network files compiled on demand) and kiln-tune beside itself.
    install(TARGETS kiln kiln-tune RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif ()

set(kiln_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/Kiln)
install(EXPORT KilnTargets NAMESPACE Kiln:: DESTINATION ${kiln_cmake_dir})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/KilnConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/cmake/KilnConfig.cmake
                              INSTALL_DESTINATION ${kiln_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/KilnConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/KilnConfig.cmake ${PROJECT_BINARY_DIR}/cmake/KilnConfigVersion.cmake
              ${CMAKE_CURRENT_LIST_DIR}/KilnNetwork.cmake ${CMAKE_CURRENT_LIST_DIR}/embed_file.cmake
              ${CMAKE_CURRENT_LIST_DIR}/check_targets.cpp
        DESTINATION ${kiln_cmake_dir})
