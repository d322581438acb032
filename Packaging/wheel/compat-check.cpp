// Packaging/wheel/build runs this, linked like the wheel's executables (static libstdc++ and libgcc,
// glibc-compat.o), before it writes a wheel: each replacement in glibc-compat.c must do its job.
#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>

int main() {
    // The unwinder finds this function's frame through _dl_find_object.
    bool caught = false;
    try { throw std::runtime_error("unwound"); } catch (const std::runtime_error &) { caught = true; }
    if (!caught) { std::puts("compat-check: a C++ exception was not caught"); return 1; }
    // std::random_device reads arc4random: two 32-bit draws in a row are equal once in 2^32.
    std::random_device device;
    if (device() == device() && device() == device()) { std::puts("compat-check: random_device repeats"); return 1; }
    volatile float three = 3, four = 4, inf = INFINITY, nan = NAN;
    if (hypotf(three, four) != 5.0f || hypotf(nan, inf) != INFINITY || !std::isnan(hypotf(nan, three))) {
        std::puts("compat-check: hypotf is wrong");
        return 1;
    }
    return 0;
}
