#!/usr/bin/env python3
"""Capture fixtures for CaptureTests, with an independent account of what is in them.

Usage: make_captures.py OUTPUT_DIR

Frames are built with scapy; pcap and pcapng containers are written here with `struct`. The
expected UDP datagrams and skip counts in OUTPUT_DIR/expected.json come from scapy *reading
the files back* (rdpcap), classified by the rules below, and are checked against what each
fixture meant to contain, so a mistake in this script fails loudly instead of passing through.

Classification (same as the Swift reader's contract):
  IPv4 with MF set or a fragment offset -> "fragment"; IPv4 protocol not 17 -> "nonUDP";
  IPv6 with a Fragment header -> "fragment"; IPv6 without UDP -> "nonUDP";
  neither IPv4 nor IPv6 -> "nonIP"; otherwise a datagram.
Timestamps are exact: seconds and nanoseconds (finer units truncated).

Requires scapy: python3 -m pip install scapy
"""
import json
import os
import struct
import sys

try:
    from scapy.all import (ARP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, ICMPv6EchoRequest,
                           IPOption_NOP, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                           IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, CookedLinux, CookedLinuxV2,
                           rdpcap)
except ImportError as error:  # pragma: no cover
    sys.stderr.write("scapy is not installed (%s): run `python3 -m pip install scapy`\n" % error)
    sys.exit(3)

MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"


class Fixture:
    """One capture file: its frames in order, with what each should yield."""

    def __init__(self, name):
        self.name = name
        self.frames = []  # (bytes, (sec, nsec), intent) ; intent = dict or reason string

    def add(self, frame, ts, intent, **extra):
        self.frames.append(dict(frame=bytes(frame), ts=ts, intent=intent, **extra))


def udp_intent(src, sport, dst, dport, payload):
    return dict(src=src, sport=sport, dst=dst, dport=dport, payload=payload.hex())


# ---------------------------------------------------------------- containers


def write_pcap(path, linktype, frames, endian="<", nano=False, snaplen=65535):
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    with open(path, "wb") as f:
        f.write(struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        for item in frames:
            sec, nsec = item["ts"]
            frac = nsec if nano else nsec // 1000
            data = item["frame"]
            f.write(struct.pack(endian + "IIII", sec, frac, len(data), len(data)))
            f.write(data)


def pad4(data):
    return data + b"\x00" * (-len(data) % 4)


def block(endian, btype, body):
    body = pad4(body)
    length = 12 + len(body)
    return struct.pack(endian + "II", btype, length) + body + struct.pack(endian + "I", length)


def option(endian, code, value):
    return struct.pack(endian + "HH", code, len(value)) + pad4(value)


def shb(endian):
    body = struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1)
    body += option(endian, 4, b"make_captures.py") + option(endian, 0, b"")  # shb_userappl
    return block(endian, 0x0A0D0D0A, body)


def idb(endian, linktype, tsresol=None, name=None):
    body = struct.pack(endian + "HHI", linktype, 0, 262144)
    opts = b""
    if name is not None:
        opts += option(endian, 2, name)
    if tsresol is not None:
        opts += option(endian, 9, bytes([tsresol]))
    if opts:
        opts += option(endian, 0, b"")
    return block(endian, 1, body + opts)


def ticks_for(ts, tsresol):
    sec, nsec = ts
    if tsresol & 0x80:
        shift = tsresol & 0x7F
        # The largest tick count whose time does not exceed ts.
        return (sec << shift) + (nsec << shift) // 1_000_000_000
    exp = tsresol
    per = 10 ** exp
    return sec * per + nsec * per // 1_000_000_000


