// Stack hygiene toward the device segment: TCP segments that crash or confuse old
// embedded TCP/IP stacks (URGENT/11: VxWorks IPnet, and the stacks sharing its code).
// Pure, per packet, no state: the worker drops what BadTcpOptions() flags on ports
// facing the clinical devices.
#pragma once

#include "dataplane/parse/packet.h"

namespace wardgate::hygiene {

// True when a frame carries TCP the device segment must not see:
//  - the parser refused the option area or the data offset (kTcpBadOptions: an option
//    length < 2 or past the header, MSS length != 4, window scale length != 3,
//    SACK-permitted length != 2, timestamp length != 10; kTcpBadDataOffset);
//  - options that parse but are crash triggers or nonsense (tcp_options_suspicious:
//    window scale shift > 14, MSS 0 on a SYN, SACK length not 2 + 8n, duplicate MSS or
//    window scale);
//  - URG with urgent pointer 0 (CVE-2019-12255: IPnet computes the urgent data length
//    as pointer - 1 and underflows).
// Non-TCP frames and later fragments (no TCP header) are never flagged.
inline bool BadTcpOptions(parse::ParseError err, const parse::PacketView& v) {
  if (err == parse::ParseError::kTcpBadOptions || err == parse::ParseError::kTcpBadDataOffset) return true;
  return v.tcp_options_suspicious || ((v.tcp_flags & parse::kTcpUrg) != 0 && v.tcp_urgent_ptr == 0);
}

}  // namespace wardgate::hygiene
