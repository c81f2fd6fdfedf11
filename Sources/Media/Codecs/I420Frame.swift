#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// One planar YUV 4:2:0 picture (I420): a full-size Y plane, then U and V at half width and height.
///
/// Planes are tightly packed (stride = plane width). Chroma planes are `(width + 1) / 2` by
/// `(height + 1) / 2`. Values are 8-bit video range as produced by the codecs (Y 16–235 nominal).
public struct I420Frame: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var y: [UInt8]
    public var u: [UInt8]
    public var v: [UInt8]

    /// Width of the U and V planes.
    public var chromaWidth: Int { (width + 1) / 2 }
    /// Height of the U and V planes.
    public var chromaHeight: Int { (height + 1) / 2 }

    /// A frame from existing planes; throws if a dimension is not positive or a plane has the wrong size.
    public init(width: Int, height: Int, y: [UInt8], u: [UInt8], v: [UInt8]) throws(MediaError) {
        guard width > 0, height > 0, width <= 16_383, height <= 16_383 else {
            throw .invalidArgument(name: "size", reason: "\(width)×\(height) outside 1...16383 (VP8 limit)")
        }
        let chroma = ((width + 1) / 2) * ((height + 1) / 2)
        guard y.count == width * height else {
            throw .invalidArgument(name: "y", reason: "\(y.count) bytes, expected \(width * height)")
        }
        guard u.count == chroma, v.count == chroma else {
            throw .invalidArgument(name: "u/v", reason: "\(u.count)/\(v.count) bytes, expected \(chroma) each")
        }
        self.width = width
        self.height = height
        self.y = y
        self.u = u
        self.v = v
    }

    /// Planes already sized by this module's own code (no checks).
    init(uncheckedWidth width: Int, height: Int, y: [UInt8], u: [UInt8], v: [UInt8]) {
        self.width = width
        self.height = height
        self.y = y
        self.u = u
        self.v = v
    }

    /// A frame filled with one colour (default: black, Y=16, U=V=128).
    public init(width: Int, height: Int, luma: UInt8 = 16, cb: UInt8 = 128, cr: UInt8 = 128) throws(MediaError) {
        guard width > 0, height > 0, width <= 16_383, height <= 16_383 else {
            throw .invalidArgument(name: "size", reason: "\(width)×\(height) outside 1...16383 (VP8 limit)")
        }
        let chroma = ((width + 1) / 2) * ((height + 1) / 2)
        self.width = width
        self.height = height
        y = [UInt8](repeating: luma, count: width * height)
        u = [UInt8](repeating: cb, count: chroma)
        v = [UInt8](repeating: cr, count: chroma)
    }

    /// Mean of the Y plane.
    public var meanLuma: Double {
        Double(y.reduce(0) { $0 + Int($1) }) / Double(y.count)
    }

    /// PSNR in dB over all three planes against `reference` (peak 255); `nil` if the sizes differ,
    /// `.infinity` if identical.
    public func psnr(against reference: I420Frame) -> Double? {
        guard width == reference.width, height == reference.height else { return nil }
        var sse = 0
        for (a, b) in zip(y, reference.y) { let d = Int(a) - Int(b); sse += d * d }
        for (a, b) in zip(u, reference.u) { let d = Int(a) - Int(b); sse += d * d }
        for (a, b) in zip(v, reference.v) { let d = Int(a) - Int(b); sse += d * d }
        guard sse > 0 else { return .infinity }
        let count = Double(y.count + u.count + v.count)
        return 10 * log10(255 * 255 * count / Double(sse))
    }
}