def epb(endian, ifid, ticks, data, comment=None):
    body = struct.pack(endian + "IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
    body += pad4(data)
    if comment is not None:
        body += option(endian, 1, comment) + option(endian, 0, b"")
    return block(endian, 6, body)


def spb(endian, data):
    return block(endian, 3, struct.pack(endian + "I", len(data)) + data)


def time_of(ticks, tsresol):
    """What a reader should report for `ticks` units: (sec, nsec), truncated."""
    if tsresol & 0x80:
        shift = tsresol & 0x7F
        return ticks >> shift, ((ticks & ((1 << shift) - 1)) * 1_000_000_000) >> shift
    per = 10 ** tsresol
    return ticks // per, (ticks % per) * 1_000_000_000 // per


# ---------------------------------------------------------------- oracle


def classify(p):
    if IP in p:
        ip = p[IP]
        if ip.flags.MF or ip.frag:
            return "fragment"
        if ip.proto != 17 or UDP not in p:
            return "nonUDP"
        src, dst = ip.src, ip.dst
    elif IPv6 in p:
        ip6 = p[IPv6]
        if IPv6ExtHdrFragment in p:
            return "fragment"
        if UDP not in p:
            return "nonUDP"
        src, dst = ip6.src, ip6.dst
    else:
        return "nonIP"
    u = p[UDP]
    payload = bytes(u)[8:u.len]
    return udp_intent(src, u.sport, dst, u.dport, payload)


def scapy_time(p):
    t = p.time
    sec = int(t)
    return sec, int((t - sec) * 1_000_000_000)


def expected_from_scapy(fixture, path):
    packets = rdpcap(path)
    if len(packets) != len(fixture.frames):
        raise SystemExit("%s: scapy read %d frames, fixture has %d" % (fixture.name, len(packets), len(fixture.frames)))
    datagrams, skipped = [], {}
    for number, (p, item) in enumerate(zip(packets, fixture.frames), start=1):
        outcome = classify(p)
        if outcome != item["intent"]:
            raise SystemExit("%s frame %d: scapy says %r, fixture meant %r\n%s"
                             % (fixture.name, number, outcome, item["intent"], p.show(dump=True)))
        if isinstance(outcome, str):
            skipped[outcome] = skipped.get(outcome, 0) + 1
            continue
        # Simple Packet Blocks carry no timestamp: the reader reports zero (scapy: none).
        ts = (0, 0) if item.get("spb") else scapy_time(p)
        if ts != tuple(item["ts"]):
            raise SystemExit("%s frame %d: scapy time %r, fixture meant %r" % (fixture.name, number, ts, item["ts"]))
        datagrams.append(dict(outcome, frame=number, seconds=ts[0], nanoseconds=ts[1]))
    return dict(file=fixture.name, frames=len(packets), datagrams=datagrams, skipped=skipped)


# ---------------------------------------------------------------- frames


def eth(payload, src=MAC_A, dst=MAC_B):
    return Ether(src=src, dst=dst) / payload


def v4udp(src, sport, dst, dport, data, **ip):
    return IP(src=src, dst=dst, **ip) / UDP(sport=sport, dport=dport) / data


def v6udp(src, sport, dst, dport, data, ext=None):
    layer = IPv6(src=src, dst=dst)
    if ext is not None:
        layer = layer / ext
    return layer / UDP(sport=sport, dport=dport) / data


def ethernet_ipv4():
    fx = Fixture("eth_ipv4.pcap")
    t0 = 1_700_000_000
    fx.add(eth(v4udp("10.0.0.1", 40000, "10.0.0.2", 5004, b"hello, capture")), (t0, 123_456_000),
           udp_intent("10.0.0.1", 40000, "10.0.0.2", 5004, b"hello, capture"))
    # One payload byte: the frame is padded to 60 bytes with junk that must not leak in.
    short = bytes(eth(v4udp("10.0.0.2", 5004, "10.0.0.1", 40000, b"\x01")))
    fx.add(short + b"\xAA" * (60 - len(short)), (t0, 500_000_000),
           udp_intent("10.0.0.2", 5004, "10.0.0.1", 40000, b"\x01"))
    fx.add(eth(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1234, dport=80) / b"GET /"), (t0 + 1, 0), "nonUDP")
    # First fragment of a UDP datagram: MF set, offset 0.
    fx.add(eth(v4udp("10.0.0.1", 40002, "10.0.0.2", 5006, b"F" * 64, flags="MF", id=77)), (t0 + 1, 1000), "fragment")
    fx.add(eth(ARP(psrc="10.0.0.1", pdst="10.0.0.2")), (t0 + 1, 2000), "nonIP")
    # IPv4 with options (IHL 6).
    fx.add(eth(v4udp("192.168.1.10", 6000, "192.168.1.20", 6001, b"options",
                     options=[IPOption_NOP(), IPOption_NOP(), IPOption_NOP(), IPOption_NOP()])),
           (t0 + 2, 999_999_000), udp_intent("192.168.1.10", 6000, "192.168.1.20", 6001, b"options"))
    # Last fragment: offset non-zero, MF clear.
    fx.add(eth(IP(src="10.0.0.1", dst="10.0.0.2", proto=17, frag=10, id=77) / (b"G" * 24)), (t0 + 3, 0), "fragment")
    fx.add(eth(v4udp("10.0.0.3", 7000, "10.0.0.4", 7001, b"")), (t0 + 3, 1_000),
           udp_intent("10.0.0.3", 7000, "10.0.0.4", 7001, b""))
    big = bytes(range(256)) * 5 + b"end"
    fx.add(eth(v4udp("192.0.2.1", 50000, "239.1.2.3", 5004, big)), (t0 + 4, 4_000),
           udp_intent("192.0.2.1", 50000, "239.1.2.3", 5004, big))
    return fx, lambda path: write_pcap(path, 1, fx.frames)


