import Glibc

/// What a registered descriptor should be watched for.
public struct PollInterest: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Data (or a connection, or end of stream) to read: `POLLIN`.
    public static let read = PollInterest(rawValue: 1 << 0)
    /// Room to write, or a non-blocking connect finished: `POLLOUT`.
    public static let write = PollInterest(rawValue: 1 << 1)
}

/// What poll(2) reported for one descriptor.
public struct PollReadiness: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `POLLIN` (or `POLLHUP`/`POLLERR` on a descriptor with read interest, so that the read
    /// that follows sees the end of stream or the error).
    public static let readable = PollReadiness(rawValue: 1 << 0)
    /// `POLLOUT`.
    public static let writable = PollReadiness(rawValue: 1 << 1)
    /// `POLLHUP`: the peer hung up (reported whatever the interest).
    public static let hangup = PollReadiness(rawValue: 1 << 2)
    /// `POLLERR`: an error is pending on the socket (`SO_ERROR`).
    public static let error = PollReadiness(rawValue: 1 << 3)
    /// `POLLNVAL`: the descriptor is not open (closed without being removed).
    public static let invalid = PollReadiness(rawValue: 1 << 4)
}

/// One ready descriptor.
public struct PollEvent: Sendable, Hashable {
    public let fd: Int32
    public let readiness: PollReadiness

    public init(fd: Int32, readiness: PollReadiness) {
        self.fd = fd
        self.readiness = readiness
    }

    public var isReadable: Bool { readiness.contains(.readable) }
    public var isWritable: Bool { readiness.contains(.writable) }
}

/// A set of descriptors with read/write interest, waited on with poll(2).
///
/// poll rather than epoll: the tunnel, the lab and the recorder watch a handful of sockets, and
/// a value type that owns no kernel object is easy to reason about. Registering an fd again
/// replaces its interest; the Poller never closes anything. Remove an fd before closing it.
public struct Poller: Sendable {
    private var entries: [pollfd] = []

    public init() {}

    /// Registered descriptors, in registration order.
    public var descriptors: [Int32] { entries.map(\.fd) }

    /// Watches `fd` for `interest` (replacing any earlier interest). An empty interest still
    /// reports hangups and errors.
    public mutating func register(_ fd: Int32, interest: PollInterest) {
        precondition(fd >= 0, "Poller.register needs an open descriptor")
        let events = Poller.events(for: interest)
        if let i = entries.firstIndex(where: { $0.fd == fd }) {
            entries[i].events = events
        } else {
            entries.append(pollfd(fd: fd, events: events, revents: 0))
        }
    }

    /// Stops watching `fd`; nothing happens if it was not registered.
    public mutating func remove(_ fd: Int32) {
        entries.removeAll { $0.fd == fd }
    }

    /// The interest registered for `fd`, nil if none.
    public func interest(of fd: Int32) -> PollInterest? {
        guard let entry = entries.first(where: { $0.fd == fd }) else { return nil }
        var interest: PollInterest = []
        if entry.events & Int16(POLLIN) != 0 { interest.insert(.read) }
        if entry.events & Int16(POLLOUT) != 0 { interest.insert(.write) }
        return interest
    }

    /// Waits until a registered descriptor is ready or `timeout` passes (nil: no limit,
    /// `.zero`: just look). Returns the ready descriptors in registration order, empty on
    /// timeout. A signal (EINTR) restarts the wait with the time that is left.
    public mutating func poll(timeout: Duration?) throws(NetError) -> [PollEvent] {
        let count = try Poller.poll(&entries, timeout: timeout)
        guard count > 0 else { return [] }
        var ready: [PollEvent] = []
        ready.reserveCapacity(count)
        for entry in entries where entry.revents != 0 {
            ready.append(PollEvent(fd: entry.fd, readiness: Poller.readiness(entry.revents, events: entry.events)))
        }
        return ready
    }

    /// Waits for one descriptor; the readiness, or empty on timeout.
    public static func wait(for fd: Int32, interest: PollInterest, timeout: Duration?) throws(NetError) -> PollReadiness {
        var entries = [pollfd(fd: fd, events: events(for: interest), revents: 0)]
        guard try poll(&entries, timeout: timeout) > 0 else { return [] }
        return readiness(entries[0].revents, events: entries[0].events)
    }

    // MARK: - Internals

    private static func poll(_ entries: inout [pollfd], timeout: Duration?) throws(NetError) -> Int {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        while true {
            let ms = deadline.map { ($0 - ContinuousClock.now).pollMilliseconds } ?? -1
            let r = entries.withUnsafeMutableBufferPointer { Glibc.poll($0.baseAddress, nfds_t($0.count), ms) }
            if r >= 0 { return Int(r) }
            let number = Glibc.errno
            if number == EINTR { continue }
            throw .system("poll", "\(entries.count) descriptors", errno: number)
        }
    }

    private static func events(for interest: PollInterest) -> Int16 {
        var events: Int16 = 0
        if interest.contains(.read) { events |= Int16(POLLIN) }
        if interest.contains(.write) { events |= Int16(POLLOUT) }
        return events
    }

    private static func readiness(_ revents: Int16, events: Int16) -> PollReadiness {
        var r: PollReadiness = []
        let wantsRead = events & Int16(POLLIN) != 0
        if revents & Int16(POLLIN | POLLPRI) != 0 { r.insert(.readable) }
        if revents & Int16(POLLOUT) != 0 { r.insert(.writable) }
        if revents & Int16(POLLHUP) != 0 { r.insert(.hangup) }
        if revents & Int16(POLLERR) != 0 { r.insert(.error) }
        if revents & Int16(POLLNVAL) != 0 { r.insert(.invalid) }
        if wantsRead, revents & Int16(POLLHUP | POLLERR) != 0 { r.insert(.readable) }
        return r
    }
}
