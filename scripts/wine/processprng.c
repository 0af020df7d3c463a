/*
 * Test-only stand-in for bcryptprimitives.dll!ProcessPrng, which Windows
 * 10/11 have and Wine 8 lacks. Rust's standard library imports it for its
 * random numbers (HashMap seeds, getrandom), so without it no Rust .exe
 * starts under Wine 8. scripts/windows-test.sh builds this into the test
 * prefix's system32 only; it is never part of the .msi (the packaging test
 * checks that).
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -s -o bcryptprimitives.dll \
 *          processprng.c processprng.def -ladvapi32
 */
#include <windows.h>

/* advapi32!SystemFunction036, a.k.a. RtlGenRandom: Wine has it. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    /* Like Windows' ProcessPrng: always TRUE once the data is filled. */
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)inst; (void)reason; (void)reserved;
    return TRUE;
}
