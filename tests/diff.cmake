# diff.cmake -- the differential SQL test and the mapping fuzzer (issue 3);
# included by tests/CMakeLists.txt.
#   test_diff            50 seeds x 1000 random statements, each run on an mmap
#                        table and on an ordinary WITHOUT ROWID table and
#                        compared (long mode: tests/test_diff -n 2000 -c 1000).
#   test_diff_parts      30 more seeds on mappings split into 4 parts (-p 4).
#   fuzz_mapping_replay  runs every input of tests/fuzz_corpus/ through the fuzz
#                        target once, without libFuzzer (any compiler; under
#                        ASan/UBSan in a -DMMKV_SANITIZE=ON build).
#   fuzz_mapping         the libFuzzer target itself: only with clang and
#                        -DMMKV_FUZZ=ON.  tests/fuzz.sh configures build-fuzz/
#                        that way and fuzzes for N seconds.
add_cmocka_test(test_diff test_diff.c)
add_test(NAME test_diff_parts COMMAND test_diff -s 1000 -n 30 -c 1000 -p 4)
set_tests_properties(test_diff test_diff_parts PROPERTIES TIMEOUT 900)

option(MMKV_FUZZ "Build the libFuzzer target tests/fuzz_mapping (needs clang)" OFF)

if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
  # The fuzz target puts guard pages around every mapping by wrapping mmap.
  set(FUZZ_WRAP "LINKER:--wrap=mmap,--wrap=munmap")

  add_executable(fuzz_mapping_replay fuzz_mapping.c)
  target_compile_definitions(fuzz_mapping_replay PRIVATE FUZZ_REPLAY_MAIN FUZZ_GUARD_MMAP)
  target_link_libraries(fuzz_mapping_replay PRIVATE mmkv_core)
  target_link_options(fuzz_mapping_replay PRIVATE ${FUZZ_WRAP})
  add_test(NAME fuzz_mapping_replay
           COMMAND fuzz_mapping_replay ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_corpus)
  set_tests_properties(fuzz_mapping_replay PROPERTIES TIMEOUT 300)

  if(MMKV_FUZZ)
    if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
      message(FATAL_ERROR "MMKV_FUZZ=ON needs clang: configure with -DCMAKE_C_COMPILER=clang")
    endif()
    # The store's sources are compiled in (not mmkv_core) so that libFuzzer
    # sees their coverage.
    set(FUZZ_SAN -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
    list(TRANSFORM MMKV_CORE_SOURCES PREPEND ${PROJECT_SOURCE_DIR}/ OUTPUT_VARIABLE FUZZ_CORE)
    add_executable(fuzz_mapping fuzz_mapping.c ${FUZZ_CORE})
    target_include_directories(fuzz_mapping PRIVATE ${PROJECT_SOURCE_DIR}/src)
    target_compile_definitions(fuzz_mapping PRIVATE FUZZ_GUARD_MMAP)
    target_compile_options(fuzz_mapping PRIVATE ${FUZZ_SAN} -fno-omit-frame-pointer -g)
    target_link_options(fuzz_mapping PRIVATE ${FUZZ_SAN} ${FUZZ_WRAP})
    target_link_libraries(fuzz_mapping PRIVATE Threads::Threads rt)
  endif()
endif()
