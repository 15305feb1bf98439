/* A stand-in for Windows' bcryptprimitives.dll, which Wine 8 lacks: Rust's standard
 * library calls its ProcessPrng at start-up for random bytes. This one gets them
 * from RtlGenRandom (advapi32's SystemFunction036), which Wine has. Built with
 * mingw-w64 by scripts/windows.sh and put beside the .exe files; never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
