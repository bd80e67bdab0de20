#!/usr/bin/env bash
# ward-sim.sh - the simulated hospital ward that wardgate-dp is tested in.
#
# Everything lives in network namespaces (nothing in the root namespace):
#
#   clinical device segment                                          hospital network
#
#   wg-pump      eth0 --+                                        +-- eth0  wg-ehr
#   wg-monitor   eth0 --+-- br0 --- wg-dev0 [wg-gw] wg-net0 --- br0 --+-- eth0  wg-pacs
#   wg-modality  eth0 --+   wg-sw-dev      wardgate-dp      wg-sw-net   +-- eth0  wg-workstation
#
#   wg-sw-dev, wg-sw-net  L2 switches: a Linux bridge br0 (no STP, no VLAN filtering,
#                         no multicast snooping, forwards 802.1X/LLDP groups), one port
#                         per host ("wg-<host>") plus the uplink to the gateway
#                         ("wg-gw-dev0" / "wg-gw-net0"). IPv6 is off in the switches.
#   wg-gw                 the gateway's two ports wg-dev0 / wg-net0: up, no addresses,
#                         IPv6 off, so only wardgate-dp puts frames on them:
#                           ip netns exec wg-gw build/wardgate-dp --config deploy/examples/ward.yaml
#   hosts                 one veth "eth0" each, MAC 02:77:00:00:00:<id>, 10.77.0.<id>/24,
#                         fd77::<id>/64 (no DAD, no RA, no router solicitations):
#                           pump 11, monitor 12, modality 13, ehr 21, pacs 22, workstation 23
#
# The ward is ONE IPv4 subnet: wardgate-dp is a transparent bridge, so the pump reaches
# the ehr only through wg-dev0 -> wardgate-dp -> wg-net0. Nothing crosses until it runs.
#
# MTU: every switch and gateway link is 9000 (jumbo frames can be tested); host eth0
# interfaces are 1500, a test may raise one: ip -n wg-pump link set eth0 mtu 9000.
# (DPDK's af_packet PMD reports a 1518-byte max frame and refuses MTUs above 1500, so
# jumbo frames cross only a gateway whose ports allow it.)
# Checksum/segmentation offloads (tx, tso, gso, gro) are off on every veth, otherwise
# TCP through a userspace bridge (af_packet) stalls on unfinished checksums; the one
# that matters most is the switch port facing the gateway (wg-gw-dev0/wg-gw-net0),
# where the kernel finishes checksums and segments before af_packet sees the frame.
#
# VLAN 100 (on by default, --no-vlan to skip): wg-pump and wg-ehr get "eth0.100" with
# 10.77.100.11/24 and 10.77.100.21/24, so a tagged frame can cross the gateway. It is a
# real 802.1Q interface when the kernel has 8021q; otherwise (e.g. kernels built without
# CONFIG_VLAN_8021Q) eth0.100 is a veth whose frames a small tc-BPF program tags/untags
# on eth0 (needs clang); on the wire the two are the same. If neither works, up warns
# and goes on without VLAN. IPv6 is off on eth0.100.
#
# Usage: see usage() below, or ward-sim.sh --help.

set -euo pipefail

readonly PROG=${0##*/}
readonly GW_NS=wg-gw
readonly SW_DEV_NS=wg-sw-dev
readonly SW_NET_NS=wg-sw-net
readonly LINK_MTU=9000          # switch and gateway links
readonly HOST_MTU=1500          # host eth0
readonly VLAN_ID=100
readonly STATE_DIR=/run/wardgate-ward-sim
readonly LOCK_FILE=/run/lock/wardgate-ward-sim.lock

# name side id   (id: last IPv4 octet, IPv6 suffix and last MAC byte)
readonly HOSTS=(
  "pump        device  11"
  "monitor     device  12"
  "modality    device  13"
  "ehr         network 21"
  "pacs        network 22"
  "workstation network 23"
)
readonly VLAN_HOSTS=(pump ehr)

usage() {
  cat <<EOF
Usage: $PROG [--no-vlan] up | down | info

  up      build the simulated ward (tears down any leftovers first)
          --no-vlan  do not create the VLAN $VLAN_ID interfaces eth0.$VLAN_ID
  down    remove the ward's namespaces and links (the wg-* names above; other
          wg-* names are left alone); ends processes still running in the
          ward's namespaces; safe when nothing exists
  info    print the live ward as JSON: [{"name","namespace","interface","ipv4",
          "ipv6","mac","side"}] for the six hosts and the gateway ports dev0/net0

Hosts (namespace wg-<name>, interface eth0, 10.77.0.<id>/24, fd77::<id>/64):
  device side:  pump .11  monitor .12  modality .13
  network side: ehr .21   pacs .22     workstation .23
  VLAN $VLAN_ID:     pump eth0.$VLAN_ID 10.77.100.11/24, ehr eth0.$VLAN_ID 10.77.100.21/24
Gateway ports: wg-dev0 and wg-net0 in namespace $GW_NS.

Examples:
  $PROG up && ip netns exec $GW_NS build/wardgate-dp --config deploy/examples/ward.yaml
  ip netns exec wg-pump ping -c1 10.77.0.21
EOF
}

