// Linux calls the ingest benchmark needs that Swift's Glibc module does not import
// (`recvmmsg`, `sendmmsg`, `sched_setaffinity`, `sched_getcpu` need _GNU_SOURCE), looked up
// with dlsym, plus a raw thread, per-thread CPU time, and /proc/net/udp counters.
#if canImport(Glibc)
import Glibc

/// `struct mmsghdr` (x86_64/aarch64 LP64): a `msghdr` (56 bytes), the received length, padding to 64.
struct MMsgHdr {
    var header = msghdr()
    var length: UInt32 = 0
    var padding: UInt32 = 0
}

enum IngestSystem {
    typealias MMsgCall = @convention(c) (Int32, UnsafeMutableRawPointer?, UInt32, Int32, UnsafeMutablePointer<timespec>?) -> Int32
    typealias SendMMsgCall = @convention(c) (Int32, UnsafeMutableRawPointer?, UInt32, Int32) -> Int32
    typealias SetAffinityCall = @convention(c) (pid_t, Int, UnsafeRawPointer?) -> Int32
    typealias GetCPUCall = @convention(c) () -> Int32

    /// RTLD_DEFAULT is `(void *) 0` in glibc.
    private static func symbol(_ name: String) -> UnsafeMutableRawPointer? { dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) }

    static let recvmmsgCall: MMsgCall? = symbol("recvmmsg").map { unsafeBitCast($0, to: MMsgCall.self) }
    static let sendmmsgCall: SendMMsgCall? = symbol("sendmmsg").map { unsafeBitCast($0, to: SendMMsgCall.self) }
    private static let setAffinityCall: SetAffinityCall? = symbol("sched_setaffinity").map { unsafeBitCast($0, to: SetAffinityCall.self) }
    private static let getCPUCall: GetCPUCall? = symbol("sched_getcpu").map { unsafeBitCast($0, to: GetCPUCall.self) }

    /// Pins the calling thread to `cpu` (pid 0 = the calling thread). Returns whether it worked.
    static func pinCurrentThread(to cpu: Int) -> Bool {
        guard let call = setAffinityCall, cpu >= 0, cpu < 1024 else { return false }
        var mask = [UInt64](repeating: 0, count: 16)   // cpu_set_t: 1024 bits
        mask[cpu / 64] |= 1 << UInt64(cpu % 64)
        return mask.withUnsafeBytes { call(0, $0.count, $0.baseAddress) } == 0
    }

    /// The CPU the calling thread runs on now, -1 if unknown.
    static func currentCPU() -> Int { getCPUCall.map { Int($0()) } ?? -1 }

    static var processorCount: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// User + system CPU seconds of the calling thread (getrusage RUSAGE_THREAD = 1).
    static func threadCPUSeconds() -> Double {
        var usage = rusage()
        guard getrusage(__rusage_who_t(1), &usage) == 0 else { return 0 }
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }

    /// The calling thread's scheduler figures (/proc/thread-self/schedstat): nanoseconds on a
    /// CPU and nanoseconds runnable but waiting for one.
    static func threadSchedStat() -> (running: UInt64, waiting: UInt64)? {
        guard let f = fopen("/proc/thread-self/schedstat", "r") else { return nil }
        defer { fclose(f) }
        var buffer = [CChar](repeating: 0, count: 128)
        guard fgets(&buffer, Int32(buffer.count), f) != nil else { return nil }
        let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count >= 2, let run = UInt64(fields[0]), let wait = UInt64(fields[1]) else { return nil }
        return (run, wait)
    }

    /// Unix time in seconds (CLOCK_REALTIME), as the recorder stamps arrivals.
    @inline(__always)
    static func unixTime() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// The receive-queue bytes and the drop count /proc/net/udp shows for the IPv4 socket bound
    /// to local `port` (nil if not found).
    static func procUDP(port: UInt16) -> (rxQueue: Int, drops: Int)? {
        guard let f = fopen("/proc/net/udp", "r") else { return nil }
        defer { fclose(f) }
        let wanted = ":" + String(port, radix: 16, uppercase: true).leftPadded(to: 4)
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, f) > 0 {
            guard let line else { break }
            let fields = String(cString: line).split(whereSeparator: { $0 == " " || $0 == "\n" })
            guard fields.count >= 13, fields[1].hasSuffix(wanted) else { continue }
            let queues = fields[4].split(separator: ":")
            guard queues.count == 2, let rx = Int(queues[1], radix: 16), let drops = Int(fields[fields.count - 1]) else { return nil }
            return (rx, drops)
        }
        return nil
    }
}

extension String {
    fileprivate func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

/// A joinable POSIX thread running `body` (so it can pin itself to a core).
final class BenchThread: @unchecked Sendable {
    private var thread = pthread_t()
    private let body: () -> Void

    init(_ body: @escaping () -> Void) {
        self.body = body
        let context = Unmanaged.passRetained(self).toOpaque()
        let r = pthread_create(&thread, nil, { context in
            let me = Unmanaged<BenchThread>.fromOpaque(context!).takeRetainedValue()
            me.body()
            return nil
        }, context)
        precondition(r == 0, "pthread_create failed: \(r)")
    }

    func join() { pthread_join(thread, nil) }
}
#endif
