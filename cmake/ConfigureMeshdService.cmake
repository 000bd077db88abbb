# Install-time script (cmake/P2pmeshInstall.cmake): writes meshd.service for
# the prefix being installed to. In: P2PMESH_UNIT_TEMPLATE, P2PMESH_UNIT_OUTPUT,
# P2PMESH_UNIT_BINDIR, P2PMESH_UNIT_WEB_ROOT (relative to CMAKE_INSTALL_PREFIX
# unless absolute).
foreach(var BINDIR WEB_ROOT)
  if(IS_ABSOLUTE "${P2PMESH_UNIT_${var}}")
    set(full_${var} "${P2PMESH_UNIT_${var}}")
  else()
    set(full_${var} "${CMAKE_INSTALL_PREFIX}/${P2PMESH_UNIT_${var}}")
  endif()
  cmake_path(NORMAL_PATH full_${var})
endforeach()
set(MESHD_BINARY "${full_BINDIR}/meshd")
set(MESHD_WEB_ROOT "${full_WEB_ROOT}")
configure_file("${P2PMESH_UNIT_TEMPLATE}" "${P2PMESH_UNIT_OUTPUT}" @ONLY)
