# Unit tests of the two lower layers: the store (src/mmkv.h) and the
# platform contract (src/os.h).
add_cmocka_test(test_store test_store.c)
add_cmocka_test(test_os test_os.c)
