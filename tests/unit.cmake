# Unit tests of the two lower layers: the store (src/mmkv.h) and the
# platform contract (src/os.h).
# test_store.c is portable (also built for Windows: tests/win/CMakeLists.txt);
# test_store_posix.c has the store tests that need fork() or mode bits.
add_cmocka_test(test_store test_store.c)
add_cmocka_test(test_store_posix test_store_posix.c)
add_cmocka_test(test_parts test_parts.c)
add_cmocka_test(test_os test_os.c)