def big_endian_us():
    fx = Fixture("be_us.pcap")
    t0 = 1_600_000_000
    fx.add(eth(v4udp("172.16.0.1", 1111, "172.16.0.2", 2222, b"big endian")), (t0, 1_000),
           udp_intent("172.16.0.1", 1111, "172.16.0.2", 2222, b"big endian"))
    fx.add(eth(v6udp("2001:db8::1", 3333, "2001:db8:0:1::2", 4444, b"v6 over ethernet")), (t0, 999_999_000),
           udp_intent("2001:db8::1", 3333, "2001:db8:0:1::2", 4444, b"v6 over ethernet"))
    fx.add(eth(v4udp("172.16.0.2", 2222, "172.16.0.1", 1111, b"\x00\xff" * 100)), (t0 + 60, 0),
           udp_intent("172.16.0.2", 2222, "172.16.0.1", 1111, b"\x00\xff" * 100))
    return fx, lambda path: write_pcap(path, 1, fx.frames, endian=">")


def nanosecond(endian, name):
    fx = Fixture(name)
    t0 = 1_650_000_000
    for i, ns in enumerate([1, 123_456_789, 999_999_999]):
        data = b"ns-%d" % i
        fx.add(eth(v4udp("198.51.100.1", 9000 + i, "198.51.100.2", 9100, data)), (t0 + i, ns),
               udp_intent("198.51.100.1", 9000 + i, "198.51.100.2", 9100, data))
    return fx, lambda path: write_pcap(path, 1, fx.frames, endian=endian, nano=True)


