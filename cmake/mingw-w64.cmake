# mingw-w64.cmake -- CMake toolchain file: cross-builds for 64-bit Windows with
# Debian's MinGW-w64 (package gcc-mingw-w64-x86-64).
#
#   cmake -S . -B build-win -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake
#   cmake --build build-win          # -> build-win/mmap.dll
#
# Everything is linked statically (libgcc, libwinpthread), so the programs and
# mmap.dll import only Windows' own DLLs.  When Wine is installed, CTest runs
# the Windows programs under it (CMAKE_CROSSCOMPILING_EMULATOR); see WINDOWS.md.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(MINGW_TRIPLET x86_64-w64-mingw32)

set(CMAKE_C_COMPILER ${MINGW_TRIPLET}-gcc)
set(CMAKE_RC_COMPILER ${MINGW_TRIPLET}-windres)

# Headers and libraries come from the MinGW tree only, never the build host's.
set(CMAKE_FIND_ROOT_PATH /usr/${MINGW_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# No libgcc_s_seh-1.dll or libwinpthread-1.dll at run time.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static -static-libgcc")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static -static-libgcc")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "-static -static-libgcc")

# Run the tests' Windows programs under Wine's 64-bit loader when present.
find_program(MMKV_WINE64 NAMES wine64 PATHS /usr/lib/wine /usr/lib64/wine)
if(MMKV_WINE64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${MMKV_WINE64})
endif()
