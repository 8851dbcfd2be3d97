# The portable binary (PREVIEWDB_PORTABLE=ON; scripts/build-portable.sh sets it up): the same
# objects as `previewdb` (the previewdb_core archive and main.cpp), linked against static
# archives only, so that it needs nothing from the system but glibc. docs/PACKAGING.md says why
# each library comes from where.
#   target previewdb-portable  -> <build>/portable/previewdb
#   target portable-tarball    -> <build>/dist/previewdb-<version>-linux-x64.tar.gz (stripped)

set(PREVIEWDB_DEPS_PREFIX "" CACHE PATH
    "static libpq, libcurl, libgit2 and cpp-httplib built from Debian sources (scripts/build-portable.sh)")
if(NOT EXISTS "${PREVIEWDB_DEPS_PREFIX}/lib/libpq.a" OR NOT EXISTS "${PREVIEWDB_DEPS_PREFIX}/lib/libcurl.a"
   OR NOT EXISTS "${PREVIEWDB_DEPS_PREFIX}/lib/libgit2.a"
   OR NOT EXISTS "${PREVIEWDB_DEPS_PREFIX}/lib/libcpp-httplib.a")
  message(FATAL_ERROR "PREVIEWDB_PORTABLE needs PREVIEWDB_DEPS_PREFIX with static libpq, libcurl, "
                      "libgit2 and cpp-httplib (got '${PREVIEWDB_DEPS_PREFIX}'): run scripts/build-portable.sh, "
                      "which builds them and configures this option")
endif()

# Built from Debian sources with only the features previewdb uses (no Kerberos, LDAP, SSH...).
set(_deps ${PREVIEWDB_DEPS_PREFIX}/lib)
set(PREVIEWDB_PORTABLE_ARCHIVES
    ${_deps}/libcpp-httplib.a ${_deps}/libgit2.a ${_deps}/libcurl.a ${_deps}/libpq.a
    ${_deps}/libpgcommon_shlib.a ${_deps}/libpgport_shlib.a)
# Debian's own static archives (the -dev packages of scripts/install-deps.sh).
foreach(_name http_parser pg_query zstd brotlienc brotlidec brotlicommon ssl crypto z)
  find_library(PREVIEWDB_STATIC_${_name} NAMES lib${_name}.a REQUIRED)
  list(APPEND PREVIEWDB_PORTABLE_ARCHIVES ${PREVIEWDB_STATIC_${_name}})
endforeach()

add_executable(previewdb-portable src/main.cpp cmake/portable/glibc_compat.c)
add_dependencies(previewdb-portable previewdb_core)
set_target_properties(previewdb-portable PROPERTIES OUTPUT_NAME previewdb
                      RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/portable)
# previewdb_core's include dirs and definitions, but not its (shared) link libraries.
target_include_directories(previewdb-portable PRIVATE
                           $<TARGET_PROPERTY:previewdb_core,INTERFACE_INCLUDE_DIRECTORIES>)
target_compile_definitions(previewdb-portable PRIVATE
                           $<TARGET_PROPERTY:previewdb_core,INTERFACE_COMPILE_DEFINITIONS>)
target_link_options(previewdb-portable PRIVATE -static-libstdc++ -static-libgcc
                    ${PREVIEWDB_EXE_LINK_OPTIONS})
# glibc stays shared (its NSS and dlopen need it); everything else is an archive.
target_link_libraries(previewdb-portable PRIVATE $<TARGET_FILE:previewdb_core>
                      ${PREVIEWDB_PORTABLE_ARCHIVES} Threads::Threads dl m rt)

set(PREVIEWDB_TARBALL_NAME previewdb-${PROJECT_VERSION}-linux-x64)
set(PREVIEWDB_TARBALL ${CMAKE_BINARY_DIR}/dist/${PREVIEWDB_TARBALL_NAME}.tar.gz)
add_custom_command(
  OUTPUT ${PREVIEWDB_TARBALL}
  COMMAND ${CMAKE_COMMAND} -DBINARY=$<TARGET_FILE:previewdb-portable>
          -DNAME=${PREVIEWDB_TARBALL_NAME} -DOUT=${PREVIEWDB_TARBALL}
          -DSOURCE_DIR=${PROJECT_SOURCE_DIR} -P ${PROJECT_SOURCE_DIR}/cmake/pack_portable.cmake
  DEPENDS previewdb-portable ${PROJECT_SOURCE_DIR}/cmake/pack_portable.cmake
          ${PROJECT_SOURCE_DIR}/docs/PACKAGING.md
  COMMENT "Packing ${PREVIEWDB_TARBALL_NAME}.tar.gz")
add_custom_target(portable-tarball ALL DEPENDS ${PREVIEWDB_TARBALL})