def sll_ipv6():
    fx = Fixture("sll_ipv6.pcap")
    t0 = 1_710_000_000

    def sll(payload, proto):
        return CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, src=b"\x02\x00\x00\x00\x00\x0a\x00\x00",
                           proto=proto) / payload

    hbh = IPv6ExtHdrHopByHop()
    fx.add(sll(v6udp("fe80::1", 5353 + 1, "ff02::fb", 6000, b"hop-by-hop", ext=hbh), 0x86DD), (t0, 10_000),
           udp_intent("fe80::1", 5354, "ff02::fb", 6000, b"hop-by-hop"))
    fx.add(sll(v6udp("2001:db8::a", 7000, "2001:db8::b", 7001, b"plain v6"), 0x86DD), (t0, 20_000),
           udp_intent("2001:db8::a", 7000, "2001:db8::b", 7001, b"plain v6"))
    fx.add(sll(v6udp("2001:db8::a", 7000, "2001:db8::b", 7001, b"x" * 40, ext=IPv6ExtHdrFragment(m=1, id=9)), 0x86DD),
           (t0, 30_000), "fragment")
    fx.add(sll(IPv6(src="2001:db8::a", dst="2001:db8::b") / ICMPv6EchoRequest(), 0x86DD), (t0, 40_000), "nonUDP")
    ext = IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting(addresses=["2001:db8::c"]) / IPv6ExtHdrDestOpt()
    fx.add(sll(v6udp("2001:db8:1:2:3:4:5:6", 8000, "::ffff:192.0.2.7", 8001, b"ext chain", ext=ext), 0x86DD),
           (t0 + 1, 0), udp_intent("2001:db8:1:2:3:4:5:6", 8000, "::ffff:192.0.2.7", 8001, b"ext chain"))
    fx.add(sll(v4udp("10.1.1.1", 1000, "10.1.1.2", 2000, b"v4 on sll"), 0x0800), (t0 + 2, 5_000),
           udp_intent("10.1.1.1", 1000, "10.1.1.2", 2000, b"v4 on sll"))
    return fx, lambda path: write_pcap(path, 113, fx.frames)


def sll2():
    fx = Fixture("sll2.pcap")
    t0 = 1_720_000_000
    frame = CookedLinuxV2(proto=0x0800, ifindex=3, lladdrtype=1, pkttype=4, lladdrlen=6,
                          src=b"\x02\x00\x00\x00\x00\x0a\x00\x00") / v4udp("10.2.0.1", 3478, "10.2.0.2", 3479, b"sll2")
    fx.add(frame, (t0, 0), udp_intent("10.2.0.1", 3478, "10.2.0.2", 3479, b"sll2"))
    frame6 = CookedLinuxV2(proto=0x86DD, ifindex=3, lladdrtype=1, pkttype=4, lladdrlen=6,
                           src=b"\x02\x00\x00\x00\x00\x0a\x00\x00") / v6udp("fd00::1", 1, "fd00::2", 2, b"sll2 v6")
    fx.add(frame6, (t0, 1_000), udp_intent("fd00::1", 1, "fd00::2", 2, b"sll2 v6"))
    return fx, lambda path: write_pcap(path, 276, fx.frames)


def raw_ip():
    fx = Fixture("raw.pcap")
    t0 = 1_730_000_000
    fx.add(v4udp("203.0.113.5", 1234, "203.0.113.6", 5678, b"raw v4"), (t0, 7_000),
           udp_intent("203.0.113.5", 1234, "203.0.113.6", 5678, b"raw v4"))
    fx.add(v6udp("2001:db8::5", 1234, "2001:db8::6", 5678, b"raw v6"), (t0, 8_000),
           udp_intent("2001:db8::5", 1234, "2001:db8::6", 5678, b"raw v6"))
    fx.add(IP(src="203.0.113.5", dst="203.0.113.6") / TCP(sport=1, dport=2), (t0, 9_000), "nonUDP")
    return fx, lambda path: write_pcap(path, 101, fx.frames)


