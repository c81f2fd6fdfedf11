#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// What `OggOpusWriter.finish` wrote.
public struct OggOpusSummary: Sendable, Equatable {
    public var path: String
    /// Audio packets (header packets not counted).
    public var packets: Int
    /// All pages, header pages included.
    public var pages: Int
    /// Granule position of the EOS page: samples appended − end trim (RFC 7845 §4).
    public var granulePosition: Int64
    /// Size of the file.
    public var bytes: Int64
    public var preSkip: Int

    /// PCM position of the end (RFC 7845 §4.3): the samples decoders output once they have
    /// dropped the pre-skip.
    public var samples: Int64 { granulePosition - Int64(preSkip) }
    public var durationSeconds: Double { Double(samples) / Double(OpusConstants.sampleRate) }
}

/// Writes one Ogg Opus logical stream (RFC 7845) to a file, one Opus packet per Ogg packet.
///
/// Page 0 holds OpusHead alone (BOS); the OpusTags pages follow and end their last page
/// (RFC 7845 §3). Audio pages close once the packets completed on them reach `maxPageSamples`
/// or their segment table is full (255 entries); a packet of any size may span pages
/// (RFC 3533 §5). The last complete page stays in memory so that `finish` can mark it EOS: the
/// EOS page always completes a packet (oggz-validate rejects an empty EOS page).
///
/// Granule positions count the samples appended so far, pre-skip included (RFC 7845 §4): the
/// decoder drops the first `preSkip` samples it outputs, which are the sender's encoder
/// look-ahead, so the packet appended at timeline position t carries the input captured at t
/// and PCM position n is input sample n (opusenc's convention; ffprobe start_time 0).
/// The caller fills leading or missing time with concealment packets (`OpusTimelinePlacer`),
/// never with granule jumps (RFC 7845 §4.1).
///
/// `finish` refuses a stream without audio packets (`.invalidArgument`, the writer stays open):
/// such a stream is valid Ogg (EOS on the OpusTags page) but `opusinfo` warns "stream is empty"
/// and ffmpeg and opusdec cannot open it. Append concealment (`OpusTimelinePlacer.fill`) or
/// `abandon()` instead.
///
/// Not thread-safe: one owner at a time. A writer dropped without `finish` or `abandon` closes
/// its file as it is (buffered pages are lost; what was written reads as a stream without EOS).
public final class OggOpusWriter {
    public let path: String
    public let head: OpusHead
    public let serialNumber: UInt32
    public let maxPageSamples: Int

    private enum State { case open, finished, abandoned, failed(ContainerError) }
    private var state = State.open
    private var file: BufferedFile?
    private var paginator: OggPaginator
    /// The last complete page, not yet written (`finish` marks it EOS).
    private var held: OggPage?
    private var granulePosition: Int64
    private var packets = 0
    private var pages = 0
    private var lastPacketSamples = 0

    /// Creates (or truncates) the file and writes the header pages.
    /// - Parameter maxPageSamples: audio per page at 48 kHz (default 1 s, as `opusenc`).
    public init(path: String, head: OpusHead, tags: OpusTags, serial: UInt32,
                maxPageSamples: Int = 48_000) throws(ContainerError) {
        guard maxPageSamples > 0 else {
            throw .invalidArgument(name: "maxPageSamples", reason: "\(maxPageSamples); must be positive")
        }
        self.path = path
        self.head = head
        self.serialNumber = serial
        self.maxPageSamples = maxPageSamples
        self.paginator = OggPaginator(serialNumber: serial)
        self.granulePosition = 0
        file = try BufferedFile(creating: path)
        do {
            // RFC 7845 §3: the ID header alone on page 0; the comment header finishes its own page.
            for page in paginator.add(head.serialized(), granulePosition: 0, samples: 0) { try emit(page) }
            if let page = paginator.flush() { try emit(page) }
            for page in paginator.add(tags.serialized(), granulePosition: 0, samples: 0) { try emit(page) }
            if let page = paginator.flush() { try emit(page) }
        } catch {
            abandon()
            throw error
        }
    }

