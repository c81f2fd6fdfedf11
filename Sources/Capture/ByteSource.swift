#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only window on bytes already in memory. Every accessor expects the caller to have
/// checked `count` first; indices are relative to the window.
struct ByteView {
    let storage: [UInt8]
    let start: Int
    let count: Int

    init(_ storage: [UInt8], start: Int = 0, count: Int? = nil) {
        self.storage = storage
        self.start = start
        self.count = count ?? (storage.count - start)
    }

    subscript(index: Int) -> UInt8 { storage[start + index] }

    func u16(_ index: Int, bigEndian: Bool) -> UInt16 {
        let a = UInt16(self[index]), b = UInt16(self[index + 1])
        return bigEndian ? a << 8 | b : b << 8 | a
    }

    func u32(_ index: Int, bigEndian: Bool) -> UInt32 {
        let a = UInt32(u16(index, bigEndian: bigEndian)), b = UInt32(u16(index + 2, bigEndian: bigEndian))
        return bigEndian ? a << 16 | b : b << 16 | a
    }

    func u16be(_ index: Int) -> UInt16 { u16(index, bigEndian: true) }

    /// The four bytes at `index` as a big-endian number (file order).
    func u32be(_ index: Int) -> UInt32 { u32(index, bigEndian: true) }

    /// A sub-window of `length` bytes at `offset`; the caller ensures it fits.
    func view(_ offset: Int, _ length: Int) -> ByteView {
        ByteView(storage, start: start + offset, count: length)
    }

    /// A copy of `range` (relative to the window).
    func bytes(_ range: Range<Int>) -> [UInt8] {
        Array(storage[(start + range.lowerBound)..<(start + range.upperBound)])
    }
}

/// Bytes from a file read in chunks with `fread`, or from an array, with a read position.
///
/// `fill(n)` makes sure `n` bytes from the position are in memory; the buffer only ever holds
/// the unread tail plus the chunk just read, so a multi-gigabyte file streams through a
/// buffer of about `chunkSize` (or the largest record, if larger).
final class ByteSource {
    static let chunkSize = 1 << 20

    private var buffer: [UInt8]
    private var position = 0
    private var bufferOffset = 0
    private var file: UnsafeMutablePointer<FILE>?
    private var atEnd: Bool
    let path: String

    init(bytes: [UInt8]) {
        buffer = bytes
        atEnd = true
        path = "<memory>"
    }

    init(path: String) throws(CaptureError) {
        guard let handle = fopen(path, "rb") else {
            let code = errno
            throw .io(operation: "fopen", path: path, errno: code, message: ByteSource.errorText(code))
        }
        file = handle
        buffer = []
        atEnd = false
        self.path = path
    }

    deinit { close() }

    func close() {
        if let handle = file { fclose(handle) }
        file = nil
    }

    /// The absolute offset of the read position.
    var offset: Int { bufferOffset + position }

    /// Bytes in memory from the read position.
    var available: Int { buffer.count - position }

    /// Makes `count` bytes from the read position available; false if the input ends first
    /// (then `available` says how many there are).
    func fill(_ count: Int) throws(CaptureError) -> Bool {
        while available < count {
            if atEnd { return false }
            try readChunk(atLeast: count - available)
        }
        return true
    }

    /// The `count` bytes at the read position; call `fill(count)` first.
    func view(_ count: Int) -> ByteView {
        ByteView(buffer, start: position, count: count)
    }

    /// Moves the read position on by `count` bytes, all of which must be available.
    func advance(_ count: Int) {
        position += count
        if position == buffer.count, file != nil {
            bufferOffset += position
            buffer.removeAll(keepingCapacity: true)
            position = 0
        }
    }

    private func readChunk(atLeast minimum: Int) throws(CaptureError) {
        guard let handle = file else {
            atEnd = true
            return
        }
        if position > 0 {
            buffer.removeFirst(position)
            bufferOffset += position
            position = 0
        }
        let want = max(ByteSource.chunkSize, minimum)
        let old = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: want))
        let got = buffer.withUnsafeMutableBufferPointer { pointer -> Int in
            guard let base = pointer.baseAddress else { return 0 }
            return fread(base + old, 1, want, handle)
        }
        buffer.removeLast(want - got)
        if got < want {
            if ferror(handle) != 0 {
                let code = errno
                throw .io(operation: "fread", path: path, errno: code, message: ByteSource.errorText(code))
            }
            atEnd = true
        }
    }

    static func errorText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }
}