log()  { printf '%s: %s\n' "$PROG" "$*" >&2; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die()  { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

# ---------------------------------------------------------------- helpers

host_ns()  { printf 'wg-%s' "$1"; }
host_mac() { printf '02:77:00:00:00:%s' "$1"; }        # id digits read as hex: .11 -> :11
side_switch() { [[ $1 == device ]] && echo "$SW_DEV_NS" || echo "$SW_NET_NS"; }

# Write a sysctl inside a namespace by its /proc/sys path (works for names with dots).
ns_sysctl() {  # NS PATH VALUE    e.g. ns_sysctl wg-pump net/ipv6/conf/eth0.100/disable_ipv6 1
  echo "$3" | ip netns exec "$1" tee "/proc/sys/$2" >/dev/null
}

offloads_off() {  # NS IF
  ip netns exec "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 \
    || warn "could not turn offloads off on $1/$2"
}

# veth pair created directly inside the two namespaces, never in the root namespace.
veth() {  # NS1 IF1 MAC1 MTU1 NS2 IF2 MAC2 MTU2
  ip link add name "$2" address "$3" mtu "$4" netns "$1" type veth \
    peer name "$6" address "$7" mtu "$8" netns "$5"
  offloads_off "$1" "$2"
  offloads_off "$5" "$6"
}

new_ns() {  # NS
  ip netns add "$1"
  ip -n "$1" link set lo up
}

# The ward's names. Only these are ever touched: other wg-* names on the machine (a
# WireGuard setup, say) are left alone.
ward_ns_names() {
  local entry name
  echo "$GW_NS" "$SW_DEV_NS" "$SW_NET_NS"
  for entry in "${HOSTS[@]}"; do
    read -r name _ <<<"$entry"
    host_ns "$name"; echo
  done
}
ward_link_names() {
  local entry name
  echo wg-dev0 wg-net0 wg-gw-dev0 wg-gw-net0 "wg-v$VLAN_ID"
  for entry in "${HOSTS[@]}"; do
    read -r name _ <<<"$entry"
    echo "wg-$name"
  done
}
# The ward namespaces that exist now.
ward_namespaces() {
  local existing ns
  existing=$(ip netns list 2>/dev/null | awk '{print $1}')
  for ns in $(ward_ns_names); do
    grep -qx -- "$ns" <<<"$existing" && echo "$ns"
  done
  return 0
}

# ---------------------------------------------------------------- down

teardown() {
  local ns pids pid link t
  for ns in $(ward_namespaces); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [[ -n $pids ]]; then
      for pid in $pids; do
        log "ending pid $pid in $ns: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-100)"
        kill -TERM "$pid" 2>/dev/null || true
      done
      for ((t = 0; t < 50; t++)); do
        [[ -z $(ip netns pids "$ns" 2>/dev/null || true) ]] && break
        sleep 0.1
      done
      for pid in $(ip netns pids "$ns" 2>/dev/null || true); do
        log "pid $pid in $ns ignored SIGTERM, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      done
    fi
    ip netns del "$ns" 2>/dev/null || warn "could not delete namespace $ns"
  done
  # Ward links in the root namespace (left by a hand-made experiment) go too.
  for link in $(ward_link_names); do
    if ip link show dev "$link" >/dev/null 2>&1; then
      ip link del "$link" 2>/dev/null || warn "could not delete link $link"
    fi
  done
  rm -rf "$STATE_DIR"
}

# ---------------------------------------------------------------- up

make_switch() {  # NS BRIDGE_MAC
  new_ns "$1"
  ns_sysctl "$1" net/ipv6/conf/all/disable_ipv6 1
  ns_sysctl "$1" net/ipv6/conf/default/disable_ipv6 1
  # br_netfilter (if the kernel has it) must not push bridged frames through iptables.
  local f
  for f in bridge-nf-call-iptables bridge-nf-call-ip6tables bridge-nf-call-arptables; do
    if ip netns exec "$1" test -e "/proc/sys/net/bridge/$f"; then
      ns_sysctl "$1" "net/bridge/$f" 0
    fi
  done
  # group_fwd_mask 0xfff8: forward 01:80:c2:00:00:0x groups (802.1X, LLDP, ...) except
  # STP/pause/LACP, which a Linux bridge never forwards.
  # VLAN filtering is off by default (tagged frames pass untouched); it is not asked for
  # by name because kernels without CONFIG_BRIDGE_VLAN_FILTERING refuse the attribute.
  ip -n "$1" link add br0 address "$2" mtu "$LINK_MTU" type bridge \
    stp_state 0 forward_delay 0 mcast_snooping 0 group_fwd_mask 0xfff8
  [[ $(ip -n "$1" -d -j link show br0 | jq '.[0].linkinfo.info_data.vlan_filtering // 0') == 0 ]] \
    || ip -n "$1" link set br0 type bridge vlan_filtering 0
  ip -n "$1" link set br0 up
}

make_gateway() {
  new_ns "$GW_NS"
  ns_sysctl "$GW_NS" net/ipv6/conf/all/disable_ipv6 1
  ns_sysctl "$GW_NS" net/ipv6/conf/default/disable_ipv6 1
  veth "$GW_NS" wg-dev0 02:77:00:00:00:01 "$LINK_MTU" "$SW_DEV_NS" wg-gw-dev0 02:77:00:00:01:01 "$LINK_MTU"
  veth "$GW_NS" wg-net0 02:77:00:00:00:02 "$LINK_MTU" "$SW_NET_NS" wg-gw-net0 02:77:00:00:01:02 "$LINK_MTU"
  local port
  for port in wg-dev0 wg-net0; do
    ns_sysctl "$GW_NS" "net/ipv6/conf/$port/disable_ipv6" 1
    ip -n "$GW_NS" link set "$port" up
  done
  ip -n "$SW_DEV_NS" link set wg-gw-dev0 master br0 up
  ip -n "$SW_NET_NS" link set wg-gw-net0 master br0 up
}

make_host() {  # NAME SIDE ID
  local ns sw
  ns=$(host_ns "$1")
  sw=$(side_switch "$2")
  new_ns "$ns"
  local key
  for key in all default; do
    ns_sysctl "$ns" "net/ipv6/conf/$key/disable_ipv6" 0
    ns_sysctl "$ns" "net/ipv6/conf/$key/accept_ra" 0
    ns_sysctl "$ns" "net/ipv6/conf/$key/router_solicitations" 0
    ns_sysctl "$ns" "net/ipv6/conf/$key/accept_dad" 0
  done
  veth "$ns" eth0 "$(host_mac "$3")" "$HOST_MTU" "$sw" "wg-$1" "02:77:00:00:01:$3" "$LINK_MTU"
  ip -n "$sw" link set "wg-$1" master br0 up
  ip -n "$ns" addr add "10.77.0.$3/24" dev eth0
  ip -n "$ns" -6 addr add "fd77::$3/64" dev eth0 nodad
  ip -n "$ns" link set eth0 up
}

# tc-BPF stand-in for an 802.1Q interface, for kernels without 8021q: "eth0.VID" is a
# veth whose peer "wg-vVID" hands its frames to a program that tags them and sends them
# out of eth0; a program on eth0 ingress untags frames of VLAN VID and sends them to
# wg-vVID, so eth0.VID receives them untagged.
readonly VLAN_BPF_SRC='
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#define SEC(n) __attribute__((section(n), used))
static long (*vlan_push)(struct __sk_buff *, __be16, __u16) = (void *)BPF_FUNC_skb_vlan_push;
static long (*vlan_pop)(struct __sk_buff *) = (void *)BPF_FUNC_skb_vlan_pop;
static long (*redirect)(__u32, __u64) = (void *)BPF_FUNC_redirect;
SEC("tc/tag") int tag(struct __sk_buff *skb) {      /* on wg-vVID ingress */
  if (vlan_push(skb, __builtin_bswap16(ETH_P_8021Q), VID)) return TC_ACT_SHOT;
  return redirect(UPLINK_IFINDEX, 0); /* out of eth0 */
}
SEC("tc/untag") int untag(struct __sk_buff *skb) {  /* on eth0 ingress */
  if (!skb->vlan_present || (skb->vlan_tci & 0x0fff) != VID) return TC_ACT_OK;
  if (vlan_pop(skb)) return TC_ACT_SHOT;
  return redirect(PEER_IFINDEX, 0);   /* out of wg-vVID: eth0.VID receives it */
}
char _license[] SEC("license") = "GPL";
'

ifindex() { ip -n "$1" -j link show dev "$2" | jq -r '.[0].ifindex'; }

# Both functions below run where `set -e` does not apply (callers test their status), so
# every step carries its own `|| return 1`.
make_vlan_bpf() {  # NAME ID
  local ns sub peer obj multiarch up_if peer_if
  ns=$(host_ns "$1"); sub="eth0.$VLAN_ID"; peer="wg-v$VLAN_ID"
  command -v clang >/dev/null || { warn "no clang: cannot emulate VLAN interfaces"; return 1; }
  command -v tc >/dev/null || { warn "no tc: cannot emulate VLAN interfaces"; return 1; }
  multiarch=$(gcc -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || true)
  ip -n "$ns" link add name "$sub" address "$(host_mac "$2")" mtu "$HOST_MTU" type veth \
    peer name "$peer" address "02:77:00:00:03:$2" mtu "$HOST_MTU" || return 1
  offloads_off "$ns" "$sub"
  offloads_off "$ns" "$peer"
  ns_sysctl "$ns" "net/ipv6/conf/$peer/disable_ipv6" 1 || return 1
  up_if=$(ifindex "$ns" eth0) && peer_if=$(ifindex "$ns" "$peer") || return 1
  mkdir -p "$STATE_DIR" || return 1
  obj="$STATE_DIR/vlan-$1.o"
  printf '%s' "$VLAN_BPF_SRC" | clang -O2 -target bpf ${multiarch:+-I/usr/include/$multiarch} \
    -DVID="$VLAN_ID" -DUPLINK_IFINDEX="$up_if" -DPEER_IFINDEX="$peer_if" \
    -x c -c - -o "$obj" 2>"$STATE_DIR/vlan-$1.clang.log" \
    || { warn "compiling the VLAN BPF program failed (see $STATE_DIR/vlan-$1.clang.log)"; return 1; }
  ip netns exec "$ns" tc qdisc add dev eth0 clsact || return 1
  ip netns exec "$ns" tc qdisc add dev "$peer" clsact || return 1
  ip netns exec "$ns" tc filter add dev eth0 ingress bpf direct-action obj "$obj" sec tc/untag \
    || { warn "tc could not load the VLAN BPF program"; return 1; }
  ip netns exec "$ns" tc filter add dev "$peer" ingress bpf direct-action obj "$obj" sec tc/tag \
    || { warn "tc could not load the VLAN BPF program"; return 1; }
  ip -n "$ns" link set "$peer" up || return 1
}

make_vlan() {  # NAME ID
  local ns sub
  ns=$(host_ns "$1"); sub="eth0.$VLAN_ID"
  if ip -n "$ns" link add link eth0 name "$sub" type vlan id "$VLAN_ID" 2>/dev/null; then
    offloads_off "$ns" "$sub"
  else
    log "kernel has no 802.1Q support, emulating $ns/$sub with tc-BPF"
    if ! make_vlan_bpf "$1" "$2"; then
      ip netns exec "$ns" tc qdisc del dev eth0 clsact 2>/dev/null || true
      ip -n "$ns" link del "$sub" 2>/dev/null || true
      return 1
    fi
  fi
  ns_sysctl "$ns" "net/ipv6/conf/$sub/disable_ipv6" 1 || return 1
  ip -n "$ns" addr add "10.77.$VLAN_ID.$2/24" dev "$sub" || return 1
  ip -n "$ns" link set "$sub" up || return 1
}

on_up_error() {  # LINE COMMAND
  trap - ERR
  printf '%s: error: up failed at line %s: %s\n' "$PROG" "$1" "$2" >&2
  log "tearing the half-built ward down"
  teardown
  exit 1
}

build_ward() {
  local with_vlan=$1 entry name side id v
  set -E
  trap 'on_up_error $LINENO "$BASH_COMMAND"' ERR
  teardown
  make_switch "$SW_DEV_NS" 02:77:00:00:02:01
  make_switch "$SW_NET_NS" 02:77:00:00:02:02
  make_gateway
  for entry in "${HOSTS[@]}"; do
    read -r name side id <<<"$entry"
    make_host "$name" "$side" "$id"
  done
  if [[ $with_vlan == yes ]]; then
    for v in "${VLAN_HOSTS[@]}"; do
      for entry in "${HOSTS[@]}"; do
        read -r name side id <<<"$entry"
        [[ $name == "$v" ]] || continue
        make_vlan "$name" "$id" || warn "no VLAN $VLAN_ID interface on $(host_ns "$name")"
      done
    done
  fi
  trap - ERR
  set +E
  log "ward is up (gateway ports wg-dev0/wg-net0 in $GW_NS; nothing crosses until wardgate-dp runs there)"
}

# ---------------------------------------------------------------- info

info() {
  local entry name side id ns objects
  [[ -n $(ward_namespaces) ]] || die "the ward is not up (no ward namespaces); run: $PROG up"
  # Collected first, so a ward that is half there prints an error and no partial JSON.
  objects=$(
    for entry in "${HOSTS[@]}"; do
      read -r name side id <<<"$entry"
      ns=$(host_ns "$name")
      ip netns exec "$ns" true 2>/dev/null || die "the ward is not up (namespace $ns missing); run: $PROG up"
      ip -n "$ns" -j addr show dev eth0 2>/dev/null | jq -c --arg name "$name" --arg ns "$ns" --arg side "$side" '
        .[0] | {name: $name, namespace: $ns, interface: .ifname,
                ipv4: ([.addr_info[] | select(.family == "inet") | .local][0] // ""),
                ipv6: ([.addr_info[] | select(.family == "inet6" and .scope == "global") | .local][0] // ""),
                mac: .address, side: $side}' \
        || die "the ward is not up ($ns has no eth0); run: $PROG up"
    done
    for name in dev0 net0; do
      ip -n "$GW_NS" -j link show dev "wg-$name" 2>/dev/null | jq -c --arg name "$name" --arg ns "$GW_NS" '
        .[0] | {name: $name, namespace: $ns, interface: .ifname, ipv4: "", ipv6: "",
                mac: .address, side: "gateway"}' \
        || die "the ward is not up ($GW_NS has no wg-$name); run: $PROG up"
    done
  )
  jq -s . <<<"$objects"
}

# ---------------------------------------------------------------- main

main() {
  local with_vlan=yes cmd=""
  while (($#)); do
    case $1 in
      -h|--help|help) usage; exit 0 ;;
      --no-vlan) with_vlan=no ;;
      up|down|info) [[ -z $cmd ]] || { usage >&2; exit 2; }; cmd=$1 ;;
      *) printf '%s: unknown argument: %s\n\n' "$PROG" "$1" >&2; usage >&2; exit 2 ;;
    esac
    shift
  done
  [[ -n $cmd ]] || { usage >&2; exit 2; }
  [[ $EUID -eq 0 ]] || die "must run as root (network namespaces)"
  local tool
  for tool in ip ethtool jq; do
    command -v "$tool" >/dev/null || die "$tool not found (run deploy/install-deps.sh)"
  done

  case $cmd in
    up|down)
      mkdir -p "${LOCK_FILE%/*}"
      exec 9>"$LOCK_FILE"
      flock -w 60 9 || die "another $PROG up/down is running (lock $LOCK_FILE)"
      if [[ $cmd == up ]]; then build_ward "$with_vlan"; else teardown; log "ward is down"; fi
      ;;
    info) info ;;
  esac
}

main "$@"
