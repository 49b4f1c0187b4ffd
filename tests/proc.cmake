# proc.cmake -- tests that need several processes (included by tests/CMakeLists.txt).
#   test_multiproc: 4 processes x 10,000 random SQL operations on one mapping;
#   test_multiproc_parts: the same on a mapping in 4 parts.
#   test_crash:     SIGKILL of lock holders (200 kills), SIGSTOP of a holder;
#   test_crash_parts: the same on mappings split into 4 parts (150 kills).
#   walkthrough:    the README walkthrough with two real sqlite3 shells.
add_cmocka_test(test_multiproc test_multiproc.c)
add_test(NAME test_multiproc_parts COMMAND test_multiproc 4 10000 4711 4)
add_cmocka_test(test_crash test_crash.c)
add_test(NAME test_crash_parts COMMAND test_crash 150 4711 4)
add_test(NAME walkthrough
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/walkthrough.sh ${CMAKE_BINARY_DIR})
set_tests_properties(test_multiproc test_multiproc_parts test_crash test_crash_parts walkthrough PROPERTIES TIMEOUT 600)
