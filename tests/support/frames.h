// Hand-assembled Ethernet frames for pipeline tests and benchmarks.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace wardgate::testsupport {

using Frame = std::vector<uint8_t>;

inline void Put16(Frame& f, uint16_t v) {
  f.push_back(uint8_t(v >> 8));
  f.push_back(uint8_t(v));
}
inline void Put32(Frame& f, uint32_t v) {
  Put16(f, uint16_t(v >> 16));
  Put16(f, uint16_t(v));
}

inline Frame EthHeader(std::initializer_list<uint8_t> dst, uint16_t ether_type,
                       std::initializer_list<uint16_t> vlan_tpids_and_tcis = {}) {
  Frame f(dst);
  for (uint8_t b : {0x02, 0x77, 0x00, 0x00, 0x00, 0x11}) f.push_back(b);
  for (uint16_t v : vlan_tpids_and_tcis) Put16(f, v);
  Put16(f, ether_type);
  return f;
}

inline uint16_t Ipv4Checksum(const uint8_t* h, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += uint32_t(h[i] << 8 | h[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

// IPv4 + TCP with `payload` bytes of data; VLAN tags given as {tpid, tci, ...}.
inline Frame TcpV4(size_t payload, std::initializer_list<uint16_t> vlans = {}, uint8_t flags = 0x18) {
  Frame f = EthHeader({0x02, 0x77, 0x00, 0x00, 0x00, 0x21}, 0x0800, vlans);
  const size_t ip = f.size();
  Put16(f, 0x4500);
  Put16(f, uint16_t(20 + 20 + payload));
  Put32(f, 0x12344000);  // id, DF
  Put16(f, 0x4006);      // ttl 64, TCP
  Put16(f, 0);
  for (uint8_t b : {10, 77, 0, 11, 10, 77, 0, 21}) f.push_back(b);
  const uint16_t c = Ipv4Checksum(&f[ip], 20);
  f[ip + 10] = uint8_t(c >> 8);
  f[ip + 11] = uint8_t(c);
  Put16(f, 40000);
  Put16(f, 2575);  // MLLP
  Put32(f, 1000);
  Put32(f, 2000);
  f.push_back(0x50);
  f.push_back(flags);
  Put16(f, 65535);
  Put32(f, 0);
  for (size_t i = 0; i < payload; ++i) f.push_back(uint8_t('A' + i % 26));
  return f;
}

inline Frame UdpV4(size_t payload) {
  Frame f = EthHeader({0x02, 0x77, 0x00, 0x00, 0x00, 0x21}, 0x0800);
  Put16(f, 0x4500);
  Put16(f, uint16_t(20 + 8 + payload));
  Put32(f, 0);
  Put16(f, 0x4011);
  Put16(f, 0);
  for (uint8_t b : {10, 77, 0, 11, 10, 77, 0, 21}) f.push_back(b);
  Put16(f, 5353);
  Put16(f, 53);
  Put16(f, uint16_t(8 + payload));
  Put16(f, 0);
  for (size_t i = 0; i < payload; ++i) f.push_back(uint8_t(i));
  return f;
}

inline Frame ArpRequest() {
  Frame f = EthHeader({0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0x0806);
  for (uint8_t b : {0, 1, 8, 0, 6, 4, 0, 1, 0x02, 0x77, 0, 0, 0, 0x11, 10, 77, 0, 11, 0, 0, 0, 0, 0, 0, 10,
                    77, 0, 21}) {
    f.push_back(b);
  }
  while (f.size() < 60) f.push_back(0);  // Ethernet minimum (padding)
  return f;
}

inline Frame Icmpv6EchoMulticast() {
  Frame f = EthHeader({0x33, 0x33, 0x00, 0x00, 0x00, 0x01}, 0x86dd);
  Put32(f, 0x60000000);
  Put16(f, 8);
  f.push_back(58);
  f.push_back(255);
  for (uint8_t b : {0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11}) f.push_back(b);
  for (uint8_t b : {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01}) f.push_back(b);
  for (uint8_t b : {128, 0, 0, 0, 0, 1, 0, 1}) f.push_back(b);
  return f;
}

}  // namespace wardgate::testsupport
