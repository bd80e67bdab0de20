// Frames a `reject` rule sends: TCP RST to both ends of the flow, or ICMP
// destination-unreachable (port) to the sender of a UDP datagram. Pure functions on
// byte spans (no DPDK): the worker copies the result into an mbuf.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/parse/packet.h"

namespace wardgate::inspect {

// Largest frame these builders write: Ethernet + 2 VLAN tags + IPv6 + ICMPv6 with
// the offending packet's head (RFC 4443 allows more; 128 bytes of it is enough).
inline constexpr size_t kMaxRejectFrame = 14 + 8 + 40 + 8 + 128;

// A TCP RST for the flow of `frame` (a TCP segment parsed into `view`).
// to_sender: the RST goes back to the segment's sender (MACs, addresses and ports
// swapped; seq = the segment's ack); otherwise on to its receiver in the sender's
// name (seq = the segment's seq, which the receiver expects since the segment itself
// is dropped). VLAN tags are kept. Returns the frame length, 0 if not possible.
size_t BuildTcpReset(std::span<const uint8_t> frame, const parse::PacketView& view, bool to_sender,
                     std::span<uint8_t> out);

// ICMP (v4: type 3 code 3) / ICMPv6 (type 1 code 4) port unreachable to the sender of
// the UDP datagram in `frame`, quoting its IP header and the start of its payload.
size_t BuildPortUnreachable(std::span<const uint8_t> frame, const parse::PacketView& view,
                            std::span<uint8_t> out);

}  // namespace wardgate::inspect
