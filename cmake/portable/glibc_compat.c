/* Linked into the portable binary only (cmake/portable.cmake). The static libstdc++ of Debian 12
 * refers to arc4random, which glibc has only since 2.36 (std::random_device can use it): defined
 * here on getrandom (glibc 2.25), the binary runs on glibc 2.35 (Ubuntu 22.04). The test
 * PortableTarball.NeedsOnlyGlibc235 fails if another symbol newer than 2.35 turns up. */
#include <errno.h>
#include <stdint.h>
#include <sys/random.h>

uint32_t arc4random(void) {
  uint32_t value = 0;
  for (;;) {
    ssize_t n = getrandom(&value, sizeof value, 0);
    if (n == (ssize_t)sizeof value) return value;
    if (n < 0 && errno != EINTR) return value; /* never on Linux >= 3.17 */
  }
}
