// IPv4 frame builders for pipeline tests: hosts, TCP/UDP/ICMP frames and a TCP
// connection that keeps its sequence numbers consistent.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>

#include "dataplane/parse/packet.h"
#include "tests/support/frames.h"

namespace wardgate::testsupport {

struct Host {
  std::array<uint8_t, 6> mac;
  std::array<uint8_t, 4> ip;
  uint16_t port;
};

inline Host Client(uint16_t port = 40000) { return {{0x02, 0, 0, 0, 0, 0x01}, {10, 0, 0, 1}, port}; }
inline Host Server(uint16_t port = 2575) { return {{0x02, 0, 0, 0, 0, 0x02}, {10, 0, 0, 2}, port}; }

// Ethernet + IPv4 (valid header checksum) around `l4` bytes of protocol `proto`.
inline Frame Ipv4Frame(const Host& src, const Host& dst, uint8_t proto, const Frame& l4) {
  Frame f(dst.mac.begin(), dst.mac.end());
  f.insert(f.end(), src.mac.begin(), src.mac.end());
  Put16(f, 0x0800);
  const size_t ip = f.size();
  Put16(f, 0x4500);
  Put16(f, uint16_t(20 + l4.size()));
  Put32(f, 0x00014000);  // id 1, DF
  f.push_back(64);
  f.push_back(proto);
  Put16(f, 0);
  f.insert(f.end(), src.ip.begin(), src.ip.end());
  f.insert(f.end(), dst.ip.begin(), dst.ip.end());
  const uint16_t c = testsupport::Ipv4Checksum(&f[ip], 20);
  f[ip + 10] = uint8_t(c >> 8);
  f[ip + 11] = uint8_t(c);
  f.insert(f.end(), l4.begin(), l4.end());
  return f;
}

// One TCP segment (20-byte header, no options; the TCP checksum is left zero).
inline Frame TcpSegment(const Host& src, const Host& dst, uint32_t seq, uint32_t ack, uint8_t flags,
                 std::string_view payload, uint16_t window = 65535) {
  Frame t;
  Put16(t, src.port);
  Put16(t, dst.port);
  Put32(t, seq);
  Put32(t, ack);
  t.push_back(0x50);
  t.push_back(flags);
  Put16(t, window);
  Put32(t, 0);  // checksum, urgent pointer
  t.insert(t.end(), payload.begin(), payload.end());
  return Ipv4Frame(src, dst, parse::kProtoTcp, t);
}

inline Frame UdpDatagram(const Host& src, const Host& dst, std::string_view payload) {
  Frame u;
  Put16(u, src.port);
  Put16(u, dst.port);
  Put16(u, uint16_t(8 + payload.size()));
  Put16(u, 0);
  u.insert(u.end(), payload.begin(), payload.end());
  return Ipv4Frame(src, dst, parse::kProtoUdp, u);
}

inline Frame IcmpEcho(const Host& src, const Host& dst, uint8_t type, std::string_view payload) {
  Frame i = {type, 0, 0, 0};
  Put16(i, 0x4242);  // id
  Put16(i, 1);       // sequence
  i.insert(i.end(), payload.begin(), payload.end());
  return Ipv4Frame(src, dst, parse::kProtoIcmp, i);
}

constexpr uint8_t kSyn = parse::kTcpSyn, kAck = parse::kTcpAck, kPsh = parse::kTcpPsh, kRst = parse::kTcpRst;

// Both ends of one TCP connection: builds its segments with consistent sequence and
// acknowledgement numbers. Stream offsets count from the first byte after the SYN.
class TcpConn {
 public:
  explicit TcpConn(Host client = Client(), Host server = Server(), uint32_t client_isn = 1000,
                   uint32_t server_isn = 700000)
      : c_(client), s_(server), isn_{client_isn, server_isn} {}

  Frame Syn() const { return TcpSegment(c_, s_, isn_[0], 0, kSyn, {}); }
  Frame SynAck() const { return TcpSegment(s_, c_, isn_[1], isn_[0] + 1, kSyn | kAck, {}); }
  Frame Ack() const { return TcpSegment(c_, s_, Seq(true, sent_[0]), Seq(false, sent_[1]), kAck, {}); }
  Frame ServerAck() const { return TcpSegment(s_, c_, Seq(false, sent_[1]), Seq(true, sent_[0]), kAck, {}); }

  // Data at stream offset `off` of one direction; acknowledges what the peer sent.
  Frame Data(bool from_client, uint64_t off, std::string_view payload, uint8_t flags = kPsh | kAck) {
    const int d = from_client ? 0 : 1;
    sent_[d] = std::max<uint64_t>(sent_[d], off + payload.size());
    return TcpSegment(from_client ? c_ : s_, from_client ? s_ : c_, Seq(from_client, off),
                      Seq(!from_client, sent_[d ^ 1]), flags, payload);
  }
  // The next in-order data of one direction.
  Frame Send(bool from_client, std::string_view payload) {
    return Data(from_client, sent_[from_client ? 0 : 1], payload);
  }

  uint32_t Seq(bool client, uint64_t off) const { return isn_[client ? 0 : 1] + 1 + uint32_t(off); }
  const Host& client() const { return c_; }
  const Host& server() const { return s_; }

 private:
  Host c_, s_;
  uint32_t isn_[2];
  uint64_t sent_[2] = {0, 0};
};


}  // namespace wardgate::testsupport