def two_interfaces():
    """pcapng: interface 0 Ethernet at ns resolution, interface 1 raw IP at 2^-20 s, an
    unknown block and a statistics block in between, EPB options, and a final SPB."""
    fx = Fixture("two_if.pcapng")
    e = "<"
    res = {0: 9, 1: 0x80 | 20}
    t0 = 1_740_000_000
    items = [
        (0, eth(v4udp("10.9.0.1", 1500, "10.9.0.2", 1600, b"eth if0")), (t0, 123_456_789),
         udp_intent("10.9.0.1", 1500, "10.9.0.2", 1600, b"eth if0")),
        (1, v4udp("10.9.1.1", 2500, "10.9.1.2", 2600, b"raw if1"), (t0, 500_000_000),
         udp_intent("10.9.1.1", 2500, "10.9.1.2", 2600, b"raw if1")),
        (1, v6udp("2001:db8:9::1", 2501, "2001:db8:9::2", 2601, b"raw v6 if1"), (t0 + 1, 333_333_333), None),
        (0, eth(IP(src="10.9.0.1", dst="10.9.0.2") / TCP()), (t0 + 2, 1), "nonUDP"),
        (0, eth(v6udp("2001:db8:9::3", 2502, "2001:db8:9::4", 2602, b"eth v6 if0")), (t0 + 3, 999_999_999),
         udp_intent("2001:db8:9::3", 2502, "2001:db8:9::4", 2602, b"eth v6 if0")),
    ]
    out = shb(e) + idb(e, 1, tsresol=res[0], name=b"eth0") + idb(e, 101, tsresol=res[1], name=b"tun0")
    for n, (ifid, frame, ts, intent) in enumerate(items):
        ticks = ticks_for(ts, res[ifid])
        when = time_of(ticks, res[ifid])
        if intent is None:
            intent = udp_intent("2001:db8:9::1", 2501, "2001:db8:9::2", 2601, b"raw v6 if1")
        fx.add(frame, when, intent)
        out += epb(e, ifid, ticks, bytes(frame), comment=b"frame %d" % n if n == 1 else None)
        if n == 1:
            out += block(e, 0x40000BAD, struct.pack(e + "I", 32473) + b"custom block, skip me")
            out += block(e, 5, struct.pack(e + "III", 0, 0, 0) + option(e, 0, b""))  # ISB
    last = eth(v4udp("10.9.0.2", 1600, "10.9.0.1", 1500, b"simple packet block"))
    fx.add(last, (0, 0), udp_intent("10.9.0.2", 1600, "10.9.0.1", 1500, b"simple packet block"), spb=True)
    out += spb(e, bytes(last))
    return fx, lambda path: open(path, "wb").write(out)


def vlan():
    """pcapng with 802.1Q and stacked 802.1ad + 802.1Q tags; a second section in big-endian."""
    fx = Fixture("vlan.pcapng")
    t0 = 1_750_000_000
    f1 = Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=100) / v4udp("10.100.0.1", 4000, "10.100.0.2", 4001, b"vlan 100")
    f2 = (Ether(src=MAC_A, dst=MAC_B) / Dot1AD(vlan=10) / Dot1Q(vlan=20)
          / v6udp("2001:db8:100::1", 4002, "2001:db8:100::2", 4003, b"qinq v6"))
    f3 = Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=200) / ARP()
    f4 = Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=300) / v4udp("10.30.0.1", 4004, "10.30.0.2", 4005, b"section two")
    fx.add(f1, (t0, 1_000), udp_intent("10.100.0.1", 4000, "10.100.0.2", 4001, b"vlan 100"))
    fx.add(f2, (t0, 2_000), udp_intent("2001:db8:100::1", 4002, "2001:db8:100::2", 4003, b"qinq v6"))
    fx.add(f3, (t0, 3_000), "nonIP")
    fx.add(f4, (t0 + 5, 4_000), udp_intent("10.30.0.1", 4004, "10.30.0.2", 4005, b"section two"))
    out = shb("<") + idb("<", 1)
    for item in fx.frames[:3]:
        out += epb("<", 0, ticks_for(item["ts"], 6), item["frame"])
    out += shb(">") + idb(">", 1)
    out += epb(">", 0, ticks_for(fx.frames[3]["ts"], 6), fx.frames[3]["frame"])
    return fx, lambda path: open(path, "wb").write(out)


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: make_captures.py OUTPUT_DIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    captures = []
    for make in (ethernet_ipv4, big_endian_us, lambda: nanosecond("<", "ns.pcap"),
                 lambda: nanosecond(">", "ns_be.pcap"), sll_ipv6, sll2, raw_ip, two_interfaces, vlan):
        fixture, write = make()
        path = os.path.join(outdir, fixture.name)
        write(path)
        captures.append(expected_from_scapy(fixture, path))
    with open(os.path.join(outdir, "expected.json"), "w") as f:
        json.dump(dict(captures=captures), f, indent=1)
    print("wrote %d captures to %s" % (len(captures), outdir))


if __name__ == "__main__":
    main()
