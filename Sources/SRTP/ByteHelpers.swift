/// Small raw-byte helpers shared by the SRTP transforms.
@inline(__always)
func xorBigEndian32(_ p: UnsafeMutableRawPointer, at offset: Int, _ v: UInt32) {
    p.storeBytes(of: p.load(fromByteOffset: offset, as: UInt8.self) ^ UInt8(truncatingIfNeeded: v >> 24), toByteOffset: offset, as: UInt8.self)
    p.storeBytes(of: p.load(fromByteOffset: offset + 1, as: UInt8.self) ^ UInt8(truncatingIfNeeded: v >> 16), toByteOffset: offset + 1, as: UInt8.self)
    p.storeBytes(of: p.load(fromByteOffset: offset + 2, as: UInt8.self) ^ UInt8(truncatingIfNeeded: v >> 8), toByteOffset: offset + 2, as: UInt8.self)
    p.storeBytes(of: p.load(fromByteOffset: offset + 3, as: UInt8.self) ^ UInt8(truncatingIfNeeded: v), toByteOffset: offset + 3, as: UInt8.self)
}

@inline(__always)
func xorBigEndian16(_ p: UnsafeMutableRawPointer, at offset: Int, _ v: UInt16) {
    p.storeBytes(of: p.load(fromByteOffset: offset, as: UInt8.self) ^ UInt8(truncatingIfNeeded: v >> 8), toByteOffset: offset, as: UInt8.self)
    p.storeBytes(of: p.load(fromByteOffset: offset + 1, as: UInt8.self) ^ UInt8(truncatingIfNeeded: v), toByteOffset: offset + 1, as: UInt8.self)
}

@inline(__always)
func storeBigEndian32(_ p: UnsafeMutableRawPointer, at offset: Int, _ v: UInt32) {
    p.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt32.self)
}

@inline(__always)
func loadBigEndian32(_ p: UnsafeRawPointer, at offset: Int) -> UInt32 {
    UInt32(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
}

extension UnsafeMutableRawBufferPointer {
    /// A read-only view of bytes `range`.
    @inline(__always)
    func view(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: baseAddress! + range.lowerBound, count: range.count)
    }
    /// A mutable view of bytes `range`.
    @inline(__always)
    func mutableView(_ range: Range<Int>) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: baseAddress! + range.lowerBound, count: range.count)
    }
}

extension Array where Element == UInt8 {
    /// `withUnsafeMutableBytes` that keeps the SRTP error type.
    @inline(__always)
    mutating func withSRTPBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws(SRTPError) -> R) throws(SRTPError) -> R {
        let result: Result<R, SRTPError> = withUnsafeMutableBytes { raw in
            do throws(SRTPError) { return .success(try body(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}

/// A 16-byte IV/counter block on the stack.
typealias IVBlock = (UInt64, UInt64)
