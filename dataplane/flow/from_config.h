// The flow table's and reassembler's settings from the YAML configuration.
#pragma once

#include <random>

#include "dataplane/config/config.h"
#include "dataplane/flow/flow_table.h"
#include "dataplane/stream/tcp_stream.h"

namespace wardgate::flow {

inline FlowTableConfig TableConfigFrom(const config::Config& c, uint32_t worker_id, uint64_t first_id) {
  FlowTableConfig t;
  t.capacity = c.flows.capacity;
  t.worker_id = worker_id;
  t.first_id = first_id;
  t.hash_seed = (uint64_t(std::random_device{}()) << 32) | std::random_device{}();
  t.midstream = c.stream.midstream;
  t.flowbits_capacity = c.flows.flowbits_capacity;
  t.timeouts.new_s = c.flows.timeout_new_s;
  t.timeouts.established_s = c.flows.timeout_established_s;
  t.timeouts.closed_s = c.flows.timeout_closed_s;
  t.timeouts.udp_s = c.flows.timeout_udp_s;
  t.timeouts.icmp_s = c.flows.timeout_icmp_s;
  t.timeouts.other_s = c.flows.timeout_other_s;
  return t;
}

inline stream::StreamConfig StreamConfigFrom(const config::Config& c) {
  stream::StreamConfig s;
  s.window_bytes = c.stream.window_bytes;
  s.depth = c.stream.depth;
  s.max_held_per_stream = c.stream.max_held_per_stream;
  s.segment_pool = c.stream.segment_pool;
  s.window_pool = c.stream.window_pool;
  return s;
}

}  // namespace wardgate::flow
