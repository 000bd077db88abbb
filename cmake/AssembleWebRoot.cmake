# Script (cmake -P): assembles meshd's web root in the build tree from the
# source tree's pages (web/) and the browser peer the wasm preset built
# (p2pmesh.mjs, .wasm, .d.ts). Neither build writes into the source tree.
#   -DSOURCE_WEB=<src>/web -DWASM_WEB=<build/wasm/web> -DOUT=<build>/web
file(MAKE_DIRECTORY ${OUT})
# Old copies of the browser peer in the source tree (earlier builds put them
# there) must not shadow the fresh ones.
file(COPY ${SOURCE_WEB}/ DESTINATION ${OUT}
  PATTERN "p2pmesh.mjs" EXCLUDE PATTERN "p2pmesh.wasm" EXCLUDE PATTERN "p2pmesh.d.ts" EXCLUDE
  PATTERN "*.swp" EXCLUDE)
set(missing "")
foreach(name p2pmesh.mjs p2pmesh.wasm p2pmesh.d.ts)
  if(EXISTS ${WASM_WEB}/${name})
    file(COPY_FILE ${WASM_WEB}/${name} ${OUT}/${name} ONLY_IF_DIFFERENT)
  else()
    list(APPEND missing ${name})
  endif()
endforeach()
if(missing)
  message(STATUS "web root ${OUT}: no browser peer in ${WASM_WEB} (${missing}): the chat "
    "page needs it: cmake --preset wasm && cmake --build --preset wasm")
endif()
