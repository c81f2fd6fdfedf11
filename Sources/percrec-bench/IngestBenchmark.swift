// `percrec-bench ingest`: the recorder's sustained ingest, datagrams/s from a load generator on
// loopback UDP through the real recorder path to committed SQLite rows.
//
// Before timing, `IngestPackets` builds rate × seconds PERC datagrams as the Media Distributor
// sends them to a recorder (6 senders, Opus- and VP8-sized, EKT fields, SEQ rewritten into the
// OHB). Then two threads run, each pinned to its own core:
//
// - the recorder (this thread, core 0): a `UDPSocket` with SO_RXQ_OVFL and the largest receive
//   buffer allowed; drains it with `recvmmsg` (64 a call), feeds each datagram to
//   `ArchivingReceiver.receive` (HBH open, replay check, OHB restore, `SegmentWriter.append`)
//   and calls `SegmentWriter.commitIfDue` between drains; `finish` at the end;
// - the load generator (core 1): `sendmmsg` on a connected socket at a fixed offered rate.
//
// ingest_pps = committed rows / (first datagram received → final commit done). Afterwards, on
// the same core and the same packets without sockets, the baseline (libsrtp2 + raw SQLite, see
// IngestBaseline.swift) and the recorder path split into its parts.
import Archive
import Net
import Recorder
import SRTP
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

enum IngestBenchmark {
    static let summary = "recorder ingest datagrams/s: loopback UDP → ArchivingReceiver → SQLite rows (vs libsrtp2 + raw SQLite)"
    static let defaultSeconds = 30
    static let quickSeconds = 3
    static let defaultRate = 160_000
    static let targetPPS = 150_000
    static let recorderCPU = 0
    static let generatorCPU = 1
    static let receiveBatch = 64
    static let receiveSlot = 2048
    static let sendBatch = 32
    /// Requested with SO_RCVBUFFORCE (the kernel caps it at INT_MAX/2 and doubles it).
    static let requestedReceiveBuffer = Int(Int32.max / 2)
    static let componentSample = 320_000

    static let usageText = """
        options (ingest):
          --seconds N   offered-load duration (default \(defaultSeconds))
          --rate PPS    offered datagrams/s (default \(defaultRate))
          --archive P   archive file (default: a temporary file, removed at the end)
          --quick       \(quickSeconds) s smoke run
          --skip-baseline   no baseline and no component split (for profiling the live path)

        """

    struct Options {
        var seconds = IngestBenchmark.defaultSeconds
        var rate = IngestBenchmark.defaultRate
        var archivePath: String?
        var skipBaseline = false
    }

