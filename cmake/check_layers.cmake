# check_layers.cmake -- the `layering` test: compile one-line probes
# (`#include "HEADER"`) with the include directories each module of src/
# is really compiled with (written by sprig_layers_apply() into
# <build>/layers/<module>.includes), and check that what the layers allow
# compiles and that every reach across layers fails because the header is
# not there.  Run as:
#   cmake -DCC=<compiler> -DLAYERS=<build>/layers -DSOURCE=<source dir>
#         -DEXTRA=<dirs> -P check_layers.cmake
# EXTRA: include directories of the dependencies (gnutls's p11-kit).

cmake_minimum_required(VERSION 3.20)

# "module header ok|fail" -- docs/architecture.md, "Layers".
set(probes
  "core core/core.h ok"             "core core/view.h ok"
  "core sprig/sprig.h ok"           "core local/local.h fail"
  "core proto/mp.h fail"            "core sprig/server.h fail"
  "local local/views.h ok"          "local core/view.h ok"
  "local proto/api.h fail"          "local transport/transport.h fail"
  "local sprig/client.h fail"
  "proto proto/api.h ok"            "proto core/core.h ok"
  "proto local/local.h fail"        "proto transport/transport.h fail"
  "transport transport/ws_int.h ok" "transport core/core.h ok"
  "transport proto/api.h fail"      "transport local/local.h fail"
  "server server/server_int.h ok"   "server proto/api.h ok"
  "server proto/envelope.h ok"      "server transport/transport.h ok"
  "server sprig/server.h ok"        "server local/local.h fail"
  "server local/views.h fail"       "server transport/ws_int.h fail"
  "server transport/http_upgrade.h fail" "server client/client_int.h fail"
  "server sprig/client.h fail"
  "client client/client_int.h ok"   "client sprig/client.h ok"
  "client local/local.h fail"       "client server/server_int.h fail"
  "client transport/ws_int.h fail"  "client sprig/server.h fail")

set(failed 0)
set(probe ${LAYERS}/probe.c)
foreach(p ${probes})
  separate_arguments(f UNIX_COMMAND "${p}")
  list(GET f 0 module)
  list(GET f 1 header)
  list(GET f 2 want)
  file(READ ${LAYERS}/${module}.includes dirs)
  if("${SOURCE}/src" IN_LIST dirs OR "${SOURCE}/include" IN_LIST dirs)
    message(SEND_ERROR "${module} is compiled with all of src/ or include/: ${dirs}")
    math(EXPR failed "${failed} + 1")
  endif()
  set(flags "")
  foreach(d ${dirs} ${EXTRA})
    list(APPEND flags -I${d})
  endforeach()
  file(WRITE ${probe} "#include \"${header}\"\nint sprig_probe;\n")
  execute_process(COMMAND ${CC} -fsyntax-only -D_GNU_SOURCE -DSPRIG_BUILDING
                          ${flags} ${probe}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(want STREQUAL "ok" AND NOT rc EQUAL 0)
    message(SEND_ERROR "${module} cannot include ${header}, which its layer "
                       "allows:\n${out}")
    math(EXPR failed "${failed} + 1")
  elseif(want STREQUAL "fail" AND rc EQUAL 0)
    message(SEND_ERROR "${module} can include ${header} across the layers")
    math(EXPR failed "${failed} + 1")
  elseif(want STREQUAL "fail" AND NOT out MATCHES "${header}.*(No such file|not found)")
    message(SEND_ERROR "${module} including ${header} failed for another "
                       "reason than its absence:\n${out}")
    math(EXPR failed "${failed} + 1")
  else()
    message(STATUS "${module}: ${header}: ${want}")
  endif()
endforeach()
file(REMOVE ${probe})
list(LENGTH probes n)
if(failed)
  message(FATAL_ERROR "${failed} of ${n} layering probes went wrong")
endif()
message(STATUS "all ${n} layering probes as the layers say")
