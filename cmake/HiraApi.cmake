# hira_add_api(NAME SPEC file GUEST_SONAME so INCLUDE_DIRS dirs... [SERVER_LIBRARY_DIR dir])
#
# Runs cava on a LAPIS spec and builds the three API-specific pieces:
#   apis/NAME/guest/<soname>      the guest library applications load
#   apis/NAME/hira-server-NAME    the API server (loads the real library)
#   apis/NAME/router_module.so    command shapes + accounting for the router
# SERVER_LIBRARY_DIR is where the API server looks for the real library
# first (recorded in apis/NAME/server.env); leave it out for system libraries.
function(hira_add_api name)
  cmake_parse_arguments(A "" "SPEC;GUEST_SONAME;SERVER_LIBRARY_DIR;ICD_NAME" "INCLUDE_DIRS" ${ARGN})
  set(gen ${CMAKE_BINARY_DIR}/generated/${name})
  set(out ${CMAKE_BINARY_DIR}/apis/${name})
  set(outputs ${gen}/${name}_protocol.h ${gen}/${name}_guest.cpp ${gen}/${name}_server.cpp
              ${gen}/${name}_router.cpp ${gen}/${name}_guest.map ${gen}/${name}_icd.map)
  set(inc_args)
  foreach(dir ${A_INCLUDE_DIRS})
    list(APPEND inc_args -I ${dir})
  endforeach()
  add_custom_command(
    OUTPUT ${outputs}
    COMMAND cava gen ${A_SPEC} --out ${gen} ${inc_args} --expect-soname ${A_GUEST_SONAME}
    DEPENDS cava ${A_SPEC} ${PROJECT_SOURCE_DIR}/lapis_specs/lapis.h
    COMMENT "cava: generating the ${name} API from ${A_SPEC}"
    VERBATIM)

  # Guest library: stubs + the API-agnostic guest runtime, nothing else exported.
  add_library(${name}_guest SHARED ${gen}/${name}_guest.cpp)
  target_include_directories(${name}_guest PRIVATE ${gen} ${A_INCLUDE_DIRS})
  target_link_libraries(${name}_guest PRIVATE hira_guest)
  target_compile_options(${name}_guest PRIVATE ${HIRA_WARNINGS} -fvisibility=hidden)
  target_link_options(${name}_guest PRIVATE
    -Wl,--version-script=${gen}/${name}_guest.map -Wl,-soname,${A_GUEST_SONAME}
    -static-libstdc++ -static-libgcc)
  set_target_properties(${name}_guest PROPERTIES
    LIBRARY_OUTPUT_DIRECTORY ${out}/guest
    OUTPUT_NAME ${name}_guest
    LINK_DEPENDS ${gen}/${name}_guest.map)
  # Applications load it by the vendor's soname.
  add_custom_command(TARGET ${name}_guest POST_BUILD
    COMMAND ${CMAKE_COMMAND} -E create_symlink lib${name}_guest.so ${out}/guest/${A_GUEST_SONAME})

  add_executable(hira-server-${name} ${gen}/${name}_server.cpp)
  target_include_directories(hira-server-${name} PRIVATE ${gen} ${A_INCLUDE_DIRS})
  target_link_libraries(hira-server-${name} PRIVATE hira_server_rt ${CMAKE_DL_LIBS})
  target_compile_options(hira-server-${name} PRIVATE ${HIRA_WARNINGS})
  set_target_properties(hira-server-${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${out})

  add_library(${name}_router_module MODULE ${gen}/${name}_router.cpp)
  target_include_directories(${name}_router_module PRIVATE ${gen} ${A_INCLUDE_DIRS})
  target_link_libraries(${name}_router_module PRIVATE hira_common hira_router_api)
  target_compile_options(${name}_router_module PRIVATE ${HIRA_WARNINGS} -fvisibility=hidden)
  set_target_properties(${name}_router_module PROPERTIES
    LIBRARY_OUTPUT_DIRECTORY ${out} OUTPUT_NAME router_module PREFIX "")

  file(WRITE ${out}/server.env "LIBRARY_DIR=${A_SERVER_LIBRARY_DIR}\n")
  set(api_targets ${name}_guest hira-server-${name} ${name}_router_module)

  # ICD_NAME: the same stubs as a vendor library for an ICD loader, which
  # finds it through apis/NAME/icd/<ICD_NAME>.icd (OCL_ICD_VENDORS=that dir).
  if(A_ICD_NAME)
    add_library(${name}_icd SHARED ${gen}/${name}_guest.cpp)
    target_include_directories(${name}_icd PRIVATE ${gen} ${A_INCLUDE_DIRS})
    target_link_libraries(${name}_icd PRIVATE hira_guest)
    target_compile_definitions(${name}_icd PRIVATE HIRA_ICD_VENDOR=1)
    target_compile_options(${name}_icd PRIVATE ${HIRA_WARNINGS} -fvisibility=hidden)
    target_link_options(${name}_icd PRIVATE
      -Wl,--version-script=${gen}/${name}_icd.map -Wl,-Bsymbolic -static-libstdc++ -static-libgcc)
    set_target_properties(${name}_icd PROPERTIES
      LIBRARY_OUTPUT_DIRECTORY ${out}/icd OUTPUT_NAME ${A_ICD_NAME}
      LINK_DEPENDS ${gen}/${name}_icd.map)
    file(WRITE ${out}/icd/${A_ICD_NAME}.icd "${out}/icd/lib${A_ICD_NAME}.so\n")
    list(APPEND api_targets ${name}_icd)
  endif()
  add_custom_target(${name}_api ALL DEPENDS ${api_targets})
endfunction()
