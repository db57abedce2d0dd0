// toml++'s implementation, compiled once for pkit (TOML_HEADER_ONLY=0 everywhere else):
// see CMakeLists.txt for why it is not Debian's shared library.
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
