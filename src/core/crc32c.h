/* crc32c.h — CRC-32C (Castagnoli), the checksum of checkpoint files (internal).
 *
 * The CRC of iSCSI, ext4 and leveldb: polynomial 0x1EDC6F41 (reflected 0x82F63B78), initial value and
 * final XOR 0xFFFFFFFF, so crc32c("123456789") == 0xE3069283. It catches every burst of up to 32 flipped
 * bits and all but 2^-32 of other corruptions; it is a guard against disk and copy errors, not against an
 * attacker (who can rewrite the manifest too: state.json is validated field by field for that).
 *
 *     uint32_t c = ft__crc32c(0, buf, n);            // whole buffer
 *     c = ft__crc32c(ft__crc32c(0, a, na), b, nb);   // == ft__crc32c(0, a ++ b, na + nb): chunks chain
 *
 * Speed: the SSE4.2 crc32 instruction when the build targets it (-march=native on x86-64: 5.8 GB/s on one
 * core of the development machine), else slicing-by-8 tables (1.7 GB/s). ft__crc32c_sw is the table version,
 * always built: the reference the hardware path is tested against. Thread-safe (tables built under pthread_once). */
#ifndef FT_CORE_CRC32C_H
#define FT_CORE_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/* CRC-32C of n bytes continuing from crc (0 to start). */
uint32_t ft__crc32c(uint32_t crc, const void *data, size_t n);
uint32_t ft__crc32c_sw(uint32_t crc, const void *data, size_t n);
#endif
