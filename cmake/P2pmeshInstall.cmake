# Installation and packaging (included by the top-level CMakeLists.txt).
#
# Install components:
#   p2pmesh  the CMake package for developers: libp2pmesh_core.a and the core's
#            headers (p2pmesh::core, include/p2pmesh/core/), libp2pmesh.a and
#            include/p2pmesh/ (p2pmesh::p2pmesh, not in a P2PMESH_CORE_ONLY
#            build), lib/cmake/p2pmesh/. find_package(p2pmesh) gives both.
#   runtime  bin/meshd, bin/mesh-peer, share/p2pmesh/web/ (the pages meshd
#            serves: an installed meshd finds them from <bin>/../share/p2pmesh/web),
#            lib/systemd/system/meshd.service, share/doc/p2pmesh/meshd.env (every
#            MESHD_* setting, commented: an example for /etc/default/meshd).
# `cmake --install <build>` installs both; `--component p2pmesh` the first.
# `cpack -G DEB` in the build folder makes p2pmesh_<version>_<arch>.deb of
# the runtime component (meshd, mesh-peer, web pages, meshd.service, meshd.env).
include(CMakePackageConfigHelpers)

# --- the CMake package -------------------------------------------------------
install(TARGETS p2pmesh_core EXPORT p2pmeshTargets COMPONENT p2pmesh
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/src/core/ COMPONENT p2pmesh
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/p2pmesh/core
  FILES_MATCHING PATTERN "*.hpp")

if(TARGET p2pmesh)
  set(P2PMESH_PACKAGE_NATIVE TRUE)
else()
  set(P2PMESH_PACKAGE_NATIVE FALSE)
endif()
set(p2pmesh_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/p2pmesh)
install(EXPORT p2pmeshTargets COMPONENT p2pmesh NAMESPACE p2pmesh:: DESTINATION ${p2pmesh_cmake_dir})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/p2pmeshConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/p2pmeshConfig.cmake INSTALL_DESTINATION ${p2pmesh_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/p2pmeshConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/p2pmeshConfig.cmake
  ${PROJECT_BINARY_DIR}/cmake/p2pmeshConfigVersion.cmake
  COMPONENT p2pmesh DESTINATION ${p2pmesh_cmake_dir})

# --- meshd's web pages and systemd unit (bin/meshd, bin/mesh-peer: src/server, src/native)
if(NOT TARGET meshd)
  return()
endif()

# meshd's web root as this build assembled it (src/server): the dashboard (/),
# the chat (/chat/) and the browser peer p2pmesh.mjs + .wasm of the wasm build
# (the chat page needs them). web/test/ is a page for the browser tests only.
set(P2PMESH_WEB_DESTINATION ${CMAKE_INSTALL_DATADIR}/p2pmesh/web)
install(CODE "
  if(NOT EXISTS \"${P2PMESH_WEB_ROOT}/p2pmesh.mjs\" OR NOT EXISTS \"${P2PMESH_WEB_ROOT}/p2pmesh.wasm\")
    message(WARNING \"${P2PMESH_WEB_ROOT} lacks p2pmesh.mjs or p2pmesh.wasm: the installed /chat/ page \"
      \"will not work. Build the browser peer first: cmake --preset wasm && cmake --build --preset wasm\")
  endif()" COMPONENT runtime)
install(DIRECTORY ${P2PMESH_WEB_ROOT}/ COMPONENT runtime
  DESTINATION ${P2PMESH_WEB_DESTINATION}
  PATTERN "test" EXCLUDE
  PATTERN "*.swp" EXCLUDE)

# meshd.service names the installed meshd and web root by absolute path, and
# the prefix is only known at install time (cmake --install --prefix P; cpack
# installs with prefix /usr): the unit is written then.
set(P2PMESH_SYSTEMD_UNIT_DIR lib/systemd/system CACHE STRING
  "Where meshd.service is installed (relative: under the install prefix)")
install(CODE "
  set(P2PMESH_UNIT_TEMPLATE \"${PROJECT_SOURCE_DIR}/packaging/meshd.service.in\")
  set(P2PMESH_UNIT_OUTPUT \"${PROJECT_BINARY_DIR}/packaging/meshd.service\")
  set(P2PMESH_UNIT_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(P2PMESH_UNIT_WEB_ROOT \"${P2PMESH_WEB_DESTINATION}\")
  include(\"${CMAKE_CURRENT_LIST_DIR}/ConfigureMeshdService.cmake\")" COMPONENT runtime)
install(FILES ${PROJECT_BINARY_DIR}/packaging/meshd.service COMPONENT runtime
  DESTINATION ${P2PMESH_SYSTEMD_UNIT_DIR})
# The unit reads /etc/default/meshd; the package ships only this commented
# example of it (docs/deploy.md), not the file itself.
install(FILES ${PROJECT_SOURCE_DIR}/packaging/meshd.env COMPONENT runtime
  DESTINATION ${CMAKE_INSTALL_DOCDIR})

# --- CPack: the Debian package -------------------------------------------------
set(CPACK_PACKAGE_NAME p2pmesh)
set(CPACK_PACKAGE_VENDOR "p2pmesh")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "p2pmesh maintainers <maintainers@users.noreply.r-seed-ee7dd90e.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "WebRTC peer-to-peer mesh: signaling server (meshd) and native peer (mesh-peer)")
set(CPACK_PACKAGE_DESCRIPTION
  "meshd hands out peer ids and carries mesh status updates so that peers find
each other; it serves a dashboard (/) and a chat page (/chat/) with the
browser peer. mesh-peer is one native peer on the command line (JSON lines
on stdout, stdin lines broadcast). Peers link at random to a few others and
broadcast along a spanning tree of the mesh. meshd.service runs meshd under
systemd (not enabled by the package: systemctl enable --now meshd).")
set(CPACK_GENERATOR DEB)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_FILE_NAME ${CPACK_PACKAGE_NAME}-${PROJECT_VERSION})
# Only the runtime component, as one package named p2pmesh.
set(CPACK_COMPONENTS_ALL runtime)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_DEBIAN_PACKAGE_NAME p2pmesh)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)            # p2pmesh_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Dependencies from the binaries' shared libraries (dpkg-shlibdeps: dpkg-dev
# and file, tools/deps.sh).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
  ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
  ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
