# SQL-level tests: tests/sqlrun runs each of the sql/NAME.sql files below (conventions atop
# tests/sqlrun.c); each file is its own CTest test, named sql_<file>.
# Plus the cmocka tests of the vtab layer (tests/test_vtab.c).
add_executable(sqlrun sqlrun.c)
target_link_libraries(sqlrun PRIVATE ${SQLITE3_LIBRARY})
target_compile_definitions(sqlrun PRIVATE MMAP_EXT_PATH="$<TARGET_FILE:mmap>")
add_dependencies(sqlrun mmap)

set(SQLRUN_FILES basic types conflict transactions functions plan registration errors parts)
foreach(sqlname ${SQLRUN_FILES})
  add_test(NAME sql_${sqlname} COMMAND sqlrun ${PROJECT_SOURCE_DIR}/sql/${sqlname}.sql)
  set_tests_properties(sql_${sqlname} PROPERTIES TIMEOUT 300)
endforeach()

add_cmocka_test(test_vtab test_vtab.c)
set_tests_properties(test_vtab PROPERTIES TIMEOUT 900)