    /// Appends one Opus packet (non-empty) covering `samples` 48 kHz samples (1…5760, RFC 6716
    /// §3.2.5); the granule position advances by `samples`. The packet's bytes are not parsed.
    public func append(_ packet: [UInt8], samples: Int) throws(ContainerError) {
        try checkOpen()
        guard !packet.isEmpty else {
            throw .invalidArgument(name: "packet", reason: "empty; an Ogg Opus audio packet has at least a TOC byte (RFC 7845 §3)")
        }
        guard (1 ... OpusConstants.maxPacketSamples).contains(samples) else {
            throw .invalidArgument(name: "samples", reason: "\(samples) outside 1...5760 (120 ms)")
        }
        granulePosition += Int64(samples)
        packets += 1
        lastPacketSamples = samples
        try guarding { () throws(ContainerError) in
            for page in paginator.add(packet, granulePosition: granulePosition, samples: samples) { try emit(page) }
            if paginator.pageSamples >= maxPageSamples || paginator.isPageFull, let page = paginator.flush() {
                try emit(page)
            }
        }
    }

    /// Ends the stream: sets EOS on the last page (which completes a packet), writes it, closes
    /// the file. `endTrim` samples (at most the last packet's) are cut from the end by lowering
    /// the EOS page's granule position (RFC 7845 §4.4).
    @discardableResult
    public func finish(endTrim: Int = 0) throws(ContainerError) -> OggOpusSummary {
        try checkOpen()
        guard packets > 0 else {
            throw .invalidArgument(name: "packets", reason: "no audio packet: ffmpeg and opusdec cannot open an empty Ogg Opus stream")
        }
        guard (0 ... lastPacketSamples).contains(endTrim) else {
            throw .invalidArgument(name: "endTrim", reason: "\(endTrim) samples; the last packet has \(lastPacketSamples) (RFC 7845 §4.4)")
        }
        return try guarding { () throws(ContainerError) -> OggOpusSummary in
            if let page = paginator.flush() { try emit(page) }
            // After a packet, the page holding its end is held (flushed just above, or earlier).
            guard var last = held, let file else { throw .finished(path: path) }
            last.flags.insert(.endOfStream)
            last.granulePosition -= Int64(endTrim)
            try file.write(last.serialized())
            held = nil
            pages += 1
            try file.close()
            self.file = nil
            state = .finished
            return OggOpusSummary(path: path, packets: packets, pages: pages, granulePosition: last.granulePosition,
                                  bytes: file.bytesWritten, preSkip: head.preSkip)
        }
    }

    /// Closes the file and deletes it (an export that failed). Safe to call more than once,
    /// also after `finish`.
    public func abandon() {
        try? file?.close()
        file = nil
        held = nil
        unlink(path)
        state = .abandoned
    }

    // MARK: Internals

    private func checkOpen() throws(ContainerError) {
        switch state {
        case .open: return
        case .finished, .abandoned: throw .finished(path: path)
        case let .failed(error): throw error
        }
    }

    /// Runs `body`; an I/O error leaves the writer failed (every later call rethrows it).
    private func guarding<T>(_ body: () throws(ContainerError) -> T) throws(ContainerError) -> T {
        do {
            return try body()
        } catch {
            if case .io = error { state = .failed(error) }
            throw error
        }
    }

    /// Writes the page held so far and holds `page` instead.
    private func emit(_ page: OggPage) throws(ContainerError) {
        if let previous = held {
            guard let file else { throw .finished(path: path) }
            try file.write(previous.serialized())
            pages += 1
        }
        held = page
    }
}

