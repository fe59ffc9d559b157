# Small helpers so each module's CMakeLists.txt stays a few lines.

# sprig_module(NAME SOURCES...): an object library that is part of libsprig.
function(sprig_module name)
  add_library(sprig_${name} OBJECT ${ARGN})
  target_include_directories(sprig_${name} PRIVATE ${PROJECT_SOURCE_DIR}/src
                             PUBLIC ${PROJECT_SOURCE_DIR}/include)
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
