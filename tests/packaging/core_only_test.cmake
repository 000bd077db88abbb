# packaging_core_only: configures a P2PMESH_CORE_ONLY=ON tree of SOURCE_DIR in
# WORK_DIR as on a machine without libwebrtc, Boost, spdlog, fmt, CLI11 or
# Google Benchmark (find_package of any of them is an error, so a part of the
# build that needs one fails the configure step), builds the
# core, mesh-sim and one core test (wire_test: protobuf cross-check) and runs
# them, then installs the core package and builds tests/packaging/core_consumer
# against it. WORK_DIR is removed at the end (kept on failure, for a look).
# In: SOURCE_DIR, WORK_DIR, GENERATOR, BUILD_TYPE, CXX_COMPILER, CONSUMER_DIR.
file(REMOVE_RECURSE ${WORK_DIR})
string(TIMESTAMP started %s)
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()
function(step what)
  string(TIMESTAMP now %s)
  math(EXPR elapsed "${now} - ${started}")
  message(STATUS "packaging_core_only: ${what} (${elapsed} s so far)")
endfunction()

set(disabled)
foreach(package tg_owt Boost spdlog fmt CLI11 benchmark)
  list(APPEND disabled -DCMAKE_DISABLE_FIND_PACKAGE_${package}=ON)
endforeach()
set(build ${WORK_DIR}/build)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${build} -G ${GENERATOR}
    -DCMAKE_BUILD_TYPE=${BUILD_TYPE} -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
    -DP2PMESH_CORE_ONLY=ON ${disabled} --no-warn-unused-cli
    -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix)
step("configured")
cmake_host_system_information(RESULT cores QUERY NUMBER_OF_LOGICAL_CORES)
run(${CMAKE_COMMAND} --build ${build} --parallel ${cores} --target p2pmesh_core mesh-sim wire_test)
step("built p2pmesh_core, mesh-sim, wire_test")
run(${build}/bin/wire_test --gtest_brief=1)
run(${build}/bin/mesh-sim --help)
run(${CMAKE_COMMAND} --install ${build} --component p2pmesh)
run(${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/consumer -G ${GENERATOR}
    -DCMAKE_BUILD_TYPE=${BUILD_TYPE} -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_DISABLE_FIND_PACKAGE_tg_owt=ON
    -DCMAKE_DISABLE_FIND_PACKAGE_Boost=ON --no-warn-unused-cli)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer)
run(${WORK_DIR}/consumer/core_consumer)
step("installed p2pmesh::core and built a consumer")
file(REMOVE_RECURSE ${WORK_DIR})
