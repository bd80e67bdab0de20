// Ethernet ports backed by rte_rings (DPDK net_ring), for pipeline tests and the
// benchmarks: a test enqueues frames into a port's rx ring and dequeues what the
// dataplane transmitted from its tx ring. Needs EAL.
#pragma once

#include <rte_eth_ring.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace wardgate::testsupport {

struct RingPort {
  std::string name;
  uint16_t port_id = 0;
  rte_ring* rx = nullptr;  // the test enqueues here; the port receives it
  rte_ring* tx = nullptr;  // the port transmits here; the test dequeues it
};

// Creates ethdev "net_ring_<name>" with one rx and one tx ring.
inline RingPort MakeRingPort(const std::string& name, unsigned ring_size = 4096) {
  RingPort p;
  p.name = name;
  p.rx = rte_ring_create((name + "_rx").c_str(), ring_size, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  p.tx = rte_ring_create((name + "_tx").c_str(), ring_size, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (!p.rx || !p.tx) throw std::runtime_error("cannot create rings for " + name);
  const int id = rte_eth_from_rings(name.c_str(), &p.rx, 1, &p.tx, 1, SOCKET_ID_ANY);
  if (id < 0) throw std::runtime_error("rte_eth_from_rings failed for " + name);
  p.port_id = static_cast<uint16_t>(id);
  p.name = "net_ring_" + name;  // the name rte_eth_from_rings gives the ethdev
  return p;
}

// An mbuf holding a copy of `frame` (single segment), or nullptr if the pool is empty.
inline rte_mbuf* MbufFrom(rte_mempool* pool, std::span<const uint8_t> frame) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  if (!m) return nullptr;
  if (frame.size() > rte_pktmbuf_tailroom(m)) {
    rte_pktmbuf_free(m);
    throw std::runtime_error("frame larger than the mbuf data room");
  }
  std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size())), frame.data(), frame.size());
  return m;
}

inline std::vector<uint8_t> BytesOf(const rte_mbuf* m) {
  std::vector<uint8_t> out(m->pkt_len);
  const void* p = rte_pktmbuf_read(m, 0, m->pkt_len, out.data());
  if (p != out.data()) std::memcpy(out.data(), p, m->pkt_len);
  return out;
}

// Dequeues and frees everything in a ring; returns how many mbufs it held.
inline unsigned DrainRing(rte_ring* r) {
  unsigned n = 0;
  void* objs[64];
  unsigned got;
  while ((got = rte_ring_dequeue_burst(r, objs, 64, nullptr)) > 0) {
    rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(objs), got);
    n += got;
  }
  return n;
}

}  // namespace wardgate::testsupport