    static func parse(_ arguments: [String]) -> Options? {
        var o = Options()
        var i = 0
        func value(_ name: String) -> String? {
            guard i + 1 < arguments.count else { writeStderr("percrec-bench ingest: \(name) needs a value\n"); return nil }
            i += 1
            return arguments[i]
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--seconds":
                guard let v = value("--seconds").flatMap({ Int($0) }), v > 0 else { return nil }
                o.seconds = v
            case "--rate":
                guard let v = value("--rate").flatMap({ Int($0) }), v > 0 else { return nil }
                o.rate = v
            case "--archive":
                guard let v = value("--archive"), !v.isEmpty else { return nil }
                o.archivePath = v
            case "--quick":
                o.seconds = quickSeconds
            case "--skip-baseline":
                o.skipBaseline = true
            default:
                writeStderr("percrec-bench ingest: unknown option '\(arguments[i])'\n")
                return nil
            }
            i += 1
        }
        return o
    }

    static func run(_ arguments: [String]) -> Int32 {
        guard let options = parse(arguments) else {
            writeStderr(usage())
            return 2
        }
        do {
            return try benchmark(options)
        } catch {
            writeStderr("percrec-bench ingest: \(error)\n")
            return 1
        }
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// What the generator and the recorder share.
    final class Shared: @unchecked Sendable {
        let sent = Atomic<Int>(0)
        let done = Atomic<Bool>(false)
        let sendStart = Atomic<UInt64>(0)
        let sendEnd = Atomic<UInt64>(0)
        let retries = Atomic<Int>(0)
        let generatorCPU = Atomic<Int>(-1)
        let generatorPinned = Atomic<Bool>(false)
        /// Set by the generator thread before it ends (read after join).
        var generatorCPUSeconds = 0.0
        var sendCallNanoseconds: UInt64 = 0
        var error: String?
    }

    // MARK: - The run

    static func benchmark(_ options: Options) throws -> Int32 {
        guard let recvmmsg = IngestSystem.recvmmsgCall, IngestSystem.sendmmsgCall != nil else {
            throw Failure(description: "recvmmsg/sendmmsg not found in libc")
        }
        let total = options.rate * options.seconds
        let loadAtStart = loadAverage()
        let pid = getpid()
        let temporary = options.archivePath == nil
        let archivePath = options.archivePath ?? "/tmp/percrec-bench-ingest-\(pid).sqlite"

        writeStderr("ingest: generating \(total) datagrams (\(options.rate) pps × \(options.seconds) s)…\n")
        let genStart = monotonicNanoseconds()
        let packets = try IngestPackets(count: total)
        let genSeconds = Double(monotonicNanoseconds() &- genStart) / 1e9
        writeStderr("ingest: generated in \(fixed(genSeconds, decimals: 1)) s, \(packets.totalBytes >> 20) MiB, "
                    + "average \(fixed(packets.averageBytes, decimals: 0)) bytes, \(packets.videoPackets) video, "
                    + "\(packets.fullFieldPackets) with a Full EKT field\n")

        // The archive is opened before pinning, as a recorder process would: its background WAL
        // checkpoint thread stays free to run on any core. The receive loop (this thread) is
        // pinned to one core.
        if temporary { IngestBaseline.removeDatabase(archivePath) }
        let archive = try Archive(path: archivePath)
        let recorderPinned = IngestSystem.pinCurrentThread(to: recorderCPU)
        defer {
            archive.close()   // idempotent; also on an early throw
            if temporary { IngestBaseline.removeDatabase(archivePath) }
        }
        let writer = try SegmentWriter(archive: archive, conference: "ingest-benchmark", origin: .live(recorder: "percrec-bench"),
                                       authorityKeyID: "bench")
        let receiver = try ArchivingReceiver(writer: writer, outerKey: packets.recorderHopKey, outerSalt: packets.recorderHopSalt)
        let socket = try UDPSocket(bindingTo: .loopback(.ipv4, port: 0), reportsKernelDrops: true)
        let fd = socket.fileDescriptor
        var forced = Int32(requestedReceiveBuffer)
        let forcedOK = setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &forced, socklen_t(MemoryLayout<Int32>.size)) == 0
        if !forcedOK { try socket.setReceiveBufferSize(requestedReceiveBuffer) }
        let rcvbuf = try socket.receiveBufferSize()
        let port = socket.localAddress.port
        writeStderr("ingest: recorder on 127.0.0.1:\(port), cpu \(IngestSystem.currentCPU()) (pinned: \(recorderPinned)), "
                    + "rcvbuf \(rcvbuf) bytes via \(forcedOK ? "SO_RCVBUFFORCE" : "SO_RCVBUF")\n")

        // Receive buffers and message headers for recvmmsg.
        let batch = receiveBatch, slot = receiveSlot, controlSize = 64
        let buffers = UnsafeMutableRawPointer.allocate(byteCount: batch * slot, alignment: 64)
        let controls = UnsafeMutableRawPointer.allocate(byteCount: batch * controlSize, alignment: 16)
        let vectors = UnsafeMutablePointer<iovec>.allocate(capacity: batch)
        let messages = UnsafeMutablePointer<MMsgHdr>.allocate(capacity: batch)
        defer { buffers.deallocate(); controls.deallocate(); vectors.deallocate(); messages.deallocate() }
        buffers.initializeMemory(as: UInt8.self, repeating: 0, count: batch * slot)
        controls.initializeMemory(as: UInt8.self, repeating: 0, count: batch * controlSize)
        for k in 0 ..< batch {
            vectors[k] = iovec(iov_base: buffers + k * slot, iov_len: slot)
            var m = MMsgHdr()
            m.header.msg_iov = vectors + k
            m.header.msg_iovlen = 1
            m.header.msg_control = controls + k * controlSize
            m.header.msg_controllen = controlSize
            messages[k] = m
        }

        // The load generator, on the other core.
        let shared = Shared()
        let generator = BenchThread {
            generate(packets, total: total, rate: options.rate, port: port, shared: shared)
        }

        // The recorder loop.
        var received = 0, truncated = 0, batches = 0, waits = 0
        var kernelDrops: UInt32 = 0
        var firstPacket: UInt64 = 0, lastActivity = monotonicNanoseconds()
        var recvNs: UInt64 = 0, receiveNs: UInt64 = 0, commitNs: UInt64 = 0, waitNs: UInt64 = 0
        var longestCommit: UInt64 = 0
        let cpuStart = IngestSystem.threadCPUSeconds()
        let schedStart = IngestSystem.threadSchedStat()
        let loopStart = monotonicNanoseconds()
        var nextProgress = loopStart + 5_000_000_000
        var lastProgressRows = 0, lastProgressTime = loopStart
        var used = batch
        while true {
            for k in 0 ..< used {
                messages[k].header.msg_controllen = controlSize
                messages[k].header.msg_flags = 0
            }
            let t0 = monotonicNanoseconds()
            let n = Int(recvmmsg(fd, messages, UInt32(batch), Int32(MSG_DONTWAIT), nil))
            let t1 = monotonicNanoseconds()
            if n > 0 {
                recvNs &+= t1 &- t0
                if firstPacket == 0 { firstPacket = t0 }
                batches += 1
                used = n
                let arrival = IngestSystem.unixTime()
                for k in 0 ..< n {
                    let h = messages[k].header
                    if h.msg_flags & Int32(MSG_TRUNC) != 0 { truncated += 1 }
                    if h.msg_controllen > 0, let d = overflowCount(h.msg_control!, length: h.msg_controllen) { kernelDrops = d }
                    receiver.receive(UnsafeMutableRawBufferPointer(start: buffers + k * slot, count: Int(messages[k].length)),
                                     arrival: arrival)
                }
                received += n
                let t2 = monotonicNanoseconds()
                receiveNs &+= t2 &- t1
                try writer.commitIfDue()
                let t3 = monotonicNanoseconds()
                commitNs &+= t3 &- t2
                longestCommit = max(longestCommit, t3 &- t2)
                lastActivity = t3
            } else {
                let number = errno
                used = 0
                if n < 0, number != EAGAIN, number != EINTR {
                    throw Failure(description: "recvmmsg: \(String(cString: strerror(number)))")
                }
                let t2 = monotonicNanoseconds()
                try writer.commitIfDue()
                let t3 = monotonicNanoseconds()
                commitNs &+= t3 &- t2
                longestCommit = max(longestCommit, t3 &- t2)
                if shared.done.load(ordering: .acquiring) {
                    let sent = shared.sent.load(ordering: .relaxed)
                    if received >= sent || t3 &- lastActivity > 500_000_000 { break }
                }
                var wait = Duration.milliseconds(10)
                if let d = writer.commitDeadline { wait = max(.zero, min(wait, d - .now)) }
                _ = try Poller.wait(for: fd, interest: .read, timeout: wait)
                waits += 1
                waitNs &+= monotonicNanoseconds() &- t3
            }
            let now = monotonicNanoseconds()
            if now >= nextProgress {
                let rows = writer.committedPackets
                let rate = Double(rows - lastProgressRows) * 1e9 / Double(now &- lastProgressTime)
                let queue = IngestSystem.procUDP(port: port)
                writeStderr("ingest: \(fixed(Double(now &- loopStart) / 1e9, decimals: 1)) s  sent \(shared.sent.load(ordering: .relaxed))  "
                            + "stored \(rows)  \(pps(rate)) rows/s  rx_queue \(queue.map { "\($0.rxQueue)" } ?? "?") B  "
                            + "kernel_drops \(max(Int(kernelDrops), queue?.drops ?? 0))\n")
                lastProgressRows = rows
                lastProgressTime = now
                nextProgress += 5_000_000_000
            }
        }
        let finishStart = monotonicNanoseconds()
        try writer.finish(reason: "benchmark ended")
        let end = monotonicNanoseconds()
        commitNs &+= end &- finishStart
        let cpuSeconds = IngestSystem.threadCPUSeconds() - cpuStart
        let schedEnd = IngestSystem.threadSchedStat()
        let runqueueWait = schedStart.flatMap { a in schedEnd.map { b in Double(b.waiting &- a.waiting) / 1e9 } }
        let proc = IngestSystem.procUDP(port: port)
        generator.join()
        socket.close()
        archive.close()
        if temporary { IngestBaseline.removeDatabase(archivePath) }   // before the baseline needs the disk
        if let e = shared.error { throw Failure(description: "load generator: \(e)") }

        let sent = shared.sent.load(ordering: .relaxed)
        let sendSeconds = Double(shared.sendEnd.load(ordering: .relaxed) &- shared.sendStart.load(ordering: .relaxed)) / 1e9
        let offered = sendSeconds > 0 ? Double(sent) / sendSeconds : 0
        let stored = writer.committedPackets
        let elapsed = firstPacket == 0 ? 0 : Double(end &- firstPacket) / 1e9
        let ingest = elapsed > 0 ? Double(stored) / elapsed : 0
        let drainMs = Double(end &- shared.sendEnd.load(ordering: .relaxed)) / 1e6
        let recorderDrops = receiver.drops.total

        // Baseline and components, same core, same packets.
        var baseline: IngestBaseline.Outcome?
        var components: IngestBaseline.Components?
        if !options.skipBaseline {
            writeStderr("ingest: baseline (libsrtp2 + raw SQLite) over \(total) packets…\n")
            baseline = try IngestBaseline.baseline(packets, count: total, path: "/tmp/percrec-bench-ingest-baseline-\(pid).sqlite")
            let sample = min(total, componentSample)
            writeStderr("ingest: recorder path split over \(sample) packets…\n")
            components = try IngestBaseline.components(packets, count: sample, chunk: max(1000, options.rate / 10),
                                                       archivePath: "/tmp/percrec-bench-ingest-components-\(pid).sqlite")
        }

        var report = Report()
        report.line("offered_pps", pps(offered))
        report.line("ingest_pps", pps(ingest))
        report.line("stored_rows", stored)
        report.line("sent", sent)
        // SO_RXQ_OVFL travels with the datagrams queued after a drop, so drops at the very end
        // (nothing queued after them) only show in /proc/net/udp: report the larger.
        let procDrops = proc?.drops ?? 0
        let drops = max(Int(kernelDrops), procDrops)
        report.line("kernel_drops", drops)
        report.line("recorder_drops", recorderDrops)
        report.line("commits", writer.commits)
        report.line("rcvbuf_bytes", rcvbuf)
        if let b = baseline {
            report.line("baseline_pps", pps(b.pps))
            report.line("ingest_vs_baseline", fixed(b.pps > 0 ? ingest / b.pps : 0, decimals: 2))
        }
        report.line("ingest_cpu_seconds", fixed(cpuSeconds, decimals: 2))
        report.line("ingest_elapsed_seconds", fixed(elapsed, decimals: 2))
        report.line("ingest_cpu_utilization", fixed(elapsed > 0 ? cpuSeconds / elapsed : 0, decimals: 2))
        report.line("ingest_runqueue_wait_seconds", runqueueWait.map { fixed($0, decimals: 2) } ?? "unknown")
        let contended = (runqueueWait ?? 0) > 0.05 * elapsed
        report.line("ingest_contended", contended ? "yes (other work ran on the recorder core; rerun on a quiet machine)" : "no")
        report.line("ingest_blocked_seconds", fixed(max(0, elapsed - cpuSeconds - (runqueueWait ?? 0)), decimals: 2))
        report.line("loadavg_at_start", loadAtStart)
        report.line("requested_pps", options.rate)
        report.line("seconds", options.seconds)
        report.line("datagram_bytes_avg", fixed(packets.averageBytes, decimals: 1))
        report.line("video_share", fixed(Double(packets.videoPackets) / Double(total), decimals: 2))
        report.line("generator_cpu", "\(shared.generatorCPU.load(ordering: .relaxed)) (pinned: \(shared.generatorPinned.load(ordering: .relaxed)))")
        report.line("generator_cpu_seconds", fixed(shared.generatorCPUSeconds, decimals: 2))
        report.line("generator_sendmmsg_seconds", fixed(Double(shared.sendCallNanoseconds) / 1e9, decimals: 2))
        report.line("generator_send_seconds", fixed(sendSeconds, decimals: 2))
        report.line("drain_ms", fixed(drainMs, decimals: 1))
        report.line("kernel_drops_so_rxq_ovfl", Int(kernelDrops))
        report.line("kernel_drops_proc_net_udp", proc.map { "\($0.drops)" } ?? "unknown")
        report.line("truncated", truncated)
        report.line("recv_batches", batches)
        report.line("recv_batch_avg", fixed(batches > 0 ? Double(received) / Double(batches) : 0, decimals: 1))
        report.line("idle_waits", waits)
        report.line("loop_recvmmsg_seconds", fixed(Double(recvNs) / 1e9, decimals: 2))
        report.line("loop_receive_seconds", fixed(Double(receiveNs) / 1e9, decimals: 2))
        report.line("loop_commit_seconds", fixed(Double(commitNs) / 1e9, decimals: 2))
        report.line("loop_wait_seconds", fixed(Double(waitNs) / 1e9, decimals: 2))
        report.line("longest_commit_ms", fixed(Double(longestCommit) / 1e6, decimals: 1))
        if received > 0 {
            report.line("loop_recvmmsg_ns_per_packet", fixed(Double(recvNs) / Double(received), decimals: 0))
            report.line("loop_receive_ns_per_packet", fixed(Double(receiveNs) / Double(received), decimals: 0))
            report.line("loop_commit_ns_per_packet", fixed(Double(commitNs) / Double(received), decimals: 0))
        }
        if let b = baseline {
            report.line("baseline_ns_per_packet", fixed(b.pps > 0 ? 1e9 / b.pps : 0, decimals: 0))
        }
        if let c = components {
            report.line("split_packets", c.packets)
            report.line("split_hbh_open_ns", fixed(c.perPacket(c.hbhOpenNanoseconds), decimals: 0))
            report.line("split_libsrtp_unprotect_ns", fixed(c.perPacket(c.libsrtpNanoseconds), decimals: 0))
            report.line("split_archiving_receive_ns", fixed(c.perPacket(c.receiveNanoseconds), decimals: 0))
            report.line("split_segment_commit_ns", fixed(c.perPacket(c.commitNanoseconds), decimals: 0))
            let perPacket = c.perPacket(c.receiveNanoseconds) + c.perPacket(c.commitNanoseconds)
            report.line("split_recorder_path_pps", pps(perPacket > 0 ? 1e9 / perPacket : 0))
        }
        report.line("target_150k", ingest >= Double(targetPPS) && drops == 0 ? "met" : "missed")

        var reasons: [String] = []
        if drops > 0 { reasons.append("kernel_drops \(drops)") }
        if recorderDrops > 0 { reasons.append("recorder_drops \(recorderDrops) \(receiver.drops.byName)") }
        if stored != sent { reasons.append("stored_rows \(stored) != sent \(sent)") }
        if truncated > 0 { reasons.append("\(truncated) truncated datagrams") }
        if let b = baseline, b.failures.count > 0, let f = b.failures.first {
            reasons.append("baseline: \(b.failures.count) failures, first at \(f.index): \(f.reason)")
        }
        if let c = components, c.failures > 0 || c.storedRows != c.packets {
            reasons.append("split: \(c.failures) failures, \(c.storedRows) of \(c.packets) stored")
        }
        if reasons.isEmpty {
            let ok = "ingest \(pps(ingest)) pps, \(stored) rows, no drops"
            report.line("result", "PASS (\(ok))")
            return 0
        }
        report.line("result", "FAIL (\(reasons.joined(separator: "; ")))")
        return 1
    }

    /// The 1-minute load average (other work on this machine skews every figure).
    static func loadAverage() -> String {
        var loads = [Double](repeating: 0, count: 3)
        return getloadavg(&loads, 3) >= 1 ? fixed(loads[0], decimals: 2) : "unknown"
    }

    /// The `SO_RXQ_OVFL` count in a received message's control data, if present
    /// (`struct cmsghdr { size_t len; int level; int type; }`, data at CMSG_ALIGN(16)).
    static func overflowCount(_ control: UnsafeMutableRawPointer, length: Int) -> UInt32? {
        var offset = 0
        while offset + 16 <= length {
            let len = control.loadUnaligned(fromByteOffset: offset, as: Int.self)
            let level = control.loadUnaligned(fromByteOffset: offset + 8, as: Int32.self)
            let type = control.loadUnaligned(fromByteOffset: offset + 12, as: Int32.self)
            guard len >= 16, offset + len <= length else { return nil }
            if level == SOL_SOCKET, type == SO_RXQ_OVFL, len >= 20 {
                return control.loadUnaligned(fromByteOffset: offset + 16, as: UInt32.self)
            }
            offset += (len + 7) & ~7
        }
        return nil
    }

    // MARK: - Load generator

    /// Sends packets 0..<total to 127.0.0.1:`port` at `rate` datagrams/s with sendmmsg, pinned to
    /// `generatorCPU`. Falls behind rather than dropping: an overloaded sender lowers offered_pps.
    static func generate(_ packets: IngestPackets, total: Int, rate: Int, port: UInt16, shared: Shared) {
        defer { shared.done.store(true, ordering: .releasing) }
        shared.generatorPinned.store(IngestSystem.pinCurrentThread(to: generatorCPU), ordering: .relaxed)
        shared.generatorCPU.store(IngestSystem.currentCPU(), ordering: .relaxed)
        guard let sendmmsg = IngestSystem.sendmmsgCall else { shared.error = "sendmmsg not found"; return }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { shared.error = "socket: \(String(cString: strerror(errno)))"; return }
        defer { close(fd) }
        var sndbuf: Int32 = 8 << 20
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { shared.error = "connect: \(String(cString: strerror(errno)))"; return }

        let batch = sendBatch
        let vectors = UnsafeMutablePointer<iovec>.allocate(capacity: batch)
        let messages = UnsafeMutablePointer<MMsgHdr>.allocate(capacity: batch)
        defer { vectors.deallocate(); messages.deallocate() }
        for k in 0 ..< batch {
            vectors[k] = iovec()
            var m = MMsgHdr()
            m.header.msg_iov = vectors + k
            m.header.msg_iovlen = 1
            messages[k] = m
        }
        let nsPerPacket = 1e9 / Double(rate)
        var sent = 0
        var sendNs: UInt64 = 0
        let cpuStart = IngestSystem.threadCPUSeconds()
        let start = monotonicNanoseconds()
        shared.sendStart.store(start, ordering: .relaxed)
        while sent < total {
            let now = monotonicNanoseconds()
            let due = min(total, Int(Double(now &- start) / nsPerPacket) + 1)
            if due <= sent {
                let wake = start &+ UInt64(Double(sent) * nsPerPacket)
                if wake > now {
                    var ts = timespec(tv_sec: 0, tv_nsec: Int(wake - now))
                    nanosleep(&ts, nil)
                }
                continue
            }
            let k = min(batch, due - sent)
            for j in 0 ..< k {
                vectors[j].iov_base = packets.pointers[sent + j]
                vectors[j].iov_len = packets.lengths[sent + j]
            }
            let s0 = monotonicNanoseconds()
            let r = sendmmsg(fd, messages, UInt32(k), 0)
            sendNs &+= monotonicNanoseconds() &- s0
            if r < 0 {
                let number = errno
                if number == EINTR { continue }
                if number == EAGAIN || number == ENOBUFS {
                    shared.retries.add(1, ordering: .relaxed)
                    sched_yield()
                    continue
                }
                shared.error = "sendmmsg: \(String(cString: strerror(number)))"
                break
            }
            sent += Int(r)
            shared.sent.store(sent, ordering: .relaxed)
        }
        shared.sendEnd.store(monotonicNanoseconds(), ordering: .relaxed)
        shared.generatorCPUSeconds = IngestSystem.threadCPUSeconds() - cpuStart
        shared.sendCallNanoseconds = sendNs
    }
}
