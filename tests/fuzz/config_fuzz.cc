// Fuzzes the configuration loader: any input yields a Config or a ConfigError,
// never a crash or another exception type.
#include <cstdint>
#include <string>

#include "dataplane/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)wardgate::config::LoadString(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const wardgate::config::ConfigError&) {
  }
  return 0;
}
