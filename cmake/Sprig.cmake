# Small helpers so each module's CMakeLists.txt stays a few lines.

# sprig_module(NAME SOURCES...): an object library that is part of libsprig.
# It sees only its layer's view of the headers (sprig_layer() below): no
# -I src, no -I include.
function(sprig_module name)
  add_library(sprig_${name} OBJECT ${ARGN})
  target_include_directories(sprig_${name} PRIVATE
                             ${CMAKE_BINARY_DIR}/layers/${name})
  target_compile_definitions(sprig_${name} PRIVATE SPRIG_BUILDING _GNU_SOURCE)
  set_target_properties(sprig_${name} PROPERTIES
    POSITION_INDEPENDENT_CODE ON C_VISIBILITY_PRESET hidden)
  set_property(GLOBAL APPEND PROPERTY SPRIG_MODULES sprig_${name})
endfunction()

# sprig_test(NAME SOURCES... [TIMEOUT seconds] [LIBS libs...]): a cmocka test
# linked against the static library (so it may reach internal functions),
# run by ctest.
function(sprig_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "LIBS;ARGS" ${ARGN})
  add_executable(${name} ${T_UNPARSED_ARGUMENTS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src
                             ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(${name} PRIVATE _GNU_SOURCE
                             SPRIG_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  target_link_libraries(${name} PRIVATE sprig_static PkgConfig::CMOCKA ${T_LIBS})
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "SPRIG_TEST_TMP=${CMAKE_BINARY_DIR}/test-tmp")
endfunction()

# ---- layers ---------------------------------------------------------------
# The layering of docs/architecture.md ("Layers"), enforced by include
# paths: a module compiles against one generated directory that holds only
# what it may include, so a reach across layers fails to compile ("fatal
# error: local/local.h: No such file or directory").
#
# sprig_layer(NAME [SEES modules...] [INTERFACE headers...]
#             [PUBLIC headers...])
#   NAME sees its own folder whole ("NAME/x.h"), the INTERFACE headers of
#   each module it SEES ("core/core.h"), include/sprig/sprig.h and its
#   PUBLIC headers from include/sprig ("server.h").  INTERFACE lists the
#   headers NAME shows to the modules above it; the rest of its folder is
#   private.
# sprig_layer_exception(NAME SOURCE HEADER): one source file of NAME may
#   also include HEADER ("local/local.h").  Temporary, with the reason in a
#   comment above the call; delete the call when the include goes.
# sprig_layers_apply(): build the directories (once every module exists).
function(sprig_layer name)
  cmake_parse_arguments(L "" "" "SEES;INTERFACE;PUBLIC" ${ARGN})
  set_property(GLOBAL APPEND PROPERTY SPRIG_LAYERS ${name})
  set_property(GLOBAL PROPERTY SPRIG_LAYER_${name}_SEES "${L_SEES}")
  set_property(GLOBAL PROPERTY SPRIG_LAYER_${name}_INTERFACE "${L_INTERFACE}")
  set_property(GLOBAL PROPERTY SPRIG_LAYER_${name}_PUBLIC "${L_PUBLIC}")
endfunction()

# A symbolic link `link` -> `target` (the target must exist).
function(sprig_link target link)
  if(NOT EXISTS ${target})
    message(FATAL_ERROR "layers: ${target} does not exist")
  endif()
  get_filename_component(dir ${link} DIRECTORY)
  file(MAKE_DIRECTORY ${dir})
  file(CREATE_LINK ${target} ${link} SYMBOLIC)
endfunction()

function(sprig_layer_exception name source header)
  set(dir ${CMAKE_BINARY_DIR}/layers/${name}.exception.${source})
  file(REMOVE_RECURSE ${dir})
  sprig_link(${PROJECT_SOURCE_DIR}/src/${header} ${dir}/${header})
  set_property(SOURCE ${source} APPEND PROPERTY INCLUDE_DIRECTORIES ${dir})
  message(STATUS "layers: temporary exception: src/${name}/${source} "
                 "includes ${header}")
endfunction()

function(sprig_layers_apply)
  get_property(layers GLOBAL PROPERTY SPRIG_LAYERS)
  get_property(modules GLOBAL PROPERTY SPRIG_MODULES)
  foreach(m ${modules})
    string(REGEX REPLACE "^sprig_" "" name ${m})
    if(NOT name IN_LIST layers)
      message(FATAL_ERROR "module ${name} declares no layer: add "
              "sprig_layer(${name} SEES ...) to src/${name}/CMakeLists.txt")
    endif()
  endforeach()
  foreach(name ${layers})
    set(dir ${CMAKE_BINARY_DIR}/layers/${name})
    file(REMOVE_RECURSE ${dir})
    sprig_link(${PROJECT_SOURCE_DIR}/src/${name} ${dir}/${name})
    get_property(sees GLOBAL PROPERTY SPRIG_LAYER_${name}_SEES)
    foreach(low ${sees})
      if(NOT low IN_LIST layers)
        message(FATAL_ERROR "layer ${name} sees ${low}, which is no layer")
      endif()
      get_property(hdrs GLOBAL PROPERTY SPRIG_LAYER_${low}_INTERFACE)
      foreach(h ${hdrs})
        sprig_link(${PROJECT_SOURCE_DIR}/src/${low}/${h} ${dir}/${low}/${h})
      endforeach()
    endforeach()
    get_property(pub GLOBAL PROPERTY SPRIG_LAYER_${name}_PUBLIC)
    foreach(h sprig.h ${pub})
      sprig_link(${PROJECT_SOURCE_DIR}/include/sprig/${h} ${dir}/sprig/${h})
    endforeach()
    # What the module is compiled with, for the `layering` test.
    file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/layers/${name}.includes
         CONTENT "$<TARGET_PROPERTY:sprig_${name},INCLUDE_DIRECTORIES>")
  endforeach()
endfunction()

# ---- install -------------------------------------------------------------
# sprig.pc finds its prefix from where it is installed (${pcfiledir}), so
# `cmake --install BUILD --prefix P` (make install PREFIX=P) installs a .pc
# that is right for P, whatever prefix the build was configured with.
file(RELATIVE_PATH SPRIG_PC_TO_PREFIX "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig"
     "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" SPRIG_PC_TO_PREFIX "${SPRIG_PC_TO_PREFIX}")