/// Cuts the packets of one logical stream into pages (RFC 3533 §5–6): lacing values, the
/// continued flag, BOS on page 0, granule −1 on pages where no packet ends.
struct OggPaginator {
    let serialNumber: UInt32
    private(set) var nextSequence: UInt32 = 0
    private var table: [UInt8] = []
    private var body: [UInt8] = []
    /// Granule position of the last packet completed on the open page.
    private var granule = OggPage.noGranulePosition
    /// The open page starts inside a packet.
    private var continued = false
    /// Samples of the packets completed on the open page.
    private(set) var pageSamples = 0

    init(serialNumber: UInt32) { self.serialNumber = serialNumber }

    var isPageFull: Bool { table.count == OggPage.maxSegments }

    /// Adds a packet that ends at `granulePosition`; returns the pages it filled up.
    mutating func add(_ packet: [UInt8], granulePosition: Int64, samples: Int) -> [OggPage] {
        var pages: [OggPage] = []
        let lacing = OggPage.lacing(packetSize: packet.count)
        var segment = 0, offset = 0
        while segment < lacing.count {
            if isPageFull, let page = flush() { pages.append(page) }
            let n = min(OggPage.maxSegments - table.count, lacing.count - segment)
            // Every lacing value is 255 except the packet's last one.
            let bytes = segment + n == lacing.count ? packet.count - offset : 255 * n
            table += lacing[segment ..< segment + n]
            body += packet[offset ..< offset + bytes]
            segment += n
            offset += bytes
        }
        granule = granulePosition
        pageSamples += samples
        return pages
    }

    /// Closes the open page; `nil` if it has no segments.
    mutating func flush() -> OggPage? {
        guard !table.isEmpty else { return nil }
        var flags: OggPage.Flags = continued ? .continued : []
        if nextSequence == 0 { flags.insert(.beginningOfStream) }
        // Invariant: at most 255 lacing values, summing to the body's size (built by `add`).
        let page = OggPage(unchecked: flags, granule, serialNumber, nextSequence, table, body)
        continued = table.last == 255
        nextSequence += 1
        table = []
        body = []
        granule = OggPage.noGranulePosition
        pageSamples = 0
        return page
    }
}

/// A file written with POSIX calls through a 64 KiB buffer; failures carry errno and its text.
/// Closed by `close()` or, failing that, when released.
final class BufferedFile {
    static let capacity = 1 << 16
    let path: String
    private var descriptor: Int32
    private var buffer: [UInt8] = []
    /// Bytes handed to `write`, buffered ones included.
    private(set) var bytesWritten: Int64 = 0

    init(creating path: String) throws(ContainerError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Self.error(path, "open") }
        self.path = path
        descriptor = fd
        buffer.reserveCapacity(Self.capacity)
    }

    deinit { if descriptor >= 0 { _ = posixClose(descriptor) } }

    func write(_ bytes: [UInt8]) throws(ContainerError) {
        guard descriptor >= 0 else { throw .finished(path: path) }
        buffer += bytes
        bytesWritten += Int64(bytes.count)
        if buffer.count >= Self.capacity { try flush() }
    }

    func flush() throws(ContainerError) {
        var done = 0
        while done < buffer.count {
            let n = buffer.withUnsafeBytes { raw in
                posixWrite(descriptor, raw.baseAddress.map { $0 + done }, raw.count - done)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw Self.error(path, "write")
            }
            done += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes and closes; the descriptor is released even when flushing fails.
    func close() throws(ContainerError) {
        guard descriptor >= 0 else { return }
        let fd = descriptor
        do {
            try flush()
        } catch {
            descriptor = -1
            _ = posixClose(fd)
            throw error
        }
        descriptor = -1
        guard posixClose(fd) == 0 else { throw Self.error(path, "close") }
    }

    private static func error(_ path: String, _ operation: String) -> ContainerError {
        let code = errno
        return .io(path: path, operation: operation, errno: code, message: String(cString: strerror(code)))
    }
}

private func posixWrite(_ fd: Int32, _ bytes: UnsafeRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, bytes, count)
    #else
    Darwin.write(fd, bytes, count)
    #endif
}

private func posixClose(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    Glibc.close(fd)
    #else
    Darwin.close(fd)
    #endif
}
